r"""Approximate kernel density estimation with a per-query error bound (exact neighbours + random sample).

The estimate at a query y of the kernel density of n points (radial kernel k, bandwidth h),

.. math::

    f(y) = \frac{1}{n\,Z_h} \sum_{i=1}^{n} \kappa\big(\|y - x_i\|^2 / h^2\big), \qquad
    Z_h = h^d \int \kappa(\|z\|^2)\,dz ,

is split, as in DEANN (Karppa, Aumueller & Pagh, AISTATS 2022), into the exact sum over a candidate
neighbour set N(y) and an unbiased Monte Carlo estimate of the rest:

.. math::

    \hat S(y) = \sum_{i \in N(y)} \kappa_i + \frac{n}{s} \sum_{t=1}^{s} \kappa_{I_t}\,[I_t \notin N(y)],
    \qquad I_t \sim \mathrm{Uniform}\{1..n\}\ \text{i.i.d.},

with :math:`\hat f = \hat S / (n Z_h)`. The second term is n times the mean of i.i.d. variables whose
expectation is exactly the remainder :math:`\sum_{i \notin N} \kappa_i`; so for a fixed sample size s
the estimate is unbiased for *any* candidate set N(y), and the neighbour search may be approximate:
only the variance depends on it. (Drawing from all n points and zeroing the draws that fall in N is
the same as drawing a Binomial(s, 1 - |N|/n) number of points uniformly from the complement and
scaling by (n - |N|) / that number; it keeps the draws i.i.d. and the count fixed.)

The candidate set comes from an inverted-file index built once at ``fit``: Lloyd's k-means on a
subsample of 30 C points (10 iterations, 300 C^2 d multiply-adds) puts C centroids, each point goes
to its nearest centroid (n C d multiply-adds, GEMM), and each cell records its radius (the
largest distance of a member to the centroid). A query probes its ``n_probe`` nearest cells and
N(y) is the exact ``n_neighbors`` nearest points among the probed points, found by the engine's
:func:`kernelkit.kernel_topk` one cell at a time (all the queries that probe a cell in one call).

The draws of one round are shared by all the queries of a block (8,192 queries), so that the sample
part is two engine calls (:func:`kernelkit.kernel_logsumexp` of kappa and of kappa^2 over the drawn
points, for every query at once); the drawn points that lie in a query's N(y) are then taken out with
their exact terms (a query where they make more than half of either sum is recomputed directly, to
avoid cancellation). Each query's estimate and bound are exactly those of an i.i.d. sample of its
own; only the errors of different queries are correlated. Kernels without kappa^2 in their family
(all but Gaussian, Laplace, tophat) use the direct path (gathered points, NumPy) for the same draws.

Costs: fit O(n C d) (the assignment; C = sqrt(n) by default); per query O(C d) (centroid distances)
+ O(n_probe (n / C) d) (candidates) + O(s d) (s draws). The exact sum is O(n d) per query.

Everything is in the log domain relative to the largest exact term
:math:`M(y) = \max_{i \in N} \log \kappa_i` (the running maximum when a sampled term is larger), so
nothing underflows at d = 32 or 64, where every kernel value is below the smallest float64.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np
from sklearn.base import BaseEstimator, DensityMixin
from sklearn.utils.validation import validate_data

from .._options import get_options
from .._random import generator
from .._validation import Integral, OneOf, Real, check_params, check_points, param_error
from ..engine import kernel_topk
from ..exceptions import NotFittedError
from ..kernels import Gaussian, make_kernel
from ._kde import bandwidth_scott, bandwidth_silverman
from ._tree import auto_leaf_size, estimate_tree, fit_tree_index, tree_available

__all__ = ["ApproximateKDE", "ApproximateDensity"]

#: radial kernels whose profile decreases with the distance (the cell bound needs it), by name
APPROX_KERNELS = ("gaussian", "laplace", "epanechnikov", "biweight", "triweight", "tophat", "triangular",
                  "cosine")

_CONSTRAINTS = {
    "kernel": OneOf(*APPROX_KERNELS),
    "bandwidth": Real(low=0, low_open=True) | OneOf("scott", "silverman"),
    "rtol": Real(low=0, high=1, low_open=True, high_open=True),
    "delta": Real(low=0, high=1, low_open=True, high_open=True),
    "bound": OneOf("bernstein", "clt") | None,
    "method": OneOf("sample", "tree"),
    "leaf_size": Integral(low=1) | OneOf("auto"),
    "exact_above": Real(low=0, finite=False),
    "n_neighbors": Integral(low=1),
    "n_cells": Integral(low=1) | OneOf("auto"),
    "n_probe": Integral(low=1),
    "batch_size": Integral(low=2),
    "max_samples": Integral(low=2),
}


@dataclass(frozen=True)
class ApproximateDensity:
    """What :meth:`ApproximateKDE.estimate` returns, one entry per query.

    Attributes
    ----------
    log_density : array of shape (m,)
        log of the estimate :math:`\\hat f(y)` (log of 1/data-units^d).
    rel_error : array of shape (m,)
        The bound r(y) on :math:`|\\hat f - f| / \\hat f` (unitless; 0 where the sum was exact, inf where
        no bound could be formed). See :class:`ApproximateKDE` for what it guarantees.
    n_samples : int array of shape (m,)
        Random draws used for the remainder (0 where the candidates were all n points; method="tree":
        the draws evaluated, two per leaf).
    n_exact : int array of shape (m,)
        Size of the candidate set N(y) summed exactly (method="tree": points of the opened leaves).
    converged : bool array of shape (m,)
        True where rel_error <= rtol; False where ``max_samples`` was reached first.
    draw_n_eff : float array of shape (m,) or None
        method="tree": the draws' effective number :math:`(\\sum_j u_j)^2 / \\sum_j u_j^2` over the
        weighted draw terms u_j (unitless, 1 to 2L); below 10, a few draws make the estimate and the
        normal approximation behind ``rel_error`` is unreliable. None with method="sample".
    """

    log_density: np.ndarray
    rel_error: np.ndarray
    n_samples: np.ndarray
    n_exact: np.ndarray
    converged: np.ndarray
    draw_n_eff: np.ndarray | None = None


#: parameters used by fit (the others are read at each estimate)
_FIT_PARAMS = ("kernel", "bandwidth", "n_cells", "random_state", "method", "leaf_size")

#: method="tree": warn when more than _FEW_SHARE of the queries not summed exactly have a draw effective
#: number below _FEW_DRAWS (measured at rtol 0.1-0.25, 2,000 queries: on shuttle at DEANN's bandwidth the
#: error was within its bound on 0.49 of those queries, 0.85 of the others; on N(0, I_d), d = 2-5, at
#: Scott's bandwidth 0.45-0.57 against 0.84-0.93; on shuttle at Scott's 0.3% of the queries are below 10)
_FEW_DRAWS = 10
_FEW_SHARE = 0.05

#: queries per block (each block: one (block, C) array of centroid distances, shared draws per round)
_QUERY_BLOCK = 8192

#: kappa^2 as a kernel of the same family (unit bandwidth), where the engine can sum it
_SQUARED = {"gaussian": ("gaussian", 1.0 / math.sqrt(2.0)), "laplace": ("laplace", 0.5), "tophat": ("tophat", 1.0)}


def _assign(X, centers, budget):
    """Index of the nearest centre of every row of X (squared distances by GEMM, in row blocks)."""
    out = np.empty(X.shape[0], dtype=np.int64)
    cn = np.einsum("ij,ij->i", centers, centers)
    step = int(max(1, min(X.shape[0], budget // max(1, 16 * centers.shape[0]))))
    for a in range(0, X.shape[0], step):
        B = X[a:a + step].astype(np.float64, copy=False)
        out[a:a + step] = np.argmin(cn[None, :] - 2.0 * (B @ centers.T), axis=1)
    return out


def _lloyd(X, C, rng, budget, iters=10, per_cell=30):
    """C k-means centres (float64): Lloyd's iterations on a uniform subsample of ``per_cell * C`` rows,
    started from C distinct rows of it; an emptied centre restarts at a random subsample row.
    Cost: ``iters * per_cell * C^2 * d`` multiply-adds (the index build, beside the assignment of all
    n points, ``n C d``)."""
    n = X.shape[0]
    sub = X[np.sort(rng.choice(n, min(n, per_cell * C), replace=False))].astype(np.float64)
    centers = sub[rng.choice(sub.shape[0], C, replace=False)].copy()
    for _ in range(iters):
        lab = _assign(sub, centers, budget)
        cnt = np.bincount(lab, minlength=C)
        sums = np.zeros_like(centers)
        np.add.at(sums, lab, sub)
        empty = cnt == 0
        centers[~empty] = sums[~empty] / cnt[~empty, None]
        if empty.any():
            centers[empty] = sub[rng.choice(sub.shape[0], int(empty.sum()), replace=False)]
    return centers


def _ndtri(p):
    from scipy.special import ndtri
    return float(ndtri(p))


def _sq_dist(A, B):
    """Squared distances of rows of A to rows of B, shape (a, b), float64, clipped at 0 (GEMM form)."""
    A = A.astype(np.float64, copy=False)
    B = B.astype(np.float64, copy=False)
    D = np.einsum("ij,ij->i", A, A)[:, None] - 2.0 * (A @ B.T) + np.einsum("ij,ij->i", B, B)[None, :]
    return np.maximum(D, 0.0)


class ApproximateKDE(DensityMixin, BaseEstimator):
    r"""Kernel density estimate with a relative error target: exact near part + random sample of the rest.

    See the module docstring for the estimator (DEANN's: exact sum over candidate neighbours plus an
    unbiased uniform sample of the remainder) and the index. For each query the sample grows in
    rounds (``batch_size`` draws, then doubling the total: s = b, 2b, 4b, ... up to ``max_samples``),
    vectorised over the queries still active, until the bound r(y) on the relative error is at most
    ``rtol`` or the cap is reached.

    **The bound.** Let :math:`Z_t = n\,\kappa_{I_t}[I_t \notin N]` (i.i.d., mean = the remainder),
    :math:`V_s` their unbiased sample variance after s draws, :math:`R` the number of checks
    (rounds) the cap allows and :math:`\delta' = \delta / R` (a union bound over the checks, so that
    stopping at the first check that passes is covered). The deviation bound D of the sample mean is
    (per query; D, V_s and B in units of kappa)

    * ``bound="bernstein"`` (default; Maurer & Pontil 2009, Thm 4, two-sided): with :math:`Z_t \in [0, B]`,
      :math:`D = \sqrt{2 V_s \ln(4/\delta') / s} + 7 B \ln(4/\delta') / (3 (s - 1))`, where
      :math:`B = n\,b(y)` and b(y) bounds every kernel value outside N(y): the larger of the smallest
      exact term (N is the exact top-k among the probed points) and, over the cells not probed,
      :math:`\kappa((\|y - c\| - r_c)_+^2)` (triangle inequality with the cell radius r_c);
    * ``bound="clt"``: :math:`D = z_{1 - \delta'/2} \sqrt{V_s / s}` (normal approximation).

    and :math:`r(y) = D / \hat S(y)`; a query is converged when :math:`r(y) \le` ``rtol``.

    **What is guaranteed.** With ``bound="bernstein"``: for each query, with probability at least
    :math:`1 - \delta` over the random draws (the index is fixed), :math:`|\hat f(y) - f(y)| \le r(y)\,\hat f(y)`,
    for whatever r(y) is returned (converged or not), in exact arithmetic; the only assumptions are
    that the draws are independent of each other (they are: numpy's generator) and that b(y) is a
    valid bound, which holds up to floating-point rounding of the distances (the top-k ordering and
    the cell radii are computed in the data's dtype). So on many queries the promised error holds on
    at least a fraction :math:`1 - \delta` in expectation. With ``bound="clt"``: the same statement
    only asymptotically in s (the normal approximation); in d = 32 the terms are heavy-tailed and the
    CLT bound can be optimistic at small s.

    **What is not.** No error bound across queries jointly (failure events are per query); the index
    is not random in the guarantee; queries that hit ``max_samples`` (``converged`` False) keep their
    (larger) bound but not the target; the Bernstein range B can be so loose in high dimension (cells
    whose radius exceeds their distance to the query give b = 1, the kernel's maximum) that it never
    certifies ``rtol`` before the cap, in which case every query reports converged False and the
    CLT bound is the practical one. With adaptive stopping the estimate is no longer exactly unbiased
    (only a fixed sample size, ``batch_size == max_samples``, is), although the bound still holds.
    Measured (benchmarks/bench_density_approx.py, fixed seeds): on N(0, I_32), n = 1e6, at DEANN's
    bandwidth (mean kernel value 1e-3) the CLT bound held on 0.948-0.994 of 4,096 queries; on shuttle
    at the same rule only on 0.59-0.89 (a few near points the index misses, which the sample rarely
    sees, make the remainder heavy-tailed; a larger ``batch_size`` helps), and with Scott's bandwidth
    at d = 32 on 0.03 (the density is made by a handful of points a 4-cell probe misses). The
    Bernstein bound held on every query in those runs but reached rtol = 0.25 only on shuttle with
    Scott's bandwidth (0.67 of the queries).

    **method="tree"** (Gaussian kernel; low and moderate dimension): stratified sampling on a binary
    tree of the points instead of the neighbours + uniform sample above (the module
    ``kernelkit.density._tree`` writes the estimator out). In short: two points drawn from every leaf at
    fit (shared by all queries) give an unbiased stratified estimate and, from the pair differences,
    an unbiased estimate V of its variance; then nodes are opened best first by the upper bound
    :math:`c\,\kappa(t_-)` of their sum (c points, :math:`t_-` the smallest squared distance from y
    to the node's box or ball), a leaf's sampled part being replaced by its exact sum, while
    :math:`z_{1-\delta/2}\sqrt{V} > \epsilon\,\hat S` or some node not opened could hold more than
    ``exact_above`` times :math:`\hat S`. The error estimate is the normal approximation
    (``bound="clt"``; "bernstein" is refused): r(y) = z sqrt(V) / S_hat, 0 where every leaf was
    summed. Every query ends converged (at worst with all leaves exact). The pair variance estimate
    is unbiased but skewed: a leaf whose two draws both miss its few near points reports a small
    variance, so the error estimate is optimistic where a few points make the density. Measured at
    Scott's bandwidth, rtol 0.1-0.25: the error was within its bound on 0.95 of shuttle queries but
    on 0.72-0.93 on N(0, I_d) with d = 2-5 (mean errors 0.02-0.06); the queries with a draw effective
    number below 10 (``ApproximateDensity.draw_n_eff``) fared worst (0.45-0.57), and estimate warns
    when they are more than 5% of those not summed exactly. The draws are evaluated in
    float32 (the tests hold the draw pass to 2e-5 of a float64 reference in the log; values below
    e^-80 of the largest draw are dropped), exact leaves in float64. Measured
    (benchmarks/bench_density_approx.py, shuttle, 9-d, 2,000 queries, 2 threads, AVX-512 Xeon): see
    the README table; at Scott's bandwidth about 10x the exact engine's speed at mean relative error
    0.03, while at DEANN's smaller bandwidth (mean kernel value 1e-3) it is no faster than exact.

    Repeated calls of :meth:`estimate` on the same number of queries reuse the same draws (the
    sampling stream is seeded at fit). ``rtol``, ``delta``, ``bound``, ``n_neighbors``, ``n_probe``,
    ``batch_size``, ``max_samples``, ``exact_above`` are read at each call (``set_params`` without
    refitting); the others need ``fit``.

    Parameters
    ----------
    kernel : {"gaussian", "laplace", "epanechnikov", "biweight", "triweight", "tophat", "triangular", "cosine"}
        A radial kernel whose profile decreases with the distance (the kernelkit definitions, bandwidth
        convention as in :func:`kernelkit.make_kernel`).
    bandwidth : float > 0 or {"scott", "silverman"}
        h, in data units, or the rule (:func:`bandwidth_scott`, :func:`bandwidth_silverman`).
    rtol : float in (0, 1)
        Target relative error eps (unitless): stop a query when r(y) <= rtol.
    delta : float in (0, 1)
        Failure probability per query (unitless).
    bound : {"bernstein", "clt"} or None
        Which deviation bound (see above); None: "bernstein" with method="sample", "clt" with "tree".
    method : {"sample", "tree"}
        "sample": exact candidate neighbours + uniform sample (any radial kernel above, any
        dimension); "tree": stratified tree sampling (Gaussian kernel; pays off in low and moderate
        dimension, d up to about 10-16, where the tree's nodes are tight).
    n_neighbors : int >= 1
        k, the size of the exact candidate set N(y) (at most the number of probed points).
    n_cells : int >= 1 or "auto"
        C, the number of index cells; "auto" is round(sqrt(n)) (at most n). 1 disables the index
        (N(y) is then the exact k nearest points of all n).
    n_probe : int >= 1
        Cells probed per query (at most C).
    batch_size : int >= 2
        Draws in the first round of sampling (per query); the first check of the bound is at this s,
        so a larger value makes the CLT bound less optimistic.
    max_samples : int >= 2
        Cap on the draws per query (rounded up to batch_size * 2^j).
    leaf_size : int >= 1 or "auto"
        method="tree": largest number of points in a leaf (the draws per query are twice the number
        of leaves); "auto" is max(8, ceil(n / 2048)), about 2,048 leaves.
    exact_above : float >= 0 (may be inf)
        method="tree": open every node whose upper bound exceeds this multiple of the current
        estimate (unitless): a guard against a node the draws missed holding much more than the
        estimate, which the error estimate cannot see. inf turns the rule off (the error estimate
        alone decides), 0 sums everything exactly. Measured on shuttle at Scott's bandwidth
        (2,000 queries): 1 and 4 give the same errors (largest 0.33), 4 is 40% faster than 1;
        inf is 5% faster than 4 but lets one query's error reach 1.0.
    memory, threads, backend : optional
        Engine options (memory budget in bytes or "256MB"; it also bounds the blocks of gathered
        sample points of the direct path and of the point assignment at fit). The draws do not
        depend on it.
    random_state : None, int, SeedSequence or Generator
        Seeds the k-means of the index and the draws (independent streams).

    Attributes
    ----------
    bandwidth_ : float
        h in data units.
    n_cells_ : int
        Non-empty cells of the index (method="tree": leaves of the tree).
    fit_time_ : dict
        Seconds spent in k-means and in assigning the points (the index build cost; method="tree":
        building the tree and drawing).
    """

    def __init__(self, *, kernel="gaussian", bandwidth="scott", rtol=0.1, delta=0.05, bound=None,
                 method="sample", n_neighbors=32, n_cells="auto", n_probe=4, batch_size=256, max_samples=65536,
                 leaf_size="auto", exact_above=4.0, memory=None, threads=None, backend=None, random_state=None):
        self.method = method
        self.leaf_size = leaf_size
        self.exact_above = exact_above
        self.kernel = kernel
        self.bandwidth = bandwidth
        self.rtol = rtol
        self.delta = delta
        self.bound = bound
        self.n_neighbors = n_neighbors
        self.n_cells = n_cells
        self.n_probe = n_probe
        self.batch_size = batch_size
        self.max_samples = max_samples
        self.memory = memory
        self.threads = threads
        self.backend = backend
        self.random_state = random_state

    # ------------------------------------------------------------------ fit
    def _params(self):
        vals = {name: getattr(self, name) for name in (*_CONSTRAINTS, "random_state")}
        if isinstance(vals["kernel"], str):
            vals["kernel"] = vals["kernel"].lower()
        out = check_params(vals, _CONSTRAINTS, "ApproximateKDE")
        if out["method"] == "tree":
            if out["kernel"] != "gaussian":
                raise param_error("kernel", "ApproximateKDE", "'gaussian' with method='tree' (other kernels: "
                                  "method='sample')", out["kernel"])
            if out["bound"] == "bernstein":
                raise param_error("bound", "ApproximateKDE", "'clt' or None with method='tree' (its error "
                                  "estimate is the normal approximation)", out["bound"])
            out["bound"] = "clt"
        elif out["bound"] is None:
            out["bound"] = "bernstein"
        out["random_state"] = vals["random_state"] if isinstance(vals["random_state"], (int, type(None))) \
            else id(vals["random_state"])
        return out

    def fit(self, X, y=None):
        """Choose the bandwidth and build the index (k-means cells, or the tree) on the data X of shape (n, d)."""
        import time
        p = self._params()
        X = validate_data(self, X, dtype=[np.float64, np.float32], reset=True)
        X = check_points(X, "X", "ApproximateKDE.fit")
        n, d = X.shape
        bw = p["bandwidth"]
        if isinstance(bw, str):
            if n < 2:
                raise param_error("bandwidth", "ApproximateKDE", "a float when X has one row (the rules need "
                                  "two points or more)", bw)
            h = (bandwidth_scott if bw == "scott" else bandwidth_silverman)(X)
        else:
            h = float(bw)
        self.bandwidth_ = float(h)
        self.kernel_ = make_kernel(p["kernel"], bandwidth=1.0)  # evaluated on data / h
        self._sq_kernel = None  # kappa^2 for the engine path; checked against the profile, else the direct path
        if p["kernel"] in _SQUARED:
            fam, bw2 = _SQUARED[p["kernel"]]
            sq = make_kernel(fam, bandwidth=bw2)
            r2 = np.array([0.0, 0.01, 0.3, 0.99, 2.0, 7.0])
            with np.errstate(invalid="ignore"):
                a, b = 2 * self.kernel_.log_profile(r2), sq.log_profile(r2)
            if np.allclose(np.where(np.isfinite(a), a, -1e300), np.where(np.isfinite(b), b, -1e300), rtol=1e-12,
                           atol=1e-12):
                self._sq_kernel = sq
        self._log_norm = math.log(n) + float(self.kernel_.log_integral(d)) + d * math.log(h)
        rng = generator(self.random_state, "ApproximateKDE")
        seeds = rng.integers(0, 2 ** 63 - 1, size=2)
        self._sample_seed = int(seeds[1])
        self._mean = X.astype(np.float64).mean(axis=0)
        Xs = ((X - self._mean) / h).astype(X.dtype, copy=False)
        self._fit_params = {name: p[name] for name in _FIT_PARAMS}
        self._p = p
        self._dtype = X.dtype
        if p["method"] == "tree":
            if not tree_available():  # pragma: no cover - depends on the build
                raise RuntimeError("ApproximateKDE(method='tree') needs the compiled extension "
                                   "kernelkit.density._kdtree_ext, which was not built; use method='sample'")
            t0 = time.perf_counter()
            leaf = auto_leaf_size(n) if p["leaf_size"] == "auto" else p["leaf_size"]
            self._tree = fit_tree_index(Xs, leaf, np.random.default_rng(int(seeds[1])))
            self.n_cells_ = self._tree.n_leaves
            self.fit_time_ = {"tree_s": time.perf_counter() - t0}
            return self
        self._tree = None

        C = int(round(math.sqrt(n))) if p["n_cells"] == "auto" else min(p["n_cells"], n)
        C = max(1, min(C, n))
        t0 = time.perf_counter()
        if C > 1:
            centers = _lloyd(Xs, C, np.random.default_rng(int(seeds[0])), self._budget())
            t1 = time.perf_counter()
            labels = _assign(Xs, centers, self._budget())
        else:
            t1 = time.perf_counter()
            labels = np.zeros(n, dtype=np.int64)
            centers = Xs.astype(np.float64).mean(axis=0, keepdims=True)
        order = np.argsort(labels, kind="stable")
        counts = np.bincount(labels, minlength=C)
        keep = counts > 0
        self._X = np.ascontiguousarray(Xs[order])
        starts = np.concatenate([[0], np.cumsum(counts)])
        self._start = starts[:-1][keep]
        self._stop = starts[1:][keep]
        self._centers = centers[keep]
        radii = np.empty(len(self._start))
        for c, (a, b) in enumerate(zip(self._start, self._stop)):
            diff = self._X[a:b].astype(np.float64) - self._centers[c]
            radii[c] = math.sqrt(float(np.max(np.einsum("ij,ij->i", diff, diff))))
        self._radii = radii * (1 + 1e-6) + 1e-12  # the largest member distance, widened for rounding
        self.n_cells_ = int(keep.sum())
        self.fit_time_ = {"kmeans_s": t1 - t0, "assign_s": time.perf_counter() - t1}
        return self

    # ------------------------------------------------------------------ queries
    def _check_fitted(self, what):
        if not hasattr(self, "bandwidth_"):
            raise NotFittedError(f"This ApproximateKDE instance is not fitted yet. Call 'fit' before '{what}'.")

    def score_samples(self, X):
        """Approximate log density at each row of X (log of 1/data-units^d), shape (m,).

        Warns when some queries reached ``max_samples`` before their bound met ``rtol`` (see
        :meth:`estimate` for the bounds).
        """
        est = self.estimate(X)
        bad = int(np.sum(~est.converged))
        if bad:
            warnings.warn(f"ApproximateKDE: {bad} of {est.converged.size} queries reached max_samples="
                          f"{self._p['max_samples']} with a relative error bound above rtol={self._p['rtol']} "
                          "(see estimate(X).rel_error).", RuntimeWarning, stacklevel=2)
        return est.log_density

    def score(self, X, y=None):
        """Sum of the approximate log densities of the rows of X."""
        return float(np.sum(self.score_samples(X)))

    def _engine(self):
        return dict(memory=self.memory, threads=self.threads, backend=self.backend)

    def _budget(self):
        return get_options(memory=self.memory).memory

    def estimate(self, X):
        """Log densities and per-query error bounds at the rows of X: an :class:`ApproximateDensity`."""
        self._check_fitted("estimate")
        Y = validate_data(self, X, dtype=[np.float64, np.float32], reset=False)
        Y = check_points(Y, "X", "ApproximateKDE.estimate")
        out_dt = np.float32 if (Y.dtype == np.float32 and self._dtype == np.float32) else np.float64
        Ys = ((Y - self._mean) / self.bandwidth_).astype(self._dtype, copy=False)
        m = Ys.shape[0]
        p = self._params()  # the query-time parameters may be changed (set_params) without refitting
        changed = [name for name in _FIT_PARAMS if p[name] != self._fit_params[name]]
        if changed:
            raise param_error(changed[0], "ApproximateKDE", f"the value it was fitted with "
                              f"({self._fit_params[changed[0]]!r}); call fit again after changing it",
                              p[changed[0]])
        self._p = p
        if self._tree is not None:
            z = _ndtri(1.0 - p["delta"] / 2.0)
            threads = get_options(threads=self.threads).resolved_threads()
            logS, rel, ns, nex, conv, neff = estimate_tree(self._tree, Ys, p["rtol"], z, p["exact_above"], threads,
                                                           dict(memory=self.memory, backend=self.backend))
            few = int(np.sum((neff < _FEW_DRAWS) & (rel > 0)))
            if few > _FEW_SHARE * m:
                warnings.warn(f"ApproximateKDE(method='tree'): on {few} of {m} queries fewer than {_FEW_DRAWS} "
                              "draws make the estimate (estimate(X).draw_n_eff), where the normal approximation "
                              "behind rel_error is unreliable (measured on shuttle and on Gaussian data in 2-5 "
                              "dimensions: the error within its bound on 0.45-0.57 of such queries); a larger "
                              "bandwidth, exact_above=0 for exact sums, or method='sample' with bound='bernstein'. "
                              "KernelDensity.diagnose shows how many points make each density.",
                              RuntimeWarning, stacklevel=2)
            return ApproximateDensity((logS - self._log_norm).astype(out_dt), rel, ns, nex, conv, neff)
        rng = np.random.default_rng(np.random.SeedSequence([self._sample_seed, m]))
        logS = np.empty(m)
        rel = np.empty(m)
        ns = np.zeros(m, dtype=np.int64)
        nex = np.zeros(m, dtype=np.int64)
        conv = np.zeros(m, dtype=bool)
        qb = _QUERY_BLOCK  # fixed (not from the budget), so that the draws do not depend on the budget
        for a in range(0, m, qb):
            b = min(m, a + qb)
            logM, E, idx, logkN, logb = self._candidates(Ys[a:b])
            nex[a:b] = (idx >= 0).sum(axis=1)
            res = self._sample(Ys[a:b], logM, E, idx, logkN, logb, rng)
            logS[a:b], rel[a:b], ns[a:b], conv[a:b] = res
        log_density = logS - self._log_norm
        with np.errstate(over="ignore"):
            return ApproximateDensity(log_density.astype(out_dt), rel, ns, nex, conv)

    def _candidates(self, Q):
        """N(y) for the queries Q (scaled frame): (M, E, idx, log b).

        M: log of the largest exact term (0 where none is positive); E: sum of exp(log k - M) over N;
        idx: (q, k) rows of self._X in N (-1 padding); log b: log of the bound on any term outside N.
        """
        p = self._p
        q = Q.shape[0]
        C = len(self._centers)
        probe = min(p["n_probe"], C)
        D2 = _sq_dist(Q, self._centers)                                  # (q, C)
        P = np.argpartition(D2, probe - 1, axis=1)[:, :probe] if probe < C else np.tile(np.arange(C), (q, 1))
        # bound over the cells not probed: kappa((||y - c|| - r_c)_+^2)
        gap = np.maximum(np.sqrt(D2) - self._radii[None, :], 0.0)
        gap[np.arange(q)[:, None], P] = np.inf
        min_gap = gap.min(axis=1) if probe < C else np.full(q, np.inf)
        log_b_cells = np.where(np.isfinite(min_gap), self.kernel_.log_profile(np.where(
            np.isfinite(min_gap), min_gap, 0.0) ** 2), -np.inf)
        k = p["n_neighbors"]
        cand_r2 = np.full((q, probe, k), np.inf)
        cand_idx = np.full((q, probe, k), -1, dtype=np.int64)
        probed_total = np.zeros(q, dtype=np.int64)
        for c in np.unique(P):
            rows, slot = np.nonzero(P == c)
            a, b = int(self._start[c]), int(self._stop[c])
            probed_total[rows] += b - a
            kk = min(k, b - a)
            r2, ii = self._nearest(self._X[a:b], self._centers[c], self._radii[c], Q[rows], kk)
            cand_r2[rows, slot, :kk] = r2
            cand_idx[rows, slot, :kk] = ii + a
        cand_r2 = cand_r2.reshape(q, -1)
        cand_idx = cand_idx.reshape(q, -1)
        if cand_r2.shape[1] > k:
            sel = np.argpartition(cand_r2, k - 1, axis=1)[:, :k]
            cand_r2 = np.take_along_axis(cand_r2, sel, axis=1)
            cand_idx = np.take_along_axis(cand_idx, sel, axis=1)
        valid = cand_idx >= 0
        with np.errstate(invalid="ignore"):
            logk = np.where(valid, self.kernel_.log_profile(np.where(valid, cand_r2, 0.0)), -np.inf)
        M = logk.max(axis=1)
        M = np.where(np.isfinite(M), M, 0.0)
        E = np.exp(logk - M[:, None]).sum(axis=1)
        # probed points outside N are at most the smallest exact term (N: exact top-k of the probed)
        outside = probed_total > valid.sum(axis=1)
        kth = np.where(valid, logk, np.inf).min(axis=1)
        log_b = np.maximum(np.where(outside, kth, -np.inf), log_b_cells)
        order = np.argsort(cand_idx, axis=1)
        return M, E, np.take_along_axis(cand_idx, order, axis=1), np.take_along_axis(logk, order, axis=1), log_b

    def _nearest(self, Xc, center, radius, Q, k):
        """Exact k nearest rows of Xc for each row of Q: (squared distances float64 (q, k), indices).

        The engine's kernel_topk with a Gaussian whose bandwidth makes every value at least e^-60
        (from the cell's radius and the queries' distances to its centre), so nothing ties at 0; the
        distances of the selected points are then recomputed exactly.
        """
        dq = np.sqrt(np.maximum(_sq_dist(Q, center[None, :])[:, 0], 0.0)).max()
        r2max = max((dq + radius) ** 2, 1e-200)
        rank = Gaussian(bandwidth=math.sqrt(r2max / 120.0))
        _, ii = kernel_topk(rank, Xc, Q, k, **self._engine())
        diff = Xc[ii].astype(np.float64) - Q[:, None, :].astype(np.float64)
        return np.einsum("qkd,qkd->qk", diff, diff), ii

    def _direct_sums(self, Q, I, idx):
        """Reference sums of the sample terms, one query at a time (no engine): (top, t1, t2) per row.

        top = max over the draws I (shared by the rows) outside the row's N of log kappa, t1 / t2 the sums of
        exp(log kappa - top) and of its square over those draws (0 and -inf top when every draw is in N).
        The fast path (:meth:`_engine_sums`) must agree with it; it is also its fallback.
        """
        n = self._X.shape[0]
        q, d = Q.shape
        top, t1, t2 = np.full(q, -np.inf), np.zeros(q), np.zeros(q)
        XI = self._X[I]
        chunk = int(max(1, self._budget() // max(1, 4 * I.size * d * self._X.dtype.itemsize + 64 * I.size)))
        for a in range(0, q, chunk):
            rows = slice(a, min(q, a + chunk))
            N = idx[rows]
            flat = np.sort((N + n * np.arange(N.shape[0])[:, None])[N >= 0])
            key = I[None, :] + n * np.arange(N.shape[0])[:, None]
            pos = np.minimum(np.searchsorted(flat, key), max(flat.size - 1, 0))
            inN = flat[pos] == key if flat.size else np.zeros(key.shape, bool)
            diff = XI[None, :, :] - Q[rows][:, None, :]
            r2 = np.einsum("qtd,qtd->qt", diff, diff).astype(np.float64)
            lk = np.where(inN, -np.inf, self.kernel_.log_profile(r2))
            tp = lk.max(axis=1)
            ok = np.isfinite(tp)
            e = np.exp(lk - np.where(ok, tp, 0.0)[:, None])
            top[rows], t1[rows], t2[rows] = tp, e.sum(axis=1), (e * e).sum(axis=1)
        return top, t1, t2

    def _engine_sums(self, Q, I, idx, logkN):
        """The same sums as :meth:`_direct_sums` through the engine: log-sum-exp of kappa and of kappa^2
        over the shared draws for all rows at once, minus the draws that fall in N (their terms are known
        exactly). Rows where those make more than half of either sum (cancellation) are recomputed by
        :meth:`_direct_sums`."""
        from ..engine import kernel_logsumexp
        XI = self._X[I]
        lse1 = np.asarray(kernel_logsumexp(self.kernel_, XI, Q, **self._engine()), np.float64)
        lse2 = np.asarray(kernel_logsumexp(self._sq_kernel, XI, Q, **self._engine()), np.float64)
        Is = np.sort(I)
        valid = idx >= 0
        cnt = (np.searchsorted(Is, idx, "right") - np.searchsorted(Is, idx, "left")) * valid
        ok = np.isfinite(lse1)
        top = np.where(ok, lse1, 0.0)
        with np.errstate(invalid="ignore", over="ignore"):
            rel = np.where(cnt > 0, logkN - top[:, None], -np.inf)  # (drawn members only: others may overflow)
            B1 = (cnt * np.exp(rel)).sum(axis=1)
            B2 = (cnt * np.exp(2 * rel)).sum(axis=1)
            A2 = np.exp(lse2 - 2 * top)
        t1 = np.maximum(1.0 - B1, 0.0)
        t2 = np.maximum(A2 - B2, 0.0)
        top = np.where(ok, lse1, -np.inf)
        bad = ok & ((B1 > 0.5) | (B2 > 0.5 * A2))
        if np.any(bad):
            top[bad], t1[bad], t2[bad] = self._direct_sums(Q[bad], I, idx[bad])
        return top, t1, t2

    def _sample(self, Q, logM, E, idx, logkN, logb, rng):
        """The sampling rounds for one block of queries: (log S_hat, rel bound, draws, converged).

        Every round draws one i.i.d. uniform sample of row indices shared by the block's active queries
        (each query's estimate stays unbiased and its bound per query holds; the errors of different
        queries are correlated).
        """
        p = self._p
        n = self._X.shape[0]
        q = Q.shape[0]
        b0, cap = p["batch_size"], p["max_samples"]
        totals = [b0]
        while totals[-1] < cap:
            totals.append(2 * totals[-1])
        dlt = p["delta"] / len(totals)
        log_term = math.log(4.0 / dlt)
        z = _ndtri(1.0 - dlt / 2.0)
        exact = (idx >= 0).sum(axis=1) >= n              # N is everything: no remainder
        shift = logM.copy()
        s1, s2 = np.zeros(q), np.zeros(q)
        s = np.zeros(q, dtype=np.int64)
        rel = np.where(exact, 0.0, np.inf)
        done = exact.copy()
        for r, total in enumerate(totals):
            act = np.nonzero(~done)[0]
            if act.size == 0:
                break
            I = rng.integers(0, n, size=total - (totals[r - 1] if r else 0), dtype=np.int64)
            if self._sq_kernel is None or getattr(self, "_force_direct", False):
                top, t1, t2 = self._direct_sums(Q[act], I, idx[act])
            else:
                top, t1, t2 = self._engine_sums(Q[act], I, idx[act], logkN[act])
            new = np.maximum(shift[act], top)             # rescale the running sums to the new shift
            with np.errstate(invalid="ignore"):
                g = np.where(np.isfinite(top), np.exp(top - new), 0.0)
            d_old = np.exp(shift[act] - new)
            s1[act] = s1[act] * d_old + t1 * g
            s2[act] = s2[act] * d_old ** 2 + t2 * g ** 2
            shift[act] = new
            s[act] = total
            sa = s[act].astype(np.float64)
            mean = s1[act] / sa
            var = np.maximum(s2[act] - sa * mean ** 2, 0.0) / (sa - 1.0)
            Shat = E[act] * np.exp(logM[act] - shift[act]) + n * mean
            if p["bound"] == "clt":
                dev = z * np.sqrt(var / sa)
            else:
                B = np.exp(np.minimum(logb[act] - shift[act], 700.0))
                dev = np.sqrt(2.0 * var * log_term / sa) + 7.0 * B * log_term / (3.0 * (sa - 1.0))
            with np.errstate(divide="ignore", invalid="ignore"):
                rr = np.where(Shat > 0, n * dev / Shat, np.where(dev > 0, np.inf, 0.0))
            rel[act] = rr
            done[act] = rr <= p["rtol"]
        Eall = E * np.exp(logM - shift)
        with np.errstate(divide="ignore"):
            logS = shift + np.log(Eall + n * s1 / np.maximum(s, 1))
        return logS, rel, s, rel <= p["rtol"]
