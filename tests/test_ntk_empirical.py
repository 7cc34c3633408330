"""empirical_ntk: every path against a plain per-sample autograd loop, chunking, the sketch, and bad input.

The reference (``reference_jacobian``) is the obvious computation: for each
point, one forward pass of the model on that point alone and one
``torch.autograd.grad`` per output, giving J (N, O, P); the kernels are then
``einsum`` contractions of J. Float64 paths must match it to 1e-10
(relative to the largest entry), float32 paths to 1e-4.
"""

import math
import os
import subprocess
import sys

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from kernelkit import options  # noqa: E402
from kernelkit.exceptions import InvalidTypeError, InvalidValueError  # noqa: E402
from kernelkit.ntk import empirical_ntk  # noqa: E402
from kernelkit.ntk._empirical import EmpiricalNTK, plan_projection, plan_tiles  # noqa: E402
from kernelkit.ntk._empirical_sketch import BLOCK_ROWS, sketch_rows  # noqa: E402

cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")


# --------------------------------------------------------------------------- the reference
def reference_jacobian(model, X, names=None):
    """(N, O, P): per point, a forward pass on that point alone and one autograd.grad per output."""
    params = [p for n, p in model.named_parameters() if names is None or n in names]
    rows = []
    for x in X:
        y = model(x[None]).reshape(-1)
        per_output = []
        for c in range(y.numel()):
            g = torch.autograd.grad(y[c], params, retain_graph=True, allow_unused=True)
            per_output.append(torch.cat([(torch.zeros_like(p) if gi is None else gi).reshape(-1)
                                         for gi, p in zip(g, params)]))
        rows.append(torch.stack(per_output))
    return torch.stack(rows).detach()


def reference_kernel(J1, J2, kind):
    O = J1.shape[1]
    if kind == "full":
        return torch.einsum("iap,jbp->ijab", J1, J2).numpy()
    if kind == "trace":
        return (torch.einsum("iap,jap->ij", J1, J2) / O).numpy()
    s1, s2 = J1.sum(1) / math.sqrt(O), J2.sum(1) / math.sqrt(O)
    return (s1 @ s2.T).numpy()


def assert_close(got, ref, rtol):
    got, ref = np.asarray(got), np.asarray(ref)
    assert got.shape == ref.shape
    err = np.abs(got - ref).max() / np.abs(ref).max()
    assert err <= rtol, f"relative error {err:.3g} > {rtol:g}"


# --------------------------------------------------------------------------- models
def mlp(dtype=torch.float64, seed=0, widths=(5, 7, 6, 3), act=torch.nn.Tanh):
    torch.manual_seed(seed)
    layers = []
    for a, b in zip(widths[:-1], widths[1:]):
        layers += [torch.nn.Linear(a, b), act()]
    return torch.nn.Sequential(*layers[:-1]).to(dtype).eval()


def cnn(dtype=torch.float64, seed=0):
    """Conv + BatchNorm (non-trivial running statistics) + ReLU + Dropout + Linear, in eval mode."""
    torch.manual_seed(seed)
    net = torch.nn.Sequential(torch.nn.Conv2d(1, 3, 3), torch.nn.BatchNorm2d(3), torch.nn.ReLU(),
                              torch.nn.Dropout(0.3), torch.nn.Flatten(), torch.nn.Linear(3 * 4 * 4, 3))
    net[1].running_mean.uniform_(-0.5, 0.5)
    net[1].running_var.uniform_(0.5, 2.0)
    with torch.no_grad():
        net[1].weight.uniform_(0.5, 1.5)
        net[1].bias.uniform_(-0.5, 0.5)
    return net.to(dtype).eval()


def mlp_bn_dropout(dtype=torch.float64, seed=0):
    torch.manual_seed(seed)
    net = torch.nn.Sequential(torch.nn.Linear(4, 6), torch.nn.BatchNorm1d(6), torch.nn.ReLU(), torch.nn.Dropout(0.5),
                              torch.nn.Linear(6, 5), torch.nn.Tanh(), torch.nn.Linear(5, 2))
    net[1].running_mean.uniform_(-0.5, 0.5)
    net[1].running_var.uniform_(0.5, 2.0)
    return net.to(dtype).eval()


def points(n, shape, dtype=torch.float64, seed=1):
    g = torch.Generator().manual_seed(seed)
    return torch.randn((n,) + tuple(shape), generator=g, dtype=dtype)


KINDS = ("full", "trace", "pntk")


# --------------------------------------------------------------------------- exactness, float64
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("method", ["auto", "torch.func", "autograd"])
def test_mlp_matches_autograd_loop(kind, method):
    net = mlp()
    X1, X2 = points(7, (5,)), points(4, (5,), seed=2)
    J1, J2 = reference_jacobian(net, X1), reference_jacobian(net, X2)
    sym = empirical_ntk(net, X1, kind=kind, method=method)
    cross = empirical_ntk(net, X1.numpy(), X2.numpy(), kind=kind, method=method)
    assert sym.method == ("linear" if method == "auto" else method)
    assert_close(sym.kernel, reference_kernel(J1, J1, kind), 1e-10)
    assert_close(cross.kernel, reference_kernel(J1, J2, kind), 1e-10)
    assert sym.kernel.dtype == np.float64 and sym.n_params == J1.shape[2] and sym.n_outputs == 3


@pytest.mark.parametrize("kind", KINDS)
def test_cnn_batchnorm_dropout_eval_uses_fallback_and_matches(kind):
    net = cnn()
    X1, X2 = points(5, (1, 6, 6)), points(3, (1, 6, 6), seed=3)
    J1, J2 = reference_jacobian(net, X1), reference_jacobian(net, X2)
    res = empirical_ntk(net, X1, X2, kind=kind)
    assert res.method == "torch.func"
    assert_close(res.kernel, reference_kernel(J1, J2, kind), 1e-10)
    loop = empirical_ntk(net, X1, X2, kind=kind, method="autograd")
    assert_close(loop.kernel, reference_kernel(J1, J2, kind), 1e-10)
    # the last layer is an nn.Linear: its input is returned
    np.testing.assert_allclose(res.last_layer_features2, net[:5](X2).detach().numpy(), rtol=1e-13)


@pytest.mark.parametrize("kind", KINDS)
def test_mlp_with_batchnorm_dropout(kind):
    net = mlp_bn_dropout()
    X = points(6, (4,))
    J = reference_jacobian(net, X)
    res = empirical_ntk(net, X, kind=kind)
    assert res.method == "torch.func"  # BatchNorm parameters are not nn.Linear parameters
    assert_close(res.kernel, reference_kernel(J, J, kind), 1e-10)
    # with only the nn.Linear parameters selected the per-layer path applies around the BatchNorm
    names = [n for n, _ in net.named_parameters() if not n.startswith("1.")]
    sub = empirical_ntk(net, X, kind=kind, params=names)
    assert sub.method == "linear"
    Js = reference_jacobian(net, X, names)
    assert_close(sub.kernel, reference_kernel(Js, Js, kind), 1e-10)


@pytest.mark.parametrize("method", ["auto", "torch.func"])
def test_params_subset_by_names_and_filter(method):
    net = mlp()
    X = points(5, (5,))
    names = ["0.bias", "2.weight", "4.bias"]
    J = reference_jacobian(net, X, names)
    by_name = empirical_ntk(net, X, params=names, method=method)
    by_filter = empirical_ntk(net, X, params=lambda n, p: n in names, method=method)
    assert by_name.n_params == J.shape[2] == 7 + 6 * 7 + 3
    assert_close(by_name.kernel, reference_kernel(J, J, "full"), 1e-10)
    assert_close(by_filter.kernel, by_name.kernel, 1e-14)


def test_frozen_parameters_are_left_out_by_default():
    net = mlp()
    net[0].weight.requires_grad_(False)
    X = points(4, (5,))
    names = [n for n, p in net.named_parameters() if p.requires_grad]
    net[0].weight.requires_grad_(True)
    J = reference_jacobian(net, X, names)
    net[0].weight.requires_grad_(False)
    res = empirical_ntk(net, X, kind="trace")
    assert_close(res.kernel, reference_kernel(J, J, "trace"), 1e-10)
    # named explicitly, a frozen parameter is used
    full = empirical_ntk(net, X, kind="trace", params=[n for n, _ in net.named_parameters()])
    net[0].weight.requires_grad_(True)
    Jall = reference_jacobian(net, X)
    assert_close(full.kernel, reference_kernel(Jall, Jall, "trace"), 1e-10)


@pytest.mark.parametrize("kind", KINDS)
def test_float32(kind):
    net32 = mlp(torch.float32)
    net64 = mlp(torch.float64)
    X = points(6, (5,))
    J = reference_jacobian(net64, X)
    for method in ("linear", "torch.func"):
        res = empirical_ntk(net32, X.numpy(), kind=kind, method=method)  # float64 points cast to float32
        assert res.kernel.dtype == np.float32
        assert_close(res.kernel, reference_kernel(J, J, kind), 1e-4)


def test_shared_and_reused_layers_fall_back_and_stay_exact():
    torch.manual_seed(0)
    square = torch.nn.Linear(4, 4)
    reused = torch.nn.Sequential(square, torch.nn.Tanh(), square, torch.nn.Tanh(), torch.nn.Linear(4, 2)).double()

    class Tied(torch.nn.Module):  # the first layer's weight is used again outside its layer
        def __init__(self):
            super().__init__()
            self.a, self.b = torch.nn.Linear(4, 4), torch.nn.Linear(4, 2)

        def forward(self, x):
            h = torch.tanh(self.a(x))
            return self.b(torch.tanh(h @ self.a.weight.T))

    tied = Tied().double()
    X = points(5, (4,))
    for net in (reused, tied):
        J = reference_jacobian(net, X)
        res = empirical_ntk(net, X)
        assert res.method == "torch.func"
        assert_close(res.kernel, reference_kernel(J, J, "full"), 1e-10)
        with pytest.raises(InvalidValueError, match="'method'"):
            empirical_ntk(net, X, method="linear")


def test_plain_sequential_detection_and_nested_sequential():
    """Only Sequentials of plain nn.Linear layers (each once) and elementwise activations skip the gradient
    check of the per-layer path; a nested one gives the reference."""
    from kernelkit.ntk._empirical_grads import plain_sequential
    nn = torch.nn
    torch.manual_seed(0)
    nested = nn.Sequential(nn.Linear(4, 6), nn.GELU(), nn.Sequential(nn.Linear(6, 5), nn.SiLU()),
                           nn.Dropout(0.2), nn.Linear(5, 2)).double().eval()
    assert plain_sequential(torch, nested)
    lin = nn.Linear(3, 3)

    class MyLinear(nn.Linear):
        pass

    for bad in (nn.Sequential(nn.Linear(3, 3), nn.BatchNorm1d(3)), nn.Sequential(lin, nn.ReLU(), lin),
                nn.Sequential(MyLinear(3, 3)), nn.Sequential(nn.Linear(3, 3), nn.PReLU()), mlp_bn_dropout()):
        assert not plain_sequential(torch, bad)
    X = points(5, (4,))
    J = reference_jacobian(nested, X)
    res = empirical_ntk(nested, X, kind="trace")
    assert res.method == "linear"
    assert_close(res.kernel, reference_kernel(J, J, "trace"), 1e-10)


def test_inplace_activation_and_1d_output():
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(3, 8), torch.nn.ReLU(inplace=True), torch.nn.Linear(8, 1),
                              torch.nn.Flatten(0)).double()
    X = points(6, (3,))
    J = reference_jacobian(net, X)
    res = empirical_ntk(net, X, kind="full")
    assert res.method == "linear" and res.kernel.shape == (6, 6, 1, 1)
    assert_close(res.kernel, reference_kernel(J, J, "full"), 1e-10)
    assert res.last_layer_features1 is None  # the output is not an nn.Linear's output (Flatten follows)


def test_integer_inputs_embedding_model():
    torch.manual_seed(0)

    class Bag(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.emb, self.fc = torch.nn.Embedding(10, 4), torch.nn.Linear(4, 2)

        def forward(self, ids):
            return self.fc(torch.tanh(self.emb(ids).mean(1)))

    net = Bag().double()
    ids = torch.randint(0, 10, (5, 3), generator=torch.Generator().manual_seed(0))
    J = reference_jacobian(net, ids)
    res = empirical_ntk(net, ids.numpy(), kind="trace")
    assert res.method == "torch.func"
    assert_close(res.kernel, reference_kernel(J, J, "trace"), 1e-10)
    head = empirical_ntk(net, ids, kind="trace", params=["fc.weight", "fc.bias"])
    Jh = reference_jacobian(net, ids, ["fc.weight", "fc.bias"])
    assert head.method == "linear"
    assert_close(head.kernel, reference_kernel(Jh, Jh, "trace"), 1e-10)


@pytest.mark.parametrize("batched", [True, False])
def test_output_chunks_and_unbatched_backward(monkeypatch, batched):
    """The per-layer path back-propagates outputs in chunks (is_grads_batched), or one by one when the
    backward cannot be batched: both give the reference."""
    from kernelkit.ntk import _empirical_grads as grads
    monkeypatch.setattr(grads.LinearGrads, "OUTPUT_CHUNK", 2)
    init = grads.LinearGrads.__init__

    def patched(self, *a, **kw):
        init(self, *a, **kw)
        self.batched = batched

    monkeypatch.setattr(grads.LinearGrads, "__init__", patched)
    net = mlp(widths=(5, 7, 6, 5))
    X = points(6, (5,))
    J = reference_jacobian(net, X)
    for kind in ("full", "trace"):
        res = empirical_ntk(net, X, kind=kind)
        assert res.method == "linear"
        assert_close(res.kernel, reference_kernel(J, J, kind), 1e-10)


# --------------------------------------------------------------------------- chunking and the budget
@pytest.mark.parametrize("method, memory", [("linear", 6000), ("torch.func", 50_000)])
@pytest.mark.parametrize("kind", KINDS)
def test_tiny_budget_forces_chunks_with_same_values(method, memory, kind):
    if method == "torch.func" and kind == "pntk":
        memory = 16_000  # one output's gradient per point: less memory forces chunks
    net = mlp()
    X1, X2 = points(9, (5,)), points(7, (5,), seed=4)
    big = empirical_ntk(net, X1, X2, kind=kind, method=method)
    small = empirical_ntk(net, X1, X2, kind=kind, method=method, memory=memory)
    assert big.plan["tiles"] == 1 and small.plan["tiles"] > 1 and small.plan["b1"] < 9
    assert small.plan["estimate"] <= memory
    assert_close(small.kernel, big.kernel, 1e-13)
    with options(memory=memory):  # the context option is read too
        ctx = empirical_ntk(net, X1, kind=kind, method=method)
    J1 = reference_jacobian(net, X1)
    assert ctx.plan["tiles"] > 1
    assert_close(ctx.kernel, reference_kernel(J1, J1, kind), 1e-10)
    if method == "torch.func":
        assert small.plan["groups"] > 1  # the parameter tensors are split into groups too


def test_plans_respect_the_budget():
    for memory in (10**4, 10**6, 10**8):
        for n1, n2, sym in ((1000, 1000, True), (500, 3000, False)):
            p = plan_tiles(n1, n2, sym, memory, per_point=400, stored=300, tile=24)
            assert p["estimate"] <= memory and 1 <= p["b2"] <= p["b1"] <= max(n1, n2)
        q = plan_projection(P=10**5, k=128, n=5000, memory=memory * 100, itemsize=8, per_point_fixed=2000,
                            per_point_per_row=16, block_rows=BLOCK_ROWS)
        assert q["estimate"] <= memory * 100 and q["rows"] % BLOCK_ROWS == 0 or q["rows"] == 10**5
    # caching is chosen when everything fits, not otherwise
    assert plan_tiles(100, 100, True, 10**9, 400, 300, 24)["cache"]
    assert not plan_tiles(10**5, 10**5, True, 10**6, 400, 300, 24)["cache"]


# --------------------------------------------------------------------------- projected
def _sketch(P, k, seed, kind="gaussian"):
    return sketch_rows(torch, np.random.SeedSequence(seed), 0, P, k, kind, torch.float64, "cpu")


@pytest.mark.parametrize("method", ["auto", "torch.func", "autograd"])
@pytest.mark.parametrize("per_output", [False, True])
def test_projected_equals_sketched_reference(method, per_output):
    net = mlp()
    X1, X2 = points(6, (5,)), points(3, (5,), seed=5)
    J1, J2 = reference_jacobian(net, X1), reference_jacobian(net, X2)
    S = _sketch(J1.shape[2], 16, 7)
    res = empirical_ntk(net, X1, X2, kind="projected", k=16, random_state=7, method=method, per_output=per_output)
    if per_output:
        F1, F2 = torch.einsum("nop,pk->nok", J1, S), torch.einsum("nop,pk->nok", J2, S)
        K = torch.einsum("iok,jok->ij", F1, F2) / 3
    else:
        F1, F2 = J1.sum(1) / math.sqrt(3) @ S, J2.sum(1) / math.sqrt(3) @ S
        K = F1 @ F2.T
    assert_close(res.features1, F1.numpy(), 1e-10)
    assert_close(res.features2, F2.numpy(), 1e-10)
    assert_close(res.kernel, K.numpy(), 1e-10)


@pytest.mark.parametrize("method, memory", [("linear", 80_000), ("torch.func", 150_000)])
def test_projected_independent_of_budget_and_reproducible(method, memory):
    net = mlp(widths=(5, 40, 30, 3))  # P = 1,453: several 256-row blocks
    X = points(11, (5,))
    big = empirical_ntk(net, X, kind="projected", k=24, random_state=3, method=method)
    small = empirical_ntk(net, X, kind="projected", k=24, random_state=3, method=method, memory=memory)
    assert big.plan["blocks"] == 1 and small.plan["blocks"] > 1 and small.plan["b"] < 11
    assert small.plan["estimate"] <= memory
    assert_close(small.features1, big.features1, 1e-12)
    assert small.features2 is small.features1
    again = empirical_ntk(net, X, kind="projected", k=24, random_state=np.random.SeedSequence(3), method=method)
    np.testing.assert_array_equal(again.features1, big.features1)
    other = empirical_ntk(net, X, kind="projected", k=24, random_state=4, method=method)
    assert np.abs(other.features1 - big.features1).max() > 1e-3


def test_sketch_distribution():
    """Fixed seed: entries of the Gaussian sketch have mean 0 and variance 1/k (4 standard errors);
    Rademacher entries are exactly +-1/sqrt(k), balanced; rows do not depend on the range asked for."""
    k, P = 64, 3000
    S = _sketch(P, k, 11).numpy()
    n = S.size
    assert abs(S.mean()) < 4 * math.sqrt(1 / k / n)
    assert abs(S.var() * k - 1) < 4 * math.sqrt(2 / n)
    R = _sketch(P, k, 11, "rademacher").numpy()
    assert set(np.unique(R * math.sqrt(k)).round(12)) == {-1.0, 1.0}
    assert abs((R > 0).mean() - 0.5) < 4 * math.sqrt(0.25 / n)
    part = sketch_rows(torch, np.random.SeedSequence(11), 300, 1000, k, "gaussian", torch.float64, "cpu").numpy()
    np.testing.assert_array_equal(part, S[300:1000])
    # float32 blocks are drawn in place, float64 ones through a buffer: the same draws
    for lo, hi in ((0, P), (300, 1000)):
        S32 = sketch_rows(torch, np.random.SeedSequence(11), lo, hi, k, "gaussian", torch.float32, "cpu").numpy()
        np.testing.assert_allclose(S32, S[lo:hi], rtol=2e-7, atol=0)
    assert np.abs(np.corrcoef(S[:, 0], S[:, 1])[0, 1]) < 4 / math.sqrt(P)


def test_projected_kernel_estimates_pntk_and_trace():
    """The projected kernel is unbiased: at k = 2048 its relative Frobenius error is near 1/sqrt(k) ~ 0.022
    (fixed seeds; bound 0.1); the errors of the Gaussian and Rademacher sketches are of the same order."""
    net = mlp(widths=(5, 30, 20, 3))
    X = points(8, (5,))
    pntk = empirical_ntk(net, X, kind="pntk").kernel
    trace = empirical_ntk(net, X, kind="trace").kernel
    for sketch in ("gaussian", "rademacher"):
        p = empirical_ntk(net, X, kind="projected", k=2048, sketch=sketch, random_state=0).kernel
        t = empirical_ntk(net, X, kind="projected", k=2048, sketch=sketch, random_state=0, per_output=True).kernel
        assert np.linalg.norm(p - pntk) / np.linalg.norm(pntk) < 0.1
        assert np.linalg.norm(t - trace) / np.linalg.norm(trace) < 0.1
    low = empirical_ntk(net, X, kind="projected", k=8, random_state=0).kernel
    assert np.linalg.norm(low - pntk) / np.linalg.norm(pntk) > 0.05  # k = 8 is visibly worse: the test can fail


# --------------------------------------------------------------------------- results
def test_result_layout_and_types():
    net = mlp()
    X1, X2 = points(4, (5,)), points(3, (5,), seed=6)
    res = empirical_ntk(net, X1, X2)
    assert isinstance(res, EmpiricalNTK) and isinstance(res.kernel, np.ndarray)
    M = res.as_matrix()
    assert M.shape == (12, 9)
    assert M[2 * 3 + 1, 1 * 3 + 2] == res.kernel[2, 1, 1, 2]
    t = empirical_ntk(net, X1, X2, return_type="torch")
    assert isinstance(t.kernel, torch.Tensor) and isinstance(t.as_matrix(), torch.Tensor)
    assert torch.equal(t.as_matrix(), torch.from_numpy(M))
    assert isinstance(t.last_layer_features1, torch.Tensor)
    np.testing.assert_allclose(res.last_layer_features1, net[:4](X1).detach().numpy(), rtol=1e-14)
    assert res.features1 is None and "linear" in repr(res)
    proj = empirical_ntk(net, X1, kind="projected", k=5, random_state=0, return_type="torch")
    assert isinstance(proj.features1, torch.Tensor) and proj.kernel.shape == (4, 4)


def test_inputs_and_model_are_left_unchanged():
    net = mlp_bn_dropout()
    before = {n: t.clone() for n, t in net.state_dict().items()}
    X = points(5, (4,)).numpy()
    X_copy = X.copy()
    for kind in ("full", "projected"):
        empirical_ntk(net, X, kind=kind, k=4 if kind == "projected" else None, random_state=0, progress=True)
    np.testing.assert_array_equal(X, X_copy)
    for n, t in net.state_dict().items():
        assert torch.equal(t, before[n]), n
    assert not any(m._forward_hooks for m in net.modules())
    assert not net.training


# --------------------------------------------------------------------------- bad input
def test_errors_name_the_parameter():
    net = mlp()
    X = points(4, (5,))
    with pytest.raises(InvalidTypeError, match="'model' parameter of empirical_ntk must be a torch.nn.Module"):
        empirical_ntk(lambda x: x, X)
    with pytest.raises(InvalidValueError, match="'model'.*at least one parameter.*no parameters"):
        empirical_ntk(torch.nn.Tanh(), X)
    with pytest.raises(InvalidValueError, match="'X1'.*model accepts.*shape \\(4, 3\\).*mat1 and mat2"):
        empirical_ntk(net, X[:, :3])
    with pytest.raises(InvalidValueError, match="'X2'.*model accepts"):
        empirical_ntk(net, X, X[:, :2])
    with pytest.raises(InvalidValueError, match="'kind'.*one of \\{'full', 'trace', 'pntk', 'projected'\\}.*'diag'"):
        empirical_ntk(net, X, kind="diag")
    with pytest.raises(InvalidTypeError, match="'k'.*needs the sketch dimension"):
        empirical_ntk(net, X, kind="projected")
    with pytest.raises(InvalidValueError, match="'k'.*int >= 1"):
        empirical_ntk(net, X, kind="projected", k=0)
    with pytest.raises(InvalidValueError, match="'k'.*None unless kind='projected'"):
        empirical_ntk(net, X, kind="full", k=10)
    with pytest.raises(InvalidValueError, match="'per_output'"):
        empirical_ntk(net, X, kind="trace", per_output=True)
    with pytest.raises(InvalidValueError, match="'sketch'"):
        empirical_ntk(net, X, kind="projected", k=3, sketch="srht")
    with pytest.raises(InvalidValueError, match="'method'"):
        empirical_ntk(net, X, method="jvp")
    with pytest.raises(InvalidValueError, match="'params'.*unknown name.*'nope'"):
        empirical_ntk(net, X, params=["0.weight", "nope"])
    with pytest.raises(InvalidValueError, match="'params'.*selects at least one"):
        empirical_ntk(net, X, params=lambda n, p: False)
    with pytest.raises(InvalidTypeError, match="'params'"):
        empirical_ntk(net, X, params=3)
    bad = X.clone()
    bad[2, 1] = float("nan")
    with pytest.raises(InvalidValueError, match="'X1'.*finite.*nan at index \\(2, 1\\)"):
        empirical_ntk(net, bad)
    with pytest.raises(InvalidValueError, match="'X1'.*at least one point"):
        empirical_ntk(net, np.zeros((0, 5)))
    with pytest.raises(InvalidTypeError, match="'X1'"):
        empirical_ntk(net, np.array([["a"] * 5]))
    with pytest.raises(InvalidValueError, match="'memory' option"):
        empirical_ntk(net, X, memory=-1)
    frozen = mlp()
    for p in frozen.parameters():
        p.requires_grad_(False)
    with pytest.raises(InvalidValueError, match="'params'.*requires grad"):
        empirical_ntk(frozen, X)


def test_training_mode_batchnorm_or_dropout_is_refused():
    net = mlp_bn_dropout().train()
    with pytest.raises(InvalidValueError, match="'model'.*eval mode.*BatchNorm1d '1' in training mode"):
        empirical_ntk(net, points(3, (4,)))
    net.eval()
    net[3].train()
    with pytest.raises(InvalidValueError, match="Dropout '3'"):
        empirical_ntk(net, points(3, (4,)))


def test_bad_model_output():
    class Pair(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = torch.nn.Linear(2, 2)

        def forward(self, x):
            return self.fc(x), x

    with pytest.raises(InvalidValueError, match="'model'.*one floating-point tensor.*tuple"):
        empirical_ntk(Pair(), np.ones((3, 2)))


def test_import_does_not_import_torch_and_missing_torch_is_one_line():
    code = ("import sys; import kernelkit, kernelkit.ntk; assert 'torch' not in sys.modules; "
            "sys.modules['torch'] = None\n"
            "try:\n    kernelkit.ntk.empirical_ntk(None, [[1.0]])\n"
            "except ImportError as e:\n    print(e)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    assert out.stdout.strip() == "empirical_ntk needs PyTorch: pip install 'kernelkit[torch]'"


# --------------------------------------------------------------------------- GPU
@cuda
@pytest.mark.parametrize("kind", ["full", "pntk", "projected"])
@pytest.mark.parametrize("net_fn, shape", [(mlp, (5,)), (cnn, (1, 6, 6))])
def test_cuda_matches_cpu(kind, net_fn, shape):
    net = net_fn()
    X = points(6, shape)
    k = 8 if kind == "projected" else None
    cpu = empirical_ntk(net, X, kind=kind, k=k, random_state=0)
    gpu = empirical_ntk(net.cuda(), X.cuda(), kind=kind, k=k, random_state=0)
    assert isinstance(gpu.kernel, torch.Tensor) and gpu.kernel.device.type == "cuda"
    assert gpu.method == cpu.method
    assert_close(gpu.kernel.cpu().numpy(), cpu.kernel, 1e-10)
    as_np = empirical_ntk(net, X.cuda(), kind=kind, k=k, random_state=0, return_type="numpy")
    assert isinstance(as_np.kernel, np.ndarray)


@cuda
def test_cuda_tensor_for_a_cpu_model_is_refused():
    with pytest.raises(InvalidValueError, match="'X1'.*model's device"):
        empirical_ntk(mlp(), points(3, (5,)).cuda())
