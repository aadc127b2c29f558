"""AutoDrop on the noisy quadratic model: Theorem 1's saturation angle, drops down to the floor,
convergence; and the +experiment=autodrop_nqm run plus its figure through the CLI."""
from __future__ import annotations

import json
import math
import subprocess
import sys

import pytest
import torch

from bench.workloads.nqm import NQM as NQMWorkload
from optimizers import AutoDrop
from tests.conftest import ROOT

NQM = {"rho": 0.5, "alpha_min": 0.001, "theta": 0.01, "delay": 1, "average": False, "adapt_theta": False,
       "omega_source": "step"}


def simulate(lr: float, epochs: int, seed: int = 0, **schedule) -> tuple[list[dict], list[float]]:
    """GD on the NQM (conf/workload/nqm.yaml settings), AutoDrop acting once per 20-iteration epoch."""
    cfg = {"workload": {"dim": 200, "x0": 10.0, "noise": "inverse_curvature", "noise_scale": 1.0,
                        "steps_per_epoch": 20}, "trainer": {"batch_size": 1}, "seed": seed}
    task = NQMWorkload(cfg, torch.device("cpu"))
    model, train, test = task.model, task.train_loader, task.test_loader
    opt = torch.optim.SGD(model.parameters(), lr=lr)
    sched = AutoDrop(opt, **{**NQM, **schedule})
    logs, losses = [], []
    for epoch in range(1, epochs + 1):
        for c, targets in train.epoch(epoch):
            opt.zero_grad()
            task.loss(model, c, targets)[0].backward()
            opt.step()
        sched.end_epoch(epoch)
        logs.append(sched.epoch_log())
        with torch.no_grad():
            evaluator = task.evaluator()
            evaluator.update(model, *next(iter(test.epoch(0))))
            losses.append(evaluator.compute()["loss"])  # c = 0: 0.5 x^T A x
    return logs, losses


def theorem1_angle(lr: float) -> float:
    """Eq. 6 with Sigma = A^-1: C* = -(lr/2) sum a^3 s^2/(2 - lr a) / sum a^2 s^2/(2 - lr a), in degrees."""
    a = [i / 10 for i in range(1, 201)]
    num = sum(x ** 3 / x / (2 - lr * x) for x in a)
    den = sum(x ** 2 / x / (2 - lr * x) for x in a)
    return math.degrees(math.acos(-lr / 2 * num / den))


def stationary_loss(lr: float) -> float:
    """E[0.5 x^T A x] at stationarity of GD with Sigma = A^-1: sum 0.5 a lr / (2 - lr a)."""
    return sum(0.5 * (i / 10) * lr / (2 - lr * i / 10) for i in range(1, 201))


def test_angle_saturates_at_theorem1_level() -> None:
    """Constant LR: omega rises and saturates near Theorem 1's angle (90-120 deg), lower for a smaller LR."""
    levels = {}
    for lr in (0.06, 0.03):
        logs, _ = simulate(lr, 150, measure_only=True)
        omegas = [row["omega"] for row in logs]
        late, later = sum(omegas[50:100]) / 50, sum(omegas[100:150]) / 50
        assert abs(late - later) < 1.0                                # saturated
        assert later == pytest.approx(theorem1_angle(lr), abs=1.0)   # 115.6 / 101.9 deg for Sigma = A^-1
        assert not any(row["dropped"] for row in logs)
        levels[lr] = later
    assert 90 < levels[0.03] < levels[0.06] < 120


def test_autodrop_drops_to_the_floor_and_converges() -> None:
    """From 0.06 by halves: drops happen, the LR reaches 0.001, the loss approaches the 0.001 level.
    theta = 0.1 deg (not 0.01) so the drops come within 400 epochs (8,000 iterations) in a test."""
    logs, losses = simulate(0.06, 400, theta=0.1)
    drops = [i for i, row in enumerate(logs, start=1) if row["dropped"]]
    assert len(drops) >= 6, drops                      # 0.06 -> 0.03 -> ... -> 0.001875 -> 0.001
    assert logs[-1]["lr"] == [0.001]
    assert min(row["lr"][0] for row in logs) == 0.001  # the floor holds
    final = sum(losses[-50:]) / 50
    assert final < 0.1 * stationary_loss(0.06)         # far below the constant-0.06 plateau (~46)
    assert final < 2 * stationary_loss(0.001)          # at the 0.001 level (0.51)


@pytest.mark.slow
def test_experiment_runs_and_figure_draws(bench, tmp_path) -> None:
    """+experiment=autodrop_nqm runs (synthetic data, no preparation) and the figure command reads it."""
    bench("+experiment=autodrop_nqm", "trainer.epochs=4")
    bench("+experiment=autodrop_nqm", "schedule=angle_probe_nqm", "trainer.epochs=4")
    records = [json.loads(p.read_text()) for p in (bench.results / "runs").glob("*.json")]
    assert {r["status"] for r in records} == {"finished"} and len(records) == 2
    for record in records:
        assert record["data"]["provenance"] == "synthetic" and record["history"][-1]["test_loss"] > 0
        assert record["history"][-1]["schedule"]["omega"] is not None
    out = subprocess.run([sys.executable, "-m", "bench.figures", "autodrop_nqm", "--results", str(bench.results),
                          "--out", str(tmp_path / "fig.png")], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert (tmp_path / "fig.png").stat().st_size > 10_000
