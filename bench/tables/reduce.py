"""From runs to a table cell: the per-run reading, the reduction over seeds or an LR grid, and a
bootstrap confidence interval over seeds.

Pure functions over run records (``bench/records.py``); ``Reduction`` says which (``bench.tables.spec``).
"""
from __future__ import annotations

import math
import statistics
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import stats

from bench.identity import get_dotted
from bench.tables.spec import Reduction

Record = dict[str, Any]
CONFIDENCE = 0.95
RESAMPLES = 2000
BOOTSTRAP_SEED = 0   # fixed, so a table is reproducible


def series(record: Record, metric: str) -> list[tuple[int, float]]:
    """``(epoch, value)`` for the history rows that hold ``metric``."""
    return [(row["epoch"], row[metric]) for row in record.get("history", []) if metric in row]


def best(values: list[float], mode: str) -> float | None:
    return (max if mode == "max" else min)(values) if values else None


def epochs_to_reach(points: list[tuple[int, float]], target: float, mode: str = "max") -> int | None:
    """The first epoch whose value reaches ``target`` (from above when ``mode`` is min); None if never."""
    reached = (lambda v: v >= target) if mode == "max" else (lambda v: v <= target)
    return next((epoch for epoch, value in points if reached(value)), None)


def at_train_time(record: Record, metric: str, budget_s: float) -> float | None:
    """``metric`` at the last epoch whose cumulative training time (``train_time_s``) is within ``budget_s``."""
    rows = [row for row in record.get("history", []) if metric in row and "train_time_s" in row]
    within = [row[metric] for row in rows if row["train_time_s"] <= budget_s]
    return within[-1] if within else None


def transformed(value: float | None, transform: Any) -> float | None:
    """``error``: 100 - value (accuracy % to error %); ``{scale: s}``: value * s."""
    if value is None or transform is None:
        return value
    if transform == "error":
        return 100.0 - value
    if isinstance(transform, dict) and "scale" in transform:
        return value * float(transform["scale"])
    raise ValueError(f"unknown transform {transform!r} (error or {{scale: s}})")


def run_value(record: Record, reduction: Reduction, labels: dict[str, str], *, row_peak: float | None = None,
              budget_s: float | None = None, clip_epochs: bool = False) -> float | None:
    """One run's number for its cell (None: the run has no such reading; ``clip_epochs``: a run shorter
    than the epoch a cell reads is read at its last epoch, for reduced tiers)."""
    points = series(record, reduction.metric)
    values = [v for _, v in points]
    kind, argument = reduction.reducer, reduction.argument
    if kind == "final":
        value = values[-1] if values else None
    elif kind == "best":
        value = best(values, reduction.mode)
    elif kind == "at_epoch":
        epoch = int(labels[argument["column"]]) if isinstance(argument, dict) else int(argument)
        value = next((v for e, v in points if e == epoch), None)
        if value is None and clip_epochs and points and points[-1][0] < epoch:
            value = points[-1][1]
    elif kind == "epochs_to_fraction":
        peak = best(values, reduction.mode) if reduction.reduce.get("peak", "run") == "run" else row_peak
        if peak is None:
            return None
        reached = epochs_to_reach(points, float(argument) * peak, reduction.mode)
        return None if reached is None else float(reached)   # an epoch count: never transformed
    else:  # at_train_time_of
        value = None if budget_s is None else at_train_time(record, reduction.metric, budget_s)
    return transformed(value, reduction.transform)


@dataclass
class CellValue:
    """A cell's number and what it rests on."""
    value: float | None
    std: float | None
    n: int
    ci: tuple[float, float] | None
    diverged: int
    runs: int


def spread(values: list[float]) -> float | None:
    """Sample standard deviation (n-1); 0 for one value, None for none."""
    return statistics.stdev(values) if len(values) > 1 else (0.0 if values else None)


def bootstrap_ci(values: list[float], statistic: Callable[..., Any]) -> tuple[float, float] | None:
    """Percentile bootstrap 95% interval of ``statistic`` over seeds (scipy), None below two values."""
    if len(values) < 2:
        return None
    if max(values) == min(values):
        return values[0], values[0]
    result = stats.bootstrap((np.asarray(values, dtype=float),), statistic, confidence_level=CONFIDENCE,
                             n_resamples=RESAMPLES, method="percentile", rng=np.random.default_rng(BOOTSTRAP_SEED))
    return float(result.confidence_interval.low), float(result.confidence_interval.high)


SEED_STATS: dict[str, Callable[..., Any]] = {"mean": np.mean, "median": np.median}
GRID_STATS: dict[str, Callable[[list[float]], float]] = {
    "max": max, "min": min, "mean": statistics.fmean, "median": statistics.median,
    "std": lambda v: float(np.std(v)),   # population std over the grid (ddof 0), as the AdaLip code
}


def cell_value(records: list[Record], reduction: Reduction, labels: dict[str, str], *,
               budget_s: float | None = None, clip_epochs: bool = False) -> CellValue:
    """Reduce a cell's runs: over seeds (``seeds``), or per grid point then over the grid (``grid``)."""
    diverged = sum(r["status"] == "diverged" for r in records)
    scored = [r for r in records if r["status"] == "finished" or (reduction.diverged == "score" and r["status"] == "diverged")]
    peaks = [best([v for _, v in series(r, reduction.metric)], reduction.mode) for r in scored]
    row_peak = best([p for p in peaks if p is not None], reduction.mode)
    read = {id(r): run_value(r, reduction, labels, row_peak=row_peak, budget_s=budget_s, clip_epochs=clip_epochs) for r in scored}
    seed_stat = SEED_STATS[reduction.seeds]
    if reduction.grid:
        groups: dict[Any, list[float]] = defaultdict(list)
        for r in scored:
            if read[id(r)] is not None:
                groups[get_dotted(r["config"], reduction.grid)].append(read[id(r)])
        per_point = [float(seed_stat(v)) for v in groups.values()]
        value = GRID_STATS[reduction.over_grid](per_point) if per_point else None
        return CellValue(value, None, sum(map(len, groups.values())), None, diverged, len(records))
    values = [v for r in scored if (v := read[id(r)]) is not None]
    value = float(seed_stat(values)) if values else None
    return CellValue(value, spread(values), len(values), bootstrap_ci(values, seed_stat), diverged, len(records))


def outside(paper: float | None, ci: tuple[float, float] | None) -> bool:
    return paper is not None and ci is not None and not math.isnan(paper) and not ci[0] <= paper <= ci[1]
