r"""What a kernel density estimate is made of, query by query, in any dimension.

At a query y the estimate is a sum of n terms :math:`t_i = w_i k_h(x_i, y)`.
Two numbers say how many of them matter:

* the effective number of points :math:`n_{eff}(y) = (\sum_i t_i)^2 / \sum_i t_i^2`
  (n when every term is equal, 1 when one term is everything), computed in
  the log domain as :math:`\exp(2 L_1 - L_2)` with
  :math:`L_1 = \operatorname{logsumexp}_i \log t_i` and
  :math:`L_2 = \operatorname{logsumexp}_i 2 \log t_i` (two engine
  log-sum-exps; the second with the squared kernel, which for the radial
  families is again a kernel of the family), so nothing underflows at d = 128;
* the share of the largest term, :math:`\max_i t_i / \sum_i t_i`, which the
  log-sum-exp pass finds on the way (its running maximum).

Regimes (Biroli & Mezard, "Kernel density estimators in large dimensions",
arXiv 2408.05807). With :math:`\alpha = \log n / d` fixed as n, d grow, the
estimate at a typical point follows the central limit theorem for bandwidths
above :math:`h_{CLT}(\alpha)`, a heavy-tailed (alpha-stable) law between
:math:`h_G(\alpha)` and :math:`h_{CLT}`, and extreme-value statistics below
:math:`h_G`, where a few points make the whole density. :func:`regime_thresholds`
gives both thresholds for Gaussian data and the Gaussian kernel (derivation in
its docstring). For other data there is no closed form, and each query is
classified by an empirical rule on its own terms (see :func:`density_diagnostics`).
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field

import numpy as np

from .._validation import Real, check_param, check_points
from ..engine import _logsumexp_max, kernel_logsumexp
from ..kernels import IMQ, Gaussian, Laplace, Matern, ProductKernel, RationalQuadratic, ScaledKernel

__all__ = ["density_diagnostics", "DensityDiagnostics", "regime_thresholds", "squared_kernel"]

REGIMES = ("CLT", "heavy-tailed", "extreme-value")


def squared_kernel(kernel):
    r"""The kernel :math:`k(x, y)^2`, as a kernel the engine evaluates.

    Gaussian(sigma) -> Gaussian(sigma / sqrt 2); Laplace(h) and Matern(1/2, h) -> Laplace(h / 2);
    IMQ(c, beta) -> IMQ(c, 2 beta); RationalQuadratic(l, alpha) -> RationalQuadratic(l / sqrt 2, 2 alpha);
    s * k -> s^2 * k^2; anything else the product kernel k * k (NumPy path). The distance
    (Euclidean or L1) is kept.
    """
    kind = type(kernel)
    dist = {"distance": getattr(kernel, "distance", "euclidean")}
    if kind is Gaussian:
        return Gaussian(kernel.bandwidth / math.sqrt(2), **dist)
    if kind is Laplace or (kind is Matern and kernel.nu == 0.5):
        return Laplace(kernel.bandwidth / 2, **dist)
    if kind is IMQ:
        return IMQ(kernel.bandwidth, 2 * kernel.beta, **dist)
    if kind is RationalQuadratic:
        return RationalQuadratic(kernel.bandwidth / math.sqrt(2), 2 * kernel.alpha, **dist)
    if kind is ScaledKernel:
        return ScaledKernel(squared_kernel(kernel.base), kernel.scale ** 2)
    return ProductKernel(kernel, kernel)


def _threshold_u(alpha):
    """The root u > 1 of log u - (u - 1) / u^2 = 2 alpha (the left side increases from 0 on u > 1)."""
    from scipy.optimize import brentq
    f = lambda u: math.log(u) - (u - 1) / (u * u) - 2 * alpha   # noqa: E731
    hi = 2.0
    while f(hi) < 0:
        hi *= 2
    return brentq(f, 1.0, hi, xtol=1e-15, rtol=1e-15)


def regime_thresholds(n, d, scale=1.0):
    r"""Bandwidths :math:`(h_{CLT}, h_G)` of the Gaussian kernel on Gaussian data N(mu, scale^2 I_d).

    With :math:`\alpha = \log n / d`, :math:`h_G = \text{scale} / \sqrt{u - 1}` and
    :math:`h_{CLT} = \sqrt 2\, h_G`, where :math:`u > 1` solves

    .. math:: \log u - \frac{u - 1}{u^2} = 2\alpha .

    Derivation (the random-energy-model argument behind the paper's regimes,
    written out here for the kernel :math:`\exp(-\|x - y\|^2 / (2 h^2))` and unit scale).
    For a typical query x (:math:`\|x\|^2 = d`) and y ~ N(0, I_d), :math:`e = \|x - y\|^2 / d` has
    the scaled cumulant generating function
    :math:`\varphi(s) = \lim d^{-1} \log E e^{-s d e} = -\tfrac12 \log(1 + 2s) - s/(1 + 2s)`.
    Tilting by s puts the mass at :math:`e(s) = -\varphi'(s)`, at large-deviation
    cost :math:`I(e(s)) = -s\,e(s) - \varphi(s) = \tfrac12 \log u - (u - 1)/(2u^2)`
    with u = 1 + 2s. Among n = e^{alpha d} points, distances of cost I exist
    only while I < alpha. The sum of kernel values (s = beta = 1/(2h^2)) is
    carried by the points at e(beta): while they exist the sum is a bulk average,
    and below the bandwidth where I(e(beta)) = alpha (u = 1 + 1/h^2: h_G) a few
    extreme points carry it. Its second moment is carried by e(2 beta): the
    central limit theorem needs those points to exist too, I(e(2 beta)) < alpha,
    which holds above 2 / h^2 = 1 / h_G^2 (h_CLT = sqrt 2 h_G). The factor sqrt 2
    is the random energy model's beta_c / 2 boundary between Gaussian and
    stable fluctuations.

    These are limits as n, d grow. At finite size, measured with this module on
    N(0, I) data (500 queries; d = 8, 32, 128; n = 1e4 to 1e5): at h_G the median
    n_eff is 3 to 7 and the median largest-term share 0.3 to 0.5; at h_CLT the
    median n_eff is 10 to 270 and rises with d; below h_G / 2 the median n_eff is 1.0.

    Parameters
    ----------
    n : int >= 2
        Number of data points.
    d : int >= 1
        Dimension.
    scale : float > 0
        Standard deviation of each coordinate of the data (data units).

    Returns
    -------
    (h_clt, h_g) : tuple of float
        In data units; h_clt > h_g.
    """
    owner = "regime_thresholds"
    from .._validation import Integral
    n = check_param(n, "n", owner, Integral(low=2))
    d = check_param(d, "d", owner, Integral(low=1))
    scale = check_param(scale, "scale", owner, Real(low=0, low_open=True))
    u = _threshold_u(math.log(n) / d)
    h_g = float(scale) / math.sqrt(u - 1)
    return math.sqrt(2) * h_g, h_g


@dataclass(frozen=True, repr=False)
class DensityDiagnostics:
    """Per-query diagnostics of a kernel density estimate (see :func:`density_diagnostics`).

    Attributes
    ----------
    log_density : array (m,)
        The estimate's log density at each query (as ``score_samples``).
    n_eff : array (m,)
        Effective number of points (sum t)^2 / sum t^2, in [1, n] (NaN where every term underflows
        to exp(-inf), i.e. the query has zero density).
    top_share : array (m,)
        Share of the largest term in the estimate, in (0, 1].
    regime : array (m,) of str
        "CLT", "heavy-tailed" or "extreme-value", by the empirical rule.
    bandwidth : float or None
        The estimate's bandwidth (data units).
    thresholds : tuple (h_clt, h_g) or None
        :func:`regime_thresholds` for Gaussian data of the data's mean per-coordinate standard deviation,
        given when the kernel is Gaussian (a reference point, exact only for Gaussian data).
    n, d : int
        Number of data points and dimension of the estimate.
    rule : dict
        The thresholds of the empirical rule (``clt_min_neff``, ``ev_min_share``).
    """

    log_density: np.ndarray
    n_eff: np.ndarray
    top_share: np.ndarray
    regime: np.ndarray
    bandwidth: float | None
    thresholds: tuple | None
    n: int
    d: int
    rule: dict = field(default_factory=dict)

    def fractions(self):
        """``{regime: fraction of queries}``."""
        m = max(1, self.regime.size)
        return {r: float(np.count_nonzero(self.regime == r)) / m for r in REGIMES}

    def summary(self):
        """A few lines of text: the bandwidth against the thresholds, n_eff quantiles and regime fractions."""
        q = np.nanpercentile(self.n_eff, [10, 50, 90]) if np.isfinite(self.n_eff).any() else [np.nan] * 3
        s = np.nanpercentile(self.top_share, [50, 90]) if np.isfinite(self.top_share).any() else [np.nan] * 2
        lines = [f"n = {self.n:,}, d = {self.d}, alpha = log(n)/d = {math.log(max(self.n, 2)) / self.d:.3f}"]
        if self.bandwidth is not None:
            line = f"bandwidth h = {self.bandwidth:.4g}"
            if self.thresholds is not None:
                hc, hg = self.thresholds
                line += (f"; Gaussian-data thresholds h_CLT = {hc:.4g}, h_G = {hg:.4g} "
                         f"(h / h_CLT = {self.bandwidth / hc:.3g}, h / h_G = {self.bandwidth / hg:.3g})")
            lines.append(line)
        lines.append(f"effective number of points n_eff: p10 {q[0]:.3g}, median {q[1]:.3g}, p90 {q[2]:.3g}")
        lines.append(f"share of the largest term: median {s[0]:.3g}, p90 {s[1]:.3g}")
        fr = self.fractions()
        lines.append("regimes: " + ", ".join(f"{r} {100 * fr[r]:.1f}%" for r in REGIMES)
                     + f" (rule: extreme-value if share >= {self.rule.get('ev_min_share')}, CLT if n_eff >= "
                     f"{self.rule.get('clt_min_neff')})")
        return "\n".join(lines)

    def __repr__(self):
        return "DensityDiagnostics(\n  " + self.summary().replace("\n", "\n  ") + "\n)"


def density_diagnostics(kde, Y, *, clt_min_neff=100.0, ev_min_share=0.5, warn=True):
    r"""Effective number of points, largest-term share and regime of a fitted KernelDensity at queries Y.

    Per query y: :math:`n_{eff} = (\sum_i t_i)^2 / \sum_i t_i^2` and the share
    :math:`\max_i t_i / \sum_i t_i` of the largest term, with
    :math:`t_i = w_i k_h(x_i, y)` (module docstring). The empirical rule: a
    query is "extreme-value" when one term carries at least ``ev_min_share``
    of its density, "CLT" when n_eff >= ``clt_min_neff`` (the relative standard
    error of a mean of n_eff equal terms, 1 / sqrt(n_eff), is then at most 0.1),
    and "heavy-tailed" in between. For Gaussian data and the Gaussian kernel
    this rule sits where :func:`regime_thresholds` says: below h_G most queries
    are extreme-value, above a few h_CLT all are CLT (see the figures there).

    Cost: two engine log-sum-exps over n x m pairs (the first also gives the log density and the
    largest term), about 2x ``score_samples``.

    Parameters
    ----------
    kde : KernelDensity
        A fitted estimator.
    Y : array of shape (m, d)
        Query points (data units).
    clt_min_neff : float > 1, default 100
        n_eff from which a query counts as CLT.
    ev_min_share : float in (0, 1], default 0.5
        Nearest-point share from which a query counts as extreme-value.
    warn : bool, default True
        Warn (UserWarning) when more than half of the queries are extreme-value.

    Returns
    -------
    DensityDiagnostics
    """
    owner = "KernelDensity.diagnose"
    kde._check_fitted("diagnose")
    clt_min_neff = float(check_param(clt_min_neff, "clt_min_neff", owner, Real(low=1, low_open=True)))
    ev_min_share = float(check_param(ev_min_share, "ev_min_share", owner, Real(low=0, high=1, low_open=True)))
    Y = check_points(Y, "Y", owner)
    if Y.shape[1] != kde.n_features_in_:
        from .._validation import param_error
        raise param_error("Y", owner, f"an array with {kde.n_features_in_} columns (as the fitted data)", Y)
    kernel, Xs, Ys, log_w = kde._scaled_problem(Y, owner=owner)
    opts = kde._engine_opts()
    L1, top = _logsumexp_max(kernel, Xs, Ys, log_w, **opts)
    L2 = kernel_logsumexp(squared_kernel(kernel), Xs, Ys, 2 * log_w, **opts).astype(np.float64)
    log_density = L1 - kde._log_norm()
    with np.errstate(invalid="ignore", over="ignore"):
        finite = np.isfinite(L1)
        n_eff = np.where(finite, np.exp(np.clip(2 * L1 - L2, 0.0, None)), np.nan)
        share = np.where(finite, np.exp(np.minimum(top - L1, 0.0)), np.nan)
    n = kde._X.shape[0]
    n_eff = np.minimum(n_eff, n)
    regime = np.where(share >= ev_min_share, "extreme-value",
                      np.where(n_eff >= clt_min_neff, "CLT", "heavy-tailed")).astype(object)
    thresholds = None
    if type(kde.kernel_) is Gaussian and kde.kernel_.distance == "euclidean" and kde.bandwidth_ is not None:
        sd = float(np.sqrt(np.mean(np.var(kde._X.astype(np.float64), axis=0))))
        if sd > 0 and n >= 2:
            thresholds = regime_thresholds(n, kde.n_features_in_, sd)
    out = DensityDiagnostics(log_density=log_density, n_eff=n_eff, top_share=share, regime=regime,
                             bandwidth=kde.bandwidth_, thresholds=thresholds, n=n, d=kde.n_features_in_,
                             rule={"clt_min_neff": clt_min_neff, "ev_min_share": ev_min_share})
    frac = out.fractions()["extreme-value"]
    if warn and frac > 0.5:
        warnings.warn(f"KernelDensity: {100 * frac:.0f}% of the queries are in the extreme-value regime (one data "
                      f"point's term carries at least {ev_min_share:g} of the density): the estimate there is a few "
                      "points, not a density. A larger bandwidth (see DensityDiagnostics.thresholds) or a lower "
                      "dimension gives a smoother estimate.", UserWarning, stacklevel=3)
    return out
