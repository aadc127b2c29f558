"""The learning-rate-free baselines of Suh & Seo's Table 2, from their authors' PyPI packages.

Each class is the package's optimizer, unchanged in its arithmetic, plus what the bench protocol
needs (``optimizers/protocol.py``):

* ``estimated_lr()`` / ``epoch_log()`` (``optimizers.lr_log``): the learning rate the method
  estimated and used at the last step: d * lr for D-Adapt Adam and Prodigy (their Adam step size,
  bias correction excluded), d * lr / ||g_0|| for D-Adapt SGD (its step size, comparable to
  PS-DA-SGD's lambda_k), eta_t for DoG and the median over tensors of LDoG's per-tensor eta_t. COCOB has no single
  learning rate and logs none.
* DoG/LDoG (``dog-optimizer``): (1) parameters without a gradient are skipped (the package reads
  ``p.grad`` of every parameter and crashes on None): they get a zero gradient for the package's
  sums and are restored afterwards, so neither the step nor weight decay moves them; (2) the
  polynomial-decay iterate averager (``dog.PolynomialDecayAverager``, gamma = 8), which the DoG
  authors call crucial, is part of the method: ``bind_model(model)`` (called by
  ``bench.optim_factory``) creates it, every step updates it, ``eval_model()`` hands the trainer the
  averaged model for evaluation, and its state rides in the optimizer's ``state_dict``.

``dadaptation`` 3.2 (DAdaptSGD unchanged since 3.0), ``prodigyopt`` 1.0 (the release of the PS
paper's time), ``dog-optimizer`` 1.0.3 and ``parameterfree`` 0.0.1 are pinned in
``requirements/constraints.txt``.
"""
from __future__ import annotations

import logging
import statistics
from typing import Any

import dadaptation
import dog
import parameterfree
import prodigyopt
import torch
from torch import nn

from optimizers.lr_log import EstimatedLRLog, as_float

logging.getLogger(dog.dog.__name__).setLevel(logging.WARNING)  # it logs every state_dict() at INFO


class _DAdapted(EstimatedLRLog):
    """Estimated LR of the D-Adaptation family: d * lr as used by the last step (d before its update)."""

    def __init__(self, params: Any, log_lr_every: int = 0, **hparams: Any) -> None:
        super().__init__(params, **hparams)
        self._init_lr_log(log_lr_every)
        self._last_lr: float | None = None

    def _step_lr(self, group: dict[str, Any]) -> float:
        return group["d"] * group["lr"]

    def step(self, closure: Any = None) -> Any:
        group = self.param_groups[0]
        d, lr = group["d"], group["lr"]
        loss = super().step(closure)
        if group["k"] > 0:
            self._last_lr = self._step_lr({**group, "d": d, "lr": lr})
        return loss

    def estimated_lr(self) -> float | None:
        return self._last_lr


class DAdaptSGD(_DAdapted, dadaptation.DAdaptSGD):
    """``dadaptation.DAdaptSGD``; estimated LR = d * lr / ||g_0|| (its step size)."""

    def _step_lr(self, group: dict[str, Any]) -> float:
        return group["d"] * group["lr"] / group["g0_norm"]


class DAdaptAdam(_DAdapted, dadaptation.DAdaptAdam):
    """``dadaptation.DAdaptAdam`` (the v3 algorithm); estimated LR = d * lr."""


class Prodigy(_DAdapted, prodigyopt.Prodigy):
    """``prodigyopt.Prodigy``; estimated LR = d * lr."""


class COCOB(parameterfree.COCOB):
    """``parameterfree.COCOB`` (COCOB-Backprop, Orabona & Tommasi 2017): per-coordinate, no LR to log."""


class _AveragedDoG(EstimatedLRLog):
    """DoG/LDoG with skipped grad-less parameters and the polynomial-decay averager."""

    def __init__(self, params: Any, average: bool = True, averager_gamma: float = 8.0, log_lr_every: int = 0,
                 **hparams: Any) -> None:
        super().__init__(params, **hparams)
        self._init_lr_log(log_lr_every)
        self.average, self.averager_gamma = average, averager_gamma
        self.averager: dog.PolynomialDecayAverager | None = None
        self._pending_averager: dict[str, Any] | None = None

    # -- averaging (optional protocol members bind_model / eval_model) ---------------------------
    def bind_model(self, model: nn.Module) -> None:
        """Start averaging ``model``'s state (parameters and buffers), as the DoG package does."""
        if self.average:
            self.averager = dog.PolynomialDecayAverager(model, gamma=self.averager_gamma)
            if self._pending_averager is not None:
                self.averager.load_state_dict(self._pending_averager)
                self._pending_averager = None

    def eval_model(self) -> nn.Module | None:
        """The averaged model the trainer evaluates (None: evaluate the trained model)."""
        return self.averager.averaged_model if self.averager is not None else None

    def state_dict(self) -> dict[str, Any]:
        state = super().state_dict()
        if self.averager is not None:
            state["averager"] = self.averager.state_dict()
        return state

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        state_dict = dict(state_dict)
        averager = state_dict.pop("averager", None)
        super().load_state_dict(state_dict)
        if averager is not None:
            if self.averager is not None:
                self.averager.load_state_dict(averager)
            else:
                self._pending_averager = averager

    # -- the step ----------------------------------------------------------------------------------
    @torch.no_grad()
    def step(self, closure: Any = None) -> Any:
        missing = [p for group in self.param_groups for p in group["params"] if p.grad is None]
        kept = [p.detach().clone() for p in missing]
        for p in missing:
            p.grad = torch.zeros_like(p)
        try:
            loss = super().step(closure)
        finally:
            for p, value in zip(missing, kept):
                p.copy_(value)
                p.grad = None
        if self.averager is not None:
            self.averager.step()
        return loss


class DoG(_AveragedDoG, dog.DoG):
    """``dog.DoG`` (one eta per parameter group) + averaging; estimated LR = eta_t."""

    def estimated_lr(self) -> float | None:
        group = self.param_groups[0]
        return as_float(group["eta"][0]) if "eta" in group else None


class LDoG(_AveragedDoG, dog.LDoG):
    """``dog.LDoG`` (one eta per tensor) + averaging; estimated LR = median over tensors of eta_t."""

    def estimated_lr(self) -> float | None:
        group = self.param_groups[0]
        return statistics.median(as_float(eta) for eta in group["eta"]) if "eta" in group else None
