"""ResNet-32 for CIFAR (He et al. 2016, Sect. 4.2): a 3x3 stem of 16 channels, three stages of
n = 5 basic blocks with 16/32/64 channels (6n + 2 = 32 layers), global average pooling, one linear
layer. 0.46M parameters, as in He et al. Table 6.

Used by the PS paper (Table 3, CIFAR-100, BatchNorm kept). That paper does not say which shortcut it
used; ``shortcut="A"`` (He et al.'s CIFAR choice: identity with stride-2 subsampling and zero-padded
channels, no parameters) is the default, ``"B"`` (1x1 projection + BN where the shape changes) is
the alternative. Initialisation: Kaiming-normal convolutions and linear layer (He et al. 2015, as the
paper's Sect. 4.2 states), BN weight 1 / bias 0.
"""
from __future__ import annotations

from torch import Tensor, nn
from torch.nn import functional as F

from models.layers import make_stage
from models.registry import register_model


class PadShortcut(nn.Module):
    """Option A: subsample by ``stride`` and zero-pad the new channels (no parameters)."""

    def __init__(self, extra_channels: int, stride: int) -> None:
        super().__init__()
        self.extra, self.stride = extra_channels, stride

    def forward(self, x: Tensor) -> Tensor:
        x = x[:, :, ::self.stride, ::self.stride]
        half = self.extra // 2
        return F.pad(x, (0, 0, 0, 0, half, self.extra - half))


class HeBlock(nn.Module):
    """conv3x3-BN-ReLU-conv3x3-BN, plus the shortcut, then ReLU."""

    def __init__(self, in_planes: int, planes: int, stride: int, shortcut: str) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or in_planes != planes:
            if shortcut == "A":
                self.shortcut = PadShortcut(planes - in_planes, stride)
            else:
                self.shortcut = nn.Sequential(nn.Conv2d(in_planes, planes, 1, stride, bias=False),
                                              nn.BatchNorm2d(planes))

    def forward(self, x: Tensor) -> Tensor:
        out = self.bn1(self.conv1(x)).relu()
        out = self.bn2(self.conv2(out))
        return (out + self.shortcut(x)).relu()


class HeResNet(nn.Module):
    """The 6n+2-layer CIFAR ResNet of He et al. (2016)."""

    def __init__(self, n: int, num_classes: int = 10, in_channels: int = 3, shortcut: str = "A") -> None:
        super().__init__()
        if shortcut not in ("A", "B"):
            raise ValueError(f"shortcut must be 'A' or 'B', got {shortcut!r}")
        self.conv1 = nn.Conv2d(in_channels, 16, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(16)
        self.layer1, self.layer2, self.layer3 = (
            make_stage(lambda cin, s, p=planes: HeBlock(cin, p, s, shortcut), cin, planes, n, stride)
            for cin, planes, stride in ((16, 16, 1), (16, 32, 2), (32, 64, 2)))
        self.linear = nn.Linear(64, num_classes)
        for module in self.modules():
            if isinstance(module, (nn.Conv2d, nn.Linear)):
                nn.init.kaiming_normal_(module.weight)

    def forward(self, x: Tensor) -> Tensor:
        out = self.bn1(self.conv1(x)).relu()
        out = self.layer3(self.layer2(self.layer1(out)))
        return self.linear(F.adaptive_avg_pool2d(out, 1).flatten(1))


@register_model("resnet32")
def resnet32(num_classes: int = 10, in_channels: int = 3, shortcut: str = "A") -> HeResNet:
    """ResNet-32 (n = 5)."""
    return HeResNet(5, num_classes, in_channels, shortcut)
