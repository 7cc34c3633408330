"""The result every kernel test returns."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

__all__ = ["TestResult", "permutation_pvalue"]


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
