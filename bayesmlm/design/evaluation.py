"""Stage 2, the design: evaluating one formula with formulae, and the columns that are not aliased.

:func:`evaluate_formula` checks the exact text formulae will evaluate against the grammar
(:mod:`bayesmlm.spec.expression`) before formulae sees it, and turns formulae's many exceptions into
:class:`~bayesmlm.FormulaError`; :func:`independent_columns` keeps each column that is not a combination
of earlier ones. Used by :func:`~bayesmlm.design.evaluate.make_design` and the Dask path's prototype.
"""

from __future__ import annotations

import formulae
import numpy as np
import pandas as pd

from bayesmlm.exceptions import FormulaError
from bayesmlm.spec.expression import ExpressionRefused, check_expression

__all__ = ["evaluate_formula", "independent_columns"]


def evaluate_formula(formula: str, data: pd.DataFrame, what: str, env, allowed: frozenset[str]):
    """Evaluate one formula with formulae, after checking the exact text it will evaluate.

    A :class:`ModelSpec` can be built by hand, bypassing :func:`parse_formula`; checking here too
    means nothing reaches formulae's evaluation unchecked.
    """
    try:
        check_expression(formula, allowed)
    except ExpressionRefused as err:
        raise FormulaError(f"could not evaluate the {what} '{formula}': {err}") from None
    try:
        return formulae.design_matrices(formula, data, na_action="error", env=env)
    except FormulaError:
        raise
    except KeyError as err:  # a name that is neither a column nor an allowed function
        raise FormulaError(
            f"could not evaluate the {what} '{formula}': {err.args[0]!r} is neither a column of the data "
            "nor a function formulas may call (numpy's element-wise functions such as np.log, and C, I, "
            "scale, center, standardize, poly, ...); add your own with extra_namespace={'name': function}"
        ) from err
    except Exception as err:  # formulae raises many kinds; all mean "this expression failed"
        raise FormulaError(f"could not evaluate the {what} '{formula}': {err}") from err


def independent_columns(X: np.ndarray, tol: float = 1e-7) -> list[int]:
    """Return the columns kept when each column that is a combination of earlier ones is dropped."""
    kept: list[int] = []
    for j in range(X.shape[1]):
        col = X[:, j]
        norm = np.linalg.norm(col)
        if norm == 0:
            continue
        if kept:
            coef, *_ = np.linalg.lstsq(X[:, kept], col, rcond=None)
            resid = np.linalg.norm(col - X[:, kept] @ coef)
        else:
            resid = norm
        if resid > tol * max(norm, 1.0):
            kept.append(j)
    return kept
