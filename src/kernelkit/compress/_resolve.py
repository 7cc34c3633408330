"""Kernel arguments of the compression functions: a Kernel, or a name with a bandwidth.

The rule (the same in :func:`kernel_thin`, :func:`compress`, :func:`mmd`): a
Kernel object carries its own bandwidth, so ``bandwidth`` must then be None; a
kernel name ('gaussian', 'laplace', ...) is built with ``bandwidth``, by
default the median heuristic on the data the method summarises
(:func:`median_bandwidth`).
"""

from __future__ import annotations

import numpy as np

from .._random import UNSET, resolve_seed_alias, seed_sequence
from .._validation import check_points, check_positive
from ..exceptions import InvalidTypeError, InvalidValueError
from ..kernels import Kernel, make_kernel

__all__ = ["median_bandwidth", "resolve_kernel"]


def median_bandwidth(X, max_points=2000, random_state=0, *, seed=UNSET):
    """Median heuristic: the median distance between distinct points of X (units of the data).

    Uses at most ``max_points`` rows (a subsample drawn with ``random_state``, fixed by default) so it costs
    ``O(max_points^2 d)``. Returns 1.0 if all points coincide.
    """
    X = check_points(X, "X", "median_bandwidth")
    if X.shape[0] > max_points:
        rs = resolve_seed_alias(random_state, seed, "median_bandwidth")
        X = X[np.random.default_rng(seed_sequence(rs, "median_bandwidth")).choice(X.shape[0], max_points,
                                                                                  replace=False)]
    X = X.astype(np.float64)
    from ..kernels import sqdist
    D = sqdist(X, X)[np.triu_indices(X.shape[0], 1)]
    D = D[D > 0]
    return float(np.sqrt(np.median(D))) if D.size else 1.0


def resolve_kernel(kernel, bandwidth, X, owner):
    """The Kernel for ``(kernel, bandwidth)`` by the module's rule (median heuristic on X for a bare name)."""
    if isinstance(kernel, Kernel):
        if bandwidth is not None:
            raise InvalidValueError(f"The 'bandwidth' parameter of {owner} must be None when 'kernel' is a Kernel "
                             f"object (it carries its bandwidth). Got {bandwidth!r}.")
        return kernel
    if not isinstance(kernel, str):
        raise InvalidTypeError(f"The 'kernel' parameter of {owner} must be a kernelkit Kernel or a kernel name such "
                        f"as 'gaussian'. Got {kernel!r}.")
    if bandwidth is None:
        bandwidth = median_bandwidth(X)
    else:
        bandwidth = check_positive(bandwidth, "bandwidth", owner)
    try:
        return make_kernel(kernel, bandwidth=bandwidth)
    except ValueError as exc:
        raise InvalidValueError(f"The 'kernel' parameter of {owner} must be a Kernel or a radial kernel name. "
                         f"{exc}") from None
