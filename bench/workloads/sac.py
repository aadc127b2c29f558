"""Soft actor-critic on Gymnasium MuJoCo tasks (PS paper, Table 3's Hopper and Humanoid columns).

Stable-Baselines3's SAC (``bench.workloads.sac_agent.DrivenSAC``) with three parameter roles, each
stepped by the optimizer driver: ``actor`` (the policy), ``critic`` (both Q-networks) and
``entropy`` (log alpha). The PS paper does not say which networks its optimizers drove; all three
by default, each overridable (``+optim@roles.<role>.optim=adam``) and recorded under ``optimizers``.

The loop gives each role's loss to optimizers that ask for it, never a closure: SAM and SLS are
refused up front by the driver. SPS and PS-SPS are refused here, with the reason, because they need
the optimal loss value f*, which SAC's losses do not have (the PS paper did not run them on RL);
``workload.allow_f_star_methods=true`` runs them with their configured ``f_star``.

One epoch is ``workload.steps_per_epoch`` environment steps of ``SAC.learn`` followed by an
evaluation: ``workload.eval.episodes`` deterministic episodes on a separate environment, reset from
seeds drawn from (seed, epoch, episode), with the averaged actor of DoG/LDoG where they keep one.
History rows are keyed by ``step`` = environment steps. A NaN/Inf loss, estimated learning rate,
action, observation or reward, and SB3's ``ValueError`` from a NaN action distribution, end the run
as ``diverged``. Every record carries ``success`` (the named rule of ``workload.success``, decided
on the record) and ``env_steps_per_s``. Settings and their sources: ``conf/workload/sac.yaml`` and
the presets ``conf/experiment/ps_sac_*.yaml``.
"""
from __future__ import annotations

import math
import os
import time
from typing import TYPE_CHECKING, Any

import gymnasium
import numpy as np
import torch
from torch import nn

from bench.data.loader import epoch_seed
from bench.errors import BenchError
from bench.workloads.base import LoopHooks, Metric, TrainState, Workload
from optimizers.protocol import LOSS, Diverged, Driver

if TYPE_CHECKING:
    from bench.workloads.sac_agent import DrivenSAC

SUCCESS_RULES = {  # name -> (description, the primary-metric point of the record it reads)
    "final_return_at_least": ("the run did not diverge and its final test_return >= {threshold}", "final"),
    "best_return_at_least": ("the run did not diverge and its best test_return >= {threshold}", "best"),
}


def success(record: dict[str, Any]) -> dict[str, Any]:
    """``{"rule": <text>, "value": <bool>}`` of ``workload.success`` for a finished, diverged or failed record."""
    rule = record["config"]["workload"]["success"]
    text, point = SUCCESS_RULES[rule["rule"]]
    reached = (record.get(point) or {}).get("value")
    value = record["status"] == "finished" and reached is not None and reached >= rule["threshold"]
    return {"rule": f"{rule['rule']}: {text.format(threshold=rule['threshold'])}", "value": bool(value)}


def env_steps_per_s(history: list[dict[str, Any]]) -> float | None:
    """Environment steps per second of training (evaluation excluded) over the evaluated epochs."""
    rows = [row for row in history if "learn_time_s" in row]
    seconds = sum(row["learn_time_s"] for row in rows)
    steps = sum(row["env_steps"] for row in rows)
    return round(steps / seconds, 1) if seconds > 0 else None


class SoftActorCritic(Workload):
    """SAC on ``workload.env`` with the optimizer under test driving actor, critics and temperature."""

    name = "sac"
    primary = Metric("test_return", "max")
    roles = ("actor", "critic", "entropy")
    provides = frozenset({LOSS})
    budget_unit = "environment step"

    def __init__(self, cfg: dict[str, Any], device: torch.device, data: Any = None) -> None:
        super().__init__(cfg, device)
        self.w = w = cfg["workload"]
        self._check(cfg)
        from bench.workloads.sac_agent import DrivenSAC  # SB3 takes ~2 s to import: only SAC runs pay it

        sac = w["sac"]
        self.agent: DrivenSAC = DrivenSAC(
            "MlpPolicy", w["env"], buffer_size=sac["buffer_size"], learning_starts=sac["learning_starts"],
            batch_size=cfg["trainer"]["batch_size"], tau=sac["tau"], gamma=sac["gamma"], train_freq=sac["train_freq"],
            gradient_steps=sac["gradient_steps"], ent_coef=sac["ent_coef"], target_entropy=sac["target_entropy"],
            policy_kwargs={"net_arch": list(w["net_arch"])}, seed=cfg["seed"], device=device, verbose=0)
        self.eval_env = gymnasium.make(w["env"])

    def _check(self, cfg: dict[str, Any]) -> None:
        w = self.w
        if not str(w["sac"]["ent_coef"]).startswith("auto"):
            raise BenchError(f"workload.sac.ent_coef must be auto or auto_<initial alpha> (the temperature is the "
                             f"`entropy` role), got {w['sac']['ent_coef']!r}")
        if w["success"]["rule"] not in SUCCESS_RULES:
            raise BenchError(f"unknown workload.success.rule {w['success']['rule']!r}; "
                             f"pick one of {sorted(SUCCESS_RULES)}")
        for key in ("steps_per_epoch", "sac.train_freq", "sac.gradient_steps", "eval.episodes"):
            group, _, leaf = key.rpartition(".")
            value = (w[group] if group else w)[leaf]
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise BenchError(f"workload.{key} must be a positive integer, got {value!r}; pass workload.{key}=<n>")
        try:
            gymnasium.spec(w["env"])
        except gymnasium.error.Error as exc:
            raise BenchError(f"unknown Gymnasium environment {w['env']!r} ({exc}); "
                             f"pass workload.env=Hopper-v5") from exc
        if w["allow_f_star_methods"]:
            return
        for role, settings in cfg["roles"].items():
            if "f_star" in settings["optim"]["hparams"]:
                raise BenchError(
                    f"optimizer {settings['optim']['name']} (role {role}) needs the optimal loss value f*, which SAC's "
                    f"losses do not have (the PS paper ran no SPS-family method on RL); pick another optimizer, or "
                    f"pass workload.allow_f_star_methods=true to assume f* = optim.hparams.f_star")

    # ---------------------------------------------------------------- the interface
    @classmethod
    def locate_data(cls, cfg: dict[str, Any]) -> tuple[str, Any]:
        return f"gymnasium-{cfg['workload']['env']}", None

    @classmethod
    def record_fields(cls, cfg: dict[str, Any]) -> dict[str, Any]:
        w = cfg["workload"]
        return {"dataset": w["env"], "model": "sac_mlp" + "x".join(str(width) for width in w["net_arch"])}

    @classmethod
    def summary(cls, record: dict[str, Any]) -> dict[str, Any]:
        return {"success": success(record), "env_steps_per_s": env_steps_per_s(record["history"])}

    def role_modules(self) -> dict[str, nn.Module]:
        return {"actor": self.agent.actor, "critic": self.agent.critic, "entropy": self.agent.temperature}

    @property
    def steps_per_epoch(self) -> int:
        sac = self.w["sac"]
        return max(1, self.w["steps_per_epoch"] * sac["gradient_steps"] // sac["train_freq"])

    def data_record(self) -> dict[str, Any]:
        import mujoco

        w, space = self.w, self.eval_env.observation_space
        return {"dataset": w["env"], "provenance": self.locate_data(self.cfg)[0], "lossy": False,
                "source": {"kind": "simulator", "package": "gymnasium[mujoco]", "gymnasium": gymnasium.__version__,
                           "mujoco": mujoco.__version__},
                "observation_dim": int(np.prod(space.shape)),
                "action_dim": int(np.prod(self.eval_env.action_space.shape)),
                "max_episode_steps": self.eval_env.spec.max_episode_steps,
                "paper_env": w["paper_env"], "deviation": w["deviation"]}

    def state_dict(self) -> dict[str, Any]:
        return self.agent.resume_state()

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.agent.load_resume_state(state)

    # --------------------------------------------------------------------- the loop
    def train(self, driver: Driver, state: TrainState, hooks: LoopHooks) -> str:
        from bench.trainer import FAULT_KILL_ENV, by_role, driver_logs

        agent = self.agent
        agent.attach(driver, hooks.clock)
        agent.kill_at_step = int(os.environ.get(FAULT_KILL_ENV, "0"))
        for epoch in range(state.epoch + 1, self.cfg["trainer"]["epochs"] + 1):
            started, steps, updates = time.perf_counter(), agent.num_timesteps, agent._n_updates
            episodes = agent._episode_num
            lrs = by_role(driver.lrs(), "lr")
            try:
                with hooks.clock.phase("train"):
                    self._learn()
                    driver.end_epoch(epoch)
            except Diverged as exc:
                state.history.append({"epoch": epoch, "step": agent.num_timesteps, **lrs, "diverged": str(exc)})
                return "diverged"
            train_time = time.perf_counter() - started
            hooks.clock.count(agent.num_timesteps - steps, "env_steps")
            with hooks.clock.phase("eval"):
                evaluation = self.evaluate(driver, epoch)
            row: dict[str, Any] = {"epoch": epoch, "step": agent.num_timesteps, **lrs,
                                   **self._train_metrics(updates, episodes), **evaluation,
                                   **driver_logs(driver), "env_steps": agent.num_timesteps - steps,
                                   "learn_time_s": round(train_time, 3),
                                   "env_steps_per_s": round((agent.num_timesteps - steps) / train_time, 1)}
            row["epoch_time_s"] = round(time.perf_counter() - started, 3)
            if hooks.epoch_done(state, row):
                break   # trainer.time_budget_s (bench.time_budget); the row says so
        return "finished"

    def _learn(self) -> None:
        """One epoch of SB3's ``learn``; SB3's ``ValueError`` from NaN parameters becomes ``Diverged``."""
        try:
            self.agent.learn(self.w["steps_per_epoch"], reset_num_timesteps=False)
        except ValueError as exc:
            if self.agent.finite():
                raise
            raise Diverged(f"non-finite parameters or observation at environment step {self.agent.num_timesteps} "
                           f"({type(exc).__name__}: {str(exc).splitlines()[0]})") from exc
        if not self.agent.finite():
            raise Diverged(f"non-finite parameters at environment step {self.agent.num_timesteps}")

    def _train_metrics(self, updates: int, episodes: int) -> dict[str, Any]:
        agent = self.agent
        count = agent._n_updates - updates
        sums = agent.take_sums()
        row = {f"train_{k}": v / count for k, v in sums.items()} if count else {}
        finished = agent._episode_num - episodes
        recent = list(agent.ep_info_buffer or ())[-finished:] if finished else []
        if recent:  # training episodes that ended in this epoch (stochastic actions)
            row["train_return"] = float(np.mean([e["r"] for e in recent]))
        return {**row, "train_alpha": math.exp(agent.log_ent_coef.item()), "train_updates": count,
                "train_episodes": finished}

    def evaluate(self, driver: Driver, epoch: int) -> dict[str, float]:
        """Mean return and length of deterministic episodes (DoG/LDoG: their averaged actor)."""
        actor = driver.eval_model("actor", self.agent.actor)
        actor.set_training_mode(False)
        returns, lengths, stream = [], [], self.w["eval"]["seed_stream"]
        for episode in range(self.w["eval"]["episodes"]):
            obs, _ = self.eval_env.reset(seed=epoch_seed(self.cfg["seed"], epoch, stream + episode))
            total, length, done = 0.0, 0, False
            while not done:
                with torch.no_grad():
                    inputs = torch.as_tensor(obs[None], dtype=torch.float32, device=self.device)
                    action = actor(inputs, deterministic=True)
                obs, reward, terminated, truncated, _ = self.eval_env.step(
                    self.agent.policy.unscale_action(action.cpu().numpy())[0])
                total, length, done = total + float(reward), length + 1, terminated or truncated
            returns.append(total)
            lengths.append(length)
        return {"test_return": float(np.mean(returns)), "test_return_std": float(np.std(returns)),
                "test_episode_length": float(np.mean(lengths))}
