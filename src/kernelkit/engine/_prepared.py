"""Prepared operands: validate and plan once, then many kernel sums.

Iterative methods (conjugate gradients in kernel ridge regression, mean
shift, permutation tests) apply the same kernel matrix to hundreds of weight
vectors. ``prepare_sum(kernel, X, Y)`` does once what every one-call
``kernel_sum`` does again: input validation (finite values, shapes, dtype),
the float32 range check, the backend choice, and for the fused backend the
component table, distance mode, centre and tile sizes. Each call then only
checks the weights and runs the reduction (the compiled code still packs its
tiles per call: O((n + m) d), against the O(n m d) of the sum itself).

``prepare_normal(kernel, C, X)`` prepares the product with the normal
matrix, :math:`V \\mapsto K_{CX}\\,\\mathrm{diag}(w)\\,K_{XC}\\,V`, the whole cost of
Nystrom solvers (Falkon): the fused backend computes each kernel value once
per product (two kernel sums compute it twice).
"""

from __future__ import annotations

import numpy as np

from .._validation import check_pair, check_weights, param_error

__all__ = ["PreparedSum", "prepare_sum", "PreparedNormal", "prepare_normal"]


class PreparedSum:
    """The linear map ``W -> out``, ``out[j, :] = sum_i k(x_i, y_j) W[i, :]``, prepared for many calls.

    Build it with :func:`prepare_sum`. Options (memory budget, threads,
    backend, progress) are fixed when it is built.

    Parameters
    ----------
    kernel : Kernel
        The kernel k.
    X, Y : arrays of shape (n, d) and (m, d)
        Sources and queries (Y None: X).
    opts : Options
        Resolved options (see :func:`kernelkit.get_options`).

    Attributes
    ----------
    shape : (m, n)
        The shape of the kernel matrix it applies (queries x sources).
    dtype : numpy dtype
        float32 when X and Y are both float32, else float64 (the output dtype).
    backend : str
        The backend that runs ("fused", "numpy" or "torch").
    """

    def __init__(self, kernel, X, Y, opts):
        from . import _backend, _check_kernel, _working
        _check_kernel(kernel, "prepare_sum")
        X, Y = check_pair(X, X if Y is None else Y, owner="prepare_sum")
        kernel._check_features(X.shape[1], "prepare_sum")
        self.kernel = kernel
        self.dtype = X.dtype
        self._X0, self._Y0 = X, Y
        self._X, self._Y = _working(kernel, X, Y)
        self._opts = opts
        self._mod = _backend(opts, kernel, "sum")
        self.backend = self._mod.__name__.rsplit("._", 1)[-1]
        self.shape = (Y.shape[0], X.shape[0])
        self._plans = {}

    def __repr__(self):
        return f"PreparedSum({self.kernel!r}, shape={self.shape}, dtype={np.dtype(self.dtype).name}, " \
               f"backend={self.backend!r})"

    def __call__(self, weights=None):
        """``out[j, :] = sum_i k(x_i, y_j) W[i, :]``.

        Parameters
        ----------
        weights : array of shape (n,) or (n, p), optional
            W (any sign). Default: all ones.

        Returns
        -------
        out : array of shape (m,) or (m, p), in :attr:`dtype`.
        """
        from . import _big, _cast, _working
        n = self.shape[1]
        W = check_weights(weights, n, "weights", "PreparedSum")
        squeeze = W is None or W.ndim == 1
        W = np.ones((n, 1)) if W is None else W.reshape(n, -1)
        X, Y = self._X, self._Y
        if X.dtype == np.float32 and _big(W):   # weights beyond float32's safe range: float64 this time
            X, Y = _working(self.kernel, self._X0, self._Y0, W)
            out = self._mod.kernel_sum(self.kernel, X, Y, W, self._opts)
        elif self.backend == "fused":
            out = self._fused_sum(W)
        else:
            out = self._mod.kernel_sum(self.kernel, X, Y, W, self._opts)
        out = _cast(out, self.dtype)
        return out[:, 0] if squeeze else out

    def _fused_sum(self, W):
        from . import _fused
        p = W.shape[1]
        if p not in self._plans:
            plain, mod = _fused._compile(self.kernel)
            self._plans[p] = (
                _fused.plan(plain, self._X, self._Y, self._opts, None, p,
                            distance=_fused.kernel_distance(self.kernel)) if plain else None,
                [(_fused.plan([_fused._GAUSS_UNIT], Xs, Ys, self._opts, None, 2 * p), b, w)
                 for Xs, Ys, _, b, w in _fused.modulated_parts(mod, self._X, self._Y, W)],
                mod)
        pl, mod_plans, mod = self._plans[p]
        out = np.zeros((self.shape[0], p))
        if pl is not None:
            out += _fused.run_sum(pl, W, self._opts.progress)
        if mod_plans:
            parts = _fused.modulated_parts(mod, self._X, self._Y, W)
            for (mpl, b, w), (_, _, Wm, _, _) in zip(mod_plans, parts):
                S = _fused.run_sum(mpl, Wm, self._opts.progress)
                out += w * (np.cos(b)[:, None] * S[:, :p] + np.sin(b)[:, None] * S[:, p:])
        return out

    def matvec(self, v):
        """``K v`` for a vector v of length n (float64 result), for iterative solvers."""
        return np.asarray(self(np.asarray(v).reshape(-1)), dtype=np.float64)

    def as_linear_operator(self):
        """A :class:`scipy.sparse.linalg.LinearOperator` of shape (m, n) applying this sum (float64)."""
        from scipy.sparse.linalg import LinearOperator
        return LinearOperator(self.shape, matvec=self.matvec, matmat=lambda V: np.asarray(self(V), np.float64),
                              dtype=np.float64)


def prepare_sum(kernel, X, Y=None, *, memory=None, threads=None, backend=None, progress=None):
    """Prepare ``W -> sum_i k(x_i, y_j) W[i, :]`` for many weight vectors.

    Parameters
    ----------
    kernel : Kernel
        The kernel k.
    X : array of shape (n, d)
        Source points x_i.
    Y : array of shape (m, d), optional
        Query points y_j. Default: X (the square kernel matrix K(X, X)).
    memory, threads, backend, progress : optional
        Options of :func:`kernelkit.options`, fixed for every later call.

    Returns
    -------
    PreparedSum
        Call it with weights (n,) or (n, p); ``matvec`` and
        ``as_linear_operator()`` serve iterative solvers.

    Examples
    --------
    >>> import numpy as np, kernelkit as kk
    >>> X = np.random.default_rng(0).normal(size=(500, 3))
    >>> K = kk.engine.prepare_sum(kk.Gaussian(1.0), X)
    >>> v = np.ones(500)
    >>> bool(np.allclose(K(v), kk.kernel_sum(kk.Gaussian(1.0), X, X, v)))
    True
    """
    from . import _opts
    return PreparedSum(kernel, X, Y, _opts(memory, threads, backend, progress))


class PreparedNormal:
    r"""The linear map :math:`V \mapsto K_{CX}\,\mathrm{diag}(w)\,K_{XC}\,V`, prepared for many calls.

    With :math:`K_{XC}[i, j] = k(x_i, c_j)` (n x M: data points x_i, centres
    c_j), ``N(V, w)`` returns, for every column q of V,

    .. math::

        \mathrm{out}_{j q} = \sum_{i=1}^n k(c_j, x_i)\, w_{i q} \sum_{l=1}^M k(x_i, c_l)\, V_{l q} ,

    the product with the weighted normal matrix of least squares on kernel
    features (Nystrom / Falkon). Build it with :func:`prepare_normal`.

    The fused backend runs it as one pass over the data: for each block of
    data points it computes the block's kernel values against every centre
    once, keeps them in cache (about 512 kB per thread), reduces
    :math:`u = K_{XC} V` from them and then accumulates :math:`K_{CX} (w \circ u)`
    from the same values, so each kernel value is computed once per product;
    two kernel sums compute it twice. Other backends (and kernels the fused
    backend cannot run in one pass, such as spectral mixtures) use two
    prepared kernel sums. Precision: float32 inputs give float32 kernel
    values and products, accumulated as the kernel sums are (see
    :func:`kernelkit.kernel_sum`); the result is float64.

    Parameters
    ----------
    kernel : Kernel
        The kernel k.
    C : array of shape (M, d)
        Centres c_j.
    X : array of shape (n, d)
        Data points x_i.
    opts : Options
        Resolved options (see :func:`kernelkit.get_options`).

    Attributes
    ----------
    shape : (M, M)
        The shape of the matrix it applies.
    backend : str
        The backend that runs ("fused", "numpy" or "torch").
    one_pass : bool
        True when the fused one-pass product runs (else two prepared kernel sums).
    """

    def __init__(self, kernel, C, X, opts):
        from . import _check_kernel, _fused_backend, _working
        _check_kernel(kernel, "prepare_normal")
        C, X = check_pair(C, X, owner="prepare_normal", x_name="C", y_name="X")
        kernel._check_features(X.shape[1], "prepare_normal")
        self.kernel, self._opts = kernel, opts
        self.n, self.M = X.shape[0], C.shape[0]
        self.shape = (self.M, self.M)
        self._C0, self._X0 = C, X
        self._plans = {}
        fused = _fused_backend() if opts.backend in ("auto", "fused") else None
        self._fused = fused
        Cw, Xw = _working(kernel, C, X)
        self._C, self._X = Cw, Xw
        self._sums = None
        if fused is None or fused.normal_plan(kernel, Cw[:1], Xw[:1], opts, 1) is None:
            self._fused = None
            self._two_sums()
        self.one_pass = self._fused is not None
        self.backend = "fused" if self.one_pass else self._sums[0].backend

    def _two_sums(self):
        if self._sums is None:
            o = self._opts
            self._sums = (PreparedSum(self.kernel, self._C0, self._X0, o), PreparedSum(self.kernel, self._X0, self._C0, o))
        return self._sums

    def __repr__(self):
        return (f"PreparedNormal({self.kernel!r}, M={self.M}, n={self.n}, backend={self.backend!r}, "
                f"one_pass={self.one_pass})")

    def __call__(self, V, weights=None):
        """``K_CX diag(w) K_XC V``.

        Parameters
        ----------
        V : array of shape (M,) or (M, p)
            Coefficients on the centres.
        weights : array of shape (n,) or (n, p), optional
            Data weights w (any sign; one column per column of V, or one for
            all). Default: ones.

        Returns
        -------
        out : float64 array of shape (M,) or (M, p)
        """
        from . import _big
        V = check_weights(V, self.M, "V", "PreparedNormal")
        squeeze = V.ndim == 1
        V = V.reshape(self.M, -1)
        p = V.shape[1]
        w = check_weights(weights, self.n, "weights", "PreparedNormal")
        if w is not None:
            w = w.reshape(self.n, -1)
            if w.shape[1] not in (1, p):
                raise param_error("weights", "PreparedNormal", f"1 or {p} columns (one per column of V)", w,
                                  shown=f"{w.shape[1]} columns")
            if w.shape[1] != p:
                w = np.repeat(w, p, axis=1)
        if self._fused is None or (self._X.dtype == np.float32 and (_big(V) or _big(w))):
            KXC, KCX = self._two_sums()
            u = np.asarray(KXC(V), dtype=np.float64)
            if w is not None:
                u = u * w
            out = np.asarray(KCX(u), dtype=np.float64)
        else:
            if p not in self._plans:
                self._plans[p] = self._fused.normal_plan(self.kernel, self._C, self._X, self._opts, p)
            out = self._fused.run_normal(self._plans[p], V, w)
        return out[:, 0] if squeeze else out


def prepare_normal(kernel, C, X, *, memory=None, threads=None, backend=None, progress=None):
    r"""Prepare :math:`V \mapsto K_{CX}\,\mathrm{diag}(w)\,K_{XC}\,V` for many V (Nystrom normal equations).

    Parameters
    ----------
    kernel : Kernel
        The kernel k.
    C : array of shape (M, d)
        Centres (data units).
    X : array of shape (n, d)
        Data points (data units).
    memory, threads, backend, progress : optional
        Options of :func:`kernelkit.options`, fixed for every later call.

    Returns
    -------
    PreparedNormal
        Call it with V (M,) or (M, p) and optional data weights.

    Examples
    --------
    >>> import numpy as np, kernelkit as kk
    >>> X = np.random.default_rng(0).normal(size=(500, 3)); C = X[:40]
    >>> N = kk.engine.prepare_normal(kk.Gaussian(1.0), C, X)
    >>> v = np.ones(40)
    >>> u = kk.kernel_sum(kk.Gaussian(1.0), C, X, v)
    >>> bool(np.allclose(N(v), kk.kernel_sum(kk.Gaussian(1.0), X, C, u)))
    True
    """
    from . import _opts
    return PreparedNormal(kernel, C, X, _opts(memory, threads, backend, progress))
