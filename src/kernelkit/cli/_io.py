"""Reading and writing point sets for the CLI.

Formats: CSV (comma, optional header row), .npy, .npz (first array, or
``file.npz:key``), .parquet (needs pyarrow), posteriordb draws (``.json`` or
``.json.zip``: a list of chains, each a dict parameter -> list of draws).
"""

from __future__ import annotations

import json
import os
import zipfile

import numpy as np
from ..exceptions import InvalidValueError


def _split_key(path):
    if ".npz:" in path:
        p, key = path.rsplit(":", 1)
        return p, key
    return path, None


def read_points(path, name="DATA"):
    """Read a 2-D float array (rows = points) and column names (or None)."""
    path = str(path)
    file, key = _split_key(path)
    if not os.path.exists(file):
        raise FileNotFoundError(f"{name}: no such file {file!r}")
    low = file.lower()
    if low.endswith(".npy"):
        arr, cols = np.load(file, allow_pickle=False), None
    elif low.endswith(".npz"):
        with np.load(file, allow_pickle=False) as z:
            keys = list(z.keys())
            if not keys:
                raise InvalidValueError(f"{name}: {file!r} holds no arrays")
            if key is not None and key not in keys:
                raise InvalidValueError(f"{name}: {file!r} has no array {key!r}; it has {keys}")
            arr, cols = z[key or keys[0]], None
    elif low.endswith(".parquet"):
        try:
            import pyarrow.parquet as pq
        except ImportError:
            raise InvalidValueError(f"{name}: reading Parquet needs pyarrow (pip install 'kernelkit[parquet]')") from None
        table = pq.read_table(file)
        cols = table.column_names
        arr = np.column_stack([table.column(c).to_numpy(zero_copy_only=False).astype(float) for c in cols])
    elif low.endswith(".json") or low.endswith(".json.zip"):
        arr, cols = read_posteriordb(file)
    else:
        arr, cols = _read_csv(file, name)
    arr = np.asarray(arr)
    if arr.ndim == 1:
        arr = arr[:, None]
    if arr.ndim != 2:
        raise InvalidValueError(f"{name}: expected a 2-D table of points, got an array of shape {arr.shape}")
    if arr.dtype != np.float32:
        arr = arr.astype(np.float64)
    return arr, cols


def _read_csv(file, name):
    with open(file, "r", encoding="utf-8") as fh:
        first = fh.readline()
    if not first.strip():
        raise InvalidValueError(f"{name}: {file!r} is empty")
    fields = [f.strip() for f in first.split(",")]
    try:
        [float(f) for f in fields]
        header = None
    except ValueError:
        header = fields
    try:
        arr = np.loadtxt(file, delimiter=",", skiprows=1 if header else 0, ndmin=2, dtype=np.float64)
    except ValueError as exc:
        raise InvalidValueError(f"{name}: {file!r} is not a numeric CSV table ({exc})") from None
    if arr.size == 0:
        raise InvalidValueError(f"{name}: {file!r} has a header but no rows")
    return arr, header


def read_posteriordb(file):
    """posteriordb reference draws: list of chains, each {param: [draws]}.

    Returns the draws of all chains stacked (chain after chain), shape
    (n_chains * n_draws, n_params), and the parameter names.
    """
    if file.lower().endswith(".zip"):
        with zipfile.ZipFile(file) as zf:
            inner = [n for n in zf.namelist() if not n.endswith("/")]
            if not inner:
                raise InvalidValueError(f"DATA: {file!r} is an empty zip archive")
            with zf.open(inner[0]) as fh:
                chains = json.load(fh)
    else:
        with open(file, "r", encoding="utf-8") as fh:
            chains = json.load(fh)
    if isinstance(chains, dict):
        chains = [chains]
    if not isinstance(chains, list) or not chains or not isinstance(chains[0], dict):
        raise InvalidValueError(f"DATA: {file!r} is not in posteriordb's draw format (a list of chains, "
                         "each a dict parameter -> list of draws)")
    names = list(chains[0].keys())
    blocks = [np.column_stack([np.asarray(ch[p], dtype=float).ravel() for p in names]) for ch in chains]
    return np.vstack(blocks), names


def write_array(path, arr, columns=None):
    """Write a 1-D or 2-D array as CSV (with header), .npy or .npz (key 'data')."""
    path = str(path)
    arr = np.asarray(arr)
    low = path.lower()
    if low.endswith(".npy"):
        np.save(path, arr)
    elif low.endswith(".npz"):
        np.savez(path, data=arr)
    elif low.endswith(".parquet"):
        try:
            import pyarrow as pa
            import pyarrow.parquet as pq
        except ImportError:
            raise InvalidValueError("--out: writing Parquet needs pyarrow (pip install 'kernelkit[parquet]')") from None
        a2 = arr.reshape(arr.shape[0], -1)
        cols = columns or [f"c{i}" for i in range(a2.shape[1])]
        pq.write_table(pa.table({c: a2[:, i] for i, c in enumerate(cols)}), path)
    else:
        a2 = arr.reshape(arr.shape[0], -1)
        header = ",".join(columns) if columns else ""
        fmt = "%d" if np.issubdtype(a2.dtype, np.integer) else "%.17g"
        np.savetxt(path, a2, delimiter=",", header=header, comments="", fmt=fmt)
