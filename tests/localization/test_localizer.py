"""FingerprintLocalizer against a direct loop reference, beacon selection on synthetic buildings, bad input."""

import math

import numpy as np
import pytest

import kernelkit as kk
from kernelkit.datasets import make_building
from kernelkit.localization import (FingerprintLocalizer, beacon_scores, grouped_cv_search, positioning_errors,
                                    rss_representation)


# ------------------------------------------------------------------ the reference: one query at a time
def _ref_distance(x, y, metric):
    if metric == "euclidean":
        return math.sqrt(sum((a - b) ** 2 for a, b in zip(x, y)))
    l1 = sum(abs(a - b) for a, b in zip(x, y))
    if metric == "sorensen":
        den = sum(x) + sum(y)
        return l1 / den if den > 0 else l1
    return l1


def _ref_weights(d, weights, kernel):
    if weights == "uniform":
        return [1.0] * len(d)
    if weights == "distance":
        if any(v == 0 for v in d):
            return [1.0 if v == 0 else 0.0 for v in d]
        return [1.0 / v for v in d]
    h = kernel.bandwidth
    if isinstance(kernel, kk.Laplace):
        logs = [-v / h for v in d]
    else:   # Gaussian
        logs = [-v * v / (2 * h * h) for v in d]
    top = max(logs)
    return [math.exp(v - top) for v in logs]


def _ref_neighbours(Xmap, rows, y, k, metric, weights, kernel):
    d = [(_ref_distance(Xmap[i], y, metric), i) for i in rows]
    d.sort()                                   # by distance, ties by the smaller index
    near = d[:min(k, len(d))]
    return [i for _, i in near], _ref_weights([v for v, _ in near], weights, kernel)


def _ref_vote(labels, idx, w):
    score = {}
    for i, wi in zip(idx, w):
        score[labels[i]] = score.get(labels[i], 0.0) + wi
    best = max(score.values())
    return min(lab for lab, v in score.items() if v == best)


def _ref_locate(Xmap, P, floor, building, Y, k, metric, weights, kernel, hierarchical):
    n = len(Xmap)
    out_p, out_f, out_b = [], [], []
    for y in Y:
        if hierarchical:
            idx, w = _ref_neighbours(Xmap, range(n), y, k, metric, weights, kernel)
            b = _ref_vote(building, idx, w)
            in_b = [(i, wi) for i, wi in zip(idx, w) if building[i] == b]
            f = _ref_vote(floor, [i for i, _ in in_b], [wi for _, wi in in_b])
            rows_f = [i for i in range(n) if building[i] == b and floor[i] == f]
            idx, w = _ref_neighbours(Xmap, rows_f, y, k, metric, weights, kernel)
        else:
            idx, w = _ref_neighbours(Xmap, range(n), y, k, metric, weights, kernel)
            b, f = _ref_vote(building, idx, w), _ref_vote(floor, idx, w)
        tot = sum(w)
        out_p.append([sum(wi * P[i][j] for i, wi in zip(idx, w)) / tot for j in range(len(P[0]))])
        out_f.append(f)
        out_b.append(b)
    return np.array(out_p), np.array(out_f), np.array(out_b)


def _random_map(seed, n=37, nb=7, m=11):
    rng = np.random.default_rng(seed)
    rss = rng.uniform(-100, -30, size=(n + m, nb))
    rss[rng.random((n + m, nb)) < 0.3] = 100.0          # not heard
    rss[np.arange(n + m), rng.integers(nb, size=n + m)] = rng.uniform(-90, -40, size=n + m)   # one heard each
    rss[5] = rss[3]                                      # duplicate fingerprints: ties broken by index
    pos = rng.uniform(0, 50, size=(n, 2))
    floor = rng.integers(0, 3, size=n)
    building = rng.integers(0, 2, size=n)
    return rss[:n], pos, floor, building, rss[n:]


CASES = [("euclidean", kk.Gaussian(0.3)), ("l1", kk.Laplace(0.4, distance="l1")), ("sorensen", kk.Laplace(0.05))]


@pytest.mark.parametrize("metric,kernel", CASES, ids=[c[0] for c in CASES])
@pytest.mark.parametrize("weights", ["kernel", "uniform", "distance"])
@pytest.mark.parametrize("hierarchical", [False, True])
def test_matches_loop_reference(metric, kernel, weights, hierarchical):
    rss, pos, floor, building, queries = _random_map(1)
    k = 4
    model = FingerprintLocalizer(kernel, k=k, metric=metric, weights=weights, hierarchical=hierarchical)
    model.fit(rss, pos, floor=floor, building=building)
    loc = model.locate(queries)
    X = rss_representation(rss)[:, model.beacons_].tolist()
    Y = rss_representation(queries)[:, model.beacons_].tolist()
    rp, rf, rb = _ref_locate(X, pos.tolist(), floor.tolist(), building.tolist(), Y, k, metric, weights, kernel,
                             hierarchical)
    np.testing.assert_allclose(loc.positions, rp, rtol=1e-10, atol=1e-10)
    np.testing.assert_array_equal(loc.floor, rf)
    np.testing.assert_array_equal(loc.building, rb)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_sorensen_exact_where_l1_order_differs_and_blocked(dtype):
    # fingerprints with very different sums: the L1 order and the Bray-Curtis order disagree, so the
    # certificate must widen the candidate set; a tiny memory budget forces the engine's blocked paths
    rng = np.random.default_rng(7)
    n, nb = 301, 9
    scale = rng.uniform(0.05, 1.0, size=(n, 1))
    rss = -100 + 70 * scale * rng.random((n, nb))
    pos = rng.uniform(0, 10, size=(n, 2))
    queries = (-100 + 70 * rng.random((13, nb))).astype(dtype)
    model = FingerprintLocalizer(kk.Laplace(0.1), k=6, metric="sorensen", hierarchical=False)
    model.fit(rss.astype(dtype), pos)
    with kk.options(memory="64KB"):
        got = model.predict(queries)
    X = rss_representation(rss.astype(dtype))[:, model.beacons_].tolist()
    Y = rss_representation(queries)[:, model.beacons_].tolist()
    rp, _, _ = _ref_locate(X, pos.tolist(), [0] * n, [0] * n, Y, 6, "sorensen", "kernel", model.kernel_, False)
    np.testing.assert_allclose(got, rp, rtol=1e-10, atol=1e-10)
    # and the L1 order really differs from the Bray-Curtis order on this data
    l1 = np.abs(np.array(X)[None] - np.array(Y)[:, None]).sum(axis=2)
    bc = l1 / (np.array(X).sum(axis=1)[None] + np.array(Y).sum(axis=1)[:, None])
    assert any(set(np.argsort(l1[j])[:6]) != set(np.argsort(bc[j])[:6]) for j in range(13))


def test_location_aggregation_matches_reference():
    rss, pos, floor, building, queries = _random_map(3, n=40)
    groups = np.arange(40) // 4                   # 10 locations of 4 readings each
    pos = np.repeat(np.random.default_rng(0).uniform(0, 30, size=(10, 2)), 4, axis=0)
    kernel = kk.Laplace(0.05)
    model = FingerprintLocalizer(kernel, k=9, n_locations=2, metric="sorensen", hierarchical=False)
    model.fit(rss, pos, groups=groups)
    got = model.predict(queries)
    X = rss_representation(rss)[:, model.beacons_].tolist()
    for j, y in enumerate(rss_representation(queries)[:, model.beacons_].tolist()):
        idx, w = _ref_neighbours(X, range(40), y, 9, "sorensen", "kernel", kernel)
        tot = {}
        for i, wi in zip(idx, w):
            tot[groups[i]] = tot.get(groups[i], 0.0) + wi
        best = sorted(tot.items(), key=lambda t: -t[1])[:2]
        ref = sum(wt * pos[4 * g] for g, wt in best) / sum(wt for _, wt in best)
        np.testing.assert_allclose(got[j], ref, rtol=1e-10)


# ------------------------------------------------------------------ synthetic buildings
def test_fisher_drops_holding_sensitive_beacons_first():
    data = make_building(n_beacons=12, n_sensitive=3, random_state=0)
    values = rss_representation(data.rss)
    scores = beacon_scores(values, data.groups)
    worst = set(np.argsort(scores)[:3])
    assert worst == set(np.flatnonzero(data.info["sensitive"]))
    model = FingerprintLocalizer(k=5, beacon_selection="fisher", n_beacons=9).fit(data.rss, data.positions,
                                                                                 groups=data.groups)
    assert not data.info["sensitive"][model.beacons_].any()
    np.testing.assert_allclose(model.beacon_scores_, scores)


def test_selection_lowers_error_on_new_holdings():
    # map: holdings 0 and 2 (facing +x and -x); queries: holdings 1 and 3 (facing +y, -y), fresh noise.
    # Holding-sensitive beacons then mislead the match; dropping them must lower the mean error.
    data = make_building(grid=(12, 8), n_beacons=14, n_sensitive=4, sensitive_body_loss=20.0, n_repeats=2,
                         random_state=3)
    hold = data.meta["holding"]
    tr, te = np.isin(hold, (0, 2)), np.isin(hold, (1, 3))
    errs = {}
    for sel in (None, "fisher"):
        model = FingerprintLocalizer(k=5, beacon_selection=sel, n_beacons=10 if sel else None)
        model.fit(data.rss[tr], data.positions[tr], groups=data.groups[tr])
        errs[sel] = positioning_errors(model.predict(data.rss[te]), data.positions[te])["mean"]
    assert errs["fisher"] < 0.85 * errs[None], errs


def test_hierarchy_on_buildings_and_floors():
    data = make_building(grid=(6, 5), n_floors=3, n_buildings=2, n_beacons=6, n_sensitive=0, random_state=1)
    rng = np.random.default_rng(0)
    held = rng.random(len(data)) < 0.25
    model = FingerprintLocalizer(k=5).fit(data.rss[~held], data.positions[~held], floor=data.floor[~held],
                                          building=data.building[~held])
    loc = model.locate(data.rss[held])
    assert np.mean(loc.building == data.building[held]) == 1.0
    assert np.mean(loc.floor == data.floor[held]) >= 0.97
    assert positioning_errors(loc.positions, data.positions[held])["mean"] < 2.0   # grid step 2 m


def test_grouped_cv_keeps_locations_together_and_is_deterministic():
    data = make_building(grid=(6, 5), n_beacons=8, random_state=2)
    grid = {"k": [1, 8], "weights": ["uniform"]}
    a = grouped_cv_search(FingerprintLocalizer(), data.rss, data.positions, grid, groups=data.groups, n_splits=3,
                          random_state=0)
    b = grouped_cv_search(FingerprintLocalizer(), data.rss, data.positions, grid, groups=data.groups, n_splits=3,
                          random_state=0)
    assert a.results == b.results and a.best_params == b.best_params
    for g in np.unique(data.groups):
        assert np.unique(a.folds[data.groups == g]).size == 1
    assert a.best_estimator.k == a.best_params["k"]
    # with a location's own readings held out, the error is that of a new place: > 0
    assert min(r["error"] for r in a.results) > 0.1


def test_representations_and_input_untouched():
    rss = np.array([[-50.0, 100.0, -120.0, -200.0, -110.0, 0.0]])
    before = rss.copy()
    np.testing.assert_allclose(rss_representation(rss, "raw"), [[-50, -110, -110, -110, -110, 0]])
    np.testing.assert_allclose(rss_representation(rss, "positive"), [[60, 0, 0, 0, 0, 110]])
    np.testing.assert_allclose(rss_representation(rss, "powed"),
                               [[(60 / 110) ** math.e, 0, 0, 0, 0, 1.0]])
    np.testing.assert_allclose(rss_representation(rss, "exponential", alpha=24.0),
                               np.exp(np.array([[-50, -110, -110, -110, -110, 0]]) / 24.0))
    np.testing.assert_array_equal(rss, before)
    # an explicit marker: only that value is "not heard"
    np.testing.assert_allclose(rss_representation(np.array([[-200.0, -60.0]]), "positive", not_heard=-200.0),
                               [[0.0, 50.0]])


# ------------------------------------------------------------------ bad input
@pytest.fixture(scope="module")
def small():
    data = make_building(grid=(5, 4), n_beacons=6, n_sensitive=0, random_state=0)
    return data, FingerprintLocalizer(k=3).fit(data.rss, data.positions)


def test_wrong_number_of_beacons(small):
    data, model = small
    with pytest.raises(ValueError, match="6 beacon columns"):
        model.predict(data.rss[:2, :5])


def test_k_larger_than_map(small):
    data, _ = small
    with pytest.raises(ValueError, match=r"'k' parameter .* \[1, 5\]"):
        FingerprintLocalizer(k=6).fit(data.rss[:5], data.positions[:5])


def test_nan_positions_and_rss(small):
    data, _ = small
    pos = data.positions.copy()
    pos[3, 1] = np.nan
    with pytest.raises(ValueError, match="'positions'.*row 3"):
        FingerprintLocalizer(k=3).fit(data.rss, pos)
    rss = data.rss.copy()
    rss[2, 2] = np.nan
    with pytest.raises(ValueError, match="'rss'.*finite"):
        FingerprintLocalizer(k=3).fit(rss, data.positions)


def test_all_beacons_unheard(small):
    data, model = small
    q = data.rss[:3].copy()
    q[1] = 100.0
    with pytest.raises(ValueError, match="hearing none, the first at row 1"):
        model.predict(q)
    fallback = FingerprintLocalizer(k=3, all_unheard="prior").fit(data.rss, data.positions)
    loc = fallback.locate(q)
    assert np.isfinite(loc.positions).all()
    np.testing.assert_array_equal(loc.fallback, [False, True, False])
    np.testing.assert_allclose(loc.positions[1], data.positions.mean(axis=0))
    np.testing.assert_allclose(loc.positions[[0, 2]], model.predict(q[[0, 2]]))


def test_far_query_with_tiny_bandwidth_is_finite(small):
    data, _ = small
    model = FingerprintLocalizer(bandwidth=1e-9, k=3).fit(data.rss, data.positions)
    assert np.isfinite(model.predict(data.rss[:4] + 7.0)).all()


def test_parameter_errors(small):
    data, model = small
    with pytest.raises(ValueError, match="'representation'.*sorensen"):
        FingerprintLocalizer(representation="raw").fit(data.rss, data.positions)
    with pytest.raises(ValueError, match="'bandwidth'"):
        FingerprintLocalizer(kk.Laplace(1.0), bandwidth=0.5).fit(data.rss, data.positions)
    with pytest.raises(ValueError, match="'metric'"):
        FingerprintLocalizer(kk.Laplace(1.0, distance="l1"), metric="euclidean").fit(data.rss, data.positions)
    with pytest.raises(ValueError, match="'weights'"):
        FingerprintLocalizer(weights="inverse").fit(data.rss, data.positions)
    with pytest.raises(ValueError, match="'positions'.*shape"):
        FingerprintLocalizer().fit(data.rss, data.positions[:, :1])
    with pytest.raises(kk.NotFittedError):
        FingerprintLocalizer().predict(data.rss)
    with pytest.raises(kk.NotSupportedError):
        model.predict_floor(data.rss)


def test_non_radial_kernel_through_topk(small):
    data, _ = small
    R = rss_representation(data.rss)
    model = FingerprintLocalizer(kk.Linear(), k=3, metric="kernel", weights="uniform",
                                 hierarchical=False).fit(data.rss, data.positions)
    got = model.predict(data.rss[:5])
    Rm = R[:, model.beacons_]
    for j in range(5):
        sims = Rm @ Rm[j]
        order = sorted(range(len(sims)), key=lambda i: (-sims[i], i))[:3]
        np.testing.assert_allclose(got[j], data.positions[order].mean(axis=0))


def test_query_beacon_selection_matches_reference():
    # n = 37 < 64 candidates: the re-ranking sees the whole map, so it is the exact restricted top-k
    rss, pos, floor, building, queries = _random_map(5)
    model = FingerprintLocalizer(k=4, weights="uniform", query_beacons=3, hierarchical=False).fit(rss, pos)
    got = model.predict(queries)
    X = rss_representation(rss)[:, model.beacons_]
    for j, y in enumerate(rss_representation(queries)[:, model.beacons_]):
        cols = sorted(range(len(y)), key=lambda c: (-y[c], c))[:3]
        d = [(_ref_distance([X[i][c] for c in cols], [y[c] for c in cols], "sorensen"), i) for i in range(len(X))]
        near = [i for _, i in sorted(d)[:4]]
        np.testing.assert_allclose(got[j], pos[near].mean(axis=0), rtol=1e-12)
