r"""Modes of a kernel density estimate: mean shift, and mean shift after a random projection.

Mean shift (Fukunaga & Hostetler 1975; Comaniciu & Meer 2002) for a radial
kernel :math:`k(x, y) = \varphi(\|x - y\|^2 / h^2)` moves each seed z to

.. math:: z \leftarrow \frac{\sum_i w_i\, g(\|x_i - z\|^2 / h^2)\, x_i}{\sum_i w_i\, g(\|x_i - z\|^2 / h^2)},
          \qquad g = -\varphi' ,

a fixed point of which is a stationary point of the estimate (the update is
a step along its gradient, and the density never decreases). The profile
derivative g is again a kernel of a known family (the "shadow" kernel, see
:func:`shadow_kernel`), so each iteration is one engine kernel sum with
d + 1 weight columns for all seeds at once; queries whose sums underflow
(seeds far from every point, high dimension) are recomputed in the log domain.

Random projection (Luo, Musco & Widdershoven, "Dimensionality reduction for
general KDE mode finding", ICML 2023): project the data and seeds with a
Gaussian matrix to d' dimensions (d' = O(log n / eps^2)), run mean shift
there, then lift each mode z' back by one weighted mean in the original
space, :math:`\hat x = \sum_i w_i k(G x_i, z') x_i / \sum_i w_i k(G x_i, z')`.
On 3 clusters in d = 100 (n = 6,000, 60 seeds, h = 6) the lifted modes'
log densities were within 3.1e-4 / 1.5e-4 / 1.0e-4 / 5e-5 nats of exact mean
shift's at d' = 5 / 10 / 20 / 40 (tests check 0.01 nats at d = 60, d' = 12);
``refine`` mean-shift steps in the original space from the lifted points
close the rest (3 steps gave the exact values there).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .._random import generator
from .._validation import Integral, Real, check_param, check_points, param_error
from ..engine import _pruned, kernel_logsumexp, kernel_sum
from ..exceptions import NotSupportedError
from ..kernels import (IMQ, Biweight, Epanechnikov, Gaussian, Laplace, Matern, RationalQuadratic, ScaledKernel, Tophat,
                       Triweight)

__all__ = ["mean_shift", "ModeResult", "shadow_kernel"]


def shadow_kernel(kernel):
    r"""The kernel proportional to :math:`g = -\varphi'(r^2)` (the mean-shift weights of ``kernel``).

    Gaussian(s) -> Gaussian(s); IMQ(c, beta) -> IMQ(c, beta + 1);
    RationalQuadratic(l, a) -> RationalQuadratic(l sqrt(a / (a + 1)), a + 1);
    Matern(5/2, l) -> Matern(3/2, l sqrt(3/5)); Matern(3/2, l) -> Laplace(l / sqrt 3);
    Epanechnikov(h) -> Tophat(h) (the flat kernel: classical mean shift); Biweight(h) -> Epanechnikov(h);
    Triweight(h) -> Biweight(h);
    positive scalings are dropped (a constant factor cancels in the update).

    Raises
    ------
    NotSupportedError
        For kernels whose profile has no derivative at 0 (Laplace, Matern 1/2: g is infinite
        there) or no closed form here (sums, products, general-nu Matern, periodic).
    """
    kind = type(kernel)
    dist = {"distance": getattr(kernel, "distance", "euclidean")}
    if kind is ScaledKernel:
        return shadow_kernel(kernel.base)
    if kind is Gaussian:
        return kernel
    if kind is IMQ:
        return IMQ(kernel.bandwidth, kernel.beta + 1, **dist)
    if kind is RationalQuadratic:
        a = kernel.alpha
        return RationalQuadratic(kernel.bandwidth * math.sqrt(a / (a + 1)), a + 1, **dist)
    if kind is Matern and kernel.nu == 2.5:
        return Matern(1.5, kernel.bandwidth * math.sqrt(3 / 5), **dist)
    if kind is Matern and kernel.nu == 1.5:
        return Laplace(kernel.bandwidth / math.sqrt(3), **dist)
    compact = {Epanechnikov: Tophat, Biweight: Epanechnikov, Triweight: Biweight}
    if kind in compact:
        return compact[kind](kernel.bandwidth, **dist)
    if kind is Laplace or (kind is Matern and kernel.nu == 0.5):
        raise NotSupportedError(f"mean shift needs a kernel whose profile has a derivative at 0; {kernel!r} has "
                                "none (-phi'(r^2) = exp(-r) / (2 r) is infinite at r = 0). Use Matern(1.5) or "
                                "Matern(2.5), a Gaussian, IMQ or rational quadratic kernel.")
    raise NotSupportedError(f"mean shift has no profile derivative for {kernel!r}; it supports Gaussian, IMQ, "
                            "RationalQuadratic, Matern(1.5 / 2.5), Epanechnikov, Biweight and Triweight kernels and "
                            "their positive scalings.")


@dataclass(frozen=True, repr=False)
class ModeResult:
    """Modes found by :func:`mean_shift`.

    Attributes
    ----------
    modes : array (k, d)
        The distinct modes (data units), by decreasing log density.
    log_density : array (k,)
        The estimate's log density at each mode.
    counts : array (k,)
        Number of seeds that converged to each mode.
    labels : array (m,)
        For each seed, the index of its mode.
    n_iter : int
        Mean-shift iterations run (the largest over the seeds).
    converged : array (m,) of bool
        Whether each seed's last step was below ``tol``.
    """

    modes: np.ndarray
    log_density: np.ndarray
    counts: np.ndarray
    labels: np.ndarray
    n_iter: int
    converged: np.ndarray

    def __repr__(self):
        return (f"ModeResult({self.modes.shape[0]} modes from {self.labels.size} seeds, {self.n_iter} iterations, "
                f"{int(self.converged.sum())} converged)")


def _shift_weights(Xs, w):
    """The d + 1 weight columns of a mean-shift step: w, and w times each coordinate."""
    W = np.empty((Xs.shape[0], Xs.shape[1] + 1))
    W[:, 0] = w
    W[:, 1:] = w[:, None] * Xs
    return W


def _shift(g, Xs, Z, w, lw, opts, summer=None):
    """One mean-shift update of every row of Z (scaled units): kernel sums with d + 1 columns, and the
    log domain for rows whose denominator underflows. ``summer``: a prepared pruned sum of the weights
    :func:`_shift_weights` (compact shadow kernels: X partitioned once for all the steps), or None."""
    d = Xs.shape[1]
    if summer is not None:
        S = summer(Z)
    else:
        S = np.asarray(kernel_sum(g, Xs, Z, _shift_weights(Xs, w), **opts), dtype=np.float64)
    S = S.reshape(Z.shape[0], d + 1)
    out = np.empty_like(Z, dtype=np.float64)
    ok = S[:, 0] > 1e-280
    out[ok] = S[ok, 1:] / S[ok, :1]
    if not ok.all():   # log domain: coordinates shifted to be >= 1, so their logs exist
        low = Xs.min(axis=0) - 1.0
        LW = np.empty((Xs.shape[0], d + 1))
        LW[:, 0] = lw
        with np.errstate(divide="ignore"):
            LW[:, 1:] = lw[:, None] + np.log(Xs - low)
        L = np.asarray(kernel_logsumexp(g, Xs, Z[~ok], LW, **opts), dtype=np.float64).reshape(-1, d + 1)
        with np.errstate(invalid="ignore"):
            out[~ok] = np.exp(L[:, 1:] - L[:, :1]) + low
        stuck = ~np.isfinite(L[:, 0])          # every term exactly zero: the seed stays where it is
        rows = np.flatnonzero(~ok)[stuck]
        out[rows] = Z[rows]
    return out


def _iterate(g, Xs, Z, w, lw, opts, max_iter, tol):
    """Mean shift from the rows of Z until each moves less than tol (scaled units)."""
    Z = np.array(Z, dtype=np.float64)
    active = np.arange(Z.shape[0])
    converged = np.zeros(Z.shape[0], dtype=bool)
    # compactly supported shadow kernels (the flat kernel of Epanechnikov, ...): the points are partitioned
    # once and every step sums over the points within the support of each block of seeds only (exact)
    summer = _pruned.prepare_pruned_sum(g, Xs, _shift_weights(Xs, w), **opts)
    it = 0
    while active.size and it < max_iter:
        it += 1
        new = _shift(g, Xs, Z[active], w, lw, opts, summer)
        step = np.sqrt(np.sum((new - Z[active]) ** 2, axis=1))
        Z[active] = new
        done = step <= tol
        converged[active[done]] = True
        active = active[~done]
    return Z, converged, it


def _merge(Z, logp, radius):
    """Group points within ``radius`` of a higher-density representative: (representatives, labels)."""
    order = np.argsort(-logp, kind="stable")
    reps, labels = [], np.full(Z.shape[0], -1)
    for j in order:
        if labels[j] >= 0:
            continue
        labels[j] = len(reps)
        free = labels < 0
        near = free & (np.sqrt(np.sum((Z - Z[j]) ** 2, axis=1)) <= radius)
        labels[near] = len(reps)
        reps.append(j)
    return np.array(reps, dtype=np.int64), labels


def mean_shift(kde, seeds=None, *, max_iter=500, tol=1e-7, merge_radius=0.1, projection_dim=None, refine=0,
               random_state=None):
    r"""Modes of a fitted :class:`KernelDensity` by mean shift from seeds (module docstring).

    Parameters
    ----------
    kde : KernelDensity
        A fitted estimator with a radial kernel whose profile has a derivative (:func:`shadow_kernel`).
    seeds : array of shape (m, d), optional
        Starting points (data units). Default: the data points.
    max_iter : int >= 1, default 500
        Most iterations per seed.
    tol : float > 0, default 1e-7
        A seed has converged when its step is at most ``tol`` bandwidths.
    merge_radius : float > 0, default 0.1
        Converged points within ``merge_radius`` bandwidths of a point of higher density are the same mode.
    projection_dim : int >= 1, optional
        Run mean shift on a Gaussian random projection to this many dimensions, then lift each mode back
        by one weighted mean in the original space (Luo, Musco & Widdershoven). Only when it is below d.
    refine : int >= 0, default 0
        Mean-shift steps in the original space after the lift (projection only).
    random_state : None, int or Generator
        The projection matrix (projection only).

    Returns
    -------
    ModeResult
    """
    owner = "KernelDensity.modes"
    kde._check_fitted("modes")
    if getattr(kde, "_whiten", None) is not None:
        raise NotSupportedError("KernelDensity.modes works in data coordinates: not with a bandwidth_matrix "
                                "(fit with bandwidth_matrix=None).")
    max_iter = check_param(max_iter, "max_iter", owner, Integral(low=1))
    tol = float(check_param(tol, "tol", owner, Real(low=0, low_open=True)))
    merge_radius = float(check_param(merge_radius, "merge_radius", owner, Real(low=0, low_open=True)))
    projection_dim = check_param(projection_dim, "projection_dim", owner, Integral(low=1) | None)
    refine = check_param(refine, "refine", owner, Integral(low=0))
    g = shadow_kernel(kde.kernel_)
    X = kde._X.astype(np.float64)
    d = X.shape[1]
    if seeds is None:
        seeds = X
    seeds = check_points(seeds, "seeds", owner).astype(np.float64)
    if seeds.shape[1] != d:
        raise param_error("seeds", owner, f"an array with {d} columns (as the fitted data)", seeds)
    h = kde._scale
    w, lw = kde._w.astype(np.float64), kde._log_w.astype(np.float64)
    opts = kde._engine_opts()
    Xs, Zs = X / h, seeds / h
    if projection_dim is not None and projection_dim < d:
        rng = generator(random_state, owner)
        G = rng.standard_normal((d, projection_dim)) / math.sqrt(projection_dim)
        Pz, converged, it = _iterate(g, Xs @ G, Zs @ G, w, lw, opts, max_iter, tol)
        # lift: one weighted mean of the original points, weights k(G x_i, z') of the projected problem
        Wl = np.concatenate([w[:, None], w[:, None] * Xs], axis=1)
        S = np.asarray(kernel_sum(kde.kernel_, Xs @ G, Pz, Wl, **opts), dtype=np.float64).reshape(-1, d + 1)
        good = S[:, 0] > 1e-280
        Z = np.where(good[:, None], S[:, 1:] / np.where(good, S[:, 0], 1.0)[:, None], Pz @ np.linalg.pinv(G))
        if refine:
            Z, _, _ = _iterate(g, Xs, Z, w, lw, opts, refine, tol)
    else:
        Z, converged, it = _iterate(g, Xs, Zs, w, lw, opts, max_iter, tol)
    logp = kde.score_samples(Z * h).astype(np.float64)
    reps, labels = _merge(Z, logp, merge_radius)
    counts = np.bincount(labels, minlength=reps.size)
    return ModeResult(modes=Z[reps] * h, log_density=logp[reps], counts=counts, labels=labels, n_iter=it,
                      converged=converged)
