"""Extreme but valid-looking inputs: right answers or a clear InvalidValueError.

Kernel constants (1 / (2 sigma^2), c^2 = 2 alpha ell^2, sqrt(2 nu) / ell...)
must be finite normal floats: radial bandwidths are accepted in
[1e-150, 1e150] and float32 inputs whose constants do not fit float32 are
computed in float64. Every engine result here is compared with a plain
float64 double loop written below. The data are small integers times a power
of two, so that every squared distance is exact in both dtypes and every
backend (Gram or direct distances) sees the same numbers.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

import kernelkit as kk
from kernelkit import IMQ, Gaussian, Laplace, Matern, Polynomial, RationalQuadratic
from kernelkit.compress import kernel_thin, mmd
from kernelkit.density import KernelDensity, bandwidth_scott, bandwidth_silverman
from kernelkit.privacy import (PrivacyAccountant, PrivateDistanceSum, PrivateKernelSum,
                               PrivateSimilarityClassifier)

BANDWIDTHS = [1e-150, 1e-30, 1e-20, 1e20, 1e150]
DTYPES = [np.float32, np.float64]


def _backends():
    out = ["fused", "numpy"]
    try:
        import torch  # noqa: F401
        out.append("torch")
    except ImportError:
        pass
    return out


# ---------------------------------------------------------------- reference
def _log_phi(name, p, r2):
    """log k for one squared distance r2 (Python floats, float64)."""
    if name == "gauss":
        return -r2 / (2 * p["bw"] ** 2)
    if name == "laplace":
        return -math.sqrt(r2) / p["bw"]
    if name in ("m32", "m52"):
        s = math.sqrt(r2) * math.sqrt(3.0 if name == "m32" else 5.0) / p["bw"]
        if s > 1e100:
            return -s
        return (math.log1p(s) if name == "m32" else math.log1p(s + s * s / 3)) - s
    if name == "m07":
        from scipy.special import gammaln, kve
        nu = 0.7
        s = math.sqrt(r2) * math.sqrt(2 * nu) / p["bw"]
        if s == 0:
            return 0.0
        if s > 1e8:  # Hankel expansion, two terms are plenty here
            log_kve = 0.5 * math.log(math.pi / (2 * s)) + math.log1p((4 * nu * nu - 1) / (8 * s))
        else:
            log_kve = math.log(kve(nu, s))
        return (1 - nu) * math.log(2) - gammaln(nu) + nu * math.log(s) + log_kve - s
    # rational quadratic family: (1 + r2 / c2)^(-e)
    c2, e = p["c2"], p["e"]
    u = r2 / c2
    return -e * (math.log1p(u) if u < 1e300 else math.log(r2) - math.log(c2))


KERNELS = {
    "gauss": lambda bw: (Gaussian(bw), {"bw": bw}),
    "laplace": lambda bw: (Laplace(bw), {"bw": bw}),
    "m32": lambda bw: (Matern(1.5, bw), {"bw": bw}),
    "m52": lambda bw: (Matern(2.5, bw), {"bw": bw}),
    "m07": lambda bw: (Matern(0.7, bw), {"bw": bw}),
    "imq": lambda bw: (IMQ(bw), {"c2": bw * bw, "e": 0.5}),
    "imq1": lambda bw: (IMQ(bw, beta=1.0), {"c2": bw * bw, "e": 1.0}),
    "imq23": lambda bw: (IMQ(bw, beta=2.3), {"c2": bw * bw, "e": 2.3}),
    "rq": lambda bw: (RationalQuadratic(bw, alpha=1.7), {"c2": 2 * 1.7 * bw * bw, "e": 1.7}),
}


def _grid_data(bw, dtype, seed=0):
    """Points on a grid of step 2^k / 4 with 2^k near bw (when dtype can hold it), 32 of them; queries:
    8 of the points themselves (r = 0 pairs) and 4 others."""
    rng = np.random.default_rng(seed)
    k = int(round(math.log2(bw)))
    if dtype == np.float32 and abs(k) > 100:
        k = 0  # 2^k not a float32: unit-scale data (kernel values 0 or 1 then)
    X = rng.integers(-4, 5, size=(32, 3)).astype(np.float64)
    Y = np.vstack([X[:8], rng.integers(-4, 5, size=(4, 3))])
    scale = math.ldexp(1.0, k - 2)
    return (X * scale).astype(dtype), (Y * scale).astype(dtype)


def _ref_logk(name, p, X, Y):
    X = np.asarray(X, dtype=np.float64)
    Y = np.asarray(Y, dtype=np.float64)
    L = np.empty((X.shape[0], Y.shape[0]))
    for i in range(X.shape[0]):
        for j in range(Y.shape[0]):
            r2 = math.fsum((float(a) - float(b)) ** 2 for a, b in zip(X[i], Y[j]))
            L[i, j] = _log_phi(name, p, r2)
    return L


def _ref_sum(L, W):
    K = np.exp(L)
    return np.array([[math.fsum(K[:, j] * W[:, q]) for q in range(W.shape[1])] for j in range(K.shape[1])])


def _ref_lse(L):
    m = L.max(axis=0)
    return m + np.log(np.exp(L - m).sum(axis=0))


def _tol(dtype):
    return dict(rtol=2e-6, atol=1e-37) if dtype == np.float32 else dict(rtol=1e-11, atol=1e-300)


def _no_warnings():
    return warnings.catch_warnings()


# ------------------------------------------------- engine vs the double loop
@pytest.mark.parametrize("backend", _backends())
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("bw", BANDWIDTHS)
@pytest.mark.parametrize("name", sorted(KERNELS))
def test_engine_matches_float64_double_loop(name, bw, dtype, backend):
    kernel, p = KERNELS[name](bw)
    if name == "m07" and backend != "numpy":
        pytest.skip("general-nu Matern: numpy backend only")
    X, Y = _grid_data(bw, dtype)
    L = _ref_logk(name, p, X, Y)
    W = np.random.default_rng(1).normal(size=(X.shape[0], 2))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no overflow / invalid-value warnings either
        got = kk.kernel_sum(kernel, X, Y, W, backend=backend)
        lse = kk.kernel_logsumexp(kernel, X, Y, backend=backend)
        vals, idx = kk.kernel_topk(kernel, X, Y, 3, backend=backend)
    assert got.dtype == dtype and lse.dtype == dtype and vals.dtype == dtype
    ref = _ref_sum(L, W)
    assert np.all(np.isfinite(got))
    # sums of signed terms: the error is relative to the sum of |terms|
    scale = _ref_sum(L, np.abs(W))
    tiny = 1e-37 if dtype == np.float32 else 1e-300   # results below are 0 or subnormal in that dtype
    assert np.all(np.abs(got - ref) <= _tol(dtype)["rtol"] * scale + tiny)
    with np.errstate(over="ignore"):
        ref_lse = _ref_lse(L).astype(dtype)
    np.testing.assert_allclose(lse, ref_lse, rtol=_tol(dtype)["rtol"], atol=1e-6 if dtype == np.float32 else 1e-12)
    K = np.exp(L)
    ref_top = -np.sort(-K, axis=0)[:3].T
    np.testing.assert_allclose(vals, ref_top.astype(dtype), **_tol(dtype))
    np.testing.assert_allclose(np.take_along_axis(K.T, idx, axis=1), vals, **_tol(dtype))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("bw", BANDWIDTHS)
@pytest.mark.parametrize("name", sorted(KERNELS))
def test_dense_block_matches_double_loop(name, bw, dtype):
    kernel, p = KERNELS[name](bw)
    X, Y = _grid_data(bw, dtype)
    K = np.exp(_ref_logk(name, p, X, Y))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        got = kernel(X, Y)
        block = kk.kernel_block(kernel, X, Y)
        log_block = kernel.log_block(X, Y)
    assert got.dtype == dtype and block.dtype == dtype and log_block.dtype == dtype
    np.testing.assert_allclose(got, K.astype(dtype), **_tol(dtype))
    np.testing.assert_allclose(block, K.astype(dtype), **_tol(dtype))
    with np.errstate(over="ignore"):
        ref_log = _ref_logk(name, p, X, Y).astype(dtype)
    # log k near 0 carries an absolute error (Bessel-function formula of the general Matern: ~1e-14)
    np.testing.assert_allclose(log_block, ref_log, rtol=_tol(dtype)["rtol"],
                               atol=1e-6 if dtype == np.float32 else 1e-12)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("bw", [1e-30, 1e-20])
def test_reported_float32_nan_cases(bw, dtype):
    """Gaussian(1e-20 / 1e-30), IMQ / RQ(1e-30) on float32 gave NaN sums (1 / (2 sigma^2) overflowed float32).

    Random data, default backend (exact distances for d <= 8). The NumPy and torch backends form
    |x|^2 + |y|^2 - 2 x.y, whose rounding (about 1e-16 |x|^2) is not negligible against such
    bandwidths; the grid-data tests above check them where that formula is exact.
    """
    X = np.random.default_rng(0).standard_normal((40, 2)).astype(dtype)
    for kernel in (Gaussian(bw), IMQ(bw), RationalQuadratic(bw)):
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            got = kk.kernel_sum(kernel, X, X)
            lse = kk.kernel_logsumexp(kernel, X, X)
        assert got.dtype == dtype and lse.dtype == dtype
        # distinct points 1e19 bandwidths apart: only the point itself counts
        np.testing.assert_allclose(got, 1.0, rtol=1e-6)
        np.testing.assert_allclose(lse, 0.0, atol=1e-6)


def test_profile_and_log_profile_of_float32_squared_distances():
    r2 = np.array([0.0, 1e-37, 4.0], dtype=np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        lp = Gaussian(1e-19).log_profile(r2)   # 1 / (2 sigma^2) = 5e37
        p = IMQ(1e-30).profile(r2)
    assert lp.dtype == np.float32 and p.dtype == np.float32
    np.testing.assert_allclose(lp, np.array([0.0, -5.0, -2e38], dtype=np.float32), rtol=1e-6)
    ref = (1 + r2.astype(np.float64) / 1e-60) ** -0.5
    np.testing.assert_allclose(p, ref.astype(np.float32), rtol=1e-6)


def _ref_logk_inf(name, p, X, Y):
    """As _ref_logk, with squared distances beyond the largest float taken as inf."""
    L = np.empty((X.shape[0], Y.shape[0]))
    for i in range(X.shape[0]):
        for j in range(Y.shape[0]):
            r2 = sum((float(a) - float(b)) * (float(a) - float(b)) for a, b in zip(X[i], Y[j]))
            L[i, j] = -math.inf if math.isinf(r2) else _log_phi(name, p, r2)
    return L


@pytest.mark.parametrize("backend", _backends())
def test_huge_data_use_overflow_safe_distances(backend):
    """Coordinates near 2^511: |x|^2 overflows float64 (the Gram formula gave inf - inf = NaN). Squared
    distances overflow for far pairs only; for these exponentially decaying kernels their values are 0
    to float64 precision and each query's log-sum-exp is set by a near pair. (IMQ / rational quadratic
    values at such distances, about c / r, are not 0, but pairs whose squared distance overflows count
    as 0 there: not tested.)"""
    rng = np.random.default_rng(3)
    X = rng.integers(-4, 5, size=(20, 12)).astype(np.float64) * 2.0 ** 509   # d = 12: Gram mode by default
    Y = X[:5].copy()
    Y[:, 0] += 2.0 ** 509
    bw = 2.0 ** 498
    for kernel, name, p in [(Gaussian(bw), "gauss", {"bw": bw}), (Matern(2.5, bw), "m52", {"bw": bw}),
                            (Matern(1.5, bw), "m32", {"bw": bw}), (Laplace(bw), "laplace", {"bw": bw})]:
        L = _ref_logk_inf(name, p, X, Y)
        assert np.isinf(L).any() and np.isfinite(L).any()
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            got = kk.kernel_sum(kernel, X, Y, backend=backend)
            lse = kk.kernel_logsumexp(kernel, X, Y, backend=backend)
            dense = kernel(X, Y)
        np.testing.assert_allclose(got, np.exp(L).sum(axis=0), rtol=1e-11, atol=1e-300)
        np.testing.assert_allclose(lse, _ref_lse(L), rtol=1e-11)
        np.testing.assert_allclose(dense, np.exp(L), rtol=1e-11, atol=1e-300)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("beta", [0.5, 1.0, 2.3])
@pytest.mark.parametrize("backend", _backends())
def test_rational_quadratic_ratio_beyond_float64(backend, beta, dtype):
    """r^2 / c^2 above 1.8e308 (c = 1e-150, points 2^17 apart): log(1 + u) = log r^2 - log c^2 there."""
    X = np.array([[0.0, 0.0], [2.0 ** 17, 0.0], [0.0, 2.0 ** 18], [2.0 ** 17, 2.0 ** 18]])
    Y = X[:2] + 1.0      # near pairs: r^2 = 2, u = 2e300; far pairs: u = inf
    kernel = IMQ(1e-150, beta=beta)
    p = {"c2": kernel._c2, "e": beta}
    Xd, Yd = X.astype(dtype), Y.astype(dtype)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        lse = kk.kernel_logsumexp(kernel, Xd, Yd, backend=backend)
        got = kk.kernel_sum(kernel, Xd, Xd, backend=backend)
        far = kk.kernel_sum(kernel, Xd[2:], Yd, backend=backend)
    np.testing.assert_allclose(lse, _ref_lse(_ref_logk("imq", p, X, Y)).astype(dtype), **_tol(dtype))
    assert np.all(lse > -700 * beta)  # about -345 beta, not -inf
    np.testing.assert_allclose(got, np.exp(_ref_logk("imq", p, X, X)).sum(axis=0).astype(dtype), **_tol(dtype))
    ref_far = np.exp(_ref_logk("imq", p, X[2:], Y)).sum(axis=0)   # about 1e-150 beta: 0 in float32
    np.testing.assert_allclose(far, ref_far.astype(dtype), **_tol(dtype))


# ------------------------------------------------------- kernel parameters
@pytest.mark.parametrize("make, match", [
    (lambda: Gaussian(1e300), r"'bandwidth' parameter of Gaussian must be in \[1e-150, 1e\+150\].*Got 1e\+300"),
    (lambda: Gaussian(1e-300), r"'bandwidth' parameter of Gaussian must be in \[1e-150, 1e\+150\].*Got 1e-300"),
    (lambda: Gaussian(1e-200), r"'bandwidth' parameter of Gaussian must be in \[1e-150, 1e\+150\].*Got 1e-200"),
    (lambda: IMQ(1e300), r"'bandwidth' parameter of IMQ must be in \[1e-150, 1e\+150\].*Got 1e\+300"),
    (lambda: IMQ(1e-300), r"'bandwidth' parameter of IMQ must be in \[1e-150, 1e\+150\]"),
    (lambda: RationalQuadratic(1e300), r"'bandwidth' parameter of RationalQuadratic must be in \[1e-150, 1e\+150\]"),
    (lambda: RationalQuadratic(1e-300), r"'bandwidth' parameter of RationalQuadratic must be in \[1e-150"),
    (lambda: Laplace(1e-160), r"'bandwidth' parameter of Laplace must be in \[1e-150, 1e\+150\]"),
    (lambda: Matern(2.5, 1e200), r"'bandwidth' parameter of Matern must be in \[1e-150, 1e\+150\]"),
    (lambda: kk.make_kernel("gaussian", bandwidth=1e-300), r"'bandwidth' parameter of Gaussian must be in"),
    (lambda: Matern(1e3), r"'nu' parameter of Matern must be <= 100 unless it is 0.5, 1.5 or 2.5.*Got 1000"),
    (lambda: Matern(1e300), r"'nu' parameter of Matern must be <= 100.*Gaussian"),
    (lambda: Matern(1e-310, 1.0), r"'nu' parameter of Matern must keep lambda = sqrt\(2 nu\) / bandwidth in "
                                  r"\[1e-152, 1e\+152\].*nu in \[5e-305, 5e\+303\].*Got 1e-310"),
    (lambda: RationalQuadratic(1e150, alpha=1e10), r"'alpha' parameter of RationalQuadratic must keep "
                                                   r"c = sqrt\(2 alpha\) bandwidth in \[1e-152, 1e\+152\].*alpha in"),
    (lambda: RationalQuadratic(1.0, alpha=1e306), r"'alpha' parameter of RationalQuadratic must keep c"),
    (lambda: IMQ(1.0, beta=1e306), r"'beta' parameter of IMQ must keep c / sqrt\(2 beta\) in \[1e-152"),
])
def test_out_of_range_kernel_parameters_raise(make, match):
    with pytest.raises(ValueError, match=match) as info:
        make()
    assert isinstance(info.value, kk.exceptions.InvalidValueError)


def test_reported_overflow_and_zero_division_cases():
    X = np.random.default_rng(0).standard_normal((10, 2))
    for make in (lambda b: Gaussian(bandwidth=b), IMQ, RationalQuadratic):
        for bw in (1e300, 1e-300, 1e-200):
            with pytest.raises(ValueError, match=r"'bandwidth'.*\[1e-150, 1e\+150\]"):
                kk.kernel_sum(make(bw), X, X)
        for bw in (1e150, 1e-150):  # the edges work
            assert np.all(np.isfinite(kk.kernel_sum(make(bw), X, X)))
            assert np.all(np.isfinite(kk.kernel_logsumexp(make(bw), X, X)))


def test_matern_general_nu_extreme_distances():
    """kve is NaN above s ~ 1e9 and overflows for small s at large nu: log profile stays finite and right."""
    mpmath = pytest.importorskip("mpmath")
    mpmath.mp.dps = 40
    for nu in (0.3, 1.7, 7.5, 99.9):
        k = Matern(nu, 1.0)
        s = np.array([1e-200, 1e-30, 1e-3, 0.05, 3.0, 1e9, 1e12, 1e100])
        r2 = (s / math.sqrt(2 * nu)) ** 2
        got = k.log_profile(r2)
        for si, gi in zip(s, got):
            si = float(si) * 1.0
            ref = float((1 - nu) * mpmath.log(2) - mpmath.loggamma(nu) + nu * mpmath.log(si)
                        + mpmath.log(mpmath.besselk(nu, si)))
            assert abs(gi - ref) <= 1e-12 * max(1.0, abs(ref)), (nu, si, gi, ref)
    assert Matern(1.7).log_profile(np.array([np.inf]))[0] == -np.inf


def test_matern_small_nu_spectral_and_polynomial_degree():
    w = Matern(1e-3, 1.0).spectral_sample(2, 500, 0)
    assert np.all(np.isfinite(w))
    X = np.random.default_rng(0).standard_normal((6, 2))
    for deg in (2000, 10**6, 10**20):
        k = Polynomial(deg)
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            got = kk.kernel_sum(k, X, X[:3])
            dense = k(X, X[:3])
        G = X @ X[:3].T + 1.0
        with np.errstate(over="ignore"):
            ref = G ** deg   # overflows to inf (even degrees) or underflows to 0, as it should
        np.testing.assert_array_equal(dense, ref)
        np.testing.assert_array_equal(got, ref.sum(axis=0))
        with pytest.raises(ValueError, match="fused backend does not support"):
            kk.kernel_sum(k, X, X[:3], backend="fused")


def test_polynomial_overflow_is_inf_not_nan_in_fused_padding():
    X = np.random.default_rng(0).standard_normal((5, 2))   # 5 points: the tile is padded
    got = kk.kernel_sum(Polynomial(2, c=1e300), X, X[:2], backend="fused")
    assert np.all(got == np.inf)


def test_sum_kernel_at_extreme_scales():
    k = Gaussian(1e150) + Gaussian(1e149)
    l1, l2 = Gaussian(1e150).log_integral(3), Gaussian(1e149).log_integral(3)
    np.testing.assert_allclose(k.log_integral(3), np.logaddexp(l1, l2), rtol=1e-15)
    X = np.random.default_rng(0).standard_normal((8, 2))
    s = Gaussian(0.01) + Laplace(0.01)
    for backend in ("numpy",) + (("torch",) if "torch" in _backends() else ()):
        lse = kk.kernel_logsumexp(s, X, X[:3] + 0.5, backend=backend)
        ref = np.logaddexp(_ref_logk("gauss", {"bw": 0.01}, X, X[:3] + 0.5),
                           _ref_logk("laplace", {"bw": 0.01}, X, X[:3] + 0.5))
        np.testing.assert_allclose(lse, _ref_lse(ref), rtol=1e-12)   # finite: the sum of kernels underflows


def test_scaled_kernel_float32_tiny_scale():
    X = np.random.default_rng(0).standard_normal((6, 2)).astype(np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        got = kk.kernel_sum(1e-300 * Gaussian(1.0), X, X)
        lse = kk.kernel_logsumexp(1e-300 * Gaussian(1.0), X, X)
    assert got.dtype == np.float32 and np.all(got == 0)   # 1e-300 rounds to 0 in float32
    ref = kk.kernel_logsumexp(Gaussian(1.0), X.astype(np.float64), X.astype(np.float64)) + math.log(1e-300)
    np.testing.assert_allclose(lse, ref.astype(np.float32), rtol=1e-6)


@pytest.mark.parametrize("backend", _backends())
def test_float32_points_with_weights_beyond_float32(backend):
    """Weights above float32's range once became inf in float32 tiles: inf * 0 = NaN."""
    X = np.random.default_rng(0).standard_normal((20, 2)).astype(np.float32)
    X64 = X.astype(np.float64)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        far = kk.kernel_sum(Gaussian(0.01), X, X[:3] + 5, np.full(20, 1e300), backend=backend)
        big = kk.kernel_sum(Gaussian(1.0), X, X[:3], np.full(20, 1e35), backend=backend)
        lse = kk.kernel_logsumexp(Gaussian(1.0), X, X[:3], np.full(20, 100.0), backend=backend)
    assert far.dtype == np.float32 and np.all(far == 0)
    np.testing.assert_allclose(big, (1e35 * kk.kernel_sum(Gaussian(1.0), X64, X64[:3])).astype(np.float32), rtol=1e-6)
    np.testing.assert_allclose(lse, (100 + kk.kernel_logsumexp(Gaussian(1.0), X64, X64[:3])).astype(np.float32),
                               rtol=1e-6)


# ------------------------------------------------------------ other entry points
def test_tiny_memory_budget():
    X = np.random.default_rng(0).standard_normal((50, 3))
    ref = kk.kernel_sum(Gaussian(1.0), X, X[:7])
    with kk.options(memory=1):
        np.testing.assert_allclose(kk.kernel_sum(Gaussian(1.0), X, X[:7]), ref, rtol=1e-12)
        np.testing.assert_allclose(kk.kernel_sum(Gaussian(1.0), X, X[:7], backend="numpy"), ref, rtol=1e-12)
        kk.kernel_topk(Gaussian(1.0), X, X[:7], 3)
        kk.kernel_logsumexp(Gaussian(1.0), X, X[:7])
    with pytest.raises(ValueError, match=r"needs about 400 bytes, more than the memory budget of 1 bytes"):
        kk.kernel_block(Gaussian(1.0), X[:5], memory=1)


@pytest.mark.parametrize("name", ["m52", "m32", "imq23", "gauss"])
@pytest.mark.parametrize("bw", [1e-150, 1e150])
def test_kernel_thin_and_mmd_at_extreme_bandwidths(name, bw):
    kernel, _ = KERNELS[name](bw)
    X = np.random.default_rng(0).standard_normal((64, 2)) * (1e4 if bw < 1 else 1.0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        res = kernel_thin(X, 8, kernel, random_state=0, return_result=True, with_mmd=True)
        res32 = kernel_thin(X.astype(np.float32), 8, kernel, random_state=0)
        m = mmd(X, X[:8], kernel)
    assert res.indices.shape == (8,) and res32.shape == (8,) and math.isfinite(res.mmd) and math.isfinite(m)
    with pytest.raises(ValueError, match=r"'bandwidth'.*\[1e-150, 1e\+150\]"):
        kernel_thin(X, 8, kk.make_kernel("gaussian", bandwidth=bw * 1e10 if bw > 1 else bw * 1e-10), random_state=0)


# ------------------------------------------------------------ privacy
def _data(n=300, d=2, seed=0):
    return np.random.default_rng(seed).uniform(-1, 1, size=(n, d))


def test_private_kernel_sum_tiny_epsilon_fixed_sketch_raises_before_spending():
    acc = PrivacyAccountant(1.0)
    with pytest.raises(ValueError, match=r"'epsilon' parameter of PrivateKernelSum must be at least 2\.11e-08 "
                                         r"for a sketch of 2048 cells.*Got 1e-09"):
        PrivateKernelSum(Gaussian(1.0), epsilon=1e-9, radius=3, n_features=2048, accountant=acc).fit(_data())
    assert acc.spent == (0.0, 0.0)
    s = PrivateKernelSum(Gaussian(1.0), epsilon=2.2e-8, radius=3, n_features=2048).fit(_data())
    assert np.all(np.isfinite(s.query(_data(5)))) and math.isfinite(s.noise_std_)


@pytest.mark.parametrize("delta", [0.0, 1e-5])
def test_private_kernel_sum_auto_small_epsilon_works_or_raises(delta):
    X = _data()
    s = PrivateKernelSum(Gaussian(1.0), epsilon=1e-9, delta=delta, radius=3, n_features="auto").fit(X)
    assert np.all(np.isfinite(s.sums_)) and np.all(np.isfinite(s.query(X[:4])))
    assert s.noise_std_ > 1e6   # huge but finite noise
    acc = PrivacyAccountant(1.0, 1e-3)
    with pytest.raises(ValueError, match=r"'epsilon' parameter of PrivateKernelSum must be at least [0-9.e-]+ "
                                         r"with n_features='auto'.*Got 1e-300"):
        PrivateKernelSum(Gaussian(1.0), epsilon=1e-300, delta=delta, radius=3, n_features="auto",
                         accountant=acc).fit(X)
    assert acc.spent == (0.0, 0.0)


def test_private_kernel_sum_gaussian_mechanism_tiny_epsilon_and_delta():
    X = _data()
    with pytest.raises(ValueError, match=r"'epsilon' parameter of PrivateKernelSum.*delta=1e-300"):
        PrivateKernelSum(Gaussian(1.0), epsilon=1e-12, delta=1e-300, radius=3, n_features=64).fit(X)
    s = PrivateKernelSum(Gaussian(1.0), epsilon=1e-12, delta=1e-5, radius=3, n_features=64).fit(X)
    assert np.all(np.isfinite(s.query(X[:4])))


@pytest.mark.parametrize("epsilon", [1e300, 1e308])
def test_private_structures_huge_epsilon_are_nearly_exact(epsilon):
    X = _data()
    s = PrivateKernelSum(Gaussian(1.0), epsilon=epsilon, radius=3, n_features=512, random_state=0).fit(X)
    assert s.noise_std_ < 1e-200
    approx = PrivateKernelSum(Gaussian(1.0), epsilon=epsilon, radius=3, n_features="auto").fit(X)
    assert np.all(np.isfinite(approx.query(X[:3])))
    d = PrivateDistanceSum("l1", epsilon=epsilon, radius=1.0, levels=16).fit(X)
    exact = np.abs(X[None, :, :] - X[:3, None, :]).sum(axis=(1, 2))
    np.testing.assert_allclose(d.query(X[:3]), exact, rtol=1e-3)
    c = PrivateSimilarityClassifier(Gaussian(1.0), epsilon=epsilon, radius=3).fit(X, X[:, 0] > 0)
    assert np.all(np.isfinite(c.decision_function(X[:3])))


@pytest.mark.parametrize("epsilon", [1e-9, 1e-300])
def test_private_distance_sum_and_classifier_tiny_epsilon(epsilon):
    X = _data()
    y = X[:, 0] > 0
    for est, args in [(PrivateDistanceSum("l1", epsilon=epsilon, radius=1.0), (X,)),
                      (PrivateDistanceSum("l2", epsilon=epsilon, radius=1.0), (X,)),
                      (PrivateSimilarityClassifier(Gaussian(1.0), epsilon=epsilon, radius=3), (X, y))]:
        acc = PrivacyAccountant(1.0)
        est.accountant = acc
        if epsilon == 1e-9 and isinstance(est, PrivateDistanceSum):
            est.fit(*args)   # works: huge but finite noise
            values, std = est.query(X[:3], return_std=True)
            assert np.all(np.isfinite(values)) and np.all(np.isfinite(std))
            continue
        with pytest.raises(ValueError, match=rf"'epsilon' parameter of {type(est).__name__} must be at least "
                                             rf"[0-9.e+-]+ .*Got {epsilon!r}"):
            est.fit(*args)
        assert acc.spent == (0.0, 0.0)


def test_private_distance_sum_radius_range_and_huge_std():
    X = _data() * 1e149
    with pytest.raises(ValueError, match=r"'radius' parameter of PrivateDistanceSum must be in \(0, 1e\+150\].*"
                                         r"Got 1e\+300"):
        PrivateDistanceSum("l1", epsilon=1.0, radius=1e300).fit(X)
    d = PrivateDistanceSum("l1", epsilon=1e-6, radius=1e150).fit(X)
    values, std = d.query(X[:3], return_std=True)
    assert np.all(np.isfinite(values)) and np.all(np.isfinite(std)) and np.all(std > 1e150)


@pytest.mark.parametrize("kernel", [Gaussian(1e-150), Matern(0.01, 1.0), IMQ(1e-150), Laplace(1e-150)])
def test_private_kernel_sum_features_stay_bounded(kernel):
    """Huge frequencies (tiny bandwidths, heavy-tailed spectra) once gave cos(inf) = NaN features."""
    X = _data()
    for method in ("orf", "rff", "lsq-rff"):
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            s = PrivateKernelSum(kernel, epsilon=1.0, radius=3, n_features=64, method=method, random_state=0).fit(X)
            q = s.query(X[:4])
        assert np.all(np.isfinite(s.sums_)) and np.all(np.isfinite(q))
        assert np.max(np.abs(s.sums_)) < 10 * X.shape[0] + 1e3   # not the int64 garbage of NaN features


def test_accountant_tiny_budgets():
    a = PrivacyAccountant(1e-300, 1e-300)
    a.spend(5e-301)
    a.spend(5e-301, 1e-300)
    assert a.remaining == (0.0, 0.0)
    with pytest.raises(ValueError, match="budget exceeded"):
        a.spend(1e-300)
    assert PrivacyAccountant(1e300).spend(1e300).remaining == (0.0, 0.0)


# ------------------------------------------------------------ density
@pytest.mark.parametrize("rule, func", [("scott", bandwidth_scott), ("silverman", bandwidth_silverman)])
def test_zero_spread_data_with_a_rule_raise(rule, func):
    X = np.ones((50, 2))
    with pytest.raises(ValueError, match=rf"'bandwidth' parameter of KernelDensity must be a float when the data "
                                         rf"have zero spread.*bandwidth 0.*Got '{rule}'"):
        KernelDensity(bandwidth=rule).fit(X)
    with pytest.raises(ValueError, match=rf"'X' parameter of {func.__name__} must be points with some spread.*"
                                         r"Got an array of shape \(50, 2\).*zero spread.*bandwidth 0.*float "
                                         r"bandwidth"):
        func(X)
    with pytest.raises(ValueError, match="zero spread"):   # only the points with positive weight count
        func(np.array([[1.0, 2.0], [1.0, 2.0], [3.0, 3.0]]), sample_weight=[1.0, 2.0, 0.0])
    # a float bandwidth works on constant data: log N(0 | 0, h^2 I) in d = 2
    kde = KernelDensity(bandwidth=0.5).fit(X)
    np.testing.assert_allclose(kde.score_samples(X[:3]), -math.log(2 * math.pi * 0.25), rtol=1e-14)


def test_bandwidth_rules_scale_exactly_with_extreme_data():
    X = np.random.default_rng(0).standard_normal((100, 3))
    for k in (-700, -600, 600, 700):
        Z = np.ldexp(X, k)
        for func in (bandwidth_scott, bandwidth_silverman):
            with warnings.catch_warnings():
                warnings.simplefilter("error")
                h = func(Z)
            assert h == math.ldexp(func(X), k)
    kde = KernelDensity().fit(np.ldexp(X, 600))
    np.testing.assert_allclose(kde.score_samples(np.ldexp(X[:3], 600)),
                               KernelDensity().fit(X).score_samples(X[:3]) - 3 * 600 * math.log(2), rtol=1e-12)


def test_kde_float_bandwidth_extremes():
    X = np.random.default_rng(0).standard_normal((30, 2))
    with pytest.raises(ValueError, match=r"'bandwidth' parameter of KernelDensity must be at least [0-9.e-]+ for "
                                         r"these data.*Got 1e-300"):
        KernelDensity(bandwidth=1e-300).fit(X * 1e199)
    for h in (1e-300, 1e300):   # still fine where data / h is finite
        kde = KernelDensity(bandwidth=h).fit(X)
        got = kde.score_samples(X[:3])
        if h < 1:   # only the point itself counts
            np.testing.assert_allclose(got, -math.log(30) - math.log(2 * math.pi) - 2 * math.log(h), rtol=1e-14)
        else:       # every point counts fully
            np.testing.assert_allclose(got, -math.log(2 * math.pi) - 2 * math.log(h), rtol=1e-14)
        assert np.all(np.isfinite(kde.sample(3, random_state=0)))
    with pytest.raises(ValueError, match=r"'X' parameter of KernelDensity.score_samples must be at most"):
        KernelDensity(bandwidth=1e-300).fit(X).score_samples(X[:2] * 1e10)


@pytest.mark.parametrize("h", [1e-30, 1e-20, 1e20])
def test_kde_float32_with_bandwidth_beyond_float32(h):
    X = np.random.default_rng(0).standard_normal((30, 2)).astype(np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        got = KernelDensity(bandwidth=h).fit(X).score_samples(X[:3])
    assert got.dtype == np.float32
    ref = KernelDensity(bandwidth=h).fit(X.astype(np.float64)).score_samples(X[:3].astype(np.float64))
    np.testing.assert_allclose(got, ref.astype(np.float32), rtol=1e-6)
