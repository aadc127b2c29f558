"""SLS: stochastic Armijo line search (Vaswani et al., NeurIPS 2019), reimplemented.

The PyPI name ``sls`` is not this method (the reference lives only on GitHub, IssamLaradji/sls), so
this is a faithful reimplementation of its ``Sls`` class with the Armijo condition, the variant and
defaults the AdaS and RMSGD code vendored (notes/adas.md 2.2, notes/rmsgd.md 2.4):

- per step (Algorithm 1 + Sect. 3 "reset"): eta <- eta * gamma**(1 / n_batches_per_epoch)
  (``reset_option=1``; 0 keeps eta, 2 restarts from ``init_step_size``);
- backtracking: try w' = w - eta * g on the SAME mini-batch; accept when
  f(w') <= f(w) - c * eta * ||g||^2 (Armijo, Eq. (1)), else eta <- beta_b * eta; at most 100 tries,
  after which the step is w - 1e-6 * g (the reference's fallback) and eta keeps its last value;
- no step when ||g|| < 1e-8; the accepted eta is remembered for the next mini-batch (one eta per
  parameter group; the reference shares one across groups, the same thing with the single group
  the configs build, since SLS has no weight decay to exempt parameters from).
Defaults: init_step_size 1, c 0.1, beta_b 0.9, gamma 2, n_batches_per_epoch 500 (the reference's
default, left unset by the AdaS/RMSGD training scripts). The Goldstein variant (beta_f, eta_max,
bound_step_size) is not implemented: no paper here uses it.

Trainer protocol: ``requires = {"loss", "closure"}``: the trainer passes the mini-batch loss at w
(whose gradients it has back-propagated) and ``closure(backward=False)`` re-evaluates the loss at
trial points. Like the reference, trial evaluations share one RNG seed per step (one dropout mask
among them); unlike it, the loss at w comes from the trainer's own forward pass.
"""
from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

import torch

from optimizers.protocol import CLOSURE, LOSS
from optimizers.torch_compat import KeepsAttributes

MAX_BACKTRACKS = 100
FALLBACK_STEP = 1e-6


class SLS(KeepsAttributes, torch.optim.Optimizer):
    """SGD whose step size is found by a stochastic Armijo line search.

    Args:
        params: parameters or parameter groups (the line search runs once per group, as the reference).
        n_batches_per_epoch: sets the per-step growth gamma**(1/n) (default 500).
        init_step_size: initial eta (default 1).
        c: Armijo constant (default 0.1).
        beta_b: backtracking factor (default 0.9).
        gamma: step-size growth per epoch (default 2.0).
        reset_option: 0 keep, 1 grow by gamma**(1/n) (default), 2 restart from init_step_size.
    """

    requires = frozenset({LOSS, CLOSURE})

    def __init__(self, params: Any, n_batches_per_epoch: int = 500, init_step_size: float = 1.0, c: float = 0.1,
                 beta_b: float = 0.9, gamma: float = 2.0, reset_option: int = 1) -> None:
        if init_step_size <= 0 or not 0 < beta_b < 1 or c <= 0 or n_batches_per_epoch < 1:
            raise ValueError("SLS needs init_step_size > 0, 0 < beta_b < 1, c > 0 and n_batches_per_epoch >= 1")
        if reset_option not in (0, 1, 2):
            raise ValueError(f"reset_option must be 0, 1 or 2, got {reset_option}")
        # ``lr`` holds the current step size eta: the trainer logs it and an epoch schedule would scale it.
        defaults = dict(lr=init_step_size, n_batches_per_epoch=n_batches_per_epoch, init_step_size=init_step_size,
                        c=c, beta_b=beta_b, gamma=gamma, reset_option=reset_option)
        super().__init__(params, defaults)
        self.n_forwards = 0

    def _reset(self, group: dict[str, Any]) -> float:
        """The trial step size at the start of a step (reference ``reset_step``)."""
        if group["reset_option"] == 1:
            return group["lr"] * group["gamma"] ** (1.0 / group["n_batches_per_epoch"])
        if group["reset_option"] == 2:
            return group["init_step_size"]
        return group["lr"]

    @torch.no_grad()
    def step(self, closure: Callable[..., torch.Tensor] | None = None,  # type: ignore[override]
             loss: torch.Tensor | None = None) -> torch.Tensor:
        """One line-search step. Without ``loss``, ``closure(backward=True)`` computes it and its gradients."""
        if closure is None:
            raise ValueError("SLS needs a closure that re-evaluates the mini-batch loss (step(closure))")
        if loss is None:
            with torch.enable_grad():
                loss = closure(backward=True)
            self.n_forwards += 1
        seed = random.randrange(2**31)

        def trial_loss() -> torch.Tensor:
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(seed)
                self.n_forwards += 1
                return closure(backward=False)

        for group in self.param_groups:
            params = [p for p in group["params"] if p.grad is not None]
            start = [p.detach().clone() for p in params]
            grads = [p.grad.detach().clone() for p in params]
            grad_norm_sq = sum(float(g.square().sum()) for g in grads)
            step_size = self._reset(group)
            if grad_norm_sq ** 0.5 >= 1e-8:
                for _ in range(MAX_BACKTRACKS):
                    _move(params, start, grads, step_size)
                    if float(trial_loss()) <= float(loss) - step_size * group["c"] * grad_norm_sq:  # Armijo
                        break
                    step_size *= group["beta_b"]
                else:
                    _move(params, start, grads, FALLBACK_STEP)
            group["lr"] = step_size
        return loss

    def epoch_log(self) -> dict[str, Any]:
        """The current step size of each group and the forward passes so far."""
        return {"step_size": [g["lr"] for g in self.param_groups], "n_forwards": self.n_forwards}

    def state_dict(self) -> dict[str, Any]:
        """Torch's state dict plus the forward-pass count, so that a resumed run logs the true count."""
        return {**super().state_dict(), "n_forwards": self.n_forwards}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        state_dict = dict(state_dict)
        self.n_forwards = int(state_dict.pop("n_forwards", 0))
        super().load_state_dict(state_dict)


def _move(params: list[torch.Tensor], start: list[torch.Tensor], grads: list[torch.Tensor], step: float) -> None:
    """params <- start - step * grads."""
    for p, p0, g in zip(params, start, grads):
        p.copy_(p0 - step * g)
