r"""Kernel PCA and kernel k-means through explicit feature maps: what the two estimators share.

Both work in the feature space of a map :math:`z: \mathbb{R}^d \to \mathbb{R}^D`
whose inner products approximate the kernel,
:math:`z(x) \cdot z(y) = \hat k(x, y) \approx k(x, y)` (Nystroem by default,
or any feature transformer of :mod:`kernelkit.features`). Replacing the
n x n kernel matrix K by :math:`\hat K = Z Z^\top` (Z = z(X), n x D) turns
the O(n^2) memory / O(n^3) time of the exact methods into O(n D) work per
pass over the data, with the D x D (kernel PCA) or k x D (k-means) state as
the only thing kept between passes. The rows of Z are produced chunk by
chunk within the memory budget of :func:`kernelkit.options`, so n may be
larger than what Z would take in memory.

The estimators live in :mod:`._kpca` (:class:`KernelPCA`) and
:mod:`._kkmeans` (:class:`KernelKMeans`); this module holds the feature-map
resolution and the chunking they share.
"""

from __future__ import annotations

import numpy as np
from sklearn.base import clone

from .._options import get_options
from .._validation import Integral, OneOf, check_param, param_error
from ._fourier import resolve_kernel

__all__ = []

#: M, the number of Nystroem centres, when neither ``n_features`` nor ``features`` says otherwise
DEFAULT_N_FEATURES = 100


def make_feature_map(est, X, owner, random_state):
    """The unfitted feature map of ``est`` (a KernelPCA or KernelKMeans) for the data X.

    ``features=None``: ``NystroemFeatures(kernel, M, centers=..., random_state=random_state)`` with the kernel
    resolved here (so that errors name ``owner``; a name without bandwidth takes the median heuristic on X).
    Otherwise a clone of ``features``; ``kernel``, ``bandwidth`` and ``centers`` must then be None, and
    ``n_features`` (when given) replaces its ``n_components``, ``random_state`` (when not None) its own.
    """
    n_features = check_param(est.n_features, "n_features", owner, Integral(low=1) | None)
    if est.features is None:
        from ._nystroem import NystroemFeatures
        from ..regression._centers import CENTER_METHODS
        centers = "uniform" if est.centers is None else est.centers
        if isinstance(centers, str):
            centers = check_param(centers.lower(), "centers", owner, OneOf(*CENTER_METHODS))
        elif n_features is not None:
            raise param_error("n_features", owner, "None when 'centers' is an array (its rows are the centres)",
                              n_features)
        kernel, _ = resolve_kernel("gaussian" if est.kernel is None else est.kernel, est.bandwidth, X, owner,
                                   spectral=False)
        return NystroemFeatures(kernel, DEFAULT_N_FEATURES if n_features is None else n_features,
                                centers=centers, random_state=random_state)
    if not (hasattr(est.features, "fit") and hasattr(est.features, "transform")):
        raise param_error("features", owner, "a transformer with fit and transform (e.g. NystroemFeatures(), "
                          "RandomFourierFeatures()) or None", est.features, "type")
    for name in ("kernel", "bandwidth", "centers"):
        value = getattr(est, name)
        if value is not None:
            raise param_error(name, owner, "None when 'features' is given (the feature map carries its own)",
                              value, hint=f"Set it on the feature map, e.g. NystroemFeatures({name}=...).")
    features = clone(est.features)
    params = features.get_params(deep=False)
    if n_features is not None:
        if "n_components" not in params:
            raise param_error("n_features", owner, f"None for a feature map without an 'n_components' "
                              f"parameter ({type(features).__name__})", n_features, "type")
        features.set_params(n_components=n_features)
    if random_state is not None:
        if "random_state" not in params:
            raise param_error("random_state", owner, f"None for a feature map without a 'random_state' "
                              f"parameter ({type(features).__name__})", random_state, "type")
        features.set_params(random_state=random_state)
    return features


def n_features_out(features, X):
    """D, the number of features the fitted map gives (from the first row of X)."""
    return int(np.asarray(features.transform(X[:1])).shape[1])


def chunk_rows(chunk_size, width, owner, extra=0):
    """Rows per chunk: ``chunk_size``, or as many as fit the memory budget of :func:`kernelkit.options`
    with ``2 * width + extra`` float64 numbers per row (a chunk of features, its float64 copy, temporaries)."""
    chunk = check_param(chunk_size, "chunk_size", owner, Integral(low=1) | None)
    if chunk is not None:
        return chunk
    return max(1, int(get_options().memory // (8 * (2 * max(1, width) + extra))))


def features64(features, X):
    """``features.transform(X)`` as a float64 array (a new one, safe to write into)."""
    Z = np.asarray(features.transform(X))
    return Z.astype(np.float64, copy=Z.dtype != np.float64 or not Z.flags.writeable)
