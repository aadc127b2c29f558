"""CIFAR-style ResNets (3x3 stem, no max-pool), as in kuangliu/pytorch-cifar, which the AdaS and
RMSGD papers adopted. ``width`` scales every stage (64 is the published network; the CPU demo uses
16). ResNet-18 with 10 classes has 11,173,962 parameters at width 64.
"""
from __future__ import annotations

from torch import Tensor, nn

from models.registry import register_model


class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, in_planes: int, planes: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.shortcut = _shortcut(in_planes, planes * self.expansion, stride)

    def forward(self, x: Tensor) -> Tensor:
        out = self.bn1(self.conv1(x)).relu()
        out = self.bn2(self.conv2(out))
        return (out + self.shortcut(x)).relu()


class Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, in_planes: int, planes: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, planes * self.expansion, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * self.expansion)
        self.shortcut = _shortcut(in_planes, planes * self.expansion, stride)

    def forward(self, x: Tensor) -> Tensor:
        out = self.bn1(self.conv1(x)).relu()
        out = self.bn2(self.conv2(out)).relu()
        out = self.bn3(self.conv3(out))
        return (out + self.shortcut(x)).relu()


def _shortcut(in_planes: int, out_planes: int, stride: int) -> nn.Module:
    if stride == 1 and in_planes == out_planes:
        return nn.Sequential()
    return nn.Sequential(nn.Conv2d(in_planes, out_planes, 1, stride, bias=False), nn.BatchNorm2d(out_planes))


class ResNet(nn.Module):
    def __init__(self, block: type[BasicBlock] | type[Bottleneck], num_blocks: list[int], num_classes: int = 10,
                 in_channels: int = 3, width: int = 64) -> None:
        super().__init__()
        self.in_planes = width
        self.conv1 = nn.Conv2d(in_channels, width, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.layer1 = self._stage(block, width, num_blocks[0], 1)
        self.layer2 = self._stage(block, 2 * width, num_blocks[1], 2)
        self.layer3 = self._stage(block, 4 * width, num_blocks[2], 2)
        self.layer4 = self._stage(block, 8 * width, num_blocks[3], 2)
        self.linear = nn.Linear(8 * width * block.expansion, num_classes)

    def _stage(self, block: type[BasicBlock] | type[Bottleneck], planes: int, blocks: int, stride: int) -> nn.Sequential:
        layers = []
        for s in [stride] + [1] * (blocks - 1):
            layers.append(block(self.in_planes, planes, s))
            self.in_planes = planes * block.expansion
        return nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        out = self.bn1(self.conv1(x)).relu()
        out = self.layer4(self.layer3(self.layer2(self.layer1(out))))
        out = nn.functional.adaptive_avg_pool2d(out, 1).flatten(1)
        return self.linear(out)


_DEPTHS = {
    "resnet18": (BasicBlock, [2, 2, 2, 2]),
    "resnet34": (BasicBlock, [3, 4, 6, 3]),
    "resnet50": (Bottleneck, [3, 4, 6, 3]),
    "resnet101": (Bottleneck, [3, 4, 23, 3]),
}


def _register(name: str) -> None:
    block, blocks = _DEPTHS[name]

    @register_model(name)
    def factory(num_classes: int = 10, in_channels: int = 3, width: int = 64) -> ResNet:
        return ResNet(block, blocks, num_classes, in_channels, width)

    factory.__doc__ = f"CIFAR-style {name} (blocks {blocks})."


for _name in _DEPTHS:
    _register(_name)
