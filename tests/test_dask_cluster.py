"""kernelkit.dask on a real cluster: worker loss, memory limits, tasks that cannot fit.

One LocalCluster of 2 single-threaded worker processes (with nannies,
memory limit LIMIT each, dashboard off) is started once for the module.
The oracle is the local engine on the same NumPy arrays (itself checked
against the slow reference in tests/test_engine.py). The tests run in
file order: the worker-kill test comes last, since it replaces a worker.
The whole module is marked slow.
"""

import os
import time

import numpy as np
import pytest

da = pytest.importorskip("dask.array")
dask = pytest.importorskip("dask")
distributed = pytest.importorskip("distributed")

import kernelkit as kk  # noqa: E402
import kernelkit.dask as kkd  # noqa: E402
from kernelkit.exceptions import InvalidValueError  # noqa: E402

pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("ignore::DeprecationWarning"),
              pytest.mark.filterwarnings("ignore:Sending large graph")]

#: memory limit of each worker, bytes
LIMIT = 400 * 10**6


@pytest.fixture(scope="module")
def client():
    with dask.config.set({"scheduler": None, "distributed.scheduler.allowed-failures": 3}):
        with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, memory_limit=LIMIT,
                                      dashboard_address=None) as cluster, distributed.Client(cluster) as c:
            c.wait_for_workers(2)
            yield c


def _pids(client):
    """{worker address: process id}: a restarted worker gets a new address and a new process."""
    return client.run(os.getpid)


def _peak_rss():
    """The worker process's own peak resident size (VmHWM, bytes). Not ru_maxrss: that survives exec, so a
    worker spawned by a large pytest process would report its parent's peak."""
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024   # kB
    pytest.skip("no VmHWM in /proc/self/status")


def _data(n, m, d=3, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, d)), rng.normal(size=(m, d))


def test_derived_budget_sum_without_restart(client):
    # the naive dense block of one task, 50_000 x 2_000 float64 = 800 MB, is twice a worker's whole limit
    X, Y = _data(100_000, 2_000)
    assert 50_000 * 2_000 * 8 > 2 * LIMIT * 0.99
    hosts = kkd._graph._host_threads()
    threads, budget = client.submit(kkd.task_resources, host_threads=hosts, pure=False).result()
    assert budget == int(0.25 * LIMIT)  # the derived budget: memory_fraction of the limit per thread
    before = _pids(client)
    kern = kk.Gaussian(1.0)
    got = client.compute(kk.kernel_sum(kern, da.from_array(X, chunks=(50_000, 3)), Y)).result(timeout=120)
    after = _pids(client)
    assert after == before  # no worker restarted (same addresses, same processes)
    assert max(client.run(_peak_rss).values()) < LIMIT
    np.testing.assert_allclose(got, kk.kernel_sum(kern, X, Y), rtol=1e-12)
    assert client.run_on_scheduler(lambda dask_scheduler: len(dask_scheduler.workers)) == 2


def test_task_that_cannot_fit_is_a_clear_error(client):
    # output partial of one task: 4_000 queries x 10_000 weight columns x 8 B = 320 MB (held twice), past what
    # the 400 MB limit leaves after the engine's budget: an error at once, not a worker killed and rerun
    X, Y = _data(64, 4_000)
    W = np.random.default_rng(3).normal(size=(64, 10_000))
    before = _pids(client)
    graph = kk.kernel_sum(kk.Gaussian(1.0), da.from_array(X, chunks=32), Y, W)
    t0 = time.perf_counter()
    with pytest.raises(InvalidValueError, match=r"memory limit per thread.*memory_fraction=0\.25.*memory_limit"):
        client.compute(graph).result(timeout=60)
    assert time.perf_counter() - t0 < 30
    # top-k: a (m, 2k) candidate list per task that cannot fit either
    Xk, Yk = _data(6_000, 12_000)
    graph = kk.kernel_topk(kk.Gaussian(1.0), da.from_array(Xk, chunks=3_000), Yk, 2_000)[1]
    with pytest.raises(InvalidValueError, match=r"kernel_topk: one task .* needs about"):
        client.compute(graph).result(timeout=60)
    assert _pids(client) == before  # nothing was killed
    # a graph that fits still runs on the same workers afterwards
    small = client.compute(kk.kernel_sum(kk.Gaussian(1.0), da.from_array(X, chunks=32), Y[:50], W[:, :3]))
    np.testing.assert_allclose(small.result(timeout=60), kk.kernel_sum(kk.Gaussian(1.0), X, Y[:50], W[:, :3]),
                               rtol=1e-12)


def test_worker_killed_mid_sum_result_exact(client):
    X, Y = _data(2_400, 300)
    W = np.random.default_rng(5).normal(size=(2_400, 2))  # negative weights too
    delay = 0.25

    def slow(block):  # nested: cloudpickle ships it by value to the workers
        time.sleep(delay)
        return block

    dX = da.from_array(X, chunks=(200, 3)).map_blocks(slow, dtype=X.dtype)  # 12 tasks, 0.25 s each
    kern = kk.Gaussian(0.7)
    before = _pids(client)
    fut = client.compute(kk.kernel_sum(kern, dX, Y, W))

    def n_done(dask_scheduler):  # slowed X blocks already computed
        return sum(1 for ts in dask_scheduler.tasks.values()
                   if ts.state == "memory" and isinstance(ts.key, tuple) and str(ts.key[0]).startswith("slow"))

    deadline = time.monotonic() + 30
    while client.run_on_scheduler(n_done) < 2 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not fut.done()  # the kill lands in the middle of the graph
    busy = [addr for addr, keys in client.processing().items() if keys]
    victim = busy[0] if busy else sorted(before)[0]
    client.run(os._exit, 1, workers=[victim], on_error="ignore")
    got = fut.result(timeout=60)
    np.testing.assert_allclose(got, kk.kernel_sum(kern, X, Y, W), rtol=1e-12)
    client.wait_for_workers(2, timeout=30)
    after = _pids(client)
    assert victim not in after and set(after.values()) != set(before.values())  # the worker did die
