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
Seeds that meet (bitwise equal points) are shifted once per step.

The Epanechnikov kernel's shadow is the flat kernel (classical mean shift: z moves
to the mean of the points within h). Its fixed points are not unique (plateaus:
any z equal to the mean of the points within h of it), so seeds of one mode end
on nearby, different points; ``rank_by`` picks which one represents the mode.
``rank_by="sklearn"`` with ``tol=1e-3`` and ``merge_radius=1`` is scikit-learn's
MeanShift rule, and reproduces its centres from the same seeds (measured: the
largest distance 1.0e-14 at n = 1e5, 1e4 seeds, h = 0.6, a 2-D mixture,
benchmarks/bench_density_highdim.py part 2; tests check 1e-12).

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
    r"""Modes found by :func:`mean_shift`.

    Attributes
    ----------
    modes : array (k, d)
        The distinct modes (data units), by decreasing rank (``rank_by`` of :func:`mean_shift`: the log
        density by default). Each is one seed's end point (the best ranked of its group), not an average.
    log_density : array (k,)
        The estimate's log density at each mode.
    counts : array (k,)
        Number of seeds that converged to each mode.
    labels : array (m,)
        For each seed, the index of its mode.
    n_iter : int
        Mean-shift iterations run (the largest over the seeds).
    converged : array (m,) of bool
        Whether each seed's last step was at most ``tol`` bandwidths.
    points : array (m, d)
        Each seed's end point (data units), before the merge: ``modes[k]`` is ``points[j]`` for the best
        ranked seed j with ``labels[j] == k``.
    shadow_sums : array (m,)
        At each seed's end, :math:`\sum_i w_i\, g(\|x_i - z\|^2 / h^2)` with z the point its last step
        started from (the denominator of that step; g the shadow kernel, :func:`shadow_kernel`, with
        value 1 at distance 0; with ``projection_dim`` and ``refine=0``, of the projected problem). For
        the Epanechnikov kernel (flat shadow) and unit weights this is the number of data points within h
        of z (scikit-learn's MeanShift "intensity"). May underflow to 0 (the step then ran in the log
        domain).
    """

    modes: np.ndarray
    log_density: np.ndarray
    counts: np.ndarray
    labels: np.ndarray
    n_iter: int
    converged: np.ndarray
    points: np.ndarray
    shadow_sums: np.ndarray

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
    :func:`_shift_weights` (compact shadow kernels: X partitioned once for all the steps), or None.
    Returns (the new rows, each row's denominator sum_i w_i g(|x_i - z|^2), and its log: the log-domain
    value for the rows whose denominator underflowed, the denominator then exp of that, possibly 0)."""
    d = Xs.shape[1]
    if summer is not None:
        S = summer(Z)
    else:
        S = np.asarray(kernel_sum(g, Xs, Z, _shift_weights(Xs, w), **opts), dtype=np.float64)
    S = S.reshape(Z.shape[0], d + 1)
    out = np.empty_like(Z, dtype=np.float64)
    ok = S[:, 0] > 1e-280
    out[ok] = S[ok, 1:] / S[ok, :1]
    den = S[:, 0].copy()
    log_den = np.full(Z.shape[0], -np.inf)
    with np.errstate(divide="ignore"):
        log_den[ok] = np.log(den[ok])
    if not ok.all():   # log domain: coordinates shifted to be >= 1, so their logs exist
        low = Xs.min(axis=0) - 1.0
        LW = np.empty((Xs.shape[0], d + 1))
        LW[:, 0] = lw
        with np.errstate(divide="ignore"):
            LW[:, 1:] = lw[:, None] + np.log(Xs - low)
        L = np.asarray(kernel_logsumexp(g, Xs, Z[~ok], LW, **opts), dtype=np.float64).reshape(-1, d + 1)
        with np.errstate(invalid="ignore"):
            out[~ok] = np.exp(L[:, 1:] - L[:, :1]) + low
        log_den[~ok] = L[:, 0]
        den[~ok] = np.exp(L[:, 0])
        stuck = ~np.isfinite(L[:, 0])          # every term exactly zero: the seed stays where it is
        rows = np.flatnonzero(~ok)[stuck]
        out[rows] = Z[rows]
    return out, den, log_den


def _iterate(g, Xs, Z, w, lw, opts, max_iter, tol):
    """Mean shift from the rows of Z until each moves at most tol (scaled units): (end points, converged,
    iterations, each row's last denominator, its log; see :func:`_shift`). Rows that coincide exactly
    (seeds that met: frequent with the flat kernel, whose steps are means of identical point sets) are
    shifted once per step and the result copied to each (the step depends on the point only; unshared,
    copies could differ by rounding in the engine's blocks). Measured 15-23 % faster (1e4 seeds, n = 1e5)."""
    Z = np.array(Z, dtype=np.float64)
    active = np.arange(Z.shape[0])
    converged = np.zeros(Z.shape[0], dtype=bool)
    den, log_den = np.full(Z.shape[0], np.nan), np.full(Z.shape[0], np.nan)
    # compactly supported shadow kernels (the flat kernel of Epanechnikov, ...): the points are partitioned
    # once and every step sums over the points within the support of each block of seeds only (exact)
    summer = _pruned.prepare_pruned_sum(g, Xs, _shift_weights(Xs, w), **opts)
    it = 0
    while active.size and it < max_iter:
        it += 1
        cur = Z[active]
        uniq, inv = np.unique(cur, axis=0, return_inverse=True)
        if uniq.shape[0] < cur.shape[0]:
            new, dn, ld = _shift(g, Xs, uniq, w, lw, opts, summer)
            inv = inv.reshape(-1)
            new, dn, ld = new[inv], dn[inv], ld[inv]
        else:
            new, dn, ld = _shift(g, Xs, cur, w, lw, opts, summer)
        step = np.sqrt(np.sum((new - cur) ** 2, axis=1))
        Z[active] = new
        den[active], log_den[active] = dn, ld
        done = step <= tol
        converged[active[done]] = True
        active = active[~done]
    return Z, converged, it, den, log_den


def _merge(Z, logp, radius, primary=None, ties="density"):
    """Group points within ``radius`` of a better ranked representative: (representatives, labels). Rank:
    by decreasing ``primary`` (when given), ties by decreasing ``logp`` (``ties="density"``) or by decreasing
    coordinates, the first one first (``ties="coordinates"``), then by index."""
    if primary is None:
        order = np.argsort(-logp, kind="stable")
    elif ties == "density":
        order = np.lexsort((np.arange(Z.shape[0]), -logp, -primary))
    else:
        order = np.lexsort((np.arange(Z.shape[0]),) + tuple(-Z[:, k] for k in range(Z.shape[1] - 1, -1, -1))
                           + (-primary,))
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


def mean_shift(kde, seeds=None, *, max_iter=500, tol=1e-7, merge_radius=0.1, rank_by="density",
               projection_dim=None, refine=0, random_state=None):
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
        End points within ``merge_radius`` bandwidths of a better ranked one (``rank_by``) are the same
        mode; the best ranked end point of each group is reported (greedy, best first).
    rank_by : {"density", "shadow", "sklearn"}, default "density"
        How the end points are ranked for the merge. "density": the estimate's log density. "shadow":
        :attr:`ModeResult.shadow_sums`, :math:`\sum_i w_i\, g(\|x_i - z\|^2 / h^2)` at the start of the
        last step, ties by the density. "sklearn": the shadow sums, ties by the coordinates (larger first,
        the first coordinate first), as scikit-learn's MeanShift sorts its centres. With the Epanechnikov
        kernel (flat shadow), unit weights, ``tol=1e-3`` and ``merge_radius=1`` this is MeanShift's rule
        (the same iterates, its stop at a step of at most 1e-3 h, the centre with most points within h
        first, its merge within h), and reproduces its ``cluster_centers_`` (to rounding) from the same
        seeds. Flat-kernel fixed points are not unique (any z equal to the mean of the points within h
        of it): nearby seeds end on different ones, and with integer counts ties between them are common,
        so "shadow" and "sklearn" can report different, equally ranked, centres of one mode.
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
    if not (isinstance(rank_by, str) and rank_by in ("density", "shadow", "sklearn")):
        raise param_error("rank_by", owner, "'density', 'shadow' or 'sklearn'", rank_by)
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
        Pz, converged, it, den, log_den = _iterate(g, Xs @ G, Zs @ G, w, lw, opts, max_iter, tol)
        # lift: one weighted mean of the original points, weights k(G x_i, z') of the projected problem
        Wl = np.concatenate([w[:, None], w[:, None] * Xs], axis=1)
        S = np.asarray(kernel_sum(kde.kernel_, Xs @ G, Pz, Wl, **opts), dtype=np.float64).reshape(-1, d + 1)
        good = S[:, 0] > 1e-280
        Z = np.where(good[:, None], S[:, 1:] / np.where(good, S[:, 0], 1.0)[:, None], Pz @ np.linalg.pinv(G))
        if refine:
            Z, _, _, den, log_den = _iterate(g, Xs, Z, w, lw, opts, refine, tol)
    else:
        Z, converged, it, den, log_den = _iterate(g, Xs, Zs, w, lw, opts, max_iter, tol)
    logp = kde.score_samples(Z * h).astype(np.float64)
    reps, labels = _merge(Z, logp, merge_radius, None if rank_by == "density" else log_den,
                          "coordinates" if rank_by == "sklearn" else "density")
    counts = np.bincount(labels, minlength=reps.size)
    return ModeResult(modes=Z[reps] * h, log_density=logp[reps], counts=counts, labels=labels, n_iter=it,
                      converged=converged, points=Z * h, shadow_sums=den)
