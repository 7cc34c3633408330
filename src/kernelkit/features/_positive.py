r"""Positive random features (FAVOR+, Choromanski et al., ICLR 2021) for the Gaussian kernel.

For the softmax kernel :math:`\exp(u \cdot v)` and :math:`w \sim N(0, I)`,
:math:`\mathbb{E}[e^{w \cdot u - \|u\|^2/2} e^{w \cdot v - \|v\|^2/2}] = e^{u \cdot v}`
(because :math:`\mathbb{E}\, e^{w \cdot s} = e^{\|s\|^2/2}`). The Gaussian kernel is
:math:`\exp(-\|x-y\|^2/(2\sigma^2)) = e^{-\|u\|^2/2} e^{-\|v\|^2/2} e^{u \cdot v}` with
:math:`u = x/\sigma, v = y/\sigma`, so its positive features are
:math:`\exp(w \cdot u - \|u\|^2) / \sqrt{D}` (note :math:`\|u\|^2`, not :math:`\|u\|^2/2`).
"""

from __future__ import annotations

import math

import numpy as np

from .._random import generator
from .._validation import OneOf, check_param
from ._fourier import _FeatureMap, gaussian_bandwidth, kernel_at_zero, orthogonal_gaussian, resolve_kernel

__all__ = ["PositiveRandomFeatures"]


class PositiveRandomFeatures(_FeatureMap):
    r"""Positive random features (FAVOR+) for the Gaussian kernel: every feature is > 0.

    With :math:`w_j \sim N(0, I/\sigma^2)` (radians per data unit), c the
    centre (the mean of the training data, or 0) and :math:`k(0)` the kernel's
    scale,

    .. math::

        \phi_j(x) = \sqrt{k(0)/D}\; \exp\big(w_j \cdot (x - c) - \|x - c\|^2/\sigma^2\big),
        \qquad j = 1..D,

    and :math:`\hat k(x, y) = \phi(x) \cdot \phi(y)` is an unbiased estimate of
    :math:`k(x, y) = k(0) \exp(-\|x - y\|^2 / (2\sigma^2))` (the Gaussian kernel is
    shift-invariant, so centring changes nothing in expectation). With
    :math:`u = (x-c)/\sigma, v = (y-c)/\sigma` its variance is

    .. math:: \operatorname{Var} \hat k = \frac{k(x, y)^2}{D}\,\big(e^{\|u + v\|^2} - 1\big)

    (independent frequencies): small *relative* error where k is small (the
    attention use case), but growing fast with the distance of x and y from
    the centre, which is why the data are centred by default. Compared with
    :class:`~kernelkit.features.RandomFourierFeatures` (absolute variance
    about k(0)^2 / (2D)) the estimate never goes negative.

    Parameters
    ----------
    kernel : str or Kernel, default "gaussian"
        "gaussian" (or "rbf") with ``bandwidth``, a Gaussian object or a
        positive scaling of one; any other kernel raises a ValueError.
    n_components : int >= 1, default 100
        D, the number of features.
    bandwidth : float > 0 or None, default None
        sigma for the kernel name (data units); None: the median heuristic on
        the data given to ``fit``. Must be None with a Kernel object.
    orthogonal : bool, default False
        Draw the frequencies in blocks of d orthogonal rows with chi(d) norms
        (as :class:`~kernelkit.features.OrthogonalRandomFeatures`): each row
        is still N(0, I / sigma^2), so the estimate stays unbiased, with a
        lower variance (Choromanski et al., Theorem 2).
    center : bool, default True
        Centre the points at the mean of the training data (c above) before
        the map; False: c = 0.
    random_state : None, int, SeedSequence or Generator, default None
        Seeds the frequencies; resolved in ``fit``.

    Attributes
    ----------
    kernel_ : Kernel
        The kernel approximated.
    bandwidth_ : float
        sigma (data units).
    scale_ : float
        k(0), in the units of k.
    frequencies_ : ndarray of shape (D, d), float64
        The w_j (radians per data unit).
    center_ : ndarray of shape (d,), float64
        c (data units).
    n_features_in_ : int
        d.

    Examples
    --------
    >>> import numpy as np, kernelkit
    >>> from kernelkit.features import PositiveRandomFeatures
    >>> X = np.random.default_rng(0).standard_normal((5, 3)) * 0.3
    >>> prf = PositiveRandomFeatures(bandwidth=1.0, n_components=20000, random_state=0).fit(X)
    >>> Z = prf.transform(X)
    >>> bool((Z > 0).all()), bool(np.abs(Z @ Z.T - kernelkit.Gaussian(1.0)(X)).max() < 0.05)
    (True, True)
    """

    def __init__(self, kernel="gaussian", n_components=100, *, bandwidth=None, orthogonal=False, center=True,
                 random_state=None):
        self.kernel = kernel
        self.n_components = n_components
        self.bandwidth = bandwidth
        self.orthogonal = orthogonal
        self.center = center
        self.random_state = random_state

    def fit(self, X, y=None):
        """Draw the frequencies, choose the centre (and the bandwidth for a kernel name without one).

        Parameters
        ----------
        X : array of shape (n, d)
            Data points (data units).
        y : ignored
            Not used, present for the scikit-learn API.

        Returns
        -------
        self : PositiveRandomFeatures
        """
        owner = type(self).__name__
        D = self._check_n_components()
        orthogonal = check_param(self.orthogonal, "orthogonal", owner, OneOf(False, True))
        center = check_param(self.center, "center", owner, OneOf(False, True))
        X = self._validate(X, reset=True)
        kernel, _ = resolve_kernel(self.kernel, self.bandwidth, X, owner)
        sigma = gaussian_bandwidth(kernel, owner)
        rng = generator(self.random_state, owner)
        d = X.shape[1]
        W = orthogonal_gaussian(d, D, rng) if orthogonal else rng.standard_normal((D, d))
        self.frequencies_ = W / sigma
        self.center_ = X.mean(axis=0, dtype=np.float64) if center else np.zeros(d)
        self.scale_ = kernel_at_zero(kernel, d)
        self.bandwidth_ = sigma
        self.kernel_ = kernel
        return self

    @property
    def _n_features_out(self):
        return self.frequencies_.shape[0]

    def _transform(self, X):
        U = X.astype(np.float64) - self.center_        # exponents in float64 (no float32 overflow)
        E = U @ self.frequencies_.T
        E -= (np.einsum("ij,ij->i", U, U) / self.bandwidth_ ** 2)[:, None]
        E += 0.5 * math.log(self.scale_ / self.frequencies_.shape[0])
        np.exp(E, out=E)
        return E.astype(X.dtype, copy=False)
