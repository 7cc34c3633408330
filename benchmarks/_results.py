"""Where the benchmarks write their results: benchmarks/results/<name>.json."""

import json
import os

RESULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")


def write_results(name, results):
    """Write ``results`` (JSON-serialisable) to ``results/<name>.json``, print and return the path."""
    os.makedirs(RESULTS, exist_ok=True)
    path = os.path.join(RESULTS, name + ".json")
    with open(path, "w") as fh:
        json.dump(results, fh, indent=1)
    print(f"\nwrote {path}")
    return path


def best_of(fn, reps=1):
    """``(the last result of fn(), its best wall time in seconds over reps calls)``."""
    import time
    best, out = float("inf"), None
    for _ in range(reps):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return out, best
