"""Epoch-level learning-rate schedules, selected by ``optim.schedule.name``.

Every schedule follows ``optimizers.protocol``: ``end_epoch(epoch)`` after each training epoch and
``state_dict``/``load_state_dict`` for resume. The PyTorch schedulers are used where they exist.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch.optim.lr_scheduler import CosineAnnealingLR, LRScheduler, MultiStepLR, StepLR

from bench.errors import BenchError
from optimizers.autodrop import AutoDrop


class TorchEpochSchedule:
    """Adapts a PyTorch ``LRScheduler`` stepped once per epoch to the bench protocol."""

    def __init__(self, scheduler: LRScheduler) -> None:
        self.scheduler = scheduler

    def end_epoch(self, epoch: int) -> None:
        self.scheduler.step()

    def state_dict(self) -> dict[str, Any]:
        return self.scheduler.state_dict()

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.scheduler.load_state_dict(state)


class Constant:
    """Keeps the optimizer's learning rates (and lets the optimizer adapt them itself)."""

    def end_epoch(self, epoch: int) -> None:
        pass

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        pass


def _step(optimizer: torch.optim.Optimizer, epochs: int, step_size: int, gamma: float) -> TorchEpochSchedule:
    """Multiply the LR by ``gamma`` every ``step_size`` epochs (AdaS/RMSGD "StepLR": 25, 0.5)."""
    return TorchEpochSchedule(StepLR(optimizer, step_size=step_size, gamma=gamma))


def _multistep(optimizer: torch.optim.Optimizer, epochs: int, milestones: list[int], gamma: float) -> TorchEpochSchedule:
    """Multiply the LR by ``gamma`` at each milestone epoch (AutoDrop: [60,120,160] x0.2)."""
    return TorchEpochSchedule(MultiStepLR(optimizer, milestones=list(milestones), gamma=gamma))


def _cosine(optimizer: torch.optim.Optimizer, epochs: int, eta_min: float = 0.0) -> TorchEpochSchedule:
    """Cosine annealing over the run's epochs."""
    return TorchEpochSchedule(CosineAnnealingLR(optimizer, T_max=epochs, eta_min=eta_min))


def _constant(optimizer: torch.optim.Optimizer, epochs: int) -> Constant:
    return Constant()


def _autodrop(optimizer: torch.optim.Optimizer, epochs: int, **options: Any) -> AutoDrop:
    """AutoDrop (optimizers/autodrop.py) on top of any optimizer; options as in ``AutoDrop``."""
    try:
        return AutoDrop(optimizer, epochs, **options)
    except (TypeError, ValueError) as exc:
        raise BenchError(f"optim.schedule (autodrop): {exc}; see optimizers/autodrop.py for the options") from exc


SCHEDULES: dict[str, Callable[..., Any]] = {
    "constant": _constant,
    "step": _step,
    "multistep": _multistep,
    "cosine": _cosine,
    "autodrop": _autodrop,
}


def build_schedule(optimizer: torch.optim.Optimizer, epochs: int, name: str, **options: Any) -> Any:
    """The schedule ``name`` acting on ``optimizer`` over ``epochs`` epochs."""
    return SCHEDULES[name](optimizer, epochs, **options)
