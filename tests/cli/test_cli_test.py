"""``kernelkit test mmd|hsic`` through the verb module (registered on a parser built here)."""

import argparse

import numpy as np
import pytest

from kernelkit.cli import _test
from kernelkit.exceptions import InputError
from kernelkit.stats import mmd_test


def _parser():
    p = argparse.ArgumentParser(prog="kernelkit")
    sub = p.add_subparsers(dest="command")
    _test.register(sub)
    return p


def _run(argv):
    args = _parser().parse_args(argv)
    return args.run(args)


def _files(tmp_path, shift=0.0, m=60):
    rng = np.random.default_rng(0)
    A, B = rng.standard_normal((50, 2)), rng.standard_normal((m, 2)) + shift
    a, b = tmp_path / "a.csv", tmp_path / "b.npy"
    np.savetxt(a, A, delimiter=",", header="u,v", comments="")
    np.save(b, B)
    return A, B, str(a), str(b)


def test_mmd_report_matches_library_and_plot(tmp_path, capsys):
    A, B, a, b = _files(tmp_path, shift=0.8)
    png = tmp_path / "null.png"
    rc = _run(["test", "mmd", a, b, "--permutations", "99", "--seed", "3", "--plot", str(png)])
    assert rc == 0
    out = capsys.readouterr().out
    ref = mmd_test(A, B, n_permutations=99, random_state=3)
    assert f"statistic {ref.statistic:.6g}, p-value {ref.pvalue:.4g}" in out
    assert "decision: reject H0" in out
    assert png.stat().st_size > 1000


def test_mmd_options_and_quiet(tmp_path, capsys):
    A, B, a, b = _files(tmp_path, m=50)
    rc = _run(["test", "mmd", a, b, "--method", "wild", "--kernel", "laplace", "--bandwidth", "0.7",
               "--unbiased", "--permutations", "49", "--quiet"])
    assert rc == 0 and capsys.readouterr().out == ""


@pytest.mark.parametrize("argv, option", [
    (["--alpha", "1.5"], "--alpha"), (["--permutations", "0"], "--permutations"), (["--seed", "x"], "--seed"),
    (["--bandwidth", "-1"], "--bandwidth"), (["--kernel", "nosuchkernel"], "--kernel"), (["--method", "boot"], "--method"),
])
def test_mmd_bad_options(tmp_path, argv, option):
    _, _, a, b = _files(tmp_path)
    with pytest.raises(InputError, match=option):
        _run(["test", "mmd", a, b, *argv])


def test_mmd_different_columns(tmp_path):
    _, _, a, _ = _files(tmp_path)
    c = tmp_path / "c.npy"
    np.save(c, np.zeros((10, 3)))
    with pytest.raises(InputError, match="columns"):
        _run(["test", "mmd", a, str(c)])


def test_hsic_verb_runs_the_independence_test(tmp_path, capsys):
    pytest.importorskip("kernelkit.stats._hsic")
    rng = np.random.default_rng(1)
    X = rng.standard_normal((80, 1))
    Y = X ** 2 + 0.1 * rng.standard_normal((80, 1))
    x, y = tmp_path / "x.npy", tmp_path / "y.npy"
    np.save(x, X)
    np.save(y, Y)
    assert _run(["test", "hsic", str(x), str(y), "--permutations", "99"]) == 0
    assert "decision: reject H0" in capsys.readouterr().out
    np.save(y, Y[:70])
    with pytest.raises(InputError, match="rows"):
        _run(["test", "hsic", str(x), str(y)])


def test_demo_step_prints(capsys):
    _test.demo_step(argparse.Namespace(seed=0, quick=True))
    out = capsys.readouterr().out
    assert "p-value" in out and "reject H0" in out


def test_test_without_kind_prints_help(capsys):
    assert _run(["test"]) == 2
    assert "mmd" in capsys.readouterr().out
