"""ApproximateKDE: unbiasedness, the per-query error promise, engine path vs reference, dtypes, budget, errors."""

import numpy as np
import pytest

import kernelkit as kk
from kernelkit.density import ApproximateKDE
from kernelkit.exceptions import InvalidTypeError, InvalidValueError, NotFittedError


def _exact(X, Y, h, kernel="gaussian"):
    return kk.KernelDensity(kernel=kernel, bandwidth=h).fit(X).score_samples(Y).astype(np.float64)


@pytest.mark.parametrize("kernel", ["gaussian", "laplace"])
def test_unbiased_for_a_fixed_sample_size(kernel):
    # one round of 32 draws (batch_size == max_samples: no adaptive stopping), a poor candidate set
    # (4 neighbours from 1 probed cell of 30): the mean of f_hat over 300 seeds must match f within
    # 4.5 standard errors of that mean, at every one of 12 queries
    rng = np.random.default_rng(0)
    X, Y = rng.standard_normal((3000, 3)), rng.standard_normal((12, 3)) * 1.2
    h = 0.4
    f = np.exp(_exact(X, Y, h, kernel))
    est = np.array([np.exp(ApproximateKDE(kernel=kernel, bandwidth=h, n_neighbors=4, n_cells=30, n_probe=1,
                                          batch_size=32, max_samples=32, rtol=0.01, random_state=s)
                           .fit(X).estimate(Y).log_density) for s in range(300)])
    mean, se = est.mean(axis=0), est.std(axis=0, ddof=1) / np.sqrt(est.shape[0])
    assert np.all(se > 0)  # the sample part is really random
    assert np.all(np.abs(mean - f) <= 4.5 * se), (mean / f - 1, se / f)


def test_bernstein_promise_holds_on_many_queries():
    # the returned bound holds on >= 1 - delta of 400 queries (fixed seeds), and it is not vacuous
    rng = np.random.default_rng(1)
    X, Y = rng.standard_normal((20000, 2)), rng.standard_normal((400, 2))
    model = ApproximateKDE(rtol=0.2, delta=0.05, n_neighbors=32, random_state=2).fit(X)
    est = model.estimate(Y)
    exact = _exact(X, Y, model.bandwidth_)
    err = np.abs(np.expm1(est.log_density - exact)) / np.exp(est.log_density - exact)  # |f_hat - f| / f_hat
    assert np.mean(err <= est.rel_error) >= 0.95
    assert np.median(est.rel_error) < 0.5 and est.converged.mean() > 0.3
    assert np.all(est.rel_error[est.converged] <= 0.2)


def test_clt_promise_at_a_wide_bandwidth():
    # CLT bound (asymptotic): at fixed seeds, on 500 queries in d = 8 with a bandwidth where many points
    # matter, the error is within rtol on >= 1 - delta - 0.02 of the converged queries (stated margin 0.02)
    rng = np.random.default_rng(3)
    X, Y = rng.standard_normal((20000, 8)), rng.standard_normal((500, 8))
    model = ApproximateKDE(bandwidth=1.0, bound="clt", rtol=0.1, delta=0.05, random_state=4).fit(X)
    est = model.estimate(Y)
    err = np.abs(np.expm1(est.log_density - _exact(X, Y, 1.0)))
    assert est.converged.mean() > 0.95
    assert np.mean(err[est.converged] <= 0.1 * np.exp(est.log_density - _exact(X, Y, 1.0))[est.converged]
                   * 1.0001) >= 0.93
    assert err.mean() < 0.05


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("kernel", ["gaussian", "laplace"])
def test_engine_path_matches_the_direct_reference(dtype, kernel):
    rng = np.random.default_rng(5)
    X, Y = rng.standard_normal((1237, 5)).astype(dtype), rng.standard_normal((77, 5)).astype(dtype)
    model = ApproximateKDE(kernel=kernel, bound="clt", n_neighbors=7, n_probe=2, batch_size=33, max_samples=500,
                           random_state=6).fit(X)
    fast = model.estimate(Y)
    model._force_direct = True
    ref = model.estimate(Y)
    assert fast.log_density.dtype == dtype
    tol = 1e-10 if dtype == np.float64 else 1e-4
    np.testing.assert_allclose(fast.log_density, ref.log_density, rtol=tol, atol=tol)
    np.testing.assert_allclose(fast.rel_error, ref.rel_error, rtol=1e3 * tol, atol=tol)
    np.testing.assert_array_equal(fast.n_samples, ref.n_samples)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_tiny_memory_budget_same_result(dtype):
    rng = np.random.default_rng(7)
    X, Y = rng.standard_normal((2001, 4)).astype(dtype), rng.standard_normal((53, 4)).astype(dtype)
    kw = dict(bound="clt", n_neighbors=9, batch_size=40, max_samples=640, random_state=8)
    a = ApproximateKDE(**kw).fit(X).estimate(Y)
    small = ApproximateKDE(memory="4KB", **kw).fit(X)
    b = small.estimate(Y)
    small._force_direct = True
    c = small.estimate(Y)
    tol = 1e-10 if dtype == np.float64 else 1e-4
    np.testing.assert_allclose(a.log_density, b.log_density, rtol=tol, atol=tol)
    np.testing.assert_allclose(a.log_density, c.log_density, rtol=tol, atol=tol)


def test_exact_when_the_candidates_are_everything():
    rng = np.random.default_rng(9)
    X, Y = rng.standard_normal((150, 3)), rng.standard_normal((20, 3))
    est = ApproximateKDE(bandwidth=0.5, n_neighbors=150, n_cells=1).fit(X).estimate(Y)
    np.testing.assert_allclose(est.log_density, _exact(X, Y, 0.5), rtol=1e-12, atol=1e-12)
    assert np.all(est.rel_error == 0) and np.all(est.n_samples == 0) and np.all(est.converged)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_no_underflow_in_dimension_32(dtype):
    # every kernel value underflows float64 (nearest |y - x|^2 / (2 h^2) ~ 30 / 0.02 > 745): the sum of
    # the kernel values is below the smallest float64, yet the log density stays finite and within the
    # bound of the returned estimate on >= 95% of queries
    rng = np.random.default_rng(10)
    X, Y = rng.standard_normal((4000, 32)).astype(dtype), rng.standard_normal((100, 32)).astype(dtype)
    h = 0.1
    model = ApproximateKDE(bandwidth=h, n_neighbors=16, random_state=11).fit(X)
    est = model.estimate(Y)
    exact = _exact(X, Y, h)
    log_sum = exact + (np.log(4000) + 16 * np.log(2 * np.pi) + 32 * np.log(h))  # log sum_i k(x_i, y)
    assert np.all(log_sum < np.log(np.finfo(np.float64).tiny))
    assert np.all(np.isfinite(est.log_density))
    err = np.abs(np.expm1(est.log_density.astype(np.float64) - exact))
    assert np.mean(err <= est.rel_error * np.exp(est.log_density - exact) * 1.001 + 1e-5) >= 0.95


def test_score_samples_warns_when_the_cap_is_reached():
    rng = np.random.default_rng(12)
    X, Y = rng.standard_normal((3000, 6)), rng.standard_normal((10, 6))
    model = ApproximateKDE(rtol=0.01, n_neighbors=2, batch_size=8, max_samples=16, random_state=0).fit(X)
    with pytest.warns(RuntimeWarning, match="max_samples=16"):
        out = model.score_samples(Y)
    assert out.shape == (10,) and np.all(~model.estimate(Y).converged)


@pytest.mark.parametrize("name, value, match", [
    ("rtol", 0.0, "'rtol'"), ("rtol", 1.0, "'rtol'"), ("rtol", -0.2, "'rtol'"),
    ("delta", 0.0, "'delta'"), ("delta", 1.5, "'delta'"), ("bound", "hoeffding", "'bound'"),
    ("kernel", "matern", "'kernel'"), ("n_neighbors", 0, "'n_neighbors'"), ("bandwidth", -1.0, "'bandwidth'"),
    ("batch_size", 1, "'batch_size'"), ("n_cells", 0, "'n_cells'"),
])
def test_bad_parameters(name, value, match):
    X = np.random.default_rng(0).standard_normal((50, 2))
    with pytest.raises(InvalidValueError, match=match) as info:
        ApproximateKDE(**{name: value}).fit(X)
    assert "ApproximateKDE" in str(info.value)


def test_bad_types_and_not_fitted():
    X = np.random.default_rng(0).standard_normal((50, 2))
    with pytest.raises(InvalidTypeError, match="'rtol'"):
        ApproximateKDE(rtol="small").fit(X)
    with pytest.raises(NotFittedError, match="fit"):
        ApproximateKDE().estimate(X)
    model = ApproximateKDE().fit(X)
    with pytest.raises(ValueError, match="features"):
        model.estimate(np.zeros((3, 5)))


def test_query_parameters_change_without_refit_and_fit_parameters_do_not():
    rng = np.random.default_rng(13)
    X, Y = rng.standard_normal((3000, 3)), rng.standard_normal((40, 3))
    model = ApproximateKDE(bound="clt", rtol=0.3, random_state=1).fit(X)
    loose = model.estimate(Y)
    tight = model.set_params(rtol=0.05).estimate(Y)
    assert np.all(tight.n_samples >= loose.n_samples) and tight.n_samples.sum() > loose.n_samples.sum()
    with pytest.raises(InvalidValueError, match="'bandwidth'.*fit again"):
        model.set_params(bandwidth=0.3).estimate(Y)


def test_kernel_density_approximate_uses_its_data_kernel_and_bandwidth():
    rng = np.random.default_rng(21)
    X = rng.standard_normal((3000, 3))
    Y = rng.standard_normal((50, 3))
    kde = kk.KernelDensity(kernel="epanechnikov", bandwidth=1.2).fit(X)
    approx = kde.approximate(rtol=0.2, delta=0.1, random_state=0)
    assert approx.bandwidth_ == pytest.approx(1.2) and approx.kernel == "epanechnikov"
    assert approx.rtol == 0.2 and approx.delta == 0.1
    est = approx.estimate(Y)
    exact = kde.score_samples(Y)
    ok = np.isfinite(exact)
    assert np.median(np.abs(np.expm1(est.log_density[ok] - exact[ok]))) < 0.2
    with pytest.raises(ValueError, match="sample_weight"):
        kk.KernelDensity(bandwidth=1.0).fit(X, sample_weight=rng.random(3000)).approximate()
    with pytest.raises(TypeError, match="kernel"):
        kk.KernelDensity(kernel=kk.Gaussian(1.0)).fit(X).approximate()
