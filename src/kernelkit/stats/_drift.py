r"""Online MMD drift detection on a stream, calibrated to an expected run time under the null.

The detector compares a sliding window of the last W stream points with a reference sample R through the
biased MMD^2,

.. math::

    T_t = \frac{1}{|R|^2}\sum_{r,r'} k(r, r') + \frac{1}{W^2}\sum_{a,b \in w_t} k(a, b)
          - \frac{2}{|R| W}\sum_{r, a \in w_t} k(r, a),

updated in O(W + |R|) kernel evaluations per point (one engine sum against R, one row of the window). A
drift is flagged at the first t with :math:`T_t > h_t`. The thresholds :math:`h_t` are calibrated so that,
under the null (the stream drawn from the reference distribution), the run length until a false detection is
geometric with mean ``ert`` (expected run time; alibi-detect issue #786): at every step the conditional
probability of a false detection is 1 / ert. They are found by simulating ``n_bootstraps`` streams: the
reference sample is split at random into the reference R kept for the statistic and a pool from which the
simulated streams are drawn with replacement (so simulated points never coincide with R); at each step t the
threshold is the (1 - 1/ert)-quantile of :math:`T_t` over the simulated streams not yet stopped, which are then
stopped when above it. After ``n_calibration_steps`` steps (or when fewer than 20 streams remain) the last
threshold is kept.
"""

from __future__ import annotations

import numpy as np

from .._random import generator
from .._validation import Integral, Real, check_param, check_points, param_error
from ..engine import kernel_sum
from ._mmd_core import resolve_two_sample_kernel

__all__ = ["MMDDriftDetector"]

#: largest simulation pool (its dense kernel matrix is held)
MAX_POOL = 2000


class MMDDriftDetector:
    r"""Sliding-window MMD drift detector with thresholds calibrated to an expected run time.

    Parameters
    ----------
    kernel : Kernel or str, default "gaussian"
        The kernel; a name takes ``bandwidth``, by default the median heuristic on the reference sample
        (:func:`kernelkit.median_bandwidth`).
    bandwidth : float > 0, optional
        Data units.
    window_size : int >= 2, default 50
        W, the number of latest stream points compared with the reference.
    ert : float > 1, default 500
        Expected run time under the null: the mean number of updates after the window fills until a false
        detection (the false-detection hazard per update is 1 / ert).
    n_bootstraps : int >= 100, default 2000
        Simulated null streams for the calibration (the (1 - 1/ert)-quantile needs n_bootstraps >> ert to
        be accurate; the calibration costs O(n_bootstraps W) per step).
    n_calibration_steps : int >= 1, default 200
        Steps calibrated one by one (the statistic's null distribution settles after about W steps).
    pool_fraction : float in (0, 1), default 0.5
        Fraction of the reference sample used as the simulation pool (at most 2,000 points); the rest is R.
    random_state : None, int >= 0, SeedSequence or Generator
        Seeds the split and the simulated streams.
    memory, threads : optional
        Engine options.

    Attributes
    ----------
    kernel_ : Kernel
    reference_ : array of shape (n_r, d)
        R, the reference points kept for the statistic.
    thresholds_ : array of shape (n_calibration_steps,)
        h_t for the first updates after the window fills (then the last value).
    t_ : int
        Number of stream points seen since fit / reset.
    """

    def __init__(self, kernel="gaussian", *, bandwidth=None, window_size=50, ert=500, n_bootstraps=2000,
                 n_calibration_steps=200, pool_fraction=0.5, random_state=None, memory=None, threads=None):
        self.kernel = kernel
        self.bandwidth = bandwidth
        self.window_size = window_size
        self.ert = ert
        self.n_bootstraps = n_bootstraps
        self.n_calibration_steps = n_calibration_steps
        self.pool_fraction = pool_fraction
        self.random_state = random_state
        self.memory = memory
        self.threads = threads

    # ------------------------------------------------------------------ fit / calibration
    def fit(self, X_ref):
        """Resolve the kernel on the reference sample, split it, calibrate the thresholds.

        Parameters
        ----------
        X_ref : array of shape (n, d)
            Reference sample (units of the data), n >= window_size + 10.

        Returns
        -------
        self
        """
        owner = "MMDDriftDetector"
        W = check_param(self.window_size, "window_size", owner, Integral(low=2))
        ert = check_param(self.ert, "ert", owner, Real(low=1, low_open=True))
        nb = check_param(self.n_bootstraps, "n_bootstraps", owner, Integral(low=100))
        steps = check_param(self.n_calibration_steps, "n_calibration_steps", owner, Integral(low=1))
        frac = check_param(self.pool_fraction, "pool_fraction", owner, Real(low=0, high=1, low_open=True,
                                                                           high_open=True))
        X = check_points(X_ref, "X_ref", owner)
        if X.shape[0] < W + 10:
            raise param_error("X_ref", owner, f"a reference sample of at least window_size + 10 = {W + 10} rows",
                              X, shown=f"shape {X.shape}")
        X = X.astype(np.float64, copy=False)
        rng = generator(self.random_state, owner)
        self.kernel_ = resolve_two_sample_kernel(self.kernel, self.bandwidth, X, None, owner)
        n = X.shape[0]
        n_pool = min(MAX_POOL, max(W, int(round(frac * n))))
        n_pool = min(n_pool, n - 2)
        perm = rng.permutation(n)
        pool, R = X[perm[:n_pool]], X[perm[n_pool:]]
        self.reference_ = R
        kw = dict(memory=self.memory, threads=self.threads)
        nr = R.shape[0]
        self._c_rr = float(np.full(nr, 1 / nr) @ kernel_sum(self.kernel_, R, R, np.full(nr, 1 / nr), **kw))
        # mean kernel value against R of every pool point, and the pool's dense kernel matrix
        kr_pool = np.asarray(kernel_sum(self.kernel_, R, pool, np.full(nr, 1 / nr), **kw), dtype=np.float64)
        Kp = np.asarray(self.kernel_(pool), dtype=np.float64)
        self.thresholds_ = self._calibrate(Kp, kr_pool, W, ert, nb, steps, rng)
        self._W = W
        self.reset()
        return self

    def _calibrate(self, Kp, kr, W, ert, nb, steps, rng):
        P = Kp.shape[0]
        idx = rng.integers(P, size=(nb, W + steps - 1))
        win = idx[:, :W]
        S = Kp[win[:, :, None], win[:, None, :]].sum(axis=(1, 2))   # window sums at the first full window
        M = kr[win].sum(axis=1)
        alive = np.ones(nb, dtype=bool)
        q = 1.0 - 1.0 / ert
        out = np.empty(steps)
        for t in range(steps):
            if t > 0:
                old, new = idx[:, t - 1], idx[:, t + W - 1]
                C = idx[:, t:t + W - 1]   # the W - 1 points kept
                S = (S - 2 * Kp[old[:, None], C].sum(axis=1) - Kp[old, old]
                     + 2 * Kp[new[:, None], C].sum(axis=1) + Kp[new, new])
                M = M - kr[old] + kr[new]
            T = self._c_rr + S / W ** 2 - 2 * M / W
            live = T[alive]
            if live.size < 20:
                out[t:] = out[t - 1] if t else np.quantile(T, q)
                break
            out[t] = np.quantile(live, q, method="higher")
            alive &= T <= out[t]
        return out

    # ------------------------------------------------------------------ online use
    def reset(self):
        """Forget the stream (keeps the reference and the thresholds)."""
        self.t_ = 0
        self._buf = []
        self._kr = []
        self._Kw = np.zeros((0, 0))

    def update(self, x):
        """Add one stream point and test.

        Parameters
        ----------
        x : array of shape (d,) or (1, d)
            The new point.

        Returns
        -------
        dict
            ``statistic`` (T_t, or NaN before the window fills), ``threshold`` (h_t, NaN before),
            ``drift`` (bool: T_t > h_t), ``time`` (points seen).
        """
        if not hasattr(self, "thresholds_"):
            raise param_error("fit", "MMDDriftDetector.update", "called first", None, shown="an unfitted detector",
                              noun="method")
        x = check_points(np.asarray(x).reshape(1, -1), "x", "MMDDriftDetector.update").astype(np.float64)
        if x.shape[1] != self.reference_.shape[1]:
            raise param_error("x", "MMDDriftDetector.update", f"a point with {self.reference_.shape[1]} features",
                              x, shown=f"{x.shape[1]} features")
        R = self.reference_
        nr = R.shape[0]
        kr = float(kernel_sum(self.kernel_, R, x, np.full(nr, 1 / nr), memory=self.memory, threads=self.threads)[0])
        W = self._W
        buf = self._buf
        if len(buf) == W:
            buf.pop(0)
            self._kr.pop(0)
            self._Kw = self._Kw[1:, 1:]
        row = (np.asarray(self.kernel_(np.vstack(buf), x), dtype=np.float64)[:, 0] if buf else np.zeros(0))
        kxx = float(self.kernel_.diag(x)[0])
        Kw = np.empty((len(buf) + 1, len(buf) + 1))
        Kw[:-1, :-1] = self._Kw
        Kw[-1, :-1] = Kw[:-1, -1] = row
        Kw[-1, -1] = kxx
        self._Kw = Kw
        buf.append(x[0])
        self._kr.append(kr)
        self.t_ += 1
        if len(buf) < W:
            return {"statistic": float("nan"), "threshold": float("nan"), "drift": False, "time": self.t_}
        T = self._c_rr + Kw.sum() / W ** 2 - 2 * float(np.mean(self._kr))
        step = min(self.t_ - W, self.thresholds_.size - 1)
        h = float(self.thresholds_[step])
        return {"statistic": float(T), "threshold": h, "drift": bool(T > h), "time": self.t_}
