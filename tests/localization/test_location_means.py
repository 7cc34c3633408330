"""FingerprintLocalizer(location_means=True): the map with one mean fingerprint per location, against a loop."""

import numpy as np
import pytest

import kernelkit as kk
from kernelkit.localization import FingerprintLocalizer, rss_representation

from test_offsets import _random_map, _ref_locate_map


def _ref_means_locate(model, rss_map, pos, floor, building, groups, queries, offsets, metric, hierarchical):
    """Loop reference: the map's fingerprints plus, per location (sorted ids), the mean fingerprint at the mean
    position with the first reading's labels; then min-over-offsets kernel-weighted top-k, as test_offsets."""
    cols = model.beacons_
    X = rss_representation(rss_map)[:, cols].tolist()
    P = [list(p) for p in pos.tolist()]
    F, B = list(floor), list(building)
    for g in sorted(set(groups.tolist())):
        rows = [i for i in range(len(groups)) if groups[i] == g]
        X.append([sum(X[i][j] for i in rows) / len(rows) for j in range(len(cols))])
        P.append([sum(pos[i][j] for i in rows) / len(rows) for j in range(pos.shape[1])])
        F.append(floor[rows[0]])
        B.append(building[rows[0]])
    return _ref_locate_map(model, X, np.array(P), F, B, queries, offsets, metric, hierarchical)


CASES = [("sorensen", kk.Laplace(0.05)), ("euclidean", kk.Gaussian(0.3)), ("l1", kk.Laplace(0.4, distance="l1"))]


@pytest.mark.parametrize("metric,kernel", CASES, ids=[c[0] for c in CASES])
@pytest.mark.parametrize("hierarchical", [False, True])
@pytest.mark.parametrize("offsets", [(0.0,), (-6.0, -3.0, 0.0, 3.0, 6.0)], ids=["plain", "offsets"])
def test_location_means_match_loop_reference(metric, kernel, hierarchical, offsets):
    rss, pos, floor, building, queries = _random_map(3)
    groups = np.random.default_rng(5).integers(0, 9, size=rss.shape[0]) * 7 + 2     # 9 locations, odd ids
    model = FingerprintLocalizer(kernel, k=6, metric=metric, offsets=offsets, hierarchical=hierarchical,
                                 location_means=True)
    model.fit(rss, pos, floor=floor, building=building, groups=groups)
    G = np.unique(groups).size
    assert model.map_.shape[0] == rss.shape[0] + G
    loc = model.locate(queries)
    rp, rf, rb = _ref_means_locate(model, rss, pos, floor.tolist(), building.tolist(), groups, queries.tolist(),
                                   offsets, metric, hierarchical)
    np.testing.assert_allclose(loc.positions, rp, rtol=1e-10, atol=1e-10)
    np.testing.assert_array_equal(loc.floor, rf)
    np.testing.assert_array_equal(loc.building, rb)
    # the means change the estimates (the option is not a no-op here)
    plain = FingerprintLocalizer(kernel, k=6, metric=metric, offsets=offsets, hierarchical=hierarchical)
    plain.fit(rss, pos, floor=floor, building=building, groups=groups)
    assert np.abs(plain.predict(queries) - loc.positions).max() > 1e-6


def test_location_means_fallback_uses_the_readings_only():
    rss, pos, floor, building, queries = _random_map(4)
    groups = np.arange(rss.shape[0]) % 5
    model = FingerprintLocalizer(k=4, location_means=True, all_unheard="prior").fit(rss, pos, floor=floor,
                                                                                     building=building, groups=groups)
    silent = np.full((1, rss.shape[1]), 100.0)
    loc = model.locate(silent)
    assert loc.fallback[0]
    np.testing.assert_allclose(loc.positions[0], pos.mean(axis=0), rtol=1e-12)
    vals, counts = np.unique(floor, return_counts=True)
    assert loc.floor[0] == vals[np.argmax(counts)]


def test_location_means_with_n_locations_and_bad_value():
    rss, pos, floor, building, queries = _random_map(6)
    groups = np.arange(rss.shape[0]) % 6
    m = FingerprintLocalizer(k=8, n_locations=2, location_means=True).fit(rss, pos, groups=groups)
    assert m.predict(queries).shape == (queries.shape[0], 2)
    with pytest.raises((ValueError, TypeError), match="location_means"):
        FingerprintLocalizer(k=3, location_means="yes").fit(rss, pos)
