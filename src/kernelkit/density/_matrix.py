r"""Bandwidth matrices for KernelDensity, applied by whitening so the engine stays isotropic.

With a bandwidth matrix :math:`H = f^2 A` (A symmetric positive definite, f a
scalar factor) the estimate is

.. math:: \hat p(y) = \frac{1}{\sum_i w_i}\sum_i w_i\, |H|^{-1/2}\, K\big(H^{-1/2}(y - x_i)\big)

with K the kernel of unit bandwidth as a density. Writing :math:`A = L L^\top`
(Cholesky) and :math:`z = L^{-1} x`, this is the isotropic estimate of
bandwidth f on the points :math:`z_i`, evaluated at :math:`L^{-1} y`, divided
by :math:`|\det L|`: one triangular transform of the data, then the engine's
isotropic log-sum-exp. scipy's ``gaussian_kde`` is the case A = the weighted
data covariance and f = Scott's factor :math:`n_{eff}^{-1/(d+4)}`.

Degenerate data (a constant column, collinear columns, fewer points than
dimensions) make A singular. The rule here: a clear error naming the columns
involved (the constant ones, or the columns that carry the direction of zero
variance), never a LinAlgError; drop or combine those columns, or use an
isotropic bandwidth (``bandwidth_matrix=None``), which needs no inverse.
"""

from __future__ import annotations

import numpy as np

from .._validation import param_error

__all__ = ["bandwidth_matrix_shape", "whitening", "factor"]

#: eigenvalues below this fraction of the largest make a matrix numerically singular
_RELATIVE_EIGEN_TOL = 1e-12


def _weighted_covariance(X, w):
    """The unbiased weighted covariance (reliability weights), as numpy.cov(X.T, aweights=w)."""
    X = np.asarray(X, dtype=np.float64)
    p = w / w.sum()
    mu = p @ X
    D = X - mu
    denom = 1.0 - np.sum(p * p)
    C = (D * p[:, None]).T @ D
    return C / denom if denom > 0 else C


def _degenerate_error(A, owner, name, what):
    """The error for a singular shape matrix: which columns are constant or carry the null direction."""
    var = np.diag(A)
    const = [j for j in range(A.shape[0]) if not var[j] > _RELATIVE_EIGEN_TOL * max(var.max(), 0.0)]
    if const:
        cols = ", ".join(str(j) for j in const)
        return param_error(name, owner, f"a {what} that is positive definite", "a singular matrix",
                           shown=f"columns {cols} constant (zero variance)",
                           hint="Drop the constant columns, or use bandwidth_matrix=None (one isotropic "
                                "bandwidth, no inverse).")
    vals, vecs = np.linalg.eigh(A)
    v = np.abs(vecs[:, 0])
    cols = ", ".join(str(j) for j in np.flatnonzero(v > 0.1 * v.max()))
    return param_error(name, owner, f"a {what} that is positive definite", "a singular matrix",
                       shown=f"collinear columns {cols} (smallest eigenvalue {vals[0]:.3g} of largest "
                             f"{vals[-1]:.3g})",
                       hint="Drop one of the collinear columns (or project the data onto fewer dimensions: "
                            "with fewer points than columns the covariance is always singular), or use "
                            "bandwidth_matrix=None.")


def bandwidth_matrix_shape(spec, X, w, owner="KernelDensity"):
    """The shape matrix A of ``bandwidth_matrix=spec`` ("full", "diagonal" or an SPD array) for the data X.

    Raises InvalidValueError for a matrix that is not symmetric positive definite, of the wrong shape, or
    (for "full" / "diagonal") for degenerate data.
    """
    d = X.shape[1]
    if isinstance(spec, str):
        C = _weighted_covariance(X, w)
        A = np.diag(np.diag(C)) if spec == "diagonal" else C
        what = f"data covariance ({spec})"
        if X.shape[0] <= d and spec == "full":
            raise param_error("X", owner, "more points than columns for bandwidth_matrix='full' (the sample "
                              "covariance of n <= d points is singular)", X,
                              shown=f"{X.shape[0]} points in {d} columns",
                              hint="Use bandwidth_matrix='diagonal' or None.")
        name = "X"
    else:
        A = np.asarray(spec, dtype=np.float64)
        what = "bandwidth matrix"
        name = "bandwidth_matrix"
        if A.shape != (d, d) or not np.all(np.isfinite(A)):
            raise param_error("bandwidth_matrix", owner, f"'full', 'diagonal' or a finite ({d}, {d}) array", spec)
        if not np.allclose(A, A.T, rtol=1e-12, atol=0.0):
            raise param_error("bandwidth_matrix", owner, "a symmetric positive definite matrix", spec,
                              shown="a matrix that is not symmetric")
        A = 0.5 * (A + A.T)
    vals = np.linalg.eigvalsh(A)
    if not (vals[0] > _RELATIVE_EIGEN_TOL * max(vals[-1], 0.0) and vals[-1] > 0):
        raise _degenerate_error(A, owner, name, what)
    return A


def whitening(A):
    """``(T, L, log|det L|)`` with A = L L^T and T = L^{-1} (lower triangular, float64)."""
    from scipy.linalg import solve_triangular
    L = np.linalg.cholesky(A)
    T = solve_triangular(L, np.eye(A.shape[0]), lower=True)
    return T, L, float(np.sum(np.log(np.diag(L))))


def factor(rule, X, w):
    """Scott's or Silverman's factor f (dimensionless), from Kish's effective sample size."""
    n_eff = float(w.sum() ** 2 / np.sum(w ** 2))
    d = X.shape[1]
    if rule == "scott":
        return n_eff ** (-1.0 / (d + 4))
    return (n_eff * (d + 2) / 4.0) ** (-1.0 / (d + 4))

