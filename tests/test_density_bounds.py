"""BoundedDensity: reflection and renormalization against slow direct sums, quadrature on the box, bad input."""

import math

import numpy as np
import pytest
from scipy import integrate, stats

import kernelkit as kk
from kernelkit.density._bounds import BoundedDensity, check_bounds, reflect_kde
from kernelkit.exceptions import InvalidTypeError, InvalidValueError


def _slow_reflection_1d(x, w, h, lo, hi, y, layers=6):
    """Gaussian KDE plus its mirror images, summed point by point over 2 * layers + 1 periods."""
    out = np.zeros_like(y)
    for xi, wi in zip(x, w):
        imgs = [xi]
        if np.isfinite(lo) and np.isfinite(hi):
            L = hi - lo
            imgs = [xi + 2 * j * L for j in range(-layers, layers + 1)] + \
                   [2 * lo - xi + 2 * j * L for j in range(-layers, layers + 1)]
        elif np.isfinite(lo):
            imgs = [xi, 2 * lo - xi]
        elif np.isfinite(hi):
            imgs = [xi, 2 * hi - xi]
        out += wi * stats.norm.pdf(y[:, None], loc=np.array(imgs)[None], scale=h).sum(1)
    return out / w.sum()


def _gl(lo, hi, n):
    u, v = np.polynomial.legendre.leggauss(n)
    return 0.5 * (hi - lo) * u + 0.5 * (hi + lo), 0.5 * (hi - lo) * v


@pytest.mark.parametrize("bounds", [(0.0, None), (None, 3.0), (0.0, 3.0), (-np.inf, np.inf)])
def test_reflection_1d_against_slow_sum(bounds, dtype):
    rng = np.random.default_rng(0)
    x = np.clip(rng.gamma(2.0, 0.7, size=151), 0.0, 3.0).astype(dtype)
    w = rng.random(151)
    kde = kk.KernelDensity(bandwidth=0.4).fit(x[:, None], sample_weight=w)
    b = BoundedDensity(kde, bounds)
    lo, hi = check_bounds(bounds, 1, "test")
    y = np.linspace(max(lo[0], -2.0), min(hi[0], 5.0), 101)
    ref = _slow_reflection_1d(x.astype(np.float64), w, 0.4, lo[0], hi[0], y)
    np.testing.assert_allclose(np.exp(b.score_samples(y[:, None])), ref, rtol=1e-11)


@pytest.mark.parametrize("kernel", ["gaussian", "laplace", "cauchy", "matern32"])
def test_reflection_integrates_to_one_half_line(kernel):
    x = np.random.default_rng(1).exponential(size=120)
    b = reflect_kde(kk.KernelDensity(kernel=kernel, bandwidth=0.3).fit(x[:, None]), (0.0, None))
    assert b.n_images_ == 240
    # Gauss-Legendre between consecutive data points (the Laplace kernel has a cusp at each), then the tail
    pts = np.r_[0.0, np.sort(x), np.linspace(x.max() + 0.5, 40.0, 80)]
    u, v = np.polynomial.legendre.leggauss(24)
    nodes = (0.5 * np.diff(pts)[:, None] * u + 0.5 * (pts[1:] + pts[:-1])[:, None]).ravel()
    wts = (0.5 * np.diff(pts)[:, None] * v).ravel()
    total = wts @ np.exp(b.score_samples(nodes[:, None]))
    f = lambda t: float(np.exp(b.score_samples(np.array([[t]])))[0])   # noqa: E731
    tail = integrate.quad(f, 40.0, np.inf, limit=200)[0]
    tol = 1e-9 if kernel != "cauchy" else 1e-6   # the Cauchy kernel's tail beyond 40 is integrated coarsely
    assert total + tail == pytest.approx(1.0, abs=tol)


@pytest.mark.parametrize("method", ["reflection", "renormalization"])
def test_2d_box_integrates_to_one(method):
    rng = np.random.default_rng(2)
    X = np.c_[rng.beta(2.0, 5.0, 150), rng.beta(0.7, 1.0, 150)]
    kde = kk.KernelDensity(bandwidth=0.15).fit(X)
    b = BoundedDensity(kde, [(0, 1), (0, 1)], method=method)
    a, wa = _gl(0, 1, 120)
    A, B = np.meshgrid(a, a, indexing="ij")
    dens = np.exp(b.score_samples(np.c_[A.ravel(), B.ravel()])).reshape(A.shape)
    assert wa @ dens @ wa == pytest.approx(1.0, abs=1e-9)
    # the plain KDE loses mass through the faces
    plain = np.exp(kde.score_samples(np.c_[A.ravel(), B.ravel()])).reshape(A.shape)
    assert wa @ plain @ wa < 0.9


def test_half_plane_and_corner_2d():
    """Reflection in a quadrant [0, inf)^2: 4 images per point; against the direct Gaussian sum."""
    rng = np.random.default_rng(3)
    X = rng.exponential(size=(80, 2))
    h = 0.3
    b = BoundedDensity(kk.KernelDensity(bandwidth=h).fit(X), [(0, None), (0, None)])
    assert b.n_images_ == 320
    Y = rng.exponential(size=(30, 2))
    Y[0] = 0.0
    ref = np.zeros(30)
    for s0 in (1, -1):
        for s1 in (1, -1):
            img = X * [s0, s1]
            d2 = ((Y[:, None, :] - img[None]) ** 2).sum(-1)
            ref += np.exp(-d2 / (2 * h * h)).sum(1) / (80 * 2 * np.pi * h * h)
    np.testing.assert_allclose(np.exp(b.score_samples(Y)), ref, rtol=1e-11)


@pytest.mark.parametrize("bounds", [(0.0, None), (-1.0, 2.5), (None, 2.5)])
def test_renormalization_against_slow_sum(bounds, dtype):
    rng = np.random.default_rng(4)
    x = (2.0 * rng.random(90)).astype(dtype)          # inside every box below
    w = rng.random(90)
    h = 0.35
    b = BoundedDensity(kk.KernelDensity(bandwidth=h).fit(x[:, None], sample_weight=w), bounds, "renormalization")
    lo, hi = check_bounds(bounds, 1, "test")
    xs = x.astype(np.float64)
    mass = stats.norm.cdf((hi[0] - xs) / h) - stats.norm.cdf((lo[0] - xs) / h)
    y = np.linspace(max(lo[0], -1.0), min(hi[0], 2.5), 57)
    ref = (w / mass) @ stats.norm.pdf((y[None] - xs[:, None]) / h) / h / w.sum()
    np.testing.assert_allclose(np.exp(b.score_samples(y[:, None])), ref, rtol=1e-11)
    np.testing.assert_allclose(np.exp(b.log_mass_), mass, rtol=1e-12)
    f = lambda t: float(np.exp(b.score_samples(np.array([[t]])))[0])   # noqa: E731
    assert integrate.quad(f, max(lo[0], -12), min(hi[0], 12), epsabs=1e-12, limit=200)[0] == \
        pytest.approx(1.0, abs=1e-9)


def test_renormalization_laplace_1d():
    rng = np.random.default_rng(5)
    x = rng.random(60)
    ell = 0.2
    b = BoundedDensity(kk.KernelDensity(kernel="laplace", bandwidth=ell).fit(x[:, None]), (0, 1),
                       "renormalization")
    mass = stats.laplace.cdf((1 - x) / ell) - stats.laplace.cdf(-x / ell)
    np.testing.assert_allclose(np.exp(b.log_mass_), mass, rtol=1e-12)
    f = lambda t: float(np.exp(b.score_samples(np.array([[t]])))[0])   # noqa: E731
    pts = np.r_[0.0, np.sort(x), 1.0]
    total = sum(integrate.quad(f, a, c, epsabs=1e-14)[0] for a, c in zip(pts[:-1], pts[1:]))
    assert total == pytest.approx(1.0, abs=1e-10)


def test_outside_box_is_minus_inf_and_kernel_objects():
    x = np.random.default_rng(6).random((40, 1))
    b = BoundedDensity(kk.KernelDensity(kernel=kk.Gaussian(0.1)).fit(x), (0.0, 1.0), "renormalization")
    out = b.score_samples(np.array([[-0.01], [0.5], [1.01]]))
    assert out[0] == -np.inf and out[2] == -np.inf and np.isfinite(out[1])
    assert b.score(np.array([[0.5], [2.0]])) == -np.inf


def test_high_dimension_stays_exact_in_the_log_domain():
    """d = 40, data on [0, inf)^40 with 2 bounded columns: log densities far below float64's smallest value."""
    rng = np.random.default_rng(7)
    X = np.abs(rng.standard_normal((50, 40)))
    kde = kk.KernelDensity(bandwidth=0.05).fit(X)
    b = BoundedDensity(kde, [(0, None), (0, None)] + [(None, None)] * 38)
    Y = np.abs(rng.standard_normal((3, 40)))
    lp = b.score_samples(Y)
    assert np.all(np.isfinite(lp)) and np.all(lp < -1000)
    from scipy.special import logsumexp
    imgs = [X * np.r_[s0, s1, np.ones(38)] for s0 in (1, -1) for s1 in (1, -1)]
    P = np.concatenate(imgs)
    d2 = ((Y[:, None, :] - P[None]) ** 2).sum(-1)
    ref = logsumexp(-d2 / (2 * 0.0025), axis=1) - np.log(50) - 20 * np.log(2 * np.pi * 0.0025)
    np.testing.assert_allclose(lp, ref, rtol=1e-12)


def test_input_not_modified():
    X = np.random.default_rng(8).random((30, 2))
    X0 = X.copy()
    b = BoundedDensity(kk.KernelDensity(bandwidth=0.2).fit(X), [(0, 1), (0, 1)])
    Y = X[:5].copy()
    b.score_samples(Y)
    np.testing.assert_array_equal(X, X0)
    np.testing.assert_array_equal(Y, X0[:5])


def test_bad_input():
    x = np.random.default_rng(9).random((30, 1))
    kde = kk.KernelDensity(bandwidth=0.2).fit(x)
    with pytest.raises(InvalidValueError, match="'bounds' parameter of BoundedDensity.*low < high"):
        BoundedDensity(kde, (1.0, 0.0))
    with pytest.raises(InvalidValueError, match="'bounds'"):
        BoundedDensity(kde, (0.5, 0.5))
    with pytest.raises(InvalidValueError, match="'bounds'"):
        BoundedDensity(kde, (np.nan, 1.0))
    with pytest.raises(InvalidValueError, match="'bounds'"):
        BoundedDensity(kde, [(0, 1), (0, 1)])
    with pytest.raises(InvalidTypeError, match="'bounds'"):
        BoundedDensity(kde, ("a", 1.0))
    with pytest.raises(InvalidValueError, match="outside"):
        BoundedDensity(kde, (0.2, 1.0))
    with pytest.raises(InvalidValueError, match="'method'"):
        BoundedDensity(kde, (0, 1), method="mirror")
    with pytest.raises(InvalidValueError, match="light tails"):
        BoundedDensity(kk.KernelDensity(kernel="cauchy", bandwidth=0.2).fit(x), (0, 1))
    with pytest.raises(InvalidValueError, match="renormalization"):
        BoundedDensity(kk.KernelDensity(kernel="matern32", bandwidth=0.2).fit(x), (0, 1), "renormalization")
    with pytest.raises(InvalidValueError, match="Laplace"):
        BoundedDensity(kk.KernelDensity(kernel="laplace", bandwidth=0.2).fit(np.c_[x, x]), [(0, 1), (0, 1)],
                       "renormalization")
    with pytest.raises(InvalidValueError, match="unfitted"):
        BoundedDensity(kk.KernelDensity(), (0, 1))
    b = BoundedDensity(kde, (0, 1))
    with pytest.raises(InvalidValueError, match="'X'.*1 column"):
        b.score_samples(np.zeros((3, 2)))


@pytest.mark.parametrize("method, kernel", [("reflection", "gaussian"), ("reflection", "laplace"),
                                            ("renormalization", "gaussian"), ("renormalization", "laplace")])
def test_sample_follows_the_corrected_density(method, kernel):
    """Draws stay in the box and their mean matches the density's mean by quadrature (5 standard errors)."""
    rng = np.random.default_rng(10)
    x = rng.beta(1.0, 3.0, size=80)
    b = BoundedDensity(kk.KernelDensity(kernel=kernel, bandwidth=0.2).fit(x[:, None]), (0, 1), method)
    Y = b.sample(20_000, random_state=0)
    assert Y.shape == (20_000, 1) and Y.min() >= 0 and Y.max() <= 1
    np.testing.assert_array_equal(Y, b.sample(20_000, random_state=0))
    pts = np.r_[0.0, np.sort(x), 1.0]
    u, v = np.polynomial.legendre.leggauss(20)
    nodes = (0.5 * np.diff(pts)[:, None] * u + 0.5 * (pts[1:] + pts[:-1])[:, None]).ravel()
    wts = (0.5 * np.diff(pts)[:, None] * v).ravel()
    dens = np.exp(b.score_samples(nodes[:, None]))
    mean = wts @ (nodes * dens)
    sd = math.sqrt(wts @ ((nodes - mean) ** 2 * dens))
    assert abs(Y.mean() - mean) < 5 * sd / math.sqrt(20_000)
    # and the plain KDE's draws would not be in the box
    assert b.kde.sample(20_000, random_state=0).min() < 0


def test_sample_2d_renormalization_in_box():
    rng = np.random.default_rng(11)
    X = np.c_[rng.random(50), rng.exponential(size=50)]
    b = BoundedDensity(kk.KernelDensity(bandwidth=0.3).fit(X), [(0, 1), (0, None)], "renormalization")
    Y = b.sample(5000, random_state=1)
    assert Y.shape == (5000, 2) and Y[:, 0].min() >= 0 and Y[:, 0].max() <= 1 and Y[:, 1].min() >= 0


def test_blocked_engine_path_gives_the_same_values():
    """A tiny memory budget forces the engine to tile the image sum: same log densities."""
    rng = np.random.default_rng(12)
    X = np.c_[rng.random(300), rng.exponential(size=300)]
    b = BoundedDensity(kk.KernelDensity(bandwidth=0.2).fit(X), [(0, 1), (0, None)])
    Y = np.c_[rng.random(97), rng.exponential(size=97)]
    full = b.score_samples(Y)
    with kk.options(memory="16KB"):
        tiled = b.score_samples(Y)
    np.testing.assert_allclose(tiled, full, rtol=1e-13)
    tiled2 = BoundedDensity(kk.KernelDensity(bandwidth=0.2, memory=20_000).fit(X), [(0, 1), (0, None)],
                            "renormalization").score_samples(Y)
    np.testing.assert_allclose(tiled2, BoundedDensity(kk.KernelDensity(bandwidth=0.2).fit(X), [(0, 1), (0, None)],
                                                      "renormalization").score_samples(Y), rtol=1e-13)
