"""Dask scale-out: kernelkit's engine on a LocalCluster vs the local engine, in one run.

Section 1 (the target): Gaussian kernel sums, n = 4e5 sources, m = 2e3
queries, d = 3 and d = 64 (float64), X persisted on the workers as a dask
array. The local engine with 2 threads is the reference; the cluster has 2
single-threaded worker processes (so both sides use 2 cores). X is chunked
so that a task holds 1e8, 1e7 or 1e6 pairs: the first is the target (Dask
within 1.2x of local), the others show what small tasks cost. The same
graph on 1 worker (vs the local engine with 1 thread) gives how the cost
grows with workers.

Section 2 (out of core): a KDE (Gaussian log-sum-exp) of a dask array of
n = 2e7 x 3 float32 points generated chunk by chunk inside the tasks
(never held whole), at 1e4 queries, on 2 workers whose memory limit
(--oc-limit, default 300 MB each) is below the data's 240 MB plus a
worker's own footprint; the run records whether any worker was restarted
(worker process ids before and after) and checks 20 of the answers against
the local engine on the same points.

Timings are best of --repeat (default 3) wall-clock runs, after one untimed run, of
``client.compute(...).result()`` (the graph built beforehand); the machine
is shared, so read the ratios, not the seconds.

Run:  flock /tmp/kk-bench.lock python benchmarks/bench_dask.py --repeat 2 --skip-oc    (section 1: 8 min, loaded 2 cores)
      flock /tmp/kk-bench.lock python benchmarks/bench_dask.py --skip-sums --oc-m 10000 --oc-limit 250MB \
          --oc-chunk 500000                                                   (section 2: 7 min there)
      python benchmarks/bench_dask.py --n 40000 --m 500 --d 3 --repeat 1 --oc-n 2000000 --oc-m 200   (smoke size)
Options: --d (list), --pairs (list), --limit, --skip-sums, --skip-oc, --oc-n, --oc-m, --oc-chunk, --oc-limit,
--repeat. Each run rewrites the file (the one in results/ merges the runs of both sections).
Writes benchmarks/results/dask.json.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import kernelkit as kk  # noqa: E402
from _results import write_results  # noqa: E402

try:
    from _machine import cpu_info  # noqa: E402
except ImportError:  # pragma: no cover
    cpu_info = dict


def _best(fn, repeat, warmup=False):
    if warmup:  # imports on the workers, first touch of the persisted blocks
        fn()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return min(times), out


def _peak_rss():
    import resource
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux: KiB


def _cluster(n_workers, memory_limit):
    from distributed import Client, LocalCluster
    cluster = LocalCluster(n_workers=n_workers, threads_per_worker=1, processes=True, memory_limit=memory_limit,
                           dashboard_address=None)
    return cluster, Client(cluster)


def section_sums(args):
    import dask.array as da
    rows = []
    rng = np.random.default_rng(args.seed)
    for d in args.d:
        X = rng.normal(size=(args.n, d))
        Y = rng.normal(size=(args.m, d))
        kern = kk.Gaussian(float(np.sqrt(d)))
        local = {}
        for t in (1, 2):
            local[t], ref = _best(lambda: kk.kernel_sum(kern, X, Y, threads=t), args.repeat, warmup=True)
        for workers in (2, 1):
            cluster, client = _cluster(workers, args.limit)
            try:
                for pairs in args.pairs:
                    chunk = max(1, int(pairs // args.m))
                    dX = client.persist(da.from_array(X, chunks=(chunk, d)))
                    client.wait_for_workers(workers)
                    from distributed import wait
                    wait(dX)
                    graph = kk.kernel_sum(kern, dX, Y)
                    secs, out = _best(lambda: client.compute(graph).result(), args.repeat, warmup=True)
                    err = float(np.max(np.abs(out - ref) / np.abs(ref)))
                    ratio = secs / local[workers]
                    tasks = -(-args.n // chunk)
                    rows.append(dict(d=d, workers=workers, pairs_per_task=chunk * args.m, tasks=tasks,
                                     dask_s=secs, local_threads=workers, local_s=local[workers], ratio=ratio,
                                     max_rel_err=err))
                    print(f"d={d:3d} workers={workers} pairs/task={chunk * args.m:9.2e} tasks={tasks:5d}  "
                          f"dask {secs:7.3f} s  local({workers} thr) {local[workers]:7.3f} s  "
                          f"ratio {ratio:5.2f}  max rel err {err:.1e}", flush=True)
                    client.cancel(dX)
            finally:
                client.close()
                cluster.close()
    return rows


def section_out_of_core(args):
    import dask.array as da
    n, m, d = args.oc_n, args.oc_m, 3
    h = 0.05
    cluster, client = _cluster(2, args.oc_limit)
    try:
        pids = sorted(client.run(os.getpid).values())
        X = da.random.default_rng(args.seed).standard_normal((n, d), chunks=(args.oc_chunk, d), dtype=np.float32)
        Y = np.random.default_rng(args.seed + 1).normal(size=(m, d)).astype(np.float32)
        kern = kk.Gaussian(h)
        const = np.log(n) + 0.5 * d * np.log(2 * np.pi * h * h)
        client.compute(kk.kernel_logsumexp(kern, X[:1000], Y[:10])).result()  # warm-up: imports on the workers
        graph = kk.kernel_logsumexp(kern, X, Y) - const
        t0 = time.perf_counter()
        kde = client.compute(graph).result()
        secs = time.perf_counter() - t0
        pids_after = sorted(client.run(os.getpid).values())
        rss = max(client.run(_peak_rss).values())
        restarts = pids != pids_after
        X_local = X.compute(scheduler="sync")  # the same points, for a check of a few answers
        sub = slice(0, min(20, m))
        ref = kk.kernel_logsumexp(kern, X_local, Y[sub]) - const
        err = float(np.max(np.abs(kde[sub] - ref)))
    finally:
        client.close()
        cluster.close()
    row = dict(n=n, m=m, d=d, dtype="float32", data_bytes=n * d * 4, worker_memory_limit=args.oc_limit,
               workers=2, chunk_rows=args.oc_chunk, seconds=secs, pairs_per_s=n * m / secs,
               worker_restarts=bool(restarts), worker_peak_rss_bytes=rss, max_abs_err_first_20=err)
    print(f"out of core: n={n:.1e} x {d} float32 ({n * d * 4 / 1e6:.0f} MB) on 2 workers x {args.oc_limit}: "
          f"{secs:.1f} s ({n * m / secs:.2e} pairs/s), worker restarts: {restarts}, peak worker RSS "
          f"{rss / 1e6:.0f} MB, "
          f"max |err| (20 queries vs local) {err:.1e}", flush=True)
    return row


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=400_000)
    ap.add_argument("--m", type=int, default=2_000)
    ap.add_argument("--d", type=int, nargs="+", default=[3, 64])
    ap.add_argument("--pairs", type=float, nargs="+", default=[1e8, 1e7, 1e6], help="pairs per task")
    ap.add_argument("--limit", default="2GB", help="memory limit of each worker (section 1)")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--oc-n", type=int, default=20_000_000)
    ap.add_argument("--oc-m", type=int, default=10_000)
    ap.add_argument("--oc-chunk", type=int, default=1_000_000)
    ap.add_argument("--oc-limit", default="300MB", help="memory limit of each worker (section 2)")
    ap.add_argument("--skip-oc", action="store_true")
    ap.add_argument("--skip-sums", action="store_true")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    import warnings
    import dask
    import distributed
    warnings.filterwarnings("ignore", message="Sending large graph")  # X sent once to be persisted
    info = cpu_info()
    print(f"kernelkit {getattr(kk, '__version__', '?')}, dask {dask.__version__}, distributed "
          f"{distributed.__version__}; {info}", flush=True)
    results = dict(n=args.n, m=args.m, d=args.d, machine=info, dask=dask.__version__,
                   distributed=distributed.__version__)
    if not args.skip_sums:
        results["sums"] = section_sums(args)
    if not args.skip_oc:
        results["out_of_core"] = section_out_of_core(args)
    write_results("dask", results)
    return results


if __name__ == "__main__":
    main()
