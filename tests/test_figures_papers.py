"""The paper figure families over sets of runs (``python -m bench.figures <name> --runs DIR``): each
writes a PNG and a PDF from generated records, says in its footnote when its runs are reduced or
synthetic, and a metric that no run logs is one ``error:`` line."""
from __future__ import annotations

import copy
import json
import math
from pathlib import Path
from typing import Any

import pytest

from bench.figures._runs import caveat, label, role_logs
from bench.figures.__main__ import main as figures
from bench.figures.adalip_grid import grid_band
from bench.figures.adas_layers import layer_series
from bench.figures.autodrop_angles import curves as autodrop_curves
from bench.figures.curves import x_axis
from bench.figures.lr_estimates import roles, series as lr_series
from tests.report_store import generate, record

MAGIC = {".png": b"\x89PNG", ".pdf": b"%PDF"}


def autodrop_record(index: int, lr: float, drops: tuple[int, ...], measure_only: bool = False) -> dict[str, Any]:
    """A generated SGD record with AutoDrop's per-epoch schedule log."""
    rec = record(index, epochs=12)
    rec["config"]["schedule"] = {"name": "autodrop", "rho": 0.2, "measure_only": measure_only}
    current = lr
    for row in rec["history"]:
        row["lr"] = [current]
        dropped = row["epoch"] in drops
        current = current * 0.2 if dropped else current
        row["schedule"] = {"omega": None if row["epoch"] == 1 else 90 - 50 * math.exp(-row["epoch"] / 3),
                           "dropped": dropped, "lr": [current]}
    rec["run_id"] += f"-autodrop{index}"
    return rec


def rmsgd_record() -> dict[str, Any]:
    """A generated AdaS record relabelled RMSGD, with per-layer stable rank and q and the run's Q."""
    rec = record(2, epochs=6, layers=3)
    rec["optim"] = rec["config"]["optim"]["name"] = "rmsgd"
    for row in rec["history"]:
        for j, layer in enumerate(row["optim"]["layers"]):
            layer.update(in_stable_rank=1 + j + row["epoch"], q=0.1 * row["epoch"])
        row["optim"]["Q"] = 0.1 * row["epoch"]
    rec["run_id"] = rec["run_id"].replace("adas", "rmsgd")
    return rec


def sac_record() -> dict[str, Any]:
    """A generated SAC record: history keyed by environment step, PS-DA-SGD logs per role."""
    rec = record(7, epochs=5)
    rec.update(workload="sac", experiment="ps_sac_hopper", run_id="ps_sac_hopper-ps_dasgd-seed0-sac", status="finished")
    rec["primary"] = {"metric": "test_return", "mode": "max"}
    for row in rec["history"]:
        row["step"] = 5000 * row["epoch"]
        row["test_return"] = 100.0 * row["epoch"]
        estimate = row.pop("optim")
        row.update({"optim/actor": estimate, "optim/critic": {"est_lr": 2 * estimate["est_lr"]}})
    return rec


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder of generated records: the report's store, AutoDrop, RMSGD and SAC records."""
    folder = generate(tmp_path_factory.mktemp("store"), 24, epochs=10).runs
    extra = [autodrop_record(1, 0.1, (5, 9)), autodrop_record(9, 0.03, (), measure_only=True), rmsgd_record(),
             sac_record()]
    for rec in extra:
        (folder / f"{rec['run_id']}.json").write_text(json.dumps(rec))
    return folder


ARGS = {
    "curves": ["--experiment", "cifar10_resnet34", "--metric", "test_acc1", "train_loss"],
    "autodrop_angles": ["--where", "config.schedule.name=autodrop"],
    "adalip_grid": ["--experiment", "adalip_mnist", "--pairs"],
    "adas_layers": ["--optim", "rmsgd", "--panels", "lr", "in_stable_rank", "condition", "Q"],
    "lr_estimates": ["--experiment", "ps_cifar100_resnet32", "ps_sac_hopper"],
}


@pytest.mark.parametrize("name", sorted(ARGS))
@pytest.mark.parametrize("suffix", [".png", ".pdf"])
def test_each_figure_writes_png_and_pdf(runs: Path, tmp_path: Path, name: str, suffix: str) -> None:
    out = tmp_path / "deep" / f"{name}{suffix}"
    assert figures([name, "--runs", str(runs), *ARGS[name], "--out", str(out)]) == 0
    assert out.stat().st_size > 1000 and out.read_bytes().startswith(MAGIC[suffix])


@pytest.mark.parametrize("name, args, words", [
    ("curves", ["--metric", "no_such_metric"], "logs 'no_such_metric'"),
    ("adas_layers", ["--optim", "rmsgd", "--panels", "no_such_metric"], "no per-layer 'no_such_metric'"),
    ("adalip_grid", ["--experiment", "adalip_mnist", "--metric", "no_such_metric"], "'no_such_metric'"),
    ("autodrop_angles", ["--optim", "adam"], "angular velocity"),
    ("lr_estimates", ["--optim", "adam"], "estimated learning rate"),
    ("curves", ["--experiment", "no_such_preset"], "no run record in"),
])
def test_a_missing_metric_or_run_is_one_error_line(runs: Path, tmp_path: Path, capsys: pytest.CaptureFixture,
                                                   name: str, args: list[str], words: str) -> None:
    out = tmp_path / "fig.png"
    assert figures([name, "--runs", str(runs), *args, "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and words in err[0], err
    assert not out.exists()


@pytest.mark.parametrize("name", sorted(ARGS))
def test_out_is_a_file_whose_suffix_picks_the_format(runs: Path, tmp_path: Path, capsys: pytest.CaptureFixture,
                                                     name: str) -> None:
    for out in (tmp_path, tmp_path / "figure.txt"):
        assert figures([name, "--runs", str(runs), *ARGS[name], "--out", str(out)]) == 2
        assert capsys.readouterr().err.startswith("error: --out")
    assert list(tmp_path.iterdir()) == []


def test_rl_curves_are_against_environment_steps(runs: Path, tmp_path: Path) -> None:
    out = tmp_path / "sac.png"
    assert figures(["curves", "--runs", str(runs), "--experiment", "ps_sac_hopper", "--out", str(out)]) == 0
    assert out.stat().st_size > 1000


def test_a_results_store_root_works_as_runs(runs: Path, tmp_path: Path) -> None:
    out = tmp_path / "c.svg"
    assert figures(["curves", "--runs", str(runs.parent), *ARGS["curves"], "--out", str(out)]) == 0
    assert out.read_bytes().startswith(b"<?xml")


def test_caveat_counts_reduced_and_synthetic_runs(runs: Path) -> None:
    real = copy.deepcopy(record(0))
    real["protocol"]["reduced"] = False
    real["data"] = {"provenance": "cifar10-official", "source": {"kind": "download"}, "lossy": False}
    assert caveat([real]) == ""
    note = caveat([real, record(1)])
    assert "1 of 2 runs: reduced protocol" in note and "1 of 2 runs: generated or stand-in data" in note


def test_labels_fill_dotted_fields() -> None:
    assert label(record(6), "{optim} lr={config.optim.hparams.lr} {config.nothing}") == "sgd_keras lr=0.01 ?"


def test_autodrop_curves_mark_the_drops_and_the_lr_each_epoch_trained_with() -> None:
    c = autodrop_curves(autodrop_record(1, 0.1, (5, 9)))
    assert c["drops"] == [5, 9] and c["omega"][0] is None and c["omega"][1] < c["omega"][-1]
    assert c["lr"][4] == pytest.approx(0.1) and c["lr"][5] == pytest.approx(0.02) and c["lr"][9] == pytest.approx(0.004)


def test_adalip_band_is_over_the_lr_grid_after_the_seed_mean() -> None:
    def run(lr: float, accs: list[float]) -> dict[str, Any]:
        return {"status": "finished", "optim": "adalip", "config": {"optim": {"hparams": {"lr": lr}}},
                "history": [{"epoch": e + 1, "train_acc1": a} for e, a in enumerate(accs)]}
    grid = {0.1: [run(0.1, [50, 70]), run(0.1, [70, 90])], 0.5: [run(0.5, [80, 90])], 0.7: [run(0.7, [70, 85])]}
    mean, low, high = grid_band(grid, "train_acc1", "std")   # per-LR curves [60, 80], [80, 90], [70, 85]
    std = [math.sqrt(200 / 3), math.sqrt(50 / 3)]
    assert mean == pytest.approx([70, 85]) and low == pytest.approx([70 - std[0], 85 - std[1]])
    assert high == pytest.approx([70 + std[0], 85 + std[1]])
    _, low, high = grid_band(grid, "train_acc1", "minmax")
    assert low == pytest.approx([60, 80]) and high == pytest.approx([80, 90])


def test_per_layer_panels_and_q() -> None:
    epochs, series = layer_series(rmsgd_record(), ("in_stable_rank", "Q"))
    assert epochs == list(range(1, 7)) and series["in_stable_rank"][2] == [3 + e for e in epochs]
    assert series["Q"] == [[pytest.approx(0.1 * e) for e in epochs]]


def test_role_logs_and_step_axis_of_rl_runs() -> None:
    rec = sac_record()
    assert set(role_logs(rec["history"][0], "optim")) == {"actor", "critic"}
    assert roles(rec) == ["actor", "critic"] and lr_series(rec, "critic")[1][0] == 2 * lr_series(rec, "actor")[1][0]
    assert x_axis([rec], "auto") == "step" and x_axis([record(0)], "auto") == "epoch"
