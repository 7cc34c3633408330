"""Privacy budget accounting (basic sequential composition)."""

from __future__ import annotations

import math

from .._validation import OneOf, Real, check_param
from ..exceptions import BudgetExceededError

__all__ = ["PrivacyAccountant", "BudgetExceededError", "check_epsilon", "check_delta", "NEIGHBOURING"]

#: accepted neighbouring relations
NEIGHBOURING = ("add-remove", "replace-one")

#: the privacy parameters every private structure takes, declared once
EPSILON = Real(low=0, low_open=True)
DELTA = Real(low=0, high=1, high_open=True)


def check_epsilon(epsilon, owner):
    """epsilon as a float: a finite float > 0 (dimensionless)."""
    return check_param(epsilon, "epsilon", owner, EPSILON)


def check_delta(delta, owner):
    """delta as a float in [0, 1) (a probability)."""
    return check_param(delta, "delta", owner, DELTA)


def check_neighbouring(value, owner):
    """One of NEIGHBOURING."""
    return check_param(value, "neighbouring", owner, OneOf(*NEIGHBOURING))


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
        """True when a release of (epsilon, delta) fits in what remains of the budget."""
        epsilon = check_epsilon(epsilon, "PrivacyAccountant.can_spend")
        delta = check_delta(delta, "PrivacyAccountant.can_spend")
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
