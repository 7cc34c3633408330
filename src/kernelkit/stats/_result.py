"""The result every kernel test returns."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from .._validation import Real, check_param


def check_alpha(alpha, owner):
    """The level of a test, a float in (0, 1) (else the library's error naming 'alpha')."""
    return check_param(alpha, "alpha", owner, Real(low=0, high=1, low_open=True, high_open=True))


def mc_threshold(null, alpha):
    r"""The critical value t of a Monte Carlo test: ``statistic > t`` exactly when ``pvalue <= alpha``.

    With B null draws and p = (1 + #{null >= T}) / (1 + B), p <= alpha iff at most k - 1 draws are >= T,
    k = max{j : j / (B + 1) <= alpha}; that holds iff T exceeds the k-th largest draw (ties included).

    Parameters
    ----------
    null : array of shape (B,)
        The null draws.
    alpha : float in (0, 1)
        The level.

    Returns
    -------
    float
        The k-th largest draw; +inf when k = 0 (B too small to ever reject at this alpha).
    """
    null = np.asarray(null, dtype=np.float64)
    B = null.size
    k = int(math.floor(alpha * (B + 1)))
    while (k + 1) / (B + 1) <= alpha:
        k += 1
    while k > 0 and k / (B + 1) > alpha:
        k -= 1
    if k == 0:
        return math.inf
    return float(np.sort(null)[::-1][k - 1])

__all__ = ["TestResult", "permutation_pvalue", "mc_threshold", "check_alpha"]


def permutation_pvalue(statistic, null):
    r"""Monte Carlo p-value :math:`(1 + \#\{b : T_b \ge T\}) / (1 + B)`.

    The +1 counts the observed statistic as one draw of the null, which makes the test exact
    (its level is at most alpha for any B) when the null draws are exchangeable with it.

    Parameters
    ----------
    statistic : float
        The observed statistic T.
    null : array of shape (B,)
        The statistic on B permuted (or bootstrapped) samples.

    Returns
    -------
    float
        The p-value, in [1 / (1 + B), 1].
    """
    null = np.asarray(null, dtype=np.float64)
    return float((1 + np.count_nonzero(null >= statistic)) / (1 + null.size))


@dataclass(frozen=True, repr=False)
class TestResult:
    """The outcome of a hypothesis test.

    Attributes
    ----------
    test : str
        What was tested and how (``"MMD, permutations"``).
    statistic : float
        The observed test statistic (its formula is in the test's docstring).
    pvalue : float
        The p-value; for a Monte Carlo null (1 + #{null >= statistic}) / (1 + B).
        NaN for tests that decide without one (an aggregated test reports its own
        level-corrected decision instead).
    threshold : float
        The critical value: the null hypothesis is rejected when ``statistic > threshold``
        (for a Monte Carlo null, the (1 - alpha) quantile of the null sample with the observed value included).
    alpha : float
        The level of the test, in (0, 1).
    reject : bool
        The decision: True when the null hypothesis is rejected at level ``alpha``.
    null : array or None
        The null sample (permutations, bootstrap draws), when the test drew one.
    details : dict
        Test-specific extras (the kernel or bandwidths used, per-kernel statistics of an aggregated
        test, the estimator's variance...), documented by each test.
    """

    __test__ = False  # not a pytest test class, despite its name

    test: str
    statistic: float
    pvalue: float
    threshold: float
    alpha: float
    reject: bool
    null: np.ndarray | None = None
    details: dict = field(default_factory=dict)

    def __repr__(self):
        decision = "reject H0" if self.reject else "do not reject H0"
        return (f"TestResult({self.test}: statistic={self.statistic:.6g}, pvalue={self.pvalue:.4g}, "
                f"threshold={self.threshold:.6g}, alpha={self.alpha:g}: {decision})")
