"""FingerprintLocalizer(offsets=...): device-offset-robust matching against a direct loop, and bad input."""

import numpy as np
import pytest

import kernelkit as kk
from kernelkit.datasets import make_building
from kernelkit.localization import FingerprintLocalizer, rss_representation

from test_localizer import _ref_vote as _vote   # the label with the largest weight sum (ties: smallest)


def _ref_shift(row, offset, fill=-110.0):
    """One query row (dBm, +100 = not heard) with ``offset`` added to its heard readings, by a plain loop."""
    out = []
    for v in row:
        heard = fill < v <= 0
        out.append(min(v + offset, 0.0) if heard else v)
    return out


def _ref_dist(x, y, metric):
    if metric == "euclidean":
        return float(np.sqrt(sum((a - b) ** 2 for a, b in zip(x, y))))
    l1 = sum(abs(a - b) for a, b in zip(x, y))
    if metric == "sorensen":
        den = sum(x) + sum(y)
        return l1 / den if den > 0 else l1
    return l1


def _ref_locate(model, rss_map, pos, floor, building, queries, offsets, metric, hierarchical):
    """Loop reference: d(x, y) = min over offsets of d(x, T(y + offset)); kernel-weighted top-k."""
    X = rss_representation(rss_map)[:, model.beacons_].tolist()
    return _ref_locate_map(model, X, pos, floor, building, queries, offsets, metric, hierarchical)


def _ref_locate_map(model, X, pos, floor, building, queries, offsets, metric, hierarchical):
    """:func:`_ref_locate` on a map given as lists: X (represented fingerprints on the model's beacons),
    pos (positions), floor and building labels."""
    cols = model.beacons_
    k, n = model.k, len(X)
    h = model.kernel_.bandwidth
    laplace = isinstance(model.kernel_, kk.Laplace)

    def near(rows, ys):
        d = []
        for i in rows:
            d.append((min(_ref_dist(X[i], y, metric) for y in ys), i))
        d.sort()
        top = d[:min(k, len(d))]
        logs = [(-v / h) if laplace else (-v * v / (2 * h * h)) for v, _ in top]
        w = [float(np.exp(v - max(logs))) for v in logs]
        return [i for _, i in top], w

    P, F, B = [], [], []
    for q in queries:
        ys = [rss_representation(np.array([_ref_shift(q, o)]))[0, cols].tolist() for o in offsets]
        idx, w = near(range(n), ys)
        b = _vote(building, idx, w)
        f = _vote(floor, [i for i in idx if building[i] == b], [wi for i, wi in zip(idx, w) if building[i] == b])
        if hierarchical:
            idx, w = near([i for i in range(n) if building[i] == b and floor[i] == f], ys)
        else:
            b, f = _vote(building, idx, w), _vote(floor, idx, w)
        P.append([sum(wi * pos[i][j] for i, wi in zip(idx, w)) / sum(w) for j in range(pos.shape[1])])
        F.append(f)
        B.append(b)
    return np.array(P), np.array(F), np.array(B)


def _random_map(seed, n=41, nb=7, m=9):
    rng = np.random.default_rng(seed)
    rss = rng.uniform(-105, -30, size=(n + m, nb))
    rss[rng.random((n + m, nb)) < 0.3] = 100.0
    rss[np.arange(n + m), rng.integers(nb, size=n + m)] = rng.uniform(-90, -40, size=n + m)
    rss[n, 0] = -108.5          # a heard reading that offset -3 pushes below fill: it becomes "not heard"
    rss[n + 1, 1] = -1.0        # one that offset +3 would push above 0 dBm: kept at 0
    return (rss[:n], rng.uniform(0, 40, size=(n, 2)), rng.integers(0, 3, size=n), rng.integers(0, 2, size=n),
            rss[n:])


CASES = [("sorensen", kk.Laplace(0.05)), ("l1", kk.Laplace(0.4, distance="l1")), ("euclidean", kk.Gaussian(0.3))]


@pytest.mark.parametrize("metric,kernel", CASES, ids=[c[0] for c in CASES])
@pytest.mark.parametrize("hierarchical", [False, True])
def test_offsets_match_loop_reference(metric, kernel, hierarchical):
    rss, pos, floor, building, queries = _random_map(2)
    offsets = (-3.0, 0.0, 3.0, 7.5)
    model = FingerprintLocalizer(kernel, k=5, metric=metric, offsets=offsets, hierarchical=hierarchical)
    model.fit(rss, pos, floor=floor, building=building)
    loc = model.locate(queries)
    rp, rf, rb = _ref_locate(model, rss, pos, floor.tolist(), building.tolist(), queries.tolist(), offsets, metric,
                             hierarchical)
    np.testing.assert_allclose(loc.positions, rp, rtol=1e-10, atol=1e-10)
    np.testing.assert_array_equal(loc.floor, rf)
    np.testing.assert_array_equal(loc.building, rb)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_offsets_sorensen_blocked_and_odd_sizes(dtype):
    # a tiny memory budget forces the engine's blocked top-k under every offset; odd sizes throughout
    rng = np.random.default_rng(11)
    n, nb, m = 203, 9, 13
    scale = rng.uniform(0.05, 1.0, size=(n, 1))
    rss = (-100 + 70 * scale * rng.random((n, nb))).astype(dtype)
    pos = rng.uniform(0, 10, size=(n, 2))
    queries = (-100 + 70 * rng.random((m, nb))).astype(dtype)
    offsets = (-4.0, 0.0, 5.0)
    model = FingerprintLocalizer(kk.Laplace(0.1), k=7, metric="sorensen", offsets=offsets, hierarchical=False)
    model.fit(rss, pos)
    with kk.options(memory="64KB"):
        got = model.predict(queries)
    rp, _, _ = _ref_locate(model, rss.astype(np.float64), pos, [0] * n, [0] * n,
                           queries.astype(np.float64).tolist(), offsets, "sorensen", False)
    np.testing.assert_allclose(got, rp, rtol=1e-10, atol=1e-10)
    # the offsets matter here: the unshifted method gives other estimates
    plain = FingerprintLocalizer(kk.Laplace(0.1), k=7, metric="sorensen", hierarchical=False).fit(rss, pos)
    assert np.abs(plain.predict(queries) - got).max() > 1e-3


def test_offset_zero_is_the_plain_search():
    rss, pos, floor, building, queries = _random_map(4)
    a = FingerprintLocalizer(k=4).fit(rss, pos, floor=floor, building=building).locate(queries)
    b = FingerprintLocalizer(k=4, offsets=[0]).fit(rss, pos, floor=floor, building=building).locate(queries)
    np.testing.assert_array_equal(a.positions, b.positions)
    np.testing.assert_array_equal(a.floor, b.floor)


def test_offsets_with_kernel_metric_take_the_largest_similarity():
    rss, pos, _, _, queries = _random_map(6)
    offsets = (-5.0, 0.0, 5.0)
    model = FingerprintLocalizer(kk.Linear(), k=3, metric="kernel", weights="uniform", offsets=offsets,
                                 hierarchical=False).fit(rss, pos)
    got = model.predict(queries)
    X = rss_representation(rss)[:, model.beacons_]
    for j, q in enumerate(queries.tolist()):
        ys = [rss_representation(np.array([_ref_shift(q, o)]))[0, model.beacons_] for o in offsets]
        sims = [max(float(X[i] @ y) for y in ys) for i in range(len(X))]
        order = sorted(range(len(sims)), key=lambda i: (-sims[i], i))[:3]
        np.testing.assert_allclose(got[j], pos[order].mean(axis=0), rtol=1e-12)


def test_offsets_recover_a_phone_with_lower_gain():
    # one reading per location is read again by a phone 6 dB less sensitive; the map holds the other
    # readings. Plain matching loses much (0.35 -> 3.1 m at this seed); matching over offsets that include
    # +6 dB gets back within 2x of the same-phone error (0.49 m at this seed; margins: 3x and 2x)
    data = make_building(random_state=0)
    _, first = np.unique(data.groups, return_index=True)
    q = np.zeros(data.rss.shape[0], dtype=bool)
    q[first] = True
    R = data.rss[q]
    weak = np.where(R <= 0, R - 6.0, R)
    base = FingerprintLocalizer(k=5).fit(data.rss[~q], data.positions[~q])
    robust = FingerprintLocalizer(k=5, offsets=(0.0, 3.0, 6.0, 9.0)).fit(data.rss[~q], data.positions[~q])
    e = lambda m, r: float(np.mean(np.linalg.norm(m.predict(r) - data.positions[q], axis=1)))
    e_same, e_weak, e_robust = e(base, R), e(base, weak), e(robust, weak)
    assert e_weak > 3 * e_same               # the offset hurts plain matching ...
    assert e_robust < 2 * e_same             # ... and the offsets undo most of it


def test_input_not_modified():
    rss, pos, _, _, queries = _random_map(8)
    q0 = queries.copy()
    FingerprintLocalizer(k=3, offsets=(-3, 0, 3)).fit(rss, pos).predict(queries)
    np.testing.assert_array_equal(queries, q0)


@pytest.mark.parametrize("bad,match", [
    ("abc", "'offsets'"), ([], "'offsets'.*non-empty"), ([0.0, np.nan], "'offsets'.*finite"),
    ([[0.0, 1.0]], "'offsets'"), ([0, 3, 3], "'offsets'.*distinct"), (list(range(17)), "at most 16"),
    ({"a": 1}, "'offsets'"),
])
def test_bad_offsets(bad, match):
    rss, pos, _, _, _ = _random_map(9)
    with pytest.raises((ValueError, TypeError), match=match):
        FingerprintLocalizer(k=3, offsets=bad).fit(rss, pos)
