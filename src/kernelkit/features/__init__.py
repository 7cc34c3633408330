"""Random features and Nystrom features: explicit finite-dimensional kernel maps.

scikit-learn transformers (``fit``, ``transform``, ``fit_transform``) whose
inner products approximate a kernelkit kernel, with the approximation stated
in each docstring.
"""

from __future__ import annotations

from .._lazy import lazy_exports

# public name -> module defining it (imported on first use)
_LAZY = {
    "RandomFourierFeatures": "._fourier", "OrthogonalRandomFeatures": "._fourier",
    "StructuredOrthogonalFeatures": "._fourier", "PositiveRandomFeatures": "._positive",
    "NystroemFeatures": "._nystroem", "RandomFeaturesRidge": "._ridge",
    "KernelPCA": "._kpca", "KernelKMeans": "._kkmeans",
}

__all__ = list(_LAZY)


__getattr__, __dir__ = lazy_exports(__name__, _LAZY)
