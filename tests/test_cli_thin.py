"""``kernelkit thin``: files in, coreset out, MMD report, exit code 2 on bad input."""

import os

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


@pytest.mark.parametrize("extra", [["--size", "0"], ["--size", "601"], ["--kernel", "nope"],
                                   ["--bandwidth", "-1"], ["--delta", "2"]])
def test_thin_bad_input_exit_2(tmp_path, capsys, extra):
    _, path = _data(tmp_path)
    rc = main(["thin", str(path), "--out", str(tmp_path / "o.csv")] + extra)
    assert rc == 2
    assert "error" in capsys.readouterr().err


def test_thin_missing_file_and_nan(tmp_path, capsys):
    assert main(["thin", str(tmp_path / "none.csv"), "--out", str(tmp_path / "o.csv")]) == 2
    bad = tmp_path / "bad.csv"
    bad.write_text("1,2\nnan,3\n4,5\n")
    assert main(["thin", str(bad), "--out", str(tmp_path / "o.csv")]) == 2


@pytest.mark.skipif(not os.path.isdir(os.path.join(SHARED_DATA, "posteriordb")), reason="no shared data")
def test_thin_posteriordb(tmp_path, capsys):
    path = os.path.join(SHARED_DATA, "posteriordb", "arK-arK.json.zip")
    out = tmp_path / "core.csv"
    assert main(["thin", path, "--size", "50", "--method", "compress++", "--out", str(out), "--seed", "0"]) == 0
    with open(out) as fh:
        assert fh.readline().startswith("alpha,")
    assert "10,000 points x 7 columns" in capsys.readouterr().out
