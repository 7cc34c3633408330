"""Task graphs for the engine's reductions over dask arrays (private; see :mod:`kernelkit.dask`).

One task per (X block, Y block) pair runs the local engine on its two
blocks and returns float64 partials; a tree over the X blocks merges them
(sums added, log-sum-exps merged in the log domain, top-k candidates merged
by value then index). dask is imported here only, and only when a dask
array (or an explicit dask call) arrives.
"""

from __future__ import annotations

import contextlib
import contextvars
import dataclasses
import math
import os
import sys

import numpy as np

from .._options import get_options
from .._validation import Integral, check_param, param_error
from ..exceptions import InvalidValueError

#: index used to pad the top-k candidates of blocks with fewer than k rows (loses every tie; exact in float64)
_PAD_INDEX = float(2 ** 53)


def is_dask(x):
    """True if ``x`` is a dask collection (told by its type's module: dask is not imported).

    Parameters
    ----------
    x : object
        Any value (an array, a list, None).

    Returns
    -------
    bool
    """
    from .._xp import any_dask
    return any_dask(x)


def require_dask():
    """The ``dask.array`` module, or an ImportError naming the extra."""
    try:
        import dask.array as da
    except ImportError:
        raise ImportError("kernelkit's dask support needs dask: pip install 'kernelkit[dask]'.") from None
    return da


# --- graph shape options --------------------------------------------------

@dataclasses.dataclass(frozen=True)
class GraphOptions:
    """Shape of the task graphs (see :func:`kernelkit.dask.graph_options`).

    Parameters
    ----------
    pairs_per_task : int >= 1
        Target (x, y) pairs per task for an operand given as a NumPy array
        (default 2**27, about 1.3e8).
    fan_in : int >= 2
        Partials merged by one task of the reduction tree (default 8).
    memory_fraction : float in (0, 1]
        Share of a worker's memory limit, per thread, for one task's engine
        tiles (default 0.25).
    """

    pairs_per_task: int = 2 ** 27
    fan_in: int = 8
    memory_fraction: float = 0.25


_GRAPH = contextvars.ContextVar("kernelkit_dask_graph", default=GraphOptions())

_GRAPH_CONSTRAINTS = {"pairs_per_task": Integral(low=1), "fan_in": Integral(low=2)}


def resolve_graph(owner, pairs_per_task=None, fan_in=None, memory_fraction=None, base=None):
    """The graph options in force, with per-call overrides (None: inherit), validated."""
    base = _GRAPH.get() if base is None else base
    changes = {}
    for name, value in (("pairs_per_task", pairs_per_task), ("fan_in", fan_in)):
        if value is not None:
            changes[name] = check_param(value, name, owner, _GRAPH_CONSTRAINTS[name], noun="option")
    if memory_fraction is not None:
        from .._validation import Real
        changes["memory_fraction"] = check_param(memory_fraction, "memory_fraction", owner,
                                                 Real(low=0, high=1, low_open=True), noun="option")
    return dataclasses.replace(base, **changes) if changes else base


@contextlib.contextmanager
def graph_context(**kw):
    token = _GRAPH.set(resolve_graph("kernelkit.dask.graph_options", **kw))
    try:
        yield _GRAPH.get()
    finally:
        _GRAPH.reset(token)


# --- what one task may use --------------------------------------------------

def _cores():
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - non-Linux
        return max(1, os.cpu_count() or 1)


def _current_worker():
    try:
        from distributed import get_worker
    except ImportError:
        return None
    try:
        return get_worker()
    except ValueError:
        return None


def _host_threads():
    """{host: threads of all the workers on it} from the default ``distributed`` client, or None without one.

    Read on the client when the graph is built (one call to the scheduler); ``distributed`` is not
    imported here unless the user has imported it already.
    """
    if "distributed" not in sys.modules:
        return None
    try:
        from distributed import default_client
        workers = default_client().scheduler_info()["workers"]
    except Exception:  # no client, or a scheduler that cannot answer: the task falls back to its own worker
        return None
    out = {}
    for info in workers.values():
        out[info["host"]] = out.get(info["host"], 0) + int(info["nthreads"])
    return out


def _worker_host(worker):
    try:
        from distributed.comm import get_address_host
        return get_address_host(worker.address)
    except Exception:  # pragma: no cover - unusual addresses
        return None


def task_resources(memory=None, threads=None, memory_fraction=0.25, host_threads=None):
    """Threads and memory budget for one engine call inside the current dask task.

    On a ``distributed`` worker: threads = the cores this process may use
    divided by the threads of all the workers on its host (each thread runs
    one task at a time; without ``host_threads`` only its own worker's
    threads count), at least 1; the budget is ``memory_fraction`` of the
    worker's memory limit divided by its threads. Elsewhere (dask's
    synchronous or threaded scheduler): the threaded scheduler's pool shares
    the cores the same way (``num_workers`` threads), the synchronous one
    gets them all, and the budget is the client's.

    Parameters
    ----------
    memory : int, optional
        The client's memory budget in bytes (caps the worker's share).
        Default 1 GB.
    threads : int, optional
        The client's thread count (caps the share of cores); None or 0: no cap.
    memory_fraction : float in (0, 1]
        Share of the worker's memory limit (per thread) given to the engine.
    host_threads : dict, optional
        {host: total worker threads on it}, as read by the client from the
        scheduler when the graph was built.

    Returns
    -------
    threads : int >= 1
    memory : int
        Bytes.
    """
    cores = _cores()
    worker = _current_worker()
    limit = None
    if worker is not None:
        slots = max(1, int(worker.state.nthreads))
        limit = getattr(getattr(worker, "memory_manager", None), "memory_limit", None)
        share = slots
        if host_threads:
            share = max(slots, int(host_threads.get(_worker_host(worker), slots)))
    else:
        import dask
        scheduler = dask.config.get("scheduler", None)
        if scheduler in ("sync", "synchronous", "single-threaded"):
            slots = 1
        else:
            slots = int(dask.config.get("num_workers", None) or cores)
        share = slots
    t = max(1, cores // share)
    if threads:
        t = min(t, int(threads))
    budget = int(memory) if memory else 10 ** 9
    if limit:
        budget = min(budget, max(2 ** 20, int(memory_fraction * limit / slots)))
    return t, budget


# --- per-task functions (run on the workers) -------------------------------

def _worker_share():
    """(memory limit of the current worker divided by its threads, in bytes) or None off a limited worker."""
    worker = _current_worker()
    if worker is None:
        return None
    limit = getattr(getattr(worker, "memory_manager", None), "memory_limit", None)
    if not limit:
        return None
    return int(limit) // max(1, int(worker.state.nthreads))


def _mb(b):
    return f"{b / 1e6:.1f} MB"


def check_task_fits(need, cfg, owner, what):
    """Raise before allocating when a task's untiled arrays cannot fit its share of the worker's memory limit.

    The engine tiles the kernel block into ``memory_fraction`` of the worker's memory limit per thread
    (its budget); what cannot be tiled (the task's input blocks, its output partial, the working
    copies) must fit in the rest, ``(1 - memory_fraction)`` of that share. Past it the worker's
    nanny would kill the process, dask would rerun the task on the next worker and kill that one too;
    a clear error instead, at once, names what to change.

    Parameters
    ----------
    need : int
        Bytes the task holds besides the engine's tiles.
    cfg : dict
        The graph's task configuration (its ``memory_fraction``).
    owner : str
        The public function, for the message.
    what : str
        Description of the task's blocks, for the message.
    """
    share = _worker_share()
    if share is None:
        return
    room = int((1.0 - cfg["memory_fraction"]) * share)
    if need > room:
        raise InvalidValueError(
            f"{owner}: one task ({what}) needs about {_mb(need)} besides the engine's tiles, more than the "
            f"{_mb(room)} left of this worker's memory limit per thread ({_mb(share)}) after the engine's "
            f"memory budget (memory_fraction={cfg['memory_fraction']:g} of it). Use smaller chunks "
            "(X.rechunk / Y.rechunk, or a smaller pairs_per_task for NumPy operands) or raise the workers' "
            "memory_limit.")


def _local_opts(cfg):
    threads, memory = task_resources(cfg["memory"], cfg["threads"], cfg["memory_fraction"], cfg["host_threads"])
    return get_options(memory=memory, threads=threads, backend=cfg["backend"], progress=False)


def _pair_bytes(X, Y, W, out_cols):
    """Untiled bytes of one (X block, Y block) task: the blocks, their working copies, W, the float64 output."""
    blocks = 2 * (X.size * X.dtype.itemsize + Y.size * Y.dtype.itemsize)
    w = 0 if W is None else 8 * int(np.size(W))
    return blocks + w + 2 * 8 * Y.shape[0] * out_cols


def _what(X, Y, cols):
    return f"{X.shape[0]} x {Y.shape[0]} pairs, {cols} output column(s)"


def _blocks(kernel, X, Y, owner):
    from .._validation import check_pair
    return check_pair(X, Y, owner=owner)


def _sum_task(X, Y, W, kernel, cfg):
    """float64 partial sums (1, mb, p) of one (X block, Y block) pair."""
    from ..engine import _backend, _working
    m, p = Y.shape[0], cfg["p"]
    if X.shape[0] == 0 or m == 0:
        return np.zeros((1, m, p))
    check_task_fits(_pair_bytes(X, Y, W, p), cfg, "kernel_sum", _what(X, Y, p))
    X, Y = _blocks(kernel, X, Y, "kernel_sum")
    W = np.ones((X.shape[0], 1)) if W is None else _check_w(W, X.shape[0], "weights", "kernel_sum", False)
    opts = _local_opts(cfg)
    Xw, Yw = _working(kernel, X, Y, W)
    out = _backend(opts, kernel, "sum").kernel_sum(kernel, Xw, Yw, W, opts)
    return np.asarray(out, dtype=np.float64).reshape(1, m, p)


def _lse_task(X, Y, LW, kernel, cfg):
    """float64 partial log-sum-exps (1, mb, p); -inf for an empty X block."""
    from ..engine import _backend, _working
    m, p = Y.shape[0], cfg["p"]
    if X.shape[0] == 0 or m == 0:
        return np.full((1, m, p), -np.inf)
    check_task_fits(_pair_bytes(X, Y, LW, p), cfg, "kernel_logsumexp", _what(X, Y, p))
    X, Y = _blocks(kernel, X, Y, "kernel_logsumexp")
    LW = np.zeros((X.shape[0], 1)) if LW is None else _check_w(LW, X.shape[0], "log_weights",
                                                               "kernel_logsumexp", True)
    opts = _local_opts(cfg)
    Xw, Yw = _working(kernel, X, Y, LW)
    out = _backend(opts, kernel, "logsumexp").kernel_logsumexp(kernel, Xw, Yw, LW, opts)
    return np.asarray(out, dtype=np.float64).reshape(1, m, p)


def _topk_task(X, Y, offset, kernel, cfg):
    """Packed candidates (1, mb, 2k): the block's top-k values then their global indices (as float64)."""
    from ..engine import _backend, _working
    k, m = cfg["k"], Y.shape[0]
    check_task_fits(_pair_bytes(X, Y, None, 3 * k), cfg, "kernel_topk", _what(X, Y, 2 * k))
    packed = np.empty((1, m, 2 * k))
    packed[0, :, :k] = -np.inf
    packed[0, :, k:] = _PAD_INDEX
    rows = X.shape[0]
    if rows == 0 or m == 0:
        return packed
    X, Y = _blocks(kernel, X, Y, "kernel_topk")
    kb = min(k, rows)
    opts = _local_opts(cfg)
    Xw, Yw = _working(kernel, X, Y)
    values, indices = _backend(opts, kernel, "topk").kernel_topk(kernel, Xw, Yw, kb, opts)
    packed[0, :, :kb] = values
    packed[0, :, k:k + kb] = indices + int(np.asarray(offset).ravel()[0])
    return packed


def _check_w(W, n, name, owner, neg_inf):
    from .._validation import check_weights
    W = check_weights(W, n, name, owner, allow_neg_inf=neg_inf)
    return W.reshape(n, -1)


# --- tree merges (axis 0: X blocks) ------------------------------------------

def _lse_merge(parts, axis=0, keepdims=True, **_):
    """Exact log-domain merge: max + log(sum(exp(parts - max))); -inf where every part is -inf."""
    parts = np.asarray(parts, dtype=np.float64)
    top = np.max(parts, axis=axis, keepdims=True)
    safe = np.where(np.isfinite(top), top, 0.0)
    with np.errstate(divide="ignore"):
        out = safe + np.log(np.sum(np.exp(parts - safe), axis=axis, keepdims=True))
    out = np.where(top == -np.inf, -np.inf, out)
    out = np.where(top == np.inf, np.inf, out)
    return out if keepdims else np.squeeze(out, axis=axis)


def _topk_merge_arrays(parts, k):
    """Merge packed candidates over axis 0 into the k best per query: value descending, then index ascending."""
    parts = np.asarray(parts, dtype=np.float64)
    b, m = parts.shape[0], parts.shape[1]
    vals = np.moveaxis(parts[:, :, :k], 0, 1).reshape(m, b * k)
    idx = np.moveaxis(parts[:, :, k:], 0, 1).reshape(m, b * k)
    order = np.lexsort((idx, -vals), axis=1)[:, :k]
    out = np.empty((1, m, 2 * k))
    out[0, :, :k] = np.take_along_axis(vals, order, axis=1)
    out[0, :, k:] = np.take_along_axis(idx, order, axis=1)
    return out


def _sum_merge(parts):
    """Add float64 partials (1, mb, p) over the X blocks: (1, mb, p)."""
    total = np.array(parts[0], dtype=np.float64, copy=True)
    for part in parts[1:]:
        total += part
    return total


def _lse_tree_merge(parts):
    return _lse_merge(np.concatenate(parts, axis=0), axis=0, keepdims=True)


def _topk_tree_merge(parts, k):
    return _topk_merge_arrays(np.concatenate(parts, axis=0), k)


def _finish(parts, merge, extra, dtype, squeeze):
    """Last merge of one Y block's tree: (mb,) or (mb, p) in the output dtype."""
    out = merge(parts, *extra)[0]
    with np.errstate(over="ignore"):
        out = out.astype(dtype, copy=False)
    return out[:, 0] if squeeze else out


def _merge_tree(part, merge, fan_in, dtype, squeeze, label, extra=()):
    """Merge the partials ``part`` (nX blocks of (1, mb, q) per Y block) over the X blocks by a tree of fan-in
    ``fan_in``: one task per group of ``fan_in`` partials, the last one per Y block casting to ``dtype`` (and
    dropping the column axis when ``squeeze``). No per-block tasks besides the partials themselves (dask's
    reductions add a chunk step, a getitem and a cast per block, each a scheduler round trip)."""
    from dask.base import tokenize
    from dask.highlevelgraph import HighLevelGraph
    da = require_dask()
    keys = part.__dask_keys__()
    n_x, n_y = part.numblocks[0], part.numblocks[1]
    name = f"{label}-{tokenize(part, merge, fan_in, dtype, squeeze, extra)}"
    dsk = {}
    for j in range(n_y):
        level = [keys[i][j][0] for i in range(n_x)]
        depth = 0
        while len(level) > fan_in:
            nxt = []
            for g, s in enumerate(range(0, len(level), fan_in)):
                key = (f"{name}-{depth}", g, j)
                dsk[key] = (merge, list(level[s:s + fan_in])) + tuple(extra)
                nxt.append(key)
            level, depth = nxt, depth + 1
        dsk[(name, j) if squeeze else (name, j, 0)] = (_finish, list(level), merge, tuple(extra), dtype, squeeze)
    graph = HighLevelGraph.from_collections(name, dsk, dependencies=[part])
    chunks = (part.chunks[1],) if squeeze else (part.chunks[1], part.chunks[2])
    return da.Array(graph, name, chunks=chunks, dtype=dtype)


# --- inputs -----------------------------------------------------------------

def _known(n, name, owner):
    if isinstance(n, float) and math.isnan(n):
        raise param_error(name, owner, "a dask array with known chunk sizes", None,
                          shown="unknown chunk sizes",
                          hint=f"Call {name}.compute_chunk_sizes() (or build it with known chunks) first.")
    return int(n)


def _as_points(A, name, owner, rows_per_chunk=None):
    """A dask array of points (n, d) chunked by rows only (numpy arrays are wrapped, chunked by ``rows_per_chunk``)."""
    da = require_dask()
    if not is_dask(A):
        from .._validation import _numeric_array
        arr = _numeric_array(A, name, owner)
        if arr.ndim != 2:
            raise param_error(name, owner, "a 2-D array of shape (n_points, n_features)", A,
                              shown=f"{arr.ndim}-D array of shape {arr.shape}")
        rows = max(1, min(arr.shape[0], rows_per_chunk or arr.shape[0]))
        return da.from_array(arr, chunks=(rows, -1), name=False)
    if A.ndim != 2:
        raise param_error(name, owner, "a 2-D array of shape (n_points, n_features)", A,
                          shown=f"{A.ndim}-D dask array of shape {A.shape}")
    if not (np.issubdtype(A.dtype, np.number) or A.dtype == bool) or np.issubdtype(A.dtype, np.complexfloating):
        raise param_error(name, owner, "a real numeric array", A, "type", shown=f"dtype {A.dtype}")
    for n in A.chunks[0]:
        _known(n, name, owner)
    if len(A.chunks[1]) > 1:
        A = A.rechunk({1: -1})
    return A


def _pair(X, Y, owner, graph):
    """(X, Y) as row-chunked dask arrays of a common float dtype; numpy operands chunked to ``pairs_per_task``."""
    require_dask()
    X_dask, Y_dask = is_dask(X), is_dask(Y)
    target = graph.pairs_per_task
    if X_dask:
        X = _as_points(X, "X", owner)
    if Y_dask or not X_dask:  # two NumPy arrays: Y in one block, X cut by pairs_per_task
        Y = _as_points(Y, "Y", owner)
        Y_dask = True
    if not X_dask:
        my = max(Y.chunks[0]) if Y.chunks[0] else 1
        X = _as_points(X, "X", owner, rows_per_chunk=max(1, target // max(1, my)))
    if not Y_dask:
        mx = max(X.chunks[0]) if X.chunks[0] else 1
        Y = _as_points(Y, "Y", owner, rows_per_chunk=max(1, target // max(1, mx)))
    n, m = X.shape[0], Y.shape[0]
    if n < 1:
        raise param_error("X", owner, "an array with at least 1 row(s)", X, shown=f"shape {X.shape}")
    if m < 1:
        raise param_error("Y", owner, "an array with at least 1 row(s)", Y, shown=f"shape {Y.shape}")
    if X.shape[1] < 1:
        raise param_error("X", owner, "an array with at least 1 feature", X, shown=f"shape {X.shape}")
    if X.shape[1] != Y.shape[1]:
        raise param_error("Y", owner, f"an array with as many features as 'X' ({X.shape[1]})", Y,
                          shown=f"shape {Y.shape}")
    dtype = np.float32 if (X.dtype == np.float32 and Y.dtype == np.float32) else np.float64
    X = X.astype(dtype, copy=False) if X.dtype != dtype else X
    Y = Y.astype(dtype, copy=False) if Y.dtype != dtype else Y
    return X, Y, dtype


def _aligned_weights(W, X, name, owner):
    """(weights as a dask array chunked like X's rows, squeeze flag, p); None stays None."""
    da = require_dask()
    n = X.shape[0]
    if W is None:
        return None, True, 1
    if is_dask(W):
        if W.ndim not in (1, 2) or W.shape[0] != n or (W.ndim == 2 and W.shape[1] < 1):
            raise param_error(name, owner, f"an array of shape ({n},) or ({n}, p), one row per data point", W,
                              shown=f"shape {W.shape}")
        for c in W.chunks[0]:
            _known(c, name, owner)
        squeeze = W.ndim == 1
        W2 = W.reshape(n, 1) if squeeze else W
        W2 = W2.astype(np.float64).rechunk((X.chunks[0], -1))
        return W2, squeeze, W2.shape[1]
    from .._validation import check_weights
    arr = check_weights(W, n, name, owner, allow_neg_inf=(name == "log_weights"))
    squeeze = arr.ndim == 1
    arr = arr.reshape(n, -1)
    return da.from_array(arr, chunks=(X.chunks[0], -1), name=False), squeeze, arr.shape[1]


def _engine_cfg(memory, threads, backend, graph, **extra):
    """What the tasks need from the client: the client's options (validated now) and the graph's memory fraction."""
    opts = get_options(memory=memory, threads=threads, backend=backend)
    cfg = {"memory": opts.memory, "threads": opts.threads or None, "backend": opts.backend,
           "memory_fraction": graph.memory_fraction, "host_threads": _host_threads()}
    cfg.update(extra)
    return cfg


# --- public entry points (called by kernelkit.engine and kernelkit.dask) ----

def _check_kernel(kernel, owner):
    from ..engine import _check_kernel as check
    return check(kernel, owner)


def _partials(func, X, Y, W, kernel, cfg, p):
    da = require_dask()
    if W is None:
        part = da.blockwise(func, "ijq", X, "ik", Y, "jk", None, None, new_axes={"q": p}, kernel=kernel, cfg=cfg,
                            dtype=np.float64, concatenate=True, align_arrays=False, adjust_chunks={"i": 1})
    else:
        part = da.blockwise(func, "ijq", X, "ik", Y, "jk", W, "iq", kernel=kernel, cfg=cfg, dtype=np.float64,
                            concatenate=True, align_arrays=False, adjust_chunks={"i": 1})
    return part


def kernel_sum(kernel, X, Y, weights=None, *, memory=None, threads=None, backend=None, progress=None,
               pairs_per_task=None, fan_in=None, memory_fraction=None):
    owner = "kernel_sum"
    _check_kernel(kernel, owner)
    graph = resolve_graph(owner, pairs_per_task, fan_in, memory_fraction)
    X, Y, dtype = _pair(X, Y, owner, graph)
    kernel._check_features(X.shape[1], owner)
    W, squeeze, p = _aligned_weights(weights, X, "weights", owner)
    cfg = _engine_cfg(memory, threads, backend, graph, p=p)
    part = _partials(_sum_task, X, Y, W, kernel, cfg, p)
    return _merge_tree(part, _sum_merge, graph.fan_in, dtype, squeeze, "kernel-sum")


def kernel_logsumexp(kernel, X, Y, log_weights=None, *, memory=None, threads=None, backend=None, progress=None,
                     pairs_per_task=None, fan_in=None, memory_fraction=None):
    require_dask()
    owner = "kernel_logsumexp"
    _check_kernel(kernel, owner)
    if not kernel.is_positive:
        raise param_error("kernel", owner, "a positive kernel (log k must exist)", kernel)
    graph = resolve_graph(owner, pairs_per_task, fan_in, memory_fraction)
    X, Y, dtype = _pair(X, Y, owner, graph)
    kernel._check_features(X.shape[1], owner)
    LW, squeeze, p = _aligned_weights(log_weights, X, "log_weights", owner)
    cfg = _engine_cfg(memory, threads, backend, graph, p=p)
    part = _partials(_lse_task, X, Y, LW, kernel, cfg, p)
    return _merge_tree(part, _lse_tree_merge, graph.fan_in, dtype, squeeze, "kernel-logsumexp")


def kernel_topk(kernel, X, Y, k, *, memory=None, threads=None, backend=None, progress=None,
                pairs_per_task=None, fan_in=None, memory_fraction=None):
    da = require_dask()
    owner = "kernel_topk"
    _check_kernel(kernel, owner)
    graph = resolve_graph(owner, pairs_per_task, fan_in, memory_fraction)
    X, Y, dtype = _pair(X, Y, owner, graph)
    kernel._check_features(X.shape[1], owner)
    k = check_param(k, "k", owner, Integral(low=1, high=X.shape[0]))
    if X.shape[0] >= 2 ** 53:  # pragma: no cover - indices travel as float64
        raise InvalidValueError("kernel_topk on dask arrays supports at most 2^53 rows of X.")
    starts = np.concatenate([[0], np.cumsum(X.chunks[0])[:-1]]).astype(np.int64)
    offsets = da.from_array(starts, chunks=1, name=False)
    cfg = _engine_cfg(memory, threads, backend, graph, k=k)
    part = da.blockwise(_topk_task, "ijq", X, "ik", Y, "jk", offsets, "i", new_axes={"q": 2 * k}, kernel=kernel,
                        cfg=cfg, dtype=np.float64, concatenate=True, align_arrays=False, adjust_chunks={"i": 1})
    packed = _merge_tree(part, _topk_tree_merge, graph.fan_in, np.float64, False, "kernel-topk", extra=(k,))
    values = packed[:, :k]
    with np.errstate(over="ignore"):
        values = values.astype(dtype) if dtype != np.float64 else values
    indices = packed[:, k:].astype(np.int64)
    return values, indices
