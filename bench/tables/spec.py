"""Paper table specs (``results/specs/<name>.yaml``, format in ``results/specs/README.md``).

A spec names the published CSV, how one run is read (``Reduction``), and for each published label the
Hydra overrides of its runs. The same overrides launch a cell (``bench.sweep``) and find its runs in the
store (``bench.tables``), so what is run is what is tabulated.
"""
from __future__ import annotations

import csv
import itertools
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml

from bench.errors import BenchError
from bench.identity import get_dotted

# Hydra config-group overrides and the record field that holds the chosen name.
GROUP_FIELDS = {"+experiment": "experiment", "experiment": "experiment", "optim": "optim", "model": "model",
                "dataset": "dataset", "workload": "workload", "schedule": "config.schedule.name"}
REDUCTION_KEYS = ("metric", "mode", "reduce", "transform", "seeds", "grid", "over_grid", "success", "diverged",
                  "precision")
SPEC_KEYS = {"title", "paper", "source", "published", "match", "settings", "extras", "sweep", "notes", *REDUCTION_KEYS}
REDUCERS = ("final", "best", "at_epoch", "epochs_to_fraction", "at_train_time_of")
GRID_STATS = ("max", "min", "mean", "median", "std")


@dataclass(frozen=True)
class Reduction:
    """How a cell's runs become one number (see results/specs/README.md)."""
    metric: str
    mode: str = "max"
    reduce: Any = "final"
    transform: Any = None
    seeds: str = "mean"
    grid: str | None = None
    over_grid: str | None = None
    success: bool = False
    diverged: str = "count"          # count: diverged runs are counted, not scored; score: scored on what they reached
    precision: int = 2

    @property
    def reducer(self) -> str:
        return self.reduce if isinstance(self.reduce, str) else next(iter(self.reduce))

    @property
    def argument(self) -> Any:
        return None if isinstance(self.reduce, str) else self.reduce[self.reducer]


@dataclass
class Row:
    """One published cell: its labels, the paper's values, and the runs that fill it."""
    labels: dict[str, str]
    paper: float | None
    paper_std: str
    extras: dict[str, str]
    overrides: dict[str, Any]
    reduction: Reduction


@dataclass
class Tier:
    seeds: int
    overrides: dict[str, Any] = field(default_factory=dict)
    only: dict[str, list[str]] = field(default_factory=dict)


@dataclass
class Spec:
    name: str
    title: str
    paper: str
    source: str
    keys: list[str]
    rows: list[Row]
    extras: dict[str, Reduction]
    tiers: dict[str, Tier]
    sweep_overrides: dict[str, Any]
    notes: list[str]

    def tier(self, name: str) -> Tier:
        if name not in self.tiers:
            raise BenchError(f"table {self.name} has no tier {name!r}; its tiers: {', '.join(self.tiers)}")
        return self.tiers[name]


def parse_number(text: str) -> float | None:
    return None if text is None or not text.strip() else float(text)


def _reduction(settings: dict[str, Any], where: str) -> Reduction:
    try:
        reduction = Reduction(**{k: v for k, v in settings.items() if k in REDUCTION_KEYS})
    except TypeError as error:
        raise BenchError(f"{where}: {error}; set `metric`") from None
    if reduction.reducer not in REDUCERS:
        raise BenchError(f"{where}: reduce {reduction.reduce!r} is not one of {', '.join(REDUCERS)}")
    if reduction.grid and reduction.over_grid not in GRID_STATS:
        raise BenchError(f"{where}: over_grid must be one of {', '.join(GRID_STATS)} when grid is set")
    return reduction


def load_spec(path: Path, published_dir: Path) -> Spec:
    """Read and check a spec and its published CSV; one clear error naming the file otherwise."""
    try:
        spec = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as error:
        raise BenchError(f"{path} is not valid YAML ({str(error).splitlines()[0]}); see results/specs/README.md") from None
    unknown = set(spec) - SPEC_KEYS
    if unknown:
        raise BenchError(f"{path}: unknown keys {sorted(unknown)}; see results/specs/README.md")
    csv_path = published_dir / spec.get("published", "")
    if not csv_path.is_file():
        raise BenchError(f"{path}: its published CSV {csv_path} does not exist")
    with open(csv_path, newline="") as handle:
        published = list(csv.DictReader(handle))
    extras = {name: _reduction(extra, f"{path} extras.{name}") for name, extra in (spec.get("extras") or {}).items()}
    keys = [k for k in published[0] if k not in ("mean", "std", *extras, "successes", "runs")]
    base = {k: spec[k] for k in REDUCTION_KEYS if k in spec}
    rows = []
    for entry in published:
        overrides: dict[str, Any] = {}
        settings = dict(base)
        for key in keys:
            overrides.update((spec.get("match") or {}).get(key, {}).get(entry[key]) or {})
            settings.update((spec.get("settings") or {}).get(key, {}).get(entry[key]) or {})
        extra_values = {k: entry[k] for k in (*extras, "successes", "runs") if entry.get(k)}
        rows.append(Row({k: entry[k] for k in keys}, parse_number(entry["mean"]), entry.get("std") or "",
                        extra_values, overrides, _reduction(settings, f"{path} row {entry}")))
    sweep = spec.get("sweep") or {}
    tiers = {"full": Tier(int(sweep.get("seeds", 1)))}
    for name, tier in (sweep.get("tiers") or {}).items():
        tiers[name] = Tier(int(tier.get("seeds", 1)), dict(tier.get("overrides") or {}), dict(tier.get("only") or {}))
    return Spec(path.stem, spec.get("title", path.stem), spec.get("paper", ""), spec.get("source", ""), keys, rows,
                extras, tiers, dict(sweep.get("overrides") or {}), list(spec.get("notes") or []))


def choices(value: Any) -> list[Any]:
    """A Hydra sweep value ``"a,b,c"`` as its choices (parsed as YAML scalars), else ``[value]``."""
    if isinstance(value, str) and "," in value:
        return [yaml.safe_load(part) for part in value.split(",")]
    return [value]


def expand(overrides: dict[str, Any]) -> list[dict[str, Any]]:
    """One dict per combination of the comma-list values (a row's LR grid becomes one cell per LR)."""
    keys = list(overrides)
    return [dict(zip(keys, combo)) for combo in itertools.product(*(choices(overrides[k]) for k in keys))]


def record_field(key: str) -> str:
    """The record field an override sets: ``optim`` -> ``optim``, ``optim.hparams.lr`` -> ``config.optim.hparams.lr``."""
    return GROUP_FIELDS.get(key, f"config.{key.lstrip('+')}")


def matches(record: dict[str, Any], overrides: dict[str, Any]) -> bool:
    """Whether ``record`` is a run of these overrides (comma lists: any of the values)."""
    return all(get_dotted(record, record_field(key)) in choices(value) for key, value in overrides.items())


def with_overrides(row: Row, changes: dict[str, Any]) -> Row:
    return replace(row, overrides={**row.overrides, **changes})
