r"""Nystroem features: z(x) = K(x, C) K_CC^{-1/2} for M centres C, for any kernel.

:math:`z(x) \cdot z(y) = k(x, C) K_{CC}^{+} k(C, y)`, the Nystroem
approximation of k: exact on the centres (and for every point when C holds
all the data and K_CC is invertible), and the best rank-M approximation of the
kernel matrix in the span of the centres otherwise.
"""

from __future__ import annotations

import warnings

import numpy as np

from .._options import get_options
from .._random import generator
from .._validation import OneOf, check_param
from ..engine import kernel_block
from ._fourier import _FeatureMap, resolve_kernel

__all__ = ["NystroemFeatures"]


class NystroemFeatures(_FeatureMap):
    r"""Nystroem features for any kernelkit kernel: :math:`z(x) = K(x, C)\, K_{CC}^{-1/2}`.

    With centres :math:`C = (c_1..c_M)` and the eigendecomposition
    :math:`K_{CC} = U \Lambda U^\top`,

    .. math::

        z(x) = k(x, C)\, U \Lambda^{+1/2} U^\top, \qquad
        \hat k(x, y) = z(x) \cdot z(y) = k(x, C)\, K_{CC}^{+}\, k(C, y),

    where :math:`\Lambda^{+1/2}` keeps :math:`\lambda_i^{-1/2}` for the
    eigenvalues :math:`\lambda_i > M \varepsilon \lambda_{max}` (ε the float64
    machine epsilon, the threshold of :func:`numpy.linalg.matrix_rank`) and
    sets the others to 0: directions that K_CC cannot resolve in float64
    (duplicate or nearly collinear centres) are dropped, a pseudo-inverse
    square root, instead of being amplified by 1/sqrt(tiny). Dropping them
    changes :math:`\hat k` by at most that threshold. The estimate is exact on
    the centres (:math:`\hat k(c_i, c_j) = k(c_i, c_j)`) and, with every data
    point as a centre, reproduces the whole kernel matrix; otherwise
    :math:`K - \hat K` is positive semi-definite (the Nystroem error). Kernel
    values come from :func:`kernelkit.kernel_block` in chunks of rows sized to
    the memory budget of :func:`kernelkit.options`.

    Parameters
    ----------
    kernel : str or Kernel, default "gaussian"
        Any Kernel object, or a name ("gaussian", "laplace", "matern32",
        "linear", "polynomial", ...) with ``bandwidth``.
    n_components : int >= 1, default 100
        M, the number of centres (and of features). Larger than the number
        of training points: that number is used, with a warning. Not used
        when ``centers`` is an array.
    centers : {"uniform", "leverage", "kmeans"} or array of shape (M, d), default "uniform"
        How the centres are chosen (:func:`kernelkit.regression.select_centers`):
        distinct rows of X drawn uniformly, or with probabilities proportional
        to approximate ridge leverage scores (computed with ``kernel``), or the
        k-means cluster centres; or the centres themselves (data units).
    bandwidth : float > 0 or None, default None
        For a radial kernel given by name (data units); None: the median
        heuristic :func:`kernelkit.median_bandwidth` on the data given to
        ``fit``. Must be None with a Kernel object.
    random_state : None, int, SeedSequence or Generator, default None
        Seeds the choice of centres; resolved in ``fit``.

    Attributes
    ----------
    kernel_ : Kernel
        The kernel approximated.
    bandwidth_ : float or None
        Its bandwidth (data units), None for kernels without one.
    components_ : ndarray of shape (M, d)
        The centres C (data units).
    component_indices_ : ndarray of shape (M,) or None
        Rows of the training X that are the centres (None for "kmeans" and arrays).
    normalization_ : ndarray of shape (M, M), float64
        :math:`U \Lambda^{+1/2} U^\top`.
    rank_ : int
        Number of eigenvalues kept.
    n_features_in_ : int
        d.

    Examples
    --------
    >>> import numpy as np, kernelkit
    >>> from kernelkit.features import NystroemFeatures
    >>> X = np.random.default_rng(0).standard_normal((50, 2))
    >>> ny = NystroemFeatures(kernelkit.Laplace(1.0), n_components=50, random_state=0).fit(X)
    >>> Z = ny.transform(X)
    >>> bool(np.abs(Z @ Z.T - kernelkit.Laplace(1.0)(X)).max() < 1e-6)
    True
    """

    def __init__(self, kernel="gaussian", n_components=100, *, centers="uniform", bandwidth=None,
                 random_state=None):
        self.kernel = kernel
        self.n_components = n_components
        self.centers = centers
        self.bandwidth = bandwidth
        self.random_state = random_state

    def fit(self, X, y=None):
        """Choose the centres and factor K_CC.

        Parameters
        ----------
        X : array of shape (n, d)
            Data points (data units).
        y : ignored
            Not used, present for the scikit-learn API.

        Returns
        -------
        self : NystroemFeatures
        """
        from ..regression._centers import CENTER_METHODS, select_centers
        owner = type(self).__name__
        M = self._check_n_components()
        X = self._validate(X, reset=True)
        kernel, bandwidth = resolve_kernel(self.kernel, self.bandwidth, X, owner, spectral=False)
        rng = generator(self.random_state, owner)
        method = self.centers
        if isinstance(method, str):
            method = check_param(method.lower(), "centers", owner, OneOf(*CENTER_METHODS))
            if M > X.shape[0]:
                warnings.warn(f"n_components={M} is larger than the number of training points "
                              f"({X.shape[0]}); {owner} uses {X.shape[0]} centres.", UserWarning, stacklevel=2)
                M = X.shape[0]
            C, idx = select_centers(X, M, method=method, kernel=kernel, random_state=rng, owner=owner)
        else:
            C, idx = select_centers(X, None, method=method, random_state=rng, owner=owner)
        C64 = C.astype(np.float64)
        K = np.asarray(kernel_block(kernel, C64, C64), dtype=np.float64)
        lam, U = np.linalg.eigh((K + K.T) / 2)
        keep = lam > C.shape[0] * np.finfo(np.float64).eps * max(float(lam[-1]), 0.0)
        inv_sqrt = np.zeros_like(lam)
        inv_sqrt[keep] = 1.0 / np.sqrt(lam[keep])
        self.normalization_ = (U * inv_sqrt) @ U.T
        self.rank_ = int(keep.sum())
        self.components_ = C
        self.component_indices_ = idx
        self.bandwidth_ = bandwidth
        self.kernel_ = kernel
        return self

    @property
    def _n_features_out(self):
        return self.components_.shape[0]

    def _transform(self, X):
        C = self.components_
        M = C.shape[0]
        if C.dtype != X.dtype:
            C = C.astype(np.float64)
        rows = max(1, int(get_options().memory // (2 * 8 * M)))   # what kernel_block accepts
        out = np.empty((X.shape[0], M), dtype=X.dtype)
        for a in range(0, X.shape[0], rows):
            K = kernel_block(self.kernel_, X[a:a + rows], C)
            out[a:a + rows] = K @ self.normalization_.astype(K.dtype, copy=False)
        return out
