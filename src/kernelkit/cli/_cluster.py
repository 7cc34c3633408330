"""The command line's cluster options: ``--scheduler ADDRESS`` and ``--local-cluster N``.

Either one makes a ``distributed.Client`` the default client for the
duration of the command; the verbs listed in :data:`CLUSTER_VERBS` then turn
their large inputs into row-chunked dask arrays, so that the work runs as
task graphs on the cluster (see docs/dask.md). dask and distributed are
imported only when one of the options is given.
"""

from __future__ import annotations

import contextlib
import math

from .._validation import param_error

#: the verbs that run on the cluster with --scheduler / --local-cluster (and what goes there)
CLUSTER_VERBS = {
    "kde": "the queries (--query, default DATA) are scored by task graphs",
    "thin": "Compress++ over row chunks of DATA (--method auto, compress++ or compress)",
    "private-sum build": "the exact sums over DATA by tasks, the noise drawn here",
}

#: thin's methods that have a dask path (kernelkit.dask.compresspp)
THIN_METHODS = ("auto", "compress++", "compress")

#: why the other verbs do not use a cluster (shown when one is asked for)
_WHY_NOT = {
    "test": "the tests' permutations run locally (no dask path)",
    "private-sum query": "answers are post-processing of the sketch, computed here",
}

_EXTRA = "pip install 'kernelkit[dask]'"


def add_options(parser):
    """Add the global ``--scheduler`` / ``--local-cluster`` options (mutually exclusive) to ``parser``."""
    used = "; ".join(f"{verb}: {what}" for verb, what in CLUSTER_VERBS.items())
    g = parser.add_argument_group("cluster (needs dask and distributed: " + _EXTRA + ")")
    ex = g.add_mutually_exclusive_group()
    ex.add_argument("--scheduler", default=None, metavar="ADDRESS",
                    help="run on the dask cluster at ADDRESS (e.g. tcp://10.0.0.5:8786). Used by: " + used)
    ex.add_argument("--local-cluster", default=None, metavar="N", type=_workers,
                    help="start a local dask cluster of N single-threaded worker processes for the command's "
                         "duration. Used by the same verbs as --scheduler")


def _workers(text):
    try:
        value = int(text)
    except ValueError:
        value = None
    if value is None or value < 1:
        import argparse
        raise argparse.ArgumentTypeError(str(param_error("--local-cluster", None, "an int >= 1", text,
                                                         noun="option")))
    return value


def _require_distributed():
    from . import CLIError
    try:
        import dask.array  # noqa: F401
        import distributed
    except ImportError:
        raise CLIError(f"--scheduler and --local-cluster need dask and distributed: {_EXTRA}") from None
    return distributed


@contextlib.contextmanager
def cluster_session(args):
    """The ``distributed.Client`` asked for by ``args`` (None without the options), closed on exit."""
    from . import CLIError
    address, n = getattr(args, "scheduler", None), getattr(args, "local_cluster", None)
    if address is None and n is None:
        yield None
        return
    refusal = _refusal(args)
    if refusal:
        raise CLIError(refusal)
    distributed = _require_distributed()
    with contextlib.ExitStack() as stack:
        if address is not None:
            try:
                client = distributed.Client(address, timeout="5s")
            except (OSError, TimeoutError) as exc:
                raise CLIError(f"--scheduler: cannot connect to {address!r}: {exc}") from None
        else:
            cluster = stack.enter_context(distributed.LocalCluster(
                n_workers=n, threads_per_worker=1, processes=True, dashboard_address=None))
            client = distributed.Client(cluster)
        stack.enter_context(client)
        yield client


def _verb(args):
    """The verb as CLUSTER_VERBS names it ('private-sum build' for a sub-verb)."""
    sub = getattr(args, "private_verb", None) if args.command == "private-sum" else None
    return f"{args.command} {sub}" if sub else args.command


def _refusal(args):
    """The one-line reason why this command cannot use the cluster, or None."""
    verb = _verb(args)
    if verb not in CLUSTER_VERBS:
        why = _WHY_NOT.get(verb)
        return (f"--scheduler and --local-cluster are not used by '{verb}'" + (f" ({why})" if why else "")
                + f"; only by: {', '.join(CLUSTER_VERBS)}.")
    method = getattr(args, "method", None)
    if verb == "thin" and str(method).lower() not in THIN_METHODS:
        return (f"--scheduler and --local-cluster serve 'thin' with --method {', '.join(THIN_METHODS)} only "
                f"(got --method {method}: it needs all points in one process).")
    return None


def rows_to_dask(A, client, min_tasks_per_worker=2):
    """A NumPy array (n, d) as a dask array with row chunks, at least ``min_tasks_per_worker`` per worker."""
    import dask.array as da
    workers = max(1, sum(client.nthreads().values())) if client is not None else 1
    chunks = max(1, min(A.shape[0], workers * min_tasks_per_worker))
    rows = max(1, math.ceil(A.shape[0] / chunks))
    return da.from_array(A, chunks=(rows, -1), name=False)
