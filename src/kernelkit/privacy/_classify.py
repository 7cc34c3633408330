r"""PrivateSimilarityClassifier: predict the class with the highest noisy mean similarity."""

from __future__ import annotations

import numpy as np

from .._validation import Integral, OneOf, Real, check_params, check_points, param_error
from ._common import (NotFittedError, check_domain, check_noise_scale, check_privacy_params, public_generator,
                      release_integer_sums, resolve_private_kernel, smallest_epsilon, accepts)
from ._features import METHODS
from ._kernel_sum import PrivateKernelSum

__all__ = ["PrivateSimilarityClassifier"]

#: the scalar parameters of PrivateSimilarityClassifier with a declared constraint
_CONSTRAINTS = {
    "n_features": Integral(low=1) | OneOf("auto") | None,
    "method": OneOf(*METHODS),
    "count_fraction": Real(low=0, high=1, low_open=True, high_open=True),
}


class PrivateSimilarityClassifier:
    r"""Private classification by average kernel similarity (Backurs et al. 2024, Section 11).

    One :class:`PrivateKernelSum` per class c releases :math:`\tilde F_c(y) \approx
    \sum_{x \in X_c} k(x, y)` and a noisy class size :math:`\tilde n_c`; the
    prediction is :math:`\arg\max_c \tilde F_c(y) / \max(\tilde n_c, 1)`.

    Parameters
    ----------
    kernel, bandwidth, radius, center, method, random_state
        As in :class:`PrivateKernelSum` (radius in the units of the data; a
        kernel name needs an explicit ``bandwidth``, never derived from the
        private data).
    n_features : int, optional
        Sketch size per class. Default: 128 for pure epsilon-DP (its noise
        per answer grows like sqrt(n_features)) and 8192 for
        (epsilon, delta)-DP (noise per answer independent of n_features).
    epsilon : float > 0
        Tiny values are refused, as in :class:`PrivateKernelSum` (fit raises
        ValueError naming the smallest usable epsilon).
    delta : float in [0, 1), default 0
    classes : array-like, optional
        The public label set.
    count_fraction : float in (0, 1), default 0.1
    neighbouring : {'add-remove', 'replace-one'}, default 'add-remove'
    accountant : PrivacyAccountant, optional

    Notes
    -----
    **Privacy semantics.**

    A record is a pair (x, label). Under add/remove, one record touches one
    class only, and the classes are disjoint subsets of the data, so the
    per-class releases compose in parallel: each is
    (epsilon, delta)-DP and the whole is (epsilon, delta)-DP. Under
    replace-one, a changed record can leave one class and join another: two
    add/remove changes, so each class structure runs at (epsilon/2, delta/2)
    with add/remove sensitivity. Within a class, ``count_fraction`` of the
    budget goes to the class size (discrete Laplace, L1 sensitivity 1, or a
    rounded Gaussian, L2 sensitivity 1) and the rest to the kernel sums.
    The set of class labels is public: pass ``classes``; when None, the
    labels present in y are used and are thereby treated as public.
    """

    def __init__(self, kernel="gaussian", *, epsilon, delta=0.0, radius=None, center=None, bandwidth=None,
                 n_features=None, method="auto", classes=None, count_fraction=0.1, neighbouring="add-remove",
                 accountant=None, random_state=None):
        self.kernel = kernel
        self.epsilon = epsilon
        self.delta = delta
        self.radius = radius
        self.center = center
        self.bandwidth = bandwidth
        self.n_features = n_features
        self.method = method
        self.classes = classes
        self.count_fraction = count_fraction
        self.neighbouring = neighbouring
        self.accountant = accountant
        self.random_state = random_state

    def fit(self, X, y):
        """Release one private structure per class."""
        owner = type(self).__name__
        epsilon, delta, neighbouring = check_privacy_params(self, owner)
        params = check_params(vars(self), _CONSTRAINTS, owner)
        frac = params["count_fraction"]
        resolve_private_kernel(self.kernel, self.bandwidth, owner)  # fail before spending any budget
        X = check_points(X, "X", owner)
        y = np.asarray(y)
        if y.ndim != 1 or y.shape[0] != X.shape[0]:
            raise param_error("y", owner, f"a 1-D array of {X.shape[0]} labels", y, shown=f"shape {y.shape}")
        classes = np.unique(y) if self.classes is None else np.asarray(self.classes)
        unknown = ~np.isin(y, classes)
        if unknown.any():
            raise param_error("y", owner, f"labels in 'classes' {classes.tolist()}", y, shown=repr(y[unknown][0]))
        check_domain(self.radius, self.center, X.shape[1], owner)  # fail before spending any budget
        n_features = (128 if delta == 0 else 8192) if params["n_features"] is None else params["n_features"]
        split = 0.5 if neighbouring == "replace-one" else 1.0
        eps_c, del_c = epsilon * split, delta * split
        self._check_epsilon(epsilon, delta, split, frac, n_features)  # before any budget is spent
        if self.accountant is not None:
            self.accountant.spend(epsilon, delta, label=f"{owner} per-class sums (parallel composition)")
        rng = public_generator(self.random_state, owner)
        seed = int(rng.integers(2 ** 63))  # one public feature map shared by all classes
        self.structures_, counts, count_std = [], [], []
        for c in classes:
            Xc = X[y == c]
            s = PrivateKernelSum(self.kernel, epsilon=eps_c * (1 - frac), delta=del_c * (1 - frac),
                                 radius=self.radius, center=self.center, bandwidth=self.bandwidth,
                                 n_features=n_features, method=self.method, random_state=seed)
            s._fit_allow_empty(Xc)
            self.structures_.append(s)
            noisy, std, _ = release_integer_sums(np.array([Xc.shape[0]]), 1.0, 1.0, eps_c * frac, del_c * frac)
            counts.append(float(noisy[0]))
            count_std.append(std)
        self.classes_ = classes
        self.class_counts_ = np.array(counts)
        self.class_count_std_ = np.array(count_std)
        self.n_features_in_ = X.shape[1]
        self.privacy_ = {
            "epsilon": epsilon, "delta": delta, "neighbouring": neighbouring, "n_public": False,
            "domain": self.structures_[0].privacy_["domain"],
            "classes_public": True,
            "budget_split": {"per class (parallel composition)": [eps_c, del_c],
                             "class size": [eps_c * frac, del_c * frac],
                             "kernel sums": [eps_c * (1 - frac), del_c * (1 - frac)]},
        }
        return self

    def _check_epsilon(self, epsilon, delta, split, frac, n_features):
        """Raise InvalidValueError naming the smallest usable epsilon when the noise would overflow int64."""
        sums = PrivateKernelSum(self.kernel, epsilon=1.0, radius=self.radius, method=self.method)

        def check(e):
            check_noise_scale(1.0, 1.0, e * split * frac, delta * split * frac, "", "")
            sums._check_epsilon(n_features, e * split * (1 - frac), delta * split * (1 - frac), "add-remove")

        def fits(e):
            return accepts(check, e)

        if not fits(epsilon):
            raise param_error(
                "epsilon", type(self).__name__, f"at least {smallest_epsilon(fits, epsilon):.3g} with delta={delta!r}, "
                f"n_features={n_features!r} and count_fraction={frac!r}", epsilon,
                hint="Below, the noise of the class sizes or of the per-class kernel sums exceeds 2^56 grid units, "
                     "beyond which integer noise and sums overflow int64.")

    def decision_function(self, Y):
        """Noisy mean similarity to each class, shape (m, n_classes)."""
        if not hasattr(self, "structures_"):
            raise NotFittedError(f"This {type(self).__name__} is not fitted yet; call fit(X, y) first.")
        Y = check_points(Y, "Y", f"{type(self).__name__}.decision_function")
        sums = np.column_stack([s.query(Y) for s in self.structures_])
        return sums / np.maximum(self.class_counts_, 1.0)[None, :]

    def predict(self, Y):
        """The class with the highest noisy mean similarity."""
        return self.classes_[np.argmax(self.decision_function(Y), axis=1)]

    def score(self, Y, y):
        """Accuracy on (Y, y)."""
        return float(np.mean(self.predict(Y) == np.asarray(y)))

