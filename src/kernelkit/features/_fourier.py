r"""Random Fourier features: explicit maps z with z(x) . z(y) ~ k(x, y) for shift-invariant kernels.

By Bochner's theorem a continuous shift-invariant positive definite kernel is
the Fourier transform of a finite non-negative measure,

.. math:: k(x, y) = k(0)\, \mathbb{E}_{w \sim p}\big[\cos(w \cdot (x - y))\big],

with p the normalised spectral density (``k.spectral_sample`` draws from it,
w in radians per data unit). Drawing D frequencies w_1..w_D gives two
unbiased estimators (Rahimi & Recht, NIPS 2007):

* ``form="cos_sin"`` (2D features):
  :math:`z(x) = \sqrt{k(0)/D}\,[\cos(w_j \cdot x)]_{j}\,\Vert\,[\sin(w_j \cdot x)]_{j}`,
  so :math:`z(x) \cdot z(y) = \tfrac{k(0)}{D} \sum_j \cos(w_j \cdot (x - y))`;
* ``form="phase"`` (D features): :math:`z(x) = \sqrt{2 k(0)/D}\,\cos(w_j \cdot x + b_j)`,
  b_j ~ U[0, 2 pi), which adds the noise term cos(w.(x+y) + 2b) (higher variance).

:class:`OrthogonalRandomFeatures` (ORF) and :class:`StructuredOrthogonalFeatures`
(SORF) draw the Gaussian kernel's frequencies as blocks of orthogonal rows
(Yu et al., "Orthogonal Random Features", NIPS 2016), which lowers the
variance of the estimate; SORF replaces the dense d x d block by
``H D1 H D2 H D3`` (H the Walsh-Hadamard matrix, D_i random signs), applied
in O(d log d) per point and stored in O(d).

The module also holds the helpers the other feature maps share (kernel
resolution, the estimator base class).
"""

from __future__ import annotations

import math

import numpy as np
from sklearn.base import BaseEstimator, ClassNamePrefixFeaturesOutMixin, TransformerMixin
from .._sklearn import EstimatorNotFittedError
from sklearn.utils.validation import validate_data

from .._random import generator
from .._validation import Integral, OneOf, check_param, param_error
from ..exceptions import InputError, NotSupportedError
from ..kernels import Gaussian, ScaledKernel

__all__ = ["RandomFourierFeatures", "OrthogonalRandomFeatures", "StructuredOrthogonalFeatures"]

_FORMS = ("cos_sin", "phase")
_SPECTRAL = ("a shift-invariant kernel with a spectral density (Gaussian, Laplace, Matern, RationalQuadratic, "
             "IMQ, Periodic for d = 1, SpectralMixture, or a positive scaling of one)")


FeaturesNotFittedError = EstimatorNotFittedError   # (the name the feature modules use)


# --------------------------------------------------------------------------- shared helpers
def resolve_kernel(kernel, bandwidth, X, owner, *, spectral=True):
    """``(kernel, bandwidth_)`` by the library's rule (:func:`kernelkit.compress._resolve.resolve_kernel`);
    ``bandwidth_`` is the kernel's ``bandwidth`` attribute, or None when it has none. ``spectral``: the
    names 'linear' and 'polynomial' are refused (they have no spectral density), else built."""
    from ..compress._resolve import resolve_kernel as _rule
    dot = ((_SPECTRAL, "The {} kernel is not shift-invariant; use NystroemFeatures, which takes any kernel.")
           if spectral else "allow")
    if spectral and isinstance(kernel, str) and kernel.lower() in ("linear", "polynomial"):
        dot = (_SPECTRAL, dot[1].format(kernel.lower()))
    k = _rule(kernel, bandwidth, X, owner, dot_names=dot, bandwidth_first=True)
    return k, getattr(k, "bandwidth", None)


def kernel_at_zero(kernel, d):
    """k(0) = k(x, x) of a shift-invariant kernel (ScaledKernel: its scale; SpectralMixture: the sum of weights)."""
    return float(kernel.diag(np.zeros((1, d)))[0])


def spectral_frequencies(kernel, d, D, rng, owner):
    """``kernel.spectral_sample(d, D, rng)`` as float64 (D, d), or a clear error naming the kernel."""
    try:
        W = kernel.spectral_sample(d, D, rng)
    except NotSupportedError:
        raise param_error("kernel", owner, _SPECTRAL, kernel,
                          hint="Use NystroemFeatures, which takes any kernel.") from None
    except InputError as exc:  # Periodic for d >= 2, SpectralMixture of another dimension
        raise param_error("kernel", owner, f"a kernel with a spectral density on R^{d} (the data have {d} "
                          "features)", kernel, hint=str(exc)) from None
    return np.ascontiguousarray(np.asarray(W, dtype=np.float64).reshape(D, d))


def gaussian_bandwidth(kernel, owner):
    """sigma of a Gaussian kernel or of a positive scaling of one, else a clear error naming the kernel."""
    base = kernel
    while isinstance(base, ScaledKernel):
        base = base.base
    if not isinstance(base, Gaussian):
        raise param_error("kernel", owner, "the Gaussian kernel ('gaussian', a Gaussian object or a positive "
                          "scaling of one)", kernel,
                          hint="For other shift-invariant kernels use RandomFourierFeatures.")
    return float(base.bandwidth)


def orthogonal_gaussian(d, D, rng):
    r"""D frequencies of N(0, I_d) drawn as blocks of d orthogonal rows (ORF, Yu et al. 2016), shape (D, d).

    Each block is :math:`S Q`: Q the orthogonal factor of the QR decomposition
    of a d x d standard Gaussian matrix (signs fixed so that Q is Haar
    distributed) and S a diagonal of independent chi(d) norms, so every row
    is exactly N(0, I_d) while the rows of a block are orthogonal. Blocks are
    independent; the last one is truncated to D rows.
    """
    blocks = -(-D // d)
    G = rng.standard_normal((blocks, d, d))
    Q, R = np.linalg.qr(G)
    Q = Q * np.sign(np.diagonal(R, axis1=1, axis2=2))[:, None, :]   # Haar: columns of Q times sign(R_jj)
    rows = np.swapaxes(Q, 1, 2)                                         # rows of Q^T are orthonormal too
    norms = np.sqrt(rng.chisquare(d, size=(blocks, d)))
    return np.ascontiguousarray((rows * norms[:, :, None]).reshape(blocks * d, d)[:D])


#: values per chunk of rows in the structured transform (2 MB in float64: the chunk stays in cache)
_SORF_CHUNK_VALUES = 1 << 18


def fwht(a):
    """Unnormalised fast Walsh-Hadamard transform along the last axis (length a power of 2); returns a new array.

    ``O(m log m)`` per row, vectorised over the other axes: ``fwht(I) = H_m``
    with ``H_m H_m = m I``.
    """
    return _fwht_inplace(np.array(a, copy=True))


def _fwht_ext():
    """The compiled transform (``_fwht_ext``), or None when it is not built."""
    try:
        from . import _fwht_ext as ext
    except ImportError:  # pragma: no cover - depends on the build
        return None
    return ext


def _fwht_inplace(a, compiled=True):
    """:func:`fwht` written into ``a`` (a C-contiguous array), which is returned.

    The compiled transform runs when it is built and ``a`` is float32 or
    float64 (each row stays in cache through its log2(m) passes); otherwise
    (or with ``compiled=False``, the reference) NumPy butterflies over the
    whole array, one pass per level.
    """
    ext = _fwht_ext() if compiled else None
    if ext is not None and a.dtype in (np.float32, np.float64) and a.flags.c_contiguous and a.flags.writeable:
        from .._options import get_options
        ext.fwht(a, get_options().resolved_threads())
        return a
    m = a.shape[-1]
    lead = a.shape[:-1]
    h = 1
    while h < m:
        v = a.reshape(*lead, m // (2 * h), 2, h)   # a view: a is contiguous
        x, y = v[..., 0, :], v[..., 1, :]
        x += y          # x + y
        y *= -2         # -2 y
        y += x          # (x + y) - 2 y = x - y
        h *= 2
    return a


class _FeatureMap(ClassNamePrefixFeaturesOutMixin, TransformerMixin, BaseEstimator):
    """Shared plumbing: validation, fitted check, the dtype rule (float32 in, float32 out)."""

    _owner = "a feature map"

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.transformer_tags.preserves_dtype = ["float64", "float32"]
        return tags

    def _check_fitted(self, what):
        if not hasattr(self, "kernel_"):
            raise FeaturesNotFittedError(f"This {type(self).__name__} instance is not fitted yet. Call 'fit' "
                                         f"before '{what}'.")

    def _validate(self, X, reset):
        return validate_data(self, X, dtype=[np.float64, np.float32], reset=reset)  # sklearn's checks and messages

    def _check_n_components(self):
        return check_param(self.n_components, "n_components", type(self).__name__, Integral(low=1))

    def transform(self, X):
        """The features of each row of X, shape (n, n_features_out) (float32 for float32 X, else float64).

        Parameters
        ----------
        X : array of shape (n, d)
            Points, in the units of the data given to ``fit``.

        Returns
        -------
        Z : ndarray of shape (n, n_features_out)
            ``Z @ Z.T`` estimates the kernel matrix (see the class docstring).
        """
        self._check_fitted("transform")
        X = self._validate(X, reset=False)
        return self._transform(X)


# --------------------------------------------------------------------------- random Fourier features
class RandomFourierFeatures(_FeatureMap):
    r"""Random Fourier features (Rahimi & Recht 2007) for any shift-invariant kernel with a spectral density.

    With D frequencies :math:`w_j \sim p` (the kernel's normalised spectral
    density, ``kernel.spectral_sample``; radians per data unit) the features are

    .. math::

        z(x) = \sqrt{k(0)/D}\,\big[\cos(w_1 \cdot x), \dots, \cos(w_D \cdot x),
               \sin(w_1 \cdot x), \dots, \sin(w_D \cdot x)\big]
        \quad\text{(form="cos\_sin", 2D features)}

        z(x) = \sqrt{2 k(0)/D}\,\big[\cos(w_j \cdot x + b_j)\big]_{j=1..D},\;
        b_j \sim U[0, 2\pi) \quad\text{(form="phase", D features)}

    and :math:`\hat k(x, y) = z(x) \cdot z(y)` is an unbiased estimate of
    k(x, y) (in the units of k: ``k(0)`` is included, so a ``3 * Gaussian(1)``
    is estimated, not its normalised version). For ``cos_sin`` the estimate
    is :math:`\tfrac{k(0)}{D}\sum_j \cos(w_j\cdot(x-y))` with variance
    :math:`k(0)^2 (1 + k_1(2\tau) - 2 k_1(\tau)^2) / (2D)` (:math:`k_1 = k/k(0)`,
    :math:`\tau = x - y`); the phase form has a larger variance.

    Parameters
    ----------
    kernel : str or Kernel, default "gaussian"
        A kernel name ("gaussian", "laplace", "matern32", "imq", "rq", ...)
        with ``bandwidth``, or a Kernel object with a spectral density
        (Gaussian, Laplace, Matern, RationalQuadratic, IMQ, Periodic for
        d = 1, SpectralMixture, or a ScaledKernel of one). Other kernels
        (Linear, Polynomial, sums and products) raise a ValueError naming the
        kernel: use :class:`~kernelkit.features.NystroemFeatures`.
    n_components : int >= 1, default 100
        D, the number of frequencies (2D output features for "cos_sin", D for "phase").
    bandwidth : float > 0 or None, default None
        For a kernel given by name, in data units; None: the median heuristic
        :func:`kernelkit.median_bandwidth` on the data given to ``fit``. Must be
        None when ``kernel`` is a Kernel object (it carries its bandwidth).
    form : {"cos_sin", "phase"}, default "cos_sin"
        The estimator (see above).
    random_state : None, int, SeedSequence or Generator, default None
        Seeds the frequencies (and phases); resolved in ``fit``.

    Attributes
    ----------
    kernel_ : Kernel
        The kernel approximated.
    bandwidth_ : float or None
        Its bandwidth (data units), None for kernels without one.
    scale_ : float
        k(0) = k(x, x), in the units of k.
    frequencies_ : ndarray of shape (D, d), float64
        The frequencies w_j (radians per data unit).
    offsets_ : ndarray of shape (D,) or None
        The phases b_j (form="phase"), else None.
    n_features_in_ : int
        d.

    Notes
    -----
    The projections ``X @ frequencies_.T`` are computed in the dtype of X: in
    float32 a phase w . x of size P carries an absolute error near P * 6e-8.

    Examples
    --------
    >>> import numpy as np, kernelkit
    >>> from kernelkit.features import RandomFourierFeatures
    >>> X = np.random.default_rng(0).standard_normal((5, 3))
    >>> rff = RandomFourierFeatures("gaussian", n_components=4000, bandwidth=1.0, random_state=0).fit(X)
    >>> Z = rff.transform(X)
    >>> Z.shape
    (5, 8000)
    >>> bool(np.abs(Z @ Z.T - kernelkit.Gaussian(1.0)(X)).max() < 0.1)
    True
    """

    def __init__(self, kernel="gaussian", n_components=100, *, bandwidth=None, form="cos_sin", random_state=None):
        self.kernel = kernel
        self.n_components = n_components
        self.bandwidth = bandwidth
        self.form = form
        self.random_state = random_state

    def fit(self, X, y=None):
        """Draw the frequencies (and, for a kernel name without bandwidth, choose the bandwidth on X).

        Parameters
        ----------
        X : array of shape (n, d)
            Data points (data units); only d is used, and X for the median heuristic.
        y : ignored
            Not used, present for the scikit-learn API.

        Returns
        -------
        self : RandomFourierFeatures
        """
        owner = type(self).__name__
        D = self._check_n_components()
        form = check_param(self.form, "form", owner, OneOf(*_FORMS))
        X = self._validate(X, reset=True)
        kernel, bandwidth = resolve_kernel(self.kernel, self.bandwidth, X, owner)
        rng = generator(self.random_state, owner)
        d = X.shape[1]
        self._frequencies(kernel, d, D, rng, owner)
        self.offsets_ = rng.uniform(0.0, 2 * math.pi, size=D) if form == "phase" else None
        self.scale_ = kernel_at_zero(kernel, d)
        self._D, self._form = D, form
        self.bandwidth_ = bandwidth
        self.kernel_ = kernel
        return self

    def _frequencies(self, kernel, d, D, rng, owner):
        self.frequencies_ = spectral_frequencies(kernel, d, D, rng, owner)

    @property
    def _n_features_out(self):
        return 2 * self._D if self._form == "cos_sin" else self._D

    def _projections(self, X):
        """w_j . x for each row, shape (n, D), in the dtype of X."""
        return X @ self.frequencies_.T.astype(X.dtype, copy=False)

    def _transform(self, X):
        P = self._projections(X)
        D, dt = self._D, X.dtype
        if self._form == "phase":
            P += self.offsets_.astype(dt)
            np.cos(P, out=P)
            P *= dt.type(math.sqrt(2.0 * self.scale_ / D))
            return P
        Z = np.empty((X.shape[0], 2 * D), dtype=dt)
        np.cos(P, out=Z[:, :D])
        np.sin(P, out=Z[:, D:])
        Z *= dt.type(math.sqrt(self.scale_ / D))
        return Z


class OrthogonalRandomFeatures(RandomFourierFeatures):
    r"""Orthogonal random features (ORF, Yu et al. 2016) for the Gaussian kernel.

    The features of :class:`RandomFourierFeatures`, with the frequencies drawn
    in blocks of d orthogonal rows instead of independently:
    :math:`W = \tfrac{1}{\sigma} [S_1 Q_1; S_2 Q_2; \dots]`, Q_b the
    (Haar-distributed) orthogonal factor of the QR decomposition of a d x d
    standard Gaussian matrix and S_b a diagonal of independent chi(d) norms.
    Each row is still N(0, I / sigma^2), so :math:`z(x) \cdot z(y)` stays an
    unbiased estimate of :math:`k(x, y) = k(0) \exp(-\|x-y\|^2 / (2\sigma^2))`,
    and the orthogonality lowers its variance (Yu et al., Theorem 1). D need
    not be a multiple of d (the last block is truncated).

    Parameters
    ----------
    kernel : str or Kernel, default "gaussian"
        "gaussian" (or "rbf") with ``bandwidth``, a Gaussian object, or a
        positive scaling of one; any other kernel raises a ValueError.
    n_components : int >= 1, default 100
        D, the number of frequencies (2D features for "cos_sin", D for "phase").
    bandwidth : float > 0 or None, default None
        sigma for the kernel name (data units); None: median heuristic on the
        data given to ``fit``. Must be None with a Kernel object.
    form : {"cos_sin", "phase"}, default "cos_sin"
        As in :class:`RandomFourierFeatures`.
    random_state : None, int, SeedSequence or Generator, default None
        Seeds the orthogonal blocks and norms; resolved in ``fit``.

    Attributes
    ----------
    kernel_, bandwidth_, scale_, frequencies_, offsets_, n_features_in_ :
        As in :class:`RandomFourierFeatures`.
    """

    def _frequencies(self, kernel, d, D, rng, owner):
        sigma = gaussian_bandwidth(kernel, owner)
        self.frequencies_ = orthogonal_gaussian(d, D, rng) / sigma


class StructuredOrthogonalFeatures(RandomFourierFeatures):
    r"""Structured orthogonal random features (SORF, Yu et al. 2016) for the Gaussian kernel.

    The dense orthogonal blocks of :class:`OrthogonalRandomFeatures` are
    replaced by

    .. math:: W_b = \frac{1}{\sigma}\, S_b\, H D_{b,1} H D_{b,2} H D_{b,3},

    with m the number of features d padded with zeros to a power of 2, H the
    normalised m x m Walsh-Hadamard matrix (:math:`H^2 = I`), D_{b,i}
    diagonals of independent random signs and S_b a diagonal of independent
    chi(m) row norms; blocks b = 1..ceil(D/m) are independent and the last is
    truncated. ``W_b x`` costs O(m log m) per point through a fast
    Walsh-Hadamard transform (compiled: each row stays in cache through its
    log2(m) passes, threads over rows; NumPy butterflies where the extension
    is not built), and the map is stored in O(D) numbers rather than D x d.
    At d = 1,024, D = 4,096, n = 2,000 the transform took 0.10 s against ORF's
    0.13 s in float32 (0.32 s against 0.46 s in float64; the cosines are
    most of both). The rows of a block are
    orthogonal, with directions close to uniform on the sphere; the estimate
    of :math:`k(x, y) = k(0) \exp(-\|x-y\|^2/(2\sigma^2))` is not exactly
    unbiased, but its bias vanishes as m grows (Yu et al., Section 4) and its
    error is close to ORF's. Measured at distances near the bandwidth, the
    bias is about 0.05 (in units of k(0)) for d = 4, at the noise level of 3000
    ORF draws (< 0.007) from d = 8 on: prefer ORF for d <= 4.

    Yu et al. scale every row by the constant :math:`\sqrt m` instead of
    S_b; that biases the estimate for small d (the row norm of a Gaussian
    vector is chi(m), not :math:`\sqrt m`: at d = 16 the mean of the
    estimate is off by about 0.03), so the norms are drawn as in ORF
    (as in Choromanski et al. 2017, "The unreasonable effectiveness of
    structured random orthogonal embeddings").

    Parameters
    ----------
    kernel : str or Kernel, default "gaussian"
        "gaussian" (or "rbf") with ``bandwidth``, a Gaussian object, or a
        positive scaling of one; any other kernel raises a ValueError.
    n_components : int >= 1, default 100
        D, the number of frequencies (2D features for "cos_sin", D for "phase").
    bandwidth : float > 0 or None, default None
        sigma for the kernel name (data units); None: median heuristic on the
        data given to ``fit``. Must be None with a Kernel object.
    form : {"cos_sin", "phase"}, default "cos_sin"
        As in :class:`RandomFourierFeatures`.
    random_state : None, int, SeedSequence or Generator, default None
        Seeds the signs and norms; resolved in ``fit``.

    Attributes
    ----------
    signs_ : ndarray of shape (ceil(D / m), 3, m), int8
        The diagonals D_{b,1}, D_{b,2}, D_{b,3} (entries +-1).
    norms_ : ndarray of shape (ceil(D / m), m), float64
        The diagonals S_b (chi(m) draws, dimensionless).
    n_padded_ : int
        m, the power of 2 the points are padded to.
    kernel_, bandwidth_, scale_, offsets_, n_features_in_ :
        As in :class:`RandomFourierFeatures` (``frequencies_`` is not stored;
        :meth:`dense_frequencies` builds it).
    """

    def _frequencies(self, kernel, d, D, rng, owner):
        self._sigma = gaussian_bandwidth(kernel, owner)
        m = 1 << max(0, (d - 1).bit_length())
        blocks = -(-D // m)
        self.n_padded_ = m
        self.signs_ = (2 * rng.integers(0, 2, size=(blocks, 3, m)) - 1).astype(np.int8)
        self.norms_ = np.sqrt(rng.chisquare(m, size=(blocks, m)))

    def _projections(self, X):
        n, d = X.shape
        m, signs = self.n_padded_, self.signs_
        blocks = signs.shape[0]
        out = np.empty((n, self._D), dtype=X.dtype)
        S = [signs[:, i, :].astype(X.dtype) for i in range(3)]
        scale = (self.norms_ * (1.0 / (self._sigma * m ** 1.5))).astype(X.dtype)   # S/sigma (H/sqrt(m))^3
        # rows in chunks whose transforms stay in cache (the 3 log2(m) passes of the FWHT are memory-bound)
        rows = max(1, _SORF_CHUNK_VALUES // (blocks * m))
        Y = np.empty((min(rows, n), blocks, m), dtype=X.dtype)
        for r0 in range(0, n, rows):
            c = min(rows, n - r0)
            Yc = Y[:c]
            Yc[:, :, d:] = 0
            Yc[:, :, :d] = X[r0:r0 + c, None, :]
            for i in (2, 1, 0):                   # H D1 H D2 H D3 x: D3 first
                Yc *= S[i]
                _fwht_inplace(Yc)
            Yc *= scale
            out[r0:r0 + c] = Yc.reshape(c, blocks * m)[:, :self._D]
        return out

    def dense_frequencies(self):
        """The D x d matrix W (radians per data unit) the map applies, built densely (for checks and small d)."""
        self._check_fitted("dense_frequencies")
        d = self.n_features_in_
        return self._projections(np.eye(d)).T.copy()
