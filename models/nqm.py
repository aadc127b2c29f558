"""The noisy quadratic model as a "network": the parameter is the point x (AutoDrop Section 3, Eq. 3)."""
from __future__ import annotations

import torch
from torch import Tensor, nn

from models.registry import register_model


def nqm_curvature(dim: int) -> Tensor:
    """The diagonal of A = diag(1/10, 2/10, ..., dim/10) (AutoDrop Section 3)."""
    return torch.arange(1, dim + 1, dtype=torch.float32) / 10


class NoisyQuadratic(nn.Module):
    """L(x; c) = 0.5 (x - c)^T A (x - c) with A = diag(i / 10); ``forward(c)`` gives one loss per row of c."""

    def __init__(self, dim: int = 200, x0: float = 10.0) -> None:
        super().__init__()
        self.x = nn.Parameter(torch.full((dim,), float(x0)))
        self.register_buffer("curvature", nqm_curvature(dim))

    def forward(self, c: Tensor) -> Tensor:
        return 0.5 * ((self.x - c).square() * self.curvature).sum(dim=1)


@register_model("nqm")
def nqm(num_classes: int = 0, in_channels: int = 0, dim: int = 200, x0: float = 10.0) -> nn.Module:
    """The NQM point x in R^dim, started at x0 * (1, ..., 1); ``num_classes``/``in_channels`` are unused."""
    return NoisyQuadratic(dim, x0)
