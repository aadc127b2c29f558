"""Test helpers: the epoch loop and the optimizer driver on a given model, optimizer and loaders."""
from __future__ import annotations

from typing import Any

import torch
from torch import nn

from bench.schedules import Constant
from bench.trainer import Trainer
from bench.workloads.classification import Classification
from optimizers.protocol import Driver


class LoaderClassification(Classification):
    """Classification of a given model on given loaders (no config groups, no data preparation)."""

    def __init__(self, model: nn.Module, train_loader: Any, test_loader: Any, device: torch.device | None = None) -> None:
        self.cfg, self.device = {"seed": 0, "trainer": {"steps_per_epoch": None}}, device or torch.device("cpu")
        self.model, self.train_loader, self.test_loader = model, train_loader, test_loader


def driver_for(optimizer: torch.optim.Optimizer, schedule: Any = None) -> Driver:
    return Driver({"model": (optimizer, schedule or Constant())})


def make_trainer(model: nn.Module, optimizer: torch.optim.Optimizer, train_loader: Any = None, test_loader: Any = None,
                 *, schedule: Any = None, epochs: int = 2, **options: Any) -> Trainer:
    """The shared epoch loop on ``model`` (classification) driven by ``optimizer``."""
    options.setdefault("progress", False)
    return Trainer(LoaderClassification(model, train_loader, test_loader), driver_for(optimizer, schedule), seed=0,
                   epochs=epochs, **options)


def tiny_linear_trainer(epochs: int) -> Any:
    """A seeded linear model on 64 features, 3 classes, with SGD: the smallest trainer of the epoch loop."""
    from tests.test_trainer import _loader

    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(64, 3))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    return make_trainer(model, optimizer, _loader(40, 16), _loader(20, 10, shuffle=False), epochs=epochs)


def classification_step(driver: Driver, model: nn.Module, inputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """One step of the classification loss through ``driver`` (closure included when needed)."""

    def compute() -> torch.Tensor:
        return nn.functional.cross_entropy(model(inputs), targets)

    loss = compute()
    driver.step(loss, driver.closure(compute) if driver.needs_closure else None)
    return loss.detach()


def composed(*overrides: str) -> dict[str, Any]:
    """The config ``python -m bench <overrides>`` composes (before ``bench.plan``)."""
    from hydra import compose, initialize_config_dir
    from omegaconf import OmegaConf

    from bench import CONF_DIR

    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return OmegaConf.to_container(compose(config_name="config", overrides=list(overrides)), resolve=True)


def planned(*overrides: str) -> dict[str, Any]:
    """The planned run config of ``python -m bench <overrides>`` (``bench.plan``)."""
    from bench.plan import explicit_keys, plan
    from bench.workloads import workload_class

    cfg = composed(*overrides)
    return plan(cfg, workload_class(cfg["workload"]["name"]).roles, explicit_keys(overrides))


def without_timing(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """History rows without their wall-clock values (``*_time_s``, ``*_per_s``), which no rerun repeats."""
    return [{k: v for k, v in row.items() if not k.endswith(("_time_s", "_per_s"))} for row in rows]
