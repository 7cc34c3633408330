"""
Thinning an MCMC chain from posteriordb
=======================================

Ten chains of 1,000 draws each of the Lotka-Volterra posterior (``hudson_lynx_hare``,
8 parameters) from posteriordb's reference posteriors are compressed to 100 points with
:func:`kernelkit.compress.kernel_thin`, and compared with standard thinning (every
100-th draw) in maximum mean discrepancy (:func:`kernelkit.compress.mmd`, exact, against
all 10,000 draws).

The data lie outside the repository, in ``../shared/data/posteriordb`` next to it
(posteriordb, BSD-3 licence); without them this example prints a note and stops.
"""

# %%
# Load the draws
# --------------
import json
import os
import zipfile

import matplotlib.pyplot as plt
import numpy as np

import kernelkit as kk

try:
    here = os.path.dirname(os.path.abspath(__file__))
except NameError:                      # run interactively
    here = os.getcwd()
repo_root = os.path.dirname(os.path.dirname(here))   # docs/examples -> repository root
path = os.path.join(repo_root, "..", "shared", "data", "posteriordb",
                    "hudson_lynx_hare-lotka_volterra.json.zip")

if not os.path.exists(path):
    print(f"posteriordb data not found at {os.path.normpath(path)}: skipping this example.")
    draws = None
else:
    with zipfile.ZipFile(path) as zf:
        chains = json.load(zf.open(zf.namelist()[0]))
    names = list(chains[0])
    draws = np.vstack([np.column_stack([np.ravel(ch[p]) for p in names]) for ch in chains])
    print(f"{draws.shape[0]} draws of {draws.shape[1]} parameters: {', '.join(names)}")

# %%
# Thin to 100 points
# ------------------
# The draws are standardised (each parameter to unit variance) so one bandwidth
# fits all; the Gaussian kernel's bandwidth is the median heuristic.
if draws is not None:
    Z = (draws - draws.mean(0)) / draws.std(0)
    h = kk.median_bandwidth(Z)
    k = kk.Gaussian(h)
    size = 100
    kt = kk.kernel_thin(Z, size, k, method="kt", random_state=0, return_result=True, with_mmd=True)
    std = kk.standard_thin(Z, size)
    mmd_std = kk.mmd(Z, Z[std], k)
    print(f"Gaussian kernel, median-heuristic bandwidth {h:.3f}")
    print(f"kernel thinning ({kt.method}, {kt.seconds:.2f} s): MMD {kt.mmd:.4f}")
    print(f"standard thinning:                  MMD {mmd_std:.4f}  ({mmd_std / kt.mmd:.1f}x kernel thinning's)")

    fig, ax = plt.subplots(figsize=(6, 4.5))
    ax.plot(draws[:, 0], draws[:, 1], ".", color="0.8", ms=2, label="all 10,000 draws")
    ax.plot(draws[std, 0], draws[std, 1], "s", mfc="none", mec="C1", label="standard thinning")
    ax.plot(draws[kt.indices, 0], draws[kt.indices, 1], "o", color="C0", ms=4, label="kernel thinning")
    ax.set_xlabel(names[0])
    ax.set_ylabel(names[1])
    ax.set_title("100 of 10,000 posterior draws")
    ax.legend()
    fig.tight_layout()
    plt.show()
