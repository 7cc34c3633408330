"""PyTorch backend: the same blocked reductions on a torch device.

Selected with ``backend="torch"`` (``pip install 'kernelkit[torch]'``). Runs on
the first CUDA device when one is visible, else on the CPU. Blocks are sized
from the memory budget exactly as in the NumPy backend; partial sums are
accumulated in float64 on the device. torch is imported on first use only.

Kernels are evaluated through their own array-namespace formulas (the same
code the NumPy reference runs, on torch tensors; see :mod:`kernelkit._xp`);
kernels whose formula exists for NumPy only are refused with the reason
(:func:`refusal`), never replaced by a parent's formula.

Extreme scales: float32 inputs whose kernel constants do not fit float32 are
promoted to float64 by the engine; data whose squared norms could overflow
(the Gram formula gives inf - inf there) are reduced by the NumPy backend
instead.
"""

from __future__ import annotations

import math

import numpy as np

from ._tiling import block_sizes, progress_bar
from ..exceptions import InvalidValueError
from ..kernels import r2_bound


def _torch():
    try:
        import torch
    except ImportError:
        raise InvalidValueError("The 'backend' option 'torch' needs PyTorch: pip install 'kernelkit[torch]'.") from None
    return torch


def available():
    try:
        import torch  # noqa: F401
    except ImportError:
        return False
    return True


def device():
    torch = _torch()
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def refusal(kernel):
    """None if the torch backend evaluates ``kernel`` exactly as defined, else the reason it cannot.

    torch evaluates a kernel through its array-namespace formula
    (``_xp_block``, or ``_log_profile(r2, xp)`` for radial kernels). A
    subclass that overrides one of the NumPy evaluation methods (``_block``,
    ``log_profile``, ...) below the class that defines that formula would run
    as its parent on torch: it is refused instead.
    """
    from ..kernels import Kernel, Matern, ProductKernel, RadialKernel, ScaledKernel, SumKernel
    from ._components import EVAL_METHODS
    if type(kernel) in (SumKernel, ProductKernel):
        return next((r for r in map(refusal, kernel.kernels) if r), None)
    if type(kernel) is ScaledKernel:
        return refusal(kernel.base)
    cls = type(kernel)
    if cls._xp_block is Kernel._xp_block:
        return f"{cls.__name__} defines its values for NumPy only (_block), with no array-namespace formula"
    formula = "_log_profile" if cls._xp_block is RadialKernel._xp_block else "_xp_block"
    owner = next(k for k in cls.__mro__ if formula in k.__dict__)
    for k in cls.__mro__[:cls.__mro__.index(owner)]:
        changed = [name for name in EVAL_METHODS if name in k.__dict__ and name != formula]
        if changed:
            return (f"{k.__name__}.{changed[0]} overrides how {owner.__name__} is evaluated on NumPy arrays, but "
                    f"the torch backend evaluates {owner.__name__}.{formula}; define {formula}(..., xp) in "
                    f"{k.__name__} so that both backends compute the same kernel")
    if isinstance(kernel, Matern) and kernel.nu not in (0.5, 1.5, 2.5):
        return "a Matern smoothness other than 1/2, 3/2, 5/2 needs scipy's Bessel functions (NumPy only)"
    return None


def supports(kernel, op):
    return refusal(kernel) is None


def _to(torch, a, dev):
    return torch.from_numpy(np.ascontiguousarray(a)).to(dev)


def _centered(torch, kernel, X, Y, dev):
    """Move to the device; radial kernels are shift-invariant, so centre on the
    mean of X to reduce cancellation in |x|^2 + |y|^2 - 2 x.y."""
    if not kernel.is_stationary:
        return _to(torch, X, dev), _to(torch, Y, dev)
    c = X.mean(axis=0, dtype=np.float64).astype(X.dtype)
    return _to(torch, X - c, dev), _to(torch, Y - c, dev)


def _use_numpy(kernel, X, Y):
    """True when the Gram distances could overflow (see the module docstring)."""
    return kernel.is_stationary and r2_bound(X, Y) > float(np.finfo(X.dtype).max) / 4


def _block(kernel, X, Y, log=False):
    from .._xp import torch_namespace
    return kernel._xp_block(X, Y, torch_namespace(), log=log)


def kernel_sum(kernel, X, Y, W, opts):
    if _use_numpy(kernel, X, Y):
        from . import _numpy
        return _numpy.kernel_sum(kernel, X, Y, W, opts)
    torch = _torch()
    dev = device()
    n, m, p = X.shape[0], Y.shape[0], W.shape[1]
    bx, by = block_sizes(n, m, X.shape[1], opts.memory, bytes_per_pair=4 * 8, extra_per_x=8 * p)
    Xt, Yt = _centered(torch, kernel, X, Y, dev)
    Wt = _to(torch, W.astype(X.dtype), dev)
    out = torch.zeros((m, p), dtype=torch.float64, device=dev)
    with torch.no_grad(), progress_bar(m, opts.progress, "kernel_sum") as bar:
        for j0 in range(0, m, by):
            Yb = Yt[j0:j0 + by]
            for i0 in range(0, n, bx):
                K = _block(kernel, Xt[i0:i0 + bx], Yb)
                out[j0:j0 + by] += (K.T @ Wt[i0:i0 + bx]).double()
            bar.update(Yb.shape[0])
    return out.cpu().numpy()


def kernel_logsumexp(kernel, X, Y, LW, opts):
    if _use_numpy(kernel, X, Y):
        from . import _numpy
        return _numpy.kernel_logsumexp(kernel, X, Y, LW, opts)
    torch = _torch()
    dev = device()
    n, m, p = X.shape[0], Y.shape[0], LW.shape[1]
    bx, by = block_sizes(n, m, X.shape[1], opts.memory, bytes_per_pair=4 * 8 * (1 + p), extra_per_x=8 * p)
    Xt, Yt = _centered(torch, kernel, X, Y, dev)
    LWt = _to(torch, LW, dev)
    out = torch.empty((m, p), dtype=torch.float64, device=dev)
    with torch.no_grad(), progress_bar(m, opts.progress, "kernel_logsumexp") as bar:
        for j0 in range(0, m, by):
            Yb = Yt[j0:j0 + by]
            acc = torch.full((Yb.shape[0], p), -math.inf, dtype=torch.float64, device=dev)
            for i0 in range(0, n, bx):
                L = _block(kernel, Xt[i0:i0 + bx], Yb, log=True).double().T  # (mb, bx)
                T = L[:, :, None] + LWt[i0:i0 + bx][None, :, :]                          # (mb, bx, p)
                acc = torch.logaddexp(acc, torch.logsumexp(T, dim=1))
            out[j0:j0 + by] = acc
            bar.update(Yb.shape[0])
    return out.cpu().numpy()


def kernel_topk(kernel, X, Y, k, opts):
    if _use_numpy(kernel, X, Y):
        from . import _numpy
        return _numpy.kernel_topk(kernel, X, Y, k, opts)
    torch = _torch()
    dev = device()
    n, m = X.shape[0], Y.shape[0]
    bx, by = block_sizes(n, m, X.shape[1], opts.memory, bytes_per_pair=4 * 8, min_bx=k)
    Xt, Yt = _centered(torch, kernel, X, Y, dev)
    values = np.empty((m, k))
    indices = np.empty((m, k), dtype=np.int64)
    with torch.no_grad(), progress_bar(m, opts.progress, "kernel_topk") as bar:
        for j0 in range(0, m, by):
            Yb = Yt[j0:j0 + by]
            best_v = torch.empty((Yb.shape[0], 0), dtype=torch.float64, device=dev)
            best_i = torch.empty((Yb.shape[0], 0), dtype=torch.int64, device=dev)
            for i0 in range(0, n, bx):
                K = _block(kernel, Xt[i0:i0 + bx], Yb).double().T
                idx = torch.arange(i0, i0 + K.shape[1], device=dev).expand_as(K)
                cv = torch.cat([best_v, K], 1)
                ci = torch.cat([best_i, idx], 1)
                kk = min(k, cv.shape[1])
                best_v, pos = torch.topk(cv, kk, dim=1)
                best_i = torch.gather(ci, 1, pos)
            v, i = best_v.cpu().numpy(), best_i.cpu().numpy()
            order = np.lexsort((i, -v), axis=1)
            values[j0:j0 + by] = np.take_along_axis(v, order, 1)
            indices[j0:j0 + by] = np.take_along_axis(i, order, 1)
            bar.update(Yb.shape[0])
    return values, indices
