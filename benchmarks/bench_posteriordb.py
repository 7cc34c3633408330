"""Kernel thinning on real MCMC output: every posterior in ../shared/data/posteriordb.

For each posterior (10 chains x 1,000 draws, chains stacked): standardise the
columns, Gaussian kernel with the median-heuristic bandwidth (median distance
between standardised draws), thin to floor(sqrt(n)) draws with kernel
thinning (KT-SPLIT + KT-SWAP) and with Compress++ (g = 4), and report the
exact MMD of each coreset against the full sample beside standard thinning's
(every (n/size)-th draw of the stacked chains).

Run:  flock /tmp/kk-bench.lock python benchmarks/bench_posteriordb.py [--limit K]
Writes benchmarks/results/compress_posteriordb.json.
"""

from __future__ import annotations

import argparse
import glob
import json
import math
import os
import sys
import time

import numpy as np

import kernelkit as kk
from kernelkit.cli._io import read_posteriordb
from kernelkit.compress import kernel_thin, median_bandwidth, standard_thin

HERE = os.path.dirname(os.path.abspath(__file__))
DATA = os.path.join(HERE, "..", "..", "shared", "data", "posteriordb")


class FullSampleMMD:
    """Exact MMD between an equal-weight coreset and the full sample (engine sums)."""

    def __init__(self, X, kernel):
        self.X, self.k = X, kernel
        self.xx = float(kk.kernel_sum(kernel, X, X).sum()) / X.shape[0] ** 2

    def __call__(self, idx):
        C = self.X[idx]
        xy = float(kk.kernel_sum(self.k, self.X, C).sum()) / (self.X.shape[0] * len(idx))
        yy = float(kk.kernel_sum(self.k, C, C).sum()) / len(idx) ** 2
        return math.sqrt(max(self.xx - 2 * xy + yy, 0.0))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--limit", type=int, default=None, help="only the first K posteriors")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    files = sorted(glob.glob(os.path.join(DATA, "*.json.zip")))[: args.limit]
    if not files:
        print(f"no posteriordb draws under {DATA}")
        return 1
    print(f"kernelkit on posteriordb: {len(files)} posteriors; fused engine: {kk.engine.fused_available()}\n")
    print("| posterior | n | d | bandwidth | size | KT MMD | Compress++ MMD | standard MMD | standard / KT | "
          "KT s | Compress++ s |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    rows = []
    for path in files:
        name = os.path.basename(path)[: -len(".json.zip")]
        X, cols = read_posteriordb(path)
        n, d = X.shape
        if not np.isfinite(X).all():
            print(f"| {name} | {n} | {d} | - | - | skipped: non-finite draws | | | | | |")
            rows.append({"posterior": name, "n": n, "d": d, "skipped": "non-finite draws"})
            continue
        sd = X.std(axis=0)
        sd[sd == 0] = 1.0
        Z = (X - X.mean(axis=0)) / sd
        bw = median_bandwidth(Z)
        k = kk.Gaussian(bw)
        size = math.isqrt(n)
        exact = FullSampleMMD(Z, k)
        t0 = time.perf_counter()
        idx_kt = kernel_thin(Z, size, k, method="kt", random_state=args.seed)
        t_kt = time.perf_counter() - t0
        t0 = time.perf_counter()
        idx_cpp = kernel_thin(Z, size, k, method="compress++", random_state=args.seed)
        t_cpp = time.perf_counter() - t0
        m_kt, m_cpp, m_st = exact(idx_kt), exact(idx_cpp), exact(standard_thin(Z, size))
        print(f"| {name} | {n:,} | {d} | {bw:.3g} | {size} | {m_kt:.3e} | {m_cpp:.3e} | {m_st:.3e} | "
              f"{m_st / m_kt:.1f}x | {t_kt:.2f} | {t_cpp:.2f} |", flush=True)
        rows.append({"posterior": name, "n": n, "d": d, "bandwidth": bw, "size": size, "kt_mmd": m_kt,
                     "compresspp_mmd": m_cpp, "standard_mmd": m_st, "kt_s": t_kt, "compresspp_s": t_cpp})
    done = [r for r in rows if "kt_mmd" in r]
    ratios = np.array([r["standard_mmd"] / r["kt_mmd"] for r in done])
    print(f"\nstandard / KT MMD ratio over {len(done)} posteriors: median {np.median(ratios):.1f}x, "
          f"min {ratios.min():.1f}x, max {ratios.max():.1f}x; KT better on {(ratios > 1).sum()} of {len(done)}")
    os.makedirs(os.path.join(HERE, "results"), exist_ok=True)
    out = os.path.join(HERE, "results", "compress_posteriordb.json")
    with open(out, "w") as fh:
        json.dump({"command": " ".join(sys.argv), "fused_engine": kk.engine.fused_available(), "rows": rows},
                  fh, indent=1)
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
