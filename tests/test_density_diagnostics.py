"""Density diagnostics: n_eff and the largest share against direct formulas, regimes against simulation."""

import math
import warnings

import numpy as np
import pytest

import kernelkit as kk
from kernelkit.density import density_diagnostics, regime_thresholds
from kernelkit.density._diagnostics import squared_kernel
from kernelkit.exceptions import InvalidValueError, NotFittedError


def _direct(kde, Y):
    """n_eff and largest share from the dense kernel matrix (float64; fine where nothing underflows)."""
    K = kde.kernel_(kde._X.astype(np.float64) / kde._scale, np.asarray(Y, np.float64) / kde._scale)
    T = K * kde._w[:, None]
    return T.sum(0) ** 2 / (T ** 2).sum(0), T.max(0) / T.sum(0)


@pytest.mark.parametrize("kernel", [kk.Gaussian(0.4), kk.Laplace(0.4), kk.IMQ(0.4, 3.0), kk.RationalQuadratic(0.4, 3.0),
                                    kk.Matern(2.5, 0.4)], ids=repr)
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
def test_n_eff_and_share_match_the_direct_formula(kernel, dtype):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(301, 3)).astype(dtype)
    Y = rng.normal(size=(23, 3)).astype(dtype)
    w = rng.random(301)
    kde = kk.KernelDensity(kernel=kernel).fit(X, sample_weight=w)
    r = kde.diagnose(Y, warn=False)
    n_eff, share = _direct(kde, Y)
    rtol = 1e-4 if dtype == np.float32 else 1e-10
    np.testing.assert_allclose(r.n_eff, n_eff, rtol=rtol)
    np.testing.assert_allclose(r.top_share, share, rtol=rtol)
    np.testing.assert_allclose(r.log_density, kde.score_samples(Y), rtol=rtol, atol=1e-5)


def test_squared_kernels_are_the_square():
    rng = np.random.default_rng(1)
    X, Y = rng.normal(size=(7, 3)), rng.normal(size=(5, 3))
    for k in (kk.Gaussian(0.7), kk.Laplace(0.9, distance="l1"), kk.IMQ(1.3, 0.5), kk.RationalQuadratic(0.8, 2.0),
              kk.Matern(0.5, 1.1), 2.0 * kk.Gaussian(1.0), kk.Matern(2.5, 1.0), kk.Gaussian(1.0) + kk.Laplace(2.0)):
        np.testing.assert_allclose(squared_kernel(k)(X, Y), k(X, Y) ** 2, rtol=1e-12)


def test_underflowing_dimension_stays_exact_in_the_log_domain():
    # d = 200 at a small bandwidth: every kernel value is below the smallest float64
    rng = np.random.default_rng(2)
    X = rng.normal(size=(400, 200))
    Y = X[:5] + 0.01 * rng.normal(size=(5, 200))
    kde = kk.KernelDensity(bandwidth=0.05).fit(X)
    r = kde.diagnose(Y, warn=False)
    assert np.all(np.isfinite(r.log_density))
    # the query next to a data point: that point is the whole density
    np.testing.assert_allclose(r.n_eff, 1.0, rtol=1e-9)
    np.testing.assert_allclose(r.top_share, 1.0, rtol=1e-9)
    assert set(r.regime) == {"extreme-value"}
    # two equidistant points at the same (underflowing) distance: n_eff = 2, share 1/2, from the log domain
    Z = np.zeros((2, 200))
    Z[0, 0], Z[1, 0] = -30.0, 30.0
    kde2 = kk.KernelDensity(bandwidth=1.0).fit(Z)
    r2 = kde2.diagnose(np.zeros((1, 200)), warn=False)
    np.testing.assert_allclose(r2.n_eff, [2.0], rtol=1e-12)
    np.testing.assert_allclose(r2.top_share, [0.5], rtol=1e-12)


def test_thresholds_solve_their_equation_and_scale():
    for n, d in ((1_000, 8), (10_000, 32), (100_000, 128)):
        hc, hg = regime_thresholds(n, d)
        u = 1 + 1 / hg ** 2
        assert abs(math.log(u) - (u - 1) / u ** 2 - 2 * math.log(n) / d) < 1e-12
        assert hc == pytest.approx(math.sqrt(2) * hg, rel=1e-14)
        assert regime_thresholds(n, d, scale=3.0)[1] == pytest.approx(3 * hg, rel=1e-14)
    # more points per dimension: smaller thresholds
    assert regime_thresholds(10 ** 5, 32)[1] < regime_thresholds(10 ** 4, 32)[1]


@pytest.mark.parametrize("n,d", [(4_000, 16), (8_000, 48)])
def test_regimes_against_simulation_on_gaussian_data(n, d):
    """On N(0, I) data: well below h_G nearly every query is extreme-value; well above h_CLT all are CLT;
    the median n_eff rises through the thresholds (fixed seeds; margins wide against the finite-size spread)."""
    rng = np.random.default_rng(3)
    X, Y = rng.normal(size=(n, d)), rng.normal(size=(200, d))
    hc, hg = regime_thresholds(n, d)
    med = []
    for h, check in ((0.5 * hg, lambda f: f["extreme-value"] >= 0.9), (hg, None), (hc, None),
                     (3 * hc, lambda f: f["CLT"] == 1.0)):
        r = kk.KernelDensity(bandwidth=h).fit(X).diagnose(Y, warn=False)
        med.append(float(np.median(r.n_eff)))
        if check is not None:
            assert check(r.fractions()), (h, r.fractions())
    assert med[0] < 1.5 and 1.5 < med[1] < 20 and med[1] < med[2] < med[3]
    assert med[2] > 5


def test_summary_warning_and_thresholds_reported():
    rng = np.random.default_rng(4)
    X = rng.normal(size=(2_000, 32))
    kde = kk.KernelDensity(bandwidth=0.3).fit(X)
    with pytest.warns(UserWarning, match="extreme-value regime"):
        r = kde.diagnose(rng.normal(size=(50, 32)))
    assert r.thresholds is not None and r.thresholds[0] > r.thresholds[1] > 0.3
    text = r.summary()
    assert "h_CLT" in text and "n_eff" in text and "extreme-value" in text
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        kk.KernelDensity(bandwidth=5.0).fit(X).diagnose(rng.normal(size=(20, 32)))   # no warning: CLT
    assert kk.KernelDensity(kernel="laplace", bandwidth=1.0).fit(X).diagnose(X[:3], warn=False).thresholds is None


def test_bad_input():
    kde = kk.KernelDensity(bandwidth=1.0)
    with pytest.raises(NotFittedError):
        kde.diagnose(np.zeros((2, 2)))
    kde.fit(np.random.default_rng(0).normal(size=(20, 2)))
    with pytest.raises(InvalidValueError, match="'Y'"):
        kde.diagnose(np.zeros((2, 3)))
    with pytest.raises(InvalidValueError, match="'Y'"):
        kde.diagnose(np.array([[np.nan, 0.0]]))
    with pytest.raises(InvalidValueError, match="'ev_min_share'"):
        kde.diagnose(np.zeros((2, 2)), ev_min_share=1.5)
    with pytest.raises(InvalidValueError, match="'clt_min_neff'"):
        kde.diagnose(np.zeros((2, 2)), clt_min_neff=0.5)
    with pytest.raises(InvalidValueError, match="'n'"):
        regime_thresholds(1, 4)
    with pytest.raises(InvalidValueError, match="'scale'"):
        regime_thresholds(10, 4, scale=0.0)
    assert density_diagnostics is kk.density.density_diagnostics


def _lscv_direct(X, h):
    """LSCV(h) = int p^2 - 2 mean_j p_{-j}(x_j) for the Gaussian KDE, from dense matrices (small n, float64)."""
    from scipy.stats import multivariate_normal
    n, d = X.shape
    D2 = ((X[:, None, :] - X[None, :, :]) ** 2).sum(-1)
    A = np.exp(-D2 / (4 * h * h)).sum() / (n * n) / (4 * math.pi * h * h) ** (d / 2)
    K = np.exp(-D2 / (2 * h * h)) / (2 * math.pi * h * h) ** (d / 2)
    np.fill_diagonal(K, 0.0)
    B = (K.sum(1) / (n - 1)).mean()
    assert multivariate_normal(np.zeros(d), h * h * np.eye(d)).pdf(X[0] - X[1]) == pytest.approx(
        np.exp(-D2[0, 1] / (2 * h * h)) / (2 * math.pi * h * h) ** (d / 2))
    return A - 2 * B


@pytest.mark.parametrize("d", [1, 3])
def test_lscv_matches_the_direct_criterion(d):
    rng = np.random.default_rng(5)
    X = rng.standard_normal((150, d))
    kde = kk.KernelDensity(bandwidth="lscv", cv_grid=9).fit(X)
    ref = np.array([_lscv_direct(X, h) for h in kde.cv_bandwidths_])
    np.testing.assert_allclose(kde.cv_scores_, ref / np.max(np.abs(ref)), rtol=1e-9, atol=1e-12)
    assert kde.bandwidth_ == kde.cv_bandwidths_[int(np.argmin(ref))]


def test_lscv_in_high_dimension_and_errors():
    rng = np.random.default_rng(6)
    X = rng.standard_normal((400, 64))        # every kernel value underflows: the criterion is kept in logs
    kde = kk.KernelDensity(bandwidth="lscv", cv_grid=6).fit(X)
    assert np.all(np.isfinite(kde.cv_scores_)) and kde.bandwidth_ > 0
    with pytest.raises(InvalidValueError, match="'lscv' with kernel='gaussian'"):
        kk.KernelDensity(kernel="laplace", bandwidth="lscv").fit(X)


def test_cli_kde_diagnose_prints_and_plots(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    from kernelkit.cli import main
    rng = np.random.default_rng(7)
    data, query = tmp_path / "x.csv", tmp_path / "q.csv"
    np.savetxt(data, rng.standard_normal((500, 16)), delimiter=",")
    np.savetxt(query, rng.standard_normal((40, 16)), delimiter=",")
    png = tmp_path / "neff.png"
    assert main(["kde", str(data), "--query", str(query), "--bandwidth", "0.4", "--diagnose", str(png)]) == 0
    out = capsys.readouterr().out
    assert "effective number of points" in out and "h_CLT" in out and "extreme-value 100.0%" in out
    assert "warning:" in out and png.stat().st_size > 1000
