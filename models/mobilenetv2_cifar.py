"""CIFAR MobileNetV2 as in kuangliu/pytorch-cifar (RMSGD's ``MobileNetV2CIFAR``, Table 1b/8).

Differences from the ImageNet network (Sandler et al. 2018), all from that code: a stride-1 3x3
stem, stride 1 in the second stage (so 32x32 inputs end at 4x4), ReLU instead of ReLU6, an
expansion 1x1 conv even where the expansion factor is 1, and a 1x1 conv + BN shortcut in stride-1
blocks whose channel count changes.
"""
from __future__ import annotations

from torch import Tensor, nn
from torch.nn import functional as F

from models.layers import conv_bn
from models.registry import register_model

# (expansion, out_planes, blocks, stride of the first block)
CFG = [(1, 16, 1, 1), (6, 24, 2, 1), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1)]


class InvertedResidual(nn.Module):
    def __init__(self, in_planes: int, out_planes: int, expansion: int, stride: int) -> None:
        super().__init__()
        planes = expansion * in_planes
        self.stride = stride
        self.expand = conv_bn(in_planes, planes)
        self.depthwise = conv_bn(planes, planes, 3, stride, groups=planes)
        self.project = conv_bn(planes, out_planes)
        self.shortcut: nn.Module = nn.Identity()
        if stride == 1 and in_planes != out_planes:
            self.shortcut = conv_bn(in_planes, out_planes)

    def forward(self, x: Tensor) -> Tensor:
        out = self.project(self.depthwise(self.expand(x).relu()).relu())
        return out + self.shortcut(x) if self.stride == 1 else out


class MobileNetV2(nn.Module):
    def __init__(self, num_classes: int = 10, in_channels: int = 3) -> None:
        super().__init__()
        self.stem = conv_bn(in_channels, 32, 3)
        blocks, in_planes = [], 32
        for expansion, out_planes, n, stride in CFG:
            for s in [stride] + [1] * (n - 1):
                blocks.append(InvertedResidual(in_planes, out_planes, expansion, s))
                in_planes = out_planes
        self.layers = nn.Sequential(*blocks)
        self.head = conv_bn(320, 1280)
        self.linear = nn.Linear(1280, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        out = self.head(self.layers(self.stem(x).relu())).relu()
        return self.linear(F.adaptive_avg_pool2d(out, 1).flatten(1))


@register_model("mobilenetv2")
def mobilenetv2(num_classes: int = 10, in_channels: int = 3) -> MobileNetV2:
    """CIFAR MobileNetV2 (kuangliu variant)."""
    return MobileNetV2(num_classes, in_channels)
