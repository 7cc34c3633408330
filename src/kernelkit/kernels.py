"""Kernels: small immutable objects that say what k(x, y) is.

A kernel holds parameters, never data. Every kernel offers

* ``k(X, Y)``: the dense matrix ``K[i, j] = k(X[i], Y[j])`` of shape (n, m),
  for small inputs (large sums go through :mod:`kernelkit.engine`);
* ``k.diag(X)``: ``k(X[i], X[i])`` for every row;
* ``k.spec``: a hashable description ``(family, params)`` the engine compiles.

Radial kernels ``k(x, y) = phi(||x - y||)`` (all with ``phi(0) = 1``) also
offer ``log_integral(d)`` (log of the integral over R^d, for normalised
densities), ``sample_density(n, d, random_state)`` (draws from ``phi(||x||) / integral``),
and, where the spectral density is known, ``spectral_sample(d, D, random_state)``
(frequencies ``w`` with ``k(x, y) = E[cos(w^T (x - y))]``) and
``power(alpha, d)`` (the alpha-power kernel of Generalized Kernel Thinning,
whose Fourier transform is the alpha-th power of k's, rescaled so that
``phi(0) = 1``).

Bandwidths are in the units of the data. Conventions (r = ||x - y||):

=====================  =====================================================
Gaussian(sigma)        exp(-r^2 / (2 sigma^2))
Laplace(ell)           exp(-r / ell)
Matern(nu, ell)        2^(1-nu)/Gamma(nu) (sqrt(2 nu) r/ell)^nu K_nu(sqrt(2 nu) r/ell)
IMQ(c, beta=1/2)       (1 + r^2 / c^2)^(-beta)
RationalQuadratic      (1 + r^2 / (2 alpha ell^2))^(-alpha)
Periodic(ell, p)       exp(-2 sin^2(pi r / p) / ell^2)
SpectralMixture        sum_q w_q exp(-2 pi^2 |s_q * (x - y)|^2) cos(2 pi mu_q . (x - y))
Linear(c=0)            x . y + c
Polynomial             (gamma x . y + c)^degree
Epanechnikov(h)        (1 - r^2 / h^2)   for r < h, else 0
Biweight(h)            (1 - r^2 / h^2)^2 for r < h, else 0 (quartic)
Triweight(h)           (1 - r^2 / h^2)^3 for r < h, else 0
Tophat(h)              1 for r < h, else 0
Triangular(h)          1 - r / h         for r < h, else 0
Cosine(h)              cos(pi r / (2 h)) for r < h, else 0
=====================  =====================================================

The compactly supported kernels (the last six) are zero outside the ball of
radius h: log k = -inf there, which the log-domain engine handles exactly.
They are normalisable in every dimension (``log_integral``) and samplable; in
d >= 2 they need not be positive definite, so they serve densities,
similarities and mean shift, not methods that need a positive semi-definite
Gram matrix.

Usable ranges. Every radial kernel takes a bandwidth in [1e-150, 1e150]
(data units), so that 1 / (2 sigma^2), 1 / ell and the other constants the
engine multiplies by are finite normal float64 numbers; the scales that
combine two parameters (lambda = sqrt(2 nu) / ell of the Matern kernel,
c = sqrt(2 alpha) ell of the rational quadratic, c / sqrt(2 beta) of the
IMQ) must be in [1e-152, 1e152], and a Matern smoothness other than 1/2,
3/2, 5/2 must be at most 100.
Outside these ranges the constructors raise InvalidValueError; rescale the
data instead. float32 inputs whose kernel constants (or squared distances)
do not fit float32 are evaluated in float64 and returned as float32.
"""

from __future__ import annotations

import functools
import math
import numbers

import numpy as np

from ._random import UNSET, generator, resolve_seed_alias
from ._validation import check_pair, check_points, check_positive, check_int, kernel_bandwidth_error, param_error
from ._xp import NUMPY
from .exceptions import InvalidTypeError, InvalidValueError, NotSupportedError

__all__ = [
    "Kernel", "RadialKernel", "Gaussian", "Laplace", "Matern", "IMQ", "RationalQuadratic",
    "Linear", "Polynomial", "Periodic", "SpectralMixture", "SumKernel", "ScaledKernel", "ProductKernel",
    "make_kernel",
    "Epanechnikov", "Biweight", "Triweight", "Tophat", "Triangular", "Cosine", "CompactKernel",
    "sqdist", "l1dist", "DISTANCES", "KERNEL_NAMES",
]

#: the distances a radial kernel can be a function of (``distance=`` of Gaussian, Laplace, Matern, RQ, IMQ)
DISTANCES = ("euclidean", "l1")


#: usable range of every radial bandwidth (data units); see the module docstring
BANDWIDTH_RANGE = (1e-150, 1e150)
#: usable range of the length scales (and inverse length scales) derived from two parameters
DERIVED_RANGE = (1e-152, 1e152)
#: largest Matern smoothness evaluated through Bessel functions (other than 1/2, 3/2, 5/2)
MATERN_NU_MAX = 100.0
_F64 = np.finfo(np.float64)
_F32_MAX = float(np.finfo(np.float32).max)


def _check_bandwidth(value, owner, name="bandwidth"):
    """A length scale in BANDWIDTH_RANGE (returned as float)."""
    v = check_positive(value, name, owner)
    lo, hi = BANDWIDTH_RANGE
    if not lo <= v <= hi:
        raise param_error(name, owner, f"in [{lo:g}, {hi:g}]", value,
                          hint="Outside it the kernel's constants, such as 1 / (2 bandwidth^2), overflow or "
                               "underflow float64; rescale the data instead.")
    return v


def _check_scale_param(value, name, owner, what, lo, hi):
    """Raise unless ``lo <= value <= hi``: ``value`` (parameter ``name``) keeps the derived
    length scale ``what`` in DERIVED_RANGE."""
    if lo <= value <= hi:
        return value
    lo_s = f"[{lo:.3g}" if lo > 0 else "(0"
    raise InvalidValueError(
        f"The {name!r} parameter of {owner} must keep {what} in [{DERIVED_RANGE[0]:g}, {DERIVED_RANGE[1]:g}] "
        f"(so that its square is a normal float64), that is {name} in {lo_s}, {hi:.3g}] with the other "
        f"parameters given. Got {value!r}.")


_LIMITS = {np.dtype(t): (float(np.finfo(t).tiny), float(np.finfo(t).max)) for t in (np.float32, np.float64)}


def _fits(value, dtype, margin=0):
    """True if ``value`` is 0 or a finite normal number of ``dtype``, ``2^margin`` inside its range."""
    tiny, fmax = _LIMITS[np.dtype(dtype)]
    a = abs(float(value))
    return a == 0 or math.ldexp(tiny, margin) <= a <= math.ldexp(fmax, -margin)


def r2_bound(X, Y, distance="euclidean"):
    """An upper bound on every squared distance r(X[i], Y[j])^2 (a float), with s = max - min over all
    coordinates: d s^2 for the Euclidean distance, (d s)^2 for the L1 distance."""
    span = max(float(X.max()), float(Y.max())) - min(float(X.min()), float(Y.min()))
    d = X.shape[1]
    return (d * d if distance == "l1" else d) * span * span


def fits_float32(kernel, X, Y):
    """True if ``kernel`` can be evaluated on the float32 arrays X, Y in float32 without overflow.

    False when a kernel constant is not well inside the normal float32 range
    (1 / (2 sigma^2) above 3.4e38 for sigma below 3.8e-20, for instance, makes
    0 * inf = NaN at r = 0; see ``Kernel._fits_dtype``), when squared
    distances could overflow float32, or when r^2 / c^2 could (rational
    quadratic). Callers then compute in float64 and round the result to
    float32.
    """
    if not all(_fits(c, np.float32, margin=26) for c in kernel._dtype_constants()):
        return False   # (decided without a pass over the data)
    r2max = r2_bound(X, Y, getattr(kernel, "distance", "euclidean"))
    return r2max <= _F32_MAX / 4 and kernel._fits_dtype(np.float32, r2max)


def sqdist(X, Y):
    """Squared Euclidean distances ``D[i, j] = ||X[i] - Y[j]||^2`` (dense).

    Computed as ``|x|^2 + |y|^2 - 2 x.y`` after centring both sets on the mean
    of ``X`` (which removes most of the cancellation), clipped at 0; when
    ``Y is X`` the diagonal is exactly 0.

    Parameters
    ----------
    X, Y : arrays of shape (n, d) and (m, d)
        Already validated arrays of one dtype.
    """
    c = X.mean(axis=0, dtype=np.float64).astype(X.dtype)
    Xc = X - c
    Yc = Y - c
    with np.errstate(over="ignore"):
        x2 = np.einsum("ij,ij->i", Xc, Xc)
        y2 = np.einsum("ij,ij->i", Yc, Yc)
    quarter = np.finfo(X.dtype).max / 4
    if not (x2.max(initial=0) <= quarter and y2.max(initial=0) <= quarter):
        # |x|^2 + |y|^2 - 2 x.y would overflow (inf - inf = NaN): evaluate on the data
        # scaled by a power of two (exact), then scale back (true distances above the
        # largest float become inf)
        k = int(np.frexp(max(np.abs(X).max(), np.abs(Y).max()))[1])
        Xs = np.ldexp(X, -k).astype(X.dtype, copy=False)
        D = sqdist(Xs, Xs if Y is X else np.ldexp(Y, -k).astype(X.dtype, copy=False))
        with np.errstate(over="ignore"):
            return np.ldexp(D, 2 * k).astype(X.dtype, copy=False)
    D = Xc @ Yc.T
    D *= -2
    D += x2[:, None]
    D += y2[None, :]
    np.maximum(D, 0, out=D)
    if X is Y:  # exact zeros on the diagonal (the Gram trick leaves ~eps |x|^2 there)
        np.fill_diagonal(D, 0)
    return D


def l1dist(X, Y):
    """L1 (Manhattan) distances ``D[i, j] = sum_k |X[i, k] - Y[j, k]|`` (dense, exact differences).

    Computed by :func:`scipy.spatial.distance.cdist` in float64 (no n x m x d temporary), returned in
    the dtype of X.

    Parameters
    ----------
    X, Y : arrays of shape (n, d) and (m, d)
        Already validated arrays of one dtype.
    """
    from scipy.spatial.distance import cdist
    with np.errstate(over="ignore"):
        return cdist(X, Y, "cityblock").astype(X.dtype, copy=False)


def _check_distance(value, owner):
    if value not in DISTANCES:
        raise param_error("distance", owner, f"one of {{{', '.join(map(repr, DISTANCES))}}}", value)
    return value


def _euclidean_only(method):
    """Decorator: the method (a spectral density, a power kernel, a normalising constant, a sampler) is
    known for the Euclidean form of the kernel only; on ``distance="l1"`` it raises NotSupportedError."""
    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        if self.distance != "euclidean":
            raise NotSupportedError(f"{method.__name__} is only available for kernels of the Euclidean distance; "
                                    f"{self!r} is a function of the {self.distance.upper()} distance.")
        return method(self, *args, **kwargs)
    return wrapper


class _FrozenAfterInit(type):
    """Metaclass: an instance becomes immutable once its construction ends.

    ``Cls(...)`` runs the whole ``__init__`` chain (subclasses may call
    ``super().__init__`` and set attributes freely), then freezes the object;
    afterwards ``Kernel.__setattr__`` raises AttributeError.
    """

    def __call__(cls, *args, **kwargs):
        obj = super().__call__(*args, **kwargs)
        obj._freeze()
        return obj


class Kernel(metaclass=_FrozenAfterInit):
    """Base class. Subclasses implement ``_block(X, Y)`` on validated arrays.

    Kernels are immutable: setting an attribute after construction raises
    AttributeError (build a new kernel instead).
    """

    #: name of the family, used by the engine and in error messages
    family = "kernel"
    #: True if the kernel is k(x, y) = phi(||x - y||)
    is_radial = False
    #: True if every value is >= 0 and log k is defined (-inf where k = 0: the compactly supported
    #: kernels), so kernel_logsumexp applies; radial kernels, their sums, products and positive scalings
    is_positive = False
    #: True if k(x, y) depends on x - y only (then the engine may centre the data)
    is_stationary = False

    # --- public API -----------------------------------------------------
    def __call__(self, X, Y=None):
        """Dense kernel matrix ``K[i, j] = k(X[i], Y[j])``, shape (n, m).

        ``Y=None`` means ``Y = X``. Use the engine (``kernel_block``) when the
        matrix may not fit in memory: this method does not tile.
        """
        if Y is None:
            X = check_points(X, "X", type(self).__name__)
            Y = X
        else:
            X, Y = check_pair(X, Y, owner=type(self).__name__)
        return self._block(X, Y)

    def diag(self, X):
        """``k(X[i], X[i])`` for every row of X, shape (n,)."""
        X = check_points(X, "X", type(self).__name__ + ".diag")
        return self._diag(X)

    @property
    def spec(self):
        """Hashable ``(family, params)`` description compiled by the engine."""
        return (self.family, tuple(sorted(self._params().items())))

    def log_block(self, X, Y):
        """``log k(X[i], Y[j])`` for positive kernels (validated arrays)."""
        if not self.is_positive:
            raise InvalidTypeError(
                f"log k is only defined for positive kernels; {self!r} can be zero or negative.")
        return np.log(self._block(X, Y))

    # --- combinators ----------------------------------------------------
    def __add__(self, other):
        if not isinstance(other, Kernel):
            return NotImplemented
        return SumKernel(self, other)

    def __mul__(self, other):
        if isinstance(other, Kernel):
            return ProductKernel(self, other)
        if isinstance(other, numbers.Real) and not isinstance(other, bool):
            return ScaledKernel(self, other)
        return NotImplemented

    __rmul__ = __mul__

    # --- plumbing -------------------------------------------------------
    def _params(self):
        return {}

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self._params().items())
        return f"{type(self).__name__}({args})"

    def __eq__(self, other):
        return type(self) is type(other) and self.spec == other.spec

    def __hash__(self):
        return hash((type(self).__name__, self.spec))

    def __setattr__(self, name, value):
        if getattr(self, "_frozen", False):
            raise AttributeError(f"{type(self).__name__} is immutable; create a new kernel instead.")
        object.__setattr__(self, name, value)

    def _freeze(self):
        object.__setattr__(self, "_frozen", True)

    def _diag(self, X):
        return np.array([self._block(x[None], x[None])[0, 0] for x in X], dtype=X.dtype)

    def _xp_block(self, X, Y, xp, log=False):
        """The dense block (or its log) on arrays of the namespace ``xp`` (see :mod:`kernelkit._xp`).

        The torch backend evaluates kernels through this method, on centred
        data when the kernel is stationary. A kernel that only defines
        ``_block`` (NumPy) does not run on torch.
        """
        raise NotSupportedError(f"{self!r} has no formula for array namespaces other than NumPy (it defines "
                                "only _block); use backend='numpy' or 'auto', or define "
                                "_xp_block(X, Y, xp, log=False).")

    def _check_features(self, d, owner):
        """Raise unless the kernel accepts points with ``d`` features (most kernels take any d)."""

    def _dtype_constants(self):
        """Constants the evaluation multiplies or divides by (each must be 0 or a normal float of the working dtype)."""
        return ()

    def _r2_scales(self):
        """Squared length scales q of the ratios r^2 / q the evaluation forms (which must not overflow)."""
        return ()

    def _fits_dtype(self, dtype, r2max):
        """True if evaluating in ``dtype`` with squared distances up to ``r2max`` cannot overflow.

        The constants must be 2^26 inside the normal range of ``dtype``
        ([7.9e-31, 5.1e30] for float32), so that the distances at which the
        kernel varies are normal numbers too (a Gaussian sigma of 1e-16 has
        1 / (2 sigma^2) = 5e31, and squared distances near sigma^2 = 1e-32
        would be float32 subnormals with few significant bits).
        """
        if not all(_fits(c, dtype, margin=26) for c in self._dtype_constants()):
            return False
        fmax = float(np.finfo(dtype).max)
        return all(r2max / q <= fmax for q in self._r2_scales())

    def _not_supported(self, what):
        return NotSupportedError(f"{what} is not available for {self!r}.")

    def spectral_sample(self, d, D, random_state=None, *, rng=UNSET):
        """D frequencies ``w`` in R^d with ``k(x, y) / k(0) = E[cos(w^T (x - y))]``, shape (D, d).

        ``random_state``: None, an int >= 0, a SeedSequence or a Generator
        (used as is); ``rng`` is its deprecated alias.
        """
        raise self._not_supported("spectral_sample (no known spectral density)")

    def power(self, alpha, d=None):
        """The alpha-power kernel of Generalized Kernel Thinning (Fourier transform to the power alpha)."""
        raise self._not_supported("power (Generalized Kernel Thinning power kernel)")

    def log_integral(self, d):
        """log of the integral of k(x, 0) over R^d (normalising constant of the kernel as a density)."""
        raise self._not_supported("log_integral (a normalised density)")

    def sample_density(self, n, d, random_state=None, *, rng=UNSET):
        """n draws in R^d from the density phi(||x||) / integral (``random_state`` as in spectral_sample)."""
        raise self._not_supported("sample_density (drawing from the kernel as a density)")


class RadialKernel(Kernel):
    """k(x, y) = phi(r(x, y)) with phi(0) = 1; subclasses define phi.

    Parameters
    ----------
    bandwidth : float in [1e-150, 1e150]
        Length scale, in the units of the data.
    distance : {"euclidean", "l1"}
        The distance r: Euclidean ``||x - y||_2`` (default), or L1 (Manhattan) ``||x - y||_1``
        (then ``Laplace(h, distance="l1")`` is the product of one-dimensional Laplace kernels,
        exp(-sum_k |x_k - y_k| / h)). The profile phi is the same function of r; the engine's
        fused, NumPy and torch backends all honour the distance. An L1 kernel other than the Laplace
        (and Matern nu = 1/2) one need not be positive definite in d >= 2 (the Gaussian of the L1
        distance is not): fine for similarities and top-k, not for methods that need a Gram matrix
        to be positive semi-definite. Spectral densities, power kernels and normalising constants are
        defined for the Euclidean form only.
    """

    is_radial = True
    is_positive = True
    is_stationary = True

    def __init__(self, bandwidth=1.0, *, distance="euclidean"):
        self.bandwidth = _check_bandwidth(bandwidth, type(self).__name__)
        self.distance = _check_distance(distance, type(self).__name__)

    def _params(self):
        return {"bandwidth": self.bandwidth, **self._distance_param()}

    def _distance_param(self):
        """``{"distance": "l1"}`` for an L1 kernel, else {} (Euclidean kernels keep their spec and repr)."""
        return {} if self.distance == "euclidean" else {"distance": self.distance}

    def _dist2(self, X, Y, xp=NUMPY):
        """Squared distances r(X[i], Y[j])^2 of this kernel's distance, on arrays of ``xp``."""
        if self.distance == "l1":
            D = xp.l1dist(X, Y)
            return D * D
        return xp.sqdist(X, Y)

    def _working_r2(self, r2):
        """(r2, upcast): float32 ``r2`` becomes float64 when the kernel's constants do not fit float32."""
        r2 = np.asarray(r2)
        if r2.dtype == np.float32 and r2.size and not self._fits_dtype(
                np.float32, float(r2.max()) if self._r2_scales() else 0.0):
            return r2.astype(np.float64), True
        return r2, False

    def profile(self, r2):
        """phi as a function of the squared distance ``r2`` (array, any shape).

        float32 ``r2`` is evaluated in float64 (and the result rounded to
        float32) when the kernel's constants do not fit float32.
        """
        r2, up = self._working_r2(r2)
        if up:
            with np.errstate(over="ignore"):
                return np.exp(self.log_profile(r2)).astype(np.float32)
        return np.exp(self.log_profile(r2))

    def log_profile(self, r2):
        """log phi as a function of the squared distance ``r2`` (float32 as in :meth:`profile`)."""
        r2, up = self._working_r2(r2)
        if up:
            with np.errstate(over="ignore"):
                return self._log_profile(r2).astype(np.float32)
        return self._log_profile(r2)

    def _log_profile(self, r2, xp=NUMPY):
        """log phi(r2) on an array of squared distances, written with the functions of ``xp``
        (NumPy or torch: the one formula every backend evaluates)."""
        raise NotImplementedError

    def _xp_block(self, X, Y, xp, log=False):
        lg = self._log_profile(self._dist2(X, Y, xp), xp)
        return lg if log else xp.exp(lg)

    def _as_working(self, X, Y):
        """(X, Y, upcast): float32 inputs whose evaluation would overflow float32 become float64."""
        if X.dtype == np.float32 and not fits_float32(self, X, Y):
            X64 = X.astype(np.float64)
            return X64, (X64 if Y is X else Y.astype(np.float64)), True
        return X, Y, False

    def _block(self, X, Y):
        Xw, Yw, up = self._as_working(X, Y)
        with np.errstate(over="ignore" if up else None):
            return self.profile(self._dist2(Xw, Yw)).astype(X.dtype, copy=False)

    def log_block(self, X, Y):
        Xw, Yw, up = self._as_working(X, Y)
        with np.errstate(over="ignore" if up else None):
            return self.log_profile(self._dist2(Xw, Yw)).astype(X.dtype, copy=False)

    def _diag(self, X):
        return np.ones(X.shape[0], dtype=X.dtype)

    def _check_d(self, d, what):
        return check_int(d, "d", f"{type(self).__name__}.{what}", low=1)


def _rng(random_state, rng=UNSET, owner="a kernel's sampler"):
    """A Generator from ``random_state`` (a Generator is used as is; ``rng`` is the deprecated alias)."""
    return generator(resolve_seed_alias(random_state, rng, owner, alias="rng"), owner)


def _uniform_directions(n, d, rng):
    z = rng.standard_normal((n, d))
    nrm = np.linalg.norm(z, axis=1, keepdims=True)
    nrm[nrm == 0] = 1.0
    return z / nrm


class Gaussian(RadialKernel):
    r"""Gaussian (RBF) kernel :math:`k(x, y) = \exp(-\|x - y\|^2 / (2\sigma^2))`.

    Parameters
    ----------
    bandwidth : float in [1e-150, 1e150]
        sigma, in the units of the data (standard deviation of the kernel
        seen as a density). goodpoints' ``var`` is sigma^2; scikit-learn's
        ``gamma`` is 1 / (2 sigma^2).
    distance : {"euclidean", "l1"}, default "euclidean"
        The distance r the kernel is a function of (see :class:`RadialKernel`).

    Notes
    -----
    Integral over R^d: (2 pi sigma^2)^(d/2). Spectral density: N(0, I / sigma^2).
    alpha-power kernel: Gaussian with variance alpha sigma^2 (root: sigma^2 / 2).
    """

    family = "gaussian"

    def _log_profile(self, r2, xp=NUMPY):
        return r2 * (-0.5 / self.bandwidth ** 2)

    def _dtype_constants(self):
        return (0.5 / self.bandwidth ** 2,)

    @_euclidean_only
    def log_integral(self, d):
        """log of (2 pi sigma^2)^(d/2)."""
        d = self._check_d(d, "log_integral")
        return 0.5 * d * math.log(2 * math.pi * self.bandwidth ** 2)

    @_euclidean_only
    def sample_density(self, n, d, random_state=None, *, rng=UNSET):
        return _rng(random_state, rng, "Gaussian.sample_density").standard_normal((n, d)) * self.bandwidth

    @_euclidean_only
    def spectral_sample(self, d, D, random_state=None, *, rng=UNSET):
        """D frequencies in R^d from N(0, I / sigma^2), shape (D, d)."""
        return _rng(random_state, rng, "Gaussian.spectral_sample").standard_normal((D, d)) / self.bandwidth

    @_euclidean_only
    def power(self, alpha, d=None):
        """Gaussian with variance alpha * sigma^2 (any dimension)."""
        alpha = check_positive(alpha, "alpha", "Gaussian.power")
        return Gaussian(self.bandwidth * math.sqrt(alpha))


class Matern(RadialKernel):
    r"""Matern kernel with smoothness nu and length scale ell.

    .. math:: k(r) = \frac{2^{1-\nu}}{\Gamma(\nu)} (\sqrt{2\nu} r/\ell)^\nu K_\nu(\sqrt{2\nu} r/\ell)

    nu = 1/2, 3/2, 5/2 use the closed forms exp(-s), (1 + s) exp(-s) and
    (1 + s + s^2/3) exp(-s) with s = sqrt(2 nu) r / ell; other nu use
    ``scipy.special.kve``.

    Parameters
    ----------
    nu : float > 0
        Smoothness (sample paths are ceil(nu) - 1 times differentiable).
        At most 100 unless it is 1/2, 3/2 or 5/2 (for larger nu the kernel
        is within O(1/nu) of the Gaussian with the same bandwidth; use it),
        and such that lambda = sqrt(2 nu) / ell is in [1e-152, 1e152].
    bandwidth : float in [1e-150, 1e150]
        Length scale ell, in the units of the data.
    distance : {"euclidean", "l1"}, default "euclidean"
        The distance r the kernel is a function of (see :class:`RadialKernel`).

    Notes
    -----
    With lambda = sqrt(2 nu) / ell, the spectral density is a multivariate t
    with 2 nu degrees of freedom and scale 1/ell; the Fourier transform is
    proportional to :math:`(\lambda^2 + \|w\|^2)^{-(\nu + d/2)}`. The integral over R^d
    is 2^d pi^(d/2) Gamma(nu + d/2) / (Gamma(nu) lambda^d). The alpha-power
    kernel (Generalized Kernel Thinning; GKT writes it "Matern(nu) -> alpha nu"
    in its Fourier-exponent convention nu_GKT = nu + d/2) is the Matern with
    nu' = alpha (nu + d/2) - d/2 and the same lambda; it exists when nu' > 0.
    """

    family = "matern"

    def __init__(self, nu=1.5, bandwidth=1.0, *, distance="euclidean"):
        self.nu = check_positive(nu, "nu", "Matern")
        super().__init__(bandwidth, distance=distance)
        if self.nu not in _MATERN_CLOSED and self.nu > MATERN_NU_MAX:
            raise InvalidValueError(
                f"The 'nu' parameter of Matern must be <= {MATERN_NU_MAX:g} unless it is 0.5, 1.5 or 2.5 "
                f"(the Bessel function K_nu overflows; for large nu the Matern kernel is within O(1/nu) of "
                f"the Gaussian with the same bandwidth: use Gaussian(bandwidth)). Got {nu!r}.")
        lo, hi = DERIVED_RANGE
        ell2 = self.bandwidth ** 2
        _check_scale_param(self.nu, "nu", "Matern", "lambda = sqrt(2 nu) / bandwidth",
                           (lo * lo) * ell2 / 2, (hi * hi) * ell2 / 2)

    def _params(self):
        return {"nu": self.nu, "bandwidth": self.bandwidth, **self._distance_param()}

    @property
    def _lambda(self):
        return math.sqrt(2 * self.nu) / self.bandwidth

    def _dtype_constants(self):
        return (self._lambda, self._lambda ** 2)   # (s^2 = lambda^2 r^2: squared distances near 1 / lambda^2)

    def _log_profile(self, r2, xp=NUMPY):
        if xp is NUMPY:
            r2 = np.asarray(r2, dtype=np.float64)
        s = xp.sqrt(r2) * self._lambda
        nu = self.nu
        if nu == 0.5:
            return -s
        # s above 1e100 (1e15 in float32): log(1 + s + s^2/3) is below ulp(s), and s^2 may overflow
        sc = xp.minimum(s, 1e15 if xp.is_single(s) else 1e100)
        if nu == 1.5:
            return xp.log1p(sc) - s
        if nu == 2.5:
            return xp.log1p(sc + sc * sc / 3.0) - s
        if xp is not NUMPY:
            raise NotSupportedError(f"{self!r}: a Matern smoothness other than 1/2, 3/2, 5/2 is evaluated with "
                                    "scipy's Bessel functions, on NumPy arrays only; use backend='numpy' or 'auto'.")
        return _matern_log_general(nu, s)

    @_euclidean_only
    def log_integral(self, d):
        """log of 2^d pi^(d/2) Gamma(nu + d/2) / (Gamma(nu) lambda^d)."""
        d = self._check_d(d, "log_integral")
        from scipy.special import gammaln
        nu = self.nu
        return (d * math.log(2) + 0.5 * d * math.log(math.pi) + gammaln(nu + d / 2) - gammaln(nu)
                - d * math.log(self._lambda))

    @_euclidean_only
    def sample_density(self, n, d, random_state=None, *, rng=UNSET):
        # A Matern profile is a normal variance mixture: x = sqrt(W) z with
        # W ~ Gamma(shape nu + d/2, scale 2 / lambda^2).
        rng = _rng(random_state, rng, f"{type(self).__name__}.sample_density")
        w = rng.gamma(self.nu + d / 2, 2.0 / self._lambda ** 2, size=(n, 1))
        return np.sqrt(w) * rng.standard_normal((n, d))

    @_euclidean_only
    def spectral_sample(self, d, D, random_state=None, *, rng=UNSET):
        """D frequencies: multivariate t, 2 nu degrees of freedom, scale 1/ell."""
        rng = _rng(random_state, rng, f"{type(self).__name__}.spectral_sample")
        chi2 = np.maximum(rng.chisquare(2 * self.nu, size=(D, 1)), _F64.tiny)  # (a small nu can draw 0)
        return rng.standard_normal((D, d)) * np.sqrt(2 * self.nu / chi2) / self.bandwidth

    @_euclidean_only
    def power(self, alpha, d=None):
        """alpha-power kernel: Matern(nu' = alpha (nu + d/2) - d/2, same lambda).

        ``d`` (the dimension of the data) is required. Raises ValueError when
        nu' <= 0 (the power kernel does not exist for that alpha).
        """
        alpha = check_positive(alpha, "alpha", f"{type(self).__name__}.power")
        if d is None:
            raise InvalidValueError(f"The 'd' parameter of {type(self).__name__}.power is required: "
                             "the power of a Matern kernel depends on the dimension. Got None.")
        d = self._check_d(d, "power")
        nu_new = alpha * (self.nu + d / 2) - d / 2
        if nu_new <= 0:
            raise InvalidValueError(
                f"The 'alpha' parameter of {type(self).__name__}.power must be > d / (2 nu + d) = "
                f"{d / (2 * self.nu + d):.4g} for d={d} (else the power kernel does not exist). Got {alpha}.")
        lam = self._lambda
        return Matern(nu=nu_new, bandwidth=math.sqrt(2 * nu_new) / lam)


_MATERN_CLOSED = (0.5, 1.5, 2.5)


def _matern_log_general(nu, s):
    """log of the Matern profile 2^(1-nu)/Gamma(nu) s^nu K_nu(s) for an array s >= 0 (float64).

    ``scipy.special.kve`` where it is finite. Where it is not: for large s
    (kve returns NaN above about 1e9) the Hankel expansion of K_nu(s) e^s;
    for small s (K_nu(s) overflows, s below about 0.06 for nu <= 100) the
    regular part of the series of s^nu K_nu(s), 1 + sum_j (s/2)^(2j) / (j! (1-nu)...(j-nu))
    over j < nu (the other terms are below 1e-100 relative there); -inf at s = inf.
    """
    from scipy import special
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        out = ((1 - nu) * math.log(2) - special.gammaln(nu) + nu * np.log(s)
               + np.log(special.kve(nu, s)) - s)
    out = np.where(s == 0, 0.0, out)
    bad = ~np.isfinite(out)
    if not bad.any():
        return out
    shape = out.shape
    out, bad = out.reshape(-1), bad.reshape(-1)
    sb = np.broadcast_to(s, shape).reshape(-1)[bad]
    fix = np.full(sb.shape, -np.inf)
    large = (sb >= 1.0) & np.isfinite(sb)
    if large.any():
        x = sb[large]
        term = np.ones_like(x)
        series = np.ones_like(x)
        for k in range(1, 9):   # |a_k / s^k| <= (nu^2 / (2 s))^k / k!: below 1e-40 for s >= 1e8, nu <= 100
            term = term * ((4 * nu * nu - (2 * k - 1) ** 2) / (8 * k)) / x
            series += term
        log_kve = 0.5 * np.log(math.pi / (2 * x)) + np.log(series)
        fix[large] = (1 - nu) * math.log(2) - special.gammaln(nu) + nu * np.log(x) + log_kve - x
    small = sb < 1.0
    if small.any():
        q = (sb[small] / 2) ** 2
        term = np.ones_like(q)
        total = np.zeros_like(q)
        for j in range(1, min(6, math.ceil(nu) - 1) + 1):
            term = term * q / (j * (j - nu))
            total += term
        fix[small] = np.log1p(total)
    out[bad] = fix
    return out.reshape(shape)


class Laplace(Matern):
    r"""Laplace (exponential) kernel :math:`k(x, y) = \exp(-\|x - y\|/\ell)`.

    The Matern kernel with nu = 1/2. Spectral density: multivariate Cauchy
    with scale 1/ell. Its alpha-power kernel is a Matern with
    nu' = alpha (d + 1)/2 - d/2 (it needs alpha > d / (d + 1)).

    Parameters
    ----------
    bandwidth : float in [1e-150, 1e150]
        Length scale ell, in the units of the data.
    distance : {"euclidean", "l1"}, default "euclidean"
        The distance r the kernel is a function of (see :class:`RadialKernel`).
    """

    family = "laplace"

    def __init__(self, bandwidth=1.0, *, distance="euclidean"):
        super().__init__(nu=0.5, bandwidth=bandwidth, distance=distance)

    def _params(self):
        return {"bandwidth": self.bandwidth, **self._distance_param()}

    def _log_profile(self, r2, xp=NUMPY):
        return -xp.sqrt(r2) / self.bandwidth

    def _dtype_constants(self):
        return (self.bandwidth, 1.0 / self.bandwidth, self.bandwidth ** 2)

    @_euclidean_only
    def sample_density(self, n, d, random_state=None, *, rng=UNSET):
        # radial density r^(d-1) exp(-r / ell): r ~ Gamma(d, ell)
        rng = _rng(random_state, rng, "Laplace.sample_density")
        r = rng.gamma(d, self.bandwidth, size=(n, 1))
        return r * _uniform_directions(n, d, rng)


class RationalQuadratic(RadialKernel):
    r"""Rational quadratic kernel :math:`(1 + r^2 / (2\alpha\ell^2))^{-\alpha}`.

    A scale mixture of Gaussians (precision ~ Gamma(alpha, rate alpha ell^2)),
    so its spectral density is known; it tends to the Gaussian as alpha -> inf.

    Parameters
    ----------
    bandwidth : float in [1e-150, 1e150]
        Length scale ell, in the units of the data.
    alpha : float > 0
        Shape (dimensionless). As a density it is a multivariate t with
        2 alpha - d degrees of freedom: normalisable only when 2 alpha > d.
        c = sqrt(2 alpha) ell must be in [1e-152, 1e152].
    distance : {"euclidean", "l1"}, default "euclidean"
        The distance r the kernel is a function of (see :class:`RadialKernel`).
    """

    family = "rq"

    def __init__(self, bandwidth=1.0, alpha=1.0, *, distance="euclidean"):
        super().__init__(bandwidth, distance=distance)
        self.alpha = check_positive(alpha, "alpha", type(self).__name__)
        lo, hi = DERIVED_RANGE
        ell2 = self.bandwidth ** 2
        _check_scale_param(self.alpha, "alpha", type(self).__name__, "c = sqrt(2 alpha) bandwidth",
                           (lo * lo) / ell2 / 2, (hi * hi) / ell2 / 2)

    def _params(self):
        return {"bandwidth": self.bandwidth, "alpha": self.alpha, **self._distance_param()}

    @property
    def _c2(self):  # r^2 scale: k = (1 + r^2 / c2)^(-alpha)
        return 2 * self.alpha * self.bandwidth ** 2

    @property
    def _exponent(self):
        return self.alpha

    def _dtype_constants(self):
        return (self._c2, self._exponent)

    def _r2_scales(self):
        return (self._c2,)

    def _log_profile(self, r2, xp=NUMPY):
        c2 = self._c2
        with xp.errstate(over="ignore"):
            u = r2 / c2
        out = -self._exponent * xp.log1p(u)
        big = xp.isinf(u) & xp.isfinite(r2)
        if big.any():  # r^2 / c^2 overflows: log(1 + u) = log r^2 - log c^2 to rounding
            out = xp.where(big, -self._exponent * (xp.log(xp.where(big, r2, 1.0)) - math.log(c2)), out)
        return out

    @_euclidean_only
    def spectral_sample(self, d, D, random_state=None, *, rng=UNSET):
        """D frequencies: w ~ N(0, tau I), tau ~ Gamma(shape beta, scale 2 / c^2)."""
        rng = _rng(random_state, rng, f"{type(self).__name__}.spectral_sample")
        tau = rng.gamma(self._exponent, 2.0 / self._c2, size=(D, 1))
        return rng.standard_normal((D, d)) * np.sqrt(tau)

    def _t_dof(self, d, what):
        d = self._check_d(d, what)
        dof = 2 * self._exponent - d
        if dof <= 0:
            raise InvalidValueError(
                f"{self!r} is not integrable in d={d} dimensions (it needs exponent > d/2, "
                f"got {self._exponent}); pick a larger exponent or another kernel.")
        return d, dof

    @_euclidean_only
    def log_integral(self, d):
        """log of (pi c^2)^(d/2) Gamma(beta - d/2) / Gamma(beta) (finite for beta > d/2)."""
        from scipy.special import gammaln
        d, dof = self._t_dof(d, "log_integral")
        b = self._exponent
        return 0.5 * d * math.log(math.pi * self._c2) + gammaln(b - d / 2) - gammaln(b)

    @_euclidean_only
    def power(self, alpha, d=None):
        r"""alpha-power kernel: only alpha = 1 (the kernel itself) is exact.

        The Fourier transform of :math:`(1 + r^2/c^2)^{-\beta}` on R^d is
        proportional to :math:`|w|^{\beta - d/2} K_{d/2-\beta}(c |w|)`; its
        alpha-th power for alpha < 1 is not the transform of any closed-form
        kernel. Generalized Kernel Thinning (Dwivedi & Mackey, ICLR 2022,
        arXiv 2110.01593) treats the IMQ, like the Gaussian and sinc, as an
        analytic kernel for which target KT (alpha = 1) already gives its MMD
        guarantees, without an explicit square-root kernel; kernelkit offers
        no approximate or bounding substitute.

        Raises
        ------
        NotImplementedError
            For alpha != 1 (kernel_thin turns it into a ValueError that
            suggests method='kt').
        """
        alpha = check_positive(alpha, "alpha", f"{type(self).__name__}.power")
        if d is not None:
            self._check_d(d, "power")
        if alpha == 1.0:
            return self
        raise NotSupportedError(
            f"{self!r}.power({alpha}): the {alpha}-power of an inverse multiquadric / rational quadratic "
            "kernel has no closed form (its Fourier transform is a Bessel-K function, whose fractional "
            "powers are not transforms of known kernels). Use the kernel itself (alpha=1, target KT) "
            "or a Gaussian/Matern/Laplace kernel, whose power kernels are exact.")

    @_euclidean_only
    def sample_density(self, n, d, random_state=None, *, rng=UNSET):
        d, dof = self._t_dof(d, "sample_density")
        rng = _rng(random_state, rng, f"{type(self).__name__}.sample_density")
        scale = math.sqrt(self._c2 / dof)
        chi2 = np.maximum(rng.chisquare(dof, size=(n, 1)), _F64.tiny)  # (a tiny dof can draw 0)
        return rng.standard_normal((n, d)) * np.sqrt(dof / chi2) * scale


class IMQ(RationalQuadratic):
    r"""Inverse multiquadric kernel :math:`(1 + \|x - y\|^2 / c^2)^{-\beta}`.

    Parameters
    ----------
    bandwidth : float in [1e-150, 1e150]
        c, in the units of the data.
    beta : float > 0
        Exponent (default 1/2, the classical IMQ). Normalisable as a density
        only when 2 beta > d. The curvature length c / sqrt(2 beta) must be
        in [1e-152, 1e152].
    distance : {"euclidean", "l1"}, default "euclidean"
        The distance r the kernel is a function of (see :class:`RadialKernel`).

    Notes
    -----
    Spectral density: w ~ N(0, tau I) with tau ~ Gamma(beta, scale 2 / c^2).
    No exact alpha-power kernel for alpha < 1 (see
    :meth:`RationalQuadratic.power`).
    """

    family = "imq"

    def __init__(self, bandwidth=1.0, beta=0.5, *, distance="euclidean"):
        RadialKernel.__init__(self, bandwidth, distance=distance)
        self.beta = check_positive(beta, "beta", "IMQ")
        lo, hi = DERIVED_RANGE
        ell2 = self.bandwidth ** 2
        _check_scale_param(self.beta, "beta", "IMQ", "c / sqrt(2 beta)", ell2 / (hi * hi) / 2,
                           ell2 / (lo * lo) / 2)

    def _params(self):
        return {"bandwidth": self.bandwidth, "beta": self.beta, **self._distance_param()}

    @property
    def _c2(self):
        return self.bandwidth ** 2

    @property
    def _exponent(self):
        return self.beta


class Periodic(RadialKernel):
    r"""Periodic (exp-sine-squared) kernel :math:`\exp(-2 \sin^2(\pi r / p) / \ell^2)`.

    scikit-learn's ``ExpSineSquared(length_scale=ell, periodicity=p)``, with
    r = ||x - y||. Values are in [exp(-2 / ell^2), 1] (so ``log k`` exists),
    and the kernel repeats with period p along every line.

    Parameters
    ----------
    bandwidth : float in [1e-150, 1e150]
        Length scale ell (dimensionless: it scales sin^2, not the distance).
    period : float in [1e-150, 1e150]
        p, in the units of the data.

    Notes
    -----
    Positive definite in one dimension, where
    ``k = sum_n e^{-a} I_n(a) cos(2 pi n r / p)`` with a = 1 / ell^2
    (modified Bessel functions I_n): a discrete spectral measure, which
    :meth:`spectral_sample` draws from. For d >= 2 this Euclidean-distance
    form (what scikit-learn computes on several features) is *not* positive
    definite in general: MMDs and kernel thinning need d = 1 (or a product of
    one-dimensional periodic kernels). Not integrable: no ``log_integral``,
    ``sample_density`` or power kernel. Evaluation reduces r / p to
    [-1/2, 1/2] before the sine, so large distances lose no accuracy beyond
    the rounding of r / p itself.
    """

    family = "periodic"

    def __init__(self, bandwidth=1.0, period=1.0):
        super().__init__(bandwidth)
        self.period = _check_bandwidth(period, "Periodic", "period")

    def _params(self):
        return {"bandwidth": self.bandwidth, "period": self.period}

    def _dtype_constants(self):
        return (1.0 / self.period, 2.0 / self.bandwidth ** 2)

    def _log_profile(self, r2, xp=NUMPY):
        t = xp.sqrt(r2) / self.period
        s = xp.sin(math.pi * (t - xp.rint(t)))
        return (s * s) * (-2.0 / self.bandwidth ** 2)

    def spectral_sample(self, d, D, random_state=None, *, rng=UNSET):
        """D frequencies 2 pi n / p (d = 1 only), n drawn with ``P(|n|)`` proportional to ``I_|n|(1 / ell^2)``."""
        d = self._check_d(d, "spectral_sample")
        if d != 1:
            raise InvalidValueError(f"The 'd' parameter of Periodic.spectral_sample must be 1 (the periodic kernel "
                                    f"of ||x - y|| is not positive definite for d >= 2). Got {d}.")
        from scipy.special import ive
        rng = _rng(random_state, rng, "Periodic.spectral_sample")
        a = 1.0 / self.bandwidth ** 2
        top = int(min(30 + 12 * math.sqrt(a), 10 ** 7))   # beyond it I_n(a) e^-a is below 1e-30
        if top >= 10 ** 7:
            raise InvalidValueError(f"Periodic.spectral_sample needs a bandwidth >= 1e-6 (the spectrum has about "
                                    f"1 / bandwidth terms). Got bandwidth {self.bandwidth!r}.")
        n = np.arange(top)
        mass = ive(n, a) * np.where(n == 0, 1.0, 2.0)   # n and -n give the same cosine
        harmonic = rng.choice(top, size=D, p=mass / mass.sum())
        return (2 * math.pi / self.period) * harmonic[:, None].astype(np.float64)


def _log_ball_moment(d, p):
    r"""log of :math:`\int_{\|x\| < 1} (1 - \|x\|^2)^p dx = \pi^{d/2} \Gamma(p + 1) / \Gamma(d/2 + p + 1)`."""
    return 0.5 * d * math.log(math.pi) + math.lgamma(p + 1) - math.lgamma(0.5 * d + p + 1)


class CompactKernel(RadialKernel):
    """Base of the compactly supported radial kernels: phi(r) = 0 for r >= h (the bandwidth).

    ``is_positive`` is True in the sense the log domain needs: k >= 0 everywhere, so log k exists,
    -inf outside the support. Subclasses define the profile on the support.

    Parameters
    ----------
    bandwidth : float in [1e-150, 1e150]
        h, the radius of the support (data units).
    distance : {"euclidean", "l1"}, default "euclidean"
        The distance r the kernel is a function of (see :class:`RadialKernel`).
    """

    def _dtype_constants(self):
        return (1.0 / self.bandwidth, 1.0 / self.bandwidth ** 2)

    def _radial_r_sample(self, n, d, rng):
        """n radii in [0, 1) with density proportional to phi(r h) r^(d-1) (unit bandwidth)."""
        raise NotImplementedError

    @_euclidean_only
    def sample_density(self, n, d, random_state=None, *, rng=UNSET):
        rng = _rng(random_state, rng, f"{type(self).__name__}.sample_density")
        d = self._check_d(d, "sample_density")
        r = self._radial_r_sample(n, d, rng)
        return (self.bandwidth * r)[:, None] * _uniform_directions(n, d, rng)


class _PolynomialCompact(CompactKernel):
    """(1 - r^2 / h^2)^exponent on r < h."""

    exponent = 1

    def _log_profile(self, r2, xp=NUMPY):
        u = 1.0 - r2 * (1.0 / self.bandwidth ** 2)
        inside = u > 0
        return xp.where(inside, self.exponent * xp.log(xp.where(inside, u, 1.0)), -math.inf)

    @_euclidean_only
    def log_integral(self, d):
        """log of h^d pi^(d/2) Gamma(p + 1) / Gamma(d/2 + p + 1), p the exponent."""
        d = self._check_d(d, "log_integral")
        return d * math.log(self.bandwidth) + _log_ball_moment(d, self.exponent)

    def _radial_r_sample(self, n, d, rng):
        return np.sqrt(rng.beta(0.5 * d, self.exponent + 1, size=n))   # r^2 ~ Beta(d/2, p + 1)


class Epanechnikov(_PolynomialCompact):
    r"""Epanechnikov kernel :math:`(1 - r^2 / h^2)` for r < h, 0 outside (scikit-learn's "epanechnikov").

    Parameters
    ----------
    bandwidth : float in [1e-150, 1e150]
        h, the radius of the support (data units).
    distance : {"euclidean", "l1"}
        See :class:`RadialKernel`.
    distance : {"euclidean", "l1"}, default "euclidean"
        The distance r the kernel is a function of (see :class:`RadialKernel`).

    Notes
    -----
    Integral over R^d: h^d pi^(d/2) / Gamma(d/2 + 2). The mean-square-optimal kernel for density
    estimation; its mean-shift weights are the flat (tophat) kernel.
    """

    family = "epanechnikov"
    exponent = 1


class Biweight(_PolynomialCompact):
    r"""Biweight (quartic) kernel :math:`(1 - r^2 / h^2)^2` for r < h, 0 outside (bandwidth h, data units).

    Parameters
    ----------
    bandwidth : float in [1e-150, 1e150]
        h, the radius of the support (data units).
    distance : {"euclidean", "l1"}, default "euclidean"
        The distance r the kernel is a function of (see :class:`RadialKernel`).
    """

    family = "biweight"
    exponent = 2


class Triweight(_PolynomialCompact):
    r"""Triweight kernel :math:`(1 - r^2 / h^2)^3` for r < h, 0 outside (bandwidth h, data units).

    Parameters
    ----------
    bandwidth : float in [1e-150, 1e150]
        h, the radius of the support (data units).
    distance : {"euclidean", "l1"}, default "euclidean"
        The distance r the kernel is a function of (see :class:`RadialKernel`).
    """

    family = "triweight"
    exponent = 3


class Tophat(CompactKernel):
    r"""Tophat (flat, uniform) kernel: 1 for r < h, 0 outside (scikit-learn's "tophat"; bandwidth h, data units).

    Integral over R^d: the volume of the ball, h^d pi^(d/2) / Gamma(d/2 + 1).

    Parameters
    ----------
    bandwidth : float in [1e-150, 1e150]
        h, the radius of the support (data units).
    distance : {"euclidean", "l1"}, default "euclidean"
        The distance r the kernel is a function of (see :class:`RadialKernel`).
    """

    family = "tophat"

    def _log_profile(self, r2, xp=NUMPY):
        return xp.where(r2 * (1.0 / self.bandwidth ** 2) < 1.0, 0.0 * r2, -math.inf)

    @_euclidean_only
    def log_integral(self, d):
        d = self._check_d(d, "log_integral")
        return d * math.log(self.bandwidth) + _log_ball_moment(d, 0)

    def _radial_r_sample(self, n, d, rng):
        return rng.random(n) ** (1.0 / d)


class Triangular(CompactKernel):
    r"""Triangular kernel :math:`1 - r / h` for r < h, 0 outside (scikit-learn's "linear"; bandwidth h, data units).

    Integral over R^d: h^d V_d / (d + 1), V_d the volume of the unit ball.

    Parameters
    ----------
    bandwidth : float in [1e-150, 1e150]
        h, the radius of the support (data units).
    distance : {"euclidean", "l1"}, default "euclidean"
        The distance r the kernel is a function of (see :class:`RadialKernel`).
    """

    family = "triangular"

    def _log_profile(self, r2, xp=NUMPY):
        u = 1.0 - xp.sqrt(r2) * (1.0 / self.bandwidth)
        inside = u > 0
        return xp.where(inside, xp.log(xp.where(inside, u, 1.0)), -math.inf)

    @_euclidean_only
    def log_integral(self, d):
        d = self._check_d(d, "log_integral")
        return d * math.log(self.bandwidth) + _log_ball_moment(d, 0) - math.log(d + 1)

    def _radial_r_sample(self, n, d, rng):
        return rng.beta(d, 2, size=n)   # density proportional to (1 - r) r^(d-1)


class Cosine(CompactKernel):
    r"""Cosine kernel :math:`\cos(\pi r / (2h))` for r < h, 0 outside (scikit-learn's "cosine"; bandwidth h).

    Integral over R^d: h^d d V_d \int_0^1 \cos(\pi t / 2) t^{d-1} dt (by quadrature).

    Parameters
    ----------
    bandwidth : float in [1e-150, 1e150]
        h, the radius of the support (data units).
    distance : {"euclidean", "l1"}, default "euclidean"
        The distance r the kernel is a function of (see :class:`RadialKernel`).
    """

    family = "cosine"

    def _log_profile(self, r2, xp=NUMPY):
        t = xp.sqrt(r2) * (1.0 / self.bandwidth)
        c = xp.cos(xp.where(t < 1.0, t, 0.0) * (0.5 * math.pi))
        inside = (t < 1.0) & (c > 0)
        return xp.where(inside, xp.log(xp.where(inside, c, 1.0)), -math.inf)

    @_euclidean_only
    def log_integral(self, d):
        from scipy.integrate import quad
        d = self._check_d(d, "log_integral")
        # t^(d-1) cos(pi t / 2) = exp((d-1) log t) cos(...): integrate the scaled integrand (d up to thousands)
        peak = (d - 1) / d if d > 1 else 1.0   # (t^(d-1) divided by its value near the integrand's peak)
        val, _ = quad(lambda t: math.exp((d - 1) * (math.log(t) - math.log(peak))) * math.cos(0.5 * math.pi * t)
                      if t > 0 else float(d == 1), 0.0, 1.0, epsabs=0.0, epsrel=1e-13, limit=200)
        return (d * math.log(self.bandwidth) + math.log(d) + _log_ball_moment(d, 0) + math.log(val)
                + (d - 1) * math.log(peak))

    def _radial_r_sample(self, n, d, rng):
        out = np.empty(n)
        filled = 0
        while filled < n:   # proposal r ~ Beta(d, 1) (density d r^(d-1)), accept with cos(pi r / 2)
            r = rng.beta(d, 1, size=2 * (n - filled) + 8)
            r = r[rng.random(r.size) < np.cos(0.5 * np.pi * r)]
            take = min(r.size, n - filled)
            out[filled:filled + take] = r[:take]
            filled += take
        return out


class SpectralMixture(Kernel):
    r"""Spectral mixture kernel (Wilson & Adams, ICML 2013).

    .. math:: k(x, y) = \sum_q w_q \exp\big(-2\pi^2 \textstyle\sum_p \tau_p^2 s_{qp}^2\big)
              \cos(2\pi\, \mu_q \cdot \tau), \qquad \tau = x - y

    the Fourier transform of the spectral density
    ``sum_q w_q (N(mu_q, diag s_q^2) + N(-mu_q, diag s_q^2)) / 2``: any
    stationary kernel is a limit of such mixtures. Positive definite, not
    positive (``log k`` does not exist), ``k(x, x) = sum_q w_q``.

    Parameters
    ----------
    weights : array of shape (Q,), each > 0
        Mixture weights w_q (units of k).
    means : array of shape (Q, d), or (Q,) for d = 1
        Spectral means mu_q, in cycles per unit of the data (a component with
        mean 0.25 repeats every 4 units).
    scales : array of the shape of ``means``, each > 0
        Spectral standard deviations s_q, in cycles per unit (1 / (2 pi s) is
        the length scale of the component's envelope).

    Notes
    -----
    GPyTorch's ``SpectralMixtureKernel`` uses, for d >= 2, a product of
    one-dimensional cosines instead of cos(2 pi mu . tau); the two agree for
    d = 1. In one dimension the kernel is radial and runs through every
    compiled path (engine and thinning walk); for d >= 2 the fused engine
    evaluates it exactly as Gaussian sums on rescaled data with phase weights
    (cos(a - b) = cos a cos b + sin a sin b), and the thinning walk uses the
    NumPy path.
    """

    family = "spectral_mixture"
    is_stationary = True

    def __init__(self, weights, means, scales):
        owner = "SpectralMixture"
        w = np.array(weights, dtype=np.float64, ndmin=1)
        if w.ndim != 1 or w.size < 1 or not (np.isfinite(w).all() and (w > 0).all()):
            raise InvalidValueError(f"The 'weights' parameter of {owner} must be a 1-D array of finite numbers > 0. "
                                    f"Got {weights!r}.")
        mu = np.array(means, dtype=np.float64)
        mu = mu[:, None] if mu.ndim == 1 else mu
        if mu.ndim != 2 or mu.shape[0] != w.size or mu.shape[1] < 1 or not np.isfinite(mu).all():
            raise InvalidValueError(f"The 'means' parameter of {owner} must be a finite array of shape ({w.size}, d) "
                                    f"(or ({w.size},) for d = 1), one row per weight. Got shape {mu.shape}.")
        sc = np.array(scales, dtype=np.float64)
        sc = sc[:, None] if sc.ndim == 1 else sc
        if sc.shape != mu.shape or not (np.isfinite(sc).all() and (sc > 0).all()):
            raise InvalidValueError(f"The 'scales' parameter of {owner} must have the shape of 'means' {mu.shape} "
                                    f"with finite entries > 0. Got {scales!r}.")
        self.weights = tuple(float(v) for v in w)
        self.means = tuple(tuple(float(v) for v in row) for row in mu)
        self.scales = tuple(tuple(float(v) for v in row) for row in sc)
        self.n_features = mu.shape[1]
        self.is_radial = self.n_features == 1

    def _params(self):
        return {"weights": self.weights, "means": self.means, "scales": self.scales}

    def _check_features(self, d, owner):
        if d != self.n_features:
            raise InvalidValueError(f"The points given to {owner} must have {self.n_features} feature(s), the "
                                    f"dimension of {self!r}'s means. Got {d}.")

    def _dtype_constants(self):
        return tuple(2 * math.pi ** 2 * v * v for row in self.scales for v in row)

    def _xp_block(self, X, Y, xp, log=False):
        if log:
            raise NotSupportedError(f"log k is not defined for {self!r} (it takes negative values).")
        self._check_features(X.shape[1], "SpectralMixture")
        out = 0.0
        for w, mu, s in zip(self.weights, self.means, self.scales):
            s = xp.asarray_like(s, X) * (2 * math.pi)
            mu = xp.asarray_like(mu, X)
            r2 = xp.sqdist(X * s, Y * s)                             # 4 pi^2 sum_p s_p^2 tau_p^2
            phase = (X @ mu)[:, None] - (Y @ mu)[None, :]            # mu . tau, in cycles
            out = out + w * xp.exp(r2 * -0.5) * xp.cos((2 * math.pi) * (phase - xp.rint(phase)))
        return out

    def _block(self, X, Y):
        return self._xp_block(X, Y, NUMPY)

    def _diag(self, X):
        return np.full(X.shape[0], sum(self.weights), dtype=X.dtype)

    def spectral_sample(self, d, D, random_state=None, *, rng=UNSET):
        """D angular frequencies 2 pi xi, xi ~ sum_q (w_q / sum w) N(+-mu_q, diag s_q^2), shape (D, d)."""
        d = self._check_d(d, "spectral_sample")
        self._check_features(d, "SpectralMixture.spectral_sample")
        rng = _rng(random_state, rng, "SpectralMixture.spectral_sample")
        w = np.array(self.weights)
        comp = rng.choice(w.size, size=D, p=w / w.sum())
        sign = rng.choice([-1.0, 1.0], size=(D, 1))
        xi = sign * np.array(self.means)[comp] + rng.standard_normal((D, d)) * np.array(self.scales)[comp]
        return 2 * math.pi * xi

    def _check_d(self, d, what):
        return check_int(d, "d", f"SpectralMixture.{what}", low=1)


class Linear(Kernel):
    r"""Linear kernel :math:`k(x, y) = x \cdot y + c`.

    Parameters
    ----------
    c : float >= 0
        Constant offset (units of x . y).
    """

    family = "linear"

    def __init__(self, c=0.0):
        self.c = check_positive(c, "c", "Linear", allow_zero=True)

    def _params(self):
        return {"c": self.c}

    def _dtype_constants(self):
        return (self.c,)

    def _xp_block(self, X, Y, xp, log=False):
        G = xp.matmul_t(X, Y) + self.c
        return xp.log(G) if log else G

    def _block(self, X, Y):
        return self._xp_block(X, Y, NUMPY)

    def _diag(self, X):
        return np.einsum("ij,ij->i", X, X) + X.dtype.type(self.c)


class Polynomial(Kernel):
    r"""Polynomial kernel :math:`k(x, y) = (\gamma\, x \cdot y + c)^{p}`.

    Parameters
    ----------
    degree : int >= 1
        p.
    gamma : float > 0
        Scale of the inner product (1 / units of x . y).
    c : float >= 0
        Offset.
    """

    family = "polynomial"

    def __init__(self, degree=2, gamma=1.0, c=1.0):
        self.degree = check_int(degree, "degree", "Polynomial", low=1)
        self.gamma = check_positive(gamma, "gamma", "Polynomial")
        self.c = check_positive(c, "c", "Polynomial", allow_zero=True)

    def _params(self):
        return {"degree": self.degree, "gamma": self.gamma, "c": self.c}

    def _dtype_constants(self):
        return (self.gamma, self.c)

    def _xp_block(self, X, Y, xp, log=False):
        G = xp.matmul_t(X, Y) * self.gamma + self.c
        deg = self.degree if self.degree < 2 ** 62 else float(self.degree)   # (torch takes int64 exponents)
        with xp.errstate(over="ignore"):  # values beyond the largest float are inf, as they should
            out = G ** deg
        return xp.log(out) if log else out

    def _block(self, X, Y):
        return self._xp_block(X, Y, NUMPY)

    def _diag(self, X):
        with np.errstate(over="ignore"):
            return (self.gamma * np.einsum("ij,ij->i", X, X) + self.c) ** self.degree


class SumKernel(Kernel):
    """k = k1 + k2 + ... (a kernel: sums of kernels are positive definite).

    Parameters
    ----------
    *kernels : Kernel
        At least one; nested sums are flattened.
    """

    family = "sum"

    def __init__(self, *kernels):
        flat = []
        for k in kernels:
            if not isinstance(k, Kernel):
                raise param_error("kernels", "SumKernel", "Kernel objects", k, kind="type")
            flat.extend(k.kernels if isinstance(k, SumKernel) else [k])
        if not flat:
            raise param_error("kernels", "SumKernel", "at least one Kernel", (), shown="none")
        self.kernels = tuple(flat)
        self.is_positive = all(k.is_positive for k in flat)
        self.is_stationary = all(k.is_stationary for k in flat)

    @property
    def spec(self):
        return ("sum", tuple(k.spec for k in self.kernels))

    def _check_features(self, d, owner):
        for k in self.kernels:
            k._check_features(d, owner)

    def _xp_block(self, X, Y, xp, log=False):
        out = self.kernels[0]._xp_block(X, Y, xp)
        for k in self.kernels[1:]:
            out = out + k._xp_block(X, Y, xp)
        if not log:
            return out
        with xp.errstate(divide="ignore"):
            out = xp.log(out)
        lost = out == -math.inf
        if self.is_positive and bool(lost.any()):  # the sum underflowed: exact log-sum-exp of the logs
            exact = xp.logsumexp_stack([k._xp_block(X, Y, xp, log=True) for k in self.kernels])
            out = xp.where(lost, exact, out)
        return out

    def __repr__(self):
        return " + ".join(repr(k) for k in self.kernels)

    def _block(self, X, Y):
        out = self.kernels[0]._block(X, Y).copy()
        for k in self.kernels[1:]:
            out += k._block(X, Y)
        return out

    def _diag(self, X):
        return sum(k._diag(X) for k in self.kernels)

    def log_block(self, X, Y):
        if not self.is_positive:
            return super().log_block(X, Y)
        with np.errstate(divide="ignore"):
            out = np.log(self._block(X, Y))
        lost = out == -np.inf
        if lost.any():  # the sum underflowed: log-sum-exp of the components' logs stays exact
            exact = np.logaddexp.reduce(np.stack([k.log_block(X, Y) for k in self.kernels]), axis=0)
            out = np.where(lost, exact, out).astype(out.dtype, copy=False)
        return out

    def _dtype_constants(self):
        return tuple(c for k in self.kernels for c in k._dtype_constants())

    def _r2_scales(self):
        return tuple(q for k in self.kernels for q in k._r2_scales())

    def _component_masses(self, d):
        """Masses of the components, divided by a common power of e when they would overflow or underflow."""
        logs = np.array([k.log_integral(d) for k in self.kernels], dtype=np.float64)
        shift = 0.0 if np.all(np.abs(logs) < 700) else float(np.max(logs))
        return np.exp(logs - shift), shift

    def log_integral(self, d):
        """log of the sum of the terms' integrals."""
        mass, shift = self._component_masses(d)
        return float(np.log(mass.sum())) + shift

    def sample_density(self, n, d, random_state=None, *, rng=UNSET):
        rng = _rng(random_state, rng, "SumKernel.sample_density")
        mass, _ = self._component_masses(d)
        comp = rng.choice(len(self.kernels), size=n, p=mass / mass.sum())
        out = np.empty((n, d))
        for c, k in enumerate(self.kernels):
            idx = np.flatnonzero(comp == c)
            if idx.size:
                out[idx] = k.sample_density(idx.size, d, rng)
        return out


class ScaledKernel(Kernel):
    """k = scale * base with scale > 0.

    Parameters
    ----------
    base : Kernel
    scale : float > 0
        Dimensionless factor.
    """

    family = "scaled"

    def __init__(self, base, scale):
        if not isinstance(base, Kernel):
            raise param_error("base", "ScaledKernel", "a Kernel", base, kind="type")
        self.scale = check_positive(scale, "scale", "ScaledKernel")
        self.base = base
        self.is_positive = base.is_positive
        self.is_radial = base.is_radial
        self.is_stationary = base.is_stationary

    @property
    def spec(self):
        return ("scaled", (self.scale, self.base.spec))

    def _check_features(self, d, owner):
        self.base._check_features(d, owner)

    def _xp_block(self, X, Y, xp, log=False):
        inner = self.base._xp_block(X, Y, xp, log=log)
        return inner + math.log(self.scale) if log else inner * self.scale

    def __repr__(self):
        return f"{self.scale!r} * {self.base!r}"

    def _dtype_constants(self):
        return (self.scale,) + tuple(self.base._dtype_constants())

    def _r2_scales(self):
        return self.base._r2_scales()

    def _block(self, X, Y):
        out = self.base._block(X, Y)
        if X.dtype == np.float32 and not _fits(self.scale, np.float32):
            with np.errstate(over="ignore"):
                return (out.astype(np.float64) * self.scale).astype(np.float32)
        out *= X.dtype.type(self.scale)
        return out

    def log_block(self, X, Y):
        return self.base.log_block(X, Y) + X.dtype.type(math.log(self.scale))

    def _diag(self, X):
        return self.scale * self.base._diag(X)

    def log_integral(self, d):
        """log(scale) plus the base kernel's log integral."""
        return math.log(self.scale) + self.base.log_integral(d)

    def sample_density(self, n, d, random_state=None, *, rng=UNSET):
        return self.base.sample_density(n, d, random_state, rng=rng)

    def spectral_sample(self, d, D, random_state=None, *, rng=UNSET):
        return self.base.spectral_sample(d, D, random_state, rng=rng)

    def power(self, alpha, d=None):
        """The base kernel's power kernel (the scale drops out of a power kernel with phi(0) = 1)."""
        return self.base.power(alpha, d)


class ProductKernel(Kernel):
    """k = k1 * k2 * ... (products of kernels are positive definite).

    Parameters
    ----------
    *kernels : Kernel
        Nested products are flattened.
    """

    family = "product"

    def __init__(self, *kernels):
        flat = []
        for k in kernels:
            if not isinstance(k, Kernel):
                raise param_error("kernels", "ProductKernel", "Kernel objects", k, kind="type")
            flat.extend(k.kernels if isinstance(k, ProductKernel) else [k])
        self.kernels = tuple(flat)
        self.is_positive = all(k.is_positive for k in flat)
        self.is_stationary = all(k.is_stationary for k in flat)

    @property
    def spec(self):
        return ("product", tuple(k.spec for k in self.kernels))

    def _check_features(self, d, owner):
        for k in self.kernels:
            k._check_features(d, owner)

    def _xp_block(self, X, Y, xp, log=False):
        out = self.kernels[0]._xp_block(X, Y, xp, log=log)
        for k in self.kernels[1:]:
            q = k._xp_block(X, Y, xp, log=log)
            out = out + q if log else out * q
        return out

    def __repr__(self):
        return " * ".join(f"({k!r})" for k in self.kernels)

    def _block(self, X, Y):
        out = self.kernels[0]._block(X, Y).copy()
        for k in self.kernels[1:]:
            out *= k._block(X, Y)
        return out

    def log_block(self, X, Y):
        out = self.kernels[0].log_block(X, Y).copy()
        for k in self.kernels[1:]:
            out += k.log_block(X, Y)
        return out

    def _dtype_constants(self):
        return tuple(c for k in self.kernels for c in k._dtype_constants())

    def _r2_scales(self):
        return tuple(q for k in self.kernels for q in k._r2_scales())

    def _diag(self, X):
        out = self.kernels[0]._diag(X)
        for k in self.kernels[1:]:
            out = out * k._diag(X)
        return out


KERNEL_NAMES = {
    "gaussian": Gaussian, "rbf": Gaussian, "laplace": Laplace, "matern": Matern,
    "matern12": lambda bandwidth=1.0: Matern(0.5, bandwidth),
    "matern32": lambda bandwidth=1.0: Matern(1.5, bandwidth),
    "matern52": lambda bandwidth=1.0: Matern(2.5, bandwidth),
    "imq": IMQ, "rq": RationalQuadratic, "rational_quadratic": RationalQuadratic,
    "cauchy": lambda bandwidth=1.0: RationalQuadratic(bandwidth, alpha=1.0),
    "linear": Linear, "polynomial": Polynomial,
    "periodic": Periodic, "exp_sine_squared": Periodic,
    "epanechnikov": Epanechnikov, "biweight": Biweight, "quartic": Biweight, "triweight": Triweight,
    "tophat": Tophat, "triangular": Triangular, "cosine": Cosine,
}


def make_kernel(kernel, bandwidth=None, **params):
    """Resolve a kernel given as an object or a name.

    Parameters
    ----------
    kernel : Kernel or str
        A kernel object (returned as is) or one of the names in
        ``KERNEL_NAMES`` (case-insensitive).
    bandwidth : float, optional
        Bandwidth for radial kernels given by name.
    **params
        Other constructor parameters (``nu``, ``beta``, ``alpha``, ``degree``...).
    """
    if isinstance(kernel, Kernel):
        if bandwidth is not None:
            raise kernel_bandwidth_error("make_kernel", bandwidth)
        if params:
            raise param_error("kernel", "make_kernel", "a kernel name when parameters are given "
                              f"({', '.join(sorted(params))})", kernel,
                              hint="A Kernel object carries its parameters; pass its name instead.")
        return kernel
    if not isinstance(kernel, str):
        raise param_error("kernel", "make_kernel", f"a Kernel object or one of {sorted(KERNEL_NAMES)}", kernel,
                          kind="type")
    if kernel.lower() not in KERNEL_NAMES:
        raise param_error("kernel", "make_kernel", f"a Kernel object or one of {sorted(KERNEL_NAMES)}", kernel)
    factory = KERNEL_NAMES[kernel.lower()]
    if bandwidth is not None:
        params["bandwidth"] = bandwidth
    try:
        return factory(**params)
    except TypeError as exc:
        raise param_error("params", "make_kernel", f"constructor parameters of the {kernel!r} kernel", params,
                          kind="type", hint=str(exc)) from None
