r"""MMD-FUSE (Biggs, Schrab & Gretton, NeurIPS 2023, arXiv 2306.08777): kernels fused by a soft maximum.

For kernels :math:`k_1..k_L` on the pooled sample Z (N = n + m points, n the smaller sample size), each
normalised statistic is

.. math::

    T_\ell = \frac{n(n-1)\,\sqrt{n(n-1)}\;\widehat{\mathrm{MMD}}^2_u(k_\ell)}
                  {\big(\sum_{i \ne j \le N} k_\ell(z_i, z_j)^2\big)^{1/2}} ,

(the denominator is invariant under permutations of Z), and the fused statistic is the log-mean-exp

.. math::

    \mathrm{FUSE} = \log\Big(\frac{1}{L}\sum_\ell \exp(\lambda T_\ell)\Big) ,

calibrated by permutations: every permutation is a weight column of the kernel sums (the same columns for
all kernels), p = (1 + #{FUSE_b >= FUSE}) / (1 + B), an exact test. For n = m it is the statistic of the
reference implementation; for n != m the reference uses another weighting of the within-sample sums, this
module the standard :math:`\mathrm{MMD}^2_u`.
"""

from __future__ import annotations

import math
import time

import numpy as np
from scipy.special import logsumexp

from .._random import generator
from .._validation import Integral, OneOf, Real, check_param, param_error
from ..engine import kernel_sum
from ..kernels import Gaussian, Kernel, Laplace, l1dist, sqdist
from ._mmd_core import PooledSums, check_alpha, check_samples, label_columns, mc_threshold, shared_sqdists
from ._result import TestResult, permutation_pvalue

__all__ = ["mmdfuse_test", "mmdfuse_bandwidths"]

_FAMILIES = ("gaussian", "laplace")
#: pooled points used to choose the default bandwidths
MAX_BANDWIDTH_POINTS = 2000


def mmdfuse_bandwidths(Z, number_bandwidths=10, distance="euclidean"):
    r"""Default MMD-FUSE bandwidths: ``number_bandwidths`` evenly spaced values (data units).

    From the distances between pooled points (Euclidean, or L1 with ``distance="l1"``: the Laplace
    kernel's; pairs i <= j of at most 2,000 points, zeros replaced by the median): from half the 5% quantile
    to twice the 95% quantile, linearly spaced.
    """
    distance = check_param(distance, "distance", "mmdfuse_bandwidths", OneOf("euclidean", "l1"))
    Z = np.asarray(Z[:MAX_BANDWIDTH_POINTS], dtype=np.float64)
    D = (l1dist(Z, Z) if distance == "l1" else np.sqrt(sqdist(Z, Z)))[np.triu_indices(Z.shape[0])]
    D = D + (D == 0) * np.median(D)
    D.sort()
    lo = D[int(math.floor(D.size * 0.05))] / 2
    hi = D[int(math.floor(D.size * 0.95))] * 2
    return np.linspace(lo, hi, number_bandwidths)


def _squared_kernel(k):
    """k^2 as a kernelkit kernel, for the Gaussian and Laplace families (engine path)."""
    if type(k) is Gaussian:
        return Gaussian(k.bandwidth / math.sqrt(2), distance=k.distance)
    if type(k) is Laplace:
        return Laplace(k.bandwidth / 2, distance=k.distance)
    return None


def _offdiag_square_sum(k, sums, Z, memory, threads):
    r""":math:`\sum_{i \ne j} k(z_i, z_j)^2`."""
    if sums.dense:
        D = sums.D
        return float(np.sum(D * D) - np.sum(np.diag(D) ** 2))
    k2 = _squared_kernel(k)
    if k2 is None:
        raise param_error("kernels", "mmdfuse_test", "Gaussian or Laplace kernels when the pooled sample is too "
                          "large for a dense kernel matrix", k)
    Z64 = Z.astype(np.float64, copy=False)
    total = float(np.sum(kernel_sum(k2, Z64, Z64, memory=memory, threads=threads)))
    return total - float(np.sum(np.asarray(k.diag(Z64), dtype=np.float64) ** 2))


def mmdfuse_test(X, Y, kernels=None, *, bandwidths=None, number_bandwidths=10, n_permutations=2000,
                 lambda_multiplier=1.0, alpha=0.05, random_state=None, memory=None, threads=None):
    r"""MMD-FUSE two-sample test: normalised MMD statistics over a kernel collection, fused by log-mean-exp.

    Parameters
    ----------
    X : array of shape (n, d)
        First sample (units of the data), n >= 2.
    Y : array of shape (m, d)
        Second sample, m >= 2, same d.
    kernels : None, str, list of str, or list of Kernel
        Families 'gaussian' (:math:`\exp(-r^2/(2\lambda^2))`, kernelkit ``Gaussian(lambda)``) and 'laplace'
        (:math:`\exp(-\sqrt 2\, \|x - y\|_1/\lambda)`, ``Laplace(lambda / sqrt 2, distance="l1")``: the L1
        distance, as the reference), each at every bandwidth of its own distance (default both); or Kernel
        objects (``bandwidths`` None).
    bandwidths : array of floats > 0, optional
        Bandwidths lambda (data units); default :func:`mmdfuse_bandwidths` on the pooled sample.
    number_bandwidths : int >= 1, default 10
    n_permutations : int >= 1, default 2000
        B.
    lambda_multiplier : float > 0, default 1
        lambda, the inverse temperature of the soft maximum.
    alpha : float in (0, 1), default 0.05
    random_state : None, int >= 0, SeedSequence or Generator
        Permutation b labels X the rows ``rng.permutation(n + m)[:n]``.
    memory, threads : optional
        Engine options. Beyond the dense size (4,096 pooled points) only Gaussian and Laplace kernels are
        accepted (their squares, needed for the normalisation, are Gaussian and Laplace kernels).

    Returns
    -------
    TestResult
        ``statistic`` FUSE (dimensionless), ``pvalue`` (1 + #{null >= FUSE}) / (1 + B), ``threshold``,
        ``null`` (B permuted FUSE values). ``details``: ``kernels`` (list of dicts with ``kernel``, ``label``
        and ``statistic`` T_l), ``lambda``, ``seconds``.
    """
    owner = "mmdfuse_test"
    alpha = check_alpha(alpha, owner)
    number_bandwidths = check_param(number_bandwidths, "number_bandwidths", owner, Integral(low=1))
    B = check_param(n_permutations, "n_permutations", owner, Integral(low=1))
    lam_mult = check_param(lambda_multiplier, "lambda_multiplier", owner, Real(low=0, low_open=True))
    X, Y = check_samples(X, Y, owner)
    n, m = X.shape[0], Y.shape[0]
    Z = np.concatenate([X, Y])
    if kernels is not None and not isinstance(kernels, str) and all(isinstance(k, Kernel) for k in kernels):
        if bandwidths is not None:
            raise param_error("bandwidths", owner, "None when 'kernels' lists Kernel objects", bandwidths)
        ks = list(kernels)
        labels = [repr(k) for k in ks]
        if not ks:
            raise param_error("kernels", owner, "a non-empty list of Kernel objects or family names", kernels)
    else:
        fams = _FAMILIES if kernels is None else ((kernels,) if isinstance(kernels, str) else tuple(kernels))
        if not fams:
            raise param_error("kernels", owner, "a non-empty list of Kernel objects or family names", kernels)
        for f in fams:
            check_param(f, "kernels", owner, OneOf(*_FAMILIES))
        if bandwidths is not None:
            lam = np.asarray(bandwidths, dtype=np.float64).ravel()
            if lam.size == 0 or not np.all(np.isfinite(lam) & (lam > 0)):
                raise param_error("bandwidths", owner, "a non-empty array of finite floats > 0", bandwidths)
        ks, labels = [], []
        for f in fams:
            fam_lam = lam if bandwidths is not None else mmdfuse_bandwidths(
                Z, number_bandwidths, distance="l1" if f == "laplace" else "euclidean")
            ks += [Gaussian(b) if f == "gaussian" else Laplace(b / math.sqrt(2), distance="l1") for b in fam_lam]
            labels += [f"{f}, lambda={b:.6g}" for b in fam_lam]
    rng = generator(random_state, owner)
    t0 = time.perf_counter()
    cols = label_columns(rng, n + m, n, B)
    R2 = shared_sqdists(Z, ks, memory)
    s = min(n, m)
    scale = s * (s - 1) * math.sqrt(s * (s - 1))
    T = np.empty((len(ks), B + 1))
    for i, k in enumerate(ks):
        sums = PooledSums(k, Z, memory, threads, sqdists=R2)
        norm = math.sqrt(max(_offdiag_square_sum(k, sums, Z, memory, threads), np.finfo(float).tiny))
        T[i] = sums.label_stats(cols, n, m, True) * (scale / norm)
    fuse = logsumexp(lam_mult * T, axis=0, b=1.0 / len(ks))
    stat, null = float(fuse[0]), fuse[1:]
    pvalue = permutation_pvalue(stat, null)
    per = [{"kernel": k, "label": lab, "statistic": float(t)} for k, lab, t in zip(ks, labels, T[:, 0])]
    details = {"kernels": per, "lambda": lam_mult, "n": n, "m": m, "n_permutations": B,
               "seconds": time.perf_counter() - t0}
    return TestResult(f"MMD-FUSE two-sample, {len(ks)} kernels, permutations", stat, pvalue,
                      mc_threshold(null, alpha), alpha, bool(pvalue <= alpha), null, details)
