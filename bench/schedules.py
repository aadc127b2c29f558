"""Learning-rate schedules, the ``schedule`` config group (``conf/schedule/``).

Every schedule follows ``optimizers.protocol``: ``end_epoch(epoch)`` after each training epoch,
``end_step(step)`` after each optimizer step (per-step schedules), and ``state_dict`` /
``load_state_dict`` for resume. The PyTorch schedulers are used where they exist. A schedule
multiplies or sets ``group["lr"]``; for optimizers with per-layer rates (AdaS, RMSGD) the group LR
is a multiplier of those rates.

``schedule=auto`` (the default) is resolved before a run by ``resolve_schedule``: ``constant`` for
optimizers that set their own learning rate (``optim.sets_own_lr: true``: AdaS, RMSGD, SLS, the
LR-free methods); the preset's ``baseline_schedule`` for the optimizers it names in
``baseline_schedule_for`` (``all``: every hand-tuned optimizer, as RMSGD's tables; ``[sgd]``: only
SGD, as AdaS Table 1's SGD-StepLR beside constant-LR AdaM and AdaBound); ``constant`` otherwise.
"""
from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch
from torch.optim.lr_scheduler import CosineAnnealingLR, LambdaLR, LRScheduler, MultiStepLR, StepLR

from bench.errors import BenchError
from optimizers.autodrop import AutoDrop

AUTO = "auto"
WARMUP_STYLES = ("mmseg1", "mmcv0")  # poly warm-up: mmsegmentation 1.x or 0.x (poly_factor)


class TorchSchedule:
    """Adapts a PyTorch ``LRScheduler`` stepped once per epoch (or once per step) to the protocol."""

    def __init__(self, scheduler: LRScheduler, per_step: bool = False) -> None:
        self.scheduler, self.per_step = scheduler, per_step

    def end_epoch(self, epoch: int) -> None:
        if not self.per_step:
            self.scheduler.step()

    def end_step(self, step: int) -> None:
        if self.per_step:
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


def _step(optimizer: torch.optim.Optimizer, epochs: int, steps_per_epoch: int, step_size: int,
          gamma: float) -> TorchSchedule:
    """Multiply the LR by ``gamma`` every ``step_size`` epochs (AdaS/RMSGD "StepLR": 25, 0.5)."""
    return TorchSchedule(StepLR(optimizer, step_size=step_size, gamma=gamma))


def _multistep(optimizer: torch.optim.Optimizer, epochs: int, steps_per_epoch: int, milestones: list[int],
               gamma: float) -> TorchSchedule:
    """Multiply the LR by ``gamma`` at each milestone epoch (AutoDrop: [60,120,160] x0.2)."""
    return TorchSchedule(MultiStepLR(optimizer, milestones=list(milestones), gamma=gamma))


def _cosine(optimizer: torch.optim.Optimizer, epochs: int, steps_per_epoch: int, eta_min: float = 0.0) -> TorchSchedule:
    """Cosine annealing over the run's epochs, stepped once per epoch."""
    return TorchSchedule(CosineAnnealingLR(optimizer, T_max=epochs, eta_min=eta_min))


def warmup_cosine_factor(step: int, warmup_steps: int, total_steps: int, min_factor: float) -> float:
    """LR multiplier after ``step`` steps: linear warm-up from 0, then cosine down to ``min_factor``."""
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    progress = min(1.0, (step - warmup_steps) / max(1, total_steps - warmup_steps))
    return min_factor + (1.0 - min_factor) * 0.5 * (1.0 + math.cos(math.pi * progress))


def _warmup_cosine(optimizer: torch.optim.Optimizer, epochs: int, steps_per_epoch: int, warmup_epochs: float,
                   min_factor: float = 0.0) -> TorchSchedule:
    """Per-step linear warm-up over ``warmup_epochs`` then cosine decay (DeiT/timm recipe)."""
    total, warmup = epochs * steps_per_epoch, max(1, round(warmup_epochs * steps_per_epoch))
    return TorchSchedule(LambdaLR(optimizer, lambda s: warmup_cosine_factor(s, warmup, total, min_factor)),
                         per_step=True)


def poly_factor(step: int, total: int, power: float, min_factor: float, warmup_steps: int = 0,
                warmup_ratio: float = 1e-6, warmup_style: str = "mmseg1") -> float:
    """LR multiplier after ``step`` steps of polynomial decay with a linear warm-up from ``warmup_ratio``.

    ``mmseg1`` (mmsegmentation 1.x: ``LinearLR(start_factor=warmup_ratio)`` over the warm-up, then
    ``PolyLR`` over the remaining steps); ``mmcv0`` (mmsegmentation 0.x / mmcv runner: the poly curve of
    the whole run, scaled by ``1 - (1 - step/warmup_steps)(1 - warmup_ratio)`` during the warm-up).
    """
    if warmup_style == "mmcv0":
        factor = max(min_factor, (1 - min(step, total) / total) ** power)
        return factor * (1 - (1 - step / warmup_steps) * (1 - warmup_ratio)) if step < warmup_steps else factor
    if step < warmup_steps:
        return warmup_ratio + (1 - warmup_ratio) * step / warmup_steps
    span = max(1, total - warmup_steps)
    return max(min_factor, (1 - min(step - warmup_steps, span) / span) ** power)


def _poly(optimizer: torch.optim.Optimizer, epochs: int, steps_per_epoch: int, power: float = 1.0,
          min_factor: float = 0.0, warmup_steps: int = 0, warmup_ratio: float = 1e-6,
          warmup_style: str = "mmseg1") -> TorchSchedule:
    """Per-step polynomial decay ``(1 - step/total)^power`` (mmsegmentation's ``poly`` policy), after an
    optional linear warm-up of ``warmup_steps`` (``poly_factor``)."""
    if warmup_style not in WARMUP_STYLES:
        raise BenchError(f"schedule poly: warmup_style must be one of {WARMUP_STYLES}, got {warmup_style!r}; "
                         f"pass schedule.warmup_style=mmseg1")
    total = epochs * steps_per_epoch
    return TorchSchedule(LambdaLR(optimizer, lambda s: poly_factor(s, total, power, min_factor, warmup_steps,
                                                                   warmup_ratio, warmup_style)), per_step=True)


def _constant(optimizer: torch.optim.Optimizer, epochs: int, steps_per_epoch: int) -> Constant:
    return Constant()


def _autodrop(optimizer: torch.optim.Optimizer, epochs: int, steps_per_epoch: int, **options: Any) -> AutoDrop:
    """AutoDrop (optimizers/autodrop.py) on top of any optimizer; options as in ``AutoDrop``."""
    try:
        return AutoDrop(optimizer, epochs, **options)
    except (TypeError, ValueError) as exc:
        raise BenchError(f"schedule (autodrop): {exc}; see optimizers/autodrop.py for the options") from exc


SCHEDULES: dict[str, Callable[..., Any]] = {
    "constant": _constant,
    "step": _step,
    "multistep": _multistep,
    "cosine": _cosine,
    "warmup_cosine": _warmup_cosine,
    "poly": _poly,
    "autodrop": _autodrop,
}


def resolve_schedule(schedule: dict[str, Any], baseline: dict[str, Any], baseline_for: str | list[str],
                     optim: dict[str, Any]) -> tuple[dict[str, Any], str | None]:
    """The schedule a run uses, and why when it was ``auto`` (see the module docstring)."""
    if schedule.get("name") != AUTO:
        return dict(schedule), None
    if optim.get("sets_own_lr"):
        return {"name": "constant"}, f"schedule=auto: constant, since {optim['name']} sets its own learning rate"
    if baseline_for == "all" or optim["name"] in baseline_for:
        return dict(baseline), f"schedule=auto: the preset's baseline_schedule ({baseline['name']})"
    return {"name": "constant"}, f"schedule=auto: constant, the preset's baseline_schedule is for {baseline_for} only"


def build_schedule(optimizer: torch.optim.Optimizer, epochs: int, steps_per_epoch: int, name: str,
                   **options: Any) -> Any:
    """The schedule ``name`` acting on ``optimizer`` over ``epochs`` epochs of ``steps_per_epoch`` steps."""
    if name not in SCHEDULES:
        raise BenchError(f"unknown schedule {name!r}; pick schedule=<name> from {sorted(SCHEDULES)} (conf/schedule/)")
    try:
        return SCHEDULES[name](optimizer, epochs, steps_per_epoch, **options)
    except TypeError as exc:
        raise BenchError(f"schedule {name}: {exc}; see conf/schedule/{name}.yaml for its options") from exc
