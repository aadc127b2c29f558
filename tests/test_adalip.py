"""AdaLip family: analytic fixed point, reduction to the base optimizers, hand computations,
per-tensor independence, Lemma 2 / Lemma 5, resume."""
from __future__ import annotations

import copy
import math

import pytest
import torch

from models import create_model
from optimizers import AdaLip, AdaLipU, AdamLip, AdamLipU, RMSLip, RMSLipU
from tests.conftest import TINY

LIPS = [AdaLip, AdamLip, RMSLip, AdaLipU, AdamLipU, RMSLipU]


def scale_of(opt: torch.optim.Optimizer, p: torch.Tensor) -> float:
    return float(opt.state[p]["S"])


def _quadratic_rates(cls, c: float, steps: int, L: float = 10.0, alpha0: float = 0.01) -> list[float]:
    w = torch.nn.Parameter(torch.tensor([1.0], dtype=torch.float64))
    opt = cls([w], lr=alpha0, c=c)
    rates = []
    for _ in range(steps):
        w.grad = L * w.detach().clone()
        opt.step()
        rates.append(opt.effective_lrs()[0])
    return rates


def test_noiseless_quadratic_fixed_point() -> None:
    """f = L/2 w^2, constant alpha_0, c -> 0: A_t -> sqrt(alpha_0 / L) = 0.031623 for L = 10, alpha_0 = 0.01
    (notes/adalip.md 1.10 item 2: the ratio is 1 / (L A_(t-1)), so S* = (L alpha_0)^(-1/2))."""
    rates = _quadratic_rates(AdaLip, c=0.0, steps=60)
    assert rates[-1] == pytest.approx(math.sqrt(0.01 / 10.0), abs=1e-9)
    assert abs(rates[-1] - 0.031623) < 1e-6
    with_c = _quadratic_rates(AdaLip, c=1e-8, steps=60)  # c freezes the rate once |g| ~ c
    assert abs(with_c[25] - 0.031623) < 1e-6 and with_c[-1] < 0.9 * with_c[25]


def test_noiseless_quadratic_fixed_point_of_the_update_variant() -> None:
    """AdaLip-U: ratio A / |A (1 + alpha_0 L) - alpha_0|, so A* = 2 alpha_0 / (1 + alpha_0 L) (derived)."""
    rates = _quadratic_rates(AdaLipU, c=0.0, steps=80)
    assert rates[-1] == pytest.approx(2 * 0.01 / 1.1, abs=1e-9)


def _train(opt_factory, steps: int = 6, seed: int = 0) -> list[torch.Tensor]:
    torch.manual_seed(seed)
    model = create_model("small_cnn", num_classes=10, in_channels=1, width=4).double()
    opt = opt_factory(model.parameters())
    generator = torch.Generator().manual_seed(1)
    for _ in range(steps):
        x = torch.randn(8, 1, 8, 8, generator=generator, dtype=torch.float64)
        y = torch.randint(0, 10, (8,), generator=generator)
        opt.zero_grad()
        torch.nn.functional.cross_entropy(model(x), y).backward()
        opt.step()
    return [p.detach().clone() for p in model.parameters()]


@pytest.mark.parametrize("first_step", ["code", "paper"])
@pytest.mark.parametrize("lip, base", [
    (lambda p, **k: AdaLip(p, lr=0.1, **k), lambda p: torch.optim.SGD(p, lr=0.1, foreach=False)),
    (lambda p, **k: AdamLip(p, lr=0.01, eps=1e-7, eps_placement="outside", **k),
     lambda p: torch.optim.Adam(p, lr=0.01, eps=1e-7, foreach=False)),
    (lambda p, **k: RMSLip(p, lr=0.01, alpha=0.9, eps=1e-7, eps_placement="outside", **k),
     lambda p: torch.optim.RMSprop(p, lr=0.01, alpha=0.9, eps=1e-7, foreach=False)),
])
def test_gamma_one_is_exactly_the_base_optimizer(lip, base, first_step) -> None:
    """gamma = 1 keeps S = S_0 = 1, so each *Lip equals its base bit for bit (same inner settings)."""
    ours = _train(lambda p: lip(p, gamma=1.0, first_step=first_step))
    theirs = _train(base)
    for a, b in zip(ours, theirs):
        assert torch.equal(a, b)


def test_hand_computation_and_first_step() -> None:
    """S_1 = gamma (g_0 = 0); S_2 = gamma^2 + (1-gamma) |g_1| / (|g_2 - g_1| + c); code vs paper step 1."""
    g1, g2 = torch.tensor([3.0, 4.0]), torch.tensor([0.0, 1.0])
    for first_step, a1 in (("code", 0.1), ("paper", 0.08)):
        w = torch.nn.Parameter(torch.zeros(2))
        opt = AdaLip([w], lr=0.1, first_step=first_step)
        w.grad = g1
        opt.step()
        assert scale_of(opt, w) == pytest.approx(0.8)
        torch.testing.assert_close(w.detach(), -a1 * g1)
        w.grad = g2
        opt.step()
        s2 = 0.64 + 0.2 * 5.0 / (math.sqrt(9 + 9) + 1e-8)
        assert scale_of(opt, w) == pytest.approx(s2)
        torch.testing.assert_close(w.detach(), -a1 * g1 - 0.1 * s2 * g2)


def test_adam_and_rms_updates_by_hand() -> None:
    """Step 2 of AdamLip/RMSLip with eps inside the sqrt (code) against a direct computation."""
    g1, g2 = torch.tensor([1.0, -2.0]), torch.tensor([0.5, 1.0])
    s2 = 0.64 + 0.2 * float(g1.norm()) / (float((g2 - g1).norm()) + 1e-8)
    w = torch.nn.Parameter(torch.zeros(2))
    opt = AdamLip([w], lr=0.01)
    for g in (g1, g2):
        w.grad = g
        opt.step()
    m = 0.1 * 0.9 * g1 + 0.1 * g2
    v = 0.001 * 0.999 * g1 ** 2 + 0.001 * g2 ** 2
    mhat, vhat = m / (1 - 0.9 ** 2), v / (1 - 0.999 ** 2)
    step1 = 0.01 * g1 / (g1.abs() ** 2 + 1e-8).sqrt()  # m_hat = g1, v_hat = g1^2 at t = 1
    torch.testing.assert_close(w.detach(), -step1 - 0.01 * s2 * mhat / (vhat + 1e-8).sqrt())
    w = torch.nn.Parameter(torch.zeros(2))
    opt = RMSLip([w], lr=0.01)
    for g in (g1, g2):
        w.grad = g
        opt.step()
    v1 = 0.001 * g1 ** 2
    v2 = 0.999 * v1 + 0.001 * g2 ** 2
    torch.testing.assert_close(w.detach(), -0.01 * g1 / (v1 + 1e-8).sqrt() - 0.01 * s2 * g2 / (v2 + 1e-8).sqrt())


def test_update_variant_uses_applied_updates() -> None:
    """AdaLip-U: ratio |u_1| / (|u_hat_2 - u_1| + c) with u_1 = -alpha g_1 (code step 1), u_hat_2 = -alpha g_2."""
    g1, g2 = torch.tensor([3.0, 4.0]), torch.tensor([0.0, 1.0])
    w = torch.nn.Parameter(torch.zeros(2))
    opt = AdaLipU([w], lr=0.1)
    for g in (g1, g2):
        w.grad = g
        opt.step()
    expected = 0.64 + 0.2 * 0.5 / (0.1 * math.sqrt(18) + 1e-8)
    assert scale_of(opt, w) == pytest.approx(expected)
    torch.testing.assert_close(opt.state[w]["prev"], -0.1 * expected * g2)


@pytest.mark.parametrize("cls", LIPS)
def test_per_tensor_states_are_independent(cls) -> None:
    """A tensor's trajectory does not depend on the other tensors optimised with it."""
    generator = torch.Generator().manual_seed(0)
    grads_a = [torch.randn(5, generator=generator) for _ in range(6)]
    grads_b = [100 * torch.randn(3, generator=generator) for _ in range(6)]
    a1, a2, b = (torch.nn.Parameter(torch.ones(n)) for n in (5, 5, 3))
    together, alone = cls([a1, b], lr=0.01), cls([a2], lr=0.01)
    for ga, gb in zip(grads_a, grads_b):
        a1.grad, b.grad, a2.grad = ga.clone(), gb, ga.clone()
        together.step()
        alone.step()
    assert torch.equal(a1.detach(), a2.detach()) and scale_of(together, a1) == scale_of(alone, a2)
    assert scale_of(together, a1) != scale_of(together, b)


def test_group_granularity_shares_one_scale() -> None:
    """granularity=group: one S per parameter group, from the norms over the whole group."""
    a, b = torch.nn.Parameter(torch.zeros(2)), torch.nn.Parameter(torch.zeros(1))
    opt = AdaLip([a, b], lr=0.1, granularity="group")
    for ga, gb in ((torch.tensor([1.0, 2.0]), torch.tensor([2.0])), (torch.tensor([0.0, 1.0]), torch.tensor([1.0]))):
        a.grad, b.grad = ga, gb
        opt.step()
    expected = 0.64 + 0.2 * 3.0 / (math.sqrt(1 + 1 + 1) + 1e-8)
    assert scale_of(opt, a) == pytest.approx(expected) and scale_of(opt, b) == pytest.approx(expected)


@pytest.mark.parametrize("c", [1e-8, 0.05])
def test_lemma2_bounds_on_random_bounded_gradients(c: float) -> None:
    """M (1 - gamma) / (2G + c) <= S_t <= 1 + G / c for gradients with M <= |g_t| <= G (t >= 2)."""
    G, M, gamma = 2.0, 0.1, 0.8
    generator = torch.Generator().manual_seed(0)
    w = torch.nn.Parameter(torch.zeros(10))
    opt = AdaLip([w], lr=0.01, c=c, gamma=gamma)
    previous, highest = None, 0.0
    for t in range(1, 400):
        if previous is not None and t % 7 == 0:
            g = previous.clone()  # repeated gradient: the ratio peaks at |g| / c
        else:
            direction = torch.randn(10, generator=generator)
            g = direction / direction.norm() * (M + (G - M) * torch.rand(1, generator=generator))
        w.grad = g
        opt.step()
        s = scale_of(opt, w)
        if t >= 2:
            assert M * (1 - gamma) / (2 * G + c) <= s <= 1 + G / c
        highest, previous = max(highest, s), g
    assert highest > 1.0  # the repeated gradients did push S up


def test_lemma5_theoretical_c_gives_non_increasing_rates() -> None:
    """With alpha_0 / sqrt(t) and the c_t of Eq. A.3, A_t <= A_(t-1) for t >= 2 (Lemma 5)."""
    generator = torch.Generator().manual_seed(0)
    w = torch.nn.Parameter(torch.zeros(6, dtype=torch.float64))  # equality when the bound binds: float64
    opt = AdaLip([w], lr=0.1, lr_schedule="inv_sqrt", c_schedule="theoretical", first_step="paper")
    rates = []
    for _ in range(60):
        w.grad = torch.randn(6, generator=generator, dtype=torch.float64)
        opt.step()
        rates.append(opt.effective_lrs()[0])
    assert all(b <= a * (1 + 1e-9) for a, b in zip(rates[1:], rates[2:]))
    assert float(opt.state[w]["c_t"]) > 1e-8  # the bound was active
    free = AdaLip([torch.nn.Parameter(torch.zeros(1))], lr=0.1, lr_schedule="inv_sqrt")
    assert free.defaults["c_schedule"] == "constant"


@pytest.mark.parametrize("cls", LIPS)
def test_state_dict_round_trip(cls) -> None:
    """Resuming from state_dict continues exactly like the uninterrupted optimizer."""
    generator = torch.Generator().manual_seed(0)
    grads = [torch.randn(4, generator=generator) for _ in range(8)]
    w = torch.nn.Parameter(torch.ones(4))
    opt = cls([w], lr=0.01)
    for g in grads[:4]:
        w.grad = g.clone()
        opt.step()
    w2 = torch.nn.Parameter(w.detach().clone())
    opt2 = cls([w2], lr=0.01)
    opt2.load_state_dict(copy.deepcopy(opt.state_dict()))
    for g in grads[4:]:
        w.grad, w2.grad = g.clone(), g.clone()
        opt.step()
        opt2.step()
    assert torch.equal(w.detach(), w2.detach())


def test_bad_hyperparameters_are_rejected() -> None:
    p = [torch.nn.Parameter(torch.zeros(1))]
    for kwargs in ({"gamma": 1.5}, {"first_step": "x"}, {"lr_schedule": "cosine"}, {"granularity": "layerwise"}):
        with pytest.raises(ValueError):
            AdaLip(p, **kwargs)
    with pytest.raises(ValueError):
        AdamLip(p, eps_placement="middle")


def test_per_layer_switch_groups_kernel_and_bias() -> None:
    """optim.group_by=module + granularity=group: one S per layer (kernel and bias share it)."""
    from bench.optim_factory import build_optimizer

    model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.ReLU(), torch.nn.Linear(4, 2))
    cfg = {"name": "adalip", "class_name": "AdaLip", "group_by": "module",
           "hparams": {"lr": 0.1, "granularity": "group"}}
    opt = build_optimizer(model, cfg)
    assert [len(g["params"]) for g in opt.param_groups] == [2, 2]
    for _ in range(3):
        opt.zero_grad()
        model(torch.randn(5, 3)).square().sum().backward()
        opt.step()
    s = [scale_of(opt, p) for p in model.parameters()]
    assert s[0] == s[1] and s[2] == s[3] and s[0] != s[2]


@pytest.mark.slow
def test_adalip_family_in_a_run(bench) -> None:
    """optim=adamlip_u trains through the CLI and logs the per-tensor effective LRs each epoch."""
    import json

    bench(*TINY, "optim=adamlip_u", "optim.hparams.lr=0.003")
    (path,) = (bench.results / "runs").glob("*.json")
    record = json.loads(path.read_text())
    assert record["status"] == "finished" and record["config"]["optim"]["class_name"] == "AdamLipU"
    lr_eff = record["history"][-1]["optim"]["lr_eff"]
    assert len(lr_eff) == 8 and all(v > 0 for v in lr_eff) and len(set(lr_eff)) > 1
