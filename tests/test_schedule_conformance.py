"""Every schedule config round-trips its state with its optimizer and continues bit for bit.

Parametrised over every file in ``conf/schedule/`` (globbed; ``auto`` is a planning choice, not a
schedule) built through ``bench.schedules.build_schedule``, crossed with a representative set of
optimizers from ``conf/optim/`` built by the project's factory: torch's momentum SGD, Adam, AdaS
(per-layer rates that the group LR multiplies), SAM (a closure, a wrapped inner optimizer) and DoG
(learning-rate free, with an averaged model). Each pair trains through the ``Driver`` (steps,
``end_step``, ``end_epoch``) for 4 epochs, saves the driver's state through
``torch.save``/``torch.load(weights_only=True)``, and a twin built from scratch on a copy of the
model loads it; both continue for 4 more epochs and must agree bit for bit in parameters, learning
rates and every logged value. The schedules' epoch counts are shrunk so that each acts inside those
8 epochs (a StepLR every 3 epochs, so that a fresh scheduler would drop at other epochs than the
saved one; AutoDrop triggering with a wide angle threshold and a 2-epoch window), and the test
asserts that it did act: a round trip of a schedule that never moved the learning rate would prove
nothing.
"""
from __future__ import annotations

import copy
import io
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import nn

from bench.optim_factory import build_optimizer
from bench.schedules import AUTO, build_schedule
from optimizers.protocol import Driver
from tests.test_optim_conformance import _quiet_and_one_thread, assert_same_parameters, batches, load_config
from tests.test_optim_conformance import small_net

CONF = Path(__file__).resolve().parent.parent / "conf" / "schedule"
SCHEDULES = sorted(p.stem for p in CONF.glob("*.yaml") if p.stem != AUTO)
OPTIMIZERS = ("sgd_nesterov", "adam", "adas", "sam", "dog")
EPOCHS, STEPS, SAVE_AT = 8, 2, 4
# option -> a value that makes the schedule act within EPOCHS epochs (only where a config has it)
SHRUNK: dict[str, Any] = {"step_size": 3, "milestones": [2, 5], "warmup_epochs": 1, "theta": 89.0,
                          "theta_max": 90.0, "delay": 2}
__all__ = ["_quiet_and_one_thread"]   # the conformance suite's fixture: one thread, no warnings


def schedule_config(name: str) -> dict[str, Any]:
    cfg = load_config(name, CONF)
    return {**cfg, **{key: value for key, value in SHRUNK.items() if key in cfg}}


def build(optim: str, schedule: str, model: nn.Module) -> Driver:
    optimizer = build_optimizer(model, load_config(optim))
    return Driver({"model": (optimizer, build_schedule(optimizer, EPOCHS, STEPS, **schedule_config(schedule)))})


def train(driver: Driver, model: nn.Module, data: list, epochs: range) -> list[tuple]:
    """Epochs of STEPS steps through the driver; per epoch the LRs trained with and the logs after."""
    trace = []
    for epoch in epochs:
        lrs = driver.lrs()
        for x, y in data[(epoch - 1) * STEPS: epoch * STEPS]:
            def compute(x: torch.Tensor = x, y: torch.Tensor = y) -> torch.Tensor:
                return nn.functional.cross_entropy(model(x), y)

            driver.step(compute(), driver.closure(compute) if driver.needs_closure else None)
        driver.end_epoch(epoch)
        trace.append((lrs, driver.epoch_logs()))
    return trace


def saved(state: dict[str, Any]) -> dict[str, Any]:
    buffer = io.BytesIO()
    torch.save(state, buffer)
    buffer.seek(0)
    return torch.load(buffer, weights_only=True)


@pytest.mark.parametrize("optim", OPTIMIZERS)
@pytest.mark.parametrize("schedule", SCHEDULES)
def test_a_schedule_and_its_optimizer_resume_bit_for_bit(schedule: str, optim: str) -> None:
    model, data = small_net(), batches(EPOCHS * STEPS)
    driver = build(optim, schedule, model)
    before = train(driver, model, data, range(1, SAVE_AT + 1))
    state = saved(driver.state_dict())
    twin = copy.deepcopy(model)
    resumed = build(optim, schedule, twin)
    resumed.load_state_dict(state)
    after = train(driver, model, data, range(SAVE_AT + 1, EPOCHS + 1))
    assert train(resumed, twin, data, range(SAVE_AT + 1, EPOCHS + 1)) == after
    assert_same_parameters(model, twin)
    lrs = {lr for lrs, _ in before + after for lr in lrs["model"]}
    acts = schedule != "constant" and not schedule_config(schedule).get("measure_only")
    assert (len(lrs) > 1) == acts, f"learning rates {sorted(lrs)}"
