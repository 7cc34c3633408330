r"""Shared machinery of the two-sample tests: input checks, the pooled-sample kernel sums, Monte Carlo thresholds.

Every resampled statistic of a two-sample test is a quadratic form in the
kernel matrix of the pooled sample :math:`Z = (x_1..x_n, y_1..y_m)`, N = n + m.
For a label vector :math:`s \in \{0,1\}^N` (1 = "labelled X", n ones),

.. math::

    S_{xx} = s^\top K s,\quad S_{xy} = (1-s)^\top K s,\quad
    S_{yy} = 1^\top K 1 - S_{xx} - 2 S_{xy},

so one column :math:`K s` per permutation, plus the column :math:`K 1`,
gives the biased and the unbiased MMD^2 of that permutation. All columns of
a test go through one prepared engine call
(:func:`kernelkit.engine.prepare_sum`), in chunks of columns sized from the
memory budget, so the (n + m)^2 kernel matrix is never formed when it
exceeds the budget (the engine tiles it).
"""

from __future__ import annotations

import numpy as np

from .._options import get_options
from .._validation import OneOf, check_pair, check_param, param_error
from ..compress._resolve import resolve_kernel
from ..engine import prepare_sum
from ..kernels import Kernel, RadialKernel
from ._result import check_alpha, mc_threshold  # noqa: F401  (used by the MMD modules)

__all__ = ["check_samples", "check_alpha", "resolve_two_sample_kernel", "mc_threshold", "PooledSums",
           "paired_values", "label_columns", "sign_columns"]

#: most weight columns per engine call
MAX_COLUMNS = 256
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


def column_chunk(N, memory, factor=4):
    """Columns per engine call so that the weights and the result (``factor`` N x c float64 arrays) fit half the budget."""
    return int(max(1, min(MAX_COLUMNS, memory // (2 * factor * 8 * max(N, 1)))))


def dense_fits(N, memory):
    """True when the pooled sample is small enough for one dense float64 kernel matrix (see DENSE_MAX_N)."""
    return N <= DENSE_MAX_N and 4 * 2 * 8 * N ** 2 <= memory


class PooledSums:
    """Kernel sums on the pooled sample Z = [X; Y] for many weight columns, through one prepared engine call.

    Parameters
    ----------
    kernel : Kernel
    Z : array of shape (N, d)
        The pooled sample (X rows first).
    memory, threads : optional
        Engine options (budget in bytes or a string such as "256MB"; CPU threads).
    sqdists : array of shape (N, N), optional
        Squared distances of Z, shared by a collection of radial kernels (dense case only).
    """

    def __init__(self, kernel, Z, memory=None, threads=None, sqdists=None):
        self.opts = get_options(memory=memory, threads=threads)
        self.kernel = kernel
        self.N = Z.shape[0]
        self.dense = dense_fits(self.N, self.opts.memory)
        if self.dense:
            from ..engine import kernel_block
            if sqdists is not None and isinstance(kernel, RadialKernel):   # distances shared by a collection
                self.D = np.asarray(kernel.profile(sqdists), dtype=np.float64)
            else:
                self.D = np.asarray(kernel_block(kernel, Z, memory=self.opts.memory), dtype=np.float64)
            self.K = lambda W: self.D @ W
            self.backend = "dense (kernel_block + BLAS)"
            self.chunk = MAX_COLUMNS * 4
        else:
            self.K = prepare_sum(kernel, Z, memory=memory, threads=threads)
            self.backend = self.K.backend
            self.chunk = column_chunk(self.N, self.opts.memory)
        self._diag = None
        self._Z = Z

    @property
    def diag(self):
        """k(z_i, z_i) for every pooled point (float64)."""
        if self._diag is None:
            self._diag = np.asarray(self.kernel.diag(self._Z), dtype=np.float64)
        return self._diag

    def forms(self, columns, B):
        r"""For ``B`` weight columns, ``(w_b^T K w_b, 1^T K w_b)`` (float64 arrays of shape (B,)).

        ``columns(b0, b1)`` returns the float64 weight columns b0..b1-1, an (N, b1 - b0) array; they are
        requested in chunks of at most :attr:`chunk` columns.
        """
        quad = np.empty(B)
        total = np.empty(B)
        for b0 in range(0, B, self.chunk):
            b1 = min(B, b0 + self.chunk)
            W = columns(b0, b1)
            KW = np.asarray(self.K(W), dtype=np.float64)
            quad[b0:b1] = np.einsum("ij,ij->j", W, KW)
            total[b0:b1] = KW.sum(axis=0)
        return quad, total

    def label_stats(self, labels, n, m, unbiased):
        r"""MMD^2 for each label column (bool array (N, B), n True per column).

        Biased: :math:`S_{xx}/n^2 + S_{yy}/m^2 - 2 S_{xy}/(nm)`; unbiased: the diagonal
        :math:`\sum_{i \in X} k(z_i, z_i)` removed from :math:`S_{xx}` (likewise for Y), divided by n(n - 1)
        and m(m - 1).
        """
        B = labels.shape[1]
        ones = np.ones((self.N, 1))
        T = float(np.asarray(self.K(ones), dtype=np.float64).sum())
        sxx, sx_all = self.forms(lambda b0, b1: labels[:, b0:b1].astype(np.float64), B)
        sxy = sx_all - sxx
        syy = T - sxx - 2 * sxy
        if not unbiased:
            return sxx / n ** 2 + syy / m ** 2 - 2 * sxy / (n * m)
        dg = self.diag
        dx = dg @ labels
        dy = dg.sum() - dx
        return (sxx - dx) / (n * (n - 1)) + (syy - dy) / (m * (m - 1)) - 2 * sxy / (n * m)

    def sign_stats(self, signs, h_diag_sum, unbiased):
        r"""Wild-bootstrap MMD^2 for each sign column (int8 array (n, B) of +-1), n = m.

        With :math:`v = (\epsilon; -\epsilon)`, :math:`v^\top K v = \sum_{i,j} \epsilon_i \epsilon_j h_{ij}`,
        :math:`h_{ij} = k(x_i, x_j) + k(y_i, y_j) - k(x_i, y_j) - k(x_j, y_i)`; biased: divided by n^2;
        unbiased: :math:`\sum_i h_{ii}` removed, divided by n(n - 1).
        """
        n, B = signs.shape
        if self.dense:   # h as one n x n matrix: a quarter of the pooled products
            D = self.D
            H = D[:n, :n] + D[n:, n:] - D[:n, n:] - D[n:, :n]
            quad = np.empty(B)
            for b0 in range(0, B, self.chunk):
                E = np.asarray(signs[:, b0:b0 + self.chunk], dtype=np.float64)
                quad[b0:b0 + self.chunk] = np.einsum("ij,ij->j", E, H @ E)
            return (quad - h_diag_sum) / (n * (n - 1)) if unbiased else quad / n ** 2

        def cols(b0, b1):
            e = np.asarray(signs[:, b0:b1], dtype=np.float64)
            return np.concatenate([e, -e])
        quad, _ = self.forms(cols, B)
        if unbiased:
            return (quad - h_diag_sum) / (n * (n - 1))
        return quad / n ** 2


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
