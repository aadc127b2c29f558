"""Low-rank metrics of conv (and linear) weights shared by AdaS and RMSGD, batched by shape.

Pipeline (AdaS §3 / RMSGD §3.1): unfold a conv weight along its input (mode-3) and output (mode-4)
channels, factorise each unfolding with empirical variational Bayesian matrix factorisation (EVBMF,
Nakajima et al., JMLR 2013) and read metrics off the retained, shrunk singular values
``sigma_1 >= ... >= sigma_{N'}``:

* knowledge gain / stable rank (AdaS Eq. 3, RMSGD Eq. 2): ``G^p = sum_k sigma_k^p / (N sigma_1^p)``;
* mapping condition (AdaS Eq. 4): ``C = sigma_1 / sigma_{N'}`` (the code raises it to ``p``);
* rank gain (AdaS App. D): ``N' / N``;
* RMSGD quality (Eqs. 3-5): ``kappa = 1 - sigma_{N'} / sigma_1``, ``q = atan2(s, kappa)``,
  ``Q = ||q||_2 / sqrt(L)``.

``N`` is the channel count of the unfolding (rows as PyTorch lays it out: ``in`` for mode 3, ``out``
for mode 4, ``out_features`` for a linear weight), as in both reference codes. A retained rank of 0
gives 0 for every metric (reference behaviour; the paper's ``G(0) = 0``).

EVBMF here is the authors' port (``matrix_factorization.py`` of the ``adas``/``rmsgd`` packages,
``VBMF.py`` of the AdaS repository) re-written to work on a batch of same-shaped matrices at once:
singular values only (``singular_values``: eigenvalues of the Gram matrix by default, or LAPACK's
SVD, on the weights' device), the noise variance found
by a batched, line-by-line port of SciPy's bounded Brent search (``minimize_scalar(method=
'Bounded')``: same bounds, same ``xatol=1e-5`` absolute tolerance, same 500-evaluation cap), then the
same threshold and shrinkage. The free-energy search runs in float64 (``search_dtype``): the PyPI
packages run it in float32 by accident under NumPy 2 (NEP 50 keeps SciPy's iterates in the float32
of the bounds) and in mixed precision under NumPy 1; float64 agrees with both to the search tolerance.

Precision and cost, per stage (default ``svd="gram"``; ResNet-34 pass, one CPU thread, ~11x the
``adas`` package, see ``scripts/bench_adas_metrics.py``):

1. stacking: one copy per shape group into a reused buffer (none for a single contiguous matrix);
   the weights stay in their own dtype (float32), never upcast.
2. Gram matrix of the smaller side, float32 products, lower triangle only (``gram_lower``), stored
   straight into float64 (~40% of the time): <= 3e-7 relative error on every singular value.
3. ``eigvalsh`` in float64 on the small Gram matrix only (~50% of the time): a float32 eigensolver
   would be 2x faster but errs by up to 2e-6 relative on the largest singular values, the ones
   the metrics read, so it is not used.
4. one batched Brent search over ALL shape groups at once (spectra padded and masked), float64:
   each problem follows its own SciPy iterates, so this equals one search per group (~3%).

Cases the references trip on (switch ``tall``):

* ``"transpose"`` (default; the PyPI packages): an unfolding with more rows than columns (1x1 convs
  with ``in > out``, the mode-4 unfolding of a ResNet shortcut) is transposed before EVBMF; the
  normaliser stays the original row count.
* ``"reference"`` (AdaS repository 2020, which produced AdaS Table 1): no transpose; the factorisation
  "fails" exactly where the reference raises (SciPy's "lower bound exceeds upper bound", or the
  lower-bound index past the singular values) and the caller falls back (see ``fallback``); where it
  does not raise, the untransposed L > M algorithm runs on, as there (a negative discriminant in
  the shrinkage, NaN in the reference, is clamped to 0 here).
* depthwise convs give 1-row mode-3 unfoldings; EVBMF then always returns rank 0 (the search interval
  collapses to one point whose threshold exceeds ``sigma_1``) -- the reference behaviour, kept.
* all-zero weights: rank 0 (the reference gets there through NaNs; here without them).
* tiny weights: the absolute ``xatol`` makes EVBMF scale-dependent (AdaS notes: scaling a weight by
  1e-3 moved G from 0.0956 to 0.0929). ``scale_invariant=True`` runs the search on ``Y / rms(Y)``
  (exactly scale-invariant); the default ``False`` keeps the reference tolerance.
"""
from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

TALL_MODES = ("transpose", "reference")
_GOLDEN = 0.5 * (3.0 - math.sqrt(5.0))
_SQRT_EPS = math.sqrt(2.2e-16)


# ---------------------------------------------------------------------------------------- EVBMF
@dataclass
class EVBMFResult:
    """Batched EVBMF output: shrunk singular values (zero beyond each matrix's rank)."""

    values: Tensor   # [B, H] shrunk singular values, sorted, zero past ``rank``
    rank: Tensor     # [B] retained rank N'
    sigma2: Tensor   # [B] estimated noise variance
    failed: Tensor   # [B] bool: the reference would have raised (tall="reference" only)


def _free_energy(sigma2: Tensor, s2: Tensor, M: Tensor, alpha: Tensor, xubar: Tensor, valid: Tensor,
                 missing: Tensor) -> Tensor:
    """EVB free energy in sigma^2 (``EVBsigma2`` of the reference; residual 0 as there, H = L), for
    problems of several shapes at once: ``M``, ``alpha = L/M``, ``xubar`` are ``[B, 1]``, ``s2``
    ``[B, H_max]`` is padded where ``valid`` is False, ``missing = L - H`` is ``[B]``."""
    x = s2 / (M * sigma2[:, None])
    big = x > xubar
    shifted = x - (1 + alpha)
    tau = 0.5 * (shifted + torch.sqrt(torch.where(big, shifted * shifted - 4 * alpha, 1.0)))
    above = x - tau + torch.log((tau + 1) / x) + alpha * torch.log(tau / alpha + 1)
    below = x - torch.log(x)
    terms = torch.where(valid, torch.where(big, above, below), 0.0)
    return terms.sum(-1) + missing * torch.log(sigma2)


def bounded_brent(func, lower: Tensor, upper: Tensor, xatol: float = 1e-5, maxfun: int = 500) -> Tensor:
    """SciPy's ``_minimize_scalar_bounded`` (fminbound) run on a batch of independent problems.

    A line-by-line port: every branch of SciPy's loop becomes a ``torch.where`` over the batch, so
    each problem follows exactly SciPy's sequence of iterates (same golden/parabolic decisions,
    tolerances ``tol1 = sqrt(eps)|x| + xatol/3``, evaluation cap). Problems that converged are frozen.
    """
    a, b = lower.clone(), upper.clone()
    fulc = a + _GOLDEN * (b - a)
    nfc, xf = fulc.clone(), fulc.clone()
    rat = torch.zeros_like(a)
    e = torch.zeros_like(a)
    fx = func(xf)
    ffulc, fnfc = fx.clone(), fx.clone()
    xm = 0.5 * (a + b)
    tol1 = _SQRT_EPS * xf.abs() + xatol / 3.0
    tol2 = 2.0 * tol1
    active = torch.ones_like(a, dtype=torch.bool)
    for _ in range(1, maxfun):
        active = active & ((xf - xm).abs() > (tol2 - 0.5 * (b - a)))
        if not bool(active.any()):
            break
        # parabolic fit (SciPy lines "if np.abs(e) > tol1")
        para = e.abs() > tol1
        r = (xf - nfc) * (fx - ffulc)
        q = (xf - fulc) * (fx - fnfc)
        p = (xf - fulc) * q - (xf - nfc) * r
        q = 2.0 * (q - r)
        p = torch.where(q > 0.0, -p, p)
        q = q.abs()
        r = e
        e = torch.where(para, rat, e)
        accept = para & (p.abs() < (0.5 * q * r).abs()) & (p > q * (a - xf)) & (p < q * (b - xf))
        rat_p = torch.where(accept, p / torch.where(accept, q, 1.0), rat)
        x_p = xf + rat_p
        near = ((x_p - a) < tol2) | ((b - x_p) < tol2)
        si = torch.sign(xm - xf) + ((xm - xf) == 0)
        rat_p = torch.where(accept & near, tol1 * si, rat_p)
        golden = ~accept
        e_g = torch.where(xf >= xm, a - xf, b - xf)
        e = torch.where(golden, e_g, e)
        rat = torch.where(golden, _GOLDEN * e_g, rat_p)
        si = torch.sign(rat) + (rat == 0)
        x = xf + si * torch.maximum(rat.abs(), tol1)
        x = torch.where(active, x, xf)
        fu = func(x)
        better = active & (fu <= fx)
        worse = active & ~(fu <= fx)
        # accepted point: shrink towards it
        a = torch.where(better & (x >= xf), xf, torch.where(worse & (x < xf), x, a))
        b = torch.where(better & ~(x >= xf), xf, torch.where(worse & ~(x < xf), x, b))
        to_nfc = worse & ((fu <= fnfc) | (nfc == xf))
        to_fulc = worse & ~to_nfc & ((fu <= ffulc) | (fulc == xf) | (fulc == nfc))
        fulc_new = torch.where(better | to_nfc, nfc, torch.where(to_fulc, x, fulc))
        ffulc_new = torch.where(better | to_nfc, fnfc, torch.where(to_fulc, fu, ffulc))
        nfc_new = torch.where(better, xf, torch.where(to_nfc, x, nfc))
        fnfc_new = torch.where(better, fx, torch.where(to_nfc, fu, fnfc))
        xf = torch.where(better, x, xf)
        fx = torch.where(better, fu, fx)
        fulc, ffulc, nfc, fnfc = fulc_new, ffulc_new, nfc_new, fnfc_new
        xm = 0.5 * (a + b)
        tol1 = _SQRT_EPS * xf.abs() + xatol / 3.0
        tol2 = 2.0 * tol1
    return xf


SVD_METHODS = ("gram", "gram64", "svd")
GRAM_BLOCK = 64   # rows per block of the lower-triangular Gram product (measured: 32 slower, 128 equal)


def gram_lower(Y: Tensor, dtype: torch.dtype | None = None, block: int = GRAM_BLOCK) -> Tensor:
    """Gram matrix of the smaller side of ``Y [B, L, M]`` (``Y Y^T`` if ``L <= M``, else ``Y^T Y``),
    lower triangle only: row block ``i`` gets ``Y_i Y_{:i}^T`` (blocks of ``block`` rows), the strict
    upper triangle past the diagonal blocks stays zero. ``eigvalsh`` reads only the lower triangle,
    so this is exact for it and costs ``(k + 1) / 2k`` of the full product for ``k`` blocks (56% for
    the 512-row unfoldings of ResNet layer 4). Products run in ``Y``'s dtype and are stored as
    ``dtype`` (default: ``Y``'s), so an upcast touches only the small Gram matrix, never ``Y``.
    Works on (transposed) views: no copy of ``Y``."""
    if Y.shape[-2] > Y.shape[-1]:
        Y = Y.mT
    n = Y.shape[-2]
    gram = Y.new_zeros(Y.shape[0], n, n, dtype=dtype)
    for start in range(0, n, block):
        stop = min(n, start + block)
        gram[:, start:stop, :stop] = Y[:, start:stop] @ Y[:, :stop].mT
    return gram


def singular_values(Y: Tensor, method: str = "gram", dtype: torch.dtype = torch.float64) -> Tensor:
    """Descending singular values of a batch ``Y [B, L, M]`` (``min(L, M)`` of them), as ``dtype``.

    ``"gram"`` (default): square roots of the float64 ``eigvalsh`` eigenvalues of the smaller Gram
    matrix (``gram_lower``: lower triangle only), formed by float32 batched products on the
    weights' device; about 10x faster than LAPACK's SVD on CPU for conv unfoldings (M >> L). Only
    the small Gram matrix is upcast: on ResNet-34 the float32 product errs by <= 3e-7 relative on
    every singular value (<= 4e-8 on the ten largest; measured against float64 SVD), the float64
    eigensolver adds ~1e-15, whereas a float32 ``eigvalsh`` would err by up to 2e-6 on the largest
    ones (it is 2x faster, but above our 1e-6 budget, so not used). ``"gram64"``: the same with a
    float64 product (about 2x slower, ~1e-12 relative). ``"svd"``: the references' own LAPACK call,
    ``torch.svd`` of each float32 matrix, i.e. ``gesdd`` computing the singular vectors too: the
    values-only driver (``svdvals``) takes another route through LAPACK that differs in the last
    bits, which the EVBMF search can turn into a 1e-3 change of a learning rate (issue 11, item 15).
    """
    if method == "svd":
        return torch.stack([torch.linalg.svd(y.float(), full_matrices=False).S for y in Y]).to(dtype)
    gram = gram_lower(Y.to(torch.float64 if method == "gram64" else torch.float32), torch.float64)
    return torch.linalg.eigvalsh(gram).clamp_min(0).sqrt().flip(-1).to(dtype)


@dataclass
class _Search:
    """One shape group's EVBMF between the singular values and the noise-variance search."""

    s: Tensor            # [B, H] singular values (rescaled when scale_invariant)
    s2: Tensor           # [B, H] their squares (in float32 on the reference route)
    L: int
    M: int
    xubar: float
    lower: Tensor        # [B] search bounds (safe: 1 for all-zero matrices)
    upper: Tensor
    skip: Tensor         # [B] bool: failed or all-zero, rank 0 whatever the search gives
    failed: Tensor       # [B] bool
    scale: Tensor | None
    reference: bool = False   # svd="svd": the references' float32 arithmetic around the search


def _evbmf_setup(Y: Tensor, search_dtype: torch.dtype, scale_invariant: bool, svd: str) -> _Search:
    """Singular values and the reference's search bounds for a batch ``Y [B, L, M]``.

    ``svd="svd"`` follows the references' numerical route: float32 singular values, squared, summed
    and bounded in float32 (their torch code), then handed to the float64 search."""
    B, L, M = Y.shape
    alpha = L / M
    tauubar = 2.5129 * math.sqrt(alpha)
    xubar = (1 + tauubar) * (1 + alpha / tauubar)
    reference = svd == "svd"
    s = singular_values(Y, svd, torch.float32 if reference else search_dtype)   # [B, min(L, M)], descending
    scale = None
    if scale_invariant:
        scale = s.square().mean(-1, keepdim=True).sqrt().clamp_min(torch.finfo(search_dtype).tiny)
        s = s / scale
    s2 = s.square()
    h_lb = int(min(math.ceil(L / (1 + alpha)) - 1, L))     # 1-based index h* of the reference
    if h_lb >= s.shape[-1]:                                  # reference: IndexError (tall inputs)
        ones = torch.ones(B, dtype=search_dtype, device=s.device)
        skip = torch.ones(B, dtype=torch.bool, device=s.device)
        zeros = torch.zeros_like(s, dtype=search_dtype)
        return _Search(zeros, zeros, L, M, xubar, ones, ones, skip, skip, scale, reference)
    upper = s2.sum(-1) / (L * M)
    lower = torch.maximum(s2[:, h_lb] / (M * xubar), s2[:, h_lb:].mean(-1) / M)
    s, s2, upper, lower = (t.to(search_dtype) for t in (s, s2, upper, lower))
    failed = lower > upper                                   # SciPy: "lower bound exceeds upper bound"
    degenerate = upper <= 0                                  # all-zero matrix
    lower = torch.where(failed | degenerate, upper, lower)
    safe_upper = torch.where(degenerate, torch.ones_like(upper), upper)
    safe_lower = torch.where(degenerate, torch.ones_like(lower), lower)
    return _Search(s, s2, L, M, xubar, safe_lower, safe_upper, failed | degenerate, failed, scale, reference)


def _noise_search(problems: list[_Search], xatol: float) -> list[Tensor]:
    """Noise variances of all groups by ONE batched Brent search (padded spectra, masked terms):
    each problem follows its own SciPy iterates, so this equals one search per group."""
    s = problems[0].s
    width = max(p.s.shape[-1] for p in problems)
    rows = [p.s.shape[0] for p in problems]

    def column(values: list[float]) -> Tensor:
        return torch.tensor([v for v, n in zip(values, rows) for _ in range(n)], dtype=s.dtype, device=s.device)

    s2 = torch.cat([torch.nn.functional.pad(p.s2, (0, width - p.s.shape[-1]), value=1.0)
                    for p in problems])
    valid = torch.cat([torch.arange(width, device=s.device).expand(n, width) < p.s.shape[-1]
                       for p, n in zip(problems, rows)])
    M = column([p.M for p in problems])[:, None]
    alpha = column([p.L / p.M for p in problems])[:, None]
    xubar = column([p.xubar for p in problems])[:, None]
    missing = column([p.L - p.s.shape[-1] for p in problems])
    lower = torch.cat([p.lower for p in problems])
    upper = torch.cat([p.upper for p in problems])
    sigma2 = bounded_brent(lambda v: _free_energy(v, s2, M, alpha, xubar, valid, missing), lower, upper, xatol)
    return list(sigma2.split(rows))


def _evbmf_finish(problem: _Search, sigma2: Tensor) -> EVBMFResult:
    """Threshold and shrinkage (Nakajima et al. 2012, Eq. 15) given the noise variance."""
    if problem.reference:
        return _evbmf_finish_reference(problem, sigma2)
    s, L, M = problem.s, problem.L, problem.M
    s2 = s.square()
    sigma2 = torch.where(problem.skip, torch.zeros_like(sigma2), sigma2)
    threshold = torch.sqrt(M * sigma2 * problem.xubar)
    keep = (s > threshold[:, None]) & ~problem.skip[:, None]
    ratio = (L + M) * sigma2[:, None] / torch.where(keep, s2, 1.0)
    disc = (1 - ratio).square() - 4 * L * M * sigma2[:, None].square() / torch.where(keep, s2.square(), 1.0)
    shrunk = s / 2 * (1 - ratio + torch.sqrt(disc.clamp_min(0)))
    values = torch.where(keep, shrunk, 0.0)
    if problem.scale is not None:
        values, sigma2 = values * problem.scale, sigma2 * problem.scale[:, 0].square()
    return EVBMFResult(values, keep.sum(-1), sigma2, problem.failed)


def _evbmf_finish_reference(problem: _Search, sigma2: Tensor) -> EVBMFResult:
    """``_evbmf_finish`` as the references compute it, one matrix at a time: float64 threshold, the
    float32 singular values compared and shrunk by the same torch expression (scalar operands
    rounded to float32 by torch), so that the shrunk values agree bit for bit."""
    L, M = problem.L, problem.M
    alpha = L / M
    tauubar = 2.5129 * math.sqrt(alpha)
    values = torch.zeros_like(problem.s, dtype=torch.float32)
    ranks = torch.zeros(len(values), dtype=torch.long, device=values.device)
    for i, (row, noise, skip) in enumerate(zip(problem.s.float(), sigma2.tolist(), problem.skip.tolist())):
        if skip:
            continue
        threshold = math.sqrt(M * noise * (1 + tauubar) * (1 + alpha / tauubar))
        pos = int(torch.sum(row > threshold))
        s = row[:pos]
        values[i, :pos] = (s / 2) * (1 - (L + M) * noise / s ** 2 +
                                     torch.sqrt((1 - (L + M) * noise / s ** 2) ** 2 - 4 * L * M * noise ** 2 / s ** 4))
        ranks[i] = pos
    if problem.scale is not None:
        values, sigma2 = values * problem.scale.float(), sigma2 * problem.scale[:, 0].square()
    return EVBMFResult(values, ranks, torch.where(problem.skip, 0.0, sigma2), problem.failed)


def evbmf(Y: Tensor, xatol: float = 1e-5, search_dtype: torch.dtype = torch.float64,
          scale_invariant: bool = False, svd: str = "gram") -> EVBMFResult:
    """EVBMF of a batch ``Y [B, L, M]`` (or one matrix ``[L, M]``), noise variance unknown, H = L.

    Steps as in the reference ``EVBMF`` (Nakajima et al. 2013 global analytic solution):
    ``alpha = L/M``, ``tau_bar = 2.5129 sqrt(alpha)``; bounds ``sigma2_ub = sum s^2 / (LM)``,
    ``sigma2_lb = max(s_{h*+1}^2 / (M x_bar), mean_{h>h*} s_h^2 / M)`` with
    ``h* = min(ceil(L/(1+alpha)) - 1, H)``; bounded Brent on the free energy; keep
    ``s > sqrt(M sigma2 x_bar)`` and shrink them (Nakajima et al. 2012, Eq. 15).
    """
    if Y.dim() == 2:
        Y = Y[None]
    problem = _evbmf_setup(Y, search_dtype, scale_invariant, svd)
    return _evbmf_finish(problem, _noise_search([problem], xatol)[0])


# -------------------------------------------------------------------------------------- metrics
def _numpy_row_sums(values: Tensor, rank: Tensor) -> Tensor:
    """Each row's first ``rank`` entries summed by NumPy (its pairwise order, in the values' dtype),
    as the references sum the knowledge gain."""
    rows = values.cpu().numpy()
    sums = [rows[i, :n].sum() for i, n in enumerate(rank.tolist())]
    return torch.tensor(sums, dtype=values.dtype, device=values.device)


def spectral_metrics(values: Tensor, rank: Tensor, normaliser: int, p: int = 1,
                     numpy_sum: bool = False) -> dict[str, Tensor]:
    """Knowledge gain (p), stable rank (p=2 form), mapping condition (^p, as the code), rank gain.
    ``numpy_sum``: sum the gain as the references do (``svd="svd"``'s route), not with torch."""
    has = rank > 0
    top = values[:, 0].clamp_min(torch.finfo(values.dtype).tiny)
    last = values.gather(1, (rank - 1).clamp_min(0)[:, None])[:, 0].clamp_min(torch.finfo(values.dtype).tiny)
    ratio = values / top[:, None]
    zero = torch.zeros_like(top)
    gain = _numpy_row_sums(ratio.pow(p), rank) if numpy_sum else ratio.pow(p).sum(-1)
    return {
        "kg": torch.where(has, gain / normaliser, zero),
        "stable_rank": torch.where(has, ratio.square().sum(-1) / normaliser, zero),
        "condition": torch.where(has, (top / last).pow(p), zero),
        "kappa": torch.where(has, 1 - last / top, zero),
        "rank": rank.to(values.dtype) / normaliser,
    }


def _channel_first_views(weight: Tensor) -> list[Tensor]:
    """Views whose flattening past dim 0 gives the unfoldings of ``unfoldings`` (no copy)."""
    return [weight] if weight.dim() == 2 else [weight.permute(1, 0, 2, 3), weight]


def unfoldings(weight: Tensor) -> list[Tensor]:
    """Mode-3 (input channel) and mode-4 (output channel) unfoldings in PyTorch layout (AdaS Eq. 2):
    ``[in, out*kh*kw]`` and ``[out, in*kh*kw]``; a 2-D (linear) weight is its own single unfolding."""
    return [view.reshape(view.shape[0], -1) for view in _channel_first_views(weight)]


MODE_NAMES = {2: ("",), 4: ("in_", "out_")}


def short(value: Any) -> Any:
    """A float to 7 significant digits (float32 precision) for the run record; others unchanged."""
    return float(f"{value:.7g}") if isinstance(value, float) else value


def layer_log(index: int, weight: Tensor, metrics: dict[str, Any]) -> dict[str, Any]:
    """One analysed layer in a run record: its position in ``model.parameters()``, its shape and
    its metrics (7 digits; ``*failed`` flags only when set)."""
    entry: dict[str, Any] = {"index": index, "shape": list(weight.shape)}
    entry.update({k: short(v) for k, v in metrics.items() if not (k.endswith("failed") and not v)})
    return entry


class LowRankMetrics:
    """Per-layer low-rank metrics of a list of 4-D (conv) or 2-D (linear) weights, batched by shape.

    ``compute(weights)`` returns one dict per weight with ``in_*``/``out_*`` entries (conv) or plain
    entries (linear) for ``kg``, ``stable_rank``, ``condition``, ``kappa``, ``rank`` and a ``failed``
    flag, plus the layer summaries ``kg`` (mean of in/out, AdaS Algorithm 1 step 3), ``condition``
    (mean of in/out, RMSGD code ``MC``) and ``q = atan2(kg, kappa)`` (RMSGD Eq. 4, kappa averaged
    over the modes). ``quality(results)`` is RMSGD's Q (Eq. 5).
    """

    def __init__(self, p: int = 1, tall: str = "transpose", xatol: float = 1e-5,
                 search_dtype: torch.dtype = torch.float64, scale_invariant: bool = False,
                 svd: str = "gram") -> None:
        if p not in (1, 2):
            raise ValueError(f"p must be 1 or 2, got {p}")
        if tall not in TALL_MODES:
            raise ValueError(f"tall must be one of {TALL_MODES}, got {tall!r}")
        self.p, self.tall, self.xatol = p, tall, xatol
        if svd not in SVD_METHODS:
            raise ValueError(f"svd must be one of {SVD_METHODS}, got {svd!r}")
        self.search_dtype, self.scale_invariant, self.svd = search_dtype, scale_invariant, svd
        # one stacking buffer per (shape, count, device, dtype) group, reused across calls: a fresh
        # allocation of this size costs page faults that took as long as the copy itself on CPU
        self._stacks: dict[tuple, Tensor] = {}

    def _stack(self, views: list[Tensor]) -> Tensor:
        """``torch.stack(views)`` into a cached buffer (overwritten by the next call); a single view
        is returned as is (the reshape that follows copies it only if it must)."""
        if len(views) == 1:
            return views[0][None]
        key = (len(views), tuple(views[0].shape), views[0].device, views[0].dtype)
        buffer = self._stacks.get(key)
        if buffer is None:
            buffer = self._stacks[key] = torch.stack(views)
            return buffer
        return torch.stack(views, out=buffer)

    @torch.no_grad()
    def compute(self, weights: list[Tensor]) -> list[dict[str, Any]]:
        # group the unfoldings by the shape of their (uncopied) channel-first views: one stacking
        # copy per group, then a free reshape to [B, rows, cols]
        jobs: dict[tuple, list[tuple[int, str, Tensor, int]]] = defaultdict(list)
        for index, weight in enumerate(weights):
            for prefix, view in zip(MODE_NAMES[weight.dim()], _channel_first_views(weight.detach())):
                jobs[(tuple(view.shape), view.device)].append((index, prefix, view, view.shape[0]))
        results: list[dict[str, Any]] = [{} for _ in weights]
        batches, problems = list(jobs.values()), []
        for batch in batches:
            stacked = self._stack([v for _, _, v, _ in batch])
            matrices = stacked.reshape(len(batch), stacked.shape[1], -1)
            if self.tall == "transpose" and matrices.shape[1] > matrices.shape[2]:
                matrices = matrices.mT
            problems.append(_evbmf_setup(matrices, self.search_dtype, self.scale_invariant, self.svd))
        sigma2s = self._search(problems)
        for batch, problem, sigma2 in zip(batches, problems, sigma2s):
            out = _evbmf_finish(problem, sigma2)
            by_norm: dict[int, list[int]] = defaultdict(list)
            for row, (*_, normaliser) in enumerate(batch):
                by_norm[normaliser].append(row)
            for normaliser, rows in by_norm.items():
                idx = torch.tensor(rows, device=out.values.device)
                metrics = spectral_metrics(out.values[idx], out.rank[idx], normaliser, self.p,
                                           numpy_sum=self.svd == "svd")
                metrics["failed"] = out.failed[idx]
                host = {k: v.tolist() for k, v in metrics.items()}
                for j, row in enumerate(rows):
                    index, prefix = batch[row][0], batch[row][1]
                    results[index].update({prefix + k: host[k][j] for k in host})
        for result in results:
            self.summarise(result)
        return results

    def _search(self, problems: list[_Search]) -> list[Tensor]:
        """One batched noise search per device (all shape groups together)."""
        by_device: dict[torch.device, list[int]] = defaultdict(list)
        for i, problem in enumerate(problems):
            by_device[problem.s.device].append(i)
        sigma2s: list[Tensor] = [torch.empty(0)] * len(problems)
        for indices in by_device.values():
            for i, sigma2 in zip(indices, _noise_search([problems[i] for i in indices], self.xatol)):
                sigma2s[i] = sigma2
        return sigma2s

    @staticmethod
    def summarise(result: dict[str, Any]) -> None:
        """Layer summaries (in place): a conv layer's in/out means, and q for every layer."""
        if "in_kg" not in result:
            result["q"] = math.atan2(result["kg"], result["kappa"])
            return
        result["kg"] = (result["in_kg"] + result["out_kg"]) / 2
        result["condition"] = (result["in_condition"] + result["out_condition"]) / 2
        result["kappa"] = (result["in_kappa"] + result["out_kappa"]) / 2
        result["q"] = math.atan2(result["kg"], result["kappa"])

    @staticmethod
    def quality(results: list[dict[str, Any]]) -> float:
        """RMSGD Eq. (5): Q = ||q||_2 / sqrt(L) over the layers that have a ``q``."""
        qs = [r["q"] for r in results if "q" in r]
        return math.sqrt(sum(q * q for q in qs) / len(qs)) if qs else 0.0
