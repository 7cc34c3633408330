"""What kernelkit's scikit-learn estimators share (imported by the estimator modules only, so that
``import kernelkit`` does not import scikit-learn)."""

from __future__ import annotations

from sklearn.exceptions import NotFittedError as _SklearnNotFittedError

from .exceptions import NotFittedError

__all__ = ["EstimatorNotFittedError"]


class EstimatorNotFittedError(NotFittedError, _SklearnNotFittedError):
    """Raised by an estimator used before ``fit``: both kernelkit's and scikit-learn's NotFittedError
    (scikit-learn's estimator checks expect its class; kernelkit's users catch kernelkit's)."""
