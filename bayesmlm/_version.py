"""The package version, and the versions of what a fit depends on (recorded in every fit's info)."""

from __future__ import annotations

import platform
from importlib.metadata import version

__all__ = ["__version__", "package_versions"]

__version__ = "0.1.0.dev0"


def package_versions() -> dict[str, str]:
    """Versions of Python, bayesmlm and the packages a fit depends on (those installed).

    Examples
    --------
    >>> {"bayesmlm", "python", "numpy", "pandas"} <= set(package_versions())
    True
    """
    out = {"bayesmlm": __version__, "python": platform.python_version()}
    for pkg in ("pymc", "pytensor", "arviz", "numpy", "pandas", "formulae", "nutpie", "numba"):
        try:
            out[pkg] = version(pkg)
        except Exception:  # not installed
            continue
    return out
