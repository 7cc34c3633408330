r"""Distribution compression: kernel thinning, KT+, Compress++, herding and MMD.

Given n points (MCMC draws, data) and a kernel k, find ``size`` of them whose
empirical measure is close to the input's in maximum mean discrepancy
``MMD_k``. Entry point: :func:`kernel_thin`; the pieces: :func:`kt_split`,
:func:`kt_swap`, :func:`compresspp`, :func:`compress`, :func:`standard_thin`,
:func:`kernel_herding`, :func:`mmd`.

Methods (``method=``)

* ``"auto"`` (default): ``"kt"`` while it takes seconds, ``"compress++"``
  above: KT when ``n^2 (d + 10) <= AUTO_KT_WORK`` (1.5e10: n = 2^15 points
  at d = 2, about a second on 2 cores), else Compress++. The method used is
  ``ThinningResult.method`` and the rule applied ``ThinningResult.rule``.
* ``"kt"``: kernel thinning with the target kernel (KT-SPLIT + KT-SWAP),
  ``O(n^2)`` kernel evaluations, memory ``O(n d)``.
* ``"root"``: KT-SPLIT with the root kernel ``k.power(0.5, d)`` (Gaussian:
  half the variance), KT-SWAP with k.
* ``"power"``: KT-SPLIT with ``k.power(alpha, d)``.
* ``"kt+"``: KT-SPLIT with ``k + k.power(alpha, d)`` (each has sup-norm
  k(0) = 1 for radial kernels).
* ``"compress++"``: Compress(g) with symmetrized KT halving (the halved
  coreset or its complement, by a fair coin), then KT;
  ``O(4^g n log n)`` kernel evaluations.
* ``"compress"``: the same with KT-SPLIT alone everywhere (no KT-SWAP).
* ``"standard"``: every (n/size)-th point. ``"herding"``: kernel herding.

How every point is used (goodpoints keeps only the largest power of 4): odd
coresets send their last point to a random child in each halving, so KT-SPLIT
yields ``2^m`` candidates of ``floor`` or ``ceil(n / 2^m)`` points that
partition the input, ``m = floor(log2(n / size))``; a candidate larger than
``size`` is cut to ``size`` by greedy MMD minimisation among its own points,
then KT-SWAP refines it over all n points. Compress splits into four parts of
sizes differing by one, and a halving of an odd number L of points returns
floor(L/2) or ceil(L/2) of them. Weighted inputs: KT-SPLIT and Compress run on a
systematic resample of the indices (index i appears floor or ceil of n p_i
times), KT-SWAP and the MMD use the exact weights.
"""

from __future__ import annotations

import dataclasses
import time

import numpy as np

from .._validation import Integral, OneOf, Real, check_param, check_points, param_error
from .._xp import any_dask
from ..kernels import Kernel
from ._baselines import kernel_herding, standard_thin
from ._compresspp import compress_indices, compresspp_indices
from ._kernelspec import check_kernel, compiled_available, split_kernel_for
from ._kt import _check_delta, kt_split, kt_swap, run_kt, seed_sequence, standard_thin_indices
from ._mmd import mmd, normalized_weights
from ._resolve import median_bandwidth, resolve_kernel as _resolve_kernel
from .._random import UNSET, resolve_seed_alias

__all__ = ["kernel_thin", "ThinningResult", "kt_split", "kt_swap", "compresspp", "compress", "standard_thin",
           "kernel_herding", "mmd", "median_bandwidth", "compiled_available", "METHODS", "AUTO_KT_WORK",
           "auto_method"]

#: the values of :func:`kernel_thin`'s ``method`` ("auto" chooses between "kt" and "compress++": :func:`auto_method`)
METHODS = ("auto", "kt", "root", "power", "kt+", "compress++", "compress", "standard", "herding")

#: ``method="auto"`` runs KT while ``n^2 (d + 10)`` is at most this (about a second on 2 cores), else Compress++
AUTO_KT_WORK = 1.5e10


def auto_method(n, d):
    """``(method, rule)`` chosen by ``method="auto"`` for n points in d dimensions.

    KT costs O(n^2 d) (measured here: about 1e-9 (1 + d / 10) s per pair of points on 2 cores);
    Compress++ O(4^g n log n). KT is used while ``n^2 (d + 10) <= AUTO_KT_WORK``.

    Parameters
    ----------
    n : int
        Number of input points.
    d : int
        Dimension of the points.

    Returns
    -------
    method : str
        "kt" or "compress++".
    rule : str
        The sentence that explains the choice (reported by the CLI and ThinningResult).
    """
    work = float(n) ** 2 * (d + 10)
    if work <= AUTO_KT_WORK:
        return "kt", f"auto: n^2 (d + 10) = {work:.3g} <= {AUTO_KT_WORK:.3g}, so kt (O(n^2 d))"
    return "compress++", (f"auto: n^2 (d + 10) = {work:.3g} > {AUTO_KT_WORK:.3g}, so compress++ "
                          "(O(4^g n log n); kt would be O(n^2 d))")


@dataclasses.dataclass(frozen=True)
class ThinningResult:
    """What :func:`kernel_thin` returns with ``return_result=True``.

    Attributes
    ----------
    indices : int64 array (size,)
        Rows of X in the coreset.
    points : array (size, d)
        ``X[indices]``.
    method : str
        The method that ran (never "auto": the one "auto" chose).
    kernel : Kernel
        Target kernel (MMD is measured with it).
    split_kernel : Kernel or None
        Kernel of the KT-SPLIT walk (None for standard thinning and herding).
    mmd : float or None
        MMD_k between the coreset and the (weighted) input, when ``with_mmd``.
    seconds : float
        Wall time of the thinning (without the MMD).
    rule : str
        Why this method ran: "requested" or the rule of ``method="auto"``.
    """

    indices: np.ndarray
    points: np.ndarray
    method: str
    kernel: Kernel
    split_kernel: object
    mmd: object
    seconds: float
    rule: str = "requested"


def kernel_thin(X, size, kernel="gaussian", *, bandwidth=None, method="auto", random_state=None, delta=0.5, g=4,
                alpha=0.5, weights=None, return_result=False, with_mmd=False, seed=UNSET):
    r"""Compress X to ``size`` points that keep its distribution (small MMD).

    Parameters
    ----------
    X : array of shape (n, d)
        Input points (units of the data), float32 or float64; never modified.
        The walk itself runs in float64. A dask array (or dask weights) runs
        Compress++ over its row chunks: :func:`kernelkit.dask.compresspp`.
    size : int in [1, n]
        Number of output points (any value: see the module docs for how all n
        points are used when n is not size times a power of 2).
    kernel : Kernel, str or SteinKernel
        Target kernel k. A name ('gaussian', 'laplace', 'matern32', 'imq', ...)
        takes ``bandwidth``, by default the median heuristic
        (:func:`median_bandwidth`, units of the data). A
        :class:`kernelkit.stats.SteinKernel` with a score makes the target the
        model p itself (mean-zero kernel: Stein kernel thinning, method 'kt'
        only; see :func:`kernelkit.stats.stein_kernel_thin`); the result's
        ``mmd`` is then the coreset's KSD to p.
    bandwidth : float > 0, optional
        Bandwidth for a kernel given by name (units of the data). Must be
        None with a Kernel object, which carries its own.
    method : str
        One of ``METHODS``: 'auto' (default: 'kt' while
        ``n^2 (d + 10) <= AUTO_KT_WORK = 1.5e10``, about a second on 2
        cores, else 'compress++'; see :func:`auto_method`), 'kt', 'root',
        'power', 'kt+', 'compress++', 'compress', 'standard', 'herding'.
    random_state : None, int >= 0, SeedSequence or Generator
        All randomness flows from ``numpy.random.SeedSequence(random_state).spawn``.
    delta : float in (0, 1]
        Failure probability of the KT-SPLIT thresholds (dimensionless).
    g : int >= 0
        Compress++ oversampling: the Compress stage keeps about ``2^g size`` points.
    alpha : float in (0, 1]
        Exponent of the power kernel for 'power' and 'kt+' (the Fourier
        transform of ``k.power(alpha)`` is that of k to the power alpha).
    weights : array of shape (n,), optional
        Non-negative weights of the input points: the target is
        ``sum_i p_i delta_{x_i}`` with ``p = weights / sum(weights)``.
    return_result : bool
        Return a :class:`ThinningResult` instead of the indices.
    with_mmd : bool
        Also compute the MMD to the input (needs ``n^2`` kernel evaluations
        through the engine); implies ``return_result``.
    seed : deprecated alias of ``random_state``.

    Returns
    -------
    indices : int64 array of shape (size,), or ThinningResult
        KT-SWAP may select a point more than once (as in the paper).

    Examples
    --------
    >>> import numpy as np, kernelkit as kk
    >>> X = np.random.default_rng(0).standard_normal((4096, 2))
    >>> idx = kk.kernel_thin(X, 64, kk.Gaussian(2.0), random_state=0)
    >>> idx.shape
    (64,)
    """
    owner = "kernel_thin"
    if any_dask(X, weights):  # Compress++ over the chunks, where they live (kernelkit.dask.compresspp)
        from ..dask._compress import kernel_thin as dask_thin
        return dask_thin(X, size, kernel, bandwidth=bandwidth, method=method, delta=delta, g=g, alpha=alpha,
                         random_state=resolve_seed_alias(random_state, seed, owner), weights=weights,
                         return_result=return_result, with_mmd=with_mmd)
    if not isinstance(kernel, (Kernel, str)) and type(kernel).__name__ == "SteinKernel":
        return _stein_thin(X, size, kernel, bandwidth, method, delta, weights, return_result, with_mmd,
                           resolve_seed_alias(random_state, seed, owner))
    X = check_points(X, "X", owner)
    n, d = X.shape
    size = check_param(size, "size", owner, Integral(low=1, high=n))
    method = check_param(method, "method", owner, OneOf(*METHODS))
    delta = _check_delta(delta, owner)
    g = check_param(g, "g", owner, Integral(low=0, high=20))
    alpha = check_param(alpha, "alpha", owner, Real(low=0, high=1, low_open=True))
    return_result = check_param(return_result, "return_result", owner, OneOf(False, True))
    with_mmd = check_param(with_mmd, "with_mmd", owner, OneOf(False, True))
    rule = "requested"
    if method == "auto":
        method, rule = auto_method(n, d)
    kernel = _resolve_kernel(kernel, bandwidth, X, owner)
    p = None if weights is None else normalized_weights(weights, n, "weights", owner)
    ss = seed_sequence(resolve_seed_alias(random_state, seed, owner), owner)
    X64 = np.ascontiguousarray(X, dtype=np.float64)
    split_kernel = None
    t0 = time.perf_counter()
    if method == "standard":
        idx = standard_thin_indices(n, size, p)
    elif method == "herding":
        idx = kernel_herding(X64, size, kernel, weights=p)
    else:
        base = "kt" if method in ("compress++", "compress") else method
        split_kernel = split_kernel_for(kernel, base, d, alpha)
        if method in ("compress++", "compress"):
            idx = compresspp_indices(kernel, split_kernel, X64, size, g, delta, ss, p, swap=method == "compress++")
        else:
            idx = run_kt(X64, size, kernel, split_kernel, delta, ss, p)
    seconds = time.perf_counter() - t0
    idx = np.asarray(idx, dtype=np.int64)
    if not (return_result or with_mmd):
        return idx
    value = mmd(X64, X64[idx], kernel, weights_x=p) if with_mmd else None
    return ThinningResult(idx, X[idx], method, kernel, split_kernel, value, seconds, rule)


def _stein_thin(X, size, kernel, bandwidth, method, delta, weights, return_result, with_mmd, rs):
    """kernel_thin with a SteinKernel target: :func:`kernelkit.stats.stein_kernel_thin` (mean-zero KT)."""
    from ..stats._stein import SteinKernel
    from ..stats._stein_thin import stein_kernel_thin

    owner = "kernel_thin"
    if not isinstance(kernel, SteinKernel):
        raise param_error("kernel", owner, "a kernelkit Kernel, a kernel name or a SteinKernel", kernel, kind="type")
    if kernel.score is None:
        raise param_error("kernel", owner, "a SteinKernel with a score callable (or use "
                          "kernelkit.stats.stein_kernel_thin with precomputed scores)", kernel)
    check_param(method, "method", owner, OneOf("auto", "kt"))
    for name, value in (("bandwidth", bandwidth), ("weights", weights)):
        if value is not None:
            raise param_error(name, owner, "None with a SteinKernel target (its base kernel carries the "
                              "bandwidth; the target is the model p, not a weighted input)", value)
    t0 = time.perf_counter()
    idx, ksd = stein_kernel_thin(X, None, size, kernel, delta=delta, random_state=rs)
    if not (return_result or with_mmd):
        return idx
    X = np.asarray(X)
    return ThinningResult(idx, X[idx], "kt", kernel, kernel, ksd, time.perf_counter() - t0, "requested")


def compresspp(X, size, kernel, *, g=4, delta=0.5, random_state=None, weights=None, seed=UNSET):
    """Compress++ coreset of ``size`` points (see :func:`kernel_thin`, method 'compress++').

    Parameters
    ----------
    X : array of shape (n, d)
        Input points (units of the data).
    size : int in [1, n]
        Number of output points.
    kernel : Kernel or str
        Target kernel (a name takes the median-heuristic bandwidth).
    g : int >= 0
        Oversampling: the Compress stage keeps about ``2^g size`` points.
    delta : float in (0, 1]
        Failure probability of the KT-SPLIT thresholds.
    random_state : None, int >= 0, SeedSequence or Generator
    weights : array of shape (n,), optional
        Non-negative weights of the target measure.
    seed : deprecated alias of ``random_state``.

    Returns
    -------
    int64 array of ``size`` indices into X.
    """
    random_state = resolve_seed_alias(random_state, seed, "compresspp")
    return kernel_thin(X, size, kernel, method="compress++", g=g, delta=delta, random_state=random_state,
                       weights=weights)


def compress(X, kernel, *, size=None, g=0, delta=0.5, random_state=None, seed=UNSET):
    r"""Compress(g) alone: about ``2^g sqrt(n)`` points (or ``2^g size`` when size is given).

    Parameters
    ----------
    X : array of shape (n, d)
    kernel : Kernel
        Kernel of the halvings (KT-SPLIT and KT-SWAP).
    size : int, optional
        Reference size s: leaves of ``ceil(4^g s^2 / n)`` points (default s = sqrt(n)).
    g : int >= 0
        Oversampling parameter.
    delta : float in (0, 1]
    random_state : None, int >= 0, SeedSequence or Generator
    seed : deprecated alias of ``random_state``.

    Returns
    -------
    int64 array of indices into X (about ``2^g s`` of them).
    """
    X = check_points(X, "X", "compress")
    kernel = check_kernel(kernel, "compress")
    n = X.shape[0]
    g = check_param(g, "g", "compress", Integral(low=0, high=20))
    s = int(np.sqrt(n)) if size is None else check_param(size, "size", "compress", Integral(low=1, high=n))
    delta = _check_delta(delta, "compress")
    leaf = max(1, int(np.ceil(4 ** g * s * s / n)))
    X64 = np.ascontiguousarray(X, dtype=np.float64)
    return compress_indices(kernel, kernel, X64, np.arange(n), leaf, delta, seed_sequence(resolve_seed_alias(random_state, seed, "compress"), "compress"))
