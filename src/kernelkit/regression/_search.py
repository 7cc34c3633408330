r"""Hyperparameters by validation: a grid searched on one hold-out split, through the library's solvers.

:func:`validation_search` fits an estimator on a training part of the data
for every point of a parameter grid and scores it on the held-out rest. It
takes any scikit-learn estimator; for :class:`FalkonRegressor` the penalties
of the grid are one solve: for each setting of the other parameters the
centres, the kernel matrices and every normal product
:math:`K_{nM}^\top K_{nM} v` are shared by all penalties, which are columns
of one preconditioned conjugate-gradient solve (each column with its own
preconditioner), and the validation predictions of all penalties are one
kernel sum. A grid of 8 penalties then costs little more than one fit.

For :class:`KernelRidge` pass a list of penalties as its own ``alpha``
instead: it picks among them by exact leave-one-out from one
eigendecomposition, and the search here then varies the bandwidth.

Dask arrays (X, and y or sample_weight with it) stay on the cluster for
:class:`FalkonRegressor` and :class:`FalkonClassifier`: the split takes the
same rows as for the NumPy array (a sorted gather per chunk, never the whole
of X on the client), every grid point is one fit whose products run on the
cluster (the penalty path is NumPy only: on dask each penalty is its own
fit), and only the validation predictions and targets come back.
"""

from __future__ import annotations

import math
import time

import numpy as np
from sklearn.base import clone, is_classifier
from sklearn.model_selection import ParameterGrid

from .._random import generator
from .._validation import Real, check_param, param_error
from .._xp import any_dask
from ..exceptions import NotSupportedError

__all__ = ["validation_search", "ValidationSearch"]


class ValidationSearch:
    """The outcome of :func:`validation_search` (built by it; the parameters are the attributes).

    Parameters
    ----------
    best_params : dict
        The grid point with the lowest validation score.
    best_score : float
        Its validation score (mean squared error for regressors, error rate
        for classifiers; lower is better).
    best_estimator : estimator or None
        A clone of the estimator with ``best_params``, refitted on all the
        data (None with ``refit=False``).
    results : list of dict
        One row per grid point, in grid order: ``params``, ``score`` and
        ``fit_time`` (seconds; for a Falkon penalty path, the path's time
        divided among its penalties).
    train_indices, validation_indices : ndarray of int
        The split used (rows of X).
    """

    def __init__(self, best_params, best_score, best_estimator, results, train_indices, validation_indices):
        self.best_params, self.best_score, self.best_estimator = best_params, best_score, best_estimator
        self.results = results
        self.train_indices, self.validation_indices = train_indices, validation_indices

    def table(self):
        """The results as aligned text, one grid point per line (best marked with ``*``)."""
        names = sorted({k for r in self.results for k in r["params"]})
        lines = ["  ".join(f"{n:>12}" for n in names) + f"  {'score':>12}  {'fit s':>8}"]
        for r in self.results:
            mark = "*" if r["params"] == self.best_params else " "
            cells = "  ".join(f"{_fmt(r['params'].get(n)):>12}" for n in names)
            lines.append(f"{cells}  {r['score']:>12.6g}  {r['fit_time']:>8.2f} {mark}")
        return "\n".join(lines)

    def __repr__(self):
        return f"ValidationSearch(best_params={self.best_params!r}, best_score={self.best_score:.6g})"


def _fmt(v):
    return f"{v:.4g}" if isinstance(v, float) else str(v)


def _gathered(a):
    """A dask array computed to NumPy (the validation predictions and targets); anything else as is."""
    return a.compute() if any_dask(a) else a


def _score(pred, y, w, classifier):
    """Validation score: (weighted) mean squared error, or error rate for a classifier."""
    if classifier:
        err = (np.asarray(pred) != np.asarray(y)).astype(np.float64)
    else:
        diff = np.asarray(pred, dtype=np.float64) - np.asarray(y, dtype=np.float64)
        err = (diff * diff).reshape(len(diff), -1).mean(axis=1)
    return float(np.average(err, weights=w))


def validation_search(estimator, X, y, param_grid, *, validation_size=0.2, sample_weight=None, random_state=None,
                      refit=True):
    r"""Choose hyperparameters on a hold-out split: fit on the rest for each grid point, score, refit the best.

    Parameters
    ----------
    estimator : scikit-learn estimator
        For example a :class:`FalkonRegressor`, :class:`FalkonClassifier` or
        :class:`KernelRidge`; it is cloned, never modified.
    X : array of shape (n, d)
        Data (data units). A dask array (row chunks of known sizes) with a
        :class:`FalkonRegressor` or :class:`FalkonClassifier` keeps the data on
        the cluster (module docstring).
    y : array of shape (n,) or (n, p)
        Targets or labels (NumPy, or dask with a dask X).
    param_grid : dict of str to list
        Values to try per parameter (scikit-learn's
        :class:`~sklearn.model_selection.ParameterGrid`), e.g.
        ``{"bandwidth": [0.5, 1, 2], "penalty": np.logspace(-8, -3, 6)}``.
    validation_size : float in (0, 1), default 0.2
        Fraction of the rows held out (at least one row on each side).
    sample_weight : array of shape (n,), optional
        Passed to ``fit`` (training rows) and used to weight the validation
        score (NumPy, or dask with a dask X).
    random_state : None, int, SeedSequence or Generator
        Seeds the split.
    refit : bool, default True
        Refit a clone with the best parameters on all of X.

    Returns
    -------
    ValidationSearch
        ``best_params``, ``best_score``, ``best_estimator``, ``results``
        (with ``table()`` for a printout).

    Notes
    -----
    Scores: mean squared error of the predictions (averaged over targets)
    for regressors, misclassification rate for classifiers, weighted by
    ``sample_weight`` when given; lower is better. The search is a plain
    grid: no gradient of the hold-out loss is used.
    """
    owner = "validation_search"
    if not hasattr(estimator, "fit") or not hasattr(estimator, "get_params"):
        raise param_error("estimator", owner, "a scikit-learn estimator (with fit and get_params)", estimator,
                          kind="type")
    if not isinstance(param_grid, dict) or not param_grid:
        raise param_error("param_grid", owner, "a non-empty dict of parameter name to list of values", param_grid,
                          kind="type")
    valid = set(estimator.get_params())
    for name, values in param_grid.items():
        if name not in valid:
            raise param_error("param_grid", owner, f"names of parameters of {type(estimator).__name__} "
                              f"({', '.join(sorted(valid))})", name, shown=repr(name))
        if isinstance(values, str) or not hasattr(values, "__len__") or len(values) == 0:
            raise param_error("param_grid", owner, "a non-empty list of values for each parameter", values,
                              shown=f"{name!r}: {values!r}")
    frac = check_param(validation_size, "validation_size", owner, Real(low=0, high=1, low_open=True, high_open=True))
    from ._falkon import FalkonClassifier, FalkonRegressor
    on_dask = any_dask(X, y, sample_weight)
    if on_dask:
        if not isinstance(estimator, (FalkonRegressor, FalkonClassifier)) or not any_dask(X):
            raise NotSupportedError(
                f"validation_search runs on dask arrays with a dask X and a FalkonRegressor or FalkonClassifier "
                f"(their products run on the cluster). Got {type(estimator).__name__} with "
                f"{'a dask X' if any_dask(X) else 'a NumPy X and dask y or sample_weight'}; "
                "compute the arrays first (.compute()) for other estimators.")
        if any(math.isnan(c) for c in X.shape):
            raise param_error("X", owner, "a dask array with known chunk sizes", X,
                              shown=f"shape {X.shape}", hint="Call X.compute_chunk_sizes() first.")
    else:
        X = np.asarray(X)
        y = np.asarray(y)
    n = X.shape[0] if X.ndim >= 1 else 0
    if X.ndim != 2 or n < 2 or y.shape[0] != n:
        raise param_error("X", owner, "an array of shape (n, d) with n >= 2 rows and as many targets in y",
                          X, shown=f"X shape {X.shape}, y shape {y.shape}")
    w = None if sample_weight is None else (sample_weight if any_dask(sample_weight)
                                            else np.asarray(sample_weight, dtype=np.float64))
    if w is not None and tuple(w.shape) != (n,):
        raise param_error("sample_weight", owner, f"an array of shape ({n},)", sample_weight,
                          shown=f"shape {w.shape}")
    n_val = min(n - 1, max(1, math.ceil(frac * n)))
    perm = generator(random_state, owner).permutation(n)
    iv, it = np.sort(perm[:n_val]), np.sort(perm[n_val:])
    Xtr, ytr, Xva, yva = X[it], y[it], X[iv], y[iv]
    wtr = None if w is None else w[it]
    wva = None if w is None else w[iv]
    if on_dask:   # the validation targets and weights are scored on the client
        yva, wva = _gathered(yva), _gathered(wva)
    classifier = is_classifier(estimator)
    grid = list(ParameterGrid(param_grid))
    results = [None] * len(grid)

    path = (isinstance(estimator, FalkonRegressor) and "penalty" in param_grid and len(param_grid["penalty"]) > 1
            and not on_dask)
    if path:
        # group the grid by the other parameters; each group is one penalty path
        groups = {}
        for i, p in enumerate(grid):
            key = tuple(sorted((k, repr(v)) for k, v in p.items() if k != "penalty"))
            groups.setdefault(key, []).append(i)
        for idx in groups.values():
            others = {k: v for k, v in grid[idx[0]].items() if k != "penalty"}
            lams = [grid[i]["penalty"] for i in idx]
            est = clone(estimator).set_params(**others)
            t0 = time.perf_counter()
            coefs = est._fit_path(Xtr, ytr, lams, sample_weight=wtr)
            A = np.stack([c.reshape(c.shape[0], -1) for c in coefs], axis=1)   # (M, P, q)
            M, P, q = A.shape
            F = est._predict_with(Xva, A.reshape(M, P * q)).reshape(len(iv), P, q)
            elapsed = (time.perf_counter() - t0) / len(idx)
            yv = yva.reshape(len(iv), -1)
            for j, i in enumerate(idx):
                results[i] = {"params": grid[i], "score": _score(F[:, j, :], yv, wva, False),
                              "fit_time": elapsed}
    else:
        for i, p in enumerate(grid):
            est = clone(estimator).set_params(**p)
            t0 = time.perf_counter()
            if wtr is None:
                est.fit(Xtr, ytr)
            else:
                est.fit(Xtr, ytr, sample_weight=wtr)
            elapsed = time.perf_counter() - t0
            results[i] = {"params": p, "score": _score(_gathered(est.predict(Xva)), yva, wva, classifier),
                          "fit_time": elapsed}
    finite = [r for r in results if np.isfinite(r["score"])]
    if not finite:
        raise param_error("param_grid", owner, "at least one grid point with a finite validation score", param_grid,
                          shown="every score was NaN or infinite")
    best = min(finite, key=lambda r: r["score"])
    best_est = None
    if refit:
        best_est = clone(estimator).set_params(**best["params"])
        if w is None:
            best_est.fit(X, y)
        else:
            best_est.fit(X, y, sample_weight=w)
    return ValidationSearch(dict(best["params"]), best["score"], best_est, results, it, iv)
