"""Figures of the report, drawn from run records and tables as plotly.js figures (plain dicts).

Every function returns figures in plotly.js's JSON schema (``{"data": [...], "layout": {...}}``);
the pages draw them with the ``plotly.min.js`` that the pinned ``plotly`` package ships, so the
report is interactive (hover values, zoom, toggling traces) without a server or the internet.
"""
from __future__ import annotations

import functools
import math
import re
from collections import defaultdict
from typing import Any

from bench.errors import BenchError
from bench.figures.adas_layers import layer_series
from bench.figures.curves import STEP_WORKLOADS
from bench.figures.lr_estimates import series as estimated_lr_series

Figure = dict[str, Any]
Record = dict[str, Any]

SPLIT_PREFIXES = ("train_", "test_", "val_")
SKIPPED_KEYS = ("epoch", "step", "layers", "est_lr_steps")
MAX_LEGEND_GROUPS = 40  # traces beyond this many groups are drawn without a legend entry
NUMBER = re.compile(r"^\s*([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)")
STD = re.compile(r"±\s*([\d.]+)")
INTERVAL = re.compile(r"\[\s*([-+\d.eE]+)\s*,\s*([-+\d.eE]+)\s*\]")


def figure(traces: list[dict[str, Any]], title: str, xlabel: str, ylabel: str = "", *, log: bool = False,
           height: int = 300) -> Figure:
    """A figure with the report's layout (one place for fonts, margins and the legend)."""
    return {"data": traces, "layout": {
        "title": {"text": title, "font": {"size": 14}, "x": 0.01, "xanchor": "left"}, "height": height, "hovermode": "closest",
        "margin": {"l": 60, "r": 10, "t": 36, "b": 44}, "legend": {"font": {"size": 10}},
        "xaxis": {"title": {"text": xlabel}}, "yaxis": {"title": {"text": ylabel}, "type": "log" if log else "linear"}}}


def line(x: list[Any], y: list[Any], name: str, **extra: Any) -> dict[str, Any]:
    return {"type": "scatter", "mode": "lines+markers" if len(x) <= 30 else "lines", "x": x, "y": y,
            "name": name, **extra}


def finite(value: Any) -> float | None:
    """A plottable number (None, which plotly draws as a gap, for NaN, inf and non-numbers)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) else None


def _scalars(key: str, value: Any) -> list[tuple[str, Any]]:
    """The numbers a history entry holds, named: ``lr`` -> ``lr[0]``, ``optim`` -> ``optim.est_lr``."""
    if isinstance(value, dict):
        return [pair for k, v in value.items() if k not in SKIPPED_KEYS for pair in _scalars(f"{key}.{k}", v)]
    if isinstance(value, list):
        if value and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value):
            return [(f"{key}[{i}]" if len(value) > 1 else key, v) for i, v in enumerate(value)]
        return []
    return [(key, value)] if isinstance(value, (int, float)) and not isinstance(value, bool) else []


@functools.lru_cache(maxsize=4096)
def panel_of(name: str) -> str:
    """The panel a logged quantity is drawn in: train and test curves of one metric share one."""
    base = name.split("[")[0]
    if base == "lr" or base.startswith("lr/"):
        return "learning rate"
    if base.endswith("time_s"):
        return "time per epoch (s)"
    for prefix in SPLIT_PREFIXES:
        if base.startswith(prefix):
            return base[len(prefix):]
    return base


def x_key(record: Record) -> str:
    """The history key runs are drawn against: environment steps for RL (SAC), else epochs."""
    return "step" if record.get("workload") in STEP_WORKLOADS else "epoch"


def history_panels(record: Record) -> dict[str, dict[str, tuple[list[Any], list[Any]]]]:
    """``{panel: {quantity: (x, values)}}`` for every number logged in the record's history."""
    panels: dict[str, dict[str, tuple[list[Any], list[Any]]]] = defaultdict(dict)
    x = x_key(record)
    for row in record.get("history") or []:
        for key, value in row.items():
            if key in SKIPPED_KEYS:
                continue
            for name, number in _scalars(key, value):
                xs, ys = panels[panel_of(name)].setdefault(name, ([], []))
                xs.append(row.get(x))
                ys.append(finite(number))
    return {panel: series for panel, series in panels.items()
            if any(y is not None for _, ys in series.values() for y in ys)}


def run_figures(record: Record) -> list[Figure]:
    """Curves of every logged metric of one run, then its per-layer and estimated learning rates."""
    primary = (record.get("primary") or {}).get("metric", "")
    panels = history_panels(record)
    order = sorted(panels, key=lambda p: (p != panel_of(primary), p == "learning rate", p.startswith("time"), p))
    xlabel = "environment step" if x_key(record) == "step" else "epoch"
    figures = [figure([line(xs, ys, name) for name, (xs, ys) in sorted(panels[p].items())], p, xlabel,
                      log=p == "learning rate") for p in order]
    return figures + layer_figures(record) + estimated_lr_figures([record])


def layer_figures(record: Record) -> list[Figure]:
    """Per-layer learning rate, knowledge gain and mapping condition (AdaS/RMSGD logs), if logged."""
    try:
        epochs, series = layer_series(record)
    except (BenchError, KeyError, IndexError, TypeError):
        return []
    titles = {"lr": ("per-layer learning rate", True), "kg": ("per-layer knowledge gain", False),
              "condition": ("per-layer mapping condition", True)}
    return [figure([line(epochs, [finite(v) for v in values], f"layer {j + 1}") for j, values in enumerate(series[key])],
                   title, "epoch", log=log) for key, (title, log) in titles.items() if key in series]


def estimated_lr_figures(records: list[Record]) -> list[Figure]:
    """The learning rates LR-free methods estimated (PS Fig. 1 style), one line per run, if logged."""
    traces, xlabel = [], "epoch"
    for record in records:
        x, y, xlabel = estimated_lr_series(record)
        if x:
            traces.append(line(x, y, str(record.get("run_id", "?"))))
    return [figure(traces, "estimated learning rate", xlabel, log=True)] if traces else []


def number(text: str) -> float | None:
    """The leading number of a table cell (``"93.04 ± 0.13†"`` -> 93.04; ``"-"``, ``"NaN (0/5)"`` -> None)."""
    match = NUMBER.match(text)
    return finite(float(match.group(1))) if match else None


def comparison(labels: list[str], ours: list[str], paper: list[str], interval: list[str] | None) -> Figure | None:
    """Ours (with the CI, else ± std) beside the paper's value, one row of the table per line."""
    keep = [i for i in range(len(labels)) if number(ours[i]) is not None or number(paper[i]) is not None]
    if not keep:
        return None
    low, high = [], []
    for i in keep:
        mean = number(ours[i])
        bounds = INTERVAL.search(interval[i]) if interval else None
        std = STD.search(ours[i])
        if mean is not None and bounds:
            low.append(mean - float(bounds.group(1)))
            high.append(float(bounds.group(2)) - mean)
        else:
            spread = float(std.group(1)) if mean is not None and std else 0.0
            low.append(spread)
            high.append(spread)
    names = [labels[i] for i in keep]
    traces = [{"type": "scatter", "mode": "markers", "name": "paper", "y": names, "x": [number(paper[i]) for i in keep],
               "marker": {"symbol": "diamond", "size": 9, "color": "#888"}},
              {"type": "scatter", "mode": "markers", "name": "ours (95% CI)" if interval else "ours (± std)",
               "y": names, "x": [number(ours[i]) for i in keep], "marker": {"size": 8, "color": "#1f77b4"},
               "error_x": {"type": "data", "symmetric": False, "array": high, "arrayminus": low}}]
    fig = figure(traces, "ours beside the paper", "value", height=120 + 18 * len(keep))
    fig["layout"]["yaxis"] = {"autorange": "reversed", "automargin": True, "type": "category"}
    return fig


def group_curves(groups: list[tuple[str, list[Record]]]) -> list[Figure]:
    """The primary metric of every run over epochs, one colour per group (e.g. a table's cell), one
    figure per primary metric."""
    by_metric: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for index, (label, records) in enumerate(groups):
        for k, record in enumerate(records):
            metric = (record.get("primary") or {}).get("metric")
            rows = [row for row in record.get("history") or [] if metric in row]
            if not rows:
                continue
            by_metric[metric].append(line(
                [row.get("epoch") for row in rows], [finite(row[metric]) for row in rows], label,
                legendgroup=label, showlegend=k == 0 and index < MAX_LEGEND_GROUPS,
                line={"color": COLOURS[index % len(COLOURS)], "width": 1.2},
                hovertext=str(record.get("run_id")), hoverinfo="x+y+text"))
    return [figure(traces, f"{metric} of every run", "epoch", metric, height=380)
            for metric, traces in sorted(by_metric.items())]


COLOURS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22",
           "#17becf")
