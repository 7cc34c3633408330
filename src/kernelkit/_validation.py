"""Input checks shared by every public function.

Every error names the parameter, what it received and what it accepts, in
one message shape: "The 'X' parameter of kernel_sum must be ... Got ...".
"""

from __future__ import annotations

import numbers

import numpy as np
from .exceptions import InvalidTypeError, InvalidValueError

__all__ = ["check_points", "check_weights", "check_positive", "check_pair", "result_dtype",
           "check_int", "describe"]


def describe(value):
    """Short description of a value for error messages."""
    if isinstance(value, np.ndarray):
        return f"an array of shape {value.shape} and dtype {value.dtype}"
    if isinstance(value, (list, tuple)) and len(value) > 6:
        return f"a {type(value).__name__} of length {len(value)}"
    return repr(value)


def _where(owner):
    return f" of {owner}" if owner else ""


def check_points(X, name="X", owner=None, dtype=None, min_rows=1, allow_1d=False):
    """Validate a 2-D array of points (rows are points).

    Returns a C-contiguous float32 or float64 array (float32 is kept, any
    other numeric type becomes float64 unless ``dtype`` is given). The input
    is never modified; a copy is made only where needed.
    """
    if X is None:
        raise InvalidTypeError(f"The {name!r} parameter{_where(owner)} must be a 2-D array of points. Got None.")
    try:
        arr = np.asarray(X)
    except Exception as exc:  # pragma: no cover - exotic inputs
        raise InvalidTypeError(f"The {name!r} parameter{_where(owner)} must be array-like. Got {type(X).__name__}.") from exc
    if arr.dtype == object or not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool):
        raise InvalidTypeError(
            f"The {name!r} parameter{_where(owner)} must be a numeric array. Got dtype {arr.dtype}.")
    if np.iscomplexobj(arr):
        raise InvalidTypeError(f"The {name!r} parameter{_where(owner)} must be real. Got complex dtype {arr.dtype}.")
    if arr.ndim == 1 and allow_1d:
        arr = arr[:, None]
    if arr.ndim != 2:
        hint = " Reshape a single feature with X.reshape(-1, 1) or a single point with X.reshape(1, -1)." \
            if arr.ndim == 1 else ""
        raise InvalidValueError(
            f"The {name!r} parameter{_where(owner)} must be a 2-D array of shape (n_points, n_features). "
            f"Got {arr.ndim}-D array of shape {arr.shape}.{hint}")
    if arr.shape[0] < min_rows:
        raise InvalidValueError(
            f"The {name!r} parameter{_where(owner)} must have at least {min_rows} row(s). Got shape {arr.shape}.")
    if arr.shape[1] < 1:
        raise InvalidValueError(f"The {name!r} parameter{_where(owner)} must have at least 1 feature. Got shape {arr.shape}.")
    if dtype is None:
        dtype = np.float32 if arr.dtype == np.float32 else np.float64
    arr = np.ascontiguousarray(arr, dtype=dtype)
    if not np.isfinite(arr).all():
        bad = np.argwhere(~np.isfinite(arr))[0]
        raise InvalidValueError(
            f"The {name!r} parameter{_where(owner)} must contain only finite values. "
            f"Got {arr[tuple(bad)]} at index {tuple(int(b) for b in bad)}.")
    return arr


def result_dtype(*arrays):
    """float32 if every array is float32, else float64."""
    return np.float32 if all(a.dtype == np.float32 for a in arrays) else np.float64


def check_pair(X, Y, owner=None, x_name="X", y_name="Y"):
    """Validate two point sets with the same number of features, common dtype."""
    X = check_points(X, x_name, owner)
    Y = check_points(Y, y_name, owner)
    if X.shape[1] != Y.shape[1]:
        raise InvalidValueError(
            f"The {y_name!r} parameter{_where(owner)} must have as many features as {x_name!r} "
            f"({X.shape[1]}). Got shape {Y.shape}.")
    dt = result_dtype(X, Y)
    return X.astype(dt, copy=False), Y.astype(dt, copy=False)


def check_weights(w, n, name="weights", owner=None, dtype=np.float64, nonnegative=False, allow_2d=True,
                  allow_neg_inf=False):
    """Validate weights of shape (n,) or (n, p). Returns a C-contiguous array."""
    if w is None:
        return None
    arr = np.asarray(w)
    if arr.dtype == object or not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool):
        raise InvalidTypeError(f"The {name!r} parameter{_where(owner)} must be a numeric array. Got dtype {arr.dtype}.")
    shapes = f"({n},) or ({n}, p)" if allow_2d else f"({n},)"
    if arr.ndim not in ((1, 2) if allow_2d else (1,)) or arr.shape[0] != n:
        raise InvalidValueError(
            f"The {name!r} parameter{_where(owner)} must have shape {shapes}, one row per data point. "
            f"Got shape {arr.shape}.")
    if arr.ndim == 2 and arr.shape[1] < 1:
        raise InvalidValueError(f"The {name!r} parameter{_where(owner)} must have at least one column. Got shape {arr.shape}.")
    arr = np.ascontiguousarray(arr, dtype=dtype)
    finite = np.isfinite(arr) | (allow_neg_inf & (arr == -np.inf))
    if not finite.all():
        bad = np.argwhere(~finite)[0]
        raise InvalidValueError(
            f"The {name!r} parameter{_where(owner)} must contain only finite values"
            f"{' (or -inf)' if allow_neg_inf else ''}. Got {arr[tuple(bad)]} at index {tuple(int(b) for b in bad)}.")
    if nonnegative and (arr < 0).any():
        bad = np.argwhere(arr < 0)[0]
        raise InvalidValueError(
            f"The {name!r} parameter{_where(owner)} must be non-negative. "
            f"Got {arr[tuple(bad)]} at index {tuple(int(b) for b in bad)}.")
    return arr


def check_positive(value, name, owner=None, allow_zero=False, allow_inf=False):
    """A real number > 0 (or >= 0). Returns it as float."""
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool)
    if ok:
        v = float(value)
        ok = (v >= 0 if allow_zero else v > 0) and (allow_inf or np.isfinite(v))
    if not ok:
        rel = ">= 0" if allow_zero else "> 0"
        raise InvalidValueError(f"The {name!r} parameter{_where(owner)} must be a finite float {rel}. Got {value!r}.")
    return float(value)


def check_int(value, name, owner=None, low=None, high=None):
    """An integer in [low, high]. Returns it as int."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise InvalidTypeError(f"The {name!r} parameter{_where(owner)} must be an int. Got {value!r}.")
    v = int(value)
    if (low is not None and v < low) or (high is not None and v > high):
        rng = f"in [{low}, {high}]" if low is not None and high is not None else \
            (f">= {low}" if low is not None else f"<= {high}")
        raise InvalidValueError(f"The {name!r} parameter{_where(owner)} must be an int {rng}. Got {v}.")
    return v
