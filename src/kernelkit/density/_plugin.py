r"""Multivariate plug-in bandwidth matrices for the Gaussian kernel (Wand & Jones 1994, Duong & Hazelton 2003).

The asymptotic mean integrated squared error of a Gaussian KDE with bandwidth
matrix H (the kernel's covariance) is

.. math::

    \mathrm{AMISE}(H) = \frac{(4\pi)^{-d/2}}{n\,|H|^{1/2}}
        + \frac14 \sum_{i,j,k,l} H_{ij} H_{kl}\, \psi_{e_i+e_j+e_k+e_l},
    \qquad \psi_\alpha = \int \partial^\alpha f(x)\, f(x)\,dx ,

and the plug-in selector minimises it with the :math:`\psi` of order 4
estimated from the data:

.. math::

    \hat\psi_\alpha(g) = \sum_{a,b} p_a p_b\, \partial^\alpha \phi_{g^2 I}(z_a - z_b)
                       = \sum_{a,b} p_a p_b\, g^{-d-|\alpha|} (-1)^{|\alpha|}
                         \prod_k He_{\alpha_k}(u_k)\, \phi(u),\quad u = (z_a - z_b)/g,

(p the normalised weights, He the probabilists' Hermite polynomials, the
diagonal a = b kept), on pre-transformed data z: sphered (:math:`S^{-1/2} x`,
for a full H) or scaled per column (for a diagonal H), or by one common scale
(isotropic :math:`H = h^2 I`). The normal reference below is N(0, cov(z)):
the identity after sphering, the correlation matrix after scaling (its
diagonal, the identity, where the correlations are singular). The pilot g is the SAMSE one of Duong &
Hazelton (2003): it minimises the sum over all :math:`d^r` ordered index
tuples of the squared leading biases,
:math:`\sum (n^{-1} g^{-d-r} \partial^\alpha\phi(0) + \frac{g^2}{2}\sum_j \psi_{\alpha+2e_j})^2`,
in closed form: with :math:`A_1 = \sum K_\alpha^2`, :math:`A_2 = \sum K_\alpha P_\alpha`,
:math:`A_3 = \sum P_\alpha^2` (:math:`K_\alpha = \partial^\alpha\phi(0)`,
:math:`P_\alpha = \sum_j \psi_{\alpha+2e_j}`, sums over the ordered tuples),
:math:`t` the positive root of :math:`(2r+2d) A_1 t^2 + (r+d-2) A_2 t - A_3 = 0`
and :math:`g = (t n)^{-1/(r+d+2)}`. Two stages (the default): the
:math:`\psi` of order 8 from a normal reference (the data's covariance after
the transform) give the pilot for order 6; the estimated order-6 :math:`\hat\psi`
give the pilot for order 4; then :math:`\hat\psi_4` and the minimisation
(over :math:`H = L L^\top`, BFGS with the analytic gradient, from the
normal-scale matrix). Back in data coordinates :math:`H = A H_z A^\top` (A the
inverse of the transform). For normal data the AMISE-optimal matrix is the
normal-scale one, :math:`(4/(n(d+2)))^{2/(d+4)}\,\Sigma`; the selector tends to
it as n grows.

Weights: p = w / sum w, and n is Kish's :math:`n_{eff}` in the AMISE and the
pilot formulas.

Cost: two double sums over the n^2 pairs (orders 6 and 4), each
O(n^2 (d r + M_r)) floating point operations with M_r the number of
multi-indices of order r (7 and 5 in 2-D, 28 and 15 in 3-D), in blocks of
rows that fit the memory budget; O(n^2) in time, not in memory: in 2-D about 2 s at
n = 2,000 and 17 s at n = 10^4, in 3-D 3 s at n = 2,000 (measured on a loaded 2-core machine). Gaussian kernel only (the AMISE constants are the
Gaussian's).
"""

from __future__ import annotations

import itertools
import math
from functools import lru_cache

import numpy as np

from .._options import get_options
from .._validation import OneOf, Integral, check_param, check_points, param_error

__all__ = ["bandwidth_plugin", "multi_indices", "psi_hat", "psi_normal", "samse_pilot", "amise_minimiser",
           "normal_scale_matrix"]

_OWNER = "bandwidth_plugin"


@lru_cache(maxsize=None)
def multi_indices(r, d):
    """All alpha in N^d with |alpha| = r (tuples), in lexicographic order."""
    if d == 1:
        return ((r,),)
    return tuple((a,) + rest for a in range(r, -1, -1) for rest in multi_indices(r - a, d - 1))


def _multiplicity(alpha):
    """r! / prod alpha_k!: the number of ordered index tuples with multi-index alpha."""
    out = math.factorial(sum(alpha))
    for a in alpha:
        out //= math.factorial(a)
    return out


def _hermite_at_zero(m):
    """He_m(0): 0 for odd m, (-1)^(m/2) (m-1)!! for even m."""
    if m % 2:
        return 0.0
    return (-1.0) ** (m // 2) * float(np.prod(np.arange(m - 1, 0, -2))) if m else 1.0


def kernel_derivative_at_zero(alpha):
    r""":math:`\partial^\alpha \phi(0)` for the standard normal density in d = len(alpha) dimensions."""
    d = len(alpha)
    v = (2 * math.pi) ** (-d / 2) * (-1.0) ** sum(alpha)
    for a in alpha:
        v *= _hermite_at_zero(a)
    return v


def _hafnian(P, idx):
    """Sum over the perfect matchings of the index list ``idx`` of the products of P over the pairs."""
    idx = tuple(idx)

    @lru_cache(maxsize=None)
    def haf(t):
        if not t:
            return 1.0
        first, rest = t[0], t[1:]
        total = 0.0
        for j in range(len(rest)):
            total += P[first, rest[j]] * haf(rest[:j] + rest[j + 1:])
        return total

    return haf(idx)


def psi_normal(alpha, Sigma):
    r""":math:`\psi_\alpha` of the normal density N(0, Sigma): :math:`\partial^\alpha \phi_{2\Sigma}(0)`.

    With C = 2 Sigma and P = C^{-1}: :math:`\phi_C(0)\,(-1)^{r/2}\,\mathrm{haf}_\alpha(P)`, the hafnian
    (sum over perfect matchings of the r indices of alpha) of P; 0 for odd r. Sigma in data units^2.
    """
    r = sum(alpha)
    if r % 2:
        return 0.0
    C = 2.0 * np.asarray(Sigma, dtype=np.float64)
    d = C.shape[0]
    P = np.linalg.inv(C)
    sign, logdet = np.linalg.slogdet(C)
    phi0 = math.exp(-0.5 * d * math.log(2 * math.pi) - 0.5 * logdet)
    idx = [k for k, a in enumerate(alpha) for _ in range(a)]
    return phi0 * (-1.0) ** (r // 2) * _hafnian(P, idx)


def _hermite_all(U, m):
    """He_0 .. He_m of every entry of U: array of shape (m + 1,) + U.shape."""
    H = np.empty((m + 1,) + U.shape)
    H[0] = 1.0
    if m >= 1:
        H[1] = U
    for k in range(1, m):
        np.multiply(U, H[k], out=H[k + 1])
        H[k + 1] -= k * H[k - 1]
    return H


def psi_hat(Z, p, g, r, memory=None):
    r""":math:`\hat\psi_\alpha(g)` for every multi-index alpha of order r (dict alpha -> float).

    ``Z``: (n, d) data (transformed units), ``p``: (n,) weights summing to 1, ``g`` > 0 the pilot (units
    of Z). The double sum over all n^2 pairs (the diagonal included), in blocks of rows that fit
    ``memory`` (bytes; None: the engine's budget).
    """
    n, d = Z.shape
    if r % 2:
        raise ValueError("psi_hat: even orders only")   # a bug, not user input
    alphas = multi_indices(r, d)
    budget = get_options(memory=memory).memory
    per_row = 8 * n * (d * (r + 2) + 3)
    block = int(max(1, min(n, budget // 4 // max(per_row, 1))))
    acc = {a: 0.0 for a in alphas}
    c = (2 * math.pi) ** (-d / 2) * g ** (-d - r) * (-1.0) ** r
    for s in range(0, n, block):
        e = min(n, s + block)
        # rows s:e against columns s:n; r is even, so the term is even in z_a - z_b: the columns past the
        # block stand for both orders of their pairs (counted twice), the block's own square once
        U = (Z[s:e, None, :] - Z[None, s:, :]) / g                # (b, n - s, d)
        phi = np.exp(-0.5 * np.einsum("bnk,bnk->bn", U, U))       # (b, n - s)
        pc = p[s:].copy()
        pc[e - s:] *= 2.0
        phi *= p[s:e, None]
        phi *= pc[None, :]
        H = _hermite_all(U, r)                                    # (r+1, b, n, d)
        for a in alphas:
            T = phi.copy()
            for k, ak in enumerate(a):
                if ak:
                    T *= H[ak, :, :, k]
            acc[a] += float(T.sum())
    return {a: c * v for a, v in acc.items()}


def _laplacian_sums(psi_next, r, d):
    """P_alpha = sum_j psi_{alpha + 2 e_j} for |alpha| = r, from the psi of order r + 2."""
    out = {}
    for a in multi_indices(r, d):
        out[a] = sum(psi_next[tuple(a[k] + 2 * (k == j) for k in range(d))] for j in range(d))
    return out


def samse_pilot(psi_next, r, d, n):
    r"""The SAMSE pilot g for the :math:`\hat\psi` of order r, from the :math:`\psi` of order r + 2 (dict).

    Closed form of the module docstring, the sums over the d^r ordered tuples (each multi-index counted
    r! / alpha! times). n: the (effective) sample size.
    """
    P = _laplacian_sums(psi_next, r, d)
    A1 = A2 = A3 = 0.0
    for a in multi_indices(r, d):
        m = _multiplicity(a)
        K = kernel_derivative_at_zero(a)
        A1 += m * K * K
        A2 += m * K * P[a]
        A3 += m * P[a] * P[a]
    B1, B2, B3 = (2 * r + 2 * d) * A1, (r + d - 2) * A2, A3
    t = (-B2 + math.sqrt(B2 * B2 + 4 * B1 * B3)) / (2 * B1)
    return (t * n) ** (-1.0 / (r + d + 2))


def _psi4_tensor(psi4, d):
    T = np.empty((d,) * 4)
    for idx in itertools.product(range(d), repeat=4):
        a = [0] * d
        for i in idx:
            a[i] += 1
        T[idx] = psi4[tuple(a)]
    return T


def normal_scale_matrix(Sigma, n):
    r"""The AMISE-optimal H for normal data N(., Sigma), Gaussian kernel: :math:`(4/(n(d+2)))^{2/(d+4)}\Sigma`."""
    Sigma = np.asarray(Sigma, dtype=np.float64)
    d = Sigma.shape[0]
    return (4.0 / (n * (d + 2))) ** (2.0 / (d + 4)) * Sigma


def amise(H, T, n):
    """AMISE(H) of the module docstring, with the order-4 psi as a (d, d, d, d) tensor T; and its gradient
    with respect to H (a symmetric (d, d) array)."""
    d = H.shape[0]
    c = (4 * math.pi) ** (-d / 2) / n
    sign, logdet = np.linalg.slogdet(H)
    if sign <= 0:
        return np.inf, np.zeros_like(H)
    var = c * math.exp(-0.5 * logdet)
    G = np.einsum("ijkl,kl->ij", T, H)
    val = var + 0.25 * float(np.sum(G * H))
    grad = -0.5 * var * np.linalg.inv(H) + 0.5 * G
    return val, 0.5 * (grad + grad.T)


def amise_minimiser(psi4, d, n, kind="full", start=None):
    """argmin over H of AMISE(H) given the order-4 psi (dict multi-index -> value).

    kind "full": H = L L^T, L lower triangular (log of its diagonal and the entries below, BFGS);
    "diagonal": H = diag(exp(2 theta)); "isotropic": H = h^2 I in closed form,
    h = (d c / S)^(1/(d+4)), c = (4 pi)^(-d/2) / n, S = sum_ik psi_{2e_i + 2e_k}.
    ``start``: the first H (default: the normal-scale matrix of the identity).
    """
    from scipy.optimize import minimize
    T = _psi4_tensor(psi4, d)
    c = (4 * math.pi) ** (-d / 2) / n
    if kind == "isotropic":
        S = float(np.einsum("iikk->", T))
        if not S > 0:
            raise param_error("X", _OWNER, "data whose estimated curvature functional is positive", S,
                              shown=f"sum psi_(2e_i+2e_k) = {S:.3g}")
        h2 = (d * c / S) ** (2.0 / (d + 4))
        return h2 * np.eye(d)
    H0 = normal_scale_matrix(np.eye(d), n) if start is None else np.asarray(start, dtype=np.float64)
    rows, cols = np.tril_indices(d)
    diag = rows == cols
    if kind == "diagonal":
        def unpack(theta):
            return np.diag(np.exp(2 * theta))

        def fun(theta):
            H = unpack(theta)
            v, G = amise(H, T, n)
            return v / c, (2 * np.diag(G) * np.diag(H)) / c
        x0 = 0.5 * np.log(np.diag(H0))
    else:
        def unpack(theta):
            L = np.zeros((d, d))
            vals = np.where(diag, np.exp(theta), theta)
            L[rows, cols] = vals
            return L

        def fun(theta):
            L = unpack(theta)
            v, G = amise(L @ L.T, T, n)
            dL = (2 * G @ L)[rows, cols]
            dL = np.where(diag, dL * np.exp(theta), dL)
            return v / c, dL / c
        L0 = np.linalg.cholesky(H0)[rows, cols]
        x0 = np.where(diag, np.log(np.where(diag, L0, 1.0)), L0)
    res = minimize(fun, x0, jac=True, method="BFGS", options=dict(gtol=1e-10, maxiter=2000))
    M = unpack(res.x)
    return M if kind == "diagonal" else M @ M.T


def bandwidth_plugin(X, sample_weight=None, *, kind="full", nstage=2, memory=None):
    r"""Plug-in bandwidth matrix H for a Gaussian KDE (the kernel's covariance, data units^2), shape (d, d).

    Minimises the AMISE with the order-4 density functionals estimated by
    kernel sums at SAMSE pilot bandwidths (see the module
    :mod:`kernelkit.density._plugin` for the formulas): R's ``ks::Hpi``
    (``kind="full"``, pre-sphered data) and ``ks::Hpi.diag``
    (``kind="diagonal"``, pre-scaled data) use the same construction (their
    results need not agree digit for digit: pilot and optimiser details
    differ); ``kind="isotropic"`` gives :math:`h^2 I` on data scaled by one
    common scale (then h = sqrt(H[0, 0]) is an isotropic bandwidth).

    Parameters
    ----------
    X : array of shape (n, d), n >= 3
        Data (data units).
    sample_weight : array of shape (n,), optional
        Non-negative reliability weights; n becomes Kish's n_eff.
    kind : {"full", "diagonal", "isotropic"}, default "full"
    nstage : {1, 2}, default 2
        1: the order-4 pilot from a normal reference; 2: from estimated order-6 functionals.
    memory : int, str or None
        Budget (bytes) for the blocks of the double sums; None: :func:`kernelkit.options`'.

    Returns
    -------
    ndarray of shape (d, d), symmetric positive definite (data units^2).

    Notes
    -----
    Cost: O(n^2 (d r + M_r)) for r = 6 (two stages only) and r = 4, M_r the
    number of multi-indices of order r; memory within the budget. n = 2,000
    in 2-D takes about 2 s, n = 10^4 17 s (loaded 2-core machine).

    Raises
    ------
    InvalidValueError
        For degenerate data (a constant column, collinear columns with
        ``kind="full"``): the error of :func:`kernelkit.density._matrix.bandwidth_matrix_shape`.
    """
    from ._kde import _weights
    from ._matrix import bandwidth_matrix_shape
    kind = check_param(kind, "kind", _OWNER, OneOf("full", "diagonal", "isotropic"))
    nstage = check_param(nstage, "nstage", _OWNER, OneOf(1, 2))
    X = check_points(X, "X", _OWNER, dtype=np.float64, min_rows=3)
    n, d = X.shape
    w = _weights(sample_weight, n, _OWNER)
    p = w / w.sum()
    n_eff = float(1.0 / np.sum(p * p))
    S = bandwidth_matrix_shape("full" if kind == "full" else "diagonal", X, w, _OWNER)
    if kind == "full":
        vals, vecs = np.linalg.eigh(S)
        A = (vecs * np.sqrt(vals)) @ vecs.T                 # S^(1/2), symmetric
        Ainv = (vecs / np.sqrt(vals)) @ vecs.T
    elif kind == "diagonal":
        A = np.diag(np.sqrt(np.diag(S)))
        Ainv = np.diag(1.0 / np.sqrt(np.diag(S)))
    else:
        s = math.sqrt(float(np.mean(np.diag(S))))
        A, Ainv = s * np.eye(d), np.eye(d) / s
    mu = p @ X
    Z = (X - mu) @ Ainv.T
    # the normal reference: the covariance of Z (I for "full", the correlations for "diagonal"); when that is
    # singular (collinear columns, allowed with a diagonal H) its diagonal, I
    from ._matrix import _weighted_covariance
    Sz = Ainv @ _weighted_covariance(X, w) @ Ainv.T
    Sz = 0.5 * (Sz + Sz.T)
    ev = np.linalg.eigvalsh(Sz)
    if not ev[0] > 1e-10 * ev[-1]:
        Sz = np.diag(np.diag(Sz))
    if nstage == 2:
        psi8 = {a: psi_normal(a, Sz) for a in multi_indices(8, d)}
        g6 = samse_pilot(psi8, 6, d, n_eff)
        psi6 = psi_hat(Z, p, g6, 6, memory)
    else:
        psi6 = {a: psi_normal(a, Sz) for a in multi_indices(6, d)}
    g4 = samse_pilot(psi6, 4, d, n_eff)
    psi4 = psi_hat(Z, p, g4, 4, memory)
    Hz = amise_minimiser(psi4, d, n_eff, kind, start=normal_scale_matrix(Sz if kind != "isotropic" else np.eye(d),
                                                                          n_eff))
    H = A @ Hz @ A.T
    return 0.5 * (H + H.T)
