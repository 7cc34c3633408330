r"""Maximum mean discrepancy (MMD) two-sample statistics and tests, and the energy distance test.

For samples :math:`X = (x_i)_{i \le n}` and :math:`Y = (y_j)_{j \le m}` and a kernel k,

.. math::

    \mathrm{MMD}_b^2 = \frac{1}{n^2}\sum_{i,i'} k(x_i, x_{i'}) + \frac{1}{m^2}\sum_{j,j'} k(y_j, y_{j'})
                     - \frac{2}{nm}\sum_{i,j} k(x_i, y_j)

(biased, a V-statistic) and the unbiased U-statistic :math:`\mathrm{MMD}_u^2`, where the within-sample sums
skip i = i' (j = j') and are divided by n(n - 1) (m(m - 1)) (Gretton et al., JMLR 2012).

The tests resample the pooled sample Z = [X; Y]: the statistic of every permutation (or wild-bootstrap sign
vector) w is a quadratic form :math:`w^\top K w`, computed for all of them at once from the upper triangle
of K (:func:`kernelkit.stats._mmd_core.symmetric_forms`: half the multiply-adds of :math:`K W`), as BLAS
products of float64 kernel tiles from the engine (:func:`kernelkit.engine.kernel_block`). The tiles and the
weight columns are sized from the memory budget: no (n + m)^2 matrix is formed when it exceeds the budget,
and n = m = 10^5 with 100 permutations runs in the default 1 GB (plus N x B bytes of labels).
"""

from __future__ import annotations

import math
import time

import numpy as np

from .._random import generator
from .._validation import Integral, OneOf, check_param, param_error
from ..compress._mmd import mmd as _weighted_mmd, normalized_weights
from ..engine import kernel_sum
from ._mmd_core import (PooledSums, check_alpha, check_bool, check_samples, h_diag_sum, label_columns,
                        mc_threshold, paired_values, resolve_two_sample_kernel, sign_columns)
from ._result import TestResult, permutation_pvalue

__all__ = ["mmd2", "mmd2_linear", "mmd_test", "energy_test"]

_METHODS = ("permutation", "wild", "asymptotic")


def mmd2(X, Y, kernel="gaussian", *, bandwidth=None, unbiased=False, weights_x=None, weights_y=None, memory=None,
         threads=None):
    r"""Quadratic-time MMD^2 estimate between two (optionally weighted) samples.

    With weights p (on X) and q (on Y) normalised to sum to 1 (uniform by default),

    .. math::

        \mathrm{MMD}_b^2 = p^\top K_{XX} p + q^\top K_{YY} q - 2 p^\top K_{XY} q ,

    and the unbiased version replaces :math:`p^\top K_{XX} p` by
    :math:`\sum_{i \ne i'} p_i p_{i'} k(x_i, x_{i'}) / (1 - \sum_i p_i^2)` (likewise for Y), which is the
    U-statistic :math:`\frac{1}{n(n-1)}\sum_{i \ne i'}` for uniform weights and unbiased for any fixed weights.

    Parameters
    ----------
    X : array of shape (n, d)
        First sample (units of the data), n >= 2.
    Y : array of shape (m, d)
        Second sample, m >= 2, same d.
    kernel : Kernel or str, default "gaussian"
        The kernel k, or its name ('gaussian', 'laplace', 'imq', 'matern32', ...) built with ``bandwidth``.
    bandwidth : float > 0, optional
        Bandwidth of a kernel given by name (units of the data); default the median heuristic
        (:func:`kernelkit.median_bandwidth`) on X and Y pooled. Must be None with a Kernel object.
    unbiased : bool, default False
        The U-statistic (can be negative) instead of the V-statistic (>= 0; rounding below 0 is clipped).
    weights_x, weights_y : arrays of shape (n,) and (m,), optional
        Non-negative weights (normalised to sum to 1), e.g. from a coreset; default uniform.
    memory, threads : optional
        Engine options for this call (see :func:`kernelkit.options`).

    Returns
    -------
    float
        The estimate of MMD^2 (units of k, dimensionless for radial kernels), computed in float64.

    Notes
    -----
    The biased value is :func:`kernelkit.mmd` (``squared=True``) with the kernel resolved on the pooled sample.
    Three kernel sums through the engine; no n x m matrix is held.
    """
    owner = "mmd2"
    unbiased = check_bool(unbiased, "unbiased", owner)
    X, Y = check_samples(X, Y, owner)
    kernel = resolve_two_sample_kernel(kernel, bandwidth, X, Y, owner)
    if not unbiased:
        return _weighted_mmd(X, Y, kernel, weights_x, weights_y, squared=True, memory=memory, threads=threads)
    p = normalized_weights(weights_x, X.shape[0], "weights_x", owner)
    q = normalized_weights(weights_y, Y.shape[0], "weights_y", owner)
    X64, Y64 = X.astype(np.float64, copy=False), Y.astype(np.float64, copy=False)
    kw = dict(memory=memory, threads=threads)

    def within(A, w, name):
        s2 = float(w @ w)
        if s2 >= 1.0 - 1e-12:
            raise param_error(f"weights_{name}", owner, "weights with at least two positive entries for the "
                              "unbiased estimate", w, shown="a single positive weight")
        total = float(w @ kernel_sum(kernel, A, A, w, **kw))
        return (total - float((w * w) @ kernel.diag(A))) / (1.0 - s2)

    xy = float(q @ kernel_sum(kernel, X64, Y64, p, **kw))
    return within(X64, p, "x") + within(Y64, q, "y") - 2.0 * xy


def mmd2_linear(X, Y, kernel="gaussian", *, bandwidth=None):
    r"""Linear-time MMD^2 estimate and its variance (Gretton et al., JMLR 2012, Lemma 14 and Corollary 16).

    With :math:`n_2 = \lfloor \min(n, m) / 2 \rfloor` pairs of consecutive rows,

    .. math::

        \mathrm{MMD}_l^2 = \frac{1}{n_2}\sum_{i=1}^{n_2} h_i, \quad
        h_i = k(x_{2i-1}, x_{2i}) + k(y_{2i-1}, y_{2i}) - k(x_{2i-1}, y_{2i}) - k(x_{2i}, y_{2i-1}),

    an unbiased estimate in O(n d) time, asymptotically normal with variance
    :math:`\mathrm{Var}(h) / n_2`, estimated by the sample variance of the h_i over n_2.

    Parameters
    ----------
    X : array of shape (n, d)
        First sample (units of the data); rows are used in their order (shuffle them if they are sorted).
    Y : array of shape (m, d)
        Second sample; when n != m only the first min(n, m) rows of each are used.
    kernel : Kernel or str, default "gaussian"
        As in :func:`mmd2`.
    bandwidth : float > 0, optional
        As in :func:`mmd2` (default the median heuristic on the pooled sample).

    Returns
    -------
    statistic : float
        :math:`\mathrm{MMD}_l^2` (units of k).
    variance : float
        The estimated variance of the statistic, :math:`\widehat{\mathrm{Var}}(h) / n_2`
        (ddof = 1; units of k squared). A one-sided test rejects when
        ``statistic > z_{1-alpha} * sqrt(variance)``.
    """
    owner = "mmd2_linear"
    X, Y = check_samples(X, Y, owner)
    kernel = resolve_two_sample_kernel(kernel, bandwidth, X, Y, owner)
    n2 = min(X.shape[0], Y.shape[0]) // 2
    x1, x2 = X[0:2 * n2:2], X[1:2 * n2:2]
    y1, y2 = Y[0:2 * n2:2], Y[1:2 * n2:2]
    h = (paired_values(kernel, x1, x2) + paired_values(kernel, y1, y2)
         - paired_values(kernel, x1, y2) - paired_values(kernel, x2, y1))
    var = float(np.var(h, ddof=1)) / n2 if n2 > 1 else math.nan
    return float(h.mean()), var


def _check_test_args(owner, method, n_permutations, alpha, unbiased):
    method = check_param(method, "method", owner, OneOf(*_METHODS))
    B = check_param(n_permutations, "n_permutations", owner, Integral(low=1))
    alpha = check_alpha(alpha, owner)
    unbiased = check_bool(unbiased, "unbiased", owner)
    return method, B, alpha, unbiased


def _result(name, statistic, null, alpha, details):
    pvalue = permutation_pvalue(statistic, null)
    threshold = mc_threshold(null, alpha)
    return TestResult(name, float(statistic), pvalue, threshold, alpha, bool(pvalue <= alpha), null, details)


def _resampled(kernel, X, Y, method, B, unbiased, rng, memory, threads, n_eigen):
    """(observed statistic, null sample, extra details) for one kernel; see :func:`mmd_test`."""
    n, m = X.shape[0], Y.shape[0]
    Z = np.concatenate([X, Y])
    extra = {}
    if method == "asymptotic":
        stat = mmd2(X, Y, kernel, unbiased=unbiased, memory=memory, threads=threads)
        null, lam = _spectral_null(kernel, Z, n, m, B, unbiased, rng, n_eigen)
        extra["eigenvalues"] = lam
        return stat, null, extra
    sums = PooledSums(kernel, Z, memory, threads)
    if method == "permutation":
        values = sums.label_stats(label_columns(rng, n + m, n, B), n, m, unbiased)
    else:
        if n != m:
            raise param_error("method", "mmd_test", "'permutation' or 'asymptotic' when n != m "
                              "(the wild bootstrap pairs x_i with y_i)", method,
                              shown=f"'wild' with n={n}, m={m}")
        hd = h_diag_sum(kernel, X, Y) if unbiased else 0.0
        values = sums.sign_stats(sign_columns(rng, n, B), hd, unbiased)
    extra["column_chunk"] = sums.chunk
    extra["backend"] = sums.backend
    return float(values[0]), values[1:], extra


def _spectral_null(kernel, Z, n, m, B, unbiased, rng, n_eigen):
    r"""B draws of the asymptotic null of MMD^2, from the eigenvalues of the centred Gram matrix of a subsample."""
    N = Z.shape[0]
    s = min(N, n_eigen)
    idx = np.sort(rng.choice(N, s, replace=False)) if s < N else np.arange(N)
    Zs = np.asarray(Z[idx], dtype=np.float64)
    G = np.asarray(kernel(Zs), dtype=np.float64)
    G = G - G.mean(axis=0, keepdims=True)
    G = G - G.mean(axis=1, keepdims=True)
    lam = np.linalg.eigvalsh((G + G.T) / 2) / s
    lam = lam[lam > 1e-12 * max(lam.max(initial=0.0), 1e-300)][::-1]
    z2 = rng.standard_normal((B, lam.size)) ** 2
    draws = (z2 - 1.0) @ lam if unbiased else z2 @ lam
    return draws / (n * m / (n + m)), lam


def mmd_test(X, Y, kernel="gaussian", *, bandwidth=None, method="permutation", n_permutations=1000, alpha=0.05,
             unbiased=False, random_state=None, n_eigen=1000, memory=None, threads=None):
    r"""Kernel two-sample test of :math:`H_0: P = Q` with the MMD^2 statistic (Gretton et al., JMLR 2012).

    The statistic T is :func:`mmd2` (biased by default, ``unbiased=True`` for the U-statistic). The null
    distribution is drawn by one of three methods:

    * ``"permutation"`` (default): B random relabellings of the pooled sample Z = [X; Y], each a 0/1 label
      column s_b over Z, all taken in one pass over the tiles of K's upper triangle; :math:`T_b` from :math:`s_b^\top K s_b`,
      :math:`1^\top K s_b` and :math:`1^\top K 1`, the unbiased version removing the diagonal
      :math:`\sum k(z_i, z_i)` exactly (``kernel.diag``). Exact level for any B:
      p = (1 + #{T_b >= T}) / (1 + B). Permutation b labels X the rows ``rng.permutation(n + m)[:n]``, drawn
      in order from ``numpy.random.default_rng(random_state)``.
    * ``"wild"`` (n = m only): the wild bootstrap with Rademacher signs on the paired h-statistic
      :math:`h_{ij} = k(x_i, x_j) + k(y_i, y_j) - k(x_i, y_j) - k(x_j, y_i)`:
      :math:`T_\epsilon = \frac{1}{n^2}\sum_{i,j}\epsilon_i\epsilon_j h_{ij}` (biased, T is
      :math:`\mathrm{MMD}_b^2`), or :math:`\frac{1}{n(n-1)}\sum_{i \ne j}` (``unbiased=True``: T is then the
      paired U-statistic of MMDAgg, Schrab et al. 2023, which differs from :math:`\mathrm{MMD}_u^2` by the
      terms :math:`k(x_i, y_i)`). One form :math:`\epsilon^\top H \epsilon` per draw, from the tiles of H. The signs are one
      ``rng.integers(0, 2, size=(B, n))`` draw. Exact under exchangeability of the pairs
      :math:`(x_i, y_i) \leftrightarrow (y_i, x_i)` (i.i.d. pairs under H0).
    * ``"asymptotic"``: the spectral null of Gretton et al. (NeurIPS 2009): under H0,
      :math:`\frac{nm}{n+m}\mathrm{MMD}_b^2 \to \sum_l \lambda_l z_l^2` (unbiased:
      :math:`\sum_l \lambda_l (z_l^2 - 1)`), with :math:`\lambda_l` the eigenvalues of the centred kernel
      operator, estimated by those of the centred Gram matrix :math:`HKH / s` of ``n_eigen`` pooled points
      drawn at random; B draws of the sum give the null. Only asymptotically valid: its level is off at small
      n, and when n_eigen points do not resolve the spectrum (small bandwidths); it costs O(s^3) once, not
      O(N^2 B), so it serves huge n where permutations cost too much.

    Parameters
    ----------
    X : array of shape (n, d)
        First sample (units of the data), n >= 2; float32 or float64 (float32 kernel sums are computed
        in float32 tiles: the null is then accurate to about 1e-7 of the kernel's scale).
    Y : array of shape (m, d)
        Second sample, m >= 2, same d.
    kernel : Kernel or str, default "gaussian"
        The kernel, or its name built with ``bandwidth``.
    bandwidth : float > 0, optional
        Bandwidth of a named kernel (units of the data); default the median heuristic on X and Y pooled
        (:func:`kernelkit.median_bandwidth`, at most 2,000 rows, fixed seed).
    method : {"permutation", "wild", "asymptotic"}
        How the null is drawn (see above).
    n_permutations : int >= 1, default 1000
        B: permutations, bootstrap draws, or draws of the spectral null.
    alpha : float in (0, 1), default 0.05
        Level.
    unbiased : bool, default False
        Use the U-statistic (see above).
    random_state : None, int >= 0, SeedSequence or Generator
        Seeds all draws; the same value gives the same result.
    n_eigen : int >= 2, default 1000
        Subsample size for the eigenvalues of the asymptotic method.
    memory, threads : optional
        Engine options (memory budget in bytes or "256MB"; CPU threads). Kernel tiles and the weight columns of
        one pass are sized to fit the budget (passes of at most 4,096 columns); labels (N x B bytes) are
        kept for all B. ``threads`` also caps the BLAS threads of the products.

    Returns
    -------
    TestResult
        ``statistic`` (MMD^2, units of k), ``pvalue`` (1 + #{null >= T}) / (1 + B), ``threshold`` (the
        critical value: reject iff statistic > threshold), ``null`` (B values of the statistic under H0, in
        the units of the statistic), ``reject`` (pvalue <= alpha). ``details``: ``kernel``, ``n``, ``m``,
        ``method``, ``unbiased``, ``n_permutations``, ``seconds``; ``eigenvalues`` for the asymptotic method;
        ``column_chunk`` (weight columns per pass over the kernel tiles) and ``backend`` otherwise (pooled
        samples of at most 4,096 points whose dense matrix fits a quarter of the budget keep one
        ``kernel_block``, reported as "dense"; larger ones compute the tiles of the upper triangle, reported
        as "symmetric tiles").

    Examples
    --------
    >>> import numpy as np
    >>> from kernelkit.stats import mmd_test
    >>> rng = np.random.default_rng(0)
    >>> X, Y = rng.normal(size=(200, 2)), rng.normal(0.5, 1, size=(200, 2))
    >>> mmd_test(X, Y, n_permutations=200, random_state=0).reject
    True
    """
    owner = "mmd_test"
    method, B, alpha, unbiased = _check_test_args(owner, method, n_permutations, alpha, unbiased)
    n_eigen = check_param(n_eigen, "n_eigen", owner, Integral(low=2))
    X, Y = check_samples(X, Y, owner)
    kernel = resolve_two_sample_kernel(kernel, bandwidth, X, Y, owner)
    rng = generator(random_state, owner)
    t0 = time.perf_counter()
    stat, null, extra = _resampled(kernel, X, Y, method, B, unbiased, rng, memory, threads, n_eigen)
    details = {"kernel": kernel, "n": X.shape[0], "m": Y.shape[0], "method": method, "unbiased": unbiased,
               "n_permutations": B, **extra, "seconds": time.perf_counter() - t0}
    name = f"MMD two-sample, {'U' if unbiased else 'V'}-statistic, {method}"
    return _result(name, stat, null, alpha, details)


def energy_test(X, Y, *, n_permutations=1000, alpha=0.05, unbiased=False, random_state=None, memory=None,
                threads=None):
    r"""Energy distance two-sample test (Szekely & Rizzo 2004), as an MMD test with the distance kernel.

    The statistic is the energy distance

    .. math::

        \mathcal{E}(X, Y) = \frac{2}{nm}\sum_{i,j}\|x_i - y_j\| - \frac{1}{n^2}\sum_{i,i'}\|x_i - x_{i'}\|
                           - \frac{1}{m^2}\sum_{j,j'}\|y_j - y_{j'}\| ,

    which is :math:`2\,\mathrm{MMD}_b^2` with the distance-induced kernel
    :math:`k(x, y) = (\|x\| + \|y\| - \|x - y\|)/2` (Sejdinovic et al., Ann. Statist. 2013); with
    ``unbiased=True`` the within-sample means are over i != i' (divided by n(n - 1)). The null is drawn by
    permutations exactly as in :func:`mmd_test`. Some references scale it by nm/(n + m) (the "E-statistic");
    that factor does not change the p-value.

    Parameters
    ----------
    X : array of shape (n, d)
        First sample (units of the data), n >= 2.
    Y : array of shape (m, d)
        Second sample, m >= 2, same d.
    n_permutations : int >= 1, default 1000
        B.
    alpha : float in (0, 1), default 0.05
    unbiased : bool, default False
    random_state : None, int >= 0, SeedSequence or Generator
    memory, threads : optional
        Engine options.

    Returns
    -------
    TestResult
        ``statistic`` the energy distance (data units), ``null`` its B permutation values, p-value
        (1 + #{null >= T}) / (1 + B); ``details`` as in :func:`mmd_test`.

    Notes
    -----
    Distance sums run on the engine's blocked NumPy backend (the compiled engine has no distance family
    yet), tiled within the memory budget: about as fast as a NumPy GEMM, slower than the Gaussian test.
    Distances come from the Gram form on centred data; those below 1e-3 of the data's scale (the diagonal,
    near-duplicates) are recomputed from the differences, so every distance has a small relative error.
    """
    owner = "energy_test"
    _, B, alpha, unbiased = _check_test_args(owner, "permutation", n_permutations, alpha, unbiased)
    X, Y = check_samples(X, Y, owner)
    from ._mmd_energy import DistanceKernel
    rng = generator(random_state, owner)
    t0 = time.perf_counter()
    stat, null, extra = _resampled(DistanceKernel(), X, Y, "permutation", B, unbiased, rng, memory, threads, 2)
    details = {"n": X.shape[0], "m": Y.shape[0], "method": "permutation", "unbiased": unbiased,
               "n_permutations": B, **extra, "seconds": time.perf_counter() - t0}
    return _result("energy distance two-sample, permutation", 2 * stat, 2 * null, alpha, details)
