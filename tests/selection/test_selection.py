"""kernelkit.selection against slow dense references (tests/selection/_dense.py), same picks."""

import os
import sys

import numpy as np
import pytest

import kernelkit as kk
from kernelkit.exceptions import InvalidTypeError, InvalidValueError
from kernelkit.selection import BatchSelector, prediction_entropy, select_batch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _dense as R  # noqa: E402

BW = 1.3
SIGMA = 0.3


@pytest.fixture
def pool():
    return np.random.default_rng(7).normal(size=(37, 3))


def _tol(dtype):
    return dict(rtol=2e-4, atol=2e-5) if dtype == np.float32 else dict(rtol=1e-9, atol=1e-11)


# --------------------------------------------------------------------------- max-det / coding rate
def test_maxdet_equals_explicit_greedy_logdet(pool, dtype):
    X = pool.astype(dtype)
    K = R.gaussian(X.astype(np.float64), X.astype(np.float64), BW)
    ref, ref_g = R.greedy_logdet(K, 9, SIGMA)
    idx, g = select_batch(X, 9, method="maxdet", kernel=kk.Gaussian(BW), sigma=SIGMA, return_gains=True)
    np.testing.assert_array_equal(idx, ref)
    np.testing.assert_allclose(g, ref_g, **_tol(dtype))
    assert idx.dtype == np.int64 and g.dtype == np.float64


def test_coding_rate_same_picks_half_gains(pool):
    k = kk.Gaussian(BW)
    i1, g1 = select_batch(pool, 12, method="maxdet", kernel=k, sigma=SIGMA, return_gains=True)
    i2, g2 = select_batch(pool, 12, method="coding_rate", kernel=k, sigma=SIGMA, return_gains=True)
    np.testing.assert_array_equal(i1, i2)
    np.testing.assert_allclose(g2, 0.5 * g1, rtol=1e-14)
    # the sum of the gains is the objective: 1/2 logdet(I + K_S / sigma^2)
    K = R.gaussian(pool[i2], pool[i2], BW)
    np.testing.assert_allclose(g2.sum(), 0.5 * np.linalg.slogdet(np.eye(12) + K / SIGMA ** 2)[1], rtol=1e-10)


def test_entropy_term_on_the_diagonal(pool):
    h = np.random.default_rng(1).uniform(0, 2, size=len(pool))
    K = R.gaussian(pool, pool, BW)
    ref, ref_g = R.greedy_logdet(K, 8, SIGMA, extra=0.7 * h)
    idx, g = select_batch(pool, 8, method="coding_rate", kernel=kk.Gaussian(BW), sigma=SIGMA, entropy=h,
                          entropy_weight=0.7, return_gains=True)
    np.testing.assert_array_equal(idx, ref)
    np.testing.assert_allclose(g, 0.5 * ref_g, rtol=1e-9)
    plain = select_batch(pool, 8, method="coding_rate", kernel=kk.Gaussian(BW), sigma=SIGMA)
    assert not np.array_equal(idx, plain)        # the term changes the picks here
    np.testing.assert_array_equal(select_batch(pool, 8, kernel=kk.Gaussian(BW), sigma=SIGMA, entropy=h,
                                               entropy_weight=0.0), select_batch(pool, 8, kernel=kk.Gaussian(BW),
                                                                                 sigma=SIGMA))


def test_prediction_entropy():
    P = np.array([[1.0, 0.0, 0.0], [0.5, 0.5, 0.0], [1, 1, 1], [2.0, 6.0, 0.0]])
    np.testing.assert_allclose(prediction_entropy(P),
                               [0.0, np.log(2), np.log(3), -(0.25 * np.log(0.25) + 0.75 * np.log(0.75))])
    with pytest.raises(InvalidValueError, match="non-negative"):
        prediction_entropy(-P)


def test_features_path_equals_linear_kernel_path(pool, dtype):
    F = np.random.default_rng(3).normal(size=(41, 5)).astype(dtype)
    K = F.astype(np.float64) @ F.astype(np.float64).T
    for m in ("maxdet", "kcenter", "lcmd", "maxdiag"):
        a, ga = select_batch(F, 7, method=m, sigma=SIGMA, return_gains=True)
        b, gb = select_batch(F, 7, method=m, kernel=kk.Linear(), sigma=SIGMA, return_gains=True)
        np.testing.assert_array_equal(a, b)
        np.testing.assert_allclose(ga, gb, **_tol(dtype))
    np.testing.assert_array_equal(select_batch(F, 7, sigma=SIGMA), R.greedy_logdet(K, 7, SIGMA)[0])


def test_ntk_kernel_object():
    from kernelkit.ntk import NTK
    X = np.random.default_rng(5).normal(size=(30, 4))
    ntk = NTK("relu", depth=2)
    K = np.asarray(ntk(X, X))
    np.testing.assert_array_equal(select_batch(X, 6, kernel=ntk, sigma=SIGMA), R.greedy_logdet(K, 6, SIGMA)[0])


# --------------------------------------------------------------------------- distance methods
def test_kcenter_explicit_distances(pool, dtype):
    X = pool.astype(dtype)
    K = R.gaussian(X.astype(np.float64), X.astype(np.float64), BW)
    ref, ref_g = R.kcenter(K, len(X), 10)
    for name in ("kcenter", "maxdist"):
        idx, g = select_batch(X, 10, method=name, kernel=kk.Gaussian(BW), return_gains=True)
        np.testing.assert_array_equal(idx, ref)
        np.testing.assert_allclose(g, ref_g, **_tol(dtype))
    assert np.all(np.diff(g[1:]) <= 1e-6)        # k-center distances never increase


def test_lcmd_explicit(pool, dtype):
    X = pool.astype(dtype)
    K = R.gaussian(X.astype(np.float64), X.astype(np.float64), 0.8)
    np.testing.assert_array_equal(select_batch(X, 12, method="lcmd", kernel=kk.Gaussian(0.8)),
                                  R.lcmd(K, len(X), 12))


def test_kmeanspp_explicit_same_stream(pool):
    K = R.gaussian(pool, pool, BW)
    for seed in (0, 1, 2):
        ref = R.kmeanspp(K, len(pool), 10, np.random.default_rng(seed))
        np.testing.assert_array_equal(select_batch(pool, 10, method="kmeanspp", kernel=kk.Gaussian(BW),
                                                   random_state=seed), ref)
        assert len(set(ref)) == 10


def test_kmeanspp_is_distributed_as_d2():
    # one centre (train, centres mode), one pick: P(x) = d^2(x, c) / sum d^2; 2,000 seeds, chi-square at 1e-4
    from scipy.stats import chisquare
    pool = np.array([[0.5, 0.0], [1.0, 0.0], [0.0, 2.0], [3.0, 1.0], [0.2, 0.1]])
    c = np.zeros((1, 2))
    p = ((pool - c) ** 2).sum(1)
    p /= p.sum()
    counts = np.zeros(5)
    for s in range(2000):
        counts[select_batch(pool, 1, method="kmeanspp", train=c, train_mode="centers", random_state=s)[0]] += 1
    assert chisquare(counts, 2000 * p).pvalue > 1e-4
    # and a wrong law is rejected at the same size
    assert chisquare(counts, 2000 * np.full(5, 0.2)).pvalue < 1e-4


def test_maxdiag_and_random():
    F = np.random.default_rng(2).normal(size=(50, 3)) * np.arange(1, 51)[:, None] ** 0.5
    idx, g = select_batch(F, 5, method="maxdiag", return_gains=True)
    d = (F ** 2).sum(1)
    np.testing.assert_array_equal(idx, np.argsort(-d)[:5])
    np.testing.assert_allclose(g, np.sort(d)[::-1][:5])
    r1 = select_batch(F, 20, method="random", random_state=4)
    assert len(set(r1)) == 20 and np.array_equal(r1, select_batch(F, 20, method="random", random_state=4))
    assert not np.array_equal(r1, select_batch(F, 20, method="random", random_state=5))


def test_ties_smaller_index():
    X = np.zeros((6, 2))
    X[3:] = 5.0                                  # two groups of identical points
    idx = select_batch(X, 2, method="maxdet", kernel=kk.Gaussian(1.0), sigma=0.5)
    np.testing.assert_array_equal(idx, [0, 3])
    np.testing.assert_array_equal(select_batch(X, 2, method="kcenter", kernel=kk.Gaussian(1.0)), [0, 3])
    np.testing.assert_array_equal(select_batch(X, 3, method="maxdiag", kernel=kk.Gaussian(1.0)), [0, 1, 2])


# --------------------------------------------------------------------------- conditioning on train
@pytest.mark.parametrize("method", ["maxdet", "kcenter", "lcmd", "maxdiag", "kmeanspp"])
def test_train_posterior_equals_dense_posterior_kernel(method, dtype):
    rng = np.random.default_rng(11)
    X = rng.normal(size=(33, 3)).astype(dtype)
    T = rng.normal(size=(6, 3)).astype(dtype)
    A = np.concatenate([X, T]).astype(np.float64)
    K = R.gaussian(A, A, BW)
    Kp = R.posterior(K, 33, np.arange(33, 39), SIGMA)
    ref = {"maxdet": lambda: R.greedy_logdet(Kp, 8, SIGMA)[0], "kcenter": lambda: R.kcenter(Kp, 33, 8)[0],
           "lcmd": lambda: R.lcmd(Kp, 33, 8), "maxdiag": lambda: np.argsort(-np.diag(Kp), kind="stable")[:8],
           "kmeanspp": lambda: R.kmeanspp(Kp, 33, 8, np.random.default_rng(3))}[method]()
    with kk.options(memory=4096):                # blocked: one training column at a time
        got = select_batch(X, 8, method=method, kernel=kk.Gaussian(BW), train=T, sigma=SIGMA, random_state=3)
    np.testing.assert_array_equal(got, ref)
    # the same in feature space (the D x D posterior): random Fourier-like explicit features
    F = rng.normal(size=(33, 4)).astype(dtype)
    FT = rng.normal(size=(5, 4)).astype(dtype)
    B = np.concatenate([F, FT]).astype(np.float64)
    Kf = R.posterior(B @ B.T, 33, np.arange(33, 38), SIGMA)
    ref_f = {"maxdet": lambda: R.greedy_logdet(Kf, 8, SIGMA)[0], "kcenter": lambda: R.kcenter(Kf, 33, 8)[0],
             "lcmd": lambda: R.lcmd(Kf, 33, 8), "maxdiag": lambda: np.argsort(-np.diag(Kf), kind="stable")[:8],
             "kmeanspp": lambda: R.kmeanspp(Kf, 33, 8, np.random.default_rng(3))}[method]()
    np.testing.assert_array_equal(select_batch(F, 8, method=method, train=FT, sigma=SIGMA, random_state=3), ref_f)


def test_maxdet_train_gains_match_dense(dtype):
    rng = np.random.default_rng(12)
    X, T = rng.normal(size=(30, 2)).astype(dtype), rng.normal(size=(4, 2)).astype(dtype)
    A = np.concatenate([X, T]).astype(np.float64)
    Kp = R.posterior(R.gaussian(A, A, BW), 30, np.arange(30, 34), SIGMA)
    ref, ref_g = R.greedy_logdet(Kp, 6, SIGMA)
    idx, g = select_batch(X, 6, kernel=kk.Gaussian(BW), train=T, sigma=SIGMA, return_gains=True)
    np.testing.assert_array_equal(idx, ref)
    np.testing.assert_allclose(g, ref_g, **_tol(dtype))
    # centres mode gives the same max-det picks
    np.testing.assert_array_equal(select_batch(X, 6, kernel=kk.Gaussian(BW), train=T, sigma=SIGMA,
                                               train_mode="centers"), ref)


@pytest.mark.parametrize("method", ["kcenter", "lcmd", "kmeanspp"])
def test_train_centers_mode(method):
    rng = np.random.default_rng(13)
    X, T = rng.normal(size=(31, 3)), rng.normal(size=(5, 3))
    A = np.concatenate([X, T])
    K = R.gaussian(A, A, BW)
    cen = np.arange(31, 36)
    ref = {"kcenter": lambda: R.kcenter(K, 31, 7, cen)[0], "lcmd": lambda: R.lcmd(K, 31, 7, cen),
           "kmeanspp": lambda: R.kmeanspp(K, 31, 7, np.random.default_rng(9), cen)}[method]()
    with kk.options(memory=2048):
        got = select_batch(X, 7, method=method, kernel=kk.Gaussian(BW), train=T, train_mode="centers",
                           random_state=9)
    np.testing.assert_array_equal(got, ref)


def test_empty_train_is_no_train(pool):
    a = select_batch(pool, 5, method="lcmd", kernel="gaussian", train=np.zeros((0, 3)))
    np.testing.assert_array_equal(a, select_batch(pool, 5, method="lcmd", kernel="gaussian"))


def test_inputs_not_modified_and_selector(pool):
    X, T = pool.copy(), pool[:4] + 0.1
    T0 = T.copy()
    sel = BatchSelector(method="lcmd", kernel=kk.Gaussian(BW), train_mode="centers")
    idx = sel.select(X, 6, train=T)
    np.testing.assert_array_equal(X, pool)
    np.testing.assert_array_equal(T, T0)
    np.testing.assert_array_equal(idx, sel.indices_)
    assert sel.gains_.shape == (6,)
    np.testing.assert_array_equal(idx, select_batch(X, 6, method="lcmd", kernel=kk.Gaussian(BW), train=T,
                                                    train_mode="centers"))


def test_threads_option_same_picks(pool):
    F = np.random.default_rng(8).normal(size=(60, 7))
    for m in ("maxdet", "lcmd", "bait"):
        with kk.options(threads=1):
            a = select_batch(F, 9, method=m, train=F[:3] + 0.1, sigma=SIGMA)
        np.testing.assert_array_equal(a, select_batch(F, 9, method=m, train=F[:3] + 0.1, sigma=SIGMA))


def test_whole_pool(pool):
    idx = select_batch(pool, len(pool), kernel=kk.Gaussian(BW), sigma=SIGMA)
    assert sorted(idx) == list(range(len(pool)))


# --------------------------------------------------------------------------- bad input
@pytest.mark.parametrize("kwargs, err, match", [
    (dict(batch_size=0), InvalidValueError, "batch_size"),
    (dict(batch_size=38), InvalidValueError, "batch_size"),
    (dict(batch_size=2.5), InvalidTypeError, "batch_size"),
    (dict(method="bald"), InvalidValueError, "method"),
    (dict(sigma=0.0), InvalidValueError, "sigma"),
    (dict(sigma=-1.0), InvalidValueError, "sigma"),
    (dict(train_mode="tp"), InvalidValueError, "train_mode"),
    (dict(kernel=3), InvalidTypeError, "kernel"),
    (dict(kernel="nope"), InvalidValueError, "kernel"),
    (dict(entropy=np.ones(5)), InvalidValueError, "entropy"),
    (dict(entropy=-np.ones(37)), InvalidValueError, "entropy"),
    (dict(entropy=np.ones(37), method="lcmd"), InvalidValueError, "entropy"),
    (dict(train=np.ones((3, 2))), InvalidValueError, "train"),
    (dict(train=np.full((3, 3), np.nan)), InvalidValueError, "train"),
    (dict(entropy_weight=-1.0), InvalidValueError, "entropy_weight"),
    (dict(random_state=-1), InvalidValueError, "random_state"),
    (dict(random_state="a"), InvalidTypeError, "random_state"),
])
def test_bad_input(pool, kwargs, err, match):
    kw = dict(batch_size=3)
    kw.update(kwargs)
    b = kw.pop("batch_size")
    with pytest.raises(err, match=match):
        select_batch(pool, b, **kw)


def test_bad_pool():
    with pytest.raises(InvalidValueError, match="pool"):
        select_batch(np.zeros((0, 3)), 1)
    X = np.ones((5, 2))
    X[2, 1] = np.nan
    with pytest.raises(InvalidValueError, match="pool.*finite"):
        select_batch(X, 1)
    with pytest.raises(InvalidValueError, match="pool"):
        select_batch(np.ones(5), 1)


# --------------------------------------------------------------------------- BAIT
def test_bait_explicit(dtype):
    rng = np.random.default_rng(21)
    F = rng.normal(size=(40, 6)).astype(dtype)
    np.testing.assert_array_equal(select_batch(F, 8, method="bait", sigma=SIGMA),
                                  R.bait(F.astype(np.float64) @ F.astype(np.float64).T, 40, 8, SIGMA))
    # with training points: the dense posterior over pool and train rows, then the same rule
    T = rng.normal(size=(5, 6)).astype(dtype)
    A = np.concatenate([F, T]).astype(np.float64)
    K = A @ A.T
    Kp = K - K[:, 40:] @ np.linalg.solve(K[40:, 40:] + SIGMA ** 2 * np.eye(5), K[40:, :])
    np.testing.assert_array_equal(select_batch(F, 8, method="bait", train=T, sigma=SIGMA), R.bait(Kp, 40, 8, SIGMA))


def test_bait_needs_features(pool):
    from kernelkit.exceptions import NotSupportedError
    with pytest.raises(NotSupportedError, match="feature space"):
        select_batch(pool, 3, method="bait", kernel=kk.Gaussian(1.0))


# --------------------------------------------------------------------------- package
def test_import_is_light():
    import subprocess
    code = ("import sys, kernelkit.selection as s; s.select_batch; s.kecor_select; s.gradient_sketch; "
            "print('torch' in sys.modules, 'matplotlib' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]


def test_demo_step(capsys):
    import argparse
    from kernelkit.cli._select import demo_step
    demo_step(argparse.Namespace(seed=0, quick=True))
    out = capsys.readouterr().out
    for m in ("coding_rate", "lcmd", "kcenter", "random"):
        assert m in out
    assert "batch coding rate" in out
