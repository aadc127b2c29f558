"""PS-SPS, PS-DA-SGD (reconstructions, notes/ps-lrfree.md) and SPS against their specification.

Oracles: ``dadaptation.DAdaptSGD`` (P1), the invariances the paper states (P2, Eqs. 9-11), a naive
conversion that the paper says fails (P3, written out here), and hand computations of SPS.
"""
from __future__ import annotations

import math

import dadaptation
import pytest
import torch
from torch import nn

from optimizers import PSDASGD, PSSPS, SPS
from optimizers.param_scaling import AdamScaling, Constant, Multiplied, NoScaling


pytestmark = pytest.mark.usefixtures("one_thread")


# ----------------------------------------------------------------------------------------- helpers
def small_model(dtype: torch.dtype = torch.float64) -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 6 * 6, 10)).to(dtype)


def batches(n: int, dtype: torch.dtype = torch.float64) -> list[tuple[torch.Tensor, torch.Tensor]]:
    generator = torch.Generator().manual_seed(1)
    return [(torch.randn(16, 1, 8, 8, generator=generator, dtype=dtype),
             torch.randint(0, 10, (16,), generator=generator)) for _ in range(n)]


def train(model: nn.Module, optimizer: torch.optim.Optimizer, data: list, pass_loss: bool = False) -> nn.Module:
    for inputs, targets in data:
        optimizer.zero_grad()
        loss = nn.functional.cross_entropy(model(inputs), targets)
        loss.backward()
        if pass_loss:
            optimizer.step(loss=loss.detach())
        else:
            optimizer.step()
    return model


@torch.no_grad()
def max_relative_difference(a: nn.Module, b: nn.Module) -> float:
    return max(float((p - q).abs().max() / p.abs().max()) for p, q in zip(a.parameters(), b.parameters()))


# ------------------------------------------------------------------------------- P1 (PS-DA-SGD)
# float64: the 1e-7. float32: PS-DA-SGD updates z in place (z - lambda g) where the package
# recomputes x0 - s, which rounds differently by a few float32 ulps over 100 steps.
@pytest.mark.parametrize("dtype, tolerance", [(torch.float64, 1e-7), (torch.float32, 4e-6)])
@pytest.mark.parametrize("momentum", [0.0, 0.9])
def test_p1_unit_scaling_reproduces_dadapt_sgd(dtype: torch.dtype, tolerance: float, momentum: float) -> None:
    data = batches(100, dtype)
    reference = small_model(dtype)
    train(reference, dadaptation.DAdaptSGD(reference.parameters(), lr=1.0, momentum=momentum, d0=1e-6), data)
    ours = small_model(dtype)
    optimizer = PSDASGD(ours.parameters(), lr=1.0, momentum=momentum, d0=1e-6, scaling="none")
    train(ours, optimizer, data)
    assert max_relative_difference(reference, ours) <= tolerance
    assert max_relative_difference(small_model(dtype), ours) > 1e-3  # it did train


# ------------------------------------------------------------------------------- P2 (PS-DA-SGD)
def test_p2_constant_factor_on_all_scales_changes_no_update() -> None:
    data = batches(60)
    base, scaled = small_model(), small_model()
    train(base, PSDASGD(base.parameters(), scaling=AdamScaling()), data)
    train(scaled, PSDASGD(scaled.parameters(), scaling=Multiplied(AdamScaling(), lambda k: 3.0)), data)
    assert max_relative_difference(base, scaled) <= 1e-9
    assert max_relative_difference(small_model(), base) > 1e-5  # it did train


def test_p2_shrinking_uniform_scale_equals_no_scaling() -> None:
    """alpha_k = c_k * 1 with c_k decreasing (notes' P2): the maximum-scale-ratio correction undoes it."""
    data = batches(60)
    base, scaled = small_model(), small_model()
    train(base, PSDASGD(base.parameters(), scaling="none"), data)
    train(scaled, PSDASGD(scaled.parameters(), scaling=Multiplied(NoScaling(), lambda k: 5.0 * 0.97 ** k)), data)
    assert max_relative_difference(base, scaled) <= 1e-9


# ------------------------------------------------------------------------------- P3 (PS-DA-SGD)
# Coordinate 0 gets a large gradient for STOP steps and then none ("converges early"), so its Adam
# scale collapses; the other coordinates keep noisy gradients of a quadratic. The property: their
# step size lambda_k (the estimated learning rate) does not collapse with it.
N, STOP, STEPS, BETA2 = 10, 20, 400, 0.9  # beta2 0.9: a fast second moment, so alpha_0 collapses soon


def early_converging_gradients() -> list[torch.Tensor]:
    """Gradients as a function of the step only (the quadratic's curvature term is left out)."""
    generator = torch.Generator().manual_seed(0)
    grads = []
    for k in range(STEPS):
        g = torch.randn(N, generator=generator, dtype=torch.float64)
        g[0] = 10.0 if k < STOP else 0.0
        grads.append(g)
    return grads


def naive_ps_dasgd_lambdas(grads: list[torch.Tensor], d0: float = 1e-6, eps: float = 1e-8) -> list[float]:
    """The conversion the paper warns about: Alg. 1's substitution g -> alpha^-1 g applied to D-Adapt
    SGD as is, so its denominator ||g_0|| becomes ||alpha_k^-1 g_0|| in the current scale."""
    v, s, numerator, d, lambdas = torch.zeros(N, dtype=torch.float64), torch.zeros(N, dtype=torch.float64), 0.0, d0, []
    for k, g in enumerate(grads):
        v = BETA2 * v + (1 - BETA2) * g * g
        inv_alpha = ((v / (1 - BETA2 ** (k + 1))).sqrt() + eps).rsqrt()
        lam = d / float((grads[0] * inv_alpha).norm())
        numerator += lam * float((g * inv_alpha) @ s)
        s += lam * g * inv_alpha
        d = max(d, 2 * numerator / float(s.norm()))
        lambdas.append(lam)
    return lambdas


def ps_dasgd_lambdas(grads: list[torch.Tensor]) -> list[float]:
    param = nn.Parameter(torch.zeros(N, dtype=torch.float64))
    optimizer, lambdas = PSDASGD([param], beta2=BETA2), []
    for g in grads:
        param.grad = g.clone()
        optimizer.step()
        lambdas.append(optimizer.estimated_lr())
    return lambdas


def keeps_training(lambdas: list[float]) -> bool:
    """After the collapse, the step size ends within 10x of its largest value."""
    return lambdas[-1] >= 0.1 * max(lambdas[STOP:])


def test_p3_one_collapsing_scale_does_not_stop_the_others() -> None:
    grads = early_converging_gradients()
    naive = naive_ps_dasgd_lambdas(grads)
    assert not keeps_training(naive), "the naive conversion should stall (the paper's warning)"
    assert naive[-1] < 1e-3 * max(naive[STOP:])
    assert keeps_training(ps_dasgd_lambdas(grads))


# ------------------------------------------------------------------------------- PS-SPS and SPS
def linear_problem() -> tuple[nn.Parameter, torch.Tensor, float]:
    """A parameter with a fixed gradient and loss: f(w) = 3 + <a, w - w0>."""
    param = nn.Parameter(torch.tensor([1.0, -2.0, 0.5, 4.0], dtype=torch.float64))
    param.grad = torch.tensor([0.3, -1.2, 2.0, 0.01], dtype=torch.float64)
    return param, param.grad.clone(), 3.0


def one_step(optimizer_class: type, **hparams) -> torch.Tensor:
    param, _, loss = linear_problem()
    start = param.detach().clone()
    optimizer_class([param], **hparams).step(loss=torch.tensor(loss))
    return param.detach() - start


def naive_scaled_sps_update(alpha_sq: float, c: float = 0.5) -> torch.Tensor:
    """Eqs. 9-11: SPS with g replaced by alpha^-2 g everywhere."""
    _, g, loss = linear_problem()
    direction = g / alpha_sq
    return -(loss / (c * float(direction @ direction))) * direction


def test_eq9_11_naive_scaled_sps_depends_on_a_scalar_alpha_ps_sps_does_not() -> None:
    alphas_sq = [0.25, 1.0, 4.0]
    naive = [naive_scaled_sps_update(a) for a in alphas_sq]
    assert torch.allclose(naive[2], 4.0 * naive[1]) and torch.allclose(naive[0], 0.25 * naive[1])
    # eps = 0: SPS's eps (added to c ||alpha^-1 g||^2) is the one term that is not scale-free
    ps = [one_step(PSSPS, scaling=Constant(a), eps=0.0) for a in alphas_sq]
    sps = one_step(SPS, eps=0.0)
    for update in ps:
        torch.testing.assert_close(update, sps, rtol=1e-12, atol=0)


def test_sps_step_by_hand() -> None:
    _, g, loss = linear_problem()
    eta = loss / (0.5 * float(g @ g) + 1e-8)
    torch.testing.assert_close(one_step(SPS, c=0.5), -eta * g, rtol=1e-12, atol=0)
    torch.testing.assert_close(one_step(SPS, eta_max=0.1), -0.1 * g, rtol=1e-12, atol=0)
    # smooth_iter: eta_0 = min(gamma**(1/n) * init_step_size, Polyak step)
    torch.testing.assert_close(one_step(SPS, smooth_iter=True, n_batches_per_epoch=4, init_step_size=0.01),
                               -0.01 * 2.0 ** 0.25 * g, rtol=1e-10, atol=0)
    assert torch.count_nonzero(one_step(SPS, f_star=5.0)) == 0  # loss below f*: no step


def test_ps_sps_adam_step_by_hand() -> None:
    """First step: v_hat = g^2, so alpha^2 = |g| + eps and the step is eta * g / (|g| + eps)."""
    _, g, loss = linear_problem()
    alpha_sq = g.abs() + 1e-8
    eta = loss / (0.5 * float(g @ (g / alpha_sq)) + 1e-8)
    torch.testing.assert_close(one_step(PSSPS), -eta * g / alpha_sq, rtol=1e-12, atol=0)


def test_ps_sps_without_scaling_is_sps_and_scale_free() -> None:
    data = batches(30)
    sps, none, adam, adam3 = (small_model() for _ in range(4))
    train(sps, SPS(sps.parameters(), eta_max=0.5), data, pass_loss=True)
    train(none, PSSPS(none.parameters(), eta_max=0.5, scaling="none"), data, pass_loss=True)
    assert max_relative_difference(sps, none) == 0.0
    # scale-free over many steps (no eta_max and eps = 0: both are in alpha-dependent units)
    train(adam, PSSPS(adam.parameters(), eps=0.0), data[:10], pass_loss=True)
    train(adam3, PSSPS(adam3.parameters(), eps=0.0, scaling=Multiplied(AdamScaling(), lambda k: 3.0)),
          data[:10], pass_loss=True)
    assert max_relative_difference(adam, adam3) <= 1e-9


@pytest.mark.parametrize("cls", [SPS, PSSPS])
def test_missing_loss_is_a_clear_error(cls: type) -> None:
    param, _, _ = linear_problem()
    with pytest.raises(ValueError, match=r"step\(loss=loss\)"):
        cls([param]).step()
    assert cls.requires == frozenset({"loss"})


def test_bad_options_are_rejected() -> None:
    param, _, _ = linear_problem()
    with pytest.raises(ValueError, match="n_batches_per_epoch"):
        SPS([param], smooth_iter=True)
    with pytest.raises(ValueError, match="variant"):
        PSDASGD([param], variant="paper")
    with pytest.raises(ValueError, match="scaling"):
        PSSPS([param], scaling="adagrad")


def test_estimated_lr_is_the_step_size() -> None:
    param, g, loss = linear_problem()
    optimizer = SPS([param])
    assert optimizer.estimated_lr() is None
    optimizer.step(loss=loss)
    assert math.isclose(optimizer.estimated_lr(), loss / (0.5 * float(g @ g) + 1e-8))
    assert optimizer.epoch_log() == {"est_lr": optimizer.estimated_lr()}
