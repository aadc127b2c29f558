"""One run of ``python -m bench``: plan, skip, resume, train (the workload's loop), record.

Faults: bad input, and any failure while the run is built (before its first step), is one
``BenchError`` line with nothing written. One launch per run holds ``<work_dir>/<run_id>/lock``; a
second one skips. A crash while training writes a ``failed`` record and keeps the checkpoints, so
the retry resumes; an unreadable checkpoint is set aside (``bench.checkpoint``).
"""
from __future__ import annotations

import datetime as _dt
import logging
import time
import traceback
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from bench import checkpoint, gpu_options, provenance
from bench.early_stop import EarlyStop, early_stop, stopped_early
from bench.errors import BenchError
from bench.identity import config_hash, protocol_summary, run_id
from bench.lock import run_lock
from bench.optim_factory import build_driver, check_optimizers
from bench.plan import plan
from bench.records import FINAL_STATUSES, ResultsStore, summarize
from bench.time_budget import TimeBudget, budget_event, time_budget
from bench.timing import Stopwatch
from bench.trainer import pick_device, seed_everything, set_deterministic
from bench.validate import validate
from bench.workloads import LoopHooks, TrainState, workload_class
from bench.workloads.base import Workload

log = logging.getLogger("bench")


@dataclass
class Outcome:
    run_id: str
    status: str  # finished | diverged | failed | skipped
    record_path: Path
    record: dict[str, Any] | None


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def execute(cfg: dict[str, Any], sweep: bool = False, explicit: Iterable[str] = ()) -> Outcome:
    """Run (or skip, or resume) the configuration ``cfg`` (a resolved plain dict from Hydra).

    ``explicit`` lists the keys the command line set (they win over per-model values).
    """
    workload_cls = workload_class(cfg["workload"]["name"])
    cfg = plan(cfg, workload_cls.roles, explicit)
    validate(cfg)
    check_optimizers(cfg)
    stop_rule, budget = early_stop(cfg, workload_cls), time_budget(cfg)
    gpu_options.check(cfg, workload_cls)
    store = ResultsStore(cfg["results_dir"])
    store.check_writable()
    located = time.perf_counter()
    data_tag, data = workload_cls.locate_data(cfg)
    located = time.perf_counter() - located
    digest = config_hash(cfg, data_tag)
    rid = run_id(cfg, digest)
    run_dir = Path(cfg["work_dir"]) / rid
    with run_lock(run_dir / "lock") as mine:
        if not mine:
            print(f"skipped {rid}: another launch of this run holds its lock {run_dir / 'lock'} (it is running now)")
            return Outcome(rid, "skipped", store.path(rid), None)
        store.clean_temporaries(rid)
        checkpoint.clean_temporaries(run_dir / "checkpoint.pt")
        done = store.final_record(rid, digest, cfg["experiment"], cfg["seed"])
        if done is not None and not cfg.get("force"):
            print(f"skipped {rid}: a {done['status']} record exists at {store.path(done['run_id'])} "
                  "(force=true reruns it)")
            return Outcome(rid, "skipped", store.path(done["run_id"]), done)
        return _run(cfg, workload_cls, data, store, digest, run_dir, sweep, located, stop_rule, budget)


def _run(cfg: dict[str, Any], workload_cls: type[Workload], data: Any, store: ResultsStore, digest: str,
         run_dir: Path, sweep: bool, located_s: float, stop_rule: EarlyStop | None = None,
         budget: TimeBudget | None = None) -> Outcome:
    """Build the run (any failure: one error line, nothing written), train it, and record it;
    ``located_s``: the seconds spent finding or preparing its data; ``stop_rule``: trainer.early_stop;
    ``budget``: trainer.time_budget_s."""
    rid = run_dir.name
    base = {
        "run_id": rid, "config_hash": digest, "experiment": cfg["experiment"], "optim": cfg["optim"]["name"],
        "workload": workload_cls.name, **workload_cls.record_fields(cfg), "seed": cfg["seed"], "config": cfg, "protocol": protocol_summary(cfg),
        "primary": {"metric": workload_cls.primary.name, "mode": workload_cls.primary.mode},
        "optimizers": {role: {"optim": r["optim"]["name"], "class_name": r["optim"]["class_name"],
                              "schedule": r["schedule"]["name"]} for role, r in cfg["roles"].items()},
        "git": provenance.git_state(), "packages": provenance.package_versions(), "run_dir": str(run_dir),
    }
    logger = None
    state, resumed = TrainState(), []
    started, clock = _now(), time.perf_counter()
    ckpt_path = run_dir / "checkpoint.pt"
    try:
        device = pick_device(cfg["trainer"]["device"])
        if cfg["trainer"].get("threads"):
            torch.set_num_threads(cfg["trainer"]["threads"])
        stopwatch = Stopwatch(device)
        stopwatch.seconds["data"] = located_s
        set_deterministic(bool(cfg["trainer"]["deterministic"]))
        base["hardware"] = provenance.hardware(device)
        seed_everything(cfg["seed"])
        with stopwatch.phase("build"):
            workload = workload_cls(cfg, device, data)
            base["data"] = workload.data_record()
            base["precision"] = gpu_options.precision(cfg["trainer"], device, workload)
            gpu_options.prepare(workload, cfg["trainer"])   # before the optimizers hold its tensors
            driver = build_driver(workload, cfg)
            saved = checkpoint.load(ckpt_path)
        if saved is not None and saved["config_hash"] == digest:
            try:
                workload.load_state_dict(saved["workload"])
                driver.load_state_dict(saved["driver"])
            except Exception as exc:
                raise BenchError(f"checkpoint {ckpt_path} does not fit this run ({type(exc).__name__}: {exc}); "
                                 f"delete it to restart the run") from exc
            state = TrainState(saved["epoch"], saved["step"], saved["history"])
            stopwatch.load_state_dict(saved.get("time") or Stopwatch().state_dict())
            resumed = saved.get("resumed_at_epochs", []) + [state.epoch]
            clock -= saved.get("wall_time_s", 0.0)
            started = saved.get("started_at", started)
            print(f"resuming {rid} after epoch {state.epoch} from {ckpt_path}")
        if cfg["logger"]["wandb"]["enabled"]:
            from bench.wandb_log import WandbLogger
            logger = WandbLogger(dict(cfg["logger"]["wandb"]), rid, cfg)
    except BenchError:
        raise
    except Exception as exc:  # before the first step: bad input or environment, not a result
        raise BenchError(f"cannot build run {rid} (nothing was written): {type(exc).__name__}: {exc}") from exc

    def save_checkpoint(s: TrainState) -> None:
        with stopwatch.phase("checkpoint"):
            checkpoint.save(ckpt_path, {
                "config_hash": digest, "workload": workload.state_dict(), "driver": driver.state_dict(),
                "epoch": s.epoch, "step": s.step, "history": s.history, "resumed_at_epochs": resumed,
                "started_at": started, "wall_time_s": time.perf_counter() - clock, "time": stopwatch.state_dict(),
            })

    def log_epoch(row: dict[str, Any]) -> None:
        metrics = "  ".join(f"{k} {v:.4g}" for k, v in row.items() if k.startswith(("train_", "test_")))
        log.info("epoch %d/%d  %s  (%.1fs)", row["epoch"], cfg["trainer"]["epochs"], metrics, row["epoch_time_s"])
        if logger:
            logger.log(row)

    try:
        hooks = LoopHooks(on_epoch_end=save_checkpoint, log_epoch=log_epoch, clock=stopwatch, early_stop=stop_rule,
                          time_budget=budget)
        ended = stopped_early(state.history) or budget_event(state.history) is not None   # a resume after the end
        status = "finished" if ended else workload.train(driver, state, hooks)
        record = {**base, "status": status, "history": state.history, "resumed_at_epochs": resumed, "error": None}
    except BenchError:
        raise
    except Exception as exc:  # a crash becomes a "failed" record (its checkpoint kept for the retry)
        record = {**base, "status": "failed", "history": state.history, "error": f"{type(exc).__name__}: {exc}",
                  "traceback": traceback.format_exc(), "time": stopwatch.summary()}
        if not sweep:
            _finish(store, record, started, clock, logger, cfg)
            raise
    record["time"] = stopwatch.summary()
    return _finish(store, record, started, clock, logger, cfg)


def _finish(store: ResultsStore, record: dict[str, Any], started: str, clock: float, logger: Any,
            cfg: dict[str, Any]) -> Outcome:
    """Write the record; a run that ended (finished, diverged) drops its checkpoints, a failed one keeps
    them so that its retry resumes."""
    record.update(summarize(record), started_at=started, finished_at=_now(),
                  wall_time_s=round(time.perf_counter() - clock, 2))
    record.update(workload_class(record["workload"]).summary(record))
    path = store.write(record)
    if logger:
        logger.finish(record["status"])
    if record["status"] in FINAL_STATUSES and not cfg["trainer"].get("keep_checkpoint", False):
        checkpoint.remove(Path(record["run_dir"]) / "checkpoint.pt")
    return Outcome(record["run_id"], record["status"], path, record)
