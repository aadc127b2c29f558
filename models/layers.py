"""Building blocks shared by the model families: conv + BN, and a stage of residual blocks."""
from __future__ import annotations

from collections.abc import Callable

from torch import nn


def conv_bn(cin: int, cout: int, kernel: int = 1, stride: int = 1, groups: int = 1) -> nn.Sequential:
    """A bias-free ``kernel``x``kernel`` convolution ("same" padding) followed by BatchNorm."""
    return nn.Sequential(nn.Conv2d(cin, cout, kernel, stride, kernel // 2, groups=groups, bias=False),
                         nn.BatchNorm2d(cout))


def make_stage(block: Callable[[int, int], nn.Module], in_planes: int, out_planes: int, blocks: int,
               stride: int) -> nn.Sequential:
    """``blocks`` blocks ``block(in_planes, stride)``; the first has ``stride``, the rest 1, and every block
    after the first takes ``out_planes`` inputs."""
    layers = []
    for s in [stride] + [1] * (blocks - 1):
        layers.append(block(in_planes, s))
        in_planes = out_planes
    return nn.Sequential(*layers)
