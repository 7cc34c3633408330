"""PyTorch backend: the same blocked reductions on a torch device.

Selected with ``backend="torch"`` (``pip install 'kernelkit[torch]'``). Runs on
the first CUDA device when one is visible, else on the CPU. Blocks are sized
from the memory budget exactly as in the NumPy backend; partial sums are
accumulated in float64 on the device. torch is imported on first use only.

Extreme scales: float32 inputs whose kernel constants do not fit float32 are
promoted to float64 by the engine; data whose squared norms could overflow
(the Gram formula gives inf - inf there) are reduced by the NumPy backend
instead, and rational quadratics whose r^2 / c^2 could overflow take
log(1 + r^2/c^2) = log r^2 - log c^2 where the ratio is infinite.
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


def _sqdist(torch, X, Y):
    x2 = (X * X).sum(1)[:, None]
    y2 = (Y * Y).sum(1)[None, :]
    return torch.clamp(x2 + y2 - 2.0 * (X @ Y.T), min=0.0)


def _log1p_ratio(torch, r2, c2, big):
    """log(1 + r2 / c2); ``big``: the ratio may overflow (then log r2 - log c2 where it does)."""
    u = r2 / c2
    if not big:
        return torch.log1p(u)
    return torch.where(torch.isinf(u), torch.log(r2) - math.log(c2), torch.log1p(u))


def _log_radial(torch, family, p, r2, big=False):
    """log phi(r2) for the radial families (same formulas as kernels.py)."""
    if family == "gaussian":
        return r2 * (-0.5 / p["bandwidth"] ** 2)
    if family == "laplace":
        return -torch.sqrt(r2) / p["bandwidth"]
    if family == "matern":
        s = torch.sqrt(r2) * (math.sqrt(2 * p["nu"]) / p["bandwidth"])
        if p["nu"] == 0.5:
            return -s
        # log(1 + s + s^2/3) is below ulp(s) for s above 1e15 (float32) / 1e100: cap s there (no inf - inf)
        sc = torch.clamp(s, max=1e15 if s.dtype == torch.float32 else 1e100)
        if p["nu"] == 1.5:
            return torch.log1p(sc) - s
        if p["nu"] == 2.5:
            return torch.log1p(sc + sc * sc / 3.0) - s
        return None
    if family == "imq":
        return -p["beta"] * _log1p_ratio(torch, r2, p["bandwidth"] ** 2, big)
    if family == "rq":
        return -p["alpha"] * _log1p_ratio(torch, r2, 2 * p["alpha"] * p["bandwidth"] ** 2, big)
    return None


def _supported(spec):
    family, params = spec
    if family in ("sum", "product"):
        return all(_supported(s) for s in params)
    if family == "scaled":
        return _supported(params[1])
    p = dict(params)
    if family == "matern":
        return p["nu"] in (0.5, 1.5, 2.5)
    return family in ("gaussian", "laplace", "imq", "rq", "linear", "polynomial")


def supports(kernel, op):
    return _supported(kernel.spec)


def _block(torch, spec, X, Y, log=False, big=False):
    family, params = spec
    if family == "sum":
        out = sum(_block(torch, s, X, Y, big=big) for s in params)
        if not log:
            return out
        out = torch.log(out)
        lost = out == -math.inf
        if bool(lost.any()) and all(_radial_only(s) for s in params):  # underflow: exact log-sum-exp
            exact = torch.logsumexp(torch.stack([_block(torch, s, X, Y, log=True, big=big) for s in params]), dim=0)
            out = torch.where(lost, exact, out)
        return out
    if family == "product":
        parts = [_block(torch, s, X, Y, log=log, big=big) for s in params]
        out = parts[0]
        for q in parts[1:]:
            out = out + q if log else out * q
        return out
    if family == "scaled":
        scale, base = params
        inner = _block(torch, base, X, Y, log=log, big=big)
        return inner + math.log(scale) if log else inner * scale
    p = dict(params)
    if family == "linear":
        out = X @ Y.T + p["c"]
        return torch.log(out) if log else out
    if family == "polynomial":
        deg = p["degree"] if p["degree"] < 2 ** 62 else float(p["degree"])  # (torch takes int64 exponents)
        out = (p["gamma"] * (X @ Y.T) + p["c"]) ** deg
        return torch.log(out) if log else out
    lg = _log_radial(torch, family, p, _sqdist(torch, X, Y), big)
    return lg if log else torch.exp(lg)


def _to(torch, a, dev):
    return torch.from_numpy(np.ascontiguousarray(a)).to(dev)


def _radial_only(spec):
    family, params = spec
    if family in ("sum", "product"):
        return all(_radial_only(s) for s in params)
    if family == "scaled":
        return _radial_only(params[1])
    return family not in ("linear", "polynomial")


def _centered(torch, kernel, X, Y, dev):
    """Move to the device; radial kernels are shift-invariant, so centre on the
    mean of X to reduce cancellation in |x|^2 + |y|^2 - 2 x.y."""
    if not _radial_only(kernel.spec):
        return _to(torch, X, dev), _to(torch, Y, dev)
    c = X.mean(axis=0, dtype=np.float64).astype(X.dtype)
    return _to(torch, X - c, dev), _to(torch, Y - c, dev)


def _use_numpy(kernel, X, Y):
    """True when the Gram distances could overflow (see the module docstring)."""
    return _radial_only(kernel.spec) and r2_bound(X, Y) > float(np.finfo(X.dtype).max) / 4


def _big_ratio(kernel, X, Y):
    """True when some r^2 / c^2 of a rational quadratic could overflow."""
    scales = kernel._r2_scales()
    if not scales:
        return False
    fmax, r2max = float(np.finfo(X.dtype).max), r2_bound(X, Y)
    return any(r2max / q > fmax for q in scales)


def kernel_sum(kernel, X, Y, W, opts):
    if _use_numpy(kernel, X, Y):
        from . import _numpy
        return _numpy.kernel_sum(kernel, X, Y, W, opts)
    big = _big_ratio(kernel, X, Y)
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
                K = _block(torch, kernel.spec, Xt[i0:i0 + bx], Yb, big=big)
                out[j0:j0 + by] += (K.T @ Wt[i0:i0 + bx]).double()
            bar.update(Yb.shape[0])
    return out.cpu().numpy()


def kernel_logsumexp(kernel, X, Y, LW, opts):
    if _use_numpy(kernel, X, Y):
        from . import _numpy
        return _numpy.kernel_logsumexp(kernel, X, Y, LW, opts)
    big = _big_ratio(kernel, X, Y)
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
                L = _block(torch, kernel.spec, Xt[i0:i0 + bx], Yb, log=True, big=big).double().T  # (mb, bx)
                T = L[:, :, None] + LWt[i0:i0 + bx][None, :, :]                          # (mb, bx, p)
                acc = torch.logaddexp(acc, torch.logsumexp(T, dim=1))
            out[j0:j0 + by] = acc
            bar.update(Yb.shape[0])
    return out.cpu().numpy()


def kernel_topk(kernel, X, Y, k, opts):
    if _use_numpy(kernel, X, Y):
        from . import _numpy
        return _numpy.kernel_topk(kernel, X, Y, k, opts)
    big = _big_ratio(kernel, X, Y)
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
                K = _block(torch, kernel.spec, Xt[i0:i0 + bx], Yb, big=big).double().T
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
