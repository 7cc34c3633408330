"""Exact kernel ridge regression: kernelkit KernelRidge vs scikit-learn KernelRidge, side by side in one run.

Gaussian kernel (kernelkit ``Gaussian(sigma)`` = scikit-learn ``rbf`` with ``gamma = 1 / (2 sigma^2)``),
the same alpha, n training points in d dimensions, m test points. Prints the fit and predict times of
both, their ratios (scikit-learn / kernelkit) and the max relative difference of the predictions.
Memory: both hold the n x n kernel matrix (n = 20,000: 3.2 GB each, plus the factor); the kernelkit
memory budget is raised to fit it.

Run:  flock /tmp/kk-bench.lock python benchmarks/bench_regression_exact.py            # n = 20,000, d = 10
      python benchmarks/bench_regression_exact.py --n 3000                              # a quick smoke run
Writes benchmarks/results/regression_exact.json (or --out).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time

import numpy as np
from sklearn.kernel_ridge import KernelRidge as SkKernelRidge

import kernelkit as kk
from kernelkit.engine import cpu_features
from kernelkit.regression import KernelRidge


def _time(fn):
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


def make_data(n, d, m, seed):
    """The data: ``(X, y, Xt)``, X (n, d) and Xt (m, d) standard normal, y = sin x1 + x2 x3 / 2 + N(0, 0.01)."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    y = np.sin(X[:, 0]) + 0.5 * X[:, 1] * X[:, 2] + 0.1 * rng.standard_normal(n)
    Xt = rng.standard_normal((m, d))
    return X, y, Xt


def fit_kernelkit(X, y, Xt, alpha, sigma):
    """kernelkit's KernelRidge (memory budget raised to hold the n x n matrix): ``(pred, fit_s, predict_s, model)``."""
    n = X.shape[0]
    with kk.options(memory=max(10**9, 24 * n * n)):
        ours = KernelRidge("gaussian", alpha, bandwidth=sigma)
        _, t_fit = _time(lambda: ours.fit(X, y))
        pred, t_pred = _time(lambda: ours.predict(Xt))
    return pred, t_fit, t_pred, ours


def fit_sklearn(X, y, Xt, alpha, sigma):
    """scikit-learn's KernelRidge with the same kernel (rbf, gamma = 1 / (2 sigma^2)): ``(pred, fit_s, predict_s)``."""
    ref = SkKernelRidge(alpha=alpha, kernel="rbf", gamma=1.0 / (2 * sigma ** 2))
    _, t_fit = _time(lambda: ref.fit(X, y))
    pred, t_pred = _time(lambda: ref.predict(Xt))
    return pred, t_fit, t_pred


def run(n, d, m, alpha, seed):
    X, y, Xt = make_data(n, d, m, seed)
    sigma = kk.median_bandwidth(X)
    pred, t_fit, t_pred, _ = fit_kernelkit(X, y, Xt, alpha, sigma)
    rows = [dict(package="kernelkit", fit_s=t_fit, predict_s=t_pred, max_rel_diff=0.0)]
    pred_r, t_fit_r, t_pred_r = fit_sklearn(X, y, Xt, alpha, sigma)
    diff = float(np.max(np.abs(pred_r - pred) / np.maximum(np.abs(pred_r), 1e-300)))
    rows.append(dict(package="scikit-learn", fit_s=t_fit_r, predict_s=t_pred_r, max_rel_diff=diff))
    return dict(n=n, d=d, m=m, alpha=alpha, sigma=sigma, rows=rows,
                fit_ratio=t_fit_r / t_fit, predict_ratio=t_pred_r / t_pred)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=20_000, help="training points (default 20,000)")
    p.add_argument("--d", type=int, default=10, help="features (default 10)")
    p.add_argument("--m", type=int, default=20_000, help="test points (default 20,000)")
    p.add_argument("--alpha", type=float, default=1.0, help="penalty, the same for both (default 1.0)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "results", "regression_exact.json"))
    a = p.parse_args(argv)
    res = run(a.n, a.d, a.m, a.alpha, a.seed)
    print(f"KernelRidge, Gaussian sigma={res['sigma']:.4g}, alpha={a.alpha:g}: n={a.n}, d={a.d}, m={a.m}")
    print(f"{'package':<14}{'fit s':>10}{'predict s':>12}{'max rel diff':>15}")
    for r in res["rows"]:
        print(f"{r['package']:<14}{r['fit_s']:>10.3f}{r['predict_s']:>12.3f}{r['max_rel_diff']:>15.2e}")
    print(f"ratio scikit-learn / kernelkit: fit {res['fit_ratio']:.2f}x, predict {res['predict_ratio']:.2f}x")
    res["machine"] = dict(platform=platform.platform(), cpus=os.cpu_count(), engine=cpu_features()["engine"])
    os.makedirs(os.path.dirname(a.out) or ".", exist_ok=True)
    with open(a.out, "w") as f:
        json.dump(res, f, indent=2)
    return res


if __name__ == "__main__":
    main()
