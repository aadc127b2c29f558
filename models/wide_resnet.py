"""Wide ResNets WRN-d-k for CIFAR (Zagoruyko & Komodakis 2016), as in the implementation AutoDrop
used (meliketoy/wide-resnet.pytorch, cited by the AutoDrop paper; notes/autodrop.md "Models"):

- pre-activation blocks BN-ReLU-conv3x3-(dropout)-BN-ReLU-conv3x3, the stride on the second conv,
  a 1x1 projection shortcut where the shape changes; every conv has a bias;
- stage widths 16, 16k, 32k, 64k with n = (d - 4) / 6 blocks per stage;
- a final BN whose ``momentum=0.9`` (PyTorch convention: the running statistics move 90 % towards each
  batch) is a quirk of that code, kept as ``final_bn_momentum`` (0.1 is PyTorch's default);
- PyTorch default initialisation (that code's Xavier ``conv_init`` is never called).
AutoDrop runs them without dropout (``dropout=0``). WRN-28-10 has 36.5M parameters.
"""
from __future__ import annotations

from torch import Tensor, nn
from torch.nn import functional as F

from models.layers import make_stage
from models.registry import register_model


class WideBlock(nn.Module):
    """Pre-activation wide basic block."""

    def __init__(self, in_planes: int, planes: int, stride: int, dropout: float) -> None:
        super().__init__()
        self.bn1 = nn.BatchNorm2d(in_planes)
        self.conv1 = nn.Conv2d(in_planes, planes, 3, 1, 1, bias=True)
        self.dropout = nn.Dropout(dropout)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride, 1, bias=True)
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or in_planes != planes:
            self.shortcut = nn.Conv2d(in_planes, planes, 1, stride, bias=True)

    def forward(self, x: Tensor) -> Tensor:
        out = self.dropout(self.conv1(self.bn1(x).relu()))
        out = self.conv2(self.bn2(out).relu())
        return out + self.shortcut(x)


class WideResNet(nn.Module):
    """WRN-``depth``-``widen``."""

    def __init__(self, depth: int, widen: int, num_classes: int = 10, in_channels: int = 3,
                 dropout: float = 0.0, final_bn_momentum: float = 0.9) -> None:
        super().__init__()
        if (depth - 4) % 6:
            raise ValueError(f"WRN depth must be 6n + 4, got {depth}")
        n = (depth - 4) // 6
        widths = [16, 16 * widen, 32 * widen, 64 * widen]
        self.conv1 = nn.Conv2d(in_channels, widths[0], 3, 1, 1, bias=True)
        self.layer1, self.layer2, self.layer3 = (
            make_stage(lambda cin, s, p=planes: WideBlock(cin, p, s, dropout), cin, planes, n, stride)
            for cin, planes, stride in zip(widths[:3], widths[1:], (1, 2, 2)))
        self.bn = nn.BatchNorm2d(widths[3], momentum=final_bn_momentum)
        self.linear = nn.Linear(widths[3], num_classes)

    def forward(self, x: Tensor) -> Tensor:
        out = self.layer3(self.layer2(self.layer1(self.conv1(x))))
        out = F.adaptive_avg_pool2d(self.bn(out).relu(), 1).flatten(1)
        return self.linear(out)


def _register(depth: int, widen: int) -> None:
    @register_model(f"wrn{depth}_{widen}")
    def factory(num_classes: int = 10, in_channels: int = 3, dropout: float = 0.0,
                final_bn_momentum: float = 0.9) -> WideResNet:
        return WideResNet(depth, widen, num_classes, in_channels, dropout, final_bn_momentum)

    factory.__doc__ = f"WRN-{depth}-{widen}."


for _depth, _widen in ((28, 10), (40, 10)):
    _register(_depth, _widen)
