"""Falkon regression: kernelkit's FalkonRegressor vs a NumPy Nystrom-PCG reference vs scikit-learn Nystroem + Ridge.

Synthetic Friedman #1 target in d dimensions (only the first 5 features
matter): x ~ U[0, 1]^d, y = 10 sin(pi x1 x2) + 20 (x3 - 1/2)^2 + 10 x4 + 5 x5 + N(0, 1),
standardised (so the test MSE is a fraction of Var(y); the noise floor is
about 1 / Var(raw y) = 0.04). Same Gaussian kernel (median-heuristic
bandwidth), same M uniform centres, same penalty lambda (Falkon scaling,
scikit-learn alpha = lambda n) and the same number of CG iterations for the
two Falkon solvers; all three side by side in one run.

- kernelkit: ``FalkonRegressor`` (engine kernel sums, nothing n x M stored).
- reference: Falkon's Algorithm 1 (Rudi et al. 2017) written in NumPy: each
  CG iteration recomputes K_nM by row blocks (BLAS distances + exp) and
  applies K_nM^T K_nM.
- scikit-learn: ``Nystroem(n_components=M)`` features + ``Ridge(alpha=lambda n)``
  (for n M > 2.5e8 the features are made by row blocks and the ridge normal
  equations accumulated, which is what Ridge's Cholesky solver computes).

Run:  flock /tmp/kk-bench.lock python benchmarks/bench_falkon.py            (n = 200,000, M = 5,000, d = 20)
      python benchmarks/bench_falkon.py --n 20000 --m 1000                  (smoke size)
Options: --d, --iters (CG iterations, default 20), --penalty, --threads.
Writes benchmarks/results/falkon.json.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time

import numpy as np
import scipy.linalg

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import kernelkit as kk  # noqa: E402
from kernelkit.regression import FalkonRegressor  # noqa: E402
from _datasets import friedman  # noqa: E402
from _results import write_results  # noqa: E402


def _gauss(A, B, sigma):
    D = (A * A).sum(1)[:, None] + (B * B).sum(1)[None, :] - 2 * A @ B.T
    return np.exp(-np.maximum(D, 0) / (2 * sigma ** 2))


def numpy_falkon(X, y, C, sigma, lam, iters, block=4096):
    """Falkon's Algorithm 1 in NumPy (CG on the preconditioned system, K_nM recomputed by blocks)."""
    n, M = X.shape[0], C.shape[0]
    KMM = _gauss(C, C, sigma)
    T = scipy.linalg.cholesky(KMM + 1e-12 * M * np.eye(M), lower=False)
    A = scipy.linalg.cholesky(T @ T.T / M + lam * np.eye(M), lower=False)

    def knm_t_knm(u, v):   # sum_blocks Kr^T (Kr u + v)
        w = np.zeros(M)
        for a in range(0, n, block):
            Kr = _gauss(X[a:a + block], C, sigma)
            w += Kr.T @ (Kr @ u + v[a:a + block])
        return w

    tri = scipy.linalg.solve_triangular

    def BHB(u):
        Au = tri(A, u)
        return tri(A, tri(T, knm_t_knm(tri(T, Au), np.zeros(n)) / n, trans="T") + lam * Au, trans="T")

    r = tri(A, tri(T, knm_t_knm(np.zeros(M), y / n), trans="T"), trans="T")
    beta = np.zeros(M)
    p = r.copy()
    rs = r @ r
    for _ in range(iters):
        Ap = BHB(p)
        a = rs / (p @ Ap)
        beta += a * p
        r -= a * Ap
        rs_new = r @ r
        p = r + rs_new / rs * p
        rs = rs_new
    return tri(T, tri(A, beta))


def sklearn_nystroem_ridge(X, y, idx, sigma, lam, Xt, seed):
    from sklearn.kernel_approximation import Nystroem
    from sklearn.linear_model import Ridge
    M = len(idx)
    ny = Nystroem(kernel="rbf", gamma=1 / (2 * sigma ** 2), n_components=M, random_state=seed).fit(X)
    alpha = lam * X.shape[0]
    if X.shape[0] * M <= 2.5e8:
        model = Ridge(alpha=alpha, fit_intercept=False, solver="cholesky").fit(ny.transform(X), y)
        return model.predict(ny.transform(Xt))
    G, b = np.zeros((M, M)), np.zeros(M)
    for a in range(0, X.shape[0], 20000):
        F = ny.transform(X[a:a + 20000])
        G += F.T @ F
        b += F.T @ y[a:a + 20000]
    G[np.diag_indices(M)] += alpha
    w = scipy.linalg.solve(G, b, assume_a="pos")
    return ny.transform(Xt) @ w


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=200_000)
    ap.add_argument("--m", type=int, default=5_000, help="number of centres M")
    ap.add_argument("--d", type=int, default=20)
    ap.add_argument("--iters", type=int, default=20)
    ap.add_argument("--penalty", type=float, default=1e-6)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--skip-reference", action="store_true", help="skip the (slow) NumPy reference")
    args = ap.parse_args(argv)
    rng = np.random.default_rng(args.seed)
    X, y = friedman(args.n, args.d, rng)
    Xt, yt = friedman(20_000, args.d, rng)
    mu, sd = y.mean(), y.std()
    y, yt = (y - mu) / sd, (yt - mu) / sd
    sigma = kk.median_bandwidth(X)
    lam, M = args.penalty, args.m
    print(f"n = {args.n}, d = {args.d}, M = {M}, lambda = {lam:g} (sklearn alpha = {lam * args.n:g}), "
          f"Gaussian sigma = {sigma:.4g} (median), {args.iters} CG iterations, threads = {args.threads or 'all'}")
    rows = []

    def mse(p):
        return float(np.mean((p - yt) ** 2))

    opts = {} if args.threads is None else {"threads": args.threads}
    with kk.options(**opts):
        for dtype in ("float64", "float32"):
            t0 = time.perf_counter()
            m = FalkonRegressor(kk.Gaussian(sigma), lam, M, max_iter=args.iters, tol=0.0, random_state=args.seed,
                                dtype=dtype).fit(X, y)
            t_fit = time.perf_counter() - t0
            rows.append(dict(method=f"kernelkit FalkonRegressor ({dtype})", fit_seconds=t_fit,
                             test_mse=mse(m.predict(Xt)), iterations=int(m.n_iter_),
                             final_relative_residual=float(m.residuals_[-1])))
            print(rows[-1])
        idx = m.center_indices_
    C = X[idx]
    if not args.skip_reference:
        t0 = time.perf_counter()
        alpha = numpy_falkon(X, y, C, sigma, lam, args.iters)
        t_ref = time.perf_counter() - t0
        rows.append(dict(method="NumPy Nystrom-PCG reference", fit_seconds=t_ref,
                         test_mse=mse(_gauss(Xt, C, sigma) @ alpha), iterations=args.iters))
        print(rows[-1])
    t0 = time.perf_counter()
    pred = sklearn_nystroem_ridge(X, y, idx, sigma, lam, Xt, args.seed)
    rows.append(dict(method="scikit-learn Nystroem + Ridge", fit_seconds=time.perf_counter() - t0,
                     test_mse=mse(pred)))
    print(rows[-1])
    print(f"\n{'method':42s} {'fit s':>9s} {'test MSE':>10s} {'time / kernelkit f64':>21s}")
    base = rows[0]["fit_seconds"]
    for r in rows:
        print(f"{r['method']:42s} {r['fit_seconds']:9.2f} {r['test_mse']:10.4f} {r['fit_seconds'] / base:21.2f}")
    print(f"constant predictor test MSE: {float(np.mean(yt ** 2)):.4f}")
    write_results("falkon", dict(n=args.n, d=args.d, M=M, penalty=lam, sigma=sigma, iters=args.iters,
                                 threads=args.threads, machine=platform.processor() or platform.machine(),
                                 cpus=os.cpu_count(), rows=rows))


if __name__ == "__main__":
    main()
