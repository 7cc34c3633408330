"""Falkon (Nystrom + preconditioned CG) regression and classification, and the choice of Nystrom centres."""

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.utils.estimator_checks import check_estimator

import kernelkit as kk
from kernelkit.exceptions import InvalidTypeError, InvalidValueError
from kernelkit.regression import FalkonClassifier, FalkonRegressor, select_centers
from kernelkit.regression._falkon import _FalkonSystem, _EPS
from kernelkit._options import get_options


def _data(n=300, d=3, seed=0, noise=0.1):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d))
    y = np.sin(2 * X[:, 0]) + X[:, 1] ** 2 / 2 + noise * rng.normal(size=n)
    return X, y


def _krr_predict(k, X, y, lam, Xt):
    """Exact kernel ridge regression in Falkon's scaling: (K + lambda n I) c = y."""
    n = X.shape[0]
    c = np.linalg.solve(k(X, X) + lam * n * np.eye(n), y)
    return k(Xt, X) @ c


def _objective(k, X, y, C, lam, alpha):
    """(1/n) |K_nM a - y|^2 + lambda a^T K_MM a."""
    r = k(X, C) @ alpha - y
    return float(r @ r) / X.shape[0] + lam * float(alpha @ (k(C, C) @ alpha))


# --------------------------------------------------------------------------- correctness
@pytest.mark.parametrize("targets", [1, 2])
def test_all_points_as_centres_is_exact_krr(targets):
    X, y = _data()
    Y = np.column_stack([y, np.cos(X[:, 2])]) if targets == 2 else y
    k, lam = kk.Gaussian(1.5), 1e-4
    m = FalkonRegressor(k, lam, X.shape[0], max_iter=30, tol=1e-10).fit(X, Y)
    Xt = np.random.default_rng(1).normal(size=(60, 3))
    ref = _krr_predict(k, X, Y, lam, Xt)
    assert m.predict(Xt).shape == ref.shape
    np.testing.assert_allclose(m.predict(Xt), ref, rtol=0, atol=1e-6 * np.abs(ref).max())
    np.testing.assert_allclose(m.predict(X), _krr_predict(k, X, Y, lam, X), atol=1e-6 * np.abs(ref).max())


def test_nystrom_solution_matches_dense_solve():
    """With M < n, the CG solution is the dense solution of the Nystrom normal equations."""
    X, y = _data(n=400)
    k, lam = kk.Gaussian(1.0), 1e-5
    m = FalkonRegressor(k, lam, 60, max_iter=300, tol=1e-13, random_state=3).fit(X, y)
    C = m.centers_
    KnM, KMM = k(X, C), k(C, C)
    alpha = np.linalg.lstsq(KnM.T @ KnM + lam * len(X) * KMM, KnM.T @ y, rcond=None)[0]
    np.testing.assert_allclose(m.predict(X), KnM @ alpha, atol=1e-6 * np.abs(y).max())


def test_cg_objective_monotone():
    """CG minimises the A-norm of the error, i.e. the quadratic objective, at every step (the theory's
    guarantee; the residual norm itself need not decrease): the Falkon objective of the iterates must
    be non-increasing. The relative residuals are recorded by the callback and end small."""
    X, y = _data(n=400, seed=5)
    k, lam = kk.Gaussian(1.0), 1e-4
    states = []
    m = FalkonRegressor(k, lam, 80, max_iter=60, tol=1e-10, random_state=0,
                        callback=lambda s: states.append((s.iteration, s.coef, s.relative_residual))).fit(X, y)
    assert [s[0] for s in states] == list(range(1, m.n_iter_ + 1))
    obj = [_objective(k, X, y, m.centers_, lam, a) for _, a, _ in states]
    assert all(b <= a * (1 + 1e-10) + 1e-14 for a, b in zip(obj, obj[1:]))
    np.testing.assert_allclose(states[-1][1], m.coef_)
    assert states[-1][2] == m.residuals_[-1] and m.residuals_[-1] < 1e-6


def test_callback_predict_and_early_stop():
    X, y = _data(n=200)
    Xv, yv = _data(n=50, seed=9)
    errs = []

    def cb(state):
        errs.append(np.mean((state.predict(Xv) - yv) ** 2))
        return state.iteration == 3

    m = FalkonRegressor(penalty=1e-4, n_centers=50, random_state=0, callback=cb, max_iter=30).fit(X, y)
    assert m.n_iter_ == 3 and len(errs) == 3
    assert errs[-1] == pytest.approx(np.mean((m.predict(Xv) - yv) ** 2))


def test_preconditioner_reduces_condition_number():
    X, y = _data(n=500)
    k, lam, M = kk.Gaussian(1.0), 1e-6, 80
    C, idx = select_centers(X, M, random_state=0)
    sys_ = _FalkonSystem(k, X, C, idx, get_options(), np.float64)
    n = X.shape[0]
    sys_.set_weights(None, lam * n)
    KnM, KMM = k(X, C), k(C, C)
    H = KnM.T @ KnM + lam * n * KMM
    P = np.column_stack([sys_.op(e) for e in np.eye(M)])    # the preconditioned operator, densely
    np.testing.assert_allclose(P, P.T, atol=1e-8 * np.abs(P).max())
    B = sys_.B(np.eye(M))
    np.testing.assert_allclose(P, B.T @ H @ B / n, atol=1e-8 * np.abs(P).max())
    cond_plain, cond_pre = np.linalg.cond(H), np.linalg.cond(P)
    assert cond_pre < 1e-3 * cond_plain, (cond_plain, cond_pre)


def test_blocked_path_under_tiny_memory_budget():
    X, y = _data(n=300)
    Xt = X[:40] + 0.05
    kw = dict(penalty=1e-3, n_centers=40, random_state=1, max_iter=100, tol=1e-12)
    m = FalkonRegressor(**kw).fit(X, y)
    with kk.options(memory="64KB"):
        m2 = FalkonRegressor(**kw).fit(X, y)
        p2 = m2.predict(Xt)
        f, s = m2.predict(Xt, return_std=True)
    np.testing.assert_allclose(p2, m.predict(Xt), rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(s, m.predict(Xt, return_std=True)[1], rtol=1e-8, atol=1e-12)


def test_float32():
    X, y = _data(n=400)
    m64 = FalkonRegressor(penalty=1e-3, n_centers=60, random_state=0, max_iter=50).fit(X, y)
    m32 = FalkonRegressor(penalty=1e-3, n_centers=60, random_state=0, max_iter=50).fit(X.astype(np.float32), y)
    assert m32.dtype_ == np.float32 and m32.centers_.dtype == np.float32 and m32.coef_.dtype == np.float64
    np.testing.assert_allclose(m32.predict(X), m64.predict(X), atol=1e-2 * np.abs(y).max())
    forced = FalkonRegressor(penalty=1e-3, n_centers=60, random_state=0, max_iter=50, dtype="float32").fit(X, y)
    np.testing.assert_allclose(forced.predict(X), m32.predict(X), atol=1e-6)


def test_sample_weight_integer_is_repetition_with_all_centres():
    """Integer weights (zeros included), every point a centre: exact KRR on the repeated data."""
    X, y = _data(n=60)
    w = np.random.default_rng(0).integers(0, 3, size=60)
    k, lam = kk.Gaussian(1.0), 1e-3
    Xr, yr = np.repeat(X, w, axis=0), np.repeat(y, w)
    a = FalkonRegressor(k, lam, 60, max_iter=200, tol=1e-13).fit(X, y, sample_weight=w)
    np.testing.assert_allclose(a.predict(X), _krr_predict(k, Xr, yr, lam, X), atol=1e-8)


def test_return_std_sor():
    X, y = _data(n=200)
    k, lam = kk.Gaussian(1.0), 1e-3
    m = FalkonRegressor(k, lam, 50, random_state=0).fit(X, y)
    Xt = np.vstack([X[:5], np.full((1, 3), 8.0)])
    f, s = m.predict(Xt, return_std=True)
    C, n = m.centers_, len(X)
    H = k(X, C).T @ k(X, C) + lam * n * k(C, C)
    kx = k(Xt, C)
    ref = np.sqrt(lam * n * np.einsum("ij,ji->i", kx, np.linalg.solve(H, kx.T)))
    np.testing.assert_allclose(s, ref, rtol=1e-5, atol=1e-9)
    np.testing.assert_allclose(f, m.predict(Xt))


# --------------------------------------------------------------------------- centres
def test_select_centers_uniform_without_replacement():
    X, _ = _data(n=100)
    C, idx = select_centers(X, 100, random_state=0)
    assert sorted(idx) == list(range(100))
    C, idx = select_centers(X, 30, random_state=0)
    assert len(set(idx)) == 30 and np.array_equal(C, X[idx])
    C2, idx2 = select_centers(X, 30, random_state=0)
    assert np.array_equal(idx, idx2)


def test_select_centers_leverage_favours_outliers():
    rng = np.random.default_rng(0)
    X = np.vstack([rng.normal(scale=0.05, size=(400, 2)), rng.uniform(-6, 6, size=(10, 2))])
    k = kk.Gaussian(0.5)
    hits_lev = hits_uni = 0
    for seed in range(10):
        _, idx = select_centers(X, 20, method="leverage", kernel=k, random_state=seed)
        hits_lev += np.sum(idx >= 400)
        _, idx = select_centers(X, 20, method="uniform", random_state=seed)
        hits_uni += np.sum(idx >= 400)
    assert hits_lev > 5 * max(hits_uni, 1) and hits_lev >= 30  # about 5 of 20 vs 0.5 of 20 per draw


def test_select_centers_kmeans_and_array():
    X, _ = _data(n=300)
    C, idx = select_centers(X, 12, method="kmeans", random_state=0)
    assert C.shape == (12, 3) and idx is None
    U = X[:7] + 1.0
    C, idx = select_centers(X, None, method=U)
    assert np.array_equal(C, U) and idx is None
    m = FalkonRegressor(penalty=1e-3, centers=U).fit(X, X[:, 0])
    assert m.n_centers_ == 7 and np.array_equal(m.centers_, U)
    m = FalkonRegressor(penalty=1e-3, n_centers=20, centers="kmeans", random_state=0).fit(X, X[:, 0])
    assert m.centers_.shape == (20, 3)
    m = FalkonRegressor(penalty=1e-3, n_centers=20, centers="leverage", random_state=0).fit(X, X[:, 0])
    assert len(set(m.center_indices_)) == 20


def test_select_centers_errors():
    X, _ = _data(n=50)
    with pytest.raises(InvalidValueError, match="n_centers"):
        select_centers(X, 51)
    with pytest.raises(InvalidValueError, match="n_centers"):
        select_centers(X, 0)
    with pytest.raises(InvalidTypeError, match="n_centers"):
        select_centers(X, 2.5)
    with pytest.raises(InvalidValueError, match="method"):
        select_centers(X, 5, method="random")
    with pytest.raises(InvalidValueError, match="centers"):
        select_centers(X, None, method=np.zeros((4, 2)))
    with pytest.raises(InvalidValueError, match="n_centers"):
        select_centers(X, 5, method=np.zeros((4, 3)))


# --------------------------------------------------------------------------- classifier
def test_classifier_binary_and_multiclass():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(600, 2))
    yb = np.where(X[:, 0] + 0.5 * np.sin(3 * X[:, 1]) + 0.2 * rng.normal(size=600) > 0, "a", "b")
    Xt = rng.normal(size=(400, 2))
    ytb = np.where(Xt[:, 0] + 0.5 * np.sin(3 * Xt[:, 1]) > 0, "a", "b")
    c = FalkonClassifier(penalty=1e-5, n_centers=100, newton_iter=8, random_state=0).fit(X, yb)
    assert list(c.classes_) == ["a", "b"]
    base = max(np.mean(ytb == "a"), np.mean(ytb == "b"))
    assert c.score(Xt, ytb) > base + 0.3
    P = c.predict_proba(Xt)
    np.testing.assert_allclose(P.sum(axis=1), 1.0)
    assert np.array_equal(c.classes_[P.argmax(axis=1)], c.predict(Xt))
    assert np.all(np.diff(c.objective_[-2:]) <= 1e-9)
    y3 = np.digitize(X[:, 0], [-0.5, 0.5])
    yt3 = np.digitize(Xt[:, 0], [-0.5, 0.5])
    c3 = FalkonClassifier(penalty=1e-5, n_centers=100, newton_iter=8, random_state=0).fit(X, y3)
    assert c3.coef_.shape == (100, 3)
    assert c3.score(Xt, yt3) > np.bincount(yt3).max() / len(yt3) + 0.3
    np.testing.assert_allclose(c3.predict_proba(Xt).sum(axis=1), 1.0)


# --------------------------------------------------------------------------- API
_SAMPLING = "Nystrom centres are drawn from the rows, so repeating or dropping rows changes the model"


@pytest.mark.parametrize("est", [
    FalkonRegressor(penalty=1e-3, max_iter=30, random_state=0),
    FalkonClassifier(penalty=1e-4, max_iter=10, newton_iter=5, random_state=0)],
                         ids=lambda e: type(e).__name__)
def test_sklearn_estimator_checks(est):
    check_estimator(est, expected_failed_checks={
        "check_sample_weight_equivalence_on_dense_data": _SAMPLING,
        "check_sample_weight_equivalence_on_sparse_data": _SAMPLING,
        "check_sample_weights_invariance": _SAMPLING,
    })


def test_clone_and_params():
    m = FalkonRegressor("laplace", 1e-3, 10, bandwidth=2.0)
    c = clone(m)
    assert c.get_params() == m.get_params() and not hasattr(c, "coef_")


def test_bad_inputs():
    X, y = _data(n=40)
    with pytest.raises(InvalidValueError, match="'penalty'"):
        FalkonRegressor(penalty=0.0).fit(X, y)
    with pytest.raises(InvalidValueError, match="'penalty'"):
        FalkonRegressor(penalty=-1.0).fit(X, y)
    with pytest.raises(InvalidTypeError, match="'penalty'"):
        FalkonRegressor(penalty="small").fit(X, y)
    with pytest.raises(InvalidValueError, match="n_centers"):
        FalkonRegressor(n_centers=41).fit(X, y)
    with pytest.raises(InvalidValueError, match="'y'"):
        FalkonRegressor().fit(X, np.where(np.arange(40) == 3, np.nan, y))
    with pytest.raises(InvalidValueError, match="sample_weight"):
        FalkonRegressor().fit(X, y, sample_weight=np.ones(39))
    with pytest.raises(InvalidValueError, match="sample_weight"):
        FalkonRegressor().fit(X, y, sample_weight=-np.ones(40))
    with pytest.raises(InvalidValueError, match="bandwidth"):
        FalkonRegressor(kk.Gaussian(1.0), bandwidth=1.0).fit(X, y)
    with pytest.raises(InvalidValueError, match="'max_iter'"):
        FalkonRegressor(max_iter=0).fit(X, y)
    with pytest.raises(InvalidValueError, match="'dtype'"):
        FalkonRegressor(dtype="float16").fit(X, y)
    with pytest.raises(InvalidTypeError, match="'callback'"):
        FalkonRegressor(callback=3).fit(X, y)
    with pytest.raises(InvalidValueError, match="two classes"):
        FalkonClassifier().fit(X, np.zeros(40))
    with pytest.raises(ValueError):
        FalkonRegressor().predict(X)
    X0 = X.copy()
    FalkonRegressor(n_centers=10, random_state=0).fit(X, y)
    assert np.array_equal(X, X0)


@pytest.mark.parametrize("Est", [FalkonRegressor, FalkonClassifier])
def test_lengthscales_scale_the_inputs(Est):
    """ARD: lengthscales l give the model of the isotropic kernel on x / l (unit bandwidth by default)."""
    rng = np.random.default_rng(21)
    X = rng.normal(size=(300, 3)) * np.array([1.0, 10.0, 0.1])
    y = np.sin(X[:, 0]) + np.cos(X[:, 1] / 10) + (0 if Est is FalkonRegressor else 0.1 * rng.normal(size=300))
    if Est is FalkonClassifier:
        y = (y > np.median(y)).astype(int)
    ls = np.array([0.7, 7.0, 0.07])
    X0 = X.copy()
    kw = dict(penalty=1e-4, n_centers=50, random_state=3, max_iter=40)
    m = Est(lengthscales=ls, **kw).fit(X, y)
    ref = Est(bandwidth=1.0, **kw).fit(X / ls, y)
    np.testing.assert_array_equal(X, X0)   # not scaled in place
    Xt = rng.normal(size=(20, 3)) * np.array([1.0, 10.0, 0.1])
    f = m.decision_function(Xt) if Est is FalkonClassifier else m.predict(Xt)
    fr = ref.decision_function(Xt / ls) if Est is FalkonClassifier else ref.predict(Xt / ls)
    np.testing.assert_allclose(f, fr, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(m.centers_, ref.centers_ * ls, rtol=1e-12)   # centres in data units
    assert m.bandwidth_ == 1.0 and m.lengthscales_.shape == (3,)
    # given centres are in data units too
    mc = Est(lengthscales=ls, centers=m.centers_, **{**kw, "n_centers": "auto"}).fit(X, y)
    np.testing.assert_allclose(mc.centers_, m.centers_, rtol=1e-12)
    for bad in ([1.0, 2.0], [1.0, -1.0, 2.0], [1.0, np.nan, 1.0], "wide"):
        with pytest.raises(ValueError, match="lengthscales"):
            Est(lengthscales=bad, **kw).fit(X, y)
