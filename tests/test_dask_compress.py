"""Compress++ over the chunks of a dask array (kernelkit.dask.compresspp) against local Compress++.

Fast tier: dask's synchronous scheduler. Oracles: local Compress++ on the same
NumPy data (MMD, at fixed seeds, with the loose tolerances stated in each
test), exact MMDs through kk.mmd, and the divide and conquer written out with
the local pieces and kernelkit's seed order (identical indices). The
distributed tier (a LocalCluster of 2 processes) is marked slow.
"""

import math
import subprocess
import sys

import numpy as np
import pytest

da = pytest.importorskip("dask.array")
dask = pytest.importorskip("dask")

import kernelkit as kk  # noqa: E402
import kernelkit.dask as kkd  # noqa: E402
from kernelkit.compress import ThinningResult  # noqa: E402

K = kk.Gaussian(2.0)


@pytest.fixture(autouse=True)
def sync_scheduler():
    with dask.config.set(scheduler="sync"):
        yield


def _data(n=4096, d=2, seed=0, dtype=np.float64):
    return np.random.default_rng(seed).standard_normal((n, d)).astype(dtype)


def _mmd(X, idx, w=None):
    return kk.mmd(X, X[idx], K, weights_x=w)


def _median_mmd(fn, X, seeds, w=None):
    return float(np.median([_mmd(X, fn(s), w) for s in seeds]))


# --- quality against local Compress++ ----------------------------------------------

def test_mmd_close_to_local_compresspp_over_8_chunks():
    """Median over 5 seeds at n = 4096, size 64, g = 3: dask within 1.3x of local (loose: 5 seeds of a
    random coreset, whose MMD varies by about 20% from seed to seed), both 10x below standard thinning."""
    X = _data()
    dX = da.from_array(X, chunks=(512, 2))  # 8 chunks
    seeds = range(5)
    got = _median_mmd(lambda s: kk.compresspp(dX, 64, K, g=3, random_state=s), X, seeds)
    ref = _median_mmd(lambda s: kk.compresspp(X, 64, K, g=3, random_state=s), X, seeds)
    std = _mmd(X, kk.standard_thin(X, 64))
    assert got <= 1.3 * ref, (got, ref)
    assert got < std / 10 and ref < std / 10, (got, ref, std)


@pytest.mark.parametrize("chunks", [(4096,), (1000, 0, 1, 2047, 0, 1048), (256,) * 16])
def test_quality_does_not_depend_on_the_chunking(chunks):
    """Single chunk, ragged with empty and 1-row chunks, 16 chunks: median MMD (3 seeds) within 1.5x
    of local Compress++'s (same seeds), and the output has exactly `size` valid rows."""
    X = _data(seed=1)
    dX = da.from_array(X, chunks=(chunks, 2))
    seeds = range(3)
    for s in seeds:
        idx = kk.kernel_thin(dX, 64, K, method="compress++", g=3, random_state=s)
        assert idx.dtype == np.int64 and idx.shape == (64,) and idx.min() >= 0 and idx.max() < 4096
    got = _median_mmd(lambda s: kk.kernel_thin(dX, 64, K, method="compress++", g=3, random_state=s), X, seeds)
    ref = _median_mmd(lambda s: kk.kernel_thin(X, 64, K, method="compress++", g=3, random_state=s), X, seeds)
    assert got <= 1.5 * ref, (got, ref)


def test_unequal_chunks_are_weighted_by_their_share():
    """Chunk A: 3000 points of N(0, I); chunk B: 500 of N(6, I). The pool weighs each chunk by its share of
    the rows, so about 1/7 of the output comes from B (+-3 of 70 points) and the MMD stays near local's
    (within 1.5x, 3 seeds). An unweighted union would give B about sqrt(500/3000) of A's points instead."""
    rng = np.random.default_rng(5)
    X = np.vstack([rng.standard_normal((3000, 2)), 6.0 + rng.standard_normal((500, 2))])
    dX = da.from_array(X, chunks=((3000, 500), 2))
    for s in range(3):
        idx = kk.compresspp(dX, 70, K, g=2, random_state=s)
        assert abs(int((idx >= 3000).sum()) - 10) <= 3
    got = _median_mmd(lambda s: kk.compresspp(dX, 70, K, g=2, random_state=s), X, range(3))
    ref = _median_mmd(lambda s: kk.compresspp(X, 70, K, g=2, random_state=s), X, range(3))
    assert got <= 1.5 * ref, (got, ref)


@pytest.mark.parametrize("dask_weights", [False, True])
def test_weights(dask_weights):
    """Weighted target: a zero-weight chunk is never chosen, and the weighted MMD is within 1.3x of
    local weighted Compress++ (3 seeds, the default g = 4: the pool term, about sqrt(P / 4) times local's
    for P = 6 chunks, is then small next to the final thinning's)."""
    X = _data(n=3000, seed=2)
    w = np.random.default_rng(3).uniform(0.2, 2.0, 3000)
    w[1000:1500] = 0.0  # the second chunk weighs nothing
    dX = da.from_array(X, chunks=(500, 2))
    W = da.from_array(w, chunks=700) if dask_weights else w
    for s in range(3):
        idx = kk.compresspp(dX, 50, K, random_state=s, weights=W)
        assert not ((idx >= 1000) & (idx < 1500)).any()
    got = _median_mmd(lambda s: kk.compresspp(dX, 50, K, random_state=s, weights=W), X, range(3), w)
    ref = _median_mmd(lambda s: kk.compresspp(X, 50, K, random_state=s, weights=w), X, range(3), w)
    assert got <= 1.3 * ref, (got, ref)


# --- the divide and conquer, written out -------------------------------------------

def reference_distributed(X, rows, size, g, delta, seed, swap=True):
    """Compress on each chunk's NumPy rows (leaves 4^(g+1) size^2 n_j / n^2, a bin of Compress++), the kept
    rows joined with weights share / kept, one kernel thinning; kernelkit's seed order (spawn(2): chunks, final)."""
    from kernelkit.compress._compresspp import compress_indices
    from kernelkit.compress._kt import run_kt
    n = X.shape[0]
    X = X.astype(np.float64)
    s_parts, s_final = np.random.SeedSequence(seed).spawn(2)
    seeds = s_parts.spawn(len(rows))
    live = sum(r > 0 for r in rows)
    idx, w, start = [], [], 0
    for r, ss in zip(rows, seeds):
        if r:
            leaf = max(1, math.ceil(4 ** (g + 1) * size * size * r / n ** 2))
            kept = compress_indices(K, K, X[start:start + r], np.arange(r), leaf, delta / (2 * live),
                                    ss.spawn(2)[1], swap=swap)
            idx.append(start + kept)
            w.append(np.full(kept.size, r / n / kept.size))
        start += r
    idx, w = np.concatenate(idx), np.concatenate(w)
    uniform = np.ptp(w) <= 1e-12 * w.max()
    local = run_kt(X[idx], size, K, K, delta / 2, s_final, None if uniform else w / w.sum(), swap=swap)
    return idx[local]


@pytest.mark.parametrize("rows", [(512,) * 8, (700, 0, 1, 900, 446)])
@pytest.mark.parametrize("method", ["compress++", "compress"])
def test_matches_the_divide_and_conquer_written_out(rows, method):
    X = _data(n=sum(rows), seed=4)
    dX = da.from_array(X, chunks=(rows, 2))
    got = kk.kernel_thin(dX, 40, K, method=method, g=2, random_state=11)
    np.testing.assert_array_equal(got, reference_distributed(X, rows, 40, 2, 0.5, 11, swap=method == "compress++"))


def test_float32_and_a_tiny_memory_budget_match_the_written_out_version(dtype):
    """float32 and float64 input, and a 4 KB engine budget (every kernel sum blocked, in the tasks too)."""
    rows = (300, 0, 457, 267)
    X = _data(n=sum(rows), seed=12, dtype=dtype)
    dX = da.from_array(X, chunks=(rows, 2))
    want = reference_distributed(X, rows, 33, 2, 0.5, 2)
    with kk.options(memory=2 ** 12):
        got = kk.compresspp(dX, 33, K, g=2, random_state=2)
    np.testing.assert_array_equal(got, want)


# --- seeds, schedulers, results ----------------------------------------------------

def test_reproducible_and_independent_of_the_scheduler():
    X = _data(n=2048, seed=6)
    dX = da.from_array(X, chunks=(300, 2))
    a = kk.compresspp(dX, 45, K, g=2, random_state=3)
    np.testing.assert_array_equal(a, kk.compresspp(dX, 45, K, g=2, random_state=3))
    np.testing.assert_array_equal(a, kk.compresspp(dX, 45, K, g=2, random_state=np.random.SeedSequence(3)))
    with dask.config.set(scheduler="threads", num_workers=2):
        np.testing.assert_array_equal(a, kk.compresspp(dX, 45, K, g=2, random_state=3))
    assert not np.array_equal(a, kk.compresspp(dX, 45, K, g=2, random_state=4))
    with pytest.warns(DeprecationWarning, match="'seed'"):
        np.testing.assert_array_equal(a, kk.kernel_thin(dX, 45, K, method="compress++", g=2, seed=3))


def test_result_float32_and_input_untouched():
    X = _data(n=1500, seed=7, dtype=np.float32)
    copy = X.copy()
    dX = da.from_array(X, chunks=(400, 2))
    r = kk.kernel_thin(dX, 30, K, method="compress++", g=2, random_state=0, with_mmd=True)
    assert isinstance(r, ThinningResult) and r.method == "compress++" and r.rule == "requested"
    assert r.points.dtype == np.float32
    np.testing.assert_array_equal(r.points, X[r.indices])
    assert r.mmd == pytest.approx(kk.mmd(X, X[r.indices], K), rel=1e-9)
    np.testing.assert_array_equal(X, copy)
    auto = kk.kernel_thin(dX, 30, K, g=2, random_state=0, return_result=True)  # "auto" on dask: compress++
    assert auto.method == "compress++" and auto.rule.startswith("auto: dask")
    np.testing.assert_array_equal(auto.indices, r.indices)
    named = kkd.compresspp(dX, 30, "gaussian", bandwidth=2.0, g=2, random_state=0)
    np.testing.assert_array_equal(named, r.indices)


@pytest.mark.parametrize("size", [1, 7, 333, 999, 1000])
def test_any_size(size):
    X = _data(n=1000, seed=8)
    dX = da.from_array(X, chunks=((100, 0, 333, 567), 2))
    idx = kk.compresspp(dX, size, K, g=1, random_state=0)
    assert idx.shape == (size,) and idx.min() >= 0 and idx.max() < 1000
    if size == 1000:
        np.testing.assert_array_equal(idx, np.arange(1000))


def test_tiny_chunks_still_give_size_points():
    """One row per chunk (each chunk's pool is its row): the pool is all n rows, thinned to size."""
    X = _data(n=64, seed=9)
    dX = da.from_array(X, chunks=(1, 2))
    idx = kk.compresspp(dX, 20, K, g=0, random_state=0)
    assert idx.shape == (20,)


# --- bad input ---------------------------------------------------------------------

def test_bad_input():
    X = _data(n=100)
    dX = da.from_array(X, chunks=(30, 2))
    with pytest.raises(kk.InvalidValueError, match="'size' parameter of kernel_thin must be an int in \\[1, 100\\]"):
        kk.compresspp(dX, 101, K)
    with pytest.raises(kk.InvalidValueError, match="'size'"):
        kk.compresspp(dX, 0, K)
    with pytest.raises(kk.NotSupportedError, match="'method' parameter of kernel_thin must be 'auto', 'compress"):
        kk.kernel_thin(dX, 10, K, method="kt")
    with pytest.raises(kk.InvalidValueError, match="'bandwidth'.*median heuristic"):
        kk.compresspp(dX, 10, "gaussian")
    with pytest.raises(kk.InvalidValueError, match="'bandwidth'"):
        kk.kernel_thin(dX, 10, K, bandwidth=1.0)
    with pytest.raises(kk.InvalidTypeError, match="'g'"):
        kk.compresspp(dX, 10, K, g=1.5)
    with pytest.raises(kk.InvalidValueError, match="'delta'"):
        kk.compresspp(dX, 10, K, delta=0.0)
    with pytest.raises(kk.InvalidValueError, match="'weights'.*shape \\(100,\\)"):
        kk.compresspp(dX, 10, K, weights=np.ones(99))
    with pytest.raises(kk.InvalidValueError, match="'weights'.*shape \\(100,\\)"):
        kk.compresspp(dX, 10, K, weights=da.ones(99, chunks=50))
    with pytest.raises(kk.InvalidValueError, match="'weights'"):
        kk.compresspp(dX, 10, K, weights=-np.ones(100))
    with pytest.raises(kk.InvalidValueError, match="'weights'"):  # dask weights: checked in the tasks
        kk.compresspp(dX, 10, K, weights=-da.ones(100, chunks=50))
    with pytest.raises(kk.InvalidValueError, match="'X'"):
        kk.compresspp(da.ones((100,), chunks=10), 10, K)
    Xn = X.copy()
    Xn[77, 1] = np.nan
    with pytest.raises(kk.InvalidValueError, match="'X'.*finite"):  # in a task, raised by the call
        kk.compresspp(da.from_array(Xn, chunks=(30, 2)), 10, K)
    unknown = dX[dX[:, 0] > -10]
    with pytest.raises(kk.InvalidValueError, match="known chunk sizes"):
        kk.compresspp(unknown, 10, K)


def test_only_dask_inputs_are_routed(monkeypatch):
    """NumPy in: the local path, untouched (kernelkit.dask._compress is never called)."""
    import kernelkit.dask._compress as C

    def boom(*a, **k):
        raise AssertionError("routed to dask")
    monkeypatch.setattr(C, "kernel_thin", boom)
    X = _data(n=256)
    assert kk.compresspp(X, 16, K, g=1, random_state=0).shape == (16,)
    with pytest.raises(AssertionError, match="routed"):
        kk.compresspp(da.from_array(X, chunks=(64, 2)), 16, K)


def test_import_kernelkit_does_not_import_dask():
    code = ("import sys, numpy as np, kernelkit as kk, kernelkit.dask; "
            "kk.compresspp(np.random.default_rng(0).standard_normal((300, 2)), 10, kk.Gaussian(1.0), g=1); "
            "assert not [m for m in sys.modules if m == 'dask' or m.startswith('dask.')], 'dask imported'")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


# --- distributed tier --------------------------------------------------------------

@pytest.mark.slow
def test_local_cluster_same_result_as_sync():
    distributed = pytest.importorskip("distributed")
    X = _data(n=4096, seed=10)
    dX = da.from_array(X, chunks=(512, 2))
    want = kk.compresspp(dX, 64, K, g=3, random_state=5)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, memory_limit="1GB",
                                  dashboard_address=None) as cluster, distributed.Client(cluster):
        got = kk.compresspp(dX, 64, K, g=3, random_state=5)
    np.testing.assert_array_equal(got, want)
