"""Density estimation beyond the plain KDE: diagnostics, mean shift, compact kernels, bandwidth regimes.

Part 1 (diagnostics cost): ``KernelDensity.diagnose`` against ``score_samples`` alone, n = 1e5 sources,
1e4 queries, d = 32 (target: at most 2x).
Part 2 (mean shift): n = 1e5 points of a 2-D mixture, 1e4 seeds (``--seeds-ms``), h = 0.6: scikit-learn's
MeanShift (flat kernel, bin seeding off, the given seeds; fitted once) against kernelkit's mean shift from
the same seeds. With the Gaussian kernel (a different kernel) the modes are only near each other. With the
Epanechnikov kernel (``--flat`` runs only this one) the mean-shift weights are the flat kernel, and two
runs are timed: (1) scikit-learn's rules (``tol=1e-3``: its stop at a step <= 1e-3 h; ``rank_by="sklearn"``:
the end point with most points within h first, ties by the coordinates; ``merge_radius=1``: its merge
within h), printed: the largest distance between its centres and kernelkit's modes (both ways), and from
each centre to the nearest per-seed end point of kernelkit (the seed that produced it); the same with ties
broken by density (``rank_by="shadow"``), and whether the difference is only between equal counts;
(2) to the exact flat fixed points (``tol=1e-9``): scikit-learn stops short of them, so its centres are
continued to convergence by a NumPy loop ("polished") and compared with kernelkit's end point of the
seed that produced each centre, and with kernelkit's modes.
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


def _flat_fixed_point(X, z, h, max_iter=10_000):
    """Flat-kernel mean shift from z to its fixed point, in NumPy (independent of both libraries): z <- the
    mean of the points within h of z (scikit-learn's ``<= h``), until the mean repeats exactly (a flat-kernel
    fixed point is reached in finitely many steps: the neighbour set stops changing). (point, steps)."""
    z = np.asarray(z, dtype=np.float64)
    for it in range(max_iter):
        new = X[((X - z) ** 2).sum(1) <= h * h].mean(0)
        if np.array_equal(new, z):
            return new, it
        z = new
    raise RuntimeError(f"no flat fixed point from {z} in {max_iter} steps")


def _nearest(A, B):
    """For each row of A, the distance to the nearest row of B."""
    return np.sqrt(((A[:, None, :] - B[None, :, :]) ** 2).sum(-1)).min(axis=1)


def part_mean_shift(n, n_seeds, seed, kernels):
    """Mean shift from the same seeds: scikit-learn's MeanShift (flat kernel, fitted once) against kernelkit
    with each kernel in ``kernels`` ("gaussian": a different kernel, modes compared loosely; "epanechnikov":
    its shadow is the flat kernel, so the modes are compared exactly, see the printed lines)."""
    from sklearn.cluster import MeanShift
    rng = np.random.default_rng(seed)
    centres = np.array([[0.0, 0.0], [4.0, 0.0], [0.0, 4.0], [4.0, 4.0]])
    X = np.concatenate([rng.normal(c, 0.8, (n // 4, 2)) for c in centres])
    seeds = X[rng.choice(X.shape[0], n_seeds, replace=False)]
    h = 0.6
    print(f"mean shift, n={X.shape[0]:,}, {n_seeds:,} seeds, h={h}: scikit-learn MeanShift(bandwidth={h}, "
          "seeds=..., bin_seeding=False) running...", flush=True)
    sk = MeanShift(bandwidth=h, seeds=seeds, bin_seeding=False, cluster_all=True, n_jobs=None)
    _, t_sk = _timed(lambda: sk.fit(X))
    C = sk.cluster_centers_
    print(f"  scikit-learn: {t_sk:.2f} s, {C.shape[0]} centres, {sk.n_iter_} iterations", flush=True)
    rows = []
    for kernel in kernels:
        kde = kk.KernelDensity(kernel=kernel, bandwidth=h).fit(X)
        if kernel != "epanechnikov":   # a different kernel: modes near each other, not equal
            ours, t_ours = _timed(lambda: kde.modes(seeds, tol=1e-4, merge_radius=0.5))
            dist = _nearest(ours.modes, C)
            rows.append({"n": X.shape[0], "seeds": n_seeds, "bandwidth": h, "kernel": kernel, "kernelkit_s": t_ours,
                         "sklearn_s": t_sk, "speedup": t_sk / t_ours, "kernelkit_modes": int(ours.modes.shape[0]),
                         "sklearn_modes": int(C.shape[0]), "largest_matched_mode_distance": float(dist.max())})
            print(f"  kernelkit {kernel} kernel (a different kernel: modes near scikit-learn's flat ones, not "
                  f"equal): {t_ours:.2f} s ({ours.modes.shape[0]} modes, {ours.n_iter} iterations), "
                  f"{t_sk / t_ours:.1f}x; each mode to the nearest scikit-learn centre <= {dist.max():.2e}",
                  flush=True)
            continue
        # (1) scikit-learn's rules: stop at a step <= 1e-3 h, rank the end points by the number of points
        # within h (the flat shadow's sum), ties by the coordinates (rank_by="sklearn"), merge within h
        rule, t_rule = _timed(lambda: kde.modes(seeds, tol=1e-3, merge_radius=1.0, rank_by="sklearn"))
        # (1') the same, ties between equal counts broken by the density instead (rank_by="shadow")
        tied = kde.modes(seeds, tol=1e-3, merge_radius=1.0, rank_by="shadow")
        d_tied = max(_nearest(C, tied.modes).max(), _nearest(tied.modes, C).max())

        def rep_sum(r):   # the shadow sum (points within h) of the seed each mode is the end point of
            return np.array([r.shadow_sums[np.flatnonzero((r.points == m).all(1))[0]] for m in r.modes])
        tie_only = bool(tied.modes.shape == rule.modes.shape and np.array_equal(np.sort(rep_sum(tied)),
                                                                               np.sort(rep_sum(rule))))
        # (2) to the exact flat-kernel fixed points (steps to 0), otherwise as (1)
        fixed, t_fixed = _timed(lambda: kde.modes(seeds, tol=1e-9, merge_radius=1.0, rank_by="sklearn"))
        # scikit-learn's centres: to kernelkit's modes (1), and to kernelkit's per-seed end points (1): each of
        # its centres is one seed's end point, so the seed that produced it is the one ending there
        d_modes = max(_nearest(C, rule.modes).max(), _nearest(rule.modes, C).max())
        dd = np.sqrt(((C[:, None, :] - rule.points[None, :, :]) ** 2).sum(-1))
        src = dd.argmin(axis=1)
        d_points = dd.min(axis=1).max()
        # scikit-learn continued to convergence: each centre polished to its flat fixed point (NumPy loop),
        # against kernelkit's exact end point (2) of the seed that produced the centre
        polished = np.array([_flat_fixed_point(X, c, h)[0] for c in C])
        d_sk_short = np.sqrt(((C - polished) ** 2).sum(1)).max()
        d_seed_fixed = np.sqrt(((fixed.points[src] - polished) ** 2).sum(1)).max()
        d_fixed_modes = max(_nearest(polished, fixed.modes).max(), _nearest(fixed.modes, polished).max())
        d_fixed_raw = _nearest(C, fixed.modes).max()
        own = np.array([_flat_fixed_point(X, m, h)[0] for m in fixed.modes])
        d_own = np.sqrt(((own - fixed.modes) ** 2).sum(1)).max()
        row = {"n": X.shape[0], "seeds": n_seeds, "bandwidth": h, "kernel": kernel, "sklearn_s": t_sk,
               "sklearn_modes": int(C.shape[0]), "sklearn_iterations": int(sk.n_iter_),
               "kernelkit_sklearn_rule_s": t_rule, "speedup_sklearn_rule": t_sk / t_rule,
               "kernelkit_sklearn_rule_modes": int(rule.modes.shape[0]),
               "kernelkit_sklearn_rule_iterations": int(rule.n_iter),
               "largest_distance_sklearn_centres_kernelkit_modes": float(d_modes),
               "largest_distance_sklearn_centres_kernelkit_seed_end_points": float(d_points),
               "largest_distance_sklearn_centres_kernelkit_modes_density_ties": float(d_tied),
               "density_ties_differ_only_between_equal_counts": tie_only,
               "kernelkit_fixed_s": t_fixed, "speedup_fixed": t_sk / t_fixed,
               "kernelkit_fixed_modes": int(fixed.modes.shape[0]), "kernelkit_fixed_iterations": int(fixed.n_iter),
               "kernelkit_fixed_converged": int(fixed.converged.sum()),
               "largest_distance_sklearn_centres_to_their_fixed_points": float(d_sk_short),
               "largest_distance_polished_sklearn_centres_kernelkit_same_seed_end_points": float(d_seed_fixed),
               "largest_distance_polished_sklearn_centres_kernelkit_fixed_modes": float(d_fixed_modes),
               "largest_distance_sklearn_centres_kernelkit_fixed_modes": float(d_fixed_raw),
               "largest_distance_kernelkit_fixed_modes_to_their_fixed_points": float(d_own)}
        rows.append(row)
        print(f"  kernelkit epanechnikov kernel (flat shadow), scikit-learn's rules (tol=1e-3 h, rank_by='sklearn': "
              f"most points within h, ties by coordinates, merge_radius=1 h): {t_rule:.2f} s "
              f"({rule.modes.shape[0]} modes, "
              f"{rule.n_iter} iterations): {t_sk / t_rule:.1f}x", flush=True)
        print(f"    scikit-learn's centres vs these modes (both ways): largest distance {d_modes:.2e}; each centre "
              f"to the nearest per-seed end point: {d_points:.2e}", flush=True)
        why = ("the same counts: ties of flat-kernel plateau points, not other modes" if tie_only
               else "the representatives' counts differ too: the merge went otherwise")
        print(f"    with ties between equal counts broken by density (rank_by='shadow'): largest distance "
              f"{d_tied:.2e} ({why})", flush=True)
        print(f"  kernelkit to the exact flat fixed points (tol=1e-9 h, otherwise the same): {t_fixed:.2f} s "
              f"({fixed.modes.shape[0]} modes, {fixed.n_iter} iterations, {int(fixed.converged.sum())} converged): "
              f"{t_sk / t_fixed:.1f}x", flush=True)
        print(f"    scikit-learn stops short: its centres are up to {d_sk_short:.2e} from their fixed points (NumPy "
              f"loop); its centres continued to convergence vs kernelkit's end point of the seed that produced each "
              f"centre: {d_seed_fixed:.2e}; vs kernelkit's modes: {d_fixed_modes:.2e} (raw centres vs these modes: "
              f"{d_fixed_raw:.2e}); kernelkit's modes to their fixed points: {d_own:.2e}", flush=True)
    return rows


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
        out["mean_shift"] = part_mean_shift(10_000 if q else 100_000, 500 if q else a.seeds_ms, a.seed,
                                            ("epanechnikov",) if a.flat else ("gaussian", "epanechnikov"))
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
