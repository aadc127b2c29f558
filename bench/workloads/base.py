"""What every workload provides to ``bench.run`` and its training loop.

A workload owns what differs between kinds of experiment: its data or environment, its model(s)
and their parameter roles, the loss of a step, evaluation, its budget unit and the metrics it
reports, including the primary one and its direction. ``bench.run`` knows only this interface.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch
from torch import nn

from bench.early_stop import KEY as EARLY_STOP_KEY
from bench.early_stop import EarlyStop
from bench.time_budget import KEY as TIME_BUDGET_KEY
from bench.time_budget import TIME_KEY, TimeBudget
from bench.timing import Stopwatch
from optimizers.protocol import CLOSURE, LOSS, Driver


@dataclass(frozen=True)
class Metric:
    """A history key and whether higher (``max``) or lower (``min``) is better."""

    name: str
    mode: str

    def best(self, values: list[float]) -> float:
        return max(values) if self.mode == "max" else min(values)


@dataclass
class TrainState:
    """Where a run stands after its last completed epoch (history rows are keyed by epoch and step)."""

    epoch: int = 0
    step: int = 0
    history: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class LoopHooks:
    """What ``bench.run`` asks a loop to call: after each epoch's row, and to log it; and whether
    the run stops early (``trainer.early_stop``, ``bench.early_stop``) or has used up its training-time
    budget (``trainer.time_budget_s``, ``bench.time_budget``)."""

    on_epoch_end: Callable[[TrainState], None] | None = None
    log_epoch: Callable[[dict[str, Any]], None] | None = None
    clock: Stopwatch = field(default_factory=Stopwatch)  # loops charge their train and eval time to it
    early_stop: EarlyStop | None = None
    time_budget: TimeBudget | None = None

    def epoch_done(self, state: TrainState, row: dict[str, Any]) -> bool:
        """Record ``row`` (keyed by ``epoch`` and ``step``) with the cumulative training time
        (``train_time_s``) as the state's last epoch, log it, then checkpoint. True when the early-stop
        rule or the time budget ends the run here (the row then says so)."""
        row[TIME_KEY] = round(self.clock.seconds["train"], 3)
        if self.early_stop and (event := self.early_stop.stop_event(state.history + [row])):
            row[EARLY_STOP_KEY] = event
        if self.time_budget and (event := self.time_budget.stop_event(row)):
            row[TIME_BUDGET_KEY] = event
        state.epoch, state.step = row["epoch"], row["step"]
        state.history.append(row)
        if self.log_epoch:
            self.log_epoch(row)
        if self.on_epoch_end:
            self.on_epoch_end(state)
        return EARLY_STOP_KEY in row or TIME_BUDGET_KEY in row


class Workload(ABC):
    """One kind of experiment; subclasses live in ``bench/workloads/<name>.py`` and register in ``WORKLOADS``."""

    name: ClassVar[str]
    primary: ClassVar[Metric]
    roles: ClassVar[tuple[str, ...]] = ("model",)   # parameter sets an optimizer drives
    provides: ClassVar[frozenset[str]] = frozenset({LOSS, CLOSURE})  # what its loop gives a step
    budget_unit: ClassVar[str] = "epoch"
    early_stop_metrics: ClassVar[tuple[str, ...]] = ()   # history keys its loop can stop early on
    gpu_options: ClassVar[tuple[str, ...]] = ()   # the trainer.<key> settings its loop honours (bench.gpu_options)

    def __init__(self, cfg: dict[str, Any], device: torch.device, data: Any = None) -> None:
        self.cfg, self.device = cfg, device

    @classmethod
    def locate_data(cls, cfg: dict[str, Any]) -> tuple[str, Any]:
        """Find (or prepare) the data before anything is built: its provenance tag, which enters the
        run's hash, and a handle passed back to the constructor. Generated data: ``<name>-synthetic``."""
        return f"{cls.name}-synthetic", None

    @abstractmethod
    def role_modules(self) -> dict[str, nn.Module]:
        """The module whose parameters each role's optimizer drives."""

    @abstractmethod
    def data_record(self) -> dict[str, Any]:
        """The run record's ``data`` block: provenance, sizes, pipeline."""

    @abstractmethod
    def train(self, driver: Driver, state: TrainState, hooks: LoopHooks) -> str:
        """Train from ``state`` to the end of the budget; returns ``finished`` or ``diverged``."""

    @property
    @abstractmethod
    def steps_per_epoch(self) -> int:
        """Optimizer steps per epoch (per-step schedules need the total)."""

    @classmethod
    def record_fields(cls, cfg: dict[str, Any]) -> dict[str, Any]:
        """Quick-filter fields of the record (``dataset``, ``model``); the workload's name where it has none."""
        return {"dataset": (cfg.get("dataset") or {}).get("name", cls.name),
                "model": (cfg.get("model") or {}).get("name", cls.name)}

    @classmethod
    def summary(cls, record: dict[str, Any]) -> dict[str, Any]:
        """Top-level fields this workload adds to each of its records (finished, diverged or failed),
        decided on the record itself (SAC: its success rule and environment steps/s); none by default."""
        return {}

    def state_dict(self) -> dict[str, Any]:
        return {role: module.state_dict() for role, module in self.role_modules().items()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for role, module in self.role_modules().items():
            module.load_state_dict(state[role])
