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
random projection).
"""

from __future__ import annotations

from ._kde import KernelDensity, bandwidth_scott, bandwidth_silverman
from .._lazy import lazy_exports

# public names defined in the other modules (imported on first use)
_LAZY = {
    "density_diagnostics": "._diagnostics", "DensityDiagnostics": "._diagnostics",
    "regime_thresholds": "._diagnostics",
    "mean_shift": "._modes", "ModeResult": "._modes",
}

__all__ = ["KernelDensity", "bandwidth_scott", "bandwidth_silverman", *_LAZY]

__getattr__, __dir__ = lazy_exports(__name__, _LAZY)
