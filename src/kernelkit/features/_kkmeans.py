r"""Approximate kernel k-means: Lloyd's algorithm in the feature space of a Nystroem or random-feature map.

Kernel k-means minimises :math:`\sum_i \|\phi(x_i) - \mu_{c(i)}\|^2` over the
partitions c, :math:`\phi` the (possibly infinite-dimensional) feature map of
the kernel and :math:`\mu_c` the mean of :math:`\phi` over cluster c; done
exactly it needs the n x n kernel matrix. With an explicit map z whose inner
products approximate the kernel, it is plain k-means on the rows of
:math:`Z = z(X)`: O(n D k) per iteration, k x D centres as the only state.
The rows are kept in memory when they fit the budget, else recomputed from
X chunk by chunk at every pass.
"""

from __future__ import annotations

import math
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from sklearn.base import BaseEstimator, ClusterMixin
from sklearn.utils.validation import validate_data

from .._options import get_options
from .._random import generator, seed_sequence
from .._validation import Integral, Real, check_params, param_error
from .._sklearn import EstimatorNotFittedError
from ._decomposition import chunk_rows, features64, make_feature_map

__all__ = ["KernelKMeans"]

_CONSTRAINTS = {"n_clusters": Integral(low=1), "n_init": Integral(low=1), "max_iter": Integral(low=1),
                "tol": Real(low=0), "chunk_size": Integral(low=1) | None}


#: rows per task of a pass (the distances and sums of a block stay in cache)
_BLOCK = 4096


class _FeatureRows:
    """The features of the rows of X in float64, chunk by chunk: read from a kept array, or recomputed.

    :meth:`map` runs a function on blocks of rows in ``threads`` threads, each with a single-threaded BLAS
    (as scikit-learn's k-means: small GEMMs in parallel, instead of one multi-threaded GEMM per chunk whose
    thread synchronisation dominates for k = a few centres). Use it as a context manager (the thread pool)."""

    def __init__(self, features, X, rows, keep, dtype, threads=1):
        self.features, self.X, self.rows, self.n = features, X, rows, X.shape[0]
        self.threads = threads
        self.Z = self.norms = None
        if keep:
            D = int(np.asarray(features.transform(X[:1])).shape[1])
            self.Z, self.norms = np.empty((self.n, D), dtype=dtype), np.empty(self.n)
            for a in range(0, self.n, rows):
                Z = np.asarray(features.transform(X[a:a + rows]))
                self.Z[a:a + rows] = Z
                Z = Z.astype(np.float64, copy=False)
                self.norms[a:a + rows] = np.einsum("ij,ij->i", Z, Z)

    def __enter__(self):
        from threadpoolctl import ThreadpoolController
        self._controller = ThreadpoolController()
        self._pool = ThreadPoolExecutor(self.threads) if self.threads > 1 else None
        return self

    def __exit__(self, *exc):
        if self._pool is not None:
            self._pool.shutdown()

    def chunks(self):
        """``(start, features of rows start..start + rows, their squared norms)`` for every chunk (float64;
        read only)."""
        for a in range(0, self.n, self.rows):
            if self.Z is not None:
                yield a, self.Z[a:a + self.rows].astype(np.float64, copy=False), self.norms[a:a + self.rows]
            else:
                Z = features64(self.features, self.X[a:a + self.rows])
                yield a, Z, np.einsum("ij,ij->i", Z, Z)

    def map(self, fn):
        """``[fn(start, Z, zz) for every block of at most _BLOCK rows]``, in row order (Z, zz as in chunks)."""
        out = []
        for a, Z, zz in self.chunks():      # features computed here, with the BLAS threads of the map
            def task(b, a=a, Z=Z, zz=zz):
                return fn(a + b, Z[b:b + _BLOCK], zz[b:b + _BLOCK])
            with self._controller.limit(limits=1, user_api="blas"):
                starts = range(0, len(Z), _BLOCK)
                out += list(self._pool.map(task, starts)) if self._pool else [task(b) for b in starts]
        return out

    def take(self, idx):
        """The features of the rows ``idx``, shape (len(idx), D), float64."""
        if self.Z is not None:
            return self.Z[idx].astype(np.float64)
        return features64(self.features, self.X[idx])


def _sqdist(Z, zz, C, cc):
    """||z_i - c_j||^2 for the rows of Z and C (zz, cc their squared norms), clipped at 0; shape (len(Z), len(C))."""
    d = Z @ C.T
    d *= -2.0
    d += zz[:, None]
    d += cc
    return np.maximum(d, 0.0, out=d)


def _mean_variance(src, D):
    """Mean over the D feature columns of their variance (the scale of ``tol``)."""
    s, ss = np.zeros(D), 0.0
    for _, Z, zz in src.chunks():
        s += Z.sum(axis=0)
        ss += float(zz.sum())
    mean = s / src.n
    return max(ss / src.n - float(mean @ mean), 0.0) / D


def _kmeans_plusplus(src, k, rng):
    """Greedy k-means++ (Arthur & Vassilvitskii 2007, with 2 + floor(ln k) candidates per centre, as
    scikit-learn): one pass over the features per centre. Returns the (k, D) initial centres."""
    n = src.n
    first = src.take([int(rng.integers(n))])
    C = np.empty((k, first.shape[1]))
    C[0] = first[0]

    def dist_to(cands, d2=None):
        """min(d2, squared distances to the candidates), shape (n, len(cands))."""
        out = np.empty((n, len(cands)))
        cc = np.einsum("ij,ij->i", cands, cands)

        def block(a, Z, zz):
            d = _sqdist(Z, zz, cands, cc)
            out[a:a + len(Z)] = d if d2 is None else np.minimum(d, d2[a:a + len(Z), None], out=d)
        src.map(block)
        return out

    d2 = dist_to(C[:1])[:, 0]
    trials = 2 + int(math.log(k))
    for c in range(1, k):
        cum = np.cumsum(d2)
        pick = np.minimum(np.searchsorted(cum, rng.uniform(size=trials) * cum[-1], side="right"), n - 1)
        cands = src.take(pick)
        new = dist_to(cands, d2)
        best = int(new.sum(axis=0).argmin())
        C[c], d2 = cands[best], new[:, best].copy()
    return C


def _assign(src, C, want_sums=True, previous=None):
    """One pass: nearest centre of every row, its squared distance, and (for the update) the sum and the
    count of the rows of each cluster, or with ``previous = (labels, sums, counts)`` of an earlier pass,
    their changes (only the rows whose label changed are summed). Returns (labels, dist, sums, counts,
    number of labels changed)."""
    k, D = C.shape
    cc = np.einsum("ij,ij->i", C, C)
    labels, dist = np.empty(src.n, dtype=np.intp), np.empty(src.n)
    old = None if previous is None else previous[0]

    def block(a, Z, zz):
        m = len(Z)
        d = _sqdist(Z, zz, C, cc)
        lab = d.argmin(axis=1)
        labels[a:a + m], dist[a:a + m] = lab, d[np.arange(m), lab]
        if not want_sums:
            return None
        if old is None:                          # every row: one GEMM, as costly as the distances
            W, rows = np.zeros((k, m)), np.arange(m)
            W[lab, rows] = 1.0
            return W @ Z, np.bincount(lab, minlength=k), m
        moved = np.flatnonzero(lab != old[a:a + m])
        if not len(moved):
            return None
        new_lab, old_lab, rows = lab[moved], old[a + moved], np.arange(len(moved))
        W = np.zeros((k, len(moved)))
        W[new_lab, rows] = 1.0
        W[old_lab, rows] -= 1.0
        return W @ Z[moved], np.bincount(new_lab, minlength=k) - np.bincount(old_lab, minlength=k), len(moved)

    parts = src.map(block)
    if previous is None:
        sums, counts = np.zeros((k, D)), np.zeros(k, dtype=np.int64)
    else:
        sums, counts = previous[1].copy(), previous[2].copy()
    changed = 0
    for part in parts:                           # in row order: the same sums whatever the threads
        if part is not None:
            sums += part[0]
            counts += part[1]
            changed += part[2]
    return labels, dist, sums, counts, (src.n if previous is None else changed)


def _lloyd(src, C, max_iter, tol):
    """Lloyd iterations from the centres C; returns (labels, inertia, centres, iterations).

    Stops when the labels stop changing (the centres are then the means of their clusters) or when the
    centres move by at most ``tol`` in total squared distance (then one more pass assigns the labels);
    in every case the labels are the nearest centres and the inertia is measured to those centres. The
    cluster sums are updated with the rows that changed cluster (exact up to rounding, and cheaper once
    few labels change)."""
    previous = None
    for it in range(1, max_iter + 1):
        labels, dist, sums, counts, changed = _assign(src, C, previous=previous)
        if previous is not None and changed == 0:
            return labels, float(dist.sum()), C, it
        new = sums / np.maximum(counts, 1)[:, None]
        empty = np.flatnonzero(counts == 0)
        if len(empty):                              # an empty cluster restarts at the farthest points
            far = np.argsort(dist, kind="stable")[::-1][:len(empty)]
            new[empty] = src.take(far)
        shift = float(((new - C) ** 2).sum())
        C, previous = new, (labels, sums, counts)
        if shift <= tol:
            break
    labels, dist, *_ = _assign(src, C, want_sums=False)
    return labels, float(dist.sum()), C, it


class KernelKMeans(ClusterMixin, BaseEstimator):
    r"""Kernel k-means through an explicit feature map (Nystroem by default), streamed over chunks of rows.

    Kernel k-means looks for the partition c of the data minimising

    .. math::

        J(c) = \sum_i \|\phi(x_i) - \mu_{c(i)}\|^2, \qquad
        \mu_j = \frac{1}{n_j} \sum_{c(i) = j} \phi(x_i),

    :math:`\phi` the feature map of the kernel (:math:`\phi(x)\cdot\phi(y) = k(x, y)`);
    in terms of the kernel, :math:`J(c) = \sum_i k(x_i, x_i) - \sum_j \frac{1}{n_j}
    \sum_{c(i) = c(l) = j} k(x_i, x_l)`. This estimator replaces :math:`\phi`
    by an explicit map :math:`z(x) \in \mathbb{R}^D` (see ``features``) and
    runs k-means on the rows of Z = z(X): greedy k-means++ seeding
    (Arthur & Vassilvitskii 2007, :math:`2 + \lfloor \ln k \rfloor` candidates per
    centre, as scikit-learn), then Lloyd iterations (assign every point to its
    nearest centre, move every centre to the mean of its points; an emptied
    cluster restarts at the point farthest from its centre), ``n_init`` times,
    keeping the run with the lowest inertia.

    **What inertia_ approximates.** ``inertia_`` is
    :math:`\sum_i \|z(x_i) - \mu_{c(i)}\|^2` in feature space, the kernel
    k-means objective :math:`J(c)` for the kernel
    :math:`\hat k(x, y) = z(x)\cdot z(y)`. :math:`J` is linear in the kernel
    matrix (:math:`J = \operatorname{tr}((I - P_c) K)`, :math:`P_c` the
    projection on the cluster indicators), so for the same labels:

    * Nystroem features (M centres): :math:`K - \hat K` is positive
      semi-definite, hence :math:`0 \le J_K(c) - J_{\hat K}(c) \le
      \operatorname{tr}(K - \hat K) = \sum_i (k(x_i, x_i) - \|z(x_i)\|^2)`:
      the inertia underestimates the exact objective by at most the Nystroem
      residual trace, and is exact with every point as a centre (M = n).
    * Random features: :math:`\hat K` is unbiased entrywise, so
      :math:`J_{\hat K}(c)` is an unbiased estimate of :math:`J_K(c)` for fixed c.

    **Streaming.** The features of all n points are kept (n x D numbers in
    the dtype of the features) when they fit the memory budget of
    :func:`kernelkit.options`; otherwise they are recomputed from X chunk by
    chunk at every pass (one pass for the scale of ``tol``, one per k-means++
    centre and one per Lloyd iteration), so that memory stays
    O(chunk_size (D + k) + k D + n (3 + ln k)) numbers whatever n, at the
    price of recomputing the map. Both paths give the same result (up to
    rounding). Cost per pass: 2 n D k flops for the distances (one GEMM) and
    2 n' D k for the cluster sums, n' the number of points that changed
    cluster (n in the first iteration), plus, when recomputing, the map
    (Nystroem: n M d kernel evaluations and 2 n M^2 flops). A pass runs on
    blocks of 4096 rows in the threads of :func:`kernelkit.options`, each
    with a single-threaded BLAS (as scikit-learn's KMeans: a multi-threaded
    GEMM with k columns spends its time synchronising); the result does not
    depend on the number of threads.

    Parameters
    ----------
    n_clusters : int >= 1, default 8
        k, the number of clusters, at most n.
    kernel : str, Kernel or None, default None
        With ``features=None``: the kernel of the Nystroem map (a Kernel
        object or a name with ``bandwidth``; None means "gaussian"). Must be
        None when ``features`` is given.
    bandwidth : float > 0 or None, default None
        For a radial kernel given by name (data units); None: the median
        heuristic :func:`kernelkit.median_bandwidth` on X.
    features : transformer or None, default None
        A feature map with ``fit`` and ``transform`` (any of
        :mod:`kernelkit.features`); cloned and fitted on X. None:
        :class:`~kernelkit.features.NystroemFeatures`.
    n_features : int >= 1 or None, default None
        With ``features=None``: M, the number of Nystroem centres (None: 100;
        more than n: n, with a warning). With ``features``: replaces its
        ``n_components``; None keeps it.
    centers : {"uniform", "leverage", "kmeans"}, array of shape (M, d) or None, default None
        The Nystroem centres (None: "uniform"), as in
        :class:`~kernelkit.features.NystroemFeatures`. Must be None with ``features``.
    n_init : int >= 1, default 1
        Number of seedings and Lloyd runs; the one with the lowest inertia is kept.
    max_iter : int >= 1, default 300
        Most Lloyd iterations per run.
    tol : float >= 0, default 1e-4
        A run stops when the labels stop changing, or when the total squared
        movement of the centres :math:`\sum_j \|\mu_j^{new} - \mu_j\|^2` is at
        most ``tol`` times the mean variance of the D feature columns
        (scikit-learn's relative tolerance; dimensionless). 0: only when the
        labels stop changing (or after ``max_iter``).
    chunk_size : int >= 1 or None, default None
        Rows processed at a time. None: as many as fit the memory budget
        (two float64 copies of a chunk of features and the distances).
    random_state : None, int, SeedSequence or Generator, default None
        Seeds the feature map and the seedings, through two independent
        streams (``SeedSequence.spawn``). None: fresh seedings, and a given
        ``features`` keeps its own ``random_state``.

    Attributes
    ----------
    features_ : transformer
        The fitted feature map.
    cluster_centers_ : ndarray of shape (k, D), float64
        :math:`\mu_j` in feature space (units of z).
    labels_ : ndarray of shape (n,), int
        :math:`c(i)`, the nearest centre of every training point.
    inertia_ : float
        :math:`\sum_i \|z(x_i) - \mu_{c(i)}\|^2` (units of k), see above.
    n_iter_ : int
        Lloyd iterations of the run kept.
    n_features_in_ : int
        d.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.datasets import make_circles
    >>> from kernelkit.features import KernelKMeans
    >>> X, y = make_circles(400, factor=0.3, noise=0.05, random_state=0)
    >>> km = KernelKMeans(2, bandwidth=0.3, n_features=100, n_init=5, random_state=0).fit(X)
    >>> from sklearn.metrics import adjusted_rand_score
    >>> bool(adjusted_rand_score(y, km.labels_) > 0.95)
    True
    """

    def __init__(self, n_clusters=8, *, kernel=None, bandwidth=None, features=None, n_features=None, centers=None,
                 n_init=1, max_iter=300, tol=1e-4, chunk_size=None, random_state=None):
        self.n_clusters = n_clusters
        self.kernel = kernel
        self.bandwidth = bandwidth
        self.features = features
        self.n_features = n_features
        self.centers = centers
        self.n_init = n_init
        self.max_iter = max_iter
        self.tol = tol
        self.chunk_size = chunk_size
        self.random_state = random_state

    def fit(self, X, y=None):
        """Fit the feature map on X, then k-means on its features.

        Parameters
        ----------
        X : array of shape (n, d)
            Training points (data units); may be a memory-mapped array.
        y : ignored
            Not used, present for the scikit-learn API.

        Returns
        -------
        self : KernelKMeans
        """
        owner = type(self).__name__
        p = check_params(vars(self), _CONSTRAINTS, owner)
        X = validate_data(self, X, dtype=[np.float64, np.float32])
        n, k = X.shape[0], p["n_clusters"]
        if k > n:
            raise param_error("n_clusters", owner, f"an int in [1, n_samples] = [1, {n}]", k,
                              hint=f"X has n_samples={n}.")
        if self.random_state is None:
            feature_seed, rng = None, generator(None, owner)
        else:
            feature_seed, init_seed = seed_sequence(self.random_state, owner).spawn(2)
            rng = generator(init_seed, owner)
        features = make_feature_map(self, X, owner, feature_seed)
        features.fit(X)
        Z1 = np.asarray(features.transform(X[:1]))
        D = Z1.shape[1]
        rows = chunk_rows(p["chunk_size"], D, owner, extra=2 * k)
        keep = n * D * Z1.dtype.itemsize <= get_options().memory
        threads = get_options().resolved_threads()
        with _FeatureRows(features, X, rows, keep, Z1.dtype, threads) as src:
            tol = p["tol"] * _mean_variance(src, D)
            best = None
            for _ in range(p["n_init"]):
                C = _kmeans_plusplus(src, k, rng)
                run = _lloyd(src, C, p["max_iter"], tol)
                if best is None or run[1] < best[1]:
                    best = run
        self.labels_, self.inertia_, self.cluster_centers_, self.n_iter_ = best
        self.inertia_ = float(self.inertia_)
        self.features_ = features
        return self

    def predict(self, X):
        """The nearest centre :math:`\\arg\\min_j \\|z(x) - \\mu_j\\|^2` of every row of X, chunk by chunk.

        Parameters
        ----------
        X : array of shape (m, d)
            Points, in the units of the training data.

        Returns
        -------
        labels : ndarray of shape (m,), int
        """
        if not hasattr(self, "cluster_centers_"):
            raise EstimatorNotFittedError(f"This {type(self).__name__} instance is not fitted yet. Call 'fit' "
                                          "before 'predict'.")
        X = validate_data(self, X, dtype=[np.float64, np.float32], reset=False)
        k, D = self.cluster_centers_.shape
        rows = chunk_rows(self.chunk_size, D, type(self).__name__, extra=2 * k)
        with _FeatureRows(self.features_, X, rows, False, None, get_options().resolved_threads()) as src:
            return _assign(src, self.cluster_centers_, want_sums=False)[0]
