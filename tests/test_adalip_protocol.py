"""AdaLip protocol: the table specs' reductions on hand-made records, the LR grids of the presets, and
shared initial weights per run index across optimizers."""
from __future__ import annotations

import re

import numpy as np
import pytest
import torch

from bench.tables.paper import paper_table
from bench.tables.spec import choices, load_spec
from tests.conftest import ROOT, TINY


SPECS = ROOT / "results" / "specs"


def record(optim: str, lr: float, train: list[float], test: list[float] | None = None, *,
           experiment: str = "adalip_mnist", seed: int = 0, status: str = "finished") -> dict:
    """A full-protocol record of an AdaLip preset (only what the tables read)."""
    test = test or train
    history = [{"epoch": i + 1} for i in range(max(len(train), len(test)))]
    for key, values in (("train_acc1", train), ("test_acc1", test)):
        for row, value in zip(history, values):
            row[key] = value
    return {"run_id": f"{optim}-{lr}-{seed}", "experiment": experiment, "optim": optim, "seed": seed,
            "status": status, "protocol": {"reduced": False}, "data": {"provenance": "mnist-shared"},
            "config": {"optim": {"hparams": {"lr": lr}}}, "history": history}


def table(name: str, records: list[dict]) -> dict[tuple[str, ...], dict[str, str]]:
    spec = load_spec(SPECS / f"{name}.yaml", ROOT / "results" / "published")
    built = paper_table(spec, records)
    keys = len(spec.keys)
    return {tuple(r[:keys]): dict(zip(built.columns[keys:], r[keys:])) for r in built.rows}


def test_table2_median_of_peaks_per_lr_then_the_grid_statistics() -> None:
    records = [record("adalip", 0.1, [10, 50]), record("adalip", 0.1, [90, 20], seed=1),
               record("adalip", 0.1, [70], seed=2), record("adalip", 0.5, [20]), record("adalip", 0.5, [40], seed=1),
               record("adalip", 0.5, [99], experiment="adalip_cifar10")]          # another table's run
    rows = table("adalip_table2", records)
    scores = [0.7, 0.3]                                                             # medians of the peaks
    assert rows[("AdaLip", "Max")]["ours"].startswith("0.700") and "2 of 8 grid points" in rows[("AdaLip", "Max")]["ours"]
    assert rows[("AdaLip", "Mean")]["ours"].startswith(f"{np.mean(scores):.3f}")
    assert rows[("AdaLip", "Std")]["ours"].startswith(f"{np.std(scores):.3f}")      # ddof 0
    assert rows[("SGD", "Max")]["ours"] == "-"


def test_table3_epochs_to_95_percent_of_the_optimizers_peak() -> None:
    records = [record("sgd_keras", 0.1, [50, 80, 90], experiment="adalip_cifar10"),
               record("sgd_keras", 0.5, [85, 88, 89], experiment="adalip_cifar10")]
    rows = table("adalip_table3", records)
    # the optimizer's peak 0.9 -> target 0.855: lr 0.1 at epoch 3, lr 0.5 at epoch 2 (0.85 < 0.855)
    assert rows[("SGD", "Epochs Mean")]["ours"].startswith("2.5") and rows[("SGD", "Epochs Best")]["ours"].startswith("2.0")
    assert rows[("SGD", "Mean")]["ours"].startswith(f"{(0.9 + 0.89) / 2:.3f}")


def test_table5_best_lr_of_the_mean_over_runs_of_each_runs_peak_test_accuracy() -> None:
    records = [record("adam_keras", 0.001, [0], [60, 70]), record("adam_keras", 0.001, [0], [80, 75], seed=1),
               record("adam_keras", 0.01, [0], [72])]
    rows = table("adalip_table5", records)
    assert rows[("Adam", "MNIST", "MNIST adam")]["ours"].startswith("0.75")         # mean(0.70, 0.80) beats 0.72


@pytest.mark.parametrize("dataset", ["mnist", "cifar10", "cifar100"])
def test_preset_sweeps_use_the_table_specs_grids(dataset: str) -> None:
    """The multirun commands documented in each preset sweep exactly the grids of its table spec."""
    number = {"mnist": 2, "cifar10": 3, "cifar100": 4}[dataset]
    spec = load_spec(SPECS / f"adalip_table{number}.yaml", ROOT / "results" / "published")
    grids = {row.overrides["optim"]: [float(v) for v in choices(row.overrides["optim.hparams.lr"])] for row in spec.rows}
    text = (ROOT / "conf" / "experiment" / f"adalip_{dataset}.yaml").read_text()
    sweeps = re.findall(r"optim=(\w+),(\w+) optim\.hparams\.lr=([\d.,]+) seed='range\((\d+)\)'", text)
    assert len(sweeps) == 3
    for base, lip, lrs, runs in sweeps:
        assert [float(x) for x in lrs.split(",")] == grids[base] == grids[lip]
        assert int(runs) == spec.tiers["full"].seeds
    assert f"epochs: {dict(mnist=15, cifar10=30, cifar100=70)[dataset]}" in text and "batch_size: 128" in text


@pytest.mark.slow
def test_initial_weights_depend_on_run_index_not_optimizer(bench) -> None:
    """Run i of every optimizer starts from the same weights (lr 0: the weights stay the initial ones)."""
    weights = {}
    for optim, seed in (("adalip", 3), ("rmsprop_keras", 3), ("adalip", 4)):
        bench(*TINY, f"optim={optim}", "optim.hparams.lr=0.0", "trainer.epochs=1", f"seed={seed}",
              "trainer.keep_checkpoint=true")
    for path in bench.work.glob("*/checkpoint.pt"):
        state = torch.load(path, weights_only=False)
        weights[path.parent.name] = state["workload"]["model"]["0.weight"]
    (a,) = [w for k, w in weights.items() if "-adalip-seed3-" in k]
    (b,) = [w for k, w in weights.items() if "-rmsprop_keras-seed3-" in k]
    (c,) = [w for k, w in weights.items() if "-adalip-seed4-" in k]
    assert torch.equal(a, b) and not torch.equal(a, c)
