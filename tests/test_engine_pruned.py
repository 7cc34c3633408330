"""Exact spatial pruning of kernel sums for compactly supported kernels (kernelkit.engine._pruned).

The pruned sums are compared with the unpruned engine and with a slow, direct reference written here
(a loop over the queries, the kernel's profile written out from its definition, float64), on every
compact family, d = 1, 2, 3, float32 and float64, odd sizes, weights of both signs and several columns,
queries far outside the data, coinciding points, many tiny leaves (the partition's sizes shrunk) and a
tiny memory budget (the gathered points cut into pieces)."""

import math

import numpy as np
import pytest

import kernelkit as kk
from kernelkit.engine import _pruned, kernel_logsumexp, kernel_sum
from kernelkit.exceptions import InvalidTypeError, InvalidValueError

PROFILES = {   # phi(t), t = r / h, on the support t < 1, written out from the definitions
    "epanechnikov": (kk.Epanechnikov, lambda t: 1 - t ** 2),
    "biweight": (kk.Biweight, lambda t: (1 - t ** 2) ** 2),
    "triweight": (kk.Triweight, lambda t: (1 - t ** 2) ** 3),
    "tophat": (kk.Tophat, lambda t: 1.0 + 0 * t),
    "triangular": (kk.Triangular, lambda t: 1 - t),
    "cosine": (kk.Cosine, lambda t: np.cos(np.pi * t / 2)),
}
BACKENDS = ["fused", "numpy"] if kk.fused_available() else ["numpy"]
RTOL = {np.float32: 1e-5, np.float64: 1e-12}


def direct_sum(name, h, X, Y, W, l1=False):
    """out[j] = sum_i phi(r(x_i, y_j) / h) W[i], one query at a time (float64)."""
    phi = PROFILES[name][1]
    X, Y, W = (np.asarray(a, np.float64) for a in (X, Y, W))
    out = np.zeros((Y.shape[0], W.shape[1]))
    for j in range(Y.shape[0]):
        diff = X - Y[j]
        r = np.abs(diff).sum(1) if l1 else np.sqrt((diff * diff).sum(1))
        t = r / h
        k = np.where(t < 1, phi(np.minimum(t, 1.0)), 0.0)
        out[j] = k @ W
    return out


def direct_logsumexp(name, h, X, Y, LW):
    """log sum_i phi(r / h) exp(LW[i]) per query, with a max shift per query (float64; -inf if empty)."""
    phi = PROFILES[name][1]
    X, Y, LW = (np.asarray(a, np.float64) for a in (X, Y, LW))
    out = np.full((Y.shape[0], LW.shape[1]), -np.inf)
    for j in range(Y.shape[0]):
        t = np.sqrt(((X - Y[j]) ** 2).sum(1)) / h
        inside = t < 1
        for q in range(LW.shape[1]):
            terms = np.log(phi(t[inside])) + LW[inside, q]
            terms = terms[np.isfinite(terms)]
            if terms.size:
                top = terms.max()
                out[j, q] = top + math.log(np.exp(terms - top).sum())
    return out


def close(a, b, dtype, scale):
    np.testing.assert_allclose(a, b, rtol=RTOL[dtype], atol=RTOL[dtype] * scale)


def clustered(rng, n, d, centres=3, spread=0.6, box=6.0):
    """Points around a few centres in [0, box]^d: leaves of many sizes, empty regions between them."""
    C = rng.uniform(0, box, (centres, d))
    return C[rng.integers(0, centres, n)] + spread * rng.standard_normal((n, d))


@pytest.fixture
def small_leaves(monkeypatch):
    """Tiny leaves and blocks, so that small test problems have many of them (and padded groups)."""
    monkeypatch.setattr(_pruned, "LEAF_POINTS", 5)
    monkeypatch.setattr(_pruned, "BLOCK_QUERIES", 7)
    monkeypatch.setattr(_pruned, "GROUP", 3)


@pytest.mark.parametrize("name", list(PROFILES))
@pytest.mark.parametrize("d", [1, 2, 3])
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
def test_pruned_sum_matches_unpruned_and_direct(name, d, dtype, small_leaves):
    rng = np.random.default_rng(d)
    X = clustered(rng, 403, d).astype(dtype)
    Y = np.concatenate([clustered(rng, 97, d), [[50.0] * d, [-40.0] * d]]).astype(dtype)  # two far queries
    W = rng.standard_normal((403, 3)).astype(dtype)                                        # both signs, p = 3
    h = 0.9
    kern = PROFILES[name][0](h)
    ref = direct_sum(name, h, X, Y, W)
    scale = np.abs(W).sum()
    for backend in BACKENDS:
        pruned = kernel_sum(kern, X, Y, W, prune=True, backend=backend)
        plain = kernel_sum(kern, X, Y, W, prune=False, backend=backend)
        assert pruned.dtype == dtype and pruned.shape == (99, 3)
        close(pruned, plain, dtype, scale)
        close(pruned, ref, dtype, scale)
        assert np.all(pruned[-2:] == 0.0)   # far outside: exactly zero, as unpruned


@pytest.mark.parametrize("name", list(PROFILES))
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
def test_pruned_logsumexp_matches_unpruned_and_direct(name, dtype, small_leaves):
    rng = np.random.default_rng(7)
    d = 2
    X = clustered(rng, 311, d).astype(dtype)
    Y = np.concatenate([clustered(rng, 83, d), [[30.0, 30.0], [-20.0, 5.0]]]).astype(dtype)
    LW = rng.normal(0, 2, (311, 2))
    LW[::7, 0] = -np.inf                         # zero weights
    LW = LW.astype(dtype)
    h = 0.7
    kern = PROFILES[name][0](h)
    ref = direct_logsumexp(name, h, X, Y, LW)
    for backend in BACKENDS:
        pruned = kernel_logsumexp(kern, X, Y, LW, prune=True, backend=backend)
        plain = kernel_logsumexp(kern, X, Y, LW, prune=False, backend=backend)
        assert pruned.dtype == dtype
        fin = np.isfinite(ref)
        assert np.array_equal(np.isfinite(pruned), fin) and np.array_equal(np.isfinite(plain), fin)
        assert np.all(pruned[~fin] == -np.inf)
        assert (~fin[-2:]).all()   # the far queries: no point in the support
        close(pruned[fin], ref[fin], dtype, 1.0)
        if backend == "numpy" and dtype == np.float32:
            # the NumPy backend's own float32 log-sum-exp is off by up to 2e-5 from the float64
            # reference here (measured), the pruned one (through the sum) by 3e-6
            np.testing.assert_allclose(pruned[fin], plain[fin], rtol=1e-4, atol=1e-4)
        else:
            close(pruned[fin], plain[fin], dtype, 1.0)


def test_log_domain_underflow_falls_back_to_the_log_sum_exp(small_leaves):
    """Log weights spread over 2000 nats: exp(L - max L) underflows for the queries near the light points,
    which the pruned path recomputes in the log domain (the values are far below the smallest float)."""
    rng = np.random.default_rng(3)
    X = np.concatenate([rng.uniform(0, 1, (150, 2)), rng.uniform(10, 11, (150, 2))])
    LW = np.concatenate([np.zeros(150), np.full(150, -2000.0)]) + rng.normal(0, 1, 300)
    Y = np.concatenate([rng.uniform(0, 1, (20, 2)), rng.uniform(10, 11, (20, 2))])
    kern = kk.Epanechnikov(0.5)
    ref = direct_logsumexp("epanechnikov", 0.5, X, Y, LW[:, None])[:, 0]
    pruned = kernel_logsumexp(kern, X, Y, LW, prune=True)
    plain = kernel_logsumexp(kern, X, Y, LW, prune=False)
    assert np.all(ref[20:] < -1990) and np.all(np.isfinite(ref))
    np.testing.assert_allclose(pruned, ref, rtol=1e-12)
    np.testing.assert_allclose(pruned, plain, rtol=1e-12)


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
def test_tiny_memory_budget_cuts_the_gathered_points(dtype):
    """A block's gathered points beyond the batch limit (1024 rows at the smallest budget) are summed in pieces."""
    rng = np.random.default_rng(11)
    X = rng.uniform(0, 1, (3001, 2)).astype(dtype)
    Y = rng.uniform(0, 1, (37, 2)).astype(dtype)
    W = rng.standard_normal((3001, 2)).astype(dtype)
    kern = kk.Biweight(0.8)
    ref = direct_sum("biweight", 0.8, X, Y, W)
    for backend in BACKENDS:
        tiny = kernel_sum(kern, X, Y, W, prune=True, memory=2048, backend=backend)
        close(tiny, ref, dtype, np.abs(W).sum())
        lt = kernel_logsumexp(kern, X, Y, np.log(np.abs(W[:, 0])), prune=True, memory=2048, backend=backend)
        close(lt, np.log(direct_sum("biweight", 0.8, X, Y, np.abs(W[:, :1]))[:, 0]), dtype, 1.0)


def test_coinciding_points_and_constant_columns(small_leaves):
    """More coinciding points than a leaf holds (a cell that cannot be split), a constant column, n = 1."""
    rng = np.random.default_rng(5)
    X = np.concatenate([np.tile([[1.0, 2.0, 0.5]], (40, 1)), rng.uniform(0, 3, (61, 3))])
    X[:, 2] = 0.5
    Y = np.concatenate([np.tile([[1.0, 2.0, 0.5]], (9, 1)), rng.uniform(0, 3, (30, 3))])
    W = rng.standard_normal(101)
    kern = kk.Triangular(0.6)
    ref = direct_sum("triangular", 0.6, X, Y, W[:, None])[:, 0]
    np.testing.assert_allclose(kernel_sum(kern, X, Y, W, prune=True), ref, rtol=1e-12, atol=1e-12 * 101)
    one = kernel_sum(kern, X[:1], Y, prune=True)
    np.testing.assert_allclose(one, direct_sum("triangular", 0.6, X[:1], Y, np.ones((1, 1)))[:, 0], rtol=1e-12)


def test_every_query_outside_the_support():
    rng = np.random.default_rng(2)
    X = rng.uniform(0, 1, (500, 3))
    Y = rng.uniform(5, 6, (60, 3))
    kern = kk.Cosine(0.5)
    assert np.all(kernel_sum(kern, X, Y, prune=True) == 0.0)
    assert np.all(kernel_logsumexp(kern, X, Y, prune=True) == -np.inf)


def test_l1_distance_and_combined_kernels(small_leaves):
    rng = np.random.default_rng(9)
    X = clustered(rng, 257, 3)
    Y = clustered(rng, 71, 3)
    W = rng.standard_normal((257, 2))
    k1 = kk.Epanechnikov(1.1, distance="l1")
    assert _pruned.support(k1) == (1.1, True)
    ref = direct_sum("epanechnikov", 1.1, X, Y, W, l1=True)
    np.testing.assert_allclose(kernel_sum(k1, X, Y, W, prune=True), ref, rtol=1e-12, atol=1e-12 * 257)
    # a scaled sum (largest radius) and a product with a non-compact factor (the compact factor's radius)
    combo = 2.0 * kk.Tophat(0.5) + kk.Biweight(1.3)
    assert _pruned.support(combo) == (1.3, False)
    ref = 2 * direct_sum("tophat", 0.5, X, Y, W) + direct_sum("biweight", 1.3, X, Y, W)
    np.testing.assert_allclose(kernel_sum(combo, X, Y, W, prune=True), ref, rtol=1e-12, atol=1e-12 * 257)
    prod = kk.Gaussian(2.0) * kk.Cosine(0.9)
    assert _pruned.support(prod) == (0.9, False)
    np.testing.assert_allclose(kernel_sum(prod, X, Y, W, prune=True), kernel_sum(prod, X, Y, W, prune=False),
                               rtol=1e-12, atol=1e-12 * 257)
    assert _pruned.support(kk.Gaussian(1.0)) is None
    assert _pruned.support(kk.Gaussian(1.0) + kk.Tophat(1.0)) is None


def test_threads_do_not_change_the_result(small_leaves):
    rng = np.random.default_rng(4)
    X, Y = clustered(rng, 800, 2), clustered(rng, 300, 2)
    W = rng.standard_normal((800, 2))
    kern = kk.Triweight(0.8)
    one = kernel_sum(kern, X, Y, W, prune=True, threads=1)
    two = kernel_sum(kern, X, Y, W, prune=True, threads=2)
    assert np.array_equal(one, two)


def test_the_automatic_rule(monkeypatch):
    """prune=None prunes a large low-dimensional compact problem, and leaves the others to the plain engine."""
    built = []
    real = _pruned._Plan

    def counting(*a, **kw):
        built.append(1)
        return real(*a, **kw)

    monkeypatch.setattr(_pruned, "_Plan", counting)
    rng = np.random.default_rng(0)
    X, Y = rng.standard_normal((4096, 3)), rng.standard_normal((1100, 3))   # 4.5e6 pairs >= MIN_PAIRS
    kern = kk.Epanechnikov(0.3)
    out = kernel_sum(kern, X, Y)
    assert len(built) == 1
    np.testing.assert_allclose(out, kernel_sum(kern, X, Y, prune=False), rtol=1e-12, atol=1e-12 * 4096)
    kernel_sum(kern, X[:100], Y)                         # too few pairs
    kernel_sum(kk.Gaussian(0.3), X, Y)                   # no compact support
    kernel_sum(kk.Epanechnikov(50.0), X, Y)              # the support covers all the data
    kernel_sum(kern, X, Y, prune=False)
    Xh, Yh = rng.standard_normal((4096, 9)), rng.standard_normal((1100, 9))
    kernel_sum(kern, Xh, Yh)                             # d > MAX_D
    assert len(built) == 1
    kernel_logsumexp(kern, X, Y)
    assert len(built) == 2


def test_bad_prune_values():
    X = np.zeros((5, 2))
    with pytest.raises(InvalidValueError, match="'prune'.*compact support|'prune'"):
        kernel_sum(kk.Gaussian(1.0), X, X, prune=True)
    with pytest.raises(InvalidValueError, match="'prune'"):
        kernel_sum(kk.Tophat(1.0), np.zeros((5, 9)), np.zeros((3, 9)), prune=True)
    with pytest.raises(InvalidTypeError, match="'prune'"):
        kernel_logsumexp(kk.Tophat(1.0), X, X, prune="yes")
    with pytest.raises((InvalidTypeError, InvalidValueError), match="'prune'"):
        kernel_sum(kk.Tophat(1.0), X, X, prune=1)


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
def test_tophat_leaves_inside_the_support_are_weight_sums(dtype, small_leaves):
    """A flat kernel adds the weight sums of the leaves whose farthest points are inside the support (no
    pairs evaluated there): same sums as the unpruned engine and the direct loop."""
    rng = np.random.default_rng(8)
    X = rng.uniform(0, 4, (2000, 2)).astype(dtype)
    Y = rng.uniform(0, 4, (150, 2)).astype(dtype)
    W = rng.standard_normal((2000, 2)).astype(dtype)
    kern = kk.Tophat(1.5)
    pl = _pruned._Plan(X, Y, 1.5, False, flat=True)
    assert pl.inside_block.size > 0 and pl.block.size > 0       # both kinds of (block, leaf) pairs occur
    ref = direct_sum("tophat", 1.5, X, Y, W)
    for backend in BACKENDS:
        close(kernel_sum(kern, X, Y, W, prune=True, backend=backend), ref, dtype, np.abs(W).sum())
        lw = np.log(np.abs(W[:, 0]))
        close(kernel_logsumexp(kern, X, Y, lw, prune=True, backend=backend),
              np.log(direct_sum("tophat", 1.5, X, Y, np.abs(W[:, :1]))[:, 0]), dtype, 1.0)


def test_prepared_pruned_sum_reuses_the_partition(monkeypatch):
    """prepare_pruned_sum: the points partitioned once, then sums for any number of query sets (also small
    ones, once partitioned), equal to the unpruned engine; None where pruning cannot apply."""
    rng = np.random.default_rng(6)
    X = clustered(rng, 20011, 2)
    W = rng.standard_normal((20011, 3))
    kern = kk.Tophat(0.4)
    S = _pruned.prepare_pruned_sum(kern, X, W)
    built = []
    real = _pruned._leaves
    monkeypatch.setattr(_pruned, "_leaves", lambda P, size: built.append(P.shape[0]) or real(P, size))
    for m in (300, 301, 5):          # 20011 x 300 >= MIN_PAIRS: partitions X; the later calls reuse it
        Y = clustered(rng, m, 2)
        np.testing.assert_allclose(S(Y), kernel_sum(kern, X, Y, W, prune=False), rtol=1e-12, atol=1e-12 * 20011)
    assert built.count(20011) == 1 and len(built) == 4   # X once, each query set once
    assert _pruned.prepare_pruned_sum(kk.Gaussian(1.0), X, W) is None
    assert _pruned.prepare_pruned_sum(kern, np.zeros((10, 9)), np.ones((10, 1))) is None


def test_prune_option_is_inherited_and_a_call_overrides_it(monkeypatch):
    from kernelkit.engine import _pruned
    rng = np.random.default_rng(3)
    X, Y = rng.random((300, 2)), rng.random((40, 2))
    k = kk.Epanechnikov(0.2)
    calls = []
    real = _pruned._sum_sorted   # the pruned sum, compiled over ranges or block by block
    monkeypatch.setattr(_pruned, "_sum_sorted", lambda *a, **kw: calls.append(1) or real(*a, **kw))
    want = kk.kernel_sum(k, X, Y, prune=False)
    assert not calls
    with kk.options(prune=True):          # small sizes: the automatic rule alone would not prune
        got = kk.kernel_sum(k, X, Y)
        assert len(calls) == 1
        kk.kernel_sum(k, X, Y, prune=False)
        assert len(calls) == 1
    np.testing.assert_allclose(got, want, rtol=1e-12)
    with pytest.raises(TypeError, match="'prune' option"):
        with kk.options(prune="yes"):
            pass


# --- the compiled path over point ranges (fused backend) against the block-by-block path -------------

needs_fused = pytest.mark.skipif(not kk.fused_available(), reason="the compiled engine is not built here")


@needs_fused
@pytest.mark.parametrize("name", list(PROFILES))
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("leaf, block", [(5, 7), (64, 96), (300, 13)])
def test_compiled_ranges_match_the_block_path(name, dtype, leaf, block, monkeypatch):
    rng = np.random.default_rng(21)
    X = clustered(rng, 2311, 3).astype(dtype)
    Y = clustered(rng, 517, 3).astype(dtype)
    W = rng.standard_normal((X.shape[0], 3)).astype(dtype)
    LW = rng.uniform(-3, 0, (X.shape[0], 2))
    k = PROFILES[name][0](0.7)
    calls = []
    real = _pruned._run_compiled
    with monkeypatch.context() as m:
        m.setattr(_pruned, "LEAF_POINTS", leaf)
        m.setattr(_pruned, "BLOCK_QUERIES", block)
        m.setattr(_pruned, "_run_compiled", lambda *a, **kw: calls.append(1) or real(*a, **kw))
        fast_s = kernel_sum(k, X, Y, W, prune=True)
        fast_l = kernel_logsumexp(k, X, Y, LW, prune=True)
        assert calls   # the compiled path ran
        m.setattr(_pruned, "_compiled_plan", lambda *a, **kw: None)
        slow_s = kernel_sum(k, X, Y, W, prune=True)
        slow_l = kernel_logsumexp(k, X, Y, LW, prune=True)
    close(fast_s, slow_s, dtype, np.abs(slow_s).max())
    close(fast_s, direct_sum(name, 0.7, X, Y, W), dtype, np.abs(slow_s).max())
    fin = np.isfinite(slow_l)
    assert np.array_equal(fin, np.isfinite(fast_l))
    np.testing.assert_allclose(fast_l[fin], slow_l[fin], rtol=0, atol=10 * RTOL[dtype])


@needs_fused
def test_compiled_ranges_l1_threads_and_tiny_tiles(monkeypatch):
    """L1 kernels, two threads against one (the same sums exactly), and a memory budget that shrinks the
    compiled tiles to the smallest sizes."""
    rng = np.random.default_rng(5)
    X, Y = clustered(rng, 3001, 2), clustered(rng, 401, 2)
    W = rng.standard_normal((X.shape[0], 2))
    k = kk.Epanechnikov(0.9, distance="l1")
    one = kernel_sum(k, X, Y, W, prune=True, threads=1)
    two = kernel_sum(k, X, Y, W, prune=True, threads=2)
    np.testing.assert_array_equal(one, two)
    close(one, direct_sum("epanechnikov", 0.9, X, Y, W, l1=True), np.float64, np.abs(one).max())
    tiny = kernel_sum(k, X, Y, W, prune=True, memory=20_000)
    close(tiny, one, np.float64, np.abs(one).max())


@needs_fused
def test_compiled_ranges_redo_in_the_log_domain(monkeypatch):
    """Log weights so small that the pruned sum underflows: the queries are redone by the compiled
    log-sum-exp over the same ranges, equal to the direct log-domain reference."""
    rng = np.random.default_rng(8)
    X, Y = rng.random((900, 2)), rng.random((120, 2))
    LW = np.full((900, 1), -800.0)
    LW[X[:, 0] < 0.3] = 0.0   # queries to the right see only terms of about e^-800: the sum underflows
    k = kk.Biweight(0.15)
    calls = []
    real = _pruned._run_compiled
    monkeypatch.setattr(_pruned, "_run_compiled", lambda *a, **kw: calls.append(a[2]) or real(*a, **kw))
    got = kernel_logsumexp(k, X, Y, LW, prune=True)
    assert "logsumexp" in calls
    want = direct_logsumexp("biweight", 0.15, X, Y, LW)
    fin = np.isfinite(want)
    assert np.array_equal(fin, np.isfinite(got))
    np.testing.assert_allclose(got[fin], want[fin], rtol=0, atol=1e-10)


@needs_fused
def test_compiled_ranges_reject_a_bad_plan():
    from kernelkit.engine import _fused
    rng = np.random.default_rng(0)
    X, Y, W = rng.random((50, 2)), rng.random((10, 2)), np.ones((50, 1))
    from kernelkit.engine import _opts
    fp = _fused.ranges_plan(kk.Epanechnikov(0.3), X, Y, _opts(None, 1, None, False), 1)
    out = np.zeros((10, 1))
    z = np.zeros(1, dtype=np.int64)
    one = np.ones(1, dtype=np.int64)
    with pytest.raises(ValueError, match="point range outside"):
        _fused.run_ranges(fp, "sum", W, z, one * 10, z, one, z, one * 51, 0.09, out)
    with pytest.raises(ValueError, match="sorted and disjoint"):
        _fused.run_ranges(fp, "sum", W, np.array([0, 3]), np.array([5, 8]), np.zeros(2, np.int64),
                          np.ones(2, np.int64), z, one * 50, 0.09, out)
    with pytest.raises(ValueError, match="sorted and disjoint"):
        _fused.run_ranges(fp, "sum", W, z, one * 11, z, one, z, one * 50, 0.09, out)
    _fused.run_ranges(fp, "sum", W, z, one * 10, z, one, z, one * 50, -1.0, out)   # every pair, no test
    np.testing.assert_allclose(out, kernel_sum(kk.Epanechnikov(0.3), X, Y, W, prune=False), rtol=1e-12)


@pytest.mark.parametrize("d, l1", [(1, False), (2, True), (3, False), (5, False)])
def test_compiled_near_pairs_equal_the_numpy_test(d, l1, monkeypatch):
    """The compiled box test lists the same (block, leaf) pairs as the NumPy reference (padded groups
    included: a leaf count that is not a multiple of GROUP)."""
    rng = np.random.default_rng(d)
    X, Y = clustered(rng, 4003, d), clustered(rng, 611, d)
    xs, ys = _pruned._leaves(X, 9), _pruned._leaves(Y, 13)
    group = next(g for g in (5, 6, 7, 11) if xs.lo.shape[0] % g)
    monkeypatch.setattr(_pruned, "GROUP", group)
    for thr in (0.0, 0.3, 2.0):
        got = _pruned._near_pairs(ys.lo, ys.hi, xs.lo, xs.hi, thr, l1)
        want = _pruned._near_pairs_numpy(ys.lo, ys.hi, xs.lo, xs.hi, thr, l1)
        assert all(np.array_equal(a, b) for a, b in zip(got, want))
        assert got[0].size   # not an empty comparison


def test_leaves_partition_and_boxes():
    """Every point in exactly one leaf, leaves of at most ``size`` points unless they coincide, and each
    box the tight bounding box of its points."""
    rng = np.random.default_rng(2)
    X = np.concatenate([clustered(rng, 3000, 3), np.zeros((200, 3))])   # 200 coinciding points
    lv = _pruned._leaves(X, 17)
    assert np.array_equal(np.sort(lv.order), np.arange(X.shape[0]))
    Xs = X[lv.order]
    for i in range(lv.starts.size - 1):
        pts = Xs[lv.starts[i]:lv.starts[i + 1]]
        assert pts.shape[0] <= 17 or np.all(pts == pts[0])
        np.testing.assert_array_equal(lv.lo[i], pts.min(axis=0))
        np.testing.assert_array_equal(lv.hi[i], pts.max(axis=0))
