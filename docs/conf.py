"""Sphinx configuration of the bayesmlm documentation (Markdown pages through MyST, API from docstrings).

Build: ``.venv/bin/python -m sphinx -W --keep-going -b html docs docs/_build/html``; the test
``tests/test_docs.py`` runs the same build with warnings as errors.
"""

import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # autodoc imports bayesmlm from this source tree

project = "bayesmlm"
author = "the bayesmlm developers"
copyright = "the bayesmlm developers"
release = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
version = release

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
]

source_suffix = {".md": "markdown", ".rst": "restructuredtext"}
root_doc = "index"
exclude_patterns = ["_build", "Thumbs.db", ".DS_Store"]

# MyST: anchors for headings down to ###, so pages can link to sections (bayesian.md#priors)
myst_heading_anchors = 3

# autodoc + napoleon: numpy-style docstrings
autodoc_default_options = {"members": True, "member-order": "bysource", "show-inheritance": True}
autodoc_typehints = "signature"
autodoc_preserve_defaults = True
napoleon_google_docstring = False
napoleon_numpy_docstring = True
napoleon_use_ivar = True  # "Attributes" sections as fields, not as duplicate attribute entries
napoleon_use_rtype = False

html_theme = "alabaster"
html_title = f"bayesmlm {release}"
html_theme_options = {
    "description": "Bayesian multilevel linear models with lme4 formulas",
    "page_width": "1100px",
    "sidebar_width": "220px",
}
html_static_path = ["_static"]
html_css_files = ["custom.css"]


def _no_inline_type(app, what, name, obj, options, lines):
    """Keep napoleon from reading the words before a colon in a property's first line as its type.

    napoleon takes the first line of an attribute, data or property docstring as ``type: description``
    (a Google-style convention), so "Fixed effects: estimate, se, ..." would render as the type "Fixed
    effects". bayesmlm's property docstrings are plain numpy-style sentences: an empty RST comment as
    the first line leaves napoleon no colon to split on, and renders as nothing.
    """
    if what in ("attribute", "data", "property") and any(line.strip() for line in lines):
        lines[:0] = ["..", ""]


def setup(app):
    """Register the docstring hook before napoleon's (priority 500)."""
    app.connect("autodoc-process-docstring", _no_inline_type, priority=400)
