r"""Compress and Compress++ (Shetty, Dwivedi & Mackey, ICLR 2022).

Compress(S): if ``|S| <= leaf`` return S; otherwise cut S into 4 consecutive
parts (sizes differing by at most 1), compress each, concatenate the four
outputs and halve the result with symmetrized KT-SPLIT (one KT-SPLIT round,
then either child with probability 1/2). Each level doubles the output of the
level below, so with leaves of about ``leaf`` points the output has about
``sqrt(n * leaf)`` points; ``leaf = 4^g size^2 / n`` gives ``2^g size``
(``4^g`` and ``2^g sqrt(n)`` for size = sqrt(n), the paper's setting).

Compress++(g): Compress with that leaf size, then kernel thinning (KT-SPLIT,
``~g`` rounds, and KT-SWAP against the Compress output) down to ``size``.

Any n: parts are cut with sizes differing by one, odd halvings send the last
point to a random child (see ``_split``), so every input point takes part in
a halving; nothing is dropped. The four top-level sub-problems run on
separate threads (the compiled walk releases the GIL).

Failure probabilities: half of ``delta`` goes to the Compress halvings
(split equally over them), half to the final kernel thinning.
"""

from __future__ import annotations

import concurrent.futures
import math

import numpy as np

from .._options import get_options, options
from ._kt import resample_sequence, run_kt
from ._split import split_sequence

__all__ = ["compress_indices", "compresspp_indices"]


def _count_halvings(n, leaf):
    if n <= leaf:
        return 0
    q, r = divmod(n, 4)
    sizes = [q + 1] * r + [q] * (4 - r)
    return 1 + sum(_count_halvings(s, leaf) for s in sizes)


def compress_indices(kernel, X, seq, leaf, delta, ss):
    """Compress the sequence ``X[seq]``; returns indices into X (see module docs)."""
    seq = np.asarray(seq, dtype=np.int64)
    n_halvings = max(1, _count_halvings(seq.size, leaf))
    delta_node = delta / n_halvings

    def rec(idx, node_ss):
        if idx.size <= leaf:
            return idx
        kids = node_ss.spawn(6)
        outs = [rec(part, kids[i]) for i, part in enumerate(np.array_split(idx, 4))]
        return halve(np.concatenate(outs), kids[4], kids[5])

    def halve(pool, split_ss, coin_ss):
        A, B = split_sequence(kernel, X, pool, 1, delta_node, [split_ss])
        return A if np.random.default_rng(coin_ss).random() < 0.5 else B

    if seq.size <= leaf:
        return seq
    kids = ss.spawn(6)
    parts = np.array_split(seq, 4)
    threads = get_options().resolved_threads()
    if threads > 1 and seq.size > 4 * leaf:
        def work(i):
            with options(threads=1):
                return rec(parts[i], kids[i])
        with concurrent.futures.ThreadPoolExecutor(max_workers=min(threads, 4)) as pool:
            outs = list(pool.map(work, range(4)))
    else:
        outs = [rec(parts[i], kids[i]) for i in range(4)]
    return halve(np.concatenate(outs), kids[4], kids[5])


def compresspp_indices(kernel, split_kernel, X, size, g, delta, ss, p=None, swap=True):
    """Compress++ of float64 X to ``size`` indices (see module docs)."""
    n = X.shape[0]
    if size == n:
        return np.arange(n, dtype=np.int64)
    s_seq, s_compress, s_thin = ss.spawn(3)
    seq = np.arange(n, dtype=np.int64) if p is None else resample_sequence(p, s_seq)
    gg = g
    while True:
        leaf = max(1, int(math.ceil(4 ** gg * size * size / n)))
        pool = compress_indices(split_kernel, X, seq, leaf, delta / 2, s_compress)
        if pool.size >= size or leaf >= n:
            break
        gg += 1  # too few points came out (small n or odd sizes): oversample more
    if pool.size == size:
        return pool
    Xp = np.ascontiguousarray(X[pool])
    local = run_kt(Xp, size, kernel, split_kernel, delta / 2, s_thin, None, swap=swap)
    return pool[local]
