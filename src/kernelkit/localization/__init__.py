"""Indoor positioning from received signal strength (RSS) fingerprints.

A radio map holds one RSS vector (fingerprint) per reading at a known place;
:class:`FingerprintLocalizer` locates a new reading from its ``k`` most similar
fingerprints (found by the engine's :func:`kernelkit.kernel_topk`): the
kernel-weighted mean of their positions, and kernel-weighted votes for the
building and the floor (hierarchically: building, then floor within it, then
position within the floor). kNN and weighted kNN (1/d) are the same class
with ``weights="uniform"`` / ``"distance"``. RSS representations follow
Torres-Sospedra et al. (2015) (:func:`rss_representation`); beacons can be
ranked by a Fisher-type ratio of between-location to within-location variance
(:func:`beacon_scores`), the subset size chosen by cross-validation grouped by
location (:func:`grouped_cv_search`). ``offsets`` matches each query at its
best of a few dB gain shifts (phones of other makes read the same signal a few
dB apart). ``local_model="ridge"`` replaces the neighbours' weighted mean by
a locally weighted ridge regression of position on fingerprint.
``location_means=True`` adds one averaged fingerprint per location to the map.
:func:`device_location_folds` (``grouped_cv_search(devices=...)``) holds out
new phones at new locations together, the situation of a map used weeks later
by other phones.
"""

from __future__ import annotations

from .._lazy import lazy_exports

_LAZY = {
    "FingerprintLocalizer": "._localizer", "Location": "._localizer",
    "rss_representation": "._representation", "REPRESENTATIONS": "._representation",
    "beacon_scores": "._selection",
    "grouped_cv_search": "._cv", "GroupedSearch": "._cv", "location_groups": "._cv",
    "device_location_folds": "._cv",
    "positioning_errors": "._cv",
}

__all__ = list(_LAZY)

__getattr__, __dir__ = lazy_exports(__name__, _LAZY)
