"""Smoke tests of benchmarks/bench_tests.py and bench_tests_power_mmd.py: references and generators (no timings)."""

import os
import sys

import numpy as np
import pytest

BENCH = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "benchmarks")
if BENCH not in sys.path:
    sys.path.insert(0, BENCH)

import bench_tests as BT  # noqa: E402
import bench_tests_power_mmd as BP  # noqa: E402

import kernelkit as kk  # noqa: E402
from kernelkit.stats import mmd_test  # noqa: E402


def test_numpy_reference_replays_the_kernelkit_null():
    X, Y = BT.data(60, 4, seed=1)
    stat, null = BT.numpy_reference(X, Y, 1.7, 25, seed=3)
    res = mmd_test(X, Y, kk.Gaussian(1.7), n_permutations=25, random_state=3)
    assert stat == pytest.approx(res.statistic, abs=1e-13)
    np.testing.assert_allclose(null, res.null, atol=1e-13)


def test_missing_peer_environment_is_reported(monkeypatch):
    monkeypatch.setattr(BT, "PEERS_PY", "/nonexistent/python")
    X, Y = BT.data(10, 2, seed=0)
    assert "no peers' environment" in BT.run_peer("hyppo", X, Y, 1.0, 5, 1, 10)["error"]


def test_perturbed_uniform_density_and_sampler():
    # f = 1 + c P^-s sum theta G(P x - nu) integrates to 1 (each bump integrates to 0) and stays positive
    x = (np.arange(200_000) + 0.5) / 200_000
    for P in (1, 2, 3):
        f = 1 + 2.7 * P ** -1.0 * sum(BP._G(P * x - v) for v in range(1, P + 1))
        assert abs(f.mean() - 1) < 1e-6 and f.min() > 0
    rng = np.random.default_rng(0)
    s = BP.perturbed_uniform(4000, rng, 1)
    assert s.shape == (4000, 1) and 0 <= s.min() and s.max() <= 1
    # one bump on (0, 1): mass on (0, 1/2) is 1/2 + theta * c * int_{-1}^{-1/2} G, far from 1/2
    from scipy.integrate import quad
    g = quad(lambda t: np.exp(-1 / (1 - (4 * t + 3) ** 2)), -1, -0.5)[0]
    assert abs(abs(np.mean(s[:, 0] < 0.5) - 0.5) - 2.7 * g) < 0.03


def test_blob_and_hdgm_shapes_and_moments():
    rng = np.random.default_rng(0)
    P, Q = BP.blob(9000, rng), BP.blob(9000, rng, q=True)
    assert P.shape == Q.shape == (9000, 2)
    near = lambda Z: Z - np.round(Z)
    assert abs(np.corrcoef(near(P).T)[0, 1]) < 0.05
    H = BP.hdgm(4000, rng, q=True)
    assert H.shape == (4000, 10) and abs(H.mean() - 0.25) < 0.05
