"""Sweeps that survive faults: crashed cells resume, corrupt files are set aside, one writer per run."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from bench import checkpoint
from bench.data.prepare import resolve
from bench.lock import HOLD_ENV
from bench.records import ResultsStore
from bench.trainer import FAULT_KILL_ENV, FAULT_RAISE_ENV
from tests.conftest import ROOT, TINY

STEPS_PER_EPOCH = -(-1500 // 64)  # digits: 1,500 training images in batches of 64


def _records(results: Path) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted((results / "runs").glob("*.json"))]


def _payload(epoch: int) -> dict:
    return {"config_hash": "h", "workload": {}, "driver": {}, "epoch": epoch, "step": epoch, "history": []}


# --------------------------------------------------------------------------- checkpoints
def test_a_corrupt_checkpoint_falls_back_to_the_previous_one_then_to_none(tmp_path: Path, capsys) -> None:
    path = tmp_path / "checkpoint.pt"
    checkpoint.save(path, _payload(1))
    checkpoint.save(path, _payload(2))
    assert not list(tmp_path.glob(".*tmp*"))
    path.write_bytes(path.read_bytes()[:100])  # truncated, as by a full disk
    assert checkpoint.load(path)["epoch"] == 1
    warning = capsys.readouterr().err.strip()
    assert warning.startswith(f"warning: checkpoint {path} is unreadable") and "\n" not in warning
    assert (tmp_path / "checkpoint.pt.corrupt").is_file() and not path.exists()

    torch.save(["not", "a", "checkpoint"], checkpoint.previous(path))
    assert checkpoint.load(path) is None
    assert "keys missing" in capsys.readouterr().err
    assert checkpoint.load(path) is None  # set aside: the next launch starts cleanly


@pytest.mark.slow
def test_a_crashed_sweep_cell_keeps_its_checkpoint_and_the_retry_resumes(bench) -> None:
    """A crash in epoch 2 of both cells (say, out of memory): failed records, checkpoints kept; the
    rerun of the sweep resumes both after epoch 1 and replaces the failed records."""
    sweep = ["--multirun", "seed=0,1", *TINY]
    crashed = bench(*sweep, env={FAULT_RAISE_ENV: str(STEPS_PER_EPOCH + 3)}, check=False)
    assert crashed.returncode == 1, crashed.stderr
    assert "2 cell(s) of the sweep did not finish: seed=0 (failed" in crashed.stderr
    assert [r["status"] for r in _records(bench.results)] == ["failed", "failed"]
    assert len(list(bench.work.glob("*/checkpoint.pt"))) == 2

    retried = bench(*sweep)
    assert retried.stdout.count("resuming") == 2 and retried.stdout.count("after epoch 1") == 2
    records = _records(bench.results)
    assert [(r["status"], r["resumed_at_epochs"]) for r in records] == [("finished", [1])] * 2
    assert not list(bench.work.glob("*/checkpoint*.pt"))  # finished runs drop their checkpoints


@pytest.mark.slow
def test_a_truncated_checkpoint_is_set_aside_and_the_run_resumes_from_the_previous_one(bench) -> None:
    settings = [*TINY, "trainer.epochs=3"]
    killed = bench(*settings, env={FAULT_KILL_ENV: str(2 * STEPS_PER_EPOCH + 3)}, check=False)
    assert killed.returncode == -9
    (latest,) = bench.work.glob("*/checkpoint.pt")
    latest.write_bytes(latest.read_bytes()[:1000])
    resumed = bench(*settings)
    warnings = [line for line in resumed.stderr.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1 and f"checkpoint {latest} is unreadable" in warnings[0]
    assert "resuming" in resumed.stdout and "after epoch 1" in resumed.stdout
    (record,) = _records(bench.results)
    assert record["status"] == "finished" and [row["epoch"] for row in record["history"]] == [1, 2, 3]


# --------------------------------------------------------------------------- records
@pytest.mark.parametrize("content", ["", "{\"run_id\": \"x\", ", "[1, 2]", "\"text\"", "{}"])
def test_a_file_that_is_not_a_record_is_skipped_with_a_warning(tmp_path: Path, capsys, content: str) -> None:
    store = ResultsStore(tmp_path)
    store.runs.mkdir(parents=True)
    good = {"run_id": "good", "status": "finished", "config": {}, "history": [], "schema": 2}
    store.path("good").write_text(json.dumps(good))
    store.path("bad").write_text(content)
    assert [r["run_id"] for r in store] == ["good"]
    assert store.load("bad") is None
    warnings = capsys.readouterr().err.strip().splitlines()
    assert len(warnings) == 2 and all(w.startswith(f"warning: skipping {store.path('bad')}") for w in warnings)


@pytest.mark.slow
def test_tables_skip_a_corrupt_record_and_a_relaunch_replaces_it_cleaning_temporaries(bench, tmp_path: Path) -> None:
    bench(*TINY)
    (path,) = (bench.results / "runs").glob("*.json")
    path.write_text("{\"truncated\": ")
    tables = subprocess.run([sys.executable, "-m", "bench.tables", "--results", str(bench.results), "--out",
                             str(tmp_path / "tables"), "--quiet"], cwd=ROOT, capture_output=True, text=True)
    assert tables.returncode == 0 and "Traceback" not in tables.stderr
    assert f"warning: skipping {path}: not a run record" in tables.stderr

    run_dir = bench.work / path.stem  # temporary files a kill during a write leaves behind
    leftovers = [path.with_name(f".{path.name}.tmp-999999"), run_dir / ".checkpoint.pt.tmp-999999"]
    for leftover in leftovers:
        leftover.write_bytes(b"partial")
    again = bench(*TINY)
    assert "finished:" in again.stdout and f"warning: skipping {path}" in again.stderr
    assert json.loads(path.read_text())["status"] == "finished"
    assert not [p for p in leftovers if p.exists()]


# --------------------------------------------------------------------------- one writer per run
@pytest.mark.slow
def test_two_simultaneous_launches_of_one_run_write_one_record(bench, tmp_path: Path, data_root: Path) -> None:
    """Both launches start together; whichever takes the run's lock first holds it (``HOLD_ENV``) until
    the other has finished, which must skip without writing. Then the holder finishes the run."""
    resolve("digits", data_root, None, True)  # prepared once, before the launches
    release = tmp_path / "release"
    args = [sys.executable, "-m", "bench", f"results_dir={bench.results}", f"work_dir={bench.work}",
            f"data_root={data_root}", *TINY]
    env = {**os.environ, HOLD_ENV: str(release)}
    launches = [subprocess.Popen(args, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                for _ in range(2)]
    try:
        done = _wait_for_first_exit(launches, timeout=300)
        assert Path(f"{release}.held").exists()  # the other one holds the lock
        out, err = done.communicate()
        assert done.returncode == 0, err
        assert "another launch of this run holds its lock" in out and not _records(bench.results)
    finally:
        release.touch()
    holder = next(p for p in launches if p is not done)
    out, err = holder.communicate(timeout=300)
    assert holder.returncode == 0 and "finished:" in out, err
    assert len(_records(bench.results)) == 1


def _wait_for_first_exit(processes: list[subprocess.Popen], timeout: float) -> subprocess.Popen:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for process in processes:
            if process.poll() is not None:
                return process
        time.sleep(0.1)
    raise AssertionError("neither launch ended")
