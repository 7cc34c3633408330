"""
A small active-learning loop
============================

Batch active learning picks which pool points to label next. Here a kernel ridge
model learns a 2-D function whose detail sits in one corner of an imbalanced pool;
each round :func:`kernelkit.selection.select_batch` picks 10 new points by max-det
(the batch whose Gaussian-process posterior kernel, given the points labelled so far,
has the largest log-determinant), and we compare with picking at random.
"""

# %%
import matplotlib.pyplot as plt
import numpy as np

import kernelkit as kk
from kernelkit.regression import KernelRidge
from kernelkit.selection import select_batch

rng = np.random.default_rng(0)
# the pool: dense near the origin, sparse further out
pool = np.vstack([rng.normal(0, 0.5, (3000, 2)), rng.uniform(-3, 3, (500, 2))])
f = lambda Z: np.sin(3 * Z[:, 0]) * np.exp(-0.2 * (Z ** 2).sum(1)) + 0.3 * Z[:, 1]  # noqa: E731
y_pool = f(pool) + 0.05 * rng.standard_normal(len(pool))
test = rng.uniform(-3, 3, (2000, 2))
k = kk.Gaussian(0.7)


def test_rmse(idx):
    model = KernelRidge(k, alpha=1e-2).fit(pool[idx], y_pool[idx])
    return np.sqrt(np.mean((model.predict(test) - f(test)) ** 2))


start = rng.choice(len(pool), 10, replace=False)
chosen = {"maxdet": list(start), "random": list(start)}
curves = {name: [test_rmse(start)] for name in chosen}
for rnd in range(6):
    new = select_batch(pool, 10, method="maxdet", kernel=k, train=pool[chosen["maxdet"]],
                       sigma=0.1)
    chosen["maxdet"] += list(new)
    left = np.setdiff1d(np.arange(len(pool)), chosen["random"])
    chosen["random"] += list(rng.choice(left, 10, replace=False))
    for name in chosen:
        curves[name].append(test_rmse(np.array(chosen[name])))
n_labels = 10 * np.arange(1, 8)
for name, c in curves.items():
    print(f"{name:7s}: test RMSE by number of labels " + ", ".join(f"{n}: {e:.3f}" for n, e in zip(n_labels, c)))

# %%
# Learning curves, and where max-det looked
# -----------------------------------------
fig, axes = plt.subplots(1, 2, figsize=(10, 4))
for name, c in curves.items():
    axes[0].plot(n_labels, c, "o-", label=name)
axes[0].set_xlabel("labelled points")
axes[0].set_ylabel("test RMSE")
axes[0].legend()
axes[1].plot(pool[:, 0], pool[:, 1], ".", color="0.85", ms=2)
axes[1].plot(pool[chosen["random"], 0], pool[chosen["random"], 1], "s", mfc="none", mec="C1", label="random")
axes[1].plot(pool[chosen["maxdet"], 0], pool[chosen["maxdet"], 1], "o", color="C0", ms=4, label="maxdet")
axes[1].set_title("the pool and the 70 labelled points")
axes[1].legend()
fig.tight_layout()
plt.show()
