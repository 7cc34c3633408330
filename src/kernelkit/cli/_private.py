"""``kernelkit private-sum``: build and query differentially private similarity sketches.

``build`` reads the private data, releases a sanitized sketch (.npz, only
noisy sums and public parameters, loadable without pickle); ``query``
answers any number of public queries from the sketch (no privacy cost).
"""

from __future__ import annotations

import time

import numpy as np

from ._io import check_kernel_name, read_points, write_array
from .._validation import param_error
from ..exceptions import InvalidValueError

DISTANCES = ("l1", "l2")


def register(sub):
    p = sub.add_parser("private-sum", help="differentially private kernel / distance sums (build, query)",
                       description="Release a differentially private sketch of a dataset that answers "
                                   "sum_x k(x, y) (or sum_x ||x - y||) for any query y.")
    verbs = p.add_subparsers(dest="private_verb", metavar="<build|query>")
    b = verbs.add_parser("build", help="release a private sketch of DATA",
                         description="Release a private sketch. The input domain (--radius, --center) and the "
                                     "bandwidth are public choices: they are never estimated from DATA.")
    b.add_argument("data", metavar="DATA", help="private points (CSV, .npy, .npz, .parquet)")
    b.add_argument("--columns", default=None, metavar="COLS",
                   help="columns of DATA to use: comma-separated names or 0-based indices (default: every "
                        "numeric column; text columns such as labels are ignored)")
    b.add_argument("--epsilon", type=float, required=True, help="privacy loss bound epsilon > 0")
    b.add_argument("--delta", type=float, default=0.0,
                   help="delta in [0, 1): 0 = pure epsilon-DP (discrete Laplace), > 0 = rounded Gaussian")
    b.add_argument("--kernel", default="gaussian",
                   help="kernel name (gaussian, laplace, matern32, imq, ...) or 'l1' / 'l2' for distance sums")
    b.add_argument("--bandwidth", type=float, default=None, help="kernel bandwidth, units of the data (required "
                                                                 "for kernels)")
    b.add_argument("--radius", type=float, default=None, help="radius of the public input domain (required); "
                                                              "records are clipped to it")
    b.add_argument("--center", default=None, help="centre of the domain, comma-separated (default: origin)")
    b.add_argument("--n-features", type=_n_features, default="auto",
                   help="sketch size for kernels: an int, or auto (default: sized from a noisy count with 5%% of "
                        "epsilon, see PrivateKernelSum)")
    b.add_argument("--method", default="auto", help="auto, rff, orf, jl or lsq-rff (kernels)")
    b.add_argument("--levels", type=int, default=10, help="tree levels for distance sums (default 10)")
    b.add_argument("--neighbouring", default="add-remove", help="add-remove (default) or replace-one")
    b.add_argument("--seed", type=int, default=None, help="seed of the public randomness only (feature maps); "
                                                           "the noise is never seeded")
    b.add_argument("--out", required=True, help="output sketch (.npz)")
    b.set_defaults(run=run_build)
    q = verbs.add_parser("query", help="answer queries from a sketch")
    q.add_argument("sketch", metavar="SKETCH", help="sketch written by 'private-sum build'")
    q.add_argument("queries", metavar="QUERIES", help="query points (CSV, .npy, .npz, .parquet)")
    q.add_argument("--columns", default=None, metavar="COLS",
                   help="columns of QUERIES to use: comma-separated names or 0-based indices (default: every "
                        "numeric column)")
    q.add_argument("--out", default=None, help="write value, noise std (and, for kernels, estimated total error "
                                               "std) per query (CSV, .npy, .npz)")
    q.set_defaults(run=run_query)
    p.set_defaults(run=lambda args: _usage(p))


def _n_features(text):
    if text == "auto":
        return text
    try:
        return int(text)
    except ValueError:
        raise param_error("--n-features", None, "an int >= 1 or auto", text, noun="option") from None


def _usage(parser):
    parser.print_help()
    return 2


def _center(text, d):
    if text is None:
        return None
    try:
        c = np.array([float(v) for v in text.split(",")])
    except ValueError:
        raise param_error("--center", None, "comma-separated numbers (or one number for every coordinate)", text,
                          noun="option") from None
    if c.size == 1:
        c = np.full(d, c[0])
    return c


def run_build(args):
    from ..privacy import PrivateDistanceSum, PrivateKernelSum
    X, _, ignored = read_points(args.data, "DATA", columns=args.columns)
    if ignored:
        print(f"private-sum build: ignored non-numeric columns of DATA: {', '.join(ignored)}")
    center = _center(args.center, X.shape[1])
    kernel = check_kernel_name(args.kernel, extra=DISTANCES)
    client = getattr(args, "dask_client", None)
    if client is not None:   # --scheduler / --local-cluster: the exact sums by tasks, the noise drawn here
        from ._cluster import rows_to_dask
        X = rows_to_dask(X, client)
        print(f"private-sum build: exact sums on the dask cluster at {client.scheduler.address} "
              f"({len(client.nthreads())} workers)")
    t0 = time.perf_counter()
    if kernel in DISTANCES:
        est = PrivateDistanceSum(kernel, epsilon=args.epsilon, delta=args.delta, radius=args.radius,
                                 center=center, levels=args.levels, neighbouring=args.neighbouring,
                                 random_state=args.seed).fit(X)
        what = f"{kernel} distance sums, {est.levels_} tree levels"
    else:
        if args.bandwidth is None:
            raise param_error("--bandwidth", None, f"a float > 0 with --kernel {kernel}", None, noun="option",
                              shown="none", hint="It is a public choice, never estimated from the private data.")
        est = PrivateKernelSum(kernel, bandwidth=args.bandwidth, epsilon=args.epsilon, delta=args.delta,
                               radius=args.radius, center=center, n_features=args.n_features, method=args.method,
                               neighbouring=args.neighbouring, random_state=args.seed).fit(X)
        what = f"{est.kernel_!r}, {est.feature_map_.n_cells} {est.feature_map_.kind} cells"
    est.save(args.out)
    p = est.privacy_
    print(f"private-sum build: {X.shape[0]:,} records x {X.shape[1]} features -> {args.out} "
          f"({time.perf_counter() - t0:.2f} s)")
    print(f"  {what}; {p['mechanism']}, epsilon={p['epsilon']:g}, delta={p['delta']:g}, "
          f"neighbouring={p['neighbouring']}")
    print(f"  domain: {p['domain']}")
    return 0


def _load(path):
    from ..privacy import PrivateDistanceSum, PrivateKernelSum
    from ..privacy._common import load_state
    meta, _ = load_state(path)
    cls = {"PrivateKernelSum": PrivateKernelSum, "PrivateDistanceSum": PrivateDistanceSum}.get(meta["kind"])
    if cls is None:
        raise InvalidValueError(f"SKETCH: {path!r} holds a {meta['kind']!r}, not a private-sum sketch.")
    return cls.load(path)


def run_query(args):
    est = _load(args.sketch)
    Y, _, ignored = read_points(args.queries, "QUERIES", columns=args.columns)
    if ignored:
        print(f"private-sum query: ignored non-numeric columns of QUERIES: {', '.join(ignored)}")
    t0 = time.perf_counter()
    values, std = est.query(Y, return_std=True)
    columns, table = ["value", "noise_std"], [values, std]
    if hasattr(est, "feature_map_"):  # kernel sketches also estimate the total error (noise + features)
        table.append(est.query(Y, return_std="total")[1])
        columns.append("total_std")
    dt = time.perf_counter() - t0
    print(f"private-sum query: {Y.shape[0]:,} queries in {dt:.3f} s (no privacy cost: post-processing)")
    print(f"  mean answer {values.mean():.6g}, mean error bar (noise std) {std.mean():.4g}"
          + (f", estimated total error std {table[2].mean():.4g}" if len(table) == 3 else ""))
    if args.out:
        write_array(args.out, np.column_stack(table), columns=columns)
        print(f"  wrote {args.out}")
    else:
        for v, s in list(zip(values, std))[:10]:
            print(f"  {v:.6g} +- {s:.3g}")
        if Y.shape[0] > 10:
            print(f"  ... ({Y.shape[0] - 10} more; use --out FILE)")
    return 0


def demo_step(args):
    """Build at epsilon = 1 on synthetic data, query held-out points, compare with the exact kernel sum."""
    import kernelkit as kk
    from ..privacy import PrivateKernelSum
    rng = np.random.default_rng(args.seed)
    n = 20_000 if args.quick else 100_000
    d = 8
    means = rng.standard_normal((5, d)) * 2

    def draw(m):
        return means[rng.integers(0, 5, m)] + rng.standard_normal((m, d))

    X, Y, public = draw(n), draw(1000), draw(400)
    from scipy.spatial.distance import pdist
    bandwidth = float(np.median(pdist(public)))  # from a public sample, never from the private X
    kernel = kk.Gaussian(bandwidth)
    radius = float(np.quantile(np.linalg.norm(public, axis=1), 0.99) * 1.2)
    exact = kk.kernel_sum(kernel, X, Y)
    print(f"   {n:,} private points in d={d}, Gaussian bandwidth {bandwidth:.3g} (median distance of a public "
          f"sample), domain radius {radius:.3g}")
    print("   error bars: noise = std of the DP noise alone; total = estimated std of noise plus random-feature "
          "error, from the released sketch only")
    for delta in (0.0, 1e-6):
        t0 = time.perf_counter()
        est = PrivateKernelSum(kernel, epsilon=1.0, delta=delta, radius=radius,
                               random_state=args.seed).fit(X)
        t1 = time.perf_counter()
        values, noise = est.query(Y, return_std=True)
        t2 = time.perf_counter()
        _, total = est.query(Y, return_std="total")
        err = np.abs(values - exact)
        cover = float(np.mean(err <= 2 * total))
        print(f"   epsilon=1, delta={delta:g} ({est.privacy_['mechanism']}, {est.feature_map_.n_cells} cells): "
              f"build {t1 - t0:.2f} s, 1,000 queries {t2 - t1:.3f} s")
        print(f"      mean relative error {np.mean(err / exact):.4f}; mean error bar / exact: noise "
              f"{np.mean(noise / exact):.4f}, total {np.mean(total / exact):.4f}; "
              f"|error| <= 2 x total for {100 * cover:.0f}% of queries")
