"""Kernels of the L1 (Manhattan) distance: ``distance="l1"`` on every backend and every build.

The reference is written here from the definition, r = sum_k |x_k - y_k| by a double loop
over coordinates in float64, then the profile of r^2 from tests/_reference.py.
"""

import numpy as np
import pytest

import kernelkit as kk
from kernelkit.engine import _fused
from kernelkit.exceptions import InvalidValueError, NotSupportedError

import _reference as ref

FEATS = _fused.cpu_features() if kk.fused_available() else {}
RUNNABLE = [name for name, _, needs in _fused.CLONES
            if all(FEATS.get(f) for f in needs) and name in _fused.built_clones()] if kk.fused_available() else []
RTOL = {np.float32: 2e-5, np.float64: 1e-12}

CASES = {   # kernel of the L1 distance, the reference spec of the same profile
    "laplace": (kk.Laplace(3.0, distance="l1"), ("laplace", 3.0)),
    "gauss": (kk.Gaussian(4.0, distance="l1"), ("gauss", 4.0)),
    "matern52": (kk.Matern(2.5, 2.0, distance="l1"), ("matern", 2.5, 2.0)),
    "imq": (kk.IMQ(2.0, 0.5, distance="l1"), ("imq", 2.0, 0.5)),
    "sum": (kk.Laplace(3.0, distance="l1") + 0.5 * kk.RationalQuadratic(2.0, 0.7, distance="l1"),
            ("sum", (("laplace", 3.0), ("scaled", 0.5, ("rq", 2.0, 0.7))))),
}


def l1_reference(spec, X, Y):
    """K[i, j] from r = sum_k |X[i, k] - Y[j, k]| (an explicit loop over coordinates)."""
    X, Y = np.asarray(X, np.float64), np.asarray(Y, np.float64)
    r = np.zeros((X.shape[0], Y.shape[0]))
    for k in range(X.shape[1]):
        r += np.abs(X[:, k][:, None] - Y[:, k][None, :])
    out = np.zeros_like(r)
    for leaf, w in ref.leaves(spec):
        out += w * ref.radial_value(leaf, r * r)
    return out


def _data(rng, n, m, d, dtype):
    """Points whose L1 distances are a few units in any d (N(0, 4 / d^2) coordinates)."""
    return ((2 / d) * rng.normal(size=(n, d))).astype(dtype), ((2 / d) * rng.normal(size=(m, d))).astype(dtype)


@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("backend", ["numpy", "fused"])
def test_sum_block_logsumexp_topk_match_the_l1_reference(case, dtype, backend):
    if backend == "fused" and not kk.fused_available():
        pytest.skip("compiled engine not built")
    kernel, spec = CASES[case]
    rng = np.random.default_rng(3)
    for d in (1, 7, 61):   # odd sizes; d = 61 is above the Euclidean direct limit (L1 stays direct)
        X, Y = _data(rng, 203, 37, d, dtype)
        K = l1_reference(spec, X, Y)
        W = rng.normal(size=(203, 3))
        for memory in (None, 6000):   # default tiles, and the smallest the budget allows (blocked)
            got = kk.kernel_sum(kernel, X, Y, W, backend=backend, memory=memory)
            assert np.all(np.abs(got - K.T @ W) <= 8 * RTOL[dtype] * (np.abs(K.T) @ np.abs(W)))
        np.testing.assert_allclose(kk.kernel_block(kernel, X, Y), K, rtol=8 * RTOL[dtype], atol=1e-30)
        if case != "sum" or backend == "numpy":
            L = kk.kernel_logsumexp(kernel, X, Y, backend=backend)
            np.testing.assert_allclose(L, np.log(K.sum(0)), rtol=8 * RTOL[dtype])
        vals, idx = kk.kernel_topk(kernel, X, Y, 5, backend=backend)
        order = np.argsort(-K, axis=0, kind="stable")[:5].T
        assert np.array_equal(idx, order) or np.allclose(np.take_along_axis(K.T, idx, 1),
                                                         np.take_along_axis(K.T, order, 1), rtol=1e-5)


@pytest.mark.parametrize("clone", RUNNABLE)
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
def test_every_runnable_build_sums_l1_distances(restore_clone, clone, dtype):
    assert _fused.select_clone(clone) == clone
    kernel, spec = CASES["laplace"]
    rng = np.random.default_rng(5)
    X, Y = _data(rng, 509, 29, 13, dtype)
    K = l1_reference(spec, X, Y)
    W = rng.normal(size=(509, 2))
    got = kk.kernel_sum(kernel, X, Y, W, backend="fused")
    assert np.all(np.abs(got - K.T @ W) <= 8 * RTOL[dtype] * (np.abs(K.T) @ np.abs(W)))
    vals, idx = kk.kernel_topk(kernel, X, Y, 4, backend="fused")
    np.testing.assert_allclose(vals, np.sort(K, axis=0)[::-1][:4].T, rtol=8 * RTOL[dtype])


def test_prepared_sum_and_normal_product_use_the_l1_distance():
    kernel, spec = CASES["laplace"]
    rng = np.random.default_rng(8)
    X, C = _data(rng, 300, 40, 5, np.float64)
    K = l1_reference(spec, X, C)
    V = rng.normal(size=(40, 2))
    np.testing.assert_allclose(kk.prepare_sum(kernel, X, C)(rng.normal(size=300) * 0 + 1), K.sum(0), rtol=1e-12)
    got = kk.engine.prepare_normal(kernel, C, X)(V)
    np.testing.assert_allclose(got, K.T @ (K @ V), rtol=1e-11)


def test_torch_backend_uses_the_l1_distance():
    pytest.importorskip("torch")
    kernel, spec = CASES["matern52"]
    rng = np.random.default_rng(9)
    X, Y = _data(rng, 120, 17, 6, np.float64)
    np.testing.assert_allclose(kk.kernel_sum(kernel, X, Y, backend="torch"), l1_reference(spec, X, Y).sum(0),
                               rtol=1e-10)


def test_l1_kernels_keep_their_identity_and_euclidean_kernels_are_unchanged():
    a, b = kk.Laplace(1.0, distance="l1"), kk.Laplace(1.0)
    assert a != b and hash(a) != hash(b)
    assert repr(a) == "Laplace(bandwidth=1.0, distance='l1')" and repr(b) == "Laplace(bandwidth=1.0)"
    assert b.spec == ("laplace", (("bandwidth", 1.0),))
    assert kk.make_kernel("laplace", 2.0, distance="l1") == kk.Laplace(2.0, distance="l1")
    # product of one-dimensional Laplace kernels
    rng = np.random.default_rng(0)
    X = rng.normal(size=(9, 4))
    np.testing.assert_allclose(a(X), np.prod([kk.Laplace(1.0)(X[:, [k]]) for k in range(4)], axis=0), rtol=1e-13)


def test_errors_name_the_distance_and_what_is_missing():
    with pytest.raises(InvalidValueError, match="'distance' parameter of Gaussian"):
        kk.Gaussian(1.0, distance="manhattan")
    k = kk.Gaussian(1.0, distance="l1")
    for call in (lambda: k.spectral_sample(3, 10, 0), lambda: k.log_integral(3), lambda: k.power(0.5),
                 lambda: k.sample_density(4, 3, 0)):
        with pytest.raises(NotSupportedError, match="L1 distance"):
            call()
    if kk.fused_available():
        X = np.zeros((4, 3))
        with pytest.raises(InvalidValueError, match="mode='gram'"):
            _fused.kernel_sum(k, X, X, np.ones((4, 1)), kk.get_options(), mode="gram")


def test_mixed_distances_fall_back_to_the_reference_path():
    kernel = kk.Laplace(1.0, distance="l1") + kk.Gaussian(1.0)
    rng = np.random.default_rng(2)
    X, Y = _data(rng, 50, 7, 3, np.float64)
    expected = l1_reference(("laplace", 1.0), X, Y) + ref.k_matrix(("gauss", 1.0), X, Y)
    np.testing.assert_allclose(kk.kernel_sum(kernel, X, Y), expected.sum(0), rtol=1e-12)
    if kk.fused_available():
        assert not _fused.supports(kernel, "sum")
