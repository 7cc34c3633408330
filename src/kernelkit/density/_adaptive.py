r"""Adaptive (variable-bandwidth) kernel density estimates: the sample-point and the balloon estimator.

Two ways to let the bandwidth vary (Terrell & Scott 1992 name them):

**Sample-point estimator** (one bandwidth per data point :math:`h_i`):

.. math::

    \hat p(y) = \frac{1}{\sum_i w_i} \sum_i w_i\, \frac{1}{Z h_i^d}\, k\big(\|y - x_i\| / h_i\big),

with :math:`k` the kernel at unit bandwidth and :math:`Z = \int_{R^d} k`. Each
term is a normalised density, so :math:`\hat p` is a mixture: it integrates to
1 and can be sampled (pick i with probability :math:`w_i / \sum w`, then draw
from :math:`k_{h_i}` around :math:`x_i`). Abramson's square-root law (1982)
takes

.. math:: h_i = h\,\big(\tilde p(x_i) / g\big)^{-\alpha},\qquad
          \log g = \frac{\sum_i w_i \log \tilde p(x_i)}{\sum_i w_i},

with :math:`\tilde p` a fixed-bandwidth pilot estimate at bandwidth h
(evaluated at the data points, each point's own kernel included, as in
Silverman 1986, section 5.3), g its
weighted geometric mean at the data (so h is the geometric mean of the
:math:`h_i`) and the sensitivity :math:`\alpha = 1/2` (Abramson's value; 0
gives back the fixed estimate). Narrow kernels where the data are dense, wide
ones in the tails.

**Balloon estimator** (one bandwidth per query :math:`h(y)`):

.. math::

    \hat p(y) = \frac{1}{\sum_i w_i} \frac{1}{Z h(y)^d} \sum_i w_i\, k\big(\|y - x_i\| / h(y)\big),

here with :math:`h(y)` the distance from y to its k-th nearest data point (the
k-nearest-neighbour kernel estimate of Loftsgaarden & Quesenberry 1965 and Mack
& Rosenblatt 1979). At each y it is a fixed-bandwidth estimate, but as a
function of y it does not integrate to 1 in general (in 1-D the k-NN estimate
has tails like 1/|y| and an infinite integral), so it is not sampled.

How it is computed (exact, through the engine). The engine sums an isotropic
kernel at one bandwidth per call. The per-point scale cannot be folded into
one call: :math:`\|y - x_i\|^2 / h_i^2` couples y and i through :math:`h_i`
(lifting y to :math:`(y, \|y\|^2)` turns it into one Gaussian kernel sum in
d + 1 dimensions, but by subtracting terms of size :math:`\|y\|^2 / h_i^2`,
which loses all the digits of the log density far from the origin; not used).
So the points are grouped by their bandwidth: one
``kernel_logsumexp`` of each group (its points and every query, divided by the
group's bandwidth) per distinct value, merged with ``logaddexp`` in float64.
That is exact, and costs the n m kernel values of a fixed estimate plus the
engine's overhead per call times the number of distinct bandwidths G (G = n
for Abramson's law). Measured here (loaded 2-core machine, fused backend): a
call costs about 0.2 ms plus about 1 microsecond per query even for a group
of one point: with n = m = 2,000 in 2-D the exact Abramson estimate took
5.3 s against 0.09 s for the fixed one, and 0.27 s with ``bins`` = 64
(below), which bounds G.
The balloon estimator groups the queries the same way (m calls over all n
points: the overhead is then small beside the n m kernel values once n is in
the thousands).

Optional quantisation (``bins``): rounding :math:`\log h_i` to the nearest of
B evenly spaced values between the smallest and largest (a geometric grid)
leaves G <= B engine calls. The result is still a density (the sample-point
estimate with the rounded bandwidths :math:`\tilde h_i`), and its L1 distance
from the unrounded one is bounded: for a radial kernel with a non-increasing
profile, :math:`\|k_{h} - k_{h e^\epsilon}\|_1 \le 2 d |\epsilon|` (differentiate
:math:`t^{-d} k(z/t)` in t and integrate by parts), and for the Gaussian,
by Pinsker's inequality, :math:`\le \sqrt{2d}\,|\epsilon|`; the mixture's
distance is at most the largest term's, so

.. math:: \|\hat p_{\tilde h} - \hat p_h\|_1 \le c_d \max_i |\log \tilde h_i - \log h_i|
          \le c_d \frac{\log(h_{max} / h_{min})}{2 (B - 1)},

:math:`c_d = \sqrt{2d}` (Gaussian) or 2d. The bound actually reached is
returned (:attr:`KernelDensity.adaptive_l1_bound_`). There is no pointwise
bound (far in the tails the two differ by any factor), so the default is the
exact grouping.
"""

from __future__ import annotations

import math

import numpy as np

from .._validation import param_error
from ..engine import kernel_logsumexp

__all__ = ["abramson_bandwidths", "quantise_bandwidths", "l1_bound", "sample_point_logsumexp",
           "balloon_logsumexp", "knn_distances", "default_n_neighbors"]

_F32_MAX = float(np.finfo(np.float32).max)


def abramson_bandwidths(log_pilot, h, sensitivity, w):
    r"""Abramson's law :math:`h_i = h\,(\tilde p(x_i) / g)^{-\alpha}` (data units), shape (n,).

    Parameters
    ----------
    log_pilot : array of shape (n,)
        :math:`\log \tilde p(x_i)`, the pilot log density at the data (log of 1 / data-units^d).
    h : float > 0
        The pilot's bandwidth (data units): the geometric mean of the result (weighted).
    sensitivity : float in [0, 1]
        :math:`\alpha` (dimensionless); 1/2 is Abramson's square-root law.
    w : array of shape (n,)
        Non-negative weights; g is the geometric mean over the points of positive weight, weighted.
        Points of zero weight (which add nothing to the estimate) get h.

    Returns
    -------
    (bandwidths, log_g) : ndarray (n,) float64, float
    """
    lp = np.asarray(log_pilot, dtype=np.float64)
    used = w > 0
    log_g = float(np.sum(w[used] * lp[used]) / np.sum(w[used]))
    log_h = math.log(h) - sensitivity * (lp - log_g)
    log_h = np.where(used & np.isfinite(lp), log_h, math.log(h))
    return np.exp(log_h), log_g


def quantise_bandwidths(bandwidths, bins, used=None):
    r"""Round :math:`\log h_i` to the nearest of ``bins`` evenly spaced values in [log min h, log max h].

    Parameters
    ----------
    bandwidths : array of shape (n,), > 0 (data units)
    bins : int >= 2
    used : boolean array of shape (n,), optional
        The points whose bandwidths count (positive weight); the others are rounded too but do not set
        the range or the error.

    Returns
    -------
    (rounded bandwidths, max |log rounded - log h| over the used points) : ndarray (n,), float
    """
    h = np.asarray(bandwidths, dtype=np.float64)
    used = np.ones(h.shape, dtype=bool) if used is None else used
    lh = np.log(h)
    lo, hi = float(lh[used].min()), float(lh[used].max())
    if hi == lo:
        return h.copy(), 0.0
    step = (hi - lo) / (bins - 1)
    t = np.clip(np.rint((lh - lo) / step), 0, bins - 1)
    grid = lo + step * t
    out = np.exp(grid)
    return out, float(np.max(np.abs(grid - lh)[used]))


def l1_bound(kernel, d, eps):
    r"""Bound on the L1 distance between the sample-point estimates with bandwidths h and h e^{\epsilon_i},
    :math:`|\epsilon_i| \le` ``eps``: :math:`\sqrt{2d}\,\epsilon` for the Gaussian, :math:`2 d \epsilon` for
    another radial kernel with a non-increasing profile (all of kernelkit's named density kernels)."""
    c = math.sqrt(2.0 * d) if type(kernel).__name__ == "Gaussian" else 2.0 * d
    return c * float(eps)


def _fits32(h, *arrays):
    big = max(float(np.max(np.abs(a), initial=0.0)) for a in arrays)
    return (1e-37 < h < 1e37) and big / h <= _F32_MAX / 4


def _scaled(A, h, dt):
    """A / h computed in float64, as ``dt``."""
    return (np.asarray(A, dtype=np.float64) / h).astype(dt, copy=False)


def sample_point_logsumexp(kernel, X, Y, log_w, bandwidths, opts, out_dt=np.float64):
    r""":math:`\log \sum_i w_i h_i^{-d} k(\|y_j - x_i\| / h_i)` for every query y_j, float64, shape (m,).

    One ``kernel_logsumexp`` per distinct value of ``bandwidths`` among the points of positive weight
    (X and Y divided by that value, in ``out_dt`` when they fit float32, else float64), merged with
    ``logaddexp``: exact in the log domain (see the module docstring).

    Parameters
    ----------
    kernel : Kernel
        The kernel at unit bandwidth.
    X : array (n, d); Y : array (m, d)
        Data and queries (data units).
    log_w : array (n,)
        Log weights (-inf for zero weights).
    bandwidths : array (n,), > 0
        :math:`h_i`, data units.
    opts : dict
        Engine options (memory, threads, backend, progress).
    """
    d = X.shape[1]
    keep = np.isfinite(log_w)
    values, inverse = np.unique(bandwidths[keep], return_inverse=True)
    Xk, lwk = X[keep], log_w[keep]
    out = np.full(Y.shape[0], -np.inf)
    for g, hg in enumerate(values):
        idx = np.flatnonzero(inverse == g)
        hg = float(hg)
        Xg = Xk[idx]
        dt = out_dt if (out_dt == np.float32 and _fits32(hg, Xg, Y)) else np.float64
        lse = kernel_logsumexp(kernel, _scaled(Xg, hg, dt), _scaled(Y, hg, dt), lwk[idx], **opts)
        np.logaddexp(out, np.asarray(lse, dtype=np.float64) - d * math.log(hg), out=out)
    return out


def balloon_logsumexp(kernel, X, Y, log_w, query_bandwidths, opts, out_dt=np.float64):
    r""":math:`\log \sum_i w_i h(y_j)^{-d} k(\|y_j - x_i\| / h(y_j))` per query, float64, shape (m,).

    One ``kernel_logsumexp`` per distinct query bandwidth (all data points, that group's queries),
    exact. A query bandwidth of 0 (a query on top of k or more data points) gives +inf.
    """
    d = X.shape[1]
    keep = np.isfinite(log_w)
    Xk, lwk = X[keep], log_w[keep]
    hq = np.asarray(query_bandwidths, dtype=np.float64)
    out = np.full(Y.shape[0], np.inf)
    pos = hq > 0
    values, inverse = np.unique(hq[pos], return_inverse=True)
    where = np.flatnonzero(pos)
    for g, hg in enumerate(values):
        idx = where[inverse == g]
        hg = float(hg)
        Yg = Y[idx]
        dt = out_dt if (out_dt == np.float32 and _fits32(hg, Xk, Yg)) else np.float64
        lse = kernel_logsumexp(kernel, _scaled(Xk, hg, dt), _scaled(Yg, hg, dt), lwk, **opts)
        out[idx] = np.asarray(lse, dtype=np.float64) - d * math.log(hg)
    return out


def default_n_neighbors(n, d):
    """ceil(n^(4/(d+4))), at most n: the rate of the AMISE-optimal k of the k-NN kernel estimate
    (Mack & Rosenblatt 1979), with constant 1."""
    return int(min(n, max(1, math.ceil(n ** (4.0 / (d + 4))))))


def knn_distances(X, Y, k, used=None, owner="KernelDensity"):
    """Euclidean distance from each row of Y to its k-th nearest row of X (rows with ``used`` False left
    out), float64, shape (m,). A row of Y that is a row of X counts it (distance 0). Exact
    (scikit-learn's NearestNeighbors: a tree or brute force)."""
    from sklearn.neighbors import NearestNeighbors
    Xu = X if used is None else X[used]
    if k > Xu.shape[0]:
        raise param_error("n_neighbors", owner, f"at most the number of data points of positive weight "
                          f"({Xu.shape[0]})", k)
    nn = NearestNeighbors(n_neighbors=k).fit(np.asarray(Xu, dtype=np.float64))
    dist, _ = nn.kneighbors(np.asarray(Y, dtype=np.float64), n_neighbors=k)
    return dist[:, k - 1].astype(np.float64)
