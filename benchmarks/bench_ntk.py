"""Empirical NTKs: kernelkit.ntk.empirical_ntk vs the torch.func tutorial's vmap(jacrev) contractions, side by side.

1. MLP 32-256-256-10 (P = 76,810), N = 128 points, float64, CPU: the full eNTK
   (N, N, O, O), the trace and the pNTK, by kernelkit (per-layer nn.Linear
   path; also its torch.func fallback for trace and pNTK, with a 4 GB
   budget so that it may hold the Jacobians as the reference does) and by the
   reference of the PyTorch tutorial "Neural Tangent Kernels" (torch.func):
   per-sample Jacobians ``vmap(jacrev(f))`` of every parameter, contracted
   with ``einsum('Naf,Mbf->NMab')`` (full) or ``einsum('Naf,Maf->NM')``
   (trace), and the same for the gradient of sum_c f_c / sqrt(O) (pNTK,
   ``einsum('Nf,Mf->NM')``). Written here from the tutorial's description;
   as the tutorial does, the Jacobians of X2 are computed separately, except
   that X2 = X1 reuses them (which only helps the reference). Values are
   compared (max |a - b| / max |b|) and the time ratio printed. kernelkit's
   trace is the mean over outputs; it is multiplied by O before comparing.
2. The same MLP at initialisation and after training (Adam, cross-entropy on
   a synthetic 10-class teacher task): relative Frobenius error of
   pNTK (x) I_O and trace (x) I_O against the full eNTK,
   ||Theta - K (x) I||_F / ||Theta||_F, on 128 held-out points.
3. MLP 64-512-512-10 (P = 301,066), float32, N = 20,000 points, each in its
   own subprocess: the pNTK (N x N output, 1.6 GB) and the projected NTK
   (k = 1024, features N x k; the N x N kernel is not formed), under
   ``kernelkit.options(memory=--memory)``; time, and peak memory as the
   child's VmHWM (reset to the current RSS just before the call through
   /proc/self/clear_refs; ru_maxrss is not used, a child inherits its
   parent's) minus its RSS just before the call (model, data and torch
   already loaded), also with the output subtracted. The naive
   Jacobian sizes (N x O x P and N x P floats) are printed beside.

Run:  flock /tmp/kk-bench.lock python benchmarks/bench_ntk.py                    (all of the above)
      python benchmarks/bench_ntk.py --large-n 2000 --steps 50                   (smoke size)
Options: --n (points of parts 1-2), --large-n, --k, --memory, --threads, --skip-large, --skip-train,
--name (results file). Writes benchmarks/results/ntk.json (or <name>.json).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import subprocess
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import torch  # noqa: E402
from torch.func import functional_call, jacrev, vmap  # noqa: E402

import kernelkit as kk  # noqa: E402
from kernelkit.ntk import empirical_ntk  # noqa: E402
from _results import write_results  # noqa: E402


def mlp(widths, dtype, seed):
    torch.manual_seed(seed)
    layers = []
    for a, b in zip(widths[:-1], widths[1:]):
        layers += [torch.nn.Linear(a, b), torch.nn.ReLU()]
    return torch.nn.Sequential(*layers[:-1]).to(dtype).eval()


# --------------------------------------------------------------------------- the torch.func tutorial reference
def tutorial_jacobians(net, X, scalar):
    """Per-sample Jacobians of every parameter: list of (N, O, P_t), or (N, P_t) for the scaled sum of outputs."""
    params = {k: v.detach() for k, v in net.named_parameters()}
    n_out = net(X[:1]).shape[1]

    def f(p, x):
        y = functional_call(net, p, (x.unsqueeze(0),)).squeeze(0)
        return y.sum() / math.sqrt(n_out) if scalar else y

    jac = vmap(jacrev(f), (None, 0))(params, X)
    return [j.flatten(1) if scalar else j.flatten(2) for j in jac.values()]


def tutorial_ntk(net, X1, X2, compute):
    """The tutorial's 'Jacobian contraction': sum over parameter tensors of einsum(J1, J2)."""
    scalar = compute == "pntk"
    j1 = tutorial_jacobians(net, X1, scalar)
    j2 = j1 if X2 is X1 else tutorial_jacobians(net, X2, scalar)
    expr = {"full": "Naf,Mbf->NMab", "trace": "Naf,Maf->NM", "pntk": "Nf,Mf->NM"}[compute]
    return sum(torch.einsum(expr, a, b) for a, b in zip(j1, j2))


def timed(fn, repeat):
    best, out = math.inf, None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def rel_err(a, b):
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return float(np.abs(a - b).max() / np.abs(b).max())


# --------------------------------------------------------------------------- 1. side by side
def compare(n, seed):
    net = mlp((32, 256, 256, 10), torch.float64, seed)
    X = torch.randn(n, 32, dtype=torch.float64, generator=torch.Generator().manual_seed(seed + 1))
    P = sum(p.numel() for p in net.parameters())
    O = 10
    print(f"\n1. MLP 32-256-256-10, P = {P:,}, N = {n}, float64, {torch.get_num_threads()} torch threads")
    empirical_ntk(net, X[:4])  # warm-up (imports, first calls)
    tutorial_ntk(net, X[:4], X[:4], "pntk")
    rows = []
    for kind, ref_repeat in (("full", 1), ("trace", 2), ("pntk", 5)):
        t_ref, ref = timed(lambda: tutorial_ntk(net, X, X, kind), ref_repeat)
        ref = ref.numpy()
        t_kk, res = timed(lambda: empirical_ntk(net, X, kind=kind), 5)
        scale = O if kind == "trace" else 1
        row = dict(kind=kind, tutorial_seconds=t_ref, kernelkit_seconds=t_kk, method=res.method,
                   speedup=t_ref / t_kk, max_rel_diff=rel_err(res.kernel * scale, ref))
        if kind != "full":
            # with a budget that holds the Jacobians, as the tutorial does (0.79 GB for the trace's)
            t_fb, fb = timed(lambda: empirical_ntk(net, X, kind=kind, method="torch.func", memory="4GB"), 1)
            row.update(kernelkit_torch_func_seconds=t_fb, torch_func_speedup=t_ref / t_fb,
                       torch_func_max_rel_diff=rel_err(fb.kernel * scale, ref))
        rows.append(row)
        print(row)
    print(f"\n{'kind':6s} {'tutorial s':>11s} {'kernelkit s':>12s} {'speedup':>8s} {'max rel diff':>13s}"
          f" {'kk torch.func s':>16s} {'speedup':>8s}")
    for r in rows:
        fb = (f" {r['kernelkit_torch_func_seconds']:16.3f} {r['torch_func_speedup']:8.1f}"
              if "kernelkit_torch_func_seconds" in r else f" {'-':>16s} {'-':>8s}")
        print(f"{r['kind']:6s} {r['tutorial_seconds']:11.3f} {r['kernelkit_seconds']:12.4f} {r['speedup']:8.1f}"
              f" {r['max_rel_diff']:13.2e}{fb}")
    return dict(P=P, n=n, rows=rows)


# --------------------------------------------------------------------------- 2. approximation errors
def block_errors(net, X):
    full = empirical_ntk(net, X, kind="full").kernel
    O = full.shape[2]
    eye = np.eye(O)
    norm = np.linalg.norm(full)
    out = {}
    for kind in ("pntk", "trace"):
        K = empirical_ntk(net, X, kind=kind).kernel
        out[kind] = float(np.linalg.norm(full - K[:, :, None, None] * eye) / norm)
    off = full * (1 - eye)
    out["off_diagonal_share"] = float(np.linalg.norm(off) / norm)
    return out


def train_errors(n, steps, seed):
    net = mlp((32, 256, 256, 10), torch.float64, seed)
    g = torch.Generator().manual_seed(seed + 2)
    teacher = mlp((32, 64, 10), torch.float64, seed + 3)
    Xtr = torch.randn(4096, 32, dtype=torch.float64, generator=g)
    Xev = torch.randn(n, 32, dtype=torch.float64, generator=g)
    with torch.no_grad():
        ytr = teacher(Xtr).argmax(1)
    at_init = block_errors(net, Xev)
    net.train()
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    loss_fn = torch.nn.CrossEntropyLoss()
    t0 = time.perf_counter()
    for step in range(steps):
        idx = torch.randint(0, Xtr.shape[0], (256,), generator=g)
        opt.zero_grad()
        loss = loss_fn(net(Xtr[idx]), ytr[idx])
        loss.backward()
        opt.step()
    net.eval()
    with torch.no_grad():
        acc = float((net(Xtr).argmax(1) == ytr).double().mean())
    trained = block_errors(net, Xev)
    res = dict(n=n, steps=steps, train_seconds=time.perf_counter() - t0, train_accuracy=acc,
               chance_accuracy=float(torch.bincount(ytr).max()) / len(ytr), at_init=at_init, trained=trained)
    print(f"\n2. relative Frobenius error against the full eNTK (N = {n}; {steps} Adam steps, "
          f"train accuracy {acc:.3f})")
    print(f"{'':14s} {'pNTK (x) I':>11s} {'trace/O (x) I':>14s} {'off-diagonal share':>19s}")
    for name, e in (("initialisation", at_init), ("trained", trained)):
        print(f"{name:14s} {e['pntk']:11.4f} {e['trace']:14.4f} {e['off_diagonal_share']:19.4f}")
    return res


# --------------------------------------------------------------------------- 3. large N, in subprocesses
def _status(field):
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    return 0


def _reset_peak():
    """Reset VmHWM to the current RSS (Linux >= 4.0); ru_maxrss is not used: a child inherits its parent's."""
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
        return True
    except OSError:
        return False


def child(kind, n, k, memory, seed):
    net = mlp((64, 512, 512, 10), torch.float32, seed)
    X = torch.randn(n, 64, generator=torch.Generator().manual_seed(seed + 1))
    empirical_ntk(net, X[:8], kind="pntk")  # warm-up, so that lazy imports are not counted
    before = _status("VmRSS")
    reset = _reset_peak()
    t0 = time.perf_counter()
    with kk.options(memory=memory):
        res = empirical_ntk(net, X, kind=kind, k=k if kind == "projected" else None, random_state=seed)
    seconds = time.perf_counter() - t0
    peak = _status("VmHWM")
    main = res.features1 if kind == "projected" else res.kernel
    out_bytes = int(main.nbytes) + int(getattr(res.last_layer_features1, "nbytes", 0))
    check = float(np.abs(main[:2]).sum())
    print(json.dumps(dict(kind=kind, n=n, k=k, P=res.n_params, seconds=seconds, rss_before=before, peak_rss=peak,
                          peak_reset=reset,
                          output_bytes=out_bytes, plan=res.plan, method=res.method, checksum=check)))


def large(args):
    P = 64 * 512 + 512 + 512 * 512 + 512 + 512 * 10 + 10
    n, O = args.large_n, 10
    budget = kk.get_options(memory=args.memory).memory
    print(f"\n3. MLP 64-512-512-10, P = {P:,}, N = {n:,}, float32, memory budget {budget / 1e9:.2f} GB; naive "
          f"Jacobians: N x O x P = {n * O * P * 4 / 1e9:.0f} GB, N x P = {n * P * 4 / 1e9:.0f} GB")
    rows = []
    for kind in ("pntk", "projected"):
        cmd = [sys.executable, os.path.abspath(__file__), "--child", kind, "--large-n", str(n), "--k", str(args.k),
               "--memory", str(args.memory), "--seed", str(args.seed)]
        if args.threads:
            cmd += ["--threads", str(args.threads)]
        out = subprocess.run(cmd, capture_output=True, text=True)
        if out.returncode != 0:
            print(out.stderr[-3000:])
            raise SystemExit(f"child {kind} failed")
        r = json.loads(out.stdout.strip().splitlines()[-1])
        r["peak_minus_before"] = r["peak_rss"] - r["rss_before"]
        r["temporaries_peak"] = r["peak_minus_before"] - r["output_bytes"]
        r["within_budget"] = bool(r["temporaries_peak"] <= budget)
        rows.append(r)
        print(f"{kind:10s} {r['seconds']:8.1f} s  peak - before {r['peak_minus_before'] / 1e9:6.2f} GB, "
              f"output {r['output_bytes'] / 1e9:5.2f} GB, temporaries {r['temporaries_peak'] / 1e9:5.2f} GB "
              f"(budget {budget / 1e9:.2f} GB: {'within' if r['within_budget'] else 'OVER'}); plan {r['plan']}")
    return dict(P=P, n=n, k=args.k, budget=budget, rows=rows)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=128)
    ap.add_argument("--large-n", type=int, default=20_000)
    ap.add_argument("--k", type=int, default=1024)
    ap.add_argument("--memory", default="1GB")
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--skip-large", action="store_true")
    ap.add_argument("--skip-train", action="store_true")
    ap.add_argument("--name", default="ntk", help="results file name (benchmarks/results/<name>.json)")
    ap.add_argument("--child", choices=["pntk", "projected"], help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.child:
        return child(args.child, args.large_n, args.k, args.memory, args.seed)
    results = dict(machine=platform.processor() or platform.machine(), cpus=os.cpu_count(),
                   torch=torch.__version__, threads=torch.get_num_threads(),
                   loadavg_start=list(os.getloadavg()))
    results["compare"] = compare(args.n, args.seed)
    if not args.skip_train:
        results["errors"] = train_errors(args.n, args.steps, args.seed)
    if not args.skip_large:
        results["large"] = large(args)
    results["loadavg_end"] = list(os.getloadavg())
    write_results(args.name, results)


if __name__ == "__main__":
    main()
