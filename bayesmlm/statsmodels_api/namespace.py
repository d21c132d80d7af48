"""The statsmodels entry point, the caller's functions: ``eval_env``/``extra_namespace`` as explicit dicts.

statsmodels evaluates ``formula``, ``re_formula`` and ``vc_formula`` in the caller's frame, so any name
there can be reached. bayesmlm keeps its whitelist (:mod:`bayesmlm.spec.namespace`): numpy's
element-wise functions, formulae's transforms, and what the caller passes explicitly as
``{"name": function}`` (plain names, callables only; modules and names starting with ``_`` are refused).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from bayesmlm.exceptions import ArgumentError, FormulaError
from bayesmlm.spec.namespace import formula_namespace

__all__ = ["caller_functions"]


def caller_functions(eval_env: Any, extra_namespace: Any) -> dict[str, Any] | None:
    """Return the functions formulas may call besides the whitelist (``eval_env``/``extra_namespace``).

    statsmodels evaluates formulas in the caller's frame (``eval_env`` = a frame depth); here formulas
    see only the whitelisted functions and those passed explicitly, ``{"name": function}``. An integer
    frame depth is refused (``-1``, statsmodels' "no names from the caller", is the default here).

    Examples
    --------
    >>> caller_functions({"double": lambda v: 2 * v}, None).keys()
    dict_keys(['double'])
    >>> caller_functions(-1, None) is None
    True
    """
    if eval_env is not None and extra_namespace is not None:
        raise ArgumentError("pass the formula's functions as eval_env= or extra_namespace=, not both")
    given, what = (eval_env, "eval_env") if eval_env is not None else (extra_namespace, "extra_namespace")
    if given is None or (what == "eval_env" and type(given) is int and given == -1):
        return None
    if isinstance(given, bool | int | np.integer):
        raise ArgumentError(
            f"eval_env={given!r} is statsmodels' frame depth: formulas here do not read the caller's "
            "variables; pass the functions they call as a dict, eval_env={'name': function}"
        )
    if not isinstance(given, Mapping):
        raise ArgumentError(
            f"{what} must be a dict of the functions formulas may call, {{'name': function}}, "
            f"not {type(given).__name__}"
        )
    try:
        formula_namespace(dict(given))  # the whitelist's checks: plain names, callables only
    except FormulaError as err:
        raise FormulaError(str(err).replace("extra_namespace", what)) from err
    return dict(given)
