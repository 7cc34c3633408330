"""``kernelkit kde``: files in, log densities out, report, plots, exit code 2 on bad input."""

import argparse
import subprocess
import sys

import numpy as np
import pytest

from kernelkit.cli import main
from kernelkit.density import KernelDensity


def _write(tmp_path, name, arr, header=None):
    path = tmp_path / name
    if name.endswith(".npy"):
        np.save(path, arr)
    else:
        np.savetxt(path, arr, delimiter=",", header=header or "", comments="")
    return path


def test_kde_csv_query_matches_estimator(tmp_path, capsys):
    rng = np.random.default_rng(0)
    X, Q = rng.standard_normal((200, 2)), rng.standard_normal((17, 2))
    data, query = _write(tmp_path, "x.csv", X, "a,b"), _write(tmp_path, "q.csv", Q, "a,b")
    out, png = tmp_path / "logp.csv", tmp_path / "p.png"
    rc = main(["kde", str(data), "--query", str(query), "--kernel", "laplace", "--bandwidth", "0.5",
               "--out", str(out), "--plot", str(png), "--quiet"])
    assert rc == 0
    assert capsys.readouterr().out == ""
    assert out.read_text().splitlines()[0] == "log_density"
    got = np.loadtxt(out, skiprows=1)
    ref = KernelDensity(kernel="laplace", bandwidth=0.5).fit(X).score_samples(Q)
    np.testing.assert_allclose(got, ref, rtol=1e-14)
    assert png.stat().st_size > 1000


@pytest.mark.parametrize("d", [1, 5])
def test_kde_self_scoring_npy_report_and_plot(tmp_path, capsys, d):
    X = np.random.default_rng(1).standard_normal((150, d))
    data = _write(tmp_path, "x.npy", X)
    out, png = tmp_path / "logp.npy", tmp_path / "p.png"
    rc = main(["kde", str(data), "--bandwidth", "cv", "--out", str(out), "--plot", str(png)])
    assert rc == 0
    text = capsys.readouterr().out
    assert f"150 points x {d} columns" in text and "bandwidth" in text and "cv" in text
    kde = KernelDensity(bandwidth="cv").fit(X)
    assert f"{kde.bandwidth_:.4g}" in text
    np.testing.assert_allclose(np.load(out).ravel(), kde.score_samples(X), rtol=1e-14)
    assert png.stat().st_size > 1000


@pytest.mark.parametrize("args, needle", [
    (["--bandwidth", "-1"], "The '--bandwidth' option must be a float > 0 or one of scott, silverman, cv, lscv, isj, plugin. Got '-1'."),
    (["--bandwidth", "wide"], "The '--bandwidth' option must be a float > 0 or one of scott, silverman, cv, lscv, isj, plugin. "
                              "Got 'wide'."),
    (["--bandwidth", "0.5", "--kernel", "laplace", "--columns", "0"], None),  # control: no error
    (["--kernel", "nope"], "The '--kernel' option must be one of {"),
    (["--kernel", "polynomial"], "Got 'polynomial'."),
    (["--query", "MISSING.csv"], "--query: no such file"),
])
def test_kde_errors_one_line_exit_2(tmp_path, capsys, args, needle):
    data = _write(tmp_path, "x.csv", np.random.default_rng(2).standard_normal((20, 2)))
    args = [a.replace("MISSING", str(tmp_path / "missing")) for a in args]
    rc = main(["kde", str(data), *args, "--quiet"])
    if needle is None:
        assert rc == 0
        return
    assert rc == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("kernelkit kde: error:") and needle in err


def test_kde_query_columns_mismatch_subprocess(tmp_path):
    data = _write(tmp_path, "x.csv", np.zeros((5, 2)) + np.arange(5)[:, None])
    query = _write(tmp_path, "q.csv", np.zeros((3, 3)))
    res = subprocess.run([sys.executable, "-c", "import sys; from kernelkit.cli import main; sys.exit(main())", "kde", str(data), "--query", str(query)],
                         capture_output=True, text=True)
    assert res.returncode == 2
    assert "Traceback" not in res.stderr and len(res.stderr.strip().splitlines()) == 1
    assert "The '--query' option must be a table with 2 columns like DATA. Got 3 columns." in res.stderr


def test_demo_step(capsys):
    from kernelkit.cli._kde import demo_step
    demo_step(argparse.Namespace(seed=0, quick=True))
    text = capsys.readouterr().out
    assert "cv bandwidth" in text and "held-out" in text and "gaussian_kde" in text


def _one_line_error(capsys, verb="kde"):
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith(f"kernelkit {verb}: error:")
    return err


def test_kde_label_column_ignored_and_columns_shared_with_query(tmp_path, capsys):
    rng = np.random.default_rng(3)
    X, Q = rng.standard_normal((80, 3)), rng.standard_normal((6, 3))
    data = tmp_path / "x.csv"
    data.write_text("a;b;c;species\n" + "".join(f"{a:.17g};{b:.17g};{c:.17g};sp{i % 3}\n"
                                                  for i, (a, b, c) in enumerate(X)))
    query = tmp_path / "q.csv"  # other column order and another label column: selected by name
    query.write_text("id\tc\ta\tb\n" + "".join(f"q{i}\t{c:.17g}\t{a:.17g}\t{b:.17g}\n"
                                                for i, (a, b, c) in enumerate(Q)))
    out = tmp_path / "logp.npy"
    assert main(["kde", str(data), "--query", str(query), "--columns", "a,c", "--bandwidth", "0.7",
                 "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "80 points x 2 columns" in text
    assert "DATA: ignored non-numeric columns" not in text  # --columns given: nothing is "ignored"
    ref = KernelDensity(bandwidth=0.7).fit(X[:, [0, 2]]).score_samples(Q[:, [0, 2]])
    np.testing.assert_allclose(np.load(out).ravel(), ref, rtol=1e-14)
    assert main(["kde", str(data), "--bandwidth", "0.7", "--out", str(out)]) == 0
    assert "DATA: ignored non-numeric columns: species" in capsys.readouterr().out
    np.testing.assert_allclose(np.load(out).ravel(), KernelDensity(bandwidth=0.7).fit(X).score_samples(X),
                               rtol=1e-14)


def test_kde_bad_columns_message(tmp_path, capsys):
    data = _write(tmp_path, "x.csv", np.ones((4, 2)), "a,b")
    assert main(["kde", str(data), "--columns", "a,z"]) == 2
    err = _one_line_error(capsys)
    assert "'--columns'" in err and "names a, b or 0-based indices 0 to 1" in err and "Got 'z'" in err


def test_kde_plot_without_matplotlib(tmp_path, capsys, monkeypatch):
    data = _write(tmp_path, "x.csv", np.random.default_rng(4).standard_normal((30, 2)), "a,b")
    out, png = tmp_path / "logp.csv", tmp_path / "p.png"
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    assert main(["kde", str(data), "--out", str(out), "--plot", str(png)]) == 2
    err = _one_line_error(capsys)
    assert err.endswith("--plot needs matplotlib: pip install 'kernelkit[plot]'")
    assert not out.exists() and not png.exists()


# --- --plot through grid_kde, --plot-only (issue 17) ---------------------------------------------------------

@pytest.mark.parametrize("d", [1, 2])
def test_kde_plot_only_large_data_never_scores_rows(tmp_path, capsys, monkeypatch, d):
    rng = np.random.default_rng(5)
    X = rng.standard_normal((300_000, d))
    data, png = _write(tmp_path, "x.npy", X), tmp_path / "p.png"

    def refuse(*a, **k):
        raise AssertionError("--plot-only must not score rows")
    monkeypatch.setattr(KernelDensity, "score_samples", refuse)
    assert main(["kde", str(data), "--plot", str(png), "--plot-only"]) == 0
    text = capsys.readouterr().out
    assert "300,000 points" in text and "wrote" in text and "mean log density" not in text
    assert png.stat().st_size > 10_000


def test_kde_plot_density_is_grid_kde_close_to_exact():
    from kernelkit.cli._kde import _plot_grid
    rng = np.random.default_rng(6)
    for d, kernel in ((1, "gaussian"), (2, "gaussian"), (1, "epanechnikov")):
        X = rng.standard_normal((4000, d))
        kde = KernelDensity(kernel=kernel).fit(X)
        axes, dens = _plot_grid(kde, X, kernel)
        if d == 1:
            pts = axes[::37, None]
            sub = dens[::37]
        else:
            G = np.meshgrid(axes[0][::23], axes[1][::23], indexing="ij")
            pts = np.c_[G[0].ravel(), G[1].ravel()]
            sub = dens[::23, ::23].ravel()
        exact = np.exp(kde.score_samples(pts))
        assert np.max(np.abs(sub - exact)) / exact.max() < 1e-3
        first = axes if d == 1 else axes[0]
        assert first.min() == pytest.approx(X[:, 0].min() - 3 * kde.bandwidth_)   # the box: data range + 3 h


def test_kde_plot_hdr_levels_hold_their_mass():
    from kernelkit.cli._kde import _hdr_levels
    g = np.linspace(-6, 6, 301)
    GX, GY = np.meshgrid(g, g, indexing="ij")
    dens = np.exp(-0.5 * (GX ** 2 + GY ** 2))
    masses, levels = _hdr_levels(dens)
    assert masses == [0.99, 0.95, 0.9, 0.75, 0.5, 0.25, 0.1] and np.all(np.diff(levels) > 0)
    for m, lv in zip(masses, levels):
        inside = dens[dens >= lv].sum() / dens.sum()
        assert abs(inside - m) < 0.01
        # a standard 2-D normal: the region of mass m is the disc of radius^2 = -2 log(1 - m)
        assert abs(-2 * np.log(lv) - (-2 * np.log(1 - m))) < 0.15


@pytest.mark.parametrize("extra, needle", [
    ([], "The '--plot-only' option must be used with --plot and without --out, --query, --diagnose. Got no --plot."),
    (["--plot", "P.png", "--out", "o.npy"], "Got --out as well."),
    (["--plot", "P.png", "--diagnose"], "Got --diagnose as well."),
])
def test_kde_plot_only_misuse_one_line_errors(tmp_path, capsys, extra, needle):
    data = _write(tmp_path, "x.npy", np.random.default_rng(7).standard_normal((50, 2)))
    extra = [str(tmp_path / e) if e.endswith((".png", ".npy")) else e for e in extra]
    assert main(["kde", str(data), "--plot-only", *extra]) == 2
    assert needle in _one_line_error(capsys)


def test_kde_plot_only_refuses_three_columns(tmp_path, capsys):
    data = _write(tmp_path, "x.npy", np.random.default_rng(8).standard_normal((50, 3)))
    assert main(["kde", str(data), "--plot", str(tmp_path / "p.png"), "--plot-only"]) == 2
    assert "'--plot-only' option must be used with 1-D or 2-D data" in _one_line_error(capsys)
    assert not (tmp_path / "p.png").exists()
