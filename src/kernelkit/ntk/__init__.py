"""Neural tangent kernels.

Infinite-width NNGP and NTK kernels of fully connected networks (closed forms
for common activations, Gauss-Hermite quadrature for any other), predictions
of infinitely wide networks trained by gradient descent, and empirical NTKs of
PyTorch models (full, trace, pNTK and projected), within a memory budget.
torch is imported only by the empirical NTK, on first use.
"""

from __future__ import annotations

import importlib as _importlib

# public name -> module defining it (imported on first use: `import kernelkit.ntk` stays light)
_LAZY = {
    # infinite width (_infinite.py, _activations.py, _predict.py)
    "NNGP": "._infinite", "NTK": "._infinite",
    "gradient_descent_mse": "._predict",
    # empirical NTKs of torch models (_empirical.py)
    "empirical_ntk": "._empirical", "EmpiricalNTK": "._empirical",
}

__all__ = list(_LAZY)


def __getattr__(name):
    if name in _LAZY:
        value = getattr(_importlib.import_module(_LAZY[name], __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'kernelkit.ntk' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(__all__))
