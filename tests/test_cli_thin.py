"""``kernelkit thin``: files in, coreset out, MMD report, exit code 2 on bad input."""

import os
import sys

import numpy as np
import pytest

from kernelkit.cli import main

SHARED_DATA = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data")


def _data(tmp_path, n=600, d=2):
    X = np.random.default_rng(0).standard_normal((n, d)) * [1.0, 5.0][:d] + 3.0
    path = tmp_path / "x.csv"
    np.savetxt(path, X, delimiter=",", header="a,b"[: 2 * d - 1], comments="")
    return X, path


def test_thin_csv(tmp_path, capsys):
    X, path = _data(tmp_path)
    out, idx_out, png = tmp_path / "core.csv", tmp_path / "idx.csv", tmp_path / "p.png"
    rc = main(["thin", str(path), "--size", "24", "--out", str(out), "--indices-out", str(idx_out),
               "--plot", str(png), "--seed", "1"])
    assert rc == 0
    text = capsys.readouterr().out
    assert "median heuristic on the standardised data" in text
    assert "standard thinning" in text
    core = np.loadtxt(out, delimiter=",", skiprows=1)
    idx = np.loadtxt(idx_out, delimiter=",", skiprows=1).astype(int)
    assert core.shape == (24, 2)
    np.testing.assert_allclose(core, X[idx])
    assert png.stat().st_size > 1000


@pytest.mark.parametrize("method", ["compress++", "standard", "herding", "kt+"])
def test_thin_methods_quiet(tmp_path, capsys, method):
    _, path = _data(tmp_path)
    out = tmp_path / "core.npy"
    rc = main(["thin", str(path), "--method", method, "--g", "1", "--kernel", "matern32", "--bandwidth", "1.0",
               "--out", str(out), "--quiet", "--seed", "0"])
    assert rc == 0
    assert capsys.readouterr().out == ""
    assert np.load(out).shape == (24, 2)  # default size sqrt(600) = 24


@pytest.mark.parametrize("extra, needle", [
    (["--size", "0"], "The '--size' option must be an int in [1, 600]. Got 0. DATA has 600 rows."),
    (["--size", "601"], "The '--size' option must be an int in [1, 600]. Got 601."),
    (["--kernel", "nope"], ["The '--kernel' option must be one of {", "'gaussian'", "Got 'nope'."]),
    (["--bandwidth", "-1"], "The '--bandwidth' option must be a finite float > 0. Got -1.0."),
    (["--delta", "2"], "The 'delta' parameter of kernel_thin must be a float in (0, 1]. Got 2.0."),
    (["--g", "-1"], "The 'g' parameter of kernel_thin must be an int in [0, 20]. Got -1."),
])
def test_thin_bad_input_exit_2(tmp_path, capsys, extra, needle):
    _, path = _data(tmp_path)
    out = tmp_path / "o.csv"
    rc = main(["thin", str(path), "--out", str(out)] + extra)
    assert rc == 2
    err = _error(capsys)
    assert all(part in err for part in ([needle] if isinstance(needle, str) else needle))
    assert not out.exists()


def test_thin_missing_file_and_nan(tmp_path, capsys):
    assert main(["thin", str(tmp_path / "none.csv"), "--out", str(tmp_path / "o.csv")]) == 2
    err = _error(capsys)
    assert "DATA: no such file" in err and "none.csv" in err
    bad = tmp_path / "bad.csv"
    bad.write_text("1,2\nnan,3\n4,5\n")
    assert main(["thin", str(bad), "--out", str(tmp_path / "o.csv")]) == 2
    assert "contains NaN or infinite values" in _error(capsys)


@pytest.mark.skipif(not os.path.isdir(os.path.join(SHARED_DATA, "posteriordb")), reason="no shared data")
def test_thin_posteriordb(tmp_path, capsys):
    path = os.path.join(SHARED_DATA, "posteriordb", "arK-arK.json.zip")
    out = tmp_path / "core.csv"
    assert main(["thin", path, "--size", "50", "--method", "compress++", "--out", str(out), "--seed", "0"]) == 0
    with open(out) as fh:
        assert fh.readline().startswith("alpha,")
    assert "10,000 points x 7 columns" in capsys.readouterr().out


def _error(capsys):
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("kernelkit thin: error:")
    return err


def _labelled(tmp_path, n=400, d=5, sep=";"):
    X = np.random.default_rng(5).standard_normal((n, d)) + np.arange(d)
    names = [f"x{j}" for j in range(d)]
    path = tmp_path / "labelled.csv"
    path.write_text(sep.join(["id"] + names + ["species"]) + "\n"
                    + "".join(sep.join([f"r{i}"] + [f"{v:.17g}" for v in row] + [f"sp{i % 4}"]) + "\n"
                              for i, row in enumerate(X)))
    return X, names, path


def test_thin_label_columns_ignored_and_reported(tmp_path, capsys):
    X, names, path = _labelled(tmp_path)
    out, idx_out = tmp_path / "core.csv", tmp_path / "idx.csv"
    assert main(["thin", str(path), "--size", "20", "--out", str(out), "--indices-out", str(idx_out),
                 "--seed", "0", "--no-mmd"]) == 0
    text = capsys.readouterr().out
    assert "400 points x 5 columns" in text and "ignored non-numeric columns: id, species" in text
    with open(out) as fh:
        assert fh.readline().strip() == ",".join(names)
    idx = np.loadtxt(idx_out, skiprows=1).astype(int)
    np.testing.assert_allclose(np.loadtxt(out, delimiter=",", skiprows=1), X[idx])


def test_thin_columns_header_of_the_coreset(tmp_path, capsys):
    X, _, path = _labelled(tmp_path, sep="\t")
    out, idx_out = tmp_path / "core.csv", tmp_path / "idx.csv"
    assert main(["thin", str(path), "--columns", "x3,1", "--size", "16", "--out", str(out),
                 "--indices-out", str(idx_out), "--seed", "0", "--quiet"]) == 0
    assert capsys.readouterr().out == ""
    with open(out) as fh:
        assert fh.readline().strip() == "x3,x0"  # index 1 of the file is x0 (column 0 is id)
    idx = np.loadtxt(idx_out, skiprows=1).astype(int)
    np.testing.assert_allclose(np.loadtxt(out, delimiter=",", skiprows=1), X[idx][:, [3, 0]])


@pytest.mark.parametrize("columns, needle", [
    ("x1,nope", "names id, x0, x1, x2, x3, x4, species or 0-based indices 0 to 6. Got 'nope'."),
    ("x1,species", "line 2, column 'species' (index 6): 'sp0' is not a number"),
    ("x1,,x2", "comma-separated column names or 0-based indices"),
])
def test_thin_bad_columns(tmp_path, capsys, columns, needle):
    _, _, path = _labelled(tmp_path, n=50)
    out = tmp_path / "core.csv"
    assert main(["thin", str(path), "--columns", columns, "--out", str(out)]) == 2
    assert needle in _error(capsys)
    assert not out.exists()


def test_thin_missing_cell_names_line_and_column(tmp_path, capsys):
    path = tmp_path / "gap.csv"
    path.write_text("a,b\n1,2\n3,4\n5,\n7,8\n")
    assert main(["thin", str(path), "--out", str(tmp_path / "o.csv")]) == 2
    err = _error(capsys)
    assert "line 4, column 'b' (index 1): empty cell" in err


@pytest.mark.parametrize("d", [1, 2, 5])
def test_thin_plot_written(tmp_path, capsys, d):
    X = np.random.default_rng(6).standard_normal((300, d))
    np.save(tmp_path / "x.npy", X)
    png = tmp_path / "p.png"
    assert main(["thin", str(tmp_path / "x.npy"), "--out", str(tmp_path / "c.npy"), "--plot", str(png),
                 "--seed", "0", "--no-mmd"]) == 0
    assert png.stat().st_size > 1000
    text = capsys.readouterr().out
    shown = ", ".join(f"column {j}" for j in range(min(d, 4)))
    assert f"wrote {png} ({shown}" in text
    assert ("--plot-dims chooses" in text) == (d > 4)


def test_thin_plot_dims(tmp_path, capsys):
    _, _, path = _labelled(tmp_path, n=200)
    png = tmp_path / "p.png"
    assert main(["thin", str(path), "--out", str(tmp_path / "c.csv"), "--plot", str(png), "--plot-dims",
                 "x4,0,x2", "--seed", "0", "--no-mmd"]) == 0
    assert png.stat().st_size > 1000
    assert f"wrote {png} (x4, x0, x2; --plot-dims chooses)" in capsys.readouterr().out


@pytest.mark.parametrize("extra, needle", [
    (["--plot-dims", "x1,species"], "The '--plot-dims' option must name columns of DATA"),
    (["--plot-dims", "7"], "names x0, x1, x2, x3, x4 or 0-based indices 0 to 4. Got '7'."),
    (["--columns", "x1,x2", "--plot-dims", "x3"], "after --columns): names x1, x2 or 0-based indices 0 to 1"),
])
def test_thin_bad_plot_dims(tmp_path, capsys, extra, needle):
    _, _, path = _labelled(tmp_path, n=50)
    out, png = tmp_path / "c.csv", tmp_path / "p.png"
    assert main(["thin", str(path), "--out", str(out), "--plot", str(png)] + extra) == 2
    assert needle in _error(capsys)
    assert not out.exists() and not png.exists()


def test_thin_plot_dims_needs_plot(tmp_path, capsys):
    _, path = _data(tmp_path)
    assert main(["thin", str(path), "--out", str(tmp_path / "c.csv"), "--plot-dims", "a"]) == 2
    assert "The '--plot-dims' option must be given with --plot PNG. Got --plot-dims 'a' without --plot." \
        in _error(capsys)


def test_thin_plot_without_matplotlib(tmp_path, capsys, monkeypatch):
    _, path = _data(tmp_path)
    out, png = tmp_path / "core.csv", tmp_path / "thin.png"
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    assert main(["thin", str(path), "--out", str(out), "--plot", str(png)]) == 2
    res = capsys.readouterr()
    assert res.out == ""  # stopped before any work
    assert res.err.strip() == "kernelkit thin: error: --plot needs matplotlib: pip install 'kernelkit[plot]'"
    assert not out.exists() and not png.exists()


def test_thin_default_method_says_which_ran(tmp_path, capsys, monkeypatch):
    import kernelkit.compress as kc
    X, path = _data(tmp_path)
    assert main(["thin", str(path), "--size", "24", "--out", str(tmp_path / "c.csv"), "--seed", "1",
                 "--no-mmd"]) == 0
    text = capsys.readouterr().out
    assert "kt: 24 points" in text and "(auto: n^2 (d + 10) =" in text and "so kt" in text
    monkeypatch.setattr(kc, "AUTO_KT_WORK", 1.0)
    assert main(["thin", str(path), "--size", "24", "--out", str(tmp_path / "c.csv"), "--seed", "1",
                 "--no-mmd"]) == 0
    text = capsys.readouterr().out
    assert "compress++: 24 points" in text and "so compress++" in text
