"""Shared plumbing of the kernel Stein discrepancy tests: inputs, kernels, the wild bootstrap."""

from __future__ import annotations

import numpy as np

from .._validation import Integral, check_param, check_points, param_error
from ._result import check_alpha, mc_threshold  # noqa: F401  (used by the KSD modules)
from ._stein import SteinKernel, _resolve_base, evaluate_score


def check_sample(X, owner):
    """X as a float array of shape (n, d) with n >= 2 (float32 kept)."""
    X = check_points(X, "X", owner)
    if X.shape[0] < 2:
        raise param_error("X", owner, "an array with at least 2 points (a KSD U-statistic needs pairs)", X,
                          shown=f"shape {X.shape}")
    return X


def check_count(value, name, owner, low=1):
    return check_param(value, name, owner, Integral(low=low))


def ksd_parts(kp, X, S, memory=None, threads=None):
    """(sum over i != j of k_p(x_i, x_j), trace)."""
    off = float(np.sum(kp.sum(X, scores=S, exclude_diagonal=True, memory=memory, threads=threads)))
    return off, float(np.sum(kp.diag(X, scores=S)))


def stein_kernel(X, kernel, bandwidth, owner):
    """The SteinKernel (without a score) for ``kernel`` / ``bandwidth``; None bandwidth with a name: median of X."""
    from ..compress._resolve import median_bandwidth

    if isinstance(kernel, str) and bandwidth is None:
        bandwidth = median_bandwidth(X)
    return SteinKernel(_resolve_base(kernel, bandwidth, owner))


def scores_at(score, X, owner):
    """Scores at X from a callable or a precomputed (n, d) array."""
    if score is None or isinstance(score, (str, bytes)):
        raise param_error("score", owner, "a callable x -> grad log p(x) or an (n, d) array of scores at X", score,
                          kind="type")
    return evaluate_score(score, X, owner)


def ksd_from_sum(offdiag, trace, n, unbiased):
    """U-statistic offdiag / (n (n - 1)) or V-statistic (offdiag + trace) / n^2, from the sum over i != j."""
    return offdiag / (n * (n - 1)) if unbiased else (offdiag + trace) / (n * n)


def rademacher(rng, n, B):
    return rng.integers(0, 2, size=(n, B), dtype=np.int8).astype(np.float64) * 2.0 - 1.0


def stein_quadratic_forms(kps, X, S, E, memory=None, threads=None):
    r"""For each Stein kernel of ``kps`` (same points and scores): the sum over i != j of H_ij and the
    quadratic forms :math:`\sum_{i \ne j} \epsilon_{ib} \epsilon_{jb} H_{ij}`, one per column of E.

    One pass over the row strips of H's strict upper triangle within the memory budget (H is symmetric:
    :math:`\sum_{i \ne j} = 2 \sum_{i < j}`, half the products of H W): the kernel-free parts (distances,
    score products) are computed once per strip and shared by every kernel; each kernel's strip is
    multiplied by the weight columns [1 | E] (a GEMM, on ``threads`` BLAS threads when given).
    Returns (offdiag sums (K,), forms (K, B)).
    """
    if threads:
        from .._blas import blas_threads

        with blas_threads(threads):
            return stein_quadratic_forms(kps, X, S, E, memory)
    from .._options import get_options
    from ._stein import _BYTES_PER_PAIR, _MAX_BLOCK_PAIRS, stein_pieces

    n, d = X.shape
    budget = get_options(memory=memory).memory
    rows = int(max(1, min(n, budget // ((_BYTES_PER_PAIR + 8 * len(kps)) * n), _MAX_BLOCK_PAIRS // n)))
    mu = X.astype(np.float64).mean(axis=0)
    Xc = X.astype(np.float64) - mu
    W = np.concatenate([np.ones((n, 1)), E], axis=1)
    forms = np.zeros((len(kps), W.shape[1]))
    lower = np.tri(rows, dtype=bool)   # the diagonal block's lower triangle, its diagonal included
    for lo in range(0, n, rows):
        hi = min(n, lo + rows)
        b = hi - lo
        pieces = stein_pieces(Xc[lo:hi], S[lo:hi], Xc[lo:], S[lo:])   # the upper triangle's row strip
        for k, kp in enumerate(kps):
            K = kp._from_pieces(pieces, d)
            K[:, :b][lower[:b, :b]] = 0.0
            forms[k] += 2.0 * np.einsum("ib,ib->b", W[lo:hi], K @ W[lo:])
    return forms[:, 0], forms[:, 1:]
