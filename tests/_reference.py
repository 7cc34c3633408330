"""Reference kernel formulas, reductions and tolerances shared by the tests.

Nothing here imports kernelkit. Every formula is written out from the
conventions in the kernels' docstrings and evaluated in float64, slowly and
plainly, so that it can serve as the oracle for every fast path (dense
blocks, the NumPy, fused and torch backends, the thinning walk).

Kernels are described by plain tuples ("specs"), written by the tests
independently of kernelkit's own ``Kernel.spec`` (r = ||x - y||):

===========================  ===================================================
("gauss", sigma)             exp(-r^2 / (2 sigma^2))
("laplace", ell)             exp(-r / ell)
("matern", nu, ell)          2^(1-nu)/Gamma(nu) s^nu K_nu(s), s = sqrt(2 nu) r / ell
                             (closed forms for nu = 1/2, 3/2, 5/2)
("imq", c, beta)             (1 + r^2 / c^2)^(-beta)
("rq", ell, alpha)           (1 + r^2 / (2 alpha ell^2))^(-alpha)
("periodic", ell, period)    exp(-2 sin^2(pi r / period) / ell^2)   (scikit-learn's ExpSineSquared)
("linear", c)                x . y + c
("poly", degree, gamma, c)   (gamma x . y + c)^degree
("scaled", s, spec)          s k(x, y)
("sum", (spec, ...))         the sum of the kernels
("prod", (spec, ...))        the product of the kernels
===========================  ===================================================

Adding a family is one function and one dict entry: a function of the
squared distance ``r2`` (radial, entry in ``RADIAL``), of the inner product
(dot-product, entry in ``DOT``) or of the difference ``x - y`` (stationary,
entry in ``STATIONARY``), taking the spec's parameters in order. A log form
in ``LOG_RADIAL`` is optional (the log domain falls back to ``log phi``).

Tolerances live in one table, ``TOLERANCES[operation][dtype]``; see
:func:`tol`.
"""

import math

import numpy as np
import scipy.special

# --------------------------------------------------------------------------------------------
# 1. families
# --------------------------------------------------------------------------------------------
# Radial: phi(r2, *params) with k(x, y) = phi(||x - y||^2). Vectorised over r2 (an array or a float).


def gauss(r2, sigma):
    return np.exp(-r2 / (2 * sigma ** 2))


def laplace(r2, ell):
    return np.exp(-np.sqrt(r2) / ell)


def matern_bessel(r2, nu, ell):
    """The Matern definition through scipy.special.kv, for any nu (1 at r = 0)."""
    s = np.asarray(math.sqrt(2 * nu) * np.sqrt(r2) / ell, dtype=np.float64)
    with np.errstate(invalid="ignore", over="ignore"):
        out = 2 ** (1 - nu) / math.gamma(nu) * s ** nu * scipy.special.kv(nu, s)
    return np.where(s == 0, 1.0, out)[()]


def matern(r2, nu, ell):
    s = math.sqrt(2 * nu) * np.sqrt(r2) / ell
    if nu == 0.5:
        return np.exp(-s)
    if nu == 1.5:
        return (1 + s) * np.exp(-s)
    if nu == 2.5:
        return (1 + s + s * s / 3) * np.exp(-s)
    return matern_bessel(r2, nu, ell)


def imq(r2, c, beta):
    return (1 + r2 / c ** 2) ** (-beta)


def rq(r2, ell, alpha):
    return (1 + r2 / (2 * alpha * ell ** 2)) ** (-alpha)


def periodic(r2, ell, period):
    return np.exp(-2 * np.sin(np.pi * np.sqrt(r2) / period) ** 2 / ell ** 2)


RADIAL = {"gauss": gauss, "laplace": laplace, "matern": matern, "imq": imq, "rq": rq, "periodic": periodic}


# Optional log forms log phi(r2, *params), for the log-domain references (log-sum-exp where every
# kernel value underflows float64). A family without one uses log(phi).
def _log_matern(r2, nu, ell):
    s = math.sqrt(2 * nu) * np.sqrt(r2) / ell
    if nu == 0.5:
        return -s
    if nu == 1.5:
        return np.log1p(s) - s
    if nu == 2.5:
        return np.log1p(s + s * s / 3) - s
    with np.errstate(divide="ignore"):
        return np.log(matern_bessel(r2, nu, ell))


LOG_RADIAL = {
    "gauss": lambda r2, sigma: -r2 / (2 * sigma ** 2),
    "laplace": lambda r2, ell: -np.sqrt(r2) / ell,
    "matern": _log_matern,
    "imq": lambda r2, c, beta: -beta * np.log1p(r2 / c ** 2),
    "rq": lambda r2, ell, alpha: -alpha * np.log1p(r2 / (2 * alpha * ell ** 2)),
    "periodic": lambda r2, ell, period: -2 * np.sin(np.pi * np.sqrt(r2) / period) ** 2 / ell ** 2,
}


# Dot-product: f(dot, *params) with k(x, y) = f(x . y). Each is a power series in x . y with
# non-negative coefficients (for the parameters the tests use), so |k(x, y)| <= f(|x| |y|): the
# envelope the tolerances scale with (see envelope_matrix).
def linear(dot, c):
    return dot + c


def poly(dot, degree, gamma, c):
    return (gamma * dot + c) ** degree


DOT = {"linear": linear, "poly": poly}

# Stationary, not radial: f(diff, *params) with k(x, y) = f(x - y), diff of shape (..., d).
STATIONARY = {}


# --------------------------------------------------------------------------------------------
# 2. kernels described by specs
# --------------------------------------------------------------------------------------------
COMBINATORS = ("scaled", "sum", "prod")


def leaves(spec, w=1.0):
    """The leaves of a spec below scalings and sums, with their total scale: [(leaf, w), ...]."""
    if spec[0] == "scaled":
        return leaves(spec[2], w * spec[1])
    if spec[0] == "sum":
        return [leaf for s in spec[1] for leaf in leaves(s, w)]
    return [(spec, w)]


def children(spec):
    """The specs directly below a combinator (empty for a family)."""
    if spec[0] == "scaled":
        return (spec[2],)
    if spec[0] in ("sum", "prod"):
        return tuple(spec[1])
    return ()


def kinds(spec):
    """Every family name in a spec (combinators excluded), as a set."""
    if spec[0] in COMBINATORS:
        return set().union(*(kinds(s) for s in children(spec)))
    return {spec[0]}


def has_dot(spec):
    """True if some component of the kernel is a dot-product family."""
    return bool(kinds(spec) & DOT.keys())


def is_radial(spec):
    """True for a single radial family (no combinator): k(x, x) = 1."""
    return spec[0] in RADIAL


def is_positive(spec):
    """True if every value is > 0 (then log k exists): radial families and their positive scalings,
    sums and products."""
    if spec[0] == "scaled":
        return spec[1] > 0 and is_positive(spec[2])
    if spec[0] in ("sum", "prod"):
        return all(is_positive(s) for s in spec[1])
    return spec[0] in RADIAL


def radial_value(leaf, r2):
    """phi(r2) of a radial leaf, straight from the formula (float64)."""
    return RADIAL[leaf[0]](r2, *leaf[1:])


def radial_log(leaf, r2):
    """log phi(r2) of a radial leaf (float64), from its log form where it has one."""
    f = LOG_RADIAL.get(leaf[0])
    if f is not None:
        return f(r2, *leaf[1:])
    with np.errstate(divide="ignore"):
        return np.log(radial_value(leaf, r2))


def k_scalar(spec, x, y):
    """k(x, y) for two points given as sequences of Python floats, straight from the formulas."""
    kind = spec[0]
    if kind == "scaled":
        return spec[1] * k_scalar(spec[2], x, y)
    if kind == "sum":
        return sum(k_scalar(s, x, y) for s in spec[1])
    if kind == "prod":
        return math.prod(k_scalar(s, x, y) for s in spec[1])
    if kind in RADIAL:
        return float(RADIAL[kind](sum((a - b) ** 2 for a, b in zip(x, y)), *spec[1:]))
    if kind in DOT:
        return float(DOT[kind](sum(a * b for a, b in zip(x, y)), *spec[1:]))
    if kind in STATIONARY:
        return float(STATIONARY[kind](np.subtract(x, y), *spec[1:]))
    raise KeyError(f"no reference formula for the family {kind!r}")


def double_loop_matrix(spec, X, Y):
    """K[i, j] = k(X[i], Y[j]) by a double loop over Python floats, shape (n, m)."""
    Xl = np.asarray(X, dtype=np.float64).tolist()
    Yl = np.asarray(Y, dtype=np.float64).tolist()
    K = [[k_scalar(spec, x, y) for y in Yl] for x in Xl]
    return np.array(K, dtype=np.float64).reshape(len(Xl), len(Yl))


def sqdist(X, Y):
    """Squared distances from exact coordinate differences, float64, shape (n, m)."""
    X = np.asarray(X, dtype=np.float64)
    Y = np.asarray(Y, dtype=np.float64)
    return ((X[:, None, :] - Y[None, :, :]) ** 2).sum(-1)


def k_matrix(spec, X, Y):
    """Vectorised float64 K[i, j] = k(X[i], Y[j]); radial leaves through their log form, so that it is
    an independent check of (and is checked against) the double loop."""
    kind = spec[0]
    X = np.asarray(X, dtype=np.float64)
    Y = np.asarray(Y, dtype=np.float64)
    if kind == "scaled":
        return spec[1] * k_matrix(spec[2], X, Y)
    if kind == "sum":
        return sum(k_matrix(s, X, Y) for s in spec[1])
    if kind == "prod":
        return np.prod([k_matrix(s, X, Y) for s in spec[1]], axis=0)
    if kind in RADIAL:
        return np.exp(radial_log(spec, sqdist(X, Y)))
    if kind in DOT:
        return DOT[kind](X @ Y.T, *spec[1:])
    if kind in STATIONARY:
        return STATIONARY[kind](X[:, None, :] - Y[None, :, :], *spec[1:])
    raise KeyError(f"no reference formula for the family {kind!r}")


def log_k_matrix(spec, X, Y):
    """log K[i, j] without leaving the log domain: a radial leaf, possibly scaled (else log of
    the positive kernel's values)."""
    if spec[0] == "scaled" and spec[1] > 0:
        return math.log(spec[1]) + log_k_matrix(spec[2], X, Y)
    if spec[0] in RADIAL:
        return radial_log(spec, sqdist(X, Y))
    assert is_positive(spec), f"log k is not defined for {spec}"
    with np.errstate(divide="ignore"):
        return np.log(k_matrix(spec, X, Y))


def envelope_matrix(spec, X, Y):
    """A bound on |k(X[i], Y[j])| that the rounding errors of a fast path scale with: |k| itself for
    radial and stationary families, f(|x| |y|) for dot-product ones (x . y may cancel)."""
    kind = spec[0]
    X = np.asarray(X, dtype=np.float64)
    Y = np.asarray(Y, dtype=np.float64)
    if kind == "scaled":
        return abs(spec[1]) * envelope_matrix(spec[2], X, Y)
    if kind == "sum":
        return sum(envelope_matrix(s, X, Y) for s in spec[1])
    if kind == "prod":
        return np.prod([envelope_matrix(s, X, Y) for s in spec[1]], axis=0)
    if kind in DOT:
        nrm = np.sqrt((X ** 2).sum(1))[:, None] * np.sqrt((Y ** 2).sum(1))[None, :]
        return DOT[kind](nrm, *spec[1:])
    return np.abs(k_matrix(spec, X, Y))


# --------------------------------------------------------------------------------------------
# 3. reductions in float64
# --------------------------------------------------------------------------------------------
def kernel_sum(spec, X, Y, W=None, loop=False):
    """out[j, :] = sum_i k(X[i], Y[j]) W[i, :] (W of shape (n,) or (n, p); None: ones), float64.
    ``loop=True`` evaluates k by the double loop."""
    K = double_loop_matrix(spec, X, Y) if loop else k_matrix(spec, X, Y)
    W = np.ones(K.shape[0]) if W is None else np.asarray(W, dtype=np.float64)
    return K.T @ W


def kernel_logsumexp(spec, X, Y, LW):
    """out[j, :] = log sum_i k(X[i], Y[j]) exp(LW[i, :]) in the log domain (LW of shape (n,) or (n, p))."""
    L = log_k_matrix(spec, X, Y)  # (n, m)
    LW = np.asarray(LW, dtype=np.float64)
    if LW.ndim == 1:
        return scipy.special.logsumexp(L + LW[:, None], axis=0)
    return np.stack([scipy.special.logsumexp(L + LW[:, q][:, None], axis=0) for q in range(LW.shape[1])], axis=1)


def topk(K, k):
    """Per query (column of the (n, m) matrix K): the k largest values and their indices, ties by the
    smaller index. Returns (values, indices), each of shape (m, k)."""
    n, m = K.shape
    idx = np.empty((m, k), dtype=np.int64)
    for j in range(m):
        idx[j] = sorted(range(n), key=lambda i: (-K[i, j], i))[:k]
    return np.take_along_axis(K.T, idx, axis=1), idx


# --------------------------------------------------------------------------------------------
# 4. tolerances, per operation and dtype
# --------------------------------------------------------------------------------------------
#: relative tolerances of the fast paths against the float64 references above: operation -> dtype -> rtol
TOLERANCES = {
    # engine sums: |got - ref| <= SAFETY * tol * sum_i |W_i| envelope(x_i, y_j)
    "sum": {"float32": 1e-5, "float64": 1e-12},
    # log-sum-exp: relative to the result (or to 1 + |result| + the largest |log weight|)
    "logsumexp": {"float32": 1e-5, "float64": 1e-12},
    # top-k values, relative
    "topk": {"float32": 1e-5, "float64": 1e-12},
    # dense blocks k(X, Y) of kernelkit.kernels against the formulas, relative and absolute
    "block": {"float32": 2e-5, "float64": 1e-12},
    # two float64 evaluations of the same reference (double loop vs vectorised), relative
    "reference": {"float64": 1e-13},
}
#: slack on the tolerance (float32 accumulation over a tile row, parameter rounding)
SAFETY = 4.0


def tol(op, dtype):
    """The relative tolerance of operation ``op`` in ``dtype`` (np.float32, np.float64 or a dtype)."""
    return TOLERANCES[op][np.dtype(dtype).name]
