"""Bandwidth matrices (whitening): against scipy's gaussian_kde and a direct formula; degenerate data."""

import math

import numpy as np
import pytest

import kernelkit as kk
from kernelkit.exceptions import InvalidValueError, NotSupportedError


def _data(seed=0, n=800):
    rng = np.random.default_rng(seed)
    M = np.array([[1.0, 0.6, 0.0], [0.0, 0.8, 0.3], [0.0, 0.0, 0.25]])
    return rng.standard_normal((n, 3)) @ M, rng.random(n), rng.standard_normal((57, 3))


@pytest.mark.parametrize("rule", ["scott", "silverman"])
@pytest.mark.parametrize("weighted", [False, True])
def test_full_matrix_matches_scipy_gaussian_kde(rule, weighted):
    from scipy.stats import gaussian_kde
    X, w, Y = _data()
    w = w if weighted else None
    kde = kk.KernelDensity(bandwidth=rule, bandwidth_matrix="full").fit(X, sample_weight=w)
    ref = gaussian_kde(X.T, bw_method=rule, weights=w)
    np.testing.assert_allclose(kde.score_samples(Y), ref.logpdf(Y.T), rtol=1e-11, atol=1e-11)
    np.testing.assert_allclose(kde.covariance_, ref.covariance, rtol=1e-12)


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
def test_diagonal_and_user_matrices_against_the_direct_formula(dtype):
    X, w, Y = _data(1, 300)
    X, Y = X.astype(dtype), Y.astype(dtype)
    A = np.array([[0.5, 0.1, 0.0], [0.1, 0.4, 0.05], [0.0, 0.05, 0.2]])
    for spec, f in (("diagonal", 0.7), (A, 1.3)):
        kde = kk.KernelDensity(bandwidth=f, bandwidth_matrix=spec).fit(X, sample_weight=w)
        H = kde.covariance_
        if isinstance(spec, str):
            p = w / w.sum()
            var = np.array([np.cov(X[:, j].astype(float), aweights=w) for j in range(3)])
            np.testing.assert_allclose(H, f * f * np.diag(var), rtol=1e-5 if dtype == np.float32 else 1e-12)
            assert p.sum() == pytest.approx(1.0)
        else:
            np.testing.assert_allclose(H, f * f * A, rtol=1e-14)
        Hi = np.linalg.inv(H)
        D = Y[:, None, :].astype(float) - X[None, :, :].astype(float)
        q = np.einsum("mnd,de,mne->mn", D, Hi, D)
        dens = (np.exp(-0.5 * q) * (w / w.sum())).sum(1) / math.sqrt(np.linalg.det(2 * math.pi * H))
        tol = 1e-4 if dtype == np.float32 else 1e-11
        np.testing.assert_allclose(kde.score_samples(Y), np.log(dens), rtol=tol, atol=tol)
        assert kde.diagnose(Y, warn=False).log_density == pytest.approx(kde.score_samples(Y), rel=tol, abs=tol)


def test_samples_have_the_data_covariance_plus_h():
    X, _, _ = _data(2, 2_000)
    kde = kk.KernelDensity(bandwidth_matrix="full").fit(X)
    S = kde.sample(100_000, random_state=0)
    np.testing.assert_allclose(np.cov(S.T), np.cov(X.T) + kde.covariance_, atol=0.02)


def test_degenerate_data_and_bad_matrices_give_clear_errors():
    rng = np.random.default_rng(3)
    X = rng.standard_normal((200, 3))
    const = X.copy()
    const[:, 1] = 2.0
    with pytest.raises(InvalidValueError, match="columns 1 constant"):
        kk.KernelDensity(bandwidth_matrix="full").fit(const)
    with pytest.raises(InvalidValueError, match="columns 1 constant"):
        kk.KernelDensity(bandwidth_matrix="diagonal").fit(const)
    coll = X.copy()
    coll[:, 2] = 2 * coll[:, 0] - coll[:, 1]
    with pytest.raises(InvalidValueError, match="collinear columns 0, 1, 2"):
        kk.KernelDensity(bandwidth_matrix="full").fit(coll)
    with pytest.raises(InvalidValueError, match="more points than columns"):
        kk.KernelDensity(bandwidth_matrix="full").fit(rng.standard_normal((3, 5)))
    with pytest.raises(InvalidValueError, match="not symmetric"):
        kk.KernelDensity(bandwidth=1.0, bandwidth_matrix=np.array([[1, 0.5, 0], [0, 1, 0], [0, 0, 1.0]])).fit(X)
    with pytest.raises(InvalidValueError, match="positive definite"):
        kk.KernelDensity(bandwidth=1.0, bandwidth_matrix=-np.eye(3)).fit(X)
    with pytest.raises(InvalidValueError, match="'bandwidth_matrix'"):
        kk.KernelDensity(bandwidth_matrix="spherical").fit(X)
    with pytest.raises(InvalidValueError, match="'bandwidth'"):
        kk.KernelDensity(bandwidth="cv", bandwidth_matrix="full").fit(X)
    fitted = kk.KernelDensity(bandwidth_matrix="full").fit(X)
    with pytest.raises(NotSupportedError, match="bandwidth_matrix"):
        fitted.modes(X[:3])
    with pytest.raises(InvalidValueError, match="isotropic"):
        kk.KernelDensity(bandwidth_matrix="full").fit(X[:, :1]).cdf([0.0])


def test_dask_queries_are_whitened_too():
    da = pytest.importorskip("dask.array")
    X, w, Y = _data(4, 300)
    kde = kk.KernelDensity(bandwidth_matrix="full").fit(X, sample_weight=w)
    np.testing.assert_allclose(kde.score_samples(da.from_array(Y, chunks=20)).compute(), kde.score_samples(Y),
                               rtol=1e-12)
    bounded = kk.KernelDensity(bandwidth=0.5, bounds=[(0.0, np.inf)]).fit(np.abs(X[:, :1]))
    with pytest.raises(NotSupportedError, match="boundary"):
        bounded.score_samples(da.from_array(np.abs(Y[:, :1]), chunks=20))
