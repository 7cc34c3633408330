"""Kernel density estimation: kernelkit vs scipy gaussian_kde, scikit-learn KernelDensity (rtol=0), KDEpy.

Part 1 (speed): Gaussian KDE, n sources x m queries in d = 3, same bandwidth
everywhere, timed in the same run; prints time ratios and max relative
differences of the log densities to kernelkit's.

Part 2 (high dimension): d = 64, log density at a few queries from each
package vs the exact log-domain value (scipy.special.logsumexp in float64).

Run:  flock /tmp/kk-bench.lock python benchmarks/bench_density.py [--n 100000 --m 10000]
Writes benchmarks/results/density.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time

import numpy as np
from scipy import stats
from scipy.special import logsumexp

import kernelkit as kk


def _time(fn):
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


def _kdepy(X, Y, h):
    try:
        from KDEpy import NaiveKDE
    except ImportError:
        return None
    with np.errstate(divide="ignore"):
        return np.log(NaiveKDE(kernel="gaussian", bw=h).fit(X).evaluate(Y))


def speed(n, m, d, seed):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    Y = rng.standard_normal((m, d))
    h = kk.bandwidth_scott(X)
    rows = []
    kde = kk.KernelDensity(bandwidth=h).fit(X)
    ours, t_ours = _time(lambda: kde.score_samples(Y))
    rows.append(dict(package="kernelkit", seconds=t_ours, max_rel_diff=0.0))

    ref = stats.gaussian_kde(X.T)
    ref.covariance = h * h * np.eye(d)  # same isotropic kernel as kernelkit
    ref.cho_cov = np.linalg.cholesky(ref.covariance)
    ref.log_det = 2 * np.log(np.diag(ref.cho_cov)).sum()
    scipy_out, t = _time(lambda: ref.logpdf(Y.T))
    rows.append(dict(package="scipy gaussian_kde", seconds=t,
                     max_rel_diff=float(np.max(np.abs(scipy_out / ours - 1)))))

    from sklearn.neighbors import KernelDensity as SkKDE
    sk = SkKDE(bandwidth=h, rtol=0.0, atol=0.0).fit(X)
    sk_out, t = _time(lambda: sk.score_samples(Y))
    rows.append(dict(package="sklearn KernelDensity (rtol=0)", seconds=t,
                     max_rel_diff=float(np.max(np.abs(sk_out / ours - 1)))))

    kp, t = _time(lambda: _kdepy(X, Y, h))
    if kp is not None:
        rows.append(dict(package="KDEpy NaiveKDE", seconds=t, max_rel_diff=float(np.max(np.abs(kp / ours - 1)))))
    for r in rows:
        r["slower_than_kernelkit"] = r["seconds"] / t_ours
    return dict(n=n, m=m, d=d, bandwidth=h, engine_fused=bool(kk.engine.fused_available()), rows=rows)


def high_dim(d, seed, n=2000, m=5):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    Y = rng.standard_normal((m, d)) * 1.5
    h = kk.bandwidth_scott(X)
    D2 = ((Y[:, None, :] - X[None, :, :]) ** 2).sum(-1)
    exact = logsumexp(-D2 / (2 * h * h), axis=1) - np.log(n) - 0.5 * d * np.log(2 * np.pi * h * h)
    out = {"exact (log domain, float64)": exact,
           "kernelkit": kk.KernelDensity(bandwidth=h).fit(X).score_samples(Y)}
    ref = stats.gaussian_kde(X.T)
    ref.covariance = h * h * np.eye(d)
    ref.cho_cov = np.linalg.cholesky(ref.covariance)
    ref.log_det = 2 * np.log(np.diag(ref.cho_cov)).sum()
    with np.errstate(all="ignore"):
        out["scipy gaussian_kde"] = ref.logpdf(Y.T)
        from sklearn.neighbors import KernelDensity as SkKDE
        out["sklearn KernelDensity (rtol=0)"] = SkKDE(bandwidth=h, rtol=0.0).fit(X).score_samples(Y)
        kp = _kdepy(X, Y, h)
        if kp is not None:
            out["KDEpy NaiveKDE"] = kp
    return dict(d=d, n=n, bandwidth=h, log_density={k: [float(v) for v in vals] for k, vals in out.items()})


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--n", type=int, default=100_000)
    p.add_argument("--m", type=int, default=10_000)
    p.add_argument("--d", type=int, default=3)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    res = speed(args.n, args.m, args.d, args.seed)
    print(f"Gaussian KDE, n={args.n:,} sources, m={args.m:,} queries, d={args.d}, bandwidth {res['bandwidth']:.4g}, "
          f"fused engine: {res['engine_fused']}")
    print(f"{'package':34s} {'seconds':>9s} {'x kernelkit':>12s} {'max rel diff':>13s}")
    for r in res["rows"]:
        print(f"{r['package']:34s} {r['seconds']:9.3f} {r['slower_than_kernelkit']:12.2f} {r['max_rel_diff']:13.2e}")
    hd = high_dim(64, args.seed)
    print(f"\nd=64, n={hd['n']:,}, bandwidth {hd['bandwidth']:.4g}: log density at {len(hd['log_density']['kernelkit'])} queries")
    for k, vals in hd["log_density"].items():
        print(f"{k:34s} " + " ".join(f"{v:10.3f}" for v in vals))
    out = dict(speed=res, high_dim=hd, machine=platform.processor() or platform.machine(), cpus=os.cpu_count())
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results", "density.json")
    with open(path, "w") as f:
        json.dump(out, f, indent=1)
    print(f"\nwrote {path}")


if __name__ == "__main__":
    main()
