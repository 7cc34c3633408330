r"""Gaussian kernel sums by stratified sampling on a binary tree of the points (``ApproximateKDE(method="tree")``).

For a query y, :math:`S(y) = \sum_i g(\|y - x_i\|^2)` with :math:`g(t) = e^{-t/2}` (points and queries
in the bandwidth-scaled frame). The points sit in the leaves of a binary tree (:func:`build_tree`:
median splits of the widest coordinate, leaves of at most ``leaf_size`` points). At fit, two points
are drawn uniformly (with replacement, independently) from every leaf l of :math:`c_l` points
(:func:`draw_pairs`); the same draws serve every query. Then, per query:

1. The stratified estimate and its variance estimate,

   .. math::

       \hat S = \sum_l \hat S_l,\quad \hat S_l = c_l\,\frac{g_{l1} + g_{l2}}{2}, \qquad
       V = \sum_l c_l^2\,\frac{(g_{l1} - g_{l2})^2}{4},

   are unbiased for S and for :math:`\operatorname{Var}\hat S` (for each leaf, the mean of two i.i.d.
   draws and their halved squared difference).
2. Nodes are opened best first by the upper bound :math:`c_v\,g(t_v)` of their sum, :math:`t_v` the
   larger of the squared distances from y to the node's bounding box and to its ball (mean, radius):
   an inner node is replaced by its children, a leaf's :math:`\hat S_l` by its exact sum (and its
   :math:`c_l^2 (g_{l1}-g_{l2})^2/4` taken out of V), while
   :math:`z_{1-\delta/2}\sqrt{V} > \epsilon\,\hat S` or a node not yet opened has
   :math:`c_v g(t_v) >` ``exact_above`` :math:`\cdot\,\hat S`.

The returned error estimate is :math:`z\sqrt V / \hat S` (the normal approximation; 0 when every
leaf was summed). What it means: as the CLT bound of the sampling method, an asymptotic statement
per query; the upper-bound rule limits what a node the draws missed can hold. Costs per query: the
2L draws (float32, four queries at a time) + the opened nodes (a distance each) + the points of the
opened leaves; the exact sum is n points. With the default ``leaf_size`` there are about 2,048
leaves (4,096 draws) whatever n, so the gain over the exact sum grows with n; it is largest when the
bandwidth is wide enough that many points make the density (few leaves need opening), and it
vanishes at narrow bandwidths, where most of the tree near a query is opened.

The query runs compiled (``_kdtree_ext.c``), in parallel over the queries; kernel values are taken
relative to the nearest draw's, so nothing underflows. A query whose exact leaf would overflow that
ratio, or whose opened leaves pass n / 16 points, is summed exactly by the engine instead (in the log
domain), so a query never costs much more than its exact sum.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

__all__ = ["KernelTree", "TreeIndex", "build_tree", "draw_pairs", "tree_available"]


def _ext():
    try:
        from . import _kdtree_ext
    except ImportError:  # pragma: no cover - depends on the build
        return None
    return _kdtree_ext


def tree_available():
    """True when the compiled tree query (``kernelkit.density._kdtree_ext``) was built."""
    return _ext() is not None


@dataclass(frozen=True)
class KernelTree:
    """A binary tree of n points in d dimensions (arrays over the nn nodes; points in tree order).

    ``XT`` (d, n) holds the points column-major in tree order (``order[j]`` is the input row of
    tree position j); node v covers positions ``start[v]:stop[v]``; ``left[v]`` is its first child
    (the second is ``left[v] + 1``), -1 for a leaf; ``mean`` (nn, d), ``box`` (nn, 2, d: the
    smallest and largest coordinates) and ``radius`` (largest distance from the mean, widened by a
    relative 1e-9 for rounding) are the node statistics the upper bounds use.
    """

    XT: np.ndarray
    order: np.ndarray
    start: np.ndarray
    stop: np.ndarray
    left: np.ndarray
    mean: np.ndarray
    box: np.ndarray
    radius: np.ndarray

    @property
    def n_nodes(self):
        return int(self.start.size)


def build_tree(X, leaf_size=32):
    """Median-split binary tree of the rows of X (float64, shape (n, d)); see :class:`KernelTree`.

    Each node with more than ``leaf_size`` points is split at the median of its widest coordinate
    (largest max - min) into two halves of sizes floor(c/2) and ceil(c/2); children are stored in
    pairs, so node v's children are ``left[v]`` and ``left[v] + 1``.
    """
    X = np.ascontiguousarray(X, dtype=np.float64)
    n, d = X.shape
    order = np.arange(n)
    start, stop, left = [0], [n], [-1]
    v = 0
    while v < len(start):
        a, b = start[v], stop[v]
        if b - a > leaf_size:
            idx = order[a:b]
            P = X[idx]
            dim = int(np.argmax(P.max(axis=0) - P.min(axis=0)))
            half = (b - a) // 2
            part = np.argpartition(P[:, dim], half)
            order[a:b] = idx[part]
            left[v] = len(start)
            start += [a, a + half]
            stop += [a + half, b]
            left += [-1, -1]
        v += 1
    start = np.asarray(start, dtype=np.int64)
    stop = np.asarray(stop, dtype=np.int64)
    left = np.asarray(left, dtype=np.int64)
    Xo = X[order]
    nn = start.size
    mean = np.empty((nn, d))
    box = np.empty((nn, 2, d))
    radius = np.empty(nn)
    for v in range(nn):
        P = Xo[start[v]:stop[v]]
        mu = P.mean(axis=0)
        dev = np.einsum("ij,ij->i", P - mu, P - mu)
        mean[v] = mu
        box[v, 0] = P.min(axis=0)
        box[v, 1] = P.max(axis=0)
        radius[v] = math.sqrt(float(dev.max()))
    radius = radius * (1 + 1e-9) + 1e-300
    return KernelTree(np.ascontiguousarray(Xo.T), order, start, stop, left, mean, box, radius)


def draw_pairs(tree, rng):
    """Two points drawn uniformly with replacement from every leaf: ``(SX, leaf_count, leaf_id)``.

    ``SX`` (d, 2 L) holds leaf l's draws in columns l and L + l; ``leaf_count`` (L,) the leaves'
    sizes (float64); ``leaf_id`` (nn,) the leaf index of each node, -1 for internal nodes.
    """
    leaves = np.flatnonzero(tree.left < 0)
    leaf_id = np.full(tree.n_nodes, -1, dtype=np.int64)
    leaf_id[leaves] = np.arange(leaves.size)
    lo, hi = tree.start[leaves], tree.stop[leaves]
    u = rng.random((leaves.size, 2))
    pick = np.minimum(lo[:, None] + np.floor(u * (hi - lo)[:, None]).astype(np.int64), hi[:, None] - 1).T.ravel()
    return np.ascontiguousarray(tree.XT[:, pick], dtype=np.float32), (hi - lo).astype(np.float64), leaf_id, leaves


def tree_log_sums(tree, draws, Y, rtol, z, cap, threads, engine=None):
    r"""Stratified Gaussian kernel sums at the rows of Y (scaled frame), see the module docstring.

    Returns ``(log_sum, rel_error, n_exact, n_nodes, fallback, draw_n_eff)``: ``log_sum[j]`` is log of the estimate
    of :math:`\sum_i e^{-\|y_j - x_i\|^2 / 2}`; ``rel_error[j]`` the estimated relative error
    z sqrt(V) / S_hat (0 where every leaf was summed); ``n_exact`` the points summed exactly and
    ``n_nodes`` the nodes bounded, per query; ``fallback`` True where the query was handed back
    (its exact leaf would overflow the scale, or its opened leaves passed n / 16 points) and summed
    exactly by the engine instead; ``draw_n_eff`` the draws' effective number
    :math:`(\sum_j w_j g_j)^2 / \sum_j (w_j g_j)^2` (w_j = c_l / 2), small when a few draws make the estimate.
    """
    ext = _ext()
    if ext is None:  # pragma: no cover - depends on the build
        raise RuntimeError("the compiled tree query (kernelkit.density._kdtree_ext) is not built; reinstall "
                           "kernelkit with a C compiler, or use method='sample'")
    SX, leaf_count, leaf_id, leaf_node = draws
    Y = np.ascontiguousarray(Y, dtype=np.float64)
    log_sum, rel, n_exact, n_nodes, fallback, n_eff = ext.tree_kde(
        Y, tree.XT, SX, tree.mean, tree.radius, leaf_count, tree.start, tree.stop, tree.left, leaf_id, leaf_node,
        tree.box, 0.5, float(rtol), float(z), float(cap), int(threads))
    if fallback.any():   # handed back: summed exactly by the engine, in the log domain
        from ..engine import kernel_logsumexp
        from ..kernels import Gaussian
        options = {"threads": threads, **(engine or {})}
        log_sum[fallback] = kernel_logsumexp(Gaussian(1.0), tree.XT.T, Y[fallback], **options)
        n_exact[fallback] = tree.XT.shape[1]
        rel[fallback] = 0.0
    return log_sum, rel, n_exact, n_nodes, fallback, n_eff


@dataclass(frozen=True)
class TreeIndex:
    """What :class:`~kernelkit.density.ApproximateKDE` keeps for ``method="tree"``: the tree and its draws."""

    tree: KernelTree
    draws: tuple

    @property
    def n_leaves(self):
        return int(self.draws[1].size)


def auto_leaf_size(n):
    """The default leaf size: about 2,048 leaves (4,096 draws per query), leaves of 8 points or more."""
    return max(8, -(-n // 2048))


def fit_tree_index(Xs, leaf_size, rng):
    """Tree of the scaled points ``Xs`` (n, d) and two uniform draws per leaf (``rng``: a Generator)."""
    tree = build_tree(Xs, leaf_size)
    return TreeIndex(tree, draw_pairs(tree, rng))


def estimate_tree(index, Ys, rtol, z, exact_above, threads, engine=None):
    """Log kernel sums and error estimates at the scaled queries ``Ys``:
    ``(log_sum, rel_error, n_samples, n_exact, converged, draw_n_eff)`` as :class:`ApproximateDensity` reports them.
    ``engine``: options (memory, backend) of the exact sums of handed-back queries."""
    log_sum, rel, n_exact, _, _, n_eff = tree_log_sums(index.tree, index.draws, Ys, rtol, z, exact_above, threads,
                                                       engine)
    n_samples = np.full(log_sum.shape, 2 * index.n_leaves, dtype=np.int64)
    return log_sum, rel, n_samples, n_exact, rel <= rtol, n_eff
