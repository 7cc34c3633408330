"""BLAS thread caps for the NumPy / SciPy products of a call (threadpoolctl, with one cached controller).

``threadpoolctl.threadpool_limits`` scans the loaded libraries on every call (tens of milliseconds);
the controller made here on first use is reused, so a cap costs microseconds.
"""

from __future__ import annotations

import contextlib

__all__ = ["blas_threads"]

_CONTROLLER = []   # the threadpoolctl controller, made on first use


@contextlib.contextmanager
def blas_threads(limit):
    """Cap the BLAS threads at ``limit`` (None or 0: leave them) for the duration of the block."""
    if not limit:
        yield
        return
    if not _CONTROLLER:
        from threadpoolctl import ThreadpoolController
        _CONTROLLER.append(ThreadpoolController())
    with _CONTROLLER[0].limit(limits=max(1, int(limit)), user_api="blas"):
        yield
