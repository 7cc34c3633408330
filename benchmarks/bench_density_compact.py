"""Compactly supported kernels with exact spatial pruning: kernelkit against scikit-learn.

Part a (density): scikit-learn's KernelDensity (tree, rtol = 0, atol = 0) against kernelkit's
KernelDensity for the six compact kernels under scikit-learn's names ("epanechnikov", "tophat",
"linear" = triangular, "cosine"; "biweight" and "triweight" have no scikit-learn counterpart and are
timed against kernelkit's unpruned engine only), n = 1e5 points of N(0, I_3), 1e4 queries of
N(0, 1.44 I_3), bandwidth 0.5 for both (the support radius). Both timings include fit; printed: the
time ratio, the largest |difference| of the log densities on the support (queries finite in both), and
kernelkit's pruned against unpruned (``prune=False``) time and difference.

Part b (mean shift): n = 1e5 points of a 2-D mixture of four Gaussians (std 0.8, centres on a 4 x 4
square), seeds drawn from the data, bandwidth 0.6: kernelkit's KernelDensity(kernel="epanechnikov")
.modes (its mean-shift weights are the flat kernel) against scikit-learn's MeanShift (flat kernel,
bin_seeding=False, the same seeds). Both stop by a step rule: scikit-learn when a step is at most
1e-3 * bandwidth, kernelkit when it is at most ``tol`` bandwidths. To tell the two stopping errors
apart, both sets of modes are iterated further with a direct flat mean shift (the mean of the points
within the bandwidth, NumPy) until the point set no longer changes (an exact fixed point), and the
distances to these fixed points are printed.

The machine is shared: all timings are "loaded"; compare the ratios (same process, same inputs).

Run:  flock /tmp/kk-bench.lock python benchmarks/bench_density_compact.py [--seeds 10000] [--quick]
Writes benchmarks/results/density_compact[_quick].json.
"""

from __future__ import annotations

import argparse

import numpy as np

import kernelkit as kk

from _machine import cpu_info, cpu_line
from _results import best_of as _timed, write_results

SKLEARN_NAMES = ("epanechnikov", "tophat", "linear", "cosine")
KERNELKIT_ONLY = ("biweight", "triweight")




def part_density(n, m, d, seed, reps):
    from sklearn.neighbors import KernelDensity as SkKDE
    rng = np.random.default_rng(seed)
    X, Y = rng.standard_normal((n, d)), 1.2 * rng.standard_normal((m, d))
    h = 0.5
    rows = []
    for name in SKLEARN_NAMES + KERNELKIT_ONLY:
        ours, t_ours = _timed(lambda: kk.KernelDensity(kernel=name, bandwidth=h).fit(X).score_samples(Y), reps)
        kde = kk.KernelDensity(kernel=name, bandwidth=h).fit(X)
        kernel, Xs, Ys, lw = kde._scaled_problem(Y)
        const = kde._log_norm()
        plain, t_plain = _timed(lambda: kk.engine.kernel_logsumexp(kernel, Xs, Ys, lw, prune=False) - const)
        inside = np.isfinite(ours)
        row = {"kernel": name, "kernelkit_s": t_ours, "unpruned_s": t_plain, "pruning_speedup": t_plain / t_ours,
               "max_abs_diff_vs_unpruned": float(np.max(np.abs(ours[inside] - plain[inside]))),
               "same_zero_density_queries": bool(np.array_equal(inside, np.isfinite(plain))),
               "queries_outside_support": int(np.count_nonzero(~inside))}
        text = (f"{name:>12}: kernelkit {t_ours * 1e3:7.1f} ms (unpruned {t_plain * 1e3:7.1f} ms, "
                f"{t_plain / t_ours:5.1f}x; max |diff| {row['max_abs_diff_vs_unpruned']:.1e})")
        if name in SKLEARN_NAMES:
            theirs, t_sk = _timed(lambda: SkKDE(kernel=name, bandwidth=h, rtol=0, atol=0).fit(X).score_samples(Y),
                                  reps)
            both = inside & np.isfinite(theirs)
            diff = np.abs(ours[both] - theirs[both])
            # the largest differences sit where the density is a few boundary terms (1 - r^2 / h^2 cancels)
            dens = ours[both] > np.quantile(ours[both], 0.01)
            row.update({"sklearn_s": t_sk, "speedup_vs_sklearn": t_sk / t_ours,
                        "max_abs_diff_vs_sklearn_on_support": float(diff.max()),
                        "max_abs_diff_vs_sklearn_above_1st_percentile": float(diff[dens].max()),
                        "sklearn_finite_where_kernelkit_zero": int(np.count_nonzero(~inside & np.isfinite(theirs)))})
            text += (f"; scikit-learn {t_sk * 1e3:7.1f} ms: {t_sk / t_ours:5.1f}x; max |diff| {diff.max():.1e} on "
                     f"the support ({diff[dens].max():.1e} above the 1st percentile of log density)")
        rows.append(row)
        print(text, flush=True)
    return {"n": n, "m": m, "d": d, "bandwidth": h, "rows": rows}


def mixture(n, seed):
    rng = np.random.default_rng(seed)
    centres = np.array([[0.0, 0.0], [4.0, 0.0], [0.0, 4.0], [4.0, 4.0]])
    return np.concatenate([rng.normal(c, 0.8, (n // 4, 2)) for c in centres]), rng


def flat_fixed_point(X, z, h, max_iter=100_000):
    """Iterate z <- mean of the points within h of z (scikit-learn's flat rule) until the set repeats."""
    from scipy.spatial import cKDTree
    tree = cKDTree(X)
    z = np.array(z, dtype=np.float64)
    for _ in range(max_iter):
        idx = tree.query_ball_point(z, h)
        new = X[idx].mean(axis=0)
        if np.array_equal(new, z):
            return new
        z = new
    return z


def part_mean_shift(n, n_seeds, seed, tol):
    from sklearn.cluster import MeanShift
    X, rng = mixture(n, seed)
    seeds = X[rng.choice(X.shape[0], n_seeds, replace=False)]
    h = 0.6
    kde = kk.KernelDensity(kernel="epanechnikov", bandwidth=h).fit(X)
    ours, t_ours = _timed(lambda: kde.modes(seeds, tol=tol, merge_radius=1.0))   # merged within h, as scikit-learn
    print(f"mean shift, n={X.shape[0]:,}, {n_seeds:,} seeds: kernelkit {t_ours:.2f} s ({ours.modes.shape[0]} modes, "
          f"{ours.n_iter} iterations); scikit-learn running...", flush=True)
    sk = MeanShift(bandwidth=h, seeds=seeds, bin_seeding=False, cluster_all=True)
    _, t_sk = _timed(lambda: sk.fit(X))
    sk_modes = sk.cluster_centers_
    exact_sk = np.array([flat_fixed_point(X, c, h) for c in sk_modes])
    exact_kk = np.array([flat_fixed_point(X, c, h) for c in ours.modes])
    dist = np.sqrt(((ours.modes[:, None, :] - sk_modes[None, :, :]) ** 2).sum(-1))
    dist_exact = np.sqrt(((ours.modes[:, None, :] - exact_sk[None, :, :]) ** 2).sum(-1))
    row = {"n": X.shape[0], "seeds": n_seeds, "bandwidth": h, "kernelkit_tol_bandwidths": tol,
           "kernelkit_s": t_ours, "sklearn_s": t_sk, "speedup": t_sk / t_ours,
           "kernelkit_modes": int(ours.modes.shape[0]), "sklearn_modes": int(sk_modes.shape[0]),
           "kernelkit_iterations": int(ours.n_iter), "kernelkit_converged": int(ours.converged.sum()),
           "largest_matched_distance_kernelkit_sklearn": float(dist.min(axis=1).max()),
           "largest_matched_distance_kernelkit_to_fixed_points_of_sklearn_modes": float(dist_exact.min(axis=1).max()),
           "sklearn_modes_to_their_fixed_points_max": float(np.sqrt(((sk_modes - exact_sk) ** 2).sum(1)).max()),
           "kernelkit_modes_to_their_fixed_points_max": float(np.sqrt(((ours.modes - exact_kk) ** 2).sum(1)).max())}
    print(f"mean shift, n={X.shape[0]:,}, {n_seeds:,} seeds, h={h}: kernelkit {t_ours:.2f} s ({row['kernelkit_modes']} "
          f"modes, {ours.n_iter} iterations, tol {tol:g} h) vs scikit-learn MeanShift {t_sk:.2f} s "
          f"({row['sklearn_modes']} modes): {t_sk / t_ours:.1f}x", flush=True)
    print(f"  matched modes kernelkit - scikit-learn: {row['largest_matched_distance_kernelkit_sklearn']:.1e}; "
          f"kernelkit - fixed points of scikit-learn's modes: "
          f"{row['largest_matched_distance_kernelkit_to_fixed_points_of_sklearn_modes']:.1e}; distance to their own "
          f"fixed points: scikit-learn {row['sklearn_modes_to_their_fixed_points_max']:.1e}, kernelkit "
          f"{row['kernelkit_modes_to_their_fixed_points_max']:.1e}", flush=True)
    return row


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--parts", default="a,b")
    p.add_argument("--quick", action="store_true", help="small sizes (a smoke run)")
    p.add_argument("--seeds", default="10000", help="part b: comma-separated numbers of seeds")
    p.add_argument("--tol", type=float, default=1e-4, help="part b: kernelkit's step tolerance (bandwidths)")
    p.add_argument("--reps", type=int, default=3, help="part a: best of this many runs")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--name", default=None)
    a = p.parse_args()
    parts = set(a.parts.split(","))
    info = cpu_info()
    print(cpu_line(info) + "  (shared machine: timings are loaded; read the ratios)")
    out = {"machine": info, "loaded": True}
    if "a" in parts:
        out["density"] = part_density(10_000 if a.quick else 100_000, 1_000 if a.quick else 10_000, 3, a.seed,
                                      1 if a.quick else a.reps)
    if "b" in parts:
        out["mean_shift"] = [part_mean_shift(10_000 if a.quick else 100_000, 200 if a.quick else int(s), a.seed,
                                             a.tol) for s in a.seeds.split(",")]
    write_results(a.name or ("density_compact_quick" if a.quick else "density_compact"), out)


if __name__ == "__main__":
    main()
