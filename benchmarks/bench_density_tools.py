"""Density tools: grid KDE (linear binning + FFT) against KDEpy's FFTKDE, and the ISJ bandwidth against KDEpy's.

Sections (``--only grid1d,grid2d,grid2d_big,isj``; default all):

- ``grid1d``: n = 10^6 standard normal draws, a 4,096-point grid, Gaussian
  kernel at Scott's bandwidth (kernelkit's, given to both as a number):
  ``kernelkit.density.grid_kde`` and KDEpy's ``FFTKDE(bw=h).fit(x).evaluate(grid)``
  on the *same* grid (kernelkit's box: data range + 3 h). Times: ``--reps``
  interleaved rounds, each timing every case once with kernelkit and then once
  with KDEpy (inside its own process, after import and an untimed warm-up), so
  that on a loaded machine both see the same load; the table gives the best
  of each and the median over the rounds of the per-round ratio. The error of
  each is max |grid - exact| / max exact at 2,000 grid points, exact =
  ``KernelDensity.score_samples`` (log domain, float64).
- ``grid2d``: n = 10^5 draws of a correlated 2-D normal, 512 x 512, the same.
- ``grid2d_big``: the same with n = 10^6 (binning dominates more; the exact
  reference for the error costs 2,000 x 10^6 kernel values).
- ``isj``: n = 10^5 standard normal draws (and the same times 10 and 0.1, and
  a bimodal mixture): ``bandwidth_isj(x, convention="kdepy")`` and the default
  (scale-equivariant) ``"botev"`` against KDEpy 1.1.12's
  ``improved_sheather_jones``; relative differences and times.

KDEpy runs in its own environment, in a subprocess, on inputs saved as .npz
(``--kdepy-python``, default $KERNELKIT_KDEPY_PYTHON or
/work/density-venv/bin/python; its sections print "skipped" when absent).
Create that environment with::

    python3 -m venv /work/density-venv
    /work/density-venv/bin/pip install KDEpy numpy scipy

Run:  flock /tmp/kk-bench.lock python benchmarks/bench_density_tools.py          (full sizes)
      python benchmarks/bench_density_tools.py --quick                          (small sizes, to check it runs)
Writes benchmarks/results/density_tools.json (density_tools_quick.json with --quick).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _machine import cpu_info, cpu_line  # noqa: E402
from _results import best_of as _best, write_results  # noqa: E402

import kernelkit as kk  # noqa: E402
from kernelkit.density._grid import grid_kde  # noqa: E402
from kernelkit.density._isj import bandwidth_isj  # noqa: E402

FULL = dict(n1=1_000_000, g1=4096, n2=100_000, g2=512, n2b=1_000_000, n_isj=100_000)
QUICK = dict(n1=100_000, g1=4096, n2=20_000, g2=256, n2b=50_000, n_isj=20_000)

#: run in KDEpy's environment: python -c KDEPY_SCRIPT in.npz out.npz reps
KDEPY_SCRIPT = r'''
import sys, time, json
import numpy as np
import KDEpy
from KDEpy import FFTKDE
from KDEpy.bw_selection import improved_sheather_jones
inp, outp, reps = sys.argv[1], sys.argv[2], int(sys.argv[3])
d = dict(np.load(inp))
out, times = {}, {}
for key in [k for k in d if k.startswith("grid_data_")]:
    name = key[len("grid_data_"):]
    data, grid, h = d[key], d["grid_points_" + name], float(d["grid_bw_" + name])
    FFTKDE(kernel="gaussian", bw=h).fit(data).evaluate(grid)   # warm-up, untimed
    best = np.inf
    for _ in range(reps):
        t0 = time.perf_counter()
        dens = FFTKDE(kernel="gaussian", bw=h).fit(data).evaluate(grid)
        best = min(best, time.perf_counter() - t0)
    out["grid_density_" + name] = dens
    times["grid_" + name] = best
for key in [k for k in d if k.startswith("isj_")]:
    x = d[key][:, None]
    improved_sheather_jones(x)                                  # warm-up, untimed
    best = np.inf
    for _ in range(reps):
        t0 = time.perf_counter()
        h = improved_sheather_jones(x)
        best = min(best, time.perf_counter() - t0)
    out["isjbw_" + key[4:]] = np.array(h)
    times[key] = best
out["times"] = np.array(json.dumps(times))
out["version"] = np.array(KDEpy.__version__)
np.savez(outp, **out)
'''


def _kdepy_python(path):
    path = path or os.environ.get("KERNELKIT_KDEPY_PYTHON") or "/work/density-venv/bin/python"
    return path if os.path.exists(path) else None


def run_kdepy(py, arrays, reps):
    """Run KDEPY_SCRIPT in KDEpy's environment on ``arrays``; returns (outputs dict, times dict, version)."""
    with tempfile.TemporaryDirectory() as tmp:
        inp, outp = os.path.join(tmp, "in.npz"), os.path.join(tmp, "out.npz")
        np.savez(inp, **arrays)
        p = subprocess.run([py, "-c", KDEPY_SCRIPT, inp, outp, str(reps)], stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True)
        if p.returncode:
            raise RuntimeError("KDEpy failed:\n" + p.stderr[-3000:])
        with np.load(outp) as f:
            out = {k: f[k] for k in f.files}
    return out, json.loads(str(out.pop("times"))), str(out.pop("version"))




def _grid_error(kde, points, dens, idx):
    """max |dens - exact| / max exact at the grid points ``idx`` (exact: KernelDensity, float64)."""
    exact = np.exp(kde.score_samples(points[idx]))
    return float(np.max(np.abs(dens[idx] - exact)) / np.max(exact))


def grid_case(name, X, G, reps, seed):
    """Everything for one grid comparison: kernelkit's result and error, and what KDEpy needs (the timing
    rounds: :func:`grid_timer`)."""
    d = X.shape[1]
    h = kk.bandwidth_scott(X)
    data = X[:, 0] if d == 1 else X
    grid_kde(data, bandwidth=h, grid_size=G)                    # warm-up, untimed
    (axes, dens), t = _best(lambda: grid_kde(data, bandwidth=h, grid_size=G), 1)
    axes = (axes,) if d == 1 else axes
    pts = np.stack([g.ravel() for g in np.meshgrid(*axes, indexing="ij")], axis=1)
    idx = np.random.default_rng(seed).choice(pts.shape[0], size=min(2000, pts.shape[0]), replace=False)
    kde = kk.KernelDensity(bandwidth=h).fit(X)
    err = _grid_error(kde, pts, dens.ravel(), idx)
    row = dict(case=name, n=int(X.shape[0]), d=d, grid=[G] * d, bandwidth=h, kernelkit_error=err)
    arrays = {f"grid_data_{name}": X, f"grid_points_{name}": pts if d > 1 else pts[:, 0],
              f"grid_bw_{name}": np.array(h)}
    return row, arrays, (kde, pts, idx)


def grid_timer(X, G):
    """A function timing one kernelkit grid_kde run on X (Scott's bandwidth, grid G per axis), seconds."""
    h = kk.bandwidth_scott(X)
    data = X[:, 0] if X.shape[1] == 1 else X
    return lambda: _best(lambda: grid_kde(data, bandwidth=h, grid_size=G), 1)[1]


def isj_inputs(n, seed):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(n)
    bim = np.r_[rng.standard_normal(n // 2), 5 + 0.3 * rng.standard_normal(n - n // 2)]
    return {"normal": x, "normal_x10": 10 * x, "normal_x0.1": 0.1 * x, "bimodal": bim}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="small sizes, to check that it runs")
    ap.add_argument("--only", default="grid1d,grid2d,grid2d_big,isj")
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--kdepy-python", default=None)
    ap.add_argument("--name", default=None)
    args = ap.parse_args(argv)
    sizes = QUICK if args.quick else FULL
    only = set(args.only.split(","))
    py = _kdepy_python(args.kdepy_python)
    info = cpu_info()
    print(cpu_line(info))
    rng = np.random.default_rng(args.seed)
    rows, arrays, refs, timers = [], {}, {}, {}
    if "grid1d" in only:
        X1 = rng.standard_normal((sizes["n1"], 1))
        row, arr, ref = grid_case("1d", X1, sizes["g1"], args.reps, args.seed)
        rows.append(row), arrays.update(arr), refs.update({"1d": ref})
        timers["1d"] = grid_timer(X1, sizes["g1"])
    if "grid2d" in only:
        X2 = rng.standard_normal((sizes["n2"], 2)) @ np.array([[1.0, 0.6], [0.0, 0.8]])
        row, arr, ref = grid_case("2d", X2, sizes["g2"], args.reps, args.seed)
        rows.append(row), arrays.update(arr), refs.update({"2d": ref})
        timers["2d"] = grid_timer(X2, sizes["g2"])
    if "grid2d_big" in only:
        X3 = rng.standard_normal((sizes["n2b"], 2)) @ np.array([[1.0, 0.6], [0.0, 0.8]])
        row, arr, ref = grid_case("2dbig", X3, sizes["g2"], args.reps, args.seed)
        rows.append(row), arrays.update(arr), refs.update({"2dbig": ref})
        timers["2dbig"] = grid_timer(X3, sizes["g2"])
    isj_rows = []
    if "isj" in only:
        for name, x in isj_inputs(sizes["n_isj"], args.seed).items():
            arrays["isj_" + name] = x
            hk, tk = _best(lambda: bandwidth_isj(x, convention="kdepy"), args.reps)
            hb, tb = _best(lambda: bandwidth_isj(x), args.reps)
            isj_rows.append(dict(case=name, n=int(x.size), kdepy_convention=hk, botev=hb, kernelkit_seconds=tk,
                                 botev_seconds=tb))
    kdepy_version = None
    # grid timings in interleaved rounds: each round times every case once with kernelkit, then once with
    # KDEpy (in its process, after an untimed warm-up), so both see the same load; best of the rounds each,
    # and the median over the rounds of the per-round ratio
    grid_arrays = {k: v for k, v in arrays.items() if k.startswith("grid_")}
    kk_times = {r["case"]: [] for r in rows}
    kp_times = {r["case"]: [] for r in rows}
    out = {}
    for _ in range(args.reps if rows else 0):
        for row in rows:
            kk_times[row["case"]].append(timers[row["case"]]())
        if py is not None:
            out, times, kdepy_version = run_kdepy(py, grid_arrays, 1)
            for row in rows:
                kp_times[row["case"]].append(times["grid_" + row["case"]])
    for row in rows:
        row["kernelkit_seconds"] = min(kk_times[row["case"]])
        row["kernelkit_seconds_all"] = kk_times[row["case"]]
    if py is None:
        print("KDEpy: skipped (no environment; see the module docstring)")
    elif arrays:
        for row in rows:
            kde, pts, idx = refs[row["case"]]
            dens = out["grid_density_" + row["case"]]
            row["kdepy_seconds"] = min(kp_times[row["case"]])
            row["kdepy_seconds_all"] = kp_times[row["case"]]
            row["kdepy_error"] = _grid_error(kde, pts, dens, idx)
            row["kdepy_over_kernelkit"] = row["kdepy_seconds"] / row["kernelkit_seconds"]
            row["kdepy_over_kernelkit_median_round"] = float(np.median(
                np.array(kp_times[row["case"]]) / np.array(kk_times[row["case"]])))
        isj_arrays = {k: v for k, v in arrays.items() if k.startswith("isj_")}
        if isj_arrays:
            out, times, kdepy_version = run_kdepy(py, isj_arrays, args.reps)
        for r in isj_rows:
            r["kdepy"] = float(out["isjbw_" + r["case"]])
            r["kdepy_seconds"] = times["isj_" + r["case"]]
            r["rel_diff_kdepy_convention"] = r["kdepy_convention"] / r["kdepy"] - 1
            r["botev_over_kdepy"] = r["botev"] / r["kdepy"]
    if rows:
        print(f"\nGrid KDE, Gaussian kernel, Scott's bandwidth, same grid for both (best of {args.reps} "
              "interleaved rounds; 'median' = median over the rounds of KDEpy/kk); "
              "error = max |grid - exact| / max exact at 2,000 grid points")
        print(f"{'case':5s} {'n':>9s} {'grid':>10s} {'kernelkit s':>12s} {'KDEpy s':>9s} {'KDEpy/kk':>9s} "
              f"{'median':>7s} {'kk error':>10s} {'KDEpy error':>12s}")
        for r in rows:
            g = "x".join(map(str, r["grid"]))
            kp = r.get("kdepy_seconds")
            print(f"{r['case']:5s} {r['n']:9,d} {g:>10s} {r['kernelkit_seconds']:12.4f} "
                  f"{kp if kp is not None else float('nan'):9.4f} {r.get('kdepy_over_kernelkit', float('nan')):9.2f} "
                  f"{r.get('kdepy_over_kernelkit_median_round', float('nan')):7.2f} "
                  f"{r['kernelkit_error']:10.2e} {r.get('kdepy_error', float('nan')):12.2e}")
    if isj_rows:
        print(f"\nISJ bandwidth (KDEpy {kdepy_version or 'not run'}); 'kdepy' = convention='kdepy', "
              "'botev' = the default (scale-equivariant)")
        print(f"{'case':12s} {'n':>8s} {'KDEpy':>12s} {'kk kdepy':>12s} {'rel diff':>10s} {'kk botev':>10s} "
              f"{'kk s':>8s} {'KDEpy s':>8s}")
        for r in isj_rows:
            print(f"{r['case']:12s} {r['n']:8,d} {r.get('kdepy', float('nan')):12.6g} {r['kdepy_convention']:12.6g} "
                  f"{r.get('rel_diff_kdepy_convention', float('nan')):10.1e} {r['botev']:10.5g} "
                  f"{r['kernelkit_seconds']:8.4f} {r.get('kdepy_seconds', float('nan')):8.4f}")
    res = dict(machine=info, note="timings on a shared machine unless run alone (flock)", quick=args.quick,
               kdepy_version=kdepy_version, grid=rows, isj=isj_rows)
    write_results(args.name or ("density_tools_quick" if args.quick else "density_tools"), res)
    return res


if __name__ == "__main__":
    main()
