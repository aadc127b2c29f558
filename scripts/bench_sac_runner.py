"""Environment steps/s of our SAC runner against plain Stable-Baselines3 SAC (issue 12: <= 1.05x time).

Both agents get the same settings (a preset's, Adam on every role as SB3 has it), are warmed up
past ``learning_starts`` untimed, and then alternate in blocks of ``--steps`` environment steps so
that both see the same machine load: ours is the workload's ``_learn`` (SB3 ``learn`` with every
update through ``optimizers.protocol.Driver`` and the divergence checks; evaluation and checkpoints
excluded, as in the record's ``env_steps_per_s``), SB3's is ``SAC.learn``. Prints the median
steps/s of each and their ratio, measured in this one process.

    python scripts/bench_sac_runner.py [--preset ps_sac_hopper] [--steps 500] [--rounds 4] [--threads 1]
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # this checkout's packages

from bench import CONF_DIR  # noqa: E402
from bench.optim_factory import build_driver  # noqa: E402
from bench.plan import explicit_keys, plan  # noqa: E402
from bench.trainer import seed_everything  # noqa: E402
from bench.workloads.sac import SoftActorCritic  # noqa: E402


def our_runner(overrides: list[str]) -> tuple[SoftActorCritic, Callable[[int], None]]:
    """The SAC workload as ``python -m bench <overrides>`` builds it, and a function running N env steps."""
    from hydra import compose, initialize_config_dir
    from omegaconf import OmegaConf

    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        composed = OmegaConf.to_container(compose(config_name="config", overrides=overrides), resolve=True)
    cfg = plan(composed, SoftActorCritic.roles, explicit_keys(overrides))
    seed_everything(cfg["seed"])
    workload = SoftActorCritic(cfg, torch.device(cfg["trainer"]["device"]))
    workload.agent.attach(build_driver(workload, cfg))

    def run(steps: int) -> None:
        workload.w["steps_per_epoch"] = steps
        workload._learn()

    return workload, run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="ps_sac_hopper")
    parser.add_argument("--steps", type=int, default=500, help="environment steps per timed block")
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--warmup", type=int, default=1200, help="untimed steps (past learning_starts)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    from stable_baselines3 import SAC

    overrides = [f"+experiment={args.preset}", "optim=adam", "workload.sac.learning_starts=1000",
                 f"trainer.device={args.device}"]
    ours, run_ours = our_runner(overrides)
    w, sac = ours.w, ours.w["sac"]
    plain = SAC("MlpPolicy", w["env"], buffer_size=sac["buffer_size"], learning_starts=sac["learning_starts"],
                batch_size=ours.cfg["trainer"]["batch_size"], tau=sac["tau"], gamma=sac["gamma"],
                train_freq=sac["train_freq"], gradient_steps=sac["gradient_steps"], ent_coef=sac["ent_coef"],
                policy_kwargs={"net_arch": list(w["net_arch"])}, seed=ours.cfg["seed"], device=args.device)
    runners = {"ours": run_ours, "sb3": lambda steps: plain.learn(steps, reset_num_timesteps=False)}
    for run in runners.values():
        run(args.warmup)
    rates: dict[str, list[float]] = {name: [] for name in runners}
    for _ in range(args.rounds):
        for name, run in runners.items():
            started = time.perf_counter()
            run(args.steps)
            rates[name].append(args.steps / (time.perf_counter() - started))
    medians = {name: statistics.median(values) for name, values in rates.items()}
    print(f"{w['env']}, batch {ours.cfg['trainer']['batch_size']}, net {w['net_arch']}, {args.threads} thread(s), "
          f"{args.device}; {args.rounds} blocks of {args.steps} steps each")
    for name, value in medians.items():
        print(f"  {name:5s} {value:8.1f} env steps/s")
    print(f"  ratio ours / SB3 steps/s = {medians['ours'] / medians['sb3']:.3f}  "
          f"(time ratio {medians['sb3'] / medians['ours']:.3f}; goal <= 1.05)")


if __name__ == "__main__":
    main()
