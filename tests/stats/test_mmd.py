"""MMD two-sample statistics and tests: dense references, replayed resampling streams, exact and calibrated levels."""

import itertools
import math

import numpy as np
import pytest
from scipy.stats import binom

import kernelkit as kk
from kernelkit.stats import energy_test, mmd2, mmd2_linear, mmd_test


def _samples(n=23, m=31, d=3, shift=0.0, seed=0, dtype=np.float64):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    Y = rng.standard_normal((m, d)) + shift
    return X.astype(dtype), Y.astype(dtype)


def _dense_mmd2(k, X, Y, unbiased=False, p=None, q=None):
    """Explicit matrices; weighted U-statistic sum_{i != i'} p_i p_i' k / (1 - sum p^2)."""
    X, Y = np.asarray(X, np.float64), np.asarray(Y, np.float64)
    Kxx, Kyy, Kxy = k(X), k(Y), k(X, Y)
    n, m = len(X), len(Y)
    p = np.full(n, 1 / n) if p is None else p / p.sum()
    q = np.full(m, 1 / m) if q is None else q / q.sum()
    if not unbiased:
        return p @ Kxx @ p + q @ Kyy @ q - 2 * p @ Kxy @ q
    off = lambda K, w: (w @ K @ w - (w * w) @ np.diag(K)) / (1 - w @ w)
    return off(Kxx, p) + off(Kyy, q) - 2 * p @ Kxy @ q


TOL = {np.float64: 1e-12, np.float32: 2e-5}


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("unbiased", [False, True])
def test_mmd2_matches_dense_reference(dtype, unbiased):
    X, Y = _samples(dtype=dtype, shift=0.4)
    for k in (kk.Gaussian(1.3), kk.Laplace(0.7), kk.IMQ(2.0)):
        ref = _dense_mmd2(k, X, Y, unbiased)
        assert abs(mmd2(X, Y, k, unbiased=unbiased) - ref) < TOL[dtype]
    # weighted, and a tiny memory budget (blocked engine)
    rng = np.random.default_rng(1)
    p, q = rng.uniform(0.1, 2, len(X)), rng.uniform(0.1, 2, len(Y))
    k = kk.Gaussian(0.9)
    got = mmd2(X, Y, k, unbiased=unbiased, weights_x=p, weights_y=q, memory="4KB")
    assert abs(got - _dense_mmd2(k, X, Y, unbiased, p, q)) < TOL[dtype]


def test_mmd2_default_bandwidth_is_pooled_median():
    X, Y = _samples(shift=1.0)
    bw = kk.median_bandwidth(np.concatenate([X, Y]))
    assert mmd2(X, Y) == pytest.approx(_dense_mmd2(kk.Gaussian(bw), X, Y), abs=1e-12)
    assert mmd2(X, Y, "laplace", bandwidth=0.5) == pytest.approx(_dense_mmd2(kk.Laplace(0.5), X, Y), abs=1e-12)


def test_mmd2_linear_matches_explicit_pairs():
    X, Y = _samples(n=41, m=36, shift=0.3)
    k = kk.Gaussian(1.1)
    n2 = 18
    h = np.array([k(X[2 * i:2 * i + 1], X[2 * i + 1:2 * i + 2])[0, 0] + k(Y[2 * i:2 * i + 1], Y[2 * i + 1:2 * i + 2])[0, 0]
                  - k(X[2 * i:2 * i + 1], Y[2 * i + 1:2 * i + 2])[0, 0] - k(X[2 * i + 1:2 * i + 2], Y[2 * i:2 * i + 1])[0, 0]
                  for i in range(n2)])
    stat, var = mmd2_linear(X, Y, k)
    assert stat == pytest.approx(h.mean(), abs=1e-14)
    assert var == pytest.approx(h.var(ddof=1) / n2, rel=1e-12)
    # a non-radial kernel takes the block-diagonal path
    stat_lin, _ = mmd2_linear(X, Y, kk.Linear())
    hl = np.einsum("ij,ij->i", X[0:36:2], X[1:36:2]) + np.einsum("ij,ij->i", Y[0:36:2], Y[1:36:2]) \
        - np.einsum("ij,ij->i", X[0:36:2], Y[1:36:2]) - np.einsum("ij,ij->i", X[1:36:2], Y[0:36:2])
    assert stat_lin == pytest.approx(hl.mean(), abs=1e-12)


def _loop_null(k, X, Y, B, seed, unbiased):
    """The permutation null by an explicit loop over the documented stream."""
    rng = np.random.default_rng(seed)
    Z = np.concatenate([X, Y])
    n = len(X)
    out = []
    for _ in range(B):
        perm = rng.permutation(len(Z))
        s = np.zeros(len(Z), bool)
        s[perm[:n]] = True
        out.append(_dense_mmd2(k, Z[s], Z[~s], unbiased))
    return np.array(out)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("unbiased", [False, True])
def test_permutation_null_replays_explicit_loop(dtype, unbiased):
    X, Y = _samples(n=19, m=26, dtype=dtype, shift=0.2)
    k = kk.Gaussian(1.2)
    B = 37
    # 'memory' so small that the weight columns go in chunks of a few (and the engine tiles)
    res = mmd_test(X, Y, k, n_permutations=B, random_state=5, unbiased=unbiased, memory="6KB")
    assert res.details["column_chunk"] < B
    ref = _loop_null(k, X.astype(np.float64), Y.astype(np.float64), B, 5, unbiased)
    tol = TOL[dtype] * 10
    np.testing.assert_allclose(res.null, ref, atol=tol)
    assert res.statistic == pytest.approx(_dense_mmd2(k, X, Y, unbiased), abs=tol)
    assert res.pvalue == (1 + np.sum(ref >= res.statistic - 1e-12)) / (B + 1) or abs(
        res.pvalue - (1 + np.sum(ref >= res.statistic)) / (B + 1)) <= 1 / (B + 1)
    assert (res.statistic > res.threshold) == res.reject == (res.pvalue <= 0.05)


def test_wild_null_replays_explicit_loop():
    X, Y = _samples(n=24, m=24, shift=0.3)
    k = kk.Laplace(1.5)
    B = 29
    rng = np.random.default_rng(3)
    E = 2 * rng.integers(0, 2, size=(B, 24)) - 1
    H = k(X) + k(Y) - k(X, Y) - k(Y, X)
    for unbiased in (False, True):
        res = mmd_test(X, Y, k, method="wild", n_permutations=B, random_state=3, unbiased=unbiased, memory="5KB")
        if unbiased:
            Hd = H - np.diag(np.diag(H))
            ref = np.array([e @ Hd @ e for e in E]) / (24 * 23)
            assert res.statistic == pytest.approx(Hd.sum() / (24 * 23), abs=1e-13)
        else:
            ref = np.array([e @ H @ e for e in E]) / 24 ** 2
            assert res.statistic == pytest.approx(_dense_mmd2(k, X, Y), abs=1e-13)
        np.testing.assert_allclose(res.null, ref, atol=1e-13)


def test_permutation_pvalue_matches_exact_enumeration():
    """n = m = 4: all C(8, 4) = 70 labellings enumerated; the Monte Carlo p-value is within its binomial margin."""
    X, Y = _samples(n=4, m=4, d=2, shift=0.8, seed=2)
    k = kk.Gaussian(1.0)
    Z = np.concatenate([X, Y])
    T = _dense_mmd2(k, X, Y)
    vals = []
    for sub in itertools.combinations(range(8), 4):
        s = np.zeros(8, bool)
        s[list(sub)] = True
        vals.append(_dense_mmd2(k, Z[s], Z[~s]))
    vals = np.array(vals)
    p_exact = np.mean(vals >= T - 1e-12)
    B = 4000
    res = mmd_test(X, Y, k, n_permutations=B, random_state=0)
    # (1 + Binomial(B, p_exact)) / (1 + B): 4.5 standard deviations
    assert abs(res.pvalue - p_exact) < 4.5 * math.sqrt(p_exact * (1 - p_exact) / B) + 2 / B
    assert 0.02 < p_exact < 0.5   # the case is not degenerate
    # every permuted value is one of the 70 exact values (the null support)
    assert np.all(np.min(np.abs(res.null[:, None] - vals[None, :]), axis=1) < 1e-12)


def _rejection_interval(reps, alpha=0.05, level=0.99):
    lo, hi = binom.interval(level, reps, alpha)
    return lo / reps, hi / reps


@pytest.mark.parametrize("method", ["permutation", "wild"])
def test_calibration_under_null_fixed_seed(method):
    """200 null repetitions, n = m = 25, B = 99 (exact level 5/100): rejection rate in the binomial 99% interval."""
    reps = 200
    rng = np.random.default_rng(11)
    rejects = 0
    for r in range(reps):
        X, Y = rng.standard_normal((25, 2)), rng.standard_normal((25, 2))
        rejects += mmd_test(X, Y, kk.Gaussian(1.0), method=method, n_permutations=99, random_state=r).reject
    lo, hi = _rejection_interval(reps)
    assert lo <= rejects / reps <= hi


def test_asymptotic_null_calibration_and_statistic():
    reps = 60
    rng = np.random.default_rng(4)
    rejects = 0
    for r in range(reps):
        X, Y = rng.standard_normal((60, 2)), rng.standard_normal((60, 2))
        res = mmd_test(X, Y, kk.Gaussian(1.0), method="asymptotic", n_permutations=500, random_state=r,
                       n_eigen=120)
        rejects += res.reject
    # asymptotic only: a looser 99% interval (level in [0.01, 0.12] allowed)
    assert binom.cdf(rejects, reps, 0.01) > 0.005 and binom.sf(rejects - 1, reps, 0.12) > 0.005
    X, Y = _samples(n=60, m=60, shift=0.5)
    res = mmd_test(X, Y, kk.Gaussian(1.0), method="asymptotic", random_state=0, unbiased=True)
    assert res.statistic == pytest.approx(_dense_mmd2(kk.Gaussian(1.0), X, Y, True), abs=1e-12)
    assert res.reject and np.all(res.details["eigenvalues"] > 0)


@pytest.mark.parametrize("method", ["permutation", "wild", "asymptotic"])
def test_power_on_a_shift(method):
    X, Y = _samples(n=80, m=80, d=2, shift=0.6, seed=7)
    res = mmd_test(X, Y, method=method, n_permutations=199, random_state=0)
    assert res.reject and res.pvalue <= 0.01
    X, Y = _samples(n=80, m=80, d=2, shift=0.0, seed=7)
    assert mmd_test(X, Y, method=method, n_permutations=199, random_state=0).pvalue > 0.05


def test_deterministic_given_random_state_and_input_untouched():
    X, Y = _samples()
    X0, Y0 = X.copy(), Y.copy()
    a = mmd_test(X, Y, n_permutations=50, random_state=9)
    b = mmd_test(X, Y, n_permutations=50, random_state=np.random.default_rng(9))
    np.testing.assert_array_equal(a.null, b.null)
    np.testing.assert_array_equal(X, X0)
    np.testing.assert_array_equal(Y, Y0)


def test_energy_matches_dense_distances():
    from scipy.spatial.distance import cdist
    X, Y = _samples(n=17, m=22, shift=0.5)
    e = 2 * cdist(X, Y).mean() - cdist(X, X).mean() - cdist(Y, Y).mean()
    res = energy_test(X, Y, n_permutations=60, random_state=1, memory="3KB")
    assert res.statistic == pytest.approx(e, abs=1e-12)
    rng = np.random.default_rng(1)
    Z = np.concatenate([X, Y])
    for b in range(3):
        perm = rng.permutation(len(Z))
        A, Bm = Z[perm[:17]], Z[perm[17:]]
        ref = 2 * cdist(A, Bm).mean() - cdist(A, A).mean() - cdist(Bm, Bm).mean()
        assert res.null[b] == pytest.approx(ref, abs=1e-12)
    eu = energy_test(X, Y, n_permutations=10, unbiased=True, random_state=1).statistic
    n, m = 17, 22
    ref_u = 2 * cdist(X, Y).mean() - cdist(X, X).sum() / (n * (n - 1)) - cdist(Y, Y).sum() / (m * (m - 1))
    assert eu == pytest.approx(ref_u, abs=1e-12)


def test_bad_input():
    X, Y = _samples()
    with pytest.raises(ValueError, match="'Y'"):
        mmd_test(X, Y[:, :2])
    with pytest.raises(ValueError, match="at least 2 rows"):
        mmd_test(X[:1], Y)
    for a in (0, 1, 1.5, -0.1):
        with pytest.raises(ValueError, match="'alpha'"):
            mmd_test(X, Y, alpha=a)
    Xn = X.copy()
    Xn[3, 1] = np.nan
    with pytest.raises(ValueError, match="finite"):
        mmd_test(Xn, Y)
    with pytest.raises(ValueError, match="'method'"):
        mmd_test(X, Y, method="wild")   # n != m
    with pytest.raises(ValueError, match="'method'"):
        mmd_test(X, Y, method="bootstrap")
    with pytest.raises(ValueError, match="'n_permutations'"):
        mmd_test(X, Y, n_permutations=0)
    with pytest.raises(TypeError, match="'n_permutations'"):
        mmd_test(X, Y, n_permutations=10.0)
    with pytest.raises(ValueError, match="'bandwidth'"):
        mmd2(X, Y, kk.Gaussian(1.0), bandwidth=2.0)
    with pytest.raises(ValueError, match="'weights_x'"):
        mmd2(X, Y, unbiased=True, weights_x=np.eye(len(X))[0])
    with pytest.raises(ValueError, match="'alpha'"):
        energy_test(X, Y, alpha=2)


@pytest.mark.parametrize("method", ["permutation", "wild"])
def test_dense_and_engine_paths_agree(method):
    """Small pooled samples use one dense block; a small budget forces the prepared engine sums: same null."""
    X, Y = _samples(n=40, m=40, shift=0.2, dtype=np.float32)
    k = kk.Gaussian(1.0)
    dense = mmd_test(X, Y, k, method=method, n_permutations=30, random_state=2, unbiased=True)
    tiled = mmd_test(X, Y, k, method=method, n_permutations=30, random_state=2, unbiased=True, memory="8KB")
    assert dense.details["backend"].startswith("dense") and not tiled.details["backend"].startswith("dense")
    np.testing.assert_allclose(dense.null, tiled.null, atol=1e-6)
    assert dense.statistic == pytest.approx(tiled.statistic, abs=1e-6)


@pytest.mark.parametrize("N,rows,cols", [(1, 1, 1), (7, 2, 3), (37, 5, 11), (64, 64, 64), (50, 8, 50)])
def test_symmetric_forms_equal_explicit_quadratic_forms(N, rows, cols):
    from kernelkit.stats._mmd_core import symmetric_forms
    rng = np.random.default_rng(N)
    A = rng.standard_normal((N, N))
    M = A + A.T
    W = rng.standard_normal((N, 5))
    calls = []

    def tile(i0, i1, j0, j1):
        calls.append((i0, j0))
        assert j0 >= i0
        return M[i0:i1, j0:j1].copy()
    q, s = symmetric_forms(tile, N, W, rows, cols, np.diag(M).copy(), rowsums=True)
    np.testing.assert_allclose(q, np.einsum("ij,ij->j", W, M @ W), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(s, M.sum(axis=1), rtol=1e-12, atol=1e-12)
    # the diagonal comes from `diag`, not from the tiles
    q2, _ = symmetric_forms(tile, N, W, rows, cols, np.zeros(N))
    np.testing.assert_allclose(q2, q - np.einsum("i,ij,ij->j", np.diag(M), W, W), rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_tiled_pooled_forms_equal_dense_kernel_matrix(dtype):
    from kernelkit.stats._mmd_core import PooledSums, label_columns
    rng = np.random.default_rng(9)
    X = rng.standard_normal((23, 3)).astype(dtype)
    Y = (rng.standard_normal((18, 3)) + 0.2).astype(dtype)
    Z = np.concatenate([X, Y])
    k = kk.Gaussian(1.3)
    L = label_columns(np.random.default_rng(0), 41, 23, 9)
    tiled = PooledSums(k, Z, memory="3KB")
    assert not tiled.dense and tiled.rows < 41
    K = k(Z.astype(np.float64))
    n, m = 23, 18
    for unbiased in (False, True):
        got = tiled.label_stats(L, n, m, unbiased)
        want = []
        for b in range(L.shape[1]):
            s = L[:, b].astype(float)
            sxx, sxy, syy = s @ K @ s, s @ K @ (1 - s), (1 - s) @ K @ (1 - s)
            if unbiased:
                dx, dy = np.diag(K) @ s, np.diag(K) @ (1 - s)
                want.append((sxx - dx) / (n * (n - 1)) + (syy - dy) / (m * (m - 1)) - 2 * sxy / (n * m))
            else:
                want.append(sxx / n ** 2 + syy / m ** 2 - 2 * sxy / (n * m))
        np.testing.assert_allclose(got, want, rtol=1e-5 if dtype == np.float32 else 1e-12, atol=1e-7)
