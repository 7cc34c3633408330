"""The API reference pages, written from the packages' ``__all__`` (every public name gets a page).

``write_api_pages(folder)`` writes ``api/index.rst`` and one page per module, each an autosummary
table whose entries become one generated page per public name (``api/generated/<module>.<name>``).
``public_names()`` is the list the site checker (docs/check_site.py) and the tests hold the site to.
"""

from __future__ import annotations

import importlib
import os

#: (module, title, one line) in the order of the reference; each module's ``__all__`` is documented
MODULES = [
    ("kernelkit", "Kernels, engine, options, errors",
     "Kernel classes, the engine's reductions (sums, log-sum-exp, top-k, blocks), options and exceptions."),
    ("kernelkit.engine", "Engine", "Prepared operands, the family table and the compiled builds."),
    ("kernelkit.density", "Density estimation", "KernelDensity, bandwidth rules, diagnostics, modes, grid KDE."),
    ("kernelkit.compress", "Compression", "Kernel thinning, Compress++, herding, MMD."),
    ("kernelkit.privacy", "Differential privacy", "Private kernel and distance sums, the accountant."),
    ("kernelkit.regression", "Regression", "Kernel ridge, Falkon, Nadaraya-Watson, Gaussian processes."),
    ("kernelkit.features", "Features", "Random features, Nystroem, kernel PCA, kernel k-means."),
    ("kernelkit.stats", "Kernel tests", "MMD, MMDAgg, MMD-FUSE, KSD, HSIC, KCI, Stein thinning."),
    ("kernelkit.ntk", "Neural tangent kernels", "Infinite-width NNGP / NTK and empirical NTKs."),
    ("kernelkit.selection", "Batch selection", "Active-learning batch selection (coding rate, LCMD, ...)."),
    ("kernelkit.localization", "Localization", "Fingerprint positioning with kernel top-k."),
    ("kernelkit.datasets", "Datasets", "Loaders of the shared real data and synthetic generators."),
    ("kernelkit.dask", "Dask", "Kernel reductions and methods on dask arrays (optional extra)."),
]


#: engine names documented under ``kernelkit`` (the package re-exports them; their pages live there)
_TOP_ENGINE = ("kernel_sum", "kernel_logsumexp", "kernel_topk", "kernel_block", "fused_available", "prepare_sum")


def _canonical(module):
    """Names documented under ``module``: its ``__all__`` minus those another listed module owns.

    The top-level package re-exports names of its subpackages; those are documented (once) under the
    subpackage, and the top-level page links to them.
    """
    mod = importlib.import_module(module)
    names = list(getattr(mod, "__all__", []))
    if module == "kernelkit.engine":   # the reductions are documented at the top level
        return [n for n in names if n not in _TOP_ENGINE]
    if module != "kernelkit":
        return names
    owned = set()
    for other, _, _ in MODULES[1:]:
        try:
            owned |= set(getattr(importlib.import_module(other), "__all__", []))
        except ImportError:   # an optional extra (dask) missing: its names are then documented here
            pass
    return [n for n in names if n not in owned or n in _TOP_ENGINE]


def public_names():
    """Every ``module.name`` the reference documents."""
    out = []
    for module, _, _ in MODULES:
        out += [f"{module}.{n}" for n in _canonical(module)]
    return out


def _is_data(module, name):
    """True for a constant (not a class, function or module): documented on its own written page."""
    import inspect
    obj = getattr(importlib.import_module(module), name)
    return not (inspect.isclass(obj) or callable(obj) or inspect.ismodule(obj))


def _attr_doc(module, name):
    """The ``#:`` comment documenting ``name`` in ``module`` or one of its submodules ('' if none)."""
    import pkgutil
    from sphinx.pycode import ModuleAnalyzer
    mod = importlib.import_module(module)
    mods = [module] + [f"{module}.{m.name}" for m in pkgutil.iter_modules(getattr(mod, "__path__", []))]
    for m in mods:
        try:
            docs = ModuleAnalyzer.for_module(m).find_attr_docs()
        except Exception:   # a module that cannot be analysed (compiled, or an optional import)
            continue
        if ("", name) in docs:
            return " ".join(line.strip() for line in docs[("", name)] if line.strip())
    return ""


def _data_page(module, name):
    obj = getattr(importlib.import_module(module), name)
    full = f"{module}.{name}"
    doc = _attr_doc(module, name) or f"A constant of :mod:`{module}`."
    return (f"{full}\n{'=' * len(full)}\n\n.. currentmodule:: {module}\n\n.. py:data:: {name}\n"
            f"   :value: {obj!r}\n\n   {doc}\n")


def _page(module, title, line):
    names = _canonical(module)
    head = f"{title}\n{'=' * len(title)}\n\n.. currentmodule:: {module}\n\n{line}\n\n"
    if module == "kernelkit":
        head += ("Names that ``kernelkit`` re-exports from its subpackages (``kk.KernelDensity``, "
                 "``kk.kernel_thin``, ...) are documented with their subpackage.\n\n")
    if module == "kernelkit.engine":
        head += ("The reductions themselves (``kernel_sum``, ``kernel_logsumexp``, ``kernel_topk``, "
                 "``kernel_block``) are documented at the top level: :doc:`kernelkit`.\n\n")
    data = [n for n in names if _is_data(module, n)]
    body = ".. autosummary::\n   :toctree: generated\n   :nosignatures:\n\n"
    body += "".join(f"   {n}\n" for n in names if n not in data)
    if data:
        body += "\nConstants\n---------\n\n.. toctree::\n   :hidden:\n\n"
        body += "".join(f"   generated/{module}.{n}\n" for n in data)
        body += "\n" + "".join(f"* :data:`{module}.{n}`\n" for n in data)
    return head + body


def write_api_pages(folder):
    """Write ``folder/index.rst`` and one ``folder/<module>.rst`` per module (only when changed)."""
    os.makedirs(folder, exist_ok=True)
    pages = {"index": "API reference\n=============\n\nEvery public name, by module. Each page is the name's "
                      "docstring: formula, parameters with their units, returns, and an example.\n\n"
                      ".. toctree::\n   :maxdepth: 1\n\n" + "".join(f"   {m}\n" for m, _, _ in MODULES)}
    for module, title, line in MODULES:
        pages[module] = _page(module, title, line)
    for module, _, _ in MODULES:
        for n in _canonical(module):
            if _is_data(module, n):
                pages[f"generated/{module}.{n}"] = _data_page(module, n)
    os.makedirs(os.path.join(folder, "generated"), exist_ok=True)
    for name, text in pages.items():
        path = os.path.join(folder, f"{name}.rst")
        old = open(path).read() if os.path.exists(path) else None
        if old != text:
            with open(path, "w") as fh:
                fh.write(text)
