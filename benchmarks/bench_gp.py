"""Gaussian-process hyperparameter fitting: kernelkit GaussianProcessRegressor vs scikit-learn, side by side.

Both maximise the log marginal likelihood of the same model, ConstantKernel * RBF(ARD) + WhiteKernel in
scikit-learn's words (kernelkit: ``GaussianProcessRegressor("gaussian", ard=True)``), with scipy's L-BFGS-B
and analytic gradients, from the same start (kernelkit's data-driven lengthscales, amplitude 1, noise 0.1),
the same bounds (1e-5, 1e5), ``normalize_y=True``, no restarts, scikit-learn's ``alpha=0`` (so the two
objectives are the same function). Synthetic Friedman #1 target in d = 8 dimensions (features 6, 7 and 8
are irrelevant): x ~ U[0, 1]^d, y = 10 sin(pi x1 x2) + 20 (x3 - 1/2)^2 + 10 x4 + 5 x5 + N(0, 1).

Reported per n: fit time, L-BFGS-B iterations, the log marginal likelihood reached (of the normalised y,
scikit-learn's convention), the test RMSE (2,000 test points, noise floor 1), the fitted lengthscales, the
time of one log-ML + gradient evaluation at the start, the peak resident memory of the fit (ru_maxrss of
a fresh subprocess, minus its resident size before the fit; of the evaluation with --eval-only), and the
time ratios scikit-learn / kernelkit (fit, per iteration, one evaluation).

Per evaluation kernelkit does one Cholesky (n^3/3 flops), the inverse from it (2 n^3 / 3) and an O(n^2 d)
gradient pass in row tiles: one n x n matrix (8 n^2 bytes). scikit-learn does a Cholesky, K^-1 by a
Cholesky solve with n right-hand sides (2 n^3) and builds the n x n x (d + 2) gradient tensor.

Run:  flock /tmp/kk-bench.lock python benchmarks/bench_gp.py                      (n = 2,000 and 5,000: long)
      python benchmarks/bench_gp.py --n 2000 --max-iter 5 --sklearn-max-n 2000     (a quick run)
Options: --d, --max-iter (cap the L-BFGS-B iterations of both), --sklearn-max-n (skip scikit-learn above
it), --eval-only (one evaluation each, no fit), --threads (BLAS and engine threads of both), --seed,
--tag. Writes benchmarks/results/gp.json (gp_<tag>.json with --tag).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))


def friedman(n, d, rng):
    X = rng.uniform(size=(n, d))
    y = (10 * np.sin(np.pi * X[:, 0] * X[:, 1]) + 20 * (X[:, 2] - 0.5) ** 2 + 10 * X[:, 3] + 5 * X[:, 4]
         + rng.normal(size=n))
    return X, y


def _data(n, d, seed):
    rng = np.random.default_rng(seed)
    X, y = friedman(n, d, rng)
    Xt, yt = friedman(2000, d, rng)
    return X, y, Xt, yt


def _rss_kb():
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0  # pragma: no cover


def _start(X, y):
    """The common starting point: kernelkit's per-feature median heuristic, amplitude 1, noise 0.1."""
    import kernelkit as kk
    from kernelkit.regression import GaussianProcessRegressor
    with kk.options(memory=max(10**9, 12 * X.shape[0] ** 2)):
        gp = GaussianProcessRegressor(ard=True, optimizer=None).fit(X, y)
    return gp.lengthscales_, 1.0, 0.1


def worker(package, n, d, seed, max_iter, eval_only, threads):
    """One fit in this (fresh) process; returns a dict (printed as JSON by --worker)."""
    from threadpoolctl import threadpool_limits
    import kernelkit as kk
    from kernelkit.regression import GaussianProcessRegressor
    from sklearn.gaussian_process import GaussianProcessRegressor as SkGPR
    from sklearn.gaussian_process import kernels as skk
    X, y, Xt, yt = _data(n, d, seed)
    ell0, amp0, noise0 = _start(X, y)
    cap = max_iter or 15000
    limits = threadpool_limits(limits=threads, user_api="blas") if threads else None
    base_kb = _rss_kb()
    row = dict(package=package, n=n)
    peak = {}

    def mark():   # the peak resident memory so far, above the resident size before the fit
        peak.setdefault("mb", (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base_kb) / 1024)

    if package == "kernelkit":
        opts = dict(memory=max(10**9, 12 * n * n), threads=threads)
        init = dict(lengthscale=ell0, amplitude=amp0, noise=noise0)
        with kk.options(**opts):
            if not eval_only:
                t0 = time.perf_counter()
                gp = GaussianProcessRegressor(ard=True, init=init, max_iter=cap).fit(X, y)
                row["fit_s"] = time.perf_counter() - t0
                mark()
                row.update(iterations=gp.n_iter_, lml=gp.log_marginal_likelihood_,
                           rmse=float(np.sqrt(np.mean((gp.predict(Xt) - yt) ** 2))),
                           lengthscales=gp.lengthscales_.tolist(), amplitude=gp.amplitude_, noise=gp.noise_)
                del gp
            probe = GaussianProcessRegressor(ard=True, init=init, optimizer=None).fit(X, y)
            t0 = time.perf_counter()
            probe.log_marginal_likelihood(probe.theta_, eval_gradient=True)
            row["eval_s"] = time.perf_counter() - t0
            mark()
    else:
        record = {}

        def lbfgsb(obj_func, initial_theta, bounds):
            import scipy.optimize
            res = scipy.optimize.minimize(obj_func, initial_theta, method="L-BFGS-B", jac=True, bounds=bounds,
                                          options={"maxiter": cap})
            record.update(nit=int(res.nit), nfev=int(res.nfev))
            return res.x, res.fun

        kernel = skk.ConstantKernel(amp0) * skk.RBF(ell0) + skk.WhiteKernel(noise0)
        if not eval_only:
            t0 = time.perf_counter()
            gp = SkGPR(kernel, optimizer=lbfgsb, alpha=0.0, normalize_y=True, n_restarts_optimizer=0).fit(X, y)
            row["fit_s"] = time.perf_counter() - t0
            mark()
            p = gp.kernel_.get_params()
            row.update(iterations=record["nit"], evaluations=record["nfev"], lml=gp.log_marginal_likelihood_value_,
                       rmse=float(np.sqrt(np.mean((gp.predict(Xt) - yt) ** 2))),
                       lengthscales=np.atleast_1d(p["k1__k2__length_scale"]).tolist(),
                       amplitude=float(p["k1__k1__constant_value"]), noise=float(p["k2__noise_level"]))
            del gp
        probe = SkGPR(kernel, optimizer=None, alpha=0.0, normalize_y=True).fit(X, y)
        t0 = time.perf_counter()
        probe.log_marginal_likelihood(probe.kernel_.theta, eval_gradient=True)
        row["eval_s"] = time.perf_counter() - t0
        mark()
    if limits is not None:
        limits.restore_original_limits()
    row["peak_extra_mb"] = peak["mb"]   # of the fit (of the evaluation with --eval-only)
    return row


def _spawn(package, n, args):
    cmd = [sys.executable, os.path.abspath(__file__), "--worker", package, "--n", str(n), "--d", str(args.d),
           "--seed", str(args.seed), "--max-iter", str(args.max_iter or 0)]
    if args.eval_only:
        cmd.append("--eval-only")
    if args.threads:
        cmd += ["--threads", str(args.threads)]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, nargs="+", default=[2000, 5000])
    ap.add_argument("--d", type=int, default=8)
    ap.add_argument("--max-iter", type=int, default=None, help="cap the L-BFGS-B iterations of both (default: none)")
    ap.add_argument("--sklearn-max-n", type=int, default=None, help="skip scikit-learn above this n")
    ap.add_argument("--eval-only", action="store_true", help="time one log-ML + gradient evaluation only")
    ap.add_argument("--threads", type=int, default=None, help="BLAS and engine threads (default: all)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--tag", default=None, help="write results/gp_<tag>.json instead of results/gp.json")
    ap.add_argument("--worker", choices=["kernelkit", "scikit-learn"], help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker:
        row = worker(args.worker, args.n[0], args.d, args.seed, args.max_iter or None, args.eval_only, args.threads)
        print(json.dumps(row))
        return row
    print(f"d = {args.d} (features 6.. irrelevant), max_iter = {args.max_iter or 'none'}, "
          f"threads = {args.threads or 'all'}, {os.cpu_count()} CPUs; each fit in a fresh subprocess")
    results = []
    for n in args.n:
        rows = [_spawn("kernelkit", n, args)]
        if args.sklearn_max_n is None or n <= args.sklearn_max_n:
            rows.append(_spawn("scikit-learn", n, args))
        for r in rows:
            print(json.dumps(r))
        entry = dict(n=n, rows=rows)
        if len(rows) == 2:
            entry["eval_ratio"] = rows[1]["eval_s"] / rows[0]["eval_s"]
            if "fit_s" in rows[0]:
                entry["fit_ratio"] = rows[1]["fit_s"] / rows[0]["fit_s"]
                entry["per_iteration_ratio"] = ((rows[1]["fit_s"] / max(1, rows[1]["iterations"]))
                                                / (rows[0]["fit_s"] / max(1, rows[0]["iterations"])))
        results.append(entry)
    print(f"\n{'n':>6} {'package':<13} {'fit s':>8} {'iters':>6} {'s/iter':>7} {'eval s':>7} {'log-ML':>11} "
          f"{'RMSE':>7} {'peak MB':>8}")
    for e in results:
        for r in e["rows"]:
            fit, it = r.get("fit_s", float("nan")), r.get("iterations", 0)
            print(f"{e['n']:>6} {r['package']:<13} {fit:8.2f} {it:6d} {fit / max(1, it):7.2f} {r['eval_s']:7.2f} "
                  f"{r.get('lml', float('nan')):11.3f} {r.get('rmse', float('nan')):7.4f} "
                  f"{r['peak_extra_mb']:8.0f}")
        if "eval_ratio" in e:
            text = f"  ratio scikit-learn / kernelkit: one evaluation {e['eval_ratio']:.2f}x"
            if "fit_ratio" in e:
                text += f", fit {e['fit_ratio']:.2f}x, per iteration {e['per_iteration_ratio']:.2f}x"
            print(text)
    from _results import write_results
    write_results("gp" if args.tag is None else f"gp_{args.tag}",
                  dict(d=args.d, max_iter=args.max_iter, threads=args.threads, seed=args.seed, eval_only=args.eval_only,
                       machine=platform.processor() or platform.machine(), cpus=os.cpu_count(), results=results))
    return results


if __name__ == "__main__":
    main()
