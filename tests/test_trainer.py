"""The trainer honours the optimizer protocol (hooks, loss, closure) and is reproducible per epoch."""
from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from bench.data.augment import random_crop_flip
from bench.data.loader import TensorLoader
from bench.workloads import LoopHooks, TrainState
from tests.helpers import make_trainer


class RecordingSGD(torch.optim.SGD):
    """SGD that records every protocol call it receives."""

    requires = frozenset({"loss", "closure"})

    def __init__(self, params: Any, **kw: Any) -> None:
        super().__init__(params, **kw)
        self.calls: list[tuple[str, Any]] = []

    def step(self, closure: Any = None, loss: torch.Tensor | None = None) -> None:  # type: ignore[override]
        assert loss is not None and closure is not None
        again = closure(backward=False)
        self.calls.append(("step", round(float(loss), 5) == round(float(again), 5)))
        super().step()

    def end_step(self, step: int) -> None:
        self.calls.append(("end_step", step))

    def end_epoch(self, epoch: int) -> None:
        self.calls.append(("end_epoch", epoch))
        for group in self.param_groups:
            group["lr"] *= 0.5

    def epoch_log(self) -> dict[str, Any]:
        return {"halved": True}


def _loader(n: int, batch: int, shuffle: bool = True, seed: int = 0) -> TensorLoader:
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (n, 8, 8, 1), dtype=np.uint8)
    labels = rng.integers(0, 3, n)
    return TensorLoader(images, labels, batch_size=batch, mean=[0.5], std=[0.25], device=torch.device("cpu"),
                        augment=random_crop_flip(2), shuffle=shuffle, seed=seed)


def test_hooks_loss_and_closure_reach_the_optimizer() -> None:
    model = nn.Sequential(nn.Flatten(), nn.Linear(64, 3))
    optimizer = RecordingSGD(model.parameters(), lr=0.1)
    trainer = make_trainer(model, optimizer, _loader(40, 16), _loader(20, 10, shuffle=False), epochs=2)
    state = TrainState()
    assert trainer.fit(state, LoopHooks()) == "finished"
    names = [name for name, _ in optimizer.calls]
    assert names == ["step", "end_step"] * 3 + ["end_epoch"] + ["step", "end_step"] * 3 + ["end_epoch"]
    assert all(same for name, same in optimizer.calls if name == "step")  # closure re-evaluates the same batch
    assert [s for n, s in optimizer.calls if n == "end_step"] == [1, 2, 3, 4, 5, 6]
    assert [row["lr"] for row in state.history] == [[0.1], [0.05]]  # the LR used during each epoch
    assert all(row["optim"] == {"halved": True} for row in state.history)


def test_epochs_are_a_pure_function_of_seed_and_epoch() -> None:
    a, b = _loader(50, 16, seed=3), _loader(50, 16, seed=3)
    for epoch in (1, 2):
        for (xa, ya), (xb, yb) in zip(a.epoch(epoch), b.epoch(epoch)):
            assert torch.equal(xa, xb) and torch.equal(ya, yb)
    first = torch.cat([y for _, y in a.epoch(1)])
    second = torch.cat([y for _, y in a.epoch(2)])
    assert not torch.equal(first, second) and sorted(first.tolist()) == sorted(second.tolist())


def test_eval_loader_keeps_order_and_covers_every_example() -> None:
    loader = _loader(23, 10, shuffle=False)
    labels = torch.cat([y for _, y in loader.epoch(0)])
    assert torch.equal(labels, loader.labels) and len(loader) == 3 and loader.examples_per_epoch == 23
