"""Kernel families: one definition, every evaluator.

The periodic and spectral mixture kernels against formulas written here from
their definitions (scikit-learn's ExpSineSquared, Wilson & Adams 2013), a toy
family added with one class and one table entry, run through the fused
engine, the thinning walk and torch, and user subclasses: honoured on the
NumPy path, refused by torch, never silently replaced.
"""

import math

import numpy as np
import pytest

import kernelkit as kk
from kernelkit import engine
from kernelkit.compress import kernel_thin
from kernelkit.compress._kernelspec import compile_kernel
from kernelkit.engine import _components, _torch
from kernelkit.kernels import NUMPY, Gaussian, RadialKernel

try:
    import torch  # noqa: F401
    HAVE_TORCH = True
except ImportError:
    HAVE_TORCH = False

needs_fused = pytest.mark.skipif(not kk.fused_available(), reason="compiled engine not built")
needs_torch = pytest.mark.skipif(not HAVE_TORCH, reason="torch not installed")
RTOL = {np.float32: 2e-5, np.float64: 1e-12}


# ---- references, from the definitions ------------------------------------------------

def periodic_ref(X, Y, ell, period):
    r = np.sqrt(((X[:, None, :] - Y[None, :, :]) ** 2).sum(-1))
    return np.exp(-2.0 * np.sin(np.pi * r / period) ** 2 / ell ** 2)


def spectral_mixture_ref(X, Y, w, mu, s):
    tau = X[:, None, :] - Y[None, :, :]
    out = np.zeros(tau.shape[:2])
    for q in range(len(w)):
        env = np.exp(-2 * np.pi ** 2 * (tau ** 2 * s[q] ** 2).sum(-1))
        out += w[q] * env * np.cos(2 * np.pi * tau @ mu[q])
    return out


def _data(n, m, d, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, d)), rng.normal(size=(m, d)), rng.normal(size=(n, 2))


def _sm(d, seed=1):
    rng = np.random.default_rng(seed)
    w = np.array([1.0, 0.4, 0.25])
    mu = rng.normal(size=(3, d))
    s = np.abs(rng.normal(size=(3, d))) * 0.5 + 0.1
    return kk.SpectralMixture(w, mu, s), (w, mu, s)


# ---- the two families ----------------------------------------------------------------

def test_periodic_matches_scikit_learn_exp_sine_squared():
    from sklearn.gaussian_process.kernels import ExpSineSquared
    X, Y, _ = _data(40, 30, 2)
    k = kk.Periodic(bandwidth=0.8, period=1.7)
    np.testing.assert_allclose(k(X, Y), ExpSineSquared(length_scale=0.8, periodicity=1.7)(X, Y), rtol=1e-12)
    np.testing.assert_allclose(k(X, Y), periodic_ref(X, Y, 0.8, 1.7), rtol=1e-12)


def test_periodic_is_exact_at_large_distances():
    # r / p reduced to [-1/2, 1/2] before the sine: whole periods away is k = 1 to rounding
    k = kk.Periodic(bandwidth=0.5, period=0.25)
    X = np.array([[0.0], [1e6], [1e6 + 0.125]])
    K = kk.kernel_block(k, X)
    assert abs(K[0, 1] - 1.0) < 1e-9
    np.testing.assert_allclose(K[0, 2], math.exp(-2 / 0.25), rtol=1e-6)


@pytest.mark.parametrize("d", [1, 3])
def test_spectral_mixture_matches_definition(d):
    k, (w, mu, s) = _sm(d)
    X, Y, _ = _data(25, 20, d)
    np.testing.assert_allclose(k(X, Y), spectral_mixture_ref(X, Y, w, mu, s), rtol=1e-10, atol=1e-13)
    np.testing.assert_allclose(k.diag(X), w.sum())
    assert k.is_radial == (d == 1) and not k.is_positive


def test_spectral_mixture_one_dimension_agrees_with_gpytorch_form():
    # GPyTorch (product of 1-D cosines) and Wilson & Adams (cosine of mu . tau) agree for d = 1
    k, (w, mu, s) = _sm(1)
    X, Y, _ = _data(15, 12, 1)
    tau = X - Y.T
    gp = sum(w[q] * np.exp(-2 * np.pi ** 2 * tau ** 2 * s[q, 0] ** 2) * np.cos(2 * np.pi * tau * mu[q, 0])
             for q in range(3))
    np.testing.assert_allclose(k(X, Y), gp, rtol=1e-10, atol=1e-13)


@pytest.mark.parametrize("bad", [
    dict(weights=[1.0, -1.0], means=[[0.1], [0.2]], scales=[[1.0], [1.0]]),
    dict(weights=[1.0], means=[[0.1], [0.2]], scales=[[1.0], [1.0]]),
    dict(weights=[1.0, 1.0], means=[[0.1], [0.2]], scales=[[1.0], [0.0]]),
    dict(weights=[1.0, 1.0], means=[[0.1], [np.nan]], scales=[[1.0], [1.0]]),
])
def test_spectral_mixture_rejects_bad_parameters(bad):
    with pytest.raises(ValueError, match="SpectralMixture"):
        kk.SpectralMixture(**bad)


def test_spectral_mixture_checks_the_dimension():
    k, _ = _sm(2)
    X = np.zeros((4, 3))
    with pytest.raises(ValueError, match="must have 2 feature"):
        kk.kernel_sum(k, X, X)


def test_periodic_rejects_bad_period():
    with pytest.raises(ValueError, match="'period'"):
        kk.Periodic(1.0, period=-2.0)


@pytest.mark.parametrize("kernel", [kk.Periodic(0.9, 0.7), _sm(1)[0]], ids=["periodic", "sm1"])
def test_spectral_samples_reproduce_the_kernel(kernel):
    # k(tau) / k(0) = E cos(w tau): Monte Carlo over 200k frequencies, 5-sigma band
    w = kernel.spectral_sample(1, 200_000, random_state=4)
    tau = np.array([0.0, 0.3, 1.1, 2.5])
    est = np.cos(w[:, :1] * tau[None, :]).mean(0)
    exact = kernel(tau[:, None], np.zeros((1, 1)))[:, 0] / kernel.diag(np.zeros((1, 1)))[0]
    assert np.all(np.abs(est - exact) < 5 / math.sqrt(200_000))


def test_periodic_has_no_spectral_sample_in_several_dimensions():
    with pytest.raises(ValueError, match="must be 1"):
        kk.Periodic().spectral_sample(2, 10)


def test_spectral_sample_random_state_and_deprecated_rng():
    k = kk.Gaussian(1.0)
    a = k.spectral_sample(2, 5, random_state=3)
    np.testing.assert_array_equal(a, k.spectral_sample(2, 5, np.random.SeedSequence(3)))
    with pytest.warns(DeprecationWarning, match="'rng'"):
        b = k.spectral_sample(2, 5, rng=3)
    np.testing.assert_array_equal(a, b)


# ---- every evaluator -------------------------------------------------------------------

FAMILY_CASES = {
    "periodic": kk.Periodic(0.8, 1.3),
    "periodic+gauss": kk.Gaussian(1.0) + 2.0 * kk.Periodic(1.2, 0.5),
    "sm-d1": _sm(1)[0],
    "sm-d3": _sm(3)[0],
    "3*sm-d3+laplace": 3.0 * _sm(3)[0] + kk.Laplace(1.0),
}


def _ref_sum(kernel, X, Y, W):
    return kk.kernel_block(kernel, X.astype(np.float64), Y.astype(np.float64)).T @ W


@needs_fused
@pytest.mark.parametrize("case", list(FAMILY_CASES))
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("memory", [None, 4096], ids=["default", "tiny"])
def test_fused_engine_runs_the_families(case, dtype, memory):
    kernel = FAMILY_CASES[case]
    d = 1 if "d1" in case or case.startswith("periodic") else 3
    X, Y, W = _data(301, 47, d)
    ref = _ref_sum(kernel, X, Y, W)
    got = kk.kernel_sum(kernel, X.astype(dtype), Y.astype(dtype), W, backend="fused", memory=memory)
    scale = np.abs(W).sum(0) * max(1.0, float(np.abs(kernel.diag(X[:1]))[0]))
    assert np.all(np.abs(got - ref) <= RTOL[dtype] * scale)


@needs_fused
def test_fused_log_sum_exp_and_topk_for_periodic():
    k = kk.Periodic(0.6, 0.9)
    X, Y, _ = _data(200, 30, 1)
    L = kk.kernel_logsumexp(k, X, Y, backend="fused")
    np.testing.assert_allclose(L, np.log(k(X, Y).sum(0)), rtol=1e-12)
    v, i = kk.kernel_topk(k, X, Y, 4, backend="fused")
    vr, ir = kk.kernel_topk(k, X, Y, 4, backend="numpy")
    np.testing.assert_allclose(v, vr, rtol=1e-12)


@needs_torch
@pytest.mark.parametrize("case", list(FAMILY_CASES))
def test_torch_runs_the_families(case):
    kernel = FAMILY_CASES[case]
    d = 1 if "d1" in case or case.startswith("periodic") else 3
    X, Y, W = _data(150, 40, d)
    got = kk.kernel_sum(kernel, X, Y, W, backend="torch")
    np.testing.assert_allclose(got, _ref_sum(kernel, X, Y, W), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("case", ["periodic", "sm-d1"])
def test_compiled_walk_covers_one_dimensional_families(case):
    assert compile_kernel(FAMILY_CASES[case]) is not None
    assert compile_kernel(FAMILY_CASES["sm-d3"]) is None   # d >= 2: the NumPy walk, on engine sums


@pytest.mark.parametrize("case", ["periodic", "sm-d1", "sm-d3"])
def test_kernel_thinning_with_the_families(case):
    # the compiled walk (d = 1) and the NumPy walk agree pair by pair; both beat i.i.d. thinning
    kernel = FAMILY_CASES[case]
    d = 3 if case == "sm-d3" else 1
    X = np.random.default_rng(5).normal(size=(1024, d))
    fast = kernel_thin(X, 64, kernel, method="kt", random_state=2, return_result=True, with_mmd=True)
    with kk.options(backend="numpy"):
        slow = kernel_thin(X, 64, kernel, method="kt", random_state=2, return_result=True, with_mmd=True)
    np.testing.assert_array_equal(fast.indices, slow.indices)
    iid = [kk.mmd(X, X[np.random.default_rng(s).choice(1024, 64, replace=False)], kernel) for s in range(5)]
    assert fast.mmd < np.median(iid)


# ---- adding a family: one class, one table entry ----------------------------------------

class TwoScale(RadialKernel):
    """Toy family: (exp(-r^2 / (2 s^2)) + exp(-r^2 / (8 s^2))) / 2."""

    family = "two_scale"

    def _log_profile(self, r2, xp=NUMPY):
        g = -0.5 / self.bandwidth ** 2
        return xp.log(0.5 * xp.exp(g * r2) + 0.5 * xp.exp(0.25 * g * r2))


engine.register_family(TwoScale, lambda k: [
    engine.Component("gauss", 0.5, 0.5 / k.bandwidth ** 2, 0.0, 0),
    engine.Component("gauss", 0.5, 0.125 / k.bandwidth ** 2, 0.0, 0)])


def _two_scale_ref(X, Y, s):
    r2 = ((X[:, None, :] - Y[None, :, :]) ** 2).sum(-1)
    return 0.5 * np.exp(-r2 / (2 * s * s)) + 0.5 * np.exp(-r2 / (8 * s * s))


@pytest.mark.parametrize("backend", ["numpy", "fused", "torch"])
def test_toy_family_runs_through_every_backend(backend):
    if backend == "fused" and not kk.fused_available():
        pytest.skip("compiled engine not built")
    if backend == "torch" and not HAVE_TORCH:
        pytest.skip("torch not installed")
    X, Y, W = _data(120, 33, 2)
    got = kk.kernel_sum(TwoScale(0.7), X, Y, W, backend=backend)
    np.testing.assert_allclose(got, _two_scale_ref(X, Y, 0.7).T @ W, rtol=1e-10, atol=1e-12)


def test_toy_family_runs_through_the_compiled_walk():
    X = np.random.default_rng(3).normal(size=(512, 2))
    assert compile_kernel(TwoScale(0.7)) is not None
    fast = kernel_thin(X, 32, TwoScale(0.7), method="kt", random_state=1)
    with kk.options(backend="numpy"):
        slow = kernel_thin(X, 32, TwoScale(0.7), method="kt", random_state=1)
    np.testing.assert_array_equal(fast, slow)


def test_register_family_checks_its_arguments():
    with pytest.raises(TypeError, match="'cls'"):
        engine.register_family(int, lambda k: [])
    with pytest.raises(TypeError, match="'components'"):
        engine.register_family(TwoScale, "gauss")


# ---- subclasses: honoured or refused, never replaced --------------------------------------

class SharperGaussian(Gaussian):
    """Overrides the public log_profile (NumPy only)."""

    def log_profile(self, r2):
        return 2.0 * super().log_profile(r2)


class XpGaussian(Gaussian):
    """Overrides the formula itself, for every namespace."""

    def _log_profile(self, r2, xp=NUMPY):
        return r2 * (-1.0 / self.bandwidth ** 2)


class PlainGaussian(Gaussian):
    """Changes nothing about the evaluation."""


def test_subclass_that_changes_the_formula_leaves_the_compiled_paths():
    X, Y, W = _data(80, 20, 2)
    ref = np.exp(-((X[:, None] - Y[None]) ** 2).sum(-1)).T @ W      # sigma = 1, doubled log
    got = kk.kernel_sum(SharperGaussian(1.0), X, Y, W)               # auto: the NumPy path, its own methods
    np.testing.assert_allclose(got, ref, rtol=1e-12)
    assert _components.kernel_components(SharperGaussian(1.0)) is None
    assert _components.kernel_components(PlainGaussian(1.0)) is not None
    assert compile_kernel(SharperGaussian(1.0)) is None


@needs_torch
def test_torch_refuses_a_numpy_only_override_and_honours_an_xp_one():
    X, Y, W = _data(60, 10, 2)
    with pytest.raises(ValueError, match="SharperGaussian.log_profile"):
        kk.kernel_sum(SharperGaussian(1.0), X, Y, W, backend="torch")
    ref = np.exp(-((X[:, None] - Y[None]) ** 2).sum(-1)).T @ W
    np.testing.assert_allclose(kk.kernel_sum(XpGaussian(1.0), X, Y, W, backend="torch"), ref, rtol=1e-10)
    assert _torch.refusal(PlainGaussian(1.0)) is None
    assert _torch.refusal(kk.Matern(1.5)) is None   # closed-form smoothness: torch evaluates it
    assert "Bessel" in _torch.refusal(kk.Matern(0.8))


@needs_fused
def test_compiled_codes_come_from_the_one_header():
    from kernelkit.compress import _kt_ext
    from kernelkit.engine import _fused_ext
    assert _fused_ext.CODE_NAMES == _kt_ext.CODE_NAMES
    assert _fused_ext.MAX_COMPONENTS == _kt_ext.MAX_COMPONENTS == engine.MAX_COMPONENTS
    table_names = {c.name for k in (kk.Gaussian(), kk.Laplace(), kk.Matern(1.5), kk.Matern(2.5), kk.IMQ(),
                                    kk.Polynomial(), kk.Periodic(), _sm(1)[0])
                   for c in engine.kernel_components(k)}
    assert table_names <= set(_components.CODE_NAMES)


@needs_fused
def test_walk_takes_as_many_components_as_the_engine():
    k = sum((kk.Gaussian(0.5 + 0.1 * i) for i in range(engine.MAX_COMPONENTS)), kk.Gaussian(0.1)) 
    assert compile_kernel(k) is None   # MAX_COMPONENTS + 1 terms
    k8 = kk.SumKernel(*[kk.Gaussian(0.5 + 0.1 * i) for i in range(engine.MAX_COMPONENTS)])
    assert compile_kernel(k8) is not None
    X = np.random.default_rng(0).normal(size=(256, 2))
    fast = kernel_thin(X, 16, k8, method="kt", random_state=0)
    with kk.options(backend="numpy"):
        slow = kernel_thin(X, 16, k8, method="kt", random_state=0)
    np.testing.assert_array_equal(fast, slow)
