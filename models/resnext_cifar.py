"""CIFAR ResNeXt-29 (Xie et al. 2017) as in kuangliu/pytorch-cifar, which AdaS and RMSGD used.

The AdaS/RMSGD code names it ``ResNeXtCIFAR``: ``ResNeXt29_1x64d`` in the RMSGD paper branch and
the AdaS HEAD, ``ResNeXt29_2x64d`` in the June-2020 AdaS code (notes/adas.md A11, notes/rmsgd.md
2.3). Structure of that code: a 1x1 stem conv (64 channels; a quirk of kuangliu's version, kept),
three stages of 3 bottleneck blocks (1x1, grouped 3x3, 1x1 with expansion 2), the bottleneck width
doubling after each stage, global average pooling and one linear layer.
"""
from __future__ import annotations

from torch import Tensor, nn
from torch.nn import functional as F

from models.layers import conv_bn, make_stage
from models.registry import register_model


class ResNeXtBlock(nn.Module):
    expansion = 2

    def __init__(self, in_planes: int, cardinality: int, width: int, stride: int) -> None:
        super().__init__()
        group_width = cardinality * width
        out_planes = self.expansion * group_width
        self.conv1 = conv_bn(in_planes, group_width)
        self.conv2 = conv_bn(group_width, group_width, 3, stride, groups=cardinality)
        self.conv3 = conv_bn(group_width, out_planes)
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or in_planes != out_planes:
            self.shortcut = conv_bn(in_planes, out_planes, 1, stride)

    def forward(self, x: Tensor) -> Tensor:
        out = self.conv3(self.conv2(self.conv1(x).relu()).relu())
        return (out + self.shortcut(x)).relu()


class ResNeXt(nn.Module):
    def __init__(self, num_blocks: list[int], cardinality: int, width: int, num_classes: int = 10,
                 in_channels: int = 3) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, 64, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        stages, in_planes = [], 64
        for i, blocks in enumerate(num_blocks):
            out_planes = ResNeXtBlock.expansion * cardinality * width
            stages.append(make_stage(lambda cin, s, w=width: ResNeXtBlock(cin, cardinality, w, s), in_planes, out_planes,
                                     blocks, 1 if i == 0 else 2))
            in_planes, width = out_planes, 2 * width  # the bottleneck width doubles after each stage
        self.layers = nn.Sequential(*stages)
        self.linear = nn.Linear(in_planes, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        out = self.layers(self.bn1(self.conv1(x)).relu())
        return self.linear(F.adaptive_avg_pool2d(out, 1).flatten(1))


def _register(cardinality: int, width: int) -> None:
    @register_model(f"resnext29_{cardinality}x{width}d")
    def factory(num_classes: int = 10, in_channels: int = 3) -> ResNeXt:
        return ResNeXt([3, 3, 3], cardinality, width, num_classes, in_channels)

    factory.__doc__ = f"CIFAR ResNeXt29 {cardinality}x{width}d."


for _cardinality, _width in ((1, 64), (2, 64)):
    _register(_cardinality, _width)
