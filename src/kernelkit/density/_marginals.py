r"""cdf and quantiles of a 1-D KernelDensity, marginal and conditional densities of a Gaussian KernelDensity.

For data :math:`x_i`, weights :math:`w_i` (total W) and a kernel of
bandwidth :math:`\sigma` (data units):

* cdf, Gaussian kernel: :math:`F(x) = W^{-1} \sum_i w_i\, \Phi((x - x_i)/\sigma)`;
  Laplace kernel :math:`e^{-|r|/\ell}`: :math:`F(x) = W^{-1} \sum_i w_i\, G((x - x_i)/\ell)`
  with :math:`G(u) = e^{u}/2` for u < 0 and :math:`1 - e^{-u}/2` for u >= 0;
* quantile: the solution of F(x) = q (F is continuous and strictly increasing);
* marginal on columns S: the Gaussian kernel is a product over coordinates,
  :math:`\exp(-\|z\|^2/2\sigma^2) = \prod_a \exp(-z_a^2/2\sigma^2)`, so
  integrating out the other columns leaves the KDE of the columns S with the
  same weights and bandwidth, exactly. Other radial kernels are not products
  (the marginal of a Laplace, Matern or Cauchy kernel on a subset of columns
  is another function, not the same kernel), so only the Gaussian is offered;
* conditional on columns G at the values :math:`x_G`:
  :math:`p(y \mid x_G) = \sum_i v_i\, k_\sigma(y - x_{i,-G}) / \sum_i v_i` with
  :math:`v_i = w_i\, k_\sigma(x_{i,G} - x_G)`, a KDE on the remaining columns
  with weights v (computed in the log domain), which integrates to 1 over y.
"""

from __future__ import annotations

import numbers

import numpy as np

from .._options import get_options
from .._validation import check_points, param_error
from ..kernels import Gaussian, Laplace, Matern
from ._kde import KernelDensity

__all__ = ["kde_cdf", "kde_quantile", "kde_marginal", "kde_conditional"]

def _fitted(kde, owner):
    if not isinstance(kde, KernelDensity):
        raise param_error("kde", owner, "a fitted kernelkit.KernelDensity", kde, kind="type")
    if not hasattr(kde, "bandwidth_"):
        raise param_error("kde", owner, "a fitted kernelkit.KernelDensity (call fit first)", kde,
                          shown="an unfitted KernelDensity")
    if getattr(kde, "_whiten", None) is not None:
        raise param_error("kde", owner, "a KernelDensity with an isotropic bandwidth (bandwidth_matrix=None)", kde,
                          shown="a KernelDensity with a bandwidth matrix")
    return kde


def _family(kernel):
    """"gaussian", "laplace" or None for the kernel object (Matern nu = 1/2 is the Laplace kernel)."""
    if getattr(kernel, "distance", "euclidean") != "euclidean":
        return None
    if type(kernel) is Gaussian:
        return "gaussian"
    if type(kernel) is Laplace or (type(kernel) is Matern and kernel.nu == 0.5):
        return "laplace"
    return None


def _one_d(kde, owner):
    """``(family, sigma, x, w)`` of a fitted 1-D Gaussian or Laplace KernelDensity; points of weight 0 dropped."""
    _fitted(kde, owner)
    if kde.n_features_in_ != 1:
        raise param_error("kde", owner, "a KernelDensity fitted on 1-D data (one column)", kde,
                          shown=f"a KernelDensity fitted on {kde.n_features_in_} columns",
                          hint="Take a marginal first: kde_marginal(kde, [j]).")
    fam = _family(kde.kernel_)
    if fam is None:
        raise param_error("kde", owner, "a KernelDensity with the Gaussian or the Laplace kernel (closed-form "
                          "cdf)", kde, shown=f"kernel {kde.kernel_!r}")
    sigma = float(kde.kernel_.bandwidth) * float(kde._scale)
    keep = kde._w > 0
    x = kde._X[keep, 0].astype(np.float64)
    w = kde._w[keep]
    order = np.argsort(x, kind="stable")
    return fam, sigma, x[order], w[order]


def _query(x, owner, name="x"):
    arr = np.asarray(x)
    if arr.dtype == object or not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool) \
            or np.iscomplexobj(arr):
        raise param_error(name, owner, "a real number or an array of real numbers", x, kind="type")
    return arr.astype(np.float64)


def _laplace_unit_cdf(u):
    """cdf of the density e^{-|u|} / 2: e^u / 2 below 0, 1 - e^{-u} / 2 above."""
    e = 0.5 * np.exp(-np.abs(u))
    return np.where(u < 0, e, 1.0 - e)


def _unit_cdf(fam):
    """``(K, reach)``: the unit kernel's cdf and the |u| beyond which K(u) is exactly 0 or 1 in float64
    (Phi(-40) = 3.6e-350; e^{-745} / 2 = 0 and 1 - e^{-37} / 2 = 1)."""
    if fam == "gaussian":
        from scipy.special import ndtr
        return ndtr, 40.0
    return _laplace_unit_cdf, 746.0


def _windowed_cdf(fam, xs, w, sigma, q, memory):
    """W^-1 sum_i w_i K((q - x_i) / sigma) for sorted data xs, over blocks of sorted queries: only the points
    within ``reach`` sigma of a block are evaluated (those below contribute exactly w_i, those above exactly 0),
    in dense blocks of at most about ``memory`` bytes."""
    K, reach = _unit_cdf(fam)
    reach = reach * sigma
    cum = np.concatenate([[0.0], np.cumsum(w)])
    total = cum[-1]
    order = np.argsort(q, kind="stable")
    qs = q[order]
    out = np.empty_like(qs)
    max_elems = max(1, memory // 24)
    s, m = 0, qs.size
    while s < m:
        e = m
        while True:
            i0 = int(np.searchsorted(xs, qs[s] - reach, side="left"))
            i1 = int(np.searchsorted(xs, qs[e - 1] + reach, side="right"))
            if (i1 - i0) * (e - s) <= max_elems or e - s == 1:
                break
            e = s + max(1, (e - s) // 2)
        block = qs[s:e]
        part = w[i0:i1] @ K((block[None, :] - xs[i0:i1, None]) / sigma) if i1 > i0 else 0.0
        out[s:e] = (cum[i0] + part) / total
        s = e
    res = np.empty_like(out)
    res[order] = np.clip(out, 0.0, 1.0)
    return res


def kde_cdf(kde, x):
    r"""Cumulative distribution function of a 1-D Gaussian or Laplace KernelDensity.

    .. math::

        F(x) = \frac{1}{\sum_i w_i} \sum_i w_i\, K\big((x - x_i)/\sigma\big),

    with K the standard normal cdf :math:`\Phi` (Gaussian kernel of
    standard deviation :math:`\sigma`) or the Laplace cdf
    :math:`K(u) = e^{u}/2` (u < 0), :math:`1 - e^{-u}/2` (u >= 0) for the
    kernel :math:`e^{-|r|/\sigma}`. Continuous, non-decreasing, with limits
    0 and 1. Only the data within 40 sigma (Gaussian) or 746 sigma
    (Laplace) of a query are evaluated: beyond, K is exactly 0 or 1 in
    float64, so the result is the full sum. Dense blocks stay within the
    engine's memory budget (``kde.memory``); the cost is O(m log m + n log n)
    plus one K evaluation per (query, point within reach).

    Parameters
    ----------
    kde : KernelDensity
        Fitted on one column, with ``kernel="gaussian"`` or ``"laplace"``
        (or the kernel objects Gaussian, Laplace, Matern(0.5)).
    x : float or array of any shape
        Points (data units).

    Returns
    -------
    float or ndarray of float64
        F(x), in [0, 1], of the shape of ``x``.
    """
    owner = "kde_cdf"
    fam, sigma, xs, w = _one_d(kde, owner)
    q = _query(x, owner)
    flat = q.ravel()
    out = np.empty_like(flat)
    nan = np.isnan(flat)
    fin = np.isfinite(flat)
    out[nan] = np.nan
    out[flat == np.inf] = 1.0
    out[flat == -np.inf] = 0.0
    if fin.any():
        out[fin] = _windowed_cdf(fam, xs, w, sigma, flat[fin], get_options(memory=kde.memory).memory)
    out = out.reshape(q.shape)
    return float(out) if np.ndim(x) == 0 else out


def _kernel_ppf(fam, p):
    """Inverse cdf of the unit kernel (standard normal, or the Laplace e^{-|u|})."""
    from scipy.special import ndtri
    if fam == "gaussian":
        return ndtri(p)
    with np.errstate(divide="ignore"):
        return np.where(p < 0.5, np.log(2 * p), -np.log(2 * (1 - p)))


def kde_quantile(kde, q):
    r"""Quantiles of a 1-D Gaussian or Laplace KernelDensity: the x with :math:`F(x) = q`.

    F (:func:`kde_cdf`) is continuous and strictly increasing, so the
    quantile is unique. It lies between :math:`\min_i x_i + \sigma K^{-1}(q)`
    and :math:`\max_i x_i + \sigma K^{-1}(q)` (K the kernel's own cdf); it is
    found by Newton's method on F with the exact density
    (:meth:`KernelDensity.score_samples`), safeguarded by bisection inside
    that bracket, to a few ulps of x (each step costs one cdf and one density
    evaluation at the queries not yet converged; 5 to 10 steps typically).

    Parameters
    ----------
    kde : KernelDensity
        Fitted on one column with the Gaussian or the Laplace kernel.
    q : float or array of any shape
        Probabilities in [0, 1]; 0 gives -inf and 1 gives +inf.

    Returns
    -------
    float or ndarray of float64
        The quantiles (data units), of the shape of ``q``.
    """
    owner = "kde_quantile"
    fam, sigma, xs, w = _one_d(kde, owner)
    p = _query(q, owner, "q")
    flat = p.ravel()
    if not np.all((flat >= 0) & (flat <= 1)):
        bad = flat[~((flat >= 0) & (flat <= 1))][0]
        raise param_error("q", owner, "probabilities in [0, 1]", q, shown=f"{bad!r}")
    out = np.empty_like(flat)
    out[flat == 0] = -np.inf
    out[flat == 1] = np.inf
    inner = np.flatnonzero((flat > 0) & (flat < 1))
    if inner.size:
        pi = flat[inner]
        z = _kernel_ppf(fam, pi) * sigma
        lo, hi = xs[0] + z, xs[-1] + z
        if xs[0] == xs[-1]:  # one distinct point: the kernel's own quantile
            out[inner] = lo
        else:
            out[inner] = _solve_quantiles(kde, fam, sigma, xs, w, pi, lo, hi)
    out = out.reshape(p.shape)
    return float(out) if np.ndim(q) == 0 else out


def _solve_quantiles(kde, fam, sigma, xs, w, p, lo, hi):
    memory = get_options(memory=kde.memory).memory
    def cdf(t):
        return _windowed_cdf(fam, xs, w, sigma, t, memory)

    x = 0.5 * (lo + hi)
    active = np.arange(p.size)
    eps = np.finfo(np.float64).eps
    for _ in range(200):
        xa, pa = x[active], p[active]
        F = cdf(xa)
        below = F < pa
        lo[active] = np.where(below, xa, lo[active])
        hi[active] = np.where(below, hi[active], xa)
        dens = np.exp(kde.score_samples(xa[:, None]).astype(np.float64))
        with np.errstate(divide="ignore", invalid="ignore"):
            xn = xa - (F - pa) / dens
        la, ha = lo[active], hi[active]
        bad = ~((xn > la) & (xn < ha))
        xn = np.where(bad, 0.5 * (la + ha), xn)
        tol = 4 * eps * np.maximum(np.abs(xa), sigma)
        done = (np.abs(xn - xa) <= tol) | (ha - la <= tol) | (F == pa)
        x[active] = np.where(F == pa, xa, xn)
        active = active[~done]
        if active.size == 0:
            break
    return x


def _columns(columns, d, owner, name="columns"):
    accepts = f"a column index or a sequence of distinct column indices in [0, {d})"
    if isinstance(columns, numbers.Integral) and not isinstance(columns, bool):
        cols = [int(columns)]
    else:
        try:
            cols = list(columns)
        except TypeError:
            raise param_error(name, owner, accepts, columns, kind="type") from None
        if not all(isinstance(c, numbers.Integral) and not isinstance(c, bool) for c in cols):
            raise param_error(name, owner, accepts, columns, kind="type")
        cols = [int(c) for c in cols]
    if not cols or len(set(cols)) != len(cols) or not all(0 <= c < d for c in cols):
        raise param_error(name, owner, accepts, columns)
    return cols


def _gaussian_only(kde, owner):
    _fitted(kde, owner)
    if _family(kde.kernel_) != "gaussian":
        raise param_error("kde", owner, "a KernelDensity with the Gaussian kernel (the only radial kernel that "
                          "is a product over coordinates, so that its marginals and conditionals are again "
                          "Gaussian KDEs)", kde, shown=f"kernel {kde.kernel_!r}")


def _like(kde, X, w):
    """A KernelDensity with kde's kernel, bandwidth and engine options, fitted on X with weights w."""
    opts = dict(memory=kde.memory, threads=kde.threads, backend=kde.backend, progress=kde.progress)
    if isinstance(kde.kernel, str):
        new = KernelDensity(kernel="gaussian", bandwidth=float(kde._scale) * float(kde.kernel_.bandwidth), **opts)
    else:
        new = KernelDensity(kernel=Gaussian(float(kde.kernel_.bandwidth) * float(kde._scale)), **opts)
    return new.fit(X, sample_weight=w)


def kde_marginal(kde, columns):
    r"""The marginal density of some columns of a Gaussian KernelDensity, as a new fitted KernelDensity.

    The Gaussian kernel is a product over coordinates, so integrating the
    estimate over the other columns leaves exactly the KDE of the data's
    columns S with the same weights and bandwidth:
    :math:`p_S(y) = \sum_i w_i\, N(y; x_{i,S}, \sigma^2 I) / \sum_i w_i`.
    That is the Gaussian kernel only: the marginal of another radial kernel
    (Laplace, Matern, Cauchy...) on fewer columns is not that kernel, and is
    refused.

    Parameters
    ----------
    kde : KernelDensity
        Fitted, with the Gaussian kernel (by name or as a Gaussian object).
    columns : int or sequence of int
        The columns kept, distinct, in [0, d), in the order wanted.

    Returns
    -------
    KernelDensity
        Fitted on ``X[:, columns]`` with the same weights, bandwidth and
        engine options.
    """
    owner = "kde_marginal"
    _gaussian_only(kde, owner)
    cols = _columns(columns, kde.n_features_in_, owner)
    return _like(kde, np.ascontiguousarray(kde._X[:, cols]), kde._w)


def kde_conditional(kde, given_columns, given_values):
    r"""The conditional density p(y | x_G = given_values) of a Gaussian KernelDensity, as a fitted KernelDensity.

    .. math::

        p(y \mid x_G) = \frac{\sum_i v_i\, N(y; x_{i,R}, \sigma^2 I)}{\sum_i v_i},
        \qquad \log v_i = \log w_i + \log k_\sigma(x_{i,G}, x_G),

    a KDE on the remaining columns R (in their original order) with weights
    v, which integrates to 1 over y. The log weights are computed in the log
    domain (the kernel's ``log_block``) and exponentiated after subtracting
    their largest value, so a conditioning point far from every data point
    (where every :math:`k_\sigma` underflows) still gives the exact
    conditional, dominated by the nearest points.

    Parameters
    ----------
    kde : KernelDensity
        Fitted, with the Gaussian kernel, on d >= 2 columns.
    given_columns : int or sequence of int
        The conditioning columns G, distinct, in [0, d), fewer than d.
    given_values : float or array of shape (len(G),)
        The values :math:`x_G` (data units), in the order of ``given_columns``.

    Returns
    -------
    KernelDensity
        Fitted on the remaining columns with weights v / max v; its
        ``score_samples(Y)`` is log p(y | x_G) for Y of shape (m, d - len(G)).
    """
    owner = "kde_conditional"
    _gaussian_only(kde, owner)
    d = kde.n_features_in_
    cols = _columns(given_columns, d, owner, "given_columns")
    if len(cols) >= d:
        raise param_error("given_columns", owner, f"fewer than {d} columns (some must remain)", given_columns)
    vals = np.atleast_1d(_query(given_values, owner, "given_values"))
    if vals.shape != (len(cols),):
        raise param_error("given_values", owner, f"{len(cols)} value(s), one per given column", given_values,
                          shown=f"shape {vals.shape}")
    vals = check_points(vals[None], "given_values", owner, dtype=np.float64)
    rest = [c for c in range(d) if c not in cols]
    h = float(kde._scale)
    Xg = kde._X[:, cols].astype(np.float64) / h
    log_k = kde.kernel_.log_block(np.ascontiguousarray(Xg), vals / h)[:, 0].astype(np.float64)
    lv = kde._log_w + log_k
    v = np.exp(lv - np.max(lv))
    return _like(kde, np.ascontiguousarray(kde._X[:, rest]), v)
