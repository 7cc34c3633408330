"""Input checks (kernelkit._validation) and options (kernelkit._options)."""

import numpy as np
import pytest

from kernelkit import _options as O
from kernelkit._validation import (AnyOf, InstanceOf, Integral, OneOf, Real, check_int, check_pair, check_param,
                                   check_params, check_points, check_positive, check_weights, describe,
                                   kernel_bandwidth_error, param_error, result_dtype)
from kernelkit.exceptions import InvalidTypeError, InvalidValueError


def test_check_points_dtypes_and_no_copy_semantics():
    X = np.arange(6, dtype=np.int64).reshape(3, 2)
    out = check_points(X, "X", "f")
    assert out.dtype == np.float64 and out.flags.c_contiguous
    X32 = np.ones((3, 2), np.float32)
    assert check_points(X32).dtype == np.float32
    F = np.asfortranarray(np.random.default_rng(0).normal(size=(4, 3)))
    F0 = F.copy()
    out = check_points(F)
    out[0, 0] = 99.0
    np.testing.assert_array_equal(F, F0)  # the input was not modified
    assert check_points([[1, 2], [3, 4]]).shape == (2, 2)
    assert check_points(np.ones(4), allow_1d=True).shape == (4, 1)


@pytest.mark.parametrize("bad, exc, pattern", [
    (None, TypeError, "'X' parameter of f must be a 2-D array.*Got None"),
    (np.array([["a", "b"]]), TypeError, "'X' parameter of f must be a numeric array. Got dtype <U1"),
    (np.array([[1, None]], dtype=object), TypeError, "numeric array. Got dtype object"),
    (np.ones((2, 2), complex), TypeError, "must be real. Got complex"),
    (np.ones(3), ValueError, "2-D array.*Got 1-D array of shape \\(3,\\).*reshape"),
    (np.ones((2, 2, 2)), ValueError, "Got 3-D"),
    (np.ones((0, 2)), ValueError, "at least 1 row.*Got shape \\(0, 2\\)"),
    (np.ones((2, 0)), ValueError, "at least 1 feature"),
    (np.array([[1.0, np.nan]]), ValueError, "finite values. Got nan at index \\(0, 1\\)"),
    (np.array([[np.inf], [1.0]]), ValueError, "finite values. Got inf at index \\(0, 0\\)"),
])
def test_check_points_errors(bad, exc, pattern):
    with pytest.raises(exc, match=pattern):
        check_points(bad, "X", "f")


def test_check_pair():
    X, Y = check_pair(np.ones((2, 3), np.float32), np.ones((4, 3)))
    assert X.dtype == Y.dtype == np.float64
    X, Y = check_pair(np.ones((2, 3), np.float32), np.ones((4, 3), np.float32))
    assert X.dtype == np.float32
    with pytest.raises(ValueError, match="'Y' parameter of g must be an array with as many features as 'X' "
                                         "\\(3\\). Got shape \\(2, 2\\)."):
        check_pair(np.ones((2, 3)), np.ones((2, 2)), owner="g")
    assert result_dtype(np.ones(1, np.float32), np.ones(1)) == np.float64


def test_check_weights():
    assert check_weights(None, 3) is None
    w = np.array([1, 2, 3])
    out = check_weights(w, 3)
    assert out.dtype == np.float64
    out[0] = 7
    assert w[0] == 1
    assert check_weights(np.ones((3, 2)), 3).shape == (3, 2)
    with pytest.raises(ValueError, match="'weights' parameter of f must be an array of shape \\(3,\\) or \\(3, p\\)"
                                         ".*Got shape \\(4,\\)"):
        check_weights(np.ones(4), 3, owner="f")
    with pytest.raises(ValueError, match="must be an array of shape \\(3,\\), one row"):
        check_weights(np.ones((3, 2)), 3, allow_2d=False)
    with pytest.raises(ValueError, match="finite values. Got nan at index \\(1,\\)"):
        check_weights([1.0, np.nan, 2.0], 3)
    with pytest.raises(ValueError, match="non-negative. Got -1.0 at index \\(2,\\)"):
        check_weights([1.0, 0.0, -1.0], 3, nonnegative=True)
    with pytest.raises(TypeError, match="'w' parameter must be a numeric array. Got dtype object"):
        check_weights(np.array([1, "x", None], dtype=object), 3, name="w")
    assert np.isneginf(check_weights([0.0, -np.inf], 2, allow_neg_inf=True)[1])
    with pytest.raises(ValueError, match=r"\(or -inf\). Got inf"):
        check_weights([0.0, np.inf], 2, allow_neg_inf=True)


@pytest.mark.parametrize("value", [0, -1, -1.5, np.nan, np.inf, -np.inf])
def test_check_positive_rejects_values_with_value_error(value):
    with pytest.raises(InvalidValueError, match=f"'bandwidth' parameter of KDE must be a finite float > 0. "
                                                f"Got {value!r}"):
        check_positive(value, "bandwidth", "KDE")


@pytest.mark.parametrize("value", [True, np.True_, "1", "a", None, [1.0], 1 + 2j])
def test_check_positive_rejects_types_with_type_error(value):
    with pytest.raises(InvalidTypeError, match=f"'bandwidth' parameter of KDE must be a finite float > 0. "
                                               f"Got {describe(value)}".replace("(", "\\(").replace(")", "\\)")
                       .replace("[", "\\[").replace("+", "\\+")):
        check_positive(value, "bandwidth", "KDE")


def test_check_positive_accepts():
    assert check_positive(np.float32(0.5), "a") == 0.5 and isinstance(check_positive(2, "a"), float)
    assert check_positive(0, "a", allow_zero=True) == 0.0
    assert check_positive(np.inf, "a", allow_inf=True) == np.inf
    with pytest.raises(ValueError, match=">= 0. Got -1"):
        check_positive(-1, "a", allow_zero=True)


def test_check_int():
    assert check_int(np.int64(3), "n") == 3
    for bad in (1.0, True, "3", None):
        with pytest.raises(TypeError, match=f"'n' parameter of f must be an int. Got {bad!r}"):
            check_int(bad, "n", "f")
    with pytest.raises(ValueError, match=r"must be an int in \[1, 5\]. Got 6"):
        check_int(6, "n", low=1, high=5)
    with pytest.raises(ValueError, match=">= 1. Got 0"):
        check_int(0, "n", low=1)
    with pytest.raises(ValueError, match="<= 2. Got 3"):
        check_int(3, "n", high=2)


def test_describe():
    assert "shape (2, 3)" in describe(np.ones((2, 3)))
    assert describe(list(range(10))) == "a list of length 10"
    assert describe(3) == "3"


@pytest.mark.parametrize("text, nbytes", [
    (4096, 4096), (1.5e3, 1500), ("256MB", 256 * 10**6), ("512MiB", 512 * 2**20), ("1.5GiB", int(1.5 * 2**30)),
    ("2gb", 2 * 10**9), (" 10 KB ", 10**4), ("3KiB", 3072), ("1e3", 1000), ("7B", 7), ("1TB", 10**12),
])
def test_parse_memory_units(text, nbytes):
    assert O.parse_memory(text) == nbytes


@pytest.mark.parametrize("bad, exc", [("12XB", ValueError), ("", ValueError), ("MB", ValueError), (-5, ValueError),
                                      (0, ValueError), (float("nan"), ValueError), (float("inf"), ValueError),
                                      (True, TypeError), (None, TypeError), ([1], TypeError)])
def test_parse_memory_errors(bad, exc):
    with pytest.raises(exc, match="'memory' option"):
        O.parse_memory(bad)


def test_options_nesting_and_overrides():
    base = O.get_options()
    with O.options(memory="1MB", threads=1) as outer:
        assert outer.memory == 10**6 and outer.threads == 1
        with O.options(backend="numpy") as inner:
            assert (inner.memory, inner.threads, inner.backend) == (10**6, 1, "numpy")
            assert O.get_options(memory=4096).memory == 4096
            assert O.get_options().memory == 10**6  # a per-call override does not stick
        assert O.get_options().backend == base.backend
    assert O.get_options() == base
    try:
        with O.options(memory=4096):
            raise RuntimeError
    except RuntimeError:
        pass
    assert O.get_options() == base  # restored after an exception
    assert O.Options(threads=3).resolved_threads() == 3 and O.Options().resolved_threads() >= 1


@pytest.mark.parametrize("kwargs, exc, pattern", [
    ({"threads": -1}, ValueError, "The 'threads' option must be an int >= 0. Got -1. threads=0 uses all cores."),
    ({"threads": 1.5}, TypeError, "The 'threads' option must be an int >= 0. Got 1.5."),
    ({"threads": True}, TypeError, "'threads'.*Got True"),
    ({"backend": "cuda"}, ValueError, "The 'backend' option must be one of \\{'auto', 'fused', 'numpy', 'torch'\\}. "
                                      "Got 'cuda'."),
    ({"backend": 3}, TypeError, "'backend' option.*Got 3"),
    ({"progress": "yes"}, TypeError, "The 'progress' option must be one of \\{False, True\\}. Got 'yes'."),
    ({"memory": "lots"}, ValueError, "'memory' option"),
    ({"memory": [1]}, TypeError, "'memory' option"),
])
def test_options_errors(kwargs, exc, pattern):
    with pytest.raises(exc, match=pattern):
        with O.options(**kwargs):
            pass
    with pytest.raises(exc, match=pattern):
        O.get_options(**kwargs)


# --- the declarative checker ------------------------------------------------------------------------
def test_param_error_is_the_one_message_shape():
    err = param_error("x", "f", "a float > 0", -1)
    assert isinstance(err, InvalidValueError) and isinstance(err, ValueError)
    assert str(err) == "The 'x' parameter of f must be a float > 0. Got -1."
    err = param_error("x", None, "an int", "3", "type", hint="Pass 3, not '3'.")
    assert isinstance(err, InvalidTypeError) and isinstance(err, TypeError)
    assert str(err) == "The 'x' parameter must be an int. Got '3'. Pass 3, not '3'."
    assert str(param_error("X", "g", "a 2-D array", np.ones(3), shown="shape (3,)")) == \
        "The 'X' parameter of g must be a 2-D array. Got shape (3,)."
    assert str(param_error("--size", None, "an int >= 1", 0, noun="option")) == \
        "The '--size' option must be an int >= 1. Got 0."
    assert str(param_error("x", "f", "an int", np.int64(4))) == "The 'x' parameter of f must be an int. Got 4."
    err = kernel_bandwidth_error("mmd", 2.0)
    assert isinstance(err, InvalidValueError)
    assert str(err).startswith("The 'bandwidth' parameter of mmd must be None when 'kernel' is a Kernel object "
                               "(it carries its bandwidth). Got 2.0. ")


@pytest.mark.parametrize("constraint, text", [
    (Real(), "a finite float"),
    (Real(low=0, low_open=True), "a finite float > 0"),
    (Real(low=0), "a finite float >= 0"),
    (Real(high=1, high_open=True, finite=False), "a float < 1"),
    (Real(low=0, high=1, high_open=True), "a float in [0, 1)"),
    (Real(low=0, high=1e150, low_open=True), "a float in (0, 1e+150]"),
    (Integral(low=1), "an int >= 1"),
    (Integral(low=1, high=24), "an int in [1, 24]"),
    (Integral(), "an int"),
    (OneOf("scott", "silverman"), "one of {'scott', 'silverman'}"),
    (Real(low=0, low_open=True) | OneOf("scott") | None, "a finite float > 0, one of {'scott'} or None"),
    (None | Integral(low=1), "None or an int >= 1"),
    (InstanceOf(dict, "a dict") | None, "a dict or None"),
])
def test_constraint_descriptions(constraint, text):
    assert str(constraint) == text


@pytest.mark.parametrize("constraint, value, expected", [
    (Real(low=0, low_open=True), 2, 2.0), (Real(low=0, low_open=True), np.float32(0.5), 0.5),
    (Real(finite=False, low=0), np.inf, np.inf), (Integral(low=1), np.int64(3), 3),
    (OneOf("auto") | Integral(low=1), "auto", "auto"), (OneOf("auto") | Integral(low=1), 7, 7),
    (Real(low=0) | None, None, None), (OneOf(False, True), np.True_, True),
])
def test_check_param_accepts_and_converts(constraint, value, expected):
    out = check_param(value, "p", "f", constraint)
    assert out == expected and type(out) is type(expected)


@pytest.mark.parametrize("constraint, value", [
    (Real(low=0, low_open=True), "1"), (Real(), None), (Real(), True), (Real(), [1.0]), (Real(), 1j),
    (Integral(low=1), 2.0), (Integral(low=1), True), (Integral(low=1), "3"),
    (OneOf("scott", "silverman"), 1.0), (OneOf("scott", "silverman"), None), (OneOf(False, True), 1),
    (OneOf(False, True), "yes"), (Real(low=0) | OneOf("scott"), [0.5]), (InstanceOf(dict, "a dict"), []),
])
def test_wrong_type_is_a_type_error(constraint, value):
    with pytest.raises(InvalidTypeError, match=f"The 'p' parameter of f must be {str(constraint)[:8]}"):
        check_param(value, "p", "f", constraint)


@pytest.mark.parametrize("constraint, value", [
    (Real(low=0, low_open=True), 0), (Real(low=0, low_open=True), -1.5), (Real(), np.nan), (Real(), np.inf),
    (Real(low=0, high=1, high_open=True), 1.0), (Integral(low=1), 0), (Integral(low=1, high=24), 25),
    (Real(), 10 ** 400), (OneOf("scott", "silverman"), "wide"), (Real(low=0) | OneOf("scott"), -1),
    (Real(low=0) | OneOf("scott"), "silverman"), (Integral(low=1) | None, 0),
])
def test_wrong_value_is_a_value_error(constraint, value):
    with pytest.raises(InvalidValueError, match=f"The 'p' parameter of f must be {str(constraint)[:8]}.*Got"):
        check_param(value, "p", "f", constraint)


def test_check_params_reads_a_declared_table():
    table = {"n": Integral(low=1), "method": OneOf("a", "b"), "tol": Real(low=0, low_open=True) | None}
    assert check_params({"n": 3, "method": "b", "tol": None, "other": object()}, table, "Est") == \
        {"n": 3, "method": "b", "tol": None}
    with pytest.raises(InvalidValueError, match="The 'method' parameter of Est must be one of \\{'a', 'b'\\}. Got 'c'."):
        check_params({"n": 3, "method": "c", "tol": None}, table, "Est")
    with pytest.raises(InvalidTypeError, match="The 'tol' parameter of Est must be a finite float > 0 or None. Got '1'."):
        check_params({"n": 3, "method": "a", "tol": "1"}, table, "Est")
    assert isinstance(Real() | OneOf("x") | None, AnyOf) and len((Real() | OneOf("x") | None).constraints) == 3
