r"""The parametric-bootstrap null of the KSD tests: KSD values of samples drawn from the model itself.

When the model can be sampled (an RBM by Gibbs sampling, a normalising flow, a simulator), the null
distribution of :math:`\widehat{KSD}^2_U` at sample size n is simulated directly: draw B samples of
size n from p, compute the statistic of each at every bandwidth. Unlike the wild bootstrap, this null
does not rest on the degenerate-U-statistic approximation, and it is computed once and reused by
every test of a sample of the same size (Schrab, Guedj & Gretton 2022, Section 4: the RBM and
normalising-flow experiments).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .._validation import param_error
from ._ksd_common import check_sample, ksd_from_sum, scores_at, stein_kernel, stein_quadratic_forms

__all__ = ["ParametricNull", "ksd_parametric_null"]

_KERNELS = ("imq", "gaussian", "matern52", "rq")


@dataclass(frozen=True, repr=False)
class ParametricNull:
    """KSD^2 statistics of B model samples, one row per bandwidth.

    Attributes
    ----------
    statistics : array of shape (N, B)
        Row l: the statistic at ``bandwidths[l]`` of each of the B model samples, in draw order.
    bandwidths : array of shape (N,)
        The bandwidths (data units).
    kernel : str
        The base kernel family.
    n : int
        The size of every model sample: the null holds for tested samples of this size only.
    unbiased : bool
        U-statistics (True) or V-statistics.
    """

    statistics: np.ndarray
    bandwidths: np.ndarray
    kernel: str
    n: int
    unbiased: bool

    def subset(self, bandwidths=None, draws=None):
        """The null restricted to some bandwidth rows (indices) and / or draws (a slice or indices)."""
        rows = slice(None) if bandwidths is None else np.atleast_1d(bandwidths)
        cols = slice(None) if draws is None else draws
        stats = self.statistics[rows][:, cols]
        return ParametricNull(np.ascontiguousarray(stats), self.bandwidths[rows].copy(), self.kernel, self.n,
                              self.unbiased)

    def __repr__(self):
        N, B = self.statistics.shape
        return (f"ParametricNull(kernel={self.kernel!r}, {N} bandwidth(s), {B} model samples of n={self.n}, "
                f"{'U' if self.unbiased else 'V'}-statistics)")


def _samples(model_samples, owner):
    if callable(model_samples) or isinstance(model_samples, (str, bytes)):
        raise param_error("model_samples", owner, "an array of shape (B, n, d) or an iterable of (n, d) arrays "
                          "drawn from the model", model_samples, kind="type")
    if isinstance(model_samples, np.ndarray):
        if model_samples.ndim != 3:
            raise param_error("model_samples", owner, "an array of shape (B, n, d) or an iterable of (n, d) "
                              "arrays drawn from the model", model_samples, shown=f"shape {model_samples.shape}")
        return iter(model_samples)
    try:
        return iter(model_samples)
    except TypeError:
        raise param_error("model_samples", owner, "an array of shape (B, n, d) or an iterable of (n, d) arrays "
                          "drawn from the model", model_samples, kind="type") from None


def ksd_parametric_null(model_samples, score, kernel="imq", *, bandwidths, unbiased=True, memory=None,
                        threads=None):
    r"""The parametric-bootstrap null of :func:`ksd_test` and :func:`ksdagg_test`.

    For each model sample :math:`Z^{(b)} = (z^{(b)}_1, \dots, z^{(b)}_n) \sim p` and each bandwidth
    :math:`\lambda` of the collection,

    .. math::

        T^{(b)}_\lambda = \frac{1}{n(n-1)} \sum_{i \ne j} k_{p,\lambda}(z^{(b)}_i, z^{(b)}_j)

    (the V-statistic keeps the diagonal and divides by :math:`n^2`). Under H0 the tested sample is one
    more draw of the same law, so the B values are exact null draws (no asymptotic argument). All
    bandwidths of one sample share one pass over its Stein kernel's row strips.

    Parameters
    ----------
    model_samples : array of shape (B, n, d), or an iterable of B arrays of shape (n, d)
        Samples drawn from the model p, all of the same size n (that of the samples to be tested).
        A generator keeps only one sample in memory at a time.
    score : callable, or array of shape (B, n, d), or an iterable of (n, d) arrays
        ``score(Z) -> grad log p(Z)`` (units 1 / data units), or the scores of every model sample in
        the same order.
    kernel : str
        Base kernel family by name (``"imq"`` default, ``"gaussian"``, ``"matern52"``, ``"rq"``).
    bandwidths : float or array of floats > 0
        The bandwidth (for :func:`ksd_test`) or collection (for :func:`ksdagg_test`), data units; the
        tests must use the same ones.
    unbiased : bool
        U-statistics (default; :func:`ksdagg_test` requires them) or V-statistics.
    memory, threads : optional
        Engine options (:func:`kernelkit.options`), as in :func:`ksd_test`.

    Returns
    -------
    ParametricNull
        ``statistics`` of shape (N, B), plus the bandwidths, kernel, n and statistic kind it holds for.

    Examples
    --------
    >>> import numpy as np
    >>> from kernelkit.stats import ksd_parametric_null, ksd_test
    >>> rng = np.random.default_rng(0)
    >>> null = ksd_parametric_null(rng.standard_normal((200, 100, 2)), lambda z: -z, bandwidths=1.0)
    >>> ksd_test(rng.standard_normal((100, 2)) + 0.5, lambda x: -x, bandwidth=1.0, null=null).reject
    True
    """
    owner = "ksd_parametric_null"
    if not isinstance(kernel, str) or kernel.lower() not in _KERNELS:
        raise param_error("kernel", owner, f"a kernel family by name, one of {', '.join(map(repr, _KERNELS))}",
                          kernel)
    kernel = kernel.lower()
    if unbiased not in (True, False):
        raise param_error("unbiased", owner, "True or False", unbiased)
    bw = np.atleast_1d(np.asarray(bandwidths, dtype=np.float64))
    if bw.ndim != 1 or bw.size < 1 or not np.all(np.isfinite(bw)) or np.any(bw <= 0):
        raise param_error("bandwidths", owner, "a bandwidth or a non-empty 1-D array of finite bandwidths > 0 "
                          "(data units)", bandwidths)
    samples = _samples(model_samples, owner)
    score_list = None if callable(score) else _samples(score, owner)
    rows, n = [], None
    for b, Z in enumerate(samples):
        Z = check_sample(Z, owner)
        if n is None:
            n, d = Z.shape
        elif Z.shape != (n, d):
            raise param_error("model_samples", owner, f"samples of one shape, ({n}, {d}) like the first", Z,
                              shown=f"sample {b} of shape {Z.shape}")
        if score_list is None:
            S = scores_at(score, Z, owner)
        else:
            S_b = next(score_list, None)
            if S_b is None:
                raise param_error("score", owner, "one score array per model sample", score,
                                  shown=f"fewer score arrays than samples (none for sample {b})")
            S = scores_at(np.asarray(S_b), Z, owner)
        kps = [stein_kernel(Z, kernel, float(lam), owner) for lam in bw]
        off, _ = stein_quadratic_forms(kps, Z, S, np.empty((n, 0)), memory, threads)
        trace = np.zeros(bw.size) if unbiased else np.array([float(np.sum(kp.diag(Z, scores=S))) for kp in kps])
        rows.append(ksd_from_sum(off, trace, n, unbiased))
    if n is None:
        raise param_error("model_samples", owner, "at least one model sample", model_samples, shown="no sample")
    return ParametricNull(np.ascontiguousarray(np.array(rows).T), bw, kernel, int(n), bool(unbiased))


def check_null(null, owner, n, kernel, unbiased, bandwidths):
    """The ParametricNull ``null`` after checking that it holds for this test; returns (null, bandwidths)."""
    if not isinstance(null, ParametricNull):
        raise param_error("null", owner, "None (wild bootstrap) or a ParametricNull from ksd_parametric_null",
                          null, kind="type")
    if null.n != n:
        raise param_error("null", owner, f"a null simulated at the sample size n = {n} of X", null,
                          shown=f"a null of samples of size {null.n}")
    if not isinstance(kernel, str) or kernel.lower() != null.kernel:
        raise param_error("kernel", owner, f"the null's kernel {null.kernel!r}", kernel)
    if unbiased != null.unbiased:
        if owner == "ksd_test":
            raise param_error("unbiased", owner, f"the null's statistic kind ({null.unbiased})", unbiased)
        raise param_error("null", owner, "a null of U-statistics (ksd_parametric_null(..., unbiased=True))", null)
    if bandwidths is None:
        return null, null.bandwidths
    bw = np.atleast_1d(np.asarray(bandwidths, dtype=np.float64))
    if bw.shape != null.bandwidths.shape or not np.allclose(bw, null.bandwidths, rtol=1e-12, atol=0):
        raise param_error("bandwidths", owner, f"the null's bandwidths {np.array2string(null.bandwidths, 6)}",
                          bandwidths)
    return null, null.bandwidths
