"""Methods over dask arrays (private): each builds its result from the engine's dask reductions.

KernelDensity.score_samples (dask queries), mmd (dask point sets), and the
private sums' exact statistics (summed over the blocks by tasks; the noise
is drawn on the client, once, after the sum: Dask may rerun a task, and a
task that drew noise would then release two noisy values).
"""

from __future__ import annotations


import math

import numpy as np

from .._validation import OneOf, check_param, param_error
from . import _graph
from ._graph import _as_points, require_dask


def score_samples(kde, X):
    """``KernelDensity.score_samples`` for a dask array of queries: a lazy dask array of shape (m,)."""
    from ..density._kde import _F32_MAX, _fits, _scaled
    owner = "KernelDensity.score_samples"
    kde._check_fitted("score_samples")
    Y = _as_points(X, "X", owner)
    if Y.shape[1] != kde.n_features_in_:
        raise param_error("X", owner, f"an array with {kde.n_features_in_} features, as in fit", X,
                          shown=f"shape {Y.shape}")
    Y = Y.astype(np.float64) if Y.dtype not in (np.float32, np.float64) else Y
    if getattr(kde, "_bounded", None) is not None:
        from ..exceptions import NotSupportedError
        raise NotSupportedError("KernelDensity.score_samples on dask queries does not apply the boundary "
                                "correction (bounds=); compute the queries, or fit without bounds.")
    if getattr(kde, "_whiten", None) is not None:   # bandwidth matrix: whiten the queries (lazily)
        Y = Y.astype(np.float64) @ kde._whiten[0].T
    out_dt = np.float32 if (Y.dtype == np.float32 and kde._X.dtype == np.float32) else np.float64
    h = kde._scale
    X_dask = _graph.is_dask(kde._X)   # fitted on a dask X: its largest |x| was found by fit
    xmax = kde._dask_xmax if X_dask else float(np.max(np.abs(kde._X)))
    # without a pass over the queries their largest value is unknown: float32 only when the data fit it
    f32_ok = _fits(h, np.float32) and xmax / h <= _F32_MAX / 4
    dt = out_dt if f32_ok else np.float64
    if X_dask:
        Xs = (kde._X / h).astype(dt) if kde._X.dtype == dt else (kde._X.astype(np.float64) / h).astype(dt)
    else:
        Xs = _scaled(kde._X, h, dt)
    Ys = (Y / h).astype(dt) if Y.dtype == dt else (Y.astype(np.float64) / h).astype(dt)
    opts = kde._engine_opts()
    lse = _graph.kernel_logsumexp(kde.kernel_, Xs, Ys, kde._log_w, memory=opts["memory"], threads=opts["threads"],
                                  backend=opts["backend"])
    const = kde._log_norm()
    return (lse.astype(np.float64) - const).astype(out_dt)


def _nonneg(w, name, owner):
    if (w < 0).any():
        raise param_error(name, owner, "non-negative", w, shown=f"{w[w < 0][0]}")
    return w


def _measure(weights, X, name, owner):
    """Weights normalised to sum 1, chunked like X's rows (lazy; sign checked in the tasks)."""
    da = require_dask()
    n = X.shape[0]
    if weights is None:
        return da.full(n, 1.0 / n, chunks=(X.chunks[0],))
    if not _graph.is_dask(weights):
        from ..compress._mmd import normalized_weights
        return da.from_array(normalized_weights(weights, n, name, owner), chunks=(X.chunks[0],), name=False)
    if weights.ndim != 1 or weights.shape[0] != n:
        raise param_error(name, owner, f"an array of shape ({n},), one row per data point", weights,
                          shown=f"shape {weights.shape}")
    w = weights.astype(np.float64).rechunk((X.chunks[0],))
    w = w.map_blocks(_nonneg, name, owner, dtype=np.float64)
    return w / w.sum()


def mmd(X, Y, kernel="gaussian", weights_x=None, weights_y=None, *, bandwidth=None, squared=False, memory=None,
        threads=None):
    """``mmd`` for dask point sets: a lazy 0-d float64 dask array (``float(...)`` computes it)."""
    from ..compress._kernelspec import check_kernel
    from ..compress._resolve import resolve_kernel
    da = require_dask()
    owner = "mmd"
    squared = check_param(squared, "squared", owner, OneOf(False, True))
    if isinstance(kernel, str) and bandwidth is None:
        raise param_error("bandwidth", owner, "a float > 0 with dask inputs (or a Kernel object)", None,
                          hint="The median heuristic would need the whole data; compute it on a sample, e.g. "
                               "kernelkit.median_bandwidth(X[:2000].compute()).")
    kernel = check_kernel(resolve_kernel(kernel, bandwidth, None, owner), owner)
    graph = _graph.resolve_graph(owner)
    X, Y, _ = _graph._pair(X, Y, owner, graph)
    X, Y = X.astype(np.float64), Y.astype(np.float64)
    p = _measure(weights_x, X, "weights_x", owner)
    q = _measure(weights_y, Y, "weights_y", owner)
    kw = dict(memory=memory, threads=threads)
    xx = da.dot(p, _graph.kernel_sum(kernel, X, X, p, **kw))
    xy = da.dot(q, _graph.kernel_sum(kernel, X, Y, p, **kw))
    yy = da.dot(q, _graph.kernel_sum(kernel, Y, Y, q, **kw))
    val = da.maximum(xx - 2.0 * xy + yy, 0.0)
    return val if squared else da.sqrt(val)


# --- private sums: exact statistic by tasks, noise on the client ------------

def private_rows(X, owner, min_rows=1):
    """The private records as a row-chunked dask array, checked finite now (one pass over the data).

    The check runs before any privacy budget is spent, as ``check_points`` does for a NumPy array, so a
    NaN never costs budget; the tasks that sum the records check their chunk again.
    """
    da = require_dask()
    X = _as_points(X, "X", owner)
    if X.shape[0] < min_rows:
        raise param_error("X", owner, f"an array with at least {min_rows} row(s)", X, shown=f"shape {X.shape}")
    if X.shape[1] < 1:
        raise param_error("X", owner, "an array with at least 1 feature", X, shown=f"shape {X.shape}")
    if X.shape[0] and not bool(da.isfinite(X).all().compute()):
        raise param_error("X", owner, "an array of finite values", X, shown="NaN or infinite values")
    return X


def _block_stat(chunk, func, row_bytes, owner, cfg):
    from .._options import options
    from .._validation import check_points
    from ..privacy._common import map_row_blocks
    C = check_points(chunk, "X", owner, min_rows=0)
    threads, memory = _graph.task_resources(cfg["memory"], cfg["threads"], cfg["memory_fraction"],
                                           cfg["host_threads"])
    with options(memory=memory, threads=threads):
        parts = map_row_blocks(lambda a, b: func(C[a:b]), C.shape[0], row_bytes)
    if not parts:
        return None
    return np.sum(parts, axis=0)[None]


def sum_row_blocks(func, X, row_bytes, owner):
    """``[sum over the rows of X of func(rows)]``, exact, computed now by one task per chunk and a tree sum.

    ``func(rows)`` returns an array of integers (as float64 or int64) for a block of validated rows; the
    tasks return these exact sums, never anything noisy, so a rerun task changes nothing. The caller adds
    the noise, once, on the client.
    """
    require_dask()
    import dask
    graph = _graph.resolve_graph(owner)
    cfg = _graph._engine_cfg(None, None, None, graph)
    parts = [dask.delayed(_block_stat)(b, func, row_bytes, owner, cfg) for b in X.to_delayed().ravel()]
    while len(parts) > 1:  # tree of fan-in graph.fan_in
        parts = [dask.delayed(_add)(*parts[i:i + graph.fan_in]) for i in range(0, len(parts), graph.fan_in)]
    total = parts[0].compute() if parts else None
    return [] if total is None else [total[0]]


def _add(*parts):
    parts = [p for p in parts if p is not None]
    if not parts:
        return None
    total = parts[0].copy()
    for p in parts[1:]:
        total += p
    return total


def _query_block(Y, est, return_std):
    if Y.shape[0] == 0:
        return np.zeros((0, 2))
    out = est.query(Y, return_std=return_std)
    values, std = out if return_std else (out, np.zeros(Y.shape[0]))
    return np.stack([np.asarray(values, np.float64), np.asarray(std, np.float64)], axis=1)


def private_query(est, Y, return_std=False):
    """``query`` of a released private structure on a dask array of queries (post-processing, lazy)."""
    owner = f"{type(est).__name__}.query"
    est._check_fitted()
    accepts = (False, True) if type(est).__name__ == "PrivateDistanceSum" else (False, True, "noise", "total")
    return_std = check_param(return_std, "return_std", owner, OneOf(*accepts))
    Y = _as_points(Y, "Y", owner)
    if Y.shape[1] != est.n_features_in_:
        raise param_error("Y", owner, f"an array with {est.n_features_in_} features, like the data given to fit",
                          Y, shown=f"shape {Y.shape}")
    both = Y.map_blocks(_query_block, est, return_std, chunks=(Y.chunks[0], (2,)), dtype=np.float64)
    return (both[:, 0], both[:, 1]) if return_std else both[:, 0]


# --- KernelDensity.fit on a dask X: the moment rules as reductions ----------

#: bandwidth rules that need more than the data's moments (repeated passes, sorting, a 1-D grid)
_PASS_RULES = ("cv", "lscv", "isj")


def _fit_stats(Xc, wc, owner):
    """Pass 1 over one chunk: [finite, max|x|, max|x| where w > 0, sum w, sum w^2, rows, min (d), max (d)].

    min / max are over the rows of positive weight (+inf / -inf when there are none); the chunk and its
    weights are checked here as the local fit checks them (the task raises the same error).
    """
    from .._validation import check_points, check_weights
    d = Xc.shape[1]
    X = check_points(np.asarray(Xc), "X", owner, min_rows=0, dtype=np.float64)
    w = np.ones(X.shape[0]) if wc is None else check_weights(wc, X.shape[0], "sample_weight", owner,
                                                             nonnegative=True, allow_2d=False)
    used = X[w > 0]
    out = np.empty(5 + 2 * d)
    out[0] = X.shape[0]
    out[1] = float(np.max(np.abs(X), initial=0.0))
    out[2] = float(np.max(np.abs(used), initial=0.0))
    out[3] = float(np.sum(w))
    out[4] = float(np.sum(w * w))
    out[5:5 + d] = np.min(used, axis=0, initial=np.inf)
    out[5 + d:] = np.max(used, axis=0, initial=-np.inf)
    return out


def _fit_moments(Xc, wc, unit, full):
    """Pass 2 over one chunk of X / unit: [sum w, weighted mean (d), scatter] with the scatter about the chunk's
    own mean, sum_i w_i (x_i - mu)(x_i - mu)^T ((d, d) when ``full``, else its diagonal (d))."""
    X = np.asarray(Xc, dtype=np.float64)
    if unit != 1.0:
        X = X / unit
    d = X.shape[1]
    w = np.ones(X.shape[0]) if wc is None else np.asarray(wc, dtype=np.float64)
    W = float(np.sum(w))
    size = d * d if full else d
    out = np.zeros(1 + d + size)
    if not W > 0:
        return out
    mu = (w / W) @ X
    D = X - mu
    out[0] = W
    out[1:1 + d] = mu
    out[1 + d:] = ((D * w[:, None]).T @ D).ravel() if full else w @ (D * D)
    return out


def _merge_moments(parts, d, full):
    """Chan et al.'s parallel merge: (sum w, weighted mean, scatter about the mean) of the whole data."""
    parts = [p for p in parts if p[0] > 0]
    Ws = np.array([p[0] for p in parts])
    mus = np.array([p[1:1 + d] for p in parts])
    W = float(Ws.sum())
    mu = (Ws / W) @ mus
    dm = mus - mu
    if full:
        S = sum(p[1 + d:].reshape(d, d) for p in parts) + (dm * Ws[:, None]).T @ dm
    else:
        S = sum(p[1 + d:] for p in parts) + Ws @ (dm * dm)
    return W, mu, S


def fit_density(kde, X, sample_weight, kernel, bw):
    """``KernelDensity.fit`` for a dask X: moment rules by dask reductions (two passes), X kept lazy.

    Pass 1 checks every chunk (finite values, non-negative weights) and gathers max |x|, the weights' sum
    and sum of squares (Kish's n_eff) and the range of the rows of positive weight (zero spread); pass 2
    the weighted means and scatters of the chunks, merged exactly on the client (Chan's pairwise formula),
    of X scaled by a power of two as the local rule does for coordinates beyond 2^+-500. The bandwidth
    then follows the local formulas. Rules that need more than moments are refused.
    """
    import dask
    from ..density._kde import _F64_MAX
    from ..density._matrix import _RELATIVE_EIGEN_TOL, _degenerate_error, whitening
    da = require_dask()
    owner, cls = "KernelDensity.fit", "KernelDensity"
    if isinstance(bw, str) and bw in _PASS_RULES:
        raise param_error("bandwidth", cls, "a float, 'scott' or 'silverman' when X is a dask array (rules "
                          "from the data's moments)", bw,
                          hint=f"'{bw}' needs many passes over the data; choose it on a sample, e.g. "
                               f"KernelDensity(bandwidth='{bw}').fit(X[:20000].compute()).bandwidth_, and pass "
                               "that float.")
    if kde.bounds is not None:
        raise param_error("bounds", cls, "None when X is a dask array (the boundary correction is local)",
                          kde.bounds, hint="Compute X, or fit without bounds.")
    spec = kde.bandwidth_matrix
    if spec is not None:
        if isinstance(spec, str) and spec not in ("full", "diagonal"):
            raise param_error("bandwidth_matrix", cls, "None, 'full', 'diagonal' or a (d, d) array", spec)
        if bw is None:
            raise param_error("bandwidth_matrix", cls, "None with a Kernel object (name the kernel to give it a "
                              "bandwidth matrix)", spec, shown="a bandwidth matrix")
    X = _as_points(X, "X", owner)
    if X.dtype not in (np.float32, np.float64):
        X = X.astype(np.float64)
    n, d = X.shape
    if n < 1:
        raise param_error("X", owner, "an array with at least 1 row(s)", X, shown=f"shape {X.shape}")
    if d < 1:
        raise param_error("X", owner, "an array with at least 1 feature", X, shown=f"shape {X.shape}")
    try:
        log_integral = kernel.log_integral(d)
    except NotImplementedError:
        raise param_error("kernel", cls, f"integrable over R^{d} (a density)", kernel) from None
    if not np.isfinite(log_integral):
        raise param_error("kernel", cls, f"integrable over R^{d}", kernel, shown=f"{kernel!r} (infinite integral)")
    if sample_weight is None:
        w = None
    elif _graph.is_dask(sample_weight):
        if sample_weight.ndim != 1 or sample_weight.shape[0] != n:
            raise param_error("sample_weight", owner, f"an array of shape ({n},), one weight per data point",
                              sample_weight, shown=f"shape {sample_weight.shape}")
        w = sample_weight.astype(np.float64).rechunk((X.chunks[0],))
    else:
        from ..density._kde import _weights
        w = da.from_array(_weights(sample_weight, n, owner), chunks=(X.chunks[0],), name=False)
    xs = X.to_delayed().ravel()
    ws = [None] * len(xs) if w is None else list(w.to_delayed().ravel())
    stats = np.array(dask.compute(*[dask.delayed(_fit_stats)(a, b, owner) for a, b in zip(xs, ws)]))
    W, W2 = float(stats[:, 3].sum()), float(stats[:, 4].sum())
    if not W > 0:
        raise param_error("sample_weight", owner, "weights with a positive sum (not all zero)", sample_weight,
                          shown=f"sum {W}")
    xmax, big = float(stats[:, 1].max()), float(stats[:, 2].max())
    lo, hi = stats[:, 5:5 + d].min(axis=0), stats[:, 5 + d:].max(axis=0)
    n_eff = W * W / W2

    def moments(unit, full):
        parts = dask.compute(*[dask.delayed(_fit_moments)(a, b, unit, full) for a, b in zip(xs, ws)])
        Wm, _, S = _merge_moments(parts, d, full)
        denom = 1.0 - W2 / (W * W)   # unbiased, as numpy.cov with aweights
        C = S / Wm
        return C / denom if denom > 0 else C

    kde.kernel_ = kernel
    kde.n_features_in_ = d
    kde._whiten = None
    kde.covariance_ = None
    if spec is not None:
        if isinstance(spec, str):
            C = moments(1.0, spec == "full")
            A = np.diag(np.diag(C) if C.ndim == 2 else C)
            if spec == "full":
                A = C
                if n <= d:
                    raise param_error("X", cls, "more points than columns for bandwidth_matrix='full' (the "
                                      "sample covariance of n <= d points is singular)", X,
                                      shown=f"{n} points in {d} columns", hint="Use bandwidth_matrix='diagonal' "
                                                                               "or None.")
            name, what = "X", f"data covariance ({spec})"
        else:
            from ..density._matrix import bandwidth_matrix_shape
            A = bandwidth_matrix_shape(spec, np.zeros((0, d)), None, cls)  # an SPD array: checked there
            name, what = "bandwidth_matrix", "bandwidth matrix"
        vals = np.linalg.eigvalsh(A)
        if not (vals[0] > _RELATIVE_EIGEN_TOL * max(vals[-1], 0.0) and vals[-1] > 0):
            raise _degenerate_error(A, cls, name, what)
        if not (isinstance(bw, float) or bw in ("scott", "silverman")):
            raise param_error("bandwidth", cls, "a float factor, 'scott' or 'silverman' with a bandwidth matrix",
                              bw)
        T, L, logdet = whitening(A)
        f = bw if isinstance(bw, float) else _rule_factor(bw, n_eff, d)
        kde._whiten = (T, L, logdet)
        kde.covariance_ = f * f * A
        X = (X.astype(np.float64) @ T.T).astype(X.dtype)
        xmax = xmax * float(np.max(np.sum(np.abs(T), axis=1)))  # |T x|_inf <= ||T||_inf |x|_inf
        h = float(f)
    elif bw is None:
        h = None
    elif isinstance(bw, float):
        h = bw
        if not math.isfinite(xmax / h):
            raise param_error("bandwidth", cls, f"at least {xmax / _F64_MAX:.3g} for these data (the data "
                              "divided by the bandwidth must stay finite float64)", kde.bandwidth)
    elif n < 2:
        h = 1.0
    else:
        if np.all(lo == hi):
            name_ = "Scott's" if bw == "scott" else "Silverman's"
            raise param_error("bandwidth", cls, "a float when the data have zero spread (every point with "
                              f"positive weight is the same point): {name_} rule gives bandwidth 0 there", bw,
                              hint="Pass a float bandwidth (bandwidth=1.0, for instance).")
        unit = math.ldexp(1.0, int(np.frexp(big)[1])) if not 2.0 ** -500 <= big <= 2.0 ** 500 else 1.0
        s = float(np.sqrt(np.mean(moments(unit, False)))) * unit
        h = s * _rule_factor(bw, n_eff, d)
    kde._X = X
    kde._dask_xmax = xmax
    kde._w = w
    kde._log_w = None if w is None else w.map_blocks(_log0, dtype=np.float64)
    kde._log_w_total = float(np.log(W))
    kde._log_integral = float(log_integral)
    kde._bounded = None
    if h is None:  # a Kernel object, applied as it is
        kde._scale = 1.0
        kde.bandwidth_ = getattr(kernel, "bandwidth", None)
        return kde
    if not (h > 0 and np.isfinite(h)):
        h = 1.0
    kde._scale = kde.bandwidth_ = float(h)
    return kde


def _log0(w):
    with np.errstate(divide="ignore"):
        return np.log(w)


def _rule_factor(rule, n_eff, d):
    """Scott's n_eff^(-1/(d+4)) or Silverman's (n_eff (d+2)/4)^(-1/(d+4)) (dimensionless)."""
    if rule == "scott":
        return n_eff ** (-1.0 / (d + 4))
    return (n_eff * (d + 2) / 4.0) ** (-1.0 / (d + 4))
