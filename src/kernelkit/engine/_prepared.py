"""Prepared operands: validate and plan once, then many kernel sums.

Iterative methods (conjugate gradients in kernel ridge regression, mean
shift, permutation tests) apply the same kernel matrix to hundreds of weight
vectors. ``prepare_sum(kernel, X, Y)`` does once what every one-call
``kernel_sum`` does again: input validation (finite values, shapes, dtype),
the float32 range check, the backend choice, and for the fused backend the
component table, distance mode, centre and tile sizes. Each call then only
checks the weights and runs the reduction (the compiled code still packs its
tiles per call: O((n + m) d), against the O(n m d) of the sum itself).
"""

from __future__ import annotations

import numpy as np

from .._validation import check_pair, check_weights

__all__ = ["PreparedSum", "prepare_sum"]


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
                _fused.plan(plain, self._X, self._Y, self._opts, None, p) if plain else None,
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
