"""Parameter-scaling rules of Suh & Seo (arXiv 2401.03240), shared by PS-SPS and PS-DA-SGD.

The paper reads an adaptive method as SGD on a parameter-scaled network ``w' = alpha * w`` (its
Eqs. 1-4): a per-coordinate divisor ``alpha**2`` of the gradient is the same as SGD on ``w'``. A
rule here returns that divisor, ``alpha_k**2``, for the current gradient; the optimizers then work
with ``g / alpha`` (the gradient in the scaled space) and map steps back with ``1 / alpha**2``.

The rule's exact formula was lost from the paper text (notes/ps-lrfree.md section 1.1, tag [R]);
the reconstruction used here is ``alpha_k**2 = sqrt(v_k / (1 - beta2**(k+1))) + eps``, i.e. the
bias-corrected Adam denominator ("Adam scaling", used in all the paper's experiments), or its
AMSGrad form ``v_hat_k = max(v_hat_{k-1}, v_k)`` (used in the paper's convergence proofs).

``none`` (alpha = 1) turns PS-SPS into SPS and PS-DA-SGD into D-Adapt SGD (property P1).
``Constant`` and ``Multiplied`` exist to state the invariances P2 and Eqs. 9-11 as tests.
"""
from __future__ import annotations

import math
from collections.abc import Callable

import torch


class ScalingRule:
    """Maps (per-parameter state, gradient, step index k >= 0) to the divisor ``alpha_k**2``.

    ``denominator`` writes it into ``out`` (a tensor shaped like ``grad``; a new one when None) and
    returns it, so that optimizers can reuse one buffer instead of allocating every step.
    """

    name = "rule"

    def denominator(self, state: dict, grad: torch.Tensor, k: int, out: torch.Tensor | None = None) -> torch.Tensor:
        raise NotImplementedError

    def factored_denominator(self, state: dict, grad: torch.Tensor, k: int,
                             out: torch.Tensor | None = None) -> tuple[torch.Tensor, float]:
        """``(t, c)`` with ``alpha_k**2 = c * t``: lets an optimizer fold a scalar into its own
        scalar arithmetic instead of a pass over the tensor."""
        return self.denominator(state, grad, k, out), 1.0


class NoScaling(ScalingRule):
    """alpha = 1: plain steepest descent."""

    name = "none"

    def denominator(self, state: dict, grad: torch.Tensor, k: int, out: torch.Tensor | None = None) -> torch.Tensor:
        return torch.ones_like(grad) if out is None else out.fill_(1.0)


class AdamScaling(ScalingRule):
    """alpha**2 = sqrt(v_hat) + eps with Adam's bias-corrected second moment ([R], notes 1.1)."""

    name = "adam"

    def __init__(self, beta2: float = 0.999, eps: float = 1e-8) -> None:
        if not 0.0 <= beta2 < 1.0:
            raise ValueError(f"beta2 must be in [0, 1), got {beta2}")
        if eps < 0.0:
            raise ValueError(f"eps must be non-negative, got {eps}")
        self.beta2, self.eps = beta2, eps

    def _second_moment(self, state: dict, grad: torch.Tensor) -> torch.Tensor:
        if "exp_avg_sq" not in state:
            state["exp_avg_sq"] = torch.zeros_like(grad)
        return state["exp_avg_sq"].mul_(self.beta2).addcmul_(grad, grad, value=1.0 - self.beta2)

    def denominator(self, state: dict, grad: torch.Tensor, k: int, out: torch.Tensor | None = None) -> torch.Tensor:
        v = self._second_moment(state, grad)
        return torch.sqrt(v, out=out).div_(math.sqrt(1.0 - self.beta2 ** (k + 1))).add_(self.eps)

    def factored_denominator(self, state: dict, grad: torch.Tensor, k: int,
                             out: torch.Tensor | None = None) -> tuple[torch.Tensor, float]:
        """sqrt(v / b) + eps = (sqrt(v) + eps * sqrt(b)) / sqrt(b), with b the bias correction."""
        root_b = math.sqrt(1.0 - self.beta2 ** (k + 1))
        return torch.sqrt(self._second_moment(state, grad), out=out).add_(self.eps * root_b), 1.0 / root_b


class AMSGradScaling(AdamScaling):
    """alpha**2 = sqrt(max_{i<=k} v_hat_i) + eps (the rule of the paper's App. A.1 proofs)."""

    name = "amsgrad"

    def denominator(self, state: dict, grad: torch.Tensor, k: int, out: torch.Tensor | None = None) -> torch.Tensor:
        v_hat = torch.div(self._second_moment(state, grad), 1.0 - self.beta2 ** (k + 1), out=out)
        if "max_exp_avg_sq" not in state:
            state["max_exp_avg_sq"] = torch.zeros_like(grad)
        torch.maximum(state["max_exp_avg_sq"], v_hat, out=state["max_exp_avg_sq"])
        return torch.sqrt(state["max_exp_avg_sq"], out=v_hat).add_(self.eps)


class Constant(ScalingRule):
    """alpha**2 = value for every coordinate (a scalar alpha; Eqs. 9-11)."""

    name = "constant"

    def __init__(self, value: float) -> None:
        self.value = value

    def denominator(self, state: dict, grad: torch.Tensor, k: int, out: torch.Tensor | None = None) -> torch.Tensor:
        return torch.full_like(grad, self.value) if out is None else out.fill_(self.value)


class Multiplied(ScalingRule):
    """``rule`` with every alpha multiplied by ``factor(k)`` (one number for all coordinates; P2)."""

    name = "multiplied"

    def __init__(self, rule: ScalingRule, factor: Callable[[int], float]) -> None:
        self.rule, self.factor = rule, factor

    def denominator(self, state: dict, grad: torch.Tensor, k: int, out: torch.Tensor | None = None) -> torch.Tensor:
        return self.rule.denominator(state, grad, k, out).mul_(self.factor(k) ** 2)

    def factored_denominator(self, state: dict, grad: torch.Tensor, k: int,
                             out: torch.Tensor | None = None) -> tuple[torch.Tensor, float]:
        tensor, factor = self.rule.factored_denominator(state, grad, k, out)
        return tensor, factor * self.factor(k) ** 2


RULES: dict[str, Callable[..., ScalingRule]] = {
    "adam": AdamScaling,
    "amsgrad": AMSGradScaling,
    "none": lambda beta2=0.999, eps=1e-8: NoScaling(),
}


def build_rule(scaling: str | ScalingRule, beta2: float, eps: float) -> ScalingRule:
    """A rule by name (``adam``, ``amsgrad``, ``none``) or an already built ``ScalingRule``."""
    if isinstance(scaling, ScalingRule):
        return scaling
    if scaling not in RULES:
        raise ValueError(f"unknown scaling rule {scaling!r}; pick scaling from {sorted(RULES)}")
    return RULES[scaling](beta2=beta2, eps=eps)
