r"""PrivateDistanceSum: private l1 / l2 distance sums through one-dimensional trees.

The one-dimensional decomposition (Backurs et al. 2024, Section 4)
--------------------------------------------------------------------
For reals x_i and a query y, with P(y) = #{x_i < y} and S_P(y) = sum of the
x_i < y, N = n and S = sum_i x_i,

.. math:: \sum_i |x_i - y| = y (2 P(y) - N) + S - 2 S_P(y).

So a 1-D distance sum needs only prefix counts and prefix sums, which a
binary tree over a grid of the domain answers with at most L + 1 nodes
(dyadic decomposition of the prefix). ``l1``: ``||x - y||_1`` is the sum of
the d coordinate problems. ``l2``: for u uniform on the unit sphere,
``E|u . v| = kappa_d ||v||_2`` with ``kappa_d = Gamma(d/2) / (sqrt(pi) Gamma((d+1)/2))``,
so ``||x - y||_2`` is estimated by ``mean_k |u_k . (x - y)| / kappa_d`` over m
public directions (orthonormal blocks): m one-dimensional problems.

Tree and sensitivity
--------------------
Each of the m one-dimensional problems (m = d for l1, m = n_projections for
l2) has coordinates in [-R, R] (l1: the box of half-width R around the
centre; l2: projections of the ball of radius R). The interval is cut into
2^L cells of width h = 2R / 2^L and every record is snapped to its cell
centre, stored as the odd integer v = 2 i - (2^L - 1) (real value v h / 2,
|v| <= 2^L - 1). Every node of the tree (levels 0..L, 2^(L+1) - 1 nodes)
holds the count and the sum of v of the records below it: integers, so
no grid snapping is needed.

Adding or removing one record changes, in each of the m trees, one node per
level (L + 1 nodes) by 1 in count and by v in sum. Hence

* counts: ``Delta_1 = m (L + 1)``, ``Delta_2 = sqrt(m (L + 1))``;
* sums (units h / 2): ``Delta_1 = m (L + 1) (2^L - 1)``, ``Delta_2 = sqrt(m (L + 1)) (2^L - 1)``;

doubled under replace-one. The budget is split: ``count_fraction`` of
epsilon (and of delta) for the counts, the rest for the sums (basic
composition). Noise: discrete Laplace (pure DP) or rounded Gaussian
((epsilon, delta)-DP) on every node, see :mod:`kernelkit.privacy._noise`.

Error of an answer: the noise (standard deviation returned by
``query(Y, return_std=True)``: a prefix uses popcount(c) nodes), plus the
snapping (at most h / 2 per record and coordinate, and up to h for records
in the query's cell), plus for l2 the projection error of order
``1 / sqrt(m)`` relative (public randomness).
"""

from __future__ import annotations

import math

import numpy as np

from .._xp import any_dask
from .._validation import Integral, OneOf, Real, check_param, check_params, check_points, param_error
from ._common import (NotFittedError, check_domain, check_noise_scale, check_privacy_params, clip_to_ball,
                      clip_to_box, load_state, map_row_blocks, public_generator, release_integer_sums, save_state,
                      smallest_epsilon)
from ._features import _orthonormal_rows
from ..exceptions import InvalidValueError

__all__ = ["PrivateDistanceSum"]

METRICS = ("l1", "l2")
#: largest domain radius (data units): distance sums, their noise and variances stay finite float64
MAX_RADIUS = 1e150

#: the scalar parameters of PrivateDistanceSum with a declared constraint (radius: see check_domain)
_CONSTRAINTS = {
    "metric": OneOf(*METRICS),
    "levels": Integral(low=1, high=24),
    "n_projections": Integral(low=1) | None,
    "count_fraction": Real(low=0, high=1, low_open=True, high_open=True),
}


def _kappa(d):
    """E|u_1| for u uniform on the unit sphere of R^d."""
    return math.exp(math.lgamma(d / 2) - math.lgamma((d + 1) / 2)) / math.sqrt(math.pi)


def _level_offsets(levels):
    """Offset of each level's nodes in the flat heap (level 0 = leaves)."""
    sizes = [2 ** (levels - j) for j in range(levels + 1)]
    return np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64), sizes


class PrivateDistanceSum:
    r"""Differentially private distance sums :math:`F(y) = \sum_{x \in X} \|x - y\|_p`, p in {1, 2}.

    See the module :mod:`kernelkit.privacy._distance` for the construction,
    the sensitivity and the error terms.

    Parameters
    ----------
    metric : {'l1', 'l2'}, default 'l1'
    epsilon : float > 0
        Tiny values are refused (fit raises ValueError naming the smallest
        usable epsilon) when the noise scale would exceed 2^56 grid units,
        beyond which integer noise and sums overflow int64.
    delta : float in [0, 1), default 0
        0: pure epsilon-DP (discrete Laplace); > 0: rounded Gaussian.
    radius : float in (0, 1e150]
        Required, units of the data. Domain: for l1 the box
        ``[center - radius, center + radius]^d``; for l2 the ball of radius
        ``radius`` around ``center``. Records are clipped onto it.
    center : array of shape (d,), optional
        Centre of the domain (default the origin).
    levels : int in [1, 24], default 10
        L: the grid has 2^L cells per one-dimensional problem (cell width
        2 radius / 2^L). More levels: less snapping error, more noise.
    n_projections : int, optional
        m for l2. Default: min(d, 16) for pure DP (its noise grows like m)
        and d * ceil(64 / d) for (epsilon, delta)-DP (whole orthonormal
        blocks; noise grows like sqrt(m) only). Measured at n = 100,000,
        epsilon = 1: these were the best or near-best of m in {8, ..., 128}.
    count_fraction : float in (0, 1), default 0.5
        Share of the budget spent on the counts (the rest on the sums).
    neighbouring : {'add-remove', 'replace-one'}, default 'add-remove'
    accountant : PrivacyAccountant, optional
    random_state : None, int >= 0, SeedSequence or Generator
        Seeds the public projection directions (l2) only.

    Attributes
    ----------
    counts_, sums_ : arrays of shape (m, 2^(L+1) - 1)
        Noisy node counts and noisy node sums (units of the data), heap
        layout by level (leaves first).
    privacy_ : dict
        Semantics and numbers used.
    """

    _noise_factor = 1.0

    def __init__(self, metric="l1", *, epsilon, delta=0.0, radius=None, center=None, levels=10,
                 n_projections=None, count_fraction=0.5, neighbouring="add-remove", accountant=None,
                 random_state=None):
        self.metric = metric
        self.epsilon = epsilon
        self.delta = delta
        self.radius = radius
        self.center = center
        self.levels = levels
        self.n_projections = n_projections
        self.count_fraction = count_fraction
        self.neighbouring = neighbouring
        self.accountant = accountant
        self.random_state = random_state

    def fit(self, X, y=None):
        """Release the private trees for the rows of X (the private data)."""
        owner = type(self).__name__
        epsilon, delta, neighbouring = check_privacy_params(self, owner)
        params = check_params(vars(self), _CONSTRAINTS, owner)
        L, frac = params["levels"], params["count_fraction"]
        dask_rows = any_dask(X)  # exact sums by tasks, noise here
        if dask_rows:
            from ..dask._methods import private_rows, sum_row_blocks
        X = private_rows(X, owner) if dask_rows else check_points(X, "X", owner)
        d = X.shape[1]
        radius, center = check_domain(self.radius, self.center, d, owner)
        if radius > MAX_RADIUS:
            raise param_error("radius", owner, f"in (0, {MAX_RADIUS:g}] (the distance sums, their noise and its "
                              "variance must stay finite float64)", self.radius, hint="Rescale the data instead.")
        directions = None
        if self.metric == "l2":
            if params["n_projections"] is None:
                m = min(d, 16) if delta == 0 else d * math.ceil(64 / d)
            else:
                m = params["n_projections"]
            directions = _orthonormal_rows(m, d, public_generator(self.random_state, owner))
        else:
            m = d
        n_leaves = 2 ** L
        h = 2 * radius / n_leaves

        factor = 2.0 if neighbouring == "replace-one" else 1.0
        nodes_touched = m * (L + 1)
        vmax = n_leaves - 1
        eps_c, eps_s = epsilon * frac, epsilon * (1 - frac)
        del_c, del_s = delta * frac, delta * (1 - frac)

        def fits(e):  # the noise of counts and sums must fit int64 (see check_noise_scale)
            try:
                check_noise_scale(factor * nodes_touched, factor * math.sqrt(nodes_touched), e * frac, del_c, "", "")
                check_noise_scale(factor * nodes_touched * vmax, factor * math.sqrt(nodes_touched) * vmax,
                                  e * (1 - frac), del_s, "", "")
            except InvalidValueError:
                return False
            return True

        if not fits(epsilon):
            raise param_error(
                "epsilon", owner, f"at least {smallest_epsilon(fits, epsilon):.3g} with levels={L}, {m} "
                f"one-dimensional problems, delta={delta!r} and count_fraction={frac!r}", epsilon,
                hint="Below, the noise of the tree sums exceeds 2^56 grid units, beyond which integer noise and sums "
                     "overflow int64 (fewer levels lower it).")
        if self.accountant is not None:
            self.accountant.spend(epsilon, delta, label=f"{owner} tree counts and sums")

        def leaves(rows):
            Z = self._project(rows, center, radius, directions)
            idx = np.clip(np.floor((Z + radius) / h), 0, n_leaves - 1).astype(np.int64)
            flat = idx + (np.arange(m, dtype=np.int64) * n_leaves)[None, :]
            return np.bincount(flat.ravel(), minlength=m * n_leaves)

        parts = (sum_row_blocks(leaves, X, m * 40, owner) if dask_rows
                 else map_row_blocks(lambda a, b: leaves(X[a:b]), X.shape[0], m * 40))
        leaf_counts = (np.sum(parts, axis=0) if parts else np.zeros(m * n_leaves)).astype(np.int64)
        leaf_counts = leaf_counts.reshape(m, n_leaves)
        # every record of a leaf has the leaf's value v: the sums are exact integer products
        leaf_vsums = leaf_counts * (2 * np.arange(n_leaves, dtype=np.int64) - vmax)[None, :]
        del parts
        counts, vsums = [leaf_counts], [leaf_vsums]
        for _ in range(L):
            counts.append(counts[-1].reshape(m, -1, 2).sum(axis=2))
            vsums.append(vsums[-1].reshape(m, -1, 2).sum(axis=2))
        counts = np.concatenate(counts, axis=1)
        vsums = np.concatenate(vsums, axis=1)
        noisy_c, std_c, mech = release_integer_sums(counts, factor * nodes_touched,
                                                    factor * math.sqrt(nodes_touched), eps_c, del_c,
                                                    self._noise_factor)
        noisy_s, std_s, _ = release_integer_sums(vsums, factor * nodes_touched * vmax,
                                                 factor * math.sqrt(nodes_touched) * vmax, eps_s, del_s,
                                                 self._noise_factor)
        del counts, vsums, leaf_counts, leaf_vsums
        self.counts_ = noisy_c.astype(np.float64)
        self.sums_ = noisy_s.astype(np.float64) * (h / 2)
        self.count_std_ = float(std_c)
        self.sum_std_ = float(std_s * h / 2)
        self.directions_ = directions
        self.levels_ = L
        self.cell_width_ = h
        self.n_features_in_ = d
        self.radius_ = radius
        self.center_ = center
        domain = (f"box [center_ - {radius:g}, center_ + {radius:g}]^d" if self.metric == "l1"
                  else f"l2 ball of radius {radius:g} around center_")
        self.privacy_ = {
            "epsilon": epsilon, "delta": delta, "neighbouring": neighbouring,
            "n_public": neighbouring == "replace-one", "domain": domain + " (records clipped onto it)",
            "mechanism": mech, "metric": self.metric, "levels": L, "n_problems": m,
            "sensitivity_counts_l1": factor * nodes_touched,
            "sensitivity_sums_l1_half_cells": factor * nodes_touched * vmax,
            "budget_split": {"counts": [eps_c, del_c], "sums": [eps_s, del_s]},
        }
        return self

    def _project(self, X, center, radius, directions):
        if directions is None:
            return clip_to_box(X, center, radius) - center
        Z = (clip_to_ball(X, center, radius) - center) @ directions.T
        return np.clip(Z, -radius, radius)

    def _check_fitted(self):
        if not hasattr(self, "counts_"):
            raise NotFittedError(f"This {type(self).__name__} is not fitted yet; call fit(X) first.")

    def query(self, Y, return_std=False):
        """Private distance sums at the rows of Y (public queries, any point of R^d).

        Returns
        -------
        values : array of shape (m_queries,)
        std : array, if ``return_std``
            Standard deviation of the DP noise in each answer.
        """
        if any_dask(Y):  # lazy dask answers (kernelkit.dask)
            from ..dask._methods import private_query
            return private_query(self, Y, return_std)
        self._check_fitted()
        owner = f"{type(self).__name__}.query"
        return_std = check_param(return_std, "return_std", owner, OneOf(False, True))
        Y = check_points(Y, "Y", owner)
        if Y.shape[1] != self.n_features_in_:
            raise param_error("Y", owner, f"an array with {self.n_features_in_} features, like the data given to fit",
                              Y, shown=f"shape {Y.shape}")
        L, R, h = self.levels_, self.radius_, self.cell_width_
        n_leaves = 2 ** L
        offsets, _ = _level_offsets(L)
        dirs = self.directions_
        m = self.counts_.shape[0]
        values = np.empty(Y.shape[0])
        var = np.empty(Y.shape[0])
        # variances are formed in units of 2^k (exact) when the squares of the data-unit
        # numbers could overflow (huge radius or noise); k = 0 otherwise
        with np.errstate(over="ignore"):
            big = min(max(R, self.sum_std_, float(np.max(np.abs(Y - self.center_), initial=0.0))), 1e308)
        unit = math.ldexp(1.0, int(np.frexp(big)[1])) if big > 2.0 ** 400 else 1.0
        vc, vs = self.count_std_ ** 2, (self.sum_std_ / unit) ** 2
        rows = np.arange(m)[None, :]

        def block(a, b):
            Z = (Y[a:b] - self.center_) if dirs is None else (Y[a:b] - self.center_) @ dirs.T
            c = np.clip(np.rint((Z + R) / h), 0, n_leaves).astype(np.int64)  # split at the nearest cell edge
            P = np.zeros(Z.shape)
            SP = np.zeros(Z.shape)
            k = np.zeros(Z.shape)  # number of tree nodes in each prefix (popcount of c)
            for j in range(L + 1):
                bit = ((c >> j) & 1).astype(bool)
                node = np.minimum((c >> (j + 1)) << 1, 2 ** (L - j) - 1) + offsets[j]
                P += np.where(bit, self.counts_[rows, node], 0.0)
                SP += np.where(bit, self.sums_[rows, node], 0.0)
                k += bit
            N = self.counts_[:, -1][None, :]
            S = self.sums_[:, -1][None, :]
            A = Z * (2 * P - N) + S - 2 * SP
            full = c == n_leaves
            Zu = Z / unit
            v = np.where(full, Zu * Zu * vc + vs, Zu * Zu * (4 * k + 1) * vc + (4 * k + 1) * vs)
            if dirs is None:
                values[a:b] = A.sum(axis=1)
                var[a:b] = v.sum(axis=1)
            else:
                scale = 1.0 / (m * _kappa(self.n_features_in_))
                values[a:b] = A.sum(axis=1) * scale
                var[a:b] = v.sum(axis=1) * scale ** 2

        map_row_blocks(block, Y.shape[0], m * 8 * 12)
        if return_std:
            with np.errstate(over="ignore"):
                return values, np.sqrt(var) * unit
        return values

    def save(self, path):
        """Write the released state to ``path`` (.npz, no pickle)."""
        self._check_fitted()
        arrays = {"counts": self.counts_, "sums": self.sums_, "center": self.center_}
        if self.directions_ is not None:
            arrays["directions"] = self.directions_
        meta = {"metric": self.metric, "levels": self.levels_, "radius": self.radius_,
                "cell_width": self.cell_width_, "count_std": self.count_std_, "sum_std": self.sum_std_,
                "n_features_in": self.n_features_in_, "privacy": self.privacy_}
        save_state(path, "PrivateDistanceSum", arrays, meta)

    @classmethod
    def load(cls, path):
        """Read a structure written by :meth:`save` (``allow_pickle=False``)."""
        meta, arrays = load_state(path, "PrivateDistanceSum")
        p = meta["privacy"]
        obj = cls(meta["metric"], epsilon=p["epsilon"], delta=p["delta"], radius=meta["radius"],
                  levels=meta["levels"], neighbouring=p["neighbouring"])
        obj.counts_, obj.sums_, obj.center_ = arrays["counts"], arrays["sums"], arrays["center"]
        obj.directions_ = arrays.get("directions")
        obj.levels_, obj.radius_, obj.cell_width_ = int(meta["levels"]), float(meta["radius"]), meta["cell_width"]
        obj.count_std_, obj.sum_std_ = float(meta["count_std"]), float(meta["sum_std"])
        obj.n_features_in_ = int(meta["n_features_in"])
        obj.privacy_ = p
        return obj
