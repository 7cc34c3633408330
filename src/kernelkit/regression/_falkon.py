r"""Falkon: Nystrom kernel ridge regression and logistic regression by preconditioned conjugate gradients.

Rudi, Carratino & Rosasco, "FALKON: An optimal large scale kernel method"
(NeurIPS 2017); Meanti, Carratino, Rosasco & Rudi, "Kernel methods through the
roof" (NeurIPS 2020), whose LogisticFalkon is the classifier here.

The model is :math:`f(x) = \sum_{j=1}^M \alpha_j\, k(x, c_j)` with M
Nystrom centres :math:`c_j`. Its whole cost is the product
:math:`v \mapsto K_{nM}^\top W K_{nM} v`, one engine normal product per
conjugate gradient iteration (:func:`kernelkit.engine.prepare_normal`: each
block of data rows is evaluated against every centre once, kept in cache and
used for both factors), so the n x M matrix is never formed. (A dense
:math:`K_{nM}` is not used. Measured at n = 20,000, M = 5,000, d = 20 in
float32 on the 2-core test machine: the two matrix-vector products with it
(400 MB) took 0.033 s against 0.097 s for the one-pass product, but building
it took 0.71 s, so it pays only after about 11 iterations, and it needs
n M values of memory: 4 GB at the n = 200,000 of the benchmark, beyond the
default 1 GB budget.) Only M x M
matrices are held: K_MM and the two triangular factors of the
preconditioner, 3 M^2 float64 values.
"""

from __future__ import annotations

import math
import time

import numpy as np
import scipy.linalg
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
from .._sklearn import EstimatorNotFittedError
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import column_or_1d, validate_data

from .._options import get_options
from .._random import generator
from .._validation import (InstanceOf, Integral, OneOf, Real, check_param, check_params, check_points,
                           check_weights, param_error)
from .._xp import any_dask
from ..engine import kernel_block, kernel_sum, prepare_normal, prepare_sum
from ..engine._tiling import progress_bar
from ..kernels import KERNEL_NAMES, Kernel
from ._centers import CENTER_METHODS, select_centers

__all__ = ["FalkonRegressor", "FalkonClassifier", "FalkonIteration"]

_COMMON = {
    "penalty": Real(low=0, low_open=True),
    "n_centers": Integral(low=1) | OneOf("auto"),
    "max_iter": Integral(low=1),
    "tol": Real(low=0),
    "dtype": OneOf("float32", "float64") | None,
    "progress": OneOf(True, False) | None,
}
_KERNEL = InstanceOf(Kernel, "a Kernel object") | OneOf(*KERNEL_NAMES)

#: relative jitter of the preconditioner's Cholesky factor T = chol(K_MM + eps M mean(diag K_MM) I)
_EPS = {np.float64: 1e-12, np.float32: 1e-7}


def auto_n_centers(n):
    """The ``n_centers="auto"`` rule: ``min(n, max(100, ceil(10 sqrt(n))), 10000)`` (n = 2e5: 4,473)."""
    return int(min(n, max(100, math.ceil(10 * math.sqrt(n))), 10000))


class FalkonIteration:
    """What the ``callback`` of a Falkon estimator receives after each iteration.

    The parameters are also its attributes (``predict`` as the method).

    Parameters
    ----------
    iteration : int
        1-based: the conjugate-gradient iteration (regressor) or the Newton
        step (classifier).
    coef : ndarray of shape (M,) or (M, p)
        The current coefficients :math:`\\alpha` on the centres (float64, a copy).
    relative_residual : float
        :math:`\\max_j \\|r_j\\| / \\|b_j\\|` over the targets j of the
        preconditioned system (classifier: of the last Newton step's solve).
    elapsed : float
        Seconds since ``fit`` started.
    predict : callable
        ``predict(X)``: predictions of the current model (see :meth:`predict`).
    """

    __slots__ = ("iteration", "coef", "relative_residual", "elapsed", "_predict")

    def __init__(self, iteration, coef, relative_residual, elapsed, predict):
        self.iteration, self.coef, self.relative_residual = iteration, coef, relative_residual
        self.elapsed, self._predict = elapsed, predict

    def predict(self, X):
        """Predictions of the current model at X (classifier: decision values)."""
        return self._predict(X)

    def __repr__(self):
        return f"FalkonIteration(iteration={self.iteration}, relative_residual={self.relative_residual:.3g})"


NotFittedError = EstimatorNotFittedError   # kernelkit's and scikit-learn's at once


# --------------------------------------------------------------------------- the solver
def _tri(R, B, trans=False):
    """R^-1 B (trans: R^-T B) for an upper-triangular R."""
    return scipy.linalg.solve_triangular(R, B, lower=False, trans="T" if trans else "N", check_finite=False)


class _FalkonSystem:
    r"""The Falkon normal equations for one set of centres, solved by preconditioned CG.

    Solves, for every column j of the targets,

    .. math::

        \big(K_{nM}^\top W_j K_{nM} + \mu K_{MM}\big)\,\alpha_j = K_{nM}^\top R_j

    (W_j = diag of the weights of column j; regression: W = sample weights,
    R = W y, mu = lambda * sum(w); a Newton step of the logistic loss: W =
    the loss's second derivative, R = W f - (its first derivative), mu = lambda * n).

    Preconditioner (Rudi et al. 2017, sec. 3 and their Algorithm 1, with the
    weights of LogisticFalkon). With s = sum_i w_i (mean over columns),
    the Nystrom approximation of the data term by the centres' own rows is

        K_nM^T W K_nM  ~  (n / M) K_MM D_M K_MM,     D_M = weights at the centres
                                                  (s/n everywhere when the centres are not rows of X)

    With T upper, T^T T = K_MM + eps I, and A upper with

        A^T A = (n / (s M)) T D_M T^T + (mu / s) I,

    B = T^-1 A^-1 satisfies B B^T = T^-1 (A^T A)^-1 T^-T = (T^T (A^T A) T)^-1
                                  = s ((n / M) K_MM D_M K_MM + mu K_MM)^-1   (up to eps),

    so B B^T is s times the inverse of the approximated system matrix and
    B^T H B ~ s I. Writing alpha = B beta, the system H alpha = K_nM^T R
    becomes the symmetric positive definite

        (1/s) B^T H B beta = (1/s) B^T K_nM^T R,           alpha = B beta,

    solved by CG on beta. For unit weights s = n, mu = lambda n and A^T A =
    T T^T / M + lambda I, which is Falkon's: the operator is
    A^-T [T^-T (K_nM^T K_nM / n + lambda K_MM) T^-1] A^-1, as in the paper's
    ``BHB(u) = A'\(T'\(KnM_times_vector(T\(A\u))/n) + lambda*(A\u))``,
    except that the penalty term uses the exact K_MM (the paper's code uses
    T^T T = K_MM + eps I there): eps then changes only the conditioning, not
    the solution, and with M = n the solution is exact kernel ridge regression.
    """

    def __init__(self, kernel, X, C, indices, opts, dtype, operators=None):
        self.n, self.M = X.shape[0], C.shape[0]
        self.indices = indices
        if operators is not None:   # X a dask array: the products run on the cluster (kernelkit.dask._regression)
            self.normal, self.K_Mn, self.K_nM = operators.normal, operators.K_Mn, operators.K_nM
        else:
            # K_nM^T W K_nM v in one pass (each kernel value once), K_nM^T r for the right-hand side
            self.normal = prepare_normal(kernel, C, X, memory=opts.memory, threads=opts.threads,
                                         backend=opts.backend, progress=False)
            self.K_Mn = prepare_sum(kernel, X, C, memory=opts.memory, threads=opts.threads, backend=opts.backend,
                                    progress=False)
            self.K_nM = prepare_sum(kernel, C, X, memory=opts.memory, threads=opts.threads, backend=opts.backend,
                                    progress=False)   # the classifier's decision values on the data
        C64 = C.astype(np.float64)
        # the M x M matrices are held whatever the budget (3 M^2 float64 values, see the module docstring)
        K_MM = kernel_block(kernel, C64, memory=max(opts.memory, 2 * 8 * self.M * self.M + 1))
        self.K_MM = (K_MM + K_MM.T) / 2
        self.T = self._chol_T(_EPS[dtype])
        self.A = None

    def _chol_T(self, eps):
        M = self.M
        scale = max(float(np.mean(np.diag(self.K_MM))), np.finfo(float).tiny)
        jitter = eps * M * scale
        for _ in range(8):
            try:
                return scipy.linalg.cholesky(self.K_MM + jitter * np.eye(M), lower=False, check_finite=False)
            except np.linalg.LinAlgError:
                jitter *= 10
        raise param_error("kernel", None, "a positive definite kernel on the centres", None,
                          shown="a kernel matrix K_MM that stays indefinite after a jitter of "
                                f"{jitter:.3g} on its diagonal")

    def set_weights(self, W, mu):
        """Build A for weights W (n, p) or None (unit) and penalty mu: a float, or one per column of the
        right-hand sides (an array of shape (p,): a regularisation path, one factor A_j per column)."""
        n, M = self.n, self.M
        wbar = np.ones(n) if W is None else W.mean(axis=1)
        self.s = s = max(float(wbar.sum()), np.finfo(float).tiny)
        self.mu = mu
        self.W = W
        D = np.asarray(wbar[self.indices]) if self.indices is not None else np.full(M, s / n)  # (dask W: gathered)
        # G = (n / (s M)) T D T^T + (mu / s) I: one symmetric rank-M update (upper triangle, half a GEMM)
        TD = np.asfortranarray(self.T * np.sqrt(np.maximum(D, 0))[None, :])
        G = scipy.linalg.blas.dsyrk(n / (s * M), TD, lower=0)
        if np.ndim(mu) == 0:
            G[np.diag_indices(M)] += mu / s
            self.A = scipy.linalg.cholesky(G, lower=False, check_finite=False)
            self._A_cols = None
        else:
            diag = G[np.diag_indices(M)].copy()
            self._A_cols = []
            for m in np.asarray(mu, dtype=np.float64):
                G[np.diag_indices(M)] = diag + m / s
                self._A_cols.append(scipy.linalg.cholesky(G, lower=False, check_finite=False))
            self.A = None

    def _per_A(self, x, f):
        """f(A, x) with this system's A, or column by column with the path's A_j."""
        if self._A_cols is None:
            return f(self.A, x)
        return np.stack([f(A, x[:, j]) for j, A in enumerate(self._A_cols)], axis=1)

    def B(self, beta):
        return _tri(self.T, self._per_A(beta, _tri))

    def Binv(self, alpha):
        return self._per_A(self.T @ alpha, lambda A, x: A @ x)

    def _Bt(self, x):
        return self._per_A(_tri(self.T, x, trans=True), lambda A, v: _tri(A, v, trans=True))

    def op(self, beta):
        a = self.B(beta)
        g = self.normal(a, self.W) + self.mu * (self.K_MM @ a)
        return self._Bt(g) / self.s

    def rhs(self, R):
        return self._Bt(np.asarray(self.K_Mn(R), dtype=np.float64)) / self.s

    def solve(self, R, max_iter, tol, beta0=None, callback=None, bar=None):
        """CG on every column at once (each with its own step sizes). Returns (beta, relative residuals)."""
        b = self.rhs(R)
        bnorm = np.linalg.norm(b, axis=0)
        bnorm[bnorm == 0] = 1.0
        if beta0 is None:
            beta = np.zeros_like(b)
            r = b.copy()
        else:
            beta = beta0.copy()
            r = b - self.op(beta)
        p = r.copy()
        rs = np.einsum("ij,ij->j", r, r)
        history = []
        if not np.sqrt(rs).max() / 1 > 0:  # b = 0 and beta0 = 0: alpha = 0
            return beta, [0.0]
        for it in range(1, max_iter + 1):
            Ap = self.op(p)
            pAp = np.einsum("ij,ij->j", p, Ap)
            ok = (rs > 0) & (pAp > 0)
            step = np.where(ok, rs / np.where(ok, pAp, 1.0), 0.0)
            beta += step * p
            r -= step * Ap
            rs_new = np.einsum("ij,ij->j", r, r)
            rel = float(np.max(np.sqrt(rs_new) / bnorm))
            history.append(rel)
            if bar is not None:
                bar.update(1)
            stop = rel <= tol
            if callback is not None and callback(it, beta, rel):
                stop = True
            if stop:
                break
            p = r + np.where(rs > 0, rs_new / np.where(rs > 0, rs, 1.0), 0.0) * p
            rs = rs_new
        return beta, history


# --------------------------------------------------------------------------- shared estimator code
class _FalkonBase(BaseEstimator):
    _owner = "Falkon"

    def _resolve(self, X):
        """(kernel_, bandwidth_) by the library's rule: a Kernel carries its bandwidth, a name gets the median."""
        from ..compress._resolve import median_bandwidth
        from ..kernels import make_kernel
        from .._validation import kernel_bandwidth_error
        owner = self._owner
        kernel = check_param(self.kernel.lower() if isinstance(self.kernel, str) else self.kernel, "kernel", owner,
                             _KERNEL)
        if isinstance(kernel, Kernel):
            if self.bandwidth is not None:
                raise kernel_bandwidth_error(owner, self.bandwidth)
            return kernel, getattr(kernel, "bandwidth", None)
        if kernel in ("linear", "polynomial"):
            if self.bandwidth is not None:
                raise param_error("bandwidth", owner, f"None for the {kernel!r} kernel (it has no bandwidth)",
                                  self.bandwidth)
            return make_kernel(kernel), None
        bw = check_param(self.bandwidth, "bandwidth", owner, Real(low=0, low_open=True) | None)
        if bw is None:   # unit bandwidth on inputs scaled by their lengthscales, else the median heuristic
            bw = 1.0 if self.lengthscales is not None else median_bandwidth(X)
        return make_kernel(kernel, bandwidth=bw), float(bw)

    def _check_common(self, X):
        owner = self._owner
        params = check_params({k: getattr(self, k) for k in _COMMON}, _COMMON, owner)
        if self.callback is not None and not callable(self.callback):
            raise param_error("callback", owner, "None or a callable taking a FalkonIteration", self.callback,
                              kind="type")
        if isinstance(self.dtype, type) or isinstance(self.dtype, np.dtype):
            dt = np.dtype(self.dtype).name
            params["dtype"] = check_param(dt, "dtype", owner, OneOf("float32", "float64"))
        return params

    def _prepare(self, X, sample_weight, params):
        """Validated X (working dtype), weights, kernel, centres and the system; sets the fitted attributes."""
        owner = self._owner
        n = X.shape[0]
        dtype = np.dtype(params["dtype"]).type if params["dtype"] else (
            np.float32 if X.dtype == np.float32 else np.float64)
        X = np.ascontiguousarray(X, dtype=dtype)
        ls = _check_lengthscales(self.lengthscales, X.shape[1], owner)
        if ls is not None:   # ARD: the isotropic kernel on x / lengthscales (a scaled copy; X is not modified)
            X = np.ascontiguousarray(X / ls.astype(dtype), dtype=dtype)
        w = None
        if sample_weight is not None:
            w = check_weights(sample_weight, n, "sample_weight", owner + ".fit", nonnegative=True, allow_2d=False)
            if not w.sum() > 0:
                raise param_error("sample_weight", owner + ".fit", "weights with a positive sum (not all zero)",
                                  sample_weight, shown=f"sum {w.sum()}")
        kernel, bw = self._resolve(X)
        M = params["n_centers"]
        M_given = M
        if M == "auto":
            M = auto_n_centers(n)
        centers = self.centers
        if isinstance(centers, str):
            centers = check_param(centers.lower(), "centers", owner, OneOf(*CENTER_METHODS))
            if M > n:
                raise param_error("n_centers", owner, f"an int in [1, n_samples = {n}] or 'auto'", M_given,
                                  hint="Use fewer centres, or pass the centres themselves as an array.")
        else:
            M = None if M_given == "auto" else M
            if ls is not None:
                centers = check_points(centers, "centers", owner) / ls
        rng = generator(self.random_state, owner)
        C, idx = select_centers(X, M, method=centers, kernel=kernel, penalty=params["penalty"], random_state=rng,
                                owner=owner)
        C = np.ascontiguousarray(C, dtype=dtype)
        kernel._check_features(X.shape[1], owner)
        opts = get_options(memory=self.memory, threads=self.threads, backend=self.backend, progress=self.progress)
        system = _FalkonSystem(kernel, X, C, idx, opts, dtype)
        self.kernel_, self.bandwidth_ = kernel, bw
        self.lengthscales_ = ls
        self._centers_work = C   # the centres as the kernel sees them (scaled by the lengthscales)
        self.centers_ = C if ls is None else (C * ls).astype(dtype)
        self.center_indices_ = idx
        self.n_centers_ = C.shape[0]
        self.dtype_ = np.dtype(dtype)
        return X, w, system, opts

    def _decision(self, X):
        if not hasattr(self, "coef_"):
            raise NotFittedError(f"This {type(self).__name__} instance is not fitted yet. Call 'fit' first.")
        X = validate_data(self, X, dtype=[np.float64, np.float32], reset=False)
        X = self._scaled(check_points(X, "X", f"{self._owner}.predict"))
        return np.asarray(kernel_sum(self.kernel_, self._centers_work, X, self.coef_, memory=self.memory,
                                     threads=self.threads, backend=self.backend), dtype=np.float64)

    def _callback_fn(self, system, t0, predict_with, shape):
        if self.callback is None:
            return None

        def cb(it, beta, rel):
            alpha = system.B(beta).reshape(shape)
            return bool(self.callback(FalkonIteration(it, alpha.copy(), rel, time.perf_counter() - t0,
                                                      lambda Z: predict_with(Z, alpha))))
        return cb

    def _predict_with(self, Z, alpha):
        Z = self._scaled(check_points(Z, "X", f"{self._owner} callback"))
        return np.asarray(kernel_sum(self.kernel_, self._centers_work, Z, alpha), dtype=np.float64)

    def _scaled(self, X):
        """X in the working dtype, divided by the fitted lengthscales (a new array when scaled)."""
        X = X.astype(self.dtype_, copy=False)
        return X if self.lengthscales_ is None else X / self.lengthscales_.astype(self.dtype_)


def _check_lengthscales(lengthscales, d, owner):
    """None, or the validated per-feature lengthscales as a float64 array of shape (d,)."""
    if lengthscales is None:
        return None
    ls = np.asarray(lengthscales, dtype=np.float64) if not isinstance(lengthscales, str) else None
    if ls is None or ls.ndim != 1 or ls.shape[0] != d or not np.all(np.isfinite(ls)) or not np.all(ls > 0):
        raise param_error("lengthscales", owner, f"None or {d} finite positive values (one per feature of X)",
                          lengthscales)
    return ls


def _check_y_finite(y, owner):
    if y is None:
        return
    ya = np.asarray(y)
    if ya.dtype.kind in "fc" and not np.isfinite(ya).all():
        bad = np.argwhere(~np.isfinite(ya))[0]
        raise param_error("y", owner, "an array of finite values", y,
                          shown=f"{ya[tuple(bad)]} at index {tuple(int(b) for b in bad)}")


_DOC_PARAMS = r"""
    kernel : str or Kernel, default "gaussian"
        A kernel name ("gaussian", "laplace", "matern32", ...) or any
        kernelkit Kernel object (which carries its bandwidth; ``bandwidth``
        must then stay None).
    penalty : float > 0
        :math:`\lambda`, in Falkon's scaling (see the objective above): the
        data term is an average over the n points, so :math:`\lambda`
        corresponds to scikit-learn's ``alpha = lambda * n``
        (:class:`sklearn.kernel_ridge.KernelRidge` minimises
        :math:`\|K\alpha - y\|^2 + \mathrm{alpha}\,\alpha^\top K \alpha`).
        Units: those of the kernel matrix's eigenvalues divided by n
        (the kernel is unitless).
    n_centers : int or "auto", default "auto"
        M, the number of Nystrom centres, in [1, n] for the sampled
        methods. "auto": ``min(n, max(100, ceil(10 sqrt(n))), 10000)``.
        Ignored for an array ``centers`` (it must then be "auto" or equal
        its number of rows).
    bandwidth : float > 0 or None
        For a kernel name: the bandwidth (data units; for the Gaussian
        :math:`\exp(-\|x-y\|^2 / (2\sigma^2))` it is :math:`\sigma`); None:
        the median heuristic on X (:func:`kernelkit.median_bandwidth`),
        computed in ``fit``.
    centers : {"uniform", "leverage", "kmeans"} or array of shape (M, d), default "uniform"
        How the centres are chosen (:func:`kernelkit.regression.select_centers`):
        uniformly without replacement, by approximate ridge leverage scores
        (at ``penalty``), k-means centres, or given (data units).
    lengthscales : array of shape (d,) or None, default None
        Per-feature lengthscales (ARD, data units of each feature): the kernel
        is applied to :math:`x / \ell` (feature k divided by
        :math:`\ell_k`), so the engine stays isotropic and
        :math:`k_\ell(x, x') = k(x / \ell, x' / \ell)`; with a kernel name
        and ``bandwidth=None`` the bandwidth is then 1 (the lengthscales are
        the per-feature bandwidths). For example the ``lengthscales_`` of
        :class:`kernelkit.regression.GaussianProcessRegressor` fitted on a
        subsample by marginal likelihood. None: no scaling.
    callback : callable or None
        Called as ``callback(state)`` with a :class:`FalkonIteration` after
        every iteration (``state.iteration``, ``state.coef``,
        ``state.relative_residual``, ``state.elapsed``, ``state.predict(X)``:
        for a validation error). Returning True stops the solver.
    random_state : None, int, SeedSequence or Generator
        Seeds the choice of centres (resolved in ``fit``).
    dtype : {"float32", "float64"} or None
        Precision of the kernel sums (and of the stored centres). None: that
        of X (float32 X stays float32). The conjugate-gradient vectors, the
        M x M factorisations and the solution are always float64: float32
        only halves the cost of the kernel sums, and the relative residual
        then levels off near 1e-5 (the accuracy of float32 sums).
    memory, threads, backend, progress :
        Engine options for the kernel sums (see :func:`kernelkit.kernel_sum`;
        None: the current :func:`kernelkit.options`). ``progress``: a tqdm bar
        over the iterations, drawn when the fit lasts more than a second."""


class FalkonRegressor(RegressorMixin, _FalkonBase):
    r"""Nystrom kernel ridge regression solved by Falkon's preconditioned conjugate gradients.

    Minimises, over :math:`f(x) = \sum_{j=1}^M \alpha_j k(x, c_j)`,

    .. math::

        \frac{1}{\sum_i w_i} \sum_{i=1}^n w_i\,\big(f(x_i) - y_i\big)^2
        + \lambda\, \alpha^\top K_{MM}\, \alpha ,

    with unit weights :math:`\frac1n \|K_{nM}\alpha - y\|^2 + \lambda \alpha^\top K_{MM}\alpha`,
    Falkon's objective. **Penalty scaling**: :math:`\lambda` multiplies an
    *average* loss, so it is :math:`n` times smaller than the ``alpha`` of
    scikit-learn's KernelRidge / Ridge for the same model
    (``alpha = penalty * n``); with M = n centres the solution is exact
    kernel ridge regression, :math:`(K + \lambda n I)\,\alpha = y`. No
    intercept is fitted (centre y first if its mean matters to you).

    The normal equations :math:`(K_{nM}^\top W K_{nM} + \lambda (\textstyle\sum w) K_{MM})\alpha
    = K_{nM}^\top W y` are solved by conjugate gradients preconditioned with
    :math:`B = T^{-1}A^{-1}`, :math:`T = \mathrm{chol}(K_{MM} + \epsilon I)`,
    :math:`A = \mathrm{chol}(T T^\top / M + \lambda I)` (upper factors; the
    derivation is in the source). Each iteration costs one engine normal
    product, n x M kernel values each computed once
    (:func:`kernelkit.engine.prepare_normal`, X and the centres prepared
    once), and a few M x M triangular solves; the n x M matrix is never
    formed. Several targets are solved together.

    Parameters
    ----------
    %(params)s
    max_iter : int, default 20
        Maximum number of conjugate-gradient iterations (Falkon's default is
        20; the preconditioned system usually needs 10 to 30).
    tol : float >= 0, default 1e-6
        Stop when the relative residual :math:`\max_j \|r_j\| / \|b_j\|` of
        the preconditioned system falls to ``tol``.

    Attributes
    ----------
    coef_ : ndarray of shape (M,) or (M, p)
        :math:`\alpha`, the coefficients on the centres (float64).
    centers_ : ndarray of shape (M, d)
        The centres :math:`c_j` (data units, in ``dtype_``).
    lengthscales_ : ndarray of shape (d,) or None
        The validated ``lengthscales`` (float64), or None.
    center_indices_ : ndarray of shape (M,) or None
        Rows of X that are the centres (None for k-means or given centres).
    n_centers_ : int
    kernel_ : Kernel
        The kernel used (for a name: at ``bandwidth_``).
    bandwidth_ : float or None
    dtype_ : numpy dtype
        Precision of the kernel sums.
    n_iter_ : int
        CG iterations run.
    residuals_ : ndarray of shape (``n_iter_``,)
        Relative residual after each iteration.
    n_features_in_ : int
    penalty_scaled_ : float
        :math:`\lambda \sum_i w_i`, the ridge on :math:`K_{MM}` in the normal equations.

    Notes
    -----
    ``predict(X, return_std=True)`` also returns the posterior standard
    deviation of the subset-of-regressors (SoR) Gaussian-process
    approximation with noise variance :math:`\lambda n`,
    :math:`\sigma^2(x) = \lambda n\, k_{xM} (K_{nM}^\top K_{nM} + \lambda n K_{MM})^{-1} k_{Mx}`
    (in units of the kernel; it is the variance of the SoR model, which
    underestimates the exact GP's far from the centres). It forms
    :math:`K_{nM}^\top K_{nM}` once (n M^2 flops, by blocks within the memory
    budget) on the first call.

    ``sample_weight`` in ``fit`` weights the squared errors as written above
    (an integer weight is the same as repeating the point, up to the choice
    of centres).
    """

    _owner = "FalkonRegressor"

    def __init__(self, kernel="gaussian", penalty=1e-6, n_centers="auto", *, bandwidth=None, centers="uniform",
                 lengthscales=None, max_iter=20, tol=1e-6, callback=None, random_state=None, dtype=None, memory=None,
                 threads=None, backend=None, progress=None):
        self.kernel = kernel
        self.penalty = penalty
        self.n_centers = n_centers
        self.bandwidth = bandwidth
        self.centers = centers
        self.lengthscales = lengthscales
        self.max_iter = max_iter
        self.tol = tol
        self.callback = callback
        self.random_state = random_state
        self.dtype = dtype
        self.memory = memory
        self.threads = threads
        self.backend = backend
        self.progress = progress

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        return tags

    def fit(self, X, y, sample_weight=None):
        """Fit the Nystrom model.

        Parameters
        ----------
        X : array of shape (n, d)
            Training points (data units). A dask array (row chunks) runs the
            CG products on the cluster (see docs/dask.md, "Falkon regression").
        y : array of shape (n,) or (n, p)
            Targets (finite); NumPy or dask with a dask X.
        sample_weight : array of shape (n,), optional
            Non-negative weights of the squared errors, positive sum.

        Returns
        -------
        self
        """
        t0 = time.perf_counter()
        owner = self._owner
        if any_dask(X, y, sample_weight):   # data on a dask cluster: the products run there
            from ..dask._regression import falkon_start
            X, Y, squeeze, w, system, opts, params = falkon_start(self, X, y, sample_weight)
        else:
            X, Y, squeeze, w, system, opts, params = self._start(X, y, sample_weight)
        mu = params["penalty"] * (X.shape[0] if w is None else float(w.sum()))
        system.set_weights(None if w is None else w[:, None], mu)
        R = Y if w is None else Y * w[:, None]
        shape = (system.M,) if squeeze else (system.M, Y.shape[1])
        cb = self._callback_fn(system, t0, self._predict_with, shape)
        with progress_bar(params["max_iter"], bool(opts.progress), f"{owner} CG") as bar:
            beta, hist = system.solve(R, params["max_iter"], params["tol"], callback=cb, bar=bar)
        self.coef_ = system.B(beta).reshape(shape)
        self.n_iter_ = len(hist)
        self.residuals_ = np.asarray(hist)
        self.penalty_scaled_ = mu
        self._system_for_std = (system.K_MM, mu)
        self._sor = None
        self._X_fit = X  # for the SoR variance (a reference, not a copy)
        return self

    def _start(self, X, y, sample_weight):
        """Validated (X, Y (n, p), squeeze, weights, system, options, params) for a fit."""
        owner = self._owner
        params = self._check_common(X)
        _check_y_finite(y, owner + ".fit")
        X, y = validate_data(self, X, y, dtype=[np.float64, np.float32], y_numeric=True, multi_output=True,
                             reset=True)
        X = check_points(X, "X", owner + ".fit")
        y = np.asarray(y, dtype=np.float64)
        squeeze = y.ndim == 1
        X, w, system, opts = self._prepare(X, sample_weight, params)
        return X, y.reshape(len(y), -1), squeeze, w, system, opts, params

    def _fit_path(self, X, y, penalties, sample_weight=None):
        """Coefficients for every penalty of a path, sharing the centres, the kernel matrices and the normal
        products: all penalties are columns of one conjugate-gradient solve (each with its own
        preconditioner factor A_j; as many factors at a time as the memory budget holds, 8 M^2 bytes each).
        ``self.penalty`` is ignored. Returns a list of coefficient arrays (M,) or (M, p), one per penalty."""
        X, Y, squeeze, w, system, opts, params = self._start(X, y, sample_weight)
        s = X.shape[0] if w is None else float(w.sum())
        q, M = Y.shape[1], system.M
        group = int(max(1, opts.memory // (8 * M * M)))
        coefs = []
        for g0 in range(0, len(penalties), group):
            lams = np.asarray(penalties[g0:g0 + group], dtype=np.float64)
            system.set_weights(None if w is None else w[:, None], np.repeat(lams * s, q))
            R = np.tile(Y if w is None else Y * w[:, None], (1, len(lams)))
            beta, _ = system.solve(R, params["max_iter"], params["tol"])
            alpha = system.B(beta)
            for j in range(len(lams)):
                a = alpha[:, j * q:(j + 1) * q]
                coefs.append(a[:, 0].copy() if squeeze else a.copy())
        return coefs

    def predict(self, X, return_std=False):
        """Predictions :math:`f(x) = \\sum_j \\alpha_j k(x, c_j)` (one kernel sum).

        Parameters
        ----------
        X : array of shape (m, d)
        return_std : bool, default False
            Also return the subset-of-regressors posterior standard deviation
            (see Notes of the class).

        Returns
        -------
        y : ndarray of shape (m,) or (m, p)
        std : ndarray of shape (m,), only with return_std
        """
        if any_dask(X, getattr(self, "_X_fit", None)):   # dask X: a lazy dask array
            from ..dask._regression import falkon_predict
            return falkon_predict(self, X, return_std)
        f = self._decision(X)
        if not return_std:
            return f
        Xv = check_points(validate_data(self, X, dtype=[np.float64, np.float32], reset=False), "X",
                          "FalkonRegressor.predict")
        L = self._sor_factor()
        K_xM = np.asarray(self.kernel_(self._scaled(Xv).astype(np.float64), self._centers_work.astype(np.float64)),
                          np.float64)
        Z = scipy.linalg.solve_triangular(L, K_xM.T, lower=True, check_finite=False)
        mu = self.penalty_scaled_
        var = mu * np.einsum("ij,ij->j", Z, Z)
        return f, np.sqrt(np.maximum(var, 0.0))

    def _sor_factor(self):
        """Cholesky factor (lower) of K_nM^T K_nM + mu K_MM, formed once by row blocks within the memory budget."""
        if self._sor is None:
            K_MM, mu = self._system_for_std
            X, C = self._X_fit, self._centers_work.astype(np.float64)
            M = C.shape[0]
            H = mu * K_MM
            budget = get_options(memory=self.memory).memory
            block = int(max(1, min(X.shape[0], budget // max(1, 16 * M))))
            for a in range(0, X.shape[0], block):
                Kb = np.asarray(self.kernel_(X[a:a + block].astype(np.float64), C), np.float64)
                H += Kb.T @ Kb
            H[np.diag_indices(M)] += 1e-12 * M * float(np.mean(np.diag(H)))
            self._sor = scipy.linalg.cholesky((H + H.T) / 2, lower=True, check_finite=False)
        return self._sor


FalkonRegressor.__doc__ = FalkonRegressor.__doc__.replace("%(params)s", _DOC_PARAMS.strip("\n").lstrip())


#: CG iterations per Newton step on the penalty path (before the final penalty); relative change of the
#: objective at which the Newton steps stop
_PATH_CG_ITER, _NEWTON_RTOL = 5, 1e-7


def _sigmoid(z):
    return 0.5 * (1.0 + np.tanh(0.5 * z))


class FalkonClassifier(ClassifierMixin, _FalkonBase):
    r"""Kernel logistic regression on Nystrom centres (LogisticFalkon, Meanti et al. 2020).

    Minimises, over :math:`f(x) = \sum_j \alpha_j k(x, c_j)` and for labels
    :math:`y_i \in \{-1, +1\}`,

    .. math::

        \frac{1}{\sum_i w_i} \sum_{i=1}^n w_i \log\big(1 + e^{-y_i f(x_i)}\big)
        + \frac{\lambda}{2}\, \alpha^\top K_{MM}\, \alpha

    by Newton's method: each step solves the weighted system
    :math:`(K_{nM}^\top D K_{nM} + \lambda (\textstyle\sum w) K_{MM})\,\alpha_{new}
    = K_{nM}^\top (D f - \ell')` (D: the loss's second derivatives
    :math:`w_i p_i (1-p_i)`, :math:`\ell'`: its first derivatives) with the
    regressor's preconditioned conjugate gradients, the preconditioner
    rebuilt from D at the centres (as LogisticFalkon does). As in
    LogisticFalkon, the penalty follows a decreasing path: the first Newton
    steps use ``max(penalty, 1e-3) / 10^t`` until it reaches ``penalty``
    (with at most 5 CG iterations each: their solutions only start the next
    step), then up to ``newton_iter`` steps in all at ``penalty``, each with
    up to ``max_iter`` CG iterations. More than two
    classes: one-vs-rest (one column per class, solved together), with
    ``predict_proba`` the normalised one-vs-rest sigmoids. Penalty scaling
    as :class:`FalkonRegressor` (:math:`\lambda` multiplies an average loss).

    Parameters
    ----------
    %(params)s
    max_iter : int, default 20
        Maximum CG iterations per Newton step at the final penalty.
    tol : float >= 0, default 1e-6
        Relative residual at which each Newton step's CG stops.
    newton_iter : int, default 12
        Maximum number of Newton steps (including the penalty path's). It
        stops earlier when, at the final penalty, the objective changes by
        less than 1e-7 relative from one step to the next.

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
    coef_ : ndarray of shape (M,) (two classes) or (M, n_classes)
    centers_, center_indices_, n_centers_, lengthscales_, kernel_, bandwidth_, dtype_, n_features_in_ :
        As in :class:`FalkonRegressor`.
    n_iter_ : int
        Newton steps run.
    objective_ : ndarray of shape (``n_iter_``,)
        The objective after each Newton step (summed over the one-vs-rest columns).
    """

    _owner = "FalkonClassifier"

    def __init__(self, kernel="gaussian", penalty=1e-6, n_centers="auto", *, bandwidth=None, centers="uniform",
                 lengthscales=None, max_iter=20, tol=1e-6, newton_iter=12, callback=None, random_state=None, dtype=None,
                 memory=None, threads=None, backend=None, progress=None):
        self.kernel = kernel
        self.penalty = penalty
        self.n_centers = n_centers
        self.bandwidth = bandwidth
        self.centers = centers
        self.lengthscales = lengthscales
        self.max_iter = max_iter
        self.tol = tol
        self.newton_iter = newton_iter
        self.callback = callback
        self.random_state = random_state
        self.dtype = dtype
        self.memory = memory
        self.threads = threads
        self.backend = backend
        self.progress = progress

    def fit(self, X, y, sample_weight=None):
        """Fit the classifier.

        Parameters
        ----------
        X : array of shape (n, d)
        y : array of shape (n,)
            Class labels (at least two classes).
        sample_weight : array of shape (n,), optional
            Non-negative weights of the losses, positive sum.

        Returns
        -------
        self
        """
        t0 = time.perf_counter()
        owner = self._owner
        params = self._check_common(X)
        n_newton = check_param(self.newton_iter, "newton_iter", owner, Integral(low=1))
        if any_dask(X, y, sample_weight):   # data on a dask cluster: the Newton steps' products run there
            from ..dask._regression import falkon_classifier_fit
            return falkon_classifier_fit(self, X, y, sample_weight, n_newton, t0)
        X, y = validate_data(self, X, y, dtype=[np.float64, np.float32], reset=True)
        X = check_points(X, "X", owner + ".fit")
        check_classification_targets(y)
        y = column_or_1d(y, warn=True)
        classes, yi = np.unique(y, return_inverse=True)
        if len(classes) < 2:
            raise param_error("y", owner + ".fit", "labels of at least two classes", y,
                              shown=f"only one class, {classes[0]!r}")
        n = X.shape[0]
        Ypm = (np.where(yi == 1, 1.0, -1.0)[:, None] if len(classes) == 2
               else np.where(yi[:, None] == np.arange(len(classes))[None, :], 1.0, -1.0))
        X, w, system, opts = self._prepare(X, sample_weight, params)
        sw = np.ones(n) if w is None else w
        s = float(sw.sum())
        lam = params["penalty"]
        path = []
        lam_t = max(lam, 1e-3)
        while lam_t > lam * (1 + 1e-12) and len(path) < n_newton - 1:
            path.append(lam_t)
            lam_t /= 10
        path += [lam] * (n_newton - len(path))
        squeeze = len(classes) == 2
        shape = (system.M,) if squeeze else (system.M, Ypm.shape[1])
        alpha = np.zeros((system.M, Ypm.shape[1]))
        F = np.zeros_like(Ypm)
        objective = []
        last = None
        with progress_bar(n_newton, bool(opts.progress), f"{owner} Newton") as bar:
            for t, lam_t in enumerate(path, 1):
                P = _sigmoid(Ypm * F)                          # probability of the observed label
                D = sw[:, None] * P * (1 - P)                  # second derivative of the weighted loss
                G = -sw[:, None] * Ypm * (1 - P)               # first derivative
                mu = lam_t * s
                system.set_weights(np.maximum(D, 1e-12 * sw[:, None]), mu)
                beta0 = system.Binv(alpha)
                # inexact Newton on the penalty path (its solutions are only starting points)
                cg_iter = params["max_iter"] if lam_t == lam else min(params["max_iter"], _PATH_CG_ITER)
                beta, hist = system.solve(D * F - G, cg_iter, params["tol"], beta0=beta0)
                alpha = system.B(beta)
                F = np.asarray(system.K_nM(alpha), dtype=np.float64).reshape(F.shape)
                loss = float(np.sum(sw[:, None] * np.logaddexp(0.0, -Ypm * F))) / s
                obj = loss + 0.5 * lam_t * float(np.sum(alpha * (system.K_MM @ alpha)))
                objective.append(obj)
                bar.update(1)
                if self.callback is not None:
                    a = alpha.reshape(shape).copy()
                    if self.callback(FalkonIteration(t, a, hist[-1] if hist else 0.0, time.perf_counter() - t0,
                                                     lambda Z, a=a: self._predict_with(Z, a))):
                        break
                if lam_t == lam and last is not None and abs(last - obj) <= _NEWTON_RTOL * max(abs(obj), 1e-300):
                    break
                last = obj if lam_t == lam else None
        self.classes_ = classes
        self.coef_ = alpha.reshape(shape)
        self.n_iter_ = len(objective)
        self.objective_ = np.asarray(objective)
        return self

    def decision_function(self, X):
        """:math:`f(x)`: shape (m,) for two classes (positive: ``classes_[1]``), else (m, n_classes)."""
        if any_dask(X):   # dask X: a lazy dask array
            from ..dask._regression import falkon_classifier_output
            return falkon_classifier_output(self, X, "decision")
        return self._decision(X)

    def predict_proba(self, X):
        """Class probabilities, shape (m, n_classes), rows summing to 1.

        Two classes: :math:`(1 - \\sigma(f), \\sigma(f))`; more: the one-vs-rest
        sigmoids normalised to sum to 1.
        """
        if any_dask(X):   # dask X: a lazy dask array
            from ..dask._regression import falkon_classifier_output
            return falkon_classifier_output(self, X, "proba")
        f = self._decision(X)
        if f.ndim == 1:
            p = _sigmoid(f)
            return np.column_stack([1 - p, p])
        P = _sigmoid(f)
        return P / P.sum(axis=1, keepdims=True)

    def predict(self, X):
        """The most probable class for each row of X."""
        if any_dask(X):   # dask X: a lazy dask array
            from ..dask._regression import falkon_classifier_output
            return falkon_classifier_output(self, X, "label")
        f = self._decision(X)
        if f.ndim == 1:
            return self.classes_[(f > 0).astype(int)]
        return self.classes_[np.argmax(f, axis=1)]


FalkonClassifier.__doc__ = FalkonClassifier.__doc__.replace("%(params)s", _DOC_PARAMS.strip("\n").lstrip())
