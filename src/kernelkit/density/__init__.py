r"""Kernel density estimation, exact in the log domain, in any dimension.

The estimate with data :math:`x_1..x_n`, weights :math:`w_i \ge 0` and a
radial kernel :math:`k` of bandwidth :math:`h` is

.. math::

    \log p(y) = \operatorname{logsumexp}_i\big(\log k_h(x_i, y) + \log w_i\big)
                - \log \textstyle\sum_i w_i - \log \int k_h(0, z)\,dz ,

computed with :func:`kernelkit.kernel_logsumexp`: nothing underflows, so the
log density stays exact at d = 32 or 64 where every kernel value is below the
smallest float64.

Modules: ``_kde`` (:class:`KernelDensity`, Scott / Silverman rules),
``_diagnostics`` (what the estimate is made of in high dimension: effective
number of points, largest share, the CLT / heavy-tailed / extreme-value
regimes of Biroli & Mezard), ``_modes`` (mean shift, and mode finding after a
random projection), ``_grid`` (binned FFT KDE on 1-3-D grids, for plots),
``_isj`` (improved Sheather-Jones bandwidth in 1-D), ``_marginals`` (cdf and
quantiles in 1-D, marginal and conditional densities of Gaussian KDEs),
``_bounds`` (boundary correction on a box: reflection, renormalisation),
``_adaptive`` (variable bandwidths: the sample-point estimator with
Abramson's law or given per-point bandwidths, and the balloon / k-NN
estimator; ``KernelDensity(adaptive=...)``), ``_plugin`` (multivariate
plug-in bandwidth matrices for the Gaussian kernel, as R's ``ks::Hpi``;
``KernelDensity(bandwidth_matrix="plugin")``).
"""

from __future__ import annotations

from ._kde import KernelDensity, bandwidth_scott, bandwidth_silverman
from .._lazy import lazy_exports

# public names defined in the other modules (imported on first use)
_LAZY = {
    "density_diagnostics": "._diagnostics", "DensityDiagnostics": "._diagnostics",
    "regime_thresholds": "._diagnostics",
    "mean_shift": "._modes", "ModeResult": "._modes",
    "grid_kde": "._grid", "GridDensity": "._grid",
    "bandwidth_isj": "._isj",
    "kde_cdf": "._marginals", "kde_quantile": "._marginals", "kde_marginal": "._marginals",
    "kde_conditional": "._marginals",
    "BoundedDensity": "._bounds", "reflect_kde": "._bounds",
    "bandwidth_plugin": "._plugin",
    "ApproximateKDE": "._approx", "ApproximateDensity": "._approx",
}

__all__ = ["KernelDensity", "bandwidth_scott", "bandwidth_silverman", *_LAZY]

__getattr__, __dir__ = lazy_exports(__name__, _LAZY)
