"""KernelDensity's methods and options that forward to the density modules (isj, bounds, cdf, marginals)."""

import numpy as np
import pytest
from scipy import integrate

import kernelkit as kk
from kernelkit.density import BoundedDensity, bandwidth_isj, kde_cdf, kde_marginal
from kernelkit.exceptions import InvalidValueError


def test_isj_rule_is_bandwidth_isj_and_one_dimensional():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((3_000, 1))
    kde = kk.KernelDensity(bandwidth="isj").fit(x)
    assert kde.bandwidth_ == pytest.approx(bandwidth_isj(x[:, 0]), rel=1e-14)
    with pytest.raises(InvalidValueError, match="'isj' for one-dimensional"):
        kk.KernelDensity(bandwidth="isj").fit(rng.standard_normal((50, 2)))


def test_bounds_give_the_corrected_density_that_integrates_to_one():
    rng = np.random.default_rng(1)
    x = rng.exponential(size=(400, 1))
    for boundary in ("reflection", "renormalization"):
        kde = kk.KernelDensity(bandwidth=0.3, bounds=[(0.0, np.inf)], boundary=boundary).fit(x)
        ref = BoundedDensity(kk.KernelDensity(bandwidth=0.3).fit(x), [(0.0, np.inf)], boundary)
        Y = np.linspace(-0.5, 5, 23)[:, None]
        np.testing.assert_allclose(kde.score_samples(Y), ref.score_samples(Y), rtol=1e-12)
        assert np.all(np.isneginf(kde.score_samples(np.array([[-0.1]]))))
        val, _ = integrate.quad(lambda t: float(np.exp(kde.score_samples(np.array([[t]])))[0]), 0, 12, limit=200)
        assert val == pytest.approx(1.0, abs=1e-5)
        assert np.all(kde.sample(200, random_state=0) >= 0)


def test_cdf_quantile_marginal_conditional_forward():
    rng = np.random.default_rng(2)
    x = rng.standard_normal((300, 1))
    kde = kk.KernelDensity(bandwidth=0.4).fit(x)
    t = np.linspace(-3, 3, 7)
    np.testing.assert_allclose(kde.cdf(t), kde_cdf(kde, t), rtol=1e-14)
    np.testing.assert_allclose(kde.cdf(kde.quantile([0.1, 0.5, 0.9])), [0.1, 0.5, 0.9], atol=1e-9)
    X = rng.standard_normal((200, 3))
    k3 = kk.KernelDensity(bandwidth=0.5).fit(X)
    Y = rng.standard_normal((5, 2))
    np.testing.assert_allclose(k3.marginal([0, 2]).score_samples(Y), kde_marginal(k3, [0, 2]).score_samples(Y))
    cond = k3.conditional([1], [0.3])
    assert cond.n_features_in_ == 2 and np.all(np.isfinite(cond.score_samples(Y)))


def test_unknown_boundary_is_an_error_even_without_bounds():
    with pytest.raises(InvalidValueError, match="'boundary' parameter of KernelDensity"):
        kk.KernelDensity(boundary="mirror").fit(np.zeros((5, 1)) + np.arange(5)[:, None])
