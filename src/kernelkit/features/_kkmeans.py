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

import numpy as np
import scipy.sparse
from sklearn.base import BaseEstimator, ClusterMixin
from sklearn.utils.validation import validate_data

from .._options import get_options
from .._random import generator, seed_sequence
from .._validation import Integral, Real, check_param, check_params, param_error
from .._sklearn import EstimatorNotFittedError
from ._decomposition import chunk_rows, features64, make_feature_map

__all__ = ["KernelKMeans"]

_CONSTRAINTS = {"n_clusters": Integral(low=1), "n_init": Integral(low=1), "max_iter": Integral(low=1),
                "tol": Real(low=0), "chunk_size": Integral(low=1) | None}


class _FeatureRows:
    """The features of the rows of X in float64, chunk by chunk: read from a kept array, or recomputed."""

    def __init__(self, features, X, rows, keep, dtype):
        self.features, self.X, self.rows, self.n = features, X, rows, X.shape[0]
        self.Z = None
        if keep:
            D = int(np.asarray(features.transform(X[:1])).shape[1])
            self.Z = np.empty((self.n, D), dtype=dtype)
            for a in range(0, self.n, rows):
                self.Z[a:a + rows] = features.transform(X[a:a + rows])

    def chunks(self):
        """``(start, features of rows start..start + rows)`` for every chunk (float64; read only)."""
        for a in range(0, self.n, self.rows):
            if self.Z is not None:
                yield a, self.Z[a:a + self.rows].astype(np.float64, copy=False)
            else:
                yield a, features64(self.features, self.X[a:a + self.rows])

    def take(self, idx):
        """The features of the rows ``idx``, shape (len(idx), D), float64."""
        if self.Z is not None:
            return self.Z[idx].astype(np.float64)
        return features64(self.features, self.X[idx])


def _sqdist(Z, C, cc):
    """||z_i - c_j||^2 for the rows of Z and C (cc = ||c_j||^2), clipped at 0; shape (len(Z), len(C))."""
    d = Z @ C.T
    d *= -2.0
    d += np.einsum("ij,ij->i", Z, Z)[:, None]
    d += cc
    return np.maximum(d, 0.0, out=d)


def _mean_variance(src, D):
    """Mean over the D feature columns of their variance (the scale of ``tol``)."""
    s, ss = np.zeros(D), 0.0
    for _, Z in src.chunks():
        s += Z.sum(axis=0)
        ss += float(np.einsum("ij,ij->", Z, Z))
    mean = s / src.n
    return max(ss / src.n - float(mean @ mean), 0.0) / D


def _kmeans_plusplus(src, k, rng):
    """Greedy k-means++ (Arthur & Vassilvitskii 2007, with 2 + floor(ln k) candidates per centre, as
    scikit-learn): one pass over the features per centre. Returns the (k, D) initial centres."""
    n = src.n
    first = src.take([int(rng.integers(n))])
    C = np.empty((k, first.shape[1]))
    C[0] = first[0]

    def dist_to(cands):
        out = np.empty((n, len(cands)))
        cc = np.einsum("ij,ij->i", cands, cands)
        for a, Z in src.chunks():
            out[a:a + len(Z)] = _sqdist(Z, cands, cc)
        return out

    d2 = dist_to(C[:1])[:, 0]
    trials = 2 + int(math.log(k))
    for c in range(1, k):
        cum = np.cumsum(d2)
        pick = np.minimum(np.searchsorted(cum, rng.uniform(size=trials) * cum[-1], side="right"), n - 1)
        cands = src.take(pick)
        new = np.minimum(dist_to(cands), d2[:, None])
        best = int(new.sum(axis=0).argmin())
        C[c], d2 = cands[best], new[:, best].copy()
    return C


def _assign(src, C, want_sums=True):
    """One pass: nearest centre of every row, the total squared distance, and (for the update) the sum
    and count of the rows of each cluster and the k rows farthest from their centre."""
    k, D = C.shape
    cc = np.einsum("ij,ij->i", C, C)
    labels = np.empty(src.n, dtype=np.intp)
    sums, counts, inertia = np.zeros((k, D)), np.zeros(k, dtype=np.int64), 0.0
    far_d, far_z = np.empty(0), np.empty((0, D))
    for a, Z in src.chunks():
        d = _sqdist(Z, C, cc)
        lab = d.argmin(axis=1)
        dmin = d[np.arange(len(Z)), lab]
        labels[a:a + len(Z)] = lab
        inertia += float(dmin.sum())
        if want_sums:
            onehot = scipy.sparse.csr_matrix((np.ones(len(Z)), (lab, np.arange(len(Z)))), shape=(k, len(Z)))
            sums += onehot @ Z
            counts += np.bincount(lab, minlength=k)
            top = np.argsort(dmin)[::-1][:k]
            far_d, far_z = np.concatenate([far_d, dmin[top]]), np.vstack([far_z, Z[top]])
            keep = np.argsort(far_d, kind="stable")[::-1][:k]
            far_d, far_z = far_d[keep], far_z[keep]
    return labels, inertia, sums, counts, far_z


def _lloyd(src, C, max_iter, tol):
    """Lloyd iterations from the centres C; returns (labels, inertia, centres, iterations).

    Stops when the labels stop changing (the centres are then the means of their clusters) or when the
    centres move by at most ``tol`` in total squared distance (then one more pass assigns the labels);
    in every case the labels are the nearest centres and the inertia is measured to those centres."""
    previous = None
    for it in range(1, max_iter + 1):
        labels, inertia, sums, counts, far_z = _assign(src, C)
        if previous is not None and np.array_equal(labels, previous):
            return labels, inertia, C, it
        new = sums / np.maximum(counts, 1)[:, None]
        empty = np.flatnonzero(counts == 0)
        new[empty] = far_z[:len(empty)]             # an empty cluster restarts at the farthest points
        shift = float(((new - C) ** 2).sum())
        C, previous = new, labels
        if shift <= tol:
            break
    labels, inertia, *_ = _assign(src, C, want_sums=False)
    return labels, inertia, C, it


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
    chunk at every pass (one pass per k-means++ centre and per Lloyd
    iteration), so that memory stays O(chunk_size D + k D + n) whatever n,
    at the price of recomputing the map. Both paths give the same result (up
    to rounding). Cost per pass: n D k flops for the distances, plus, when
    recomputing, the map (Nystroem: n M d kernel evaluations and n M^2 flops).

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
        src = _FeatureRows(features, X, rows, keep, Z1.dtype)
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
        src = _FeatureRows(self.features_, X, rows, False, None)
        return _assign(src, self.cluster_centers_, want_sums=False)[0]
