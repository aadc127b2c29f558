"""CIFAR DenseNets as in kuangliu/pytorch-cifar, which AdaS used (notes/adas.md A11).

A 3x3 stem of 2*growth channels (no max-pool), four dense blocks of BN-ReLU-conv1x1(4*growth)-
BN-ReLU-conv3x3(growth) layers with [6, 12, 24, 16] layers, transitions BN-ReLU-conv1x1 (compression
0.5)-avgpool2, then BN-ReLU, global average pooling and one linear layer.

``densenet121``: growth 32 (the DenseNet-121 of Huang et al. with a CIFAR stem);
``densenet_cifar``: growth 12, what the AdaS code runs as ``DenseNet121CIFAR``.
"""
from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from models.registry import register_model


class DenseLayer(nn.Module):
    def __init__(self, in_planes: int, growth: int) -> None:
        super().__init__()
        self.bn1 = nn.BatchNorm2d(in_planes)
        self.conv1 = nn.Conv2d(in_planes, 4 * growth, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(4 * growth)
        self.conv2 = nn.Conv2d(4 * growth, growth, 3, padding=1, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        out = self.conv1(self.bn1(x).relu())
        out = self.conv2(self.bn2(out).relu())
        return torch.cat([out, x], 1)


class Transition(nn.Module):
    def __init__(self, in_planes: int, out_planes: int) -> None:
        super().__init__()
        self.bn = nn.BatchNorm2d(in_planes)
        self.conv = nn.Conv2d(in_planes, out_planes, 1, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        return F.avg_pool2d(self.conv(self.bn(x).relu()), 2)


class DenseNet(nn.Module):
    def __init__(self, blocks: list[int], growth: int, num_classes: int = 10, in_channels: int = 3,
                 reduction: float = 0.5) -> None:
        super().__init__()
        planes = 2 * growth
        self.conv1 = nn.Conv2d(in_channels, planes, 3, padding=1, bias=False)
        stages: list[nn.Module] = []
        for i, n in enumerate(blocks):
            for _ in range(n):
                stages.append(DenseLayer(planes, growth))
                planes += growth
            if i < len(blocks) - 1:
                out_planes = int(planes * reduction)
                stages.append(Transition(planes, out_planes))
                planes = out_planes
        self.features = nn.Sequential(*stages)
        self.bn = nn.BatchNorm2d(planes)
        self.linear = nn.Linear(planes, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        out = self.bn(self.features(self.conv1(x))).relu()
        return self.linear(F.adaptive_avg_pool2d(out, 1).flatten(1))


@register_model("densenet121")
def densenet121(num_classes: int = 10, in_channels: int = 3) -> DenseNet:
    """DenseNet-121 (growth 32) with a CIFAR stem."""
    return DenseNet([6, 12, 24, 16], 32, num_classes, in_channels)


@register_model("densenet_cifar")
def densenet_cifar(num_classes: int = 10, in_channels: int = 3) -> DenseNet:
    """The growth-12 DenseNet the AdaS code calls DenseNet121CIFAR."""
    return DenseNet([6, 12, 24, 16], 12, num_classes, in_channels)
