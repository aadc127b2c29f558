"""The one protocol between the trainer and every optimizer or schedule in `bench`.

Every optimizer is a ``torch.optim.Optimizer`` importable as ``from optimizers import <Name>`` and
constructible as ``<Name>(params, **hyperparameters)``. Beyond ``step()``, an optimizer (or an
epoch-level schedule) may implement any of these optional members; the trainer looks them up once:

``requires: frozenset[str]``
    What ``step()`` needs besides the gradients: ``"loss"`` -> the trainer calls
    ``step(loss=<detached mini-batch loss>)`` (SPS-style methods); ``"closure"`` -> the trainer calls
    ``step(closure)``, where ``closure()`` re-evaluates the mini-batch loss with gradients (SAM, SLS).
``end_step(step: int) -> None``
    Called after every optimizer step (global step count, starting at 1).
``end_epoch(epoch: int) -> None``
    Called after each training epoch (epochs count from 1), before evaluation of that epoch's
    learning rates is logged. AdaS, RMSGD and AutoDrop act here.
``epoch_log() -> dict``
    Extra per-epoch values (per-layer metrics, estimated learning rates, trigger events) that the
    trainer stores in the run record's history under ``"optim"`` (or ``"schedule"``).
``estimated_lr() -> float | None``
    The learning rate a learning-rate-free method estimated at its last step (None before the
    first). The trainer checks it with the loss: a NaN/Inf estimate ends the run as ``diverged``.
``bind_model(model: nn.Module) -> None``
    Called once by ``bench.optim_factory`` right after construction, for methods that need the
    model itself (DoG's iterate averager averages parameters and buffers).
``eval_model() -> nn.Module | None``
    The model to evaluate instead of the trained one (DoG/LDoG: the averaged model), or None.
``state_dict()`` / ``load_state_dict()``
    Everything needed to resume; checkpoints call them for optimizers and schedules alike.
"""
from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

LOSS = "loss"
CLOSURE = "closure"


@runtime_checkable
class EpochHook(Protocol):
    """Anything that acts once per training epoch."""

    def end_epoch(self, epoch: int) -> None: ...


@runtime_checkable
class StepHook(Protocol):
    """Anything that acts after every optimizer step."""

    def end_step(self, step: int) -> None: ...


@runtime_checkable
class EpochLogger(Protocol):
    """Anything that contributes values to the per-epoch history of a run record."""

    def epoch_log(self) -> dict[str, Any]: ...


def requirements(optimizer: object) -> frozenset[str]:
    """What ``optimizer.step`` needs besides gradients (see module docstring)."""
    return frozenset(getattr(optimizer, "requires", frozenset()))
