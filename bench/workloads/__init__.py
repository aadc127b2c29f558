"""Workloads: what a run trains and measures (``workload=<name>``, ``conf/workload/``).

A new workload is one file here (a ``Workload`` subclass, see ``base.py``; batch-trained ones
subclass ``batch.BatchWorkload`` and reuse the epoch loop) plus its entry below and its config.
"""
from __future__ import annotations

from bench.errors import BenchError
from bench.workloads.base import LoopHooks, Metric, TrainState, Workload
from bench.workloads.classification import Classification
from bench.workloads.nqm import NQM
from bench.workloads.sac import SoftActorCritic
from bench.workloads.simclr import SimCLR

WORKLOADS: dict[str, type[Workload]] = {cls.name: cls for cls in (Classification, NQM, SoftActorCritic, SimCLR)}


def workload_class(name: str) -> type[Workload]:
    """The workload called ``name``, or one error line listing the available ones."""
    if name not in WORKLOADS:
        raise BenchError(f"unknown workload {name!r}; pick workload=<name> from {sorted(WORKLOADS)}")
    return WORKLOADS[name]


__all__ = ["WORKLOADS", "LoopHooks", "Metric", "TrainState", "Workload", "workload_class"]
