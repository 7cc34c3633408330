"""Compactly supported kernels: formulas on every backend and build, log k = -inf outside the support,
normalising constants by quadrature, samplers, and scikit-learn's names inside KernelDensity."""

import math

import numpy as np
import pytest
from scipy import integrate

import kernelkit as kk
from kernelkit.engine import _fused

FORMULAS = {   # phi(r / h) on the support r < h, written out here
    "epanechnikov": (kk.Epanechnikov, lambda t: 1 - t ** 2),
    "biweight": (kk.Biweight, lambda t: (1 - t ** 2) ** 2),
    "triweight": (kk.Triweight, lambda t: (1 - t ** 2) ** 3),
    "tophat": (kk.Tophat, lambda t: np.ones_like(t)),
    "triangular": (kk.Triangular, lambda t: 1 - t),
    "cosine": (kk.Cosine, lambda t: np.cos(np.pi * t / 2)),
}
RUNNABLE = ([name for name, _, needs in _fused.CLONES
             if all(_fused.cpu_features().get(f) for f in needs) and name in _fused.built_clones()]
            if kk.fused_available() else [])


def reference(name, h, X, Y):
    X, Y = np.asarray(X, np.float64), np.asarray(Y, np.float64)
    t = np.sqrt(((X[:, None, :] - Y[None, :, :]) ** 2).sum(-1)) / h
    return np.where(t < 1, FORMULAS[name][1](np.minimum(t, 1.0)), 0.0)


@pytest.mark.parametrize("name", list(FORMULAS))
@pytest.mark.parametrize("backend", ["numpy", "fused", "torch"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
def test_values_sums_and_logs_match_the_formula(name, backend, dtype):
    if backend == "fused" and not kk.fused_available():
        pytest.skip("compiled engine not built")
    if backend == "torch":
        pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    h = 1.3
    k = FORMULAS[name][0](h)
    for d in (1, 3, 12):
        X, Y = rng.normal(size=(203, d)).astype(dtype), rng.normal(size=(31, d)).astype(dtype)
        K = reference(name, h * math.sqrt(d / 3 + 0.5), X, Y)   # a support that catches some points in any d
        k = FORMULAS[name][0](h * math.sqrt(d / 3 + 0.5))
        W = rng.random((203, 2))
        tol = 2e-5 if dtype == np.float32 else 1e-12
        for memory in (None, 6000):
            got = kk.kernel_sum(k, X, Y, W, backend=backend, memory=memory)
            np.testing.assert_allclose(got, K.T @ W, rtol=tol * 4, atol=tol * 4 * (K.T @ W).max())
        with np.errstate(divide="ignore"):
            ref_log = np.log(K.sum(0))
        L = kk.kernel_logsumexp(k, X, Y, backend=backend)
        assert np.array_equal(np.isfinite(L), np.isfinite(ref_log))        # -inf exactly outside the support
        fin = np.isfinite(ref_log)
        np.testing.assert_allclose(L[fin], ref_log[fin], rtol=tol * 10, atol=tol * 10)


@pytest.mark.parametrize("clone", RUNNABLE)
def test_every_build_evaluates_the_compact_codes(restore_clone, clone):
    assert _fused.select_clone(clone) == clone
    rng = np.random.default_rng(1)
    X, Y = rng.normal(size=(333, 2)), rng.normal(size=(40, 2))
    for name, (cls, _) in FORMULAS.items():
        K = reference(name, 0.8, X, Y)
        np.testing.assert_allclose(kk.kernel_sum(cls(0.8), X, Y, backend="fused"), K.sum(0), rtol=1e-12, atol=1e-13)
        vals, idx = kk.kernel_topk(cls(0.8), X, Y, 3, backend="fused")
        np.testing.assert_allclose(vals, -np.sort(-K, axis=0)[:3].T, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("name", list(FORMULAS))
@pytest.mark.parametrize("d", [1, 2, 5])
def test_log_integral_by_quadrature(name, d):
    cls, phi = FORMULAS[name]
    h = 0.7
    # radial integral: area of the unit sphere times int_0^h phi(r / h) r^(d-1) dr
    sphere = 2 * math.pi ** (d / 2) / math.gamma(d / 2)
    val, _ = integrate.quad(lambda r: float(phi(np.array(r / h))) * r ** (d - 1), 0, h, epsabs=0, epsrel=1e-12)
    assert cls(h).log_integral(d) == pytest.approx(math.log(sphere * val), rel=1e-10, abs=1e-10)


@pytest.mark.parametrize("name", list(FORMULAS))
def test_samplers_have_the_right_radial_law(name):
    cls, phi = FORMULAS[name]
    d, h = 3, 2.0
    Z = cls(h).sample_density(40_000, d, random_state=0)
    r = np.linalg.norm(Z, axis=1) / h
    assert r.max() < 1
    # E[r^2] under the density phi(r) r^(d-1) on [0, 1]
    num, _ = integrate.quad(lambda t: float(phi(np.array(t))) * t ** (d + 1), 0, 1)
    den, _ = integrate.quad(lambda t: float(phi(np.array(t))) * t ** (d - 1), 0, 1)
    se = np.std(r ** 2) / math.sqrt(r.size)
    assert abs(np.mean(r ** 2) - num / den) < 5 * se


def test_kernel_density_with_scikit_learn_names_matches_scikit_learn():
    from sklearn.neighbors import KernelDensity as SkKDE
    rng = np.random.default_rng(2)
    X, Y = rng.normal(size=(600, 3)), 1.2 * rng.normal(size=(80, 3))
    for name in ("gaussian", "tophat", "epanechnikov", "exponential", "linear", "cosine"):
        ours = kk.KernelDensity(kernel=name, bandwidth=0.7).fit(X).score_samples(Y)
        theirs = SkKDE(kernel=name, bandwidth=0.7, rtol=0, atol=0).fit(X).score_samples(Y)
        inside = np.isfinite(ours)
        np.testing.assert_allclose(ours[inside], theirs[inside], rtol=1e-10, atol=1e-10)
        # outside every support kernelkit's density is exactly 0 (scikit-learn sometimes reports ~e^-36 there)
        if name not in ("gaussian", "exponential"):
            zero = ~inside
            assert zero.any() and np.all(theirs[zero] < -30)
    with pytest.raises(kk.InvalidValueError, match="'kernel'"):
        kk.KernelDensity(kernel="polynomial").fit(X)
    assert type(kk.KernelDensity(kernel="linear", bandwidth=1.0).fit(X).kernel_) is kk.Triangular


def test_density_of_a_compact_kernel_integrates_to_one():
    rng = np.random.default_rng(3)
    X = rng.normal(size=(50, 1))
    kde = kk.KernelDensity(kernel="epanechnikov", bandwidth=0.5).fit(X)
    val, _ = integrate.quad(lambda t: float(np.exp(kde.score_samples(np.array([[t]])))[0]), -6, 6, limit=400,
                            points=list(np.sort(np.concatenate([X[:, 0] - 0.5, X[:, 0] + 0.5]))[:100]))
    assert val == pytest.approx(1.0, abs=1e-6)
    S = kde.sample(2_000, random_state=0)
    assert np.all(np.isfinite(kde.score_samples(S)))   # every draw lies in the support
