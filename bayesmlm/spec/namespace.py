"""Stage 1, the specification: the only functions a formula may call (formulas are not code).

formulae evaluates the function calls in a formula's terms (``np.log(x)``) by looking names up in an
environment. By default that environment is the caller's module, so any object reachable from it
could be called: ``pd.io.common.os.system("...")`` ran a shell command. bayesmlm evaluates formulas
in a namespace of its own instead:

- formulae's transforms and encodings, always: ``C``, ``I``, ``scale``, ``center``, ``standardize``,
  ``poly``, ``bs``, ``binary``, ``offset`` and the others formulae defines;
- lme4's binomial response :func:`cbind` ``(successes, failures)``;
- the element-wise numpy functions in :data:`NUMPY_FUNCTIONS`, as ``np.<name>``, ``numpy.<name>`` or
  the bare ``<name>`` (``np.log(x)``, ``log(x)``);
- what the user adds with ``extra_namespace={"name": function}``.

Anything else (another attribute of ``np``, a module, ``eval``, ``open``) is a
:class:`~bayesmlm.FormulaError` raised before anything in the formula is evaluated: every expression is
first checked against the grammar of :mod:`bayesmlm.spec.expression`, which allows calls of these names
only, and no attribute access beyond ``np.<name>``.
"""

from __future__ import annotations

import keyword
from collections.abc import Callable, Mapping

import numpy as np
from formulae.environment import Environment

from bayesmlm.exceptions import FormulaError
from bayesmlm.spec.expression import BINOMIAL_RESPONSE, NUMPY_FUNCTIONS

__all__ = ["NUMPY_FUNCTIONS", "RestrictedModule", "cbind", "formula_environment", "formula_namespace"]


def cbind(successes, failures) -> np.ndarray:
    """lme4's binomial response: the successes and failures of each row as two columns.

    Examples
    --------
    >>> cbind(np.array([2, 3]), np.array([12, 9])).tolist()
    [[2.0, 12.0], [3.0, 9.0]]
    """
    columns = []
    for what, values in (("successes", successes), ("failures", failures)):
        values = np.asarray(values)
        if values.ndim != 1 or not (np.issubdtype(values.dtype, np.number) or values.dtype == bool):
            raise FormulaError(f"cbind(successes, failures): the {what} must be one numeric column")
        columns.append(values.astype(float))
    return np.column_stack(columns)


class RestrictedModule:
    """Stand-in for a module in formulas: only the listed functions are attributes.

    Examples
    --------
    >>> np_ = RestrictedModule("np", {"log": np.log})
    >>> np_.log is np.log
    True
    >>> np_.lib  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    bayesmlm.exceptions.FormulaError: np.lib is not a function formulas may call; ...
    """

    def __init__(self, name: str, functions: Mapping[str, Callable]):
        self._name = name
        self._functions = dict(functions)

    def __getattr__(self, attr: str):
        if attr.startswith("__"):  # pickle and copy look these up (formulas cannot: no dunder names)
            raise AttributeError(attr)
        functions = self.__dict__.get("_functions", {})
        if attr in functions:
            return functions[attr]
        raise FormulaError(
            f"{self.__dict__.get('_name')}.{attr} is not a function formulas may call; allowed: "
            f"{', '.join(sorted(functions))} (and C, I, scale, center, standardize, poly, bs, ...); "
            "add your own with extra_namespace={'name': function}"
        )

    def __repr__(self) -> str:
        return f"<formula namespace {self._name}: {', '.join(sorted(self._functions))}>"


def formula_namespace(extra_namespace: Mapping[str, Callable] | None = None) -> dict[str, object]:
    """Return the names a formula may use: numpy's element-wise functions and the user's additions.

    Parameters
    ----------
    extra_namespace : dict, optional
        Name -> callable added for this model (e.g. ``{"logit": scipy.special.logit}``).

    Returns
    -------
    dict

    Raises
    ------
    FormulaError
        If an extra name is not an identifier or its value is not callable.
    """
    functions = {name: getattr(np, name) for name in NUMPY_FUNCTIONS}
    namespace: dict[str, object] = dict(functions)
    namespace["np"] = namespace["numpy"] = RestrictedModule("np", functions)
    namespace[BINOMIAL_RESPONSE] = cbind
    for name, value in (extra_namespace or {}).items():
        if not isinstance(name, str) or not name.isidentifier() or keyword.iskeyword(name):
            raise FormulaError(f"extra_namespace key {name!r} is not a valid name")
        if name.startswith("_"):
            raise FormulaError(
                f"extra_namespace key {name!r} starts with '_'; give the function a plain name"
            )
        if not callable(value) and not isinstance(value, RestrictedModule):
            raise FormulaError(f"extra_namespace[{name!r}] must be a function, not {type(value).__name__}")
        namespace[name] = value
    return namespace


def formula_environment(extra_namespace: Mapping[str, Callable] | None = None) -> Environment:
    """Return the formulae ``Environment`` formulas are evaluated in (see :func:`formula_namespace`)."""
    return Environment([formula_namespace(extra_namespace)])
