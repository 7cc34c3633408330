"""FalkonRegressor with X a dask array (kernelkit.dask._regression): against the local fit.

Fast tier: dask's synchronous scheduler. The oracle is the local
FalkonRegressor on the same NumPy arrays with the same seed (same centres),
itself checked against exact kernel ridge regression in
tests/test_regression_falkon.py; the distributed operators are also checked
one by one against the engine's prepared products and a dense NumPy formula.
CG amplifies rounding differences with the iterations (measured: 4e-13
relative after 3 iterations, 2e-12 after 10, 5e-7 after 30 on the tol=0
systems below), so the equality tests run 5 iterations at rtol 1e-10. The
LocalCluster test (2 processes) is marked slow.
"""

import numpy as np
import pytest

da = pytest.importorskip("dask.array")
dask = pytest.importorskip("dask")

import kernelkit as kk  # noqa: E402
from kernelkit._options import get_options  # noqa: E402
from kernelkit.dask._regression import DaskFalkonSystem  # noqa: E402
from kernelkit.exceptions import InputError, NotSupportedError  # noqa: E402
from kernelkit.regression import FalkonRegressor  # noqa: E402

#: ragged row chunks of n = 203 rows, with an empty chunk
CHUNKS = (60, 0, 77, 1, 65)


@pytest.fixture(autouse=True)
def sync_scheduler():
    with dask.config.set(scheduler="sync"):
        yield


def _data(dtype=np.float64, n=203, d=3, p=None, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d)).astype(dtype)
    y = np.sin(X.astype(np.float64)).sum(1) + 0.1 * rng.normal(size=n)
    if p:
        y = np.stack([y, np.cos(X[:, 0])] + [rng.normal(size=n)] * (p - 2), axis=1)
    return X, y


def _kw(**kw):
    base = dict(kernel="gaussian", bandwidth=1.0, penalty=1e-3, n_centers=31, random_state=3, max_iter=5, tol=0.0)
    base.update(kw)
    return base


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_operators_match_engine_and_dense(dtype):
    X, _ = _data(dtype)
    C = X[::7].copy()
    k = kk.Gaussian(0.8)
    ops = DaskFalkonSystem(k, da.from_array(X, chunks=(CHUNKS, 3)), C, get_options(memory=2 ** 16))
    rng = np.random.default_rng(1)
    a, W = rng.normal(size=(C.shape[0], 2)), rng.uniform(size=(X.shape[0], 1))
    X64, C64 = X.astype(np.float64), C.astype(np.float64)
    K = np.exp(-((X64[:, None, :] - C64[None]) ** 2).sum(-1) / (2 * 0.8 ** 2))   # dense K_XC
    tol = 1e-12 if dtype == np.float64 else 1e-5
    np.testing.assert_allclose(ops.normal(a, W), K.T @ (W * (K @ a)), rtol=tol)
    np.testing.assert_allclose(ops.normal(a[:, 0]), K.T @ (K @ a[:, 0]), rtol=tol)
    np.testing.assert_allclose(ops.normal(a, W), kk.engine.prepare_normal(k, C, X)(a, W), rtol=1e-13 if
                               dtype == np.float64 else 1e-5)
    R = rng.normal(size=(X.shape[0], 2))
    np.testing.assert_allclose(ops.K_Mn(da.from_array(R, chunks=50)), K.T @ R, rtol=tol, atol=tol)
    got = ops.K_nM(a)
    assert isinstance(got, da.Array)
    np.testing.assert_allclose(got.compute(), K @ a, rtol=tol, atol=tol)
    assert ops.n_graphs == 3


@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("p", [None, 2])
def test_fit_matches_local_fit_float64(weighted, p):
    X, y = _data(p=p)
    w = np.random.default_rng(2).uniform(0.5, 2.0, size=X.shape[0]) if weighted else None
    ref = FalkonRegressor(**_kw()).fit(X, y, sample_weight=w)
    dX = da.from_array(X, chunks=(CHUNKS, 3))
    dw = None if w is None else da.from_array(w, chunks=50)   # chunked unlike X: rechunked
    got = FalkonRegressor(**_kw()).fit(dX, y, sample_weight=dw)
    np.testing.assert_array_equal(got.center_indices_, ref.center_indices_)
    np.testing.assert_array_equal(got.centers_, ref.centers_)
    assert got.coef_.shape == ref.coef_.shape and got.n_iter_ == ref.n_iter_ == 5
    np.testing.assert_allclose(got.coef_, ref.coef_, rtol=1e-10, atol=1e-10 * np.abs(ref.coef_).max())
    np.testing.assert_allclose(got.residuals_, ref.residuals_, rtol=1e-10)
    pred = got.predict(dX)
    assert isinstance(pred, da.Array) and pred.dtype == np.float64
    np.testing.assert_allclose(pred.compute(), ref.predict(X), rtol=1e-9, atol=1e-10)
    np.testing.assert_allclose(got.predict(X), ref.predict(X), rtol=1e-9, atol=1e-10)   # NumPy in: NumPy out


def test_fit_float32_dask_y_lengthscales_and_given_centers():
    X, y = _data(np.float32)
    ls = np.array([1.0, 2.0, 0.5])
    kw = _kw(lengthscales=ls, bandwidth=None)
    ref = FalkonRegressor(**kw).fit(X, y)
    dX, dy = da.from_array(X, chunks=(CHUNKS, 3)), da.from_array(y, chunks=70)
    got = FalkonRegressor(**kw).fit(dX, dy)
    assert got.dtype_ == np.float32 and got.n_features_in_ == 3
    np.testing.assert_array_equal(got.centers_, ref.centers_)
    # float32 CG: the dask sums add in another order, so the two float32 fits differ by rounding that the
    # solve amplifies (measured: local float32 4.1e-3 from the float64 fit, relative to max |coef|; dask
    # float32 4.4e-3; the two float32 fits 4.0e-4 apart, on an AVX2 build). The dask fit must be as
    # accurate as the local one, and the two closer than either is to the float64 fit.
    exact = FalkonRegressor(**kw).fit(X.astype(np.float64), y)
    scale = np.abs(exact.coef_).max()
    err_local = np.abs(ref.coef_ - exact.coef_).max() / scale
    err_dask = np.abs(got.coef_ - exact.coef_).max() / scale
    assert 0 < err_local < 0.05 and err_dask <= 1.5 * err_local
    assert np.abs(got.coef_ - ref.coef_).max() / scale <= err_local
    np.testing.assert_allclose(got.predict(dX).compute(), ref.predict(X), rtol=0, atol=1e-3)
    C = X[:20].astype(np.float64)
    ref = FalkonRegressor(**_kw(centers=C, n_centers="auto")).fit(X.astype(np.float64), y)
    got = FalkonRegressor(**_kw(centers=C, n_centers="auto")).fit(dX.astype(np.float64), y)
    assert got.center_indices_ is None
    np.testing.assert_allclose(got.coef_, ref.coef_, rtol=1e-10, atol=1e-10 * np.abs(ref.coef_).max())


def test_validation_error_equals_local_at_convergence():
    X, y = _data(n=603)
    Xv, yv = _data(n=300, seed=9)
    # run to convergence (about 110 iterations here): before it, rounding differences grow along the
    # iterations (after 40 the two errors differ by 2e-4 relative); at tol 1e-10 they agree to 5e-10
    kw = _kw(max_iter=300, tol=1e-10, n_centers=60, penalty=1e-5)
    ref = FalkonRegressor(**kw).fit(X, y)
    got = FalkonRegressor(**kw).fit(da.from_array(X, chunks=100), y)
    e_ref = np.mean((ref.predict(Xv) - yv) ** 2)
    e_got = np.mean((got.predict(da.from_array(Xv, chunks=100)).compute() - yv) ** 2)
    assert ref.residuals_[-1] <= 1e-10 and got.residuals_[-1] <= 1e-10
    assert abs(e_got - e_ref) <= 1e-8 * e_ref, (e_got, e_ref)


def test_callback_gets_iterations():
    X, y = _data()
    seen = []
    FalkonRegressor(**_kw(callback=lambda s: seen.append(s.relative_residual) or s.iteration == 3)).fit(
        da.from_array(X, chunks=(CHUNKS, 3)), y)
    assert len(seen) == 3


def test_errors():
    X, y = _data()
    dX = da.from_array(X, chunks=(CHUNKS, 3))
    with pytest.raises(NotSupportedError, match="centers='uniform'"):
        FalkonRegressor(**_kw(centers="leverage")).fit(dX, y)
    with pytest.raises(InputError, match="'y'.*shape"):
        FalkonRegressor(**_kw()).fit(dX, y[:-1])
    bad = y.copy()
    bad[5] = np.nan
    with pytest.raises(InputError, match="'y'.*finite"):
        FalkonRegressor(**_kw()).fit(dX, da.from_array(bad, chunks=50))
    with pytest.raises(InputError, match="'sample_weight'.*non-negative"):
        FalkonRegressor(**_kw()).fit(dX, y, sample_weight=-np.ones(len(y)))
    with pytest.raises(InputError, match="'sample_weight'.*positive sum"):
        FalkonRegressor(**_kw()).fit(dX, y, sample_weight=np.zeros(len(y)))
    with pytest.raises(InputError, match="n_centers"):
        FalkonRegressor(**_kw(n_centers=500)).fit(dX, y)
    Xn = X.copy()
    Xn[100, 1] = np.nan   # not among the centres: found by the tasks, at compute time
    with pytest.raises(InputError):
        FalkonRegressor(**_kw()).fit(da.from_array(Xn, chunks=(CHUNKS, 3)), y)
    fitted = FalkonRegressor(**_kw()).fit(dX, y)
    with pytest.raises(InputError, match="3 features"):
        fitted.predict(da.from_array(X[:, :2], chunks=50))
    with pytest.raises(kk.exceptions.NotFittedError):
        FalkonRegressor().predict(dX)
    for Q in (dX, X):
        with pytest.raises(NotSupportedError, match="return_std"):
            fitted.predict(Q, return_std=True)


def test_one_fresh_graph_of_constant_size_per_iteration(monkeypatch):
    from dask.delayed import Delayed
    X, y = _data()
    sizes = []
    real = dask.compute

    def spy(*args, **kw):
        if isinstance(args[0], Delayed):   # the normal products (the checks of y compute dask arrays)
            sizes.append(len(args[0].__dask_graph__()))
        return real(*args, **kw)
    monkeypatch.setattr(dask, "compute", spy)
    est = FalkonRegressor(**_kw(max_iter=6)).fit(da.from_array(X, chunks=(CHUNKS, 3)), y)
    assert est.n_iter_ == 6 and len(sizes) == 6    # one normal product, one graph, per CG iteration
    assert len(set(sizes)) == 1, sizes              # the graph does not grow with the iterations
    assert sizes[0] <= 3 * len(CHUNKS) + 4


def test_inputs_not_modified():
    X, y = _data()
    w = np.random.default_rng(4).uniform(0.5, 2.0, size=X.shape[0])
    X0, y0, w0 = X.copy(), y.copy(), w.copy()
    FalkonRegressor(**_kw(max_iter=4, lengthscales=[1.0, 2.0, 3.0], bandwidth=None)).fit(
        da.from_array(X, chunks=(CHUNKS, 3)), y, sample_weight=w)
    np.testing.assert_array_equal(X, X0)
    np.testing.assert_array_equal(y, y0)
    np.testing.assert_array_equal(w, w0)


@pytest.mark.slow
def test_local_cluster_fit_matches_local():
    distributed = pytest.importorskip("distributed")
    X, y = _data(n=2000)
    ref = FalkonRegressor(**_kw(n_centers=80)).fit(X, y)
    with dask.config.set(scheduler=None), distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, memory_limit="1GB",
            dashboard_address=None) as cluster, distributed.Client(cluster):
        dX = da.from_array(X, chunks=300)
        got = FalkonRegressor(**_kw(n_centers=80)).fit(dX, y)
        pred = got.predict(dX).compute()
    np.testing.assert_allclose(got.coef_, ref.coef_, rtol=1e-10, atol=1e-10 * np.abs(ref.coef_).max())
    np.testing.assert_allclose(pred, ref.predict(X), rtol=1e-9, atol=1e-10)


# --- FalkonClassifier on dask ------------------------------------------------------------

def _labelled(n=203, classes=2, seed=0, names=None):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 3))
    score = X[:, 0] + 0.5 * np.sin(2 * X[:, 1]) + 0.3 * rng.normal(size=n)
    edges = np.quantile(score, np.linspace(0, 1, classes + 1)[1:-1])
    yi = np.searchsorted(edges, score)
    y = np.asarray(names)[yi] if names is not None else yi
    return X, y


def _ckw(**kw):
    base = dict(kernel="gaussian", bandwidth=1.0, penalty=1e-4, n_centers=31, random_state=3, max_iter=5, tol=0.0,
                newton_iter=4)
    base.update(kw)
    return base


@pytest.mark.parametrize("classes,names", [(2, None), (2, ["no", "yes"]), (3, None)])
@pytest.mark.parametrize("weighted", [False, True])
def test_classifier_matches_local_fit(classes, names, weighted):
    from kernelkit.regression import FalkonClassifier
    X, y = _labelled(classes=classes, names=names)
    w = np.random.default_rng(2).uniform(0.5, 2.0, size=X.shape[0]) if weighted else None
    ref = FalkonClassifier(**_ckw()).fit(X, y, sample_weight=w)
    dX = da.from_array(X, chunks=(CHUNKS, 3))
    dy = da.from_array(y, chunks=50)   # chunked unlike X: rechunked
    got = FalkonClassifier(**_ckw()).fit(dX, dy, sample_weight=w)
    np.testing.assert_array_equal(got.classes_, ref.classes_)
    np.testing.assert_array_equal(got.center_indices_, ref.center_indices_)
    assert got.coef_.shape == ref.coef_.shape and got.n_iter_ == ref.n_iter_
    np.testing.assert_allclose(got.coef_, ref.coef_, rtol=1e-9, atol=1e-9 * np.abs(ref.coef_).max())
    np.testing.assert_allclose(got.objective_, ref.objective_, rtol=1e-10)
    f = got.decision_function(dX)
    assert isinstance(f, da.Array)
    np.testing.assert_allclose(f.compute(), ref.decision_function(X), rtol=1e-8, atol=1e-9)
    P = got.predict_proba(dX).compute()
    np.testing.assert_allclose(P, ref.predict_proba(X), rtol=1e-8, atol=1e-10)
    np.testing.assert_array_equal(got.predict(dX).compute(), ref.predict(X))
    np.testing.assert_array_equal(got.predict(X), ref.predict(X))   # NumPy in: NumPy out
    assert (ref.predict(X) == y).mean() > 0.7   # the model learned something: a comparison of real fits


def test_classifier_float32_and_errors():
    from kernelkit.regression import FalkonClassifier
    X, y = _labelled()
    X32 = X.astype(np.float32)
    ref = FalkonClassifier(**_ckw()).fit(X32, y)
    got = FalkonClassifier(**_ckw()).fit(da.from_array(X32, chunks=(CHUNKS, 3)), y)
    assert got.dtype_ == np.float32
    np.testing.assert_allclose(got.coef_, ref.coef_, rtol=1e-4, atol=1e-4 * np.abs(ref.coef_).max())
    np.testing.assert_array_equal(got.predict(da.from_array(X32, chunks=60)).compute(), ref.predict(X32))
    dX = da.from_array(X, chunks=(CHUNKS, 3))
    with pytest.raises(InputError, match="two classes"):
        FalkonClassifier(**_ckw()).fit(dX, np.zeros(len(y)))
    with pytest.raises(InputError, match="'y'.*shape"):
        FalkonClassifier(**_ckw()).fit(dX, y[:-1])
    with pytest.raises(ValueError, match="continuous"):   # scikit-learn's check of the label type
        FalkonClassifier(**_ckw()).fit(dX, np.linspace(0, 1, len(y)))
    with pytest.raises(NotSupportedError, match="centers='uniform'"):
        FalkonClassifier(**_ckw(centers="kmeans")).fit(dX, y)
    with pytest.raises(kk.exceptions.NotFittedError):
        FalkonClassifier().predict(dX)


# --- validation_search on dask arrays ------------------------------------------------------------

def test_validation_search_on_dask_equals_numpy():
    from kernelkit.regression import validation_search
    X, y = _data(np.float64)
    dX, dy = da.from_array(X, chunks=(CHUNKS, 3)), da.from_array(y, chunks=70)
    grid = {"bandwidth": [0.7, 1.5], "penalty": [1e-4, 1e-2]}
    est = FalkonRegressor(**_kw())   # 5 CG iterations: rounding differences stay small
    ref = validation_search(est, X, y, grid, random_state=4)
    got = validation_search(est, dX, dy, grid, random_state=4)
    np.testing.assert_array_equal(got.validation_indices, ref.validation_indices)
    assert got.best_params == ref.best_params
    # dask: one fit per grid point, against the same fits on NumPy arrays of the same split
    it, iv = ref.train_indices, ref.validation_indices
    direct = []
    for r in got.results:
        f = FalkonRegressor(**_kw()).set_params(**r["params"]).fit(X[it], y[it])
        direct.append(np.mean((f.predict(X[iv]) - y[iv]) ** 2))
    np.testing.assert_allclose([r["score"] for r in got.results], direct, rtol=1e-9)
    # NumPy's penalty path (one CG solve for all penalties): the same optimum, to CG's accuracy
    np.testing.assert_allclose([r["score"] for r in got.results], [r["score"] for r in ref.results], rtol=1e-4)
    assert len({r["score"] for r in got.results}) == 4          # the grid points differ
    assert got.best_estimator.n_features_in_ == 3
    pred = got.best_estimator.predict(dX)
    assert isinstance(pred, da.Array)
    np.testing.assert_allclose(pred.compute(), ref.best_estimator.predict(X), rtol=1e-6, atol=1e-8)
    # NumPy y and weights with a dask X
    w = np.linspace(0.5, 2.0, X.shape[0])
    ref_w = validation_search(est, X, y, {"bandwidth": [0.7, 1.5]}, sample_weight=w, random_state=1, refit=False)
    got_w = validation_search(est, dX, y, {"bandwidth": [0.7, 1.5]}, sample_weight=w, random_state=1, refit=False)
    np.testing.assert_allclose([r["score"] for r in got_w.results], [r["score"] for r in ref_w.results], rtol=1e-8)
    assert got_w.best_estimator is None


def test_validation_search_on_dask_classifier_and_refusals():
    from kernelkit.regression import FalkonClassifier, KernelRidge, validation_search
    X, y = _data(np.float64)
    labels = np.where(y > np.median(y), "hi", "lo")
    dX = da.from_array(X, chunks=(CHUNKS, 3))
    est = FalkonClassifier(kernel="gaussian", bandwidth=1.0, penalty=1e-3, n_centers=31, random_state=3)
    ref = validation_search(est, X, labels, {"bandwidth": [0.5, 2.0]}, random_state=2, refit=False)
    got = validation_search(est, dX, labels, {"bandwidth": [0.5, 2.0]}, random_state=2, refit=False)
    assert [r["score"] for r in got.results] == pytest.approx([r["score"] for r in ref.results], abs=1e-12)
    with pytest.raises(NotSupportedError, match="FalkonRegressor or FalkonClassifier"):
        validation_search(KernelRidge(), dX, y, {"alpha": [1.0, 0.1]})
    with pytest.raises(NotSupportedError, match="NumPy X and dask y"):
        validation_search(FalkonRegressor(**_kw()), X, da.from_array(y, chunks=70), {"penalty": [1e-3]})
    unknown = dX[dX[:, 0] > -np.inf]                       # boolean indexing: chunk sizes unknown
    with pytest.raises(InputError, match="known chunk sizes"):
        validation_search(FalkonRegressor(**_kw()), unknown, y, {"penalty": [1e-3]})
