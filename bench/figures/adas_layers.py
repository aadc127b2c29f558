"""AdaS Figures 2-4 / RMSGD Figures 1b and 3 style: per-conv-layer learning rate, knowledge gain,
mapping condition (or any logged per-layer metric) over epochs, and RMSGD's quality Q.

    python -m bench.figures adas_layers <record.json> --out fig.png   (.png, .pdf or .svg)
    python -m bench.figures adas_layers --runs results/runs [filters] [--panels ...] --out fig.png

Reads the per-epoch ``history[*].optim.layers`` that ``optimizers.AdaS`` / ``optimizers.RMSGD`` log
(``LowRankSGD.epoch_log``), or, for any other optimizer run with ``probe=lowrank``, the same layout
under ``history[*].lowrank.layers`` (``bench.probes``; AdaS Fig. 2 sets Adam's G and C beside AdaS's).
Panels (``--panels``, default ``lr kg condition``): ``lr`` the learning rate each layer trained with
in each epoch (AdaS/RMSGD: epoch 1 the initial LR, epoch e > 1 the LR set by ``end_epoch(e - 1)``; a
probed run: its first parameter group's LR, the same for every layer); ``kg`` the knowledge gain
G = (G_3 + G_4) / 2 after each epoch; ``condition`` the mapping condition C = (C_3 + C_4) / 2; any
other per-layer key of the log (``q``, ``kappa``, ``in_stable_rank``, ``out_rank``, ``in_kg``, ...; RMSGD
Fig. 3 plots stable rank and condition); and ``Q``, RMSGD's quality (Eq. 5), one line per run. One
line per conv layer, coloured from the first (dark) to the last (light) layer; one row per run.
"""
from __future__ import annotations

import argparse
import json
import math
from pathlib import Path
from typing import Any

from bench.errors import BenchError
from bench.figures import add_out, out_path
from bench.figures._runs import add_runs, pyplot, save, select

EXAMPLES = """examples:
  python -m bench.figures adas_layers results/runs/<run_id>.json --out adas_layers.png
  python -m bench.figures adas_layers --runs results/runs --optim adas --experiment cifar10_resnet34 --out adas.pdf
  python -m bench.figures adas_layers --runs results/runs --optim rmsgd --panels lr kg q Q --out rmsgd.png"""
PANELS = {"lr": ("learning rate $\\eta(t,\\ell)$", "log"), "kg": ("knowledge gain $\\bar{G}(t,\\ell)$", "linear"),
          "condition": ("mapping condition $\\bar{C}(t,\\ell)$", "log"), "stable_rank": ("stable rank", "linear"),
          "q": ("layer quality $q(t,\\ell)$ (RMSGD Eq. 4)", "linear"), "Q": ("quality $Q(t)$ (RMSGD Eq. 5)", "linear")}
DEFAULT_PANELS = ("lr", "kg", "condition")
SOURCES = ("optim", "lowrank")   # AdaS/RMSGD's own per-layer logs, then the probe's (bench.probes)
MAX_RUNS = 8


def _rows(record: dict[str, Any]) -> tuple[str, list[dict[str, Any]]]:
    """The log source (``optim`` or ``lowrank``) and the history rows that carry per-layer logs."""
    history = record.get("history", [])
    for source in SOURCES:
        rows = [row for row in history if isinstance(row.get(source), dict) and row[source].get("layers")]
        if rows:
            return source, rows
    raise BenchError("this record has no per-layer low-rank logs (history[*].optim.layers or "
                     "history[*].lowrank.layers); plot a run of optim=adas or optim=rmsgd, or rerun with probe=lowrank")


def layer_series(record: dict[str, Any], keys: tuple[str, ...] = DEFAULT_PANELS
                 ) -> tuple[list[int], dict[str, list[list[float]]]]:
    """Epochs and, per key, one list per layer (``lr`` shifted to the epoch that used it; ``Q``: one list)."""
    source, rows = _rows(record)
    epochs = [row["epoch"] for row in rows]
    n_layers = len(rows[0][source]["layers"])
    logged = sorted({k for row in rows for layer in row[source]["layers"] for k in layer} | {"Q"})
    series: dict[str, list[list[float]]] = {}
    for key in keys:
        if key == "Q":
            series[key] = [[_number(row[source].get("Q")) for row in rows]]
        elif key == "lr" and source == "optim":
            first_lr = record["history"][0]["lr"][0]
            series[key] = [[first_lr] + [row[source]["layers"][j]["lr"] for row in rows[:-1]] for j in range(n_layers)]
        elif key == "lr":   # every layer trains with its group's LR; None (no LR, e.g. COCOB) is not plotted
            lrs = [_number((row.get("lr") or [None])[0]) for row in rows]
            series[key] = [list(lrs) for _ in range(n_layers)]
        elif key in logged:
            series[key] = [[_number(row[source]["layers"][j].get(key)) for row in rows] for j in range(n_layers)]
        else:
            raise BenchError(f"{record.get('run_id', 'this record')} logs no per-layer {key!r}; "
                             f"logged: {', '.join(logged)}")
        if all(math.isnan(v) for values in series[key] for v in values):
            raise BenchError(f"{record.get('run_id', 'this record')} logs no value of {key!r}")
    return epochs, series


def _number(value: Any) -> float:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else float("nan")


def plot(records: list[dict[str, Any]], keys: tuple[str, ...], out: Path) -> Path:
    plt = pyplot()
    data = [layer_series(record, keys) for record in records]
    fig, axes = plt.subplots(len(records), len(keys), figsize=(5 * len(keys), 3.8 * len(records)),
                             squeeze=False, constrained_layout=True)
    cmap = plt.get_cmap("viridis")
    n_layers = 1
    for record, (epochs, series), row in zip(records, data, axes):
        for ax, key in zip(row, keys):
            title, scale = PANELS.get(key, (key, "linear"))
            n_layers = max(n_layers, len(series[key]))
            for j, values in enumerate(series[key]):
                shown = [v if v > 0 else float("nan") for v in values] if scale == "log" else values
                ax.plot(epochs, shown, color="black" if key == "Q" else cmap(j / max(len(series[key]) - 1, 1)), lw=1.2)
            ax.set(xlabel="epoch", title=title, yscale=scale)
            ax.grid(alpha=0.3)
        optim = record.get("config", {}).get("optim", {})
        row[0].set_ylabel(f"{record.get('run_id', '')[:40]}\n({optim.get('name', '?')}, "
                          f"beta={optim.get('hparams', {}).get('beta', '-')})", fontsize=8)
    mappable = plt.cm.ScalarMappable(cmap=cmap, norm=plt.Normalize(1, n_layers))
    fig.colorbar(mappable, ax=axes, label="conv layer $\\ell$", shrink=0.9)
    return save(fig, out, records, dpi=120)


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.figures adas_layers", description=__doc__.splitlines()[0],
                                     epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("record", type=Path, nargs="?", help="one run record (results/runs/<run_id>.json); "
                        "without it, the runs under --runs that pass the filters")
    add_runs(parser)
    parser.add_argument("--panels", nargs="+", default=list(DEFAULT_PANELS),
                        help="per-layer keys to plot, and Q (default: %(default)s)")
    add_out(parser, None)
    args = parser.parse_args(argv)
    out = out_path(args.out)
    if args.record is not None:
        if not args.record.is_file():
            raise BenchError(f"no record at {args.record}; pass a results/runs/<run_id>.json file")
        records = [json.loads(args.record.read_text())]
    else:
        records = [r for r in select(args) if any(isinstance(row.get(s), dict) and row[s].get("layers")
                                                  for row in r.get("history", []) for s in SOURCES)]
        if not records:
            _rows({})   # the error that says which runs have per-layer logs
        if len(records) > MAX_RUNS:
            raise BenchError(f"{len(records)} runs match; this figure draws one row per run, at most {MAX_RUNS}: "
                             "narrow the selection (--optim, --experiment, --where seed=0)")
    print(f"wrote {plot(records, tuple(args.panels), out)} ({len(records)} runs)")
