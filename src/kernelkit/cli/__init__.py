"""Command-line interface: ``kernelkit <verb> ...``.

Each verb lives in its own module ``kernelkit.cli._<verb>`` with a
``register(subparsers)`` function that adds its parser and sets
``run=function(args) -> int``. Errors in the user's input (a
:class:`kernelkit.exceptions.InputError`, a :class:`CLIError`, a missing or
unreadable file) print one line and exit with status 2, without a traceback;
any other exception is a bug and keeps its traceback. ``python -m kernelkit``
runs the same command.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from .. import __version__
from ..exceptions import InputError

__all__ = ["main", "build_parser", "CLIError", "USER_ERRORS", "VERB_MODULES"]

#: verb modules, in the order ``kernelkit --help`` lists them
VERB_MODULES = ["_demo", "_kde", "_thin", "_private", "_test", "_locate"]


class CLIError(InputError):
    """A user error found by the command line itself: printed as one line, exit status 2."""


#: exceptions that mean "the user's input is wrong": one line, exit status 2
USER_ERRORS = (InputError, FileNotFoundError, IsADirectoryError, PermissionError, UnicodeDecodeError)


def build_parser():
    """The ``kernelkit`` argument parser, with one sub-command per module of ``VERB_MODULES``.

    Returns
    -------
    argparse.ArgumentParser
    """
    parser = argparse.ArgumentParser(
        prog="kernelkit",
        description="Kernel methods at hardware speed: exact kernel sums, density estimation, "
                    "kernel thinning and private similarity queries.",
        epilog="Run 'kernelkit <command> --help' for the options of a command. "
               "Data files: CSV (header optional), .npy, .npz (first array, or NAME.npz:key), "
               ".parquet (with pyarrow), posteriordb draws (.json or .json.zip).",
    )
    parser.add_argument("--version", action="version", version=f"kernelkit {__version__}")
    from ._cluster import add_options
    add_options(parser)   # --scheduler ADDRESS / --local-cluster N, before the command
    sub = parser.add_subparsers(dest="command", metavar="<command>")
    for name in VERB_MODULES:   # (a verb that fails to import is a bug: it is not skipped)
        importlib.import_module(f"kernelkit.cli.{name}").register(sub)
    return parser


def main(argv=None):
    """Run ``kernelkit`` with ``argv`` (default: ``sys.argv[1:]``) and return its exit status.

    Parameters
    ----------
    argv : list of str, optional
        The command line after the program name.

    Returns
    -------
    int
        0 on success, 1 when a demo step failed, 2 for a user error (one line on stderr).
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "run", None) is None:
        parser.print_help()
        return 2
    from ._cluster import cluster_session
    try:
        with cluster_session(args) as client:
            args.dask_client = client
            return int(args.run(args) or 0)
    except USER_ERRORS as exc:
        print(f"kernelkit {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # pragma: no cover
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
