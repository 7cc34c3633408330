"""Kernels layer: values vs scalar formulas, combinators, spectral samples,
integrals, density samples, power kernels, immutability, equality, pickling."""

import math
import pickle

import numpy as np
import pytest
from scipy import integrate, special, stats

import _reference as ref
import kernelkit.kernels as K


def _pts(n, d, seed, dtype=np.float64):
    return np.random.default_rng(seed).normal(size=(n, d)).astype(dtype)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.kernel_cases(where=lambda case: ref.is_radial(case.ref))
def test_radial_kernels_match_scalar_formula(kernel_case, dtype):
    k = kernel_case.kernel
    X, Y = _pts(7, 3, 0, dtype), _pts(5, 3, 1, dtype)
    got = k(X, Y)
    assert got.shape == (7, 5) and got.dtype == dtype
    want = ref.double_loop_matrix(kernel_case.ref, X, Y)
    tol = ref.tol("block", dtype)
    np.testing.assert_allclose(got, want, rtol=tol, atol=tol)
    np.testing.assert_allclose(k.diag(X), np.diag(k(X)), rtol=tol)
    np.testing.assert_allclose(k.diag(X), 1.0)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dense_block_matches_reference(kernel_case, dtype):
    """Every kernel case (dot products and combinators included): k(X, Y) and k.diag(X) vs the formulas."""
    k = kernel_case.kernel
    X, Y = _pts(6, 4, 2, dtype), _pts(3, 4, 3, dtype)
    got = k(X, Y)
    assert got.shape == (6, 3) and got.dtype == dtype
    want = ref.double_loop_matrix(kernel_case.ref, X, Y)
    tol = ref.tol("block", dtype)
    bound = tol * np.abs(want)
    if ref.has_dot(kernel_case.ref):  # x . y may cancel: rounding errors scale with |x| |y|
        bound += 8 * np.finfo(dtype).eps * ref.envelope_matrix(kernel_case.ref, X, Y)
    err = np.abs(got - want)
    assert np.all(err <= bound), f"max error {err.max():.3e}, {np.max(err / bound):.3g} times the bound"
    diag_want = np.diag(ref.double_loop_matrix(kernel_case.ref, X, X))
    np.testing.assert_allclose(k.diag(X), diag_want, rtol=tol)
    np.testing.assert_allclose(k.diag(X), np.diag(k(X)), rtol=tol)


@pytest.mark.parametrize("nu", [0.5, 1.5, 2.5])
def test_reference_matern_closed_forms_are_the_bessel_definition(nu):
    """The reference closed forms (through which kernelkit's are tested) equal the K_nu definition."""
    r2 = np.concatenate([[0.0], np.geomspace(1e-8, 400.0, 200)])
    for ell in (0.6, 0.9, 1.1):
        np.testing.assert_allclose(ref.matern(r2, nu, ell), ref.matern_bessel(r2, nu, ell),
                                   rtol=ref.tol("reference", np.float64), atol=1e-300)


@pytest.mark.parametrize("nu", [0.5, 1.5, 2.5])
def test_matern_closed_forms_match_bessel_branch(nu):
    X = _pts(9, 2, 4)
    closed = K.Matern(nu, 0.8)(X)
    near = K.Matern(nu + 1e-9, 0.8)(X)  # goes through the scipy.special.kve path
    np.testing.assert_allclose(closed, near, rtol=1e-6, atol=1e-9)


def test_laplace_is_matern_half():
    X = _pts(8, 3, 5)
    np.testing.assert_allclose(K.Laplace(0.6)(X), K.Matern(0.5, 0.6)(X), rtol=1e-12)


def test_combinators_match_definition():
    X, Y = _pts(5, 2, 6), _pts(4, 2, 7)
    a, b = K.Gaussian(0.5), K.Laplace(2.0)
    np.testing.assert_allclose((a + b)(X, Y), a(X, Y) + b(X, Y), rtol=1e-12)
    np.testing.assert_allclose((a * b)(X, Y), a(X, Y) * b(X, Y), rtol=1e-12)
    np.testing.assert_allclose((3.0 * a)(X, Y), 3.0 * a(X, Y), rtol=1e-12)
    np.testing.assert_allclose((a * 2)(X, Y), 2.0 * a(X, Y), rtol=1e-12)
    np.testing.assert_allclose(K.SumKernel(a, b, a)(X, Y), 2 * a(X, Y) + b(X, Y), rtol=1e-12)
    np.testing.assert_allclose(K.ProductKernel(a, b).log_block(X, Y), np.log(a(X, Y) * b(X, Y)), rtol=1e-10)
    for k in (a + b, a * b, 3.0 * a):
        np.testing.assert_allclose(k.diag(X), np.diag(k(X)), rtol=1e-12)
    with pytest.raises(TypeError):
        a + 1.0
    with pytest.raises(TypeError):
        K.SumKernel(a, "b")


@pytest.mark.parametrize("k", [K.Gaussian(0.8), K.Laplace(1.1), K.Matern(1.5, 0.9), K.Matern(2.5, 1.2),
                               K.RationalQuadratic(0.9, 1.5), K.IMQ(1.0, 0.5)], ids=repr)
def test_spectral_sample_monte_carlo(k):
    d, D = 2, 200_000
    W = k.spectral_sample(d, D, np.random.default_rng(11))
    assert W.shape == (D, d)
    diffs = _pts(6, d, 12) * 0.8
    mc = np.cos(W @ diffs.T).mean(axis=0)
    exact = k(diffs, np.zeros((1, d)))[:, 0]
    # Monte Carlo standard error <= 1/sqrt(2D) ~ 0.0016; allow 5 sigma
    np.testing.assert_allclose(mc, exact, atol=0.008)


def _radial_integral(k, d):
    phi = lambda r: float(k.profile(np.array(r * r)))
    area = 2 * math.pi ** (d / 2) / math.gamma(d / 2)
    return area * integrate.quad(lambda r: phi(r) * r ** (d - 1), 0, np.inf, limit=200)[0]


INTEGRABLE = [K.Gaussian(0.8), K.Laplace(1.1), K.Matern(1.5, 0.9), K.Matern(0.8, 1.2),
              K.RationalQuadratic(0.9, 4.0), K.IMQ(1.3, 3.5)]


@pytest.mark.parametrize("k", INTEGRABLE, ids=repr)
def test_log_integral_vs_quadrature(k):
    one_d = 2 * integrate.quad(lambda r: float(k.profile(np.array(r * r))), 0, np.inf, limit=200)[0]
    np.testing.assert_allclose(math.exp(k.log_integral(1)), one_d, rtol=1e-6)
    polar = integrate.dblquad(lambda r, t: float(k.profile(np.array(r * r))) * r, 0, 2 * math.pi, 0, np.inf)[0]
    np.testing.assert_allclose(math.exp(k.log_integral(2)), polar, rtol=1e-6)
    for d in (3, 5):
        np.testing.assert_allclose(math.exp(k.log_integral(d)), _radial_integral(k, d), rtol=1e-6)


def test_log_integral_errors():
    with pytest.raises(ValueError, match="not integrable"):
        K.IMQ(1.0, 0.5).log_integral(1)
    with pytest.raises(NotImplementedError):
        K.Linear().log_integral(2)
    with pytest.raises(ValueError, match="'d'"):
        K.Gaussian().log_integral(0)


# general-nu Matern: a Kolmogorov-Smirnov test against a CDF by nested quadrature of Bessel functions (4-11 s)
SLOW_DENSITY = {K.Matern(0.8, 1.2)}


@pytest.mark.parametrize("k", [pytest.param(k, marks=pytest.mark.slow) if k in SLOW_DENSITY else k
                               for k in INTEGRABLE], ids=repr)
@pytest.mark.parametrize("d", [1, 3])
def test_sample_density_statistics(k, d):
    n = 4000
    x = k.sample_density(n, d, np.random.default_rng(21))
    assert x.shape == (n, d)
    r = np.linalg.norm(x, axis=1)
    # radial density of |x|: f(r) propto phi(r) r^(d-1)
    f = lambda t: float(k.profile(np.array(t * t))) * t ** (d - 1)
    mass = integrate.quad(f, 0, np.inf, limit=200)[0]
    cdf = lambda t: integrate.quad(f, 0, t, limit=200)[0] / mass
    ks = stats.kstest(r, np.vectorize(cdf))
    assert ks.pvalue > 1e-3
    if isinstance(k, K.RationalQuadratic) and 2 * k._exponent - d <= 2.5:
        return  # heavy tails: second moment infinite or too noisy
    m2 = integrate.quad(lambda t: f(t) * t * t, 0, np.inf, limit=200)[0] / mass
    se = np.std(r ** 2) / math.sqrt(n)
    assert abs(np.mean(r ** 2) - m2) < 5 * se


def test_sum_kernel_density_is_mixture():
    k = K.Gaussian(0.5) + K.Laplace(1.0)
    np.testing.assert_allclose(math.exp(k.log_integral(2)),
                               math.exp(K.Gaussian(0.5).log_integral(2)) + math.exp(K.Laplace(1.0).log_integral(2)))
    x = k.sample_density(3000, 2, np.random.default_rng(3))
    assert x.shape == (3000, 2)


def _ft(k, w):
    phi = lambda r: float(k.profile(np.array(r * r)))
    if w == 0:
        return 2 * integrate.quad(phi, 0, np.inf, limit=400)[0]
    return 2 * integrate.quad(phi, 0, np.inf, weight="cos", wvar=w, limit=400)[0]


@pytest.mark.parametrize("k", [K.Gaussian(0.9), K.Laplace(1.0), K.Matern(1.5, 0.8),
                               K.Matern(2.5, 1.1), K.Matern(0.8, 1.0)], ids=repr)
@pytest.mark.parametrize("alpha", [0.5, 0.75])
def test_power_kernel_fourier_transform(k, alpha):
    if isinstance(k, K.Matern) and alpha * (k.nu + 0.5) - 0.5 <= 0:
        with pytest.raises(ValueError, match="alpha"):
            k.power(alpha, 1)
        return
    kp = k.power(alpha, 1)
    h0, hp0 = _ft(k, 0.0), _ft(kp, 0.0)
    for w in (0.3, 1.0, 2.2):
        np.testing.assert_allclose(_ft(kp, w) / hp0, (_ft(k, w) / h0) ** alpha, rtol=2e-4)


@pytest.mark.parametrize("k", [K.Gaussian(0.9), K.Matern(1.5, 0.8), K.Matern(2.5, 1.1)], ids=repr)
def test_root_kernel_convolution(k):
    rt = k.power(0.5, 1)
    phi = lambda r: float(rt.profile(np.array(r * r)))
    conv = lambda x: integrate.quad(lambda z: phi(z) * phi(x - z), -np.inf, np.inf, limit=400)[0]
    c0 = conv(0.0)
    for x in (0.4, 1.0, 2.5):
        np.testing.assert_allclose(conv(x) / c0, float(k.profile(np.array(x * x))), rtol=1e-5)


def test_power_errors():
    with pytest.raises(ValueError, match="'d'"):
        K.Matern(1.5).power(0.5)
    with pytest.raises(ValueError, match="'alpha'"):
        K.Gaussian().power(-1.0)
    with pytest.raises(NotImplementedError):
        K.Linear().power(0.5, 2)


def test_immutability_equality_hash_pickle():
    k = K.Matern(1.5, 0.7)
    with pytest.raises(AttributeError):
        k.bandwidth = 2.0
    with pytest.raises(AttributeError):
        (k + K.Gaussian()).kernels = ()
    assert k == K.Matern(1.5, 0.7) and hash(k) == hash(K.Matern(1.5, 0.7))
    assert k != K.Matern(2.5, 0.7) and K.Laplace(1.0) != K.Matern(0.5, 1.0)
    assert len({K.Gaussian(1.0), K.Gaussian(1.0), K.Gaussian(2.0)}) == 2
    for obj in (k, K.IMQ(2.0, 0.7), 2.0 * K.Gaussian(0.3) + K.Laplace() * K.Linear(1.0), K.Polynomial(3)):
        back = pickle.loads(pickle.dumps(obj))
        assert back == obj and back.spec == obj.spec
        X = _pts(4, 2, 9)
        np.testing.assert_array_equal(back(X), obj(X))
    assert k.family == "matern" and k.spec[0] == "matern"


def test_make_kernel_names_and_errors():
    assert K.make_kernel("RBF", bandwidth=0.5) == K.Gaussian(0.5)
    assert K.make_kernel("matern32", bandwidth=2.0) == K.Matern(1.5, 2.0)
    assert K.make_kernel("imq", beta=1.5) == K.IMQ(1.0, 1.5)
    g = K.Gaussian()
    assert K.make_kernel(g) is g
    with pytest.raises(ValueError, match="'kernel'.*Got 'nope'"):
        K.make_kernel("nope")
    with pytest.raises(ValueError):
        K.make_kernel(g, bandwidth=1.0)
    with pytest.raises(TypeError, match="gaussian"):
        K.make_kernel("gaussian", nu=2)
    with pytest.raises(ValueError, match="'bandwidth'.*Got -1"):
        K.make_kernel("gaussian", bandwidth=-1)


def test_inputs_not_modified_and_errors():
    X = _pts(5, 2, 1)
    X0 = X.copy()
    K.Gaussian()(X, X)
    np.testing.assert_array_equal(X, X0)
    with pytest.raises(ValueError, match="'Y'"):
        K.Gaussian()(X, _pts(3, 4, 1))
    with pytest.raises(TypeError, match="log k"):
        K.Linear().log_block(X, X)


@pytest.mark.parametrize("beta", [0.5, 1.3])
def test_imq_power_only_exact_alpha_one(beta):
    k = K.IMQ(1.2, beta)
    assert k.power(1.0, 2) == k
    with pytest.raises(NotImplementedError, match="no closed form"):
        k.power(0.5, 1)
    with pytest.raises(ValueError, match="'alpha'"):
        k.power(0.0)
    # the docstring's claim: the 1-D Fourier transform is |w|^(beta-1/2) K_(1/2-beta)(c|w|) up to a constant
    bessel = lambda w: w ** (beta - 0.5) * special.kv(0.5 - beta, 1.2 * w)
    ratios = [_ft(k, w) / bessel(w) for w in (0.3, 1.0, 2.5)]
    np.testing.assert_allclose(ratios, ratios[0], rtol=1e-5)


def test_user_subclass_is_frozen_after_its_own_init():
    class Wide(K.Gaussian):
        def __init__(self, bandwidth):
            super().__init__(bandwidth)
            self.note = "set during construction"

    w = Wide(2.0)
    assert w.note == "set during construction" and w.bandwidth == 2.0
    with pytest.raises(AttributeError, match="immutable"):
        w.note = "later"
    with pytest.raises(AttributeError, match="immutable"):
        K.Gaussian(1.0).power(0.5).bandwidth = 3.0
    back = pickle.loads(pickle.dumps(K.Matern(0.8, 1.0)))
    with pytest.raises(AttributeError):
        back.nu = 1.0
