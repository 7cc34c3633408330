r"""Dual activations: the Gaussian expectations an infinitely wide layer applies to its kernel.

For a pre-activation pair :math:`(u, v) \sim N(0, [[q_{11}, q_{12}], [q_{12}, q_{22}]])`
an activation :math:`\phi` maps the kernel to

.. math::

    k_{12} = E[\phi(u)\,\phi(v)], \qquad \dot k_{12} = E[\phi'(u)\,\phi'(v)].

Every activation is evaluated from the same normalised description of the
pair, which stays finite and accurate for huge kernel values and for nearly
parallel inputs:

* ``q1``, ``q2``: the variances (arrays broadcasting against the pairs),
* ``S = sqrt(q1) sqrt(q2)`` (never the product q1 q2, which overflows above 1e154),
* ``q12``: the covariance,
* ``w = 1 - rho`` and ``wb = 1 + rho``, with ``rho = q12 / S`` the
  correlation, both carried accurately (``w`` is tiny for nearly parallel
  inputs, ``wb`` for nearly antiparallel ones; ``sin^2 theta = w * wb``).

The angle is ``theta = 2 arctan(sqrt(w / wb))``, equal to
``atan2(sqrt(q11 q22 - q12^2), q12)`` but computed from the accurate
``w``, ``wb`` (the obtuse side from ``pi - theta = 2 arctan(sqrt(wb / w))``).
A pair with ``S = 0`` (a zero input and no bias) has ``rho = 0``,
``w = wb = 1`` and ``theta = pi / 2``, the value neural-tangents fills in
there; its kernel values are 0 for the homogeneous activations.

``pair(...)`` returns ``(k12, kdot12, wk, wbk)``: the dual kernel, its
derivative kernel (None when not asked for), and ``1 - rho_k``, ``1 + rho_k``
of the output correlation where the activation has an accurate closed form
for them (the arc-cosine family: ReLU, leaky ReLU, ABReLU, abs, sign,
identity), else None (the caller then forms them from the values). The
diagonal is the same function on ``q1 = q2 = q12 = q`` (``w = 0``), so that
``k(x, x)`` in a block and in ``diag`` come from the same arithmetic.
"""

from __future__ import annotations

import math

import numpy as np

from .._validation import Integral, Real, check_param, param_error

__all__ = ["make_activation", "ACTIVATION_NAMES", "DEFAULT_NODES", "Activation"]

_PI = math.pi
#: Gauss-Hermite nodes per dimension for activations given as callables (nodes^2 evaluations per pair and layer)
DEFAULT_NODES = 32
#: largest node count accepted (numpy's hermegauss is accurate far beyond; the cost is nodes^2)
MAX_NODES = 256
#: below this angle sin(t) - t cos(t) is summed from its series (the direct form cancels)
_SERIES_THETA = 0.05
#: coefficients of sin t - t cos t = t^3 * sum_k c_k t^(2k), c_k = (-1)^k (2k + 2) / (2k + 3)!
_G_COEFS = tuple((-1) ** k * (2 * k + 2) / math.factorial(2 * k + 3) for k in range(5))


def _g(theta, sin, rho):
    """g(theta) = sin(theta) - theta cos(theta) >= 0, accurate for small theta.

    Direct below pi, except for theta < 0.05 where the series
    theta^3 (1/3 - theta^2/30 + ...) replaces the cancelling difference (five
    terms reach float64 accuracy there; the direct form's relative error
    3 eps / theta^2 is below 3e-13 above 0.05, and g enters the results only
    next to terms at least 1 / (2 theta) times larger).
    """
    g = sin - theta * rho
    small = theta < _SERIES_THETA
    if small.any():
        t = theta[small]
        t2 = t * t
        acc = np.full_like(t, _G_COEFS[4])
        for c in _G_COEFS[3::-1]:
            acc *= t2
            acc += c
        g[small] = acc * (t2 * t)
    return g


class Activation:
    """One elementwise activation: its name, parameters and dual kernels (see the module docstring)."""

    #: the name used in reprs and specs
    name = "activation"
    #: True when ``pair`` returns accurate 1 - rho_k, 1 + rho_k
    exact_correlation = False

    def __init__(self, **params):
        self.params = params

    def pair(self, q1, q2, S, q12, w, wb, derivative):  # pragma: no cover - interface
        raise NotImplementedError


class ABReLU(Activation):
    r""":math:`\phi(x) = a \min(x, 0) + b \max(x, 0)` (ReLU: a = 0, b = 1; leaky ReLU: a = alpha, b = 1;
    abs: a = -1, b = 1).

    With :math:`A = (a^2 + b^2)/2`, :math:`F = (a - b)^2 / (2\pi)` and
    :math:`g(\theta) = \sin\theta - \theta\cos\theta` (so that Cho & Saul's
    :math:`J_1(\theta) = \sin\theta + (\pi - \theta)\cos\theta = \pi\cos\theta + g(\theta)`),

    .. math::

        k_{12} = S (A \cos\theta + F g(\theta)), \qquad \dot k_{12} = A - F\theta,
        \qquad 1 \mp \rho_k = \big(A (1 \mp \cos\theta) \mp F g(\theta)\big) / A.

    Obtuse angles use :math:`\delta = \pi - \theta` (computed directly, not as
    a difference): :math:`k_{12} = S(ab\cos\theta + F g(\delta))`,
    :math:`\dot k_{12} = ab + F\delta`,
    :math:`1 - \rho_k = ((a + b)^2/2 - ab(1 + \cos\theta) - F g(\delta)) / A` and
    :math:`1 + \rho_k = ((a - b)^2/2 + ab(1 + \cos\theta) + F g(\delta)) / A`,
    free of cancellation near :math:`\theta = \pi` (ReLU's kernel and abs's
    correlation vanish there). The angle is
    :math:`\theta = 2\arctan\sqrt{(1 - \rho)/(1 + \rho)}`.
    """

    name = "abrelu"
    exact_correlation = True

    def __init__(self, a, b):
        super().__init__(a=a, b=b)
        self.A = (a * a + b * b) / 2
        self.F = (a - b) ** 2 / (2 * _PI)
        self.ab = a * b
        self.plus2, self.minus2 = (a + b) ** 2 / 2, (a - b) ** 2 / 2

    def pair(self, q1, q2, S, q12, w, wb, derivative):
        A, F, ab = self.A, self.F, self.ab
        if F == 0.0:   # linear: a = b
            k12 = q12 * A
            kd = np.full(np.shape(k12), A) if derivative else None
            return k12, kd, w, wb
        with np.errstate(divide="ignore", invalid="ignore"):
            t = np.sqrt(w / wb)                    # tan(theta / 2) (inf at theta = pi)
            theta = np.arctan(t)
            theta *= 2.0
            sin = t * t
            sin += 1.0
            np.divide(2.0 * t, sin, out=sin)       # (NaN at theta = pi: replaced below)
        rho = 1.0 - w
        g = _g(theta, sin, rho)
        k12 = A * rho
        k12 += F * g
        kd = A - F * theta if derivative else None
        g *= F / A
        wk = w - g
        wbk = g
        wbk += wb
        obtuse = w > wb
        if obtuse.any():
            wo, wbo = w[obtuse], wb[obtuse]
            with np.errstate(divide="ignore"):
                to = np.sqrt(wbo / wo)             # tan(delta / 2)
            delta = 2.0 * np.arctan(to)
            rho_o = wbo - 1.0
            gd = _g(delta, 2.0 * to / (1.0 + to * to), -rho_o)
            k12[obtuse] = ab * rho_o + F * gd
            if derivative:
                kd[obtuse] = ab + F * delta
            wk[obtuse] = (self.plus2 - ab * wbo - F * gd) / A
            wbk[obtuse] = (self.minus2 + ab * wbo + F * gd) / A
        k12 *= S
        return k12, kd, wk, wbk


class Identity(Activation):
    r""":math:`\phi(x) = x`: :math:`k_{12} = q_{12}`, :math:`\dot k_{12} = 1`."""

    name = "identity"
    exact_correlation = True

    def pair(self, q1, q2, S, q12, w, wb, derivative):
        return q12, (np.ones(np.shape(q12)) if derivative else None), w, wb


class Sign(Activation):
    r""":math:`\phi(x) = \operatorname{sign}(x)`: :math:`k_{12} = 1 - 2\theta/\pi` (twice Cho & Saul's
    arc-cosine kernel of order 0 minus one), 0 where a variance is 0;
    :math:`1 - \rho_k = 2\theta/\pi`, :math:`1 + \rho_k = 2(\pi - \theta)/\pi`, with
    :math:`\theta = 2\arctan\sqrt{(1 - \rho)/(1 + \rho)}` and
    :math:`\pi - \theta = 2\arctan\sqrt{(1 + \rho)/(1 - \rho)}`.

    :math:`\dot k_{12} = 0`: the derivative of sign vanishes almost everywhere,
    so a finite network's gradients do not reach the layers below a sign
    layer, and neither does the infinite-width NTK (as in neural-tangents).
    """

    name = "sign"
    exact_correlation = True

    def pair(self, q1, q2, S, q12, w, wb, derivative):
        with np.errstate(divide="ignore"):
            theta = 2.0 * np.arctan(np.sqrt(w / wb))
            delta = 2.0 * np.arctan(np.sqrt(wb / w))
        zero = S == 0
        wk = np.where(zero, 1.0, theta * (2 / _PI))
        wbk = np.where(zero, 1.0, delta * (2 / _PI))
        k12 = np.where(zero, 0.0, np.where(w <= wb, 1.0 - wk, wbk - 1.0))
        kd = np.zeros(np.shape(k12)) if derivative else None
        return k12, kd, wk, wbk


class Erf(Activation):
    r""":math:`\phi(x) = a\,\operatorname{erf}(b x) + c` (Williams 1997).

    With :math:`\tilde q = b^2 q`, :math:`\alpha_i = 2\tilde q_i / (1 + 2\tilde q_i)`,
    :math:`\bar\alpha_i = 1 - \alpha_i` and
    :math:`r = 2\tilde q_{12} / \sqrt{(1 + 2\tilde q_{11})(1 + 2\tilde q_{22})} = \rho\sqrt{\alpha_1\alpha_2}`,

    .. math::

        k_{12} = a^2 \tfrac{2}{\pi} \arcsin r + c^2, \qquad
        \dot k_{12} = a^2 b^2 \tfrac{4}{\pi} \frac{\sqrt{\bar\alpha_1 \bar\alpha_2}}{\sqrt{1 - r^2}},

    where :math:`1 - r^2 = (\bar\alpha_1 + \alpha_1\bar\alpha_2) + \alpha_1\alpha_2 \sin^2\theta`
    is a sum of non-negative terms (no cancellation, no overflow).
    """

    name = "erf"

    def __init__(self, a=1.0, b=1.0, c=0.0):
        super().__init__(a=a, b=b, c=c)

    def pair(self, q1, q2, S, q12, w, wb, derivative):
        a, b, c = self.params["a"], self.params["b"], self.params["c"]
        b2 = b * b
        ab1 = 1.0 / (1.0 + 2.0 * b2 * q1)
        ab2 = 1.0 / (1.0 + 2.0 * b2 * q2)
        al1, al2 = 1.0 - ab1, 1.0 - ab2
        ra = np.sqrt(al1) * np.sqrt(al2)
        r = (1.0 - w) * ra
        one_r2 = (ab1 + al1 * ab2) + (ra * ra) * (w * wb)
        root = np.sqrt(one_r2)
        k12 = (a * a * 2 / _PI) * np.arctan2(r, root) + c * c
        kd = None
        if derivative:
            kd = (a * a * b2 * 4 / _PI) * (np.sqrt(ab1) * np.sqrt(ab2)) / root
        return k12, kd, None, None


class Gelu(Activation):
    r""":math:`\phi(x) = x \Phi(x)` (exact GELU, :math:`\Phi` the standard normal CDF).

    Closed form of Tsuchida, Pearce, van der Heide, Roosta & Gallagher (2021,
    "Avoiding kernel fixed points: computing with ELU and GELU infinite
    networks"), written with :math:`c_i = q_i / (1 + q_i)`,
    :math:`\bar c_i = 1 - c_i`, :math:`P = \sqrt{(1 + q_1)(1 + q_2)}` and
    :math:`r = q_{12} / P = \rho \sqrt{c_1 c_2}`:

    .. math::

        k_{12} = \frac{q_{12}}{4} + \frac{1}{2\pi}\Big(q_{12} \arcsin r
                 + \frac{r^2}{P\sqrt{1 - r^2}} + S \sqrt{c_1 c_2} \sqrt{1 - r^2}\Big),

        \dot k_{12} = \frac14 + \frac{\arcsin r}{2\pi} + \frac{r}{2\pi\sqrt{1 - r^2}}
                 \Big(\frac{\bar c_1 \bar c_2}{1 - r^2} + \bar c_1 \bar c_2 + 1 - c_1 c_2\Big),

    with :math:`1 - r^2 = (\bar c_1 + c_1 \bar c_2) + c_1 c_2 \sin^2\theta`.
    Checked against bivariate quadrature in the tests.
    """

    name = "gelu"

    def pair(self, q1, q2, S, q12, w, wb, derivative):
        cb1 = 1.0 / (1.0 + q1)
        cb2 = 1.0 / (1.0 + q2)
        c1, c2 = 1.0 - cb1, 1.0 - cb2
        rc = np.sqrt(c1) * np.sqrt(c2)
        r = (1.0 - w) * rc
        one_r2 = (cb1 + c1 * cb2) + (rc * rc) * (w * wb)
        root = np.sqrt(one_r2)
        asin = np.arctan2(r, root)
        inv_P = np.sqrt(cb1) * np.sqrt(cb2)
        k12 = 0.25 * q12 + (q12 * asin + (r * r) * inv_P / root + S * rc * root) / (2 * _PI)
        kd = None
        if derivative:
            cbb = cb1 * cb2
            kd = 0.25 + asin / (2 * _PI) + (r / root) * (cbb / one_r2 + cbb + (cb1 + c1 * cb2)) / (2 * _PI)
        return k12, kd, None, None


class Sin(Activation):
    r""":math:`\phi(x) = a \sin(b x + c)` (``cos``: the phase c + pi/2).

    With :math:`V_\mp = b^2 (q_1 + q_2 \mp 2 q_{12})` (:math:`V_- =
    b^2((\sqrt{q_1} - \sqrt{q_2})^2 + 2 S (1 - \rho))`, accurate for nearly
    parallel inputs),

    .. math::

        k_{12} = \tfrac{a^2}{2}\big(e^{-V_-/2} - \cos(2c)\, e^{-V_+/2}\big), \qquad
        \dot k_{12} = \tfrac{a^2 b^2}{2}\big(e^{-V_-/2} + \cos(2c)\, e^{-V_+/2}\big).
    """

    name = "sin"

    def __init__(self, a=1.0, b=1.0, c=0.0, cos=False):
        super().__init__(a=a, b=b, c=c)
        self.cos2c = -math.cos(2 * c) if cos else math.cos(2 * c)
        if cos:
            self.name = "cos"

    def pair(self, q1, q2, S, q12, w, wb, derivative):
        a, b = self.params["a"], self.params["b"]
        b2 = b * b
        diff = np.sqrt(q1) - np.sqrt(q2)
        vm = b2 * (diff * diff + 2.0 * S * w)
        vp = b2 * (q1 + q2 + 2.0 * q12)
        em = np.exp(-0.5 * vm)
        ep = np.exp(-0.5 * np.maximum(vp, 0.0)) * self.cos2c
        k12 = (a * a / 2) * (em - ep)
        kd = (a * a * b2 / 2) * (em + ep) if derivative else None
        return k12, kd, None, None


def _numerical_derivative(fn):
    """phi' by the 5-point central difference, step 1e-3 max(1, |x|) (truncation ~ 2e-14 phi^(5),
    rounding ~ 1e-13 |phi| / max(1, |x|))."""
    def df(x):
        h = 1e-3 * np.maximum(1.0, np.abs(x))
        return (8.0 * (fn(x + h) - fn(x - h)) - (fn(x + 2 * h) - fn(x - 2 * h))) / (12.0 * h)
    return df


class Quadrature(Activation):
    r"""Any elementwise function, by bivariate Gauss-Hermite quadrature.

    With the probabilists' Gauss-Hermite nodes :math:`z_a` and weights
    :math:`w_a` (``numpy.polynomial.hermite_e.hermegauss``, normalised to sum
    to 1), :math:`u_a = \sqrt{q_1} z_a` and
    :math:`v_{ab} = \sqrt{q_2} (\rho z_a + \sin\theta\, z_b)`,

    .. math::

        E[\phi(u)\phi(v)] \approx \sum_{a, b} w_a w_b\, \phi(u_a)\, \phi(v_{ab}),

    exact for polynomials of degree < 2 n in each variable; nodes^2
    evaluations of phi per pair and layer. The derivative kernel uses the
    same rule on phi', given as ``derivative`` or else the 5-point central
    difference of phi with step 1e-3 max(1, |x|).
    """

    name = "callable"

    def __init__(self, fn, derivative=None, nodes=DEFAULT_NODES):
        super().__init__(fn=fn, derivative=derivative, nodes=nodes)
        self.fn = fn
        self.df = derivative if derivative is not None else _numerical_derivative(fn)
        z, wts = np.polynomial.hermite_e.hermegauss(nodes)
        self.z = z
        self.wts = wts / wts.sum()

    def _call(self, f, x, what):
        out = np.asarray(f(x), dtype=np.float64)
        if out.shape != np.shape(x):
            raise param_error("activation", "NTK/NNGP", "a vectorised function returning an array of the shape of "
                              "its input", f, shown=f"shape {out.shape} for an input of shape {np.shape(x)} "
                                                    f"(the {what})")
        return out

    def pair(self, q1, q2, S, q12, w, wb, derivative):
        rho = (1.0 - w)
        sin = np.sqrt(w * wb)
        s1, s2 = np.sqrt(q1), np.sqrt(q2)
        shape = np.broadcast_shapes(np.shape(q12), np.shape(s1), np.shape(s2))
        k12 = np.zeros(shape)
        kd = np.zeros(shape) if derivative else None
        fns = [(self.fn, k12, "activation")] + ([(self.df, kd, "derivative")] if derivative else [])
        for a, za in enumerate(self.z):
            ua = s1 * za
            fu = [self._call(f, ua, what) for f, _, what in fns]
            base = rho * za
            for b, zb in enumerate(self.z):
                v = s2 * (base + sin * zb)
                wab = self.wts[a] * self.wts[b]
                for (f, acc, what), fa in zip(fns, fu):
                    acc += wab * (fa * self._call(f, v, what))
        return k12, kd, None, None


# --------------------------------------------------------------------------- names and parameters
_REAL = Real()

#: name -> (factory, {parameter: default})
_FAMILIES = {
    "relu": (lambda: ABReLU(0.0, 1.0), {}),
    "leaky_relu": (lambda alpha: ABReLU(alpha, 1.0), {"alpha": 0.01}),
    "abrelu": (lambda a, b: ABReLU(a, b), {"a": 0.0, "b": 1.0}),
    "abs": (lambda: ABReLU(-1.0, 1.0), {}),
    "erf": (lambda a, b, c: Erf(a, b, c), {"a": 1.0, "b": 1.0, "c": 0.0}),
    "gelu": (lambda: Gelu(), {}),
    "sin": (lambda a, b, c: Sin(a, b, c), {"a": 1.0, "b": 1.0, "c": 0.0}),
    "cos": (lambda a, b, c: Sin(a, b, c, cos=True), {"a": 1.0, "b": 1.0, "c": 0.0}),
    "sign": (lambda: Sign(), {}),
    "identity": (lambda: Identity(), {}),
}
#: the activations with a closed form, by name
ACTIVATION_NAMES = tuple(_FAMILIES)
_CALLABLE_PARAMS = {"derivative": None, "nodes": DEFAULT_NODES}


def make_activation(activation, activation_params, owner):
    """``(Activation, canonical name or callable, params dict)`` from the user's two parameters (validated)."""
    if activation_params is not None and not isinstance(activation_params, dict):
        raise param_error("activation_params", owner, "a dict of the activation's parameters or None",
                          activation_params, kind="type")
    given = dict(activation_params or {})
    for key in given:
        if not isinstance(key, str):
            raise param_error("activation_params", owner, "a dict with str keys", activation_params, kind="type")
    if callable(activation) and not isinstance(activation, (str, type)):
        allowed = _CALLABLE_PARAMS
        _unknown(given, allowed, "a callable activation", owner)
        params = {**allowed, **given}
        der = params["derivative"]
        if der is not None and not callable(der):
            raise param_error("activation_params['derivative']", owner, "a callable (phi') or None", der, kind="type")
        params["nodes"] = check_param(params["nodes"], "activation_params['nodes']", owner,
                                      Integral(low=2, high=MAX_NODES))
        return Quadrature(activation, der, params["nodes"]), activation, params
    if not isinstance(activation, str):
        raise param_error("activation", owner, f"one of {set(ACTIVATION_NAMES)} or a callable phi(x)",
                          activation, kind="type")
    name = activation.lower()
    if name not in _FAMILIES:
        raise param_error("activation", owner, f"one of {set(ACTIVATION_NAMES)} or a callable phi(x)", activation,
                          hint="Other elementwise functions: pass the function itself (vectorised over NumPy "
                               "arrays); it is integrated by Gauss-Hermite quadrature.")
    factory, allowed = _FAMILIES[name]
    _unknown(given, allowed, f"the {name!r} activation", owner)
    params = {}
    for key, default in allowed.items():
        params[key] = check_param(given.get(key, default), f"activation_params[{key!r}]", owner, _REAL)
    if name == "abrelu" and params["a"] == 0 and params["b"] == 0:
        raise param_error("activation_params", owner, "slopes a, b not both 0 for 'abrelu'", activation_params,
                          hint="phi = 0 makes every layer's kernel constant.")
    return factory(**params), name, params


def _unknown(given, allowed, what, owner):
    extra = sorted(set(given) - set(allowed))
    if extra:
        accepts = f"a dict with keys in {sorted(allowed)}" if allowed else "None or {} (no parameters)"
        raise param_error("activation_params", owner, f"{accepts} for {what}", given,
                          hint=f"Unknown key(s): {', '.join(map(repr, extra))}.")

