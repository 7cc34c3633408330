"""Secure, vectorised noise for differential privacy.

Why not ``numpy.random.laplace`` as is
--------------------------------------
Mironov (2012, "On significance of the least significant bits for
differential privacy") showed that adding floating-point Laplace noise to a
real statistic leaks it: the set of doubles that ``f(X) + noise`` can take
depends on ``f(X)``, so some outputs are possible for one dataset and
impossible for its neighbour. The fix used here is to never add noise to a
real number:

1. **Snap the statistic to a grid.** Every record's contribution is rounded
   to the integer grid ``gamma * Z`` (``gamma = 2^-k``, chosen from public
   parameters only) *before* summing, and the sum is kept as an exact int64.
   The sensitivity is computed for the rounded contributions (it grows by
   at most ``m / 2`` grid units for an m-vector, see :func:`grid_sensitivity`).
2. **Add integer noise.** Pure epsilon-DP: the discrete Laplace (two-sided
   geometric) distribution ``P(z) ∝ exp(-epsilon |z| / Delta_1)`` on Z,
   sampled as the difference of two i.i.d. geometric variables (a classical
   identity), which numpy vectorises (about 0.02 us per draw). The discrete
   Laplace mechanism on an integer statistic with L1 sensitivity ``Delta_1``
   is epsilon-DP (Ghosh, Roughgarden, Sundararajan 2009). (epsilon, delta)-DP:
   the *rounded Gaussian* ``round(N(0, s^2))``. Since the statistic ``t`` is
   an integer, ``t + round(N) = round(t + N)``: the release is a
   post-processing of the continuous Gaussian mechanism ``t + N``, so it has
   exactly the continuous mechanism's (epsilon, delta) guarantee, with ``s``
   calibrated by the analytic Gaussian mechanism (Balle and Wang 2018) for
   the L2 sensitivity ``Delta_2``.
3. **The release is an integer times gamma**: the output set does not depend
   on the data, so no low-order bits carry information.

Residual approximation (stated, not hidden): numpy draws geometric variables
by inversion from 53-bit uniforms, so each integer's probability is exact up
to a relative error of about 2^-52 and the tail is cut where the uniform
underflows (beyond ~37 noise scales: probability < 1e-16). Formally the
Laplace path is therefore (epsilon, m * 1e-16)-DP for m released cells; the
rounded-Gaussian path inherits the same ~2^-52 floating-point tolerance of
numpy's ziggurat normal sampler.

Randomness
----------
Noise always comes from :func:`noise_generator`: a Philox counter-based
generator keyed with 128 bits from :mod:`secrets` (the operating system's
CSPRNG) at every call. It is never derived from ``random_state`` (which only
seeds public randomness such as feature maps). Tests may inject a seeded
generator with :func:`_seeded_noise_for_tests` -- a test-only hook, never for
production releases.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import math
import secrets

import numpy as np
from .._validation import param_error

__all__ = ["noise_generator", "discrete_laplace", "rounded_gaussian", "gaussian_sigma", "grid_step",
           "grid_sensitivity", "snap"]

# A seeded generator injected by tests only (see _seeded_noise_for_tests).
_TEST_NOISE_RNG = contextvars.ContextVar("kernelkit_privacy_test_noise_rng", default=None)


def noise_generator():
    """A fresh generator for DP noise, keyed from the OS CSPRNG.

    Returns ``numpy.random.Generator(Philox(key))`` with a 128-bit key from
    :func:`secrets.randbits`. Not reproducible by design.
    """
    injected = _TEST_NOISE_RNG.get()
    if injected is not None:
        return injected
    return np.random.Generator(np.random.Philox(key=secrets.randbits(128)))


@contextlib.contextmanager
def _seeded_noise_for_tests(seed):
    """TEST-ONLY hook: make DP noise reproducible inside a ``with`` block.

    Never use this for a real release: seeded noise is no privacy at all
    (anyone with the seed removes it). It exists so that tests can check
    accuracy and run statistical audits at fixed seeds.
    """
    token = _TEST_NOISE_RNG.set(np.random.Generator(np.random.Philox(seed)))
    try:
        yield
    finally:
        _TEST_NOISE_RNG.reset(token)


def grid_step(magnitude, bits=20):
    """Public grid step ``gamma = 2^(floor(log2 magnitude) - bits)``.

    ``magnitude`` must be a public bound (largest contribution of one record,
    in the statistic's units); the grid then resolves it to ``2^-bits``.
    """
    if not magnitude > 0:
        raise param_error("magnitude", "grid_step", "a positive public bound", magnitude)
    return math.ldexp(1.0, math.floor(math.log2(magnitude)) - bits)


def snap(values, gamma):
    """Round real contributions to the integer grid: ``rint(values / gamma)`` as int64."""
    return np.rint(np.asarray(values, dtype=np.float64) / gamma).astype(np.int64)


def grid_sensitivity(real_bound, gamma, n_cells, norm):
    """Sensitivity in grid units after snapping each record's contribution.

    A record's real contribution v (an ``n_cells``-vector) has
    ``||v||_norm <= real_bound``; rounding moves each cell by at most 1/2
    unit, so ``||rint(v / gamma)||_1 <= real_bound / gamma + n_cells / 2``
    and ``||rint(v / gamma)||_2 <= real_bound / gamma + sqrt(n_cells) / 2``.
    The bound is widened by a relative 2^-16 to cover the floating-point
    error of the computed contributions (float32 cos / sin are within a few
    1e-7 of the exact values).
    """
    slack = n_cells / 2 if norm == 1 else math.sqrt(n_cells) / 2
    return real_bound / gamma * (1 + 2.0 ** -16) + slack


def discrete_laplace(scale, size, rng=None):
    """Integer noise with ``P(z) ∝ exp(-|z| / scale)``, vectorised.

    Sampled as ``G1 - G2`` with ``G1, G2`` i.i.d. geometric on {0, 1, ...}
    with success probability ``p = 1 - exp(-1 / scale)``: their difference
    has exactly the two-sided geometric law above.

    Parameters
    ----------
    scale : float > 0
        In grid units (``Delta_1 / epsilon`` for the epsilon-DP mechanism).
    size : int or tuple
    rng : numpy Generator, optional
        Defaults to :func:`noise_generator` (CSPRNG-keyed).
    """
    rng = noise_generator() if rng is None else rng
    p = -math.expm1(-1.0 / scale)
    # numpy's geometric counts trials (support 1, 2, ...): the shift cancels.
    return rng.geometric(p, size=size) - rng.geometric(p, size=size)


def discrete_laplace_std(scale):
    """Standard deviation of :func:`discrete_laplace` noise: sqrt(2 q) / (1 - q), q = exp(-1/scale).

    ``1 - q`` is computed as ``-expm1(-1/scale)``: exact for large scales,
    where ``1 - exp(-1/scale)`` loses digits (and is 0 above 1e16).
    """
    q = math.exp(-1.0 / scale)
    return math.sqrt(2 * q) / -math.expm1(-1.0 / scale)


def rounded_gaussian(sigma, size, rng=None):
    """Integer noise ``rint(N(0, sigma^2))`` (grid units), vectorised."""
    rng = noise_generator() if rng is None else rng
    return np.rint(rng.standard_normal(size) * sigma).astype(np.int64)


def rounded_gaussian_std(sigma):
    """Standard deviation of :func:`rounded_gaussian` (sigma^2 + 1/12, Sheppard's correction)."""
    return math.sqrt(sigma * sigma + 1.0 / 12.0)


def _gaussian_delta(sigma, epsilon, sensitivity):
    """delta achieved by N(0, sigma^2) for L2 sensitivity Delta (Balle and Wang 2018, Thm 8)."""
    from scipy.special import log_ndtr
    a = sensitivity / (2 * sigma)
    b = epsilon * sigma / sensitivity
    first = math.exp(log_ndtr(a - b))
    second = math.exp(epsilon + log_ndtr(-a - b))
    return first - second


@functools.lru_cache(maxsize=256)
def gaussian_sigma(epsilon, delta, sensitivity):
    """Smallest sigma making the Gaussian mechanism (epsilon, delta)-DP.

    The analytic Gaussian mechanism (Balle and Wang 2018): N(0, sigma^2) on
    a statistic with L2 sensitivity Delta is (epsilon, delta)-DP iff
    ``Phi(Delta/(2 sigma) - epsilon sigma/Delta) - e^epsilon Phi(-Delta/(2 sigma)
    - epsilon sigma/Delta) <= delta``. Solved by bisection on log sigma (valid
    for every epsilon > 0, unlike the classical sqrt(2 ln(1.25/delta)) bound,
    which needs epsilon < 1).
    """
    lo, hi = 1e-6 * sensitivity, sensitivity * (1.0 + math.sqrt(2 * math.log(1.25 / delta)) / epsilon) * 4
    if not math.isfinite(hi):
        # tiny epsilon: use the epsilon = 0 bound instead, 2 Phi(a) - 1 <= a sqrt(2 / pi) <= delta
        # for a = Delta / (2 sigma), i.e. sigma = Delta / (delta sqrt(2 pi)) (the profile
        # delta(epsilon) decreases in epsilon)
        hi = sensitivity / (delta * math.sqrt(2 * math.pi))
        if not math.isfinite(hi):
            return math.inf  # beyond float64: callers refuse such a release
    while _gaussian_delta(hi, epsilon, sensitivity) > delta:
        hi *= 2
    for _ in range(200):
        mid = math.sqrt(lo * hi)
        if _gaussian_delta(mid, epsilon, sensitivity) > delta:
            lo = mid
        else:
            hi = mid
        if hi / lo < 1 + 1e-12:
            break
    return hi
