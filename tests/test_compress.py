"""Kernel thinning, Compress++, baselines and MMD against slow direct references."""

import math

import numpy as np
import pytest

import kernelkit as kk
from kernelkit.compress import compiled_available, compress, kernel_thin, kt_split, kt_swap, mmd, standard_thin

NUMPY = {"backend": "numpy"}


# ---------------------------------------------------------------- references
def reference_kt_split(X, kernel, m, delta, seed):
    """KT-SPLIT written plainly from the paper, dense kernel matrix, same random numbers.

    psi = sum_A k(y, .) - sum_B k(y, .) is kept as a coefficient vector over
    the points; alpha = <-psi, k(x1, .) - k(x2, .)>. ``seed``: an int, or the
    SeedSequence whose ``spawn(m)`` gives the rounds' random numbers.
    """
    n = X.shape[0]
    K = kernel(X.astype(np.float64))
    if isinstance(seed, np.random.SeedSequence):
        level_seeds = seed.spawn(max(m, 1))
    else:
        level_seeds = np.random.SeedSequence(seed).spawn(3)[0].spawn(max(m, 1))
    coresets = [list(range(n))]
    for j in range(m):
        u_all = np.random.default_rng(level_seeds[j]).random(n)
        log_mult = 2 * math.log(2 * n * m / delta) - 2 * j * math.log(2)
        pos = 0
        children = []
        for S in coresets:
            u = u_all[pos:pos + len(S)]
            pos += len(S)
            A, B, sig2 = [], [], 0.0
            for t in range(0, len(S) - 1, 2):
                x1, x2 = S[t], S[t + 1]
                psi = np.zeros(n)
                psi[A] += 1.0
                psi[B] -= 1.0
                f = K[x1] - K[x2]
                alpha = -psi @ f
                b2 = K[x1, x1] + K[x2, x2] - 2 * K[x1, x2]
                a = max(math.sqrt(sig2 * b2 * log_mult), b2)
                if sig2 == 0:
                    sig2 = b2
                elif a != 0:
                    sig2 += 2 * b2 * max(0.0, 0.5 + (b2 / (2 * a) - 1) * sig2 / a)
                if a == 0:
                    a = 1.0
                if u[t] <= 0.5 * (1 - alpha / a):
                    A.append(x2), B.append(x1)
                else:
                    A.append(x1), B.append(x2)
            if len(S) % 2:
                (A if u[len(S) - 1] < 0.5 else B).append(S[-1])
            children += [A, B]
        coresets = children
    return [np.array(c) for c in coresets]


def reference_refine(K, coreset, mu, unique=False):
    """KT-SWAP refinement: replace each point by the minimiser of the coreset MMD^2."""
    n, s = K.shape[0], len(coreset)
    coreset = list(coreset)
    for t in range(s):
        best, best_val = None, np.inf
        for i in range(n):
            if unique and i in coreset[:t] + coreset[t + 1:]:
                continue
            trial = coreset.copy()
            trial[t] = i
            val = K[np.ix_(trial, trial)].sum() / s ** 2 - 2 * mu[trial].mean()
            if val < best_val - 1e-15:
                best, best_val = i, val
        coreset[t] = best
    return np.array(coreset)


def dense_mmd(X, Y, k, p=None, q=None):
    p = np.full(len(X), 1 / len(X)) if p is None else p / p.sum()
    q = np.full(len(Y), 1 / len(Y)) if q is None else q / q.sum()
    X, Y = X.astype(np.float64), Y.astype(np.float64)
    v = p @ k(X, X) @ p - 2 * p @ k(X, Y) @ q + q @ k(Y, Y) @ q
    return math.sqrt(max(v, 0))


KERNELS = [kk.Gaussian(1.3), kk.Matern(1.5, 1.0), kk.IMQ(1.0), kk.Laplace(2.0),
           kk.Gaussian(1.0) + kk.Gaussian(0.7)]


# ---------------------------------------------------------------- KT-SPLIT
@pytest.mark.parametrize("kernel", KERNELS, ids=lambda k: k.family)
@pytest.mark.parametrize("n,m", [(64, 3), (101, 2), (37, 4)])
def test_split_matches_reference(kernel, n, m, dtype):
    X = np.random.default_rng(n).standard_normal((n, 3)).astype(dtype)
    ref = reference_kt_split(X, kernel, m, 0.5, seed=7)
    fast = kt_split(X, kernel, m, random_state=7)
    with kk.options(**NUMPY):
        slow = kt_split(X, kernel, m, random_state=7)
    assert len(fast) == len(ref) == 2 ** m
    for a, b, c in zip(fast, slow, ref):
        np.testing.assert_array_equal(a, c)
        np.testing.assert_array_equal(b, c)


@pytest.mark.parametrize("n,memory", [(40, None), (701, None), (701, "64KB")])
def test_split_general_kernel_uses_numpy_path(n, memory):
    # Matern nu=0.8 and a product are not compiled: the NumPy walk runs and matches the reference;
    # n = 701 spans several 128-pair blocks (odd: a leftover point), 64KB forces blocked engine sums
    X = np.random.default_rng(1).standard_normal((n, 2))
    for k in (kk.Matern(0.8, 1.0), kk.Gaussian(1.0) * kk.Laplace(2.0)):
        with kk.options(memory=memory):
            got = kt_split(X, k, 2, random_state=3)
        for a, b in zip(got, reference_kt_split(X, k, 2, 0.5, seed=3)):
            np.testing.assert_array_equal(a, b)


@pytest.mark.skipif(not compiled_available(), reason="compiled extension not built")
@pytest.mark.slow
def test_compiled_threaded_walk_matches_serial():
    # n = 40,000: the threaded walk (one parallel region, sums split over threads) runs at level 0;
    # the serial compiled walk is checked against the plain reference above
    X = np.random.default_rng(2).standard_normal((40000, 2))
    k = kk.Gaussian(2.0)
    with kk.options(threads=2):
        threaded = kt_split(X, k, 2, random_state=11)
    with kk.options(threads=1):
        serial = kt_split(X, k, 2, random_state=11)
    assert sorted(np.concatenate(threaded).tolist()) == list(range(40000))
    for a, b in zip(threaded, serial):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("n,m", [(1000, 4), (1023, 5), (7, 2), (50000 // 16, 3)])
def test_split_uses_every_point(n, m):
    X = np.random.default_rng(0).standard_normal((n, 2))
    cs = kt_split(X, kk.Gaussian(1.0), m, random_state=0)
    allidx = np.sort(np.concatenate(cs))
    np.testing.assert_array_equal(allidx, np.arange(n))
    assert {c.size for c in cs} <= {n // 2 ** m, -(-n // 2 ** m)}


def test_four_point_halving_is_exact():
    """Four points, one round: first pair 50/50, second pair with the closed-form probability."""
    X = np.array([[0.0, 0.0], [1.0, 0.2], [0.3, 0.9], [1.4, 1.1]])
    k = kk.Gaussian(1.0)
    K = k(X)
    delta = 0.5
    lm = 2 * math.log(2 * 4 * 1 / delta)
    b1 = K[0, 0] + K[1, 1] - 2 * K[0, 1]
    b2 = K[2, 2] + K[3, 3] - 2 * K[2, 3]
    sig2 = b1
    a = max(math.sqrt(sig2 * b2 * lm), b2)
    f = K[2] - K[3]
    # after x0 -> A, x1 -> B: psi = k(x0,.) - k(x1,.); P(x3 -> A) = (1 - <-psi, f>/a) / 2
    p_x3_to_A = 0.5 * (1 + (f[0] - f[1]) / a)
    trials = 4000
    x0_in_A = x3_with_x0 = 0
    for seed in range(trials):
        A, B = kt_split(X, k, 1, random_state=seed)
        assert len(A) == len(B) == 2 and sorted(np.r_[A, B]) == [0, 1, 2, 3]
        x0_in_A += 0 in A
        first = A if 0 in A else B
        x3_with_x0 += 3 in first
    # P(x3 with x0) = P(x3 -> A | x0 in A) by symmetry of the walk
    se = math.sqrt(0.25 / trials)
    assert abs(x0_in_A / trials - 0.5) < 4 * se
    se3 = math.sqrt(p_x3_to_A * (1 - p_x3_to_A) / trials)
    assert abs(x3_with_x0 / trials - p_x3_to_A) < 4 * se3 + 1e-9


# ---------------------------------------------------------------- KT-SWAP
def test_swap_matches_reference():
    rng = np.random.default_rng(3)
    X = rng.standard_normal((48, 2))
    k = kk.Gaussian(1.0)
    K = k(X)
    mu = K.mean(axis=1)
    cs = kt_split(X, k, 3, random_state=1)
    std = ((np.arange(6) + 1) * 48) // 6 - 1
    cands = cs + [std]
    scores = [K[np.ix_(c, c)].mean() - 2 * mu[c].mean() for c in cands]
    best = cands[int(np.argmin(scores))]
    expect = reference_refine(K, best, mu)
    got = kt_swap(X, cs, k)
    np.testing.assert_array_equal(got, expect)
    with kk.options(**NUMPY):
        np.testing.assert_array_equal(kt_swap(X, cs, k), expect)


@pytest.mark.parametrize("backend", ["auto", "numpy"])
def test_unique_refine_matches_reference(backend):
    from kernelkit.compress._kernelspec import KernelRows
    X = np.random.default_rng(16).standard_normal((30, 2))
    k = kk.Gaussian(0.8)
    K = k(X)
    mu = K.mean(axis=1)
    start = np.array([0, 3, 3, 7, 11, 20], dtype=np.int64)
    for unique in (False, True):
        coreset = start.copy()
        stat = 1.0 / 6 - 2 * mu + (2.0 / 6) * K[:, coreset].sum(axis=1)
        with kk.options(backend=backend):
            KernelRows(k, X).refine(coreset, stat, unique=unique)
        expect = reference_refine(K, start, mu, unique=unique)
        np.testing.assert_array_equal(coreset, expect)
        if unique:
            assert np.unique(coreset).size == 6


@pytest.mark.skipif(not compiled_available(), reason="compiled thinning loops not built")
@pytest.mark.parametrize("unique", [False, True])
def test_refine_threaded_sweep_matches_serial_and_numpy(unique):
    """The compiled refine splits each slot's sweep over threads above 4096 points: every thread
    count must give the serial result bit for bit, ties (exact duplicate points, one in each half)
    must go to the smaller index, and the NumPy path must choose the same points."""
    from kernelkit.compress._kernelspec import KernelRows
    Y = np.random.default_rng(21).standard_normal((3001, 2))
    X = np.vstack([Y, Y])  # 6002 points: every point has an exact twin 3001 places later
    k = kk.Gaussian(0.9)
    s = 24
    start = np.random.default_rng(22).choice(X.shape[0], size=s, replace=False).astype(np.int64)
    mu = np.asarray(kk.kernel_sum(k, X, X, np.full(X.shape[0], 1.0 / X.shape[0])), dtype=np.float64)
    stat0 = 1.0 / s - 2 * mu + (2.0 / s) * np.asarray(kk.kernel_sum(k, X[start], X), dtype=np.float64)
    runs = {}
    for threads in (1, 2, 3):
        coreset, stat = start.copy(), stat0.copy()
        with kk.options(threads=threads):
            KernelRows(k, X).refine(coreset, stat, unique=unique)
        runs[threads] = (coreset, stat)
    for threads in (2, 3):
        np.testing.assert_array_equal(runs[threads][0], runs[1][0])
        np.testing.assert_array_equal(runs[threads][1], runs[1][1])
    assert (runs[1][0] < 3001).all()  # the twin with the smaller index wins each tie
    assert not np.array_equal(runs[1][0], start)  # the pass did move points
    coreset, stat = start.copy(), stat0.copy()
    with kk.options(**NUMPY):
        KernelRows(k, X).refine(coreset, stat, unique=unique)
    np.testing.assert_array_equal(coreset, runs[1][0])
    np.testing.assert_allclose(stat, runs[1][1], rtol=0, atol=1e-12)


def test_swap_weighted_reference():
    rng = np.random.default_rng(4)
    X = rng.standard_normal((40, 2))
    w = rng.random(40)
    k = kk.Gaussian(1.2)
    K = k(X)
    p = w / w.sum()
    mu = K @ p
    cs = kt_split(X, k, 2, random_state=2)
    got = kt_swap(X, cs, k, weights=w)
    cands = cs + [standard_thin(X, 10, weights=w)]
    scores = [K[np.ix_(c, c)].mean() - 2 * mu[c].mean() for c in cands]
    np.testing.assert_array_equal(got, reference_refine(K, cands[int(np.argmin(scores))], mu))


# ---------------------------------------------------------------- kernel_thin
@pytest.mark.slow
def test_kernel_thin_beats_standard_thinning():
    # seeds 0..4, n = 1024, N(0, I_2), sigma^2 = 2d, 32 points: ratio of standard thinning's MMD to the method's
    k = kk.Gaussian(2.0)
    methods = {"kt": (5, 2.5), "root": (5, 2.5), "kt+": (5, 2.5), "compress++": (5, 2.5), "herding": (3, 1.5)}
    ratios = {m: [] for m in methods}
    for seed in range(5):
        X = np.random.default_rng(seed).standard_normal((1024, 2))
        st = mmd(X, X[standard_thin(X, 32)], k)
        for method in methods:
            r = kernel_thin(X, 32, k, method=method, random_state=seed, with_mmd=True)
            assert r.indices.shape == (32,)
            ratios[method].append(st / r.mmd)
    for method, (median_min, worst_min) in methods.items():
        assert np.median(ratios[method]) >= median_min, (method, ratios[method])
        assert min(ratios[method]) >= worst_min, (method, ratios[method])


@pytest.mark.parametrize("n,size", [(1000, 31), (777, 100), (50, 50), (65, 1), (300, 150)])
def test_any_size(n, size):
    X = np.random.default_rng(n).standard_normal((n, 2))
    for method in ("kt", "compress++", "compress", "power"):
        idx = kernel_thin(X, size, kk.Gaussian(1.0), method=method, random_state=0)
        assert idx.shape == (size,) and idx.min() >= 0 and idx.max() < n


def test_non_power_of_four_uses_all_points_in_target():
    # the last quarter of the data is a separate cluster: a method that dropped it would miss it
    rng = np.random.default_rng(5)
    n = 1000
    X = np.r_[rng.standard_normal((750, 2)), rng.standard_normal((250, 2)) + [6.0, 0.0]]
    k = kk.Gaussian(1.0)
    for method in ("kt", "compress++"):
        idx = kernel_thin(X, 40, k, method=method, random_state=1)
        frac = np.mean(idx >= 750)
        assert 0.2 <= frac <= 0.3, (method, frac)


@pytest.mark.slow
def test_weights_target_weighted_measure():
    rng = np.random.default_rng(6)
    X = np.r_[rng.standard_normal((512, 2)), rng.standard_normal((512, 2)) + [5.0, 0.0]]
    w = np.r_[np.full(512, 3.0), np.full(512, 1.0)]
    k = kk.Gaussian(1.0)
    for method in ("kt", "compress++", "herding", "standard"):
        idx = kernel_thin(X, 32, k, method=method, random_state=0, weights=w)
        frac_first = np.mean(idx < 512)
        assert 0.65 <= frac_first <= 0.85, (method, frac_first)
    weighted = mmd(X, X[kernel_thin(X, 32, k, random_state=0, weights=w)], k, weights_x=w)
    unweighted = mmd(X, X[kernel_thin(X, 32, k, random_state=0)], k, weights_x=w)
    assert weighted * 3 < unweighted


def test_zero_weight_points_never_split_into_candidates():
    X = np.random.default_rng(7).standard_normal((64, 2))
    w = np.ones(64)
    w[::2] = 0
    cs = kt_split(X, kk.Gaussian(1.0), 2, random_state=0, weights=w)
    assert all((c % 2 == 1).all() for c in cs)


def test_float32_same_as_float64():
    X = np.random.default_rng(8).standard_normal((500, 3)).astype(np.float32)
    k = kk.Gaussian(1.5)
    a = kernel_thin(X, 20, k, random_state=3)
    b = kernel_thin(X.astype(np.float64), 20, k, random_state=3)
    np.testing.assert_array_equal(a, b)
    r = kernel_thin(X, 20, k, random_state=3, return_result=True)
    assert r.points.dtype == np.float32


def test_seeds_reproducible_and_input_untouched():
    X = np.random.default_rng(9).standard_normal((400, 2))
    X0 = X.copy()
    k = kk.Gaussian(1.0)
    a = kernel_thin(X, 20, k, random_state=1, method="compress++", g=1)
    b = kernel_thin(X, 20, k, random_state=1, method="compress++", g=1)
    c = kernel_thin(X, 20, k, random_state=2, method="compress++", g=1)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    np.testing.assert_array_equal(X, X0)
    g = np.random.default_rng(0)
    assert kernel_thin(X, 20, k, random_state=g).shape == (20,)


def test_named_kernel_median_bandwidth():
    X = np.random.default_rng(10).standard_normal((300, 2)) * 10
    r = kernel_thin(X, 16, "gaussian", random_state=0, return_result=True)
    assert 5 < r.kernel.bandwidth < 30
    r2 = kernel_thin(X, 16, "matern32", bandwidth=3.0, random_state=0, return_result=True)
    assert r2.kernel == kk.Matern(1.5, 3.0)


def test_kt_plus_split_kernel():
    X = np.random.default_rng(11).standard_normal((64, 2))
    r = kernel_thin(X, 8, kk.Gaussian(2.0), method="kt+", random_state=0, return_result=True)
    assert r.split_kernel == kk.Gaussian(2.0) + kk.Gaussian(2.0 * math.sqrt(0.5))
    r = kernel_thin(X, 8, kk.Gaussian(2.0), method="root", random_state=0, return_result=True)
    assert r.split_kernel == kk.Gaussian(2.0 * math.sqrt(0.5))


def test_compress_output_size_and_coverage():
    X = np.random.default_rng(12).standard_normal((4096, 2))
    idx = compress(X, kk.Gaussian(2.0), g=1, random_state=0)
    assert idx.size == 128 and np.unique(idx).size == 128
    st = mmd(X, X[standard_thin(X, 128)], kk.Gaussian(2.0))
    assert mmd(X, X[idx], kk.Gaussian(2.0)) < st


def reference_kt(X, size, kernel, delta, ss, unique):
    """Kernel thinning of X (size * 2^m points) to ``size``: dense KT-SPLIT, then KT-SWAP."""
    n = X.shape[0]
    K = kernel(X)
    m = int(round(math.log2(n / size)))
    assert size * 2 ** m == n
    s_split = ss.spawn(3)[0]
    mu = K.mean(axis=1)
    cands = reference_kt_split(X, kernel, m, delta, s_split) + [((np.arange(size) + 1) * n) // size - 1]
    scores = np.array([K[np.ix_(c, c)].mean() - 2 * mu[c].mean() for c in cands])
    # the two halves of a halving tie exactly: the first candidate within rounding wins
    first = int(np.flatnonzero(scores <= scores.min() + 1e-12 * np.abs(scores).max())[0])
    return reference_refine(K, cands[first], mu, unique=unique)


def reference_compresspp(X, size, kernel, g, delta, seed):
    """Compress++ written out directly (4 bins, leaves of 4^g size^2 / n points, every halving
    a dense KT to half size with distinct points, then the coreset or its complement by a fair
    coin; the 4 bin outputs thinned to ``size``), with the random numbers drawn in kernelkit's
    order. Sizes are powers of 4 (no remainders)."""
    n = X.shape[0]
    leaf = 4 ** g * size * size // n
    halvings = 0
    b = n // 4
    while b > leaf:
        halvings = 4 * halvings + 1
        b //= 4
    delta_node = delta / 2 / (4 * halvings)

    def rec(idx, ss):
        if idx.size <= leaf:
            return idx
        kids = ss.spawn(5)
        pool = np.concatenate([rec(part, kids[i]) for i, part in enumerate(np.split(idx, 4))])
        kt_ss, coin_ss = kids[4].spawn(2)
        chosen = reference_kt(X[pool], pool.size // 2, kernel, delta_node, kt_ss, unique=True)
        if np.random.default_rng(coin_ss).random() < 0.5:
            return pool[chosen]
        return np.array([pool[i] for i in range(pool.size) if i not in chosen])  # the complement

    _, s_compress, s_thin = np.random.SeedSequence(seed).spawn(3)
    kids = s_compress.spawn(5)
    pool = np.concatenate([rec(part, kids[i]) for i, part in enumerate(np.split(np.arange(n), 4))])
    return pool[reference_kt(X[pool], size, kernel, delta / 2, s_thin, unique=False)]


@pytest.mark.parametrize("threads", [1, 2])
def test_compresspp_matches_reference(threads):
    X = np.random.default_rng(23).standard_normal((1024, 2))
    k = kk.Gaussian(1.5)
    expect = reference_compresspp(X, 32, k, 1, 0.5, 7)
    with kk.options(threads=threads):
        got = kernel_thin(X, 32, k, method="compress++", g=1, random_state=7)
    np.testing.assert_array_equal(got, expect)
    with kk.options(**NUMPY):
        np.testing.assert_array_equal(kernel_thin(X, 32, k, method="compress++", g=1, random_state=7), expect)


def test_herding_matches_reference():
    X = np.random.default_rng(13).standard_normal((60, 2))
    k = kk.Gaussian(1.0)
    K = k(X)
    mu = K.mean(axis=1)
    chosen, acc = [], np.zeros(60)
    for t in range(10):
        j = int(np.argmax(mu - acc / (t + 1)))
        chosen.append(j)
        acc += K[j]
    np.testing.assert_array_equal(kk.kernel_herding(X, 10, k), chosen)
    with kk.options(**NUMPY):
        np.testing.assert_array_equal(kk.kernel_herding(X, 10, k), chosen)


def test_standard_thin_indices():
    X = np.zeros((10, 1))
    np.testing.assert_array_equal(standard_thin(X, 5), [1, 3, 5, 7, 9])
    np.testing.assert_array_equal(standard_thin(X, 3), [2, 5, 9])


# ---------------------------------------------------------------- mmd
@pytest.mark.parametrize("memory", [None, 4096])
def test_mmd_matches_dense(dtype, memory):
    rng = np.random.default_rng(14)
    X = rng.standard_normal((97, 3)).astype(dtype)
    Y = (rng.standard_normal((31, 3)) + 0.3).astype(dtype)
    p, q = rng.random(97), rng.random(31)
    k = kk.Matern(2.5, 1.3)
    tol = 1e-4 if dtype == np.float32 else 1e-10
    assert mmd(X, Y, k, memory=memory) == pytest.approx(dense_mmd(X, Y, k), rel=tol)
    assert mmd(X, Y, k, p, q, memory=memory) == pytest.approx(dense_mmd(X, Y, k, p, q), rel=tol)
    assert mmd(X, X, k) == pytest.approx(0.0, abs=1e-3 if dtype == np.float32 else 1e-6)


def test_mmd_integer_weights_equal_duplicates():
    rng = np.random.default_rng(15)
    X = rng.standard_normal((20, 2))
    Y = rng.standard_normal((15, 2))
    w = rng.integers(1, 4, size=20)
    k = kk.Gaussian(1.0)
    assert mmd(X, Y, k, weights_x=w) == pytest.approx(mmd(np.repeat(X, w, axis=0), Y, k), rel=1e-10)


# ---------------------------------------------------------------- bad input
@pytest.mark.parametrize("kwargs,exc,word", [
    (dict(size=0), ValueError, "'size'"),
    (dict(size=101), ValueError, "'size'"),
    (dict(size=2.5), TypeError, "'size'"),
    (dict(method="fast"), ValueError, "'method'"),
    (dict(kernel="nope"), ValueError, "'kernel'"),
    (dict(kernel=42), TypeError, "'kernel'"),
    (dict(delta=0), ValueError, "'delta'"),
    (dict(delta=1.5), ValueError, "'delta'"),
    (dict(g=-1), ValueError, "'g'"),
    (dict(alpha=2.0), ValueError, "'alpha'"),
    (dict(weights=-np.ones(100)), ValueError, "'weights'"),
    (dict(weights=np.ones(99)), ValueError, "'weights'"),
    (dict(random_state=-3), ValueError, "'random_state'"),
    (dict(kernel=kk.Linear(), method="kt+"), ValueError, "'method'"),
    (dict(kernel=kk.Gaussian(1.0), bandwidth=2.0), ValueError, "'bandwidth'"),
    # wrong types are TypeErrors, wrong values ValueErrors, one message shape
    (dict(size="10"), TypeError, "The 'size' parameter of kernel_thin must be an int in \\[1, 100\\]. Got '10'."),
    (dict(method=3), TypeError, "The 'method' parameter of kernel_thin must be one of \\{'auto', 'kt', "),
    (dict(delta=None), TypeError, "The 'delta' parameter of kernel_thin must be a float in \\(0, 1\\]. Got None."),
    (dict(alpha="0.5"), TypeError, "The 'alpha' parameter of kernel_thin must be a float in \\(0, 1\\]. Got '0.5'."),
    (dict(g=1.5), TypeError, "The 'g' parameter of kernel_thin must be an int in \\[0, 20\\]. Got 1.5."),
    (dict(with_mmd="yes"), TypeError, "The 'with_mmd' parameter of kernel_thin must be one of \\{False, True\\}"),
    (dict(kernel="gaussian", bandwidth="wide"), TypeError, "The 'bandwidth' parameter of kernel_thin must be a "
                                                           "finite float > 0. Got 'wide'."),
    (dict(kernel="gaussian", bandwidth=-1.0), ValueError, "The 'bandwidth' parameter of kernel_thin must be a "
                                                          "finite float > 0. Got -1.0."),
    (dict(kernel="linear"), ValueError, "The 'kernel' parameter of kernel_thin must be a Kernel object or a radial "
                                        "kernel name. Got 'linear'. Pass linear kernels as objects"),
])
def test_bad_input(kwargs, exc, word):
    X = np.random.default_rng(0).standard_normal((100, 2))
    args = dict(size=10, kernel=kk.Gaussian(1.0))
    args.update(kwargs)
    size = args.pop("size")
    with pytest.raises(exc, match=word) as info:
        kernel_thin(X, size, **args)
    assert isinstance(info.value, kk.InvalidTypeError if exc is TypeError else kk.InvalidValueError)


def test_bad_points():
    X = np.random.default_rng(0).standard_normal((100, 2))
    X[3, 1] = np.nan
    with pytest.raises(ValueError, match="'X'.*finite"):
        kernel_thin(X, 10, kk.Gaussian(1.0))
    with pytest.raises(ValueError, match="'X'"):
        kernel_thin(np.ones(10), 2, kk.Gaussian(1.0))
    with pytest.raises(TypeError, match="'kernel'"):
        mmd(X[:5], X[5:9], object())
    with pytest.raises(ValueError, match="'m'"):
        kt_split(np.ones((8, 1)), kk.Gaussian(1.0), 4)
    with pytest.raises(ValueError, match="'coresets'"):
        kt_swap(np.ones((8, 1)), [np.array([9])], kk.Gaussian(1.0))


# ---------------------------------------------------------------- mean embedding from the walk
@pytest.mark.skipif(not compiled_available(), reason="compiled extension not built")
@pytest.mark.parametrize("n,threads", [(101, 1), (999, 2), pytest.param(16385, 2, marks=pytest.mark.slow)])
def test_walk_row_sums_equal_engine(n, threads):
    from kernelkit.compress._split import split_sequence
    X = np.random.default_rng(n).standard_normal((n, 3))
    k = kk.Matern(2.5, 1.5)
    seq = np.random.default_rng(1).permutation(n)
    with kk.options(threads=threads):
        cs, rows, self_sums = split_sequence(k, X, seq, 2, 0.5, np.random.SeedSequence(0).spawn(2), row_sums=True)
    np.testing.assert_allclose(rows, kk.kernel_sum(k, X, X)[seq], rtol=1e-12)
    np.testing.assert_allclose(self_sums, [kk.kernel_sum(k, X[c], X[c]).sum() for c in cs], rtol=1e-11)
    plain = split_sequence(k, X, seq, 2, 0.5, np.random.SeedSequence(0).spawn(2))
    for a, b in zip(cs, plain):
        np.testing.assert_array_equal(a, b)


def test_kernel_thin_is_split_then_swap():
    X = np.random.default_rng(17).standard_normal((512, 2))
    k = kk.Gaussian(2.0)
    expect = kt_swap(X, kt_split(X, k, 4, random_state=5), k, size=32)
    np.testing.assert_array_equal(kernel_thin(X, 32, k, random_state=5), expect)
    with kk.options(**NUMPY):
        np.testing.assert_array_equal(kernel_thin(X, 32, k, random_state=5), expect)


# --- method="auto" ------------------------------------------------------------
def test_auto_method_rule():
    from kernelkit.compress import AUTO_KT_WORK, auto_method
    assert auto_method(2 ** 14, 2)[0] == "kt"
    method, rule = auto_method(10 ** 6, 2)  # KT would take minutes: 661 s measured
    assert method == "compress++" and "compress++" in rule and "O(n^2 d)" in rule
    n_edge = int((AUTO_KT_WORK / 12) ** 0.5)
    assert auto_method(n_edge, 2)[0] == "kt" and auto_method(n_edge + 1, 2)[0] == "compress++"
    assert auto_method(2 ** 15, 2)[0] == "kt" and auto_method(2 ** 15, 50)[0] == "compress++"


def test_auto_runs_the_chosen_method(monkeypatch):
    import kernelkit.compress as kc
    X = np.random.default_rng(3).standard_normal((1024, 2))
    k = kk.Gaussian(1.0)
    r = kk.kernel_thin(X, 32, k, random_state=5, return_result=True)
    assert r.method == "kt" and r.rule.startswith("auto:")
    np.testing.assert_array_equal(r.indices, kk.kernel_thin(X, 32, k, random_state=5, method="kt"))
    assert kk.kernel_thin(X, 32, k, random_state=5, method="kt", return_result=True).rule == "requested"
    monkeypatch.setattr(kc, "AUTO_KT_WORK", 1.0)  # force the large-n branch on small data
    r = kk.kernel_thin(X, 32, k, random_state=5, return_result=True)
    assert r.method == "compress++" and "compress++" in r.rule
    np.testing.assert_array_equal(r.indices, kk.kernel_thin(X, 32, k, random_state=5, method="compress++"))


def test_seed_is_a_deprecated_alias_of_random_state():
    X = np.random.default_rng(2).standard_normal((256, 2))
    k = kk.Gaussian(1.0)
    with pytest.warns(DeprecationWarning, match="'seed' parameter of kernel_thin is deprecated"):
        old = kernel_thin(X, 16, k, seed=4)
    np.testing.assert_array_equal(old, kernel_thin(X, 16, k, random_state=4))
    with pytest.raises(ValueError, match="pass only one of them"):
        kernel_thin(X, 16, k, seed=4, random_state=4)
    gen = kernel_thin(X, 16, k, random_state=np.random.default_rng(9))
    assert gen.shape == (16,)
    ss = np.random.SeedSequence(3)
    np.testing.assert_array_equal(kernel_thin(X, 16, k, random_state=ss), kernel_thin(X, 16, k, random_state=3))
    with pytest.raises(TypeError, match="'random_state' parameter of kernel_thin"):
        kernel_thin(X, 16, k, random_state="seven")


def test_mmd_kernel_name_uses_the_median_heuristic_like_kernel_thin():
    from kernelkit.compress import median_bandwidth
    rng = np.random.default_rng(8)
    X, Y = rng.standard_normal((300, 2)), rng.standard_normal((40, 2)) + 0.5
    h = median_bandwidth(X)
    assert mmd(X, Y, "gaussian") == pytest.approx(mmd(X, Y, kk.Gaussian(h)), rel=1e-12)
    assert mmd(X, Y) == mmd(X, Y, "gaussian")
    assert mmd(X, Y, "laplace", bandwidth=2.0) == pytest.approx(mmd(X, Y, kk.Laplace(2.0)), rel=1e-12)
    with pytest.raises(ValueError, match="'bandwidth' parameter of mmd must be None when 'kernel' is a Kernel"):
        mmd(X, Y, kk.Gaussian(1.0), bandwidth=2.0)


def test_kernel_name_rule_and_median_bandwidth_checks():
    from kernelkit.compress import median_bandwidth
    X = np.random.default_rng(4).standard_normal((300, 2))
    k = kk.Gaussian(median_bandwidth(X))
    np.testing.assert_array_equal(kernel_thin(X, 10, "GAUSSIAN", random_state=1, method="kt"),
                                  kernel_thin(X, 10, k, random_state=1, method="kt"))
    with pytest.raises(TypeError, match="The 'max_points' parameter of median_bandwidth must be an int >= 2. Got 2.5."):
        median_bandwidth(X, max_points=2.5)
    with pytest.raises(TypeError, match="The 'squared' parameter of mmd must be one of \\{False, True\\}. Got 'no'."):
        mmd(X, X[:5], k, squared="no")
    with pytest.raises(ValueError, match="The 'weights_x' parameter of mmd must be non-negative weights with a "
                                         "positive sum. Got sum 0.0."):
        mmd(X, X[:5], k, weights_x=np.zeros(300))


def test_thinning_uses_the_public_kernel_diag(monkeypatch):
    """Methods call k.diag (which validates), never the private k._diag."""
    X = np.random.default_rng(5).standard_normal((128, 2))
    k = kk.Gaussian(1.0)
    calls = []
    public = type(k).diag

    def counting(self, Z):
        calls.append(Z.shape)
        return public(self, Z)

    monkeypatch.setattr(type(k), "diag", counting)
    kt_swap(X, kt_split(X, k, 2, random_state=0), k, size=32)
    assert (128, 2) in calls  # the refinement's k(x, x) for every input point
    calls.clear()
    kk.compress.kernel_herding(X, 5, k)
    assert calls
