"""Stage 2, the design: the data checks, before anything is evaluated and after.

Columns the formula names must exist once and be of a type a formula can use; rows with a missing
or infinite value are found (and counted per column); a model that cannot be estimated (constant
response, a factor with one level, as many random effects as rows, n <= p) is refused, and a factor
with few levels is warned about.
"""

from __future__ import annotations

import difflib
import numbers
import warnings
from typing import Any

import numpy as np
import pandas as pd

from bayesmlm.exceptions import DataError, FewGroupsWarning, FormulaError
from bayesmlm.spec.formula import ModelSpec

__all__ = [
    "MIN_GROUPS",
    "check_column_types",
    "check_columns",
    "check_identifiable",
    "plain_booleans",
    "unusable_rows",
    "usable_columns",
]


def check_columns(spec: ModelSpec, data: pd.DataFrame) -> None:
    """Raise FormulaError naming each column the formula uses that the data lacks, with close matches."""
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


def check_column_types(data: pd.DataFrame, used: list[str]) -> None:
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


def usable_columns(data: pd.DataFrame, used: list[str]) -> pd.DataFrame:
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


def plain_booleans(frame: pd.DataFrame) -> pd.DataFrame:
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


def check_identifiable(
    design_n: int, p: int, y: np.ndarray, response: str, blocks, generalized=False
) -> None:
    """Raise DataError for models that cannot be estimated; warn when a factor has few levels.

    A ``generalized`` model (no residual variance) checks its own response (its family's rules) and
    may have one level per row (an observation-level effect for overdispersion, as glmer allows).
    """
    if design_n <= p:
        raise DataError(
            f"only {design_n} observation(s) for {p} fixed-effect coefficient(s); a model needs more "
            "observations than fixed effects"
        )
    if not generalized and np.ptp(y) == 0:
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
        if design_n < n_effects + (not generalized):
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


def unusable_rows(data: pd.DataFrame, columns: list[str]) -> tuple[np.ndarray, str]:
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
