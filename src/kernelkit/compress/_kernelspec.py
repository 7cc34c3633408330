"""Kernel plumbing shared by the compression algorithms.

``compile_kernel`` turns a kernel into the (codes, params) table the compiled
walk understands, or None when the compiled code cannot evaluate it (then the
NumPy path runs). ``KernelRows`` evaluates ``out += sum_t c_t k(X[rows[t]], X)``
through the compiled code or, as the reference, through ``kernel_block``.
"""

from __future__ import annotations

import numpy as np

from .._options import get_options
from ..engine import kernel_block
from ..engine._components import kernel_components
from ..kernels import Kernel, SumKernel
from ..exceptions import InvalidTypeError, InvalidValueError

try:  # pragma: no cover - depends on the build
    from . import _kt_ext
except ImportError:  # pragma: no cover
    _kt_ext = None

__all__ = ["compile_kernel", "compiled_available", "use_compiled", "KernelRows", "split_kernel_for"]


def compiled_available():
    """True when the compiled kernel-thinning loops are built."""
    return _kt_ext is not None


#: codes of the compiled walk for the components it evaluates (no dot-product kernels)
_WALK_CODES = {"gauss": 0, "laplace": 1, "matern32": 2, "matern52": 3, "rq": 4}


def compile_kernel(kernel):
    """``(codes int64 (c,), params float64 (c, 3))`` for the compiled loops, or None.

    Supported: Gaussian, Laplace, Matern with nu in {1/2, 3/2, 5/2}, IMQ,
    rational quadratic, positive scalings and sums of these (at most 4 terms).
    """
    comps = kernel_components(kernel)
    if comps is None or not 1 <= len(comps) <= 4 or any(c[0] not in _WALK_CODES for c in comps):
        return None
    codes = np.array([_WALK_CODES[c[0]] for c in comps], dtype=np.int64)
    params = np.array([c[1:4] for c in comps], dtype=np.float64)
    return codes, params


def use_compiled(kernel):
    """The compiled table for ``kernel`` when the compiled path should run, else None."""
    if _kt_ext is None or get_options().backend == "numpy":
        return None
    return compile_kernel(kernel)


def split_kernel_for(kernel, method, d, alpha=0.5):
    """The kernel KT-SPLIT uses for ``method`` ('kt', 'root', 'power', 'kt+').

    target ('kt'): k itself. root: ``k.power(0.5, d)``. power: ``k.power(alpha, d)``.
    kt+: ``k / sup|k| + k_alpha / sup|k_alpha|``; radial kernels have sup|k| = k(0) = 1.
    """
    if method == "kt":
        return kernel
    if not kernel.is_radial:
        raise InvalidValueError(f"The 'method' parameter of kernel_thin is {method!r}, which needs a radial kernel "
                         f"with a power kernel (Gaussian, Matern, Laplace...). Got kernel {kernel!r}.")
    a = 0.5 if method == "root" else alpha
    try:
        power = kernel.power(a, d)
    except NotImplementedError:
        raise InvalidValueError(f"The 'method' parameter of kernel_thin is {method!r} but {kernel!r} has no power "
                         "kernel in kernelkit; use method='kt'.") from None
    if method == "kt+":
        return SumKernel(kernel, power)
    return power


class KernelRows:
    """``out += sum_t coef[t] * k(X[rows[t]], X)`` for a fixed point set X (float64)."""

    def __init__(self, kernel, X):
        self.kernel = kernel
        self.X = np.ascontiguousarray(X, dtype=np.float64)
        self.table = use_compiled(kernel)
        self.threads = get_options().resolved_threads()

    def add(self, out, rows, coef):
        rows = np.ascontiguousarray(rows, dtype=np.int64)
        coef = np.ascontiguousarray(np.broadcast_to(np.asarray(coef, dtype=np.float64), rows.shape))
        if self.table is not None:
            _kt_ext.add_rows(self.X, rows, coef, out, self.table[0], self.table[1], self.threads)
            return out
        step = max(1, int(get_options().memory // (16 * max(1, self.X.shape[0]))))
        for lo in range(0, rows.size, step):
            block = kernel_block(self.kernel, self.X[rows[lo:lo + step]], self.X)
            out += coef[lo:lo + step] @ block
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
        raise InvalidTypeError(f"The 'kernel' parameter of {owner} must be a kernelkit Kernel or a kernel name "
                        f"such as 'gaussian'. Got {kernel!r}.")
    return kernel
