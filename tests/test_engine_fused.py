"""The fused compiled backend against slow, obviously correct references.

Every path of ``kernelkit.engine._fused`` / ``_fused_ext.c`` is driven here
and compared with references written in this file from the formulas in the
kernels' docstrings:

* a double-loop float64 reference (``math.exp`` / ``math.sqrt`` per pair) on
  tiny inputs, and a vectorised float64 NumPy reference (exact coordinate
  differences, checked against the double loop) on the larger ones;
* both distance modes (``direct`` and ``gram``), tiny memory budgets (16 x 6
  tiles packed block by block) and large ones (whole-input prepacking), one
  and two threads, and the point-parallel path (few query blocks, many points);
* log-sum-exp where every kernel value underflows float64, top-k with exact
  ties, and the vectorised exp down to gradual underflow.

Tolerances: ``RTOL[dtype]`` relative to ``sum_i |W_i| |k(x_i, y)|`` (as in
test_engine.py). In gram mode the squared distance
``|x - c|^2 + |y - c|^2 - 2 (x - c).(y - c)`` carries an absolute error of
order ``eps (|x - c|^2 + |y - c|^2)``; for kernels that are not smooth at
r = 0 (Laplace) that is amplified near coincident points, so the tolerance
adds the change of each kernel value under such a perturbation of r^2.
Dot-product kernels are measured against their envelope
``(gamma |x| |y| + c)^degree``.

The whole module is skipped when the extension is not built.
"""

import math

import numpy as np
import pytest
import scipy.special

import kernelkit as kk
from kernelkit import engine
from kernelkit._options import get_options
from kernelkit.engine import _fused, _numpy, fused_available

pytestmark = pytest.mark.skipif(not fused_available(), reason="the fused compiled backend is not built")

# relative tolerances of fast paths vs the float64 reference, per dtype (as in conftest.py)
RTOL = {np.float32: 1e-5, np.float64: 1e-12}
DTYPES = [np.float32, np.float64]
DT_IDS = ["float32", "float64"]
SAFETY = 4.0  # slack on the tolerance (float32 accumulation over a tile row, parameter rounding)


# --------------------------------------------------------------------------------------------
# kernels as plain descriptions, and references computed from the docstring formulas
# --------------------------------------------------------------------------------------------
#   ("gauss", sigma)            exp(-r^2 / (2 sigma^2))
#   ("laplace", ell)            exp(-r / ell)
#   ("matern", nu, ell)         2^(1-nu)/Gamma(nu) s^nu K_nu(s), s = sqrt(2 nu) r / ell
#                               (closed forms for nu = 1/2, 3/2, 5/2)
#   ("imq", c, beta)            (1 + r^2 / c^2)^(-beta)
#   ("rq", ell, alpha)          (1 + r^2 / (2 alpha ell^2))^(-alpha)
#   ("linear", c)               x . y + c
#   ("poly", degree, gamma, c)  (gamma x . y + c)^degree
#   ("scaled", s, spec), ("sum", (spec, ...)), ("prod", (spec, ...))

CASES = [
    ("gauss", kk.Gaussian(0.8), ("gauss", 0.8)),
    ("laplace", kk.Laplace(1.3), ("laplace", 1.3)),
    ("matern05", kk.Matern(nu=0.5, bandwidth=0.9), ("matern", 0.5, 0.9)),
    ("matern15", kk.Matern(nu=1.5, bandwidth=0.9), ("matern", 1.5, 0.9)),
    ("matern25", kk.Matern(nu=2.5, bandwidth=1.1), ("matern", 2.5, 1.1)),
    ("imq05", kk.IMQ(bandwidth=1.2, beta=0.5), ("imq", 1.2, 0.5)),
    ("imq10", kk.IMQ(bandwidth=0.7, beta=1.0), ("imq", 0.7, 1.0)),
    ("imq07", kk.IMQ(bandwidth=0.9, beta=0.7), ("imq", 0.9, 0.7)),
    ("rq2", kk.RationalQuadratic(bandwidth=0.7, alpha=2.0), ("rq", 0.7, 2.0)),
    ("linear", kk.Linear(0.5), ("linear", 0.5)),
    ("poly3", kk.Polynomial(degree=3, gamma=0.5, c=1.0), ("poly", 3, 0.5, 1.0)),
    ("scaled_gauss", 2.5 * kk.Gaussian(1.1), ("scaled", 2.5, ("gauss", 1.1))),
    ("scaled_matern15", 0.3 * kk.Matern(nu=1.5, bandwidth=0.6), ("scaled", 0.3, ("matern", 1.5, 0.6))),
    ("scaled_linear", 1.5 * kk.Linear(0.0), ("scaled", 1.5, ("linear", 0.0))),
    ("sum_g_l_lin", 2 * kk.Gaussian(0.8) + kk.Laplace(1.3) + kk.Linear(0.5),
     ("sum", (("scaled", 2.0, ("gauss", 0.8)), ("laplace", 1.3), ("linear", 0.5)))),
    ("sum_radial", kk.IMQ(bandwidth=0.9, beta=0.7) + 0.5 * kk.Matern(nu=2.5, bandwidth=0.5)
     + kk.RationalQuadratic(bandwidth=1.0, alpha=0.5),
     ("sum", (("imq", 0.9, 0.7), ("scaled", 0.5, ("matern", 2.5, 0.5)), ("rq", 1.0, 0.5)))),
    ("sum_poly_imq", kk.Polynomial(degree=3, gamma=0.5, c=1.0) + 3 * kk.IMQ(bandwidth=1.2, beta=0.5),
     ("sum", (("poly", 3, 0.5, 1.0), ("scaled", 3.0, ("imq", 1.2, 0.5))))),
]
CASE_IDS = [c[0] for c in CASES]
CASE_BY_ID = {c[0]: c for c in CASES}
# single radial component (possibly scaled): what the log-sum-exp path takes
LSE_CASES = [c for c in CASES if c[0] in ("gauss", "laplace", "matern05", "matern15", "matern25", "imq05",
                                             "imq10", "imq07", "rq2", "scaled_gauss", "scaled_matern15")]


def _has_dot(spec):
    kind = spec[0]
    if kind == "scaled":
        return _has_dot(spec[2])
    if kind in ("sum", "prod"):
        return any(_has_dot(s) for s in spec[1])
    return kind in ("linear", "poly")


def _matern_general(nu, s):
    if s == 0.0:
        return 1.0
    return 2 ** (1 - nu) / math.gamma(nu) * s ** nu * float(scipy.special.kv(nu, s))


def _k_scalar(spec, x, y):
    """k(x, y) for two points given as lists of Python floats, straight from the formulas."""
    kind = spec[0]
    if kind == "scaled":
        return spec[1] * _k_scalar(spec[2], x, y)
    if kind == "sum":
        return sum(_k_scalar(s, x, y) for s in spec[1])
    if kind == "prod":
        return math.prod(_k_scalar(s, x, y) for s in spec[1])
    if kind in ("linear", "poly"):
        dot = sum(a * b for a, b in zip(x, y))
        if kind == "linear":
            return dot + spec[1]
        _, degree, gamma, c = spec
        return (gamma * dot + c) ** degree
    r2 = sum((a - b) ** 2 for a, b in zip(x, y))
    r = math.sqrt(r2)
    if kind == "gauss":
        return math.exp(-r2 / (2 * spec[1] ** 2))
    if kind == "laplace":
        return math.exp(-r / spec[1])
    if kind == "matern":
        nu, ell = spec[1], spec[2]
        s = math.sqrt(2 * nu) * r / ell
        if nu == 0.5:
            return math.exp(-s)
        if nu == 1.5:
            return (1 + s) * math.exp(-s)
        if nu == 2.5:
            return (1 + s + s * s / 3) * math.exp(-s)
        return _matern_general(nu, s)
    if kind == "imq":
        return (1 + r2 / spec[1] ** 2) ** (-spec[2])
    if kind == "rq":
        ell, alpha = spec[1], spec[2]
        return (1 + r2 / (2 * alpha * ell ** 2)) ** (-alpha)
    raise AssertionError(spec)


def _double_loop_matrix(spec, X, Y):
    """K[i, j] = k(X[i], Y[j]) by a double loop over Python floats."""
    Xl = np.asarray(X, dtype=np.float64).tolist()
    Yl = np.asarray(Y, dtype=np.float64).tolist()
    return np.array([[_k_scalar(spec, x, y) for y in Yl] for x in Xl], dtype=np.float64).reshape(len(Xl), len(Yl))


def _sq(X, Y):
    """Exact-difference squared distances in float64, shape (n, m)."""
    X = np.asarray(X, dtype=np.float64)
    Y = np.asarray(Y, dtype=np.float64)
    return ((X[:, None, :] - Y[None, :, :]) ** 2).sum(-1)


def _log_profile(spec, r2):
    """log phi(r^2) for a radial leaf, vectorised in float64."""
    kind = spec[0]
    if kind == "gauss":
        return -r2 / (2 * spec[1] ** 2)
    if kind == "laplace":
        return -np.sqrt(r2) / spec[1]
    if kind == "matern":
        nu, ell = spec[1], spec[2]
        s = math.sqrt(2 * nu) * np.sqrt(r2) / ell
        if nu == 0.5:
            return -s
        if nu == 1.5:
            return np.log1p(s) - s
        if nu == 2.5:
            return np.log1p(s + s * s / 3) - s
        raise AssertionError(f"no vectorised oracle for Matern nu={nu}: the fused engine does not cover it")
    if kind == "imq":
        return -spec[2] * np.log1p(r2 / spec[1] ** 2)
    if kind == "rq":
        ell, alpha = spec[1], spec[2]
        return -alpha * np.log1p(r2 / (2 * alpha * ell ** 2))
    raise AssertionError(spec)


def _k_matrix(spec, X, Y):
    """Vectorised float64 reference K[i, j] (checked against the double loop below)."""
    kind = spec[0]
    X = np.asarray(X, dtype=np.float64)
    Y = np.asarray(Y, dtype=np.float64)
    if kind == "scaled":
        return spec[1] * _k_matrix(spec[2], X, Y)
    if kind == "sum":
        return sum(_k_matrix(s, X, Y) for s in spec[1])
    if kind == "prod":
        return np.prod([_k_matrix(s, X, Y) for s in spec[1]], axis=0)
    if kind == "linear":
        return X @ Y.T + spec[1]
    if kind == "poly":
        _, degree, gamma, c = spec
        return (gamma * (X @ Y.T) + c) ** degree
    return np.exp(_log_profile(spec, _sq(X, Y)))


def _log_k_matrix(spec, X, Y):
    """log K[i, j] for a (scaled) radial leaf, without ever leaving the log domain."""
    if spec[0] == "scaled":
        return math.log(spec[1]) + _log_k_matrix(spec[2], X, Y)
    return _log_profile(spec, _sq(X, Y))


def _r2_perturbation(spec, X, Y, dtype, gram):
    """Bound on the absolute error of the squared distances the backend forms."""
    X = np.asarray(X, dtype=np.float64)
    Y = np.asarray(Y, dtype=np.float64)
    d = X.shape[1]
    eps = float(np.finfo(dtype).eps)
    if not gram:  # exact differences: a relative error of a few eps
        return (d + 2) * eps * _sq(X, Y)
    # gram: centred on the mean of X, except when a dot-product component is present
    c = np.zeros(d) if _has_dot(spec) else X.mean(axis=0)
    nx = ((X - c) ** 2).sum(1)
    ny = ((Y - c) ** 2).sum(1)
    return (2 * d + 4) * eps * (nx[:, None] + ny[None, :])


def _tol_matrix(spec, X, Y, dtype, gram, weight=1.0):
    """Per-pair error allowance: RTOL * |k| (or the dot-product envelope) + distance sensitivity."""
    kind = spec[0]
    X = np.asarray(X, dtype=np.float64)
    Y = np.asarray(Y, dtype=np.float64)
    if kind == "scaled":
        return _tol_matrix(spec[2], X, Y, dtype, gram, weight * spec[1])
    if kind == "sum":
        # the perturbation bound must use the sum's centring: pass the whole spec down
        return sum(_leaf_tol(s, spec, X, Y, dtype, gram, weight * w) for s, w in _leaves(spec))
    return _leaf_tol(spec, spec, X, Y, dtype, gram, weight)


def _leaves(spec, w=1.0):
    if spec[0] == "scaled":
        return _leaves(spec[2], w * spec[1])
    if spec[0] == "sum":
        return [leaf for s in spec[1] for leaf in _leaves(s, w)]
    return [(spec, w)]


def _leaf_tol(leaf, whole, X, Y, dtype, gram, w):
    w = abs(w)
    if leaf[0] in ("linear", "poly"):
        nrm = np.sqrt((X ** 2).sum(1))[:, None] * np.sqrt((Y ** 2).sum(1))[None, :]
        if leaf[0] == "linear":
            env = nrm + leaf[1]
        else:
            _, degree, gamma, c = leaf
            env = (gamma * nrm + c) ** degree
        return RTOL[dtype] * w * env
    r2 = _sq(X, Y)
    delta = _r2_perturbation(whole, X, Y, dtype, gram)
    hi = np.exp(_log_profile(leaf, np.maximum(r2 - delta, 0.0)))  # phi decreases in r^2
    lo = np.exp(_log_profile(leaf, r2 + delta))
    return w * (RTOL[dtype] * np.exp(_log_profile(leaf, r2)) + (hi - lo))


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
    return ["gram"] if _has_dot(spec) else ["direct", "gram"]


# sizes (n, m, d, p): odd, prime, n = 1, m = 1, d around DIRECT_MAX_D
SMALL = [(1, 1, 1, 1), (1, 17, 3, 3), (2, 2, 9, 1), (17, 1, 1, 3), (2, 97, 3, 1), (17, 17, 9, 3), (97, 2, 1, 1)]
LARGE = [(257, 97, 3, 3), (97, 257, 9, 1), (257, 1, 1, 1), (1, 257, 9, 3), (257, 257, 1, 3), (257, 17, 9, 1)]

_CACHE = {}


def _reference(case_id, cfg, loop):
    """(X, Y, W, K) for a kernel case and a size; K by the double loop or the vectorised reference."""
    key = (case_id, cfg, loop)
    if key not in _CACHE:
        n, m, d, p = cfg
        X, Y, W = _data(n, m, d, p, seed=1000003 * n + 1009 * m + 31 * d + p)
        spec = CASE_BY_ID[case_id][2]
        K = _double_loop_matrix(spec, X, Y) if loop else _k_matrix(spec, X, Y)
        _CACHE[key] = (X, Y, W, K)
    return _CACHE[key]


# --------------------------------------------------------------------------------------------
# 1. every supported kernel, both distance modes, odd sizes
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("case_id", CASE_IDS)
def test_vectorised_reference_matches_double_loop(case_id):
    """The vectorised reference used on larger inputs is the double loop's twin."""
    spec = CASE_BY_ID[case_id][2]
    for cfg in SMALL:
        X, Y, _, K = _reference(case_id, cfg, loop=True)
        np.testing.assert_allclose(_k_matrix(spec, X, Y), K, rtol=1e-13, atol=1e-300)


@pytest.mark.parametrize("case_id", CASE_IDS)
def test_every_kernel_is_supported(case_id):
    kernel = CASE_BY_ID[case_id][1]
    assert _fused.supports(kernel, "sum") and _fused.supports(kernel, "topk")
    single_radial = case_id in {c[0] for c in LSE_CASES}
    assert _fused.supports(kernel, "logsumexp") == single_radial


@pytest.mark.parametrize("dtype", DTYPES, ids=DT_IDS)
@pytest.mark.parametrize("case_id", CASE_IDS)
def test_sum_matches_references(case_id, dtype):
    _, kernel, spec = CASE_BY_ID[case_id]
    opts = _opts()
    for loop, configs in [(True, SMALL), (False, LARGE)]:
        for cfg in configs:
            X, Y, W, K = _reference(case_id, cfg, loop)
            ref = K.T @ W
            for mode in _modes(spec):
                got = _fused.kernel_sum(kernel, X.astype(dtype), Y.astype(dtype), W, opts, mode=mode)
                assert got.shape == ref.shape and got.dtype == np.float64
                tol = _tol_matrix(spec, X, Y, dtype, gram=mode == "gram")
                _assert_sums_close(got, ref, tol, W, f"{case_id} {cfg} {mode} loop={loop}")


@pytest.mark.parametrize("case_id", ["linear", "poly3", "scaled_linear", "sum_g_l_lin", "sum_poly_imq"])
def test_direct_mode_refused_for_dot_product_kernels(case_id):
    kernel = CASE_BY_ID[case_id][1]
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
BLOCK_CASES = ["gauss", "matern25", "imq07", "sum_g_l_lin", "poly3"]


@pytest.mark.parametrize("dtype", DTYPES, ids=DT_IDS)
@pytest.mark.parametrize("case_id", BLOCK_CASES)
def test_memory_budgets_agree(case_id, dtype):
    _, kernel, spec = CASE_BY_ID[case_id]
    n, m, d, p = 257, 97, 3, 3
    X, Y, W = _data(n, m, d, p, seed=21)
    Xd, Yd = X.astype(dtype), Y.astype(dtype)
    ref = _k_matrix(spec, X, Y).T @ W
    gram = _has_dot(spec)
    tol = _tol_matrix(spec, X, Y, dtype, gram=gram)

    # the budgets really select the paths they are meant to
    small = _fused._prepare(kernel, Xd, Yd, _opts(2000), None, p)
    assert small[6:8] == (16, 6) and small[9] == 0, "memory=2000: smallest tiles, packed block by block"
    big = _fused._prepare(kernel, Xd, Yd, _opts(10**9), None, p)
    assert big[6:8] == (_fused._NB, _fused._JB) and big[9] == 1, "memory=1GB: default tiles, prepacked"
    mid = _fused._prepare(kernel, Xd, Yd, _opts(40_000), None, p)
    assert mid[6] < _fused._NB and mid[9] == 1, "memory=40kB: smaller tiles, prepacked"

    results = {}
    for memory in [2000, 40_000, 10**9]:
        for threads in [1, 2]:
            got = _fused.kernel_sum(kernel, Xd, Yd, W, _opts(memory, threads))
            _assert_sums_close(got, ref, tol, W, f"{case_id} memory={memory} threads={threads}")
            results[memory, threads] = got
    # the paths agree with each other to rounding (they only regroup the sums)
    for key, got in results.items():
        _assert_sums_close(got, results[10**9, 1], tol, W, f"{case_id} {key} vs memory=1GB threads=1")
    # one thread or two: the same tiles in the same order per query, so agreement to rounding
    for memory in [2000, 40_000, 10**9]:
        _assert_sums_close(results[memory, 2], results[memory, 1], tol / 100, W, f"{case_id} threads, {memory}")


def test_tiles_shrink_to_the_budget():
    for d, p, itemsize in [(1, 1, 4), (9, 3, 8), (64, 1, 8)]:
        for memory in [500, 2000, 40_000, 10**6, 10**9]:
            for threads in [1, 2, 16]:
                nb, jb = _fused._tiles(d, p, itemsize, memory, threads)
                assert nb % 16 == 0 and nb >= 16 and jb % 6 == 0 and jb >= 6
                cost = itemsize * (nb * (d + p + 4) + jb * (d + 1) + jb * nb)
                assert cost <= memory / threads or (nb, jb) == (16, 6)


# --------------------------------------------------------------------------------------------
# 3. point-parallel path: few query blocks, many points, two threads
# --------------------------------------------------------------------------------------------
def _point_parallel(prep, n, m):
    nb, jb, threads = prep[6], prep[7], prep[8]
    nqb = -(-m // jb)
    return threads > 1 and nqb < 2 * threads and n >= 4 * nb * threads


@pytest.mark.parametrize("dtype", DTYPES, ids=DT_IDS)
@pytest.mark.parametrize("case_id", ["gauss", "matern15", "sum_g_l_lin"])
def test_point_parallel_sum(case_id, dtype):
    _, kernel, spec = CASE_BY_ID[case_id]
    n, d, p = 5000, 3, 2
    for m in [1, 3]:
        X, Y, W = _data(n, m, d, p, seed=31 + m)
        Xd, Yd = X.astype(dtype), Y.astype(dtype)
        ref = _k_matrix(spec, X, Y).T @ W
        tol = _tol_matrix(spec, X, Y, dtype, gram=_has_dot(spec))
        want = _numpy.kernel_sum(kernel, X, Y, W, _opts())
        for memory in [2000, 10**9]:
            opts = _opts(memory, threads=2)
            assert _point_parallel(_fused._prepare(kernel, Xd, Yd, opts, None, p), n, m)
            got = _fused.kernel_sum(kernel, Xd, Yd, W, opts)
            _assert_sums_close(got, ref, tol, W, f"{case_id} m={m} memory={memory}")
            _assert_sums_close(got, want, tol, W, f"{case_id} m={m} memory={memory} vs numpy backend")
            one = _fused.kernel_sum(kernel, Xd, Yd, W, _opts(memory, threads=1))
            _assert_sums_close(got, one, tol, W, f"{case_id} m={m} memory={memory} threads 1 vs 2")


@pytest.mark.parametrize("threads", [3, 5])
def test_point_parallel_uneven_ranges(threads):
    """More threads than cores, n = 4 nb threads + 1: the last point range holds a single point."""
    n, m, d, p = 4 * _fused._NB * threads + 1, 2, 3, 2
    kernel, spec = kk.Matern(nu=2.5, bandwidth=0.8), ("matern", 2.5, 0.8)
    X, Y, W = _data(n, m, d, p, seed=threads)
    W[-1] = 1e3  # the lone last point matters
    opts = _opts(10**9, threads)
    assert _point_parallel(_fused._prepare(kernel, X, Y, opts, None, p), n, m)
    K = _k_matrix(spec, X, Y)
    _assert_sums_close(_fused.kernel_sum(kernel, X, Y, W, opts), K.T @ W,
                       _tol_matrix(spec, X, Y, np.float64, False), W, f"threads={threads}")
    LW = _log_weights(n, p, seed=threads)
    LW[:-1, 0] = -np.inf  # column 0: only the last point has weight
    ref = _lse_reference(spec, X, Y, LW)
    _check_lse(_fused.kernel_logsumexp(kernel, X, Y, LW, opts), ref,
               _lse_tol(spec, X, Y, LW, ref, np.float64, False), f"threads={threads}")
    Y2 = X[[-1, 0]]  # queries at the last and the first point: each is its own nearest
    vals, idx = _fused.kernel_topk(kernel, X, Y2, 3, opts)
    _, ref_idx = _brute_topk(_k_matrix(spec, X, Y2), 3)
    np.testing.assert_array_equal(idx, ref_idx)
    assert idx[0, 0] == n - 1 and idx[1, 0] == 0


# --------------------------------------------------------------------------------------------
# 4. log-sum-exp
# --------------------------------------------------------------------------------------------
def _lse_reference(spec, X, Y, LW):
    L = _log_k_matrix(spec, X, Y)  # (n, m)
    return np.stack([scipy.special.logsumexp(L + LW[:, q][:, None], axis=0) for q in range(LW.shape[1])], axis=1)


def _lse_tol(spec, X, Y, LW, ref, dtype, gram):
    """|log-sum error| <= max over terms of the log-value errors: relative + distance sensitivity."""
    leaf = _leaves(spec)[0][0]
    r2 = _sq(X, Y)
    delta = _r2_perturbation(spec, X, Y, dtype, gram)
    sens = _log_profile(leaf, np.maximum(r2 - delta, 0.0)) - _log_profile(leaf, r2 + delta)  # (n, m)
    finite = np.isfinite(LW)
    out = np.empty_like(ref)
    for q in range(LW.shape[1]):
        rows = finite[:, q]
        s = sens[rows].max(axis=0) if rows.any() else np.zeros(ref.shape[0])
        big = np.abs(LW[rows, q]).max() if rows.any() else 0.0
        out[:, q] = SAFETY * (RTOL[dtype] * (1 + np.abs(np.where(np.isfinite(ref[:, q]), ref[:, q], 0)) + big) + s)
    return out


def _log_weights(n, p, seed):
    rng = np.random.default_rng(seed)
    LW = np.log(rng.uniform(0.05, 2.0, size=(n, p))).astype(np.float32).astype(np.float64)
    LW[rng.random((n, p)) < 0.2] = -np.inf  # zero weights
    if p > 1:
        LW[:, -1] = -np.inf  # a column of zero weights: log 0 = -inf in every output
    return LW


def _check_lse(got, ref, tol, what):
    inf = np.isneginf(ref)
    assert np.array_equal(np.isneginf(got), inf), f"{what}: -inf pattern differs"
    err = np.abs(got[~inf] - ref[~inf])
    assert np.all(err <= tol[~inf]), f"{what}: max err {err.max():.3e}, tol {tol[~inf].min():.3e}"


@pytest.mark.parametrize("dtype", DTYPES, ids=DT_IDS)
@pytest.mark.parametrize("case_id", [c[0] for c in LSE_CASES])
def test_logsumexp_matches_log_domain_reference(case_id, dtype):
    _, kernel, spec = CASE_BY_ID[case_id]
    for cfg in [(1, 1, 1, 1), (17, 2, 3, 3), (97, 17, 9, 2), (257, 97, 3, 3), (2, 257, 1, 2)]:
        n, m, d, p = cfg
        X, Y, _ = _data(n, m, d, p, seed=41 + n)
        LW = _log_weights(n, p, seed=n + m)
        ref = _lse_reference(spec, X, Y, LW)
        for mode in ["direct", "gram"]:
            for memory in [2000, 10**9]:
                got = _fused.kernel_logsumexp(kernel, X.astype(dtype), Y.astype(dtype), LW,
                                              _opts(memory), mode=mode)
                assert got.shape == (m, p)
                tol = _lse_tol(spec, X, Y, LW, ref, dtype, gram=mode == "gram")
                _check_lse(got, ref, tol, f"{case_id} {cfg} {mode} memory={memory}")
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
    assert np.all(np.exp(_log_k_matrix(spec, X, Y)) == 0.0)
    sums = _fused.kernel_sum(kk.Gaussian(bw), X.astype(dtype), Y.astype(dtype), np.exp(LW), _opts())
    assert np.all(sums == 0.0)  # the linear domain has nothing left
    ref = _lse_reference(spec, X, Y, LW)
    got = _fused.kernel_logsumexp(kk.Gaussian(bw), X.astype(dtype), Y.astype(dtype), LW, _opts(4096), mode=mode)
    assert np.all(np.isfinite(got))
    np.testing.assert_allclose(got, ref, rtol=1e-10 if dtype == np.float64 else 1e-5)
    # the scale of a scaled kernel enters as log(scale)
    got3 = _fused.kernel_logsumexp(3.0 * kk.Gaussian(bw), X.astype(dtype), Y.astype(dtype), LW, _opts(), mode=mode)
    np.testing.assert_allclose(got3, ref + math.log(3.0), rtol=1e-10 if dtype == np.float64 else 1e-5)


@pytest.mark.parametrize("dtype", DTYPES, ids=DT_IDS)
def test_logsumexp_point_parallel(dtype):
    n, d, p = 5000, 3, 3
    for case_id in ["gauss", "scaled_matern15"]:
        _, kernel, spec = CASE_BY_ID[case_id]
        for m in [1, 3]:
            X, Y, _ = _data(n, m, d, p, seed=51 + m)
            LW = _log_weights(n, p, seed=m)
            LW[: n // 2, 1] = -np.inf  # the first thread's half has no weight in column 1
            ref = _lse_reference(spec, X, Y, LW)
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
    np.testing.assert_allclose(got, want, rtol=1e-12)
    # sums of kernels are positive but have no single log profile: not fused, auto falls back
    k2 = kk.Gaussian(1.0) + kk.Laplace(1.0)
    assert not _fused.supports(k2, "logsumexp")
    with pytest.raises(ValueError, match="'backend'"):
        kk.kernel_logsumexp(k2, X, Y, LW, backend="fused")
    ref = np.log(np.exp(LW) @ _k_matrix(("sum", (("gauss", 1.0), ("laplace", 1.0))), X, Y))
    np.testing.assert_allclose(kk.kernel_logsumexp(k2, X, Y, LW, backend="auto"), ref, rtol=1e-12)


# --------------------------------------------------------------------------------------------
# 5. top-k
# --------------------------------------------------------------------------------------------
def _brute_topk(K, k):
    """Per query (column of K): k largest values, ties by the smaller index."""
    n, m = K.shape
    idx = np.empty((m, k), dtype=np.int64)
    for j in range(m):
        order = sorted(range(n), key=lambda i: (-K[i, j], i))
        idx[j] = order[:k]
    return np.take_along_axis(K.T, idx, axis=1), idx


def _check_topk_float(vals, idx, K, tol, k, what, exact_indices):
    m = K.shape[1]
    assert vals.shape == (m, k) and idx.shape == (m, k) and idx.dtype == np.int64
    # sorted: values non-increasing, ties by increasing index; no index twice
    assert np.all(np.diff(vals, axis=1) <= 0), what
    tie = np.diff(vals, axis=1) == 0
    assert np.all(np.diff(idx, axis=1)[tie] > 0), f"{what}: ties not by the smaller index"
    assert all(len(set(row)) == k for row in idx.tolist()), what
    ref_vals, ref_idx = _brute_topk(K, k)
    Kt, Tt = K.T, tol.T
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


TOPK_CASES = ["gauss", "laplace", "matern25", "imq07", "rq2", "scaled_gauss", "sum_g_l_lin", "linear", "poly3"]


@pytest.mark.parametrize("dtype", DTYPES, ids=DT_IDS)
@pytest.mark.parametrize("case_id", TOPK_CASES)
def test_topk_matches_brute_force(case_id, dtype):
    _, kernel, spec = CASE_BY_ID[case_id]
    for (n, m, d) in [(1, 3, 2), (17, 5, 3), (97, 11, 9), (257, 13, 1)]:
        X, Y, _ = _data(n, m, d, 1, seed=61 + n)
        K = _k_matrix(spec, X, Y)
        for mode in _modes(spec):
            tol = _tol_matrix(spec, X, Y, dtype, gram=mode == "gram")
            for k in sorted({1, min(5, n), n}):
                for memory in [4000, 10**9]:
                    opts = _opts(memory)
                    if _topk_falls_back(kernel, X.astype(dtype), Y.astype(dtype), k, opts, mode):
                        continue  # the driver hands this one to the NumPy backend
                    vals, idx = _fused.kernel_topk(kernel, X.astype(dtype), Y.astype(dtype), k, opts, mode=mode)
                    _check_topk_float(vals, idx, K, tol, k, f"{case_id} n={n} {mode} k={k} memory={memory}",
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
        K = _k_matrix(spec, X, Y)
        assert len(np.unique(K[:, 0])) == len(np.unique(X, axis=0))
        for k in sorted({1, 2, 7, n // 2, n - 1, n}):
            for memory in [4000, 10**9]:
                opts = _opts(memory)
                if _topk_falls_back(kernel, Xd, Yd, k, opts, mode):
                    continue
                vals, idx = _fused.kernel_topk(kernel, Xd, Yd, k, opts, mode=mode)
                _, ref_idx = _brute_topk(K, k)
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
            K = _k_matrix(spec, X, Y)
            tol = _tol_matrix(spec, X, Y, dtype, gram=_has_dot(spec))
            for k in [1, 9, n]:
                opts = _opts(10**9, threads=2)
                prep = _fused._prepare(kernel, X.astype(dtype), Y.astype(dtype), opts, None, 0, 16 * k)
                assert _point_parallel(prep, n, m)
                vals, idx = _fused.kernel_topk(kernel, X.astype(dtype), Y.astype(dtype), k, opts)
                _check_topk_float(vals, idx, K, tol, k, f"{spec} m={m} k={k}", exact_indices=dtype == np.float64)
                want_v, want_i = _numpy.kernel_topk(kernel, X, Y, k, opts)
                if dtype == np.float64:
                    np.testing.assert_array_equal(idx, want_i)
                    np.testing.assert_allclose(vals, want_v, rtol=1e-12, atol=1e-12 * np.abs(want_v).max())
        # ties across the two threads' point ranges: the smaller index must win the merge
        X, Y = _tied_data(n, 1, d, 3, seed=5)
        K = _k_matrix(spec, X, Y)
        for k in [1, 7, n // 3, n]:
            opts = _opts(10**9, threads=2)
            vals, idx = _fused.kernel_topk(kernel, X.astype(dtype), Y.astype(dtype), k, opts)
            _, ref_idx = _brute_topk(K, k)
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
        np.testing.assert_allclose(v1, v2, rtol=1e-12)


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
def test_auto_picks_fused_for_supported_kernels(monkeypatch):
    calls = []
    real = _fused.kernel_sum

    def spy(*args, **kwargs):
        calls.append(args[0])
        return real(*args, **kwargs)

    monkeypatch.setattr(_fused, "kernel_sum", spy)
    X, Y, W = _data(40, 6, 3, 1, seed=12)
    for case_id, kernel, spec in CASES:
        assert engine._backend(get_options(backend="auto"), kernel, "sum") is _fused, case_id
        got = kk.kernel_sum(kernel, X, Y, W[:, 0], backend="auto")
        np.testing.assert_allclose(got, _k_matrix(spec, X, Y).T @ W[:, 0], rtol=1e-10,
                                   atol=1e-12 * (np.abs(_k_matrix(spec, X, Y)).T @ np.abs(W[:, 0])).max())
    assert len(calls) == len(CASES)
    for kernel in [kk.Gaussian(), kk.Laplace(2.0)]:
        assert engine._backend(get_options(backend="auto"), kernel, "logsumexp") is _fused
        assert engine._backend(get_options(backend="auto"), kernel, "topk") is _fused


FALLBACK = [
    ("matern07", kk.Matern(nu=0.7, bandwidth=0.8), ("matern", 0.7, 0.8)),
    ("product", kk.Gaussian(1.0) * kk.Laplace(0.7), ("prod", (("gauss", 1.0), ("laplace", 0.7)))),
    ("sum_with_matern07", kk.Gaussian(1.0) + kk.Matern(nu=0.7, bandwidth=0.8),
     ("sum", (("gauss", 1.0), ("matern", 0.7, 0.8)))),
]


@pytest.mark.parametrize("case_id,kernel,spec", FALLBACK, ids=[f[0] for f in FALLBACK])
def test_unsupported_kernels_fall_back_under_auto(case_id, kernel, spec):
    X, Y, W = _data(13, 5, 3, 2, seed=14)
    K = _double_loop_matrix(spec, X, Y)
    for op in ["sum", "logsumexp", "topk"]:
        assert not _fused.supports(kernel, op)
        assert engine._backend(get_options(backend="auto"), kernel, op) is _numpy
    got = kk.kernel_sum(kernel, X, Y, W, backend="auto")
    np.testing.assert_allclose(got, K.T @ W, rtol=1e-10, atol=1e-12 * (np.abs(K).T @ np.abs(W)).max())
    lse = kk.kernel_logsumexp(kernel, X, Y, np.log(np.abs(W)), backend="auto")
    np.testing.assert_allclose(lse, np.log(K.T @ np.abs(W)), rtol=1e-10)
    vals, idx = kk.kernel_topk(kernel, X, Y, 4, backend="auto")
    ref_v, ref_i = _brute_topk(K, 4)
    np.testing.assert_array_equal(idx, ref_i)
    np.testing.assert_allclose(vals, ref_v, rtol=1e-10)
    with pytest.raises(ValueError, match="'backend'"):
        kk.kernel_sum(kernel, X, Y, W, backend="fused")
    with pytest.raises(ValueError, match="'backend'"):
        kk.kernel_logsumexp(kernel, X, Y, np.log(np.abs(W)), backend="fused")
    with pytest.raises(ValueError, match="'backend'"):
        kk.kernel_topk(kernel, X, Y, 4, backend="fused")
