"""Approximate KDE with error control (kernelkit.density.ApproximateKDE) against the exact engine.

Data: river's shuttle (49,097 x 9, standardised by the train part; 2,000 held-out queries),
N(0, I_3) with n = 1e5 (2,000 queries; Scott's bandwidth only) and N(0, I_32) with n = 1e6 (4,096
held-out queries from the same distribution). Gaussian kernel.
Bandwidths: Scott's rule (kernelkit.density.bandwidth_scott) and DEANN's protocol (Karppa, Aumueller &
Pagh, AISTATS 2022): h such that the mean over the queries of (1/n) sum_i exp(-|y - x_i|^2 / (2 h^2))
is mu = 1e-3 (30 bisection steps on log h with the exact engine on 100 of the queries).
For each: kernelkit's exact KernelDensity.score_samples and ApproximateKDE.estimate (method="sample":
neighbours + uniform sample; method="tree": stratified tree sampling) in the same process, the
time ratio, the measured relative error |f_hat / f - 1| (mean, 95th percentile), the
promised one (rtol at failure probability delta, per query), the fraction of queries whose error is
within their own reported bound, and the fraction that converged. DEANN's published 0.11 ms per query
(shuttle, mu = 1e-3, their C++ code on their machine) is printed for context only.

Run:  flock /tmp/kk-bench.lock python benchmarks/bench_density_approx.py [--quick]
Writes benchmarks/results/density_approx.json. Timings on a shared machine are loaded: read the ratios.
"""

from __future__ import annotations

import argparse
import math
import time

import numpy as np

import kernelkit as kk
from kernelkit.density import bandwidth_scott
from kernelkit.density._approx import ApproximateKDE
from kernelkit.engine import kernel_logsumexp
from kernelkit.kernels import Gaussian

from _datasets import missing, shuttle_arrays, split, standardise
from _machine import cpu_info, cpu_line
from _results import write_results

DEFAULTS = dict(bound="bernstein", rtol=0.1, delta=0.05, n_neighbors=32, n_probe=4, max_samples=65536)
TREE_DEFAULTS = dict(bound=None, exact_above=4.0)   # method="tree": the CLT error estimate
DEANN_SHUTTLE_MS = 0.11  # DEANN's published ms per query, shuttle, mu = 1e-3 (their paper; context only)


def mu_bandwidth(X, Y, mu):
    """h with mean_j (1/n) sum_i exp(-|y_j - x_i|^2 / (2 h^2)) = mu (bisection on log h, exact engine)."""
    lo, hi = -10.0, 10.0
    for _ in range(30):
        mid = 0.5 * (lo + hi)
        v = np.mean(np.exp(kernel_logsumexp(Gaussian(float(np.exp(mid))), X, Y) - np.log(len(X))))
        lo, hi = (mid, hi) if v < mu else (lo, mid)
    return float(np.exp(0.5 * (lo + hi)))


def compare(name, X, Y, h, rule, settings):
    t0 = time.perf_counter()
    exact = kk.KernelDensity(bandwidth=h).fit(X).score_samples(Y)
    t_exact = time.perf_counter() - t0
    rows = []
    print(f"\n{name}: n={X.shape[0]:,}, d={X.shape[1]}, m={Y.shape[0]:,}, bandwidth {rule} h={h:.4g}; "
          f"exact {t_exact / len(Y) * 1e3:.4f} ms/query")
    models = {}
    for st in settings:
        method = st.get("method", "sample")
        if method not in models:  # one index per method, shared by its settings
            t0 = time.perf_counter()
            models[method] = ApproximateKDE(bandwidth=h, method=method, random_state=0).fit(X)
            t_fit = time.perf_counter() - t0
            print(f"  index ({method}): {models[method].n_cells_} {'leaves' if method == 'tree' else 'cells'}, "
                  f"built in {t_fit:.2f} s ({models[method].fit_time_})")
        model = models[method]
        t_fit = sum(model.fit_time_.values())
        model.set_params(**{**DEFAULTS, **({} if method == "sample" else TREE_DEFAULTS), **st})
        t0 = time.perf_counter()
        est = model.estimate(Y)
        t_q = time.perf_counter() - t0
        err = np.abs(np.expm1(est.log_density.astype(np.float64) - exact))
        within = np.mean(err <= est.rel_error * np.exp(est.log_density - exact) * (1 + 1e-9) + 1e-9)
        row = {"data": name, "rule": rule, "bandwidth": h, "n": X.shape[0], "d": X.shape[1], "m": Y.shape[0],
               **{k: (str(v) if v == math.inf else v) for k, v in st.items()},
               "exact_ms_per_query": t_exact / len(Y) * 1e3, "approx_ms_per_query": t_q / len(Y) * 1e3,
               "speedup": t_exact / t_q, "fit_s": t_fit, "fit_parts_s": model.fit_time_, "n_cells": model.n_cells_,
               "mean_rel_error": float(err.mean()), "p95_rel_error": float(np.quantile(err, 0.95)),
               "promised_rtol": st.get("rtol", 0.1), "delta": st.get("delta", 0.05),
               "within_own_bound": float(within), "converged": float(est.converged.mean()),
               "median_samples": float(np.median(est.n_samples))}
        rows.append(row)
        print(f"  {st}: {row['approx_ms_per_query']:.4f} ms/query, speedup {row['speedup']:.2f}x (fit "
              f"{t_fit:.1f} s); rel error mean {row['mean_rel_error']:.4f} p95 {row['p95_rel_error']:.4f} "
              f"(promised <= {row['promised_rtol']} w.p. {1 - row['delta']:.2f}); within own bound "
              f"{within:.3f}, converged {row['converged']:.3f}, median draws {row['median_samples']:.0f}")
    return rows


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="n = 2e5 for the Gaussian data, fewer queries")
    args = ap.parse_args()
    print(cpu_line())
    print(f"DEANN (published, context only): {DEANN_SHUTTLE_MS} ms per query on shuttle at mu = 1e-3")
    settings = [dict(bound="clt", rtol=0.25), dict(bound="clt", rtol=0.25, n_neighbors=8, n_probe=2),
                dict(bound="clt", rtol=0.1), dict(bound="bernstein", rtol=0.25, max_samples=4096)]
    tree = [dict(method="tree", rtol=0.25), dict(method="tree", rtol=0.25, exact_above=math.inf),
            dict(method="tree", rtol=0.1)]
    results = {"machine": cpu_info(), "deann_shuttle_ms_per_query": DEANN_SHUTTLE_MS, "rows": []}
    why = missing("river")
    if why:
        print("shuttle", why)
    else:
        Xall, _ = shuttle_arrays()
        tr, te = split(len(Xall), 1 - 2000 / len(Xall), 0)
        X, Y, _, _ = standardise(Xall[tr], Xall[te])
        if args.quick:
            Y = Y[:500]
        for rule, h in (("scott", bandwidth_scott(X)), ("deann_mu_1e-3", mu_bandwidth(X, Y[:100], 1e-3))):
            results["rows"] += compare("shuttle", X, Y, h, rule, settings + tree)
    rng = np.random.default_rng(3)   # low dimension: where the tree's error estimate is least calibrated
    X3, Y3 = rng.standard_normal((100_000, 3)), rng.standard_normal((2000, 3))
    results["rows"] += compare("gaussian3", X3, Y3, bandwidth_scott(X3), "scott",
                               settings[:1] + [dict(method="tree", rtol=0.1), dict(method="tree", rtol=0.25)])
    rng = np.random.default_rng(1)
    n, m, d = (200_000, 1024, 32) if args.quick else (1_000_000, 4096, 32)
    X = rng.standard_normal((n, d))
    Y = rng.standard_normal((m, d))
    for rule, h in (("deann_mu_1e-3", mu_bandwidth(X, Y[:100], 1e-3)), ("scott", bandwidth_scott(X))):
        chosen = (settings[:1] if rule == "scott" else settings) + tree[:2]
        results["rows"] += compare("gaussian32", X, Y, h, rule, chosen)
    write_results("density_approx" + ("_quick" if args.quick else ""), results)


if __name__ == "__main__":
    main()
