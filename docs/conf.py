"""Sphinx configuration of kernelkit's documentation site.

Build:  pip install -e ".[docs]" && python -m sphinx -W -b html docs docs/_build/html
The API pages are generated from every public name's docstring (numpydoc); the
examples gallery (docs/examples/plot_*.py) runs when the site builds.
"""

from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.abspath(os.path.dirname(__file__)))
import _api  # noqa: E402  (docs/_api.py: writes the API pages from the packages' __all__)

project = "kernelkit"
author = "the kernelkit developers"
copyright = "2026, the kernelkit developers"

import kernelkit  # noqa: E402

release = version = kernelkit.__version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
    "sphinx.ext.intersphinx",
    "sphinx.ext.doctest",
    "numpydoc",
    "myst_parser",
    "sphinx_gallery.gen_gallery",
]

source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
root_doc = "index"
exclude_patterns = ["_build", "examples", "auto_examples/*.ipynb", "auto_examples/*.py",
                    "auto_examples/*.zip", "auto_examples/*.json", "auto_examples/*.md5"]
templates_path = ["_templates"]

# --- API pages: one page per public name (docs/_api.py writes api/*.rst before reading) ---
autosummary_generate = True
autosummary_imported_members = True
autodoc_default_options = {"members": False, "inherited-members": False}
autodoc_typehints = "none"
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
numpydoc_validation_checks = set()
numpydoc_xref_param_type = False
add_module_names = False


# written when the configuration is read, before autosummary looks for its stubs
_api.write_api_pages(os.path.join(os.path.dirname(os.path.abspath(__file__)), "api"))


# --- intersphinx: numpy / scipy / scikit-learn / dask. Their inventories need the network: without it
# (CI machines here reach only package registries) the links are plain text and no warning is raised.
intersphinx_mapping = {
    "python": ("https://docs.python.org/3", None),
    "numpy": ("https://numpy.org/doc/stable", None),
    "scipy": ("https://docs.scipy.org/doc/scipy", None),
    "sklearn": ("https://scikit-learn.org/stable", None),
    "dask": ("https://docs.dask.org/en/stable", None),
}
intersphinx_timeout = 5
if os.environ.get("KERNELKIT_DOCS_OFFLINE", "1") == "1":
    intersphinx_mapping = {}

# --- gallery ---
sphinx_gallery_conf = {
    "examples_dirs": "examples",
    "gallery_dirs": "auto_examples",
    "filename_pattern": r"/plot_",
    "download_all_examples": False,
    "within_subsection_order": "FileNameSortKey",
    "remove_config_comments": True,
    "show_memory": False,
    "min_reported_time": 0,
    "matplotlib_animations": False,
    "image_scrapers": ("matplotlib",),
    "abort_on_example_error": True,
}

# --- MyST (the Markdown pages: conventions, dask) ---
myst_enable_extensions = ["dollarmath"]
myst_heading_anchors = 3
suppress_warnings = ["myst.header"]

# --- HTML ---
html_theme = "pydata_sphinx_theme"
html_title = "kernelkit"
# no static files of our own (an empty _static folder would not survive a git clone)
html_static_path = []
html_theme_options = {"navigation_with_keys": False, "show_toc_level": 2}
html_show_sourcelink = False
# MathJax comes from its CDN; KERNELKIT_MATHJAX=<a local MathJax 3 "es5" folder> (npm's mathjax package)
# serves it from _static instead, for reading the site offline
if os.environ.get("KERNELKIT_MATHJAX"):
    html_static_path.append(os.environ["KERNELKIT_MATHJAX"])
    mathjax_path = "tex-mml-chtml.js"

# doctest: the docstring examples run with ``python -m sphinx -b doctest``
doctest_global_setup = "import numpy as np\nimport kernelkit as kk"

