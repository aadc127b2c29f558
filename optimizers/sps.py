"""SPS: the stochastic Polyak step-size (Loizou, Vaswani, Laradji, Lacoste-Julien, AISTATS 2021).

Paper (its Eqs. 3-5, as restated in Suh & Seo's Eq. 8):

    eta_k = (f_i(w_k) - f_i*) / (c * ||g_k||**2)        SPS
    eta_k = min(eta_k, eta_max)                          SPS_max (eta_max = gamma_b)
    w_{k+1} = w_k - eta_k * g_k

Authors' code (github.com/IssamLaradji/sps, ``sps/sps.py``; the PyPI name ``sps`` is an unrelated
package, so this is a reimplementation) adds what the paper does not write down, and we keep it:
``eps`` in the denominator ``c * ||g||**2 + eps``; step 0 when ``||g|| < 1e-8`` or the loss is below
f*; and the ``smooth_iter`` option, ``eta_k = min(gamma**(1/n_batches_per_epoch) * eta_{k-1},
eta_k)`` with ``eta_{-1} = init_step_size``. Differences from that code (config switches where they
matter): f* and eta_max also apply with ``smooth_iter`` (the code ignores both there; with the
defaults f* = 0 and eta_max = None this changes nothing); optional coupled weight decay (the code
has none; default 0); the loss comes from the bench trainer (``requires = {"loss"}``).

Defaults follow notes/ps-lrfree.md: c = 0.5 (the SPS code default; the PS paper's value is lost),
f* = 0 (cross-entropy), no eta_max, no smoothing (the PS paper describes SPS's estimate as
"fluctuating"). ``optimizers.PSSPS`` is this class in the Adam-parameter-scaled space.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import torch

from optimizers.lr_log import EstimatedLRLog
from optimizers.protocol import LOSS

TINY_GRAD_NORM = 1e-8  # the SPS code takes no step when ||g|| is below this


class SPS(EstimatedLRLog, torch.optim.Optimizer):
    """Stochastic Polyak step-size; ``step(loss=...)`` needs the mini-batch loss.

    Args:
        params: parameters or parameter groups (one step size for all of them).
        c: the Polyak scaling constant (default 0.5).
        f_star: lower bound of the mini-batch loss, f_i* (default 0, right for cross-entropy).
        eta_max: upper bound of the step size (SPS_max); None for none.
        smooth_iter: cap growth at ``gamma**(1/n_batches_per_epoch)`` per step (SPS code option).
        gamma: growth factor per epoch for ``smooth_iter`` (default 2.0).
        n_batches_per_epoch: steps per epoch; required when ``smooth_iter`` is on.
        init_step_size: eta_{-1} for ``smooth_iter`` (default 1.0).
        eps: added to ``c * ||g||**2`` (default 1e-8).
        weight_decay: coupled L2 added to the gradient (default 0; the SPS code has none).
        log_lr_every: also log eta_k every N steps (0: once per epoch only).
    """

    requires = frozenset({LOSS})

    def __init__(self, params: Iterable[Any], c: float = 0.5, f_star: float = 0.0, eta_max: float | None = None,
                 smooth_iter: bool = False, gamma: float = 2.0, n_batches_per_epoch: int | None = None,
                 init_step_size: float = 1.0, eps: float = 1e-8, weight_decay: float = 0.0,
                 log_lr_every: int = 0) -> None:
        if c <= 0.0:
            raise ValueError(f"c must be positive, got {c}")
        if eta_max is not None and eta_max <= 0.0:
            raise ValueError(f"eta_max must be positive or None, got {eta_max}")
        if smooth_iter and (not isinstance(n_batches_per_epoch, int) or n_batches_per_epoch < 1):
            raise ValueError("smooth_iter needs the number of steps per epoch: pass "
                             "optim.hparams.n_batches_per_epoch=<train batches per epoch>")
        if weight_decay < 0.0:
            raise ValueError(f"weight_decay must be non-negative, got {weight_decay}")
        if init_step_size <= 0.0 or eps < 0.0:
            raise ValueError(f"need init_step_size > 0 and eps >= 0, got {init_step_size} and {eps}")
        defaults = dict(c=c, f_star=f_star, eta_max=eta_max, smooth_iter=smooth_iter, gamma=gamma,
                        n_batches_per_epoch=n_batches_per_epoch, eps=eps, weight_decay=weight_decay,
                        step_size=init_step_size, k=0)
        super().__init__(params, defaults)
        self._init_lr_log(log_lr_every)

    # -- hooks for the parameter-scaled variant (PSSPS) ------------------------------------------
    def _directions(self, grads: list[torch.Tensor], params: list[torch.Tensor], k: int) -> list[torch.Tensor]:
        """The per-coordinate divisor alpha_k**2 applied to g; SPS: none (alpha = 1)."""
        return grads

    # -- the method --------------------------------------------------------------------------------
    def estimated_lr(self) -> float | None:
        group = self.param_groups[0]
        return float(group["step_size"]) if group["k"] > 0 else None

    def _step_size(self, group: dict[str, Any], loss: float, sq_norm: float) -> float:
        """eta_k of SPS (Loizou et al. Eq. 3), SPS_max and the code's ``smooth_iter``."""
        if sq_norm < TINY_GRAD_NORM ** 2 or loss < group["f_star"]:
            return 0.0
        eta = (loss - group["f_star"]) / (group["c"] * sq_norm + group["eps"])
        if group["smooth_iter"]:
            eta = min(group["gamma"] ** (1.0 / group["n_batches_per_epoch"]) * group["step_size"], eta)
        if group["eta_max"] is not None:
            eta = min(eta, group["eta_max"])
        return eta

    @torch.no_grad()
    def step(self, closure: Callable[[], torch.Tensor] | None = None,
             loss: torch.Tensor | float | None = None) -> torch.Tensor | float:
        if loss is None:
            if closure is None:
                raise ValueError(f"{type(self).__name__} needs the mini-batch loss: call step(loss=loss) or "
                                 f"step(closure); the bench trainer does so because requires={{'loss'}}")
            with torch.enable_grad():
                loss = closure()
        loss_value = float(loss)
        params, grads = [], []
        for group in self.param_groups:  # all groups form one vector with one step size, as in SPS
            for p in group["params"]:
                if p.grad is not None:
                    params.append(p)
                    grads.append(p.grad if group["weight_decay"] == 0 else p.grad.add(p, alpha=group["weight_decay"]))
        first = self.param_groups[0]
        directions = self._directions(grads, params, first["k"])  # alpha^-2 * g
        # ||alpha^-1 g||^2 = <g, alpha^-2 g>; for SPS (alpha = 1) it is ||g||^2.
        sq_norm = float(sum(torch.dot(g.flatten(), d.flatten()) for g, d in zip(grads, directions)))
        eta = self._step_size(first, loss_value, sq_norm)
        if eta != 0.0 and params:
            torch._foreach_add_(params, directions, alpha=-eta)
        for group in self.param_groups:
            group["step_size"], group["k"] = eta, group["k"] + 1
        return loss
