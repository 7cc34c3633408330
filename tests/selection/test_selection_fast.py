"""The fast paths of kernelkit.selection against their references: lazy max-det against the eager loop and
the explicit greedy logdet, float32 centre distances against float64 explicit distances, the bfloat16
gradient sketch against the full-precision one."""

import os
import sys

import numpy as np
import pytest

import kernelkit as kk
from kernelkit.exceptions import InvalidValueError
from kernelkit.selection import _greedy, select_batch
from kernelkit.selection._operators import FeatureKernel

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _dense as R  # noqa: E402

SIGMA = 0.1


def _features(n, D, seed, dtype, dup=0):
    rng = np.random.default_rng(seed)
    F = rng.normal(size=(n, D)) / np.sqrt(D)
    if dup:                                     # exact duplicates: exact ties of the residuals
        F[n - dup:] = F[:dup]
    return F.astype(dtype)


# --------------------------------------------------------------------------- lazy max-det
@pytest.mark.parametrize("n,D,batch,dup", [(301, 7, 40, 0), (257, 33, 60, 20), (90, 5, 90, 0), (64, 80, 64, 8)])
@pytest.mark.parametrize("with_train", [False, True])
def test_lazy_maxdet_equals_eager(n, D, batch, dup, with_train, dtype):
    F = _features(n, D, 1, dtype, dup)
    Ft = _features(23, D, 2, dtype) if with_train else None
    e = np.random.default_rng(3).uniform(0, 0.01, n)
    # float64, distinct points, D < n: the same picks. Otherwise (float32 rounding of the refreshed sums; exact
    # duplicates and D >= n, where late residuals are all sigma^2 up to rounding) the sequences may part at a
    # near-tie only: there both picks have the same gain to rounding, and all earlier picks are the same.
    strict = dtype == np.float64 and dup == 0 and D < n
    # float32 gains: a residual r = d0 - sum c^2 (d0 about 1) carries an absolute error of a few 1e-7, so
    # log(r / sigma^2) at r about 0.01 is good to about 1e-4
    tol = dict(rtol=1e-4, atol=5e-4) if dtype == np.float32 else dict(rtol=1e-9, atol=1e-9)
    for extra in (None, e):
        ref = _greedy.maxdet_features(F, batch, SIGMA, extra, Ft, lazy=False)
        for m0 in (1, 4, 64):                   # m0 = 1: the candidate set doubles many times
            got = _greedy._maxdet_features_lazy(F, batch, SIGMA ** 2, *_initial(F, Ft, extra), np.empty(batch, np.intp),
                                                np.empty(batch), m0=m0)
            if strict:
                np.testing.assert_array_equal(got[0], ref[0])
                np.testing.assert_allclose(got[1], ref[1], **tol)
                continue
            k = batch if np.array_equal(got[0], ref[0]) else int(np.argmax(got[0] != ref[0]))
            np.testing.assert_allclose(got[1][:k + 1], ref[1][:k + 1], **tol)
            assert len(set(got[0])) == batch


def _initial(F, Ft, extra):
    """C and the initial residual diagonal of maxdet_features (via its eager path with batch 0 logic)."""
    import scipy.linalg
    D = F.shape[1]
    s2 = SIGMA ** 2
    if Ft is None:
        C = np.eye(D)
        d = np.einsum("ij,ij->i", F, F, dtype=np.float64)
    else:
        Ft64 = Ft.astype(np.float64)
        M = Ft64.T @ Ft64 + s2 * np.eye(D)
        C = s2 * scipy.linalg.cho_solve(scipy.linalg.cho_factor(M), np.eye(D))
        C = 0.5 * (C + C.T)
        d = np.einsum("ij,ij->i", F @ C.astype(F.dtype), F, dtype=np.float64)
    d = d + s2
    if extra is not None:
        d = d + extra
    return C, d


def test_lazy_maxdet_equals_explicit_greedy_logdet(dtype):
    # the public path (lazy by default) against the slow explicit greedy logdet on K = F F^T
    F = _features(120, 9, 4, dtype, dup=10)
    K = F.astype(np.float64) @ F.astype(np.float64).T
    ref, ref_g = R.greedy_logdet(K, 30, SIGMA)
    idx, g = select_batch(F, 30, method="maxdet", sigma=SIGMA, return_gains=True)
    np.testing.assert_array_equal(idx, ref)
    tol = dict(rtol=1e-3, atol=1e-3) if dtype == np.float32 else dict(rtol=1e-8, atol=1e-9)
    np.testing.assert_allclose(g, ref_g, **tol)


def test_lazy_maxdet_whole_pool_and_degenerate():
    # rank-2 features: after two picks every residual is sigma^2 (gain 0, ties broken by the smaller index)
    F = np.zeros((9, 3))
    F[:, 0] = np.arange(9)
    F[:, 1] = np.arange(9) % 2
    lazy = _greedy.maxdet_features(F, 9, SIGMA, lazy=True)
    eager = _greedy.maxdet_features(F, 9, SIGMA, lazy=False)
    np.testing.assert_array_equal(lazy[0], eager[0])
    np.testing.assert_allclose(lazy[1], eager[1], atol=1e-9)
    assert sorted(lazy[0]) == list(range(9))


# --------------------------------------------------------------------------- float32 centre distances
@pytest.mark.parametrize("method", ["lcmd", "maxdist", "kmeanspp"])
@pytest.mark.parametrize("memory", [None, 2_000])
def test_float32_centre_distances_match_float64_reference(method, memory):
    # well-separated points (no near-ties at float32 precision): float32 features give the float64 picks
    rng = np.random.default_rng(5)
    F64 = rng.normal(size=(203, 6))
    T64 = rng.normal(size=(37, 6))
    K = np.concatenate([F64, T64]) @ np.concatenate([F64, T64]).T
    centers = np.arange(203, 240)
    if method == "lcmd":
        ref = R.lcmd(K, 203, 15, centers)
    elif method == "maxdist":
        ref = R.kcenter(K, 203, 15, centers)[0]
    else:
        ref = R.kmeanspp(K, 203, 15, np.random.default_rng(0), centers)
    with kk.options(memory=memory) if memory else kk.options():     # memory: blocks of 2 centres or so
        got = select_batch(F64.astype(np.float32), 15, method=method, train=T64.astype(np.float32),
                           train_mode="centers", random_state=0)
        got64 = select_batch(F64, 15, method=method, train=T64, train_mode="centers", random_state=0)
    np.testing.assert_array_equal(got64, ref)
    np.testing.assert_array_equal(got, ref)


def test_center_dists_float32_values():
    rng = np.random.default_rng(6)
    F = rng.normal(size=(51, 4)).astype(np.float32)
    op = FeatureKernel(F)
    centers = np.arange(40, 51)
    for memory in (None, 1_000):
        with kk.options(memory=memory) if memory else kk.options():
            mind, closest = _greedy._center_dists(op, 40, centers, op.diag())
        F64 = F.astype(np.float64)
        sq = ((F64[:40, None, :] - F64[None, 40:, :]) ** 2).sum(-1)
        np.testing.assert_allclose(mind, sq.min(1), rtol=1e-4, atol=1e-5)
        np.testing.assert_array_equal(closest, sq.argmin(1))


def test_feature_kernel_columns_rows_native():
    F = np.random.default_rng(8).normal(size=(13, 5)).astype(np.float32)
    op = FeatureKernel(F)
    full = F.astype(np.float64) @ F.astype(np.float64).T
    np.testing.assert_allclose(op.columns([3]), full[:, [3]], rtol=1e-5)
    np.testing.assert_allclose(op.columns([3, 7], rows=9), full[:9, [3, 7]], rtol=1e-5)
    assert op.columns([3]).dtype == np.float64
    assert op.columns([3], native=True).dtype == np.float32
    assert op.columns([3, 4], rows=4, native=True).shape == (4, 2)


# --------------------------------------------------------------------------- bfloat16 gradient sketch
def test_bfloat16_sketch_close_to_full_precision():
    torch = pytest.importorskip("torch")
    from kernelkit.selection import gradient_sketch
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(4, 64), torch.nn.ReLU(), torch.nn.Linear(64, 64), torch.nn.ReLU(),
                              torch.nn.Linear(64, 1)).eval()
    X = np.random.default_rng(0).normal(size=(301, 4)).astype(np.float32)
    F = gradient_sketch(net, X, 96, random_state=1, batch_size=128, sketch="gaussian")
    Fb = gradient_sketch(net, X, 96, random_state=1, batch_size=128, sketch_dtype="bfloat16", sketch="gaussian")
    assert Fb.dtype == np.float32 and Fb.shape == F.shape
    rel = np.linalg.norm(Fb - F) / np.linalg.norm(F)
    assert 1e-5 < rel < 2e-2                    # rounded (not the same numbers), but at the 2^-8 level
    K, Kb = F.astype(np.float64) @ F.T.astype(np.float64), Fb.astype(np.float64) @ Fb.T.astype(np.float64)
    assert np.linalg.norm(Kb - K) / np.linalg.norm(K) < 1e-2
    with pytest.raises(InvalidValueError, match="sketch_dtype"):
        gradient_sketch(net, X, 8, sketch_dtype="float16", sketch="gaussian")


# --------------------------------------------------------------------------- pruned distance pass
def _spectral_features(n, D, seed, dtype):
    """Rows with a decaying spectrum (like gradient features): column scales 1 / (1 + i)."""
    rng = np.random.default_rng(seed)
    return (rng.normal(size=(n, D)) / (1.0 + np.arange(D))).astype(dtype)


@pytest.mark.parametrize("method", ["lcmd", "maxdist", "kmeanspp"])
@pytest.mark.parametrize("with_train", [False, True])
def test_pruned_distance_pass_matches_dense_reference(method, with_train, monkeypatch):
    # float64 features, the pruning forced on (n >= 64): the same picks as the dense float64 reference
    monkeypatch.setattr(_greedy, "_PRUNE_MIN_N", 64)
    monkeypatch.setattr(_greedy, "_PRUNE_RANK", 8)
    F = _spectral_features(400, 64, 11, np.float64)
    T = _spectral_features(30, 64, 12, np.float64) if with_train else None
    rows = F if T is None else np.concatenate([F, T])
    K = rows @ rows.T
    centers = np.arange(400, 430) if with_train else ()
    if method == "lcmd":
        ref = R.lcmd(K, 400, 40, centers)
    elif method == "maxdist":
        ref = R.kcenter(K, 400, 40, centers)[0]
    else:
        ref = R.kmeanspp(K, 400, 40, np.random.default_rng(0), centers)
    calls = []
    real = _greedy._NewCentre.update
    monkeypatch.setattr(_greedy._NewCentre, "update",
                        lambda self, j, mind: calls.append(self.Y is not None) or real(self, j, mind))
    got = select_batch(F, 40, method=method, train=T, train_mode="centers", random_state=0)
    np.testing.assert_array_equal(got, ref)
    assert calls and all(calls)                 # the pruned path ran


@pytest.mark.parametrize("method", ["lcmd", "maxdist", "kmeanspp"])
def test_pruned_distance_pass_float32_same_as_unpruned(method, monkeypatch):
    # float32 features: picks and gains of the pruned pass against the full pass (pruning off)
    F = _spectral_features(5000, 96, 13, np.float32)
    T = _spectral_features(50, 96, 14, np.float32)
    kw = dict(method=method, train=T, train_mode="centers", random_state=1, return_gains=True)
    monkeypatch.setattr(_greedy, "_PRUNE_MIN_N", 10 ** 9)
    ref = select_batch(F, 60, **kw)
    monkeypatch.setattr(_greedy, "_PRUNE_MIN_N", 1000)
    seen = []
    real = _greedy._NewCentre.update

    def spy(self, j, mind):
        rows, sq = real(self, j, mind)
        seen.append(len(rows) / self.n)
        return rows, sq
    monkeypatch.setattr(_greedy._NewCentre, "update", spy)
    got = select_batch(F, 60, **kw)
    np.testing.assert_array_equal(got[0], ref[0])
    np.testing.assert_allclose(got[1], ref[1], rtol=1e-5)
    assert np.mean(seen) < 0.9                  # it did prune


def test_pruning_bound_is_a_lower_bound():
    # the bound lb - tol never exceeds the float64 squared distance (all rows, several centres)
    F = _spectral_features(5000, 80, 15, np.float32)
    op = FeatureKernel(F)
    diag = op.diag()
    nc = _greedy._NewCentre(op, 5000, diag)
    assert nc.Y is not None
    F64 = F.astype(np.float64)
    for j in (0, 17, 4999):
        true = ((F64 - F64[j]) ** 2).sum(1)
        # with mind = true - margin every row must be kept (its exact distance may fall below mind)
        rows, sq = nc.update(j, true * (1 - 1e-3) - 1e-12)
        assert len(rows) == 5000
        np.testing.assert_allclose(sq, true, rtol=1e-4, atol=1e-5 * diag.max())
        # with mind far below every distance, rows are pruned
        rows, _ = nc.update(j, np.full(5000, -1.0))
        assert len(rows) <= 1


@pytest.mark.parametrize("n_train", [6, 30])
def test_maxdet_posterior_diagonal_woodbury_and_full(n_train):
    # 2 n_train <= D: the initial residuals by the Woodbury form; otherwise by the D x D posterior matrix. Both:
    # the explicit greedy logdet of the dense posterior kernel (float64, same picks and gains)
    rng = np.random.default_rng(21)
    F, T = rng.normal(size=(60, 16)) / 4, rng.normal(size=(n_train, 16)) / 4
    rows = np.concatenate([F, T])
    Kp = R.posterior(rows @ rows.T, 60, np.arange(60, 60 + n_train), SIGMA)
    ref = R.greedy_logdet(Kp, 8, SIGMA)
    got = select_batch(F, 8, method="maxdet", train=T, sigma=SIGMA, return_gains=True)
    np.testing.assert_array_equal(got[0], ref[0])
    np.testing.assert_allclose(got[1], ref[1], rtol=1e-8, atol=1e-10)
