"""grid_kde: linear binning + FFT against the exact KDE, a direct convolution, a loop binning, and bad input."""

import math

import numpy as np
import pytest

import kernelkit as kk
from kernelkit.density._grid import grid_kde, linear_binning
from kernelkit.exceptions import InvalidTypeError, InvalidValueError


def _exact_on_grid(X, axes, kernel="gaussian", bandwidth=None, weights=None):
    """The exact KDE (KernelDensity.score_samples) at every grid point, shaped like the grid."""
    X = np.asarray(X, dtype=np.float64).reshape(len(X), -1)
    if isinstance(kernel, kk.Kernel):
        kde = kk.KernelDensity(kernel=kernel).fit(X, sample_weight=weights)
    else:
        kde = kk.KernelDensity(kernel=kernel, bandwidth=bandwidth).fit(X, sample_weight=weights)
    axes = (axes,) if isinstance(axes, np.ndarray) else axes
    G = np.meshgrid(*axes, indexing="ij")
    pts = np.stack([g.ravel() for g in G], axis=1)
    return np.exp(kde.score_samples(pts)).reshape(G[0].shape)


def _rel_err(p, exact):
    return float(np.max(np.abs(p - exact)) / np.max(exact))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_1d_gaussian_matches_exact_kde(dtype):
    x = np.random.default_rng(0).standard_normal(2000).astype(dtype)
    h = kk.bandwidth_scott(x[:, None].astype(np.float64))
    g, p = grid_kde(x, grid_size=1024)
    assert g.shape == p.shape == (1024,) and p.dtype == np.float64
    exact = _exact_on_grid(x, g, bandwidth=h)
    assert _rel_err(p, exact) < 4e-5              # measured 1.5e-5 (float64)
    g2, p2 = grid_kde(x, grid_size=255)           # odd size, 4x coarser: error ~ 16x
    assert 4e-5 < _rel_err(p2, _exact_on_grid(x, g2, bandwidth=h)) < 6e-4     # measured 2.4e-4
    # the default box is the data range plus 3 bandwidths, both ends on the grid
    assert g[0] == pytest.approx(float(x.min()) - 3 * h) and g[-1] == pytest.approx(float(x.max()) + 3 * h)


@pytest.mark.parametrize("kernel, bound", [("laplace", 4e-4), ("matern32", 8e-5), ("cauchy", 4e-5)])
def test_1d_other_radial_kernels(kernel, bound):
    x = np.random.default_rng(1).standard_normal(1500)
    g, p = grid_kde(x, kernel=kernel, bandwidth=0.2, grid_size=1024)
    assert _rel_err(p, _exact_on_grid(x, g, kernel=kernel, bandwidth=0.2)) < bound


def test_kernel_object_and_weights():
    rng = np.random.default_rng(2)
    x = np.r_[rng.standard_normal(700), 5 + 0.5 * rng.standard_normal(300)]
    w = rng.random(x.size)
    k = kk.Gaussian(0.25)
    g, p = grid_kde(x, kernel=k, weights=w, grid_size=2048, bounds=(-6.0, 9.0))
    assert g[0] == -6.0 and g[-1] == 9.0
    g0, _ = grid_kde(x, kernel=k, grid_size=64)       # default box: 3 of the kernel's own bandwidths
    assert g0[0] == pytest.approx(x.min() - 0.75) and g0[-1] == pytest.approx(x.max() + 0.75)
    assert _rel_err(p, _exact_on_grid(x, g, kernel=k, weights=w)) < 2e-5
    # weights equal to repetition counts give the estimate of the repeated data
    counts = rng.integers(1, 4, size=200)
    g1, p1 = grid_kde(x[:200], weights=counts, bandwidth=0.3, bounds=(-5, 8), grid_size=333)
    g2, p2 = grid_kde(np.repeat(x[:200], counts), bandwidth=0.3, bounds=(-5, 8), grid_size=333)
    np.testing.assert_allclose(p1, p2, rtol=1e-12, atol=1e-15)


def test_fft_is_the_direct_zero_padded_convolution():
    """On a tiny grid: the FFT result equals the O(G^2) sum of binned masses times the kernel (no wrap-around)."""
    rng = np.random.default_rng(3)
    X = rng.standard_normal((60, 2))
    h = 0.7
    (a, b), p = grid_kde(X, bandwidth=h, kernel="laplace", grid_size=(11, 7))
    lo = np.array([a[0], b[0]])
    dx = np.array([a[1] - a[0], b[1] - b[0]])
    c = linear_binning(X, None, lo, dx, (11, 7))
    G = np.stack(np.meshgrid(a, b, indexing="ij"), -1).reshape(-1, 2)
    K = np.exp(-np.sqrt(((G[:, None, :] - G[None, :, :]) ** 2).sum(-1)) / h)     # Laplace, unit height
    norm = math.exp(kk.Laplace(1.0).log_integral(2)) * h ** 2 * 60
    direct = (K @ c.ravel()).reshape(11, 7) / norm
    np.testing.assert_allclose(p, direct, rtol=1e-10, atol=1e-14 * direct.max())


def test_linear_binning_against_a_loop():
    rng = np.random.default_rng(4)
    X = rng.random((40, 3)) * [2.0, 3.0, 1.0]
    w = rng.random(40)
    lo, dx, shape = np.zeros(3), np.array([0.5, 0.75, 0.25]), (5, 5, 5)
    ref = np.zeros(shape)
    for x, wi in zip(X, w):
        t = x / dx
        i = np.minimum(np.floor(t).astype(int), np.array(shape) - 2)
        f = t - i
        for corner in np.ndindex(2, 2, 2):
            beta = np.prod([f[a] if corner[a] else 1 - f[a] for a in range(3)])
            ref[tuple(i + corner)] += wi * beta
    got = linear_binning(X, w, lo, dx, shape)
    np.testing.assert_allclose(got, ref, rtol=1e-12, atol=1e-15)
    # mass and mean are kept
    grid = np.stack(np.meshgrid(*[np.arange(s) * dx[a] for a, s in enumerate(shape)], indexing="ij"), -1)
    assert got.sum() == pytest.approx(w.sum(), rel=1e-13)
    np.testing.assert_allclose((got[..., None] * grid).sum((0, 1, 2)), w @ X, rtol=1e-12)


def test_2d_and_3d_match_exact_kde():
    rng = np.random.default_rng(5)
    X = rng.standard_normal((500, 2))
    (a, b), p = grid_kde(X, grid_size=(128, 97))
    assert p.shape == (128, 97)
    exact = _exact_on_grid(X, (a, b), bandwidth=kk.bandwidth_scott(X))
    assert _rel_err(p, exact) < 5e-3                  # measured 1.9e-3
    assert p.sum() * (a[1] - a[0]) * (b[1] - b[0]) == pytest.approx(1.0, abs=1e-4)
    X3 = rng.standard_normal((300, 3))
    axes, p3 = grid_kde(X3, grid_size=(40, 41, 42))
    assert p3.shape == (40, 41, 42)
    exact3 = _exact_on_grid(X3, axes, bandwidth=kk.bandwidth_scott(X3))
    assert _rel_err(p3, exact3) < 3e-2


def test_rules_and_isj():
    x = np.random.default_rng(6).standard_normal(3000)
    from kernelkit.density._isj import bandwidth_isj
    g, p = grid_kde(x, bandwidth="isj", grid_size=512, cut=0.0)
    assert g[0] == x.min() and g[-1] == x.max()
    exact = _exact_on_grid(x, g, bandwidth=bandwidth_isj(x))
    assert _rel_err(p, exact) < 1e-3
    g, p = grid_kde(x, bandwidth="silverman", grid_size=512)
    assert _rel_err(p, _exact_on_grid(x, g, bandwidth=kk.bandwidth_silverman(x[:, None]))) < 1e-3


def test_input_not_modified():
    X = np.random.default_rng(7).standard_normal((100, 2))
    X0 = X.copy()
    grid_kde(X, grid_size=32)
    np.testing.assert_array_equal(X, X0)


def test_bad_input():
    x = np.random.default_rng(8).standard_normal(50)
    with pytest.raises(InvalidValueError, match="'X' parameter of grid_kde.*1, 2 or 3 columns"):
        grid_kde(np.zeros((10, 4)))
    with pytest.raises(InvalidValueError, match="'X'.*outside"):
        grid_kde(x, bandwidth=0.3, bounds=(0.0, 1.0))
    with pytest.raises(InvalidValueError, match="'bounds'"):
        grid_kde(x, bandwidth=0.3, bounds=(1.0, -1.0))
    with pytest.raises(InvalidValueError, match="'bounds'"):
        grid_kde(x, bandwidth=0.3, bounds=(-np.inf, 5.0))
    with pytest.raises(InvalidValueError, match="'bounds'"):
        grid_kde(np.zeros((5, 2)), bandwidth=0.3, bounds=(-1.0, 1.0))
    with pytest.raises(InvalidValueError, match="'grid_size'"):
        grid_kde(x, grid_size=1)
    with pytest.raises(InvalidValueError, match="'grid_size'.*at most"):
        grid_kde(np.zeros((5, 3)) + np.arange(3), bandwidth=1.0, grid_size=1024)
    with pytest.raises(InvalidTypeError, match="'grid_size'"):
        grid_kde(x, grid_size=2.5)
    with pytest.raises(InvalidValueError, match="'bandwidth'"):
        grid_kde(x, bandwidth=-1.0)
    with pytest.raises(InvalidValueError, match="'bandwidth'.*None when 'kernel' is a Kernel"):
        grid_kde(x, kernel=kk.Gaussian(1.0), bandwidth=0.5)
    with pytest.raises(InvalidValueError, match="'bandwidth'.*1-D"):
        grid_kde(np.c_[x, x], bandwidth="isj")
    with pytest.raises(InvalidValueError, match="'kernel'"):
        grid_kde(x, kernel="polynomial", bandwidth=1.0)
    with pytest.raises(InvalidValueError, match="'kernel'.*integrable"):
        grid_kde(x, kernel=kk.Periodic(1.0, 2.0))
    with pytest.raises(InvalidValueError, match="'kernel'"):
        grid_kde(x, kernel="no-such-kernel")
    with pytest.raises(InvalidValueError, match="'grid_size'.*memory budget"):
        grid_kde(x, bandwidth=0.3, grid_size=4096, memory="100KB")
    with pytest.raises(InvalidValueError, match="'bandwidth'.*zero spread"):
        grid_kde(np.ones(10))
    with pytest.raises(InvalidValueError, match="'weights'"):
        grid_kde(x, weights=-np.ones(50))
    with pytest.raises(InvalidValueError, match="'X'"):
        grid_kde(np.r_[x, np.nan])


def test_single_point_and_constant_column():
    """One point: the kernel itself on the grid; a constant column with cut=0 still gets a box."""
    g, p = grid_kde(np.array([2.0]), bandwidth=0.5, grid_size=201)
    np.testing.assert_allclose(p, np.exp(-(g - 2.0) ** 2 / 0.5) / math.sqrt(2 * math.pi * 0.25), rtol=1e-12,
                               atol=1e-15)
    (a, b), p2 = grid_kde(np.c_[np.linspace(0, 1, 30), np.full(30, 3.0)], bandwidth=0.2, cut=0.0,
                          grid_size=(64, 65))
    assert a[0] == 0.0 and a[-1] == 1.0 and b[0] < 3.0 < b[-1] and np.all(np.isfinite(p2))


@pytest.mark.parametrize("weighted", [False, True])
def test_linear_binning_1d_against_a_loop(weighted):
    """The 1-D path (prefix-free: sum f = sum t - j count, chunks) against a loop, points on both end points."""
    rng = np.random.default_rng(9)
    x = np.r_[0.0, 3.0, rng.random(70_001) * 3.0]          # more than one chunk
    w = rng.random(x.size) if weighted else None
    G, dx = 31, 3.0 / 30
    ref = np.zeros(G)
    t = x / dx
    i = np.minimum(np.floor(t).astype(int), G - 2)
    f = t - i
    ww = np.ones(x.size) if w is None else w
    np.add.at(ref, i, ww * (1 - f))
    np.add.at(ref, i + 1, ww * f)
    got = linear_binning(x[:, None], w, np.zeros(1), np.array([dx]), (G,))
    np.testing.assert_allclose(got, ref, rtol=1e-11)
    assert got.sum() == pytest.approx(ww.sum(), rel=1e-13)


@pytest.mark.parametrize("kernel, bound", [("epanechnikov", 4e-4), ("biweight", 1e-4), ("cosine", 4e-4)])
def test_compactly_supported_kernels(kernel, bound):
    from kernelkit.kernels import KERNEL_NAMES
    if kernel not in KERNEL_NAMES:
        pytest.skip(f"kernelkit has no {kernel!r} kernel in this build")
    x = np.random.default_rng(10).standard_normal(2000)
    g, p = grid_kde(x, kernel=kernel, bandwidth=0.5, grid_size=1024)
    assert _rel_err(p, _exact_on_grid(x, g, kernel=kernel, bandwidth=0.5)) < bound


def test_benchmark_helpers_run():
    """benchmarks/bench_density_tools.py: its kernelkit side on a small case (KDEpy itself is not run here)."""
    import os
    import sys
    bench = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "benchmarks")
    sys.path.insert(0, bench)
    try:
        import bench_density_tools as B
    finally:
        sys.path.remove(bench)
    X = np.random.default_rng(11).standard_normal((3000, 2))
    row, arrays, (kde, pts, idx) = B.grid_case("2d", X, 64, 1, 0)
    assert row["kernelkit_error"] < 1e-2 and pts.shape == (64 * 64, 2) and arrays["grid_points_2d"].shape == pts.shape
    assert B._kdepy_python("/no/such/python") is None
    assert set(B.isj_inputs(100, 0)) == {"normal", "normal_x10", "normal_x0.1", "bimodal"}
