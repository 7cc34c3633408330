"""bandwidth_isj: KDEpy's recorded values, a slow reference (cosine sums, bisection), equivariance, bad input.

The KDEpy values were computed with KDEpy 1.1.12 (``KDEpy.bw_selection.improved_sheather_jones``, numpy
2.4, scipy 1.17) on the same draws, in its own environment (benchmarks/bench_density_tools.py recomputes
them when that environment exists).
"""

import math

import numpy as np
import pytest

import kernelkit as kk
from kernelkit.density._isj import bandwidth_isj
from kernelkit.exceptions import InvalidTypeError, InvalidValueError

#: KDEpy 1.1.12 improved_sheather_jones on default_rng(0).standard_normal(100_000) (times 1, 10, 0.1) and on
#: the bimodal mixture of _bimodal()
KDEPY = {1.0: 0.046073231012359085, 10.0: 0.5299659469995132, 0.1: 0.0007636378119386814,
         "bimodal": 0.02024757738247543}


def _normal():
    return np.random.default_rng(0).standard_normal(100_000)


def _bimodal():
    rng = np.random.default_rng(0)
    rng.standard_normal(100_000)
    return np.r_[rng.standard_normal(50_000), 5 + 0.3 * rng.standard_normal(50_000)]


@pytest.mark.parametrize("scale", [1.0, 10.0, 0.1])
def test_kdepy_convention_matches_kdepy(scale):
    h = bandwidth_isj(scale * _normal(), convention="kdepy")
    assert h == pytest.approx(KDEPY[scale], rel=1e-6)


def test_kdepy_convention_bimodal():
    assert bandwidth_isj(_bimodal(), convention="kdepy") == pytest.approx(KDEPY["bimodal"], rel=1e-6)


def test_botev_convention_is_equivariant_and_near_the_normal_reference():
    x = _normal()
    h = bandwidth_isj(x)
    # normal data: the AMISE-optimal Gaussian bandwidth is (4/3)^(1/5) sigma n^(-1/5) = 0.1059 sigma here;
    # ISJ estimates it (seed 0: 0.1061); a 3% margin
    ref = (4 / 3) ** 0.2 * x.std(ddof=1) * x.size ** -0.2
    assert abs(h / ref - 1) < 0.03
    for a, b in [(10.0, 0.0), (0.1, 3.0), (1e-4, -7.0), (3e5, 1.0)]:
        assert bandwidth_isj(a * x + b) == pytest.approx(a * h, rel=1e-9)
    # for data of range >= 12 the two conventions share the box; they differ by the final scale only
    G = 1024
    assert bandwidth_isj(10 * x) / bandwidth_isj(10 * x, convention="kdepy") == pytest.approx(2 * G / (G - 1),
                                                                                             rel=1e-9)


def _slow_isj(x, G):
    """ISJ written out: loop binning, cosine sums for the DCT, bisection on the fixed-point gap."""
    R = x.max() - x.min()
    a, b = x.min() - R / 2, x.max() + R / 2
    dx = (b - a) / (G - 1)
    p = np.zeros(G)
    for xi in x:
        t = (xi - a) / dx
        i = min(int(math.floor(t)), G - 2)
        p[i] += 1 - (t - i)
        p[i + 1] += t - i
    p /= p.sum()
    j = np.arange(G)
    c = np.array([2 * np.sum(p * np.cos(np.pi * k * (j + 0.5) / G)) for k in range(G)])
    k2 = np.arange(1, G, dtype=float) ** 2
    N = np.unique(x).size

    def norm2(t, s):
        return 0.5 * np.pi ** (2 * s) * np.sum(k2 ** s * c[1:] ** 2 * np.exp(-k2 * np.pi ** 2 * t))

    def gap(t):
        f = norm2(t, 7)
        for s in range(6, 1, -1):
            K0 = np.prod(np.arange(1, 2 * s, 2)) / np.sqrt(2 * np.pi)
            cs = (1 + 2 ** -(s + 0.5)) / 3
            f = norm2((2 * cs * K0 / (N * f)) ** (2 / (3 + 2 * s)), s)
        return t - (2 * N * np.sqrt(np.pi) * f) ** -0.4

    lo, hi = 0.0, 1e-11 + 0.01 * (min(max(N, 50), 1050) - 50) / 1000
    while gap(hi) < 0:
        hi *= 2
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if gap(mid) < 0 else (lo, mid)
    return math.sqrt(0.5 * (lo + hi)) * G * dx


@pytest.mark.parametrize("n, G", [(300, 64), (1001, 129)])
def test_against_slow_reference(n, G):
    rng = np.random.default_rng(n)
    x = np.r_[rng.standard_normal(n // 2), 3 + rng.gamma(2.0, size=n - n // 2)]
    assert bandwidth_isj(x, grid_size=G) == pytest.approx(_slow_isj(x, G), rel=1e-10)


def test_weights():
    x = np.random.default_rng(1).standard_normal(2000)
    h = bandwidth_isj(x)
    # constant weights: same binned masses and (continuous data) n_eff = n = number of distinct values
    assert bandwidth_isj(x, weights=np.full(2000, 3.0)) == pytest.approx(h, rel=1e-12)
    # zero weights drop the points
    w = np.ones(2000)
    w[::3] = 0
    assert bandwidth_isj(x, weights=w) == pytest.approx(bandwidth_isj(x[w > 0]), rel=1e-12)
    # float32 data and a column vector give the float64 value of the same numbers
    x32 = x.astype(np.float32)
    assert bandwidth_isj(x32[:, None]) == pytest.approx(bandwidth_isj(x32.astype(np.float64)), rel=1e-12)


def test_input_not_modified():
    x = np.random.default_rng(2).standard_normal(500)
    x0 = x.copy()
    bandwidth_isj(x, weights=np.ones(500))
    np.testing.assert_array_equal(x, x0)


def test_bad_input():
    x = np.random.default_rng(3).standard_normal(100)
    with pytest.raises(InvalidValueError, match="'x' parameter of bandwidth_isj.*1-D"):
        bandwidth_isj(np.c_[x, x])
    with pytest.raises(InvalidValueError, match="2 distinct values"):
        bandwidth_isj(np.ones(20))
    with pytest.raises(InvalidValueError, match="'x'"):
        bandwidth_isj(np.r_[x, np.inf])
    with pytest.raises(InvalidValueError, match="'convention'"):
        bandwidth_isj(x, convention="scipy")
    with pytest.raises(InvalidValueError, match="'grid_size'"):
        bandwidth_isj(x, grid_size=8)
    with pytest.raises(InvalidTypeError, match="'grid_size'"):
        bandwidth_isj(x, grid_size=100.0)
    with pytest.raises(InvalidValueError, match="'weights'"):
        bandwidth_isj(x, weights=np.ones(99))
    with pytest.raises(InvalidValueError, match="'weights'"):
        bandwidth_isj(x, weights=np.zeros(100))
    with pytest.raises(InvalidValueError, match="2 distinct values"):
        bandwidth_isj(x, weights=np.r_[1.0, np.zeros(99)])


def test_isj_follows_bimodal_data_where_scott_oversmooths():
    """Two separated narrow modes: ISJ's bandwidth is of the order of the modes' width, Scott's of the gap."""
    x = _bimodal()[::10]
    h_isj, h_scott = bandwidth_isj(x), kk.bandwidth_scott(x[:, None])
    assert h_isj < 0.25 * h_scott
