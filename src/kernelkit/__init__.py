"""kernelkit: kernel methods at hardware speed.

The layers: :mod:`kernelkit.kernels` (what k is) -> :mod:`kernelkit.engine`
(kernel sums, log-sum-exp, top-k, dense blocks within a memory budget) ->
methods (density estimation, compression, privacy...).

``import kernelkit`` is light: method modules (and scikit-learn, torch, dask)
are imported on first use.
"""

import importlib as _importlib

from ._options import options, get_options
from .kernels import (Kernel, Gaussian, Laplace, Matern, IMQ, RationalQuadratic, Linear, Polynomial, Periodic,
                      SpectralMixture, SumKernel, ScaledKernel, ProductKernel, make_kernel,
                      Epanechnikov, Biweight, Triweight, Tophat, Triangular, Cosine)
from .engine import kernel_sum, kernel_logsumexp, kernel_topk, kernel_block, fused_available, prepare_sum
from .exceptions import (InputError, InvalidValueError, InvalidTypeError, NotFittedError, NotSupportedError,
                         BudgetExceededError)

__version__ = "0.1.0"

# public name -> module that defines it (imported lazily)
_LAZY = {
    "KernelDensity": "kernelkit.density",
    "bandwidth_scott": "kernelkit.density",
    "bandwidth_silverman": "kernelkit.density",
    "PrivateKernelSum": "kernelkit.privacy", "PrivateDistanceSum": "kernelkit.privacy",
    "PrivateSimilarityClassifier": "kernelkit.privacy", "PrivacyAccountant": "kernelkit.privacy",
    **{name: "kernelkit.compress" for name in ("kernel_thin", "ThinningResult", "kt_split", "kt_swap", "compresspp",
                                               "standard_thin", "kernel_herding", "mmd", "median_bandwidth")},
    **{name: "kernelkit.regression" for name in ("KernelRidge", "FalkonRegressor", "FalkonClassifier",
                                                 "NadarayaWatson", "LocalLinearRegression",
                                                 "GaussianProcessRegressor")},
    **{name: "kernelkit.features" for name in ("RandomFourierFeatures", "OrthogonalRandomFeatures",
                                               "StructuredOrthogonalFeatures", "PositiveRandomFeatures",
                                               "NystroemFeatures", "RandomFeaturesRidge",
                                               "KernelPCA", "KernelKMeans")},
    **{name: "kernelkit.ntk" for name in ("NNGP", "NTK", "empirical_ntk", "EmpiricalNTK")},
    **{name: "kernelkit.selection" for name in ("select_batch", "BatchSelector", "kecor_select")},
    **{name: "kernelkit.stats" for name in ("mmd_test", "mmdagg_test", "hsic_test", "ksd_test")},
    "FingerprintLocalizer": "kernelkit.localization",
}

__all__ = ["options", "get_options", "Kernel", "Gaussian", "Laplace", "Matern", "IMQ", "RationalQuadratic",
           "Linear", "Polynomial", "Periodic", "SpectralMixture", "SumKernel", "ScaledKernel", "ProductKernel",
           "make_kernel", "Epanechnikov", "Biweight", "Triweight", "Tophat", "Triangular", "Cosine",
           "kernel_sum", "kernel_logsumexp", "kernel_topk", "kernel_block", "fused_available", "prepare_sum",
           "InputError", "InvalidValueError", "InvalidTypeError", "NotFittedError", "NotSupportedError",
           "BudgetExceededError", *_LAZY]


#: subpackages reachable as attributes (``kk.regression``) without importing them first
_SUBMODULES = ("density", "compress", "privacy", "regression", "features", "ntk", "dask", "stats", "selection",
               "localization", "datasets")


def __getattr__(name):
    if name in _LAZY:
        value = getattr(_importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    if name in _SUBMODULES:
        return _importlib.import_module(f"kernelkit.{name}")
    raise AttributeError(f"module 'kernelkit' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_LAZY))
