"""The ``kernelkit demo gof`` step: KSD goodness of fit, the perturbed KSD test and Stein thinning."""

from __future__ import annotations

import math
import time

import numpy as np


def demo_step(args):
    """KSD tests of a standard normal model, a mixture-weight case for the perturbed test, Stein thinning."""
    from . import ksd_test, perturbed_ksd_test, stein_thin

    seed = getattr(args, "seed", 0)
    rng, rng_mix, rng_thin = (np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(3))
    n = 300 if getattr(args, "quick", False) else 1000
    d = 5
    t0 = time.perf_counter()
    X0 = rng.standard_normal((n, d))
    r0 = ksd_test(X0, lambda x: -x, random_state=seed)
    X1 = X0 + np.r_[0.3, np.zeros(d - 1)]
    r1 = ksd_test(X1, lambda x: -x, random_state=seed)
    print(f"   N(0, I_{d}) model, n={n:,}, IMQ Stein kernel, 1000 wild-bootstrap draws "
          f"({time.perf_counter() - t0:.2f} s)")
    print(f"   sample from the model:   KSD^2 {r0.statistic:+.2e}, p-value {r0.pvalue:.3f} -> "
          f"{'reject' if r0.reject else 'do not reject'}")
    print(f"   sample shifted by 0.3:   KSD^2 {r1.statistic:+.2e}, p-value {r1.pvalue:.3f} -> "
          f"{'reject' if r1.reject else 'do not reject'}")

    m = np.array([[0.0], [6.0]])

    def logp(x):
        return np.logaddexp(-0.5 * (x[:, 0] - m[0, 0]) ** 2, -0.5 * (x[:, 0] - m[1, 0]) ** 2) + math.log(0.5)

    def score(x):
        w = 1.0 / (1.0 + np.exp(-0.5 * (x[:, 0] - m[1, 0]) ** 2 + 0.5 * (x[:, 0] - m[0, 0]) ** 2))
        return (w * (m[0, 0] - x[:, 0]) + (1 - w) * (m[1, 0] - x[:, 0]))[:, None]

    t0 = time.perf_counter()
    Xm = rng_mix.standard_normal((200, 1))  # all the mass on one of the two modes of the model
    rk = ksd_test(Xm, score, random_state=seed)
    rp = perturbed_ksd_test(Xm, score, logp, random_state=seed)
    print(f"   model 0.5 N(0,1) + 0.5 N(6,1), sample N(0,1), n=200 ({time.perf_counter() - t0:.2f} s): "
          f"KSD p-value {rk.pvalue:.3f}, perturbed KSD p-value {rp.pvalue:.3f} "
          f"(modes found {np.round(rp.details['modes'][:, 0], 2).tolist()}, jump scale {rp.details['jump_scale']:.2f})")

    t0 = time.perf_counter()
    Xb = rng_thin.standard_normal((4000, 2)) * 1.2 + 0.4  # biased draws for N(0, I_2)
    idx, path = stein_thin(Xb, lambda x: -x, 50)
    print(f"   Stein thinning of 4,000 biased draws to 50 points ({time.perf_counter() - t0:.2f} s): KSD "
          f"{path[0]:.3f} (1 point) -> {path[-1]:.3f} (50 points)")
    return {"ksd_null_reject": r0.reject, "ksd_shift_reject": r1.reject, "ksd_mixture_p": rk.pvalue,
            "perturbed_mixture_p": rp.pvalue, "stein_thin_ksd": float(path[-1])}
