"""Every LR-free optimizer config runs through the CLI and records its estimated learning rate."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.conftest import ROOT, TINY

LR_FREE = ["ps_sps", "ps_dasgd", "sps", "dadapt_sgd", "dadapt_adam", "prodigy", "dog", "ldog", "cocob"]
# TINY without its optim.hparams.lr (SPS, PS-SPS and COCOB have no lr; the others' lr is a multiplier)
SMALL = [o for o in TINY if not o.startswith("optim.hparams.lr")] + ["trainer.train_subset=512",
                                                                      "trainer.test_subset=256"]
ONE_THREAD = {"OMP_NUM_THREADS": "1"}  # tiny runs on a shared CPU


def records(folder) -> dict[str, dict]:
    return {r["optim"]: r for r in (json.loads(p.read_text()) for p in sorted((folder / "runs").glob("*.json")))}


@pytest.mark.slow
def test_every_lr_free_config_trains_and_logs_its_estimate(bench) -> None:
    bench(*SMALL, f"optim={','.join(LR_FREE)}", "--multirun", env=ONE_THREAD)  # one process for all nine
    found = records(bench.results)
    assert sorted(found) == sorted(LR_FREE)
    for name, record in found.items():
        assert record["status"] == "finished", (name, record.get("error"))
        estimates = [row.get("optim", {}).get("est_lr") for row in record["history"]]
        if name == "cocob":  # per-coordinate, no single learning rate
            assert all(e is None for e in estimates)
        else:
            assert all(isinstance(e, float) and e > 0 for e in estimates), (name, estimates)
    for name in ("ps_sps", "ps_dasgd"):
        assert "reconstructed" in found[name]["config"]["optim"]["reconstruction"]


@pytest.mark.slow
def test_per_step_estimates_and_the_figure(bench, tmp_path) -> None:
    bench(*SMALL, "optim=ps_dasgd", "optim.hparams.log_lr_every=2", env=ONE_THREAD)
    (record,) = records(bench.results).values()
    steps = [pair for row in record["history"] for pair in row["optim"]["est_lr_steps"]]
    assert [s for s, _ in steps] == list(range(2, 2 * len(steps) + 1, 2)) and len(steps) >= 8
    out = tmp_path / "fig.png"
    result = subprocess.run([sys.executable, "-m", "bench.figures", "lr_estimates", "--results", str(bench.results),
                             "--out", str(out)], cwd=ROOT, capture_output=True, text=True, env=None)
    assert result.returncode == 0, result.stderr
    assert out.stat().st_size > 1000


def test_missing_smooth_iter_setting_is_one_clear_line(bench) -> None:
    result = bench(*SMALL, "optim=sps", "optim.hparams.smooth_iter=true", check=False, env=ONE_THREAD)
    assert result.returncode == 2
    assert "n_batches_per_epoch" in result.stderr and "Traceback" not in result.stderr
