"""Distribution compression: kernelkit vs goodpoints 0.6.3, side by side in one run.

Setting of issue 3: Gaussian kernel with sigma^2 = 2d (goodpoints' var = sigma^2,
its compresspp_kt k_params = 2 sigma^2), delta = 0.5, output sqrt(n), data
N(0, I_2), an 8-component Gaussian mixture in 2-D (means 3 (cos, sin)(2 pi j / 8),
unit covariance, equal weights) and N(0, I_10).

Sections
  A. KT (target kernel, KT-SWAP) at n = 2^14, 5 seeds: MMD and time vs goodpoints.kt.thin(store_K=False).
  B. KT at n = 2^16 (goodpoints' time extrapolated from A by n^2 unless --gp-large).
  C. Compress++ g = 4 at n = 2^16, 7 seeds (--c-seeds; a kk/gp ratio of 3-seed MMD medians
     ranged 0.66-1.45 over disjoint seed triples): MMD (median and mean), time, peak memory
     (RSS of a fresh process) vs
     goodpoints.compress.compresspp_kt.
  D. n = 50,000 (KT, Compress++) and n = 10^6 (Compress++) vs standard thinning.

MMD: against the full sample, exactly, through the engine (the n^2 term sum_ij k(x_i, x_j) / n^2
is computed once per data set and shared by all coresets). At n = 10^6 that term needs 10^12 kernel
evaluations, so there the MMD is measured against the data's population distribution instead, in
closed form (Gaussian kernel and Gaussian mixtures: exact), for both methods.

Run:  flock /tmp/kk-bench.lock python benchmarks/bench_compress.py [--quick] [--gp-large]
Writes benchmarks/results/compress.json.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import resource
import subprocess
import sys
import time

import numpy as np

import kernelkit as kk
from kernelkit.compress import compiled_available, kernel_thin, standard_thin
from _results import write_results  # benchmarks/_results.py (the script's folder is on sys.path)

DATASETS = {"gauss2": 2, "mog8": 2, "gauss10": 10}


# ------------------------------------------------------------------ data and exact MMDs
def mixture(name):
    """(means (c, d), component std) of the data's population distribution."""
    d = DATASETS[name]
    if name == "mog8":
        a = 2 * np.pi * np.arange(8) / 8
        return 3.0 * np.c_[np.cos(a), np.sin(a)], 1.0
    return np.zeros((1, d)), 1.0


def sample(name, n, seed):
    means, sd = mixture(name)
    rng = np.random.default_rng(10_000 + seed)
    comp = rng.integers(len(means), size=n)
    return means[comp] + sd * rng.standard_normal((n, means.shape[1]))


class FullSampleMMD:
    """Exact MMD between a coreset (equal weights) and the full sample X, Gaussian kernel."""

    def __init__(self, X, kernel):
        self.X, self.k = X, kernel
        n = X.shape[0]
        self.xx = float(kk.kernel_sum(kernel, X, X).sum()) / n ** 2

    def __call__(self, idx):
        C = self.X[idx]
        xy = float(kk.kernel_sum(self.k, self.X, C).sum()) / (self.X.shape[0] * len(idx))
        yy = float(kk.kernel_sum(self.k, C, C).sum()) / len(idx) ** 2
        return math.sqrt(max(self.xx - 2 * xy + yy, 0.0))


def population_mmd(name, points, sigma2):
    """Exact MMD between the equal-weight points and the population mixture (Gaussian kernel)."""
    means, sd = mixture(name)
    d = means.shape[1]
    c = len(means)
    s_pp = sigma2 + 2 * sd ** 2
    dm = ((means[:, None, :] - means[None, :, :]) ** 2).sum(-1)
    pp = (sigma2 / s_pp) ** (d / 2) * np.exp(-dm / (2 * s_pp)).sum() / c ** 2
    s_px = sigma2 + sd ** 2
    cross = 0.0
    for m in means:
        r2 = ((points - m) ** 2).sum(-1)
        cross += ((sigma2 / s_px) ** (d / 2) * np.exp(-r2 / (2 * s_px))).sum()
    cross /= c * len(points)
    k = kk.Gaussian(math.sqrt(sigma2))
    xx = float(kk.kernel_sum(k, points, points).sum()) / len(points) ** 2
    return math.sqrt(max(pp - 2 * cross + xx, 0.0))


# ------------------------------------------------------------------ the two libraries
def gp_kernel(var):
    def k(y, X):
        return np.exp(-((X - y) ** 2).sum(-1) / (2 * var))
    return k


def run_gp_kt(X, seed):
    from goodpoints import kt
    var = 2.0 * X.shape[1]
    m = int(round(math.log2(X.shape[0]) / 2))
    k = gp_kernel(var)
    t0 = time.perf_counter()
    idx = kt.thin(X, m, k, k, delta=0.5, seed=seed, store_K=False)
    return np.asarray(idx), time.perf_counter() - t0


def run_gp_cpp(X, seed):
    from goodpoints import compress
    var = 2.0 * X.shape[1]
    t0 = time.perf_counter()
    idx = compress.compresspp_kt(X, b"gaussian", k_params=np.array([2 * var]), g=4, delta=0.5, seed=seed)
    return np.asarray(idx), time.perf_counter() - t0


def run_kk(X, seed, method, g=4):
    k = kk.Gaussian(math.sqrt(2.0 * X.shape[1]))
    t0 = time.perf_counter()
    idx = kernel_thin(X, int(math.isqrt(X.shape[0])), k, method=method, random_state=seed, delta=0.5, g=g)
    return idx, time.perf_counter() - t0


def _status_kb(field):
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def memprobe(lib, name, n, seed):
    """Child process: peak RSS growth (MB) of one Compress++ run beyond data + imports.

    The peak (VmHWM) is reset through /proc/self/clear_refs after the data are made and the
    libraries imported (and warmed up on a small input), then read after the run.
    """
    X = sample(name, n, seed)
    warm = sample(name, 1024, seed)
    if lib == "gp":
        run_gp_cpp(warm, seed)
    else:
        run_kk(warm, seed, "compress++")
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
        base = _status_kb("VmRSS")
    except OSError:
        base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    if lib == "gp":
        run_gp_cpp(X, seed)
    else:
        run_kk(X, seed, "compress++")
    peak = _status_kb("VmHWM") or resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"peak_mb": (peak - base) / 1024.0, "data_mb": X.nbytes / 1e6}))


def peak_mb(lib, name, n, seed):
    out = subprocess.run([sys.executable, __file__, "--_memprobe", lib, name, str(n), str(seed)],
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])["peak_mb"]


# ------------------------------------------------------------------ sections
def section_a(n, seeds, results):
    print(f"\n## A. KT (target, KT-SWAP) at n = {n:,}, output {math.isqrt(n)}, {len(seeds)} seeds\n")
    print("| data | kk MMD (median) | gp MMD (median) | MMD kk/gp | kk time s (median) | gp time s (median) "
          "| speed-up |")
    print("|---|---|---|---|---|---|---|")
    for name in DATASETS:
        rec = {"kk_mmd": [], "gp_mmd": [], "kk_s": [], "gp_s": []}
        for seed in seeds:
            X = sample(name, n, seed)
            exact = FullSampleMMD(X, kk.Gaussian(math.sqrt(2.0 * X.shape[1])))
            idx, s = run_kk(X, seed, "kt")
            rec["kk_mmd"].append(exact(idx))
            rec["kk_s"].append(s)
            idx, s = run_gp_kt(X, seed)
            rec["gp_mmd"].append(exact(idx))
            rec["gp_s"].append(s)
        med = {k: float(np.median(v)) for k, v in rec.items()}
        print(f"| {name} | {med['kk_mmd']:.3e} | {med['gp_mmd']:.3e} | {med['kk_mmd'] / med['gp_mmd']:.3f} "
              f"| {med['kk_s']:.2f} | {med['gp_s']:.2f} | {med['gp_s'] / med['kk_s']:.1f}x |", flush=True)
        results.setdefault("A_kt", {})[name] = {"n": n, "seeds": list(seeds), **rec, "median": med}


def section_b(n, gp_large, results):
    print(f"\n## B. KT at n = {n:,}, output {math.isqrt(n)} (1 seed)\n")
    print("| data | kk wall s | kk CPU s | kk MMD | gp time s | gp MMD |")
    print("|---|---|---|---|---|---|")
    for name in DATASETS:
        X = sample(name, n, 0)
        k = kk.Gaussian(math.sqrt(2.0 * X.shape[1]))
        c0 = time.process_time()
        idx, s = run_kk(X, 0, "kt")
        cpu = time.process_time() - c0
        exact = FullSampleMMD(X, k)
        m_kk = exact(idx)
        a = results.get("A_kt", {}).get(name)
        if gp_large:
            gidx, gs = run_gp_kt(X, 0)
            g_mmd, g_note = exact(gidx), f"{gs:.1f} (measured)"
        else:
            gs = a["median"]["gp_s"] * (n / a["n"]) ** 2 if a else float("nan")
            g_mmd, g_note = None, f"{gs:.0f} (extrapolated n^2 from A)"
        print(f"| {name} | {s:.2f} | {cpu:.2f} | {m_kk:.3e} | {g_note} | "
              f"{'-' if g_mmd is None else f'{g_mmd:.3e}'} |", flush=True)
        results.setdefault("B_kt_large", {})[name] = {"n": n, "kk_s": s, "kk_cpu_s": cpu,
                                                       "kk_mmd": m_kk, "gp_s": gs, "gp_measured": gp_large,
                                                       "gp_mmd": g_mmd}


def section_c(n, seeds, results):
    print(f"\n## C. Compress++ g = 4 at n = {n:,}, output {math.isqrt(n)}, {len(seeds)} seeds\n")
    print("| data | kk MMD (median) | gp MMD (median) | MMD kk/gp (median) | MMD kk/gp (mean) | kk s | gp s | "
          "speed-up | kk peak MB | gp peak MB |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for name in DATASETS:
        rec = {"kk_mmd": [], "gp_mmd": [], "kk_s": [], "gp_s": []}
        for seed in seeds:
            X = sample(name, n, seed)
            exact = FullSampleMMD(X, kk.Gaussian(math.sqrt(2.0 * X.shape[1])))
            idx, s = run_kk(X, seed, "compress++")
            rec["kk_mmd"].append(exact(idx))
            rec["kk_s"].append(s)
            idx, s = run_gp_cpp(X, seed)
            rec["gp_mmd"].append(exact(idx))
            rec["gp_s"].append(s)
        med = {k: float(np.median(v)) for k, v in rec.items()}
        mean = {k: float(np.mean(v)) for k, v in rec.items()}
        mk, mg = peak_mb("kk", name, n, seeds[0]), peak_mb("gp", name, n, seeds[0])
        print(f"| {name} | {med['kk_mmd']:.3e} | {med['gp_mmd']:.3e} | {med['kk_mmd'] / med['gp_mmd']:.3f} | "
              f"{mean['kk_mmd'] / mean['gp_mmd']:.3f} | {med['kk_s']:.2f} | {med['gp_s']:.2f} | "
              f"{med['gp_s'] / med['kk_s']:.1f}x | {mk:.1f} | {mg:.1f} |", flush=True)
        results.setdefault("C_compresspp", {})[name] = {"n": n, "seeds": list(seeds), **rec, "median": med,
                                                         "mean": mean, "kk_peak_mb": mk, "gp_peak_mb": mg}


def section_d(sizes, results):
    print("\n## D. Any n, all points used: vs standard thinning (1 seed, output floor(sqrt(n)))\n")
    print("| n | data | method | time s | MMD | standard thinning MMD | ratio | MMD measured against |")
    print("|---|---|---|---|---|---|---|---|")
    for n, methods in sizes:
        for name in DATASETS:
            X = sample(name, n, 0)
            sigma2 = 2.0 * X.shape[1]
            s = math.isqrt(n)
            full = n <= 100_000
            measure = FullSampleMMD(X, kk.Gaussian(math.sqrt(sigma2))) if full else \
                (lambda idx, X=X, name=name: population_mmd(name, X[idx], sigma2))
            st = measure(standard_thin(X, s))
            for method in methods:
                idx, secs = run_kk(X, 0, method)
                m = measure(idx)
                against = "full sample (exact)" if full else "population (closed form)"
                print(f"| {n:,} | {name} | {method} | {secs:.2f} | {m:.3e} | {st:.3e} | {st / m:.1f}x | {against} |",
                      flush=True)
                results.setdefault("D_any_n", []).append({"n": n, "data": name, "method": method, "s": secs,
                                                          "mmd": m, "standard_mmd": st, "against": against})


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="small sizes (smoke test)")
    ap.add_argument("--gp-large", action="store_true", help="time goodpoints KT at 2^16 too (minutes)")
    ap.add_argument("--sections", default="ABCD")
    ap.add_argument("--c-seeds", type=int, default=7, help="seeds of section C (default 7)")
    ap.add_argument("--_memprobe", nargs=4, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args._memprobe:
        lib, name, n, seed = args._memprobe
        memprobe(lib, name, int(n), int(seed))
        return
    results = {"machine": {"platform": platform.platform(), "cpus": os.cpu_count(),
                           "compiled_walk": compiled_available(),
                           "engine_fused": kk.engine.fused_available()},
               "command": " ".join(sys.argv)}
    print(f"kernelkit compress benchmark; compiled walk: {compiled_available()}, "
          f"fused engine: {kk.engine.fused_available()}, threads: {kk.get_options().resolved_threads()}")
    q = args.quick
    if "A" in args.sections:
        section_a(2 ** 10 if q else 2 ** 14, list(range(2 if q else 5)), results)
    if "B" in args.sections:
        section_b(2 ** 12 if q else 2 ** 16, args.gp_large, results)
    if "C" in args.sections:
        section_c(2 ** 12 if q else 2 ** 16, list(range(1 if q else args.c_seeds)), results)
    if "D" in args.sections:
        section_d([(5_000, ["kt", "compress++"]), (20_000, ["compress++"])] if q else
                  [(50_000, ["kt", "compress++"]), (1_000_000, ["compress++"])], results)
    write_results("compress_quick" if q else "compress", results)


if __name__ == "__main__":
    main()
