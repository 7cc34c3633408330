"""kernelkit.features.KernelPCA and KernelKMeans: kernel PCA and kernel k-means on explicit feature maps.

Oracles: scikit-learn's exact KernelPCA (dense eigensolver) and, for k-means,
an exact O(n^2) kernel k-means written here from the kernel matrix (Lloyd
iterations in kernel form and the objective tr(K) - sum_c 1_c^T K 1_c / n_c).
With Nystroem features on every point (M = n) both estimators must reproduce
them to rounding; with M < n the Nystroem bounds (eigenvalues and objective
underestimated, by at most the residual trace for the objective) are checked
with stated tolerances. Every streamed path is compared with the one-shot
path under a tiny memory budget or chunk size, with a counting feature map
proving that the data really went through in chunks.
"""

import warnings

import numpy as np
import pytest
from sklearn.base import BaseEstimator, TransformerMixin, clone
from sklearn.cluster import KMeans
from sklearn.datasets import make_blobs, make_circles
from sklearn.decomposition import PCA
from sklearn.decomposition import KernelPCA as SkKernelPCA
from sklearn.metrics import adjusted_rand_score
from sklearn.metrics.pairwise import rbf_kernel

import kernelkit as kk
from kernelkit.features import (KernelKMeans, KernelPCA, NystroemFeatures, PositiveRandomFeatures,
                                RandomFourierFeatures)
from kernelkit.features._kkmeans import _FeatureRows, _kmeans_plusplus, _lloyd, _sqdist


def _points(n=61, d=3, seed=0):
    return np.random.default_rng(seed).standard_normal((n, d))


def _gamma(sigma):
    """scikit-learn's rbf gamma for kernelkit's Gaussian(sigma) = exp(-|x-y|^2 / (2 sigma^2))."""
    return 1.0 / (2.0 * sigma ** 2)


def _match_signs(T, ref):
    """T with each column's sign flipped to agree with ref (components are defined up to sign)."""
    return T * np.where((T * ref).sum(axis=0) < 0, -1.0, 1.0)


class _Counting(TransformerMixin, BaseEstimator):
    """A feature map that wraps another and records the number of rows of every transform call."""

    calls = []

    def __init__(self, inner=None, random_state=None):
        self.inner = inner
        self.random_state = random_state

    def fit(self, X, y=None):
        self.inner_ = clone(self.inner)
        if self.random_state is not None:
            self.inner_.set_params(random_state=self.random_state)
        self.inner_.fit(X)
        return self

    def transform(self, X):
        _Counting.calls.append(len(X))
        return self.inner_.transform(X)


# --------------------------------------------------------------------------- exact kernel k-means (reference)
def exact_objective(K, labels):
    """Kernel k-means objective sum_i |phi(x_i) - mu_c(i)|^2 = tr(K) - sum_c (1/n_c) sum_{i,l in c} K_il."""
    J = float(np.trace(K))
    for c in np.unique(labels):
        m = labels == c
        J -= K[np.ix_(m, m)].sum() / m.sum()
    return J


def exact_kernel_kmeans(K, labels, max_iter=300):
    """Lloyd iterations in kernel form from a partition, O(n^2) per iteration:
    |phi(x_i) - mu_c|^2 = K_ii - (2/n_c) sum_{l in c} K_il + (1/n_c^2) sum_{l,m in c} K_lm."""
    labels = np.asarray(labels).copy()
    k, diag = labels.max() + 1, np.diag(K)
    for _ in range(max_iter):
        dist = np.full((len(K), k), np.inf)
        for c in range(k):
            m = labels == c
            if m.any():
                dist[:, c] = diag - 2 * K[:, m].mean(axis=1) + K[np.ix_(m, m)].mean()
        new = dist.argmin(axis=1)
        if np.array_equal(new, labels):
            break
        labels = new
    return labels


# --------------------------------------------------------------------------- KernelPCA: exact at M = n
def test_gaussian_convention_matches_sklearn_gamma():
    X = _points(20)
    np.testing.assert_allclose(kk.Gaussian(1.3)(X), rbf_kernel(X, gamma=_gamma(1.3)), rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("n_components", [1, 5, None])
def test_kpca_exact_features_equal_sklearn(n_components):
    """Nystroem on all n points: eigenvalues, fit_transform and transform equal sklearn's exact KernelPCA
    (rbf, gamma = 1 / (2 sigma^2)) up to the sign of each component, to 1e-8 relative (float64)."""
    X, Y, sigma = _points(61), _points(9, seed=1), 1.3
    k = 5 if n_components is None else n_components
    ours = KernelPCA(n_components, bandwidth=sigma, n_features=61, random_state=0)
    T = ours.fit_transform(X)[:, :k]
    sk = SkKernelPCA(k, kernel="rbf", gamma=_gamma(sigma), eigen_solver="dense")
    Ts = sk.fit_transform(X)
    assert ours.n_components_ == (61 if n_components is None else n_components)
    np.testing.assert_allclose(ours.eigenvalues_[:k], sk.eigenvalues_, rtol=1e-8)
    scale = np.abs(Ts).max()
    np.testing.assert_allclose(_match_signs(T, Ts), Ts, atol=1e-8 * scale)
    np.testing.assert_allclose(_match_signs(ours.transform(Y)[:, :k], sk.transform(Y)), sk.transform(Y),
                               atol=1e-8 * scale)


def test_kpca_any_kernel_matches_precomputed_sklearn():
    """A Laplace kernel (no sklearn 'rbf' equivalent): sklearn on the precomputed exact kernel matrix."""
    X, k = _points(47, 2, seed=3), kk.Laplace(0.9)
    ours = KernelPCA(4, kernel=k, n_features=47, random_state=0)
    T = ours.fit_transform(X)
    sk = SkKernelPCA(4, kernel="precomputed", eigen_solver="dense")
    Ts = sk.fit_transform(k(X))
    np.testing.assert_allclose(ours.eigenvalues_, sk.eigenvalues_, rtol=1e-8)
    np.testing.assert_allclose(_match_signs(T, Ts), Ts, atol=1e-8 * np.abs(Ts).max())


def test_kpca_embedding_identities():
    """T^T T = diag(eigenvalues); fit_transform = fit().transform(); explained variance as PCA on Z."""
    X = _points(53, 4, seed=2)
    kpca = KernelPCA(6, bandwidth=1.0, n_features=30, random_state=1)
    T = kpca.fit_transform(X)
    np.testing.assert_allclose(T.T @ T, np.diag(kpca.eigenvalues_), atol=1e-10 * kpca.eigenvalues_[0])
    np.testing.assert_allclose(kpca.transform(X), T, atol=1e-12 * np.abs(T).max())
    assert np.all(np.diff(kpca.eigenvalues_) <= 0) and kpca.eigenvalues_[-1] >= 0
    np.testing.assert_allclose(kpca.eigenvectors_.T @ kpca.eigenvectors_, np.eye(6), atol=1e-12)
    Z = kpca.features_.transform(X)
    np.testing.assert_allclose(kpca.mean_, Z.mean(axis=0), atol=1e-14)
    pca = PCA(6, svd_solver="full").fit(Z)
    np.testing.assert_allclose(kpca.explained_variance_, pca.explained_variance_, rtol=1e-9)
    np.testing.assert_allclose(kpca.explained_variance_ratio_, pca.explained_variance_ratio_, rtol=1e-9)
    np.testing.assert_allclose(_match_signs(T, pca.transform(Z)), pca.transform(Z), atol=1e-10 * np.abs(T).max())


def test_kpca_random_features_match_dense_reference():
    """Any feature map: eigenvalues are those of the n x n centred Gram matrix H Z Z^T H (dense reference)."""
    X = _points(40, 3, seed=4)
    for fm in (RandomFourierFeatures(kk.Gaussian(1.0), 25, random_state=0),       # D = 50 > n - 1
               PositiveRandomFeatures(kk.Gaussian(1.0), 15, random_state=0)):     # D = 15 < n
        kpca = KernelPCA(features=fm)
        T = kpca.fit_transform(X)
        Z = fm.fit(X).transform(X)
        H = np.eye(40) - 1.0 / 40
        ref = np.linalg.eigvalsh(H @ Z @ Z.T @ H)[::-1][:kpca.n_components_]
        assert kpca.n_components_ == min(40, Z.shape[1])
        np.testing.assert_allclose(kpca.eigenvalues_, np.maximum(ref, 0), atol=1e-10 * ref[0])
        np.testing.assert_allclose(np.einsum("ij,ij->j", T, T), kpca.eigenvalues_, atol=1e-10 * ref[0])


def test_kpca_nystroem_subset_close_and_below_exact():
    """M = 80 uniform centres of n = 300 (d = 3, sigma = 1.5): the top-10 eigenvalues are below the exact
    ones (Weyl: K_c - K^_c is PSD) and within 3% of them (top 5: 1.5%), for 3 seeds. Measured: at most 0.9%
    and 0.6%. The 3 leading components span the same space (principal angles' cosines > 0.999; measured
    > 0.99999)."""
    X, sigma = _points(300, 3, seed=1), 1.5
    sk = SkKernelPCA(10, kernel="rbf", gamma=_gamma(sigma), eigen_solver="dense")
    Ts = sk.fit_transform(X)
    exact = sk.eigenvalues_
    for seed in range(3):
        kpca = KernelPCA(10, bandwidth=sigma, n_features=80, random_state=seed)
        T = kpca.fit_transform(X)
        lam = kpca.eigenvalues_
        assert np.all(lam <= exact * (1 + 1e-10)), (lam, exact)
        rel = (exact - lam) / exact
        assert rel.max() < 0.03 and rel[:5].max() < 0.015, rel
        U, Us = np.linalg.qr(T[:, :3])[0], np.linalg.qr(Ts[:, :3])[0]
        assert np.linalg.svd(U.T @ Us, compute_uv=False).min() > 0.999


def test_kpca_float32():
    """float32 X: float32 embedding, eigenvalues within 1e-4 relative of float64 (same centres, M = 60) and the
    embedding within 1e-3 of its scale (measured: 3e-6 and 4e-5; Nystroem float32 rounding is amplified by
    the conditioning of K_CC, so the tolerance holds for moderate M only)."""
    X = _points(200, 3, seed=5)
    a = KernelPCA(5, bandwidth=1.5, n_features=60, random_state=0).fit(X)
    b = KernelPCA(5, bandwidth=1.5, n_features=60, random_state=0).fit(X.astype(np.float32))
    Ta, Tb = a.transform(X), b.transform(X.astype(np.float32))
    assert Tb.dtype == np.float32 and b.fit_transform(X.astype(np.float32)).dtype == np.float32
    assert b.eigenvalues_.dtype == np.float64
    np.testing.assert_allclose(b.eigenvalues_, a.eigenvalues_, rtol=1e-4)
    np.testing.assert_allclose(_match_signs(Tb, Ta), Ta, atol=1e-3 * np.abs(Ta).max())


@pytest.mark.parametrize("how", ["chunk_size", "memory"])
def test_kpca_chunked_equals_one_shot(how):
    """chunk_size = 7 or a 12 KB memory budget (30 rows per chunk) against one chunk: same fit to rounding,
    and the counting map shows the rows went through in chunks of that size."""
    X, Y = _points(61, 3, seed=6), _points(13, 3, seed=7)
    fm = _Counting(NystroemFeatures(kk.Gaussian(1.2), 25, random_state=0))
    one = KernelPCA(4, features=fm).fit(X)
    T1, Y1 = one.fit_transform(X), one.transform(Y)
    _Counting.calls.clear()
    if how == "chunk_size":
        many = KernelPCA(4, features=fm, chunk_size=7)
        Tm = many.fit_transform(X)
        Ym = many.transform(Y)
    else:
        many = KernelPCA(4, features=fm)
        with kk.options(memory=12000):
            Tm = many.fit_transform(X)
            Ym = many.transform(Y)
    size = 7 if how == "chunk_size" else 12000 // (2 * 8 * 25)
    assert max(_Counting.calls) == size and sum(c == size for c in _Counting.calls) >= 2 * (61 // size)
    np.testing.assert_allclose(many.eigenvalues_, one.eigenvalues_, rtol=1e-11)
    np.testing.assert_allclose(many.mean_, one.mean_, atol=1e-14)
    np.testing.assert_allclose(Tm, T1, atol=1e-10 * np.abs(T1).max())
    np.testing.assert_allclose(Ym, Y1, atol=1e-10 * np.abs(T1).max())


def test_kpca_random_state_and_defaults():
    X = _points(120, 2, seed=8)
    a = KernelPCA(3, random_state=0).fit(X)
    b = KernelPCA(3, random_state=0).fit(X)
    np.testing.assert_array_equal(a.eigenvalues_, b.eigenvalues_)
    ny = NystroemFeatures(kk.Gaussian(kk.median_bandwidth(X)), 100, random_state=0).fit(X)
    np.testing.assert_array_equal(a.features_.components_, ny.components_)   # the seed goes to the map
    assert a.features_.kernel_.bandwidth == kk.median_bandwidth(X)            # default: Gaussian, median
    c = KernelPCA(3, features=NystroemFeatures(kk.Gaussian(1.0), 10, random_state=5), n_features=20,
                  random_state=1).fit(X)
    assert c.features_.n_components == 20 and c.features_.random_state == 1
    assert c.eigenvectors_.shape == (20, 3) and c.get_feature_names_out().tolist() == [
        "kernelpca0", "kernelpca1", "kernelpca2"]


# --------------------------------------------------------------------------- KernelKMeans
def test_kkmeans_separates_concentric_circles_where_kmeans_fails():
    """Two circles (radii 1 and 0.3, noise 0.05, n = 400): kernel k-means (sigma = 0.3, M = 100, 5 inits,
    seed 0) recovers them (ARI > 0.99); plain k-means cuts them in halves (|ARI| < 0.1)."""
    X, y = make_circles(400, factor=0.3, noise=0.05, random_state=0)
    km = KernelKMeans(2, bandwidth=0.3, n_features=100, n_init=5, random_state=0).fit(X)
    assert adjusted_rand_score(y, km.labels_) > 0.99
    assert abs(adjusted_rand_score(y, KMeans(2, n_init=10, random_state=0).fit(X).labels_)) < 0.1
    np.testing.assert_array_equal(km.predict(X), km.labels_)
    assert km.cluster_centers_.shape == (2, 100) and km.n_iter_ >= 1


def _blobs(n=91, seed=0):
    X, _ = make_blobs(n, centers=[[0, 0], [3, 0], [0, 3]], cluster_std=1.0, random_state=seed)
    return X


def test_kkmeans_exact_features_match_exact_kernel_kmeans():
    """M = n (exact features): from the same k-means++ centres the Lloyd iterations give the labels of the
    exact kernel-form Lloyd iterations; the public estimator's labels are a fixed point of the exact
    algorithm and its inertia is the exact objective of its labels (1e-9 relative)."""
    X, kern = _blobs(), kk.Gaussian(1.0)
    K = kern(X)
    ny = NystroemFeatures(kern, 91, random_state=0).fit(X)
    for seed in range(3):
        with _FeatureRows(ny, X, 10, True, np.float64, threads=2) as src:
            C0 = _kmeans_plusplus(src, 3, np.random.default_rng(seed))
            labels, inertia, C, _ = _lloyd(src, C0, 300, 0.0)
        Z = ny.transform(X)
        start = _sqdist(Z, (Z ** 2).sum(axis=1), C0, (C0 ** 2).sum(axis=1)).argmin(axis=1)
        np.testing.assert_array_equal(labels, exact_kernel_kmeans(K, start))
        np.testing.assert_allclose(inertia, exact_objective(K, labels), rtol=1e-9)
    km = KernelKMeans(3, kernel=kern, n_features=91, n_init=3, tol=0.0, random_state=0).fit(X)
    np.testing.assert_array_equal(exact_kernel_kmeans(K, km.labels_), km.labels_)
    np.testing.assert_allclose(km.inertia_, exact_objective(K, km.labels_), rtol=1e-9)
    for j in range(3):    # centres are the feature means of their clusters
        np.testing.assert_allclose(km.cluster_centers_[j], ny.transform(X)[km.labels_ == j].mean(axis=0),
                                   atol=1e-10)


def test_kkmeans_nystroem_objective_bound():
    """M = 20 < n = 150: for the labels found, 0 <= J_K - inertia <= tr(K - K^) (J linear in K, K - K^ PSD)."""
    X, kern = _blobs(150, seed=1), kk.Gaussian(1.5)
    K = kern(X)
    for seed in range(3):
        km = KernelKMeans(3, kernel=kern, n_features=20, tol=0.0, random_state=seed).fit(X)
        Z = km.features_.transform(X)
        gap = exact_objective(K, km.labels_) - km.inertia_
        residual = float(np.trace(K) - (Z ** 2).sum())
        assert -1e-9 * km.inertia_ <= gap <= residual * (1 + 1e-9), (gap, residual)
        assert residual > 0


@pytest.mark.parametrize("how", ["chunk_size", "memory"])
def test_kkmeans_streamed_equals_kept(how):
    """Features recomputed chunk by chunk (a 4 KB budget: they do not fit), one thread, against features kept
    in memory, all threads: same labels, inertia to 1e-10, centres to 1e-10; the counting map shows the
    recomputation (at least one full pass per k-means++ centre and per Lloyd iteration)."""
    X = _blobs(101, seed=2)
    fm = _Counting(NystroemFeatures(kk.Gaussian(1.0), 15))
    kept = KernelKMeans(3, features=fm, n_init=2, random_state=0).fit(X)
    _Counting.calls.clear()
    # one thread for the streamed fit: the result must not depend on it (and the engine's thread start-up
    # on many tiny kernel blocks would dominate the test's time)
    if how == "chunk_size":
        with kk.options(memory=4000, threads=1):
            streamed = KernelKMeans(3, features=fm, n_init=2, chunk_size=25, random_state=0).fit(X)
        size = 25
    else:
        with kk.options(memory=4000, threads=1):
            streamed = KernelKMeans(3, features=fm, n_init=2, random_state=0).fit(X)
        size = 4000 // (8 * (2 * 15 + 6))
    full = sum(c == size for c in _Counting.calls)
    assert max(_Counting.calls) == size and full >= (streamed.n_iter_ + 3) * (101 // size), _Counting.calls
    np.testing.assert_array_equal(streamed.labels_, kept.labels_)
    np.testing.assert_allclose(streamed.inertia_, kept.inertia_, rtol=1e-10)
    np.testing.assert_allclose(streamed.cluster_centers_, kept.cluster_centers_, atol=1e-10)
    assert streamed.n_iter_ == kept.n_iter_
    with kk.options(memory=4000):
        np.testing.assert_array_equal(streamed.predict(X), kept.labels_)


def test_kkmeans_float32_and_api():
    X = _blobs(120, seed=3)
    a = KernelKMeans(3, bandwidth=1.0, n_features=40, random_state=0).fit(X)
    b = KernelKMeans(3, bandwidth=1.0, n_features=40, random_state=0).fit(X.astype(np.float32))
    assert b.cluster_centers_.dtype == np.float64 and b.labels_.dtype.kind == "i"
    assert adjusted_rand_score(a.labels_, b.labels_) == 1.0
    np.testing.assert_allclose(b.inertia_, a.inertia_, rtol=1e-4)
    np.testing.assert_array_equal(KernelKMeans(3, bandwidth=1.0, n_features=40, random_state=0).fit_predict(X),
                                  a.labels_)
    one = KernelKMeans(3, bandwidth=1.0, n_features=40, n_init=1, random_state=4).fit(X)
    five = KernelKMeans(3, bandwidth=1.0, n_features=40, n_init=5, random_state=4).fit(X)
    assert five.inertia_ <= one.inertia_   # the first of the five runs is the single run
    loose = KernelKMeans(3, bandwidth=1.0, n_features=40, tol=1e-1, random_state=4).fit(X)
    assert loose.n_iter_ <= one.n_iter_
    rff = KernelKMeans(3, features=RandomFourierFeatures(kk.Gaussian(1.0), 200), random_state=0).fit(X)
    assert adjusted_rand_score(a.labels_, rff.labels_) > 0.8


def test_kkmeans_one_cluster_is_total_variance():
    """k = 1: the inertia is sum_i |z_i - mean|^2 = tr(Z_c^T Z_c), the sum of all of KernelPCA's eigenvalues
    on the same features (two estimators, one identity)."""
    X = _blobs(70, seed=5)
    fm = NystroemFeatures(kk.Gaussian(1.0), 30, random_state=0)
    km = KernelKMeans(1, features=fm).fit(X)
    kpca = KernelPCA(features=fm).fit(X)
    assert kpca.n_components_ == 30 and km.n_iter_ == 2 and not km.labels_.any()
    np.testing.assert_allclose(km.inertia_, kpca.eigenvalues_.sum(), rtol=1e-10)


def test_kkmeans_duplicates_and_empty_clusters():
    """5 clusters on 3 distinct points (each repeated): no error, inertia 0, every point at distance 0."""
    X = np.repeat(np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0]]), 7, axis=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")   # M = 10 > 3 distinct centres is fine; Nystroem may drop directions
        km = KernelKMeans(5, bandwidth=0.5, n_features=10, n_init=2, random_state=0).fit(X)
    assert km.inertia_ < 1e-10 and set(km.labels_) <= set(range(5))
    assert len(set(km.labels_)) == 3


# --------------------------------------------------------------------------- bad input
def test_bad_inputs():
    X = _points(30, 3)
    with pytest.raises(ValueError, match=r"'n_components' parameter of KernelPCA must be an int in \[1, "
                                         r"min\(n_samples, n_features_out\)\] = \[1, 10\]. Got 11"):
        KernelPCA(11, n_features=10).fit(X)
    with pytest.raises(ValueError, match=r"'n_components'.*= \[1, 30\]. Got 31.*n_samples=30"):
        KernelPCA(31, features=RandomFourierFeatures(kk.Gaussian(1.0), 50)).fit(X)
    with pytest.raises(ValueError, match=r"'n_clusters' parameter of KernelKMeans must be an int in "
                                         r"\[1, n_samples\] = \[1, 30\]. Got 31.*n_samples=30"):
        KernelKMeans(31).fit(X)
    bad = X.copy()
    bad[3, 1] = np.nan
    for est in (KernelPCA(2), KernelKMeans(2)):
        with pytest.raises(ValueError, match="NaN"):
            est.fit(bad)
        with pytest.raises(ValueError, match="2D array"):
            clone(est).fit(X[:, 0])
        with pytest.raises(kk.NotFittedError):
            clone(est).transform(X) if isinstance(est, KernelPCA) else clone(est).predict(X)
        fitted = clone(est).set_params(n_features=10).fit(X)
        with pytest.raises(ValueError, match="4 features"):
            fitted.transform(_points(5, 4)) if isinstance(est, KernelPCA) else fitted.predict(_points(5, 4))
        for name, value, err in [("n_features", 0, ValueError), ("n_features", 2.5, TypeError),
                                 ("chunk_size", 0, ValueError), ("bandwidth", -1.0, ValueError),
                                 ("centers", "random", ValueError), ("features", "rff", TypeError)]:
            with pytest.raises(err, match=f"'{name}' parameter of {type(est).__name__}"):
                clone(est).set_params(**{name: value}).fit(X)
        with pytest.raises(ValueError, match=f"'bandwidth' parameter of {type(est).__name__} must be None when "
                                             "'kernel' is a Kernel object"):
            clone(est).set_params(kernel=kk.Gaussian(1.0), bandwidth=1.0).fit(X)
        with pytest.raises(ValueError, match="'kernel' parameter .* must be None when 'features' is given"):
            clone(est).set_params(kernel="laplace", features=RandomFourierFeatures()).fit(X)
        with pytest.raises(ValueError, match="'n_features' .* None when 'centers' is an array"):
            clone(est).set_params(centers=X[:5], n_features=5).fit(X)
        with pytest.raises(TypeError, match="'n_features' .* without an 'n_components'"):
            clone(est).set_params(features=_Counting(NystroemFeatures()), n_features=5).fit(X)
    with pytest.raises(ValueError, match="'n_components' parameter of KernelPCA"):
        KernelPCA(0).fit(X)
    with pytest.raises(TypeError, match="'n_components' parameter of KernelPCA"):
        KernelPCA(2.0).fit(X)
    for name, value in [("n_init", 0), ("max_iter", 0), ("tol", -1.0), ("n_clusters", 0)]:
        with pytest.raises(ValueError, match=f"'{name}' parameter of KernelKMeans"):
            KernelKMeans(**{"n_clusters": 2, name: value}).fit(X)
    with pytest.raises(TypeError, match="'random_state' parameter of KernelKMeans"):
        KernelKMeans(2, random_state="seed").fit(X)
    Xc = X.copy()
    KernelPCA(2, n_features=10).fit_transform(Xc)
    KernelKMeans(2, n_features=10).fit(Xc)
    np.testing.assert_array_equal(Xc, X)   # inputs never modified


# --------------------------------------------------------------------------- scikit-learn API checks
from sklearn.utils.estimator_checks import parametrize_with_checks  # noqa: E402


@parametrize_with_checks([KernelPCA(n_features=10), KernelKMeans(n_features=10)])
def test_sklearn_estimator_checks(estimator, check):
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="n_components=10 is larger than the number of training points")
        check(estimator)
