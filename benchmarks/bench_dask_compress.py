"""Compress++ over the chunks of a dask array (kernelkit.dask.compresspp) vs local Compress++, in one run.

Target (issue 19): Compress++ over 8 partitions of n = 2^20 points, MMD within 10% of local
Compress++ on the same data (median of seeds), wall time reported.

Setting of benchmarks/bench_compress.py: Gaussian kernel with sigma^2 = 2d, delta = 0.5, g = 4,
output floor(sqrt(n)), data N(0, I_2) ("gauss2") or the 8-component mixture ("mog8"). The cluster
is a LocalCluster of --workers single-threaded worker processes (memory limit --limit each); X is
cut into --parts equal row chunks and persisted on the workers before the clock starts. Local
Compress++ runs in this process with the default threads (2 on this machine), on the same X and seeds.

MMD: exact against the full sample when n <= --exact-max (default 2^18; the n^2 term is computed
once per data set and shared by both methods); above, against the data's population distribution
in closed form (as bench_compress.py section D), which adds the sample's own error (about
n^-1/2) to both methods and so pulls their ratio towards 1: read the exact rows for the target.

Run:  flock /tmp/kk-bench.lock python benchmarks/bench_dask_compress.py                  (n = 2^20)
      flock /tmp/kk-bench.lock python benchmarks/bench_dask_compress.py --log2n 18       (exact MMD)
      python benchmarks/bench_dask_compress.py --log2n 14 --seeds 1                      (smoke size)
Options: --log2n, --parts, --seeds, --data, --g, --g-dask (g of the dask run; default --g), --workers,
--limit, --exact-max.
Writes benchmarks/results/dask_compress.json (dask_compress_<log2n>[_<data>][_gdask<g>].json otherwise).
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
import warnings

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import kernelkit as kk  # noqa: E402
from _results import write_results  # noqa: E402
from bench_compress import FullSampleMMD, population_mmd, sample  # noqa: E402

try:
    from _machine import cpu_info  # noqa: E402
except ImportError:  # pragma: no cover
    cpu_info = dict


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--log2n", type=int, default=20)
    ap.add_argument("--parts", type=int, default=8)
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--data", default="gauss2", choices=["gauss2", "mog8", "gauss10"])
    ap.add_argument("--g", type=int, default=4)
    ap.add_argument("--g-dask", type=int, default=None, help="g of the dask run (default: --g)")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--limit", default="2GB")
    ap.add_argument("--exact-max", type=int, default=2 ** 18)
    args = ap.parse_args(argv)
    import dask
    import dask.array as da
    import distributed
    from distributed import Client, LocalCluster, wait

    warnings.filterwarnings("ignore", message="Sending large graph")  # X sent once to be persisted
    n = 2 ** args.log2n
    X = sample(args.data, n, 0)
    d = X.shape[1]
    sigma2 = 2.0 * d
    k = kk.Gaussian(math.sqrt(sigma2))
    size = math.isqrt(n)
    g_dask = args.g if args.g_dask is None else args.g_dask
    info = cpu_info()
    print(f"kernelkit, dask {dask.__version__}, distributed {distributed.__version__}; {info}", flush=True)
    print(f"n = 2^{args.log2n}, data {args.data}, size {size}, g = {args.g}, {args.parts} chunks, "
          f"{args.workers} workers x 1 thread, dask g = {g_dask}", flush=True)
    exact = n <= args.exact_max
    t0 = time.perf_counter()
    measure = FullSampleMMD(X, k) if exact else (lambda idx: population_mmd(args.data, X[idx], sigma2))
    print(f"MMD against the {'full sample (exact)' if exact else 'population (closed form)'}; "
          f"setup {time.perf_counter() - t0:.1f} s", flush=True)
    rec = {"seed": [], "local_mmd": [], "dask_mmd": [], "local_s": [], "dask_s": []}
    cluster = LocalCluster(n_workers=args.workers, threads_per_worker=1, processes=True, memory_limit=args.limit,
                           dashboard_address=":0")
    with cluster, Client(cluster) as client:
        dX = client.persist(da.from_array(X, chunks=(-(-n // args.parts), d)))
        wait(dX)
        kk.compresspp(dX[: 64 * args.parts].rechunk((64, d)), 16, k, g=0, random_state=0)  # imports on workers
        print("\n| seed | local MMD | dask MMD | dask / local | local s | dask s |\n|---|---|---|---|---|---|")
        for seed in range(args.seeds):
            t = time.perf_counter()
            li = kk.compresspp(X, size, k, g=args.g, random_state=seed)
            ls = time.perf_counter() - t
            t = time.perf_counter()
            di = kk.compresspp(dX, size, k, g=g_dask, random_state=seed)
            ds = time.perf_counter() - t
            lm, dm = measure(li), measure(di)
            for key, v in zip(rec, (seed, lm, dm, ls, ds)):
                rec[key].append(v)
            print(f"| {seed} | {lm:.3e} | {dm:.3e} | {dm / lm:.3f} | {ls:.1f} | {ds:.1f} |", flush=True)
    med = {key: float(np.median(v)) for key, v in rec.items() if key != "seed"}
    ratio = med["dask_mmd"] / med["local_mmd"]
    print(f"| median | {med['local_mmd']:.3e} | {med['dask_mmd']:.3e} | **{ratio:.3f}** | {med['local_s']:.1f} | "
          f"{med['dask_s']:.1f} |")
    print(f"\ntarget: median MMD within 10% of local: {'met' if ratio <= 1.10 else 'NOT met'} ({ratio:.3f})")
    results = {"machine": info, "command": " ".join(["python", "benchmarks/bench_dask_compress.py"] + (argv or
                                                                                                     sys.argv[1:])),
               "n": n, "data": args.data, "size": size, "g": args.g, "g_dask": g_dask, "parts": args.parts,
               "workers": args.workers,
               "mmd_against": "full sample (exact)" if exact else "population (closed form)",
               "runs": rec, "median": med, "mmd_ratio": ratio, "met_10pct": ratio <= 1.10}
    name = "dask_compress" + ("" if args.log2n == 20 else f"_{args.log2n}") + \
        ("" if args.data == "gauss2" else f"_{args.data}") + ("" if g_dask == args.g else f"_gdask{g_dask}")
    write_results(name, results)
    return results


if __name__ == "__main__":
    main()
