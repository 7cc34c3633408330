"""Online MMD drift detector: the statistic against a direct MMD^2, calibration of the run length, detection."""

import numpy as np
import pytest

from kernelkit.stats import MMDDriftDetector, mmd2


def test_statistic_is_mmd2_of_reference_and_window():
    rng = np.random.default_rng(0)
    det = MMDDriftDetector(window_size=8, ert=50, n_bootstraps=200, n_calibration_steps=20, random_state=0)
    det.fit(rng.standard_normal((120, 2)))
    stream = rng.standard_normal((20, 2))
    outs = [det.update(p) for p in stream]
    assert all(np.isnan(o["statistic"]) and not o["drift"] for o in outs[:7])
    for t in (7, 12, 19):   # the window holds stream[t - 7 : t + 1]
        assert outs[t]["statistic"] == pytest.approx(mmd2(det.reference_, stream[t - 7:t + 1], det.kernel_),
                                                     abs=1e-12)
        assert outs[t]["threshold"] == det.thresholds_[min(t - 7, 19)]
    det.reset()
    assert det.t_ == 0 and np.isnan(det.update(stream[0])["statistic"])


def test_null_run_length_near_ert_and_drift_detected():
    rng = np.random.default_rng(1)
    ert = 40
    det = MMDDriftDetector(window_size=10, ert=ert, n_bootstraps=1000, n_calibration_steps=60, random_state=0)
    det.fit(rng.standard_normal((600, 1)))
    lengths = []
    for r in range(30):
        det.reset()
        s = np.random.default_rng(100 + r)
        while True:
            o = det.update(s.standard_normal(1))
            if o["drift"] or o["time"] > 20 * ert:
                break
        lengths.append(o["time"] - 9)
    # geometric with mean 40 over 30 runs: the sample mean has sd ~ 40 / sqrt(30) = 7.3; allow [0.5, 1.6] x ert
    assert 0.5 * ert <= np.mean(lengths) <= 1.6 * ert
    det.reset()
    s = np.random.default_rng(7)
    t = next(o["time"] for o in (det.update(s.standard_normal(1) + 2.0) for _ in range(200)) if o["drift"])
    assert t <= 15


def test_bad_input():
    X = np.random.default_rng(0).standard_normal((30, 2))
    with pytest.raises(ValueError, match="'X_ref'"):
        MMDDriftDetector(window_size=25).fit(X)
    with pytest.raises(ValueError, match="'ert'"):
        MMDDriftDetector(ert=1).fit(X)
    with pytest.raises(ValueError, match="'fit'"):
        MMDDriftDetector().update(X[0])
    det = MMDDriftDetector(window_size=5, n_bootstraps=100, n_calibration_steps=5).fit(X)
    with pytest.raises(ValueError, match="'x'"):
        det.update(np.zeros(3))
