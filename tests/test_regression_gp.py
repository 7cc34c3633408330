"""GaussianProcessRegressor: the analytic gradient against central finite differences, the log marginal
likelihood against a dense slogdet + solve reference and scikit-learn, predictions against scikit-learn,
optimised values against scikit-learn's from the same start, ARD relevance, memory, scikit-learn's estimator
checks and bad inputs."""

import math
import tracemalloc
import warnings

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.exceptions import NotFittedError as SklearnNotFittedError
from sklearn.gaussian_process import GaussianProcessRegressor as SkGPR
from sklearn.gaussian_process import kernels as skk
from sklearn.utils.estimator_checks import parametrize_with_checks

import _reference as ref
import kernelkit as kk
from kernelkit.exceptions import InvalidTypeError, InvalidValueError, NotFittedError, NotSupportedError
from kernelkit.regression import GaussianProcessRegressor as GP

#: every family with an analytic lengthscale gradient: (unit-bandwidth kernelkit kernel, _reference spec)
FAMILIES = {
    "gaussian": (kk.Gaussian(1.0), ("gauss", 1.0)),
    "laplace": (kk.Laplace(1.0), ("laplace", 1.0)),
    "matern12": (kk.Matern(0.5, 1.0), ("matern", 0.5, 1.0)),
    "matern32": (kk.Matern(1.5, 1.0), ("matern", 1.5, 1.0)),
    "matern52": (kk.Matern(2.5, 1.0), ("matern", 2.5, 1.0)),
    "rq2": (kk.RationalQuadratic(1.0, alpha=2.0), ("rq", 1.0, 2.0)),
    "rq07": (kk.RationalQuadratic(1.0, alpha=0.7), ("rq", 1.0, 0.7)),
    "imq05": (kk.IMQ(1.0, beta=0.5), ("imq", 1.0, 0.5)),
    "imq13": (kk.IMQ(1.0, beta=1.3), ("imq", 1.0, 1.3)),
}
#: the same families by name (rq / cauchy: alpha 1; imq: beta 1/2)
NAMES = {"gaussian": ("gauss", 1.0), "rbf": ("gauss", 1.0), "laplace": ("laplace", 1.0),
         "matern12": ("matern", 0.5, 1.0), "matern32": ("matern", 1.5, 1.0), "matern": ("matern", 1.5, 1.0),
         "matern52": ("matern", 2.5, 1.0), "rq": ("rq", 1.0, 1.0), "cauchy": ("rq", 1.0, 1.0),
         "imq": ("imq", 1.0, 0.5)}


def _data(n=37, d=3, seed=0, t=None, relevant=None):
    rng = np.random.default_rng(seed)
    X = rng.uniform(-2, 2, size=(n, d))
    f = np.sin(1.5 * X[:, 0]) + 0.5 * X[:, min(1, d - 1)] ** 2
    y = 3.0 + 2.0 * f + 0.1 * rng.standard_normal(n)
    if t is not None:
        y = np.column_stack([y * (j + 1) - j for j in range(t)])
    return X, y, rng.uniform(-2, 2, size=(23, d))


def _dense_lml(spec, X, Y, ell, s2, sn2, normalize=True):
    """log p(y | theta) written out: slogdet and solve of s^2 K(X / ell) + sn2 I (summed over targets)."""
    Y = np.asarray(Y, dtype=np.float64).reshape(X.shape[0], -1)
    if normalize:
        Y = (Y - Y.mean(0)) / Y.std(0)
    U = X / ell
    K = s2 * ref.k_matrix(spec, U, U) + sn2 * np.eye(X.shape[0])
    sign, logdet = np.linalg.slogdet(K)
    assert sign > 0
    a = np.linalg.solve(K, Y)
    n, t = Y.shape
    return float(-0.5 * np.sum(Y * a) - 0.5 * t * logdet - 0.5 * n * t * math.log(2 * math.pi))


def _fd(gp, theta, h=1e-5):
    return np.array([(gp.log_marginal_likelihood(theta + h * e) - gp.log_marginal_likelihood(theta - h * e))
                     / (2 * h) for e in np.eye(theta.size)])


def _check_gradient(gp, theta):
    lml, g = gp.log_marginal_likelihood(theta, eval_gradient=True)
    assert lml == pytest.approx(gp.log_marginal_likelihood(theta), rel=1e-13)
    fd = _fd(gp, theta)
    scale = np.abs(fd).max()
    assert scale > 1e-2   # (a gradient that is not ~0, so the comparison means something)
    np.testing.assert_allclose(g, fd, rtol=1e-6, atol=1e-6 * scale)
    return g


def _start(ard, d):
    return dict(lengthscale=np.linspace(0.7, 2.1, d) if ard else 1.1, amplitude=1.7, noise=0.3)


# ------------------------------------------------------------------------------ the gradient
@pytest.mark.parametrize("ard", [False, True], ids=["iso", "ard"])
@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_gradient_matches_central_differences(family, ard):
    kern, _ = FAMILIES[family]
    X, y, _ = _data()
    gp = GP(kern, ard=ard, init=_start(ard, 3), optimizer=None).fit(X, y)
    assert gp.theta_.size == (3 if ard else 1) + 2
    theta = gp.theta_ + np.random.default_rng(1).uniform(-0.5, 0.5, gp.theta_.size)
    g = _check_gradient(gp, theta)
    # the same with row tiles of 5 rows (a budget of 8 n^2 + 5 * 64 n bytes): same values
    tiled = GP(kern, ard=ard, init=_start(ard, 3), optimizer=None, memory=8 * 37 ** 2 + 5 * 64 * 37).fit(X, y)
    lt, gt = tiled.log_marginal_likelihood(theta, eval_gradient=True)
    assert lt == pytest.approx(gp.log_marginal_likelihood(theta), rel=1e-12)
    np.testing.assert_allclose(gt, g, rtol=1e-9, atol=1e-11 * np.abs(g).max())


@pytest.mark.parametrize("name", sorted(NAMES))
def test_gradient_by_name_and_with_fixed_values(name):
    X, y, _ = _data(n=30, d=2, seed=3, t=2)   # two targets
    gp = GP(name, ard=True, noise=0.2, init=dict(lengthscale=[0.8, 1.4], amplitude=1.2), optimizer=None).fit(X, y)
    assert gp.theta_names_ == ["log_lengthscale[0]", "log_lengthscale[1]", "log_amplitude"]
    _check_gradient(gp, gp.theta_ + np.array([0.3, -0.2, 0.4]))
    gp = GP(name, lengthscale=0.9, optimizer=None).fit(X, y)   # only amplitude and noise free
    assert gp.theta_names_ == ["log_amplitude", "log_noise"]
    _check_gradient(gp, gp.theta_ + np.array([0.2, -0.3]))


def test_gradient_of_a_kernel_without_lengthscale_gradient():
    # the amplitude and noise of any kernel can be fitted once its lengthscale is fixed
    X, y, _ = _data(n=31, d=1, seed=4)
    for kern in (kk.Periodic(bandwidth=0.9, period=2.5), kk.Matern(nu=0.7, bandwidth=1.0) + kk.Linear(0.5)):
        gp = GP(kern, lengthscale=1.3, optimizer=None).fit(X, y)
        assert gp.theta_names_ == ["log_amplitude", "log_noise"]
        _check_gradient(gp, gp.theta_ + np.array([0.3, 0.5]))


# ------------------------------------------------------------------------------ values at fixed theta
@pytest.mark.parametrize("normalize_y", [True, False])
@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_lml_matches_dense_reference(family, normalize_y):
    kern, spec = FAMILIES[family]
    X, y, _ = _data(n=41, d=3, seed=5)
    ell, s2, sn2 = np.array([0.8, 1.9, 1.1]), 1.4, 0.05
    gp = GP(kern, ard=True, lengthscale=ell, amplitude=s2, noise=sn2, normalize_y=normalize_y).fit(X, y)
    assert gp.n_iter_ == 0 and gp.theta_.size == 0
    ref_lml = _dense_lml(spec, X, y, ell, s2, sn2, normalize_y)
    assert gp.log_marginal_likelihood_ == pytest.approx(ref_lml, rel=1e-10)
    # iso: one lengthscale, and theta evaluates the same function
    iso = GP(kern, init=dict(lengthscale=1.3, amplitude=0.6, noise=0.2), optimizer=None,
             normalize_y=normalize_y).fit(X, y)
    assert iso.log_marginal_likelihood_ == pytest.approx(_dense_lml(spec, X, y, 1.3, 0.6, 0.2, normalize_y),
                                                         rel=1e-10)
    theta = np.log([0.5, 2.0, 0.01])
    assert iso.log_marginal_likelihood(theta) == pytest.approx(
        _dense_lml(spec, X, y, 0.5, 2.0, 0.01, normalize_y), rel=1e-10)


def _sk_kernel(family, ell, s2, sn2):
    base = {"gaussian": lambda: skk.RBF(ell), "matern12": lambda: skk.Matern(ell, nu=0.5),
            "matern32": lambda: skk.Matern(ell, nu=1.5), "matern52": lambda: skk.Matern(ell, nu=2.5),
            "rq2": lambda: skk.RationalQuadratic(ell, alpha=2.0)}[family]()
    return skk.ConstantKernel(s2) * base + skk.WhiteKernel(sn2)


@pytest.mark.parametrize("normalize_y", [True, False])
@pytest.mark.parametrize("family,ard", [("gaussian", True), ("gaussian", False), ("matern12", True),
                                        ("matern32", True), ("matern52", False), ("rq2", False)])
def test_lml_and_predictions_match_sklearn(family, ard, normalize_y):
    kern, _ = FAMILIES[family]
    X, y, Xt = _data(n=60, d=4, seed=6)
    ell = np.array([0.7, 1.6, 2.5, 1.2]) if ard else 1.3
    s2, sn2 = 1.8, 0.04
    ours = GP(kern, ard=ard, lengthscale=ell, amplitude=s2, noise=sn2, normalize_y=normalize_y).fit(X, y)
    sk = SkGPR(_sk_kernel(family, ell, s2, sn2), optimizer=None, alpha=0.0, normalize_y=normalize_y).fit(X, y)
    assert ours.log_marginal_likelihood_ == pytest.approx(sk.log_marginal_likelihood_value_, rel=1e-8)
    m, sd = ours.predict(Xt, return_std=True)
    m_sk, sd_sk = sk.predict(Xt, return_std=True)
    np.testing.assert_allclose(m, m_sk, rtol=1e-8, atol=1e-10)
    # scikit-learn's std includes the WhiteKernel noise (times y's variance under normalize_y); ours is f's
    noise_y = sn2 * ours.y_train_std_[0] ** 2
    np.testing.assert_allclose(sd ** 2 + noise_y, sd_sk ** 2, rtol=1e-8)
    _, cov = ours.predict(Xt, return_cov=True)
    _, cov_sk = sk.predict(Xt, return_cov=True)
    np.testing.assert_allclose(cov + noise_y * np.eye(len(Xt)), cov_sk, rtol=1e-7, atol=1e-10)
    np.testing.assert_allclose(np.diag(cov), sd ** 2, rtol=1e-9, atol=1e-12)


def test_multi_target_matches_sklearn_and_sum_of_targets():
    X, Y, Xt = _data(n=50, d=2, seed=7, t=3)
    ell, s2, sn2 = np.array([0.9, 1.7]), 1.1, 0.03
    ours = GP(ard=True, lengthscale=ell, amplitude=s2, noise=sn2).fit(X, Y)
    sk = SkGPR(_sk_kernel("gaussian", ell, s2, sn2), optimizer=None, alpha=0.0, normalize_y=True).fit(X, Y)
    assert ours.log_marginal_likelihood_ == pytest.approx(sk.log_marginal_likelihood_value_, rel=1e-8)
    per_target = sum(GP(ard=True, lengthscale=ell, amplitude=s2, noise=sn2).fit(X, Y[:, j]).log_marginal_likelihood_
                     for j in range(3))
    assert ours.log_marginal_likelihood_ == pytest.approx(per_target, rel=1e-12)
    m, sd = ours.predict(Xt, return_std=True)
    m_sk, sd_sk = sk.predict(Xt, return_std=True)
    assert m.shape == sd.shape == (len(Xt), 3)
    np.testing.assert_allclose(m, m_sk, rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(sd ** 2 + sn2 * ours.y_train_std_ ** 2, sd_sk ** 2, rtol=1e-8)
    assert ours.predict(Xt, return_cov=True)[1].shape == (len(Xt), len(Xt), 3)
    col = GP(lengthscale=1.0).fit(X, Y[:, :1])
    assert col.predict(Xt).shape == (len(Xt), 1) and col.predict(Xt, return_std=True)[1].shape == (len(Xt), 1)


# ------------------------------------------------------------------------------ optimisation
@pytest.mark.parametrize("family,ard", [("gaussian", True), ("gaussian", False), ("matern52", True),
                                        ("matern12", False)])
def test_optimum_at_least_sklearn_from_the_same_start(family, ard):
    kern, _ = FAMILIES[family]
    X, y, Xt = _data(n=120, d=4, seed=8)
    ell0 = np.full(4, 1.5) if ard else 1.5
    ours = GP(kern, ard=ard, init=dict(lengthscale=ell0, amplitude=1.0, noise=0.1)).fit(X, y)
    sk = SkGPR(_sk_kernel(family, ell0, 1.0, 0.1), alpha=0.0, normalize_y=True).fit(X, y)
    best_sk = sk.log_marginal_likelihood_value_
    assert ours.log_marginal_likelihood_ >= best_sk - 1e-6 * abs(best_sk)
    assert ours.n_iter_ > 0
    # the fitted value is L at the fitted hyperparameters, and scikit-learn agrees on it
    assert ours.log_marginal_likelihood_ == pytest.approx(ours.log_marginal_likelihood(ours.theta_), rel=1e-13)
    ell = ours.lengthscales_ if ard else ours.bandwidth_
    at_ours = SkGPR(_sk_kernel(family, ell, ours.amplitude_, ours.noise_), optimizer=None, alpha=0.0,
                    normalize_y=True).fit(X, y)
    assert at_ours.log_marginal_likelihood_value_ == pytest.approx(ours.log_marginal_likelihood_, rel=1e-8)
    # and the gradient vanishes where no bound is active
    _, g = ours.log_marginal_likelihood(ours.theta_, eval_gradient=True)
    lo, hi = math.log(1e-5), math.log(1e5)
    inside = (ours.theta_ > lo + 1e-3) & (ours.theta_ < hi - 1e-3)
    assert np.all(np.abs(g[inside]) < 1e-2)


def test_ard_recovers_relevance():
    # y depends on features 0 and 1 only (of 6); n = 150, noise sd 0.1, seed 0
    rng = np.random.default_rng(0)
    X = rng.uniform(-2, 2, size=(150, 6))
    y = np.sin(1.5 * X[:, 0]) + 0.5 * X[:, 1] ** 2 + 0.1 * rng.standard_normal(150)
    for kernel in ("gaussian", "matern52"):
        gp = GP(kernel, ard=True).fit(X, y)
        ls = gp.lengthscales_
        # asserted: every irrelevant lengthscale > 20 x the largest relevant one (seen: 115 x and 147 x)
        assert ls[2:].min() > 20 * ls[:2].max(), ls
        assert ls[:2].max() < 20
        assert gp.noise_ == pytest.approx(0.01 / np.var(y), rel=0.5)   # noise variance, normalised units


def test_restarts_are_reproducible_and_never_worse():
    X, y, _ = _data(n=60, d=3, seed=9)
    one = GP(ard=True).fit(X, y)
    a = GP(ard=True, n_restarts=2, random_state=0).fit(X, y)
    b = GP(ard=True, n_restarts=2, random_state=0).fit(X, y)
    assert a.log_marginal_likelihood_ == b.log_marginal_likelihood_
    np.testing.assert_array_equal(a.lengthscales_, b.lengthscales_)
    assert a.log_marginal_likelihood_ >= one.log_marginal_likelihood_ - 1e-9 * abs(one.log_marginal_likelihood_)


def test_fixed_values_stay_fixed_and_starts():
    X, y, _ = _data(n=50, d=3, seed=10)
    gp = GP(ard=True, noise=0.05).fit(X, y)
    assert gp.noise_ == 0.05 and "log_noise" not in gp.theta_names_
    gp = GP(amplitude=2.0, lengthscale=0.7).fit(X, y)
    assert gp.amplitude_ == 2.0 and gp.bandwidth_ == 0.7 and gp.theta_names_ == ["log_noise"]
    np.testing.assert_array_equal(gp.lengthscales_, np.full(3, 0.7))
    # starting values: the median heuristic (iso), its per-feature spread (ARD), a Kernel object's bandwidth
    iso = GP(optimizer=None).fit(X, y)
    assert iso.bandwidth_ == pytest.approx(kk.median_bandwidth(X), rel=1e-14)
    assert iso.amplitude_ == pytest.approx(1.0) and iso.noise_ == pytest.approx(0.1)
    Xs = X * np.array([1.0, 3.0, 0.2])
    ard = GP(ard=True, optimizer=None).fit(Xs, y)
    iu = np.triu_indices(50, 1)
    c = np.array([np.median(np.abs(Xs[iu[0], k] - Xs[iu[1], k])) for k in range(3)])
    np.testing.assert_allclose(ard.lengthscales_, kk.median_bandwidth(Xs) * c / np.sqrt(np.mean(c * c)),
                               rtol=1e-12)
    assert ard.bandwidth_ is None
    obj = GP(kk.Matern(2.5, 1.7), ard=True, optimizer=None).fit(X, y)
    np.testing.assert_array_equal(obj.lengthscales_, np.full(3, 1.7))
    assert obj.kernel_ == kk.Matern(2.5, 1.0)
    raw = GP(normalize_y=False, optimizer=None).fit(X, y)   # amplitude start: mean(y^2); noise: a tenth
    assert raw.amplitude_ == pytest.approx(np.mean(y ** 2)) and raw.noise_ == pytest.approx(0.1 * np.mean(y ** 2))
    np.testing.assert_array_equal(raw.y_train_mean_, [0.0])


def test_unsupported_kernels_with_optimizer_none_and_fixed_lengthscale():
    X, y, Xt = _data(n=40, d=1, seed=11)
    kern = kk.Periodic(bandwidth=0.9, period=2.5)
    gp = GP(kern, amplitude=1.3, noise=0.1, optimizer=None).fit(X, y)
    assert gp.kernel_ is kern and gp.bandwidth_ == 1.0   # used as given: inputs not scaled
    assert gp.log_marginal_likelihood_ == pytest.approx(
        _dense_lml(("periodic", 0.9, 2.5), X, y, 1.0, 1.3, 0.1), rel=1e-10)
    fitted = GP(kern, lengthscale=1.0).fit(X, y)   # amplitude and noise fitted
    assert fitted.log_marginal_likelihood_ >= gp.log_marginal_likelihood_
    assert fitted.theta_names_ == ["log_amplitude", "log_noise"]
    lin = GP(kk.Linear(1.0), lengthscale=2.0, amplitude=0.5, noise=0.2, normalize_y=False).fit(X, y)
    K = 0.5 * ((X / 2.0) @ (X / 2.0).T + 1.0) + 0.2 * np.eye(40)   # not centred: Linear is not stationary
    np.testing.assert_allclose(lin.predict(Xt), 0.5 * ((Xt / 2.0) @ (X / 2.0).T + 1.0) @ np.linalg.solve(K, y),
                               rtol=1e-9)


# ------------------------------------------------------------------------------ dtypes, memory, inputs
def test_float32_inputs_are_computed_in_float64():
    X, y, Xt = _data(n=40, d=2, seed=12)
    X32, Xt32 = X.astype(np.float32), Xt.astype(np.float32)
    a = GP(ard=True).fit(X32, y)
    b = GP(ard=True).fit(X32.astype(np.float64), y)
    np.testing.assert_allclose(a.lengthscales_, b.lengthscales_, rtol=1e-12)
    assert a.log_marginal_likelihood_ == pytest.approx(b.log_marginal_likelihood_, rel=1e-13)
    pa = a.predict(Xt32)
    assert pa.dtype == np.float64
    np.testing.assert_allclose(pa, b.predict(Xt32.astype(np.float64)), rtol=1e-12, atol=1e-13)


def test_tiled_predictions_and_peak_memory_within_the_budget():
    n, d = 300, 4
    X, y, Xt = _data(n=n, d=d, seed=13)
    budget = 8 * n * n + 30 * 64 * n   # the n x n matrix and tiles of 30 rows
    gp = GP(ard=True, init=_start(True, d), optimizer=None, memory=budget).fit(X, y)
    full = GP(ard=True, init=_start(True, d), optimizer=None).fit(X, y)
    m, sd = gp.predict(Xt, return_std=True)
    m2, sd2 = full.predict(Xt, return_std=True)
    np.testing.assert_allclose(m, m2, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(sd, sd2, rtol=1e-9, atol=1e-12)
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        gp.log_marginal_likelihood(gp.theta_, eval_gradient=True)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # one n x n matrix plus the tiles: no second n x n array (scikit-learn holds (d + 5) of them)
    assert 8 * n * n < peak <= budget + 64 * n * d, (peak, budget)


def test_memory_budget_error_says_what_is_needed():
    X, y, _ = _data(n=200, d=2)
    with pytest.raises(InvalidValueError, match=r"'X' parameter of GaussianProcessRegressor\.fit must be at most "
                                                r"\d+ points.*8 n\^2 bytes.*need at least 0\.3 MB"):
        GP(memory="100KB").fit(X, y)
    with kk.options(memory="100KB"), pytest.raises(InvalidValueError, match="memory budget"):
        GP().fit(X, y)
    gp = GP(lengthscale=1.0, memory="400KB").fit(X, y)
    with pytest.raises(InvalidValueError, match="return_cov"):
        gp.predict(np.zeros((300, 2)), return_cov=True)


def test_inputs_are_not_modified():
    X, y, Xt = _data(n=30, d=2, seed=14)
    X0, y0, Xt0 = X.copy(), y.copy(), Xt.copy()
    init = dict(lengthscale=np.array([1.0, 2.0]), amplitude=1.0)
    ell = np.array([0.5, 0.7])
    gp = GP(ard=True, init=init).fit(X, y)
    gp.predict(Xt, return_std=True)
    GP(ard=True, lengthscale=ell).fit(X, y)
    np.testing.assert_array_equal(X, X0)
    np.testing.assert_array_equal(y, y0)
    np.testing.assert_array_equal(Xt, Xt0)
    np.testing.assert_array_equal(init["lengthscale"], [1.0, 2.0])
    np.testing.assert_array_equal(ell, [0.5, 0.7])


# ------------------------------------------------------------------------------ scikit-learn's checks
@parametrize_with_checks([GP(), GP("matern32", ard=True, noise=0.1)])
def test_sklearn_estimator_checks(estimator, check):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", category=UserWarning)
        check(estimator)


def test_clone_and_params():
    m = GP("laplace", ard=True, noise=0.1, init={"amplitude": 2.0}, n_restarts=2)
    c = clone(m)
    assert c.get_params()["init"] == {"amplitude": 2.0} and not hasattr(c, "alpha_")
    assert c.get_params()["kernel"] == "laplace" and c.get_params()["ard"] is True


# ------------------------------------------------------------------------------ bad inputs
def test_bad_inputs():
    X, y, _ = _data(n=20, d=2)
    yn = y.copy()
    yn[3] = np.nan
    with pytest.raises(InvalidValueError, match="'y'.*NaN"):
        GP().fit(X, yn)
    Xn = X.copy()
    Xn[1, 1] = np.inf
    with pytest.raises(InvalidValueError, match="'X'.*inf"):
        GP().fit(Xn, y)
    with pytest.raises(InvalidValueError, match="'y'.*one value"):
        GP().fit(X, y[:-1])
    for noise in (0.0, -1.0, np.nan, np.inf):
        with pytest.raises(InvalidValueError, match="'noise' parameter of GaussianProcessRegressor must be"):
            GP(noise=noise).fit(X, y)
    with pytest.raises(InvalidTypeError, match="'noise'"):
        GP(noise="0.1").fit(X, y)
    with pytest.raises(InvalidValueError, match="'amplitude'"):
        GP(amplitude=0).fit(X, y)
    # kernels whose lengthscale gradient is not implemented: refused for optimisation, fine without
    for kern in (kk.Periodic(1.0, 2.0), kk.Linear(), kk.Matern(nu=0.7), kk.Gaussian(1.0) + kk.Laplace(1.0),
                 2.0 * kk.Gaussian(1.0), "periodic", "linear"):
        X1 = X[:, :1]   # (the periodic kernel of ||x - y|| is positive definite in one dimension only)
        with pytest.raises(NotSupportedError, match="lengthscale of .* cannot be fitted"):
            GP(kern).fit(X1, y)
        GP(kern, optimizer=None).fit(X1, y).predict(X1)
        with pytest.raises(InvalidValueError, match="'init'"):
            GP(kern, init={"lengthscale": 1.0}, optimizer=None).fit(X1, y)
    with pytest.raises(InvalidValueError, match="'kernel'"):
        GP("nope").fit(X, y)
    with pytest.raises(InvalidTypeError, match="'kernel'"):
        GP(3).fit(X, y)
    # lengthscales of the wrong shape
    with pytest.raises(InvalidValueError, match=r"'lengthscale'.*one shared lengthscale: ard=False"):
        GP(lengthscale=[1.0, 2.0]).fit(X, y)
    with pytest.raises(InvalidValueError, match=r"'lengthscale'.*shape \(2,\).*Got an array of shape \(3,\)"):
        GP(ard=True, lengthscale=[1.0, 2.0, 3.0]).fit(X, y)
    with pytest.raises(InvalidValueError, match="'lengthscale'"):
        GP(ard=True, lengthscale=[1.0, -2.0]).fit(X, y)
    with pytest.raises(InvalidValueError, match=r"init\['lengthscale'\]"):
        GP(ard=True, init={"lengthscale": [[1.0, 2.0]]}).fit(X, y)
    with pytest.raises(InvalidTypeError, match="'lengthscale'"):
        GP(lengthscale="wide").fit(X, y)
    # a Kernel object carries its lengthscale
    with pytest.raises(InvalidValueError, match="'lengthscale'.*Kernel object"):
        GP(kk.Gaussian(2.0), lengthscale=1.0).fit(X, y)
    with pytest.raises(InvalidValueError, match="'init'.*Kernel object"):
        GP(kk.Gaussian(2.0), init={"lengthscale": 1.0}).fit(X, y)
    with pytest.raises(InvalidValueError, match="'kernel'.*lengthscale_bounds"):
        GP(kk.Gaussian(1e6)).fit(X, y)
    # init, bounds, options
    with pytest.raises(InvalidValueError, match="'init'.*keys"):
        GP(init={"sigma": 1.0}).fit(X, y)
    with pytest.raises(InvalidTypeError, match="'init'"):
        GP(init=[1.0]).fit(X, y)
    with pytest.raises(InvalidValueError, match="'init'.*the noise is fixed"):
        GP(noise=0.1, init={"noise": 0.2}).fit(X, y)
    with pytest.raises(InvalidValueError, match="'init'.*within noise_bounds"):
        GP(init={"noise": 1e-9}).fit(X, y)
    for bad in ((1.0, 0.5), (0.0, 1.0), (1e-5,), (1e-5, np.inf), "fixed"):
        with pytest.raises((InvalidValueError, InvalidTypeError), match="'noise_bounds'"):
            GP(noise_bounds=bad).fit(X, y)
    with pytest.raises(InvalidValueError, match="'optimizer'"):
        GP(optimizer="adam").fit(X, y)
    with pytest.raises(InvalidValueError, match="'n_restarts'"):
        GP(n_restarts=-1).fit(X, y)
    with pytest.raises(InvalidTypeError, match="'ard'"):
        GP(ard=1).fit(X, y)
    # unfitted, and after fit
    for call in (lambda g: g.predict(X), lambda g: g.log_marginal_likelihood(), lambda g: g.score(X, y)):
        with pytest.raises(NotFittedError):
            call(GP())
        with pytest.raises(SklearnNotFittedError):
            call(GP())
    gp = GP().fit(X, y)
    with pytest.raises(InvalidValueError, match="'return_cov'"):
        gp.predict(X, return_std=True, return_cov=True)
    with pytest.raises(InvalidValueError, match=r"'theta'.*shape \(3,\)"):
        gp.log_marginal_likelihood(np.zeros(2))
    with pytest.raises(InvalidValueError, match="'X'.*NaN"):
        gp.predict(np.array([[0.0, np.nan]]))
    with pytest.raises(ValueError, match="features"):
        gp.predict(np.zeros((3, 5)))


def test_a_matrix_that_does_not_factor():
    # a rank-1 linear kernel with a negligible fixed noise: K_y is singular to rounding
    X = np.linspace(1, 2, 30)[:, None]
    y = np.sin(X[:, 0])
    with pytest.raises(InvalidValueError, match="'noise'.*positive definite"):
        GP(kk.Linear(), lengthscale=1.0, amplitude=1.0, noise=1e-300, normalize_y=False).fit(X, y)
    gp = GP(kk.Linear(), lengthscale=1.0, optimizer=None, normalize_y=False).fit(X, y)
    lml, g = gp.log_marginal_likelihood(np.array([0.0, -690.0]), eval_gradient=True)
    assert lml == -math.inf and np.all(g == 0)
