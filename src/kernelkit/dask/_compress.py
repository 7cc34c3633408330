r"""Compress++ over the partitions of a dask array (private; see :func:`kernelkit.dask.compresspp`).

Divide and conquer, in the shape of Compress++ itself
(Shetty, Dwivedi & Mackey, ICLR 2022). Local Compress++ cuts its input into
4 bins, runs Compress on each bin and kernel-thins the union of the 4
outputs (about :math:`2^{g+1}` size points) to ``size``. Here the bins are
the dask row chunks, where they live:

1. **Partition tasks.** Chunk j, with :math:`n_j` rows (or mass
   :math:`\pi_j = \sum_{i \in j} w_i / \sum_i w_i` with weights; without
   them :math:`\pi_j = n_j / n`), is one bin: it runs Compress (symmetrized
   KT halvings, halved at its top as a bin of local Compress++ is) with
   leaves of :math:`\ell_j = \lceil 4^{g+1}\, \mathrm{size}^2\, n_j / n^2
   \rceil` points, and so keeps about :math:`\sqrt{n_j \ell_j} = 2^{g+1}\,
   \mathrm{size}\, n_j / n` of its rows (between half and all of that, by
   the powers of 4 in the recursion). The union of all chunks has about
   :math:`2^{g+1}` size points, as the local pool. A local bin of n / 4 rows
   would get the same leaves (``4^g size^2 / n``, Compress++'s rule). The
   task returns the kept rows as indices into the whole X, their
   coordinates and :math:`\pi_j` (unnormalised).
2. **Merge and thin (on the client).** The pool
   :math:`Q = \sum_j \pi_j Q_j`, :math:`Q_j` the uniform measure on chunk
   j's kept points (each point weighs :math:`\pi_j / |C_j|`), is thinned to
   ``size`` by kernel thinning (KT-SPLIT on a systematic resample of the
   pool when the weights are unequal, KT-SWAP with the exact weights), as
   local Compress++ thins its pool.

**Guarantee.** With :math:`\mathbb{P}_n = \sum_j \pi_j \mathbb{P}_j`
(:math:`\mathbb{P}_j` the input measure of chunk j) and mean embeddings
:math:`\mu`, the triangle inequality in the RKHS gives, for the output C,

.. math::

    \mathrm{MMD}(\mathbb{P}_n, C) \le \Big\|\sum_j \pi_j (\mu_{\mathbb{P}_j} - \mu_{Q_j})\Big\|
    + \mathrm{MMD}(Q, C) \le \sum_j \pi_j\, \mathrm{MMD}(\mathbb{P}_j, Q_j) + \mathrm{MMD}(Q, C).

The last term is the final kernel thinning's, the same as local Compress++'s
(same pool size, same ``delta / 2``). Each :math:`\mathrm{MMD}(\mathbb{P}_j,
Q_j)` is the Compress bound of chunk j at output size
:math:`2^{g+1}\,\mathrm{size}\,\pi_j`, about 1/output size up to log
factors, as for a local bin at its output size. For P equal chunks the
weighted average is therefore at most P/4 times the local pool's term (the
worst case of the triangle inequality over P bins instead of 4). The halvings are symmetrized, so each chunk's error is
a zero-mean vector, and the chunks use independent seeds; the norm of the
sum then concentrates at :math:`\sqrt{P/4}` times the local pool's term.
Both are far below the final thinning's term while :math:`2^{g+1} \gg P`.
For P > 4, passing :math:`g + \lceil \log_4(P/4) \rceil` restores the local
pool's (typical) term; each unit of g costs about 4x the work.

Failure probability: ``delta / 2`` goes to the partitions (``delta / (2 P')``
each, P' non-empty partitions, spread by each over its halvings) and
``delta / 2`` to the final thinning: all bounds hold together with
probability at least ``1 - delta``.

Seeds: ``SeedSequence(random_state).spawn(2)`` gives the partitions' stream
(spawned once more into one child per chunk, by chunk position) and the
final thinning's, so the result does not depend on the scheduler. It does
depend on the chunking, as local Compress++ depends on its bins. If the pool
comes out smaller than ``size`` (tiny chunks), the partition tasks run again
with g + 1, as local Compress++ does.
"""

from __future__ import annotations

import math
import time

import numpy as np

from .._options import get_options, options
from .._validation import Integral, OneOf, Real, check_param, check_points, check_weights, param_error
from ..exceptions import NotSupportedError
from . import _graph
from ._graph import _as_points, require_dask

#: methods served on dask inputs ("auto" means "compress++")
DASK_METHODS = ("auto", "compress++", "compress")


def _leaf(g, size, n_j, n):
    """Leaves of Compress on a chunk of n_j rows (of n) so that it keeps about ``2^(g+1) size n_j / n`` rows."""
    return max(1, int(math.ceil(4 ** (g + 1) * size * size * n_j / (n * n))))


def _partition_task(block, wblock, start, leaf, delta, ss, swap, kernel, cfg):
    """(global indices, kept rows, mass) of Compress on one chunk (runs on a worker)."""
    from ..compress._compresspp import COMPRESSPP_ENGINE_MEMORY, compress_indices
    from ..compress._kt import resample_sequence
    owner = "kernel_thin"
    X = check_points(block, "X", owner, min_rows=0)
    n_j = X.shape[0]
    empty = (np.zeros(0, dtype=np.int64), X[:0], 0.0)
    if n_j == 0:
        return empty
    s_seq, s_compress = ss.spawn(2)
    if wblock is None:
        mass, seq = float(n_j), np.arange(n_j, dtype=np.int64)
    else:
        w = check_weights(wblock, n_j, "weights", owner, nonnegative=True, allow_2d=False)
        mass = float(w.sum())
        if not mass > 0:
            return empty
        seq = resample_sequence(w / mass, s_seq)
    X64 = np.ascontiguousarray(X, dtype=np.float64)
    threads, memory = _graph.task_resources(cfg["memory"], cfg["threads"], cfg["memory_fraction"],
                                           cfg["host_threads"])
    with options(memory=min(memory, COMPRESSPP_ENGINE_MEMORY), threads=threads, progress=False):
        local = compress_indices(kernel, kernel, X64, seq, leaf, delta, s_compress, swap=swap)
    return start + local, X[local], mass


def _weighted_measure(weights, X, owner):
    """Weights as a dask array chunked like X's rows (None stays None); sign checked now (NumPy) or in the tasks."""
    da = require_dask()
    n = X.shape[0]
    if weights is None:
        return None
    if not _graph.is_dask(weights):
        from ..compress._mmd import normalized_weights
        w = normalized_weights(weights, n, "weights", owner)  # refuses negative, NaN and a zero sum now
        return da.from_array(w, chunks=(X.chunks[0],), name=False)
    if weights.ndim != 1 or weights.shape[0] != n:
        raise param_error("weights", owner, f"an array of shape ({n},), one row per data point", weights,
                          shown=f"shape {weights.shape}")
    for c in weights.chunks[0]:
        _graph._known(c, "weights", owner)
    return weights.rechunk((X.chunks[0],))


def kernel_thin(X, size, kernel="gaussian", *, bandwidth=None, method="auto", random_state=None, delta=0.5, g=4,
                alpha=0.5, weights=None, return_result=False, with_mmd=False):
    """``kernel_thin`` with a dask X (or dask weights): Compress++ over the chunks (see the module docs)."""
    from ..compress import METHODS, ThinningResult
    from ..compress._kernelspec import check_kernel
    from ..compress._kt import _check_delta, run_kt, seed_sequence
    from ..compress._resolve import resolve_kernel
    import dask
    owner = "kernel_thin"
    require_dask()
    X = _as_points(X, "X", owner)
    n, d = X.shape
    if n < 1:
        raise param_error("X", owner, "an array with at least 1 row(s)", X, shown=f"shape {X.shape}")
    if d < 1:
        raise param_error("X", owner, "an array with at least 1 feature", X, shown=f"shape {X.shape}")
    size = check_param(size, "size", owner, Integral(low=1, high=n))
    method = check_param(method, "method", owner, OneOf(*METHODS))
    if method not in DASK_METHODS:
        raise NotSupportedError(str(param_error(
            "method", owner, "'auto', 'compress++' or 'compress' when X or weights is a dask array", method,
            hint="The other methods need all n points in one place; compute X first (X.compute()).")))
    rule = "requested"
    if method == "auto":
        method, rule = "compress++", "auto: dask input, so compress++ over the chunks"
    delta = _check_delta(delta, owner)
    g = check_param(g, "g", owner, Integral(low=0, high=20))
    check_param(alpha, "alpha", owner, Real(low=0, high=1, low_open=True))
    return_result = check_param(return_result, "return_result", owner, OneOf(False, True))
    with_mmd = check_param(with_mmd, "with_mmd", owner, OneOf(False, True))
    if isinstance(kernel, str) and bandwidth is None:
        raise param_error("bandwidth", owner, "a float > 0 with dask inputs (or a Kernel object)", None,
                          hint="The median heuristic would need the whole data; compute it on a sample, e.g. "
                               "kernelkit.median_bandwidth(X[:2000].compute()).")
    kernel = check_kernel(resolve_kernel(kernel, bandwidth, None, owner), owner)
    W = _weighted_measure(weights, X, owner)
    ss = seed_sequence(random_state, owner)
    swap = method == "compress++"
    t0 = time.perf_counter()
    if size == n and W is None:  # as locally: every point, in order
        idx = np.arange(n, dtype=np.int64)
        points = np.asarray(X.compute()) if return_result or with_mmd else None
    else:
        idx, points = _run(X, W, size, kernel, g, delta, ss, swap, owner, run_kt, dask)
    seconds = time.perf_counter() - t0
    if not (return_result or with_mmd):
        return idx
    value = None
    if with_mmd:
        from ._methods import mmd as dask_mmd
        value = float(dask_mmd(X, points, kernel, weights_x=weights))
    return ThinningResult(idx, points, method, kernel, kernel, value, seconds, rule)


def _run(X, W, size, kernel, g, delta, ss, swap, owner, run_kt, dask):
    from ..compress._compresspp import COMPRESSPP_ENGINE_MEMORY
    n = X.shape[0]
    rows = [int(c) for c in X.chunks[0]]
    starts = np.concatenate([[0], np.cumsum(rows)[:-1]]).astype(np.int64)
    blocks = X.to_delayed().ravel()
    wblocks = [None] * len(blocks) if W is None else list(W.to_delayed().ravel())
    s_parts, s_final = ss.spawn(2)
    seeds = s_parts.spawn(len(blocks))  # one stream per chunk, by position: independent of the scheduler
    live = max(1, sum(r > 0 for r in rows))
    cfg = _graph._engine_cfg(None, None, None, _graph.resolve_graph(owner))
    gg = g
    while True:
        leaves = [_leaf(gg, size, r, n) for r in rows]
        tasks = [dask.delayed(_partition_task, pure=False)(b, w, int(s), leaf, delta / (2 * live), seed, swap,
                                                           kernel, cfg)
                 for b, w, s, leaf, seed in zip(blocks, wblocks, starts, leaves, seeds)]
        parts = dask.compute(*tasks)
        pool = sum(p[0].size for p in parts)
        if pool >= size or all(leaf >= r for leaf, r in zip(leaves, rows)):
            break
        gg += 1  # too few points came out (tiny chunks): oversample more, as local Compress++
    parts = [p for p in parts if p[0].size]
    total = sum(p[2] for p in parts)
    if not total > 0:
        raise param_error("weights", owner, "non-negative weights with a positive sum", None, shown="sum 0")
    idx = np.concatenate([p[0] for p in parts])
    pts = np.concatenate([p[1] for p in parts])
    w = np.concatenate([np.full(p[0].size, p[2] / (total * p[0].size)) for p in parts])
    uniform = np.ptp(w) <= 1e-12 * w.max()
    if idx.size < size:  # only when whole chunks have zero weight
        raise param_error("size", owner, f"an int <= {idx.size}, the rows of the chunks with positive weight",
                          size)
    if idx.size == size:
        return idx, pts
    pts64 = np.ascontiguousarray(pts, dtype=np.float64)
    with options(memory=min(get_options().memory, COMPRESSPP_ENGINE_MEMORY)):
        local = run_kt(pts64, size, kernel, kernel, delta / 2, s_final, None if uniform else w / w.sum(),
                       swap=swap)
    return idx[local], pts[local]
