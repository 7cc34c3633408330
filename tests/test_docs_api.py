"""The documentation's API reference covers every public name (docs/_api.py; the built site is checked by
docs/check_site.py in CI)."""

import importlib
import os
import sys

import pytest

DOCS = os.path.join(os.path.dirname(__file__), os.pardir, "docs")


@pytest.fixture(scope="module")
def api():
    pytest.importorskip("sphinx")
    sys.path.insert(0, DOCS)
    try:
        import _api
        yield _api
    finally:
        sys.path.remove(DOCS)


def test_every_public_name_of_every_module_has_a_page(api):
    documented = set(api.public_names())
    assert len(documented) == len(api.public_names())   # each name documented once
    for module, _, _ in api.MODULES:
        mod = importlib.import_module(module)
        for name in getattr(mod, "__all__", []):
            # a re-exported name is documented where it is defined (kernelkit.X -> its subpackage, and the
            # engine's reductions at the top level)
            homes = {f"{m}.{name}" for m, _, _ in api.MODULES}
            assert documented & homes, f"{module}.{name} has no API page"


def test_top_level_names_and_subpackages_are_all_listed(api):
    import kernelkit
    listed = {m for m, _, _ in api.MODULES}
    for sub in kernelkit._SUBMODULES:
        assert f"kernelkit.{sub}" in listed, f"kernelkit.{sub} has no API section"
    documented = {n.rsplit(".", 1)[1] for n in api.public_names()}
    missing = [n for n in kernelkit.__all__ if n not in documented]
    assert not missing, missing


def test_api_pages_are_written(api, tmp_path):
    api.write_api_pages(str(tmp_path))
    index = (tmp_path / "index.rst").read_text()
    for module, _, _ in api.MODULES:
        assert f"   {module}\n" in index
        assert (tmp_path / f"{module}.rst").exists()
