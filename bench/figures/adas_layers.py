"""AdaS Figure 2 style: per-conv-layer learning rate, knowledge gain and mapping condition over epochs.

    python -m bench.figures adas_layers <record.json> --out fig.png   (.png, .pdf or .svg)

Reads the per-epoch ``history[*].optim.layers`` that ``optimizers.AdaS`` / ``optimizers.RMSGD`` log
(``LowRankSGD.epoch_log``), or, for any other optimizer run with ``probe=lowrank``, the same layout
under ``history[*].lowrank.layers`` (``bench.probes``; AdaS Fig. 2 sets Adam's G and C beside AdaS's).
Panels: (left) the learning rate each layer trained with in each epoch (AdaS/RMSGD: epoch 1 the
initial LR, epoch e > 1 the LR set by ``end_epoch(e - 1)``; a probed run: its first parameter group's
LR, the same for every layer), (middle) the knowledge gain G = (G_3 + G_4) / 2 after each epoch,
(right) the mapping condition C = (C_3 + C_4) / 2 after each epoch. One line per conv layer, coloured
from the first (dark) to the last (light) layer.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from bench.errors import BenchError
from bench.figures import add_out, out_path

EXAMPLES = """examples:
  python -m bench.figures adas_layers results/runs/<run_id>.json --out adas_layers.png
  python -m bench.figures adas_layers results/runs/<run_id>.json --out adas_layers.pdf   # suffix: format"""
PANELS = (("lr", "learning rate $\\eta(t,\\ell)$", "log"), ("kg", "knowledge gain $\\bar{G}(t,\\ell)$", "linear"),
          ("condition", "mapping condition $\\bar{C}(t,\\ell)$", "log"))


SOURCES = ("optim", "lowrank")   # AdaS/RMSGD's own per-layer logs, then the probe's (bench.probes)


def layer_series(record: dict[str, Any]) -> tuple[list[int], dict[str, list[list[float]]]]:
    """Epochs and, per quantity, one list per layer (``lr`` shifted to the epoch that used it)."""
    history = record.get("history", [])
    for source in SOURCES:
        rows = [row for row in history if isinstance(row.get(source), dict) and row[source].get("layers")]
        if rows:
            break
    else:
        raise BenchError("this record has no per-layer low-rank logs (history[*].optim.layers or "
                         "history[*].lowrank.layers); plot a run of optim=adas or optim=rmsgd, or rerun with probe=lowrank")
    epochs = [row["epoch"] for row in rows]
    n_layers = len(rows[0][source]["layers"])
    series: dict[str, list[list[float]]] = {}
    for key in ("kg", "condition"):
        series[key] = [[row[source]["layers"][j].get(key, 0.0) for row in rows] for j in range(n_layers)]
    if source == "optim":
        first_lr = history[0]["lr"][0]
        series["lr"] = [[first_lr] + [row["optim"]["layers"][j]["lr"] for row in rows[:-1]] for j in range(n_layers)]
    else:   # every layer trains with its group's LR; None (no LR, e.g. COCOB) is not plotted
        lrs = [float("nan") if (lr := (row.get("lr") or [None])[0]) is None else lr for row in rows]
        series["lr"] = [list(lrs) for _ in range(n_layers)]
    return epochs, series


def plot(record: dict[str, Any], out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    epochs, series = layer_series(record)
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.2), constrained_layout=True)
    n_layers = len(series["lr"])
    cmap = plt.get_cmap("viridis")
    for ax, (key, label, scale) in zip(axes, PANELS):
        for j, values in enumerate(series[key]):
            positive = [v if v > 0 else float("nan") for v in values] if scale == "log" else values
            ax.plot(epochs, positive, color=cmap(j / max(n_layers - 1, 1)), lw=1.2)
        ax.set_xlabel("epoch")
        ax.set_title(label)
        ax.set_yscale(scale)
        ax.grid(alpha=0.3)
    mappable = plt.cm.ScalarMappable(cmap=cmap, norm=plt.Normalize(1, n_layers))
    fig.colorbar(mappable, ax=axes, label="conv layer $\\ell$", shrink=0.9)
    optim = record.get("config", {}).get("optim", {})
    fig.suptitle(f"{record.get('run_id', '')}  ({optim.get('name', '?')}, "
                 f"beta={optim.get('hparams', {}).get('beta', '?')})", fontsize=10)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=120)
    plt.close(fig)


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.figures adas_layers", description=__doc__.splitlines()[0],
                                     epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("record", type=Path, help="a run record (results/runs/<run_id>.json)")
    add_out(parser, None)
    args = parser.parse_args(argv)
    out = out_path(args.out)
    if not args.record.is_file():
        raise BenchError(f"no record at {args.record}; pass a results/runs/<run_id>.json file")
    plot(json.loads(args.record.read_text()), out)
    print(f"wrote {out}")
