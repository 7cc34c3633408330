r"""The Langevin Stein kernel of a radial base kernel, with its sums computed by the engine.

For a radial base kernel :math:`k(x, y) = \phi(\|x - y\|^2)` and the score
:math:`s = \nabla \log p` of a model p on R^d, the Langevin Stein kernel is

.. math::

    k_p(x, y) = s(x)\cdot s(y)\, k(x, y) + s(x)\cdot\nabla_y k(x, y) + s(y)\cdot\nabla_x k(x, y)
                + \operatorname{tr}(\nabla_x \nabla_y k(x, y)).

With :math:`r^2 = \|x - y\|^2`, :math:`\nabla_x k = 2\phi'(r^2)(x - y) = -\nabla_y k` and
:math:`\operatorname{tr}\nabla_x\nabla_y k = -2d\,\phi'(r^2) - 4 r^2 \phi''(r^2)`, so

.. math::

    k_p(x, y) = \phi\, s(x)\cdot s(y) + 2\phi'\,(s(y) - s(x))\cdot(x - y) - 2d\,\phi' - 4 r^2 \phi''.

Every family used here has derivatives that are again radial kernels times constants:
:math:`\phi = \sum_t a_t k_t`, :math:`\phi' = \sum_t b_t k_t`, :math:`\phi'' = \sum_t c_t k_t`
(Gaussian: one kernel; IMQ / rational quadratic: three IMQs of exponents beta, beta + 1, beta + 2;
Matern 5/2: a Matern 5/2, a Matern 3/2 and a Laplace kernel). Expanding the inner products, a
Stein kernel sum :math:`\sum_i k_p(x_i, y_j) w_i` is a combination of plain kernel sums of each
:math:`k_t` with the weight columns :math:`s_i w_i` (d columns), :math:`x_i w_i` (d),
:math:`w_i`, :math:`(s_i\cdot x_i) w_i` and :math:`\|x_i\|^2 w_i`:

.. math::

    \sum_i k_p(x_i, y_j) w_i = \sum_t \big[(a_t t_j + 2 b_t y_j)\cdot A_t + (2 b_t t_j + 8 c_t y_j)\cdot B_t
        - (2 b_t\, t_j\cdot y_j + 2 d\, b_t + 4 c_t \|y_j\|^2) C_t - 2 b_t D_t - 4 c_t E_t\big]

with :math:`t_j = s(y_j)`, :math:`A_t = \sum_i k_t(x_i, y_j) s_i w_i`,
:math:`B_t = \sum_i k_t(x_i, y_j) x_i w_i`, :math:`C_t = \sum_i k_t(x_i, y_j) w_i`,
:math:`D_t = \sum_i k_t(x_i, y_j) (s_i\cdot x_i) w_i`, :math:`E_t = \sum_i k_t(x_i, y_j)\|x_i\|^2 w_i`.
These are one engine call (:func:`kernelkit.kernel_sum`) per base kernel :math:`k_t`, tiled within
the memory budget. The points are first centred at the mean of the sources (k_p depends on
x - y and on the score values only), which keeps the cancellations in the expansion small.
"""

from __future__ import annotations

import math

import numpy as np

from .._validation import OneOf, check_param, check_points, check_weights, param_error
from ..exceptions import InvalidValueError, NotSupportedError

__all__ = ["SteinKernel"]

#: bytes of temporaries per (source, query) pair in the dense-block path (about 8 float64 arrays)
_BYTES_PER_PAIR = 64
#: largest number of (source, query) pairs of one dense block (1 MB a float64 temporary, so a strip's
#: temporaries stay in the L2 cache: 5x faster than 8 MB strips for 21 IMQ bandwidths at n = 1,000, d = 50)
_MAX_BLOCK_PAIRS = 2 ** 17
#: the sum switches from the kernel-sum expansion to dense blocks above this many weight columns
_EXPAND_MAX_COLUMNS = 4


# --------------------------------------------------------------------------- profile derivatives
def radial_terms(kernel):
    """``[(k_t, a_t, b_t, c_t)]`` with phi = sum a_t k_t, phi' = sum b_t k_t, phi'' = sum c_t k_t.

    phi is the profile of ``kernel`` as a function of the squared distance r^2; every k_t is a
    radial kernelkit kernel with k_t(x, x) = 1. Raises NotSupportedError for other kernels.
    """
    from ..kernels import IMQ, Gaussian, Laplace, Matern, RationalQuadratic, ScaledKernel, SumKernel

    if isinstance(kernel, ScaledKernel):
        return [(k, kernel.scale * a, kernel.scale * b, kernel.scale * c) for k, a, b, c in radial_terms(kernel.base)]
    if isinstance(kernel, SumKernel):
        return [t for k in kernel.kernels for t in radial_terms(k)]
    if type(kernel) is Gaussian:  # phi = exp(-g r2), g = 1 / (2 sigma^2)
        g = 0.5 / kernel.bandwidth ** 2
        return [(kernel, 1.0, -g, g * g)]
    if isinstance(kernel, RationalQuadratic):  # IMQ and RQ: phi = (1 + r2 / c2)^(-e)
        c2, e = kernel._c2, kernel._exponent
        c = math.sqrt(c2)
        return [(kernel, 1.0, 0.0, 0.0), (IMQ(c, e + 1.0), 0.0, -e / c2, 0.0),
                (IMQ(c, e + 2.0), 0.0, 0.0, e * (e + 1.0) / (c2 * c2))]
    if isinstance(kernel, Matern) and not isinstance(kernel, Laplace) and kernel.nu == 2.5:
        ell = kernel.bandwidth  # lambda = sqrt(5) / ell
        return [(kernel, 1.0, 0.0, 0.0), (Matern(1.5, ell * math.sqrt(3.0 / 5.0)), 0.0, -5.0 / (6.0 * ell ** 2), 0.0),
                (Laplace(ell / math.sqrt(5.0)), 0.0, 0.0, 25.0 / (12.0 * ell ** 4))]
    raise NotSupportedError(
        f"SteinKernel needs a base kernel whose profile is twice differentiable in r^2 with known derivatives: "
        f"Gaussian, IMQ, RationalQuadratic, Matern(nu=2.5), their positive scalings and sums. Got {kernel!r}.")


def _power_profile(kernel):
    """(c2, e) when phi = (1 + r2 / c2)^(-e) (IMQ, RationalQuadratic, unscaled), else None."""
    from ..kernels import RationalQuadratic

    if isinstance(kernel, RationalQuadratic) and kernel._distance_param() == {}:
        return float(kernel._c2), float(kernel._exponent)
    return None


def _power_profiles(r2, c2, e):
    r"""phi, phi', phi'' of phi = (1 + r2/c2)^(-e) from one power: with t = 1 / (1 + r2/c2),
    :math:`\phi = t^e`, :math:`\phi' = -(e / c_2) \phi t`, :math:`\phi'' = e (e + 1) / c_2^2 \phi t^2`
    (the same values as the three profiles of :func:`radial_terms`, to a few ulps, in a fraction of
    their time: one square root for e = 1/2 instead of three log1p / exp pairs)."""
    with np.errstate(over="ignore"):
        t = 1.0 + r2 / c2
    np.reciprocal(t, out=t)                      # 1 / inf = 0: phi and its derivatives vanish far away
    phi = np.sqrt(t) if e == 0.5 else (t.copy() if e == 1.0 else np.power(t, e))
    dphi = phi * t
    ddphi = dphi * t
    ddphi *= e * (e + 1.0) / (c2 * c2)
    dphi *= -e / c2
    return phi, dphi, ddphi


def _resolve_base(kernel, bandwidth, owner):
    from ..kernels import Kernel, make_kernel

    if isinstance(kernel, SteinKernel):
        kernel = kernel.base_kernel
    if not isinstance(kernel, (Kernel, str)):
        raise param_error("kernel", owner, "a Kernel object or a kernel name ('imq', 'gaussian', 'matern52', 'rq')",
                          kernel, kind="type")
    k = make_kernel(kernel, bandwidth=bandwidth)
    radial_terms(k)  # raises for kernels without usable derivatives
    return k


def evaluate_score(score, X, owner, name="score"):
    """``score(X)`` (or the precomputed array) validated: float64 of shape (n, d), finite."""
    n, d = X.shape
    if callable(score):
        try:
            S = score(X.copy())
        except (TypeError, ValueError) as exc:
            raise param_error(name, owner, "a callable mapping an (n, d) array of points to their scores "
                              "grad log p, an (n, d) array", score, kind="type", shown=type(score).__name__,
                              hint=f"Calling it on an array of shape {X.shape} raised {type(exc).__name__}: {exc}") \
                from exc
        what = f"returned by the {name!r} callable"
    elif score is None:
        raise param_error(name, owner, "a callable x -> grad log p(x) or an (n, d) array of scores", None, kind="type")
    else:
        S = score
        what = f"passed as {name!r}"
    try:
        S = np.asarray(S, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise param_error(name, owner, "numeric scores", S, kind="type", hint=f"The scores {what} are not numeric.") \
            from exc
    if S.ndim == 1 and d == 1 and S.shape[0] == n:
        S = S[:, None]
    if S.shape != (n, d):
        raise param_error(name, owner, f"scores of shape ({n}, {d}), one gradient of log p per point", S,
                          shown=f"scores of shape {S.shape} ({what})")
    bad = ~np.isfinite(S)
    if bad.any():
        i, j = np.argwhere(bad)[0]
        raise param_error(name, owner, "finite scores", S, shown=f"{S[i, j]} at point {i}, coordinate {j} ({what})",
                          hint="The score grad log p must be finite at every point of the sample.")
    return np.ascontiguousarray(S)


# --------------------------------------------------------------------------- the kernel
class SteinKernel:
    r"""Langevin Stein kernel :math:`k_p` of a radial base kernel and a model's score.

    .. math::

        k_p(x, y) = \phi\, s(x)\cdot s(y) + 2\phi'\,(s(y) - s(x))\cdot(x - y) - 2d\,\phi' - 4 r^2 \phi''

    where :math:`k(x, y) = \phi(r^2)`, :math:`r^2 = \|x - y\|^2` and :math:`s = \nabla\log p`; it
    has mean zero under p: :math:`E_{x\sim p}[k_p(x, y)] = 0` for every y (under the usual
    integrability conditions). Sums over many points run through the engine as plain kernel sums
    of phi, phi' and phi'' (see :mod:`kernelkit.stats._stein`), never a matrix beyond the budget.

    Parameters
    ----------
    base_kernel : Kernel or str
        The radial base kernel k: ``"imq"`` (default, :math:`(1 + r^2/c^2)^{-1/2}`, c = 1 unless
        ``bandwidth`` is given: the usual :math:`(c^2 + r^2)^{\beta}` with c = 1, beta = -1/2),
        ``"gaussian"`` (:math:`\exp(-r^2 / (2\sigma^2))`), ``"rq"``, ``"matern52"``, or a kernelkit
        Gaussian / IMQ / RationalQuadratic / Matern(nu=2.5) object, positive scalings and sums of them.
    score : callable or None
        ``score(X) -> grad log p(X)``: maps an (n, d) array of points to an (n, d) array (units:
        1 / data units). None: scores are passed to each method (``scores=``).
    bandwidth : float, optional
        Bandwidth of a base kernel given by name (units of the data; default 1.0). Not allowed
        with a Kernel object (it carries its own).

    Examples
    --------
    >>> import numpy as np
    >>> from kernelkit.stats import SteinKernel
    >>> X = np.random.default_rng(0).standard_normal((200, 2))
    >>> kp = SteinKernel("imq", score=lambda x: -x)      # standard normal model
    >>> v = kp.sum(X)                                    # sum_i k_p(x_i, x_j), shape (200,)
    >>> K = kp(X[:5], X[:7])                             # dense block, shape (5, 7)
    """

    def __init__(self, base_kernel="imq", score=None, *, bandwidth=None):
        if bandwidth is None and isinstance(base_kernel, str):
            bandwidth = 1.0
        self.base_kernel = _resolve_base(base_kernel, bandwidth, "SteinKernel")
        if score is not None and not callable(score):
            raise param_error("score", "SteinKernel", "a callable x -> grad log p(x) or None (then pass "
                              "precomputed scores to each method with scores=)", score, kind="type")
        self.score = score
        self._terms = radial_terms(self.base_kernel)
        self._power = _power_profile(self.base_kernel)

    def __repr__(self):
        return f"SteinKernel({self.base_kernel!r}, score={getattr(self.score, '__name__', self.score)!r})"

    # ------------------------------------------------------------------ helpers
    def _scores(self, X, scores, name, owner):
        return evaluate_score(self.score if scores is None else scores, X, owner, name if scores is not None
                              else "score")

    def _phi0(self):
        """(phi(0), phi'(0))."""
        return sum(a for _, a, _, _ in self._terms), sum(b for _, _, b, _ in self._terms)

    # ------------------------------------------------------------------ dense
    def __call__(self, X, Y=None, *, scores=None, scores_Y=None, memory=None):
        """Dense Stein kernel matrix ``K[i, j] = k_p(X[i], Y[j])``, shape (n, m), for small blocks.

        Parameters
        ----------
        X : array of shape (n, d)
        Y : array of shape (m, d), optional
            Default X.
        scores, scores_Y : arrays of shape (n, d) and (m, d), optional
            Precomputed scores at X and Y (default: ``score(X)``, ``score(Y)``; ``scores_Y``
            defaults to ``scores`` when Y is None).
        memory : int or str, optional
            Memory budget (bytes or "256MB"); raises ValueError when the block and its
            temporaries (about 64 bytes a pair) do not fit.

        Returns
        -------
        K : float64 array of shape (n, m)
        """
        from .._options import get_options

        X = check_points(X, "X", "SteinKernel")
        same = Y is None
        Y = X if same else check_points(Y, "Y", "SteinKernel")
        if Y.shape[1] != X.shape[1]:
            raise param_error("Y", "SteinKernel", f"an array with as many features as 'X' ({X.shape[1]})", Y,
                              shown=f"shape {Y.shape}")
        S = self._scores(X, scores, "scores", "SteinKernel")
        T = S if same and scores_Y is None else self._scores(Y, scores_Y, "scores_Y", "SteinKernel")
        budget = get_options(memory=memory).memory
        need = _BYTES_PER_PAIR * X.shape[0] * Y.shape[0]
        if need > budget:
            raise InvalidValueError(
                f"SteinKernel block of shape ({X.shape[0]}, {Y.shape[0]}) needs about {need / 1e6:.1f} MB, more "
                f"than the memory budget of {budget / 1e6:.1f} MB; use SteinKernel.sum (which tiles) or raise "
                "the budget with kernelkit.options(memory=...).")
        mu = X.astype(np.float64).mean(axis=0)
        return self._block(X.astype(np.float64) - mu, S, Y.astype(np.float64) - mu, T)

    def _block(self, Xc, S, Yc, T):
        """k_p on centred float64 points with their scores (no validation)."""
        return self._from_pieces(stein_pieces(Xc, S, Yc, T), Xc.shape[1])

    def _from_pieces(self, pieces, d):
        """k_p = phi S.T + 2 phi' G - 2 d phi' - 4 r^2 phi'' from :func:`stein_pieces` (kernel-free parts)."""
        r2, SST, G = pieces
        if self._power is not None:
            phi, dphi, ddphi = _power_profiles(r2, *self._power)
        else:
            acc = [None, None, None]  # phi, phi', phi''
            for k, *coefs in self._terms:
                v = k.profile(r2)
                for slot, coef in enumerate(coefs):
                    if coef:
                        if acc[slot] is None:
                            acc[slot] = coef * v
                        else:
                            acc[slot] += coef * v
            phi, dphi, ddphi = acc
        K = phi * SST
        if dphi is not None:
            K += 2.0 * dphi * (G - d)
        if ddphi is not None:
            K -= 4.0 * r2 * ddphi
        return K

    def diag(self, X, *, scores=None):
        r"""The diagonal :math:`k_p(x_i, x_i) = \phi(0) |s(x_i)|^2 - 2 d \phi'(0)` for every row.

        Parameters
        ----------
        X : array of shape (n, d)
        scores : array of shape (n, d), optional
            Precomputed scores at X (default: the ``score`` callable).

        Returns
        -------
        float64 array of shape (n,)
        """
        X = check_points(X, "X", "SteinKernel.diag")
        S = self._scores(X, scores, "scores", "SteinKernel.diag")
        p0, dp0 = self._phi0()
        return p0 * np.einsum("ij,ij->i", S, S) - 2.0 * X.shape[1] * dp0

    # ------------------------------------------------------------------ sums
    def sum(self, X, W=None, Y=None, *, scores=None, scores_Y=None, method="auto", exclude_diagonal=False,
            memory=None, threads=None, backend=None):
        r"""Stein kernel sums :math:`out_{j,:} = \sum_i k_p(x_i, y_j) W_{i,:}`.

        Parameters
        ----------
        X : array of shape (n, d)
            Sources x_i.
        W : array of shape (n,) or (n, p), optional
            Weights (any sign, dimensionless). Default: ones.
        Y : array of shape (m, d), optional
            Queries y_j. Default: X.
        scores, scores_Y : arrays of shape (n, d) and (m, d), optional
            Precomputed scores (default: the ``score`` callable; ``scores_Y`` defaults to
            ``scores`` when Y is None).
        method : {"auto", "expand", "blocks"}
            ``"expand"``: one :func:`kernelkit.kernel_sum` per base term with (2d + 3) p weight
            columns (the engine's fused tiles; cheapest for few columns); ``"blocks"``: dense
            Stein blocks of rows of X within the memory budget, each multiplied by its rows of W
            (cheapest for many columns, such as bootstrap draws; computed in float64); ``"auto"``:
            ``"expand"`` up to 4 columns when it is accurate, else ``"blocks"``. The expansion
            forms :math:`r^2 = |x|^2 + |y|^2 - 2 x\cdot y` and the inner products from terms of size
            :math:`R^2` (R the largest distance of a point from the mean of X), so it loses about
            :math:`\epsilon R^2 / \ell^2` relative to the diagonal :math:`k_p(x, x)`, with eps the
            working precision (float64: both paths compute in float64, whatever the input dtype)
            and :math:`\ell` the kernel's length scale: ``"auto"`` uses it only while that is below
            1e-8 (a bandwidth above about :math:`10^{-4} R`).
        exclude_diagonal : bool
            With Y None (queries = sources): leave out the terms i = j, giving
            :math:`\sum_{i \ne j}` exactly (the U-statistics' sums; the diagonal is :meth:`diag`).
        memory, threads, backend : optional
            Engine options for this call (:func:`kernelkit.options`).

        Returns
        -------
        out : float64 array of shape (m,) or (m, p)
            (float32 inputs are converted to float64: the expansion needs the precision.)
        """
        owner = "SteinKernel.sum"
        X = check_points(X, "X", owner)
        same = Y is None
        Y = X if same else check_points(Y, "Y", owner)
        if Y.shape[1] != X.shape[1]:
            raise param_error("Y", owner, f"an array with as many features as 'X' ({X.shape[1]})", Y,
                              shown=f"shape {Y.shape}")
        method = check_param(method, "method", owner, OneOf("auto", "expand", "blocks"))
        Wv = check_weights(W, X.shape[0], "W", owner)
        squeeze = Wv is None or Wv.ndim == 1
        Wv = np.ones((X.shape[0], 1)) if Wv is None else Wv.reshape(X.shape[0], -1)
        S = self._scores(X, scores, "scores", owner)
        T = S if same and scores_Y is None else self._scores(Y, scores_Y, "scores_Y", owner)
        exclude_diagonal = check_param(exclude_diagonal, "exclude_diagonal", owner, OneOf(False, True))
        if exclude_diagonal and not same:
            raise param_error("exclude_diagonal", owner, "False when Y is given (the diagonal i = j needs Y = X)",
                              exclude_diagonal)
        if method == "auto":
            method = "expand" if Wv.shape[1] <= _EXPAND_MAX_COLUMNS and self._expansion_accurate(X, Y) else "blocks"
        if method == "expand":
            out = self._sum_expand(X, S, Wv, Y, T, memory, threads, backend)
            if exclude_diagonal:
                out -= self.diag(X, scores=S)[:, None] * Wv
        else:
            out = self._sum_blocks(X, S, Wv, Y, T, memory, exclude_diagonal)
        return out[:, 0] if squeeze else out

    def _expansion_accurate(self, X, Y):
        """True when eps * R^2 * (inverse squared length of the kernel) <= 1e-8 (see :meth:`sum`)."""
        eps = float(np.finfo(np.float64).eps)
        mu = X.astype(np.float64).mean(axis=0)
        R2 = max(float(np.max(np.sum((X - mu) ** 2, axis=1))), float(np.max(np.sum((Y - mu) ** 2, axis=1))))
        p0 = max(abs(a) for _, a, _, _ in self._terms) or 1.0
        inv_len2 = max(max(abs(b), math.sqrt(abs(c))) for _, _, b, c in self._terms) / p0
        return eps * R2 * inv_len2 <= 1e-8

    def _sum_expand(self, X, S, W, Y, T, memory, threads, backend):
        from ..engine import kernel_sum

        n, d = X.shape
        p = W.shape[1]
        mu = X.astype(np.float64).mean(axis=0)  # float64 throughout: the expansion cancels terms
        Xc = X.astype(np.float64) - mu
        Yc = Y.astype(np.float64) - mu
        need_a = any(a or b for _, a, b, _ in self._terms)
        need_bc = any(b or c for _, _, b, c in self._terms)
        # weight blocks: A (d p), B (d p), C (p), D (p), E (p)
        cols = []
        if need_a:
            cols.append((S[:, :, None] * W[:, None, :]).reshape(n, d * p))
        if need_bc:
            cols.append((Xc[:, :, None] * W[:, None, :]).reshape(n, d * p))
            cols.append(W)
            cols.append(np.einsum("ij,ij->i", S, Xc)[:, None] * W)
            cols.append(np.einsum("ij,ij->i", Xc, Xc)[:, None] * W)
        V = np.concatenate(cols, axis=1)
        ty = np.einsum("ij,ij->i", T, Yc)[:, None]
        yy = np.einsum("ij,ij->i", Yc, Yc)[:, None]
        out = np.zeros((Y.shape[0], p))
        for k, a, b, c in self._terms:
            # only the columns this term uses
            sel, off = [], 0
            ia = ib = None
            if need_a:
                if a or b:
                    ia = len(sel)
                    sel.append(np.arange(off, off + d * p))
                off += d * p
            if need_bc:
                if b or c:
                    ib = len(sel)
                    sel.append(np.arange(off, off + d * p + 3 * p))
                off += d * p + 3 * p
            idx = np.concatenate(sel)
            R = np.asarray(kernel_sum(k, Xc, Yc, V[:, idx], memory=memory, threads=threads, backend=backend),
                           dtype=np.float64).reshape(Y.shape[0], -1)
            pos = 0
            if ia is not None:
                A = R[:, pos:pos + d * p].reshape(-1, d, p)
                pos += d * p
                coef = a * T + 2.0 * b * Yc  # (m, d)
                out += np.einsum("jd,jdp->jp", coef, A)
            if ib is not None:
                B = R[:, pos:pos + d * p].reshape(-1, d, p)
                pos += d * p
                C = R[:, pos:pos + p]
                D = R[:, pos + p:pos + 2 * p]
                E = R[:, pos + 2 * p:pos + 3 * p]
                coef = 2.0 * b * T + 8.0 * c * Yc
                out += np.einsum("jd,jdp->jp", coef, B)
                out -= (2.0 * b * ty + 2.0 * d * b + 4.0 * c * yy) * C
                out -= 2.0 * b * D + 4.0 * c * E
        return out

    def _sum_blocks(self, X, S, W, Y, T, memory, exclude_diagonal=False):
        from .._options import get_options

        n, m = X.shape[0], Y.shape[0]
        budget = get_options(memory=memory).memory
        rows = int(max(1, min(n, budget // (_BYTES_PER_PAIR * max(m, 1)), _MAX_BLOCK_PAIRS // max(m, 1))))
        mu = X.astype(np.float64).mean(axis=0)
        Xc = X.astype(np.float64) - mu
        Yc = Y.astype(np.float64) - mu
        out = np.zeros((m, W.shape[1]))
        for lo in range(0, n, rows):
            hi = min(n, lo + rows)
            K = self._block(Xc[lo:hi], S[lo:hi], Yc, T)
            if exclude_diagonal:
                K[np.arange(hi - lo), np.arange(lo, hi)] = 0.0
            out += K.T @ W[lo:hi]
        return out


def stein_pieces(Xc, S, Yc, T):
    """The kernel-free parts of k_p between centred float64 points: (r^2, s_i.t_j, (t_j - s_i).(x_i - y_j))."""
    from ..kernels import sqdist

    r2 = np.maximum(sqdist(Xc, Yc), 0.0)
    # (s_y - s_x).(x - y) = t_j.x_i - t_j.y_j - s_i.x_i + s_i.y_j
    G = Xc @ T.T
    G += S @ Yc.T
    G -= np.einsum("ij,ij->i", T, Yc)[None, :]
    G -= np.einsum("ij,ij->i", S, Xc)[:, None]
    return r2, S @ T.T, G
