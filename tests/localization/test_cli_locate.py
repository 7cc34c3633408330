"""``kernelkit locate fit / predict`` through a parser built here (the lead wires the verb into the CLI)."""

import argparse

import numpy as np
import pytest

from kernelkit.cli import USER_ERRORS, _locate
from kernelkit.datasets import make_building
from kernelkit.localization import FingerprintLocalizer


def _run(argv):
    parser = argparse.ArgumentParser(prog="kernelkit")
    sub = parser.add_subparsers(dest="command")
    _locate.register(sub)
    args = parser.parse_args(argv)
    return args.run(args)


def _write(path, header, arr):
    np.savetxt(path, arr, delimiter=",", header=",".join(header), comments="", fmt="%.10g")
    return path


@pytest.fixture
def files(tmp_path):
    data = make_building(grid=(6, 4), n_floors=2, n_beacons=5, n_sensitive=0, random_state=0)
    held = np.random.default_rng(0).random(len(data)) < 0.2
    names = [f"b{j}" for j in range(data.rss.shape[1])]
    table = np.column_stack([data.positions, data.floor, data.rss])
    header = ["x", "y", "floor"] + names
    radiomap = _write(tmp_path / "map.csv", header, table[~held])
    # observations: columns in another order, with the truth
    obs = _write(tmp_path / "obs.csv", names[::-1] + ["x", "y"],
                 np.column_stack([data.rss[held][:, ::-1], data.positions[held]]))
    return data, held, radiomap, obs


def test_fit_predict_matches_estimator(tmp_path, files, capsys):
    data, held, radiomap, obs = files
    model, out, png = tmp_path / "m.npz", tmp_path / "est.csv", tmp_path / "map.png"
    assert _run(["locate", "fit", str(radiomap), "--positions-cols", "x,y", "--floor-col", "floor", "--k", "4",
                 "--out", str(model)]) == 0
    assert "wrote" in capsys.readouterr().out
    pytest.importorskip("matplotlib")
    assert _run(["locate", "predict", str(model), str(obs), "--positions-cols", "x,y", "--out", str(out),
                 "--plot", str(png)]) == 0
    report = capsys.readouterr().out
    assert "error: mean" in report
    assert out.read_text().splitlines()[0] == "x,y,floor"
    got = np.loadtxt(out, delimiter=",", skiprows=1)
    ref = FingerprintLocalizer(k=4).fit(data.rss[~held], data.positions[~held], floor=data.floor[~held])
    loc = ref.locate(data.rss[held])
    np.testing.assert_allclose(got[:, :2], loc.positions, rtol=1e-9)
    np.testing.assert_array_equal(got[:, 2], loc.floor)
    assert png.stat().st_size > 1000


def test_bad_input_is_a_user_error(tmp_path, files):
    data, held, radiomap, obs = files
    model = tmp_path / "m.npz"
    with pytest.raises(USER_ERRORS, match="--positions-cols"):
        _run(["locate", "fit", str(radiomap), "--positions-cols", "x,nope", "--out", str(model)])
    with pytest.raises(USER_ERRORS, match="'k' parameter"):
        _run(["locate", "fit", str(radiomap), "--positions-cols", "x,y", "--k", "100000", "--out", str(model)])
    assert _run(["locate", "fit", str(radiomap), "--positions-cols", "x,y", "--out", str(model), "--quiet"]) == 0
    short = _write(tmp_path / "short.csv", ["b0", "b1"], data.rss[:3, :2])
    with pytest.raises(USER_ERRORS, match="lacks"):
        _run(["locate", "predict", str(model), str(short)])
    with pytest.raises(USER_ERRORS, match="not a model file"):
        _run(["locate", "predict", str(radiomap), str(obs)])
