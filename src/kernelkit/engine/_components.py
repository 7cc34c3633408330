"""The family table: how each kernel family reaches the compiled paths.

A kernel family is defined once, in two places that say the same thing in
two languages:

* its Python class (``kernelkit.kernels``): the formula, written against an
  array namespace (``_log_profile(r2, xp)`` for radial kernels,
  ``_xp_block(X, Y, xp)`` otherwise), which the NumPy reference and the
  torch backend both evaluate;
* one entry in this table: a function of the kernel object that returns its
  components for the compiled code, ``k = sum_c w_c phi_c`` with each phi_c
  one of the closed forms of ``_include/kk_kernels.h`` (by name below). The
  fused engine and the kernel-thinning walk both read it.

=============  ==========================================  ==================
name           phi                                         p, q
=============  ==========================================  ==================
gauss          exp(-p r^2)                                 p = 1 / (2 sigma^2)
laplace        exp(-p r)                                   p = 1 / ell
matern32       (1 + s) exp(-s), s = p r                    p = sqrt(3) / ell
matern52       (1 + s + s^2 / 3) exp(-s), s = p r          p = sqrt(5) / ell
rq             (1 + r^2 / q)^(-p)                          p = exponent, q = scale^2
poly           (p x.y + q)^deg                             p = gamma, q = offset
periodic       exp(-q sin^2(pi p r))                       p = 1 / period, q = 2 / ell^2
gauss_cos      exp(-p r^2) cos(2 pi q r)                   (a 1-D spectral-mixture term)
epanechnikov   (1 - p r^2)^deg for p r^2 < 1, else 0       p = 1 / h^2, deg 1 / 2 / 3
tophat         1 for p r^2 < 1, else 0                     p = 1 / h^2
triangular     1 - p r for p r < 1, else 0                 p = 1 / h
cosine         cos(pi p r / 2) for p r < 1, else 0         p = 1 / h
=============  ==========================================  ==================

(r = ||x - y||, or ||x - y||_1 for kernels built with ``distance="l1"``: the
fused engine then sums |x_k - y_k| in its direct distance pass and feeds r^2
to the same closed forms.) A ``Modulated`` component, ``w exp(-|s * (x - y)|^2 / 2)
cos(2 pi mu . (x - y))`` for vectors s and mu, is evaluated by the fused
engine as Gaussian sums on rescaled data (the spectral mixture kernel in
d >= 2); the walk does not compile it.

Subclasses: a subclass of a registered family uses its parent's entry only
if it overrides none of the evaluation methods (``EVAL_METHODS``); a
subclass that changes the formula runs on the NumPy path, which calls its own
methods, until it registers an entry of its own.
"""

from __future__ import annotations

import math
from collections import namedtuple

import numpy as np

from .._validation import param_error
from ..kernels import (Biweight, Cosine, Epanechnikov, Gaussian, IMQ, Kernel, Laplace, Linear, Matern, Periodic,
                       Polynomial, RationalQuadratic, ScaledKernel, SpectralMixture, SumKernel, Tophat, Triangular,
                       Triweight, r2_bound)

__all__ = ["Component", "Modulated", "register_family", "kernel_components", "kernel_distance", "compile_components",
           "EVAL_METHODS", "uses_own_formula"]

Component = namedtuple("Component", "name w p q deg")
Component.__doc__ = """One closed-form term ``w * phi_name`` of a compiled kernel.

Attributes
----------
name : str
    A closed form of the table above ("gauss", "laplace", "matern32", ...).
w : float > 0
    Weight (units of k).
p, q : float
    The form's two parameters, as in the table.
deg : int
    Degree of a "poly" term (0 otherwise).
"""
Modulated = namedtuple("Modulated", "w scales means")
Modulated.__doc__ = """A term ``w exp(-|scales * (x - y)|^2 / 2) cos(2 pi means^T (x - y))``.

Attributes
----------
w : float > 0
    Weight (units of k).
scales : tuple of d floats > 0
    Per-coordinate inverse length scales (1 / units of the data).
means : tuple of d floats
    Frequencies, in cycles per unit of the data.
"""

#: the methods through which kernelkit evaluates a kernel; overriding any of them changes the formula
EVAL_METHODS = ("_block", "log_block", "profile", "log_profile", "_log_profile", "_xp_block", "_diag")

_TABLE = {}


def register_family(cls, components):
    """Let the compiled paths evaluate the kernel class ``cls``.

    Parameters
    ----------
    cls : subclass of kernelkit.Kernel
        The family. Its own methods stay the reference (NumPy) and the torch
        formula; the entry must describe the same function.
    components : callable
        ``components(kernel) -> list`` of :data:`Component` (name, w, p, q,
        deg) with names from this module's table, or of :data:`Modulated`;
        ``None`` when a particular instance has no compiled form.

    Examples
    --------
    A two-scale Gaussian, ``(phi_sigma + phi_2sigma) / 2``:

    >>> import numpy as np, kernelkit as kk
    >>> from kernelkit.engine import register_family, Component
    >>> from kernelkit.kernels import RadialKernel, NUMPY
    >>> class TwoScale(RadialKernel):
    ...     family = "two_scale"
    ...     def _log_profile(self, r2, xp=NUMPY):
    ...         g = -0.5 / self.bandwidth ** 2
    ...         return xp.log(0.5 * xp.exp(g * r2) + 0.5 * xp.exp(g * r2 / 4))
    >>> register_family(TwoScale, lambda k: [Component("gauss", 0.5, 0.5 / k.bandwidth ** 2, 0.0, 0),
    ...                                      Component("gauss", 0.5, 0.125 / k.bandwidth ** 2, 0.0, 0)])
    >>> X = np.linspace(0, 1, 7)[:, None]
    >>> fused = kk.kernel_sum(TwoScale(0.5), X, X, backend="fused")
    >>> bool(np.allclose(fused, kk.kernel_sum(TwoScale(0.5), X, X, backend="numpy"), rtol=1e-12))
    True
    """
    if not (isinstance(cls, type) and issubclass(cls, Kernel)):
        raise param_error("cls", "register_family", "a subclass of kernelkit.Kernel", cls, kind="type")
    if not callable(components):
        raise param_error("components", "register_family", "a function of the kernel returning a list of "
                          "components", components, kind="type")
    _TABLE[cls] = components


def uses_own_formula(kernel, base):
    """True if ``type(kernel)`` overrides one of EVAL_METHODS of its ancestor ``base``."""
    cls = type(kernel)
    return any(getattr(cls, name, None) is not getattr(base, name, None) for name in EVAL_METHODS)


def _entry(kernel):
    for klass in type(kernel).__mro__:
        if klass in _TABLE:
            return None if uses_own_formula(kernel, klass) else _TABLE[klass]
    return None


def _leaves(kernel):
    """The parts of ``kernel`` once sums and positive scalings are flattened."""
    if type(kernel) is ScaledKernel:
        yield from _leaves(kernel.base)
    elif type(kernel) is SumKernel:
        for k in kernel.kernels:
            yield from _leaves(k)
    else:
        yield kernel


def kernel_distance(kernel):
    """The distance the compiled components of ``kernel`` are functions of.

    Returns
    -------
    {"euclidean", "l1", "mixed"}
        "l1" when every part is a radial kernel of the L1 distance (``distance="l1"``), "mixed" when
        only some are (no compiled path evaluates two distances at once), else "euclidean".
    """
    found = {getattr(k, "distance", "euclidean") for k in _leaves(kernel)}
    if found == {"l1"}:
        return "l1"
    return "mixed" if "l1" in found else "euclidean"


def kernel_components(kernel, scale=1.0, *, distance="euclidean"):
    """``[Component or Modulated, ...]`` with ``kernel = sum of them``, or None.

    Parameters
    ----------
    kernel : Kernel
        Sums and positive scalings are flattened; every other part is looked
        up in the family table.
    scale : float > 0
        Factor applied to every weight (used by the recursion).
    distance : {"euclidean", "l1"}
        The distance r the caller evaluates the components on. A part of
        another distance has no components for it (the kernel-thinning walk,
        which evaluates Euclidean distances only, asks with the default).

    Returns
    -------
    list or None
        None when some part of the kernel has no compiled form (Matern with
        another nu, products, kernels without a table entry, parts of another
        distance).
    """
    if type(kernel) is ScaledKernel:
        return kernel_components(kernel.base, scale * kernel.scale, distance=distance)
    if type(kernel) is SumKernel:
        out = []
        for k in kernel.kernels:
            sub = kernel_components(k, scale, distance=distance)
            if sub is None:
                return None
            out.extend(sub)
        return out
    if getattr(kernel, "distance", "euclidean") != distance:
        return None
    entry = _entry(kernel)
    comps = entry(kernel) if entry is not None else None
    if comps is None:
        return None
    return [c._replace(w=c.w * scale) for c in comps]


# ---- the built-in families ---------------------------------------------------------------

_MATERN = {0.5: "laplace", 1.5: "matern32", 2.5: "matern52"}


def _matern(k):
    if k.nu not in _MATERN:
        return None
    return [Component(_MATERN[k.nu], 1.0, math.sqrt(2 * k.nu) / k.bandwidth, 0.0, 0)]


def _spectral_mixture(k):
    if k.n_features == 1:   # radial in one dimension: exp(-2 pi^2 s^2 r^2) cos(2 pi mu r)
        return [Component("gauss_cos", w, 2 * math.pi ** 2 * s[0] ** 2, abs(mu[0]), 0)
                for w, mu, s in zip(k.weights, k.means, k.scales)]
    return [Modulated(w, tuple(2 * math.pi * v for v in s), mu) for w, mu, s in zip(k.weights, k.means, k.scales)]


register_family(Gaussian, lambda k: [Component("gauss", 1.0, 0.5 / k.bandwidth ** 2, 0.0, 0)])
register_family(Laplace, lambda k: [Component("laplace", 1.0, 1.0 / k.bandwidth, 0.0, 0)])
register_family(Matern, _matern)
register_family(RationalQuadratic, lambda k: [Component("rq", 1.0, k.alpha, 2 * k.alpha * k.bandwidth ** 2, 0)])
register_family(IMQ, lambda k: [Component("rq", 1.0, k.beta, k.bandwidth ** 2, 0)])
register_family(Linear, lambda k: [Component("poly", 1.0, 1.0, k.c, 1)])
register_family(Polynomial, lambda k: [Component("poly", 1.0, k.gamma, k.c, k.degree)])
register_family(Periodic, lambda k: [Component("periodic", 1.0, 1.0 / k.period, 2.0 / k.bandwidth ** 2, 0)])
register_family(SpectralMixture, _spectral_mixture)
register_family(Epanechnikov, lambda k: [Component("epanechnikov", 1.0, 1.0 / k.bandwidth ** 2, 0.0, 1)])
register_family(Biweight, lambda k: [Component("epanechnikov", 1.0, 1.0 / k.bandwidth ** 2, 0.0, 2)])
register_family(Triweight, lambda k: [Component("epanechnikov", 1.0, 1.0 / k.bandwidth ** 2, 0.0, 3)])
register_family(Tophat, lambda k: [Component("tophat", 1.0, 1.0 / k.bandwidth ** 2, 0.0, 0)])
register_family(Triangular, lambda k: [Component("triangular", 1.0, 1.0 / k.bandwidth, 0.0, 0)])
register_family(Cosine, lambda k: [Component("cosine", 1.0, 1.0 / k.bandwidth, 0.0, 0)])


# ---- compiling for the extensions ----------------------------------------------------------

def _header_constants():
    """(code names in code order, component limit) from the C header, via whichever extension is built."""
    import importlib
    for mod in ("kernelkit.engine._fused_ext", "kernelkit.compress._kt_ext"):
        try:
            ext = importlib.import_module(mod)
        except ImportError:  # pragma: no cover - depends on the build
            continue
        return tuple(ext.CODE_NAMES.split()), int(ext.MAX_COMPONENTS)
    return (), 0   # pragma: no cover - nothing compiled: no compiled path asks


#: names of the compiled codes (index = code) and the most components one compiled kernel may have
CODE_NAMES, MAX_COMPONENTS = _header_constants()
_CODES = {name: i for i, name in enumerate(CODE_NAMES)}


def code(name, p):
    """Code of a component; exponents 1/2 and 1 of "rq" use a square root / a division."""
    if name == "rq":
        name = "rq_half" if p == 0.5 else "rq_one" if p == 1.0 else "rq"
    return _CODES[name]


def compile_components(comps, X=None, Y=None):
    """``(codes int32 (c,), params float64 (c, 4))`` for plain components.

    Parameters
    ----------
    comps : list of Component
        At most MAX_COMPONENTS terms (no Modulated ones).
    X, Y : arrays of shape (n, d) and (m, d), optional
        The data (Y defaults to X). Rational-quadratic components whose
        r^2 / q could overflow on them are flagged (deg column = 1: the
        compiled code then takes log(1 + r^2/q) = log r^2 - log q where the
        ratio is infinite).

    Returns
    -------
    codes : int32 array of shape (c,)
    params : float64 array of shape (c, 4)
        Columns w, p, q, deg.
    """
    codes = np.array([code(c.name, c.p) for c in comps], dtype=np.int32)
    params = np.array([(c.w, c.p, c.q, c.deg) for c in comps], dtype=np.float64)
    if X is not None:
        rq = np.array([c.name == "rq" for c in comps])
        if rq.any():
            fmax = float(np.finfo(X.dtype).max)
            with np.errstate(over="ignore", divide="ignore"):
                over = rq & (r2_bound(X, X if Y is None else Y) / params[:, 2] > fmax)
            params[over, 3] = 1.0
    return codes, params
