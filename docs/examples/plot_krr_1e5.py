"""
Kernel ridge regression at 10^5 points
======================================

Exact kernel ridge regression needs the n x n kernel matrix (80 GB in float64 at
n = 10^5). :class:`kernelkit.regression.FalkonRegressor` solves the Nystrom problem
with M centres by preconditioned conjugate gradients, every product with the
n x M kernel matrix computed by the engine in blocks, so memory stays O(n d + M^2).
Here: n = 100,000 points in 3-D, M = 1,000 centres; an exact
:class:`kernelkit.regression.KernelRidge` on a 2,000-point subset is the reference
of what a small exact fit gives.
"""

# %%
import time

import matplotlib.pyplot as plt
import numpy as np

from kernelkit.regression import FalkonRegressor, KernelRidge

rng = np.random.default_rng(0)
n, d = 100_000, 3
X = rng.uniform(-2, 2, (n, d))
f = lambda Z: np.sin(2 * Z[:, 0]) * np.cos(Z[:, 1]) + 0.5 * Z[:, 2] ** 2  # noqa: E731
y = f(X) + 0.2 * rng.standard_normal(n)
Xt = rng.uniform(-2, 2, (5_000, d))
noise_var = 0.2 ** 2

t0 = time.perf_counter()
falkon = FalkonRegressor(penalty=1e-6, n_centers=1_000, bandwidth=1.0, max_iter=10,
                         dtype="float32", random_state=0).fit(X, y)
t_falkon = time.perf_counter() - t0
mse_falkon = np.mean((falkon.predict(Xt) - f(Xt)) ** 2)

t0 = time.perf_counter()
krr = KernelRidge(alpha=1.0, bandwidth=1.0).fit(X[:2_000], y[:2_000])
t_krr = time.perf_counter() - t0
mse_krr = np.mean((krr.predict(Xt) - f(Xt)) ** 2)
print(f"Falkon, n = {n}, M = 1000: fit {t_falkon:.2f} s, test MSE vs f {mse_falkon:.5f}")
print(f"exact KRR, n = 2000:       fit {t_krr:.2f} s, test MSE vs f {mse_krr:.5f}")
print(f"(noise variance {noise_var:.2f}; times on the machine that built this page)")

# %%
# The fit along one axis
# ----------------------
line = np.column_stack([np.linspace(-2, 2, 200), np.zeros(200), np.zeros(200)])
fig, ax = plt.subplots(figsize=(6, 4))
sel = (np.abs(X[:, 1]) < 0.1) & (np.abs(X[:, 2]) < 0.1)
ax.plot(X[sel, 0], y[sel], ".", color="0.7", ms=3, label="data near the line")
ax.plot(line[:, 0], f(line), "k--", label="f")
ax.plot(line[:, 0], falkon.predict(line), label="Falkon, n = 100,000")
ax.plot(line[:, 0], krr.predict(line), label="exact KRR, n = 2,000")
ax.set_xlabel("$x_1$ ($x_2 = x_3 = 0$)")
ax.legend()
fig.tight_layout()
plt.show()
