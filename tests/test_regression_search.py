"""validation_search: hold-out grids, the Falkon penalty path against one fit per penalty."""

import numpy as np
import pytest

import kernelkit as kk
from kernelkit.regression import FalkonClassifier, FalkonRegressor, KernelRidge, validation_search


def _data(n=400, d=3, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.uniform(-2, 2, size=(n, d))
    y = np.sin(2 * X[:, 0]) + 0.5 * X[:, 1] ** 2 + 0.1 * rng.normal(size=n)
    return X, y


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("multi", [False, True], ids=["one-target", "two-targets"])
def test_falkon_penalty_path_equals_separate_fits(dtype, multi):
    X, y = _data()
    X = X.astype(dtype)
    if multi:
        y = np.stack([y, np.cos(X[:, 2].astype(float))], axis=1)
    lams = [1e-6, 1e-4, 1e-2]
    base = FalkonRegressor(n_centers=60, bandwidth=1.0, random_state=4, max_iter=60, tol=1e-10)
    coefs = base._fit_path(X, y, lams)
    for lam, c in zip(lams, coefs):
        ref = FalkonRegressor(**{**base.get_params(), "penalty": lam}).fit(X, y)
        assert c.shape == ref.coef_.shape
        f, fr = ref._predict_with(X, c), ref.predict(X)
        tol = 2e-3 if dtype == np.float32 else 1e-7   # float32 CG levels off near 1e-5 (see FalkonRegressor)
        np.testing.assert_allclose(f.reshape(fr.shape), fr, atol=tol * np.abs(fr).max())


def test_falkon_path_in_groups_under_a_small_budget():
    """Fewer preconditioner factors than penalties fit the budget: the path runs in groups, same answer."""
    X, y = _data(n=300)
    lams = [1e-5, 1e-4, 1e-3, 1e-2]
    base = FalkonRegressor(n_centers=80, bandwidth=1.0, random_state=2, max_iter=80, tol=1e-12)
    full = base._fit_path(X, y, lams)
    with kk.options(memory=2 * 8 * 80 * 80):   # two M x M factors at a time
        grouped = base._fit_path(X, y, lams)
    for a, b in zip(full, grouped):
        np.testing.assert_allclose(a, b, rtol=1e-7, atol=1e-9 * np.abs(a).max())


def test_search_picks_the_validation_minimum_and_refits():
    X, y = _data(n=500, seed=1)
    grid = {"bandwidth": [0.05, 1.0], "penalty": [1e-7, 1e-4, 1.0]}
    est = FalkonRegressor(n_centers=80, random_state=0, max_iter=40)
    res = validation_search(est, X, y, grid, random_state=3)
    assert len(res.results) == 6
    # the same scores as fitting each grid point separately on the training rows
    Xtr, ytr = X[res.train_indices], y[res.train_indices]
    Xva, yva = X[res.validation_indices], y[res.validation_indices]
    for r in res.results:
        m = FalkonRegressor(**{**est.get_params(), **r["params"]}).fit(Xtr, ytr)
        # equal up to the solver's tolerance (the path stops when its worst column reaches tol)
        np.testing.assert_allclose(r["score"], np.mean((m.predict(Xva) - yva) ** 2), rtol=1e-3)
    scores = [r["score"] for r in res.results]
    assert res.best_score == min(scores)
    assert res.best_params["bandwidth"] == 1.0 and res.best_params["penalty"] < 1.0   # 0.05 overfits, 1.0 underfits
    assert res.best_estimator.get_params()["bandwidth"] == 1.0 and res.best_estimator.n_features_in_ == 3
    assert np.mean((res.best_estimator.predict(Xva) - yva) ** 2) < 0.05
    assert set(res.train_indices).isdisjoint(res.validation_indices)
    assert len(res.train_indices) + len(res.validation_indices) == 500
    assert "*" in res.table() and "bandwidth" in res.table()
    assert est.get_params()["bandwidth"] is None   # the estimator given is not modified


def test_search_generic_estimators():
    X, y = _data(n=200, seed=2)
    res = validation_search(KernelRidge(alpha=[1e-3, 1e-1, 10.0]), X, y, {"bandwidth": [0.3, 1.0, 3.0]},
                            random_state=0, refit=False)
    assert res.best_estimator is None and len(res.results) == 3
    labels = (y > np.median(y)).astype(int)
    res = validation_search(FalkonClassifier(n_centers=40, random_state=0), X, labels,
                            {"penalty": [1e-6, 1e-3]}, random_state=0)
    assert 0 <= res.best_score <= 0.3
    sw = np.random.default_rng(0).uniform(0.5, 1.5, size=200)
    res_w = validation_search(FalkonRegressor(n_centers=40, bandwidth=1.0, random_state=0), X, y,
                              {"penalty": [1e-6, 1e-3]}, sample_weight=sw, random_state=0)
    assert np.isfinite(res_w.best_score)


def test_search_errors():
    X, y = _data(n=50)
    est = FalkonRegressor(n_centers=10)
    with pytest.raises(ValueError, match="param_grid"):
        validation_search(est, X, y, {"not_a_param": [1]})
    with pytest.raises(ValueError, match="param_grid"):
        validation_search(est, X, y, {"penalty": []})
    with pytest.raises(TypeError, match="param_grid"):
        validation_search(est, X, y, [("penalty", [1e-3])])
    with pytest.raises(ValueError, match="validation_size"):
        validation_search(est, X, y, {"penalty": [1e-3]}, validation_size=1.0)
    with pytest.raises(ValueError, match="sample_weight"):
        validation_search(est, X, y, {"penalty": [1e-3]}, sample_weight=np.ones(3))
    with pytest.raises(TypeError, match="estimator"):
        validation_search("falkon", X, y, {"penalty": [1e-3]})
