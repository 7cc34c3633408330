"""Demo step of kernelkit.selection: pick a batch from a synthetic pool and print the gains."""

from __future__ import annotations

import time

import numpy as np


def demo_step(args):
    """Max-det / coding rate, LCMD and k-center on a 3-cluster Gaussian pool (Gaussian kernel), beside random."""
    import kernelkit as kk
    from kernelkit.selection import select_batch
    rng = np.random.default_rng(args.seed)
    n = 5_000 if getattr(args, "quick", False) else 20_000
    centres = np.array([[0.0, 0.0, 0.0], [4.0, 0.0, 0.0], [0.0, 4.0, 1.0]])
    sizes = np.array([0.7, 0.2, 0.1])
    lab = rng.choice(3, size=n, p=sizes)
    X = centres[lab] + rng.standard_normal((n, 3)) * np.array([1.0, 0.6, 0.4])[lab, None]
    train = X[:20]
    pool = X[20:]
    kernel = kk.Gaussian(1.0)
    b = 16
    print(f"   pool of {len(pool):,} points in 3 clusters (70/20/10%), d=3, Gaussian(1.0) kernel, "
          f"20 labelled points, batch {b}, sigma 0.1")
    for method in ("coding_rate", "lcmd", "kcenter", "random"):
        t0 = time.perf_counter()
        idx, gains = select_batch(pool, b, method=method, kernel=kernel, train=train, sigma=0.1,
                                  random_state=args.seed, return_gains=True)
        dt = time.perf_counter() - t0
        per = np.bincount(lab[20:][idx], minlength=3)
        # coding rate of the batch on the posterior kernel: the same objective for every method
        _, cr = select_batch(pool[idx], b, method="coding_rate", kernel=kernel, train=train, sigma=0.1,
                             return_gains=True)
        shown = "" if method == "random" else \
            f"gains {gains[0]:.3g} .. {gains[-1]:.3g}; "
        print(f"   {method:>11}: {dt * 1e3:6.1f} ms; {shown}per cluster {per.tolist()}; "
              f"batch coding rate 1/2 logdet(I + K_S|train / sigma^2) = {cr.sum():.2f}")
