"""
A differentially private similarity query
=========================================

:class:`kernelkit.privacy.PrivateKernelSum` releases, once, a noisy sketch of
:math:`F(y) = \\sum_{x \\in X} k(x, y)` that is :math:`\\epsilon`-differentially private
for the add/remove neighbouring relation; every later query is post-processing and
costs no privacy. A :class:`kernelkit.privacy.PrivacyAccountant` tracks the budget
spent on the data set (basic sequential composition).

The domain (a ball of ``radius`` around ``center``) is declared by the user, never
derived from the private data; records outside it are clipped onto it.
"""

# %%
# Exact sums and private ones at three privacy levels
# ---------------------------------------------------
# ``random_state`` seeds only the public feature map; the noise comes from the
# operating system's CSPRNG and cannot be seeded, so the errors printed below
# change from one build of this page to the next.
import matplotlib.pyplot as plt
import numpy as np

import kernelkit as kk
from kernelkit.privacy import PrivacyAccountant, PrivateKernelSum

rng = np.random.default_rng(0)
X = rng.standard_normal((10_000, 2))                 # the private data
Y = np.column_stack([np.linspace(-3, 3, 60), np.zeros(60)])   # queries along a line
k = kk.Gaussian(0.5)
exact = kk.kernel_sum(k, X, Y)

accountant = PrivacyAccountant(epsilon=3.0)          # total budget on X
answers = {}
for eps in [0.25, 0.75, 2.0]:
    pks = PrivateKernelSum(k, epsilon=eps, radius=5.0, accountant=accountant, random_state=0).fit(X)
    est, std = pks.query(Y, return_std=True)
    rel = np.abs(est - exact).max() / exact.max()
    print(f"epsilon = {eps:4.2f}: {pks.sums_.size} released cells, max |error| / max F = {rel:.3f}, "
          f"noise std per answer ~ {np.median(std):.0f}")
    answers[eps] = est

print("semantics:", {key: pks.privacy_[key] for key in ("neighbouring", "epsilon", "delta")})
print("spent so far:", accountant.ledger)

# %%
# The budget is enforced
# ----------------------
# 0.25 + 0.75 + 2.0 = 3.0 is the whole budget: one more release is refused
# before anything is computed or released.
try:
    PrivateKernelSum(k, epsilon=0.1, radius=5.0, accountant=accountant).fit(X)
except kk.BudgetExceededError as err:
    print("refused:", err)

# %%
# The answers along the line
# --------------------------
fig, ax = plt.subplots(figsize=(7, 4))
ax.plot(Y[:, 0], exact, "k", lw=2, label="exact")
for eps, est in answers.items():
    ax.plot(Y[:, 0], est, label=f"private, $\\epsilon$ = {eps}")
ax.set_xlabel("$y_1$ (with $y_2 = 0$)")
ax.set_ylabel("$\\sum_x k(x, y)$")
ax.set_title("Private kernel sums, n = 10,000, Gaussian kernel h = 0.5")
ax.legend()
fig.tight_layout()
plt.show()
