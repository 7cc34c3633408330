r"""Public random feature maps for private kernel sums (no data inside).

A feature map ``phi`` turns a shift-invariant kernel into an inner product,
:math:`k(x, y) \approx \langle \phi(x), \phi(y) \rangle / n_{freq}`, so the
kernel sum of a private set is :math:`\langle \sum_x \phi(x), \phi(y) \rangle / n_{freq}`:
only the *vector* :math:`\sum_x \phi(x)` needs noise, once, and then serves
any number of queries. Every coordinate of phi is bounded whatever x is,
which bounds the sensitivity without any assumption on the data.

Kinds
-----
``"rff"``
    Paired random Fourier features ``[cos(w_j . x), sin(w_j . x)]`` with
    ``w_j`` i.i.d. from the kernel's spectral density (Rahimi and Recht 2007).
    ``cos a cos b + sin a sin b = cos(a - b)``, so each pair is an unbiased,
    bounded estimate of ``k(x, y) = E cos(w . (x - y))``.
    Per record: ``||phi||_2 = sqrt(n_freq)`` exactly and ``||phi||_1 <= sqrt(2) n_freq``.
``"orf"``
    As ``"rff"`` with orthogonal frequencies (Yu et al. 2016), for radial
    kernels: blocks of d orthonormal directions, each scaled by an
    independent radius ``||w||`` with w drawn from the spectral density.
    A radial kernel has an isotropic spectral density (direction uniform and
    independent of the radius), so each w_j keeps the right law (unbiased;
    for the Gaussian the radii are chi_d / sigma), but the frequencies of a
    block are not redundant, which lowers the approximation variance at the
    same sketch size.
``"jl"``
    Dimensionality reduction first (the Backurs et al. 2024 route to query
    time independent of d): a public Gaussian projection ``P`` (d' x d,
    entries N(0, 1/d')) and frequencies ``w'`` of fixed norm sqrt(d') / sigma
    in R^{d'} (orthonormal blocks). Then ``P^T w' ~ N(0, I / sigma^2)`` exactly,
    so ``cos(w' . P(x - y))`` is still unbiased for the Gaussian kernel, and a
    query costs ``O(d d' + d' n_freq)`` instead of ``O(d n_freq)``.
``"lsq-rff"``
    The LSQ-RFF baseline of Wagner et al. (2023): ``sqrt(2) cos(w_j . x + b_j)``
    with uniform phases b_j (one cell per frequency);
    ``||phi||_1 <= sqrt(2) n_freq``, ``||phi||_2 <= sqrt(2 n_freq)``.
"""

from __future__ import annotations

import math

import numpy as np

from .._validation import param_error
from ..kernels import Gaussian, RadialKernel

__all__ = ["FourierMap", "make_feature_map", "METHODS"]

METHODS = ("auto", "rff", "orf", "jl", "lsq-rff")
#: what the 'kernel' parameter of a private kernel sum accepts
_SPECTRAL = ("a radial, shift-invariant kernel with a known spectral density (Gaussian, Laplace, Matern, IMQ, "
             "rational quadratic)")


def _orthonormal_rows(n_rows, dim, rng):
    """``n_rows`` unit vectors in R^dim in blocks of ``dim`` mutually orthogonal ones."""
    blocks = []
    for _ in range(-(-n_rows // dim)):
        q, r = np.linalg.qr(rng.standard_normal((dim, dim)))
        q = q * np.sign(np.diag(r))  # Haar-distributed orthogonal matrix
        blocks.append(q.T)
    return np.vstack(blocks)[:n_rows]


class FourierMap:
    """A public feature map (frequencies, phases, projection). See the module docstring."""

    def __init__(self, kind, omega, phase=None, projection=None):
        self.kind = kind
        self.omega = np.ascontiguousarray(omega, dtype=np.float64)
        self.phase = None if phase is None else np.ascontiguousarray(phase, dtype=np.float64)
        self.projection = None if projection is None else np.ascontiguousarray(projection, dtype=np.float64)

    @property
    def n_freq(self):
        return self.omega.shape[0]

    @property
    def paired(self):
        return self.kind != "lsq-rff"

    @property
    def n_cells(self):
        return 2 * self.n_freq if self.paired else self.n_freq

    @property
    def cell_bound(self):
        """Largest |phi_j(x)| over all x."""
        return 1.0 if self.paired else math.sqrt(2.0)

    @property
    def l1_bound(self):
        """Largest ||phi(x)||_1 over all x (|cos| + |sin| <= sqrt 2)."""
        return math.sqrt(2.0) * self.n_freq

    @property
    def l2_bound(self):
        """Largest ||phi(x)||_2 over all x."""
        return math.sqrt(self.n_freq) if self.paired else math.sqrt(2.0 * self.n_freq)

    def row_bytes(self):
        return self.n_cells * 24 + self.n_freq * 8

    def transform(self, X):
        """Features of the rows of X, float32 array of shape (n, n_cells)."""
        X = np.asarray(X, dtype=np.float64)
        if self.projection is not None:
            X = X @ self.projection.T
        with np.errstate(over="ignore", invalid="ignore"):
            T = X @ self.omega.T
            if self.phase is not None:
                T += self.phase
        # Phases beyond 1e30 (heavy-tailed spectra such as a small-nu Matern, tiny bandwidths,
        # huge data) would overflow float32 or be inf / NaN, and cos(inf) is NaN: reduce them
        # modulo 2 pi, elementwise, and map non-finite ones to 0. Features stay in [-1, 1]
        # whatever x is, so the sensitivity bound holds.
        huge = ~(np.abs(T) <= 1e30)
        if huge.any():
            sub = T[huge]
            finite = np.isfinite(sub)
            sub[~finite] = 0.0
            sub[finite] = np.remainder(sub[finite], 2 * np.pi)
            T[huge] = sub
        T = T.astype(np.float32)
        if not self.paired:
            out = np.cos(T)
            out *= np.float32(math.sqrt(2.0))
            return out
        out = np.empty((T.shape[0], self.n_cells), dtype=np.float32)
        np.cos(T, out=out[:, :self.n_freq])
        np.sin(T, out=out[:, self.n_freq:])
        return out

    def to_arrays(self):
        arrays = {"omega": self.omega}
        if self.phase is not None:
            arrays["phase"] = self.phase
        if self.projection is not None:
            arrays["projection"] = self.projection
        return arrays

    @classmethod
    def from_arrays(cls, kind, arrays):
        return cls(kind, arrays["omega"], arrays.get("phase"), arrays.get("projection"))


def make_feature_map(kernel, method, d, n_features, reduced_dim, rng, owner):
    """Draw a public feature map with ``n_features`` cells for ``kernel`` in R^d."""
    if not isinstance(kernel, RadialKernel):
        raise param_error("kernel", owner, _SPECTRAL, kernel)
    is_gaussian = isinstance(kernel, Gaussian)
    if method == "auto":
        method = "orf" if kernel.is_radial else "rff"
    if method == "jl" and not is_gaussian:
        raise param_error("method", owner, "'jl' only with a Gaussian kernel (it relies on Gaussian frequencies)",
                          method, shown=f"{method!r} with {kernel!r}", hint="Use 'orf' or 'rff'.")
    if method == "orf" and not kernel.is_radial:
        raise param_error("method", owner, "'orf' only with a radial kernel (isotropic spectral density)", method,
                          shown=f"{method!r} with {kernel!r}", hint="Use 'rff'.")
    if method == "lsq-rff":
        n_freq = n_features
    else:
        if n_features % 2:
            raise param_error("n_features", owner, f"even for method {method!r} (cos and sin cells per frequency)",
                              n_features)
        n_freq = n_features // 2
    try:
        if method in ("rff", "lsq-rff", "orf"):
            omega = kernel.spectral_sample(d, n_freq, rng)
    except NotImplementedError:
        raise param_error("kernel", owner, _SPECTRAL, kernel) from None
    if method == "rff":
        return FourierMap("rff", omega)
    if method == "lsq-rff":
        return FourierMap("lsq-rff", omega, phase=rng.uniform(0, 2 * np.pi, n_freq))
    if method == "orf":
        radii = np.sqrt(np.einsum("ij,ij->i", omega, omega))
        return FourierMap("orf", _orthonormal_rows(n_freq, d, rng) * radii[:, None])
    # jl
    sigma = kernel.bandwidth
    dp = d if reduced_dim is None else reduced_dim
    projection = rng.standard_normal((dp, d)) / math.sqrt(dp)
    dirs = _orthonormal_rows(n_freq, dp, rng)
    return FourierMap("jl", dirs * (math.sqrt(dp) / sigma), projection=projection)
