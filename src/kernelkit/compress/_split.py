r"""KT-SPLIT: the self-balancing signed walk of kernel thinning.

One halving of a sequence ``x_1, x_2, ...`` reads it two points at a time.
With ``A`` and ``B`` the children built so far, ``psi = sum_A k(y, .) -
sum_B k(y, .)`` and ``f = k(x_1, .) - k(x_2, .)``, the pair goes ``x_1 -> A,
x_2 -> B`` with probability ``(1 + alpha / a) / 2`` and the other way round
otherwise, where

* ``alpha = <-psi, f>_k = (sum_B - sum_A)(k(x_1, y) - k(x_2, y))``,
* ``b^2 = ||f||_k^2 = k(x_1, x_1) + k(x_2, x_2) - 2 k(x_1, x_2)``,
* ``a = max(b sigma sqrt(2 log(2 n m / (delta 2^j))), b^2)`` is the adaptive
  threshold of Dwivedi & Mackey (Kernel Thinning, Alg. 1a) for halving round
  ``j = 0, ..., m - 1`` of an input of ``n`` points, and ``sigma^2`` the
  sub-Gaussian constant of the walk, updated after every pair by
  ``sigma^2 += 2 b^2 max(0, 1/2 + (b^2 / (2a) - 1) sigma^2 / a)`` (first pair:
  ``sigma^2 = b^2``).

``m`` rounds halve every coreset of the previous round, which gives ``2^m``
coresets. Rounds run one after the other; the coresets of one round are
independent and run in parallel.

Remainders: a coreset of odd size ``L`` pairs its first ``L - 1`` points and
sends the last one to a child chosen by a fair coin, so its children have
``floor(L/2)`` and ``ceil(L/2)`` points. After ``m`` rounds every coreset has
``floor(n / 2^m)`` or ``ceil(n / 2^m)`` points and every input point is in
exactly one of them: nothing is dropped.

Randomness: round ``j`` draws one uniform per position of its input sequence,
``default_rng(seeds[j]).random(N)`` with ``seeds = SeedSequence(seed).spawn(m)``;
the pair at positions ``(t, t+1)`` of a coreset uses the uniform at ``t``,
an odd last point the uniform at its own position (< 1/2: first child).
The compiled path and the NumPy reference consume them identically, so they
return the same coresets.
"""

from __future__ import annotations

import math

import numpy as np

from ._kernelspec import _kt_ext, use_compiled
from .._options import get_options
from ..engine import kernel_block, kernel_sum

__all__ = ["split_sequence", "log_multiplier"]


def log_multiplier(n, m, delta, j):
    """``2 log(2 n m / (delta 2^j))``: the threshold factor of round j (j from 0)."""
    return 2.0 * math.log(2.0 * n * max(m, 1) / delta) - 2.0 * j * math.log(2.0)


#: pairs per block of the NumPy walk: their kernel values against the points placed before the
#: block come from two engine sums, those within the block from one small dense block
NUMPY_WALK_PAIRS = 128


def _halve_numpy(kernel, X, seq, u, log_mult):
    """NumPy halving of one coreset (positions into ``seq`` order). Returns (A, B) index arrays.

    The walk is sequential in the pairs, but its kernel values are not: for a block of
    ``NUMPY_WALK_PAIRS`` pairs (fewer when their dense block would exceed the memory budget), the sums over the points already in A and in B are two engine
    kernel sums (any kernel, within the memory budget), and the values among the block's own
    points one dense block; the pairs are then decided one by one from those. Used for kernels
    the compiled walk does not cover, and with ``backend="numpy"``.
    """
    L = seq.size
    npair, odd = divmod(L, 2)
    A = np.empty(npair + 1, dtype=np.int64)
    B = np.empty(npair + 1, dtype=np.int64)
    na = 0
    sig2 = 0.0
    # the block's own values (2 pairs x 2 pairs) within the memory budget (kernel_block's 16 bytes a value)
    block = max(1, min(NUMPY_WALK_PAIRS, math.isqrt(int(get_options().memory // 16)) // 2))
    for p0 in range(0, npair, block):
        p1 = min(npair, p0 + block)
        pts = seq[2 * p0:2 * p1]
        P = X[pts]
        if na:
            SA = np.asarray(kernel_sum(kernel, X[A[:na]], P), dtype=np.float64)
            SB = np.asarray(kernel_sum(kernel, X[B[:na]], P), dtype=np.float64)
        else:
            SA = np.zeros(pts.size)
            SB = np.zeros(pts.size)
        Kin = np.asarray(kernel_block(kernel, P, P), dtype=np.float64)
        for q1 in range(0, pts.size, 2):
            q2 = q1 + 1
            k12 = float(Kin[q1, q2])
            bsq = max(float(Kin[q1, q1] + Kin[q2, q2]) - 2.0 * k12, 0.0)
            thresh = max(math.sqrt(sig2 * bsq * log_mult), bsq)
            if sig2 == 0.0:
                sig2 = bsq
            elif thresh != 0.0:
                upd = 0.5 + (bsq / (2.0 * thresh) - 1.0) * sig2 / thresh
                if upd > 0.0:
                    sig2 += 2.0 * bsq * upd
            if thresh == 0.0:
                thresh = 1.0
            alpha = (float(SB[q1]) - float(SB[q2])) - (float(SA[q1]) - float(SA[q2]))
            qa, qb = (q2, q1) if u[2 * p0 + q1] <= 0.5 * (1.0 - alpha / thresh) else (q1, q2)
            A[na] = pts[qa]
            B[na] = pts[qb]
            na += 1
            SA += Kin[:, qa]  # the block's later pairs see this pair's points
            SB += Kin[:, qb]
    nb = na
    if odd:
        if u[L - 1] < 0.5:
            A[na] = seq[L - 1]
            na += 1
        else:
            B[nb] = seq[L - 1]
            nb += 1
    return A[:na].copy(), B[:nb].copy()


def split_sequence(kernel, X, seq, m, delta, seeds, n_for_threshold=None, row_sums=False):
    """Run ``m`` KT-SPLIT rounds on the sequence ``X[seq]``.

    Parameters
    ----------
    kernel : Kernel
        Split kernel.
    X : float64 array (n, d)
    seq : int64 array (N,)
        Indices into X, in stream order (repeats allowed, e.g. after resampling).
    m : int >= 0
        Number of halving rounds.
    delta : float in (0, 1]
        Failure probability of the walk.
    seeds : list of m SeedSequence
        One per round.
    n_for_threshold : int, optional
        The n in the threshold factor (default N).
    row_sums : bool
        Also return by-products of the compiled walk, which evaluates these
        kernel values anyway (the NumPy walk returns None for both):
        ``rows``, ``sum_u k(X[seq[t]], X[seq[u]])`` over the whole sequence for
        every position t (the first round sees every pair: KT-SWAP's mean
        embedding when k is the target kernel), and ``self_sums``, the sum of
        k over all ordered pairs of each output coreset (from the last round's
        running sums).

    Returns
    -------
    list of 2^m int64 arrays (indices into X), and with ``row_sums`` a triple
    (that list, rows float64 (N,) aligned with ``seq`` or None, self_sums float64 (2^m,) or None).
    """
    seq = np.ascontiguousarray(seq, dtype=np.int64)
    N = seq.size
    if m == 0:
        return ([seq.copy()], None, None) if row_sums else [seq.copy()]
    n_thr = N if n_for_threshold is None else n_for_threshold
    table = use_compiled(kernel, X)
    starts = np.array([0, N], dtype=np.int64)
    kc = None
    rows = None
    threads = get_options().resolved_threads()
    for j in range(m):
        u = np.random.default_rng(seeds[j]).random(N)
        lm = log_multiplier(n_thr, m, delta, j)
        if table is not None:
            seq_in = seq
            seq, starts, kc, level_rows = _kt_ext.halve_level(X, seq, starts, kc, table[0], table[1], u, lm,
                                                              threads, int(row_sums and j == 0))
            if level_rows is not None:  # positions of the output sequence -> positions of the input
                order = np.argsort(seq_in, kind="stable")
                rows = np.empty(N)
                rows[order] = level_rows[np.argsort(seq, kind="stable")]
        else:
            new_seq = np.empty_like(seq)
            new_starts = [0]
            for c in range(starts.size - 1):
                s, e = starts[c], starts[c + 1]
                A, B = _halve_numpy(kernel, X, seq[s:e], u[s:e], lm)
                new_seq[s:s + A.size] = A
                new_seq[s + A.size:e] = B
                new_starts += [s + A.size, e]
            seq, starts = new_seq, np.asarray(new_starts, dtype=np.int64)
    coresets = [seq[starts[c]:starts[c + 1]].copy() for c in range(starts.size - 1)]
    if not row_sums:
        return coresets
    self_sums = None
    if table is not None:  # sum over ordered pairs = 2 * running sums + diagonal (radial: k(0) = sum of weights)
        kdiag = float(table[1][:, 0].sum())
        self_sums = np.array([2.0 * kc[starts[c]:starts[c + 1]].sum() + (starts[c + 1] - starts[c]) * kdiag
                              for c in range(starts.size - 1)])
    return coresets, rows, self_sums
