"""Device-and-location cross-validation: disjoint folds in both devices and locations, determinism, a loop
reference for grouped_cv_search(devices=...), bad input."""

import numpy as np
import pytest

from kernelkit.datasets import make_building
from kernelkit.localization import FingerprintLocalizer, device_location_folds, grouped_cv_search


def _toy(seed=0, n=400, n_loc=40, n_dev=7):
    rng = np.random.default_rng(seed)
    groups = rng.integers(0, n_loc, n)
    devices = rng.integers(0, n_dev, n) * 10 + 3          # ids need not be 0..n_dev-1
    return groups, devices


@pytest.mark.parametrize("n_splits,n_device_splits", [(3, 3), (2, 4), (4, 2)])
def test_cells_hold_out_new_devices_at_new_locations(n_splits, n_device_splits):
    groups, devices = _toy()
    lf, df = device_location_folds(groups, devices, n_splits, n_device_splits, random_state=5)
    assert lf.shape == df.shape == groups.shape
    # a fold is a property of the location / of the device
    for g in np.unique(groups):
        assert np.unique(lf[groups == g]).size == 1
    for d in np.unique(devices):
        assert np.unique(df[devices == d]).size == 1
    assert set(lf.tolist()) == set(range(n_splits)) and set(df.tolist()) == set(range(n_device_splits))
    tested = np.zeros(groups.size, dtype=int)
    for a in range(n_device_splits):
        for b in range(n_splits):
            te = (df == a) & (lf == b)
            tr = (df != a) & (lf != b)
            tested += te
            assert not (te & tr).any()
            # no device and no location of the test cell is in its radio map
            assert not set(devices[te].tolist()) & set(devices[tr].tolist())
            assert not set(groups[te].tolist()) & set(groups[tr].tolist())
    assert (tested == 1).all()                               # every reading tested exactly once


def test_folds_are_balanced_and_deterministic():
    groups, devices = _toy(1)
    a = device_location_folds(groups, devices, 3, 3, random_state=7)
    b = device_location_folds(groups, devices, 3, 3, random_state=7)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    c = device_location_folds(groups, devices, 3, 3, random_state=8)
    assert not (np.array_equal(a[0], c[0]) and np.array_equal(a[1], c[1]))
    # balanced by readings: largest first to the lightest fold keeps the loads within one location's count
    loads = np.bincount(a[0], minlength=3)
    assert loads.max() - loads.min() <= np.bincount(groups).max()


def test_grouped_cv_search_with_devices_matches_a_loop():
    data = make_building(grid=(6, 5), n_beacons=8, n_holdings=4, random_state=3)
    n = data.rss.shape[0]
    devices = np.arange(n) % 4                               # the four holdings play four phones
    grid = {"k": [2, 6], "weights": ["uniform"]}
    s = grouped_cv_search(FingerprintLocalizer(), data.rss, data.positions, grid, groups=data.groups,
                          devices=devices, n_splits=3, n_device_splits=2, refit=False, random_state=1)
    lf, df = device_location_folds(data.groups, devices, 3, 2, random_state=1)
    np.testing.assert_array_equal(s.folds, df * 3 + lf)
    for row in s.results:
        errs, sizes = [], []
        for a in range(2):
            for b in range(3):
                te = (df == a) & (lf == b)
                tr = (df != a) & (lf != b)
                if not te.any():
                    continue
                m = FingerprintLocalizer(**row["params"]).fit(data.rss[tr], data.positions[tr], groups=data.groups[tr])
                e = np.sqrt(((m.predict(data.rss[te]) - data.positions[te]) ** 2).sum(axis=1))
                errs.append(e.mean())
                sizes.append(te.sum())
        np.testing.assert_allclose(row["fold_errors"], errs, rtol=1e-12)
        np.testing.assert_allclose(row["error"], np.dot(errs, sizes) / np.sum(sizes), rtol=1e-12)
    assert s.best_error == min(r["error"] for r in s.results) > 0.1


def test_location_only_folds_unchanged_by_the_device_option():
    data = make_building(grid=(6, 5), n_beacons=8, random_state=2)
    grid = {"k": [3]}
    a = grouped_cv_search(FingerprintLocalizer(), data.rss, data.positions, grid, groups=data.groups, n_splits=3,
                          refit=False, random_state=4)
    assert len(a.results[0]["fold_errors"]) == 3
    for g in np.unique(data.groups):
        assert np.unique(a.folds[data.groups == g]).size == 1


def test_bad_input_names_the_parameter():
    groups, devices = _toy()
    with pytest.raises(ValueError, match="devices"):
        device_location_folds(groups, devices[:-1])
    with pytest.raises(ValueError, match="n_device_splits"):
        device_location_folds(groups, devices, 3, 50)
    with pytest.raises(ValueError, match="n_splits"):
        device_location_folds(groups, devices, 500, 3)
    with pytest.raises(ValueError, match="n_device_splits"):
        device_location_folds(groups, devices, 3, 1)
    data = make_building(grid=(4, 4), n_beacons=6, random_state=0)
    with pytest.raises(ValueError, match="devices"):
        grouped_cv_search(FingerprintLocalizer(), data.rss, data.positions, {"k": [2]}, groups=data.groups,
                          devices=np.zeros(3))
