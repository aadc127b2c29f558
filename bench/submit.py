"""``python -m bench.submit OVERRIDE...``: submit a whole Slurm sweep and get the shell back.

``python -m bench --multirun hydra/launcher=slurm ...`` stays alive until every job of the sweep
ends (Hydra issues 692 and 2479). This submits that command itself as a small Slurm job (the sweep's
driver: 1 CPU, 2 GB, never requeued) and returns at once with its job id. The driver's log goes to
``<work_dir>/hydra/submit/<jobid>.out``. If the driver dies, the jobs it submitted still finish and
write their records; running the sweep again runs only what is missing.

Options (before the overrides) apply to the driver job only; the sweep's jobs take theirs from
``hydra.launcher.*``. The driver's partition, account and QoS default to the sweep's.
"""
from __future__ import annotations

import argparse
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

from bench import PROJECT_ROOT
from bench.cli import check_composition
from bench.errors import BenchError, report

SLURM_KEYS = ("partition", "account", "qos")


def _driver_command(flags: list[str], overrides: list[str]) -> list[str]:
    flags = flags if {"--multirun", "-m"} & set(flags) else ["--multirun", *flags]
    launcher = [] if any(o.startswith("hydra/launcher=") for o in overrides) else ["hydra/launcher=slurm"]
    return [sys.executable, "-m", "bench", *flags, *launcher, *overrides]


EXAMPLES = """examples:
  python -m bench.submit hydra.launcher.partition=gpu +experiment=cifar100_resnet34 optim=adas seed=0,1,2,3,4
  python -m bench.submit --partition debug --time 2-00:00:00 +experiment=adalip_mnist optim=adalip,sgd_keras"""


def submit(argv: list[str]) -> str:
    """Check the sweep, submit its driver with sbatch and return the job id."""
    parser = argparse.ArgumentParser(prog="python -m bench.submit", description=__doc__.split("\n\n")[1],
                                     epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    for key in SLURM_KEYS:
        parser.add_argument(f"--{key}", help=f"the driver job's {key} (default: hydra.launcher.{key})")
    parser.add_argument("--time", help="the driver job's time limit, e.g. 2-00:00:00 (default: the partition's)")
    parser.add_argument("overrides", nargs="*", help="the sweep, as for python -m bench --multirun")
    args, flags = parser.parse_known_args(argv)  # Hydra flags (--multirun, ...) pass through
    command = _driver_command(flags, args.overrides)
    cfg = check_composition(command[3:])
    if cfg is None or cfg.hydra.launcher.get("_target_", "").rsplit(".", 1)[-1] != "SlurmLauncher":
        raise BenchError("bench.submit submits Slurm sweeps only; drop the hydra/launcher=... override "
                         "(or use --cfg/--help with python -m bench)")
    log_dir = Path(cfg.work_dir).resolve() / "hydra" / "submit"
    log_dir.mkdir(parents=True, exist_ok=True)
    sbatch = ["sbatch", "--parsable", "--job-name=bench-sweep", "--cpus-per-task=1", "--mem=2G", "--no-requeue",
              f"--chdir={Path.cwd()}", f"--output={log_dir}/%j.out"]
    for key in SLURM_KEYS:
        value = getattr(args, key) or cfg.hydra.launcher.get(key)
        sbatch += [f"--{key}={value}"] if value else []
    sbatch += [f"--time={args.time}"] if args.time else []
    # The driver's own SLURM_* variables must not leak into the jobs it submits.
    # It runs in the current folder (relative paths in the overrides keep their meaning) on this code.
    script = ('for v in $(compgen -e | grep -E "^(SLURM|SBATCH|SRUN)_"); do unset "$v"; done\n'
              f'export PYTHONPATH={shlex.quote(str(PROJECT_ROOT))}"${{PYTHONPATH:+:$PYTHONPATH}}"\n'
              f"exec {shlex.join(command)}\n")
    done = subprocess.run(sbatch, input=f"#!/bin/bash\n{script}", capture_output=True, text=True)
    if done.returncode != 0:
        raise BenchError(f"sbatch refused the sweep's driver job: {done.stderr.strip() or done.stdout.strip()}")
    job_id = done.stdout.strip().split(";")[0]
    print(f"submitted the sweep's driver as Slurm job {job_id}; log: {log_dir / (job_id + '.out')}")
    print(f"follow it with: squeue --me; tail -f {log_dir / (job_id + '.out')}")
    return job_id


def main() -> None:
    try:
        if shutil.which("sbatch") is None:
            raise BenchError("bench.submit needs Slurm's sbatch on PATH: run it on a Slurm login node "
                             "(or start a local cluster: scripts/slurm_cluster.sh start)")
        submit(sys.argv[1:])
    except BenchError as error:
        report(error)
        sys.exit(error.exit_code)


if __name__ == "__main__":
    main()
