"""KCI: the statistic and its gamma moments against explicit matrices, the simulated null, calibration
and power at fixed seeds, the size guard and bad input."""

import numpy as np
import pytest
import scipy.stats

import kernelkit as kk
from kernelkit.exceptions import InvalidTypeError, InvalidValueError
from kernelkit.stats import kci_test


def chain(n, rng, direct=0.0):
    """X <- Z -> Y (conditionally independent given Z), plus ``direct`` times X in Y."""
    Z = rng.standard_normal((n, 1))
    X = Z + 0.5 * rng.standard_normal((n, 1))
    Y = np.sin(Z) + direct * X ** 2 + 0.5 * rng.standard_normal((n, 1))
    return X, Y, Z


def ref_kci(X, Y, Z, kx, ky, kz, eps):
    """Zhang et al. (2011) with explicit matrices and a matrix inverse (no eigendecomposition)."""
    n = X.shape[0]
    H = np.eye(n) - 1.0 / n
    XZ = np.hstack([X, Z])
    Kx, Ky, Kz = (H @ np.asarray(k(A, A), np.float64) @ H for k, A in ((kx, XZ), (ky, Y), (kz, Z)))
    R = eps * np.linalg.inv(Kz + eps * np.eye(n))
    KxR, KyR = R @ Kx @ R, R @ Ky @ R
    stat = np.trace(KxR @ KyR) / n
    W = KxR * KyR
    return stat, np.trace(W) / n, 2 * np.sum(W ** 2) / n ** 2, np.linalg.eigvalsh(W)


def std(A):
    return (A - A.mean(axis=0)) / A.std(axis=0)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_statistic_and_gamma_match_dense_reference(dtype):
    rng = np.random.default_rng(0)
    X, Y, Z = (A.astype(dtype) for A in chain(41, rng, direct=0.3))
    kx, ky, kz = kk.Gaussian(1.3), kk.Gaussian(0.8), kk.Laplace(1.1)
    r = kci_test(X, Y, Z, kernel_x=kx, kernel_y=ky, kernel_z=kz, epsilon=0.05, standardize=False, alpha=0.1)
    X64, Y64, Z64 = (np.asarray(A, np.float64) for A in (X, Y, Z))
    stat, mean, var, _ = ref_kci(X64, Y64, Z64, kx, ky, kz, 0.05)
    tol = 1e-8 if dtype == np.float64 else 1e-4
    assert r.statistic == pytest.approx(stat, rel=tol)
    assert r.details["mean"] == pytest.approx(mean, rel=tol)
    assert r.details["variance"] == pytest.approx(var, rel=tol)
    shape, scale = mean ** 2 / var, var / mean
    assert r.pvalue == pytest.approx(scipy.stats.gamma.sf(stat, shape, scale=scale), rel=1e-6 if tol < 1e-6 else 1e-2)
    assert r.threshold == pytest.approx(scipy.stats.gamma.ppf(0.9, shape, scale=scale), rel=tol)
    assert r.reject == (r.statistic > r.threshold)


def test_default_kernels_median_on_standardised_xz():
    rng = np.random.default_rng(1)
    X, Y, Z = chain(30, rng)
    r = kci_test(X, Y, Z)
    Xs, Ys, Zs = std(X), std(Y), std(Z)
    kx = kk.Gaussian(kk.median_bandwidth(np.hstack([Xs, Zs])))
    ky, kz = kk.Gaussian(kk.median_bandwidth(Ys)), kk.Gaussian(kk.median_bandwidth(Zs))
    assert r.details["kernel_x"].bandwidth == pytest.approx(kx.bandwidth, rel=1e-12)
    stat, *_ = ref_kci(Xs, Ys, Zs, kx, ky, kz, 1e-3)
    assert r.statistic == pytest.approx(stat, rel=1e-7)


def test_simulated_null_draws_and_agreement_with_gamma():
    rng = np.random.default_rng(2)
    X, Y, Z = chain(60, rng)
    r = kci_test(X, Y, Z, method="simulation", n_simulations=4000, random_state=3)
    g = kci_test(X, Y, Z)
    assert r.statistic == g.statistic
    _, mean, var, lam = ref_kci(std(X), std(Y), std(Z), g.details["kernel_x"], g.details["kernel_y"],
                                g.details["kernel_z"], 1e-3)
    # the draws are (1/n) sum lam_k z_k^2: their mean and variance match within 5 standard errors
    B = 4000
    assert abs(r.null.mean() - mean) < 5 * np.sqrt(var / B)
    assert r.null.var() == pytest.approx(var, rel=0.15)
    assert abs(r.pvalue - g.pvalue) < 0.05
    r2 = kci_test(X, Y, Z, method="simulation", n_simulations=4000, random_state=3)
    np.testing.assert_array_equal(r.null, r2.null)
    assert r.pvalue == (1 + np.sum(r.null >= r.statistic)) / (1 + B)


def test_calibration_and_power():
    """100 chains (n = 80) at seed 4: gamma KCI rejects at most 12 (alpha = 0.05; the approximation is
    asymptotic, so a margin above Bin(100, 0.05)'s 99% bound of 11); with a direct effect X -> Y, at least 36 of 40."""
    rng = np.random.default_rng(4)
    null_rej = sum(kci_test(*chain(80, rng)).reject for _ in range(100))
    alt_rej = sum(kci_test(*chain(80, rng, direct=1.0)).reject for _ in range(40))
    assert 1 <= null_rej <= 12
    assert alt_rej >= 36
    # conditional, not marginal: X and Y are dependent through Z
    X, Y, Z = chain(200, rng)
    assert kk.stats.hsic_test(X, Y, method="gamma").reject


def test_guards_and_bad_input():
    rng = np.random.default_rng(5)
    X, Y, Z = chain(20, rng)
    with pytest.raises(InvalidValueError, match="max_n"):
        kci_test(X, Y, Z, max_n=10)
    with pytest.raises(InvalidValueError, match="'memory' parameter of kci_test"):
        kci_test(X, Y, Z, memory=1000)
    with pytest.raises(InvalidValueError, match="'Z' parameter of kci_test must be an array with as many rows"):
        kci_test(X, Y, Z[:19])
    with pytest.raises(InvalidValueError, match="at least 3 rows"):
        kci_test(X[:2], Y[:2], Z[:2])
    bad = Z.copy()
    bad[0, 0] = np.inf
    with pytest.raises(InvalidValueError, match="finite"):
        kci_test(X, Y, bad)
    for a in (0.0, 1.0, 2.0):
        with pytest.raises(InvalidValueError, match="'alpha' parameter of kci_test"):
            kci_test(X, Y, Z, alpha=a)
    with pytest.raises(InvalidValueError, match="epsilon"):
        kci_test(X, Y, Z, epsilon=0.0)
    with pytest.raises(InvalidValueError, match="method"):
        kci_test(X, Y, Z, method="permutation")
    with pytest.raises(InvalidTypeError, match="standardize"):
        kci_test(X, Y, Z, standardize=1)
    with pytest.raises(InvalidValueError, match="bandwidth_z"):
        kci_test(X, Y, Z, kernel_z=kk.Gaussian(1.0), bandwidth_z=1.0)
