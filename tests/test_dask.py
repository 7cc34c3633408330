"""kernelkit on dask arrays (kernelkit.dask): every reduction against the local engine.

Fast tier: dask's synchronous scheduler (no processes). The oracle is the
local engine on the same NumPy arrays, itself checked against the slow
reference in tests/test_engine.py; sums are also checked against a dense
NumPy formula here. The distributed tier (a LocalCluster of 2 processes) is
marked slow.
"""

import os
import subprocess
import sys

import numpy as np
import pytest

da = pytest.importorskip("dask.array")
dask = pytest.importorskip("dask")

import kernelkit as kk  # noqa: E402
import kernelkit.dask as kkd  # noqa: E402
from kernelkit.exceptions import InputError  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

#: row chunkings of n = 103 rows: ragged with empty chunks, a single chunk, one row per chunk at the end
CHUNKINGS = {
    "ragged": (40, 0, 31, 1, 0, 31),
    "single": (103,),
    "tiny": (50, 50, 1, 1, 1),
}


@pytest.fixture(autouse=True)
def sync_scheduler():
    with dask.config.set(scheduler="sync"):
        yield


def _data(dtype, n=103, m=29, d=3, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, d)).astype(dtype), rng.normal(size=(m, d)).astype(dtype)


def _rtol(dtype):
    return 1e-12 if dtype == np.float64 else 2e-5


def _dense_sum(kernel, X, Y, W):
    """Obviously correct: the dense block in float64 times the weights."""
    K = kernel(X.astype(np.float64), Y.astype(np.float64))  # (n, m)
    return K.T @ W


@pytest.mark.parametrize("chunking", CHUNKINGS)
@pytest.mark.parametrize("p", [None, 1, 3])
def test_sum_matches_local(dtype, chunking, p):
    X, Y = _data(dtype)
    rng = np.random.default_rng(1)
    W = None if p is None else rng.normal(size=(X.shape[0], p) if p > 1 else X.shape[0])  # negative weights too
    k = kk.Gaussian(0.9)
    dX = da.from_array(X, chunks=(CHUNKINGS[chunking], 3))
    out = kk.kernel_sum(k, dX, Y, W)
    assert isinstance(out, da.Array)  # lazy
    got = out.compute()
    want = kk.kernel_sum(k, X, Y, W)
    assert got.dtype == want.dtype == dtype and got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=_rtol(dtype), atol=_rtol(dtype) * np.abs(want).max())
    dense = _dense_sum(k, X, Y, np.ones(X.shape[0]) if W is None else W)
    np.testing.assert_allclose(got, dense, rtol=_rtol(dtype), atol=_rtol(dtype) * np.abs(dense).max())


def test_sum_dask_weights_and_dask_y_chunks(dtype):
    """Weights as a dask array with chunks unlike X's (realigned), Y chunked too, float32 weights."""
    X, Y = _data(dtype, n=71, m=23)
    W = np.random.default_rng(2).normal(size=(71, 2)).astype(np.float32)
    k = kk.Laplace(1.3)
    dX = da.from_array(X, chunks=((30, 41), 3))
    dY = da.from_array(Y, chunks=((5, 0, 18), 3))
    dW = da.from_array(W, chunks=((10, 61), 2))
    got = kk.kernel_sum(k, dX, dY, dW).compute()
    np.testing.assert_allclose(got, kk.kernel_sum(k, X, Y, W), rtol=_rtol(dtype))


@pytest.mark.parametrize("pairs_per_task", [1, 37, 10 ** 9])
def test_numpy_x_with_dask_y_cut_by_pairs_per_task(pairs_per_task):
    X, Y = _data(np.float64, n=64, m=17)
    k = kk.Matern(nu=1.5, bandwidth=0.8)
    dY = da.from_array(Y, chunks=((10, 7), 3))
    out = kkd.kernel_sum(k, X, dY, np.arange(64.0) - 30, pairs_per_task=pairs_per_task, fan_in=2)
    # the NumPy X is cut into max(1, pairs_per_task // 10) rows per block (10: the largest Y chunk)
    rows = max(1, min(64, pairs_per_task // 10))
    pairs = [name for name in out.dask.layers if name.startswith("sum_task")]
    assert len(out.dask.layers[pairs[0]]) == -(-64 // rows) * 2
    assert out.shape == (17,)
    np.testing.assert_allclose(out.compute(), kk.kernel_sum(k, X, Y, np.arange(64.0) - 30), rtol=1e-12)


def test_numpy_in_numpy_out_unchanged():
    X, Y = _data(np.float64)
    out = kk.kernel_sum(kk.Gaussian(1.0), X, Y)
    assert type(out) is np.ndarray
    v, i = kk.kernel_topk(kk.Gaussian(1.0), X, Y, 3)
    assert type(v) is np.ndarray and type(i) is np.ndarray


@pytest.mark.parametrize("chunking", CHUNKINGS)
@pytest.mark.parametrize("p", [None, 2])
def test_logsumexp_matches_local(dtype, chunking, p):
    X, Y = _data(dtype, d=40)  # d = 40, bandwidth 0.05: every kernel value underflows float64
    k = kk.Gaussian(0.05)
    rng = np.random.default_rng(3)
    LW = None if p is None else np.log(rng.uniform(size=(X.shape[0], p)))
    if LW is not None:
        LW[:45] = -np.inf  # zero weights: whole chunks (and one chunk's every row) are -inf
    dX = da.from_array(X, chunks=(CHUNKINGS[chunking], 40))
    got = kk.kernel_logsumexp(k, dX, Y, LW).compute()
    want = kk.kernel_logsumexp(k, X, Y, LW)
    assert np.all(np.isfinite(want)) and want.max() < -700  # the case that needs the log domain
    assert got.dtype == want.dtype == dtype
    np.testing.assert_allclose(got, want, rtol=_rtol(dtype))


def test_logsumexp_all_minus_inf_column():
    X, Y = _data(np.float64)
    LW = np.zeros((X.shape[0], 2))
    LW[:, 1] = -np.inf
    dX = da.from_array(X, chunks=((50, 53), 3))
    got = kk.kernel_logsumexp(kk.Gaussian(1.0), dX, Y, LW).compute()
    assert np.all(got[:, 1] == -np.inf)
    np.testing.assert_allclose(got[:, 0], kk.kernel_logsumexp(kk.Gaussian(1.0), X, Y), rtol=1e-12)


def test_lse_merge_is_exact_in_the_log_domain():
    from kernelkit.dask._graph import _lse_merge
    parts = np.array([[[-1000.0]], [[-1000.0 + np.log(3.0)]], [[-np.inf]]])
    np.testing.assert_allclose(_lse_merge(parts)[0, 0, 0], -1000.0 + np.log(4.0), rtol=1e-15)
    assert _lse_merge(np.full((3, 1, 1), -np.inf))[0, 0, 0] == -np.inf


@pytest.mark.parametrize("chunking", CHUNKINGS)
@pytest.mark.parametrize("k", [1, 4, 60])
def test_topk_identical_to_local(dtype, chunking, k):
    X, Y = _data(dtype)
    kern = kk.Gaussian(1.1)
    dX = da.from_array(X, chunks=(CHUNKINGS[chunking], 3))
    v, i = kk.kernel_topk(kern, dX, Y, k)
    assert isinstance(v, da.Array) and isinstance(i, da.Array)
    v, i = dask.compute(v, i)
    v0, i0 = kk.kernel_topk(kern, X, Y, k)
    assert v.dtype == v0.dtype == dtype and i.dtype == np.int64
    np.testing.assert_array_equal(i, i0)
    np.testing.assert_allclose(v, v0, rtol=_rtol(dtype))


def test_topk_ties_to_the_smaller_index():
    """Duplicated points in different chunks: equal values, the smaller row index comes first."""
    base = np.random.default_rng(4).normal(size=(10, 2))
    X = np.concatenate([base, base, base])  # row r, r + 10, r + 20 tie
    Y = base[:4] + 0.01
    dX = da.from_array(X, chunks=((7, 13, 10), 2))
    v, i = dask.compute(*kk.kernel_topk(kk.Gaussian(1.0), dX, Y, 5))
    v0, i0 = kk.kernel_topk(kk.Gaussian(1.0), X, Y, 5)
    np.testing.assert_array_equal(i, i0)
    np.testing.assert_array_equal(i[:, :3], np.arange(4)[:, None] + np.array([0, 10, 20]))


def test_x_and_y_both_dask_and_same_array():
    X, _ = _data(np.float64, n=50)
    dX = da.from_array(X, chunks=((20, 30), 3))
    got = kk.kernel_sum(kk.Gaussian(0.7), dX, dX).compute()
    np.testing.assert_allclose(got, kk.kernel_sum(kk.Gaussian(0.7), X, X), rtol=1e-12)


def test_column_chunks_are_merged():
    X, Y = _data(np.float64, d=5)
    dX = da.from_array(X, chunks=((50, 53), (2, 3)))
    got = kk.kernel_sum(kk.Gaussian(1.5), dX, Y).compute()
    np.testing.assert_allclose(got, kk.kernel_sum(kk.Gaussian(1.5), X, Y), rtol=1e-12)


def test_tiny_memory_budget_forces_blocked_tasks(dtype):
    X, Y = _data(dtype, n=300, m=41)
    dX = da.from_array(X, chunks=((150, 150), 3))
    got = kk.kernel_sum(kk.Gaussian(1.0), dX, Y, memory=4096, backend="numpy").compute()
    np.testing.assert_allclose(got, kk.kernel_sum(kk.Gaussian(1.0), X, Y), rtol=_rtol(dtype))


# --- errors --------------------------------------------------------------------

def test_errors_at_graph_time():
    X, Y = _data(np.float64)
    dX = da.from_array(X, chunks=50)
    with pytest.raises(InputError, match="'Y'.*as many features"):
        kk.kernel_sum(kk.Gaussian(1.0), dX, Y[:, :2])
    with pytest.raises(InputError, match="'weights'.*shape"):
        kk.kernel_sum(kk.Gaussian(1.0), dX, Y, np.ones(5))
    with pytest.raises(InputError, match="'k'"):
        kk.kernel_topk(kk.Gaussian(1.0), dX, Y, 104)
    with pytest.raises(InputError, match="'X'.*at least 1 row"):
        kk.kernel_sum(kk.Gaussian(1.0), dX[:0], Y)
    with pytest.raises(InputError, match="positive kernel"):
        kk.kernel_logsumexp(kk.Linear(0.0), dX, Y)
    with pytest.raises(InputError, match="'pairs_per_task'"):
        kkd.kernel_sum(kk.Gaussian(1.0), dX, Y, pairs_per_task=0)
    with pytest.raises(InputError, match="'fan_in'"):
        kkd.kernel_sum(kk.Gaussian(1.0), dX, Y, fan_in=1)
    with pytest.raises(InputError, match="'backend'"):
        kk.kernel_sum(kk.Gaussian(1.0), dX, Y, backend="spark")
    unknown = dX[dX[:, 0] > 0]  # unknown chunk sizes
    with pytest.raises(InputError, match="compute_chunk_sizes"):
        kk.kernel_sum(kk.Gaussian(1.0), unknown, Y)


def test_nan_raises_at_compute_time():
    X, Y = _data(np.float64)
    X[77, 1] = np.nan
    out = kk.kernel_sum(kk.Gaussian(1.0), da.from_array(X, chunks=50), Y)
    with pytest.raises(InputError, match="finite"):
        out.compute()


def test_import_kernelkit_does_not_import_dask():
    code = ("import sys, numpy as np, kernelkit as kk; "
            "kk.kernel_sum(kk.Gaussian(1.0), np.ones((3, 2)), np.ones((2, 2))); "
            "kk.KernelDensity(bandwidth=1.0).fit(np.ones((3, 2))).score_samples(np.ones((2, 2))); "
            "kk.mmd(np.ones((3, 2)), np.zeros((2, 2)), bandwidth=1.0); import kernelkit.dask; "
            "assert not [m for m in sys.modules if m == 'dask' or m.startswith('dask.')], 'dask imported'")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


def test_missing_dask_is_a_clear_error():
    code = ("import sys; sys.modules['dask'] = None; sys.modules['dask.array'] = None\n"
            "import numpy as np, kernelkit.dask as kkd\n"
            "try:\n    kkd.kernel_sum(__import__('kernelkit').Gaussian(1.0), np.ones((3, 2)), np.ones((2, 2)))\n"
            "except ImportError as e:\n    assert \"pip install 'kernelkit[dask]'\" in str(e), e\n"
            "else:\n    raise SystemExit('no error')\n")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


# --- graph shape and task resources ----------------------------------------------

def test_graph_shape_one_task_per_pair_and_tree_fan_in():
    X, Y = _data(np.float64, n=64, m=20)
    dX = da.from_array(X, chunks=8)  # 8 X blocks
    dY = da.from_array(Y, chunks=10)  # 2 Y blocks
    out = kkd.kernel_sum(kk.Gaussian(1.0), dX, dY, fan_in=2)
    layers = out.dask.layers
    pair_layers = [name for name in layers if name.startswith("sum_task")]
    assert len(pair_layers) == 1
    assert len(layers[pair_layers[0]]) == 8 * 2  # one task per (X block, Y block) pair
    # fan-in 2 over 8 X blocks, per Y block: 4 + 2 merges, then the last one (which casts): 7 tasks per Y
    # block, and nothing else (no per-block chunk, getitem or cast tasks)
    merges = [name for name in layers if name.startswith("kernel-sum-")]
    assert len(merges) == 1 and len(layers[merges[0]]) == 7 * 2
    assert len(layers) == 4  # X, Y, the pairs, the tree
    with kkd.graph_options(fan_in=8):
        flat = kkd.kernel_sum(kk.Gaussian(1.0), dX, dY)
    assert [len(v) for k, v in flat.dask.layers.items() if k.startswith("kernel-sum-")] == [2]  # one per Y block


def test_task_resources_split_cores(monkeypatch):
    from kernelkit.dask import _graph
    monkeypatch.setattr(_graph, "_cores", lambda: 8)

    class _State:
        nthreads = 2

    class _Memory:
        memory_limit = 4 * 10 ** 9

    class _Worker:
        state = _State()
        memory_manager = _Memory()

    monkeypatch.setattr(_graph, "_current_worker", lambda: _Worker())
    assert kkd.task_resources() == (4, int(0.25 * 4e9 / 2))
    assert kkd.task_resources(memory=10 ** 6, threads=3) == (3, 10 ** 6)
    monkeypatch.setattr(_graph, "_worker_host", lambda w: "10.0.0.1")
    # 4 workers of 2 threads on this 8-core host: 1 thread per task
    assert kkd.task_resources(host_threads={"10.0.0.1": 8})[0] == 1
    monkeypatch.setattr(_graph, "_current_worker", lambda: None)
    assert kkd.task_resources()[0] == 8  # synchronous scheduler: one task at a time
    with dask.config.set(scheduler="threads", num_workers=4):
        assert kkd.task_resources()[0] == 2


def test_tasks_get_explicit_threads_and_budget(monkeypatch):
    """The engine inside a task sees the task's threads and budget, not the client's defaults."""
    from kernelkit.dask import _graph
    from kernelkit.engine import _numpy
    seen = []
    real = _numpy.kernel_sum

    def spy(kernel, X, Y, W, opts):
        seen.append((opts.threads, opts.memory))
        return real(kernel, X, Y, W, opts)

    monkeypatch.setattr(_numpy, "kernel_sum", spy)
    monkeypatch.setattr(_graph, "task_resources", lambda memory, threads, fraction, hosts: (1, 12345))
    X, Y = _data(np.float64)
    kk.kernel_sum(kk.Gaussian(1.0), da.from_array(X, chunks=60), Y, backend="numpy").compute()
    assert seen == [(1, 12345)] * 2


# --- methods -----------------------------------------------------------------------

def test_kde_score_samples(dtype):
    X, Y = _data(dtype, n=200, m=37, d=2)
    kde = kk.KernelDensity(bandwidth=0.4).fit(X)
    got = kde.score_samples(da.from_array(Y, chunks=((10, 0, 27), 2)))
    assert isinstance(got, da.Array)
    got = got.compute()
    want = kde.score_samples(Y)
    assert got.dtype == want.dtype
    np.testing.assert_allclose(got, want, rtol=_rtol(dtype))
    with pytest.raises(InputError, match="features"):
        kde.score_samples(da.from_array(Y[:, :1], chunks=10))


def test_mmd(dtype):
    X, Y = _data(dtype, n=90, m=60)
    Y = Y + 0.3
    wx = np.random.default_rng(5).uniform(size=90)
    k = kk.Gaussian(1.2)
    dX = da.from_array(X, chunks=((40, 50), 3))
    dY = da.from_array(Y, chunks=((0, 60), 3))
    for kw in ({}, {"weights_x": wx}, {"weights_x": da.from_array(wx, chunks=30), "squared": True}):
        got = kk.mmd(dX, dY, k, **kw)
        assert isinstance(got, da.Array)
        local = {**kw, "weights_x": wx} if "weights_x" in kw else kw
        np.testing.assert_allclose(float(got), kk.mmd(X, Y, k, **local), rtol=1e-10)
    assert float(kk.mmd(dX, dY, "gaussian", bandwidth=1.2)) == pytest.approx(kk.mmd(X, Y, k), rel=1e-10)
    with pytest.raises(InputError, match="'bandwidth'"):
        kk.mmd(dX, dY)
    bad = da.from_array(-wx, chunks=30)
    with pytest.raises(InputError, match="non-negative"):
        float(kk.mmd(dX, dY, k, weights_x=bad))


def test_private_kernel_sum_exact_sum_then_client_noise(dtype):
    from kernelkit.privacy._noise import _seeded_noise_for_tests
    X, Y = _data(dtype, n=120, m=15, d=2)
    kw = dict(epsilon=1.0, radius=3.0, bandwidth=1.0, n_features=64, random_state=7)
    with _seeded_noise_for_tests(11):
        local = kk.PrivateKernelSum(**kw).fit(X)
    with _seeded_noise_for_tests(11):
        dist = kk.PrivateKernelSum(**kw).fit(da.from_array(X, chunks=((50, 0, 70), 2)))
    np.testing.assert_array_equal(dist.sums_, local.sums_)  # same exact statistic, same noise draw
    q = dist.query(da.from_array(Y, chunks=7), return_std=True)
    assert isinstance(q[0], da.Array)
    v, s = dask.compute(*q)
    v0, s0 = local.query(Y, return_std=True)
    np.testing.assert_allclose(v, v0, rtol=1e-12)
    np.testing.assert_allclose(s, s0, rtol=1e-12)


def test_private_sum_noise_is_not_drawn_in_tasks(monkeypatch):
    """The tasks return exact integer statistics (a rerun gives the same numbers); noise comes after, once."""
    from kernelkit.dask import _methods
    from kernelkit.privacy import _noise
    events = []
    real_noise, real_stat = _noise.noise_generator, _methods._block_stat

    def noise():
        events.append(("noise", None))
        return real_noise()

    def stat(*a):
        out = real_stat(*a)
        events.append(("task", out.copy()))
        return out

    monkeypatch.setattr(_noise, "noise_generator", noise)
    monkeypatch.setattr(_methods, "_block_stat", stat)
    X, _ = _data(np.float64, n=50, d=2)
    kk.PrivateKernelSum(epsilon=1.0, radius=3.0, bandwidth=1.0, n_features=32).fit(da.from_array(X, chunks=25))
    kinds = [kind for kind, _ in events]
    assert kinds == ["task", "task", "noise"]  # one draw, after both tasks
    for _, out in events[:2]:
        np.testing.assert_array_equal(out, np.rint(out))  # integers (grid units): nothing noisy in a task
    events.clear()  # a second run of the same graph (a rerun) gives the same statistics
    est = kk.PrivateKernelSum(epsilon=1.0, radius=3.0, bandwidth=1.0, n_features=32, random_state=4)
    est.fit(da.from_array(X, chunks=25))
    first = [out for kind, out in events if kind == "task"]
    events.clear()
    est.fit(da.from_array(X, chunks=25))
    second = [out for kind, out in events if kind == "task"]
    # the same task outputs (in whatever order the threaded scheduler finished them)
    assert len(first) == len(second) == 2
    assert sorted(a.tobytes() for a in first) == sorted(b.tobytes() for b in second)


def test_private_sum_nan_is_refused_before_the_budget_is_spent():
    X, _ = _data(np.float64, n=40, d=2)
    X[33, 0] = np.nan
    acc = kk.PrivacyAccountant(epsilon=1.0)
    est = kk.PrivateKernelSum(epsilon=0.5, radius=3.0, bandwidth=1.0, n_features=32, accountant=acc)
    with pytest.raises(InputError, match="finite"):
        est.fit(da.from_array(X, chunks=20))
    assert acc.spent == (0.0, 0.0) and not acc.ledger


@pytest.mark.parametrize("metric", ["l1", "l2"])
def test_private_distance_sum(metric):
    from kernelkit.privacy._noise import _seeded_noise_for_tests
    X, Y = _data(np.float64, n=80, m=9, d=3)
    kw = dict(epsilon=2.0, radius=3.0, levels=6, random_state=3)
    with _seeded_noise_for_tests(5):
        local = kk.PrivateDistanceSum(metric, **kw).fit(X)
    with _seeded_noise_for_tests(5):
        dist = kk.PrivateDistanceSum(metric, **kw).fit(da.from_array(X, chunks=((33, 47), 3)))
    np.testing.assert_array_equal(dist.counts_, local.counts_)
    np.testing.assert_array_equal(dist.sums_, local.sums_)
    np.testing.assert_allclose(dist.query(da.from_array(Y, chunks=4)).compute(), local.query(Y), rtol=1e-12)


# --- distributed tier ------------------------------------------------------------------

@pytest.mark.slow
def test_local_cluster_two_processes():
    distributed = pytest.importorskip("distributed")
    X, Y = _data(np.float64, n=2000, m=50)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, memory_limit="1GB",
                                  dashboard_address=None) as cluster, distributed.Client(cluster) as client:
        dX = da.from_array(X, chunks=300)
        got = client.compute(kk.kernel_sum(kk.Gaussian(1.0), dX, Y)).result()
        np.testing.assert_allclose(got, kk.kernel_sum(kk.Gaussian(1.0), X, Y), rtol=1e-12)
        v, i = client.compute(list(kk.kernel_topk(kk.Gaussian(1.0), dX, Y, 7)), sync=True)
        np.testing.assert_array_equal(i, kk.kernel_topk(kk.Gaussian(1.0), X, Y, 7)[1])
        lse = kk.kernel_logsumexp(kk.Gaussian(0.1), dX, Y).compute()
        np.testing.assert_allclose(lse, kk.kernel_logsumexp(kk.Gaussian(0.1), X, Y), rtol=1e-12)
        # what a task gets on these workers: the host's cores shared by the 2 worker threads, 1/4 of 1 GB
        from kernelkit.dask._graph import _host_threads
        hosts = _host_threads()
        assert sum(hosts.values()) == 2
        got = client.submit(kkd.task_resources, host_threads=hosts, pure=False).result()
        assert got == (max(1, len(os.sched_getaffinity(0)) // 2), int(0.25 * 1e9))
