"""p-invariant Markov transitions for the perturbed KSD test (Liu, Duncan & Gandy 2023)."""

from __future__ import annotations

import numpy as np

from .._validation import param_error
from ._stein import evaluate_score


def _logp(log_density, X, owner):
    v = np.asarray(log_density(X.copy()), dtype=np.float64)
    if v.shape == (X.shape[0], 1):
        v = v[:, 0]
    if v.shape != (X.shape[0],):
        raise param_error("log_density", owner, f"a callable returning an array of shape ({X.shape[0]},), one log "
                          "density per point", log_density, shown=f"an array of shape {v.shape}")
    if np.isnan(v).any() or np.isposinf(v).any():
        raise param_error("log_density", owner, "a callable returning log densities < +inf (NaN is refused)",
                          log_density, shown="NaN or +inf values")
    return v


def find_modes(log_density, score, starts, merge_distance, owner, maxiter=200):
    """Local maxima of log p from each start (L-BFGS with the score as gradient), merged within a distance.

    Returns the modes sorted by decreasing log density, shape (k, d).
    """
    from scipy.optimize import minimize

    d = starts.shape[1]
    found = []
    for x0 in starts:
        def f(x):
            x2 = x[None, :]
            return -float(_logp(log_density, x2, owner)[0]), -evaluate_score(score, x2, owner)[0]

        r = minimize(f, x0, jac=True, method="L-BFGS-B", options={"maxiter": maxiter})
        if np.all(np.isfinite(r.x)):
            found.append((r.fun, r.x))
    found.sort(key=lambda t: t[0])
    modes = []
    for _, x in found:
        if all(np.linalg.norm(x - m) > merge_distance for m in modes):
            modes.append(x)
    return np.array(modes).reshape(-1, d)


def jump_steps(X, modes, theta, n_steps, log_density, rng, owner):
    """n_steps MH jumps x' = x + theta (m_b - m_a), (a, b) a uniform ordered pair of distinct modes.

    Returns (moved points, mean acceptance rate).
    """
    X = X.copy()
    n = X.shape[0]
    k = modes.shape[0]
    lp = _logp(log_density, X, owner)
    accepted = 0
    for _ in range(n_steps):
        a = rng.integers(0, k, size=n)
        b = (a + rng.integers(1, k, size=n)) % k  # uniform over the other modes
        Xq = X + theta * (modes[b] - modes[a])
        lq = _logp(log_density, Xq, owner)
        acc = np.log(rng.random(n)) < (lq - lp)
        X[acc] = Xq[acc]
        lp[acc] = lq[acc]
        accepted += int(acc.sum())
    return X, accepted / max(1, n * n_steps)


def langevin_steps(X, score, log_density, h, n_steps, langevin, rng, owner):
    """n_steps of MALA (langevin=True) or random-walk Metropolis with increment variance 2h."""
    X = X.copy()
    n = X.shape[0]
    lp = _logp(log_density, X, owner)
    S = evaluate_score(score, X, owner) if langevin else None
    accepted = 0
    for _ in range(n_steps):
        xi = rng.standard_normal(X.shape)
        Xq = X + (h * S if langevin else 0.0) + np.sqrt(2.0 * h) * xi
        lq = _logp(log_density, Xq, owner)
        log_r = lq - lp
        if langevin:
            Sq = evaluate_score(score, Xq, owner)
            fwd = np.sum((Xq - X - h * S) ** 2, axis=1)
            bwd = np.sum((X - Xq - h * Sq) ** 2, axis=1)
            log_r += (fwd - bwd) / (4.0 * h)
        acc = np.log(rng.random(n)) < log_r
        X[acc] = Xq[acc]
        lp[acc] = lq[acc]
        if langevin:
            S[acc] = Sq[acc]
        accepted += int(acc.sum())
    return X, accepted / max(1, n * n_steps)
