"""Density estimation beyond the plain KDE: diagnostics, mean shift, compact kernels, bandwidth regimes.

Part 1 (diagnostics cost): ``KernelDensity.diagnose`` against ``score_samples`` alone, n = 1e5 sources,
1e4 queries, d = 32 (target: at most 2x).
Part 2 (mean shift): n = 1e5 points of a 2-D mixture, 1e4 seeds, Gaussian kernel: kernelkit's mean
shift against scikit-learn's MeanShift (its only kernel is flat; bin seeding off, the same seeds).
The two use different kernels, so the modes are compared to each other (distance between matched
modes) and the times side by side; the flat-kernel comparison at the same modes needs the Epanechnikov
shadow (flat) mean shift, which kernelkit runs too (``--flat``).
Part 3 (compact kernels): scikit-learn's six kernel names, n = 1e5, 1e4 queries, d = 3: kernelkit vs
scikit-learn's KernelDensity (rtol = 0, atol = 0), time ratio and largest log-density difference on
the support.
Part 5 (bandwidth matrix): ``bandwidth_matrix="full"`` (Scott) against scipy's ``gaussian_kde``, n = 1e5,
1e4 queries, d = 3, correlated data.
Part 4 (regimes): where Scott, Silverman, the likelihood cross-validation ('cv') and LSCV land relative to
the Gaussian-data thresholds h_CLT and h_G, for d in {8, 32, 128} and n in {1e3, 1e4, 1e5}, N(0, I) data,
with the median n_eff of 500 held-out queries at each rule's bandwidth.

Run:  flock /tmp/kk-bench.lock python benchmarks/bench_density_highdim.py [--parts 1,2,3,4] [--quick]
Writes benchmarks/results/density_highdim.json.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

import kernelkit as kk
from kernelkit.density import regime_thresholds

from _machine import cpu_info, cpu_line
from _results import best_of as _timed, write_results




def part_diagnostics(n, m, d, seed):
    rng = np.random.default_rng(seed)
    X, Y = rng.standard_normal((n, d)), rng.standard_normal((m, d))
    kde = kk.KernelDensity().fit(X)
    _, t_score = _timed(lambda: kde.score_samples(Y), 2)
    rep, t_diag = _timed(lambda: kde.diagnose(Y, warn=False), 2)
    row = {"n": n, "m": m, "d": d, "bandwidth": kde.bandwidth_, "score_samples_s": t_score, "diagnose_s": t_diag,
           "ratio": t_diag / t_score, "median_n_eff": float(np.median(rep.n_eff)), "fractions": rep.fractions()}
    print(f"diagnose vs score_samples, n={n:,}, m={m:,}, d={d}: {t_diag:.2f} s vs {t_score:.2f} s "
          f"(ratio {t_diag / t_score:.2f}); median n_eff {row['median_n_eff']:.3g}, {rep.fractions()}")
    return row


def part_mean_shift(n, n_seeds, seed, flat):
    from sklearn.cluster import MeanShift
    rng = np.random.default_rng(seed)
    centres = np.array([[0.0, 0.0], [4.0, 0.0], [0.0, 4.0], [4.0, 4.0]])
    X = np.concatenate([rng.normal(c, 0.8, (n // 4, 2)) for c in centres])
    seeds = X[rng.choice(X.shape[0], n_seeds, replace=False)]
    h = 0.6
    kernel = "epanechnikov" if flat else "gaussian"   # Epanechnikov's mean-shift weights are the flat kernel
    kde = kk.KernelDensity(kernel=kernel, bandwidth=h).fit(X)
    ours, t_ours = _timed(lambda: kde.modes(seeds, tol=1e-4, merge_radius=0.5))
    sk = MeanShift(bandwidth=h, seeds=seeds, bin_seeding=False, cluster_all=True, n_jobs=None)
    _, t_sk = _timed(lambda: sk.fit(X))
    sk_modes = sk.cluster_centers_
    # match each of our modes with the nearest scikit-learn mode
    dist = np.sqrt(((ours.modes[:, None, :] - sk_modes[None, :, :]) ** 2).sum(-1))
    row = {"n": X.shape[0], "seeds": n_seeds, "bandwidth": h, "kernel": kernel, "kernelkit_s": t_ours,
           "sklearn_s": t_sk, "speedup": t_sk / t_ours, "kernelkit_modes": ours.modes.shape[0],
           "sklearn_modes": int(sk_modes.shape[0]),
           "largest_matched_mode_distance": float(dist.min(axis=1).max()) if dist.size else None}
    print(f"mean shift ({kernel} kernel, shadow {'flat' if flat else 'Gaussian'}), n={X.shape[0]:,}, {n_seeds:,} "
          f"seeds: kernelkit {t_ours:.2f} s ({ours.modes.shape[0]} modes, {ours.n_iter} iterations) vs scikit-learn "
          f"MeanShift (flat) {t_sk:.2f} s ({sk_modes.shape[0]} modes): {t_sk / t_ours:.1f}x; largest distance "
          f"between matched modes {row['largest_matched_mode_distance']:.2e}")
    return row


def part_compact(n, m, d, seed):
    from sklearn.neighbors import KernelDensity as SkKDE
    rng = np.random.default_rng(seed)
    X, Y = rng.standard_normal((n, d)), 1.2 * rng.standard_normal((m, d))
    rows = []
    for name in ("gaussian", "tophat", "epanechnikov", "exponential", "linear", "cosine"):
        h = 0.5
        ours, t_ours = _timed(lambda: kk.KernelDensity(kernel=name, bandwidth=h).fit(X).score_samples(Y))
        theirs, t_sk = _timed(lambda: SkKDE(kernel=name, bandwidth=h, rtol=0, atol=0).fit(X).score_samples(Y))
        inside = np.isfinite(ours) & np.isfinite(theirs)
        row = {"kernel": name, "kernelkit_s": t_ours, "sklearn_s": t_sk, "speedup": t_sk / t_ours,
               "max_abs_diff_on_support": float(np.max(np.abs(ours[inside] - theirs[inside]))),
               "queries_outside_support": int(np.count_nonzero(~np.isfinite(ours))),
               "sklearn_finite_outside_support": int(np.count_nonzero(~np.isfinite(ours) & np.isfinite(theirs)))}
        rows.append(row)
        print(f"{name:>12}: kernelkit {t_ours:.3f} s, scikit-learn {t_sk:.2f} s ({t_sk / t_ours:.0f}x); max |diff| "
              f"{row['max_abs_diff_on_support']:.1e} on the support; {row['queries_outside_support']} queries with "
              f"zero density ({row['sklearn_finite_outside_support']} of them finite in scikit-learn)")
    return rows


def part_full_covariance(n, m, d, seed):
    """Full-covariance Gaussian KDE (Scott's factor times the data covariance): kernelkit's
    bandwidth_matrix="full" against scipy's gaussian_kde on correlated data."""
    from scipy.stats import gaussian_kde
    rng = np.random.default_rng(seed)
    M = np.array([[1.0, 0.6, 0.0], [0.0, 0.8, 0.3], [0.0, 0.0, 0.25]])[:d, :d]
    X, Y = rng.standard_normal((n, d)) @ M, rng.standard_normal((m, d)) @ M
    ours, t_ours = _timed(lambda: kk.KernelDensity(bandwidth_matrix="full").fit(X).score_samples(Y))
    theirs, t_sp = _timed(lambda: gaussian_kde(X.T).logpdf(Y.T))
    row = {"n": n, "m": m, "d": d, "kernelkit_s": t_ours, "scipy_s": t_sp, "speedup": t_sp / t_ours,
           "max_abs_diff": float(np.max(np.abs(ours - theirs)))}
    print(f"full covariance (Scott), n={n:,}, m={m:,}, d={d}: kernelkit {t_ours:.2f} s, scipy gaussian_kde "
          f"{t_sp:.2f} s ({t_sp / t_ours:.1f}x); max |log density diff| {row['max_abs_diff']:.1e}")
    return row


def part_regimes(ns, ds, seed, cv_max_eval):
    rows = []
    for d in ds:
        for n in ns:
            rng = np.random.default_rng(seed)
            X, Y = rng.standard_normal((n, d)), rng.standard_normal((500, d))
            hc, hg = regime_thresholds(n, d)
            line = {"n": n, "d": d, "h_CLT": hc, "h_G": hg}
            text = [f"d={d:>3} n={n:>7,}: h_G {hg:.3f}, h_CLT {hc:.3f}"]
            for rule in ("scott", "silverman", "cv", "lscv"):
                t0 = time.perf_counter()
                kde = kk.KernelDensity(bandwidth=rule, cv_grid=16, cv_max_eval=cv_max_eval).fit(X)
                t = time.perf_counter() - t0
                rep = kde.diagnose(Y, warn=False)
                h = kde.bandwidth_
                line[rule] = {"h": h, "h_over_h_G": h / hg, "h_over_h_CLT": h / hc,
                              "median_n_eff": float(np.median(rep.n_eff)),
                              "extreme_value_fraction": rep.fractions()["extreme-value"], "fit_s": t}
                text.append(f"{rule} {h:.3f} (h/h_G {h / hg:.2f}, n_eff {np.median(rep.n_eff):.3g})")
            rows.append(line)
            print("; ".join(text))
    return rows


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--parts", default="1,2,3,4")
    p.add_argument("--quick", action="store_true", help="small sizes (a smoke run)")
    p.add_argument("--flat", action="store_true", help="part 2 with the Epanechnikov kernel (flat shadow)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--name", default="density_highdim")
    p.add_argument("--seeds-ms", type=int, default=10_000, help="part 2: mean-shift seeds")
    p.add_argument("--compact-m", type=int, default=10_000, help="part 3: queries")
    p.add_argument("--regime-n", default="1000,10000,100000", help="part 4: sizes n")
    p.add_argument("--regime-d", default="8,32,128", help="part 4: dimensions d")
    a = p.parse_args()
    parts = {int(x) for x in a.parts.split(",")}
    q = a.quick
    info = cpu_info()
    print(cpu_line(info))
    out = {"machine": info}
    if 1 in parts:
        out["diagnostics"] = part_diagnostics(10_000 if q else 100_000, 1_000 if q else 10_000, 32, a.seed)
    if 2 in parts:
        out["mean_shift"] = [part_mean_shift(10_000 if q else 100_000, 500 if q else a.seeds_ms, a.seed, flat)
                             for flat in ((False, True) if not a.flat else (True,))]
    if 3 in parts:
        out["compact"] = part_compact(10_000 if q else 100_000, 1_000 if q else a.compact_m, 3, a.seed)
    if 5 in parts:
        out["full_covariance"] = part_full_covariance(10_000 if q else 100_000, 1_000 if q else 10_000, 3, a.seed)
    if 4 in parts:
        out["regimes"] = part_regimes((1_000, 10_000) if q else tuple(int(v) for v in a.regime_n.split(",")),
                                      (8, 32) if q else tuple(int(v) for v in a.regime_d.split(",")), a.seed,
                                      1_000 if q else 2_000)
    write_results(a.name, out)


if __name__ == "__main__":
    main()
