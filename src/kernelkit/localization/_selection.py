"""Beacon selection for holding variability: a Fisher-type ratio per beacon."""

from __future__ import annotations

import numpy as np

from .._validation import check_points, param_error

__all__ = ["beacon_scores"]


def beacon_scores(values, groups):
    r"""Fisher-type ratio of each beacon: spread between locations over spread within one location.

    For beacon :math:`j`, with :math:`\bar v_{gj}` the mean of its values over
    the readings of location :math:`g` (:math:`n_g` readings; several holding
    conditions, users or times) and :math:`\bar v_j` the overall mean,

    .. math::

        F_j = \frac{\sum_g n_g (\bar v_{gj} - \bar v_j)^2 / n}
                   {\sum_g \sum_{i \in g} (v_{ij} - \bar v_{gj})^2 / n + \epsilon}

    (between-location over pooled within-location variance, both in the
    squared units of ``values``; :math:`\epsilon = 10^{-12}` times the largest
    between-location variance keeps a beacon constant within every location
    finite). A beacon whose readings move with the way the phone is held has a
    large within-location variance and a low score; a beacon never heard
    (constant) scores 0. Higher is better.

    Parameters
    ----------
    values : array of shape (n, n_beacons)
        Readings in the representation the localizer uses (e.g. the output of
        :func:`rss_representation`).
    groups : array of shape (n,)
        Location id of each reading (readings at the same place share it). At
        least one location must have two or more readings.

    Returns
    -------
    ndarray of shape (n_beacons,), float64
    """
    owner = "beacon_scores"
    V = check_points(values, "values", owner, dtype=np.float64)
    g = np.asarray(groups)
    if g.ndim != 1 or g.shape[0] != V.shape[0]:
        raise param_error("groups", owner, f"an array of shape ({V.shape[0]},), one location id per reading",
                          groups, shown=f"shape {g.shape}")
    _, inv, counts = np.unique(g, return_inverse=True, return_counts=True)
    inv = inv.ravel()
    if counts.max() < 2:
        raise param_error("groups", owner, "location ids with at least one location read twice or more (the "
                          "within-location spread needs repeated readings)", groups,
                          shown=f"{counts.size} distinct ids for {V.shape[0]} readings")
    n = V.shape[0]
    sums = np.zeros((counts.size, V.shape[1]))
    np.add.at(sums, inv, V)
    means = sums / counts[:, None]
    grand = V.mean(axis=0)
    between = (counts[:, None] * (means - grand) ** 2).sum(axis=0) / n
    within = ((V - means[inv]) ** 2).sum(axis=0) / n
    eps = 1e-12 * max(float(between.max()), np.finfo(np.float64).tiny)
    return between / (within + eps)
