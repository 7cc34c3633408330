"""Engine backends against a slow, obviously correct double-loop reference.

The reference (tests/_reference.py) evaluates every pair from the formulas
written in the kernels' docstrings, in float64 on tiny inputs. Every backend
that runs here (blocked NumPy always; the fused compiled backend when it is
built) must agree with it in float32 and float64, on every kernel case of
conftest.py (the fused backend refuses, with an error naming 'backend', the
kernels it does not compile).
"""

import subprocess
import sys

import numpy as np
import pytest

import _reference as ref
import kernelkit as kk
from kernelkit.engine import fused_available

if fused_available():
    from kernelkit.engine import _fused

BACKENDS = ["numpy"] + (["fused"] if fused_available() else [])


def _data(n, m, d, p, dtype, seed):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d)).astype(dtype)
    Y = rng.normal(size=(m, d)).astype(dtype)
    W = rng.normal(size=(n, p))  # any sign
    return X, Y, W


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_sum_matches_double_loop(kernel_case, dtype, backend):
    kernel, spec = kernel_case.kernel, kernel_case.ref
    if backend == "fused" and not _fused.supports(kernel, "sum"):  # (the support table: test_engine_fused.py)
        X, Y, W = _data(7, 5, 3, 2, dtype, seed=0)
        with pytest.raises(ValueError, match="'backend'"):
            kk.kernel_sum(kernel, X, Y, W, backend=backend)
        return
    for (n, m, p) in [(1, 7, 1), (7, 1, 3), (97, 13, 3)]:
        X, Y, W = _data(n, m, 3, p, dtype, seed=n + m)
        want = ref.kernel_sum(spec, X, Y, W, loop=True)
        # errors scale with sum_i |W_i| |k| (|k| bounded by the envelope for dot-product kernels)
        scale = (ref.envelope_matrix(spec, X, Y).T @ np.abs(W)).max()
        for memory in [None, 4096]:
            got = kk.kernel_sum(kernel, X, Y, W, backend=backend, memory=memory)
            assert got.shape == (m, p) and got.dtype == dtype
            assert np.max(np.abs(got - want)) <= ref.SAFETY * ref.tol("sum", dtype) * scale, (n, m, p, memory)


@pytest.mark.parametrize("backend", BACKENDS)
def test_sum_odd_large_sizes_tiled(backend):
    X, Y, W = _data(1031, 97, 5, 1, np.float64, seed=3)
    full = ref.kernel_sum(("gauss", 1.5), X, Y, W[:, 0])
    tiled = kk.kernel_sum(kk.Gaussian(1.5), X, Y, W[:, 0], backend=backend, memory=4096)
    assert tiled.shape == (97,)
    rtol = ref.tol("sum", np.float64)
    np.testing.assert_allclose(tiled, full, rtol=rtol, atol=rtol * np.abs(full).max())


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
    assert np.all(np.exp(ref.log_k_matrix(("gauss", bw), X, Y)) == 0.0)
    want = ref.kernel_logsumexp(("gauss", bw), X, Y, LW)
    got = kk.kernel_logsumexp(kk.Gaussian(bw), X, Y, LW, backend=backend, memory=4096)
    assert np.all(np.isfinite(got))
    np.testing.assert_allclose(got, want, rtol=ref.tol("logsumexp", dtype))


@pytest.mark.parametrize("backend", BACKENDS)
def test_logsumexp_neg_inf_weight_ignored(backend):
    X, Y, _ = _data(7, 5, 2, 1, np.float64, seed=2)
    LW = np.zeros(7)
    LW[3] = -np.inf
    keep = np.arange(7) != 3
    got = kk.kernel_logsumexp(kk.Gaussian(1.0), X, Y, LW, backend=backend)
    np.testing.assert_allclose(got, np.log(kk.kernel_sum(kk.Gaussian(1.0), X[keep], Y, backend="numpy")),
                               rtol=ref.tol("logsumexp", np.float64))
    np.testing.assert_allclose(got, np.log(ref.kernel_sum(("gauss", 1.0), X[keep], Y)),
                               rtol=ref.tol("logsumexp", np.float64))


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.kernel_cases("gauss", "laplace", "matern05")
def test_topk_matches_sort(kernel_case, backend):
    X, Y, _ = _data(97, 11, 3, 1, np.float64, seed=7)
    K = ref.double_loop_matrix(kernel_case.ref, X, Y)
    for k in [1, 5, 97]:
        vals, idx = kk.kernel_topk(kernel_case.kernel, X, Y, k, backend=backend, memory=4096)
        want_vals, want_idx = ref.topk(K, k)
        np.testing.assert_array_equal(idx, want_idx)
        np.testing.assert_allclose(vals, want_vals, rtol=ref.tol("topk", np.float64))


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
