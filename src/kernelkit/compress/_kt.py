r"""Kernel thinning: KT-SPLIT candidates, KT-SWAP selection and refinement.

KT-SWAP (Dwivedi & Mackey, Alg. 1b) targets the (weighted) empirical measure
``P = sum_i p_i delta_{x_i}`` with the target kernel k. With the mean
embedding ``mu(x) = sum_i p_i k(x_i, x)`` (one engine call, n x n tiled,
never stored; for target KT on unweighted input the compiled walk's first
round, which evaluates k at every pair anyway, returns it as a by-product),
the MMD of a coreset C (equal weights 1/s) satisfies

    MMD^2(C) = const + (1/s^2) sum_{c,c' in C} k(c, c') - (2/s) sum_{c in C} mu(c).

KT-SWAP keeps the best candidate (the 2^m KT-SPLIT coresets and a standard
thinning baseline; among candidates tied within rounding, the first), then
replaces each coreset point in turn by the input point that lowers the MMD
most (greedy refinement).

Output size: ``m = floor(log2(n / size))`` rounds give candidates of
``floor(n / 2^m) >= size`` points (``< 2 size``). When a candidate is larger
than ``size`` it is cut to ``size`` points by greedy MMD minimisation among
its own points (kernel herding restricted to the candidate) before the
refinement over all n points. When n = size * 2^m no cut happens and this is
exactly kernel thinning.
"""

from __future__ import annotations

import math

import numpy as np

from .._validation import Real, check_int, check_param, check_points, param_error
from ..engine import kernel_sum
from ._kernelspec import KernelRows, check_kernel
from ._mmd import normalized_weights
from ._split import split_sequence
from .._random import UNSET, resolve_seed_alias, seed_sequence as _seed_sequence

__all__ = ["kt_split", "kt_swap", "seed_sequence", "resample_sequence", "greedy_subset", "run_kt",
           "standard_thin_indices"]


def seed_sequence(seed, owner):
    """SeedSequence from None, an int >= 0, a SeedSequence or a Generator (see :mod:`kernelkit._random`)."""
    return _seed_sequence(seed, owner)


def resample_sequence(p, seed_seq):
    """Systematic resampling: n indices whose empirical measure approximates sum_i p_i delta_i.

    Index i appears floor or ceil of n p_i times, in input order; zero-weight
    points never appear. Used so that KT-SPLIT (an equal-weight halving)
    targets a weighted measure.
    """
    n = p.size
    u0 = np.random.default_rng(seed_seq).random()
    cdf = np.cumsum(p)
    cdf[-1] = 1.0
    return np.minimum(np.searchsorted(cdf, (np.arange(n) + u0) / n, side="right"), n - 1).astype(np.int64)


def standard_thin_indices(n, size, p=None):
    """Every (n/size)-th point counted from the end (weighted: systematic quantiles of p)."""
    if p is None:
        return ((np.arange(size, dtype=np.int64) + 1) * n) // size - 1
    cdf = np.cumsum(p)
    cdf[-1] = 1.0
    return np.minimum(np.searchsorted(cdf, (np.arange(size) + 0.5) / size, side="right"), n - 1).astype(np.int64)


def _mean_embedding(kernel, X, p):
    return np.asarray(kernel_sum(kernel, X, X, p), dtype=np.float64)


def greedy_subset(kernel, X, pool, size, mu, unique=True):
    """Greedy MMD minimisation: ``size`` points of ``X[pool]`` approximating the embedding mu.

    Step t picks the point minimising ``k(x, x) + 2 sum_{chosen} k(x, c) - 2 (t + 1) mu(x)``
    (kernel herding). ``mu`` is given on ``pool``. Returns indices into X.
    """
    pool = np.asarray(pool, dtype=np.int64)
    Xp = X[pool]
    rows = KernelRows(kernel, Xp)
    acc = np.zeros(pool.size)
    diag = np.asarray(kernel.diag(Xp), dtype=np.float64)
    chosen = np.empty(size, dtype=np.int64)
    taken = np.zeros(pool.size, dtype=bool)
    for t in range(size):
        obj = diag + 2.0 * acc - 2.0 * (t + 1) * mu
        if unique:
            obj[taken] = np.inf
        j = int(np.argmin(obj))
        chosen[t] = j
        taken[j] = True
        rows.add(acc, np.array([j]), 1.0)
    return pool[chosen]


def _rel_mmd2(kernel, X, C, mu, self_sum=None):
    if self_sum is None:
        XC = X[C]
        self_sum = float(kernel_sum(kernel, XC, XC).sum())
    return self_sum / C.size ** 2 - 2.0 * float(mu[C].mean())


#: candidates whose scores differ by less than this (relative to the largest |score|) tie
SCORE_TIE_RTOL = 1e-12


def _first_best(scores):
    """Index of the first candidate within rounding of the smallest score.

    The two halves of one halving round have the same MMD to the input in exact
    arithmetic; this makes the choice between such ties the first candidate (A)
    instead of whatever the rounding of their sums decides.
    """
    tol = SCORE_TIE_RTOL * max(1e-300, float(np.max(np.abs(scores))))
    return int(np.flatnonzero(scores <= scores.min() + tol)[0])


def _swap(kernel, X, coresets, size, p, unique=False, mu=None, self_sums=None):
    n = X.shape[0]
    if mu is None:
        mu = _mean_embedding(kernel, X, np.full(n, 1.0 / n) if p is None else p)
    candidates = list(coresets) + [standard_thin_indices(n, size, None if p is None else p)]
    known = [None] * len(candidates) if self_sums is None else list(self_sums) + [None]
    best = candidates[_first_best(np.array([_rel_mmd2(kernel, X, C, mu, ss) for C, ss in zip(candidates, known)]))]
    if best.size > size:
        best = greedy_subset(kernel, X, best, size, mu[best])
    coreset = np.ascontiguousarray(best, dtype=np.int64).copy()
    stat = np.asarray(kernel.diag(X), dtype=np.float64) / size - 2.0 * mu
    stat += (2.0 / size) * np.asarray(kernel_sum(kernel, X[coreset], X), dtype=np.float64)
    KernelRows(kernel, X).refine(coreset, stat, unique=unique)
    return coreset


def run_kt(X, size, kernel, split_kernel, delta, ss, p=None, swap=True, n_for_threshold=None, unique=False,
           mean0=False):
    """Kernel thinning of float64 points X to ``size`` indices (see module docs).

    ``mean0``: the target's kernel mean embedding is zero (a Stein kernel: KT-SWAP then minimises
    the coreset's own kernel sum, its squared KSD, instead of its MMD to the input).
    """
    n = X.shape[0]
    if size == n:
        return np.arange(n, dtype=np.int64)
    m = int(math.floor(math.log2(n / size)))
    while m > 0 and n // 2 ** m < size:  # guard against rounding in log2
        m -= 1
    s_split, s_resample, s_pick = ss.spawn(3)
    seq = np.arange(n, dtype=np.int64) if p is None else resample_sequence(p, s_resample)
    # target KT on unweighted input: the walk's first round yields the mean embedding for free
    free_mu = swap and p is None and m > 0 and split_kernel == kernel and not mean0
    coresets, rows, self_sums = split_sequence(split_kernel, X, seq, m, delta, s_split.spawn(max(m, 1)),
                                               n_for_threshold, row_sums=True) if free_mu else \
        (split_sequence(split_kernel, X, seq, m, delta, s_split.spawn(max(m, 1)), n_for_threshold), None, None)
    if swap:
        mu = np.zeros(n) if mean0 else (None if rows is None else rows / n)
        return _swap(kernel, X, coresets, size, p, unique=unique, mu=mu, self_sums=self_sums)
    C = coresets[int(np.random.default_rng(s_pick).integers(len(coresets)))]
    if C.size > size:
        C = C[standard_thin_indices(C.size, size)]
    return C


def _prep(X, kernel, owner):
    X = check_points(X, "X", owner)
    kernel = check_kernel(kernel, owner)
    return np.ascontiguousarray(X, dtype=np.float64), kernel


def kt_split(X, kernel, m, *, delta=0.5, random_state=None, weights=None, seed=UNSET):
    r"""KT-SPLIT: ``2^m`` balanced coresets of X from ``m`` rounds of the signed kernel walk.

    Parameters
    ----------
    X : array of shape (n, d)
        Input points (units of the data), in stream order.
    kernel : Kernel
        Split kernel (target k, root ``k.power(0.5, d)``, ...).
    m : int >= 0
        Number of halving rounds, 2^m <= n.
    delta : float in (0, 1]
        Failure probability of the walk (thresholds ``2 log(2 n m / (delta 2^j))``).
    random_state : None, int >= 0, SeedSequence or Generator
        Randomness (round j uses ``SeedSequence(random_state).spawn(3)[0].spawn(m)[j]``).
    seed : deprecated alias of ``random_state``.
    weights : array of shape (n,), optional
        Non-negative weights; the walk then runs on a systematic resample of
        the indices (see :func:`kernelkit.compress.kernel_thin`).

    Returns
    -------
    list of 2^m int64 arrays
        Indices into X; sizes ``floor(n / 2^m)`` or ``ceil(n / 2^m)``; together they
        hold every index of the walked sequence once.
    """
    X, kernel = _prep(X, kernel, "kt_split")
    n = X.shape[0]
    m = check_int(m, "m", "kt_split", low=0, high=int(math.floor(math.log2(n))))
    delta = _check_delta(delta, "kt_split")
    p = None if weights is None else normalized_weights(weights, n, "weights", "kt_split")
    ss = seed_sequence(resolve_seed_alias(random_state, seed, "kt_split"), "kt_split")
    s_split, s_resample, _ = ss.spawn(3)
    seq = np.arange(n, dtype=np.int64) if p is None else resample_sequence(p, s_resample)
    return split_sequence(kernel, X, seq, m, delta, s_split.spawn(max(m, 1)))


def kt_swap(X, coresets, kernel, *, size=None, weights=None):
    r"""KT-SWAP: best candidate (or standard thinning) by MMD to X, then greedy point swaps.

    Parameters
    ----------
    X : array of shape (n, d)
        Input points; the target is their (weighted) empirical measure.
    coresets : list of int arrays
        Candidate coresets (indices into X), e.g. from :func:`kt_split`.
    kernel : Kernel
        Target kernel k (MMD is measured with it).
    size : int, optional
        Output size (default: the smallest candidate size).
    weights : array of shape (n,), optional
        Non-negative target weights p_i.

    Returns
    -------
    int64 array of ``size`` indices into X (repeats possible, as in KT-SWAP).
    """
    X, kernel = _prep(X, kernel, "kt_swap")
    n = X.shape[0]
    accepts = f"a non-empty list of non-empty integer index arrays with values in [0, {n})"
    cands = []
    for C in coresets:
        C = np.asarray(C)
        if C.ndim != 1 or C.size < 1 or not np.issubdtype(C.dtype, np.integer) or C.min() < 0 or C.max() >= n:
            raise param_error("coresets", "kt_swap", accepts, coresets, shown=f"an element {C!r}")
        cands.append(C.astype(np.int64))
    if not cands:
        raise param_error("coresets", "kt_swap", accepts, coresets, shown="none")
    size = min(c.size for c in cands) if size is None else check_int(size, "size", "kt_swap", low=1,
                                                                   high=min(c.size for c in cands))
    p = None if weights is None else normalized_weights(weights, n, "weights", "kt_swap")
    return _swap(kernel, X, cands, size, p)


#: the failure probability of the KT-SPLIT thresholds
DELTA = Real(low=0, high=1, low_open=True)


def _check_delta(delta, owner):
    return check_param(delta, "delta", owner, DELTA)
