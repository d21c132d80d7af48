"""Stage 2, the design: the formula's encodings and transforms made the same for every partition.

formulae learns two things from the data it first evaluates a formula on: the levels of categorical
predictors (and so the dummy columns) and the state of stateful transforms (``center(x)``'s mean,
``scale(x)``'s mean and sd). Evaluated on each partition alone, both would differ between partitions.
So, before the first pass, :func:`scan_plan` reads the formula (parsing only) for what the first pass
must collect; after it, :func:`evaluate_prototype` evaluates the formula once on a small *prototype*
frame holding every level that occurs in the data, sets each transform's state from the whole data's
statistics, and the second pass evaluates every partition with those objects (formulae's
``evaluate_new_data``), as prediction evaluates new data. Grouping factors are labelled by
:func:`~bayesmlm.design.levels.group_labels` on their distinct values, as for a pandas data frame.

Transforms that need all rows at once (``bs``, ``cc``, ``cr``, ``tp``, ``poly``), ``binary`` without its
``success`` level and ``C()`` of a computed expression are refused before any pass over the data.
"""

from __future__ import annotations

import warnings

import formulae
import numpy as np
import pandas as pd
from formulae.categorical import ENCODINGS
from formulae.environment import Environment
from formulae.terms.call import Call
from formulae.terms.call_resolver import LazyCall, LazyOperator, LazyVariable
from formulae.transforms import TRANSFORMS

from bayesmlm.design.evaluation import evaluate_formula
from bayesmlm.design.levels import group_labels
from bayesmlm.design.partitions import CodeLookup, Scan, ScanPlan
from bayesmlm.exceptions import DataError, FormulaError
from bayesmlm.spec.expression import allowed_functions, check_expression
from bayesmlm.spec.formula import ModelSpec
from bayesmlm.spec.namespace import formula_environment

__all__ = ["evaluate_prototype", "factor_levels", "scan_plan"]

#: stateful transforms whose state is the mean (and sd) of their argument over the rows used
MOMENT_TRANSFORMS = ("center", "scale", "standardize")
#: transforms whose state needs all rows at once (knots, orthogonal bases)
WHOLE_DATA_TRANSFORMS = ("bs", "cc", "cr", "tp", "poly")
#: calls that make a column categorical
CATEGORICAL_CALLS = ("C", "T", "S")
_UNKNOWN = "__UNKNOWN_CATEGORIES__"  # dask's placeholder for categories it does not know


def _formulas(spec: ModelSpec) -> list[str]:
    return [f"{spec.response} ~ {spec.fixed}", *(term.expr for term in spec.random)]


def _calls(node):
    """Every call in one of formulae's lazy expression trees."""
    if isinstance(node, LazyCall):
        yield node
        for arg in [*node.args, *node.kwargs.values()]:
            yield from _calls(arg)
    elif isinstance(node, LazyOperator):
        for arg in node.args:
            yield from _calls(arg)


def _components(desc):
    terms = [desc.response.term] if desc.response is not None else []
    for term in [*terms, *desc.terms]:
        yield from getattr(term, "components", [])


def _refuse(call, why: str) -> FormulaError:
    return FormulaError(
        f"'{call}' {why}; a model built from a Dask DataFrame evaluates the formula one partition at a "
        "time. Compute the column first (e.g. ddf = ddf.assign(...)), or fit a pandas DataFrame"
    )


def scan_plan(spec: ModelSpec, meta: pd.DataFrame, extra_namespace: dict | None) -> ScanPlan:
    """Say what the first pass must collect for this formula, read from the formula alone.

    Parameters
    ----------
    spec : ModelSpec
    meta : DataFrame
        An empty frame with the data's columns and dtypes.
    extra_namespace : dict, optional
        The user's formula functions.

    Returns
    -------
    ScanPlan
    """
    used = tuple(sorted(spec.variables))
    allowed = allowed_functions(extra_namespace or {})
    expression_columns: set[str] = set()
    level_columns = {c for term in spec.random for c in term.factor}
    transforms: dict[str, object] = {}
    for text in _formulas(spec):
        expression_columns |= check_expression(text, allowed)
        for component in _components(formulae.model_description(text)):
            if not isinstance(component, Call):
                if not pd.api.types.is_numeric_dtype(meta[component.name].dtype):
                    level_columns.add(component.name)
                continue
            for call in _calls(component.call):
                if call.callee in WHOLE_DATA_TRANSFORMS:
                    raise _refuse(call, "needs all rows at once (its basis or knots come from all the data)")
                if call.callee in ("binary", "B") and len(call.args) < 2 and "success" not in call.kwargs:
                    raise _refuse(call, "takes its success level from the data; write binary(x, success=...)")
                if call.callee in CATEGORICAL_CALLS:
                    if not call.args or not isinstance(call.args[0], LazyVariable):
                        raise _refuse(call, "takes its levels from a computed expression")
                    level_columns.add(call.args[0].name)
                if call.callee in MOMENT_TRANSFORMS:
                    if any(inner.callee in MOMENT_TRANSFORMS for arg in call.args for inner in _calls(arg)):
                        raise _refuse(call, "nests one stateful transform in another")
                    transforms[str(call)] = call.args[0]
    object_columns = tuple(c for c in used if pd.api.types.is_object_dtype(meta[c].dtype))
    level_columns |= set(object_columns) & expression_columns
    ranges = tuple(
        c
        for c in sorted(expression_columns - level_columns)
        if pd.api.types.is_numeric_dtype(meta[c].dtype) or pd.api.types.is_bool_dtype(meta[c].dtype)
    )
    env = Environment([{**TRANSFORMS, **ENCODINGS}]).with_outer_namespace(
        formula_environment(extra_namespace).namespace
    )
    return ScanPlan(
        used=used,
        expression_columns=tuple(sorted(expression_columns)),
        object_columns=object_columns,
        level_columns=tuple(sorted(level_columns)),
        factors=tuple(sorted({t.factor for t in spec.random if len(t.factor) > 1})),
        range_columns=ranges,
        transforms=tuple(transforms.items()),
        env=env,
    )


def _restore(values: pd.Series, name: str, meta: pd.DataFrame, scan: Scan) -> pd.Series:
    """Give a categorical column its categories back (the scan holds plain values)."""
    dtype = meta[name].dtype
    if not isinstance(dtype, pd.CategoricalDtype):
        return values.reset_index(drop=True)
    if _UNKNOWN not in list(dtype.categories):
        return pd.Series(pd.Categorical(values, dtype=dtype))
    seen = scan.categories.get(name, set())
    if len(seen) == 1:  # every partition has the same categories: their order is the column's
        categories = list(next(iter(seen)))
    else:  # categories Dask does not know and the partitions disagree on: sorted
        categories = sorted(set(values), key=lambda v: (str(type(v)), v))
    return pd.Series(pd.Categorical(values, categories=categories, ordered=dtype.ordered))


def factor_levels(
    scan: Scan, meta: pd.DataFrame, factor: tuple[str, ...]
) -> tuple[tuple[str, ...], CodeLookup]:
    """Return a grouping factor's level labels (as for a pandas frame) and the lookup of row codes."""
    if len(factor) == 1:
        distinct = pd.DataFrame({factor[0]: scan.uniques[factor[0]].reset_index(drop=True)})
    else:
        distinct = scan.combos[factor]
    restored = pd.DataFrame({c: _restore(distinct[c], c, meta, scan) for c in factor})
    codes, levels = group_labels(restored, factor)
    values = tuple(pd.Index(distinct[c].drop_duplicates()) for c in factor)
    if len(factor) == 1:
        return levels, CodeLookup(factor, values, pd.Index([]), codes)
    key = np.zeros(len(distinct), dtype=np.int64)
    for k, c in enumerate(factor):
        key = key * len(values[k]) + values[k].get_indexer(distinct[c])
    return levels, CodeLookup(factor, values, pd.Index(key), codes)


def _prototype_frame(scan: Scan, meta: pd.DataFrame, plan: ScanPlan) -> pd.DataFrame:
    """Make a few rows holding every level of each categorical column, in-range numbers elsewhere."""
    size = max([2, *(len(v) for c, v in scan.uniques.items() if c in plan.expression_columns)])
    columns = {}
    for c in plan.used:
        if c in scan.uniques:
            values = _restore(scan.uniques[c], c, meta, scan)
            columns[c] = values.iloc[np.arange(size) % len(values)].reset_index(drop=True)
        elif c in scan.ranges:
            low, high = scan.ranges[c]
            dtype = bool if pd.api.types.is_bool_dtype(meta[c].dtype) else meta[c].dtype
            dtype = np.float64 if isinstance(dtype, pd.api.extensions.ExtensionDtype) else dtype
            columns[c] = pd.Series(np.resize([low, high], size)).astype(dtype)
        else:  # a grouping column in a combination only: formulae never reads it
            columns[c] = pd.Series(np.zeros(size))
    return pd.DataFrame(columns)


def _set_transform_states(matrices, scan: Scan) -> None:
    """Give every center/scale/standardize call the whole data's mean (and sd) of its argument."""
    for component in matrices:
        for call in _calls(component.call) if isinstance(component, Call) else ():
            state = call.stateful_transform
            if state is None or str(call) not in scan.transforms:
                continue
            n, mean, squares = scan.transforms[str(call)]
            state.mean = mean
            if hasattr(state, "std"):
                state.std = float(np.sqrt(squares / n))


def _terms_components(matrix):
    return [c for term in matrix.terms.values() for c in getattr(term, "components", [])]


def evaluate_prototype(spec: ModelSpec, scan: Scan, meta: pd.DataFrame, plan: ScanPlan, extra_namespace):
    """Evaluate the formula on the prototype frame; return formulae's objects with the global states.

    Returns
    -------
    fixed : DesignMatrices
        For ``response ~ fixed`` (``.common`` is None without fixed effects).
    terms : list
        formulae's ``.common`` matrix of each random term, in formula order.
    """
    frame = _prototype_frame(scan, meta, plan)
    env = formula_environment(extra_namespace)
    allowed = allowed_functions(extra_namespace or {})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # log(0) and the like on prototype values
        dm = evaluate_formula(f"{spec.response} ~ {spec.fixed}", frame, "fixed part", env, allowed)
        terms = [evaluate_formula(t.expr, frame, f"random term {t}", env, allowed) for t in spec.random]
    y = np.asarray(np.asarray(dm.response), dtype=float)
    if dm.response.kind != "numeric" or (y.ndim == 2 and y.shape[1] != 1):
        raise DataError(
            f"the response '{spec.response}' must be numeric, but it is categorical "
            f"({y.shape[1] if y.ndim == 2 else 1} level column(s)); convert it to numbers"
        )
    for term, tm in zip(spec.random, terms, strict=True):
        if tm.common is None:
            raise FormulaError(f"random term {term} has no columns")
    components = [dm.response.term.term]
    if dm.common is not None:
        components += _terms_components(dm.common)
    for tm in terms:
        components += _terms_components(tm.common)
    for component in components:
        if getattr(component, "kind", None) != "categoric":
            continue
        names = {component.name} if not isinstance(component, Call) else component.var_names
        if not isinstance(component, Call) or component.call.callee in CATEGORICAL_CALLS:
            if names <= set(plan.level_columns):
                continue
        raise _refuse(component.name, "is categorical with levels computed from the data")
    _set_transform_states(components, scan)
    return dm, [tm.common for tm in terms]
