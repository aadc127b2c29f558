"""AutoDrop (Teng, Wang & Choromanska): drop the learning rate when the angular velocity saturates.

An optimizer-agnostic epoch-level schedule: it acts on the ``param_groups`` and parameters of any
``torch.optim.Optimizer`` (the paper's experiments use momentum SGD).

Paper (Section 4, Algorithm 1, Eq. 1-2):

* angular velocity ``omega_t = angle(s_t, s_(t-1))`` in degrees between consecutive per-epoch
  displacements ``s_t = x_t - x_(t-1)`` of the whole trainable-parameter vector (Eq. 1), with
  ``angle = 180/pi * arccos(<a, b> / (|a| |b| + eps))`` (Eq. 2);
* trigger when ``|omega_t - omega_(t-1)| < theta``; keep the LR for ``n_d`` more epochs while
  accumulating the linearly weighted average ``z = sum_k k x^(k)``; then load the average and drop
  ``alpha <- max(alpha_min, rho alpha)``, ``theta <- min(theta_bar, theta / rho)``.

``variant`` selects between the authors' code, which produced Table 1 (default), and the printed
Algorithm 1 (notes/autodrop.md section 1.6-1.7):

============================  =====================================  ===================================
                              ``code`` (default, [CODE])             ``algorithm1`` (as printed)
============================  =====================================  ===================================
snapshots                     epoch ends 1, 2, ...; first omega at   x_0 and s_0 = 0 (omega_1 = 90 deg);
                              epoch 3, first test at epoch 4         first test at epoch 3 (``t > 2``)
trigger inside the window     ignored (``enabled = enabled or hit``)  resets ``z, k <- 0`` (window restarts)
snapshots averaged / drop at  n_d; drop n_d - 1 epochs after the     n_d + 1; drop n_d epochs after the
                              trigger epoch                          trigger epoch
normalisation                 sum of weights n_d (n_d + 1) / 2       sum of weights (correct; the printed
                                                                     2 / ((n_d + 1) n_d) is a typo, x1.1)
============================  =====================================  ===================================

Both: the average is a running sum (one extra parameter copy, not ``n_d``); momentum buffers and
BN running statistics are left untouched after loading it, and the angle snapshot taken before the
load is kept, so the next displacement includes the averaging jump ([CODE]). Snapshots are taken at
epoch ends rather than after the 1st/2nd iteration of the next epoch as in [CODE] (equivalent up to
one optimizer step). The LR of every parameter group is dropped ([CODE] has a single group).

Noisy-quadratic version (Section 3, Figure 3): ``omega_source="step"`` measures the angle between
consecutive *per-step* displacements (an optimizer step post-hook) and uses their mean over the
epoch as omega, i.e. a block average over ``steps_per_epoch`` iterations; with ``delay=1``,
``average=False`` and ``adapt_theta=False`` this is the paper's NQM scheme (no delay, averaging or
theta adaptation is mentioned there).
"""
from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor

VARIANTS = ("code", "algorithm1")
OMEGA_SOURCES = ("epoch", "step")


def angle_degrees(a: Tensor, b: Tensor, eps: float = 1e-8) -> float:
    """Eq. 2: the angle between ``a`` and ``b`` in degrees; 90 when either is zero ([CODE] clamp)."""
    cosine = float(torch.dot(a, b)) / (float(a.norm()) * float(b.norm()) + eps)
    return math.degrees(math.acos(min(1.0, max(-1.0, cosine))))


class AutoDrop:
    """Angular-velocity-triggered LR drop with delayed, linearly weighted parameter averaging.

    Args:
        optimizer: any optimizer; its parameters are "the model parameter vector".
        epochs: the run length (unused; part of the ``bench.schedules`` signature).
        rho: LR drop factor (``0 < rho < 1``); "the same as in SOTA" (0.2 CIFAR, 0.1 ImageNet).
        alpha_min: LR floor (paper 1e-4).
        theta: initial threshold on ``|omega_t - omega_(t-1)|`` in degrees (paper 0.01).
        theta_max: upper bound of theta (paper 1 degree).
        delay: ``n_d``, epochs of delay and averaging window (paper 20).
        variant: ``code`` (default, Table 1) or ``algorithm1`` (see the module docstring).
        average: load the weighted average at the drop ([CODE] ``--var_rd``; on in the paper).
        adapt_theta: ``theta <- min(theta_max, theta / rho)`` at each drop ([CODE] ``--auto_theta``).
        omega_source: ``epoch`` (per-epoch displacements, the DL version) or ``step`` (mean over the
            epoch of per-iteration angles, the NQM version).
        eps: the ``eps`` of Eq. 2 ([CODE] 1e-8).
        measure_only: log omega but never trigger (the constant-LR curves of Figures 1 and 2).
    """

    def __init__(self, optimizer: torch.optim.Optimizer, epochs: int | None = None, *, rho: float,
                 alpha_min: float = 1e-4, theta: float = 0.01, theta_max: float = 1.0, delay: int = 20,
                 variant: str = "code", average: bool = True, adapt_theta: bool = True,
                 omega_source: str = "epoch", eps: float = 1e-8, measure_only: bool = False) -> None:
        if not 0.0 < rho < 1.0:
            raise ValueError(f"rho must lie in (0, 1), got {rho}")
        if variant not in VARIANTS:
            raise ValueError(f"variant must be one of {VARIANTS}, got {variant!r}")
        if omega_source not in OMEGA_SOURCES:
            raise ValueError(f"omega_source must be one of {OMEGA_SOURCES}, got {omega_source!r}")
        if not isinstance(delay, int) or delay < 1:
            raise ValueError(f"delay (n_d) must be a positive integer, got {delay!r}")
        if alpha_min < 0 or theta <= 0 or theta_max < theta:
            raise ValueError("need alpha_min >= 0 and 0 < theta <= theta_max")
        self.optimizer = optimizer
        self.rho, self.alpha_min, self.theta_max, self.delay = rho, alpha_min, theta_max, delay
        self.variant, self.average, self.adapt_theta = variant, average, adapt_theta
        self.omega_source, self.eps, self.measure_only = omega_source, eps, measure_only
        self.params = [p for group in optimizer.param_groups for p in group["params"] if p.requires_grad]
        # the state machine (everything below is in state_dict)
        self.theta = float(theta)
        self.epoch = 0                 # observations so far (t of Algorithm 1)
        self.omega: float | None = None
        self.enabled, self.counter, self.drops = False, 0, 0
        self.weighted_sum: Tensor | None = None   # z = sum_k k x^(k), the running average buffer
        self.weight_total = 0.0                  # sum_k k
        self.prev_x: Tensor | None = None          # last snapshot (epoch end, or last step)
        self.prev_s: Tensor | None = None          # last displacement
        self.step_angles = [0.0, 0]                # sum and count of this epoch's per-step angles
        self.last_log: dict[str, Any] = {}
        if variant == "algorithm1" or omega_source == "step":
            self.prev_x = self._flat()
        if variant == "algorithm1" and omega_source == "epoch":
            self.prev_s = torch.zeros_like(self.prev_x)  # s_0 = 0, so omega_1 = 90 degrees
        if omega_source == "step":
            optimizer.register_step_post_hook(lambda *_: self._after_step())

    # ------------------------------------------------------------------ measurement
    def _flat(self) -> Tensor:
        return torch.cat([p.detach().reshape(-1).float() for p in self.params])

    def _displacement_angle(self, x: Tensor) -> float | None:
        """Record snapshot ``x``; the angle between its displacement and the previous one."""
        omega = None
        if self.prev_x is not None:
            s = x - self.prev_x
            if self.prev_s is not None:
                omega = angle_degrees(s, self.prev_s, self.eps)
            self.prev_s = s
        self.prev_x = x
        return omega

    def _after_step(self) -> None:
        omega = self._displacement_angle(self._flat())
        if omega is not None:
            self.step_angles[0] += omega
            self.step_angles[1] += 1

    def _epoch_omega(self) -> float | None:
        if self.omega_source == "epoch":
            return self._displacement_angle(self._flat())
        total, count = self.step_angles
        self.step_angles = [0.0, 0]
        return total / count if count else None

    # ------------------------------------------------------------------ the state machine
    def end_epoch(self, epoch: int) -> None:
        """Measure this epoch's angular velocity and advance Algorithm 1 by one epoch."""
        self.update(self._epoch_omega())

    def update(self, omega: float | None) -> dict[str, Any]:
        """One epoch of Algorithm 1 given this epoch's ``omega`` (None: not measurable yet)."""
        self.epoch += 1
        previous, self.omega = self.omega, omega
        delta = None if omega is None or previous is None else omega - previous
        ready = delta is not None and not self.measure_only and (self.variant == "code" or self.epoch > 2)
        triggered = bool(ready and abs(delta) < self.theta)
        if triggered and (self.variant == "algorithm1" or not self.enabled):
            self.enabled, self.counter = True, 0          # Algorithm 1: z <- 0, k <- 0 on every trigger
            self.weighted_sum, self.weight_total = None, 0.0
        dropped = False
        if self.enabled:
            self.counter += 1
            self._accumulate(self.counter)
            needed = self.delay if self.variant == "code" else self.delay + 1
            if self.counter >= needed:
                self._drop()
                dropped = True
        self.last_log = {
            "omega": omega, "delta_omega": delta, "theta": self.theta, "triggered": triggered,
            "dropped": dropped, "delay_counter": self.counter, "drops": self.drops,
            "lr": [group["lr"] for group in self.optimizer.param_groups],
        }
        return self.last_log

    def _accumulate(self, k: int) -> None:
        """z <- z + k x (Algorithm 1, "accumulate the scaled values of parameters")."""
        if not self.average:
            return
        x = self._flat()
        self.weighted_sum = x.mul_(k) if self.weighted_sum is None else self.weighted_sum.add_(x, alpha=k)
        self.weight_total += k

    def _drop(self) -> None:
        """Load the weighted average, drop alpha and raise theta; close the window."""
        if self.average and self.weighted_sum is not None:
            average = self.weighted_sum / self.weight_total
            with torch.no_grad():
                torch._foreach_copy_(self.params, [v.view_as(p) for v, p in
                                                   zip(average.split([p.numel() for p in self.params]), self.params)])
        for group in self.optimizer.param_groups:
            group["lr"] = max(self.alpha_min, self.rho * group["lr"])
        if self.adapt_theta:
            self.theta = min(self.theta_max, self.theta / self.rho)
        self.enabled, self.counter, self.drops = False, 0, self.drops + 1
        self.weighted_sum, self.weight_total = None, 0.0

    # ------------------------------------------------------------------ protocol
    def epoch_log(self) -> dict[str, Any]:
        """omega, |delta omega|, theta, trigger/drop events and the LRs after this epoch."""
        return dict(self.last_log)

    _STATE = ("theta", "epoch", "omega", "enabled", "counter", "drops", "weight_total", "step_angles", "last_log")
    _TENSORS = ("weighted_sum", "prev_x", "prev_s")

    def state_dict(self) -> dict[str, Any]:
        state = {key: getattr(self, key) for key in self._STATE}
        state.update({key: None if getattr(self, key) is None else getattr(self, key).clone()
                      for key in self._TENSORS})
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        device = self.params[0].device
        for key in self._STATE:
            setattr(self, key, state[key])
        for key in self._TENSORS:
            setattr(self, key, None if state[key] is None else state[key].to(device).clone())
        self.step_angles = list(self.step_angles)
