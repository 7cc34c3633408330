r"""MMDAgg: the MMD test aggregated over a collection of kernels (Schrab et al., JMLR 2023, arXiv 2110.15073).

For kernels :math:`k_1..k_L` with weights :math:`w_\ell` (uniform: 1/L), the test rejects when, for some
:math:`\ell`, the statistic :math:`T_\ell` exceeds the :math:`(1 - u_\alpha w_\ell)`-quantile of its
resampled null; the correction :math:`u_\alpha` is the largest u with

.. math::

    P\Big(\max_\ell \big(T^{(b)}_\ell - q_\ell(1 - u w_\ell)\big) > 0\Big) \le \alpha ,

estimated with B2 further resampled values and found by B3 steps of bisection on
:math:`u \in (0, \min_\ell 1 / w_\ell)`; the quantiles :math:`q_\ell` come from B1 resampled values plus the
observed one (the paper's B1 / B2 / B3 scheme, its Algorithm 1). The same permutations (or Rademacher signs)
serve every kernel: their statistics are quadratic forms, all taken in one pass over each kernel's matrix of
the pooled sample (its upper triangle, in tiles).
"""

from __future__ import annotations

import math
import time

import numpy as np

from .._random import generator
from .._validation import Integral, OneOf, check_param, param_error
from ..kernels import Gaussian, Kernel, Laplace
from ._mmd_core import (PooledSums, check_alpha, check_samples, h_diag_sum, label_columns, shared_sqdists,
                        sign_columns)
from ._result import TestResult

__all__ = ["mmdagg_test", "mmdagg_bandwidths"]

_FAMILIES = ("gaussian", "laplace")
#: rows of each sample used to choose the default bandwidths (the paper's code uses 500)
MAX_BANDWIDTH_ROWS = 500


def mmdagg_bandwidths(X, Y, number_bandwidths=10, distance="euclidean"):
    r"""The default collection of bandwidths of MMDAgg, in the paper's convention (data units).

    From the distances :math:`\|x_i - y_j\|` (Euclidean, or L1 with ``distance="l1"``: the Laplace
    kernel's) between the first 500 rows of X and of Y: with :math:`\lambda_{\min}` half the smallest
    distance (half the 5% quantile, at least 0.05, when the smallest is below 0.1) and
    :math:`\lambda_{\max}` twice the largest (at least 0.6), the ``number_bandwidths`` values
    :math:`\lambda_{\min} (\lambda_{\max}/\lambda_{\min})^{i/(N_b - 1)}`, a geometric grid.

    Parameters
    ----------
    X, Y : arrays of shape (n, d) and (m, d)
        The two samples (data units).
    number_bandwidths : int >= 1, default 10
        N_b, the size of the collection.
    distance : {"euclidean", "l1"}
        The distance the bandwidths scale.

    Returns
    -------
    array of shape (number_bandwidths,)
        Bandwidths lambda, for :math:`\exp(-\|x - y\|_2^2/\lambda^2)` (Gaussian) and
        :math:`\exp(-\|x - y\|_1/\lambda)` (Laplace).
    """
    from ..kernels import l1dist, sqdist
    distance = check_param(distance, "distance", "mmdagg_bandwidths", OneOf("euclidean", "l1"))
    A = np.asarray(X[:MAX_BANDWIDTH_ROWS], dtype=np.float64)
    B = np.asarray(Y[:MAX_BANDWIDTH_ROWS], dtype=np.float64)
    dist = (l1dist(A, B) if distance == "l1" else np.sqrt(sqdist(A, B))).ravel()
    if dist.min() < 0.1:
        lo = max(float(np.sort(dist)[int(math.floor(dist.size * 0.05))]), 0.1)
    else:
        lo = float(dist.min())
    lo /= 2
    hi = 2 * max(float(dist.max()), 0.3)
    if number_bandwidths == 1:
        return np.array([math.sqrt(lo * hi)])
    return lo * (hi / lo) ** (np.arange(number_bandwidths) / (number_bandwidths - 1))


def _collection(kernels, bandwidths, number_bandwidths, X, Y, owner):
    """The list of Kernel objects and their labels."""
    if kernels is not None and not isinstance(kernels, str) and all(isinstance(k, Kernel) for k in kernels):
        if bandwidths is not None:
            raise param_error("bandwidths", owner, "None when 'kernels' lists Kernel objects", bandwidths)
        ks = list(kernels)
        if not ks:
            raise param_error("kernels", owner, "a non-empty list of Kernel objects or family names", kernels)
        return ks, [repr(k) for k in ks]
    fams = _FAMILIES if kernels is None else ((kernels,) if isinstance(kernels, str) else tuple(kernels))
    for f in fams:
        check_param(f, "kernels", owner, OneOf(*_FAMILIES))
    if not fams:
        raise param_error("kernels", owner, "a non-empty list of Kernel objects or family names", kernels)
    if bandwidths is not None:
        lam = np.asarray(bandwidths, dtype=np.float64).ravel()
        if lam.size == 0 or not np.all(np.isfinite(lam) & (lam > 0)):
            raise param_error("bandwidths", owner, "a non-empty array of finite floats > 0", bandwidths)
    ks, labels = [], []
    for f in fams:
        # each family's bandwidths scale its own distance (the paper's code: L1 for Laplace, L2 for Gaussian)
        fam_lam = lam if bandwidths is not None else mmdagg_bandwidths(
            X, Y, number_bandwidths, distance="l1" if f == "laplace" else "euclidean")
        for b in fam_lam:
            # paper convention -> kernelkit's: exp(-r^2 / lambda^2) = Gaussian(lambda / sqrt 2);
            # exp(-||x - y||_1 / lambda) = Laplace(lambda, distance="l1")
            ks.append(Gaussian(b / math.sqrt(2)) if f == "gaussian" else Laplace(b, distance="l1"))
            labels.append(f"{f}, lambda={b:.6g}")
    return ks, labels


def _level_correction(M1_sorted, M2, weights, alpha, B3):
    """u by B3 bisection steps and the per-kernel quantiles at u (Schrab et al., Algorithm 1, step 2)."""
    B1p = M1_sorted.shape[1]

    def quantiles(u):
        idx = np.ceil(B1p * (1 - u * weights)).astype(np.int64) - 1
        idx = np.clip(idx, 0, B1p - 1)
        return M1_sorted[np.arange(M1_sorted.shape[0]), idx]

    u_lo, u_hi = 0.0, float(np.min(1 / weights))
    for _ in range(B3):
        u = (u_lo + u_hi) / 2
        P = np.mean(np.max(M2 - quantiles(u)[:, None], axis=0) > 0)
        if P <= alpha:
            u_lo = u
        else:
            u_hi = u
    return u_lo, quantiles(u_lo)


def mmdagg_test(X, Y, kernels=None, *, bandwidths=None, number_bandwidths=10, method="auto", alpha=0.05, B1=2000,
                B2=2000, B3=50, random_state=None, memory=None, threads=None):
    r"""MMDAgg two-sample test: MMD tests over a collection of kernels, aggregated at level alpha.

    Each kernel's statistic is the paired U-statistic
    :math:`\frac{1}{n(n-1)}\sum_{i \ne j} h_{ij}` with the wild bootstrap (n = m), or
    :math:`\mathrm{MMD}_u^2` with permutations; the resampled values (the same draws for every kernel) give
    per-kernel quantiles, and the level correction :math:`u_\alpha` is found by bisection (see the module
    docs). The test is of level alpha (up to the Monte Carlo error of B2) and adapts to the best bandwidth.

    Parameters
    ----------
    X : array of shape (n, d)
        First sample (units of the data), n >= 2.
    Y : array of shape (m, d)
        Second sample, m >= 2, same d.
    kernels : None, str, list of str, or list of Kernel
        Families ('gaussian', 'laplace'; default both, as the paper's 'laplace_gaussian'), each taken at every
        bandwidth; or Kernel objects (then ``bandwidths`` must be None). Laplace is the paper's, of the L1
        distance (:math:`\exp(-\|x-y\|_1/\lambda)`, ``Laplace(lambda, distance="l1")``), with its default
        bandwidths from L1 distances.
    bandwidths : array of floats > 0, optional
        Bandwidths lambda in the paper's convention (Gaussian :math:`\exp(-\|x-y\|^2/\lambda^2)`, i.e.
        kernelkit ``Gaussian(lambda / sqrt(2))``); default :func:`mmdagg_bandwidths` (data units).
    number_bandwidths : int >= 1, default 10
        Size of the default collection.
    method : {"auto", "wild", "permutation"}
        "auto": wild bootstrap when n == m, else permutations.
    alpha : float in (0, 1), default 0.05
    B1, B2 : int >= 1, default 2000
        Resampled values for the quantiles and for the level correction.
    B3 : int >= 1, default 50
        Bisection steps.
    random_state : None, int >= 0, SeedSequence or Generator
        Seeds the B1 + B2 draws (B1 first).
    memory, threads : optional
        Engine options.

    Returns
    -------
    TestResult
        ``statistic``: the largest standardised excess :math:`\max_\ell (T_\ell - q_\ell)`, positive iff the
        test rejects; ``threshold`` 0; ``pvalue`` NaN (the aggregated test has none); ``reject``.
        ``details``: ``u`` (level correction), ``kernels`` (list of dicts with ``kernel``, ``label``,
        ``statistic``, ``threshold`` and ``reject`` for each kernel, whose single test runs at level
        ``u * w``), ``weights``, ``method``, ``B1``, ``B2``, ``B3``, ``seconds``.
    """
    owner = "mmdagg_test"
    method = check_param(method, "method", owner, OneOf("auto", "wild", "permutation"))
    alpha = check_alpha(alpha, owner)
    number_bandwidths = check_param(number_bandwidths, "number_bandwidths", owner, Integral(low=1))
    B1 = check_param(B1, "B1", owner, Integral(low=1))
    B2 = check_param(B2, "B2", owner, Integral(low=1))
    B3 = check_param(B3, "B3", owner, Integral(low=1))
    X, Y = check_samples(X, Y, owner)
    n, m = X.shape[0], Y.shape[0]
    if method == "auto":
        method = "wild" if n == m else "permutation"
    if method == "wild" and n != m:
        raise param_error("method", owner, "'permutation' or 'auto' when n != m (the wild bootstrap pairs x_i "
                          "with y_i)", method, shown=f"'wild' with n={n}, m={m}")
    ks, labels = _collection(kernels, bandwidths, number_bandwidths, X, Y, owner)
    L = len(ks)
    weights = np.full(L, 1.0 / L)
    rng = generator(random_state, owner)
    t0 = time.perf_counter()
    Z = np.concatenate([X, Y])
    if method == "wild":
        cols = sign_columns(rng, n, B1 + B2).astype(np.float64)
    else:
        cols = label_columns(rng, n + m, n, B1 + B2)
    R2 = shared_sqdists(Z, ks, memory)   # one distance matrix per distance for the whole collection
    M = np.empty((L, B1 + B2 + 1))
    for i, k in enumerate(ks):
        sums = PooledSums(k, Z, memory, threads, sqdists=R2)
        if method == "wild":
            M[i] = sums.sign_stats(cols, h_diag_sum(k, X, Y), True)
        else:
            M[i] = sums.label_stats(cols, n, m, True)
    obs = M[:, 0]
    M1_sorted = np.sort(M[:, :B1 + 1], axis=1)   # the observed value counts among the B1 draws
    M2 = M[:, B1 + 1:]
    u, q = _level_correction(M1_sorted, M2, weights, alpha, B3)
    excess = obs - q
    reject = bool(np.max(excess) > 0)
    per = [{"kernel": k, "label": lab, "statistic": float(t), "threshold": float(th), "reject": bool(t > th)}
           for k, lab, t, th in zip(ks, labels, obs, q)]
    details = {"u": u, "kernels": per, "weights": weights, "method": method, "B1": B1, "B2": B2, "B3": B3,
               "n": n, "m": m, "seconds": time.perf_counter() - t0}
    return TestResult(f"MMDAgg two-sample, {L} kernels, {method}", float(np.max(excess)), math.nan, 0.0, alpha,
                      reject, None, details)
