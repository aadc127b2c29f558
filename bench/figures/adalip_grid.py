"""AdaLip Figures 2-4: each optimizer's mean training-accuracy curve over its learning-rate grid,
with the spread across the grid as a band.

    python -m bench.figures adalip_grid --runs results/runs --experiment adalip_mnist --out adalip.png

The paper shows "the mean curves" of the training accuracy over all LR experiments, shaded by their
variance (Ioannou et al. 2023, Sect. 5, Figs. 2-4; notes/adalip.md 1.10 item 5). Here, per optimizer
and LR, the runs' curves are first averaged over seeds (failed runs out, diverged ones
in, up to their last epoch, as in the AdaLip table specs' ``diverged: score``); then, per epoch, the mean over the
LRs is the line and the band is +- one standard deviation over the LRs (``--band std``, the
paper's shading) or their minimum to maximum (``--band minmax``). ``--metric test_acc1`` draws the
test accuracy instead; ``--pairs`` keeps the paper's pairing of panels (SGD/AdaLip, Adam/AdamLip,
RMSProp/RMSLip) where those optimizers are present.
"""
from __future__ import annotations

import argparse
import statistics
from pathlib import Path

from bench.errors import BenchError
from bench.figures import add_out, out_path
from bench.figures._runs import Record, add_runs, pyplot, save, select

# Config name -> the paper's label, in the paper's order, and the LR family each pair shares (Sect. 5).
LABELS = {"sgd_keras": "SGD", "adalip": "AdaLip", "adam_keras": "Adam", "adamlip": "AdamLip",
          "rmsprop_keras": "RMSProp", "rmslip": "RMSLip"}
FAMILY = {"sgd_keras": "sgd", "adalip": "sgd", "adam_keras": "adam", "adamlip": "adam",
          "rmsprop_keras": "rmsprop", "rmslip": "rmsprop"}


def curve(record: Record, key: str) -> list[float]:
    """Per-epoch values of ``key`` (percent in the records) as fractions."""
    return [row[key] / 100.0 for row in record["history"] if key in row]


def by_optimizer_and_lr(records: list[Record]) -> dict[str, dict[float, list[Record]]]:
    """{optimizer: {lr: [runs]}}; failed runs are left out, diverged ones count."""
    groups: dict[str, dict[float, list[Record]]] = {}
    for record in records:
        if record["status"] in ("finished", "diverged"):
            lr = float(record["config"]["optim"]["hparams"]["lr"])
            groups.setdefault(record["optim"], {}).setdefault(lr, []).append(record)
    return groups

EXAMPLES = """examples:
  python -m bench.figures adalip_grid --runs results/runs --experiment adalip_mnist --out adalip_mnist.png
  python -m bench.figures adalip_grid --runs results/runs --experiment adalip_cifar10 --band minmax --pairs \\
      --out adalip_cifar10.pdf"""


def mean_curve(curves: list[list[float]]) -> list[float]:
    """Per-epoch mean over the curves that reach that epoch."""
    length = max(len(c) for c in curves)
    return [statistics.fmean(c[e] for c in curves if len(c) > e) for e in range(length)]


def grid_band(runs_by_lr: dict[float, list[Record]], metric: str, band: str) -> tuple[list[float], ...]:
    """(mean, low, high) per epoch over the LR grid, each LR's curve the mean over its seeds (percent)."""
    per_lr = [mean_curve(curves) for runs in runs_by_lr.values()
              if (curves := [[100 * v for v in curve(r, metric)] for r in runs if curve(r, metric)])]
    if not per_lr:
        return [], [], []
    mean = mean_curve(per_lr)
    low, high = [], []
    for e, m in enumerate(mean):
        values = [c[e] for c in per_lr if len(c) > e]
        spread = statistics.pstdev(values) if band == "std" else None
        low.append(m - spread if spread is not None else min(values))
        high.append(m + spread if spread is not None else max(values))
    return mean, low, high


def panels(names: list[str], pairs: bool) -> list[list[str]]:
    """Optimizer names per panel: one panel, or one per LR family (SGD/AdaLip, ...) when ``pairs``."""
    if not pairs:
        return [names]
    by_family: dict[str, list[str]] = {}
    for name in names:
        by_family.setdefault(FAMILY.get(name, name), []).append(name)
    return list(by_family.values())


def plot(records: list[Record], metric: str, band: str, pairs: bool, out: Path) -> Path:
    plt = pyplot()
    groups = by_optimizer_and_lr(records)
    order = [n for n in LABELS if n in groups] + sorted(n for n in groups if n not in LABELS)
    layout = panels(order, pairs)
    fig, axes = plt.subplots(1, len(layout), figsize=(6.4 * len(layout), 4.2), squeeze=False)
    colours = plt.get_cmap("tab10")
    for ax, names in zip(axes[0], layout):
        for name in names:
            mean, low, high = grid_band(groups[name], metric, band)
            colour = colours(order.index(name) % 10)
            epochs = range(1, len(mean) + 1)
            text = f"{LABELS.get(name, name)} ({len(groups[name])} LRs)"
            ax.plot(epochs, mean, color=colour, lw=1.5, label=text)
            ax.fill_between(epochs, low, high, color=colour, alpha=0.2, lw=0)
        ax.set(xlabel="epoch", ylabel=f"{metric} (%)",
               title=f"mean over the LR grid, band: {'± 1 std' if band == 'std' else 'min-max'} over LRs")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    return save(fig, out, records)


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.figures adalip_grid", description=__doc__.splitlines()[0],
                                     epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_runs(parser)
    parser.add_argument("--metric", default="train_acc1", help="history key, in percent (default: %(default)s)")
    parser.add_argument("--band", choices=("std", "minmax"), default="std",
                        help="the spread over the LR grid (default: %(default)s)")
    parser.add_argument("--pairs", action="store_true", help="one panel per family: SGD/AdaLip, Adam/AdamLip, ...")
    add_out(parser, None)
    args = parser.parse_args(argv)
    out = out_path(args.out)
    records = [r for r in select(args) if curve(r, args.metric)]
    if not records:
        raise BenchError(f"no selected run logs {args.metric!r} in its history; pass --metric with a logged "
                         "accuracy (train_acc1, test_acc1) or select AdaLip runs (--experiment adalip_mnist)")
    print(f"wrote {plot(records, args.metric, args.band, args.pairs, out)} ({len(records)} runs)")
