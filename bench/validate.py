"""Checks on a composed config that Hydra cannot express; each failure names the fix."""
from __future__ import annotations

from typing import Any

from bench.data.augment import AUGMENTATIONS
from bench.data.build import LOADERS
from bench.errors import BenchError
from bench.schedules import SCHEDULES
from models import available_models


def _positive_int(value: Any, key: str, allow_none: bool = False) -> None:
    if value is None and allow_none:
        return
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise BenchError(f"{key} must be a positive integer, got {value!r}; pass {key}=<n>")


def _check_optim(optim: dict[str, Any], prefix: str) -> None:
    for name, value in optim.get("hparams", {}).items():
        if (name == "lr" or name.endswith("_lr")) and isinstance(value, (int, float)) and value < 0:
            raise BenchError(
                f"{prefix}.hparams.{name} must be non-negative, got {value}; pass {prefix}.hparams.{name}=<value >= 0>"
            )


def _check_dataset(cfg: dict[str, Any]) -> None:
    augment = cfg["dataset"]["augment"]["name"]
    if augment not in AUGMENTATIONS:
        raise BenchError(f"unknown augmentation {augment!r}; pick dataset.augment.name from {sorted(AUGMENTATIONS)}")
    loader = cfg["dataset"].get("loader", "fast")
    if loader not in LOADERS:
        raise BenchError(f"dataset.loader must be one of {LOADERS}, got {loader!r}; pass dataset.loader=fast")


def validate(cfg: dict[str, Any]) -> None:
    """Raise ``BenchError`` for the first invalid setting in the planned config ``cfg`` (``bench.plan``)."""
    for role, settings in cfg["roles"].items():
        prefix = "optim" if settings["optim"] == cfg["optim"] else f"roles.{role}.optim"
        _check_optim(settings["optim"], prefix)
        schedule = settings["schedule"]["name"]
        if schedule not in SCHEDULES:
            raise BenchError(f"unknown schedule {schedule!r}; pick schedule=<name> from conf/schedule/ "
                             f"({', '.join(sorted(SCHEDULES))})")
    trainer = cfg["trainer"]
    _positive_int(trainer["epochs"], "trainer.epochs")
    _positive_int(trainer["batch_size"], "trainer.batch_size")
    _positive_int(trainer["eval_batch_size"], "trainer.eval_batch_size")
    _positive_int(trainer.get("train_subset"), "trainer.train_subset", allow_none=True)
    _positive_int(trainer.get("test_subset"), "trainer.test_subset", allow_none=True)
    _positive_int(trainer.get("steps_per_epoch"), "trainer.steps_per_epoch", allow_none=True)
    if not isinstance(cfg["seed"], int) or cfg["seed"] < 0:
        raise BenchError(f"seed must be a non-negative integer, got {cfg['seed']!r}; pass seed=<n>")
    if cfg.get("dataset"):
        _check_dataset(cfg)
    if cfg.get("model") and cfg["model"]["name"] not in available_models():
        raise BenchError(f"unknown model {cfg['model']['name']!r}; pick model=<name> from {available_models()}")
    if trainer["device"] not in ("auto", "cpu") and not str(trainer["device"]).startswith("cuda"):
        raise BenchError(f"trainer.device must be auto, cpu or cuda[:n], got {trainer['device']!r}")
