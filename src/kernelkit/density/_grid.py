r"""Grid KDE for plots: linear binning onto a regular 1-, 2- or 3-D grid, then one FFT convolution.

The estimate on the grid points :math:`g` is

.. math::

    \hat p(g) = \frac{1}{\sum_i w_i\, Z h^d} \sum_j c_j\, k\big((g - g_j) / h\big),
    \qquad c_j = \sum_i w_i\, \beta_j(x_i),

where :math:`\beta_j(x)` are the linear-binning (cloud-in-cell) weights of
the point :math:`x` on the :math:`2^d` grid points of its cell (they sum to 1
and keep the point's mean), :math:`k` is the kernel at unit bandwidth and
:math:`Z = \int k`. The sum over :math:`j` is a discrete convolution, done by
FFT on a zero-padded grid (no wrap-around): the kernel is sampled at every
offset the grid spans, so nothing is truncated and the only approximation is
the binning, an error of order :math:`(\Delta / h)^2` relative to the peak
density (:math:`\Delta` the grid spacing). No n x grid matrix is formed:
binning costs O(n 2^d), the convolution O(G log G) for G grid points.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from .._options import get_options
from .._validation import Integral, OneOf, Real, InstanceOf, check_param, check_points, check_weights, param_error
from ..kernels import Kernel, KERNEL_NAMES, ProductKernel, RadialKernel, ScaledKernel, SumKernel, make_kernel
from . import _kde
from ._kde import bandwidth_scott, bandwidth_silverman

__all__ = ["grid_kde", "GridDensity"]

_OWNER = "grid_kde"
#: default number of grid points per axis, by dimension
DEFAULT_GRID = {1: 4096, 2: 512, 3: 128}
#: largest number of grid points in all (the padded FFT holds 2^d times as many complex numbers)
MAX_GRID_POINTS = 2 ** 24


class GridDensity(NamedTuple):
    """What :func:`grid_kde` returns: ``axes, density = grid_kde(...)``.

    Attributes
    ----------
    axes : ndarray or tuple of ndarrays
        The grid coordinates (data units): one array of shape (G,) for 1-D
        data, a tuple of d arrays (G_1,), ..., (G_d,) for d = 2 or 3.
    density : ndarray of float64, shape (G,) or (G_1, ..., G_d)
        The density at the grid points (1 / data-units^d), indexed like
        ``numpy.meshgrid(*axes, indexing="ij")``.
    """

    axes: object
    density: np.ndarray


def check_sample_weights(weights, n, owner, name="weights"):
    """Non-negative weights of shape (n,) with a positive sum, as float64 (the error names ``name``)."""
    w = check_weights(weights, n, name, owner, nonnegative=True, allow_2d=False)
    if not w.sum() > 0:
        raise param_error(name, owner, "weights with a positive sum (not all zero)", w, shown=f"sum {w.sum()}")
    return w


def _sign_symmetric(k):
    """True when k(x, 0) is unchanged by flipping the sign of any coordinate (radial kernels and their
    sums, products and scalings), so the kernel can be sampled on one orthant of offsets and mirrored."""
    if isinstance(k, RadialKernel):
        return True
    if isinstance(k, (SumKernel, ProductKernel)):
        return all(_sign_symmetric(c) for c in k.kernels)
    if isinstance(k, ScaledKernel):
        return _sign_symmetric(k.base)
    return False


def _resolve_kernel(kernel, bandwidth, X, w):
    """``(unit kernel k, scale h, log of the integral of k over R^d)``: a name with a bandwidth (float or rule),
    or a Kernel object with bandwidth None (applied to the data as they are), as KernelDensity does."""
    d = X.shape[1]
    sk_names = getattr(_kde, "SKLEARN_NAMES", {})   # KernelDensity's scikit-learn names ("linear": triangular)
    names = sorted((set(KERNEL_NAMES) - {"linear", "polynomial"}) | set(sk_names))
    kernel = check_param(kernel.lower() if isinstance(kernel, str) else kernel, "kernel", _OWNER,
                         InstanceOf(Kernel, "a Kernel object") | OneOf(*names))
    if isinstance(kernel, Kernel):
        if bandwidth is not None:
            raise param_error("bandwidth", _OWNER, "None when 'kernel' is a Kernel object (it carries its "
                              "bandwidth)", bandwidth, hint="Pass the kernel by name with bandwidth=.")
        k, h = kernel, 1.0
    else:
        bw = check_param(bandwidth, "bandwidth", _OWNER,
                         Real(low=0, low_open=True) | OneOf("scott", "silverman", "isj"))
        if bw in ("scott", "silverman") and np.all(X == X[0]):
            raise param_error("bandwidth", _OWNER, "a float when the data have zero spread (every point the same "
                              f"point): the {bw!r} rule gives bandwidth 0 there", bw,
                              hint="Pass a float bandwidth (bandwidth=1.0, for instance).")
        if bw == "scott":
            h = bandwidth_scott(X, w)
        elif bw == "silverman":
            h = bandwidth_silverman(X, w)
        elif bw == "isj":
            if d != 1:
                raise param_error("bandwidth", _OWNER, "'isj' for 1-D data only (or a float, 'scott', 'silverman')",
                                  bw, hint=f"The data have {d} columns.")
            from ._isj import bandwidth_isj
            h = bandwidth_isj(X[:, 0], w)
        else:
            h = bw
        k = make_kernel(sk_names.get(kernel, kernel), bandwidth=1.0)
    if not _sign_symmetric(k):
        raise param_error("kernel", _OWNER, "a radial kernel (or a sum, product or positive scaling of radial "
                          "kernels)", k)
    try:
        log_z = float(k.log_integral(d))
    except NotImplementedError:  # NotSupportedError too: no normalising constant
        raise param_error("kernel", _OWNER, f"a kernel integrable over R^{d} (a density)", k) from None
    if not math.isfinite(log_z):
        raise param_error("kernel", _OWNER, f"a kernel integrable over R^{d}", k, shown=f"{k!r} (infinite integral)")
    return k, float(h), log_z


def _grid_shape(grid_size, d):
    if grid_size is None:
        shape = (DEFAULT_GRID[d],) * d
    elif Integral().type_ok(grid_size):
        shape = (check_param(grid_size, "grid_size", _OWNER, Integral(low=2)),) * d
    elif isinstance(grid_size, (tuple, list)) and len(grid_size) == d \
            and all(Integral().type_ok(g) for g in grid_size):
        shape = tuple(check_param(g, "grid_size", _OWNER, Integral(low=2)) for g in grid_size)
    else:
        raise param_error("grid_size", _OWNER, f"None, an int >= 2 or a tuple of {d} ints >= 2 (one per column)",
                          grid_size, kind="type" if not isinstance(grid_size, (tuple, list)) else "value")
    if math.prod(shape) > MAX_GRID_POINTS:
        raise param_error("grid_size", _OWNER, f"at most {MAX_GRID_POINTS:,} grid points in all", grid_size,
                          shown=f"{grid_size!r} ({math.prod(shape):,} points)")
    return shape


def _points(X):
    """``(X as float64 (n, d), (column minima, column maxima))``, validated as :func:`check_points` does.

    A float64 array is checked by its minima and maxima (NaN and inf show there), which the box needs
    anyway: one pass fewer over the data than check_points' finiteness test, whose message it gives
    when a value is not finite.
    """
    arr = X if isinstance(X, np.ndarray) else np.asarray(X)
    if arr.dtype == np.float64 and arr.ndim in (1, 2) and arr.size and (arr.ndim == 1 or arr.shape[1] >= 1):
        P = np.ascontiguousarray(arr.reshape(-1, 1) if arr.ndim == 1 else arr)
        ext = _column_extremes(P)
        if np.isfinite(ext[0]).all() and np.isfinite(ext[1]).all():
            return P, ext
    P = check_points(arr, "X", _OWNER, dtype=np.float64, allow_1d=True, min_rows=1)
    return P, _column_extremes(P)


def _column_extremes(P):
    """(column minima, column maxima) of a C-ordered (n, d) array, column by column.

    NumPy's ``min(axis=0)`` on a tall array of few columns is slow (about 10x slower than one 1-D
    reduction per column at n = 1e6, d = 2, measured here), with the same values.
    """
    lo = np.array([P[:, a].min() for a in range(P.shape[1])])
    hi = np.array([P[:, a].max() for a in range(P.shape[1])])
    return lo, hi


def _bounds(bounds, X, h, cut, d, extent):
    """``(low, high)`` arrays of shape (d,): the given box, or the data range widened by cut * h."""
    lo_data, hi_data = extent
    if bounds is None:
        lo, hi = lo_data - cut * h, hi_data + cut * h
        same = hi <= lo  # constant column and cut = 0
        lo, hi = np.where(same, lo - 0.5 * h, lo), np.where(same, hi + 0.5 * h, hi)
        return lo, hi
    accepts = "(low, high) for 1-D data, or a sequence of d (low, high) pairs, finite, low < high"
    try:
        b = np.asarray(bounds, dtype=np.float64)
    except (TypeError, ValueError):
        raise param_error("bounds", _OWNER, accepts, bounds, kind="type") from None
    if b.shape == (2,) and d == 1:
        b = b[None]
    if b.shape != (d, 2):
        raise param_error("bounds", _OWNER, accepts, bounds, shown=f"{bounds!r} (shape {b.shape}, data with {d} "
                                                                 "column(s))")
    if not (np.isfinite(b).all() and (b[:, 0] < b[:, 1]).all()):
        raise param_error("bounds", _OWNER, accepts, bounds)
    lo, hi = b[:, 0], b[:, 1]
    if (lo_data >= lo).all() and (hi_data <= hi).all():
        return lo, hi
    out = (X < lo) | (X > hi)
    if out.any():
        i, j = np.argwhere(out)[0]
        raise param_error("X", _OWNER, "points inside 'bounds' (every point is binned onto the grid)", X,
                          shown=f"{int(out.any(axis=1).sum())} point(s) outside, e.g. X[{i}, {j}] = {X[i, j]:g} "
                                f"outside [{lo[j]:g}, {hi[j]:g}]",
                          hint="Widen the bounds, or pass bounds=None (the data range plus cut bandwidths).")
    return lo, hi


#: points binned per pass: the temporaries (a few arrays of this length) stay in cache and are reused
_CHUNK = 1 << 16


def _binning_1d(x, w, lo, dx, G, m):
    """1-D linear binning in five passes per chunk: t = (x - lo) / dx (two), i = floor(t), two bincounts.

    The fractional parts f = t - i are never formed: per cell j, sum f = sum t - j * count (t < G, so the
    rounding of the sums of t costs about log2(G) bits: below 1e-9 of the cell's mass for G = 2^24,
    1e-12 for G = 4,096). A point on the last grid point (t = G - 1) is cell G - 1 with f = 0; its overflow cell G
    is folded back, so the masses sum to sum(w) exactly up to round-off.
    """
    out = np.zeros(G + 1)
    t = np.empty(m)
    i = np.empty(m, dtype=np.intp)
    j = np.arange(G + 1, dtype=np.float64)
    scale = 1.0 / dx
    for s in range(0, x.size, m):
        e = min(x.size, s + m)
        tk, ik = t[:e - s], i[:e - s]
        np.subtract(x[s:e], lo, out=tk)       # >= 0 exactly for x >= lo (IEEE subtraction is monotone)
        tk *= scale
        ik[:] = tk                            # floor, for t >= 0
        if w is None:
            count = np.bincount(ik, minlength=G + 1)
            up = np.bincount(ik, weights=tk, minlength=G + 1) - j[:count.size] * count
        else:
            wk = w[s:e]
            count = np.bincount(ik, weights=wk, minlength=G + 1)
            tk *= wk
            up = np.bincount(ik, weights=tk, minlength=G + 1) - j[:count.size] * count
        if count.size > G + 1:                # round-off beyond the last grid point
            count[G] += count[G + 1:].sum()
            up[G] += up[G + 1:].sum()
            count, up = count[:G + 1], up[:G + 1]
        out += count
        out -= up
        out[1:] += up[:-1]
    out[G - 1] += out[G]
    return out[:G]


def linear_binning(X, w, lo, dx, shape):
    """Linear (cloud-in-cell) binning: the grid masses c_j = sum_i w_i beta_j(x_i), shape ``shape``.

    Each point gives its weight to the 2^d corners of its grid cell, in
    proportion to the products of (1 - f_a) and f_a over the axes (f_a the
    fractional position in the cell): the masses sum to sum(w) and keep the
    weighted mean. Done with ``numpy.bincount`` over chunks of 65,536
    points (cache-sized temporaries, reused).

    Parameters
    ----------
    X : array of shape (n, d), float64
        Points inside the grid box [lo, lo + (shape - 1) dx] (data units).
    w : array of shape (n,) or None
        Non-negative weights (None: unit weights).
    lo, dx : arrays of shape (d,)
        First grid point and grid spacing per axis (data units).
    shape : tuple of d ints >= 2

    Returns
    -------
    ndarray of float64, shape ``shape``, summing to sum(w).
    """
    n, d = X.shape
    shape = tuple(int(s) for s in shape)
    size = math.prod(shape)
    strides = [math.prod(shape[a + 1:]) for a in range(d)]
    out = np.zeros(size)
    m = min(n, _CHUNK)
    t = np.empty((d, m))
    i = np.empty((d, m), dtype=np.intp)
    flat = np.empty(m, dtype=np.intp)
    cw = np.empty((2 ** d) * m)
    ci = np.empty((2 ** d) * m, dtype=np.intp)
    if d == 1:
        return _binning_1d(X[:, 0], w, float(lo[0]), float(dx[0]), shape[0], m)
    for s in range(0, n, m):
        e = min(n, s + m)
        k = e - s
        tk, ik = t[:, :k], i[:, :k]
        for a in range(d):
            ta, ia = tk[a], ik[a]
            np.subtract(X[s:e, a], lo[a], out=ta)
            ta *= 1.0 / dx[a]                           # in [0, G - 1] up to round-off (points in the box)
            ia[:] = ta                                  # ta >= 0: truncation is floor
            np.minimum(ia, shape[a] - 2, out=ia)        # the last grid point: cell G - 2, fraction 1
            ta -= ia                                    # in [0, 1] up to round-off; the masses still sum to w
        wk = None if w is None else w[s:e]
        fl = flat[:k]
        np.multiply(ik[0], strides[0], out=fl)
        for a in range(1, d):
            fl += ik[a] * strides[a]
        # the 2^d corners of every cell in one bincount: indices and weights side by side
        for corner in range(2 ** d):
            c = cw[corner * k:(corner + 1) * k]
            idx = ci[corner * k:(corner + 1) * k]
            offset = 0
            for a in range(d):
                bit = (corner >> (d - 1 - a)) & 1
                offset += bit * strides[a]
                f = tk[a] if bit else 1.0 - tk[a]
                if a == 0:
                    c[:] = f if wk is None else f * wk
                else:
                    c *= f
            np.add(fl, offset, out=idx)
        out += np.bincount(ci[:(2 ** d) * k], weights=cw[:(2 ** d) * k], minlength=size)
    return out.reshape(shape)


def _kernel_on_offsets(k, h, dx, shape, fshape):
    """The kernel at every grid offset, laid out for a circular convolution of size ``fshape``.

    k is sampled once on the non-negative orthant of offsets (j_1 dx_1, ..., j_d dx_d) / h, j_a < G_a,
    with the kernel object's own ``k(X, Y)`` against the origin, and mirrored (k is even in every
    coordinate): offset -j sits at index fshape - j, so the linear convolution is exact on the grid.
    """
    d = len(shape)
    axes = [np.arange(g) * (dx[a] / h) for a, g in enumerate(shape)]
    if isinstance(k, RadialKernel) and d > 1:
        # a radial kernel is its profile of the squared distance: r^2 (or the squared L1 distance) by
        # broadcasting the axes, instead of k(points, origin) on G^d points
        l1 = getattr(k, "distance", "euclidean") == "l1"
        r = np.zeros(shape)
        for a in range(d):
            r = r + (axes[a] if l1 else axes[a] ** 2).reshape([-1 if b == a else 1 for b in range(d)])
        vals = np.asarray(k.profile(r * r if l1 else r), dtype=np.float64)
    else:
        pts = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, d)
        vals = np.asarray(k(pts, np.zeros((1, d))), dtype=np.float64)[:, 0].reshape(shape)
    full = np.zeros(fshape)
    for signs in range(2 ** d):  # place each mirrored orthant
        src = [slice(None)] * d
        dst = [slice(None)] * d
        for a in range(d):
            g = shape[a]
            if (signs >> a) & 1:  # negative offsets -1 .. -(g-1) at indices fshape-1 .. fshape-g+1
                src[a] = slice(1, g)
                dst[a] = slice(fshape[a] - 1, fshape[a] - g, -1)
            else:
                src[a] = slice(0, g)
                dst[a] = slice(0, g)
        full[tuple(dst)] = vals[tuple(src)]
    return full


def grid_kde(X, *, bandwidth=None, kernel="gaussian", grid_size=None, bounds=None, weights=None, cut=3.0,
             memory=None, threads=None):
    r"""Kernel density estimate on a regular 1-, 2- or 3-D grid: linear binning + FFT convolution.

    .. math::

        \hat p(g) = \frac{1}{\sum_i w_i\, Z h^d} \sum_j c_j\, k\big((g - g_j)/h\big)

    with :math:`c_j` the linearly binned weights of the data on the grid
    points :math:`g_j`, :math:`k` the kernel at unit bandwidth and
    :math:`Z = \int_{R^d} k`. The convolution is a zero-padded FFT over
    every offset the grid spans (no wrap-around, no truncation of the
    kernel), so the only approximation is the binning. Costs O(n 2^d) for the
    binning and O(G log G) for G grid points; memory O(2^d G), never n x G.

    Parameters
    ----------
    X : array of shape (n,) or (n, d), d in {1, 2, 3}
        Data (data units); a 1-D array is one column.
    bandwidth : float > 0, {"scott", "silverman", "isj"} or None, default None
        h in data units, for a kernel given by name (the Gaussian's standard
        deviation); None means "scott" (:func:`kernelkit.density.bandwidth_scott`).
        "isj": improved Sheather-Jones (:func:`kernelkit.density.bandwidth_isj`),
        1-D only. Must be None when ``kernel`` is a Kernel object.
    kernel : str or Kernel, default "gaussian"
        A radial kernel name, as :class:`kernelkit.KernelDensity` accepts them
        ("gaussian", "laplace", "matern32", "cauchy", the compactly supported
        "epanechnikov", "tophat", ..., and scikit-learn's "linear" and
        "exponential" with scikit-learn's meaning where KernelDensity has
        them), or a radial Kernel object (or a sum, product or positive
        scaling of radial kernels) integrable over R^d, applied to the data
        as they are.
    grid_size : int >= 2, tuple of d ints or None, default None
        Grid points per axis; None: 4,096 in 1-D, 512 x 512 in 2-D,
        128^3 in 3-D. At most 2^24 points in all.
    bounds : (low, high), sequence of d pairs, or None, default None
        The grid box (data units), finite with low < high; every data point
        must lie inside it. None: the data range widened by ``cut * h`` on
        each side (for a Kernel object, h is its ``bandwidth``, or 1 data
        unit for a kernel without one).
    weights : array of shape (n,), optional
        Non-negative sample weights with a positive sum (unitless).
    cut : float >= 0, default 3.0
        Widening of the default box, in bandwidths (unused when ``bounds`` is given).
    memory : int, str or None, default None
        Budget in bytes (or "256MB", ...) for the padded FFT arrays, about
        32 bytes per point of the padded grid (2^d times the grid); None: the
        engine's budget (:func:`kernelkit.options`, 1 GB by default). A grid
        that needs more is refused (InvalidValueError naming ``grid_size``).
    threads : int or None, default None
        Threads of the FFTs (``scipy.fft``'s workers); None: the engine's
        setting (:func:`kernelkit.options`: all cores by default).

    Returns
    -------
    GridDensity
        ``(axes, density)``: the grid coordinates (one array for 1-D data, a
        tuple of d arrays otherwise) and the density on the grid, float64,
        shape (G,) or (G_1, ..., G_d) in "ij" order (1 / data-units^d).

    Notes
    -----
    Error against the exact KDE (:meth:`kernelkit.KernelDensity.score_samples`
    at the grid points), measured as ``max |grid - exact| / max exact`` over 512
    (1-D) or 2,000 (2-D, 3-D) grid points, standard normal data, Scott's
    bandwidth, default box (cut = 3), Gaussian kernel unless stated:

    ========  ==========  ===========  ===============
    d         n           grid         error
    ========  ==========  ===========  ===============
    1         10^4        4,096        1.0e-6
    1         10^6        4,096        9.5e-7
    1         10^6        1,024        2.1e-5
    1         10^5        4,096        4.1e-5 (Laplace kernel, h = 0.1)
    2         10^5        512 x 512    9.5e-5
    3         10^4        64^3         7.8e-3
    ========  ==========  ===========  ===============

    Linear binning errs by about Delta^2 / 8 times the curvature of the
    estimate (Delta the spacing): (Delta / h)^2 where single kernels are
    resolved (few points), :math:`\Delta^2 |p''| / p` for large n, so the error
    falls as the grid is refined (4x per halving of Delta) and barely
    depends on n. The Laplace kernel's cusp makes it larger, and a kernel
    with a jump (tophat) errs at first order in Delta / h (8e-3 at
    n = 2,000, h = 0.5, 1,024 points, against 1e-4 for the Epanechnikov). KDEpy's FFTKDE
    on the same grid and bandwidth errs by 3.2e-6 at n = 10^6 (it truncates
    the kernel); ``benchmarks/bench_density_tools.py`` measures both, and
    ``tests/test_density_grid.py`` checks bounds on smaller problems.
    """
    X, extent = _points(X)
    n, d = X.shape
    if d > 3:
        raise param_error("X", _OWNER, "data with 1, 2 or 3 columns (a grid in more dimensions has too many "
                          "points; use KernelDensity.score_samples at the points you need)", X)
    w = None if weights is None else check_sample_weights(weights, n, _OWNER)
    if bandwidth is None and not isinstance(kernel, Kernel):
        bandwidth = "scott"
    if bandwidth in ("scott", "silverman", "isj") and n < 2:
        raise param_error("bandwidth", _OWNER, "a float when there is a single data point", bandwidth)
    k, h, log_z = _resolve_kernel(kernel, bandwidth, X, w)
    cut = check_param(cut, "cut", _OWNER, Real(low=0))
    shape = _grid_shape(grid_size, d)
    pad = h * float(getattr(k, "bandwidth", 1.0) or 1.0)   # a Kernel object: its own bandwidth, else 1
    lo, hi = _bounds(bounds, X, pad, cut, d, extent)
    dx = (hi - lo) / (np.array(shape) - 1)
    axes = [lo[a] + dx[a] * np.arange(shape[a]) for a in range(d)]
    for a in range(d):
        axes[a][-1] = hi[a]
    c = linear_binning(X, w, lo, dx, shape)
    total = float(n if w is None else w.sum())
    from scipy import fft
    fshape = tuple(fft.next_fast_len(2 * g - 1, real=True) for g in shape)
    need = 32 * math.prod(fshape)
    budget = get_options(memory=memory).memory
    if need > budget:
        raise param_error("grid_size", _OWNER, f"a grid whose padded FFT fits the memory budget ({budget:,} bytes)",
                          grid_size, shown=f"{shape} (about {need:,} bytes)",
                          hint="Use a smaller grid, or raise the budget: grid_kde(..., memory='4GB') or "
                               "kernelkit.options(memory=...).")
    kern = _kernel_on_offsets(k, h, dx, shape, fshape)
    workers = get_options(threads=threads).resolved_threads()
    conv = fft.irfftn(fft.rfftn(c, fshape, workers=workers) * fft.rfftn(kern, workers=workers), fshape,
                      workers=workers)
    dens = conv[tuple(slice(0, g) for g in shape)]
    dens *= math.exp(-log_z - d * math.log(h)) / total
    np.maximum(dens, 0.0, out=dens)  # FFT round-off (about 1e-16 of the peak) can dip below 0 far out
    return GridDensity(axes[0] if d == 1 else tuple(axes), np.ascontiguousarray(dens))
