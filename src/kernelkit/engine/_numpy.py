"""Blocked NumPy/BLAS backend: the reference and the fallback.

Every fused path is tested against these functions. They tile the n x m
kernel matrix into blocks that fit the memory budget, evaluate each block
densely with the kernel's own ``_block`` / ``log_block`` and reduce it with
BLAS. Partial sums are accumulated in float64 whatever the input dtype.
"""

from __future__ import annotations

import numpy as np

from ._tiling import block_sizes, progress_bar


def kernel_sum(kernel, X, Y, W, opts):
    n, m, p = X.shape[0], Y.shape[0], W.shape[1]
    bx, by = block_sizes(n, m, X.shape[1], opts.memory, bytes_per_pair=3 * 8 + 8, extra_per_x=8 * p)
    out = np.zeros((m, p), dtype=np.float64)
    with progress_bar(m, opts.progress, "kernel_sum") as bar:
        for j0 in range(0, m, by):
            Yb = Y[j0:j0 + by]
            acc = out[j0:j0 + by]
            for i0 in range(0, n, bx):
                K = kernel._block(X[i0:i0 + bx], Yb)
                acc += (K.T @ W[i0:i0 + bx].astype(K.dtype, copy=False)).astype(np.float64, copy=False)
            bar.update(Yb.shape[0])
    return out


def kernel_logsumexp(kernel, X, Y, LW, opts, return_max=False):
    n, m, p = X.shape[0], Y.shape[0], LW.shape[1]
    top = np.empty((m, p), dtype=np.float64) if return_max else None
    bx, by = block_sizes(n, m, X.shape[1], opts.memory, bytes_per_pair=4 * 8, extra_per_x=8 * p)
    out = np.empty((m, p), dtype=np.float64)
    with progress_bar(m, opts.progress, "kernel_logsumexp") as bar:
        for j0 in range(0, m, by):
            Yb = Y[j0:j0 + by]
            mb = Yb.shape[0]
            run_max = np.full((mb, p), -np.inf)
            run_sum = np.zeros((mb, p))
            for i0 in range(0, n, bx):
                L = kernel.log_block(X[i0:i0 + bx], Yb).astype(np.float64, copy=False).T  # (mb, bx)
                for q in range(p):
                    T = L + LW[i0:i0 + bx, q][None, :]
                    bmax = T.max(axis=1)
                    new_max = np.maximum(run_max[:, q], bmax)
                    safe = np.where(np.isfinite(new_max), new_max, 0.0)
                    run_sum[:, q] = run_sum[:, q] * np.exp(run_max[:, q] - safe) \
                        + np.exp(T - safe[:, None]).sum(axis=1)
                    run_max[:, q] = new_max
            safe = np.where(np.isfinite(run_max), run_max, 0.0)
            with np.errstate(divide="ignore"):
                out[j0:j0 + mb] = safe + np.log(run_sum)
            if return_max:
                top[j0:j0 + mb] = run_max
            bar.update(mb)
    return (out, top) if return_max else out


def kernel_topk(kernel, X, Y, k, opts):
    n, m = X.shape[0], Y.shape[0]
    bx, by = block_sizes(n, m, X.shape[1], opts.memory, bytes_per_pair=3 * 8, extra_per_x=0, min_bx=k)
    values = np.empty((m, k), dtype=np.float64)
    indices = np.empty((m, k), dtype=np.int64)
    with progress_bar(m, opts.progress, "kernel_topk") as bar:
        for j0 in range(0, m, by):
            Yb = Y[j0:j0 + by]
            mb = Yb.shape[0]
            best_v = np.full((mb, 0), -np.inf)
            best_i = np.zeros((mb, 0), dtype=np.int64)
            for i0 in range(0, n, bx):
                K = kernel._block(X[i0:i0 + bx], Yb).astype(np.float64, copy=False).T  # (mb, bx)
                cand_v = np.concatenate([best_v, K], axis=1)
                cand_i = np.concatenate([best_i, np.broadcast_to(np.arange(i0, i0 + K.shape[1]), K.shape)], axis=1)
                kk = min(k, cand_v.shape[1])
                part = np.argpartition(-cand_v, kk - 1, axis=1)[:, :kk]
                best_v = np.take_along_axis(cand_v, part, axis=1)
                best_i = np.take_along_axis(cand_i, part, axis=1)
            # sort by value descending, ties by index ascending
            order = np.lexsort((best_i, -best_v), axis=1)
            values[j0:j0 + mb] = np.take_along_axis(best_v, order, axis=1)
            indices[j0:j0 + mb] = np.take_along_axis(best_i, order, axis=1)
            bar.update(mb)
    return values, indices
