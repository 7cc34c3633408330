"""Lazy public names of a subpackage: each is imported from its module on first use."""

from __future__ import annotations

import importlib
import sys

__all__ = ["lazy_exports", "require_torch"]


def lazy_exports(package, table):
    """``(__getattr__, __dir__)`` for a package whose names ``table`` maps to the modules defining them.

    ``table``: public name -> module, relative to ``package`` (e.g. ``{"KernelRidge": "._exact"}``).
    A name is imported on first access and then cached in the package's namespace.
    """
    def __getattr__(name):
        if name in table:
            value = getattr(importlib.import_module(table[name], package), name)
            vars(sys.modules[package])[name] = value
            return value
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    def __dir__():
        return sorted(set(vars(sys.modules[package])) | set(table))

    return __getattr__, __dir__


def require_torch(owner):
    """``import torch`` for ``owner`` (a function name), or an ImportError naming the extra to install."""
    try:
        import torch
    except ImportError:
        raise ImportError(f"{owner} needs PyTorch: pip install 'kernelkit[torch]'", name="torch") from None
    return torch
