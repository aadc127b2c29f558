"""AdaLip Tables 2-5 from run records (Ioannou et al. 2023, Sect. 5; notes/adalip.md section 2).

Pure functions over lists of run-record dicts (``bench/records.py`` schema), so any renderer can
call them. Accuracies are fractions (the paper's unit), from the records' percent values.

Protocol, with the choices the paper leaves open (notes/adalip.md 1.10 items 8-10) as arguments:

* per run: the peak training accuracy over epochs; per (optimizer, LR): the **median over runs**;
* over the LR grid: **Max, Median, Mean, Std** of those per-LR scores (``ddof`` 0 by default);
* epochs of convergence: the first epoch (1-indexed) at which a run's training accuracy reaches
  ``fraction`` (0.98 MNIST, 0.95 CIFAR) of the peak; the peak is the maximum over all runs and LRs
  of the same optimizer (``peak_scope="optimizer"``, default) or of all optimizers on the dataset
  (``"dataset"``); per LR the median over the runs that reach it; LRs where no run reaches it are
  left out (consistent with e.g. the CIFAR-100 RMSProp mean 45.4 = 227/5 over 6 LRs); then
  **Mean, Median, Best** (lowest) over LRs;
* Table 5: per (optimizer, LR) the mean over runs of each run's maximum test accuracy; the best LR.
"""
from __future__ import annotations

import csv
import statistics
from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path
from typing import Any

Record = dict[str, Any]

# Config name -> the paper's column label, in the paper's column order.
LABELS = {"sgd_keras": "SGD", "adalip": "AdaLip", "adam_keras": "Adam", "adamlip": "AdamLip",
          "rmsprop_keras": "RMSProp", "rmslip": "RMSLip"}
DATASETS = {"mnist": "MNIST", "cifar10": "CIFAR10", "cifar100": "CIFAR100"}
THRESHOLDS = {"mnist": 0.98, "cifar10": 0.95, "cifar100": 0.95}
TABLE_OF = {"mnist": 2, "cifar10": 3, "cifar100": 4}
# LR grids per family and dataset (Sect. 5), shared by each baseline and its *Lip counterpart.
LR_GRIDS = {
    "mnist": {"sgd": [0.005, 0.01, 0.05, 0.1, 0.5, 0.7, 1.0, 1.3], "adam": [0.0005, 0.001, 0.005, 0.01],
              "rmsprop": [0.0003, 0.0005, 0.0007, 0.001, 0.005, 0.01]},
    "cifar10": {"sgd": [0.005, 0.01, 0.05, 0.07, 0.1, 0.2, 0.3, 0.5, 0.7, 1.0],
                "adam": [0.0002, 0.0003, 0.0005, 0.0007, 0.001, 0.005, 0.01],
                "rmsprop": [0.0003, 0.0005, 0.0007, 0.001, 0.005]},
    "cifar100": {"sgd": [0.005, 0.01, 0.05, 0.1, 0.5, 0.7], "adam": [0.0005, 0.001, 0.005, 0.01],
                 "rmsprop": [0.0003, 0.0005, 0.0007, 0.001, 0.005, 0.01]},
}
FAMILY = {"sgd_keras": "sgd", "adalip": "sgd", "adam_keras": "adam", "adamlip": "adam",
          "rmsprop_keras": "rmsprop", "rmslip": "rmsprop"}
RUNS = {"mnist": 25, "cifar10": 25, "cifar100": 10}
ROWS = ("Max", "Median", "Mean", "Std", "Epochs Mean", "Epochs Median", "Epochs Best")
PUBLISHED = Path(__file__).resolve().parents[2] / "results" / "published"


def lr_of(record: Record) -> float:
    return float(record["config"]["optim"]["hparams"]["lr"])


def curve(record: Record, key: str) -> list[float]:
    """Per-epoch values of ``key`` (``train_acc1``/``test_acc1``, percent) as fractions."""
    return [row[key] / 100.0 for row in record["history"] if key in row]


def peak(record: Record, key: str = "train_acc1") -> float:
    """A run's peak (training) accuracy over its epochs; 0 for a run without any epoch."""
    return max(curve(record, key), default=0.0)


def epochs_to_reach(values: list[float], target: float) -> int | None:
    """The first epoch (1-indexed) whose value reaches ``target``; None if never."""
    return next((epoch for epoch, value in enumerate(values, start=1) if value >= target), None)


def by_optimizer_and_lr(records: Iterable[Record]) -> dict[str, dict[float, list[Record]]]:
    """Records grouped as {optimizer name: {lr: [runs]}}; failed runs are dropped (diverged ones count)."""
    groups: dict[str, dict[float, list[Record]]] = defaultdict(lambda: defaultdict(list))
    for record in records:
        if record["status"] in ("finished", "diverged"):
            groups[record["optim"]][lr_of(record)].append(record)
    return {name: dict(lrs) for name, lrs in groups.items()}


def per_lr_scores(runs_by_lr: dict[float, list[Record]]) -> dict[float, float]:
    """{lr: median over runs of the per-run peak training accuracy}."""
    return {lr: statistics.median(peak(r) for r in runs) for lr, runs in sorted(runs_by_lr.items())}


def grid_summary(scores: Iterable[float], ddof: int = 0) -> dict[str, float]:
    """Max, Median, Mean, Std over the LR grid (Tables 2-4, top rows)."""
    values = list(scores)
    mean = statistics.fmean(values)
    std = (sum((v - mean) ** 2 for v in values) / (len(values) - ddof)) ** 0.5 if len(values) > ddof else 0.0
    return {"Max": max(values), "Median": statistics.median(values), "Mean": mean, "Std": std}


def convergence_epochs(runs_by_lr: dict[float, list[Record]], target: float) -> dict[float, float]:
    """{lr: median over the runs that reach ``target`` of their first epoch reaching it}; LRs where
    no run reaches it are left out."""
    result = {}
    for lr, runs in sorted(runs_by_lr.items()):
        reached = [e for e in (epochs_to_reach(curve(r, "train_acc1"), target) for r in runs) if e is not None]
        if reached:
            result[lr] = statistics.median(reached)
    return result


def epoch_summary(epochs: Iterable[float]) -> dict[str, float | None]:
    """Epochs Mean, Median, Best (lowest) over LRs (Tables 2-4, bottom rows)."""
    values = list(epochs)
    if not values:
        return {"Epochs Mean": None, "Epochs Median": None, "Epochs Best": None}
    return {"Epochs Mean": statistics.fmean(values), "Epochs Median": statistics.median(values),
            "Epochs Best": min(values)}


def training_table(records: Iterable[Record], dataset: str, *, fraction: float | None = None,
                   peak_scope: str = "optimizer", ddof: int = 0) -> dict[str, dict[str, float | None]]:
    """Table 2/3/4 for ``dataset``: {optimizer label: {row: value}} over the records of that dataset."""
    if peak_scope not in ("optimizer", "dataset"):
        raise ValueError(f"peak_scope must be 'optimizer' or 'dataset', got {peak_scope!r}")
    fraction = THRESHOLDS[dataset] if fraction is None else fraction
    groups = by_optimizer_and_lr(r for r in records if r["dataset"] == dataset)
    overall = max((peak(r) for lrs in groups.values() for runs in lrs.values() for r in runs), default=0.0)
    table = {}
    for name, runs_by_lr in groups.items():
        own = max(peak(r) for runs in runs_by_lr.values() for r in runs)
        target = fraction * (own if peak_scope == "optimizer" else overall)
        table[LABELS.get(name, name)] = {**grid_summary(per_lr_scores(runs_by_lr).values(), ddof),
                                         **epoch_summary(convergence_epochs(runs_by_lr, target).values())}
    return table


def table5_test_accuracy(records: Iterable[Record]) -> dict[str, dict[str, float]]:
    """Table 5: {optimizer label: {dataset label: best over LRs of the mean over runs of the
    per-run maximum test accuracy}}."""
    records = list(records)
    table: dict[str, dict[str, float]] = defaultdict(dict)
    for dataset in sorted({r["dataset"] for r in records}):
        for name, runs_by_lr in by_optimizer_and_lr(r for r in records if r["dataset"] == dataset).items():
            means = [statistics.fmean(peak(r, "test_acc1") for r in runs) for runs in runs_by_lr.values()]
            table[LABELS.get(name, name)][DATASETS.get(dataset, dataset)] = max(means)
    return dict(table)


def published(number: int, folder: Path = PUBLISHED) -> dict[str, dict[str, float]]:
    """The paper's Table ``number`` (2-5) from ``<folder>/adalip_table<number>.csv`` (default: the
    checkout's results/published), keyed as the functions above return them: Tables 2-4
    {optimizer: {row: value}}, Table 5 {optimizer: {dataset: value}}."""
    with open(folder / f"adalip_table{number}.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    key = "row" if number in (2, 3, 4) else "optimizer"
    if number == 5:
        return {row[key]: {k: float(v) for k, v in row.items() if k != key} for row in rows}
    columns = [c for c in rows[0] if c != key]
    return {c: {row[key]: float(row[c]) for row in rows} for c in columns}


def _pair(ours: float | None, paper: float | None) -> list[str]:
    show = lambda v: "-" if v is None else f"{v:.4g}"  # noqa: E731
    delta = "-" if ours is None or paper is None else f"{ours - paper:+.3f}"
    return [show(ours), show(paper), delta]


def _run_ids(records: Iterable[Record], label: str) -> list[str]:
    """The ids of the runs of the optimizer shown as ``label``."""
    return sorted(r["run_id"] for r in records if LABELS.get(r["optim"], r["optim"]) == label)


def render(records: Iterable[Record], published_dir: Path = PUBLISHED) -> list[Any]:
    """Tables 2-5 as ``bench.tables.build.Table``s, ours beside the paper's values (read from
    ``published_dir``, the same folder as the spec-driven tables).

    Finished and diverged runs of the AdaLip presets (experiments ``adalip_*``) count -- a diverged
    run scores the peak accuracy it reached, and the paper's Mean/Std are over the whole LR grid;
    failed runs do not. A table whose runs include a reduced protocol or a lossy data copy says so.
    """
    from bench.tables.build import COUNTED, Table
    from bench.tables.records import MARKS_LEGEND, marks

    records = [r for r in records if r["status"] in COUNTED and str(r["experiment"]).startswith("adalip_")]
    tables = []
    for dataset, number in TABLE_OF.items():
        subset = [r for r in records if r["dataset"] == dataset]
        ours, paper = training_table(subset, dataset), published(number, published_dir)
        rows = [[label, row, *_pair(ours.get(label, {}).get(row), paper.get(label, {}).get(row))]
                for label in paper for row in ROWS]
        tables.append(Table(f"adalip_table{number}", f"AdaLip Table {number}: {DATASETS[dataset]} training "
                            f"accuracy over the LR grid{marks(subset)}", ["optimizer", "row", "ours", "paper", "Δ"],
                            rows, [f"Runs: {len(subset)} finished or diverged records of adalip_{dataset}. "
                                   "Protocol and open choices: bench/tables/adalip.py.", MARKS_LEGEND],
                            [_run_ids(subset, label) for label in paper for _ in ROWS]))
    ours5, paper5 = table5_test_accuracy(records), published(5, published_dir)
    rows = [[label, ds, *_pair(ours5.get(label, {}).get(ds), value)]
            for label, by_ds in paper5.items() for ds, value in by_ds.items()]
    runs = [_run_ids([r for r in records if DATASETS.get(r["dataset"]) == ds], label)
            for label, by_ds in paper5.items() for ds in by_ds]
    tables.append(Table("adalip_table5", f"AdaLip Table 5: best test accuracy over the LR grid{marks(records)}",
                        ["optimizer", "dataset", "ours", "paper", "Δ"], rows, [MARKS_LEGEND], runs))
    return tables
