"""Stage 2, the design: from a parsed formula and a data frame to ``y``, ``X`` and one block per random term.

The second stage of the pipeline (``parse_formula`` → ``make_design`` → objective or PyMC model).
Each random term becomes a :class:`RandomBlock` holding the integer group code of every row, the level
labels, the small ``n×q`` term matrix and the term names; no dense ``n×(levels·q)`` matrix is ever built.
The caller's data frame is never modified.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Any, Literal

import formulae
import numpy as np
import pandas as pd

from bayesmlm.design.checks import (
    check_column_types,
    check_columns,
    check_identifiable,
    check_random_terms,
    check_reserved_names,
    plain_booleans,
    unusable_rows,
    usable_columns,
)
from bayesmlm.design.levels import group_labels
from bayesmlm.design.moments import DesignMoments
from bayesmlm.design.rows import NoRows, rows_needed
from bayesmlm.exceptions import (
    ArgumentError,
    DataError,
    DroppedRowsWarning,
    FormulaError,
    MissingValueWarning,
    RankDeficientWarning,
)
from bayesmlm.spec.expression import ExpressionRefused, allowed_functions, check_expression
from bayesmlm.spec.formula import ModelSpec, RandomTerm, parse_formula
from bayesmlm.spec.namespace import formula_environment

__all__ = ["Design", "NaAction", "RandomBlock", "evaluate_formula", "independent_columns", "make_design"]

NaAction = Literal["drop", "error"]


def _readonly(a: np.ndarray) -> np.ndarray:
    a = np.ascontiguousarray(a, dtype=float)
    a.setflags(write=False)
    return a


@dataclass(frozen=True, eq=False)
class RandomBlock:
    """One random-effects term ``(expr | group)`` evaluated on the data.

    Attributes
    ----------
    term : RandomTerm
        The parsed term.
    group : str
        Name of the grouping factor (``"Subject"``, ``"cask:batch"``).
    levels : tuple of str
        Level labels, in the order of the codes.
    codes : ndarray of int, shape (n,)
        Level index of each row.
    Z : ndarray, shape (n, q)
        The term's columns (the row's own values of ``expr``).
    term_names : tuple of str
        Names of the ``q`` columns (``"Intercept"``, ``"Days"``).
    """

    term: RandomTerm
    group: str
    levels: tuple[str, ...]
    codes: np.ndarray
    Z: np.ndarray
    term_names: tuple[str, ...]
    expr_matrix: Any = field(repr=False)

    @property
    def q(self) -> int:
        """Number of random effects per level."""
        return self.Z.shape[1]

    @property
    def n_levels(self) -> int:
        """Number of levels of the grouping factor."""
        return len(self.levels)


@dataclass(frozen=True, eq=False)
class Design:
    """The evaluated model: response, fixed-effects matrix and random blocks.

    Attributes
    ----------
    spec : ModelSpec
        The parsed formula.
    y : ndarray, shape (n,)
    X : ndarray, shape (n, p)
        Fixed-effects matrix after aliased columns were dropped.
    fixed_names : tuple of str
    blocks : tuple of RandomBlock
    rows : pandas.Index
        Index labels of the data rows used.
    n_dropped : int
        Rows dropped because of missing or infinite values.
    aliased : tuple of str
        Fixed-effect columns dropped because they were linear combinations of earlier ones.
    data : DataFrame
        A copy of the rows and columns used.
    moments : DesignMoments, optional
        The columns' means and sds, carried by a design without rows (see :attr:`holds_rows`).
    """

    spec: ModelSpec
    y: np.ndarray
    X: np.ndarray
    fixed_names: tuple[str, ...]
    blocks: tuple[RandomBlock, ...]
    rows: pd.Index
    n_dropped: int
    aliased: tuple[str, ...]
    fixed_matrix: Any = field(repr=False)
    data: pd.DataFrame | None = field(default=None, repr=False)
    moments: DesignMoments | None = field(default=None, repr=False)

    @property
    def holds_rows(self) -> bool:
        """False for a design built from a Dask DataFrame: its rows stay where the data are.

        Its ``y``, ``X``, ``rows``, ``data`` and blocks' ``Z`` and ``codes`` are then
        :class:`~bayesmlm.design.rows.NoRows`, which raise :class:`~bayesmlm.RowsNeededError` when read.
        """
        return not isinstance(self.y, NoRows)

    def require_rows(self, what: str) -> None:
        """Raise :class:`~bayesmlm.RowsNeededError` saying that ``what`` needs rows, if there are none."""
        if isinstance(self.y, NoRows):
            raise rows_needed(what, self.y.source)

    @property
    def n(self) -> int:
        """Number of observations used."""
        return self.y.shape[0]

    @property
    def response_name(self) -> str:
        """The response expression (``"Reaction"``, ``"np.log(y)"``)."""
        return self.spec.response

    @property
    def p(self) -> int:
        """Number of fixed-effect columns."""
        return self.X.shape[1]

    def fixed_design(self, newdata: pd.DataFrame) -> np.ndarray:
        """Evaluate the fixed-effects columns on new data (stateful transforms keep their fit)."""
        if self.fixed_matrix is None:  # no fixed effects: "y ~ 0 + (1 | g)"
            return np.zeros((len(newdata), 0))
        try:
            new = np.asarray(np.asarray(self.fixed_matrix.evaluate_new_data(newdata)), dtype=float)
        except Exception as err:  # formulae raises ValueError, KeyError, ... for values it cannot encode
            raise DataError(
                f"cannot evaluate the fixed part '{self.spec.fixed}' on newdata: {err} (a fixed effect "
                "can only be predicted for levels seen in fitting)"
            ) from err
        keep = [self.fixed_matrix_names.index(name) for name in self.fixed_names]
        return new[:, keep]

    def check_newdata(self, newdata: pd.DataFrame, include_random: bool = True) -> np.ndarray:
        """Check new data for prediction; return the mask of rows with a missing value.

        Raises DataError unless ``newdata`` is a data frame with every column the prediction needs: the
        fixed part's, and the random terms' unless ``include_random`` is false (the response's never).
        Rows with a missing (or infinite) value in a needed column cannot be predicted: they are counted
        in a :class:`~bayesmlm.MissingValueWarning` and predicted as NaN by the callers.
        """
        if not isinstance(newdata, pd.DataFrame):
            raise DataError(f"newdata must be a pandas DataFrame, not {type(newdata).__name__}")
        needed = sorted(self.spec.needed_for_prediction(include_random))
        missing = sorted(v for v in needed if v not in newdata.columns)
        if missing:
            raise DataError(f"newdata lacks column(s) {missing} that the model uses")
        check_column_types(newdata, needed)
        bad, detail = unusable_rows(usable_columns(newdata, needed), needed)
        if bad.any():
            warnings.warn(
                f"{int(bad.sum())} of {len(newdata)} rows of newdata have missing or infinite values "
                f"({detail}); their predictions are NaN",
                MissingValueWarning,
                stacklevel=3,
            )
        return bad

    @property
    def fixed_matrix_names(self) -> list[str]:
        """Column names of the fixed design before aliased columns were dropped."""
        return list(self.fixed_matrix.as_dataframe().columns)


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


def make_design(
    spec: ModelSpec | str,
    data: pd.DataFrame,
    na_action: NaAction = "drop",
    extra_namespace: dict | None = None,
) -> Design:
    """Evaluate a model formula on data.

    Parameters
    ----------
    spec : ModelSpec or str
        A parsed formula, or a formula string to parse.
    data : DataFrame
        The data; it is not modified.
    na_action : {"drop", "error"}
        Rows with a missing (or infinite) value in any column the formula uses are dropped with a
        :class:`~bayesmlm.DroppedRowsWarning` giving the count (``"drop"``), or raise
        :class:`~bayesmlm.DataError` (``"error"``).
    extra_namespace : dict, optional
        Functions the formula may call besides numpy's element-wise ones and formulae's transforms
        (see :mod:`bayesmlm.spec.namespace`); nothing else is callable from a formula.

    Returns
    -------
    Design

    Examples
    --------
    >>> import bayesmlm as bm
    >>> d = make_design("Reaction ~ Days + (Days | Subject)", bm.load_dataset("sleepstudy"))
    >>> d.X.shape, d.blocks[0].Z.shape, d.blocks[0].n_levels
    ((180, 2), (180, 2), 18)
    """
    if isinstance(spec, str):
        spec = parse_formula(spec, extra_namespace or {})
    if not isinstance(data, pd.DataFrame):
        raise DataError(f"data must be a pandas DataFrame, not {type(data).__name__}")
    if na_action not in ("drop", "error"):
        raise ArgumentError(f"na_action must be 'drop' or 'error', not {na_action!r}")
    check_columns(spec, data)
    used = sorted(spec.variables)
    check_column_types(data, used)
    frame = usable_columns(data, used)
    bad, detail = unusable_rows(frame, used)
    n_bad = int(bad.sum())
    if n_bad:
        if na_action == "error":
            raise DataError(
                f"{n_bad} of {len(data)} rows have missing or infinite values ({detail}); "
                "clean them or use na_action='drop'"
            )
        warnings.warn(
            f"dropped {n_bad} of {len(data)} rows with missing or infinite values ({detail})",
            DroppedRowsWarning,
            stacklevel=2,
        )
    frame = plain_booleans(frame.loc[~bad].copy())
    if len(frame) == 0:
        raise DataError("no rows left to fit (the data is empty or every row has a missing value)")

    env = formula_environment(extra_namespace)
    allowed = allowed_functions(extra_namespace or {})
    dm = evaluate_formula(f"{spec.response} ~ {spec.fixed}", frame, "fixed part", env, allowed)
    y_raw = np.asarray(np.asarray(dm.response), dtype=float)
    if dm.response.kind != "numeric" or (y_raw.ndim == 2 and y_raw.shape[1] != 1):
        raise DataError(
            f"the response '{spec.response}' must be numeric, but it is categorical "
            f"({y_raw.shape[1] if y_raw.ndim == 2 else 1} level column(s)); convert it to numbers"
        )
    y = y_raw.reshape(-1)
    if dm.common is None:
        X_full = np.zeros((len(frame), 0))
        names_full: list[str] = []
    else:
        X_full = np.asarray(np.asarray(dm.common), dtype=float)
        names_full = list(dm.common.as_dataframe().columns)
    check_reserved_names(spec, names_full)
    if not np.all(np.isfinite(y)) or not np.all(np.isfinite(X_full)):
        raise DataError(
            "the response or a fixed-effect column has non-finite values after transformation "
            "(for example log of zero); check the transformations in the formula"
        )
    kept = independent_columns(X_full)
    aliased = tuple(n for j, n in enumerate(names_full) if j not in kept)
    if aliased:
        warnings.warn(
            f"fixed-effect model matrix is rank deficient, so dropping {len(aliased)} column"
            f"{'s' if len(aliased) > 1 else ''}: {', '.join(aliased)}",
            RankDeficientWarning,
            stacklevel=2,
        )
    X = X_full[:, kept]
    fixed_names = tuple(names_full[j] for j in kept)

    blocks = []
    for term in spec.random:
        tm = evaluate_formula(term.expr, frame, f"random term {term}", env, allowed)
        if tm.common is None:
            raise FormulaError(f"random term {term} has no columns")
        Z = np.asarray(np.asarray(tm.common), dtype=float)
        if not np.all(np.isfinite(Z)):
            raise DataError(f"random term {term} has non-finite values after transformation")
        codes, levels = group_labels(frame, term.factor)
        blocks.append(
            RandomBlock(
                term=term,
                group=term.group,
                levels=levels,
                codes=codes,
                Z=_readonly(Z),
                term_names=tuple(tm.common.as_dataframe().columns),
                expr_matrix=tm.common,
            )
        )
    check_random_terms(blocks)
    check_identifiable(len(y), X.shape[1], y, spec.response, blocks)
    return Design(
        spec=spec,
        y=_readonly(y),
        X=_readonly(X),
        fixed_names=fixed_names,
        blocks=tuple(blocks),
        rows=frame.index,
        n_dropped=n_bad,
        aliased=aliased,
        fixed_matrix=dm.common,
        data=frame,
    )
