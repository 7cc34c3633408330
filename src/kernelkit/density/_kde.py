"""KernelDensity and the Scott / Silverman bandwidth rules (see the package docstring for the estimate)."""

from __future__ import annotations

import math

import numpy as np
from sklearn.base import BaseEstimator, DensityMixin
from sklearn.utils.validation import validate_data

from .._xp import any_dask
from .._random import generator
from .._validation import (InstanceOf, Integral, OneOf, Real, check_param, check_params, check_points,
                          check_weights, describe, kernel_bandwidth_error, param_error)
from ..engine import kernel_logsumexp
from ..kernels import KERNEL_NAMES, Kernel, _fits, make_kernel
from ..exceptions import NotFittedError

__all__ = ["KernelDensity", "bandwidth_scott", "bandwidth_silverman"]

_RULES = ("scott", "silverman", "cv", "lscv", "isj", "plugin")

#: scikit-learn's KernelDensity names whose meaning differs from kernelkit's (inside KernelDensity only)
SKLEARN_NAMES = {"linear": "triangular", "exponential": "laplace"}
#: what KernelDensity's 'kernel' and 'bandwidth' accept (the rule between them: KernelDensity._resolve_kernel)
_KERNEL = InstanceOf(Kernel, "a Kernel object") | OneOf(*sorted(set(KERNEL_NAMES) - {"polynomial"} | set(SKLEARN_NAMES)))
_BANDWIDTH = Real(low=0, low_open=True) | OneOf(*_RULES) | None
#: the other scalar parameters of KernelDensity (cv_range, a pair, is checked by _check_cv_range)
_CONSTRAINTS = {"cv_grid": Integral(low=2), "cv_max_eval": Integral(low=1) | None,
                "boundary": OneOf("reflection", "renormalization"),
                "adaptive": OneOf(False, True, "abramson", "balloon") | None,
                "sensitivity": Real(low=0, high=1), "n_neighbors": Integral(low=1) | None,
                "adaptive_bins": Integral(low=2) | None}
#: the bandwidth_matrix strings (the plug-in ones: kernelkit.density._plugin)
_MATRIX_NAMES = ("full", "diagonal", "plugin", "plugin_diagonal")


def _weighted_scale(X, w):
    """sqrt of the mean over features of the weighted variances (data units).

    Exactly 0 when every point of positive weight is the same point. Data
    whose squares would overflow or underflow (coordinates beyond 2^500 or
    below 2^-500) are scaled by a power of two first (exact).
    """
    used = X[w > 0]
    if np.all(used == used[0]):
        return 0.0
    big = float(np.max(np.abs(used)))
    unit = math.ldexp(1.0, int(np.frexp(big)[1])) if not 2.0 ** -500 <= big <= 2.0 ** 500 else 1.0
    if unit != 1.0:
        X = X / unit
    w = w / w.sum()
    mean = w @ X
    var = w @ (X - mean) ** 2
    # unbiased like numpy.cov with aweights: divide by 1 - sum w^2
    var = var / max(1.0 - float(np.sum(w ** 2)), 1e-300)
    return float(np.sqrt(np.mean(var))) * unit


def _zero_spread(owner, rule, X):
    return param_error("X", owner, "points with some spread (not every point with positive weight the same point)",
                       X, shown=f"{describe(X)}, of zero spread",
                       hint=f"{rule} rule gives bandwidth 0 there; pass a float bandwidth instead "
                            "(KernelDensity(bandwidth=1.0), for instance, works on such data).")


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

    Raises
    ------
    InvalidValueError
        When every point (of positive weight) is the same point: the rule
        would give bandwidth 0 (pass a float bandwidth to KernelDensity).
    """
    X = check_points(X, "X", "bandwidth_scott", dtype=np.float64, min_rows=2)
    w = _weights(sample_weight, X.shape[0], "bandwidth_scott")
    s = _weighted_scale(X, w)
    if s == 0:
        raise _zero_spread("bandwidth_scott", "Scott's", X)
    return s * _n_effective(w) ** (-1.0 / (X.shape[1] + 4))


def bandwidth_silverman(X, sample_weight=None):
    r"""Silverman's rule: :math:`h = s\,(n_{eff}(d+2)/4)^{-1/(d+4)}` (see :func:`bandwidth_scott`).

    Raises InvalidValueError when every point (of positive weight) is the
    same point: the rule would give bandwidth 0.

    Parameters
    ----------
    X : array of shape (n, d), n >= 2
    sample_weight : array of shape (n,), optional
        Non-negative weights (their effective number n_eff enters the rule).

    Returns
    -------
    float
        h, in the units of the data.
    """
    X = check_points(X, "X", "bandwidth_silverman", dtype=np.float64, min_rows=2)
    w = _weights(sample_weight, X.shape[0], "bandwidth_silverman")
    d = X.shape[1]
    s = _weighted_scale(X, w)
    if s == 0:
        raise _zero_spread("bandwidth_silverman", "Silverman's", X)
    return s * (_n_effective(w) * (d + 2) / 4.0) ** (-1.0 / (d + 4))


_F64_MAX = float(np.finfo(np.float64).max)
_F32_MAX = float(np.finfo(np.float32).max)


def _scaled(A, h, dt):
    """``A / h`` as ``dt``: in A's own dtype when that cannot overflow (as always done), else in float64."""
    if A.dtype == np.float32 and not (_fits(h, np.float32)
                                      and float(np.max(np.abs(A), initial=0.0)) / h <= _F32_MAX / 4):
        with np.errstate(over="ignore"):
            return (A.astype(np.float64) / h).astype(dt, copy=False)
    return (A / h).astype(dt, copy=False)


def _rule_bandwidth(rule, X, w, name, bw):
    """``rule(X, w)``, or the error naming KernelDensity's 'bandwidth' when the data have zero spread."""
    if _weighted_scale(X, w) == 0:
        raise param_error("bandwidth", "KernelDensity", "a float when the data have zero spread (every point with "
                          f"positive weight is the same point): {name} rule gives bandwidth 0 there", bw,
                          hint="Pass a float bandwidth (bandwidth=1.0, for instance).")
    return rule(X, w)


def _weights(sample_weight, n, owner):
    if sample_weight is None:
        return np.ones(n)
    w = check_weights(sample_weight, n, "sample_weight", owner, nonnegative=True, allow_2d=False)
    if not w.sum() > 0:
        raise param_error("sample_weight", owner, "weights with a positive sum (not all zero)", w,
                          shown=f"sum {w.sum()}")
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
        "rq", "cauchy", the compactly supported "epanechnikov", "biweight",
        "triweight", "tophat", "triangular", "cosine", ...) or a positive
        integrable Kernel object (radial kernels, their sums and positive
        scalings). scikit-learn's six names keep scikit-learn's meaning here:
        "gaussian", "tophat", "epanechnikov", "cosine", "linear" (the
        triangular kernel 1 - r/h, not kernelkit's dot-product Linear) and
        "exponential" (the Laplace kernel exp(-r/h)), each with h the
        bandwidth as in scikit-learn, so code ported from scikit-learn gives
        the same log densities. See "Kernel and bandwidth" below.
    bandwidth : float, {"scott", "silverman", "cv", "lscv", "isj", "plugin"} or None, default None
        h, in data units, for a kernel given by name (for the Gaussian, its
        standard deviation); None means "scott". "scott" / "silverman":
        :func:`bandwidth_scott`, :func:`bandwidth_silverman`. "cv": maximise
        the leave-one-out log-likelihood :math:`\sum_j w_j \log p_{-j}(x_j)`
        over ``cv_grid`` bandwidths spaced evenly in log between ``cv_range``
        times Scott's. "cv" costs ``cv_grid`` engine sums of n x m kernel
        values, with ``m = min(n, cv_max_eval)`` (one ``kernel_logsumexp`` of
        the data at the evaluation points per grid bandwidth). "lscv":
        minimise the least-squares cross-validation criterion (the integrated
        squared error up to a constant) over the same grid,
        :math:`\int \hat p^2 - 2 \sum_j w_j \hat p_{-j}(x_j)`, Gaussian kernel
        only (where :math:`\int \hat p^2` is a kernel sum of the Gaussian of
        variance 2 h^2), in the log domain; it costs two engine sums per grid
        bandwidth and subsamples the outer sum as "cv" does (``cv_max_eval``).
        In high dimension LSCV and the likelihood pick bandwidths in different
        regimes (see :meth:`diagnose`). "isj": the improved Sheather-Jones
        plug-in bandwidth (Botev et al. 2010; :func:`bandwidth_isj`), 1-D data
        only, O(n) binning plus a DCT on 1,024 bins. "plugin": the
        multivariate plug-in (:func:`bandwidth_plugin` with
        ``kind="isotropic"``: :math:`H = h^2 I` minimising the plug-in AMISE),
        Gaussian kernel only, O(n^2) pair sums (about 2 s at n = 2,000). Must be None when
        ``kernel`` is a Kernel object.
    cv_grid : int, default 24
        Number of bandwidths tried by "cv" (>= 2).
    cv_range : tuple of two floats, default (0.05, 4.0)
        Smallest and largest bandwidth tried by "cv", as multiples of Scott's.
    cv_max_eval : int or None, default 5000
        "cv" evaluates the leave-one-out log-likelihood at every data point
        while n <= cv_max_eval (exact), and above it at ``cv_max_eval`` points
        drawn without replacement (a fixed-seed subsample, the same at every
        grid bandwidth; every point stays a source of the density). That is an
        unbiased estimate of the same criterion at a cost of n * cv_max_eval
        kernel values per grid bandwidth instead of n^2 (n = 10^6: 5e9 instead
        of 1e12). The points used are counted in ``cv_n_eval_``. None: always
        every point (O(n^2) per grid bandwidth).
    bounds : sequence of (low, high) pairs, one per column, optional
        The box the data live on (``-inf`` / ``inf`` for an open side, e.g.
        ``[(0, inf)]`` for positive data). Then the estimate is
        boundary-corrected by ``boundary`` (see
        :class:`kernelkit.density.BoundedDensity`): it integrates to 1 on the
        box and is -inf (log) outside it. ``score_samples``, ``score`` and
        ``sample`` use the corrected estimate; ``diagnose`` and ``modes``
        describe the uncorrected one.
    boundary : {"reflection", "renormalization"}, default "reflection"
        The correction used with ``bounds``.
    bandwidth_matrix : None, "full", "diagonal", "plugin", "plugin_diagonal" or array of shape (d, d), default None
        None: one isotropic bandwidth h (the kernel's radius in data units).
        Otherwise the kernel's shape is a matrix :math:`H = f^2 A`: A is the
        weighted data covariance ("full", as scipy's ``gaussian_kde``), its
        diagonal ("diagonal", one bandwidth per feature) or the given
        symmetric positive definite array; the factor f is ``bandwidth`` (a
        float, dimensionless) or Scott's / Silverman's factor
        :math:`n_{eff}^{-1/(d+4)}` / :math:`(n_{eff}(d+2)/4)^{-1/(d+4)}`.
        Applied by whitening the data with A = L L^T (exact; see
        :mod:`kernelkit.density._matrix`); degenerate data raise an error
        naming the columns. Kernel names only, with "scott", "silverman" or a
        float; not with ``bounds``, ``modes``, cdf or marginals (which work in
        data coordinates). The fitted ``covariance_`` is H.
        "plugin" / "plugin_diagonal": H itself is the multivariate plug-in
        matrix of Wand & Jones / Duong & Hazelton (as R's ``ks::Hpi`` /
        ``ks::Hpi.diag``; :func:`kernelkit.density.bandwidth_plugin`, module
        :mod:`kernelkit.density._plugin`), full or diagonal, which minimises the
        estimated AMISE; Gaussian kernel, ``bandwidth`` None. Cost: two double
        sums over the n^2 pairs of points, O(n^2 (d r + M_r)) for r = 6 and 4
        (M_r multi-indices of order r), in blocks within ``memory``: about 2 s
        at n = 2,000 in 2-D and 17 s at n = 10^4 (loaded 2-core machine).
    adaptive : None, False, True, "abramson" or "balloon", default None
        Variable bandwidths (module :mod:`kernelkit.density._adaptive`).
        True / "abramson": the *sample-point* estimator
        :math:`\hat p(y) = \sum_i w_i Z^{-1} h_i^{-d} k(\|y - x_i\| / h_i) / \sum_i w_i`
        with Abramson's law :math:`h_i = h\,(\tilde p(x_i) / g)^{-\alpha}`:
        :math:`\tilde p` the fixed estimate at bandwidth h (``bandwidth``, any
        rule), g its weighted geometric mean at the data, :math:`\alpha` =
        ``sensitivity``. A density: integrates to 1, ``sample`` draws from it.
        "balloon": one bandwidth per *query*, h(y) = the distance from y to its
        ``n_neighbors``-th nearest data point (the k-NN kernel estimate;
        ``bandwidth`` must be None); it does not integrate to 1, so ``sample``
        refuses it. Per-point bandwidths of your own: ``fit(X, bandwidths=h)``.
        Exact: one engine log-sum-exp per distinct bandwidth (per point, or per
        query for the balloon), so it costs the n m kernel values of the fixed
        estimate plus the engine's per-call overhead (about 0.2 ms + 1 us per
        query here) times n (or m). Measured (loaded 2-core machine, d = 2,
        Abramson, m = n queries): n = 2,000: fixed 0.09 s, exact 5.3 s,
        ``adaptive_bins=64`` 0.27 s (L1 bound 0.039); n = 10^4: fixed 0.47 s,
        ``adaptive_bins=64`` 2.2 s (bound 0.048). See ``adaptive_bins``. Kernel names only; not with
        ``bandwidth_matrix``, ``bounds``, dask arrays, nor ``diagnose``,
        ``modes``, ``cdf``, ``quantile``, ``marginal``, ``conditional`` (those
        describe a fixed-bandwidth estimate, and say so).
    sensitivity : float in [0, 1], default 0.5
        :math:`\alpha` of Abramson's law (dimensionless): 0.5 is Abramson's
        square-root law, 0 the fixed-bandwidth estimate.
    n_neighbors : int >= 1 or None, default None
        k of the balloon estimator; None: ceil(n^(4/(d+4))) (the rate of the
        AMISE-optimal k), n counting the points of positive weight. A query
        that is a data point counts itself.
    adaptive_bins : int >= 2 or None, default None
        None: the sample-point estimate with the exact h_i. An int B: each
        :math:`\log h_i` rounded to the nearest of B evenly spaced values
        between the smallest and the largest (at most B engine calls instead
        of n). The result is still a density, within L1 distance
        ``adaptive_l1_bound_`` of the exact one: :math:`\sqrt{2d}\,\epsilon`
        (Gaussian) or :math:`2d\,\epsilon` (other kernels, non-increasing
        profiles), :math:`\epsilon = \max_i |\log \tilde h_i - \log h_i| \le
        \log(h_{max}/h_{min}) / (2(B-1))`. No pointwise bound holds (far tails),
        so this is opt-in. Not for the balloon estimator.
    memory, threads, backend, progress :
        Engine options (see :func:`kernelkit.kernel_sum`); None = defaults.

    Attributes
    ----------
    bandwidth_ : float or None
        The bandwidth used (data units): the number given or chosen by the
        rule for a kernel name; for a Kernel object its own ``bandwidth``
        (None for sums and scalings of kernels, which have several).
    kernel_ : Kernel
        The kernel evaluated: for a kernel name the kernel at bandwidth 1,
        applied to the data divided by ``bandwidth_``; for a Kernel object
        the object itself, applied to the data as they are.
    n_features_in_ : int
    cv_scores_ : ndarray, only for bandwidth="cv" or "lscv"
        "cv": mean leave-one-out log-likelihood (nats per point) at each grid bandwidth ``cv_bandwidths_``;
        "lscv": the LSCV criterion at each grid bandwidth, divided by its largest absolute value
        (the criterion itself underflows in high dimension; its sign and the order are kept).
    cv_n_eval_ : int, only for bandwidth="cv"
        Number of points at which the leave-one-out likelihood was evaluated (n, or cv_max_eval).
    bandwidths_ : ndarray of shape (n,), only for adaptive sample-point estimates
        The h_i used (data units; rounded with ``adaptive_bins``). Then ``bandwidth_`` is the pilot's h
        (Abramson: the weighted geometric mean of the unrounded h_i) or, for fit's ``bandwidths``, their
        weighted geometric mean; None for the balloon estimator.
    adaptive_l1_bound_ : float, only for adaptive sample-point estimates
        Bound on the L1 distance to the estimate with unrounded bandwidths (0.0 without ``adaptive_bins``).
    pilot_log_geometric_mean_ : float, only for adaptive="abramson"
        log g (log of 1 / data-units^d).
    n_neighbors_ : int, only for adaptive="balloon"

    Notes
    -----
    Kernel and bandwidth follow the library's one rule (docs/conventions.md).
    A Kernel object carries its bandwidth: ``KernelDensity(kernel=Gaussian(0.5))``
    estimates with exactly that kernel, and ``bandwidth`` must stay None
    (anything else raises InvalidValueError naming both parameters). To give
    a number or have the bandwidth chosen by a rule, name the kernel:
    ``KernelDensity(kernel="gaussian", bandwidth="cv")``. A kernel name
    without a bandwidth uses Scott's rule, not the median heuristic of the
    compression functions: Scott's rule targets the density estimation
    error, which is what a KDE is judged by.

    Sample weights (``fit(X, sample_weight=w)``) are reliability weights:
    the estimate is the mixture :math:`\sum_i (w_i / \sum_j w_j)\, k_h(\cdot, x_i)`,
    so only the ratios of the weights matter (w and 10 w give the same
    density). The bandwidth rules count them by Kish's effective sample size
    :math:`n_{eff} = (\sum w)^2 / \sum w^2` (Scott, Silverman) and use
    weighted variances; "cv" and "lscv" weight each point's leave-one-out
    term by w_j and leave out the point's own weight. Frequency weights
    (w_i copies of x_i) give the same density but a different n_eff: repeat
    the rows instead when the rule should see w_i points.
    """

    def __init__(self, *, kernel="gaussian", bandwidth=None, cv_grid=24, cv_range=(0.05, 4.0),
                 cv_max_eval=5000, bounds=None, boundary="reflection", bandwidth_matrix=None, adaptive=None,
                 sensitivity=0.5, n_neighbors=None, adaptive_bins=None, memory=None,
                 threads=None, backend=None, progress=None):
        self.kernel = kernel
        self.adaptive = adaptive
        self.sensitivity = sensitivity
        self.n_neighbors = n_neighbors
        self.adaptive_bins = adaptive_bins
        self.bandwidth_matrix = bandwidth_matrix
        self.bounds = bounds
        self.boundary = boundary
        self.bandwidth = bandwidth
        self.cv_grid = cv_grid
        self.cv_range = cv_range
        self.cv_max_eval = cv_max_eval
        self.memory = memory
        self.threads = threads
        self.backend = backend
        self.progress = progress

    # ------------------------------------------------------------------
    def _engine_opts(self):
        return dict(memory=self.memory, threads=self.threads, backend=self.backend, progress=self.progress)

    def _resolve_kernel(self):
        """``(kernel_, bandwidth)`` by the rule in the class docstring; bandwidth is None for a Kernel object."""
        owner = "KernelDensity"
        kernel = check_param(self.kernel.lower() if isinstance(self.kernel, str) else self.kernel, "kernel", owner,
                             _KERNEL)
        if isinstance(kernel, Kernel):
            if self.bandwidth is not None:
                raise kernel_bandwidth_error(owner, self.bandwidth, hint=(
                    "A Kernel object is used with its own bandwidth. To give a number or a rule ('scott', "
                    "'silverman', 'cv'), pass the kernel by name instead, e.g. KernelDensity(kernel='gaussian', "
                    f"bandwidth={self.bandwidth!r})."))
            k, bandwidth = kernel, None
        else:
            bandwidth = check_param(self.bandwidth, "bandwidth", owner, _BANDWIDTH)
            bandwidth = "scott" if bandwidth is None else bandwidth
            k = make_kernel(SKLEARN_NAMES.get(kernel, kernel), bandwidth=1.0)
        if not k.is_positive:
            raise param_error("kernel", owner, "a positive integrable kernel (radial kernels, their sums and "
                                               "positive scalings)", k)
        return k, bandwidth

    def _check_cv_range(self):
        owner, value, accepts = "KernelDensity", self.cv_range, "two floats 0 < low < high"
        if not (isinstance(value, (tuple, list)) and all(Real().type_ok(v) for v in value)):
            raise param_error("cv_range", owner, accepts, value, "type")
        if not (len(value) == 2 and all(Real(low=0, low_open=True).value_ok(v) for v in value)
                and value[0] < value[1]):
            raise param_error("cv_range", owner, accepts, value)
        return float(value[0]), float(value[1])

    def fit(self, X, y=None, sample_weight=None, bandwidths=None):
        """Store the data and choose the bandwidth.

        Parameters
        ----------
        X : array of shape (n, d)
            Data points (data units).
        y : ignored
        sample_weight : array of shape (n,), optional
            Non-negative weights with a positive sum (unitless).
        bandwidths : array of shape (n,), optional
            One bandwidth per data point (data units, finite, > 0): the sample-point estimator with
            exactly these :math:`h_i` (see ``adaptive``); a kernel name, ``bandwidth`` and ``adaptive``
            None, no ``bandwidth_matrix`` or ``bounds``.
        """
        kernel, bw = self._resolve_kernel()
        params = check_params(vars(self), _CONSTRAINTS, "KernelDensity")
        cv_range = self._check_cv_range()
        self._adaptive_request = self._check_adaptive(params, X, sample_weight, bandwidths)
        if any_dask(X, sample_weight):  # data on a dask cluster: moment rules by reductions (kernelkit.dask)
            from ..dask._methods import fit_density
            return fit_density(self, X, sample_weight, kernel, bw)
        X = validate_data(self, X, dtype=[np.float64, np.float32], reset=True)  # sklearn's checks and messages
        X = check_points(X, "X", "KernelDensity.fit")
        w = _weights(sample_weight, X.shape[0], "KernelDensity.fit")
        n, d = X.shape
        try:
            log_integral = kernel.log_integral(d)
        except NotImplementedError:
            raise param_error("kernel", "KernelDensity", f"integrable over R^{d} (a density)", kernel) from None
        if not np.isfinite(log_integral):
            raise param_error("kernel", "KernelDensity", f"integrable over R^{d}", kernel,
                              shown=f"{kernel!r} (infinite integral)")
        self.kernel_ = kernel
        self.n_features_in_ = d
        self._whiten = None
        if self.bandwidth_matrix is not None:
            X, bw = self._fit_matrix(X, w, bw)
        self._X = X
        with np.errstate(divide="ignore"):
            self._log_w = np.log(w)
        self._log_w_total = float(np.log(w.sum()))
        self._w = w
        self._log_integral = float(log_integral)
        if bw is None:  # a Kernel object, applied as it is
            self._scale = 1.0
            self.bandwidth_ = getattr(kernel, "bandwidth", None)
            return self._fit_bounds()
        if isinstance(bw, float):
            h = bw
            xmax = float(np.max(np.abs(X)))
            if not math.isfinite(xmax / h):
                raise param_error("bandwidth", "KernelDensity", f"at least {xmax / _F64_MAX:.3g} for these data "
                                  "(the data divided by the bandwidth must stay finite float64)", self.bandwidth)
        elif n < 2 or bw == "cv":
            h = bandwidth_scott(X, w) if n >= 2 else 1.0
            if not h > 0:
                h = 1.0
            if bw == "cv" and n >= 2:
                h = self._cross_validate(h, params["cv_grid"], cv_range, params["cv_max_eval"])
        elif bw == "lscv":
            if type(kernel).__name__ != "Gaussian":
                raise param_error("bandwidth", "KernelDensity", "'lscv' with kernel='gaussian' only (its integral "
                                  "of p^2 is a Gaussian kernel sum), or another rule", bw)
            h = bandwidth_scott(X, w) if n >= 2 else 1.0
            if not h > 0:
                h = 1.0
            if n >= 2:
                h = self._cross_validate(h, params["cv_grid"], cv_range, params["cv_max_eval"], lscv=True)
        elif bw == "isj":
            if d != 1:
                raise param_error("bandwidth", "KernelDensity", "'isj' for one-dimensional data only (the "
                                  "improved Sheather-Jones rule is 1-D), or another rule", bw,
                                  hint=f"The data have {d} columns.")
            from ._isj import bandwidth_isj
            h = bandwidth_isj(X[:, 0].astype(np.float64), w)
        elif bw == "plugin":
            if type(kernel).__name__ != "Gaussian":
                raise param_error("bandwidth", "KernelDensity", "'plugin' with kernel='gaussian' only (the plug-in "
                                  "AMISE is the Gaussian kernel's), or another rule", bw)
            from ._plugin import bandwidth_plugin
            h = math.sqrt(float(bandwidth_plugin(X, w, kind="isotropic", memory=self.memory)[0, 0]))
        elif bw == "scott":
            h = _rule_bandwidth(bandwidth_scott, X, w, "Scott's", bw)
        else:
            h = _rule_bandwidth(bandwidth_silverman, X, w, "Silverman's", bw)
        if not (h > 0 and np.isfinite(h)):
            h = 1.0  # constant data: every rule gives 0
        self._scale = self.bandwidth_ = float(h)
        if self._whiten is None:
            self.covariance_ = None
        return self._fit_bounds()

    def _fit_matrix(self, X, w, bw):
        """Whiten X for ``bandwidth_matrix`` (see its docstring): (whitened X, the factor f as a float)."""
        from ._matrix import bandwidth_matrix_shape, factor, whitening
        owner = "KernelDensity"
        spec = self.bandwidth_matrix
        if isinstance(spec, str) and spec not in _MATRIX_NAMES:
            raise param_error("bandwidth_matrix", owner, "None, 'full', 'diagonal', 'plugin', 'plugin_diagonal' or a "
                              "(d, d) array", spec)
        if bw is None:
            raise param_error("bandwidth_matrix", owner, "None with a Kernel object (name the kernel to give it a "
                              "bandwidth matrix)", spec, shown="a bandwidth matrix")
        plugin = isinstance(spec, str) and spec.startswith("plugin")
        if plugin and self.bandwidth is not None:
            raise param_error("bandwidth", owner, f"None with bandwidth_matrix={spec!r} (the plug-in matrix is the "
                              "whole bandwidth)", self.bandwidth)
        if plugin and type(self.kernel_).__name__ != "Gaussian":
            raise param_error("kernel", owner, f"'gaussian' with bandwidth_matrix={spec!r} (the plug-in AMISE is the "
                              "Gaussian kernel's)", self.kernel)
        if not (plugin or isinstance(bw, float) or bw in ("scott", "silverman")):
            raise param_error("bandwidth", owner, "a float factor, 'scott' or 'silverman' with a bandwidth matrix",
                              bw)
        if self.bounds is not None:
            raise param_error("bounds", owner, "None with a bandwidth matrix (the correction works in data "
                              "coordinates)", self.bounds)
        if plugin:
            from ._plugin import bandwidth_plugin
            A = bandwidth_plugin(X, w, kind="full" if spec == "plugin" else "diagonal", memory=self.memory)
            A = bandwidth_matrix_shape(A, X, w, owner)   # SPD check (always passes for a plug-in result)
        else:
            A = bandwidth_matrix_shape(spec, X, w, owner)
        T, L, logdet = whitening(A)
        f = 1.0 if plugin else (bw if isinstance(bw, float) else factor(bw, X, w))
        self._whiten = (T, L, logdet)
        self.covariance_ = f * f * A
        Xw = (X.astype(np.float64) @ T.T).astype(X.dtype, copy=False)
        return Xw, float(f)

    def _check_adaptive(self, params, X, sample_weight, bandwidths):
        """What ``fit`` is asked for: None (fixed bandwidth), "abramson", "balloon" or "given" (the
        ``bandwidths`` argument); refuses the combinations the adaptive estimators do not support."""
        owner = "KernelDensity"
        self._adaptive = None
        self._bandwidths_arg = bandwidths
        mode = params["adaptive"]
        mode = "abramson" if mode is True else (None if mode is False else mode)
        if bandwidths is not None:
            if mode is not None:
                raise param_error("adaptive", owner, "None (or False) when fit is given per-point "
                                  "'bandwidths'", self.adaptive)
            mode = "given"
            if self.bandwidth is not None:
                raise param_error("bandwidth", owner, "None when fit is given per-point 'bandwidths' (they are the "
                                  "whole bandwidth)", self.bandwidth)
        if mode is None:
            if self.n_neighbors is not None or self.adaptive_bins is not None:
                name = "n_neighbors" if self.n_neighbors is not None else "adaptive_bins"
                raise param_error(name, owner, "None unless the bandwidth is adaptive ('adaptive' or fit's "
                                  "'bandwidths')", getattr(self, name))
            return None
        if isinstance(self.kernel, Kernel):
            raise param_error("kernel", owner, f"a kernel name with adaptive bandwidths ({mode!r})", self.kernel,
                              hint="Each point's kernel is the named kernel at its own bandwidth.")
        for name in ("bandwidth_matrix", "bounds"):
            if getattr(self, name) is not None:
                raise param_error(name, owner, f"None with adaptive bandwidths ({mode!r})", getattr(self, name))
        if mode == "balloon":
            if self.bandwidth is not None:
                raise param_error("bandwidth", owner, "None with adaptive='balloon' (the bandwidth at a query is "
                                  "the distance to its n_neighbors-th nearest data point)", self.bandwidth)
            if self.adaptive_bins is not None:
                raise param_error("adaptive_bins", owner, "None with adaptive='balloon' (exact only: no bound "
                                  "holds for rounded query bandwidths)", self.adaptive_bins)
        elif self.n_neighbors is not None:
            raise param_error("n_neighbors", owner, "None unless adaptive='balloon'", self.n_neighbors)
        if any_dask(X, sample_weight, bandwidths):
            raise param_error("X", owner, "a NumPy array with adaptive bandwidths (dask arrays: fixed bandwidth "
                              "only)", X, shown="a dask array")
        return mode

    def _fit_adaptive(self):
        """The adaptive part of fit (see ``adaptive``): per-point bandwidths, or the balloon's k."""
        from . import _adaptive
        mode = getattr(self, "_adaptive_request", None)
        self._adaptive_request = None
        self._adaptive = None
        if mode is None:
            return
        owner = "KernelDensity.fit"
        X, w = self._X, self._w
        n, d = X.shape
        used = w > 0
        if mode == "balloon":
            k = self.n_neighbors if self.n_neighbors is not None else \
                _adaptive.default_n_neighbors(int(used.sum()), d)
            if k > int(used.sum()):
                raise param_error("n_neighbors", "KernelDensity", "at most the number of data points of positive "
                                  f"weight ({int(used.sum())})", k)
            self.n_neighbors_ = int(k)
            self.bandwidth_ = None
            self.bandwidths_ = None
            self._adaptive = ("balloon", None)
            return
        if mode == "given":
            h = check_weights(self._bandwidths_arg, n, "bandwidths", owner, allow_2d=False)
            if not (np.all(np.isfinite(h)) and np.all(h > 0)):
                bad = int(np.flatnonzero(~(np.isfinite(h) & (h > 0)))[0])
                raise param_error("bandwidths", owner, "finite bandwidths > 0 (data units), one per point", h,
                                  shown=f"bandwidths[{bad}] = {h[bad]!r}")
            h = np.array(h, dtype=np.float64)
            self.bandwidth_ = float(np.exp(np.sum(w[used] * np.log(h[used])) / w[used].sum()))
        else:  # Abramson: the pilot is the fixed-bandwidth estimate just fitted
            self._adaptive = None
            log_pilot = np.asarray(self.score_samples(X), dtype=np.float64)
            h, self.pilot_log_geometric_mean_ = _adaptive.abramson_bandwidths(
                log_pilot, self._scale, float(self.sensitivity), w)
        self.adaptive_l1_bound_ = 0.0
        if self.adaptive_bins is not None:
            h, eps = _adaptive.quantise_bandwidths(h, int(self.adaptive_bins), used)
            self.adaptive_l1_bound_ = _adaptive.l1_bound(self.kernel_, d, eps)
        self.bandwidths_ = h
        self._adaptive = ("sample-point", h)

    def _refuse_adaptive(self, what):
        if getattr(self, "_adaptive", None) is not None:
            given = self.adaptive if self.adaptive not in (None, False) else None
            raise param_error("adaptive", "KernelDensity", f"None (a fixed bandwidth) for {what}", given,
                              shown=None if given is not None else "per-point bandwidths (fit's 'bandwidths')",
                              hint=f"{what} works on a fixed-bandwidth estimate; refit without adaptive bandwidths.")

    def _fit_bounds(self):
        self._bounded = None
        self._fit_adaptive()
        if self.bounds is not None:
            from ._bounds import BoundedDensity
            self._bounded = BoundedDensity(self, self.bounds, self.boundary)
        return self

    def _loo_loglik(self, h, J, per_point=False):
        r"""Weighted mean over the points J of log p_{-j}(x_j) at bandwidth h (``per_point``: the values).

        log sum_{i != j} = L_j + log(1 - w_j k(0)/exp(L_j)) with L_j the full
        log-sum over all n sources (k(x, x) = phi(0) from kernel.diag), all in
        the log domain.
        """
        X, lw = self._X, self._log_w
        Z = X / np.asarray(h, dtype=X.dtype)
        full = kernel_logsumexp(self.kernel_, Z, Z[J], lw, **self._engine_opts()).astype(np.float64)
        self_term = lw[J] + np.log(self.kernel_.diag(Z[:1]).astype(np.float64))[0]
        frac = np.exp(np.minimum(self_term - full, 0.0))
        with np.errstate(divide="ignore"):
            loo = full + np.log1p(-frac)
        w = self._w[J]
        log_rest = np.log(np.maximum(self._w.sum() - w, 1e-300))
        logp = loo - log_rest - self._log_integral - X.shape[1] * math.log(h)
        if per_point:
            return logp
        return float(np.sum(w * logp) / w.sum())

    def _lscv_logs(self, h, J):
        r"""``(log A, log B)`` with A = \int p^2 (estimated on the points J) and B = \sum_j w_j p_{-j}(x_j) / \sum_J w_j,
        so that LSCV(h) = A - 2B. A = sum_ij p_i p_j N(x_i - x_j; 0, 2 h^2 I), written as a Gaussian kernel sum of
        bandwidth sqrt(2) h in the log domain."""
        X, lw = self._X, self._log_w
        d = X.shape[1]
        Z = X / np.asarray(h, dtype=X.dtype)
        wj = self._w[J]
        lp = lw - self._log_w_total                                   # log p_i
        sq = type(self.kernel_)(math.sqrt(2.0))                       # exp(-r^2 / 4) on the data / h
        inner = kernel_logsumexp(sq, Z, Z[J], lp, **self._engine_opts()).astype(np.float64)
        log_norm = -0.5 * d * math.log(4 * math.pi) - d * math.log(h)  # N(.; 0, 2 h^2 I) at 0
        with np.errstate(divide="ignore"):
            lwj = np.log(wj / wj.sum())
        log_a = float(np.logaddexp.reduce(lwj + inner)) + log_norm
        loo = self._loo_loglik(h, J, per_point=True)
        log_b = float(np.logaddexp.reduce(lwj + loo))
        return log_a, log_b

    def _cross_validate(self, h0, grid, cv_range, cv_max_eval, lscv=False):
        n = self._X.shape[0]
        m = n if cv_max_eval is None else cv_max_eval
        if m >= n:
            J = np.arange(n)
        else:  # a fixed-seed subsample of evaluation points (documented in cv_max_eval)
            J = np.sort(np.random.default_rng(0).choice(n, size=m, replace=False))
            if not self._w[J].sum() > 0:
                J = np.arange(n)
        hs = h0 * np.geomspace(cv_range[0], cv_range[1], grid)
        self.cv_n_eval_ = int(J.size)
        self.cv_bandwidths_ = hs
        if lscv:   # A - 2B on a common scale: exp(log A - c) - 2 exp(log B - c), c the largest log
            logs = np.array([self._lscv_logs(float(h), J) for h in hs])
            c = np.max(logs[np.isfinite(logs)]) if np.isfinite(logs).any() else 0.0
            with np.errstate(over="ignore", invalid="ignore"):
                crit = np.exp(logs[:, 0] - c) - 2 * np.exp(logs[:, 1] - c)
            top = np.nanmax(np.abs(crit)) if np.isfinite(crit).any() else 1.0
            self.cv_scores_ = crit / (top if top > 0 else 1.0)
            return float(hs[int(np.argmin(np.where(np.isnan(crit), np.inf, crit)))])
        scores = np.array([self._loo_loglik(float(h), J) for h in hs])
        self.cv_scores_ = scores
        return float(hs[int(np.argmax(np.where(np.isnan(scores), -np.inf, scores)))])

    def _check_fitted(self, what):
        if not hasattr(self, "bandwidth_"):
            raise NotFittedError(f"This KernelDensity instance is not fitted yet. Call 'fit' before '{what}'.")

    def score_samples(self, X):
        """Log density at each row of X (log of 1/data-units^d), shape (m,)."""
        if any_dask(X, getattr(self, "_X", None)):  # dask queries or dask-fitted data: a lazy dask array
            self._refuse_adaptive("dask queries")
            from ..dask._methods import score_samples
            return score_samples(self, X)
        self._check_fitted("score_samples")
        if getattr(self, "_bounded", None) is not None:
            return self._bounded.score_samples(X)
        Y = validate_data(self, X, dtype=[np.float64, np.float32], reset=False)
        Y = check_points(Y, "X", "KernelDensity.score_samples")
        out_dt = np.float32 if (Y.dtype == np.float32 and self._X.dtype == np.float32) else np.float64
        if getattr(self, "_adaptive", None) is not None:
            return self._score_adaptive(Y, out_dt)
        kernel, Xs, Ys, log_w = self._scaled_problem(Y, out_dt)
        lse = kernel_logsumexp(kernel, Xs, Ys, log_w, **self._engine_opts())
        const = self._log_norm()
        with np.errstate(over="ignore"):
            return (lse.astype(np.float64) - const).astype(out_dt, copy=False)

    def _score_adaptive(self, Y, out_dt):
        """log p at the validated queries Y for the sample-point or balloon estimator (module _adaptive)."""
        from . import _adaptive
        kind, h = self._adaptive
        if kind == "balloon":
            hq = _adaptive.knn_distances(self._X, Y, self.n_neighbors_, self._w > 0)
            lse = _adaptive.balloon_logsumexp(self.kernel_, self._X, Y, self._log_w, hq, self._engine_opts(), out_dt)
        else:
            lse = _adaptive.sample_point_logsumexp(self.kernel_, self._X, Y, self._log_w, h, self._engine_opts(),
                                                   out_dt)
        with np.errstate(over="ignore"):
            return (lse - self._log_w_total - self._log_integral).astype(out_dt, copy=False)

    def _log_norm(self):
        """log of (sum w) (integral of the kernel) h^d |det L|: what the log-sum-exp is divided by."""
        logdet = self._whiten[2] if getattr(self, "_whiten", None) is not None else 0.0
        return self._log_w_total + self._log_integral + self.n_features_in_ * math.log(self._scale) + logdet

    def _scaled_problem(self, Y, out_dt=np.float64, owner="KernelDensity.score_samples"):
        """``(kernel_, X / h, Y / h, log weights)``: the sums the estimate is made of, in the working dtype
        (``out_dt`` when the scaled data fit it, else float64). Y: validated queries (data coordinates;
        whitened here with a bandwidth matrix)."""
        if getattr(self, "_whiten", None) is not None:
            Y = (np.asarray(Y, dtype=np.float64) @ self._whiten[0].T).astype(Y.dtype, copy=False)
        h = self._scale
        ymax = float(np.max(np.abs(Y)))
        if not math.isfinite(ymax / h):
            raise param_error("X", owner, f"at most {h * _F64_MAX:.3g} in absolute value "
                              f"with bandwidth_={h:g} (the points divided by the bandwidth must stay finite "
                              "float64)", Y, shown=f"a largest |X| of {ymax:g}")
        # data / h must fit float32 to stay in float32 (bandwidth_ = 1e-30: 1e30 / 1e-30 does not)
        f32_ok = _fits(h, np.float32) and max(ymax, float(np.max(np.abs(self._X)))) / h <= _F32_MAX / 4
        dt = out_dt if f32_ok else np.float64
        return self.kernel_, _scaled(self._X, h, dt), _scaled(Y, h, dt), self._log_w

    def approximate(self, *, rtol=0.1, delta=0.05, **options):
        """An :class:`ApproximateKDE` of this estimate: same data, kernel and fitted bandwidth.

        For many queries on large n: exact contributions of each query's nearest points plus an unbiased
        sample of the rest, or (``method="tree"``, Gaussian kernel) stratified sampling on a tree of
        the points, with a per-query relative error bound (see :class:`ApproximateKDE` for what the
        bound guarantees). Only for a kernel given by name, equal weights and a scalar bandwidth (no
        bandwidth matrix, bounds or adaptive bandwidths).

        Parameters
        ----------
        rtol : float in (0, 1), default 0.1
            Relative error target of each density value.
        delta : float in (0, 1), default 0.05
            Failure probability of each query's bound.
        **options
            Other :class:`ApproximateKDE` parameters (``method``, ``n_neighbors``, ``bound``, ...).

        Returns
        -------
        ApproximateKDE
            Fitted on this estimator's data (its index is built here).
        """
        from ._approx import ApproximateKDE

        self._check_fitted("approximate")
        self._refuse_adaptive("approximate")
        owner = "KernelDensity.approximate"
        if any_dask(self._X):
            raise param_error("X", owner, "data fitted from a NumPy array", self._X, shown="a dask array")
        if not isinstance(self.kernel, str):
            raise param_error("kernel", owner, "a kernel given by name (ApproximateKDE builds its own)",
                              self.kernel, kind="type")
        for name in ("bandwidth_matrix", "bounds"):
            if getattr(self, name) is not None:
                raise param_error(name, owner, "None (a scalar bandwidth on unbounded data)", getattr(self, name))
        if not np.all(self._w == self._w[0]):
            raise param_error("sample_weight", owner, "equal weights (ApproximateKDE samples points uniformly)",
                              "unequal weights")
        name = self.kernel.lower()
        return ApproximateKDE(kernel=SKLEARN_NAMES.get(name, name), bandwidth=float(self.bandwidth_), rtol=rtol,
                              delta=delta, memory=self.memory, threads=self.threads, backend=self.backend,
                              **options).fit(self._X)

    def diagnose(self, Y, **options):
        """Per-query effective number of points, largest-term share and regime (CLT / heavy-tailed /
        extreme-value) at the queries Y: :func:`kernelkit.density.density_diagnostics` (its options too)."""
        self._refuse_adaptive("diagnose")
        from ._diagnostics import density_diagnostics
        return density_diagnostics(self, Y, **options)

    def cdf(self, x):
        """Cumulative distribution function at the points x (1-D data, Gaussian or Laplace kernel):
        :func:`kernelkit.density.kde_cdf`."""
        self._refuse_adaptive("cdf")
        from ._marginals import kde_cdf
        return kde_cdf(self, x)

    def quantile(self, q):
        """Quantiles at the probabilities q (1-D data): :func:`kernelkit.density.kde_quantile`."""
        self._refuse_adaptive("quantile")
        from ._marginals import kde_quantile
        return kde_quantile(self, q)

    def marginal(self, columns):
        """The marginal density of a subset of columns (Gaussian kernel): :func:`kernelkit.density.kde_marginal`."""
        self._refuse_adaptive("marginal")
        from ._marginals import kde_marginal
        return kde_marginal(self, columns)

    def conditional(self, given_columns, given_values):
        """The conditional density of the other columns given values of ``given_columns`` (Gaussian kernel):
        :func:`kernelkit.density.kde_conditional`."""
        self._refuse_adaptive("conditional")
        from ._marginals import kde_conditional
        return kde_conditional(self, given_columns, given_values)

    def modes(self, seeds=None, **options):
        """Modes of the estimate by mean shift from ``seeds`` (default: the data points):
        :func:`kernelkit.density.mean_shift` (its options too)."""
        self._refuse_adaptive("modes")
        from ._modes import mean_shift
        return mean_shift(self, seeds, **options)

    def score(self, X, y=None):
        """Total log-likelihood of the rows of X (sum of score_samples)."""
        return float(np.sum(self.score_samples(X), dtype=np.float64))

    def sample(self, n_samples=1, random_state=None):
        """Draw points from the estimated density: a data point (by weight) plus kernel noise times h.

        Parameters
        ----------
        n_samples : int >= 1
        random_state : None, int >= 0, numpy SeedSequence, Generator or RandomState
            A Generator is used (and advanced) as is.
        """
        self._check_fitted("sample")
        if getattr(self, "_bounded", None) is not None:
            return self._bounded.sample(n_samples, random_state)
        return self._sample_unbounded(n_samples, random_state)

    def _sample_unbounded(self, n_samples, random_state):
        """Draws of the estimate without the boundary correction (see :meth:`sample`)."""
        owner = "KernelDensity.sample"
        n_samples = check_param(n_samples, "n_samples", owner, Integral(low=1))
        if isinstance(random_state, np.random.RandomState):  # scikit-learn's habit
            rng = np.random.default_rng(random_state.randint(0, 2 ** 31 - 1))
        else:
            rng = generator(random_state, owner)
        adaptive = getattr(self, "_adaptive", None)
        if adaptive is not None and adaptive[0] == "balloon":
            raise param_error("adaptive", "KernelDensity", "'abramson' or None to sample (the balloon estimate does "
                              "not integrate to 1: it is not a density to draw from)", self.adaptive)
        p = self._w / self._w.sum()
        idx = rng.choice(self._X.shape[0], size=n_samples, p=p)
        try:
            noise = self.kernel_.sample_density(n_samples, self.n_features_in_, rng)
        except NotImplementedError:
            raise param_error("kernel", "KernelDensity", "a kernel that can be sampled as a density to use "
                              "KernelDensity.sample", self.kernel_) from None
        scale = self._scale if adaptive is None else adaptive[1][idx][:, None]   # sample-point: x_i + h_i z
        Z = self._X[idx].astype(np.float64) + scale * np.asarray(noise, dtype=np.float64)
        return Z if getattr(self, "_whiten", None) is None else Z @ self._whiten[1].T
