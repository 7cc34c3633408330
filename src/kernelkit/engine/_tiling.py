"""Block sizes from a memory budget, and the optional progress bar."""

from __future__ import annotations

import contextlib


def block_sizes(n, m, d, memory, bytes_per_pair, extra_per_x=0, min_bx=1, max_block=8192):
    """Pick (bx, by) so that the temporaries of one block fit in ``memory``.

    ``bytes_per_pair`` is the temporary memory per kernel value of a block
    (the block itself, distances, products); ``extra_per_x`` the memory per
    row of X touched by a block (weights). Blocks are at least 1 x 1 (or
    ``min_bx`` rows of X, for top-k) whatever the budget, and at most
    ``max_block`` on a side.
    """
    by = max(1, min(m, max_block))
    bx = max(1, min(n, max_block))
    bx = max(bx, min(min_bx, n))

    def cost(bx_, by_):
        return bx_ * by_ * bytes_per_pair + bx_ * (extra_per_x + 8 * d) + by_ * 8 * d

    while cost(bx, by) > memory and (by > 1 or bx > max(1, min(min_bx, n))):
        if by >= bx and by > 1 or bx <= max(1, min(min_bx, n)):
            by = max(1, by // 2)
        else:
            bx = max(max(1, min(min_bx, n)), bx // 2)
    return bx, by


class _NoBar:
    def update(self, k):
        pass


#: a bar appears only once the work has lasted this long (seconds)
PROGRESS_DELAY = 1.0


@contextlib.contextmanager
def progress_bar(total, enabled, desc):
    """A tqdm bar when ``enabled``, else a no-op.

    The bar is drawn only when the work lasts longer than ``PROGRESS_DELAY``
    seconds (tqdm's ``delay``), so calls that take milliseconds print
    nothing, and it is erased when the work ends (``leave=False``), also
    when it ends in an error.
    """
    if not enabled:
        yield _NoBar()
        return
    try:
        from tqdm.auto import tqdm
    except ImportError:  # pragma: no cover - tqdm is a core dependency
        yield _NoBar()
        return
    with tqdm(total=total, desc=desc, unit="query", leave=False, delay=PROGRESS_DELAY) as bar:
        yield bar
