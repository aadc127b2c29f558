"""AutoDrop Figures 1-2 style from any run with an AutoDrop schedule: the angular velocity over
epochs with the learning-rate drops marked, and the learning rate.

    python -m bench.figures autodrop_angles --runs results/runs [filters] --out angles.png

Reads ``history[*].schedule`` (``schedule/<role>`` for several roles), which ``optimizers.autodrop``
logs every epoch: ``omega`` (the angle in degrees between consecutive per-epoch displacements,
AutoDrop Eq. 2), ``dropped`` (the LR was dropped at the end of this epoch) and ``lr`` (the LRs after
it). Runs with ``schedule.measure_only=true`` keep a constant LR and only measure omega (Fig. 2: the
angular velocity under constant LRs saturates; lower LRs saturate lower and slower, notes/autodrop.md
"Figures"). Panels: (left) omega per epoch, one line per run, a dot at each epoch that ended with a
drop; (right) the LR each epoch trained with (log scale), drops as dotted vertical lines.
"""
from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from bench.errors import BenchError
from bench.figures import add_out, out_path
from bench.figures._runs import Record, add_runs, label, pyplot, role_logs, save, select

LABEL = "{optim} lr={config.optim.hparams.lr} rho={config.schedule.rho}"
EXAMPLES = """examples:
  python -m bench.figures autodrop_angles --runs results/runs --where config.schedule.name=autodrop --out angles.png
  python -m bench.figures autodrop_angles --runs results/runs --where config.schedule.measure_only=true \\
      --label "lr {config.optim.hparams.lr}" --out fig2.pdf   # constant-LR probes (Fig. 2)"""


def curves(record: Record) -> dict[str, list[Any]]:
    """Epochs, omega (None before it is measurable), LR per epoch and drop epochs of one run
    (the first role with an AutoDrop log)."""
    epochs, omega, lr, drops = [], [], [], []
    for row in record.get("history") or []:
        logs = [(role, log) for role, log in role_logs(row, "schedule").items() if "omega" in log]
        if not logs:
            continue
        role, log = logs[0]
        lrs = row.get(f"lr/{role}" if role else "lr")
        epochs.append(row["epoch"])
        omega.append(log["omega"])
        lr.append(lrs[0] if isinstance(lrs, list) and lrs else None)
        if log.get("dropped"):
            drops.append(row["epoch"])
    return {"epoch": epochs, "omega": omega, "lr": lr, "drops": drops}


def plot(records: list[Record], template: str, out: Path) -> Path:
    plt = pyplot()
    fig, (left, right) = plt.subplots(1, 2, figsize=(12.8, 4.2))
    colours = plt.get_cmap("tab10" if len(records) <= 10 else "tab20")
    for i, record in enumerate(records):
        c, colour = curves(record), colours(i % colours.N)
        points = [(e, w) for e, w in zip(c["epoch"], c["omega"]) if w is not None]
        left.plot([e for e, _ in points], [w for _, w in points], color=colour, lw=1.2, label=label(record, template))
        at_drop = [(e, w) for e, w in points if e in c["drops"]]
        left.plot([e for e, _ in at_drop], [w for _, w in at_drop], "o", color=colour, ms=5)
        lrs = [(e, v) for e, v in zip(c["epoch"], c["lr"]) if v]
        right.plot([e for e, _ in lrs], [v for _, v in lrs], color=colour, lw=1.2, drawstyle="steps-post")
        for epoch in c["drops"]:
            right.axvline(epoch, color=colour, ls=":", lw=0.8)
    left.set(xlabel="epoch", ylabel="angular velocity $\\omega$ [degrees]",
             title="angular velocity (dots: epochs ending in an LR drop)")
    right.set(xlabel="epoch", ylabel="learning rate", yscale="log", title="learning rate (dotted: drops)")
    for ax in (left, right):
        ax.grid(alpha=0.3)
    left.legend(fontsize=7)
    fig.tight_layout()
    return save(fig, out, records)


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.figures autodrop_angles",
                                     description=__doc__.splitlines()[0], epilog=EXAMPLES,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add_runs(parser, LABEL)
    add_out(parser, None)
    args = parser.parse_args(argv)
    out = out_path(args.out)
    records = [r for r in select(args) if curves(r)["epoch"]]
    if not records:
        raise BenchError("no selected run logs AutoDrop's angular velocity (history[*].schedule.omega); "
                         "plot runs with schedule=autodrop (schedule.measure_only=true for constant-LR probes)")
    print(f"wrote {plot(records, args.label, out)} ({len(records)} runs)")
