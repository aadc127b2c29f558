"""Issue 12: SAC on MuJoCo (bench/workloads/sac.py): SB3 parity, roles, refusals, divergence, resume,
the success rule and debug=smoke with every optimizer of the PS paper's RL rows."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from bench.errors import BenchError
from bench.optim_factory import build_driver
from bench.trainer import FAULT_KILL_ENV
from bench.workloads import LoopHooks, TrainState
from bench.workloads.sac import SoftActorCritic, success
from tests.helpers import planned, without_timing

# The PS paper's RL rows (Table 3): SGD (no weight decay), DoG, D-Adapt SGD, Adam, COCOB, LDoG,
# D-Adapt Adam, Prodigy, PS-DA-SGD.
RL_OPTIMS = "sgd_nowd,dog,dadapt_sgd,adam,cocob,ldog,dadapt_adam,prodigy,ps_dasgd"
# A run of a few seconds: 3 epochs of 20 environment steps, updates from step 11, small networks.
TINY_SAC = ["+experiment=ps_sac_hopper", "workload.steps_per_epoch=20", "trainer.epochs=3",
            "workload.sac.learning_starts=10", "workload.sac.buffer_size=1000", "workload.net_arch=[16,16]",
            "workload.eval.episodes=1", "trainer.batch_size=8", "trainer.device=cpu"]


def _records(folder: Path) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted((folder / "runs").glob("*.json"))]


def _train(*overrides: str) -> tuple[SoftActorCritic, TrainState, str]:
    """A SAC run in this process, as ``bench.run`` does it (no record, no checkpoint)."""
    from bench.trainer import seed_everything

    cfg = planned(*TINY_SAC, *overrides)
    seed_everything(cfg["seed"])
    workload = SoftActorCritic(cfg, torch.device("cpu"))
    state = TrainState()
    status = workload.train(build_driver(workload, cfg), state, LoopHooks())
    return workload, state, status


# ------------------------------------------------------------------------------ SB3 parity
def test_adam_on_every_role_is_sb3_sac_bit_for_bit(one_thread) -> None:
    """With SB3's optimizer (Adam, lr 3e-4) on actor, critics and temperature, the driven update is
    SB3's own: same parameters after 60 environment steps (50 updates), evaluations in between."""
    from stable_baselines3 import SAC

    ours, state, status = _train("optim=adam")
    assert status == "finished" and [row["step"] for row in state.history] == [20, 40, 60]
    plain = SAC("MlpPolicy", "Hopper-v5", buffer_size=1000, learning_starts=10, batch_size=8,
                policy_kwargs={"net_arch": [16, 16]}, seed=0, device="cpu")
    plain.learn(60)
    assert ours.agent._n_updates == plain._n_updates == 50
    for got, want in zip(ours.agent.policy.state_dict().values(), plain.policy.state_dict().values()):
        assert torch.equal(got, want)
    assert torch.equal(ours.agent.log_ent_coef.detach(), plain.log_ent_coef.detach())


def test_each_role_gets_its_own_optimizer_and_lr_free_methods_keep_their_lr(one_thread) -> None:
    workload, state, status = _train("optim=ps_dasgd", "+optim@roles.entropy.optim=adam")
    assert status == "finished"
    row = state.history[-1]
    assert row["lr/actor"] == row["lr/critic"] == [1.0] and row["lr/entropy"] == [3e-4]  # SB3 would reset them
    assert row["optim/actor"]["est_lr"] > 0 and "optim/entropy" not in row
    assert row["train_updates"] == 20 and row["env_steps"] == 20


# --------------------------------------------------------------------------- refusals
@pytest.mark.parametrize("optim", ["sps", "ps_sps"])
def test_methods_that_need_f_star_are_refused_with_the_reason(optim: str) -> None:
    with pytest.raises(BenchError, match="f\\*.*allow_f_star_methods=true"):
        SoftActorCritic(planned(*TINY_SAC, f"optim={optim}"), torch.device("cpu"))


def test_sps_runs_when_allowed_and_gets_each_role_loss(one_thread) -> None:
    _, state, status = _train("optim=sps", "workload.allow_f_star_methods=true")
    assert status in ("finished", "diverged") and state.history


@pytest.mark.parametrize("optim", ["sam", "sls"])
def test_closure_methods_are_refused_by_the_driver(optim: str) -> None:
    cfg = planned(*TINY_SAC, f"optim={optim}")
    with pytest.raises(BenchError, match="needs \\[.*'closure'\\].*sac workload"):
        build_driver(SoftActorCritic(cfg, torch.device("cpu")), cfg)


def test_bad_settings_are_one_clear_error() -> None:
    with pytest.raises(BenchError, match="workload.sac.ent_coef must be auto"):
        SoftActorCritic(planned(*TINY_SAC, "workload.sac.ent_coef=0.1"), torch.device("cpu"))
    with pytest.raises(BenchError, match="unknown Gymnasium environment"):
        SoftActorCritic(planned(*TINY_SAC, "workload.env=Hopper-v99"), torch.device("cpu"))
    with pytest.raises(BenchError, match="unknown workload.success.rule"):
        SoftActorCritic(planned(*TINY_SAC, "workload.success.rule=vibes"), torch.device("cpu"))


# --------------------------------------------------------------------------- divergence
def test_nan_parameters_end_the_run_as_diverged_not_failed(one_thread, monkeypatch) -> None:
    """SB3 raises ValueError for a NaN action distribution; with NaN parameters that is a divergence."""
    real = SoftActorCritic._learn

    def poisoned(self: SoftActorCritic) -> None:
        if self.agent.num_timesteps >= 20:
            with torch.no_grad():
                next(self.agent.actor.parameters()).fill_(float("nan"))
        real(self)

    monkeypatch.setattr(SoftActorCritic, "_learn", poisoned)
    _, state, status = _train("optim=adam")
    assert status == "diverged" and "non-finite" in state.history[-1]["diverged"]
    assert [row["epoch"] for row in state.history] == [1, 2]


@pytest.mark.slow
def test_an_exploding_optimizer_is_recorded_as_diverged_with_exit_status_zero(bench) -> None:
    result = bench(*TINY_SAC, "optim=sgd_nowd", "optim.hparams.lr=1e12")
    assert result.returncode == 0 and "diverged:" in result.stdout
    (record,) = _records(bench.results)
    assert record["status"] == "diverged" and "diverged" in record["history"][-1]
    assert record["success"]["value"] is False


# ------------------------------------------------------------------------------ resume
@pytest.mark.slow
def test_killed_run_resumes_and_matches_an_uninterrupted_run(bench) -> None:
    """SIGKILL at environment step 50 (epoch 3), relaunch: the same history, bit for bit."""
    settings = [*TINY_SAC, "optim=ps_dasgd"]
    bench(*settings, home="reference")
    killed = bench(*settings, home="resumed", env={FAULT_KILL_ENV: "50"}, check=False)
    assert killed.returncode == -9, killed.stderr
    resumed = bench(*settings, home="resumed")
    assert "resuming" in resumed.stdout and "after epoch 2" in resumed.stdout
    (want,) = _records(bench.results.parent / "reference" / "results")
    (got,) = _records(bench.results.parent / "resumed" / "results")
    assert got["resumed_at_epochs"] == [2]
    assert without_timing(got["history"]) == without_timing(want["history"]) and len(got["history"]) == 3


# ------------------------------------------------------------------------ success rule
def test_the_success_rule_reads_the_record() -> None:
    def record(status: str, final: float | None, best: float | None, rule: str = "final_return_at_least") -> dict:
        return {"status": status, "config": {"workload": {"success": {"rule": rule, "threshold": 2000.0}}},
                "final": None if final is None else {"value": final}, "best": None if best is None else {"value": best}}

    assert success(record("finished", 2500, 2500)) == {
        "rule": "final_return_at_least: the run did not diverge and its final test_return >= 2000.0", "value": True}
    assert not success(record("finished", 1500, 3000))["value"]
    assert success(record("finished", 1500, 3000, "best_return_at_least"))["value"]
    assert not success(record("diverged", 2500, 2500))["value"]
    assert not success(record("failed", None, None))["value"]


# ------------------------------------------------------------------------------- smoke
@pytest.mark.slow
def test_debug_smoke_runs_every_rl_optimizer_of_the_paper(bench) -> None:
    """The issue's done-when: ps_sac_hopper with debug=smoke for each RL row, and ps_sac_humanoid."""
    bench("--multirun", "+experiment=ps_sac_hopper", f"optim={RL_OPTIMS}", "debug=smoke", "trainer.device=cpu",
          env={"OMP_NUM_THREADS": "1"})
    bench("+experiment=ps_sac_humanoid", "optim=ps_dasgd", "debug=smoke", "trainer.device=cpu",
          env={"OMP_NUM_THREADS": "1"})
    records = _records(bench.results)
    assert sorted(r["optim"] for r in records) == sorted([*RL_OPTIMS.split(","), "ps_dasgd"])
    for record in records:
        assert record["status"] in ("finished", "diverged"), record.get("error")
        assert record["protocol"]["reduced"] is True and record["history"][-1]["step"] == 4
        assert record["success"]["value"] is False and record["success"]["rule"].startswith("final_return_at_least")
        assert record["env_steps_per_s"] > 0 and record["primary"] == {"metric": "test_return", "mode": "max"}
        assert set(record["optimizers"]) == {"actor", "critic", "entropy"}
        timing = record["time"]   # issue 17's accounting, counted in environment steps
        assert timing["train_env_steps"] == 4 and timing["env_steps_per_s"] > 0 and timing["train_s"] > 0
        assert timing["eval_s"] > 0 and timing["first_step_s"] > 0 and record["precision"] == "fp32"
    humanoid = next(r for r in records if r["experiment"] == "ps_sac_humanoid")
    assert humanoid["data"]["observation_dim"] == 348 and humanoid["data"]["paper_env"] == "Humanoid-v2"


@pytest.mark.slow
def test_sps_is_one_clear_error_and_writes_nothing(bench) -> None:
    result = bench("+experiment=ps_sac_hopper", "optim=sps", "debug=smoke", check=False)
    assert result.returncode == 2 and result.stderr.strip().splitlines()[-1].startswith("error: optimizer sps")
    assert not list(bench.results.rglob("*.json"))
