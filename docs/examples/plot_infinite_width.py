"""
Predictions of an infinitely wide network
=========================================

An infinitely wide fully connected network trained by gradient descent on the
squared loss is a Gaussian process whose mean and covariance are closed-form in
its neural tangent kernel :class:`kernelkit.ntk.NTK` and its NNGP kernel
:class:`kernelkit.ntk.NNGP` (Jacot et al. 2018; Lee et al. 2019).
:func:`kernelkit.ntk.gradient_descent_mse` gives them at any training time, and
the kernels work with every kernelkit method like any other kernel.
"""

# %%
# A 1-D regression problem, embedded on the circle
# ------------------------------------------------
# Dot-product kernels see inputs through their norms and angles, so the
# scalar input is mapped to (cos, sin) plus a constant.
import matplotlib.pyplot as plt
import numpy as np

from kernelkit.ntk import NNGP, NTK, gradient_descent_mse

rng = np.random.default_rng(0)
embed = lambda s: np.column_stack([np.cos(s), np.sin(s), np.ones_like(s)])  # noqa: E731
s_train = np.sort(rng.uniform(-np.pi, np.pi, 24))
y_train = np.sin(2 * s_train) + 0.1 * rng.standard_normal(24)
s_test = np.linspace(-np.pi, np.pi, 200)

ntk = NTK("relu", depth=3, W_std=1.5, b_std=0.05)
nngp = NNGP("relu", depth=3, W_std=1.5, b_std=0.05)
times = [0.5, 5.0, np.inf]
mean, cov = gradient_descent_mse(ntk, embed(s_train), y_train, embed(s_test), t=times,
                                 diag_reg=1e-4, compute_cov=True, nngp=nngp)
train_fit = gradient_descent_mse(ntk, embed(s_train), y_train, embed(s_train), t=times, diag_reg=1e-4)
for t, m_t in zip(times, train_fit):
    print(f"t = {t:>5}: training MSE {np.mean((m_t - y_train) ** 2):.4f}")
std = np.sqrt(np.clip(np.diagonal(cov[-1]), 0, None))
print(f"test error vs sin(2s) at t = inf: {np.sqrt(np.mean((mean[-1] - np.sin(2 * s_test)) ** 2)):.3f} (RMS)")

# %%
# Mean at three training times, and the spread of the ensemble at t = inf
# -----------------------------------------------------------------------
fig, ax = plt.subplots(figsize=(7, 4))
ax.plot(s_train, y_train, "ko", ms=4, label="training data")
for t, m_t in zip(times, mean):
    ax.plot(s_test, m_t, label=f"mean, t = {t}")
ax.fill_between(s_test, mean[-1] - 2 * std, mean[-1] + 2 * std, color="C2", alpha=0.2,
                label="+- 2 std over initialisations, t = inf")
ax.set_xlabel("s")
ax.set_title("Infinitely wide 3-layer ReLU network (NTK)")
ax.legend(fontsize=8)
fig.tight_layout()
plt.show()
