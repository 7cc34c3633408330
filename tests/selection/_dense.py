"""Slow, obviously correct references for kernelkit.selection: every rule written on a dense kernel matrix.

``K`` is the dense kernel over the rows (pool rows 0..n_pool-1 first, then centre rows), computed by plain
NumPy formulas in the tests, independently of the engine.
"""

import numpy as np


def gaussian(X, Y, bw):
    d2 = ((X[:, None, :] - Y[None, :, :]) ** 2).sum(-1)
    return np.exp(-d2 / (2 * bw ** 2))


def posterior(K, n_pool, train_idx, sigma):
    """Dense posterior kernel on the pool rows given noisy observations at rows ``train_idx``."""
    P = np.arange(n_pool)
    A = K[np.ix_(train_idx, train_idx)] + sigma ** 2 * np.eye(len(train_idx))
    B = K[np.ix_(train_idx, P)]
    return K[np.ix_(P, P)] - B.T @ np.linalg.solve(A, B)


def greedy_logdet(K, batch, sigma, extra=None):
    """Explicit greedy: at each step evaluate logdet(I + (K_S + diag(e_S)) / sigma^2) for every candidate."""
    n = K.shape[0]
    A = K + (np.diag(extra) if extra is not None else 0)
    S, gains, cur = [], [], 0.0
    for _ in range(batch):
        best, bval = None, -np.inf
        for i in range(n):
            if i in S:
                continue
            idx = S + [i]
            val = np.linalg.slogdet(np.eye(len(idx)) + A[np.ix_(idx, idx)] / sigma ** 2)[1]
            if val > bval:
                best, bval = i, val
        S.append(best)
        gains.append(bval - cur)
        cur = bval
    return np.array(S), np.array(gains)


def sqdist(K):
    d = np.diag(K)
    return d[:, None] + d[None, :] - 2 * K


def kcenter(K, n_pool, batch, centers=()):
    D2 = sqdist(K)
    C = list(centers)
    S, gains = [], []
    for t in range(batch):
        if not C:
            j = int(np.argmax(np.diag(K)[:n_pool]))
            g = K[j, j]
        else:
            m = D2[:n_pool][:, C].min(axis=1)
            m[S] = -np.inf
            j = int(np.argmax(m))
            g = m[j]
        S.append(j)
        C.append(j)
        gains.append(g)
    return np.array(S), np.array(gains)


def kmeanspp(K, n_pool, batch, rng, centers=()):
    """Same stream as kernelkit: one rng.random() per pick, inverse CDF of the weights min_c d^2."""
    D2 = sqdist(K)
    C = list(centers)
    S = []
    for t in range(batch):
        u = rng.random()
        if not C:
            j = min(int(u * n_pool), n_pool - 1)
        else:
            w = np.clip(D2[:n_pool][:, C].min(axis=1), 0, None)
            w[S] = 0
            c = np.cumsum(w)
            j = int(min(np.searchsorted(c, u * c[-1], side="right"), n_pool - 1))
        S.append(j)
        C.append(j)
    return np.array(S)


def lcmd(K, n_pool, batch, centers=()):
    D2 = sqdist(K)
    C = list(centers)
    S = []
    for t in range(batch):
        if not C:
            j = int(np.argmax(np.diag(K)[:n_pool]))
        else:
            sub = D2[:n_pool][:, C]
            near = np.argmin(sub, axis=1)              # first closest centre
            m = sub[np.arange(n_pool), near]
            size = np.zeros(len(C))
            np.add.at(size, near, m)
            big = size[near] == size.max()
            scores = np.where(big, m, -np.inf)
            scores[S] = -np.inf
            j = int(np.argmax(scores))
        S.append(j)
        C.append(j)
    return np.array(S)


def bait(K, n_pool, batch, sigma, eps=1e-8):
    """Forward BAIT on the dense kernel K over all rows (pool rows first): each step conditions K on the picks
    (noise sigma^2) from scratch and scores pool row i by sum_x K_S[x, i]^2 / (sigma^2 + K_S[i, i] + eps)."""
    S = []
    for _ in range(batch):
        if S:
            A = K[np.ix_(S, S)] + sigma ** 2 * np.eye(len(S))
            KS = K - K[:, S] @ np.linalg.solve(A, K[S, :])
        else:
            KS = K
        d = np.diag(KS)[:n_pool]
        score = (KS[:, :n_pool] ** 2).sum(0) / (d + sigma ** 2 + eps)
        score[S] = -np.inf
        S.append(int(np.argmax(score)))
    return np.array(S)
