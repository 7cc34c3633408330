r"""KCI: the kernel conditional independence test (Zhang, Peters, Janzing & Schoelkopf, UAI 2011).

H0: :math:`X \perp Y \mid Z`. With centred Gram matrices
:math:`\tilde K = H K H` (:math:`H = I - \frac1n 11^\top`) of :math:`\ddot X = (X, Z)`,
of Y and of Z, the kernel ridge regression on Z with regularisation
:math:`\varepsilon` leaves the residual operator

.. math::

    R_Z = I - \tilde K_Z(\tilde K_Z + \varepsilon I)^{-1} = \varepsilon(\tilde K_Z + \varepsilon I)^{-1},
    \qquad \tilde K_{\ddot X|Z} = R_Z \tilde K_{\ddot X} R_Z,\quad \tilde K_{Y|Z} = R_Z \tilde K_Y R_Z,

and the statistic is :math:`T = \frac1n \mathrm{tr}(\tilde K_{\ddot X|Z}\tilde K_{Y|Z})`.
Under H0 (the paper's Proposition 5), T is distributed approximately as
:math:`\frac1n \sum_k \lambda_k z_k^2` with :math:`z_k` i.i.d. N(0, 1) and
:math:`\lambda_k` the eigenvalues of :math:`W = \tilde K_{\ddot X|Z} \circ \tilde K_{Y|Z}`
(elementwise product: the Gram matrix of the vectors :math:`\psi_t \otimes \phi_t`
of the paper). Its mean and variance are :math:`\mathrm{tr}(W)/n` and
:math:`2\,\mathrm{tr}(W^2)/n^2 = 2\|W\|_F^2 / n^2`, which the gamma approximation matches.

Limits: dense n x n matrices (about 8 of them, float64), an :math:`O(n^3)`
Cholesky factorisation of :math:`\tilde K_Z + \varepsilon I` and four n x n
products (and an eigendecomposition of W for the simulated null), so n is capped (``max_n``, default 3,000: about 0.6 GB and tens
of seconds) and the matrices must fit the memory budget.
"""

from __future__ import annotations

import numpy as np
import scipy.linalg

from .._options import get_options, options
from .._random import generator
from .._validation import Integral, OneOf, Real, check_param, param_error
from ..engine import kernel_block
from ._hsic_common import check_alpha, check_samples, gamma_test, mc_threshold, resolve_kernel
from ._result import TestResult, permutation_pvalue

__all__ = ["kci_test"]

#: default largest n (O(n^3) time, 64 n^2 bytes)
MAX_N = 3000


def _centred(K):
    K = K - K.mean(axis=0, keepdims=True)
    K -= K.mean(axis=1, keepdims=True)
    return (K + K.T) / 2


def _standardise(A):
    sd = A.std(axis=0)
    return (A - A.mean(axis=0)) / np.where(sd > 0, sd, 1.0)


def kci_matrices(kx, ky, kz, X, Y, Z, epsilon):
    """(K_{X|Z}, K_{Y|Z}) of the module docstring, with X the already stacked (X, Z)."""
    n = X.shape[0]
    mem = max(get_options().memory, 16 * n * n + 1)
    Kx = _centred(np.asarray(kernel_block(kx, X, memory=mem), dtype=np.float64))
    Ky = _centred(np.asarray(kernel_block(ky, Y, memory=mem), dtype=np.float64))
    Kz = _centred(np.asarray(kernel_block(kz, Z, memory=mem), dtype=np.float64))
    A = Kz.copy()
    A[np.diag_indices(n)] += epsilon                                # K_Z + eps I: positive definite
    R = epsilon * scipy.linalg.cho_solve(scipy.linalg.cho_factor(A, check_finite=False), np.eye(n),
                                         check_finite=False)      # eps (K_Z + eps I)^-1
    R = (R + R.T) / 2
    KxR = R @ Kx @ R
    KyR = R @ Ky @ R
    return (KxR + KxR.T) / 2, (KyR + KyR.T) / 2


def kci_test(X, Y, Z, *, kernel_x="gaussian", kernel_y="gaussian", kernel_z="gaussian", bandwidth_x=None,
             bandwidth_y=None, bandwidth_z=None, epsilon=1e-3, standardize=True, method="gamma",
             n_simulations=1000, alpha=0.05, random_state=None, max_n=MAX_N, memory=None, threads=None):
    r"""Kernel conditional independence test of X and Y given Z (KCI, Zhang et al. 2011).

    Statistic :math:`T = \frac1n \mathrm{tr}(\tilde K_{\ddot X|Z}\tilde K_{Y|Z})`, with the X
    kernel on :math:`\ddot X = (X, Z)` and the residualisation on Z by kernel
    ridge regression (see the module docstring for the formulas). Null:

    * ``method="gamma"`` (default, the paper's approximation): a Gamma law
      with mean :math:`\mathrm{tr}(W)/n` and variance :math:`2\|W\|_F^2/n^2`,
      :math:`W = \tilde K_{\ddot X|Z}\circ\tilde K_{Y|Z}` (shape mean^2 / variance,
      scale variance / mean); p-value its survival function at T.
    * ``method="simulation"``: ``n_simulations`` draws of
      :math:`\frac1n\sum_k \lambda_k z_k^2`, :math:`\lambda_k` the eigenvalues of W
      (one more :math:`O(n^3)` eigendecomposition); p-value
      :math:`(1 + \#\{T_b \ge T\}) / (1 + B)`.

    Parameters
    ----------
    X : array of shape (n, d_x) or (n,)
    Y : array of shape (n, d_y) or (n,)
    Z : array of shape (n, d_z) or (n,)
        The conditioning variable, paired with X and Y row by row.
    kernel_x, kernel_y, kernel_z : Kernel or str, default "gaussian"
        Kernels on (X, Z), on Y and on Z. Names are built with the bandwidths.
    bandwidth_x, bandwidth_y, bandwidth_z : float > 0, optional
        Bandwidths of named kernels, in the units of the (standardised, if
        ``standardize``) data; ``bandwidth_x`` is the bandwidth on (X, Z).
        Default: the median heuristic (:func:`kernelkit.median_bandwidth`)
        on (X, Z), on Y and on Z.
    epsilon : float > 0, default 1e-3
        Ridge regularisation of the regression on Z (the paper's
        :math:`\varepsilon`), in the units of the Gram matrices.
    standardize : bool, default True
        Scale every column of X, Y and Z to zero mean and unit variance
        first (as the reference implementation does).
    method : {"gamma", "simulation"}, default "gamma"
    n_simulations : int >= 1, default 1000
        Draws of the simulated null (``method="simulation"``).
    alpha : float in (0, 1), default 0.05
    random_state : None, int >= 0, SeedSequence or Generator
        Draws the simulated null (unused by ``"gamma"``).
    max_n : int >= 2, default 3000
        Largest accepted n: the test costs :math:`O(n^3)` time and about
        :math:`64 n^2` bytes. Raise it knowingly (and the memory budget).
    memory, threads : optional
        Engine options (:func:`kernelkit.options`); the dense matrices must
        fit ``memory``.

    Returns
    -------
    TestResult
        ``statistic``: T; ``threshold``: the (1 - alpha) quantile of the
        gamma null, or the floor(alpha (B + 1))-th largest simulated draw; ``null``:
        the simulated draws (None for gamma); ``details``: the three
        kernels, ``n``, ``epsilon``, and ``mean``, ``variance`` (gamma) or
        ``eigenvalues`` (simulation).
    """
    owner = "kci_test"
    method = check_param(method, "method", owner, OneOf("gamma", "simulation"))
    alpha = check_alpha(alpha, owner)
    epsilon = check_param(epsilon, "epsilon", owner, Real(low=0, low_open=True))
    standardize = check_param(standardize, "standardize", owner, OneOf(False, True))
    B = check_param(n_simulations, "n_simulations", owner, Integral(low=1))
    max_n = check_param(max_n, "max_n", owner, Integral(low=2))
    rng = generator(random_state, owner) if method == "simulation" else None
    X, Y, Z = check_samples((X, Y, Z), ("X", "Y", "Z"), owner, min_n=3)
    n = X.shape[0]
    if n > max_n:
        raise param_error("X", owner, f"at most max_n = {max_n} rows", X, shown=f"{n} rows",
                          hint="KCI costs O(n^3) time and about 64 n^2 bytes; subsample, or raise max_n "
                               "(and the memory budget) knowingly.")
    with options(memory=memory, threads=threads):
        need = 64 * n * n
        budget = get_options().memory
        if need > budget:
            raise param_error("memory", owner, f"at least {need} bytes for KCI's dense matrices at n = {n}",
                              budget, hint="Raise it with memory= or kernelkit.options(memory=...).")
        if standardize:
            X, Y, Z = _standardise(X), _standardise(Y), _standardise(Z)
        XZ = np.hstack([X, Z])
        kx = resolve_kernel(kernel_x, bandwidth_x, XZ, owner, "kernel_x", "bandwidth_x")
        ky = resolve_kernel(kernel_y, bandwidth_y, Y, owner, "kernel_y", "bandwidth_y")
        kz = resolve_kernel(kernel_z, bandwidth_z, Z, owner, "kernel_z", "bandwidth_z")
        KxR, KyR = kci_matrices(kx, ky, kz, XZ, Y, Z, epsilon)
    W = KxR * KyR
    stat = float(W.sum()) / n                     # tr(KxR KyR) / n (both symmetric)
    details = {"kernel_x": kx, "kernel_y": ky, "kernel_z": kz, "n": n, "epsilon": epsilon}
    if method == "gamma":
        mean = float(np.trace(W)) / n
        var = 2.0 * float(np.sum(W * W)) / n ** 2
        _, _, p, thr = gamma_test(stat, mean, var, alpha)
        return TestResult("KCI, gamma approximation", stat, p, thr, alpha, bool(stat > thr), None,
                          {**details, "mean": mean, "variance": var})
    lam = scipy.linalg.eigvalsh(W, check_finite=False)[::-1]
    lam = lam[lam > max(lam[0], 0.0) * 1e-12]
    null = np.empty(B)
    chunk = max(1, int(2 ** 22 // max(1, lam.size)))
    for a in range(0, B, chunk):
        b = min(B, a + chunk)
        null[a:b] = (rng.standard_normal((b - a, lam.size)) ** 2) @ lam / n
    p = permutation_pvalue(stat, null)
    return TestResult("KCI, simulated null", stat, p, mc_threshold(null, alpha), alpha, bool(p <= alpha),
                      null, {**details, "eigenvalues": lam})
