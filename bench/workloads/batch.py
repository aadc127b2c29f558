"""Workloads trained over batches by the shared epoch loop (``bench.trainer.Trainer``).

A batch workload gives a training loader, a test loader, ``loss(model, inputs, targets)`` (the mean
loss of a batch and per-example metric sums) and an ``evaluator()`` that accumulates evaluation
state over the test set and finalises it, so metrics need not be per-example means (mIoU).
"""
from __future__ import annotations

import copy
from abc import abstractmethod
from collections.abc import Callable
from typing import Any, Protocol

from torch import Tensor, nn

from bench.workloads.base import LoopHooks, TrainState, Workload
from optimizers.protocol import Driver


class Evaluator(Protocol):
    """Accumulates over evaluation batches; ``compute`` gives metrics (stored as ``test_<key>``)."""

    def update(self, model: nn.Module, inputs: Tensor, targets: Tensor) -> None: ...

    def compute(self) -> dict[str, float]: ...


class MeanEvaluator:
    """Per-example means of the sums that ``sums(model, inputs, targets)`` returns for each batch."""

    def __init__(self, sums: Callable[[nn.Module, Tensor, Tensor], dict[str, Tensor]]) -> None:
        self.sums_of, self.count = sums, 0
        self.sums: dict[str, Tensor] = {}

    def update(self, model: nn.Module, inputs: Tensor, targets: Tensor) -> None:
        for key, value in self.sums_of(model, inputs, targets).items():
            self.sums[key] = self.sums.get(key, 0) + value
        self.count += len(inputs)

    def compute(self) -> dict[str, float]:
        return {key: float(value) / self.count for key, value in self.sums.items()}


def _swapped(model: nn.Module, swaps: dict[int, nn.Module]) -> nn.Module:
    """``model`` with the submodules keyed by ``id`` in ``swaps`` replaced (shallow copies on the way)."""
    if id(model) in swaps:
        return swaps[id(model)]
    if not any(id(m) in swaps for m in model.modules()):
        return model
    clone = copy.copy(model)
    clone._modules = {name: _swapped(child, swaps) if child is not None else None
                      for name, child in model._modules.items()}
    return clone


class BatchWorkload(Workload):
    """A workload whose loop is the shared epoch loop over mini-batches."""

    early_stop_metrics = ("train_loss",)   # the AdaS code's rule (bench.early_stop)
    gpu_options: tuple[str, ...] = ("compile",)   # and channels_last where batches are images (bench.gpu_options)
    model: nn.Module
    train_loader: Any
    test_loader: Any

    @abstractmethod
    def loss(self, model: nn.Module, inputs: Tensor, targets: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        """Mean loss of a batch, and per-example metric sums over it (``loss`` included)."""

    @abstractmethod
    def evaluator(self) -> Evaluator:
        """A fresh accumulator for one evaluation pass."""

    def role_modules(self) -> dict[str, nn.Module]:
        return {"model": self.model}

    def eval_model(self, driver: Driver) -> nn.Module:
        """The model to evaluate: each role's module replaced by its optimizer's averaged copy where it
        keeps one (DoG), so a backbone and head averaged apart are evaluated together."""
        swaps = {id(module): averaged for role, module in self.role_modules().items()
                 if (averaged := driver.eval_model(role, module)) is not module}
        return _swapped(self.model, swaps)

    @property
    def steps_per_epoch(self) -> int:
        cap = self.cfg["trainer"].get("steps_per_epoch")
        return min(len(self.train_loader), cap or len(self.train_loader))

    def train(self, driver: Driver, state: TrainState, hooks: LoopHooks) -> str:
        from bench.trainer import Trainer  # the loop imports this package's base module

        trainer = self.cfg["trainer"]
        loop = Trainer(self, driver, seed=self.cfg["seed"], epochs=trainer["epochs"], amp=trainer["amp"],
                       progress=trainer["progress"], divergence_check_every=trainer["divergence_check_every"],
                       steps_per_epoch=trainer.get("steps_per_epoch"), channels_last=trainer["channels_last"],
                       compile=trainer["compile"])
        return loop.fit(state, hooks)


