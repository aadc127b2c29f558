"""Estimated learning rates of the learning-rate-free methods over training (Suh & Seo, Figure 1).

The paper's Figure 1 plots, per task, the learning rate each LR-free method estimated during
training (lambda_k for PS-DA-SGD, eta_k for SPS/PS-SPS, d*lr for D-Adapt and Prodigy, eta_t for
DoG). Here the values come from run records: ``history[i]["optim"]["est_lr"]`` per epoch, or
``est_lr_steps`` per step when the run was made with ``optim.hparams.log_lr_every=N``; for runs
with several parameter roles (SAC: actor, critic, entropy) ``history[i]["optim/<role>"]``.

    python -m bench.figures lr_estimates [--runs results/runs] [filters] [--dataset D] [--model M]
        [--out lr_estimates.png]

One line per run and role (colour per optimizer, line style per role, log scale). Diverged runs end
with an x marker. The footnote says when runs are reduced, lossy or synthetic.
"""
from __future__ import annotations

import argparse
import math
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import matplotlib

EXAMPLES = """examples:
  python -m bench.figures lr_estimates --experiment ps_cifar100_resnet32 --out lr_estimates.png
  python -m bench.figures lr_estimates --dataset cifar100 --model resnet32 --out lr.pdf   # suffix: format
  python -m bench.figures lr_estimates --runs results/runs --experiment ps_sac_hopper --out lr_sac.png"""
matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from bench.errors import BenchError  # noqa: E402
from bench.figures import add_out, out_path  # noqa: E402
from bench.figures._runs import add_runs, role_logs, save, select as select_runs  # noqa: E402
from bench.records import FINAL_STATUSES  # noqa: E402


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value) and value > 0


def roles(record: dict[str, Any]) -> list[str]:
    """The roles whose optimizer logs an estimated LR ("" for a one-role run), in log order."""
    found: dict[str, None] = {}
    for row in record.get("history", []):
        for role, log in role_logs(row, "optim").items():
            if "est_lr" in log or "est_lr_steps" in log:
                found[role] = None
    return list(found)


def series(record: dict[str, Any], role: str | None = None) -> tuple[list[float], list[float], str]:
    """(x, estimated LR, x label) of one record's ``role`` (default: its first role that logs one):
    per step when logged so, else per epoch."""
    role = role if role is not None else next(iter(roles(record)), "")
    rows = [(row, logs[role]) for row in record.get("history", []) if role in (logs := role_logs(row, "optim"))]
    steps = [pair for _, log in rows for pair in log.get("est_lr_steps", [])]
    if steps:
        return [s for s, v in steps if _finite(v)], [v for s, v in steps if _finite(v)], "step"
    pairs = [(row["epoch"], log.get("est_lr")) for row, log in rows]
    return [e for e, v in pairs if _finite(v)], [v for e, v in pairs if _finite(v)], "epoch"


def select(records: Iterable[dict[str, Any]], dataset: str | None, model: str | None,
           experiment: str | None = None) -> list[dict[str, Any]]:
    """Records matching the filters that carry at least one estimated learning rate."""
    keep = []
    for record in records:
        if any(value is not None and record.get(key) != value
               for key, value in (("dataset", dataset), ("model", model), ("experiment", experiment))):
            continue
        if any(series(record, role)[0] for role in roles(record)):
            keep.append(record)
    return keep


def plot(records: list[dict[str, Any]], out: Path, title: str) -> Path:
    """Draw the figure to ``out`` (PNG/PDF by suffix)."""
    names = sorted({r["optim"] for r in records})
    colours = {name: plt.get_cmap("tab10")(i % 10) for i, name in enumerate(names)}
    styles = ("-", "--", ":", "-.")
    fig, ax = plt.subplots(figsize=(6.4, 4.0))
    labelled: set[str] = set()
    xlabel = "epoch"
    for record in sorted(records, key=lambda r: (r["optim"], r["seed"])):
        name = record["optim"]
        for k, role in enumerate(roles(record)):
            x, y, xlabel = series(record, role)
            text = f"{name} ({role})" if role else name
            ax.plot(x, y, styles[k % len(styles)], color=colours[name], lw=1.2,
                    label=None if text in labelled else text)
            labelled.add(text)
            if record.get("status") == "diverged" and x:
                ax.plot(x[-1:], y[-1:], "x", color=colours[name], ms=8)
    ax.set_yscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel("estimated learning rate")
    ax.set_title(title)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return save(fig, out, records)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.figures lr_estimates", description=__doc__.split("\n")[0],
                                     epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_runs(parser, statuses=(*FINAL_STATUSES, "failed"))   # a failed run's estimates up to its failure
    parser.add_argument("--results", dest="runs", type=Path, help=argparse.SUPPRESS)   # the results store's root
    parser.add_argument("--dataset")
    parser.add_argument("--model")
    add_out(parser, "lr_estimates.png")
    args = parser.parse_args(argv)
    out = out_path(args.out)
    records = select(select_runs(args), args.dataset, args.model)
    if not records:
        raise BenchError(f"no selected run record in {args.runs} logs an estimated learning rate; "
                         "run an LR-free optimizer first, e.g. python -m bench optim=ps_dasgd")
    title = " / ".join(v for v in (" ".join(args.experiment or []), args.dataset, args.model) if v) or "all runs"
    print(f"wrote {plot(records, out, title)} ({len(records)} runs)")


if __name__ == "__main__":
    main()
