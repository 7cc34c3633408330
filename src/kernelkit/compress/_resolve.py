"""Kernel arguments of the compression functions: a Kernel, or a name with a bandwidth.

The library's rule (docs/conventions.md), as :func:`kernel_thin` and
:func:`mmd` apply it: a Kernel object carries its own bandwidth, so
``bandwidth`` must then be None; a kernel name ('gaussian', 'laplace', ...) is
built with ``bandwidth``, by default the median heuristic on the data the
method summarises (:func:`median_bandwidth`).
"""

from __future__ import annotations

import numpy as np

from .._random import UNSET, resolve_seed_alias, seed_sequence
from .._validation import (InstanceOf, Integral, OneOf, Real, check_param, check_points, kernel_bandwidth_error,
                           param_error)
from ..kernels import KERNEL_NAMES, Kernel, make_kernel

__all__ = ["median_bandwidth", "resolve_kernel"]


def median_bandwidth(X, max_points=2000, random_state=0, *, seed=UNSET):
    """Median heuristic: the median distance between distinct points of X (units of the data).

    Uses at most ``max_points`` rows (an int >= 2; a subsample drawn with ``random_state``, fixed by default) so
    it costs ``O(max_points^2 d)``. Returns 1.0 if all points coincide.

    Parameters
    ----------
    X : array of shape (n, d)
    max_points : int >= 2
        Largest number of rows used.
    random_state : None, int >= 0, SeedSequence or Generator
        Draws the subsample when n > max_points (default 0: the same every call).
    seed : deprecated alias of ``random_state``.

    Returns
    -------
    float
        The median pairwise distance (units of the data).
    """
    X = check_points(X, "X", "median_bandwidth")
    max_points = check_param(max_points, "max_points", "median_bandwidth", Integral(low=2))
    if X.shape[0] > max_points:
        rs = resolve_seed_alias(random_state, seed, "median_bandwidth")
        X = X[np.random.default_rng(seed_sequence(rs, "median_bandwidth")).choice(X.shape[0], max_points,
                                                                                  replace=False)]
    X = X.astype(np.float64)
    from ..kernels import sqdist
    D = sqdist(X, X)[np.triu_indices(X.shape[0], 1)]
    D = D[D > 0]
    return float(np.sqrt(np.median(D))) if D.size else 1.0


_KERNEL = InstanceOf(Kernel, "a Kernel object") | OneOf(*KERNEL_NAMES)
_DOT = ("linear", "polynomial")


def resolve_kernel(kernel, bandwidth, X, owner, *, dot_names=None, bandwidth_first=False, median=None):
    """The Kernel for ``(kernel, bandwidth)`` by the library's one rule (docs/conventions.md).

    A Kernel object carries its bandwidth (``bandwidth`` must be None); a
    name is built with ``bandwidth``, by default the median heuristic on X.

    Parameters
    ----------
    kernel : Kernel or str
    bandwidth : float > 0 or None
        Data units.
    X : array of shape (n, d)
        The data the median heuristic runs on.
    owner : str
        The function or class named in errors.
    dot_names : None, "allow" or (accepts, hint)
        The names 'linear' and 'polynomial' (no bandwidth): None refuses them
        (pass the object), "allow" builds them (``bandwidth`` must be None),
        a pair refuses them with that message.
    bandwidth_first : bool
        Check ``bandwidth`` before looking at ``kernel`` (the order of the
        estimators' messages).
    median : callable, optional
        ``median(X)``: the default bandwidth of a name (default :func:`median_bandwidth`).
    """
    if bandwidth_first:
        bandwidth = check_param(bandwidth, "bandwidth", owner, Real(low=0, low_open=True) | None)
    name = check_param(kernel.lower() if isinstance(kernel, str) else kernel, "kernel", owner, _KERNEL)
    if isinstance(name, Kernel):
        if bandwidth is not None:
            raise kernel_bandwidth_error(owner, bandwidth)
        return name
    if name in _DOT:
        if dot_names == "allow":
            if bandwidth is not None:
                raise param_error("bandwidth", owner, f"None for the {name!r} kernel (it has no bandwidth)",
                                  bandwidth, hint=f"Pass other parameters on the object, e.g. "
                                                  f"kernelkit.{name.title()}(...).")
            return make_kernel(name)
        accepts, hint = dot_names or ("a Kernel object or a radial kernel name",
                                      f"Pass {name} kernels as objects, e.g. kernelkit.{name.title()}().")
        raise param_error("kernel", owner, accepts, kernel, hint=hint)
    if bandwidth is None:
        bandwidth = (median or median_bandwidth)(X)
    else:
        bandwidth = check_param(bandwidth, "bandwidth", owner, Real(low=0, low_open=True))
    return make_kernel(name, bandwidth=bandwidth)
