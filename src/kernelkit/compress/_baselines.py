"""Baselines: standard thinning and kernel herding."""

from __future__ import annotations

import numpy as np

from .._validation import check_int, check_points
from ..engine import kernel_sum
from ._kernelspec import check_kernel
from ._kt import greedy_subset, standard_thin_indices
from ._mmd import normalized_weights

__all__ = ["standard_thin", "kernel_herding"]


def standard_thin(X, size, *, weights=None):
    """Standard thinning: every (n / size)-th point, counted back from the last one.

    Parameters
    ----------
    X : array of shape (n, d)
        Input points (only n is used).
    size : int in [1, n]
        Output size.
    weights : array of shape (n,), optional
        Non-negative weights: then the points at the weight quantiles
        (t + 1/2) / size, t = 0..size-1 (systematic resampling).

    Returns
    -------
    int64 array of ``size`` indices, increasing. Index ``((t + 1) n) // size - 1``
    for t = 0..size-1 without weights (the last point is always kept).
    """
    X = check_points(X, "X", "standard_thin")
    n = X.shape[0]
    size = check_int(size, "size", "standard_thin", low=1, high=n)
    p = None if weights is None else normalized_weights(weights, n, "weights", "standard_thin")
    return standard_thin_indices(n, size, p)


def kernel_herding(X, size, kernel, *, weights=None):
    r"""Kernel herding (Chen, Welling & Smola 2010) over the input points.

    Greedy: ``x_{t+1} = argmax_x mu(x) - (1 / (t + 1)) sum_{s <= t} k(x, x_s)``
    over the rows of X, where ``mu(x) = sum_i p_i k(x_i, x)`` is the (weighted)
    mean embedding of X (one engine call). Equivalently each step minimises the
    MMD of the chosen points plus x. Points may repeat.

    Parameters
    ----------
    X : array of shape (n, d)
    size : int in [1, n]
    kernel : Kernel
    weights : array of shape (n,), optional
        Non-negative target weights.

    Returns
    -------
    int64 array of ``size`` indices into X, in the order chosen.
    """
    X = check_points(X, "X", "kernel_herding")
    kernel = check_kernel(kernel, "kernel_herding")
    n = X.shape[0]
    size = check_int(size, "size", "kernel_herding", low=1, high=n)
    p = normalized_weights(weights, n, "weights", "kernel_herding")
    X = np.ascontiguousarray(X, dtype=np.float64)
    mu = np.asarray(kernel_sum(kernel, X, X, p), dtype=np.float64)
    return greedy_subset(kernel, X, np.arange(n), size, mu, unique=False)
