"""Stage 2, the design: one pass over the rows for a formula of plain numeric columns.

Most large models are like ``y ~ x + (x | g)``: the response, the fixed effects and the random terms are
numeric columns as they stand, or the intercept. For such a formula nothing needs the whole data
before the sums but the levels of the grouping factors, so the reduction reads the rows once:

1. a first pass that reads **only the grouping columns** (Parquet reads just those) for their
   distinct non-missing values: the *provisional* levels;
2. **the pass** (:func:`plain_partition`): per partition, the rows with a missing or infinite value in
   a used column are dropped and counted as :func:`~bayesmlm.design.checks.unusable_counts` counts
   them, the columns are taken from the frame as numpy arrays (no formula evaluation), each row gets
   its provisional level code, and the centred sums are formed about the column means of the data's
   first rows (:func:`pilot_shifts`; :func:`~bayesmlm.design.sums.partition_sums`), so they merge by
   addition;
3. levels whose every row was dropped (a group whose rows all have a missing value) have no rows in
   the sums: :func:`keep_levels` removes them, as a pandas frame never has them.

:func:`plain_columns` decides from formulae's own evaluation of the prototype frame whether a formula
is plain, and checks that its columns built from the frame are formulae's, on a frame of random
values; anything else (categorical predictors, transforms, interactions, ``center(x)``, object or
boolean columns, a factor of several columns) takes the two passes of
:mod:`bayesmlm.design.partitions`.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from bayesmlm.design.checks import unusable_counts
from bayesmlm.design.fused import fused_sums
from bayesmlm.design.partitions import CodeLookup, unseen_message
from bayesmlm.design.sums import PairSums, PartitionSums, _pair_index, merge_sums, partition_sums
from bayesmlm.exceptions import DataError

__all__ = [
    "PlainPlan",
    "PlainResult",
    "keep_levels",
    "merge_plain",
    "pilot_shifts",
    "plain_columns",
    "plain_partition",
]

#: a column of ones (the intercept) in :attr:`PlainPlan.fixed` and :attr:`PlainPlan.blocks`
INTERCEPT = None


def _plain_dtype(dtype) -> bool:
    """Numpy's integers and floats, not booleans or extension types."""
    return isinstance(dtype, np.dtype) and dtype.kind in "iuf"


def _term_columns(matrix) -> tuple[str | None, ...] | None:
    """Return a formulae matrix's columns if each is the intercept or a numeric column, else None."""
    columns = []
    for name, term in matrix.terms.items():
        if type(term).__name__ == "Intercept":
            columns.append(INTERCEPT)
            continue
        components = getattr(term, "components", [])
        if len(components) != 1 or type(components[0]).__name__ != "Variable":
            return None
        if components[0].kind != "numeric" or components[0].name != name:
            return None
        columns.append(name)
    return tuple(columns)


def _build(frame: pd.DataFrame, columns: tuple[str | None, ...]) -> np.ndarray:
    out = np.empty((len(frame), len(columns)), order="F")
    for j, name in enumerate(columns):
        out[:, j] = 1.0 if name is INTERCEPT else frame[name].to_numpy(dtype=float)
    return out


def plain_columns(dm, term_matrices, meta: pd.DataFrame, group_columns: set[str]):
    """Return ``(response, fixed, blocks)`` column names if the formula is plain, else None.

    Parameters
    ----------
    dm : formulae DesignMatrices
        ``response ~ fixed`` evaluated on the prototype frame.
    term_matrices : list
        formulae's matrix of each random term.
    meta : DataFrame
        The data's columns and dtypes (empty).
    group_columns : set of str
        The grouping factors' columns (not allowed in the terms).
    """
    response = dm.response.term.term
    components = getattr(response, "components", [])
    if len(components) != 1 or type(components[0]).__name__ != "Variable":
        return None
    y = components[0].name
    fixed = _term_columns(dm.common) if dm.common is not None else ()
    blocks = [_term_columns(m) for m in term_matrices]
    if fixed is None or any(b is None for b in blocks):
        return None
    named = {y, *(c for c in fixed if c), *(c for b in blocks for c in b if c)}
    if named & group_columns or not all(_plain_dtype(meta[c].dtype) for c in named):
        return None
    # formulae's own columns on random values must be ours, bit for bit, else the two passes
    rng = np.random.default_rng(0)
    probe = pd.DataFrame({c: rng.normal(size=5) for c in sorted(named)})
    pairs = [(dm.common, fixed)] if dm.common is not None else []
    for matrix, columns in [*pairs, *zip(term_matrices, blocks, strict=True)]:
        expected = np.asarray(np.asarray(matrix.evaluate_new_data(probe)), dtype=float)
        if expected.shape != (5, len(columns)) or not np.array_equal(expected, _build(probe, columns)):
            return None
    return y, fixed, tuple(blocks)


@dataclass(frozen=True, eq=False)
class PlainPlan:
    """What :func:`plain_partition` computes: the columns by name and the provisional level lookups."""

    used: tuple[str, ...]
    response: str
    fixed: tuple[str | None, ...]
    blocks: tuple[tuple[str | None, ...], ...]
    factors: tuple[tuple[tuple[int, ...], CodeLookup, int], ...]  # structure order: blocks, codes, levels
    range_columns: tuple[str, ...]
    shifts: tuple[np.ndarray, tuple[np.ndarray, ...]] | None = None  # None: each partition's means


def _columns(kept: pd.DataFrame, plan: PlainPlan):
    y = kept[plan.response].to_numpy(dtype=float)
    X = _build(kept, plan.fixed)
    Z = [_build(kept, columns) for columns in plan.blocks]
    return y, X, [Z[b[0]] if len(b) == 1 else np.column_stack([Z[i] for i in b]) for b, _, _ in plan.factors]


def pilot_shifts(rows: pd.DataFrame, plan: PlainPlan):
    """Column means of some rows (the first rows of the data): every partition's sums are about them.

    Sums about the same shifts merge by addition; these are within the data's range, so near enough
    the means (see :mod:`bayesmlm.design.sums`). None if no row is usable (then each partition's own).
    """
    bad, _ = unusable_counts(rows, list(plan.used))
    kept = rows.loc[~bad]
    if not len(kept):
        return None
    y, X, Z = _columns(kept, plan)
    return np.append(X.mean(axis=0), y.mean()), tuple(z.mean(axis=0) for z in Z)


@dataclass(frozen=True, eq=False)
class PlainResult:
    """One pass's result for some partitions: the sums, rows read, rows dropped per column, ranges."""

    sums: PartitionSums
    n_rows: int
    counts: dict[str, int]
    ranges: dict[str, tuple[float, float]]


def plain_partition(partition: pd.DataFrame, plan: PlainPlan) -> PlainResult:
    """Drop unusable rows, take the columns as they are, and sum (the module docstring's pass).

    One factor of integer ids (the large case) takes one compiled loop over the raw columns
    (:func:`~bayesmlm.design.fused.fused_sums`); anything else the steps below, with the same sums.
    """
    fused = fused_sums(partition, plan)
    if fused is not None:
        sums, counts, ranges, unseen = fused
        if unseen:
            raise DataError(unseen_message(plan.factors[0][1].columns))
        return PlainResult(sums, len(partition), counts, ranges)
    bad, counts = unusable_counts(partition, list(plan.used))
    kept = partition.loc[~bad] if bad.any() else partition
    n = len(kept)
    y, X, Z = _columns(kept, plan)
    factors = [
        (lookup(kept) if n else np.zeros(0, dtype=np.int64), z, m)
        for (_, lookup, m), z in zip(plan.factors, Z, strict=True)
    ]
    ranges = {}
    for c in plan.range_columns:
        values = kept[c].to_numpy(dtype=float)
        ranges[c] = (float(values.min()), float(values.max())) if n else (np.inf, -np.inf)
    return PlainResult(partition_sums(y, X, factors, plan.shifts), len(partition), counts, ranges)


def merge_plain(a: PlainResult, b: PlainResult) -> PlainResult:
    """Return the result of the partitions of ``a`` and of ``b`` together."""
    return PlainResult(
        merge_sums(a.sums, b.sums),
        a.n_rows + b.n_rows,
        {c: a.counts[c] + b.counts[c] for c in a.counts},
        {c: (min(a.ranges[c][0], b.ranges[c][0]), max(a.ranges[c][1], b.ranges[c][1])) for c in a.ranges},
    )


def keep_levels(s: PartitionSums, keep: list[np.ndarray]) -> PartitionSums:
    """Return the sums without the levels not in ``keep`` (a boolean mask per factor; they have no rows).

    Examples
    --------
    >>> y, X = np.arange(4.0), np.ones((4, 1))
    >>> s = partition_sums(y, X, [(np.array([0, 2, 2, 0]), X, 3)])
    >>> keep_levels(s, [np.array([True, False, True])]).level_zz[0][:, 0, 0].tolist()
    [2.0, 2.0]
    """
    m = [len(k) for k in keep]
    new_code = [np.cumsum(k) - 1 for k in keep]
    m_new = [int(k.sum()) for k in keep]
    pairs = []
    for (f, h), pair in zip(_pair_index(len(keep)), s.pairs, strict=True):
        level_f, level_h = pair.keys // m[h], pair.keys % m[h]
        keys = new_code[f][level_f] * m_new[h] + new_code[h][level_h]  # the same order: still sorted
        pairs.append(PairSums(keys.astype(np.int64), pair.values))
    return replace(
        s,
        level_zz=tuple(zz[k] for zz, k in zip(s.level_zz, keep, strict=True)),
        level_zw=tuple(zw[k] for zw, k in zip(s.level_zw, keep, strict=True)),
        pairs=tuple(pairs),
    )
