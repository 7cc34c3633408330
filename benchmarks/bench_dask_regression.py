"""Falkon on Dask: FalkonRegressor.fit with X a dask array on a LocalCluster vs the local fit, in one run.

Friedman #1 (benchmarks/_datasets.py, standardised y), Gaussian kernel at the
median-heuristic bandwidth of the local fit (passed explicitly to both), the
same M uniform centres (same seed) and penalty. The local fit runs with
``threads = workers``; the cluster has W single-threaded worker processes and
X (persisted) in row chunks.

* Per CG iteration: the time between consecutive callbacks (median over the
  iterations), on the cluster and locally; the overhead is the difference
  (target: at most 0.1 s). Each cluster iteration is one small graph: one
  task per X chunk (engine one-pass normal product) and a tree sum.
* Validation error: test MSE of both fits (target: the same), the relative
  difference, and the final relative CG residuals.

Run:  flock /tmp/kk-bench.lock python benchmarks/bench_dask_regression.py      (n = 2e5, d = 10, M = 1000)
      python benchmarks/bench_dask_regression.py --n 20000 --m 300              (smoke size)
Options: --workers (2), --chunk (rows per X chunk, default n / (2 workers)), --iters (max CG iterations, 30),
--tol (1e-7), --penalty (1e-6). Writes benchmarks/results/dask_regression.json.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import kernelkit as kk  # noqa: E402
from kernelkit.regression import FalkonRegressor  # noqa: E402
from _datasets import friedman  # noqa: E402
from _results import write_results  # noqa: E402

try:
    from _machine import cpu_info  # noqa: E402
except ImportError:  # pragma: no cover
    cpu_info = dict


def _timed_fit(est, X, y):
    stamps = []

    def cb(state):
        stamps.append(time.perf_counter())
        return False
    est.set_params(callback=cb)
    t0 = time.perf_counter()
    est.fit(X, y)
    total = time.perf_counter() - t0
    est.set_params(callback=None)
    per_iter = float(np.median(np.diff(stamps))) if len(stamps) > 2 else float("nan")
    return total, per_iter


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=200_000)
    ap.add_argument("--d", type=int, default=10)
    ap.add_argument("--m", type=int, default=1000, help="Nystrom centres M")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--chunk", type=int, default=None)
    ap.add_argument("--iters", type=int, default=30)
    ap.add_argument("--tol", type=float, default=1e-7)
    ap.add_argument("--penalty", type=float, default=1e-6)
    args = ap.parse_args()
    import dask.array as da
    from distributed import Client, LocalCluster

    rng = np.random.default_rng(0)
    X, y = friedman(args.n + 10_000, args.d, rng)
    y = (y - y.mean()) / y.std()
    X, Xv, y, yv = X[:args.n], X[args.n:], y[:args.n], y[args.n:]
    bw = kk.median_bandwidth(X[:5000])
    kw = dict(kernel="gaussian", bandwidth=bw, penalty=args.penalty, n_centers=args.m, random_state=1,
              max_iter=args.iters, tol=args.tol)
    chunk = args.chunk or -(-args.n // (2 * args.workers))
    print(f"n={args.n:,} d={args.d} M={args.m} workers={args.workers} chunk={chunk:,} rows; "
          f"bandwidth {bw:.4g}, penalty {args.penalty:g}")

    local = FalkonRegressor(threads=args.workers, **kw)
    _timed_fit(local, X, y)   # untimed warm-up (compilation caches, page faults)
    t_local, it_local = _timed_fit(local, X, y)
    e_local = float(np.mean((local.predict(Xv) - yv) ** 2))

    cluster = LocalCluster(n_workers=args.workers, threads_per_worker=1, processes=True, memory_limit="4GB",
                           dashboard_address=None)
    client = Client(cluster)
    try:
        dX = client.persist(da.from_array(X, chunks=(chunk, -1)))
        est = FalkonRegressor(**kw)
        _timed_fit(est, dX, y)   # warm-up: imports and compilation on the workers
        t_dask, it_dask = _timed_fit(est, dX, y)
        e_dask = float(np.mean((est.predict(da.from_array(Xv, chunks=(5000, -1))).compute() - yv) ** 2))
        same_centres = bool(np.array_equal(est.center_indices_, local.center_indices_))
        coef_rel = float(np.max(np.abs(est.coef_ - local.coef_)) / np.max(np.abs(local.coef_)))
    finally:
        client.close()
        cluster.close()

    overhead = it_dask - it_local
    rel = abs(e_dask - e_local) / e_local
    print(f"{'':10s} {'fit (s)':>9s} {'iters':>6s} {'s / iter':>9s} {'residual':>9s} {'val MSE':>10s}")
    print(f"{'local':10s} {t_local:9.2f} {local.n_iter_:6d} {it_local:9.4f} {local.residuals_[-1]:9.2e} "
          f"{e_local:10.6f}")
    print(f"{'dask':10s} {t_dask:9.2f} {est.n_iter_:6d} {it_dask:9.4f} {est.residuals_[-1]:9.2e} {e_dask:10.6f}")
    print(f"per-iteration overhead {overhead:+.4f} s (target <= 0.1 s): {'met' if overhead <= 0.1 else 'MISSED'}; "
          f"dask / local per iteration {it_dask / it_local:.2f}x")
    print(f"validation MSE relative difference {rel:.2e}; same centres: {same_centres}; "
          f"max coef difference {coef_rel:.2e} (relative to max |coef|)")
    results = {"n": args.n, "d": args.d, "M": args.m, "workers": args.workers, "chunk_rows": chunk,
               "penalty": args.penalty, "bandwidth": bw, "tol": args.tol, "max_iter": args.iters,
               "local": {"fit_s": t_local, "iters": int(local.n_iter_), "s_per_iter": it_local,
                         "residual": float(local.residuals_[-1]), "val_mse": e_local},
               "dask": {"fit_s": t_dask, "iters": int(est.n_iter_), "s_per_iter": it_dask,
                        "residual": float(est.residuals_[-1]), "val_mse": e_dask},
               "overhead_s_per_iter": overhead, "val_mse_rel_diff": rel, "same_centres": same_centres,
               "coef_rel_diff": coef_rel, "machine": cpu_info(), "load_avg": list(os.getloadavg())}
    write_results("dask_regression", results)


if __name__ == "__main__":
    main()
