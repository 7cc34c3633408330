r"""Exact kernel ridge regression for small n: one n x n kernel matrix, one Cholesky factorisation.

With data :math:`(x_i, y_i)`, weights :math:`w_i \ge 0` and penalty
:math:`\alpha > 0`, :class:`KernelRidge` returns the function of the
reproducing kernel Hilbert space :math:`\mathcal H_k` that minimises

.. math::

    \sum_i w_i\,\big(y_i - f(x_i)\big)^2 + \alpha\,\lVert f\rVert_{\mathcal H_k}^2 ,

that is :math:`f = \sum_i c_i\,k(\cdot, x_i)` with
:math:`(K + \alpha W^{-1})\,c = y`, solved in the symmetric form
:math:`(W^{1/2} K W^{1/2} + \alpha I)\,c' = W^{1/2} y`,
:math:`c = W^{1/2} c'` (defined for zero weights too). The kernel matrix is
built by :func:`kernelkit.engine.kernel_block` (dense, bounded by the memory
budget) and predictions are kernel sums (:func:`kernelkit.engine.kernel_sum`,
tiled), so predicting at many points never holds an n x m block.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import scipy.linalg
import scipy.linalg.lapack
from threadpoolctl import threadpool_limits
from sklearn.base import BaseEstimator
from sklearn.exceptions import ConvergenceWarning
from .._sklearn import EstimatorNotFittedError, RegressorMixin
from sklearn.utils.validation import check_array, validate_data

from .._options import get_options
from .._validation import InstanceOf, Integral, OneOf, Real, check_param, check_params, check_weights, param_error
from ..compress._resolve import median_bandwidth, resolve_kernel
from ..engine import kernel_block, kernel_sum
from ..kernels import KERNEL_NAMES, Kernel, sqdist

__all__ = ["KernelRidge"]

_NotFittedError = EstimatorNotFittedError   # (the name the regression modules use)


#: what every regression estimator's 'kernel' accepts (a name is built with the bandwidth: _resolve_kernel)
_KERNEL = InstanceOf(Kernel, "a Kernel object") | OneOf(*KERNEL_NAMES)
_ALPHA = Real(low=0, low_open=True)
_CONSTRAINTS = {"cv_mode": OneOf("loo", "gcv"), "bandwidth": Real(low=0, low_open=True) | None,
                "solver": OneOf("auto", "cholesky", "pcg"), "tol": Real(low=0, low_open=True),
                "max_iter": Integral(low=1)}
#: smallest n for which solver="auto" uses conjugate gradients (below it the Cholesky solve is a fraction of a second)
_PCG_MIN_N = 5000
#: first relative jitter tried (times mean(diag K)) and the largest one before giving up
_JITTER_FIRST, _JITTER_LAST = 1e-13, 1e-1
#: mixed-precision refinement: target relative residual, most refinement steps, unit round-offs
_MP_TOL, _MP_MAX_STEPS = 1e-13, 10
_EPS32, _EPS64 = float(np.finfo(np.float32).eps) / 2, float(np.finfo(np.float64).eps) / 2
#: largest n factored by a multi-threaded float64 dpotrf (see _potrf)
_DPOTRF_THREADED_MAX = 12_000
#: rows per tile when the kernel matrix is built
_BLOCK_ROWS = 1024


# --------------------------------------------------------------------------- helpers shared with _local
def _weighted_median_bandwidth(X, w, max_points=2000):
    r"""The median heuristic with sample weights: :math:`\sqrt{\operatorname{median}\|x_i - x_j\|^2}`.

    Each pair i < j of distinct points counts with weight :math:`w_i w_j`, so
    an integer weight m is the same as repeating the row m times (the median
    over the pairs of the repeated data, as :func:`kernelkit.median_bandwidth`
    computes it: zero distances left out, the mean of the two middle values
    at an even split). Unit weights (or None) give exactly
    ``median_bandwidth(X)``. Points of zero weight are left out. Above
    ``max_points`` positive-weight points, a fixed-seed subsample of them is
    used (with their weights). Data units; 1.0 when all points coincide.
    """
    if w is not None:
        keep = w > 0
        X, w = X[keep], w[keep]
        if np.all(w == w[0]):
            w = None
    if w is None:
        return median_bandwidth(X, max_points=max(2, max_points))
    if X.shape[0] > max_points:
        idx = np.sort(np.random.default_rng(0).choice(X.shape[0], max_points, replace=False))
        X, w = X[idx], w[idx]
    X = X.astype(np.float64)
    iu = np.triu_indices(X.shape[0], 1)
    D = sqdist(X, X)[iu]
    pw = (w[:, None] * w[None, :])[iu]
    keep = D > 0
    D, pw = D[keep], pw[keep]
    if not D.size:
        return 1.0
    order = np.argsort(D, kind="stable")
    D, c = D[order], np.cumsum(pw[order])
    half = c[-1] / 2
    i = int(np.searchsorted(c, half, side="left"))  # first cumulative weight >= half
    med = float(np.mean(D[i:i + 2])) if c[i] == half and i + 1 < D.size else float(D[i])
    return math.sqrt(med)


def _resolve_kernel(kernel, bandwidth, X, w, owner, *, positive=False):
    """``(kernel_, bandwidth_)`` by the library's rule (:func:`kernelkit.compress._resolve.resolve_kernel`),
    the default bandwidth of a name being the weighted median heuristic; ``positive``: local regression's
    kernels must be positive."""
    dot = (("a positive kernel (a radial kernel name or a positive Kernel object)",
            "Local regression weighs points by k.") if positive else "allow")
    out = resolve_kernel(kernel, bandwidth, X, owner, dot_names=dot, median=lambda X: _weighted_median_bandwidth(X, w))
    if positive and not out.is_positive:
        raise param_error("kernel", owner, "a positive kernel (every k(x, y) > 0: radial kernels, their sums "
                                           "and positive scalings)", out,
                          hint="Local regression weighs points by k(x, x_i).")
    return out, getattr(out, "bandwidth", None)


def _sample_weight(sample_weight, n, owner):
    """Non-negative float64 weights of shape (n,) with a positive sum, or None."""
    if sample_weight is None:
        return None
    w = check_weights(sample_weight, n, "sample_weight", owner, nonnegative=True, allow_2d=False)
    if not w.sum() > 0:
        raise param_error("sample_weight", owner, "weights with a positive sum (not all zero)", w,
                          shown=f"sum {w.sum()}")
    return w


def _rows(a):
    """Number of rows of an array-like, or None if it has no length."""
    try:
        return int(a.shape[0]) if hasattr(a, "shape") and len(a.shape) else len(a)
    except TypeError:
        return None


def _check_finite(a, name, owner):
    finite = np.isfinite(a)
    if not finite.all():
        i = tuple(int(b) for b in np.argwhere(~finite)[0])
        raise param_error(name, owner, "an array of finite values (no NaN or inf)", a,
                          shown=f"{a[i]} at index {i}")


def _check_fit_data(est, X, y, sample_weight, owner):
    """``(X, Y, w, squeeze)``: X float32 / float64 (n, d), Y float64 (n, t), w float64 (n,) or None.

    scikit-learn's validation first (sparse, complex, object, empty, 1-D X:
    its own messages), then kernelkit's: y of the wrong length, NaN or inf,
    mismatched sample_weight.
    """
    nx, ny = _rows(X), _rows(y)
    if y is not None and nx is not None and ny is not None and nx != ny:
        raise param_error("y", owner, f"an array with one value (or row of values) per row of X ({nx})", y,
                          shown=f"{ny} rows")
    if y is not None:  # scikit-learn checks a finite y itself, with its own message
        y_arr = np.asarray(y) if not hasattr(y, "toarray") else None
        if y_arr is not None and y_arr.dtype != object and np.issubdtype(y_arr.dtype, np.number):
            _check_finite(y_arr, "y", owner)
    X, y = validate_data(est, X, y, reset=True, dtype=[np.float64, np.float32], multi_output=True,
                         y_numeric=True, ensure_all_finite=False)
    _check_finite(X, "X", owner)
    Y = check_array(y, ensure_2d=False, dtype=np.float64, ensure_all_finite=False, input_name="y")
    if Y.ndim not in (1, 2):
        raise param_error("y", owner, "an array of shape (n,) or (n, n_targets)", Y, shown=f"shape {Y.shape}")
    _check_finite(Y, "y", owner)
    squeeze = Y.ndim == 1
    Y = Y.reshape(Y.shape[0], -1)
    w = _sample_weight(sample_weight, X.shape[0], owner)
    return X, Y, w, squeeze


def _alphas(alpha, owner):
    """``(alphas, grid)``: a float (grid False) or a 1-D float64 array of candidates > 0 (grid True)."""
    if np.ndim(alpha) == 0 and not isinstance(alpha, np.ndarray):
        return check_param(alpha, "alpha", owner, _ALPHA), False
    accepts = "a float > 0 or a 1-D array of floats > 0 (a grid chosen by leave-one-out)"
    try:
        a = np.asarray(alpha)
    except Exception:  # pragma: no cover - exotic inputs
        raise param_error("alpha", owner, accepts, alpha, "type") from None
    if a.dtype == object or a.dtype == bool or not np.issubdtype(a.dtype, np.number) or np.iscomplexobj(a):
        raise param_error("alpha", owner, accepts, alpha, "type")
    if a.ndim == 0:
        return check_param(a.item(), "alpha", owner, _ALPHA), False
    if a.ndim != 1 or a.size < 1 or not (np.all(np.isfinite(a)) and np.all(a > 0)):
        raise param_error("alpha", owner, accepts, alpha)
    return a.astype(np.float64), True


def _too_large(owner, n, budget, X):
    size = f"{budget / 1e6:.1f} MB" if budget >= 10**5 else f"{budget} bytes"
    return param_error("X", owner, f"at most {int(math.isqrt(budget // 16))} points under the memory budget of "
                       f"{size} (the exact solver holds the n x n kernel matrix and its factor, "
                       "16 n^2 bytes)", X, shown=f"{n} points",
                       hint="Raise the budget with kernelkit.options(memory=...), use solver='pcg' (exact, by "
                            "conjugate gradients, without the n x n matrix; a single alpha), or use "
                            "kernelkit.regression.FalkonRegressor (Nystrom + preconditioned conjugate gradients), "
                            "which never forms the n x n matrix.")


def _restore(A, diag):
    """Rebuild the symmetric A (C order) from its upper triangle, which potrf on the F view never touches."""
    n = A.shape[0]
    bs = 512
    for i0 in range(0, n, bs):
        i1 = min(n, i0 + bs)
        A[i0:i1, :i0] = A[:i0, i0:i1].T
        D = A[i0:i1, i0:i1]
        D[...] = np.triu(D) + np.triu(D, 1).T
    np.fill_diagonal(A, diag)


def _potrf(A):
    """In-place Cholesky of the symmetric C-ordered A: ``(U, info)`` with U = A.T (an F-contiguous view) upper.

    LAPACK sees the F view ``A.T`` (the same matrix), so nothing is copied; the
    factor overwrites A's lower triangle (``A.T`` holds U = L^T upper) and
    A's strict upper triangle keeps the input.
    """
    if A.dtype == np.float32:
        U, info = scipy.linalg.lapack.spotrf(A.T, lower=False, overwrite_a=True, clean=False)
    elif A.shape[0] > _DPOTRF_THREADED_MAX:
        # the multi-threaded dpotrf of the OpenBLAS bundled with SciPy segfaults at n = 20,000 (2 threads, Zen 4,
        # any layout or copy); one thread factors it (slower; this is only the fallback of the mixed path)
        with threadpool_limits(limits=1, user_api="blas"):
            U, info = scipy.linalg.lapack.dpotrf(A.T, lower=False, overwrite_a=True, clean=False)
    else:
        U, info = scipy.linalg.lapack.dpotrf(A.T, lower=False, overwrite_a=True, clean=False)
    return U, int(info)


def _cholesky(A, owner):
    """Cholesky factor of the C-ordered float64 A, in place, as ``((U, False), jitter)`` for cho_solve (U = A.T).

    Adds jitter eps * mean(diag A) (eps x10 per try) if needed; a failed try
    is undone from A's untouched upper triangle (no second n x n copy).
    """
    base = A.diagonal().copy()
    scale = float(np.mean(base)) if base.size else 1.0
    scale = scale if scale > 0 and math.isfinite(scale) else 1.0
    U, info = _potrf(A)
    if info == 0:
        return (U, False), 0.0
    eps = _JITTER_FIRST
    while eps <= _JITTER_LAST * (1 + 1e-9):
        jitter = eps * scale
        _restore(A, base + jitter)
        U, info = _potrf(A)
        if info != 0:
            eps *= 10
            continue
        warnings.warn(f"{owner}: the regularised kernel matrix was not numerically positive definite; added a "
                      f"jitter of {jitter:.3g} ({eps:.0e} x mean(diag)) to its diagonal so that it factors. The "
                      "fit is that of a larger alpha; raise alpha or remove duplicate points.",
                      scipy.linalg.LinAlgWarning, stacklevel=3)
        return (U, False), jitter
    raise param_error("alpha", owner, "large enough for K + alpha I to be positive definite", "", shown=(
        f"a matrix that does not factor even with a jitter of {_JITTER_LAST:g} x mean(diag)"),
        hint="The kernel may not be positive definite (check the Kernel object).")


def _norm_inf(A, bs=1024):
    """max_i sum_j |A_ij| (row blocks: no n x n temporary)."""
    return max((float(np.abs(A[i:i + bs]).sum(axis=1).max()) for i in range(0, A.shape[0], bs)), default=0.0)


def _solve32(U32, R):
    """(A32)^{-1} R in float32 with the float32 factor U32 (F view, upper), returned as float64."""
    x, info = scipy.linalg.lapack.spotrs(U32, np.asfortranarray(R, dtype=np.float32), lower=False)
    return np.asarray(x, dtype=np.float64)


def _mixed_solve(A, B):
    r"""Solve A X = B (A float64 symmetric positive definite, C order) by mixed-precision iterative refinement.

    Returns ``(X, U32, steps)`` or None when the float32 path cannot deliver a
    float64-accurate solution (then the caller uses the float64 Cholesky).
    See :class:`KernelRidge` for the method and its stopping rule.
    """
    n = A.shape[0]
    if not np.isfinite(A.diagonal()).all() or A.diagonal().min(initial=1.0) <= 0:
        return None
    A32 = A.astype(np.float32)
    U32, info = _potrf(A32)
    if info != 0:
        return None
    anorm = _norm_inf(A)
    rcond, info = scipy.linalg.lapack.spocon(U32, anorm, uplo="U")
    if info != 0 or not rcond * 0.5 > _EPS32:   # kappa * 6e-8 >= 0.5: float32 refinement would not converge
        return None
    X = _solve32(U32, B)
    bnorm = np.linalg.norm(B, axis=0)
    tol_bw = math.sqrt(n) * _EPS64 * anorm
    prev = np.inf
    for step in range(_MP_MAX_STEPS + 1):
        R = B - A @ X
        rel = float(np.max(np.linalg.norm(R, axis=0) / np.where(bnorm > 0, bnorm, 1.0)))
        backward = np.max(np.abs(R), axis=0) <= tol_bw * np.max(np.abs(X), axis=0)
        if rel <= _MP_TOL or backward.all():
            return X, U32, step
        if not rel < 0.5 * prev or step == _MP_MAX_STEPS:  # stalled above the target, or too slow
            return None
        prev = rel
        X += _solve32(U32, R)
    return None  # pragma: no cover


def _loo_scores(K, Y, w, alphas, mode):
    r"""Leave-one-out (or GCV) errors at every alpha from one eigendecomposition of the weighted K.

    With :math:`K' = W^{1/2} K W^{1/2} = U \operatorname{diag}(s) U^T`, the hat
    matrix of the transformed problem is
    :math:`H = U \operatorname{diag}(s / (s + \alpha)) U^T` and the exact
    leave-one-out residual of a point of positive weight is
    :math:`e_i = (y_i - \hat y_i) / (1 - H_{ii})`; a point of zero weight is
    not in the fit, so its leave-one-out residual is :math:`y_i - \hat y_i`.
    GCV replaces :math:`H_{ii}` by its mean :math:`\operatorname{tr} H / n_+`
    over the :math:`n_+` points of positive weight. ``K`` (unweighted) is
    overwritten. Returns ``(cv_values (n, t, n_alphas), scores (n_alphas,))``,
    the scores being :math:`\sum_i w_i e_i^2 / \sum_i w_i` averaged over targets.
    """
    n, t = Y.shape
    wn = np.ones(n) if w is None else w
    sw = np.sqrt(wn)
    zero = wn == 0
    K0 = K[zero].copy() if zero.any() else None  # rows of the points the fit does not see
    if w is not None:
        K *= sw[:, None]
        K *= sw[None, :]
    s, U = scipy.linalg.eigh(K, overwrite_a=True, check_finite=False)
    s = np.maximum(s, 0.0)  # K is positive semi-definite; round-off can make tiny eigenvalues negative
    Yw = sw[:, None] * Y
    Q = U.T @ Yw
    U2 = U * U
    n_pos = n - int(np.count_nonzero(zero))
    pos = ~zero
    values = np.empty((n, t, alphas.size))
    for j, a in enumerate(alphas):
        f = s / (s + a)
        resid = Yw - U @ (f[:, None] * Q)  # W^1/2 (y - yhat)
        h = U2 @ f if mode == "loo" else np.full(n, f.sum() / n_pos)
        e = np.empty((n, t))
        e[pos] = resid[pos] / (sw[pos, None] * (1 - h[pos, None]))
        if K0 is not None:
            coef = sw[:, None] * (U @ (Q / (s + a)[:, None]))
            e[zero] = Y[zero] - K0 @ coef
        values[:, :, j] = e * e
    scores = np.einsum("i,itj->j", wn, values) / (wn.sum() * t)
    return values, scores


def _direct_solve(A, rhs, owner):
    """(factor, jitter, coef, refinement steps, solver name) of the Cholesky solve of A C = rhs (A overwritten)."""
    mixed = _mixed_solve(A, rhs)
    if mixed is not None:
        coef, U32, steps = mixed
        return (U32, False), 0.0, coef, steps, "mixed"
    factor, jitter = _cholesky(A, owner)
    return factor, jitter, scipy.linalg.cho_solve(factor, rhs, check_finite=False), 0, "float64"


def _regularised(kernel, X, sw, alpha, budget):
    """The float64 C-ordered :math:`W^{1/2} K W^{1/2} + \\alpha I`, built in row tiles (no n x n temporary)."""
    n = X.shape[0]
    A = np.empty((n, n))
    for i0 in range(0, n, _BLOCK_ROWS):
        i1 = min(n, i0 + _BLOCK_ROWS)
        A[i0:i1] = kernel_block(kernel, X[i0:i1], X, memory=budget)
    np.fill_diagonal(A, np.asarray(kernel.diag(X), dtype=np.float64))  # exact k(x, x) (tiles round it)
    if sw is not None:
        A *= sw[:, None]
        A *= sw[None, :]
    A.flat[::n + 1] += alpha
    return A


class KernelRidge(RegressorMixin, BaseEstimator):
    r"""Exact kernel ridge regression: :math:`(K + \alpha I)\,c = y` by Cholesky, or by conjugate gradients for large n.

    The fitted function :math:`f(x) = \sum_i c_i\,k(x, x_i)` minimises

    .. math::

        \sum_i w_i\,\big(y_i - f(x_i)\big)^2 + \alpha\,\lVert f\rVert_{\mathcal H_k}^2 ,

    so :math:`(K + \alpha W^{-1})\,c = y` (:math:`W = \operatorname{diag}(w)`,
    all ones without ``sample_weight``), solved as
    :math:`(W^{1/2} K W^{1/2} + \alpha I)\,c' = W^{1/2} y`,
    :math:`c = W^{1/2} c'`, as scikit-learn does. Two solvers give this
    solution: a Cholesky factorisation of the dense kernel matrix
    (:func:`kernelkit.engine.kernel_block`; memory 16 n^2 bytes, time
    :math:`O(n^3)`), and conjugate gradients whose products :math:`K v` are
    engine kernel sums in float64 (memory :math:`O(n M)`, no n x n matrix;
    time n^2 kernel evaluations per iteration). For a Nystrom approximation
    of K instead, use :class:`kernelkit.regression.FalkonRegressor`.

    **Conjugate-gradient solver** (``solver="pcg"``, and ``"auto"`` from
    n = 5,000 with a single alpha): CG on :math:`K' + \alpha I` preconditioned
    by the Nystrom approximation of :math:`K'` on M = min(n, 1000) rows
    (fewer if the memory budget requires; F of 8 n M bytes), applied by the
    Woodbury identity (:mod:`kernelkit.regression._pcg` derives it). It stops
    at a true relative residual :math:`\max_j \lVert b_j - A c_j\rVert / \lVert b_j\rVert
    \le` ``tol`` (1e-13 by default: the predictions then agree with the
    Cholesky solution to about :math:`\kappa(A) \cdot 10^{-13}`). Few
    iterations are needed when alpha is not small against the kernel's
    spectrum beyond its M-th eigenvalue: at n = 8,000, d = 10 with the median
    Gaussian bandwidth, 7 iterations at alpha = 1; at alpha = 1e-3 the true
    residual stalled at 2e-12 after 91 iterations and three restarts, above
    the default tol (the Cholesky solver is then the one to use). When CG does
    not reach ``tol`` (within ``max_iter`` iterations and three restarts),
    ``"auto"`` falls back to the Cholesky solver if the n x n matrix fits the
    memory budget, and otherwise (or with ``"pcg"``) keeps the iterate with a
    ConvergenceWarning. ``pcg_info_`` reports the run.

    **Cholesky solver (mixed precision, exact to float64).** :math:`A = K' + \alpha I`
    is built in float64 (row tiles), copied to float32 and factored there
    (LAPACK ``spotrf``, about twice as fast as ``dpotrf``); then
    :math:`x_0 = A_{32}^{-1} b`, :math:`x_{k+1} = x_k + A_{32}^{-1} r_k` with
    the residual :math:`r_k = b - A x_k` computed in float64 with the float64
    A (iterative refinement). It stops when the relative residual
    :math:`\max_j \lVert r\rVert / \lVert b\rVert \le 10^{-13}` or the
    normwise backward error is at the float64 level
    (:math:`\lVert r\rVert_\infty \le \sqrt n\, u_{64} \lVert A\rVert_\infty \lVert x\rVert_\infty`,
    LAPACK ``dsposv``'s rule). It falls back to the float64 Cholesky
    (``dpotrf``, with the jitter below) when the float32 factorisation fails,
    when the estimated condition number (``spocon``) makes float32 useless
    (:math:`\kappa\, u_{32} \ge 0.5`, :math:`u_{32} \approx 6\cdot 10^{-8}`),
    or when the residual stops halving or 10 steps do not reach the target.
    ``solver_`` says which was used. Memory: 12 n^2 bytes during the fit
    (8 n^2 on the float64 path); the fitted model keeps the 4 n^2-byte float32
    factor, and ``return_std`` refines its solves the same way (residuals by
    engine kernel sums). The alpha-grid leave-one-out path stays in float64.

    Parameters
    ----------
    kernel : str or Kernel, default "gaussian"
        A kernel name ("gaussian", "laplace", "matern32", "imq", "linear",
        ...) or a Kernel object (which carries its own bandwidth). The
        Gaussian is :math:`k(x, y) = \exp(-\lVert x - y\rVert^2 / (2\sigma^2))`,
        scikit-learn's ``rbf`` with ``gamma = 1 / (2 sigma^2)``.
    alpha : float or array of floats, default 1.0
        The penalty :math:`\alpha > 0`, in units of y^2 (times the kernel's
        units): scikit-learn's ``KernelRidge(alpha=)`` convention, *not*
        scaled by n. Falkon-style solvers minimise
        :math:`\frac1n \sum_i (y_i - f(x_i))^2 + \lambda \lVert f\rVert^2`,
        the same problem with :math:`\alpha = \lambda n`. In the Gaussian
        process view, alpha is the noise variance (prior
        :math:`f \sim GP(0, k)`). An array of candidates is a grid: alpha is
        chosen by efficient leave-one-out (``cv_mode``) from one
        eigendecomposition of K, then the model is fitted at the chosen value
        (``alpha_``).
    bandwidth : float or None, default None
        For a kernel given by name: its bandwidth in data units (for the
        Gaussian, sigma). None: the median heuristic on X
        (:func:`kernelkit.median_bandwidth`, with pairs weighted by
        :math:`w_i w_j` under ``sample_weight``). Must be None for a Kernel
        object and for the linear and polynomial kernels.
    solver : {"auto", "cholesky", "pcg"}, default "auto"
        "cholesky": the dense factorisation; "pcg": conjugate gradients
        (above); "auto": "pcg" for n >= 5,000 and a single alpha, else
        "cholesky". A grid of alphas always forms the dense matrix (its
        leave-one-out path needs the eigendecomposition).
    tol : float > 0, default 1e-13
        Target relative residual of the conjugate-gradient solver (unitless).
    max_iter : int >= 1, default 300
        Most conjugate-gradient iterations (restarts included).
    cv_mode : {"loo", "gcv"}, default "loo"
        How a grid of alphas is scored: ``"loo"``, the exact leave-one-out
        mean squared error :math:`\sum_i w_i e_i^2 / \sum_i w_i` with
        :math:`e_i = (y_i - \hat y_i) / (1 - H_{ii})`,
        :math:`H = K (K + \alpha I)^{-1} = U \operatorname{diag}(s / (s + \alpha)) U^T`;
        ``"gcv"``, generalised cross-validation (:math:`H_{ii}` replaced by
        :math:`\operatorname{tr} H / n`). Units of y^2. Ignored for a single alpha.
        Under ``sample_weight`` a weighted row is left out whole (so, for the
        choice of alpha only, an integer weight is not the same as repeated rows).
    memory, threads, backend, progress :
        Engine options (see :func:`kernelkit.kernel_sum`); None = defaults.
        ``memory`` also bounds the n x n matrix of the Cholesky solver
        (16 n^2 bytes) and the preconditioner of the CG solver (16 n M bytes).

    Attributes
    ----------
    dual_coef_ : ndarray of shape (n,) or (n, n_targets)
        The coefficients c of :math:`f = \sum_i c_i k(\cdot, x_i)` (float64).
    X_fit_ : ndarray of shape (n, d)
        The training points (float32 or float64, as given).
    kernel_ : Kernel
        The kernel used.
    bandwidth_ : float or None
        Its bandwidth (data units), None for kernels without one.
    alpha_ : float
        The penalty used: ``alpha`` itself, or the one chosen from the grid.
    solver_ : {"mixed", "float64", "pcg"}
        "mixed": the float32 factor with float64 refinement; "float64": the
        fallback Cholesky; "pcg": conjugate gradients.
    n_iter_ : int
        Conjugate-gradient iterations (``solver_ == "pcg"``), else 1 (one factorisation).
    pcg_info_ : dict or None
        After a conjugate-gradient run (also one that fell back to Cholesky):
        ``iterations``, ``residual`` (true relative residual reached),
        ``converged``, ``centers`` (rows of X in the preconditioner). None
        when CG did not run.
    n_refinement_steps_ : int
        Refinement steps taken (0 on the float64 path).
    jitter_ : float
        What was added to the diagonal of :math:`K' + \alpha I` so that it
        factors (0.0 unless a warning said otherwise).
    alphas_ : ndarray of shape (n_alphas,), only for a grid of alphas
        The candidates, as given.
    cv_values_ : ndarray of shape (n, n_alphas) or (n, n_targets, n_alphas), only for a grid
        Squared leave-one-out (or GCV) residuals :math:`e_i^2` (units of y^2).
    cv_scores_ : ndarray of shape (n_alphas,), only for a grid
        The weighted mean of ``cv_values_`` over points (and targets); ``alpha_`` minimises it.
    n_features_in_ : int

    Notes
    -----
    ``predict(X, return_std=True)`` adds the standard deviation of the
    Gaussian process posterior with noise variance alpha (noise variance
    :math:`\alpha / w_i` at a weighted point):
    :math:`\sqrt{k(x, x) - k_x^T (K + \alpha W^{-1})^{-1} k_x}`, the posterior
    of the latent f (add alpha for a new noisy observation), in the units of
    :math:`\sqrt{k}` (the prior's scale: unit for radial kernels, whatever y's
    scale).

    Examples
    --------
    >>> import numpy as np
    >>> from kernelkit.regression import KernelRidge
    >>> X = np.linspace(0, 1, 20)[:, None]
    >>> model = KernelRidge(alpha=1e-3, bandwidth=0.2).fit(X, np.sin(4 * X[:, 0]))
    >>> bool(abs(model.predict([[0.5]])[0] - np.sin(2.0)) < 1e-2)
    True
    """

    def __init__(self, kernel="gaussian", alpha=1.0, *, bandwidth=None, cv_mode="loo", solver="auto", tol=1e-13,
                 max_iter=300, memory=None, threads=None, backend=None, progress=None):
        self.kernel = kernel
        self.alpha = alpha
        self.bandwidth = bandwidth
        self.cv_mode = cv_mode
        self.solver = solver
        self.tol = tol
        self.max_iter = max_iter
        self.memory = memory
        self.threads = threads
        self.backend = backend
        self.progress = progress

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        return tags

    def _engine_opts(self):
        return dict(memory=self.memory, threads=self.threads, backend=self.backend, progress=self.progress)

    def fit(self, X, y, sample_weight=None):
        """Solve for the dual coefficients (choosing alpha first when it is a grid).

        Parameters
        ----------
        X : array of shape (n, d)
            Training points (data units); float32 is kept, other types become float64.
        y : array of shape (n,) or (n, n_targets)
            Targets (any units); several targets share one factorisation.
        sample_weight : array of shape (n,), optional
            Non-negative weights with a positive sum (unitless): the loss is
            :math:`\\sum_i w_i (y_i - f(x_i))^2`. An integer weight is the same
            as repeating the row.

        Returns
        -------
        self : KernelRidge
        """
        owner = "KernelRidge"
        alphas, grid = _alphas(self.alpha, owner)
        params = check_params(vars(self), _CONSTRAINTS, owner)
        check_param(self.kernel.lower() if isinstance(self.kernel, str) else self.kernel, "kernel", owner, _KERNEL)
        X, Y, w, squeeze = _check_fit_data(self, X, y, sample_weight, "KernelRidge.fit")
        n = X.shape[0]
        budget = get_options(memory=self.memory).memory
        solver = params["solver"]
        if solver == "auto":
            solver = "pcg" if n >= _PCG_MIN_N and not grid else "cholesky"
        if (grid or solver == "cholesky") and 16 * n * n > budget:
            raise _too_large("KernelRidge.fit", n, budget, X)
        kernel, bw = _resolve_kernel(self.kernel, params["bandwidth"], X, w, owner)
        sw = None if w is None else np.sqrt(w)

        def block():
            return np.asarray(kernel_block(kernel, X, memory=budget), dtype=np.float64)

        if grid:
            values, scores = _loo_scores(block(), Y, w, alphas, params["cv_mode"])
            self.alphas_ = alphas
            self.cv_values_ = values[:, 0, :] if squeeze else values
            self.cv_scores_ = scores
            alpha = float(alphas[int(np.argmin(np.where(np.isnan(scores), np.inf, scores)))])
        else:
            alpha = alphas
        rhs = Y if sw is None else sw[:, None] * Y
        self.pcg_info_ = None
        coef = None
        if solver == "pcg":
            from ._pcg import pcg_ridge, preconditioner_size
            opts = get_options(memory=self.memory, threads=self.threads, backend=self.backend)
            coef, info = pcg_ridge(kernel, np.asarray(X, dtype=np.float64), sw, alpha, rhs, tol=params["tol"],
                                   max_iter=params["max_iter"], n_centers=preconditioner_size(n, budget), opts=opts)
            self.pcg_info_ = info
            factor, jitter, steps = None, 0.0, 0
            if not info["converged"]:
                if params["solver"] == "pcg" or 16 * n * n > budget:
                    warnings.warn(f"KernelRidge: conjugate gradients stopped at a relative residual of "
                                  f"{info['residual']:.2e} after {info['iterations']} iterations, above "
                                  f"tol={params['tol']:g}; raise max_iter (or alpha), or use solver='cholesky'.",
                                  ConvergenceWarning, stacklevel=2)
                else:   # "auto": the direct solve instead
                    coef = None
        if coef is None:
            A = _regularised(kernel, X, sw, alpha, budget)
            factor, jitter, coef, steps, solver = _direct_solve(A, rhs, owner)
            del A
        if sw is not None:
            coef *= sw[:, None]
        self.kernel_ = kernel
        self.bandwidth_ = bw
        self.alpha_ = alpha
        self.jitter_ = float(jitter)
        self.X_fit_ = X
        self.dual_coef_ = coef[:, 0] if squeeze else coef
        self.solver_ = solver
        self.n_iter_ = int(self.pcg_info_["iterations"]) if solver == "pcg" else 1
        self.n_refinement_steps_ = int(steps)
        self._factor = factor
        self._sw = sw
        return self

    def _check_fitted(self, what):
        if not hasattr(self, "dual_coef_"):
            raise _NotFittedError(f"This KernelRidge instance is not fitted yet. Call 'fit' before '{what}'.")

    def predict(self, X, return_std=False):
        r"""Predictions :math:`f(x) = \sum_i c_i k(x, x_i)` (an engine kernel sum, tiled).

        Parameters
        ----------
        X : array of shape (m, d)
            Query points (data units).
        return_std : bool, default False
            Also return the Gaussian-process posterior standard deviation
            :math:`\sqrt{k(x, x) - k_x^T (K + \alpha W^{-1})^{-1} k_x}` of the
            latent f at each query (noise variance alpha; see the class Notes),
            computed in tiles of queries within the memory budget.

        Returns
        -------
        y_pred : ndarray of shape (m,) or (m, n_targets)
            float32 when the training and query points are both float32, else float64.
        y_std : ndarray of shape (m,), only with return_std=True
            The same for every target (units of sqrt(k)).
        """
        self._check_fitted("predict")
        return_std = check_param(return_std, "return_std", "KernelRidge.predict", OneOf(False, True))
        Xq = validate_data(self, X, reset=False, dtype=[np.float64, np.float32], ensure_all_finite=False)
        _check_finite(Xq, "X", "KernelRidge.predict")
        pred = kernel_sum(self.kernel_, self.X_fit_, Xq, self.dual_coef_, **self._engine_opts())
        if not return_std:
            return pred
        return pred, self._std(Xq).astype(pred.dtype, copy=False)

    def _std(self, Xq):
        n, m = self.X_fit_.shape[0], Xq.shape[0]
        budget = get_options(memory=self.memory).memory
        if self._factor is None:   # fitted by conjugate gradients: factor K' + alpha I now, once
            if 16 * n * n > budget:
                raise _too_large("KernelRidge.predict(return_std=True)", n, budget, self.X_fit_)
            A = _regularised(self.kernel_, self.X_fit_, self._sw, self.alpha_, budget)
            self._factor, self.jitter_, _, _, _ = _direct_solve(A, np.zeros((n, 1)), "KernelRidge")
            del A
        rows = max(1, min(m, budget // max(1, 32 * n)))
        U, _ = self._factor
        var = np.empty(m)
        for start in range(0, m, rows):
            Q = Xq[start:start + rows]
            Kx = np.asarray(kernel_block(self.kernel_, self.X_fit_, Q, memory=budget), dtype=np.float64)
            if self._sw is not None:
                Kx *= self._sw[:, None]
            diag = np.asarray(self.kernel_.diag(Q), dtype=np.float64)
            if U.dtype == np.float64:   # L = U^T: ||L^-1 k_x||^2
                V = scipy.linalg.solve_triangular(U, Kx, trans="T", lower=False, check_finite=False)
                var[start:start + rows] = diag - np.einsum("ij,ij->j", V, V)
            else:                       # k_x^T (K' + alpha I)^-1 k_x, the solve refined in float64
                Z = self._refined_solve(U, Kx)
                var[start:start + rows] = diag - np.einsum("ij,ij->j", Kx, Z)
        return np.sqrt(np.maximum(var, 0.0))

    def _refined_solve(self, U32, B, steps=3):
        """(K' + alpha I)^-1 B from the float32 factor, refined with float64 residuals (engine kernel sums)."""
        X, sw, a = self.X_fit_, self._sw, self.alpha_
        Z = _solve32(U32, B)
        for _ in range(steps):
            V = Z if sw is None else sw[:, None] * Z
            KZ = np.asarray(kernel_sum(self.kernel_, X, X, V, **self._engine_opts()), dtype=np.float64)
            if sw is not None:
                KZ *= sw[:, None]
            Z += _solve32(U32, B - KZ - (a + self.jitter_) * Z)
        return Z

