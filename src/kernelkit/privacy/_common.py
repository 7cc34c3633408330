"""Shared pieces of the private structures: domain, semantics, release, saving."""

from __future__ import annotations

import concurrent.futures
import json
import math

import numpy as np

from .._options import get_options
from .._random import generator
from .._validation import (InstanceOf, OneOf, Real, check_param, check_points, kernel_bandwidth_error,
                           param_error)
from ..kernels import KERNEL_NAMES, Kernel, make_kernel
from . import _noise
from ._accountant import PrivacyAccountant, check_delta, check_epsilon, check_neighbouring
from ..exceptions import InvalidTypeError, InvalidValueError, NotFittedError

__all__ = ["check_privacy_params", "check_domain", "clip_to_ball", "clip_to_box", "release_integer_sums",
           "check_noise_scale", "smallest_epsilon", "accepts", "MAX_NOISE_SCALE", "row_blocks", "map_row_blocks",
           "save_state", "load_state", "NotFittedError", "resolve_private_kernel", "public_generator"]

#: largest noise scale (discrete Laplace scale or rounded-Gaussian sigma, in grid units) a release
#: accepts: the noise draws stay below 45 scales, so noise plus statistic stay far inside int64
MAX_NOISE_SCALE = 2.0 ** 56


def check_privacy_params(est, owner):
    """Validate epsilon, delta, neighbouring and the accountant of ``est``."""
    epsilon = check_epsilon(est.epsilon, owner)
    delta = check_delta(est.delta, owner)
    neighbouring = check_neighbouring(est.neighbouring, owner)
    check_param(est.accountant, "accountant", owner, InstanceOf(PrivacyAccountant, "a PrivacyAccountant") | None)
    return epsilon, delta, neighbouring


def resolve_private_kernel(kernel, bandwidth, owner):
    """The Kernel of a private structure: a Kernel object, or a kernel name with an explicit bandwidth.

    The library's rule (a Kernel object carries its bandwidth, so ``bandwidth``
    must then be None) with one exception, on purpose: a kernel name without
    a bandwidth is an error here, where functions that see the data use the
    median heuristic. A bandwidth derived from the private data would leak
    them (it is not part of the privacy analysis), and a silent default such
    as 1.0 would be a guess in the units of the data.
    """
    if isinstance(kernel, Kernel):
        if bandwidth is not None:
            raise kernel_bandwidth_error(owner, bandwidth)
        return kernel
    name = check_param(kernel.lower() if isinstance(kernel, str) else kernel, "kernel", owner,
                       InstanceOf(Kernel, "a Kernel object") | OneOf(*KERNEL_NAMES))
    if bandwidth is None:
        raise param_error(
            "bandwidth", owner, f"a float > 0 when 'kernel' is a name ({kernel!r})", None,
            hint="A private structure never derives a bandwidth from the private data (that would leak them) "
                 "and does not guess one: pass a public choice (domain knowledge, public data), or a Kernel "
                 "object such as Gaussian(bandwidth=1.0).")
    bandwidth = check_param(bandwidth, "bandwidth", owner, Real(low=0, low_open=True))
    return make_kernel(name, bandwidth=bandwidth)


def public_generator(random_state, owner):
    """The Generator of the *public* randomness (feature maps, projections); a Generator is used as is."""
    return generator(random_state, owner)


def check_domain(radius, center, d, owner):
    """The public input domain: the l2 ball of ``radius`` around ``center``."""
    if radius is None:
        raise param_error("radius", owner, "a float > 0 (it is required)", None,
                          hint="The input domain must be declared by you (public knowledge, e.g. a known range "
                               "of the features), never estimated from the private data.")
    radius = check_param(radius, "radius", owner, Real(low=0, low_open=True))
    if center is None:
        center = np.zeros(d)
    else:
        center = check_points(np.asarray(center, dtype=float).reshape(1, -1), "center", owner)[0]
        if center.shape[0] != d:
            raise param_error("center", owner, f"an array of {d} coordinates (one per feature)", center,
                              shown=f"{center.shape[0]} coordinates")
    return radius, center.astype(np.float64)


def clip_to_ball(X, center, radius):
    """Project every row of X onto the l2 ball of ``radius`` around ``center`` (a new array)."""
    Z = np.asarray(X, dtype=np.float64) - center
    norms = np.sqrt(np.einsum("ij,ij->i", Z, Z))
    scale = np.minimum(1.0, radius / np.maximum(norms, 1e-300))
    return Z * scale[:, None] + center


def clip_to_box(X, center, radius):
    """Clip every coordinate of X to ``[center - radius, center + radius]`` (a new array)."""
    return np.clip(np.asarray(X, dtype=np.float64), center - radius, center + radius)


def _noise_scale(sens_l1, sens_l2, epsilon, delta):
    if delta == 0:
        return sens_l1 / epsilon
    return _noise.gaussian_sigma(epsilon, delta, sens_l2)


def check_noise_scale(sens_l1, sens_l2, epsilon, delta, owner, what):
    """Refuse (before any budget is spent) a release whose noise scale exceeds MAX_NOISE_SCALE.

    Such a tiny epsilon (or epsilon and delta) gives noise of more than 2^56
    grid units per cell, beyond which the integer noise and the noisy sums
    would overflow int64. The message gives the smallest usable epsilon.
    """
    scale = _noise_scale(sens_l1, sens_l2, epsilon, delta)
    if scale <= MAX_NOISE_SCALE:
        return scale
    if delta == 0:
        raise param_error("epsilon", owner, f"at least {sens_l1 / MAX_NOISE_SCALE:.3g} for {what}", epsilon,
                          hint=f"The discrete Laplace noise scale Delta_1 / epsilon = {scale:.3g} grid units must "
                               f"stay below 2^56 = {MAX_NOISE_SCALE:.3g} (beyond, integer noise and sums overflow "
                               "int64).")
    eps_min = smallest_epsilon(lambda e: _noise.gaussian_sigma(e, delta, sens_l2) <= MAX_NOISE_SCALE, epsilon)
    raise param_error("epsilon", owner, f"at least {eps_min:.3g} for {what} with delta={delta!r}", epsilon,
                      hint=f"epsilon={epsilon!r} and delta={delta!r} give a Gaussian noise sigma of {scale:.3g} "
                           f"grid units, above the usable 2^56 = {MAX_NOISE_SCALE:.3g} (beyond, integer noise and "
                           "sums overflow int64).")


def accepts(check, *args):
    """True when ``check(*args)`` returns without raising InvalidValueError (a ``fits`` predicate)."""
    try:
        check(*args)
    except InvalidValueError:
        return False
    return True


def smallest_epsilon(fits, epsilon):
    """The smallest epsilon above ``epsilon`` with ``fits(epsilon)`` True, to about 1e-9 relative.

    ``fits`` must be monotone (a larger epsilon means less noise); bisection on log epsilon.
    """
    lo = hi = math.log(epsilon)
    while not fits(math.exp(hi)):
        lo, hi = hi, hi + 8.0
    for _ in range(40):
        mid = 0.5 * (lo + hi)
        if fits(math.exp(mid)):
            hi = mid
        else:
            lo = mid
    return math.exp(hi)


def release_integer_sums(stat, sens_l1, sens_l2, epsilon, delta, noise_factor=1.0):
    """Add DP noise to an int64 statistic (any shape) in grid units.

    Pure epsilon-DP (``delta == 0``): discrete Laplace with scale
    ``sens_l1 / epsilon``. (epsilon, delta)-DP: rounded Gaussian with the
    analytic-Gaussian sigma for ``sens_l2``. ``noise_factor`` is 1 in every
    real release (tests shrink it to build deliberately broken mechanisms).

    Returns
    -------
    noisy : int64 array like ``stat``
    std : float
        Standard deviation of the noise in each cell (grid units).
    mechanism : str
    """
    stat = np.asarray(stat, dtype=np.int64)
    if not _noise_scale(sens_l1, sens_l2, epsilon, delta) <= MAX_NOISE_SCALE:  # callers check first
        check_noise_scale(sens_l1, sens_l2, epsilon, delta, "release_integer_sums", "this release")
    if delta == 0:
        scale = sens_l1 / epsilon * noise_factor
        noise = _noise.discrete_laplace(scale, stat.shape)
        return stat + noise, _noise.discrete_laplace_std(scale), "discrete-laplace"
    sigma = _noise.gaussian_sigma(epsilon, delta, sens_l2) * noise_factor
    noise = _noise.rounded_gaussian(sigma, stat.shape)
    return stat + noise, _noise.rounded_gaussian_std(sigma), "rounded-gaussian"


def row_blocks(n, row_bytes, memory=None):
    """Row ranges so that one block's temporaries fit the memory budget (at least 1 row)."""
    budget = get_options(memory=memory).memory
    step = max(1, min(n, int(budget // max(row_bytes, 1))))
    return [(i, min(n, i + step)) for i in range(0, n, step)]


def map_row_blocks(func, n, row_bytes, memory=None):
    """Apply ``func(start, stop)`` over row blocks on the engine's threads and return the results in order.

    Each worker gets its share of the budget. NumPy's ufuncs and BLAS release
    the GIL, so blocks run in parallel.
    """
    opts = get_options(memory=memory)
    threads = opts.resolved_threads()
    per_thread = max(1, opts.memory // threads)
    blocks = row_blocks(n, row_bytes, per_thread)
    if threads == 1 or len(blocks) == 1:
        return [func(a, b) for a, b in blocks]
    with concurrent.futures.ThreadPoolExecutor(max_workers=threads) as pool:
        return list(pool.map(lambda ab: func(*ab), blocks))


def save_state(path, kind, arrays, meta):
    """Write sanitized state to ``.npz``: numeric arrays plus JSON metadata (no pickle)."""
    payload = {k: np.asarray(v) for k, v in arrays.items()}
    for k, v in payload.items():
        if v.dtype == object:
            raise InvalidTypeError(f"refusing to save object array {k!r}")
    payload["__meta__"] = np.frombuffer(json.dumps({"kind": kind, **meta}).encode("utf-8"), dtype=np.uint8)
    np.savez(path, **payload)


def load_state(path, kind=None):
    """Read state written by :func:`save_state` (``allow_pickle=False``)."""
    with np.load(path, allow_pickle=False) as z:
        if "__meta__" not in z.files:
            raise InvalidValueError(f"{path!r} is not a kernelkit private sketch (no metadata).")
        meta = json.loads(bytes(z["__meta__"]).decode("utf-8"))
        arrays = {k: z[k] for k in z.files if k != "__meta__"}
    if kind is not None and meta.get("kind") != kind:
        raise InvalidValueError(f"{path!r} holds a {meta.get('kind')!r}, not a {kind!r}.")
    return meta, arrays
