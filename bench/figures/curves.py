"""Training curves of any set of runs: a logged metric against epoch or step, one line per run.

    python -m bench.figures curves --runs results/runs [filters] [--metric M ...] [--x auto|epoch|step]
        --out curves.png

``--metric`` names a key of the records' ``history`` rows (``test_acc1``, ``train_loss``, ...), or a
dotted path into a row (``optim.Q``, ``schedule.omega``); several metrics give one panel each. The
default is the runs' primary metric (``record.primary.metric``). ``--x auto`` plots against the
environment step for SAC runs (their history is keyed by ``step``, PS paper Table 3's RL columns)
and against the epoch otherwise. A diverged run ends with an x marker. The footnote says when runs
are reduced, lossy or synthetic.
"""
from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path
from typing import Any

from bench.errors import BenchError
from bench.figures import add_out, out_path
from bench.figures._runs import Record, add_runs, label, pyplot, save, select
from bench.identity import get_dotted

LABEL = "{optim} lr={config.optim.hparams.lr} seed={seed}"
STEP_WORKLOADS = ("sac",)   # workloads whose history is keyed by environment steps
EXAMPLES = """examples:
  python -m bench.figures curves --runs results/runs --experiment cifar10_resnet34 --metric test_acc1 --out curves.png
  python -m bench.figures curves --runs results/runs --experiment ps_sac_hopper --metric test_return --out sac.pdf
  python -m bench.figures curves --runs results/runs --optim rmsgd --metric optim.Q train_loss --out q.png"""


def value(row: dict[str, Any], metric: str) -> float | None:
    """``metric`` of one history row as a plottable number (None if absent or not a number)."""
    got = row[metric] if metric in row else get_dotted(row, metric)
    if isinstance(got, list) and len(got) == 1:   # e.g. lr: one value per parameter group
        got = got[0]
    if isinstance(got, bool) or not isinstance(got, (int, float)):
        return None
    return float(got) if math.isfinite(got) else None


def series(record: Record, metric: str, x: str) -> tuple[list[float], list[float]]:
    """(x, metric) of the history rows of one record that log ``metric``."""
    pairs = [(row.get(x), value(row, metric)) for row in record.get("history") or []]
    pairs = [(a, b) for a, b in pairs if a is not None and b is not None]
    return [a for a, _ in pairs], [b for _, b in pairs]


def x_axis(records: list[Record], choice: str) -> str:
    """``epoch`` or ``step``: ``auto`` is step when any run is an RL run (history keyed by step)."""
    if choice != "auto":
        return choice
    return "step" if any(r.get("workload") in STEP_WORKLOADS for r in records) else "epoch"


def metrics_of(records: list[Record], asked: list[str] | None) -> list[str]:
    """The metrics to plot: those asked for, else the runs' one primary metric."""
    if asked:
        return asked
    primaries = sorted({(r.get("primary") or {}).get("metric") or "?" for r in records})
    if len(primaries) != 1:
        raise BenchError(f"these runs have different primary metrics ({', '.join(primaries)}); pass --metric NAME")
    return primaries


def logged(records: list[Record]) -> list[str]:
    """The numeric top-level history keys of ``records`` (for the error that names what exists)."""
    return sorted({k for r in records for row in r.get("history") or [] for k, v in row.items()
                   if k not in ("epoch", "step") and value(row, k) is not None})


def plot(records: list[Record], metrics: list[str], x: str, template: str, out: Path, log: bool) -> Path:
    """One panel per metric, one line per run that logs it."""
    plt = pyplot()
    fig, axes = plt.subplots(1, len(metrics), figsize=(6.4 * len(metrics), 4.2), squeeze=False)
    colours = plt.get_cmap("tab10" if len(records) <= 10 else "tab20")
    for ax, metric in zip(axes[0], metrics):
        for i, record in enumerate(records):
            xs, ys = series(record, metric, x)
            if not xs:
                continue
            colour = colours(i % colours.N)
            ax.plot(xs, ys, color=colour, lw=1.2, label=label(record, template))
            if record.get("status") == "diverged":
                ax.plot(xs[-1:], ys[-1:], "x", color=colour, ms=8)
        ax.set(xlabel="environment step" if x == "step" and any(r.get("workload") in STEP_WORKLOADS
                                                                 for r in records) else x,
               ylabel=metric, title=metric, yscale="log" if log else "linear")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    return save(fig, out, records)


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.figures curves", description=__doc__.splitlines()[0],
                                     epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_runs(parser, LABEL)
    parser.add_argument("--metric", nargs="+", help="history key(s) or dotted path(s) (default: the primary metric)")
    parser.add_argument("--x", choices=("auto", "epoch", "step"), default="auto",
                        help="x axis (default auto: step for SAC runs, else epoch)")
    parser.add_argument("--log", action="store_true", help="log-scale y axis")
    add_out(parser, None)
    args = parser.parse_args(argv)
    out = out_path(args.out)
    records = select(args)
    metrics, x = metrics_of(records, args.metric), x_axis(records, args.x)
    for metric in metrics:
        having = [r for r in records if series(r, metric, x)[0]]
        if not having:
            raise BenchError(f"no selected run logs {metric!r} against {x} in its history; logged: "
                             f"{', '.join(logged(records)) or 'nothing'}")
        if len(having) < len(records):
            print(f"warning: {len(records) - len(having)} of {len(records)} runs do not log {metric!r}; "
                  "they are left out of its panel", file=sys.stderr)
    print(f"wrote {plot(records, metrics, x, args.label, out, args.log)} ({len(records)} runs)")
