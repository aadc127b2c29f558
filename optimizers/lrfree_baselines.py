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

torch.optim conventions the packages miss (``optimizers.torch_compat``, issue 11): hyper-parameters
are range-checked at construction (``ValueError``); deepcopy/pickle keep every attribute; D-Adapt
SGD/Adam and Prodigy refuse a different lr per group at construction (the packages raise
``RuntimeError`` at the first step); D-Adapt SGD refuses a different weight decay per group
(``dadaptation`` 3.2 applies the first group's to every group, so ``no_weight_decay`` would silently
still decay) and skips a step in which no parameter has a gradient, or only zero ones before any
step (the package divides by zero); DoG/LDoG turn a non-finite gradient into a NaN step size and
NaN parameters (the package's ``assert G > 0`` would crash the run instead of letting the trainer
record it as diverged) and refuse ``add_param_group`` after their first step (the package keeps
each group's initial point from then).

``dadaptation`` 3.2 (DAdaptSGD unchanged since 3.0), ``prodigyopt`` 1.0 (the release of the PS
paper's time), ``dog-optimizer`` 1.0.3 and ``parameterfree`` 0.0.1 are pinned in
``requirements/constraints.txt``.
"""
from __future__ import annotations

import logging
import math
import statistics
from typing import Any

import dadaptation
import dog
import parameterfree
import prodigyopt
import torch
from torch import nn

from optimizers.lr_log import EstimatedLRLog, as_float
from optimizers.torch_compat import KeepsAttributes, check_hparams, check_one_lr

logging.getLogger(dog.dog.__name__).setLevel(logging.WARNING)  # it logs every state_dict() at INFO


class _DAdapted(EstimatedLRLog):
    """Estimated LR of the D-Adaptation family: d * lr as used by the last step (d before its update)."""

    def __init__(self, params: Any, log_lr_every: int = 0, **hparams: Any) -> None:
        check_hparams(**hparams)
        super().__init__(params, **hparams)
        check_one_lr(self.param_groups, type(self).__name__)
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
    """``dadaptation.DAdaptSGD``; estimated LR = d * lr / ||g_0|| (its step size). One weight decay for
    all groups (the package's), and no step while no gradient has arrived (see module docstring)."""

    def __init__(self, params: Any, log_lr_every: int = 0, **hparams: Any) -> None:
        super().__init__(params, log_lr_every, **hparams)
        decays = {group["weight_decay"] for group in self.param_groups}
        if len(decays) > 1:
            raise ValueError(f"D-Adapt SGD (dadaptation 3.2) applies the first group's weight decay to every group, "
                             f"got {sorted(decays)}: use one weight decay (optim.no_weight_decay=[])")

    def step(self, closure: Any = None) -> Any:
        grads = [p.grad for group in self.param_groups for p in group["params"] if p.grad is not None]
        if not grads or (self.param_groups[0]["k"] == 0 and not any(bool(g.any()) for g in grads)):
            return closure() if closure is not None else None   # the package would divide by zero
        return super().step(closure)

    def _step_lr(self, group: dict[str, Any]) -> float:
        return group["d"] * group["lr"] / group["g0_norm"]


class DAdaptAdam(_DAdapted, dadaptation.DAdaptAdam):
    """``dadaptation.DAdaptAdam`` (the v3 algorithm); estimated LR = d * lr."""


class Prodigy(_DAdapted, prodigyopt.Prodigy):
    """``prodigyopt.Prodigy``; estimated LR = d * lr."""


class COCOB(KeepsAttributes, parameterfree.COCOB):
    """``parameterfree.COCOB`` (COCOB-Backprop, Orabona & Tommasi 2017): per-coordinate, no LR to log."""

    def __init__(self, params: Any, *args: Any, **hparams: Any) -> None:
        check_hparams(**hparams)
        super().__init__(params, *args, **hparams)


class _AveragedDoG(EstimatedLRLog):
    """DoG/LDoG with skipped grad-less parameters and the polynomial-decay averager."""

    def __init__(self, params: Any, average: bool = True, averager_gamma: float = 8.0, log_lr_every: int = 0,
                 **hparams: Any) -> None:
        check_hparams(averager_gamma=averager_gamma, **hparams)
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

    def add_param_group(self, param_group: dict[str, Any]) -> None:
        """Refused after the first step: DoG measures every group's distance from its first iterate."""
        if not getattr(self, "_first_step", True):
            raise ValueError(f"{type(self).__name__} cannot add a parameter group after its first step (it measures "
                             "distances from each group's initial point); add all groups before training")
        super().add_param_group(param_group)

    # -- the step ----------------------------------------------------------------------------------
    @torch.no_grad()
    def step(self, closure: Any = None) -> Any:
        grads = [p.grad for group in self.param_groups for p in group["params"] if p.grad is not None]
        if grads and not bool(torch.isfinite(torch.stack([g.square().sum() for g in grads]).sum())):
            return self._diverge(closure)
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

    def _diverge(self, closure: Any) -> Any:
        """A non-finite gradient: NaN step sizes and parameters, which the trainer records as diverged
        (the package would fail ``assert G > 0``)."""
        for group in self.param_groups:
            group["eta"] = [torch.tensor(math.nan)] * len(group["params"])
            for p in group["params"]:
                if p.grad is not None:
                    p.fill_(math.nan)
        return closure() if closure is not None else None


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
