"""KSD statistics and tests: explicit matrices, calibration and power at fixed seeds, bad input."""

import math

import numpy as np
import pytest
from scipy.stats import binom

import kernelkit as kk
from kernelkit.stats import SteinKernel, TestResult, ksd, ksd_test, ksdagg_test, perturbed_ksd_test


def std_score(x):
    return -np.asarray(x, dtype=np.float64)


def binom_99(n, p=0.05):
    """The two-sided 99% interval of Binomial(n, p)."""
    return binom.ppf(0.005, n, p), binom.ppf(0.995, n, p)


def test_u_and_v_statistics_match_the_explicit_matrix(dtype, rng):
    X = rng.standard_normal((29, 3)).astype(dtype) + 0.2
    H = SteinKernel(kk.IMQ(1.1), std_score)(X)
    n = X.shape[0]
    u = (H.sum() - np.trace(H)) / (n * (n - 1))
    v = H.sum() / n ** 2
    tol = 1e-5 if dtype == np.float32 else 1e-12
    assert ksd(X, std_score, kk.IMQ(1.1)) == pytest.approx(u, rel=tol, abs=tol * np.abs(H).mean())
    assert ksd(X, std_score, kk.IMQ(1.1), unbiased=False) == pytest.approx(v, rel=tol)
    assert ksd(X, std_score(X), kk.IMQ(1.1)) == pytest.approx(u, rel=tol, abs=tol * np.abs(H).mean())  # precomputed
    # by name: the median heuristic on X
    bw = kk.median_bandwidth(X)
    assert ksd(X, std_score, "gaussian") == pytest.approx(ksd(X, std_score, kk.Gaussian(bw)), rel=1e-12)
    with kk.options(memory=2048):
        assert ksd(X, std_score, kk.IMQ(1.1)) == pytest.approx(u, rel=tol, abs=tol * np.abs(H).mean())


def test_bootstrap_is_the_same_under_a_tiny_memory_budget(rng):
    X = rng.standard_normal((33, 2)) + 0.3
    a = ksd_test(X, std_score, n_bootstrap=50, random_state=1)
    with kk.options(memory=5000):  # a couple of rows of H a block
        b = ksd_test(X, std_score, n_bootstrap=50, random_state=1)
        c = ksdagg_test(X, std_score, bandwidths=[0.5, 1.0], n_bootstrap=50, random_state=1)
    np.testing.assert_allclose(b.null, a.null, rtol=1e-10, atol=1e-14)
    assert b.statistic == pytest.approx(a.statistic, rel=1e-10)
    d = ksdagg_test(X, std_score, bandwidths=[0.5, 1.0], n_bootstrap=50, random_state=1)
    np.testing.assert_allclose(c.details["statistics"], d.details["statistics"], rtol=1e-10)
    np.testing.assert_allclose(c.details["quantiles"], d.details["quantiles"], rtol=1e-10)
    # the bootstrap statistics against the explicit matrix: eps^T (H - diag H) eps / (n (n - 1))
    H = SteinKernel(kk.IMQ(kk.median_bandwidth(X)), std_score)(X)
    np.fill_diagonal(H, 0.0)
    E = np.random.default_rng(1).integers(0, 2, size=(33, 50), dtype=np.int8).astype(float) * 2 - 1
    np.testing.assert_allclose(a.null, np.einsum("ib,ij,jb->b", E, H, E) / (33 * 32), rtol=1e-9, atol=1e-14)


def test_u_statistic_is_unbiased_under_the_null_and_v_is_not():
    """200 samples of N(0, I_2), n = 40: mean U-statistic within 4 SE of 0; V above by E k_p(x, x) / n."""
    rng = np.random.default_rng(11)
    us, vs = [], []
    for _ in range(200):
        X = rng.standard_normal((40, 2))
        us.append(ksd(X, std_score, kk.IMQ(1.0)))
        vs.append(ksd(X, std_score, kk.IMQ(1.0), unbiased=False))
    us, vs = np.array(us), np.array(vs)
    assert abs(us.mean()) < 4 * us.std() / math.sqrt(us.size)
    assert vs.mean() > us.mean() + 10 * us.std() / math.sqrt(us.size)


def test_wild_bootstrap_is_calibrated():
    """Type-I error over 300 null samples (n = 40, B = 199) inside the binomial 99% interval."""
    rng = np.random.default_rng(12)
    rej = 0
    for r in range(300):
        X = rng.standard_normal((40, 2))
        res = ksd_test(X, std_score, kk.IMQ(1.0), n_bootstrap=199, random_state=r)
        assert res.reject == (res.pvalue <= 0.05) == (res.statistic > res.threshold)
        rej += res.reject
    lo, hi = binom_99(300)
    assert lo <= rej <= hi, rej


def test_power_on_a_shifted_gaussian_and_result_fields():
    rng = np.random.default_rng(13)
    X = rng.standard_normal((200, 3)) + np.array([0.4, 0.0, 0.0])
    res = ksd_test(X, std_score, n_bootstrap=300, random_state=0)
    assert isinstance(res, TestResult) and res.reject and res.pvalue == pytest.approx(1 / 301)
    assert res.null.shape == (300,) and res.details["bandwidth"] == pytest.approx(kk.median_bandwidth(X))
    res_v = ksd_test(X, std_score, unbiased=False, n_bootstrap=300, random_state=0)
    assert res_v.reject
    # deterministic given random_state
    again = ksd_test(X, std_score, n_bootstrap=300, random_state=0)
    np.testing.assert_array_equal(res.null, again.null)
    # the null is fine at the same size: no rejection for the model's own sample (seeded)
    X0 = rng.standard_normal((200, 3))
    assert not ksd_test(X0, std_score, n_bootstrap=300, random_state=0).reject


def test_ksdagg_level_and_power():
    rng = np.random.default_rng(14)
    bws = 2.0 ** np.arange(-2, 3)
    rej = 0
    for r in range(100):
        X = rng.standard_normal((40, 2))
        res = ksdagg_test(X, std_score, bandwidths=bws, n_bootstrap=(99, 99), n_bisection=20, random_state=r)
        rej += res.reject
    lo, hi = binom_99(100)
    assert rej <= hi, rej
    X = rng.standard_normal((150, 2)) + np.array([0.5, 0.0])
    res = ksdagg_test(X, std_score, random_state=0)  # B1 = B2 = 500: per-bandwidth levels near alpha / 21
    assert res.reject and res.statistic > 0 and math.isnan(res.pvalue)
    d = res.details
    assert d["bandwidths"].shape == (21,) and d["rejects"].any() and 0 < d["u"] <= 21
    np.testing.assert_allclose(d["statistics"][-1], ksd(X, std_score, kk.IMQ(kk.median_bandwidth(X))), rtol=1e-10)


def _mixture(delta, d=1):
    m = np.zeros((2, d))
    m[1, 0] = delta

    def logp(x):
        a = -0.5 * np.sum((x - m[0]) ** 2, axis=1)
        b = -0.5 * np.sum((x - m[1]) ** 2, axis=1)
        return np.logaddexp(a, b) + math.log(0.5)

    def score(x):
        a = -0.5 * np.sum((x - m[0]) ** 2, axis=1)
        b = -0.5 * np.sum((x - m[1]) ** 2, axis=1)
        w = 1.0 / (1.0 + np.exp(b - a))
        return w[:, None] * (m[0] - x) + (1 - w)[:, None] * (m[1] - x)

    return m, logp, score


def test_perturbed_ksd_beats_ksd_on_mixture_weights():
    """Model 0.5 N(0, 1) + 0.5 N(6, 1); sample all from N(0, 1) (the paper's mixture-weight case)."""
    m, logp, score = _mixture(6.0)
    rng = np.random.default_rng(15)
    plain = pert = 0
    for r in range(6):
        X = rng.standard_normal((100, 1))
        plain += ksd_test(X, score, n_bootstrap=199, random_state=r).reject
        res = perturbed_ksd_test(X, score, logp, modes=m, jump_scales=[1.3], n_bootstrap=199, random_state=r)
        pert += res.reject
        assert res.details["acceptance"] > 0.1
    assert pert >= 5 and plain <= 2, (pert, plain)
    # the full procedure: modes found on a training half, jump scale chosen there
    X = rng.standard_normal((80, 1))
    res = perturbed_ksd_test(X, score, logp, n_bootstrap=199, jump_scales=[0.8, 1.0], random_state=0)
    assert res.details["modes"].shape == (2, 1) and res.details["n_test"] == 40
    np.testing.assert_allclose(np.sort(res.details["modes"][:, 0]), [0.0, 6.0], atol=1e-3)


@pytest.mark.parametrize("transition", ["jump", "mala"])
def test_perturbed_ksd_keeps_the_level(transition):
    m, logp, score = _mixture(4.0)
    rng = np.random.default_rng(16)
    rej = 0
    for r in range(120):
        X = m[rng.integers(0, 2, 30)] + rng.standard_normal((30, 1))
        res = perturbed_ksd_test(X, score, logp, modes=m if transition == "jump" else None, transition=transition,
                                 jump_scales=[1.3], step_size=0.3, n_bootstrap=99, random_state=r)
        rej += res.reject
    lo, hi = binom_99(120)
    assert rej <= hi, rej


def test_bad_input(rng):
    X = rng.standard_normal((20, 2))
    for alpha in (0, 1, 1.5, -0.1):
        with pytest.raises(ValueError, match="'alpha'"):
            ksd_test(X, std_score, alpha=alpha)
    with pytest.raises(ValueError, match="at least 2 points"):
        ksd(X[:1], std_score)
    with pytest.raises(ValueError, match="at least 2 points"):
        ksd_test(X[:1], std_score)
    with pytest.raises(ValueError, match="shape \\(20, 2\\)"):
        ksd(X, lambda x: x[:, 0])
    with pytest.raises(ValueError, match="shape \\(20, 2\\)"):
        ksd(X, np.zeros((19, 2)))
    with pytest.raises(ValueError, match="finite scores"):
        ksd_test(X, lambda x: x * np.nan)
    with pytest.raises(ValueError, match="finite"):
        ksd(np.where(X > 1, np.inf, X), std_score)
    with pytest.raises(TypeError, match="score"):
        ksd(X, "normal")
    with pytest.raises(TypeError, match="n_bootstrap"):
        ksd_test(X, std_score, n_bootstrap=10.5)
    with pytest.raises(ValueError, match="bandwidths"):
        ksdagg_test(X, std_score, bandwidths=[1.0, -1.0])
    with pytest.raises(TypeError, match="kernel"):
        ksdagg_test(X, std_score, kernel=kk.IMQ(1.0))
    with pytest.raises(ValueError, match="'alpha'"):
        ksdagg_test(X, std_score, alpha=1.0)
    m, logp, score = _mixture(3.0, d=2)
    with pytest.raises(ValueError, match="log_density"):
        perturbed_ksd_test(X, score, lambda x: logp(x)[:3], modes=m)
    with pytest.raises(TypeError, match="log_density"):
        perturbed_ksd_test(X, score, None, modes=m)
    with pytest.raises(ValueError, match="transition"):
        perturbed_ksd_test(X, score, logp, transition="hmc")
    with pytest.raises(ValueError, match="modes"):
        perturbed_ksd_test(X, score, logp, modes=m[:1])
    with pytest.raises(TypeError, match="score"):
        perturbed_ksd_test(X, score(X), logp, modes=m)


def _imq_stein_matrix_loops(X, S, c, beta=-0.5):
    """Slow, independent reference: the Langevin Stein kernel of (1 + |x - y|^2 / c^2)^beta, pair by pair.

    k_p(x, y) = s(x).s(y) k + s(x).grad_y k + s(y).grad_x k + tr(grad_x grad_y k), with u = x - y,
    q = 1 + |u|^2 / c^2: grad_x k = 2 beta q^(beta - 1) u / c^2 = -grad_y k and
    tr(grad_x grad_y k) = -2 beta d q^(beta - 1) / c^2 - 4 beta (beta - 1) q^(beta - 2) |u|^2 / c^4.
    """
    n, d = X.shape
    H = np.empty((n, n))
    for i in range(n):
        for j in range(n):
            u = X[i] - X[j]
            r2 = float(u @ u)
            q = 1.0 + r2 / c ** 2
            gx = 2.0 * beta * q ** (beta - 1) * u / c ** 2
            tr = -2.0 * beta * d * q ** (beta - 1) / c ** 2 - 4.0 * beta * (beta - 1) * q ** (beta - 2) * r2 / c ** 4
            H[i, j] = (S[i] @ S[j]) * q ** beta - S[i] @ gx + S[j] @ gx + tr
    return H


@pytest.mark.parametrize("unbiased", [True, False])
def test_statistic_and_wild_bootstrap_match_a_loop_reference(unbiased):
    """Statistic and every bootstrap draw against the hand-written Stein kernel (no SteinKernel involved).

    U-statistic: the diagonal is left out of the statistic AND of every draw eps^T (H - diag H) eps / (n (n-1));
    V-statistic: both keep it (eps_i^2 h_ii = h_ii) and divide by n^2. A mismatch would make the test
    conservative or anti-conservative.
    """
    rng = np.random.default_rng(21)
    X = rng.standard_normal((23, 4)) * 1.3 + 0.2
    S = -0.8 * X + 0.1                       # the score of N(0.125, I / 0.8), not of the sample
    c = kk.median_bandwidth(X)
    H = _imq_stein_matrix_loops(X, S, c)
    n = X.shape[0]
    E = np.random.default_rng(7).integers(0, 2, size=(n, 64), dtype=np.int8).astype(float) * 2 - 1
    if unbiased:
        Hd = H - np.diag(np.diag(H))
        stat, null = Hd.sum() / (n * (n - 1)), np.einsum("ib,ij,jb->b", E, Hd, E) / (n * (n - 1))
    else:
        stat, null = H.sum() / n ** 2, np.einsum("ib,ij,jb->b", E, H, E) / n ** 2
    for memory in (None, 4000):
        with kk.options(memory=memory) if memory else kk.options():
            res = ksd_test(X, S, "imq", n_bootstrap=64, unbiased=unbiased, random_state=7)
        assert res.statistic == pytest.approx(stat, rel=1e-10, abs=1e-12)
        np.testing.assert_allclose(res.null, null, rtol=1e-9, atol=1e-12)
        assert res.pvalue == pytest.approx((1 + np.sum(null >= stat)) / 65)
    assert ksd(X, S, "imq", unbiased=unbiased) == pytest.approx(stat, rel=1e-10, abs=1e-12)


def test_wild_bootstrap_level_in_dimension_10_with_the_median_bandwidth():
    """The benchmark's level setting at small n: N(0, I_10), n = 40, IMQ median bandwidth, 400 repetitions."""
    rng = np.random.default_rng(22)
    rej = 0
    for r in range(400):
        X = rng.standard_normal((40, 10))
        rej += ksd_test(X, -X, "imq", n_bootstrap=99, random_state=r).reject
    lo, hi = binom_99(400)
    assert lo <= rej <= hi, rej
