"""Benchmark of kernelkit.features: ORF against RFF (accuracy) and SORF against ORF (transform time), side by side.

Run by hand (one benchmark at a time on shared machines; the full run takes well under a minute):

    flock /tmp/kk-bench.lock python benchmarks/bench_features.py            # full sizes
    python benchmarks/bench_features.py --quick --json /tmp/features.json   # smoke test, a few seconds

Sections (printed as tables, written as JSON to benchmarks/results/features.json unless --json says otherwise):

1. Kernel-approximation error, Gaussian kernel, d in {16, 32, 64}, D = 4096 frequencies (8192 features),
   n = 300 points from N(0, I_d / d) with the bandwidth at the median pairwise distance: the max and the
   root-mean-square of |Z Z^T - K| over all pairs and the relative Frobenius error ||Z Z^T - K||_F / ||K||_F
   (K exact, from kernel(X, X)), mean over --reps seeds, for
   RandomFourierFeatures and OrthogonalRandomFeatures (and StructuredOrthogonalFeatures); the ratio
   ORF / RFF is what Yu et al. (2016) predict to be below 1.
2. Transform time at d = 1024, n = 2,000 points, D = 4096: StructuredOrthogonalFeatures (fast
   Walsh-Hadamard transform, O(D log d) per point, NumPy) against OrthogonalRandomFeatures (a dense
   n x d x D GEMM through BLAS), best of --reps runs each, and the ratio SORF / ORF. Fit time (QR of
   D/d Gaussian d x d blocks for ORF, sign draws for SORF) is reported too.

Timings on shared machines are noisy: read the ratios, measured in the same process.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time

import numpy as np

import kernelkit as kk
from kernelkit.features import OrthogonalRandomFeatures, RandomFourierFeatures, StructuredOrthogonalFeatures

MAPS = {"rff": RandomFourierFeatures, "orf": OrthogonalRandomFeatures, "sorf": StructuredOrthogonalFeatures}


def accuracy(dims, D, n, reps):
    rows = []
    for d in dims:
        X = np.random.default_rng(d).standard_normal((n, d)) / np.sqrt(d)
        k = kk.Gaussian(kk.median_bandwidth(X))
        K = k(X)
        k_fro = float(np.linalg.norm(K))
        row = {"d": d, "D": D, "n": n, "bandwidth": k.bandwidth}
        for name, cls in MAPS.items():
            mx, rms, fro = [], [], []
            for s in range(reps):
                Z = cls(k, D, random_state=s).fit_transform(X)
                E = Z @ Z.T - K
                mx.append(float(np.abs(E).max()))
                rms.append(float(np.sqrt(np.mean(E ** 2))))
                fro.append(float(np.linalg.norm(E) / k_fro))
            row[f"{name}_max"], row[f"{name}_rms"] = float(np.mean(mx)), float(np.mean(rms))
            row[f"{name}_relfro"], row[f"{name}_relfro_sd"] = float(np.mean(fro)), float(np.std(fro))
        row["orf/rff_rms"] = row["orf_rms"] / row["rff_rms"]
        row["orf/rff_max"] = row["orf_max"] / row["rff_max"]
        row["sorf/orf_rms"] = row["sorf_rms"] / row["orf_rms"]
        row["orf/rff_relfro"] = row["orf_relfro"] / row["rff_relfro"]
        rows.append(row)
    print(f"\n1. Gaussian kernel approximation error, D = {D} frequencies, n = {n}, mean over {reps} seeds")
    print(f"{'d':>5} {'rff rms':>10} {'orf rms':>10} {'sorf rms':>10} {'orf/rff rms':>12} {'orf/rff max':>12} "
          f"{'sorf/orf rms':>13} {'rff relF':>9} {'orf relF':>9} {'orf/rff relF':>13}")
    for r in rows:
        print(f"{r['d']:>5} {r['rff_rms']:>10.2e} {r['orf_rms']:>10.2e} {r['sorf_rms']:>10.2e} "
              f"{r['orf/rff_rms']:>12.3f} {r['orf/rff_max']:>12.3f} {r['sorf/orf_rms']:>13.3f} "
              f"{r['rff_relfro']:>9.2e} {r['orf_relfro']:>9.2e} {r['orf/rff_relfro']:>13.3f}")
    return rows


def _best(fn, reps):
    times = []
    for _ in range(reps):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def speed(d, n, D, reps):
    X = np.random.default_rng(0).standard_normal((n, d)) / np.sqrt(d)
    k = kk.Gaussian(1.0)
    out = {"d": d, "n": n, "D": D}
    fitted = {}
    for name in ("orf", "sorf"):
        cls = MAPS[name]
        out[f"{name}_fit_s"] = _best(lambda: fitted.__setitem__(name, cls(k, D, random_state=0).fit(X)), reps)
        fm = fitted[name]
        fm.transform(X[:8])  # warm up
        out[f"{name}_transform_s"] = _best(lambda: fm.transform(X), reps)
    out["sorf/orf_transform"] = out["sorf_transform_s"] / out["orf_transform_s"]
    out["sorf/orf_fit"] = out["sorf_fit_s"] / out["orf_fit_s"]
    print(f"\n2. Transform time, d = {d}, n = {n}, D = {D} (best of {reps})")
    print(f"{'':>6} {'fit s':>9} {'transform s':>12}")
    for name in ("orf", "sorf"):
        print(f"{name:>6} {out[name + '_fit_s']:>9.4f} {out[name + '_transform_s']:>12.4f}")
    print(f"ratio sorf/orf: transform {out['sorf/orf_transform']:.3f}, fit {out['sorf/orf_fit']:.3f}")
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small sizes (smoke test)")
    ap.add_argument("--reps", type=int, default=None, help="seeds (accuracy) and timing repeats")
    ap.add_argument("--json", default=None, help="where to write the results (default benchmarks/results/)")
    args = ap.parse_args(argv)
    if args.quick:
        dims, D, n, sd, sn, sD, reps = (8, 16), 512, 100, 128, 200, 512, args.reps or 2
    else:
        dims, D, n, sd, sn, sD, reps = (16, 32, 64), 4096, 300, 1024, 2000, 4096, args.reps or 3
    t0 = time.perf_counter()
    results = {"machine": {"python": sys.version.split()[0], "numpy": np.__version__,
                           "platform": platform.platform(), "cpus": os.cpu_count()},
               "quick": bool(args.quick), "accuracy": accuracy(dims, D, n, reps), "speed": speed(sd, sn, sD, reps)}
    results["total_s"] = time.perf_counter() - t0
    print(f"\ntotal {results['total_s']:.1f} s")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(results, fh, indent=1)
        print(f"wrote {args.json}")
    else:
        sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
        from _results import write_results
        write_results("features_quick" if args.quick else "features", results)
    return results


if __name__ == "__main__":
    main()
