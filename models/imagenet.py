"""ImageNet-size networks from torchvision and timm, created without downloading weights.

``tv_resnet18/34/50``, ``tv_mobilenet_v2``, ``tv_efficientnet_b0`` (torchvision) and
``vit_tiny_patch16_224`` (timm). ``in_channels`` other than 3 replaces the stem convolution by one of
the same shape with that many input channels. ``pretrained_path`` loads a local checkpoint: a state
dict, or a dict holding one under ``state_dict`` or ``model`` (a ``module.`` prefix is stripped).
torchvision and timm are imported when a model is built (importing them costs seconds).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from bench.errors import BenchError
from models.registry import register_model


def _replace_stem(model: nn.Module, in_channels: int) -> None:
    """Swap the first Conv2d for one with ``in_channels`` inputs (same kernel, stride, padding)."""
    for parent in model.modules():
        for name, child in parent.named_children():
            if isinstance(child, nn.Conv2d):
                setattr(parent, name, nn.Conv2d(in_channels, child.out_channels, child.kernel_size, child.stride,
                                                child.padding, bias=child.bias is not None))
                return


def load_checkpoint(model: nn.Module, path: str | Path) -> nn.Module:
    """Load the weights in ``path`` into ``model`` (strict: every key must match)."""
    path = Path(path)
    if not path.is_file():
        raise BenchError(f"model.pretrained_path {path} does not exist; pass model.pretrained_path=<local file> or null")
    state: Any = torch.load(path, map_location="cpu", weights_only=True)
    for key in ("state_dict", "model"):
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
    state = {k.removeprefix("module."): v for k, v in state.items()}
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:
        first = str(exc).splitlines()[0]
        raise BenchError(f"checkpoint {path} does not fit the model ({first}); check model.name and num_classes") from exc
    return model


def _finish(model: nn.Module, in_channels: int, pretrained_path: str | None) -> nn.Module:
    if in_channels != 3:
        _replace_stem(model, in_channels)
    return load_checkpoint(model, pretrained_path) if pretrained_path else model


def _register_torchvision(name: str, builder: str) -> None:
    @register_model(name)
    def factory(num_classes: int = 1000, in_channels: int = 3, pretrained_path: str | None = None) -> nn.Module:
        import torchvision

        model = getattr(torchvision.models, builder)(weights=None, num_classes=num_classes)
        return _finish(model, in_channels, pretrained_path)

    factory.__doc__ = f"torchvision {builder} (random init, or a local checkpoint)."


for _name, _builder in (("tv_resnet18", "resnet18"), ("tv_resnet34", "resnet34"), ("tv_resnet50", "resnet50"),
                        ("tv_mobilenet_v2", "mobilenet_v2"), ("tv_efficientnet_b0", "efficientnet_b0")):
    _register_torchvision(_name, _builder)


@register_model("vit_tiny_patch16_224")
def vit_tiny_patch16_224(num_classes: int = 1000, in_channels: int = 3, pretrained_path: str | None = None,
                         image_size: int = 224, patch_size: int = 16, drop_path_rate: float = 0.0) -> nn.Module:
    """timm ViT-Tiny/16 (the PS paper's ViT-Tiny), random init or a local checkpoint; ``patch_size`` and
    ``image_size`` give its CIFAR-scale variant (32 px, patch 4), ``drop_path_rate`` DeiT's stochastic depth."""
    import timm

    model = timm.create_model("vit_tiny_patch16_224", pretrained=False, num_classes=num_classes,
                              in_chans=in_channels, img_size=image_size, patch_size=patch_size,
                              drop_path_rate=drop_path_rate)
    return load_checkpoint(model, pretrained_path) if pretrained_path else model
