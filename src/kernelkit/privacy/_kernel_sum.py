r"""PrivateKernelSum: a released, differentially private kernel-sum structure."""

from __future__ import annotations

import numpy as np

from .._xp import any_dask
from .._validation import Integral, OneOf, check_param, check_params, check_points, param_error
from ..kernels import make_kernel
from . import _noise
from ._common import (MAX_NOISE_SCALE, NotFittedError, check_domain, check_noise_scale, check_privacy_params,
                      clip_to_ball, load_state, map_row_blocks, public_generator, release_integer_sums,
                      resolve_private_kernel, save_state, smallest_epsilon, accepts)
from ._features import METHODS, FourierMap, make_feature_map

__all__ = ["PrivateKernelSum"]

#: the scalar parameters of PrivateKernelSum with a declared constraint (the privacy ones are in _accountant)
_CONSTRAINTS = {
    "n_features": Integral(low=1) | OneOf("auto"),
    "method": OneOf(*METHODS),
    "reduced_dim": Integral(low=1) | None,
}


def _kernel_from_spec(spec):
    family, params = spec[0], dict(spec[1])
    return make_kernel(family, **params)


class PrivateKernelSum:
    r"""Differentially private kernel sums :math:`F(y) = \sum_{x \in X} k(x, y)` for any number of queries.

    ``fit(X)`` releases one noisy vector :math:`\tilde S = \sum_{x} \phi(x) + \eta`
    of public random features phi (see :mod:`kernelkit.privacy._features`);
    ``query(Y)`` returns :math:`\tilde F(y) = \langle \tilde S, \phi(y) \rangle / n_{freq}`.
    Queries are post-processing: they cost no privacy, however many.

    Parameters
    ----------
    kernel : Kernel or str
        Radial kernel with a spectral density (Gaussian, Laplace, Matern,
        IMQ, rational quadratic), or its name (then ``bandwidth`` is
        required).
    epsilon : float > 0
        Privacy loss bound (dimensionless). Tiny values are refused (fit
        raises ValueError naming the smallest usable epsilon) when the noise
        scale would exceed 2^56 grid units, beyond which integer noise and
        sums overflow int64: about 2e-8 for 2048 cells (pure DP), 3.5e-10
        with n_features='auto'.
    delta : float in [0, 1), default 0
        0 for pure epsilon-DP; > 0 for (epsilon, delta)-DP (probability).
    radius : float > 0
        Radius of the input domain, in the units of the data. Required.
    center : array of shape (d,), optional
        Centre of the domain ball (default: the origin), units of the data.
    bandwidth : float, optional
        Bandwidth when ``kernel`` is a name (units of the data): required
        then, and None with a Kernel object (which carries its own). Unlike
        the functions that see the data (median heuristic), a private
        structure never derives a bandwidth from the private data (that
        would leak them) and does not guess one, so a name without a
        bandwidth raises InvalidValueError.
    n_features : int or 'auto', default 'auto'
        Sketch size: number of released noisy cells. A fixed size suits one
        epsilon only (at small epsilon the noise of a large sketch swamps the
        answers), hence the default 'auto', which spends 5% of
        epsilon on a noisy count n~ (exact n under replace-one, where n is
        public) and uses n_freq = clip(n~ epsilon / 8, 16, 4096) frequencies
        for pure DP (balancing noise, which grows like sqrt(n_freq), against
        the feature approximation, which shrinks like n / sqrt(n_freq)), and
        4096 frequencies for (epsilon, delta)-DP. The count is released as
        ``n_estimate_``.
    method : {'auto', 'rff', 'orf', 'jl', 'lsq-rff'}, default 'auto'
        Feature map. 'auto' is 'orf' for radial kernels, 'rff' otherwise.
        'jl' reduces the dimension to ``reduced_dim`` first (faster builds
        and queries; adds Johnson-Lindenstrauss distortion). 'lsq-rff' is the
        baseline of Wagner et al. (2023).
    reduced_dim : int, optional
        d' for method 'jl' (default min(d, 32)).
    neighbouring : {'add-remove', 'replace-one'}, default 'add-remove'
    accountant : PrivacyAccountant, optional
        Budget to charge at fit.
    random_state : None, int >= 0, SeedSequence or Generator
        Seeds the *public* feature map only (frequencies, phases,
        projection). The noise never comes from it.

    Attributes
    ----------
    sums_ : array of shape (n_features,)
        The released noisy feature sums (sanitized).
    noise_std_ : float
        Standard deviation of the noise in each cell (units of the features).
    feature_map_ : FourierMap
        Public feature map.
    privacy_ : dict
        The semantics above, with the numbers used.

    Notes
    -----
    **Privacy semantics** (stored in ``privacy_`` after fit):

    * Neighbouring datasets: ``"add-remove"`` (X and X' differ by one record
      added or removed; n is *not* public) or ``"replace-one"`` (one record
      changed; n is public). The sensitivity doubles under replace-one.
    * Domain: the l2 ball of ``radius`` around ``center``, declared by the
      user. Records are clipped onto it (never bounded from the private
      data). The features are bounded for every x, so privacy holds for any
      input; the domain fixes what the structure describes.
    * Sensitivity: every record's feature vector is snapped to the grid
      gamma Z (gamma = 2^-20 times the cell bound) and the sums are exact
      integers. For the paired kinds ``||phi(x)||_1 <= sqrt(2) n_freq`` and
      ``||phi(x)||_2 = sqrt(n_freq)``; after snapping (in grid units)
      ``Delta_1 = sqrt(2) n_freq / gamma + n_cells / 2`` and
      ``Delta_2 = sqrt(n_freq) / gamma + sqrt(n_cells) / 2``, times 2 under
      replace-one.
    * Mechanism: ``delta == 0``: discrete Laplace with scale Delta_1 / epsilon
      (pure epsilon-DP). ``delta > 0``: rounded Gaussian with the analytic
      Gaussian sigma for Delta_2 (its noise per answer does not grow with the
      sketch size, hence far more accurate for large sketches). Both are
      sampled from a CSPRNG-keyed generator; see :mod:`kernelkit.privacy._noise`.
    * Budget: the whole (epsilon, delta) goes to the feature sums (a single
      release), except with ``n_features='auto'``, where 5% of epsilon first
      buys a noisy count that sizes the sketch (basic composition; the split
      is in ``privacy_['budget_split']``). With an ``accountant``, fit checks
      the budget before any release and raises BudgetExceededError when it
      is not available.
    * Gaussian (rounded) mechanism, proof sketch: the statistic t is an
      integer vector, so ``t + rint(N(0, s^2 I)) = rint(t + N(0, s^2 I))`` is
      a post-processing of the continuous Gaussian mechanism, which is
      (epsilon, delta)-DP for L2 sensitivity Delta_2 when s satisfies the
      analytic condition of Balle and Wang (2018); post-processing keeps it.

    Error of an answer: noise, with standard deviation
    ``noise_std_ * ||phi(y)||_2 / n_freq`` (``query(Y, return_std=True)``), plus
    the random-feature approximation, of order ``n / sqrt(n_freq)`` (public
    randomness). ``query(Y, return_std='total')`` estimates the standard
    deviation of both together from the released state.
    """

    #: 1 in every real release; tests shrink it to build deliberately broken mechanisms.
    _noise_factor = 1.0

    def __init__(self, kernel="gaussian", *, epsilon, delta=0.0, radius=None, center=None, bandwidth=None,
                 n_features="auto", method="auto", reduced_dim=None, neighbouring="add-remove", accountant=None,
                 random_state=None):
        self.kernel = kernel
        self.epsilon = epsilon
        self.delta = delta
        self.radius = radius
        self.center = center
        self.bandwidth = bandwidth
        self.n_features = n_features
        self.method = method
        self.reduced_dim = reduced_dim
        self.neighbouring = neighbouring
        self.accountant = accountant
        self.random_state = random_state

    def _resolve_kernel(self, owner=None):
        return resolve_private_kernel(self.kernel, self.bandwidth, owner or type(self).__name__)

    def fit(self, X, y=None):
        """Release the private structure for the rows of X (the private data)."""
        return self._fit(X, min_rows=1)

    def _fit_allow_empty(self, X):
        # used by the classifier: an empty class still releases an (all-noise) structure
        return self._fit(X, min_rows=0)

    def _fit(self, X, min_rows):
        owner = type(self).__name__
        epsilon, delta, neighbouring = check_privacy_params(self, owner)
        kernel = self._resolve_kernel()
        params = check_params(vars(self), _CONSTRAINTS, owner)
        n_features = params["n_features"]
        auto_size = n_features == "auto"
        dask_rows = any_dask(X)  # exact sums by tasks, noise here
        if dask_rows:
            from ..dask._methods import private_rows, sum_row_blocks
        X = private_rows(X, owner, min_rows) if dask_rows else check_points(X, "X", owner, min_rows=min_rows)
        d = X.shape[1]
        radius, center = check_domain(self.radius, self.center, d, owner)
        reduced_dim = None
        if self.method == "jl":
            reduced_dim = min(d, 32) if params["reduced_dim"] is None else params["reduced_dim"]
        budget_split = {}
        eps_sums = epsilon
        n_estimate = None
        if auto_size:
            if self.accountant is not None and not self.accountant.can_spend(epsilon, delta):
                self.accountant.spend(epsilon, delta, label=f"{owner} sketch size and feature sums")  # raises
            self._check_auto_epsilon(epsilon, delta, neighbouring)  # before the noisy count
            n_estimate, eps_size = self._private_size(X.shape[0], epsilon, neighbouring)
            eps_sums = epsilon - eps_size
            n_features = self._auto_features(n_estimate, eps_sums, delta, neighbouring)
            budget_split["sketch size (noisy count)"] = [eps_size, 0.0]
        budget_split["feature sums"] = [eps_sums, delta]
        rng = public_generator(self.random_state, owner)
        fmap = make_feature_map(kernel, self.method, d, n_features, reduced_dim, rng, owner)

        gamma = _noise.grid_step(fmap.cell_bound)
        factor = 2.0 if neighbouring == "replace-one" else 1.0
        sens_l1 = factor * _noise.grid_sensitivity(fmap.l1_bound, gamma, fmap.n_cells, 1)
        sens_l2 = factor * _noise.grid_sensitivity(fmap.l2_bound, gamma, fmap.n_cells, 2)
        check_noise_scale(sens_l1, sens_l2, eps_sums, delta, owner, f"a sketch of {fmap.n_cells} cells")
        if self.accountant is not None:
            self.accountant.spend(epsilon, delta, label=f"{owner} " + " and ".join(budget_split))

        inv_gamma = np.float32(1.0 / gamma)

        def block_sum(rows):
            F = fmap.transform(clip_to_ball(rows, center, radius))
            F *= inv_gamma
            np.rint(F, out=F)
            return F.sum(axis=0, dtype=np.float64)  # exact: integers below 2^53 (n < 2^33 records)

        parts = (sum_row_blocks(block_sum, X, fmap.row_bytes(), owner) if dask_rows
                 else map_row_blocks(lambda a, b: block_sum(X[a:b]), X.shape[0], fmap.row_bytes()))
        stat = np.rint(np.sum(parts, axis=0)).astype(np.int64) if parts else np.zeros(fmap.n_cells, np.int64)
        noisy, std_units, mechanism = release_integer_sums(stat, sens_l1, sens_l2, eps_sums, delta,
                                                           self._noise_factor)
        del stat, parts
        self.kernel_ = kernel
        self.feature_map_ = fmap
        self.sums_ = noisy.astype(np.float64) * gamma
        self.noise_std_ = float(std_units * gamma)
        self.n_features_in_ = d
        self.radius_ = radius
        self.center_ = center
        self.privacy_ = {
            "epsilon": epsilon, "delta": delta, "neighbouring": neighbouring,
            "n_public": neighbouring == "replace-one",
            "domain": f"l2 ball of radius {radius:g} around center_ (records clipped onto it)",
            "mechanism": mechanism, "grid_step": gamma,
            "sensitivity_l1_grid_units": sens_l1, "sensitivity_l2_grid_units": sens_l2,
            "budget_split": budget_split,
            "feature_map": fmap.kind, "n_features": fmap.n_cells,
        }
        if n_estimate is not None:
            self.n_estimate_ = n_estimate
        return self

    #: share of epsilon spent on the noisy count when n_features='auto' (add-remove only)
    _AUTO_SIZE_FRACTION = 0.05
    #: largest number of frequencies chosen by n_features='auto'
    _AUTO_MAX_FREQ = 4096

    def _sensitivities(self, n_features, neighbouring):
        """(Delta_1, Delta_2) in grid units of a sketch of ``n_features`` cells (public parameters only)."""
        paired = self.method != "lsq-rff"
        n_freq = max(1, n_features // 2 if paired else n_features)
        fmap = FourierMap("rff" if paired else "lsq-rff", np.zeros((n_freq, 1)))
        gamma = _noise.grid_step(fmap.cell_bound)
        factor = 2.0 if neighbouring == "replace-one" else 1.0
        return (factor * _noise.grid_sensitivity(fmap.l1_bound, gamma, fmap.n_cells, 1),
                factor * _noise.grid_sensitivity(fmap.l2_bound, gamma, fmap.n_cells, 2))

    def _check_epsilon(self, n_features, epsilon, delta, neighbouring):
        """Raise InvalidValueError (naming the smallest usable epsilon) when the noise would be too large."""
        owner = type(self).__name__
        if n_features == "auto":
            return self._check_auto_epsilon(epsilon, delta, neighbouring)
        check_noise_scale(*self._sensitivities(n_features, neighbouring), epsilon, delta, owner,
                          f"n_features={n_features}")

    def _check_auto_epsilon(self, epsilon, delta, neighbouring):
        """n_features='auto': the noisy count and the smallest sketch (16 frequencies) must be releasable."""
        smallest = 16 if self.method == "lsq-rff" else 32
        sens = self._sensitivities(smallest, neighbouring)

        def check(e):
            eps_sums = e
            if neighbouring != "replace-one":
                check_noise_scale(1.0, 1.0, e * self._AUTO_SIZE_FRACTION, 0.0, "", "")
                eps_sums = e - e * self._AUTO_SIZE_FRACTION
            check_noise_scale(*sens, eps_sums, delta, "", "")

        def fits(e):
            return accepts(check, e)

        if not fits(epsilon):
            raise param_error(
                "epsilon", type(self).__name__,
                f"at least {smallest_epsilon(fits, epsilon):.3g} with n_features='auto' and delta={delta!r}", epsilon,
                hint="Below, the noise of the sketch-size count or of the smallest sketch (16 frequencies) exceeds "
                     "2^56 grid units, beyond which integer noise and sums overflow int64.")

    def _private_size(self, n, epsilon, neighbouring):
        """(n or a noisy n, epsilon spent): exact under replace-one (n public), else discrete Laplace."""
        if neighbouring == "replace-one":
            return float(n), 0.0
        eps_size = epsilon * self._AUTO_SIZE_FRACTION
        noisy, _, _ = release_integer_sums(np.array([n]), 1.0, 1.0, eps_size, 0.0, self._noise_factor)
        return float(max(noisy[0], 1)), eps_size

    def _auto_features(self, n_estimate, epsilon, delta, neighbouring="add-remove"):
        """Sketch size balancing noise and feature approximation (public function of DP outputs).

        Pure DP: an answer's noise has standard deviation about 2 sqrt(n_freq) / epsilon and the
        approximation about c n / sqrt(n_freq) (c ~ 1/2), so n_freq = c n epsilon / 2. (epsilon, delta):
        the noise per answer does not depend on n_freq, so the largest size is used. Either way the
        size is halved (down to 16 frequencies) while its noise scale exceeds MAX_NOISE_SCALE
        (tiny epsilon).
        """
        if delta > 0:
            n_freq = self._AUTO_MAX_FREQ
        else:
            n_freq = int(np.clip(round(min(0.125 * n_estimate * epsilon, 1e18)), 16, self._AUTO_MAX_FREQ))
        cells = (lambda f: f if self.method == "lsq-rff" else 2 * f)
        # tiny epsilon: the largest sketch whose noise scale stays usable (public: epsilon, delta only)
        while n_freq > 16:
            l1, l2 = self._sensitivities(cells(n_freq), neighbouring)
            if (l1 / epsilon if delta == 0 else _noise.gaussian_sigma(epsilon, delta, l2)) <= MAX_NOISE_SCALE:
                break
            n_freq = max(16, n_freq // 2)
        return cells(n_freq)

    def _check_fitted(self):
        if not hasattr(self, "sums_"):
            raise NotFittedError(f"This {type(self).__name__} is not fitted yet; call fit(X) first.")

    def query(self, Y, return_std=False):
        """Private kernel sums at the rows of Y (public queries).

        Parameters
        ----------
        Y : array of shape (m, d)
        return_std : {False, True, 'noise', 'total'}
            ``True`` or ``'noise'``: also return the standard deviation of the
            DP noise in each answer, ``noise_std_ * ||phi(y)||_2 / n_freq``
            (exact, from the noise scale). ``'total'``: an estimate of the
            standard deviation of the whole error (noise plus random-feature
            approximation), computed from the released state only: each
            frequency j gives its own unbiased estimate ``e_j(y)`` (the cos and
            sin cells of j), the answer is their mean, and the error bar is
            ``std_j(e_j) / sqrt(n_freq)``. It treats frequencies as independent
            (conservative for orthogonal features, whose errors are negatively
            correlated) and is itself post-processing: no privacy cost.

        Returns
        -------
        values : array of shape (m,)
            Estimates of ``sum_x k(x, y_j)``.
        std : array of shape (m,), if ``return_std``
        """
        if any_dask(Y):  # lazy dask answers (kernelkit.dask)
            from ..dask._methods import private_query
            return private_query(self, Y, return_std)
        self._check_fitted()
        owner = f"{type(self).__name__}.query"
        return_std = check_param(return_std, "return_std", owner, OneOf(False, True, "noise", "total"))
        Y = check_points(Y, "Y", owner)
        if Y.shape[1] != self.n_features_in_:
            raise param_error("Y", owner, f"an array with {self.n_features_in_} features, like the data given to fit",
                              Y, shown=f"shape {Y.shape}")
        fmap = self.feature_map_
        nf = fmap.n_freq
        values = np.empty(Y.shape[0])
        spread = np.empty(Y.shape[0])
        total = return_std == "total"

        def block(a, b):
            F = fmap.transform(Y[a:b]).astype(np.float64)
            if total:
                E = F * self.sums_
                if fmap.paired:
                    E = E[:, :nf] + E[:, nf:]  # per-frequency estimates e_j(y)
                values[a:b] = E.mean(axis=1)
                spread[a:b] = E.std(axis=1, ddof=1) / np.sqrt(nf) if nf > 1 else np.inf
            else:
                values[a:b] = F @ self.sums_ / nf
                spread[a:b] = self.noise_std_ * np.sqrt(np.einsum("ij,ij->i", F, F)) / nf

        map_row_blocks(block, Y.shape[0], fmap.row_bytes() * 3)
        if return_std:
            return values, spread
        return values

    # --- saving: sanitized state only, no pickle -------------------------
    def save(self, path):
        """Write the released state to ``path`` (.npz, loadable without pickle)."""
        self._check_fitted()
        arrays = {"sums": self.sums_, "center": self.center_, **self.feature_map_.to_arrays()}
        meta = {"kernel_spec": [self.kernel_.spec[0], [list(p) for p in self.kernel_.spec[1]]],
                "noise_std": self.noise_std_, "n_features_in": self.n_features_in_, "radius": self.radius_,
                "privacy": self.privacy_}
        save_state(path, "PrivateKernelSum", arrays, meta)

    @classmethod
    def load(cls, path):
        """Read a structure written by :meth:`save` (``allow_pickle=False``)."""
        meta, arrays = load_state(path, "PrivateKernelSum")
        p = meta["privacy"]
        obj = cls(epsilon=p["epsilon"], delta=p["delta"], radius=meta["radius"], neighbouring=p["neighbouring"])
        obj.kernel_ = _kernel_from_spec((meta["kernel_spec"][0], meta["kernel_spec"][1]))
        obj.kernel = obj.kernel_
        obj.feature_map_ = FourierMap.from_arrays(p["feature_map"], arrays)
        obj.sums_ = arrays["sums"].astype(np.float64)
        obj.noise_std_ = float(meta["noise_std"])
        obj.n_features_in_ = int(meta["n_features_in"])
        obj.radius_ = float(meta["radius"])
        obj.center_ = arrays["center"]
        obj.privacy_ = p
        return obj

    def __repr__(self):
        state = "fitted" if hasattr(self, "sums_") else "not fitted"
        return (f"PrivateKernelSum(kernel={self.kernel!r}, epsilon={self.epsilon!r}, delta={self.delta!r}, "
                f"radius={self.radius!r}, n_features={self.n_features!r}, method={self.method!r}; {state})")
