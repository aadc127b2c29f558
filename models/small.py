"""Tiny networks for tests and smoke runs (seconds on a CPU)."""
from __future__ import annotations

from torch import nn

from models.registry import register_model


@register_model("small_cnn")
def small_cnn(num_classes: int = 10, in_channels: int = 3, width: int = 16) -> nn.Module:
    """Two conv-BN-ReLU blocks, global pooling and a linear classifier."""
    return nn.Sequential(
        nn.Conv2d(in_channels, width, 3, padding=1, bias=False), nn.BatchNorm2d(width), nn.ReLU(),
        nn.Conv2d(width, 2 * width, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(2 * width), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(2 * width, num_classes),
    )
