"""kernelkit.features: random Fourier / orthogonal / structured / positive features, Nystroem, ridge on features.

Statistical tests run at fixed seeds and check behaviour with loose margins
(convergence like 1/sqrt(D), unbiasedness within a few standard errors,
variance ordering of ORF against RFF); the exact kernel matrix from
``kernel(X, Y)`` is the oracle.
"""

import re
import subprocess
import sys

import numpy as np
import pytest
import scipy.linalg

import kernelkit as kk
from kernelkit.features import (NystroemFeatures, OrthogonalRandomFeatures, PositiveRandomFeatures,
                                RandomFeaturesRidge, RandomFourierFeatures, StructuredOrthogonalFeatures)
from kernelkit.features._fourier import fwht, orthogonal_gaussian


def _points(n=30, d=3, scale=0.5, seed=0):
    return np.random.default_rng(seed).standard_normal((n, d)) * scale


SPECTRAL_KERNELS = {
    "gaussian": kk.Gaussian(1.0),
    "laplace": kk.Laplace(1.5),
    "matern32": kk.Matern(1.5, 1.0),
    "rq": kk.RationalQuadratic(1.0, alpha=2.0),
    "imq": kk.IMQ(1.0),
    "scaled_gaussian": 3.0 * kk.Gaussian(0.8),
    "spectral_mixture": kk.SpectralMixture([1.0, 0.5], [[0.2, 0.0, 0.1], [0.0, 0.3, 0.0]],
                                           [[0.3, 0.3, 0.3], [0.2, 0.2, 0.2]]),
}

GAUSSIAN_MAPS = {
    "rff": lambda D, s: RandomFourierFeatures(kk.Gaussian(1.0), D, random_state=s),
    "rff_phase": lambda D, s: RandomFourierFeatures(kk.Gaussian(1.0), D, form="phase", random_state=s),
    "orf": lambda D, s: OrthogonalRandomFeatures(kk.Gaussian(1.0), D, random_state=s),
    "sorf": lambda D, s: StructuredOrthogonalFeatures(kk.Gaussian(1.0), D, random_state=s),
    "positive": lambda D, s: PositiveRandomFeatures(kk.Gaussian(1.0), D, random_state=s),
    "positive_orth": lambda D, s: PositiveRandomFeatures(kk.Gaussian(1.0), D, orthogonal=True, random_state=s),
}


def _max_error(fm, X, K):
    Z = fm.fit_transform(X)
    return float(np.abs(Z @ Z.T - K).max())


# --------------------------------------------------------------------------- convergence in D
@pytest.mark.parametrize("name", sorted(SPECTRAL_KERNELS))
def test_rff_converges_for_every_spectral_kernel(name):
    """Z Z^T -> K (k(0) included) with the max error shrinking like 1/sqrt(D): D x16 -> error / 4 (checked / 2.5)."""
    k = SPECTRAL_KERNELS[name]
    X = _points(25, 3)
    K = k(X)
    err = {D: np.mean([_max_error(RandomFourierFeatures(k, D, random_state=s), X, K) for s in range(3)])
           for D in (256, 4096)}
    assert err[4096] < err[256] / 2.5, err
    assert err[4096] < 0.08 * K.max()


def test_rff_periodic_in_one_dimension():
    k = kk.Periodic(1.0, period=2.0)
    X = _points(25, 1, scale=2.0)
    K = k(X)
    err = {D: np.mean([_max_error(RandomFourierFeatures(k, D, random_state=s), X, K) for s in range(3)])
           for D in (256, 4096)}
    assert err[4096] < err[256] / 2.5, err


@pytest.mark.parametrize("name", sorted(GAUSSIAN_MAPS))
def test_gaussian_maps_converge(name):
    X = _points(25, 16, scale=0.1 if name.startswith("positive") else 0.3)
    K = kk.Gaussian(1.0)(X)
    err = {D: np.mean([_max_error(GAUSSIAN_MAPS[name](D, s), X, K) for s in range(3)]) for D in (256, 4096)}
    assert err[4096] < err[256] / 2.5, err
    assert err[4096] < 0.06


# --------------------------------------------------------------------------- unbiasedness
@pytest.mark.parametrize("name", ["rff", "rff_phase", "orf", "positive", "positive_orth"])
def test_unbiased_over_seeds(name):
    """Mean of z(x).z(y) over 200 draws at D = 8 within 5 standard errors of k(x, y), for every pair."""
    X = _points(6, 4, scale=0.3)
    K = kk.Gaussian(1.0)(X)
    draws = np.array([(lambda Z: Z @ Z.T)(GAUSSIAN_MAPS[name](8, s).fit_transform(X)) for s in range(200)])
    se = draws.std(axis=0, ddof=1) / np.sqrt(len(draws))
    z = np.abs(draws.mean(axis=0) - K) / np.maximum(se, 1e-12)
    assert z.max() < 5, z.max()


def test_unbiased_other_kernels_and_scale():
    """Laplace, scaled Gaussian (k(0) = 3) and spectral mixture (k(0) = sum of weights): the mean is k, not k/k(0)."""
    X = _points(5, 3, scale=0.5)
    for k in (SPECTRAL_KERNELS["laplace"], SPECTRAL_KERNELS["scaled_gaussian"], SPECTRAL_KERNELS["spectral_mixture"]):
        K = k(X)
        draws = np.array([(lambda Z: Z @ Z.T)(RandomFourierFeatures(k, 8, random_state=s).fit_transform(X))
                          for s in range(200)])
        se = draws.std(axis=0, ddof=1) / np.sqrt(len(draws))
        assert (np.abs(draws.mean(axis=0) - K) < 5 * se + 1e-12).all(), k


def test_sorf_nearly_unbiased():
    """SORF's bias is small for d = 16 (it is visible for d <= 4, as documented)."""
    X = _points(6, 16, scale=0.3)
    K = kk.Gaussian(1.0)(X)
    draws = np.array([(lambda Z: Z @ Z.T)(GAUSSIAN_MAPS["sorf"](16, s).fit_transform(X)) for s in range(200)])
    se = draws.std(axis=0, ddof=1) / np.sqrt(len(draws))
    assert (np.abs(draws.mean(axis=0) - K) < 5 * se + 0.01).all()


# --------------------------------------------------------------------------- variance ordering
def test_orf_beats_rff_and_sorf_close_to_orf():
    """d = 16, D = 64: mean squared kernel error over 6 seeds, ORF < RFF (Yu et al.), SORF within 30% of ORF."""
    X = _points(40, 16, scale=0.35, seed=3)
    K = kk.Gaussian(1.0)(X)

    def mse(make):
        return np.mean([np.mean((lambda Z: (Z @ Z.T - K) ** 2)(make(s).fit_transform(X))) for s in range(6)])

    rff = mse(lambda s: RandomFourierFeatures(kk.Gaussian(1.0), 64, random_state=s))
    orf = mse(lambda s: OrthogonalRandomFeatures(kk.Gaussian(1.0), 64, random_state=s))
    sorf = mse(lambda s: StructuredOrthogonalFeatures(kk.Gaussian(1.0), 64, random_state=s))
    assert orf < 0.8 * rff, (orf, rff)
    assert sorf < 1.3 * orf, (sorf, orf)


# --------------------------------------------------------------------------- structure
def test_fwht_is_hadamard_and_orthogonal_blocks():
    np.testing.assert_array_equal(fwht(np.eye(16)), scipy.linalg.hadamard(16))
    a = np.random.default_rng(0).standard_normal((3, 8))
    np.testing.assert_allclose(fwht(a), a @ scipy.linalg.hadamard(8), atol=1e-12)
    W = orthogonal_gaussian(5, 12, np.random.default_rng(1))
    assert W.shape == (12, 5)
    G = W[:5] @ W[:5].T
    np.testing.assert_allclose(G - np.diag(np.diag(G)), 0, atol=1e-12)
    s = StructuredOrthogonalFeatures(kk.Gaussian(2.0), 24, random_state=0).fit(np.zeros((3, 5)))
    assert s.n_padded_ == 8 and s.signs_.shape == (3, 3, 8)
    Wd = s.dense_frequencies()
    assert Wd.shape == (24, 5)
    X = _points(7, 5)
    np.testing.assert_allclose(s.transform(X), (lambda P: np.hstack([np.cos(P), np.sin(P)]) / np.sqrt(24))(X @ Wd.T),
                               atol=1e-12)


def test_positive_features_are_positive():
    X = _points(50, 8, scale=2.0)
    for orth in (False, True):
        Z = PositiveRandomFeatures(bandwidth=1.5, n_components=100, orthogonal=orth, random_state=0).fit_transform(X)
        assert (Z > 0).all() and np.isfinite(Z).all()


# --------------------------------------------------------------------------- Nystroem
@pytest.mark.parametrize("kernel", [kk.Gaussian(1.0), kk.Laplace(1.0), kk.Matern(2.5, 1.5), kk.Linear(),
                                    kk.Polynomial(2)], ids=repr)
def test_nystroem_with_all_points_is_exact(kernel):
    X = _points(40, 3)
    fm = NystroemFeatures(kernel, n_components=40, random_state=0).fit(X)
    Z = fm.transform(X)
    np.testing.assert_allclose(Z @ Z.T, kernel(X), atol=1e-8)
    np.testing.assert_array_equal(fm.component_indices_, np.arange(40))


def test_nystroem_centres_and_chunks():
    X = _points(60, 3)
    K = kk.Gaussian(1.0)(X)
    for centers in ("uniform", "leverage", "kmeans", X[:15]):
        fm = NystroemFeatures(kk.Gaussian(1.0), n_components=15, centers=centers, random_state=0).fit(X)
        Z = fm.transform(X)
        assert Z.shape == (60, 15)
        R = K - Z @ Z.T   # Nystroem error: positive semi-definite
        assert np.linalg.eigvalsh(R).min() > -1e-8
    # exact on the centres
    fm = NystroemFeatures(kk.Gaussian(1.0), n_components=15, random_state=0).fit(X)
    C = fm.components_
    Zc = fm.transform(C)
    np.testing.assert_allclose(Zc @ Zc.T, kk.Gaussian(1.0)(C), atol=1e-8)
    # chunked transform (tiny memory budget) equals the one-block transform
    full = fm.transform(X)
    with kk.options(memory=15 * 16 * 7):
        chunked = fm.transform(X)
    np.testing.assert_allclose(chunked, full, atol=1e-13)
    with pytest.warns(UserWarning, match="larger than the number"):
        assert NystroemFeatures(n_components=100, random_state=0).fit(X).components_.shape == (60, 3)


# --------------------------------------------------------------------------- ridge
def _ridge_data(n=300, d=4, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    y = np.sin(X[:, 0]) + X[:, 1] ** 2 / 3 + 0.05 * rng.standard_normal(n)
    return X, y


def test_ridge_chunked_equals_unchunked_and_direct_solve():
    X, y = _ridge_data()
    fm = RandomFourierFeatures(bandwidth=1.5, n_components=40, random_state=0)
    a = RandomFeaturesRidge(fm, alpha=0.5).fit(X, y)
    b = RandomFeaturesRidge(fm, alpha=0.5, chunk_size=37).fit(X, y)
    np.testing.assert_allclose(b.coef_, a.coef_, atol=1e-10, rtol=0)
    assert abs(a.intercept_ - b.intercept_) < 1e-10
    np.testing.assert_allclose(b.predict(X), a.predict(X), atol=1e-10)
    Z = a.features_.transform(X)
    Zc, yc = Z - Z.mean(0), y - y.mean()
    coef = np.linalg.solve(Zc.T @ Zc + 0.5 * np.eye(Z.shape[1]), Zc.T @ yc)
    np.testing.assert_allclose(a.coef_, coef, atol=1e-9)
    np.testing.assert_allclose(a.intercept_, y.mean() - Z.mean(0) @ coef, atol=1e-9)
    np.testing.assert_allclose(a.predict(X), Z @ coef + a.intercept_, atol=1e-9)
    assert a.score(X, y) > 0.9
    # no intercept
    c = RandomFeaturesRidge(fm, alpha=0.5, fit_intercept=False, chunk_size=50).fit(X, y)
    np.testing.assert_allclose(c.coef_, np.linalg.solve(Z.T @ Z + 0.5 * np.eye(80), Z.T @ y), atol=1e-9)
    assert c.intercept_ == 0


def test_ridge_multioutput_memmap_and_nystroem(tmp_path):
    X, y = _ridge_data(200)
    Y = np.column_stack([y, -2 * y])
    path = tmp_path / "X.npy"
    np.save(path, X)
    Xm = np.load(path, mmap_mode="r")
    m = RandomFeaturesRidge(NystroemFeatures(kk.Gaussian(1.5), 30, random_state=0), alpha=0.1, chunk_size=64)
    m.fit(Xm, Y)
    assert m.coef_.shape == (30, 2) and m.intercept_.shape == (2,)
    P = m.predict(X)
    np.testing.assert_allclose(P[:, 1], -2 * P[:, 0], atol=1e-8)
    one = RandomFeaturesRidge(NystroemFeatures(kk.Gaussian(1.5), 30, random_state=0), alpha=0.1).fit(X, y)
    np.testing.assert_allclose(P[:, 0], one.predict(X), atol=1e-9)
    assert RandomFeaturesRidge().fit(X, y).features_.kernel_ == kk.Gaussian(kk.median_bandwidth(X))


# --------------------------------------------------------------------------- dtypes, seeds, kernel resolution
ALL_MAPS = [RandomFourierFeatures, OrthogonalRandomFeatures, StructuredOrthogonalFeatures, PositiveRandomFeatures,
            NystroemFeatures]


@pytest.mark.parametrize("cls", ALL_MAPS, ids=lambda c: c.__name__)
def test_dtypes_and_reproducibility(cls, dtype):
    X = _points(20, 5).astype(dtype)
    Xc = X.copy()
    fm = cls(n_components=16, random_state=3).fit(X)
    Z = fm.transform(X)
    assert Z.dtype == dtype
    np.testing.assert_array_equal(X, Xc)  # inputs never modified
    Z64 = cls(n_components=16, random_state=3).fit(X.astype(np.float64)).transform(X.astype(np.float64))
    np.testing.assert_allclose(Z, Z64, atol=1e-4 if dtype == np.float32 else 1e-12)
    np.testing.assert_array_equal(cls(n_components=16, random_state=3).fit_transform(X), Z)
    g = np.random.default_rng(5)
    a = cls(n_components=16, random_state=g).fit_transform(X)
    b = cls(n_components=16, random_state=g).fit_transform(X)   # the generator advanced
    assert not np.array_equal(a, b)


def test_median_heuristic_and_names():
    X = _points(30, 3)
    h = kk.median_bandwidth(X)
    fm = RandomFourierFeatures("Laplace", 10, random_state=0).fit(X)
    assert fm.kernel_ == kk.Laplace(h) and fm.bandwidth_ == h
    fm = RandomFourierFeatures("matern32", 10, bandwidth=0.7, random_state=0).fit(X)
    assert fm.kernel_ == kk.Matern(1.5, 0.7)
    assert fm.scale_ == 1.0
    assert RandomFourierFeatures(3.0 * kk.Gaussian(1.0), 10).fit(X).scale_ == pytest.approx(3.0)
    assert RandomFourierFeatures(kk.Gaussian(1.0), 10, form="phase").fit(X).transform(X).shape == (30, 10)
    assert RandomFourierFeatures(kk.Gaussian(1.0), 10).fit(X).get_feature_names_out().shape == (20,)


# --------------------------------------------------------------------------- bad inputs
@pytest.mark.parametrize("cls", ALL_MAPS, ids=lambda c: c.__name__)
def test_bad_inputs(cls):
    X = _points(10, 3)
    with pytest.raises(ValueError, match="'n_components' parameter of .* must be an int >= 1. Got 0"):
        cls(n_components=0).fit(X)
    with pytest.raises(TypeError, match="n_components"):
        cls(n_components=2.5).fit(X)
    with pytest.raises(TypeError, match="n_components"):
        cls(n_components=True).fit(X)
    Xn = X.copy()
    Xn[2, 1] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        cls(n_components=4).fit(Xn)
    fm = cls(n_components=4, random_state=0).fit(X)
    with pytest.raises(ValueError, match="NaN"):
        fm.transform(Xn)
    with pytest.raises(ValueError, match="X has 4 features, but .* is expecting 3"):
        fm.transform(np.zeros((2, 4)))
    with pytest.raises(kk.NotFittedError):
        cls().transform(X)
    from sklearn.exceptions import NotFittedError
    with pytest.raises(NotFittedError):
        cls().transform(X)
    with pytest.raises(ValueError, match="'bandwidth' parameter .* must be None when 'kernel' is a Kernel object"):
        cls(kk.Gaussian(1.0), bandwidth=2.0).fit(X)
    with pytest.raises(ValueError, match="bandwidth"):
        cls("gaussian", bandwidth=-1.0).fit(X)
    with pytest.raises(ValueError, match="'kernel' parameter"):
        cls("no-such-kernel").fit(X)
    with pytest.raises(TypeError, match="'random_state'"):
        cls(random_state="seed").fit(X)


def test_kernels_without_spectral_density():
    X = _points(10, 3)
    for k in (kk.Linear(), kk.Polynomial(2), kk.Gaussian(1.0) + kk.Laplace(1.0)):
        with pytest.raises(ValueError, match=r"'kernel' parameter of RandomFourierFeatures must be a "
                                             r"shift-invariant kernel with a spectral density.*Got "
                                             + re.escape(repr(k))):
            RandomFourierFeatures(k).fit(X)
    with pytest.raises(ValueError, match="'kernel' parameter of RandomFourierFeatures .* shift-invariant"):
        RandomFourierFeatures("linear").fit(X)
    with pytest.raises(ValueError, match="spectral density on R\\^3.*Periodic"):
        RandomFourierFeatures(kk.Periodic(1.0)).fit(X)
    for cls in (OrthogonalRandomFeatures, StructuredOrthogonalFeatures, PositiveRandomFeatures):
        with pytest.raises(ValueError, match=f"'kernel' parameter of {cls.__name__} must be the Gaussian.*Laplace"):
            cls(kk.Laplace(1.0)).fit(X)
    with pytest.raises(ValueError, match="'form'"):
        RandomFourierFeatures(form="sin").fit(X)
    with pytest.raises(ValueError, match="'alpha'"):
        RandomFeaturesRidge(alpha=-1.0).fit(X, X[:, 0])
    with pytest.raises(ValueError, match="'chunk_size'"):
        RandomFeaturesRidge(chunk_size=0).fit(X, X[:, 0])
    with pytest.raises(TypeError, match="'features'"):
        RandomFeaturesRidge(features="rff").fit(X, X[:, 0])
    with pytest.raises(kk.NotFittedError):
        RandomFeaturesRidge().predict(X)
    with pytest.raises(ValueError, match="'centers'"):
        NystroemFeatures(centers="random").fit(X)


def test_import_kernelkit_stays_light():
    code = ("import sys, kernelkit, kernelkit.features; "
            "assert not any(m.startswith('kernelkit.features._') for m in sys.modules), sorted(sys.modules)")
    subprocess.run([sys.executable, "-c", code], check=True)


# --------------------------------------------------------------------------- scikit-learn API checks
from sklearn.utils.estimator_checks import parametrize_with_checks  # noqa: E402


@parametrize_with_checks([RandomFourierFeatures(), OrthogonalRandomFeatures(), StructuredOrthogonalFeatures(),
                          PositiveRandomFeatures(), NystroemFeatures(n_components=10), RandomFeaturesRidge()])
def test_sklearn_estimator_checks(estimator, check):
    check(estimator)


# --------------------------------------------------------------------------- optimal positive features
def _oprf_data(d, scale, seed=0):
    return np.random.default_rng(seed).standard_normal((300, d)) * scale


def test_optimal_positive_parameter_minimises_the_second_moment():
    """A_ is the minimiser of the log second moment at the mean |u_i + u_j|^2 (checked numerically)."""
    from scipy.optimize import minimize_scalar
    X = _oprf_data(6, 0.5)
    m = PositiveRandomFeatures(bandwidth=1.0, n_components=8, optimal=True, random_state=0).fit(X)
    U = X - X.mean(axis=0)
    S = np.mean(np.sum((U[:, None, :] + U[None, :, :]) ** 2, axis=2))   # over all pairs, directly

    def log_moment(A):
        return 6 * np.log(1 - 4 * A) - 3 * np.log(1 - 8 * A) + 2 * (1 - 4 * A) * S / (1 - 8 * A)

    best = minimize_scalar(log_moment, bounds=(-5.0, 0.124), method="bounded", options={"xatol": 1e-10})
    assert m.A_ < 0
    np.testing.assert_allclose(m.A_, best.x, rtol=1e-6)
    assert PositiveRandomFeatures(bandwidth=1.0, n_components=8, random_state=0).fit(X).A_ == 0.0


def test_optimal_positive_features_are_unbiased_and_positive():
    X = _oprf_data(4, 0.6)
    x = X[:3]
    m = PositiveRandomFeatures(bandwidth=1.0, n_components=200_000, optimal=True, random_state=1).fit(X)
    Z = m.transform(x)
    assert (Z > 0).all()
    K = kk.Gaussian(1.0)(x)
    np.testing.assert_allclose(Z @ Z.T, K, rtol=0.03)   # 200,000 features: a few per cent


@pytest.mark.parametrize("d, scale", [(8, 0.3), (16, 0.2)])
def test_optimal_positive_features_have_lower_error_than_favor(d, scale):
    X = _oprf_data(d, scale, seed=2)
    K = kk.Gaussian(1.0)(X)

    def mse(optimal):
        errs = []
        for seed in range(6):
            Z = PositiveRandomFeatures(bandwidth=1.0, n_components=256, optimal=optimal,
                                       random_state=seed).fit_transform(X)
            errs.append(np.mean((Z @ Z.T - K) ** 2))
        return np.mean(errs)

    favor, oprf = mse(False), mse(True)
    assert oprf < 0.8 * favor, (oprf, favor)   # measured 2-3x lower (both estimates are heavy-tailed: spread
    # data, |u| above about 1, make the sample error at D = 256 erratic for either map)


# --------------------------------------------------------------------------- compiled Walsh-Hadamard transform
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("shape", [(1,), (5, 2), (3, 7, 64), (11, 1024)])
def test_compiled_fwht_equals_the_numpy_reference(dtype, shape):
    from kernelkit.features import _fourier
    if _fourier._fwht_ext() is None:
        pytest.skip("compiled transform not built")
    a = np.random.default_rng(3).standard_normal(shape).astype(dtype)
    ref = _fourier._fwht_inplace(a.copy(), compiled=False)
    got = _fourier._fwht_inplace(a.copy())
    tol = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(got, ref, rtol=tol, atol=tol * np.abs(ref).max())
    m = shape[-1]
    H = _fourier.fwht(np.eye(m))            # H_m H_m = m I
    np.testing.assert_allclose(H @ H, m * np.eye(m), atol=1e-9)
    with kk.options(threads=2):             # rows split over threads: the same values
        np.testing.assert_array_equal(_fourier._fwht_inplace(a.copy()), got)


def test_compiled_fwht_refuses_bad_lengths():
    from kernelkit.features import _fourier
    ext = _fourier._fwht_ext()
    if ext is None:
        pytest.skip("compiled transform not built")
    with pytest.raises(ValueError, match="power-of-2"):
        ext.fwht(np.zeros((2, 6)), 1)
    with pytest.raises(TypeError, match="C-contiguous"):
        ext.fwht(np.zeros((4, 8))[:, ::2], 1)
    # a non-contiguous or integer array takes the NumPy path instead
    a = np.arange(8.0)[::-1][::1].copy()
    np.testing.assert_allclose(_fourier.fwht(a.astype(np.int64)), _fourier._fwht_inplace(a.copy(), compiled=False))
