"""prepare_sum: validated and planned once, the same sums as kernel_sum."""

import numpy as np
import pytest

import kernelkit as kk
from kernelkit.engine import prepare_sum

KERNELS = {
    "gauss": kk.Gaussian(0.8),
    "matern32+imq": kk.Matern(1.5, 1.0) + 0.5 * kk.IMQ(1.2),
    "poly": kk.Polynomial(3, 0.5, 1.0),
    "matern-general": kk.Matern(0.8, 1.0),
    "sm-d3": kk.SpectralMixture([1.0, 0.3], [[0.2, 0.0, 0.1], [0.5, 0.4, 0.0]], [[0.3, 0.2, 0.4], [0.1, 0.2, 0.3]]),
}


@pytest.mark.parametrize("name", list(KERNELS))
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("memory", [None, 5000], ids=["default", "tiny"])
def test_prepared_sums_equal_one_call_sums(name, dtype, memory):
    kernel = KERNELS[name]
    rng = np.random.default_rng(1)
    X = rng.normal(size=(203, 3)).astype(dtype)
    Y = rng.normal(size=(41, 3)).astype(dtype)
    K = prepare_sum(kernel, X, Y, memory=memory)
    assert K.shape == (41, 203) and K.dtype == dtype
    for W in (None, rng.normal(size=203), rng.normal(size=(203, 3))):
        got = K(W)
        ref = kk.kernel_sum(kernel, X, Y, W, memory=memory)
        assert got.dtype == ref.dtype and got.shape == ref.shape
        np.testing.assert_array_equal(got, ref)   # the same computation, not merely close


def test_square_operator_solves_a_kernel_system():
    from scipy.sparse.linalg import cg
    rng = np.random.default_rng(2)
    X = rng.normal(size=(300, 2))
    y = rng.normal(size=300)
    K = prepare_sum(kk.Gaussian(1.0), X)
    lam = 1e-1
    from scipy.sparse.linalg import LinearOperator
    A = LinearOperator((300, 300), matvec=lambda v: K.matvec(v) + lam * v, dtype=np.float64)
    alpha, info = cg(A, y, rtol=1e-10, maxiter=2000)
    assert info == 0
    exact = np.linalg.solve(kk.Gaussian(1.0)(X) + lam * np.eye(300), y)
    np.testing.assert_allclose(alpha, exact, rtol=1e-6, atol=1e-8)
    assert K.as_linear_operator().shape == (300, 300)


@pytest.mark.parametrize("backend", ["numpy", "torch"])
def test_other_backends(backend):
    if backend == "torch":
        pytest.importorskip("torch")
    rng = np.random.default_rng(3)
    X, Y, W = rng.normal(size=(90, 2)), rng.normal(size=(20, 2)), rng.normal(size=90)
    K = prepare_sum(kk.Laplace(1.0), X, Y, backend=backend)
    assert K.backend == backend
    np.testing.assert_allclose(K(W), kk.kernel_sum(kk.Laplace(1.0), X, Y, W, backend=backend), rtol=1e-12)


def test_float32_with_huge_weights_computes_in_float64():
    rng = np.random.default_rng(4)
    X = rng.normal(size=(50, 2)).astype(np.float32)
    W = np.full(50, 1e35)
    K = prepare_sum(kk.Gaussian(1.0), X)
    np.testing.assert_array_equal(K(W), kk.kernel_sum(kk.Gaussian(1.0), X, X, W))


def test_errors_and_inputs_untouched():
    X = np.random.default_rng(5).normal(size=(30, 2))
    X0 = X.copy()
    K = prepare_sum(kk.Gaussian(1.0), X)
    with pytest.raises(ValueError, match="'weights' parameter of PreparedSum"):
        K(np.ones(29))
    with pytest.raises(ValueError, match="finite"):
        K(np.full(30, np.nan))
    with pytest.raises(TypeError, match="'kernel' parameter of prepare_sum"):
        prepare_sum("gaussian", X)
    with pytest.raises(ValueError, match="'X' parameter of prepare_sum"):
        prepare_sum(kk.Gaussian(1.0), X[:, 0])
    K(np.ones(30))
    np.testing.assert_array_equal(X, X0)
    assert "PreparedSum(Gaussian" in repr(K)
