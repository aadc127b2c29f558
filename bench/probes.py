"""Measurement probes: per-epoch values of a role's model, logged whatever its optimizer (``probe=``).

A probe is an ``optimizers.protocol.EpochLogger`` the ``Driver`` holds beside a role's optimizer and
schedule; its ``epoch_log`` goes into each history row under the probe's name (``lowrank``, or
``lowrank/<role>`` for several roles), computed after the epoch's ``end_epoch`` hooks on the weights
the next epoch starts from. Probes only read the weights, so a run trains the same with or without.

``lowrank`` (``conf/probe/lowrank.yaml``): ``optimizers.lowrank_metrics.LowRankMetrics`` of every
trainable conv weight (and 2-D weight with ``linear``), in the layout AdaS/RMSGD log their own
(``history[*].optim.layers``), so ``bench.figures.adas_layers`` plots either: AdaS Fig. 2 sets AdaS's
gain and condition beside Adam's; RMSGD Figs. 1b/2 plot Q for the baselines.
"""
from __future__ import annotations

from typing import Any

from torch import nn

from bench.errors import BenchError
from optimizers.lowrank_metrics import LowRankMetrics, layer_log, short


class LowRankProbe:
    """Low-rank metrics of ``module``'s trainable conv (and, with ``linear``, 2-D) weights; the
    options are ``LowRankMetrics``'s (``p``, ``tall``, ``svd``)."""

    def __init__(self, module: nn.Module, p: int = 1, linear: bool = False, tall: str = "transpose",
                 svd: str = "gram") -> None:
        trainable = [w for w in module.parameters() if w.requires_grad]
        dims = (4, 2) if linear else (4,)
        self.layers = [(i, w) for i, w in enumerate(trainable) if w.dim() in dims]   # index: as the optimizer's
        self.metrics = LowRankMetrics(p=p, tall=tall, svd=svd)

    def epoch_log(self) -> dict[str, Any]:
        """Per layer: position among the trainable parameters, shape, metrics; and Q (RMSGD Eq. 5)."""
        results = self.metrics.compute([w for _, w in self.layers])
        layers = [layer_log(index, weight, result) for (index, weight), result in zip(self.layers, results)]
        return {"layers": layers, "Q": short(LowRankMetrics.quality(results))}


PROBES = {"lowrank": LowRankProbe}


def build_probes(settings: dict[str, Any] | None, modules: dict[str, nn.Module]) -> dict[str, dict[str, Any]]:
    """``{role: {name: probe}}`` for the ``probe`` config (None: no probe) on each role's module that
    has something to measure."""
    if not settings:
        return {}
    name, options = settings["name"], {k: v for k, v in settings.items() if k != "name"}
    try:
        probes = {role: PROBES[name](module, **options) for role, module in modules.items()}
    except (TypeError, ValueError) as exc:
        raise BenchError(f"probe {name}: {exc}; see conf/probe/{name}.yaml for its options") from exc
    kept = {role: {name: probe} for role, probe in probes.items() if probe.layers}
    if not kept:
        raise BenchError(f"probe {name} finds no weights to measure in {', '.join(modules)}: it reads conv weights "
                         f"(2-D ones too with probe.linear=true); pass probe.linear=true or drop probe={name}")
    return kept
