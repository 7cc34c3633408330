"""Kernel plumbing shared by the compression algorithms.

``compile_kernel`` turns a kernel into the (codes, params) table the compiled
walk understands (the engine's family table, ``kernelkit.engine``'s
``kernel_components``, restricted to radial components), or None when the
compiled walk cannot evaluate it (then the NumPy walk runs, on engine sums).
``KernelRows`` evaluates ``out += sum_t c_t k(X[rows[t]], X)``: through the
compiled walk's loops when the kernel compiles, else through the engine.
"""

from __future__ import annotations

import numpy as np

from .._options import get_options
from ..engine import Component, MAX_COMPONENTS, compile_components, kernel_components, kernel_sum
from ..kernels import Kernel, SumKernel
from .._validation import param_error

try:  # pragma: no cover - depends on the build
    from . import _kt_ext
except ImportError:  # pragma: no cover
    _kt_ext = None

__all__ = ["compile_kernel", "compiled_available", "use_compiled", "KernelRows", "split_kernel_for"]


def compiled_available():
    """True when the compiled kernel-thinning loops are built."""
    return _kt_ext is not None


def compile_kernel(kernel, X=None):
    """``(codes int32 (c,), params float64 (c, 4))`` for the compiled walk, or None.

    Every radial family of the engine's table qualifies (Gaussian, Laplace,
    Matern with nu in {1/2, 3/2, 5/2}, IMQ, rational quadratic, periodic,
    one-dimensional spectral mixtures, registered user families), with
    positive scalings and sums of at most MAX_COMPONENTS terms; dot-product
    kernels and d >= 2 spectral mixtures do not. ``X``: the data, to flag
    rational quadratics whose r^2 / q could overflow.
    """
    comps = kernel_components(kernel)
    if (comps is None or not 1 <= len(comps) <= MAX_COMPONENTS
            or any(not isinstance(c, Component) or c.name == "poly" for c in comps)):
        return None
    return compile_components(comps, X)


def use_compiled(kernel, X=None):
    """The compiled table for ``kernel`` when the compiled path should run, else None."""
    if _kt_ext is None or get_options().backend == "numpy":
        return None
    return compile_kernel(kernel, X)


def split_kernel_for(kernel, method, d, alpha=0.5):
    """The kernel KT-SPLIT uses for ``method`` ('kt', 'root', 'power', 'kt+').

    target ('kt'): k itself. root: ``k.power(0.5, d)``. power: ``k.power(alpha, d)``.
    kt+: ``k / sup|k| + k_alpha / sup|k_alpha|``; radial kernels have sup|k| = k(0) = 1.
    """
    if method == "kt":
        return kernel
    if not kernel.is_radial:
        raise param_error("method", "kernel_thin", f"'kt' for the non-radial kernel {kernel!r}", method,
                          hint=f"Method {method!r} needs a radial kernel with a power kernel "
                               "(Gaussian, Matern, Laplace...).")
    a = 0.5 if method == "root" else alpha
    try:
        power = kernel.power(a, d)
    except NotImplementedError:
        raise param_error("method", "kernel_thin", f"'kt' for {kernel!r}", method,
                          hint="That kernel has no power kernel in kernelkit.") from None
    if method == "kt+":
        return SumKernel(kernel, power)
    return power


class KernelRows:
    """``out += sum_t coef[t] * k(X[rows[t]], X)`` for a fixed point set X (float64)."""

    def __init__(self, kernel, X):
        self.kernel = kernel
        self.X = np.ascontiguousarray(X, dtype=np.float64)
        self.table = use_compiled(kernel, self.X)
        self.threads = get_options().resolved_threads()

    def add(self, out, rows, coef):
        rows = np.ascontiguousarray(rows, dtype=np.int64)
        coef = np.ascontiguousarray(np.broadcast_to(np.asarray(coef, dtype=np.float64), rows.shape))
        if self.table is not None:
            _kt_ext.add_rows(self.X, rows, coef, out, self.table[0], self.table[1], self.threads)
            return out
        out += kernel_sum(self.kernel, self.X[rows], self.X, coef)
        return out

    def refine(self, coreset, stat, unique=False):
        """KT-SWAP pass in place (see ``_kt._swap``); ``unique``: no point held by two slots."""
        s = coreset.size
        if self.table is not None:
            _kt_ext.refine(self.X, coreset, stat, self.table[0], self.table[1], self.threads, int(unique))
            return
        count = np.bincount(coreset, minlength=self.X.shape[0])
        for t in range(s):
            self.add(stat, coreset[t:t + 1], -2.0 / s)
            count[coreset[t]] -= 1
            masked = np.where(count > 0, np.inf, stat) if unique else stat
            coreset[t] = int(np.argmin(masked)) if np.isfinite(masked).any() else coreset[t]
            count[coreset[t]] += 1
            self.add(stat, coreset[t:t + 1], 2.0 / s)


def check_kernel(kernel, owner):
    if not isinstance(kernel, Kernel):
        raise param_error("kernel", owner, "a kernelkit Kernel or a kernel name such as 'gaussian'", kernel,
                          kind="type")
    return kernel
