r"""Shared machinery of the two-sample tests: input checks, the pooled-sample kernel sums, Monte Carlo thresholds.

Every resampled statistic of a two-sample test is a quadratic form in the
kernel matrix of the pooled sample :math:`Z = (x_1..x_n, y_1..y_m)`, N = n + m.
For a label vector :math:`s \in \{0,1\}^N` (1 = "labelled X", n ones),

.. math::

    S_{xx} = s^\top K s,\quad S_{xy} = (1-s)^\top K s,\quad
    S_{yy} = 1^\top K 1 - S_{xx} - 2 S_{xy},

so the form :math:`s^\top K s` of each permutation, plus the column
:math:`K 1`, gives the biased and the unbiased MMD^2 of that permutation.
The forms come from the upper triangle of K (:func:`symmetric_forms`:
:math:`w^\top K w = 2 w^\top U w`), as BLAS products of float64 kernel
tiles from the engine, half the multiply-adds of :math:`K W`; the tiles and
the weight columns are sized from the memory budget, so the (n + m)^2 kernel
matrix is never formed when it exceeds the budget.
"""

from __future__ import annotations

import math

import numpy as np

from .._blas import blas_threads
from .._options import get_options, options
from .._validation import OneOf, check_pair, check_param, param_error
from ..compress._resolve import resolve_kernel
from ..engine import kernel_block
from ..engine._tiling import progress_bar
from ..kernels import Kernel, RadialKernel
from ._result import check_alpha, mc_threshold  # noqa: F401  (used by the MMD modules)

__all__ = ["check_samples", "check_alpha", "resolve_two_sample_kernel", "mc_threshold", "PooledSums",
           "paired_values", "label_columns", "sign_columns", "shared_sqdists", "symmetric_forms"]

#: weight columns per product in the dense case is 4 x this
MAX_COLUMNS = 256
#: most weight columns per pass over the kernel tiles (large pooled samples)
STRIP_MAX_COLUMNS = 4096
#: pooled samples up to this size (whose dense float64 kernel matrix, twice over, fits a quarter of the
#: budget) use one dense matrix from kernel_block and BLAS products: fewer passes for thousands of columns
DENSE_MAX_N = 4096


def check_samples(X, Y, owner, min_rows=2):
    """X, Y validated (finite, same number of features, common float dtype, at least ``min_rows`` rows each)."""
    X, Y = check_pair(X, Y, owner=owner)
    for name, A in (("X", X), ("Y", Y)):
        if A.shape[0] < min_rows:
            raise param_error(name, owner, f"an array with at least {min_rows} rows (points)", A,
                              shown=f"shape {A.shape}")
    return X, Y


def check_bool(value, name, owner):
    return check_param(value, name, owner, OneOf(False, True))


def resolve_two_sample_kernel(kernel, bandwidth, X, Y, owner):
    """The Kernel for ``(kernel, bandwidth)``; a name without bandwidth takes the median heuristic on X and Y pooled.

    The median heuristic is :func:`kernelkit.median_bandwidth` (median distance between distinct points of at
    most 2,000 pooled rows, drawn with a fixed seed).
    """
    if isinstance(kernel, Kernel) or not isinstance(kernel, str):
        return resolve_kernel(kernel, bandwidth, None, owner, dot_names="allow")
    Z = X if Y is None else np.concatenate([X, Y])
    return resolve_kernel(kernel, bandwidth, Z, owner, dot_names="allow")


def dense_fits(N, memory):
    """True when the pooled sample is small enough for one dense float64 kernel matrix (see DENSE_MAX_N)."""
    return N <= DENSE_MAX_N and 4 * 2 * 8 * N ** 2 <= memory


def shared_sqdists(Z, kernels, memory):
    """For a kernel collection on the pooled sample: {distance: squared distance matrix} (dense case only).

    One float64 N x N matrix per distance that a radial kernel of the collection uses ("euclidean": squared
    Euclidean distances; "l1": squared L1 distances, the argument of an L1 kernel's profile); empty when
    the pooled sample is beyond the dense size.
    """
    if not dense_fits(Z.shape[0], get_options(memory=memory).memory):
        return {}
    from ..kernels import l1dist, sqdist
    Z64 = np.asarray(Z, dtype=np.float64)
    out = {}
    for k in kernels:
        dist = getattr(k, "distance", "euclidean")
        if isinstance(k, RadialKernel) and dist not in out:
            out[dist] = sqdist(Z64, Z64) if dist == "euclidean" else l1dist(Z64, Z64) ** 2
    return out


def tile_shape(N, memory):
    """(rows, cols) of one kernel tile: a float64 tile and the engine's working copy within 1/4 of the budget.

    ``cols >= rows`` (the diagonal block of a row strip lies in its first tile); at most 1,024 rows.
    """
    cells = max(1, int(memory) // (8 * 8 * 2))
    rows = int(min(N, 1024, max(1, math.isqrt(cells))))
    cols = int(min(N, max(rows, cells // rows)))
    return rows, cols


def strip_column_chunk(N, memory):
    """Weight columns per pass over the tiles: the N x c weights within 1/4 of the budget, at most 4,096."""
    return int(max(1, min(STRIP_MAX_COLUMNS, int(memory) // (4 * 8 * max(N, 1)))))


def symmetric_forms(tile, N, W, rows, cols, diag, rowsums=False):
    r"""``q_b = w_b^T M w_b`` for every column of W, M a symmetric N x N matrix given tile by tile.

    With U the strict upper triangle of M plus half its diagonal, :math:`w^\top M w = 2\, w^\top U w`; row
    strip I of U needs only the tiles :math:`M_{I, J}` with J >= I, so the products cost
    :math:`N^2 P` multiply-adds instead of the :math:`2 N^2 P` of :math:`M W` (and half the kernel values).

    Parameters
    ----------
    tile : callable
        ``tile(i0, i1, j0, j1)`` -> float64 array ``M[i0:i1, j0:j1]`` that the caller may overwrite; asked
        only for ``j0 >= i0``.
    N : int
    W : float64 array of shape (N, P)
    rows, cols : int
        Tile shape (``cols >= rows``).
    diag : float64 array of shape (N,)
        The diagonal of M (exact values replace the tiles' diagonal entries).
    rowsums : bool
        Also return M 1 (accumulated from the same tiles).

    Returns
    -------
    q : float64 array of shape (P,)
    s : float64 array of shape (N,) or None
        ``M 1`` when ``rowsums``.
    """
    P = W.shape[1]
    q = np.zeros(P)
    s = np.zeros(N) if rowsums else None
    lower = {}
    for i0 in range(0, N, rows):
        i1 = min(N, i0 + rows)
        b = i1 - i0
        acc = np.zeros((b, P))
        for j0 in range(i0, N, cols):
            j1 = min(N, j0 + cols)
            T = tile(i0, i1, j0, j1)
            if j0 == i0:   # the diagonal block: keep its strict upper triangle and half its (exact) diagonal
                if b not in lower:
                    lower[b] = np.tri(b, k=-1, dtype=bool)
                Dg = T[:, :b]
                Dg[lower[b]] = 0.0
                Dg[np.arange(b), np.arange(b)] = 0.5 * diag[i0:i1]
            acc += T @ W[j0:j1]
            if rowsums:
                s[i0:i1] += T.sum(axis=1)
                s[j0:j1] += T.sum(axis=0)
        q += np.einsum("ij,ij->j", W[i0:i1], acc)
    return 2.0 * q, s


class PooledSums:
    r"""Quadratic forms :math:`w^\top K w` of the pooled sample's kernel matrix for many weight columns.

    Every column's form comes from the upper triangle of K only (:func:`symmetric_forms`): half the
    multiply-adds of :math:`K W`, as BLAS products of float64 kernel tiles. Pooled samples of at most 4,096
    points whose dense matrix fits a quarter of the budget keep K whole (one :func:`kernel_block`); larger
    ones compute each tile from the engine (:func:`kernelkit.engine.kernel_block`) once per pass over the
    columns, so no N x N matrix is formed: the budget holds the tiles and the N x c weights.

    Parameters
    ----------
    kernel : Kernel
    Z : array of shape (N, d)
        The pooled sample (X rows first).
    memory, threads : optional
        Engine options (budget in bytes or a string such as "256MB"; CPU threads, also the BLAS threads of
        the products when given).
    sqdists : dict, optional
        :func:`shared_sqdists` of a kernel collection (dense case only): the matrix of the kernel's
        distance is used.
    """

    def __init__(self, kernel, Z, memory=None, threads=None, sqdists=None):
        self.opts = get_options(memory=memory, threads=threads)
        self._threads = threads
        self.kernel = kernel
        self.N = Z.shape[0]
        self.dense = dense_fits(self.N, self.opts.memory)
        self._diag = None
        self._Z = Z
        if self.dense:
            R = (sqdists or {}).get(getattr(kernel, "distance", "euclidean"))
            if R is not None and isinstance(kernel, RadialKernel):   # distances shared by a collection
                self.D = np.asarray(kernel.profile(R), dtype=np.float64)
            else:
                self.D = np.asarray(self._block(Z, None), dtype=np.float64)
            self.backend = "dense (kernel_block + BLAS, upper triangle)"
            self.chunk = MAX_COLUMNS * 4
            self.rows, self.cols = min(self.N, 512), self.N
        else:
            self.backend = "symmetric tiles (kernel_block + BLAS)"
            self.chunk = strip_column_chunk(self.N, self.opts.memory)
            self.rows, self.cols = tile_shape(self.N, self.opts.memory)

    @property
    def diag(self):
        """k(z_i, z_i) for every pooled point (float64)."""
        if self._diag is None:
            self._diag = np.asarray(self.kernel.diag(self._Z), dtype=np.float64)
        return self._diag

    def _block(self, A, B):
        with options(threads=self.opts.threads):
            return kernel_block(self.kernel, A, B, memory=self.opts.memory)

    def _tile(self, i0, i1, j0, j1):
        if self.dense:
            return self.D[i0:i1, j0:j1].copy()
        Z = self._Z
        return _float64(self._block(Z[i0:i1], Z[j0:j1]))

    def _forms(self, tile, n, diag, columns, B, rowsums=False):
        """Symmetric forms of the n x n matrix given by ``tile`` for B columns, requested in chunks."""
        quad = np.empty(B)
        s = None
        with blas_threads(self._threads), progress_bar(B, self.opts.progress, "kernel test columns") as bar:
            for b0 in range(0, B, self.chunk):
                b1 = min(B, b0 + self.chunk)
                q, si = symmetric_forms(tile, n, columns(b0, b1), self.rows, self.cols, diag,
                                        rowsums=rowsums and s is None)
                quad[b0:b1] = q
                s = si if s is None else s
                bar.update(b1 - b0)
        return quad, s

    def label_stats(self, labels, n, m, unbiased):
        r"""MMD^2 for each label column (bool array (N, B), n True per column).

        With :math:`s` a label column, :math:`S_{xx} = s^\top K s`, :math:`S_{xy} = s^\top K 1 - S_{xx}`,
        :math:`S_{yy} = 1^\top K 1 - S_{xx} - 2 S_{xy}`; biased:
        :math:`S_{xx}/n^2 + S_{yy}/m^2 - 2 S_{xy}/(nm)`; unbiased: the diagonal
        :math:`\sum_{i \in X} k(z_i, z_i)` removed from :math:`S_{xx}` (likewise for Y), divided by
        n(n - 1) and m(m - 1). :math:`K 1` comes from the same tiles as the forms.
        """
        B = labels.shape[1]
        sxx, K1 = self._forms(self._tile, self.N, self.diag,
                              lambda b0, b1: labels[:, b0:b1].astype(np.float64), B, rowsums=True)
        T = float(K1.sum())
        sxy = labels.T.astype(np.float64) @ K1 - sxx
        syy = T - sxx - 2 * sxy
        if not unbiased:
            return sxx / n ** 2 + syy / m ** 2 - 2 * sxy / (n * m)
        dg = self.diag
        dx = dg @ labels
        dy = dg.sum() - dx
        return (sxx - dx) / (n * (n - 1)) + (syy - dy) / (m * (m - 1)) - 2 * sxy / (n * m)

    def sign_stats(self, signs, h_diag_sum, unbiased):
        r"""Wild-bootstrap MMD^2 for each sign column (int8 array (n, B) of +-1), n = m.

        :math:`\epsilon^\top H \epsilon` with the n x n matrix
        :math:`h_{ij} = k(x_i, x_j) + k(y_i, y_j) - k(x_i, y_j) - k(x_j, y_i)` (symmetric), from its upper
        triangle: a quarter of the pooled sample's products. Biased: divided by n^2; unbiased:
        :math:`\sum_i h_{ii}` removed, divided by n(n - 1).
        """
        n, B = signs.shape
        Z = self._Z
        X, Y = Z[:n], Z[n:]
        hdiag = (np.asarray(self.kernel.diag(X), dtype=np.float64) + np.asarray(self.kernel.diag(Y), np.float64)
                 - 2 * paired_values(self.kernel, X, Y))
        if self.dense:
            D = self.D
            H = D[:n, :n] + D[n:, n:] - D[:n, n:] - D[n:, :n]

            def tile(i0, i1, j0, j1):
                return H[i0:i1, j0:j1].copy()
        else:
            def tile(i0, i1, j0, j1):
                T = _float64(self._block(X[i0:i1], X[j0:j1]))
                T += self._block(Y[i0:i1], Y[j0:j1])
                T -= self._block(X[i0:i1], Y[j0:j1])
                T -= self._block(Y[i0:i1], X[j0:j1])
                return T
        quad, _ = self._forms(tile, n, hdiag, lambda b0, b1: np.asarray(signs[:, b0:b1], dtype=np.float64), B)
        if unbiased:
            return (quad - h_diag_sum) / (n * (n - 1))
        return quad / n ** 2


def _float64(K):
    """A fresh kernel block as a writable float64 array (no copy when it already is one)."""
    return K if K.dtype == np.float64 and K.flags.writeable else K.astype(np.float64)


def paired_values(kernel, A, B, block=64):
    """``k(A[i], B[i])`` for every row i (float64), without an n x n matrix.

    Radial kernels use the profile on row-wise squared distances; other kernels the diagonals of
    ``block`` x ``block`` dense blocks.
    """
    A64 = np.asarray(A, dtype=np.float64)
    B64 = np.asarray(B, dtype=np.float64)
    if isinstance(kernel, RadialKernel):
        diff = A64 - B64
        return np.asarray(kernel.profile(np.einsum("ij,ij->i", diff, diff)), dtype=np.float64)
    out = np.empty(A64.shape[0])
    for i in range(0, A64.shape[0], block):
        out[i:i + block] = np.diagonal(kernel._block(A64[i:i + block], B64[i:i + block]))
    return out


def h_diag_sum(kernel, X, Y):
    r""":math:`\sum_i h_{ii} = \sum_i k(x_i, x_i) + k(y_i, y_i) - 2 k(x_i, y_i)` (n = m)."""
    return float(np.sum(kernel.diag(X), dtype=np.float64) + np.sum(kernel.diag(Y), dtype=np.float64)
                 - 2 * paired_values(kernel, X, Y).sum())


def label_columns(rng, N, n, B):
    """Observed labels (first column: X rows) then B permutations: column b marks ``rng.permutation(N)[:n]``.

    The stream: one ``rng.permutation(N)`` per permutation, in order (tests replay it).
    """
    L = np.zeros((N, B + 1), dtype=bool)
    L[:n, 0] = True
    for b in range(B):
        L[rng.permutation(N)[:n], b + 1] = True
    return L


def sign_columns(rng, n, B):
    """Observed signs (all +1) then B Rademacher columns, drawn as one ``rng.integers(0, 2, size=(B, n))``."""
    S = np.ones((n, B + 1), dtype=np.int8)
    S[:, 1:] = (2 * rng.integers(0, 2, size=(B, n)) - 1).T
    return S
