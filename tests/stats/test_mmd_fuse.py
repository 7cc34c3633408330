"""MMD-FUSE: the fused statistic against explicit matrices, engine vs dense paths, level and power."""

import math

import numpy as np
import pytest
from scipy.special import logsumexp
from scipy.stats import binom

import kernelkit as kk
from kernelkit.stats._mmd_fuse import mmdfuse_bandwidths, mmdfuse_test


def _fuse_dense(ks, X, Y):
    n, m = len(X), len(Y)
    Z = np.concatenate([X, Y])
    s = min(n, m)
    out = []
    for k in ks:
        K = k(Z)
        Kxx, Kyy, Kxy = K[:n, :n], K[n:, n:], K[:n, n:]
        u = ((Kxx.sum() - np.trace(Kxx)) / (n * (n - 1)) + (Kyy.sum() - np.trace(Kyy)) / (m * (m - 1))
             - 2 * Kxy.mean())
        off = np.sqrt(np.sum(K ** 2) - np.sum(np.diag(K) ** 2))
        out.append(s * (s - 1) * math.sqrt(s * (s - 1)) * u / off)
    return logsumexp(out, b=1 / len(ks)), np.array(out)


@pytest.mark.parametrize("m", [30, 37])
def test_statistic_and_null_match_explicit_matrices(m):
    rng = np.random.default_rng(0)
    X, Y = rng.standard_normal((30, 2)), rng.standard_normal((m, 2)) + 0.3
    lam = [0.5, 1.5]
    res = mmdfuse_test(X, Y, bandwidths=lam, n_permutations=20, random_state=4)
    ks = [kk.Gaussian(0.5), kk.Gaussian(1.5), kk.Laplace(0.5 / math.sqrt(2), distance="l1"), kk.Laplace(1.5 / math.sqrt(2), distance="l1")]
    stat, T = _fuse_dense(ks, X, Y)
    assert res.statistic == pytest.approx(stat, abs=1e-10)
    np.testing.assert_allclose([d["statistic"] for d in res.details["kernels"]], T, atol=1e-10)
    prng = np.random.default_rng(4)
    Z = np.concatenate([X, Y])
    for b in range(3):
        perm = prng.permutation(len(Z))
        assert res.null[b] == pytest.approx(_fuse_dense(ks, Z[perm[:30]], Z[perm[30:]])[0], abs=1e-10)
    # the engine path (a budget too small for the dense matrix) gives the same values
    tiled = mmdfuse_test(X, Y, bandwidths=lam, n_permutations=20, random_state=4, memory="40KB")
    np.testing.assert_allclose(tiled.null, res.null, atol=1e-9)


def test_default_bandwidths_rule():
    rng = np.random.default_rng(1)
    Z = rng.standard_normal((50, 2))
    D = np.sqrt(((Z[:, None] - Z[None]) ** 2).sum(-1))[np.triu_indices(50)]
    D = np.sort(D + (D == 0) * np.median(D))
    lam = mmdfuse_bandwidths(Z, 5)
    np.testing.assert_allclose(lam, np.linspace(D[int(0.05 * D.size)] / 2, D[int(0.95 * D.size)] * 2, 5))


def test_default_laplace_bandwidths_from_l1_distances():
    rng = np.random.default_rng(3)
    Z = rng.standard_normal((40, 3))
    from scipy.spatial.distance import cdist
    D = cdist(Z, Z, "cityblock")[np.triu_indices(40)]
    D = np.sort(D + (D == 0) * np.median(D))
    lam = mmdfuse_bandwidths(Z, 4, distance="l1")
    np.testing.assert_allclose(lam, np.linspace(D[int(0.05 * D.size)] / 2, D[int(0.95 * D.size)] * 2, 4))
    X, Y = Z[:20], Z[20:] + 0.4
    res = mmdfuse_test(X, Y, kernels="laplace", number_bandwidths=3, n_permutations=10, random_state=0)
    ks = [d["kernel"] for d in res.details["kernels"]]
    assert all(isinstance(k, kk.Laplace) and k.distance == "l1" for k in ks)
    np.testing.assert_allclose([k.bandwidth * math.sqrt(2) for k in ks],
                               mmdfuse_bandwidths(np.concatenate([X, Y]), 3, distance="l1"), rtol=1e-12)


def test_level_and_power_fixed_seed():
    rng = np.random.default_rng(2)
    reps, rej = 60, 0
    for r in range(reps):
        X, Y = rng.standard_normal((25, 1)), rng.standard_normal((25, 1))
        rej += mmdfuse_test(X, Y, number_bandwidths=3, n_permutations=99, random_state=r).reject
    assert rej <= binom.ppf(0.995, reps, 0.05)   # exact level 0.05: a 99% binomial bound
    X, Y = rng.standard_normal((60, 1)), 2.0 * rng.standard_normal((60, 1))
    assert mmdfuse_test(X, Y, number_bandwidths=4, n_permutations=199, random_state=0).reject


def test_bad_input():
    X = np.random.default_rng(0).standard_normal((10, 2))
    with pytest.raises(ValueError, match="'lambda_multiplier'"):
        mmdfuse_test(X, X, lambda_multiplier=0)
    with pytest.raises(ValueError, match="'kernels'"):
        mmdfuse_test(X, X, kernels=["nosuchkernel"])
    with pytest.raises(ValueError, match="'kernels'"):
        mmdfuse_test(X, X, kernels=[kk.IMQ(1.0)], memory="1KB")
    with pytest.raises(ValueError, match="'alpha'"):
        mmdfuse_test(X, X, alpha=0)
