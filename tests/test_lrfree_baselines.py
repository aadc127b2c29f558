"""The LR-free baselines (package optimizers + bench protocol) and the protocol members they add.

Oracles: the packages themselves (``dog``, ``dadaptation``, ``parameterfree``) run side by side,
hand computations of first steps, and the trainer's own evaluation.
"""
from __future__ import annotations

import math

import dog
import numpy as np
import pytest
import torch
from torch import nn

from bench.data.loader import TensorLoader
from bench.errors import BenchError
from bench.optim_factory import build_optimizer
from bench.workloads import LoopHooks, TrainState
from tests.helpers import make_trainer
from optimizers import COCOB, LDoG, PSDASGD, PSSPS, SPS, DAdaptAdam, DAdaptSGD, DoG, Prodigy

pytestmark = pytest.mark.usefixtures("one_thread")


class WithUnused(nn.Module):
    """A model with a parameter that never gets a gradient."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.body = nn.Sequential(nn.Linear(6, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Linear(8, 3))
        self.unused = nn.Parameter(torch.ones(4))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


def data(n: int = 5) -> list[tuple[torch.Tensor, torch.Tensor]]:
    generator = torch.Generator().manual_seed(3)
    return [(torch.randn(12, 6, generator=generator), torch.randint(0, 3, (12,), generator=generator))
            for _ in range(n)]


def backward(model: nn.Module, inputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    loss = nn.functional.cross_entropy(model(inputs), targets)
    loss.backward()
    return loss.detach()


# ------------------------------------------------------------------------------------- DoG / LDoG
@pytest.mark.parametrize("ours, theirs", [(DoG, dog.DoG), (LDoG, dog.LDoG)])
def test_dog_skips_gradless_parameters_and_otherwise_is_the_package(ours: type, theirs: type) -> None:
    model, reference = WithUnused(), WithUnused()
    optimizer = ours(model.parameters(), average=False)
    package = theirs(reference.parameters())
    for inputs, targets in data():
        for m, opt in ((model, optimizer), (reference, package)):
            opt.zero_grad(set_to_none=True)
            backward(m, inputs, targets)
        reference.unused.grad = torch.zeros_like(reference.unused)  # the package needs a gradient
        optimizer.step()
        package.step()
        assert model.unused.grad is None
    for p, q in zip(model.parameters(), reference.parameters()):
        torch.testing.assert_close(p, q, rtol=0, atol=0)


def test_dog_weight_decay_leaves_gradless_parameters_alone() -> None:
    model = WithUnused()
    optimizer = DoG(model.parameters(), weight_decay=0.1, average=False)
    for inputs, targets in data(3):
        optimizer.zero_grad(set_to_none=True)
        backward(model, inputs, targets)
        optimizer.step()
    assert torch.equal(model.unused.detach(), torch.ones(4))


def test_dog_averager_is_the_package_averager_and_the_trainer_evaluates_it() -> None:
    model, reference = WithUnused(), WithUnused()
    optimizer = build_optimizer(model, {"name": "dog", "class_name": "DoG", "hparams": {}})
    package = DoG(reference.parameters(), average=False)
    averager = dog.PolynomialDecayAverager(reference, gamma=8.0)
    for inputs, targets in data():
        for m, opt in ((model, optimizer), (reference, package)):
            opt.zero_grad(set_to_none=True)
            backward(m, inputs, targets)
            opt.step()
        averager.step()
    averaged = optimizer.eval_model()
    for (name, p), q in zip(averaged.state_dict().items(), averager.averaged_model.state_dict().values()):
        torch.testing.assert_close(p, q, rtol=0, atol=0, msg=name)

    images = np.random.default_rng(0).integers(0, 255, (30, 1, 6, 1), dtype=np.uint8)
    loader = TensorLoader(images, np.arange(30) % 3, batch_size=10, mean=[0.5], std=[0.25],
                          device=torch.device("cpu"), shuffle=False)
    flat = nn.Sequential(nn.Flatten(), model)
    flat_averaged = nn.Sequential(nn.Flatten(), averaged)
    optimizer.eval_model = lambda: flat_averaged  # the averaged twin of the wrapped model
    trainer = make_trainer(flat, optimizer, loader, loader)
    expected = make_trainer(flat_averaged, SPS(flat_averaged.parameters()), loader, loader).evaluate()
    raw = make_trainer(flat, SPS(flat.parameters()), loader, loader).evaluate()
    assert trainer.evaluate() == expected != raw


# ------------------------------------------------------------------------------ first steps by hand
def test_cocob_first_step_by_hand() -> None:
    """COCOB-Backprop, step 1: L = |g|, reward 0, so x1 = x0 - sign(g) / alpha."""
    param = nn.Parameter(torch.tensor([0.5, -1.0, 2.0]))
    param.grad = torch.tensor([0.3, -4.0, 1e-3])
    COCOB([param], alpha=100.0).step()
    torch.testing.assert_close(param.detach(), torch.tensor([0.5, -1.0, 2.0]) - torch.sign(param.grad) / 100.0)


def test_estimated_lrs_are_the_steps_taken() -> None:
    """First step of each: the parameter moves by exactly -estimated_lr * (its direction)."""
    g = torch.tensor([0.3, -1.2, 2.0, 0.5])
    for cls, direction in ((DAdaptSGD, g), (DoG, g), (LDoG, g)):
        param = nn.Parameter(torch.tensor([1.0, 2.0, 3.0, 4.0]))
        start = param.detach().clone()
        param.grad = g.clone()
        optimizer = cls([param]) if cls is DAdaptSGD else cls([param], average=False)
        optimizer.step()
        torch.testing.assert_close(param.detach() - start, -optimizer.estimated_lr() * direction)
    param = nn.Parameter(torch.tensor([1.0, 2.0, 3.0, 4.0]))
    param.grad = g.clone()
    optimizer = DAdaptSGD([param])
    optimizer.step()
    assert math.isclose(optimizer.estimated_lr(), 1e-6 / float(g.norm()), rel_tol=1e-6)
    for cls in (DAdaptAdam, Prodigy):
        param = nn.Parameter(torch.tensor([1.0, 2.0, 3.0, 4.0]))
        param.grad = g.clone()
        optimizer = cls([param])
        optimizer.step()
        assert optimizer.estimated_lr() == pytest.approx(1e-6)  # d0 * lr at the first step


# ---------------------------------------------------------------------------- checkpoint round trip
FACTORIES = {
    "PSSPS": lambda ps: PSSPS(ps, eta_max=0.01),
    "PSDASGD": lambda ps: PSDASGD(ps),
    "SPS": lambda ps: SPS(ps, eta_max=0.01),
    "DAdaptSGD": lambda ps: DAdaptSGD(ps, momentum=0.9),
    "DAdaptAdam": lambda ps: DAdaptAdam(ps),
    "Prodigy": lambda ps: Prodigy(ps),
    "DoG": lambda ps: DoG(ps),
    "LDoG": lambda ps: LDoG(ps),
    "COCOB": lambda ps: COCOB(ps),
}


@pytest.mark.parametrize("name", sorted(FACTORIES))
def test_state_dict_round_trip_continues_identically(name: str) -> None:
    batches = data(6)

    def run(model: nn.Module, optimizer: torch.optim.Optimizer, part: list) -> None:
        for inputs, targets in part:
            optimizer.zero_grad(set_to_none=True)
            loss = backward(model, inputs, targets)
            optimizer.step(loss=loss) if "loss" in getattr(optimizer, "requires", ()) else optimizer.step()

    def build(model: nn.Module) -> torch.optim.Optimizer:
        optimizer = FACTORIES[name](list(model.parameters()))
        if hasattr(optimizer, "bind_model"):
            optimizer.bind_model(model)
        return optimizer

    straight, resumed = WithUnused(), WithUnused()
    opt_straight = build(straight)
    run(straight, opt_straight, batches)
    first = WithUnused()
    opt_first = build(first)
    run(first, opt_first, batches[:3])
    resumed.load_state_dict(first.state_dict())
    opt_resumed = build(resumed)
    opt_resumed.load_state_dict(opt_first.state_dict())
    run(resumed, opt_resumed, batches[3:])
    for p, q in zip(straight.state_dict().values(), resumed.state_dict().values()):
        torch.testing.assert_close(p, q, rtol=0, atol=0)
    if hasattr(opt_straight, "eval_model") and opt_straight.eval_model() is not None:
        for p, q in zip(opt_straight.eval_model().state_dict().values(),
                        opt_resumed.eval_model().state_dict().values()):
            torch.testing.assert_close(p, q, rtol=0, atol=0)


# ------------------------------------------------------------------------ divergence via estimates
class ExplodingEstimate(torch.optim.SGD):
    """SGD whose reported estimated learning rate becomes infinite at its third step."""

    def __init__(self, params) -> None:
        super().__init__(params, lr=0.0)
        self.steps = 0

    def step(self, closure=None):
        self.steps += 1
        return super().step(closure)

    def estimated_lr(self) -> float | None:
        return math.inf if self.steps >= 3 else 0.1


def test_non_finite_estimated_lr_ends_the_run_as_diverged() -> None:
    images = np.random.default_rng(0).integers(0, 255, (40, 1, 6, 1), dtype=np.uint8)
    loader = TensorLoader(images, np.arange(40) % 3, batch_size=10, mean=[0.5], std=[0.25],
                          device=torch.device("cpu"))
    model = nn.Sequential(nn.Flatten(), nn.Linear(6, 3))
    optimizer = ExplodingEstimate(model.parameters())
    trainer = make_trainer(model, optimizer, loader, loader, epochs=2, divergence_check_every=1)
    state = TrainState()
    assert trainer.fit(state, LoopHooks()) == "diverged"
    assert "estimated learning rate inf" in state.history[-1]["diverged"]


def test_dadapt_sgd_refuses_a_weight_decay_per_group() -> None:
    """dadaptation 3.2 decays every group with the first group's weight decay, so BN/bias exempted by
    ``optim.no_weight_decay`` would still decay: refused at construction (issue 11 item 5)."""
    model = nn.Sequential(nn.Linear(3, 2), nn.BatchNorm1d(2))
    cfg = {"name": "dadapt_sgd", "class_name": "DAdaptSGD", "hparams": {"weight_decay": 1e-3},
           "no_weight_decay": ["bn", "bias"]}
    with pytest.raises(BenchError, match="first group's weight decay"):
        build_optimizer(model, cfg)
    build_optimizer(model, {**cfg, "no_weight_decay": []})   # one weight decay: accepted
