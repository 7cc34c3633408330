r"""The kernel a selection method reads: its diagonal and a few of its columns, never the N x N matrix.

Three sources, one interface (``n``, ``diag()``, ``columns(js)``):

* :class:`PointKernel`: points and a kernelkit kernel; a column
  :math:`k(X, x_j)` is the kernel's dense evaluation against one point,
  wider blocks come from the engine (``kernel_block``, within the budget).
* :class:`FeatureKernel`: a feature matrix F (N x D) and the linear kernel
  :math:`k(x_i, x_j) = \phi_i \cdot \phi_j`; columns are ``F @ F[js].T``.
* :class:`ConditionedKernel`: any of the two minus a low-rank term,
  :math:`k(x, x') - \ell(x) \cdot \ell(x')`, the posterior kernel of a
  Gaussian process given noisy observations at training points
  (:func:`posterior_rows`).

Values are returned in float64 whatever the input dtype (kernel values are
computed in the input dtype, accumulated by the caller in float64).
"""

from __future__ import annotations

import numpy as np
import scipy.linalg

from .._options import get_options
from ..engine import kernel_block

__all__ = ["PointKernel", "FeatureKernel", "ConditionedKernel", "posterior_rows", "posterior_features"]


def _chunk(n_rows, n_cols_total, memory, itemsize=8, factor=3):
    """Columns per block so that ``factor`` n_rows x block float64 buffers fit the memory budget (at least 1)."""
    return int(max(1, min(n_cols_total, memory // max(1, factor * itemsize * n_rows))))


class PointKernel:
    """Kernel columns of points ``X`` (n x d) from the engine."""

    def __init__(self, kernel, X):
        self.kernel, self.X = kernel, X
        self.n = X.shape[0]
        self.dtype = X.dtype

    def diag(self):
        return np.asarray(self.kernel.diag(self.X), dtype=np.float64)

    def columns(self, js):
        """``K[:, js]``: k(X[i], X[j]) for every row i, shape (n, len(js)), float64.

        A few columns come from the kernel's own dense evaluation ``k(X, Y)`` (for one query it is several
        times faster than the engine's tiled ``kernel_block``, whose tiles are 48 queries wide); wider
        blocks from ``kernel_block``."""
        js = np.asarray(js, dtype=np.intp)
        Y = self.X[js]
        K = self.kernel(self.X, Y) if len(js) < 16 else kernel_block(self.kernel, self.X, Y)
        return np.asarray(K, dtype=np.float64)

    def cross(self, Y):
        """``k(X, Y)`` for other points Y (m x d), shape (n, m), float64, by blocks of Y within the budget."""
        memory = get_options().memory
        b = _chunk(self.n, Y.shape[0], memory)
        out = np.empty((self.n, Y.shape[0]))
        for s in range(0, Y.shape[0], b):
            out[:, s:s + b] = kernel_block(self.kernel, self.X, Y[s:s + b])
        return out


class FeatureKernel:
    r"""The linear kernel :math:`\phi_i \cdot \phi_j` on the rows of a feature matrix F (n x D)."""

    def __init__(self, F):
        self.F = F
        self.n = F.shape[0]
        self.dtype = F.dtype

    def diag(self):
        F = self.F
        return np.einsum("ij,ij->i", F, F, dtype=np.float64)

    def columns(self, js, rows=None, native=False):
        """``F[:rows] @ F[js].T`` (rows: None for all), float64, or in F's dtype with ``native=True``.

        One column is a matrix-vector product (``F @ phi_j``), not a one-column matrix product."""
        js = np.asarray(js, dtype=np.intp)
        F = self.F if rows is None else self.F[:rows]
        K = (F @ self.F[js[0]])[:, None] if len(js) == 1 else F @ self.F[js].T
        return K if native else np.asarray(K, dtype=np.float64)


class ConditionedKernel:
    r"""``base`` minus a low-rank term: :math:`k(x_i, x_j) - \sum_r L_{ri} L_{rj}` (L given as r x n)."""

    def __init__(self, base, Lt):
        self.base, self.Lt = base, Lt
        self.n, self.dtype = base.n, base.dtype

    def diag(self):
        return self.base.diag() - np.einsum("ij,ij->j", self.Lt, self.Lt)

    def columns(self, js):
        js = np.asarray(js, dtype=np.intp)
        return self.base.columns(js) - self.Lt.T @ self.Lt[:, js]


def posterior_rows(kernel, pool, train, sigma):
    r"""The low-rank term of the posterior kernel on the pool, given noisy observations at ``train``.

    With :math:`K_{PT} = k(\mathrm{pool}, \mathrm{train})` and the Cholesky
    factor :math:`R^\top R = K_{TT} + \sigma^2 I`, returns
    :math:`L = R^{-\top} K_{TP}` (n_train x n_pool), so that

    .. math::

        k_{post}(x, x') = k(x, x') - k(x, T)(K_{TT} + \sigma^2 I)^{-1} k(T, x') = k(x, x') - L_{:x} \cdot L_{:x'} .

    Memory: n_train x n_pool float64 (the kernel columns of the training points).
    """
    K_TT = np.asarray(kernel_block(kernel, train), dtype=np.float64)
    K_TT[np.diag_indices_from(K_TT)] += sigma ** 2
    R = scipy.linalg.cholesky(K_TT, lower=False)
    K_PT = PointKernel(kernel, pool).cross(train)
    return scipy.linalg.solve_triangular(R, K_PT.T, trans="T", lower=False, overwrite_b=True)


def posterior_features(F, F_train, sigma):
    r"""Features of the posterior kernel given noisy observations at the training features.

    For the linear kernel :math:`\phi \cdot \phi'` the posterior kernel is
    :math:`\phi^\top \sigma^2 (F_T^\top F_T + \sigma^2 I)^{-1} \phi'`; with
    :math:`C C^\top = F_T^\top F_T + \sigma^2 I` (Cholesky) the returned
    features are :math:`\sigma\, C^{-1} \phi` (rows: ``sigma * F @ C^{-T}``),
    n x D in the dtype of ``F``; the transform is computed in float64.
    """
    D = F.shape[1]
    Ft = F_train.astype(np.float64, copy=False)
    M = Ft.T @ Ft
    M[np.diag_indices(D)] += sigma ** 2
    C = scipy.linalg.cholesky(M, lower=True)
    T = sigma * scipy.linalg.solve_triangular(C, np.eye(D), lower=True).T    # sigma C^{-T}: phi -> T^T phi
    return np.ascontiguousarray(F @ T.astype(F.dtype))
