"""Array namespaces for kernel formulas: one formula, NumPy arrays or torch tensors.

A kernel family writes its formula once, against a namespace ``xp`` that
offers the few functions kernels need (``exp``, ``log``, ``log1p``, ``sqrt``,
``sin``, ``cos``, ``rint``, ``where``, ``isinf``, ``minimum`` against a
scalar, ``sqdist``, ``l1dist``). :data:`NUMPY` runs it on NumPy arrays (the reference and
the NumPy backend); :func:`torch_namespace` on torch tensors (the torch
backend, CPU or CUDA). torch is imported only by :func:`torch_namespace`.
"""

from __future__ import annotations

import contextlib

import numpy as np

__all__ = ["NUMPY", "torch_namespace"]


class _NumpyNamespace:
    name = "numpy"
    exp = staticmethod(np.exp)
    log = staticmethod(np.log)
    log1p = staticmethod(np.log1p)
    sqrt = staticmethod(np.sqrt)
    sin = staticmethod(np.sin)
    cos = staticmethod(np.cos)
    rint = staticmethod(np.rint)
    where = staticmethod(np.where)
    isinf = staticmethod(np.isinf)
    isfinite = staticmethod(np.isfinite)
    errstate = staticmethod(np.errstate)

    @staticmethod
    def minimum(a, c):
        """Elementwise min(a, c) for a scalar c."""
        return np.minimum(a, c)

    @staticmethod
    def is_single(a):
        """True for float32 data."""
        return np.asarray(a).dtype == np.float32

    @staticmethod
    def sqdist(X, Y):
        from .kernels import sqdist
        return sqdist(X, Y)

    @staticmethod
    def l1dist(X, Y):
        from .kernels import l1dist
        return l1dist(X, Y)

    @staticmethod
    def matmul_t(X, Y):
        """X @ Y.T"""
        return X @ Y.T

    @staticmethod
    def asarray_like(values, ref):
        """``values`` as an array of the dtype (and device) of ``ref``."""
        return np.asarray(values, dtype=ref.dtype)

    @staticmethod
    def logsumexp_stack(arrays):
        """Elementwise log(sum_k exp(a_k)) over a list of equal-shape arrays."""
        return np.logaddexp.reduce(np.stack(arrays), axis=0)


#: the NumPy namespace (default of every kernel formula)
NUMPY = _NumpyNamespace()

_TORCH = None


def torch_namespace():
    """The torch namespace (imports torch; raises ImportError without it)."""
    global _TORCH
    if _TORCH is None:
        import torch

        class _TorchNamespace:
            name = "torch"
            exp = staticmethod(torch.exp)
            log = staticmethod(torch.log)
            log1p = staticmethod(torch.log1p)
            sqrt = staticmethod(torch.sqrt)
            sin = staticmethod(torch.sin)
            cos = staticmethod(torch.cos)
            rint = staticmethod(torch.round)   # (round half to even, like numpy.rint)
            where = staticmethod(torch.where)
            isinf = staticmethod(torch.isinf)
            isfinite = staticmethod(torch.isfinite)

            @staticmethod
            def errstate(**kwargs):
                return contextlib.nullcontext()

            @staticmethod
            def minimum(a, c):
                return torch.clamp(a, max=c)

            @staticmethod
            def is_single(a):
                return a.dtype == torch.float32

            @staticmethod
            def sqdist(X, Y):
                """|x|^2 + |y|^2 - 2 x.y clipped at 0 (callers centre the data first)."""
                x2 = (X * X).sum(1)[:, None]
                y2 = (Y * Y).sum(1)[None, :]
                return torch.clamp(x2 + y2 - 2.0 * (X @ Y.T), min=0.0)

            @staticmethod
            def l1dist(X, Y):
                """sum_k |x_k - y_k| (exact differences)."""
                return torch.cdist(X, Y, p=1.0)

            @staticmethod
            def matmul_t(X, Y):
                return X @ Y.T

            @staticmethod
            def asarray_like(values, ref):
                return torch.as_tensor(values, dtype=ref.dtype, device=ref.device)

            @staticmethod
            def logsumexp_stack(arrays):
                return torch.logsumexp(torch.stack(arrays), dim=0)

        _TORCH = _TorchNamespace()
    return _TORCH


def any_dask(*arrays):
    """True if one of ``arrays`` is a dask collection, told by its type's module (dask is not imported)."""
    return any(type(a).__module__.split(".")[0] == "dask" for a in arrays)
