"""``kernelkit test``: kernel hypothesis tests on files: ``test mmd A B`` (two-sample), ``test hsic X Y`` (independence).

Prints the statistic, the p-value, the threshold and the decision; ``--plot null.png`` draws the
histogram of the null sample with the observed statistic and the threshold.
"""

from __future__ import annotations

import time

import numpy as np

from ._io import check_kernel_name, read_points, require_matplotlib
from .._validation import param_error

__all__ = ["register", "run", "demo_step"]


def _positive_float(text, option):
    try:
        value = float(text)
    except ValueError:
        value = None
    if value is None or not value > 0 or value == float("inf"):
        raise param_error(option, None, "a float > 0", text, noun="option")
    return value


def _alpha(text):
    try:
        value = float(text)
    except ValueError:
        value = None
    if value is None or not 0 < value < 1:
        raise param_error("--alpha", None, "a float in (0, 1)", text, noun="option")
    return value


def _count(text, option):
    try:
        value = int(text)
    except ValueError:
        value = None
    if value is None or value < 1:
        raise param_error(option, None, "an int >= 1", text, noun="option")
    return value


def _common(p):
    p.add_argument("--kernel", default="gaussian",
                   help="kernel name: gaussian, laplace, matern32, matern52, imq, rq, cauchy (default gaussian)")
    p.add_argument("--bandwidth", default=None,
                   help="bandwidth in data units (default: the median heuristic on the pooled data)")
    p.add_argument("--permutations", default="1000", metavar="B", help="permutations / bootstrap draws (default 1000)")
    p.add_argument("--alpha", default="0.05", help="level of the test, in (0, 1) (default 0.05)")
    p.add_argument("--seed", default="0", help="random seed, an int >= 0 (default 0)")
    p.add_argument("--columns", default=None, metavar="COLS",
                   help="columns to use: comma-separated names or 0-based indices (default: every numeric column)")
    p.add_argument("--plot", default=None, metavar="PNG", help="histogram of the null sample with the statistic")
    p.add_argument("--quiet", action="store_true", help="print nothing but errors")


def register(sub):
    p = sub.add_parser("test", help="kernel hypothesis tests: two-sample MMD, HSIC independence",
                       description="Kernel hypothesis tests on data files. 'test mmd A B': do A and B come from "
                                   "the same distribution? 'test hsic X Y': are the paired rows of X and Y "
                                   "independent?")
    tsub = p.add_subparsers(dest="test_kind", metavar="<test>")
    pm = tsub.add_parser("mmd", help="MMD two-sample test of two files",
                         description="MMD two-sample test (permutations, wild bootstrap or the asymptotic null) "
                                     "between the rows of A and of B (same columns).")
    pm.add_argument("a", metavar="A", help="first sample: CSV, .npy, .npz, .parquet or posteriordb draws")
    pm.add_argument("b", metavar="B", help="second sample (same columns as A)")
    pm.add_argument("--method", default="permutation", help="permutation (default), wild (same row counts), "
                                                            "asymptotic")
    pm.add_argument("--unbiased", action="store_true", help="U-statistic instead of the V-statistic")
    _common(pm)
    pm.set_defaults(run=run)
    ph = tsub.add_parser("hsic", help="HSIC independence test of paired files",
                         description="HSIC independence test between the paired rows of X and Y "
                                     "(same number of rows).")
    ph.add_argument("a", metavar="X", help="first variable: one row per observation")
    ph.add_argument("b", metavar="Y", help="second variable: the same number of rows")
    _common(ph)
    ph.set_defaults(run=run)
    p.set_defaults(run=lambda args: (p.print_help(), 2)[1])


def _read(args):
    A, _, ig_a = read_points(args.a, "A" if args.test_kind == "mmd" else "X", columns=args.columns)
    B, _, ig_b = read_points(args.b, "B" if args.test_kind == "mmd" else "Y", columns=args.columns)
    return A, B, ig_a + ig_b


def run(args):
    """Run ``kernelkit test mmd|hsic``; returns the exit status (0)."""
    if args.plot:
        require_matplotlib()
    say = (lambda *a: None) if args.quiet else print
    B = _count(args.permutations, "--permutations")
    alpha = _alpha(args.alpha)
    try:
        seed = int(args.seed)
    except ValueError:
        seed = -1
    if seed < 0:
        raise param_error("--seed", None, "an int >= 0", args.seed, noun="option")
    bw = None if args.bandwidth is None else _positive_float(args.bandwidth, "--bandwidth")
    kernel = check_kernel_name(args.kernel)
    A, Bdata, ignored = _read(args)
    if ignored:
        say(f"kernelkit test {args.test_kind}: ignored non-numeric columns: {', '.join(ignored)}")
    t0 = time.perf_counter()
    if args.test_kind == "mmd":
        from ..stats import mmd_test
        method = args.method.lower()
        if method not in ("permutation", "wild", "asymptotic"):
            raise param_error("--method", None, "one of permutation, wild, asymptotic", args.method, noun="option")
        if A.shape[1] != Bdata.shape[1]:
            raise param_error("B", None, f"a table with {A.shape[1]} columns like A", Bdata, noun="argument",
                              shown=f"{Bdata.shape[1]} columns")
        res = mmd_test(A, Bdata, kernel, bandwidth=bw, method=method, n_permutations=B, alpha=alpha,
                       unbiased=args.unbiased, random_state=seed)
        what = f"A: {A.shape[0]:,} rows, B: {Bdata.shape[0]:,} rows, {A.shape[1]} columns"
    else:
        from ..stats import hsic_test   # (the independence tests' module)
        if A.shape[0] != Bdata.shape[0]:
            raise param_error("Y", None, f"a table with {A.shape[0]} rows like X (paired observations)", Bdata,
                              noun="argument", shown=f"{Bdata.shape[0]} rows")
        res = hsic_test(A, Bdata, kernel, kernel, bandwidth_x=bw, bandwidth_y=bw, n_permutations=B, alpha=alpha,
                        random_state=seed)
        what = f"{A.shape[0]:,} paired rows, X: {A.shape[1]} columns, Y: {Bdata.shape[1]} columns"
    seconds = time.perf_counter() - t0
    say(f"kernelkit test {args.test_kind}: {res.test}")
    say(f"   {what}")
    for key in ("kernel", "kernel_x", "kernel_y"):
        if res.details.get(key) is not None:
            say(f"   {key.replace('_', ' ')} {res.details[key]!r}")
    say(f"   statistic {res.statistic:.6g}, p-value {res.pvalue:.4g}, threshold {res.threshold:.6g} "
        f"at alpha {alpha:g} ({seconds:.2f} s)")
    say(f"   decision: {'reject H0' if res.reject else 'do not reject H0'}")
    if args.plot:
        _plot(args.plot, res)
        say(f"   wrote {args.plot}")
    return 0


def _plot(path, res):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(6, 4))
    if res.null is not None:
        ax.hist(np.asarray(res.null, dtype=np.float64), bins=40, color="0.7", label="null sample")
    ax.axvline(res.statistic, color="tab:red", label=f"statistic {res.statistic:.3g} (p = {res.pvalue:.3g})")
    if np.isfinite(res.threshold):
        ax.axvline(res.threshold, color="k", ls="--", label=f"threshold at alpha {res.alpha:g}")
    ax.set_xlabel("statistic")
    ax.set_ylabel("count")
    ax.set_title(res.test, fontsize=9)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def demo_step(args):
    """An MMD permutation test on two synthetic samples (a shifted Gaussian), with its timing."""
    from ..stats import mmd_test
    rng = np.random.default_rng(args.seed)
    n, d, B = 2_000, 5, 200
    X = rng.standard_normal((n, d))
    Y = rng.standard_normal((n, d))
    Y[:, 0] += 0.15
    t0 = time.perf_counter()
    res = mmd_test(X, Y, n_permutations=B, random_state=args.seed)
    t1 = time.perf_counter()
    print(f"   MMD permutation test, n = m = {n:,}, d = {d}, Y shifted by 0.15 in one coordinate, {B} permutations "
          f"(weight columns of one kernel sum), {res.details['kernel']!r} (median heuristic)")
    print(f"   statistic {res.statistic:.4g}, p-value {res.pvalue:.4g}: "
          f"{'reject H0' if res.reject else 'do not reject H0'} at alpha 0.05 ({t1 - t0:.2f} s)")
