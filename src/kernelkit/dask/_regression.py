r"""Falkon's conjugate gradients with the data on a dask cluster (private; see :mod:`kernelkit.dask`).

``FalkonRegressor.fit(X, y)`` with X a dask array hands over to :func:`falkon_start`:

* the centres are chosen on the client: ``centers="uniform"`` draws the same
  row indices as the local fit (same ``random_state``) and gathers only
  those rows; an array of centres is used as given; ``"leverage"`` and
  ``"kmeans"`` need passes over the whole data and raise NotSupportedError;
* X is persisted on the cluster once (``X.persist()``);
* every CG iteration submits one small, fresh graph (never one that grows
  with the iterations, which broke scipy's solvers on dask arrays,
  dask/dask#8702): one task per X chunk computes its share
  :math:`K_{CX_b}\,\mathrm{diag}(w_b)\,K_{X_bC}\,a` with the engine's
  one-pass normal product (:func:`kernelkit.engine.prepare_normal`, with
  the threads and memory of :func:`kernelkit.dask.task_resources`), a tree
  of fan-in ``fan_in`` adds the (M, p) partials in float64 and the client
  gathers one NumPy (M, p) array;
* the right-hand side :math:`K_{MX} R` is one dask kernel sum, computed once;
* everything M x M (K_MM, the preconditioner's factors, the CG vectors)
  stays on the client.
"""

from __future__ import annotations

import numpy as np

from .._validation import param_error
from . import _graph
from ._graph import _as_points, is_dask, require_dask

__all__ = ["DaskFalkonSystem", "falkon_start", "falkon_predict", "falkon_classifier_fit", "falkon_classifier_output"]


def _normal_task(Xb, Wb, C, a, kernel, cfg):
    """float64 (M, p) share of one X chunk: K_{C Xb} diag(Wb) K_{Xb C} a (one engine pass)."""
    from ..engine import prepare_normal
    if Xb.shape[0] == 0:
        return np.zeros(a.shape)
    threads, memory = _graph.task_resources(cfg["memory"], cfg["threads"], cfg["memory_fraction"],
                                           cfg["host_threads"])
    N = prepare_normal(kernel, C, Xb, memory=memory, threads=threads, backend=cfg["backend"], progress=False)
    return np.asarray(N(a, Wb), dtype=np.float64).reshape(a.shape)


def _add(*parts):
    total = np.array(parts[0], dtype=np.float64, copy=True)
    for p in parts[1:]:
        total += p
    return total


class DaskFalkonSystem:
    """The operators of Falkon's normal equations with the data X on a dask cluster.

    Provides what the conjugate gradients of
    :class:`kernelkit.regression.FalkonRegressor` use: ``normal(a, W)``
    (:math:`K_{CX}\\,\\mathrm{diag}(w)\\,K_{XC}\\,a`, one small graph per call,
    gathered as a NumPy array), ``K_Mn(R)`` (:math:`K_{CX} R`, NumPy) and
    ``K_nM(a)`` (:math:`K_{XC} a`, a lazy dask array).

    Parameters
    ----------
    kernel : Kernel
        The kernel k (on the working, scaled points).
    X : dask array of shape (n, d)
        Data points, chunked by rows; persisted on the cluster here.
    C : ndarray of shape (M, d)
        The centres (same dtype as X).
    opts : Options
        The client's engine options (memory budget in bytes, threads, backend).
    graph : GraphOptions, optional
        Graph shape (fan-in of the sum tree); default: those in force.
    """

    def __init__(self, kernel, X, C, opts, graph=None):
        da = require_dask()
        self.kernel = kernel
        self.X = X.persist()
        self.C = np.ascontiguousarray(C)
        self.M = C.shape[0]
        self.graph = _graph.resolve_graph("FalkonRegressor.fit") if graph is None else graph
        self.cfg = _graph._engine_cfg(opts.memory, opts.threads or None, opts.backend, self.graph)
        self._C_dask = da.from_array(self.C, chunks=self.C.shape, name=False).persist()
        self._W_src = self._W = None
        self.n_graphs = 0   # normal products submitted (one graph each)

    def _aligned(self, W):
        """W (n,) or (n, p) as a persisted dask array chunked like X's rows (cached for the CG iterations)."""
        da = require_dask()
        if W is None:
            return None
        if W is self._W_src:
            return self._W
        A = W if is_dask(W) else da.from_array(np.asarray(W, dtype=np.float64), name=False)
        A = A.reshape(A.shape[0], -1) if A.ndim == 1 else A
        A = A.astype(np.float64).rechunk((self.X.chunks[0], -1)).persist()
        self._W_src, self._W = W, A
        return A

    def normal(self, a, W=None):
        """:math:`K_{CX}\\,\\mathrm{diag}(w)\\,K_{XC}\\,a` as a float64 NumPy array (M,) or (M, p)."""
        import dask
        a = np.asarray(a, dtype=np.float64)
        squeeze = a.ndim == 1
        a2 = np.ascontiguousarray(a.reshape(self.M, -1))
        Wd = self._aligned(W)
        if Wd is not None and Wd.shape[1] not in (1, a2.shape[1]):
            raise param_error("W", "DaskFalkonSystem.normal", f"1 or {a2.shape[1]} columns", W,
                              shown=f"{Wd.shape[1]} columns")
        task = dask.delayed(_normal_task, pure=True)
        Cd = self._C_dask.to_delayed().ravel()[0]
        ad = dask.delayed(a2, pure=True)
        xs = self.X.to_delayed().ravel()
        ws = [None] * len(xs) if Wd is None else Wd.to_delayed().ravel()
        parts = [task(xb, wb, Cd, ad, self.kernel, self.cfg) for xb, wb in zip(xs, ws)]
        fan = self.graph.fan_in
        while len(parts) > 1:
            parts = [dask.delayed(_add, pure=True)(*parts[i:i + fan]) for i in range(0, len(parts), fan)]
        (out,) = dask.compute(parts[0])
        self.n_graphs += 1
        return out[:, 0] if squeeze else out

    def K_Mn(self, R):
        """:math:`\\sum_i k(c_j, x_i) R_i`: a float64 NumPy array (M,) or (M, p), R dask or NumPy (n,) or (n, p)."""
        out = _graph.kernel_sum(self.kernel, self.X, self.C, R, memory=self.cfg["memory"],
                                threads=self.cfg["threads"], backend=self.cfg["backend"],
                                fan_in=self.graph.fan_in)
        return np.asarray(out.compute(), dtype=np.float64)

    def K_nM(self, a):
        """:math:`\\sum_j k(x_i, c_j) a_j`: a lazy dask array (n,) or (n, p)."""
        return _graph.kernel_sum(self.kernel, self.C, self.X, np.asarray(a, dtype=np.float64),
                                 memory=self.cfg["memory"], threads=self.cfg["threads"],
                                 backend=self.cfg["backend"], fan_in=self.graph.fan_in)


def _column(v, X, name, owner, ndim=(1, 2)):
    """A target or weight vector as a float64 dask array chunked like X's rows (NumPy input is wrapped)."""
    da = require_dask()
    n = X.shape[0]
    if not is_dask(v):
        from .._validation import _numeric_array
        v = _numeric_array(v, name, owner)
    if v.ndim not in ndim or v.shape[0] != n or (v.ndim == 2 and v.shape[1] < 1):
        shape = f"({n},)" if ndim == (1,) else f"({n},) or ({n}, p)"
        raise param_error(name, owner, f"an array of shape {shape}, one row per row of X", v,
                          shown=f"shape {v.shape}")
    if is_dask(v):
        for c in v.chunks[0]:
            _graph._known(c, name, owner)
        chunks = (X.chunks[0],) if v.ndim == 1 else (X.chunks[0], -1)
        return v.astype(np.float64).rechunk(chunks)
    chunks = (X.chunks[0],) if v.ndim == 1 else (X.chunks[0], -1)
    return da.from_array(np.asarray(v, dtype=np.float64), chunks=chunks, name=False)


def falkon_start(est, X, y, sample_weight):
    """``FalkonRegressor._start`` for a dask X (or dask y / weights): (X, Y, squeeze, w, system, opts, params).

    X is the persisted, scaled dask array; Y (n, p) and w (n,) are float64 dask arrays chunked like X's rows
    (w None without weights); ``system`` is a :class:`kernelkit.regression._falkon._FalkonSystem` whose
    ``normal`` / ``K_Mn`` / ``K_nM`` are a :class:`DaskFalkonSystem`'s.
    """
    import dask
    from .._options import get_options
    from .._random import generator
    from .._validation import OneOf, check_param, check_points
    from ..exceptions import NotSupportedError
    from ..regression._centers import CENTER_METHODS
    from ..regression._falkon import _FalkonSystem, _check_lengthscales, auto_n_centers
    da = require_dask()
    owner = est._owner
    fit_owner = owner + ".fit"
    params = est._check_common(X)
    X = _as_points(X, "X", fit_owner, rows_per_chunk=2 ** 16)
    n, d = X.shape
    if n < 1 or d < 1:
        raise param_error("X", fit_owner, "an array with at least 1 row and 1 feature", X, shown=f"shape {X.shape}")
    if y is None:
        raise param_error("y", fit_owner, "an array of targets", y, kind="type")
    Y = _column(y, X, "y", fit_owner)
    squeeze = Y.ndim == 1
    Y = Y.reshape(n, 1) if squeeze else Y
    w = None if sample_weight is None else _column(sample_weight, X, "sample_weight", fit_owner, ndim=(1,))
    dtype = np.dtype(params["dtype"]).type if params["dtype"] else (
        np.float32 if X.dtype == np.float32 else np.float64)
    X = X.astype(dtype) if X.dtype != dtype else X
    ls = _check_lengthscales(est.lengthscales, d, owner)
    if ls is not None:
        X = X / ls.astype(dtype)
    # values: one pass over y and the weights now (X's values are checked inside the tasks)
    checks = [da.isfinite(Y).all()]
    if w is not None:
        checks += [(da.isfinite(w) & (w >= 0)).all(), w.sum()]
    got = dask.compute(*checks)
    if not bool(got[0]):
        raise param_error("y", fit_owner, "an array of finite values", y, shown="NaN or infinite values")
    if w is not None:
        if not bool(got[1]):
            raise param_error("sample_weight", fit_owner, "finite non-negative weights", sample_weight,
                              shown="a negative, NaN or infinite weight")
        if not float(got[2]) > 0:
            raise param_error("sample_weight", fit_owner, "weights with a positive sum (not all zero)",
                              sample_weight, shown=f"sum {float(got[2])}")
    M_given = params["n_centers"]
    M = auto_n_centers(n) if M_given == "auto" else M_given
    centers = est.centers
    rng = generator(est.random_state, owner)
    if isinstance(centers, str):
        centers = check_param(centers.lower(), "centers", owner, OneOf(*CENTER_METHODS))
        if centers != "uniform":
            raise NotSupportedError(
                f"{fit_owner} on a dask X supports centers='uniform' or an array of centres, not "
                f"{centers!r}: it needs passes over the whole data. Choose the centres on a sample, e.g. "
                f"kernelkit.regression.select_centers(X[:20000].compute(), M, method={centers!r}), and pass them.")
        if M > n:
            raise param_error("n_centers", owner, f"an int in [1, n_samples = {n}] or 'auto'", M_given,
                              hint="Use fewer centres, or pass the centres themselves as an array.")
        # the draw of select_centers(method="uniform"): the same rows as the local fit with the same seed
        idx = np.sort(rng.choice(n, size=M, replace=False)).astype(np.int64)
        C = np.asarray(X[idx].compute())
        C = check_points(C, "X", fit_owner)   # the gathered rows: NaN here is X's
    else:
        C = check_points(centers, "centers", owner)
        if C.shape[1] != d:
            raise param_error("centers", owner, f"an array with {d} features, as X", centers,
                              shown=f"shape {C.shape}")
        if M_given != "auto" and M_given != C.shape[0]:
            raise param_error("n_centers", owner, f"'auto' or {C.shape[0]} (the rows of centers)", M_given)
        C = C / ls if ls is not None else C
        idx = None
    C = np.ascontiguousarray(C, dtype=dtype)
    # the median heuristic (kernel name, no bandwidth) on the centres, a uniform sample of X
    kernel, bw = est._resolve(C if idx is not None else np.asarray(X[:min(n, 2000)].compute()))
    kernel._check_features(d, owner)
    opts = get_options(memory=est.memory, threads=est.threads, backend=est.backend, progress=est.progress)
    ops = DaskFalkonSystem(kernel, X, C, opts)
    system = _FalkonSystem(kernel, ops.X, C, idx, opts, dtype, operators=ops)
    est.n_features_in_ = d
    if hasattr(est, "feature_names_in_"):
        del est.feature_names_in_
    est.kernel_, est.bandwidth_ = kernel, bw
    est.lengthscales_ = ls
    est._centers_work = C
    est.centers_ = C if ls is None else (C * ls).astype(dtype)
    est.center_indices_ = idx
    est.n_centers_ = C.shape[0]
    est.dtype_ = np.dtype(dtype)
    return ops.X, Y, squeeze, w, system, opts, params


def falkon_predict(est, X, return_std=False):
    """``FalkonRegressor.predict`` for a dask X (a lazy float64 dask array (m,) or (m, p)) or after a dask fit."""
    from ..exceptions import NotSupportedError
    if not hasattr(est, "coef_"):
        from ..regression._falkon import NotFittedError
        raise NotFittedError(f"This {type(est).__name__} instance is not fitted yet. Call 'fit' first.")
    if return_std is not False:
        raise NotSupportedError("FalkonRegressor.predict(return_std=True) is not supported on dask data (a fit "
                                "on a dask X, or a dask X): the subset-of-regressors variance needs "
                                "K_nM^T K_nM, formed by blocks on the client. Fit on a NumPy array for it.")
    if not is_dask(X):   # NumPy queries after a dask fit: NumPy out
        return est._decision(X)
    owner = f"{est._owner}.predict"
    Xd = _as_points(X, "X", owner)
    if Xd.shape[1] != est.n_features_in_:
        raise param_error("X", owner, f"an array with {est.n_features_in_} features, as in fit", X,
                          shown=f"shape {Xd.shape}")
    Xd = Xd.astype(est.dtype_) if Xd.dtype != est.dtype_ else Xd
    if est.lengthscales_ is not None:
        Xd = Xd / est.lengthscales_.astype(est.dtype_)
    out = _graph.kernel_sum(est.kernel_, est._centers_work, Xd, np.asarray(est.coef_, dtype=np.float64),
                            memory=est.memory, threads=est.threads, backend=est.backend)
    return out.astype(np.float64)


# --- FalkonClassifier: Newton steps with the data on the cluster ------------

def _pm_columns(labels, classes):
    """+-1 targets of one chunk of labels: one column for two classes, else one per class (one-vs-rest)."""
    yi = np.searchsorted(classes, np.asarray(labels).ravel())
    if len(classes) == 2:
        return np.where(yi == 1, 1.0, -1.0)[:, None]
    return np.where(yi[:, None] == np.arange(len(classes))[None, :], 1.0, -1.0)


def _labels(y, X, owner):
    """Class labels as a 1-D dask array chunked like X's rows, and the sorted classes (one pass)."""
    da = require_dask()
    n = X.shape[0]
    if y is None:
        raise param_error("y", owner, "an array of class labels", y, kind="type")
    if not is_dask(y):
        y = np.asarray(y)
    if y.ndim == 2 and y.shape[1] == 1:
        y = y.reshape(-1)
    if y.ndim != 1 or y.shape[0] != n:
        raise param_error("y", owner, f"an array of shape ({n},), one label per row of X", y,
                          shown=f"shape {y.shape}")
    if is_dask(y):
        for c in y.chunks[0]:
            _graph._known(c, "y", owner)
        y = y.rechunk((X.chunks[0],))
    else:
        y = da.from_array(y, chunks=(X.chunks[0],), name=False)
    return y, np.unique(np.asarray(da.unique(y).compute()))


def falkon_classifier_fit(est, X, y, sample_weight, n_newton, t0):
    """``FalkonClassifier.fit`` for a dask X (or dask y / weights): the local Newton steps on the cluster.

    The steps are the local fit's (same penalty path, the same CG per step, same stopping rule):
    the per-point quantities (decision values F, the loss's derivatives D and G) are dask arrays
    persisted once per step; each CG iteration submits one small graph (:class:`DaskFalkonSystem`);
    the loss is one dask sum per step. Everything M x M stays on the client.
    """
    import time

    import dask
    from sklearn.utils.multiclass import check_classification_targets
    from ..regression._falkon import _NEWTON_RTOL, _PATH_CG_ITER, FalkonIteration, _sigmoid
    da = require_dask()
    owner = est._owner
    fit_owner = owner + ".fit"
    Xd = _as_points(X, "X", fit_owner, rows_per_chunk=2 ** 16)
    labels, classes = _labels(y, Xd, fit_owner)
    check_classification_targets(classes)
    if len(classes) < 2:
        raise param_error("y", fit_owner, "labels of at least two classes", y,
                          shown=f"only one class, {classes[0]!r}")
    q = 1 if len(classes) == 2 else len(classes)
    Ypm = labels.map_blocks(_pm_columns, classes, chunks=(labels.chunks[0], (q,)), new_axis=1, dtype=np.float64)
    X, Ypm, _, w, system, opts, params = falkon_start(est, Xd, Ypm, sample_weight)
    n = X.shape[0]
    sw = da.ones(n, chunks=(X.chunks[0],)) if w is None else w
    sw, Ypm = dask.persist(sw[:, None], Ypm.rechunk((X.chunks[0], -1)))
    s = float(n) if w is None else float(w.sum().compute())
    lam = params["penalty"]
    path = []   # the local fit's penalty path
    lam_t = max(lam, 1e-3)
    while lam_t > lam * (1 + 1e-12) and len(path) < n_newton - 1:
        path.append(lam_t)
        lam_t /= 10
    path += [lam] * (n_newton - len(path))
    squeeze = q == 1
    shape = (system.M,) if squeeze else (system.M, q)
    alpha = np.zeros((system.M, q))
    F = da.zeros((n, q), chunks=(X.chunks[0], q))
    objective = []
    last = None
    for t, lam_t in enumerate(path, 1):
        P = _sigmoid(Ypm * F)                          # probability of the observed label
        D = sw * P * (1 - P)                           # second derivative of the weighted loss
        G = -sw * Ypm * (1 - P)                        # first derivative
        Wt, R = dask.persist(da.maximum(D, 1e-12 * sw), D * F - G)
        system.set_weights(Wt, lam_t * s)
        beta0 = system.Binv(alpha)
        cg_iter = params["max_iter"] if lam_t == lam else min(params["max_iter"], _PATH_CG_ITER)
        beta, hist = system.solve(R, cg_iter, params["tol"], beta0=beta0)
        alpha = system.B(beta)
        F = system.K_nM(alpha).reshape(n, q).persist()
        loss = float(da.sum(sw * da.logaddexp(0.0, -Ypm * F)).compute()) / s
        obj = loss + 0.5 * lam_t * float(np.sum(alpha * (system.K_MM @ alpha)))
        objective.append(obj)
        if est.callback is not None:
            a = alpha.reshape(shape).copy()
            if est.callback(FalkonIteration(t, a, hist[-1] if hist else 0.0, time.perf_counter() - t0,
                                            lambda Z, a=a: est._predict_with(Z, a))):
                break
        if lam_t == lam and last is not None and abs(last - obj) <= _NEWTON_RTOL * max(abs(obj), 1e-300):
            break
        last = obj if lam_t == lam else None
    est.classes_ = classes
    est.coef_ = alpha.reshape(shape)
    est.n_iter_ = len(objective)
    est.objective_ = np.asarray(objective)
    return est


def _proba_block(f):
    from ..regression._falkon import _sigmoid
    if f.ndim == 1:
        p = _sigmoid(f)
        return np.column_stack([1 - p, p])
    P = _sigmoid(f)
    return P / P.sum(axis=1, keepdims=True)


def _label_block(f, classes):
    return classes[(f > 0).astype(int)] if f.ndim == 1 else classes[np.argmax(f, axis=1)]


def falkon_classifier_output(est, X, what):
    """``FalkonClassifier.decision_function / predict_proba / predict`` on a dask X: lazy dask arrays."""
    f = falkon_predict(est, X)
    if what == "decision":
        return f
    if what == "proba":
        k = len(est.classes_)
        if f.ndim == 1:
            return f.map_blocks(_proba_block, chunks=(f.chunks[0], (k,)), new_axis=1, dtype=np.float64)
        return f.rechunk({1: -1}).map_blocks(_proba_block, chunks=(f.chunks[0], (k,)), dtype=np.float64)
    if f.ndim == 1:
        return f.map_blocks(_label_block, est.classes_, dtype=est.classes_.dtype)
    return f.rechunk({1: -1}).map_blocks(_label_block, est.classes_, drop_axis=1, dtype=est.classes_.dtype)
