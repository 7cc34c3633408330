"""Demo steps (see ``_demo.py``). Each prints what it ran and measured."""

from __future__ import annotations

import time

import numpy as np


def engine_step(args):
    import kernelkit as kk
    rng = np.random.default_rng(args.seed)
    n = 20_000 if args.quick else 100_000
    X = rng.standard_normal((n, 3))
    Y = rng.standard_normal((2_000, 3))
    k = kk.Gaussian(0.5)
    t0 = time.perf_counter()
    fast = kk.kernel_sum(k, X, Y)
    t1 = time.perf_counter()
    ref = kk.kernel_sum(k, X, Y, backend="numpy")
    t2 = time.perf_counter()
    err = np.max(np.abs(fast - ref) / np.abs(ref))
    print(f"   kernel_sum, Gaussian(0.5), n={n:,} sources x {Y.shape[0]:,} queries, d=3")
    print(f"   default backend {t1 - t0:.3f} s, NumPy reference {t2 - t1:.3f} s, "
          f"max relative difference {err:.1e}")
