"""From a parsed formula and a data frame to the model's design: ``y``, ``X`` and one block per random term.

This is the second stage of the pipeline (``parse_formula`` → ``make_design`` → objective or PyMC model).
Each random term becomes a :class:`RandomBlock` holding the integer group code of every row, the level
labels, the small ``n×q`` term matrix and the term names; no dense ``n×(levels·q)`` matrix is ever built.
The caller's data frame is never modified.
"""

from __future__ import annotations

import difflib
import numbers
import warnings
from dataclasses import dataclass, field
from typing import Any, Literal

import formulae
import numpy as np
import pandas as pd

from bayesmlm.exceptions import (
    DataError,
    DroppedRowsWarning,
    FewGroupsWarning,
    FormulaError,
    MissingValueWarning,
    RankDeficientWarning,
)
from bayesmlm.expression import ExpressionRefused, allowed_functions, check_expression
from bayesmlm.formula import ModelSpec, RandomTerm, parse_formula
from bayesmlm.namespace import formula_environment

__all__ = ["Design", "RandomBlock", "group_labels", "level_keys", "make_design"]

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

    def check_newdata(self, newdata: pd.DataFrame) -> np.ndarray:
        """Check new data for prediction; return the mask of rows with a missing value.

        Raises DataError unless ``newdata`` is a data frame with every column the model needs. Rows
        with a missing (or infinite) value in a used column cannot be predicted: they are counted in a
        :class:`~bayesmlm.MissingValueWarning` and predicted as NaN by the callers.
        """
        if not isinstance(newdata, pd.DataFrame):
            raise DataError(f"newdata must be a pandas DataFrame, not {type(newdata).__name__}")
        needed = sorted(set(self.spec.variables) - {self.spec.response})
        missing = sorted(v for v in needed if v not in newdata.columns)
        if missing:
            raise DataError(f"newdata lacks column(s) {missing} that the model uses")
        _check_column_types(newdata, needed)
        bad, detail = _unusable_rows(_usable_columns(newdata, needed), needed)
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


def _natural_levels(values: pd.Series) -> list[Any]:
    """Sorted unique values: categories in their order, numbers numerically, integer strings by value."""
    if isinstance(values.dtype, pd.CategoricalDtype):
        present = set(values.dropna().unique())
        return [c for c in values.cat.categories if c in present]
    uniq = pd.unique(values.dropna())
    if pd.api.types.is_numeric_dtype(values.dtype) or pd.api.types.is_bool_dtype(values.dtype):
        return sorted(uniq)
    labels = [_label(u) for u in uniq]  # as level_keys labels each row (308.0 -> "308")
    try:
        return sorted(labels, key=int)
    except ValueError:
        return sorted(labels)


def _label(value: Any) -> str:
    if isinstance(value, np.generic):  # np.float32(9.0) is not a float: label it as the Python value
        value = value.item()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def level_keys(data: pd.DataFrame, factor: tuple[str, ...]) -> np.ndarray:
    """Each row's level label of a (possibly interacted) grouping factor, e.g. ``"a:A"``.

    Examples
    --------
    >>> import pandas as pd
    >>> level_keys(pd.DataFrame({"a": ["x", "y"], "b": [1.0, 2.0]}), ("a", "b")).tolist()
    ['x:1', 'y:2']
    """
    columns = [data[name].astype(object).map(_label).to_numpy(dtype=object) for name in factor]
    keys = columns[0]
    for other in columns[1:]:
        keys = np.array([f"{a}:{b}" for a, b in zip(keys, other, strict=True)], dtype=object)
    return keys


def group_labels(data: pd.DataFrame, factor: tuple[str, ...]) -> tuple[np.ndarray, tuple[str, ...]]:
    """Integer codes and level labels of a (possibly interacted) grouping factor.

    Parameters
    ----------
    data : DataFrame
        Rows to code (no missing values in the factor columns).
    factor : tuple of str
        Column names; several columns form their interaction, labelled ``"a:A"``.

    Returns
    -------
    codes : ndarray of int
    levels : tuple of str

    Examples
    --------
    >>> import pandas as pd
    >>> codes, levels = group_labels(pd.DataFrame({"g": [3, 1, 3]}), ("g",))
    >>> codes.tolist(), levels
    ([1, 0, 1], ('1', '3'))
    """
    per_column = []
    labels_per_column = []
    for name in factor:
        labels = [_label(v) for v in _natural_levels(data[name])]
        keys = data[name].astype(object).map(_label)
        per_column.append(np.asarray(pd.Categorical(keys, categories=labels).codes, dtype=np.int64))
        labels_per_column.append(labels)
    combos, codes = np.unique(np.column_stack(per_column), axis=0, return_inverse=True)
    levels = tuple(":".join(labels_per_column[i][k] for i, k in enumerate(row)) for row in combos)
    return codes.reshape(-1).astype(np.int64), levels


def _check_columns(spec: ModelSpec, data: pd.DataFrame) -> None:
    missing = sorted(v for v in spec.variables if v not in data.columns)
    if missing:
        available = [str(c) for c in data.columns]
        hints = []
        for name in missing:
            close = difflib.get_close_matches(name, available, n=3)
            if close:
                hints.append(f"for '{name}' did you mean {', '.join(repr(c) for c in close)}?")
        msg = (
            f"unknown column{'s' if len(missing) > 1 else ''} {', '.join(repr(m) for m in missing)} "
            f"in formula '{spec.formula}'; the data has columns: {', '.join(available)}"
        )
        if hints:
            msg += "; " + "; ".join(hints)
        raise FormulaError(msg)


MIN_GROUPS = 5  # fewer levels than this gives a FewGroupsWarning (lme4's check.nlev.gtreq.5)


def _check_column_types(data: pd.DataFrame, used: list[str]) -> None:
    """Raise DataError for duplicated used columns and for columns of a type a formula cannot use."""
    counts = pd.Index(data.columns).value_counts()
    duplicated = [name for name in used if counts.get(name, 0) > 1]
    if duplicated:
        raise DataError(
            "the data has more than one column named "
            + ", ".join(f"'{name}' ({counts[name]} columns)" for name in duplicated)
            + "; rename or drop the duplicates (e.g. data.loc[:, ~data.columns.duplicated()])"
        )
    for name in used:
        col = data[name]
        kind = col.dtype
        if pd.api.types.is_complex_dtype(kind):
            raise DataError(f"column '{name}' holds complex numbers; use its real part or modulus explicitly")
        if pd.api.types.is_datetime64_any_dtype(kind) or pd.api.types.is_timedelta64_dtype(kind):
            raise DataError(
                f"column '{name}' holds dates or times ({kind}); convert it to numbers first, e.g. days "
                f"since the start: (data['{name}'] - data['{name}'].min()).dt.days"
            )
        if isinstance(kind, pd.PeriodDtype | pd.IntervalDtype | pd.SparseDtype):
            raise DataError(f"column '{name}' has type {kind}, which formulas cannot use; convert it")
        if pd.api.types.is_object_dtype(kind):
            kinds = {_value_kind(v) for v in col.dropna()}
            if "other" in kinds:
                bad = sorted({type(v).__name__ for v in col.dropna() if _value_kind(v) == "other"})
                raise DataError(
                    f"column '{name}' holds values of type {bad}, which formulas cannot use; convert it "
                    "to numbers or strings"
                )
            if len(kinds) > 1:
                raise DataError(
                    f"column '{name}' mixes {' and '.join(sorted(kinds))} values; make it all numbers "
                    f"(pd.to_numeric(data['{name}'])) or all strings (data['{name}'].astype(str))"
                )


def _value_kind(value: Any) -> str:
    if isinstance(value, bool | np.bool_):
        return "boolean"
    if isinstance(value, numbers.Real):
        return "number"
    if isinstance(value, str):
        return "string"
    return "other"


def _usable_columns(data: pd.DataFrame, used: list[str]) -> pd.DataFrame:
    """Copy the used columns, giving object columns of numbers their real type.

    formulae rejects an object column of numbers; pandas makes one from, e.g., a list of Python ints
    with a None. Strings stay object (categorical in a formula).
    """
    frame = data.loc[:, used].copy()
    for name in used:
        col = frame[name]
        if not pd.api.types.is_object_dtype(col.dtype):
            continue
        kinds = {_value_kind(v) for v in col.dropna()}
        if kinds == {"number"}:
            frame[name] = pd.to_numeric(col).astype(float)
    return frame


def _plain_booleans(frame: pd.DataFrame) -> pd.DataFrame:
    """Give boolean columns (object of True/False, nullable ``boolean``) numpy's bool.

    Called once rows with a missing value are gone: formulae takes neither an object column nor a
    nullable boolean response.
    """
    for name in frame.columns:
        col = frame[name]
        nullable = isinstance(col.dtype, pd.BooleanDtype)
        if nullable or (
            pd.api.types.is_object_dtype(col.dtype) and {_value_kind(v) for v in col} == {"boolean"}
        ):
            frame[name] = col.astype(bool)
    return frame


def _check_identifiable(design_n: int, p: int, y: np.ndarray, response: str, blocks) -> None:
    """Raise DataError for models that cannot be estimated; warn when a factor has few levels."""
    if design_n <= p:
        raise DataError(
            f"only {design_n} observation(s) for {p} fixed-effect coefficient(s); a model needs more "
            "observations than fixed effects"
        )
    if np.ptp(y) == 0:
        raise DataError(
            f"the response '{response}' is constant ({y[0]:g} in all {design_n} rows): there is no "
            "variation to model"
        )
    for block in blocks:
        n_effects = block.n_levels * block.q
        if block.n_levels == 1:
            raise DataError(
                f"grouping factor '{block.group}' has a single level ('{block.levels[0]}'): a variance "
                "between groups cannot be estimated from one group; drop the term "
                f"{block.term} or use a factor with more levels"
            )
        if design_n <= n_effects:
            per = "one row per level" if block.n_levels == design_n else f"{n_effects} random effects"
            raise DataError(
                f"random term {block.term} has {per} for {design_n} observations: its variance cannot be "
                "told apart from the residual variance (lme4 stops with the same check); use a grouping "
                "factor with fewer levels than observations, or fewer effects per level"
            )
    seen = set()
    for block in blocks:
        if block.group in seen or block.n_levels >= MIN_GROUPS:
            continue
        seen.add(block.group)
        warnings.warn(
            f"grouping factor '{block.group}' has only {block.n_levels} levels: variance estimates from "
            f"fewer than {MIN_GROUPS} groups are unstable (the REML estimate is often zero and the "
            "posterior leans on the prior); consider a fixed effect for it, or report the prior's influence",
            FewGroupsWarning,
            stacklevel=3,
        )


def _unusable_rows(data: pd.DataFrame, columns: list[str]) -> tuple[np.ndarray, str]:
    """Rows with a missing or infinite value in any of ``columns``, and the count per column.

    Returns the boolean mask and a description such as ``"Days: 18, Subject: 1"`` (columns with none
    left out), for the messages of both fitting and prediction.
    """
    bad = np.zeros(len(data), dtype=bool)
    counts = []
    for name in columns:
        col = data[name]
        column_bad = np.array(col.isna(), dtype=bool)  # a copy: the result is written below
        if pd.api.types.is_float_dtype(col.dtype):
            column_bad |= ~np.isfinite(col.to_numpy(dtype=float, na_value=np.nan))
        if column_bad.any():
            counts.append(f"{name}: {int(column_bad.sum())}")
        bad |= column_bad
    return bad, ", ".join(counts)


def _evaluate(formula: str, data: pd.DataFrame, what: str, env, allowed: frozenset[str]):
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


def _independent_columns(X: np.ndarray, tol: float = 1e-7) -> list[int]:
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
        (see :mod:`bayesmlm.namespace`); nothing else is callable from a formula.

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
        raise ValueError(f"na_action must be 'drop' or 'error', not {na_action!r}")
    _check_columns(spec, data)
    used = sorted(spec.variables)
    _check_column_types(data, used)
    frame = _usable_columns(data, used)
    bad, detail = _unusable_rows(frame, used)
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
    frame = _plain_booleans(frame.loc[~bad].copy())
    if len(frame) == 0:
        raise DataError("no rows left to fit (the data is empty or every row has a missing value)")

    env = formula_environment(extra_namespace)
    allowed = allowed_functions(extra_namespace or {})
    dm = _evaluate(f"{spec.response} ~ {spec.fixed}", frame, "fixed part", env, allowed)
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
    if not np.all(np.isfinite(y)) or not np.all(np.isfinite(X_full)):
        raise DataError(
            "the response or a fixed-effect column has non-finite values after transformation "
            "(for example log of zero); check the transformations in the formula"
        )
    kept = _independent_columns(X_full)
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
        tm = _evaluate(term.expr, frame, f"random term {term}", env, allowed)
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
    _check_identifiable(len(y), X.shape[1], y, spec.response, blocks)
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
