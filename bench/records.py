"""The results store: one immutable JSON record per run under ``<results_dir>/runs/``.

Record schema (``schema: 2``)::

    run_id        "<experiment>-<optim>-seed<seed>-<hash12>"; the hash covers the resolved config
                  minus volatile keys (paths, logging, force) plus the data provenance tag
    config_hash   the full 64-hex hash behind run_id
    status        "finished" | "diverged" | "failed"
    experiment, workload, optim, dataset, model, seed     copies of the cell keys, for quick filtering
    optimizers    {role: {optim, class_name, schedule}}: which optimizer drove which parameter role
    config        the resolved config (bench.plan: schedule=auto and per-model values resolved)
    protocol      {name, reduced, deviations: {key: [reference, actual]}, note}
    data          provenance of the data (tag, source, sha256, lossy, sizes, subsets; synthetic for
                  generated data and stand-ins)
    git           {commit, dirty};  packages {name: version};  hardware {...}
    precision     the arithmetic the forward passes used: "bf16-autocast" (trainer.amp on CUDA, the
                  shared epoch loop) or "fp32" (bench.gpu_options.precision); absent before issue 17
    primary       {metric, mode}: the workload's primary metric and its direction (max | min)
    history       one row per evaluation, keyed by ``epoch`` and ``step``: lr (per param group; for
                  several roles ``lr/<role>``), train_* and test_* metrics, epoch_time_s,
                  train_images_per_s (throughput), train_time_s (cumulative training time, evaluation
                  excluded, summed over resumed segments), and optim/schedule extras
    final, best   {metric, value, at: {epoch, step}} of the primary metric: at the last evaluation,
                  and the best one;  last: the last evaluated history row
    time          where the wall time went (bench.timing): data_s, build_s, train_s (without
                  evaluation), eval_s, checkpoint_s, first_step_s, train_<unit> and <unit>_per_s
                  (examples, or environment steps for RL), summed over a resumed run's segments
    stopped_early null, or the event of ``trainer.early_stop`` that ended the run (``bench.early_stop``:
                  epoch, best, best_epoch, epochs_without_improvement, metric, patience, threshold)
    stopped_by_time_budget  whether ``trainer.time_budget_s`` ended the run (``bench.time_budget``)
    time_budget   null, or that event: budget_s, train_time_s (cumulative training time reached) and
                  epochs_reached; every history row carries train_time_s (cumulative, without evaluation)
    wall_time_s, started_at, finished_at, resumed_at_epochs, error (for failed runs)

Schema-1 records (before workloads) are read through ``upgrade``: they gain the schema-2 fields, and
a schema-1 record of the same run still makes a relaunch skip (``ResultsStore.final_record``).
``finished`` and ``diverged`` records are final: a relaunch of the same config skips them unless
forced. A ``failed`` record is replaced when the run is retried. A file in ``runs/`` that is not a
record (corrupt, empty, not a JSON object) is skipped with a warning naming it; a relaunch of its
run replaces it.
"""
from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from bench.early_stop import KEY as EARLY_STOP_KEY
from bench.errors import BenchError
from bench.identity import config_hash, get_dotted
from bench.time_budget import budget_event

SCHEMA_VERSION = 2
FINAL_STATUSES = ("finished", "diverged")
REQUIRED_KEYS = ("run_id", "status", "config", "history")

# Keys that schema 2 added to the run config, with the value every schema-1 run implicitly had.
V2_DEFAULTS = {"trainer.steps_per_epoch": None, "dataset.stand_in": False}
# Schema-1 optimizer configs that bundled a schedule (or an AdaS beta) -> the schema-2 optimizer
# config with the same hyper-parameters (the schedule now is its own group).
RENAMED_OPTIMS = {
    "sgd_step": "sgd", "sgd_step15": "sgd", "sgd_cosine": "sgd", "sgd_multistep": "sgd_nesterov",
    "sgd_autodrop": "sgd_nesterov", "sgd_multistep_imagenet": "sgd_imagenet", "adam_step": "adam_rmsgd",
    "adabound_step": "adabound_rmsgd", "adagrad_step": "adagrad_rmsgd", "adas_b085": "adas", "adas_b090": "adas",
    "adas_b095": "adas", "adas_b0975": "adas", "gd_angle_nqm": "gd", "gd_autodrop_nqm": "gd",
}

def _point(row: dict[str, Any], metric: str) -> dict[str, Any]:
    return {"metric": metric, "value": row[metric], "at": {k: row[k] for k in ("epoch", "step") if k in row}}


def summarize(record: dict[str, Any]) -> dict[str, Any]:
    """``final``, ``best``, ``last``, ``stopped_early``, ``stopped_by_time_budget`` and ``time_budget`` of a
    record from its history and primary metric."""
    metric, mode = record["primary"]["metric"], record["primary"]["mode"]
    budget = budget_event(record["history"])
    stops = {"stopped_early": next((row[EARLY_STOP_KEY] for row in record["history"] if EARLY_STOP_KEY in row), None),
             "stopped_by_time_budget": budget is not None, "time_budget": budget}
    scored = [row for row in record["history"] if row.get(metric) is not None]
    if not scored:
        return {"final": None, "best": None, "last": None, **stops}
    pick = max if mode == "max" else min
    return {"final": _point(scored[-1], metric), "best": _point(pick(scored, key=lambda r: r[metric]), metric),
            "last": scored[-1], **stops}


def _set(config: dict[str, Any], dotted: str, value: Any) -> None:
    """Give ``dotted`` its schema-2 default where the parent exists and the key does not."""
    parent, _, leaf = dotted.rpartition(".")
    node = get_dotted(config, parent) if parent else config
    if isinstance(node, dict):
        node.setdefault(leaf, value)


def upgrade_config(config: dict[str, Any]) -> dict[str, Any]:
    """A schema-1 run config in schema-2 shape (the config ``bench.plan`` gives the same run)."""
    config = json.loads(json.dumps(config))
    dataset = config.get("dataset") or {}
    task = dataset.pop("task", "classification")
    if task == "nqm":  # the NQM lived in dataset=nqm + model=nqm
        model = config.pop("model")
        config.pop("dataset")
        config["workload"] = {"name": "nqm", "dim": dataset["dim"], "x0": model["x0"], "noise": dataset["noise"],
                              "noise_scale": dataset["noise_scale"], "steps_per_epoch": dataset["steps_per_epoch"]}
        reference = (config.get("protocol") or {}).get("reference") or {}
        if reference.pop("dataset.name", None) == "nqm" and reference.pop("model.name", None) == "nqm":
            reference["workload.name"] = "nqm"
    else:
        config["workload"] = {"name": task}
    optim = config["optim"]
    optim["name"] = RENAMED_OPTIMS.get(optim["name"], optim["name"])
    schedule = optim.pop("schedule")
    config["schedule"] = schedule
    config["roles"] = {"model": {"optim": json.loads(json.dumps(optim)), "schedule": schedule}}
    for key, value in V2_DEFAULTS.items():
        _set(config, key, value)
    return config


def upgrade(record: dict[str, Any]) -> dict[str, Any]:
    """A record of any schema with the schema-2 fields (the stored file is left as it is)."""
    if record.get("schema", 1) >= 2:
        return record
    record = dict(record)
    nqm = (record["config"].get("dataset") or {}).get("task") == "nqm"
    record["workload"] = "nqm" if nqm else "classification"
    record["primary"] = {"metric": "test_loss", "mode": "min"} if nqm else {"metric": "test_acc1", "mode": "max"}
    record["config_v1"], record["config"] = record["config"], upgrade_config(record["config"])
    record["optim"] = record["config"]["optim"]["name"]
    record["optimizers"] = {"model": {"optim": record["optim"], "class_name": record["config"]["optim"]["class_name"],
                                      "schedule": record["config"]["schedule"]["name"]}}
    record.update(summarize(record))
    return record


class ResultsStore:
    """Reads and atomically writes run records below ``root/runs``."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        self.runs = self.root / "runs"

    def check_writable(self) -> None:
        """Fail early, with the fix, if records could not be written."""
        try:
            self.runs.mkdir(parents=True, exist_ok=True)
            probe = self.runs / f".write-probe-{os.getpid()}"
            probe.write_text("")
            probe.unlink()
        except OSError as exc:
            raise BenchError(
                f"results directory {self.root} is not writable ({exc.strerror}); pass results_dir=<writable dir>"
            ) from exc

    def path(self, run_id: str) -> Path:
        return self.runs / f"{run_id}.json"

    @staticmethod
    def read(path: Path, upgraded: bool = True) -> dict[str, Any] | None:
        """The record in ``path`` (upgraded to schema 2), or None with a warning if it is not one."""
        try:
            record = json.loads(path.read_text())
            if not isinstance(record, dict):
                raise ValueError(f"a JSON {type(record).__name__}, not an object")
            missing = [key for key in REQUIRED_KEYS if key not in record]
            if missing:
                raise ValueError(f"no {', '.join(missing)}")
            return upgrade(record) if upgraded else record
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            reason = " ".join(str(exc).split())[:200] or type(exc).__name__
            print(f"warning: skipping {path}: not a run record ({reason}); a relaunch of its run replaces it",
                  file=sys.stderr, flush=True)
            return None

    def load(self, run_id: str) -> dict[str, Any] | None:
        path = self.path(run_id)
        return self.read(path) if path.is_file() else None

    def final_record(self, run_id: str, digest: str, experiment: str, seed: int) -> dict[str, Any] | None:
        """The finished or diverged record of this run: its own, or a schema-1 record of the same
        settings (same name prefix, and its upgraded config hashes to ``digest``)."""
        record = self.load(run_id)
        if record is not None:
            return record if record.get("status") in FINAL_STATUSES else None
        for path in sorted(self.runs.glob(f"{experiment}-*-seed{seed}-*.json")):
            old = self.read(path, upgraded=False)
            if old is not None and old.get("schema", 1) == 1 and old.get("status") in FINAL_STATUSES:
                upgraded = upgrade(old)
                tag = "nqm-synthetic" if upgraded["workload"] == "nqm" else (old.get("data") or {}).get("provenance")
                if config_hash(upgraded["config"], str(tag)) == digest:
                    return upgraded
        return None

    def clean_temporaries(self, run_id: str) -> None:
        """Remove temporary files a killed write of this run left (call with the run's lock held)."""
        for tmp in self.runs.glob(f".{self.path(run_id).name}.tmp-*"):
            tmp.unlink(missing_ok=True)

    def write(self, record: dict[str, Any]) -> Path:
        """Write ``record`` atomically (temporary file + rename in the same directory)."""
        path = self.path(record["run_id"])
        tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
        tmp.write_text(json.dumps({"schema": SCHEMA_VERSION, **record}, indent=1, sort_keys=True, default=str))
        os.replace(tmp, path)
        return path

    def __iter__(self) -> Iterator[dict[str, Any]]:
        for path in sorted(self.runs.glob("*.json")):
            record = self.read(path)
            if record is not None:
                yield record
