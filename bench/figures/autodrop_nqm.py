"""AutoDrop Figures 1 and 3 on the noisy quadratic model, from the records of ``+experiment=autodrop_nqm``.

    python -m bench.figures autodrop_nqm [--results results] [--out autodrop_nqm.png]

Panels, against GD iterations: the noiseless loss 0.5 x^T A x (log scale), the angular velocity
(per-iteration angles averaged over each 20-iteration window) and the learning rate. Constant-LR
runs (``schedule=angle_probe_nqm``) are Figure 1; the AutoDrop run (the preset's default) is Figure 3.
The footnote says that the NQM's data are synthetic (and when runs are reduced).
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from bench.errors import BenchError
from bench.figures import add_out, out_path
from bench.figures._runs import save
from bench.records import upgrade

EXPERIMENT = "autodrop_nqm"
EXAMPLES = """examples:
  python -m bench.figures autodrop_nqm --out autodrop_nqm.png
  python -m bench.figures autodrop_nqm --results results/reference/autodrop_nqm --out nqm.pdf   # suffix: format"""


def load_records(results: Path, experiment: str = EXPERIMENT) -> list[dict[str, Any]]:
    """Finished records of ``experiment`` in the results store, newest last."""
    records = [upgrade(json.loads(p.read_text())) for p in sorted((results / "runs").glob(f"{experiment}-*.json"))]
    return sorted((r for r in records if r["status"] == "finished"), key=lambda r: r["finished_at"])


def curves(record: dict[str, Any]) -> dict[str, Any]:
    """Iterations, loss, omega and LR per epoch of one NQM record, and its label."""
    steps = record["config"]["workload"]["steps_per_epoch"]
    history = record["history"]
    schedule = [row.get("schedule", {}) for row in history]
    lr0 = record["config"]["optim"]["hparams"]["lr"]
    measure_only = record["config"]["schedule"].get("measure_only", False)
    label = f"lr {lr0:g}" if measure_only or record["config"]["schedule"]["name"] != "autodrop" \
        else f"AutoDrop from {lr0:g}"
    return {
        "label": label,
        "iterations": [row["epoch"] * steps for row in history],
        "loss": [row["test_loss"] for row in history],
        "omega": [s.get("omega") for s in schedule],
        "lr": [s["lr"][0] if "lr" in s else row["lr"][0] for s, row in zip(schedule, history)],
        "drops": [row["epoch"] * steps for s, row in zip(schedule, history) if s.get("dropped")],
    }


def draw(records: list[dict[str, Any]], out: Path) -> Path:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(15, 4))
    for record in records:
        c = curves(record)
        style = "-" if c["label"].startswith("AutoDrop") else "--"
        axes[0].plot(c["iterations"], c["loss"], style, label=c["label"])
        points = [(i, w) for i, w in zip(c["iterations"], c["omega"]) if w is not None]
        axes[1].plot([p[0] for p in points], [p[1] for p in points], style, label=c["label"])
        axes[2].plot(c["iterations"], c["lr"], style, label=c["label"])
        for drop in c["drops"]:
            axes[2].axvline(drop, color="grey", lw=0.5)
    axes[0].set(yscale="log", xlabel="iteration", ylabel="loss 0.5 x^T A x", title="NQM loss")
    axes[1].set(xlabel="iteration", ylabel="angular velocity [deg]", title="omega (20-iteration mean)")
    axes[2].set(yscale="log", xlabel="iteration", ylabel="learning rate", title="learning rate")
    for ax in axes:
        ax.legend(fontsize=8)
    fig.tight_layout()
    return save(fig, out, records, dpi=120)


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.figures autodrop_nqm", description=__doc__,
                                     epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--results", type=Path, default=Path("results"), help="results store (holds runs/*.json)")
    add_out(parser, "autodrop_nqm.png")
    args = parser.parse_args(argv)
    out = out_path(args.out)
    records = load_records(args.results)
    if not records:
        raise BenchError(f"no finished {EXPERIMENT} records under {args.results}/runs; run the commands in "
                         f"conf/experiment/{EXPERIMENT}.yaml first")
    print(f"wrote {draw(records, out)} from {len(records)} runs")
