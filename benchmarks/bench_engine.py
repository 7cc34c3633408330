"""Kernel-sum engine: kernelkit vs a blocked NumPy reference, scipy, scikit-learn (and pykeops), in one run.

Task: s[j] = sum_i k(x_i, y_j) w_i with the Gaussian kernel kernelkit.Gaussian(h),
h = sqrt(d) (kernel values O(1e-1)), X, Y ~ N(0, I_d) (fixed seeds), n = m, w = 1.

Sections
  1. Engine: for d in {3, 64} and dtype in {float32, float64}:
       reference  plain blocked NumPy written here: 512 x 512 blocks, squared distances by GEMM
                  (|x|^2 + |y|^2 - 2 X_b Y_b^T, clipped at 0), numpy exp, block sum by matrix-vector
                  product, accumulated in float64 per query; queries split over 2 Python threads,
                  BLAS limited to 1 thread each (threadpoolctl); runs in the input dtype.
       kernelkit  kernelkit.kernel_sum(backend="auto"), all cores; the row says which backend ran.
     Seconds, speedup = reference / kernelkit, billions of kernel evaluations per second, and the
     max relative error over 200 random queries (the same ones for every method) against an exact
     float64 truth (direct differences sum_k (x_k - y_k)^2, not GEMM; computed on the very inputs,
     i.e. float32 inputs promoted to float64). Targets: speedup >= 2 (d = 3), >= 1.3 (d = 64);
     rel. error <= 1e-5 (float32), <= 1e-12 (float64).
  2. Peers (float64, d = 3 and 64): scipy.stats.gaussian_kde, scikit-learn KernelDensity
     (kd_tree, rtol=0), pykeops if importable; evaluated on --peer-m queries, time scaled linearly
     to m (extrapolated), ratio to kernelkit's time.
  3. Machine limit: single-thread GEMM GFLOPS (512x512 @ 512xd) and the faster of numpy's exp and
     kernelkit's vectorised exp (one core), each times the
     number of cores; lower bound = 2 n m d / gemm_flops + n m / exp_rate; kernelkit / bound
     (target <= 1.3 at d = 64). And "numpy exps alone": numpy computing the same n m exps on
     cache-resident blocks (the fastest of 32k, 64k, 128k values), one block per thread in as
     many Python threads as kernelkit uses (one BLAS thread each), measured in the same run;
     kernelkit / that time (target <= 1.3 at d = 3).
  4. Memory (--memory-check, default on unless --quick): kernel_sum(memory="256MB") at
     n = m = 200,000, d = 3, float32 in a fresh subprocess: peak RSS above the inputs (target < 400 MB).

Run:  flock /tmp/kk-bench.lock python benchmarks/bench_engine.py [--quick] [--n 100000] [--reps 1]
Writes benchmarks/results/engine.json (engine_quick.json with --quick).
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import math
import os
import platform
import resource
import subprocess
import sys
import time

import numpy as np
import scipy
from threadpoolctl import threadpool_info, threadpool_limits

import kernelkit as kk
from _results import write_results  # benchmarks/_results.py (the script's folder is on sys.path)

BLOCK = 512
SPEEDUP_TARGET = {3: 2.0, 64: 1.5}
#: the fused sum at d = 3 against numpy computing the same number of exps alone (same threads)
EXPS_ALONE_TARGET = 1.3
#: the fused sum at d = 64 against the GEMM + exp lower bound
LIMIT_TARGET_D64 = 1.3
EXP_BLOCKS = (32768, 65536, 131072)   # values per cache-resident exp block (the fastest is kept)
ERROR_TARGET = {"float32": 1e-5, "float64": 1e-12}
MEMORY_TARGET_MB = 400.0


# ------------------------------------------------------------------ helpers
def _cores():
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - non-Linux
        return max(1, os.cpu_count() or 1)


def _best_time(fn, reps):
    """(output of the last call, min wall time over reps calls)."""
    best, out = math.inf, None
    for _ in range(max(1, reps)):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return out, best


def _max_rel_err(est, truth):
    est = np.asarray(est, dtype=np.float64)
    return float(np.max(np.abs(est - truth) / np.abs(truth)))


def _cpu_model():
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, timeout=10,
                             env={**os.environ, "LC_ALL": "C"}).stdout
        for line in out.splitlines():
            if line.startswith("Model name:"):
                return line.split(":", 1)[1].strip()
    except (OSError, subprocess.SubprocessError):
        pass
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _version(mod):
    try:
        return __import__(mod).__version__
    except Exception:  # noqa: BLE001 - optional package, any import failure
        return None


def _kk_backend_used(kernel):
    """Name of the backend that backend="auto" picks for a Gaussian sum ("fused" or "numpy")."""
    try:  # the engine's own choice (private helper; fall back to the public flag if it changes)
        mod = kk.engine._backend(kk.get_options(backend="auto"), kernel, "sum")
        return mod.__name__.rsplit(".", 1)[-1].lstrip("_")
    except Exception:  # noqa: BLE001
        return "fused" if kk.engine.fused_available() else "numpy"


def make_data(n, m, d, seed):
    """X (n, d), Y (m, d) in float64, ~ N(0, I_d), from fixed seeds.

    X is then whitened exactly (centred, multiplied by the inverse Cholesky factor of its sample
    covariance np.cov, the one scipy's gaussian_kde computes), and Y mapped by the same affine map.
    Both remain N(0, I_d) samples up to O(1/sqrt(n)), and the sample covariance of X is I_d to
    rounding (~1e-15), so gaussian_kde(X.T, bw_method=h), whose kernel covariance is
    cov(X) * factor^2 = h^2 I_d, uses exactly the isotropic kernel exp(-|x - y|^2 / (2 h^2)) of
    kernelkit.Gaussian(h). Every method gets the same (X, Y).
    """
    rng = np.random.default_rng([seed, d])
    X = rng.standard_normal((n, d))
    Y = rng.standard_normal((m, d))
    mu = X.mean(axis=0)
    L = np.linalg.cholesky(np.atleast_2d(np.cov(X.T)))
    X = np.linalg.solve(L, (X - mu).T).T
    Y = np.linalg.solve(L, (Y - mu).T).T
    return np.ascontiguousarray(X), np.ascontiguousarray(Y)


# ------------------------------------------------------------------ reference and truth
def _reference_part(X, Y, x2, y2, w, c, lo, hi, out):
    """Queries lo:hi of the blocked reference, written into out (float64)."""
    n = X.shape[0]
    for j0 in range(lo, hi, BLOCK):
        j1 = min(j0 + BLOCK, hi)
        YbT = np.ascontiguousarray(Y[j0:j1].T)
        y2b = y2[j0:j1]
        acc = np.zeros(j1 - j0, dtype=np.float64)
        for i0 in range(0, n, BLOCK):
            i1 = min(i0 + BLOCK, n)
            D = X[i0:i1] @ YbT                 # (bx, by) GEMM, input dtype
            D *= -2
            D += x2[i0:i1, None]
            D += y2b[None, :]
            np.maximum(D, 0, out=D)
            D *= c                             # -1 / (2 h^2)
            np.exp(D, out=D)
            acc += w[i0:i1] @ D                # block's weighted sum (matrix-vector), into float64
        out[j0:j1] = acc


def reference_sum(X, Y, h, w):
    """Plain blocked NumPy kernel sum: 2 Python threads, 1 BLAS thread each, input dtype."""
    dt = X.dtype
    x2 = np.einsum("ij,ij->i", X, X)
    y2 = np.einsum("ij,ij->i", Y, Y)
    w = w.astype(dt, copy=False)
    c = dt.type(-1.0 / (2.0 * h * h))
    m = Y.shape[0]
    out = np.empty(m, dtype=np.float64)
    half = (m + 1) // 2
    with threadpool_limits(limits=1):
        with concurrent.futures.ThreadPoolExecutor(max_workers=2) as ex:
            futs = [ex.submit(_reference_part, X, Y, x2, y2, w, c, lo, hi, out)
                    for lo, hi in ((0, half), (half, m))]
            for f in futs:
                f.result()
    return out.astype(dt, copy=False)


def exact_truth(X, Yq, h, w, bx=8192):
    """Exact float64 sums at the queries Yq: direct differences, blocked over X."""
    X = X.astype(np.float64)
    Yq = Yq.astype(np.float64)
    w = w.astype(np.float64)
    c = -1.0 / (2.0 * h * h)
    out = np.zeros(Yq.shape[0])
    for i0 in range(0, X.shape[0], bx):
        Xb = X[i0:i0 + bx]
        D = np.zeros((Xb.shape[0], Yq.shape[0]))
        for k in range(X.shape[1]):
            diff = Xb[:, k, None] - Yq[None, :, k]
            diff *= diff
            D += diff
        D *= c
        np.exp(D, out=D)
        out += w[i0:i0 + bx] @ D
    return out


# ------------------------------------------------------------------ section 1: engine
def engine_case(n, d, dtype, seed, reps, idx, data_cache, truth_cache):
    if d not in data_cache:
        data_cache[d] = make_data(n, n, d, seed)
    X64, Y64 = data_cache[d]
    X, Y = X64.astype(dtype), Y64.astype(dtype)
    h = math.sqrt(d)
    w = np.ones(n)
    kernel = kk.Gaussian(h)

    key = (d, dtype)
    if key not in truth_cache:  # truth of the inputs as given (float32 inputs promoted exactly)
        t0 = time.perf_counter()
        truth_cache[key] = (exact_truth(X, Y[idx], h, w), time.perf_counter() - t0)
    truth, t_truth = truth_cache[key]

    ref, t_ref = _best_time(lambda: reference_sum(X, Y, h, w), reps)
    ours, t_kk = _best_time(lambda: kk.kernel_sum(kernel, X, Y, backend="auto"), reps)
    pairs = float(n) * float(n)
    return dict(d=d, dtype=dtype, n=n, m=n, bandwidth=h, kernelkit_backend=_kk_backend_used(kernel),
                kernelkit_threads=kk.get_options().resolved_threads(),
                reference_s=t_ref, kernelkit_s=t_kk, speedup=t_ref / t_kk,
                speedup_target=SPEEDUP_TARGET.get(d),
                reference_gevals_per_s=pairs / t_ref / 1e9, kernelkit_gevals_per_s=pairs / t_kk / 1e9,
                reference_max_rel_err=_max_rel_err(ref[idx], truth),
                kernelkit_max_rel_err=_max_rel_err(ours[idx], truth),
                error_target=ERROR_TARGET[dtype], truth_queries=len(idx), truth_s=t_truth)


def _mark(ok):
    return "ok" if ok else "MISS"


def print_engine(rows):
    print("\n## 1. Engine: kernel sums, Gaussian h = sqrt(d), n = m, weights = 1\n")
    print(f"{'case':14s} {'ref s':>9s} {'kk s':>9s} {'kk backend':>10s} {'speedup':>8s} {'target':>8s}  "
          f"{'ref Gev/s':>9s} {'kk Gev/s':>9s} {'ref relerr':>10s} {'kk relerr':>10s} {'target':>8s}")
    for r in rows:
        st = r["speedup_target"]
        tgt = f">={st:g} {_mark(r['speedup'] >= st)}" if st else "-"
        et = r["error_target"]
        print(f"d={r['d']:<3d} {r['dtype']:9s} {r['reference_s']:9.3f} {r['kernelkit_s']:9.3f} "
              f"{r['kernelkit_backend']:>10s} {r['speedup']:8.2f} {tgt:>8s}  "
              f"{r['reference_gevals_per_s']:9.3f} {r['kernelkit_gevals_per_s']:9.3f} "
              f"{r['reference_max_rel_err']:10.2e} {r['kernelkit_max_rel_err']:10.2e} "
              f"<={et:.0e} {_mark(r['kernelkit_max_rel_err'] <= et)}")
    print(f"(rel. err: max over {rows[0]['truth_queries']} random queries vs exact float64 direct-difference "
          "sums; Gev/s: billions of kernel evaluations per second)")


# ------------------------------------------------------------------ section 2: peers
def _peer_scipy(X, Y, Yp, h):
    from scipy import stats
    t0 = time.perf_counter()
    kde = stats.gaussian_kde(X.T, bw_method=h)  # covariance = cov(X) * h^2 = h^2 I (X whitened)
    t_fit = time.perf_counter() - t0
    dev = float(np.max(np.abs(kde.covariance / (h * h) - np.eye(X.shape[1]))))
    t0 = time.perf_counter()
    dens = kde.evaluate(Yp.T)
    t_eval = time.perf_counter() - t0
    # density = sum_i k(x_i, y) / (n sqrt(det(2 pi Sigma))): undo the normalisation
    _, logdet = np.linalg.slogdet(2 * np.pi * kde.covariance)
    sums = dens * X.shape[0] * math.exp(0.5 * logdet)
    return sums, t_fit, t_eval, {"covariance_max_dev_from_h2I_relative": dev}


def _peer_sklearn(X, Y, Yp, h):
    from sklearn.neighbors import KernelDensity as SkKDE
    t0 = time.perf_counter()
    sk = SkKDE(kernel="gaussian", algorithm="kd_tree", rtol=0, bandwidth=h).fit(X)
    t_fit = time.perf_counter() - t0
    t0 = time.perf_counter()
    logd = sk.score_samples(Yp)
    t_eval = time.perf_counter() - t0
    d = X.shape[1]
    # log density = log sum_i k(x_i, y) - log n - (d/2) log(2 pi h^2)
    sums = np.exp(logd + math.log(X.shape[0]) + 0.5 * d * math.log(2 * math.pi * h * h))
    return sums, t_fit, t_eval, {}


def _peer_pykeops(X, Y, Yp, h):
    from pykeops.numpy import LazyTensor

    def run(Xs, Ys):
        y_i = LazyTensor(np.ascontiguousarray(Ys)[:, None, :])
        x_j = LazyTensor(np.ascontiguousarray(Xs)[None, :, :])
        D = ((y_i - x_j) ** 2).sum(-1)
        return (-D / (2 * h * h)).exp().sum(axis=1).ravel()

    t0 = time.perf_counter()
    run(X[:64], Yp[:64])  # compile / load the kernel outside the timing
    t_fit = time.perf_counter() - t0
    t0 = time.perf_counter()
    sums = run(X, Yp)
    t_eval = time.perf_counter() - t0
    return sums, 0.0, t_eval, {"compile_s": t_fit}


PEERS = {"scipy gaussian_kde": _peer_scipy,
         "sklearn KernelDensity (kd_tree, rtol=0)": _peer_sklearn,
         "pykeops LazyTensor": _peer_pykeops}


def peers_case(engine_row, d, seed, peer_m, idx, data_cache, truth_cache, names):
    X, Y = data_cache[d]  # float64
    n, m = X.shape[0], Y.shape[0]
    h = math.sqrt(d)
    truth, _ = truth_cache[(d, "float64")]
    # queries: the truth subset first, then other random queries up to peer_m
    pm = min(peer_m, m)
    rest = np.setdiff1d(np.arange(m), idx)
    extra = np.random.default_rng([seed, 11, m]).choice(rest, size=max(0, pm - len(idx)), replace=False)
    qidx = np.concatenate([idx, extra])[:pm]
    nt = min(len(idx), pm)
    Yp = Y[qidx]
    rows = []
    for name in names:
        if name.startswith("pykeops"):
            try:
                import pykeops  # noqa: F401
            except Exception as e:  # noqa: BLE001 - any import failure means "skip"
                print(f"  note: pykeops not importable ({type(e).__name__}: {e}); skipped")
                rows.append(dict(package=name, skipped=f"not importable: {e}"))
                continue
        try:
            sums, t_fit, t_eval, extra_info = PEERS[name](X, Y, Yp, h)
        except Exception as e:  # noqa: BLE001 - a peer failing must not stop the benchmark
            print(f"  note: {name} failed ({type(e).__name__}: {e}); skipped")
            rows.append(dict(package=name, skipped=f"failed: {type(e).__name__}: {e}"))
            continue
        t_ext = t_fit + t_eval * m / pm
        rows.append(dict(package=name, queries_measured=pm, fit_s=t_fit, eval_s_measured=t_eval,
                         seconds_extrapolated_to_m=t_ext, extrapolated=pm < m,
                         x_kernelkit=t_ext / engine_row["kernelkit_s"],
                         max_rel_err=_max_rel_err(sums[:nt], truth[:nt]), **extra_info))
    return dict(d=d, dtype="float64", n=n, m=m, peer_m=pm, kernelkit_s=engine_row["kernelkit_s"],
                kernelkit_backend=engine_row["kernelkit_backend"],
                reference_s=engine_row["reference_s"], rows=rows)


def print_peers(res):
    print(f"\n### d={res['d']} float64, n = m = {res['n']:,}: peers measured on {res['peer_m']:,} queries, "
          f"time extrapolated linearly to m = {res['m']:,} (fit/setup time added once)\n")
    print(f"{'package':42s} {'measured s':>10s} {'extrap. s':>10s} {'x kernelkit':>11s} {'max relerr':>10s}")
    print(f"{'kernelkit (' + res['kernelkit_backend'] + ', all cores)':42s} {'':>10s} "
          f"{res['kernelkit_s']:10.3f} {1.0:11.2f} {'':>10s}")
    print(f"{'blocked NumPy reference (2 threads)':42s} {'':>10s} {res['reference_s']:10.3f} "
          f"{res['reference_s'] / res['kernelkit_s']:11.2f} {'':>10s}")
    for r in res["rows"]:
        if "skipped" in r:
            print(f"{r['package']:42s} skipped ({r['skipped']})")
            continue
        print(f"{r['package']:42s} {r['fit_s'] + r['eval_s_measured']:10.3f} "
              f"{r['seconds_extrapolated_to_m']:10.3f} {r['x_kernelkit']:11.2f} {r['max_rel_err']:10.2e}")


# ------------------------------------------------------------------ section 3: machine limit
def _rate(fn, work, min_s=0.2, batches=3):
    """Best rate work / second of fn over a few timed batches of at least min_s each."""
    fn()
    reps, t = 1, 0.0
    while True:  # calibrate
        t0 = time.perf_counter()
        for _ in range(reps):
            fn()
        t = time.perf_counter() - t0
        if t >= min_s / 4 or reps >= 1 << 20:
            break
        reps *= 2
    reps = max(1, int(reps * min_s / max(t, 1e-9)))
    best = math.inf
    for _ in range(batches):
        t0 = time.perf_counter()
        for _ in range(reps):
            fn()
        best = min(best, time.perf_counter() - t0)
    return work * reps / best


def machine_limit(d, dtype, cores, cache):
    key = (d, dtype)
    if key not in cache:
        rng = np.random.default_rng(1)
        A = rng.standard_normal((BLOCK, BLOCK)).astype(dtype)
        B = rng.standard_normal((BLOCK, d)).astype(dtype)
        C = np.empty((BLOCK, d), dtype=dtype)
        with threadpool_limits(limits=1):  # one core's BLAS, same flop count as a block's distance GEMM
            gemm1 = _rate(lambda: np.matmul(A, B, out=C), 2.0 * BLOCK * BLOCK * d)
        if ("exp", dtype) not in cache:
            a = rng.uniform(-5.0, 0.0, 10**6).astype(dtype)
            b = np.empty_like(a)
            rates = {"numpy": _rate(lambda: np.exp(a, out=b), 1e6)}
            if kk.engine.fused_available():  # the engine's own vectorised exp, often the faster one
                from kernelkit.engine._fused import exp_nonpositive
                rates["kernelkit"] = _rate(lambda: exp_nonpositive(a), 1e6)
            best = max(rates, key=rates.get)
            cache[("exp", dtype)] = (rates[best], best)
        exp1, exp_src = cache[("exp", dtype)]
        cache[key] = dict(cores=cores, gemm_gflops_1core=gemm1 / 1e9, gemm_gflops=gemm1 * cores / 1e9,
                          exp_gexp_per_s_1core=exp1 / 1e9, exp_gexp_per_s=exp1 * cores / 1e9,
                          exp_source=exp_src)
    return dict(cache[key])


def numpy_exps_alone(pairs, dtype, threads):
    """(seconds, block) for numpy's ``pairs`` exps on cache-resident blocks, split over ``threads`` threads.

    The best over blocks of EXP_BLOCKS values (input and output fit the 1-2 MB L2 of one core); below
    about 16k values numpy's per-call overhead and the GIL keep two threads from running in parallel,
    which would flatter kernelkit."""
    best = (math.inf, None)
    for block in EXP_BLOCKS:
        blocks = max(1, int(round(pairs / block)))
        per = [blocks // threads + (t < blocks % threads) for t in range(threads)]

        def work(count, seed, block=block):
            a = np.random.default_rng(seed).uniform(-5.0, 0.0, block).astype(dtype)
            b = np.empty_like(a)
            for _ in range(count):
                np.exp(a, out=b)

        with threadpool_limits(limits=1), concurrent.futures.ThreadPoolExecutor(threads) as pool:
            work(4, 0)   # warm up
            t0 = time.perf_counter()
            list(pool.map(work, per, range(threads)))
            best = min(best, (time.perf_counter() - t0, block))
    return best


def print_limits(rows):
    print("\n## 3. Machine limit: lower bound = 2 n m d / (GEMM flops) + n m / (exp rate), "
          "single-core rates x cores\n")
    print(f"{'case':14s} {'GEMM GF/s':>10s} {'exp Gexp/s (source)':>22s} {'bound s':>9s} {'kk s':>9s} {'kk / bound':>10s}")
    for r in rows:
        lim = r["machine_limit"]
        print(f"d={r['d']:<3d} {r['dtype']:9s} {lim['gemm_gflops']:10.2f} {lim['exp_gexp_per_s']:10.3f} "
              f"({lim.get('exp_source', 'numpy')}) "
              f"{lim['lower_bound_s']:9.3f} {r['kernelkit_s']:9.3f} {lim['kernelkit_x_limit']:10.2f}")
    for r in rows:
        lim = r["machine_limit"]
        tgt = f" (target <= {LIMIT_TARGET_D64}) {_mark(lim['kernelkit_x_limit'] <= LIMIT_TARGET_D64)}" \
            if r["d"] == 64 else ""
        print(f"d={r['d']} {r['dtype']}: kernelkit ({r['kernelkit_backend']}) is "
              f"{lim['kernelkit_x_limit']:.2f} times the machine limit{tgt}")
    print("\nnumpy exps alone: the same n m exps on cache-resident blocks (best block size), as many threads "
          "as kernelkit\n")
    print(f"{'case':14s} {'numpy exps s':>12s} {'block':>7s} {'kk s':>9s} {'kk / exps':>10s}")
    for r in rows:
        lim = r["machine_limit"]
        tgt = f"  (target <= {EXPS_ALONE_TARGET}) {_mark(lim['kernelkit_x_exps'] <= EXPS_ALONE_TARGET)}" \
            if r["d"] == 3 else ""
        print(f"d={r['d']:<3d} {r['dtype']:9s} {lim['numpy_exps_s']:12.3f} {lim['numpy_exps_block']:7d} "
              f"{r['kernelkit_s']:9.3f} "
              f"{lim['kernelkit_x_exps']:10.2f}{tgt}")


# ------------------------------------------------------------------ section 4: memory
def memory_child(n, memory):
    """Run in a fresh process: peak RSS of one kernel_sum above the inputs; prints one JSON line."""
    d, h = 3, math.sqrt(3)
    kernel = kk.Gaussian(h)
    warm = np.random.default_rng(5).standard_normal((64, d)).astype(np.float32)
    kk.kernel_sum(kernel, warm, warm, memory=memory)  # load code paths (and any compiled module) first
    rng = np.random.default_rng([0, d])
    X = rng.standard_normal((n, d)).astype(np.float32)
    Y = rng.standard_normal((n, d)).astype(np.float32)
    scale = 1024.0 if sys.platform != "darwin" else 1024.0 * 1024.0  # ru_maxrss: KB (Linux), bytes (macOS)
    base_maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    try:  # also the precise figure: reset the high-water mark to the current RSS
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
        base_hwm = _status_kb("VmRSS")
    except OSError:
        base_hwm = None
    t0 = time.perf_counter()
    out = kk.kernel_sum(kernel, X, Y, memory=memory)
    secs = time.perf_counter() - t0
    peak_maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    peak_hwm = _status_kb("VmHWM") if base_hwm is not None else None
    print(json.dumps(dict(
        n=n, m=n, d=d, dtype="float32", memory=memory, seconds=secs, backend=_kk_backend_used(kernel),
        inputs_mb=(X.nbytes + Y.nbytes) / 1e6, output_mb=out.nbytes / 1e6,
        maxrss_after_inputs_mb=base_maxrss / scale, maxrss_after_sum_mb=peak_maxrss / scale,
        peak_above_inputs_mb=(peak_maxrss - base_maxrss) / scale,
        hwm_peak_above_inputs_mb=None if base_hwm is None or peak_hwm is None else (peak_hwm - base_hwm) / 1024.0)))


def _status_kb(field):
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def memory_check(n, memory):
    proc = subprocess.run([sys.executable, os.path.abspath(__file__), "--_memory-child", str(n), memory],
                          capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"memory-check subprocess failed (status {proc.returncode}):\n{proc.stderr}")
    res = json.loads(proc.stdout.strip().splitlines()[-1])
    figures = [v for v in (res["peak_above_inputs_mb"], res["hwm_peak_above_inputs_mb"]) if v is not None]
    res["peak_reported_mb"] = max(figures)
    res["target_mb"] = MEMORY_TARGET_MB
    res["meets_target"] = res["peak_reported_mb"] < MEMORY_TARGET_MB
    return res


def print_memory(res):
    print(f"\n## 4. Memory: kernel_sum(memory={res['memory']!r}), n = m = {res['n']:,}, d = 3, float32, "
          f"fresh process ({res['backend']} backend)\n")
    hwm = res["hwm_peak_above_inputs_mb"]
    print(f"peak RSS above inputs: {res['peak_above_inputs_mb']:.1f} MB (ru_maxrss)"
          + (f", {hwm:.1f} MB (VmHWM after reset)" if hwm is not None else "")
          + f"; target < {res['target_mb']:.0f} MB: {_mark(res['meets_target'])}")
    print("(ru_maxrss is a lifetime peak, so import-time peaks hide part of the sum's; the figure checked "
          f"against the target is the larger one: {res['peak_reported_mb']:.1f} MB)")
    print(f"inputs {res['inputs_mb']:.1f} MB, output {res['output_mb']:.1f} MB, time {res['seconds']:.3f} s "
          f"({res['n'] * res['m'] / res['seconds'] / 1e9:.3f} G kernel evaluations/s)")


# ------------------------------------------------------------------ markdown
def print_markdown(engine_rows, peer_res, mem):
    print("\n## Markdown (for README)\n")
    print(f"engine build: {kk.engine.cpu_features()['engine']}\n")
    print("| case | blocked NumPy s | kernelkit s (backend) | speed-up (target) | kernelkit G evals/s "
          "| kernelkit rel. err (target) | x machine limit | x numpy exps alone |")
    print("|---|---|---|---|---|---|---|---|")
    for r in engine_rows:
        st = r["speedup_target"]
        print(f"| d={r['d']} {r['dtype']}, n=m={r['n']:,} | {r['reference_s']:.3f} | {r['kernelkit_s']:.3f} "
              f"({r['kernelkit_backend']}) | {r['speedup']:.2f} ({'>= %g' % st if st else '-'}) "
              f"| {r['kernelkit_gevals_per_s']:.3f} | {r['kernelkit_max_rel_err']:.1e} (<= {r['error_target']:.0e}) "
              f"| {r['machine_limit']['kernelkit_x_limit']:.2f} | {r['machine_limit']['kernelkit_x_exps']:.2f} |")
    if peer_res:
        print("\n| case | package | seconds (extrapolated to m) | x kernelkit | max rel. err |")
        print("|---|---|---|---|---|")
        for res in peer_res:
            for r in res["rows"]:
                if "skipped" in r:
                    continue
                ext = " (extrap.)" if r["extrapolated"] else ""
                print(f"| d={res['d']} float64 | {r['package']} | {r['seconds_extrapolated_to_m']:.2f}{ext} "
                      f"| {r['x_kernelkit']:.1f} | {r['max_rel_err']:.1e} |")
    if mem:
        print(f"\nMemory: kernel_sum(memory={mem['memory']!r}) at n = m = {mem['n']:,}, d = 3, float32: "
              f"{mem['peak_reported_mb']:.0f} MB peak RSS above inputs (target < {mem['target_mb']:.0f} MB), "
              f"{mem['seconds']:.2f} s.")


# ------------------------------------------------------------------ main
def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true",
                    help="smoke run: n = m = 20,000, one peer (scipy), no memory check unless asked")
    ap.add_argument("--n", type=int, default=None, help="n = m (default 100,000; 20,000 with --quick)")
    ap.add_argument("--d", type=int, nargs="+", default=[3, 64], help="dimensions (default 3 64)")
    ap.add_argument("--dtypes", nargs="+", default=["float32", "float64"], choices=["float32", "float64"])
    ap.add_argument("--reps", type=int, default=1, help="repetitions per timing, min taken (default 1)")
    ap.add_argument("--peer-m", type=int, default=2000, help="queries the peers are evaluated on (default 2000)")
    ap.add_argument("--no-peers", action="store_true", help="skip section 2")
    ap.add_argument("--truth-queries", type=int, default=200, help="random queries checked vs exact truth")
    ap.add_argument("--memory-check", action=argparse.BooleanOptionalAction, default=None,
                    help="section 4 (default: on, off with --quick)")
    ap.add_argument("--memory-n", type=int, default=200_000, help="n = m of the memory check (default 200,000)")
    ap.add_argument("--memory", default="256MB", help="memory budget of the memory check (default 256MB)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--_memory-child", nargs=2, metavar=("N", "MEMORY"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args._memory_child:
        memory_child(int(args._memory_child[0]), args._memory_child[1])
        return

    q = args.quick
    n = args.n if args.n is not None else (20_000 if q else 100_000)
    do_mem = (not q) if args.memory_check is None else args.memory_check
    peer_names = [] if args.no_peers else (["scipy gaussian_kde"] if q else list(PEERS))
    cores = _cores()
    fused = bool(kk.engine.fused_available())
    machine = dict(platform=platform.platform(), processor=platform.processor() or platform.machine(),
                   cpu_model=_cpu_model(), cpu_count=os.cpu_count(), cores_available=cores,
                   python=platform.python_version(), numpy=np.__version__, scipy=scipy.__version__,
                   sklearn=_version("sklearn"), threadpoolctl=_version("threadpoolctl"),
                   pykeops=_version("pykeops"), kernelkit=kk.__version__, fused_available=fused,
                   kernelkit_threads=kk.get_options().resolved_threads(),
                   engine_build=kk.engine.cpu_features()["engine"], engine_builds=kk.engine.cpu_features()["built"],
                   cpu_features=kk.engine.cpu_features()["cpu"],
                   blas=[{k: v for k, v in info.items() if k in ("internal_api", "version", "num_threads",
                                                                    "threading_layer", "architecture")}
                         for info in threadpool_info()])
    print(f"kernelkit engine benchmark: n = m = {n:,}, d in {args.d}, {args.dtypes}, reps {args.reps}; "
          f"fused backend available: {fused}; kernelkit threads: {machine['kernelkit_threads']}")
    print(f"machine: {machine['cpu_model']}, {cores} cores available ({machine['cpu_count']} CPUs), "
          f"numpy {np.__version__}, scipy {scipy.__version__}")
    avx512 = all(machine["cpu_features"].get(f) for f in ("avx512f", "avx512bw", "avx512dq", "avx512vl"))
    print(f"engine build: {machine['engine_build']} (built: {', '.join(machine['engine_builds'])}); CPU "
          f"{'has AVX-512' if avx512 else 'has no AVX-512'}"
          f"{'' if avx512 or not machine['cpu_features'].get('avx2') else ' (AVX2 only)'}")

    idx = np.sort(np.random.default_rng([args.seed, 7, n]).choice(n, size=min(args.truth_queries, n), replace=False))
    data_cache, truth_cache, lim_cache = {}, {}, {}
    engine_rows = []
    for d in args.d:
        for dtype in args.dtypes:
            r = engine_case(n, d, dtype, args.seed, args.reps, idx, data_cache, truth_cache)
            lim = machine_limit(d, dtype, cores, lim_cache)
            pairs = float(n) * float(n)
            lim["lower_bound_s"] = 2.0 * pairs * d / (lim["gemm_gflops"] * 1e9) + pairs / (lim["exp_gexp_per_s"] * 1e9)
            lim["kernelkit_x_limit"] = r["kernelkit_s"] / lim["lower_bound_s"]
            lim["reference_x_limit"] = r["reference_s"] / lim["lower_bound_s"]
            lim["numpy_exps_s"], lim["numpy_exps_block"] = numpy_exps_alone(pairs, np.dtype(dtype),
                                                                            machine["kernelkit_threads"])
            lim["kernelkit_x_exps"] = r["kernelkit_s"] / lim["numpy_exps_s"]
            r["machine_limit"] = lim
            engine_rows.append(r)
            print(f"  done d={d} {dtype}: reference {r['reference_s']:.3f} s, kernelkit {r['kernelkit_s']:.3f} s",
                  flush=True)
    print_engine(engine_rows)

    peer_res = []
    if peer_names and "float64" in args.dtypes:
        print(f"\n## 2. Peers (float64), each measured on --peer-m = {min(args.peer_m, n):,} queries and "
              f"extrapolated linearly to m = {n:,}" + (" [--quick: one peer]" if q else ""))
        for r in engine_rows:
            if r["dtype"] == "float64" and r["d"] in (3, 64):
                res = peers_case(r, r["d"], args.seed, args.peer_m, idx, data_cache, truth_cache, peer_names)
                print_peers(res)
                peer_res.append(res)
    elif not peer_names:
        print("\n## 2. Peers: skipped (--no-peers)")

    print_limits(engine_rows)

    mem = None
    if do_mem:
        mem = memory_check(args.memory_n, args.memory)
        print_memory(mem)
    else:
        print("\n## 4. Memory check: skipped (--quick or --no-memory-check; run with --memory-check)")

    print_markdown(engine_rows, peer_res, mem)

    results = dict(machine=machine, command=" ".join(sys.argv), quick=q, n=n, m=n, reps=args.reps,
                   seed=args.seed, peer_m=args.peer_m, engine=engine_rows, peers=peer_res, memory=mem,
                   targets=dict(speedup=SPEEDUP_TARGET, max_rel_err=ERROR_TARGET, memory_mb=MEMORY_TARGET_MB,
                                exps_alone_d3=EXPS_ALONE_TARGET, machine_limit_d64=LIMIT_TARGET_D64))
    write_results("engine_quick" if q else "engine", results)


if __name__ == "__main__":
    main()
