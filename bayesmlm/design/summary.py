"""Stage 2, the design: a design from data that stay where they are, in two passes over the partitions.

:func:`summarise_design` is :func:`~bayesmlm.design.evaluate.make_design` for a Dask DataFrame or a
path or glob of Parquet/CSV files, with the same checks, warnings, errors, levels, encodings and column
names, but the rows never come to this machine:

1. **first pass** (:func:`~bayesmlm.design.partitions.scan_partition`): rows dropped for missing
   values, counted per column; the levels of grouping factors and categorical predictors; the
   statistics of ``center``/``scale``/``standardize`` arguments; the kinds of values of object columns.
2. the formula evaluated once on a prototype frame with every level and the global transform states
   (:mod:`bayesmlm.design.prototype`), so every partition is encoded alike;
3. **second pass** (:func:`~bayesmlm.design.partitions.partition_statistics`): per partition, the
   design and its centred sums (:mod:`bayesmlm.design.sums`), merged on the workers.

The result is a :class:`~bayesmlm.design.evaluate.Design` whose row arrays are
:class:`~bayesmlm.design.rows.NoRows` and which carries its columns' moments, and the
:class:`ReducedStatistics` that give REML/ML and the collapsed sampler their cross-products.
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd

from bayesmlm.design.checks import check_column_types, check_columns, check_identifiable, describe_counts
from bayesmlm.design.covariance import RandomStructure, random_structure
from bayesmlm.design.crossprod import CrossProducts
from bayesmlm.design.dask_input import (
    PassTiming,
    dask_frame,
    frame_meta,
    pass_figures,
    reduce_partitions,
    scheduler_description,
)
from bayesmlm.design.evaluate import Design, NaAction, RandomBlock
from bayesmlm.design.evaluation import independent_columns
from bayesmlm.design.parquet_levels import metadata_levels, parquet_files
from bayesmlm.design.partitions import (
    EvaluationPlan,
    Scan,
    merge_scans,
    partition_statistics,
    scan_partition,
)
from bayesmlm.design.plain import (
    PlainPlan,
    keep_levels,
    merge_plain,
    pilot_shifts,
    plain_columns,
    plain_partition,
)
from bayesmlm.design.prototype import evaluate_prototype, factor_levels, scan_plan
from bayesmlm.design.rows import NoRows
from bayesmlm.design.sums import (
    PartitionSums,
    cross_products_from,
    fixed_basis,
    merge_sums,
    moments_from,
    select_fixed,
)
from bayesmlm.exceptions import ArgumentError, DataError, DroppedRowsWarning, RankDeficientWarning
from bayesmlm.spec.formula import ModelSpec

__all__ = ["ReducedStatistics", "summarise_design"]


@dataclass(frozen=True, eq=False)
class ReducedStatistics:
    """The sufficient statistics of a model whose rows stay where they are, and how they were made.

    Attributes
    ----------
    sums : PartitionSums
        The centred sums of all rows used.
    levels : tuple of int
        Levels of each grouping factor, in the structure's order.
    source : str
        Where the data are.
    info : dict
        Partitions, rows read, the scheduler used, and the wall time of each pass.
    """

    sums: PartitionSums
    levels: tuple[int, ...]
    source: str
    info: dict = field(default_factory=dict)

    def cross_products(
        self, x_shift: np.ndarray | None = None, y_scale: float = 1.0, **frame
    ) -> CrossProducts:
        """Return the cross-products of ``X - x_shift``, ``Z`` and ``y / y_scale`` (raw by default).

        ``frame`` may also centre ``y`` and ``Z`` and scale ``X`` and ``Z`` (``y_shift``, ``x_scale``,
        ``z_shift``, ``z_scale``: see :func:`~bayesmlm.design.sums.cross_products_from`).
        """
        return cross_products_from(self.sums, list(self.levels), x_shift, y_scale, **frame)

    def scaled_cross_products(self, scaling, unscaled: CrossProducts | None = None) -> CrossProducts:
        """Return the cross-products in ``scaling``'s frame (a :class:`~bayesmlm.design.scaling.Scaling`).

        ``unscaled``, this reduction's :meth:`cross_products` if the caller has them, rides along
        (Satterthwaite's derivatives are taken in the user's columns); else they are formed here.

        Its maps are read as shifts and scales: ``X A`` has column ``j`` equal to
        ``(x_j - c_j) / s_j`` (``A[j, j] = 1/s_j``, ``A[intercept, j] = -c_j/s_j``); ``Z`` is unchanged.
        """
        A = scaling.x_map
        x_scale = 1.0 / np.diag(A)
        x_shift = np.zeros(len(x_scale))
        if scaling.intercept is not None:
            x_shift = -A[scaling.intercept] * x_scale
            x_shift[scaling.intercept] = 0.0
            x_scale[scaling.intercept] = 1.0
        stats = self.cross_products(x_shift, scaling.y_scale, y_shift=scaling.y_shift, x_scale=x_scale)
        unscaled = self.cross_products() if unscaled is None else unscaled
        return replace(stats, scaling=scaling, unscaled=unscaled)


def _no_rows(shape: tuple[int, ...], what: str, source: str) -> NoRows:
    return NoRows(shape, what, source)


def _drop_message(scan, na_action: NaAction) -> int:
    n_bad = scan.n_rows - scan.n_kept
    if n_bad:
        detail = describe_counts(scan.counts)
        if na_action == "error":
            raise DataError(
                f"{n_bad} of {scan.n_rows} rows have missing or infinite values ({detail}); "
                "clean them or use na_action='drop'"
            )
        warnings.warn(
            f"dropped {n_bad} of {scan.n_rows} rows with missing or infinite values ({detail})",
            DroppedRowsWarning,
            stacklevel=4,
        )
    if scan.n_kept == 0:
        raise DataError("no rows left to fit (the data is empty or every row has a missing value)")
    return n_bad


def _blocks(spec: ModelSpec, scan, meta, term_matrices, source: str):
    n, blocks, lookups = scan.n_kept, [], {}
    for term, matrix in zip(spec.random, term_matrices, strict=True):
        if term.factor not in lookups:
            lookups[term.factor] = factor_levels(scan, meta, term.factor)
        levels, _ = lookups[term.factor]
        names = tuple(matrix.as_dataframe().columns)
        blocks.append(
            RandomBlock(
                term=term,
                group=term.group,
                levels=levels,
                codes=_no_rows((n,), f"the level codes of {term.group}", source),
                Z=_no_rows((n, len(names)), f"the columns of the random term {term}", source),
                term_names=names,
                expr_matrix=matrix,
            )
        )
    return tuple(blocks), {factor: lookup for factor, (_, lookup) in lookups.items()}


def _pilot_shift(values) -> np.ndarray:
    """Column means of the prototype's design: within the data's range, so near enough the means."""
    values = np.asarray(np.asarray(values), dtype=float)  # formulae's matrices: no dtype argument
    values = values.reshape(len(values), -1)
    finite = np.isfinite(values)
    total = np.where(finite, values, 0.0).sum(axis=0)
    return np.where(finite.any(axis=0), total / np.maximum(finite.sum(axis=0), 1), 0.0)


def _evaluation_plan(design: Design, structure: RandomStructure, scan, dm, lookups) -> EvaluationPlan:
    factors, shift_z = [], []
    for f in structure.factors:
        index = tuple(next(i for i, b in enumerate(design.blocks) if b is s) for s in f.source_blocks)
        factors.append((index, lookups[f.source_blocks[0].term.factor], f.n_levels))
        shift_z.append(np.concatenate([_pilot_shift(design.blocks[i].expr_matrix) for i in index]))
    fixed = dm.common if dm.common is not None else np.zeros((1, 0))
    shift_w = np.concatenate([_pilot_shift(fixed), _pilot_shift(dm.response)])
    return EvaluationPlan(
        used=tuple(sorted(design.spec.variables)),
        p=design.p,
        response=dm.response.term.term,
        fixed=dm.common,
        blocks=tuple((str(b.term), b.expr_matrix) for b in design.blocks),
        factors=tuple(factors),
        shifts=(shift_w, tuple(shift_z)),
    )


def _drop_aliased(design: Design, sums: PartitionSums) -> tuple[PartitionSums, tuple, tuple]:
    names = design.fixed_names
    kept = independent_columns(fixed_basis(sums)) if names else []
    aliased = tuple(name for j, name in enumerate(names) if j not in kept)
    if aliased:
        warnings.warn(
            f"fixed-effect model matrix is rank deficient, so dropping {len(aliased)} column"
            f"{'s' if len(aliased) > 1 else ''}: {', '.join(aliased)}",
            RankDeficientWarning,
            stacklevel=4,
        )
    return select_fixed(sums, kept), tuple(names[j] for j in kept), aliased


def _design(spec: ModelSpec, scan, meta, plan, extra_namespace, source: str, n_dropped: int):
    """Return the design (without rows) the scan gives, its structure, formulae's matrices, lookups."""
    dm, term_matrices = evaluate_prototype(spec, scan, meta, plan, extra_namespace)
    names = tuple(dm.common.as_dataframe().columns) if dm.common is not None else ()
    n, used = scan.n_kept, sorted(spec.variables)
    blocks, lookups = _blocks(spec, scan, meta, term_matrices, source)
    design = Design(
        spec=spec,
        y=_no_rows((n,), "the response values (design.y)", source),
        X=_no_rows((n, len(names)), "the fixed-effect matrix (design.X)", source),
        fixed_names=names,
        blocks=blocks,
        rows=_no_rows((n,), "the row labels (design.rows)", source),
        n_dropped=n_dropped,
        aliased=(),
        fixed_matrix=dm.common,
        data=_no_rows((n, len(used)), "the data frame (model.data)", source),
    )
    return design, random_structure(design), dm, lookups


def _one_pass_possible(plan) -> bool:
    """Whether only the grouping factors' levels are needed before the sums (see :mod:`.plain`)."""
    groups = {c for factor in plan.factors for c in factor}
    return not (plan.object_columns or plan.transforms or groups) and not (
        set(plan.level_columns) & set(plan.expression_columns)
    )


def _provisional_levels(frame, groups, meta, plan, source: str, files):
    """Return the grouping columns' distinct values: from the Parquet footers if they tell, else a pass."""
    start = time.perf_counter()
    ids = metadata_levels(files, groups[0], meta[groups[0]].dtype) if files and len(groups) == 1 else None
    if ids is not None:
        found = Scan(0, 0, {groups[0]: 0}, {}, {groups[0]: ids}, {}, {}, {}, {})
        return found, PassTiming(seconds=time.perf_counter() - start, worker_cpu=0.0)
    level_plan = replace(
        plan, used=groups, expression_columns=(), object_columns=(), range_columns=(), transforms=()
    )
    return reduce_partitions(frame[list(groups)], scan_partition, merge_scans, level_plan, source, "scan")


def one_pass_statistics(spec: ModelSpec, frame, meta, plan, extra_namespace, source: str, files=None):
    """Return the sums from one pass over the rows (levels from the grouping columns); None if not plain.

    Returns the scan of the whole data (its levels: those with rows), the sums (about the provisional
    levels), the passes' timings, and which provisional levels have rows, per factor. ``files``, the
    local Parquet files, lets the levels come from their metadata (:mod:`.parquet_levels`).
    """
    if not _one_pass_possible(plan):
        return None
    groups = plan.level_columns
    found, levels_pass = _provisional_levels(frame, groups, meta, plan, source, files)
    if not all(len(found.uniques[c]) for c in groups):  # no level: the two passes say what is wrong
        return None
    provisional = replace(found, n_kept=2, ranges={c: (0.0, 1.0) for c in plan.range_columns})
    dm, term_matrices = evaluate_prototype(spec, provisional, meta, plan, extra_namespace)
    columns = plain_columns(dm, term_matrices, meta, set(groups))
    if columns is None:
        return None
    design, structure, _, lookups = _design(spec, provisional, meta, plan, extra_namespace, source, 0)
    factors = []
    for f in structure.factors:
        index = tuple(next(i for i, b in enumerate(design.blocks) if b is s) for s in f.source_blocks)
        factors.append((index, lookups[f.source_blocks[0].term.factor], f.n_levels))
    response, fixed, blocks = columns
    one = PlainPlan(plan.used, response, fixed, blocks, tuple(factors), plan.range_columns)
    with warnings.catch_warnings():  # dask warns when the first partition has fewer rows
        warnings.simplefilter("ignore")
        head = frame[list(plan.used)].head(1000, npartitions=1)
    one = replace(one, shifts=pilot_shifts(head, one))
    result, sums_pass = reduce_partitions(
        frame[list(plan.used)], plain_partition, merge_plain, one, source, "statistics"
    )
    keep, uniques = [], dict(found.uniques)
    for f, (_, lookup, _) in zip(structure.factors, factors, strict=True):
        keep.append(result.sums.level_zz[len(keep)][:, 0, 0] > 0)
        (column,) = f.source_blocks[0].term.factor
        uniques[column] = found.uniques[column][keep[-1][lookup.codes]].reset_index(drop=True)
    scan = replace(
        found,
        n_rows=result.n_rows,
        n_kept=result.sums.n,
        counts=result.counts,
        uniques=uniques,
        ranges=result.ranges,
    )
    return scan, result.sums, {"levels": levels_pass, "statistics": sums_pass}, (structure, keep)


def same_levels(sums: PartitionSums, keep, structure: RandomStructure, lookups) -> PartitionSums | None:
    """Return the one pass's sums for the final levels; None if they are not the provisional ones.

    The final levels must be the provisional ones less those without rows, in the same order and the
    factors in the same order; if not, the two passes run.
    """
    provisional, masks = keep
    if [f.group for f in provisional.factors] != [f.group for f in structure.factors]:
        return None
    for old, new, mask in zip(provisional.factors, structure.factors, masks, strict=True):
        if tuple(np.asarray(old.levels, dtype=object)[mask]) != tuple(new.levels):
            return None
    return keep_levels(sums, masks)


def _passes(passes: dict) -> str:
    if "levels" not in passes:
        return "two"
    if passes["levels"].worker_cpu == 0.0 and not passes["levels"].rows:
        return "one (the levels from the Parquet metadata)"
    return "one (the grouping columns read first)"


def summarise_design(
    spec: ModelSpec, data, na_action: NaAction = "drop", extra_namespace: dict | None = None
) -> tuple[Design, ReducedStatistics]:
    """Evaluate a model formula on a Dask DataFrame or on Parquet/CSV files, reducing on the cluster.

    Parameters
    ----------
    spec : ModelSpec
        The parsed formula (with at least one random term).
    data : dask.dataframe.DataFrame, str or PathLike
        The data, or a path, directory or glob of Parquet or CSV files.
    na_action : {"drop", "error"}
        As for :func:`~bayesmlm.design.evaluate.make_design`.
    extra_namespace : dict, optional
        Functions the formula may call (see :mod:`bayesmlm.spec.namespace`).

    Returns
    -------
    design : Design
        Without rows (:attr:`~bayesmlm.design.evaluate.Design.holds_rows` is False), with its moments.
    statistics : ReducedStatistics
    """
    if na_action not in ("drop", "error"):
        raise ArgumentError(f"na_action must be 'drop' or 'error', not {na_action!r}")
    frame, source = dask_frame(data)
    meta = frame_meta(frame)
    check_columns(spec, meta)
    used = sorted(spec.variables)
    check_column_types(meta, used)
    plan = scan_plan(spec, meta, extra_namespace)
    columns = frame[used]
    one_pass = one_pass_statistics(spec, frame, meta, plan, extra_namespace, source, parquet_files(data))
    if one_pass is not None:
        scan, sums, passes, keep = one_pass
        n_dropped = _drop_message(scan, na_action)
        design, structure, _, lookups = _design(spec, scan, meta, plan, extra_namespace, source, n_dropped)
        sums = same_levels(sums, keep, structure, lookups)
    if one_pass is None or sums is None:  # the two passes: any formula
        scan, scan_pass = reduce_partitions(columns, scan_partition, merge_scans, plan, source, "scan")
        for name in plan.object_columns:
            check_column_types(pd.DataFrame({name: scan.raw_values[name]}), [name])
        n_dropped = _drop_message(scan, na_action)
        design, structure, dm, lookups = _design(spec, scan, meta, plan, extra_namespace, source, n_dropped)
        evaluation = _evaluation_plan(design, structure, scan, dm, lookups)
        sums, sums_pass = reduce_partitions(
            columns, partition_statistics, merge_sums, evaluation, source, "statistics"
        )
        passes = {"scan": scan_pass, "statistics": sums_pass}
    n = scan.n_kept
    sums, fixed_names, aliased = _drop_aliased(design, sums)
    moments = moments_from(sums, [f.group for f in structure.factors])
    design = replace(
        design,
        X=_no_rows((n, len(fixed_names)), "the fixed-effect matrix (design.X)", source),
        fixed_names=fixed_names,
        aliased=aliased,
        moments=moments,
    )
    check_identifiable(n, len(fixed_names), np.array(moments.y_range), spec.response, design.blocks)
    info = {
        "source": source,
        "partitions": int(frame.npartitions),
        "rows_read": int(scan.n_rows),
        "scheduler": scheduler_description(),
        "passes": _passes(passes),
        **pass_figures(passes, int(scan.n_rows)),
    }
    levels = tuple(f.n_levels for f in structure.factors)
    return design, ReducedStatistics(sums, levels, source, info)
