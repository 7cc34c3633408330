"""Independence tests: calibration, power and a peer (hyppo) for HSIC, dHSIC and KCI.

1. Calibration: the type-I error at alpha = 0.05 over ``--reps`` (default 500)
   null repetitions, with its binomial 99% interval, for HSIC (permutations
   and the gamma approximation), dHSIC (3 independent variables,
   permutations and gamma) and KCI (gamma; X <- Z -> Y, so X and Y are dependent but
   conditionally independent given Z). n = ``--n`` (default 100; KCI 200),
   ``--permutations`` (default 200).
2. Power over ``--power-reps`` (default 200) repetitions on two standard
   dependent examples: "square" (X ~ N(0, 1), Y = X^2 + 0.5 N(0, 1):
   uncorrelated, dependent) and "rotated uniform" (Gretton et al. 2008's ICA
   example: two independent U(-1, 1) rotated by pi / 8), at n = ``--n``;
   KCI's power on X -> Y with a confounder Z.
3. Peer: hyppo 0.5.2's ``Hsic`` (in its own virtual environment,
   ``--hyppo-python``, default $KERNELKIT_HYPPO_PYTHON or
   /work/hsic-venv/bin/python; skipped when absent), on the same saved
   inputs at n = ``--peer-n`` (default 200 1000 2000), Gaussian kernels of the
   same width on X and Y (hyppo's ``gamma = 1 / (2 sigma^2)``).
   Conventions: hyppo's statistic is the distance correlation of
   ``1 - K / max K`` and ``1 - L / max L``, which is the normalised HSIC
   ``HSIC(K, L) / sqrt(HSIC(K, K) HSIC(L, L))`` (for ``bias=True`` the
   square root of that ratio of biased HSICs, for ``bias=False`` the ratio of
   Song et al.'s unbiased estimators); kernelkit's values
   are converted to it and compared (absolute difference, target 1e-10).
   Times: the statistic, and a permutation test with ``--permutations``
   permutations (hyppo: ``Hsic().test(x, y, reps=B, auto=False, workers=1)``).

Run:  flock /tmp/kk-bench.lock python benchmarks/bench_tests_power_hsic.py
      python benchmarks/bench_tests_power_hsic.py --reps 20 --power-reps 10 --peer-n 200   (smoke size)
Writes benchmarks/results/tests_power_hsic.json.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time

import numpy as np
import scipy.stats

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import kernelkit as kk  # noqa: E402
from kernelkit.stats import dhsic_test, hsic, hsic_test, kci_test  # noqa: E402
from _machine import cpu_info, cpu_line  # noqa: E402
from _results import write_results  # noqa: E402

HYPPO_SCRIPT = r'''
import sys, time, warnings
import numpy as np
from hyppo.independence import Hsic
warnings.simplefilter("ignore", RuntimeWarning)   # hyppo warns below 1000 replications
import hyppo
inp, outp, B = sys.argv[1], sys.argv[2], int(sys.argv[3])
d = np.load(inp)
x, y, gamma = d["x"], d["y"], float(d["gamma"])
out = {"version": hyppo.__version__}
for bias in (True, False):
    h = Hsic(compute_kernel="rbf", bias=bias, gamma=gamma)
    h.statistic(x[:20], y[:20])                      # first call: imports / compilation
    t0 = time.perf_counter(); s = h.statistic(x, y); out[f"stat_{bias}"] = s
    out[f"time_stat_{bias}"] = time.perf_counter() - t0
h = Hsic(compute_kernel="rbf", bias=True, gamma=gamma)
h.test(x[:20], y[:20], reps=10, workers=1, auto=False, random_state=0)   # first call: numba compilation
t0 = time.perf_counter(); stat, p = h.test(x, y, reps=B, workers=1, auto=False, random_state=0)
out["time_test"] = time.perf_counter() - t0
out["pvalue"] = p
np.savez(outp, **out)
'''


def _binomial_99(reps, alpha=0.05):
    """The binomial 99% interval of the rejection rate of a level-alpha test over ``reps`` repetitions."""
    return [float(scipy.stats.binom.ppf(q, reps, alpha)) / reps for q in (0.005, 0.995)]


# --------------------------------------------------------------------------- generators
def independent_pair(rng, n):
    return rng.standard_normal((n, 2)), rng.standard_t(4, size=(n, 1))


def square(rng, n):
    X = rng.standard_normal((n, 1))
    return X, X ** 2 + 0.5 * rng.standard_normal((n, 1))


def rotated_uniform(rng, n, angle=np.pi / 8):
    U = rng.uniform(-1, 1, size=(n, 2))
    c, s = np.cos(angle), np.sin(angle)
    V = U @ np.array([[c, -s], [s, c]])
    return V[:, :1], V[:, 1:]


def chain(rng, n, direct=0.0):
    Z = rng.standard_normal((n, 1))
    X = Z + 0.5 * rng.standard_normal((n, 1))
    Y = np.sin(Z) + direct * X ** 2 + 0.5 * rng.standard_normal((n, 1))
    return X, Y, Z


# --------------------------------------------------------------------------- parts
def calibration(args, rng):
    reps, n, B = args.reps, args.n, args.permutations
    cases = {
        "HSIC permutation": lambda: hsic_test(*independent_pair(rng, n), n_permutations=B, random_state=rng),
        "HSIC unbiased permutation": lambda: hsic_test(*independent_pair(rng, n), n_permutations=B, unbiased=True,
                                                       random_state=rng),
        "HSIC gamma": lambda: hsic_test(*independent_pair(rng, n), method="gamma"),
        "dHSIC permutation (3 variables)": lambda: dhsic_test(*(rng.standard_normal((n, 1)) for _ in range(3)),
                                                              n_permutations=B, random_state=rng),
        "dHSIC gamma (3 variables, n = 2 n)": lambda: dhsic_test(*(rng.standard_normal((2 * n, 1)) for _ in range(3)),
                                                                 method="gamma"),
        "KCI gamma (n = 2 n)": lambda: kci_test(*chain(rng, 2 * n)),
    }
    interval = _binomial_99(reps)
    out = []
    print(f"\n1. type-I error at alpha = 0.05, {reps} null repetitions, n = {n}, B = {B}; "
          f"binomial 99% interval [{interval[0]:.3f}, {interval[1]:.3f}]")
    for name, run in cases.items():
        t0 = time.perf_counter()
        rate = float(np.mean([run().reject for _ in range(reps)]))
        dt = time.perf_counter() - t0
        inside = interval[0] <= rate <= interval[1]
        print(f"   {name:34s} {rate:.3f}  {'inside' if inside else 'OUTSIDE'}   ({dt:.1f} s)")
        out.append(dict(test=name, rate=rate, interval=interval, inside=inside, reps=reps, n=n, seconds=dt))
    return out


def power(args, rng):
    reps, n, B = args.power_reps, args.n, args.permutations
    out = []
    print(f"\n2. power at alpha = 0.05, {reps} repetitions, n = {n}")
    for ex_name, gen in (("square", square), ("rotated uniform pi/8", rotated_uniform)):
        for name, run in (("HSIC permutation", lambda X, Y: hsic_test(X, Y, n_permutations=B, random_state=rng)),
                          ("HSIC gamma", lambda X, Y: hsic_test(X, Y, method="gamma"))):
            rate = float(np.mean([run(*gen(rng, n)).reject for _ in range(reps)]))
            print(f"   {ex_name:22s} {name:18s} {rate:.3f}")
            out.append(dict(example=ex_name, test=name, power=rate, reps=reps, n=n))
    rate = float(np.mean([kci_test(*chain(rng, 2 * n, direct=0.5)).reject for _ in range(reps)]))
    print(f"   {'X -> Y, confounder Z':22s} {'KCI gamma (2 n)':18s} {rate:.3f}")
    out.append(dict(example="X -> Y with confounder Z", test="KCI gamma", power=rate, reps=reps, n=2 * n))
    return out


def _normalised(X, Y, k, unbiased):
    """hyppo's Hsic statistic from kernelkit's HSIC: the normalised HSIC, square-rooted when biased."""
    r = hsic(X, Y, k, k, unbiased=unbiased) / np.sqrt(hsic(X, X, k, k, unbiased=unbiased)
                                                       * hsic(Y, Y, k, k, unbiased=unbiased))
    return r if unbiased else float(np.sqrt(max(r, 0.0)))


def peer(args, rng):
    py = args.hyppo_python or os.environ.get("KERNELKIT_HYPPO_PYTHON") or "/work/hsic-venv/bin/python"
    if args.skip_peer or not os.path.exists(py):
        print(f"\n3. peer skipped (no hyppo Python at {py})")
        return []
    B = args.permutations
    out = []
    print(f"\n3. hyppo Hsic vs kernelkit, Gaussian kernels of one width (X's median), {B} permutations")
    print(f"   {'n':>6s} {'|diff| biased':>14s} {'|diff| unbiased':>16s} {'stat: hyppo s':>14s} {'kk s':>8s} "
          f"{'test: hyppo s':>14s} {'kk s':>8s} {'ratio':>7s}")
    for n in args.peer_n:
        X, Y = square(rng, n)
        X = np.hstack([X, rng.standard_normal((n, 1))])
        Y = np.hstack([Y, rng.standard_normal((n, 1))])
        sigma = kk.median_bandwidth(X)
        k = kk.Gaussian(sigma)
        with tempfile.TemporaryDirectory() as tmp:
            inp, outp = os.path.join(tmp, "in.npz"), os.path.join(tmp, "out.npz")
            np.savez(inp, x=X, y=Y, gamma=1.0 / (2 * sigma ** 2))
            subprocess.run([py, "-c", HYPPO_SCRIPT, inp, outp, str(B)], check=True)
            h = dict(np.load(outp))
        t0 = time.perf_counter()
        s_b = _normalised(X, Y, k, False)
        t_stat = (time.perf_counter() - t0) / 3        # three HSIC values for the normalisation
        s_u = _normalised(X, Y, k, True)
        t0 = time.perf_counter()
        r = hsic_test(X, Y, k, k, n_permutations=B, random_state=0)
        t_test = time.perf_counter() - t0
        d_b, d_u = abs(s_b - float(h["stat_True"])), abs(s_u - float(h["stat_False"]))
        ratio = float(h["time_test"]) / t_test
        print(f"   {n:6d} {d_b:14.2e} {d_u:16.2e} {float(h['time_stat_True']):14.3f} {t_stat:8.3f} "
              f"{float(h['time_test']):14.2f} {t_test:8.2f} {ratio:7.1f}")
        out.append(dict(n=n, permutations=B, hyppo=str(h["version"]), diff_biased=d_b, diff_unbiased=d_u,
                        within_1e10=bool(max(d_b, d_u) <= 1e-10), hyppo_stat_s=float(h["time_stat_True"]),
                        kernelkit_stat_s=t_stat, hyppo_test_s=float(h["time_test"]), kernelkit_test_s=t_test,
                        speedup=ratio, hyppo_pvalue=float(h["pvalue"]), kernelkit_pvalue=r.pvalue,
                        kernelkit_path=r.details["path"]))
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--reps", type=int, default=500, help="null repetitions of the calibration")
    ap.add_argument("--power-reps", type=int, default=200)
    ap.add_argument("--n", type=int, default=100)
    ap.add_argument("--permutations", type=int, default=200)
    ap.add_argument("--peer-n", type=int, nargs="+", default=[200, 1000, 2000])
    ap.add_argument("--hyppo-python", default=None)
    ap.add_argument("--skip-peer", action="store_true")
    ap.add_argument("--only", choices=["calibration", "power", "peer"], default=None)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    info = cpu_info()
    print(cpu_line(info))
    rng = np.random.default_rng(args.seed)
    results = dict(machine=info, args=vars(args))
    with kk.options(threads=args.threads):
        if args.only in (None, "calibration"):
            results["calibration"] = calibration(args, rng)
        if args.only in (None, "power"):
            results["power"] = power(args, rng)
        if args.only in (None, "peer"):
            results["peer"] = peer(args, rng)
    write_results("tests_power_hsic", results)
    return results


if __name__ == "__main__":
    main()
