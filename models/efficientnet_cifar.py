"""CIFAR EfficientNet-B0 (Tan & Le 2019) in the kuangliu/pytorch-cifar form that RMSGD's Tables 1b/8
name (``EfficientNetB0``): a stride-1 3x3 stem of 32 channels, the B0 stages of MBConv blocks
(expansion, width, repeats, kernel, stride) with swish, squeeze-and-excitation (ratio 0.25 of the
block input) and drop-connect rising linearly to 0.2, then global pooling, dropout 0.2 and one linear
layer from 320 channels (no 1280-channel head conv in that version). Reconstructed from that
repository's structure; the RMSGD paper branch's own builder (``EfficientNetBuild``) was not read.
Deviation: blocks with expansion 1 get no expansion conv (that version creates one and never uses it).
"""
from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from models.layers import conv_bn
from models.registry import register_model

# (expansion, out_channels, repeats, kernel, stride)
B0 = [(1, 16, 1, 3, 1), (6, 24, 2, 3, 2), (6, 40, 2, 5, 2), (6, 80, 3, 3, 2), (6, 112, 3, 5, 1), (6, 192, 4, 5, 2),
      (6, 320, 1, 3, 1)]


class MBConv(nn.Module):
    def __init__(self, cin: int, cout: int, kernel: int, stride: int, expansion: int, drop_rate: float) -> None:
        super().__init__()
        mid = expansion * cin
        self.expand = None if expansion == 1 else conv_bn(cin, mid)
        self.depthwise = conv_bn(mid, mid, kernel, stride, groups=mid)
        se = int(cin * 0.25)
        self.se1, self.se2 = nn.Conv2d(mid, se, 1), nn.Conv2d(se, mid, 1)
        self.project = conv_bn(mid, cout)
        self.skip, self.drop_rate = stride == 1 and cin == cout, drop_rate

    def forward(self, x: Tensor) -> Tensor:
        out = x if self.expand is None else F.silu(self.expand(x))
        out = F.silu(self.depthwise(out))
        out = out * self.se2(F.silu(self.se1(F.adaptive_avg_pool2d(out, 1)))).sigmoid()
        out = self.project(out)
        if not self.skip:
            return out
        if self.training and self.drop_rate > 0:  # drop-connect: drop the residual branch per example
            keep = 1 - self.drop_rate
            out = out * torch.bernoulli(torch.full((out.shape[0], 1, 1, 1), keep, device=out.device)) / keep
        return out + x


class EfficientNetCifar(nn.Module):
    def __init__(self, num_classes: int = 10, in_channels: int = 3, dropout: float = 0.2,
                 drop_connect: float = 0.2) -> None:
        super().__init__()
        self.stem = conv_bn(in_channels, 32, 3)
        total, blocks, cin = sum(r for _, _, r, _, _ in B0), [], 32
        for expansion, cout, repeats, kernel, stride in B0:
            for s in [stride] + [1] * (repeats - 1):
                blocks.append(MBConv(cin, cout, kernel, s, expansion, drop_connect * len(blocks) / total))
                cin = cout
        self.blocks = nn.Sequential(*blocks)
        self.dropout = nn.Dropout(dropout)
        self.linear = nn.Linear(cin, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        out = self.blocks(F.silu(self.stem(x)))
        return self.linear(self.dropout(F.adaptive_avg_pool2d(out, 1).flatten(1)))


@register_model("efficientnetb0")
def efficientnetb0(num_classes: int = 10, in_channels: int = 3) -> EfficientNetCifar:
    """CIFAR EfficientNet-B0."""
    return EfficientNetCifar(num_classes, in_channels)
