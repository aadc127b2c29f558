"""Baseline optimizers and schedules: SAM and SLS against hand computations, every baseline config
through the trainer's step protocol (with a checkpoint round trip) and through the CLI, the
schedules' learning rates at the epochs the papers name, and per-(optimizer, model) overrides."""
from __future__ import annotations

import copy
import inspect
import json
import math
import warnings

import pytest
import torch
from torch import nn

import optimizers
from bench.optim_factory import build_optimizer
from bench.schedules import build_schedule
from models import create_model
from tests.conftest import TINY
from tests.helpers import classification_step, composed, driver_for, planned

torch.set_num_threads(1)

# The baseline configs of this module (the papers' own methods are tested with their optimizers).
BASELINES = ["sgd", "sgd_plain", "sgd_nesterov", "sgd_imagenet", "sgd_nowd", "adam", "adam_rmsgd", "adamw", "adagrad",
             "adagrad_rmsgd", "rmsprop", "adabound", "adabound_rmsgd", "adabelief", "sgdp", "adamp", "sam", "sls"]


# --------------------------------------------------------------------------- SAM
def quadratic_closure(w: torch.Tensor, a: torch.Tensor, shift: float = 0.0):
    """closure(backward) for f(w) = 0.5 * sum(a * w^2) + shift, following the trainer's signature."""

    def closure(backward: bool = True) -> torch.Tensor:
        with torch.set_grad_enabled(backward):
            loss = 0.5 * (a * w * w).sum() + shift
        if backward:
            w.grad = None
            loss.backward()
        return loss.detach()

    return closure


@pytest.mark.parametrize("weight_decay", [0.0, 0.1])
def test_sam_step_matches_hand_computation(weight_decay: float) -> None:
    """f(w) = 0.5 (w1^2 + 4 w2^2), w = (1, 1): g = (1, 4), e = rho g / sqrt(17), g_SAM = A (w + e)."""
    rho, lr = 0.05, 0.1
    w = torch.tensor([1.0, 1.0], dtype=torch.float64, requires_grad=True)
    a = torch.tensor([1.0, 4.0], dtype=torch.float64)
    sam = optimizers.SAM([w], rho=rho, lr=lr, momentum=0.0, weight_decay=weight_decay)
    assert optimizers.requirements(sam) == {"closure"}
    closure = quadratic_closure(w, a)
    closure(backward=True)  # the trainer's own forward/backward at w
    sam.step(closure)
    e = [rho * 1 / math.sqrt(17), rho * 4 / math.sqrt(17)]
    g_sam = [1 * (1 + e[0]), 4 * (1 + e[1])]
    expected = [1 - lr * (g_sam[i] + weight_decay * 1.0) for i in range(2)]  # wd at w, not in the ascent
    assert w.detach().tolist() == pytest.approx(expected, rel=1e-12)
    assert all(not state for state in sam.state.values())  # the saved w is dropped after the step


def test_sam_requires_a_closure() -> None:
    w = torch.zeros(2, requires_grad=True)
    with pytest.raises(ValueError, match="closure"):
        optimizers.SAM([w], lr=0.1).step()


def test_sam_groups_are_the_base_optimizers_groups() -> None:
    """A schedule acting on SAM must change the LR that the base SGD uses, also after a resume."""
    w = torch.zeros(2, requires_grad=True)
    sam = optimizers.SAM([w], lr=0.1, momentum=0.9)
    sam.load_state_dict(copy.deepcopy(sam.state_dict()))
    schedule = build_schedule(sam, 10, 1, "step", step_size=1, gamma=0.5)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        schedule.end_epoch(1)
    assert sam.base_optimizer.param_groups[0]["lr"] == pytest.approx(0.05)
    assert sam.param_groups is sam.base_optimizer.param_groups


# --------------------------------------------------------------------------- SLS
def test_sls_backtracking_matches_hand_computation() -> None:
    """f(w) = 2 w^2 at w = 1: g = 4, f(w - eta g) = 2 (1 - 4 eta)^2, and the Armijo condition
    f(w - eta g) <= f(w) - c eta g^2 (c = 0.1) holds iff eta <= 1.8 / 4 = 0.45. The trial step is
    eta_0 = 1 * 2^(1/500), then 0.9 eta_0, 0.9^2 eta_0, ... until eta <= 0.45."""
    w = torch.tensor([1.0], dtype=torch.float64, requires_grad=True)
    closure = quadratic_closure(w, torch.tensor([4.0], dtype=torch.float64))
    sls = optimizers.SLS([w])
    assert optimizers.requirements(sls) == {"loss", "closure"}
    eta0 = 2 ** (1 / 500)
    k = math.ceil(math.log(0.45 / eta0) / math.log(0.9))  # backtracks needed
    eta = eta0 * 0.9 ** k
    sls.step(closure, loss=closure(backward=True))
    assert w.item() == pytest.approx(1 - 4 * eta, rel=1e-12)
    assert sls.param_groups[0]["lr"] == pytest.approx(eta, rel=1e-12)
    assert sls.n_forwards == k + 1
    # Next mini-batch: eta * 2^(1/500) < 0.45 is accepted at once (the condition does not depend on w).
    w1 = w.item()
    sls.step(closure, loss=closure(backward=True))
    assert w.item() == pytest.approx(w1 * (1 - 4 * eta * eta0), rel=1e-12)
    assert sls.n_forwards == k + 2


def test_sls_without_loss_computes_it_with_the_closure() -> None:
    w = torch.tensor([1.0], dtype=torch.float64, requires_grad=True)
    sls = optimizers.SLS([w], reset_option=2, init_step_size=0.25)  # reset 2: every step starts at 0.25
    sls.step(quadratic_closure(w, torch.tensor([4.0], dtype=torch.float64)))
    assert w.item() == pytest.approx(0.0)  # 1 - 0.25 * 4, accepted at once
    assert sls.n_forwards == 2


def test_sls_fallback_after_100_backtracks() -> None:
    """If no trial satisfies Armijo, the reference takes a 1e-6 step and keeps the shrunk eta."""
    w = torch.tensor([1.0], dtype=torch.float64, requires_grad=True)
    a = torch.tensor([4.0], dtype=torch.float64)
    sls = optimizers.SLS([w])
    loss = quadratic_closure(w, a)(backward=True)
    sls.step(quadratic_closure(w, a, shift=10.0), loss=loss)  # every trial loss is 10 too high
    assert w.item() == pytest.approx(1 - 1e-6 * 4, rel=1e-12)
    assert sls.param_groups[0]["lr"] == pytest.approx(2 ** (1 / 500) * 0.9 ** 100, rel=1e-12)


def test_sls_skips_a_zero_gradient() -> None:
    w = torch.tensor([0.0], dtype=torch.float64, requires_grad=True)
    sls = optimizers.SLS([w])
    closure = quadratic_closure(w, torch.tensor([4.0], dtype=torch.float64))
    sls.step(closure, loss=closure(backward=True))
    assert w.item() == 0.0 and sls.n_forwards == 0


# --------------------------------------------------------------------------- every baseline config
@pytest.mark.parametrize("name", BASELINES)
def test_baseline_config_steps_and_resumes(name: str) -> None:
    """Three steps through the trainer's step protocol; a copy restored from the state after two
    steps makes the same third step (what a checkpoint resume needs)."""
    cfg = composed("dataset=digits", "model=small_cnn", f"optim={name}")
    torch.manual_seed(0)
    model = create_model("small_cnn", num_classes=10, in_channels=1, width=4)
    optimizer = build_optimizer(model, cfg["optim"])
    assert isinstance(optimizer, getattr(optimizers, cfg["optim"]["class_name"]))
    x, y = torch.randn(16, 1, 8, 8), torch.randint(0, 10, (16,))
    start = [p.detach().clone() for p in model.parameters()]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # adabound's deprecated add_ overload
        for _ in range(2):
            loss = classification_step(driver_for(optimizer), model, x, y)
            assert math.isfinite(loss.item())
        twin = copy.deepcopy(model)
        twin_opt = build_optimizer(twin, cfg["optim"])
        twin_opt.load_state_dict(copy.deepcopy(optimizer.state_dict()))
        for m, opt in ((model, optimizer), (twin, twin_opt)):
            torch.manual_seed(1)
            classification_step(driver_for(opt), m, x, y)
    assert any(not torch.equal(a, p) for a, p in zip(start, model.parameters()))
    for a, b in zip(model.parameters(), twin.parameters()):
        assert torch.allclose(a, b, rtol=1e-6, atol=1e-7)


def test_packaged_baselines_are_the_authors_classes() -> None:
    from adabelief_pytorch import AdaBelief
    from adabound import AdaBound
    from adamp import AdamP, SGDP

    ours = (optimizers.AdaBound, optimizers.AdaBelief, optimizers.AdamP, optimizers.SGDP)
    for cls, package in zip(ours, (AdaBound, AdaBelief, AdamP, SGDP)):   # checked, arithmetic unchanged
        assert issubclass(cls, package) and inspect.unwrap(cls.step) is inspect.unwrap(package.step)


# --------------------------------------------------------------------------- schedules
def _epoch_lrs(name: str, epochs: int, *overrides: str) -> list[float]:
    """The LR each epoch 1..epochs trains with, under the planned schedule."""
    cfg = planned("dataset=digits", "model=small_cnn", f"optim={name}", f"trainer.epochs={epochs}", *overrides)
    optimizer = build_optimizer(nn.Linear(2, 2), cfg["optim"])
    schedule = build_schedule(optimizer, epochs, 1, **cfg["schedule"])
    lrs = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "lr_scheduler.step() before optimizer.step()"
        for epoch in range(1, epochs + 1):
            lrs.append(optimizer.param_groups[0]["lr"])
            schedule.end_epoch(epoch)
    return lrs


def test_autodrop_multistep_baselines() -> None:
    lrs = _epoch_lrs("sgd_nesterov", 200, "schedule=multistep")  # CIFAR: x0.2 after epochs 60, 120, 160
    assert [lrs[i] for i in (0, 59, 60, 119, 120, 159, 160, 199)] == pytest.approx(
        [0.05, 0.05, 0.01, 0.01, 0.002, 0.002, 0.0004, 0.0004])
    lrs = _epoch_lrs("sgd_imagenet", 105, "schedule=multistep", "schedule.milestones=[30,60,90]", "schedule.gamma=0.1")
    assert [lrs[i] for i in (29, 30, 60, 90, 104)] == pytest.approx([0.1, 0.01, 0.001, 1e-4, 1e-4])


def test_step_and_cosine_schedules() -> None:
    lrs = _epoch_lrs("sgd", 250, "schedule=step")  # AdaS/RMSGD: x0.5 every 25 epochs
    assert [lrs[i] for i in (24, 25, 50, 249)] == pytest.approx([0.1, 0.05, 0.025, 0.1 * 0.5 ** 9])
    assert _epoch_lrs("sgd", 31, "schedule=step", "schedule.step_size=15")[15] == pytest.approx(0.05)
    lrs = _epoch_lrs("sgd", 100, "schedule=cosine")
    assert lrs[50] == pytest.approx(0.05) and lrs[0] == 0.1  # 0.1 * (1 + cos(pi/2)) / 2 after 50 epochs
    assert set(_epoch_lrs("sls", 5)) == {1.0}


def test_per_model_optimizer_values() -> None:
    """AutoDrop's WRN baseline uses lr 0.1 without Nesterov; its ResNets lr 0.05 with Nesterov."""
    for model, lr, nesterov in (("wrn28_10", 0.1, False), ("wrn40_10", 0.1, False), ("resnet18", 0.05, True)):
        cfg = planned("dataset=cifar10", f"model={model}", "optim=sgd_nesterov", "schedule=multistep")
        for hp in (cfg["optim"]["hparams"], cfg["roles"]["model"]["optim"]["hparams"]):
            assert (hp["lr"], hp["nesterov"], hp["weight_decay"]) == (lr, nesterov, 5e-4)
    # a command-line value wins over the per-model one; AdaS on VGG16 (with or without BN) starts at 5e-3
    assert planned("model=wrn28_10", "optim=sgd_nesterov", "optim.hparams.lr=0.2")["optim"]["hparams"]["lr"] == 0.2
    for model in ("vgg16_bn", "vgg16"):
        assert planned(f"model={model}", "optim=adas", "optim.hparams.beta=0.9")["optim"]["hparams"]["lr"] == 5e-3
    assert planned("model=resnet34", "optim=adas")["optim"]["hparams"]["lr"] == 0.03


# --------------------------------------------------------------------------- the CLI
@pytest.mark.slow
def test_every_baseline_runs_through_the_cli(bench) -> None:
    """One multirun over all baseline configs: a few steps each on digits (paper default LRs)."""
    overrides = [o for o in TINY if not o.startswith("optim.hparams.lr")]  # SLS has no lr hyper-parameter
    bench("hydra.mode=MULTIRUN", f"optim={','.join(BASELINES)}", *overrides, "trainer.epochs=1", "trainer.train_subset=128",
          "trainer.test_subset=64", env={"OMP_NUM_THREADS": "1"})
    records = [json.loads(p.read_text()) for p in (bench.results / "runs").glob("*.json")]
    status = {r["optim"]: r["status"] for r in records}
    assert status == {name: "finished" for name in BASELINES}
    assert all(math.isfinite(r["last"]["train_loss"]) for r in records)
