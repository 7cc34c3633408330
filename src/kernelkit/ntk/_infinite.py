r"""Infinite-width NNGP and NTK kernels of fully connected networks.

The network is neural-tangents' ``stax.serial([Dense(W_std, b_std), phi] * depth
+ [Dense(1, W_std, b_std)])``: ``depth`` hidden layers, each a dense layer
followed by the activation phi, then a dense readout. Its kernels at infinite
width are computed by a recursion on the covariance of each layer's
pre-activations; see :class:`NNGP` for the formulas and the conventions.
"""

from __future__ import annotations

import concurrent.futures
import types

import numpy as np

from .._options import get_options
from .._validation import Integral, OneOf, Real, check_param, param_error
from ..kernels import Kernel
from ._activations import DEFAULT_NODES, make_activation

__all__ = ["NNGP", "NTK"]

#: pairs whose input correlation is within this of +-1 get their angle from the Kahan formula
_NEAR_PARALLEL = 1e-3
#: a dense layer's output correlation is formed directly from the values where |rho| < 1 - this
_DIRECT_CORRELATION = 0.1
#: pair values per working chunk (each of the ~20 temporaries of a chunk is 8 times this in bytes: 96 KB,
#: below the allocator's mmap threshold, and the chunk's working set fits the L2 cache)
_CHUNK_PAIRS = 12288
#: blocks with at least this many pairs are shared among the engine's threads
_THREADED_PAIRS = 1 << 18
#: products formed directly below this (above it sqrt(a) sqrt(b) replaces sqrt(a b))
_PROD_HI, _PROD_LO = 1e300, 1e-300
def _correlation(k12, k11, k22, sk1, sk2):
    """(1 - rho, 1 + rho) with rho = k12 / sqrt(k11 k22) clipped to [-1, 1] (rho = 0 where k11 k22 = 0).

    sqrt(k11 * k22) is formed as such (after scaling both by one power of two when the product
    could overflow), so that rho = 1 exactly for identical points; where the scaled product
    underflows, sqrt(k11) sqrt(k22) = sk1 * sk2 replaces it.
    """
    m = max(float(np.max(k11, initial=0)), float(np.max(k22, initial=0)))
    if m * m <= _PROD_HI:
        S = np.sqrt(k11 * k22)
    else:
        e = int(np.frexp(m)[1])
        S = np.ldexp(np.sqrt(np.ldexp(k11, -e) * np.ldexp(k22, -e)), e)
    tiny = (S < _PROD_LO) & (S > 0)
    if tiny.any():  # the product underflowed: sqrt(k11) sqrt(k22)
        S = np.where(tiny, sk1 * sk2, S)
    with np.errstate(divide="ignore", invalid="ignore"):
        rho = k12 / S
    rho[~(S > 0)] = 0.0
    np.clip(rho, -1.0, 1.0, out=rho)
    return 1.0 - rho, 1.0 + rho


class _Layers(types.SimpleNamespace):
    """Per-point (diagonal) quantities of every layer: q[l], theta[l] (pre-activation NNGP / NTK of
    layer l = 1..depth+1), k[l], kd[l] (post-activation NNGP and derivative kernel, l = 1..depth),
    k[0] = q[0] = the input kernel |x|^2 / d."""


class _InfiniteWidth(Kernel):
    """Shared constructor, validation and recursion of NNGP and NTK (see NNGP for the documentation)."""

    family = "infinite_width"
    #: "nngp" or "ntk": what the kernel returns
    _output = None

    def __init__(self, activation="relu", depth=1, *, W_std=1.0, b_std=None, parameterization="ntk",
                 widths=None, activation_params=None):
        owner = type(self).__name__
        act, name, params = make_activation(activation, activation_params, owner)
        self._act = act
        self.activation = name
        self.activation_params = types.MappingProxyType(dict(params))
        self.depth = check_param(depth, "depth", owner, Integral(low=1))
        self.W_std = check_param(W_std, "W_std", owner, Real(low=0, low_open=True))
        self.b_std = check_param(b_std, "b_std", owner, Real(low=0) | None)
        p = parameterization.lower() if isinstance(parameterization, str) else parameterization
        self.parameterization = check_param(p, "parameterization", owner, OneOf("ntk", "standard"))
        self.widths = self._check_widths(widths, owner)

    def _check_widths(self, widths, owner):
        if self.parameterization == "ntk":
            if widths is not None:
                raise param_error("widths", owner, "None with parameterization='ntk' (the NTK parameterization's "
                                                   "kernels do not depend on the widths)", widths)
            return None
        if widths is None:
            raise param_error("widths", owner, f"an int >= 1 or a sequence of {self.depth} ints >= 1 (the hidden "
                                               "layer widths) with parameterization='standard'", None, kind="type")
        if Integral(low=1).type_ok(widths):
            w = check_param(widths, "widths", owner, Integral(low=1))
            return (w,) * self.depth
        try:
            seq = list(widths)
        except TypeError:
            raise param_error("widths", owner, f"an int >= 1 or a sequence of {self.depth} ints >= 1", widths,
                              kind="type") from None
        if len(seq) != self.depth:
            raise param_error("widths", owner, f"a sequence of depth = {self.depth} ints >= 1 (one per hidden "
                                               "layer)", widths, shown=f"{len(seq)} widths")
        return tuple(check_param(v, "widths", owner, Integral(low=1)) for v in seq)

    # --- kernel plumbing ---------------------------------------------------
    def _params(self):
        return {"activation": self.activation, "depth": self.depth, "W_std": self.W_std, "b_std": self.b_std,
                "parameterization": self.parameterization, "widths": self.widths,
                "activation_params": tuple(sorted(self.activation_params.items()))}

    def __repr__(self):
        act = self.activation if isinstance(self.activation, str) else getattr(self.activation, "__name__",
                                                                               repr(self.activation))
        parts = [f"activation={act!r}", f"depth={self.depth}", f"W_std={self.W_std!r}", f"b_std={self.b_std!r}"]
        if self.parameterization != "ntk":
            parts += [f"parameterization={self.parameterization!r}", f"widths={self.widths!r}"]
        shown = {k: v for k, v in self.activation_params.items()
                 if not (k == "nodes" and v == DEFAULT_NODES) and not (k == "derivative" and v is None)}
        if shown:
            parts.append(f"activation_params={shown!r}")
        return f"{type(self).__name__}({', '.join(parts)})"

    def _arch(self):
        return dict(activation=self.activation, depth=self.depth, W_std=self.W_std, b_std=self.b_std,
                    parameterization=self.parameterization, widths=self.widths,
                    activation_params=dict(self.activation_params))

    def as_nngp(self):
        """The NNGP kernel of the same architecture (an :class:`NNGP`)."""
        return self if isinstance(self, NNGP) else NNGP(**self._arch())

    def as_ntk(self):
        """The NTK of the same architecture (an :class:`NTK`)."""
        return self if isinstance(self, NTK) else NTK(**self._arch())

    def _block(self, X, Y):
        out = self._evaluate(X, Y, (self._output,))[self._output]
        return out.astype(X.dtype, copy=False)

    def _diag(self, X):
        lay = self._points(X.astype(np.float64, copy=False), self._output == "ntk")
        last = self.depth + 1
        out = lay.theta[last] if self._output == "ntk" else lay.q[last]
        return out.astype(X.dtype, copy=True)

    def nngp_and_ntk(self, X, Y=None):
        """Both kernels of the architecture from one recursion: ``(K_nngp, K_ntk)``, each of shape (n, m).

        Parameters
        ----------
        X : array of shape (n, d)
        Y : array of shape (m, d), optional
            Default: X.

        Returns
        -------
        nngp, ntk : float64 arrays of shape (n, m)
            (float32 when X and Y are float32).
        """
        from .._validation import check_pair, check_points
        if Y is None:
            X = check_points(X, "X", type(self).__name__ + ".nngp_and_ntk")
            Y = X
        else:
            X, Y = check_pair(X, Y, owner=type(self).__name__ + ".nngp_and_ntk")
        out = self._evaluate(X, Y, ("nngp", "ntk"))
        return out["nngp"].astype(X.dtype, copy=False), out["ntk"].astype(X.dtype, copy=False)

    # --- the recursion -------------------------------------------------------
    def _in_width(self, layer, d):
        """Width of the input of dense layer ``layer`` (1-based): d, then the hidden widths."""
        return d if layer == 1 else self.widths[layer - 2]

    def _dense_ntk(self, layer, d, q_new, k_prev, tpost):
        """Theta of the pre-activations of dense layer ``layer`` from the previous layer's post-activation
        NNGP ``k_prev`` and NTK ``tpost`` (0 for the input)."""
        W2 = self.W_std ** 2
        if self.parameterization == "ntk":
            return q_new + W2 * tpost
        out = self._in_width(layer, d) * k_prev + W2 * tpost
        if self.b_std is not None:
            out = out + 1.0
        return out

    def _points(self, X, need_ntk):
        """The per-point recursion (the diagonal k(x, x) of every layer), checked to stay finite.

        The same arithmetic as the pair recursion on a pair (x, x): S = sqrt(q) sqrt(q), q12 = q,
        1 - rho = 0 (1 where q = 0).
        """
        d = X.shape[1]
        W2, b2 = self.W_std ** 2, (self.b_std or 0.0) ** 2
        q0 = np.einsum("ij,ij->i", X, X) / d
        lay = _Layers(q={0: q0}, sq={0: np.sqrt(q0)}, k={0: q0}, sk={0: np.sqrt(q0)}, kd={}, theta={})
        k_prev, tpost = q0, np.zeros_like(q0)
        with np.errstate(over="ignore", invalid="ignore"):
            for layer in range(1, self.depth + 2):
                q = W2 * k_prev
                if b2:
                    q += b2
                lay.q[layer] = q
                if need_ntk:
                    lay.theta[layer] = self._dense_ntk(layer, d, q, k_prev, tpost)
                self._check_finite(q, lay.theta.get(layer), layer)
                if layer == self.depth + 1:
                    break
                sq = lay.sq[layer] = np.sqrt(q)
                pos = q > 0
                w = np.where(pos, 0.0, 1.0)
                wb = np.where(pos, 2.0, 1.0)
                k, kd, _, _ = self._act.pair(q, q, sq * sq, q, w, wb, need_ntk)
                lay.k[layer] = k
                lay.sk[layer] = np.sqrt(np.maximum(k, 0.0))
                if need_ntk:
                    lay.kd[layer] = kd
                    tpost = lay.theta[layer] * kd
                self._check_finite(k, tpost if need_ntk else None, layer)
                k_prev = k
        return lay

    def _check_finite(self, a, b, layer):
        if np.isfinite(a).all() and (b is None or np.isfinite(b).all()):
            return
        owner = type(self).__name__
        if not isinstance(self.activation, str):
            bad = a if not np.isfinite(a).all() else b
            if np.isnan(bad).any():
                raise param_error("activation", owner, "a function with finite values on the real line", None,
                                  shown=f"non-finite kernel values at layer {layer}")
        raise param_error("X", owner, "points whose kernel values fit float64 (below 1.8e308 in absolute value) "
                                      f"for {self!r}", None, shown=f"values beyond float64 at layer {layer}",
                          hint="The kernel grows like (W_std^2 E[phi'^2])^depth times |x|^2 / d; lower 'W_std' or "
                               "'depth', or scale the inputs down (for positively homogeneous activations such as "
                               "ReLU without bias the kernels scale like |x| |y|).")

    def _evaluate(self, X, Y, outputs):
        """{name: (n, m) float64 block} for names in ``outputs`` ("nngp", "ntk")."""
        same = Y is X
        X = X.astype(np.float64, copy=False)
        Y = X if same else Y.astype(np.float64, copy=False)
        need_ntk = "ntk" in outputs
        px = self._points(X, need_ntk)
        py = px if same else self._points(Y, need_ntk)
        n, m = X.shape[0], Y.shape[0]
        out = {name: np.empty((n, m)) for name in outputs}
        if n == 0 or m == 0:
            return out
        opts = get_options()
        threads = max(1, opts.resolved_threads())
        # temporaries: about 24 pair-sized float64 arrays per chunk and thread, inside the memory budget
        budget_pairs = max(256, opts.memory // (24 * 8 * threads))
        chunk_pairs = max(1, min(_CHUNK_PAIRS, budget_pairs))
        cols = min(m, chunk_pairs)
        rows = max(1, chunk_pairs // cols)
        tiles = [(r0, c0) for r0 in range(0, n, rows) for c0 in range(0, m, cols)]

        def work(tile):
            r0, c0 = tile
            r1, c1 = min(n, r0 + rows), min(m, c0 + cols)
            res = self._pairs(X, Y, r0, r1, c0, c1, px, py, need_ntk)
            for name in outputs:
                out[name][r0:r1, c0:c1] = res[name]

        if threads > 1 and n * m >= _THREADED_PAIRS and len(tiles) > 1:
            with concurrent.futures.ThreadPoolExecutor(max_workers=threads) as pool:
                list(pool.map(work, tiles))
        else:
            for tile in tiles:
                work(tile)
        if same:
            last = self.depth + 1
            for name in outputs:
                np.fill_diagonal(out[name], (py.theta if name == "ntk" else py.q)[last])
        return out

    def _pairs(self, X, Y, r0, r1, c0, c1, px, py, need_ntk):
        """The pair recursion on rows r0:r1 of X against rows c0:c1 of Y (float64 arrays)."""
        d = X.shape[1]
        W2, b2 = self.W_std ** 2, (self.b_std or 0.0) ** 2
        Wb = self.W_std * (self.b_std or 0.0)
        exact = self._act.exact_correlation
        Xc, Yc = X[r0:r1], Y[c0:c1]
        col, row = (slice(r0, r1), None), (None, slice(c0, c1))

        def x_(v):
            return v[col]

        def y_(v):
            return v[row]

        k12 = Xc @ Yc.T
        k12 /= d
        sk1, sk2 = x_(px.sq[0]), y_(py.sq[0])
        Sk = sk1 * sk2
        wk, wbk = _correlation(k12, x_(px.q[0]), y_(py.q[0]), sk1, sk2)
        self._kahan(Xc, Yc, x_(px.q[0]), y_(py.q[0]), Sk, k12, wk, wbk)
        tpost = 0.0
        last = self.depth + 1
        for layer in range(1, last + 1):
            q12 = k12 * W2
            if b2:
                q12 += b2
            theta = self._dense_ntk(layer, d, q12, k12, tpost) if need_ntk else None
            if layer == last:
                break
            Sq = x_(px.sq[layer]) * y_(py.sq[layer])
            if b2:
                w, wb = self._dense_correlation(q12, Sq, sk1, sk2, Sk, wk, wbk, W2, Wb)
            else:   # a dense layer without bias keeps the correlation
                w, wb = wk, wbk
            k12, kd, wk, wbk = self._act.pair(x_(px.q[layer]), y_(py.q[layer]), Sq, q12, w, wb, need_ntk)
            if b2 or not exact:
                sk1, sk2 = x_(px.sk[layer]), y_(py.sk[layer])
                Sk = sk1 * sk2
            if wk is None:
                wk, wbk = _correlation(k12, x_(px.k[layer]), y_(py.k[layer]), sk1, sk2)
            if need_ntk:
                tpost = theta
                tpost *= kd
        return {"nngp": q12, "ntk": theta}

    @staticmethod
    def _dense_correlation(q12, Sq, sk1, sk2, Sk, wk, wbk, W2, Wb):
        """(1 - rho, 1 + rho) of q = W^2 k + b^2 from those of k.

        Directly from rho = q12 / S_q where both are above 0.1 (relative error below 5e-15 there);
        elsewhere without cancellation:
        1 - rho^2 = (W^2 S_k / S_q)^2 (1 - rho_k^2) + (W b / S_q)^2 ((sqrt k11 - sqrt k22)^2 + 2 S_k (1 - rho_k)),
        then the smaller of 1 -+ rho is (1 - rho^2) / (1 + |rho|). S_q >= b^2 > 0 here.
        """
        rho = q12 / Sq
        near = np.abs(rho) > 1.0 - _DIRECT_CORRELATION
        count = int(np.count_nonzero(near))
        if count == 0:
            return 1.0 - rho, 1.0 + rho
        whole = 2 * count > near.size    # most pairs: the stable form on whole arrays
        shape = rho.shape
        if whole:
            sel = (Ellipsis,)
            diff = sk1 - sk2
        else:
            sel = near
            diff = np.broadcast_to(sk1, shape)[near] - np.broadcast_to(sk2, shape)[near]
        Sq_, Sk_, rho_ = Sq[sel], np.broadcast_to(Sk, shape)[sel], rho[sel]
        wk_, wbk_ = wk[sel], wbk[sel]
        t = Sk_ / Sq_
        t *= W2
        t *= t
        t *= wk_ * wbk_
        u = Wb / Sq_
        u *= u
        sin2 = diff * diff
        sin2 += 2.0 * Sk_ * wk_
        sin2 *= u
        sin2 += t                                           # 1 - rho^2
        large = np.abs(rho_)
        large += 1.0
        small = sin2
        small /= large
        pos = rho_ > 0
        if whole:
            return np.where(pos, small, large), np.where(pos, large, small)
        w, wb = 1.0 - rho, 1.0 + rho
        w[near] = np.where(pos, small, large)
        wb[near] = np.where(pos, large, small)
        return w, wb

    @staticmethod
    def _kahan(Xc, Y, q1, q2, S, k12, w, wb):
        """Recompute, in place, the input kernel of nearly (anti)parallel pairs.

        With u = x / |x|, v = y / |y|: 1 - rho = 2 |u - v|^2 / (|u - v|^2 + |u + v|^2) and 1 + rho alike
        (Kahan's angle 2 atan2(|u - v|, |u + v|)), and x . y = (|x|^2 + |y|^2 - |x - y|^2) / 2, all exact for
        identical rows (q1, q2: |x|^2 / d, |y|^2 / d; S = sqrt(q1) sqrt(q2)).
        """
        near = (np.minimum(w, wb) < _NEAR_PARALLEL) & (S > 0)
        ii, jj = np.nonzero(near)
        d = Xc.shape[1]
        step = max(1, (1 << 16) // d)
        for s0 in range(0, ii.size, step):
            i, j = ii[s0:s0 + step], jj[s0:s0 + step]
            x, y = Xc[i], Y[j]
            u = x / np.sqrt(q1[i, 0])[:, None]
            v = y / np.sqrt(q2[0, j])[:, None]
            dm = np.einsum("ij,ij->i", u - v, u - v)
            dp = np.einsum("ij,ij->i", u + v, u + v)
            tot = dm + dp
            w[i, j] = 2.0 * dm / tot
            wb[i, j] = 2.0 * dp / tot
            xy = np.einsum("ij,ij->i", x - y, x - y)
            k12[i, j] = ((q1[i, 0] + q2[0, j]) - xy / d) / 2


_DOC = r"""{title}

The network (neural-tangents' ``stax.serial([Dense(W_std, b_std), phi] *
depth + [Dense(1, W_std, b_std)])``, the readout with the same ``W_std`` and
``b_std``) at infinite width. With :math:`d` the input dimension, the input
kernel is :math:`\tilde K^0(x, y) = x \cdot y / d` and :math:`\tilde\Theta^0 = 0`;
each dense layer :math:`l = 1, \dots, L + 1` (:math:`L` = ``depth``) gives the
kernels of its outputs

.. math::

    K^l = \sigma_w^2 \tilde K^{{l-1}} + \sigma_b^2, \qquad
    \Theta^l = K^l + \sigma_w^2 \tilde\Theta^{{l-1}} \quad \text{{(ntk parameterization)}},

    \Theta^l = n_{{l-1}} \tilde K^{{l-1}} + \sigma_w^2 \tilde\Theta^{{l-1}} + [b \text{{ present}}]
    \quad \text{{(standard parameterization)}},

and each activation the post-activation kernels

.. math::

    \tilde K^l = E[\phi(u)\phi(v)], \quad \tilde\Theta^l = \Theta^l \, E[\phi'(u)\phi'(v)], \qquad
    (u, v) \sim N\big(0, \begin{{pmatrix}} K^l(x, x) & K^l(x, y) \\ K^l(x, y) & K^l(y, y) \end{{pmatrix}}\big).

The NNGP is :math:`K^{{L+1}}`, the NTK :math:`\Theta^{{L+1}}`. In the ntk
parameterization a dense layer is :math:`z = \sigma_w W a / \sqrt{{n}} + \sigma_b b`
with :math:`W, b \sim N(0, 1)` (Jacot et al. 2018); in the standard one
:math:`z = W a + b` with :math:`W \sim N(0, \sigma_w^2 / n)`,
:math:`b \sim N(0, \sigma_b^2)` (Sohl-Dickstein et al. 2020), where
:math:`n = n_{{l-1}}` is the width of the layer's input (:math:`n_0 = d`, then
``widths``), and its NTK grows with the widths. :math:`[b \text{{ present}}]`
is 1 when ``b_std`` is not None (a bias of zero variance still has a
gradient), as in neural-tangents.

Activations (``activation`` and ``activation_params``), all in closed form
(``kernelkit.ntk._activations`` writes each formula):

=================  ==========================================  =====================
name               phi(x)                                      activation_params
=================  ==========================================  =====================
``"relu"``         max(x, 0)                                   -
``"leaky_relu"``   alpha min(x, 0) + max(x, 0)                 alpha (0.01)
``"abrelu"``       a min(x, 0) + b max(x, 0)                   a (0), b (1)
``"abs"``          abs(x)                                      -
``"erf"``          a erf(b x) + c                              a (1), b (1), c (0)
``"gelu"``         x Phi(x) (exact GELU)                       -
``"sin"``          a sin(b x + c)                              a (1), b (1), c (0)
``"cos"``          a cos(b x + c)                              a (1), b (1), c (0)
``"sign"``         sign(x) (derivative 0: no NTK below it)     -
``"identity"``     x                                           -
callable           any elementwise phi (NumPy-vectorised)      derivative (None), nodes (32)
=================  ==========================================  =====================

The ReLU family and sign are the arc-cosine kernels of Cho & Saul (2009)
with the angle :math:`\theta = \operatorname{{atan2}}(\sqrt{{q_{{11}} q_{{22}} - q_{{12}}^2}}, q_{{12}})`;
erf is Williams' (1997) arcsine kernel, GELU the closed form of Tsuchida et
al. (2021). A callable is integrated by bivariate Gauss-Hermite quadrature
with ``nodes`` nodes per dimension (nodes^2 evaluations of phi per pair and
layer; exact for polynomials of degree < nodes). Its derivative for the NTK
is ``activation_params["derivative"]``, else a 5-point central difference of
phi (step ``1e-3 max(1, |x|)``; about 2e-12 relative). Accuracy measured against
the closed forms (max error over a block relative to ``max |K|``, depth 3,
``W_std`` = 1.4, ``b_std`` = 0.3; tests/test_ntk_infinite.py): sin
1e-15 with 32 nodes; erf 3e-4 (NTK 3e-3) with 32 nodes, 8e-7 with 64; GELU
7e-4 (NTK 8e-3) with 32, 2e-6 with 64; ReLU as a callable (a kink) 9e-3
with 32, 5e-3 with 64. Steep activations converge slowly (erf with
``W_std`` = 3: 3e-2 with 32 nodes, 5e-3 with 64): use the closed forms.

Numerics. Everything is computed in float64 (float32 inputs give float32
results). The recursion works with the correlation :math:`\rho = q_{{12}} / \sqrt{{q_{{11}} q_{{22}}}}`
(the products :math:`q_{{11}} q_{{22}}` and :math:`q_{{12}}^2` are never formed: they
overflow above 1e154) and carries :math:`1 - \rho` and :math:`1 + \rho` through
the layers without cancellation (exactly for the arc-cosine family and
identity; for erf, GELU, sin, cos and callables they are formed from each
layer's values, with an absolute error of about 1e-16); the input angle of
nearly parallel or antiparallel pairs comes from Kahan's formula
:math:`2 \operatorname{{atan2}}(|u - v|, |u + v|)` on the unit vectors (accurate to
about 1e-16 absolute). Identical points therefore get :math:`\theta = 0`
exactly at every layer, and ``k(x, x)`` in a block equals ``k.diag``.
Measured against a 50-digit recursion (relative to :math:`|k(x, y)|`, or to
:math:`10^{{-3}}\sqrt{{k(x, x) k(y, y)}}` where the value cancels to about 0): 1e-13
for every activation up to depth 100 with ``W_std`` = 10, identical,
parallel (x, 2x), antiparallel and zero inputs included (GELU at depth 100:
the reference itself cancels for its huge parallel pairs), and nearly
identical ones (1e-6 apart) for the arc-cosine family (sign: 4e-13, its
angle map amplifies the input angle's error). Nearly identical distinct points through deep smooth
networks in the chaotic phase lose accuracy (depth 100, ``W_std`` = 10,
1e-6 apart: GELU NTK 6e-8, erf NTK 6e-5), as in any float64 evaluation of
that recursion. The values stay finite for deep networks and large
``W_std`` as long as they fit float64; when a value would exceed 1.8e308
the kernel raises InvalidValueError naming the layer instead of returning
inf or NaN.

Blocks are evaluated in chunks of at most 12,288 pairs (fewer under a small
memory budget, :func:`kernelkit.options`), on the engine's threads for large
blocks. The kernel is neither radial nor stationary and has no bandwidth; the
engine evaluates it by its NumPy path (``backend="torch"`` is refused with the
reason).

Parameters
----------
activation : str or callable
    One of the names above (case-insensitive) or an elementwise function
    ``phi(x)`` on NumPy arrays.
depth : int >= 1
    L, the number of hidden layers (dense + activation); a readout dense
    layer follows.
W_std : float > 0
    :math:`\sigma_w`, the weight standard deviation (dimensionless).
b_std : float >= 0 or None
    :math:`\sigma_b`, the bias standard deviation, in the units of the
    pre-activations; None (the default, as neural-tangents' ``Dense``) means
    no bias. It differs from 0 only in the standard parameterization's NTK.
parameterization : {{"ntk", "standard"}}
    Where the 1 / sqrt(width) factor sits (see above).
widths : int or sequence of ``depth`` ints, optional
    Hidden layer widths :math:`n_1, \dots, n_L`: required by, and only
    accepted with, the standard parameterization.
activation_params : dict, optional
    The activation's parameters (table above); for a callable
    ``{{"derivative": phi' or None, "nodes": int in [2, 256]}}``.

Notes
-----
Values agree with neural-tangents 0.6.5 (jax 0.4.30, x64) to 1e-12 relative
on the same architectures (measured 1e-15), except where neural-tangents
forms the angle from :math:`q_{{11}} q_{{22}} - q_{{12}}^2`: its NTK diagonal (up to
6e-8 off) and exactly parallel pairs through sign layers; there the 50-digit
mpmath recursion agrees with these values (tests/test_ntk_infinite.py,
benchmarks/bench_ntk_infinite.py).

Examples
--------
>>> import numpy as np, kernelkit as kk
>>> X = np.random.default_rng(0).standard_normal((5, 3))
>>> k = kk.NTK("relu", depth=3, W_std=1.5, b_std=0.1)
>>> K = k(X)                                  # (5, 5), diagonal == k.diag(X)
>>> bool(np.allclose(np.diag(K), k.diag(X)))
True
"""


class NNGP(_InfiniteWidth):
    __doc__ = _DOC.format(title="NNGP kernel of an infinitely wide fully connected network.\n\n"
                                "k(x, y) = K^{L+1}(x, y): the covariance of the network's output at initialisation "
                                "(a Gaussian process).")
    family = "nngp"
    _output = "nngp"


class NTK(_InfiniteWidth):
    __doc__ = _DOC.format(title="Neural tangent kernel of an infinitely wide fully connected network.\n\n"
                                "k(x, y) = Theta^{L+1}(x, y): the kernel of the network's gradient-descent dynamics "
                                "at infinite width.")
    family = "ntk"
    _output = "ntk"

