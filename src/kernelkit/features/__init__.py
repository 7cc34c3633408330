"""Random features and Nystrom features: explicit finite-dimensional kernel maps.

scikit-learn transformers (``fit``, ``transform``, ``fit_transform``) whose
inner products approximate a kernelkit kernel, with the approximation stated
in each docstring.
"""

from __future__ import annotations

import importlib as _importlib

# public name -> module defining it (imported on first use)
_LAZY = {
    "RandomFourierFeatures": "._fourier", "OrthogonalRandomFeatures": "._fourier",
    "StructuredOrthogonalFeatures": "._fourier", "PositiveRandomFeatures": "._positive",
    "NystroemFeatures": "._nystroem", "RandomFeaturesRidge": "._ridge",
    "KernelPCA": "._kpca", "KernelKMeans": "._kkmeans",
}

__all__ = list(_LAZY)


def __getattr__(name):
    if name in _LAZY:
        value = getattr(_importlib.import_module(_LAZY[name], __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'kernelkit.features' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(__all__))
