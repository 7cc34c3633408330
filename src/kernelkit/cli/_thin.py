"""``kernelkit thin``: compress a point set (MCMC draws, data) to a small representative coreset.

The columns are standardised (mean 0, standard deviation 1) before thinning
unless ``--no-standardize``; the bandwidth is in those units, by default the
median heuristic. The coreset is written in the original units.
"""

from __future__ import annotations

import time

import numpy as np

from ._io import check_kernel_name, read_points, require_matplotlib, resolve_columns, write_array
from .._validation import Integral, Real, check_param, param_error
from ..exceptions import InvalidValueError

#: columns the --plot corner plot shows without --plot-dims
PLOT_DIMS = 4


def register(sub):
    from ..compress import METHODS
    p = sub.add_parser("thin", help="kernel thinning / Compress++: a small coreset that keeps the distribution",
                       description="Select --size rows of DATA whose empirical distribution is close to all of "
                                   "DATA in maximum mean discrepancy (MMD), and report the MMD next to "
                                   "standard thinning (every k-th row).")
    p.add_argument("data", metavar="DATA", help="points: CSV, .npy, .npz, .parquet or posteriordb draws "
                                                "(.json / .json.zip, chains stacked)")
    p.add_argument("--columns", default=None, metavar="COLS",
                   help="columns of DATA to thin on: comma-separated names or 0-based indices (default: every "
                        "numeric column; text columns such as labels are ignored)")
    p.add_argument("--size", type=int, default=None, help="coreset size (default: sqrt(n), rounded down)")
    p.add_argument("--method", default="auto", choices=METHODS,
                   help="algorithm (default auto: kt = kernel thinning with KT-SWAP while n^2 (d + 10) <= 1.5e10, "
                        "about a second, else compress++; the report says which ran and why)")
    p.add_argument("--kernel", default="gaussian", help="kernel name: gaussian, laplace, matern32, matern52, "
                                                        "imq, ... (default gaussian)")
    p.add_argument("--bandwidth", type=float, default=None,
                   help="kernel bandwidth in standardised units (default: median heuristic)")
    p.add_argument("--no-standardize", action="store_true", help="use the data as is (bandwidth in data units)")
    p.add_argument("--g", type=int, default=4, help="Compress++ oversampling parameter (default 4)")
    p.add_argument("--delta", type=float, default=0.5, help="KT failure probability (default 0.5)")
    p.add_argument("--seed", type=int, default=None, help="random seed (default: fresh randomness)")
    p.add_argument("--no-mmd", action="store_true", help="skip the MMD report (it costs n^2 kernel evaluations)")
    p.add_argument("--out", required=True, help="output coreset rows (CSV, .npy, .npz, .parquet)")
    p.add_argument("--indices-out", default=None, help="also write the selected row numbers (0-based)")
    p.add_argument("--plot", default=None, metavar="PNG",
                   help="plot of the data (grey) and the coreset (red): histogram for one column, scatter for "
                        f"two, else a corner plot of the first {PLOT_DIMS} columns")
    p.add_argument("--plot-dims", default=None, metavar="COLS",
                   help="columns to plot: comma-separated names or 0-based indices of the columns used "
                        "(after --columns)")
    p.add_argument("--quiet", action="store_true", help="print nothing but errors")
    p.set_defaults(run=run)


def _standardize(X):
    mean = X.mean(axis=0)
    sd = X.std(axis=0)
    sd[sd == 0] = 1.0
    return (X - mean) / sd


def run(args):
    from ..compress import kernel_thin, median_bandwidth, mmd, standard_thin
    from ..kernels import make_kernel
    if args.plot:
        require_matplotlib()
    elif args.plot_dims is not None:
        raise param_error("--plot-dims", None, "given with --plot PNG", args.plot_dims, noun="option",
                          shown=f"--plot-dims {args.plot_dims!r} without --plot")
    kernel_name = check_kernel_name(args.kernel)
    if args.bandwidth is not None:
        check_param(args.bandwidth, "--bandwidth", None, Real(low=0, low_open=True), noun="option")
    say = (lambda *a: None) if args.quiet else print
    X, cols, ignored = read_points(args.data, columns=args.columns)
    n, d = X.shape
    dims = None
    if args.plot:
        what = f"DATA ({args.data!r}{', after --columns' if args.columns else ''})"
        dims = (list(range(min(d, PLOT_DIMS))) if args.plot_dims is None
                else resolve_columns(args.plot_dims, cols, d, what, option="--plot-dims"))
    size = int(np.sqrt(n)) if args.size is None else args.size
    check_param(size, "--size", None, Integral(low=1, high=n), noun="option", hint=f"DATA has {n} rows.")
    if not np.isfinite(X).all():
        raise InvalidValueError(f"DATA: {args.data!r} contains NaN or infinite values")
    Z = X.astype(np.float64) if args.no_standardize else _standardize(X.astype(np.float64))
    units = "data units" if args.no_standardize else "standardised units"
    if args.bandwidth is None:
        bw = median_bandwidth(Z)
        how = f"median heuristic on the {'raw' if args.no_standardize else 'standardised'} data"
    else:
        bw = args.bandwidth
        how = "--bandwidth"
    kernel = make_kernel(kernel_name, bandwidth=bw)
    say(f"kernelkit thin: {n:,} points x {d} columns from {args.data}")
    if ignored:
        say(f"   ignored non-numeric columns: {', '.join(ignored)}")
    say(f"   kernel {kernel!r} (bandwidth {bw:.4g} in {units}, {how})")
    t0 = time.perf_counter()
    client = getattr(args, "dask_client", None)
    if client is not None:   # --scheduler / --local-cluster: Compress++ over row chunks on the cluster
        from ._cluster import rows_to_dask
        say(f"   on the dask cluster at {client.scheduler.address} ({len(client.nthreads())} workers)")
    Zin = Z if client is None else rows_to_dask(Z, client)
    result = kernel_thin(Zin, size, kernel, method=args.method, random_state=args.seed, delta=args.delta, g=args.g,
                         return_result=True)
    idx, method = result.indices, result.method
    seconds = time.perf_counter() - t0
    say(f"   {method}: {size:,} points in {seconds:.2f} s"
        + (f" ({result.rule})" if result.rule != "requested" else ""))
    write_array(args.out, X[idx], cols)
    if args.indices_out:
        write_array(args.indices_out, idx.reshape(-1, 1), ["index"])
    if not args.no_mmd:
        m_kt = mmd(Z, Z[idx], kernel)
        m_st = mmd(Z, Z[standard_thin(Z, size)], kernel)
        ratio = m_st / m_kt if m_kt > 0 else float("inf")
        say(f"   MMD to all {n:,} points: {method} {m_kt:.4g}, standard thinning {m_st:.4g} "
            f"({ratio:.1f}x lower with {method})")
    say(f"   wrote {args.out}")
    if args.plot:
        _plot(args.plot, X, idx, cols, method, dims)
        shown = ", ".join(cols[j] if cols else f"column {j}" for j in dims)
        say(f"   wrote {args.plot} ({shown}{'' if len(dims) == d else '; --plot-dims chooses'})")
    return 0


def _plot(path, X, idx, cols, method, dims):
    """Data (grey) and coreset (red) in the columns ``dims``: histogram, scatter, or corner plot."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    labels = [cols[j] if cols else f"column {j}" for j in dims]
    data_label, core_label = f"data ({X.shape[0]:,})", f"coreset ({idx.size:,}, {method})"
    k = len(dims)
    if k <= 2:
        fig, ax = plt.subplots(figsize=(6, 5))
        if k == 2:
            _scatter(ax, X[:, dims[0]], X[:, dims[1]], idx, data_label, core_label)
            ax.set_ylabel(labels[1])
        else:
            _hist(ax, X[:, dims[0]], idx, data_label, core_label)
        ax.set_xlabel(labels[0])
        ax.legend(loc="best")
    else:
        size = min(2.2 * k, 16)
        fig, axes = plt.subplots(k, k, figsize=(size, size), squeeze=False)
        for r in range(k):
            for c in range(k):
                ax = axes[r, c]
                if c > r:
                    ax.set_axis_off()
                    continue
                if r == c:
                    _hist(ax, X[:, dims[c]], idx, data_label, core_label)
                    ax.set_yticks([])
                else:
                    _scatter(ax, X[:, dims[c]], X[:, dims[r]], idx, data_label, core_label, small=True)
                if r == k - 1:
                    ax.set_xlabel(labels[c])
                else:
                    ax.set_xticklabels([])
                if c == 0 and r > 0:
                    ax.set_ylabel(labels[r])
                elif c > 0:
                    ax.set_yticklabels([])
        handles, names = axes[1, 0].get_legend_handles_labels()
        fig.legend(handles, names, loc="upper right")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def _scatter(ax, x, y, idx, data_label, core_label, small=False):
    ax.scatter(x, y, s=1 if small else 2, c="0.75", label=data_label, rasterized=True)
    ax.scatter(x[idx], y[idx], s=4 if small else 12, c="tab:red", label=core_label)


def _hist(ax, x, idx, data_label, core_label):
    ax.hist(x, bins=60, density=True, color="0.75", label=data_label)
    ax.hist(x[idx], bins=30, density=True, histtype="step", color="tab:red", label=core_label)


def demo_step(args):
    """Thin a synthetic 2-D mixture of 8 Gaussians with KT and with standard thinning."""
    from ..compress import kernel_thin, mmd, standard_thin
    from ..kernels import Gaussian
    rng = np.random.default_rng(args.seed)
    n = 2 ** 12 if getattr(args, "quick", False) else 2 ** 14
    angles = 2 * np.pi * np.arange(8) / 8
    centres = 3.0 * np.c_[np.cos(angles), np.sin(angles)]
    X = centres[rng.integers(8, size=n)] + rng.standard_normal((n, 2)) * 0.5
    size = int(np.sqrt(n))
    k = Gaussian(2.0)
    t0 = time.perf_counter()
    idx = kernel_thin(X, size, k, random_state=args.seed)
    t_kt = time.perf_counter() - t0
    m_kt = mmd(X, X[idx], k)
    m_st = mmd(X, X[standard_thin(X, size)], k)
    print(f"   8-component Gaussian mixture, n={n:,}, d=2 -> {size} points, Gaussian kernel sigma^2 = 2d = 4")
    print(f"   kernel thinning {t_kt:.2f} s: MMD {m_kt:.2e}; standard thinning MMD {m_st:.2e} "
          f"({m_st / m_kt:.1f}x higher)")
