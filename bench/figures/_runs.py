"""What the figures over sets of runs share: ``--runs DIR`` with filters, run labels, and saving a
figure with the footnote that says when its runs are reduced, lossy or synthetic.

    --runs DIR            the folder of run records (``results/runs``; a results store's root works too)
    --experiment E ...    keep runs of these presets (``+experiment=E``)
    --optim O ...         keep runs of these optimizer configs (``optim=O``)
    --where KEY=VALUE     keep runs whose dotted record field has this value (YAML-parsed), e.g.
                          ``--where config.optim.hparams.lr=0.1``; repeatable
    --status S ...        keep runs with these statuses (default: finished diverged; lr_estimates: all)
"""
from __future__ import annotations

import argparse
import re
import textwrap
from pathlib import Path
from typing import Any

import yaml

from bench.errors import BenchError
from bench.identity import get_dotted
from bench.records import FINAL_STATUSES, ResultsStore
from bench.tables.records import FLAGS, flags, matches

Record = dict[str, Any]
FIELD = re.compile(r"\{([A-Za-z0-9_./-]+)\}")


def add_runs(parser: argparse.ArgumentParser, label: str | None = None,
             statuses: tuple[str, ...] = FINAL_STATUSES) -> None:
    """``--runs`` and the filters every figure over a set of runs takes (and ``--label`` if given)."""
    parser.add_argument("--runs", type=Path, default=Path("results/runs"),
                        help="folder of run records, <results>/runs (default: results/runs)")
    parser.add_argument("--experiment", nargs="+", help="keep runs of these presets")
    parser.add_argument("--optim", nargs="+", help="keep runs of these optimizer configs")
    parser.add_argument("--where", action="append", default=[], metavar="KEY=VALUE",
                        help="keep runs whose dotted record field has this value, e.g. config.optim.hparams.lr=0.1")
    parser.add_argument("--status", nargs="+", default=list(statuses),
                        help="keep runs with these statuses (default: %(default)s)")
    if label is not None:
        parser.add_argument("--label", default=label,
                            help="each run's legend label; {dotted.key} fields of the record (default: %(default)s)")


def criteria(where: list[str]) -> dict[str, Any]:
    """``--where KEY=VALUE`` pairs as ``{dotted key: value}`` (values parsed as YAML: 0.1, true, adas)."""
    out = {}
    for item in where:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise BenchError(f"--where {item}: expected KEY=VALUE, e.g. --where config.optim.hparams.lr=0.1")
        out[key] = yaml.safe_load(value)
    return out


def runs_folder(path: Path) -> Path:
    """The folder that holds the records: ``path`` itself, or ``path/runs`` for a results store's root."""
    if (path / "runs").is_dir() and not any(path.glob("*.json")):
        return path / "runs"
    if not path.is_dir():
        raise BenchError(f"--runs {path}: no such folder; pass the folder of run records, e.g. --runs results/runs")
    return path


def select(args: argparse.Namespace) -> list[Record]:
    """The records under ``--runs`` that pass the filters, by run id; one error if none does."""
    folder = runs_folder(args.runs)
    wanted = criteria(args.where)
    records = [r for r in (ResultsStore.read(p) for p in sorted(folder.glob("*.json"))) if r is not None]
    keep = [r for r in records if r.get("status") in args.status and matches(r, wanted)
            and (not args.experiment or r.get("experiment") in args.experiment)
            and (not args.optim or r.get("optim") in args.optim)]
    if not keep:
        shown = " ".join(f"--{k} {' '.join(map(str, v))}" for k, v in
                         (("experiment", args.experiment), ("optim", args.optim), ("status", args.status),
                          ("where", args.where)) if v)
        raise BenchError(f"no run record in {folder} matches {shown} ({len(records)} records there); "
                         "run the experiment first or loosen the filters")
    return keep


def label(record: Record, template: str) -> str:
    """``template`` with each ``{dotted.key}`` replaced by that field of the record (``?`` if absent)."""
    def field(match: re.Match[str]) -> str:
        value = get_dotted(record, match.group(1))
        return "?" if value is None else f"{value:g}" if isinstance(value, float) else str(value)
    return FIELD.sub(field, template)


def caveat(records: list[Record]) -> str:
    """The footnote for a figure of ``records``: how many are reduced, lossy or synthetic ('' if none)."""
    counts = {name: sum(name in flags(r) for r in records) for name in FLAGS}
    parts = [f"{n} of {len(records)} runs: {FLAGS[name][1]}" for name, n in counts.items() if n]
    return "; ".join(parts)


def save(fig: Any, out: Path, records: list[Record], dpi: int = 150) -> Path:
    """Write ``fig`` to ``out`` (format by suffix) with the caveat footnote, and close it."""
    import matplotlib.pyplot as plt

    note = caveat(records)
    if note:   # below the axes; bbox_inches="tight" grows the canvas to hold it
        fig.text(0.01, 0.0, textwrap.fill(f"Note: {note}.", 160), fontsize=7, color="#a00000", ha="left", va="top")
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=dpi, bbox_inches="tight")
    plt.close(fig)
    return out


def pyplot() -> Any:
    """matplotlib's pyplot on the file-only Agg backend."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def role_logs(row: dict[str, Any], key: str) -> dict[str, dict[str, Any]]:
    """A history row's ``key`` logs by role: ``{"": row[key]}`` for a one-role run, else
    ``{role: row["key/role"]}`` (``bench.trainer.by_role``)."""
    if isinstance(row.get(key), dict):
        return {"": row[key]}
    return {name.split("/", 1)[1]: value for name, value in row.items()
            if name.startswith(f"{key}/") and isinstance(value, dict)}
