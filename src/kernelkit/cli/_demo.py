"""``kernelkit demo``: every capability end to end on synthetic data.

Each verb module contributes a step: a function ``demo_step(args)`` listed
in ``STEPS`` (title, module, function). A step prints what it did, with the
numbers it measured.
"""

from __future__ import annotations

import importlib
import time

#: (title, module, function); modules that are not built yet are skipped
STEPS = [
    ("Kernel sums (engine)", "kernelkit.cli._demo_steps", "engine_step"),
    ("Kernel density estimation", "kernelkit.cli._kde", "demo_step"),
    ("Kernel thinning", "kernelkit.cli._thin", "demo_step"),
    ("Private kernel sums", "kernelkit.cli._private", "demo_step"),
]


def register(sub):
    p = sub.add_parser("demo", help="run every capability on built-in synthetic data and report",
                       description="Run kernelkit end to end on synthetic data and print what it did.")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--quick", action="store_true", help="smaller sizes")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(run=run)


def run(args):
    print("kernelkit demo: synthetic data, seed", args.seed)
    for title, module, func in STEPS:
        try:
            fn = getattr(importlib.import_module(module), func)
        except (ModuleNotFoundError, AttributeError):
            continue
        print(f"\n== {title} ==")
        t0 = time.perf_counter()
        fn(args)
        print(f"   ({time.perf_counter() - t0:.2f} s)")
    return 0
