"""KernelDensity.fit on a dask X: the moment rules as dask reductions, against the local fit.

Synchronous scheduler. The oracle is the local fit on the same NumPy
arrays (its rules are checked against scipy and closed forms in
tests/test_density.py): same bandwidth, same covariance, same log
densities at rtol 1e-12 in float64 (the chunks' moments are merged in a
different order, a few ulps); float32 log densities at the float32
tolerance of the local float32 fit.
"""

import numpy as np
import pytest

da = pytest.importorskip("dask.array")
dask = pytest.importorskip("dask")

import kernelkit as kk  # noqa: E402
from kernelkit.exceptions import InputError, InvalidValueError  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

#: 157 rows: ragged with an empty chunk, one chunk, one row at the end
CHUNKS = {"ragged": (60, 0, 41, 55, 1), "single": (157,)}


@pytest.fixture(autouse=True)
def sync_scheduler():
    with dask.config.set(scheduler="sync"):
        yield


def _data(dtype=np.float64, n=157, d=3, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d)) * np.array([1.0, 3.0, 0.5][:d] + [1.0] * max(0, d - 3))
    X[:, 0] += 0.4 * X[:, -1]   # some correlation for the full matrix
    Y = rng.normal(size=(23, d)) * 1.5
    return X.astype(dtype), Y.astype(dtype)


def _weights(n, seed=1):
    w = np.random.default_rng(seed).uniform(0.0, 2.0, size=n)
    w[::7] = 0.0   # zero weights: the rows stay sources of nothing and leave the zero-spread check
    return w


def _fit_both(params, X, chunks, w=None, dask_w=False):
    local = kk.KernelDensity(**params).fit(X, sample_weight=w)
    dX = da.from_array(X, chunks=(chunks, -1))
    dw = da.from_array(w, chunks=(chunks,)) if (dask_w and w is not None) else w
    remote = kk.KernelDensity(**params).fit(dX, sample_weight=dw)
    return local, remote


@pytest.mark.parametrize("chunking", CHUNKS)
@pytest.mark.parametrize("rule", ["scott", "silverman"])
@pytest.mark.parametrize("weights", [None, "numpy", "dask"])
def test_rule_matches_local(rule, chunking, weights):
    X, Y = _data()
    w = None if weights is None else _weights(X.shape[0])
    local, remote = _fit_both(dict(bandwidth=rule), X, CHUNKS[chunking], w, dask_w=weights == "dask")
    assert isinstance(remote._X, da.Array)  # X stays on the cluster, lazy
    np.testing.assert_allclose(remote.bandwidth_, local.bandwidth_, rtol=1e-12)
    assert remote.n_features_in_ == 3
    ref = local.score_samples(Y)
    got = remote.score_samples(da.from_array(Y, chunks=10))
    assert isinstance(got, da.Array)
    np.testing.assert_allclose(got.compute(), ref, rtol=1e-12)


def test_weighted_rule_uses_kish_n_eff():
    # the weights change the bandwidth (n_eff and weighted variance), so the comparison above is not vacuous
    X, _ = _data()
    w = _weights(X.shape[0])
    plain = kk.KernelDensity(bandwidth="scott").fit(da.from_array(X, chunks=50)).bandwidth_
    weighted = kk.KernelDensity(bandwidth="scott").fit(da.from_array(X, chunks=50), sample_weight=w).bandwidth_
    assert abs(weighted / plain - 1) > 1e-3
    # direct formula: h = s n_eff^(-1/(d+4)), s^2 the mean of the unbiased weighted variances
    p = w / w.sum()
    var = p @ (X - p @ X) ** 2 / (1 - np.sum(p * p))
    n_eff = w.sum() ** 2 / np.sum(w * w)
    np.testing.assert_allclose(weighted, np.sqrt(var.mean()) * n_eff ** (-1 / 7), rtol=1e-12)


@pytest.mark.parametrize("rule", ["scott", "silverman"])
def test_float32(rule):
    X, Y = _data(np.float32)
    local, remote = _fit_both(dict(bandwidth=rule), X, CHUNKS["ragged"])
    np.testing.assert_allclose(remote.bandwidth_, local.bandwidth_, rtol=1e-12)
    got = remote.score_samples(da.from_array(Y, chunks=10)).compute()
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, local.score_samples(Y), rtol=2e-5)


@pytest.mark.parametrize("spec", ["full", "diagonal", "array"])
@pytest.mark.parametrize("rule", ["scott", "silverman", 0.7])
def test_bandwidth_matrix(spec, rule):
    X, Y = _data()
    w = _weights(X.shape[0])
    matrix = np.array([[2.0, 0.3, 0.0], [0.3, 1.0, 0.1], [0.0, 0.1, 0.5]]) if spec == "array" else spec
    local, remote = _fit_both(dict(bandwidth=rule, bandwidth_matrix=matrix), X, CHUNKS["ragged"], w)
    np.testing.assert_allclose(remote.covariance_, local.covariance_, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(remote.bandwidth_, local.bandwidth_, rtol=1e-12)
    np.testing.assert_allclose(remote.score_samples(da.from_array(Y, chunks=10)).compute(),
                               local.score_samples(Y), rtol=1e-12)


@pytest.mark.parametrize("params", [dict(bandwidth=0.8), dict(kernel=kk.Laplace(1.3)),
                                    dict(kernel="epanechnikov", bandwidth="silverman")])
def test_float_bandwidth_and_kernel_objects(params):
    X, Y = _data()
    local, remote = _fit_both(params, X, CHUNKS["ragged"])
    assert remote.bandwidth_ == local.bandwidth_ or np.isclose(remote.bandwidth_, local.bandwidth_, rtol=1e-12)
    np.testing.assert_allclose(remote.score_samples(da.from_array(Y, chunks=10)).compute(),
                               local.score_samples(Y), rtol=1e-12)


def test_extreme_scale_and_single_point():
    X, _ = _data()
    for scale in (1e300, 1e-300):  # squares overflow / underflow: the rule scales by a power of two
        local, remote = _fit_both(dict(bandwidth="scott"), X * scale, CHUNKS["ragged"])
        np.testing.assert_allclose(remote.bandwidth_, local.bandwidth_, rtol=1e-12)
    one = kk.KernelDensity().fit(da.from_array(X[:1], chunks=1))
    assert one.bandwidth_ == kk.KernelDensity().fit(X[:1]).bandwidth_ == 1.0


@pytest.mark.parametrize("rule", ["cv", "lscv", "isj"])
def test_rules_needing_passes_refused(rule):
    X, _ = _data(d=1)
    with pytest.raises(InvalidValueError, match=rf"'bandwidth' parameter of KernelDensity.*dask.*Got '{rule}'"):
        kk.KernelDensity(bandwidth=rule).fit(da.from_array(X, chunks=50))


def test_errors():
    X, _ = _data()
    dX = da.from_array(X, chunks=50)
    with pytest.raises(InvalidValueError, match="'bounds' parameter"):
        kk.KernelDensity(bounds=[(0, np.inf)] * 3).fit(dX)
    bad = X.copy()
    bad[100, 1] = np.nan
    with pytest.raises(InputError, match="'X'"):  # found by the task of that chunk, at fit time
        kk.KernelDensity().fit(da.from_array(bad, chunks=50))
    w = _weights(X.shape[0])
    w[3] = -1.0
    with pytest.raises(InputError, match="sample_weight"):
        kk.KernelDensity().fit(dX, sample_weight=da.from_array(w, chunks=50))
    with pytest.raises(InvalidValueError, match="positive sum"):
        kk.KernelDensity().fit(dX, sample_weight=da.zeros(X.shape[0], chunks=50))
    with pytest.raises(InvalidValueError, match="shape"):
        kk.KernelDensity().fit(dX, sample_weight=da.ones(X.shape[0] - 1, chunks=50))
    with pytest.raises(InvalidValueError, match="zero spread"):
        kk.KernelDensity(bandwidth="silverman").fit(da.ones((40, 2), chunks=15))
    with pytest.raises(InvalidValueError, match="constant"):
        kk.KernelDensity(bandwidth_matrix="diagonal").fit(da.from_array(np.c_[X[:, :2], np.ones(157)], chunks=50))
    with pytest.raises(InvalidValueError, match="bandwidth_matrix"):
        kk.KernelDensity(bandwidth_matrix="wide").fit(dX)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_numpy_queries_on_a_dask_fitted_estimate_give_a_lazy_result(dtype):
    rng = np.random.default_rng(11)
    X = rng.standard_normal((400, 2)).astype(dtype)
    Y = rng.standard_normal((37, 2)).astype(dtype)
    local = kk.KernelDensity(bandwidth="scott").fit(X)
    remote = kk.KernelDensity(bandwidth="scott").fit(da.from_array(X, chunks=150))
    got = remote.score_samples(Y)
    assert hasattr(got, "compute")
    np.testing.assert_allclose(got.compute(), local.score_samples(Y), rtol=1e-5 if dtype == np.float32 else 1e-12)
