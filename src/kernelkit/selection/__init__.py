"""Batch selection for active learning: coding rate (KECOR), max-det, k-means++, k-center, LCMD.

Greedy kernel-based rules that pick the next batch of pool points to label,
on any kernelkit kernel (including the infinite-width NNGP / NTK), on
feature matrices (last-layer features, projected gradients from
:func:`kernelkit.ntk.empirical_ntk`), or, with torch, the KECOR recipe (a
small proxy MLP and its empirical NTK). Conditioning on the labelled set
uses the Gaussian-process posterior kernel. Kernel columns come from the
engine; no N x N matrix is formed.
"""

from __future__ import annotations

from .._lazy import lazy_exports

# public name -> module defining it (imported on first use)
_LAZY = {
    "select_batch": "._api", "BatchSelector": "._api", "prediction_entropy": "._api", "METHODS": "._api",
    "kecor_select": "._kecor", "proxy_mlp": "._kecor", "gradient_sketch": "._gradients",
}

__all__ = list(_LAZY)


__getattr__, __dir__ = lazy_exports(__name__, _LAZY)
