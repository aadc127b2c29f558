"""AutoDrop: the state machine driven by scripted omega sequences, the angle, the running average,
resume, and the schedule inside a real run (digits)."""
from __future__ import annotations

import json

import pytest
import torch

from bench.schedules import SCHEDULES
from optimizers import AutoDrop
from optimizers.autodrop import angle_degrees
from tests.conftest import TINY
from tests.helpers import without_timing

SAT = [None, None, 30.0, 50.0]  # code: first omega at epoch 3; 50 -> 50 + 0.005 saturates at epoch 5


def make(lr: float = 0.1, dim: int = 3, **options):
    param = torch.nn.Parameter(torch.zeros(dim))
    opt = torch.optim.SGD([param], lr=lr)
    options = {"rho": 0.5, "delay": 3, **options}
    return param, opt, AutoDrop(opt, **options)


def drive(sched: AutoDrop, omegas: list[float | None]) -> list[dict]:
    return [sched.update(w) for w in omegas]


def events(logs: list[dict], key: str) -> list[int]:
    return [epoch for epoch, row in enumerate(logs, start=1) if row[key]]


def test_angle_degrees() -> None:
    e1, e2 = torch.tensor([1.0, 0.0]), torch.tensor([0.0, 2.0])
    assert angle_degrees(e1, e2) == pytest.approx(90.0)
    assert angle_degrees(e1, 3 * e1) == pytest.approx(0.0, abs=1e-2)  # eps: 0.005 deg at |a||b| = 3
    assert angle_degrees(e1, -e1) == pytest.approx(180.0, abs=1e-2)
    assert angle_degrees(e1, torch.zeros(2)) == 90.0  # eps of Eq. 2
    assert angle_degrees(e1, torch.tensor([1.0, 1.0])) == pytest.approx(45.0)


@pytest.mark.parametrize("variant, drop_epoch", [("code", 7), ("algorithm1", 8)])
def test_trigger_delay_and_drop(variant: str, drop_epoch: int) -> None:
    """Trigger at epoch 5; code drops n_d - 1 epochs later, Algorithm 1 n_d epochs later."""
    _, opt, sched = make(variant=variant)
    logs = drive(sched, SAT + [50.005, 80.0, 10.0, 70.0, 20.0])
    assert events(logs, "triggered") == [5]
    assert events(logs, "dropped") == [drop_epoch]
    assert [row["lr"][0] for row in logs] == [0.1] * (drop_epoch - 1) + [0.05] * (9 - drop_epoch + 1)
    assert logs[-1]["theta"] == pytest.approx(0.02)
    assert opt.param_groups[0]["lr"] == 0.05


def test_no_trigger_before_third_epoch_in_algorithm1() -> None:
    """Algorithm 1 guards with t > 2 (omega_1 = 90 from s_0 = 0); the code needs two omegas."""
    _, _, alg = make(variant="algorithm1")
    assert events(drive(alg, [90.0, 90.0, 90.0, 0.0]), "triggered") == [3]
    _, _, code = make(variant="code")
    assert events(drive(code, [None, 90.0, 90.0, 0.0]), "triggered") == [3]


def test_retrigger_inside_window() -> None:
    """A second trigger during the delay: code ignores it, Algorithm 1 restarts the window."""
    script = SAT + [50.005, 50.0, 90.0, 10.0, 70.0, 20.0, 60.0]
    assert events(drive(make(variant="code")[2], script), "triggered") == [5, 6]
    assert events(drive(make(variant="code")[2], script), "dropped") == [7]
    assert events(drive(make(variant="algorithm1")[2], script), "dropped") == [9]


def test_code_retriggers_right_after_a_drop() -> None:
    """[CODE] re-imposes no warm-up after a drop: the next saturated pair starts a new window."""
    _, _, sched = make(variant="code", delay=1)
    logs = drive(sched, SAT + [50.005, 50.0, 50.001])
    assert events(logs, "dropped") == [5, 6, 7]


def test_theta_cap_and_lr_floor() -> None:
    """rho = 0.2 from 0.05: LR 0.01, 0.002, 4e-4, then the floor 1e-4; theta 0.05, 0.25, 1 (capped)."""
    _, opt, sched = make(lr=0.05, rho=0.2, delay=1)
    lrs, thetas = [], []
    for _ in range(6):
        sched.update(10.0)  # constant omega: saturated at every test
        lrs.append(opt.param_groups[0]["lr"])
        thetas.append(sched.theta)
    assert sched.drops == 5
    assert lrs[1:] == pytest.approx([0.01, 0.002, 4e-4, 1e-4, 1e-4])
    assert thetas[1:] == pytest.approx([0.05, 0.25, 1.0, 1.0, 1.0])


def test_switches_off() -> None:
    """adapt_theta=False keeps theta; average=False leaves the parameters alone."""
    param, opt, sched = make(delay=2, adapt_theta=False, average=False)
    param.data.fill_(3.0)
    drive(sched, SAT + [50.0, 50.0])
    assert sched.drops == 1 and sched.theta == 0.01 and torch.equal(param.data, torch.full((3,), 3.0))


@pytest.mark.parametrize("variant, window", [("code", 4), ("algorithm1", 5)])
def test_weighted_average_equals_direct_computation(variant: str, window: int) -> None:
    """The loaded parameters equal sum_k k x^(k) / sum_k k over the window's snapshots."""
    param, _, sched = make(variant=variant, delay=4, dim=50)
    generator = torch.Generator().manual_seed(0)
    snapshots = []
    for omega in SAT + [50.0, 80.0, 10.0, 70.0, 20.0, 60.0]:
        param.data = torch.randn(50, generator=generator)
        snapshots.append(param.data.clone())
        if sched.update(omega)["dropped"]:
            break
    window_x = snapshots[-window:]
    expected = sum(k * x for k, x in enumerate(window_x, start=1)) / (window * (window + 1) / 2)
    torch.testing.assert_close(param.data, expected, rtol=1e-6, atol=1e-6)


def test_average_of_constant_parameters_is_the_constant() -> None:
    """Weights sum to one (the printed 2/((n_d+1) n_d) would scale by 1.1 for n_d = 20)."""
    for variant in ("code", "algorithm1"):
        param, _, sched = make(variant=variant, delay=20)
        param.data.fill_(2.5)
        drive(sched, SAT + [50.0] + [10.0, 80.0] * 11)
        assert sched.drops == 1
        torch.testing.assert_close(param.data, torch.full((3,), 2.5))


def test_epoch_mode_measures_displacement_angles() -> None:
    """omega = angle between consecutive per-epoch displacements of all parameters."""
    param, _, sched = make()
    for x in ([0.0, 0.0, 0.0], [1.0, 0.0, 0.0], [1.0, 1.0, 0.0], [2.0, 2.0, 0.0]):
        param.data = torch.tensor(x)
        sched.end_epoch(0)
    assert sched.omega == pytest.approx(45.0)  # s = (1,1,0) after s = (0,1,0)
    _, _, alg = make(variant="algorithm1")
    alg.end_epoch(1)
    assert alg.omega == 90.0  # omega_1 from s_0 = 0


def test_step_mode_averages_per_step_angles() -> None:
    param = torch.nn.Parameter(torch.zeros(2))
    opt = torch.optim.SGD([param], lr=1.0)
    sched = AutoDrop(opt, rho=0.5, omega_source="step")
    for grad in ([-1.0, 0.0], [0.0, -1.0], [0.0, -1.0]):  # steps (1,0), (0,1), (0,1): angles 90, 0
        param.grad = torch.tensor(grad)
        opt.step()
    sched.end_epoch(1)
    assert sched.omega == pytest.approx(45.0, abs=1e-2)  # eps of Eq. 2: 0.008 deg on the parallel pair


def test_state_dict_round_trip_mid_window() -> None:
    """A schedule restored mid-window (running sum included) continues exactly like the original."""
    script = SAT + [50.0, 60.0, 70.0, 80.0, 90.0, 90.001, 91.0]
    param, _, sched = make(variant="algorithm1", delay=4, dim=20)
    generator = torch.Generator().manual_seed(1)
    xs = [torch.randn(20, generator=generator) for _ in script]
    for x, omega in zip(xs[:6], script[:6]):
        param.data = x.clone()
        sched.update(omega)
    assert sched.enabled and sched.weighted_sum is not None
    state = json.loads(json.dumps({k: v for k, v in sched.state_dict().items() if not torch.is_tensor(v)}))
    state.update({k: v for k, v in sched.state_dict().items() if torch.is_tensor(v)})
    param2, _, restored = make(variant="algorithm1", delay=4, dim=20)
    restored.load_state_dict(state)
    outputs = []
    for p, s in ((param, sched), (param2, restored)):
        logs = []
        for x, omega in zip(xs[6:], script[6:]):
            p.data = x.clone()
            logs.append(s.update(omega))
        outputs.append((p.data.clone(), logs))
    assert outputs[0][1] == outputs[1][1] and any(row["dropped"] for row in outputs[0][1])
    assert torch.equal(outputs[0][0], outputs[1][0])


def test_bad_options_are_rejected() -> None:
    param = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([param], lr=0.1)
    for options in ({"rho": 1.5}, {"rho": 0.5, "variant": "paper"}, {"rho": 0.5, "delay": 0}):
        with pytest.raises(ValueError):
            AutoDrop(opt, **options)
    assert "autodrop" in SCHEDULES


AUTODROP = ["schedule=autodrop", "schedule.rho=0.5", "schedule.delay=2", "schedule.theta=20.0",
            "schedule.theta_max=40.0"]


def _history(bench) -> list[dict]:
    (record,) = [json.loads(p.read_text()) for p in (bench.results / "runs").glob("*.json")]
    assert record["status"] == "finished"
    return record["history"]


@pytest.mark.slow
def test_autodrop_in_a_run_logs_and_resumes_exactly(bench, tmp_path) -> None:
    """schedule=autodrop works with Adam; a run killed mid-window resumes bit-identically."""
    args = [*TINY, "optim=adam", "optim.hparams.lr=0.01", "trainer.epochs=6", *AUTODROP]
    bench(*args)
    full = _history(bench)
    logs = [row["schedule"] for row in full]
    assert {"omega", "theta", "triggered", "dropped", "lr"} <= set(logs[0])
    assert logs[0]["omega"] is None and logs[2]["omega"] is not None
    assert any(row["dropped"] for row in logs), logs
    drop = next(i for i, row in enumerate(logs) if row["dropped"])
    if drop + 1 < len(full):
        assert full[drop + 1]["lr"][0] == pytest.approx(0.005)
    for path in (bench.results / "runs").glob("*.json"):
        path.unlink()
    killed = bench(*args, env={"BENCH_FAULT_KILL_AT_STEP": str(24 * 3 + 5)}, check=False)
    assert killed.returncode != 0
    bench(*args)
    resumed = _history(bench)
    assert without_timing(resumed) == without_timing(full)
