"""Loaders for public RSS fingerprint data sets (each reads the path it is given).

* UJIIndoorLoc (Torres-Sospedra et al., IPIN 2014; UCI, CC BY 4.0): WiFi
  fingerprints of three buildings of Universitat Jaume I, 520 access points
  (WAPs), ``+100`` = not heard; ``trainingData.csv`` 19,937 rows and
  ``validationData.csv`` 1,111 rows of 529 columns (the 520 RSS values in
  dBm, then LONGITUDE, LATITUDE (metres, a projected system), FLOOR,
  BUILDINGID, SPACEID, RELATIVEPOSITION, USERID, PHONEID, TIMESTAMP).
* BLE RSSI Dataset for Indoor localization (Mohammadi et al.; UCI, CC BY 4.0),
  ``iBeacon_RSSI_Labeled.csv``: 1,420 rows of a location label (a grid cell
  such as ``"O02"``: letter = column, number = row), a date and 13 iBeacon RSSI
  values in dBm, ``-200`` = not heard.
"""

from __future__ import annotations

import io
import os
import re
import zipfile
from dataclasses import dataclass, field

import numpy as np

from .._validation import check_int, check_positive, OneOf, check_param
from ..exceptions import InvalidValueError

__all__ = ["FingerprintData", "load_ujiindoorloc", "load_ibeacon_rssi"]


@dataclass(frozen=True)
class FingerprintData:
    """A table of RSS fingerprints with their labels.

    Attributes
    ----------
    rss : ndarray of shape (n, n_beacons), float64
        Received signal strengths in dBm, ``not_heard`` where a beacon was not
        received (the file's own marker, kept as is).
    positions : ndarray of shape (n, 2), float64
        Where each reading was taken, in the data set's units (metres for
        UJIIndoorLoc; grid cells times ``cell_size`` for the iBeacon set).
    floor, building : ndarray of shape (n,), int64, or None
        Floor and building labels where the data set has them.
    groups : ndarray of shape (n,), int64
        One id per measurement location (readings at the same place share it):
        for grouped cross-validation and beacon selection.
    not_heard : float
        The value that means "not heard" in ``rss``.
    beacons : list of str
        The beacon (access point) names, one per column of ``rss``.
    meta : dict of str -> ndarray
        Other columns (user, phone, timestamps, labels), one entry per row.
    info : dict
        Facts about the data set as a whole (a synthetic building's beacon
        positions and which beacons are holding-sensitive); empty for files.
    """

    rss: np.ndarray
    positions: np.ndarray
    floor: np.ndarray | None
    building: np.ndarray | None
    groups: np.ndarray
    not_heard: float
    beacons: list
    meta: dict = field(default_factory=dict)
    info: dict = field(default_factory=dict)

    def __len__(self):
        return self.rss.shape[0]


def _location_ids(*columns):
    """Integer id of each distinct row of the given columns (in order of first appearance)."""
    keys = np.column_stack([np.asarray(c, dtype=np.float64) for c in columns])
    _, first, inv = np.unique(keys, axis=0, return_index=True, return_inverse=True)
    order = np.argsort(np.argsort(first))     # renumber by first appearance (deterministic, readable)
    return order[inv.ravel()].astype(np.int64)


_UJI_FILES = {"training": "trainingData.csv", "validation": "validationData.csv"}
_UJI_COLUMNS = 529


def _open_uji(path, subset):
    """The bytes of the requested UJIIndoorLoc CSV from a zip, a directory or the CSV itself."""
    name = _UJI_FILES[subset]
    if os.path.isdir(path):
        for root, _, files in os.walk(path):
            if name in files:
                with open(os.path.join(root, name), "rb") as fh:
                    return fh.read()
        raise FileNotFoundError(f"load_ujiindoorloc: no {name} under the directory {path!r}")
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as z:
            members = [m for m in z.namelist() if m.rsplit("/", 1)[-1] == name]
            if not members:
                raise InvalidValueError(f"The 'path' parameter of load_ujiindoorloc must be the UJIIndoorLoc zip "
                                        f"(with {name}). Got {path!r}, which holds {z.namelist()[:6]}.")
            return z.read(members[0])
    with open(path, "rb") as fh:
        return fh.read()


def load_ujiindoorloc(path, subset="training", max_rows=None):
    """Load UJIIndoorLoc WiFi fingerprints (Torres-Sospedra et al. 2014).

    Parameters
    ----------
    path : str or path-like
        The UCI zip (``UJIIndoorLoc.zip``), a directory holding the CSV files,
        or one CSV file (then ``subset`` only names it in messages).
    subset : {"training", "validation"}
        ``trainingData.csv`` (19,937 readings) or ``validationData.csv``
        (1,111 readings; the official test split).
    max_rows : int >= 1, optional
        Read only the first ``max_rows`` readings (a quick look; default all).

    Returns
    -------
    FingerprintData
        ``rss`` (n, 520) in dBm with ``not_heard = 100``; ``positions`` (n, 2):
        LONGITUDE, LATITUDE in metres (the data set's projected coordinates);
        ``floor`` (0-4) and ``building`` (0-2); ``groups``: one id per
        distinct (building, floor, longitude, latitude), i.e. per reference
        point; ``meta``: ``space``, ``relative_position``, ``user``,
        ``phone``, ``timestamp`` (Unix seconds).
    """
    subset = check_param(subset, "subset", "load_ujiindoorloc", OneOf("training", "validation"))
    if max_rows is not None:
        max_rows = check_int(max_rows, "max_rows", "load_ujiindoorloc", low=1)
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"load_ujiindoorloc: no such file or directory {path!r}")
    raw = _open_uji(path, subset)
    text = io.StringIO(raw.decode("utf-8-sig"))
    header = text.readline().strip().split(",")
    if len(header) != _UJI_COLUMNS or header[520] != "LONGITUDE":
        raise InvalidValueError(f"load_ujiindoorloc: {path!r} ({_UJI_FILES[subset]}) is not a UJIIndoorLoc table: "
                                f"expected {_UJI_COLUMNS} columns WAP001..WAP520, LONGITUDE, ...; got "
                                f"{len(header)} columns starting {header[:3]}")
    table = np.loadtxt(text, delimiter=",", dtype=np.float64, ndmin=2, max_rows=max_rows)
    meta = {"space": table[:, 524].astype(np.int64), "relative_position": table[:, 525].astype(np.int64),
            "user": table[:, 526].astype(np.int64), "phone": table[:, 527].astype(np.int64),
            "timestamp": table[:, 528].astype(np.int64)}
    floor = table[:, 522].astype(np.int64)
    building = table[:, 523].astype(np.int64)
    positions = np.ascontiguousarray(table[:, 520:522])
    return FingerprintData(rss=np.ascontiguousarray(table[:, :520]), positions=positions, floor=floor,
                           building=building, groups=_location_ids(building, floor, positions[:, 0], positions[:, 1]),
                           not_heard=100.0, beacons=header[:520], meta=meta)


_CELL = re.compile(r"^\s*([A-Za-z]+)\s*0*(\d+)\s*$")


def _cell_index(label):
    """Grid cell ``"O02"`` -> (column, row) = (14, 2): letters as a base-26 column (A = 0), digits as the row."""
    m = _CELL.match(label)
    if m is None:
        return None
    col = 0
    for ch in m.group(1).upper():
        col = col * 26 + (ord(ch) - ord("A") + 1)
    return col - 1, int(m.group(2))


def load_ibeacon_rssi(path, cell_size=1.0):
    """Load the UCI BLE RSSI (iBeacon) labelled fingerprints.

    Parameters
    ----------
    path : str or path-like
        ``iBeacon_RSSI_Labeled.csv``: columns ``location, date, b3001..b3013``.
    cell_size : float > 0
        Length of one grid cell, in the units wanted for ``positions``
        (default 1: positions and errors in grid cells; the data set does not
        state the cell size).

    Returns
    -------
    FingerprintData
        ``rss`` (n, 13) in dBm with ``not_heard = -200``; ``positions``
        (n, 2): (column, row) of the grid cell times ``cell_size``, column
        from the label's letter (A = 0), row from its number; ``floor`` and
        ``building`` None (one floor); ``groups``: one id per location label;
        ``meta``: ``location`` (the labels) and ``date`` (as written).
    """
    cell_size = check_positive(cell_size, "cell_size", "load_ibeacon_rssi")
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"load_ibeacon_rssi: no such file {path!r}")
    with open(path, "r", encoding="utf-8-sig") as fh:
        lines = [line.rstrip("\r\n") for line in fh if line.strip()]
    if not lines:
        raise InvalidValueError(f"load_ibeacon_rssi: {path!r} is empty")
    header = [h.strip() for h in lines[0].split(",")]
    if len(header) < 3 or header[0].lower() != "location" or header[1].lower() != "date":
        raise InvalidValueError(f"load_ibeacon_rssi: {path!r} is not the iBeacon RSSI table: expected a header "
                                f"'location,date,b3001,...'; got {lines[0][:60]!r}")
    beacons = header[2:]
    labels, dates, rows, cells = [], [], [], []
    for lineno, line in enumerate(lines[1:], 2):
        fields = [f.strip() for f in line.split(",")]
        if len(fields) != len(header):
            raise InvalidValueError(f"load_ibeacon_rssi: {path!r} line {lineno}: {len(fields)} fields, "
                                    f"expected {len(header)}")
        cell = _cell_index(fields[0])
        if cell is None:
            raise InvalidValueError(f"load_ibeacon_rssi: {path!r} line {lineno}: location {fields[0]!r} is not a "
                                    "grid cell such as 'O02'")
        try:
            rows.append([float(v) for v in fields[2:]])
        except ValueError:
            raise InvalidValueError(f"load_ibeacon_rssi: {path!r} line {lineno}: an RSSI value is not a number "
                                    f"({fields[2:]})") from None
        labels.append(fields[0].upper())
        dates.append(fields[1])
        cells.append(cell)
    labels = np.array(labels)
    _, first, inv = np.unique(labels, return_index=True, return_inverse=True)
    groups = np.argsort(np.argsort(first))[inv].astype(np.int64)
    return FingerprintData(rss=np.array(rows, dtype=np.float64), positions=np.array(cells, dtype=np.float64) * cell_size,
                           floor=None, building=None, groups=groups, not_heard=-200.0, beacons=beacons,
                           meta={"location": labels, "date": np.array(dates)})
