"""KSD goodness-of-fit tests: power on published setups and type-I error (kernelkit.stats).

Three parts, each with its repetitions as a parameter:

1. ``rbm``: KSDAgg's Gaussian-Bernoulli RBM (Schrab, Guedj & Gretton 2022, Section 4.4, after Liu et al.
   2016), in the parameterisation of the ``kgof`` package that the paper's code uses:
   p(x, h) ~ exp(x^T B h / 2 + b^T x + c^T h - |x|^2 / 2), h in {-1, 1}^40, x in R^50, so that
   P(h_j = 1 | x) = sigmoid(x^T B_j + 2 c_j), x | h ~ N(B h / 2 + b, I) and the score is
   b - x + B tanh(B^T x / 2 + c) / 2. B has {-1, 1} entries, b and c standard normal entries; the sample
   comes from the same RBM with B + sigma_per E, E standard normal, n = 1,000.
   Protocol, as the paper's code (github antoninschrab/ksdagg, generate_data_rbm.py, experiment_rbm.py):
   * ONE RBM instance and ONE perturbation direction E for every repetition and every sigma_per:
     drawn by the legacy ``np.random.RandomState(instance_seed)`` in the order B, b, c, E; with
     ``--instance-seed 0`` (default) this is the published instance (same draws, same order). The power
     at sigma_per = 0.01 depends strongly on the instance: the earlier protocol (below), which redrew it
     from ``default_rng(seed)``, measured KSDAgg 0.30 / 0.425 / 0.82 with seeds 0 / 1 / 2 (10 / 40 / 100
     repetitions), so results on another instance are not comparable with the published numbers.
   * Each sample point is the last state of its own Gibbs chain (2,000 burn-in sweeps, random start):
     a pool of ``--pool`` independent chains per sigma_per is drawn once, and each repetition takes
     n points from it without replacement (the paper: a pool of 200 x 1,000 chains).
   * One bandwidth for all repetitions: the median heuristic on n points of the model pool
     (sigma_per = 0 chains), as the paper (median on one model sample); KSD uses it, KSDAgg uses
     median * 2^l, l = -20..0 (uniform weights, B1 = B2 = 500, B3 = 50); IMQ kernel, beta = 1/2.
   Remaining differences from the paper: (a) by default the null quantiles come from the Rademacher
   wild bootstrap of each sample (kernelkit's ``ksd_test`` / ``ksdagg_test``), where the paper uses a
   parametric bootstrap; ``--null parametric`` runs the paper's: KSD values of 500 + 500 model samples
   of size n drawn from the sigma = 0 pool (``ksd_parametric_null``), computed once; the median
   bandwidth then also comes from that pool (``--model-pool`` chains), and the sigma = 0 repetitions
   are drawn from it; (b) pool of ``--pool`` chains (default 20,000) instead of 200,000, so
   repetitions overlap more (the expected overlap of two repetitions is n^2 / pool points: 50 of 1,000
   by default); (c) random number streams of the Gibbs sampler differ (the instance is the same).
   Repetitions drawn from one pool share chains, so their decisions are correlated and the rate's
   error is larger than its binomial interval says (measured: two pools of 10,000 chains gave KSDAgg
   0.255 and 0.098 at sigma_per = 0.01). ``--disjoint`` gives every repetition its own n chains
   (--pool >= reps x n): independent repetitions, for which the binomial interval holds.
   ``--protocol chain`` keeps the earlier, non-paper protocol (the instance redrawn from
   ``default_rng(seed)``, the x^T B h parameterisation without the 1/2, consecutive repetitions every
   ``--thin`` sweeps of n parallel chains, per-sample median bandwidth) for comparison.
   Published power at sigma_per 0 / .01 / .02 / .03 / .04: KSDAgg 0.07 / 0.345 / 0.995 / 1 / 1, KSD
   (median) 0.055 / 0.21 / 0.795 / 1 / 1, 200 repetitions; the target is within 0.05.
2. ``level``: type-I error of ``ksd_test`` at alpha = 0.05 (N(0, I_10) model and sample, n = 500,
   IMQ at the median bandwidth, B = 500) over 500 repetitions, against the binomial 99% interval; also the
   rejection rates at alpha = 0.01 ... 0.5 and a Kolmogorov-Smirnov test of the p-values' uniformity.
3. ``mixture``: the perturbation paper's mixture-weight example (Liu, Duncan & Gandy 2023): model
   0.5 N(0, 1) + 0.5 N(delta, 1) with delta = 6, sample n = 200 from N(0, 1) only (weight 1 on the
   first mode; weight 0.5 is the null, reported as the level), T = 10 jump steps, modes found on
   half of the sample and the jump scale chosen among 21 values in [0.5, 1.5] there (ospKSD);
   the perturbed test must beat plain KSD (the paper: KSD power near 0, pKSD near 1).

Run:  OPENBLAS_NUM_THREADS=1 nice -n 10 python benchmarks/bench_tests_power_ksd.py   (full: long, hours on 2 cores;
      statistical, not timed: split it by --parts / --sigmas and --seed, e.g.
      ... --parts rbm --sigmas 0.01 --reps-rbm 100 --pool 10000 --seed 3 --tag rbm_s01_seed3_loaded)
      python benchmarks/bench_tests_power_ksd.py --reps-rbm 5 --reps-level 50 --reps-mix 10   (quick check)
Options: --parts rbm level mixture, --sigmas, --protocol, --null, --instance-seed, --pool, --thin, --burn-in,
--n-bootstrap, --seed, --tag. Rows carry rejection counts and exact (Clopper-Pearson) 95% intervals; runs
with different ``--seed`` (same instance) are independent repetitions, so their counts add up. The results
file is rewritten after every sigma_per / part, so an interrupted run keeps what it finished.
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
    """Gaussian-Bernoulli RBM with hidden units in {-1, +1}: p(x, h) ~ exp(g x^T B h + b^T x + c^T h - |x|^2/2).

    ``half=True`` (the kgof / paper parameterisation) takes g = 1/2, ``half=False`` g = 1.
    """

    def __init__(self, B, b, c, half=True):
        self.B, self.b, self.c = B, b, c
        self.g = 0.5 if half else 1.0

    def score(self, X):
        return self.b - X + self.g * np.tanh(self.g * (X @ self.B) + self.c) @ self.B.T

    def gibbs(self, X, sweeps, rng):
        g = self.g
        for _ in range(sweeps):
            a = 2.0 * (g * (X @ self.B) + self.c)          # log P(h=1|x) / P(h=-1|x)
            H = np.where(rng.random(a.shape) < 0.5 * (1.0 + np.tanh(0.5 * a)), 1.0, -1.0)  # sigmoid(a), stable
            X = g * (H @ self.B.T) + self.b + rng.standard_normal(X.shape)
        return X


def rbm_models(sigma, dx=50, dh=40, seed=0, protocol="paper"):
    """(model p, perturbed q). ``paper``: legacy RandomState(seed) draws B, b, c, E in this order, E the same for
    every sigma; ``chain``: the earlier default_rng(seed) instance without the 1/2."""
    if protocol == "paper":
        rs = np.random.RandomState(seed)
        B = rs.randint(0, 2, (dx, dh)) * 2.0 - 1.0
        b = rs.randn(dx)
        c = rs.randn(dh)
        Bq = B + rs.randn(dx, dh) * sigma
        return RBM(B, b, c), RBM(Bq, b, c)
    rs = np.random.default_rng(seed)
    B = rs.integers(0, 2, (dx, dh)) * 2.0 - 1.0
    b = rs.standard_normal(dx)
    c = rs.standard_normal(dh)
    Bq = B + rs.standard_normal((dx, dh)) * sigma
    return RBM(B, b, c, half=False), RBM(Bq, b, c, half=False)


def chain_pool(model, size, burn_in, rng, block=5000):
    """``size`` independent chains, each run ``burn_in`` + 1 sweeps from a standard normal start; last states."""
    out = []
    for lo in range(0, size, block):
        m = min(block, size - lo)
        out.append(model.gibbs(rng.standard_normal((m, model.b.size)), burn_in + 1, rng))
    return np.concatenate(out)


def clopper_pearson(k, n, level=0.95):
    """Exact two-sided interval of a binomial proportion k / n."""
    from scipy.stats import beta

    a = 1 - level
    lo = 0.0 if k == 0 else float(beta.ppf(a / 2, k, n - k + 1))
    hi = 1.0 if k == n else float(beta.ppf(1 - a / 2, k + 1, n - k))
    return [lo, hi]


def part_rbm(args, save=lambda rows: None):
    from kernelkit import median_bandwidth
    from kernelkit.stats import ksd_test, ksdagg_test

    from kernelkit.stats import ksd_parametric_null

    out = []
    paper = args.protocol == "paper"
    parametric = args.null == "parametric"
    if args.disjoint and not paper:
        raise SystemExit("--disjoint needs --protocol paper (the chain protocol has no pool of chains)")
    if parametric and not paper:
        raise SystemExit("--null parametric needs --protocol paper")
    model_pool, null_agg = None, None
    if parametric:   # the paper's protocol: model pool first; bandwidth and null from it
        p0, _ = rbm_models(0.0, seed=args.instance_seed)
        t0 = time.perf_counter()
        n_model = args.model_pool or args.pool
        model_pool = chain_pool(p0, n_model, args.burn_in, np.random.default_rng([args.seed, 999]))
        t_model = time.perf_counter() - t0
        nrng = np.random.default_rng([args.seed, 998])
        bw = median_bandwidth(model_pool[nrng.choice(n_model, args.n_rbm, replace=False)])
        draws = (model_pool[nrng.choice(n_model, args.n_rbm, replace=False)] for _ in range(1000))
        t0 = time.perf_counter()
        null_agg = ksd_parametric_null(draws, p0.score, "imq", bandwidths=bw * 2.0 ** np.arange(-20, 1))
        t_null = time.perf_counter() - t0
        null_ksd = null_agg.subset(bandwidths=20, draws=slice(0, 500))   # bandwidth 2^0 * median, B = 500
        print(f"RBM (paper protocol, parametric bootstrap, instance {args.instance_seed}): model pool of {n_model} "
              f"chains {t_model:.0f} s, median bandwidth {bw:.4f}, null of 1,000 model samples x 21 bandwidths "
              f"{t_null:.0f} s", flush=True)
    elif paper:   # one bandwidth for every repetition: the median heuristic on n model points (own chains)
        p0, _ = rbm_models(0.0, seed=args.instance_seed)
        bw = median_bandwidth(chain_pool(p0, args.n_rbm, args.burn_in, np.random.default_rng(args.seed + 999)))
        print(f"RBM (paper protocol, instance {args.instance_seed}): median bandwidth {bw:.4f} on {args.n_rbm} model "
              f"points", flush=True)
    for s_i, sigma in enumerate(args.sigmas):
        p, q = rbm_models(sigma, seed=args.instance_seed if paper else args.seed, protocol=args.protocol)
        rng = np.random.default_rng([args.seed, 1 + s_i, int(round(sigma * 1e6))])
        rej_agg = rej_ksd = 0
        t0 = time.perf_counter()
        if paper:   # (sigma_per = 0 with the parametric null: the model pool itself, as the paper)
            pool = model_pool if (parametric and sigma == 0.0) else chain_pool(q, args.pool, args.burn_in, rng)
            if args.disjoint and len(pool) < args.reps_rbm * args.n_rbm:
                # (at sigma_per = 0 with the parametric null the pool is the model pool: --model-pool chains)
                raise SystemExit(f"--disjoint needs a pool of at least reps x n = {args.reps_rbm * args.n_rbm} "
                                 f"chains; this one has {len(pool)} (--pool, or --model-pool at sigma_per = 0)")
            t_pool = time.perf_counter() - t0
        else:
            X = q.gibbs(rng.standard_normal((args.n_rbm, 50)), args.burn_in, rng)
        for r in range(args.reps_rbm):
            if paper and args.disjoint:   # independent repetitions: disjoint chains
                X = pool[r * args.n_rbm:(r + 1) * args.n_rbm]
                kw_ksd, kw_agg = {"bandwidth": bw}, {"bandwidths": bw * 2.0 ** np.arange(-20, 1)}
            elif paper:
                X = pool[rng.choice(len(pool), args.n_rbm, replace=False)]
                kw_ksd, kw_agg = {"bandwidth": bw}, {"bandwidths": bw * 2.0 ** np.arange(-20, 1)}
            else:
                X = q.gibbs(X, args.thin, rng)
                kw_ksd = kw_agg = {}
            S = p.score(X)
            if parametric:
                rej_ksd += ksd_test(X, S, "imq", null=null_ksd).reject
                rej_agg += ksdagg_test(X, S, "imq", n_bootstrap=(500, 500), n_bisection=50, null=null_agg).reject
                continue
            rej_ksd += ksd_test(X, S, "imq", n_bootstrap=args.n_bootstrap, random_state=rng, **kw_ksd).reject
            rej_agg += ksdagg_test(X, S, "imq", n_bootstrap=(500, 500), n_bisection=50, random_state=rng,
                                   **kw_agg).reject
        dt = time.perf_counter() - t0
        R = args.reps_rbm
        row = {"sigma_per": sigma, "reps": R, "protocol": args.protocol, "ksdagg": rej_agg / R,
               "ksdagg_rejections": int(rej_agg), "ksdagg_interval95": clopper_pearson(rej_agg, R),
               "ksd_median": rej_ksd / R, "ksd_median_rejections": int(rej_ksd),
               "ksd_median_interval95": clopper_pearson(rej_ksd, R), "seconds": dt}
        if paper:
            row.update(instance_seed=args.instance_seed, pool=args.pool, bandwidth=bw, pool_seconds=t_pool,
                       null=args.null, disjoint=bool(args.disjoint),
                       model_pool=(args.model_pool or args.pool) if parametric else None)
        if sigma in PUBLISHED["sigmas"]:
            k = PUBLISHED["sigmas"].index(sigma)
            row["published_ksdagg"] = PUBLISHED["ksdagg"][k]
            row["published_ksd_median"] = PUBLISHED["ksd_median"][k]
        print(f"RBM sigma_per={sigma:<5} reps={R:4d}  KSDAgg {rej_agg}/{R} = {row['ksdagg']:.3f} "
              f"(published {row.get('published_ksdagg', float('nan'))})  KSD median {rej_ksd}/{R} = "
              f"{row['ksd_median']:.3f} (published {row.get('published_ksd_median', float('nan'))})  {dt:.1f} s",
              flush=True)
        out.append(row)
        save(out)
    return out


# --------------------------------------------------------------------------- level
def part_level(args):
    from scipy.stats import binom

    from kernelkit.stats import ksd_test

    rng = np.random.default_rng(args.seed + 100)
    from scipy.stats import kstest

    pvals = []
    t0 = time.perf_counter()
    for r in range(args.reps_level):
        X = rng.standard_normal((500, 10))
        pvals.append(ksd_test(X, -X, "imq", n_bootstrap=500, random_state=rng).pvalue)
    pvals = np.array(pvals)
    rej = int(np.sum(pvals <= 0.05))
    lo, hi = binom.ppf(0.005, args.reps_level, 0.05), binom.ppf(0.995, args.reps_level, 0.05)
    row = {"reps": args.reps_level, "rejections": int(rej), "type_I_error": rej / args.reps_level,
           "binomial_99": [lo / args.reps_level, hi / args.reps_level], "inside": bool(lo <= rej <= hi),
           "rate_at_alpha": {str(a): float(np.mean(pvals <= a)) for a in (0.01, 0.05, 0.1, 0.2, 0.5)},
           "ks_uniform_pvalue": float(kstest(pvals, "uniform").pvalue), "seconds": time.perf_counter() - t0}
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
    ap.add_argument("--protocol", choices=["paper", "chain"], default="paper",
                    help="RBM protocol: the paper's (fixed legacy instance, independent chains) or the earlier one")
    ap.add_argument("--null", choices=["wild", "parametric"], default="wild",
                    help="RBM null: kernelkit's wild bootstrap, or the paper's parametric bootstrap (model samples)")
    ap.add_argument("--instance-seed", type=int, default=0, help="RandomState seed of the RBM instance (0: published)")
    ap.add_argument("--pool", type=int, default=20000, help="independent Gibbs chains per sigma_per (paper protocol)")
    ap.add_argument("--model-pool", type=int, default=None,
                    help="model chains behind the parametric null and bandwidth (default: --pool)")
    ap.add_argument("--disjoint", action="store_true",
                    help="each repetition takes its own n chains of the pool (independent repetitions; "
                         "needs --pool >= reps x n) instead of a random subset")
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
    from _results import write_results

    name = "tests_power_ksd" if args.tag is None else f"tests_power_ksd_{args.tag}"
    if "level" in args.parts:
        res["level"] = part_level(args)
        write_results(name, res)
    if "mixture" in args.parts:
        res["mixture"] = part_mixture(args)
        write_results(name, res)
    if "rbm" in args.parts:
        def save(rows):
            res["rbm"] = rows
            write_results(name, res)
        res["rbm"] = part_rbm(args, save)
    write_results(name, res)
    return res


if __name__ == "__main__":
    main()
