r"""Gaussian-process regression with hyperparameters fitted by the log marginal likelihood (exact, small n).

The model (:class:`GaussianProcessRegressor`) is

.. math::

    y_i = f(x_i) + \varepsilon_i, \qquad
    f \sim \mathcal{GP}\big(0,\; s^2\, k(x \oslash \ell,\; x' \oslash \ell)\big), \qquad
    \varepsilon_i \sim \mathcal N(0, \sigma^2),

with :math:`k` a radial kernelkit kernel of *unit* bandwidth and the inputs
divided feature by feature by the lengthscales :math:`\ell` (ARD, automatic
relevance determination; one shared lengthscale without it). Scaling the
inputs keeps the engine's kernel isotropic: every kernel matrix and every
prediction is an ordinary engine call (:func:`kernelkit.engine.kernel_block`,
:func:`kernelkit.engine.kernel_sum`) on the scaled points
:math:`u_i = x_i \oslash \ell`.

``fit`` maximises, over :math:`\theta = (\log \ell, \log s^2, \log \sigma^2)`
(the hyperparameters that are not fixed),

.. math::

    L(\theta) = \log p(y \mid \theta) = -\tfrac12\, y^T K_y^{-1} y - \tfrac12 \log\lvert K_y\rvert
                - \tfrac n2 \log 2\pi, \qquad K_y = s^2 K + \sigma^2 I,

with scipy's L-BFGS-B and the analytic gradient
:math:`\partial L / \partial\theta_j = \tfrac12 \operatorname{tr}\big(Q\, \partial K_y / \partial\theta_j\big)`,
:math:`Q = a a^T - K_y^{-1}`, :math:`a = K_y^{-1} y`. One evaluation costs one
Cholesky factorisation (LAPACK ``dpotrf``, :math:`n^3/3` flops), the inverse
from it (``dpotri``, :math:`2n^3/3`), and a pass over row tiles for the
gradient. The lengthscale gradient never forms the :math:`n \times n \times d`
tensor :math:`\partial K / \partial \log \ell_k` (scikit-learn's
``GaussianProcessRegressor`` does: :math:`8 n^2 d` bytes): with
:math:`r^2_{ij} = \sum_k (u_{ik} - u_{jk})^2` and :math:`\varphi` the unit
profile,

.. math::

    \frac{\partial L}{\partial \log \ell_k} = -\sum_{ij} G_{ij} (u_{ik} - u_{jk})^2
    = -2 \sum_i u_{ik}^2 (G\mathbf 1)_i + 2\, u_k^T G u_k, \qquad
    G = s^2\, Q \circ \varphi'(r^2),

one elementwise product and one matrix product :math:`G U` per row tile
(:math:`2 n^2 d` flops in all). The derivatives :math:`\varphi'(r^2)` are
closed forms, written as :math:`\varphi'(r^2) = \varphi(r^2)\, h(r^2)`:

===================================  =====================================  ========================================
family (unit bandwidth)              :math:`\varphi(r^2)`                   :math:`h(r^2)`
===================================  =====================================  ========================================
Gaussian                             :math:`e^{-r^2/2}`                     :math:`-1/2`
Laplace = Matern(1/2)                :math:`e^{-r}`                         :math:`-1/(2r)` (0 at r = 0)
Matern(3/2), :math:`s = \sqrt3\, r`  :math:`(1 + s) e^{-s}`                 :math:`-3 / (2 (1 + s))`
Matern(5/2), :math:`s = \sqrt5\, r`  :math:`(1 + s + s^2/3) e^{-s}`         :math:`-5 (1 + s) / (6 (1 + s + s^2/3))`
RationalQuadratic(alpha)             :math:`(1 + r^2/(2\alpha))^{-\alpha}`  :math:`-1 / (2 (1 + r^2 / (2\alpha)))`
IMQ(beta)                            :math:`(1 + r^2)^{-\beta}`             :math:`-\beta / (1 + r^2)`
===================================  =====================================  ========================================

(the bandwidth conventions of :mod:`kernelkit.kernels`: the Gaussian's
lengthscale is its sigma, the IMQ's its c). Memory: one :math:`n \times n`
float64 matrix (:math:`8 n^2` bytes: :math:`K_y`, then its factor, then its
inverse, in place) plus row tiles, within the memory budget.
"""

from __future__ import annotations

import contextlib
import math
import warnings

import numpy as np
import scipy.linalg
import scipy.linalg.lapack
import scipy.optimize
from sklearn.base import BaseEstimator
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils.validation import validate_data

from .._blas import blas_threads
from .._options import get_options, options
from .._random import generator
from .._sklearn import EstimatorNotFittedError, RegressorMixin
from .._validation import InstanceOf, Integral, OneOf, Real, check_param, check_params, param_error
from ..compress._resolve import median_bandwidth
from ..engine import kernel_block, kernel_sum
from ..exceptions import NotSupportedError
from ..kernels import IMQ, KERNEL_NAMES, Gaussian, Kernel, Laplace, Matern, RationalQuadratic, make_kernel, sqdist
from ._exact import _DPOTRF_THREADED_MAX, _check_finite, _check_fit_data, _potrf

__all__ = ["GaussianProcessRegressor"]

_OWNER = "GaussianProcessRegressor"
_KERNEL = InstanceOf(Kernel, "a Kernel object") | OneOf(*KERNEL_NAMES)
_POSITIVE = Real(low=0, low_open=True)
_CONSTRAINTS = {
    "ard": OneOf(False, True),
    "amplitude": _POSITIVE | None,
    "noise": _POSITIVE | None,
    "normalize_y": OneOf(False, True),
    "optimizer": OneOf("L-BFGS-B") | None,
    "n_restarts": Integral(low=0),
    "max_iter": Integral(low=1),
}
#: the hyperparameters, in the order of theta (the lengthscales are d entries with ARD, one without)
_HYPER = ("lengthscale", "amplitude", "noise")
#: bytes of row-tile temporaries per row of the n x n matrix (kernel values, distances, Q, products)
_TILE_BYTES_PER_ENTRY = 64
#: most rows per tile (larger tiles only add memory traffic)
_MAX_TILE_ROWS = 256
#: below this many points the LAPACK calls run on one BLAS thread (unless 'threads' is given)
_SMALL_N = 512
#: points used by the per-feature median heuristic (pairs: about _FEATURE_POINTS^2 / 2 per feature)
_FEATURE_POINTS = 1000


# --------------------------------------------------------------------------- kernel families
def _family(kernel):
    """``(name, parameter)`` of a kernel whose lengthscale gradient is implemented, else None
    (the gradient is written for the Euclidean distance: an L1 kernel is used as given)."""
    if getattr(kernel, "distance", "euclidean") != "euclidean":
        return None
    kind = type(kernel)
    if kind is Gaussian:
        return ("gaussian", None)
    if kind is Laplace or (kind is Matern and kernel.nu == 0.5):
        return ("laplace", None)
    if kind is Matern and kernel.nu in (1.5, 2.5):
        return ("matern32" if kernel.nu == 1.5 else "matern52", None)
    if kind is RationalQuadratic:
        return ("rq", kernel.alpha)
    if kind is IMQ:
        return ("imq", kernel.beta)
    return None


def _unit_kernel(family):
    name, param = family
    return {"gaussian": lambda: Gaussian(1.0), "laplace": lambda: Laplace(1.0),
            "matern32": lambda: Matern(1.5, 1.0), "matern52": lambda: Matern(2.5, 1.0),
            "rq": lambda: RationalQuadratic(1.0, alpha=param), "imq": lambda: IMQ(1.0, beta=param)}[name]()


def _slope(family, r2):
    r"""h(r^2) with :math:`\varphi'(r^2) = \varphi(r^2)\, h(r^2)` for the unit profile (see the module table)."""
    name, param = family
    with np.errstate(divide="ignore", over="ignore", invalid="ignore"):
        if name == "laplace":
            r = np.sqrt(r2)
            return np.where(r > 0, -0.5 / r, 0.0)
        if name == "matern32":
            return -1.5 / (1.0 + np.sqrt(3.0 * r2))
        if name == "matern52":
            s = np.sqrt(5.0 * r2)
            return np.where(np.isfinite(s * s), -(5.0 / 6.0) * (1.0 + s) / (1.0 + s + s * s / 3.0), 0.0)
        if name == "rq":
            return -0.5 / (1.0 + r2 / (2.0 * param))
        if name == "imq":
            return -param / (1.0 + r2)
    raise AssertionError(name)  # pragma: no cover - the Gaussian's slope is the constant -1/2


def _resolve(kernel):
    """``(kernel_, family, bandwidth)``: the unit-bandwidth kernel evaluated on scaled inputs, its family
    (None when the lengthscale gradient is not implemented: then the kernel is used as given) and the
    bandwidth of a Kernel object of a supported family (None for a name)."""
    if isinstance(kernel, str):
        obj = make_kernel(kernel) if kernel in ("linear", "polynomial") else make_kernel(kernel, bandwidth=1.0)
        fam = _family(obj)
        return (obj if fam is None else _unit_kernel(fam)), fam, None
    fam = _family(kernel)
    if fam is None:
        return kernel, None, None
    return _unit_kernel(fam), fam, float(kernel.bandwidth)


# --------------------------------------------------------------------------- parameter checks
def _bounds(value, name, owner):
    """``(low, high)`` floats with 0 < low < high < inf."""
    accepts = "a pair (low, high) of finite floats with 0 < low < high"
    try:
        a = np.asarray(value)
    except Exception:  # pragma: no cover - exotic inputs
        raise param_error(name, owner, accepts, value, "type") from None
    if a.dtype == object or a.dtype == bool or not np.issubdtype(a.dtype, np.number) or np.iscomplexobj(a):
        raise param_error(name, owner, accepts, value, "type")
    if a.shape != (2,) or not (np.all(np.isfinite(a)) and 0 < a[0] < a[1]):
        raise param_error(name, owner, accepts, value)
    return float(a[0]), float(a[1])


def _positive_values(value, name, owner, p, ard, d, lengthscale=False):
    """A hyperparameter value as a float64 array of shape (p,): a float > 0 (repeated), or for a
    lengthscale with ARD an array of d floats > 0."""
    if not lengthscale or np.ndim(value) == 0 and not isinstance(value, np.ndarray):
        return np.full(p, check_param(value, name, owner, _POSITIVE))
    accepts = (f"a float > 0 or an array of shape ({d},) of floats > 0 (one per feature: ard=True)" if ard else
               "a float > 0 (one shared lengthscale: ard=False; pass ard=True for one per feature)")
    a = np.asarray(value)
    if a.dtype == object or a.dtype == bool or not np.issubdtype(a.dtype, np.number) or np.iscomplexobj(a):
        raise param_error(name, owner, accepts, value, "type")
    if a.ndim == 0:
        return np.full(p, check_param(a.item(), name, owner, _POSITIVE))
    if not ard or a.shape != (d,):
        raise param_error(name, owner, accepts, value, shown=f"an array of shape {a.shape}")
    a = a.astype(np.float64)
    if not (np.all(np.isfinite(a)) and np.all(a > 0)):
        raise param_error(name, owner, accepts, value)
    return a


def _init(value, owner):
    """The 'init' dict, checked for its keys."""
    if value is None:
        return {}
    accepts = "None or a dict with keys among {'lengthscale', 'amplitude', 'noise'} (starting values)"
    if not isinstance(value, dict):
        raise param_error("init", owner, accepts, value, "type")
    unknown = [k for k in value if k not in _HYPER]
    if unknown:
        raise param_error("init", owner, accepts, value, shown=f"the key(s) {unknown!r}")
    return value


def _size(b):
    return f"{b / 1e6:.1f} MB" if b >= 10**5 else f"{b} bytes"


def _tiles(n, budget, owner, X):
    """``(rows, tile_memory)``: rows per tile and the budget left for the tiles, or the error when the
    n x n matrix (8 n^2 bytes) and one row tile do not fit the memory budget."""
    need = 8 * n * n + _TILE_BYTES_PER_ENTRY * n
    if need > budget:
        b = _TILE_BYTES_PER_ENTRY
        nmax = int((-b + math.sqrt(b * b + 32 * budget)) // 16)
        raise param_error("X", owner, f"at most {nmax} points under the memory budget of {_size(budget)} (the "
                          f"Gaussian-process fit holds one n x n float64 matrix, 8 n^2 bytes, plus row tiles of "
                          f"{b} n bytes per row)", X, shown=f"{n} points, which need at least {_size(need)}",
                          hint="Raise the budget with kernelkit.options(memory=...) or memory=..., or use "
                               "kernelkit.regression.FalkonRegressor (Nystrom + preconditioned conjugate "
                               "gradients), which never forms the n x n matrix.")
    left = budget - 8 * n * n
    rows = int(max(1, min(n, _MAX_TILE_ROWS, left // (_TILE_BYTES_PER_ENTRY * n))))
    return rows, left


def _feature_scales(X):
    """Per-feature median of the positive |x_ik - x_jk| over pairs (a fixed-seed subsample of rows);
    0 for a feature without two distinct values."""
    if X.shape[0] > _FEATURE_POINTS:
        X = X[np.sort(np.random.default_rng(0).choice(X.shape[0], _FEATURE_POINTS, replace=False))]
    iu = np.triu_indices(X.shape[0], 1)
    out = np.zeros(X.shape[1])
    for k in range(X.shape[1]):
        diff = np.abs(X[iu[0], k] - X[iu[1], k])
        diff = diff[diff > 0]
        out[k] = float(np.median(diff)) if diff.size else 0.0
    return out


def _symmetrise_from_lower(A, bs=128):
    """Copy the lower triangle of the C-ordered A onto its upper triangle, by blocks of ``bs`` rows (the
    temporaries are bs x n at most)."""
    n = A.shape[0]
    for i0 in range(0, n, bs):
        i1 = min(n, i0 + bs)
        A[i0:i1, i1:] = A[i1:, i0:i1].T
        D = A[i0:i1, i0:i1]
        iu = np.triu_indices(i1 - i0, 1)
        D[iu] = D.T[iu]


def _potri(U):
    """In-place inverse from the upper Cholesky factor U (F view): the inverse's upper triangle of U."""
    if U.shape[0] > _DPOTRF_THREADED_MAX:   # as _potrf: one BLAS thread above the size where OpenBLAS crashed
        with blas_threads(1):
            _, info = scipy.linalg.lapack.dpotri(U, lower=False, overwrite_c=True)
    else:
        _, info = scipy.linalg.lapack.dpotri(U, lower=False, overwrite_c=True)
    return int(info)


# --------------------------------------------------------------------------- the objective
class _Objective:
    """The log marginal likelihood of centred inputs ``Xc`` (float64 (n, d)) and targets ``Y`` ((n, t)) as
    a function of the full log-hyperparameter vector [log lengthscales (p), log s^2, log sigma^2]."""

    def __init__(self, Xc, Y, kernel, family, p, rows, tile_memory, fixed):
        self.Xc, self.Y, self.kernel, self.family, self.p = Xc, Y, kernel, family, p
        self.rows, self.tile_memory = rows, tile_memory
        self.fixed = fixed   # (p + 2,): the fixed hyperparameters' exact values, NaN for the fitted ones

    def values(self, full):
        """The hyperparameters (lengthscales, s^2, sigma^2) at the log vector ``full`` (fixed ones exact)."""
        return np.where(np.isnan(self.fixed), np.exp(full), self.fixed)

    def __call__(self, full, grad=False, keep=False):
        """``lml`` (grad False), ``(lml, gradient of shape (p + 2,))`` (grad True) or ``(lml, U, alpha)``
        (keep True: the Cholesky factor and K_y^-1 Y). -inf (and a zero gradient, or None factors) when
        K_y does not factor."""
        Y, kern, rows = self.Y, self.kernel, self.rows
        n, t = Y.shape
        vals = self.values(full)
        s2, sn2 = float(vals[self.p]), float(vals[self.p + 1])
        U = self.Xc / vals[:self.p]
        diag = np.asarray(kern.diag(U), dtype=np.float64)
        A = np.empty((n, n))
        for i0 in range(0, n, rows):
            i1 = min(n, i0 + rows)
            A[i0:i1] = kernel_block(kern, U[i0:i1], U, memory=self.tile_memory)
            A[i0:i1] *= s2
        A.flat[::n + 1] = s2 * diag + sn2
        factor, info = _potrf(A)
        if info != 0 or not np.all(np.isfinite(np.diagonal(factor))):
            return (-math.inf, None, None) if keep else (-math.inf, np.zeros(full.size)) if grad else -math.inf
        alpha = scipy.linalg.cho_solve((factor, False), Y, check_finite=False)
        lml = (-0.5 * float(np.vdot(Y, alpha)) - t * float(np.sum(np.log(np.diagonal(factor))))
               - 0.5 * n * t * math.log(2 * math.pi))
        if keep:
            return lml, factor, alpha
        if not grad:
            return lml
        if _potri(factor) != 0:
            return -math.inf, np.zeros(full.size)
        _symmetrise_from_lower(A)   # A = K_y^-1 (dpotri wrote the lower triangle of the C view)
        return lml, self._gradient(A, alpha, U, diag, s2, sn2)

    def _gradient(self, Kinv, alpha, U, diag, s2, sn2):
        r"""dL/dtheta from K_y^-1 and alpha = K_y^-1 Y, by row tiles of Q = alpha alpha^T - t K_y^-1."""
        n, d = U.shape
        t = alpha.shape[1]
        rows, kern, fam = self.rows, self.kernel, self.family
        g_amp = tr_q = 0.0
        T1, T3 = np.zeros(d), np.zeros(d)
        for i0 in range(0, n, rows):
            i1 = min(n, i0 + rows)
            ar = np.arange(i1 - i0)
            Q = alpha[i0:i1] @ alpha.T
            Q -= t * Kinv[i0:i1]
            tr_q += float(np.sum(Q[ar, i0 + ar]))
            Kt = np.asarray(kernel_block(kern, U[i0:i1], U, memory=self.tile_memory), dtype=np.float64)
            Kt[ar, i0 + ar] = diag[i0:i1]
            g_amp += float(np.vdot(Q, Kt))
            if fam is None:   # lengthscale fixed (its gradient is not computed)
                continue
            if fam[0] == "gaussian":
                Kt *= -0.5 * s2
            else:
                D = sqdist(U[i0:i1], U)
                D[ar, i0 + ar] = 0.0
                Kt *= _slope(fam, D)
                Kt *= s2
            Q *= Kt                                       # the tile of G = s^2 Q o phi'(r^2)
            Ut = U[i0:i1]
            T1 += (Ut * Ut).T @ Q.sum(axis=1)             # sum_i u_ik^2 (G 1)_i
            T3 += np.einsum("ij,ij->j", Ut, Q @ U)        # sum_i u_ik (G U)_ik
        g_len = 2.0 * (T3 - T1)                           # dL/dlog l_k = -(2 T1 - 2 T3)
        if self.p == 1:
            g_len = np.array([g_len.sum()])
        return np.concatenate([g_len, [0.5 * s2 * g_amp, 0.5 * sn2 * tr_q]])


# --------------------------------------------------------------------------- the estimator
class GaussianProcessRegressor(RegressorMixin, BaseEstimator):
    r"""Gaussian-process regression, hyperparameters fitted by maximising the log marginal likelihood.

    The model is :math:`y = f(x) + \varepsilon`,
    :math:`f \sim \mathcal{GP}(0, s^2 k(x \oslash \ell, x' \oslash \ell))`,
    :math:`\varepsilon \sim \mathcal N(0, \sigma^2)`: a radial kernel
    :math:`k` of unit bandwidth on inputs divided by per-feature lengthscales
    :math:`\ell` (``ard=True``) or by one shared lengthscale. ``fit``
    maximises

    .. math::

        L(\theta) = -\tfrac12\, y^T K_y^{-1} y - \tfrac12 \log\lvert K_y\rvert - \tfrac n2 \log 2\pi,
        \qquad K_y = s^2 K + \sigma^2 I,

    over :math:`\theta = (\log \ell, \log s^2, \log \sigma^2)` (the
    hyperparameters not fixed) with scipy's L-BFGS-B and the analytic
    gradient :math:`\tfrac12 \operatorname{tr}((a a^T - K_y^{-1})\,\partial K_y/\partial\theta)`,
    :math:`a = K_y^{-1} y` (see :mod:`kernelkit.regression._gp` for the
    formulas: one Cholesky factorisation and one inverse per evaluation, the
    ARD gradient in :math:`O(n^2 d)` without an :math:`n \times n \times d`
    tensor). With several targets (y of shape (n, t)) they share the
    hyperparameters and L is the sum of their log marginal likelihoods, as in
    scikit-learn.

    Everything is computed in float64 (float32 inputs are converted).
    Memory: one :math:`n \times n` float64 matrix (:math:`8 n^2` bytes) plus
    row tiles, all within the memory budget; the fitted model keeps the
    Cholesky factor (:math:`8 n^2` bytes). scikit-learn's
    ``GaussianProcessRegressor`` with an ARD kernel holds about
    :math:`8 n^2 (d + 5)` bytes per evaluation (the gradient tensor of every
    hyperparameter).

    **Fixed and fitted hyperparameters.** ``lengthscale``, ``amplitude`` and
    ``noise`` are None (fitted) or a value, which fixes the hyperparameter at
    it (``noise=1e-6`` interpolates). A fitted one starts from ``init`` when
    given there, else from the data: the lengthscale from a Kernel object's
    bandwidth, or for a name the median heuristic
    (:func:`kernelkit.median_bandwidth`: the median distance m between
    points; with ARD it is spread over the features in proportion to their
    median absolute differences :math:`c_k`,
    :math:`\ell_k = m\, c_k / \sqrt{\operatorname{mean}_j c_j^2}`, so that
    identically spread features start at m); the amplitude from
    :math:`\operatorname{mean}(y^2)` of the targets the model sees (1 after
    ``normalize_y``); the noise from a tenth of that. Starting values taken
    from the data are clipped into the bounds; given ones must lie in them.

    Parameters
    ----------
    kernel : str or Kernel, default "gaussian"
        The radial family: a name ("gaussian", "laplace", "matern12",
        "matern32", "matern52", "rq", "cauchy", "imq") or a Kernel object
        (:class:`~kernelkit.Gaussian`, :class:`~kernelkit.Laplace`,
        :class:`~kernelkit.Matern` with nu in {0.5, 1.5, 2.5},
        :class:`~kernelkit.RationalQuadratic`, :class:`~kernelkit.IMQ`), whose
        shape parameters (nu, alpha, beta) stay fixed and whose bandwidth is
        the starting lengthscale. The lengthscale is the bandwidth in the
        kernel's convention (Gaussian: :math:`\exp(-r^2 / (2\ell^2))`, the
        ``length_scale`` of scikit-learn's RBF, Matern and RationalQuadratic).
        Other kernels (Periodic, dot-product kernels, sums, products, scaled
        kernels, Matern of other nu) are used as given on the inputs divided
        by ``lengthscale`` (default 1: the inputs as given); their lengthscale
        cannot be fitted (give ``lengthscale``, or ``optimizer=None``), but the
        amplitude and noise can.
    ard : bool, default False
        One lengthscale per feature (automatic relevance determination)
        instead of one shared by all.
    lengthscale : None, float > 0 or array of shape (d,), default None
        None: fitted. A value fixes it (data units): a float for every
        feature, or with ``ard=True`` an array of one lengthscale per feature.
        With a Kernel object whose bandwidth is not 1 it must be None (the
        object carries its lengthscale; pass the name, or a unit-bandwidth object).
    amplitude : None or float > 0, default None
        The signal variance :math:`s^2`: None fitted, a value fixed. Units of
        y^2, of the normalised y when ``normalize_y`` (dimensionless: multiply
        by ``y_train_std_**2`` for y's units).
    noise : None or float > 0, default None
        The noise variance :math:`\sigma^2`: None fitted, a value fixed (units
        of ``amplitude``; the ``noise_level`` of scikit-learn's WhiteKernel).
    init : None or dict, default None
        Starting values of fitted hyperparameters, keys among "lengthscale"
        (a float or, with ARD, an array (d,)), "amplitude", "noise"; each in
        its bounds. A key for a fixed hyperparameter is an error.
    lengthscale_bounds, amplitude_bounds, noise_bounds : pair of floats, default (1e-5, 1e5)
        ``(low, high)`` bounds of each fitted hyperparameter, in its units
        (the lengthscales: data units, each feature the same bounds); the
        optimiser works on their logs. scikit-learn's defaults for RBF,
        ConstantKernel and WhiteKernel.
    normalize_y : bool, default True
        Subtract the mean of y and divide by its standard deviation (per
        target; a zero deviation counts as 1) before fitting; predictions are
        mapped back. The log marginal likelihood is then that of the
        normalised targets (scikit-learn's convention; subtract
        :math:`n \sum \log` ``y_train_std_`` for that of y).
    optimizer : {"L-BFGS-B"} or None, default "L-BFGS-B"
        scipy's L-BFGS-B on theta within the log bounds, with its default
        tolerances (as scikit-learn). None: no fitting, the starting values
        are used.
    n_restarts : int >= 0, default 0
        Further L-BFGS-B runs from starts drawn log-uniformly within the
        bounds; the run with the largest log marginal likelihood is kept.
    max_iter : int >= 1, default 15000
        Most L-BFGS-B iterations per run (scipy's default).
    random_state : None, int, SeedSequence or Generator, default None
        Draws the restarts' starting points (unused when ``n_restarts=0``).
    memory, threads, backend, progress :
        Engine options (see :func:`kernelkit.kernel_sum`); None = defaults.
        ``threads`` also caps the BLAS threads of the Cholesky factorisations
        and inverses. Default: below 512 points one thread for both (threading
        costs more than it saves there), else the engine's and the BLAS
        library's defaults. ``memory`` also bounds the n x n matrix (8 n^2 bytes) and its tiles;
        a larger n is an error that says how much is needed.

    Attributes
    ----------
    lengthscales_ : ndarray of shape (d,)
        The lengthscales (data units); all equal without ARD.
    bandwidth_ : float or None
        The shared lengthscale without ARD (None with ARD).
    amplitude_ : float
        :math:`s^2` (units of the normalised y^2 under ``normalize_y``).
    noise_ : float
        :math:`\sigma^2` (same units).
    log_marginal_likelihood_ : float
        L at the fitted hyperparameters (nats; of the normalised y under ``normalize_y``).
    theta_ : ndarray of shape (n_free,)
        The log of the fitted hyperparameters, in the order of ``theta_names_``
        (what :meth:`log_marginal_likelihood` takes).
    theta_names_ : list of str
        "log_lengthscale" (or "log_lengthscale[k]" with ARD), "log_amplitude", "log_noise", the fitted ones.
    n_iter_ : int
        L-BFGS-B iterations of the run kept (0 without fitting).
    alpha_ : ndarray of shape (n, t)
        :math:`K_y^{-1} y` (normalised y).
    kernel_ : Kernel
        The kernel evaluated on the scaled inputs (unit bandwidth for the radial families).
    X_fit_ : ndarray of shape (n, d)
        The training points (float64).
    y_train_mean_, y_train_std_ : ndarray of shape (t,)
        What ``normalize_y`` subtracted and divided by (0 and 1 without it).
    n_features_in_ : int

    Notes
    -----
    ``predict(X, return_std=True)`` returns the posterior standard deviation
    of the latent f, *without* the noise:
    :math:`\sqrt{s^2 k(x, x) - s^4 k_x^T K_y^{-1} k_x}` (times ``y_train_std_``).
    scikit-learn's ``predict`` with a ``WhiteKernel`` includes the noise (its
    std squared is ours squared plus ``noise_ * y_train_std_**2``, plus its
    ``alpha``). Every evaluation factors :math:`K_y` without jitter; where
    it does not factor L is :math:`-\infty` (as in scikit-learn), and a fit
    whose result does not factor is an error (raise the noise or its lower
    bound).

    Examples
    --------
    >>> import numpy as np
    >>> from kernelkit.regression import GaussianProcessRegressor
    >>> rng = np.random.default_rng(0)
    >>> X = rng.uniform(-2, 2, size=(80, 2))
    >>> y = np.sin(2 * X[:, 0]) + 0.05 * rng.standard_normal(80)
    >>> gp = GaussianProcessRegressor(ard=True).fit(X, y)
    >>> bool(gp.lengthscales_[1] > 5 * gp.lengthscales_[0])   # the second feature is irrelevant
    True
    >>> bool(abs(gp.predict([[0.3, 0.0]])[0] - np.sin(0.6)) < 0.05)
    True
    """

    def __init__(self, kernel="gaussian", *, ard=False, lengthscale=None, amplitude=None, noise=None, init=None,
                 lengthscale_bounds=(1e-5, 1e5), amplitude_bounds=(1e-5, 1e5), noise_bounds=(1e-5, 1e5),
                 normalize_y=True, optimizer="L-BFGS-B", n_restarts=0, max_iter=15000, random_state=None,
                 memory=None, threads=None, backend=None, progress=None):
        self.kernel = kernel
        self.ard = ard
        self.lengthscale = lengthscale
        self.amplitude = amplitude
        self.noise = noise
        self.init = init
        self.lengthscale_bounds = lengthscale_bounds
        self.amplitude_bounds = amplitude_bounds
        self.noise_bounds = noise_bounds
        self.normalize_y = normalize_y
        self.optimizer = optimizer
        self.n_restarts = n_restarts
        self.max_iter = max_iter
        self.random_state = random_state
        self.memory = memory
        self.threads = threads
        self.backend = backend
        self.progress = progress

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        return tags

    @contextlib.contextmanager
    def _engine_context(self, n):
        """Engine options, and the BLAS threads of the LAPACK calls: ``threads`` when given, else one
        thread (engine and BLAS) below _SMALL_N points, where threading costs more than it saves."""
        threads = self.threads if self.threads else (1 if n < _SMALL_N else None)
        with options(threads=threads, backend=self.backend, progress=self.progress), blas_threads(threads):
            yield

    # ------------------------------------------------------------------ fit
    def fit(self, X, y):
        """Maximise the log marginal likelihood over the hyperparameters not fixed, then factor K_y.

        Parameters
        ----------
        X : array of shape (n, d)
            Training points (data units); computed in float64.
        y : array of shape (n,) or (n, t)
            Targets (any units); several targets share the hyperparameters.

        Returns
        -------
        self : GaussianProcessRegressor
        """
        owner = _OWNER
        params = check_params(vars(self), _CONSTRAINTS, owner)
        kernel_arg = check_param(self.kernel.lower() if isinstance(self.kernel, str) else self.kernel, "kernel",
                                 owner, _KERNEL)
        bounds = {h: _bounds(getattr(self, h + "_bounds"), h + "_bounds", owner) for h in _HYPER}
        init = _init(self.init, owner)
        X, Y, _, squeeze = _check_fit_data(self, X, y, None, owner + ".fit")
        X = np.asarray(X, dtype=np.float64)
        n, d = X.shape
        ard = params["ard"]
        p = d if ard else 1
        rows, tile_memory = _tiles(n, get_options(memory=self.memory).memory, owner + ".fit", X)
        kern, fam, obj_bw = _resolve(kernel_arg)

        # fixed values, starting values, what is fitted
        fixed = {"lengthscale": None if self.lengthscale is None else
                 _positive_values(self.lengthscale, "lengthscale", owner, p, ard, d, True),
                 "amplitude": None if params["amplitude"] is None else np.array([params["amplitude"]]),
                 "noise": None if params["noise"] is None else np.array([params["noise"]])}
        starts = {}
        for h in _HYPER:
            if h not in init:
                continue
            if fixed[h] is not None:
                raise param_error("init", owner, f"a dict without the key {h!r} (the {h} is fixed by the {h!r} "
                                  "parameter)", init, shown=f"{{{h!r}: {init[h]!r}}}")
            v = _positive_values(init[h], f"init[{h!r}]", owner, p if h == "lengthscale" else 1, ard, d,
                                h == "lengthscale")
            lo, hi = bounds[h]
            if not np.all((v >= lo) & (v <= hi)):
                raise param_error("init", owner, f"starting values within {h}_bounds {bounds[h]}", init,
                                  shown=f"{{{h!r}: {init[h]!r}}}")
            starts[h] = v
        if obj_bw is not None and obj_bw != 1.0:
            clash = "lengthscale" if fixed["lengthscale"] is not None else "init" if "lengthscale" in starts else None
            if clash:
                raise param_error(clash, owner, "None when 'kernel' is a Kernel object (its bandwidth is the "
                                  "starting lengthscale)" if clash == "lengthscale" else
                                  "a dict without 'lengthscale' when 'kernel' is a Kernel object (its bandwidth "
                                  "is the starting lengthscale)",
                                  getattr(self, clash), hint="Pass the kernel by name (or as an object of "
                                                             "bandwidth 1) to set the lengthscale.")
        optimise = params["optimizer"] is not None
        if fam is None and fixed["lengthscale"] is None:
            if optimise:
                raise NotSupportedError(
                    f"{owner}: the lengthscale of {kern!r} cannot be fitted (the gradient is implemented for the "
                    "Gaussian, Laplace, Matern nu = 0.5 / 1.5 / 2.5, RationalQuadratic and IMQ kernels). Give "
                    "'lengthscale' (fixed; the amplitude and noise are still fitted) or optimizer=None.")
            fixed["lengthscale"] = np.ones(p)
        if fam is None and "lengthscale" in starts:
            raise param_error("init", owner, f"a dict without 'lengthscale' for {kern!r} (its lengthscale "
                              "cannot be fitted)", init)

        Yn, y_mean, y_std = self._normalise(Y, params["normalize_y"])
        scale = float(np.mean(Yn * Yn))
        scale = scale if scale > 0 and math.isfinite(scale) else 1.0
        centre = X.mean(axis=0) if kern.is_stationary else np.zeros(d)
        Xc = X - centre

        data_start = {}
        if obj_bw is not None:
            data_start["lengthscale"] = np.full(p, obj_bw)
        elif fam is not None:
            data_start["lengthscale"] = self._median_start(X, p)
        data_start["amplitude"] = np.array([scale])
        data_start["noise"] = np.array([0.1 * scale])
        full, free, log_bounds, names, exact = [], [], [], [], []
        for h in _HYPER:
            if fixed[h] is not None:
                v, is_free = fixed[h], False
            elif h in starts:
                v, is_free = starts[h], True
            else:
                v, is_free = data_start[h], True
                if h != "lengthscale" or obj_bw is None:   # (a Kernel object's bandwidth is a given value)
                    v = np.clip(v, *bounds[h])
            if is_free and not np.all((v >= bounds[h][0]) & (v <= bounds[h][1])):
                raise param_error("kernel", owner, f"a kernel whose bandwidth lies within lengthscale_bounds "
                                  f"{bounds[h]} (the bandwidth is the starting lengthscale)", kernel_arg)
            full.append(np.log(v))
            exact.append(np.full(v.size, np.nan) if is_free else v)
            free.extend([is_free] * v.size)
            log_bounds.extend([(math.log(bounds[h][0]), math.log(bounds[h][1]))] * v.size)
            if h == "lengthscale" and p > 1:
                names.extend(f"log_lengthscale[{k}]" for k in range(p))
            else:
                names.append(f"log_{h}")
        full = np.concatenate(full)
        free = np.array(free)
        objective = _Objective(Xc, Yn, kern, fam if free[:p].any() else None, p, rows, tile_memory,
                               np.concatenate(exact))

        n_iter = 0
        with self._engine_context(n):
            if optimise and free.any():
                rng = generator(self.random_state, owner)
                lb = np.array(log_bounds)[free]
                x0s = [full[free]] + [rng.uniform(lb[:, 0], lb[:, 1]) for _ in range(params["n_restarts"])]
                best = None
                for x0 in x0s:
                    res = scipy.optimize.minimize(self._negative(objective, full, free), x0, jac=True,
                                                  method="L-BFGS-B", bounds=[tuple(b) for b in lb],
                                                  options={"maxiter": params["max_iter"]})
                    if best is None or res.fun < best.fun:
                        best = res
                if not best.success:
                    warnings.warn(f"{owner}: L-BFGS-B did not converge ({best.message}); the hyperparameters "
                                  "are those of its last iterate. Raise max_iter or check the bounds.",
                                  ConvergenceWarning, stacklevel=2)
                full = full.copy()
                full[free] = best.x
                n_iter = int(best.nit)
            lml, factor, alpha = objective(full, keep=True)
        if factor is None:
            raise param_error("noise", owner, "large enough for K_y = s^2 K + noise I to be positive definite", "",
                              shown=f"a matrix that does not factor (amplitude {objective.values(full)[p]:.4g}, "
                                    f"noise {objective.values(full)[p + 1]:.4g})",
                              hint="Raise the noise (or noise_bounds' lower end), or remove duplicate points.")
        vals = objective.values(full)
        self.kernel_ = kern
        self.lengthscales_ = np.broadcast_to(vals[:p], (d,)).copy()
        self.bandwidth_ = None if ard else float(vals[0])
        self.amplitude_ = float(vals[p])
        self.noise_ = float(vals[p + 1])
        self.log_marginal_likelihood_ = float(lml)
        self.theta_ = full[free].copy()
        self.theta_names_ = [nm for nm, f in zip(names, free) if f]
        self.n_iter_ = n_iter
        self.alpha_ = alpha
        self.X_fit_ = X
        self.y_train_mean_, self.y_train_std_ = y_mean, y_std
        self._full, self._free, self._p = full, free, p
        self._objective = objective
        self._centre = centre
        self._factor = factor
        self._squeeze = squeeze
        return self

    @staticmethod
    def _normalise(Y, normalize):
        if not normalize:
            return Y, np.zeros(Y.shape[1]), np.ones(Y.shape[1])
        mean = Y.mean(axis=0)
        std = Y.std(axis=0)
        std = np.where(std < 10 * np.finfo(np.float64).eps, 1.0, std)
        return (Y - mean) / std, mean, std

    @staticmethod
    def _median_start(X, p):
        m = median_bandwidth(X)
        if p == 1:
            return np.array([m])
        c = _feature_scales(X)
        pos = c > 0
        if not pos.any():
            return np.full(p, m)
        c = np.where(pos, c, math.sqrt(float(np.mean(c[pos] ** 2))))
        return m * c / math.sqrt(float(np.mean(c * c)))

    @staticmethod
    def _negative(objective, full, free):
        def fun(theta):
            x = full.copy()
            x[free] = theta
            lml, g = objective(x, grad=True)
            if not math.isfinite(lml):
                return math.inf, np.zeros(theta.size)
            return -lml, -g[free]
        return fun

    # ------------------------------------------------------------------ after fit
    def _check_fitted(self, what):
        if not hasattr(self, "alpha_"):
            raise EstimatorNotFittedError(f"This {_OWNER} instance is not fitted yet. Call 'fit' before '{what}'.")

    def log_marginal_likelihood(self, theta=None, eval_gradient=False):
        r"""The log marginal likelihood L of the training data at ``theta`` (and its gradient).

        Parameters
        ----------
        theta : array of shape (n_free,), optional
            Logs of the fitted hyperparameters, in the order of ``theta_names_``
            (the fixed ones keep their values). None: ``theta_``.
        eval_gradient : bool, default False
            Also return :math:`\partial L / \partial \theta` (analytic).

        Returns
        -------
        lml : float
            L in nats (of the normalised y under ``normalize_y``); -inf where
            :math:`K_y` does not factor.
        gradient : ndarray of shape (n_free,), only with eval_gradient=True
            Zero where L is -inf.
        """
        self._check_fitted("log_marginal_likelihood")
        owner = f"{_OWNER}.log_marginal_likelihood"
        eval_gradient = check_param(eval_gradient, "eval_gradient", owner, OneOf(False, True))
        if theta is None:
            if not eval_gradient:
                return self.log_marginal_likelihood_
            theta = self.theta_
        m = int(self._free.sum())
        accepts = f"an array of shape ({m},) of finite floats (the logs of {', '.join(self.theta_names_) or 'none'})"
        try:
            th = np.asarray(theta, dtype=np.float64)
        except (TypeError, ValueError):
            raise param_error("theta", owner, accepts, theta, "type") from None
        if th.shape != (m,) or not np.all(np.isfinite(th)):
            raise param_error("theta", owner, accepts, theta)
        full = self._full.copy()
        full[self._free] = th
        with self._engine_context(self.X_fit_.shape[0]):
            out = self._objective(full, grad=eval_gradient)
        if not eval_gradient:
            return float(out)
        lml, g = out
        return float(lml), g[self._free]

    def predict(self, X, return_std=False, return_cov=False):
        r"""Posterior mean :math:`s^2 k_x^T K_y^{-1} y` (an engine kernel sum on the scaled inputs).

        Parameters
        ----------
        X : array of shape (m, d)
            Query points (data units).
        return_std : bool, default False
            Also return the posterior standard deviation of the latent f,
            :math:`\sqrt{s^2 k(x, x) - s^4 k_x^T K_y^{-1} k_x}`, without the
            noise (scikit-learn's includes it; see the class Notes).
        return_cov : bool, default False
            Also return the posterior covariance of f at the queries (no
            noise); needs 8 (n m + 2 m^2) bytes within the memory budget.

        Returns
        -------
        y_mean : ndarray of shape (m,) or (m, t)
            In y's units (float64).
        y_std : ndarray of shape (m,) or (m, t), only with return_std=True
            In y's units.
        y_cov : ndarray of shape (m, m) or (m, m, t), only with return_cov=True
            In y's units squared.
        """
        self._check_fitted("predict")
        owner = f"{_OWNER}.predict"
        return_std = check_param(return_std, "return_std", owner, OneOf(False, True))
        return_cov = check_param(return_cov, "return_cov", owner, OneOf(False, True))
        if return_std and return_cov:
            raise param_error("return_cov", owner, "False when return_std=True (at most one of them)", True)
        Xq = validate_data(self, X, reset=False, dtype=[np.float64, np.float32], ensure_all_finite=False)
        _check_finite(Xq, "X", owner)
        Xq = np.asarray(Xq, dtype=np.float64)
        ell = self.lengthscales_
        U = (self.X_fit_ - self._centre) / ell
        Uq = (Xq - self._centre) / ell
        s2 = self.amplitude_
        with self._engine_context(U.shape[0]):
            mean = s2 * np.asarray(kernel_sum(self.kernel_, U, Uq, self.alpha_, memory=self.memory),
                                   dtype=np.float64).reshape(Uq.shape[0], -1)
            mean = mean * self.y_train_std_ + self.y_train_mean_
            out_mean = mean[:, 0] if self._squeeze else mean
            if return_std:
                var = self._latent_var(U, Uq, s2)
                std = np.sqrt(np.maximum(var, 0.0))[:, None] * self.y_train_std_
                return out_mean, std[:, 0] if std.shape[1] == 1 and self._squeeze else std
            if return_cov:
                cov = self._latent_cov(U, Uq, s2, owner)
                cov = cov[:, :, None] * self.y_train_std_ ** 2
                return out_mean, cov[:, :, 0] if cov.shape[2] == 1 and self._squeeze else cov
        return out_mean

    def _latent_var(self, U, Uq, s2):
        n, m = U.shape[0], Uq.shape[0]
        budget = get_options(memory=self.memory).memory
        rows = max(1, min(m, budget // max(1, 32 * n)))
        var = np.empty(m)
        for a in range(0, m, rows):
            Q = Uq[a:a + rows]
            V = self._whiten(U, Q, s2, budget)
            var[a:a + rows] = s2 * np.asarray(self.kernel_.diag(Q), dtype=np.float64) - np.einsum("ij,ij->j", V, V)
        return var

    def _latent_cov(self, U, Uq, s2, owner):
        n, m = U.shape[0], Uq.shape[0]
        budget = get_options(memory=self.memory).memory
        need = 8 * (n * m + 2 * m * m)
        if need > budget:
            raise param_error("X", owner, f"at most as many query points as fit the memory budget of "
                              f"{_size(budget)} with return_cov=True (8 (n m + 2 m^2) bytes)", Uq,
                              shown=f"{m} points, which need {_size(need)}",
                              hint="Raise the budget with kernelkit.options(memory=...), or use return_std=True.")
        V = self._whiten(U, Uq, s2, budget)
        return s2 * np.asarray(kernel_block(self.kernel_, Uq, memory=budget), dtype=np.float64) - V.T @ V

    def _whiten(self, U, Q, s2, budget):
        """L^-1 (s^2 k(U, Q)) with L = U_chol^T (n x len(Q))."""
        Kx = np.asarray(kernel_block(self.kernel_, U, Q, memory=budget), dtype=np.float64)
        Kx *= s2
        return scipy.linalg.solve_triangular(self._factor, Kx, trans="T", lower=False, check_finite=False)

