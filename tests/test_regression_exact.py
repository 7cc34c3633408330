"""KernelRidge, NadarayaWatson and LocalLinearRegression against scikit-learn, dense direct formulas and
brute-force leave-one-out refits; scikit-learn's estimator checks; bad inputs."""

import pickle
import warnings

import numpy as np
import pytest
import scipy.linalg
from scipy.special import logsumexp
from sklearn.base import clone
from sklearn.exceptions import NotFittedError as SklearnNotFittedError
from sklearn.kernel_ridge import KernelRidge as SkKernelRidge
from sklearn.utils.estimator_checks import parametrize_with_checks

import kernelkit as kk
from kernelkit.exceptions import InvalidTypeError, InvalidValueError, NotFittedError
from kernelkit.regression import KernelRidge, LocalLinearRegression, NadarayaWatson


def _data(n=60, d=3, t=None, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    f = np.sin(X[:, 0]) + 0.5 * X[:, -1] ** 2
    y = f + 0.1 * rng.standard_normal(n)
    if t is not None:
        y = np.column_stack([y * (j + 1) + j for j in range(t)])
    return X, y, rng.standard_normal((40, d))


def _gauss(X, Y, sigma):
    D = ((X[:, None, :] - Y[None, :, :]) ** 2).sum(-1)
    return np.exp(-D / (2 * sigma ** 2))


# ------------------------------------------------------------------------------ KernelRidge: exact solves
def test_matches_sklearn_kernel_ridge_gaussian():
    X, y, Xt = _data(200, 4)
    sigma, alpha = 0.9, 0.3
    ours = KernelRidge("gaussian", alpha, bandwidth=sigma).fit(X, y)
    ref = SkKernelRidge(alpha=alpha, kernel="rbf", gamma=1 / (2 * sigma ** 2)).fit(X, y)
    np.testing.assert_allclose(ours.predict(Xt), ref.predict(Xt), rtol=1e-8)
    np.testing.assert_allclose(ours.dual_coef_, ref.dual_coef_, rtol=1e-7, atol=1e-10)
    # the same with a Kernel object
    obj = KernelRidge(kk.Gaussian(sigma), alpha).fit(X, y)
    np.testing.assert_allclose(obj.predict(Xt), ref.predict(Xt), rtol=1e-8)


def test_matches_sklearn_weighted_and_multitarget():
    X, Y, Xt = _data(80, 2, t=3, seed=1)
    w = np.random.default_rng(2).uniform(0.2, 3.0, 80)
    ours = KernelRidge(alpha=0.1, bandwidth=1.3).fit(X, Y, sample_weight=w)
    ref = SkKernelRidge(alpha=0.1, kernel="rbf", gamma=1 / (2 * 1.3 ** 2)).fit(X, Y, sample_weight=w)
    np.testing.assert_allclose(ours.predict(Xt), ref.predict(Xt), rtol=1e-8)


def test_matches_dense_solve_and_multitarget():
    X, Y, Xt = _data(70, 3, t=3, seed=3)
    kern = kk.Matern(nu=1.5, bandwidth=1.1)
    alpha = 0.05
    K = kern(X, X)
    c = np.linalg.solve(K + alpha * np.eye(70), Y)
    model = KernelRidge(kern, alpha).fit(X, Y)
    np.testing.assert_allclose(model.dual_coef_, c, rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(model.predict(Xt), kern(Xt, X) @ c, rtol=1e-8, atol=1e-12)
    assert model.predict(Xt).shape == (40, 3)
    for j in range(3):  # several targets = one fit per target
        one = KernelRidge(kern, alpha).fit(X, Y[:, j])
        np.testing.assert_allclose(one.predict(Xt), model.predict(Xt)[:, j], rtol=1e-10)
    col = KernelRidge(kern, alpha).fit(X, Y[:, :1])
    assert col.predict(Xt).shape == (40, 1) and col.dual_coef_.shape == (70, 1)


def test_median_heuristic_by_default_and_bandwidth_rule():
    X, y, _ = _data()
    model = KernelRidge().fit(X, y)
    assert model.bandwidth_ == pytest.approx(kk.median_bandwidth(X), rel=1e-14)
    assert model.kernel_ == kk.Gaussian(model.bandwidth_)
    with pytest.raises(InvalidValueError, match="'bandwidth'.*Kernel object"):
        KernelRidge(kk.Gaussian(1.0), bandwidth=0.5).fit(X, y)
    with pytest.raises(InvalidValueError, match="'bandwidth'"):
        KernelRidge("linear", bandwidth=0.5).fit(X, y)
    lin = KernelRidge("linear", alpha=1.0).fit(X, y)
    assert lin.bandwidth_ is None


def test_sample_weight_direct_weighted_solve():
    X, y, Xt = _data(50, 2, seed=4)
    w = np.random.default_rng(5).uniform(0.1, 4.0, 50)
    sigma, alpha = 0.8, 0.2
    K = _gauss(X, X, sigma)
    c = np.linalg.solve(K + alpha * np.diag(1 / w), y)  # (K + alpha W^-1) c = y
    model = KernelRidge(alpha=alpha, bandwidth=sigma).fit(X, y, sample_weight=w)
    np.testing.assert_allclose(model.dual_coef_, c, rtol=1e-8, atol=1e-12)
    np.testing.assert_allclose(model.predict(Xt), _gauss(Xt, X, sigma) @ c, rtol=1e-8, atol=1e-12)
    # it minimises sum w (y - f)^2 + alpha c^T K c: the gradient vanishes
    grad = -2 * K @ (w * (y - K @ model.dual_coef_)) + 2 * alpha * K @ model.dual_coef_
    assert np.max(np.abs(grad)) < 1e-9


@pytest.mark.parametrize("bandwidth", [0.9, None])
def test_integer_weights_equal_repeated_rows(bandwidth):
    X, y, Xt = _data(30, 2, seed=6)
    w = np.random.default_rng(7).integers(0, 4, 30)
    w[0] = 2
    Xr, yr = np.repeat(X, w, axis=0), np.repeat(y, w)
    for est in (KernelRidge(alpha=0.3, bandwidth=bandwidth), NadarayaWatson(bandwidth=bandwidth),
                LocalLinearRegression(bandwidth=bandwidth)):
        a = clone(est).fit(X, y, sample_weight=w)
        b = clone(est).fit(Xr, yr)
        assert a.bandwidth_ == pytest.approx(b.bandwidth_, rel=1e-12)
        np.testing.assert_allclose(a.predict(Xt), b.predict(Xt), rtol=1e-8, atol=1e-10)


def test_unit_weights_equal_no_weights():
    X, y, Xt = _data()
    a = KernelRidge(alpha=0.5).fit(X, y, sample_weight=np.ones(len(X)))
    b = KernelRidge(alpha=0.5).fit(X, y)
    np.testing.assert_allclose(a.predict(Xt), b.predict(Xt), rtol=1e-12)


# ------------------------------------------------------------------------------ KernelRidge: alpha grid
def _brute_loo(X, y, alphas, sigma, w=None):
    """Squared leave-one-out residuals by refitting without each point (dense solves)."""
    n = len(X)
    w = np.ones(n) if w is None else w
    out = np.empty((n, len(alphas)))
    for j, a in enumerate(alphas):
        for i in range(n):
            keep = np.arange(n) != i
            keep &= w > 0
            K = _gauss(X[keep], X[keep], sigma)
            c = np.linalg.solve(K + a * np.diag(1 / w[keep]), y[keep])
            out[i, j] = (y[i] - _gauss(X[i:i + 1], X[keep], sigma)[0] @ c) ** 2
    return out


def test_loo_values_match_brute_force_refits():
    X, y, _ = _data(25, 2, seed=8)
    alphas = np.geomspace(1e-3, 3.0, 5)
    model = KernelRidge(alpha=alphas, bandwidth=0.9).fit(X, y)
    ref = _brute_loo(X, y, alphas, 0.9)
    np.testing.assert_allclose(model.cv_values_, ref, rtol=1e-8, atol=1e-14)
    np.testing.assert_allclose(model.cv_scores_, ref.mean(0), rtol=1e-8)
    assert model.alpha_ == alphas[np.argmin(ref.mean(0))]
    single = KernelRidge(alpha=model.alpha_, bandwidth=0.9).fit(X, y)
    np.testing.assert_allclose(model.dual_coef_, single.dual_coef_, rtol=1e-10)
    np.testing.assert_array_equal(model.alphas_, alphas)


def test_loo_weighted_and_zero_weights_match_brute_force():
    X, y, _ = _data(20, 2, seed=9)
    w = np.random.default_rng(10).uniform(0.3, 3.0, 20)
    w[[3, 11]] = 0.0
    alphas = np.array([0.01, 0.1, 1.0])
    model = KernelRidge(alpha=alphas, bandwidth=1.1).fit(X, y, sample_weight=w)
    ref = _brute_loo(X, y, alphas, 1.1, w)
    np.testing.assert_allclose(model.cv_values_, ref, rtol=1e-8, atol=1e-14)
    np.testing.assert_allclose(model.cv_scores_, (w @ ref) / w.sum(), rtol=1e-8)


def test_loo_multitarget_shape():
    X, Y, _ = _data(20, 2, t=2, seed=11)
    alphas = np.array([0.05, 0.5])
    model = KernelRidge(alpha=alphas, bandwidth=1.0).fit(X, Y)
    assert model.cv_values_.shape == (20, 2, 2)
    for j in range(2):
        np.testing.assert_allclose(model.cv_values_[:, j, :], _brute_loo(X, Y[:, j], alphas, 1.0), rtol=1e-8)


def test_gcv_matches_formula():
    X, y, _ = _data(30, 2, seed=12)
    alphas = np.array([0.01, 0.1, 1.0])
    model = KernelRidge(alpha=alphas, bandwidth=0.8, cv_mode="gcv").fit(X, y)
    K = _gauss(X, X, 0.8)
    for j, a in enumerate(alphas):
        H = K @ np.linalg.inv(K + a * np.eye(30))
        gcv = np.mean((y - H @ y) ** 2) / (1 - np.trace(H) / 30) ** 2
        assert model.cv_scores_[j] == pytest.approx(gcv, rel=1e-8)


def test_loo_alpha_is_sensible():
    rng = np.random.default_rng(13)
    X = rng.uniform(-2, 2, (150, 1))
    y = np.sin(2 * X[:, 0]) + 0.2 * rng.standard_normal(150)
    alphas = np.geomspace(1e-6, 1e3, 19)
    model = KernelRidge(alpha=alphas, bandwidth=0.5).fit(X, y)
    assert 1e-4 <= model.alpha_ <= 10
    assert model.cv_scores_.min() < 0.06  # noise variance 0.04


# ------------------------------------------------------------------------------ KernelRidge: std, jitter
def test_return_std_matches_gp_formula():
    X, y, Xt = _data(40, 2, seed=14)
    sigma, alpha = 0.7, 0.05
    K, Kx = _gauss(X, X, sigma), _gauss(X, Xt, sigma)
    var = 1.0 - np.einsum("ij,ij->j", Kx, np.linalg.solve(K + alpha * np.eye(40), Kx))
    model = KernelRidge(alpha=alpha, bandwidth=sigma).fit(X, y)
    pred, std = model.predict(Xt, return_std=True)
    np.testing.assert_allclose(std, np.sqrt(var), rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(pred, model.predict(Xt), rtol=1e-14)
    # weighted: noise variance alpha / w_i
    w = np.random.default_rng(15).uniform(0.5, 2.0, 40)
    var_w = 1.0 - np.einsum("ij,ij->j", Kx, np.linalg.solve(K + alpha * np.diag(1 / w), Kx))
    _, std_w = KernelRidge(alpha=alpha, bandwidth=sigma).fit(X, y, sample_weight=w).predict(Xt, return_std=True)
    np.testing.assert_allclose(std_w, np.sqrt(var_w), rtol=1e-8, atol=1e-10)
    # tiles of queries under a small memory budget give the same values
    model.set_params(memory=40 * 32 * 7)  # 7 queries per tile
    np.testing.assert_allclose(model.predict(Xt, return_std=True)[1], std, rtol=1e-12)


def test_jitter_escalation_on_duplicated_points():
    rng = np.random.default_rng(16)
    base = rng.standard_normal((30, 2))
    X = np.vstack([base, base, base])
    y = np.tile(np.sin(base[:, 0]), 3)
    with pytest.warns(scipy.linalg.LinAlgWarning, match="jitter"):
        model = KernelRidge(alpha=1e-30, bandwidth=3.0).fit(X, y)
    assert model.jitter_ > 0
    pred = model.predict(base)
    assert np.all(np.isfinite(pred))
    np.testing.assert_allclose(pred, y[:30], atol=1e-3)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        KernelRidge(alpha=1e-2, bandwidth=3.0).fit(X, y)  # well posed: no jitter, no warning


# ------------------------------------------------------------------------------ KernelRidge: mixed precision
def _f64_cholesky_solution(K, alpha, Y):
    return scipy.linalg.cho_solve(scipy.linalg.cho_factor(K + alpha * np.eye(len(K)), lower=True), Y)


@pytest.mark.parametrize("alpha", [1.0, 0.1])
def test_refined_solution_equals_float64_cholesky(alpha):
    X, Y, Xt = _data(600, 4, t=2, seed=40)
    sigma = 1.5
    model = KernelRidge(alpha=alpha, bandwidth=sigma).fit(X, Y)
    assert model.solver_ == "mixed" and 1 <= model.n_refinement_steps_ <= 10
    c = _f64_cholesky_solution(_gauss(X, X, sigma), alpha, Y)
    assert np.max(np.abs(model.dual_coef_ - c)) <= 1e-10 * np.max(np.abs(c))
    ref = SkKernelRidge(alpha=alpha, kernel="rbf", gamma=1 / (2 * sigma ** 2)).fit(X, Y)
    np.testing.assert_allclose(model.predict(Xt), ref.predict(Xt), rtol=1e-8)
    # weighted, with return_std from the refined float32 factor
    w = np.random.default_rng(41).uniform(0.3, 2.0, 600)
    wm = KernelRidge(alpha=alpha, bandwidth=sigma).fit(X, Y, sample_weight=w)
    assert wm.solver_ == "mixed"
    K, Kx = _gauss(X, X, sigma), _gauss(X, Xt, sigma)
    cw = np.linalg.solve(K + alpha * np.diag(1 / w), Y)
    assert np.max(np.abs(wm.dual_coef_ - cw)) <= 1e-10 * np.max(np.abs(cw))
    var = 1.0 - np.einsum("ij,ij->j", Kx, np.linalg.solve(K + alpha * np.diag(1 / w), Kx))
    np.testing.assert_allclose(wm.predict(Xt, return_std=True)[1], np.sqrt(var), rtol=1e-8, atol=1e-10)


def test_ill_conditioned_falls_back_to_float64():
    rng = np.random.default_rng(42)
    X = rng.uniform(0, 1, (300, 1))
    y = np.sin(6 * X[:, 0])
    sigma, alpha = 0.5, 1e-10   # smooth kernel, tiny alpha: kappa ~ 1e10, far beyond float32
    model = KernelRidge(alpha=alpha, bandwidth=sigma).fit(X, y)
    assert model.solver_ == "float64" and model.n_refinement_steps_ == 0
    A = _gauss(X, X, sigma) + alpha * np.eye(300)
    c = scipy.linalg.solve(A, y, assume_a="pos")
    np.testing.assert_allclose(A @ model.dual_coef_, y, atol=1e-6)   # residuals of an exact solve
    np.testing.assert_allclose(model.predict(X), _gauss(X, X, sigma) @ c, rtol=1e-6, atol=1e-6)
    pred, std = model.predict(X[:5], return_std=True)
    assert np.all(np.isfinite(std)) and np.all(std < 1e-3)


# ------------------------------------------------------------------------------ local regression
def _nw_direct(X, y, Q, h, w=None):
    w = np.ones(len(X)) if w is None else w
    K = _gauss(Q, X, h) * w
    return (K @ y) / K.sum(1)[:, None] if y.ndim == 2 else (K @ y) / K.sum(1)


def _ll_direct(X, y, Q, h, w=None):
    """Per-query weighted least squares of y on [1, x - q] with weights w_i k(q, x_i)."""
    w = np.ones(len(X)) if w is None else w
    out = []
    for q in Q:
        k = np.sqrt(w * _gauss(q[None], X, h)[0])
        A = np.column_stack([np.ones(len(X)), X - q]) * k[:, None]
        out.append(np.linalg.lstsq(A, y * (k[:, None] if y.ndim == 2 else k), rcond=None)[0][0])
    return np.array(out)


def test_nadaraya_watson_direct_formula():
    X, Y, Xt = _data(80, 2, t=2, seed=17)
    w = np.random.default_rng(18).uniform(0.2, 2.0, 80)
    model = NadarayaWatson(bandwidth=0.6).fit(X, Y, sample_weight=w)
    np.testing.assert_allclose(model.predict(Xt), _nw_direct(X, Y, Xt, 0.6, w), rtol=1e-10)
    lap = NadarayaWatson(kk.Laplace(0.5)).fit(X, Y[:, 0])
    K = np.exp(-np.sqrt(((Xt[:, None] - X[None]) ** 2).sum(-1)) / 0.5)
    np.testing.assert_allclose(lap.predict(Xt), K @ Y[:, 0] / K.sum(1), rtol=1e-10)


def test_nadaraya_watson_far_queries_in_log_domain():
    X, y, _ = _data(30, 1, seed=19)
    Q = np.array([[40.0], [-55.0], [0.0]])
    model = NadarayaWatson(bandwidth=0.05).fit(X, y)
    logk = -((Q - X[:, 0]) ** 2) / (2 * 0.05 ** 2)
    lse, sign = logsumexp(logk, b=y, axis=1, return_sign=True)
    ref = sign * np.exp(lse - logsumexp(logk, axis=1))
    np.testing.assert_allclose(model.predict(Q), ref, rtol=1e-9)
    assert model.predict(Q[:1])[0] == pytest.approx(y[np.argmax(X[:, 0])], rel=1e-9)  # nearest point
    ll = LocalLinearRegression(bandwidth=0.05).fit(X, y)
    np.testing.assert_allclose(ll.predict(Q[:2]), ref[:2], rtol=1e-9)


def test_local_linear_direct_formula():
    X, Y, Xt = _data(90, 2, t=2, seed=20)
    w = np.random.default_rng(21).uniform(0.2, 2.0, 90)
    exact = LocalLinearRegression(bandwidth=0.8, ridge=0.0).fit(X, Y, sample_weight=w)
    ref = _ll_direct(X, Y, Xt, 0.8, w)
    np.testing.assert_allclose(exact.predict(Xt), ref, rtol=1e-8, atol=1e-9)
    default = LocalLinearRegression(bandwidth=0.8).fit(X, Y, sample_weight=w)
    np.testing.assert_allclose(default.predict(Xt), ref, rtol=1e-5, atol=1e-6)


def test_local_linear_reproduces_lines_and_survives_degenerate_neighbours():
    rng = np.random.default_rng(22)
    X = rng.uniform(0, 1, (50, 2))
    y = 3 * X[:, 0] - 2 * X[:, 1] + 1
    Q = rng.uniform(-0.5, 1.5, (20, 2))
    model = LocalLinearRegression(bandwidth=0.3, ridge=0.0).fit(X, y)
    np.testing.assert_allclose(model.predict(Q), 3 * Q[:, 0] - 2 * Q[:, 1] + 1, rtol=1e-8, atol=1e-8)
    # collinear data (the second feature constant): the ridge keeps the system solvable
    Xc = np.column_stack([X[:, 0], np.zeros(50)])
    pred = LocalLinearRegression(bandwidth=0.3).fit(Xc, 2 * Xc[:, 0]).predict([[0.5, 0.0], [0.2, 0.0]])
    np.testing.assert_allclose(pred, [1.0, 0.4], rtol=1e-6)


def test_loo_scores_match_brute_force():
    X, y, _ = _data(40, 1, seed=23)
    # the smallest NW bandwidth leaves some points without close neighbours (their sums come from the dense
    # path); local-linear is only compared where its per-point systems are well posed
    for model, direct in ((NadarayaWatson(bandwidth="loo", cv_grid=3, cv_range=(0.05, 0.5)), _nw_direct),
                          (LocalLinearRegression(bandwidth="loo", cv_grid=3, cv_range=(0.15, 0.6), ridge=0.0),
                           _ll_direct)):
        model.fit(X, y)
        for h, score in zip(model.cv_bandwidths_, model.cv_scores_):
            loo = [direct(np.delete(X, i, 0), np.delete(y, i), X[i:i + 1], h)[0] for i in range(40)]
            assert score == pytest.approx(np.mean((y - loo) ** 2), rel=1e-8)
        assert model.bandwidth_ == model.cv_bandwidths_[np.argmin(model.cv_scores_)]


def test_loo_bandwidth_is_sensible():
    rng = np.random.default_rng(24)
    X = rng.uniform(0, 1, (400, 1))
    f = lambda x: np.sin(2 * np.pi * x)  # noqa: E731
    y = f(X[:, 0]) + 0.1 * rng.standard_normal(400)
    Q = np.linspace(0.05, 0.95, 200)[:, None]
    for cls in (NadarayaWatson, LocalLinearRegression):
        model = cls(bandwidth="loo").fit(X, y)
        assert 0.005 < model.bandwidth_ < 0.1, (cls.__name__, model.bandwidth_)
        assert np.mean((model.predict(Q) - f(Q[:, 0])) ** 2) < 2e-3
        assert model.cv_scores_.min() < 0.013  # noise variance 0.01


def test_matches_statsmodels_kernelreg_if_available():
    nonparametric = pytest.importorskip("statsmodels.nonparametric.api")
    X, y, _ = _data(60, 1, seed=25)
    Q = np.linspace(-1.5, 1.5, 15)[:, None]
    for reg_type, cls in (("lc", NadarayaWatson), ("ll", LocalLinearRegression)):
        ref = nonparametric.KernelReg(y, X, var_type="c", reg_type=reg_type, bw=[0.4])
        ours = cls(bandwidth=0.4, ridge=0.0) if cls is LocalLinearRegression else cls(bandwidth=0.4)
        np.testing.assert_allclose(ours.fit(X, y).predict(Q), ref.fit(Q)[0], rtol=1e-7)


# ------------------------------------------------------------------------------ dtypes, API
@pytest.mark.parametrize("make", [lambda: KernelRidge(alpha=0.1, bandwidth=1.0),
                                  lambda: KernelRidge(alpha=[0.1, 1.0], bandwidth=1.0),
                                  lambda: NadarayaWatson(bandwidth=0.7),
                                  lambda: LocalLinearRegression(bandwidth=1.0)],
                         ids=["krr", "krr_grid", "nw", "ll"])
def test_float32_and_float64(make, dtype):
    X, y, Xt = _data(60, 2, seed=26)
    ref = make().fit(X, y).predict(Xt)
    model = make().fit(X.astype(dtype), y.astype(dtype))
    pred = model.predict(Xt.astype(dtype))
    assert pred.dtype == dtype
    np.testing.assert_allclose(pred, ref, rtol=1e-3 if dtype == np.float32 else 1e-12, atol=1e-4)


def test_clone_pickle_and_inputs_not_modified():
    X, y, Xt = _data()
    w = np.linspace(0.5, 1.5, len(X))
    copies = [a.copy() for a in (X, y, w, Xt)]
    for est in (KernelRidge(alpha=np.array([0.1, 1.0])), NadarayaWatson(bandwidth="loo", cv_grid=3),
                LocalLinearRegression()):
        c = clone(est)
        assert c.get_params().keys() == est.get_params().keys()
        c.fit(X, y, sample_weight=w)
        p = c.predict(Xt)
        np.testing.assert_array_equal(pickle.loads(pickle.dumps(c)).predict(Xt), p)
        assert 0.5 < c.score(X, y) <= 1.0
    for a, b in zip((X, y, w, Xt), copies):
        np.testing.assert_array_equal(a, b)


def test_prediction_tiles_under_small_budget():
    X, y, _ = _data(100, 3, seed=27)
    Q = np.random.default_rng(28).standard_normal((3000, 3))
    big = KernelRidge(alpha=0.1, bandwidth=1.0).fit(X, y)
    with kk.options(memory="200KB"):
        small = big.predict(Q)
    np.testing.assert_allclose(small, big.predict(Q), rtol=1e-12)


# ------------------------------------------------------------------------------ scikit-learn's checks
#: checks that do not apply, with the reason
SKIPPED_CHECKS = {
    ("KernelRidge(alpha=[0.1, 1.0])", "check_sample_weight_equivalence_on_dense_data"):
        "the leave-one-out choice of alpha leaves out a weighted row whole, one copy of a repeated row: "
        "integer weights equal repeated rows for the fit, not for the choice of alpha",
}
for _name in ("NadarayaWatson", "LocalLinearRegression"):
    SKIPPED_CHECKS[(f"{_name}(bandwidth='loo', cv_grid=3)", "check_sample_weight_equivalence_on_dense_data")] = (
        "the leave-one-out choice of the bandwidth leaves out a weighted row whole, one copy of a repeated row: "
        "integer weights equal repeated rows for a given bandwidth, not for its choice")


@parametrize_with_checks([KernelRidge(), KernelRidge(alpha=[0.1, 1.0]), NadarayaWatson(),
                          NadarayaWatson(bandwidth="loo", cv_grid=3), LocalLinearRegression(),
                          LocalLinearRegression(bandwidth="loo", cv_grid=3)])
def test_sklearn_estimator_checks(estimator, check):
    name = getattr(check, "func", check).__name__
    reason = SKIPPED_CHECKS.get((repr(estimator), name))
    if reason:
        pytest.skip(reason)
    check(estimator)


# ------------------------------------------------------------------------------ bad inputs
def test_bad_inputs_kernel_ridge():
    X, y, _ = _data(20, 2)
    for alpha in (0.0, -1.0, np.nan, np.inf, [0.1, -1.0], [], [[0.1]]):
        with pytest.raises(InvalidValueError, match="'alpha' parameter of KernelRidge"):
            KernelRidge(alpha=alpha).fit(X, y)
    for alpha in ("1", None, True, ["a"]):
        with pytest.raises(InvalidTypeError, match="'alpha'"):
            KernelRidge(alpha=alpha).fit(X, y)
    with pytest.raises(InvalidValueError, match="'cv_mode'"):
        KernelRidge(cv_mode="kfold").fit(X, y)
    with pytest.raises(InvalidValueError, match="'bandwidth'"):
        KernelRidge(bandwidth=-1.0).fit(X, y)
    with pytest.raises(InvalidValueError, match="'kernel'"):
        KernelRidge("nope").fit(X, y)
    Xn = X.copy()
    Xn[3, 1] = np.nan
    with pytest.raises(InvalidValueError, match="'X'.*NaN"):
        KernelRidge().fit(Xn, y)
    yn = y.copy()
    yn[2] = np.inf
    with pytest.raises(InvalidValueError, match="'y'.*inf"):
        KernelRidge().fit(X, yn)
    with pytest.raises(InvalidValueError, match="'y'.*one value"):
        KernelRidge().fit(X, y[:-1])
    with pytest.raises(InvalidValueError, match="'sample_weight'"):
        KernelRidge().fit(X, y, sample_weight=np.ones(19))
    with pytest.raises(InvalidValueError, match="'sample_weight'.*non-negative"):
        KernelRidge().fit(X, y, sample_weight=-np.ones(20))
    with pytest.raises(InvalidValueError, match="'sample_weight'.*positive sum"):
        KernelRidge().fit(X, y, sample_weight=np.zeros(20))
    with pytest.raises(InvalidValueError, match="FalkonRegressor"):
        KernelRidge(memory="4KB").fit(X, y)
    with kk.options(memory="4KB"), pytest.raises(InvalidValueError, match="memory budget"):
        KernelRidge().fit(X, y)
    with pytest.raises(NotFittedError):
        KernelRidge().predict(X)
    with pytest.raises(SklearnNotFittedError):
        KernelRidge().predict(X)
    model = KernelRidge().fit(X, y)
    with pytest.raises(InvalidTypeError, match="'return_std'"):
        model.predict(X, return_std="yes")
    with pytest.raises(InvalidValueError, match="'X'.*NaN"):
        model.predict(Xn)
    with pytest.raises(ValueError, match="features"):
        model.predict(X[:, :1])


def test_bad_inputs_local():
    X, y, _ = _data(20, 2)
    for cls in (NadarayaWatson, LocalLinearRegression):
        with pytest.raises(InvalidValueError, match="'kernel'.*positive"):
            cls("linear").fit(X, y)
        with pytest.raises(InvalidValueError, match="'kernel'.*positive"):
            cls(kk.Linear(0.5)).fit(X, y)
        with pytest.raises(InvalidValueError, match="'bandwidth'.*Kernel object"):
            cls(kk.Gaussian(1.0), bandwidth="loo").fit(X, y)
        with pytest.raises(InvalidValueError, match="'bandwidth'"):
            cls(bandwidth="scott").fit(X, y)
        with pytest.raises(InvalidTypeError, match="'bandwidth'"):
            cls(bandwidth=[1.0]).fit(X, y)
        with pytest.raises(InvalidValueError, match="'cv_range'"):
            cls(bandwidth="loo", cv_range=(2.0, 1.0)).fit(X, y)
        with pytest.raises(InvalidValueError, match="'cv_grid'"):
            cls(bandwidth="loo", cv_grid=1).fit(X, y)
        with pytest.raises(InvalidValueError, match="'y'.*one value"):
            cls().fit(X, y[:5])
        with pytest.raises(InvalidValueError, match="'sample_weight'"):
            cls().fit(X, y, sample_weight=np.ones(3))
        with pytest.raises(NotFittedError):
            cls().predict(X)
    with pytest.raises(InvalidValueError, match="'ridge'"):
        LocalLinearRegression(ridge=-1.0).fit(X, y)


# --------------------------------------------------------------------------- the conjugate-gradient solver
def _krr_data(n, d=4, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    y = np.sin(X[:, 0]) + 0.5 * X[:, 1] * X[:, 2] + 0.1 * rng.standard_normal(n)
    return X, y, rng.standard_normal((50, d))


@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
@pytest.mark.parametrize("alpha", [1.0, 1e-2])
def test_pcg_solver_equals_cholesky(weighted, alpha):
    from kernelkit.regression import KernelRidge
    X, y, Xt = _krr_data(900)
    Y = np.stack([y, np.cos(X[:, 3])], axis=1)
    w = np.random.default_rng(1).uniform(0, 2, size=900) if weighted else None
    if weighted:
        w[:20] = 0.0   # points outside the fit
    ref = KernelRidge(alpha=alpha, bandwidth=1.5, solver="cholesky").fit(X, Y, sample_weight=w)
    m = KernelRidge(alpha=alpha, bandwidth=1.5, solver="pcg").fit(X, Y, sample_weight=w)
    assert m.solver_ == "pcg" and m.pcg_info_["converged"] and m.pcg_info_["residual"] <= 1e-13
    assert ref.pcg_info_ is None
    p, pr = m.predict(Xt), ref.predict(Xt)
    np.testing.assert_allclose(p, pr, rtol=1e-8, atol=1e-10 * np.abs(pr).max())
    # the posterior std needs the factor: formed on the first request
    np.testing.assert_allclose(m.predict(Xt, return_std=True)[1], ref.predict(Xt, return_std=True)[1], rtol=1e-6,
                               atol=1e-9)


def test_pcg_solver_without_the_dense_matrix_and_its_limits():
    import warnings as _w
    from sklearn.exceptions import ConvergenceWarning
    from kernelkit.regression import KernelRidge
    X, y, Xt = _krr_data(1200, seed=2)
    with kk.options(memory=16 * 1200 * 1200 - 1):   # the n x n matrix does not fit: only CG can fit
        with pytest.raises(ValueError, match="solver='pcg'"):
            KernelRidge(alpha=0.5, bandwidth=1.0, solver="cholesky").fit(X, y)
        m = KernelRidge(alpha=0.5, bandwidth=1.0, solver="pcg").fit(X, y)
        with pytest.raises(ValueError, match="return_std"):
            m.predict(Xt, return_std=True)
    ref = KernelRidge(alpha=0.5, bandwidth=1.0, solver="cholesky").fit(X, y)
    np.testing.assert_allclose(m.predict(Xt), ref.predict(Xt), rtol=1e-8, atol=1e-12)
    # too few iterations: "pcg" warns and keeps the iterate, "auto" falls back to the Cholesky solve
    with pytest.warns(ConvergenceWarning, match="max_iter"):
        bad = KernelRidge(alpha=1e-6, bandwidth=1.0, solver="pcg", max_iter=2).fit(X, y)
    assert not bad.pcg_info_["converged"] and bad.pcg_info_["iterations"] == 2
    import kernelkit.regression._exact as ex
    old = ex._PCG_MIN_N
    try:
        ex._PCG_MIN_N = 1000
        with _w.catch_warnings():
            _w.simplefilter("error", ConvergenceWarning)
            auto = KernelRidge(alpha=1e-6, bandwidth=1.0, max_iter=2).fit(X, y)
        assert auto.solver_ in ("mixed", "float64") and auto.pcg_info_["converged"] is False
        auto_ok = KernelRidge(alpha=0.5, bandwidth=1.0).fit(X, y)
        assert auto_ok.solver_ == "pcg"
    finally:
        ex._PCG_MIN_N = old
    for bad_kw in (dict(solver="lu"), dict(tol=0.0), dict(max_iter=0)):
        with pytest.raises(ValueError, match=next(iter(bad_kw))):
            KernelRidge(**bad_kw).fit(X[:50], y[:50])
