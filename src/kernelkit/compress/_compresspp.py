r"""Compress and Compress++ (Shetty, Dwivedi & Mackey, ICLR 2022).

Compress(S): if ``|S| <= leaf`` return S; otherwise cut S into 4 consecutive
parts (sizes differing by at most 1), compress each, concatenate the four
outputs and halve the result. Halve is symmetrized kernel thinning of the
concatenation to half its size: one KT-SPLIT round (split kernel) and KT-SWAP
with the target kernel against the concatenation, no point taken twice; then
a fair coin returns either that coreset or its complement in the
concatenation (as goodpoints does). The two have the same MMD to the
concatenation (exactly so for even sizes), and the coin makes each halving
unbiased, so the errors of the many halvings do not add up in one direction.
With ``swap=False`` the halving is symmetrized KT-SPLIT alone (either child
with probability 1/2). Each level doubles the output of the level below, so
leaves of about ``leaf`` points give about ``sqrt(n * leaf)`` output points
(an odd concatenation of L points gives floor(L/2) or ceil(L/2), by the coin).

Compress++(g), as goodpoints' ``compresspp_kt`` with its default 4 bins:
the input is cut into 4 bins, each is compressed with leaves of
``leaf = 4^g size^2 / n`` points (``4^g`` when size = sqrt(n)) and the four
outputs are concatenated without a last halving, which gives about
``2^(g+1) size`` points; kernel thinning (about g + 1 KT-SPLIT rounds and
KT-SWAP against that concatenation) brings them to ``size``.

Any n: parts are cut with sizes differing by one, odd halvings send the last
point to a random child (see ``_split``), so every input point takes part in
a halving; nothing is dropped. The four bins run on separate threads (the
compiled walk releases the GIL).

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


def compress_indices(kernel, split_kernel, X, seq, leaf, delta, ss, swap=True, last_halving=True):
    """Compress the sequence ``X[seq]``; returns indices into X (see module docs).

    ``last_halving=False`` returns the concatenated outputs of the four top-level
    parts without halving them (the bins of Compress++).
    """
    seq = np.asarray(seq, dtype=np.int64)
    # the halvings that run: without the last one, the top level is not halved
    top = 0 if last_halving or seq.size <= leaf else 1
    n_halvings = max(1, _count_halvings(seq.size, leaf) - top)
    delta_node = delta / n_halvings

    def rec(idx, node_ss):
        if idx.size <= leaf:
            return idx
        kids = node_ss.spawn(5)
        outs = [rec(part, kids[i]) for i, part in enumerate(np.array_split(idx, 4))]
        return halve(np.concatenate(outs), kids[4])

    def halve(pool, node_ss):
        split_ss, coin_ss = node_ss.spawn(2)
        heads = np.random.default_rng(coin_ss).random() < 0.5
        if swap:
            local = run_kt(np.ascontiguousarray(X[pool]), pool.size // 2, kernel, split_kernel, delta_node,
                           split_ss, unique=True)
            if heads:
                return pool[local]
            rest = np.ones(pool.size, dtype=bool)
            rest[local] = False
            return pool[rest]
        A, B = split_sequence(split_kernel, X, pool, 1, delta_node, [split_ss])
        return A if heads else B

    if seq.size <= leaf:
        return seq
    kids = ss.spawn(5)
    parts = np.array_split(seq, 4)
    parent = get_options()  # worker threads do not inherit the context: pass the options on
    threads = parent.resolved_threads()
    if threads > 1 and seq.size > 4 * leaf:
        def work(i):
            with options(memory=parent.memory, backend=parent.backend, threads=1):
                return rec(parts[i], kids[i])
        with concurrent.futures.ThreadPoolExecutor(max_workers=min(threads, 4)) as pool:
            outs = list(pool.map(work, range(4)))
    else:
        outs = [rec(parts[i], kids[i]) for i in range(4)]
    joined = np.concatenate(outs)
    return halve(joined, kids[4]) if last_halving else joined


#: engine memory budget inside Compress++ (bytes): its kernel sums are small, so small tiles
#: cost no speed and keep the whole run near-linear in memory as well
COMPRESSPP_ENGINE_MEMORY = 2 ** 25


def compresspp_indices(kernel, split_kernel, X, size, g, delta, ss, p=None, swap=True):
    """Compress++ of float64 X to ``size`` indices (see module docs)."""
    with options(memory=min(get_options().memory, COMPRESSPP_ENGINE_MEMORY)):
        return _compresspp(kernel, split_kernel, X, size, g, delta, ss, p, swap)


def _compresspp(kernel, split_kernel, X, size, g, delta, ss, p, swap):
    n = X.shape[0]
    if size == n:
        return np.arange(n, dtype=np.int64)
    s_seq, s_compress, s_thin = ss.spawn(3)
    seq = np.arange(n, dtype=np.int64) if p is None else resample_sequence(p, s_seq)
    gg = g
    while True:
        leaf = max(1, int(math.ceil(4 ** gg * size * size / n)))
        pool = compress_indices(kernel, split_kernel, X, seq, leaf, delta / 2, s_compress, swap=swap,
                                last_halving=False)
        if pool.size >= size or leaf >= n:
            break
        gg += 1  # too few points came out (small n or odd sizes): oversample more
    if pool.size == size:
        return pool
    Xp = np.ascontiguousarray(X[pool])
    local = run_kt(Xp, size, kernel, split_kernel, delta / 2, s_thin, None, swap=swap)
    return pool[local]
