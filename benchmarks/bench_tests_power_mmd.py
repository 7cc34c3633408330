"""Calibration and power of kernelkit's two-sample tests (MMD permutation / wild, MMDAgg, MMD-FUSE) on published setups.

* Type-I error at alpha = 0.05 over ``--null-reps`` (default 500) null repetitions (X, Y both N(0, I_2),
  n = m = 200): rejection rate with the binomial 99% interval of a level-0.05 test.
* Power on Blob (Liu et al., ICML 2020, "Learning Deep Kernels for Non-Parametric Two-Sample Tests": a 3 x 3
  grid of Gaussians with covariance 0.03 I for P; for Q the same centres with correlations
  -0.02 - 0.002 i (components i = 0..3), 0 (i = 4), 0.02 + 0.002 (i - 5) (i = 5..8)) and HDGM (d = 10: an equal
  mixture of N(0, I) and N(0.5 * 1, I) for P; for Q the same with correlation +0.5 / -0.5 between the first two
  coordinates of the two components), written from the papers' descriptions, MMD with the median bandwidth.
* MMDAgg's perturbed uniform density in d = 1 (Schrab et al., JMLR 2023, section 5.3): n = m = 500, 1 to 4
  perturbations of amplitude c_1 = 2.7 (smoothness s = 1); published MMDAgg power 1.0 / 0.974 / 0.346 / 0.038.

Repetitions are parameters (``--reps``, ``--null-reps``); the full run is long (MMDAgg at n = 500 costs about
10 s per test on 2 cores): run it alone on an idle machine.

Run:  flock /tmp/kk-bench.lock python benchmarks/bench_tests_power_mmd.py [--reps 200 --null-reps 500]
Writes benchmarks/results/tests_power_mmd.json.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time

import numpy as np
from scipy.stats import binom

from kernelkit.stats import mmd_test, mmdagg_test
from kernelkit.stats._mmd_fuse import mmdfuse_test

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _machine import cpu_info, cpu_line  # noqa: E402
from _results import write_results  # noqa: E402

PUBLISHED_MMDAGG_PERTURBED = {1: 1.0, 2: 0.974, 3: 0.346, 4: 0.038}


# --------------------------------------------------------------------------- generators
def blob(n, rng, q=False):
    """Blob of Liu et al. (2020): centres on {0, 1, 2}^2 (spread 1), covariance 0.03 I, correlated for Q."""
    comp = rng.integers(9, size=n)
    centres = np.array([[i // 3, i % 3] for i in range(9)], dtype=float)
    out = np.empty((n, 2))
    for i in range(9):
        cov = np.array([[0.03, 0.0], [0.0, 0.03]])
        if q:
            rho = -0.02 - 0.002 * i if i < 4 else (0.0 if i == 4 else 0.02 + 0.002 * (i - 5))
            cov[0, 1] = cov[1, 0] = rho
        sel = comp == i
        out[sel] = rng.multivariate_normal(centres[i], cov, size=int(sel.sum()))
    return out


def hdgm(n, rng, d=10, q=False):
    """HDGM of Liu et al. (2020): two components N(0, I), N(0.5 1, I); Q correlates coordinates 0 and 1 (+-0.5)."""
    comp = rng.integers(2, size=n)
    out = np.empty((n, d))
    for c in range(2):
        cov = np.eye(d)
        if q:
            cov[0, 1] = cov[1, 0] = 0.5 if c == 0 else -0.5
        sel = comp == c
        out[sel] = rng.multivariate_normal(np.full(d, 0.5 * c), cov, size=int(sel.sum()))
    return out


def _G(t):
    """The bump of Schrab et al.: exp(-1/(1-(4t+3)^2)) on (-1, -1/2), -exp(-1/(1-(4t+1)^2)) on (-1/2, 0)."""
    out = np.zeros_like(t)
    a = (t > -1) & (t < -0.5)
    b = (t >= -0.5) & (t < 0)
    out[a] = np.exp(-1 / (1 - (4 * t[a] + 3) ** 2))
    out[b] = -np.exp(-1 / (1 - (4 * t[b] + 1) ** 2))
    return out


def perturbed_uniform(n, rng, P, c=2.7, s=1.0):
    """n draws from f(x) = 1 + c P^-s sum_nu theta_nu G(P x - nu) on [0, 1] (random signs theta), by rejection."""
    theta = rng.choice([-1.0, 1.0], size=P)
    bound = 1 + c * P ** (-s) * math.exp(-1)
    out = []
    while sum(len(o) for o in out) < n:
        x = rng.uniform(size=4 * n)
        f = 1 + c * P ** (-s) * sum(theta[v - 1] * _G(P * x - v) for v in range(1, P + 1))
        out.append(x[rng.uniform(size=x.size) * bound < f])
    return np.concatenate(out)[:n, None]


# --------------------------------------------------------------------------- experiments
def rate(fn, reps, seed):
    ss = np.random.SeedSequence(seed).spawn(reps)
    t0 = time.perf_counter()
    rej = sum(bool(fn(np.random.default_rng(s), r)) for r, s in enumerate(ss))
    return rej / reps, time.perf_counter() - t0


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--null-reps", type=int, default=500)
    p.add_argument("--reps", type=int, default=200, help="repetitions of each power experiment")
    p.add_argument("--B", type=int, default=500, help="permutations / bootstrap draws of the MMD tests")
    p.add_argument("--B1", type=int, default=2000)
    p.add_argument("--B2", type=int, default=2000)
    p.add_argument("--n-blob", type=int, default=180, help="n = m for Blob (Liu et al. use 9 x 20 = 180 and up)")
    p.add_argument("--n-hdgm", type=int, default=1000)
    p.add_argument("--n-perturbed", type=int, default=500)
    p.add_argument("--skip-mmdagg", action="store_true")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="tests_power_mmd")
    a = p.parse_args()
    info = cpu_info()
    print(cpu_line(info))
    res = dict(machine=info, args=vars(a), null={}, power={})
    lo, hi = binom.interval(0.99, a.null_reps, 0.05)
    print(f"\nType-I error at alpha 0.05 over {a.null_reps} null repetitions (n = m = 200, N(0, I_2)); "
          f"99% interval [{lo / a.null_reps:.3f}, {hi / a.null_reps:.3f}]")

    def null_case(method):
        def fn(rng, r):
            X, Y = rng.standard_normal((200, 2)), rng.standard_normal((200, 2))
            if method == "mmdagg":
                return mmdagg_test(X, Y, B1=a.B1, B2=a.B2, random_state=r).reject
            if method == "mmdfuse":
                return mmdfuse_test(X, Y, n_permutations=a.B1, random_state=r).reject
            return mmd_test(X, Y, method=method, n_permutations=a.B, random_state=r).reject
        return fn

    for method in ["permutation", "wild"] + ([] if a.skip_mmdagg else ["mmdagg", "mmdfuse"]):
        rt, secs = rate(null_case(method), a.null_reps, a.seed)
        inside = bool(lo / a.null_reps <= rt <= hi / a.null_reps)
        res["null"][method] = dict(rate=rt, interval=[lo / a.null_reps, hi / a.null_reps], inside=inside,
                                   seconds=secs)
        print(f"   {method:12s} rejection rate {rt:.3f} ({'inside' if inside else 'OUTSIDE'}), {secs:.1f} s")

    print(f"\nPower over {a.reps} repetitions")
    cases = [("Blob", a.n_blob, lambda rng, n: (blob(n, rng), blob(n, rng, q=True))),
             ("HDGM d=10", a.n_hdgm, lambda rng, n: (hdgm(n, rng), hdgm(n, rng, q=True)))]
    for name, n, gen in cases:
        for method in ("permutation", "wild"):
            def fn(rng, r, gen=gen, n=n, method=method):
                X, Y = gen(rng, n)
                return mmd_test(X, Y, method=method, n_permutations=a.B, random_state=r).reject
            pw, secs = rate(fn, a.reps, a.seed + 1)
            res["power"][f"{name}, MMD {method}"] = dict(power=pw, n=n, seconds=secs)
            print(f"   {name:10s} n = m = {n:5d}, MMD {method:12s} power {pw:.3f} ({secs:.1f} s)")
    if not a.skip_mmdagg:
        for P in (1, 2, 3, 4):
            def fn(rng, r, P=P):
                X = rng.uniform(size=(a.n_perturbed, 1))
                Y = perturbed_uniform(a.n_perturbed, rng, P)
                return mmdagg_test(X, Y, B1=a.B1, B2=a.B2, random_state=r).reject
            pw, secs = rate(fn, a.reps, a.seed + 2)
            pub = PUBLISHED_MMDAGG_PERTURBED[P]
            res["power"][f"perturbed uniform d=1, P={P}, MMDAgg"] = dict(power=pw, published=pub, seconds=secs)
            print(f"   perturbed uniform d=1, {P} perturbation(s), MMDAgg: power {pw:.3f} "
                  f"(published {pub}), {secs:.1f} s")

            def fn_fuse(rng, r, P=P):
                X = rng.uniform(size=(a.n_perturbed, 1))
                Y = perturbed_uniform(a.n_perturbed, rng, P)
                return mmdfuse_test(X, Y, n_permutations=a.B1, random_state=r).reject
            pw, secs = rate(fn_fuse, a.reps, a.seed + 2)
            res["power"][f"perturbed uniform d=1, P={P}, MMD-FUSE"] = dict(power=pw, seconds=secs)
            print(f"   perturbed uniform d=1, {P} perturbation(s), MMD-FUSE: power {pw:.3f}, {secs:.1f} s")
    write_results(a.out, res)


if __name__ == "__main__":
    main()
