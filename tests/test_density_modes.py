"""Mean shift: against a slow loop reference, the shadow kernels, the projected variant, bad input."""

import math

import numpy as np
import pytest

import kernelkit as kk
from kernelkit.density._modes import shadow_kernel
from kernelkit.exceptions import InvalidValueError, NotSupportedError


def _loop_mean_shift(kernel, X, w, z, iters):
    """Mean shift written out with the profile derivative by finite differences, one seed at a time."""
    phi = lambda r2: float(kernel.profile(np.array([r2])).item())   # noqa: E731
    z = np.array(z, dtype=np.float64)
    for _ in range(iters):
        num, den = np.zeros_like(z), 0.0
        for x, wi in zip(X, w):
            r2 = float(np.sum((x - z) ** 2))
            eps = 1e-5 * max(r2, 1e-2)
            lo = max(r2 - eps, 0.0)
            g = -(phi(r2 + eps) - phi(lo)) / (r2 + eps - lo)
            num += wi * g * x
            den += wi * g
        z = num / den
    return z


@pytest.mark.parametrize("kernel", [kk.Gaussian(1.0), kk.IMQ(1.0, 2.0), kk.RationalQuadratic(1.0, 2.0),
                                    kk.Matern(2.5, 1.0), kk.Matern(1.5, 1.0), kk.Epanechnikov(4.0),
                                    kk.Biweight(4.0), kk.Triweight(4.0)], ids=repr)
def test_shadow_kernel_is_the_profile_derivative(kernel):
    r2 = np.linspace(0.01, 9.0, 50)
    eps = 1e-6
    g = -(kernel.profile(r2 + eps) - kernel.profile(r2 - eps)) / (2 * eps)
    s = shadow_kernel(kernel).profile(r2)
    ratio = g / s
    np.testing.assert_allclose(ratio, ratio[0], rtol=1e-5)   # proportional: the constant cancels


@pytest.mark.parametrize("name", ["gaussian", "matern52", "imq_obj"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
def test_mean_shift_steps_match_the_loop_reference(name, dtype):
    from kernelkit.density._modes import _iterate
    rng = np.random.default_rng(0)
    X = np.concatenate([rng.normal(0, 0.5, (40, 2)), rng.normal(3, 0.5, (41, 2))]).astype(dtype)
    w = rng.random(81)
    kde = (kk.KernelDensity(kernel=kk.IMQ(0.7, 3.0)) if name == "imq_obj"
           else kk.KernelDensity(kernel=name, bandwidth=0.7)).fit(X, sample_weight=w)
    seeds = rng.normal(1.5, 1.5, (5, 2))
    h = kde._scale
    Xs = X.astype(np.float64) / h
    Z, _, it, _, _ = _iterate(shadow_kernel(kde.kernel_), Xs, seeds / h, w, np.log(w), {"memory": 4096}, 3, 1e-300)
    assert it == 3
    for j in range(5):
        ref = _loop_mean_shift(kde.kernel_, Xs, w, seeds[j] / h, 3)
        np.testing.assert_allclose(Z[j], ref, rtol=1e-7, atol=1e-7)


def test_modes_of_a_mixture_and_their_density_increase():
    rng = np.random.default_rng(1)
    centres = np.array([[0.0, 0.0], [5.0, 0.0], [0.0, 5.0]])
    X = np.concatenate([rng.normal(c, 0.6, (400, 2)) for c in centres])
    kde = kk.KernelDensity(bandwidth=0.5).fit(X)
    seeds = X[::7]
    r = kde.modes(seeds)
    assert r.modes.shape == (3, 2) and r.converged.all() and r.counts.sum() == seeds.shape[0]
    found = r.modes[np.argsort(r.modes[:, 0] + 10 * r.modes[:, 1])]
    np.testing.assert_allclose(found, centres[np.argsort(centres[:, 0] + 10 * centres[:, 1])], atol=0.2)
    assert np.all(r.log_density >= kde.score_samples(seeds).max() - 1e-9 - 1.0)
    # every seed ends no lower than it started (mean shift never decreases the density)
    start = kde.score_samples(seeds)
    assert np.all(r.log_density[r.labels] >= start - 1e-9)
    # the gradient vanishes at a mode (finite differences of the log density)
    e = 1e-5
    for m in r.modes:
        grad = [(kde.score_samples((m + e * np.eye(2)[k])[None]) - kde.score_samples((m - e * np.eye(2)[k])[None]))[0]
                / (2 * e) for k in range(2)]
        assert np.max(np.abs(grad)) < 1e-3


def test_far_seeds_use_the_log_domain_and_float32():
    rng = np.random.default_rng(2)
    X = rng.normal(size=(200, 3)).astype(np.float32)
    kde = kk.KernelDensity(bandwidth=0.3).fit(X)
    far = np.array([[40.0, 0.0, 0.0]])   # exp(-(40/0.3)^2 / 2) underflows float64
    r = kde.modes(far, max_iter=200)
    assert np.all(np.isfinite(r.modes)) and np.linalg.norm(r.modes[0]) < 5


def test_projected_mean_shift_reaches_the_modes_density():
    rng = np.random.default_rng(3)
    d = 60
    C = 3 * rng.normal(size=(2, d))
    X = np.concatenate([c + rng.normal(size=(300, d)) for c in C])
    kde = kk.KernelDensity(bandwidth=5.0).fit(X)
    seeds = X[::60]
    exact = kde.modes(seeds)
    approx = kde.modes(seeds, projection_dim=12, random_state=0)
    refined = kde.modes(seeds, projection_dim=12, random_state=0, refine=5)
    assert exact.modes.shape[0] == approx.modes.shape[0] == 2
    # density ratio p(approx) / p(exact) close to 1 (log within 0.01 nats), refined closer still
    assert np.max(np.abs(np.sort(approx.log_density) - np.sort(exact.log_density))) < 1e-2
    assert (np.max(np.abs(np.sort(refined.log_density) - np.sort(exact.log_density)))
            <= np.max(np.abs(np.sort(approx.log_density) - np.sort(exact.log_density))) + 1e-12)


def test_bad_input():
    X = np.random.default_rng(0).normal(size=(30, 2))
    with pytest.raises(NotSupportedError, match="derivative at 0"):
        kk.KernelDensity(kernel="laplace", bandwidth=1.0).fit(X).modes()
    kde = kk.KernelDensity(bandwidth=1.0).fit(X)
    with pytest.raises(InvalidValueError, match="'seeds'"):
        kde.modes(np.zeros((2, 3)))
    with pytest.raises(InvalidValueError, match="'tol'"):
        kde.modes(tol=0)
    with pytest.raises(InvalidValueError, match="'projection_dim'"):
        kde.modes(projection_dim=0)
    with pytest.raises(InvalidValueError, match="'max_iter'"):
        kde.modes(max_iter=0)
    assert math.isfinite(kde.modes(X[:3]).log_density[0])


# --- pruned mean shift (compact shadow kernels: the points are partitioned once, kernelkit.engine._pruned) ---

def _flat_loop(X, w, z, h, iters):
    """Flat-kernel mean shift, one seed at a time: z <- weighted mean of the points with |x - z| < h."""
    z = np.array(z, dtype=np.float64)
    for _ in range(iters):
        inside = np.sqrt(((X - z) ** 2).sum(1)) < h
        z = (w[inside, None] * X[inside]).sum(0) / w[inside].sum()
    return z


def test_pruned_mean_shift_steps_match_the_flat_loop_reference():
    """Epanechnikov's shadow is the flat kernel: n * seeds above the pruning threshold, so every step runs
    pruned (checked: the prepared sum is built), against a direct loop over the points."""
    from kernelkit.density._modes import _iterate
    from kernelkit.engine import _pruned
    rng = np.random.default_rng(1)
    X = np.concatenate([rng.normal(0, 0.7, (9000, 2)), rng.normal(3, 0.7, (9001, 2))])
    w = rng.uniform(0.5, 1.5, X.shape[0])
    seeds = X[rng.choice(X.shape[0], 240, replace=False)]   # 18,001 x 240 = 4.3e6 pairs >= MIN_PAIRS
    assert X.shape[0] * seeds.shape[0] >= _pruned.MIN_PAIRS
    h = 0.6
    g = shadow_kernel(kk.Epanechnikov(1.0))
    summer = _pruned.prepare_pruned_sum(g, X / h, np.ones((X.shape[0], 3)))
    assert summer is not None
    Z, _, it, _, _ = _iterate(g, X / h, seeds / h, w, np.log(w), {}, 4, 1e-300)
    assert it == 4
    for j in range(0, 240, 23):
        ref = _flat_loop(X / h, w, seeds[j] / h, 1.0, 4)
        np.testing.assert_allclose(Z[j], ref, rtol=1e-10, atol=1e-10)


def test_pruned_mean_shift_equals_the_unpruned_one(monkeypatch):
    """The same modes, labels and iteration counts with the pruning turned off (summation order only)."""
    from kernelkit.engine import _pruned
    rng = np.random.default_rng(2)
    centres = np.array([[0.0, 0.0], [4.0, 0.0], [0.0, 4.0]])
    X = np.concatenate([rng.normal(c, 0.8, (6000, 2)) for c in centres])
    seeds = X[rng.choice(X.shape[0], 300, replace=False)]
    kde = kk.KernelDensity(kernel="epanechnikov", bandwidth=0.6).fit(X)
    pruned = kde.modes(seeds, tol=1e-6, merge_radius=1.0)
    monkeypatch.setattr(_pruned, "prepare_pruned_sum", lambda *a, **k: None)
    plain = kde.modes(seeds, tol=1e-6, merge_radius=1.0)
    assert pruned.modes.shape == plain.modes.shape == (3, 2)
    np.testing.assert_allclose(pruned.modes, plain.modes, atol=1e-9)
    assert np.array_equal(pruned.labels, plain.labels) and pruned.n_iter == plain.n_iter
    assert pruned.converged.all()
    # each mode is a fixed point of the flat mean shift (the mean of the points within h), to 1e-6 h
    for m in pruned.modes:
        inside = np.sqrt(((X - m) ** 2).sum(1)) < 0.6
        assert np.linalg.norm(X[inside].mean(0) - m) <= 1e-6 * 0.6


# --- rank_by: scikit-learn's MeanShift rule (flat kernel), the per-seed end points and shadow sums ---

def _flat_rule_loop(X, seeds, h, tol, ties):
    """The flat-kernel mean shift written out seed by seed, with scikit-learn's MeanShift rules: a seed
    stops when its step is at most tol * h; its intensity is the number of points within h of the point
    its last step started from; end points ranked by intensity, ties by decreasing coordinates (``ties``
    "coordinates") or by ``ties`` (an array of densities at the end points); each kept end point removes
    the lower ranked ones within h. Returns (centres, end points, intensities)."""
    ends, counts = [], []
    for z in seeds:
        z = np.array(z, dtype=np.float64)
        while True:
            inside = np.sqrt(((X - z) ** 2).sum(1)) < h
            new = X[inside].mean(0)
            done = np.sqrt(((new - z) ** 2).sum()) <= tol * h
            c, z = int(inside.sum()), new
            if done:
                break
        ends.append(z)
        counts.append(c)
    ends, counts = np.array(ends), np.array(counts)
    if isinstance(ties, str):
        keys = sorted(range(len(ends)), key=lambda j: (counts[j], tuple(ends[j])), reverse=True)
    else:
        keys = sorted(range(len(ends)), key=lambda j: (counts[j], ties[j]), reverse=True)
    kept = []
    for j in keys:
        if all(np.sqrt(((ends[j] - ends[k]) ** 2).sum()) > h for k in kept):
            kept.append(j)
    return ends[kept], ends, counts


def _flat_problem(n_per, m, seed):
    rng = np.random.default_rng(seed)
    centres = np.array([[0.0, 0.0], [3.0, 0.0], [0.0, 3.0]])
    X = np.concatenate([rng.normal(c, 0.7, (n_per, 2)) for c in centres])
    return X, X[rng.choice(X.shape[0], m, replace=False)]


@pytest.mark.parametrize("pruned", [False, True], ids=["direct", "pruned"])
def test_rank_by_sklearn_matches_the_loop_reference(pruned, monkeypatch):
    """rank_by="sklearn", tol=1e-3, merge_radius=1: the loop's centres, end points and intensities (pruned:
    the pruning threshold lowered so that the prepared pruned sum partitions the points; checked)."""
    from kernelkit.engine import _pruned
    # data chosen (fixed seeds) with ties between equal counts in a merge: only the tie rule picks the centre
    X, seeds = _flat_problem(600, 100, 6) if pruned else _flat_problem(300, 60, 0)
    made = []
    if pruned:
        monkeypatch.setattr(_pruned, "MIN_PAIRS", 1)
        real = _pruned.prepare_pruned_sum
        monkeypatch.setattr(_pruned, "prepare_pruned_sum", lambda *a, **k: made.append(real(*a, **k)) or made[-1])
    h = 0.5
    kde = kk.KernelDensity(kernel="epanechnikov", bandwidth=h).fit(X)
    r = kde.modes(seeds, tol=1e-3, merge_radius=1.0, rank_by="sklearn")
    if pruned:
        assert made and made[0] is not None and made[0]._xs is not None
    ref, ends, counts = _flat_rule_loop(X, seeds, h, 1e-3, "coordinates")
    np.testing.assert_allclose(r.points, ends, rtol=0, atol=1e-12)
    np.testing.assert_array_equal(r.shadow_sums, counts)          # unit weights: exact integer counts
    assert r.modes.shape == ref.shape and r.converged.all()
    np.testing.assert_allclose(r.modes, ref, rtol=0, atol=1e-12)   # the same order too
    assert r.counts.sum() == seeds.shape[0]
    # every seed's label is the mode that removed it (within h of it, and ranked no lower)
    assert np.all(np.sqrt(((r.points - r.modes[r.labels]) ** 2).sum(1)) <= h * (1 + 1e-12))
    # the ties matter here: breaking them by density reports other (equal-count) centres
    other = kde.modes(seeds, tol=1e-3, merge_radius=1.0, rank_by="shadow").modes
    assert other.shape != ref.shape or np.abs(other - ref).max() > 1e-3


def test_rank_by_shadow_breaks_ties_by_density():
    X, seeds = _flat_problem(300, 60, 0)
    h = 0.5
    kde = kk.KernelDensity(kernel="epanechnikov", bandwidth=h).fit(X)
    r = kde.modes(seeds, tol=1e-3, merge_radius=1.0, rank_by="shadow")
    _, ends, _ = _flat_rule_loop(X, seeds, h, 1e-3, "coordinates")
    ref, _, _ = _flat_rule_loop(X, seeds, h, 1e-3, kde.score_samples(ends))
    np.testing.assert_allclose(r.modes, ref, rtol=0, atol=1e-12)
    # the default ranks by density alone: the end point of highest density first
    d = kde.modes(seeds, tol=1e-3, merge_radius=1.0)
    np.testing.assert_allclose(d.modes[0], ends[np.argmax(kde.score_samples(ends))], rtol=0, atol=1e-12)


def test_shadow_sums_of_a_gaussian_with_weights():
    """shadow_sums: sum_i w_i exp(-|x_i - z|^2 / (2 h^2)) at the start of each seed's last step (loop)."""
    rng = np.random.default_rng(6)
    X = rng.normal(size=(200, 2))
    w = rng.uniform(0.5, 2.0, 200)
    h = 0.8
    kde = kk.KernelDensity(bandwidth=h).fit(X, sample_weight=w)
    seeds = X[:7]
    r = kde.modes(seeds, tol=1e-6)
    Xs = X / h
    for j in range(7):
        z = seeds[j] / h
        for _ in range(r.n_iter + 1):
            k = np.exp(-0.5 * ((Xs - z) ** 2).sum(1))
            new = (w * k) @ Xs / (w * k).sum()
            if np.sqrt(((new - z) ** 2).sum()) <= 1e-6:
                break
            z = new
        np.testing.assert_allclose(r.shadow_sums[j], (w * k).sum(), rtol=1e-10)
        np.testing.assert_allclose(r.points[j], new * h, rtol=0, atol=1e-9)


def test_coinciding_seeds_are_shifted_once_and_end_alike(monkeypatch):
    """Seeds that coincide are shifted once per step: the same end points as without the copies."""
    from kernelkit.density import _modes
    X, seeds = _flat_problem(300, 40, 7)
    kde = kk.KernelDensity(kernel="epanechnikov", bandwidth=0.5).fit(X)
    rows = []
    real = _modes._shift
    monkeypatch.setattr(_modes, "_shift", lambda g, Xs, Z, *a: rows.append(Z.shape[0]) or real(g, Xs, Z, *a))
    both = kde.modes(np.concatenate([seeds, seeds[::-1]]), tol=1e-3, rank_by="sklearn", merge_radius=1.0)
    assert rows[0] == 40
    one = kde.modes(seeds, tol=1e-3, rank_by="sklearn", merge_radius=1.0)
    np.testing.assert_array_equal(both.points[:40], both.points[40:][::-1])
    np.testing.assert_allclose(both.points[:40], one.points, rtol=0, atol=1e-13)
    np.testing.assert_allclose(both.modes, one.modes, rtol=0, atol=1e-13)
    np.testing.assert_array_equal(both.counts, 2 * one.counts)


def test_rank_by_reproduces_scikit_learn():
    """Against scikit-learn's MeanShift itself (small problem, the same seeds)."""
    MeanShift = pytest.importorskip("sklearn.cluster").MeanShift
    X, seeds = _flat_problem(300, 60, 14)   # ties between equal counts change the number of centres here
    h = 0.5
    sk = MeanShift(bandwidth=h, seeds=seeds, bin_seeding=False).fit(X)
    r = kk.KernelDensity(kernel="epanechnikov", bandwidth=h).fit(X).modes(seeds, tol=1e-3, merge_radius=1.0,
                                                                          rank_by="sklearn")
    assert r.modes.shape == sk.cluster_centers_.shape
    np.testing.assert_allclose(r.modes, sk.cluster_centers_, rtol=0, atol=1e-12)


def test_rank_by_bad_value():
    kde = kk.KernelDensity(kernel="epanechnikov", bandwidth=1.0).fit(np.random.default_rng(0).normal(size=(30, 2)))
    with pytest.raises(InvalidValueError, match="'rank_by'"):
        kde.modes(rank_by="count")
    with pytest.raises(InvalidValueError, match="'rank_by'"):
        kde.modes(rank_by=None)
