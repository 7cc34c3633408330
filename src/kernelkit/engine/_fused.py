"""Fused compiled CPU backend: the default path of the engine.

The C extension ``_fused_ext`` evaluates a tile of the kernel matrix in cache
and reduces it at once (weighted sums, log-sum-exp, top-k), so no n x m
buffer is formed and each kernel value costs one exp. This module compiles a
kernel into the extension's component table, picks the distance formula and
the tile sizes, and drives the progress bar.

Distances: for d <= ``DIRECT_MAX_D`` the squared distance is summed from
coordinate differences (exact); kernels of the L1 distance (``distance="l1"``)
always sum |x_k - y_k| that way, then square the sum; above it, ``|x|^2 + |y|^2 - 2 x.y`` with both
sets centred on the mean of X (the register-blocked x.y is what makes large d
fast; centring removes most of the cancellation). Dot-product kernels
(Linear, Polynomial) always use the x.y form without centring.

Memory: per thread, one tile of ``nb`` points by ``jb`` queries and its
packed inputs, sized to half the memory budget (down to 16 x 6, 32 x 6 with AVX-512); X and the
weights are packed into tiles once per call when that copy fits the other
half, else tile by tile.
Builds: the extension is compiled for baseline x86-64 (``_fused_ext``),
x86-64-v3 (``_fused_v3_ext``: AVX2 + FMA, 256-bit vectors) and x86-64-v4
(``_fused_v4_ext``: AVX-512, 512-bit vectors); :func:`select_clone` imports
the best one the CPU supports (``CLONE_ENV`` forces one), and every build is
tested against the NumPy reference on the machines that can run it.
Kernels the extension does not cover (general-nu Matern, products,
polynomials of degree above ``MAX_DEGREE``) fall back to the NumPy backend
(``supports`` says which).

Extreme scales: float32 inputs whose kernel constants do not fit float32 are
promoted to float64 by the engine before they get here. Data whose squared
norms could overflow use the direct distance formula (exact, overflow only
where the true distance overflows), and a rational quadratic whose r^2 / c^2
could overflow float64 takes log(1 + r^2/c^2) = log r^2 - log c^2 where the
ratio is infinite (its components are flagged in the table's degree column).
"""

from __future__ import annotations

import math
import os

import numpy as np

from ._components import (Component, Modulated, code, compile_components, kernel_components, kernel_distance,
                          MAX_COMPONENTS)
from ._tiling import progress_bar
from ..kernels import r2_bound
from ..exceptions import InvalidValueError

#: the instruction-set builds, best first: (name, module, CPU features it needs)
CLONES = (
    ("x86-64-v4", "_fused_v4_ext", ("avx512f", "avx512bw", "avx512dq", "avx512vl", "avx2", "fma", "bmi2")),
    ("x86-64-v3", "_fused_v3_ext", ("avx", "avx2", "fma", "bmi", "bmi2", "f16c")),
    ("baseline", "_fused_ext", ()),
)
#: environment variable that forces one build (a name of CLONES), e.g. to compare them
CLONE_ENV = "KERNELKIT_ENGINE_CLONE"

try:
    from . import _fused_ext as _baseline
except ImportError:  # pragma: no cover - depends on the build
    _baseline = None


def _import(module):
    import importlib
    try:
        return importlib.import_module(f"{__package__}.{module}")
    except ImportError:   # not built (an old compiler, another architecture)
        return None


def cpu_features():
    """The CPU's instruction-set features that select the build (dict of bools; empty off x86)."""
    return dict(_baseline.cpu_features()) if _baseline is not None else {}


def built_clones():
    """Names of the builds present in this installation (importable or not on this CPU)."""
    import importlib.util
    return [name for name, module, _ in CLONES
            if importlib.util.find_spec(f"{__package__}.{module}") is not None]


def select_clone(name=None):
    """Load the build ``name`` (None: the best this CPU supports) and return its name.

    Raises InvalidValueError for an unknown name, a build this installation
    lacks, or one the CPU cannot run (importing it would crash the process).
    """
    global _ext
    if _baseline is None:
        _ext = None
        return None
    feats = cpu_features()
    if name is None:
        for clone, module, needs in CLONES:
            mod = _import(module) if all(feats.get(f) for f in needs) else None
            if mod is not None:
                _ext = mod
                return clone
    names = [c[0] for c in CLONES]
    if name not in names:
        raise InvalidValueError(f"The engine build must be one of {names} (or None for the best the CPU "
                                f"supports). Got {name!r}.")
    clone, module, needs = CLONES[names.index(name)]
    missing = [f for f in needs if not feats.get(f)]
    if missing:
        raise InvalidValueError(f"The engine build {name!r} needs CPU features {missing}, which this CPU lacks; "
                                f"use one of {[c for c, _, n in CLONES if all(feats.get(f) for f in n)]}.")
    mod = _import(module)
    if mod is None:
        raise InvalidValueError(f"The engine build {name!r} is not in this installation (built: {built_clones()}).")
    _ext = mod
    return clone


_ext = None
select_clone(os.environ.get(CLONE_ENV) or None)


def clone():
    """Name of the build that runs ("x86-64-v4", "x86-64-v3", "baseline"), or None without one."""
    return None if _ext is None else _ext.CLONE

_SUM, _LSE, _TOPK = range(3)
DIRECT_MAX_D = 8
_NB, _JB = 256, 48           # default tile: 256 points x 48 queries (jb: a multiple of 6)
_PROGRESS_PAIRS = 2 * 10**9  # pairs per progress update
#: largest polynomial degree evaluated here (by repeated multiplication); above, the NumPy backend
MAX_DEGREE = 1024
#: components whose log the compiled log-sum-exp evaluates (positive radial closed forms)
_LOG_NAMES = ("gauss", "laplace", "matern32", "matern52", "rq", "periodic", "epanechnikov", "tophat", "triangular",
              "cosine")
_GAUSS_UNIT = Component("gauss", 1.0, 0.5, 0.0, 0)   # exp(-r^2 / 2), for Modulated components


def available():
    return _ext is not None


def exp_nonpositive(x):
    """``exp(x)`` elementwise with the engine's vectorised exp (x <= 0 or -inf).

    The same function the fused kernels use: gradual underflow to subnormals,
    exactly 0 below the subnormal range. Its polynomial truncation error is
    below 6.4e-15 (float64) and 5.3e-9 (float32) relative; with rounding, the
    largest relative error seen over 10^6 uniform points of [-760, 0] (float64)
    and [-110, 0] (float32) was 8.8e-15 and 1.7e-7 for normal results. For
    tests and the benchmark's exp-throughput figure.

    Raises
    ------
    ValueError
        If any x is positive or NaN (outside the domain the engine needs).
    RuntimeError
        If the compiled extension is not built.
    """
    if _ext is None:
        raise RuntimeError("exp_nonpositive needs the compiled fused engine, which is not built here "
                           "(kernelkit.engine.fused_available() is False).")
    x = np.ascontiguousarray(x)
    if x.dtype not in (np.float32, np.float64):
        x = x.astype(np.float64)
    flat = x.reshape(-1)
    bad = ~(flat <= 0)
    if bad.any():
        raise InvalidValueError(f"The 'x' parameter of exp_nonpositive must be <= 0 (or -inf), without NaN. "
                         f"Got {float(flat[bad][0])!r} at flat index {int(np.flatnonzero(bad)[0])}.")
    out = np.empty_like(flat)
    _ext.vexp(flat, out)
    return out.reshape(x.shape)


def _compile(kernel):
    """(plain components, modulated components) of ``kernel``, or None when this backend cannot run it."""
    distance = kernel_distance(kernel)
    if distance == "mixed":
        return None
    comps = kernel_components(kernel, distance=distance)
    if comps is None:
        return None
    plain = [c for c in comps if isinstance(c, Component)]
    mod = [c for c in comps if isinstance(c, Modulated)]
    if len(plain) > MAX_COMPONENTS or any(c.deg > MAX_DEGREE for c in plain if c.name == "poly"):
        return None
    return plain, mod


def supports(kernel, op):
    if _ext is None:
        return False
    spec = _compile(kernel)
    if spec is None:
        return False
    plain, mod = spec
    if op == "logsumexp":  # one positive radial component (a scaled one is fine: log w is added)
        return not mod and len(plain) == 1 and plain[0].name in _LOG_NAMES
    if op in ("topk", "block"):
        return not mod
    return True


#: the ``gram`` argument of the extension: distance pass of the micro-kernel
DIRECT, GRAM, DIRECT_L1 = 0, 1, 2


def _mode(codes, d, mode, huge=False, distance="euclidean"):
    """(gram, centre) for this kernel and dimension; ``huge``: squared norms of the data could overflow.
    ``gram`` is DIRECT, GRAM or DIRECT_L1 (L1 distances are always summed from coordinate differences)."""
    if distance == "l1":
        if mode == "gram":
            raise InvalidValueError("The fused backend has no mode='gram' for kernels of the L1 distance "
                                    "(|x - y|_1 has no x.y form); use mode='direct' or None.")
        return DIRECT_L1, False
    has_dot = bool(np.any(codes == code("poly", 0)))
    if mode is None:
        # |x|^2 + |y|^2 - 2 x.y overflows (inf - inf) for huge data: exact differences then
        mode = "gram" if has_dot or (d > DIRECT_MAX_D and not huge) else "direct"
    if mode not in ("direct", "gram"):
        raise InvalidValueError(f"The 'mode' of the fused backend must be 'direct' or 'gram'. Got {mode!r}.")
    if mode == "direct" and has_dot:
        raise InvalidValueError("The fused backend needs mode='gram' for dot-product kernels (Linear, Polynomial).")
    return (GRAM if mode == "gram" else DIRECT), (mode == "gram" and not has_dot)


def _tiles(d, p, itemsize, memory, threads, extra_per_query=0):
    """Tile sizes (nb, jb) whose per-thread workspace fits ``memory / threads``."""
    per_thread = memory / max(1, threads)
    nb, jb = _NB, _JB

    def cost(nb_, jb_):
        return itemsize * (nb_ * (d + p + 4) + jb_ * (d + 1) + jb_ * nb_) + jb_ * extra_per_query

    low = _ext.TILE_MULTIPLE if _ext is not None else 16   # nb: a multiple of the widest panel
    while cost(nb, jb) > per_thread and (nb > low or jb > 6):
        if nb >= 4 * jb and nb > low or jb <= 6:
            nb //= 2
        else:
            jb //= 2
    return nb, jb


class Plan:
    """Everything a compiled reduction needs besides the weights: the arrays in the working dtype,
    the component table, distance mode, centre, tiles and threads (see :func:`plan`)."""

    __slots__ = ("X", "Y", "c", "codes", "params", "gram", "nb", "jb", "threads", "prepack")

    def __init__(self, **kw):
        for k, v in kw.items():
            setattr(self, k, v)


def plan(plain, X, Y, opts, mode, p, extra_per_query=0, distance="euclidean"):
    """A :class:`Plan` for the plain components ``plain`` on X, Y with p weight columns
    (``distance``: the distance of the kernel, :func:`kernel_distance`)."""
    dtype = X.dtype if X.dtype == Y.dtype and X.dtype in (np.float32, np.float64) else np.float64
    X = np.ascontiguousarray(X, dtype=dtype)
    Y = np.ascontiguousarray(Y, dtype=dtype)
    codes, params = compile_components(plain, X, Y)
    has_dot = any(c.name == "poly" for c in plain)
    huge = (mode is None and X.shape[1] > DIRECT_MAX_D and not has_dot
            and r2_bound(X, Y) > float(np.finfo(dtype).max) / 4)
    gram, centre = _mode(codes, X.shape[1], mode, huge, distance)
    c = X.mean(axis=0, dtype=np.float64).astype(dtype) if centre else None
    threads = opts.resolved_threads()
    if not opts.threads and X.shape[0] * Y.shape[0] < _ONE_THREAD_PAIRS:
        threads = 1   # automatic thread count: a second thread costs more than so little work
    nb, jb = _tiles(X.shape[1], p, X.itemsize, opts.memory / 2, threads, extra_per_query)
    # pack all of X (and W) into tiles once when that fits the other half of the budget
    packed = X.itemsize * (-(-X.shape[0] // nb) * nb) * (X.shape[1] + 1 + p)
    return Plan(X=X, Y=Y, c=c, codes=codes, params=params, gram=gram, nb=nb, jb=jb, threads=threads,
                prepack=int(packed <= opts.memory / 2))


def _prepare(kernel, X, Y, opts, mode, p, extra_per_query=0):
    """The plan of ``kernel``'s plain components as a tuple
    (X, Y, centre, codes, params, gram, nb, jb, threads, prepack), for tests."""
    pl = plan(_compile(kernel)[0], X, Y, opts, mode, p, extra_per_query, kernel_distance(kernel))
    return pl.X, pl.Y, pl.c, pl.codes, pl.params, pl.gram == GRAM, pl.nb, pl.jb, pl.threads, pl.prepack


def _query_chunks(n, m, enabled):
    """Query ranges between progress updates (one range when there is no bar)."""
    if not enabled:
        return [(0, m)]
    step = max(1, min(m, _PROGRESS_PAIRS // max(n, 1)))
    return [(j, min(m, j + step)) for j in range(0, m, step)]


def run_sum(pl, W, progress):
    """out[j] = sum_i k(x_i, y_j) W[i] for a :class:`Plan` (float64, shape (m, p))."""
    W = np.ascontiguousarray(W, dtype=pl.X.dtype)
    m = pl.Y.shape[0]
    out = np.zeros((m, W.shape[1]))
    with progress_bar(m, progress, "kernel_sum") as bar:
        for j0, j1 in _query_chunks(pl.X.shape[0], m, progress):
            _ext.run(_SUM, pl.X, pl.Y[j0:j1], W, pl.c, pl.codes, pl.params, pl.gram, pl.nb, pl.jb, 0, pl.threads,
                     pl.prepack, out[j0:j1], None)
            bar.update(j1 - j0)
    return out


#: bytes of kernel rows one thread keeps between the two phases of a normal product (in cache)
_NORMAL_ROWS_BYTES = 512 * 1024
#: kernel values below which a normal product runs on one thread (automatic thread count)
_NORMAL_ONE_THREAD = 1 << 20
#: pairs below which a reduction or block runs on one thread (automatic thread count; about 0.1 ms of work)
_ONE_THREAD_PAIRS = 1 << 18


def normal_plan(kernel, C, X, opts, p):
    """A :class:`Plan` for ``V -> K(C, X) diag(Wq) K(X, C) V`` (points C, queries X), or None when
    this backend cannot run it (modulated components). Its query blocks keep jb x M kernel values
    per thread, about ``_NORMAL_ROWS_BYTES``."""
    spec = _compile(kernel)
    if spec is None or spec[1] or not spec[0]:
        return None
    pl = plan(spec[0], C, X, opts, None, p, distance=kernel_distance(kernel))
    padded = -(-pl.X.shape[0] // pl.nb) * pl.nb
    pl.jb = max(6, min(pl.jb, _NORMAL_ROWS_BYTES // (padded * pl.X.itemsize) // 6 * 6))
    # with the automatic thread count, small products run on one thread (waking a second one costs more than
    # the work, and much more on a loaded machine); at most one thread per query block
    blocks = -(-pl.Y.shape[0] // pl.jb)
    small = not opts.threads and padded * pl.Y.shape[0] < _NORMAL_ONE_THREAD
    pl.threads = 1 if small else max(1, min(pl.threads, blocks))
    return pl


def run_normal(pl, V, Wq):
    """``K(C, X) diag(Wq) K(X, C) V`` for a :func:`normal_plan` (float64, shape (M, p)); Wq (n, p) or None."""
    V = np.ascontiguousarray(V, dtype=pl.X.dtype)
    Wq = None if Wq is None else np.ascontiguousarray(Wq, dtype=pl.X.dtype)
    out = np.zeros((pl.X.shape[0], V.shape[1]))
    _ext.normal(pl.X, pl.Y, V, Wq, pl.c, pl.codes, pl.params, pl.gram, pl.nb, pl.jb, pl.threads, out)
    return out


def modulated_parts(mod, X, Y, W):
    """Per Modulated component: (rescaled X, rescaled Y, phase weights (n, 2p), query phases, w).

    w exp(-|s * tau|^2 / 2) cos(2 pi (a_i - b_j)), a = X mu, b = Y mu, is a Gaussian sum on (s * X, s * Y)
    with weights [W cos(2 pi a), W sin(2 pi a)] combined as cos(2 pi b) S_c + sin(2 pi b) S_s."""
    for m in mod:
        s = np.asarray(m.scales, dtype=X.dtype)
        mu = np.asarray(m.means, dtype=np.float64)
        a, b = X.astype(np.float64) @ mu, Y.astype(np.float64) @ mu
        a, b = 2 * np.pi * (a - np.rint(a)), 2 * np.pi * (b - np.rint(b))
        Wm = np.concatenate([W * np.cos(a)[:, None], W * np.sin(a)[:, None]], axis=1)
        yield X * s, Y * s, Wm, b, m.w


def kernel_sum(kernel, X, Y, W, opts, mode=None):
    plain, mod = _compile(kernel)
    p = W.shape[1]
    out = np.zeros((Y.shape[0], p))
    if plain:
        out += run_sum(plan(plain, X, Y, opts, mode, p, distance=kernel_distance(kernel)), W, opts.progress)
    for Xs, Ys, Wm, b, w in modulated_parts(mod, X, Y, W):
        S = run_sum(plan([_GAUSS_UNIT], Xs, Ys, opts, mode, 2 * p), Wm, opts.progress)
        out += w * (np.cos(b)[:, None] * S[:, :p] + np.sin(b)[:, None] * S[:, p:])
    return out


def ranges_plan(kernel, X, Y, opts, p, op="sum"):
    """A :class:`Plan` for the pruned reduction over point ranges (:func:`run_ranges`), or None when this
    backend cannot run it there: modulated components, a distance that needs centring or the x.y form
    (only the direct differences run over ranges), or a log-sum-exp the extension does not cover."""
    if not supports(kernel, op):
        return None
    plain, mod = _compile(kernel)
    if mod or not plain:
        return None
    pl = plan(plain, X, Y, opts, None, p, distance=kernel_distance(kernel))
    if pl.c is not None or pl.gram == GRAM:
        return None
    if op == "logsumexp":
        pl.params = pl.params.copy()
        pl.params[0, 0] = math.log(pl.params[0, 0])   # the scale enters as log w
    return pl


def run_ranges(pl, op, W, qlo, qhi, rbeg, rend, rlo, rhi, thr, out, maxima=None):
    """Add the pruned reduction into ``out`` (and ``maxima`` for op "logsumexp"), float64 (m, p).

    Query block b is ``pl.Y[qlo[b]:qhi[b]]`` (blocks sorted and disjoint), its points the ranges
    ``pl.X[rlo[r]:rhi[r]]`` for r in ``range(rbeg[b], rend[b])``; ``thr`` >= 0: a query whose distance to
    the box of a tile of points (squared Euclidean, or L1 for kernels of the L1 distance) exceeds thr
    skips that tile (it must be a bound beyond which the kernel is exactly 0, margin included); < 0: no
    test. ``W``: weights (sum) or log weights (logsumexp), (n, p) in the working dtype."""
    W = np.ascontiguousarray(W, dtype=pl.X.dtype)
    idx = [np.ascontiguousarray(a, dtype=np.int64) for a in (qlo, qhi, rbeg, rend, rlo, rhi)]
    _ext.ranges(_LSE if op == "logsumexp" else _SUM, pl.X, pl.Y, W, pl.codes, pl.params, pl.gram, pl.nb, pl.jb,
                pl.threads, *idx, float(thr), int(pl.gram == DIRECT_L1), out, maxima)
    return out


def kernel_block(kernel, X, Y, opts, mode=None):
    """Dense K[i, j] = k(X[i], Y[j]) in the dtype of X and Y, evaluated tile by tile in C.

    The compiled code writes k(y_j, x_i) for points Y and queries X (every
    kernel here is symmetric). With ``Y is X`` the diagonal is set to
    ``kernel.diag`` exactly (the Gram distance formula leaves rounding there).
    """
    same = Y is X
    pl = plan(_compile(kernel)[0], Y, X, opts, mode, 0, distance=kernel_distance(kernel))
    K = np.empty((pl.Y.shape[0], pl.X.shape[0]), dtype=pl.X.dtype)
    _ext.block(pl.X, pl.Y, pl.c, pl.codes, pl.params, pl.gram, pl.nb, pl.jb, pl.threads, K)
    if same:
        np.fill_diagonal(K, kernel.diag(pl.X))
    return K


def kernel_logsumexp(kernel, X, Y, LW, opts, mode=None, return_max=False):
    """log-sum-exp per query and column; with ``return_max`` also the largest term max_i (log k + LW)."""
    p = LW.shape[1]
    pl = plan(_compile(kernel)[0], X, Y, opts, mode, p, distance=kernel_distance(kernel))
    X, Y, c, codes, gram, nb, jb, threads, prepack = pl.X, pl.Y, pl.c, pl.codes, pl.gram, pl.nb, pl.jb, pl.threads, pl.prepack
    params = pl.params.copy()
    params[0, 0] = math.log(params[0, 0])  # the scale enters as log w
    LW = np.ascontiguousarray(LW, dtype=X.dtype)
    sums = np.zeros((Y.shape[0], p))
    maxima = np.full((Y.shape[0], p), -np.inf)
    with progress_bar(Y.shape[0], opts.progress, "kernel_logsumexp") as bar:
        for j0, j1 in _query_chunks(X.shape[0], Y.shape[0], opts.progress):
            _ext.run(_LSE, X, Y[j0:j1], LW, c, codes, params, gram, nb, jb, 0, threads, prepack,
                     sums[j0:j1], maxima[j0:j1])
            bar.update(j1 - j0)
    with np.errstate(divide="ignore"):
        out = np.where(sums > 0, maxima + np.log(sums), -np.inf)
    return (out, np.where(sums > 0, maxima, -np.inf)) if return_max else out


def kernel_topk(kernel, X, Y, k, opts, mode=None):
    # heaps: k values and indices per query of a block, per thread
    pl = plan(_compile(kernel)[0], X, Y, opts, mode, 0, extra_per_query=16 * k, distance=kernel_distance(kernel))
    X, Y, c, codes, params, gram = pl.X, pl.Y, pl.c, pl.codes, pl.params, pl.gram
    nb, jb, threads, prepack = pl.nb, pl.jb, pl.threads, pl.prepack
    # even the smallest (6-query) blocks do not fit: the blocked path tiles over k
    if threads * jb * 16 * k > opts.memory:
        from . import _numpy
        return _numpy.kernel_topk(kernel, X, Y, k, opts)
    m = Y.shape[0]
    values = np.empty((m, k))
    indices = np.empty((m, k), dtype=np.int64)
    with progress_bar(m, opts.progress, "kernel_topk") as bar:
        for j0, j1 in _query_chunks(X.shape[0], m, opts.progress):
            _ext.run(_TOPK, X, Y[j0:j1], None, c, codes, params, gram, nb, jb, k, threads, prepack,
                     values[j0:j1], indices[j0:j1])
            bar.update(j1 - j0)
    order = np.lexsort((indices, -values), axis=1)
    return np.take_along_axis(values, order, axis=1), np.take_along_axis(indices, order, axis=1)
