r"""Exact spatial pruning of kernel sums for compactly supported kernels in low dimension.

A compactly supported kernel is exactly zero beyond its support radius R:
``k(x, y) = 0`` (log k = -inf) when ``r(x, y) >= R``. For the six compact
families (Epanechnikov, Biweight, Triweight, Tophat, Triangular, Cosine of
:mod:`kernelkit.kernels`) R is the bandwidth h, in data units, and r the
kernel's distance (Euclidean, or L1 for ``distance="l1"``); positive scalings
keep R, a sum of compact kernels has the largest R of its terms, a product
with a compact factor the smallest R of its compact factors. A pair farther
apart than R contributes exactly 0 to

.. math:: out_{j,:} = \sum_i k(x_i, y_j) W_{i,:}
          \quad\text{and}\quad \log \sum_i \exp(\log k(x_i, y_j) + L_{i,:}),

so skipping it changes nothing but the order of the summation: this is not an
approximation.

Method. Both point sets are cut into leaves of an adaptive octree (the
``2^d``-tree of Morton cells: a cell is split while it holds more than
``LEAF_POINTS`` data points, or ``BLOCK_QUERIES`` queries), in Morton order,
each with the tight bounding box of its points. A block of queries (one query
leaf) is paired with the data leaves whose box-to-box distance is at most R
(a two-level test: groups of ``GROUP`` consecutive leaves first, then the
leaves of the groups that pass), and the engine's backend (fused or NumPy) runs
on (the queries of the block, the gathered points of those leaves) only. The
test keeps a safety margin for rounding (the engine's computed distance of a
pair may be below the exact one by a few units in the last place), so that no
pair the unpruned engine would see as inside the support is skipped.

Log domain. Since ``0 <= k <= 1`` for these kernels, the pruned log-sum-exp is
computed from the pruned kernel sum with weights ``exp(L - max L)`` (column
maxima): ``log S + max L``; that is exact wherever S is well above the
underflow range (``S >= n * tiny / eps`` of the working dtype: every term
lost to underflow is then below ``eps**2`` of S), and the queries (rows)
where it is not are computed again by the backend's log-sum-exp on the same
pruned blocks, so they get the same values as the unpruned log-sum-exp. S = 0
exactly gives -inf without that redo in float64 when no weight
``exp(L - max L)`` is below 1e-200: a positive value of these kernels is then
large enough that no term k w underflows, so S = 0 means that no point is in
the support (-inf, as unpruned); float32 rows with S = 0 are always redone. The sum is cheaper than the log-sum-exp for these kernels (no log
of the profile, no exp per pair).

When it runs (``prune=None``, the default): the kernel has a compact support
(:func:`support`), d <= ``MAX_D``, the backend is the fused or the NumPy one,
n * m >= ``MIN_PAIRS``, the support radius is below the diagonal of the box
of the data and queries, and the pairs the pruning keeps are at most
``MAX_KEPT`` of n * m; otherwise the unpruned backend runs as before.
``prune=True`` skips the last three rules (for tests and for callers who know
the data); ``prune=False`` never prunes.
"""

from __future__ import annotations

import dataclasses
import functools
import math

import numpy as np

from .._validation import OneOf, check_param, param_error
from ..kernels import (Biweight, Cosine, Epanechnikov, ProductKernel, ScaledKernel, SumKernel, Tophat, Triangular,
                       Triweight)
from ._tiling import progress_bar

__all__ = ["support", "kernel_sum", "kernel_logsumexp", "MAX_D", "MIN_PAIRS", "MAX_KEPT"]

#: the compactly supported families: zero for r >= bandwidth (subclasses may change the formula: not pruned)
COMPACT_FAMILIES = (Epanechnikov, Biweight, Triweight, Tophat, Triangular, Cosine)
#: largest dimension pruned (the boxes of 2^d-tree cells stop pruning well above it)
MAX_D = 8
#: fewer pairs n * m than this run unpruned (the partition costs about as much as the sum)
MIN_PAIRS = 1 << 22
#: pruning runs only if it keeps at most this fraction of the n * m pairs
MAX_KEPT = 0.5
#: points per data leaf (at most, unless points coincide), queries per query block
LEAF_POINTS = 64
BLOCK_QUERIES = 96
#: data leaves per group in the first level of the box test
GROUP = 16
#: bits per coordinate of the Morton codes (d >= 2); codes have at most 52 bits
_BITS = 12


def support(kernel):
    """The support of ``kernel``: ``(R, l1)`` with k = 0 wherever r >= R, or None if none is known.

    Parameters
    ----------
    kernel : Kernel

    Returns
    -------
    (float, bool) or None
        R, the support radius (data units), and whether the radius is one of the L1 distance
        (``distance="l1"``; else Euclidean). None for kernels without a compact support here
        (subclasses of the compact families are not trusted: they may change the formula).
    """
    kind = type(kernel)
    if kind in COMPACT_FAMILIES:
        return float(kernel.bandwidth), kernel.distance == "l1"
    if kind is ScaledKernel:
        return support(kernel.base)
    if kind is SumKernel:
        parts = [support(k) for k in kernel.kernels]
        if any(p is None for p in parts):
            return None
        return max(p[0] for p in parts), all(p[1] for p in parts)
    if kind is ProductKernel:   # zero wherever one compact factor is
        parts = [p for p in map(support, kernel.kernels) if p is not None]
        return min(parts, key=lambda p: (p[0], not p[1])) if parts else None
    return None


# --- partition --------------------------------------------------------------------------------------

def _rows(A, index):
    """``A[index]`` for an integer index array along the first axis, by ``np.take`` (which gathers rows
    of a 2-D array several times faster than fancy indexing: 3.6 ms against 35 ms for 1e5 x 3, NumPy 2.4)."""
    return np.take(A, index, axis=0)


def _unsort(out, order):
    """``res`` with ``res[order] = out`` (rows), by a gather through the inverse permutation."""
    inv = np.empty_like(order)
    inv[order] = np.arange(order.size)
    return np.take(out, inv, axis=0)


@functools.lru_cache(maxsize=None)
def _spread(bits, d):
    """Table v -> v with its bits spread d apart (bit j to bit j * d), for v < 2^bits."""
    v = np.arange(1 << bits, dtype=np.int64)
    out = np.zeros_like(v)
    for j in range(bits):
        out |= ((v >> j) & 1) << (j * d)
    return out


@dataclasses.dataclass
class _Leaves:
    """Leaves of a point set in Morton order: ``order`` (the permutation), ``starts`` (P + 1 offsets into
    the permuted points), and the bounding boxes ``lo``, ``hi`` (P, d) of the points of each leaf (float64)."""

    order: np.ndarray
    starts: np.ndarray
    lo: np.ndarray
    hi: np.ndarray

    @property
    def counts(self):
        return np.diff(self.starts)


def _extremes(P):
    """Column minima and maxima of P (n, d) as float64 (d,), one strided column at a time (NumPy's
    ``P.min(axis=0)`` over rows of a few values is many times slower)."""
    cols = [P[:, k] for k in range(P.shape[1])]
    return (np.array([c.min() for c in cols], dtype=np.float64), np.array([c.max() for c in cols], dtype=np.float64))


def _leaves(P, size):
    """The leaves of the adaptive 2^d-tree of the rows of P: a Morton cell is split while it holds more
    than ``size`` points (cells of coinciding points stay whole)."""
    n, d = P.shape
    bits = 40 if d == 1 else min(_BITS, 52 // d)
    PT = np.ascontiguousarray(P.T, dtype=np.float64)   # (d, n): each coordinate contiguous
    lo, hi = PT.min(axis=1), PT.max(axis=1)
    span = hi - lo
    scale = np.where(span > 0, (1 << bits) / np.where(span > 0, span, 1.0), 0.0)
    top = (1 << bits) - 1
    table = _spread(bits, d) if d > 1 else None
    code = None
    for k in range(d):
        q = np.minimum(((PT[k] - lo[k]) * scale[k]).astype(np.int64), top)
        v = q if table is None else table[q]
        code = v if code is None else code | (v << k)
    order = np.argsort(code)
    c = code[order]
    # the level at which consecutive codes first differ: cells of level l are the codes >> (d (bits - l))
    x = c[1:] ^ c[:-1]
    e = np.frexp(x.astype(np.float64))[1].astype(np.int64)   # bit length (codes < 2^53: exact)
    level = np.where(x == 0, bits + 1, bits - (e - 1) // d).astype(np.uint8)
    by_level = np.argsort(level, kind="stable") + 1           # boundary positions, by level then position
    ends = np.cumsum(np.bincount(level, minlength=bits + 2))
    starts = np.zeros(1, dtype=np.int64)
    for lev in range(1, bits + 1):
        big = np.diff(np.append(starts, n)) > size
        if not big.any():
            break
        cand = by_level[ends[lev - 1]:ends[lev]]
        if cand.size:
            keep = cand[big[np.searchsorted(starts, cand, side="right") - 1]]
            if keep.size:
                starts = np.sort(np.concatenate([starts, keep]))
    PTs = np.take(PT, order, axis=1)
    return _Leaves(order, np.append(starts, n), np.ascontiguousarray(np.minimum.reduceat(PTs, starts, axis=1).T),
                   np.ascontiguousarray(np.maximum.reduceat(PTs, starts, axis=1).T))


def _box_dist(alo, ahi, blo, bhi, l1):
    """Box-to-box distances (squared Euclidean, or L1), broadcast over the leading axes."""
    gap = np.maximum(np.maximum(blo - ahi, alo - bhi), 0.0)
    return gap.sum(axis=-1) if l1 else np.einsum("...k,...k->...", gap, gap)


def _near_pairs(qlo, qhi, dlo, dhi, thr, l1, memory=1 << 27):
    """(block, leaf) index pairs with box distance <= thr, sorted by block then leaf: first against the
    boxes of groups of ``GROUP`` consecutive leaves, then against the leaves of the groups that pass
    (compiled where the fused engine is built, else in NumPy: the same test)."""
    from . import _fused
    ext = _fused._ext
    if ext is not None and hasattr(ext, "near_pairs"):
        c = [np.ascontiguousarray(a, dtype=np.float64) for a in (qlo, qhi, dlo, dhi)]
        return ext.near_pairs(*c, float(thr), int(bool(l1)), int(GROUP))
    return _near_pairs_numpy(qlo, qhi, dlo, dhi, thr, l1, memory)


def _near_pairs_numpy(qlo, qhi, dlo, dhi, thr, l1, memory=1 << 27):
    """:func:`_near_pairs` in NumPy (the reference, and the path without the compiled engine)."""
    P, d = dlo.shape
    pad = -P % GROUP
    glo = np.concatenate([dlo, np.full((pad, d), np.inf)]).reshape(-1, GROUP, d)
    ghi = np.concatenate([dhi, np.full((pad, d), -np.inf)]).reshape(-1, GROUP, d)
    glo_box, ghi_box = glo.min(axis=1), ghi.max(axis=1)
    ng = glo.shape[0]
    # temporaries of about 16 MB at most, and within a quarter of the memory budget (a few arrays of 8 bytes)
    rows = max(1, min(1 << 21, memory // 160) // max(1, ng * d))
    bs, ls = [], []
    for b0 in range(0, qlo.shape[0], rows):
        near = _box_dist(qlo[b0:b0 + rows, None], qhi[b0:b0 + rows, None], glo_box[None], ghi_box[None], l1) <= thr
        b1, g1 = np.nonzero(near)
        b1 += b0
        for s0 in range(0, b1.size, rows * 8):   # the leaves of the groups that pass, (pairs, GROUP) at a time
            bb, gg = b1[s0:s0 + rows * 8], g1[s0:s0 + rows * 8]
            ok = _box_dist(qlo[bb][:, None], qhi[bb][:, None], glo[gg], ghi[gg], l1) <= thr
            i, j = np.nonzero(ok)
            bs.append(bb[i])
            ls.append(gg[i] * GROUP + j)
    if not bs:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    return np.concatenate(bs), np.concatenate(ls)


class _Plan:
    """The pruned problem: sorted points and queries, and for every query block its data rows."""

    def __init__(self, X, Y, R, l1, xs=None, memory=1 << 27, flat=False):
        n, d = X.shape
        self.n, self.m, self.d = n, Y.shape[0], d
        self.support = (R, l1)
        self.xs = _leaves(X, LEAF_POINTS) if xs is None else xs
        self.ys = _leaves(Y, BLOCK_QUERIES)
        eps = float(np.finfo(X.dtype).eps)
        # safety margin: the engine's distance may be below the exact one by rounding (relative, and for
        # the Gram form of the NumPy reference absolute, from the extent of the data)
        rel = 64.0 * (d + 4) * eps
        if l1:
            self.thr = R * (1.0 + rel)
        else:
            lo = np.minimum(self.xs.lo.min(axis=0), self.ys.lo.min(axis=0))
            hi = np.maximum(self.xs.hi.max(axis=0), self.ys.hi.max(axis=0))
            slack = 64.0 * (d + 2) * eps * float(np.sum((hi - lo) ** 2))
            self.thr = R * R * (1.0 + rel) + slack
        self.block, self.leaf = _near_pairs(self.ys.lo, self.ys.hi, self.xs.lo, self.xs.hi, self.thr, l1, memory)
        # a flat kernel (Tophat: k = 1 exactly inside the support) takes the (block, leaf) pairs whose farthest
        # points are well inside the support as the leaf's weight sums, without evaluating the pairs
        self.inside_block = self.inside_leaf = np.zeros(0, dtype=np.int64)
        if flat and self.block.size:
            qlo, qhi = self.ys.lo[self.block], self.ys.hi[self.block]
            dlo, dhi = self.xs.lo[self.leaf], self.xs.hi[self.leaf]
            far = np.maximum(np.abs(qhi - dlo), np.abs(dhi - qlo))
            far = far.sum(axis=1) if l1 else np.einsum("ij,ij->i", far, far)
            inside = far < (R * (1.0 - rel) if l1 else R * R * (1.0 - rel) - slack)
            self.inside_block, self.inside_leaf = self.block[inside], self.leaf[inside]
            self.block, self.leaf = self.block[~inside], self.leaf[~inside]
        lens = self.xs.counts[self.leaf]
        self.rows_per_block = np.bincount(self.block, weights=lens, minlength=self.ys.lo.shape[0]).astype(np.int64)
        self.kept = int(np.dot(self.ys.counts, self.rows_per_block))

    def batches(self, max_rows):
        """Per batch of blocks: (first block, last block + 1, offsets into rows, rows of the sorted points)."""
        B = self.ys.lo.shape[0]
        pair_start = np.searchsorted(self.block, np.arange(B + 1))
        b0 = 0
        cum = np.concatenate([[0], np.cumsum(self.rows_per_block)])
        while b0 < B:
            b1 = int(np.searchsorted(cum, cum[b0] + max(max_rows, 1), side="right")) - 1
            b1 = min(B, max(b1, b0 + 1))
            p0, p1 = pair_start[b0], pair_start[b1]
            leaf = self.leaf[p0:p1]
            lens = self.xs.counts[leaf]
            first = np.cumsum(lens) - lens
            rows = np.repeat(self.xs.starts[leaf] - first, lens) + np.arange(int(lens.sum()))
            yield b0, b1, cum[b0:b1 + 1] - cum[b0], rows
            b0 = b1


def _decide(kernel, X, Y, opts, prune, backend, owner):
    """The support ``(R, l1)`` when the pruned path applies to this call (rules in the module docstring),
    else None; ``prune=True`` where pruning cannot run is an error."""
    prune = check_param(prune, "prune", owner, OneOf(False, True) | None)
    if prune is None:   # the call inherits kernelkit.options(prune=...)
        prune = opts.prune
    if prune is False:
        return None
    sup = support(kernel)
    name = getattr(backend, "__name__", "").rsplit(".", 1)[-1]
    if prune is True:
        if sup is None:
            raise param_error("prune", owner, "False or None for a kernel without a compact support", True,
                              hint=f"{kernel!r} is not zero beyond a radius (pruning needs Epanechnikov, Biweight, "
                                   "Triweight, Tophat, Triangular or Cosine kernels, their positive scalings, sums, "
                                   "or a product with one).")
        if X.shape[1] > MAX_D or name not in ("_fused", "_numpy"):
            raise param_error("prune", owner, f"False or None here (pruning needs d <= {MAX_D} and the fused or "
                              "numpy backend)", True, hint=f"Got d = {X.shape[1]}, backend {name.lstrip('_')!r}.")
        return sup
    if sup is None or X.shape[1] > MAX_D or name not in ("_fused", "_numpy"):
        return None
    if X.shape[0] * Y.shape[0] < MIN_PAIRS:
        return None
    (xlo, xhi), (ylo, yhi) = _extremes(X), _extremes(Y)
    lo, hi = np.minimum(xlo, ylo), np.maximum(xhi, yhi)
    diag = float(np.sum(np.abs(hi - lo))) if sup[1] else math.sqrt(float(np.sum((hi - lo) ** 2)))
    return sup if sup[0] < diag else None


def _run(pl, Y, rows_source, run, init, combine, opts, desc, only=None):
    """``run(Xg, Yb, Wg)`` on every block of ``pl``; (m, p) float64 in the original query order.

    ``rows_source`` = (sorted points, sorted weights); blocks without points get ``init``; the results of
    the pieces of a block's points (cut to the memory budget) are merged by ``combine``. Each call runs on
    one thread; the blocks of a batch are shared among ``opts.threads`` Python threads in contiguous runs
    (the compiled engine releases the GIL), so every block's sum is the same whatever the thread count.
    ``only``: a boolean mask of the blocks to run (the others keep ``init``)."""
    Xs, Ws = rows_source
    p = Ws.shape[1]
    item = Xs.itemsize
    threads = opts.resolved_threads()
    # gathered rows of a batch (indices; copies of points and weights, per thread) within a quarter of the budget
    max_rows = max(1024, opts.memory // (4 * (8 + item * (pl.d + p) * threads)))
    Ys = _rows(Y, pl.ys.order)
    out = np.full((pl.m, p), init, dtype=np.float64)
    qs = pl.ys.starts
    if pl.inside_block.size:   # flat kernel: the leaves inside the support of a whole block, as weight sums
        wsum = np.add.reduceat(Ws.astype(np.float64, copy=False), pl.xs.starts[:-1], axis=0)
        interior = np.zeros((pl.ys.lo.shape[0], p))
        np.add.at(interior, pl.inside_block, wsum[pl.inside_leaf])
        out += np.repeat(interior, pl.ys.counts, axis=0)

    def blocks(b0, b1, offs, rows):
        for b in range(b0, b1):
            r = rows[offs[b - b0]:offs[b - b0 + 1]]
            if r.size and (only is None or only[b]):
                Yb = Ys[qs[b]:qs[b + 1]]
                acc = None
                for c0 in range(0, r.size, max_rows):
                    rc = r[c0:c0 + max_rows]
                    part = run(Xs[rc], Yb, Ws[rc])
                    acc = part if acc is None else combine(acc, part)
                out[qs[b]:qs[b + 1]] = combine(out[qs[b]:qs[b + 1]], acc)

    pool = None
    if threads > 1 and pl.ys.lo.shape[0] > 1:
        from concurrent.futures import ThreadPoolExecutor
        pool = ThreadPoolExecutor(max_workers=threads)
    try:
        with progress_bar(pl.m, opts.progress, desc) as bar:
            for b0, b1, offs, rows in pl.batches(max_rows):
                if pool is None or b1 - b0 < 2:
                    blocks(b0, b1, offs, rows)
                else:   # contiguous runs of blocks with about equal numbers of gathered rows
                    cuts = np.searchsorted(offs, np.linspace(0, offs[-1], threads + 1)[1:-1])
                    edges = [b0] + [b0 + int(c) for c in cuts] + [b1]
                    futures = [pool.submit(blocks, lo, hi, offs[lo - b0:] - offs[lo - b0], rows[offs[lo - b0]:])
                               for lo, hi in zip(edges[:-1], edges[1:]) if hi > lo]
                    for f in futures:
                        f.result()
                bar.update(int(qs[b1] - qs[b0]))
    finally:
        if pool is not None:
            pool.shutdown()
    return _unsort(out, pl.ys.order)


def _ranges(pl):
    """Each query block's data rows as maximal runs of consecutive leaves (rows of the sorted points):
    (rbeg, rend) per block into (rlo, rhi)."""
    B = pl.ys.lo.shape[0]
    blk, leaf = pl.block, pl.leaf
    new = np.ones(leaf.size, dtype=bool)
    new[1:] = (blk[1:] != blk[:-1]) | (leaf[1:] != leaf[:-1] + 1)
    first = np.flatnonzero(new)
    last = np.append(first[1:] - 1, leaf.size - 1) if first.size else first
    rlo, rhi = pl.xs.starts[leaf[first]], pl.xs.starts[leaf[last] + 1]
    edges = np.searchsorted(blk[first], np.arange(B + 1))
    return edges[:-1], edges[1:], rlo, rhi


def _interior(pl, Ws):
    """(m sorted queries, p): the weight sums of the leaves wholly inside the support of each block
    (a flat kernel's pairs that were not evaluated), or None."""
    if not pl.inside_block.size:
        return None
    wsum = np.add.reduceat(Ws.astype(np.float64, copy=False), pl.xs.starts[:-1], axis=0)
    interior = np.zeros((pl.ys.lo.shape[0], Ws.shape[1]))
    np.add.at(interior, pl.inside_block, wsum[pl.inside_leaf])
    return np.repeat(interior, pl.ys.counts, axis=0)


def _run_compiled(pl, fp, op, Ws, opts, desc, only=None):
    """The pruned reduction in one compiled call per batch of blocks (``fp``: the fused backend's
    :func:`~kernelkit.engine._fused.ranges_plan` on the sorted points and queries); sums, or
    log-sum-exps (``op="logsumexp"``, Ws the log weights); float64 (m, p) in the original query order.
    Every pair of the plan's blocks is evaluated except those of a tile of points whose box is beyond
    the support from the query (the same margin as the plan), which are exactly 0."""
    from . import _fused
    p = Ws.shape[1]
    lse = op == "logsumexp"
    out = np.zeros((pl.m, p))
    maxima = np.full((pl.m, p), -np.inf) if lse else None
    rbeg, rend, rlo, rhi = _ranges(pl)
    qs = pl.ys.starts
    blocks = np.arange(qs.size - 1) if only is None else np.flatnonzero(only)
    # batches of blocks between progress updates (one batch without a bar)
    pairs = (pl.ys.counts * pl.rows_per_block)[blocks]
    step = _fused._PROGRESS_PAIRS if opts.progress else np.inf
    cuts = np.searchsorted(np.cumsum(pairs), np.arange(1, int(pairs.sum() // step) + 1) * step) if opts.progress \
        else np.zeros(0, dtype=np.int64)
    with progress_bar(pl.m, opts.progress, desc) as bar:
        for sel in np.split(blocks, np.unique(np.clip(cuts, 1, max(blocks.size - 1, 1)))):
            if sel.size:
                _fused.run_ranges(fp, op, Ws, qs[sel], qs[sel + 1], rbeg[sel], rend[sel], rlo, rhi, pl.thr, out,
                                  maxima)
                bar.update(int(np.sum(pl.ys.counts[sel])))
    if lse:
        with np.errstate(divide="ignore"):
            out = np.where(out > 0, maxima + np.log(out), -np.inf)
    else:
        interior = _interior(pl, Ws)
        if interior is not None:
            out += interior
    return _unsort(out, pl.ys.order)


def _compiled_plan(kernel, pl, Xs, Ys, opts, p, mod, op="sum"):
    """The fused backend's plan for the pruned reduction over ranges, or None (NumPy backend, or a
    kernel the ranges path does not cover: the per-block path runs)."""
    if getattr(mod, "__name__", "").rsplit(".", 1)[-1] != "_fused":
        return None
    from . import _fused
    return _fused.ranges_plan(kernel, Xs, Ys, opts, p, op)


def _flat(kernel):
    """True for a plain Tophat (k = 1 exactly on the support: a leaf inside it adds its weight sum)."""
    return type(kernel) is Tophat


def _inner(opts):
    return dataclasses.replace(opts, progress=False, threads=1)


def _plan(kernel, X, Y, opts, prune, mod, owner):
    """The pruning plan for this call, or None when it runs unpruned (the rules of the module docstring:
    by the automatic rule, also when more than MAX_KEPT of the pairs would be kept)."""
    sup = _decide(kernel, X, Y, opts, prune, mod, owner)
    if sup is None:
        return None
    pl = _Plan(X, Y, *sup, memory=opts.memory, flat=_flat(kernel))
    if (opts.prune if prune is None else prune) is None and pl.kept > MAX_KEPT * X.shape[0] * Y.shape[0]:
        return None
    return pl


def kernel_sum(kernel, X, Y, W, opts, backend, prune=None):
    """``out[j] = sum_i k(x_i, y_j) W[i]`` (float64, (m, p)) on validated working arrays, pruned when the
    rules of the module docstring allow, else by ``backend("sum")`` unpruned."""
    mod = backend("sum")
    pl = _plan(kernel, X, Y, opts, prune, mod, "kernel_sum")
    if pl is None:
        return mod.kernel_sum(kernel, X, Y, W, opts)
    return _sum_sorted(pl, kernel, _rows(X, pl.xs.order), _rows(W, pl.xs.order), Y, opts, mod, "kernel_sum")


def _sum_sorted(pl, kernel, Xs, Ws, Y, opts, mod, desc):
    """The pruned kernel sum of a plan on the sorted points Xs and weights Ws: compiled over ranges where
    the fused backend covers the kernel, else block by block through ``mod``."""
    Ys = _rows(Y, pl.ys.order)
    fp = _compiled_plan(kernel, pl, Xs, Ys, opts, Ws.shape[1], mod)
    if fp is not None:
        return _run_compiled(pl, fp, "sum", Ws, opts, desc)
    inner = _inner(opts)
    return _run(pl, Y, (Xs, Ws), lambda Xg, Yb, Wg: mod.kernel_sum(kernel, Xg, Yb, Wg, inner), 0.0, np.add, opts,
                desc)


def kernel_logsumexp(kernel, X, Y, LW, opts, backend, prune=None):
    """``out[j] = log sum_i exp(log k(x_i, y_j) + LW[i])`` (float64, (m, p)), pruned when the rules allow
    (through the kernel sum with weights exp(LW - max LW), module docstring), else ``backend("logsumexp")``."""
    lse = backend("logsumexp")
    pl = _plan(kernel, X, Y, opts, prune, lse, "kernel_logsumexp")
    if pl is None:
        return lse.kernel_logsumexp(kernel, X, Y, LW, opts)
    inner = _inner(opts)
    order = pl.xs.order
    Xo, LWo = _rows(X, order), _rows(LW, order)
    n, p = LW.shape
    with np.errstate(invalid="ignore"):
        top = np.max(np.where(np.isfinite(LWo), LWo, -np.inf), axis=0) if n else np.full(p, -np.inf)
    shift = np.where(np.isfinite(top), top, 0.0)
    Wexp = np.exp(LWo - shift).astype(X.dtype)     # in [0, 1]; 0 for -inf log weights
    S = _sum_sorted(pl, kernel, Xo, Wexp, Y, opts, backend("sum"), "kernel_logsumexp")
    fi = np.finfo(X.dtype)
    floor = max(n, 1) * float(fi.tiny) / float(fi.eps)   # below it, terms lost to underflow could matter
    with np.errstate(divide="ignore"):
        out = np.log(S) + shift
    out[:, ~np.isfinite(top)] = -np.inf
    # float64: S = 0 exactly means no point in the support when no weight is below 1e-200: a positive k of
    # these kernels is above 1e-96 even where 1 - r^2 / h^2 is formed exactly by a fused multiply-add
    # (>= 2^-106, cubed for the triweight), so no term k w underflows; those rows are -inf as unpruned,
    # without a redo. float32 rows with S = 0 are always redone (k itself can be subnormal there).
    with np.errstate(invalid="ignore"):
        low = np.min(np.where(np.isfinite(LWo), LWo - shift, np.inf), axis=0) if n else np.full(p, np.inf)
    no_underflow = (low >= math.log(1e-200)) & (X.dtype == np.float64)
    redo = np.any((S < floor) & np.isfinite(top) & ~((S == 0) & no_underflow), axis=1)
    if redo.any():   # near or below underflow: the backend's log-sum-exp on the blocks of these queries
        if pl.inside_block.size:   # the log-sum-exp evaluates every pair of the support
            pl = _Plan(X, Y, *pl.support, xs=pl.xs, memory=opts.memory)
        blocks = np.zeros(pl.ys.lo.shape[0], dtype=bool)
        rank = np.empty(pl.m, dtype=np.int64)
        rank[pl.ys.order] = np.arange(pl.m)
        blocks[np.searchsorted(pl.ys.starts, rank[redo], side="right") - 1] = True
        fp = _compiled_plan(kernel, pl, Xo, _rows(Y, pl.ys.order), opts, p, lse, "logsumexp")
        if fp is not None:
            L = _run_compiled(pl, fp, "logsumexp", LWo, opts, "kernel_logsumexp", only=blocks)
        else:
            L = _run(pl, Y, (Xo, LWo), lambda Xg, Yb, Lg: lse.kernel_logsumexp(kernel, Xg, Yb, Lg, inner),
                     -np.inf, np.logaddexp, opts, "kernel_logsumexp", only=blocks)
        out[redo] = L[redo]
    return out


class PreparedPrunedSum:
    """Kernel sums against one point set for many query sets, the points partitioned once (mean shift).

    ``S(Y) = kernel_sum(kernel, X, Y, W)`` as (m, p) float64, by the same rules as :func:`kernel_sum`
    with ``prune=None``, except that once X is partitioned (on the first call with n * m >= ``MIN_PAIRS``),
    every later call prunes while it keeps at most ``MAX_KEPT`` of the pairs, however few the queries.
    Built by :func:`prepare_pruned_sum`.
    """

    def __init__(self, kernel, X, W, opts, mod, sup):
        self.kernel, self.X, self.W, self.opts, self.mod, self.sup = kernel, X, W, opts, mod, sup
        self._xs = None
        self._sorted = None

    def __call__(self, Y):
        X, W, opts = self.X, self.W, self.opts
        Y = np.ascontiguousarray(Y, dtype=X.dtype)
        if self._xs is None and X.shape[0] * Y.shape[0] < MIN_PAIRS:   # once X is partitioned, few queries pay too
            return self.mod.kernel_sum(self.kernel, X, Y, W, opts)
        pl = _Plan(X, Y, *self.sup, xs=self._xs, memory=opts.memory, flat=_flat(self.kernel))
        if self._xs is None:
            self._xs = pl.xs
            self._sorted = (_rows(X, pl.xs.order), _rows(W, pl.xs.order))
        if pl.kept > MAX_KEPT * X.shape[0] * Y.shape[0]:
            return self.mod.kernel_sum(self.kernel, X, Y, W, opts)
        return _sum_sorted(pl, self.kernel, *self._sorted, Y, opts, self.mod, "kernel_sum")


def prepare_pruned_sum(kernel, X, W, *, memory=None, threads=None, backend=None, progress=None):
    """A :class:`PreparedPrunedSum` for validated float arrays X (n, d) and W (n, p), or None when the
    kernel, the dimension or the backend rule out pruning (then call the engine's kernel_sum)."""
    from . import _backend, _opts
    opts = _opts(memory, threads, backend, progress)
    mod = _backend(opts, kernel, "sum")
    sup = support(kernel)
    if sup is None or X.shape[1] > MAX_D or getattr(mod, "__name__", "").rsplit(".", 1)[-1] not in ("_fused", "_numpy"):
        return None
    return PreparedPrunedSum(kernel, np.ascontiguousarray(X), np.ascontiguousarray(W, dtype=X.dtype), opts, mod, sup)
