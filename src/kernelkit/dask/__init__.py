r"""Kernel sums over dask arrays: the engine's reductions as task graphs (``pip install kernelkit[dask]``).

:func:`kernelkit.kernel_sum`, :func:`kernelkit.kernel_logsumexp` and
:func:`kernelkit.kernel_topk` hand dask arrays over to this module and return
dask arrays (lazy); NumPy in still gives NumPy out. The functions here are
the same reductions with the shape of the graph as explicit keywords:

* one task per (X block, Y block) pair runs the local engine (``backend``:
  fused, numpy or torch) on its two blocks, with explicit ``threads`` (the
  worker's cores divided by its threads) and a memory budget taken from the
  worker's memory limit (see :func:`task_resources`);
* a tree of fan-in ``fan_in`` (one task per group of partials, the last one
  per Y block rounding to the output dtype) merges the partials over the X blocks: sums are
  added in float64, log-sum-exps merged exactly in the log domain
  (:math:`\log(e^a + e^b) = \max + \log(e^{a-\max} + e^{b-\max})`), top-k
  candidates (each block's top-k, indices offset to rows of the whole X)
  merged by value, ties to the smaller index, as the local engine.

X's row chunks are kept as given; an operand passed as a NumPy array is cut
into row blocks so that a task holds about ``pairs_per_task`` pairs. Point
and weight values are checked inside the tasks (NaN raises the engine's
error at compute time); shapes, kernels and options are checked at once.
Importing :mod:`kernelkit` or this module never imports dask.
"""

from __future__ import annotations

from ._graph import GraphOptions, graph_context, is_dask, task_resources
from . import _graph
from ._regression import DaskFalkonSystem

__all__ = ["kernel_sum", "kernel_logsumexp", "kernel_topk", "graph_options", "task_resources", "GraphOptions",
           "is_dask", "compresspp",
           "DaskFalkonSystem"]


def graph_options(*, pairs_per_task=None, fan_in=None, memory_fraction=None):
    """Set the shape of the dask graphs for the duration of a ``with`` block.

    Parameters
    ----------
    pairs_per_task : int >= 1, optional
        Target number of (x, y) pairs per task when an operand given as a
        NumPy array is cut into row blocks (default 2**27, about 1.3e8: a
        task then runs long enough, about 0.1 s per core, that the
        scheduler's cost per task, about 1 ms, stays below 1%). Dask
        operands keep their own chunks.
    fan_in : int >= 2, optional
        Number of partials merged by one task of the reduction tree over
        the X blocks (default 8).
    memory_fraction : float in (0, 1], optional
        Share of a worker's memory limit (divided by its threads) that one
        task's engine call may use for its tiles (default 0.25; the rest
        holds the blocks themselves and dask's own buffers). A task whose
        blocks, weights and output partial do not fit in that rest raises
        InvalidValueError before it allocates (instead of the worker being
        killed for memory and the task rerun elsewhere).

    Examples
    --------
    >>> import kernelkit.dask as kkd
    >>> with kkd.graph_options(pairs_per_task=10**8, fan_in=4):
    ...     pass
    """
    return graph_context(pairs_per_task=pairs_per_task, fan_in=fan_in, memory_fraction=memory_fraction)


def kernel_sum(kernel, X, Y, weights=None, *, memory=None, threads=None, backend=None, pairs_per_task=None,
               fan_in=None, memory_fraction=None):
    r"""Weighted kernel sums :math:`out_{j,:} = \sum_i k(x_i, y_j)\, W_{i,:}` as a dask array.

    Parameters
    ----------
    kernel : Kernel
        The kernel k.
    X : dask or NumPy array of shape (n, d)
        Source points x_i, chunked by rows (units of the data).
    Y : dask or NumPy array of shape (m, d)
        Query points y_j.
    weights : dask or NumPy array of shape (n,) or (n, p), optional
        W (any sign), rechunked like X's rows. Default: all ones.
    memory, threads, backend : optional
        Engine options of each task (memory budget in bytes or a string
        such as "256MB", CPU threads, per-chunk backend 'auto', 'fused',
        'numpy' or 'torch'); the worker's limits cap memory and threads.
    pairs_per_task, fan_in, memory_fraction : optional
        Graph shape for this call (see :func:`graph_options`).

    Returns
    -------
    out : dask array of shape (m,) or (m, p)
        float32 when X and Y are both float32, else float64; the partial
        sums are added in float64 and rounded once at the end.
    """
    return _graph.kernel_sum(kernel, X, Y, weights, memory=memory, threads=threads, backend=backend,
                             pairs_per_task=pairs_per_task, fan_in=fan_in, memory_fraction=memory_fraction)


def kernel_logsumexp(kernel, X, Y, log_weights=None, *, memory=None, threads=None, backend=None,
                     pairs_per_task=None, fan_in=None, memory_fraction=None):
    r"""Log-domain kernel sums :math:`out_{j,:} = \log \sum_i \exp(\log k(x_i, y_j) + L_{i,:})` as a dask array.

    Each task's log-sum-exp is exact in the log domain (local engine), and
    the tree merges them with :math:`m + \log \sum_b e^{s_b - m}`, m the
    largest partial, so nothing underflows. Only for positive kernels.

    Parameters
    ----------
    kernel : Kernel
        A positive kernel.
    X : dask or NumPy array of shape (n, d)
        Source points, chunked by rows.
    Y : dask or NumPy array of shape (m, d)
        Query points.
    log_weights : dask or NumPy array of shape (n,) or (n, p), optional
        L, log of non-negative weights (-inf for zero weights). Default 0.
    memory, threads, backend : optional
        Engine options of each task (see :func:`kernel_sum`).
    pairs_per_task, fan_in, memory_fraction : optional
        Graph shape for this call (see :func:`graph_options`).

    Returns
    -------
    out : dask array of shape (m,) or (m, p)
        float32 when X and Y are both float32, else float64.
    """
    return _graph.kernel_logsumexp(kernel, X, Y, log_weights, memory=memory, threads=threads, backend=backend,
                                   pairs_per_task=pairs_per_task, fan_in=fan_in, memory_fraction=memory_fraction)


def kernel_topk(kernel, X, Y, k, *, memory=None, threads=None, backend=None, pairs_per_task=None, fan_in=None,
                memory_fraction=None):
    """The k largest kernel values k(x_i, y_j) over i for every query y_j, as dask arrays.

    Each task takes the top-k of its X block (indices offset to rows of the
    whole X); the tree keeps the k best candidates, sorted by value
    (decreasing) and ties broken by the smaller index, as the local engine.

    Parameters
    ----------
    kernel : Kernel
        The kernel k.
    X : dask or NumPy array of shape (n, d)
        Source points, chunked by rows (at most 2**53 rows).
    Y : dask or NumPy array of shape (m, d)
        Query points.
    k : int in [1, n]
        Number of neighbours.
    memory, threads, backend : optional
        Engine options of each task (see :func:`kernel_sum`).
    pairs_per_task, fan_in, memory_fraction : optional
        Graph shape for this call (see :func:`graph_options`).

    Returns
    -------
    values : dask array of shape (m, k)
        Sorted in decreasing order, float32 when X and Y are both float32.
    indices : dask int64 array of shape (m, k)
        Rows of X.
    """
    return _graph.kernel_topk(kernel, X, Y, k, memory=memory, threads=threads, backend=backend,
                              pairs_per_task=pairs_per_task, fan_in=fan_in, memory_fraction=memory_fraction)


def compresspp(X, size, kernel, *, bandwidth=None, g=4, delta=0.5, random_state=None, weights=None,
               return_result=False, with_mmd=False):
    r"""Compress++ of a row-chunked dask array: each chunk compressed where it lives, then merged and thinned.

    Chunk j (:math:`n_j` rows, share :math:`\pi_j = n_j / n`, or its share of
    the weights) is one bin of Compress++: a task runs Compress on it, with
    leaves of :math:`\lceil 4^{g+1}\,\mathrm{size}^2 n_j / n^2 \rceil`
    points, and keeps about :math:`2^{g+1}\,\mathrm{size}\,\pi_j`
    rows. The client joins the kept rows, each weighing
    :math:`\pi_j / |C_j|`, into a pool of about :math:`2^{g+1}` size points,
    and kernel-thins the pool to ``size`` (as local Compress++ thins its
    four bins' union). The triangle inequality bounds the result:

    .. math::

        \mathrm{MMD}(\mathbb{P}_n, C) \le \sum_j \pi_j\, \mathrm{MMD}(\mathbb{P}_j, Q_j)
        + \mathrm{MMD}(Q, C),

    with :math:`Q_j` chunk j's kept rows, Q the weighted pool and C the output.
    The last term is local Compress++'s final thinning term. For P equal
    chunks the first is at most P/4 (worst case) and typically
    :math:`\sqrt{P/4}` times local Compress++'s pool term (the halvings are
    symmetrized and the chunks use independent seeds). Both are small next to
    the final term while :math:`2^{g+1} \gg P`. The module
    ``kernelkit.dask._compress`` has the full argument. ``kernelkit.compresspp``
    and ``kernelkit.kernel_thin(method='compress++' | 'compress' | 'auto')``
    hand dask inputs over to this function.

    Parameters
    ----------
    X : dask array of shape (n, d)
        Input points (units of the data), chunked by rows; the chunks are the
        partitions (empty chunks are skipped). Values are checked in the tasks.
    size : int in [1, n]
        Number of output points.
    kernel : Kernel or str
        Target kernel. A name needs ``bandwidth`` here (the median heuristic
        would need the whole data).
    bandwidth : float > 0, optional
        Bandwidth of a kernel given by name (units of the data).
    g : int in [0, 20]
        Oversampling: the pool has about ``2^(g+1) size`` points, as in
        local Compress++. For P > 4 chunks,
        ``g + ceil(log4(P / 4))`` restores local Compress++'s pool term.
    delta : float in (0, 1]
        Failure probability (dimensionless): ``delta / 2`` is split over the
        chunks and ``delta / 2`` goes to the final thinning.
    random_state : None, int >= 0, SeedSequence or Generator
        ``SeedSequence(random_state).spawn(2)``: one stream spawned into one
        child per chunk (by position), one for the final thinning, so the
        result does not depend on the scheduler.
    weights : NumPy or dask array of shape (n,), optional
        Non-negative weights of the target measure (rechunked like X).
    return_result : bool
        Return a :class:`kernelkit.compress.ThinningResult`.
    with_mmd : bool
        Also compute the exact MMD to the input (``n^2`` kernel evaluations,
        as a dask graph); implies ``return_result``.

    Returns
    -------
    indices : int64 NumPy array of shape (size,), or ThinningResult
        Rows of the whole X (computed now, not lazy).

    Examples
    --------
    >>> import numpy as np, dask.array as da, kernelkit as kk
    >>> X = da.from_array(np.random.default_rng(0).standard_normal((4096, 2)), chunks=1024)
    >>> idx = kk.compresspp(X, 64, kk.Gaussian(2.0), random_state=0)
    >>> idx.shape
    (64,)
    """
    from ._compress import kernel_thin
    return kernel_thin(X, size, kernel, bandwidth=bandwidth, method="compress++", g=g, delta=delta,
                       random_state=random_state, weights=weights, return_result=return_result, with_mmd=with_mmd)
