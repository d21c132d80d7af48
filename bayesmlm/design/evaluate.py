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

import numpy as np
import pandas as pd

from bayesmlm.arguments import checked
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
from bayesmlm.design.evaluation import evaluate_formula, independent_columns
from bayesmlm.design.levels import group_labels
from bayesmlm.design.moments import DesignMoments
from bayesmlm.design.response import (
    checked_weights,
    offset_columns,
    predictor_columns,
    prior_weight_column,
    refuse_random_offset,
    response_columns,
)
from bayesmlm.design.rows import NoRows, rows_needed
from bayesmlm.exceptions import (
    ArgumentError,
    DataError,
    DroppedRowsWarning,
    FormulaError,
    MissingValueWarning,
    RankDeficientWarning,
)
from bayesmlm.spec.expression import allowed_functions
from bayesmlm.spec.formula import ModelSpec, RandomTerm, parse_formula
from bayesmlm.spec.namespace import formula_environment

__all__ = ["Design", "NaAction", "RandomBlock", "make_design"]

NaAction = Literal["drop", "error"]


def _readonly(a: np.ndarray | None) -> np.ndarray | None:
    if a is None:
        return None
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
    trials, offset, weights : ndarray or None
        Per row: the trials of a binomial response (``cbind(s, f)``, ``p(s, n)``; ``y`` holds the
        successes), the summed ``offset(...)`` terms, the prior weights.
    response_levels : tuple of str or None
        ``(failure, success)`` of a two-level categorical response (``y`` is 1 for a success).
    predictors : frozenset of str
        Columns needed to predict (the formula's columns except those only in the response).
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
    trials: np.ndarray | None = field(default=None, repr=False)
    offset: np.ndarray | None = field(default=None, repr=False)
    weights: np.ndarray | None = field(default=None, repr=False)
    response_levels: tuple[str, str] | None = None
    predictors: frozenset[str] | None = field(default=None, repr=False)
    moments: DesignMoments | None = field(default=None, repr=False)

    @property
    def holds_rows(self) -> bool:
        """False for a design built from a Dask DataFrame: its rows stay where the data are.

        Its ``y``, ``X``, ``rows``, ``data`` and blocks' ``Z`` and ``codes`` are then
        :class:`~bayesmlm.design.rows.NoRows`, which raise :class:`~bayesmlm.RowsNeededError` when read.
        """
        return not isinstance(self.y, NoRows)

    @checked
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

    @checked
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

    @checked
    def offset_for(self, newdata: pd.DataFrame) -> np.ndarray:
        """Return the offset of new rows (zeros for a model without ``offset(...)``)."""
        if self.offset is None:
            return np.zeros(len(newdata))
        try:
            new = self.fixed_matrix.evaluate_new_data(newdata)
        except Exception as err:  # formulae raises many kinds for values it cannot encode
            raise DataError(f"cannot evaluate the offset on newdata: {err}") from err
        return offset_columns(new)[0]

    @checked
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


@checked
def make_design(
    spec: ModelSpec | str,
    data: pd.DataFrame,
    na_action: NaAction = "drop",
    extra_namespace: dict | None = None,
    weights=None,
    generalized: bool = False,
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
    weights : str or array_like, optional
        Prior weights: a column name or one number per row (see :mod:`bayesmlm.design.response`; a
        row whose weight is missing or infinite is dropped like one with a missing value).
    generalized : bool
        Accept two-column (binomial) and two-level responses, leaving the response checks to the
        family; otherwise (Gaussian) they are refused.

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
    data, weight_column = prior_weight_column(data, weights, generalized)
    used = sorted(spec.variables | ({weight_column} if weight_column else set()))
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
    response = response_columns(dm.response, spec.response, generalized)
    y = response.y
    offset, kept_columns = offset_columns(dm.common, generalized)
    if dm.common is None:
        X_full = np.zeros((len(frame), 0))
        names_full: list[str] = []
    else:
        X_full = np.asarray(np.asarray(dm.common), dtype=float)[:, kept_columns]
        names_full = [list(dm.common.as_dataframe().columns)[j] for j in kept_columns]
    check_reserved_names(spec, names_full)
    finite = [y, X_full, *(a for a in (response.trials, offset) if a is not None)]
    if not all(np.all(np.isfinite(a)) for a in finite):
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
        refuse_random_offset(tm.common, term)
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
    check_identifiable(len(y), X.shape[1], y, spec.response, blocks, generalized)
    w = checked_weights(frame[weight_column].to_numpy(dtype=float), generalized) if weight_column else None
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
        trials=_readonly(response.trials),
        offset=_readonly(offset),
        weights=_readonly(w),
        response_levels=response.levels,
        predictors=predictor_columns(spec, allowed),
    )
