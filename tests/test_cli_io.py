"""``kernelkit.cli._io.read_points``: delimiters, headers, non-numeric columns, --columns, clear errors."""

import json
import sys

import numpy as np
import pytest

from kernelkit.cli._io import (Points, parse_columns, read_points, require_matplotlib, resolve_columns,
                               sniff_delimiter)
from kernelkit.exceptions import InvalidValueError

X3 = np.array([[1.0, 2.5, -3.0], [4.0, 5.0, 6.25], [7.0, 8.0, 9.0]])


def _table(tmp_path, text, name="t.csv"):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def _rows(arr, sep, labels=None):
    lines = []
    for i, row in enumerate(arr):
        fields = [repr(float(v)) for v in row] + ([labels[i]] if labels else [])
        lines.append(sep.join(fields))
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize("sep", [",", ";", "\t"], ids=["comma", "semicolon", "tab"])
@pytest.mark.parametrize("header", [True, False], ids=["header", "no-header"])
def test_delimiters_and_header(tmp_path, sep, header):
    text = (sep.join("abc") + "\n" if header else "") + _rows(X3, sep)
    got = read_points(_table(tmp_path, text))
    assert isinstance(got, Points)
    np.testing.assert_array_equal(got.data, X3)
    assert got.data.dtype == np.float64
    assert got.columns == (list("abc") if header else None)
    assert got.ignored == []


def test_sniff_delimiter_rules():
    assert sniff_delimiter(["a;b", "1,5;2,5", "3,1;4"]) == ";"  # decimal commas: semicolon wins
    assert sniff_delimiter(["a,b,note", "1,2,x;y", "3,4,z"]) == ","  # a semicolon inside one field
    assert sniff_delimiter(["a\tb c", "1\t2"]) == "\t"
    assert sniff_delimiter(["x", "1", "2"]) == ","  # one column
    assert sniff_delimiter(['a,b,"c;d;e"', '1,2,"x;y"']) == ","  # quoted fields are one field


@pytest.mark.parametrize("sep", [",", ";", "\t"], ids=["comma", "semicolon", "tab"])
def test_label_column_is_ignored_and_reported(tmp_path, sep):
    labels = ["setosa", '"vir, gin; ica"', "versicolor"]
    text = sep.join(["a", "b", "c", "species"]) + "\n" + _rows(X3, sep, labels)
    got = read_points(_table(tmp_path, text))
    np.testing.assert_array_equal(got.data, X3)
    assert got.columns == ["a", "b", "c"] and got.ignored == ["species"]


def test_label_column_first_and_without_header(tmp_path):
    path = _table(tmp_path, "id,x,y\nP01,1,2\nP02,3,4\n")
    got = read_points(path)
    assert got.columns == ["x", "y"] and got.ignored == ["id"]
    got = read_points(_table(tmp_path, "1,2,setosa\n3,4,virginica\n", "n.csv"))
    np.testing.assert_array_equal(got.data, [[1, 2], [3, 4]])
    assert got.columns is None and got.ignored == ["column 2"]


def test_columns_by_name_index_and_order(tmp_path):
    path = _table(tmp_path, "a,b,c,species\n" + _rows(X3, ",", ["s", "t", "u"]))
    for spec in ["c,a", "2,0", "c,0", ["c", 0], ("c", "a")]:
        got = read_points(path, columns=spec)
        np.testing.assert_array_equal(got.data, X3[:, [2, 0]])
        assert got.columns == ["c", "a"] and got.ignored == []


def test_numeric_looking_names_are_names_when_in_the_header(tmp_path):
    path = _table(tmp_path, "x,2015,2016\n0.5,1,2\n0.25,3,4\n")
    got = read_points(path, columns="2015")  # the name 2015, not index 2015
    assert got.columns == ["2015"] and got.data.ravel().tolist() == [1, 3]
    got = read_points(path, columns="2")  # no column named 2: index 2
    assert got.columns == ["2016"] and got.data.ravel().tolist() == [2, 4]


def test_numpy_savetxt_header_bom_and_comments(tmp_path):
    path = tmp_path / "h.csv"
    np.savetxt(path, X3, delimiter=",", header="a,b,c")  # "# a,b,c"
    got = read_points(path)
    assert got.columns == ["a", "b", "c"]
    np.testing.assert_array_equal(got.data, X3)
    path = tmp_path / "bom.csv"
    path.write_bytes(b"\xef\xbb\xbfx;y\r\n1;2\r\n\r\n# a comment\r\n3;4\r\n")
    got = read_points(path)
    assert got.columns == ["x", "y"]
    np.testing.assert_array_equal(got.data, [[1, 2], [3, 4]])


@pytest.mark.parametrize("columns", [None, "a,b"])
def test_missing_cell_names_line_and_column(tmp_path, columns):
    path = _table(tmp_path, "a,b,label\n1,2,x\n\n3,,y\n5,6,z\n")
    with pytest.raises(InvalidValueError) as info:
        read_points(path, columns=columns)
    msg = str(info.value)
    assert "line 4" in msg and "column 'b' (index 1)" in msg and "empty cell" in msg
    assert repr(str(path)) in msg
    assert read_points(path, columns="a").data.ravel().tolist() == [1, 3, 5]  # the other column is complete


def test_text_in_a_numeric_column(tmp_path):
    rows = "".join(f"{i},{i}\n" for i in range(5)) + "7,NA\n"
    path = _table(tmp_path, "a,b\n" + rows)
    with pytest.raises(InvalidValueError, match=r"line 7, column 'b' \(index 1\): 'NA' is not a number"):
        read_points(path)
    with pytest.raises(InvalidValueError, match=r"line 1, column index 2: 'x' is not a number"):
        read_points(_table(tmp_path, "1,2,x\n", "n.csv"), columns="2")


def test_selecting_a_label_column_is_an_error(tmp_path):
    path = _table(tmp_path, "a,b,species\n1,2,setosa\n")
    with pytest.raises(InvalidValueError, match=r"line 2, column 'species' \(index 2\): 'setosa' is not a number"):
        read_points(path, columns="a,species")


@pytest.mark.parametrize("spec, got", [("a,z", "'z'"), ("5", "'5'"), ("-1", "'-1'"), ([0, 7], "7")])
def test_bad_column_lists_the_available_ones(tmp_path, spec, got):
    path = _table(tmp_path, "a,b,species\n1,2,setosa\n")
    with pytest.raises(InvalidValueError) as info:
        read_points(path, columns=spec)
    msg = str(info.value)
    assert msg.startswith("The '--columns' option must name columns of DATA")
    assert "names a, b, species or 0-based indices 0 to 2" in msg and msg.endswith(f"Got {got}.")


@pytest.mark.parametrize("text", ["a,,b", "", " , "])
def test_parse_columns_rejects_empty_tokens(text):
    with pytest.raises(InvalidValueError, match="comma-separated column names or 0-based indices"):
        parse_columns(text)
    assert parse_columns(" a , 2 ") == ["a", "2"] and parse_columns(None) is None


def test_resolve_columns_twice_and_long_lists():
    with pytest.raises(InvalidValueError, match=r"each column once. Got 'a' \(index 0\) twice"):
        resolve_columns("a,0", ["a", "b"], 2, "DATA")
    names = [f"c{i}" for i in range(50)]
    with pytest.raises(InvalidValueError, match=r"c19, \.\.\. \(50 in all\) or 0-based indices 0 to 49"):
        resolve_columns("nope", names, 50, "DATA")


def test_npy_and_npz_take_indices(tmp_path):
    X = np.arange(20.0).reshape(5, 4).astype(np.float32)
    np.save(tmp_path / "x.npy", X)
    got = read_points(tmp_path / "x.npy", columns="3,1")
    np.testing.assert_array_equal(got.data, X[:, [3, 1]])
    assert got.data.dtype == np.float32 and got.columns is None and got.ignored == []
    with pytest.raises(InvalidValueError, match=r"indices 0 to 3 \(it has no column names\). Got 'a'"):
        read_points(tmp_path / "x.npy", columns="a")
    np.savez(tmp_path / "z.npz", other=np.zeros(3), data=X)
    got = read_points(f"{tmp_path / 'z.npz'}:data", columns=[0])
    np.testing.assert_array_equal(got.data, X[:, :1])
    np.save(tmp_path / "v.npy", np.arange(4.0))  # 1-D: one column
    assert read_points(tmp_path / "v.npy", columns="0").data.shape == (4, 1)


def test_posteriordb_columns(tmp_path):
    chains = [{"mu": [0.0, 1.0], "tau": [2.0, 3.0], "theta[1]": [4.0, 5.0]},
              {"mu": [6.0, 7.0], "tau": [8.0, 9.0], "theta[1]": [10.0, 11.0]}]
    path = tmp_path / "draws.json"
    path.write_text(json.dumps(chains))
    got = read_points(path, columns="theta[1],0")
    assert got.columns == ["theta[1]", "mu"]
    np.testing.assert_array_equal(got.data, [[4, 0], [5, 1], [10, 6], [11, 7]])
    with pytest.raises(InvalidValueError, match=r"names mu, tau, theta\[1\] or 0-based indices 0 to 2. Got 'sigma'"):
        read_points(path, columns="sigma")


def test_parquet_columns(tmp_path):
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    path = tmp_path / "t.parquet"
    pq.write_table(pa.table({"a": [1.0, 2.0], "n": [3, 4], "label": ["x", "y"]}), path)
    got = read_points(path)
    assert got.columns == ["a", "n"] and got.ignored == ["label"]
    np.testing.assert_array_equal(got.data, [[1, 3], [2, 4]])
    assert read_points(path, columns="1").columns == ["n"]
    with pytest.raises(InvalidValueError, match=r"column 'label' \(index 2\) holds string, not numbers"):
        read_points(path, columns="label")
    pq.write_table(pa.table({"a": [1.0, None]}), path)
    with pytest.raises(InvalidValueError, match=r"row 2, column 'a' \(index 0\): missing value"):
        read_points(path)


@pytest.mark.parametrize("text, message", [
    ("", "is empty"), ("\n# only a comment\n", "is empty"), ("a,b\n", "has a header but no rows"),
    ("name,kind\nfoo,bar\n", "has no numeric column"),
])
def test_degenerate_tables(tmp_path, text, message):
    with pytest.raises(InvalidValueError, match=message):
        read_points(_table(tmp_path, text))


def test_require_matplotlib(monkeypatch):
    require_matplotlib()  # installed in the test environment
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    with pytest.raises(InvalidValueError, match=r"^--plot needs matplotlib: pip install 'kernelkit\[plot\]'$"):
        require_matplotlib()
