"""The noisy quadratic model (NQM) of AutoDrop (Section 3, Eq. 3-4), as a complete workload.

The "model" is the point x in R^dim, started at x0 * (1, ..., 1); the loss of a target c is
L(x; c) = 0.5 (x - c)^T A (x - c) with A = diag(1/10, 2/10, ..., dim/10). Training batches hold
targets c ~ N(0, Sigma) generated from (seed, epoch), so a resumed run sees the same samples; the
"test set" is c = 0, i.e. the noiseless loss 0.5 x^T A x. Primary metric ``test_loss`` (lower is
better). Settings and the choices the paper leaves open: ``conf/workload/nqm.yaml``.
"""
from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import torch
from torch import Tensor, nn

from bench.data.loader import epoch_seed
from bench.errors import BenchError
from bench.workloads.base import Metric
from bench.workloads.batch import BatchWorkload, Evaluator, MeanEvaluator

NOISE = ("identity", "inverse_curvature")


def nqm_curvature(dim: int) -> Tensor:
    """The diagonal of A = diag(1/10, 2/10, ..., dim/10) (AutoDrop Section 3)."""
    return torch.arange(1, dim + 1, dtype=torch.float32) / 10


class NoisyQuadratic(nn.Module):
    """L(x; c) = 0.5 (x - c)^T A (x - c) (Eq. 3); ``forward(c)`` gives one loss per row of c."""

    def __init__(self, dim: int = 200, x0: float = 10.0) -> None:
        super().__init__()
        self.x = nn.Parameter(torch.full((dim,), float(x0)))
        self.register_buffer("curvature", nqm_curvature(dim))

    def forward(self, c: Tensor) -> Tensor:
        return 0.5 * ((self.x - c).square() * self.curvature).sum(dim=1)


class NoiseLoader:
    """Batches of NQM targets c ~ N(0, Sigma), Sigma = scale * (I or A^-1); targets are unused zeros."""

    def __init__(self, std: Tensor, *, batch_size: int, steps: int, device: torch.device, seed: int,
                 zero: bool = False) -> None:
        self.std, self.batch_size, self.steps, self.seed, self.zero = std.to(device), batch_size, steps, seed, zero
        self.device = device

    def __len__(self) -> int:
        return self.steps

    def epoch(self, epoch: int) -> Iterator[tuple[Tensor, Tensor]]:
        generator = torch.Generator().manual_seed(epoch_seed(self.seed, epoch))
        targets = torch.zeros(self.batch_size, dtype=torch.int64, device=self.device)
        for _ in range(self.steps):
            if self.zero:
                yield torch.zeros(self.batch_size, len(self.std), device=self.device), targets
            else:
                noise = torch.randn(self.batch_size, len(self.std), generator=generator).to(self.device)
                yield noise * self.std, targets


class NQM(BatchWorkload):
    """Minimise the mean NQM loss over batches of noisy targets."""

    name = "nqm"
    primary = Metric("test_loss", "min")

    def __init__(self, cfg: dict[str, Any], device: torch.device, data: Any = None) -> None:
        super().__init__(cfg, device)
        w, trainer = cfg["workload"], cfg["trainer"]
        if w["noise"] not in NOISE:
            raise BenchError(f"workload.noise must be one of {NOISE}, got {w['noise']!r}")
        variance = torch.full((w["dim"],), float(w["noise_scale"]))
        if w["noise"] == "inverse_curvature":
            variance = variance / nqm_curvature(w["dim"])
        self.train_loader = NoiseLoader(variance.sqrt(), batch_size=trainer["batch_size"],
                                        steps=w["steps_per_epoch"], device=device, seed=cfg["seed"])
        self.test_loader = NoiseLoader(variance.sqrt(), batch_size=1, steps=1, device=device, seed=0, zero=True)
        self.model = NoisyQuadratic(w["dim"], w["x0"]).to(device)

    def data_record(self) -> dict[str, Any]:
        keys = ("dim", "noise", "noise_scale", "steps_per_epoch")
        return {"dataset": self.name, "provenance": "synthetic", "source": {"kind": "generated"}, "lossy": False,
                **{k: self.cfg["workload"][k] for k in keys},
                "train_examples": self.train_loader.steps * self.train_loader.batch_size, "test_examples": 1}

    def loss(self, model: nn.Module, inputs: Tensor, targets: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        losses = model(inputs)
        return losses.mean(), {"loss": losses.detach().sum()}

    def evaluator(self) -> Evaluator:
        return MeanEvaluator(lambda model, inputs, targets: {"loss": model(inputs).sum()})
