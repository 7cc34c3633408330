"""KernelDensity against scipy's gaussian_kde, a slow direct formula, numerical integration and log-domain references."""

import numpy as np
import pytest
from scipy import integrate, stats
from scipy.special import logsumexp

import kernelkit as kk
from kernelkit.density import KernelDensity, bandwidth_scott, bandwidth_silverman


def _slow_logpdf(kernel, X, Y, w=None):
    """Direct formula: log(sum_i w_i k(x_i, y) / sum w / integral of k), dense matrix, float64."""
    X = np.asarray(X, float)
    Y = np.asarray(Y, float)
    w = np.ones(len(X)) if w is None else np.asarray(w, float)
    K = kernel(X, Y)
    return np.log(w @ K / w.sum()) - kernel.log_integral(X.shape[1])


def test_matches_gaussian_kde_1d_float64():
    rng = np.random.default_rng(0)
    x = rng.standard_normal(700) * 2.0 + 1.0
    y = np.linspace(-8, 10, 301)
    ref = stats.gaussian_kde(x)
    kde = KernelDensity().fit(x[:, None])
    assert kde.bandwidth_ == pytest.approx(np.sqrt(ref.covariance[0, 0]), rel=1e-12)
    np.testing.assert_allclose(kde.score_samples(y[:, None]), ref.logpdf(y), rtol=1e-10)
    ref_s = stats.gaussian_kde(x, bw_method="silverman")
    kde_s = KernelDensity(bandwidth="silverman").fit(x[:, None])
    np.testing.assert_allclose(kde_s.score_samples(y[:, None]), ref_s.logpdf(y), rtol=1e-10)


def test_matches_gaussian_kde_weighted_1d():
    rng = np.random.default_rng(1)
    x = rng.standard_normal(300)
    w = rng.uniform(0.1, 3.0, 300)
    ref = stats.gaussian_kde(x, weights=w)
    kde = KernelDensity().fit(x[:, None], sample_weight=w)
    y = np.linspace(-4, 4, 50)
    np.testing.assert_allclose(kde.score_samples(y[:, None]), ref.logpdf(y), rtol=1e-10)


def test_matches_gaussian_kde_isotropic_3d():
    # gaussian_kde with a fixed isotropic covariance h^2 I: set its covariance directly
    rng = np.random.default_rng(2)
    X = rng.standard_normal((400, 3))
    Y = rng.standard_normal((60, 3)) * 1.5
    h = 0.37
    ref = stats.gaussian_kde(X.T)
    ref.covariance = h ** 2 * np.eye(3)
    ref.cho_cov = np.linalg.cholesky(ref.covariance)
    ref.log_det = 2 * np.log(np.diag(ref.cho_cov)).sum()
    kde = KernelDensity(bandwidth=h).fit(X)
    np.testing.assert_allclose(kde.score_samples(Y), ref.logpdf(Y.T), rtol=1e-10)


KERNELS_1D = ["gaussian", "laplace", "matern32", "matern52", "cauchy"]


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore::scipy.integrate.IntegrationWarning")
@pytest.mark.parametrize("name", KERNELS_1D)
def test_every_kernel_vs_direct_formula_and_integrates_to_one_1d(name):
    rng = np.random.default_rng(3)
    x = rng.standard_normal((37, 1))
    w = rng.uniform(0.5, 2.0, 37)
    kde = KernelDensity(kernel=name, bandwidth=0.6).fit(x, sample_weight=w)
    y = np.linspace(-3, 3, 41)[:, None]
    slow = _slow_logpdf(kk.make_kernel(name, bandwidth=0.6), x, y, w)
    np.testing.assert_allclose(kde.score_samples(y), slow, rtol=1e-10, atol=1e-12)
    total, _ = integrate.quad(lambda t: np.exp(kde.score_samples([[t]])[0]), -np.inf, np.inf, limit=400)
    assert total == pytest.approx(1.0, abs=2e-3 if name == "cauchy" else 1e-6)


@pytest.mark.parametrize("kernel", [kk.Gaussian(0.5), kk.Laplace(0.5), kk.Matern(2.5, 0.5),
                                    kk.RationalQuadratic(0.5, alpha=3.0),
                                    kk.Gaussian(0.5) + 2.0 * kk.Laplace(0.25)])
def test_kernel_objects_vs_direct_formula_and_integral_2d(kernel):
    rng = np.random.default_rng(4)
    X = rng.standard_normal((25, 2))
    kde = KernelDensity(kernel=kernel).fit(X)
    Y = rng.standard_normal((30, 2))
    # a Kernel object carries its bandwidth: it is applied to the data as they are
    slow = _slow_logpdf(kernel, X, Y)
    np.testing.assert_allclose(kde.score_samples(Y), slow, rtol=1e-10, atol=1e-12)
    assert kde.kernel_ is kernel
    assert kde.bandwidth_ == getattr(kernel, "bandwidth", None)
    g = np.linspace(-12, 12, 801)
    G = np.stack(np.meshgrid(g, g), -1).reshape(-1, 2)
    p = np.exp(kde.score_samples(G)).reshape(801, 801)
    total = np.trapezoid(np.trapezoid(p, g, axis=1), g)
    assert total == pytest.approx(1.0, abs=3e-3)


@pytest.mark.parametrize("d", [32, 64])
def test_high_dimension_exact_in_log_domain(d):
    rng = np.random.default_rng(5)
    X = rng.standard_normal((200, d))
    Y = rng.standard_normal((40, d)) * 3.0
    h = 0.2
    kde = KernelDensity(bandwidth=h).fit(X)
    logk = -((Y[:, None, :] - X[None, :, :]) ** 2).sum(-1) / (2 * h * h)
    ref = logsumexp(logk, axis=1) - np.log(200) - 0.5 * d * np.log(2 * np.pi * h * h)
    # the direct formula underflows: every kernel value is 0 in float64
    assert np.all(np.exp(logk) == 0)
    out = kde.score_samples(Y)
    assert np.all(np.isfinite(out))
    np.testing.assert_allclose(out, ref, rtol=1e-10)


def test_blocked_path_and_float32():
    rng = np.random.default_rng(6)
    X = rng.standard_normal((333, 5))
    Y = rng.standard_normal((77, 5))
    full = KernelDensity(kernel="laplace", bandwidth=0.8).fit(X).score_samples(Y)
    tiny = KernelDensity(kernel="laplace", bandwidth=0.8, memory=4096).fit(X).score_samples(Y)
    np.testing.assert_allclose(tiny, full, rtol=1e-12)
    out32 = KernelDensity(kernel="laplace", bandwidth=0.8).fit(X.astype(np.float32)).score_samples(
        Y.astype(np.float32))
    assert out32.dtype == np.float32
    np.testing.assert_allclose(out32, full, rtol=1e-4)


def test_weights_equal_duplicates_and_zero_weights_drop_points():
    rng = np.random.default_rng(7)
    X = rng.standard_normal((20, 2))
    Y = rng.standard_normal((9, 2))
    w = np.ones(20)
    w[3] = 3.0
    w[5] = 0.0
    dup = np.vstack([X, X[3], X[3]])
    dup = np.delete(dup, 5, axis=0)
    a = KernelDensity(bandwidth=0.5).fit(X, sample_weight=w).score_samples(Y)
    b = KernelDensity(bandwidth=0.5).fit(dup).score_samples(Y)
    np.testing.assert_allclose(a, b, rtol=1e-12)
    assert KernelDensity(bandwidth=0.5).fit(X).score(Y) == pytest.approx(
        KernelDensity(bandwidth=0.5).fit(X).score_samples(Y).sum())


def test_inputs_not_modified():
    rng = np.random.default_rng(8)
    X = rng.standard_normal((30, 2))
    w = rng.uniform(1, 2, 30)
    X0, w0 = X.copy(), w.copy()
    kde = KernelDensity(bandwidth="cv", cv_grid=4).fit(X, sample_weight=w)
    kde.score_samples(X)
    np.testing.assert_array_equal(X, X0)
    np.testing.assert_array_equal(w, w0)


def test_bandwidth_rules_formulas():
    rng = np.random.default_rng(9)
    X = rng.standard_normal((500, 3)) * [1.0, 2.0, 3.0]
    s = np.sqrt(np.mean(np.var(X, axis=0, ddof=1)))
    assert bandwidth_scott(X) == pytest.approx(s * 500 ** (-1 / 7), rel=1e-12)
    assert bandwidth_silverman(X) == pytest.approx(s * (500 * 5 / 4) ** (-1 / 7), rel=1e-12)


def test_cv_loo_matches_direct_and_beats_bad_bandwidths():
    rng = np.random.default_rng(10)
    centres = np.array([[-2.0, 0.0], [2.0, 0.0]])
    def draw(m):
        return centres[rng.integers(2, size=m)] + 0.3 * rng.standard_normal((m, 2))
    X, held = draw(600), draw(2000)
    kde = KernelDensity(bandwidth="cv", cv_grid=12).fit(X)
    # leave-one-out likelihood at one grid bandwidth, direct formula
    h = kde.cv_bandwidths_[5]
    K = kk.Gaussian(h)(X, X)
    np.fill_diagonal(K, 0.0)
    loo = np.log(K.sum(0) / 599) - kk.Gaussian(h).log_integral(2)
    assert kde.cv_scores_[5] == pytest.approx(loo.mean(), rel=1e-10)
    assert kde.bandwidth_ == kde.cv_bandwidths_[np.argmax(kde.cv_scores_)]
    good = kde.score(held)
    for bad in (kde.bandwidth_ / 10, kde.bandwidth_ * 10):
        assert good > KernelDensity(bandwidth=bad).fit(X).score(held) + 100
    # for this bimodal data the LOO choice is well below Scott's (which over-smooths)
    assert kde.bandwidth_ < bandwidth_scott(X)


def test_sample_moments_and_distribution():
    rng = np.random.default_rng(11)
    X = rng.standard_normal((400, 2)) * [1.0, 3.0] + [5.0, -1.0]
    kde = KernelDensity(bandwidth=0.7).fit(X)
    S = kde.sample(40_000, random_state=0)
    assert S.shape == (40_000, 2)
    assert np.all(np.abs(S.mean(0) - X.mean(0)) < 0.05 * np.array([1.0, 3.0]))
    np.testing.assert_allclose(S.var(0), X.var(0) + 0.49, rtol=0.04)
    # 1-D: KS test against the exact mixture CDF
    x = rng.standard_normal(50)
    k1 = KernelDensity(kernel="laplace", bandwidth=0.4).fit(x[:, None])
    s = k1.sample(5000, random_state=1)[:, 0]
    cdf = lambda t: np.mean(stats.laplace.cdf((np.asarray(t)[:, None] - x[None, :]) / 0.4), axis=1)
    assert stats.kstest(s, cdf).pvalue > 0.01
    np.testing.assert_array_equal(k1.sample(5, random_state=3), k1.sample(5, random_state=3))


def test_kernel_object_carries_its_bandwidth():
    """One rule: a Kernel object's bandwidth is its own; a name takes a number or a rule (default Scott's)."""
    rng = np.random.default_rng(12)
    X, Y = rng.standard_normal((80, 2)), rng.standard_normal((9, 2))
    by_object = KernelDensity(kernel=kk.Laplace(0.7)).fit(X)
    by_name = KernelDensity(kernel="laplace", bandwidth=0.7).fit(X)
    np.testing.assert_allclose(by_object.score_samples(Y), by_name.score_samples(Y), rtol=1e-12)
    assert by_object.bandwidth_ == by_name.bandwidth_ == 0.7
    assert KernelDensity(kernel="laplace").fit(X).bandwidth_ == bandwidth_scott(X)  # a name alone: Scott's rule
    assert KernelDensity().fit(X).bandwidth_ == KernelDensity(bandwidth="scott").fit(X).bandwidth_
    # sampling uses the object's own scale too
    S = KernelDensity(kernel=kk.Gaussian(0.01)).fit(X).sample(200, random_state=0)
    assert np.min(np.linalg.norm(S[:, None, :] - X[None, :, :], axis=2), axis=1).max() < 0.1
    for bandwidth in (0.5, 1.0, "scott", "cv"):
        with pytest.raises(kk.InvalidValueError, match=r"'bandwidth' parameter of KernelDensity must be None when "
                                                       r"'kernel' is a Kernel object.*Got .*pass the kernel by name"):
            KernelDensity(kernel=kk.Gaussian(1.0), bandwidth=bandwidth).fit(X)


@pytest.mark.parametrize("kwargs, exc, match", [
    (dict(bandwidth=[1.0]), TypeError, "'bandwidth' parameter of KernelDensity must be a finite float > 0, one of "
                                       "{'scott', 'silverman', 'cv', 'lscv', 'isj', 'plugin'} or None. Got \\[1.0\\]"),
    (dict(bandwidth=True), TypeError, "'bandwidth'.*Got True"),
    (dict(kernel=3), TypeError, "'kernel' parameter of KernelDensity must be a Kernel object or one of"),
    (dict(cv_grid=2.5), TypeError, "'cv_grid' parameter of KernelDensity must be an int >= 2. Got 2.5"),
    (dict(cv_grid=1), ValueError, "'cv_grid' parameter of KernelDensity must be an int >= 2. Got 1"),
    (dict(cv_range="wide"), TypeError, "'cv_range'.*two floats 0 < low < high. Got 'wide'"),
    (dict(cv_range=(0.0, 1.0)), ValueError, "'cv_range'.*two floats 0 < low < high. Got \\(0.0, 1.0\\)"),
    (dict(cv_max_eval="all"), TypeError, "'cv_max_eval' parameter of KernelDensity must be an int >= 1 or None"),
])
def test_wrong_type_is_type_error_wrong_value_is_value_error(kwargs, exc, match):
    X = np.random.default_rng(0).standard_normal((10, 2))
    with pytest.raises(exc, match=match) as info:
        KernelDensity(**kwargs).fit(X)
    assert isinstance(info.value, kk.InvalidTypeError if exc is TypeError else kk.InvalidValueError)


def test_sample_random_state_types():
    kde = KernelDensity(bandwidth=0.5).fit(np.random.default_rng(0).standard_normal((20, 2)))
    a = kde.sample(4, random_state=np.random.SeedSequence(5))
    np.testing.assert_array_equal(a, kde.sample(4, random_state=5))
    assert kde.sample(2, random_state=np.random.default_rng(1)).shape == (2, 2)
    assert kde.sample(2, random_state=np.random.RandomState(1)).shape == (2, 2)
    with pytest.raises(TypeError, match="'random_state' parameter of KernelDensity.sample"):
        kde.sample(2, random_state="seven")
    with pytest.raises(ValueError, match="'random_state' parameter of KernelDensity.sample must be an int >= 0"):
        kde.sample(2, random_state=-1)


@pytest.mark.parametrize("kwargs, fit_args, match", [
    (dict(bandwidth=-1), {}, "'bandwidth' parameter of KernelDensity must be a finite float > 0"),
    (dict(bandwidth="wide"), {}, "'bandwidth'.*Got 'wide'"),
    (dict(kernel="nope"), {}, "'kernel' parameter"),
    (dict(kernel=kk.Linear()), {}, "'kernel' parameter of KernelDensity must be a positive"),
    (dict(kernel="polynomial"), {}, "'kernel' parameter of KernelDensity must be a Kernel object or one of"),
    (dict(bandwidth="cv", cv_range=(2.0, 1.0)), {}, "'cv_range'"),
    (dict(), dict(sample_weight=-np.ones(10)), "'sample_weight'.*non-negative"),
    (dict(), dict(sample_weight=np.ones(3)), "'sample_weight'.*shape"),
])
def test_bad_input(kwargs, fit_args, match):
    X = np.random.default_rng(0).standard_normal((10, 2))
    with pytest.raises(ValueError, match=match):
        KernelDensity(**kwargs).fit(X, **fit_args)


def test_bad_input_scoring():
    X = np.random.default_rng(0).standard_normal((10, 2))
    kde = KernelDensity().fit(X)
    with pytest.raises(ValueError, match="expecting 2 features"):
        kde.score_samples(np.zeros((3, 3)))
    with pytest.raises(ValueError, match="NaN"):
        kde.score_samples([[np.nan, 0.0]])
    with pytest.raises(TypeError, match="n_samples"):
        kde.sample(2.5)
    with pytest.raises(ValueError, match="integrable"):
        KernelDensity(kernel=kk.IMQ(1.0, beta=0.5)).fit(X)


def test_import_kernelkit_does_not_import_sklearn():
    import subprocess
    import sys
    code = "import sys, kernelkit; assert 'sklearn' not in sys.modules; kernelkit.KernelDensity"
    subprocess.run([sys.executable, "-c", code], check=True)


from sklearn.utils.estimator_checks import parametrize_with_checks  # noqa: E402


@parametrize_with_checks([KernelDensity()])
def test_sklearn_estimator_checks(estimator, check):
    check(estimator)


# --- cv at large n: evaluation points subsampled, sources all kept --------------
def test_cv_max_eval_exact_below_and_estimate_above():
    rng = np.random.default_rng(7)
    X = rng.standard_normal((3000, 2))
    full = KernelDensity(bandwidth="cv", cv_grid=8, cv_max_eval=None).fit(X)
    same = KernelDensity(bandwidth="cv", cv_grid=8, cv_max_eval=3000).fit(X)
    np.testing.assert_array_equal(full.cv_scores_, same.cv_scores_)
    assert full.cv_n_eval_ == same.cv_n_eval_ == 3000
    sub = KernelDensity(bandwidth="cv", cv_grid=8, cv_max_eval=1000).fit(X)
    assert sub.cv_n_eval_ == 1000
    np.testing.assert_array_equal(sub.cv_bandwidths_, full.cv_bandwidths_)
    # an unbiased estimate of the same mean: within a few standard errors of the full criterion
    # (std of log p over points ~ 1 nat, so 1000 points give ~0.03; the finite-population factor shrinks it)
    finite = np.isfinite(full.cv_scores_)
    assert finite.sum() >= 3
    np.testing.assert_array_equal(finite, np.isfinite(sub.cv_scores_))
    assert np.max(np.abs(sub.cv_scores_[finite] - full.cv_scores_[finite])) < 0.1
    # the chosen bandwidth is a neighbour on the grid at worst
    i_full = int(np.argmax(full.cv_scores_))
    i_sub = int(np.argmax(sub.cv_scores_))
    assert abs(i_full - i_sub) <= 1


def test_cv_max_eval_checked():
    with pytest.raises(ValueError, match="'cv_max_eval' parameter of KernelDensity must be an int >= 1"):
        KernelDensity(bandwidth="cv", cv_max_eval=0).fit(np.random.default_rng(0).standard_normal((50, 2)))
