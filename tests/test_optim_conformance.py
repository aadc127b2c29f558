"""Every optimizer config behaves like a ``torch.optim`` optimizer (issue 11, section A).

Parametrised over every file in ``conf/optim/`` (globbed, so new or removed configs need no edit
here), each built by the project's factory ``bench.optim_factory.build_optimizer`` on a small conv
net (AdaS/RMSGD need conv weights). The checks follow what PyTorch checks of its own optimizers
(``torch/testing/_internal/common_optimizers.py``): state_dict round trip through
``torch.save``/``torch.load(weights_only=True)`` continuing bit for bit; several parameter groups
with different hyper-parameters; parameters without a gradient; frozen parameters; float64;
``copy.deepcopy``/pickling of the optimizer with its state; ``add_param_group``; ``zero_grad`` then
``step``; a torch LR scheduler changing ``group["lr"]``; invalid hyper-parameters; a NaN gradient.

Documented refusals (each asserted here, so a silent acceptance fails the test):
* ``add_param_group``: AdaS/RMSGD (per-layer LRs follow the layer order fixed at construction) and
  DoG/LDoG after their first step (distances are measured from every group's first iterate)
  raise ``ValueError`` at the call.
* a different LR per group: D-Adapt SGD/Adam, Prodigy, PS-DA-SGD (one shared d; groups may only
  differ by lr 0) raise ``ValueError`` at construction; so does D-Adapt SGD for a different weight
  decay per group (``dadaptation`` 3.2 applies the first group's to all).
* a torch LR scheduler on an optimizer without ``lr`` (SPS, PS-SPS: the step size is the method;
  COCOB: no step size): torch's scheduler refuses at its construction (``KeyError: 'lr'``).

A config's ``schedule`` block (moving to its own config group) is ignored: the schedule is not the
optimizer, and a torch ``StepLR`` built here stands for every schedule.
"""
from __future__ import annotations

import copy
import io
import math
import pickle
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch
from omegaconf import OmegaConf
from torch import nn

from bench.errors import BenchError
from bench.optim_factory import build_optimizer, optimizer_class, parameter_groups
from optimizers.protocol import CLOSURE, LOSS, requirements

CONF = Path(__file__).resolve().parent.parent / "conf" / "optim"
NAMES = sorted(p.stem for p in CONF.glob("*.yaml"))
IGNORED_KEYS = ("defaults", "schedule")


def load_config(name: str, folder: Path = CONF) -> dict[str, Any]:
    """``conf/optim/<name>.yaml`` (or ``folder/<name>.yaml``) with its defaults list merged (parents first,
    then ``_self_``); entries naming other config groups (``- /schedule: step``) are not the optimizer and
    are skipped."""
    raw = OmegaConf.load(folder / f"{name}.yaml")
    defaults = [entry for entry in raw.get("defaults", []) if isinstance(entry, str)] or ["_self_"]
    if "_self_" not in defaults:
        defaults.append("_self_")
    merged, own = OmegaConf.create(), {k: v for k, v in raw.items() if k not in IGNORED_KEYS}
    for entry in defaults:
        merged = OmegaConf.merge(merged, own if entry == "_self_" else load_config(entry, folder))
    return {k: v for k, v in OmegaConf.to_container(merged, resolve=True).items() if k not in IGNORED_KEYS}


@pytest.fixture(autouse=True)
def _quiet_and_one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")   # AdaBound's deprecated add_ overload, DoG's lr warning
        yield
    torch.set_num_threads(threads)


def small_net(dtype: torch.dtype = torch.float32) -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(),
                         nn.Conv2d(4, 6, 3, stride=2), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                         nn.Linear(6, 3)).to(dtype)


def batches(n: int, dtype: torch.dtype = torch.float32) -> list[tuple[torch.Tensor, torch.Tensor]]:
    g = torch.Generator().manual_seed(1)
    return [(torch.randn(8, 1, 8, 8, generator=g, dtype=dtype), torch.randint(0, 3, (8,), generator=g))
            for _ in range(n)]


def train_step(opt: torch.optim.Optimizer, model: nn.Module, batch: tuple, *, backward: bool = True) -> None:
    """One step as ``bench.trainer`` takes it (loss and closure when the optimizer requires them)."""
    x, y = batch

    def closure(backward: bool = True) -> torch.Tensor:
        loss = nn.functional.cross_entropy(model(x), y)
        if backward and do_backward:
            loss.backward()
        return loss.detach()

    do_backward = backward
    opt.zero_grad(set_to_none=True)
    loss = closure(backward=True)
    needs = requirements(opt)
    kwargs: dict[str, Any] = {}
    if LOSS in needs:
        kwargs["loss"] = loss
    if CLOSURE in needs:
        kwargs["closure"] = closure
    opt.step(**kwargs)


def run(opt: torch.optim.Optimizer, model: nn.Module, data: list, epoch_every: int = 2, start: int = 0) -> None:
    """Steps over ``data``; ``end_epoch`` (AdaS/RMSGD's rule) after every ``epoch_every`` steps."""
    for i, batch in enumerate(data, start=start + 1):
        train_step(opt, model, batch)
        if i % epoch_every == 0 and callable(end_epoch := getattr(opt, "end_epoch", None)):
            end_epoch(i // epoch_every)


def build(name: str, model: nn.Module, **changes: Any) -> torch.optim.Optimizer:
    cfg = load_config(name)
    hparams = {**cfg["hparams"], **changes.pop("hparams", {})}
    return build_optimizer(model, {**cfg, **changes, "hparams": hparams})


def flat(model: nn.Module) -> torch.Tensor:
    return torch.cat([p.detach().reshape(-1) for p in model.parameters()])


def assert_same_parameters(a: nn.Module, b: nn.Module) -> None:
    for (name, p), q in zip(a.named_parameters(), b.parameters()):
        assert torch.equal(p, q), f"{name} differs"


# ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", NAMES)
def test_state_dict_round_trip_continues_bit_for_bit(name: str) -> None:
    model, data = small_net(), batches(8)
    opt = build(name, model)
    run(opt, model, data[:4])
    buffer = io.BytesIO()
    torch.save(opt.state_dict(), buffer)
    buffer.seek(0)
    saved = torch.load(buffer, weights_only=True)
    twin = copy.deepcopy(model)
    resumed = build(name, twin)
    resumed.load_state_dict(saved)
    run(opt, model, data[4:], start=4)
    run(resumed, twin, data[4:], start=4)
    assert_same_parameters(model, twin)
    if callable(epoch_log := getattr(opt, "epoch_log", None)):   # logged values continue too
        assert resumed.epoch_log() == epoch_log()


@pytest.mark.parametrize("name", NAMES)
def test_deepcopy_and_pickle_keep_every_attribute(name: str) -> None:
    model, data = small_net(), batches(6)
    opt = build(name, model)
    run(opt, model, data[:3])
    twins = [copy.deepcopy((model, opt)), pickle.loads(pickle.dumps((model, opt)))]
    public = {key for key in vars(opt) if not key.startswith("_")}
    for twin_model, twin_opt in twins:
        assert {key for key in vars(twin_opt) if not key.startswith("_")} == public
    run(opt, model, data[3:], start=3)
    for twin_model, twin_opt in twins:
        run(twin_opt, twin_model, data[3:], start=3)
        assert_same_parameters(model, twin_model)


@pytest.mark.parametrize("name", NAMES)
def test_parameter_groups_with_their_own_weight_decay(name: str) -> None:
    """BN and biases exempt from weight decay (a second group): refused at construction with one
    clear error, or every group keeps its own value and training steps."""
    cfg = load_config(name)
    hparams = dict(cfg["hparams"])
    if "weight_decay" in hparams:
        hparams["weight_decay"] = 1e-2
    model = small_net()
    try:
        opt = build(name, model, hparams=hparams, no_weight_decay=["bn", "bias"])
    except BenchError as exc:
        assert isinstance(exc.__cause__, ValueError)
        return
    assert len(opt.param_groups) == 2
    before = flat(model)
    run(opt, model, batches(3))
    after = flat(model)
    assert torch.isfinite(after).all() and not torch.equal(before, after)
    if "weight_decay" in hparams:
        assert [g["weight_decay"] for g in opt.param_groups] == [1e-2, 0.0]


@pytest.mark.parametrize("name", NAMES)
def test_a_different_lr_per_group_works_or_is_refused_at_construction(name: str) -> None:
    cfg = load_config(name)
    hparams = cfg["hparams"]
    model = small_net()
    cls = optimizer_class(name, cfg["class_name"])
    groups = parameter_groups(model, ["bn", "bias"])
    lr = hparams.get("lr", 1.0)
    groups[1]["lr"] = lr / 2
    try:
        opt = cls(groups, **hparams)
    except ValueError:
        return
    if callable(bind := getattr(opt, "bind_model", None)):
        bind(model)
    run(opt, model, batches(3))
    assert torch.isfinite(flat(model)).all()


@pytest.mark.parametrize("name", NAMES)
def test_parameters_without_gradient_and_frozen_parameters_do_not_move(name: str) -> None:
    model = small_net()
    frozen = model[0].weight
    frozen.requires_grad_(False)            # frozen before construction: not in any group
    opt = build(name, model)
    skipped = model[7].bias                 # in a group, but without a gradient in these steps
    frozen_before, skipped_before = frozen.detach().clone(), skipped.detach().clone()
    for i, batch in enumerate(batches(3), start=1):
        opt.zero_grad(set_to_none=True)
        x, y = batch
        loss = nn.functional.cross_entropy(model(x), y)
        loss.backward()
        skipped.grad = None

        def closure(backward: bool = True) -> torch.Tensor:
            out = nn.functional.cross_entropy(model(x), y)
            if backward:
                out.backward()
                skipped.grad = None
            return out.detach()

        needs = requirements(opt)
        opt.step(**({"loss": loss.detach()} if LOSS in needs else {}),
                 **({"closure": closure} if CLOSURE in needs else {}))
    assert torch.equal(frozen, frozen_before)
    assert torch.equal(skipped, skipped_before)
    assert torch.isfinite(flat(model)).all()


@pytest.mark.parametrize("name", NAMES)
def test_float64_parameters_stay_float64(name: str) -> None:
    model = small_net(torch.float64)
    opt = build(name, model)
    before = flat(model)
    run(opt, model, batches(4, torch.float64))
    assert all(p.dtype == torch.float64 for p in model.parameters())
    after = flat(model)
    assert torch.isfinite(after).all() and not torch.equal(before, after)
    for state in opt.state.values():
        for value in state.values():
            if isinstance(value, torch.Tensor) and value.is_floating_point() and value.dim() > 0:
                assert value.dtype == torch.float64


@pytest.mark.parametrize("name", NAMES)
def test_add_param_group_updates_the_new_group_or_is_refused_at_the_call(name: str) -> None:
    model = small_net()
    head = list(model[7].parameters())
    for p in head:
        p.requires_grad_(False)
    opt = build(name, model)
    run(opt, model, batches(2))
    for p in head:
        p.requires_grad_(True)
    try:
        opt.add_param_group({"params": head})
    except ValueError:
        return
    before = [p.detach().clone() for p in head]
    run(opt, model, batches(3), start=2)
    assert all(not torch.equal(p, b) for p, b in zip(head, before)), "the added group never moved"
    assert torch.isfinite(flat(model)).all()


@pytest.mark.parametrize("name", NAMES)
def test_step_after_zero_grad_moves_nothing(name: str) -> None:
    model = small_net()
    opt = build(name, model)
    run(opt, model, batches(2))
    before = flat(model)
    train_step(opt, model, batches(1)[0], backward=False)   # loss computed, no gradient at all
    assert all(p.grad is None for p in model.parameters())
    assert torch.equal(flat(model), before)


@pytest.mark.parametrize("name", NAMES)
def test_a_torch_lr_scheduler_changes_the_steps(name: str) -> None:
    """StepLR(gamma=0.5) after the first step: the trajectory differs from the unscheduled one."""
    models = [small_net(), small_net()]
    opts = [build(name, m) for m in models]
    if "lr" not in opts[0].param_groups[0]:
        with pytest.raises(KeyError):   # documented refusal: no learning rate to schedule
            torch.optim.lr_scheduler.StepLR(opts[1], step_size=1, gamma=0.5)
        return
    scheduler = torch.optim.lr_scheduler.StepLR(opts[1], step_size=1, gamma=0.5)
    data = batches(4)
    for opt, model in zip(opts, models):
        run(opt, model, data[:2])
    before = [g["lr"] for g in opts[1].param_groups]
    scheduler.step()
    assert [g["lr"] for g in opts[1].param_groups] == [0.5 * lr for lr in before]
    for opt, model in zip(opts, models):
        run(opt, model, data[2:], start=2)
    assert not torch.equal(flat(models[0]), flat(models[1])), "the scheduled group['lr'] had no effect"


INVALID: dict[str, list[Any]] = {
    "lr": [-1.0], "weight_decay": [-1e-4], "eps": [-1e-8], "momentum": [-0.5], "d0": [-1e-6],
    "init_step_size": [-1.0], "betas": [[1.0, 0.999], [0.9, 1.5], [-0.1, 0.999]], "beta2": [1.0],
    "scale_eps": [-1e-8], "beta": [1.0], "c": [-0.1], "rho": [-0.05],
}


def invalid_cases() -> list[tuple[str, str, Any]]:
    return [(name, key, value) for name in NAMES for key, values in INVALID.items()
            if key in load_config(name)["hparams"] for value in values]


@pytest.mark.parametrize(("name", "key", "value"), invalid_cases())
def test_invalid_hyper_parameters_are_refused_at_construction(name: str, key: str, value: Any) -> None:
    """A ValueError from the class, reported by the factory as one ``error:`` line (BenchError)."""
    with pytest.raises(BenchError, match=f"optimizer {name}: invalid hyper-parameters") as info:
        build(name, small_net(), hparams={key: value})
    assert isinstance(info.value.__cause__, ValueError)


def diverged(opt: torch.optim.Optimizer, model: nn.Module, batch: tuple) -> bool:
    """What ``bench.trainer`` checks: a non-finite loss or a non-finite estimated learning rate."""
    with torch.no_grad():
        loss = nn.functional.cross_entropy(model(batch[0]), batch[1])
    estimate: Callable[[], float | None] | None = getattr(opt, "estimated_lr", None)
    lr = estimate() if estimate else None
    return not math.isfinite(float(loss)) or (lr is not None and not math.isfinite(lr))


@pytest.mark.parametrize("name", NAMES)
def test_a_nan_gradient_is_skipped_or_shows_as_divergence(name: str) -> None:
    """A NaN gradient never raises (a crash records the run as failed): the step either leaves the
    parameters as they were or the run reads as diverged."""
    model = small_net()
    opt = build(name, model)
    data = batches(3)
    run(opt, model, data[:2])
    before = flat(model)
    x, y = data[2]

    def closure(backward: bool = True) -> torch.Tensor:
        out = nn.functional.cross_entropy(model(x), y)
        if backward:
            out.backward()
            model[3].weight.grad[0].fill_(float("nan"))
        return out.detach()

    opt.zero_grad(set_to_none=True)
    loss = closure()
    needs = requirements(opt)
    opt.step(**({"loss": loss} if LOSS in needs else {}), **({"closure": closure} if CLOSURE in needs else {}))
    assert torch.equal(flat(model), before) or diverged(opt, model, data[0])
