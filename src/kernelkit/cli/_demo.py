"""``kernelkit demo``: every capability end to end on built-in synthetic data.

Each step is a function ``demo_step(args)`` in a verb module, listed in
``STEPS`` as (name, title, module, function). A step prints what it did,
with the numbers it measured. The demo ends with a one-line summary per step
(name, seconds, ok / FAILED) and exits with status 1 when any step failed;
a failing step prints its traceback (it is a bug, or a missing dependency)
and the others still run. ``kernelkit demo --list`` lists the steps,
``kernelkit demo STEP [STEP ...]`` runs only those.
"""

from __future__ import annotations

import importlib
import time
import traceback

from .._validation import param_error

#: (name, title, module, function), in the order the demo runs them
STEPS = [
    ("engine", "Kernel sums (engine)", "kernelkit.cli._demo_steps", "engine_step"),
    ("kde", "Kernel density estimation", "kernelkit.cli._kde", "demo_step"),
    ("thin", "Kernel thinning", "kernelkit.cli._thin", "demo_step"),
    ("private", "Private kernel sums", "kernelkit.cli._private", "demo_step"),
    ("regression", "Kernel ridge regression (Falkon)", "kernelkit.cli._demo_steps", "regression_step"),
    ("ntk", "Neural tangent kernels (infinite width)", "kernelkit.cli._demo_steps", "ntk_step"),
    ("test", "Kernel two-sample test (MMD permutations)", "kernelkit.cli._test", "demo_step"),
    ("independence", "Independence tests (HSIC, dHSIC, KCI)", "kernelkit.cli._demo_steps", "independence_step"),
    ("gof", "Goodness of fit (KSD, perturbed KSD, Stein thinning)", "kernelkit.stats._ksd_demo", "demo_step"),
    ("select", "Batch selection for active learning", "kernelkit.cli._select", "demo_step"),
    ("locate", "Indoor positioning (RSS fingerprints)", "kernelkit.cli._locate", "demo_step"),
]


def register(sub):
    p = sub.add_parser("demo", help="run every capability on built-in synthetic data and report",
                       description="Run kernelkit end to end on synthetic data and print what it did, "
                                   "then one summary line per step. Exit status 1 if a step failed.")
    p.add_argument("steps", nargs="*", metavar="STEP",
                   help="run only these steps (default: all; see --list)")
    p.add_argument("--list", action="store_true", help="list the steps and exit")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--quick", action="store_true", help="smaller sizes")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(run=run)


def _selected(names):
    known = [s[0] for s in STEPS]
    unknown = [n for n in names if n not in known]
    if unknown:
        raise param_error("STEP", "kernelkit demo", f"among {', '.join(known)}", unknown, noun="argument",
                          shown=", ".join(unknown))
    return [s for s in STEPS if not names or s[0] in names]


def run(args):
    if args.list:
        for name, title, _, _ in STEPS:
            print(f"{name:<10s} {title}")
        return 0
    steps = _selected(args.steps)
    print("kernelkit demo: synthetic data, seed", args.seed)
    results = []
    for name, title, module, func in steps:
        print(f"\n== {title} ==", flush=True)
        t0 = time.perf_counter()
        try:
            getattr(importlib.import_module(module), func)(args)
            ok = True
        except Exception:  # a step's failure is reported, and the others still run
            traceback.print_exc()
            ok = False
        seconds = time.perf_counter() - t0
        print(f"   ({seconds:.2f} s)")
        results.append((name, seconds, ok))
    total = sum(r[1] for r in results)
    failed = [r[0] for r in results if not r[2]]
    print("\nsummary: " + ", ".join(f"{n} {s:.1f} s {'ok' if ok else 'FAILED'}" for n, s, ok in results)
          + f"; total {total:.1f} s" + (f"; {len(failed)} failed" if failed else ""))
    return 1 if failed else 0
