"""Input checks shared by every public function: one checker, one message shape.

Every error names the parameter, what it accepts and what it got::

    The 'n_features' parameter of PrivateKernelSum must be an int >= 1 or one of {'auto'}. Got 0.

built by :func:`param_error` and nowhere else. A value of the wrong *type*
raises :class:`~kernelkit.exceptions.InvalidTypeError` (a ``TypeError``), a
value of the right type outside what is accepted raises
:class:`~kernelkit.exceptions.InvalidValueError` (a ``ValueError``).

Scalar parameters are checked against a declared constraint::

    check_param(delta, "delta", "kernel_thin", Real(low=0, high=1, low_open=True))
    check_param(n_features, "n_features", owner, Integral(low=1) | OneOf("auto"))
    check_params(vars(self), {"epsilon": Real(low=0, low_open=True), ...}, owner)

The constraints are :class:`Real`, :class:`Integral`, :class:`OneOf` and
:class:`InstanceOf`; ``a | b`` accepts what either accepts (``a | None``
also accepts None). Arrays go through :func:`check_points` and
:func:`check_weights`.
"""

from __future__ import annotations

import math
import numbers

import numpy as np
from .exceptions import InvalidTypeError, InvalidValueError

__all__ = ["check_points", "check_weights", "check_positive", "check_pair", "result_dtype",
           "check_int", "describe", "param_error", "kernel_bandwidth_error", "check_param", "check_params",
           "Constraint", "Real", "Integral", "OneOf", "InstanceOf", "AnyOf"]


# --------------------------------------------------------------------------- the one message
def describe(value):
    """Short description of a value for error messages (numpy scalars shown as Python numbers)."""
    if isinstance(value, np.ndarray):
        return f"an array of shape {value.shape} and dtype {value.dtype}"
    if isinstance(value, np.generic) and not isinstance(value, (np.str_, np.bytes_)):
        return repr(value.item())
    if isinstance(value, (list, tuple)) and len(value) > 6:
        return f"a {type(value).__name__} of length {len(value)}"
    return repr(value)


def param_error(name, owner, accepts, got, kind="value", *, shown=None, hint=None, noun="parameter"):
    """The error for a parameter that is not accepted, in the one message shape.

    ``"The 'name' parameter of owner must be <accepts>. Got <got>. <hint>"``

    Parameters
    ----------
    name : str
        The parameter (``'bandwidth'``, ``'X'``, ``'--size'``).
    owner : str or None
        The function, class or method it belongs to (None: not named).
    accepts : str
        What is accepted, completing "must be ..." (``"a float > 0"``).
    got : object
        The value received, shown with :func:`describe` unless ``shown`` is given.
    kind : {"value", "type"}
        ``"type"`` gives an :class:`InvalidTypeError` (a TypeError),
        ``"value"`` an :class:`InvalidValueError` (a ValueError).
    shown : str, optional
        What to show after "Got" instead of the value (``"shape (3, 2)"``).
    hint : str, optional
        A sentence after the message: why, or what to do.
    noun : str
        ``"parameter"``, or ``"option"`` for engine options and command-line flags.

    Returns
    -------
    InvalidTypeError or InvalidValueError
        To be raised by the caller: ``raise param_error(...)``.
    """
    if kind not in ("value", "type"):
        raise ValueError(f"param_error: kind must be 'value' or 'type'. Got {kind!r}.")  # a bug, not user input
    where = f" of {owner}" if owner else ""
    text = f"The {name!r} {noun}{where} must be {accepts}. Got {describe(got) if shown is None else shown}."
    if hint:
        text += f" {hint}"
    return (InvalidTypeError if kind == "type" else InvalidValueError)(text)


def kernel_bandwidth_error(owner, bandwidth, hint=None):
    """The error for ``bandwidth`` passed next to a Kernel object (which carries its own bandwidth)."""
    return param_error("bandwidth", owner, "None when 'kernel' is a Kernel object (it carries its bandwidth)",
                       bandwidth, hint=hint or "Set the bandwidth on the kernel (Gaussian(bandwidth=0.5)) or pass "
                                               "the kernel by name with bandwidth=.")


# --------------------------------------------------------------------------- declared constraints
def _number(v):
    """A bound as text: 0, 1, 0.5, 1e+150."""
    if isinstance(v, numbers.Integral):
        return str(int(v))
    short = f"{v:g}"
    return short if float(short) == v else repr(float(v))


def _is_bool(value):
    return isinstance(value, (bool, np.bool_))


def _same_kind(value, option):
    """True when ``value`` has the type of ``option`` (bools and numbers are different kinds)."""
    if _is_bool(option) or _is_bool(value):
        return _is_bool(option) and _is_bool(value)
    return isinstance(value, type(option))


def _as_float(value):
    try:
        return float(value)
    except OverflowError:  # an int beyond float64
        return math.inf if value > 0 else -math.inf


class Constraint:
    """What one parameter accepts.

    Subclasses define ``type_ok(value)`` (is it of an accepted type?),
    ``value_ok(value)`` (given the type, is the value accepted?), ``convert``
    and ``__str__`` (the phrase after "must be").
    """

    def type_ok(self, value):
        raise NotImplementedError

    def value_ok(self, value):
        return True

    def convert(self, value):
        return value

    def __or__(self, other):
        return AnyOf(self, other)

    def __ror__(self, other):
        return AnyOf(other, self)

    def __repr__(self):
        return f"<{type(self).__name__}: {self}>"


class _IsNone(Constraint):
    def type_ok(self, value):
        return value is None

    def __str__(self):
        return "None"


def _as_constraint(c):
    if c is None:
        return _IsNone()
    if not isinstance(c, Constraint):
        raise TypeError(f"not a Constraint: {c!r}")  # a bug in a declaration, not user input
    return c


class Real(Constraint):
    """A real number (int or float, not bool) in an interval; converted to float.

    Parameters
    ----------
    low, high : float, optional
        Bounds (None: unbounded on that side).
    low_open, high_open : bool
        Exclude the bound (``low=0, low_open=True``: > 0).
    finite : bool
        Refuse inf (NaN is always refused).
    """

    def __init__(self, low=None, high=None, *, low_open=False, high_open=False, finite=True):
        self.low, self.high = low, high
        self.low_open, self.high_open = low_open, high_open
        self.finite = finite

    def type_ok(self, value):
        return isinstance(value, numbers.Real) and not _is_bool(value)

    def value_ok(self, value):
        v = _as_float(value)
        if math.isnan(v) or (self.finite and math.isinf(v)):
            return False
        if self.low is not None and not (v > self.low if self.low_open else v >= self.low):
            return False
        if self.high is not None and not (v < self.high if self.high_open else v <= self.high):
            return False
        return True

    def convert(self, value):
        return _as_float(value)

    def _kind(self):
        return "float"

    def __str__(self):
        kind = self._kind()
        a = "an" if kind == "int" else "a"
        if self.low is not None and self.high is not None:
            return (f"{a} {kind} in {'(' if self.low_open else '['}{_number(self.low)}, "
                    f"{_number(self.high)}{')' if self.high_open else ']'}")
        finite = "finite " if self.finite and kind == "float" else ""
        if self.low is not None:
            return f"{a} {finite}{kind} {'>' if self.low_open else '>='} {_number(self.low)}"
        if self.high is not None:
            return f"{a} {finite}{kind} {'<' if self.high_open else '<='} {_number(self.high)}"
        return f"{a} {finite}{kind}"


class Integral(Real):
    """An integer (Python or numpy int, not bool) in ``[low, high]``; converted to int."""

    def __init__(self, low=None, high=None):
        super().__init__(low, high)

    def type_ok(self, value):
        return isinstance(value, numbers.Integral) and not _is_bool(value)

    def value_ok(self, value):
        v = int(value)
        return (self.low is None or v >= self.low) and (self.high is None or v <= self.high)

    def convert(self, value):
        return int(value)

    def _kind(self):
        return "int"


class OneOf(Constraint):
    """One of a few options (strings, or other values compared by type and equality); converted to the option.

    A value of the type of some option is of the right type (a wrong string is
    a ValueError); any other type is a TypeError. Bools and numbers are
    different types here (``OneOf(False, True)`` refuses 1).
    """

    def __init__(self, *options):
        self.options = options

    def type_ok(self, value):
        return any(_same_kind(value, o) for o in self.options)

    def value_ok(self, value):
        return any(_same_kind(value, o) and value == o for o in self.options)

    def convert(self, value):
        """The option itself (``np.True_`` -> ``True``, ``np.str_('a')`` -> ``'a'``)."""
        return next(o for o in self.options if _same_kind(value, o) and value == o)

    def __str__(self):
        return "one of {" + ", ".join(repr(o) for o in self.options) + "}"


class InstanceOf(Constraint):
    """An instance of ``cls`` (described as ``description``, e.g. "a Kernel object")."""

    def __init__(self, cls, description):
        self.cls, self.description = cls, description

    def type_ok(self, value):
        return isinstance(value, self.cls)

    def __str__(self):
        return self.description


class AnyOf(Constraint):
    """What any of the constraints accepts (written ``a | b``); converted by the first that accepts."""

    def __init__(self, *constraints):
        flat = []
        for c in map(_as_constraint, constraints):
            flat.extend(c.constraints if isinstance(c, AnyOf) else [c])
        self.constraints = tuple(flat)

    def type_ok(self, value):
        return any(c.type_ok(value) for c in self.constraints)

    def value_ok(self, value):
        return any(c.type_ok(value) and c.value_ok(value) for c in self.constraints)

    def convert(self, value):
        for c in self.constraints:
            if c.type_ok(value) and c.value_ok(value):
                return c.convert(value)
        return value

    def __str__(self):
        parts = [str(c) for c in self.constraints]
        return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " or " + parts[-1]


def check_param(value, name, owner, constraint, *, hint=None, noun="parameter"):
    """``value`` converted by ``constraint``, or the error in the one message shape.

    Parameters
    ----------
    value : object
        What the user passed.
    name, owner : str
        The parameter and its function / class, for the message.
    constraint : Constraint or None
        What is accepted (None alone accepts only None).
    hint : str, optional
        A sentence appended to the message (why, what to do).
    noun : str
        ``"parameter"``, or ``"option"`` (see :func:`param_error`).

    Raises
    ------
    InvalidTypeError
        ``value`` has a type no alternative accepts.
    InvalidValueError
        ``value`` has an accepted type but a value outside what is accepted.
    """
    c = _as_constraint(constraint)
    if not c.type_ok(value):
        raise param_error(name, owner, str(c), value, "type", hint=hint, noun=noun)
    if not c.value_ok(value):
        raise param_error(name, owner, str(c), value, hint=hint, noun=noun)
    return c.convert(value)


def check_params(values, constraints, owner):
    """Check several parameters at once: ``{name: check_param(values[name], ...)}`` for each declared name.

    ``values`` is a mapping (``vars(self)`` for an estimator), ``constraints`` a
    mapping name -> Constraint (a table declared once, next to the class).
    """
    return {name: check_param(values[name], name, owner, c) for name, c in constraints.items()}


# --------------------------------------------------------------------------- the historical helpers
def check_positive(value, name, owner=None, allow_zero=False, allow_inf=False):
    """A real number > 0 (or >= 0), finite unless ``allow_inf``. Returns it as float.

    Wrong type (a string, None, a bool) -> InvalidTypeError; a number out of
    range (or NaN) -> InvalidValueError.
    """
    return check_param(value, name, owner, Real(low=0, low_open=not allow_zero, finite=not allow_inf))


def check_int(value, name, owner=None, low=None, high=None):
    """An integer in [low, high] (not a bool, not a float). Returns it as int."""
    return check_param(value, name, owner, Integral(low, high))


def _numeric_array(value, name, owner):
    try:
        arr = np.asarray(value)
    except Exception as exc:  # pragma: no cover - exotic inputs
        raise param_error(name, owner, "array-like", value, "type", shown=type(value).__name__) from exc
    if arr.dtype == object or not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool):
        raise param_error(name, owner, "a numeric array", value, "type", shown=f"dtype {arr.dtype}")
    return arr


def _first_bad(arr, bad):
    i = np.argwhere(bad)[0]
    return f"{arr[tuple(i)]} at index {tuple(int(b) for b in i)}"


def check_points(X, name="X", owner=None, dtype=None, min_rows=1, allow_1d=False):
    """Validate a 2-D array of points (rows are points).

    Returns a C-contiguous float32 or float64 array (float32 is kept, any
    other numeric type becomes float64 unless ``dtype`` is given). The input
    is never modified; a copy is made only where needed.
    """
    if X is None:
        raise param_error(name, owner, "a 2-D array of points", None, "type")
    arr = _numeric_array(X, name, owner)
    if np.iscomplexobj(arr):
        raise param_error(name, owner, "real", X, "type", shown=f"complex dtype {arr.dtype}")
    if arr.ndim == 1 and allow_1d:
        arr = arr[:, None]
    if arr.ndim != 2:
        hint = "Reshape a single feature with X.reshape(-1, 1) or a single point with X.reshape(1, -1)." \
            if arr.ndim == 1 else None
        raise param_error(name, owner, "a 2-D array of shape (n_points, n_features)", X,
                          shown=f"{arr.ndim}-D array of shape {arr.shape}", hint=hint)
    if arr.shape[0] < min_rows:
        raise param_error(name, owner, f"an array with at least {min_rows} row(s)", X, shown=f"shape {arr.shape}")
    if arr.shape[1] < 1:
        raise param_error(name, owner, "an array with at least 1 feature", X, shown=f"shape {arr.shape}")
    if dtype is None:
        dtype = np.float32 if arr.dtype == np.float32 else np.float64
    arr = np.ascontiguousarray(arr, dtype=dtype)
    finite = np.isfinite(arr)
    if not finite.all():
        raise param_error(name, owner, "an array of finite values", X, shown=_first_bad(arr, ~finite))
    return arr


def result_dtype(*arrays):
    """float32 if every array is float32, else float64."""
    return np.float32 if all(a.dtype == np.float32 for a in arrays) else np.float64


def check_pair(X, Y, owner=None, x_name="X", y_name="Y"):
    """Validate two point sets with the same number of features, common dtype."""
    X = check_points(X, x_name, owner)
    Y = check_points(Y, y_name, owner)
    if X.shape[1] != Y.shape[1]:
        raise param_error(y_name, owner, f"an array with as many features as {x_name!r} ({X.shape[1]})", Y,
                          shown=f"shape {Y.shape}")
    dt = result_dtype(X, Y)
    return X.astype(dt, copy=False), Y.astype(dt, copy=False)


def check_weights(w, n, name="weights", owner=None, dtype=np.float64, nonnegative=False, allow_2d=True,
                  allow_neg_inf=False):
    """Validate weights of shape (n,) or (n, p). Returns a C-contiguous array (None for None)."""
    if w is None:
        return None
    arr = _numeric_array(w, name, owner)
    shapes = f"({n},) or ({n}, p)" if allow_2d else f"({n},)"
    if arr.ndim not in ((1, 2) if allow_2d else (1,)) or arr.shape[0] != n:
        raise param_error(name, owner, f"an array of shape {shapes}, one row per data point", w,
                          shown=f"shape {arr.shape}")
    if arr.ndim == 2 and arr.shape[1] < 1:
        raise param_error(name, owner, "an array with at least one column", w, shown=f"shape {arr.shape}")
    arr = np.ascontiguousarray(arr, dtype=dtype)
    finite = np.isfinite(arr) | (allow_neg_inf & (arr == -np.inf))
    if not finite.all():
        what = "an array of finite values (or -inf)" if allow_neg_inf else "an array of finite values"
        raise param_error(name, owner, what, w, shown=_first_bad(arr, ~finite))
    if nonnegative and (arr < 0).any():
        raise param_error(name, owner, "non-negative", w, shown=_first_bad(arr, arr < 0))
    return arr
