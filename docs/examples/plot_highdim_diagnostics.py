"""
What a density estimate is made of in high dimension
====================================================

In high dimension a kernel density estimate at a query is often carried by a
handful of data points. :meth:`kernelkit.density.KernelDensity.diagnose` reports,
per query, the effective number of points
:math:`n_{eff} = (\\sum_i t_i)^2 / \\sum_i t_i^2` (the :math:`t_i` are the kernel
terms), the share of the largest term, and the regime: "CLT" (a bulk average),
"heavy-tailed", or "extreme-value" (one point dominates).
:func:`kernelkit.density.regime_thresholds` gives the bandwidths :math:`h_{CLT}`
and :math:`h_G` between these regimes for Gaussian data.
"""

# %%
# Gaussian data in d = 32, several bandwidths
# -------------------------------------------
import matplotlib.pyplot as plt
import numpy as np

import kernelkit as kk
from kernelkit.density import regime_thresholds

rng = np.random.default_rng(0)
n, d = 5000, 32
X = rng.standard_normal((n, d))
Y = rng.standard_normal((200, d))          # held-out queries
h_clt, h_g = regime_thresholds(n, d)
print(f"n = {n}, d = {d}: h_G = {h_g:.3f}, h_CLT = {h_clt:.3f}")

factors = [0.5, 0.75, 1.0, 1.41, 2.0, 3.0]
median_neff = []
for f in factors:
    rep = kk.KernelDensity(bandwidth=f * h_g).fit(X).diagnose(Y, warn=False)
    regimes, counts = np.unique(rep.regime, return_counts=True)
    median_neff.append(np.median(rep.n_eff))
    print(f"h = {f:4.2f} h_G: median n_eff {median_neff[-1]:8.1f}, median top share "
          f"{np.median(rep.top_share):.2f}, regimes {dict(zip(regimes.tolist(), counts.tolist()))}")

# %%
# Where do the usual bandwidth rules land?
# ----------------------------------------
# Scott's rule, derived for low dimension, picks a bandwidth below h_G here.
for rule in ["scott", "silverman"]:
    kde = kk.KernelDensity(bandwidth=rule).fit(X)
    rep = kde.diagnose(Y, warn=False)
    print(f"{rule:9s}: h = {kde.bandwidth_:.3f} = {kde.bandwidth_ / h_g:.2f} h_G, "
          f"median n_eff {np.median(rep.n_eff):.1f}")

fig, ax = plt.subplots(figsize=(6, 4))
ax.semilogy(factors, median_neff, "o-")
ax.axvline(1.0, color="gray", ls="--", label="$h_G$")
ax.axvline(np.sqrt(2), color="gray", ls=":", label="$h_{CLT}$")
ax.set_xlabel("bandwidth / $h_G$")
ax.set_ylabel("median effective number of points")
ax.set_title(f"KDE of N(0, I), n = {n}, d = {d}")
ax.legend()
fig.tight_layout()
plt.show()
