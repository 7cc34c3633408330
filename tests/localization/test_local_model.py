"""FingerprintLocalizer(local_model="ridge"): the local ridge fit against a direct primal loop, and bad input."""

import numpy as np
import pytest

import kernelkit as kk
from kernelkit.localization import FingerprintLocalizer, rss_representation

from test_offsets import _random_map, _ref_dist, _ref_shift, _vote


def _ref_ridge(model, rss_map, pos, floor, building, queries, offsets, metric, hierarchical, lam):
    """Loop reference in the primal form: B = (sum w z z^T + lam I)^-1 sum w z (p - pbar)^T, one query at a time.

    Neighbours: min over offsets of d(x, T(y + offset)), kernel weights; the regression uses the unshifted T(y).
    """
    cols = model.beacons_
    X = rss_representation(rss_map)[:, cols]
    k, n = model.k, X.shape[0]
    h = model.kernel_.bandwidth

    def near(rows, ys):
        d = sorted((min(_ref_dist(X[i].tolist(), y, metric) for y in ys), i) for i in rows)[:min(k, len(rows))]
        logs = [-v / h for v, _ in d]
        return [i for _, i in d], [float(np.exp(v - max(logs))) for v in logs]

    out = []
    for q in queries:
        ys = [rss_representation(np.array([_ref_shift(q, o)]))[0, cols].tolist() for o in offsets]
        y0 = rss_representation(np.array([q]))[0, cols]
        idx, w = near(range(n), ys)
        if hierarchical:
            b = _vote(building, idx, w)
            f = _vote(floor, [i for i in idx if building[i] == b], [wi for i, wi in zip(idx, w) if building[i] == b])
            idx, w = near([i for i in range(n) if building[i] == b and floor[i] == f], ys)
        w = np.array(w) / sum(w)
        xbar = sum(wi * X[i] for i, wi in zip(idx, w))
        pbar = sum(wi * pos[i] for i, wi in zip(idx, w))
        A = lam * np.eye(X.shape[1])
        R = np.zeros((X.shape[1], pos.shape[1]))
        for i, wi in zip(idx, w):
            z = X[i] - xbar
            A += wi * np.outer(z, z)
            R += wi * np.outer(z, pos[i] - pbar)
        B = np.linalg.solve(A, R)
        out.append(pbar + (y0 - xbar) @ B)
    return np.array(out)


@pytest.mark.parametrize("offsets", [None, (-3.0, 0.0, 3.0), (-2.0, 4.0)])
@pytest.mark.parametrize("hierarchical", [False, True])
@pytest.mark.parametrize("lam", [1e-3, 0.1])
def test_local_ridge_matches_primal_loop(offsets, hierarchical, lam):
    rss, pos, floor, building, queries = _random_map(5)
    model = FingerprintLocalizer(kk.Laplace(0.05), k=6, metric="sorensen", offsets=offsets,
                                 hierarchical=hierarchical, local_model="ridge", ridge=lam)
    model.fit(rss, pos, floor=floor, building=building)
    got = model.locate(queries)
    ref = _ref_ridge(model, rss, pos, floor, building, queries, offsets or (0.0,), "sorensen", hierarchical, lam)
    np.testing.assert_allclose(got.positions, ref, rtol=1e-8, atol=1e-8)
    # floor and building votes are those of the plain weighted mean
    plain = FingerprintLocalizer(kk.Laplace(0.05), k=6, metric="sorensen", offsets=offsets,
                                 hierarchical=hierarchical).fit(rss, pos, floor=floor, building=building)
    base = plain.locate(queries)
    np.testing.assert_array_equal(got.floor, base.floor)
    np.testing.assert_array_equal(got.building, base.building)
    assert np.abs(got.positions - base.positions).max() > 1e-6     # the local fit moved the estimates


def test_local_ridge_tends_to_the_weighted_mean_and_reproduces_a_linear_map():
    rss, pos, floor, building, queries = _random_map(6)
    plain = FingerprintLocalizer(kk.Laplace(0.05), k=8, hierarchical=False).fit(rss, pos)
    huge = FingerprintLocalizer(kk.Laplace(0.05), k=8, hierarchical=False, local_model="ridge",
                                ridge=1e12).fit(rss, pos)
    np.testing.assert_allclose(huge.predict(queries), plain.predict(queries), rtol=0, atol=1e-8)
    # positions an exact linear function of the fingerprints: a tiny ridge recovers it at the query
    model = FingerprintLocalizer(kk.Laplace(0.05), k=12, hierarchical=False, local_model="ridge", ridge=1e-10)
    X = rss_representation(rss)
    heard = (X > 0).any(axis=0)
    M = np.random.default_rng(0).normal(size=(int(heard.sum()), 2))
    lin = X[:, heard] @ M
    model.fit(rss, lin)
    want = rss_representation(queries)[:, heard] @ M
    np.testing.assert_allclose(model.predict(queries), want, rtol=1e-5, atol=1e-5)


def test_local_ridge_bad_input():
    rss, pos, floor, building, queries = _random_map(7)
    with pytest.raises(ValueError, match="local_model"):
        FingerprintLocalizer(local_model="lwr").fit(rss, pos)
    with pytest.raises(ValueError, match="ridge"):
        FingerprintLocalizer(local_model="ridge", ridge=0.0).fit(rss, pos)
    with pytest.raises(ValueError, match="n_locations"):
        FingerprintLocalizer(local_model="ridge", n_locations=2).fit(rss, pos)
