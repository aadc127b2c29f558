"""CIFAR ShuffleNetV2 (Ma et al. 2018) in the kuangliu/pytorch-cifar form RMSGD names
(``ShuffleNetV2CIFAR(net_size=1.5)``, Tables 1b/8): a stride-1 3x3 stem of 24 channels and no
max-pool, three stages of one down-sampling unit plus (3, 7, 3) basic units with channel split and
shuffle, a 1x1 conv to 1024 channels, global average pooling and one linear layer. Reconstructed from
that repository's structure; the RMSGD paper branch's copy was not read.
"""
from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from models.layers import conv_bn
from models.registry import register_model

WIDTHS = {0.5: (48, 96, 192, 1024), 1.0: (116, 232, 464, 1024), 1.5: (176, 352, 704, 1024), 2.0: (224, 488, 976, 2048)}


def channel_shuffle(x: Tensor, groups: int = 2) -> Tensor:
    n, c, h, w = x.shape
    return x.view(n, groups, c // groups, h, w).transpose(1, 2).reshape(n, c, h, w)


class BasicUnit(nn.Module):
    """Split the channels in halves; transform one (1x1, depthwise 3x3, 1x1); concatenate; shuffle."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        half = channels // 2
        self.conv1, self.conv2, self.conv3 = conv_bn(half, half), conv_bn(half, half, 3, groups=half), conv_bn(half, half)

    def forward(self, x: Tensor) -> Tensor:
        keep, work = x.chunk(2, dim=1)
        work = self.conv3(self.conv2(self.conv1(work).relu())).relu()
        return channel_shuffle(torch.cat([keep, work], 1))


class DownUnit(nn.Module):
    """Two stride-2 branches (depthwise-pointwise and pointwise-depthwise-pointwise), concatenated."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        mid = cout // 2
        self.left1, self.left2 = conv_bn(cin, cin, 3, 2, groups=cin), conv_bn(cin, mid)
        self.right1, self.right2, self.right3 = conv_bn(cin, mid), conv_bn(mid, mid, 3, 2, groups=mid), conv_bn(mid, mid)

    def forward(self, x: Tensor) -> Tensor:
        left = self.left2(self.left1(x)).relu()
        right = self.right3(self.right2(self.right1(x).relu())).relu()
        return channel_shuffle(torch.cat([left, right], 1))


class ShuffleNetV2(nn.Module):
    def __init__(self, net_size: float = 1.5, num_classes: int = 10, in_channels: int = 3) -> None:
        super().__init__()
        widths = WIDTHS[net_size]
        self.stem = conv_bn(in_channels, 24, 3)
        units: list[nn.Module] = []
        cin = 24
        for cout, n in zip(widths[:3], (3, 7, 3)):
            units += [DownUnit(cin, cout)] + [BasicUnit(cout) for _ in range(n)]
            cin = cout
        self.units = nn.Sequential(*units)
        self.head = conv_bn(widths[2], widths[3])
        self.linear = nn.Linear(widths[3], num_classes)

    def forward(self, x: Tensor) -> Tensor:
        out = self.head(self.units(self.stem(x).relu())).relu()
        return self.linear(F.adaptive_avg_pool2d(out, 1).flatten(1))


@register_model("shufflenetv2")
def shufflenetv2(num_classes: int = 10, in_channels: int = 3, net_size: float = 1.5) -> ShuffleNetV2:
    """CIFAR ShuffleNetV2 (net_size 1.5 as RMSGD)."""
    return ShuffleNetV2(net_size, num_classes, in_channels)
