r"""Local kernel regression: Nadaraya-Watson (local constant) and local-linear, each one engine call.

With data :math:`(x_i, y_i)`, weights :math:`w_i \ge 0` and a positive kernel
:math:`k` (radial kernels of bandwidth h, their sums and positive scalings):

* :class:`NadarayaWatson`: :math:`f(x) = \sum_i w_i k(x, x_i)\,y_i / \sum_i w_i k(x, x_i)`;
* :class:`LocalLinearRegression`: :math:`f(x) = a(x)`, where
  :math:`(a, b)` minimises :math:`\sum_i w_i k(x, x_i)\,(y_i - a - b^T (x_i - x))^2`.

Both need only kernel sums at the queries: :math:`S_1, S_y` for
Nadaraya-Watson; :math:`\sum k,\ \sum k x,\ \sum k x x^T,\ \sum k y,\ \sum k x y`
for local-linear. Each is *one* :func:`kernelkit.engine.kernel_sum` call with
a weight matrix holding those columns, so the n x m kernel values are never
stored. ``bandwidth="loo"`` chooses the bandwidth by exact leave-one-out
cross-validation over a grid (one engine call per grid bandwidth): dropping
the i-th term of every sum at :math:`x_i` only removes its own term,
:math:`w_i k(x_i, x_i)` from :math:`S_1` (and :math:`w_i k(x_i, x_i) y_i`
from :math:`S_y`), because its offset :math:`x_i - x_i` is 0.
statsmodels' ``KernelReg`` (``reg_type='lc'`` / ``'ll'``) is the peer.
"""

from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.utils.validation import validate_data

from .._options import get_options
from .._sklearn import RegressorMixin
from .._validation import Integral, OneOf, Real, check_param, check_params, kernel_bandwidth_error, param_error
from ..engine import kernel_logsumexp, kernel_sum
from ..kernels import Kernel, make_kernel
from ._exact import _NotFittedError, _check_finite, _check_fit_data, _resolve_kernel, _weighted_median_bandwidth

__all__ = ["NadarayaWatson", "LocalLinearRegression"]

_BANDWIDTH = Real(low=0, low_open=True) | OneOf("loo") | None
_CONSTRAINTS = {"bandwidth": _BANDWIDTH, "cv_grid": Integral(low=2)}


def _tiny(dtype):
    """Below ``sum(w) * _tiny``, kernel sums have underflowed: those queries are redone in the log domain."""
    return 2.0 ** -100 if dtype == np.float32 else 2.0 ** -960


def _log_domain_nw(kernel, X, Y, w, Q, opts):
    r"""Nadaraya-Watson at the queries Q from log-domain sums (exact where every k(q, x_i) underflows).

    :math:`f = \exp(L_+ - L_1) - \exp(L_- - L_1)` with
    :math:`L_1 = \log\sum w k`, :math:`L_\pm = \log\sum w k\,y^\pm`.
    """
    t = Y.shape[1]
    with np.errstate(divide="ignore"):
        LW = np.log(np.column_stack([w, w[:, None] * np.maximum(Y, 0), w[:, None] * np.maximum(-Y, 0)]))
    L = kernel_logsumexp(kernel, X.astype(np.float64), Q.astype(np.float64), LW, **opts)
    return np.exp(L[:, 1:1 + t] - L[:, :1]) - np.exp(L[:, 1 + t:] - L[:, :1])


class _LocalRegression(RegressorMixin, BaseEstimator):
    """Shared fit / predict / score of the local kernel regressions (subclasses: ``_sums`` and ``_solve``)."""

    _owner = "local regression"
    #: below this fraction of a point's own term, the sum of its other terms is not taken as (engine sum -
    #: own term), which cancels: those points are computed from dense blocks without it (_loo_direct)
    _loo_reliable = 1e-6

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        return tags

    def _engine_opts(self):
        return dict(memory=self.memory, threads=self.threads, backend=self.backend, progress=self.progress)

    def _check_cv_range(self):
        owner, value, accepts = self._owner, self.cv_range, "two floats 0 < low < high"
        if not (isinstance(value, (tuple, list)) and all(Real().type_ok(v) for v in value)):
            raise param_error("cv_range", owner, accepts, value, "type")
        if not (len(value) == 2 and all(Real(low=0, low_open=True).value_ok(v) for v in value)
                and value[0] < value[1]):
            raise param_error("cv_range", owner, accepts, value)
        return float(value[0]), float(value[1])

    def _check_params(self):
        """Subclasses check their own extra parameters here."""

    def fit(self, X, y, sample_weight=None):
        """Store the data and resolve the kernel (choosing the bandwidth by leave-one-out for "loo").

        Parameters
        ----------
        X : array of shape (n, d)
            Training points (data units); float32 is kept, other types become float64.
        y : array of shape (n,) or (n, n_targets)
            Targets (any units).
        sample_weight : array of shape (n,), optional
            Non-negative weights with a positive sum (unitless), multiplying
            each point's kernel weight; an integer weight is the same as
            repeating the row (for a bandwidth given or from the median
            heuristic; "loo" leaves out one row at a time).

        Returns
        -------
        self : estimator
        """
        owner = self._owner
        params = check_params(vars(self), _CONSTRAINTS, owner)
        cv_range = self._check_cv_range()
        self._check_params()
        bw = params["bandwidth"]
        if bw == "loo" and isinstance(self.kernel, Kernel):
            raise kernel_bandwidth_error(owner, bw, hint=(
                "bandwidth='loo' chooses the bandwidth of a kernel given by name, e.g. "
                f"{type(self).__name__}(kernel='gaussian', bandwidth='loo')."))
        X, Y, w, squeeze = _check_fit_data(self, X, y, sample_weight, f"{owner}.fit")
        w = np.ones(X.shape[0]) if w is None else w
        kernel, h = _resolve_kernel(self.kernel, None if bw == "loo" else bw, X, w, owner, positive=True)
        self._X, self._Y, self._w, self._squeeze = X, Y, w, squeeze
        if bw == "loo":
            name = self.kernel.lower()
            hs = h * np.geomspace(cv_range[0], cv_range[1], params["cv_grid"])
            if X.shape[0] >= 2 and np.count_nonzero(w) >= 2:
                scores = np.array([self._loo_score(make_kernel(name, bandwidth=float(b))) for b in hs])
                h = float(hs[int(np.argmin(np.where(np.isnan(scores), np.inf, scores)))])
            else:  # nothing to leave out
                scores = np.full(hs.size, np.nan)
            self.cv_bandwidths_ = hs
            self.cv_scores_ = scores
            kernel = make_kernel(name, bandwidth=h)
        self.kernel_ = kernel
        self.bandwidth_ = h
        return self

    # ---------------------------------------------------------------- evaluation
    def _predict_at(self, kernel, Q, loo=False):
        """Predictions (m, t) at the queries Q (the training points themselves when ``loo``)."""
        X, Y, w = self._X, self._Y, self._w
        opts = self._engine_opts()
        sums, s0, ctx, C = self._sums(kernel, Q, opts, loo)
        thresh = w.sum() * _tiny(sums.dtype)
        ok = s0 > thresh
        out = np.empty((Q.shape[0], Y.shape[1]))
        if loo:  # subtract each point's own term w_i k(x_i, x_i) C_i from every sum, before any centring
            own = w * np.asarray(kernel.diag(X), dtype=np.float64)
            rest = sums.astype(np.float64) - own[:, None] * C
            good = rest[:, 0] > self._loo_reliable * np.maximum(own, thresh)
            if good.any():
                out[good] = self._solve(rest[good], Q[good], ctx)
            if not good.all():
                out[~good] = self._loo_direct(kernel, np.flatnonzero(~good), ctx)
            return out
        if ok.any():
            out[ok] = self._solve(sums[ok], Q[ok], ctx)
        if not ok.all():
            out[~ok] = _log_domain_nw(kernel, X, Y, w, Q[~ok], opts)
        return out

    def _loo_direct(self, kernel, idx, ctx):
        """Leave-one-out predictions at the points ``idx`` from dense log-kernel blocks, own term removed.

        For the points whose other terms are below ``_loo_reliable`` of their own, where subtracting the
        own term from the engine's sums would cancel: ``log k + log w`` of the others, shifted by its
        maximum per point (a common factor of every sum), then the same moments and solve. In chunks of
        points within the memory budget. A point none of whose others has a representable kernel value
        is predicted by the weighted mean of the others' targets.
        """
        X = self._X.astype(np.float64)
        w, Y = self._w, self._Y
        n = X.shape[0]
        C = self._columns(X, ctx)
        budget = get_options(memory=self.memory).memory
        rows = max(1, min(idx.size, budget // (8 * 3 * max(n, C.shape[1]))))
        with np.errstate(divide="ignore"):
            logw = np.log(w)
        out = np.empty((idx.size, Y.shape[1]))
        for a in range(0, idx.size, rows):
            part = idx[a:a + rows]
            L = np.array(kernel.log_block(X, X[part]), dtype=np.float64) + logw[:, None]
            L[part, np.arange(part.size)] = -np.inf
            top = L.max(axis=0)
            fine = np.isfinite(top)
            res = np.empty((part.size, Y.shape[1]))
            if fine.any():
                S = np.exp(L[:, fine] - top[fine]).T @ C
                res[fine] = self._solve(S, X[part[fine]], ctx)
            if not fine.all():
                lost = part[~fine]
                res[~fine] = (((w @ Y)[None, :] - w[lost, None] * Y[lost])
                              / np.maximum(w.sum() - w[lost], 1e-300)[:, None])
            out[a:a + rows] = res
        return out

    def _sums(self, kernel, Q, opts, loo):
        """``(S, S_0, ctx, C)``: the engine's sums of ``w * C`` at the queries Q, their first column, the
        frame of the columns and the columns C at the data."""
        X = self._X.astype(np.float64) if (loo or self._float64_sums) else self._X
        ctx = self._context(kernel)
        C = self._columns(X, ctx)
        S = kernel_sum(kernel, X, Q.astype(np.float64) if self._float64_sums else Q, self._w[:, None] * C, **opts)
        return S, S[:, 0].astype(np.float64), ctx, C

    def _loo_score(self, kernel):
        """Weighted mean squared leave-one-out error (units of y^2, averaged over targets)."""
        X, Y, w = self._X, self._Y, self._w
        pred = self._predict_at(kernel, X.astype(np.float64), loo=True)
        return float(np.sum(w[:, None] * (Y - pred) ** 2) / (w.sum() * Y.shape[1]))

    def _check_fitted(self, what):
        if not hasattr(self, "kernel_"):
            raise _NotFittedError(f"This {type(self).__name__} instance is not fitted yet. Call 'fit' before "
                                 f"'{what}'.")

    def predict(self, X):
        """The regression function at each row of X.

        Parameters
        ----------
        X : array of shape (m, d)
            Query points (data units).

        Returns
        -------
        y_pred : ndarray of shape (m,) or (m, n_targets)
            float32 when the training and query points are both float32, else float64.
        """
        self._check_fitted("predict")
        Q = validate_data(self, X, reset=False, dtype=[np.float64, np.float32], ensure_all_finite=False)
        _check_finite(Q, "X", f"{self._owner}.predict")
        out = self._predict_at(self.kernel_, Q)
        dt = np.float32 if (Q.dtype == np.float32 and self._X.dtype == np.float32) else np.float64
        out = out.astype(dt, copy=False)
        return out[:, 0] if self._squeeze else out



_COMMON_PARAMS = r"""    kernel : str or Kernel, default "gaussian"
        A positive kernel: a radial kernel name ("gaussian", "laplace",
        "matern32", "imq", "cauchy", ...) or a positive Kernel object (radial
        kernels, their sums and positive scalings), which carries its own
        bandwidth.
    bandwidth : float, "loo" or None, default None
        For a kernel given by name: its bandwidth h in data units (for the
        Gaussian, the standard deviation sigma of
        :math:`\exp(-\lVert x - y\rVert^2 / (2\sigma^2))`). None: the median
        heuristic on X (:func:`kernelkit.median_bandwidth`, pairs weighted by
        :math:`w_i w_j`), the library's default, which smooths a lot in low
        dimension: "loo" is usually the better choice for regression.
        "loo": minimise the exact leave-one-out mean squared error
        :math:`\sum_i w_i (y_i - f_{-i}(x_i))^2 / \sum_i w_i` over
        ``cv_grid`` bandwidths spaced evenly in log between ``cv_range``
        times the median heuristic (one engine kernel sum of the data at
        themselves per grid bandwidth). Must be None for a Kernel object.
    cv_grid : int, default 24
        Number of bandwidths tried by "loo" (>= 2).
    cv_range : tuple of two floats, default (0.01, 2.0)
        Smallest and largest bandwidth tried by "loo", as multiples of the median heuristic."""

_COMMON_ATTRS = r"""    kernel_ : Kernel
        The kernel used (with the chosen bandwidth).
    bandwidth_ : float or None
        Its bandwidth (data units); None for a Kernel object without one (a sum of kernels).
    cv_bandwidths_ : ndarray of shape (cv_grid,), only for bandwidth="loo"
        The bandwidths tried (data units).
    cv_scores_ : ndarray of shape (cv_grid,), only for bandwidth="loo"
        Leave-one-out mean squared error at each (units of y^2); ``bandwidth_`` minimises it.
    n_features_in_ : int"""

_ENGINE = r"""    memory, threads, backend, progress :
        Engine options (see :func:`kernelkit.kernel_sum`); None = defaults."""


class NadarayaWatson(_LocalRegression):
    __doc__ = r"""Nadaraya-Watson kernel regression (local constant): a ratio of two kernel sums.

    .. math::

        f(x) = \frac{\sum_i w_i\,k(x, x_i)\,y_i}{\sum_i w_i\,k(x, x_i)}

    computed with one :func:`kernelkit.engine.kernel_sum` call (weight
    columns :math:`w` and :math:`w y`). Where every kernel value underflows
    (a query far from the data compared with the bandwidth), the same ratio is
    computed exactly in the log domain (:func:`kernelkit.kernel_logsumexp`),
    which tends to the target of the nearest point. Leave-one-out for
    ``bandwidth="loo"`` is exact and cheap:
    :math:`f_{-i}(x_i) = (S_y(x_i) - w_i k(x_i, x_i) y_i) / (S_1(x_i) - w_i k(x_i, x_i))`;
    at a point whose other terms are below 1e-6 of its own (no close
    neighbour at that bandwidth, where the subtraction would cancel), the sums
    over the others are formed directly, from a dense block of log-kernel
    values without the own term.

    Parameters
    ----------
""" + _COMMON_PARAMS + "\n" + _ENGINE + r"""

    Attributes
    ----------
""" + _COMMON_ATTRS + r"""

    Examples
    --------
    >>> import numpy as np
    >>> from kernelkit.regression import NadarayaWatson
    >>> X = np.linspace(0, 1, 50)[:, None]
    >>> model = NadarayaWatson(bandwidth=0.05).fit(X, 2 * X[:, 0])
    >>> bool(abs(model.predict([[0.5]])[0] - 1.0) < 1e-6)
    True
    """

    _owner = "NadarayaWatson"

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        # the default bandwidth (median heuristic) oversmooths scikit-learn's 10-feature test regression
        # (R^2 < 0.5 there); bandwidth="loo" fits it well
        tags.regressor_tags.poor_score = True
        return tags

    def __init__(self, kernel="gaussian", *, bandwidth=None, cv_grid=24, cv_range=(0.01, 2.0), memory=None,
                 threads=None, backend=None, progress=None):
        self.kernel = kernel
        self.bandwidth = bandwidth
        self.cv_grid = cv_grid
        self.cv_range = cv_range
        self.memory = memory
        self.threads = threads
        self.backend = backend
        self.progress = progress

    _float64_sums = False

    def _context(self, kernel):
        return None

    def _columns(self, X, ctx):
        """The columns [1, y] (times w they give S_1 and S_y)."""
        return np.column_stack([np.ones(X.shape[0]), self._Y])

    def _solve(self, S, Q, ctx):
        S = S.astype(np.float64)
        return S[:, 1:] / S[:, :1]


class LocalLinearRegression(_LocalRegression):
    __doc__ = r"""Local-linear kernel regression: a weighted least-squares line per query, from one engine call.

    At each query x, :math:`f(x) = a` where :math:`(a, b)` minimises

    .. math::

        \sum_i w_i\,k(x, x_i)\,\big(y_i - a - b^T (x_i - x)\big)^2
        + \rho\,S_0(x)\,\lVert b\rVert^2 ,\qquad S_0(x) = \sum_i w_i k(x, x_i),

    the (d+1) x (d+1) normal equations built from the sums
    :math:`\sum k,\ \sum k z,\ \sum k z z^T,\ \sum k y,\ \sum k z y` of one
    :func:`kernelkit.engine.kernel_sum` call (weight matrix with those
    columns; :math:`z = (x - \bar x)/s`, the data centred at their weighted
    mean and divided by the scale s = ``bandwidth_``, or the median
    heuristic for a kernel without one). Unlike Nadaraya-Watson it has no
    bias at the boundary of the data for linear trends and reproduces
    linear functions exactly (up to the small ridge). The sums are formed
    in float64; the centring at the query is a subtraction, which loses
    about :math:`2\log_{10}(R / h)` digits for data of range R and
    bandwidth h. Queries where every kernel value underflows fall back to
    Nadaraya-Watson in the log domain (the limit of both there).
    Leave-one-out ("loo") removes each point's own term from every sum
    before centring; at a point whose other terms are below 1e-2 of its own
    (few, far neighbours: an ill-conditioned system that would amplify the
    cancellation) the sums over the others come from a dense block of
    log-kernel values without the own term.

    Parameters
    ----------
""" + _COMMON_PARAMS + r"""
    ridge : float, default 1e-8
        :math:`\rho \ge 0`, unitless: a ridge on the slope b (in units of y
        per scale s), relative to :math:`S_0`. It keeps the system solvable
        where the neighbours of a query span fewer than d directions (one
        point, collinear points): the slope in those directions shrinks to 0
        and the fit there is the local constant. 0 gives the plain local-linear
        estimator (a singular system is then solved by least squares).
""" + _ENGINE + r"""

    Attributes
    ----------
""" + _COMMON_ATTRS + r"""

    Examples
    --------
    >>> import numpy as np
    >>> from kernelkit.regression import LocalLinearRegression
    >>> X = np.linspace(0, 1, 50)[:, None]
    >>> model = LocalLinearRegression(bandwidth=0.2).fit(X, 2 * X[:, 0] + 1)
    >>> bool(abs(model.predict([[1.0]])[0] - 3.0) < 1e-6)
    True
    """

    _owner = "LocalLinearRegression"

    def __init__(self, kernel="gaussian", *, bandwidth=None, ridge=1e-8, cv_grid=24, cv_range=(0.01, 2.0),
                 memory=None, threads=None, backend=None, progress=None):
        self.kernel = kernel
        self.bandwidth = bandwidth
        self.ridge = ridge
        self.cv_grid = cv_grid
        self.cv_range = cv_range
        self.memory = memory
        self.threads = threads
        self.backend = backend
        self.progress = progress

    def _check_params(self):
        self._ridge = check_param(self.ridge, "ridge", self._owner, Real(low=0))

    _float64_sums = True  # the centring at the query subtracts sums of the same size: float64 throughout
    # a point with few, far neighbours has an ill-conditioned system, which amplifies the cancellation
    _loo_reliable = 1e-2

    def _context(self, kernel):
        """``(mean, scale, d, t, iu)``: the frame z = (x - mean) / scale of the moments and their layout."""
        w = self._w
        X = self._X.astype(np.float64)
        mu = (w @ X) / w.sum()
        s = getattr(kernel, "bandwidth", None)
        if not (isinstance(s, float) and s > 0):
            s = _weighted_median_bandwidth(X, w)
        d = X.shape[1]
        return mu, float(s), d, self._Y.shape[1], np.triu_indices(d)

    def _columns(self, X, ctx):
        """The columns [1, z, z_a z_b (a <= b), y, z_a y_c] of the moments."""
        mu, s, d, t, iu = ctx
        Y = self._Y
        n = X.shape[0]
        Z = (X - mu) / s
        return np.concatenate([np.ones((n, 1)), Z, Z[:, iu[0]] * Z[:, iu[1]], Y,
                               (Z[:, :, None] * Y[:, None, :]).reshape(n, d * t)], axis=1)

    def _solve(self, S, Q, ctx):
        mu, s, d, t, iu = ctx
        m = S.shape[0]
        zq = (np.asarray(Q, dtype=np.float64) - mu) / s
        budget = get_options(memory=self.memory).memory
        rows = max(1, min(m, budget // (8 * 4 * ((d + 1) * (d + 1 + t) + S.shape[1]))))
        out = np.empty((m, t))
        for a in range(0, m, rows):
            b = min(m, a + rows)
            out[a:b] = self._solve_rows(S[a:b], zq[a:b], d, t, iu)
        return out

    def _solve_rows(self, S, zq, d, t, iu):
        m = S.shape[0]
        p = len(iu[0])
        s0 = S[:, 0]
        s1 = S[:, 1:1 + d]
        s2 = np.empty((m, d, d))
        s2[:, iu[0], iu[1]] = S[:, 1 + d:1 + d + p]
        s2[:, iu[1], iu[0]] = S[:, 1 + d:1 + d + p]
        t0 = S[:, 1 + d + p:1 + d + p + t]
        t1 = S[:, 1 + d + p + t:].reshape(m, d, t)
        # centred at the query: u = z - zq
        a0u = s1 - s0[:, None] * zq
        auu = (s2 - s1[:, :, None] * zq[:, None, :] - zq[:, :, None] * s1[:, None, :]
               + s0[:, None, None] * zq[:, :, None] * zq[:, None, :])
        bu = t1 - zq[:, :, None] * t0[:, None, :]
        A = np.empty((m, d + 1, d + 1))
        A[:, 0, 0] = s0
        A[:, 0, 1:] = a0u
        A[:, 1:, 0] = a0u
        A[:, 1:, 1:] = auu
        A[:, np.arange(1, d + 1), np.arange(1, d + 1)] += self._ridge * s0[:, None]
        rhs = np.concatenate([t0[:, None, :], bu], axis=1)
        scale = s0[:, None, None]  # a common factor: the system divided by S_0 is better scaled
        A, rhs = A / scale, rhs / scale
        try:
            sol = np.linalg.solve(A, rhs)
        except np.linalg.LinAlgError:  # a singular system (ridge=0): least squares, row by row
            sol = np.stack([np.linalg.lstsq(A[i], rhs[i], rcond=None)[0] for i in range(m)])
        return sol[:, 0, :]
