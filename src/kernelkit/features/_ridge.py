r"""Ridge regression on explicit kernel features, streamed over chunks of rows.

With features :math:`Z = z(X)` (n x p) the estimator solves

.. math:: \min_{\beta, \beta_0} \|y - Z\beta - \beta_0\|^2 + \alpha \|\beta\|^2

through the normal equations :math:`(Z_c^\top Z_c + \alpha I)\beta = Z_c^\top y_c`
(:math:`Z_c, y_c` centred when there is an intercept), accumulating the p x p
Gram matrix and :math:`Z^\top y` one chunk of rows at a time: memory is
O(chunk p + p^2) whatever n, so X may be a memory-mapped array larger than RAM.
"""

from __future__ import annotations

import numpy as np
import scipy.linalg
from sklearn.base import BaseEstimator, RegressorMixin, clone
from sklearn.utils.validation import validate_data

from .._options import get_options
from .._validation import Integral, OneOf, Real, check_param, param_error
from ._fourier import FeaturesNotFittedError

__all__ = ["RandomFeaturesRidge"]


class RandomFeaturesRidge(RegressorMixin, BaseEstimator):
    r"""Ridge regression on random (or Nystroem) features, streaming over chunks of rows.

    Fits :math:`f(x) = z(x) \cdot \beta + \beta_0` by

    .. math:: \min_{\beta, \beta_0} \sum_i (y_i - z(x_i) \cdot \beta - \beta_0)^2 + \alpha \|\beta\|^2 ,

    the primal form of kernel ridge regression with the kernel
    :math:`\hat k(x, y) = z(x) \cdot z(y)` that the feature map approximates
    (an approximation: the error is that of :math:`\hat k`, see the feature
    map's docstring). The sums :math:`\sum_i z_i z_i^\top` and
    :math:`\sum_i z_i y_i^\top` are accumulated in float64 over chunks of
    ``chunk_size`` rows (each chunk shifted by the first chunk's means, for
    accuracy), then the p x p system is solved by Cholesky (least squares if
    it is singular, e.g. alpha = 0 with collinear features). Cost:
    O(n p^2 + p^3) time, O(chunk_size p + p^2) memory.

    Parameters
    ----------
    features : transformer or None, default None
        A feature map with ``fit`` and ``transform`` (any of
        :mod:`kernelkit.features`, or a scikit-learn transformer); it is
        cloned and fitted on X in ``fit``. None:
        ``RandomFourierFeatures()`` (Gaussian kernel, median-heuristic
        bandwidth, 100 frequencies = 200 features).
    alpha : float >= 0, default 1.0
        Ridge penalty, in units of :math:`y^2` per unit of :math:`\beta^2`.
    fit_intercept : bool, default True
        Fit an unpenalised intercept :math:`\beta_0` (centre Z and y).
    chunk_size : int >= 1 or None, default None
        Rows transformed at a time, in ``fit`` and ``predict``. None: as many
        as fit in the memory budget of :func:`kernelkit.options` (the chunk's
        features in float64 twice). The result does not depend on it (up to
        rounding).
    random_state : None, int, SeedSequence or Generator, default None
        None: the feature map keeps its own ``random_state``. Otherwise it is
        given to the (cloned) feature map, replacing its own (a feature map
        without a ``random_state`` parameter raises a TypeError).

    Attributes
    ----------
    features_ : transformer
        The fitted feature map.
    coef_ : ndarray of shape (p,) or (p, n_targets)
        beta (units of y per unit of feature).
    intercept_ : float or ndarray of shape (n_targets,)
        beta_0 (units of y); 0 when ``fit_intercept`` is False.
    n_features_in_ : int
        d.

    Examples
    --------
    >>> import numpy as np
    >>> from kernelkit.features import RandomFeaturesRidge, RandomFourierFeatures
    >>> rng = np.random.default_rng(0)
    >>> X = rng.uniform(-3, 3, size=(500, 1))
    >>> y = np.sin(X[:, 0]) + 0.1 * rng.standard_normal(500)
    >>> model = RandomFeaturesRidge(RandomFourierFeatures(n_components=50, bandwidth=1.0, random_state=0),
    ...                             alpha=0.1, chunk_size=128).fit(X, y)
    >>> bool(model.score(X, y) > 0.95)
    True
    """

    def __init__(self, features=None, alpha=1.0, *, fit_intercept=True, chunk_size=None, random_state=None):
        self.features = features
        self.alpha = alpha
        self.fit_intercept = fit_intercept
        self.chunk_size = chunk_size
        self.random_state = random_state

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        return tags

    def _features(self, owner):
        if self.features is None:
            from ._fourier import RandomFourierFeatures
            features = RandomFourierFeatures()
        elif not (hasattr(self.features, "fit") and hasattr(self.features, "transform")):
            raise param_error("features", owner, "a transformer with fit and transform (e.g. "
                              "RandomFourierFeatures()) or None", self.features, "type")
        else:
            features = clone(self.features)
        if self.random_state is not None:
            if "random_state" not in features.get_params(deep=False):
                raise param_error("random_state", owner, f"None for a feature map without a 'random_state' "
                                  f"parameter ({type(features).__name__})", self.random_state, "type")
            features.set_params(random_state=self.random_state)
        return features

    def _rows(self, p):
        """Rows per chunk: chunk_size, or what fits the memory budget with p features."""
        chunk = check_param(self.chunk_size, "chunk_size", type(self).__name__, Integral(low=1) | None)
        if chunk is not None:
            return chunk
        return max(1, int(get_options().memory // (2 * 8 * max(1, p))))

    def fit(self, X, y):
        """Fit the feature map on X, then the ridge regression on its features, chunk by chunk.

        Parameters
        ----------
        X : array of shape (n, d)
            Training points (data units); may be a memory-mapped array.
        y : array of shape (n,) or (n, n_targets)
            Targets.

        Returns
        -------
        self : RandomFeaturesRidge
        """
        owner = type(self).__name__
        alpha = check_param(self.alpha, "alpha", owner, Real(low=0))
        fit_intercept = check_param(self.fit_intercept, "fit_intercept", owner, OneOf(False, True))
        check_param(self.chunk_size, "chunk_size", owner, Integral(low=1) | None)
        features = self._features(owner)
        X, y = validate_data(self, X, y, dtype=[np.float64, np.float32], multi_output=True, y_numeric=True)
        y = np.asarray(y, dtype=np.float64)
        Y = y.reshape(-1, 1) if y.ndim == 1 else y
        n = X.shape[0]
        features.fit(X)
        p = np.asarray(features.transform(X[:1])).shape[1]
        rows, t = self._rows(p), Y.shape[1]
        G, b, zs, ys = np.zeros((p, p)), np.zeros((p, t)), np.zeros(p), np.zeros(t)
        z0, y0 = np.zeros(p), np.zeros(t)
        for a in range(0, n, rows):
            Z = np.asarray(features.transform(X[a:a + rows]), dtype=np.float64)
            if a == 0 and fit_intercept:  # shift every chunk by the first chunk's means (accuracy)
                z0, y0 = Z.mean(axis=0), Y[:rows].mean(axis=0)
            Z -= z0
            Yc = Y[a:a + rows] - y0
            G += Z.T @ Z
            b += Z.T @ Yc
            zs += Z.sum(axis=0)
            ys += Yc.sum(axis=0)
        if fit_intercept:  # centre at the full means: sums of (z - z0)(z - z0)^T minus n (zbar - z0)(...)^T
            dz, dy = zs / n, ys / n
            G -= n * np.outer(dz, dz)
            b -= n * np.outer(dz, dy)
        G[np.diag_indices_from(G)] += alpha
        try:
            coef = scipy.linalg.solve(G, b, assume_a="pos", check_finite=False)
        except (np.linalg.LinAlgError, scipy.linalg.LinAlgError):
            coef = scipy.linalg.lstsq(G, b, check_finite=False)[0]
        if fit_intercept:
            intercept = (y0 + dy) - (z0 + dz) @ coef
        else:
            intercept = np.zeros(Y.shape[1])
        self.coef_ = coef[:, 0] if y.ndim == 1 else coef
        self.intercept_ = float(intercept[0]) if y.ndim == 1 else intercept
        self.features_ = features
        return self

    def predict(self, X):
        """Predictions z(x) . beta + beta_0 for each row of X (units of y), computed chunk by chunk.

        Parameters
        ----------
        X : array of shape (m, d)
            Points (data units).

        Returns
        -------
        y_pred : ndarray of shape (m,) or (m, n_targets), float64
        """
        if not hasattr(self, "features_"):
            raise FeaturesNotFittedError(f"This {type(self).__name__} instance is not fitted yet. Call 'fit' "
                                         "before 'predict'.")
        X = validate_data(self, X, dtype=[np.float64, np.float32], reset=False)
        m = X.shape[0]
        rows = self._rows(self.coef_.shape[0])
        out = np.empty((m,) + self.coef_.shape[1:])
        for a in range(0, m, rows):
            Z = np.asarray(self.features_.transform(X[a:a + rows]), dtype=np.float64)
            out[a:a + rows] = Z @ self.coef_
        out += self.intercept_
        return out
