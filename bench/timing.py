"""Time accounting of a run (AlgoPerf's habit): where the wall time went, in every record.

Phases: ``data`` (finding/preparing the data and building the loaders or environments), ``build``
(models, optimizers, a resume), ``train`` (training steps, without evaluation), ``eval``,
``checkpoint``; plus the time from the start to the end of the first optimizer step, and the
training throughput. On CUDA every reading synchronises the device first, so queued kernels are
charged to the phase that queued them. Totals survive a resume (they are in the checkpoint).
"""
from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch

PHASES = ("data", "build", "train", "eval", "checkpoint")


class Stopwatch:
    """Accumulates wall time per phase, and counts what the training phase processed."""

    def __init__(self, device: torch.device | None = None) -> None:
        self.device = device
        self.seconds: dict[str, float] = dict.fromkeys(PHASES, 0.0)
        self.trained = 0          # examples (or environment steps) the training phase processed
        self.unit = "examples"
        self.first_step_s: float | None = None
        self.started = time.perf_counter()

    def _now(self) -> float:
        if self.device is not None and self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        return time.perf_counter()

    @contextmanager
    def phase(self, name: str) -> Iterator[None]:
        """Charge the time spent inside to ``name``."""
        start = self._now()
        try:
            yield
        finally:
            self.seconds[name] = self.seconds.get(name, 0.0) + self._now() - start

    def first_step_done(self) -> None:
        """Note the time to the end of the first optimizer step of this process (once)."""
        if self.first_step_s is None:
            self.first_step_s = self._now() - self.started

    def count(self, n: int, unit: str = "examples") -> None:
        self.trained += n
        self.unit = unit

    def state_dict(self) -> dict[str, Any]:
        return {"seconds": dict(self.seconds), "trained": self.trained, "unit": self.unit,
                "first_step_s": self.first_step_s}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Continue the totals of the run's earlier segments (the time to its first step is the first segment's)."""
        for name, value in state["seconds"].items():
            self.seconds[name] = self.seconds.get(name, 0.0) + value
        self.trained, self.unit = self.trained + state["trained"], state["unit"]
        self.first_step_s = state["first_step_s"]

    def summary(self) -> dict[str, Any]:
        """The record's ``time`` block."""
        train = self.seconds["train"]
        return {**{f"{name}_s": round(value, 3) for name, value in self.seconds.items()},
                "first_step_s": None if self.first_step_s is None else round(self.first_step_s, 3),
                f"train_{self.unit}": self.trained,
                f"{self.unit}_per_s": round(self.trained / train, 2) if train > 0 else None}
