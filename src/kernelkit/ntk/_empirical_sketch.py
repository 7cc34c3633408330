r"""The seeded random sketch of ``empirical_ntk(kind="projected")``, drawn block by block.

The sketch is a P x k matrix S with independent entries, N(0, 1/k)
(``"gaussian"``) or +-1/sqrt(k) with probability 1/2 each (``"rademacher"``),
so that :math:`\mathbb E[(S^\top u) \cdot (S^\top v)] = u \cdot v` for any two
P-vectors (Johnson-Lindenstrauss). Its rows are drawn in fixed canonical
blocks of :data:`BLOCK_ROWS` rows; block j comes from its own
``torch.Generator`` seeded by the j-th child of the call's SeedSequence
(``SeedSequence(entropy, spawn_key=(..., j))``, what ``spawn`` would give), so
any range of rows can be (re)generated on its own, and S does not depend on
the memory budget, the device or the block sizes the computation uses. The
draws are made on the CPU in float32 and then cast (so a float64 model and a
float32 model of the same P get the same sketch up to the float32 rounding of
the draws, and CPU and GPU runs agree); the scale 1/sqrt(k) is applied in the
compute dtype.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["BLOCK_ROWS", "SKETCHES", "block_seed", "sketch_rows"]

#: rows of one canonical block of the sketch
BLOCK_ROWS = 256

SKETCHES = ("gaussian", "rademacher")


def block_seed(seq, j):
    """A 64-bit seed for canonical block ``j``: the j-th child of the SeedSequence ``seq`` (as ``spawn`` makes it)."""
    child = np.random.SeedSequence(seq.entropy, spawn_key=tuple(seq.spawn_key) + (int(j),), pool_size=seq.pool_size)
    lo, hi = child.generate_state(2, np.uint32)
    return int(lo) | (int(hi) << 32)


def _draw(torch, seq, j, k, sketch, out):
    """Canonical block j (BLOCK_ROWS x k, float32, unscaled: N(0, 1) or +-1) written into ``out``."""
    g = torch.Generator(device="cpu")
    g.manual_seed(block_seed(seq, j))
    if sketch == "gaussian":
        torch.randn((BLOCK_ROWS, k), generator=g, dtype=torch.float32, out=out)
    else:
        torch.randint(0, 2, (BLOCK_ROWS, k), generator=g, dtype=torch.float32, out=out)
        out.mul_(2).sub_(1)
    return out


def sketch_rows(torch, seq, r0, r1, k, sketch, dtype, device, out=None):
    """Rows ``[r0, r1)`` of the P x k sketch S (scaled: entries have variance 1/k), as a ``(r1 - r0, k)`` tensor.

    ``out``: a contiguous ``(r1 - r0, k)`` tensor of ``dtype`` on ``device`` to write into (reused buffers
    avoid fresh allocations, whose page faults cost as much as the draws). Whole canonical blocks of a
    float32 CPU ``out`` are drawn in place; the others go through one float32 block buffer.
    """
    if out is None:
        out = torch.empty((r1 - r0, k), dtype=dtype, device=device)
    direct = out.dtype == torch.float32 and out.device.type == "cpu"
    buf = None
    for j in range(r0 // BLOCK_ROWS, -(-r1 // BLOCK_ROWS)):
        lo, hi = max(r0, j * BLOCK_ROWS), min(r1, (j + 1) * BLOCK_ROWS)
        if direct and hi - lo == BLOCK_ROWS:
            _draw(torch, seq, j, k, sketch, out[lo - r0:hi - r0])
            continue
        if buf is None:
            buf = torch.empty((BLOCK_ROWS, k), dtype=torch.float32)
        _draw(torch, seq, j, k, sketch, buf)
        out[lo - r0:hi - r0].copy_(buf[lo - j * BLOCK_ROWS:hi - j * BLOCK_ROWS])
    return out.mul_(1.0 / math.sqrt(k))
