"""SAM: Sharpness-Aware Minimization (Foret et al., ICLR 2021), wrapping a base optimizer.

Paper, Algorithm 1 / Eq. (2): with g = grad L_B(w),
    e(w) = rho * g / ||g||_2                         (the first-order solution of the inner max)
    g_SAM = grad L_B(w + e(w))                       (second forward/backward on the same batch)
    w <- base_step(w, g_SAM)                         (here SGD with momentum, as RMSGD used it)
``adaptive=True`` is ASAM (Kwon et al. 2021): e = rho * T^2 g / ||T g|| with T = |w|; it is off by
default. The norm is taken over all parameters of all groups, the perturbation excludes weight decay
(the base optimizer applies it in its own step), and ``eps=1e-12`` guards a zero gradient, as in the
widely used implementation the RMSGD paper code vendored (davda54/sam, rho default 0.05).

Trainer protocol: ``requires = {"closure"}``. The trainer has already back-propagated the mini-batch
loss at w; ``step(closure)`` perturbs w, calls ``closure(backward=True)`` for the gradient at w + e,
restores w and lets the base optimizer step. BatchNorm running statistics are updated by both
forward passes (the second is in training mode), as with that implementation used without its BN
bypass.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from optimizers.protocol import CLOSURE
from optimizers.torch_compat import KeepsAttributes

BASES: dict[str, type[torch.optim.Optimizer]] = {"SGD": torch.optim.SGD}


class SAM(KeepsAttributes, torch.optim.Optimizer):
    """SAM around ``base`` (a name in ``BASES``), which receives ``base_hparams`` (lr, momentum, ...).

    Args:
        params: parameters or parameter groups.
        rho: radius of the neighbourhood (default 0.05).
        adaptive: ASAM's parameter-scaled perturbation (default False).
        base: name of the base optimizer (default "SGD").
        **base_hparams: keyword arguments of the base optimizer (lr, momentum, weight_decay, nesterov).
    """

    requires = frozenset({CLOSURE})

    def __init__(self, params: Any, rho: float = 0.05, adaptive: bool = False, base: str = "SGD",
                 **base_hparams: Any) -> None:
        if rho < 0:
            raise ValueError(f"rho must be non-negative, got {rho}")
        if base not in BASES:
            raise ValueError(f"unknown base optimizer {base!r}; known: {sorted(BASES)}")
        super().__init__(params, dict(rho=rho, adaptive=adaptive))
        self.base_optimizer = BASES[base](self.param_groups, **base_hparams)
        self.param_groups = self.base_optimizer.param_groups  # one set of groups: schedules act on both

    def add_param_group(self, param_group: dict[str, Any]) -> None:
        """A new group gets SAM's defaults (rho, adaptive) and the base optimizer's (lr, momentum, ...)."""
        if not hasattr(self, "base_optimizer"):   # called by torch.optim.Optimizer.__init__
            super().add_param_group(param_group)
            return
        for key, value in self.defaults.items():
            param_group.setdefault(key, value)
        self.base_optimizer.add_param_group(param_group)   # appends to the shared list of groups

    @torch.no_grad()
    def _ascend(self) -> None:
        """w <- w + e(w), remembering w."""
        grads = [((p.abs() if g["adaptive"] else 1.0) * p.grad).norm(2)
                 for g in self.param_groups for p in g["params"] if p.grad is not None]
        norm = torch.stack(grads).norm(2) if grads else torch.zeros(())
        for group in self.param_groups:
            scale = group["rho"] / (norm + 1e-12)
            for p in group["params"]:
                if p.grad is None:
                    continue
                self.state[p]["old_p"] = p.detach().clone()
                p.add_((p.square() if group["adaptive"] else 1.0) * p.grad * scale)

    @torch.no_grad()
    def _restore(self) -> None:
        for group in self.param_groups:
            for p in group["params"]:
                if "old_p" in self.state[p]:
                    p.copy_(self.state[p].pop("old_p"))

    def step(self, closure: Callable[..., torch.Tensor] | None = None) -> torch.Tensor:  # type: ignore[override]
        """One SAM step; ``closure(backward=True)`` must recompute the mini-batch loss and its gradients."""
        if closure is None:
            raise ValueError("SAM needs a closure that re-evaluates the mini-batch loss (step(closure))")
        self._ascend()
        with torch.enable_grad():
            loss = closure(backward=True)
        self._restore()
        self.base_optimizer.step()
        return loss

    def state_dict(self) -> dict[str, Any]:
        return self.base_optimizer.state_dict()

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.base_optimizer.load_state_dict(state_dict)
        self.param_groups = self.base_optimizer.param_groups
