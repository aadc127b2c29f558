"""AdaLip, AdamLip, RMSLip and their -U variants (Ioannou, Tagaris & Stafylopatis, 2023).

Each parameter tensor (paper: each layer) keeps a scalar EMA of a local inverse-Lipschitz estimate
(Sect. 3.3, Eq. 7-9) that scales the base optimizer's learning rate:

    S_t = gamma S_(t-1) + (1 - gamma) ||g_(t-1)|| / (||g_t - g_(t-1)|| + c_t),   S_0 = 1, g_0 = 0   (Eq. 8)
    A_t = alpha_t S_t                                                                              (Eq. 9)

and the base update uses ``A_t`` in place of its learning rate: SGD (Algorithm 2, AdaLip), RMSProp
(Algorithm 3, RMSLip), Adam (Algorithm 4, AdamLip). The ratio always uses the raw gradients. The -U
variants (Appendix C, Eq. C4-C5, Algorithm 5; ``use_update=True`` or the classes ``*LipU``) use
the previous *applied* update ``u_(t-1)`` and the candidate update ``-alpha_t d_t`` instead.

Defaults reproduce the paper's tables, i.e. the authors' code (geoioannou/AdaLip, notes/adalip.md
section 1.8): gamma 0.8, c 1e-8, S_0 1, constant alpha. One switch per ambiguity (section 1.10):

``first_step``    ``code`` (default): step 1 uses alpha unscaled (S is still updated to gamma);
                  ``paper``: A_1 = alpha_1 S_1 = gamma alpha.
``eps_placement`` ``inside`` (default, code): ``sqrt(v + eps)``; ``outside``: ``sqrt(v) + eps`` (paper
                  and PyTorch). AdamLip/RMSLip only.
inner betas       AdamLip ``betas`` (0.9, 0.999), RMSLip ``alpha`` 0.999 and ``eps`` 1e-8 are the code's;
                  the Keras baselines of the tables use RMSprop rho 0.9, eps 1e-7 (conf/optim/*_keras.yaml).
``lr_schedule``   ``constant`` (default, code and Sect. 6.2) or ``inv_sqrt``: alpha_t = alpha_0 / sqrt(t)
                  (Algorithms 2-5, Theorem 1).
``c_schedule``    ``constant`` (default, Sect. 4.2) or ``theoretical``: c_t of Eq. A.3 with c_1 = c.
``granularity``   ``tensor`` (default, code: kernel and bias apart) or ``group``: one S per parameter
                  group (give one group per layer for the paper's per-layer reading; see
                  ``bench.optim_factory`` ``group_by: module``).
``momentum``      AdaLip only: the code's optional heavy-ball ``m <- mu m - A g; w <- w + m`` (default 0).

All norms are Frobenius norms over one tensor (or group), computed with ``torch._foreach_norm``;
every update is a ``torch._foreach_*`` call. No projection (Algorithm 1 projects; the code does not).
"""
from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import torch
from torch import Tensor
from torch.optim import Optimizer

CHOICES = {
    "first_step": ("code", "paper"),
    "eps_placement": ("inside", "outside"),
    "lr_schedule": ("constant", "inv_sqrt"),
    "c_schedule": ("constant", "theoretical"),
    "granularity": ("tensor", "group"),
}


class _LipschitzScaled(Optimizer):
    """Shared machinery: the S_t recursion of Eq. 8 on top of a base direction (``_direction``)."""

    def __init__(self, params: Iterable[Any], lr: float, *, gamma: float = 0.8, c: float = 1e-8, s0: float = 1.0,
                 first_step: str = "code", lr_schedule: str = "constant", c_schedule: str = "constant",
                 granularity: str = "tensor", use_update: bool = False, **base: Any) -> None:
        if lr < 0:
            raise ValueError(f"lr must be non-negative, got {lr}")
        if not 0.0 <= gamma <= 1.0:
            raise ValueError(f"gamma must lie in [0, 1] (paper: (0, 1)), got {gamma}")
        if c < 0 or s0 <= 0:
            raise ValueError(f"need c >= 0 and s0 > 0, got c={c}, s0={s0}")
        options = dict(first_step=first_step, lr_schedule=lr_schedule, c_schedule=c_schedule,
                       granularity=granularity, eps_placement=base.pop("eps_placement", "inside"))
        for key, value in options.items():
            if value not in CHOICES[key]:
                raise ValueError(f"{key} must be one of {CHOICES[key]}, got {value!r}")
        defaults = dict(lr=lr, gamma=gamma, c=c, s0=s0, use_update=use_update, **options, **base)
        super().__init__(params, defaults)

    # the base optimizer: its direction d_t (the update is -A_t d_t) ---------------------------------
    def _init_base(self, state: dict[str, Any], p: Tensor, group: dict[str, Any]) -> None:
        pass

    def _direction(self, group: dict[str, Any], params: list[Tensor], grads: list[Tensor],
                   states: list[dict[str, Any]], t: int) -> tuple[list[Tensor], list[Tensor] | None, float]:
        """(numerators, denominators or None, divisor): d_t = num / den / divisor."""
        raise NotImplementedError

    # ------------------------------------------------------------------------------------------------
    def _denominator(self, group: dict[str, Any], v: list[Tensor], bias_correction: float) -> list[Tensor]:
        """sqrt(v_hat + eps) (code) or sqrt(v_hat) + eps (paper, PyTorch arithmetic)."""
        if group["eps_placement"] == "inside":
            vhat = torch._foreach_div(v, bias_correction) if bias_correction != 1.0 else v
            return torch._foreach_sqrt(torch._foreach_add(vhat, group["eps"]))
        denom = torch._foreach_sqrt(v)
        if bias_correction != 1.0:
            torch._foreach_div_(denom, math.sqrt(bias_correction))
        torch._foreach_add_(denom, group["eps"])
        return denom

    def _norms(self, group: dict[str, Any], tensors: list[Tensor]) -> Tensor:
        """Frobenius norm of each tensor (or of the whole group, repeated), as one vector."""
        norms = torch.stack(torch._foreach_norm(tensors))
        if group["granularity"] == "tensor":
            return norms
        return norms.square().sum().sqrt().repeat(len(tensors))

    def _c_values(self, group: dict[str, Any], states: list[dict[str, Any]], scale: Tensor, prev_norms: Tensor,
                  diff_norms: Tensor, t: int) -> Tensor | float:
        """c_t: the constant c, or the non-decreasing theoretical c_t of Eq. A.3 (c_1 = c)."""
        if group["c_schedule"] == "constant":
            return group["c"]
        gamma, c_prev = group["gamma"], torch.stack([s["c_t"] for s in states])
        if t == 1:
            return c_prev
        bound = (1 - gamma) * prev_norms / ((math.sqrt(t / (t - 1)) - gamma) * scale) - diff_norms
        c_t = torch.maximum(bound, c_prev)
        torch._foreach_copy_([s["c_t"] for s in states], c_t.unbind())
        return c_t

    @torch.no_grad()
    def step(self, closure: Any = None) -> Any:
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            params = [p for p in group["params"] if p.grad is not None]
            if params:
                self._step_group(group, params)
        return loss

    def _init_state(self, group: dict[str, Any], p: Tensor) -> dict[str, Any]:
        state = self.state[p]
        if not state:
            state["step"] = 0
            state["S"] = torch.tensor(float(group["s0"]), dtype=p.dtype, device=p.device)
            state["prev"] = torch.zeros_like(p, memory_format=torch.preserve_format)  # g_0 = 0 (or u_0 = 0)
            if group["c_schedule"] == "theoretical":
                state["c_t"] = torch.tensor(float(group["c"]), dtype=p.dtype, device=p.device)
            self._init_base(state, p, group)
        state["step"] += 1
        return state

    def _step_group(self, group: dict[str, Any], params: list[Tensor]) -> None:
        grads = [p.grad for p in params]
        states = [self._init_state(group, p) for p in params]
        t = states[0]["step"]
        alpha = group["lr"] / math.sqrt(t) if group["lr_schedule"] == "inv_sqrt" else group["lr"]
        num, den, divisor = self._direction(group, params, grads, states, t)
        prevs = [s["prev"] for s in states]
        if group["use_update"]:   # u_hat_t = -alpha_t d_t (Algorithm 5), against the applied u_(t-1)
            direction = torch._foreach_div(num, den) if den is not None else num
            candidate = torch._foreach_mul(direction, -alpha / divisor)   # out of place: num may be grads
            candidate = self._with_momentum_candidate(group, states, candidate)
        else:
            candidate = grads
        # Eq. 8: S_t = gamma S_(t-1) + (1 - gamma) ||q_(t-1)|| / (||q_t - q_(t-1)|| + c_t), one entry per tensor
        prev_norms = self._norms(group, prevs)
        torch._foreach_sub_(prevs, candidate)          # in place: q_(t-1) - q_t; overwritten below
        diff_norms = self._norms(group, prevs)
        scale = torch.stack([s["S"] for s in states])
        c_t = self._c_values(group, states, scale, prev_norms, diff_norms, t)
        scale = scale * group["gamma"] + (prev_norms / (diff_norms + c_t)) * (1 - group["gamma"])
        factors = scale.unbind()
        torch._foreach_copy_([s["S"] for s in states], factors)
        # Eq. 9: A_t = alpha_t S_t; [code] step 1 uses alpha_t unscaled (S_1 is still updated)
        unscaled = group["first_step"] == "code" and t == 1
        applied = self._apply(group, params, states, num, den, None if unscaled else list(factors), -alpha / divisor)
        torch._foreach_copy_(prevs, applied if group["use_update"] else grads)

    def _with_momentum_candidate(self, group: dict[str, Any], states: list[dict[str, Any]],
                                 candidate: list[Tensor]) -> list[Tensor]:
        return candidate

    def _apply(self, group: dict[str, Any], params: list[Tensor], states: list[dict[str, Any]], num: list[Tensor],
               den: list[Tensor] | None, factors: list[Tensor] | None, value: float) -> list[Tensor] | None:
        """p <- p + value * S * num / den with PyTorch's arithmetic; returns the applied update for -U."""
        if den is None:
            scaled = num if factors is None else torch._foreach_mul(num, factors)
            torch._foreach_add_(params, scaled, alpha=value)   # = torch.optim.SGD's add_ when S = 1
            return torch._foreach_mul(scaled, value) if group["use_update"] else None
        if factors is not None:
            den = torch._foreach_div(den, factors)
        torch._foreach_addcdiv_(params, num, den, value=value)
        if not group["use_update"]:
            return None
        update = torch._foreach_div(num, den)
        torch._foreach_mul_(update, value)
        return update

    def effective_lrs(self) -> list[float]:
        """A_t = alpha_t S_t of every tensor after the last step (the per-layer LRs of Figs. 5-7)."""
        out = []
        for group in self.param_groups:
            for p in group["params"]:
                state = self.state.get(p)
                if state:
                    t = state["step"]
                    alpha = group["lr"] / math.sqrt(t) if group["lr_schedule"] == "inv_sqrt" else group["lr"]
                    unscaled = group["first_step"] == "code" and t == 1
                    out.append(alpha if unscaled else alpha * float(state["S"]))
        return out

    def epoch_log(self) -> dict[str, Any]:
        """Per-tensor effective learning rates after the epoch's last step."""
        return {"lr_eff": self.effective_lrs()}


class AdaLip(_LipschitzScaled):
    """AdaLip (Algorithm 2): SGD with the per-tensor Lipschitz-scaled rate A_t = alpha_t S_t.

    Args: lr (alpha_0; code default 0.01), gamma (0.8), c (1e-8), s0 (1.0), momentum (0.0, the code's
    optional heavy ball), first_step, lr_schedule, c_schedule, granularity, use_update (see module).
    """

    def __init__(self, params: Iterable[Any], lr: float = 0.01, momentum: float = 0.0, **kwargs: Any) -> None:
        if momentum < 0:
            raise ValueError(f"momentum must be non-negative, got {momentum}")
        super().__init__(params, lr, momentum=momentum, **kwargs)

    def _init_base(self, state: dict[str, Any], p: Tensor, group: dict[str, Any]) -> None:
        if group["momentum"]:
            state["momentum_buffer"] = torch.zeros_like(p, memory_format=torch.preserve_format)

    def _direction(self, group, params, grads, states, t):
        return grads, None, 1.0

    def _with_momentum_candidate(self, group, states, candidate):
        if not group["momentum"]:
            return candidate
        bufs = [s["momentum_buffer"] for s in states]   # [code] u = momentum * m - lr * g
        return torch._foreach_add(candidate, torch._foreach_mul(bufs, group["momentum"]))

    def _apply(self, group, params, states, num, den, factors, value):
        if not group["momentum"]:
            return super()._apply(group, params, states, num, den, factors, value)
        bufs = [s["momentum_buffer"] for s in states]   # [code] m <- mu m - A g;  w <- w + m
        torch._foreach_mul_(bufs, group["momentum"])
        if factors is None:
            torch._foreach_add_(bufs, num, alpha=value)
        else:
            torch._foreach_addcmul_(bufs, num, factors, value=value)
        torch._foreach_add_(params, bufs)
        return bufs


class AdamLip(_LipschitzScaled):
    """AdamLip (Algorithm 4): Adam whose step size is A_t = alpha_t S_t per tensor.

    Args: lr (code default 1e-3), betas ((0.9, 0.999)), eps (1e-8), eps_placement (``inside``), and the
    shared switches of the module docstring. Bias correction counts t from 1 (code).
    """

    def __init__(self, params: Iterable[Any], lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, eps_placement: str = "inside", **kwargs: Any) -> None:
        if not (0.0 <= betas[0] < 1.0 and 0.0 <= betas[1] < 1.0) or eps < 0:
            raise ValueError(f"need 0 <= betas < 1 and eps >= 0, got {betas}, {eps}")
        super().__init__(params, lr, betas=tuple(betas), eps=eps, eps_placement=eps_placement, **kwargs)

    def _init_base(self, state: dict[str, Any], p: Tensor, group: dict[str, Any]) -> None:
        state["exp_avg"] = torch.zeros_like(p, memory_format=torch.preserve_format)
        state["exp_avg_sq"] = torch.zeros_like(p, memory_format=torch.preserve_format)

    def _direction(self, group, params, grads, states, t):
        beta1, beta2 = group["betas"]
        m = [s["exp_avg"] for s in states]
        v = [s["exp_avg_sq"] for s in states]
        torch._foreach_lerp_(m, grads, 1 - beta1)
        torch._foreach_mul_(v, beta2)
        torch._foreach_addcmul_(v, grads, grads, value=1 - beta2)
        return m, self._denominator(group, v, 1 - beta2 ** t), 1 - beta1 ** t


class RMSLip(_LipschitzScaled):
    """RMSLip (Algorithm 3): RMSProp (no momentum, not centred) with step size A_t = alpha_t S_t.

    Args: lr (code default 0.01), alpha (the squared-gradient decay beta_2; code 0.999), eps (1e-8),
    eps_placement (``inside``), and the shared switches of the module docstring.
    """

    def __init__(self, params: Iterable[Any], lr: float = 0.01, alpha: float = 0.999, eps: float = 1e-8,
                 eps_placement: str = "inside", **kwargs: Any) -> None:
        if not 0.0 <= alpha < 1.0 or eps < 0:
            raise ValueError(f"need 0 <= alpha < 1 and eps >= 0, got {alpha}, {eps}")
        super().__init__(params, lr, alpha=alpha, eps=eps, eps_placement=eps_placement, **kwargs)

    def _init_base(self, state: dict[str, Any], p: Tensor, group: dict[str, Any]) -> None:
        state["square_avg"] = torch.zeros_like(p, memory_format=torch.preserve_format)

    def _direction(self, group, params, grads, states, t):
        v = [s["square_avg"] for s in states]
        torch._foreach_mul_(v, group["alpha"])
        torch._foreach_addcmul_(v, grads, grads, value=1 - group["alpha"])
        return grads, self._denominator(group, v, 1.0), 1.0


class AdaLipU(AdaLip):
    """AdaLip-U (Appendix C, Algorithm 5): AdaLip with updates in place of gradients."""

    def __init__(self, params: Iterable[Any], lr: float = 0.01, **kwargs: Any) -> None:
        if not kwargs.setdefault("use_update", True):
            raise ValueError("AdaLipU always uses updates; use AdaLip for gradients")
        super().__init__(params, lr, **kwargs)


class AdamLipU(AdamLip):
    """AdamLip-U (Appendix C): AdamLip with updates in place of gradients."""

    def __init__(self, params: Iterable[Any], lr: float = 1e-3, **kwargs: Any) -> None:
        if not kwargs.setdefault("use_update", True):
            raise ValueError("AdamLipU always uses updates; use AdamLip for gradients")
        super().__init__(params, lr, **kwargs)


class RMSLipU(RMSLip):
    """RMSLip-U (Appendix C): RMSLip with updates in place of gradients."""

    def __init__(self, params: Iterable[Any], lr: float = 0.01, **kwargs: Any) -> None:
        if not kwargs.setdefault("use_update", True):
            raise ValueError("RMSLipU always uses updates; use RMSLip for gradients")
        super().__init__(params, lr, **kwargs)
