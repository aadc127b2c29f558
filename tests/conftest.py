"""Shared fixtures: run the CLI in a subprocess against throw-away results/work/data folders.

Real-data tests need the offline archives: set BENCH_TEST_DATA to the folder holding
``cifar10.tar.xz`` etc. (the README's test command passes ``../shared/data``). Without it those
tests are skipped with that reason; everything else runs on scikit-learn's bundled digits.
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parent.parent
TEST_DATA_ENV = "BENCH_TEST_DATA"

# A run that takes about a second: digits, a tiny CNN, two epochs.
TINY = ["dataset=digits", "model=small_cnn", "trainer.epochs=2", "trainer.batch_size=64",
        "trainer.progress=false", "optim.hparams.lr=0.05"]


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """Folder with the offline dataset archives, or skip."""
    folder = os.environ.get(TEST_DATA_ENV)
    if not folder:
        pytest.skip(f"set {TEST_DATA_ENV}=<folder with cifar10.tar.xz> to run real-data tests")
    return Path(folder).resolve()


@pytest.fixture(scope="session")
def data_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One prepared-data root per test session (datasets are prepared at most once)."""
    return tmp_path_factory.mktemp("data")


@pytest.fixture
def bench(tmp_path: Path, data_root: Path):
    """``bench(*overrides, env=None, check=True)`` runs ``python -m bench`` in a subprocess."""

    def run(*overrides: str, env: dict[str, str] | None = None, check: bool = True, timeout: float = 600,
            home: str = "") -> subprocess.CompletedProcess[str]:
        """``home`` picks a separate results/work folder pair under tmp_path (default: the shared one)."""
        base = tmp_path / home
        flags = [o for o in overrides if o.startswith("-")]  # Hydra wants its flags before the overrides
        args = [sys.executable, "-m", "bench", *flags, f"results_dir={base / 'results'}",
                f"work_dir={base / 'runs'}", f"data_root={data_root}", *(o for o in overrides if o not in flags)]
        result = subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=timeout,
                                env={**os.environ, **(env or {})})
        if check and result.returncode != 0:
            raise AssertionError(f"exit {result.returncode}\n{result.stdout}\n{result.stderr}")
        return result

    run.results = tmp_path / "results"  # type: ignore[attr-defined]
    run.work = tmp_path / "runs"  # type: ignore[attr-defined]
    return run


@pytest.fixture(scope="session")
def prepared(shared_data: Path, data_root: Path):
    """``prepared(name)``: the folder of ``name`` prepared from the offline archives (once per session)."""
    from bench.data.prepare import prepare_from

    archives = {"cifar10": "cifar10.tar.xz", "cifar100": "cifar100.tar.xz", "mnist": "mnist.tar.xz",
                "cifar10-jpeg": "cifar10-jpeg.tar.xz"}
    done: dict[str, Path] = {}

    def get(name: str) -> Path:
        if name not in done:
            done[name] = prepare_from(name.split("-")[0], shared_data / archives[name], data_root)
        return done[name]

    return get
@pytest.fixture
def one_thread():
    """One torch thread for the test: tiny models run ~30x faster than on two contended threads."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
