"""Dask scale-out: kernelkit's engine on a LocalCluster vs the local engine, in one run.

Section 1 (the target): Gaussian kernel sums, n = 4e5 sources, m = 2e3
queries, d = 3 and d = 64 (float64). The local engine with 2 threads is the
reference; the cluster has 2 single-threaded worker processes (so both
sides use 2 cores). X is chunked so that a task holds 1e8, 1e7 or 1e6
pairs: the first is the target (Dask within 1.2x of local), the others show
what small tasks cost. Two settings of the data, both timed:

* "dask" (the target's figure): X persisted on the workers before timing
  (``client.persist``) and spread evenly over them, chunk i on worker
  i mod W (the scheduler alone placed 8 chunks 5:3 or 6:2, and
  ``client.rebalance`` left 3:5 at d = 64; a task runs where its chunk
  lives unless work stealing moves it; --no-rebalance keeps the
  scheduler's placement), as data that live on the cluster (loaded there or computed
  there) are; the timed call is ``client.compute(kernel_sum(...))`` of a
  graph built beforehand, Y (small) sent with it;
* "not persisted": the same graph on ``da.from_array(X)``, so every call
  also ships X (n d 8 bytes) from the client to the workers.

The same graphs on 1 worker (vs the local engine with 1 thread) give how
the cost grows with workers.

Section 2 (out of core): a KDE (Gaussian log-sum-exp) of a dask array of
n = 2e7 x 3 float32 points generated chunk by chunk inside the tasks
(never held whole), at 1e4 queries, on 2 workers whose memory limit
(--oc-limit, default 300 MB each) is below the data's 240 MB plus a
worker's own footprint; the run records whether any worker was restarted
(worker process ids before and after) and checks 20 of the answers against
the local engine on the same points.

Timings: median of --repeat (default 5) rounds after one untimed round; in
each round the local engine and the cluster's graphs run in turn, so a
change of the (shared) machine's load hits both alike. Read the ratios (of
the medians, same run), not the seconds.

Run:  flock /tmp/kk-bench.lock python benchmarks/bench_dask.py --repeat 3 --skip-oc    (section 1: about 10 min, loaded)
      flock /tmp/kk-bench.lock python benchmarks/bench_dask.py --d 3 --pairs 1e8 --workers 2 --repeat 7 --skip-oc
                                                                      (the target alone: 1-2 min)
      flock /tmp/kk-bench.lock python benchmarks/bench_dask.py --skip-sums --oc-m 10000 --oc-limit 250MB \
          --oc-chunk 500000                                                   (section 2: 7 min there)
      python benchmarks/bench_dask.py --n 40000 --m 500 --d 3 --repeat 1 --oc-n 2000000 --oc-m 200   (smoke size)
Options: --d (list), --pairs (list), --workers (list), --no-rebalance, --skip-unpersisted, --limit, --skip-sums,
--skip-oc, --oc-n, --oc-m, --oc-chunk, --oc-limit, --repeat. Each run rewrites the file (the one in results/ merges the runs of both sections).
Writes benchmarks/results/dask.json (--out-name NAME: NAME.json).
"""

from __future__ import annotations

import argparse
import collections
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


def _peak_rss():
    import resource
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux: KiB


def _cluster(n_workers, memory_limit):
    from distributed import Client, LocalCluster
    cluster = LocalCluster(n_workers=n_workers, threads_per_worker=1, processes=True, memory_limit=memory_limit,
                           dashboard_address=None)
    return cluster, Client(cluster)


def _alternate(fns, repeat):
    """Median wall time of each function over ``repeat`` rounds, run in turn within a round (so a change of
    the machine's load hits all of them alike) after one untimed round; also the warm-up outputs and the rounds."""
    outs = [fn() for fn in fns]  # warm-up: imports on the workers, first touch of the blocks
    times = [[] for _ in fns]
    for _ in range(repeat):
        for t, fn in zip(times, fns):
            t0 = time.perf_counter()
            fn()
            t.append(time.perf_counter() - t0)
    return [float(np.median(t)) for t in times], outs, times


def _persist_round_robin(client, X, chunk):
    """X as a dask array of row chunks persisted on the workers in turn (chunk i on worker i mod W).

    Each chunk is persisted on its worker, the chunks are concatenated, and the concatenation is persisted
    (its tasks only rename the chunks, where they live), so that the graphs timed start from keys in memory.
    """
    import dask.array as da
    from distributed import wait
    workers = sorted(client.scheduler_info()["workers"])
    parts = [client.persist(da.from_array(X[a:a + chunk], chunks=-1), workers=[workers[i % len(workers)]])
             for i, a in enumerate(range(0, X.shape[0], chunk))]
    wait(parts)
    dX = client.persist(da.concatenate(parts, axis=0))
    wait(dX)
    del parts
    return dX


def section_sums(args):
    import dask.array as da
    from distributed import wait
    rows = []
    rng = np.random.default_rng(args.seed)
    for d in args.d:
        X = rng.normal(size=(args.n, d))
        Y = rng.normal(size=(args.m, d))
        kern = kk.Gaussian(float(np.sqrt(d)))
        ref = kk.kernel_sum(kern, X, Y, threads=2)
        for workers in args.workers:
            cluster, client = _cluster(workers, args.limit)
            try:
                client.wait_for_workers(workers)
                for pairs in args.pairs:
                    chunk = max(1, int(pairs // args.m))
                    if args.no_rebalance:
                        dX = client.persist(da.from_array(X, chunks=(chunk, d)))
                        wait(dX)
                    else:   # the scheduler alone places 8 chunks 5:3 or 6:2 (client.rebalance: 3:5 at d = 64)
                        dX = _persist_round_robin(client, X, chunk)
                    placed = sorted(collections.Counter(w[0] for w in client.who_has(dX).values()).values())
                    graph = kk.kernel_sum(kern, dX, Y)              # X persisted: it lives on the cluster
                    sent = kk.kernel_sum(kern, da.from_array(X, chunks=(chunk, d)), Y)  # X sent with the graph

                    def local():
                        return kk.kernel_sum(kern, X, Y, threads=workers)
                    fns = [local, lambda: client.compute(graph).result()]
                    if not args.skip_unpersisted:
                        fns.append(lambda: client.compute(sent).result())
                    secs, outs, rounds = _alternate(fns, args.repeat)
                    err = float(np.max(np.abs(outs[1] - ref) / np.abs(ref)))
                    tasks = -(-args.n // chunk)
                    row = dict(d=d, workers=workers, pairs_per_task=chunk * args.m, tasks=tasks,
                               dask_s=secs[1], local_threads=workers, local_s=secs[0], ratio=secs[1] / secs[0],
                               max_rel_err=err, repeat=args.repeat, statistic="median",
                               chunks_per_worker=placed, local_rounds_s=rounds[0], dask_rounds_s=rounds[1],
                               round_ratios=[b / a for a, b in zip(rounds[0], rounds[1])])
                    extra = ""
                    if len(secs) > 2:
                        row.update(dask_unpersisted_s=secs[2], ratio_unpersisted=secs[2] / secs[0])
                        extra = f"  not persisted {secs[2]:7.3f} s (ratio {secs[2] / secs[0]:5.2f})"
                    rows.append(row)
                    print(f"d={d:3d} workers={workers} pairs/task={chunk * args.m:9.2e} tasks={tasks:5d}  "
                          f"dask {secs[1]:7.3f} s  local({workers} thr) {secs[0]:7.3f} s  "
                          f"ratio {secs[1] / secs[0]:5.2f}{extra}  max rel err {err:.1e}  chunks/worker {placed}",
                          flush=True)
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
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--workers", type=int, nargs="+", default=[2, 1], help="cluster sizes (section 1)")
    ap.add_argument("--no-rebalance", action="store_true",
                    help="keep the scheduler's placement of the persisted chunks (default: round robin)")
    ap.add_argument("--skip-unpersisted", action="store_true",
                    help="do not time the graph that sends X from the client (section 1)")
    ap.add_argument("--oc-n", type=int, default=20_000_000)
    ap.add_argument("--oc-m", type=int, default=10_000)
    ap.add_argument("--oc-chunk", type=int, default=1_000_000)
    ap.add_argument("--oc-limit", default="300MB", help="memory limit of each worker (section 2)")
    ap.add_argument("--skip-oc", action="store_true")
    ap.add_argument("--skip-sums", action="store_true")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out-name", default="dask", help="results/<name>.json (default dask)")
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
    write_results(args.out_name, results)
    return results


if __name__ == "__main__":
    main()
