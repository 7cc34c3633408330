r"""A classifier two-sample / goodness-of-fit test: NPLM with kernel logistic regression.

"New Physics Learning Machine" (D'Agnolo & Wulzer 2019; with Falkon: Letizia,
Losapio, Rando, Grosso, Wulzer, Pierini, Zanetti & Rosasco 2022), applied to
data-quality monitoring by Grosso et al. 2023 (arXiv 2303.05413): a
reference sample R (:math:`N_R` points, a large sample of the expected law)
and a data sample D (:math:`N_D` points). The data law is modelled as
:math:`n(x \mid w) = n(x \mid R)\, e^{f(x)}`, with the expected density
:math:`n(x \mid R)` represented by R with per-point weights
:math:`w_R = N_D / N_R` (so that the expected number of data points under the
reference is :math:`N_D`). The extended log-likelihood ratio of this model
against the reference is

.. math::

    t = 2\Big[\sum_{x \in D} f(x) - w_R \sum_{x \in R}\big(e^{f(x)} - 1\big)\Big],

evaluated at the f learnt by a weighted kernel logistic regression of
labels 1 (data, weight 1) against 0 (reference, weight :math:`w_R`): its
population minimiser is :math:`f = \log(n_D / (w_R N_R\, p_R)) = \log(p_D / p_R)`, the
log density ratio. Here f is fitted by :class:`kernelkit.regression.FalkonClassifier`
(Nystrom centres, inexact Newton), as in the Falkon version of NPLM.

Null: under H0 (data and reference from the same law) the pooled sample is
exchangeable, so the labels are permuted (``n_permutations`` refits); NPLM
observes that t then follows a chi-square law, whose degrees of freedom are
fitted to the null sample (here by its mean) to extrapolate small p-values.
"""

from __future__ import annotations

import numpy as np
import scipy.stats

from .._options import options
from .._random import seed_sequence
from .._validation import Integral, OneOf, Real, check_param, check_points, param_error
from ..kernels import Kernel, make_kernel, sqdist
from ._hsic_common import _KERNEL, check_alpha, mc_threshold
from ._result import TestResult, permutation_pvalue

__all__ = ["classifier_test"]

#: the NPLM bandwidth rule: this percentile of the pairwise distances of the reference
BANDWIDTH_PERCENTILE = 90


def nplm_bandwidth(R, max_points=2000, random_state=0):
    """The 90th percentile of the pairwise distances between points of R (at most ``max_points`` rows)."""
    if R.shape[0] > max_points:
        R = R[np.random.default_rng(random_state).choice(R.shape[0], max_points, replace=False)]
    D = sqdist(R, R)[np.triu_indices(R.shape[0], 1)]
    D = D[D > 0]
    return float(np.percentile(np.sqrt(D), BANDWIDTH_PERCENTILE)) if D.size else 1.0


def nplm_statistic(f_ref, f_data, w_ref):
    """t = 2 [sum_D f - w_R sum_R (e^f - 1)] from the fitted log density ratio at the points."""
    return 2.0 * (float(np.sum(f_data)) - w_ref * float(np.sum(np.expm1(f_ref))))


def _fit_t(pooled, n_ref, clf_params, seed):
    """The statistic with the first n_ref rows of ``pooled`` as reference and the rest as data."""
    from ..regression import FalkonClassifier
    n = pooled.shape[0]
    n_data = n - n_ref
    w_ref = n_data / n_ref
    y = np.r_[np.zeros(n_ref), np.ones(n_data)]
    w = np.r_[np.full(n_ref, w_ref), np.ones(n_data)]
    clf = FalkonClassifier(**clf_params, random_state=seed).fit(pooled, y, sample_weight=w)
    f = clf.decision_function(pooled)
    return nplm_statistic(f[:n_ref], f[n_ref:], w_ref), clf


def classifier_test(reference, data, *, kernel="gaussian", bandwidth=None, penalty=1e-6, n_centers="auto",
                    method="permutation", n_permutations=100, alpha=0.05, random_state=None, newton_iter=12,
                    max_iter=20, memory=None, threads=None):
    r"""Classifier (NPLM) test of whether ``data`` follow the law of ``reference``.

    Statistic (see the module docstring): the extended likelihood ratio
    :math:`t = 2[\sum_{x\in D} f(x) - w_R \sum_{x\in R}(e^{f(x)} - 1)]`,
    :math:`w_R = N_D / N_R`, with f the weighted kernel logistic regression
    of data (label 1, weight 1) against reference (label 0, weight
    :math:`w_R`) by :class:`kernelkit.regression.FalkonClassifier`. Large t:
    the data differ from the reference.

    Null: t recomputed on ``n_permutations`` random relabellings of the
    pooled sample (:math:`N_R` points as reference, :math:`N_D` as data),
    each a full refit (so the cost is ``n_permutations + 1`` fits).

    * ``method="permutation"``: p-value :math:`(1 + \#\{t_b \ge t\}) / (1 + B)`.
    * ``method="chi2"``: as NPLM, a chi-square law with degrees of freedom
      fitted to the null sample (its mean); p-value its survival function at
      t (extrapolates below 1 / (1 + B), at the price of the chi-square
      assumption).

    Parameters
    ----------
    reference : array of shape (N_R, d)
        Sample of the expected law (the larger, ideally: NPLM uses
        :math:`N_R \gg N_D`).
    data : array of shape (N_D, d)
        The sample tested.
    kernel : Kernel or str, default "gaussian"
        Kernel of the logistic model (a name is built with ``bandwidth``).
    bandwidth : float > 0, optional
        Bandwidth of a named kernel, in the units of the data. Default: the
        NPLM rule, the 90th percentile of the pairwise distances within the
        reference (on at most 2,000 points); larger than the median
        heuristic, which keeps f smooth.
    penalty : float > 0, default 1e-6
        FalkonClassifier's :math:`\lambda` (it multiplies an average loss).
    n_centers : int or "auto", default "auto"
        Nystrom centres M, drawn uniformly from the pooled sample
        ("auto": FalkonClassifier's rule, ``min(n, max(100, ceil(10 sqrt(n))), 10000)``).
    method : {"permutation", "chi2"}, default "permutation"
    n_permutations : int >= 1, default 100
        B refits under relabelled samples.
    alpha : float in (0, 1), default 0.05
    random_state : None, int >= 0, SeedSequence or Generator
        Fit j (0: the observed one, 1..B: the permutations) uses the j-th
        child of ``SeedSequence(random_state).spawn(2 B + 1)`` for its centres;
        permutation b uses the (B + b)-th for its relabelling.
    newton_iter, max_iter : int >= 1
        FalkonClassifier's Newton steps and CG iterations per step.
    memory, threads : optional
        Engine options (:func:`kernelkit.options`).

    Returns
    -------
    TestResult
        ``statistic``: t; ``null``: the permuted t; ``threshold``: the
        Monte Carlo threshold (permutation) or the chi-square (1 - alpha)
        quantile; ``details``: ``kernel``, ``w_ref``, ``dof`` (the fitted
        degrees of freedom), ``permutation_pvalue``, ``classifier`` (the
        fitted FalkonClassifier of the observed sample).
    """
    owner = "classifier_test"
    method = check_param(method, "method", owner, OneOf("permutation", "chi2"))
    alpha = check_alpha(alpha, owner)
    B = check_param(n_permutations, "n_permutations", owner, Integral(low=1))
    penalty = check_param(penalty, "penalty", owner, Real(low=0, low_open=True))
    R = check_points(reference, "reference", owner, dtype=np.float64, min_rows=2, allow_1d=True)
    D = check_points(data, "data", owner, dtype=np.float64, min_rows=2, allow_1d=True)
    if R.shape[1] != D.shape[1]:
        raise param_error("data", owner, f"an array with as many features as 'reference' ({R.shape[1]})", D,
                          shown=f"shape {D.shape}")
    name = check_param(kernel.lower() if isinstance(kernel, str) else kernel, "kernel", owner, _KERNEL)
    if isinstance(name, Kernel):
        if bandwidth is not None:
            raise param_error("bandwidth", owner, "None when 'kernel' is a Kernel object (it carries its bandwidth)",
                              bandwidth)
        k = name
    else:
        bw = check_param(bandwidth, "bandwidth", owner, Real(low=0, low_open=True) | None)
        k = make_kernel(name, bandwidth=nplm_bandwidth(R) if bw is None else bw) if name not in (
            "linear", "polynomial") else make_kernel(name)
    seeds = seed_sequence(random_state, owner).spawn(2 * B + 1)
    params = dict(kernel=k, penalty=penalty, n_centers=n_centers, newton_iter=newton_iter, max_iter=max_iter,
                  memory=memory, threads=threads)
    pooled = np.vstack([R, D])
    n_ref = R.shape[0]
    with options(memory=memory, threads=threads):
        t, clf = _fit_t(pooled, n_ref, params, seeds[0])
        null = np.empty(B)
        for b in range(B):
            perm = np.random.default_rng(seeds[B + 1 + b]).permutation(pooled.shape[0])
            null[b], _ = _fit_t(pooled[perm], n_ref, params, seeds[1 + b])
    p_perm = permutation_pvalue(t, null)
    dof = float(max(np.mean(null), 1e-12))
    details = {"kernel": k, "w_ref": D.shape[0] / n_ref, "dof": dof, "permutation_pvalue": p_perm,
               "classifier": clf}
    if method == "permutation":
        return TestResult("NPLM classifier test, permutations", t, p_perm, mc_threshold(null, alpha), alpha,
                          bool(p_perm <= alpha), null, details)
    p = float(scipy.stats.chi2.sf(t, dof))
    thr = float(scipy.stats.chi2.ppf(1 - alpha, dof))
    return TestResult("NPLM classifier test, chi-square null", t, p, thr, alpha, bool(t > thr), null, details)
