"""Sweeps on a real single-node Slurm cluster (scripts/slurm_cluster.sh), through
``python -m bench --multirun hydra/launcher=slurm`` and ``python -m bench.submit``.

The tests marked ``slurm`` run when BENCH_SLURM=1 (``.ci/run`` starts the cluster and sets it) and
then FAIL, never skip, if the cluster does not answer. Without BENCH_SLURM they are skipped. Runs
are slowed down with BENCH_FAULT_SLEEP_PER_STEP where a job must still be running when its time
limit, a preemption or a scancel comes; every wait polls with a generous deadline.
"""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from bench.trainer import FAULT_KILL_ENV, FAULT_SLEEP_ENV
from tests.conftest import ROOT, TINY

SLURM_ENV = "BENCH_SLURM"
LIVE = ("PENDING", "RUNNING", "REQUEUED", "COMPLETING", "RESIZING", "SUSPENDED")
STEPS_PER_EPOCH = -(-1500 // 64)  # digits, batch 64
# A `setup` line of the job script: only the job's first start is slowed down; once Slurm has
# requeued it (SLURM_RESTART_COUNT > 0) it runs at full speed.
FAST_AFTER_REQUEUE = (f"hydra.launcher.setup=['[ \"$SLURM_RESTART_COUNT\" -gt 0 ] 2>/dev/null "
                      f"&& unset {FAULT_SLEEP_ENV}']")
DETERMINISTIC = [*TINY, "optim=sgd", "trainer.deterministic=true", "seed=0"]


def _launcher(name: str, *extra: str) -> list[str]:
    """A Slurm sweep on the local cluster; ``name`` is the job name (to find its jobs)."""
    return ["--multirun", "hydra/launcher=slurm", "hydra.launcher.partition=debug", f"hydra.launcher.name={name}",
            "hydra.launcher.gpus_per_node=0", "hydra.launcher.cpus_per_task=1", "hydra.launcher.mem_gb=1",
            "hydra.launcher.timeout_min=5", "hydra.launcher.signal_delay_s=10", "hydra.launcher.max_num_timeout=4",
            *extra]


def on_cluster(test):
    """Marked ``slurm``; skipped without BENCH_SLURM; with it, fails if the cluster does not answer."""
    test = pytest.mark.usefixtures("cluster")(test)
    test = pytest.mark.skipif(not os.environ.get(SLURM_ENV), reason=f"set {SLURM_ENV}=1 after "
                              "scripts/slurm_cluster.sh start to run the Slurm tests (.ci/run does)")(test)
    return pytest.mark.slurm(test)


@pytest.fixture(scope="module")
def cluster() -> None:
    status = subprocess.run([str(ROOT / "scripts" / "slurm_cluster.sh"), "status"], capture_output=True, text=True)
    if status.returncode != 0:
        pytest.fail(f"the local Slurm cluster is down ({status.stderr.strip()}); start it with "
                    "scripts/slurm_cluster.sh start (logs in /var/log/slurm/)")


_DRIVERS: list[subprocess.Popen] = []


@pytest.fixture(autouse=True)
def _cleanup():
    """After each test: stop the sweep drivers it left running and cancel its jobs (all named bt-*)."""
    yield
    while _DRIVERS:
        if (driver := _DRIVERS.pop()).poll() is None:
            driver.kill()
            driver.wait()
    if os.environ.get(SLURM_ENV):
        queued = subprocess.run(["squeue", "-h", "-o", "%A %j"], capture_output=True, text=True).stdout.split()
        ours = [job for job, name in zip(queued[::2], queued[1::2]) if name.startswith("bt-")]
        if ours:
            subprocess.run(["scancel", *ours], capture_output=True)


def _name() -> str:
    return f"bt-{uuid.uuid4().hex[:8]}"


def _argv(base: Path, data_root: Path, *overrides: str) -> list[str]:
    flags = [o for o in overrides if o.startswith("-")]
    return [sys.executable, "-m", "bench", *flags, f"results_dir={base / 'results'}", f"work_dir={base / 'runs'}",
            f"data_root={data_root}", *(o for o in overrides if o not in flags)]


def _start(base: Path, data_root: Path, *overrides: str, env: dict[str, str] | None = None) -> subprocess.Popen:
    """The sweep's driver in the background (it waits for its jobs); its output goes to base/driver.log."""
    base.mkdir(parents=True, exist_ok=True)
    with open(base / "driver.log", "w") as log:
        driver = subprocess.Popen(_argv(base, data_root, *overrides), cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
                                  env={**os.environ, **(env or {})})
    _DRIVERS.append(driver)
    return driver


def _wait(what: str, condition, timeout: float = 300, every: float = 0.5):
    deadline = time.monotonic() + timeout
    while not (value := condition()):
        if time.monotonic() > deadline:
            pytest.fail(f"gave up after {timeout:.0f}s waiting for {what}")
        time.sleep(every)
    return value


def _finish(driver: subprocess.Popen, base: Path, timeout: float = 400) -> str:
    """Wait for the driver to exit; its exit status must be 0. Returns its output."""
    _wait("the sweep's driver to exit", lambda: driver.poll() is not None, timeout)
    output = (base / "driver.log").read_text()
    assert driver.returncode == 0, output
    return output


def _slurm(*args: str) -> str:
    return subprocess.run(args, capture_output=True, text=True, check=True, timeout=60).stdout


def _jobs(name: str) -> dict[str, str]:
    """{job id: state code} of the queued jobs named ``name`` (array tasks as ``<array>_<task>``)."""
    rows = _slurm("squeue", "-h", "-n", name, "-o", "%i %t").split()
    return dict(zip(rows[::2], rows[1::2]))


def _job_id(name: str) -> str:
    """The id of the (first) job named ``name`` that Slurm has accounted for."""
    return _wait(f"job {name} in sacct", lambda: _slurm("sacct", "-X", "-n", "-P", f"--name={name}", "-o", "JobID")
                 .split()[:1])[0]


def _attempts(job: str) -> list[str]:
    """The states of every start of ``job`` (requeues included), oldest first."""
    return _slurm("sacct", "-D", "-X", "-n", "-P", "-j", job, "-o", "State").splitlines()


def _ended(job: str) -> list[str]:
    """``_attempts(job)`` once its last start has ended (sacct lags behind the job's result)."""
    return _wait(f"job {job} to end", lambda: (a := _attempts(job)) and a[-1] not in LIVE and a)


def _records(base: Path) -> dict[str, dict]:
    return {p.name: json.loads(p.read_text()) for p in sorted((base / "results").rglob("*.json"))}


def _job_logs(base: Path, suffix: str) -> str:
    return "\n".join(p.read_text() for p in sorted((base / "runs" / "hydra").rglob(f"*_log.{suffix}")))


def _metrics(record: dict) -> list[dict]:
    return [{k: row[k] for k in ("epoch", "train_loss", "test_loss")} for row in record["history"]]


def _resumed_epochs(base: Path) -> list[int]:
    return [int(n) for n in re.findall(r"resuming \S+ after epoch (\d+)", _job_logs(base, "out"))]


@on_cluster
def test_the_cluster_answers() -> None:
    assert "debug" in _slurm("sinfo", "-h", "-o", "%P") and "high" in _slurm("sinfo", "-h", "-o", "%P")


@on_cluster
def test_a_sweep_lands_every_record(tmp_path: Path, data_root: Path) -> None:
    """(a) Four cells, one job array: four finished records, each with every epoch."""
    driver = _start(tmp_path, data_root, *_launcher(_name()), *TINY, "seed=0,1", "optim.hparams.lr=0.05,0.1")
    _finish(driver, tmp_path)
    records = _records(tmp_path)
    assert len(records) == 4 and {r["status"] for r in records.values()} == {"finished"}
    assert all([row["epoch"] for row in r["history"]] == [1, 2] for r in records.values())
    assert len(list((tmp_path / "runs" / "hydra").rglob("*_log.out"))) == 4  # four Slurm jobs ran them


def _reference(bench, settings: list[str]) -> list[dict]:
    """The same run, uninterrupted, in this process's machine (no Slurm)."""
    bench(*settings, home="reference")
    (record,) = _records(bench.results.parent / "reference").values()
    return _metrics(record)


@on_cluster
def test_a_job_at_its_time_limit_is_requeued_and_resumes_exactly(bench, tmp_path: Path,
                                                                 data_root: Path) -> None:
    """(b) A run slowed to at least 52 s of sleep on its first start cannot finish before the signal that
    precedes a 1-minute limit (Slurm sends it 20-50 s after the start): the job requeues itself,
    resumes from its checkpoint and ends with exactly the metrics of an uninterrupted run."""
    settings = [*DETERMINISTIC, "trainer.epochs=12"]
    slow = {FAULT_SLEEP_ENV: str(52 / (12 * STEPS_PER_EPOCH))}
    name, base = _name(), tmp_path / "slurm"
    # A requeued start gets only 20-50 s too; on a busy machine the rest may need several.
    limit = ["hydra.launcher.timeout_min=1", "hydra.launcher.max_num_timeout=10", FAST_AFTER_REQUEUE]
    driver = _start(base, data_root, *_launcher(name, *limit), *settings, env=slow)
    want = _reference(bench, settings)
    _finish(driver, base)
    (record,) = _records(base).values()
    assert record["status"] == "finished" and _metrics(record) == want
    attempts = _ended(_job_id(name))
    assert len(attempts) >= 2 and attempts[-1] == "COMPLETED", attempts
    assert "Caught signal SIGUSR2" in _job_logs(base, "err") and "timed-out" in _job_logs(base, "err")
    assert _resumed_epochs(base) and min(_resumed_epochs(base)) >= 1, _job_logs(base, "out")


@on_cluster
def test_a_preempted_job_is_requeued_and_resumes_exactly(bench, tmp_path: Path, data_root: Path) -> None:
    """(c) A job holding every CPU of partition `debug` is preempted by a `high` job after its first
    checkpoint, goes back to the queue, resumes and ends with an uninterrupted run's metrics."""
    settings = [*DETERMINISTIC, "trainer.epochs=8"]
    name, base = _name(), tmp_path / "slurm"
    driver = _start(base, data_root, *_launcher(name, "hydra.launcher.cpus_per_task=4", FAST_AFTER_REQUEUE),
                    *settings, env={FAULT_SLEEP_ENV: "0.1"})  # at least 2.4 s an epoch
    _wait("the first checkpoint", lambda: list((base / "runs").glob("*/checkpoint.pt")))
    (job,) = _jobs(name)
    high = _slurm("sbatch", "--parsable", "--partition=high", "--cpus-per-task=4", "--job-name=bt-high",
                  f"--output={tmp_path}/high.out", "--wrap", "sleep 2").strip()
    want = _reference(bench, settings)
    _finish(driver, base)
    (record,) = _records(base).values()
    assert record["status"] == "finished" and _metrics(record) == want
    assert _ended(high) == ["COMPLETED"]
    assert len(_ended(job)) >= 2 and _ended(job)[-1] == "COMPLETED", _ended(job)
    assert _resumed_epochs(base) and min(_resumed_epochs(base)) >= 1, _job_logs(base, "out")


@on_cluster
def test_scancel_of_one_job_keeps_the_others_and_the_next_sweep_runs_it(tmp_path: Path,
                                                                        data_root: Path) -> None:
    """(d) Cancel one of three running cells: the other two land their records; running the sweep
    again leaves those untouched and runs the cancelled cell."""
    name = _name()
    sweep = [*_launcher(name), *TINY, "trainer.epochs=4", "seed=0,1,2"]
    driver = _start(tmp_path, data_root, *sweep, env={FAULT_SLEEP_ENV: "0.12"})  # at least 11 s a run
    jobs = _wait("three running jobs", lambda: (j := _jobs(name)) and list(j.values()) == ["R"] * 3 and j)
    victim = sorted(jobs)[1]
    _slurm("scancel", victim)
    _wait("the sweep's driver to exit", lambda: driver.poll() is not None, 400)
    _wait("the other jobs to end", lambda: not _jobs(name), 400)
    assert _ended(victim)[-1].startswith("CANCELLED"), _ended(victim)
    kept = _records(tmp_path)
    assert len(kept) == 2 and {r["status"] for r in kept.values()} == {"finished"}, (tmp_path / "driver.log").read_text()
    kept_bytes = {f: p.read_bytes() for f, p in ((p.name, p) for p in (tmp_path / "results").rglob("*.json"))}

    _finish(_start(tmp_path, data_root, *sweep), tmp_path)
    after = _records(tmp_path)
    assert len(after) == 3 and {r["status"] for r in after.values()} == {"finished"}
    assert {f: (tmp_path / "results" / "runs" / f).read_bytes() for f in kept_bytes} == kept_bytes


@on_cluster
def test_a_killed_job_ends_the_sweep_and_the_next_sweep_resumes_it(tmp_path: Path, data_root: Path) -> None:
    """Jobs SIGKILLed in their second epoch (as by the out-of-memory killer) leave no result: the
    driver must see them fail through sacct and exit instead of waiting forever; running the sweep
    again resumes both from their first-epoch checkpoints."""
    sweep = [*_launcher(_name()), *TINY, "trainer.epochs=3", "seed=0,1"]
    driver = _start(tmp_path, data_root, *sweep, env={FAULT_KILL_ENV: str(STEPS_PER_EPOCH + 5)})
    _wait("the sweep's driver to exit", lambda: driver.poll() is not None, 400)
    assert driver.returncode != 0 and not _records(tmp_path), (tmp_path / "driver.log").read_text()
    assert len(list((tmp_path / "runs").glob("*/checkpoint.pt"))) == 2
    _finish(_start(tmp_path, data_root, *sweep), tmp_path)
    records = _records(tmp_path)
    assert len(records) == 2 and {r["status"] for r in records.values()} == {"finished"}
    assert _resumed_epochs(tmp_path) == [1, 1], _job_logs(tmp_path, "out")


@on_cluster
def test_bench_submit_returns_at_once_and_the_sweep_finishes(tmp_path: Path, data_root: Path) -> None:
    """Fire and forget: bench.submit returns with the driver's job id before any cell could have
    finished (each takes at least 4.8 s of sleep); the driver then runs the whole sweep."""
    args = _argv(tmp_path, data_root, *_launcher(_name())[2:], *TINY, "seed=0,1")[3:]
    done = subprocess.run([sys.executable, "-m", "bench.submit", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=120, env={**os.environ, FAULT_SLEEP_ENV: "0.1"})
    assert done.returncode == 0, done.stderr
    assert not _records(tmp_path)
    driver = re.search(r"Slurm job (\d+)", done.stdout).group(1)
    assert _ended(driver) == ["COMPLETED"], (tmp_path / "runs" / "hydra" / "submit" / f"{driver}.out").read_text()
    records = _records(tmp_path)
    assert len(records) == 2 and {r["status"] for r in records.values()} == {"finished"}


# ------------------------------------------------------------------ without a cluster (always run)
def test_a_slurm_sweep_without_slurm_commands_is_one_error_line(bench, tmp_path: Path) -> None:
    empty = tmp_path / "bin"
    empty.mkdir()
    result = bench(*_launcher("x"), *TINY, "seed=0,1", env={"PATH": str(empty)}, check=False)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("error:") and "sbatch" in line and "srun" in line
    assert not list(tmp_path.rglob("*.json"))
    submit = subprocess.run([sys.executable, "-m", "bench.submit", *TINY], cwd=ROOT, capture_output=True, text=True,
                            env={**os.environ, "PATH": str(empty)})
    assert submit.returncode == 2 and submit.stderr.startswith("error:") and len(submit.stderr.splitlines()) == 1


def test_ci_starts_the_cluster_enables_the_slurm_tests_and_stops_it_on_exit() -> None:
    ci = (ROOT / ".ci" / "run").read_text()
    assert "scripts/slurm_cluster.sh start" in ci and f"{SLURM_ENV}=1" in ci
    assert re.search(r"trap .*slurm_cluster\.sh stop.* EXIT", ci)


@on_cluster
def test_a_sweep_the_cluster_refuses_is_one_error_line_before_any_job(bench, tmp_path: Path) -> None:
    """The launcher's defaults ask for a GPU, which the local cluster lacks; an unknown partition."""
    for bad in (["hydra.launcher.gpus_per_node=1"], ["hydra.launcher.partition=no_such_partition"]):
        name = _name()
        result = bench("--multirun", "hydra/launcher=slurm", f"hydra.launcher.name={name}", *bad, *TINY, "seed=0,1",
                       check=False)
        assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
        (line,) = result.stderr.strip().splitlines()
        assert line.startswith("error: Slurm refuses the sweep's jobs") and "hydra.launcher" in line
        assert not _slurm("sacct", "-X", "-n", f"--name={name}").strip()
