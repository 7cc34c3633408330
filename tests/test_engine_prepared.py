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


# --------------------------------------------------------------------------- prepare_normal
def _normal_reference(kernel, C, X, V, w):
    """K_CX diag(w) K_XC V from the dense float64 kernel matrix (kernel's own NumPy evaluation)."""
    K = np.asarray(kernel(X.astype(np.float64), C.astype(np.float64)), dtype=np.float64)   # (n, M)
    V2 = V.reshape(C.shape[0], -1)
    u = K @ V2
    if w is not None:
        u = u * w.reshape(X.shape[0], -1)
    out = K.T @ u
    return out[:, 0] if V.ndim == 1 else out


@pytest.mark.parametrize("name", list(KERNELS))
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("shape", [(203, 37, 3), (517, 61, 25)], ids=["direct-d3", "gram-d25"])
@pytest.mark.parametrize("memory", [None, 20000], ids=["default", "tiny"])
def test_normal_product_equals_dense_reference(name, dtype, shape, memory):
    from kernelkit.engine import prepare_normal
    kernel = KERNELS[name]
    n, M, d = shape
    if name == "sm-d3" and d != 3:
        pytest.skip("the spectral mixture case is 3-dimensional")
    rng = np.random.default_rng(11)
    X = rng.normal(size=(n, d)).astype(dtype)
    C = (X[:M] + 0.1 * rng.normal(size=(M, d))).astype(dtype)
    N = prepare_normal(kernel, C, X, memory=memory)
    assert N.shape == (M, M)
    # one pass where the compiled engine runs the kernel without modulated components
    one_pass = kk.fused_available() and name in ("gauss", "matern32+imq", "poly")
    assert N.one_pass == one_pass and N.backend == ("fused" if one_pass or name == "sm-d3" else "numpy")
    tol = 2e-5 if dtype == np.float32 else 1e-11
    cases = [(rng.normal(size=M), None), (rng.normal(size=M), rng.uniform(size=n)),
             (rng.normal(size=(M, 3)), rng.uniform(size=(n, 3))), (rng.normal(size=(M, 2)), rng.uniform(size=n))]
    for V, w in cases:
        V0, w0 = V.copy(), None if w is None else w.copy()
        got = N(V, w)
        wref = w
        if w is not None and w.ndim == 1 and V.ndim == 2:   # one weight column for every column of V
            wref = np.repeat(w[:, None], V.shape[1], axis=1)
        ref = _normal_reference(kernel, C, X, V, wref)
        assert got.dtype == np.float64 and got.shape == ref.shape
        scale = np.abs(ref).max()
        assert np.abs(got - ref).max() <= tol * scale, (name, np.abs(got - ref).max() / scale)
        np.testing.assert_array_equal(V, V0)   # inputs untouched
        if w is not None:
            np.testing.assert_array_equal(w, w0)


def test_normal_product_far_points_and_other_backends():
    """Rows below the one-factor exp's range (far data points) and the two-sum fallback of other backends."""
    from kernelkit.engine import prepare_normal
    rng = np.random.default_rng(12)
    C = rng.normal(size=(45, 4))
    X = np.concatenate([rng.normal(size=(150, 4)), 30 + rng.normal(size=(60, 4))])   # far: exp underflows
    V, w = rng.normal(size=45), rng.uniform(size=210)
    kernel = kk.Gaussian(0.7)
    ref = _normal_reference(kernel, C, X, V, w)
    for backend in (None, "numpy"):
        got = prepare_normal(kernel, C, X, backend=backend)(V, w)
        np.testing.assert_allclose(got, ref, rtol=1e-11, atol=1e-14 * np.abs(ref).max())
    if kk.fused_available():
        assert prepare_normal(kernel, C, X).one_pass
    N = prepare_normal(kernel, C, X, backend="numpy")
    assert N.backend == "numpy" and not N.one_pass and "one_pass=False" in repr(N)


def test_normal_product_errors():
    from kernelkit.engine import prepare_normal
    rng = np.random.default_rng(13)
    C, X = rng.normal(size=(10, 2)), rng.normal(size=(50, 2))
    N = prepare_normal(kk.Gaussian(1.0), C, X)
    with pytest.raises(ValueError, match="V"):
        N(np.ones(11))
    with pytest.raises(ValueError, match="weights"):
        N(np.ones((10, 2)), np.ones((50, 3)))
    with pytest.raises(ValueError, match="X"):
        prepare_normal(kk.Gaussian(1.0), C, rng.normal(size=(50, 3)))
    with pytest.raises(TypeError, match="kernel"):
        prepare_normal("gaussian", C, X)


def test_normal_product_is_deterministic():
    """The same product on every call (fixed blocks per thread), so fits are repeatable."""
    from kernelkit.engine import prepare_normal
    rng = np.random.default_rng(14)
    X = rng.normal(size=(6001, 9)).astype(np.float32)
    C = X[:301]
    N = prepare_normal(kk.Gaussian(1.5), C, X, threads=2)
    if N.one_pass:
        assert N._fused.normal_plan(N.kernel, N._C, N._X, N._opts, 1).threads == 2   # large enough for two
    V, w = rng.normal(size=301), rng.uniform(size=6001)
    first = N(V, w)
    for _ in range(3):
        np.testing.assert_array_equal(N(V, w), first)
