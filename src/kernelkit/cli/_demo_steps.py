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


def regression_step(args):
    """Nystrom + preconditioned CG (Falkon) on a synthetic regression task, beside exact kernel ridge."""
    import kernelkit as kk
    from kernelkit.regression import FalkonRegressor, KernelRidge
    rng = np.random.default_rng(args.seed)
    n, d = (20_000, 8) if args.quick else (100_000, 8)
    X = rng.standard_normal((n + 5_000, d))
    y = np.sin(2 * X[:, 0]) + X[:, 1] * X[:, 2] + 0.5 * np.cos(X[:, 3]) + 0.1 * rng.standard_normal(n + 5_000)
    X, Xt, y, yt = X[:n], X[n:], y[:n], y[n:]
    sigma = kk.median_bandwidth(X, random_state=args.seed)
    kernel = kk.Gaussian(sigma)
    m = 1_000 if args.quick else 2_000
    t0 = time.perf_counter()
    model = FalkonRegressor(kernel, penalty=1e-6, n_centers=m, random_state=args.seed).fit(X, y)
    t1 = time.perf_counter()
    mse = float(np.mean((model.predict(Xt) - yt) ** 2))
    sub = 3_000
    exact = KernelRidge(kernel, alpha=1e-6 * sub).fit(X[:sub], y[:sub])
    mse_exact = float(np.mean((exact.predict(Xt) - yt) ** 2))
    var = float(np.var(yt))
    print(f"   FalkonRegressor, Gaussian({sigma:.3g}) (median heuristic), n={n:,}, d={d}, {m:,} centres: "
          f"fit {t1 - t0:.2f} s, {model.n_iter_} CG iterations")
    print(f"   test MSE / Var(y): Falkon {mse / var:.4f}; exact KernelRidge on the first {sub:,} points "
          f"{mse_exact / var:.4f}; constant predictor 1.0")


def ntk_step(args):
    """An infinitely wide ReLU network trained by gradient descent on a 1-D toy problem (its NTK prediction)."""
    from kernelkit.ntk import NTK, gradient_descent_mse
    rng = np.random.default_rng(args.seed)
    n = 40
    x = np.sort(rng.uniform(-3, 3, size=n))
    X = np.stack([x, np.ones(n)], axis=1)            # a bias input, so the kernel is not only a function of angle
    y = np.sin(x) + 0.05 * rng.standard_normal(n)
    xt = np.linspace(-3, 3, 201)
    Xt = np.stack([xt, np.ones_like(xt)], axis=1)
    kernel = NTK("relu", depth=3, W_std=1.5, b_std=0.1)
    t0 = time.perf_counter()
    rows = []
    for t in (10.0, 100.0, None):
        mean, cov = gradient_descent_mse(kernel, X, y, Xt, t=t, compute_cov=True)
        mean = np.asarray(mean).reshape(-1)
        sd = np.sqrt(np.maximum(np.diag(np.asarray(cov).reshape(len(xt), len(xt))), 0))
        rows.append((t, float(np.sqrt(np.mean((mean - np.sin(xt)) ** 2))), float(np.mean(sd))))
    t1 = time.perf_counter()
    print(f"   NTK(relu, depth=3, W_std=1.5, b_std=0.1): an infinitely wide network trained on {n} noisy points "
          f"of sin(x), predicted at {len(xt)} points ({t1 - t0:.2f} s)")
    for t, rmse, sd in rows:
        label = "t = infinity" if t is None else f"t = {t:g}"
        print(f"   {label:>13}: RMSE against sin(x) {rmse:.3f}, mean posterior std over initialisations {sd:.3f}")


def independence_step(args):
    """HSIC (permutations, gamma), dHSIC and KCI on dependent and independent synthetic data."""
    from kernelkit.stats import dhsic_test, hsic_test, kci_test
    rng = np.random.default_rng(args.seed)
    n = 500 if args.quick else 1_000
    X = rng.standard_normal((n, 1))
    Y = X ** 2 + 0.5 * rng.standard_normal((n, 1))
    t0 = time.perf_counter()
    r = hsic_test(X, Y, n_permutations=200, random_state=args.seed)
    t1 = time.perf_counter()
    g = hsic_test(X, rng.standard_normal((n, 1)), method="gamma")
    print(f"   HSIC, Y = X^2 + noise, n={n:,}, 200 permutations: p-value {r.pvalue:.4g} ({t1 - t0:.2f} s, "
          f"{r.details['path']} Gram matrices); independent pair, gamma approximation: p-value {g.pvalue:.3g}")
    A, B = rng.choice([-1.0, 1.0], (2, n))
    print(f"   dHSIC, C = A B (pairwise independent, jointly dependent): p-value "
          f"{dhsic_test(A[:, None], B[:, None], (A * B)[:, None], method='gamma').pvalue:.3g}")
    Z = rng.standard_normal((400, 1))
    k = kci_test(Z + 0.5 * rng.standard_normal((400, 1)), np.sin(Z) + 0.5 * rng.standard_normal((400, 1)), Z)
    print(f"   KCI, X <- Z -> Y, n=400: p-value {k.pvalue:.3g} (conditionally independent given Z)")
