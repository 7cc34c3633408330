r"""Sketched gradient features of a torch network's ``nn.Linear`` layers (bmdal_reg's "grad" kernel with "rp").

For a network f whose ``nn.Linear`` layers l see inputs :math:`a_l(x)` and
produce pre-activations :math:`z_l(x)`, the gradient of :math:`\sum_c f_c(x)`
with respect to the layer's weight and bias is the outer product
:math:`g_l(x)\,\tilde a_l(x)^\top`, :math:`\tilde a_l = (a_l, 1)`,
:math:`g_l = \partial \sum_c f_c / \partial z_l`. The gradient kernel is

.. math::

    k(x, x') = \sum_l (\tilde a_l \cdot \tilde a_l')\,(g_l \cdot g_l') ,

and its tensor sketch (Holzmueller et al. 2023, bmdal_reg's sketch of the
"grad" base kernel) is the k-dimensional feature

.. math::

    \phi(x) = \frac{1}{\sqrt k} \sum_l (\tilde a_l^\top R_l) \odot (g_l^\top Q_l) ,

with independent standard Gaussian matrices :math:`R_l` ((d_in+1) x k) and
:math:`Q_l` (d_out x k): :math:`E[\phi(x)\cdot\phi(x')] = k(x, x')`. Cost
O(N k sum_l (d_in + d_out)); no P-dimensional gradient is formed.

The structured ("hadamard") sketch replaces each dense projection by
Walsh-Hadamard transforms of randomly signed copies of the vector (a
tensorised subsampled randomised Hadamard transform):

.. math::

    \phi(x) = \frac{1}{\sqrt k} \sum_l \big(S_l(a_l) + r_l\big) \odot T_l(g_l) ,
    \qquad S(a) = \big[H_p D_1 a, \dots, H_p D_b a\big]_{J} ,

:math:`H_p` the p x p Sylvester Hadamard matrix (entries +-1, p the power of
two >= len(a), a zero-padded), :math:`D_i` independent diagonal matrices of
Rademacher signs, b = ceil(k / p) blocks, J the k coordinates kept (all of
the first b - 1 blocks and a uniform random subset of the last), :math:`r_l`
a Rademacher k-vector (the bias input 1), :math:`T_l` the same construction
with independent signs. Every coordinate has
:math:`E[S(a)_i S(a')_i] = a \cdot a'` and the factors are independent with
mean zero, so :math:`E[\phi(x)\cdot\phi(x')] = k(x, x')` again. One
transform costs O(k log p) additions (two passes of small +-1 matrix
products, :math:`H_p = H_{p_1} \otimes H_{p_2}`) instead of the k len(a)
multiply-adds of a dense projection.
"""

from __future__ import annotations

import math

import numpy as np

from .._lazy import require_torch
from .._random import generator
from .._validation import Integral, OneOf, check_param, param_error

__all__ = ["gradient_sketch"]

OWNER = "gradient_sketch"


def _torch():
    return require_torch("gradient_sketch")


SKETCHES = ("gaussian", "hadamard")
_CHUNK_ELEMS = 1 << 19          # hadamard sketch: rows per pass so that one (rows, k) block stays in cache
_DENSE_P = 64                   # hadamard sketch: vectors padded to p <= this use the explicit d x k matrix


def _sylvester(p, torch, dtype, device):
    """The p x p Sylvester Hadamard matrix (entries +-1, p a power of two): H_{2m} = [[H_m, H_m], [H_m, -H_m]]."""
    H = torch.ones((1, 1), dtype=dtype, device=device)
    while H.shape[0] < p:
        H = torch.cat([torch.cat([H, H], 1), torch.cat([H, -H], 1)], 0)
    return H


class _HadamardFactor:
    r"""S(a) = [H_p D_1 a, ..., H_p D_b a]_J, (m, d) -> (m, k): see the module docstring.

    Draws from ``rng``: the b x d Rademacher signs, then (when b p > k) the kept coordinates of the last block.
    :math:`H_p = H_{p_1} \otimes H_{p_2}` (:math:`p_1 \le p_2`): the transform of a zero-padded, signed copy
    viewed as a p_1 x p_2 matrix X is :math:`H_{p_1} X H_{p_2}`, two small +-1 matrix products. For
    p <= ``_DENSE_P`` the explicit d x k matrix of S is applied instead (at most 64 multiply-adds per output).
    """

    def __init__(self, d, k, rng, torch, dtype, device):
        self.d, self.k = d, k
        self.p = p = 1 << max(0, (d - 1).bit_length())
        self.nb = nb = -(-k // p)
        self.signs = torch.as_tensor(rng.integers(0, 2, size=(nb, d)) * 2.0 - 1.0, dtype=dtype, device=device)
        self.rows = None
        if nb * p != k:
            last = np.sort(rng.choice(p, size=k - (nb - 1) * p, replace=False))
            self.rows = torch.as_tensor(np.concatenate([np.arange((nb - 1) * p), (nb - 1) * p + last]),
                                        device=device)
        self.P = None
        if p <= _DENSE_P:
            # short vectors: the explicit d x k matrix of S (entries +-1; the same numbers) is cheaper to apply
            H = _sylvester(p, torch, torch.float64, "cpu")[:, :d]
            P = torch.cat([H * self.signs[b].to("cpu", torch.float64)[None, :] for b in range(nb)], 0)
            P = P if self.rows is None else P[self.rows.cpu()]
            self.P = P.T.contiguous().to(device=device, dtype=dtype)
            return
        lg = p.bit_length() - 1
        self.p1, self.p2 = 1 << (lg // 2), 1 << (lg - lg // 2)
        self.H1 = _sylvester(self.p1, torch, dtype, device)
        self.H2 = _sylvester(self.p2, torch, dtype, device)

    def __call__(self, a):
        if self.P is not None:
            return a @ self.P
        torch = _torch()
        m = a.shape[0]
        x = a[:, None, :] * self.signs                       # (m, b, d)
        if self.d < self.p:
            x = torch.nn.functional.pad(x, (0, self.p - self.d))
        x = x.reshape(-1, self.p2) @ self.H2
        x = torch.matmul(self.H1, x.reshape(-1, self.p1, self.p2))
        x = x.reshape(m, self.nb * self.p)
        return x if self.rows is None else x[:, self.rows]


def gradient_sketch(model, X, k, *, random_state=None, batch_size=4096, sketch_matrices=None, sketch_dtype=None,
                    sketch="hadamard"):
    r"""The k-dimensional tensor sketch of the gradient kernel of a network's ``nn.Linear`` layers.

    Parameters
    ----------
    model : torch.nn.Module
        Uses each of its ``nn.Linear`` layers at most once per forward pass;
        rows must not interact (put BatchNorm / Dropout in eval mode). Not
        modified; parameter gradients are not touched.
    X : array or torch.Tensor of shape (N, ...)
        Inputs, in the model's input units (cast to the model's dtype).
    k : int >= 1
        Sketch dimension (number of features).
    random_state : None, int, SeedSequence or Generator
        Seeds the random matrices, drawn layer by layer in module order.
        "gaussian": :math:`R_l` then :math:`Q_l`, float64 then cast;
        "hadamard": the signs (and kept coordinates) of :math:`S_l`, the
        bias signs :math:`r_l`, then those of :math:`T_l`.
    batch_size : int >= 1, default 4096
        Points per forward / backward pass. Results do not depend on it beyond rounding. 4096 rather than
        8192: on the 8 -> 512 -> 512 -> 1 MLP of benchmarks/bench_selection.py (50,256 points, k = 512, AVX-512
        Xeon, 2 threads, 3 runs each) the Hadamard sketch took 0.33-0.37 s at 4096 against 0.41-0.52 s at 8192
        (2048 and smaller: as 4096). At 8192, torch's profiler put 142 of 522 ms in the ReLU backward.
    sketch_matrices : list of (R, Q) arrays, optional
        Use these matrices instead of drawing them (e.g. those of a peer);
        ``sketch="gaussian"`` only.
    sketch_dtype : None or "bfloat16", default None
        Precision of the sketch products :math:`\tilde a_l^\top R_l` and :math:`g_l^\top Q_l` of the
        Gaussian sketch (most of its work: N k sum_l (d_in + d_out) multiply-adds). None: the model's dtype.
        "bfloat16": the factors are rounded to bfloat16 (8-bit mantissa, relative rounding 2^-9) and
        multiplied by torch's bfloat16 kernels (products accumulated in float32; several times faster on
        CPUs with AVX512-BF16 or AMX, much slower on CPUs without), the elementwise product and the sum over
        layers in the model's dtype. The forward / backward pass stays in the model's dtype. Each feature
        then carries a relative error of about 2^-8, far below the sketch's own randomness (relative error
        of a kernel value about 1 / sqrt(k)); selections may differ from the full-precision sketch where two
        candidates are that close. ``sketch="gaussian"`` only (the Hadamard sketch has no products to round).
    sketch : {"hadamard", "gaussian"}, default "hadamard"
        "hadamard": the structured sketch of the module docstring (randomly signed Walsh-Hadamard
        transforms), unbiased, O(N k sum_l (log2 p_in + log2 p_out)) operations (p the powers of two
        >= d_in, d_out): for wide layers the sketch costs a small fraction of the forward / backward pass.
        "gaussian": the dense Gaussian tensor sketch (bmdal_reg's), O(N k sum_l (d_in + 1 + d_out))
        multiply-adds; needed for ``sketch_matrices`` and ``sketch_dtype``. The two are different random
        features of the same kernel (not the same numbers). The default is "hadamard" because it was both
        cheaper and closer to the kernel in benchmarks/bench_selection.py (``--only sketch``: relative
        Frobenius error of F F^T against the exact gradient kernel of an 8-512-512-1 ReLU MLP on 1,000
        points, 8 seeds: k = 512 0.106 (sd 0.015) against 0.181 (sd 0.069) for "gaussian"; k = 128 0.26
        against 0.29; k = 2048 0.051 against 0.067); on narrow layers (k and the widths far from powers of
        two) the two are about equal.

    Returns
    -------
    F : ndarray of shape (N, k)
        :math:`\phi(x)` per row, in the model's dtype.

    Examples
    --------
    >>> import numpy as np, torch
    >>> from kernelkit.selection import gradient_sketch
    >>> net = torch.nn.Sequential(torch.nn.Linear(3, 32), torch.nn.ReLU(), torch.nn.Linear(32, 1))
    >>> X = np.random.default_rng(0).normal(size=(5, 3)).astype(np.float32)
    >>> gradient_sketch(net, X, 64, random_state=0, sketch="hadamard").shape
    (5, 64)
    """
    torch = _torch()
    if not isinstance(model, torch.nn.Module):
        raise param_error("model", OWNER, "a torch.nn.Module", model, kind="type")
    k = check_param(k, "k", OWNER, Integral(low=1))
    batch_size = check_param(batch_size, "batch_size", OWNER, Integral(low=1))
    sketch = check_param(sketch, "sketch", OWNER, OneOf(*SKETCHES))
    if sketch_dtype not in (None, "bfloat16"):
        raise param_error("sketch_dtype", OWNER, "None (the model's dtype) or 'bfloat16'", sketch_dtype)
    if sketch == "hadamard" and sketch_dtype is not None:
        raise param_error("sketch_dtype", OWNER, "None with sketch='hadamard' (it has no products to round)",
                          sketch_dtype, hint="Pass sketch='gaussian' for the bfloat16 Gaussian sketch.")
    if sketch == "hadamard" and sketch_matrices is not None:
        raise param_error("sketch_matrices", OWNER, "None with sketch='hadamard' (it draws its own signs)",
                          sketch_matrices, kind="type", shown="a list of matrices",
                          hint="Pass sketch='gaussian' to use given Gaussian matrices.")
    layers = [m for m in model.modules() if isinstance(m, torch.nn.Linear)]
    if not layers:
        raise param_error("model", OWNER, "a module with at least one nn.Linear layer", model, kind="type",
                          shown=type(model).__name__)
    p0 = next(model.parameters())
    dt, dev = p0.dtype, p0.device
    mdt = torch.bfloat16 if sketch_dtype == "bfloat16" else dt
    if sketch == "hadamard":
        rng = generator(random_state, OWNER)
        facs = []
        for lay in layers:
            fa = _HadamardFactor(lay.in_features, k, rng, torch, dt, dev)
            r = torch.as_tensor(rng.integers(0, 2, size=k) * 2.0 - 1.0, dtype=dt, device=dev)
            fg = _HadamardFactor(lay.out_features, k, rng, torch, dt, dev)
            facs.append((fa, r, fg))
    else:
        if sketch_matrices is None:
            rng = generator(random_state, OWNER)
            sketch_matrices = []
            for lay in layers:
                R = rng.standard_normal((lay.in_features + 1, k))
                Q = rng.standard_normal((lay.out_features, k))
                sketch_matrices.append((R, Q))
        mats = [(torch.as_tensor(np.asarray(R), dtype=dt, device=dev).to(mdt),
                 torch.as_tensor(np.asarray(Q), dtype=dt, device=dev).to(mdt))
                for R, Q in sketch_matrices]
    T = X if isinstance(X, torch.Tensor) else torch.as_tensor(np.asarray(X))
    T = T.to(device=dev, dtype=dt if T.is_floating_point() else T.dtype)
    store = {}

    def hook(mod, inp, out):
        if mod in store:
            raise param_error("model", OWNER, "a module that uses each nn.Linear layer once per forward", model,
                              kind="type", shown=f"{mod!r} called twice")
        store[mod] = (inp[0].detach(), out)

    handles = [lay.register_forward_hook(hook) for lay in layers]
    out = np.empty((T.shape[0], k), dtype=np.float32 if dt == torch.float32 else np.float64)
    scale = 1.0 / math.sqrt(k)
    try:
        for s in range(0, T.shape[0], batch_size):
            store.clear()
            xb = T[s:s + batch_size]
            with torch.enable_grad():
                xb = xb.detach().requires_grad_(xb.is_floating_point())
                y = model(xb)
                zs = [store[lay][1] for lay in layers]
                grads = torch.autograd.grad(y.sum(), zs, allow_unused=True)
            with torch.no_grad():
                pairs = [(store[lay][0].reshape(-1, lay.in_features), g.reshape(-1, lay.out_features), i)
                         for i, (lay, g) in enumerate(zip(layers, grads)) if g is not None]
                if sketch == "hadamard":
                    _hadamard_rows(pairs, facs, k, scale, out, s, len(xb))
                    continue
                phi = None
                for a, g, i in pairs:
                    R, Q = mats[i]
                    if mdt != dt:
                        term = ((a.to(mdt) @ R[:-1]).to(dt) + R[-1].to(dt)) * (g.to(mdt) @ Q).to(dt)
                    else:
                        term = (a @ R[:-1] + R[-1]) * (g @ Q)
                    phi = term if phi is None else phi + term
                if phi is None:
                    out[s:s + len(xb)] = 0
                else:
                    out[s:s + len(xb)] = (phi * scale).cpu().numpy()
    finally:
        for h in handles:
            h.remove()
        store.clear()
    return out


def _hadamard_rows(pairs, facs, k, scale, out, s, m):
    """out[s:s+m] = sum_l (S_l(a_l) + r_l) * T_l(g_l) / sqrt(k), by row blocks of about _CHUNK_ELEMS values."""
    step = max(1, _CHUNK_ELEMS // max(k, 1))
    for c in range(0, m, step):
        phi = None
        for a, g, i in pairs:
            fa, r, fg = facs[i]
            term = fa(a[c:c + step])
            term += r
            term *= fg(g[c:c + step])
            phi = term if phi is None else phi.add_(term)
        if phi is None:
            out[s + c:s + c + step] = 0
        else:
            phi *= scale
            out[s + c:s + c + len(phi)] = phi.cpu().numpy()
