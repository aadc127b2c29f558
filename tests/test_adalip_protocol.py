"""AdaLip protocol: table metrics on hand-made records, the transcribed paper tables, the LR grids of
the presets, the configs, and shared initial weights per run index across optimizers."""
from __future__ import annotations

import math
import re
from pathlib import Path

import pytest
import torch

from bench.tables import adalip as tables
from tests.conftest import ROOT, TINY

NOTES = Path("/work/shared/papers/notes/adalip.md")


def record(optim: str, lr: float, train: list[float], test: list[float] | None = None, *, dataset: str = "cifar10",
           seed: int = 0, status: str = "finished") -> dict:
    test = test or train
    history = [{"epoch": i + 1} for i in range(max(len(train), len(test)))]
    for key, values in (("train_acc1", train), ("test_acc1", test)):
        for row, value in zip(history, values):
            row[key] = value
    return {"optim": optim, "dataset": dataset, "seed": seed, "status": status,
            "config": {"optim": {"hparams": {"lr": lr}}}, "history": history}


def test_per_lr_median_of_peaks_and_grid_summary() -> None:
    runs = {0.1: [record("adalip", 0.1, [10, 50]), record("adalip", 0.1, [90, 20]), record("adalip", 0.1, [70])],
            0.5: [record("adalip", 0.5, [20]), record("adalip", 0.5, [40])]}
    assert tables.per_lr_scores(runs) == {0.1: pytest.approx(0.7), 0.5: pytest.approx(0.3)}
    summary = tables.grid_summary([0.2, 0.4, 0.9])
    assert summary["Max"] == 0.9 and summary["Median"] == 0.4 and summary["Mean"] == pytest.approx(0.5)
    assert summary["Std"] == pytest.approx(math.sqrt(0.26 / 3))
    assert tables.grid_summary([0.2, 0.4, 0.9], ddof=1)["Std"] == pytest.approx(math.sqrt(0.26 / 2))


def test_epochs_to_reach_and_convergence() -> None:
    assert tables.epochs_to_reach([0.1, 0.5, 0.96, 0.99], 0.95) == 3
    assert tables.epochs_to_reach([0.1, 0.5], 0.95) is None
    runs = {0.1: [record("sgd_keras", 0.1, [50, 96, 100]), record("sgd_keras", 0.1, [50, 60, 96]),
                  record("sgd_keras", 0.1, [10, 10, 10])],
            0.01: [record("sgd_keras", 0.01, [10, 20, 30])]}
    assert tables.convergence_epochs(runs, 0.95) == {0.1: 2.5}  # 0.01 never reaches: left out
    assert tables.epoch_summary([2.5, 4, 1]) == {"Epochs Mean": 2.5, "Epochs Median": 2.5, "Epochs Best": 1}


def test_training_table_and_peak_scope() -> None:
    records = [record("sgd_keras", 0.1, [50, 80, 90]), record("sgd_keras", 0.5, [85, 88, 89]),
               record("adalip", 0.1, [95, 99, 100]), record("adalip", 0.1, [90, 99, 97], seed=1),
               record("adalip", 0.1, [1, 2, 3], dataset="mnist"),
               record("adalip", 0.5, [5, 5, 5], status="failed")]
    table = tables.training_table(records, "cifar10")
    assert set(table) == {"SGD", "AdaLip"}
    assert table["AdaLip"]["Max"] == pytest.approx(0.995)           # median of the peaks 1.0 and 0.99
    assert table["SGD"]["Mean"] == pytest.approx((0.9 + 0.89) / 2)
    # own peak 0.9 -> target 0.855: lr 0.1 at epoch 3, lr 0.5 at epoch 2 (0.85 < 0.855)
    assert table["SGD"]["Epochs Mean"] == 2.5 and table["SGD"]["Epochs Best"] == 2
    # dataset-wide peak 1.0 -> target 0.95: SGD never gets there
    assert tables.training_table(records, "cifar10", peak_scope="dataset")["SGD"]["Epochs Mean"] is None
    with pytest.raises(ValueError):
        tables.training_table(records, "cifar10", peak_scope="run")


def test_table5_best_lr_of_mean_max_test_accuracy() -> None:
    records = [record("adam_keras", 0.001, [0], [60, 70]), record("adam_keras", 0.001, [0], [80, 75], seed=1),
               record("adam_keras", 0.01, [0], [72]), record("adam_keras", 0.001, [0], [99], dataset="mnist")]
    assert tables.table5_test_accuracy(records) == {"Adam": {"CIFAR10": pytest.approx(0.75), "MNIST": 0.99}}


def _notes_table(title: str) -> dict[str, dict[str, float]]:
    text = NOTES.read_text()
    block = text[text.index(title):].split("\n\n")[1]
    lines = [line.strip().strip("|").split("|") for line in block.splitlines() if line.startswith("|")]
    header = [h.strip() for h in lines[0]]
    return {row[0].strip(): {h: float(v) for h, v in zip(header[1:], row[1:])} for row in lines[2:]}


@pytest.mark.skipif(not NOTES.exists(), reason="needs the paper notes (../shared/papers/notes/adalip.md)")
@pytest.mark.parametrize("number, title", [(2, "**Table 2 — MNIST.**"), (3, "**Table 3 — CIFAR10.**"),
                                           (4, "**Table 4 — CIFAR100.**"), (5, "**Table 5 — Test accuracies**")])
def test_published_tables_match_the_notes(number: int, title: str) -> None:
    """results/published/adalip_table*.csv equal the transcription in the notes, cell for cell."""
    notes = _notes_table(title)
    ours = tables.published(number)
    if number == 5:
        assert ours == notes
    else:  # notes rows are metrics, columns optimizers; ours is {optimizer: {row: value}}
        assert ours == {opt: {row: notes[row][opt] for row in notes} for opt in notes[next(iter(notes))]}


@pytest.mark.parametrize("dataset", ["mnist", "cifar10", "cifar100"])
def test_preset_sweeps_use_the_paper_grids(dataset: str) -> None:
    """The documented multirun commands sweep exactly LR_GRIDS, for the paper's number of runs."""
    text = (ROOT / "conf" / "experiment" / f"adalip_{dataset}.yaml").read_text()
    sweeps = re.findall(r"optim=(\w+),(\w+) optim\.hparams\.lr=([\d.,]+) seed='range\((\d+)\)'", text)
    assert len(sweeps) == 3
    for base, lip, lrs, runs in sweeps:
        family = tables.FAMILY[base]
        assert tables.FAMILY[lip] == family and int(runs) == tables.RUNS[dataset]
        assert [float(x) for x in lrs.split(",")] == tables.LR_GRIDS[dataset][family]
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
