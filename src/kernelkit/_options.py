"""Per-call and context-local options for the engine.

Options are never hidden globals: they are read from a context variable that
:func:`options` sets for the duration of a ``with`` block (thread- and
task-local), and every engine call may override them with keyword arguments.
"""

from __future__ import annotations

import contextlib
import contextvars
import dataclasses
import os
import re
from .exceptions import InvalidTypeError, InvalidValueError

__all__ = ["Options", "options", "get_options", "parse_memory"]

_UNITS = {"": 1, "B": 1, "KB": 10**3, "MB": 10**6, "GB": 10**9, "TB": 10**12,
          "KIB": 2**10, "MIB": 2**20, "GIB": 2**30, "TIB": 2**40}

BACKENDS = ("auto", "fused", "numpy", "torch")


def parse_memory(value, name="memory"):
    """Parse a memory size such as ``"256MB"``, ``"1.5GiB"`` or ``2**28``.

    Returns the number of bytes as an int. Decimal units (KB, MB, GB) are
    powers of 1000, binary units (KiB, MiB, GiB) powers of 1024.
    """
    if isinstance(value, bool):
        raise InvalidTypeError(f"The {name!r} option must be a number of bytes or a string such as '256MB'. Got {value!r}.")
    if isinstance(value, (int, float)):
        nbytes = float(value)
    elif isinstance(value, str):
        m = re.fullmatch(r"\s*([0-9]*\.?[0-9]+(?:[eE][+-]?[0-9]+)?)\s*([A-Za-z]*)\s*", value)
        if m is None or m.group(2).upper() not in _UNITS:
            raise InvalidValueError(
                f"The {name!r} option must be a number of bytes or a string such as "
                f"'256MB', '2GB' or '512MiB'. Got {value!r}.")
        nbytes = float(m.group(1)) * _UNITS[m.group(2).upper()]
    else:
        raise InvalidTypeError(f"The {name!r} option must be a number of bytes or a string such as '256MB'. Got {value!r}.")
    if not nbytes > 0 or nbytes != nbytes or nbytes == float("inf"):
        raise InvalidValueError(f"The {name!r} option must be a positive, finite size. Got {value!r}.")
    return int(nbytes)


@dataclasses.dataclass(frozen=True)
class Options:
    """Engine options.

    Attributes
    ----------
    memory : int
        Budget in bytes for the temporary buffers of one engine call (tiles of
        kernel values, distances, partial sums). Inputs and outputs are not
        counted. Default 1 GB.
    threads : int
        Number of CPU threads the engine may use. Default: all cores visible
        to the process.
    backend : str
        ``"auto"`` (fused CPU path when it supports the kernel, else NumPy),
        ``"fused"``, ``"numpy"`` (blocked NumPy/BLAS reference) or ``"torch"``.
    progress : bool
        Show a progress bar (tqdm) on long calls.
    """

    memory: int = 10**9
    threads: int = 0
    backend: str = "auto"
    progress: bool = False

    def resolved_threads(self):
        if self.threads and self.threads > 0:
            return int(self.threads)
        try:
            return max(1, len(os.sched_getaffinity(0)))
        except AttributeError:  # pragma: no cover - non-Linux
            return max(1, os.cpu_count() or 1)


_CURRENT = contextvars.ContextVar("kernelkit_options", default=Options())


def _validated(base, memory=None, threads=None, backend=None, progress=None):
    changes = {}
    if memory is not None:
        changes["memory"] = parse_memory(memory)
    if threads is not None:
        if isinstance(threads, bool) or not isinstance(threads, int) or threads < 0:
            raise InvalidValueError(f"The 'threads' option must be an int >= 0 (0 = all cores). Got {threads!r}.")
        changes["threads"] = threads
    if backend is not None:
        if backend not in BACKENDS:
            raise InvalidValueError(f"The 'backend' option must be one of {BACKENDS}. Got {backend!r}.")
        changes["backend"] = backend
    if progress is not None:
        changes["progress"] = bool(progress)
    return dataclasses.replace(base, **changes) if changes else base


def get_options(**overrides):
    """Current options, with per-call ``overrides`` (None means "inherit")."""
    return _validated(_CURRENT.get(), **overrides)


@contextlib.contextmanager
def options(*, memory=None, threads=None, backend=None, progress=None):
    """Set engine options for the duration of a ``with`` block.

    Examples
    --------
    >>> import kernelkit
    >>> with kernelkit.options(memory="256MB", threads=2):
    ...     pass
    """
    token = _CURRENT.set(_validated(_CURRENT.get(), memory, threads, backend, progress))
    try:
        yield _CURRENT.get()
    finally:
        _CURRENT.reset(token)
