"""Data sets: loaders for public data given by path, and synthetic generators.

Indoor positioning (received signal strength fingerprints):

* :func:`load_ujiindoorloc`: UJIIndoorLoc WiFi fingerprints (the UCI zip with
  ``trainingData.csv`` / ``validationData.csv``, or one of those CSV files).
* :func:`load_ibeacon_rssi`: the UCI "BLE RSSI Dataset for Indoor
  localization" labelled CSV (13 iBeacons).
* :func:`make_building`: a synthetic building (log-distance path loss,
  shadowing, walls, floors, and a body / holding attenuation that depends on
  the phone's orientation), for demos and tests.

Loaders read the path they are given; nothing is downloaded or cached.
"""

from __future__ import annotations

from .._lazy import lazy_exports

_LAZY = {
    "load_ujiindoorloc": "._indoor", "load_ibeacon_rssi": "._indoor", "FingerprintData": "._indoor",
    "make_building": "._synthetic",
}

__all__ = list(_LAZY)

__getattr__, __dir__ = lazy_exports(__name__, _LAZY)
