r"""Kernel density estimation, exact in the log domain, in any dimension.

The estimate with data :math:`x_1..x_n`, weights :math:`w_i \ge 0` and a
radial kernel :math:`k` of bandwidth :math:`h` is

.. math::

    \log p(y) = \operatorname{logsumexp}_i\big(\log k_h(x_i, y) + \log w_i\big)
                - \log \textstyle\sum_i w_i - \log \int k_h(0, z)\,dz ,

computed with :func:`kernelkit.kernel_logsumexp`: nothing underflows, so the
log density stays exact at d = 32 or 64 where every kernel value is below the
smallest float64.
"""

from __future__ import annotations

import math
import numbers

import numpy as np
from sklearn.base import BaseEstimator, DensityMixin
from sklearn.utils.validation import validate_data

from ._validation import check_int, check_points, check_weights, describe
from .engine import kernel_logsumexp
from .kernels import Kernel, make_kernel
from .exceptions import InvalidTypeError, InvalidValueError, NotFittedError

__all__ = ["KernelDensity", "bandwidth_scott", "bandwidth_silverman"]

_RULES = ("scott", "silverman", "cv")


def _weighted_scale(X, w):
    """sqrt of the mean over features of the weighted variances (data units)."""
    w = w / w.sum()
    mean = w @ X
    var = w @ (X - mean) ** 2
    # unbiased like numpy.cov with aweights: divide by 1 - sum w^2
    var = var / max(1.0 - float(np.sum(w ** 2)), 1e-300)
    return float(np.sqrt(np.mean(var)))


def _n_effective(w):
    return float(w.sum() ** 2 / np.sum(w ** 2))


def bandwidth_scott(X, sample_weight=None):
    r"""Scott's rule for one isotropic bandwidth, in data units.

    :math:`h = s\,n_{eff}^{-1/(d+4)}` with :math:`s^2` the mean over the d
    features of the (weighted, unbiased) variances and
    :math:`n_{eff} = (\sum w)^2 / \sum w^2` (n for unit weights).
    scipy's gaussian_kde uses the full covariance times the same factor
    squared; kernelkit's kernels are isotropic, so the covariance is replaced
    by :math:`s^2 I` (identical in 1-D, and for data whose covariance is a
    multiple of the identity).

    Parameters
    ----------
    X : array of shape (n, d)
        Data, any units.
    sample_weight : array of shape (n,), optional
        Non-negative weights (unitless).
    """
    X = check_points(X, "X", "bandwidth_scott", dtype=np.float64, min_rows=2)
    w = _weights(sample_weight, X.shape[0], "bandwidth_scott")
    return _weighted_scale(X, w) * _n_effective(w) ** (-1.0 / (X.shape[1] + 4))


def bandwidth_silverman(X, sample_weight=None):
    r"""Silverman's rule: :math:`h = s\,(n_{eff}(d+2)/4)^{-1/(d+4)}` (see :func:`bandwidth_scott`)."""
    X = check_points(X, "X", "bandwidth_silverman", dtype=np.float64, min_rows=2)
    w = _weights(sample_weight, X.shape[0], "bandwidth_silverman")
    d = X.shape[1]
    return _weighted_scale(X, w) * (_n_effective(w) * (d + 2) / 4.0) ** (-1.0 / (d + 4))


def _weights(sample_weight, n, owner):
    if sample_weight is None:
        return np.ones(n)
    w = check_weights(sample_weight, n, "sample_weight", owner, nonnegative=True, allow_2d=False)
    if not w.sum() > 0:
        raise InvalidValueError(f"The 'sample_weight' parameter of {owner} must have a positive sum (not all weights zero). Got sum {w.sum()}.")
    return w


class KernelDensity(DensityMixin, BaseEstimator):
    r"""Kernel density estimator with normalised radial kernels, exact in the log domain.

    .. math::

        \log p(y) = \log \sum_i w_i\,k(x_i/h, y/h) - \log \sum_i w_i
                    - \log \int k(0, z)\,dz - d \log h

    Parameters
    ----------
    kernel : str or Kernel, default "gaussian"
        A kernel name ("gaussian", "laplace", "matern32", "matern52", "imq",
        "rq", "cauchy", ...) or a positive integrable Kernel object (radial
        kernels, their sums and positive scalings). A name is built with
        bandwidth h; a Kernel object keeps its own length scales, which are
        multiplied by h (the data are divided by h), so ``bandwidth=1.0``
        uses the object as is.
    bandwidth : float or {"scott", "silverman", "cv"}, default "scott"
        h, in data units for a named kernel (for the Gaussian, its standard
        deviation). "scott" / "silverman": :func:`bandwidth_scott`,
        :func:`bandwidth_silverman`. "cv": maximise the leave-one-out
        log-likelihood :math:`\sum_j w_j \log p_{-j}(x_j)` over ``cv_grid``
        bandwidths spaced evenly in log between ``cv_range`` times Scott's.
        "cv" costs ``cv_grid`` engine sums of n x n kernel values (one
        ``kernel_logsumexp`` of the data on itself per grid bandwidth).
    cv_grid : int, default 24
        Number of bandwidths tried by "cv" (>= 2).
    cv_range : tuple of two floats, default (0.05, 4.0)
        Smallest and largest bandwidth tried by "cv", as multiples of Scott's.
    memory, threads, backend, progress :
        Engine options (see :func:`kernelkit.kernel_sum`); None = defaults.

    Attributes
    ----------
    bandwidth_ : float
        The bandwidth used (data units).
    kernel_ : Kernel
        The kernel at scale 1 (applied to data divided by bandwidth_).
    n_features_in_ : int
    cv_scores_ : ndarray, only for bandwidth="cv"
        Mean leave-one-out log-likelihood (nats per point) at each grid bandwidth ``cv_bandwidths_``.
    """

    def __init__(self, *, kernel="gaussian", bandwidth="scott", cv_grid=24, cv_range=(0.05, 4.0),
                 memory=None, threads=None, backend=None, progress=None):
        self.kernel = kernel
        self.bandwidth = bandwidth
        self.cv_grid = cv_grid
        self.cv_range = cv_range
        self.memory = memory
        self.threads = threads
        self.backend = backend
        self.progress = progress

    # ------------------------------------------------------------------
    def _engine_opts(self):
        return dict(memory=self.memory, threads=self.threads, backend=self.backend, progress=self.progress)

    def _base_kernel(self):
        if isinstance(self.kernel, Kernel):
            k = self.kernel
        elif isinstance(self.kernel, str):
            k = make_kernel(self.kernel, bandwidth=1.0) if self.kernel.lower() not in ("linear", "polynomial") \
                else make_kernel(self.kernel)
        else:
            raise InvalidTypeError(f"The 'kernel' parameter of KernelDensity must be a kernel name or a Kernel object. "
                            f"Got {describe(self.kernel)}.")
        if not k.is_positive:
            raise InvalidValueError(f"The 'kernel' parameter of KernelDensity must be a positive integrable kernel "
                             f"(radial kernels, their sums and positive scalings). Got {k!r}.")
        return k

    def _check_bandwidth(self):
        b = self.bandwidth
        if isinstance(b, str) and b in _RULES:
            return b
        if isinstance(b, numbers.Real) and not isinstance(b, bool) and math.isfinite(b) and b > 0:
            return float(b)
        raise InvalidValueError(f"The 'bandwidth' parameter of KernelDensity must be a float > 0 or one of "
                         f"{set(_RULES)}. Got {b!r}.")

    def fit(self, X, y=None, sample_weight=None):
        """Store the data and choose the bandwidth.

        Parameters
        ----------
        X : array of shape (n, d)
            Data points (data units).
        y : ignored
        sample_weight : array of shape (n,), optional
            Non-negative weights with a positive sum (unitless).
        """
        kernel = self._base_kernel()
        bw = self._check_bandwidth()
        X = validate_data(self, X, dtype=[np.float64, np.float32], reset=True)  # sklearn's checks and messages
        X = check_points(X, "X", "KernelDensity.fit")
        w = _weights(sample_weight, X.shape[0], "KernelDensity.fit")
        n, d = X.shape
        try:
            log_integral = kernel.log_integral(d)
        except NotImplementedError:
            raise InvalidValueError(f"The 'kernel' parameter of KernelDensity must be integrable over R^{d} "
                             f"(a density). Got {kernel!r}.") from None
        if not np.isfinite(log_integral):
            raise InvalidValueError(f"The 'kernel' parameter of KernelDensity must be integrable over R^{d}. "
                             f"Got {kernel!r} (infinite integral).")
        self.kernel_ = kernel
        self.n_features_in_ = d
        self._X = X
        with np.errstate(divide="ignore"):
            self._log_w = np.log(w)
        self._log_w_total = float(np.log(w.sum()))
        self._w = w
        self._log_integral = float(log_integral)
        if isinstance(bw, float):
            h = bw
        elif n < 2 or bw == "cv":
            h = bandwidth_scott(X, w) if n >= 2 else 1.0
            if not h > 0:
                h = 1.0
            if bw == "cv" and n >= 2:
                h = self._cross_validate(h)
        elif bw == "scott":
            h = bandwidth_scott(X, w)
        else:
            h = bandwidth_silverman(X, w)
        if not (h > 0 and np.isfinite(h)):
            h = 1.0  # constant data: every rule gives 0
        self.bandwidth_ = float(h)
        return self

    def _loo_loglik(self, h):
        r"""Weighted mean of log p_{-j}(x_j) at bandwidth h.

        log sum_{i != j} = L_j + log(1 - w_j k(0)/exp(L_j)) with L_j the full
        log-sum (k(x, x) = phi(0) from kernel.diag), all in the log domain.
        """
        X, lw = self._X, self._log_w
        Z = X / np.asarray(h, dtype=X.dtype)
        full = kernel_logsumexp(self.kernel_, Z, Z, lw, **self._engine_opts()).astype(np.float64)
        self_term = lw + np.log(self.kernel_.diag(Z[:1]).astype(np.float64))[0]
        frac = np.exp(np.minimum(self_term - full, 0.0))
        with np.errstate(divide="ignore"):
            loo = full + np.log1p(-frac)
        log_rest = np.log(np.maximum(self._w.sum() - self._w, 1e-300))
        logp = loo - log_rest - self._log_integral - X.shape[1] * math.log(h)
        return float(np.sum(self._w * logp) / self._w.sum())

    def _cross_validate(self, h0):
        grid = check_int(self.cv_grid, "cv_grid", "KernelDensity", low=2)
        rng_ok = (isinstance(self.cv_range, (tuple, list)) and len(self.cv_range) == 2
                  and all(isinstance(v, numbers.Real) and v > 0 for v in self.cv_range)
                  and self.cv_range[0] < self.cv_range[1])
        if not rng_ok:
            raise InvalidValueError(f"The 'cv_range' parameter of KernelDensity must be two floats 0 < low < high. "
                             f"Got {self.cv_range!r}.")
        hs = h0 * np.geomspace(self.cv_range[0], self.cv_range[1], grid)
        scores = np.array([self._loo_loglik(float(h)) for h in hs])
        self.cv_bandwidths_ = hs
        self.cv_scores_ = scores
        return float(hs[int(np.argmax(np.where(np.isnan(scores), -np.inf, scores)))])

    def _check_fitted(self, what):
        if not hasattr(self, "bandwidth_"):
            raise NotFittedError(f"This KernelDensity instance is not fitted yet. Call 'fit' before '{what}'.")

    def score_samples(self, X):
        """Log density at each row of X (log of 1/data-units^d), shape (m,)."""
        self._check_fitted("score_samples")
        Y = validate_data(self, X, dtype=[np.float64, np.float32], reset=False)
        Y = check_points(Y, "X", "KernelDensity.score_samples")
        dt = np.float32 if (Y.dtype == np.float32 and self._X.dtype == np.float32) else np.float64
        h = self.bandwidth_
        Xs = (self._X / h).astype(dt, copy=False)
        Ys = (Y / h).astype(dt, copy=False)
        lse = kernel_logsumexp(self.kernel_, Xs, Ys, self._log_w, **self._engine_opts())
        const = self._log_w_total + self._log_integral + self.n_features_in_ * math.log(h)
        return (lse.astype(np.float64) - const).astype(dt, copy=False)

    def score(self, X, y=None):
        """Total log-likelihood of the rows of X (sum of score_samples)."""
        return float(np.sum(self.score_samples(X), dtype=np.float64))

    def sample(self, n_samples=1, random_state=None):
        """Draw points from the estimated density: a data point (by weight) plus kernel noise times h.

        Parameters
        ----------
        n_samples : int >= 1
        random_state : None, int or numpy Generator / RandomState
        """
        self._check_fitted("sample")
        n_samples = check_int(n_samples, "n_samples", "KernelDensity.sample", low=1)
        if isinstance(random_state, np.random.RandomState):
            rng = np.random.default_rng(random_state.randint(0, 2 ** 31 - 1))
        else:
            rng = np.random.default_rng(random_state)
        p = self._w / self._w.sum()
        idx = rng.choice(self._X.shape[0], size=n_samples, p=p)
        try:
            noise = self.kernel_.sample_density(n_samples, self.n_features_in_, rng)
        except NotImplementedError:
            raise InvalidValueError(f"KernelDensity.sample needs a kernel that can be sampled as a density. "
                             f"Got {self.kernel_!r}.") from None
        return self._X[idx].astype(np.float64) + self.bandwidth_ * np.asarray(noise, dtype=np.float64)
