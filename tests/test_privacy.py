"""kernelkit.privacy: accuracy against exact references, semantics, bad input, persistence."""

import math
import pickle

import numpy as np
import pytest
from scipy.spatial.distance import cdist

import kernelkit as kk
from kernelkit.privacy import (BudgetExceededError, PrivacyAccountant, PrivateDistanceSum, PrivateKernelSum,
                               PrivateSimilarityClassifier)
from kernelkit.privacy import _noise
from kernelkit.privacy._noise import _seeded_noise_for_tests  # test-only hook: seeded noise


def _data(n=700, d=5, seed=0, dtype=np.float64):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, d)).astype(dtype), rng.standard_normal((37, d)).astype(dtype)


# --- noise ----------------------------------------------------------------------------------------
def test_discrete_laplace_matches_its_law():
    rng = np.random.default_rng(1)
    scale = 3.0
    z = _noise.discrete_laplace(scale, 200_000, rng)
    assert z.dtype == np.int64
    q = math.exp(-1 / scale)
    for k in (0, 1, -2, 5):
        p = (1 - q) / (1 + q) * q ** abs(k)
        se = math.sqrt(p * (1 - p) / z.size)
        assert abs(np.mean(z == k) - p) < 5 * se
    assert abs(z.std() - _noise.discrete_laplace_std(scale)) < 0.02 * _noise.discrete_laplace_std(scale)


def test_gaussian_sigma_is_calibrated():
    for eps, delta in [(0.5, 1e-5), (1.0, 1e-6), (4.0, 1e-3)]:
        s = _noise.gaussian_sigma(eps, delta, 2.0)
        assert _noise._gaussian_delta(s, eps, 2.0) <= delta * (1 + 1e-9)
        assert _noise._gaussian_delta(s * 0.99, eps, 2.0) > delta
    # the analytic sigma beats the classical sqrt(2 ln(1.25/delta)) Delta / eps for eps < 1
    assert _noise.gaussian_sigma(0.5, 1e-5, 1.0) < math.sqrt(2 * math.log(1.25e5)) / 0.5


def test_noise_is_not_reproducible_from_random_state():
    X, _ = _data()
    a = PrivateKernelSum(kk.Gaussian(1.0), epsilon=1.0, radius=5.0, n_features=64, random_state=3).fit(X)
    b = PrivateKernelSum(kk.Gaussian(1.0), epsilon=1.0, radius=5.0, n_features=64, random_state=3).fit(X)
    np.testing.assert_array_equal(a.feature_map_.omega, b.feature_map_.omega)  # public part repeats
    assert not np.array_equal(a.sums_, b.sums_)  # noise does not


# --- kernel sums ----------------------------------------------------------------------------------
def _noiseless_rff(est, X, Y):
    """Reference: the same public feature map, no noise, no snapping."""
    fm = est.feature_map_
    S = fm.transform(X).astype(np.float64).sum(axis=0)
    return fm.transform(Y).astype(np.float64) @ S / fm.n_freq


@pytest.mark.parametrize("method", ["rff", "orf", "jl", "lsq-rff"])
@pytest.mark.parametrize("delta", [0.0, 1e-6])
def test_kernel_sum_noise_within_error_bars(method, delta):
    X, Y = _data(n=900, d=6)
    with _seeded_noise_for_tests(11):
        est = PrivateKernelSum(kk.Gaussian(2.0), epsilon=1.0, delta=delta, radius=10.0, n_features=200,
                               method=method, reduced_dim=4, random_state=0).fit(X)
        values, std = est.query(Y, return_std=True)
    z = (values - _noiseless_rff(est, X, Y)) / std
    assert np.all(np.abs(z) < 5)
    # the stated error bar is the noise's standard deviation: same answer, fresh noise, many times
    with _seeded_noise_for_tests(12):
        zs = []
        for _ in range(60):
            est2 = PrivateKernelSum(kk.Gaussian(2.0), epsilon=1.0, delta=delta, radius=10.0, n_features=200,
                                    method=method, reduced_dim=4, random_state=0).fit(X)
            zs.append((est2.query(Y[:1])[0] - _noiseless_rff(est2, X, Y[:1])[0]) / std[0])
    assert 0.7 < np.std(zs) < 1.35


@pytest.mark.parametrize("method", ["rff", "orf"])
@pytest.mark.parametrize("kernel", [kk.Gaussian(1.5), kk.Laplace(2.0), kk.Matern(2.5, 1.5), kk.IMQ(2.0)])
def test_kernel_sum_close_to_exact_engine(kernel, method):
    X, Y = _data(n=3000, d=3)
    with _seeded_noise_for_tests(5):
        est = PrivateKernelSum(kernel, epsilon=1.0, delta=1e-6, radius=6.0, n_features=4096, method=method,
                               random_state=0).fit(X)
        values, std = est.query(Y, return_std=True)
    exact = kk.kernel_sum(kernel, X, Y)
    rel = np.abs(values - exact) / exact
    assert np.median(rel) < 0.05
    assert np.all(std < 0.01 * exact.mean())


def test_kernel_sum_dtypes_and_blocked_path_give_identical_release(dtype):
    X, Y = _data(n=501, d=7)
    kw = dict(epsilon=2.0, radius=4.0, n_features=34, random_state=1)
    with _seeded_noise_for_tests(3):
        ref = PrivateKernelSum(kk.Gaussian(1.0), **kw).fit(X)
    with _seeded_noise_for_tests(3), kk.options(memory=4096, threads=2):
        blocked = PrivateKernelSum(kk.Gaussian(1.0), **kw).fit(X.astype(dtype))
        q_blocked = blocked.query(Y.astype(dtype))
    # float32 input is converted exactly to float64 for the phases, so the snapped sums are the same
    if dtype == np.float64:
        np.testing.assert_array_equal(ref.sums_, blocked.sums_)
    else:
        X32 = X.astype(np.float32).astype(np.float64)
        with _seeded_noise_for_tests(3):
            ref = PrivateKernelSum(kk.Gaussian(1.0), **kw).fit(X32)
        np.testing.assert_array_equal(ref.sums_, blocked.sums_)
    np.testing.assert_allclose(q_blocked, ref.query(Y.astype(dtype)), rtol=1e-5, atol=1e-5)


def test_kernel_sum_clips_to_declared_ball():
    rng = np.random.default_rng(2)
    X = rng.standard_normal((200, 3)) * 10
    center = np.array([1.0, -1.0, 0.5])
    Z = X - center
    nrm = np.linalg.norm(Z, axis=1, keepdims=True)
    clipped = center + Z * np.minimum(1, 3.0 / nrm)
    kw = dict(epsilon=1.0, radius=3.0, center=center, n_features=40, random_state=0)
    with _seeded_noise_for_tests(9):
        a = PrivateKernelSum(kk.Gaussian(1.0), **kw).fit(X)
    with _seeded_noise_for_tests(9):
        b = PrivateKernelSum(kk.Gaussian(1.0), **kw).fit(clipped)
    np.testing.assert_array_equal(a.sums_, b.sums_)
    assert "clipped" in a.privacy_["domain"]


def test_released_state_only_sanitized_and_pickle_carries_no_data(tmp_path):
    X, Y = _data(n=300, d=4)
    est = PrivateKernelSum(kk.Gaussian(1.0), epsilon=1.0, radius=5.0, n_features=32, random_state=0).fit(X)
    blob = pickle.dumps(est)
    for row in X[:20]:
        assert row.tobytes() not in blob
        assert row.astype(np.float32).tobytes() not in blob
    for value in vars(est).values():
        assert not (isinstance(value, np.ndarray) and value.shape[0] == X.shape[0])
    exact_sums = est.feature_map_.transform(X).astype(np.float64).sum(axis=0)
    assert not np.allclose(est.sums_, exact_sums, atol=1e-6)  # noisy, not the raw statistic
    path = tmp_path / "sketch.npz"
    est.save(path)
    with np.load(path, allow_pickle=False) as z:
        assert all(z[k].dtype != object for k in z.files)
    back = PrivateKernelSum.load(path)
    np.testing.assert_array_equal(back.query(Y), est.query(Y))
    assert back.privacy_ == est.privacy_
    for key in ("epsilon", "delta", "neighbouring", "n_public", "domain", "budget_split", "mechanism"):
        assert key in est.privacy_


def test_replace_one_doubles_sensitivity():
    X, _ = _data(n=50)
    a = PrivateKernelSum(kk.Gaussian(1.0), epsilon=1.0, radius=5.0, n_features=16).fit(X)
    b = PrivateKernelSum(kk.Gaussian(1.0), epsilon=1.0, radius=5.0, n_features=16, neighbouring="replace-one").fit(X)
    assert b.privacy_["sensitivity_l1_grid_units"] == pytest.approx(2 * a.privacy_["sensitivity_l1_grid_units"])
    assert b.noise_std_ > 1.9 * a.noise_std_ and b.privacy_["n_public"] and not a.privacy_["n_public"]


@pytest.mark.parametrize("kwargs, match", [
    (dict(epsilon=0.0), "'epsilon'"), (dict(epsilon=-1.0), "'epsilon'"), (dict(epsilon=float("nan")), "'epsilon'"),
    (dict(delta=1.0), "'delta'"), (dict(delta=-0.1), "'delta'"), (dict(radius=None), "'radius'"),
    (dict(radius=-2.0), "'radius'"), (dict(method="magic"), "'method'"), (dict(n_features=7, method="rff"),
                                                                           "'n_features'"),
    (dict(neighbouring="swap"), "'neighbouring'"), (dict(kernel=kk.Linear()), "'kernel'"),
    (dict(kernel=2.0 * kk.Gaussian(1.0)), "'kernel'"),
    (dict(kernel=kk.Laplace(1.0), method="jl"), "'method'"), (dict(center=[0.0, 1.0]), "'center'"),
])
def test_kernel_sum_bad_input(kwargs, match):
    X, _ = _data(n=20, d=3)
    params = dict(kernel=kk.Gaussian(1.0), epsilon=1.0, radius=2.0)
    params.update(kwargs)
    kernel = params.pop("kernel")
    with pytest.raises(ValueError, match=match):
        PrivateKernelSum(kernel, **params).fit(X)


def test_kernel_sum_bad_data_and_queries():
    X, _ = _data(n=20, d=3)
    X[3, 1] = np.nan
    with pytest.raises(ValueError, match="'X'.*finite"):
        PrivateKernelSum(kk.Gaussian(1.0), epsilon=1.0, radius=2.0).fit(X)
    est = PrivateKernelSum(kk.Gaussian(1.0), epsilon=1.0, radius=2.0)
    with pytest.raises(ValueError, match="not fitted"):
        est.query(np.zeros((1, 3)))
    est.fit(np.zeros((4, 3)))
    with pytest.raises(ValueError, match="'Y'.*3 features"):
        est.query(np.zeros((1, 2)))


# --- accountant -----------------------------------------------------------------------------------
def test_accountant_composition_and_overspending():
    acc = PrivacyAccountant(epsilon=1.0, delta=1e-6)
    X, _ = _data(n=30, d=2)
    PrivateKernelSum(kk.Gaussian(1.0), epsilon=0.6, delta=5e-7, radius=3.0, n_features=8, accountant=acc).fit(X)
    assert acc.spent == pytest.approx((0.6, 5e-7))
    with pytest.raises(BudgetExceededError, match="budget exceeded"):
        PrivateDistanceSum("l1", epsilon=0.5, radius=3.0, accountant=acc).fit(X)
    assert len(acc.ledger) == 1  # the refused release is not recorded
    PrivateDistanceSum("l1", epsilon=0.4, delta=5e-7, radius=3.0, accountant=acc).fit(X)
    assert acc.remaining[0] == pytest.approx(0.0, abs=1e-12)
    with pytest.raises(ValueError, match="'epsilon'"):
        PrivacyAccountant(epsilon=0)
    with pytest.raises(ValueError, match="'delta'"):
        PrivacyAccountant(epsilon=1, delta=1.5)


# --- distance sums --------------------------------------------------------------------------------
@pytest.mark.parametrize("metric", ["l1", "l2"])
@pytest.mark.parametrize("d", [1, 4])
def test_distance_sum_against_exact(metric, d, dtype):
    rng = np.random.default_rng(d)
    X = rng.uniform(-1, 1, (1001, d)).astype(dtype)
    Y = rng.uniform(-1.3, 1.3, (23, d)).astype(dtype)
    radius = 1.0 if metric == "l1" else math.sqrt(d)
    exact = cdist(Y.astype(float), X.astype(float), "cityblock" if metric == "l1" else "euclidean").sum(axis=1)
    L = 9
    with _seeded_noise_for_tests(4), kk.options(memory=4096):
        est = PrivateDistanceSum(metric, epsilon=1.0, radius=radius, levels=L, n_projections=60,
                                 random_state=0).fit(X)
        values, std = est.query(Y, return_std=True)
    # noiseless reference: the same trees without noise
    with _seeded_noise_for_tests(4):
        quiet = type("Quiet", (PrivateDistanceSum,), {"_noise_factor": 1e-9})(
            metric, epsilon=1.0, radius=radius, levels=L, n_projections=60, random_state=0).fit(X)
    noiseless = quiet.query(Y)
    m = d if metric == "l1" else 1
    h = 2 * radius / 2 ** L
    if metric == "l1":  # snapping: h/2 per record and coordinate, plus h for records beside the split
        assert np.all(np.abs(noiseless - exact) <= X.shape[0] * m * h * 1.5 + 1e-9)
    elif d == 1:  # directions are +-1: l2 is l1, same snapping bound
        assert np.all(np.abs(noiseless - exact) <= X.shape[0] * h * 1.5 + 1e-9)
    else:  # projection error, relative, of order 1/sqrt(m)
        assert np.median(np.abs(noiseless - exact) / exact) < 0.06
    z = (values - noiseless) / std
    assert np.all(np.abs(z) < 5)
    assert 0.4 < np.sqrt(np.mean(z ** 2)) < 1.6


def test_distance_sum_semantics_and_bad_input(tmp_path):
    X = np.random.default_rng(0).uniform(-3, 3, (100, 3))
    est = PrivateDistanceSum("l1", epsilon=1.0, radius=1.0, levels=4).fit(X)
    p = est.privacy_
    assert p["sensitivity_counts_l1"] == 3 * 5
    assert p["sensitivity_sums_l1_half_cells"] == 3 * 5 * 15
    assert p["budget_split"]["counts"] == [0.5, 0.0]
    est.save(tmp_path / "d.npz")
    back = PrivateDistanceSum.load(tmp_path / "d.npz")
    np.testing.assert_array_equal(back.query(X[:5]), est.query(X[:5]))
    for kwargs, match in [(dict(metric="linf"), "'metric'"), (dict(levels=0), "'levels'"),
                          (dict(radius=None), "'radius'"), (dict(count_fraction=1.0), "'count_fraction'"),
                          (dict(delta=2.0), "'delta'"), (dict(epsilon=-1.0), "'epsilon'")]:
        params = dict(metric="l1", epsilon=1.0, radius=1.0)
        params.update(kwargs)
        with pytest.raises(ValueError, match=match):
            PrivateDistanceSum(params.pop("metric"), **params).fit(X)


# --- classification -------------------------------------------------------------------------------
def test_classifier_separates_clusters_and_keeps_semantics():
    rng = np.random.default_rng(0)
    centers = np.array([[-3.0, 0.0], [3.0, 0.0], [0.0, 4.0]])
    y = rng.integers(0, 3, 3000)
    X = centers[y] + rng.standard_normal((3000, 2))
    yt = rng.integers(0, 3, 300)
    Xt = centers[yt] + rng.standard_normal((300, 2))
    with _seeded_noise_for_tests(0):
        clf = PrivateSimilarityClassifier(kk.Gaussian(1.5), epsilon=1.0, radius=8.0, n_features=128,
                                          random_state=0).fit(X, y)
    assert clf.score(Xt, yt) > 0.9
    assert clf.privacy_["classes_public"]
    assert set(clf.privacy_["budget_split"]) == {"per class (parallel composition)", "class size", "kernel sums"}
    clf2 = PrivateSimilarityClassifier(kk.Gaussian(1.5), epsilon=1.0, radius=8.0, classes=[0, 1, 2, 3],
                                       n_features=16).fit(X, y)
    assert clf2.decision_function(Xt[:3]).shape == (3, 4)  # an empty class still gets a structure
    with pytest.raises(ValueError, match="'y'"):
        PrivateSimilarityClassifier(epsilon=1.0, radius=8.0, bandwidth=1.0).fit(X, y[:10])


@pytest.mark.parametrize("method", ["rff", "orf", "lsq-rff"])
def test_total_error_bar_covers_the_exact_sum(method):
    X, Y = _data(n=2000, d=4, seed=3)
    Y = np.vstack([Y, _data(n=63, d=4, seed=4)[0]])
    kernel = kk.Gaussian(1.5)
    exact = kk.kernel_sum(kernel, X, Y)
    with _seeded_noise_for_tests(21):
        est = PrivateKernelSum(kernel, epsilon=1.0, radius=6.0, n_features=512, method=method,
                               random_state=2).fit(X)
        values, total = est.query(Y, return_std="total")
        _, noise = est.query(Y, return_std="noise")
    np.testing.assert_allclose(values, est.query(Y), rtol=1e-9, atol=1e-9)
    assert np.all(total > 0.5 * noise)
    z = np.abs(values - exact) / total
    assert np.mean(z < 2) > 0.85 and np.all(z < 5)
    with pytest.raises(ValueError, match="'return_std'"):
        est.query(Y, return_std="both")


@pytest.mark.parametrize("metric", ["l1", "l2"])
def test_distance_sum_clips_to_declared_domain(metric):
    rng = np.random.default_rng(5)
    X = rng.standard_normal((300, 3)) * 4
    center = np.array([0.5, -0.5, 0.0])
    if metric == "l1":
        clipped = np.clip(X, center - 2.0, center + 2.0)
    else:
        Z = X - center
        clipped = center + Z * np.minimum(1, 2.0 / np.linalg.norm(Z, axis=1, keepdims=True))
    kw = dict(epsilon=1.0, radius=2.0, center=center, levels=6, random_state=0)
    with _seeded_noise_for_tests(8):
        a = PrivateDistanceSum(metric, **kw).fit(X)
    with _seeded_noise_for_tests(8):
        b = PrivateDistanceSum(metric, **kw).fit(clipped)
    np.testing.assert_array_equal(a.counts_, b.counts_)
    np.testing.assert_array_equal(a.sums_, b.sums_)


def test_auto_sketch_size_spends_a_small_count_budget():
    X, Y = _data(n=4000, d=3)
    acc = PrivacyAccountant(epsilon=1.0)
    with _seeded_noise_for_tests(2):
        est = PrivateKernelSum(kk.Gaussian(1.0), epsilon=1.0, radius=6.0, n_features="auto", accountant=acc,
                               random_state=0).fit(X)
    split = est.privacy_["budget_split"]
    assert split["sketch size (noisy count)"][0] == pytest.approx(0.05)
    assert split["feature sums"][0] == pytest.approx(0.95)
    assert acc.spent[0] == pytest.approx(1.0)
    assert abs(est.n_estimate_ - 4000) < 200  # Laplace scale 20
    n_freq = est.feature_map_.n_freq
    assert n_freq == round(0.125 * est.n_estimate_ * 0.95)
    exact = kk.kernel_sum(kk.Gaussian(1.0), X, Y)
    assert np.median(np.abs(est.query(Y) - exact) / exact) < 0.1
    # (epsilon, delta): largest size; replace-one: n is public, no count is released
    g = PrivateKernelSum(kk.Gaussian(1.0), epsilon=1.0, delta=1e-6, radius=6.0, n_features="auto",
                         neighbouring="replace-one").fit(X[:50])
    assert g.feature_map_.n_freq == 4096 and g.n_estimate_ == 50
    assert "sketch size (noisy count)" in g.privacy_["budget_split"]
    with pytest.raises(ValueError, match="'n_features'"):
        PrivateKernelSum(kk.Gaussian(1.0), epsilon=1.0, radius=6.0, n_features="big").fit(X)


# --- conventions: kernel names need a public bandwidth; wrong type -> TypeError ------------------------
@pytest.mark.parametrize("cls, args", [(PrivateKernelSum, ()), (PrivateSimilarityClassifier, ())])
def test_kernel_name_without_bandwidth_is_refused_before_any_budget(cls, args):
    X, _ = _data(n=40, d=2)
    acc = PrivacyAccountant(epsilon=10.0)
    est = cls("laplace", epsilon=1.0, radius=3.0, accountant=acc)
    fit_args = (X,) if cls is PrivateKernelSum else (X, np.arange(40) % 2)
    with pytest.raises(kk.InvalidValueError, match=rf"The 'bandwidth' parameter of {cls.__name__} must be a float > 0 "
                                                   r"when 'kernel' is a name \('laplace'\). Got None. A private "
                                                   r"structure never derives a bandwidth from the private data"):
        est.fit(*fit_args)
    with pytest.raises(kk.InvalidValueError, match="'bandwidth'.*Got None"):  # the default kernel is a name too
        cls(epsilon=1.0, radius=3.0).fit(*fit_args)
    assert acc.spent == (0.0, 0.0) and not acc.ledger


def test_kernel_name_with_bandwidth_equals_the_kernel_object():
    X, Y = _data(n=200, d=3)
    kw = dict(epsilon=1.0, radius=4.0, n_features=32, random_state=0)
    with _seeded_noise_for_tests(1):
        by_name = PrivateKernelSum("Laplace", bandwidth=1.5, **kw).fit(X)
    with _seeded_noise_for_tests(1):
        by_object = PrivateKernelSum(kk.Laplace(1.5), **kw).fit(X)
    assert by_name.kernel_ == kk.Laplace(1.5)
    np.testing.assert_array_equal(by_name.query(Y), by_object.query(Y))
    with pytest.raises(kk.InvalidValueError, match="'bandwidth' parameter of PrivateKernelSum must be None when "
                                                   "'kernel' is a Kernel object"):
        PrivateKernelSum(kk.Laplace(1.5), bandwidth=1.5, **kw).fit(X)
    with pytest.raises(kk.InvalidValueError, match="'kernel' parameter of PrivateKernelSum must be a Kernel object "
                                                   "or one of .*Got 'nope'"):
        PrivateKernelSum("nope", bandwidth=1.0, **kw).fit(X)


@pytest.mark.parametrize("make", [
    lambda: PrivateKernelSum(kk.Gaussian(1.0), epsilon="1", radius=2.0),
    lambda: PrivateKernelSum(kk.Gaussian(1.0), epsilon=1.0, delta=None, radius=2.0),
    lambda: PrivateKernelSum(kk.Gaussian(1.0), epsilon=1.0, radius="2"),
    lambda: PrivateKernelSum(kk.Gaussian(1.0), epsilon=1.0, radius=2.0, n_features=2.5),
    lambda: PrivateKernelSum(kk.Gaussian(1.0), epsilon=1.0, radius=2.0, method=3),
    lambda: PrivateKernelSum(kk.Gaussian(1.0), epsilon=1.0, radius=2.0, random_state="seven"),
    lambda: PrivateKernelSum(kk.Gaussian(1.0), epsilon=1.0, radius=2.0, accountant={"epsilon": 1}),
    lambda: PrivateKernelSum("gaussian", bandwidth="wide", epsilon=1.0, radius=2.0),
    lambda: PrivateKernelSum(3, epsilon=1.0, radius=2.0),
    lambda: PrivateDistanceSum("l1", epsilon=1.0, radius=2.0, levels=4.0),
    lambda: PrivateDistanceSum(1, epsilon=1.0, radius=2.0),
    lambda: PrivateSimilarityClassifier(kk.Gaussian(1.0), epsilon=1.0, radius=2.0, count_fraction="half"),
])
def test_wrong_types_raise_type_error_naming_the_parameter(make):
    X, _ = _data(n=20, d=3)
    est = make()
    args = (X, np.arange(20) % 2) if isinstance(est, PrivateSimilarityClassifier) else (X,)
    with pytest.raises(kk.InvalidTypeError, match=r"The '\w+' parameter of Private\w+ must be .*\. Got "):
        est.fit(*args)


def test_query_flags_are_checked():
    X, Y = _data(n=30, d=2)
    est = PrivateKernelSum(kk.Gaussian(1.0), epsilon=1.0, radius=3.0, n_features=8).fit(X)
    with pytest.raises(TypeError, match="'return_std' parameter of PrivateKernelSum.query must be one of "
                                        "\\{False, True, 'noise', 'total'\\}. Got 1"):
        est.query(Y, return_std=1)
    assert len(est.query(Y, return_std=np.True_)) == 2
    d = PrivateDistanceSum("l1", epsilon=1.0, radius=3.0, levels=3).fit(X)
    with pytest.raises(TypeError, match="'return_std' parameter of PrivateDistanceSum.query must be one of "
                                         "\\{False, True\\}. Got 'noise'"):
        d.query(Y, return_std="noise")


def test_public_randomness_accepts_int_generator_and_seed_sequence():
    X, _ = _data(n=30, d=2)
    kw = dict(epsilon=1.0, radius=3.0, n_features=8)
    a = PrivateKernelSum(kk.Gaussian(1.0), random_state=7, **kw).fit(X)
    b = PrivateKernelSum(kk.Gaussian(1.0), random_state=np.random.SeedSequence(7), **kw).fit(X)
    c = PrivateKernelSum(kk.Gaussian(1.0), random_state=np.random.default_rng(7), **kw).fit(X)
    np.testing.assert_array_equal(a.feature_map_.omega, b.feature_map_.omega)
    np.testing.assert_array_equal(a.feature_map_.omega, c.feature_map_.omega)  # a Generator is used as is
    with pytest.raises(ValueError, match="'random_state' parameter of PrivateDistanceSum must be an int >= 0"):
        PrivateDistanceSum("l2", epsilon=1.0, radius=3.0, random_state=-1).fit(X)
