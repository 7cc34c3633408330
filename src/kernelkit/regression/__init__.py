"""Kernel regression and classification.

Exact kernel ridge regression for small n (:class:`KernelRidge`), Nystrom +
preconditioned conjugate gradients for large n (:class:`FalkonRegressor`,
:class:`FalkonClassifier`), and local kernel regression
(:class:`NadarayaWatson`, :class:`LocalLinearRegression`). Every estimator
follows scikit-learn's API and takes any kernelkit kernel; every kernel matrix
product goes through the engine (:mod:`kernelkit.engine`).
"""

from __future__ import annotations

import importlib as _importlib

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


def __getattr__(name):
    if name in _LAZY:
        value = getattr(_importlib.import_module(_LAZY[name], __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'kernelkit.regression' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(__all__))
