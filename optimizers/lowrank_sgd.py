"""Momentum SGD with one learning rate per conv block, set once per epoch from low-rank metrics.

The machinery AdaS (Hosseini & Plataniotis 2020, Eq. 8 / Algorithm 1) and RMSGD (Hosseini et al.
2022, Algorithm 1) share; ``optimizers.adas`` and ``optimizers.rmsgd`` only choose a ``Semantics``
(which paper-versus-code behaviour) and their defaults. Per epoch t (``end_epoch``):

1. low-rank metrics of every analysed weight (``optimizers.lowrank_metrics``), G_t per layer;
2. ``eta <- max(beta * eta + zeta * delta_t, floor)`` per layer (AdaS Eq. 8; RMSGD rule (i)), with
   ``delta_t = G_t - G_{t-1}`` (how t = 0, "not ready" layers and zeta decay are treated is a
   ``Semantics`` switch);
3. every parameter gets the learning rate of its layer (``_sources``): the conv weight, and the
   parameters after it in ``model.parameters()`` order up to the next analysed weight (its bias and
   BN), as both reference codes assign them.

Layer structure. Both references walk the flat ``model.parameters()`` list; so does this class. With
several parameter groups (e.g. no weight decay on BN) the flat order is lost, which silently
misaligns the references' per-index learning rates. Here each group may carry ``param_order`` (the
positions of its tensors in ``model.parameters()``; ``bench.optim_factory.parameter_groups`` adds it),
from which the flat order is rebuilt; a single group is taken as the flat order itself.

The group LR (``group["lr"]``, which schedules, AutoDrop and torch LR schedulers set) multiplies
every per-layer rate of its group: the effective rate is ``eta_layer * group["lr"] / lr``, with
``lr`` the constructor's (every group starts there), so an unscheduled run is unchanged (factor 1)
and the logged per-layer ``lr`` is the effective one. ``add_param_group`` is refused: the layer order
that assigns the per-layer rates is fixed at construction.

Inner step: PyTorch momentum SGD with coupled L2 (``d = g + wd w; buf = m buf + (1 - damp) d;
w -= eta_layer buf``; first buffer = d), which is ``SGDVec`` / the packages' ``step``, computed with
``torch._foreach_*`` over each group and one fused update per distinct learning rate; or the
papers' form ``v = m v - eta g; w += v`` (``momentum_form="sutskever"``, AdaS A4).
"""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, replace
from typing import Any

import torch

from optimizers.lowrank_metrics import LowRankMetrics, layer_log, short
from optimizers.torch_compat import KeepsAttributes

FC = "fc"   # source tag: the AdaS-code classifier learning rate


@dataclass(frozen=True)
class Semantics:
    """One paper-versus-code reading of the per-layer learning-rate rule (see AdaS/RMSGD notes)."""

    init_velocity: str = "zero"        # eta_{-1}: "zero" (code: first LR = zeta*lr0) | "lr" (lr0)
    first_delta: str = "lr"            # delta_0: "lr" (code: lr0) | "gain" (paper: G_1 - G(0)=0)
    hold_not_ready: bool = False       # keep eta = lr0 while a layer's G is 0 (packages)
    not_ready_over_zeta: bool = False  # the hold divides by zeta (rmsgd 1.0.2)
    decay_velocity: bool = False       # zeta decay also scales eta (rmsgd 1.0.2)
    floor: float = 0.0                 # eta <- max(eta, floor)
    mask_1x1: bool = False             # 1x1 convs not analysed, inherit (RMSGD paper branch)
    mask_frozen: bool = False          # requires_grad=False weights not analysed (rmsgd 1.0.2)
    fc_rule: str = "inherit"           # "inherit" (previous layer's LR) | "last_conv_out" (AdaS code)
    momentum_form: str = "pytorch"     # "pytorch" (codes) | "sutskever" (papers' v = m v - eta g)
    tall: str = "transpose"            # lowrank_metrics.TALL_MODES
    fallback: str = "previous_epoch"   # failed factorisation: "previous_epoch" | "previous_layer"
    zeta_decay_gamma: float = 1.0      # zeta <- gamma zeta every zeta_decay_step epochs (1: no decay)
    zeta_decay_step: int | None = None  # (RMSGD paper branch: 0.98 every epoch, its released configs)

    def override(self, **values: Any) -> Semantics:
        """A copy with the given fields replaced; ``None`` values keep the variant's."""
        return replace(self, **{k: v for k, v in values.items() if v is not None})


def _is_close_zero(value: float) -> bool:
    return abs(value) <= 1e-8          # np.isclose(value, 0.) of the references


class LowRankSGD(KeepsAttributes, torch.optim.Optimizer):
    """Base class of AdaS and RMSGD (see module docstring); subclasses pass ``semantics``."""

    def __init__(self, params: Any, semantics: Semantics, lr: float, beta: float, zeta: float = 1.0,
                 p: int = 1, momentum: float = 0.9, dampening: float = 0.0, weight_decay: float = 0.0,
                 nesterov: bool = False, linear: bool = False, scale_invariant: bool = False,
                 svd: str = "gram") -> None:
        if lr <= 0.0:
            raise ValueError(f"lr must be > 0, got {lr}")
        if not 0.0 <= beta < 1.0:
            raise ValueError(f"beta must lie in [0, 1), got {beta}")
        gamma, step = semantics.zeta_decay_gamma, semantics.zeta_decay_step
        if momentum < 0.0 or weight_decay < 0.0 or zeta < 0.0 or gamma < 0.0:
            raise ValueError("momentum, weight_decay, zeta and zeta_decay_gamma must be >= 0")
        if step is not None and step <= 0:
            raise ValueError(f"zeta_decay_step must be a positive number of epochs or null, got {step}")
        if nesterov and (momentum <= 0 or dampening != 0 or semantics.momentum_form != "pytorch"):
            raise ValueError("nesterov needs momentum > 0, dampening 0 and momentum_form 'pytorch'")
        if semantics.momentum_form == "sutskever" and dampening != 0:
            raise ValueError("momentum_form 'sutskever' (v = m v - eta g) has no dampening; set dampening 0")
        defaults = dict(lr=lr, momentum=momentum, dampening=dampening, weight_decay=weight_decay,
                        nesterov=nesterov)
        super().__init__(params, defaults)
        for group in self.param_groups:
            if group["lr"] != lr:
                raise ValueError("per-group lr is not supported: the per-layer LRs start from `lr`")
        self.semantics, self.beta = semantics, beta
        self.metrics = LowRankMetrics(p=p, tall=semantics.tall, scale_invariant=scale_invariant, svd=svd)
        self.ordered = self._flat_order()
        self.analysed = [i for i, w in enumerate(self.ordered) if self._analysed(w, linear)]
        if not self.analysed:
            kinds = "conv (4-D) or linear (2-D)" if linear else "conv (4-D)"
            raise ValueError(f"{type(self).__name__} has nothing to adapt: the model has no trainable {kinds} "
                             "weights its low-rank metrics analyse; pick another optimizer or model")
        self.sources = self._sources()
        n_slots = len(self.analysed) + (1 if FC in self.sources else 0)
        velocity = lr if semantics.init_velocity == "lr" else 0.0
        self.sched: dict[str, Any] = {
            "epoch": 0, "zeta": zeta, "lr0": lr, "velocity": [velocity] * n_slots,
            "prev_gain": [0.0] * n_slots, "not_ready": list(range(len(self.analysed))),
            "slot_lr": [lr] * n_slots, "layers": [], "fc_gain": None,
        }
        self._apply_lrs()

    def add_param_group(self, param_group: dict[str, Any]) -> None:
        """Refused after construction: the per-layer LRs follow the layer order of the initial groups."""
        if hasattr(self, "sched"):
            raise ValueError(f"{type(self).__name__} cannot add a parameter group after construction: its per-layer "
                             "learning rates follow the model's layer order; build it with all parameters")
        super().add_param_group(param_group)

    def _lr_scale(self, group: dict[str, Any]) -> float:
        """The group LR as a multiplier of the per-layer rates (1 while it is the constructor's ``lr``)."""
        return group["lr"] / self.sched["lr0"]

    def _group_of(self, param: torch.Tensor) -> dict[str, Any]:
        return next(g for g in self.param_groups if any(p is param for p in g["params"]))

    # ------------------------------------------------------------------------ structure
    def _flat_order(self) -> list[torch.Tensor]:
        """``model.parameters()`` order rebuilt from the groups' ``param_order`` (see docstring)."""
        groups = self.param_groups
        if len(groups) == 1 and "param_order" not in groups[0]:
            return list(groups[0]["params"])
        if not all("param_order" in g and len(g["param_order"]) == len(g["params"]) for g in groups):
            raise ValueError("several parameter groups need 'param_order' (positions in model.parameters(),"
                             " as bench.optim_factory.parameter_groups sets) to assign per-layer LRs")
        pairs = sorted(((pos, p) for g in groups for pos, p in zip(g["param_order"], g["params"])),
                       key=lambda pair: pair[0])
        return [p for _, p in pairs]

    def _analysed(self, weight: torch.Tensor, linear: bool) -> bool:
        if self.semantics.mask_frozen and not weight.requires_grad:
            return False
        if weight.dim() == 4:
            return not (self.semantics.mask_1x1 and (weight.shape[2] == 1 or weight.shape[3] == 1))
        return linear and weight.dim() == 2

    def _sources(self) -> list[int | str | None]:
        """Per parameter (flat order): its layer slot, FC, or None (keeps the initial LR)."""
        slot_of = {index: slot for slot, index in enumerate(self.analysed)}
        first_2d = next((i for i, w in enumerate(self.ordered) if w.dim() == 2), None)
        sources: list[int | str | None] = []
        for i in range(len(self.ordered)):
            if i in slot_of:
                sources.append(slot_of[i])
            elif self.semantics.fc_rule == "last_conv_out" and first_2d is not None and i >= first_2d:
                sources.append(FC)
            else:
                sources.append(sources[-1] if sources else None)
        if FC in sources and not self.analysed:
            raise ValueError("the AdaS-code classifier rule needs at least one conv layer")
        return sources

    def _apply_lrs(self) -> None:
        slot_lr, lr0 = self.sched["slot_lr"], self.sched["lr0"]
        n_fc = len(self.analysed)
        self.param_lr: dict[torch.Tensor, float] = {}
        for weight, src in zip(self.ordered, self.sources):
            self.param_lr[weight] = lr0 if src is None else slot_lr[n_fc if src == FC else src]

    # ------------------------------------------------------------------------ epoch rule
    def _layer_metrics(self) -> list[dict[str, Any]]:
        """Metrics of the analysed weights with the reference fallbacks for failed factorisations."""
        layers = self.metrics.compute([self.ordered[i] for i in self.analysed])
        previous = self.sched["layers"]
        for j, layer in enumerate(layers):
            for prefix in ("in_", "out_", ""):
                if not layer.get(prefix + "failed"):
                    continue
                if self.semantics.fallback == "previous_layer":
                    source = layers[j - 1]   # AdaS 2020 code: index - 1, wraps to the last layer
                else:
                    source = previous[j] if previous else {}
                for key in ("kg", "stable_rank", "condition", "kappa", "rank"):
                    layer[prefix + key] = source.get(prefix + key, 0.0)
            LowRankMetrics.summarise(layer)
        return layers

    def _deltas(self, gains: list[float]) -> list[float]:
        """delta_t of Eq. (8) / rule (i), including the references' start-up and hold rules."""
        s, sem, lr0 = self.sched, self.semantics, self.sched["lr0"]
        if s["epoch"] == 0:
            deltas = [lr0] * len(gains) if sem.first_delta == "lr" else list(gains)
        else:
            deltas = [g - prev for g, prev in zip(gains, s["prev_gain"])]
            if sem.hold_not_ready:
                not_ready = s["not_ready"]
                for idx in not_ready:                 # the references remove while iterating
                    if _is_close_zero(gains[idx]):     # (skipping the next item): kept on purpose
                        deltas[idx] = lr0 - self.beta * s["velocity"][idx]
                        if sem.not_ready_over_zeta:
                            deltas[idx] /= s["zeta"]
                    else:
                        not_ready.remove(idx)
        s["prev_gain"] = list(gains)
        return deltas

    @torch.no_grad()
    def end_epoch(self, epoch: int) -> None:
        """Phase II of Algorithm 1: metrics, then the per-layer LRs for the next epoch."""
        s, sem = self.sched, self.semantics
        layers = self._layer_metrics()
        gains = [layer["kg"] for layer in layers]
        if FC in self.sources:     # AdaS code: fc_S = output-channel gain of the last conv layer
            s["fc_gain"] = next(l["out_kg"] for l in reversed(layers) if "out_kg" in l)
            gains.append(s["fc_gain"])
        deltas = self._deltas(gains)
        t = s["epoch"]
        gamma, step = sem.zeta_decay_gamma, sem.zeta_decay_step
        if step is not None and t > 0 and t % step == 0:
            s["zeta"] *= gamma
            if sem.decay_velocity:
                s["velocity"] = [v * gamma for v in s["velocity"]]
        s["velocity"] = [max(self.beta * v + s["zeta"] * d, sem.floor) for v, d in zip(s["velocity"], deltas)]
        s["slot_lr"] = list(s["velocity"])
        s["layers"], s["epoch"] = layers, t + 1
        self._apply_lrs()

    def layer_lrs(self) -> list[float]:
        """Current (effective) learning rate of every parameter, in ``model.parameters()`` order."""
        return [self.param_lr[w] * self._lr_scale(self._group_of(w)) for w in self.ordered]

    def epoch_log(self) -> dict[str, Any]:
        """Per analysed layer: position, shape, every metric and the LR for the next epoch
        (``lowrank_metrics.layer_log``); zeta now and its decay rule; Q."""
        s, sem = self.sched, self.semantics
        layers = []
        for slot, index in enumerate(self.analysed):
            weight = self.ordered[index]
            entry = layer_log(index, weight, s["layers"][slot] if s["layers"] else {})
            entry["lr"] = short(s["slot_lr"][slot] * self._lr_scale(self._group_of(weight)))
            layers.append(entry)
        log = {"layers": layers, "zeta": s["zeta"], "Q": short(LowRankMetrics.quality(s["layers"])),
               "zeta_decay": {"gamma": sem.zeta_decay_gamma, "step": sem.zeta_decay_step}}
        if FC in self.sources:
            fc_param = self.ordered[self.sources.index(FC)]
            log["fc_lr"] = short(s["slot_lr"][-1] * self._lr_scale(self._group_of(fc_param)))
            log["fc_gain"] = short(s["fc_gain"])
        return log

    # ------------------------------------------------------------------------ resume
    def state_dict(self) -> dict[str, Any]:
        state = super().state_dict()
        state["lowrank"] = {k: (list(v) if isinstance(v, list) else v) for k, v in self.sched.items()}
        return state

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        state_dict = dict(state_dict)
        sched = state_dict.pop("lowrank", None)
        super().load_state_dict(state_dict)
        if sched is not None:
            self.sched = {k: (list(v) if isinstance(v, list) else v) for k, v in sched.items()}
            self._apply_lrs()

    # ------------------------------------------------------------------------ Phase I
    @torch.no_grad()
    def step(self, closure: Any = None) -> Any:
        """One mini-batch step of momentum SGD with each parameter's layer LR."""
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            params = [p for p in group["params"] if p.grad is not None]
            if not params:
                continue
            grads = [p.grad for p in params]
            if group["weight_decay"] != 0:
                grads = torch._foreach_add(grads, params, alpha=group["weight_decay"])
            if self.semantics.momentum_form == "sutskever":
                self._sutskever(group, params, grads)
            else:
                self._pytorch(group, params, grads)
        return loss

    def _buffers(self, params: list[torch.Tensor]) -> list[torch.Tensor | None]:
        return [self.state[p].get("momentum_buffer") for p in params]

    def _by_lr(self, group: dict[str, Any], params: list[torch.Tensor],
               tensors: list[torch.Tensor]) -> dict[float, tuple[list, list]]:
        """Parameters (and their tensors) bucketed by effective LR: layer rate x the group's scale."""
        scale = self._lr_scale(group)
        buckets: dict[float, tuple[list, list]] = defaultdict(lambda: ([], []))
        for p, t in zip(params, tensors):
            bucket = buckets[self.param_lr[p] * scale]
            bucket[0].append(p)
            bucket[1].append(t)
        return buckets

    def _pytorch(self, group: dict[str, Any], params: list, grads: list) -> None:
        momentum, dampening = group["momentum"], group["dampening"]
        directions = grads
        if momentum != 0:
            bufs = self._buffers(params)
            if any(b is None for b in bufs):
                for i, (p, b) in enumerate(zip(params, bufs)):
                    if b is None:
                        bufs[i] = self.state[p]["momentum_buffer"] = torch.clone(grads[i]).detach()
                    else:
                        b.mul_(momentum).add_(grads[i], alpha=1 - dampening)
            else:
                torch._foreach_mul_(bufs, momentum)
                torch._foreach_add_(bufs, grads, alpha=1 - dampening)
            directions = torch._foreach_add(grads, bufs, alpha=momentum) if group["nesterov"] else bufs
        for lr, (ps, ds) in self._by_lr(group, params, directions).items():
            torch._foreach_add_(ps, ds, alpha=-lr)

    def _sutskever(self, group: dict[str, Any], params: list, grads: list) -> None:
        momentum = group["momentum"]
        bufs = [self.state[p].setdefault("momentum_buffer", torch.zeros_like(p)) for p in params]
        torch._foreach_mul_(bufs, momentum)                       # v <- m v
        for lr, (ps, gs) in self._by_lr(group, params, grads).items():    # v <- v - eta_layer g
            torch._foreach_add_([self.state[p]["momentum_buffer"] for p in ps], gs, alpha=-lr)
        torch._foreach_add_(params, bufs)                         # w <- w + v


def check_choice(name: str, value: str, choices: dict[str, Any]) -> None:
    """Raise ValueError naming the allowed values when ``value`` is not one of ``choices``."""
    if value not in choices:
        raise ValueError(f"{name} must be one of {sorted(choices)}, got {value!r}")


__all__ = ["FC", "LowRankSGD", "Semantics", "check_choice"]
