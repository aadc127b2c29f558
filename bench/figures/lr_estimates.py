"""Estimated learning rates of the learning-rate-free methods over training (Suh & Seo, Figure 1).

The paper's Figure 1 plots, per task, the learning rate each LR-free method estimated during
training (lambda_k for PS-DA-SGD, eta_k for SPS/PS-SPS, d*lr for D-Adapt and Prodigy, eta_t for
DoG). Here the values come from run records: ``history[i]["optim"]["est_lr"]`` per epoch, or
``est_lr_steps`` per step when the run was made with ``optim.hparams.log_lr_every=N``.

    python -m bench.figures lr_estimates [--results results] [--dataset D] [--model M]
        [--experiment E] [--out lr_estimates.png]

One line per run (colour per optimizer, log scale). Diverged runs end with an x marker.
"""
from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import matplotlib

EXAMPLES = """examples:
  python -m bench.figures lr_estimates --experiment ps_cifar100_resnet32 --out lr_estimates.png
  python -m bench.figures lr_estimates --dataset cifar100 --model resnet32 --out lr.pdf   # suffix: format"""
matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from bench.errors import BenchError, report  # noqa: E402
from bench.figures import add_out, out_path  # noqa: E402
from bench.records import ResultsStore  # noqa: E402


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value) and value > 0


def series(record: dict[str, Any]) -> tuple[list[float], list[float], str]:
    """(x, estimated LR, x label) of one record: per step when logged so, else per epoch."""
    rows = [row for row in record.get("history", []) if isinstance(row.get("optim"), dict)]
    steps = [pair for row in rows for pair in row["optim"].get("est_lr_steps", [])]
    if steps:
        return [s for s, v in steps if _finite(v)], [v for s, v in steps if _finite(v)], "step"
    pairs = [(row["epoch"], row["optim"].get("est_lr")) for row in rows]
    return [e for e, v in pairs if _finite(v)], [v for e, v in pairs if _finite(v)], "epoch"


def select(records: Iterable[dict[str, Any]], dataset: str | None, model: str | None,
           experiment: str | None) -> list[dict[str, Any]]:
    """Records matching the filters that carry at least one estimated learning rate."""
    keep = []
    for record in records:
        if any(value is not None and record.get(key) != value
               for key, value in (("dataset", dataset), ("model", model), ("experiment", experiment))):
            continue
        if series(record)[0]:
            keep.append(record)
    return keep


def plot(records: list[dict[str, Any]], out: Path, title: str) -> Path:
    """Draw the figure to ``out`` (PNG/PDF by suffix)."""
    names = sorted({r["optim"] for r in records})
    colours = {name: plt.get_cmap("tab10")(i % 10) for i, name in enumerate(names)}
    fig, ax = plt.subplots(figsize=(6.4, 4.0))
    labelled: set[str] = set()
    xlabel = "epoch"
    for record in sorted(records, key=lambda r: (r["optim"], r["seed"])):
        x, y, xlabel = series(record)
        name = record["optim"]
        ax.plot(x, y, color=colours[name], lw=1.2, label=None if name in labelled else name)
        labelled.add(name)
        if record.get("status") == "diverged":
            ax.plot(x[-1:], y[-1:], "x", color=colours[name], ms=8)
    ax.set_yscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel("estimated learning rate")
    ax.set_title(title)
    ax.legend(fontsize=8)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=150)
    plt.close(fig)
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.figures lr_estimates", description=__doc__.split("\n")[0],
                                     epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--results", default="results", help="results store (holds runs/*.json)")
    parser.add_argument("--dataset")
    parser.add_argument("--model")
    parser.add_argument("--experiment")
    add_out(parser, "lr_estimates.png")
    args = parser.parse_args(argv)
    out = out_path(args.out)
    records = select(ResultsStore(args.results), args.dataset, args.model, args.experiment)
    if not records:
        report(BenchError(f"no run record with an estimated learning rate in {args.results}/runs matches; "
                          "run an LR-free optimizer first, e.g. python -m bench optim=ps_dasgd"))
        sys.exit(BenchError.exit_code)
    title = " / ".join(v for v in (args.experiment, args.dataset, args.model) if v) or "all runs"
    print(f"wrote {plot(records, out, title)} ({len(records)} runs)")


if __name__ == "__main__":
    main()
