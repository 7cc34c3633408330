"""HSIC and dHSIC: statistics against explicit matrices, permutation nulls against explicit loops,
an exactly enumerable null, calibration and power at fixed seeds, bad input."""

import itertools
import math

import numpy as np
import pytest
import scipy.stats

import kernelkit as kk
from kernelkit.exceptions import InvalidTypeError, InvalidValueError
from kernelkit.stats import dhsic, dhsic_test, hsic, hsic_test


# --------------------------------------------------------------------------- dense references
def ref_hsic_b(K, L):
    n = K.shape[0]
    H = np.eye(n) - 1.0 / n
    return float(np.trace(K @ H @ L @ H)) / n ** 2


def ref_hsic_u(K, L):
    n = K.shape[0]
    Kt, Lt, o = K - np.diag(np.diag(K)), L - np.diag(np.diag(L)), np.ones(n)
    return float(np.trace(Kt @ Lt) + (o @ Kt @ o) * (o @ Lt @ o) / ((n - 1) * (n - 2))
                 - 2 / (n - 2) * (o @ Kt @ Lt @ o)) / (n * (n - 3))


def ref_dhsic(Ks):
    """Pfister et al. (2018), the V-statistic written with explicit loops over the terms."""
    n, d = Ks[0].shape[0], len(Ks)
    t1 = np.sum(np.prod(np.stack(Ks), axis=0)) / n ** 2
    t2 = np.prod([K.sum() for K in Ks]) / n ** (2 * d)
    t3 = 2 * np.sum(np.prod(np.stack([K.sum(axis=1) for K in Ks]), axis=0)) / n ** (d + 1)
    return float(t1 + t2 - t3)


def gram(k, X):
    X = np.asarray(X, np.float64)
    return np.asarray(k(X, X), np.float64)


def data(n, rng, dep=1.0):
    X = rng.standard_normal((n, 2))
    Y = dep * X[:, :1] ** 2 + rng.standard_normal((n, 1))
    return X, Y


KERNELS = {  # Gaussians take the engine's product trick, the others the blocked path
    "gaussian": (kk.Gaussian(1.1), kk.Gaussian(0.7)),
    "laplace-imq": (kk.Laplace(1.3), kk.IMQ(0.9)),
}


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("kernels", list(KERNELS))
@pytest.mark.parametrize("memory", [None, 3000])     # 3000 bytes: row blocks of one or two rows
def test_hsic_matches_dense_reference(dtype, kernels, memory):
    rng = np.random.default_rng(0)
    X, Y = data(37, rng)
    X, Y = X.astype(dtype), Y.astype(dtype)
    kx, ky = KERNELS[kernels]
    K, L = gram(kx, X), gram(ky, Y)
    tol = 1e-12 if dtype == np.float64 else 1e-5
    with kk.options(memory=memory):
        assert hsic(X, Y, kx, ky) == pytest.approx(ref_hsic_b(K, L), rel=tol)
        assert hsic(X, Y, kx, ky, unbiased=True) == pytest.approx(ref_hsic_u(K, L), rel=tol * 10)


def test_hsic_median_default_and_1d_input():
    rng = np.random.default_rng(1)
    x = rng.standard_normal(25)
    y = x + rng.standard_normal(25)
    kx = kk.Gaussian(kk.median_bandwidth(x[:, None]))
    ky = kk.Gaussian(kk.median_bandwidth(y[:, None]))
    assert hsic(x, y) == pytest.approx(ref_hsic_b(gram(kx, x[:, None]), gram(ky, y[:, None])), rel=1e-12)
    assert hsic(x, y, bandwidth_x=0.5, bandwidth_y=2.0) == pytest.approx(
        ref_hsic_b(gram(kk.Gaussian(0.5), x[:, None]), gram(kk.Gaussian(2.0), y[:, None])), rel=1e-12)


def test_inputs_not_modified():
    rng = np.random.default_rng(2)
    X, Y = data(20, rng)
    X0, Y0 = X.copy(), Y.copy()
    hsic_test(X, Y, n_permutations=5, random_state=0)
    hsic_test(X, Y, method="gamma")
    dhsic_test(X, Y, Y, n_permutations=5, random_state=0)
    assert np.array_equal(X, X0) and np.array_equal(Y, Y0)


@pytest.mark.parametrize("memory", [None, 2000])
def test_dhsic_matches_reference_and_hsic(memory):
    rng = np.random.default_rng(3)
    n = 31
    A = rng.standard_normal((n, 1))
    B = rng.standard_normal((n, 2))
    C = A * B[:, :1] + 0.3 * rng.standard_normal((n, 1))
    ks = [kk.Gaussian(0.8), kk.Laplace(1.5), kk.Gaussian(1.2)]
    with kk.options(memory=memory):
        assert dhsic(A, B, C, kernels=ks) == pytest.approx(ref_dhsic([gram(k, Z) for k, Z in zip(ks, (A, B, C))]),
                                                           rel=1e-12)
        g = [kk.Gaussian(0.8), kk.Gaussian(1.2)]
        assert dhsic(A, C, kernels=g) == pytest.approx(hsic(A, C, g[0], g[1]), rel=1e-12)
        assert dhsic(A, C, kernels=ks[:2]) == pytest.approx(hsic(A, C, ks[0], ks[1]), rel=1e-12)
        assert dhsic(A, C, kernels="gaussian", bandwidths=[0.8, 1.2]) == pytest.approx(
            hsic(A, C, g[0], g[1]), rel=1e-12)


# --------------------------------------------------------------------------- permutation nulls
@pytest.mark.parametrize("unbiased", [False, True])
@pytest.mark.parametrize("memory", [None, 4000])   # 4000 bytes: the Gram matrices do not fit, S is recomputed
@pytest.mark.parametrize("kernels", list(KERNELS))
def test_permutation_null_matches_explicit_loop(unbiased, memory, kernels):
    rng = np.random.default_rng(4)
    X, Y = data(13, rng, dep=0.3)
    kx, ky = KERNELS[kernels]
    with kk.options(memory=memory):
        r = hsic_test(X, Y, kx, ky, n_permutations=40, unbiased=unbiased, random_state=7)
    assert r.details["path"] == ("recomputed" if memory else "dense")
    K, L = gram(kx, X), gram(ky, Y)
    ref = ref_hsic_u if unbiased else ref_hsic_b
    stream = np.random.default_rng(7)
    loop = []
    for _ in range(40):
        p = stream.permutation(13)
        loop.append(ref(K, L[np.ix_(p, p)]))
    np.testing.assert_allclose(r.null, loop, rtol=1e-10, atol=1e-15)
    assert r.statistic == pytest.approx(ref(K, L), rel=1e-12)
    assert r.pvalue == (1 + np.sum(np.asarray(loop) >= r.statistic)) / 41
    assert r.reject == (r.pvalue <= 0.05)
    with kk.options(memory=memory):   # same seed, same result
        r2 = hsic_test(X, Y, kx, ky, n_permutations=40, unbiased=unbiased, random_state=7)
    np.testing.assert_array_equal(r.null, r2.null)


def test_dhsic_permutation_null_matches_explicit_loop():
    rng = np.random.default_rng(5)
    n = 11
    Xs = [rng.standard_normal((n, 1)) for _ in range(3)]
    ks = [kk.Gaussian(1.0), kk.Laplace(0.7), kk.Gaussian(1.4)]
    Ks = [gram(k, Z) for k, Z in zip(ks, Xs)]
    for memory in (None, 3000):
        with kk.options(memory=memory):
            r = dhsic_test(*Xs, kernels=ks, n_permutations=30, random_state=np.random.default_rng(9))
        stream = np.random.default_rng(9)
        loop = []
        for _ in range(30):
            p1, p2 = stream.permutation(n), stream.permutation(n)
            loop.append(ref_dhsic([Ks[0], Ks[1][np.ix_(p1, p1)], Ks[2][np.ix_(p2, p2)]]))
        np.testing.assert_allclose(r.null, loop, rtol=1e-10, atol=1e-15)
        assert r.statistic == pytest.approx(ref_dhsic(Ks), rel=1e-12)


def test_pvalue_against_exact_enumeration():
    """n = 6: the exact permutation p-value is #{sigma in S_6: T_sigma >= T} / 720; the Monte Carlo p-value
    with B = 3000 must agree within 4 binomial standard deviations (plus the 1 / (1 + B) of its +1)."""
    rng = np.random.default_rng(6)
    X, Y = data(6, rng, dep=0.5)
    kx, ky = kk.Gaussian(1.0), kk.Gaussian(1.0)
    K, L = gram(kx, X), gram(ky, Y)
    T = ref_hsic_b(K, L)
    exact_null = np.array([ref_hsic_b(K, L[np.ix_(p, p)]) for p in map(list, itertools.permutations(range(6)))])
    p_exact = np.mean(exact_null >= T - 1e-15)
    assert 0.05 < p_exact < 0.95              # an informative case
    B = 3000
    r = hsic_test(X, Y, kx, ky, n_permutations=B, random_state=0)
    assert abs(r.pvalue - p_exact) <= 4 * math.sqrt(p_exact * (1 - p_exact) / B) + 1 / (B + 1)
    # every permuted statistic is one of the exact null's values
    assert np.all(np.min(np.abs(r.null[:, None] - exact_null[None, :]), axis=1) < 1e-12)


def test_threshold_consistent_with_decision():
    rng = np.random.default_rng(8)
    for dep in (0.0, 0.4, 1.5):
        X, Y = data(25, rng, dep)
        r = hsic_test(X, Y, n_permutations=99, random_state=1)
        assert r.reject == (r.statistic > r.threshold) == (r.pvalue <= 0.05)


# --------------------------------------------------------------------------- gamma approximation
def test_gamma_moments_match_dense_formulas():
    """Gretton et al. (2008), written from the paper with dense matrices (kernels with k(x, x) = 1)."""
    rng = np.random.default_rng(10)
    n = 40
    X, Y = data(n, rng, dep=0.2)
    kx, ky = kk.Gaussian(1.2), kk.Gaussian(0.9)
    K, L = gram(kx, X), gram(ky, Y)
    H = np.eye(n) - 1.0 / n
    Kc, Lc = H @ K @ H, H @ L @ H
    stat = np.sum(Kc * Lc) / n                          # n HSIC_b
    V = (Kc * Lc / 6) ** 2
    var = (V.sum() - np.trace(V)) / (n * (n - 1)) * 72 * (n - 4) * (n - 5) / (n * (n - 1) * (n - 2) * (n - 3))
    mu_x = (K.sum() - n) / (n * (n - 1))
    mu_y = (L.sum() - n) / (n * (n - 1))
    mean = (1 + mu_x * mu_y - mu_x - mu_y) / n
    shape, scale = mean ** 2 / var, var * n / mean
    for memory in (None, 3000):
        with kk.options(memory=memory):
            r = hsic_test(X, Y, kx, ky, method="gamma", alpha=0.1)
        assert r.statistic == pytest.approx(stat / n, rel=1e-12)
        assert r.details["shape"] == pytest.approx(shape, rel=1e-10)
        assert r.details["scale"] == pytest.approx(scale, rel=1e-10)
        assert r.pvalue == pytest.approx(scipy.stats.gamma.sf(stat, shape, scale=scale), rel=1e-9)
        assert r.threshold == pytest.approx(scipy.stats.gamma.ppf(0.9, shape, scale=scale) / n, rel=1e-10)
        assert r.null is None and r.reject == (r.statistic > r.threshold)


# --------------------------------------------------------------------------- calibration and power
def _binomial_99(reps, alpha=0.05):
    return scipy.stats.binom.ppf(0.005, reps, alpha), scipy.stats.binom.ppf(0.995, reps, alpha)


@pytest.mark.parametrize("method", ["permutation", "gamma"])
def test_type_one_error_calibrated(method):
    """200 independent pairs (n = 30) at seed 11: rejections at alpha = 0.05 inside Bin(200, 0.05)'s 99%
    interval [4, 18]."""
    rng = np.random.default_rng(11)
    reps = 200
    rej = 0
    for _ in range(reps):
        X = rng.standard_normal((30, 2))
        Y = rng.standard_t(3, size=(30, 1))
        rej += hsic_test(X, Y, method=method, n_permutations=99, random_state=rng).reject
    lo, hi = _binomial_99(reps)
    assert lo <= rej <= hi


def test_dhsic_type_one_error_calibrated():
    rng = np.random.default_rng(12)
    reps = 150
    rej = sum(dhsic_test(*(rng.standard_normal((20, 1)) for _ in range(3)), n_permutations=59,
                         random_state=rng).reject for _ in range(reps))
    lo, hi = _binomial_99(reps)
    assert lo <= rej <= hi


def test_power_on_dependent_examples():
    rng = np.random.default_rng(13)
    X = rng.standard_normal((100, 1))
    Y = X ** 2 + 0.5 * rng.standard_normal((100, 1))    # uncorrelated with X, dependent
    assert abs(np.corrcoef(X[:, 0], Y[:, 0])[0, 1]) < 0.3
    for method in ("permutation", "gamma"):
        assert hsic_test(X, Y, method=method, n_permutations=199, random_state=0).pvalue < 0.01
    assert hsic_test(X, Y, unbiased=True, n_permutations=199, random_state=0).pvalue < 0.01
    # pairwise independent, jointly dependent: C = A B with independent random signs A, B
    n = 150
    A, B = rng.choice([-1.0, 1.0], n), rng.choice([-1.0, 1.0], n)
    C = A * B
    r = dhsic_test(A, B, C, n_permutations=199, random_state=0)
    assert r.pvalue < 0.01
    assert hsic_test(A, C, n_permutations=199, random_state=0).pvalue > 0.01


# --------------------------------------------------------------------------- bad input
def test_bad_input():
    rng = np.random.default_rng(14)
    X, Y = data(10, rng)
    with pytest.raises(InvalidValueError, match="'Y' parameter of hsic must be an array with as many rows"):
        hsic(X, Y[:9])
    with pytest.raises(InvalidValueError, match="at least 2 rows"):
        hsic(X[:1], Y[:1])
    with pytest.raises(InvalidValueError, match="at least 4 rows"):
        hsic(X[:3], Y[:3], unbiased=True)
    with pytest.raises(InvalidValueError, match="at least 6 rows"):
        hsic_test(X[:5], Y[:5], method="gamma")
    bad = X.copy()
    bad[3, 1] = np.nan
    with pytest.raises(InvalidValueError, match="finite"):
        hsic_test(bad, Y)
    for a in (0, 1, -0.1, 1.5, float("nan")):
        with pytest.raises(InvalidValueError, match="'alpha' parameter of hsic_test must be a float in"):
            hsic_test(X, Y, alpha=a)
    with pytest.raises(InvalidTypeError, match="alpha"):
        dhsic_test(X, Y, alpha="0.05")
    with pytest.raises(InvalidValueError, match="'alpha' parameter of dhsic_test"):
        dhsic_test(X, Y, alpha=1.0)
    with pytest.raises(InvalidValueError, match="method"):
        hsic_test(X, Y, method="wild")
    with pytest.raises(InvalidValueError, match="unbiased"):
        hsic_test(X, Y, method="gamma", unbiased=True)
    with pytest.raises(InvalidValueError, match="n_permutations"):
        hsic_test(X, Y, n_permutations=0)
    with pytest.raises(InvalidTypeError, match="n_permutations"):
        hsic_test(X, Y, n_permutations=10.0)
    with pytest.raises(InvalidValueError, match="bandwidth_x"):
        hsic(X, Y, kk.Gaussian(1.0), bandwidth_x=1.0)
    with pytest.raises(InvalidValueError, match="bandwidth_y"):
        hsic(X, Y, bandwidth_y=-1.0)
    with pytest.raises(InvalidValueError, match="kernel_y"):
        hsic(X, Y, kernel_y="nope")
    with pytest.raises(InvalidValueError, match="at least two variables"):
        dhsic(X)
    with pytest.raises(InvalidValueError, match="kernels"):
        dhsic(X, Y, X, kernels=[kk.Gaussian(1.0)] * 2)
    with pytest.raises(InvalidValueError, match=r"'Xs\[2\]'"):
        dhsic_test(X, Y, X[:8])
    with pytest.raises(InvalidValueError, match="random_state"):
        hsic_test(X, Y, random_state=-1)


def ref_dhsic_gamma(Ks):
    """Pfister et al. (2018), section 4.2, for unit-diagonal kernels, written term by term."""
    n, d = Ks[0].shape[0], len(Ks)
    a = [K.sum() / n ** 2 for K in Ks]
    b = [(K ** 2).sum() / n ** 2 for K in Ks]
    c = [(K.sum(axis=1) ** 2).sum() / n ** 3 for K in Ks]
    P = np.prod
    mean = (1 - sum(P([a[k] for k in range(d) if k != j]) for j in range(d)) + (d - 1) * P(a)) / n
    t = P(b) + (d - 1) ** 2 * P(a) ** 2 + 2 * (d - 1) * P(c)
    for r in range(d):
        rest = [k for k in range(d) if k != r]
        t += b[r] * P([a[k] ** 2 for k in rest]) - 2 * b[r] * P([c[k] for k in rest]) \
            - 2 * (d - 1) * c[r] * P([a[k] ** 2 for k in rest])
        for s in range(r + 1, d):
            t += 2 * c[r] * c[s] * P([a[k] ** 2 for k in range(d) if k not in (r, s)])
    f1 = P([n - 2 * d - j for j in range(2 * d - 2)])
    f2 = n * (n - 1) * P([n - 2 - j for j in range(2 * d - 2)])
    return mean, 2 * f1 / f2 * t


@pytest.mark.parametrize("memory", [None, 2500])
def test_dhsic_gamma_matches_dense_formulas(memory):
    rng = np.random.default_rng(15)
    n = 29
    Xs = [rng.standard_normal((n, 1)), rng.standard_normal((n, 2)), rng.standard_normal((n, 1))]
    ks = [kk.Gaussian(0.9), kk.Laplace(1.2), kk.Gaussian(1.4)]
    Ks = [gram(k, Z) for k, Z in zip(ks, Xs)]
    mean, var = ref_dhsic_gamma(Ks)
    with kk.options(memory=memory):
        r = dhsic_test(*Xs, kernels=ks, method="gamma")
    shape, scale = mean ** 2 / var, n * var / mean
    assert r.statistic == pytest.approx(ref_dhsic(Ks), rel=1e-12)
    assert r.details["shape"] == pytest.approx(shape, rel=1e-10)
    assert r.details["scale"] == pytest.approx(scale, rel=1e-10)
    assert r.pvalue == pytest.approx(scipy.stats.gamma.sf(n * ref_dhsic(Ks), shape, scale=scale), rel=1e-9)
    # two variables: close to HSIC's gamma test (the two papers estimate the moments slightly differently)
    X, Y = data(60, rng, dep=0.3)
    p_d = dhsic_test(X, Y, method="gamma").pvalue
    p_h = hsic_test(X, Y, method="gamma").pvalue
    assert abs(p_d - p_h) < 0.03


def test_dhsic_gamma_calibrated_and_powerful():
    """The gamma approximation is asymptotic: measured 0.10 / 0.07 / 0.06 type-I error at n = 40 / 100 / 200
    for d = 3 (200 repetitions), so the level is checked at n = 200."""
    rng = np.random.default_rng(16)
    reps = 150
    rej = sum(dhsic_test(*(rng.standard_normal((200, 1)) for _ in range(3)), method="gamma").reject
              for _ in range(reps))
    lo, hi = _binomial_99(reps)
    assert lo <= rej <= hi
    A, B = rng.choice([-1.0, 1.0], 150), rng.choice([-1.0, 1.0], 150)
    assert dhsic_test(A, B, A * B, method="gamma").pvalue < 0.01
    with pytest.raises(InvalidValueError, match="at least 10 rows"):
        dhsic_test(A[:9], B[:9], A[:9], method="gamma")


def test_memory_stays_within_budget_when_gram_matrices_do_not_fit():
    """n = 700: one Gram matrix is 3.9 MB; under a 1 MB budget the statistic, the permutation null and the
    gamma moments run in row blocks: the traced (numpy) peak stays within 1.3 MB, a third of one matrix."""
    import tracemalloc
    rng = np.random.default_rng(17)
    X, Y = data(700, rng, dep=0.5)
    kx, ky = kk.Laplace(1.0), kk.Gaussian(1.0) * kk.Laplace(2.0)     # blocked paths (no engine product trick)
    hsic_test(X[:50], Y[:50], kx, ky, n_permutations=2, random_state=0)    # first calls import modules
    hsic_test(X[:50], Y[:50], kx, ky, method="gamma")
    tracemalloc.start()
    try:
        with kk.options(memory="1MB"):
            r = hsic_test(X, Y, kx, ky, n_permutations=2, random_state=0)
            g = hsic_test(X, Y, kx, ky, method="gamma")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert r.details["path"] == "recomputed"
    assert peak < 1.3e6          # the budget, plus the engine's tiles and the inputs' copies
    assert g.statistic == pytest.approx(r.statistic, rel=1e-12)


def test_constant_variable_cannot_reject():
    rng = np.random.default_rng(18)
    X, Y = np.ones((20, 1)), rng.standard_normal((20, 1))
    for method in ("permutation", "gamma"):
        r = hsic_test(X, Y, method=method, n_permutations=19, random_state=0)
        assert r.pvalue == 1.0 and not r.reject
    assert dhsic_test(X, X, Y, method="gamma").pvalue == 1.0     # null mean 0: degenerate, p = 1
    assert kk.stats.kci_test(Y, X, rng.standard_normal((20, 1))).pvalue == 1.0
