"""Adaptive KDE: the sample-point estimator (Abramson's law, given per-point bandwidths) and the balloon
estimator, against slow direct references; integrals, sampling, the quantisation bound, errors."""

import math

import numpy as np
import pytest
from scipy import stats
from scipy.special import logsumexp

import kernelkit as kk
from kernelkit.density import KernelDensity
from kernelkit.density import _adaptive
from kernelkit.kernels import make_kernel


def _log_profile(kernel, r):
    """log k(r) of the unit-bandwidth kernel, written out (the reference, not the library's table)."""
    with np.errstate(divide="ignore"):
        if kernel == "gaussian":
            return -0.5 * r ** 2
        if kernel == "laplace":
            return -r
        if kernel == "epanechnikov":
            return np.log(np.clip(1 - r ** 2, 0, None))
    raise AssertionError(kernel)


def _log_z(kernel, d):
    """log of the integral of the unit kernel over R^d."""
    if kernel == "gaussian":
        return 0.5 * d * math.log(2 * math.pi)
    ball = 0.5 * d * math.log(math.pi) - math.lgamma(d / 2 + 1)        # volume of the unit ball
    if kernel == "laplace":  # int exp(-r) = S_{d-1} Gamma(d) = d V_d (d-1)!
        return math.log(d) + ball + math.lgamma(d)
    if kernel == "epanechnikov":  # int (1 - r^2) over the ball = V_d * 2 / (d + 2)
        return ball + math.log(2 / (d + 2))
    raise AssertionError(kernel)


def slow_sample_point(X, Y, h, w, kernel="gaussian"):
    """log p(y) = log sum_i w_i h_i^-d k(|y - x_i| / h_i) - log sum w - log Z, pair by pair."""
    X, Y = np.asarray(X, np.float64), np.asarray(Y, np.float64)
    d = X.shape[1]
    r = np.sqrt(((Y[:, None, :] - X[None, :, :]) ** 2).sum(-1)) / h[None, :]
    with np.errstate(divide="ignore"):
        terms = _log_profile(kernel, r) + np.log(w)[None, :] - d * np.log(h)[None, :]
    return logsumexp(terms, axis=1) - math.log(w.sum()) - _log_z(kernel, d)


def slow_balloon(X, Y, k, w, kernel="gaussian"):
    X, Y = np.asarray(X, np.float64), np.asarray(Y, np.float64)
    d = X.shape[1]
    D = np.sqrt(((Y[:, None, :] - X[None, :, :]) ** 2).sum(-1))
    hq = np.sort(D[:, w > 0], axis=1)[:, k - 1]
    with np.errstate(divide="ignore"):
        terms = _log_profile(kernel, D / hq[:, None]) + np.log(w)[None, :]
    return logsumexp(terms, axis=1) - d * np.log(hq) - math.log(w.sum()) - _log_z(kernel, d)


@pytest.mark.parametrize("kernel", ["gaussian", "laplace", "epanechnikov"])
@pytest.mark.parametrize("d", [1, 3])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_given_bandwidths_match_slow_reference(kernel, d, dtype):
    rng = np.random.default_rng(d)
    n, m = 37, 23
    X = rng.standard_normal((n, d))
    Y = 0.8 * rng.standard_normal((m, d))
    h = rng.choice([0.6, 0.9, 1.7], size=n) * rng.choice([1.0, 1.3], size=n)   # repeated values: groups
    w = rng.uniform(0.1, 2.0, size=n)
    w[[3, 11]] = 0.0                                                          # zero weights
    kde = KernelDensity(kernel=kernel).fit(X.astype(dtype), sample_weight=w, bandwidths=h)
    got = kde.score_samples(Y.astype(dtype))
    assert got.dtype == dtype
    ref = slow_sample_point(X.astype(dtype), Y.astype(dtype), h, w, kernel)
    fin = np.isfinite(ref)
    assert np.array_equal(fin, np.isfinite(got))
    tol = 1e-11 if dtype == np.float64 else 2e-4
    np.testing.assert_allclose(got[fin], ref[fin], rtol=tol, atol=tol)
    # the engine's blocked path (a 4 kB budget) gives the same
    tiny = KernelDensity(kernel=kernel, memory=4096).fit(X.astype(dtype), sample_weight=w, bandwidths=h)
    np.testing.assert_allclose(tiny.score_samples(Y.astype(dtype))[fin], got[fin], rtol=tol, atol=tol)
    np.testing.assert_allclose(kde.bandwidth_, np.exp(np.sum(w * np.log(h)) / w.sum()), rtol=1e-12)


def test_equal_bandwidths_are_the_fixed_estimate_and_sensitivity_zero_too():
    rng = np.random.default_rng(1)
    X, Y = rng.standard_normal((120, 2)), rng.standard_normal((30, 2))
    fixed = KernelDensity(bandwidth=0.45).fit(X)
    given = KernelDensity().fit(X, bandwidths=np.full(120, 0.45))
    zero = KernelDensity(bandwidth=0.45, adaptive="abramson", sensitivity=0.0).fit(X)
    np.testing.assert_allclose(given.score_samples(Y), fixed.score_samples(Y), rtol=1e-13)
    np.testing.assert_allclose(zero.score_samples(Y), fixed.score_samples(Y), rtol=1e-13)
    np.testing.assert_array_equal(zero.bandwidths_, np.full(120, 0.45))


@pytest.mark.parametrize("sensitivity", [0.5, 0.3, 1.0])
def test_abramson_law_from_the_pilot(sensitivity):
    rng = np.random.default_rng(2)
    X = np.r_[rng.standard_normal((150, 2)), 4 + 0.3 * rng.standard_normal((50, 2))]
    w = rng.uniform(0.5, 1.5, size=200)
    kde = KernelDensity(bandwidth="silverman", adaptive=True, sensitivity=sensitivity).fit(X, sample_weight=w)
    h = kk.bandwidth_silverman(X, w)
    assert kde.bandwidth_ == pytest.approx(h, rel=1e-14)
    pilot = slow_sample_point(X, X, np.full(200, h), w)                      # the fixed estimate at the data
    log_g = np.sum(w * pilot) / w.sum()
    np.testing.assert_allclose(kde.pilot_log_geometric_mean_, log_g, rtol=1e-12)
    ref_h = h * np.exp(-sensitivity * (pilot - log_g))
    np.testing.assert_allclose(kde.bandwidths_, ref_h, rtol=1e-11)
    assert np.exp(np.sum(w * np.log(kde.bandwidths_)) / w.sum()) == pytest.approx(h, rel=1e-11)
    # narrow in the dense cluster's middle, wide in the tails
    assert kde.bandwidths_[np.argmax(pilot)] < h < kde.bandwidths_[np.argmin(pilot)]
    Y = rng.standard_normal((40, 2)) * 2
    np.testing.assert_allclose(kde.score_samples(Y), slow_sample_point(X, Y, ref_h, w), rtol=1e-10)


@pytest.mark.parametrize("kernel", ["gaussian", "epanechnikov"])
def test_abramson_integrates_to_one_1d_and_2d(kernel):
    rng = np.random.default_rng(3)
    x = np.r_[rng.standard_normal(150), 5 + 0.2 * rng.standard_normal(50)][:, None]
    kde = KernelDensity(kernel=kernel, adaptive=True).fit(x)
    grid = np.linspace(-25, 30, 4001)        # the tails' kernels are wide
    p = np.exp(kde.score_samples(grid[:, None]))
    assert abs(np.trapezoid(p, grid) - 1) < 1e-5
    X = rng.standard_normal((40, 2))
    kde2 = KernelDensity(kernel=kernel, adaptive=True).fit(X)
    g = np.linspace(-9, 9, 181)
    GX, GY = np.meshgrid(g, g, indexing="ij")
    P = np.exp(kde2.score_samples(np.c_[GX.ravel(), GY.ravel()])).reshape(GX.shape)
    assert abs(np.trapezoid(np.trapezoid(P, g, axis=1), g) - 1) < 2e-3


def test_high_dimension_log_domain_exact():
    rng = np.random.default_rng(4)
    d = 48
    X, Y = rng.standard_normal((40, d)), 3 * rng.standard_normal((7, d))
    kde = KernelDensity(bandwidth=0.3, adaptive=True).fit(X)
    got = kde.score_samples(Y)
    assert np.all(np.isfinite(got)) and np.all(got < -1000)          # every kernel value underflows float64
    np.testing.assert_allclose(got, slow_sample_point(X, Y, kde.bandwidths_, np.ones(40)), rtol=1e-12)


def test_sampling_from_the_sample_point_estimate():
    rng = np.random.default_rng(5)
    x = np.r_[rng.standard_normal(60), 6 + 0.3 * rng.standard_normal(40)]
    kde = KernelDensity(adaptive=True).fit(x[:, None])
    h = kde.bandwidths_

    def cdf(t):
        return np.mean(stats.norm.cdf((np.asarray(t)[:, None] - x[None, :]) / h[None, :]), axis=1)

    S = kde.sample(4000, random_state=0)
    assert S.shape == (4000, 1)
    assert stats.kstest(S[:, 0], cdf).pvalue > 0.01                  # the mixture it should be drawn from
    assert stats.kstest(S[:, 0] + 0.3, cdf).pvalue < 1e-6             # a shifted one is told apart
    # the mixture's variance: mean(x^2 + h_i^2) - mean(x)^2 (4,000 draws: within 5%)
    assert np.var(S[:, 0]) == pytest.approx(np.mean(x ** 2 + h ** 2) - np.mean(x) ** 2, rel=0.05)
    np.testing.assert_array_equal(kde.sample(5, random_state=1), kde.sample(5, random_state=1))


@pytest.mark.parametrize("d", [1, 2])
def test_balloon_matches_slow_reference(d):
    rng = np.random.default_rng(6)
    X, Y = rng.standard_normal((80, d)), rng.standard_normal((25, d))
    w = rng.uniform(0.2, 1.0, size=80)
    w[5] = 0.0
    kde = KernelDensity(adaptive="balloon", n_neighbors=9).fit(X, sample_weight=w)
    assert kde.n_neighbors_ == 9 and kde.bandwidth_ is None
    np.testing.assert_allclose(kde.score_samples(Y), slow_balloon(X, Y, 9, w), rtol=1e-11)
    lap = KernelDensity(kernel="laplace", adaptive="balloon", n_neighbors=4).fit(X)
    np.testing.assert_allclose(lap.score_samples(Y), slow_balloon(X, Y, 4, np.ones(80), "laplace"), rtol=1e-11)
    default = KernelDensity(adaptive="balloon").fit(X)
    assert default.n_neighbors_ == math.ceil(80 ** (4 / (d + 4)))
    with pytest.raises(kk.InvalidValueError, match="'adaptive' parameter of KernelDensity must be 'abramson' or "
                                                   "None to sample"):
        kde.sample(3)


def test_balloon_query_on_k_coincident_points_is_infinite():
    X = np.r_[np.zeros((3, 1)), np.arange(1, 6)[:, None]]
    kde = KernelDensity(adaptive="balloon", n_neighbors=2).fit(X)
    out = kde.score_samples(np.array([[0.0], [0.5]]))
    assert out[0] == np.inf and np.isfinite(out[1])


@pytest.mark.parametrize("kernel", ["gaussian", "epanechnikov"])
def test_bins_l1_bound_holds_and_fewer_groups(kernel, monkeypatch):
    rng = np.random.default_rng(7)
    x = np.r_[rng.standard_normal(80), 4 + 0.25 * rng.standard_normal(40)][:, None]
    exact = KernelDensity(kernel=kernel, adaptive=True).fit(x)
    binned = KernelDensity(kernel=kernel, adaptive=True, adaptive_bins=8).fit(x)
    assert exact.adaptive_l1_bound_ == 0.0
    lh = np.log(exact.bandwidths_)
    eps = np.max(np.abs(np.log(binned.bandwidths_) - lh))
    assert eps <= (lh.max() - lh.min()) / (2 * 7) * (1 + 1e-12)
    c = math.sqrt(2) if kernel == "gaussian" else 2.0
    assert binned.adaptive_l1_bound_ == pytest.approx(c * eps, rel=1e-12)
    assert len(np.unique(binned.bandwidths_)) <= 8
    grid = np.linspace(-20, 24, 6001)
    l1 = np.trapezoid(np.abs(np.exp(exact.score_samples(grid[:, None]))
                             - np.exp(binned.score_samples(grid[:, None]))), grid)
    assert 0 < l1 <= binned.adaptive_l1_bound_
    assert abs(np.trapezoid(np.exp(binned.score_samples(grid[:, None])), grid) - 1) < 1e-5
    # one engine call per distinct bandwidth
    calls = []
    real = _adaptive.kernel_logsumexp
    monkeypatch.setattr(_adaptive, "kernel_logsumexp", lambda *a, **k: calls.append(1) or real(*a, **k))
    binned.score_samples(grid[:50, None])
    assert len(calls) == len(np.unique(binned.bandwidths_))


def test_quantise_and_l1_bound_helpers():
    h = np.array([1.0, 2.0, 4.0, 3.0])
    out, eps = _adaptive.quantise_bandwidths(h, 3)
    np.testing.assert_allclose(out, [1.0, 2.0, 4.0, 4.0])
    assert eps == pytest.approx(math.log(4 / 3))
    same, eps0 = _adaptive.quantise_bandwidths(np.full(3, 0.7), 5)
    assert eps0 == 0.0 and np.array_equal(same, np.full(3, 0.7))
    g = make_kernel("gaussian", bandwidth=1.0)
    assert _adaptive.l1_bound(g, 3, 0.1) == pytest.approx(math.sqrt(6) * 0.1)
    assert _adaptive.l1_bound(make_kernel("tophat", bandwidth=1.0), 3, 0.1) == pytest.approx(0.6)
    # the tophat bound is tight to first order: ||K_1 - K_s||_1 = 2 (1 - s^-d)
    s = math.exp(1e-3)
    assert 2 * (1 - s ** -3) <= _adaptive.l1_bound(make_kernel("tophat", bandwidth=1.0), 3, 1e-3)


def test_refit_without_adaptive_forgets_it():
    rng = np.random.default_rng(8)
    X, Y = rng.standard_normal((50, 1)), rng.standard_normal((9, 1))
    kde = KernelDensity(adaptive=True).fit(X)
    kde.set_params(adaptive=None).fit(X)
    np.testing.assert_allclose(kde.score_samples(Y), KernelDensity().fit(X).score_samples(Y), rtol=1e-14)
    kde.cdf([0.0])   # fixed again: allowed
    kde.fit(X, bandwidths=np.full(50, 0.3))
    kde.fit(X)
    np.testing.assert_allclose(kde.score_samples(Y), KernelDensity().fit(X).score_samples(Y), rtol=1e-14)


@pytest.mark.parametrize("kwargs, fit_kwargs, match", [
    (dict(adaptive=True, bandwidth_matrix="full"), {}, "'bandwidth_matrix' parameter of KernelDensity must be None "
                                                       "with adaptive bandwidths"),
    (dict(adaptive=True, bounds=[(-10, 10)] * 2), {}, "'bounds' parameter .* must be None with adaptive"),
    (dict(adaptive=True, kernel=kk.Gaussian(1.0)), {}, "'kernel' parameter .* must be a kernel name with adaptive"),
    (dict(adaptive="balloon", bandwidth=0.5), {}, "'bandwidth' parameter .* must be None with adaptive='balloon'"),
    (dict(adaptive="balloon", adaptive_bins=4), {}, "'adaptive_bins' parameter .* must be None with adaptive="
                                                    "'balloon'"),
    (dict(adaptive="balloon", n_neighbors=31), {}, "'n_neighbors' parameter .* must be at most the number of data "
                                                   "points of positive weight \\(30\\)"),
    (dict(n_neighbors=3), {}, "'n_neighbors' parameter .* must be None unless"),
    (dict(adaptive=True, n_neighbors=3), {}, "'n_neighbors' parameter .* must be None unless adaptive='balloon'"),
    (dict(adaptive_bins=4), {}, "'adaptive_bins' parameter .* must be None unless"),
    (dict(adaptive=True), dict(bandwidths=np.ones(30)), "'adaptive' parameter .* must be None \\(or False\\) when "
                                                         "fit is given per-point 'bandwidths'"),
    (dict(bandwidth="cv"), dict(bandwidths=np.ones(30)), "'bandwidth' parameter of KernelDensity must be None when "
                                                         "fit is given per-point 'bandwidths'"),
    ({}, dict(bandwidths=-np.ones(30)), "'bandwidths' parameter of KernelDensity.fit must be finite bandwidths > 0"),
    ({}, dict(bandwidths=np.r_[np.ones(29), np.nan]), "'bandwidths' parameter of KernelDensity.fit"),
    ({}, dict(bandwidths=np.ones(29)), "bandwidths"),
    (dict(adaptive="wide"), {}, "'adaptive' parameter of KernelDensity must be one of \\{False, True, 'abramson', "
                                "'balloon'\\} or None. Got 'wide'"),
    (dict(adaptive=True, sensitivity=1.5), {}, "'sensitivity' parameter of KernelDensity must be a float in "
                                               "\\[0, 1\\]. Got 1.5"),
    (dict(adaptive=True, adaptive_bins=1), {}, "'adaptive_bins' parameter of KernelDensity must be an int >= 2"),
])
def test_bad_input_clear_errors(kwargs, fit_kwargs, match):
    X = np.random.default_rng(9).standard_normal((30, 2))
    with pytest.raises((kk.InvalidValueError, kk.InvalidTypeError), match=match):
        KernelDensity(**kwargs).fit(X, **fit_kwargs)


@pytest.mark.parametrize("method, args", [("cdf", ([0.0],)), ("quantile", ([0.5],)), ("marginal", ([0],)),
                                          ("diagnose", (np.zeros((2, 1)),)), ("modes", ()),
                                          ("conditional", ([0], [0.0]))])
def test_fixed_bandwidth_methods_refuse_adaptive(method, args):
    X = np.random.default_rng(10).standard_normal((30, 1))
    kde = KernelDensity(adaptive=True).fit(X)
    with pytest.raises(kk.InvalidValueError, match=f"'adaptive' parameter of KernelDensity must be None \\(a fixed "
                                                   f"bandwidth\\) for {method}"):
        getattr(kde, method)(*args)
    given = KernelDensity().fit(X, bandwidths=np.ones(30))
    with pytest.raises(kk.InvalidValueError, match="Got per-point bandwidths"):
        getattr(given, method)(*args)


def test_abramson_zero_weight_points_and_float32():
    rng = np.random.default_rng(11)
    X = rng.standard_normal((60, 2))
    X[7] = [30.0, 30.0]                     # far away, weight 0: no pilot mass there, bandwidth h
    w = np.ones(60)
    w[7] = 0.0
    kde = KernelDensity(adaptive=True).fit(X, sample_weight=w)
    assert kde.bandwidths_[7] == pytest.approx(kde.bandwidth_, rel=1e-15)
    rest = np.delete(np.arange(60), 7)
    ref = KernelDensity(adaptive=True).fit(X[rest])
    np.testing.assert_allclose(kde.bandwidths_[rest], ref.bandwidths_, rtol=1e-12)
    Y = rng.standard_normal((9, 2))
    np.testing.assert_allclose(kde.score_samples(Y), ref.score_samples(Y), rtol=1e-12)
    f32 = KernelDensity(adaptive=True).fit(X[rest].astype(np.float32))
    got = f32.score_samples(Y.astype(np.float32))
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, ref.score_samples(Y), rtol=2e-5)
