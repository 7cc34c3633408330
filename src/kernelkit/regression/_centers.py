r"""Nystrom centres: uniform, approximate ridge leverage scores, k-means, or given by the user.

Shared by :class:`kernelkit.regression.FalkonRegressor`,
:class:`kernelkit.regression.FalkonClassifier` and the Nystroem features of
:mod:`kernelkit.features`, through one function, :func:`select_centers`.
"""

from __future__ import annotations

import numpy as np
import scipy.linalg

from .._options import get_options
from .._random import generator
from .._validation import InstanceOf, Integral, OneOf, Real, check_param, check_points, param_error
from ..kernels import Kernel

__all__ = ["select_centers", "CENTER_METHODS"]

#: the names ``select_centers(method=...)`` accepts (an array of centres is the other choice)
CENTER_METHODS = ("uniform", "leverage", "kmeans")


def _n_centers_error(owner, n, got):
    return param_error("n_centers", owner, f"an int in [1, n_samples = {n}] (centres are rows of X)", got,
                       hint="Use fewer centres, or pass the centres themselves as an array.")


def select_centers(X, n_centers, *, method="uniform", kernel=None, penalty=None, random_state=None, owner=None):
    r"""Choose M Nystrom centres among (or, for k-means, near) the rows of X.

    Parameters
    ----------
    X : array of shape (n, d)
        Data points (data units). Never modified.
    n_centers : int or None
        M, the number of centres, an int in [1, n]. For an array ``method``
        it may be None, else it must equal the array's number of rows.
    method : {"uniform", "leverage", "kmeans"} or array of shape (M, d), default "uniform"
        - ``"uniform"``: M distinct rows drawn uniformly without replacement.
        - ``"leverage"``: M distinct rows drawn without replacement with
          probabilities proportional to approximate ridge leverage scores
          (the two-pass scheme of Rudi et al. 2018, "On fast leverage score
          sampling and optimal learning", and Musco & Musco 2017): a uniform
          subset S of size :math:`s = \min(n, 2M)`, then for every point

          .. math::

              \tilde l_i = \frac{1}{\lambda n}\Big(k(x_i, x_i) - k_{iS}
                           \big(K_{SS} + \lambda s I\big)^{-1} k_{Si}\Big),

          the Nystrom residual of :math:`k(x_i, \cdot)` on S (the
          :math:`\lambda s` ridge is :math:`\lambda n` rescaled by the
          uniform sampling weight s / n). Points far from S, which the
          kernel matrix cannot explain from S (outliers, sparse regions),
          get high scores. Costs :math:`n s d` kernel evaluations (dense
          blocks of rows of X against S, sized to the memory budget of
          :func:`kernelkit.options`) and one Cholesky factorisation of size s.
        - ``"kmeans"``: the M cluster centres of scikit-learn's
          :class:`~sklearn.cluster.MiniBatchKMeans` (not rows of X).
        - an array of shape (M, d): the centres themselves, validated and
          returned as they are.
    kernel : Kernel, optional
        The kernel, used by ``"leverage"`` only. Default: a Gaussian whose
        bandwidth is the median heuristic on X (:func:`kernelkit.median_bandwidth`).
    penalty : float > 0, optional
        :math:`\lambda` of the leverage scores (Falkon's scaling: the
        ridge of the kernel matrix is :math:`\lambda n`). Default:
        :math:`\operatorname{mean}_i k(x_i, x_i) / M`, the ridge at which
        about M eigenvalues of the kernel matrix (which sum to its trace)
        can exceed it.
    random_state : None, int, SeedSequence or Generator
        Seeds the sampling (and k-means).
    owner : str, optional
        The name shown in error messages (default "select_centers").

    Returns
    -------
    C : array of shape (M, d)
        The centres, in the dtype of X (float32 kept, else float64); a
        user array keeps its own (float32 or float64).
    indices : int64 array of shape (M,) or None
        Rows of X that are the centres (sorted for "uniform" and
        "leverage"); None for "kmeans" and for a user array.

    Raises
    ------
    InvalidValueError
        ``n_centers`` < 1 or > n, an unknown method, a user array with a
        different number of features than X or of rows than ``n_centers``.
    """
    owner = owner or "select_centers"
    X = check_points(X, "X", owner)
    n, d = X.shape
    if not isinstance(method, str):
        C = check_points(method, "centers", owner)
        if C.shape[1] != d:
            raise param_error("centers", owner, f"an array with as many features as X ({d})", method,
                              shown=f"shape {C.shape}")
        M = check_param(n_centers, "n_centers", owner, Integral(low=1) | None)
        if M is not None and M != C.shape[0]:
            raise param_error("n_centers", owner, f"None or the number of rows of the centres array "
                                                  f"({C.shape[0]})", n_centers)
        return C, None
    method = check_param(method.lower(), "method", owner, OneOf(*CENTER_METHODS))
    M = check_param(n_centers, "n_centers", owner, Integral(low=1))
    if M > n:
        raise _n_centers_error(owner, n, n_centers)
    rng = generator(random_state, owner)
    if method == "uniform":
        idx = np.sort(rng.choice(n, size=M, replace=False)).astype(np.int64)
        return X[idx], idx
    if method == "kmeans":
        from sklearn.cluster import MiniBatchKMeans
        km = MiniBatchKMeans(n_clusters=M, random_state=int(rng.integers(2 ** 31 - 1)), n_init=3,
                             batch_size=max(1024, 3 * M))
        km.fit(X)
        return np.ascontiguousarray(km.cluster_centers_, dtype=X.dtype), None
    scores = leverage_scores(X, M, kernel=kernel, penalty=penalty, rng=rng, owner=owner)
    p = scores / scores.sum()
    n_pos = int(np.count_nonzero(p))
    if n_pos < M:  # fewer points with a positive score than centres: fill uniformly from the rest
        idx = np.flatnonzero(p)
        rest = np.setdiff1d(np.arange(n), idx)
        idx = np.concatenate([idx, rng.choice(rest, size=M - n_pos, replace=False)])
    else:
        idx = rng.choice(n, size=M, replace=False, p=p)
    idx = np.sort(idx).astype(np.int64)
    return X[idx], idx


def leverage_scores(X, n_centers, *, kernel=None, penalty=None, rng=None, owner="leverage_scores"):
    r"""Approximate ridge leverage scores :math:`\tilde l_i` (see :func:`select_centers`), shape (n,), float64.

    ``X`` is a validated array; ``rng`` a resolved Generator.
    """
    from ..compress._resolve import median_bandwidth
    from ..kernels import make_kernel
    n = X.shape[0]
    if kernel is None:
        kernel = make_kernel("gaussian", bandwidth=median_bandwidth(X))
    kernel = check_param(kernel, "kernel", owner, InstanceOf(Kernel, "a Kernel object"))
    X64 = X.astype(np.float64, copy=False)
    s = min(n, 2 * n_centers)
    S = X64[np.sort(rng.choice(n, size=s, replace=False))]
    diag = np.asarray(kernel.diag(X64), dtype=np.float64)
    lam = check_param(penalty, "penalty", owner, Real(low=0, low_open=True) | None)
    if lam is None:
        lam = float(np.mean(diag)) / n_centers
    K_SS = np.asarray(kernel(S, S), dtype=np.float64)
    K_SS[np.diag_indices_from(K_SS)] += lam * s
    L = scipy.linalg.cholesky(K_SS, lower=True, check_finite=False)
    # rows of X in blocks whose n_b x s kernel block (and its triangular solve) fit the memory budget
    budget = get_options().memory
    block = int(max(1, min(n, budget // max(1, 3 * 8 * s))))
    quad = np.empty(n)
    for a in range(0, n, block):
        b = min(n, a + block)
        K_bS = np.asarray(kernel(X64[a:b], S), dtype=np.float64)  # (n_b, s), within the budget
        Z = scipy.linalg.solve_triangular(L, K_bS.T, lower=True, check_finite=False)
        quad[a:b] = np.einsum("ij,ij->j", Z, Z)
    return np.maximum(diag - quad, 0.0) / (lam * n)
