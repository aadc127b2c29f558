"""EVBMF and the low-rank metrics against SciPy, an independent per-matrix implementation, the
``adas`` package's ``matrix_factorization.EVBMF`` (test-only dependency), and hand computations."""
from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import torch
from scipy.optimize import minimize_scalar

from optimizers.lowrank_metrics import (LowRankMetrics, bounded_brent, evbmf, gram_lower, singular_values,
                                        spectral_metrics, unfoldings)

amf = pytest.importorskip("adas.matrix_factorization", reason="test-only oracle: pip install adas==1.1.3")


def independent_evbmf(Y: np.ndarray) -> tuple[np.ndarray, float]:
    """EVBMF written straight from Nakajima et al. (2013) as the reference codes use it: float64
    SVD, SciPy's bounded search per matrix, threshold and shrinkage. Returns (shrunk values, sigma2)."""
    L, M = Y.shape
    alpha = L / M
    tau_bar = 2.5129 * math.sqrt(alpha)
    x_bar = (1 + tau_bar) * (1 + alpha / tau_bar)
    s = np.linalg.svd(Y.astype(np.float64), compute_uv=False)
    h = int(min(math.ceil(L / (1 + alpha)) - 1, L))

    def free_energy(sigma2: float) -> float:
        x = s**2 / (M * sigma2)
        big = x > x_bar
        tau = 0.5 * (x[big] - (1 + alpha) + np.sqrt((x[big] - (1 + alpha)) ** 2 - 4 * alpha))
        return (np.sum(x[~big] - np.log(x[~big])) + np.sum(x[big] - tau + np.log((tau + 1) / x[big]))
                + alpha * np.sum(np.log(tau / alpha + 1)) + (L - len(s)) * np.log(sigma2))

    upper = np.sum(s**2) / (L * M)
    lower = max(s[h] ** 2 / (M * x_bar), np.mean(s[h:] ** 2) / M)
    sigma2 = minimize_scalar(free_energy, bounds=(lower, upper), method="bounded").x
    kept = s[s > math.sqrt(M * sigma2 * x_bar)]
    ratio = (L + M) * sigma2 / kept**2
    return kept / 2 * (1 - ratio + np.sqrt((1 - ratio) ** 2 - 4 * L * M * sigma2**2 / kept**4)), sigma2


def package_evbmf(Y: torch.Tensor) -> np.ndarray:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return torch.diag(amf.EVBMF(Y.clone())[1]).numpy()


def planted(L: int, M: int, k: int, noise: float, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    signal = torch.randn(L, k, generator=g) @ torch.randn(k, M, generator=g) * 0.1
    return signal + noise * torch.randn(L, M, generator=g)


MATRICES = [planted(16, 144, 3, 0.01, 0), planted(64, 576, 5, 0.02, 1), planted(32, 288, 8, 0.01, 2),
            planted(20, 30, 4, 0.05, 3), planted(1, 144, 1, 0.01, 4), 0.05 * torch.randn(64, 576),
            planted(48, 48, 6, 0.03, 5)]


def test_bounded_brent_follows_scipy_iterate_for_iterate():
    centres = torch.tensor([0.3, 1.7, -0.4, 2.9], dtype=torch.float64)
    lower = torch.tensor([0.0, 0.0, -1.0, 2.0], dtype=torch.float64)
    upper = torch.tensor([1.0, 2.0, 1.0, 5.0], dtype=torch.float64)

    def f(x: torch.Tensor) -> torch.Tensor:
        return (x - centres) ** 2 + 0.1 * torch.sin(7 * x)

    ours = bounded_brent(f, lower, upper)
    for i in range(4):
        ref = minimize_scalar(lambda x: float(f(torch.full((4,), x, dtype=torch.float64))[i]),
                              bounds=(float(lower[i]), float(upper[i])), method="bounded").x
        assert float(ours[i]) == pytest.approx(ref, abs=1e-15)


@pytest.mark.parametrize("index", range(len(MATRICES)))
def test_evbmf_matches_independent_and_package(index: int):
    Y = MATRICES[index]
    out = evbmf(Y)
    rank = int(out.rank[0])
    ours = out.values[0, :rank].numpy()
    independent, sigma2 = independent_evbmf(Y.numpy())
    package = package_evbmf(Y)
    assert rank == len(independent) == len(package)
    np.testing.assert_allclose(ours, independent, rtol=1e-5)
    np.testing.assert_allclose(ours, package, rtol=1e-5)
    assert float(out.sigma2[0]) == pytest.approx(sigma2, abs=1e-5)   # the search's xatol


def test_batched_equals_one_by_one():
    Ys = [planted(32, 288, k, 0.01, k) for k in (0 + 1, 2, 5)]
    batched = evbmf(torch.stack(Ys))
    for i, Y in enumerate(Ys):
        single = evbmf(Y)
        assert int(single.rank[0]) == int(batched.rank[i])
        torch.testing.assert_close(single.values[0], batched.values[i], rtol=1e-12, atol=0)


@pytest.mark.parametrize("shape", [(64, 64, 3, 3), (128, 64, 3, 3), (256, 256, 3, 3), (512, 256, 1, 1),
                                   (64, 3, 3, 3)])
def test_random_init_has_rank_zero_and_no_knowledge_gain(shape):
    torch.manual_seed(0)
    w = torch.empty(shape)
    torch.nn.init.kaiming_normal_(w, mode="fan_out", nonlinearity="relu")
    result = LowRankMetrics().compute([w])[0]
    assert result["in_rank"] == result["out_rank"] == 0.0
    assert result["kg"] == 0.0 and result["in_kg"] == 0.0 and result["out_kg"] == 0.0


@pytest.mark.parametrize("k", [1, 3, 8])
def test_planted_rank_is_recovered(k):
    Y = planted(64, 576, k, 0.01, seed=10 + k)
    assert int(evbmf(Y).rank[0]) == k
    result = LowRankMetrics().compute([Y.reshape(64, 64, 3, 3)])[0]
    assert result["out_rank"] == k / 64


def test_scale_behaviour():
    """Reference tolerance (absolute xatol on sigma^2): the package's numbers at every scale, which
    drift for tiny weights; scale_invariant=True: identical metrics at every scale."""
    Y = planted(64, 576, 5, 0.05, seed=7)
    invariant = LowRankMetrics(scale_invariant=True)
    reference = LowRankMetrics()
    base = invariant.compute([Y])[0]["kg"]
    for scale in (1e-3, 1.0, 1e3):
        assert invariant.compute([Y * scale])[0]["kg"] == pytest.approx(base, rel=1e-6)   # float32 SVD
        ref = reference.compute([Y * scale])[0]
        package = package_evbmf(Y * scale)
        assert ref["rank"] == len(package) / 64
        assert ref["kg"] == pytest.approx(float(np.sum(package / package.max()) / 64), rel=1e-5)
    tiny, unit = reference.compute([Y * 1e-3])[0]["kg"], reference.compute([Y])[0]["kg"]
    assert tiny != pytest.approx(unit, rel=1e-6)          # the documented drift of the reference


def test_zero_tiny_and_depthwise_weights():
    metrics = LowRankMetrics()
    zero = metrics.compute([torch.zeros(32, 16, 3, 3)])[0]
    assert zero["kg"] == 0.0 and zero["in_rank"] == 0.0 and not math.isnan(zero["condition"])
    depthwise = torch.zeros(32, 1, 3, 3)
    depthwise[:, 0, 1, 1] = torch.linspace(1, 2, 32)        # strong structure, still rank 0 on mode 3
    result = metrics.compute([depthwise])[0]
    assert result["in_rank"] == 0.0 and result["in_kg"] == 0.0


def test_tall_unfoldings_transpose_or_fail_like_the_reference():
    torch.manual_seed(0)
    tall = 0.05 * torch.randn(500, 48, 1, 1)                # 1x1 conv, out >> in: tall mode-4 unfolding
    transposed = LowRankMetrics(tall="transpose").compute([tall])[0]
    reference = LowRankMetrics(tall="reference").compute([tall])[0]
    assert not transposed["out_failed"] and reference["out_failed"]
    assert not reference["in_failed"]                        # the 48 x 500 mode-3 unfolding is wide


def test_spectral_metrics_by_hand():
    values = torch.tensor([[4.0, 2.0, 1.0, 0.0]], dtype=torch.float64)
    m = spectral_metrics(values, torch.tensor([3]), normaliser=4, p=1)
    assert float(m["kg"][0]) == pytest.approx((1 + 0.5 + 0.25) / 4)
    assert float(m["stable_rank"][0]) == pytest.approx((1 + 0.25 + 0.0625) / 4)
    assert float(m["condition"][0]) == 4.0 and float(m["kappa"][0]) == 0.75 and float(m["rank"][0]) == 0.75
    assert float(spectral_metrics(values, torch.tensor([3]), 4, p=2)["condition"][0]) == 16.0
    empty = spectral_metrics(torch.zeros(1, 4, dtype=torch.float64), torch.tensor([0]), 4)
    assert all(float(v[0]) == 0.0 for v in empty.values())


def test_unfoldings_and_quality():
    w = torch.arange(2 * 3 * 2 * 2, dtype=torch.float32).reshape(2, 3, 2, 2)   # [out, in, kh, kw]
    mode3, mode4 = unfoldings(w)
    assert mode3.shape == (3, 8) and mode4.shape == (2, 12)
    assert torch.equal(mode3[1], w[:, 1].reshape(-1)) and torch.equal(mode4[1], w[1].reshape(-1))
    layers = [{"q": 0.3}, {"q": 1.2}, {"kg": 0.0}]
    assert LowRankMetrics.quality(layers) == pytest.approx(math.sqrt((0.09 + 1.44) / 2))


def test_gram_singular_values_match_float64_svd():
    Ys = torch.stack([planted(64, 576, 5, 0.02, s) for s in range(3)])
    exact = torch.linalg.svdvals(Ys.double())
    torch.testing.assert_close(singular_values(Ys, "gram64"), exact, rtol=1e-10, atol=0)
    torch.testing.assert_close(singular_values(Ys.mT, "gram64"), exact, rtol=1e-10, atol=0)   # tall
    torch.testing.assert_close(singular_values(Ys, "svd"), exact, rtol=1e-5, atol=0)
    gram = singular_values(Ys, "gram")
    torch.testing.assert_close(gram[:, :5], exact[:, :5], rtol=1e-6, atol=0)   # the planted part
    torch.testing.assert_close(gram, exact, rtol=1e-4, atol=0)                 # the noise tail
    ranks = [evbmf(Ys, svd=method).rank.tolist() for method in ("gram", "gram64", "svd")]
    assert ranks == [[5, 5, 5]] * 3


@pytest.mark.parametrize("shape", [(3, 40, 100), (3, 100, 40)])
def test_gram_lower_is_the_lower_triangle_of_the_full_product(shape):
    Y = torch.randn(*shape, dtype=torch.float64)
    full = Y @ Y.mT if shape[1] <= shape[2] else Y.mT @ Y
    gram = gram_lower(Y, block=16)                     # 3 blocks: 16, 16, 8 rows
    torch.testing.assert_close(gram.tril(), full.tril(), rtol=1e-12, atol=1e-12)
    assert torch.equal(gram.triu(16), torch.zeros_like(gram.triu(16)))


def test_joint_search_over_shape_groups_equals_one_evbmf_per_group():
    g = torch.Generator().manual_seed(0)
    weights = [planted(32, 288, 4, 0.01, 0).reshape(32, 32, 3, 3), planted(16, 288, 3, 0.01, 1).reshape(16, 32, 3, 3),
               planted(24, 40, 2, 0.02, 2), 0.05 * torch.randn(64, 16, 1, 1, generator=g)]
    results = LowRankMetrics().compute(weights)
    for weight, result in zip(weights, results):
        prefixes = ("in_", "out_") if weight.dim() == 4 else ("",)
        for prefix, matrix in zip(prefixes, unfoldings(weight)):
            single = evbmf(matrix if matrix.shape[0] <= matrix.shape[1] else matrix.T)
            assert result[prefix + "rank"] == int(single.rank[0]) / matrix.shape[0]
            assert result[prefix + "kg"] == pytest.approx(float(single.values[0].sum() / single.values[0, 0])
                                                          / matrix.shape[0] if single.rank[0] else 0.0, rel=1e-12)
