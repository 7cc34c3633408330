"""The torch backend against the NumPy reference (skipped without torch)."""

import numpy as np
import pytest

import kernelkit as kk

torch = pytest.importorskip("torch")

KERNELS = [kk.Gaussian(0.7), kk.Laplace(1.3), kk.Matern(1.5, 0.9), kk.Matern(2.5, 1.1), kk.IMQ(1.2),
           kk.RationalQuadratic(0.8, alpha=2.0), kk.Gaussian(0.5) + 2.0 * kk.Laplace(1.0),
           kk.Gaussian(1.0) * kk.IMQ(2.0), kk.Polynomial(3, gamma=0.3)]


@pytest.mark.parametrize("kernel", KERNELS, ids=repr)
@pytest.mark.parametrize("n,m", [(1, 1), (97, 31), (300, 7)])
def test_sum_matches_numpy(kernel, n, m, dtype, rng):
    X = rng.standard_normal((n, 3)).astype(dtype)
    Y = rng.standard_normal((m, 3)).astype(dtype)
    W = rng.standard_normal((n, 2))
    ref = kk.kernel_sum(kernel, X, Y, W, backend="numpy")
    got = kk.kernel_sum(kernel, X, Y, W, backend="torch", memory=4096)
    scale = np.abs(kernel(X, Y)).T @ np.abs(W)
    tol = 1e-5 if dtype == np.float32 else 1e-12
    assert np.all(np.abs(got - ref) <= tol * scale + 1e-300)


def test_logsumexp_and_topk_match_numpy(dtype, rng):
    X = rng.standard_normal((211, 40)).astype(dtype)
    Y = rng.standard_normal((13, 40)).astype(dtype)
    k = kk.Gaussian(0.3)  # sums underflow float64: only the log domain is exact
    lw = np.log(rng.random((211, 2)))
    ref = kk.kernel_logsumexp(k, X, Y, lw, backend="numpy")
    got = kk.kernel_logsumexp(k, X, Y, lw, backend="torch", memory=4096)
    assert np.all(np.isfinite(ref))
    np.testing.assert_allclose(got, ref, rtol=1e-5 if dtype == np.float32 else 1e-12)
    k = kk.Gaussian(4.0)  # values well above float32's underflow for top-k
    v1, i1 = kk.kernel_topk(k, X, Y, 5, backend="numpy")
    v2, i2 = kk.kernel_topk(k, X, Y, 5, backend="torch", memory=4096)
    rtol = 1e-4 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(v1, v2, rtol=rtol)
    # the returned indices hold the returned values (float32 near-ties may pick either index)
    K = k(X.astype(np.float64), Y.astype(np.float64))
    np.testing.assert_allclose(np.take_along_axis(K.T, i2, axis=1), v2, rtol=rtol)
    if dtype == np.float64:
        np.testing.assert_array_equal(i1, i2)
