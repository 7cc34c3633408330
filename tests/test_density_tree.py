"""ApproximateKDE(method="tree"): the tree, the stratified estimate against a NumPy reference,
exactness when every leaf is opened, unbiasedness, the error estimate's promise, far queries, errors."""

import math

import numpy as np
import pytest
from scipy.special import logsumexp

import kernelkit as kk
from kernelkit.density import ApproximateKDE
from kernelkit.density._tree import build_tree, draw_pairs, tree_available, tree_log_sums
from kernelkit.exceptions import InvalidValueError

pytestmark = pytest.mark.skipif(not tree_available(), reason="the compiled tree query was not built")


def _exact(X, Y, h):
    return kk.KernelDensity(bandwidth=h).fit(X).score_samples(Y).astype(np.float64)


def _log_sums_reference(X, Y):
    """log sum_i exp(-|y - x_i|^2 / 2), direct (float64)."""
    D2 = ((Y[:, None, :] - X[None, :, :]) ** 2).sum(-1)
    return logsumexp(-0.5 * D2, axis=1)


@pytest.mark.parametrize("n, leaf", [(1, 4), (7, 8), (1037, 5), (2000, 64)])
def test_tree_nodes_partition_and_bound_their_points(n, leaf):
    X = np.random.default_rng(n).standard_normal((n, 3)) * [1.0, 3.0, 0.2]
    T = build_tree(X, leaf)
    assert sorted(T.order) == list(range(n))
    P = T.XT.T
    np.testing.assert_array_equal(P, X[T.order])
    for v in range(T.n_nodes):
        pts = P[T.start[v]:T.stop[v]]
        assert len(pts) >= 1
        np.testing.assert_allclose(T.mean[v], pts.mean(axis=0), atol=1e-12)
        assert np.all(pts >= T.box[v, 0]) and np.all(pts <= T.box[v, 1])
        assert np.all(np.linalg.norm(pts - T.mean[v], axis=1) <= T.radius[v])
        if T.left[v] < 0:
            assert len(pts) <= leaf
        else:
            a, b = T.left[v], T.left[v] + 1
            assert T.start[a] == T.start[v] and T.stop[a] == T.start[b] and T.stop[b] == T.stop[v]


@pytest.mark.parametrize("leaf", [3, 16])
def test_stratified_pass_matches_the_numpy_reference(leaf):
    # nothing opened (rtol huge, no upper-bound rule): S_hat = sum_l c_l (g1 + g2) / 2 and
    # V = sum_l c_l^2 (g1 - g2)^2 / 4 over the same draws, to float32 accuracy
    rng = np.random.default_rng(0)
    X, Y = rng.standard_normal((1501, 4)), rng.standard_normal((37, 4)) * 1.3
    T = build_tree(X, leaf)
    draws = draw_pairs(T, np.random.default_rng(1))
    SX, cnt = draws[0].astype(np.float64), draws[1]
    L = cnt.size
    log_sum, rel, n_exact, _, fallback, n_eff = tree_log_sums(T, draws, Y, 1e9, 1.96, math.inf, 2)
    D2 = ((Y[:, None, :] - SX.T[None]) ** 2).sum(-1)
    g = np.exp(-0.5 * D2)
    g1, g2 = g[:, :L], g[:, L:]
    S = (0.5 * cnt * (g1 + g2)).sum(1)
    V = (0.25 * cnt ** 2 * (g1 - g2) ** 2).sum(1)
    np.testing.assert_allclose(log_sum, np.log(S), atol=2e-5)
    np.testing.assert_allclose(rel, 1.96 * np.sqrt(V) / S, rtol=1e-3, atol=1e-6)
    terms = 0.5 * np.hstack([cnt * g1, cnt * g2])
    np.testing.assert_allclose(n_eff, terms.sum(1) ** 2 / (terms ** 2).sum(1), rtol=1e-4)
    assert np.all(n_exact == 0) and not fallback.any()


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("leaf_size", [1, 6, "auto"])
def test_exact_when_every_node_is_opened(dtype, leaf_size):
    rng = np.random.default_rng(2)
    X, Y = rng.standard_normal((997, 3)).astype(dtype), rng.standard_normal((41, 3)).astype(dtype)
    model = ApproximateKDE(method="tree", bandwidth=0.3, leaf_size=leaf_size, exact_above=0.0,
                           random_state=0).fit(X)
    est = model.estimate(Y)
    exact = _exact(X.astype(np.float64), Y.astype(np.float64), 0.3)
    np.testing.assert_allclose(est.log_density, exact, rtol=0, atol=1e-5 if dtype == np.float32 else 1e-10)
    assert est.log_density.dtype == dtype
    assert np.all(est.rel_error == 0) and np.all(est.n_exact == 997) and est.converged.all()


def test_unbiased_over_the_draws():
    # the stratified estimate (nothing opened) averaged over 400 seeds of the draws matches the exact sum
    # within 4.5 standard errors at each of 10 queries
    rng = np.random.default_rng(3)
    X, Y = rng.standard_normal((2000, 2)), rng.standard_normal((10, 2)) * 1.5
    T = build_tree(X, 20)
    exact = np.exp(_log_sums_reference(X, Y))
    est = np.array([np.exp(tree_log_sums(T, draw_pairs(T, np.random.default_rng(s)), Y, 1e9, 1.96, math.inf, 1)[0])
                    for s in range(400)])
    mean, se = est.mean(axis=0), est.std(axis=0, ddof=1) / np.sqrt(est.shape[0])
    assert np.all(se > 0)
    assert np.all(np.abs(mean - exact) <= 4.5 * se), (mean / exact - 1, se / exact)


def test_error_estimate_holds_on_many_queries():
    # CLT error estimate: at fixed seeds, on 600 queries from a 3-component mixture in d = 5, the error
    # is within the returned bound on >= 1 - delta - 0.02 of the queries, every query converges, and
    # the mean error is well below rtol
    rng = np.random.default_rng(4)
    centres = rng.standard_normal((3, 5)) * 3
    X = centres[rng.integers(0, 3, 30000)] + rng.standard_normal((30000, 5))
    Y = centres[rng.integers(0, 3, 600)] + rng.standard_normal((600, 5))
    model = ApproximateKDE(method="tree", rtol=0.2, delta=0.05, random_state=5).fit(X)
    est = model.estimate(Y)
    exact = _exact(X, Y, model.bandwidth_)
    err = np.abs(np.expm1(est.log_density - exact))                       # |f_hat / f - 1|
    within = err <= est.rel_error * np.exp(est.log_density - exact) * (1 + 1e-9)
    assert est.converged.all() and np.all(est.rel_error <= 0.2)
    assert within.mean() >= 0.93, within.mean()
    assert err.mean() < 0.05, err.mean()
    assert np.all(est.n_samples == 2 * model.n_cells_)


@pytest.mark.filterwarnings("ignore:ApproximateKDE.method='tree'.*draws make the estimate")
def test_smaller_rtol_opens_more_and_is_closer():
    rng = np.random.default_rng(6)
    X, Y = rng.standard_normal((20000, 3)), rng.standard_normal((300, 3))
    model = ApproximateKDE(method="tree", bandwidth=0.2, rtol=0.3, random_state=0).fit(X)
    exact = _exact(X, Y, 0.2)
    loose = model.estimate(Y)
    tight = model.set_params(rtol=0.02).estimate(Y)
    assert tight.n_exact.sum() > loose.n_exact.sum()
    assert np.all(tight.rel_error <= 0.02)
    assert np.abs(np.expm1(tight.log_density - exact)).mean() < np.abs(np.expm1(loose.log_density - exact)).mean()


def test_far_queries_do_not_underflow_and_the_overflow_case_is_exact():
    rng = np.random.default_rng(7)
    X = np.vstack([rng.standard_normal((3000, 3)), [[40.0, 0.0, 0.0]]])
    h = 0.25
    # a query on the lone far point: the nearest draw is ~37 / h away, its exact leaf would overflow
    # the ratio, so the query takes the exact log-sum-exp path
    Y = np.array([[40.0, 0.0, 0.0], [0.1, 0.2, -0.1], [20.0, 20.0, 20.0]])
    model = ApproximateKDE(method="tree", bandwidth=h, random_state=0).fit(X)
    est = model.estimate(Y)
    exact = _exact(X, Y, h)
    assert np.all(np.isfinite(est.log_density)) and exact[2] < -5000
    np.testing.assert_allclose(est.log_density[0], exact[0], rtol=0, atol=1e-9)
    assert est.n_exact[0] == X.shape[0]
    # far from everything: the nearest leaf (opened by the upper-bound rule) makes the sum
    assert abs(math.expm1(est.log_density[2] - exact[2])) < 1e-6
    assert abs(math.expm1(est.log_density[1] - exact[1])) < 0.2


@pytest.mark.filterwarnings("ignore:ApproximateKDE.method='tree'.*draws make the estimate")
def test_deterministic_and_independent_of_threads():
    rng = np.random.default_rng(8)
    X, Y = rng.standard_normal((5000, 4)), rng.standard_normal((200, 4))
    a = ApproximateKDE(method="tree", rtol=0.1, random_state=3, threads=1).fit(X).estimate(Y)
    b = ApproximateKDE(method="tree", rtol=0.1, random_state=3, threads=2).fit(X).estimate(Y)
    c = ApproximateKDE(method="tree", rtol=0.1, random_state=4, threads=2).fit(X).estimate(Y)
    np.testing.assert_array_equal(a.log_density, b.log_density)
    np.testing.assert_array_equal(a.rel_error, b.rel_error)
    assert not np.array_equal(a.log_density, c.log_density)


@pytest.mark.parametrize("params, match", [
    (dict(method="tree", kernel="laplace"), "'kernel'.*'gaussian' with method='tree'"),
    (dict(method="tree", bound="bernstein"), "'bound'.*method='tree'"),
    (dict(method="grid"), "'method'"),
    (dict(method="tree", leaf_size=0), "'leaf_size'"),
    (dict(method="tree", exact_above=-1.0), "'exact_above'"),
    (dict(method="tree", rtol=1.5), "'rtol'"),
])
def test_bad_parameters(params, match):
    X = np.random.default_rng(0).standard_normal((50, 2))
    with pytest.raises(InvalidValueError, match=match):
        ApproximateKDE(**params).fit(X)


def test_method_and_leaf_size_need_a_refit():
    X = np.random.default_rng(0).standard_normal((500, 2))
    model = ApproximateKDE(method="tree", random_state=0).fit(X)
    with pytest.raises(InvalidValueError, match="'method'.*fit again"):
        model.set_params(method="sample").estimate(X[:5])
    model.set_params(method="tree", leaf_size=4)
    with pytest.raises(InvalidValueError, match="'leaf_size'.*fit again"):
        model.estimate(X[:5])


def test_kernel_density_approximate_with_the_tree():
    rng = np.random.default_rng(9)
    X, Y = rng.standard_normal((4000, 2)), rng.standard_normal((60, 2))
    kde = kk.KernelDensity(bandwidth=0.3).fit(X)
    approx = kde.approximate(rtol=0.2, method="tree", random_state=0)
    assert approx.method == "tree" and approx.bandwidth_ == pytest.approx(0.3)
    err = np.abs(np.expm1(approx.score_samples(Y) - kde.score_samples(Y)))
    assert err.mean() < 0.05
    with pytest.raises(InvalidValueError, match="'kernel'"):
        kk.KernelDensity(kernel="epanechnikov", bandwidth=0.3).fit(X).approximate(method="tree")


def test_opened_leaves_are_summed_exactly():
    # a tight cluster far from the bulk: at queries beside it every other draw is 0, so once its leaves
    # are opened (fewer than n / 16 points: no hand-back) the estimate is their exact sum
    rng = np.random.default_rng(10)
    X = np.vstack([rng.standard_normal((3150, 3)), [30.0, 0.0, 0.0] + 0.1 * rng.standard_normal((50, 3))])
    Y = [30.0, 0.0, 0.0] + 0.1 * rng.standard_normal((5, 3))
    model = ApproximateKDE(method="tree", bandwidth=0.5, leaf_size=100, rtol=0.01, random_state=0).fit(X)
    est = model.estimate(Y)
    assert np.all(est.n_exact > 0) and np.all(est.n_exact < X.shape[0] / 16)
    np.testing.assert_allclose(est.log_density, _exact(X, Y, 0.5), rtol=0, atol=1e-10)
    assert np.all(est.rel_error == 0)


def test_warns_where_a_few_draws_make_the_estimate():
    # N(0, I_4), n = 5000, Scott's bandwidth: about a quarter of the queries have a draw effective
    # number below 10 (measured); summing everything exactly (exact_above=0) silences the warning
    rng = np.random.default_rng(8)
    X, Y = rng.standard_normal((5000, 4)), rng.standard_normal((200, 4))
    model = ApproximateKDE(method="tree", rtol=0.1, random_state=3).fit(X)
    with pytest.warns(RuntimeWarning, match="fewer than 10 draws make the estimate") as record:
        est = model.estimate(Y)
    few = int(np.sum((est.draw_n_eff < 10) & (est.rel_error > 0)))
    assert f"on {few} of 200 queries" in str(record[0].message) and few > 10
    assert np.all((est.draw_n_eff >= 1) & (est.draw_n_eff <= 2 * model.n_cells_ + 1e-6))
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model.set_params(exact_above=0.0).estimate(Y)
    assert ApproximateKDE(random_state=0).fit(X).estimate(Y[:5]).draw_n_eff is None
