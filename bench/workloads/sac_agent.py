"""Stable-Baselines3's SAC with its updates driven by ``optimizers.protocol.Driver``, and its resume state.

``DrivenSAC`` keeps everything of ``stable_baselines3.SAC`` 2.9.2 (policy and critics, replay
buffer, rollout collection, ``learn``) except ``train``: the same update, in SB3's order and
arithmetic (temperature, then critics, then actor, then Polyak averaging of the target critics),
with each optimizer step taken by the driver's role (``entropy``, ``critic``, ``actor``). So:

* the optimizer of a role is whatever ``optim`` builds (SB3 builds one class for actor and critic and
  a hard-coded Adam for the temperature, and rewrites every ``param_group["lr"]`` from its own
  schedule in each ``train`` call; none of that happens here: learning rates are the optimizer's and
  the ``schedule`` group's, and LR-free methods keep their own multiplier);
* each role's detached loss is available to optimizers that ask for it (``requires = {"loss"}``);
* a NaN/Inf loss, estimated learning rate, action, observation or reward raises ``Diverged``.

With Adam (lr 3e-4) on all three roles the update is SB3's own, bit for bit (tests/test_sac.py).
``resume_state`` / ``load_resume_state`` capture what a bit-identical continuation needs besides the
global RNGs (``bench.checkpoint``): networks, temperature, the filled part of the replay buffer (as
tensors, so ``torch.save`` streams them), the training environment (wrappers pickled; MuJoCo's
``MjData`` and the environment's RNG copied in, because Gymnasium re-creates a MuJoCo env from its
constructor arguments when unpickled), SB3's counters and the action space's RNG.
"""
from __future__ import annotations

import math
import os
import pickle
import signal
from collections import deque
from typing import Any

import mujoco
import numpy as np
import torch
from stable_baselines3 import SAC
from stable_baselines3.common.utils import polyak_update
from torch import nn
from torch.nn import functional as F

from bench.timing import Stopwatch
from optimizers.protocol import Diverged, Driver

BUFFER_ARRAYS = ("observations", "next_observations", "actions", "rewards", "dones", "timeouts")
COUNTERS = ("num_timesteps", "_n_updates", "_episode_num", "_last_obs", "_last_episode_starts",
            "_last_original_obs")
LOSSES = ("entropy_loss", "critic_loss", "actor_loss")


class EntropyTemperature(nn.Module):
    """log(alpha), SAC's learned entropy temperature, as a module (SB3 keeps a bare tensor)."""

    def __init__(self, log_value: torch.Tensor) -> None:
        super().__init__()
        self.log_ent_coef = nn.Parameter(log_value.detach().clone())


class DrivenSAC(SAC):
    """SB3's SAC whose ``train`` steps the optimizers of a ``Driver`` (see the module docstring)."""

    driver: Driver
    kill_at_step: int = 0      # fault injection (bench.trainer.FAULT_KILL_ENV): SIGKILL after this env step

    def _setup_model(self) -> None:
        super()._setup_model()
        if self.log_ent_coef is None:
            raise ValueError("DrivenSAC learns the temperature: ent_coef must be 'auto' or 'auto_<value>'")
        self.temperature = EntropyTemperature(self.log_ent_coef)
        self.log_ent_coef = self.temperature.log_ent_coef
        self.sums = dict.fromkeys(LOSSES, 0.0)

    def attach(self, driver: Driver, clock: Stopwatch | None = None) -> None:
        """Use ``driver``'s optimizers (SB3's own are never stepped; this keeps its references honest);
        ``clock`` learns when the first update is done."""
        self.driver, self.clock = driver, clock or Stopwatch()
        self.actor.optimizer, self.critic.optimizer = driver.optimizer("actor"), driver.optimizer("critic")
        self.ent_coef_optimizer = driver.optimizer("entropy")

    def take_sums(self) -> dict[str, float]:
        """Loss sums since the last call, and the number of updates they cover."""
        sums, self.sums = self.sums, dict.fromkeys(LOSSES, 0.0)
        return sums

    def _update(self, role: str, loss: torch.Tensor) -> float:
        self.driver.step(loss, roles=(role,))
        self.clock.first_step_done()
        value = loss.item()
        self.sums[f"{role}_loss"] += value
        return value

    def train(self, gradient_steps: int, batch_size: int = 64) -> None:
        """SB3 2.9.2 ``SAC.train`` with the driver's steps (no SB3 learning-rate update)."""
        self.policy.set_training_mode(True)
        for gradient_step in range(gradient_steps):
            data = self.replay_buffer.sample(batch_size, env=self._vec_normalize_env)
            discounts = data.discounts if data.discounts is not None else self.gamma
            if self.use_sde:
                self.actor.reset_noise()
            actions_pi, log_prob = self.actor.action_log_prob(data.observations)
            log_prob = log_prob.reshape(-1, 1)

            ent_coef = torch.exp(self.log_ent_coef.detach())
            entropy = self._update("entropy", -(self.log_ent_coef * (log_prob + self.target_entropy).detach()).mean())

            with torch.no_grad():
                next_actions, next_log_prob = self.actor.action_log_prob(data.next_observations)
                next_q = torch.cat(self.critic_target(data.next_observations, next_actions), dim=1)
                next_q, _ = torch.min(next_q, dim=1, keepdim=True)
                next_q = next_q - ent_coef * next_log_prob.reshape(-1, 1)
                target_q = data.rewards + (1 - data.dones) * discounts * next_q
            current_q = self.critic(data.observations, data.actions)
            critic = self._update("critic", 0.5 * sum(F.mse_loss(q, target_q) for q in current_q))

            q_pi = torch.cat(self.critic(data.observations, actions_pi), dim=1)
            min_q_pi, _ = torch.min(q_pi, dim=1, keepdim=True)
            actor = self._update("actor", (ent_coef * log_prob - min_q_pi).mean())
            if not math.isfinite(entropy + critic + actor):
                raise Diverged(f"losses at environment step {self.num_timesteps}: entropy {entropy}, critic {critic}, "
                               f"actor {actor}")
            self.driver.check(0.0, f"environment step {self.num_timesteps}")  # the LR-free methods' estimates

            if gradient_step % self.target_update_interval == 0:
                polyak_update(self.critic.parameters(), self.critic_target.parameters(), self.tau)
                polyak_update(self.batch_norm_stats, self.batch_norm_stats_target, 1.0)
        self._n_updates += gradient_steps

    def _store_transition(self, replay_buffer: Any, buffer_action: np.ndarray, new_obs: Any, reward: np.ndarray,
                          dones: np.ndarray, infos: list[dict[str, Any]]) -> None:
        if not (np.isfinite(buffer_action).all() and np.isfinite(new_obs).all() and np.isfinite(reward).all()):
            raise Diverged(f"non-finite action, observation or reward at environment step {self.num_timesteps}")
        super()._store_transition(replay_buffer, buffer_action, new_obs, reward, dones, infos)

    def _on_step(self) -> None:
        if self.num_timesteps == self.kill_at_step:
            os.kill(os.getpid(), signal.SIGKILL)

    def finite(self) -> bool:
        """Whether every trained parameter and the current observation are finite."""
        params = [*self.actor.parameters(), *self.critic.parameters(), self.log_ent_coef]
        return all(bool(torch.isfinite(p).all()) for p in params) and bool(np.isfinite(self._last_obs).all())

    # ------------------------------------------------------------------ resume
    def resume_state(self) -> dict[str, Any]:
        buffer = self.replay_buffer
        filled = buffer.buffer_size if buffer.full else buffer.pos
        envs = [env.unwrapped for env in self.env.envs]
        return {
            "policy": self.policy.state_dict(),
            "log_ent_coef": self.log_ent_coef.detach().clone(),
            "buffer": {"pos": buffer.pos, "full": buffer.full,
                       **{k: torch.from_numpy(getattr(buffer, k)[:filled]) for k in BUFFER_ARRAYS}},
            "env": pickle.dumps({"vec": self.env, "data": [e.data for e in envs],
                                 "np_random": [e.np_random.bit_generator.state for e in envs]}),
            "counters": {k: getattr(self, k) for k in COUNTERS},
            "episodes": {"info": list(self.ep_info_buffer or ()), "success": list(self.ep_success_buffer or ())},
            "action_space_rng": self.action_space.np_random.bit_generator.state,
        }

    def load_resume_state(self, state: dict[str, Any]) -> None:
        self.policy.load_state_dict(state["policy"])
        with torch.no_grad():
            self.log_ent_coef.copy_(state["log_ent_coef"])
        buffer, saved = self.replay_buffer, state["buffer"]
        buffer.pos, buffer.full = saved["pos"], saved["full"]
        for key in BUFFER_ARRAYS:
            getattr(buffer, key)[:len(saved[key])] = saved[key].numpy()
        env = pickle.loads(state["env"])
        self.env = env["vec"]
        for inner, data, rng in zip((e.unwrapped for e in self.env.envs), env["data"], env["np_random"]):
            mujoco.mj_copyData(inner.data, inner.model, data)
            inner.np_random.bit_generator.state = rng
        for key, value in state["counters"].items():
            setattr(self, key, value)
        self.ep_info_buffer = deque(state["episodes"]["info"], maxlen=self._stats_window_size)
        self.ep_success_buffer = deque(state["episodes"]["success"], maxlen=self._stats_window_size)
        self.action_space.np_random.bit_generator.state = state["action_space_rng"]
