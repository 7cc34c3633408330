"""MMD two-sample permutation test: kernelkit vs a plain NumPy reference and peers (hyppo, alibi-detect, kerneltests).

Part 1: n = m = 5,000, d = 10, Gaussian kernel at the median bandwidth (pooled), 200 permutations:
kernelkit ``mmd_test`` vs a NumPy reference (one (n + m)^2 kernel matrix, all permutations as one GEMM with
signed weight columns), both timed here on the same inputs and the same permutations (identical nulls
expected to ~1e-12). Peers run in a subprocess with the peers' virtual environment (default
/work/tests-venv, created with ``python3 -m venv /work/tests-venv && /work/tests-venv/bin/pip install
hyppo alibi-detect kerneltests torch==2.13.0``) on the same inputs saved to a temporary .npz, with the
bandwidth converted to each peer's convention:

* hyppo ``ksample.MMD(compute_kernel="gaussian", gamma=1 / (2 sigma^2))``: takes about an hour at this size,
  so it runs at ``--hyppo-n`` (default 1,000) and is compared with kernelkit at that n.
* alibi-detect ``cd.MMDDrift(backend="pytorch", sigma=sigma)`` on float64 inputs (same
  exp(-r^2 / (2 sigma^2)) convention; its "distance" is the unbiased MMD^2).
* hyppo's statistic is an HSIC between the pooled sample and the labels, rescaled; it is not a fixed
  multiple of MMD^2 with this kernel (the ratio to kernelkit's biased MMD^2 is printed), so only its time is
  comparable.
* kerneltests (``kt.mmdagg``, the MMDAgg port): MMDAgg with 2 Gaussian bandwidths and B1 = B2 = B against
  kernelkit's ``mmdagg_test`` on the same bandwidths (its exp(-r^2 / lambda^2) is kernelkit's
  Gaussian(lambda / sqrt 2)); its per-kernel statistics are unnormalised sums, divided by n(n - 1) here.
  Also both default collections (10 bandwidths x Laplace and Gaussian; kerneltests' Laplace uses the L1
  distance, kernelkit's the Euclidean one: timings only).

A peer that is missing or fails is reported with its error, not skipped silently. The statistic of each peer
is compared with kernelkit's on the same statistic (biased or unbiased, as the peer computes it).

Part 2: n = m = 10^5, d = 10, 100 permutations: kernelkit time and peak memory (tracemalloc of NumPy
buffers and the process's max RSS) within the default 1 GB engine budget.

Run:  flock /tmp/kk-bench.lock python benchmarks/bench_tests.py [--n 5000 --d 10 --B 200 --large-n 100000]
Writes benchmarks/results/tests.json. Other processes running at the same time make timings "loaded".
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
import tracemalloc

import numpy as np

import kernelkit as kk
from kernelkit.stats import mmd2, mmd_test

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _machine import cpu_info, cpu_line  # noqa: E402
from _results import write_results  # noqa: E402

PEERS_PY = os.environ.get("KK_TESTS_VENV", "/work/tests-venv") + "/bin/python"


def data(n, d, seed, shift=0.0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    Y = rng.standard_normal((n, d))
    Y[:, 0] += shift
    return X, Y


def numpy_reference(X, Y, sigma, B, seed):
    """One dense kernel matrix of the pooled sample; the observed and B permuted biased MMD^2 as one GEMM.

    Uses the same permutation stream as kernelkit (``rng.permutation(N)[:n]`` labels X, in order).
    """
    n, m = len(X), len(Y)
    Z = np.concatenate([X, Y])
    sq = np.einsum("ij,ij->i", Z, Z)
    K = Z @ Z.T
    K *= -2
    K += sq[:, None]
    K += sq[None, :]
    np.maximum(K, 0, out=K)
    K *= -1 / (2 * sigma ** 2)
    np.exp(K, out=K)
    rng = np.random.default_rng(seed)
    W = np.full((n + m, B + 1), -1.0 / m)
    W[:n, 0] = 1.0 / n
    for b in range(B):
        W[rng.permutation(n + m)[:n], b + 1] = 1.0 / n
    vals = np.einsum("ij,ij->j", W, K @ W)
    return vals[0], vals[1:]


PEER_SCRIPT = r"""
import json, sys, time, traceback
import numpy as np
f = np.load(sys.argv[1]); which = sys.argv[2]; B = int(sys.argv[3])
X, Y, sigma = f["X"], f["Y"], float(f["sigma"])
out = {"peer": which}
try:
    t0 = time.perf_counter()
    if which == "hyppo":
        from hyppo.ksample import MMD
        stat, p = MMD(compute_kernel="gaussian", bias=True, gamma=1.0 / (2 * sigma ** 2)).test(X, Y, reps=B,
                                                                                              auto=False)
        out.update(statistic=float(stat), pvalue=float(p))
    elif which == "alibi-detect":
        import torch
        torch.set_num_threads(int(sys.argv[4]))
        from alibi_detect.cd import MMDDrift
        cd = MMDDrift(X, backend="pytorch", p_val=0.05, n_permutations=B, sigma=np.array([sigma]),
                      configure_kernel_from_x_ref=False, device="cpu")   # float64 inputs: float64 torch
        r = cd.predict(Y)["data"]
        out.update(statistic=float(r["distance"]), pvalue=float(r["p_val"]))
    elif which == "kerneltests":
        from kt.mmdagg import mmdagg
        rej, det = mmdagg(X, Y, kernel="gaussian", number_bandwidths=2, B1=B, B2=B, return_details=True)
        n = X.shape[0]
        out.update(reject=int(rej), bandwidths=[float(b) for b in det["bandwidth"]],
                   statistics=[float(v) / (n * (n - 1)) for v in det["mmd"]])
        out["seconds"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        rej, det = mmdagg(X, Y, B1=B, B2=B, return_details=True)
        out["seconds_default"] = time.perf_counter() - t0
        out["statistics_default"] = sorted(float(v) / (n * (n - 1)) for v in det["mmd"])
    out.setdefault("seconds", time.perf_counter() - t0)
except Exception as exc:
    out["error"] = f"{type(exc).__name__}: {exc}"[:400]
    out["traceback"] = traceback.format_exc()[-800:]
print("RESULT " + json.dumps(out))
"""


def run_peer(which, X, Y, sigma, B, threads, timeout):
    if not os.path.exists(PEERS_PY):
        return {"peer": which, "error": f"no peers' environment at {PEERS_PY}"}
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "inputs.npz")
        np.savez(path, X=X, Y=Y, sigma=sigma)
        script = os.path.join(tmp, "peer.py")
        with open(script, "w") as fh:
            fh.write(PEER_SCRIPT)
        env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads),
               "OPENBLAS_NUM_THREADS": str(threads)}
        try:
            proc = subprocess.run([PEERS_PY, script, path, which, str(B), str(threads)], capture_output=True,
                                  text=True, timeout=timeout, env=env)
        except subprocess.TimeoutExpired:
            return {"peer": which, "error": f"timed out after {timeout} s"}
    for line in proc.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[7:])
    return {"peer": which, "error": (proc.stderr or proc.stdout)[-400:]}


def part1(n, d, B, seed, threads, hyppo_n, peers, timeout):
    X, Y = data(n, d, seed)
    sigma = kk.median_bandwidth(np.concatenate([X, Y]))
    k = kk.Gaussian(sigma)
    mmd_test(X[:200], Y[:200], k, n_permutations=5, random_state=0, threads=threads)   # warm-up
    t0 = time.perf_counter()
    res = mmd_test(X, Y, k, n_permutations=B, random_state=seed, threads=threads)
    t_kk = time.perf_counter() - t0
    t0 = time.perf_counter()
    ref_stat, ref_null = numpy_reference(X, Y, sigma, B, seed)
    t_np = time.perf_counter() - t0
    rows = [dict(package="kernelkit mmd_test", n=n, seconds=t_kk, statistic=res.statistic, pvalue=res.pvalue),
            dict(package="NumPy reference (dense K, one GEMM)", n=n, seconds=t_np, statistic=float(ref_stat),
                 pvalue=float((1 + np.sum(ref_null >= ref_stat)) / (B + 1)),
                 max_abs_null_diff=float(np.max(np.abs(ref_null - res.null))))]
    from kernelkit.stats import energy_test
    from scipy.spatial.distance import cdist
    t0 = time.perf_counter()
    en = energy_test(X, Y, n_permutations=B, random_state=seed, threads=threads)
    t_en = time.perf_counter() - t0
    e_ref = 2 * cdist(X, Y).mean() - cdist(X, X).mean() - cdist(Y, Y).mean()
    rows.append(dict(package="kernelkit energy_test (distance kernel, same permutations)", n=n, seconds=t_en,
                     statistic=en.statistic, pvalue=en.pvalue, abs_diff_vs_cdist=float(abs(en.statistic - e_ref)),
                     backend=en.details.get("backend")))
    rows[0]["backend"] = res.details.get("backend")
    u_stat = mmd2(X, Y, k, unbiased=True)
    for which in peers:
        pn = hyppo_n if which == "hyppo" else n
        Xp, Yp = X[:pn], Y[:pn]
        r = run_peer(which, Xp, Yp, sigma, B, threads, timeout)
        r["n"] = pn
        if "statistic" in r:
            ours_b = mmd2(Xp, Yp, k) if pn != n else res.statistic
            ours_u = mmd2(Xp, Yp, k, unbiased=True) if pn != n else u_stat
            r["diff_vs_kernelkit_biased"] = abs(r["statistic"] - ours_b)
            r["diff_vs_kernelkit_unbiased"] = abs(r["statistic"] - ours_u)
            r["ratio_to_kernelkit_biased"] = r["statistic"] / ours_b
            if pn != n:   # kernelkit at the peer's size, for the ratio
                t0 = time.perf_counter()
                mmd_test(Xp, Yp, k, n_permutations=B, random_state=seed, threads=threads)
                r["kernelkit_seconds_same_n"] = time.perf_counter() - t0
        if which == "kerneltests" and "statistics" in r:
            from kernelkit.stats import mmdagg_test
            lam = np.array(r["bandwidths"])
            t0 = time.perf_counter()
            ours = mmdagg_test(X, Y, kernels=["gaussian"], bandwidths=lam, B1=B, B2=B, random_state=seed,
                               threads=threads)
            r["kernelkit_seconds_same_n"] = time.perf_counter() - t0
            t0 = time.perf_counter()
            dflt = mmdagg_test(X, Y, B1=B, B2=B, random_state=seed, threads=threads)
            r["kernelkit_seconds_default"] = time.perf_counter() - t0
            if "statistics_default" in r:   # same collection (Laplace of the L1 distance, Gaussian of L2)
                mine = sorted(k["statistic"] for k in dflt.details["kernels"])
                if len(mine) == len(r["statistics_default"]):
                    r["max_stat_diff_default_collection"] = float(np.max(np.abs(
                        np.array(r["statistics_default"]) - mine)))
            r["max_stat_diff_vs_kernelkit_mmdagg"] = float(np.max(np.abs(
                np.array(r["statistics"]) - [k["statistic"] for k in ours.details["kernels"]])))
            r["package_note"] = ("MMDAgg, Gaussian, 2 bandwidths, B1 = B2 = B, vs kernelkit mmdagg_test on the "
                                 "same bandwidths; seconds_default: 10 bandwidths x (Laplace, Gaussian) both")
        rows.append(dict(package=which, **r))
    for r in rows:
        if "seconds" in r:
            base = r.get("kernelkit_seconds_same_n", t_kk)
            r["slower_than_kernelkit"] = r["seconds"] / base
    return dict(n=n, m=n, d=d, sigma=sigma, B=B, rows=rows)


def part2(n, d, B, seed, threads):
    X, Y = data(n, d, seed)
    tracemalloc.start()
    t0 = time.perf_counter()
    res = mmd_test(X, Y, n_permutations=B, random_state=seed, threads=threads)
    secs = time.perf_counter() - t0
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    return dict(n=n, m=n, d=d, B=B, seconds=secs, statistic=res.statistic, pvalue=res.pvalue,
                column_chunk=res.details["column_chunk"], peak_numpy_bytes=peak, max_rss_bytes=rss,
                engine_budget_bytes=kk.get_options().memory,
                dense_matrix_bytes_avoided=(2 * n) ** 2 * 8)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=5000)
    p.add_argument("--d", type=int, default=10)
    p.add_argument("--B", type=int, default=200)
    p.add_argument("--hyppo-n", type=int, default=1000)
    p.add_argument("--large-n", type=int, default=100_000, help="part 2 size (0: skip)")
    p.add_argument("--large-B", type=int, default=100)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--peers", default="hyppo,alibi-detect,kerneltests", help="comma-separated; '' for none")
    p.add_argument("--timeout", type=int, default=3600, help="seconds per peer")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="tests")
    a = p.parse_args()
    info = cpu_info()
    print(cpu_line(info))
    peers = [s for s in a.peers.split(",") if s]
    r1 = part1(a.n, a.d, a.B, a.seed, a.threads, a.hyppo_n, peers, a.timeout)
    print(f"\nPart 1: n = m = {a.n:,}, d = {a.d}, {a.B} permutations, Gaussian sigma = {r1['sigma']:.4g}")
    print(f"{'package':40s} {'n':>6s} {'seconds':>9s} {'x slower':>9s} {'statistic':>13s} {'p':>7s}  notes")
    for r in r1["rows"]:
        notes = r.get("error", "")
        if "diff_vs_kernelkit_biased" in r:
            notes = (f"|diff| biased {r['diff_vs_kernelkit_biased']:.1e}, "
                     f"unbiased {r['diff_vs_kernelkit_unbiased']:.1e}")
        if "max_stat_diff_vs_kernelkit_mmdagg" in r:
            notes = (f"MMDAgg 2 Gaussian bandwidths: max |stat diff| {r['max_stat_diff_vs_kernelkit_mmdagg']:.1e}; "
                     f"default collection {r['seconds_default']:.1f} s vs kernelkit "
                     f"{r['kernelkit_seconds_default']:.1f} s"
                     + (f" (max |stat diff| {r['max_stat_diff_default_collection']:.1e})"
                        if "max_stat_diff_default_collection" in r else ""))
        if "max_abs_null_diff" in r:
            notes = f"max |null diff| {r['max_abs_null_diff']:.1e}"
        if "abs_diff_vs_cdist" in r:
            notes = f"|stat - cdist energy distance| {r['abs_diff_vs_cdist']:.1e}; {r['backend']}"
        elif r.get("backend"):
            notes = f"{r['backend']}"
        print(f"{r['package']:40s} {r.get('n', 0):6d} {r.get('seconds', float('nan')):9.3f} "
              f"{r.get('slower_than_kernelkit', float('nan')):9.1f} {r.get('statistic', float('nan')):13.6g} "
              f"{r.get('pvalue', float('nan')):7.4f}  {notes}")
    out = dict(machine=info, part1=r1)
    if a.large_n:
        r2 = part2(a.large_n, a.d, a.large_B, a.seed, a.threads)
        print(f"\nPart 2: n = m = {a.large_n:,}, {a.large_B} permutations: {r2['seconds']:.1f} s, "
              f"peak NumPy buffers {r2['peak_numpy_bytes'] / 1e6:.0f} MB, max RSS {r2['max_rss_bytes'] / 1e6:.0f} MB "
              f"(engine budget {r2['engine_budget_bytes'] / 1e6:.0f} MB; the dense matrix would be "
              f"{r2['dense_matrix_bytes_avoided'] / 1e9:.0f} GB)")
        out["part2"] = r2
    write_results(a.out, out)


if __name__ == "__main__":
    main()
