r"""Stein thinning (Riabiz, Chen, Cockayne, Swietach, Niederer, Mackey & Oates, JRSS B 2022).

Greedy selection of m points of a sample (typically biased MCMC output) that minimises the
kernel Stein discrepancy of their empirical measure to the target p:

.. math::

    \pi_t = \arg\min_{i} \; \tfrac12 k_p(x_i, x_i) + \sum_{a < t} k_p(x_{\pi_a}, x_i),
    \qquad \mathrm{KSD}_t = \frac{1}{t}\Big(\sum_{a, b \le t} k_p(x_{\pi_a}, x_{\pi_b})\Big)^{1/2}.

Each step evaluates one Stein kernel column :math:`k_p(x_{\pi_t}, \cdot)` over the n points:
O(n d) time and O(n) memory a step, O(n m d) in all, never an n x n matrix.
"""

from __future__ import annotations

import numpy as np

from .._validation import Integral, OneOf, check_param, check_points, param_error
from ..engine import kernel_sum
from ..kernels import Kernel
from ._ksd_common import check_count, scores_at, stein_kernel

__all__ = ["stein_thin", "stein_kernel_thin"]


def stein_thin(X, score, m, kernel="imq", *, bandwidth=None, replace=True):
    r"""Stein thinning: m points of X chosen greedily to minimise the KSD of their empirical measure.

    At step t the point minimising :math:`\tfrac12 k_p(x_i, x_i) + \sum_{a<t} k_p(x_{\pi_a}, x_i)`
    is added (the increase of :math:`t^2 \mathrm{KSD}_t^2`); ties go to the smaller index.

    Parameters
    ----------
    X : array of shape (n, d)
        The sample (data units), e.g. MCMC output.
    score : callable or array of shape (n, d)
        ``score(X) -> grad log p(X)`` or the scores at X (units 1 / data units).
    m : int >= 1
        Number of points to select (at most n when ``replace`` is False).
    kernel : Kernel or str
        Base kernel of the Stein kernel (default ``"imq"``, :math:`(1 + r^2/c^2)^{-1/2}`, the choice of
        Riabiz et al.); see :class:`SteinKernel`.
    bandwidth : float, optional
        Bandwidth of a kernel by name (data units); default the median heuristic on X
        (Riabiz et al.'s "med" setting with an isotropic preconditioner).
    replace : bool
        True (default, as the paper): a point may be selected more than once (the empirical
        measure then weighs it by its multiplicity); False: distinct points only.

    Returns
    -------
    indices : int64 array of shape (m,)
        Rows of X in the order they were picked.
    ksd : float64 array of shape (m,)
        :math:`\mathrm{KSD}_t` of the first t picks (V-statistic, with multiplicities), t = 1..m.
    """
    owner = "stein_thin"
    X = check_points(X, "X", owner)
    n = X.shape[0]
    replace = check_param(replace, "replace", owner, OneOf(True, False))
    m = check_count(m, "m", owner)
    if not replace and m > n:
        raise param_error("m", owner, f"an int in [1, {n}] (the number of points) when replace=False", m)
    S = scores_at(score, X, owner)
    kp = stein_kernel(X, kernel, bandwidth, owner)
    Xc = X.astype(np.float64) - X.astype(np.float64).mean(axis=0)
    diag = kp.diag(X, scores=S)
    acc = np.zeros(n)  # sum over picks a < t of k_p(x_{pi_a}, x_i)
    taken = np.zeros(n, dtype=bool)
    idx = np.empty(m, dtype=np.int64)
    path = np.empty(m)
    total = 0.0
    for t in range(m):
        obj = 0.5 * diag + acc
        if not replace:
            obj = np.where(taken, np.inf, obj)
        i = int(np.argmin(obj))
        col = kp._block(Xc[i:i + 1], S[i:i + 1], Xc, S)[0]  # k_p(x_i, x_j) for every j
        total += 2.0 * acc[i] + col[i]
        acc += col
        taken[i] = True
        idx[t] = i
        path[t] = np.sqrt(max(total, 0.0)) / (t + 1)
    return idx, path


class _AugmentedStein(Kernel):
    """``k_p`` as a kernel on augmented points ``z = (x - mean, s(x))`` in R^{2d} (private).

    The kernel-thinning walk evaluates kernels of points only; carrying each point's score beside it
    makes the Stein kernel one of them. Not stationary (the score half must never be centred).
    """

    family = "stein"

    def __init__(self, kp, d):
        self.kp = kp
        self.d = int(d)
        self._freeze()

    def _params(self):
        return {"base": self.kp.base_kernel, "d": self.d}

    def _check_features(self, d, owner):
        if d != 2 * self.d:
            raise param_error("X", owner, f"points with {2 * self.d} columns (x and its score)", d)

    def _block(self, A, B):
        A = np.asarray(A, dtype=np.float64)
        B = np.asarray(B, dtype=np.float64)
        d = self.d
        return self.kp._block(A[:, :d], A[:, d:], B[:, :d], B[:, d:])

    def _diag(self, A):
        p0, dp0 = self.kp._phi0()
        S = np.asarray(A[:, self.d:], dtype=np.float64)
        return p0 * np.einsum("ij,ij->i", S, S) - 2.0 * self.d * dp0


def stein_kernel_thin(X, score, size, kernel="imq", *, bandwidth=None, delta=0.5, random_state=None):
    r"""Stein kernel thinning: kernel thinning with a mean-zero Stein kernel as the target kernel.

    Kernel thinning (KT-SPLIT, then KT-SWAP; :func:`kernelkit.kernel_thin`, method "kt") run with the
    Langevin Stein kernel :math:`k_p` of the model p (:class:`SteinKernel`) as both the split and the
    target kernel. Since :math:`E_{x \sim p} k_p(x, \cdot) = 0`, the target's embedding is zero and
    KT-SWAP minimises the coreset's squared KSD to p,

    .. math::

        \mathrm{KSD}^2(\mathcal{C}) = \frac{1}{s^2}\sum_{a, b \in \mathcal{C}} k_p(x_a, x_b),

    rather than its MMD to the input (goodpoints' ``mean0``; Dwivedi & Mackey 2022, Stein kernel
    thinning), so the coreset corrects a biased sample (burn-in, a wrong step size) toward p, as
    :func:`stein_thin` does greedily. The walk evaluates :math:`k_p` on points carried with their
    scores (NumPy blocks through the engine's reference path): O(n^2 d) time, memory within the budget.

    Parameters
    ----------
    X : array of shape (n, d)
        The sample (data units), e.g. MCMC output.
    score : callable, array of shape (n, d) or None
        ``score(X) -> grad log p(X)`` or the scores at X (units 1 / data units); None when ``kernel`` is a
        :class:`SteinKernel` with its own score.
    size : int in [1, n]
        Number of points in the coreset.
    kernel : str, Kernel or SteinKernel
        Base kernel of the Stein kernel (default ``"imq"``, :math:`(1 + r^2/c^2)^{-1/2}`), or a
        SteinKernel.
    bandwidth : float > 0, optional
        Bandwidth of a base kernel given by name (data units); default the median heuristic on X.
    delta : float in (0, 1]
        Failure probability of the KT-SPLIT thresholds.
    random_state : None, int >= 0, SeedSequence or Generator

    Returns
    -------
    indices : int64 array of shape (size,)
        Rows of X (KT-SWAP may hold a point twice, as in the paper).
    ksd : float
        :math:`\mathrm{KSD}(\mathcal{C})` of the coreset (V-statistic, units of the score).
    """
    from ..compress._kt import _check_delta, run_kt, seed_sequence
    from ._stein import SteinKernel

    owner = "stein_kernel_thin"
    X = check_points(X, "X", owner)
    n, d = X.shape
    size = check_param(size, "size", owner, Integral(low=1, high=n))
    delta = _check_delta(delta, owner)
    if isinstance(kernel, SteinKernel):
        if bandwidth is not None:
            raise param_error("bandwidth", owner, "None with a SteinKernel (it carries its own base kernel)",
                              bandwidth)
        kp = kernel
        if score is None:
            score = kernel.score
    else:
        kp = stein_kernel(X, kernel, bandwidth, owner)
    S = scores_at(score, X, owner)
    X64 = X.astype(np.float64)
    Z = np.ascontiguousarray(np.concatenate([X64 - X64.mean(axis=0), S], axis=1))
    kz = _AugmentedStein(kp, d)
    idx = run_kt(Z, size, kz, kz, delta, seed_sequence(random_state, owner), mean0=True)
    C = Z[idx]
    value = float(np.sum(kernel_sum(kz, C, C, backend="numpy"))) / size ** 2
    return np.asarray(idx, dtype=np.int64), float(np.sqrt(max(value, 0.0)))
