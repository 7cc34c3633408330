"""The NPLM classifier test: the statistic from the fitted model, the permutation null against an explicit
loop of refits with the same seed streams, the learnt log density ratio, null and power sanity, bad input."""

import numpy as np
import pytest
import scipy.stats

import kernelkit as kk
from kernelkit.exceptions import InvalidTypeError, InvalidValueError
from kernelkit.regression import FalkonClassifier
from kernelkit.stats import classifier_test

SMALL = dict(n_centers=40, newton_iter=6)   # small models keep the refits fast


def samples(rng, n_ref=150, n_data=60, shift=0.0):
    R = rng.standard_normal((n_ref, 2))
    D = rng.standard_normal((n_data, 2))
    D[:, 0] += shift
    return R, D


def test_statistic_and_null_match_explicit_refits():
    rng = np.random.default_rng(0)
    R, D = samples(rng, 80, 30, shift=0.5)
    B = 4
    r = classifier_test(R, D, n_permutations=B, random_state=3, **SMALL)
    w = 30 / 80
    k = r.details["kernel"]
    # the NPLM bandwidth rule: the 90th percentile of the reference's pairwise distances
    d = np.sqrt(((R[:, None, :] - R[None, :, :]) ** 2).sum(-1))[np.triu_indices(80, 1)]
    assert k.bandwidth == pytest.approx(np.percentile(d, 90), rel=1e-10)
    seeds = np.random.SeedSequence(3).spawn(2 * B + 1)

    def t_of(P, seed):
        y = np.r_[np.zeros(80), np.ones(30)]
        sw = np.r_[np.full(80, w), np.ones(30)]
        f = FalkonClassifier(kernel=k, penalty=1e-6, random_state=seed, max_iter=20, **SMALL).fit(
            P, y, sample_weight=sw).decision_function(P)
        return 2 * (f[80:].sum() - w * np.expm1(f[:80]).sum())

    pooled = np.vstack([R, D])
    assert r.statistic == pytest.approx(t_of(pooled, seeds[0]), rel=1e-10)
    f = r.details["classifier"].decision_function(pooled)
    assert r.statistic == pytest.approx(2 * (f[80:].sum() - w * np.expm1(f[:80]).sum()), rel=1e-10)
    loop = [t_of(pooled[np.random.default_rng(seeds[B + 1 + b]).permutation(110)], seeds[1 + b]) for b in range(B)]
    np.testing.assert_allclose(r.null, loop, rtol=1e-10)
    assert r.pvalue == (1 + np.sum(np.asarray(loop) >= r.statistic)) / (B + 1)
    assert r.details["dof"] == pytest.approx(np.mean(loop))
    c = classifier_test(R, D, n_permutations=B, random_state=3, method="chi2", **SMALL)
    assert c.statistic == r.statistic
    assert c.pvalue == pytest.approx(scipy.stats.chi2.sf(r.statistic, np.mean(loop)), rel=1e-10)
    assert c.reject == (c.statistic > c.threshold)


def test_learns_the_log_density_ratio():
    """Data N((1, 0), I) against reference N(0, I): log p_D / p_R = x_0 - 1/2; the fitted f follows it."""
    rng = np.random.default_rng(1)
    R, D = samples(rng, 600, 300, shift=1.0)
    r = classifier_test(R, D, n_permutations=1, random_state=0, n_centers=60, penalty=1e-4)
    grid = rng.standard_normal((200, 2)) * 0.7 + [0.5, 0.0]
    f = r.details["classifier"].decision_function(grid)
    truth = grid[:, 0] - 0.5
    assert np.corrcoef(f, truth)[0, 1] > 0.9
    assert np.median(np.abs(f - truth)) < 0.5


def test_null_and_power_sanity():
    rng = np.random.default_rng(2)
    R, D = samples(rng, 120, 50)
    assert classifier_test(R, D, n_permutations=9, random_state=0, **SMALL).pvalue > 0.1
    R, D = samples(rng, 120, 50, shift=1.0)
    r = classifier_test(R, D, n_permutations=19, random_state=0, method="chi2", **SMALL)
    assert r.details["permutation_pvalue"] == 1 / 20          # t above every permuted value
    assert r.pvalue < 1e-3 and r.reject


def test_bad_input():
    rng = np.random.default_rng(3)
    R, D = samples(rng, 20, 10)
    with pytest.raises(InvalidValueError, match="'data' parameter of classifier_test must be an array with as many "
                                                "features"):
        classifier_test(R, D[:, :1])
    with pytest.raises(InvalidValueError, match="at least 2 row"):
        classifier_test(R, D[:1])
    bad = D.copy()
    bad[2, 0] = np.nan
    with pytest.raises(InvalidValueError, match="finite"):
        classifier_test(R, bad)
    for a in (0.0, 1.0, -1.0):
        with pytest.raises(InvalidValueError, match="'alpha' parameter of classifier_test"):
            classifier_test(R, D, alpha=a)
    with pytest.raises(InvalidValueError, match="method"):
        classifier_test(R, D, method="gamma")
    with pytest.raises(InvalidTypeError, match="n_permutations"):
        classifier_test(R, D, n_permutations=None)
    with pytest.raises(InvalidValueError, match="bandwidth"):
        classifier_test(R, D, kernel=kk.Gaussian(1.0), bandwidth=2.0)
    with pytest.raises(InvalidValueError, match="penalty"):
        classifier_test(R, D, penalty=0.0)
