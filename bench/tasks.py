"""What a training step optimises and what an evaluation measures, per kind of workload.

The trainer is workload-agnostic; a task turns a batch into a loss and into metrics. Image
classification is the workload of all five papers' main tables; SimCLR and fine-tuning plug in here.
"""
from __future__ import annotations

from typing import Protocol

import torch
from torch import Tensor, nn


class Task(Protocol):
    """Metric sums are per-example sums (tensors, not synchronised); the trainer divides them by the
    number of examples and stores them as ``train_<key>`` / ``test_<key>`` in the history."""

    def loss(self, model: nn.Module, inputs: Tensor, targets: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        """Mean loss of a batch, and metric sums over it (``loss`` included)."""
        ...

    def eval_sums(self, model: nn.Module, inputs: Tensor, targets: Tensor) -> dict[str, Tensor]:
        """Metric sums over an evaluation batch (``loss`` included)."""
        ...


def _topk_correct(logits: Tensor, targets: Tensor, ks: tuple[int, ...]) -> dict[str, Tensor]:
    k_max = min(max(ks), logits.shape[1])
    top = logits.topk(k_max, dim=1).indices
    hits = top == targets[:, None]
    return {f"acc{k}": 100.0 * hits[:, :min(k, k_max)].any(dim=1).sum() for k in ks}  # sums of percent


class Classification:
    """Cross-entropy classification; reports loss and top-1/top-5 accuracy (%) on train and test."""

    def loss(self, model: nn.Module, inputs: Tensor, targets: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        logits = model(inputs)
        loss = nn.functional.cross_entropy(logits, targets)
        sums = _topk_correct(logits.detach(), targets, (1, 5))
        sums["loss"] = loss.detach().float() * len(targets)
        return loss, sums

    @torch.no_grad()
    def eval_sums(self, model: nn.Module, inputs: Tensor, targets: Tensor) -> dict[str, Tensor]:
        logits = model(inputs)
        sums = _topk_correct(logits, targets, (1, 5))
        sums["loss"] = nn.functional.cross_entropy(logits.float(), targets, reduction="sum")
        return sums


class NoisyQuadratic:
    """The noisy quadratic model (AutoDrop Section 3): the model returns per-sample losses
    0.5 (x - c)^T A (x - c); the mean is optimised and ``loss`` is the only metric (on the c = 0
    "test set" it is the noiseless loss 0.5 x^T A x)."""

    def loss(self, model: nn.Module, inputs: Tensor, targets: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        losses = model(inputs)
        return losses.mean(), {"loss": losses.detach().sum()}

    @torch.no_grad()
    def eval_sums(self, model: nn.Module, inputs: Tensor, targets: Tensor) -> dict[str, Tensor]:
        return {"loss": model(inputs).sum()}


TASKS: dict[str, type] = {"classification": Classification, "nqm": NoisyQuadratic}


def build_task(name: str) -> Task:
    """The task called ``name`` (``dataset.task`` in the config)."""
    return TASKS[name]()
