"""Infinite-width NTK: kernelkit's NTK block vs neural-tangents' ``stax`` kernel_fn on the same inputs.

Depth-10 ReLU network (``stax.serial([Dense(W_std, b_std), Relu()] * 10 + [Dense(1)])``,
ntk parameterization), a dense n x n float64 block of its NTK on Gaussian
inputs in d dimensions, both evaluated in one run:

- kernelkit: ``kernelkit.kernel_block(kernelkit.NTK("relu", depth=10, ...), X)``
  (the engine's NumPy path; chunks of pairs on the engine's threads).
- neural-tangents 0.6.5 (jax 0.4.x, x64, CPU): ``nt.batch(kernel_fn, batch_size)``
  on (X, X), jitted, in a separate Python (``--nt-python``, default
  $KERNELKIT_NT_PYTHON or /work/nt-venv/bin/python; skipped when absent). The
  first call (compilation) is timed apart from the second.

Printed: both times, their ratio, and the largest difference (relative to
max |K|, over every 10th row; the diagonal is reported separately, since
neural-tangents' diagonal NTK entries lose up to ~1e-8 to its angle formula).

Run:  flock /tmp/kk-bench.lock python benchmarks/bench_ntk_infinite.py              (n = 10,000, d = 32)
      python benchmarks/bench_ntk_infinite.py --n 2000                              (smoke size)
Options: --d, --depth, --W-std, --b-std, --threads, --batch-size (neural-tangents), --skip-nt.
Writes benchmarks/results/ntk_infinite.json.
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import kernelkit as kk  # noqa: E402
from _results import write_results  # noqa: E402

NT_SCRIPT = r'''
import sys, time
import numpy as np
import jax
jax.config.update("jax_enable_x64", True)
import neural_tangents as nt
from neural_tangents import stax
inp, outp = sys.argv[1], sys.argv[2]
depth, W, b, bs, stride = int(sys.argv[3]), float(sys.argv[4]), sys.argv[5], int(sys.argv[6]), int(sys.argv[7])
b = None if b == "None" else float(b)
X = np.load(inp)
layers = []
for _ in range(depth):
    layers += [stax.Dense(512, W_std=W, b_std=b), stax.Relu()]
_, _, kfn = stax.serial(*layers, stax.Dense(1, W_std=W, b_std=b))
kfn = nt.batch(kfn, batch_size=bs, store_on_device=False)
t0 = time.perf_counter(); np.asarray(kfn(X[:bs], X[:bs], "ntk")); t_first = time.perf_counter() - t0
t0 = time.perf_counter(); K = np.asarray(kfn(X, X, "ntk")); t = time.perf_counter() - t0
np.savez(outp, rows=K[::stride], diag=np.diag(K).copy(), time=t, time_first=t_first, jax=jax.__version__,
         nt=nt.__version__)
'''


def _nt_python(path):
    path = path or os.environ.get("KERNELKIT_NT_PYTHON") or "/work/nt-venv/bin/python"
    return path if os.path.exists(path) else None


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=10_000)
    ap.add_argument("--d", type=int, default=32)
    ap.add_argument("--depth", type=int, default=10)
    ap.add_argument("--W-std", type=float, default=1.4)
    ap.add_argument("--b-std", type=float, default=0.1)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--batch-size", type=int, default=1000, help="neural-tangents' nt.batch block size")
    ap.add_argument("--stride", type=int, default=10, help="rows compared: every stride-th")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--nt-python", default=None)
    ap.add_argument("--skip-nt", action="store_true")
    args = ap.parse_args(argv)

    n, d = args.n, args.d
    X = np.random.default_rng(args.seed).standard_normal((n, d))
    k = kk.NTK("relu", depth=args.depth, W_std=args.W_std, b_std=args.b_std)
    print(f"{k!r}: {n} x {n} float64 block, d = {d}")
    with kk.options(threads=args.threads, memory=max(10**9, 3 * 8 * n * n)):
        threads = kk.get_options().resolved_threads()
        t0 = time.perf_counter()
        K = kk.kernel_block(k, X)
        t_kk = time.perf_counter() - t0
    finite = bool(np.isfinite(K).all())
    print(f"kernelkit          {t_kk:8.2f} s  ({n * n / t_kk / 1e6:.2f} M pairs/s, {threads} threads, "
          f"finite: {finite})")
    res = dict(n=n, d=d, depth=args.depth, W_std=args.W_std, b_std=args.b_std, threads=threads,
               kernelkit_s=t_kk, finite=finite, machine=platform.processor() or platform.machine(),
               note="timings on a shared, loaded machine")

    py = None if args.skip_nt else _nt_python(args.nt_python)
    if py is None:
        print("neural-tangents: skipped (no environment; --nt-python or KERNELKIT_NT_PYTHON)")
    else:
        with tempfile.TemporaryDirectory() as tmp:
            inp, outp = os.path.join(tmp, "x.npy"), os.path.join(tmp, "k.npz")
            np.save(inp, X)
            subprocess.run([py, "-c", NT_SCRIPT, inp, outp, str(args.depth), str(args.W_std), str(args.b_std),
                            str(min(args.batch_size, n)), str(args.stride)], check=True,
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            o = np.load(outp)
            rows, diag, t_nt, t_first = o["rows"], o["diag"], float(o["time"]), float(o["time_first"])
            versions = f"neural-tangents {o['nt']}, jax {o['jax']}"
        ref_rows = K[::args.stride]
        scale = np.abs(ref_rows).max()
        off = np.ones_like(rows, dtype=bool)
        idx = np.arange(0, n, args.stride)
        off[np.arange(idx.size), idx] = False
        diff_off = float(np.abs(ref_rows - rows)[off].max() / scale)
        rel_diag = float(np.max(np.abs(np.diag(K) - diag) / np.abs(np.diag(K))))
        print(f"neural-tangents    {t_nt:8.2f} s  ({n * n / t_nt / 1e6:.2f} M pairs/s; first block incl. jit "
              f"{t_first:.2f} s; {versions}, batch_size {min(args.batch_size, n)})")
        print(f"ratio nt / kernelkit: {t_nt / t_kk:.2f}")
        print(f"max |difference| / max |K| off the diagonal (every {args.stride}th row): {diff_off:.2e}")
        print(f"max relative difference on the diagonal: {rel_diag:.2e} (neural-tangents' angle formula)")
        res.update(nt_s=t_nt, nt_first_block_s=t_first, ratio_nt_over_kk=t_nt / t_kk, versions=versions,
                   max_rel_diff_offdiag=diff_off, max_rel_diff_diag=rel_diag, batch_size=min(args.batch_size, n))
    write_results("ntk_infinite", res)
    return res


if __name__ == "__main__":
    main()
