"""Engine backends against a slow, obviously correct double-loop reference.

The reference evaluates every pair with ``math.exp`` / ``math.sqrt`` from the
formulas written in the kernels' docstrings, on tiny inputs. Every backend
that runs here (blocked NumPy always; the fused compiled backend when it is
built) must agree with it in float32 and float64.
"""

import math
import subprocess
import sys

import numpy as np
import pytest
import scipy.special

import kernelkit as kk
from kernelkit.engine import fused_available

BACKENDS = ["numpy"] + (["fused"] if fused_available() else [])


def _k_scalar(family, r2, params):
    """k as a function of the squared distance r2, straight from the formulas."""
    if family == "gaussian":
        return math.exp(-r2 / (2 * params["bw"] ** 2))
    r = math.sqrt(r2)
    if family == "matern":
        s = math.sqrt(2 * params["nu"]) * r / params["bw"]
        poly = {0.5: 1.0, 1.5: 1 + s, 2.5: 1 + s + s * s / 3}[params["nu"]]
        return poly * math.exp(-s)
    if family == "rq":
        return (1 + r2 / (2 * params["alpha"] * params["bw"] ** 2)) ** (-params["alpha"])
    if family == "imq":
        return (1 + r2 / params["bw"] ** 2) ** (-params["beta"])
    raise AssertionError(family)


CASES = [
    (kk.Gaussian(0.8), "gaussian", {"bw": 0.8}),
    (kk.Laplace(1.3), "matern", {"nu": 0.5, "bw": 1.3}),
    (kk.Matern(nu=0.5, bandwidth=0.9), "matern", {"nu": 0.5, "bw": 0.9}),
    (kk.Matern(nu=1.5, bandwidth=0.9), "matern", {"nu": 1.5, "bw": 0.9}),
    (kk.Matern(nu=2.5, bandwidth=1.1), "matern", {"nu": 2.5, "bw": 1.1}),
    (kk.IMQ(bandwidth=1.2, beta=0.5), "imq", {"bw": 1.2, "beta": 0.5}),
    (kk.RationalQuadratic(bandwidth=0.7, alpha=2.0), "rq", {"bw": 0.7, "alpha": 2.0}),
]
IDS = [f"{fam}-{i}" for i, (_, fam, _) in enumerate(CASES)]


def _reference_sum(family, params, X, Y, W):
    X = np.asarray(X, dtype=np.float64)
    Y = np.asarray(Y, dtype=np.float64)
    out = np.zeros((Y.shape[0], W.shape[1]))
    for j in range(Y.shape[0]):
        for i in range(X.shape[0]):
            r2 = sum((float(a) - float(b)) ** 2 for a, b in zip(X[i], Y[j]))
            out[j] += _k_scalar(family, r2, params) * W[i]
    return out


def _data(n, m, d, p, dtype, seed):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d)).astype(dtype)
    Y = rng.normal(size=(m, d)).astype(dtype)
    W = rng.normal(size=(n, p))  # any sign
    return X, Y, W


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("kernel,family,params", CASES, ids=IDS)
def test_sum_matches_double_loop(kernel, family, params, dtype, backend):
    for (n, m, p) in [(1, 7, 1), (7, 1, 3), (97, 13, 3)]:
        X, Y, W = _data(n, m, 3, p, dtype, seed=n + m)
        ref = _reference_sum(family, params, X, Y, W)
        for memory in [None, 4096]:
            got = kk.kernel_sum(kernel, X, Y, W, backend=backend, memory=memory)
            assert got.shape == (m, p) and got.dtype == dtype
            scale = _reference_sum(family, params, X, Y, np.abs(W)).max()
            tol = 1e-5 if dtype == np.float32 else 1e-12
            assert np.max(np.abs(got - ref)) <= tol * scale * 4, (n, m, p, memory)


@pytest.mark.parametrize("backend", BACKENDS)
def test_sum_odd_large_sizes_tiled(backend):
    X, Y, W = _data(1031, 97, 5, 1, np.float64, seed=3)
    k = kk.Gaussian(1.5)
    full = np.exp(-((X[:, None, :] - Y[None, :, :]) ** 2).sum(-1) / (2 * 1.5**2)).T @ W[:, 0]
    tiled = kk.kernel_sum(k, X, Y, W[:, 0], backend=backend, memory=4096)
    assert tiled.shape == (97,)
    np.testing.assert_allclose(tiled, full, rtol=1e-12, atol=1e-12 * np.abs(full).max())


@pytest.mark.parametrize("backend", BACKENDS)
def test_threads_do_not_change_result(backend):
    X, Y, W = _data(1031, 211, 4, 3, np.float64, seed=5)
    k = kk.Matern(nu=1.5, bandwidth=1.0)
    one = kk.kernel_sum(k, X, Y, W, backend=backend, threads=1, memory=65536)
    two = kk.kernel_sum(k, X, Y, W, backend=backend, threads=2, memory=65536)
    np.testing.assert_allclose(one, two, rtol=1e-13, atol=1e-13 * np.abs(one).max())


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_logsumexp_where_exp_underflows(backend, dtype):
    rng = np.random.default_rng(11)
    X = rng.normal(size=(97, 64)).astype(dtype)
    Y = rng.normal(size=(13, 64)).astype(dtype)
    bw = 0.05  # r^2 / (2 bw^2) ~ 25,000: every k(x, y) underflows float64
    LW = np.log(rng.uniform(0.1, 1.0, size=97))
    X64, Y64 = X.astype(np.float64), Y.astype(np.float64)
    logk = -((X64[:, None, :] - Y64[None, :, :]) ** 2).sum(-1) / (2 * bw**2)
    assert np.all(np.exp(logk) == 0.0)
    ref = scipy.special.logsumexp(logk + LW[:, None], axis=0)
    got = kk.kernel_logsumexp(kk.Gaussian(bw), X, Y, LW, backend=backend, memory=4096)
    assert np.all(np.isfinite(got))
    rtol = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(got, ref, rtol=rtol)


@pytest.mark.parametrize("backend", BACKENDS)
def test_logsumexp_neg_inf_weight_ignored(backend):
    X, Y, _ = _data(7, 5, 2, 1, np.float64, seed=2)
    LW = np.zeros(7)
    LW[3] = -np.inf
    keep = np.arange(7) != 3
    got = kk.kernel_logsumexp(kk.Gaussian(1.0), X, Y, LW, backend=backend)
    want = np.log(kk.kernel_sum(kk.Gaussian(1.0), X[keep], Y, backend="numpy"))
    np.testing.assert_allclose(got, want, rtol=1e-12)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("kernel,family,params", CASES[:3], ids=IDS[:3])
def test_topk_matches_sort(kernel, family, params, backend):
    X, Y, _ = _data(97, 11, 3, 1, np.float64, seed=7)
    K = np.array([[_k_scalar(family, float(((x - y) ** 2).sum()), params) for y in Y] for x in X])
    for k in [1, 5, 97]:
        vals, idx = kk.kernel_topk(kernel, X, Y, k, backend=backend, memory=4096)
        order = np.argsort(-K, axis=0, kind="stable")[:k].T
        np.testing.assert_array_equal(idx, order)
        np.testing.assert_allclose(vals, np.take_along_axis(K.T, order, axis=1), rtol=1e-12)


BAD = [
    (lambda X, Y: kk.kernel_sum(kk.Gaussian(), np.full((3, 2), np.nan), Y), ValueError, "'X'"),
    (lambda X, Y: kk.kernel_sum(kk.Gaussian(), X, np.full((3, 2), np.inf)), ValueError, "'Y'"),
    (lambda X, Y: kk.kernel_sum(kk.Gaussian(), np.empty((0, 2)), Y), ValueError, "'X'"),
    (lambda X, Y: kk.kernel_sum(kk.Gaussian(), X[:, 0], Y), ValueError, "'X'"),
    (lambda X, Y: kk.kernel_sum(kk.Gaussian(), X, np.ones((4, 3))), ValueError, "'Y'.*features"),
    (lambda X, Y: kk.kernel_sum(kk.Gaussian(), X, Y, np.ones(4)), ValueError, "'weights'"),
    (lambda X, Y: kk.kernel_topk(kk.Gaussian(), X, Y, 6), ValueError, "'k'"),
    (lambda X, Y: kk.kernel_sum(kk.Gaussian(), X, Y, backend="cuda"), ValueError, "'backend'"),
    (lambda X, Y: kk.kernel_sum(kk.Gaussian(), X, Y, memory="lots"), ValueError, "'memory'"),
    (lambda X, Y: kk.kernel_sum(kk.Gaussian(), X, Y, memory=-5), ValueError, "'memory'"),
    (lambda X, Y: kk.kernel_sum("gaussian", X, Y), TypeError, "'kernel'"),
]


@pytest.mark.parametrize("call,exc,word", BAD)
def test_bad_input_errors_name_the_parameter(call, exc, word):
    X = np.random.default_rng(0).normal(size=(5, 2))
    Y = np.random.default_rng(1).normal(size=(3, 2))
    with pytest.raises(exc, match=word):
        call(X, Y)


@pytest.mark.parametrize("backend", BACKENDS)
def test_inputs_not_modified(backend):
    X, Y, W = _data(31, 17, 3, 2, np.float32, seed=9)
    copies = [a.copy() for a in (X, Y, W)]
    kk.kernel_sum(kk.Gaussian(), X, Y, W, backend=backend, memory=4096)
    kk.kernel_logsumexp(kk.Gaussian(), X, Y, np.log(np.abs(W)), backend=backend, memory=4096)
    kk.kernel_topk(kk.Gaussian(), X, Y, 4, backend=backend, memory=4096)
    for a, b in zip((X, Y, W), copies):
        np.testing.assert_array_equal(a, b)


def test_import_is_light():
    code = ("import sys, kernelkit; heavy = [m for m in ('sklearn', 'matplotlib', 'torch', 'dask', 'tqdm') "
            "if m in sys.modules]; print(','.join(heavy))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "", f"import kernelkit pulled in: {out.stdout.strip()}"
