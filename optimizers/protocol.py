"""The one protocol between training loops and every optimizer or schedule in `bench`, and the
``Driver``: the only code that interprets it.

Every optimizer is a ``torch.optim.Optimizer`` importable as ``from optimizers import <Name>`` and
constructible as ``<Name>(params, **hyperparameters)``. Beyond ``step()``, an optimizer (or a
schedule) may implement any of these optional members; the ``Driver`` looks them up once:

``requires: frozenset[str]``
    What ``step()`` needs besides the gradients: ``"loss"`` -> ``step(loss=<detached mini-batch
    loss>)`` (SPS-style methods); ``"closure"`` -> ``step(closure)``, where ``closure()``
    re-evaluates the mini-batch loss with gradients (SAM, SLS).
``end_step(step: int) -> None``
    Called after every optimizer step (global step count of that role, starting at 1).
    Per-step schedules (warm-up + cosine, polynomial decay) act here.
``end_epoch(epoch: int) -> None``
    Called after each training epoch (epochs count from 1). AdaS, RMSGD and AutoDrop act here.
``epoch_log() -> dict``
    Extra per-epoch values (per-layer metrics, estimated learning rates, trigger events) stored in
    the run record's history under ``"optim"`` (or ``"schedule"``).
``estimated_lr() -> float | None``
    The learning rate a learning-rate-free method estimated at its last step (None before the
    first). A NaN/Inf estimate ends the run as ``diverged``, like a NaN/Inf loss.
``bind_model(model: nn.Module) -> None``
    Called once by ``bench.optim_factory`` right after construction, for methods that need the
    model itself (DoG's iterate averager averages parameters and buffers).
``eval_model() -> nn.Module | None``
    The model to evaluate instead of the trained one (DoG/LDoG: the averaged model), or None.
``state_dict()`` / ``load_state_dict()``
    Everything needed to resume; checkpoints call them for optimizers and schedules alike.

A run may drive several parameter sets ("roles": SAC's actor, critic and temperature; a fine-tuned
backbone and its head), each with its own optimizer and schedule; the driver keeps them apart.
A role may also carry measurement probes (``EpochLogger`` objects keyed by name, e.g. ``lowrank``:
``bench.probes``), whose ``epoch_log`` is stored in the history under their name, whatever the
optimizer; they never change the training.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import torch
from torch import nn

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


def _hook(owner: object, name: str) -> Callable[..., Any] | None:
    member = getattr(owner, name, None)
    return member if callable(member) else None


class Diverged(Exception):
    """The loss (or an optimizer's estimated learning rate) became NaN or infinite."""


class UnmetRequirement(Exception):
    """A loop cannot give an optimizer what its ``step`` requires (raised before training)."""


Closure = Callable[..., torch.Tensor]


@dataclass
class Role:
    """One optimizer and its schedule, driving one set of parameters."""

    name: str
    optimizer: torch.optim.Optimizer
    schedule: Any
    steps: int = 0
    probes: dict[str, EpochLogger] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.requires = requirements(self.optimizer)
        self.step_hooks = [h for owner in (self.optimizer, self.schedule) if (h := _hook(owner, "end_step"))]
        self.estimate = _hook(self.optimizer, "estimated_lr")


class Driver:
    """Steps every role's optimizer as ``optimizers.protocol`` says; loops call only this.

    ``provides`` names what the calling loop can give a step (``LOSS``, ``CLOSURE``); an optimizer
    that needs more is refused at construction, before anything trains.
    """

    def __init__(self, roles: dict[str, tuple[torch.optim.Optimizer, Any]], provides: Iterable[str] = (LOSS, CLOSURE),
                 loop: str = "this workload", probes: dict[str, dict[str, EpochLogger]] | None = None) -> None:
        self.roles = {name: Role(name, optimizer, schedule, probes=(probes or {}).get(name, {}))
                      for name, (optimizer, schedule) in roles.items()}
        offered = frozenset(provides)
        for role in self.roles.values():
            if missing := role.requires - offered:
                raise UnmetRequirement(
                    f"{type(role.optimizer).__name__} (role {role.name}) needs {sorted(missing)} at every step, "
                    f"which {loop} cannot give; pick another optimizer for this role")

    def optimizer(self, role: str) -> torch.optim.Optimizer:
        return self.roles[role].optimizer

    # ------------------------------------------------------------------ steps
    def step(self, loss: torch.Tensor, closure: Closure | None = None, roles: Iterable[str] | None = None) -> None:
        """One optimizer step of each of ``roles`` (default: all) from ``loss``; gradients are computed here."""
        stepping = [self.roles[name] for name in (self.roles if roles is None else roles)]
        for role in stepping:
            role.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        for role in stepping:
            kwargs: dict[str, Any] = {}
            if LOSS in role.requires:
                kwargs["loss"] = loss.detach()
            if CLOSURE in role.requires:
                kwargs["closure"] = closure
            role.optimizer.step(**kwargs)
            role.steps += 1
            for hook in role.step_hooks:
                hook(role.steps)

    def closure(self, compute_loss: Callable[[], torch.Tensor], roles: Iterable[str] | None = None) -> Closure:
        """A closure for SAM/SLS: re-evaluates the loss, with gradients when ``backward``."""
        optimizers = [self.roles[name].optimizer for name in (self.roles if roles is None else roles)]

        def closure(backward: bool = True) -> torch.Tensor:
            with torch.set_grad_enabled(backward):
                loss = compute_loss()
            if backward:
                for optimizer in optimizers:
                    optimizer.zero_grad(set_to_none=True)
                loss.backward()
            return loss.detach()

        return closure

    @property
    def needs_closure(self) -> bool:
        return any(CLOSURE in role.requires for role in self.roles.values())

    def check(self, loss: float, where: str) -> None:
        """Raise ``Diverged`` if ``loss`` or any estimated learning rate is NaN or infinite."""
        if not math.isfinite(loss):
            raise Diverged(f"loss {loss} at {where}")
        for role in self.roles.values():
            if role.estimate and (lr := role.estimate()) is not None and not math.isfinite(lr):
                raise Diverged(f"estimated learning rate {lr} of role {role.name} at {where}")

    # ----------------------------------------------------------------- epochs
    def end_epoch(self, epoch: int) -> None:
        for role in self.roles.values():
            for owner in (role.optimizer, role.schedule):
                if hook := _hook(owner, "end_epoch"):
                    hook(epoch)

    def lrs(self) -> dict[str, list[float | None]]:
        """Each role's per-group learning rates (None where a method has none, e.g. COCOB)."""
        return {name: [g.get("lr") for g in role.optimizer.param_groups] for name, role in self.roles.items()}

    def epoch_logs(self) -> dict[str, dict[str, Any]]:
        """``{"optim": {role: values}, "schedule": {role: values}, <probe>: {role: values}}`` from the
        ``epoch_log`` hooks."""
        logs: dict[str, dict[str, Any]] = {"optim": {}, "schedule": {}}
        for name, role in self.roles.items():
            owners = [(role.optimizer, "optim"), (role.schedule, "schedule")]
            for owner, key in owners + [(probe, key) for key, probe in role.probes.items()]:
                if hook := _hook(owner, "epoch_log"):
                    logs.setdefault(key, {})[name] = hook()
        return logs

    def eval_model(self, role: str, model: nn.Module) -> nn.Module:
        """The model to evaluate for ``role``: the optimizer's averaged model if it keeps one."""
        hook = _hook(self.roles[role].optimizer, "eval_model")
        averaged = hook() if hook else None
        return model if averaged is None else averaged

    # ----------------------------------------------------------------- resume
    def state_dict(self) -> dict[str, Any]:
        return {name: {"optimizer": r.optimizer.state_dict(), "schedule": r.schedule.state_dict(), "steps": r.steps}
                for name, r in self.roles.items()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for name, role in self.roles.items():
            role.optimizer.load_state_dict(state[name]["optimizer"])
            role.schedule.load_state_dict(state[name]["schedule"])
            role.steps = state[name]["steps"]
