"""The parametric-bootstrap null of the KSD tests (kernelkit.stats.ksd_parametric_null)."""

import math

import numpy as np
import pytest
from scipy.stats import binom

from kernelkit.stats import ParametricNull, ksd, ksd_parametric_null, ksd_test, ksdagg_test


def _score(z):
    return -z


@pytest.mark.parametrize("unbiased", [True, False])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_statistics_equal_ksd_of_each_sample(unbiased, dtype):
    rng = np.random.default_rng(1)
    Z = rng.standard_normal((7, 23, 3)).astype(dtype)
    bws = np.array([0.3, 1.0, 2.5])
    null = ksd_parametric_null(Z, _score, bandwidths=bws, unbiased=unbiased)
    assert null.statistics.shape == (3, 7) and null.n == 23 and null.kernel == "imq"
    ref = np.array([[ksd(Z[b], -Z[b], bandwidth=lam, unbiased=unbiased) for b in range(7)] for lam in bws])
    np.testing.assert_allclose(null.statistics, ref, rtol=1e-5 if dtype == np.float32 else 1e-11,
                               atol=1e-7 if dtype == np.float32 else 1e-13)


def test_generator_and_score_arrays_give_the_same_null():
    rng = np.random.default_rng(2)
    Z = rng.standard_normal((5, 17, 2))
    a = ksd_parametric_null(Z, _score, "gaussian", bandwidths=[0.5, 1.5])
    b = ksd_parametric_null((z for z in Z), (-z for z in Z), "gaussian", bandwidths=[0.5, 1.5])
    np.testing.assert_array_equal(a.statistics, b.statistics)
    # tiny memory budget: blocked row strips, same values
    c = ksd_parametric_null(Z, -Z, "gaussian", bandwidths=[0.5, 1.5], memory=4096)
    np.testing.assert_allclose(a.statistics, c.statistics, rtol=1e-12, atol=1e-14)


def test_ksd_test_pvalue_is_the_rank_among_the_model_draws():
    rng = np.random.default_rng(3)
    null = ksd_parametric_null(rng.standard_normal((99, 40, 2)), _score, bandwidths=1.0)
    X = rng.standard_normal((40, 2)) + 0.4
    res = ksd_test(X, _score, null=null)
    stat = ksd(X, -X, bandwidth=1.0)
    assert res.statistic == pytest.approx(stat, rel=1e-12)
    assert res.pvalue == pytest.approx((1 + np.sum(null.statistics[0] >= stat)) / 100)
    assert res.test == "KSD, parametric bootstrap" and res.details["bandwidth"] == 1.0
    np.testing.assert_array_equal(res.null, null.statistics[0])


def test_ksd_test_with_a_parametric_null_is_exact():
    """Under H0 the observed sample is one more model draw: P(p <= 1/20) = 1/20 exactly for B = 19."""
    rng = np.random.default_rng(4)
    trials, B = 300, 19
    Z = rng.standard_normal((trials, B + 1, 25, 1))
    rejections = 0
    for t in range(trials):
        null = ksd_parametric_null(Z[t, :B], _score, bandwidths=0.8)
        rejections += ksd_test(Z[t, B], _score, null=null, alpha=0.05).reject
    lo, hi = binom.ppf(0.005, trials, 0.05), binom.ppf(0.995, trials, 0.05)
    assert lo <= rejections <= hi, (rejections, lo, hi)


def _ksdagg_parametric_reference(stats, M1, M2, w, alpha, B3):
    """The paper's Algorithm 1 with a parametric bootstrap, written as loops."""
    N, B1 = M1.shape
    M1 = np.sort(M1, axis=1)
    lo, hi = 0.0, min(1.0 / wl for wl in w)
    for _ in range(B3):
        u = (lo + hi) / 2
        q = [M1[l, min(max(int(math.ceil(B1 * (1 - u * w[l]))) - 1, 0), B1 - 1)] for l in range(N)]
        hits = 0
        for b in range(M2.shape[1]):
            hits += any(M2[l, b] > q[l] for l in range(N))
        if hits / M2.shape[1] <= alpha:
            lo = u
        else:
            hi = u
    q = [M1[l, min(max(int(math.ceil(B1 * (1 - lo * w[l]))) - 1, 0), B1 - 1)] for l in range(N)]
    return lo, np.array(q), any(stats[l] > q[l] for l in range(N))


@pytest.mark.parametrize("shift", [0.0, 0.35])
def test_ksdagg_parametric_matches_the_loop_reference(shift):
    rng = np.random.default_rng(5)
    bws = 2.0 ** np.arange(-3, 2)
    null = ksd_parametric_null(rng.standard_normal((90, 30, 2)), _score, bandwidths=bws)
    X = rng.standard_normal((30, 2)) + shift
    w = np.array([1.0, 2.0, 3.0, 2.0, 1.0])
    res = ksdagg_test(X, _score, null=null, weights=w, n_bootstrap=(50, 40), n_bisection=30)
    stats = np.array([ksd(X, -X, bandwidth=lam) for lam in bws])
    u, q, reject = _ksdagg_parametric_reference(stats, null.statistics[:, :50], null.statistics[:, 50:90],
                                                w / w.sum(), 0.05, 30)
    np.testing.assert_allclose(res.details["statistics"], stats, rtol=1e-10, atol=1e-14)
    assert res.details["u"] == pytest.approx(u, abs=1e-15)
    np.testing.assert_array_equal(res.details["quantiles"], q)
    assert res.reject == reject and res.test == "KSDAgg, parametric bootstrap"
    np.testing.assert_array_equal(res.details["bandwidths"], bws)


def test_ksdagg_parametric_rejects_a_shifted_sample():
    rng = np.random.default_rng(6)
    bws = 2.0 ** np.arange(-4, 2)
    null = ksd_parametric_null(rng.standard_normal((400, 60, 2)), _score, bandwidths=bws)
    assert ksdagg_test(rng.standard_normal((60, 2)) + 0.6, _score, null=null, n_bootstrap=(200, 200)).reject


def test_subset_and_repr():
    rng = np.random.default_rng(7)
    null = ksd_parametric_null(rng.standard_normal((6, 10, 2)), _score, bandwidths=[0.5, 1.0, 2.0])
    sub = null.subset(bandwidths=2, draws=slice(0, 4))
    assert isinstance(sub, ParametricNull) and sub.statistics.shape == (1, 4)
    np.testing.assert_array_equal(sub.statistics[0], null.statistics[2, :4])
    assert sub.bandwidths.tolist() == [2.0]
    assert "3 bandwidth(s), 6 model samples of n=10" in repr(null)


def test_bad_input():
    rng = np.random.default_rng(8)
    Z = rng.standard_normal((6, 10, 2))
    null = ksd_parametric_null(Z, _score, bandwidths=[0.5, 1.0])
    X = rng.standard_normal((10, 2))
    with pytest.raises(ValueError, match="bandwidths"):
        ksd_parametric_null(Z, _score, bandwidths=0.0)
    with pytest.raises(ValueError, match="kernel"):
        ksd_parametric_null(Z, _score, "laplace_l1", bandwidths=1.0)
    with pytest.raises(ValueError, match="model_samples"):
        ksd_parametric_null(Z[0], _score, bandwidths=1.0)                  # (n, d): not a set of samples
    with pytest.raises(TypeError, match="model_samples"):
        ksd_parametric_null(lambda rng: Z[0], _score, bandwidths=1.0)
    with pytest.raises(ValueError, match="model_samples"):
        ksd_parametric_null([Z[0], Z[1][:5]], _score, bandwidths=1.0)     # sizes differ
    with pytest.raises(ValueError, match="model_samples"):
        ksd_parametric_null([], _score, bandwidths=1.0)
    with pytest.raises(ValueError, match="score"):
        ksd_parametric_null(Z, [-Z[0]], bandwidths=1.0)                    # fewer score arrays
    with pytest.raises(ValueError, match="null"):
        ksd_test(X[:9], _score, null=null.subset(bandwidths=0))           # another n
    with pytest.raises(ValueError, match="null"):
        ksd_test(X, _score, null=null)                                     # two bandwidths
    with pytest.raises(ValueError, match="bandwidths"):
        ksd_test(X, _score, bandwidth=0.7, null=null.subset(bandwidths=0))
    with pytest.raises(ValueError, match="kernel"):
        ksd_test(X, _score, "gaussian", null=null.subset(bandwidths=0))
    with pytest.raises(ValueError, match="unbiased"):
        ksd_test(X, _score, unbiased=False, null=null.subset(bandwidths=0))
    with pytest.raises(TypeError, match="null"):
        ksd_test(X, _score, null=np.zeros(10))
    with pytest.raises(ValueError, match="null"):
        ksdagg_test(X, _score, null=null, n_bootstrap=(4, 4))              # 8 > 6 model samples
    with pytest.raises(ValueError, match="bandwidths"):
        ksdagg_test(X, _score, bandwidths=[0.5, 2.0], null=null, n_bootstrap=(3, 3))
    with pytest.raises(ValueError, match="U-statistics"):
        ksdagg_test(X, _score, null=ksd_parametric_null(Z, _score, bandwidths=[0.5, 1.0], unbiased=False),
                    n_bootstrap=(3, 3))
