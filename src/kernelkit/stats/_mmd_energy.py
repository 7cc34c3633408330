r"""The distance "kernel" of the energy distance, for the engine's blocked NumPy backend.

:math:`k(x, y) = -\|x - y\| / 2` is not a positive definite kernel, but it
differs from the distance-induced kernel
:math:`k_0(x, y) = (\|x\| + \|y\| - \|x - y\|) / 2` (positive definite:
Sejdinovic et al. 2013) by :math:`f(x) + f(y)`, which cancels in every
two-sample MMD^2 (weights summing to zero, biased and unbiased alike). So
MMD^2 with it is half the energy distance.

It has no entry in the engine's family table (kernels.py and the compiled
header have no distance family), so the engine runs it on the blocked NumPy
backend, within the memory budget (32 bytes per pair of a block). What the
fused engine would need: a component "dist" with phi(r^2) = sqrt(r^2) (a
code in ``_include/kk_kernels.h`` and a table entry), then the energy test
would run at the speed of the Gaussian MMD test.
"""

from __future__ import annotations

import numpy as np

from ..kernels import Kernel, sqdist

__all__ = ["DistanceKernel"]


class DistanceKernel(Kernel):
    """``k(x, y) = -||x - y|| / 2`` (Euclidean; data units). Private: only for the energy test."""

    family = "neg_half_distance"
    is_stationary = True

    def _block(self, X, Y):
        D = sqdist(X, Y)
        # the Gram form loses sqrt(eps) |x| in sqrt(D) for nearly coincident points (the diagonal): recompute
        # squared distances below 1e-6 of the squared scale exactly, from the differences
        c = X.mean(axis=0)
        scale = float(np.einsum("ij,ij->i", X - c, X - c).max(initial=0.0)
                      + np.einsum("ij,ij->i", Y - c, Y - c).max(initial=0.0))
        i, j = np.nonzero(D <= 1e-6 * scale)
        if i.size:
            diff = X[i] - Y[j]
            D[i, j] = np.einsum("ij,ij->i", diff, diff)
        np.sqrt(D, out=D)
        D *= -0.5
        return D

    def _diag(self, X):
        return np.zeros(X.shape[0], dtype=X.dtype)
