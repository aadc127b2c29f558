"""PS-DA-SGD: D-Adapt SGD in the parameter-scaled space (Suh & Seo, arXiv 2401.03240, Algorithm 2).
RECONSTRUCTION: the paper text available to us lost every equation and the body of Algorithm 2;
this is the candidate of notes/ps-lrfree.md section 1.4.3 (tag [R]), not the authors' algorithm.

Base method, exact (``dadaptation.DAdaptSGD`` 3.2, Defazio & Mishchenko 2023):

    lambda_k = d_k * gamma_k / ||g_0||            s_{k+1} = s_k + lambda_k g_k
    d_hat = 2 sum_i lambda_i <g_i, s_i> / ||s_{k+1}||,  d_{k+1} = max(d_k, min(d_hat, d_k * growth))
    z_{k+1} = x_0 - s_{k+1},   x_{k+1} = beta x_k + (1 - beta) z_{k+1}      (momentum beta)

What the paper's prose states ([V]): run it on the network scaled by alpha (Eqs. 1-4; Adam scaling
in all experiments, plus momentum); applying Alg. 1's substitution directly fails because the
step depends on d_k / ||g_0||, and a coordinate whose alpha collapses blows the scaled ||g_0|| up
and stops training; design principles (i) a uniform alpha changes no update, (ii) one converged
coordinate does not stop the others; "we shrink d_k by the maximum scale ratio (Lines 6-7)" and
replace ||g_0|| by another quantity (Lines 8-9, symbols lost).

Reconstructed update (``variant="notes_r1"``), step k with gradient g_k (coupled weight decay
added) and alpha_k**2 from ``optimizers.param_scaling`` (Adam rule by default):

    g'_k     = alpha_k^-1 g_k                                   gradient in the scaled space
    rho_k    = max_j alpha_{k,j} / alpha_{k-1,j}                "maximum scale ratio" (rho_0 = 1)
    d_k <- rho_k d_k,  G <- G / rho_k,  s'_k <- rho_k s'_k,  num <- rho_k**2 num   (scalar re-expression)
    G        = ||alpha_0^-1 g_0|| at k = 0, then only rescaled  (replaces the per-coordinate ||alpha_k^-1 g_0||)
    lambda_k = d_k gamma_k / G                                  the estimated (Adam-unit) learning rate
    num     += lambda_k <g'_k, s'_k>;   s'_{k+1} = s'_k + lambda_k g'_k
    d_{k+1}  = max(d_k, min(2 num / ||s'_{k+1}||, d_k * growth))
    z_{k+1}  = z_k - lambda_k alpha_k^-2 g_k ;  x_{k+1} = beta x_k + (1 - beta) z_{k+1}

and d_0 = d0 * max_j alpha_{0,j} (d0 is read in the units of the first scale, so that a constant
alpha changes nothing, principle (i)). With alpha = 1 (``scaling="none"``) every line is
D-Adapt SGD's (property P1, tested against the package).

Choices the notes leave open are switches: ``shrink_only`` (default True: rho_k <- min(1, rho_k),
"shrink" and "compensate for the decrease of alpha_k" read literally; with False one coordinate
whose alpha grows from ~eps makes rho_k huge and the run explodes, as our smoke runs showed) and
``scaling`` (adam | amsgrad | none).

Implementation (same arithmetic, fewer passes over memory; the step costs ~1.4x DAdaptSGD's, see
scripts/bench_ps_dasgd_step.py): d, G, num and s' are kept in the units of the first step's scale
and multiplied by the running product P_k = rho_1...rho_k when used, instead of rescaling s' in
place; z is updated in place instead of recomputed as x0 - s (in float32 this rounds differently
from the package by a few ulps); Adam's bias correction is folded into scalars
(``ScalingRule.factored_denominator``); p.grad is overwritten with alpha^-1 g (dadaptation also
modifies p.grad in place, for weight decay). Differences from the package besides the scaling:
per-group weight decay is honoured (the package applies the first group's, and leaves it out of
||g_0||), groups with lr 0 are frozen, and d_hat's numerator is summed once per step.
``conf/optim/ps_dasgd.yaml`` carries ``reconstruction: ...``, which every run record stores.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from typing import Any

import torch

from optimizers.lr_log import EstimatedLRLog
from optimizers.param_scaling import ScalingRule, build_rule
from optimizers.torch_compat import check_one_lr

VARIANTS = ("notes_r1",)


def _total(values: list[torch.Tensor]) -> float:
    """Sum of scalar tensors as a Python float (one device sync), in float64 like the package."""
    return math.fsum(torch.stack(values).double().tolist()) if values else 0.0


class PSDASGD(EstimatedLRLog, torch.optim.Optimizer):
    """Parameter-scaled D-Adapt SGD (reconstructed Algorithm 2).

    Args:
        params: parameters or parameter groups; all groups share d (as in D-Adapt SGD).
        lr: gamma_k, the multiplier/schedule of the D-adapted step (default 1.0).
        momentum: D-Adapt SGD's primal-averaging momentum beta (default 0.9, the value the paper's
            stripped number most likely was).
        weight_decay: coupled L2 added to the gradient (default 0: the paper's Table 3).
        d0: initial distance estimate in units of the first scale (default 1e-6).
        growth_rate: cap on d's growth per step (default inf).
        scaling: ``"adam"`` (default), ``"amsgrad"``, ``"none"`` (D-Adapt SGD) or a ``ScalingRule``.
        beta2, eps: second-moment decay and epsilon of the scaling rule (0.999, 1e-8; assumed).
        shrink_only: clip the maximum scale ratio at 1 (default True).
        variant: which reconstruction of Algorithm 2 (only ``"notes_r1"``).
        log_lr_every: also log lambda_k every N steps (0: once per epoch only).
    """

    def __init__(self, params: Iterable[Any], lr: float = 1.0, momentum: float = 0.9, weight_decay: float = 0.0,
                 d0: float = 1e-6, growth_rate: float = math.inf, scaling: str | ScalingRule = "adam",
                 beta2: float = 0.999, eps: float = 1e-8, shrink_only: bool = True, variant: str = "notes_r1",
                 log_lr_every: int = 0) -> None:
        if variant not in VARIANTS:
            raise ValueError(f"unknown PS-DA-SGD variant {variant!r}; pick variant from {VARIANTS}")
        if lr <= 0.0:
            raise ValueError(f"lr must be positive (it multiplies the D-adapted step), got {lr}")
        if not 0.0 <= momentum < 1.0:
            raise ValueError(f"momentum must be in [0, 1), got {momentum}")
        if d0 <= 0.0:
            raise ValueError(f"d0 must be positive, got {d0}")
        if weight_decay < 0.0:
            raise ValueError(f"weight_decay must be non-negative, got {weight_decay}")
        self.rule = build_rule(scaling, beta2, eps)
        self.variant, self.shrink_only = variant, shrink_only
        defaults = dict(lr=lr, momentum=momentum, weight_decay=weight_decay, d0=d0, growth_rate=growth_rate,
                        k=0, d=d0, g0_norm=0.0, numerator=0.0, scale=1.0, lam=0.0, inv_factor=1.0)
        super().__init__(params, defaults)
        check_one_lr(self.param_groups, "PS-DA-SGD (like D-Adapt SGD)")
        self._init_lr_log(log_lr_every)
        self._spare: dict[torch.Tensor, torch.Tensor] = {}

    def estimated_lr(self) -> float | None:
        group = self.param_groups[0]
        return group["lam"] if group["k"] > 0 else None

    def _scale(self, k: int) -> tuple[list[tuple], float, float, float]:
        """Update alpha_k^-1 = f_k * a_k of every parameter (the tensor a_k is stored, the scalar f_k
        is folded into the step's scalars) and turn p.grad into a_k * g (in place, as dadaptation
        adds weight decay in place). Returns the (p, group, state, a_k g) entries, f_k, the maximum
        scale ratio max_j alpha_{k,j} / alpha_{k-1,j}, and at k = 0 ||alpha_0^-1 g_0||**2."""
        entries, ratios, g0_sq, factor = [], [], [], 1.0
        for group in self.param_groups:
            if group["lr"] == 0.0:
                continue
            for p in group["params"]:
                if p.grad is None:
                    continue
                state = self.state[p]
                grad = p.grad if group["weight_decay"] == 0 else p.grad.add_(p, alpha=group["weight_decay"])
                if "inv_alpha" not in state:
                    state["inv_alpha"] = torch.ones_like(p)
                    state["z"] = p.detach().clone()  # x0 - sum_i lambda_i alpha_i^-2 g_i
                    state["s"] = torch.zeros_like(p)  # s' in first-step units
                # alpha_k^-1 goes into a spare buffer that then swaps with the state's: no allocation
                spare = self._spare.pop(p, None)
                spare = torch.empty_like(p) if spare is None else spare
                denominator, factor = self.rule.factored_denominator(state, grad, k, out=spare)
                inv_alpha = denominator.rsqrt_()
                if k > 0:  # a_{k-1} / a_k, computed in the old buffer (it becomes the spare)
                    ratios.append(state["inv_alpha"].div_(inv_alpha).max())
                self._spare[p], state["inv_alpha"] = state["inv_alpha"], inv_alpha
                scaled = grad.mul_(inv_alpha)  # g' / f_k, in place of p.grad
                if k == 0:
                    g0_sq.append(torch.dot(scaled.flatten(), scaled.flatten()))
                entries.append((p, group, state, scaled))
        inv_factor = factor ** -0.5
        ratio = torch.stack(ratios).max().item() * self.param_groups[0]["inv_factor"] / inv_factor if ratios else 1.0
        return entries, inv_factor, ratio, inv_factor ** 2 * _total(g0_sq)

    @torch.no_grad()
    def step(self, closure: Callable[[], torch.Tensor] | None = None) -> torch.Tensor | None:
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        first = self.param_groups[0]
        lr = max(group["lr"] for group in self.param_groups)
        if any(group["lr"] not in (lr, 0.0) for group in self.param_groups):
            raise RuntimeError("PS-DA-SGD (like D-Adapt SGD) needs one lr for all parameter groups (or 0)")
        k, d, growth = first["k"], first["d"], first["growth_rate"]
        entries, f, ratio, g0_sq = self._scale(k)
        if not entries:
            return loss
        if k == 0:
            g0_norm = math.sqrt(g0_sq)
            if g0_norm == 0.0:  # nothing to learn from yet; start again at the next step
                return loss
            # d_0 = d0 * max_j alpha_{0,j}
            d = first["d0"] / (f * torch.stack([state["inv_alpha"].min() for _, _, state, _ in entries]).min().item())
            scale = 1.0
        else:
            g0_norm = first["g0_norm"]
            # maximum scale ratio (Lines 6-7)
            scale = first["scale"] * (min(ratio, 1.0) if self.shrink_only else ratio)
        lam = scale * scale * d * lr / g0_norm  # lambda_k in current units; d, G in first-step units
        lam_ref = lam / scale                   # the same step expressed in first-step units
        dots, sq_norms = [], []
        for p, group, state, g_scaled in entries:  # g_scaled = g' / f
            s, inv_alpha = state["s"], state["inv_alpha"]
            dots.append(torch.dot(g_scaled.flatten(), s.flatten()))
            s.add_(g_scaled, alpha=lam_ref * f)
            sq_norms.append(torch.dot(s.flatten(), s.flatten()))
            state["z"].addcmul_(g_scaled, inv_alpha, value=-lam * f * f)  # z -= lambda alpha^-2 g
            p.lerp_(state["z"], 1.0 - group["momentum"])  # beta x + (1 - beta) z
        numerator = first["numerator"] + lam_ref * f * _total(dots)
        sk_norm = math.sqrt(_total(sq_norms))
        if sk_norm > 0.0:
            d = max(d, min(2.0 * numerator / sk_norm, d * growth))
        for group in self.param_groups:
            group.update(k=k + 1, d=d, g0_norm=g0_norm, numerator=numerator, scale=scale, lam=lam, inv_factor=f)
        return loss
