"""The fused compiled backend against slow, obviously correct references.

Every path of ``kernelkit.engine._fused`` / ``_fused_ext.c`` is driven here
and compared with the references of tests/_reference.py, written from the
formulas in the kernels' docstrings:

* a double-loop float64 reference (per pair, on Python floats) on tiny
  inputs, and a vectorised float64 NumPy reference (exact coordinate
  differences, checked against the double loop) on the larger ones;
* both distance modes (``direct`` and ``gram``), tiny memory budgets (16 x 6
  tiles packed block by block) and large ones (whole-input prepacking), one
  and two threads, and the point-parallel path (few query blocks, many points);
* log-sum-exp where every kernel value underflows float64, top-k with exact
  ties, and the vectorised exp down to gradual underflow.

The kernels are the kernel cases of conftest.py; ``_fused_support`` says
which of them the backend compiles (the others must fall back under
``backend="auto"``).

Tolerances: ``tol("sum", dtype)`` (tests/_reference.py) relative to
``sum_i |W_i| |k(x_i, y)|``, as in test_engine.py. In gram mode the squared
distance ``|x - c|^2 + |y - c|^2 - 2 (x - c).(y - c)`` carries an absolute
error of order ``eps (|x - c|^2 + |y - c|^2)``; for kernels that are not
smooth at r = 0 (Laplace) that is amplified near coincident points, so the
tolerance adds the change of each kernel value under such a perturbation of
r^2. Dot-product kernels are measured against their envelope
``(gamma |x| |y| + c)^degree``.

The whole module is skipped when the extension is not built.
"""

import math

import numpy as np
import pytest

import kernelkit as kk
from _reference import (SAFETY, double_loop_matrix, envelope_matrix, has_dot, is_positive, k_matrix,
                        kernel_logsumexp, kernel_sum, leaves, log_k_matrix, radial_log, sqdist, tol, topk)
from kernelkit import engine
from kernelkit._options import get_options
from kernelkit.engine import _fused, _numpy, fused_available

pytestmark = pytest.mark.skipif(not fused_available(), reason="the fused compiled backend is not built")

DTYPES = [np.float32, np.float64]
DT_IDS = ["float32", "float64"]


# --------------------------------------------------------------------------------------------
# what the backend compiles, and the error allowances of its paths
# --------------------------------------------------------------------------------------------
_FUSED_FAMILIES = {"gauss", "laplace", "imq", "rq", "periodic", "linear", "poly"}  # and Matern with nu = 1/2, 3/2, 5/2


def _fused_support(spec):
    """(sum and top-k, log-sum-exp) the fused backend is expected to take: closed-form families, their
    positive scalings and sums (no products, no general-nu Matern); log-sum-exp only for a single
    radial family, possibly scaled."""
    kind = spec[0]
    if kind == "scaled":
        return _fused_support(spec[2])
    if kind == "sum":
        return all(_fused_support(s)[0] for s in spec[1]), False
    if kind == "matern":
        ok = spec[1] in (0.5, 1.5, 2.5)
        return ok, ok
    if kind in _FUSED_FAMILIES:
        return True, kind not in ("linear", "poly")
    return False, False


def fused_sum(case):
    return _fused_support(case.ref)[0]


def fused_lse(case):
    return _fused_support(case.ref)[1]


def _r2_perturbation(spec, X, Y, dtype, gram):
    """Bound on the absolute error of the squared distances the backend forms."""
    X = np.asarray(X, dtype=np.float64)
    Y = np.asarray(Y, dtype=np.float64)
    d = X.shape[1]
    eps = float(np.finfo(dtype).eps)
    if not gram:  # exact differences: a relative error of a few eps
        return (d + 2) * eps * sqdist(X, Y)
    # gram: centred on the mean of X, except when a dot-product component is present
    c = np.zeros(d) if has_dot(spec) else X.mean(axis=0)
    nx = ((X - c) ** 2).sum(1)
    ny = ((Y - c) ** 2).sum(1)
    return (2 * d + 4) * eps * (nx[:, None] + ny[None, :])


def _tol_matrix(spec, X, Y, dtype, gram):
    """Per-pair error allowance: tol * |k| (or the dot-product envelope) + distance sensitivity.
    The perturbation bound uses the whole kernel's centring: the whole spec goes down to each leaf."""
    X = np.asarray(X, dtype=np.float64)
    Y = np.asarray(Y, dtype=np.float64)
    return sum(_leaf_tol(leaf, spec, X, Y, dtype, gram, w) for leaf, w in leaves(spec))


def _leaf_tol(leaf, whole, X, Y, dtype, gram, w):
    w = abs(w)
    if has_dot(leaf):
        return tol("sum", dtype) * w * envelope_matrix(leaf, X, Y)
    r2 = sqdist(X, Y)
    delta = _r2_perturbation(whole, X, Y, dtype, gram)
    a = np.exp(radial_log(leaf, np.maximum(r2 - delta, 0.0)))
    mid = np.exp(radial_log(leaf, r2))
    b = np.exp(radial_log(leaf, r2 + delta))
    # the change of phi when r^2 moves by delta: phi(r2 - delta) - phi(r2 + delta) for a decreasing phi
    # (every radial family here); the two one-sided changes also cover one that is not monotone
    sens = np.maximum(np.abs(a - b), np.abs(a - mid) + np.abs(mid - b))
    return w * (tol("sum", dtype) * mid + sens)


def _assert_sums_close(got, ref, tol_pairs, W, what):
    """|got - ref| <= SAFETY * sum_i |W_i| tol_pairs[i, j] (+ a denormal floor)."""
    bound = SAFETY * (tol_pairs.T @ np.abs(np.asarray(W, dtype=np.float64))) + 1e-300
    err = np.abs(np.asarray(got, dtype=np.float64) - ref)
    worst = np.unravel_index(np.argmax(err / bound), err.shape)
    assert np.all(err <= bound), (f"{what}: worst |got - ref| = {err[worst]:.3e} at {worst} "
                                  f"(bound {bound[worst]:.3e}; got {got[worst]!r}, ref {ref[worst]!r})")


def _data(n, m, d, p, seed, scale=None):
    """Float32-representable data (so the float64 reference sees exactly the inputs of both dtypes)."""
    rng = np.random.default_rng(seed)
    s = 1.5 / math.sqrt(d) if scale is None else scale
    X = (rng.normal(size=(n, d)) * s).astype(np.float32).astype(np.float64)
    Y = (rng.normal(size=(m, d)) * s).astype(np.float32).astype(np.float64)
    W = rng.normal(size=(n, p)).astype(np.float32).astype(np.float64)  # any sign
    return X, Y, W


def _opts(memory=10**9, threads=1):
    return get_options(memory=memory, threads=threads)


def _modes(spec):
    return ["gram"] if has_dot(spec) else ["direct", "gram"]


# sizes (n, m, d, p): odd, prime, n = 1, m = 1, d around DIRECT_MAX_D
SMALL = [(1, 1, 1, 1), (1, 17, 3, 3), (2, 2, 9, 1), (17, 1, 1, 3), (2, 97, 3, 1), (17, 17, 9, 3), (97, 2, 1, 1)]
LARGE = [(257, 97, 3, 3), (97, 257, 9, 1), (257, 1, 1, 1), (1, 257, 9, 3), (257, 257, 1, 3), (257, 17, 9, 1)]

_CACHE = {}


def _case_data(case, cfg, loop):
    """(X, Y, W, K) for a kernel case and a size; K by the double loop or the vectorised reference."""
    key = (case.id, cfg, loop)
    if key not in _CACHE:
        n, m, d, p = cfg
        X, Y, W = _data(n, m, d, p, seed=1000003 * n + 1009 * m + 31 * d + p)
        K = double_loop_matrix(case.ref, X, Y) if loop else k_matrix(case.ref, X, Y)
        _CACHE[key] = (X, Y, W, K)
    return _CACHE[key]


# --------------------------------------------------------------------------------------------
# 1. every supported kernel, both distance modes, odd sizes
# --------------------------------------------------------------------------------------------
def test_vectorised_reference_matches_double_loop(kernel_case):
    """The vectorised reference used on larger inputs is the double loop's twin."""
    for cfg in SMALL:
        X, Y, _, K = _case_data(kernel_case, cfg, loop=True)
        np.testing.assert_allclose(k_matrix(kernel_case.ref, X, Y), K, rtol=tol("reference", np.float64),
                                   atol=1e-300)


def test_every_kernel_is_supported(kernel_case):
    """The backend compiles exactly the kernels it is expected to (the others fall back: section 8)."""
    kernel = kernel_case.kernel
    expect_sum, expect_lse = _fused_support(kernel_case.ref)
    assert _fused.supports(kernel, "sum") == expect_sum and _fused.supports(kernel, "topk") == expect_sum
    assert _fused.supports(kernel, "logsumexp") == expect_lse


@pytest.mark.parametrize("dtype", DTYPES, ids=DT_IDS)
@pytest.mark.kernel_cases(where=fused_sum)
def test_sum_matches_references(kernel_case, dtype):
    kernel, spec = kernel_case.kernel, kernel_case.ref
    opts = _opts()
    for loop, configs in [(True, SMALL), (False, LARGE)]:
        for cfg in configs:
            X, Y, W, K = _case_data(kernel_case, cfg, loop)
            ref = K.T @ W
            for mode in _modes(spec):
                got = _fused.kernel_sum(kernel, X.astype(dtype), Y.astype(dtype), W, opts, mode=mode)
                assert got.shape == ref.shape and got.dtype == np.float64
                tol_pairs = _tol_matrix(spec, X, Y, dtype, gram=mode == "gram")
                _assert_sums_close(got, ref, tol_pairs, W, f"{kernel_case.id} {cfg} {mode} loop={loop}")


@pytest.mark.kernel_cases(where=lambda case: fused_sum(case) and has_dot(case.ref))
def test_direct_mode_refused_for_dot_product_kernels(kernel_case):
    kernel = kernel_case.kernel
    X, Y, W = _data(5, 3, 2, 1, seed=0)
    with pytest.raises(ValueError, match="gram"):
        _fused.kernel_sum(kernel, X, Y, W, _opts(), mode="direct")
    with pytest.raises(ValueError, match="mode"):
        _fused.kernel_sum(kernel, X, Y, W, _opts(), mode="exact")


def test_default_mode_by_dimension():
    codes = np.array([0], dtype=np.int32)
    assert _fused._mode(codes, _fused.DIRECT_MAX_D, None) == (False, False)
    assert _fused._mode(codes, _fused.DIRECT_MAX_D + 1, None) == (True, True)
    assert _fused._mode(np.array([0, 7], dtype=np.int32), 1, None) == (True, False)


# --------------------------------------------------------------------------------------------
# 2. blocked paths: tiny tiles without prepacking, default tiles with prepacking, threads
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", DTYPES, ids=DT_IDS)
@pytest.mark.kernel_cases("gauss", "matern25", "imq07", "sum_g_l_lin", "poly3")
def test_memory_budgets_agree(kernel_case, dtype):
    kernel, spec, case_id = kernel_case.kernel, kernel_case.ref, kernel_case.id
    n, m, d, p = 257, 97, 3, 3
    X, Y, W = _data(n, m, d, p, seed=21)
    Xd, Yd = X.astype(dtype), Y.astype(dtype)
    ref = k_matrix(spec, X, Y).T @ W
    gram = has_dot(spec)
    tol_pairs = _tol_matrix(spec, X, Y, dtype, gram=gram)

    # the budgets really select the paths they are meant to
    small = _fused._prepare(kernel, Xd, Yd, _opts(2000), None, p)
    low = _fused._ext.TILE_MULTIPLE   # the widest panel of the running build (16; 32 with AVX-512)
    assert small[6:8] == (low, 6) and small[9] == 0, "memory=2000: smallest tiles, packed block by block"
    big = _fused._prepare(kernel, Xd, Yd, _opts(10**9), None, p)
    assert big[6:8] == (_fused._NB, _fused._JB) and big[9] == 1, "memory=1GB: default tiles, prepacked"
    mid = _fused._prepare(kernel, Xd, Yd, _opts(40_000), None, p)
    assert mid[6] < _fused._NB and mid[9] == 1, "memory=40kB: smaller tiles, prepacked"

    results = {}
    for memory in [2000, 40_000, 10**9]:
        for threads in [1, 2]:
            got = _fused.kernel_sum(kernel, Xd, Yd, W, _opts(memory, threads))
            _assert_sums_close(got, ref, tol_pairs, W, f"{case_id} memory={memory} threads={threads}")
            results[memory, threads] = got
    # the paths agree with each other to rounding (they only regroup the sums)
    for key, got in results.items():
        _assert_sums_close(got, results[10**9, 1], tol_pairs, W, f"{case_id} {key} vs memory=1GB threads=1")
    # one thread or two: the same tiles in the same order per query, so agreement to rounding
    for memory in [2000, 40_000, 10**9]:
        _assert_sums_close(results[memory, 2], results[memory, 1], tol_pairs / 100, W, f"{case_id} threads, {memory}")


def test_tiles_shrink_to_the_budget():
    for d, p, itemsize in [(1, 1, 4), (9, 3, 8), (64, 1, 8)]:
        for memory in [500, 2000, 40_000, 10**6, 10**9]:
            for threads in [1, 2, 16]:
                nb, jb = _fused._tiles(d, p, itemsize, memory, threads)
                low = _fused._ext.TILE_MULTIPLE
                assert nb % low == 0 and nb >= low and jb % 6 == 0 and jb >= 6
                cost = itemsize * (nb * (d + p + 4) + jb * (d + 1) + jb * nb)
                assert cost <= memory / threads or (nb, jb) == (low, 6)


# --------------------------------------------------------------------------------------------
# 3. point-parallel path: few query blocks, many points, two threads
# --------------------------------------------------------------------------------------------
def _point_parallel(prep, n, m):
    nb, jb, threads = prep[6], prep[7], prep[8]
    nqb = -(-m // jb)
    return threads > 1 and nqb < 2 * threads and n >= 4 * nb * threads


@pytest.mark.parametrize("dtype", DTYPES, ids=DT_IDS)
@pytest.mark.kernel_cases("gauss", "matern15", "sum_g_l_lin")
def test_point_parallel_sum(kernel_case, dtype):
    kernel, spec, case_id = kernel_case.kernel, kernel_case.ref, kernel_case.id
    n, d, p = 5000, 3, 2
    for m in [1, 3]:
        X, Y, W = _data(n, m, d, p, seed=31 + m)
        Xd, Yd = X.astype(dtype), Y.astype(dtype)
        ref = k_matrix(spec, X, Y).T @ W
        tol_pairs = _tol_matrix(spec, X, Y, dtype, gram=has_dot(spec))
        want = _numpy.kernel_sum(kernel, X, Y, W, _opts())
        for memory in [2000, 10**9]:
            opts = _opts(memory, threads=2)
            assert _point_parallel(_fused._prepare(kernel, Xd, Yd, opts, None, p), n, m)
            got = _fused.kernel_sum(kernel, Xd, Yd, W, opts)
            _assert_sums_close(got, ref, tol_pairs, W, f"{case_id} m={m} memory={memory}")
            _assert_sums_close(got, want, tol_pairs, W, f"{case_id} m={m} memory={memory} vs numpy backend")
            one = _fused.kernel_sum(kernel, Xd, Yd, W, _opts(memory, threads=1))
            _assert_sums_close(got, one, tol_pairs, W, f"{case_id} m={m} memory={memory} threads 1 vs 2")


@pytest.mark.parametrize("threads", [3, 5])
def test_point_parallel_uneven_ranges(threads):
    """More threads than cores, n = 4 nb threads + 1: the last point range holds a single point."""
    n, m, d, p = 4 * _fused._NB * threads + 1, 2, 3, 2
    kernel, spec = kk.Matern(nu=2.5, bandwidth=0.8), ("matern", 2.5, 0.8)
    X, Y, W = _data(n, m, d, p, seed=threads)
    W[-1] = 1e3  # the lone last point matters
    opts = _opts(10**9, threads)
    assert _point_parallel(_fused._prepare(kernel, X, Y, opts, None, p), n, m)
    K = k_matrix(spec, X, Y)
    _assert_sums_close(_fused.kernel_sum(kernel, X, Y, W, opts), K.T @ W,
                       _tol_matrix(spec, X, Y, np.float64, False), W, f"threads={threads}")
    LW = _log_weights(n, p, seed=threads)
    LW[:-1, 0] = -np.inf  # column 0: only the last point has weight
    ref = kernel_logsumexp(spec, X, Y, LW)
    _check_lse(_fused.kernel_logsumexp(kernel, X, Y, LW, opts), ref,
               _lse_tol(spec, X, Y, LW, ref, np.float64, False), f"threads={threads}")
    Y2 = X[[-1, 0]]  # queries at the last and the first point: each is its own nearest
    vals, idx = _fused.kernel_topk(kernel, X, Y2, 3, opts)
    _, ref_idx = topk(k_matrix(spec, X, Y2), 3)
    np.testing.assert_array_equal(idx, ref_idx)
    assert idx[0, 0] == n - 1 and idx[1, 0] == 0


# --------------------------------------------------------------------------------------------
# 4. log-sum-exp
# --------------------------------------------------------------------------------------------
def _lse_tol(spec, X, Y, LW, ref, dtype, gram):
    """|log-sum error| <= max over terms of the log-value errors: relative + distance sensitivity."""
    leaf = leaves(spec)[0][0]
    r2 = sqdist(X, Y)
    delta = _r2_perturbation(spec, X, Y, dtype, gram)
    a = radial_log(leaf, np.maximum(r2 - delta, 0.0))
    mid = radial_log(leaf, r2)
    b = radial_log(leaf, r2 + delta)
    sens = np.maximum(np.abs(a - b), np.abs(a - mid) + np.abs(mid - b))  # (n, m), as in _leaf_tol
    finite = np.isfinite(LW)
    out = np.empty_like(ref)
    for q in range(LW.shape[1]):
        rows = finite[:, q]
        s = sens[rows].max(axis=0) if rows.any() else np.zeros(ref.shape[0])
        big = np.abs(LW[rows, q]).max() if rows.any() else 0.0
        size = 1 + np.abs(np.where(np.isfinite(ref[:, q]), ref[:, q], 0)) + big
        out[:, q] = SAFETY * (tol("logsumexp", dtype) * size + s)
    return out


def _log_weights(n, p, seed):
    rng = np.random.default_rng(seed)
    LW = np.log(rng.uniform(0.05, 2.0, size=(n, p))).astype(np.float32).astype(np.float64)
    LW[rng.random((n, p)) < 0.2] = -np.inf  # zero weights
    if p > 1:
        LW[:, -1] = -np.inf  # a column of zero weights: log 0 = -inf in every output
    return LW


def _check_lse(got, ref, bound, what):
    inf = np.isneginf(ref)
    assert np.array_equal(np.isneginf(got), inf), f"{what}: -inf pattern differs"
    err = np.abs(got[~inf] - ref[~inf])
    assert np.all(err <= bound[~inf]), f"{what}: max err {err.max():.3e}, tol {bound[~inf].min():.3e}"


@pytest.mark.parametrize("dtype", DTYPES, ids=DT_IDS)
@pytest.mark.kernel_cases(where=fused_lse)
def test_logsumexp_matches_log_domain_reference(kernel_case, dtype):
    kernel, spec, case_id = kernel_case.kernel, kernel_case.ref, kernel_case.id
    for cfg in [(1, 1, 1, 1), (17, 2, 3, 3), (97, 17, 9, 2), (257, 97, 3, 3), (2, 257, 1, 2)]:
        n, m, d, p = cfg
        X, Y, _ = _data(n, m, d, p, seed=41 + n)
        LW = _log_weights(n, p, seed=n + m)
        ref = kernel_logsumexp(spec, X, Y, LW)
        for mode in ["direct", "gram"]:
            for memory in [2000, 10**9]:
                got = _fused.kernel_logsumexp(kernel, X.astype(dtype), Y.astype(dtype), LW,
                                              _opts(memory), mode=mode)
                assert got.shape == (m, p)
                bound = _lse_tol(spec, X, Y, LW, ref, dtype, gram=mode == "gram")
                _check_lse(got, ref, bound, f"{case_id} {cfg} {mode} memory={memory}")
                if p > 1:
                    assert np.all(got[:, -1] == -np.inf)


@pytest.mark.parametrize("dtype", DTYPES, ids=DT_IDS)
@pytest.mark.parametrize("mode", [None, "direct", "gram"])
def test_logsumexp_where_every_kernel_value_underflows(dtype, mode):
    rng = np.random.default_rng(11)
    n, m, d = 97, 13, 64
    X = rng.normal(size=(n, d)).astype(np.float32).astype(np.float64)
    Y = rng.normal(size=(m, d)).astype(np.float32).astype(np.float64)
    bw = 0.05  # r^2 / (2 bw^2) ~ 25,000
    spec = ("gauss", bw)
    LW = np.log(rng.uniform(0.1, 1.0, size=(n, 2)))
    LW[::3, 0] = -np.inf
    assert np.all(np.exp(log_k_matrix(spec, X, Y)) == 0.0)
    sums = _fused.kernel_sum(kk.Gaussian(bw), X.astype(dtype), Y.astype(dtype), np.exp(LW), _opts())
    assert np.all(sums == 0.0)  # the linear domain has nothing left
    ref = kernel_logsumexp(spec, X, Y, LW)
    got = _fused.kernel_logsumexp(kk.Gaussian(bw), X.astype(dtype), Y.astype(dtype), LW, _opts(4096), mode=mode)
    assert np.all(np.isfinite(got))
    np.testing.assert_allclose(got, ref, rtol=tol("logsumexp", dtype))
    # the scale of a scaled kernel enters as log(scale)
    got3 = _fused.kernel_logsumexp(3.0 * kk.Gaussian(bw), X.astype(dtype), Y.astype(dtype), LW, _opts(), mode=mode)
    np.testing.assert_allclose(got3, ref + math.log(3.0), rtol=tol("logsumexp", dtype))


@pytest.mark.parametrize("dtype", DTYPES, ids=DT_IDS)
@pytest.mark.kernel_cases("gauss", "scaled_matern15")
def test_logsumexp_point_parallel(kernel_case, dtype):
    kernel, spec, case_id = kernel_case.kernel, kernel_case.ref, kernel_case.id
    n, d, p = 5000, 3, 3
    for m in [1, 3]:
        X, Y, _ = _data(n, m, d, p, seed=51 + m)
        LW = _log_weights(n, p, seed=m)
        LW[: n // 2, 1] = -np.inf  # the first thread's half has no weight in column 1
        ref = kernel_logsumexp(spec, X, Y, LW)
        for memory in [2000, 10**9]:
            opts = _opts(memory, threads=2)
            assert _point_parallel(_fused._prepare(kernel, X.astype(dtype), Y.astype(dtype), opts, None, p), n, m)
            got = _fused.kernel_logsumexp(kernel, X.astype(dtype), Y.astype(dtype), LW, opts)
            _check_lse(got, ref, _lse_tol(spec, X, Y, LW, ref, dtype, gram=False), f"{case_id} m={m} {memory}")
            assert np.all(got[:, 2] == -np.inf)


def test_logsumexp_public_api_and_support():
    X, Y, _ = _data(31, 7, 2, 1, seed=3)
    LW = _log_weights(31, 1, seed=4)[:, 0]
    got = kk.kernel_logsumexp(kk.Matern(nu=2.5, bandwidth=0.7), X, Y, LW, backend="fused")
    want = kk.kernel_logsumexp(kk.Matern(nu=2.5, bandwidth=0.7), X, Y, LW, backend="numpy")
    assert got.shape == (7,)
    np.testing.assert_allclose(got, want, rtol=tol("logsumexp", np.float64))
    # sums of kernels are positive but have no single log profile: not fused, auto falls back
    k2 = kk.Gaussian(1.0) + kk.Laplace(1.0)
    assert not _fused.supports(k2, "logsumexp")
    with pytest.raises(ValueError, match="'backend'"):
        kk.kernel_logsumexp(k2, X, Y, LW, backend="fused")
    ref = kernel_logsumexp(("sum", (("gauss", 1.0), ("laplace", 1.0))), X, Y, LW)
    got = kk.kernel_logsumexp(k2, X, Y, LW, backend="auto")
    np.testing.assert_allclose(got, ref, rtol=tol("logsumexp", np.float64))


# --------------------------------------------------------------------------------------------
# 5. top-k
# --------------------------------------------------------------------------------------------
def _check_topk_float(vals, idx, K, tol_pairs, k, what, exact_indices):
    m = K.shape[1]
    assert vals.shape == (m, k) and idx.shape == (m, k) and idx.dtype == np.int64
    # sorted: values non-increasing, ties by increasing index; no index twice
    assert np.all(np.diff(vals, axis=1) <= 0), what
    tie = np.diff(vals, axis=1) == 0
    assert np.all(np.diff(idx, axis=1)[tie] > 0), f"{what}: ties not by the smaller index"
    assert all(len(set(row)) == k for row in idx.tolist()), what
    ref_vals, ref_idx = topk(K, k)
    Kt, Tt = K.T, tol_pairs.T
    # returned values are the kernel values of the returned indices
    assert np.all(np.abs(vals - np.take_along_axis(Kt, idx, axis=1)) <= SAFETY * np.take_along_axis(Tt, idx, axis=1))
    # and the k-th best value matches the brute force (near-ties may swap in float32)
    assert np.all(np.abs(np.take_along_axis(Kt, idx, axis=1) - ref_vals) <= 2 * SAFETY * Tt.max(axis=1)[:, None])
    if exact_indices:
        np.testing.assert_array_equal(idx, ref_idx, err_msg=what)


def _topk_falls_back(kernel, X, Y, k, opts, mode):
    """The driver's condition for handing a top-k to the NumPy backend (heaps do not fit)."""
    jb = _fused._prepare(kernel, X, Y, opts, mode, 0, 16 * k)[7]
    return opts.resolved_threads() * jb * 16 * k > opts.memory


@pytest.mark.parametrize("dtype", DTYPES, ids=DT_IDS)
@pytest.mark.kernel_cases("gauss", "laplace", "matern25", "imq07", "rq2", "scaled_gauss", "sum_g_l_lin", "linear",
                          "poly3")
def test_topk_matches_brute_force(kernel_case, dtype):
    kernel, spec, case_id = kernel_case.kernel, kernel_case.ref, kernel_case.id
    for (n, m, d) in [(1, 3, 2), (17, 5, 3), (97, 11, 9), (257, 13, 1)]:
        X, Y, _ = _data(n, m, d, 1, seed=61 + n)
        K = k_matrix(spec, X, Y)
        for mode in _modes(spec):
            tol_pairs = _tol_matrix(spec, X, Y, dtype, gram=mode == "gram")
            for k in sorted({1, min(5, n), n}):
                for memory in [4000, 10**9]:
                    opts = _opts(memory)
                    if _topk_falls_back(kernel, X.astype(dtype), Y.astype(dtype), k, opts, mode):
                        continue  # the driver hands this one to the NumPy backend
                    vals, idx = _fused.kernel_topk(kernel, X.astype(dtype), Y.astype(dtype), k, opts, mode=mode)
                    _check_topk_float(vals, idx, K, tol_pairs, k, f"{case_id} n={n} {mode} k={k} memory={memory}",
                                      exact_indices=dtype == np.float64)


def _tied_data(n, m, d, groups, seed):
    """X made of `groups` distinct rows repeated in random order: exact ties in every query."""
    rng = np.random.default_rng(seed)
    base = (rng.normal(size=(groups, d)) * 1.5).astype(np.float32).astype(np.float64)
    X = base[rng.integers(0, groups, size=n)]
    Y = (rng.normal(size=(m, d)) * 1.5).astype(np.float32).astype(np.float64)
    return X, Y


@pytest.mark.parametrize("dtype", DTYPES, ids=DT_IDS)
@pytest.mark.parametrize("mode", ["direct", "gram"])
def test_topk_exact_ties_smaller_index_first(dtype, mode):
    kernel, spec = kk.Laplace(1.0), ("laplace", 1.0)
    for (n, m, groups) in [(97, 7, 4), (257, 5, 9), (61, 3, 1)]:
        X, Y = _tied_data(n, m, 3, groups, seed=n)
        Xd, Yd = X.astype(dtype), Y.astype(dtype)
        # the fused backend's own values tie exactly for identical rows
        K = k_matrix(spec, X, Y)
        assert len(np.unique(K[:, 0])) == len(np.unique(X, axis=0))
        for k in sorted({1, 2, 7, n // 2, n - 1, n}):
            for memory in [4000, 10**9]:
                opts = _opts(memory)
                if _topk_falls_back(kernel, Xd, Yd, k, opts, mode):
                    continue
                vals, idx = _fused.kernel_topk(kernel, Xd, Yd, k, opts, mode=mode)
                _, ref_idx = topk(K, k)
                np.testing.assert_array_equal(idx, ref_idx, err_msg=f"n={n} groups={groups} k={k} memory={memory}")
                # tied entries carry bit-identical values
                same = X[idx[:, :-1]] == X[idx[:, 1:]]
                assert np.all(np.diff(vals, axis=1)[same.all(-1)] == 0)


@pytest.mark.parametrize("dtype", DTYPES, ids=DT_IDS)
def test_topk_point_parallel(dtype):
    n, d = 5000, 3
    for kernel, spec in [(kk.Gaussian(0.7), ("gauss", 0.7)), (kk.Linear(0.5), ("linear", 0.5))]:
        for m in [1, 3]:
            # random data
            X, Y, _ = _data(n, m, d, 1, seed=71 + m)
            K = k_matrix(spec, X, Y)
            tol_pairs = _tol_matrix(spec, X, Y, dtype, gram=has_dot(spec))
            for k in [1, 9, n]:
                opts = _opts(10**9, threads=2)
                prep = _fused._prepare(kernel, X.astype(dtype), Y.astype(dtype), opts, None, 0, 16 * k)
                assert _point_parallel(prep, n, m)
                vals, idx = _fused.kernel_topk(kernel, X.astype(dtype), Y.astype(dtype), k, opts)
                _check_topk_float(vals, idx, K, tol_pairs, k, f"{spec} m={m} k={k}", exact_indices=dtype == np.float64)
                want_v, want_i = _numpy.kernel_topk(kernel, X, Y, k, opts)
                if dtype == np.float64:
                    np.testing.assert_array_equal(idx, want_i)
                    rtol = tol("topk", np.float64)
                    np.testing.assert_allclose(vals, want_v, rtol=rtol, atol=rtol * np.abs(want_v).max())
        # ties across the two threads' point ranges: the smaller index must win the merge
        X, Y = _tied_data(n, 1, d, 3, seed=5)
        K = k_matrix(spec, X, Y)
        for k in [1, 7, n // 3, n]:
            opts = _opts(10**9, threads=2)
            vals, idx = _fused.kernel_topk(kernel, X.astype(dtype), Y.astype(dtype), k, opts)
            _, ref_idx = topk(K, k)
            np.testing.assert_array_equal(idx, ref_idx, err_msg=f"{spec} tied k={k}")


@pytest.mark.parametrize("dtype", DTYPES, ids=DT_IDS)
def test_topk_all_values_underflow_to_zero(dtype):
    """Every kernel value is exactly 0: an n-way tie, so the top-k are the first k indices."""
    rng = np.random.default_rng(17)
    n = 3000
    X = (rng.normal(size=(n, 2)) * 100).astype(dtype)
    Y = np.full((2, 2), 1e4, dtype=dtype)
    kernel = kk.Gaussian(0.5)
    for threads, memory in [(1, 4000), (1, 10**9), (2, 10**9)]:
        opts = _opts(memory, threads)
        for k in [1, 5, 100]:
            vals, idx = _fused.kernel_topk(kernel, X, Y, k, opts)
            assert np.all(vals == 0.0)
            np.testing.assert_array_equal(idx, np.broadcast_to(np.arange(k), (2, k)),
                                          err_msg=f"threads={threads} memory={memory} k={k}")


def test_topk_public_api():
    X, Y, _ = _data(50, 4, 3, 1, seed=8)
    for kernel in [kk.Gaussian(0.9), kk.Polynomial(degree=3, gamma=0.5, c=1.0)]:
        v1, i1 = kk.kernel_topk(kernel, X, Y, 6, backend="fused")
        v2, i2 = kk.kernel_topk(kernel, X, Y, 6, backend="numpy")
        np.testing.assert_array_equal(i1, i2)
        np.testing.assert_allclose(v1, v2, rtol=tol("topk", np.float64))


# --------------------------------------------------------------------------------------------
# 6. the vectorised exp, down to gradual underflow
# --------------------------------------------------------------------------------------------
# target exponents: normal results, subnormal results, and results that round to 0
EXP_TARGETS = {
    np.float64: [-0.3, -1.0, -37.0, -300.0, -700.0, -708.0, -709.5, -710.0, -720.0, -730.0, -740.0, -744.0,
                 -744.4, -746.5, -750.0, -1000.0],
    np.float32: [-0.3, -1.0, -20.0, -50.0, -87.0, -88.0, -90.0, -95.0, -98.0, -100.0, -101.0, -103.0, -104.5,
                 -110.0, -200.0],
}


def _exactly_representable_exponents(targets):
    """t = k / 64 near sqrt(-2 e): then r^2 = t^2 and e = -t^2 / 2 are exact in float32 and float64."""
    ts, es = [], []
    for e in targets:
        t = round(math.sqrt(-2 * e) * 64) / 64
        assert float(np.float32(t)) ** 2 == float(np.float32(t * t)) == t * t
        ts.append(t)
        es.append(-t * t / 2)
    return np.array(ts), es


@pytest.mark.parametrize("dtype", DTYPES, ids=DT_IDS)
@pytest.mark.parametrize("mode", ["direct", "gram"])
def test_vectorised_exp_with_gradual_underflow(dtype, mode):
    fi = np.finfo(dtype)
    ts, es = _exactly_representable_exponents(EXP_TARGETS[dtype])
    X = np.zeros((1, 1), dtype=dtype)
    Y = ts.astype(dtype)[:, None]  # Gaussian(1): k = exp(-t^2 / 2), one query per exponent
    got = _fused.kernel_sum(kk.Gaussian(1.0), X, Y, np.ones((1, 1)), _opts(), mode=mode)[:, 0]
    cutoff = -746.0 if dtype == np.float64 else -104.0
    for e, g in zip(es, got):
        exact = math.exp(e)
        rounded = float(dtype(exact))  # the correctly rounded value in the input precision
        g_np = float(np.exp(dtype(e)))  # numpy's exp in the same precision
        if e < cutoff:
            assert g == 0.0, (e, g)
        elif rounded >= fi.tiny:  # normal result
            assert abs(g - exact) <= (1e-12 if dtype == np.float64 else 1e-6) * exact, (e, g, exact)
        else:  # subnormal result: gradual underflow, not flushed to zero
            ulp = float(fi.smallest_subnormal)
            assert abs(g - rounded) <= ulp, (e, g, rounded)
            assert abs(g - g_np) <= ulp, (e, g, g_np)
            if dtype == np.float32 and rounded > 1e-44:
                assert abs(g - rounded) <= 1e-6 * rounded, (e, g, rounded)
        if e >= cutoff and rounded > 0:
            assert g > 0.0, (e, g)


@pytest.mark.parametrize("dtype", DTYPES, ids=DT_IDS)
def test_vectorised_exp_over_the_whole_range(dtype):
    """Many exponents at once (every lane of the vector exp), vs float64 math.exp."""
    rng = np.random.default_rng(13)
    lo = -745.0 if dtype == np.float64 else -103.0
    ts = np.round(np.sqrt(-2 * rng.uniform(lo, 0.0, size=600)) * 64) / 64
    Y = ts.astype(dtype)[:, None]
    got = _fused.kernel_sum(kk.Gaussian(1.0), np.zeros((1, 1), dtype=dtype), Y, np.ones((1, 1)), _opts())[:, 0]
    exact = np.array([math.exp(-t * t / 2) for t in ts])
    rounded = exact.astype(dtype).astype(np.float64)
    fi = np.finfo(dtype)
    normal = rounded >= fi.tiny
    rel = np.abs(got[normal] - exact[normal]) / exact[normal]
    assert rel.max() <= (1e-12 if dtype == np.float64 else 1e-6)
    assert np.all(np.abs(got[~normal] - rounded[~normal]) <= float(fi.smallest_subnormal))


def test_exp_helper_matches_float64_exp_and_rejects_its_bad_domain(dtype):
    """exp_nonpositive (the benchmark's exp) is the kernels' exp: vs np.exp in float64."""
    rng = np.random.default_rng(17)
    lo = -760.0 if dtype == np.float64 else -110.0
    x = np.concatenate([rng.uniform(lo, 0.0, 4001), [0.0, -np.inf]]).astype(dtype)
    got = _fused.exp_nonpositive(x)
    assert got.dtype == dtype and got.shape == x.shape
    exact = np.exp(x.astype(np.float64))
    fi = np.finfo(dtype)
    normal = exact >= fi.tiny
    rel = np.abs(got[normal] - exact[normal]) / exact[normal]
    rtol = 2e-14 if dtype == np.float64 else 5e-7
    assert rel.max() <= rtol
    # subnormals: one unit of the smallest subnormal, or the same relative error near the top
    err = np.abs(got[~normal] - exact[~normal].astype(dtype))
    assert np.all(err <= np.maximum(fi.smallest_subnormal, rtol * exact[~normal]))
    for bad in (0.5, np.nan):
        with pytest.raises(ValueError, match="'x' parameter of exp_nonpositive"):
            _fused.exp_nonpositive(np.array([-1.0, bad], dtype=dtype))


# --------------------------------------------------------------------------------------------
# 7. inputs untouched; Fortran-ordered and strided inputs
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", DTYPES, ids=DT_IDS)
def test_inputs_not_modified(dtype):
    X, Y, W = _data(131, 29, 5, 2, seed=9)
    X, Y, W = X.astype(dtype), Y.astype(dtype), W.astype(dtype)
    LW = np.log(np.abs(W))
    LW[::4, 0] = -np.inf
    copies = [a.copy() for a in (X, Y, W, LW)]
    for memory in [2000, 10**9]:
        for mode in ["direct", "gram"]:
            opts = _opts(memory)
            _fused.kernel_sum(kk.Matern(nu=1.5), X, Y, W, opts, mode=mode)
            _fused.kernel_logsumexp(kk.Gaussian(), X, Y, LW, opts, mode=mode)
            _fused.kernel_topk(kk.Gaussian(), X, Y, 4, opts, mode=mode)
        _fused.kernel_sum(kk.Linear(0.5) + kk.Gaussian(), X, Y, W, opts)
        kk.kernel_sum(kk.Gaussian(), X, Y, W, backend="fused", memory=memory)
        kk.kernel_logsumexp(kk.Gaussian(), X, Y, LW, backend="fused", memory=memory)
        kk.kernel_topk(kk.Gaussian(), X, Y, 4, backend="fused", memory=memory)
    for a, b in zip((X, Y, W, LW), copies):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("dtype", DTYPES, ids=DT_IDS)
def test_fortran_and_strided_inputs(dtype):
    X, Y, W = _data(2 * 83, 2 * 19, 8, 6, seed=10)
    X, Y, W = X.astype(dtype), Y.astype(dtype), W.astype(dtype)
    views = {
        "contiguous": (np.ascontiguousarray(X[::2, ::2]), np.ascontiguousarray(Y[1::2, ::2]),
                       np.ascontiguousarray(W[::2, ::3])),
        "strided": (X[::2, ::2], Y[1::2, ::2], W[::2, ::3]),
        "fortran": (np.asfortranarray(X[::2, ::2]), np.asfortranarray(Y[1::2, ::2]),
                    np.asfortranarray(W[::2, ::3])),
    }
    assert not views["strided"][0].flags.c_contiguous and views["fortran"][1].flags.f_contiguous
    for kernel in [kk.Gaussian(0.9), kk.IMQ(bandwidth=1.0, beta=0.7) + kk.Linear(0.5)]:
        base = kk.kernel_sum(kernel, *views["contiguous"], backend="fused")
        assert base.dtype == dtype and base.shape == (19, 2)
        base1 = kk.kernel_sum(kernel, *views["contiguous"][:2], np.ascontiguousarray(views["contiguous"][2][:, 1]),
                              backend="fused")
        assert base1.shape == (19,)
        for name in ["strided", "fortran"]:
            np.testing.assert_array_equal(kk.kernel_sum(kernel, *views[name], backend="fused"), base, err_msg=name)
            np.testing.assert_array_equal(kk.kernel_sum(kernel, *views[name][:2], views[name][2][:, 1],
                                                        backend="fused"), base1, err_msg=name)
        # the driver itself copes with non-contiguous arrays too
        Xs, Ys, Ws = views["strided"]
        np.testing.assert_array_equal(_fused.kernel_sum(kernel, Xs, Ys, Ws.astype(np.float64), _opts()),
                                      _fused.kernel_sum(kernel, *views["contiguous"][:2],
                                                        views["contiguous"][2].astype(np.float64), _opts()))
    Xs, Ys, _ = views["fortran"]
    v1, i1 = kk.kernel_topk(kk.Gaussian(), Xs, Ys, 5, backend="fused")
    v2, i2 = kk.kernel_topk(kk.Gaussian(), *views["contiguous"][:2], 5, backend="fused")
    np.testing.assert_array_equal(i1, i2)
    np.testing.assert_array_equal(v1, v2)


# --------------------------------------------------------------------------------------------
# 8. backend selection and fallback
# --------------------------------------------------------------------------------------------
@pytest.mark.kernel_cases(where=fused_sum)
def test_auto_picks_fused_for_supported_kernels(kernel_case, monkeypatch):
    kernel, spec = kernel_case.kernel, kernel_case.ref
    calls = []
    real = _fused.kernel_sum

    def spy(*args, **kwargs):
        calls.append(args[0])
        return real(*args, **kwargs)

    monkeypatch.setattr(_fused, "kernel_sum", spy)
    X, Y, W = _data(40, 6, 3, 1, seed=12)
    assert engine._backend(get_options(backend="auto"), kernel, "sum") is _fused
    got = kk.kernel_sum(kernel, X, Y, W[:, 0], backend="auto")
    assert calls == [kernel]
    rtol = tol("sum", np.float64)
    scale = (np.abs(k_matrix(spec, X, Y)).T @ np.abs(W[:, 0])).max()
    np.testing.assert_allclose(got, kernel_sum(spec, X, Y, W[:, 0]), rtol=rtol, atol=rtol * scale)


def test_auto_picks_fused_for_logsumexp_and_topk():
    for kernel in [kk.Gaussian(), kk.Laplace(2.0)]:
        assert engine._backend(get_options(backend="auto"), kernel, "logsumexp") is _fused
        assert engine._backend(get_options(backend="auto"), kernel, "topk") is _fused


@pytest.mark.kernel_cases(where=lambda case: not fused_sum(case))
def test_unsupported_kernels_fall_back_under_auto(kernel_case):
    kernel, spec = kernel_case.kernel, kernel_case.ref
    X, Y, W = _data(13, 5, 3, 2, seed=14)
    K = double_loop_matrix(spec, X, Y)
    for op in ["sum", "logsumexp", "topk"]:
        assert not _fused.supports(kernel, op)
        assert engine._backend(get_options(backend="auto"), kernel, op) is _numpy
    got = kk.kernel_sum(kernel, X, Y, W, backend="auto")
    rtol = tol("sum", np.float64)
    np.testing.assert_allclose(got, K.T @ W, rtol=rtol, atol=rtol * (np.abs(K).T @ np.abs(W)).max())
    if is_positive(spec):
        lse = kk.kernel_logsumexp(kernel, X, Y, np.log(np.abs(W)), backend="auto")
        np.testing.assert_allclose(lse, np.log(K.T @ np.abs(W)), rtol=tol("logsumexp", np.float64))
    vals, idx = kk.kernel_topk(kernel, X, Y, 4, backend="auto")
    ref_v, ref_i = topk(K, 4)
    np.testing.assert_array_equal(idx, ref_i)
    np.testing.assert_allclose(vals, ref_v, rtol=tol("topk", np.float64))
    with pytest.raises(ValueError, match="'backend'"):
        kk.kernel_sum(kernel, X, Y, W, backend="fused")
    with pytest.raises(ValueError, match="'backend'"):
        kk.kernel_logsumexp(kernel, X, Y, np.log(np.abs(W)), backend="fused")
    with pytest.raises(ValueError, match="'backend'"):
        kk.kernel_topk(kernel, X, Y, 4, backend="fused")
