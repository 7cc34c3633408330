"""Docstrings: the Examples sections run, and the public API follows numpydoc.

1. Every ``>>>`` example in every kernelkit module (private ones included:
   ``kernelkit.options`` is documented in ``kernelkit._options``) runs under
   doctest with fixed NumPy print options, and must print what it shows.
2. Every public object (each name in the ``__all__`` of a public module,
   that is one with no ``_`` component in its dotted path, and the public
   methods and properties of public classes) has a docstring with a summary
   line, sections that numpydoc parses without a warning, and a Parameters
   entry for every parameter of its signature (several names may share one
   entry: ``memory, threads, backend, progress : optional``) and none that is
   not in the signature. A method's docstring may be a single paragraph, but
   a Parameters section, once it has one, must be complete. A public module
   must have a docstring and ``__all__``.

``KNOWN_GAPS`` lists what fails today (the src docstrings are being edited
elsewhere); it may only shrink: an entry that starts passing, or whose
problems change, fails the test until the entry is removed or updated.
"""

import dataclasses
import doctest
import importlib
import inspect
import pkgutil
import warnings
from typing import NamedTuple

import numpy as np
import pytest
from numpydoc.docscrape import NumpyDocString

import kernelkit

OPTIONAL_DEPENDENCIES = {"torch", "dask", "distributed", "matplotlib", "pyarrow"}


def _all_modules():
    """{dotted name: module} for kernelkit and every submodule (optional dependencies permitting)."""
    modules = {"kernelkit": kernelkit}
    for info in pkgutil.walk_packages(kernelkit.__path__, "kernelkit."):
        if info.name.rsplit(".", 1)[-1] == "__main__":
            continue
        try:
            modules[info.name] = importlib.import_module(info.name)
        except ModuleNotFoundError as exc:  # a module of an optional backend
            if exc.name is None or exc.name.split(".")[0] not in OPTIONAL_DEPENDENCIES:
                raise
    return modules


MODULES = _all_modules()
PUBLIC_MODULES = {name: mod for name, mod in MODULES.items()
                  if not any(part.startswith("_") for part in name.split("."))}


# --------------------------------------------------------------------------------------------
# 1. doctests of the Examples sections
# --------------------------------------------------------------------------------------------
# Fixed print options, whatever the user's or another test's settings; numpy >= 2 prints scalars as
# numpy < 2 did (0.5, not np.float64(0.5)), so that the examples read the same under both.
PRINT_OPTIONS = dict(precision=8, threshold=1000, edgeitems=3, linewidth=75, suppress=False, nanstr="nan",
                     infstr="inf", sign="-", floatmode="maxprec",
                     legacy="1.25" if np.lib.NumpyVersion(np.__version__) >= "2.0.0" else False)
DOCTEST_FLAGS = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE


def _doctests(module):
    return [t for t in doctest.DocTestFinder(exclude_empty=True).find(module, module.__name__) if t.examples]


DOCTESTS = {t.name: name for name, mod in MODULES.items() for t in _doctests(mod)}


def test_doctests_are_collected():
    assert len(DOCTESTS) >= 2, f"the doctest finder sees almost no examples: {sorted(DOCTESTS)}"


@pytest.mark.parametrize("name", sorted(DOCTESTS))
def test_doctest(name):
    test = next(t for t in _doctests(MODULES[DOCTESTS[name]]) if t.name == name)  # fresh globals
    if any("import torch" in ex.source for ex in test.examples):   # examples of the optional torch paths
        pytest.importorskip("torch")
    runner = doctest.DocTestRunner(optionflags=DOCTEST_FLAGS)
    report = []
    with np.printoptions(**PRINT_OPTIONS), kernelkit.options():
        runner.run(test, out=report.append)
    assert runner.failures == 0, "".join(report)


# --------------------------------------------------------------------------------------------
# 2. numpydoc structure of the public API
# --------------------------------------------------------------------------------------------
def _in_kernelkit(obj):
    return (getattr(obj, "__module__", None) or "").split(".")[0] == "kernelkit"


def _canonical_names():
    """({public name: object}, {public name: method or property}): each object under the public module
    nearest to where it is defined (kernelkit.Gaussian is kernelkit.kernels.Gaussian), then the public
    methods and properties of the public classes."""
    paths = {}  # id -> (object, [public names])
    for mod_name, mod in sorted(PUBLIC_MODULES.items()):
        for attr in getattr(mod, "__all__", ()):
            obj = getattr(mod, attr, _MISSING)
            if obj is _MISSING:
                paths[f"{mod_name}.{attr}"] = (_MISSING, [f"{mod_name}.{attr}"])
                continue
            if not (inspect.isclass(obj) or callable(obj) or inspect.ismodule(obj)):
                continue  # data (tables, constants): documented in the module docstring or by comments
            paths.setdefault(id(obj), (obj, []))[1].append(f"{mod_name}.{attr}")
    out = dict(PUBLIC_MODULES)
    for obj, names in paths.values():
        home = getattr(obj, "__module__", "") or ""

        def nearness(name):
            mod = name.rsplit(".", 1)[0]
            return (home == mod or home.startswith(mod + "."), mod.count("."), -len(name))
        out.setdefault(max(names, key=nearness), obj)
    members = {}
    for name, obj in out.items():
        if inspect.isclass(obj) and _in_kernelkit(obj):
            members.update(_members(name, obj, {id(o) for o in out.values()}))
    return out, members


class _Missing:
    def __repr__(self):
        return "<missing>"


_MISSING = _Missing()


class _Member(NamedTuple):
    """A method or property of a public class: its definition and its docstring (its own, or that of the
    method it overrides)."""
    raw: object
    doc: object


def _members(cls_name, cls, public_ids):
    """Public methods and properties of a class, from it or its private kernelkit bases."""
    out = {}
    for attr in dir(cls):
        if attr.startswith("_"):
            continue
        owner = next((c for c in cls.__mro__ if attr in vars(c)), None)
        if owner is None or not _in_kernelkit(owner) or (owner is not cls and id(owner) in public_ids):
            continue  # inherited from outside kernelkit, or checked on the public base class
        raw = vars(owner)[attr]
        if isinstance(raw, (staticmethod, classmethod, property)) or inspect.isfunction(raw):
            docs = (_docstring(vars(c)[attr]) for c in cls.__mro__ if attr in vars(c))
            out[f"{cls_name}.{attr}"] = _Member(raw, next((d for d in docs if d and d.strip()), None))
    return out


def _docstring(obj):
    if isinstance(obj, _Member):
        return obj.doc
    if isinstance(obj, (staticmethod, classmethod)):
        obj = obj.__func__
    return getattr(obj, "__doc__", None)  # its own (inspect.getdoc would inherit a base class's)


def _signature_names(obj):
    """(parameter names to document, accepts **kwargs) of a function, method or class (its __init__)."""
    drop_first = False
    if isinstance(obj, property) or inspect.ismodule(obj):
        return [], False
    if isinstance(obj, staticmethod):
        obj = obj.__func__
    elif isinstance(obj, classmethod):
        obj, drop_first = obj.__func__, True
    elif inspect.isclass(obj):
        init = next((vars(c)["__init__"] for c in obj.__mro__ if "__init__" in vars(c)), None)
        if init is None or not _in_kernelkit(init):
            return [], False  # object's or a builtin's __init__: nothing of kernelkit's to document
        obj, drop_first = init, True
    elif inspect.isfunction(obj) and "." in obj.__qualname__ and "<locals>" not in obj.__qualname__:
        drop_first = True  # a method from a class __dict__: self
    try:
        params = list(inspect.signature(obj).parameters.values())
    except (TypeError, ValueError):
        return [], False
    if drop_first and params:
        params = params[1:]
    kwargs = any(p.kind == p.VAR_KEYWORD for p in params)
    return [p.name for p in params], kwargs


def _documented_names(parsed):
    names = []
    for section in ("Parameters", "Other Parameters"):
        for entry in parsed[section]:
            names += [n.strip().lstrip("*") for n in entry.name.split(",") if n.strip()]
    return names


def problems(obj):
    """What is wrong with the docstring of a public object (a _Member for a method or property of a
    public class), as a sorted tuple of short sentences."""
    if obj is _MISSING:
        return ("listed in __all__ but not defined",)
    member = isinstance(obj, _Member)
    found = []
    if inspect.ismodule(obj) and not hasattr(obj, "__all__"):
        found.append("no __all__")
    doc = _docstring(obj)
    if not doc or not doc.strip():
        return tuple(found + ["no docstring"])
    doc = inspect.cleandoc(doc)
    if not doc.splitlines()[0].strip():
        found.append("no summary line")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            parsed = NumpyDocString(doc)
        except Exception as exc:  # numpydoc raises ValueError (and others) on malformed sections
            return tuple(sorted(found + [f"numpydoc cannot parse it: {exc}"]))
    found += [f"numpydoc: {w.message}".split(" in the docstring of")[0] for w in caught]
    if not parsed["Summary"]:
        found.append("no summary line")
    params, kwargs = _signature_names(obj.raw if member else obj)
    documented = _documented_names(parsed)
    if member and not parsed["Parameters"]:
        params = []  # a method may be one paragraph; a Parameters section, once there, must be complete
    if dataclasses.is_dataclass(obj):  # fields may be documented as Attributes
        documented += [n.strip() for entry in parsed["Attributes"] for n in entry.name.split(",")]
    missing = [p for p in params if p not in documented]
    if missing:
        found.append(f"parameters not documented: {', '.join(missing)}")
    unknown = [d for d in documented if d not in params]
    if unknown and not kwargs and not dataclasses.is_dataclass(obj):
        found.append(f"documents parameters not in the signature: {', '.join(unknown)}")
    return tuple(sorted(set(found)))


PUBLIC_OBJECTS, PUBLIC_MEMBERS = _canonical_names()
PUBLIC = {**PUBLIC_OBJECTS, **PUBLIC_MEMBERS}

# What fails today. Each entry: the public name -> its problems, exactly as problems() reports them.
# Fix the docstring, then delete (or shrink) the entry: the test fails while an entry is stale.
KNOWN_GAPS = {
}


def test_public_api_is_found():
    for name in ("kernelkit", "kernelkit.engine", "kernelkit.kernels.Gaussian", "kernelkit.engine.kernel_sum"):
        assert name in PUBLIC, sorted(PUBLIC)


@pytest.mark.parametrize("name", sorted(PUBLIC))
def test_numpydoc(name):
    found = problems(PUBLIC[name])
    known = KNOWN_GAPS.get(name)
    if known is None:
        assert not found, f"{name}: " + "; ".join(found)
        return
    assert found, f"{name} now passes: remove it from KNOWN_GAPS in tests/test_docstrings.py"
    assert found == tuple(sorted(known)), (f"{name}: its problems changed; update KNOWN_GAPS (it may only shrink).\n"
                                           f"  now:   {found}\n  known: {tuple(sorted(known))}")


def test_known_gaps_name_public_objects():
    stale = sorted(set(KNOWN_GAPS) - set(PUBLIC))
    assert not stale, f"KNOWN_GAPS names objects that are no longer public: {stale}"


def _good(X, Y=None, *, memory=None, threads=None):
    """Do a thing.

    Parameters
    ----------
    X, Y : array
        Points.
    memory, threads : optional
        Engine options.
    """


def _undocumented(X, k):
    """Do a thing.

    Parameters
    ----------
    X : array
        Points.
    bandwidth : float
        Not a parameter.

    Kernel Notes
    ------------
    Not a numpydoc section.
    """


def test_the_checker_sees_gaps():
    """problems() passes a complete docstring and reports each kind of gap (so that a pass means something)."""
    assert problems(_good) == ()
    assert problems(_undocumented) == ("documents parameters not in the signature: bandwidth",
                                       "numpydoc: Unknown section Kernel Notes", "parameters not documented: k")
    assert problems(lambda x: x) == ("no docstring",)
    assert problems(_MISSING) == ("listed in __all__ but not defined",)
    one_paragraph = _Member(_undocumented, "Do a thing to X.")
    assert problems(one_paragraph) == ()  # a method may be one paragraph
