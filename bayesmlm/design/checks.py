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
    "RESERVED_NAMES",
    "check_column_types",
    "check_columns",
    "check_identifiable",
    "check_random_terms",
    "check_reserved_names",
    "describe_counts",
    "plain_booleans",
    "unusable_counts",
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
        if _narrow_integer(col.dtype):  # I(Days * 100) on int8 wrapped around at 127
            frame[name] = col.astype(
                "Int64" if isinstance(col.dtype, pd.api.extensions.ExtensionDtype) else "int64"
            )
            continue
        if not pd.api.types.is_object_dtype(col.dtype):
            continue
        kinds = {_value_kind(v) for v in col.dropna()}
        if kinds == {"number"}:
            frame[name] = pd.to_numeric(col).astype(float)
    return frame


def _narrow_integer(dtype) -> bool:
    """Integer types whose arithmetic can overflow where int64 would not: int8-32, all unsigned."""
    if not pd.api.types.is_integer_dtype(dtype) or pd.api.types.is_bool_dtype(dtype):
        return False
    numpy_dtype = getattr(dtype, "numpy_dtype", dtype)
    return np.dtype(numpy_dtype).itemsize < 8 or np.dtype(numpy_dtype).kind == "u"


#: fixed-effect names that are the names of other parameters: a column so named would silently take
#: the intercept's place or vanish under the residual sd in summaries
RESERVED_NAMES = {
    "Intercept": "the model's intercept",
    "sigma": "the residual standard deviation",
    "Scale": "the residual variance in statsmodels' names",
}


def check_reserved_names(spec: ModelSpec, fixed_names: list[str]) -> None:
    """Refuse a data column whose name is the name of another parameter (``Intercept``, ``sigma``).

    A column ``Intercept`` anywhere in the formula is refused; ``sigma`` and ``Scale`` when they name a
    fixed effect (a random slope on them is named ``sd(sigma|g)``, which is unambiguous).
    """
    for name, meaning in RESERVED_NAMES.items():
        clash = name in spec.variables if name == "Intercept" else name in fixed_names
        if clash:
            raise DataError(
                f"the data column '{name}' has the name of {meaning}, so its coefficient would be confused "
                f"with it; rename the column (e.g. data.rename(columns={{'{name}': '{name.lower()}_'}}))"
            )


def _check_same_partition(group: str, group_blocks: list, by_group: dict) -> None:
    """Refuse two grouping factors that split the rows into the same groups with a shared column."""
    codes = group_blocks[0].codes
    for other, other_blocks in by_group.items():
        other_codes = other_blocks[0].codes
        if other == group or other_blocks[0].n_levels != group_blocks[0].n_levels:
            continue
        pairs = np.unique(np.column_stack([codes, other_codes]), axis=0)
        if len(pairs) != group_blocks[0].n_levels:
            continue  # a different partition
        for b in group_blocks:
            for o in other_blocks:
                for i, name in enumerate(b.term_names):
                    shared = [j for j in range(o.q) if np.array_equal(b.Z[:, i], o.Z[:, j])]
                    if shared:
                        raise DataError(
                            f"'{group}' and '{other}' group the rows identically, and both have the random "
                            f"effect '{name}': one variance would be split between them; keep one of them"
                        )


def check_random_terms(blocks) -> None:
    """Refuse random effects that the data cannot identify, before any optimisation.

    A term's column that is zero in every row has no variance to estimate; the same term written twice
    on one grouping factor (``(1 | g) + (1 | g)``) splits one variance between two; columns of one factor
    that are linear combinations of each other (``x`` and ``2 * x``, a constant column beside the
    intercept) leave their covariance unidentified.
    """
    by_group: dict[str, list] = {}
    for block in blocks:
        for k, name in enumerate(block.term_names):
            if not np.any(block.Z[:, k]):
                raise DataError(
                    f"random term {block.term}: its column '{name}' is 0 in every row, so its variance "
                    "cannot be estimated; drop it from the term"
                )
        by_group.setdefault(block.group, []).append(block)
    for group, group_blocks in by_group.items():
        names = [n for b in group_blocks for n in b.term_names]
        repeated = sorted({n for n in names if names.count(n) > 1})
        if repeated:
            terms = " + ".join(str(b.term) for b in group_blocks)
            raise DataError(
                f"the random effect(s) {repeated} of '{group}' appear more than once ({terms}): one "
                "variance would be split between the copies, which the data cannot tell apart; write each "
                "term once"
            )
        Z = np.column_stack([b.Z for b in group_blocks])
        _check_same_partition(group, group_blocks, by_group)
        scaled = Z / np.maximum(np.abs(Z).max(axis=0), np.finfo(float).tiny)
        rank = np.linalg.matrix_rank(scaled, tol=1e-9 * max(Z.shape))
        if rank < Z.shape[1]:
            raise DataError(
                f"the random effects {names} of '{group}' are linear combinations of each other in every row "
                f"(rank {rank} of {Z.shape[1]}), so their covariance cannot be estimated; drop the redundant "
                "term(s)"
            )


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
    bad, counts = unusable_counts(data, columns)
    return bad, describe_counts(counts)


def unusable_counts(data: pd.DataFrame, columns: list[str]) -> tuple[np.ndarray, dict[str, int]]:
    """Rows with a missing or infinite value in any of ``columns``, and the count in each column."""
    bad = np.zeros(len(data), dtype=bool)
    counts = {}
    for name in columns:
        col = data[name]
        column_bad = np.array(col.isna(), dtype=bool)  # a copy: the result is written below
        if pd.api.types.is_float_dtype(col.dtype):
            column_bad |= ~np.isfinite(col.to_numpy(dtype=float, na_value=np.nan))
        counts[name] = int(column_bad.sum())
        bad |= column_bad
    return bad, counts


def describe_counts(counts: dict[str, int]) -> str:
    """Describe missing-value counts per column, leaving out columns with none: ``"Days: 18"``."""
    return ", ".join(f"{name}: {count}" for name, count in counts.items() if count)
