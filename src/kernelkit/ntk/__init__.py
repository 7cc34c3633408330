"""Neural tangent kernels.

Infinite-width NNGP and NTK kernels of fully connected networks (closed forms
for common activations, Gauss-Hermite quadrature for any other), predictions
of infinitely wide networks trained by gradient descent, and empirical NTKs of
PyTorch models (full, trace, pNTK and projected), within a memory budget.
torch is imported only by the empirical NTK, on first use.
"""

from __future__ import annotations

from .._lazy import lazy_exports

# public name -> module defining it (imported on first use: `import kernelkit.ntk` stays light)
_LAZY = {
    # infinite width (_infinite.py, _activations.py, _predict.py)
    "NNGP": "._infinite", "NTK": "._infinite",
    "gradient_descent_mse": "._predict",
    # empirical NTKs of torch models (_empirical.py)
    "empirical_ntk": "._empirical", "EmpiricalNTK": "._empirical",
}

__all__ = list(_LAZY)


__getattr__, __dir__ = lazy_exports(__name__, _LAZY)
