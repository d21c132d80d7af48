"""Stage 2, the design: what each partition of a Dask DataFrame computes, in two passes, on its own rows.

Both passes first do to a partition what :func:`~bayesmlm.design.evaluate.make_design` does to a data
frame: object columns of numbers become numbers, rows with a missing or infinite value in a used
column are dropped (and counted per column), booleans become numpy's. Then:

- **first pass** (:func:`scan_partition`): counts, the distinct values of grouping columns and of
  categorical predictors, the raw values' kinds in object columns, the range of numeric columns, and
  the count, mean and sum of squares of every ``center``/``scale``/``standardize`` argument. Scans
  merge (:func:`merge_scans`) into the global levels and transform statistics.
- **second pass** (:func:`partition_statistics`): the design evaluated with the global encodings and
  transform states (:class:`EvaluationPlan`, from :mod:`bayesmlm.design.prototype`), each row's global
  level code, and the partition's :class:`~bayesmlm.design.sums.PartitionSums`.

Everything here takes and returns pandas/numpy objects; :mod:`bayesmlm.design.dask_input` runs it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from bayesmlm.design.checks import plain_booleans, unusable_counts, usable_columns
from bayesmlm.design.sums import PartitionSums, partition_sums
from bayesmlm.exceptions import DataError

__all__ = [
    "CodeLookup",
    "EvaluationPlan",
    "Scan",
    "ScanPlan",
    "kept_rows",
    "merge_scans",
    "partition_statistics",
    "scan_partition",
    "unseen_message",
]


def kept_rows(partition: pd.DataFrame, used: tuple[str, ...]) -> tuple[pd.DataFrame, int, dict[str, int]]:
    """Return the rows a model uses (as make_design keeps them), the number of rows, the counts dropped."""
    frame = usable_columns(partition, list(used))
    bad, counts = unusable_counts(frame, list(used))
    return plain_booleans(frame.loc[~bad].copy() if bad.any() else frame), len(frame), counts


@dataclass(frozen=True, eq=False)
class ScanPlan:
    """What the first pass collects (see :func:`~bayesmlm.design.prototype.scan_plan`)."""

    used: tuple[str, ...]
    expression_columns: tuple[str, ...]  # the columns formulae evaluates (not the grouping factors)
    object_columns: tuple[str, ...]
    level_columns: tuple[str, ...]
    factors: tuple[tuple[str, ...], ...]
    range_columns: tuple[str, ...]
    transforms: tuple[tuple[str, Any], ...]  # (the call as formulae prints it, its argument)
    env: Any = field(repr=False)  # formulae's Environment to evaluate the arguments in


@dataclass(frozen=True, eq=False)
class Scan:
    """What the first pass found in some partitions (merged by :func:`merge_scans`)."""

    n_rows: int
    n_kept: int
    counts: dict[str, int]
    raw_values: dict[str, pd.Series]  # object columns: distinct non-missing values, before conversion
    uniques: dict[str, pd.Series]  # level columns: distinct values of the rows kept
    categories: dict[str, set[tuple]]  # categorical columns: the category lists seen
    combos: dict[tuple[str, ...], pd.DataFrame]  # factors of several columns: distinct combinations
    ranges: dict[str, tuple[float, float]]
    transforms: dict[str, tuple[int, float, float]]  # count, mean, sum of squared deviations


def _distinct(values: pd.Series) -> pd.Series:
    return pd.Series(values.unique(), dtype=values.dtype) if len(values) else values.iloc[:0]


def scan_partition(partition: pd.DataFrame, plan: ScanPlan) -> Scan:
    """Scan one partition: the first pass (see the module docstring)."""
    raw = {c: _distinct(partition[c].dropna()).astype(object) for c in plan.object_columns}
    kept, n_rows, counts = kept_rows(partition, plan.used)
    categories = {
        c: {tuple(kept[c].cat.categories)}
        for c in plan.level_columns
        if isinstance(kept[c].dtype, pd.CategoricalDtype)
    }
    uniques = {
        c: _distinct(kept[c].astype(object) if c in categories else kept[c]) for c in plan.level_columns
    }
    combos = {f: kept[list(f)].drop_duplicates().reset_index(drop=True) for f in plan.factors}
    for f, frame in combos.items():
        combos[f] = frame.astype({c: object for c in f if c in categories})
    ranges = {}
    for c in plan.range_columns:
        values = kept[c].to_numpy(dtype=float)
        ranges[c] = (float(values.min()), float(values.max())) if len(values) else (np.inf, -np.inf)
    transforms = {}
    for text, argument in plan.transforms:
        values = np.asarray(argument.eval(kept, plan.env), dtype=float).reshape(-1)
        mean = float(values.mean()) if len(values) else 0.0
        transforms[text] = (len(values), mean, float(np.sum((values - mean) ** 2)))
    return Scan(n_rows, len(kept), counts, raw, uniques, categories, combos, ranges, transforms)


def _union(a: pd.Series, b: pd.Series) -> pd.Series:
    both = pd.concat([a, b], ignore_index=True) if len(a) and len(b) else (a if len(a) else b)
    return both.drop_duplicates().reset_index(drop=True)


def _pooled(a: tuple[int, float, float], b: tuple[int, float, float]) -> tuple[int, float, float]:
    """Count, mean and sum of squared deviations of two sets of values together (Chan et al.)."""
    (na, ma, sa), (nb, mb, sb) = a, b
    n = na + nb
    if n == 0:
        return 0, 0.0, 0.0
    delta = mb - ma
    return n, ma + delta * nb / n, sa + sb + delta**2 * na * nb / n


def merge_scans(a: Scan, b: Scan) -> Scan:
    """Return the scan of the partitions of ``a`` and of ``b`` together."""
    return Scan(
        n_rows=a.n_rows + b.n_rows,
        n_kept=a.n_kept + b.n_kept,
        counts={c: a.counts[c] + b.counts[c] for c in a.counts},
        raw_values={c: _union(a.raw_values[c], b.raw_values[c]) for c in a.raw_values},
        uniques={c: _union(a.uniques[c], b.uniques[c]) for c in a.uniques},
        categories={c: a.categories[c] | b.categories[c] for c in a.categories},
        combos={
            f: pd.concat([a.combos[f], b.combos[f]], ignore_index=True).drop_duplicates(ignore_index=True)
            for f in a.combos
        },
        ranges={
            c: (min(a.ranges[c][0], b.ranges[c][0]), max(a.ranges[c][1], b.ranges[c][1])) for c in a.ranges
        },
        transforms={t: _pooled(a.transforms[t], b.transforms[t]) for t in a.transforms},
    )


def unseen_message(columns: tuple[str, ...]) -> str:
    """Return the error message for a grouping value that the first pass did not see."""
    return (
        f"a value of {':'.join(columns)} in this partition was not there in the first pass "
        "over the data (did the data change while the statistics were computed?); fit again"
    )


@dataclass(frozen=True, eq=False)
class CodeLookup:
    """Each row's global level code of one grouping factor, from the values of its columns.

    ``values[k]`` holds the distinct values of column ``columns[k]`` (of the rows kept, in the first
    pass); ``codes`` gives the level of each combination, positions combined as
    ``Σ position_k · stride_k``. An integer column with a compact range is looked up in an array.
    """

    columns: tuple[str, ...]
    values: tuple[pd.Index, ...]
    combination_keys: pd.Index
    codes: np.ndarray

    def positions(self, k: int, column: pd.Series) -> np.ndarray:
        """Position of each value of ``column`` in ``values[k]`` (-1 if the first pass did not see it)."""
        index = self.values[k]
        if pd.api.types.is_integer_dtype(index.dtype) and pd.api.types.is_integer_dtype(column.dtype):
            low, high = int(index.min()), int(index.max())
            if high - low < 8 * len(index) + 1024:
                table = np.full(high - low + 1, -1, dtype=np.int64)
                table[index.to_numpy() - low] = np.arange(len(index))
                raw = column.to_numpy(dtype=np.int64)
                inside = (raw >= low) & (raw <= high)
                return np.where(inside, table[np.clip(raw - low, 0, high - low)], -1)
        if isinstance(column.dtype, pd.CategoricalDtype):
            column = column.astype(object)
        return index.get_indexer(column)

    def __call__(self, frame: pd.DataFrame) -> np.ndarray:
        """Return the level code of each row of ``frame``."""
        key = np.zeros(len(frame), dtype=np.int64)
        unseen = np.zeros(len(frame), dtype=bool)
        for k, name in enumerate(self.columns):
            pos = self.positions(k, frame[name])
            unseen |= pos < 0
            key = key * len(self.values[k]) + pos
        where = self.combination_keys.get_indexer(key) if len(self.columns) > 1 else key
        unseen |= where < 0
        if unseen.any():
            raise DataError(unseen_message(self.columns))
        return self.codes[where]


@dataclass(frozen=True, eq=False)
class EvaluationPlan:
    """What the second pass evaluates (built by :func:`~bayesmlm.design.prototype.evaluation_plan`)."""

    used: tuple[str, ...]
    p: int  # fixed-effect columns before aliased ones are dropped
    response: Any  # formulae's response term, evaluated with eval_new_data
    fixed: Any  # formulae's fixed-effects matrix (None without fixed effects)
    blocks: tuple[tuple[str, Any], ...]  # per random term: its text and formulae's matrix
    factors: tuple[tuple[tuple[int, ...], CodeLookup, int], ...]  # structure order: blocks, codes, levels
    shifts: tuple[np.ndarray, tuple[np.ndarray, ...]]  # every partition's sums are about these


def _finite(values: np.ndarray, message: str, *more: np.ndarray) -> np.ndarray:
    if not all(np.isfinite(v).all() for v in (values, *more)):
        raise DataError(message)
    return values


def partition_statistics(partition: pd.DataFrame, plan: EvaluationPlan) -> PartitionSums:
    """Evaluate one partition's design as the whole data's and return its sums: the second pass."""
    kept, _, _ = kept_rows(partition, plan.used)
    n = len(kept)
    if n == 0:
        y, X = np.zeros(0), np.zeros((0, plan.p))
        Z = [np.zeros((0, matrix.design_matrix.shape[1])) for _, matrix in plan.blocks]
    else:
        y = np.asarray(plan.response.eval_new_data(kept), dtype=float).reshape(n)
        X = (
            np.asarray(np.asarray(plan.fixed.evaluate_new_data(kept)), dtype=float)
            if plan.fixed is not None
            else np.zeros((n, 0))
        )
        _finite(
            y,
            "the response or a fixed-effect column has non-finite values after transformation "
            "(for example log of zero); check the transformations in the formula",
            X,  # checked apart: no copy of the rows
        )
        Z = [
            _finite(
                np.asarray(np.asarray(matrix.evaluate_new_data(kept)), dtype=float),
                f"random term {text} has non-finite values after transformation",
            )
            for text, matrix in plan.blocks
        ]
    factors = []
    for block_index, lookup, m in plan.factors:
        codes = lookup(kept) if n else np.zeros(0, dtype=np.int64)
        columns = Z[block_index[0]] if len(block_index) == 1 else np.column_stack([Z[b] for b in block_index])
        factors.append((codes, columns, m))
    return partition_sums(y, X, factors, plan.shifts)
