"""Checks before a ``hydra/launcher=slurm`` sweep submits anything: one ``error:`` line with the fix
instead of submitit's traceback (no Slurm commands, a partition, account, GPU request or time limit
the cluster refuses, a controller that does not answer)."""
from __future__ import annotations

import shutil
import subprocess
import tempfile
from typing import Any

from bench.errors import BenchError

LAUNCHER_ONLY = ("_target_", "submitit_folder", "max_num_timeout")  # not sbatch options


def _job_script(launcher: dict[str, Any], folder: str) -> str:
    """The sbatch script submitit writes for one job of the sweep (as the Hydra launcher builds it)."""
    import submitit
    from hydra_plugins.hydra_submitit_launcher.config import BaseQueueConf

    base = set(BaseQueueConf.__dataclass_fields__)
    executor = submitit.AutoExecutor(folder=folder, cluster="slurm")
    executor.update_parameters(**{k if k in base else f"slurm_{k}": v for k, v in launcher.items()
                                  if k not in LAUNCHER_ONLY})
    return executor._executor._make_submission_file_text("true", "check")


def check_sweep(launcher: dict[str, Any]) -> None:
    """Raise ``BenchError`` unless ``sbatch --test-only`` accepts the sweep's jobs."""
    missing = [tool for tool in ("sbatch", "srun") if shutil.which(tool) is None]
    if missing:
        raise BenchError(f"hydra/launcher=slurm needs Slurm's {' and '.join(missing)} on PATH: run the sweep on a "
                         f"Slurm login node (or start a local cluster: scripts/slurm_cluster.sh start), or leave out "
                         f"hydra/launcher=slurm to run the sweep here")
    with tempfile.TemporaryDirectory() as folder:
        try:
            test = subprocess.run(["sbatch", "--test-only"], input=_job_script(launcher, folder), capture_output=True,
                                  text=True, timeout=60)
        except subprocess.TimeoutExpired as exc:
            raise BenchError("sbatch --test-only did not answer within 60 s; is the Slurm controller up? "
                             "(scontrol ping)") from exc
    if test.returncode != 0:
        reason = " ".join(line.removeprefix("sbatch: error: ") for line in test.stderr.splitlines() if line.strip())
        if "Unable to contact slurm controller" in reason:
            raise BenchError(f"the Slurm controller does not answer ({reason}); check `scontrol ping` "
                             f"(a local cluster: scripts/slurm_cluster.sh start)")
        hint = " (hydra.launcher.gpus_per_node=0 on a partition without GPUs)" if "gres" in reason else ""
        raise BenchError(f"Slurm refuses the sweep's jobs ({reason}); fix the hydra.launcher.* options "
                         f"(conf/hydra/launcher/slurm.yaml: partition, account, qos, gpus_per_node, cpus_per_task, "
                         f"mem_gb, timeout_min){hint}")
