"""SteinKernel: dense loop reference with closed-form gradients, engine sums, Stein thinning."""

import math

import numpy as np
import pytest

import kernelkit as kk
from kernelkit.exceptions import NotSupportedError
from kernelkit.kernels import IMQ, RationalQuadratic
from kernelkit.stats import SteinKernel, stein_thin


# --------------------------------------------------------------------------- the slow reference
def _grads(kind, bw, dx, d, beta=0.5):
    """k, grad_x k, tr(grad_x grad_y k) at x - y = dx, written from each family's formula."""
    r2 = float(dx @ dx)
    r = math.sqrt(r2)
    if kind == "gaussian":
        k = math.exp(-r2 / (2 * bw ** 2))
        return k, -dx / bw ** 2 * k, (d / bw ** 2 - r2 / bw ** 4) * k
    if kind == "imq":  # (1 + r2 / c2)^(-beta)
        u = 1 + r2 / bw ** 2
        return (u ** -beta, -2 * beta / bw ** 2 * dx * u ** (-beta - 1),
                2 * beta * d / bw ** 2 * u ** (-beta - 1) - 4 * beta * (beta + 1) / bw ** 4 * r2 * u ** (-beta - 2))
    if kind == "matern52":  # f(r) = (1 + l r + l^2 r^2 / 3) exp(-l r); tr = -(f'' + (d - 1) f' / r)
        lam = math.sqrt(5) / bw
        e = math.exp(-lam * r)
        k = (1 + lam * r + lam ** 2 * r2 / 3) * e
        gx = -(lam ** 2 / 3) * (1 + lam * r) * e * dx
        tr = (lam ** 2 / 3) * (1 + lam * r - lam ** 2 * r2) * e + (d - 1) * (lam ** 2 / 3) * (1 + lam * r) * e
        return k, gx, tr
    raise ValueError(kind)


def stein_matrix_loop(kind, bw, X, Y, S, T, beta=0.5):
    n, d = X.shape
    K = np.zeros((n, Y.shape[0]))
    for i in range(n):
        for j in range(Y.shape[0]):
            k, gx, tr = _grads(kind, bw, X[i].astype(float) - Y[j].astype(float), d, beta)
            K[i, j] = S[i] @ T[j] * k + S[i] @ (-gx) + T[j] @ gx + tr
    return K


def _score(x):  # a non-trivial score: N(mu, 0.5^-1 I) plus a quadratic term
    x = np.asarray(x, dtype=np.float64)
    return -(x - 0.3) * 2.0 + 0.1 * x ** 2


CASES = [("gaussian", lambda: kk.Gaussian(1.3), 0.5), ("imq", lambda: kk.IMQ(1.3, 0.5), 0.5),
         ("imq", lambda: kk.IMQ(0.8, 1.7), 1.7), ("matern52", lambda: kk.Matern(2.5, 1.1), None)]


def _bw(case):
    return case[1]().bandwidth


@pytest.mark.parametrize("case", CASES, ids=["gauss", "imq", "imq-beta1.7", "matern52"])
def test_dense_and_sums_match_loop_reference(case, dtype, rng):
    kind, make, beta = case
    kp = SteinKernel(make(), _score)
    X = (rng.standard_normal((37, 3)) + 4.0).astype(dtype)  # away from 0: the expansion must centre
    Y = (rng.standard_normal((23, 3)) + 4.0).astype(dtype)
    R = stein_matrix_loop(kind, _bw(case), X, Y, _score(X), _score(Y), beta)
    tol = 1e-4 if dtype == np.float32 else 1e-10
    scale = np.abs(R).max()
    np.testing.assert_allclose(kp(X, Y), R, atol=tol * scale, rtol=0)
    W = rng.standard_normal((37, 3))
    ref = R.T @ W
    wscale = np.abs(R).T @ np.abs(W)
    for method in ("expand", "blocks"):
        out = kp.sum(X, W, Y, method=method)
        assert out.shape == (23, 3) and out.dtype == np.float64
        assert np.all(np.abs(out - ref) <= tol * wscale + 1e-12), method
    out1 = kp.sum(X, W[:, 0], Y)
    assert out1.shape == (23,)
    assert np.all(np.abs(out1 - ref[:, 0]) <= tol * wscale[:, 0] + 1e-12)
    RX = stein_matrix_loop(kind, _bw(case), X, X, _score(X), _score(X), beta)
    np.testing.assert_allclose(kp.diag(X), np.diag(RX), rtol=1e-6 if dtype == np.float32 else 1e-12)


@pytest.mark.parametrize("method", ["expand", "blocks"])
def test_tiny_memory_budget_gives_same_sums(method, rng):
    X = rng.standard_normal((41, 2))
    W = rng.standard_normal((41, 6))
    kp = SteinKernel(kk.IMQ(1.0), _score)
    ref = stein_matrix_loop("imq", 1.0, X, X, _score(X), _score(X)).T @ W
    with kk.options(memory=4096):  # a few rows a block
        out = kp.sum(X, W, method=method)
    np.testing.assert_allclose(out, ref, rtol=1e-10, atol=1e-10 * np.abs(ref).max())
    with pytest.raises(ValueError, match="memory budget"):
        kp(X, memory=1000)


@pytest.mark.parametrize("method", ["expand", "blocks"])
def test_exclude_diagonal(method, rng):
    X = rng.standard_normal((19, 3))
    W = rng.standard_normal((19, 2))
    kp = SteinKernel(kk.Gaussian(0.9), _score)
    H = stein_matrix_loop("gaussian", 0.9, X, X, _score(X), _score(X))
    np.fill_diagonal(H, 0.0)
    np.testing.assert_allclose(kp.sum(X, W, method=method, exclude_diagonal=True), H.T @ W, rtol=1e-9,
                               atol=1e-11 * np.abs(H).sum())
    with pytest.raises(ValueError, match="exclude_diagonal"):
        kp.sum(X, W, X[:5], exclude_diagonal=True)


def test_precomputed_scores_and_defaults(rng):
    X = rng.standard_normal((15, 2))
    kp_call = SteinKernel("gaussian", _score, bandwidth=0.7)
    kp_pre = SteinKernel(kk.Gaussian(0.7))
    np.testing.assert_allclose(kp_pre(X, scores=_score(X)), kp_call(X), rtol=1e-13)
    np.testing.assert_allclose(kp_pre.sum(X, scores=_score(X)), kp_call.sum(X), rtol=1e-12)
    assert SteinKernel().base_kernel == kk.IMQ(1.0, 0.5)  # the usual c = 1, beta = -1/2
    X0 = X.copy()
    kp_call.sum(X)
    np.testing.assert_array_equal(X, X0)  # inputs untouched
    # symmetric
    K = kp_call(X)
    np.testing.assert_allclose(K, K.T, rtol=1e-12, atol=1e-14)


def test_stein_kernel_has_mean_zero_under_the_model():
    """E_{x ~ p} k_p(x, y) = 0: the column means over a large N(0, I) sample at fixed y, within 4 SE."""
    rng = np.random.default_rng(7)
    X = rng.standard_normal((20000, 2))
    Y = np.array([[0.0, 0.0], [1.0, -0.5], [2.0, 2.0]])
    kp = SteinKernel("imq", lambda x: -x)
    K = kp(X, Y, memory="64MB")
    mean, se = K.mean(axis=0), K.std(axis=0) / math.sqrt(X.shape[0])
    assert np.all(np.abs(mean) < 4 * se)
    # and with the wrong model (score of N(1, I)) the means are far from zero
    kq = SteinKernel("imq", lambda x: -(x - 1.0))
    Kq = kq(X, Y, memory="64MB")
    assert np.max(np.abs(Kq.mean(axis=0)) / (Kq.std(axis=0) / math.sqrt(X.shape[0]))) > 20


def test_bad_input(rng):
    X = rng.standard_normal((10, 2))
    with pytest.raises(ValueError, match="shape \\(10, 2\\)"):
        SteinKernel("imq", lambda x: x[:, :1]).sum(X)
    with pytest.raises(ValueError, match="finite scores"):
        SteinKernel("imq", lambda x: np.where(x > 0, np.nan, x)).sum(X)
    with pytest.raises(TypeError, match="score"):
        SteinKernel("imq", score=3.0)
    with pytest.raises(TypeError, match="score"):
        SteinKernel("imq").sum(X)  # no score at all
    with pytest.raises(NotSupportedError, match="Laplace"):
        SteinKernel(kk.Laplace(1.0), lambda x: -x)
    with pytest.raises(ValueError, match="features"):
        SteinKernel("imq", lambda x: -x)(X, rng.standard_normal((3, 3)))
    with pytest.raises(ValueError, match="method"):
        SteinKernel("imq", lambda x: -x).sum(X, method="dense")


# --------------------------------------------------------------------------- Stein thinning
def _thin_loop(H, m, replace=True):
    n = H.shape[0]
    picks = []
    for _ in range(m):
        best, bi = np.inf, -1
        for i in range(n):
            if not replace and i in picks:
                continue
            v = 0.5 * H[i, i] + sum(H[a, i] for a in picks)
            if v < best:
                best, bi = v, i
        picks.append(bi)
    path = [math.sqrt(H[np.ix_(picks[:t], picks[:t])].sum()) / t for t in range(1, m + 1)]
    return np.array(picks), np.array(path)


@pytest.mark.parametrize("replace", [True, False])
def test_stein_thin_matches_loop_reference(replace, dtype):
    rng = np.random.default_rng(3)
    X = (rng.standard_normal((61, 2)) * 1.5 + 0.7).astype(dtype)  # a biased sample of N(0, I)
    score = lambda x: -np.asarray(x, dtype=np.float64)  # noqa: E731
    idx, path = stein_thin(X, score, 25, "imq", bandwidth=1.0, replace=replace)
    H = stein_matrix_loop("imq", 1.0, X, X, score(X), score(X))
    ref_idx, ref_path = _thin_loop(H, 25, replace)
    np.testing.assert_array_equal(idx, ref_idx)
    np.testing.assert_allclose(path, ref_path, rtol=1e-6 if dtype == np.float32 else 1e-10)
    assert path[-1] < 0.5 * path[0]
    if not replace:
        assert len(set(idx.tolist())) == 25


def test_stein_thin_beats_random_subsets():
    rng = np.random.default_rng(4)
    X = rng.standard_normal((400, 2)) + 0.5  # biased MCMC-like output for N(0, I)
    score = lambda x: -x  # noqa: E731
    idx, path = stein_thin(X, score, 30)
    bw = kk.median_bandwidth(X)
    kp = SteinKernel(kk.IMQ(bw), score)
    rand = []
    for _ in range(20):
        j = rng.choice(400, 30, replace=False)
        rand.append(math.sqrt(kp(X[j]).sum()) / 30)
    assert path[-1] < min(rand)
    with pytest.raises(ValueError, match="'m'"):
        stein_thin(X, score, 401, replace=False)
    with pytest.raises(ValueError, match="'m'"):
        stein_thin(X, score, 0)


# --- Stein kernel thinning (kernel thinning with a mean-zero Stein kernel) -----------------------------

def _biased_sample(n=1024, seed=0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, 2)) * 0.8 + 0.4   # the model is N(0, I): a biased "chain"


def test_stein_kernel_thin_corrects_a_biased_sample():
    from kernelkit.stats import stein_kernel_thin, stein_thin
    X = _biased_sample()
    score = lambda x: -x  # noqa: E731
    idx, value = stein_kernel_thin(X, score, 32, random_state=0)
    assert idx.shape == (32,) and idx.dtype == np.int64
    # the reported KSD is the V-statistic of the coreset, computed directly
    kp = SteinKernel("imq", score=score, bandwidth=kk.median_bandwidth(X))
    K = kp(X[idx])
    assert value == pytest.approx(np.sqrt(K.sum()) / 32, rel=1e-10)
    # far below random subsets and standard thinning (which keep the bias), on par with greedy Stein thinning
    rng = np.random.default_rng(1)
    rand = [np.sqrt(kp(X[rng.choice(1024, 32, replace=False)]).sum()) / 32 for _ in range(20)]
    std = np.sqrt(kp(X[31::32]).sum()) / 32
    assert value < 0.5 * min(min(rand), std)
    _, path = stein_thin(X, score, 32)
    assert value < 1.5 * path[-1]
    # the bias of the mean (0.4 per coordinate) is mostly removed
    assert np.all(np.abs(X[idx].mean(axis=0)) < 0.15)


def test_stein_kernel_thin_through_kernel_thin_and_reproducible():
    from kernelkit.stats import stein_kernel_thin
    X = _biased_sample(512, seed=2)
    kp = SteinKernel("imq", score=lambda x: -x, bandwidth=1.0)
    a = kk.kernel_thin(X, 16, kp, random_state=3)
    b, value = stein_kernel_thin(X, lambda x: -x, 16, "imq", bandwidth=1.0, random_state=3)
    np.testing.assert_array_equal(a, b)
    res = kk.kernel_thin(X, 16, kp, random_state=3, return_result=True)
    assert res.mmd == pytest.approx(value) and res.method == "kt"
    # precomputed scores give the same coreset
    c, _ = stein_kernel_thin(X, -X, 16, kp, random_state=3)
    np.testing.assert_array_equal(b, c)


def test_stein_kernel_thin_bad_input():
    from kernelkit.stats import stein_kernel_thin
    X = _biased_sample(64)
    with pytest.raises(ValueError, match="size"):
        stein_kernel_thin(X, lambda x: -x, 65)
    with pytest.raises(ValueError, match="method"):
        kk.kernel_thin(X, 8, SteinKernel("imq", score=lambda x: -x), method="compress++")
    with pytest.raises(ValueError, match="weights"):
        kk.kernel_thin(X, 8, SteinKernel("imq", score=lambda x: -x), weights=np.ones(64))
    with pytest.raises(ValueError, match="score"):
        kk.kernel_thin(X, 8, SteinKernel("imq"))
    with pytest.raises(ValueError, match="bandwidth"):
        stein_kernel_thin(X, lambda x: -x, 8, SteinKernel("imq"), bandwidth=1.0)
    with pytest.raises(ValueError):
        stein_kernel_thin(X, lambda x: -x[:, :1], 8)   # scores of the wrong shape


@pytest.mark.parametrize("base", [IMQ(1.3), IMQ(0.7, beta=1.7), IMQ(1.0, beta=1.0), RationalQuadratic(2.0, alpha=0.8),
                                  IMQ(4.5e-5), IMQ(1e6)])
def test_power_profiles_equal_the_three_profile_terms(base):
    """IMQ / RQ: phi, phi', phi'' from one power of 1 / (1 + r^2 / c^2) equal the generic radial_terms path."""
    rng = np.random.default_rng(11)
    X = rng.standard_normal((60, 4)) * 3.0
    fast = SteinKernel(base)
    assert fast._power is not None
    slow = SteinKernel(base)
    slow._power = None
    A, B = fast(X, scores=-X), slow(X, scores=-X)
    np.testing.assert_allclose(A, B, rtol=1e-9, atol=1e-14 * np.max(np.abs(B)))
