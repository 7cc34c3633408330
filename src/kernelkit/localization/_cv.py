"""Cross-validation grouped by location (and by device), and positioning error summaries."""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np
from sklearn.base import clone

from .._validation import Integral, check_param, param_error

__all__ = ["grouped_cv_search", "GroupedSearch", "location_groups", "positioning_errors", "device_location_folds"]


def location_groups(positions, *labels, decimals=6):
    """One integer id per distinct location: (labels..., position rounded to ``decimals``).

    Parameters
    ----------
    positions : array of shape (n, n_dims)
    *labels : arrays of shape (n,)
        Floor, building... (readings at the same coordinates on another floor
        are another location).
    decimals : int
        Coordinates equal after rounding to this many decimals are one place.

    Returns
    -------
    ndarray of shape (n,), int64
    """
    pos = np.round(np.asarray(positions, dtype=np.float64), decimals)
    keys = np.column_stack([pos] + [np.asarray(lab, dtype=np.float64) for lab in labels])
    _, inv = np.unique(keys, axis=0, return_inverse=True)
    return inv.ravel().astype(np.int64)


def positioning_errors(estimated, true, floor_hat=None, floor=None, building_hat=None, building=None):
    """Summary of positioning errors: mean, median, P75, P90 of the Euclidean error, and hit rates.

    Parameters
    ----------
    estimated, true : arrays of shape (m, n_dims)
        Positions (errors in their unit).
    floor_hat, floor, building_hat, building : arrays of shape (m,), optional
        Labels; hit rates are reported where both are given.

    Returns
    -------
    dict
        ``mean``, ``median``, ``p75``, ``p90`` (units of the positions) and,
        where given, ``floor_hit``, ``building_hit`` (fractions in [0, 1]).
    """
    e = np.sqrt(((np.asarray(estimated, dtype=np.float64) - np.asarray(true, dtype=np.float64)) ** 2).sum(axis=1))
    out = {"mean": float(e.mean()), "median": float(np.median(e)), "p75": float(np.percentile(e, 75)),
           "p90": float(np.percentile(e, 90))}
    if floor_hat is not None and floor is not None:
        out["floor_hit"] = float(np.mean(np.asarray(floor_hat) == np.asarray(floor)))
    if building_hat is not None and building is not None:
        out["building_hit"] = float(np.mean(np.asarray(building_hat) == np.asarray(building)))
    return out


def _balanced_folds(ids, n_splits, rng):
    """Fold (0..n_splits-1) of every distinct id, balanced by readings: largest ids first, to the lightest fold.

    Returns (fold of every reading, number of distinct ids).
    """
    uniq, inv = np.unique(ids, return_inverse=True)
    inv = inv.ravel()
    counts = np.bincount(inv)
    perm = rng.permutation(uniq.size)
    fold_of = np.empty(uniq.size, dtype=np.int64)
    load = np.zeros(n_splits)
    for gidx in perm[np.argsort(-counts[perm], kind="stable")]:
        f = int(np.argmin(load))
        fold_of[gidx] = f
        load[f] += counts[gidx]
    return fold_of[inv], uniq.size


def device_location_folds(groups, devices, n_splits=3, n_device_splits=3, random_state=0):
    r"""Folds that hold out new devices at new locations together (a cross of device folds and location folds).

    Devices (phones, or phone-user pairs) are split into ``n_device_splits``
    folds :math:`a(\cdot)` and locations into ``n_splits`` folds
    :math:`b(\cdot)`, each balanced by readings (largest first, to the
    lightest fold; ties broken at random by ``random_state``). Cell
    :math:`(a, b)` tests the readings taken by a device of fold :math:`a` at a
    location of fold :math:`b`, and trains on the readings of the *other*
    devices at the *other* locations:

    .. math::

        T_{ab} = \{i : a(\text{dev}_i) = a,\ b(\text{loc}_i) = b\}, \qquad
        S_{ab} = \{i : a(\text{dev}_i) \ne a,\ b(\text{loc}_i) \ne b\}.

    Every reading is tested exactly once (in its own cell), never with a
    reading of its device or of its location in the radio map: the error is
    that of a new phone at a new place, as when a radio map is used weeks
    later by other phones (UJIIndoorLoc's validation set). The readings of
    the held-out devices at the other locations, and of the other devices at
    the held-out locations, are in neither set of that cell. Each cell's map
    holds about :math:`(1 - 1/A)(1 - 1/B)` of the readings (:math:`A` =
    ``n_device_splits``, :math:`B` = ``n_splits``; 44% for 3 x 3).

    Cost: :math:`A B` fits, and every reading queried once in all, against
    maps of about :math:`(1 - 1/A)(1 - 1/B)\,n` readings (the same query
    count as one location-grouped K-fold pass, on smaller maps).

    Parameters
    ----------
    groups : array of shape (n,)
        Location id per reading (:func:`location_groups`).
    devices : array of shape (n,)
        Device id per reading (e.g. UJIIndoorLoc's ``meta["phone"]``).
    n_splits : int >= 2
        Location folds :math:`B` (at most the number of locations).
    n_device_splits : int >= 2
        Device folds :math:`A` (at most the number of devices).
    random_state : None, int, SeedSequence or Generator
        Ties in the balanced assignment (locations, then devices, from one stream).

    Returns
    -------
    location_fold, device_fold : ndarrays of shape (n,), int64
        :math:`b(\text{loc}_i)` and :math:`a(\text{dev}_i)`. The test cell of
        reading :math:`i` is ``device_fold * n_splits + location_fold``.
    """
    owner = "device_location_folds"
    n_splits = check_param(n_splits, "n_splits", owner, Integral(low=2))
    n_device_splits = check_param(n_device_splits, "n_device_splits", owner, Integral(low=2))
    g = np.asarray(groups)
    if g.ndim != 1:
        raise param_error("groups", owner, "a 1-D array of location ids", groups, shown=f"shape {g.shape}")
    dev = np.asarray(devices)
    if dev.shape != g.shape:
        raise param_error("devices", owner, f"an array of {g.shape[0]} device ids, one per reading (like groups)",
                          devices, shown=f"shape {dev.shape}")
    n_loc, n_dev = np.unique(g).size, np.unique(dev).size
    if n_loc < n_splits:
        raise param_error("n_splits", owner, f"at most the number of locations ({n_loc})", n_splits)
    if n_dev < n_device_splits:
        raise param_error("n_device_splits", owner, f"at most the number of devices ({n_dev})", n_device_splits)
    from .._random import generator
    rng = generator(random_state, owner)
    loc_fold, _ = _balanced_folds(g, n_splits, rng)
    dev_fold, _ = _balanced_folds(dev, n_device_splits, rng)
    return loc_fold, dev_fold


@dataclass
class GroupedSearch:
    """What :func:`grouped_cv_search` returns.

    Attributes
    ----------
    best_params : dict
        The grid point of lowest mean cross-validated error.
    best_error : float
        Its mean positioning error over the held-out readings of all folds.
    results : list of dict
        One per grid point: ``params``, ``error`` (mean over all held-out
        readings), ``fold_errors`` (mean per fold, in fold order), and ``floor_hit`` / ``building_hit`` where
        the labels exist.
    best_estimator : FingerprintLocalizer or None
        Refitted on all the data with ``best_params`` (``refit=True``).
    folds : ndarray of shape (n,)
        The fold in which every reading is tested (all readings of a location
        share one; with ``devices``: the cell ``device_fold * n_splits +
        location_fold`` of :func:`device_location_folds`).
    """

    best_params: dict
    best_error: float
    results: list
    best_estimator: object = None
    folds: np.ndarray = None


def grouped_cv_search(estimator, rss, positions, param_grid, *, groups, devices=None, floor=None, building=None,
                      n_splits=5, n_device_splits=3, refit=True, random_state=0):
    """Choose hyperparameters by K-fold cross-validation in which a location is never split across folds.

    Readings taken at one place (one group) are all held out together, so a
    held-out reading never has a twin of its own location in the radio map:
    the error is that of a new place, as for a real query. Groups are
    assigned to folds at random (``random_state``), balanced by readings.

    With ``devices`` the folds are the cells of :func:`device_location_folds`:
    each holds out a set of devices at a set of locations and trains on the
    other devices at the other locations (``n_device_splits`` x ``n_splits``
    fits), so the error is that of a new phone at a new place. On
    UJIIndoorLoc this ranks methods as the official validation set (other
    phones, weeks later) does, where the location-only folds reward methods
    that interpolate between readings of the same phones.

    Parameters
    ----------
    estimator : FingerprintLocalizer
        Cloned for every fold and grid point.
    rss : array of shape (n, n_beacons)
    positions : array of shape (n, n_dims)
    param_grid : dict of str -> list
        Parameter values; every combination is scored (e.g. ``{"k": [5, 9],
        "n_beacons": [0.5, 1.0]}``).
    groups : array of shape (n,)
        Location id per reading (:func:`location_groups`).
    devices : array of shape (n,), optional
        Device id per reading (e.g. ``meta["phone"]``): hold out devices and
        locations together (see above). None: locations only.
    floor, building : arrays of shape (n,), optional
        Passed to ``fit``; hit rates are reported.
    n_splits : int >= 2
        Location folds.
    n_device_splits : int >= 2
        Device folds (with ``devices`` only).
    refit : bool
        Refit the best grid point on all the data.
    random_state : None, int, SeedSequence or Generator
        Assignment of groups to folds.

    Returns
    -------
    GroupedSearch
    """
    owner = "grouped_cv_search"
    n_splits = check_param(n_splits, "n_splits", owner, Integral(low=2))
    if not isinstance(param_grid, dict) or not param_grid or any(not isinstance(v, (list, tuple)) or not v
                                                                  for v in param_grid.values()):
        raise param_error("param_grid", owner, "a non-empty dict of parameter name -> non-empty list of values",
                          param_grid, kind="type")
    rss = np.asarray(rss)
    positions = np.asarray(positions, dtype=np.float64)
    g = np.asarray(groups)
    n = rss.shape[0]
    if g.shape != (n,):
        raise param_error("groups", owner, f"an array of {n} location ids", groups, shown=f"shape {g.shape}")
    if devices is None:
        n_loc = np.unique(g).size
        if n_loc < n_splits:
            raise param_error("n_splits", owner, f"at most the number of locations ({n_loc})", n_splits)
        from .._random import generator
        fold, _ = _balanced_folds(g, n_splits, generator(random_state, owner))
        cells = [(fold == f, fold != f) for f in range(n_splits)]
    else:
        dev = np.asarray(devices)
        if dev.shape != (n,):
            raise param_error("devices", owner, f"an array of {n} device ids", devices, shown=f"shape {dev.shape}")
        loc_fold, dev_fold = device_location_folds(g, dev, n_splits, n_device_splits, random_state)
        fold = dev_fold * n_splits + loc_fold
        cells = [((dev_fold == a) & (loc_fold == b), (dev_fold != a) & (loc_fold != b))
                 for a in range(n_device_splits) for b in range(n_splits)]
        cells = [c for c in cells if c[0].any()]     # a cell no device of fold a visited: nothing to test
    names = list(param_grid)
    results = []
    for values in itertools.product(*(param_grid[nm] for nm in names)):
        params = dict(zip(names, values))
        errs, sizes, fhit, bhit = [], [], [], []
        for te, tr in cells:
            model = clone(estimator).set_params(**params)
            model.fit(rss[tr], positions[tr], floor=None if floor is None else np.asarray(floor)[tr],
                      building=None if building is None else np.asarray(building)[tr], groups=g[tr])
            loc = model.locate(rss[te])
            e = np.sqrt(((loc.positions - positions[te]) ** 2).sum(axis=1))
            errs.append(float(e.mean()))
            sizes.append(int(te.sum()))
            if floor is not None:
                fhit.append(float(np.mean(loc.floor == np.asarray(floor)[te])))
            if building is not None:
                bhit.append(float(np.mean(loc.building == np.asarray(building)[te])))
        w = np.asarray(sizes, dtype=np.float64)
        row = {"params": params, "error": float(np.dot(errs, w) / w.sum()), "fold_errors": errs}
        if fhit:
            row["floor_hit"] = float(np.dot(fhit, w) / w.sum())
        if bhit:
            row["building_hit"] = float(np.dot(bhit, w) / w.sum())
        results.append(row)
    best = min(results, key=lambda r: r["error"])
    best_est = None
    if refit:
        best_est = clone(estimator).set_params(**best["params"]).fit(rss, positions, floor=floor, building=building,
                                                                      groups=g)
    return GroupedSearch(best_params=best["params"], best_error=best["error"], results=results,
                         best_estimator=best_est, folds=fold)
