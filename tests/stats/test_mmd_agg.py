"""MMDAgg and Compress Then Test: references, level, power, bad input."""

import math

import numpy as np
import pytest
from scipy.stats import binom

import kernelkit as kk
from kernelkit.stats import ctt_test, mmd2, mmd_test, mmdagg_test
from kernelkit.stats._mmdagg import mmdagg_bandwidths


def test_default_bandwidths_follow_the_paper_rule():
    rng = np.random.default_rng(0)
    X, Y = rng.uniform(size=(40, 1)), rng.uniform(size=(50, 1))
    from scipy.spatial.distance import cdist
    D = np.sort(cdist(X, Y).ravel())
    lo = max(D[int(0.05 * D.size)], 0.1) / 2 if D[0] < 0.1 else D[0] / 2
    hi = 2 * max(D[-1], 0.3)
    lam = mmdagg_bandwidths(X, Y, 10)
    np.testing.assert_allclose(lam, lo * (hi / lo) ** (np.arange(10) / 9), rtol=1e-12)


@pytest.mark.parametrize("metric,distance", [("euclidean", "euclidean"), ("cityblock", "l1")])
def test_default_bandwidths_of_each_family_scale_its_distance(metric, distance):
    rng = np.random.default_rng(5)
    X, Y = rng.normal(size=(40, 3)), rng.normal(size=(45, 3)) + 0.5
    from scipy.spatial.distance import cdist
    D = np.sort(cdist(X, Y, metric).ravel())
    lo = max(D[int(0.05 * D.size)], 0.1) / 2 if D[0] < 0.1 else D[0] / 2
    hi = 2 * max(D[-1], 0.3)
    expect = lo * (hi / lo) ** (np.arange(4) / 3)
    np.testing.assert_allclose(mmdagg_bandwidths(X, Y, 4, distance=distance), expect, rtol=1e-12)
    # the default collection: Gaussian bandwidths from L2 distances, Laplace (L1 kernel) from L1 distances
    res = mmdagg_test(X, Y[:40], number_bandwidths=4, B1=20, B2=20, B3=5, random_state=0)
    ks = [d["kernel"] for d in res.details["kernels"]]
    if distance == "l1":
        got = [k.bandwidth for k in ks if isinstance(k, kk.Laplace)]
        assert all(k.distance == "l1" for k in ks if isinstance(k, kk.Laplace))
        expect = mmdagg_bandwidths(X, Y[:40], 4, distance="l1")
    else:
        got = [k.bandwidth * math.sqrt(2) for k in ks if isinstance(k, kk.Gaussian)]
        expect = mmdagg_bandwidths(X, Y[:40], 4)
    np.testing.assert_allclose(got, expect, rtol=1e-12)
    with pytest.raises(ValueError, match="distance"):
        mmdagg_bandwidths(X, Y, 4, distance="l2")


def test_per_kernel_statistics_and_nulls_match_single_tests():
    rng = np.random.default_rng(1)
    X, Y = rng.standard_normal((30, 2)), rng.standard_normal((30, 2)) + 0.3
    res = mmdagg_test(X, Y, bandwidths=[0.5, 2.0], B1=50, B2=40, B3=20, random_state=3)
    assert len(res.details["kernels"]) == 4
    first = res.details["kernels"][0]
    assert first["kernel"] == kk.Gaussian(0.5 / math.sqrt(2))
    single = mmd_test(X, Y, first["kernel"], method="wild", unbiased=True, n_permutations=90, random_state=3)
    assert first["statistic"] == pytest.approx(single.statistic, abs=1e-13)
    # the threshold is one of the B1 resampled values (or the observed one) of the same stream
    pool = np.append(single.null[:50], single.statistic)
    assert np.min(np.abs(pool - first["threshold"])) < 1e-13
    # permutations (n != m): per-kernel statistic is MMD_u^2
    res_p = mmdagg_test(X, Y[:25], kernels=["laplace"], bandwidths=[1.0], B1=30, B2=30, random_state=0)
    assert res_p.details["method"] == "permutation"
    assert res_p.details["kernels"][0]["statistic"] == pytest.approx(
        mmd2(X, Y[:25], kk.Laplace(1.0, distance="l1"), unbiased=True), abs=1e-13)
    assert res_p.reject == (res_p.statistic > 0)


def test_single_kernel_correction_is_near_alpha():
    """With one kernel, P(T_b > q(1 - u)) = u, so u ~ alpha up to the Monte Carlo error of B1, B2."""
    rng = np.random.default_rng(2)
    X, Y = rng.standard_normal((40, 1)), rng.standard_normal((40, 1))
    res = mmdagg_test(X, Y, kernels=[kk.Gaussian(1.0)], B1=500, B2=500, random_state=0)
    assert abs(res.details["u"] - 0.05) < 0.03


def test_mmdagg_level_and_power_fixed_seed():
    reps = 60
    rng = np.random.default_rng(5)
    rej = 0
    for r in range(reps):
        X, Y = rng.standard_normal((30, 1)), rng.standard_normal((30, 1))
        rej += mmdagg_test(X, Y, number_bandwidths=4, B1=100, B2=100, B3=20, random_state=r).reject
    # 99% binomial bound for a level-0.05 test: at most binom.ppf(0.995, 60, 0.05) rejections (plus Monte Carlo
    # slack of the level estimate: level 0.08 allowed)
    assert rej <= binom.ppf(0.995, reps, 0.08)
    X, Y = rng.standard_normal((60, 1)), rng.standard_normal((60, 1)) * 2.0
    assert mmdagg_test(X, Y, number_bandwidths=4, B1=500, B2=300, random_state=0).reject


def test_ctt_without_compression_is_the_permutation_statistic():
    rng = np.random.default_rng(3)
    X, Y = rng.standard_normal((64, 2)), rng.standard_normal((64, 2)) + 0.9
    k = kk.Gaussian(1.0)
    # bins of 8 points; g large enough that 2^g ceil(sqrt 8) >= 8: no compression
    res = ctt_test(X, Y, k, n_bins=16, g=2, n_permutations=200, random_state=0)
    assert res.details["coreset_size"] == 8 and res.details["dropped"] == 0
    assert res.statistic == pytest.approx(mmd2(X, Y, k), abs=1e-12)
    assert res.reject


def test_ctt_level_and_power():
    rng = np.random.default_rng(4)
    reps, rej = 40, 0
    for r in range(reps):
        X, Y = rng.standard_normal((160, 2)), rng.standard_normal((160, 2))
        rej += ctt_test(X, Y, kk.Gaussian(1.0), n_bins=8, g=1, n_permutations=69, random_state=r).reject
    assert rej <= binom.ppf(0.995, reps, 0.05)   # exact level: a 99% binomial bound
    X, Y = rng.standard_normal((1000, 2)), rng.standard_normal((1000, 2)) + 0.3
    res = ctt_test(X, Y, n_bins=16, g=1, n_permutations=199, random_state=0)
    assert res.reject and res.details["coreset_size"] < res.details["bin_size"]


def test_bad_input():
    rng = np.random.default_rng(0)
    X, Y = rng.standard_normal((20, 2)), rng.standard_normal((25, 2))
    with pytest.raises(ValueError, match="'method'"):
        mmdagg_test(X, Y, method="wild")
    with pytest.raises(ValueError, match="'kernels'"):
        mmdagg_test(X, X, kernels=["nosuchkernel"])
    with pytest.raises(ValueError, match="'bandwidths'"):
        mmdagg_test(X, X, bandwidths=[1.0, -1.0])
    with pytest.raises(ValueError, match="'bandwidths'"):
        mmdagg_test(X, X, kernels=[kk.Gaussian(1.0)], bandwidths=[1.0])
    with pytest.raises(ValueError, match="'alpha'"):
        mmdagg_test(X, X, alpha=1.0)
    with pytest.raises(ValueError, match="'Y'"):
        mmdagg_test(X, Y[:, :1])
    with pytest.raises(ValueError, match="'n_bins'"):
        ctt_test(X, Y, n_bins=40)
    with pytest.raises(ValueError, match="'alpha'"):
        ctt_test(X, Y, alpha=0)
