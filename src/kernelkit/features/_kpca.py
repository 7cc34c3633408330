r"""Approximate kernel PCA in the feature space of a Nystroem or random-feature map, streamed over rows.

With features :math:`Z = z(X)` (n x D), their mean :math:`\bar z` and
:math:`Z_c = Z - 1 \bar z^\top`, the centred kernel matrix of
:math:`\hat k(x, y) = z(x) \cdot z(y)` is :math:`\hat K_c = H \hat K H = Z_c Z_c^\top`
(H = I - 11^T/n), whose non-zero eigenvalues are those of the D x D matrix
:math:`C = Z_c^\top Z_c`. So kernel PCA needs C only: it is accumulated one
chunk of rows at a time (O(chunk D + D^2) memory whatever n), then
eigendecomposed (O(D^3)).
"""

from __future__ import annotations

import numpy as np
import scipy.linalg
from sklearn.base import BaseEstimator, ClassNamePrefixFeaturesOutMixin, TransformerMixin
from sklearn.utils.validation import validate_data

from .._sklearn import EstimatorNotFittedError
from .._validation import Integral, check_param, param_error
from ._decomposition import chunk_rows, features64, make_feature_map, n_features_out

__all__ = ["KernelPCA"]


class KernelPCA(ClassNamePrefixFeaturesOutMixin, TransformerMixin, BaseEstimator):
    r"""Kernel PCA through an explicit feature map (Nystroem by default), for n beyond an n x n kernel matrix.

    With features :math:`z(x) \in \mathbb{R}^D` (see ``features``), their
    mean over the n training points :math:`\bar z` and :math:`Z_c` the
    centred features (rows :math:`z(x_i) - \bar z`), the estimator
    eigendecomposes

    .. math::

        C = Z_c^\top Z_c = \sum_i (z(x_i) - \bar z)(z(x_i) - \bar z)^\top
          = V \Lambda V^\top \qquad (D \times D),

    keeps the ``n_components`` largest eigenvalues :math:`\lambda_1 \ge \lambda_2 \ge \dots`
    and their orthonormal eigenvectors :math:`v_j`, and embeds a point as

    .. math:: t_j(x) = (z(x) - \bar z) \cdot v_j .

    Centring the features is centring the kernel matrix:
    :math:`Z_c Z_c^\top = H \hat K H` with :math:`\hat K = Z Z^\top`, H = I - 11^T/n,
    so :math:`\lambda_j` are the eigenvalues of the centred n x n matrix
    :math:`\hat K_c` (the scale of scikit-learn's ``KernelPCA.eigenvalues_``,
    in units of k), its unit eigenvectors are :math:`u_j = Z_c v_j / \sqrt{\lambda_j}`,
    and :math:`t_j(x_i) = \sqrt{\lambda_j}\, u_{ij}`: ``fit_transform(X)`` is
    scikit-learn's embedding of X, and ``transform`` its
    :math:`\sum_i \hat k_c(x, x_i)\, u_{ij} / \sqrt{\lambda_j}`, both for the
    kernel :math:`\hat k` (up to the sign of each component).

    **The approximation** is that of :math:`\hat k`:

    * Nystroem features (the default, M centres C): :math:`\hat K = K_{nC} K_{CC}^{+} K_{Cn}`;
      :math:`K - \hat K` is positive semi-definite, hence so is
      :math:`K_c - \hat K_c`, and every eigenvalue is underestimated,
      :math:`\lambda_j(\hat K_c) \le \lambda_j(K_c)` (Weyl). With all n
      points as centres (M = n, K invertible) the result is exact kernel PCA.
    * Random features: :math:`\hat K` is an unbiased estimate of K entrywise,
      with errors shrinking like :math:`1/\sqrt{D}`; the sum of the top
      eigenvalues is a convex function of K, so it is biased upwards.

    **Cost**: fitting the feature map, then one pass computing Z chunk by
    chunk (Nystroem: n M d kernel evaluations and n M^2 flops) and
    accumulating C (n D^2 flops), then the eigendecomposition (D^3 flops);
    ``fit_transform`` adds a second pass (n D k flops) unless one chunk held
    all of Z. **Memory**: C (D^2 float64) and one chunk of features (chunk_size
    x D, twice in float64), plus the map's own state (Nystroem: M^2); nothing
    of size n x n or n x D is stored, so X may be a memory-mapped array
    larger than RAM.

    Parameters
    ----------
    n_components : int >= 1 or None, default None
        k, the number of components kept, at most min(n, D) (n training
        points, D features). None: min(n, D).
    kernel : str, Kernel or None, default None
        With ``features=None``: the kernel of the Nystroem map, a Kernel
        object or a name ("gaussian", "laplace", "matern32", "linear", ...)
        with ``bandwidth``; None means "gaussian". Must be None when
        ``features`` is given (the map carries its kernel).
    bandwidth : float > 0 or None, default None
        For a radial kernel given by name (data units); None: the median
        heuristic :func:`kernelkit.median_bandwidth` on the data given to
        ``fit``. For the Gaussian kernel :math:`\exp(-\|x-y\|^2/(2\sigma^2))`
        it is sigma, scikit-learn's ``gamma = 1 / (2 sigma^2)``.
    features : transformer or None, default None
        A feature map with ``fit`` and ``transform`` whose inner products
        approximate the kernel (any of :mod:`kernelkit.features`); cloned and
        fitted on X. None: :class:`~kernelkit.features.NystroemFeatures`.
    n_features : int >= 1 or None, default None
        With ``features=None``: M, the number of Nystroem centres (None: 100;
        more than n: n, with a warning). With ``features``: replaces its
        ``n_components`` (D for Nystroem and positive features, D
        frequencies = 2D features for cos-sin Fourier features); None keeps it.
    centers : {"uniform", "leverage", "kmeans"}, array of shape (M, d) or None, default None
        The Nystroem centres, as in :class:`~kernelkit.features.NystroemFeatures`
        (None: "uniform"); an array gives the centres in data units
        (``n_features`` must then be None). Must be None with ``features``.
    random_state : None, int, SeedSequence or Generator, default None
        Seeds the feature map (the choice of centres, the frequencies);
        None leaves a given ``features`` its own ``random_state``.
    chunk_size : int >= 1 or None, default None
        Rows of X turned into features at a time. None: as many as fit the
        memory budget of :func:`kernelkit.options` (two float64 copies of a
        chunk of features). The result does not depend on it (up to rounding).

    Attributes
    ----------
    features_ : transformer
        The fitted feature map.
    n_components_ : int
        k.
    eigenvalues_ : ndarray of shape (k,), float64
        :math:`\lambda_1 \ge \dots \ge \lambda_k \ge 0`, eigenvalues of the
        centred kernel matrix :math:`\hat K_c` (units of k; a sum over the n
        training points, as scikit-learn's ``KernelPCA.eigenvalues_``).
        Rounding below 0 is set to 0.
    eigenvectors_ : ndarray of shape (D, k), float64
        :math:`v_j` in feature space, orthonormal columns; the sign of each
        makes its entry of largest magnitude positive.
    mean_ : ndarray of shape (D,), float64
        :math:`\bar z`, the mean training feature vector.
    explained_variance_ : ndarray of shape (k,), float64
        :math:`\lambda_j / (n - 1)`, the variance of component j over the
        training points (as :class:`sklearn.decomposition.PCA` of Z; 0 for n = 1).
    explained_variance_ratio_ : ndarray of shape (k,), float64
        :math:`\lambda_j / \operatorname{tr} C`, the fraction of the total
        variance of the features (0 when it is 0).
    n_features_in_ : int
        d.

    Notes
    -----
    float32 X gives float32 features (the feature maps' dtype rule), which
    are accumulated in float64. Nystroem features in float32 carry rounding
    errors amplified by the conditioning of :math:`K_{CC}` (its small
    eigenvalues), growing with M: for 200 standard normal points in d = 3
    (sigma = 1.5) the top-5 eigenvalues agree with float64 to 3e-6 relative
    with 60 centres, but only to 5e-3 with M = n = 200. Pass float64 X when
    M is large and accuracy matters.

    Examples
    --------
    >>> import numpy as np
    >>> from kernelkit.features import KernelPCA
    >>> X = np.random.default_rng(0).standard_normal((200, 3))
    >>> kpca = KernelPCA(n_components=2, bandwidth=1.0, n_features=200, random_state=0)
    >>> T = kpca.fit_transform(X)
    >>> T.shape
    (200, 2)
    >>> bool(np.allclose(T.T @ T, np.diag(kpca.eigenvalues_)))
    True
    """

    def __init__(self, n_components=None, *, kernel=None, bandwidth=None, features=None, n_features=None,
                 centers=None, random_state=None, chunk_size=None):
        self.n_components = n_components
        self.kernel = kernel
        self.bandwidth = bandwidth
        self.features = features
        self.n_features = n_features
        self.centers = centers
        self.random_state = random_state
        self.chunk_size = chunk_size

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.transformer_tags.preserves_dtype = ["float64", "float32"]
        return tags

    @property
    def _n_features_out(self):
        return self.n_components_

    def fit(self, X, y=None):
        """Fit the feature map on X, accumulate the centred covariance of its features, eigendecompose it.

        Parameters
        ----------
        X : array of shape (n, d)
            Training points (data units); may be a memory-mapped array.
        y : ignored
            Not used, present for the scikit-learn API.

        Returns
        -------
        self : KernelPCA
        """
        self._fit(X)
        return self

    def fit_transform(self, X, y=None):
        """Fit on X and return its embedding (scikit-learn's ``KernelPCA.fit_transform`` convention).

        Parameters
        ----------
        X : array of shape (n, d)
            Training points (data units).
        y : ignored
            Not used, present for the scikit-learn API.

        Returns
        -------
        T : ndarray of shape (n, k)
            :math:`T_{ij} = (z(x_i) - \\bar z) \\cdot v_j`; :math:`T^\\top T = \\operatorname{diag}(\\lambda)`
            (float32 for float32 X, else float64).
        """
        X, Zc = self._fit(X)
        if Zc is not None:   # one chunk held all the features: no second pass
            return (Zc @ self.eigenvectors_).astype(X.dtype, copy=False)
        return self._project(X)

    def transform(self, X):
        """Project points on the components: :math:`t_j(x) = (z(x) - \\bar z) \\cdot v_j`, chunk by chunk.

        Parameters
        ----------
        X : array of shape (m, d)
            Points, in the units of the training data.

        Returns
        -------
        T : ndarray of shape (m, k)
            The embedding (float32 for float32 X, else float64).
        """
        if not hasattr(self, "eigenvectors_"):
            raise EstimatorNotFittedError(f"This {type(self).__name__} instance is not fitted yet. Call 'fit' "
                                          "before 'transform'.")
        X = validate_data(self, X, dtype=[np.float64, np.float32], reset=False)
        return self._project(X)

    # ------------------------------------------------------------------ internals
    def _fit(self, X):
        """Fit; returns (validated X, the centred features when one chunk held them all, else None)."""
        owner = type(self).__name__
        k = check_param(self.n_components, "n_components", owner, Integral(low=1) | None)
        check_param(self.chunk_size, "chunk_size", owner, Integral(low=1) | None)
        X = validate_data(self, X, dtype=[np.float64, np.float32])
        features = make_feature_map(self, X, owner, self.random_state)
        features.fit(X)
        n, D = X.shape[0], n_features_out(features, X)
        if k is None:
            k = min(n, D)
        elif k > min(n, D):
            raise param_error("n_components", owner, f"an int in [1, min(n_samples, n_features_out)] = "
                              f"[1, {min(n, D)}]", k, hint=f"X has n_samples={n} and the feature map gives "
                                                            f"{D} features.")
        rows = chunk_rows(self.chunk_size, D, owner)
        # sums of (z - z0)(z - z0)^T and of (z - z0), z0 the first chunk's mean (accuracy of the centring)
        G, s, z0, Z = np.zeros((D, D)), np.zeros(D), None, None
        for a in range(0, n, rows):
            Z = features64(features, X[a:a + rows])
            if z0 is None:
                z0 = Z.mean(axis=0)
            Z -= z0
            G += Z.T @ Z
            s += Z.sum(axis=0)
        dz = s / n
        G -= n * np.outer(dz, dz)                       # C = Z_c^T Z_c
        G = (G + G.T) / 2
        total = max(float(np.trace(G)), 0.0)
        if k < D:
            lam, V = scipy.linalg.eigh(G, subset_by_index=[D - k, D - 1], check_finite=False)
        else:
            lam, V = scipy.linalg.eigh(G, check_finite=False)
        lam, V = np.maximum(lam[::-1], 0.0), V[:, ::-1]
        V = V * np.where(V[np.abs(V).argmax(axis=0), np.arange(k)] < 0, -1.0, 1.0)
        self.features_ = features
        self.n_components_ = k
        self.mean_ = z0 + dz
        self.eigenvalues_ = lam
        self.eigenvectors_ = np.ascontiguousarray(V)
        self.explained_variance_ = lam / (n - 1) if n > 1 else np.zeros(k)
        self.explained_variance_ratio_ = lam / total if total > 0 else np.zeros(k)
        if n <= rows:
            Z -= dz                                     # Z held every row, centred at z0: now at the mean
            return X, Z
        return X, None

    def _project(self, X):
        rows = chunk_rows(self.chunk_size, self.eigenvectors_.shape[0], type(self).__name__)
        out = np.empty((X.shape[0], self.n_components_), dtype=X.dtype)
        for a in range(0, X.shape[0], rows):
            Z = features64(self.features_, X[a:a + rows])
            Z -= self.mean_
            out[a:a + rows] = Z @ self.eigenvectors_
        return out
