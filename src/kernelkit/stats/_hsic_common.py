"""Shared pieces of the independence tests (HSIC, dHSIC, KCI): inputs, kernels, Gram-matrix sums in blocks.

Every reduction over an n x n Gram matrix here is either an engine kernel sum
(row sums, and the Gaussian product trick below) or a loop over row blocks of
``kernel_block`` sized by the memory budget, so no n x n matrix is formed
unless it fits the budget.
"""

from __future__ import annotations

import math

import numpy as np

from .._options import get_options
from .._validation import InstanceOf, OneOf, Real, check_param, check_points, param_error
from ..engine import kernel_block, kernel_sum
from ..kernels import KERNEL_NAMES, Gaussian, Kernel, make_kernel
from ._result import check_alpha, mc_threshold  # noqa: F401  (used by the HSIC modules)

__all__ = ["check_samples", "check_alpha", "resolve_kernel", "row_blocks", "gram_sums", "mc_threshold",
           "gamma_test"]

_KERNEL = InstanceOf(Kernel, "a Kernel object") | OneOf(*KERNEL_NAMES)
_DOT = ("linear", "polynomial")


def check_samples(arrays, names, owner, min_n=2):
    """Validated float64 copies-if-needed of paired samples: 2-D (a 1-D array is one feature), same n, finite.

    Parameters
    ----------
    arrays : sequence of array-like
        Samples with one row per observation (the rows of all samples are paired).
    names : sequence of str
        Their parameter names, for the messages.
    owner : str
        The public function named in errors.
    min_n : int
        Smallest accepted number of rows.
    """
    out = []
    for A, name in zip(arrays, names):
        A = check_points(A, name, owner, dtype=np.float64, allow_1d=True)
        if out and A.shape[0] != out[0].shape[0]:
            raise param_error(name, owner, f"an array with as many rows (paired observations) as {names[0]!r} "
                              f"({out[0].shape[0]})", A, shown=f"shape {A.shape}")
        out.append(A)
    n = out[0].shape[0]
    if n < min_n:
        raise param_error(names[0], owner, f"an array with at least {min_n} rows (observations)", arrays[0],
                          shown=f"{n} row(s)")
    return out


def resolve_kernel(kernel, bandwidth, X, owner, kname, bname):
    """The Kernel for ``(kernel, bandwidth)`` by the library's rule, naming the parameters ``kname`` / ``bname``.

    A Kernel object carries its bandwidth (``bandwidth`` must be None); a
    radial name is built with ``bandwidth``, by default the median heuristic
    on X (:func:`kernelkit.median_bandwidth`: the median distance between
    distinct points, on at most 2,000 rows); 'linear' and 'polynomial' take
    no bandwidth.
    """
    from ..compress._resolve import median_bandwidth
    name = check_param(kernel.lower() if isinstance(kernel, str) else kernel, kname, owner, _KERNEL)
    if isinstance(name, Kernel):
        if bandwidth is not None:
            raise param_error(bname, owner, f"None when {kname!r} is a Kernel object (it carries its bandwidth)",
                              bandwidth, hint="Set the bandwidth on the kernel (Gaussian(bandwidth=0.5)) or pass "
                                              "the kernel by name.")
        return name
    if name in _DOT:
        if bandwidth is not None:
            raise param_error(bname, owner, f"None for the {name!r} kernel (it has no bandwidth)", bandwidth)
        return make_kernel(name)
    bw = check_param(bandwidth, bname, owner, Real(low=0, low_open=True) | None)
    return make_kernel(name, bandwidth=median_bandwidth(X) if bw is None else bw)


def is_gaussian(kernel):
    """True for a plain :class:`kernelkit.Gaussian` (not a subclass, which may change the formula)."""
    return type(kernel) is Gaussian


def row_blocks(kernels, Xs, budget, rows_held=None):
    """Yield ``(a, b, [K_j[a:b, :] for each variable j])``, float64 blocks of the Gram matrices.

    The block height is the largest that keeps the p blocks held and the
    temporaries of the evaluation (up to 6 more arrays of the block's size:
    distances, factors of a product kernel, the caller's products) within
    ``budget`` bytes: ``budget // (8 n (p + 6))`` rows, at least one.
    """
    n = Xs[0].shape[0]
    p = len(Xs)
    rows = rows_held or max(1, int(budget // (8 * n * (p + 6))))
    for a in range(0, n, rows):
        b = min(n, a + rows)
        mem = max(budget, 16 * (b - a) * n + 1)   # kernel_block's own guard: 2 values of 8 bytes per entry
        yield a, b, [np.asarray(kernel_block(k, X[a:b], X, memory=mem), dtype=np.float64) for k, X in zip(kernels, Xs)]


def gram_sums(kernels, Xs, budget, with_rows=True):
    """``(S, rows)``: :math:`S = \\sum_{i,j} \\prod_k K^{(k)}_{ij}` and the row sums of every Gram matrix.

    Gaussian kernels only: S is one engine kernel sum, since the product of
    Gaussians :math:`\\prod_k \\exp(-\\|x^{(k)}_i - x^{(k)}_j\\|^2 / (2\\sigma_k^2))` is the
    unit Gaussian on the concatenation :math:`(x^{(1)}/\\sigma_1, \\dots, x^{(p)}/\\sigma_p)`.
    Other kernels: a pass over row blocks of ``kernel_block`` within ``budget`` bytes.
    ``with_rows=False``: rows is None where the row sums would cost extra kernel sums (the Gaussian path).
    """
    if all(is_gaussian(k) for k in kernels):
        rows = [np.asarray(kernel_sum(k, X, X), dtype=np.float64) for k, X in zip(kernels, Xs)] if with_rows \
            else None
        Zc = np.hstack([X / k.bandwidth for k, X in zip(kernels, Xs)])
        S = float(np.sum(np.asarray(kernel_sum(Gaussian(1.0), Zc, Zc), dtype=np.float64)))
        return S, rows
    n = Xs[0].shape[0]
    rows = [np.empty(n) for _ in Xs]
    S = 0.0
    for a, b, blocks in row_blocks(kernels, Xs, budget):
        prod = blocks[0].copy()
        for j, B in enumerate(blocks):
            rows[j][a:b] = B.sum(axis=1)
            if j:
                prod *= B
        S += float(prod.sum())
    return S, rows


def diagonals(kernels, Xs):
    """The diagonals k(x_i, x_i) of every Gram matrix (float64)."""
    return [np.asarray(k.diag(X), dtype=np.float64).reshape(-1) for k, X in zip(kernels, Xs)]


def budget_bytes():
    """The memory budget of the current options (bytes)."""
    return get_options().memory


def gamma_test(x, mean, var, alpha):
    """``(shape, scale, pvalue, threshold)`` of the Gamma law with this mean and variance, at the value x.

    A degenerate null (mean or variance <= 0, e.g. a constant variable: every centred Gram matrix is
    zero) gives shape = scale = NaN, p-value 1 and threshold +inf: the test cannot reject.
    """
    if not (mean > 0 and var > 0):
        return math.nan, math.nan, 1.0, math.inf
    import scipy.stats
    shape, scale = mean ** 2 / var, var / mean
    return (shape, scale, float(scipy.stats.gamma.sf(x, shape, scale=scale)),
            float(scipy.stats.gamma.ppf(1 - alpha, shape, scale=scale)))
