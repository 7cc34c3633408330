r"""The selection rules, on a kernel given by its diagonal and its columns (see :mod:`._operators`).

Every rule takes ``op`` (rows ``0 .. n_pool-1`` are the pool; rows beyond,
where present, are centres chosen before the batch: the labelled points in
``train_mode="centers"``), the batch size, and returns ``(indices, gains)``
in pick order, float64 gains. Ties are broken by the smaller index
(``np.argmax`` returns the first maximum).

Squared kernel distances are :math:`d^2(x, x') = k(x, x) + k(x', x') - 2 k(x, x')`.
"""

from __future__ import annotations

import numpy as np

from .._options import get_options
from ._operators import FeatureKernel, _chunk

__all__ = ["maxdet", "maxdet_features", "maxdist", "kmeanspp", "lcmd", "maxdiag", "random", "bait_features"]


def maxdet(op, n_pool, batch_size, sigma, extra_diag=None):
    r"""Greedy max-det by pivoted Cholesky of :math:`A = K + \sigma^2 I + \mathrm{diag}(e)` on the pool.

    The residual diagonal :math:`r_i = A_{ii} - \sum_{s<t} L_{si}^2` is the
    Schur complement of the picked block; the next pick is its argmax and
    its gain is :math:`\log(r_j / \sigma^2)`, the increment of
    :math:`\log\det(I + (K_S + \mathrm{diag}(e_S)) / \sigma^2)`. One kernel
    column per pick; memory: the B x n factor.
    """
    s2 = float(sigma) ** 2
    d = op.diag()[:n_pool] + s2
    if extra_diag is not None:
        d = d + extra_diag
    Lt = np.empty((batch_size, n_pool))
    picks = np.empty(batch_size, dtype=np.intp)
    gains = np.empty(batch_size)
    scores = d.copy()
    for t in range(batch_size):
        j = int(np.argmax(scores))
        dj = d[j]
        picks[t] = j
        gains[t] = np.log(dj / s2) if dj > 0 else -np.inf
        col = op.columns([j])[:n_pool, 0]
        col[j] += s2 + (0.0 if extra_diag is None else extra_diag[j])
        if t:
            col -= Lt[:t].T @ Lt[:t, j]
        u = col / np.sqrt(dj) if dj > 0 else np.zeros_like(col)
        Lt[t] = u
        d -= u * u
        scores = d.copy()
        scores[picks[:t + 1]] = -np.inf
    return picks, gains


def _center_dists(op, n_pool, centers, diag):
    """Min squared distance of every pool row to the rows ``centers`` and the first closest (index into centers)."""
    mind = np.full(n_pool, np.inf)
    closest = np.full(n_pool, -1, dtype=np.intp)
    if len(centers) == 0:
        return mind, closest
    native = isinstance(op, FeatureKernel) and op.dtype == np.float32
    b = _chunk(n_pool, len(centers), get_options().memory, itemsize=4 if native else 8, factor=2 if native else 3)
    rows = np.arange(n_pool)
    for s in range(0, len(centers), b):
        js = centers[s:s + b]
        if native:
            # float32 features: argmin_c (k(c, c) - 2 k(x, c)) in float32, in place on the product block
            # (k(x, x) is the same for every c); the minimum itself is then formed in float64
            G = op.columns(js, rows=n_pool, native=True)
            G *= -2
            G += diag[js].astype(np.float32)[None, :]
            arg = np.argmin(G, axis=1)
            m = diag[:n_pool] + G[rows, arg]
        else:
            sq = diag[:n_pool, None] + diag[js][None, :] - 2 * op.columns(js)[:n_pool]
            arg = np.argmin(sq, axis=1)
            m = sq[rows, arg]
        # sequentially, as each centre were added in turn (strictly smaller replaces; ties keep the earlier)
        new = m < mind
        closest[new] = s + arg[new]
        mind[new] = m[new]
    return mind, closest


def _sq_dists(op, n_pool, j, diag):
    col = op.columns([j], rows=n_pool)[:, 0] if isinstance(op, FeatureKernel) else op.columns([j])[:n_pool, 0]
    return diag[:n_pool] + diag[j] - 2 * col


# exact pruning of the per-pick distance pass (feature kernels with D >= _PRUNE_MIN_D, n_pool >= _PRUNE_MIN_N)
_PRUNE_MIN_D = 64
_PRUNE_MIN_N = 4096
_PRUNE_RANK = 32
_PRUNE_SAMPLE = 4096


class _NewCentre:
    r"""Squared distances of the pool to each new centre, skipping the rows that provably keep their minimum.

    ``update(j, mind)`` returns ``(rows, sq)``: ``sq = d^2(x_rows, x_j)`` as :func:`_sq_dists` computes them
    (``rows`` None: every pool row). Rows left out satisfy ``d^2(x_i, x_j) > mind_i`` with room for rounding, so
    a rule updating ``mind_i`` only where ``sq_i < mind_i`` keeps the same minima as without the pruning (up to
    the rounding of the gathered products: a near-tie at the 1e-7 level may resolve differently).

    For features F (n x D) with :math:`D \ge` ``_PRUNE_MIN_D`` and :math:`n \ge` ``_PRUNE_MIN_N``: an orthonormal
    basis V (D x r, r = ``_PRUNE_RANK``) of the leading principal directions of a strided subsample of F gives
    :math:`y = V^\top \phi` and the squared residual norm :math:`\rho^2 = k(x, x) - \|y\|^2`, and

    .. math::

        d^2(x, x_j) = \|y - y_j\|^2 + \|(\phi - V y) - (\phi_j - V y_j)\|^2 \ge \|y - y_j\|^2 + (\rho - \rho_j)^2 ,

    one pass over the n x r array Y (F's dtype) per pick instead of over F. Rounding: with
    :math:`\tau = (4 D + r)\,\epsilon` (:math:`\epsilon` the unit roundoff of F's dtype), each :math:`\rho^2` is
    known within :math:`\pm \tau k(x, x)`, so :math:`(\rho - \rho_j)^2` is replaced by its smallest value over those
    intervals, and only rows with :math:`\mathrm{lb}_i \le \mathrm{mind}_i + \tau (k(x_i, x_i) + k(x_j, x_j))` (a
    bound on the rounding of the computed :math:`k_{ii} + k_{jj} - 2\,\phi_i \cdot \phi_j` and of the bound) are
    computed, from the gathered rows of F. On gradient features (a fast-decaying spectrum) about 1% of the
    rows remain per pick.
    """

    def __init__(self, op, n_pool, diag):
        self.op, self.n, self.diag = op, n_pool, diag
        self.Y = None
        if not isinstance(op, FeatureKernel):
            return
        F = op.F
        D = F.shape[1]
        if D < _PRUNE_MIN_D or n_pool < _PRUNE_MIN_N:
            return
        S = F[:n_pool:max(1, n_pool // _PRUNE_SAMPLE)].astype(np.float64)
        _, V = np.linalg.eigh(S.T @ S)
        V = np.ascontiguousarray(V[:, ::-1][:, :min(_PRUNE_RANK, D)]).astype(F.dtype)
        r = V.shape[1]
        Y = F[:n_pool] @ V
        self.Y = Y
        self.Yt = np.ascontiguousarray(Y.T)               # r x n: one contiguous pass per pick
        self.yn = yn = np.einsum("ij,ij->i", Y, Y, dtype=np.float64)
        self.tau = tau = (4 * D + r) * float(np.finfo(F.dtype).eps)
        q = diag[:n_pool] - yn
        e = tau * diag[:n_pool]
        self.lo = np.sqrt(np.clip(q - e, 0.0, None))
        self.hi = np.sqrt(np.clip(q + e, 0.0, None))
        self.base = yn - e                                # lb_i = base_i + yn_j - 2 y_i . y_j + gap_i^2

    def update(self, j, mind):
        if self.Y is None:
            return None, _sq_dists(self.op, self.n, j, self.diag)
        diag = self.diag
        lb = np.multiply(self.Y[j] @ self.Yt, -2.0, dtype=np.float64)
        lb += self.base
        gap = np.subtract(self.lo, self.hi[j])
        np.maximum(gap, np.subtract(self.lo[j], self.hi), out=gap)
        np.maximum(gap, 0.0, out=gap)
        gap *= gap
        lb += gap
        rows = np.flatnonzero(lb <= mind + (self.tau * diag[j] - self.yn[j]))
        F = self.op.F
        col = np.asarray(F[rows] @ F[j], dtype=np.float64)
        return rows, diag[rows] + diag[j] - 2 * col


def maxdist(op, n_pool, batch_size, centers=()):
    r"""Greedy k-center: each pick maximises :math:`\min_{c} d^2(x, c)` over the centres so far.

    With no centre (no training points in ``train_mode="centers"``) the first
    pick is the largest :math:`k(x, x)`, the point farthest from the origin of
    feature space (as bmdal_reg). Gain: the squared distance to the nearest
    centre at the time of the pick (:math:`k(x, x)` for that first pick).
    """
    diag = op.diag()
    centers = np.asarray(centers, dtype=np.intp)
    mind, _ = _center_dists(op, n_pool, centers, diag)
    nc = _NewCentre(op, n_pool, diag)
    picks = np.empty(batch_size, dtype=np.intp)
    gains = np.empty(batch_size)
    for t in range(batch_size):
        if t == 0 and len(centers) == 0:
            j = int(np.argmax(diag[:n_pool]))
            gains[t] = diag[j]
        else:
            scores = mind.copy()
            scores[picks[:t]] = -np.inf
            j = int(np.argmax(scores))
            gains[t] = mind[j]
        picks[t] = j
        rows, sq = nc.update(j, mind)
        if rows is None:
            np.minimum(mind, sq, out=mind)
        else:
            mind[rows] = np.minimum(mind[rows], sq)
    return picks, gains


def _draw(rng, weights, taken):
    """An index drawn with probability proportional to ``weights`` (>= 0, zero at ``taken``); uniform over the
    rest when they sum to 0. One uniform draw per call (inverse CDF on the cumulative sum)."""
    w = np.clip(weights, 0.0, None)
    w[taken] = 0.0
    c = np.cumsum(w)
    u = rng.random()
    if not c[-1] > 0:
        rest = np.setdiff1d(np.arange(len(w)), taken)
        return int(rest[min(int(u * len(rest)), len(rest) - 1)])
    return int(min(np.searchsorted(c, u * c[-1], side="right"), len(w) - 1))


def kmeanspp(op, n_pool, batch_size, rng, centers=()):
    r"""k-means++ seeding in kernel space: pick x with probability :math:`\propto \min_c d^2(x, c)`.

    The first pick is uniform over the pool when there is no centre. Each
    pick costs one uniform draw of ``rng`` (inverse CDF), so picks are a
    deterministic function of the seed. Gain: :math:`\min_c d^2(x, c)` at the
    pick (:math:`k(x, x)` for a first uniform pick).
    """
    diag = op.diag()
    centers = np.asarray(centers, dtype=np.intp)
    mind, _ = _center_dists(op, n_pool, centers, diag)
    nc = _NewCentre(op, n_pool, diag)
    picks = np.empty(batch_size, dtype=np.intp)
    gains = np.empty(batch_size)
    for t in range(batch_size):
        if t == 0 and len(centers) == 0:
            j = int(min(int(rng.random() * n_pool), n_pool - 1))
            gains[t] = diag[j]
        else:
            j = _draw(rng, mind, picks[:t])
            gains[t] = mind[j]
        picks[t] = j
        rows, sq = nc.update(j, mind)
        if rows is None:
            np.minimum(mind, sq, out=mind)
        else:
            mind[rows] = np.minimum(mind[rows], sq)
    return picks, gains


def lcmd(op, n_pool, batch_size, centers=()):
    r"""LCMD (largest cluster maximum distance, Holzmueller et al. 2023).

    Every pool point belongs to the cluster of its nearest centre (the
    earliest on ties); a cluster's size is :math:`\sum_{x \in C} \min_c d^2(x, c)`.
    The next pick is the point of largest :math:`\min_c d^2(x, c)` within the
    largest cluster (points of every cluster tied for largest compete).
    First pick without centres: the largest :math:`k(x, x)`. Gain: the pick's
    squared distance to its centre (:math:`k(x, x)` for that first pick).
    """
    diag = op.diag()
    centers = np.asarray(centers, dtype=np.intp)
    mind, closest = _center_dists(op, n_pool, centers, diag)
    label = closest + 1                     # 0: no centre yet; centre c has label c + 1
    n_lab = len(centers)
    nc = _NewCentre(op, n_pool, diag)
    picks = np.empty(batch_size, dtype=np.intp)
    gains = np.empty(batch_size)
    for t in range(batch_size):
        if t == 0 and n_lab == 0:
            j = int(np.argmax(diag[:n_pool]))
            gains[t] = diag[j]
        else:
            size = np.bincount(label, weights=mind, minlength=n_lab + 1)
            scores = np.where(size[label] == size.max(), mind, -np.inf)
            scores[picks[:t]] = -np.inf
            j = int(np.argmax(scores))
            gains[t] = mind[j]
        picks[t] = j
        rows, sq = nc.update(j, mind)
        n_lab += 1
        if rows is None:
            new = sq < mind
            label[new] = n_lab
            mind[new] = sq[new]
        else:
            new = sq < mind[rows]
            label[rows[new]] = n_lab
            mind[rows[new]] = sq[new]
    return picks, gains


def maxdiag(op, n_pool, batch_size):
    """The largest kernel diagonals :math:`k(x, x)` (largest first; ties: smaller index). Gain: k(x, x)."""
    d = op.diag()[:n_pool]
    order = np.argsort(-d, kind="stable")[:batch_size]
    return order.astype(np.intp), d[order]


def random(n_pool, batch_size, rng):
    """Uniform without replacement. Gains: NaN (no criterion)."""
    return rng.permutation(n_pool)[:batch_size].astype(np.intp), np.full(batch_size, np.nan)


def maxdet_features(F, batch_size, sigma, extra_diag=None, F_train=None, lazy=True):
    r"""Greedy max-det for the linear kernel on features F (n x D), in weight space: O(D^2) memory.

    The same picks and gains as :func:`maxdet` on :math:`K = F F^\top` (optionally the posterior given
    training features :math:`F_T`), computed with the D x D matrix
    :math:`C_S = (I + F_T^\top F_T / \sigma^2 + F_S^\top \mathrm{diag}(1 / (\sigma^2 + e_S)) F_S)^{-1}`:
    the residual is :math:`r_i = \sigma^2 + e_i + \phi_i^\top C_S \phi_i` for unpicked i, and a pick j updates
    :math:`r_i \leftarrow r_i - (\phi_i^\top C \phi_j)^2 / r_j`,
    :math:`C \leftarrow C - C\phi_j \phi_j^\top C / r_j` (Sherman-Morrison). Per pick: one pass
    ``F @ v`` (n D) and O(D^2); no n x B factor. Gains :math:`\log(r_j / \sigma^2)`.

    ``lazy=True`` (default) skips most of those passes, exactly: residuals only decrease, so a residual
    last updated after pick :math:`t_i` is an upper bound. With :math:`w_s = C_s \phi_{j_s}` kept (B x D),
    each pick refreshes only the m largest bounds, :math:`r_i \leftarrow r_i - \sum_{s \ge t_i}
    (\phi_i \cdot w_s)^2 / r_{j_s}` (one m x D x (t - t_i) product, subtracted pick by pick so that the
    rounding does not depend on when a point was refreshed: duplicates stay exact ties), and accepts the best refreshed point when
    its residual exceeds the (m+1)-th bound (strictly; otherwise m doubles, up to the whole pool), so the pick
    is the same argmax (ties: smaller index) as the eager loop, up to the rounding of the refreshed sums.
    ``lazy=False``: the eager loop (one ``F @ v`` pass per pick), the reference.

    Initial residuals given :math:`n_T` training features with :math:`2 n_T \le D`: by the Woodbury form
    :math:`\phi^\top C_0 \phi = \|\phi\|^2 - \|L^{-1} F_T \phi\|^2`, :math:`L L^\top = F_T F_T^\top + \sigma^2 I`
    (n n_T D multiply-adds instead of n D^2).
    """
    import scipy.linalg
    n, D = F.shape
    s2 = float(sigma) ** 2
    if F_train is None:
        C = np.eye(D)
        d = np.einsum("ij,ij->i", F, F, dtype=np.float64)
    else:
        Ft = F_train.astype(np.float64, copy=False)
        M = Ft.T @ Ft
        M[np.diag_indices(D)] += s2
        C = s2 * scipy.linalg.cho_solve(scipy.linalg.cho_factor(M), np.eye(D))
        C = 0.5 * (C + C.T)
        d = np.empty(n)
        b = max(1, min(n, get_options().memory // max(1, 16 * D)))
        nt = Ft.shape[0]
        if 2 * nt <= D:
            # fewer labelled points than features: phi^T C phi = |phi|^2 - |L^{-1} F_T phi|^2 (Woodbury,
            # L L^T = F_T F_T^T + sigma^2 I), n nt D multiply-adds instead of n D^2
            A = Ft @ Ft.T
            A[np.diag_indices(nt)] += s2
            Mt = scipy.linalg.solve_triangular(scipy.linalg.cholesky(A, lower=True), Ft, lower=True)
            Mf = np.ascontiguousarray(Mt.T).astype(F.dtype)
            for s in range(0, n, b):
                Fb = F[s:s + b]
                G = Fb @ Mf
                d[s:s + b] = (np.einsum("ij,ij->i", Fb, Fb, dtype=np.float64)
                              - np.einsum("ij,ij->i", G, G, dtype=np.float64))
        else:
            Cf = C.astype(F.dtype)
            for s in range(0, n, b):
                Fb = F[s:s + b]
                d[s:s + b] = np.einsum("ij,ij->i", Fb @ Cf, Fb, dtype=np.float64)
    d += s2
    if extra_diag is not None:
        d += extra_diag
    picks = np.empty(batch_size, dtype=np.intp)
    gains = np.empty(batch_size)
    if lazy:
        return _maxdet_features_lazy(F, batch_size, s2, C, d, picks, gains)
    taken = np.zeros(n, dtype=bool)
    for t in range(batch_size):
        scores = np.where(taken, -np.inf, d)
        j = int(np.argmax(scores))
        dj = d[j]
        picks[t] = j
        taken[j] = True
        gains[t] = np.log(dj / s2) if dj > 0 else -np.inf
        if dj <= 0:
            continue
        v = C @ F[j].astype(np.float64)
        c = np.asarray(F @ v.astype(F.dtype), dtype=np.float64)
        d -= c * c / dj
        C -= np.outer(v, v) / dj
    return picks, gains


def _maxdet_features_lazy(F, batch_size, s2, C, d, picks, gains, m0=64):
    """The lazy-greedy loop of :func:`maxdet_features` (see there): bounds ``d`` refreshed on demand."""
    n, D = F.shape
    W = np.zeros((batch_size, D), dtype=F.dtype)        # w_s = C_s phi_j / sqrt(r_j), in F's dtype
    last = np.zeros(n, dtype=np.intp)                   # picks applied to d[i]
    avail = np.ones(n, dtype=bool)
    m = m0
    for t in range(batch_size):
        n_left = int(avail.sum())
        while True:
            cand = np.flatnonzero(avail)
            if m < n_left:
                ub = d[cand]
                part = np.argpartition(-ub, m)
                thr = float(ub[part[m]])                 # the (m+1)-th largest bound
                S = cand[part[:m]]
            else:
                thr, S = -np.inf, cand
            stale = S[last[S] < t]
            if len(stale):
                # subtract pick by pick, in pick order: a residual's rounding then depends on the point
                # only, not on when it was refreshed (exact duplicates stay exact ties: smaller index)
                stale = stale[np.argsort(last[stale], kind="stable")]
                ls = last[stale]
                lo = int(ls[0])
                c = np.asarray(F[stale] @ W[lo:t].T, dtype=np.float64)
                c *= c
                ds = d[stale]
                ks = np.searchsorted(ls, np.arange(lo, t), side="right").tolist()   # rows with last <= lo + q
                for q, k in enumerate(ks):
                    ds[:k] -= c[:k, q]
                d[stale] = ds
                last[stale] = t
            vals = d[S]
            best = float(vals.max())
            if best > thr or thr == -np.inf:
                j = int(S[vals == best].min())
                break
            m = min(2 * m, n_left)
        m = max(m0, m // 2)
        dj = d[j]
        picks[t] = j
        avail[j] = False
        gains[t] = np.log(dj / s2) if dj > 0 else -np.inf
        if dj <= 0:
            continue
        v = C @ F[j].astype(np.float64)
        W[t] = (v / np.sqrt(dj)).astype(F.dtype)
        C -= np.outer(v, v) / dj
    return picks, gains


def bait_features(F, batch_size, sigma, F_train=None, eps=1e-8):
    r"""Greedy BAIT (forward; Ash et al. 2021, in bmdal_reg's feature-space form) for the linear kernel on F.

    With :math:`k_S` the posterior kernel given the picks S (and the training
    features) with noise :math:`\sigma^2`, the next pick maximises the total
    reduction of posterior variance over the pool and training points,

    .. math::

        s_i = \frac{\sum_{x \in \mathrm{pool} \cup \mathrm{train}} k_S(x, x_i)^2}{\sigma^2 + k_S(x_i, x_i) + \epsilon}
            = \frac{\phi_i^\top C G C \phi_i}{\sigma^2 + \phi_i^\top C \phi_i + \epsilon},

    :math:`G = F^\top F + F_T^\top F_T` (features of the posterior given the
    training points when they are given), :math:`C` the D x D weight-space
    residual of :func:`maxdet_features`. Both terms are updated per pick by
    two passes ``F @ w``, ``F @ (C G w)`` (O(N D)) and O(D^2). Gains: :math:`s_j`.
    """
    n, D = F.shape
    s2 = float(sigma) ** 2
    F64 = F.astype(np.float64, copy=False)
    G = F64.T @ F64
    if F_train is not None:
        Ft = F_train.astype(np.float64, copy=False)
        G += Ft.T @ Ft
    C = np.eye(D)
    diag = np.einsum("ij,ij->i", F, F, dtype=np.float64)            # phi^T C phi (without sigma^2)
    num = np.einsum("ij,ij->i", F64 @ G, F64)                       # phi^T C G C phi
    picks = np.empty(batch_size, dtype=np.intp)
    gains = np.empty(batch_size)
    taken = np.zeros(n, dtype=bool)
    for t in range(batch_size):
        scores = np.where(taken, -np.inf, num / (diag + s2 + eps))
        j = int(np.argmax(scores))
        picks[t], gains[t] = j, scores[j]
        taken[j] = True
        r = diag[j] + s2
        w = C @ F64[j]
        c = np.asarray(F @ w.astype(F.dtype), dtype=np.float64)
        Gw = G @ w
        e = np.asarray(F @ (C @ Gw).astype(F.dtype), dtype=np.float64)
        num += -2.0 * c * e / r + c * c * float(w @ Gw) / r ** 2
        diag -= c * c / r
        C -= np.outer(w, w) / r
    return picks, gains
