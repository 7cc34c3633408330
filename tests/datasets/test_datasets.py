"""Loaders against the known shapes of the shared files (skipped without them); the synthetic building."""

import os
import zipfile

import numpy as np
import pytest

from kernelkit.datasets import load_ibeacon_rssi, load_ujiindoorloc, make_building

DATA = os.path.join(os.path.dirname(__file__), "..", "..", "..", "shared", "data", "indoor")
UJI = os.path.join(DATA, "UJIIndoorLoc.zip")
IBEACON = os.path.join(DATA, "iBeacon_RSSI_Labeled.csv")


@pytest.mark.skipif(not os.path.exists(UJI), reason="../shared/data/indoor/UJIIndoorLoc.zip not present")
def test_ujiindoorloc_shapes():
    va = load_ujiindoorloc(UJI, "validation")
    assert va.rss.shape == (1111, 520) and va.positions.shape == (1111, 2)
    assert va.not_heard == 100.0 and va.beacons[0] == "WAP001" and va.beacons[-1] == "WAP520"
    assert set(np.unique(va.building)) == {0, 1, 2} and set(np.unique(va.floor)) == {0, 1, 2, 3, 4}
    heard = va.rss[va.rss != 100]
    assert heard.min() >= -104 and heard.max() <= 0
    # metres in the data set's projected system (UTM-like): the campus spans a few hundred metres
    span = va.positions.max(axis=0) - va.positions.min(axis=0)
    assert 200 < span[0] < 500 and 100 < span[1] < 300
    # the training file: its row count, then the loader on its first rows (parsing all 19,937 takes seconds)
    with zipfile.ZipFile(UJI) as z:
        assert z.read("UJIIndoorLoc/trainingData.csv").count(b"\n") == 19937 + 1
    tr = load_ujiindoorloc(UJI, "training", max_rows=300)
    assert tr.rss.shape == (300, 520) and tr.positions.shape == (300, 2)
    assert set(tr.meta) == {"space", "relative_position", "user", "phone", "timestamp"}
    assert len(np.unique(tr.groups)) < 300                       # several readings per reference point


@pytest.mark.skipif(not os.path.exists(IBEACON), reason="../shared/data/indoor/iBeacon_RSSI_Labeled.csv not present")
def test_ibeacon_shapes():
    d = load_ibeacon_rssi(IBEACON, cell_size=2.0)
    assert d.rss.shape == (1420, 13) and d.positions.shape == (1420, 2)
    assert d.not_heard == -200.0 and d.floor is None
    assert len(np.unique(d.groups)) == len(np.unique(d.meta["location"])) == 105
    i = int(np.flatnonzero(d.meta["location"] == "O02")[0])
    np.testing.assert_array_equal(d.positions[i], [2.0 * 14, 2.0 * 2])      # O = 15th letter, row 2


def test_loader_errors(tmp_path):
    with pytest.raises(FileNotFoundError):
        load_ibeacon_rssi(tmp_path / "missing.csv")
    bad = tmp_path / "bad.csv"
    bad.write_text("a,b,c\n1,2,3\n")
    with pytest.raises(ValueError, match="not the iBeacon RSSI table"):
        load_ibeacon_rssi(bad)
    with pytest.raises(ValueError, match="not a UJIIndoorLoc table"):
        load_ujiindoorloc(bad)
    with pytest.raises(ValueError, match="'subset'"):
        load_ujiindoorloc(bad, "test")


def test_make_building_is_deterministic_and_physical():
    a = make_building(n_floors=2, random_state=5)
    b = make_building(n_floors=2, random_state=5)
    np.testing.assert_array_equal(a.rss, b.rss)
    assert a.rss.shape == (10 * 8 * 2 * 4 * 2, 24)
    heard = a.rss != 100.0
    assert heard.mean() > 0.5 and a.rss[heard].max() < -20
    # the holding-sensitive beacons vary more within a location than the others
    within = np.array([[np.var(a.rss[(a.groups == g) & heard[:, j], j]) if ((a.groups == g) & heard[:, j]).sum() > 1
                        else np.nan for j in range(24)] for g in range(0, 160, 7)])
    sens = a.info["sensitive"]
    assert np.nanmean(within[:, sens]) > 4 * np.nanmean(within[:, ~sens])
    with pytest.raises(ValueError, match="'n_sensitive'"):
        make_building(n_beacons=2, n_sensitive=3)
