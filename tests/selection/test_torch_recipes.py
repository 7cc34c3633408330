"""The torch recipes of kernelkit.selection: gradient_sketch (bmdal's tensor sketch) and kecor_select."""

import os
import sys

import numpy as np
import pytest

from kernelkit.exceptions import InvalidTypeError, InvalidValueError
from kernelkit.selection import select_batch

torch = pytest.importorskip("torch")

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _dense as R  # noqa: E402


def _mlp(d=3, w=16, out=1, seed=0):
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Linear(d, w), torch.nn.Tanh(), torch.nn.Linear(w, w), torch.nn.Tanh(),
                               torch.nn.Linear(w, out)).double().eval()


def _grad_kernel(net, X):
    """Explicit gradient kernel of sum_c f_c: one autograd gradient per point, all parameters."""
    G = []
    for x in torch.as_tensor(X):
        net.zero_grad()
        net(x[None]).sum().backward()
        G.append(torch.cat([p.grad.reshape(-1) for p in net.parameters()]).clone())
    net.zero_grad()
    G = torch.stack(G).numpy()
    return G @ G.T


def test_gradient_sketch_explicit_formula_and_unbiased():
    from kernelkit.selection import gradient_sketch
    net = _mlp(out=2)
    X = np.random.default_rng(0).normal(size=(9, 3))
    K = _grad_kernel(net, X)
    # with given matrices the features are the stated formula: sum_l (a~ R_l) * (g Q_l) / sqrt(k)
    rng = np.random.default_rng(1)
    lin = [m for m in net if isinstance(m, torch.nn.Linear)]
    mats = [(rng.standard_normal((m.in_features + 1, 5)), rng.standard_normal((m.out_features, 5))) for m in lin]
    F = gradient_sketch(net, X, 5, sketch_matrices=mats, batch_size=4, sketch="gaussian")
    assert F.shape == (9, 5) and F.dtype == np.float64
    # unbiased: a 60,000-dim sketch (relative sd about 1% per entry) is within 5% of max |K|; 64 dims are not
    F = gradient_sketch(net, X, 60_000, random_state=0, sketch="gaussian")
    assert np.abs(F @ F.T - K).max() < 0.05 * np.abs(K).max()
    F = gradient_sketch(net, X, 4, random_state=0, sketch="gaussian")
    assert np.abs(F @ F.T - K).max() > 0.05 * np.abs(K).max()
    np.testing.assert_array_equal(gradient_sketch(net, X, 8, random_state=3, sketch="gaussian"),
                                  gradient_sketch(net, X, 8, random_state=3, sketch="gaussian"))
    for p in net.parameters():
        assert p.grad is None


def test_gradient_sketch_exact_per_layer():
    # k = 1 with R = e_i, Q = e_j columns picks one entry of each layer's gradient outer product g a~^T
    from kernelkit.selection import gradient_sketch
    net = _mlp()
    X = np.random.default_rng(2).normal(size=(4, 3))
    lin = [m for m in net if isinstance(m, torch.nn.Linear)]
    mats = [(np.zeros((m.in_features + 1, 1)), np.zeros((m.out_features, 1))) for m in lin]
    mats[1][0][2, 0] = 1.0                      # input 2 of layer 1
    mats[1][1][5, 0] = 1.0                      # output 5 of layer 1
    F = gradient_sketch(net, X, 1, sketch_matrices=mats, sketch="gaussian")
    for i, x in enumerate(torch.as_tensor(X)):
        net.zero_grad()
        net(x[None]).sum().backward()
        assert F[i, 0] == pytest.approx(lin[1].weight.grad[5, 2].item(), rel=1e-12)
    net.zero_grad()


def test_gradient_sketch_bad_input():
    from kernelkit.selection import gradient_sketch
    with pytest.raises(InvalidTypeError, match="model"):
        gradient_sketch(lambda x: x, np.zeros((2, 3)), 4)
    with pytest.raises(InvalidValueError, match="'k'"):
        gradient_sketch(_mlp(), np.zeros((2, 3)), 0)
    with pytest.raises(InvalidTypeError, match="model"):
        gradient_sketch(torch.nn.Tanh(), np.zeros((2, 3)), 4)


def test_kecor_is_proxy_ntk_then_coding_rate():
    from kernelkit.ntk import empirical_ntk
    from kernelkit.selection import kecor_select, prediction_entropy
    rng = np.random.default_rng(4)
    P, T = rng.normal(size=(120, 6)), rng.normal(size=(20, 6))
    y = rng.integers(0, 3, 20)
    probs = rng.dirichlet(np.ones(3), size=120)
    kw = dict(train=T, train_targets=y, pool_probs=probs, hidden=(16, 8), n_steps=5, sketch_dim=32, sigma=0.5,
              entropy_weight=0.3, random_state=7)
    idx, gains, model = kecor_select(P, 6, return_gains=True, return_model=True, **kw)
    np.testing.assert_array_equal(idx, kecor_select(P, 6, **kw))            # deterministic given the seed
    # the same by hand: the returned proxy's sketched pNTK features, coding rate with the entropy term
    s_init, s_sketch = np.random.SeedSequence(7).spawn(2)
    F = empirical_ntk(model, np.concatenate([P, T]).astype(np.float32), kind="projected", k=32,
                      random_state=s_sketch, return_type="numpy").features1
    ref, ref_g = select_batch(F[:120], 6, method="coding_rate", sigma=0.5, entropy=prediction_entropy(probs),
                              entropy_weight=0.3, return_gains=True)
    np.testing.assert_array_equal(idx, ref)
    np.testing.assert_allclose(gains, ref_g, rtol=1e-6)
    # and against the explicit greedy logdet on the dense kernel of those features
    K = F[:120].astype(np.float64) @ F[:120].astype(np.float64).T
    np.testing.assert_array_equal(idx, R.greedy_logdet(K, 6, 0.5, extra=0.3 * prediction_entropy(probs))[0])
    assert [type(m).__name__ for m in model] == ["Linear", "SiLU", "Linear", "SiLU", "Linear"]


def test_kecor_regression_and_conditioning():
    from kernelkit.selection import kecor_select
    rng = np.random.default_rng(5)
    P, T = rng.normal(size=(80, 4)), rng.normal(size=(10, 4))
    y = rng.normal(size=10)
    a = kecor_select(P, 5, train=T, train_targets=y, hidden=(8,), n_steps=3, sketch_dim=16, random_state=0)
    b = kecor_select(P, 5, train=T, train_targets=y, hidden=(8,), n_steps=3, sketch_dim=16, random_state=0,
                     condition_on_train=True)
    assert len(set(a)) == 5 and len(set(b)) == 5
    with pytest.raises(InvalidValueError, match="pool_probs"):
        kecor_select(P, 5, train=T, train_targets=y, pool_probs="proxy", n_steps=1, hidden=(4,), sketch_dim=4)
    with pytest.raises(InvalidValueError, match="train_targets"):
        kecor_select(P, 5, train=T, train_targets=y[:3], n_steps=1, hidden=(4,), sketch_dim=4)
    with pytest.raises(InvalidValueError, match="batch_size"):
        kecor_select(P, 81, train=T, train_targets=y, n_steps=1, hidden=(4,), sketch_dim=4)


def test_empirical_ntk_result_as_pool():
    from kernelkit.ntk import empirical_ntk
    net = _mlp(out=2)
    X = np.random.default_rng(6).normal(size=(25, 3))
    res = empirical_ntk(net, X, kind="projected", k=12, random_state=0)
    np.testing.assert_array_equal(select_batch(res, 5, method="lcmd"), select_batch(res.features1, 5, method="lcmd"))
    with pytest.raises(InvalidTypeError, match="pool.*projected"):
        select_batch(empirical_ntk(net, X[:3], kind="trace"), 2)       # not projected: not features


# --------------------------------------------------------------------------- the Hadamard sketch
def _explicit_layers(net, X):
    """Per point and layer, (a_l, g_l) by an explicit numpy forward / backward of the Tanh MLP (float64)."""
    lin = [m for m in net if isinstance(m, torch.nn.Linear)]
    W = [m.weight.detach().numpy() for m in lin]
    b = [m.bias.detach().numpy() for m in lin]
    a, zs, acts = X, [], [X]
    for i in range(len(W)):
        z = a @ W[i].T + b[i]
        zs.append(z)
        a = np.tanh(z) if i < len(W) - 1 else z
        acts.append(a)
    g = np.ones_like(zs[-1])
    gs = [g]
    for i in range(len(W) - 1, 0, -1):
        g = (g @ W[i]) * (1 - np.tanh(zs[i - 1]) ** 2)
        gs.insert(0, g)
    return [(acts[i], gs[i]) for i in range(len(W))]


def _sylvester(p):
    H = np.ones((1, 1))
    while len(H) < p:
        H = np.block([[H, H], [H, -H]])
    return H


def _explicit_factor(rng, d, k):
    """The d x k matrix of S(a) = [H_p D_1 a, ..., H_p D_b a]_J from the documented draws of ``rng``."""
    p = 1 << max(0, (d - 1).bit_length())
    nb = -(-k // p)
    signs = rng.integers(0, 2, size=(nb, d)) * 2.0 - 1.0
    M = np.concatenate([_sylvester(p)[:, :d] * signs[i][None, :] for i in range(nb)])
    if nb * p != k:
        last = np.sort(rng.choice(p, size=k - (nb - 1) * p, replace=False))
        M = M[np.concatenate([np.arange((nb - 1) * p), (nb - 1) * p + last])]
    return M.T


@pytest.mark.parametrize("w,k", [(16, 5), (100, 300), (128, 128)])
def test_hadamard_sketch_explicit_formula(w, k):
    # the features are sum_l (a_l S_l + r_l) * (g_l T_l) / sqrt(k) with the documented draws; w = 100 and 128:
    # the two-pass transform (p = 128 > 64), w = 16: the explicit-matrix path
    from kernelkit.selection import gradient_sketch
    net = _mlp(w=w, out=2)
    X = np.random.default_rng(5).normal(size=(11, 3))
    F = gradient_sketch(net, X, k, random_state=7, sketch="hadamard", batch_size=4)
    rng = np.random.default_rng(7)
    ref = np.zeros((11, k))
    for m, (a, g) in zip([m for m in net if isinstance(m, torch.nn.Linear)], _explicit_layers(net, X)):
        S = _explicit_factor(rng, m.in_features, k)
        r = rng.integers(0, 2, size=k) * 2.0 - 1.0
        T = _explicit_factor(rng, m.out_features, k)
        ref += (a @ S + r) * (g @ T)
    ref /= np.sqrt(k)
    assert F.shape == (11, k) and F.dtype == np.float64
    np.testing.assert_allclose(F, ref, rtol=1e-10, atol=1e-12 * np.abs(ref).max())


def test_hadamard_sketch_unbiased():
    from kernelkit.selection import gradient_sketch
    net = _mlp(out=2)
    X = np.random.default_rng(0).normal(size=(9, 3))
    K = _grad_kernel(net, X)
    F = gradient_sketch(net, X, 60_000, random_state=0, sketch="hadamard")
    assert np.abs(F @ F.T - K).max() < 0.05 * np.abs(K).max()
    # the mean of many 16-dim sketches converges to K (one of them does not)
    mean = np.mean([(lambda F: F @ F.T)(gradient_sketch(net, X, 16, random_state=s, sketch="hadamard"))
                    for s in range(800)], axis=0)
    assert np.abs(mean - K).max() < 0.04 * np.abs(K).max()
    F = gradient_sketch(net, X, 16, random_state=0, sketch="hadamard")
    assert np.abs(F @ F.T - K).max() > 0.04 * np.abs(K).max()
    np.testing.assert_array_equal(gradient_sketch(net, X, 8, random_state=3, sketch="hadamard"),
                                  gradient_sketch(net, X, 8, random_state=3, sketch="hadamard"))
    for p in net.parameters():
        assert p.grad is None


def test_hadamard_sketch_error_not_above_gaussian():
    # relative Frobenius error of F F^T against the exact gradient kernel (ReLU MLP 4-128-128-1), same k
    from kernelkit.selection import gradient_sketch
    torch.manual_seed(3)
    net = torch.nn.Sequential(torch.nn.Linear(4, 128), torch.nn.ReLU(), torch.nn.Linear(128, 128), torch.nn.ReLU(),
                              torch.nn.Linear(128, 1)).double().eval()
    X = np.random.default_rng(3).normal(size=(120, 4))
    K = _grad_kernel(net, X)
    err = {sk: np.mean([np.linalg.norm((lambda F: F @ F.T)(gradient_sketch(net, X, 128, random_state=s, sketch=sk))
                                       - K) / np.linalg.norm(K) for s in range(6)])
           for sk in ("gaussian", "hadamard")}
    assert 0.01 < err["hadamard"] <= 1.1 * err["gaussian"]


def test_hadamard_sketch_bad_input():
    from kernelkit.selection import gradient_sketch
    net, X = _mlp(), np.zeros((2, 3))
    with pytest.raises(InvalidValueError, match="'sketch'"):
        gradient_sketch(net, X, 4, sketch="srht")
    # the default is the Hadamard sketch
    np.testing.assert_array_equal(gradient_sketch(net, X, 8, random_state=1),
                                  gradient_sketch(net, X, 8, random_state=1, sketch="hadamard"))
    with pytest.raises(InvalidValueError, match="sketch_dtype"):
        gradient_sketch(net, X, 4, sketch="hadamard", sketch_dtype="bfloat16")
    with pytest.raises(InvalidTypeError, match="sketch_matrices"):
        gradient_sketch(net, X, 4, sketch="hadamard", sketch_matrices=[])
