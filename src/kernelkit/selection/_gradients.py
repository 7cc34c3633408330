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
"""

from __future__ import annotations

import math

import numpy as np

from .._lazy import require_torch
from .._random import generator
from .._validation import Integral, check_param, param_error

__all__ = ["gradient_sketch"]

OWNER = "gradient_sketch"


def _torch():
    return require_torch("gradient_sketch")


def gradient_sketch(model, X, k, *, random_state=None, batch_size=8192, sketch_matrices=None, sketch_dtype=None):
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
        Seeds the Gaussian matrices, drawn layer by layer in module order
        (:math:`R_l` then :math:`Q_l`, float64 then cast).
    batch_size : int >= 1, default 8192
        Points per forward / backward pass.
    sketch_matrices : list of (R, Q) arrays, optional
        Use these matrices instead of drawing them (e.g. those of a peer).
    sketch_dtype : None or "bfloat16", default None
        Precision of the sketch products :math:`\tilde a_l^\top R_l` and :math:`g_l^\top Q_l` (most of the
        work: N k sum_l (d_in + d_out) multiply-adds). None: the model's dtype. "bfloat16": the factors
        are rounded to bfloat16 (8-bit mantissa, relative rounding 2^-9) and multiplied by torch's bfloat16
        kernels (products accumulated in float32; several times faster on CPUs with AVX512-BF16 or AMX),
        the elementwise product and the sum over layers in the model's dtype. The forward / backward pass
        stays in the model's dtype. Each feature then carries a relative error of about 2^-8, far below the
        sketch's own randomness (relative error of a kernel value about 1 / sqrt(k)); selections may differ
        from the full-precision sketch where two candidates are that close.

    Returns
    -------
    F : ndarray of shape (N, k)
        :math:`\phi(x)` per row, in the model's dtype.
    """
    torch = _torch()
    if not isinstance(model, torch.nn.Module):
        raise param_error("model", OWNER, "a torch.nn.Module", model, kind="type")
    k = check_param(k, "k", OWNER, Integral(low=1))
    batch_size = check_param(batch_size, "batch_size", OWNER, Integral(low=1))
    if sketch_dtype not in (None, "bfloat16"):
        raise param_error("sketch_dtype", OWNER, "None (the model's dtype) or 'bfloat16'", sketch_dtype)
    layers = [m for m in model.modules() if isinstance(m, torch.nn.Linear)]
    if not layers:
        raise param_error("model", OWNER, "a module with at least one nn.Linear layer", model, kind="type",
                          shown=type(model).__name__)
    p0 = next(model.parameters())
    dt, dev = p0.dtype, p0.device
    if sketch_matrices is None:
        rng = generator(random_state, OWNER)
        sketch_matrices = []
        for lay in layers:
            R = rng.standard_normal((lay.in_features + 1, k))
            Q = rng.standard_normal((lay.out_features, k))
            sketch_matrices.append((R, Q))
    mdt = torch.bfloat16 if sketch_dtype == "bfloat16" else dt
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
                phi = None
                for lay, (R, Q), g in zip(layers, mats, grads):
                    a = store[lay][0].reshape(-1, lay.in_features)
                    if g is None:
                        continue
                    g = g.reshape(-1, lay.out_features)
                    if mdt != dt:
                        term = ((a.to(mdt) @ R[:-1]).to(dt) + R[-1].to(dt)) * (g.to(mdt) @ Q).to(dt)
                    else:
                        term = (a @ R[:-1] + R[-1]) * (g @ Q)
                    phi = term if phi is None else phi + term
                out[s:s + len(xb)] = (phi * scale).cpu().numpy()
    finally:
        for h in handles:
            h.remove()
        store.clear()
    return out
