"""Methods over dask arrays (private): each builds its result from the engine's dask reductions.

KernelDensity.score_samples (dask queries), mmd (dask point sets), and the
private sums' exact statistics (summed over the blocks by tasks; the noise
is drawn on the client, once, after the sum: Dask may rerun a task, and a
task that drew noise would then release two noisy values).
"""

from __future__ import annotations


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
    # without a pass over the queries their largest value is unknown: float32 only when the data fit it
    f32_ok = _fits(h, np.float32) and float(np.max(np.abs(kde._X))) / h <= _F32_MAX / 4
    dt = out_dt if f32_ok else np.float64
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
