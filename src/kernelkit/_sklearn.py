"""What kernelkit's scikit-learn estimators share (imported by the estimator modules only, so that
``import kernelkit`` does not import scikit-learn)."""

from __future__ import annotations

from sklearn.base import RegressorMixin as _SklearnRegressorMixin
from sklearn.exceptions import NotFittedError as _SklearnNotFittedError

from .exceptions import NotFittedError

__all__ = ["EstimatorNotFittedError", "RegressorMixin"]


class EstimatorNotFittedError(NotFittedError, _SklearnNotFittedError):
    """Raised by an estimator used before ``fit``: both kernelkit's and scikit-learn's NotFittedError
    (scikit-learn's estimator checks expect its class; kernelkit's users catch kernelkit's)."""


class RegressorMixin(_SklearnRegressorMixin):
    """scikit-learn's RegressorMixin with its ``score`` documented in kernelkit's terms."""

    def score(self, X, y, sample_weight=None):
        r"""Coefficient of determination :math:`R^2 = 1 - \sum w (y - \hat y)^2 / \sum w (y - \bar y)^2`.

        Parameters
        ----------
        X : array of shape (m, d)
            Test points.
        y : array of shape (m,) or (m, n_targets)
            True targets (averaged uniformly over targets).
        sample_weight : array of shape (m,), optional
            Weights of the test points.

        Returns
        -------
        score : float
            At most 1 (unitless); 0 for the constant prediction of the mean.
        """
        return super().score(X, y, sample_weight=sample_weight)
