r"""Kernel Stein discrepancy goodness-of-fit tests: KSD, KSDAgg and the perturbed KSD test.

The squared kernel Stein discrepancy of a sample :math:`x_1, \dots, x_n` from a model p is
estimated from the Stein kernel :math:`k_p` (:class:`SteinKernel`) by

.. math::

    \widehat{KSD}^2_U = \frac{1}{n(n-1)} \sum_{i \ne j} k_p(x_i, x_j), \qquad
    \widehat{KSD}^2_V = \frac{1}{n^2} \sum_{i, j} k_p(x_i, x_j).

Only the score :math:`s = \nabla \log p` is needed (no normalising constant). Both sums are one
Stein kernel sum through the engine (:meth:`SteinKernel.sum`), and so is every wild-bootstrap
draw: a column of Rademacher weights.
"""

from __future__ import annotations

import math

import numpy as np

from .._random import generator
from .._validation import OneOf, check_param, param_error
from ._ksd_common import (check_alpha, check_count, check_sample, ksd_from_sum, ksd_parts, mc_threshold, rademacher,
                          scores_at, stein_kernel, stein_quadratic_forms)
from ._result import TestResult, permutation_pvalue

__all__ = ["ksd", "ksd_test", "ksdagg_test", "perturbed_ksd_test"]


def _check_unbiased(unbiased, owner):
    return check_param(unbiased, "unbiased", owner, OneOf(True, False))


def ksd(X, score, kernel="imq", *, bandwidth=None, unbiased=True, memory=None, threads=None):
    r"""Squared kernel Stein discrepancy of the sample X against the model with score ``score``.

    .. math::

        \widehat{KSD}^2_U = \frac{1}{n(n-1)} \sum_{i \ne j} k_p(x_i, x_j) \quad (\text{unbiased}), \qquad
        \widehat{KSD}^2_V = \frac{1}{n^2} \sum_{i, j} k_p(x_i, x_j),

    with the Langevin Stein kernel :math:`k_p` of the base kernel (:class:`SteinKernel`). The
    U-statistic has expectation KSD^2 (0 under the null X ~ p, and can be negative); the
    V-statistic is >= 0 and biased upwards by :math:`E[k_p(x, x)] / n`.

    Parameters
    ----------
    X : array of shape (n, d), n >= 2
        The sample (data units).
    score : callable or array of shape (n, d)
        ``score(X) -> grad log p(X)`` (units 1 / data units), or the scores at X, precomputed.
    kernel : Kernel or str
        Base kernel (default ``"imq"``: :math:`(1 + r^2/c^2)^{-1/2}`); see :class:`SteinKernel`.
    bandwidth : float, optional
        Bandwidth of a kernel given by name (data units). Default: the median heuristic
        :func:`kernelkit.median_bandwidth` on X.
    unbiased : bool
        U-statistic (True, default) or V-statistic.
    memory, threads : optional
        Engine options for this call (:func:`kernelkit.options`).

    Returns
    -------
    float
        The estimate of KSD^2 (units 1 / data units^2 times the kernel's).
    """
    owner = "ksd"
    X = check_sample(X, owner)
    unbiased = _check_unbiased(unbiased, owner)
    S = scores_at(score, X, owner)
    kp = stein_kernel(X, kernel, bandwidth, owner)
    total, trace = ksd_parts(kp, X, S, memory, threads)
    return float(ksd_from_sum(total, trace, X.shape[0], unbiased))


def ksd_test(X, score, kernel="imq", *, bandwidth=None, n_bootstrap=1000, alpha=0.05, unbiased=True,
             null=None, random_state=None, memory=None, threads=None):
    r"""KSD goodness-of-fit test with a Rademacher wild bootstrap, or a parametric bootstrap.

    H0: X is an i.i.d. sample from p. The statistic is :func:`ksd` (U- or V-statistic, times
    1); its null is simulated by the wild bootstrap (Chwialkowski, Strathmann & Gretton 2016;
    Liu, Lee & Jordan 2016; Schrab et al. 2022):

    .. math::

        T_b = \frac{1}{n(n-1)} \sum_{i \ne j} \epsilon_i \epsilon_j k_p(x_i, x_j), \qquad
        \epsilon_i \in \{-1, +1\} \text{ uniform},

    (the V-statistic keeps the diagonal and divides by n^2). Each draw is one weight column of
    the Stein kernel sum :math:`H \epsilon_b`; the B columns are applied to row blocks of H
    within the memory budget (one GEMM per block, so O(n^2 (d + B)) time and no n x n matrix
    beyond the budget). p-value :math:`(1 + \#\{T_b \ge T\}) / (1 + B)`.

    With ``null`` (a :class:`ParametricNull` from :func:`ksd_parametric_null`), the :math:`T_b` are
    instead the statistics of B samples drawn from the model itself (the parametric bootstrap), and
    no bootstrap draw is made.

    Parameters
    ----------
    X, score, kernel, bandwidth, unbiased : see :func:`ksd`
    n_bootstrap : int >= 1
        Number B of bootstrap draws (default 1000; unused with ``null``).
    alpha : float in (0, 1)
        Level (default 0.05).
    null : ParametricNull, optional
        A parametric-bootstrap null with one bandwidth, simulated at the size n of X with the same
        kernel name and statistic kind; ``bandwidth`` defaults to the null's (another one is an error).
    random_state : None, int >= 0 or numpy Generator
        Draws the Rademacher weights (deterministic given it).
    memory, threads : optional
        Memory budget of the row blocks of H (bytes or "256MB"; default the
        :func:`kernelkit.options` one) and the number of BLAS threads of their products.

    Returns
    -------
    TestResult
        ``statistic`` the KSD^2 estimate, ``null`` the B bootstrap statistics, ``threshold`` the
        floor(alpha (B + 1))-th largest of them; ``details``: ``bandwidth`` (None for a kernel
        object), ``kernel``, ``unbiased``, ``n``.

    Examples
    --------
    >>> import numpy as np
    >>> from kernelkit.stats import ksd_test
    >>> X = np.random.default_rng(0).standard_normal((300, 2))
    >>> ksd_test(X, lambda x: -x, random_state=0).reject          # N(0, I) model, N(0, I) sample
    False
    >>> ksd_test(X + 0.5, lambda x: -x, random_state=0).reject    # shifted sample
    True
    """
    owner = "ksd_test"
    X = check_sample(X, owner)
    alpha = check_alpha(alpha, owner)
    B = check_count(n_bootstrap, "n_bootstrap", owner)
    unbiased = _check_unbiased(unbiased, owner)
    rng = generator(random_state, owner)
    S = scores_at(score, X, owner)
    if null is not None:
        return _ksd_test_parametric(X, S, kernel, bandwidth, unbiased, alpha, null, memory, threads, owner)
    kp = stein_kernel(X, kernel, bandwidth, owner)
    n = X.shape[0]
    trace = float(np.sum(kp.diag(X, scores=S)))
    off, forms = stein_quadratic_forms([kp], X, S, rademacher(rng, n, B), memory, threads)
    stat = float(ksd_from_sum(off[0], trace, n, unbiased))
    null = ksd_from_sum(forms[0], trace, n, unbiased)
    pval = permutation_pvalue(stat, null)
    return TestResult("KSD, wild bootstrap", stat, pval, mc_threshold(null, alpha), alpha, bool(pval <= alpha),
                      null=null, details={"kernel": kp.base_kernel, "bandwidth": getattr(kp.base_kernel, "bandwidth",
                                                                                          None),
                                          "unbiased": unbiased, "n": n})


def _ksd_test_parametric(X, S, kernel, bandwidth, unbiased, alpha, null, memory, threads, owner):
    from ._ksd_null import check_null

    n = X.shape[0]
    null, bw = check_null(null, owner, n, kernel, unbiased, bandwidth)
    if bw.size != 1:
        raise param_error("null", owner, "a null with one bandwidth (ParametricNull.subset picks one)", null)
    kp = stein_kernel(X, null.kernel, float(bw[0]), owner)
    total, trace = ksd_parts(kp, X, S, memory, threads)
    stat = float(ksd_from_sum(total, trace, n, unbiased))
    draws = null.statistics[0]
    pval = permutation_pvalue(stat, draws)
    return TestResult("KSD, parametric bootstrap", stat, pval, mc_threshold(draws, alpha), alpha, bool(pval <= alpha),
                      null=draws.copy(), details={"kernel": kp.base_kernel, "bandwidth": float(bw[0]),
                                                  "unbiased": unbiased, "n": n})


# --------------------------------------------------------------------------- KSDAgg
def _agg_quantiles(M1s, u, w, m):
    """q_l(u) = the ceil(m (1 - u w_l))-th smallest of the m sorted values of row l of M1s."""
    idx = np.ceil(m * (1.0 - u * w)).astype(int) - 1
    idx = np.clip(idx, 0, m - 1)
    return M1s[np.arange(M1s.shape[0]), idx]


def ksdagg_test(X, score, kernel="imq", *, bandwidths=None, weights=None, n_bootstrap=(500, 500),
                n_bisection=50, alpha=0.05, null=None, random_state=None, memory=None, threads=None):
    r"""KSDAgg: the KSD test aggregated over a collection of bandwidths (Schrab, Guedj & Gretton 2022).

    For each bandwidth :math:`\lambda` in the collection :math:`\Lambda` the U-statistic
    :math:`\widehat{KSD}^2_\lambda` is compared with its wild-bootstrap quantile at the corrected
    level :math:`u^* w_\lambda`; H0 is rejected if any test rejects:

    .. math::

        \text{reject} \iff \max_{\lambda\in\Lambda}\big(\widehat{KSD}^2_\lambda
            - \hat q_{\lambda, 1 - u^* w_\lambda}\big) > 0 .

    The quantiles :math:`\hat q_{\lambda, 1-a}` are the :math:`\lceil (B_1 + 1)(1 - a)\rceil`-th
    smallest of :math:`B_1` wild-bootstrap statistics and the observed one (the same Rademacher
    draws for every bandwidth); :math:`u^*` is the largest u in :math:`(0, \min_\lambda 1/w_\lambda)`
    such that the estimated family-wise rejection probability under the null,
    :math:`\frac{1}{B_2}\sum_b 1\{\max_\lambda(\tilde M^b_\lambda - \hat q_{\lambda, 1-u w_\lambda}) > 0\}`,
    computed on :math:`B_2` other draws, is at most alpha; it is found by :math:`B_3` bisection
    steps (Algorithm 1 of the paper, wild-bootstrap version).

    With ``null`` (a :class:`ParametricNull`), the draws are instead the KSD statistics of samples
    from the model (the paper's parametric bootstrap, used in its RBM and normalising-flow
    experiments): the first B1 model samples give the quantiles, the :math:`\lceil B_1 (1 - u
    w_\lambda)\rceil`-th smallest of them (the observed statistic is not among them), the next B2
    the level correction.

    Parameters
    ----------
    X, score : see :func:`ksd`
    kernel : str or a kernel class name
        Base kernel family by name (default ``"imq"``, :math:`(1 + r^2/\lambda^2)^{-1/2}`);
        each bandwidth of the collection builds one kernel.
    bandwidths : array of floats > 0, optional
        The collection (data units). Default :math:`\lambda_{med} 2^\ell`, :math:`\ell = -20, \dots, 0`,
        the collection of the paper's RBM experiment, with :math:`\lambda_{med}` the median heuristic
        (:func:`kernelkit.median_bandwidth`) on X.
    weights : array of floats > 0, optional
        Weights :math:`w_\lambda` of the bandwidths, normalised to sum 1 (default uniform).
    n_bootstrap : int or (int, int)
        (B1, B2): draws for the quantiles and for the level correction (default (500, 500);
        an int uses it for both). Each bandwidth's test runs at a level near :math:`\alpha / |\Lambda|`,
        which needs B1 well above :math:`|\Lambda| / \alpha` (420 for 21 bandwidths at alpha = 0.05):
        with fewer draws the quantiles are the largest bootstrap value and the test cannot reject.
    n_bisection : int >= 1
        B3, bisection steps for u* (default 50).
    alpha : float in (0, 1)
    null : ParametricNull, optional
        A parametric-bootstrap null of U-statistics (:func:`ksd_parametric_null`) at the size n of
        X, same kernel name, with at least B1 + B2 model samples; ``bandwidths`` defaults to the
        null's (other ones are an error).
    random_state : None, int >= 0 or numpy Generator
    memory, threads : optional
        As in :func:`ksd_test`: the row blocks of every bandwidth's H are formed within the budget
        from distances and score products computed once per block.

    Returns
    -------
    TestResult
        ``statistic`` :math:`\max_\lambda(\widehat{KSD}^2_\lambda - \hat q_\lambda)`, ``threshold``
        0, ``pvalue`` NaN (the aggregated test decides by its corrected quantiles); ``details``:
        ``bandwidths``, ``statistics`` (per bandwidth), ``quantiles`` (corrected, per
        bandwidth), ``u`` (u*), ``rejects`` (per bandwidth), ``weights``.
    """
    owner = "ksdagg_test"
    from ..compress._resolve import median_bandwidth

    X = check_sample(X, owner)
    alpha = check_alpha(alpha, owner)
    if isinstance(n_bootstrap, (tuple, list)):
        if len(n_bootstrap) != 2:
            raise param_error("n_bootstrap", owner, "an int >= 1 or a pair (B1, B2) of ints >= 1", n_bootstrap)
        B1, B2 = (check_count(b, "n_bootstrap", owner) for b in n_bootstrap)
    else:
        B1 = B2 = check_count(n_bootstrap, "n_bootstrap", owner)
    B3 = check_count(n_bisection, "n_bisection", owner)
    if not isinstance(kernel, str):
        raise param_error("kernel", owner, "a kernel family by name ('imq', 'gaussian', 'matern52', 'rq'): each "
                          "bandwidth of the collection builds one kernel", kernel, kind="type")
    if null is not None:
        from ._ksd_null import check_null

        null, bandwidths = check_null(null, owner, X.shape[0], kernel, True, bandwidths)
        if null.statistics.shape[1] < B1 + B2:
            raise param_error("null", owner, f"a null of at least B1 + B2 = {B1 + B2} model samples (n_bootstrap)",
                              null, shown=f"{null.statistics.shape[1]} model samples")
    elif bandwidths is None:
        bandwidths = median_bandwidth(X) * 2.0 ** np.arange(-20, 1)
    bw = np.atleast_1d(np.asarray(bandwidths, dtype=np.float64))
    if bw.ndim != 1 or bw.size < 1 or not np.all(np.isfinite(bw)) or np.any(bw <= 0):
        raise param_error("bandwidths", owner, "a non-empty 1-D array of finite bandwidths > 0 (data units)",
                          bandwidths)
    N = bw.size
    if weights is None:
        w = np.full(N, 1.0 / N)
    else:
        w = np.atleast_1d(np.asarray(weights, dtype=np.float64))
        if w.shape != (N,) or not np.all(np.isfinite(w)) or np.any(w <= 0):
            raise param_error("weights", owner, f"an array of {N} finite weights > 0, one per bandwidth", weights)
        w = w / w.sum()
    rng = generator(random_state, owner)
    S = scores_at(score, X, owner)
    n = X.shape[0]
    kps = [stein_kernel(X, kernel, float(lam), owner) for lam in bw]
    if null is None:
        E = rademacher(rng, n, B1 + B2)
        off, forms = stein_quadratic_forms(kps, X, S, E, memory, threads)
        stats = ksd_from_sum(off, 0.0, n, True)
        boot = ksd_from_sum(forms, 0.0, n, True)
        # the observed statistic is one of the B1 + 1 exchangeable values of the quantiles
        M1s = np.sort(np.concatenate([boot[:, :B1], stats[:, None]], axis=1), axis=1)
        M2, ranks, name = boot[:, B1:], B1 + 1, "KSDAgg, wild bootstrap"
    else:
        off, _ = stein_quadratic_forms(kps, X, S, np.empty((n, 0)), memory, threads)
        stats = ksd_from_sum(off, 0.0, n, True)
        M1s = np.sort(null.statistics[:, :B1], axis=1)
        M2, ranks, name = null.statistics[:, B1:B1 + B2], B1, "KSDAgg, parametric bootstrap"
    lo, hi = 0.0, float(np.min(1.0 / w))
    for _ in range(B3):
        u = 0.5 * (lo + hi)
        q = _agg_quantiles(M1s, u, w, ranks)
        level = np.mean(np.max(M2 - q[:, None], axis=0) > 0)
        if level <= alpha:
            lo = u
        else:
            hi = u
    q = _agg_quantiles(M1s, lo, w, ranks)
    rejects = stats > q
    stat = float(np.max(stats - q))
    return TestResult(name, stat, math.nan, 0.0, alpha, bool(rejects.any()), null=None,
                      details={"bandwidths": bw, "statistics": stats, "quantiles": q, "u": lo, "rejects": rejects,
                               "weights": w, "kernel": kernel})


# --------------------------------------------------------------------------- perturbed KSD
def perturbed_ksd_test(X, score, log_density, kernel="imq", *, bandwidth=None, transition="jump", modes=None,
                       jump_scales=None, n_steps=10, step_size=None, train_fraction=0.5, n_start=None,
                       start_box=None, merge_distance=None, n_bootstrap=1000, alpha=0.05, random_state=None,
                       memory=None, threads=None):
    r"""Perturbed KSD test (Liu, Duncan & Gandy, ICML 2023): move the sample by a p-invariant Markov kernel, then test.

    The KSD test has little power when the model and the sample share well-separated modes but
    weigh them differently: the score is local and barely sees the weights. Moving every point by
    T steps of a Markov transition kernel K that leaves p invariant keeps the null (if X ~ p
    then XK^T ~ p) and, under the alternative, drags the sample towards p across modes; the KSD
    test (:func:`ksd_test`) is then run on the perturbed sample.

    Transitions (``transition``):

    * ``"jump"`` (the paper's choice): a Metropolis-Hastings move between modes. Each step, each
      point draws an ordered pair (a, b) of distinct modes uniformly and proposes
      :math:`x' = x + \theta (m_b - m_a)`, accepted with probability
      :math:`\min(1, p(x') / p(x))` (the proposal is an involution pair with unit Jacobian, so
      K is reversible with respect to p). The modes :math:`m_a` are ``modes`` or, when None, found
      by maximising ``log_density`` (L-BFGS, from the first ``train_fraction`` of a random split of
      X and as many uniform points in ``start_box``) and merged within ``merge_distance``; the
      jump scale :math:`\theta` is chosen from ``jump_scales`` (default 21 values in [0.5, 1.5], as
      the paper) as the one maximising the KSD of the perturbed training part. The test then
      runs on the other part only (the paper's ospKSD), which keeps it exact. With modes and a
      single jump scale given, the whole sample is perturbed and tested. Note that theta = 1
      between modes of the same shape mixes them perfectly, so the perturbed sample is close to
      p whatever X was and the test loses its power; scales theta != 1 land beside the other
      mode, which only p-distributed samples balance, hence the choice of theta.
    * ``"mala"``: Metropolis-adjusted Langevin steps :math:`x' = x + h s(x) + \sqrt{2h}\,\xi`.
    * ``"rwm"``: Gaussian random-walk Metropolis steps :math:`x' = x + \sqrt{2h}\,\xi`.
    * a callable ``transition(X, rng) -> X'`` applying one step of a p-invariant kernel to every row.

    Parameters
    ----------
    X : array of shape (n, d), n >= 2
    score : callable
        ``score(X) -> grad log p(X)``, shape (n, d) (a callable: the perturbed points need new scores).
    log_density : callable
        ``log_density(X) -> log p(X)`` up to an additive constant, shape (n,) (nats).
    kernel, bandwidth : see :func:`ksd` (the median heuristic is taken on the perturbed test sample).
    transition : {"jump", "mala", "rwm"} or callable
    modes : array of shape (k, d), k >= 2, optional
        Modes of p for ``"jump"`` (data units). None: found by optimisation (see above).
    jump_scales : array of floats > 0, optional
        Candidate theta for ``"jump"`` (dimensionless). Default ``linspace(0.5, 1.5, 21)`` (the
        paper's). More than one value is chosen from on a training split.
    n_steps : int >= 1
        Number T of transition steps (default 10, the paper's choice).
    step_size : float > 0, optional
        h of ``"mala"`` / ``"rwm"`` (data units^2). Default ``0.01 * median_bandwidth(X)^2``.
    train_fraction : float in (0, 1)
        Share of X used to find the modes and choose theta when needed (default 0.5).
    n_start : int >= 1, optional
        Number of optimisation starts (default: the training points, plus as many uniform ones).
    start_box : (array, array) of shape (d,) each, optional
        Lower and upper corners of the box the uniform optimisation starts are drawn in (data
        units; the paper draws them in [-10, 10]^d). Default: the bounding box of the training
        part widened by its own width on every side (three times as wide), so that modes the
        sample misses can still be found.
    merge_distance : float > 0, optional
        Modes closer than this are merged (data units; default 0.1 * the median heuristic of X).
    n_bootstrap, alpha, random_state, memory, threads : see :func:`ksd_test`

    Returns
    -------
    TestResult
        From :func:`ksd_test` on the perturbed test sample; ``details`` adds ``transition``,
        ``modes``, ``jump_scale``, ``n_steps``, ``acceptance`` (mean MH acceptance rate),
        ``n_test`` and ``perturbed`` (the perturbed test sample).
    """
    owner = "perturbed_ksd_test"
    from .._validation import Real
    from ..compress._resolve import median_bandwidth
    from ._ksd_perturb import find_modes, jump_steps, langevin_steps

    X = check_sample(X, owner)
    alpha = check_alpha(alpha, owner)
    check_count(n_bootstrap, "n_bootstrap", owner)
    T = check_count(n_steps, "n_steps", owner)
    train_fraction = check_param(train_fraction, "train_fraction", owner, Real(0, 1, low_open=True, high_open=True))
    if not callable(score):
        raise param_error("score", owner, "a callable x -> grad log p(x) (the perturbed points need new scores)",
                          score, kind="type")
    if not callable(log_density):
        raise param_error("log_density", owner, "a callable x -> log p(x) up to a constant, shape (n,)",
                          log_density, kind="type")
    if not (callable(transition) or transition in ("jump", "mala", "rwm")):
        raise param_error("transition", owner, "one of {'jump', 'mala', 'rwm'} or a callable (X, rng) -> X'",
                          transition, kind="value" if isinstance(transition, str) else "type")
    rng = generator(random_state, owner)
    Xf = X.astype(np.float64)
    n, d = Xf.shape
    details = {"transition": transition if isinstance(transition, str) else getattr(transition, "__name__", "callable"),
               "n_steps": T}
    if transition == "jump":
        split = modes is None or jump_scales is None or np.size(jump_scales) > 1
        if jump_scales is None:
            jump_scales = np.linspace(0.5, 1.5, 21)
        js = np.atleast_1d(np.asarray(jump_scales, dtype=np.float64))
        if js.ndim != 1 or js.size < 1 or not np.all(np.isfinite(js)) or np.any(js <= 0):
            raise param_error("jump_scales", owner, "a non-empty 1-D array of finite values > 0", jump_scales)
        if split:
            perm = rng.permutation(n)
            ntr = int(round(train_fraction * n))
            if ntr < 1 or n - ntr < 2:
                raise param_error("X", owner, "enough points for a training part (>= 1) and a test part (>= 2)",
                                  X, shown=f"{n} points with train_fraction={train_fraction}")
            Xtr, Xte = Xf[perm[:ntr]], Xf[perm[ntr:]]
        else:
            Xtr, Xte = None, Xf
        if modes is None:
            md = (merge_distance if merge_distance is not None else 0.1 * median_bandwidth(Xf))
            md = check_param(md, "merge_distance", owner, Real(0, low_open=True))
            if start_box is None:
                lo_box, hi_box = Xtr.min(axis=0), Xtr.max(axis=0)
                width = np.maximum(hi_box - lo_box, 1e-12)
                lo_box, hi_box = lo_box - width, hi_box + width
            else:
                try:
                    lo_box, hi_box = (np.broadcast_to(np.asarray(v, dtype=np.float64), (d,)) for v in start_box)
                except (TypeError, ValueError) as exc:
                    raise param_error("start_box", owner, f"a pair (low, high) of arrays of shape ({d},)",
                                      start_box) from exc
                if not (np.all(np.isfinite(lo_box)) and np.all(np.isfinite(hi_box)) and np.all(lo_box <= hi_box)):
                    raise param_error("start_box", owner, "finite corners with low <= high", start_box)
            n_unif = Xtr.shape[0] if n_start is None else max(0, check_count(n_start, "n_start", owner) - Xtr.shape[0])
            starts = np.concatenate([Xtr, rng.uniform(lo_box, hi_box, size=(n_unif, d))])
            if n_start is not None:
                starts = starts[:n_start]
            M = find_modes(log_density, score, starts, md, owner)
        else:
            M = np.asarray(modes, dtype=np.float64)
            if M.ndim != 2 or M.shape[1] != d or M.shape[0] < 2 or not np.all(np.isfinite(M)):
                raise param_error("modes", owner, f"a finite array of shape (k, {d}) with k >= 2 modes", modes)
        details["modes"] = M
        if M.shape[0] < 2:  # one mode found: nothing to jump between, the KSD test on the test part
            theta, Xp, acc = 1.0, Xte, 0.0
        else:
            if js.size > 1:
                best, theta = -math.inf, float(js[0])
                for th in js:
                    Xq, _ = jump_steps(Xtr, M, float(th), T, log_density, rng, owner)
                    v = ksd(Xq, score, kernel, bandwidth=bandwidth, unbiased=False, memory=memory, threads=threads) \
                        if Xq.shape[0] >= 2 else -math.inf
                    if v > best:
                        best, theta = v, float(th)
            else:
                theta = float(js[0])
            Xp, acc = jump_steps(Xte, M, theta, T, log_density, rng, owner)
        details["jump_scale"] = theta
    elif transition in ("mala", "rwm"):
        h = step_size if step_size is not None else 0.01 * median_bandwidth(Xf) ** 2
        h = check_param(h, "step_size", owner, Real(0, low_open=True))
        Xp, acc = langevin_steps(Xf, score, log_density, h, T, transition == "mala", rng, owner)
        details["step_size"] = h
    else:
        Xp, acc = Xf, math.nan
        for _ in range(T):
            Xq = np.asarray(transition(Xp.copy(), rng), dtype=np.float64)
            if Xq.shape != Xp.shape or not np.all(np.isfinite(Xq)):
                raise param_error("transition", owner, f"a callable returning finite points of shape {Xp.shape}",
                                  transition, kind="type", shown=f"an array of shape {Xq.shape}")
            Xp = Xq
    details["acceptance"] = acc
    res = ksd_test(Xp, score, kernel, bandwidth=bandwidth, n_bootstrap=n_bootstrap, alpha=alpha,
                   random_state=rng, memory=memory, threads=threads)
    details.update(res.details)
    details["n_test"] = Xp.shape[0]
    details["perturbed"] = Xp
    return TestResult("perturbed KSD (" + details["transition"] + "), wild bootstrap", res.statistic, res.pvalue,
                      res.threshold, alpha, res.reject, null=res.null, details=details)
