"""Privacy budget accounting (basic sequential composition)."""

from __future__ import annotations

import math
import numbers
from ..exceptions import BudgetExceededError, InvalidValueError

__all__ = ["PrivacyAccountant", "BudgetExceededError", "check_epsilon", "check_delta", "NEIGHBOURING"]

#: accepted neighbouring relations
NEIGHBOURING = ("add-remove", "replace-one")


def check_epsilon(epsilon, owner):
    ok = isinstance(epsilon, numbers.Real) and not isinstance(epsilon, bool) and math.isfinite(epsilon) \
        and epsilon > 0
    if not ok:
        raise InvalidValueError(f"The 'epsilon' parameter of {owner} must be a finite float > 0. Got {epsilon!r}.")
    return float(epsilon)


def check_delta(delta, owner):
    ok = isinstance(delta, numbers.Real) and not isinstance(delta, bool) and math.isfinite(delta) \
        and 0 <= delta < 1
    if not ok:
        raise InvalidValueError(f"The 'delta' parameter of {owner} must be a float in [0, 1). Got {delta!r}.")
    return float(delta)


def check_neighbouring(value, owner):
    if value not in NEIGHBOURING:
        raise InvalidValueError(f"The 'neighbouring' parameter of {owner} must be one of {set(NEIGHBOURING)}. "
                         f"Got {value!r}.")
    return value


class PrivacyAccountant:
    r"""Tracks the (epsilon, delta) spent on one dataset under basic composition.

    Sequential composition: releasing mechanisms that are
    :math:`(\epsilon_i, \delta_i)`-DP on the same data is
    :math:`(\sum_i \epsilon_i, \sum_i \delta_i)`-DP. The accountant holds a
    total budget; :meth:`spend` records a release and raises
    :class:`BudgetExceededError` (a ValueError) -- without recording it --
    when the totals would exceed the budget.

    Parameters
    ----------
    epsilon : float > 0
        Total epsilon budget (dimensionless, natural-log privacy loss).
    delta : float in [0, 1)
        Total delta budget (probability).

    Attributes
    ----------
    ledger : list of (label, epsilon, delta)
        Every recorded release, in order.
    """

    def __init__(self, epsilon, delta=0.0):
        self.epsilon = check_epsilon(epsilon, "PrivacyAccountant")
        self.delta = check_delta(delta, "PrivacyAccountant")
        self.ledger = []

    @property
    def spent(self):
        """(epsilon, delta) spent so far."""
        return (math.fsum(e for _, e, _ in self.ledger), math.fsum(d for _, _, d in self.ledger))

    @property
    def remaining(self):
        """(epsilon, delta) still available."""
        e, d = self.spent
        return (max(self.epsilon - e, 0.0), max(self.delta - d, 0.0))

    def can_spend(self, epsilon, delta=0.0):
        e, d = self.spent
        tol = 1e-12
        return e + epsilon <= self.epsilon * (1 + tol) and d + delta <= self.delta * (1 + tol) + 1e-300

    def spend(self, epsilon, delta=0.0, label="release"):
        """Record a release of an (epsilon, delta)-DP mechanism.

        Raises
        ------
        BudgetExceededError
            If the budget would be exceeded (nothing is recorded then).
        """
        epsilon = check_epsilon(epsilon, "PrivacyAccountant.spend")
        delta = check_delta(delta, "PrivacyAccountant.spend")
        if not self.can_spend(epsilon, delta):
            e, d = self.spent
            raise BudgetExceededError(
                f"Privacy budget exceeded: {label!r} asks for epsilon={epsilon:g}, delta={delta:g} but "
                f"epsilon={e:g} of {self.epsilon:g} and delta={d:g} of {self.delta:g} are already spent.")
        self.ledger.append((str(label), epsilon, delta))
        return self

    def __repr__(self):
        e, d = self.spent
        return (f"PrivacyAccountant(epsilon={self.epsilon:g}, delta={self.delta:g}; spent epsilon={e:g}, "
                f"delta={d:g} in {len(self.ledger)} release(s))")
