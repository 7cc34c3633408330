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
