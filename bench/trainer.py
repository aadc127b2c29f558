"""The epoch loop of every batch workload (classification, the NQM; SimCLR and segmentation plug in).

One loop for every optimizer of the five papers: CUDA when present (bf16 autocast), else CPU;
optionally channels_last batches and a ``torch.compile``d forward pass (``bench.gpu_options``);
per-epoch train/test metrics and training throughput (``train_images_per_s``: dataset examples,
so a SimCLR image counts once for its two views); per-parameter-group learning rates; the optimizer protocol through
``optimizers.protocol.Driver`` (which this loop never bypasses); divergence detection; a
checkpoint after every epoch.

Reproducibility: at the start of each epoch every RNG is re-seeded from (seed, epoch), and the
loaders draw their order and augmentation from (seed, epoch) too, so an epoch's computation does
not depend on whether the run was interrupted before it.
"""
from __future__ import annotations

import os
import random
import signal
import time
from itertools import islice
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from bench.data.loader import epoch_seed
from bench.gpu_options import autocast_args, compiled, to_channels_last
from bench.timing import Stopwatch
from bench.workloads.base import LoopHooks, TrainState
from optimizers.protocol import Diverged, Driver

FAULT_KILL_ENV = "BENCH_FAULT_KILL_AT_STEP"  # fault injection: SIGKILL this process at that global step
FAULT_RAISE_ENV = "BENCH_FAULT_RAISE_AT_STEP"  # fault injection: raise (a crash, e.g. out of memory) there
FAULT_SLEEP_ENV = "BENCH_FAULT_SLEEP_PER_STEP"  # test-only slow-down: sleep this many seconds after each step


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


def by_role(values: dict[str, Any], key: str) -> dict[str, Any]:
    """History keys for per-role values: ``key`` alone for a one-role run, ``key/<role>`` otherwise."""
    if len(values) == 1:
        return {key: next(iter(values.values()))}
    return {f"{key}/{role}": value for role, value in values.items()}


def driver_logs(driver: Driver) -> dict[str, Any]:
    """The optimizers' and schedules' ``epoch_log`` values as history keys (``optim``, ``optim/<role>``, ...)."""
    row: dict[str, Any] = {}
    for key, values in driver.epoch_logs().items():
        row.update(by_role(values, key) if values else {})
    return row


class Trainer:
    """Trains a batch workload (``bench.workloads.batch.BatchWorkload``) through ``driver``.

    ``channels_last`` converts each batch (the model was converted before its optimizers were built,
    ``bench.gpu_options.prepare``); ``compile`` (false, true or a mode) compiles the forward pass.
    """

    def __init__(self, workload: Any, driver: Driver, *, seed: int, epochs: int, amp: bool = True,
                 progress: bool = True, divergence_check_every: int = 50, steps_per_epoch: int | None = None,
                 channels_last: bool = False, compile: bool | str = False) -> None:
        self.workload, self.driver, self.seed, self.epochs = workload, driver, seed, epochs
        device = workload.device
        self.autocast = autocast_args(amp, device)
        self.layout = to_channels_last if channels_last else (lambda batch: batch)
        self.forward = compiled(workload.model, compile)   # shares workload.model's parameters
        self.progress, self.check_every = progress, max(1, divergence_check_every)
        self.steps = min(len(workload.train_loader), steps_per_epoch or len(workload.train_loader))
        self.kill_at_step = int(os.environ.get(FAULT_KILL_ENV, "0"))
        self.raise_at_step = int(os.environ.get(FAULT_RAISE_ENV, "0"))
        self.sleep_per_step = float(os.environ.get(FAULT_SLEEP_ENV, "0"))  # test-only (FAULT_SLEEP_ENV)

    def fit(self, state: TrainState, hooks: LoopHooks) -> str:
        """Train from ``state.epoch + 1`` to the last epoch; returns "finished" or "diverged"."""
        for epoch in range(state.epoch + 1, self.epochs + 1):
            started = time.perf_counter()
            lrs = by_role(self.driver.lrs(), "lr")  # the LRs this epoch trains with
            try:
                with hooks.clock.phase("train"):
                    train = self._train_epoch(epoch, state, hooks.clock)
                    self.driver.end_epoch(epoch)
            except Diverged as exc:
                state.history.append({"epoch": epoch, "step": state.step, **lrs, "diverged": str(exc)})
                return "diverged"
            with hooks.clock.phase("eval"):
                metrics = self.evaluate()
            row: dict[str, Any] = {"epoch": epoch, "step": state.step, **lrs, **train, **metrics,
                                   **driver_logs(self.driver), "epoch_time_s": round(time.perf_counter() - started, 3)}
            if hooks.epoch_done(state, row):
                break   # trainer.early_stop (bench.early_stop) or trainer.time_budget_s (bench.time_budget)
        return "finished"

    def _train_epoch(self, epoch: int, state: TrainState, clock: Stopwatch) -> dict[str, float]:
        seed_everything(epoch_seed(self.seed, epoch, stream=1))
        workload, model = self.workload, self.forward
        workload.model.train()
        sums: dict[str, torch.Tensor] = {}
        examples, started = 0, time.perf_counter()
        batches = tqdm(islice(workload.train_loader.epoch(epoch), self.steps), total=self.steps,
                       desc=f"epoch {epoch}", disable=None if self.progress else True, leave=False, dynamic_ncols=True)
        for i, (inputs, targets) in enumerate(batches, start=1):
            inputs = self.layout(inputs)
            with torch.autocast(**self.autocast):
                loss, batch_sums = workload.loss(model, inputs, targets)
            closure = self._closure(inputs, targets) if self.driver.needs_closure else None
            self.driver.step(loss, closure)
            clock.first_step_done()
            state.step += 1
            examples += len(targets)
            for key, value in batch_sums.items():
                sums[key] = sums.get(key, 0) + value
            if i % self.check_every == 0 or i == self.steps:
                value = loss.item()
                self.driver.check(value, f"epoch {epoch}, step {state.step}")
                batches.set_postfix(loss=f"{value:.4f}", refresh=False)
            if state.step == self.kill_at_step:
                os.kill(os.getpid(), signal.SIGKILL)
            if state.step == self.raise_at_step:
                raise RuntimeError(f"injected fault at step {state.step} ({FAULT_RAISE_ENV})")
            if self.sleep_per_step:  # test-only (FAULT_SLEEP_ENV)
                time.sleep(self.sleep_per_step)
        clock.count(examples)
        rows = {f"train_{key}": float(value) / examples for key, value in sums.items()}
        # throughput of the training phase (loading, steps; the last step's loss check syncs the device)
        rows["train_images_per_s"] = round(examples / (time.perf_counter() - started), 2)
        return rows

    def _closure(self, inputs: torch.Tensor, targets: torch.Tensor) -> Any:
        """Re-evaluates the mini-batch loss (with gradients when ``backward``), for SAM/SLS."""

        def compute() -> torch.Tensor:
            with torch.autocast(**self.autocast):
                return self.workload.loss(self.forward, inputs, targets)[0]

        return self.driver.closure(compute)

    def evaluate(self) -> dict[str, float]:
        """The workload's test metrics, on the optimizer's averaged model where it keeps one (DoG)."""
        model = self.workload.eval_model(self.driver)
        model.eval()
        model = self.forward if model is self.workload.model else model
        evaluator = self.workload.evaluator()
        with torch.no_grad(), torch.autocast(**self.autocast):
            for inputs, targets in self.workload.test_loader.epoch(0):
                evaluator.update(model, self.layout(inputs), targets)
        return {f"test_{key}": value for key, value in evaluator.compute().items()}
