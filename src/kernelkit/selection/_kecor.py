r"""The KECOR recipe in one call: a small proxy MLP, its empirical NTK (sketched), coding-rate selection.

KECOR (Luo et al., "Kernel Coding Rate Maximization for Active 3D Object
Detection", ICCV 2023) fits a small proxy network on the embeddings of the
labelled examples, takes the empirical NTK of the proxy (the "sum of logits"
pNTK) as the kernel between examples, and picks the batch that greedily
maximises the kernel coding rate plus a classification-entropy term. torch
is imported on first use (``pip install 'kernelkit[torch]'``).
"""

from __future__ import annotations

import numpy as np

from .._lazy import require_torch
from .._random import seed_sequence
from .._validation import Integral, OneOf, Real, check_param, check_points, param_error
from ._api import prediction_entropy, select_batch

__all__ = ["kecor_select", "proxy_mlp"]

OWNER = "kecor_select"


def _torch():
    return require_torch("kecor_select")


def proxy_mlp(n_in, n_out, hidden=(512, 100)):
    r"""KECOR's proxy network, a multilayer perceptron with SiLU activations.

    ``Linear(n_in, h1)``, SiLU, ``Linear(h1, h2)``, SiLU and so on, up to ``Linear(h_last, n_out)``.

    Parameters
    ----------
    n_in, n_out : int >= 1
        Embedding dimension and number of outputs (classes, or regression targets).
    hidden : tuple of int >= 1, default (512, 100)
        Widths of the hidden layers.

    Returns
    -------
    torch.nn.Sequential
        Initialised by torch's default ``nn.Linear`` initialisation (from torch's global generator).
    """
    torch = _torch()
    n_in = check_param(n_in, "n_in", "proxy_mlp", Integral(low=1))
    n_out = check_param(n_out, "n_out", "proxy_mlp", Integral(low=1))
    widths = [n_in] + [check_param(h, "hidden", "proxy_mlp", Integral(low=1)) for h in hidden]
    layers = []
    for a, b in zip(widths[:-1], widths[1:]):
        layers += [torch.nn.Linear(a, b), torch.nn.SiLU()]
    return torch.nn.Sequential(*layers, torch.nn.Linear(widths[-1], n_out))


def _targets(train_targets, n_train):
    y = np.asarray(train_targets)
    if y.shape[:1] != (n_train,) or y.ndim > 2:
        raise param_error("train_targets", OWNER, f"an array of shape ({n_train},) or ({n_train}, n_outputs), "
                          "one row per labelled point", train_targets, shown=f"shape {y.shape}")
    if np.issubdtype(y.dtype, np.integer):
        if y.ndim != 1 or y.min() < 0:
            raise param_error("train_targets", OWNER, "class labels >= 0 (1-D integers) or float targets",
                              train_targets)
        return y.astype(np.int64), "classification"
    y = np.asarray(y, dtype=np.float64)
    if not np.isfinite(y).all():
        raise param_error("train_targets", OWNER, "finite values", train_targets)
    return y.reshape(n_train, -1), "regression"


def kecor_select(pool, batch_size, *, train, train_targets, pool_probs=None, entropy_weight=1.0, sigma=0.1,
                 hidden=(512, 100), n_steps=100, lr=1e-3, sketch_dim=512, condition_on_train=False,
                 random_state=None, return_gains=False, return_model=False):
    r"""KECOR: pick a batch by kernel coding rate on the empirical NTK of a proxy MLP, plus an entropy term.

    1. Fit :func:`proxy_mlp` (embedding -> 512 -> 100 -> outputs, SiLU) on
       ``(train, train_targets)`` by ``n_steps`` full-batch Adam steps
       (cross-entropy for integer class labels, mean squared error for
       float targets).
    2. Features: the proxy's gradient of the scaled sum of outputs,
       :math:`\phi(x) = S^\top \nabla_\theta \tfrac{1}{\sqrt O}\sum_c f_c(x)`,
       sketched to ``sketch_dim`` dimensions by a seeded Gaussian S
       (:func:`kernelkit.ntk.empirical_ntk`, ``kind="projected"``): the
       pNTK ("sum of logits") :math:`k(x, x') \approx \phi(x)\cdot\phi(x')`.
    3. Greedily maximise
       :math:`\tfrac12 \log\det(I + (K_S + \lambda\,\mathrm{diag}(h_S)) / \sigma^2)`
       (:func:`select_batch` with ``method="coding_rate"``), h the entropy
       of ``pool_probs`` (nats), :math:`\lambda` = ``entropy_weight``.

    Parameters
    ----------
    pool : array of shape (N, e)
        Embeddings of the unlabelled examples.
    batch_size : int, 1 <= batch_size <= N
        Number of examples to pick.
    train : array of shape (n_train, e)
        Embeddings of the labelled examples (n_train >= 1).
    train_targets : array of shape (n_train,) or (n_train, O)
        Integer class labels (classification: O = max label + 1, or the
        number of columns of ``pool_probs``) or float regression targets.
    pool_probs : array of shape (N, C), "proxy" or None
        Class probabilities of the pool (from the task model) for the
        entropy term; "proxy": the proxy's softmax (classification only);
        None: no entropy term.
    entropy_weight : float >= 0, default 1.0
        :math:`\lambda`, in units of the kernel per nat.
    sigma : float > 0, default 0.1
        KECOR's :math:`\epsilon`, in units of :math:`\sqrt k`.
    hidden : tuple of int, default (512, 100)
        Hidden widths of the proxy.
    n_steps : int >= 0, default 100
        Full-batch Adam steps.
    lr : float > 0, default 1e-3
        Adam learning rate.
    sketch_dim : int >= 1, default 512
        Sketch dimension of the NTK features.
    condition_on_train : bool, default False
        Select on the posterior kernel given the labelled examples
        (``select_batch(..., train=...)``) instead of the pool kernel alone.
    random_state : None, int, SeedSequence or Generator
        Seeds the proxy's initialisation and the sketch (torch's global
        generator is left as it was).
    return_gains : bool, default False
        Also return each pick's coding-rate gain.
    return_model : bool, default False
        Also return the fitted proxy (last).

    Returns
    -------
    indices : int64 array of shape (batch_size,)
        Pool indices in pick order; then the gains and / or the proxy when asked.
    """
    torch = _torch()
    pool = check_points(pool, "pool", OWNER)
    train = check_points(train, "train", OWNER)
    if train.shape[1] != pool.shape[1]:
        raise param_error("train", OWNER, f"an array with as many features as 'pool' ({pool.shape[1]})", train,
                          shown=f"shape {train.shape}")
    y, task = _targets(train_targets, train.shape[0])
    n_steps = check_param(n_steps, "n_steps", OWNER, Integral(low=0))
    lr = check_param(lr, "lr", OWNER, Real(low=0, low_open=True))
    sketch_dim = check_param(sketch_dim, "sketch_dim", OWNER, Integral(low=1))
    condition_on_train = check_param(condition_on_train, "condition_on_train", OWNER, OneOf(False, True))
    probs = None
    if isinstance(pool_probs, str):
        check_param(pool_probs, "pool_probs", OWNER, OneOf("proxy"))
        if task != "classification":
            raise param_error("pool_probs", OWNER, "an array or None for regression targets", pool_probs)
    elif pool_probs is not None:
        probs = check_points(pool_probs, "pool_probs", OWNER, dtype=np.float64)
        if probs.shape[0] != pool.shape[0]:
            raise param_error("pool_probs", OWNER, f"an array with one row per pool point ({pool.shape[0]})",
                              pool_probs, shown=f"shape {probs.shape}")
    if task == "classification":
        n_out = int(max(y.max() + 1, probs.shape[1] if probs is not None else 0))
    else:
        n_out = y.shape[1]

    seq = seed_sequence(random_state, OWNER)
    s_init, s_sketch = seq.spawn(2)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(s_init.generate_state(1, np.uint64)[0] % (2 ** 63)))
        model = proxy_mlp(pool.shape[1], n_out, hidden)
    Xt = torch.as_tensor(train, dtype=torch.float32)
    yt = torch.as_tensor(y) if task == "classification" else torch.as_tensor(y, dtype=torch.float32)
    loss_fn = torch.nn.functional.cross_entropy if task == "classification" else torch.nn.functional.mse_loss
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    model.train()
    for _ in range(n_steps):
        opt.zero_grad()
        loss = loss_fn(model(Xt), yt)
        loss.backward()
        opt.step()
    model.eval()
    for p in model.parameters():
        p.grad = None

    from ..ntk import empirical_ntk
    X_all = np.concatenate([pool, train]).astype(np.float32)
    res = empirical_ntk(model, X_all, kind="projected", k=sketch_dim, random_state=s_sketch, return_type="numpy")
    F = np.asarray(res.features1)
    F_pool, F_train = F[:pool.shape[0]], F[pool.shape[0]:]
    entropy = None
    if isinstance(pool_probs, str):
        with torch.no_grad():
            probs = torch.softmax(model(torch.as_tensor(pool, dtype=torch.float32)), dim=1).double().numpy()
    if probs is not None:
        entropy = prediction_entropy(probs)
    out = select_batch(F_pool, batch_size, method="coding_rate", train=F_train if condition_on_train else None,
                       sigma=sigma, entropy=entropy, entropy_weight=entropy_weight, return_gains=return_gains)
    if return_model:
        return (*out, model) if return_gains else (out, model)
    return out
