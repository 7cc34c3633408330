"""KSD goodness-of-fit tests: power on published setups and type-I error (kernelkit.stats).

Three parts, each with its repetitions as a parameter:

1. ``rbm``: KSDAgg's Gaussian-Bernoulli RBM (Schrab, Guedj & Gretton 2022, Section 4.4, after Liu et al.
   2016): model p(x, h) ~ exp(x^T B h + b^T x + c^T h - |x|^2 / 2), h in {-1, 1}^40, x in R^50,
   B in {-1, 1}^(50 x 40), b, c standard normal; the sample comes from the same RBM with
   B + sigma_per N(0, 1) entries, n = 1,000; score of the model b - x + B tanh(B^T x + c).
   Samples are drawn by Gibbs sampling with n parallel chains (burn-in 2,000 sweeps, then one
   repetition every ``--thin`` sweeps). Tests: KSD with the IMQ kernel (beta = 1/2) at the median
   bandwidth and KSDAgg over median * 2^l, l = -20..0 (uniform weights, B1 = B2 = 500, B3 = 50),
   both with the Rademacher wild bootstrap (the paper's RBM figures use a parametric bootstrap
   with model samples, so small differences are expected). Published power at sigma_per
   0 / .01 / .02 / .03 / .04: KSDAgg 0.07 / 0.345 / 0.995 / 1 / 1, KSD (median) 0.055 / 0.21 /
   0.795 / 1 / 1, 200 repetitions; the target is within 0.05.
2. ``level``: type-I error of ``ksd_test`` at alpha = 0.05 (N(0, I_10) model and sample, n = 500,
   IMQ at the median bandwidth, B = 500) over 500 repetitions, against the binomial 99% interval.
3. ``mixture``: the perturbation paper's mixture-weight example (Liu, Duncan & Gandy 2023): model
   0.5 N(0, 1) + 0.5 N(delta, 1) with delta = 6, sample n = 200 from N(0, 1) only (weight 1 on the
   first mode; weight 0.5 is the null, reported as the level), T = 10 jump steps, modes found on
   half of the sample and the jump scale chosen among 21 values in [0.5, 1.5] there (ospKSD);
   the perturbed test must beat plain KSD (the paper: KSD power near 0, pKSD near 1).

Run:  flock /tmp/kk-bench.lock python benchmarks/bench_tests_power_ksd.py           (full: long, ~1 h)
      python benchmarks/bench_tests_power_ksd.py --reps-rbm 5 --reps-level 50 --reps-mix 10   (quick check)
Options: --parts rbm level mixture, --sigmas, --thin, --burn-in, --n-bootstrap, --seed, --tag.
Writes benchmarks/results/tests_power_ksd.json (tests_power_ksd_<tag>.json with --tag).
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

PUBLISHED = {"sigmas": [0.0, 0.01, 0.02, 0.03, 0.04], "ksdagg": [0.07, 0.345, 0.995, 1.0, 1.0],
             "ksd_median": [0.055, 0.21, 0.795, 1.0, 1.0]}


# --------------------------------------------------------------------------- RBM
class RBM:
    """Gaussian-Bernoulli RBM with hidden units in {-1, +1}."""

    def __init__(self, B, b, c):
        self.B, self.b, self.c = B, b, c

    def score(self, X):
        return self.b - X + np.tanh(X @ self.B + self.c) @ self.B.T

    def gibbs(self, X, sweeps, rng):
        for _ in range(sweeps):
            a = 2.0 * (X @ self.B + self.c)
            H = np.where(rng.random(a.shape) < 0.5 * (1.0 + np.tanh(0.5 * a)), 1.0, -1.0)  # sigmoid(a), stable
            X = H @ self.B.T + self.b + rng.standard_normal(X.shape)
        return X


def rbm_models(sigma, dx=50, dh=40, seed=0):
    rs = np.random.default_rng(seed)
    B = rs.integers(0, 2, (dx, dh)) * 2.0 - 1.0
    b = rs.standard_normal(dx)
    c = rs.standard_normal(dh)
    Bq = B + rs.standard_normal((dx, dh)) * sigma
    return RBM(B, b, c), RBM(Bq, b, c)


def part_rbm(args):
    from kernelkit.stats import ksd_test, ksdagg_test

    out = []
    for s_i, sigma in enumerate(args.sigmas):
        p, q = rbm_models(sigma, seed=args.seed)
        rng = np.random.default_rng(args.seed + 1 + s_i)
        X = q.gibbs(rng.standard_normal((args.n_rbm, 50)), args.burn_in, rng)
        rej_agg = rej_ksd = 0
        t0 = time.perf_counter()
        for r in range(args.reps_rbm):
            X = q.gibbs(X, args.thin, rng)
            S = p.score(X)
            rej_ksd += ksd_test(X, S, "imq", n_bootstrap=args.n_bootstrap, random_state=rng).reject
            rej_agg += ksdagg_test(X, S, "imq", n_bootstrap=(500, 500), n_bisection=50, random_state=rng).reject
        dt = time.perf_counter() - t0
        row = {"sigma_per": sigma, "reps": args.reps_rbm, "ksdagg": rej_agg / args.reps_rbm,
               "ksd_median": rej_ksd / args.reps_rbm, "seconds": dt}
        if sigma in PUBLISHED["sigmas"]:
            k = PUBLISHED["sigmas"].index(sigma)
            row["published_ksdagg"] = PUBLISHED["ksdagg"][k]
            row["published_ksd_median"] = PUBLISHED["ksd_median"][k]
        print(f"RBM sigma_per={sigma:<5} reps={args.reps_rbm:4d}  KSDAgg {row['ksdagg']:.3f} "
              f"(published {row.get('published_ksdagg', float('nan'))})  KSD median {row['ksd_median']:.3f} "
              f"(published {row.get('published_ksd_median', float('nan'))})  {dt:.1f} s", flush=True)
        out.append(row)
    return out


# --------------------------------------------------------------------------- level
def part_level(args):
    from scipy.stats import binom

    from kernelkit.stats import ksd_test

    rng = np.random.default_rng(args.seed + 100)
    rej = 0
    t0 = time.perf_counter()
    for r in range(args.reps_level):
        X = rng.standard_normal((500, 10))
        rej += ksd_test(X, -X, "imq", n_bootstrap=500, random_state=rng).reject
    lo, hi = binom.ppf(0.005, args.reps_level, 0.05), binom.ppf(0.995, args.reps_level, 0.05)
    row = {"reps": args.reps_level, "rejections": int(rej), "type_I_error": rej / args.reps_level,
           "binomial_99": [lo / args.reps_level, hi / args.reps_level], "inside": bool(lo <= rej <= hi),
           "seconds": time.perf_counter() - t0}
    print(f"KSD level: {rej}/{args.reps_level} = {row['type_I_error']:.3f}, binomial 99% interval "
          f"[{row['binomial_99'][0]:.3f}, {row['binomial_99'][1]:.3f}] -> {'inside' if row['inside'] else 'OUTSIDE'}"
          f"  {row['seconds']:.1f} s", flush=True)
    return row


# --------------------------------------------------------------------------- mixture
def mixture(delta):
    m = np.array([[0.0], [delta]])

    def logp(x):
        return np.logaddexp(-0.5 * (x[:, 0] - m[0, 0]) ** 2, -0.5 * (x[:, 0] - m[1, 0]) ** 2) + math.log(0.5)

    def score(x):
        a, b = -0.5 * (x[:, 0] - m[0, 0]) ** 2, -0.5 * (x[:, 0] - m[1, 0]) ** 2
        w = 1.0 / (1.0 + np.exp(b - a))
        return (w * (m[0, 0] - x[:, 0]) + (1 - w) * (m[1, 0] - x[:, 0]))[:, None]

    return m, logp, score


def part_mixture(args):
    from kernelkit.stats import ksd_test, perturbed_ksd_test

    m, logp, score = mixture(args.delta)
    rows = []
    for weight in (1.0, 0.5):
        rng = np.random.default_rng(args.seed + 200)
        rk = rp = 0
        t0 = time.perf_counter()
        for r in range(args.reps_mix):
            comp = (rng.random(args.n_mix) >= weight).astype(int)
            X = m[comp] + rng.standard_normal((args.n_mix, 1))
            rk += ksd_test(X, score, "imq", n_bootstrap=args.n_bootstrap, random_state=rng).reject
            rp += perturbed_ksd_test(X, score, logp, "imq", n_steps=10, n_bootstrap=args.n_bootstrap,
                                     random_state=rng).reject
        row = {"delta": args.delta, "n": args.n_mix, "weight_first_mode": weight, "reps": args.reps_mix,
               "ksd": rk / args.reps_mix, "perturbed_ksd": rp / args.reps_mix,
               "seconds": time.perf_counter() - t0}
        what = "power" if weight != 0.5 else "level (null)"
        print(f"mixture delta={args.delta} n={args.n_mix} weight={weight} ({what}): KSD {row['ksd']:.3f}, "
              f"perturbed KSD {row['perturbed_ksd']:.3f}  {row['seconds']:.1f} s", flush=True)
        rows.append(row)
    return rows


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--parts", nargs="+", default=["level", "mixture", "rbm"], choices=["rbm", "level", "mixture"])
    ap.add_argument("--reps-rbm", type=int, default=200)
    ap.add_argument("--reps-level", type=int, default=500)
    ap.add_argument("--reps-mix", type=int, default=100)
    ap.add_argument("--sigmas", type=float, nargs="+", default=PUBLISHED["sigmas"])
    ap.add_argument("--n-rbm", type=int, default=1000)
    ap.add_argument("--burn-in", type=int, default=2000)
    ap.add_argument("--thin", type=int, default=20, help="Gibbs sweeps between two RBM repetitions")
    ap.add_argument("--n-mix", type=int, default=200)
    ap.add_argument("--delta", type=float, default=6.0)
    ap.add_argument("--n-bootstrap", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--tag", default=None)
    args = ap.parse_args(argv)

    from _machine import cpu_line

    print(cpu_line(), flush=True)
    res = {"machine": cpu_line(), "args": vars(args)}
    if "level" in args.parts:
        res["level"] = part_level(args)
    if "mixture" in args.parts:
        res["mixture"] = part_mixture(args)
    if "rbm" in args.parts:
        res["rbm"] = part_rbm(args)
    from _results import write_results

    write_results("tests_power_ksd" if args.tag is None else f"tests_power_ksd_{args.tag}", res)
    return res


if __name__ == "__main__":
    main()
