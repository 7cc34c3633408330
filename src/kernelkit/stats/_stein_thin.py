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

from .._validation import OneOf, check_param, check_points, param_error
from ._ksd_common import check_count, scores_at, stein_kernel

__all__ = ["stein_thin"]


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
