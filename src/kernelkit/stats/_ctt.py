r"""Compress Then Test (Domingo-Enrich, Dwivedi & Mackey, 2023, arXiv 2301.05974).

Split each sample into bins of one common size b, compress every bin with Compress++ to
:math:`2^g \sqrt{b}` points, then run a permutation test in which the *bins* are relabelled: the statistic
is the biased MMD^2 between the uniform mixtures of the coresets labelled X and labelled Y. All the kernel
sums the test needs are the S x S matrix of mean kernel values between coreset bins,
:math:`M_{ac} = \frac{1}{|C_a||C_c|}\sum_{i \in C_a, j \in C_c} k(z_i, z_j)`, one engine call with S weight
columns; every permutation is then an S x S quadratic form.

Guarantee relied on (validity, Domingo-Enrich et al., Prop. 1): under H0 the S bins are i.i.d. samples of
size b and each is compressed by the same randomised procedure with independent randomness, so the coreset
bins are exchangeable; a permutation test over bins is then exact: its level is at most alpha for any n, any
g and any quality of compression. Power (their Thm. 2) needs Compress++'s MMD guarantee (coreset MMD of order
:math:`\sqrt{\log n}/(2^g\sqrt{b})`, kernel thinning's bound), which is why the coresets keep 2^g sqrt(b) points.
Points beyond the last full bin of each sample (fewer than b) are left out, chosen at random.
"""

from __future__ import annotations

import math
import time

import numpy as np

from .._random import generator
from .._validation import Integral, param_error, check_param
from ..engine import kernel_sum
from ._mmd_core import check_alpha, check_samples, mc_threshold, resolve_two_sample_kernel
from ._result import TestResult, permutation_pvalue

__all__ = ["ctt_test"]


def ctt_test(X, Y, kernel="gaussian", *, bandwidth=None, n_bins=32, g=2, n_permutations=1000, alpha=0.05,
             random_state=None, memory=None, threads=None):
    r"""Compress Then Test: an exact permutation MMD test on Compress++ coresets of bins of the samples.

    Parameters
    ----------
    X : array of shape (n, d)
        First sample (units of the data).
    Y : array of shape (m, d)
        Second sample, same d.
    kernel : Kernel or str, default "gaussian"
        Kernel of the compression and of the test; a name takes ``bandwidth``, by default the median heuristic
        on X and Y pooled (:func:`kernelkit.median_bandwidth`).
    bandwidth : float > 0, optional
        Data units.
    n_bins : int >= 2, default 32
        Total number of bins S (the paper's s). The bin size is b = floor((n + m) / S); X gets
        floor(n / b) bins and Y floor(m / b) (each at least 1).
    g : int >= 0, default 2
        Compress++ oversampling: each bin is compressed to min(b, 2^g ceil(sqrt(b))) points. Larger g: more
        power, cost O(4^g b log b) per bin for the compression and O((S 2^g sqrt(b))^2) for the test.
    n_permutations : int >= 1, default 1000
        B permutations of the bin labels (cheap: each is an S x S quadratic form).
    alpha : float in (0, 1), default 0.05
    random_state : None, int >= 0, SeedSequence or Generator
        Seeds the bin assignment, the compression (independent streams per bin) and the permutations.
    memory, threads : optional
        Engine options.

    Returns
    -------
    TestResult
        ``statistic`` the biased MMD^2 between the coreset mixtures of X and Y; ``pvalue``
        (1 + #{null >= T}) / (1 + B); ``null`` the bin-permutation values. ``details``: ``kernel``,
        ``bin_size``, ``bins_x``, ``bins_y``, ``coreset_size`` (points per bin), ``dropped`` (points left out),
        ``compress_seconds``, ``test_seconds``.
    """
    owner = "ctt_test"
    n_bins = check_param(n_bins, "n_bins", owner, Integral(low=2))
    g = check_param(g, "g", owner, Integral(low=0, high=20))
    B = check_param(n_permutations, "n_permutations", owner, Integral(low=1))
    alpha = check_alpha(alpha, owner)
    X, Y = check_samples(X, Y, owner)
    from ..compress import compresspp
    kernel = resolve_two_sample_kernel(kernel, bandwidth, X, Y, owner)
    n, m = X.shape[0], Y.shape[0]
    b = (n + m) // n_bins
    if b < 2 or n < b or m < b:
        raise param_error("n_bins", owner, f"an int such that the bins of (n + m) // n_bins points hold at least 2 "
                          f"points and each sample fills one (n={n}, m={m}: at most {(n + m) // 2}, and bins no "
                          f"larger than min(n, m))", n_bins)
    sx, sy = n // b, m // b
    S = sx + sy
    size = min(b, 2 ** g * int(math.ceil(math.sqrt(b))))
    ss = np.random.SeedSequence(int(generator(random_state, owner).integers(2 ** 63)))
    s_bins, s_perm, s_comp = ss.spawn(3)
    rb = np.random.default_rng(s_bins)
    t0 = time.perf_counter()
    parts = []
    for A, s in ((X, sx), (Y, sy)):
        idx = rb.permutation(A.shape[0])[:s * b].reshape(s, b)
        parts.extend(A[i] for i in idx)
    seeds = s_comp.spawn(S)
    cores = []
    for P, sd in zip(parts, seeds):
        sel = np.arange(b) if size == b else compresspp(P, size, kernel, g=g, random_state=sd)
        cores.append(np.asarray(P[sel], dtype=np.float64))
    t1 = time.perf_counter()
    C = np.concatenate(cores)
    W = np.zeros((C.shape[0], S))
    for a in range(S):
        W[a * size:(a + 1) * size, a] = 1.0 / size
    KW = np.asarray(kernel_sum(kernel, C, C, W, memory=memory, threads=threads), dtype=np.float64)
    Mb = W.T @ KW
    Mb = (Mb + Mb.T) / 2
    rp = np.random.default_rng(s_perm)
    lab = np.zeros((S, B + 1))
    lab[:sx, 0] = 1
    for j in range(B):
        lab[rp.permutation(S)[:sx], j + 1] = 1
    V = lab / sx - (1 - lab) / sy
    values = np.einsum("ab,ab->b", V, Mb @ V)
    stat, null = float(values[0]), values[1:]
    t2 = time.perf_counter()
    pvalue = permutation_pvalue(stat, null)
    details = {"kernel": kernel, "bin_size": b, "bins_x": sx, "bins_y": sy, "coreset_size": size,
               "dropped": (n - sx * b) + (m - sy * b), "n_permutations": B, "compress_seconds": t1 - t0,
               "test_seconds": t2 - t1}
    return TestResult(f"Compress Then Test (MMD, {S} bins, g={g})", stat, pvalue, mc_threshold(null, alpha), alpha,
                      bool(pvalue <= alpha), null, details)
