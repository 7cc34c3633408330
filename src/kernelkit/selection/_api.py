r"""``select_batch``: batch selection for active learning on a kernel over the pool.

See :func:`select_batch` for the methods and their formulas.
"""

from __future__ import annotations


import numpy as np

from .._blas import blas_threads
from .._options import get_options
from .._random import generator
from ..exceptions import NotSupportedError
from .._validation import Integral, OneOf, Real, check_param, check_points, check_weights, param_error
from ..kernels import Kernel, make_kernel
from . import _greedy
from ._operators import ConditionedKernel, FeatureKernel, PointKernel, posterior_features, posterior_rows

__all__ = ["select_batch", "BatchSelector", "prediction_entropy", "METHODS"]

OWNER = "select_batch"
#: the method names (``coding_rate`` and ``maxdet`` pick the same points; ``kcenter`` is ``maxdist``)
METHODS = ("coding_rate", "maxdet", "kmeanspp", "kcenter", "maxdist", "lcmd", "maxdiag", "bait", "random")
TRAIN_MODES = ("posterior", "centers")


def prediction_entropy(probs):
    r"""Shannon entropy of each row of class probabilities, :math:`h_i = -\sum_c p_{ic} \log p_{ic}` (nats).

    Parameters
    ----------
    probs : array of shape (n, n_classes)
        Probabilities (rows of non-negative values; each row is normalised to sum 1).

    Returns
    -------
    h : array of shape (n,), float64, in [0, log n_classes]
    """
    P = check_points(probs, "probs", "prediction_entropy", dtype=np.float64)
    if (P < 0).any():
        raise param_error("probs", "prediction_entropy", "an array of non-negative probabilities", probs,
                          shown=f"a minimum of {P.min():g}")
    s = P.sum(axis=1, keepdims=True)
    if (s <= 0).any():
        raise param_error("probs", "prediction_entropy", "rows with a positive sum", probs,
                          shown=f"row {int(np.argmin(s[:, 0]))} summing to 0")
    P = P / s
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(P > 0, P * np.log(P), 0.0)
    return -terms.sum(axis=1)


def _features_of(value, name):
    """The projected-gradient features of an :class:`~kernelkit.ntk.EmpiricalNTK` result, or ``value``."""
    if type(value).__name__ == "EmpiricalNTK" and getattr(value, "kind", None) != "projected":
        raise param_error(name, OWNER, "an array, or an EmpiricalNTK of kind='projected' (features)", value,
                          kind="type", shown=f"an EmpiricalNTK of kind={value.kind!r}",
                          hint="Compute features with empirical_ntk(model, X, kind='projected', k=...).")
    feats = getattr(value, "features1", None)
    if feats is not None and getattr(value, "kind", None) == "projected":
        if not isinstance(feats, np.ndarray):          # torch tensor on a device
            feats = feats.detach().cpu().numpy()
        return feats.reshape(feats.shape[0], -1)
    return value


def select_batch(pool, batch_size, *, method="maxdet", kernel=None, train=None, sigma=0.1, train_mode="posterior",
                 entropy=None, entropy_weight=1.0, random_state=None, return_gains=False):
    r"""Pick ``batch_size`` pool points to label next: greedy, kernel-based batch active learning.

    The kernel :math:`k` is a kernelkit kernel on the pool points, or the
    linear kernel :math:`k(x_i, x_j) = \phi_i \cdot \phi_j` on the rows of a
    feature matrix (``kernel=None``: last-layer features, projected gradients
    from :func:`kernelkit.ntk.empirical_ntk`, random features). Squared
    kernel distances are :math:`d^2(x, x') = k(x, x) + k(x', x') - 2k(x, x')`.
    Methods (S: the points picked so far, C: the centres, that is S and, in
    ``train_mode="centers"``, the labelled points):

    * ``"maxdet"``: greedy maximisation of
      :math:`\log\det(I + K_S / \sigma^2)` by pivoted Cholesky of
      :math:`K + \sigma^2 I` (pick :math:`\arg\max_i r_i`, the residual
      diagonal; gain :math:`\log(r_j / \sigma^2)`; O(N B) memory, one kernel
      column per pick, O(N B^2) time). With ``entropy`` h, the matrix is
      :math:`K + \mathrm{diag}(\lambda h)` (:math:`\lambda` = ``entropy_weight``):
      :math:`\log\det(I + (K_S + \lambda\,\mathrm{diag}(h_S)) / \sigma^2)`.
    * ``"coding_rate"``: KECOR's kernel coding rate
      :math:`R(S) = \tfrac12 \log\det(I + K_S / \sigma^2)` (``sigma`` is
      KECOR's :math:`\epsilon`), same greedy, same picks as ``"maxdet"``,
      gains halved; the entropy term as above.
    * ``"kcenter"`` / ``"maxdist"``: pick :math:`\arg\max_x \min_{c \in C} d^2(x, c)`;
      without centres the first pick is :math:`\arg\max_x k(x, x)`.
    * ``"kmeanspp"``: k-means++ seeding: pick x with probability
      :math:`\propto \min_{c \in C} d^2(x, c)`; the first pick is uniform
      without centres.
    * ``"lcmd"``: largest cluster maximum distance: clusters are the Voronoi
      cells of the centres, of size :math:`\sum_{x \in \text{cell}} \min_c d^2(x, c)`;
      pick the farthest point of the largest cell (first pick as kcenter).
    * ``"maxdiag"``: the B largest :math:`k(x, x)` (uncertainty sampling).
    * ``"bait"``: forward greedy BAIT (features only): pick the point whose
      observation most reduces the summed posterior variance,
      :math:`\arg\max_i \sum_{x \in P \cup T} k_S(x, x_i)^2 / (\sigma^2 + k_S(x_i, x_i) + 10^{-8})`
      (P the pool, T the labelled points),
      :math:`k_S` the posterior kernel given the picks (and ``train``) with noise :math:`\sigma^2`.
    * ``"random"``: uniform without replacement.

    These follow the definitions of Holzmueller et al. (JMLR 2023, bmdal_reg)
    and of KECOR (Luo et al., ICCV 2023).

    Parameters
    ----------
    pool : array of shape (N, d), or an EmpiricalNTK
        The unlabelled points (``kernel`` given) or their features
        (``kernel=None``); an :class:`~kernelkit.ntk.EmpiricalNTK` of
        ``kind="projected"`` stands for its ``features1``.
    batch_size : int, 1 <= batch_size <= N
        Number of points to pick.
    method : str, default "maxdet"
        One of ``METHODS`` (above).
    kernel : Kernel, str or None, default None
        A kernelkit kernel (or its name, default parameters) on the points,
        including the infinite-width ``NNGP`` / ``NTK``; None: the rows of
        ``pool`` are features and k is their dot product.
    train : array of shape (n_train, d), optional
        Labelled points (features when ``kernel=None``), in the units of ``pool``.
    sigma : float > 0, default 0.1
        Noise standard deviation, in the units of :math:`\sqrt{k}`: the
        :math:`\sigma^2` of the max-det / coding-rate objective and of the
        posterior given ``train``.
    train_mode : {"posterior", "centers"}, default "posterior"
        How ``train`` is used. "posterior": every method runs on the
        posterior kernel of a Gaussian process observed at the labelled
        points with noise :math:`\sigma^2`,
        :math:`k_{post}(x, x') = k(x, x') - k(x, T)(K_{TT} + \sigma^2 I)^{-1} k(T, x')`
        (bmdal_reg's P-mode with the ``train`` transform; in feature space
        the D x D form). "centers": the labelled points are centres already
        chosen, the kernel is unchanged (bmdal_reg's TP-mode; for the
        distance methods; ``maxdiag`` and ``random`` then ignore ``train``).
        For ``maxdet`` / ``coding_rate`` both give the same picks; ``bait``
        always uses the posterior.
    entropy : array of shape (N,), optional
        Non-negative per-point scores added to the diagonal (``maxdet``,
        ``coding_rate`` only), in units of k: e.g. the predictive entropy
        of each pool point (:func:`prediction_entropy`), KECOR's term.
    entropy_weight : float >= 0, default 1.0
        :math:`\lambda`, the weight of ``entropy``.
    random_state : None, int, SeedSequence or Generator
        Seeds ``kmeanspp`` and ``random`` (the other methods are deterministic).
    return_gains : bool, default False
        Also return each pick's gain.

    Returns
    -------
    indices : int64 array of shape (batch_size,)
        Pool indices in pick order.
    gains : float64 array of shape (batch_size,)
        Only with ``return_gains=True``. ``maxdet``: :math:`\log(r_j/\sigma^2)`,
        whose sum is the objective; ``coding_rate``: half of that;
        ``bait``: the score :math:`s_j`; distance methods: :math:`\min_c d^2(x_j, c)` at the pick
        (:math:`k(x_j, x_j)` for a first pick without centres); ``maxdiag``:
        :math:`k(x_j, x_j)`; ``random``: NaN.

    Raises
    ------
    InvalidValueError, InvalidTypeError
        An empty pool, NaN or inf values, ``batch_size`` outside [1, N],
        an unknown method, ``sigma <= 0``, mismatched feature counts.

    Notes
    -----
    Never an N x N matrix. With a kernel, each pick reads one kernel column
    :math:`k(X, x_j)` (the kernel's dense evaluation against one point, or
    the engine's ``kernel_block`` for wider blocks) and max-det keeps the
    B x N pivoted-Cholesky factor: O(N B) memory, O(N B^2) time; the
    posterior given n_train labelled points keeps their n_train x N factor
    (blocks within ``kernelkit.options(memory=...)``). With features
    (N x D), max-det / coding rate run in weight space (a D x D matrix; the
    posterior is its initial value) as a lazy greedy: residuals only
    decrease, so each pick refreshes only the largest stale residuals (a
    few hundred rows) instead of a pass ``F @ v`` over the pool (same picks
    up to the rounding of near-ties); the other methods use ``F @ phi_j``
    as the column and the D x D posterior features. For ``maxdist`` /
    ``kcenter``, ``kmeanspp`` and ``lcmd`` on features with D >= 64 and
    N >= 4096, each pick's pass skips the rows that provably keep their
    nearest-centre distance (a lower bound of :math:`d^2` from a
    32-dimensional principal projection and the residual norms, with a
    margin for rounding): on gradient features about 1% of the rows are read
    per pick; same picks up to the rounding of near-ties. float32 features are
    kept in float32 (distances to the labelled centres by one float32
    product per block, minima accumulated in float64); float64 features in
    float64. Ties are broken by the smaller index. ``kernelkit.options(threads=n)``
    caps the BLAS threads of those passes at n (they are memory-bound; on
    a busy machine one thread can be several times faster than two).

    Examples
    --------
    >>> import numpy as np, kernelkit as kk
    >>> from kernelkit.selection import select_batch
    >>> X = np.random.default_rng(0).normal(size=(500, 3))
    >>> idx, gains = select_batch(X, 8, method="maxdet", kernel=kk.Gaussian(1.0), return_gains=True)
    >>> idx.shape, bool(np.all(np.diff(gains) <= 1e-12))
    ((8,), True)
    """
    method = check_param(method, "method", OWNER, OneOf(*METHODS))
    train_mode = check_param(train_mode, "train_mode", OWNER, OneOf(*TRAIN_MODES))
    sigma = check_param(sigma, "sigma", OWNER, Real(low=0, low_open=True))
    entropy_weight = check_param(entropy_weight, "entropy_weight", OWNER, Real(low=0))
    return_gains = check_param(return_gains, "return_gains", OWNER, OneOf(True, False))
    if kernel is not None and not isinstance(kernel, Kernel):
        if not isinstance(kernel, str):
            raise param_error("kernel", OWNER, "a kernelkit Kernel, a kernel name or None (features)", kernel,
                              kind="type")
        kernel = make_kernel(kernel)
    pool = check_points(_features_of(pool, "pool"), "pool", OWNER)
    n = pool.shape[0]
    batch_size = check_param(batch_size, "batch_size", OWNER, Integral(low=1, high=n),
                             hint=f"The pool has {n} point(s).")
    if kernel is not None:
        kernel._check_features(pool.shape[1], OWNER)
    if train is not None:
        train = check_points(_features_of(train, "train"), "train", OWNER, min_rows=0)
        if train.shape[1] != pool.shape[1]:
            raise param_error("train", OWNER, f"an array with as many features as 'pool' ({pool.shape[1]})",
                              train, shown=f"shape {train.shape}")
        if train.shape[0] == 0:
            train = None
        else:
            dt = np.float32 if pool.dtype == train.dtype == np.float32 else np.float64
            pool, train = pool.astype(dt, copy=False), train.astype(dt, copy=False)
    extra = None
    if entropy is not None:
        if method not in ("maxdet", "coding_rate"):
            raise param_error("entropy", OWNER, "None unless method is 'maxdet' or 'coding_rate'", entropy,
                              shown=f"scores with method={method!r}")
        h = check_weights(entropy, n, "entropy", OWNER, nonnegative=True, allow_2d=False)
        extra = entropy_weight * h

    rng = generator(random_state, OWNER)          # validated for every method; used by kmeanspp and random
    threads = get_options().threads
    with blas_threads(threads):   # the greedy passes F @ v are memory-bound: extra BLAS threads contend
        idx, gains = _dispatch(method, pool, train, kernel, batch_size, sigma, train_mode, extra, rng)
    idx = idx.astype(np.int64)
    return (idx, gains) if return_gains else idx


def _dispatch(method, pool, train, kernel, batch_size, sigma, train_mode, extra, rng):
    """The rule of ``method`` on validated inputs: ``(indices, gains)``."""
    n = pool.shape[0]
    if method == "random":
        idx, gains = _greedy.random(n, batch_size, rng)
        return idx, gains
    if method in ("maxdet", "coding_rate") and kernel is None:
        idx, gains = _greedy.maxdet_features(pool, batch_size, sigma, extra, train)
        if method == "coding_rate":
            gains = 0.5 * gains
        return idx, gains
    if method == "bait":
        if kernel is not None:
            raise NotSupportedError("The 'method' parameter of select_batch: 'bait' runs in feature space only "
                                    "(kernel=None and feature rows, D << N); got a kernel. Pass features (random "
                                    "features, projected gradients) instead.")
        Fp, Ft = (pool, None) if train is None else (posterior_features(pool, train, sigma),
                                                     posterior_features(train, train, sigma))
        idx, gains = _greedy.bait_features(Fp, batch_size, sigma, Ft)
        return idx, gains
    centers = ()
    if train is None:
        op = FeatureKernel(pool) if kernel is None else PointKernel(kernel, pool)
    elif train_mode == "centers" and method not in ("maxdet", "coding_rate"):
        rows = np.concatenate([pool, train])
        op = FeatureKernel(rows) if kernel is None else PointKernel(kernel, rows)
        centers = np.arange(n, n + train.shape[0])
    elif kernel is None:
        op = FeatureKernel(posterior_features(pool, train, sigma))
    else:
        op = ConditionedKernel(PointKernel(kernel, pool), posterior_rows(kernel, pool, train, sigma))

    if method in ("maxdet", "coding_rate"):
        idx, gains = _greedy.maxdet(op, n, batch_size, sigma, extra)
        if method == "coding_rate":
            gains = 0.5 * gains
    elif method in ("kcenter", "maxdist"):
        idx, gains = _greedy.maxdist(op, n, batch_size, centers)
    elif method == "kmeanspp":
        idx, gains = _greedy.kmeanspp(op, n, batch_size, rng, centers)
    elif method == "lcmd":
        idx, gains = _greedy.lcmd(op, n, batch_size, centers)
    else:
        idx, gains = _greedy.maxdiag(op, n, batch_size)
    return idx, gains


class BatchSelector:
    """scikit-learn-style wrapper of :func:`select_batch`: parameters in ``__init__``, picks in ``select``.

    Parameters
    ----------
    method, kernel, sigma, train_mode, entropy_weight, random_state
        As in :func:`select_batch`.

    Attributes
    ----------
    indices_ : int64 array of shape (batch_size,)
        Pool indices in pick order (after :meth:`select`).
    gains_ : float64 array of shape (batch_size,)
        Each pick's gain (see :func:`select_batch`).
    """

    def __init__(self, *, method="maxdet", kernel=None, sigma=0.1, train_mode="posterior", entropy_weight=1.0,
                 random_state=None):
        self.method = method
        self.kernel = kernel
        self.sigma = sigma
        self.train_mode = train_mode
        self.entropy_weight = entropy_weight
        self.random_state = random_state

    def select(self, pool, batch_size, *, train=None, entropy=None):
        """Pick ``batch_size`` pool points (see :func:`select_batch`); returns the indices and sets ``indices_``,
        ``gains_``."""
        self.indices_, self.gains_ = select_batch(
            pool, batch_size, method=self.method, kernel=self.kernel, train=train, sigma=self.sigma,
            train_mode=self.train_mode, entropy=entropy, entropy_weight=self.entropy_weight,
            random_state=self.random_state, return_gains=True)
        return self.indices_
