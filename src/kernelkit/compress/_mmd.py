r"""Maximum mean discrepancy between two weighted point sets, through the engine.

.. math::

    \mathrm{MMD}^2 = \sum_{i,i'} p_i p_{i'} k(x_i, x_{i'})
                   - 2 \sum_{i,j} p_i q_j k(x_i, y_j)
                   + \sum_{j,j'} q_j q_{j'} k(y_j, y_{j'})

with the weights normalised to sum to 1 (uniform when omitted). Each double
sum is one :func:`kernelkit.kernel_sum` call, tiled by the engine within the
memory budget, so no n x m matrix is ever held.
"""

from __future__ import annotations

import math

import numpy as np

from .._xp import any_dask
from .._validation import OneOf, check_pair, check_param, check_weights, param_error
from ..engine import kernel_sum
from ._resolve import resolve_kernel
from ._kernelspec import check_kernel

__all__ = ["mmd", "normalized_weights"]


def normalized_weights(weights, n, name, owner):
    """Validated non-negative weights summing to 1 (uniform when None)."""
    if weights is None:
        return np.full(n, 1.0 / n)
    w = check_weights(weights, n, name, owner, nonnegative=True, allow_2d=False)
    total = w.sum()
    if not total > 0:
        raise param_error(name, owner, "non-negative weights with a positive sum", w, shown=f"sum {total}")
    return w / total


def mmd(X, Y, kernel="gaussian", weights_x=None, weights_y=None, *, bandwidth=None, squared=False, memory=None,
        threads=None):
    r"""Maximum mean discrepancy between the weighted empirical measures of X and Y.

    Parameters
    ----------
    X : array of shape (n, d)
        First point set (units of the data).
    Y : array of shape (m, d)
        Second point set.
    kernel : Kernel or str, default "gaussian"
        The kernel k, or its name ('gaussian', 'laplace', 'matern32', ...)
        built with ``bandwidth``.
    bandwidth : float > 0, optional
        Bandwidth for a kernel given by name (units of the data); default the
        median heuristic on X (:func:`median_bandwidth`), the rule of
        :func:`kernel_thin`, so ``mmd(X, X[idx])`` measures a coreset with the
        kernel it was thinned with. Must be None with a Kernel object.
    weights_x, weights_y : arrays of shape (n,) and (m,), optional
        Non-negative weights (normalised to sum to 1); default uniform.
    squared : bool
        Return MMD^2 instead of MMD.
    memory, threads : optional
        Engine options for this call (see :func:`kernelkit.options`).

    Returns
    -------
    float
        MMD (in the units of sqrt(k), dimensionless for radial kernels),
        computed in float64; rounding below zero is clipped to 0.
    """
    if any_dask(X, Y, weights_x, weights_y):
        from ..dask._methods import mmd as dask_mmd  # a lazy 0-d dask array (kernelkit.dask)
        return dask_mmd(X, Y, kernel, weights_x, weights_y, bandwidth=bandwidth, squared=squared, memory=memory,
                        threads=threads)
    squared = check_param(squared, "squared", "mmd", OneOf(False, True))
    if not isinstance(kernel, str):  # a Kernel (or a wrong type) is checked before the data
        kernel = check_kernel(resolve_kernel(kernel, bandwidth, None, "mmd"), "mmd")
    X, Y = check_pair(X, Y, owner="mmd")
    if isinstance(kernel, str):
        kernel = check_kernel(resolve_kernel(kernel, bandwidth, X, "mmd"), "mmd")
    p = normalized_weights(weights_x, X.shape[0], "weights_x", "mmd")
    q = normalized_weights(weights_y, Y.shape[0], "weights_y", "mmd")
    X64, Y64 = X.astype(np.float64, copy=False), Y.astype(np.float64, copy=False)
    kw = dict(memory=memory, threads=threads)
    xx = float(p @ kernel_sum(kernel, X64, X64, p, **kw))
    xy = float(q @ kernel_sum(kernel, X64, Y64, p, **kw))
    yy = float(q @ kernel_sum(kernel, Y64, Y64, q, **kw))
    val = max(xx - 2.0 * xy + yy, 0.0)
    return val if squared else math.sqrt(val)
