"""The estimated-learning-rate reading that every learning-rate-free optimizer reports.

A class mixes in ``EstimatedLRLog`` and implements ``estimated_lr()`` (a float, or None before the
first step). The mixin then provides the protocol's ``epoch_log()`` -> ``{"est_lr": value}`` (the
value after the epoch's last step; the run record keeps it under ``history[i]["optim"]``) and, when
``log_lr_every=N > 0``, an ``end_step`` hook that also keeps every N-th step's value as
``"est_lr_steps": [[global_step, value], ...]`` for that epoch. The trainer checks
``estimated_lr()`` for NaN/Inf at its divergence checks (``bench/trainer.py``), so an exploding
estimate ends the run as ``diverged``. ``bench/figures/lr_estimates.py`` plots these values.
"""
from __future__ import annotations

import math
from typing import Any

import torch

from optimizers.torch_compat import KeepsAttributes


def as_float(value: float | torch.Tensor | None) -> float | None:
    """A plain float (None stays None)."""
    if value is None:
        return None
    return float(value.item() if isinstance(value, torch.Tensor) else value)


class EstimatedLRLog(KeepsAttributes):
    """Mixin: ``epoch_log`` and an optional per-step trace built on ``estimated_lr()`` (deepcopy and
    pickle keep its attributes, see ``optimizers.torch_compat``)."""

    log_lr_every: int = 0

    def estimated_lr(self) -> float | None:
        raise NotImplementedError

    def _init_lr_log(self, log_lr_every: int) -> None:
        if not isinstance(log_lr_every, int) or log_lr_every < 0:
            raise ValueError(f"log_lr_every must be a non-negative integer, got {log_lr_every!r}")
        self.log_lr_every = log_lr_every
        self._lr_steps: list[list[float]] = []

    def end_step(self, step: int) -> None:
        if self.log_lr_every and step % self.log_lr_every == 0:
            value = self.estimated_lr()
            if value is not None:
                self._lr_steps.append([step, value])

    def epoch_log(self) -> dict[str, Any]:
        value = self.estimated_lr()
        row: dict[str, Any] = {"est_lr": value if value is None or math.isfinite(value) else str(value)}
        if self.log_lr_every:
            row["est_lr_steps"], self._lr_steps = self._lr_steps, []
        return row
