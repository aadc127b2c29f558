"""PS-SPS: the stochastic Polyak step-size in the parameter-scaled space (Suh & Seo, arXiv 2401.03240,
Algorithm 1). RECONSTRUCTION: the paper text available to us lost every equation and the body of
Algorithm 1; this follows notes/ps-lrfree.md section 1.3, built from the surviving prose.

What the prose states ([V] in the notes): an adaptive method is SGD on the network scaled by alpha
(Eqs. 1-4); "to convert SPS to PS-SPS, we only need to scale ||g_k||**2 and g_k"; the inputs include
c and f*; PS-SPS uses the Adam scaling rule and no momentum; c follows Loizou et al. (value lost).

Reconstructed update (tag [R]; alpha_k**2 from ``optimizers.param_scaling``, Adam rule by default):

    eta_k   = (f_i(w_k) - f*) / (c * ||alpha_k^-1 * g_k||**2)      # SPS's Eq. 8 in the scaled space
    w_{k+1} = w_k - eta_k * alpha_k^-2 * g_k                       # SGD step on w' mapped back (Eq. 4)

For a scalar alpha this update does not depend on alpha, unlike the naive substitution
g -> alpha^-2 g of the paper's Eqs. 9-11 (tests/test_ps_lrfree.py shows both). With
``scaling="none"`` it is exactly ``optimizers.SPS``. The SPS options (eta_max, smooth_iter, eps)
act on eta_k as in SPS; the paper does not say whether it used them (off by default).

``variant`` names the reconstruction; only ``"notes_r1"`` (the form above) exists. The config
``conf/optim/ps_sps.yaml`` carries ``reconstruction: ...``, which every run record stores.
"""
from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch

from optimizers.param_scaling import ScalingRule, build_rule
from optimizers.sps import SPS

VARIANTS = ("notes_r1",)


class PSSPS(SPS):
    """Parameter-scaled SPS (reconstructed Algorithm 1); ``step(loss=...)`` needs the mini-batch loss.

    Args (besides those of ``SPS``):
        scaling: ``"adam"`` (default, the paper's experiments), ``"amsgrad"`` (its proofs),
            ``"none"`` (alpha = 1, i.e. SPS) or a ``ScalingRule``.
        beta2, scale_eps: second-moment decay and epsilon of the scaling rule (0.999, 1e-8; assumed).
        variant: which reconstruction of Algorithm 1 (only ``"notes_r1"``).
    """

    def __init__(self, params: Iterable[Any], c: float = 0.5, f_star: float = 0.0, eta_max: float | None = None,
                 smooth_iter: bool = False, gamma: float = 2.0, n_batches_per_epoch: int | None = None,
                 init_step_size: float = 1.0, eps: float = 1e-8, weight_decay: float = 0.0,
                 scaling: str | ScalingRule = "adam", beta2: float = 0.999, scale_eps: float = 1e-8,
                 variant: str = "notes_r1", log_lr_every: int = 0) -> None:
        if variant not in VARIANTS:
            raise ValueError(f"unknown PS-SPS variant {variant!r}; pick variant from {VARIANTS}")
        self.rule = build_rule(scaling, beta2, scale_eps)
        self.variant = variant
        super().__init__(params, c=c, f_star=f_star, eta_max=eta_max, smooth_iter=smooth_iter, gamma=gamma,
                         n_batches_per_epoch=n_batches_per_epoch, init_step_size=init_step_size, eps=eps,
                         weight_decay=weight_decay, log_lr_every=log_lr_every)

    def _directions(self, grads: list[torch.Tensor], params: list[torch.Tensor], k: int) -> list[torch.Tensor]:
        """alpha_k^-2 * g_k, updating the scaling rule's state (e.g. Adam's v) on the way."""
        return [g / self.rule.denominator(self.state[p], g, k) for g, p in zip(grads, params)]
