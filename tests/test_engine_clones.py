"""Instruction-set builds of the fused engine: every build this CPU runs gives the same sums.

The engine is compiled for baseline x86-64, x86-64-v3 (AVX2 + FMA) and
x86-64-v4 (AVX-512); ``_fused.select_clone`` picks the best the CPU supports
at import. These tests run each build the machine supports against the NumPy
reference and check the selection logic with simulated CPUs.
"""

import numpy as np
import pytest

import kernelkit as kk
from kernelkit.engine import _fused

pytestmark = pytest.mark.skipif(not kk.fused_available(), reason="compiled engine not built")

FEATS = _fused.cpu_features()
RUNNABLE = [name for name, _, needs in _fused.CLONES
            if all(FEATS.get(f) for f in needs) and name in _fused.built_clones()]
RTOL = {np.float32: 1e-5, np.float64: 1e-12}


CASES = {
    "gauss": kk.Gaussian(0.9),
    "matern52+rq": kk.Matern(2.5, 1.1) + 0.5 * kk.RationalQuadratic(0.8, 0.7),
    "laplace": kk.Laplace(0.7),
    "periodic": kk.Periodic(0.8, 1.5),
    "poly": kk.Polynomial(3, 0.3, 1.0),
}


@pytest.mark.parametrize("clone", RUNNABLE)
@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("d", [3, 17])
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
def test_every_runnable_build_matches_the_reference(restore_clone, clone, case, d, dtype):
    assert _fused.select_clone(clone) == clone and _fused.clone() == clone
    kernel = CASES[case]
    rng = np.random.default_rng(11)
    X, Y, W = rng.normal(size=(509, d)), rng.normal(size=(37, d)), rng.normal(size=(509, 2))
    ref = kk.kernel_block(kernel, X, Y).T @ W
    scale = np.abs(kk.kernel_block(kernel, X, Y)).T @ np.abs(W)
    for memory in (None, 6000):   # default tiles, and the smallest tiles the budget allows
        got = kk.kernel_sum(kernel, X.astype(dtype), Y.astype(dtype), W, backend="fused", memory=memory)
        assert np.all(np.abs(got - ref) <= 4 * RTOL[dtype] * scale)
    if kernel.is_positive and case != "matern52+rq":
        L = kk.kernel_logsumexp(kernel, X.astype(dtype), Y.astype(dtype), backend="fused")
        np.testing.assert_allclose(L, np.log(kk.kernel_block(kernel, X, Y).sum(0)), rtol=RTOL[dtype] * 10, atol=1e-5)


@pytest.mark.parametrize("clone", RUNNABLE)
@pytest.mark.parametrize("case", ["gauss", "matern52+rq", "poly"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
def test_every_build_runs_the_one_pass_normal_product(restore_clone, clone, case, dtype):
    from kernelkit.engine import prepare_normal
    _fused.select_clone(clone)
    kernel = CASES[case]
    rng = np.random.default_rng(12)
    X, C = rng.normal(size=(389, 17)), rng.normal(size=(53, 17))
    V, w = rng.normal(size=(53, 2)), rng.uniform(size=(389, 2))
    K = kk.kernel_block(kernel, X, C)                        # (n, M) float64
    ref = K.T @ (w * (K @ V))
    scale = np.abs(K).T @ (w * (np.abs(K) @ np.abs(V)))
    for memory in (None, 6000):
        N = prepare_normal(kernel, C.astype(dtype), X.astype(dtype), backend="fused", memory=memory)
        assert N.one_pass
        assert np.all(np.abs(N(V, w) - ref) <= 8 * RTOL[dtype] * scale)


@pytest.mark.parametrize("clone", RUNNABLE)
def test_every_build_gives_subnormals_and_zero_below(restore_clone, clone):
    _fused.select_clone(clone)
    x = np.array([-700.0, -720.0, -740.0, -744.0, -746.0, -800.0, -np.inf])
    np.testing.assert_allclose(_fused.exp_nonpositive(x)[:4], np.exp(x[:4]), rtol=1e-10)
    assert np.all(_fused.exp_nonpositive(x)[5:] == 0)
    xf = np.array([-80.0, -95.0, -102.0, -104.5, -np.inf], dtype=np.float32)
    # float32 subnormals: within 2 units of the smallest subnormal of the correctly rounded value
    np.testing.assert_allclose(_fused.exp_nonpositive(xf)[:3], np.exp(xf[:3]), rtol=1e-6, atol=3e-45)
    assert np.all(_fused.exp_nonpositive(xf)[3:] == 0)


def test_selection_follows_the_cpu(restore_clone, monkeypatch):
    # a CPU with AVX2 but no AVX-512F gets the v3 build; one without AVX2 the baseline (the other AVX-512
    # flags set, so that the error names the one missing feature whatever this machine has)
    no512 = {**FEATS, "avx512f": False, "avx512bw": True, "avx512dq": True, "avx512vl": True}
    monkeypatch.setattr(_fused, "cpu_features", lambda: no512)
    if FEATS.get("avx2") and "x86-64-v3" in _fused.built_clones():
        assert _fused.select_clone() == "x86-64-v3"
    with pytest.raises(ValueError, match="needs CPU features \\['avx512f'\\]"):
        _fused.select_clone("x86-64-v4")
    monkeypatch.setattr(_fused, "cpu_features", lambda: {})
    assert _fused.select_clone() == "baseline"
    with pytest.raises(ValueError, match="must be one of"):
        _fused.select_clone("avx9000")


def test_environment_variable_forces_a_build():
    import subprocess
    import sys
    code = "import kernelkit.engine as e; print(e.cpu_features()['engine'])"
    env = {**__import__("os").environ, _fused.CLONE_ENV: "baseline"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "baseline"


def test_cpu_features_reports_the_build():
    info = kk.engine.cpu_features()
    assert info["engine"] == _fused.clone() and info["engine"] in RUNNABLE
    assert set(info["built"]) == set(_fused.built_clones())
    assert isinstance(info["cpu"], dict)


@pytest.mark.parametrize("clone", RUNNABLE)
@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("d", [3, 17])
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
def test_dense_blocks_of_every_build_match_the_reference(restore_clone, clone, case, d, dtype):
    _fused.select_clone(clone)
    kernel = CASES[case]
    rng = np.random.default_rng(5)
    X, Y = rng.normal(size=(203, d)).astype(dtype), rng.normal(size=(71, d)).astype(dtype)
    ref = kernel(X.astype(np.float64), Y.astype(np.float64))
    scale = np.abs(ref).max()
    for memory in (None, 300_000):   # default tiles, and smaller ones (the block itself needs 230 kB)
        got = kk.kernel_block(kernel, X, Y, memory=memory)
        assert got.dtype == dtype and got.shape == (203, 71)
        assert np.abs(got - ref).max() <= 4 * RTOL[dtype] * scale
    sq = kk.kernel_block(kernel, X)                 # Y = X: the diagonal is k(x, x) exactly
    np.testing.assert_array_equal(np.diag(sq), kernel.diag(X))
    with kk.options(backend="numpy"):               # the NumPy reference path is still there
        np.testing.assert_allclose(kk.kernel_block(kernel, X, Y).astype(np.float64), ref,
                                   rtol=0, atol=4 * RTOL[dtype] * scale)
