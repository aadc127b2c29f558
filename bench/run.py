"""One run of ``python -m bench``: validate, find the data, skip or resume, train, record."""
from __future__ import annotations

import datetime as _dt
import logging
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from bench import checkpoint, provenance
from bench.data.build import build_loaders
from bench.data.prepare import resolve
from bench.data.synthetic import SYNTHETIC, synthetic_record
from bench.errors import BenchError
from bench.identity import config_hash, protocol_summary, run_id
from bench.optim_factory import build_optimizer, optimizer_class
from bench.records import ResultsStore
from bench.schedules import build_schedule
from bench.tasks import build_task
from bench.trainer import Trainer, TrainState, pick_device, seed_everything, set_deterministic
from bench.validate import validate
from models import create_model

log = logging.getLogger("bench")


@dataclass
class Outcome:
    run_id: str
    status: str  # finished | diverged | failed | skipped
    record_path: Path
    record: dict[str, Any] | None


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def _data_record(meta: dict[str, Any], used: dict[str, Any], ds: dict[str, Any]) -> dict[str, Any]:
    keep = ("dataset", "provenance", "complete", "source", "lossy", "description", "sizes", "prepared_at")
    record = {k: meta.get(k) for k in keep}
    if "jpeg_filled" in meta:
        record["jpeg_filled_count"] = len(meta["jpeg_filled"])
    pipeline = {"augment": ds["augment"], "eval_augment": ds.get("eval_augment"),
                "normalization": {"name": ds.get("norm"), "mean": ds["mean"], "std": ds["std"]}}
    return {**record, **used, **pipeline}


def execute(cfg: dict[str, Any], sweep: bool = False) -> Outcome:
    """Run (or skip, or resume) the configuration ``cfg`` (a resolved plain dict)."""
    validate(cfg)
    optimizer_class(cfg["optim"]["name"], cfg["optim"]["class_name"])
    store = ResultsStore(cfg["results_dir"])
    store.check_writable()
    ds = cfg["dataset"]
    synthetic = SYNTHETIC.get(ds["name"])  # generated workloads (the NQM) need no prepared copy
    data = None if synthetic else resolve(ds["name"], Path(ds.get("root") or cfg["data_root"]), ds.get("source"),
                                          ds.get("download", True), ds.get("allow_incomplete", False))
    digest = config_hash(cfg, data.tag if data else f"{ds['name']}-synthetic")
    rid = run_id(cfg, digest)
    if store.is_final(rid) and not cfg.get("force"):
        print(f"skipped {rid}: a {store.load(rid)['status']} record exists at {store.path(rid)} (force=true reruns it)")
        return Outcome(rid, "skipped", store.path(rid), store.load(rid))

    run_dir = Path(cfg["work_dir"]) / rid
    base = {
        "run_id": rid, "config_hash": digest, "experiment": cfg["experiment"], "optim": cfg["optim"]["name"],
        "model": cfg["model"]["name"], "dataset": ds["name"], "seed": cfg["seed"], "config": cfg,
        "protocol": protocol_summary(cfg), "git": provenance.git_state(), "packages": provenance.package_versions(),
        "run_dir": str(run_dir),
    }
    logger = None
    state, resumed = TrainState(), []
    started, clock = _now(), time.perf_counter()
    try:
        device = pick_device(cfg["trainer"]["device"])
        set_deterministic(bool(cfg["trainer"]["deterministic"]))
        base["hardware"] = provenance.hardware(device)
        seed_everything(cfg["seed"])
        if synthetic:
            train_loader, test_loader, used = synthetic(cfg, device)
            base["data"] = synthetic_record(cfg, used)
        else:
            train_loader, test_loader, used = build_loaders(cfg, data, device)
            base["data"] = _data_record(data.meta, used, ds)
        model = create_model(cfg["model"]["name"], num_classes=ds["num_classes"], in_channels=ds["channels"],
                             **{k: v for k, v in cfg["model"].items() if k != "name"}).to(device)
        optimizer = build_optimizer(model, cfg["optim"])
        schedule = build_schedule(optimizer, cfg["trainer"]["epochs"], **cfg["optim"]["schedule"])

        ckpt_path = run_dir / "checkpoint.pt"
        saved = checkpoint.load(ckpt_path)
        if saved is not None and saved["config_hash"] == digest:
            model.load_state_dict(saved["model"])
            optimizer.load_state_dict(saved["optimizer"])
            schedule.load_state_dict(saved["schedule"])
            state = TrainState(saved["epoch"], saved["step"], saved["history"])
            resumed = saved.get("resumed_at_epochs", []) + [state.epoch]
            clock -= saved.get("wall_time_s", 0.0)
            started = saved.get("started_at", started)
            print(f"resuming {rid} after epoch {state.epoch} from {ckpt_path}")

        def save_checkpoint(s: TrainState) -> None:
            checkpoint.save(ckpt_path, {
                "config_hash": digest, "model": model.state_dict(), "optimizer": optimizer.state_dict(),
                "schedule": schedule.state_dict(), "epoch": s.epoch, "step": s.step, "history": s.history,
                "resumed_at_epochs": resumed, "started_at": started, "wall_time_s": time.perf_counter() - clock,
            })

        if cfg["logger"]["wandb"]["enabled"]:
            from bench.wandb_log import WandbLogger
            logger = WandbLogger(dict(cfg["logger"]["wandb"]), rid, cfg)

        def log_epoch(row: dict[str, Any]) -> None:
            metrics = "  ".join(f"{k} {v:.4g}" for k, v in row.items() if k.startswith(("train_", "test_")))
            log.info("epoch %d/%d  %s  (%.1fs)", row["epoch"], cfg["trainer"]["epochs"], metrics, row["epoch_time_s"])
            if logger:
                logger.log(row)

        trainer = Trainer(model, optimizer, schedule, build_task(ds.get("task", "classification")), train_loader, test_loader, device=device,
                          seed=cfg["seed"], amp=cfg["trainer"]["amp"], progress=cfg["trainer"]["progress"],
                          divergence_check_every=cfg["trainer"]["divergence_check_every"],
                          on_epoch_end=save_checkpoint, log_epoch=log_epoch)
        status = trainer.fit(cfg["trainer"]["epochs"], state)
        record = {**base, "status": status, "history": state.history, "resumed_at_epochs": resumed, "error": None}
    except BenchError:
        raise
    except Exception as exc:  # a crash becomes a "failed" record; a single run still exits non-zero
        record = {**base, "status": "failed", "history": state.history, "error": f"{type(exc).__name__}: {exc}",
                  "traceback": traceback.format_exc()}
        if not sweep:
            _finish(store, record, started, clock, logger)
            raise
    return _finish(store, record, started, clock, logger, cfg)


def _finish(store: ResultsStore, record: dict[str, Any], started: str, clock: float, logger: Any,
            cfg: dict[str, Any] | None = None) -> Outcome:
    scored = [row for row in record["history"] if "test_acc1" in row]
    completed = [row for row in record["history"] if "test_loss" in row]  # the NQM has no accuracy
    record.update(final=completed[-1] if completed else None,
                  best_test_acc1=max((r["test_acc1"] for r in scored), default=None),
                  started_at=started, finished_at=_now(), wall_time_s=round(time.perf_counter() - clock, 2))
    path = store.write(record)
    if logger:
        logger.finish(record["status"])
    if cfg is not None and not cfg["trainer"].get("keep_checkpoint", False):
        (Path(record["run_dir"]) / "checkpoint.pt").unlink(missing_ok=True)
    return Outcome(record["run_id"], record["status"], path, record)
