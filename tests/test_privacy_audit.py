"""Statistical privacy audits (StatDP / DP-Sniper style) of every mechanism.

For neighbouring datasets D and D' (one record added), run the released
mechanism many times on each and look at a scalar statistic of the release.
A rejection set S = {t > tau} (or {t < tau}) is chosen on a first batch of
runs (the threshold with the largest Clopper-Pearson privacy-loss bound), then a second,
independent batch gives Clopper-Pearson bounds p_lo <= P[M(D) in S] and
p'_hi >= P[M(D') in S]; ``epsilon_lb = ln((p_lo - delta) / p'_hi)`` is a lower
bound on the true epsilon with confidence about 1 - alpha. It must stay below
the claimed epsilon for every honest mechanism, and a deliberately broken
mechanism (noise 10 times too small) must be caught (epsilon_lb > claimed).

The noise is seeded through the test-only hook so that the audits are
reproducible; the seeded generator is never used outside tests.
"""

import math

import numpy as np
import pytest
from scipy.stats import beta

import kernelkit as kk
from kernelkit.privacy import PrivateDistanceSum, PrivateKernelSum, PrivateSimilarityClassifier
from kernelkit.privacy._noise import _seeded_noise_for_tests  # test-only hook: seeded noise

# long statistical audits (1-8 s each, about 40 s in all): `-m "not slow"` leaves them out; CI runs them
pytestmark = pytest.mark.slow

RUNS = 10000  # per dataset and per batch


def _cp_low(k, n, alpha):
    return 0.0 if k == 0 else float(beta.ppf(alpha, k, n - k + 1))


def _cp_high(k, n, alpha):
    return 1.0 if k == n else float(beta.ppf(1 - alpha, k + 1, n - k))


def audit(stat_D, stat_D2, delta=0.0, alpha=0.005):
    """Lower bound on epsilon from two arrays (2 * runs draws each: selection, then estimation)."""
    runs = len(stat_D) // 2
    sel_a, est_a = stat_D[:runs], stat_D[runs:]
    sel_b, est_b = stat_D2[:runs], stat_D2[runs:]
    best, best_rule = -np.inf, None
    for tau in np.quantile(np.concatenate([sel_a, sel_b]), np.linspace(0.005, 0.995, 199)):
        for sign in (1, -1):
            for first, second in ((sel_a, sel_b), (sel_b, sel_a)):
                ka = int(np.sum(sign * first > sign * tau))
                kb = int(np.sum(sign * second > sign * tau))
                # rank rules by their own confidence bound, so that rare-event flukes are not chosen
                score = math.log(max(_cp_low(ka, runs, alpha) - delta, 1e-300) / _cp_high(kb, runs, alpha))
                if score > best:
                    best, best_rule = score, (tau, sign, first is sel_a)
    tau, sign, a_first = best_rule
    first, second = (est_a, est_b) if a_first else (est_b, est_a)
    k1 = int(np.sum(sign * first > sign * tau))
    k2 = int(np.sum(sign * second > sign * tau))
    p_lo = _cp_low(k1, runs, alpha)
    p_hi = _cp_high(k2, runs, alpha)
    return math.log(max(p_lo - delta, 1e-300) / p_hi) if p_lo > delta else -np.inf


def _runs(fit_stat, X, X2, seed, runs=RUNS):
    with _seeded_noise_for_tests(seed):
        a = np.array([fit_stat(X) for _ in range(2 * runs)])
        b = np.array([fit_stat(X2) for _ in range(2 * runs)])
    return a, b


def _broken(cls):
    return type(f"Broken{cls.__name__}", (cls,), {"_noise_factor": 0.1})


# --- kernel sums, one frequency (two cells). Statistic: the cos cell. The added record has phase 0, so
# --- that cell moves by 1 while the L1 sensitivity is sqrt 2: the true loss of this statistic is
# --- epsilon / sqrt 2 for the Laplace mechanism, over the whole tail (which gives the audit power).
def _kernel_sum_case(cls, epsilon, delta, neighbouring="add-remove"):
    kernel = kk.Gaussian(1.0)
    probe = cls(kernel, epsilon=epsilon, delta=delta, radius=10.0, n_features=2, method="rff", random_state=0)
    probe.fit(np.zeros((1, 1)))
    w = probe.feature_map_.omega[0, 0]
    assert w != 0
    x_new = np.array([[0.0]])
    X = np.array([[0.3]])
    X2 = np.vstack([X, x_new])

    def stat(data):
        est = cls(kernel, epsilon=epsilon, delta=delta, radius=10.0, n_features=2, method="rff",
                  neighbouring=neighbouring, random_state=0).fit(data)
        return est.sums_[0]
    return X, X2, stat


@pytest.mark.parametrize("epsilon, delta", [(1.0, 0.0), (0.5, 0.0), (1.0, 1e-3)])
def test_audit_private_kernel_sum(epsilon, delta):
    X, X2, stat = _kernel_sum_case(PrivateKernelSum, epsilon, delta)
    a, b = _runs(stat, X, X2, seed=1)
    eps_lb = audit(a, b, delta)
    assert eps_lb <= epsilon
    if delta == 0:  # the audit has power: it sees most of this statistic's loss, epsilon / sqrt 2
        assert eps_lb > 0.4 * epsilon


@pytest.mark.parametrize("delta", [0.0, 1e-3])
def test_audit_catches_broken_kernel_sum(delta):
    X, X2, stat = _kernel_sum_case(_broken(PrivateKernelSum), 1.0, delta)
    a, b = _runs(stat, X, X2, seed=2, runs=2000)
    assert audit(a, b, delta) > 1.0


# --- distance sums: one coordinate, one level; the added record sits in the last leaf, so it moves
# --- the two counts on its path by 1 and the two sums by +1 (units h/2); the statistic weighs counts
# --- and sums by the inverse of their noise scales.
def _distance_case(cls, metric, epsilon, delta):
    X = np.array([[-0.9]])
    X2 = np.array([[-0.9], [0.9]])

    def stat(data):
        est = cls(metric, epsilon=epsilon, delta=delta, radius=1.0, levels=1, n_projections=1,
                  random_state=0).fit(data)
        h = est.cell_width_
        touched = [1, 2]  # leaf 1 and the root in the heap layout (leaves 0, 1 then root)
        return (est.counts_[0, touched].sum() / est.count_std_
                + est.sums_[0, touched].sum() / (h / 2) / (est.sum_std_ / (h / 2)))
    return X, X2, stat


@pytest.mark.parametrize("metric", ["l1", "l2"])
@pytest.mark.parametrize("delta", [0.0, 1e-3])
def test_audit_private_distance_sum(metric, delta):
    X, X2, stat = _distance_case(PrivateDistanceSum, metric, 1.0, delta)
    a, b = _runs(stat, X, X2, seed=3, runs=4000)
    assert audit(a, b, delta) <= 1.0


def test_audit_catches_broken_distance_sum():
    X, X2, stat = _distance_case(_broken(PrivateDistanceSum), "l1", 1.0, 0.0)
    a, b = _runs(stat, X, X2, seed=4, runs=2000)
    assert audit(a, b) > 1.0


# --- classifier: the added record joins class 0; statistic: class 0's cells plus its noisy size.
def _classifier_case(cls_kernel_sum, epsilon):
    probe = PrivateKernelSum(kk.Gaussian(1.0), epsilon=1.0, radius=10.0, n_features=2, method="rff",
                             random_state=0)
    y = np.array([0, 1])
    X = np.array([[0.3], [0.5]])

    class Clf(PrivateSimilarityClassifier):
        pass

    def stat(data):
        Xd, yd = data
        import kernelkit.privacy._classify as mod
        saved = mod.PrivateKernelSum
        mod.PrivateKernelSum = cls_kernel_sum
        try:
            clf = Clf(kk.Gaussian(1.0), epsilon=epsilon, radius=10.0, n_features=2, method="rff",
                      random_state=0).fit(Xd, yd)
        finally:
            mod.PrivateKernelSum = saved
        s = clf.structures_[0]
        return s.sums_[0] + s.sums_[1]

    rng_seed = int(np.random.default_rng(0).integers(2 ** 63))
    probe.random_state = rng_seed
    probe.fit(np.zeros((1, 1)))
    w = probe.feature_map_.omega[0, 0]
    X2 = (np.vstack([X, [[math.pi / 4 / w]]]), np.array([0, 1, 0]))
    return (X, y), X2, stat


def test_audit_private_classifier_and_broken_one():
    X, X2, stat = _classifier_case(PrivateKernelSum, 1.0)
    with _seeded_noise_for_tests(5):
        a = np.array([stat(X) for _ in range(2 * 3000)])
        b = np.array([stat(X2) for _ in range(2 * 3000)])
    assert audit(a, b) <= 1.0
    X, X2, stat = _classifier_case(_broken(PrivateKernelSum), 1.0)
    with _seeded_noise_for_tests(6):
        a = np.array([stat(X) for _ in range(2 * 1000)])
        b = np.array([stat(X2) for _ in range(2 * 1000)])
    assert audit(a, b) > 1.0
