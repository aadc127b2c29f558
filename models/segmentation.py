"""Semantic segmentation models as a backbone and heads (mmsegmentation's ``EncoderDecoder``).

``SegmentationModel`` holds ``backbone`` (image -> multi-scale features) and ``heads`` (``decode``,
and ``aux`` where the recipe has an auxiliary head); the two are the workload's optimizer roles
``backbone`` and ``head``. ``forward`` gives logits at the input resolution (bilinear,
align_corners=False, as mmseg's ``resize``); in training mode with an aux head it gives
``(logits, aux_logits)`` and ``aux_weight`` says how the loss weighs the second.

``upernet_swin_t``: UPerNet (Xiao et al. 2018) on Swin-T (Liu et al. 2021) as the Swin paper's ADE20K
setting, from segmentation-models-pytorch 0.6 (``smp.UPerNet`` with the timm encoder
``tu-swin_tiny_patch4_window7_224``, 512 decoder channels, drop-path 0.3) plus what mmsegmentation's
``upernet_swin`` config adds: Dropout2d(0.1) before each classifier and the auxiliary FCN head on
stage 3 (256 channels, loss weight 0.4). mmseg's LayerNorm on each Swin output is smp's decoder
``feature_norms`` here (so it trains in the ``head`` role, eps 1e-6 instead of 1e-5), and the aux
head reads stage 3 before that norm. ``segnext_t``: ``models.segnext``.

``pretrained_path`` is a local ImageNet checkpoint of the backbone (weights cannot be downloaded
here): for Swin-T timm's or Microsoft's ``swin_tiny_patch4_window7_224`` file (timm converts the
latter), for MSCAN-T the SegNeXt release ``mscan_t.pth``. A missing file is one error naming the option.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from bench.errors import BenchError
from models.registry import register_model


def check_pretrained(path: str | None) -> Path | None:
    """``path`` as a Path, or one error naming ``model.pretrained_path`` when no such file exists."""
    if path is None:
        return None
    file = Path(path).expanduser()
    if not file.is_file():
        raise BenchError(f"model.pretrained_path {path} does not exist; pass model.pretrained_path=<local backbone "
                         f"checkpoint file> (weights cannot be downloaded here) or model.pretrained_path=null")
    return file


def load_backbone(backbone: nn.Module, path: Path) -> nn.Module:
    """Load a checkpoint (a state dict, or one under ``state_dict``/``model``) into ``backbone``: every
    backbone tensor must be there; other keys (an ImageNet classifier) are left out."""
    state: Any = torch.load(path, map_location="cpu", weights_only=True)
    for key in ("state_dict", "model"):
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
    state = {k.removeprefix("module.").removeprefix("backbone."): v for k, v in state.items()}
    missing, _ = backbone.load_state_dict(state, strict=False)
    if missing:
        raise BenchError(f"checkpoint {path} lacks {len(missing)} backbone tensors (e.g. {missing[0]}); "
                         f"pass model.pretrained_path=<this model's backbone checkpoint>")
    return backbone


def classifier(channels: int, num_classes: int, dropout: float) -> nn.Sequential:
    """mmseg ``BaseDecodeHead.cls_seg``: Dropout2d then a 1x1 convolution to the classes."""
    return nn.Sequential(nn.Dropout2d(dropout), nn.Conv2d(channels, num_classes, 1))


def conv_norm_act(cin: int, cout: int, kernel: int, norm: nn.Module | None, act: bool = True) -> nn.Sequential:
    """mmcv ``ConvModule``: conv (bias only without a norm), norm, ReLU."""
    layers: list[nn.Module] = [nn.Conv2d(cin, cout, kernel, padding=kernel // 2, bias=norm is None)]
    layers += [norm] if norm is not None else []
    layers += [nn.ReLU(inplace=True)] if act else []
    return nn.Sequential(*layers)


class FCNHead(nn.Module):
    """mmseg ``FCNHead`` (num_convs=1, concat_input=False) on feature ``index``: the auxiliary head."""

    def __init__(self, index: int, cin: int, channels: int, num_classes: int, dropout: float = 0.1) -> None:
        super().__init__()
        self.index = index
        self.conv = conv_norm_act(cin, channels, 3, nn.BatchNorm2d(channels))
        self.cls = classifier(channels, num_classes, dropout)

    def forward(self, features: list[Tensor]) -> Tensor:
        return self.cls(self.conv(features[self.index]))


class SegmentationModel(nn.Module):
    """A backbone and its heads; ``heads["decode"]`` and the optional ``heads["aux"]`` take the features."""

    def __init__(self, backbone: nn.Module, decode: nn.Module, aux: nn.Module | None = None,
                 aux_weight: float = 0.0) -> None:
        super().__init__()
        self.backbone = backbone
        self.heads = nn.ModuleDict({"decode": decode, **({"aux": aux} if aux is not None else {})})
        self.aux_weight = aux_weight

    def forward(self, x: Tensor) -> Tensor | tuple[Tensor, Tensor]:
        features = self.backbone(x)
        logits = self._upsample(self.heads["decode"](features), x)
        if self.training and "aux" in self.heads:
            return logits, self._upsample(self.heads["aux"](features), x)
        return logits

    @staticmethod
    def _upsample(logits: Tensor, x: Tensor) -> Tensor:
        return F.interpolate(logits, size=x.shape[-2:], mode="bilinear", align_corners=False)


# -------------------------------------------------------------------------------- UPerNet + Swin-T
class SmpDecode(nn.Module):
    """smp's UPerNet decoder followed by mmseg's classifier."""

    def __init__(self, decoder: nn.Module, channels: int, num_classes: int, dropout: float) -> None:
        super().__init__()
        self.decoder, self.cls = decoder, classifier(channels, num_classes, dropout)

    def forward(self, features: list[Tensor]) -> Tensor:
        return self.cls(self.decoder(features))


@register_model("upernet_swin_t")
def upernet_swin_t(num_classes: int = 150, in_channels: int = 3, pretrained_path: str | None = None,
                   encoder: str = "tu-swin_tiny_patch4_window7_224", decoder_channels: int = 512,
                   drop_path_rate: float = 0.3, dropout: float = 0.1, aux_head: bool = True,
                   aux_channels: int = 256, aux_weight: float = 0.4) -> SegmentationModel:
    """UPerNet + Swin-T (mmseg ``upernet_swin_tiny_patch4_window7_512x512_160k_ade20k``; see module doc)."""
    import segmentation_models_pytorch as smp

    file = check_pretrained(pretrained_path)
    extra: dict[str, Any] = {"pretrained_cfg_overlay": {"file": str(file)}} if file else {}
    net = smp.UPerNet(encoder, encoder_weights=True if file else None, decoder_channels=decoder_channels,
                      in_channels=in_channels, classes=num_classes, strict_img_size=False,
                      drop_path_rate=drop_path_rate, **extra)
    aux = FCNHead(-2, net.encoder.out_channels[-2], aux_channels, num_classes, dropout) if aux_head else None
    return SegmentationModel(net.encoder, SmpDecode(net.decoder, decoder_channels, num_classes, dropout), aux,
                             aux_weight if aux_head else 0.0)
