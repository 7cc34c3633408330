"""Kernel PCA and kernel k-means at scale: kernelkit (Nystroem features) vs scikit-learn, side by side in one run.

Data: a mixture of --clusters Gaussians in d = 10 dimensions (means drawn N(0, 4 I), unit covariance), Gaussian
kernel exp(-|x - y|^2 / (2 sigma^2)) with sigma the median heuristic (scikit-learn's gamma = 1 / (2 sigma^2)).

1. Kernel PCA, n in --pca-n (default 10,000 and 20,000), 10 components:
   - kernelkit ``KernelPCA(n_features=M)``, M = --m (default 1,000) uniform Nystroem centres: n M^2 + M^3 flops,
     O(M^2) memory;
   - scikit-learn ``KernelPCA(kernel="rbf", eigen_solver="randomized")`` on the exact n x n kernel matrix
     (n^2 memory: 3.2 GB at n = 20,000).
   Printed: fit times, their ratio (scikit-learn / kernelkit), and the relative error of kernelkit's top-10
   eigenvalues against scikit-learn's (Nystroem underestimates every eigenvalue).
2. Kernel k-means, n = --km-n (default 1,000,000), k = --clusters:
   - kernelkit ``KernelKMeans(n_clusters=k, n_features=M_km)`` (k-means++ seeding, Lloyd iterations on the
     Nystroem features; kept in memory when they fit the budget --memory, else recomputed every pass);
   - scikit-learn ``Nystroem(n_components=M_km)`` features + ``MiniBatchKMeans(n_clusters=k)``.
   M_km = --km-m (default 100). Printed: times, their ratio, the inertia of each in its own feature space and
   the adjusted Rand index of each against the mixture labels.

Run:  flock /tmp/kk-bench.lock python benchmarks/bench_decomposition.py                  (default sizes)
      python benchmarks/bench_decomposition.py --pca-n 3000 --m 300 --km-n 50000          (smoke, seconds)
Options: --threads, --seed, --memory (kernelkit's budget, e.g. 2GB), --skip-pca, --skip-kmeans.
Writes benchmarks/results/decomposition.json.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import kernelkit as kk  # noqa: E402
from kernelkit.features import KernelKMeans, KernelPCA  # noqa: E402
from _results import write_results  # noqa: E402


def mixture(n, d, k, rng):
    means = 2.0 * rng.standard_normal((k, d))
    y = rng.integers(k, size=n)
    return means[y] + rng.standard_normal((n, d)), y


def bench_pca(ns, d, M, k, clusters, seed, memory):
    from sklearn.decomposition import KernelPCA as SkKernelPCA
    warm = mixture(500, d, clusters, np.random.default_rng(seed))[0]   # imports and first calls, untimed
    KernelPCA(k, n_features=50, random_state=seed).fit(warm)
    SkKernelPCA(k, kernel="rbf", eigen_solver="randomized", random_state=seed).fit(warm)
    rows = []
    for n in ns:
        X, _ = mixture(n, d, clusters, np.random.default_rng(seed))
        sigma = kk.median_bandwidth(X)
        with kk.options(memory=memory):
            t0 = time.perf_counter()
            ours = KernelPCA(k, bandwidth=sigma, n_features=M, random_state=seed).fit(X)
            t_ours = time.perf_counter() - t0
        t0 = time.perf_counter()
        sk = SkKernelPCA(k, kernel="rbf", gamma=1.0 / (2 * sigma ** 2), eigen_solver="randomized",
                         random_state=seed).fit(X)
        t_sk = time.perf_counter() - t0
        rel = (ours.eigenvalues_ - sk.eigenvalues_) / sk.eigenvalues_
        rows.append(dict(n=n, d=d, M=M, sigma=sigma, kernelkit_seconds=t_ours, sklearn_seconds=t_sk,
                         sklearn_over_kernelkit=t_sk / t_ours, eig_rel_error_max=float(np.abs(rel).max()),
                         eig_rel_error=rel.tolist(), kernelkit_eigenvalues=ours.eigenvalues_.tolist(),
                         sklearn_eigenvalues=sk.eigenvalues_.tolist()))
        del sk
        print(f"KernelPCA n = {n}: kernelkit (M = {M}) {t_ours:.2f} s, scikit-learn exact randomized "
              f"{t_sk:.2f} s, ratio {t_sk / t_ours:.2f}; top-{k} eigenvalue relative error max "
              f"{np.abs(rel).max():.2e} (first {rel[0]:+.2e}, last {rel[-1]:+.2e})")
    return rows


def bench_kmeans(n, d, M, k, seed, memory):
    from sklearn.cluster import MiniBatchKMeans
    from sklearn.kernel_approximation import Nystroem
    from sklearn.metrics import adjusted_rand_score
    X, y = mixture(n, d, k, np.random.default_rng(seed + 1))
    sigma = kk.median_bandwidth(X)
    KernelKMeans(k, n_features=50, random_state=seed).fit(X[:2000])          # imports and first calls, untimed
    MiniBatchKMeans(k, random_state=seed, n_init=1).fit(X[:2000])
    with kk.options(memory=memory):
        t0 = time.perf_counter()
        ours = KernelKMeans(k, bandwidth=sigma, n_features=M, random_state=seed).fit(X)
        t_ours = time.perf_counter() - t0
    kept = n * M * 8 <= kk.get_options(memory=memory).memory
    t0 = time.perf_counter()
    Z = Nystroem(kernel="rbf", gamma=1.0 / (2 * sigma ** 2), n_components=M, random_state=seed).fit_transform(X)
    mb = MiniBatchKMeans(k, random_state=seed, n_init=1).fit(Z)
    t_sk = time.perf_counter() - t0
    row = dict(n=n, d=d, M=M, k=k, sigma=sigma, features_kept=kept, kernelkit_seconds=t_ours,
               kernelkit_iterations=int(ours.n_iter_), sklearn_seconds=t_sk, sklearn_over_kernelkit=t_sk / t_ours,
               kernelkit_inertia=ours.inertia_, sklearn_inertia=float(mb.inertia_),
               kernelkit_ari=float(adjusted_rand_score(y, ours.labels_)),
               sklearn_ari=float(adjusted_rand_score(y, mb.labels_)))
    print(f"KernelKMeans n = {n}, k = {k}, M = {M} (features {'kept' if kept else 'recomputed every pass'}): "
          f"kernelkit {t_ours:.2f} s ({ours.n_iter_} Lloyd iterations), scikit-learn Nystroem + MiniBatchKMeans "
          f"{t_sk:.2f} s, ratio {t_sk / t_ours:.2f}; inertia {ours.inertia_:.6g} vs {mb.inertia_:.6g} (each in "
          f"its own feature space); ARI vs mixture labels {row['kernelkit_ari']:.3f} vs {row['sklearn_ari']:.3f}")
    return row


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--pca-n", type=int, nargs="+", default=[10_000, 20_000])
    ap.add_argument("--m", type=int, default=1_000, help="Nystroem centres for KernelPCA")
    ap.add_argument("--components", type=int, default=10)
    ap.add_argument("--km-n", type=int, default=1_000_000)
    ap.add_argument("--km-m", type=int, default=100, help="Nystroem centres for k-means (both libraries)")
    ap.add_argument("--clusters", type=int, default=8)
    ap.add_argument("--d", type=int, default=10)
    ap.add_argument("--memory", default="1GB", help="kernelkit's memory budget")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--skip-pca", action="store_true")
    ap.add_argument("--skip-kmeans", action="store_true")
    args = ap.parse_args(argv)
    limit = {}
    if args.threads is not None:
        from threadpoolctl import threadpool_limits
        limit = threadpool_limits(args.threads)
    results = dict(d=args.d, threads=args.threads, memory=args.memory, seed=args.seed,
                   machine=platform.processor() or platform.machine(), cpus=os.cpu_count())
    opts = {} if args.threads is None else {"threads": args.threads}
    with kk.options(**opts):
        if not args.skip_pca:
            results["kernel_pca"] = bench_pca(args.pca_n, args.d, args.m, args.components, args.clusters,
                                              args.seed, args.memory)
        if not args.skip_kmeans:
            results["kernel_kmeans"] = bench_kmeans(args.km_n, args.d, args.km_m, args.clusters, args.seed,
                                                    args.memory)
    del limit
    write_results("decomposition", results)


if __name__ == "__main__":
    main()
