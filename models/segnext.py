"""SegNeXt-T (Guo et al., NeurIPS 2022, "SegNeXt: Rethinking Convolutional Attention Design for
Semantic Segmentation"): the MSCAN-T encoder and the light Hamburger decoder, written from the paper
(Sec. 3, Fig. 2, Tables 1 and 2) with the details of the authors' code (Visual-Attention-Network/
SegNeXt ``mmseg/models/backbones/mscan.py``) and mmsegmentation 1.x (``decode_heads/ham_head.py``,
``configs/segnext/segnext_mscan-t_1xb16-adamw-160k_ade20k-512x512.py``), since no PyPI package has it
outside mmsegmentation, whose compiled mmcv does not build for our torch.

MSCAN-T: channels (32, 64, 160, 256), depths (3, 3, 5, 2), MLP ratios (8, 8, 4, 4), BatchNorm,
drop-path 0.1; a stem of two stride-2 3x3 convolutions, then per stage a stride-2 3x3 patch
embedding (after the first), blocks of multi-scale convolutional attention (Eq. 1-2: depthwise 5x5,
then 1x7/7x1, 1x11/11x1 and 1x21/21x1 strip convolutions summed, a 1x1 mixing, used as weights on
the input) and a convolutional FFN, each with layer scale 0.01, and a LayerNorm per stage output.
Parameter names follow the authors' code, so their ImageNet checkpoint ``mscan_t.pth`` loads as is.

Ham decoder (LightHamHead): stages 2-4 resized to stage 2 and concatenated, 1x1 squeeze to 256
channels (GroupNorm 32, ReLU), the Hamburger (1x1 conv, ReLU, NMF with R=16 bases from a random
start, 6 multiplicative-update steps in training and 7 in evaluation, 1x1 conv + GroupNorm, residual,
ReLU), 1x1 align to 256 channels, Dropout2d(0.1) and the classifier. The NMF runs in float32.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from models.registry import register_model
from models.segmentation import SegmentationModel, check_pretrained, classifier, conv_norm_act, load_backbone


# ------------------------------------------------------------------------------------------ MSCAN
class Mlp(nn.Module):
    """Convolutional FFN: 1x1, depthwise 3x3, GELU, 1x1."""

    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.fc1 = nn.Conv2d(dim, hidden, 1)
        self.dwconv = nn.Module()
        self.dwconv.dwconv = nn.Conv2d(hidden, hidden, 3, padding=1, groups=hidden)  # checkpoint name
        self.act = nn.GELU()
        self.fc2 = nn.Conv2d(hidden, dim, 1)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc2(self.act(self.dwconv.dwconv(self.fc1(x))))


class AttentionModule(nn.Module):
    """Multi-scale convolutional attention (MSCA, Eq. 1-2): Att = Conv1x1(sum_i Scale_i(DW-Conv(F)))."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.conv0 = nn.Conv2d(dim, dim, 5, padding=2, groups=dim)
        for i, k in enumerate((7, 11, 21)):
            setattr(self, f"conv{i}_1", nn.Conv2d(dim, dim, (1, k), padding=(0, k // 2), groups=dim))
            setattr(self, f"conv{i}_2", nn.Conv2d(dim, dim, (k, 1), padding=(k // 2, 0), groups=dim))
        self.conv3 = nn.Conv2d(dim, dim, 1)

    def forward(self, x: Tensor) -> Tensor:
        attn = self.conv0(x)
        scales = [getattr(self, f"conv{i}_2")(getattr(self, f"conv{i}_1")(attn)) for i in range(3)]
        return self.conv3(attn + sum(scales)) * x


class SpatialAttention(nn.Module):
    """1x1, GELU, MSCA, 1x1, plus the input."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.proj_1, self.activation = nn.Conv2d(dim, dim, 1), nn.GELU()
        self.spatial_gating_unit = AttentionModule(dim)
        self.proj_2 = nn.Conv2d(dim, dim, 1)

    def forward(self, x: Tensor) -> Tensor:
        return self.proj_2(self.spatial_gating_unit(self.activation(self.proj_1(x)))) + x


class Block(nn.Module):
    """x + s1 * Attn(BN(x)), then x + s2 * FFN(BN(x)), with drop-path and layer scale 0.01."""

    def __init__(self, dim: int, mlp_ratio: float, drop_path: float) -> None:
        from timm.layers import DropPath  # timm costs seconds to import: only when a model is built

        super().__init__()
        self.norm1, self.attn = nn.BatchNorm2d(dim), SpatialAttention(dim)
        self.drop_path = DropPath(drop_path) if drop_path > 0 else nn.Identity()
        self.norm2, self.mlp = nn.BatchNorm2d(dim), Mlp(dim, int(dim * mlp_ratio))
        self.layer_scale_1 = nn.Parameter(torch.full((dim,), 1e-2))
        self.layer_scale_2 = nn.Parameter(torch.full((dim,), 1e-2))

    def forward(self, x: Tensor) -> Tensor:
        x = x + self.drop_path(self.layer_scale_1[:, None, None] * self.attn(self.norm1(x)))
        return x + self.drop_path(self.layer_scale_2[:, None, None] * self.mlp(self.norm2(x)))


class PatchEmbed(nn.Module):
    """Stage 1: two stride-2 3x3 convs (BN, GELU between); later stages: one stride-2 3x3 conv + BN."""

    def __init__(self, cin: int, cout: int, stem: bool) -> None:
        super().__init__()
        if stem:
            self.proj = nn.Sequential(nn.Conv2d(cin, cout // 2, 3, 2, 1), nn.BatchNorm2d(cout // 2), nn.GELU(),
                                      nn.Conv2d(cout // 2, cout, 3, 2, 1), nn.BatchNorm2d(cout))
        else:
            self.proj, self.norm = nn.Conv2d(cin, cout, 3, 2, 1), nn.BatchNorm2d(cout)

    def forward(self, x: Tensor) -> Tensor:
        x = self.proj(x)
        return self.norm(x) if hasattr(self, "norm") else x


class MSCAN(nn.Module):
    """The MSCAN encoder: four stages at strides 4, 8, 16, 32; returns every stage's output."""

    def __init__(self, in_channels: int = 3, dims: tuple[int, ...] = (32, 64, 160, 256),
                 depths: tuple[int, ...] = (3, 3, 5, 2), mlp_ratios: tuple[float, ...] = (8, 8, 4, 4),
                 drop_path_rate: float = 0.1) -> None:
        super().__init__()
        self.dims = dims
        rates = torch.linspace(0, drop_path_rate, sum(depths)).tolist()
        for i, (dim, depth) in enumerate(zip(dims, depths)):
            setattr(self, f"patch_embed{i + 1}", PatchEmbed(in_channels if i == 0 else dims[i - 1], dim, i == 0))
            first = sum(depths[:i])
            setattr(self, f"block{i + 1}", nn.ModuleList(Block(dim, mlp_ratios[i], rates[first + j])
                                                         for j in range(depth)))
            setattr(self, f"norm{i + 1}", nn.LayerNorm(dim))
        self._init_weights()

    def _init_weights(self) -> None:
        """The authors' ``init_weights`` without a checkpoint: conv N(0, sqrt(2 / fan_out)), zero bias."""
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                fan_out = m.kernel_size[0] * m.kernel_size[1] * m.out_channels // m.groups
                nn.init.normal_(m.weight, 0.0, (2.0 / fan_out) ** 0.5)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)

    def forward(self, x: Tensor) -> list[Tensor]:
        outs = []
        for i in range(1, len(self.dims) + 1):
            x = getattr(self, f"patch_embed{i}")(x)
            for block in getattr(self, f"block{i}"):
                x = block(x)
            x = getattr(self, f"norm{i}")(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2).contiguous()
            outs.append(x)
        return outs


# --------------------------------------------------------------------------------- Ham decoder
class NMF2D(nn.Module):
    """Non-negative matrix factorisation of (B, C, H*W) into R bases by multiplicative updates (HamNet)."""

    def __init__(self, rank: int = 16, train_steps: int = 6, eval_steps: int = 7, inv_t: float = 1.0) -> None:
        super().__init__()
        self.rank, self.train_steps, self.eval_steps, self.inv_t = rank, train_steps, eval_steps, inv_t

    @staticmethod
    def _update_coef(x: Tensor, bases: Tensor, coef: Tensor) -> Tensor:
        return coef * torch.bmm(x.transpose(1, 2), bases) / (coef.bmm(bases.transpose(1, 2).bmm(bases)) + 1e-6)

    def forward(self, x: Tensor) -> Tensor:
        b, c, h, w = x.shape
        x = x.reshape(b, c, h * w)
        bases = F.normalize(torch.rand(b, c, self.rank, device=x.device), dim=1)
        coef = F.softmax(self.inv_t * torch.bmm(x.transpose(1, 2), bases), dim=-1)
        for _ in range(self.train_steps if self.training else self.eval_steps):
            coef = self._update_coef(x, bases, coef)
            bases = bases * torch.bmm(x, coef) / (bases.bmm(coef.transpose(1, 2).bmm(coef)) + 1e-6)
        coef = self._update_coef(x, bases, coef)
        return torch.bmm(bases, coef.transpose(1, 2)).reshape(b, c, h, w)


class Hamburger(nn.Module):
    """ReLU(x + GN(Conv1x1(NMF(ReLU(Conv1x1(x))))))."""

    def __init__(self, channels: int, groups: int, **nmf: int) -> None:
        super().__init__()
        self.ham_in = nn.Conv2d(channels, channels, 1)
        self.ham = NMF2D(**nmf)
        self.ham_out = conv_norm_act(channels, channels, 1, nn.GroupNorm(groups, channels), act=False)

    def forward(self, x: Tensor) -> Tensor:
        with torch.autocast(x.device.type, enabled=False):
            enjoy = self.ham(F.relu(self.ham_in(x.float())))
        return F.relu(x + self.ham_out(enjoy))


class LightHamHead(nn.Module):
    """SegNeXt's decoder on stages ``in_index`` (see the module docstring)."""

    def __init__(self, in_channels: tuple[int, ...], num_classes: int, in_index: tuple[int, ...] = (1, 2, 3),
                 channels: int = 256, ham_channels: int = 256, groups: int = 32, dropout: float = 0.1,
                 rank: int = 16, train_steps: int = 6, eval_steps: int = 7) -> None:
        super().__init__()
        self.in_index = in_index
        self.squeeze = conv_norm_act(sum(in_channels), ham_channels, 1, nn.GroupNorm(groups, ham_channels))
        self.hamburger = Hamburger(ham_channels, groups, rank=rank, train_steps=train_steps, eval_steps=eval_steps)
        self.align = conv_norm_act(ham_channels, channels, 1, nn.GroupNorm(groups, channels))
        self.cls = classifier(channels, num_classes, dropout)

    def forward(self, features: list[Tensor]) -> Tensor:
        inputs = [features[i] for i in self.in_index]
        size = inputs[0].shape[-2:]
        x = torch.cat([F.interpolate(f, size=size, mode="bilinear", align_corners=False) for f in inputs], dim=1)
        return self.cls(self.align(self.hamburger(self.squeeze(x))))


@register_model("segnext_t")
def segnext_t(num_classes: int = 150, in_channels: int = 3, pretrained_path: str | None = None,
              drop_path_rate: float = 0.1, dropout: float = 0.1) -> SegmentationModel:
    """SegNeXt-T: MSCAN-T + LightHamHead (mmseg ``segnext_mscan-t_1xb16-adamw-160k_ade20k-512x512``)."""
    file = check_pretrained(pretrained_path)
    backbone = MSCAN(in_channels, drop_path_rate=drop_path_rate)
    if file:
        load_backbone(backbone, file)
    return SegmentationModel(backbone, LightHamHead(backbone.dims[1:], num_classes, dropout=dropout))
