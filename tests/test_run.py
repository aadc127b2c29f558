"""End-to-end runs through ``python -m bench``: records, skipping, sweeps, divergence, resume."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from bench.trainer import FAULT_KILL_ENV
from tests.conftest import ROOT, TINY
from tests.helpers import without_timing

RECORD_KEYS = {"run_id", "config_hash", "status", "config", "protocol", "data", "git", "packages", "hardware",
               "history", "final", "best", "last", "primary", "workload", "optimizers", "wall_time_s", "started_at",
               "finished_at", "experiment", "optim", "seed", "schema"}


def _records(folder: Path) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted((folder / "runs").glob("*.json"))]


def test_a_run_writes_one_complete_record_and_a_relaunch_skips_it(bench) -> None:
    first = bench(*TINY)
    assert "finished:" in first.stdout and "record:" in first.stdout
    (record,) = _records(bench.results)
    assert RECORD_KEYS <= set(record)
    assert record["status"] == "finished" and record["protocol"]["reduced"] is True
    assert record["data"]["provenance"] == "digits-sklearn"
    assert [row["epoch"] for row in record["history"]] == [1, 2]
    for row in record["history"]:
        assert {"train_loss", "train_acc1", "train_acc5", "test_loss", "test_acc1", "test_acc5", "lr"} <= set(row)
        assert len(row["lr"]) == 1 and row["lr"][0] == pytest.approx(0.05)
    assert record["schema"] == 2 and record["primary"] == {"metric": "test_acc1", "mode": "max"}
    last = record["history"][-1]
    assert record["last"] == last
    assert record["final"] == {"metric": "test_acc1", "value": last["test_acc1"], "at": {"epoch": 2, "step": last["step"]}}
    assert record["best"]["value"] == max(row["test_acc1"] for row in record["history"])
    assert record["optimizers"] == {"model": {"optim": "sgd", "class_name": "SGD", "schedule": "constant"}}
    assert f"test_acc1 {last['test_acc1']:.2f}%" in first.stdout
    timing = record["time"]  # where the wall time went (issue 17)
    assert {"data_s", "build_s", "train_s", "eval_s", "checkpoint_s", "first_step_s"} <= set(timing)
    assert timing["train_examples"] == 2 * 1500 and timing["examples_per_s"] > 0
    assert all(timing[k] > 0 for k in ("train_s", "eval_s", "checkpoint_s", "first_step_s"))
    assert timing["train_s"] + timing["eval_s"] + timing["checkpoint_s"] <= record["wall_time_s"] + 1e-3

    again = bench(*TINY)
    assert "skipped" in again.stdout and len(_records(bench.results)) == 1
    forced = bench(*TINY, "force=true")
    assert "finished:" in forced.stdout and len(_records(bench.results)) == 1


def test_per_group_learning_rates_follow_the_schedule(bench) -> None:
    bench(*TINY, "trainer.epochs=3", "optim=sgd", "schedule=step", "optim.hparams.lr=0.05", "schedule.step_size=1",
          "optim.no_weight_decay=[bn,bias]")
    (record,) = _records(bench.results)
    lrs = [row["lr"] for row in record["history"]]
    assert lrs == [pytest.approx([0.05, 0.05]), pytest.approx([0.025, 0.025]), pytest.approx([0.0125, 0.0125])]


def test_multirun_over_seeds_writes_two_records_and_the_table_aggregates_them(bench, tmp_path: Path) -> None:
    bench("--multirun", "seed=0,1", *TINY)
    records = _records(bench.results)
    assert sorted(r["seed"] for r in records) == [0, 1]
    out = tmp_path / "tables"
    subprocess.run([sys.executable, "-m", "bench.tables", "--results", str(bench.results), "--out", str(out),
                    "--quiet"], cwd=ROOT, check=True)
    summary = (out / "summary.csv").read_text().splitlines()
    assert len(summary) == 2  # header + one cell holding both seeds
    row = dict(zip(summary[0].split(","), summary[1].split(",")))
    assert row["n"] == "2" and row["protocol"] == "reduced" and "†" in row["final"] and row["metric"] == "test_acc1 ↑"


def test_multirun_over_presets_and_optimizers(bench) -> None:
    bench("--multirun", "+experiment=cifar10_resnet34,cifar100_resnet34", "optim=sgd,adam", *TINY[:-1],
          "trainer.epochs=1")
    cells = sorted((r["experiment"], r["optim"], r["protocol"]["reduced"]) for r in _records(bench.results))
    assert cells == [(e, o, True) for e in ("cifar100_resnet34", "cifar10_resnet34") for o in ("adam", "sgd")]


def test_a_nan_loss_ends_the_run_as_diverged_with_exit_status_zero(bench) -> None:
    result = bench(*TINY, "optim.hparams.lr=1e12", "trainer.divergence_check_every=1")
    assert result.returncode == 0 and "diverged:" in result.stdout
    (record,) = _records(bench.results)
    assert record["status"] == "diverged" and "diverged" in record["history"][-1]


def test_killed_run_resumes_and_matches_an_uninterrupted_run(bench) -> None:
    """SIGKILL in the middle of epoch 2, relaunch, and finish with bit-identical metrics."""
    settings = [*TINY, "trainer.epochs=3", "trainer.deterministic=true", "optim=sgd", "schedule=step",
                "schedule.step_size=1"]
    reference = bench(*settings, home="reference")
    assert "finished:" in reference.stdout
    steps_per_epoch = -(-1500 // 64)
    killed = bench(*settings, home="resumed", env={FAULT_KILL_ENV: str(steps_per_epoch + 5)}, check=False)
    assert killed.returncode == -9, killed.stderr
    assert not list((bench.results.parent / "resumed" / "results").rglob("*.json"))
    checkpoints = list((Path(bench.results).parent / "resumed" / "runs").glob("*/checkpoint.pt"))
    assert len(checkpoints) == 1
    resumed = bench(*settings, home="resumed")
    assert "resuming" in resumed.stdout and "after epoch 1" in resumed.stdout
    (want,) = _records(Path(bench.results).parent / "reference" / "results")
    (got,) = _records(Path(bench.results).parent / "resumed" / "results")
    assert got["resumed_at_epochs"] == [1]
    assert got["time"]["train_examples"] == want["time"]["train_examples"] == 3 * 1500  # epoch 1 counted once
    assert without_timing(got["history"]) == without_timing(want["history"])


def test_wandb_logging_works_offline(bench, tmp_path: Path) -> None:
    pytest.importorskip("wandb")
    wandb_dir = tmp_path / "wandb"
    wandb_dir.mkdir()
    bench(*TINY, "trainer.epochs=1", "logger.wandb.enabled=true", f"logger.wandb.dir={wandb_dir}",
          env={"WANDB_MODE": "offline", "WANDB_SILENT": "true"})
    assert list(wandb_dir.rglob("offline-run-*")), "no offline wandb run was written"


def test_real_cifar10_copies_are_recorded_with_their_provenance(bench, shared_data: Path, tmp_path: Path) -> None:
    common = ["model=small_cnn", "trainer.epochs=1", "trainer.train_subset=512", "trainer.test_subset=500",
              "trainer.progress=false"]
    bench(*common, f"dataset.source={shared_data / 'cifar10.tar.xz'}")
    bench(*common, f"dataset.source={shared_data / 'cifar10-jpeg.tar.xz'}")
    records = {r["data"]["provenance"]: r for r in _records(bench.results)}
    assert set(records) == {"cifar10-shared", "cifar10-jpeg"}
    assert records["cifar10-shared"]["data"]["jpeg_filled_count"] == 201
    assert records["cifar10-jpeg"]["data"]["lossy"] is True
    assert records["cifar10-shared"]["data"]["sizes"] == {"train": 50000, "test": 10000}
    out = tmp_path / "tables"
    subprocess.run([sys.executable, "-m", "bench.tables", "--results", str(bench.results), "--out", str(out),
                    "--quiet"], cwd=ROOT, check=True)
    assert "‡" in (out / "summary.md").read_text()


@pytest.mark.slow
def test_parallel_launcher_budgets_threads_and_equals_a_run_alone(bench) -> None:
    """hydra/launcher=parallel runs cells side by side with cores // n_jobs threads each (issue 17), and a
    cell's record equals the same run launched alone with that thread count (deterministic mode)."""
    settings = [*TINY, "trainer.deterministic=true"]
    bench("--multirun", "hydra/launcher=parallel", "hydra.launcher.n_jobs=2", "seed=0,1", *settings, home="par")
    parallel = {r["seed"]: r for r in _records(bench.results.parent / "par" / "results")}
    threads = max(1, (os.cpu_count() or 1) // 2)
    assert sorted(parallel) == [0, 1] and {r["hardware"]["torch_threads"] for r in parallel.values()} == {threads}
    bench(*settings, "seed=1", f"trainer.threads={threads}", home="alone")
    (alone,) = _records(bench.results.parent / "alone" / "results")
    assert alone["run_id"] == parallel[1]["run_id"]
    assert without_timing(alone["history"]) == without_timing(parallel[1]["history"])
