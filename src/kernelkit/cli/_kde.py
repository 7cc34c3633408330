"""``kernelkit kde``: kernel density estimate of a point set, log density per query row.

The bandwidth is in data units (no standardisation): a float, or a rule
("scott", "silverman", "cv" = leave-one-out likelihood, "lscv" = least-squares
cross-validation). ``--diagnose`` adds what the estimate is made of: the
effective number of points per query and the regime (CLT / heavy-tailed /
extreme-value), optionally as a plot of the n_eff distribution.
"""

from __future__ import annotations

import time

import numpy as np

from ._io import check_kernel_name, read_points, require_matplotlib, write_array
from .._validation import param_error

_RULES = ("scott", "silverman", "cv", "lscv", "isj")


def _bandwidth(text):
    """The --bandwidth value: a rule name, or a float > 0."""
    if text in _RULES:
        return text
    try:
        value = float(text)
    except ValueError:
        value = None
    if value is None or not value > 0 or value == float("inf"):
        raise param_error("--bandwidth", None, f"a float > 0 or one of {', '.join(_RULES)}", text, noun="option")
    return value


def register(sub):
    p = sub.add_parser("kde", help="kernel density estimation: log density of query points",
                       description="Fit a normalised kernel density estimate to DATA and write the log "
                                   "density at each row of --query (default: at DATA itself). Exact in the "
                                   "log domain in any dimension.")
    p.add_argument("data", metavar="DATA", help="points: CSV, .npy, .npz, .parquet or posteriordb draws")
    p.add_argument("--query", default=None, help="query points (same columns as DATA); default DATA")
    p.add_argument("--columns", default=None, metavar="COLS",
                   help="columns of DATA and --query to use: comma-separated names or 0-based indices "
                        "(default: every numeric column; text columns such as labels are ignored)")
    p.add_argument("--bandwidth", default="scott",
                   help="bandwidth in data units, or scott, silverman, cv, lscv, isj (1-D) (default scott)")
    p.add_argument("--kernel", default="gaussian",
                   help="kernel name: gaussian, laplace, matern32, matern52, imq, rq, cauchy, epanechnikov, "
                        "biweight, triweight, tophat, triangular, cosine, or scikit-learn's linear (= triangular) "
                        "and exponential (= laplace) (default gaussian)")
    p.add_argument("--out", default=None, help="output file (CSV with header log_density, .npy, .npz, .parquet)")
    p.add_argument("--plot", default=None, metavar="PNG", help="plot of the density (1-D curve, 2-D contours, "
                                                               "else histogram of log densities)")
    p.add_argument("--diagnose", nargs="?", const=True, default=None, metavar="PNG",
                   help="also print the effective number of points and the regime of the queries (CLT, "
                        "heavy-tailed, extreme-value); with PNG, plot the distribution of n_eff there")
    p.add_argument("--quiet", action="store_true", help="print nothing but errors, no progress bars")
    p.set_defaults(run=run)


def run(args):
    from ..density import KernelDensity
    diagnose = getattr(args, "diagnose", None)
    if args.plot or isinstance(diagnose, str):
        require_matplotlib()
    say = (lambda *a: None) if args.quiet else print
    X, cols, ignored = read_points(args.data, columns=args.columns)
    if ignored:
        say(f"kernelkit kde: DATA: ignored non-numeric columns: {', '.join(ignored)}")
    if args.query is not None:
        Y, _, q_ignored = read_points(args.query, "--query", columns=args.columns)
        if q_ignored:
            say(f"kernelkit kde: --query: ignored non-numeric columns: {', '.join(q_ignored)}")
        if Y.shape[1] != X.shape[1]:
            raise param_error("--query", None, f"a table with {X.shape[1]} columns like DATA", Y, noun="option",
                              shown=f"{Y.shape[1]} columns")
    else:
        Y = X
    bw = _bandwidth(args.bandwidth)
    kernel = check_kernel_name(args.kernel, extra=("linear", "exponential"))   # (scikit-learn's names)
    kde = KernelDensity(kernel=kernel, bandwidth=bw, progress=not args.quiet)
    t0 = time.perf_counter()
    kde.fit(X)
    t_fit = time.perf_counter() - t0
    client = getattr(args, "dask_client", None)
    if client is not None:   # --scheduler / --local-cluster: the queries are scored by task graphs
        from ._cluster import rows_to_dask
        logp = np.asarray(kde.score_samples(rows_to_dask(Y, client)).compute())
    else:
        logp = kde.score_samples(Y)
    t_all = time.perf_counter() - t0
    n, d = X.shape
    say(f"kernelkit kde: {n:,} points x {d} columns from {args.data}")
    if client is not None:
        say(f"   queries scored on the dask cluster at {client.scheduler.address} ({len(client.nthreads())} workers)")
    say(f"   kernel {kde.kernel_!r} at bandwidth {kde.bandwidth_:.4g} (data units, {args.bandwidth})")
    say(f"   {Y.shape[0]:,} queries: mean log density {float(np.mean(logp)):.4f}; "
        f"fit {t_fit:.2f} s, total {t_all:.2f} s")
    if args.out:
        write_array(args.out, np.asarray(logp, dtype=np.float64).reshape(-1, 1), ["log_density"])
        say(f"   wrote {args.out}")
    if args.plot:
        _plot(args.plot, kde, X, logp, cols)
        say(f"   wrote {args.plot}")
    if diagnose is not None:
        import warnings
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            report = kde.diagnose(Y)
        say("   diagnostics:\n      " + report.summary().replace("\n", "\n      "))
        if args.query is None:
            say("   (the queries are the data points: each one's own term is in its sum; pass held-out points "
                "with --query to diagnose the estimate where it is used)")
        for w in caught:
            say(f"   warning: {w.message}")
        if isinstance(diagnose, str):
            _plot_n_eff(diagnose, report)
            say(f"   wrote {diagnose}")
    return 0


def _plot_n_eff(path, report):
    """Histogram of log10 n_eff, with the rule's CLT threshold marked."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(6, 4))
    v = np.log10(report.n_eff[np.isfinite(report.n_eff)])
    ax.hist(v, bins=np.linspace(0.0, max(np.log10(max(report.n, 2)), 2.5), 51), color="tab:blue")
    ax.axvline(np.log10(report.rule["clt_min_neff"]), color="k", ls="--", lw=1, label="CLT from here (rule)")
    ax.set_xlabel("log10 effective number of points, (sum k)^2 / sum k^2")
    ax.set_ylabel("queries")
    fr = report.fractions()
    ax.set_title(f"h = {report.bandwidth:.3g}: extreme-value {100 * fr['extreme-value']:.0f}%, "
                 f"CLT {100 * fr['CLT']:.0f}%" if report.bandwidth is not None else "n_eff")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def _plot(path, kde, X, logp, cols):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(6, 5))
    d = X.shape[1]
    if d == 1:
        lo, hi = X.min(), X.max()
        pad = 3 * kde.bandwidth_
        grid = np.linspace(lo - pad, hi + pad, 400)
        ax.plot(grid, np.exp(kde.score_samples(grid[:, None])), color="tab:blue")
        ax.plot(X[:, 0], np.zeros(X.shape[0]), "|", color="k", alpha=0.3)
        ax.set_xlabel(cols[0] if cols else "column 0")
        ax.set_ylabel("density")
    elif d == 2:
        pad = 3 * kde.bandwidth_
        gx = np.linspace(X[:, 0].min() - pad, X[:, 0].max() + pad, 120)
        gy = np.linspace(X[:, 1].min() - pad, X[:, 1].max() + pad, 120)
        GX, GY = np.meshgrid(gx, gy)
        P = np.exp(kde.score_samples(np.c_[GX.ravel(), GY.ravel()])).reshape(GX.shape)
        ax.scatter(X[:, 0], X[:, 1], s=2, c="0.6", rasterized=True)
        ax.contour(GX, GY, P, levels=10, cmap="viridis")
        ax.set_xlabel(cols[0] if cols else "column 0")
        ax.set_ylabel(cols[1] if cols else "column 1")
    else:
        ax.hist(np.asarray(logp, dtype=np.float64), bins=50, color="tab:blue")
        ax.set_xlabel("log density")
        ax.set_ylabel("count")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def demo_step(args):
    """Fit a KDE on a 2-D Gaussian mixture with the bandwidth chosen by leave-one-out likelihood."""
    from scipy.stats import gaussian_kde

    from ..density import KernelDensity
    rng = np.random.default_rng(args.seed)
    n = 2_000 if getattr(args, "quick", False) else 10_000
    centres = np.array([[-2.0, 0.0], [2.0, 0.0], [0.0, 3.0]])
    def draw(m):
        return centres[rng.integers(3, size=m)] + 0.4 * rng.standard_normal((m, 2))
    X, held = draw(n), draw(2_000)
    t0 = time.perf_counter()
    cv = KernelDensity(bandwidth="cv", cv_grid=16, progress=False).fit(X)
    t_cv = time.perf_counter() - t0
    scott = KernelDensity(bandwidth="scott").fit(X)
    print(f"   3-component Gaussian mixture, n={n:,}, d=2; cv bandwidth {cv.bandwidth_:.4f} "
          f"({t_cv:.2f} s, {len(cv.cv_bandwidths_)} grid points), scott {scott.bandwidth_:.4f}")
    print(f"   mean held-out log-likelihood: cv {cv.score(held) / len(held):.4f}, "
          f"scott {scott.score(held) / len(held):.4f}")
    ref = gaussian_kde(X.T, bw_method=scott.bandwidth_ / np.sqrt(np.mean(np.var(X, axis=0, ddof=1))))
    t0 = time.perf_counter()
    ours = scott.score_samples(held)
    t1 = time.perf_counter()
    theirs = ref.logpdf(held.T)
    t2 = time.perf_counter()
    print(f"   scoring {len(held):,} points: kernelkit {t1 - t0:.3f} s, scipy gaussian_kde {t2 - t1:.3f} s "
          f"({(t2 - t1) / max(t1 - t0, 1e-9):.1f}x); max |difference| {np.max(np.abs(ours - theirs)):.2e} "
          f"(scipy uses the full data covariance, kernelkit an isotropic one)")
