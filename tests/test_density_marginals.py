"""kde_cdf / kde_quantile / kde_marginal / kde_conditional: scipy sums, quadrature, identities, bad input."""

import numpy as np
import pytest
from scipy import integrate, stats
from scipy.special import logsumexp

import kernelkit as kk
from kernelkit.density._marginals import kde_cdf, kde_conditional, kde_marginal, kde_quantile
from kernelkit.exceptions import InvalidTypeError, InvalidValueError


def _data(rng, n=400):
    return np.r_[rng.standard_normal(n // 2), 4 + 0.5 * rng.standard_normal(n - n // 2)]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("kernel", ["gaussian", "laplace"])
def test_cdf_against_scipy_sum(kernel, dtype):
    rng = np.random.default_rng(0)
    x = _data(rng).astype(dtype)
    w = rng.random(x.size)
    h = 0.3
    kde = kk.KernelDensity(kernel=kernel, bandwidth=h).fit(x[:, None], sample_weight=w)
    q = np.linspace(-8, 10, 777)
    dist = stats.norm if kernel == "gaussian" else stats.laplace
    ref = (w[:, None] * dist.cdf((q[None] - x.astype(np.float64)[:, None]) / h)).sum(0) / w.sum()
    F = kde_cdf(kde, q)
    np.testing.assert_allclose(F, ref, rtol=1e-12, atol=1e-15)
    assert np.all(np.diff(F) >= -1e-15) and F[0] < 1e-9 and F[-1] > 1 - 1e-7
    assert kde_cdf(kde, -np.inf) == 0.0 and kde_cdf(kde, np.inf) == 1.0
    assert kde_cdf(kde, -1e300) == 0.0 and kde_cdf(kde, 1e300) == 1.0
    assert np.isnan(kde_cdf(kde, np.nan))


def test_cdf_blocks_and_shapes():
    rng = np.random.default_rng(1)
    x = _data(rng, 301)
    q = rng.normal(1, 3, size=(7, 11))
    full = kde_cdf(kk.KernelDensity(bandwidth=0.2).fit(x[:, None]), q)
    tiny = kde_cdf(kk.KernelDensity(bandwidth=0.2, memory=2000).fit(x[:, None]), q)   # blocks of ~83 values
    assert full.shape == (7, 11)
    np.testing.assert_allclose(tiny, full, rtol=1e-13, atol=1e-16)
    assert isinstance(kde_cdf(kk.KernelDensity(bandwidth=0.2).fit(x[:, None]), 0.5), float)


@pytest.mark.parametrize("kernel", ["gaussian", "laplace", kk.Gaussian(0.4), kk.Laplace(0.4)])
def test_cdf_derivative_is_the_density(kernel):
    x = _data(np.random.default_rng(2), 200)
    kde = kk.KernelDensity(kernel=kernel, bandwidth=0.4 if isinstance(kernel, str) else None).fit(x[:, None])
    t = np.linspace(-3, 6, 37) + 0.0123
    eps = 1e-5
    deriv = (kde_cdf(kde, t + eps) - kde_cdf(kde, t - eps)) / (2 * eps)
    np.testing.assert_allclose(deriv, np.exp(kde.score_samples(t[:, None])), rtol=1e-6)


@pytest.mark.parametrize("kernel", ["gaussian", "laplace"])
def test_quantile_inverts_cdf(kernel):
    rng = np.random.default_rng(3)
    x = _data(rng, 500)
    kde = kk.KernelDensity(kernel=kernel, bandwidth=0.25).fit(x[:, None], sample_weight=rng.random(500))
    p = np.r_[1e-12, 1e-6, rng.random(40), 0.5, 1 - 1e-9]
    xq = kde_quantile(kde, p)
    np.testing.assert_allclose(kde_cdf(kde, xq), p, rtol=1e-9, atol=1e-15)
    assert np.all(np.diff(xq[np.argsort(p)]) > 0)
    # the flat region between the modes: still the unique solution
    mid = kde_cdf(kde, 2.5)
    assert kde_quantile(kde, mid) == pytest.approx(2.5, abs=1e-9)
    q2 = kde_quantile(kde, np.array([[0.0, 0.25], [1.0, 0.75]]))
    assert q2.shape == (2, 2) and q2[0, 0] == -np.inf and q2[1, 0] == np.inf
    assert isinstance(kde_quantile(kde, 0.5), float)


def test_quantile_single_point_is_the_kernel_quantile():
    kde = kk.KernelDensity(bandwidth=2.0).fit(np.full((5, 1), 3.0))
    assert kde_quantile(kde, 0.975) == pytest.approx(3.0 + 2.0 * stats.norm.ppf(0.975), rel=1e-12)


def test_marginal_is_exact():
    rng = np.random.default_rng(4)
    X = rng.standard_normal((300, 3)) @ np.array([[1, 0.5, 0], [0, 1, 0.3], [0, 0, 1]])
    w = rng.random(300)
    kde = kk.KernelDensity(bandwidth=0.5).fit(X, sample_weight=w)
    m = kde_marginal(kde, [2, 0])
    assert m.n_features_in_ == 2 and m.bandwidth_ == kde.bandwidth_
    Y = rng.standard_normal((5, 2))
    d2 = ((Y[:, None, :] - X[None, :, [2, 0]]) ** 2).sum(-1)
    ref = logsumexp(-d2 / (2 * 0.25), b=w[None], axis=1) - np.log(w.sum()) - np.log(2 * np.pi * 0.25)
    np.testing.assert_allclose(m.score_samples(Y), ref, rtol=1e-12)
    # integrating the full density over the dropped column gives the marginal
    y = Y[0]
    val = integrate.quad(lambda t: np.exp(kde.score_samples(np.array([[y[1], t, y[0]]])))[0], -np.inf, np.inf,
                         epsabs=1e-13)[0]
    assert val == pytest.approx(np.exp(m.score_samples(Y[:1]))[0], rel=1e-8)
    # a Kernel object keeps its bandwidth
    mo = kde_marginal(kk.KernelDensity(kernel=kk.Gaussian(0.5)).fit(X, sample_weight=w), [2, 0])
    np.testing.assert_allclose(mo.score_samples(Y), ref, rtol=1e-12)


def test_conditional_integrates_to_one_and_is_the_ratio():
    rng = np.random.default_rng(5)
    X = rng.standard_normal((250, 3))
    X[:, 2] += X[:, 0]
    kde = kk.KernelDensity(bandwidth=0.45).fit(X)
    c = kde_conditional(kde, [0], [0.7])
    assert c.n_features_in_ == 2
    # tensor Gauss-Legendre quadrature, 160 nodes per axis (spacing << h: converged far below 1e-9)
    u, v = np.polynomial.legendre.leggauss(160)
    a, wa = 7 * u, 7 * v
    b, wb = 0.5 + 7.5 * u, 7.5 * v
    A, B = np.meshgrid(a, b, indexing="ij")
    dens = np.exp(c.score_samples(np.c_[A.ravel(), B.ravel()])).reshape(A.shape)
    assert wa @ dens @ wb == pytest.approx(1.0, abs=1e-9)
    # p(y | x) = p(x, y) / p(x)
    Y = rng.standard_normal((6, 2))
    full = kde.score_samples(np.c_[np.full(6, 0.7), Y])
    marg = kde_marginal(kde, [0]).score_samples(np.array([[0.7]]))[0]
    np.testing.assert_allclose(c.score_samples(Y), full - marg, rtol=1e-10)
    # two conditioning columns, in the caller's order
    c2 = kde_conditional(kde, [2, 0], np.array([1.5, 0.7]))
    t = np.linspace(-3, 3, 5)[:, None]
    ref = kde.score_samples(np.c_[np.full(5, 0.7), t, np.full(5, 1.5)]) \
        - kde_marginal(kde, [0, 2]).score_samples(np.array([[0.7, 1.5]]))[0]
    np.testing.assert_allclose(c2.score_samples(t), ref, rtol=1e-10)


def test_conditional_far_from_the_data_stays_exact():
    """Every k(x_i, x_G) underflows far away: the weights are taken in the log domain (nearest points win)."""
    X = np.array([[0.0, 0.0], [1.0, 5.0], [2.0, -3.0]])
    kde = kk.KernelDensity(bandwidth=0.1).fit(X)
    c = kde_conditional(kde, [0], [60.0])
    lw = -((X[:, 0] - 60.0) ** 2) / (2 * 0.01)
    y = np.array([[-3.0], [0.0], [5.0]])
    ref = logsumexp(lw[:, None] - (y.T - X[:, 1:2]) ** 2 / 0.02, axis=0) - logsumexp(lw) \
        - 0.5 * np.log(2 * np.pi * 0.01)
    np.testing.assert_allclose(c.score_samples(y), ref, rtol=1e-12)


def test_bad_input():
    x = np.random.default_rng(6).standard_normal((50, 2))
    kde2 = kk.KernelDensity(bandwidth=0.3).fit(x)
    kde1 = kk.KernelDensity(bandwidth=0.3).fit(x[:, :1])
    with pytest.raises(InvalidValueError, match="'kde' parameter of kde_cdf.*1-D"):
        kde_cdf(kde2, 0.0)
    with pytest.raises(InvalidValueError, match="Gaussian or the Laplace"):
        kde_cdf(kk.KernelDensity(kernel="matern32", bandwidth=0.3).fit(x[:, :1]), 0.0)
    with pytest.raises(InvalidValueError, match="unfitted"):
        kde_cdf(kk.KernelDensity(), 0.0)
    with pytest.raises(InvalidTypeError, match="'kde'"):
        kde_quantile(object(), 0.5)
    with pytest.raises(InvalidValueError, match="'q'.*\\[0, 1\\]"):
        kde_quantile(kde1, [0.5, 1.5])
    with pytest.raises(InvalidValueError, match="'q'"):
        kde_quantile(kde1, np.nan)
    with pytest.raises(InvalidTypeError, match="'x'"):
        kde_cdf(kde1, "a")
    with pytest.raises(InvalidValueError, match="only radial kernel that is a product"):
        kde_marginal(kk.KernelDensity(kernel="laplace", bandwidth=0.3).fit(x), [0])
    with pytest.raises(InvalidValueError, match="'columns'"):
        kde_marginal(kde2, [0, 0])
    with pytest.raises(InvalidValueError, match="'columns'"):
        kde_marginal(kde2, [2])
    with pytest.raises(InvalidValueError, match="'columns'"):
        kde_marginal(kde2, [])
    with pytest.raises(InvalidTypeError, match="'columns'"):
        kde_marginal(kde2, [0.5])
    with pytest.raises(InvalidValueError, match="'given_columns'.*fewer than 2"):
        kde_conditional(kde2, [0, 1], [0.0, 0.0])
    with pytest.raises(InvalidValueError, match="'given_values'"):
        kde_conditional(kde2, [0], [0.0, 1.0])
    with pytest.raises(InvalidValueError, match="'given_values'"):
        kde_conditional(kde2, [0], [np.inf])


def test_float32_data_give_the_float64_results():
    rng = np.random.default_rng(7)
    X = rng.standard_normal((200, 3))
    k64 = kk.KernelDensity(bandwidth=0.4).fit(X)
    k32 = kk.KernelDensity(bandwidth=0.4).fit(X.astype(np.float32))
    Y = rng.standard_normal((9, 2)).astype(np.float32)
    np.testing.assert_allclose(kde_conditional(k32, [1], [0.3]).score_samples(Y),
                               kde_conditional(k64, [1], [0.3]).score_samples(Y.astype(np.float64)), rtol=2e-5)
    np.testing.assert_allclose(kde_marginal(k32, [0, 2]).score_samples(Y),
                               kde_marginal(k64, [0, 2]).score_samples(Y.astype(np.float64)), rtol=2e-5)
    q = np.linspace(-2, 2, 5)
    np.testing.assert_allclose(kde_cdf(kde_marginal(k32, 1), q), kde_cdf(kde_marginal(k64, 1), q), rtol=1e-6)
