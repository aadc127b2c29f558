"""CIFAR SENet-18 (Hu et al. 2018) in the kuangliu/pytorch-cifar form that RMSGD's Tables 1b/8 name
(``SENet18``): a 3x3 stem, four stages of two pre-activation basic blocks (64/128/256/512 channels)
with squeeze-and-excitation (reduction 16, 1x1 convs with bias), global average pooling, one linear
layer. Reconstructed from that repository's structure; the RMSGD paper branch's copy was not read.
"""
from __future__ import annotations

from torch import Tensor, nn
from torch.nn import functional as F

from models.layers import make_stage
from models.registry import register_model


class PreActSEBlock(nn.Module):
    def __init__(self, in_planes: int, planes: int, stride: int) -> None:
        super().__init__()
        self.bn1 = nn.BatchNorm2d(in_planes)
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.shortcut: nn.Module | None = None
        if stride != 1 or in_planes != planes:
            self.shortcut = nn.Conv2d(in_planes, planes, 1, stride, bias=False)
        self.fc1 = nn.Conv2d(planes, planes // 16, 1)  # squeeze
        self.fc2 = nn.Conv2d(planes // 16, planes, 1)  # excite

    def forward(self, x: Tensor) -> Tensor:
        out = self.bn1(x).relu()
        shortcut = self.shortcut(out) if self.shortcut is not None else x
        out = self.conv2(self.bn2(self.conv1(out)).relu())
        weight = self.fc2(self.fc1(F.adaptive_avg_pool2d(out, 1)).relu()).sigmoid()
        return out * weight + shortcut


class SENet(nn.Module):
    def __init__(self, num_blocks: list[int], num_classes: int = 10, in_channels: int = 3) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, 64, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        widths = (64, 64, 128, 256, 512)
        self.layers = nn.Sequential(*(
            make_stage(lambda cin, s, p=planes: PreActSEBlock(cin, p, s), cin, planes, n, stride)
            for cin, planes, n, stride in zip(widths, widths[1:], num_blocks, (1, 2, 2, 2))))
        self.linear = nn.Linear(512, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        out = self.layers(self.bn1(self.conv1(x)).relu())
        return self.linear(F.adaptive_avg_pool2d(out, 1).flatten(1))


@register_model("senet18")
def senet18(num_classes: int = 10, in_channels: int = 3) -> SENet:
    """CIFAR SENet-18."""
    return SENet([2, 2, 2, 2], num_classes, in_channels)
