"""FingerprintLocalizer: kernel top-k positioning from RSS fingerprints (with kNN / weighted kNN as flags)."""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
from sklearn.base import BaseEstimator

from .._sklearn import EstimatorNotFittedError
from .._validation import (Integral, OneOf, Real, check_param, check_points, param_error,
                           kernel_bandwidth_error)
from ..exceptions import NotSupportedError
from ..kernels import Kernel, Laplace, make_kernel
from ._representation import REPRESENTATIONS, heard_mask, rss_representation
from ._selection import beacon_scores

__all__ = ["FingerprintLocalizer", "Location"]

_OWNER = "FingerprintLocalizer"
#: bytes of gathered candidate fingerprints per chunk of queries (distance re-ranking)
_GATHER_BYTES = 32 * 2 ** 20
#: search-kernel bandwidth = (largest possible distance) / this: exp(-r / h) stays a normal float64 (> 1e-300)
_SEARCH_RANGE = 600.0


#: most offsets one query may be searched under (each one is an engine search)
_MAX_OFFSETS = 16


def _checked_offsets(offsets):
    """``offsets`` as a tuple of finite floats (dB); None -> (0.0,)."""
    if offsets is None:
        return (0.0,)
    try:
        arr = np.asarray(offsets, dtype=np.float64)
    except (TypeError, ValueError):
        raise param_error("offsets", _OWNER, "None or a sequence of finite RSS offsets in dB", offsets,
                          kind="type") from None
    if arr.ndim != 1 or arr.size == 0 or arr.size > _MAX_OFFSETS or not np.isfinite(arr).all():
        raise param_error("offsets", _OWNER, f"None or a non-empty sequence of at most {_MAX_OFFSETS} finite "
                          "RSS offsets in dB (e.g. (-3, 0, 3))", offsets)
    if np.unique(arr).size != arr.size:
        raise param_error("offsets", _OWNER, "distinct offsets (a repeated one only repeats a search)", offsets)
    return tuple(float(v) for v in arr)


def _shifted(R, heard, offset, fill):
    """Readings ``R`` (dBm) with ``offset`` dB added to the heard ones, kept in [fill, 0] (a new array).

    A heard reading pushed to ``fill`` or below becomes "not heard", as any reading at or below ``fill``
    does. Offset 0 returns ``R`` itself (unchanged), so offsets=None matches the unshifted search exactly.
    """
    if offset == 0.0:
        return R
    return np.where(heard, np.minimum(np.minimum(R, 0.0) + offset, 0.0), R)


class Location(NamedTuple):
    """What :meth:`FingerprintLocalizer.locate` returns.

    Attributes
    ----------
    positions : ndarray of shape (m, n_dims)
        Estimated positions, in the units of the radio map's positions.
    floor, building : ndarray of shape (m,) or None
        Estimated labels (None when the radio map had none).
    fallback : ndarray of bool, shape (m,)
        Queries that heard no selected beacon and got the documented fallback
        (``all_unheard="prior"``); all False otherwise.
    """

    positions: np.ndarray
    floor: np.ndarray | None
    building: np.ndarray | None
    fallback: np.ndarray


_PARAMS = {
    "k": Integral(low=1),
    "weights": OneOf("kernel", "uniform", "distance"),
    "metric": OneOf("auto", "sorensen", "l1", "euclidean", "kernel"),
    "representation": OneOf(*REPRESENTATIONS),
    "fill": Real(high=0, high_open=True),
    "beta": Real(low=0, low_open=True),
    "alpha": Real(low=0, low_open=True),
    "beacon_selection": OneOf("fisher") | None,
    "n_beacons": Integral(low=1) | Real(low=0, high=1, low_open=True) | None,
    "query_beacons": Integral(low=1) | None,
    "hierarchical": OneOf(False, True),
    "n_locations": Integral(low=1) | None,
    "local_model": OneOf("ridge") | None,
    "location_means": OneOf(False, True),
    "ridge": Real(low=0, low_open=True),
    "all_unheard": OneOf("raise", "prior"),
}


class FingerprintLocalizer(BaseEstimator):
    r"""Position (and floor, building) from RSS fingerprints by kernel top-k similarity.

    The radio map is the fitted readings :math:`x_i` (in an RSS
    representation, on the selected beacons) with positions :math:`p_i`. A
    query :math:`y` is located from its ``k`` nearest fingerprints
    :math:`N_k(y)` under the distance :math:`d` of ``metric``:

    .. math::

        \hat p(y) = \frac{\sum_{i \in N_k(y)} w_i\, p_i}{\sum_{i \in N_k(y)} w_i},
        \qquad w_i = \phi\big(d(x_i, y)\big) \ \text{("kernel")},\ 1\ \text{("uniform")},\
        1 / d(x_i, y)\ \text{("distance")},

    with :math:`\phi` the radial profile of ``kernel`` (:math:`\phi(r) = e^{-r/h}`
    for the default Laplace kernel). Floor and building are the labels of
    largest total weight among the same neighbours. With ``hierarchical=True``
    and labels in the map, the building is voted first by the neighbours in
    the whole map, then the floor by those of them in that building, and the
    position comes from a second search among the fingerprints on that floor
    of that building (two engine searches per query).

    The neighbours come from the engine (:func:`kernelkit.kernel_topk`), with
    a search kernel of the metric's distance whose bandwidth keeps every
    kernel value a normal float64 (so the top-k by kernel value is the
    nearest-k by distance, ties to the smaller map index); the distances of
    those candidates are then computed exactly (float64) and the weights are
    taken in the log domain (:math:`w_i = \phi(d_i)/\phi(d_{\min})`, so a
    small bandwidth never gives 0 / 0). For ``metric="sorensen"`` (Bray-Curtis,
    :math:`d(x, y) = \sum_j |x_j - y_j| / \sum_j (x_j + y_j)`, which is not a
    function of the L1 distance alone) the candidates are the ``c`` nearest in
    L1 and are re-ranked by their exact Bray-Curtis distance; the result is
    certified exact: every fingerprint outside the candidates has L1 distance
    :math:`D \ge D_c` (the c-th candidate's) and :math:`\sum_j x_j \le
    \min(S_{\max}, \sum_j y_j + D)`, hence Bray-Curtis distance at least
    :math:`D_c / (S_y + \min(S_y + D_c, S_{\max}))`; a query whose k-th
    re-ranked distance exceeds that bound is searched again with 4c
    candidates (at most the whole map). The Bray-Curtis top-k is therefore
    exact (ties aside), at the cost of one L1 top-k of ``c`` candidates.

    Parameters
    ----------
    kernel : str or Kernel, default "laplace"
        The weight profile: a kernel name (then ``bandwidth`` applies) or a
        kernelkit Kernel object. A radial kernel's profile is applied to the
        metric's distance (its own ``distance``, Euclidean or L1, must match
        ``metric`` "euclidean" / "l1"; with "sorensen" its profile is applied
        to the Bray-Curtis distance, unitless in [0, 1]). Any other kernel
        needs ``metric="kernel"``: neighbours are its own top-k values.
    bandwidth : float > 0 or "auto", default "auto"
        Bandwidth of a kernel given by name, in the units of the metric's
        distance (unitless for "sorensen"). ``"auto"``: the median, over up to
        500 map readings, of the spread of their neighbours' distances (k-th
        minus nearest other reading), so that the k-th neighbour typically
        weighs 1/e of the nearest under a Laplace kernel.
        Must be "auto" when ``kernel`` is a Kernel object.
    k : int >= 1, default 10
        Neighbours. At most the number of map readings; within a building or
        floor with fewer readings than ``k``, all of them are used.
    weights : {"kernel", "uniform", "distance"}, default "kernel"
        Kernel weights, plain kNN, or weighted kNN with 1/d weights (a
        neighbour at distance 0 then takes all the weight, shared by ties).
    metric : {"auto", "sorensen", "l1", "euclidean", "kernel"}, default "auto"
        The distance: Sorensen / Bray-Curtis (needs a non-negative
        representation), L1, Euclidean, or "kernel" (top-k kernel values of a
        non-radial kernel, weights = those values). "auto": "sorensen" for a
        kernel given by name, else the Kernel object's own distance.
    representation : {"raw", "positive", "exponential", "powed"}, default "powed"
        See :func:`rss_representation`.
    not_heard : float or "auto", default "auto"
        The marker of "not heard" in the data (+100 in UJIIndoorLoc, -200 in
        the iBeacon set); "auto" takes any value > 0 dBm or <= ``fill``.
    fill : float < 0, default -110
        dBm given to "not heard" readings (and the floor of all readings).
    beta, alpha : float > 0
        Exponent of "powed" (default e) and scale of "exponential" (dB, default 24).
    beacon_selection : None or "fisher", default None
        None: every beacon heard at least once in the radio map. "fisher": the
        ``n_beacons`` heard beacons of highest :func:`beacon_scores` (between-
        over within-location variance, locations from ``groups`` in
        :meth:`fit`): beacons whose readings move with how the phone is held
        are dropped first.
    n_beacons : int >= 1, float in (0, 1] or None
        How many beacons "fisher" keeps (a float: that fraction of the heard
        ones; None or more than are heard: all heard). Choose it by
        :func:`grouped_cv_search`.
    query_beacons : int >= 1 or None, default None
        Per-query beacon selection (Kushki et al. 2007, "strongest"): only the
        query's ``query_beacons`` strongest selected beacons count. The
        engine's search on every beacon gives max(4k, 64) candidates, which
        are re-ranked by the metric restricted to those beacons (exact within
        the candidates: an approximation of the restricted top-k over the map).
    offsets : None or sequence of float (dB), default None
        Device-offset-robust matching. Phones of different makes report the
        same signal a few dB apart (a roughly constant gain offset); with
        offsets :math:`\Delta = (\delta_1, \dots)` a query :math:`y` (dBm) is
        matched at its best offset,

        .. math::

            d_\Delta(x, y) = \min_{\delta \in \Delta} d\big(x, T(y + \delta)\big),

        where :math:`T` is the representation and :math:`y + \delta` shifts
        the heard readings only (kept in [``fill``, 0] dBm; one pushed to
        ``fill`` or below counts as not heard). The neighbours are the ``k``
        nearest under :math:`d_\Delta` (exact: the union of the per-offset
        top-k lists holds them), one engine search per offset, so the cost
        grows with ``len(offsets)``. Include 0 to keep the plain match. None:
        no shift (one search). E.g. ``(-3, 0, 3)``. On UJIIndoorLoc the
        phone-aware CV (:func:`device_location_folds`) chose ``(-6, -3, 0, 3,
        6)``: 10.54 m against 10.76 m for ``(-3, 0, 3)`` and 11.19 m without
        (k = 40 / 40 / 20); validation: 6.30 / 6.32 / 6.46 m (with
        ``location_means``; see benchmarks/bench_localization.py). The
        location-only CV hardly tells them apart (7.56 / 7.55 / 7.57 m).
    hierarchical : bool, default True
        Building, then floor, then position (where the map has the labels).
    n_locations : int >= 1 or None, default None
        None: the neighbours are the k readings. An int: the k readings'
        weights are summed per location (``groups`` of :meth:`fit`: a kernel
        sum of the query against each location's readings) and the
        ``n_locations`` locations of largest sum are averaged at their mean
        positions, weighted by those sums (votes likewise).
    local_model : None or "ridge", default None
        How the position comes from the neighbours. None: their weighted mean
        (above). ``"ridge"``: a locally weighted ridge regression of position
        on fingerprint among the neighbours, evaluated at the query. With
        :math:`\hat w_i = w_i / \sum_j w_j`, :math:`\bar x = \sum_i \hat w_i x_i`,
        :math:`\bar p = \sum_i \hat w_i p_i` and :math:`z_i = x_i - \bar x`
        (fingerprints in the representation, on the selected beacons),

        .. math::

            \hat p(y) = \bar p + B^\top (y - \bar x), \qquad
            B = \arg\min_B \sum_{i \in N_k(y)} \hat w_i \lVert p_i - \bar p - B^\top z_i \rVert^2
                + \lambda \lVert B \rVert_F^2,

        solved in its dual form, :math:`\hat p = \bar p + \sum_i a_i
        \sqrt{\hat w_i}(p_i - \bar p)` with :math:`a = (G + \lambda I)^{-1} c`,
        :math:`G_{ij} = \sqrt{\hat w_i \hat w_j}\, z_i \cdot z_j`, :math:`c_i =
        \sqrt{\hat w_i}\, z_i \cdot (y - \bar x)` (a k x k solve per query).
        :math:`y` is the unshifted query (``offsets`` choose the neighbours
        only). It corrects the weighted mean's pull towards the centre of the
        neighbours where they lie on one side of the query, and it can
        extrapolate past them. Measured on UJIIndoorLoc
        (benchmarks/bench_localization.py; k = 20, bandwidth 0.05, powed with
        beta 2, offsets (-3, 0, 3), ``ridge`` 3e-3 chosen by grouped CV):
        grouped 3-fold CV error 7.75 m against 7.92 m for the weighted mean,
        but 6.48 m against 6.31 m on the official validation set (other
        phones, months later); at k = 60, bandwidth 0.03, ``ridge`` 1e-3 (the
        best of a wider grouped-CV grid): 7.52 m against 7.87 m in CV, 6.72 m
        against 6.37 m on validation. The gain under CV does not carry over
        to the validation set, hence not the default. The phone-aware CV
        (:func:`device_location_folds`, which holds out new phones at new
        locations) ranks it as validation does: 10.67 m at best (``ridge``
        0.03; 11.33 m at 1e-3) against 10.56 m for the weighted mean (k = 20,
        bandwidth 0.05, offsets (-6, -3, 0, 3, 6)). Needs
        ``n_locations=None``.
    ridge : float > 0, default 1e-3
        :math:`\lambda` of ``local_model="ridge"``, in squared units of the
        representation (a larger value shrinks the fit towards the weighted
        mean).
    location_means : bool, default False
        Add one averaged fingerprint per location to the radio map. For
        location :math:`g` (``groups`` of :meth:`fit`) with readings
        :math:`R_g`,

        .. math::

            \bar x_g = \frac{1}{|R_g|} \sum_{i \in R_g} x_i, \qquad
            \bar p_g = \frac{1}{|R_g|} \sum_{i \in R_g} p_i,

        (fingerprints in the representation, on the selected beacons;
        positions in the map's units) with the floor and building of the
        location's first reading, are appended to the map after its readings
        (:math:`n + G` fingerprints for :math:`G` locations; they count as
        readings of their location for ``n_locations``). A mean over the
        phones and holdings that visited a place is a fingerprint no single
        phone reads, nearer to a new phone's reading than its noisiest
        readings. Search cost grows by :math:`G / n` (5% on UJIIndoorLoc).
        Measured on UJIIndoorLoc's training set under the phone-aware CV
        (:func:`device_location_folds`, 3 x 3 cells, half of each cell's
        held-out readings; k = 40, bandwidth 0.03, offsets (-6, -3, 0, 3, 6),
        flat): 10.527 m against 10.543 m without (paired difference
        -0.016 m, naive standard error 0.003 m; lower in 8 of the 9 cells):
        a small, consistent gain.
    all_unheard : {"raise", "prior"}, default "raise"
        A query hearing none of the selected beacons has no fingerprint to
        match: "raise" raises a ValueError naming it; "prior" gives it the
        mean map position and the most frequent floor and building (flagged
        in :attr:`Location.fallback`).

    Attributes
    ----------
    beacons_ : ndarray of int
        Indices (columns of the fitted RSS) of the beacons used.
    beacon_scores_ : ndarray of shape (``n_beacons_in_``,) or None
        Fisher scores of every input beacon ("fisher" only).
    kernel_ : Kernel
        The weight kernel, bandwidth resolved.
    bandwidth_ : float or None
        Its bandwidth (None for a non-radial kernel).
    metric_ : str
        The distance used.
    n_beacons_in_ : int
        Beacons (columns) of the fitted RSS.
    n_dims_ : int
        Coordinates of a position (2 or 3).

    Notes
    -----
    The two steps follow Ng, Spachos, She and Plataniotis, "A Kernel Method
    to Nonlinear Location Estimation with RSS-based Fingerprint" (IEEE TMC
    2023, arXiv 2204.03724): select beacons insensitive to how the phone is
    held, then locate from the top-k kernel similarities. The selection
    criterion here is a Fisher-type ratio (:func:`beacon_scores`), chosen
    because only the paper's abstract was at hand; the subset size is left to
    grouped cross-validation. Per-query selection of the strongest beacons
    follows Kushki et al., "Kernel-based positioning in wireless local area
    networks" (IEEE TMC 2007); the representations follow Torres-Sospedra et
    al. (2015). Ties between equal distances go to the smaller map index
    (scikit-learn's brute-force neighbours may break them otherwise).

    Examples
    --------
    >>> from kernelkit.datasets import make_building
    >>> from kernelkit.localization import FingerprintLocalizer
    >>> data = make_building(random_state=0)
    >>> model = FingerprintLocalizer(k=5).fit(data.rss, data.positions, groups=data.groups)
    >>> model.predict(data.rss[:3]).shape
    (3, 2)
    """

    def __init__(self, kernel="laplace", *, bandwidth="auto", k=10, weights="kernel", metric="auto",
                 representation="powed", not_heard="auto", fill=-110.0, beta=math.e, alpha=24.0,
                 beacon_selection=None, n_beacons=None, query_beacons=None, offsets=None, hierarchical=True,
                 n_locations=None, local_model=None, ridge=1e-3, location_means=False, all_unheard="raise"):
        self.kernel = kernel
        self.bandwidth = bandwidth
        self.k = k
        self.weights = weights
        self.metric = metric
        self.representation = representation
        self.not_heard = not_heard
        self.fill = fill
        self.beta = beta
        self.alpha = alpha
        self.beacon_selection = beacon_selection
        self.n_beacons = n_beacons
        self.query_beacons = query_beacons
        self.offsets = offsets
        self.hierarchical = hierarchical
        self.n_locations = n_locations
        self.local_model = local_model
        self.ridge = ridge
        self.location_means = location_means
        self.all_unheard = all_unheard

    # ------------------------------------------------------------------ validation
    def _checked(self):
        p = {name: check_param(getattr(self, name), name, _OWNER, c) for name, c in _PARAMS.items()}
        if isinstance(self.not_heard, str):
            if self.not_heard != "auto":
                raise param_error("not_heard", _OWNER, "a float or 'auto'", self.not_heard)
            p["not_heard"] = "auto"
        else:
            p["not_heard"] = check_param(self.not_heard, "not_heard", _OWNER, Real())
        if isinstance(self.bandwidth, str):
            if self.bandwidth != "auto":
                raise param_error("bandwidth", _OWNER, "a float > 0 or 'auto'", self.bandwidth)
            p["bandwidth"] = "auto"
        else:
            p["bandwidth"] = check_param(self.bandwidth, "bandwidth", _OWNER, Real(low=0, low_open=True))
        p["offsets"] = _checked_offsets(self.offsets)
        kernel = self.kernel
        if not isinstance(kernel, (str, Kernel)):
            raise param_error("kernel", _OWNER, "a kernel name or a kernelkit Kernel object", kernel, kind="type")
        metric = p["metric"]
        if isinstance(kernel, Kernel):
            if p["bandwidth"] != "auto":
                raise kernel_bandwidth_error(_OWNER, self.bandwidth)
            radial = getattr(kernel, "is_radial", False)
            kdist = getattr(kernel, "distance", "euclidean")
            if metric == "auto":
                metric = ("l1" if kdist == "l1" else "euclidean") if radial else "kernel"
            if metric in ("l1", "euclidean") and (not radial or kdist != metric):
                raise param_error("metric", _OWNER, f"'kernel' or 'sorensen' for {kernel!r}, or the kernel's own "
                                  f"distance ({kdist!r})" if radial else "'kernel' for a non-radial kernel",
                                  metric)
            if metric == "sorensen" and not radial:
                raise param_error("kernel", _OWNER, "a radial kernel with metric='sorensen' (its profile is "
                                  "applied to the Bray-Curtis distance)", kernel)
        elif metric == "auto":
            metric = "sorensen"
        if metric == "kernel" and p["weights"] == "distance":
            raise param_error("weights", _OWNER, "'kernel' or 'uniform' with metric='kernel' (a kernel's top-k "
                              "gives similarities, not distances)", p["weights"])
        if metric == "sorensen" and p["representation"] == "raw":
            raise param_error("representation", _OWNER, "'positive', 'exponential' or 'powed' with "
                              "metric='sorensen' (Bray-Curtis needs non-negative values)", p["representation"])
        if p["local_model"] is not None and p["n_locations"] is not None:
            raise param_error("local_model", _OWNER, "None when n_locations is set (the local model regresses on "
                              "the neighbours' own fingerprints, not on locations)", p["local_model"])
        p["metric"] = metric
        return p

    def _transform(self, rss):
        p = self._p_
        return rss_representation(rss, p["representation"], not_heard=p["not_heard"], fill=p["fill"],
                                  beta=p["beta"], alpha=p["alpha"])

    # ------------------------------------------------------------------ fit
    def fit(self, rss, positions, floor=None, building=None, groups=None):
        """Store the radio map (after representation and beacon selection) and resolve the bandwidth.

        Parameters
        ----------
        rss : array of shape (n, n_beacons)
            Map readings in dBm, with the ``not_heard`` marker; finite.
        positions : array of shape (n, 2) or (n, 3)
            Where each reading was taken (any length unit; errors come out in it).
        floor, building : array of shape (n,) of ints, optional
            Labels (used hierarchically when given).
        groups : array of shape (n,), optional
            Location id per reading (for "fisher" selection). Default: one id
            per distinct (building, floor, position).

        Returns
        -------
        self
        """
        p = self._checked()
        self._p_ = p
        owner = f"{_OWNER}.fit"
        rss = check_points(rss, "rss", owner, dtype=np.float64)
        n, nb = rss.shape
        pos = np.asarray(positions, dtype=np.float64) if positions is not None else None
        if pos is None or pos.ndim != 2 or pos.shape[0] != n or pos.shape[1] not in (2, 3):
            raise param_error("positions", owner, f"an array of shape ({n}, 2) or ({n}, 3), one position per "
                              "reading", positions, shown=None if pos is None else f"shape {pos.shape}")
        if not np.isfinite(pos).all():
            bad = np.argwhere(~np.isfinite(pos))[0]
            raise param_error("positions", owner, "finite coordinates (a reading without a known position "
                              "cannot be in the radio map: drop it)", positions,
                              shown=f"{pos[tuple(bad)]} at row {bad[0]}")
        labels = {}
        for name, lab in (("floor", floor), ("building", building)):
            if lab is None:
                labels[name] = None
                continue
            arr = np.asarray(lab)
            if arr.shape != (n,) or not (np.issubdtype(arr.dtype, np.integer) or
                                         (np.issubdtype(arr.dtype, np.floating) and np.isfinite(arr).all()
                                          and (arr == np.round(arr)).all())):
                raise param_error(name, owner, f"an array of {n} integer labels", lab,
                                  shown=f"shape {arr.shape}, dtype {arr.dtype}")
            labels[name] = arr.astype(np.int64)
        if groups is None:
            keys = [pos] + [labels[nm][:, None] for nm in ("floor", "building") if labels[nm] is not None]
            _, groups_ = np.unique(np.hstack(keys), axis=0, return_inverse=True)
            groups_ = groups_.ravel()
        else:
            groups_ = np.asarray(groups)
            if groups_.shape != (n,):
                raise param_error("groups", owner, f"an array of {n} location ids", groups,
                                  shown=f"shape {groups_.shape}")
        if p["k"] > n:
            raise param_error("k", _OWNER, f"an int in [1, {n}] (the radio map has {n} readings)", p["k"])

        R = self._transform(rss)
        heard = heard_mask(rss, p["not_heard"], p["fill"]).any(axis=0)
        if not heard.any():
            raise param_error("rss", owner, "a radio map in which at least one beacon is heard", rss,
                              shown="every reading 'not heard'")
        self.beacon_scores_ = None
        if p["beacon_selection"] == "fisher":
            scores = beacon_scores(R, groups_)
            scores = np.where(heard, scores, -np.inf)
            self.beacon_scores_ = scores
            order = np.argsort(-scores, kind="stable")
            n_heard = int(heard.sum())
            nk = p["n_beacons"]
            keep = n_heard if nk is None else (int(nk) if isinstance(nk, int) else max(1, int(round(nk * n_heard))))
            keep = min(keep, n_heard)
            self.beacons_ = np.sort(order[:keep])
        else:
            self.beacons_ = np.flatnonzero(heard)
        self.n_beacons_in_ = nb
        self.n_dims_ = pos.shape[1]
        self.map_ = np.ascontiguousarray(R[:, self.beacons_])
        self._sums_ = self.map_.sum(axis=1)
        self._unheard_value_ = float(self._transform(np.array([[p["fill"] - 1.0]]))[0, 0])
        self.positions_ = pos.copy()
        self.floor_ = labels["floor"]
        self.building_ = labels["building"]
        self.groups_ = groups_
        _, gid = np.unique(groups_, return_inverse=True)
        self._gid_ = gid.ravel()
        G = int(self._gid_.max()) + 1
        cnt = np.bincount(self._gid_, minlength=G).astype(np.float64)
        self._gpos_ = np.stack([np.bincount(self._gid_, weights=pos[:, j], minlength=G) / cnt
                                for j in range(pos.shape[1])], axis=1)
        first = np.unique(self._gid_, return_index=True)[1]
        self._glab_ = {nm: (None if labels[nm] is None else labels[nm][first]) for nm in ("floor", "building")}
        if p["location_means"]:
            self._append_location_means()
        self.metric_ = p["metric"]
        self.kernel_ = self._resolve_kernel(p)
        self.bandwidth_ = getattr(self.kernel_, "bandwidth", None) if self.metric_ != "kernel" else None
        return self

    def _append_location_means(self):
        """``location_means=True``: one mean fingerprint per location appended to the map (see the class doc)."""
        G = self._gpos_.shape[0]
        cnt = np.bincount(self._gid_, minlength=G).astype(np.float64)
        means = np.zeros((G, self.map_.shape[1]))
        np.add.at(means, self._gid_, self.map_)
        means /= cnt[:, None]
        first = np.unique(self._gid_, return_index=True)[1]
        self.map_ = np.ascontiguousarray(np.vstack([self.map_, means]))
        self._sums_ = self.map_.sum(axis=1)
        self.positions_ = np.vstack([self.positions_, self._gpos_])
        self.floor_ = None if self.floor_ is None else np.concatenate([self.floor_, self._glab_["floor"]])
        self.building_ = None if self.building_ is None else np.concatenate([self.building_,
                                                                              self._glab_["building"]])
        self.groups_ = np.concatenate([self.groups_, self.groups_[first]])
        self._gid_ = np.concatenate([self._gid_, np.arange(G)])

    def _resolve_kernel(self, p):
        if isinstance(self.kernel, Kernel):
            return self.kernel
        bw = p["bandwidth"]
        if bw == "auto" and self.metric_ == "kernel":
            raise param_error("bandwidth", _OWNER, "a float > 0 for a kernel given by name with metric='kernel'",
                              bw)
        if bw == "auto":
            rng = np.random.default_rng(0)       # deterministic subsample: auto bandwidth depends on data only
            n = self.map_.shape[0]
            sample = np.sort(rng.choice(n, size=min(n, 500), replace=False))
            kk = min(p["k"] + 1, n)
            _, dist = self._search_all(self.map_[sample], np.arange(n), kk)
            spread = dist[:, -1] - dist[:, min(1, kk - 1)]        # k-th minus nearest other reading
            bw = float(np.median(spread))
            if not bw > 0:
                positive = dist[dist > 0]
                bw = float(np.median(positive)) if positive.size else 1.0
        kdist = "l1" if self.metric_ == "l1" else "euclidean"
        try:
            return make_kernel(self.kernel, bw, **({"distance": kdist} if kdist == "l1" else {}))
        except TypeError:  # pragma: no cover - a kernel family without an L1 form
            return make_kernel(self.kernel, bw)

    # ------------------------------------------------------------------ neighbour search
    def _search_kernel(self, Q, rows):
        """A radial kernel of the metric's distance whose values stay normal float64 over every pair."""
        if self.metric_ == "euclidean":
            nx = np.sqrt(np.max(np.einsum("ij,ij->i", self.map_[rows], self.map_[rows])))
            ny = np.sqrt(np.max(np.einsum("ij,ij->i", Q, Q)))
            bound, dist = nx + ny, "euclidean"
        else:   # L1 (also the candidate search of Bray-Curtis)
            bound = float(np.max(np.abs(self.map_[rows]).sum(axis=1)) + np.max(np.abs(Q).sum(axis=1)))
            dist = "l1"
        h = max(bound, 1e-300) / _SEARCH_RANGE
        h = min(max(h, 1e-140), 1e140)
        return Laplace(h, distance="l1") if dist == "l1" else Laplace(h)

    def _distances(self, Q, rows, idx):
        """Exact float64 distances d(map[rows[idx]], Q) of the metric, shape idx.shape (vectorised gather)."""
        m, c = idx.shape
        out = np.empty((m, c))
        step = max(1, _GATHER_BYTES // max(1, 8 * c * Q.shape[1]))
        metric = self.metric_
        for j0 in range(0, m, step):
            j1 = min(m, j0 + step)
            gi = rows[idx[j0:j1]]
            X = self.map_[gi]                                  # (b, c, d)
            diff = X - Q[j0:j1, None, :]
            if metric == "euclidean":
                out[j0:j1] = np.sqrt(np.einsum("bcd,bcd->bc", diff, diff))
            else:
                l1 = np.abs(diff).sum(axis=2)
                if metric == "sorensen":
                    den = self._sums_[gi] + Q[j0:j1].sum(axis=1)[:, None]
                    l1 = l1 / np.where(den > 0, den, 1.0)
                out[j0:j1] = l1
        return out

    def _topk(self, kernel, Q, rows, c):
        from ..engine import kernel_topk
        X = self.map_ if rows.size == self.map_.shape[0] else self.map_[rows]
        return kernel_topk(kernel, X, Q, c)

    def _search(self, Q, rows, k):
        """The k nearest map readings among ``rows`` for every query: (indices into rows, distances), sorted.

        ``Q`` has shape (n_offsets, m, n_selected): the queries under every offset of ``offsets``. The
        distance of a fingerprint is its least distance over the offsets (for metric="kernel": its
        largest kernel value); the k nearest under it are among the union of the k nearest per offset
        (a fingerprint outside every per-offset top-k has, at its best offset, k others nearer), so
        merging the per-offset lists is exact.
        """
        n_off, m, nsel = Q.shape
        if n_off == 1:
            return self._search_one(Q[0], rows, k)
        # one search of all the shifted queries stacked (offset-major), then the per-offset lists side by side
        idx, d = self._search_one(np.ascontiguousarray(Q.reshape(n_off * m, nsel)), rows, k)
        c = idx.shape[1]
        idx = idx.reshape(n_off, m, c).transpose(1, 0, 2).reshape(m, n_off * c)
        d = d.reshape(n_off, m, c).transpose(1, 0, 2).reshape(m, n_off * c)
        sign = -1.0 if self.metric_ == "kernel" else 1.0       # similarities: larger is nearer
        key = sign * d
        order = np.lexsort((key, idx), axis=1)                  # by index, then best value first
        idx = np.take_along_axis(idx, order, axis=1)
        key = np.take_along_axis(key, order, axis=1)
        dup = np.zeros(idx.shape, dtype=bool)
        dup[:, 1:] = idx[:, 1:] == idx[:, :-1]                  # later copies of one fingerprint
        key = np.where(dup, np.inf, key)
        kk = min(k, rows.size)
        order = np.lexsort((idx, key), axis=1)[:, :kk]
        return np.take_along_axis(idx, order, axis=1), sign * np.take_along_axis(key, order, axis=1)

    def _search_one(self, Q, rows, k):
        """:meth:`_search` for one offset: Q of shape (m, n_selected)."""
        q = self._p_["query_beacons"]
        if q is None or q >= Q.shape[1] or self.metric_ == "kernel":
            return self._search_all(Q, rows, k)
        k = min(k, rows.size)
        idx, _ = self._search_all(Q, rows, min(rows.size, max(4 * k, 64)))
        strongest = np.argsort(-Q, axis=1, kind="stable")[:, :q]           # (m, q) columns per query
        m, c = idx.shape
        d = np.empty((m, c))
        step = max(1, _GATHER_BYTES // max(1, 8 * c * q))
        for j0 in range(0, m, step):
            j1 = min(m, j0 + step)
            X = self.map_[rows[idx[j0:j1]][:, :, None], strongest[j0:j1, None, :]]     # (b, c, q)
            y = np.take_along_axis(Q[j0:j1], strongest[j0:j1], axis=1)[:, None, :]
            diff = X - y
            if self.metric_ == "euclidean":
                d[j0:j1] = np.sqrt((diff * diff).sum(axis=2))
            else:
                l1 = np.abs(diff).sum(axis=2)
                if self.metric_ == "sorensen":
                    den = X.sum(axis=2) + y.sum(axis=2)
                    l1 = l1 / np.where(den > 0, den, 1.0)
                d[j0:j1] = l1
        order = np.lexsort((idx, d), axis=1)[:, :k]
        return np.take_along_axis(idx, order, axis=1), np.take_along_axis(d, order, axis=1)

    def _search_all(self, Q, rows, k):
        """:meth:`_search` on every selected beacon."""
        n = rows.size
        k = min(k, n)
        if self.metric_ == "kernel":
            values, idx = self._topk(self.kernel_, Q, rows, k)
            return idx, values
        search = self._search_kernel(Q, rows)
        if self.metric_ == "l1":            # D = -h log k(x, y): exact to the engine's rounding
            vals, idx = self._topk(search, Q, rows, k)
            with np.errstate(divide="ignore"):
                return idx, np.maximum(-search.bandwidth * np.log(vals), 0.0)
        if self.metric_ == "euclidean":
            c = min(n, k + 8)                   # a few spare candidates: exact re-ranking at the boundary
            _, idx = self._topk(search, Q, rows, c)
            d = self._distances(Q, rows, idx)
            order = np.lexsort((idx, d), axis=1)[:, :k]
            return np.take_along_axis(idx, order, axis=1), np.take_along_axis(d, order, axis=1)
        return self._search_sorensen(Q, rows, k, search)

    def _buckets(self, rows, k):
        """Partition of ``rows`` by fingerprint sum S: (list of index arrays into rows, list of S upper bounds).

        Geometric in S (upper / lower <= 1.5; sums below 1e-3 S_max share the first), so that within a
        bucket the Bray-Curtis order L1 / (S_x + S_y) is close to the L1 order; adjacent buckets are then
        merged until each holds at least max(64, 4 k) rows (few engine calls on tiny subsets).
        """
        s = self._sums_[rows]
        s_max = float(s.max())
        if not s_max > 0:
            return [np.arange(rows.size)], [0.0]
        edges = [1e-3 * s_max]
        while edges[-1] < s_max:
            edges.append(edges[-1] * 1.5)
        b = np.searchsorted(np.asarray(edges), s, side="left")     # bucket 0: s <= 1e-3 S_max
        order = np.argsort(b, kind="stable")
        _, starts = np.unique(b[order], return_index=True)
        parts = np.split(order, starts[1:])
        least = max(64, 4 * k)
        merged = []
        for part in parts:
            if merged and merged[-1].size < least:
                merged[-1] = np.concatenate([merged[-1], part])
            else:
                merged.append(part)
        if len(merged) > 1 and merged[-1].size < least:
            tail = merged.pop()
            merged[-1] = np.concatenate([merged[-1], tail])
        out = [np.sort(part) for part in merged]
        return out, [float(s[part].max()) for part in out]

    def _search_sorensen(self, Q, rows, k, search):
        """Exact Bray-Curtis top-k: per bucket of fingerprint sums, L1 candidates re-ranked, certified.

        The L1 distances come from the search kernel's values, D = -h log k (h is chosen so that every
        value is a normal float64: D carries the engine's rounding only, no cancellation). A bucket
        whose bound fails for some query is searched again, for the queries still open, with 4x the
        candidates (at most the whole bucket).
        """
        m = Q.shape[0]
        h = search.bandwidth
        out_i = np.empty((m, k), dtype=np.int64)
        out_d = np.empty((m, k))
        s_y = Q.sum(axis=1)
        buckets, tops = self._buckets(rows, k)
        nb = len(buckets)
        todo = np.arange(m)
        width = [min(members.size, 2 * k + 8) for members in buckets]
        cand_i, cand_d, bound = [None] * nb, [None] * nb, [None] * nb
        stale = list(range(nb))
        while todo.size:
            Qt = Q[todo]
            sy = s_y[todo]
            for j in stale:
                members, cb = buckets[j], width[j]
                sub = rows[members]
                vals, idx = self._topk(search, Qt, sub, cb)
                with np.errstate(divide="ignore"):
                    l1 = np.maximum(-h * np.log(vals), 0.0)
                den = self._sums_[sub[idx]] + sy[:, None]
                cand_i[j] = members[idx]
                cand_d[j] = l1 / np.where(den > 0, den, 1.0)
                # every other member x: L1 >= the cb-th candidate's L1 and S_x <= s_hi
                bound[j] = (l1[:, -1] / np.maximum(tops[j] + sy, 1e-300) if cb < members.size
                            else np.full(todo.size, np.inf))
            idx = np.concatenate(cand_i, axis=1)
            d = np.concatenate(cand_d, axis=1)
            order = np.lexsort((idx, d), axis=1)[:, :k]
            best_i = np.take_along_axis(idx, order, axis=1)
            best_d = np.take_along_axis(d, order, axis=1)
            short = np.stack(bound) < best_d[:, -1]                   # (buckets, queries): bound fails
            ok = ~short.any(axis=0)
            out_i[todo[ok]] = best_i[ok]
            out_d[todo[ok]] = best_d[ok]
            todo = todo[~ok]
            keep = ~ok
            stale = [j for j in range(nb) if short[j, keep].any()]
            for j in range(nb):
                cand_i[j], cand_d[j], bound[j] = cand_i[j][keep], cand_d[j][keep], bound[j][keep]
            for j in stale:
                width[j] = min(buckets[j].size, 4 * width[j])
        return out_i, out_d

    # ------------------------------------------------------------------ weights and estimates
    def _weights(self, d):
        """Weights of neighbours at distances ``d`` (m, k) (or kernel values for metric="kernel")."""
        w = self._p_["weights"]
        if w == "uniform":
            return np.ones_like(d)
        if self.metric_ == "kernel":
            if (d < 0).any():
                raise NotSupportedError(f"{_OWNER}: the kernel {self.kernel_!r} gave negative similarities; "
                                        "kernel weights need a kernel with non-negative values.")
            top = d[:, :1]
            return np.where(top > 0, d / np.where(top > 0, top, 1.0), np.eye(1, d.shape[1]))
        if w == "distance":
            zero = d <= 0
            with np.errstate(divide="ignore"):
                inv = 1.0 / d
            return np.where(zero.any(axis=1, keepdims=True), zero.astype(np.float64), inv)
        logw = self.kernel_.log_profile(d * d)
        top = logw.max(axis=1, keepdims=True)
        finite = np.isfinite(top)
        w = np.exp(logw - np.where(finite, top, 0.0))
        return np.where(finite, w, np.eye(1, d.shape[1]))     # profile 0 everywhere: the nearest alone

    @staticmethod
    def _vote(labels, w):
        """Label of largest total weight per row of ``labels`` (m, L) (ties: smallest label)."""
        classes, inv = np.unique(labels, return_inverse=True)
        lab = inv.reshape(labels.shape)
        scores = np.zeros((labels.shape[0], classes.size))
        np.add.at(scores, (np.repeat(np.arange(labels.shape[0]), labels.shape[1]), lab.ravel()), w.ravel())
        return classes[np.argmax(scores, axis=1)]

    def _neighbours(self, Q, rows):
        """(positions (m, L, n_dims), weights (m, L), {"floor": labels (m, L), "building": ...}) of the neighbours.

        Without ``n_locations`` the L = k neighbours are map readings. With it,
        the k readings' weights are summed per location (group) and the
        ``n_locations`` locations of largest total weight are the neighbours,
        at their mean position.
        """
        idx, d = self._search(Q, rows, self._p_["k"])
        gi = rows[idx]
        w = self._weights(d)
        L = self._p_["n_locations"]
        if L is None:
            labs = {nm: (None if lab is None else lab[gi]) for nm, lab in (("floor", self.floor_),
                                                                          ("building", self.building_))}
            return self.positions_[gi], w, dict(labs, rows=gi)
        g = self._gid_[gi]                                     # (m, k) location of each neighbour
        m, k = g.shape
        # total weight per distinct location of each row: sort the row's locations, sum runs
        order = np.argsort(g, axis=1, kind="stable")
        gs = np.take_along_axis(g, order, axis=1)
        ws = np.take_along_axis(w, order, axis=1)
        start = np.ones((m, k), dtype=bool)
        start[:, 1:] = gs[:, 1:] != gs[:, :-1]
        run = np.cumsum(start, axis=1) - 1                     # run index within the row
        tot = np.zeros((m, k))
        np.add.at(tot, (np.repeat(np.arange(m), k), run.ravel()), ws.ravel())
        loc = np.full((m, k), -1, dtype=np.int64)
        loc[np.repeat(np.arange(m), k)[start.ravel()], run[start]] = gs[start]
        tot = np.where(loc >= 0, tot, -1.0)
        top = np.argsort(-tot, axis=1, kind="stable")[:, :min(L, k)]
        lw = np.take_along_axis(tot, top, axis=1)
        lg = np.take_along_axis(loc, top, axis=1)
        valid = lg >= 0
        lw = np.where(valid, lw, 0.0)
        lg = np.where(valid, lg, lg[:, :1])
        labs = {nm: (None if lab is None else lab[lg]) for nm, lab in self._glab_.items()}
        return self._gpos_[lg], lw, dict(labs, rows=None)

    def _estimate(self, P, w, labs, Y):
        """Positions from the neighbours: weighted mean, or the local ridge fit (``local_model``) at ``Y``.

        ``P`` (m, L, n_dims) neighbour positions, ``w`` (m, L) weights, ``labs["rows"]`` (m, L) their map
        rows, ``Y`` (m, n_selected) the unshifted queries in the representation.
        """
        wn = w / w.sum(axis=1, keepdims=True)
        pbar = np.einsum("mk,mkd->md", wn, P)
        if self._p_["local_model"] is None:
            return pbar
        gi = labs["rows"]
        m, k = gi.shape
        lam = self._p_["ridge"]
        out = np.empty_like(pbar)
        step = max(1, _GATHER_BYTES // max(1, 8 * k * Y.shape[1]))
        eye = lam * np.eye(k)
        for j0 in range(0, m, step):
            j1 = min(m, j0 + step)
            X = self.map_[gi[j0:j1]]                                   # (b, k, d)
            ww = wn[j0:j1]
            xbar = np.einsum("bk,bkd->bd", ww, X)
            Z = X - xbar[:, None, :]
            s = np.sqrt(ww)
            G = np.einsum("bkd,bld->bkl", Z, Z) * s[:, :, None] * s[:, None, :]
            c = np.einsum("bkd,bd->bk", Z, Y[j0:j1] - xbar) * s
            a = np.linalg.solve(G + eye, c[:, :, None])[:, :, 0]
            out[j0:j1] = pbar[j0:j1] + np.einsum("bk,bkd->bd", a * s, P[j0:j1] - pbar[j0:j1, None, :])
        return out

    def _check_fitted(self):
        if not hasattr(self, "map_"):
            raise EstimatorNotFittedError(f"This {_OWNER} is not fitted yet: call fit(rss, positions) first.")

    def _queries(self, rss, owner):
        self._check_fitted()
        R = check_points(rss, "rss", owner, dtype=np.float64)
        if R.shape[1] != self.n_beacons_in_:
            raise param_error("rss", owner, f"an array with {self.n_beacons_in_} beacon columns, like the radio "
                              "map it was fitted on", rss, shown=f"shape {R.shape}")
        p = self._p_
        mask = heard_mask(R, p["not_heard"], p["fill"])
        heard = mask[:, self.beacons_].any(axis=1)
        Q = np.stack([np.ascontiguousarray(self._transform(_shifted(R, mask, off, p["fill"]))[:, self.beacons_])
                      for off in p["offsets"]])
        offs = list(p["offsets"])
        Y = Q[offs.index(0.0)] if 0.0 in offs else np.ascontiguousarray(self._transform(R)[:, self.beacons_])
        return Q, Y, ~heard

    # ------------------------------------------------------------------ public predictions
    def locate(self, rss):
        """Positions, floors and buildings of the queries in one pass (see the class docstring).

        Parameters
        ----------
        rss : array of shape (m, ``n_beacons_in_``)
            Readings in dBm, same beacons (columns) and marker as the radio map.

        Returns
        -------
        Location
            ``(positions, floor, building, fallback)``.
        """
        owner = f"{_OWNER}.locate"
        Q, Y, unheard = self._queries(rss, owner)       # (n_offsets, m, n_selected), unshifted (m, n_selected)
        m = Q.shape[1]
        if unheard.any() and self._p_["all_unheard"] == "raise":
            rows = np.flatnonzero(unheard)
            raise param_error("rss", owner, "readings that hear at least one of the radio map's selected beacons "
                              "(or all_unheard='prior' for a documented fallback)", rss,
                              shown=f"{rows.size} reading(s) hearing none, the first at row {rows[0]}")
        pos = np.empty((m, self.n_dims_))
        fl = None if self.floor_ is None else np.empty(m, dtype=np.int64)
        bl = None if self.building_ is None else np.empty(m, dtype=np.int64)
        live = np.flatnonzero(~unheard)
        if unheard.any():
            n_read = self.groups_.shape[0] - (self._gpos_.shape[0] if self._p_["location_means"] else 0)
            pos[unheard] = self.positions_[:n_read].mean(axis=0)       # the readings' mean (not the added means)
            for out, lab in ((fl, self.floor_), (bl, self.building_)):
                if out is not None:
                    vals, counts = np.unique(lab[:n_read], return_counts=True)
                    out[unheard] = vals[np.argmax(counts)]
        if live.size:
            self._locate_live(Q[:, live], Y[live], live, pos, fl, bl)
        return Location(pos, fl, bl, unheard)

    def _locate_live(self, Q, Y, live, pos, fl, bl):
        n = self.map_.shape[0]
        everything = np.arange(n)
        if not self._p_["hierarchical"] or (self.floor_ is None and self.building_ is None):
            P, w, labs = self._neighbours(Q, everything)
            pos[live] = self._estimate(P, w, labs, Y)
            if fl is not None:
                fl[live] = self._vote(labs["floor"], w)
            if bl is not None:
                bl[live] = self._vote(labs["building"], w)
            return
        # building, then floor, voted by the neighbours in the whole map (the floor by those in the voted
        # building only); then the position from the neighbours on that floor of that building
        P, w, labs = self._neighbours(Q, everything)
        b_hat = np.zeros(live.size, dtype=np.int64)
        if self.building_ is not None:
            b_hat = self._vote(labs["building"], w)
            bl[live] = b_hat
        f_hat = np.zeros(live.size, dtype=np.int64)
        if self.floor_ is not None:
            wf = w if self.building_ is None else np.where(labs["building"] == b_hat[:, None], w, 0.0)
            f_hat = self._vote(labs["floor"], wf)
            fl[live] = f_hat
        map_b = self.building_ if self.building_ is not None else np.zeros(n, dtype=np.int64)
        map_f = self.floor_ if self.floor_ is not None else np.zeros(n, dtype=np.int64)
        for b, f in sorted(set(zip(b_hat.tolist(), f_hat.tolist()))):
            sel = np.flatnonzero((b_hat == b) & (f_hat == f))
            rows = np.flatnonzero((map_b == b) & (map_f == f))
            P, w, labs = self._neighbours(Q[:, sel], rows)
            pos[live[sel]] = self._estimate(P, w, labs, Y[sel])

    def predict(self, rss):
        """Estimated positions, shape (m, ``n_dims_``), in the radio map's units."""
        return self.locate(rss).positions

    def predict_floor(self, rss):
        """Estimated floor labels, shape (m,) (the map must have floors)."""
        if getattr(self, "floor_", 0) is None:
            raise NotSupportedError(f"{_OWNER}.predict_floor: the radio map was fitted without floor labels.")
        return self.locate(rss).floor

    def predict_building(self, rss):
        """Estimated building labels, shape (m,) (the map must have buildings)."""
        if getattr(self, "building_", 0) is None:
            raise NotSupportedError(f"{_OWNER}.predict_building: the radio map was fitted without building labels.")
        return self.locate(rss).building

    def score(self, rss, positions):
        """Minus the mean Euclidean positioning error (so that greater is better), in the positions' units.

        Parameters
        ----------
        rss : array of shape (m, ``n_beacons_in_``)
        positions : array of shape (m, ``n_dims_``)
            True positions.

        Returns
        -------
        float
            :math:`-\\frac1m \\sum_j \\|\\hat p_j - p_j\\|_2`.
        """
        est = self.predict(rss)
        true = np.asarray(positions, dtype=np.float64)
        if true.shape != est.shape:
            raise param_error("positions", f"{_OWNER}.score", f"an array of shape {est.shape}", positions,
                              shown=f"shape {true.shape}")
        return -float(np.mean(np.sqrt(((est - true) ** 2).sum(axis=1))))
