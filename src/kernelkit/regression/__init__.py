"""Kernel regression and classification.

Exact kernel ridge regression for small n (:class:`KernelRidge`), Nystrom +
preconditioned conjugate gradients for large n (:class:`FalkonRegressor`,
:class:`FalkonClassifier`), and local kernel regression
(:class:`NadarayaWatson`, :class:`LocalLinearRegression`). Every estimator
follows scikit-learn's API and takes any kernelkit kernel; every kernel matrix
product goes through the engine (:mod:`kernelkit.engine`).
"""

from __future__ import annotations

from .._lazy import lazy_exports

# public name -> module defining it (imported on first use: `import kernelkit.regression` stays light)
_LAZY = {
    "KernelRidge": "._exact",
    "NadarayaWatson": "._local", "LocalLinearRegression": "._local",
    "FalkonRegressor": "._falkon", "FalkonClassifier": "._falkon", "FalkonIteration": "._falkon",
    "select_centers": "._centers",
    "validation_search": "._search", "ValidationSearch": "._search",
    "GaussianProcessRegressor": "._gp",
}

__all__ = list(_LAZY)


__getattr__, __dir__ = lazy_exports(__name__, _LAZY)
