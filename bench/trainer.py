"""The shared single-device trainer.

One loop for every optimizer of the five papers: CUDA when present (bf16 autocast), else CPU;
per-epoch train/test loss and accuracy; per-parameter-group learning rates; the optimizer/schedule
hooks of ``optimizers.protocol``; divergence detection; a checkpoint after every epoch.

Reproducibility: at the start of each epoch every RNG is re-seeded from (seed, epoch), and the
loaders draw their order and augmentation from (seed, epoch) too, so an epoch's computation does
not depend on whether the run was interrupted before it.
"""
from __future__ import annotations

import math
import os
import random
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from bench.data.loader import TensorLoader, epoch_seed
from bench.tasks import Task
from optimizers.protocol import CLOSURE, LOSS, requirements

FAULT_KILL_ENV = "BENCH_FAULT_KILL_AT_STEP"  # fault injection: SIGKILL this process at that global step
FAULT_SLEEP_ENV = "BENCH_FAULT_SLEEP_PER_STEP"  # test-only slow-down: sleep this many seconds after each step


@dataclass
class TrainState:
    """Where a run stands after its last completed epoch."""

    epoch: int = 0
    step: int = 0
    history: list[dict[str, Any]] = field(default_factory=list)


class Diverged(Exception):
    """The loss (or an optimizer's estimated learning rate) became NaN or infinite."""


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def set_deterministic(enabled: bool) -> None:
    """PyTorch's deterministic mode (bit-identical reruns on the same hardware, slower on GPU)."""
    if enabled:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.use_deterministic_algorithms(enabled, warn_only=False)
    torch.backends.cudnn.deterministic = enabled
    torch.backends.cudnn.benchmark = not enabled


def pick_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def _means(sums: dict[str, torch.Tensor], n: int, prefix: str) -> dict[str, float]:
    return {f"{prefix}_{key}": float(value) / n for key, value in sums.items()}


def _hooks(obj: object, name: str) -> Callable[..., Any] | None:
    return getattr(obj, name, None) if callable(getattr(obj, name, None)) else None


class Trainer:
    """Trains ``model`` with ``optimizer`` (and an epoch-level ``schedule``) on ``task``."""

    def __init__(self, model: nn.Module, optimizer: torch.optim.Optimizer, schedule: Any, task: Task,
                 train_loader: TensorLoader, test_loader: TensorLoader, *, device: torch.device, seed: int,
                 amp: bool = True, progress: bool = True, divergence_check_every: int = 50,
                 on_epoch_end: Callable[[TrainState], None] | None = None,
                 log_epoch: Callable[[dict[str, Any]], None] | None = None) -> None:
        self.model, self.optimizer, self.schedule, self.task = model, optimizer, schedule, task
        self.train_loader, self.test_loader = train_loader, test_loader
        self.device, self.seed = device, seed
        self.autocast = dict(device_type=device.type, dtype=torch.bfloat16, enabled=amp and device.type == "cuda")
        self.progress, self.check_every = progress, max(1, divergence_check_every)
        self.on_epoch_end, self.log_epoch = on_epoch_end, log_epoch
        self.requires = requirements(optimizer)
        self.kill_at_step = int(os.environ.get(FAULT_KILL_ENV, "0"))
        self.sleep_per_step = float(os.environ.get(FAULT_SLEEP_ENV, "0"))  # test-only (FAULT_SLEEP_ENV)

    # ---------------------------------------------------------------- training
    def fit(self, epochs: int, state: TrainState) -> str:
        """Train from ``state.epoch + 1`` to ``epochs``; returns "finished" or "diverged"."""
        for epoch in range(state.epoch + 1, epochs + 1):
            started = time.perf_counter()
            lrs = [group.get("lr") for group in self.optimizer.param_groups]  # COCOB has none
            try:
                train = self._train_epoch(epoch, state)
            except Diverged as exc:
                state.history.append({"epoch": epoch, "lr": lrs, "diverged": str(exc)})
                return "diverged"
            for owner in (self.optimizer, self.schedule):
                if hook := _hooks(owner, "end_epoch"):
                    hook(epoch)
            row: dict[str, Any] = {"epoch": epoch, "lr": lrs, **train, **self.evaluate()}
            for owner, key in ((self.optimizer, "optim"), (self.schedule, "schedule")):
                if hook := _hooks(owner, "epoch_log"):
                    row[key] = hook()
            row["epoch_time_s"] = round(time.perf_counter() - started, 3)
            state.epoch = epoch
            state.history.append(row)
            if self.log_epoch:
                self.log_epoch(row)
            if self.on_epoch_end:
                self.on_epoch_end(state)
        return "finished"

    def _train_epoch(self, epoch: int, state: TrainState) -> dict[str, float]:
        seed_everything(epoch_seed(self.seed, epoch, stream=1))
        self.model.train()
        sums: dict[str, torch.Tensor] = {}
        step_hooks = [hook for owner in (self.optimizer, self.schedule) if (hook := _hooks(owner, "end_step"))]
        estimate = _hooks(self.optimizer, "estimated_lr")
        batches = tqdm(self.train_loader.epoch(epoch), total=len(self.train_loader), desc=f"epoch {epoch}",
                       disable=None if self.progress else True, leave=False, dynamic_ncols=True)
        for i, (inputs, targets) in enumerate(batches, start=1):
            loss, batch_sums = self._step(inputs, targets)
            state.step += 1
            for hook in step_hooks:
                hook(state.step)
            for key, value in batch_sums.items():
                sums[key] = sums.get(key, 0) + value
            if i % self.check_every == 0 or i == len(self.train_loader):
                value = loss.item()
                if not math.isfinite(value):
                    raise Diverged(f"loss {value} at epoch {epoch}, step {state.step}")
                if estimate and (lr := estimate()) is not None and not math.isfinite(lr):
                    raise Diverged(f"estimated learning rate {lr} at epoch {epoch}, step {state.step}")
                batches.set_postfix(loss=f"{value:.4f}", refresh=False)
            if state.step == self.kill_at_step:
                os.kill(os.getpid(), signal.SIGKILL)
            if self.sleep_per_step:  # test-only (FAULT_SLEEP_ENV)
                time.sleep(self.sleep_per_step)
        return _means(sums, self.train_loader.examples_per_epoch, "train")

    def _step(self, inputs: torch.Tensor, targets: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        self.optimizer.zero_grad(set_to_none=True)
        with torch.autocast(**self.autocast):
            loss, sums = self.task.loss(self.model, inputs, targets)
        loss.backward()
        kwargs: dict[str, Any] = {}
        if LOSS in self.requires:
            kwargs["loss"] = loss.detach()
        if CLOSURE in self.requires:
            kwargs["closure"] = self._closure(inputs, targets)
        self.optimizer.step(**kwargs)
        return loss.detach(), sums

    def _closure(self, inputs: torch.Tensor, targets: torch.Tensor) -> Callable[..., torch.Tensor]:
        """Re-evaluates the mini-batch loss (with gradients when ``backward``), for SAM/SLS."""

        def closure(backward: bool = True) -> torch.Tensor:
            with torch.set_grad_enabled(backward), torch.autocast(**self.autocast):
                loss, _ = self.task.loss(self.model, inputs, targets)
            if backward:
                self.optimizer.zero_grad(set_to_none=True)
                loss.backward()
            return loss.detach()

        return closure

    # -------------------------------------------------------------- evaluation
    def evaluate(self) -> dict[str, float]:
        """Mean test metrics (loss, and for classification top-1/top-5 accuracy in %).

        An optimizer's ``eval_model()`` (DoG's averaged model) is evaluated instead when it has one.
        """
        hook = _hooks(self.optimizer, "eval_model")
        averaged = hook() if hook else None
        model = self.model if averaged is None else averaged
        model.eval()
        sums: dict[str, torch.Tensor] = {}
        with torch.no_grad(), torch.autocast(**self.autocast):
            for inputs, targets in self.test_loader.epoch(0):
                for key, value in self.task.eval_sums(model, inputs, targets).items():
                    sums[key] = sums.get(key, 0) + value
        return _means(sums, self.test_loader.examples_per_epoch, "test")
