"""The kernel-sum engine: one entry point per reduction.

``out[j, :] = sum_i k(X[i], Y[j]) * W[i, :]`` and its log-sum-exp and top-k
variants, tiled within an explicit memory budget (see :func:`kernelkit.options`).
Methods never loop over points themselves: they call these functions, and the
engine picks the backend (fused compiled CPU path by default, blocked NumPy as
reference and fallback).
"""

from __future__ import annotations

import numpy as np

from .._xp import any_dask
from .._options import get_options
from .._validation import check_pair, check_weights, check_int, param_error
from ..kernels import Kernel, fits_float32
from . import _numpy, _pruned
from ..exceptions import InvalidValueError

from ._components import (Component, Modulated, MAX_COMPONENTS, compile_components, kernel_components,
                          register_family)
from ._prepared import PreparedNormal, PreparedSum, prepare_normal, prepare_sum

__all__ = ["kernel_sum", "kernel_logsumexp", "kernel_topk", "kernel_block", "fused_available", "cpu_features",
           "prepare_sum", "prepare_normal", "PreparedNormal",
           "PreparedSum", "register_family", "kernel_components", "compile_components", "Component", "Modulated",
           "MAX_COMPONENTS"]


def _check_kernel(kernel, owner):
    if not isinstance(kernel, Kernel):
        raise param_error("kernel", owner, "a kernelkit Kernel object (e.g. kernelkit.Gaussian(1.0))", kernel,
                          kind="type", hint="Use kernelkit.make_kernel for names.")
    return kernel


def _fused_backend():
    """The compiled backend module, or None when it is not built."""
    try:
        from . import _fused as mod
    except ImportError:  # pragma: no cover - depends on the build
        return None
    return mod if mod.available() else None


def fused_available():
    """True when the compiled CPU backend is built and importable."""
    return _fused_backend() is not None


def cpu_features():
    """Which compiled builds exist and which one runs on this CPU.

    The fused engine is compiled for baseline x86-64, x86-64-v3 (AVX2 + FMA)
    and x86-64-v4 (AVX-512F/BW/DQ/VL, 512-bit vectors); the best build the
    CPU supports is imported, unless the environment variable
    ``KERNELKIT_ENGINE_CLONE`` names another. The thinning walk's hot loops
    carry the same three clones, picked by the CPU.

    Returns
    -------
    dict
        ``engine``: the running build ("x86-64-v4", "x86-64-v3", "baseline",
        or None without a compiled engine); ``built``: the builds in this
        installation; ``cpu``: the instruction-set features detected (bools).
    """
    fused = _fused_backend()
    if fused is None:
        return {"engine": None, "built": [], "cpu": {}}
    return {"engine": fused.clone(), "built": fused.built_clones(), "cpu": fused.cpu_features()}


def _backend(opts, kernel, op):
    """The module that runs ``op`` for ``kernel`` under ``opts``."""
    if opts.backend == "numpy":
        return _numpy
    if opts.backend == "torch":
        from . import _torch
        reason = _torch.refusal(kernel)
        if reason:
            raise param_error("backend", None, f"'auto' or 'numpy' for {kernel!r}", "torch", noun="option",
                              shown="'torch'", hint=f"The torch backend cannot evaluate it: {reason}.")
        return _torch
    fused = _fused_backend()
    if fused is not None and fused.supports(kernel, op):
        return fused
    if opts.backend == "fused":
        reason = "is not built" if fused is None else f"does not support {op} with {kernel!r}"
        raise param_error("backend", None, "'auto' or 'numpy' here", "fused", noun="option", shown="'fused'",
                          hint=f"The fused backend {reason}.")
    return _numpy


def _opts(memory, threads, backend, progress):
    return get_options(memory=memory, threads=threads, backend=backend, progress=progress)


def _working(kernel, X, Y, W=None):
    """float32 inputs whose kernel constants, squared distances or weights do not fit float32
    (Gaussian(1e-20): 1 / (2 sigma^2) = 5e39) are computed in float64; else unchanged."""
    if X.dtype == np.float32 and (not fits_float32(kernel, X, Y) or _big(W)):
        X64 = X.astype(np.float64)
        return X64, (X64 if Y is X else Y.astype(np.float64))
    return X, Y


def _big(W):
    """True if some finite weight (or log weight) is beyond 1e30 in absolute value (inf * 0 in float32)."""
    if W is None:
        return False
    finite = W[np.isfinite(W)]
    return bool(finite.size) and float(np.abs(finite).max()) > 1e30


def _cast(out, dtype):
    """Round a float64 result to the output dtype (values beyond float32 become +-inf, silently)."""
    with np.errstate(over="ignore"):
        return out.astype(dtype, copy=False)


def _dask_input(*arrays):
    """True if one of ``arrays`` is a dask collection (told by its type's module; dask is not imported)."""
    return any_dask(*arrays)


def kernel_sum(kernel, X, Y, weights=None, *, memory=None, threads=None, backend=None, progress=None, prune=None):
    r"""Weighted kernel sums :math:`out_{j,:} = \sum_i k(x_i, y_j)\, W_{i,:}`.

    Dask arrays (X, Y or weights) give a lazy dask array, computed by tasks
    that run this engine on blocks (:mod:`kernelkit.dask`, docs/dask.md).

    Parameters
    ----------
    kernel : Kernel
        The kernel k.
    X : array of shape (n, d)
        Source points x_i.
    Y : array of shape (m, d)
        Query points y_j.
    weights : array of shape (n,) or (n, p), optional
        W (any sign). Default: all ones.
    memory, threads, backend, progress : optional
        Per-call overrides of :func:`kernelkit.options` (memory budget in
        bytes or a string such as "256MB", CPU threads, backend name, tqdm bar).
    prune : {None, True, False}, default None
        Skip the pairs beyond the support radius of a compactly supported
        kernel (exact: they are 0; :mod:`kernelkit.engine._pruned`). None:
        when d <= 8, the backend is the fused or NumPy one and it pays
        (n * m >= 2^22 and at most half the pairs kept); True: whenever the
        kernel has a compact support and d <= 8; False: never. Dask inputs
        use the default in every task.

    Returns
    -------
    out : array of shape (m,) or (m, p)
        In the dtype of the inputs (float32 when X and Y are both float32,
        float64 otherwise). Partial sums are accumulated in float64 (the
        fused backend first sums each tile row, at most 256 points, in the input
        precision, then adds the tile sums in float64). float32 inputs whose
        kernel constants do not fit float32 (a Gaussian bandwidth below about
        4e-20, for instance) are computed in float64.
    """
    if _dask_input(X, Y, weights):  # a task graph over the blocks: kernelkit.dask
        from ..dask import _graph
        return _graph.kernel_sum(kernel, X, Y, weights, memory=memory, threads=threads, backend=backend)
    _check_kernel(kernel, "kernel_sum")
    X, Y = check_pair(X, Y, owner="kernel_sum")
    kernel._check_features(X.shape[1], "kernel_sum")
    W = check_weights(weights, X.shape[0], "weights", "kernel_sum")
    squeeze = W is None or W.ndim == 1
    W = np.ones((X.shape[0], 1)) if W is None else W.reshape(X.shape[0], -1)
    opts = _opts(memory, threads, backend, progress)
    dtype = X.dtype
    X, Y = _working(kernel, X, Y, W)
    out = _pruned.kernel_sum(kernel, X, Y, W, opts, lambda op: _backend(opts, kernel, op), prune)
    out = _cast(out, dtype)
    return out[:, 0] if squeeze else out


def kernel_logsumexp(kernel, X, Y, log_weights=None, *, memory=None, threads=None, backend=None, progress=None,
                     prune=None):
    r"""Log-domain kernel sums :math:`out_{j,:} = \log \sum_i \exp(\log k(x_i, y_j) + L_{i,:})`.

    Exact in the log domain: nothing underflows even when every k(x_i, y_j)
    is below the smallest float64 (high-dimensional kernel density
    estimation). Only for positive kernels (``kernel.is_positive``). Dask
    arrays give a lazy dask array (:mod:`kernelkit.dask`).

    Parameters
    ----------
    kernel : Kernel
        A positive kernel (all radial kernels, their sums, products and
        positive scalings).
    X, Y : arrays of shape (n, d) and (m, d)
    log_weights : array of shape (n,) or (n, p), optional
        L, log of non-negative weights (-inf allowed for zero weights).
        Default: zeros (unit weights).
    memory, threads, backend, progress : optional
        Per-call overrides of :func:`kernelkit.options`.
    prune : {None, True, False}, default None
        As in :func:`kernel_sum`: compactly supported kernels skip the pairs
        beyond the support (exact; -inf where no point is in the support).

    Returns
    -------
    out : array of shape (m,) or (m, p), float64 or float32 as the inputs.
    """
    if _dask_input(X, Y, log_weights):
        from ..dask import _graph
        return _graph.kernel_logsumexp(kernel, X, Y, log_weights, memory=memory, threads=threads, backend=backend)
    _check_kernel(kernel, "kernel_logsumexp")
    if not kernel.is_positive:
        raise param_error("kernel", "kernel_logsumexp", "a positive kernel (log k must exist)", kernel)
    X, Y = check_pair(X, Y, owner="kernel_logsumexp")
    kernel._check_features(X.shape[1], "kernel_logsumexp")
    LW = check_weights(log_weights, X.shape[0], "log_weights", "kernel_logsumexp", allow_neg_inf=True)
    squeeze = LW is None or LW.ndim == 1
    LW = np.zeros((X.shape[0], 1)) if LW is None else LW.reshape(X.shape[0], -1)
    opts = _opts(memory, threads, backend, progress)
    dtype = X.dtype
    X, Y = _working(kernel, X, Y, LW)
    out = _pruned.kernel_logsumexp(kernel, X, Y, LW, opts, lambda op: _backend(opts, kernel, op), prune)
    out = _cast(out, dtype)
    return out[:, 0] if squeeze else out


def _logsumexp_max(kernel, X, Y, log_weights, *, memory=None, threads=None, backend=None, progress=None):
    """``(kernel_logsumexp(...), max_i (log k(x_i, y_j) + L_i))`` in one pass, float64, shape (m,) each.

    For diagnostics that need the largest term beside the sum (the density module). X, Y, log_weights
    are validated arrays (log_weights of shape (n,)); fused and NumPy backends (others run the NumPy one).
    """
    opts = _opts(memory, threads, backend, progress)
    LW = np.asarray(log_weights, dtype=np.float64).reshape(X.shape[0], 1)
    X, Y = _working(kernel, X, Y, LW)
    mod = _backend(opts, kernel, "logsumexp")
    if getattr(mod, "__name__", "").rsplit(".", 1)[-1] != "_fused":
        from . import _numpy as mod
    out, top = mod.kernel_logsumexp(kernel, X, Y, LW, opts, return_max=True)
    return np.asarray(out, np.float64)[:, 0], np.asarray(top, np.float64)[:, 0]


def kernel_topk(kernel, X, Y, k, *, memory=None, threads=None, backend=None, progress=None):
    """The k largest kernel values k(x_i, y_j) over i, for every query y_j.

    Dask arrays (X or Y) give two lazy dask arrays (:mod:`kernelkit.dask`).

    Parameters
    ----------
    kernel : Kernel
    X, Y : arrays of shape (n, d) and (m, d)
    k : int in [1, n]
    memory, threads, backend, progress : optional
        Per-call overrides of :func:`kernelkit.options`.

    Returns
    -------
    values : array of shape (m, k)
        Sorted in decreasing order (ties broken by the smaller index).
    indices : int64 array of shape (m, k)
        Rows of X.
    """
    if _dask_input(X, Y):
        from ..dask import _graph
        return _graph.kernel_topk(kernel, X, Y, k, memory=memory, threads=threads, backend=backend)
    _check_kernel(kernel, "kernel_topk")
    X, Y = check_pair(X, Y, owner="kernel_topk")
    kernel._check_features(X.shape[1], "kernel_topk")
    k = check_int(k, "k", "kernel_topk", low=1, high=X.shape[0])
    opts = _opts(memory, threads, backend, progress)
    dtype = X.dtype
    X, Y = _working(kernel, X, Y)
    values, indices = _backend(opts, kernel, "topk").kernel_topk(kernel, X, Y, k, opts)
    return _cast(values, dtype), indices


def kernel_block(kernel, X, Y=None, *, memory=None):
    """The dense kernel matrix ``K[i, j] = k(X[i], Y[j])``, shape (n, m).

    Guarded by the memory budget: raises ValueError when n * m values do not
    fit, instead of swapping. Computed by the fused backend when it covers the
    kernel (tile by tile in C, in the input dtype), else by the kernel's own
    NumPy evaluation (``backend="numpy"`` forces it). With ``Y`` None (or
    ``Y is X``) the diagonal is exactly ``kernel.diag(X)``.

    Parameters
    ----------
    kernel : Kernel
    X : array of shape (n, d)
    Y : array of shape (m, d), optional
        Default: X.
    memory : int or str, optional
        Memory budget for this call (bytes or a string such as "256MB").

    Returns
    -------
    K : array of shape (n, m)
    """
    _check_kernel(kernel, "kernel_block")
    same = Y is None or Y is X
    X, Y = check_pair(X, X if Y is None else Y, owner="kernel_block")
    Y = X if same else Y
    kernel._check_features(X.shape[1], "kernel_block")
    opts = _opts(memory, None, None, None)
    need = 2 * X.shape[0] * Y.shape[0] * 8
    if need > opts.memory:
        def size(b):
            return f"{b / 1e6:.1f} MB" if b >= 10**5 else f"{b} bytes"

        raise InvalidValueError(
            f"kernel_block of shape ({X.shape[0]}, {Y.shape[0]}) needs about {size(need)}, more than "
            f"the memory budget of {size(opts.memory)}; raise it with kernelkit.options(memory=...) "
            "or use kernel_sum / kernel_topk, which tile.")
    fused = _fused_backend() if opts.backend in ("auto", "fused") else None
    if fused is not None and fused.supports(kernel, "block"):
        dtype = X.dtype
        Xw, Yw = _working(kernel, X, Y)
        K = fused.kernel_block(kernel, Xw, Xw if Y is X else Yw, opts)
        return _cast(K, dtype)
    return kernel._block(X, Y)
