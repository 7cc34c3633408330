r"""Per-sample gradients for ``empirical_ntk``: the per-layer ``nn.Linear`` path and the generic fallbacks.

Three ways to get the gradients :math:`J_c(x) = \partial f_c(x) / \partial\theta`
of a chunk of points (rows of the Jacobian, never more than a chunk at once):

* ``"linear"``: when every selected parameter is the weight or bias of a
  plain ``nn.Linear`` applied once per forward to a ``(batch, in)`` input.
  The gradient of such a layer is an outer product: with
  :math:`z = a W^\top + b` and :math:`g_c = \partial f_c / \partial z`,
  :math:`\partial f_c / \partial W = g_c a^\top` and
  :math:`\partial f_c / \partial b = g_c`. One forward pass (forward hooks
  record each layer's input ``a`` and add a zero tensor ``delta`` to its
  output) and backward passes with respect to the deltas (``autograd.grad``,
  batched over chunks of 16 outputs with ``is_grads_batched``, or one per
  output) give ``a`` (B x in) and ``g`` (B x O x out) for every layer,
  from which the kernels are Gram products (see ``_empirical``) and any
  slice of the P-dimensional gradient is an outer product.
* ``"torch.func"``: ``vmap(jacrev(f))`` over the points of a chunk, with
  ``f(theta, x) = functional_call(model, theta, x[None])``, for a group of
  parameter tensors at a time.
* ``"autograd"``: a plain loop, one forward per point and one
  ``autograd.grad`` per output, for models that ``vmap`` cannot run.

``mode="each"`` gives every output's gradient (B x O x ...); ``mode="sum"``
the gradient of :math:`\sum_c f_c / \sqrt{O}` (B x 1 x ...), the pNTK's.
The per-layer path is checked once per call against plain autograd on the
first point (a tied weight used outside its layer, a layer input that mixes
points or is modified in place make it disagree, and the fallback is used).
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["Selection", "StructureError", "linear_structure", "LinearGrads", "FuncGrads", "LoopGrads",
           "Probe", "probe", "plain_sequential", "last_layer_inputs"]


class StructureError(RuntimeError):
    """The per-layer structure did not hold on a chunk (the caller falls back to torch.func)."""


class Selection:
    """The selected parameters: names, tensors, and their place in the flattened theta (model order)."""

    def __init__(self, names, tensors):
        self.names = list(names)
        self.tensors = list(tensors)
        self.sizes = [int(t.numel()) for t in self.tensors]
        self.offsets = np.concatenate([[0], np.cumsum(self.sizes, dtype=np.int64)]).astype(np.int64)
        self.P = int(self.offsets[-1])
        self.dtype = self.tensors[0].dtype
        self.device = self.tensors[0].device

    def overlapping(self, r0, r1):
        """Indices of the tensors that hold some of the rows [r0, r1) of theta."""
        return [i for i in range(len(self.tensors))
                if self.sizes[i] > 0 and self.offsets[i] < r1 and self.offsets[i + 1] > r0]


def _no_hooks(torch, module):
    return not (module._forward_hooks or module._forward_pre_hooks or module._backward_hooks
                or getattr(module, "_backward_pre_hooks", None))


def _global_hooks(torch):
    m = torch.nn.modules.module
    return any(getattr(m, name, None) for name in ("_global_forward_hooks", "_global_forward_pre_hooks",
                                                    "_global_backward_hooks", "_global_backward_pre_hooks"))


def linear_structure(torch, model, sel):
    """``(layers, None)`` when every selected tensor is the weight or bias of a plain nn.Linear, else
    ``(None, reason)``. ``layers``: list of ``(module, weight index or None, bias index or None)``."""
    owners = {}
    for _, m in model.named_modules(remove_duplicate=False):
        for pname, p in m._parameters.items():
            if p is not None:
                owners.setdefault(id(p), set()).add((id(m), pname, m))
    if _global_hooks(torch):
        return None, "global module hooks are registered"
    layers = {}
    for i, t in enumerate(sel.tensors):
        own = {(mid, pname): m for mid, pname, m in owners.get(id(t), ())}
        if len(own) != 1:
            return None, f"parameter {sel.names[i]!r} is shared by several modules"
        (mid, pname), m = next(iter(own.items()))
        if not isinstance(m, torch.nn.Linear) or type(m).forward is not torch.nn.Linear.forward:
            return None, f"parameter {sel.names[i]!r} belongs to a {type(m).__name__}, not a plain nn.Linear"
        if pname not in ("weight", "bias"):
            return None, f"parameter {sel.names[i]!r} is not the weight or bias of its nn.Linear"
        if not _no_hooks(torch, m):
            return None, f"the nn.Linear holding {sel.names[i]!r} has hooks"
        slot = layers.setdefault(mid, [m, None, None])
        slot[1 if pname == "weight" else 2] = i
    return [tuple(v) for v in layers.values()], None


def _all_linear(torch, model):
    seen, out = set(), []
    for _, m in model.named_modules():
        if isinstance(m, torch.nn.Linear) and id(m) not in seen:
            seen.add(id(m))
            out.append(m)
    return out


def _outputs(torch, y, n):
    """The model output as (n, O), or StructureError."""
    if not isinstance(y, torch.Tensor) or y.ndim < 1 or y.shape[0] != n:
        raise StructureError("the output is not a tensor with one row per point")
    return y.reshape(n, -1)


class LinearGrads:
    """Per-layer inputs and back-propagated signals of the selected nn.Linear layers (see the module docstring)."""

    method = "linear"

    def __init__(self, torch, model, sel, layers, n_outputs, mode):
        self.torch, self.model, self.sel, self.layers = torch, model, sel, layers
        self.O, self.mode = n_outputs, mode
        self.O_eff = n_outputs if mode == "each" else 1
        self.hooked = _all_linear(torch, model)
        self.batched = True
        # tensor index -> (layer index, "weight" | "bias")
        self.where = {}
        for li, (_, wi, bi) in enumerate(layers):
            if wi is not None:
                self.where[wi] = (li, "weight")
            if bi is not None:
                self.where[bi] = (li, "bias")

    def feature_bytes_per_point(self):
        """Bytes kept per point: the inputs of layers whose weight is selected and the O_eff x out signals."""
        s = self.sel.tensors[0].element_size()
        return s * sum((m.in_features if wi is not None else 0) + self.O_eff * m.out_features
                       for m, wi, _ in self.layers)

    def features(self, Xb):
        """``(per-layer list of (A or None, G), last-layer input or None)`` for the chunk ``Xb``.

        A: (B, in) the layer's input (None when its weight is not selected); G: (B, O_eff, out), with
        G[b, c] the gradient of output c (or of sum_c f_c / sqrt(O)) at point b with respect to the
        layer's output.
        """
        torch = self.torch
        B = Xb.shape[0]
        selected = {id(m) for m, _, _ in self.layers}
        records = {}

        def hook(module, inputs, output):
            x = inputs[0] if inputs else None
            entry = {"x": x, "version": getattr(x, "_version", None)}
            replaced = None
            if id(module) in selected and isinstance(output, torch.Tensor) and output.is_floating_point():
                delta = torch.zeros_like(output, requires_grad=True)
                replaced = output + delta
                entry["delta"] = delta
            entry["out"] = output if replaced is None else replaced
            records.setdefault(id(module), []).append(entry)
            return replaced

        handles = [m.register_forward_hook(hook) for m in self.hooked]
        try:
            with torch.enable_grad():
                y = self.model(Xb)
        finally:
            for h in handles:
                h.remove()
        F = _outputs(torch, y, B)
        if F.shape[1] != self.O:
            raise StructureError("the number of outputs changed between chunks")
        deltas = []
        for m, wi, _ in self.layers:
            rec = records.get(id(m), [])
            if len(rec) != 1:
                raise StructureError(f"an nn.Linear was called {len(rec)} times in one forward")
            x = rec[0]["x"]
            if (not isinstance(x, torch.Tensor) or x.ndim != 2 or x.shape[0] != B
                    or x._version != rec[0]["version"] or "delta" not in rec[0]):
                raise StructureError("an nn.Linear input is not a (batch, in) tensor left unchanged")
            deltas.append(rec[0]["delta"])
        G = [torch.zeros((B, self.O_eff, m.out_features), dtype=F.dtype, device=F.device)
             for m, _, _ in self.layers]
        if F.requires_grad:
            with torch.enable_grad():
                if self.mode == "sum":
                    grads = torch.autograd.grad(F.sum() / math.sqrt(self.O), deltas, allow_unused=True)
                    for Gl, g in zip(G, grads):
                        if g is not None:
                            Gl[:, 0].copy_(g)
                else:
                    self._each_output(F, deltas, G)
        A = [records[id(m)][0]["x"].detach() if wi is not None else None for m, wi, _ in self.layers]
        last = None
        for m in self.hooked:
            for entry in records.get(id(m), ()):
                if entry["out"] is y and isinstance(entry["x"], torch.Tensor) and entry["x"].ndim == 2:
                    last = entry["x"].detach()
        return list(zip(A, G)), last

    #: outputs back-propagated together (one batched backward pass: ``is_grads_batched``)
    OUTPUT_CHUNK = 16

    def _each_output(self, F, deltas, G):
        """G[l][:, c] = d f_c / d z_l for every output c: batched backward passes over chunks of outputs,
        or one pass per output when the model's backward cannot be batched (vmap)."""
        torch = self.torch
        B, O = F.shape
        for c0 in range(0, O, self.OUTPUT_CHUNK):
            c1 = min(O, c0 + self.OUTPUT_CHUNK)
            grads = None
            if self.batched:
                E = torch.zeros((c1 - c0, B, O), dtype=F.dtype, device=F.device)
                E[torch.arange(c1 - c0), :, torch.arange(c0, c1)] = 1
                try:
                    grads = torch.autograd.grad(F, deltas, grad_outputs=E, retain_graph=True,
                                                is_grads_batched=True, allow_unused=True)
                except Exception:  # an op without a batching rule: one output at a time from now on
                    self.batched = False
            if grads is not None:
                for Gl, g in zip(G, grads):
                    if g is not None:
                        Gl[:, c0:c1].copy_(g.transpose(0, 1))
                continue
            for c in range(c0, c1):
                grads = torch.autograd.grad(F[:, c].sum(), deltas, retain_graph=True, allow_unused=True)
                for Gl, g in zip(G, grads):
                    if g is not None:
                        Gl[:, c].copy_(g)

    def rows(self, Xb, r0, r1, out=None):
        """Rows [r0, r1) of the per-sample gradients: a (B, O_eff, r1 - r0) tensor (``out`` when given, written
        in place without temporaries of that size), and the last-layer input."""
        torch = self.torch
        feats, last = self.features(Xb)
        B = Xb.shape[0]
        if out is None:
            out = torch.empty((B, self.O_eff, r1 - r0), dtype=self.sel.dtype, device=Xb.device)
        for i in self.sel.overlapping(r0, r1):
            off = int(self.sel.offsets[i])
            lo, hi = max(r0, off) - off, min(r1, off + self.sel.sizes[i]) - off
            dst = out[:, :, off + lo - r0:off + hi - r0]
            li, what = self.where[i]
            A, G = feats[li]
            if what == "bias":
                dst.copy_(G[:, :, lo:hi])
            else:
                _outer_into(torch, dst, G, A, lo, hi)
        return out, last


def _outer_into(torch, dst, G, A, lo, hi):
    """``dst[b, c] = (G[b, c] outer A[b]).ravel()[lo:hi]`` (row-major (out, in), as ``weight.ravel()``)."""
    d_in = A.shape[1]
    pos = lo
    while pos < hi:
        o, col = divmod(pos, d_in)
        if col == 0 and hi - pos >= d_in:  # whole rows of the weight, written through a strided view
            n = (hi - pos) // d_in
            view = dst[:, :, pos - lo:pos - lo + n * d_in].unflatten(2, (n, d_in))
            torch.mul(G[:, :, o:o + n, None], A[:, None, None, :], out=view)
            pos += n * d_in
        else:  # a partial row at either end
            end = min(hi, (o + 1) * d_in)
            dst[:, :, pos - lo:end - lo] = G[:, :, o, None] * A[:, None, col:col + end - pos]
            pos = end


class _TensorGroups:
    """Shared helper of the fallbacks: per-sample gradients of whole tensors, sliced to rows [r0, r1)."""

    def __init__(self, torch, model, sel, n_outputs, mode):
        self.torch, self.model, self.sel = torch, model, sel
        self.O, self.mode = n_outputs, mode
        self.O_eff = n_outputs if mode == "each" else 1

    def _target(self, y):
        y = y.reshape(-1)
        return y.sum() / math.sqrt(self.O) if self.mode == "sum" else y

    def rows(self, Xb, r0, r1, out=None):
        """Rows [r0, r1) of the per-sample gradients: a (B, O_eff, r1 - r0) tensor (and None); ``out`` is
        not used (the whole tensors are differentiated, then sliced)."""
        idx = self.sel.overlapping(r0, r1)
        J = torch_cat(self.torch, self.tensor_jacobians(Xb, idx))
        start = int(self.sel.offsets[idx[0]])
        return J[:, :, r0 - start:r1 - start], None


def torch_cat(torch, parts):
    """The (B, O_eff, P) concatenation of per-tensor Jacobians (no copy for a single one)."""
    return parts[0] if len(parts) == 1 else torch.cat(parts, dim=2)


class FuncGrads(_TensorGroups):
    """``torch.func``: vmap(jacrev(functional_call)) over the points of a chunk."""

    method = "torch.func"

    def tensor_jacobians(self, Xb, idx):
        """Per-sample gradients of the tensors ``idx`` (consecutive, model order): a list of (B, O_eff, size)."""
        torch = self.torch
        from torch.func import functional_call, jacrev, vmap
        names = [self.sel.names[i] for i in idx]
        theta = {n: self.sel.tensors[i].detach() for n, i in zip(names, idx)}

        def f(p, x):
            return self._target(functional_call(self.model, p, (x.unsqueeze(0),)))

        B = Xb.shape[0]
        with torch.no_grad():
            jac = vmap(jacrev(f), in_dims=(None, 0))(theta, Xb)
            return [jac[n].reshape(B, self.O_eff, -1) for n in names]


class LoopGrads(_TensorGroups):
    """Plain autograd: one forward per point, one ``autograd.grad`` per output."""

    method = "autograd"

    def tensor_jacobians(self, Xb, idx):
        """Per-sample gradients of the tensors ``idx`` (consecutive, model order): a list of (B, O_eff, size)
        views of one buffer."""
        torch = self.torch
        from torch.func import functional_call
        names = [self.sel.names[i] for i in idx]
        sizes = [self.sel.sizes[i] for i in idx]
        B = Xb.shape[0]
        out = torch.zeros((B, self.O_eff, sum(sizes)), dtype=self.sel.dtype, device=Xb.device)
        for b in range(B):
            theta = {n: self.sel.tensors[i].detach().requires_grad_(True) for n, i in zip(names, idx)}
            with torch.enable_grad():
                y = self._target(functional_call(self.model, theta, (Xb[b:b + 1],)))
                if not y.requires_grad:
                    continue
                targets = [y] if self.mode == "sum" else list(y)
                for c, target in enumerate(targets):
                    grads = torch.autograd.grad(target, list(theta.values()), retain_graph=c < len(targets) - 1,
                                                allow_unused=True)
                    at = 0
                    for g, size in zip(grads, sizes):
                        if g is not None:
                            out[b, c, at:at + size] = g.reshape(-1)
                        at += size
        bounds = np.concatenate([[0], np.cumsum(sizes)])
        return [out[:, :, int(a):int(z)] for a, z in zip(bounds[:-1], bounds[1:])]


class Probe:
    """What one forward and backward pass on the first point tells (see :func:`probe`)."""

    def __init__(self, output, act_bytes, linear_ok):
        self.output, self.act_bytes, self.linear_ok = output, act_bytes, linear_ok


#: parameter-free elementwise modules of torch.nn (exact types) that keep the per-layer structure of a Sequential
_ELEMENTWISE = ("ReLU", "ReLU6", "Tanh", "Sigmoid", "GELU", "SiLU", "ELU", "SELU", "CELU", "LeakyReLU", "Softplus",
                "Mish", "Hardtanh", "Hardswish", "Hardsigmoid", "Tanhshrink", "Softsign", "LogSigmoid", "Identity",
                "Dropout", "AlphaDropout")


def plain_sequential(torch, model):
    """True for an nn.Sequential (nested ones allowed) of plain nn.Linear layers, each once, and elementwise
    activations, without hooks: the per-layer structure holds by construction."""
    elementwise = tuple(getattr(torch.nn, n) for n in _ELEMENTWISE if hasattr(torch.nn, n))
    seen = set()

    def ok(m):
        if not _no_hooks(torch, m):
            return False
        if type(m) is torch.nn.Sequential:
            return all(ok(c) for c in m)
        if type(m) is torch.nn.Linear:
            if id(m) in seen:
                return False
            seen.add(id(m))
            return True
        return type(m) in elementwise and not list(m.parameters(recurse=False))

    return type(model) is torch.nn.Sequential and ok(model)


def probe(torch, model, sel, x0, layers, verify=True):
    """One forward and backward pass on the first point ``x0`` (a batch of one), through ``functional_call``
    with copies of the selected parameters that require grad:

    * ``output``: the model's output (checked by the caller);
    * ``act_bytes``: the bytes autograd saves for the backward pass, without the parameters and buffers
      (what one more point of a batch costs);
    * ``linear_ok``: with ``layers`` (from :func:`linear_structure`), whether each of those nn.Linear was
      called once on a (1, in) input left unchanged and the per-layer gradients ``g a^T`` and ``g`` of
      sum_c f_c / sqrt(O) match the parameters' autograd gradients to 10 sqrt(eps) (relative to the
      largest); a weight also used outside its layer, or a layer input that mixes points, fails this.
      ``verify=False`` skips the gradient comparison (and the backward pass), for models where the
      structure holds by construction (:func:`plain_sequential`).

    Exceptions of the model's forward pass propagate (the caller reports them as bad points).
    """
    from torch.func import functional_call
    constant = set()
    for t in list(model.parameters()) + list(model.buffers()):
        try:
            constant.add(t.untyped_storage().data_ptr())
        except Exception:  # pragma: no cover - tensors without storage (subclasses)
            pass
    store = {}

    def pack(t):
        try:
            key = t.untyped_storage().data_ptr()
        except Exception:  # pragma: no cover
            key = id(t)
        if key not in constant:
            store[key] = max(store.get(key, 0), t.numel() * t.element_size())
        return t

    records = {}

    def hook(module, inputs, output):
        x = inputs[0] if inputs else None
        entry = {"x": x, "version": getattr(x, "_version", None)}
        replaced = None
        if isinstance(output, torch.Tensor) and output.is_floating_point():
            entry["delta"] = torch.zeros_like(output, requires_grad=True)
            replaced = output + entry["delta"]
        records.setdefault(id(module), []).append(entry)
        return replaced

    theta = {n: t.detach().requires_grad_(True) for n, t in zip(sel.names, sel.tensors)}
    handles = [m.register_forward_hook(hook) for m, _, _ in (layers or ())]
    try:
        with torch.enable_grad(), torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            y = functional_call(model, theta, (x0,))
    finally:
        for h in handles:
            h.remove()
    act = sum(store.values())
    if not isinstance(y, torch.Tensor) or layers is None:
        return Probe(y, act, False)
    ok = all(len(records.get(id(m), ())) == 1 for m, _, _ in layers)
    if ok:
        entries = [records[id(m)][0] for m, _, _ in layers]
        ok = all(isinstance(e["x"], torch.Tensor) and e["x"].ndim == 2 and e["x"].shape[0] == 1
                 and e["x"]._version == e["version"] and "delta" in e for e in entries)
    if not ok or y.numel() == 0 or not y.is_floating_point():
        return Probe(y, act, False)
    if not verify:
        return Probe(y, act, True)
    target = y.reshape(-1).sum() / math.sqrt(y[0].numel())
    if not target.requires_grad:
        return Probe(y, act, True)  # no selected parameter reaches the output: every gradient is 0 either way
    deltas = [e["delta"] for e in entries]
    grads = torch.autograd.grad(target, list(theta.values()) + deltas, allow_unused=True)
    ref, sig = grads[:len(theta)], grads[len(theta):]
    tol = 10 * math.sqrt(torch.finfo(sel.dtype).eps)
    worst, scale = 0.0, 0.0
    for (m, wi, bi), e, g in zip(layers, entries, sig):
        g = torch.zeros_like(e["delta"]) if g is None else g
        for i, mine in ((wi, lambda: torch.outer(g[0], e["x"][0].detach())), (bi, lambda: g[0])):
            if i is None:
                continue
            r = ref[i] if ref[i] is not None else torch.zeros_like(sel.tensors[i])
            worst = max(worst, float((mine().reshape(r.shape) - r).abs().max()))
            scale = max(scale, float(r.abs().max()))
    return Probe(y, act, bool(worst <= tol * max(scale, torch.finfo(sel.dtype).tiny)))


def last_layer_inputs(torch, model, Xb):
    """The input (B, d) of the nn.Linear whose output is the model's output, or None (a no-grad forward)."""
    records = []

    def hook(module, inputs, output):
        records.append((inputs[0] if inputs else None, output))

    handles = [m.register_forward_hook(hook) for m in _all_linear(torch, model)]
    try:
        with torch.no_grad():
            y = model(Xb)
    finally:
        for h in handles:
            h.remove()
    for x, out in records:
        if out is y and isinstance(x, torch.Tensor) and x.ndim == 2 and x.shape[0] == Xb.shape[0]:
            return x
    return None
