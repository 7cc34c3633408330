r"""Empirical neural tangent kernels of PyTorch models: full, trace, pNTK and projected, within a memory budget.

For a model :math:`f_\theta: x \mapsto (f_1(x), ..., f_O(x))` and the
gradients :math:`J_c(x) = \partial f_c(x) / \partial \theta \in \mathbb R^P`
of its outputs with respect to the (selected) parameters,

.. math::

    \Theta_{cc'}(x, x') = J_c(x) \cdot J_{c'}(x').

:func:`empirical_ntk` computes it, or one of its N1 x N2 reductions, by chunks
of points and of parameters sized to ``kernelkit.options(memory=...)``; the
N x P Jacobian is never formed. Networks whose selected parameters all
belong to ``nn.Linear`` layers take a per-layer path that never forms a
P-dimensional gradient at all (see :mod:`._empirical_grads`); other models go
through ``torch.func`` (``vmap(jacrev(functional_call))``).
torch is imported on the first call.
"""

from __future__ import annotations

import math

import numpy as np

from .._lazy import require_torch
from .._options import get_options
from .._random import seed_sequence
from .._validation import InstanceOf, Integral, OneOf, check_param, param_error
from ..engine._tiling import progress_bar
from . import _empirical_grads as _g
from ._empirical_sketch import SKETCHES, sketch_rows

__all__ = ["empirical_ntk", "EmpiricalNTK"]

OWNER = "empirical_ntk"
KINDS = ("full", "trace", "pntk", "projected")
METHODS = ("auto", "linear", "torch.func", "autograd")
RETURN_TYPES = ("auto", "numpy", "torch")


def _torch():
    return require_torch("empirical_ntk")


# --------------------------------------------------------------------------- the result
class EmpiricalNTK:
    r"""The result of :func:`empirical_ntk`: the kernel and the feature maps that come with it.

    Arrays are NumPy arrays, or torch tensors on the compute device (see
    ``return_type`` of :func:`empirical_ntk`), in the model's dtype.

    Parameters
    ----------
    kind : {"full", "trace", "pntk", "projected"}
        Which kernel (see :func:`empirical_ntk`).
    kernel : array or None
        ``(N1, N2, O, O)`` for ``"full"``, ``(N1, N2)`` otherwise. None for
        ``"projected"``: formed from the features on first access.
    features1, features2 : array or None
        The projected gradients of ``X1`` and ``X2`` (``"projected"`` only):
        ``(N, k)``, or ``(N, O, k)`` with ``per_output=True``. ``features2``
        is ``features1`` (the same object) when ``X2`` is None.
    last_layer_features1, last_layer_features2 : array or None
        When the model's output is the output of an ``nn.Linear`` module, its
        input :math:`h(x)`, ``(N, d)``; the part of the NTK that comes from
        that layer's weights and bias is :math:`(h(x) \cdot h(x') + 1)\,\delta_{cc'}`
        when both are selected. None otherwise.
    method : {"linear", "torch.func", "autograd"}
        How the gradients were computed: the per-layer ``nn.Linear`` path,
        ``vmap(jacrev)``, or a plain per-point autograd loop.
    n_params : int
        P, the number of selected parameters (scalars).
    n_outputs : int
        O, the number of outputs per point (the model output flattened).
    per_output : bool
        ``"projected"``: whether each output's gradient was projected.
    plan : dict
        The chunking used (points per chunk, parameter blocks, whether chunk
        results were kept, the estimated peak of temporaries in bytes).
    """

    def __init__(self, kind, kernel, features1, features2, last_layer_features1, last_layer_features2, method,
                 n_params, n_outputs, per_output, plan):
        self.kind = kind
        self._kernel = kernel
        self.features1, self.features2 = features1, features2
        self.last_layer_features1, self.last_layer_features2 = last_layer_features1, last_layer_features2
        self.method = method
        self.n_params, self.n_outputs = n_params, n_outputs
        self.per_output = per_output
        self.plan = plan

    @property
    def kernel(self):
        r"""The kernel matrix; for ``"projected"`` formed on first access from the features:
        :math:`\phi(x) \cdot \phi(x')`, or :math:`\tfrac1O \sum_c \phi_c(x) \cdot \phi_c(x')` with
        ``per_output=True`` (one N1 x N2 matrix product, kept afterwards)."""
        if self._kernel is None:
            F1, F2 = self.features1, self.features2
            n1, n2 = F1.shape[0], F2.shape[0]
            K = F1.reshape(n1, -1) @ F2.reshape(n2, -1).T
            if self.per_output:
                K /= self.n_outputs
            self._kernel = K
        return self._kernel

    def as_matrix(self):
        """The kernel as a 2-D matrix: ``(N1*O, N2*O)`` for ``"full"`` (row ``i*O + c`` is point i, output c;
        a copy), the kernel itself otherwise."""
        K = self.kernel
        if self.kind != "full":
            return K
        n1, n2, o, _ = K.shape
        return K.transpose(0, 2, 1, 3).reshape(n1 * o, n2 * o) if isinstance(K, np.ndarray) else \
            K.permute(0, 2, 1, 3).reshape(n1 * o, n2 * o)

    def __repr__(self):
        return (f"EmpiricalNTK(kind={self.kind!r}, method={self.method!r}, n_params={self.n_params}, "
                f"n_outputs={self.n_outputs})")


# --------------------------------------------------------------------------- input checks
def _select(torch, model, params):
    named = list(model.named_parameters())
    if not named:
        raise param_error("model", OWNER, "a torch.nn.Module with at least one parameter", model,
                          shown=f"a {type(model).__name__} with no parameters")
    if params is None:
        chosen = [(n, p) for n, p in named if p.requires_grad]
        if not chosen:
            raise param_error("params", OWNER, "parameter names or a filter when no parameter of the model "
                              "requires grad", None, hint="params=None selects the parameters with "
                              "requires_grad=True; pass names to use frozen ones.")
    elif callable(params):
        chosen = [(n, p) for n, p in named if params(n, p)]
        if not chosen:
            raise param_error("params", OWNER, "a filter (name, parameter) -> bool that selects at least one "
                              "parameter", params, shown="a filter that selected none")
    else:
        wanted = [params] if isinstance(params, str) else params
        try:
            wanted = list(wanted)
        except TypeError:
            raise param_error("params", OWNER, "None, a parameter name, a list of names or a filter "
                              "(name, parameter) -> bool", params, "type") from None
        if not wanted or not all(isinstance(w, str) for w in wanted):
            raise param_error("params", OWNER, "a non-empty list of parameter names (str)", params,
                              "type" if wanted else "value")
        known = {n for n, _ in named}
        unknown = [w for w in wanted if w not in known]
        if unknown:
            some = ", ".join(repr(n) for n, _ in named[:4]) + (", ..." if len(named) > 4 else "")
            raise param_error("params", OWNER, f"names of parameters of the model ({some})", params,
                              shown=f"unknown name(s) {unknown}")
        chosen = [(n, p) for n, p in named if n in set(wanted)]
    dtypes = {p.dtype for _, p in chosen}
    devices = {p.device for _, p in chosen}
    if len(dtypes) != 1 or not next(iter(dtypes)).is_floating_point or len(devices) != 1:
        raise param_error("params" if params is not None else "model", OWNER,
                          "parameters of one floating-point dtype on one device", params if params is not None
                          else model, shown=f"dtypes {sorted(map(str, dtypes))} on {sorted(map(str, devices))}")
    if sum(p.numel() for _, p in chosen) == 0:
        raise param_error("params" if params is not None else "model", OWNER, "parameters with at least one "
                          "scalar", params if params is not None else model, shown="only empty parameters")
    return _g.Selection([n for n, _ in chosen], [p for _, p in chosen])


def _check_eval_mode(torch, model):
    nn = torch.nn.modules
    for name, m in model.named_modules():
        if not m.training:
            continue
        stateful = isinstance(m, (nn.batchnorm._BatchNorm, nn.dropout._DropoutNd)) or (
            isinstance(m, nn.instancenorm._InstanceNorm) and m.track_running_stats)
        if stateful:
            raise param_error("model", OWNER, "a model whose BatchNorm and Dropout layers are in eval mode "
                              "(call model.eval() first)", model,
                              shown=f"{type(m).__name__} {name or '(the model)'!r} in training mode",
                              hint="In training mode they mix the points of a batch or draw random masks, "
                                   "so the per-point gradient is not defined.")


def _points(torch, X, name, sel):
    """X as a tensor on the model's device (floating point: in the model's dtype), checked."""
    if isinstance(X, torch.Tensor):
        t = X.detach()
        if t.device != sel.device:
            raise param_error(name, OWNER, f"a tensor on the model's device ({sel.device})", X,
                              shown=f"a tensor on {t.device}")
        shape = tuple(t.shape)
    else:
        try:
            arr = np.asarray(X)
        except Exception as exc:  # pragma: no cover - exotic inputs
            raise param_error(name, OWNER, "a numeric array or torch tensor", X, "type",
                              shown=type(X).__name__) from exc
        if arr.dtype == object or not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool) \
                or np.iscomplexobj(arr):
            raise param_error(name, OWNER, "a real numeric array or torch tensor", X, "type",
                              shown=f"dtype {arr.dtype}")
        shape = arr.shape
        t = None
    if len(shape) < 1 or shape[0] < 1:
        raise param_error(name, OWNER, "an array of at least one point, of shape (n_points, ...)", X,
                          shown=f"shape {shape}")
    if t is None:
        t = torch.from_numpy(np.ascontiguousarray(arr))
    if t.is_complex():
        raise param_error(name, OWNER, "a real tensor", X, "type", shown=f"dtype {t.dtype}")
    if t.is_floating_point():
        t = t.to(device=sel.device, dtype=sel.dtype)
        bad = ~torch.isfinite(t)
        if bool(bad.any()):
            where = tuple(int(i) for i in bad.nonzero()[0])
            raise param_error(name, OWNER, "an array of finite values", X, shown=f"{float(t[where])} at index {where}")
    else:
        t = t.to(device=sel.device)
    return t


def _model_error(name, X, T, exc):
    first = (str(exc).strip().splitlines() or [""])[0]
    return param_error(name, OWNER, f"an array of points the model accepts (model({name}[:1]) must run)", X,
                       shown=f"shape {tuple(T.shape)}", hint=f"The model raised {type(exc).__name__}: {first}")


def _n_outputs(torch, model, y):
    """O, the number of outputs per point, from the output ``y`` for one point (or an error naming 'model')."""
    if not isinstance(y, torch.Tensor) or y.ndim < 1 or y.shape[0] != 1 or not y.is_floating_point() \
            or y[0].numel() < 1:
        shown = (f"an output of shape {tuple(y.shape)} and dtype {y.dtype} for 1 point"
                 if isinstance(y, torch.Tensor) else f"an output of type {type(y).__name__}")
        raise param_error("model", OWNER, "a module mapping a batch of n points to one floating-point tensor "
                          "with n rows", model, shown=shown)
    return int(y[0].numel())


# --------------------------------------------------------------------------- plans
def _slices(n, b):
    return [slice(a, min(a + b, n)) for a in range(0, n, b)]


def _largest_tile(budget, per_point, tile):
    """Largest b with tile * b^2 + 2 * per_point * b <= budget (0 when none)."""
    if budget <= 0:
        return 0
    return int((-2 * per_point + math.sqrt(4.0 * per_point * per_point + 4.0 * tile * budget)) / (2 * tile))


def plan_tiles(n1, n2, sym, memory, per_point, stored, tile, inner=64):
    """Chunks of points for the kernel loops, within ``memory`` bytes when possible.

    ``per_point``: transient bytes per point while its gradients are computed; ``stored``: bytes kept per
    point (its layer signals or Jacobian rows); ``tile``: temporary bytes per entry of a kernel tile.

    * When every point's stored data fit in half the budget they are computed once and kept
      (``cache``), and the tiles are squares of ``b1 = b2`` points.
    * Otherwise rows of the kernel are done ``b1`` points of X1 at a time, kept while the points of
      X2 are recomputed ``b2 <= inner`` at a time (few rows chunks, hence few recomputations).

    Returns a dict with ``b1``, ``b2``, ``cache`` and ``estimate`` (the planned peak, bytes).
    """
    n_store = n1 if sym else n1 + n2
    if n_store * stored <= memory / 2:
        b = min(_largest_tile(memory - n_store * stored, per_point, tile), max(n1, n2))
        if b >= 1:
            return {"b1": b, "b2": b, "cache": True,
                    "estimate": int(n_store * stored + tile * b * b + 2 * per_point * b)}
    b2 = min(n2, inner)
    while b2 >= 1:
        b1 = min(n1, int((memory - b2 * (per_point + stored)) // (stored + b2 * tile)),
                 int(memory // (per_point + stored)))
        if b1 >= b2:
            est = max(b1 * (per_point + stored), b1 * stored + b2 * (per_point + stored) + b1 * b2 * tile)
            return {"b1": b1, "b2": b2, "cache": False, "estimate": int(est)}
        b2 //= 2
    b = max(1, min(_largest_tile(memory, per_point + stored, tile), n1, n2))
    return {"b1": b, "b2": b, "cache": False, "estimate": int(tile * b * b + 2 * (per_point + stored) * b)}


def tensor_groups(sel, max_elems):
    """Consecutive groups of selected tensors with at most ``max_elems`` scalars each (a larger tensor alone)."""
    groups, cur, size = [], [], 0
    for i, s in enumerate(sel.sizes):
        if cur and size + s > max_elems:
            groups.append(cur)
            cur, size = [], 0
        cur.append(i)
        size += s
    groups.append(cur)
    return groups


def plan_projection(P, k, n, memory, itemsize, per_point_fixed, per_point_per_row, block_rows):
    """Row blocks of the sketch (``R`` rows, a multiple of ``block_rows`` unless all P fit) and points per chunk.

    The sketch block takes ``R * k * itemsize`` bytes (at most half the budget unless a single canonical
    block is larger); a point of a chunk takes ``per_point_fixed + per_point_per_row * R`` bytes.
    """
    if P * k * itemsize <= memory / 2:
        R = P
    else:
        R = max(block_rows, int(memory / 2 // (k * itemsize)) // block_rows * block_rows)
        R = min(R, P)
    left = memory - R * k * itemsize
    b = max(1, min(n, int(left // max(1, per_point_fixed + per_point_per_row * R))))
    return {"rows": R, "b": b, "estimate": int(R * k * itemsize + b * (per_point_fixed + per_point_per_row * R))}


# --------------------------------------------------------------------------- kernels
class _TileBuffers:
    """Flat buffers for the products of one tile, allocated once per call (b1 x b2, and b1*O x b2*O for full)."""

    def __init__(self, torch, plan, O, kind, dtype, device):
        self.torch = torch
        b = plan["b1"] * plan["b2"]
        self.gram = torch.empty((b,), dtype=dtype, device=device)
        self.prod = torch.empty((b * (O * O if kind == "full" else 1),), dtype=dtype, device=device)

    def matmul(self, which, a, bT):
        buf = self.gram if which == "gram" else self.prod
        return self.torch.matmul(a, bT, out=buf[:a.shape[0] * bT.shape[1]].view(a.shape[0], bT.shape[1]))


def _add_product(view, bufs, G1, G2, Ka, kind, O):
    """view += (G1 G2^T) o Ka for one layer or parameter group (view: a tile of the output)."""
    B1, B2 = G1.shape[0], G2.shape[0]
    if kind == "full":  # (B1 O, B2 O) -> (B1, B2, O, O)
        T = bufs.matmul("prod", G1.reshape(B1 * O, -1), G2.reshape(B2 * O, -1).T)
        T = T.view(B1, O, B2, O).permute(0, 2, 1, 3)
        Ka = None if Ka is None else Ka[:, :, None, None]
    elif Ka is None and view.stride(-1) == 1:  # straight into the output
        view.addmm_(G1.reshape(B1, -1), G2.reshape(B2, -1).T)
        return
    else:
        T = bufs.matmul("prod", G1.reshape(B1, -1), G2.reshape(B2, -1).T)
    if Ka is None:
        view.add_(T)
    else:
        view.addcmul_(T, Ka)


def _tile_linear(bufs, view, F1, F2, kind, O, has_bias):
    """view += sum over layers of (A1 A2^T [+ 1]) o (G1 G2^T)."""
    for (A1, G1), (A2, G2), bias in zip(F1, F2, has_bias):
        Ka = None
        if A1 is not None:
            Ka = bufs.matmul("gram", A1, A2.T)
            if bias:
                Ka += 1
        _add_product(view, bufs, G1, G2, Ka, kind, O)


def _tiles(n1, n2, sym, plan):
    """(rows of X1, [columns of X2 for each]): for a symmetric kernel only the columns from the rows' start."""
    rows = _slices(n1, plan["b1"])
    cols = [[slice(a, min(a + plan["b2"], n2)) for a in range(r.start if sym else 0, n2, plan["b2"])]
            for r in rows]
    return rows, cols


def _tile_loop(out, rows, cols, sym, get, add, bar):
    """For each (rows, columns) tile: ``add(out[rows, columns], get(0, rows), get(side, columns))``."""
    for I, Js in zip(rows, cols):
        F1 = get(0, I)
        for J in Js:
            add(out[I, J], F1, F1 if sym and J == I else get(0 if sym else 1, J))
            bar.update(1)
        del F1  # before the next rows are computed


def _finish(out, rows, sym, kind, O):
    """Mirror the computed upper part of a symmetric kernel, and divide the trace by O."""
    if sym:
        for I in rows:
            if I.stop < out.shape[0]:
                upper = out[I, I.stop:]
                out[I.stop:, I] = upper.permute(1, 0, 3, 2) if kind == "full" else upper.T
    if kind == "trace":
        out /= O
    return out


class _Store:
    """Per-chunk results (layer signals or Jacobians), kept when the plan says so."""

    def __init__(self, X, compute, keep):
        self.X, self.compute, self.keep, self.kept = X, compute, keep, {}

    def __call__(self, side, sl):
        key = (side, sl.start, sl.stop)
        if key in self.kept:
            return self.kept[key]
        value = self.compute(side, sl)
        if self.keep:
            self.kept[key] = value
        return value


class _LastLayer:
    """Collects the last-layer inputs of X1 and X2 chunk by chunk."""

    def __init__(self, torch, n1, n2):
        self.torch, self.n = torch, (n1, n2)
        self.arrays = [None, None]

    def put(self, side, sl, x):
        if x is None:
            return
        if self.arrays[side] is None:
            self.arrays[side] = self.torch.zeros((self.n[side], x.shape[1]), dtype=x.dtype, device=x.device)
        self.arrays[side][sl] = x


def _tile_bytes(s, O, kind):
    return s * (O * O + 2 if kind == "full" else 3)


def _linear_transient(prov, act):
    """Bytes per point while the per-layer path computes a chunk: the forward graph, the batched backward
    over up to OUTPUT_CHUNK outputs, and the layer signals."""
    return (2 + min(prov.O_eff, prov.OUTPUT_CHUNK)) * act + 2 * prov.feature_bytes_per_point()


def _kernel_linear(torch, prov, X, sym, kind, O, memory, act, bar_on, last):
    n1, n2 = X[0].shape[0], X[1].shape[0]
    s = prov.sel.tensors[0].element_size()
    feat = prov.feature_bytes_per_point()
    plan = plan_tiles(n1, n2, sym, memory, _linear_transient(prov, act), feat, _tile_bytes(s, O, kind))
    out = torch.zeros((n1, n2, O, O) if kind == "full" else (n1, n2), dtype=prov.sel.dtype, device=X[0].device)
    rows, cols = _tiles(n1, n2, sym, plan)
    has_bias = [bi is not None for _, _, bi in prov.layers]
    bufs = _TileBuffers(torch, plan, O, kind, prov.sel.dtype, X[0].device)

    def compute(side, sl):
        feats, x_last = prov.features(X[side][sl])
        last.put(side, sl, x_last)
        return feats

    total = sum(map(len, cols))
    with progress_bar(total, bar_on, "empirical NTK") as bar:
        _tile_loop(out, rows, cols, sym, _Store(X, compute, plan["cache"]),
                   lambda view, F1, F2: _tile_linear(bufs, view, F1, F2, kind, O, has_bias), bar)
    plan["tiles"] = total
    return _finish(out, rows, sym, kind, O), plan


#: the fallback paths plan against this share of the budget: vmap(jacrev) temporaries are estimated
#: coarsely, and the allocator keeps some freed memory resident between chunks
FALLBACK_SHARE = 0.7


def _kernel_jacobian(torch, prov, X, sym, kind, O, memory, act, bar_on):
    memory = FALLBACK_SHARE * memory
    n1, n2 = X[0].shape[0], X[1].shape[0]
    sel = prov.sel
    s = sel.tensors[0].element_size()
    O_eff = prov.O_eff
    min_pts = min(8, max(n1, n2))
    groups = tensor_groups(sel, max(1, int(memory // (2 * min_pts * 3 * O_eff * s))))
    # one plan for every group (the largest decides), so that the tiles line up
    stored = O_eff * max(sum(sel.sizes[i] for i in g) for g in groups) * s
    plan = plan_tiles(n1, n2, sym, memory, act * (1 + 2 * O_eff) + stored, stored, _tile_bytes(s, O, kind))
    out = torch.zeros((n1, n2, O, O) if kind == "full" else (n1, n2), dtype=sel.dtype, device=X[0].device)
    rows, cols = _tiles(n1, n2, sym, plan)
    bufs = _TileBuffers(torch, plan, O, kind, sel.dtype, X[0].device)
    per_group = sum(map(len, cols))
    with progress_bar(per_group * len(groups), bar_on, "empirical NTK") as bar:
        for g in groups:
            store = _Store(X, lambda side, sl: prov.tensor_jacobians(X[side][sl], g), plan["cache"])
            _tile_loop(out, rows, cols, sym, store,
                       lambda view, J1, J2: [_add_product(view, bufs, a, b, None, kind, O) for a, b in zip(J1, J2)],
                       bar)
            del store
    plan.update(groups=len(groups), tiles=per_group * len(groups))
    return _finish(out, rows, sym, kind, O), plan


def _projected(torch, prov, X, sym, k, sketch, seq, memory, act, bar_on, last):
    sel = prov.sel
    s = sel.tensors[0].element_size()
    O_eff = prov.O_eff
    n_all = X[0].shape[0] + (0 if sym else X[1].shape[0])
    if prov.method == "linear":
        fixed = _linear_transient(prov, act) + 2 * O_eff * k * s
        per_row = 2 * O_eff * s
    else:  # whole tensors are differentiated, then sliced
        memory = FALLBACK_SHARE * memory
        fixed = act * (1 + 2 * O_eff) + 2 * O_eff * k * s + 2 * O_eff * max(sel.sizes) * s
        per_row = 3 * O_eff * s
    from ._empirical_sketch import BLOCK_ROWS
    plan = plan_projection(sel.P, k, max(X[0].shape[0], X[1].shape[0]), memory, s, fixed, per_row, BLOCK_ROWS)
    R, b = plan["rows"], plan["b"]
    blocks = [(r0, min(r0 + R, sel.P)) for r0 in range(0, sel.P, R)]
    sides = [0] if sym else [0, 1]
    feats = [torch.zeros((X[side].shape[0], O_eff, k), dtype=sel.dtype, device=X[0].device) for side in sides]
    chunks = {side: _slices(X[side].shape[0], b) for side in sides}
    total = len(blocks) * sum(len(chunks[side]) for side in sides)
    # buffers reused across blocks and chunks (fresh allocations of this size cost page faults each time)
    S_buf = torch.empty((R, k), dtype=sel.dtype, device=X[0].device)
    G_buf = torch.empty((b * O_eff * R,), dtype=sel.dtype, device=X[0].device) if prov.method == "linear" else None
    with progress_bar(total, bar_on, "projected NTK") as bar:
        for bi, (r0, r1) in enumerate(blocks):
            S = sketch_rows(torch, seq, r0, r1, k, sketch, sel.dtype, X[0].device, out=S_buf[:r1 - r0])
            for side in sides:
                for sl in chunks[side]:
                    B = sl.stop - sl.start
                    buf = None if G_buf is None else G_buf[:B * O_eff * (r1 - r0)].view(B, O_eff, r1 - r0)
                    G, x_last = prov.rows(X[side][sl], r0, r1, out=buf)
                    feats[side][sl].view(B * O_eff, k).addmm_(G.reshape(B * O_eff, r1 - r0), S)
                    if bi == 0:
                        last.put(side, sl, x_last)
                    bar.update(1)
    del S_buf, G_buf
    plan.update(blocks=len(blocks), tiles=total, points=n_all)
    return feats[0], (feats[0] if sym else feats[1]), plan


# --------------------------------------------------------------------------- the public function
def empirical_ntk(model, X1, X2=None, *, kind="full", params=None, k=None, sketch="gaussian", per_output=False,
                  random_state=None, method="auto", return_type="auto", memory=None, progress=None):
    r"""Empirical neural tangent kernel of a PyTorch model, exactly or projected, within a memory budget.

    With :math:`J_c(x) = \partial f_c(x) / \partial\theta \in \mathbb R^P` the
    gradient of output c (of O, the model output flattened) with respect to
    the P selected parameters:

    * ``kind="full"``: :math:`\Theta_{cc'}(x, x') = J_c(x) \cdot J_{c'}(x')`,
      shape ``(N1, N2, O, O)`` (as neural-tangents and the ``torch.func``
      tutorial: ``kernel[i, j]`` is the O x O block of points i and j);
      ``EmpiricalNTK.as_matrix()`` gives the ``(N1*O, N2*O)`` matrix with row
      ``i*O + c``.
    * ``kind="trace"``: :math:`\tfrac1O \sum_c \Theta_{cc}(x, x')`, shape
      ``(N1, N2)``: the trace **divided by O** (the mean over outputs), so
      that :math:`K \otimes I_O` is the best approximation of
      :math:`\Theta` of that form in Frobenius norm; multiply by O for the
      plain trace.
    * ``kind="pntk"``: the pNTK ("sum of logits", Mohamadi, Bae & Sutherland,
      ICML 2023): the NTK of :math:`\tfrac{1}{\sqrt O}\sum_c f_c`, that is
      :math:`\tfrac1O \sum_{c, c'} \Theta_{cc'}(x, x')`, shape ``(N1, N2)``;
      one backward pass per point instead of O.
    * ``kind="projected"``: gradients projected to k dimensions by a seeded
      sketch S (P x k, entries N(0, 1/k) or +-1/sqrt(k)), the TRAK /
      projected-NTK approach: features :math:`\phi(x) = S^\top \nabla_\theta
      \tfrac{1}{\sqrt O}\sum_c f_c(x)` (``(N, k)``, the pNTK's gradient), or
      with ``per_output=True`` :math:`\phi_c(x) = S^\top J_c(x)`
      (``(N, O, k)``), and the kernel :math:`\phi(x) \cdot \phi(x')` (resp.
      :math:`\tfrac1O \sum_c \phi_c(x) \cdot \phi_c(x')`), an unbiased
      estimate of the pNTK (resp. of the trace kernel above) with relative
      error of order :math:`1/\sqrt k`. S is applied block of rows by block
      of rows, regenerated from the seed, so neither the N x P gradients
      nor, when it does not fit, the P x k sketch exist at once.

    How: when every selected parameter is the weight or bias of an
    ``nn.Linear`` layer used once per forward (MLPs; any network whose
    other parameters are not selected), the gradient of a layer is the
    outer product :math:`g_c a^\top` of its input a and the back-propagated
    signal :math:`g_c = \partial f_c / \partial z`, so
    :math:`\Theta_{cc'}(x, x') = \sum_l (a_l \cdot a_l' + 1)(g_{l,c} \cdot g'_{l,c'})`
    (the 1 for the bias) is a sum of products of small Gram matrices and no
    P-dimensional gradient is formed (``method="linear"``). This path is
    checked once against plain autograd on the first point, unless the
    model is an ``nn.Sequential`` of ``nn.Linear`` layers and elementwise
    activations only, where it holds by construction. Other models use
    ``torch.func`` (``vmap(jacrev(functional_call))``, by chunks of points
    and groups of parameter tensors), or a plain per-point autograd loop
    when ``vmap`` cannot run the model. Everything runs on the device of the
    model's parameters, in their dtype (float64 models give float64 kernels
    exact to rounding).

    Parameters
    ----------
    model : torch.nn.Module
        Maps a batch of n points to one floating-point tensor with n rows
        (flattened to O outputs per point). BatchNorm and Dropout layers must
        be in eval mode (``model.eval()``); the rows must not interact (as in
        eval mode). Not modified (forward hooks are added during the call and
        removed).
    X1 : array or torch.Tensor of shape (N1, ...)
        Points, one per row, in the model's input units. NumPy arrays are
        moved to the model's device; a tensor must already be there.
        Floating-point inputs are cast to the model's dtype; integer inputs
        (token ids) are passed as they are.
    X2 : array or torch.Tensor of shape (N2, ...), optional
        Second set of points; None: ``X2 = X1`` (the symmetric kernel, half
        the work).
    kind : {"full", "trace", "pntk", "projected"}, default "full"
        Which kernel (above).
    params : None, str, list of str or callable, default None
        The parameters theta: None, those with ``requires_grad=True``; names
        from ``model.named_parameters()``; or a filter
        ``params(name, parameter) -> bool``. The order of theta (and of the
        sketch's rows) is always the model's.
    k : int >= 1, optional
        Sketch dimension (number of features) of ``kind="projected"``, which
        requires it; must be None for the other kinds.
    sketch : {"gaussian", "rademacher"}, default "gaussian"
        Entries of S (``kind="projected"`` only): N(0, 1/k), or +-1/sqrt(k).
    per_output : bool, default False
        ``kind="projected"`` only: project every output's gradient (O times
        the work) instead of the gradient of the scaled sum of outputs.
    random_state : None, int, SeedSequence or Generator, optional
        Seeds the sketch (``kind="projected"`` only). The same seed gives the
        same S whatever the memory budget, chunking or device.
    method : {"auto", "linear", "torch.func", "autograd"}, default "auto"
        Force a path; "auto" takes "linear" when the model allows it, else
        "torch.func", else "autograd". "linear" on a model that does not
        allow it is an error saying why.
    return_type : {"auto", "numpy", "torch"}, default "auto"
        Arrays of the result: "auto" gives torch tensors (on the device) when
        ``X1`` is a torch tensor on a GPU or other non-CPU device, NumPy
        arrays otherwise.
    memory : int or str, optional
        Budget in bytes ("2GB") for the temporaries of the call (chunks of
        gradients, layer signals, sketch blocks, kernel tiles); default
        ``kernelkit.options(memory=...)``. The result and the inputs are not
        counted. Chunk sizes are planned from per-point estimates (autograd's
        saved tensors measured on one point); the fallback paths plan against
        70% of the budget (``vmap(jacrev)`` temporaries are estimated coarsely
        and the allocator keeps some freed memory resident). At least one
        point, one parameter tensor's gradient and one block of 256 sketch
        rows are always used, whatever the budget.
    progress : bool, optional
        Show a progress bar over chunks (default ``kernelkit.options(progress=...)``).

    Returns
    -------
    EmpiricalNTK
        ``.kernel``; ``.features1`` / ``.features2`` (projected gradients);
        ``.last_layer_features1`` / ``2`` (the input of a final
        ``nn.Linear``); ``.method``; ``.plan``.

    Raises
    ------
    InvalidTypeError, InvalidValueError
        A model that is not a Module, has no (selected) parameters, or has
        BatchNorm / Dropout in training mode; points the model cannot take;
        non-finite inputs; an unknown ``kind``, ``method`` or ``sketch``;
        ``k`` missing for (or given without) ``kind="projected"``.
    ImportError
        torch is not installed (``pip install 'kernelkit[torch]'``).

    Examples
    --------
    >>> import torch
    >>> from kernelkit.ntk import empirical_ntk
    >>> net = torch.nn.Sequential(torch.nn.Linear(3, 16), torch.nn.Tanh(), torch.nn.Linear(16, 2)).double()
    >>> X = torch.randn(5, 3, dtype=torch.float64)
    >>> ntk = empirical_ntk(net, X)
    >>> ntk.kernel.shape, ntk.method
    ((5, 5, 2, 2), 'linear')
    >>> empirical_ntk(net, X, kind="projected", k=64, random_state=0).features1.shape
    (5, 64)
    """
    torch = _torch()
    check_param(model, "model", OWNER, InstanceOf(torch.nn.Module, "a torch.nn.Module"))
    kind = check_param(kind, "kind", OWNER, OneOf(*KINDS))
    method = check_param(method, "method", OWNER, OneOf(*METHODS))
    return_type = check_param(return_type, "return_type", OWNER, OneOf(*RETURN_TYPES))
    sketch = check_param(sketch, "sketch", OWNER, OneOf(*SKETCHES))
    per_output = check_param(per_output, "per_output", OWNER, OneOf(False, True))
    seq = None
    if kind == "projected":
        k = check_param(k, "k", OWNER, Integral(low=1), hint="kind='projected' needs the sketch dimension k.")
        seq = seed_sequence(random_state, OWNER)
    else:
        if k is not None:
            raise param_error("k", OWNER, "None unless kind='projected'", k)
        if per_output:
            raise param_error("per_output", OWNER, "False unless kind='projected'", per_output)
    opts = get_options(memory=memory, progress=progress)
    sel = _select(torch, model, params)
    _check_eval_mode(torch, model)
    T1 = _points(torch, X1, "X1", sel)
    sym = X2 is None or X2 is X1
    T2 = T1 if sym else _points(torch, X2, "X2", sel)
    as_torch = return_type == "torch" or (return_type == "auto" and isinstance(X1, torch.Tensor)
                                          and X1.device.type != "cpu")
    mode = "sum" if kind == "pntk" or (kind == "projected" and not per_output) else "each"

    # one forward/backward on the first point: the outputs, autograd's memory per point, and whether the
    # per-layer nn.Linear path holds (structure, and gradients equal to autograd's)
    layers, reason = _g.linear_structure(torch, model, sel) if method in ("auto", "linear") else (None, None)
    try:
        pr = _g.probe(torch, model, sel, T1[:1], layers,
                      verify=layers is not None and not _g.plain_sequential(torch, model))
    except Exception as exc:
        raise _model_error("X1", X1, T1, exc) from exc
    O = _n_outputs(torch, model, pr.output)
    if not sym:
        try:
            with torch.no_grad():
                y2 = model(T2[:1])
        except Exception as exc:
            raise _model_error("X2", X2, T2, exc) from exc
        if _n_outputs(torch, model, y2) != O:
            raise param_error("X2", OWNER, f"points for which the model has as many outputs as for X1 ({O})", X2,
                              shown=f"points with {y2[0].numel()} outputs")
    act = pr.act_bytes
    if layers is not None and not pr.linear_ok:
        layers, reason = None, ("its per-layer gradients disagree with autograd on the first point (a weight "
                                "used outside its layer, a layer used twice, or layer inputs that mix points)")
    if method == "linear" and layers is None:
        raise param_error("method", OWNER, "'auto', 'torch.func' or 'autograd' for this model", method,
                          hint=f"The per-layer path needs every selected parameter to be the weight or bias "
                               f"of a plain nn.Linear used once per forward; here {reason}.")
    candidates = (["linear"] if layers is not None else []) + ["torch.func", "autograd"]
    if method != "auto":
        candidates = [method]
    if candidates[0] == "torch.func" and method == "auto":
        try:
            _g.FuncGrads(torch, model, sel, O, mode).tensor_jacobians(T1[:1], [0])
        except Exception:  # vmap cannot run this model: the plain loop
            candidates = ["autograd"]

    X = (T1, T2)
    M = opts.memory
    for name in candidates:
        last = _LastLayer(torch, T1.shape[0], T2.shape[0])
        try:
            if name == "linear":
                prov = _g.LinearGrads(torch, model, sel, layers, O, mode)
            else:
                prov = (_g.FuncGrads if name == "torch.func" else _g.LoopGrads)(torch, model, sel, O, mode)
            F1 = F2 = K = None
            if kind == "projected":
                F1, F2, plan = _projected(torch, prov, X, sym, k, sketch, seq, M, act, opts.progress, last)
                if not per_output:
                    F1 = F1[:, 0]
                    F2 = F1 if sym else F2[:, 0]
            elif name == "linear":
                K, plan = _kernel_linear(torch, prov, X, sym, kind, O, M, act, opts.progress, last)
            else:
                K, plan = _kernel_jacobian(torch, prov, X, sym, kind, O, M, act, opts.progress)
        except _g.StructureError as exc:
            if method == "linear":
                raise param_error("method", OWNER, "'auto', 'torch.func' or 'autograd' for this model", method,
                                  hint=f"The per-layer structure did not hold on a chunk of points: {exc}.") from None
            continue
        break
    if name != "linear" and last.arrays[0] is None and _g.last_layer_inputs(torch, model, T1[:1]) is not None:
        b = max(1, min(T1.shape[0], int(M // max(1, 4 * act))))
        for side in ((0,) if sym else (0, 1)):
            for sl in _slices(X[side].shape[0], b):
                last.put(side, sl, _g.last_layer_inputs(torch, model, X[side][sl]))
    L1 = last.arrays[0]
    L2 = L1 if sym else last.arrays[1]
    if sym and F1 is not None:
        F2 = F1

    def out(a):
        if a is None or as_torch:
            return a
        return a.detach().cpu().numpy()

    F1o = out(F1)
    L1o = out(L1)
    plan["memory"] = int(M)
    return EmpiricalNTK(kind, out(K), F1o, F1o if sym else out(F2), L1o, L1o if sym else out(L2), name, sel.P, O,
                        per_output, plan)
