"""Kernel hypothesis tests.

Two-sample tests (MMD by permutations, wild bootstrap or its asymptotic null;
MMDAgg and MMD-FUSE over a collection of kernels; Compress Then Test for
millions of points; an online MMD drift detector; the energy distance), goodness of fit
against a model's score function (kernel Stein discrepancy, KSDAgg, the
perturbed KSD test), independence (HSIC, dHSIC, conditional independence
by KCI) and Stein thinning. A permutation test is one pass over the kernel
matrix in tiles: every permutation's statistic is a quadratic form taken from
the upper triangle, so no (n + m)^2 matrix is ever formed beyond the memory
budget. Every test returns a :class:`TestResult`.
"""

from __future__ import annotations

from .._lazy import lazy_exports

# public name -> module defining it (imported on first use: `import kernelkit.stats` stays light)
_LAZY = {
    "TestResult": "._result",
    # two-sample (_mmd.py, _mmdagg.py, _ctt.py, _drift.py)
    "mmd2": "._mmd", "mmd2_linear": "._mmd", "mmd_test": "._mmd", "energy_test": "._mmd",
    "mmdagg_test": "._mmdagg", "mmdagg_bandwidths": "._mmdagg", "mmdfuse_test": "._mmd_fuse",
    "ctt_test": "._ctt", "MMDDriftDetector": "._drift",
    # goodness of fit (_stein.py, _ksd.py, _ksd_null.py, _stein_thin.py)
    "SteinKernel": "._stein", "ksd": "._ksd", "ksd_test": "._ksd", "ksdagg_test": "._ksd",
    "perturbed_ksd_test": "._ksd", "ksd_parametric_null": "._ksd_null", "ParametricNull": "._ksd_null",
    "stein_thin": "._stein_thin", "stein_kernel_thin": "._stein_thin",
    # independence (_hsic.py, _kci.py) and classifier tests (_classifier.py)
    "hsic": "._hsic", "hsic_test": "._hsic", "dhsic": "._hsic", "dhsic_test": "._hsic",
    "kci_test": "._kci", "classifier_test": "._classifier",
}

__all__ = list(_LAZY)


__getattr__, __dir__ = lazy_exports(__name__, _LAZY)
