"""Per-call and context-local options for the engine.

Options are never hidden globals: they are read from a context variable that
:func:`options` sets for the duration of a ``with`` block (thread- and
task-local), and every engine call may override them with keyword arguments.
"""

from __future__ import annotations

import contextlib
import contextvars
import dataclasses
import math
import os
import re

from ._validation import Integral, OneOf, Real, check_param, param_error

__all__ = ["Options", "options", "get_options", "parse_memory"]

_UNITS = {"": 1, "B": 1, "KB": 10**3, "MB": 10**6, "GB": 10**9, "TB": 10**12,
          "KIB": 2**10, "MIB": 2**20, "GIB": 2**30, "TIB": 2**40}

BACKENDS = ("auto", "fused", "numpy", "torch")


#: what the 'memory' option accepts, for messages
_MEMORY_ACCEPTS = "a number of bytes or a string such as '256MB', '2GB' or '512MiB'"


def parse_memory(value, name="memory"):
    """Parse a memory size such as ``"256MB"``, ``"1.5GiB"`` or ``2**28``.

    Returns the number of bytes as an int. Decimal units (KB, MB, GB) are
    powers of 1000, binary units (KiB, MiB, GiB) powers of 1024. A value of
    another type (None, a bool, a list) raises InvalidTypeError; an unknown
    unit, zero, a negative, NaN or infinite size raises InvalidValueError.
    """
    if isinstance(value, str):
        m = re.fullmatch(r"\s*([0-9]*\.?[0-9]+(?:[eE][+-]?[0-9]+)?)\s*([A-Za-z]*)\s*", value)
        if m is None or m.group(2).upper() not in _UNITS:
            raise param_error(name, None, _MEMORY_ACCEPTS, value, noun="option")
        nbytes = float(m.group(1)) * _UNITS[m.group(2).upper()]
    elif Real(finite=False).type_ok(value):
        nbytes = float(value)
    else:
        raise param_error(name, None, _MEMORY_ACCEPTS, value, "type", noun="option")
    if not (nbytes > 0 and math.isfinite(nbytes)):
        raise param_error(name, None, "a positive, finite size", value, noun="option")
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
        Number of CPU threads the engine may use. Default (0): all cores
        visible to the process, except that the compiled engine runs calls
        of fewer than 2^18 kernel values on one thread (waking more costs
        more than the work). A positive value is used as given.
    backend : str
        ``"auto"`` (fused CPU path when it supports the kernel, else NumPy),
        ``"fused"``, ``"numpy"`` (blocked NumPy/BLAS reference) or ``"torch"``.
    progress : bool
        Show a progress bar (tqdm) on long calls.
    prune : None, True or False
        Skip the pairs beyond the support of a compactly supported kernel in
        ``kernel_sum`` / ``kernel_logsumexp`` (exact: those values are 0).
        None (default): when the engine's rule expects it to pay; True:
        always where it can run; False: never. A call's ``prune=`` wins.
    """

    memory: int = 10**9
    threads: int = 0
    backend: str = "auto"
    progress: bool = False
    prune: object = None

    def resolved_threads(self):
        if self.threads and self.threads > 0:
            return int(self.threads)
        try:
            return max(1, len(os.sched_getaffinity(0)))
        except AttributeError:  # pragma: no cover - non-Linux
            return max(1, os.cpu_count() or 1)


_CURRENT = contextvars.ContextVar("kernelkit_options", default=Options())


#: the other options, declared once
_CONSTRAINTS = {"threads": Integral(low=0), "backend": OneOf(*BACKENDS), "progress": OneOf(False, True),
                "prune": OneOf(False, True)}


def _validated(base, memory=None, threads=None, backend=None, progress=None, prune=None):
    changes = {}
    if memory is not None:
        changes["memory"] = parse_memory(memory)
    for name, value in (("threads", threads), ("backend", backend), ("progress", progress), ("prune", prune)):
        if value is not None:
            hint = "threads=0 uses all cores." if name == "threads" else None
            changes[name] = check_param(value, name, None, _CONSTRAINTS[name], noun="option", hint=hint)
    return dataclasses.replace(base, **changes) if changes else base


def get_options(**overrides):
    """Current options, with per-call ``overrides`` (None means "inherit").

    Parameters
    ----------
    **overrides
        ``memory``, ``threads``, ``backend``, ``progress`` for this call.

    Returns
    -------
    Options
    """
    return _validated(_CURRENT.get(), **overrides)


@contextlib.contextmanager
def options(*, memory=None, threads=None, backend=None, progress=None, prune=None):
    """Set engine options for the duration of a ``with`` block.

    Parameters
    ----------
    memory : int or str, optional
        Memory budget in bytes, or a string such as "256MB" or "2GiB".
    threads : int >= 1, optional
        CPU threads of the engine.
    backend : {"auto", "fused", "numpy", "torch"}, optional
    progress : bool, optional
        Show a tqdm progress bar on long calls.
    prune : bool, optional
        True / False: always / never skip the pairs beyond a compact kernel's
        support (see :class:`Options`); not given: the engine's rule.

    Examples
    --------
    >>> import kernelkit
    >>> with kernelkit.options(memory="256MB", threads=2):
    ...     pass
    """
    token = _CURRENT.set(_validated(_CURRENT.get(), memory, threads, backend, progress, prune))
    try:
        yield _CURRENT.get()
    finally:
        _CURRENT.reset(token)
