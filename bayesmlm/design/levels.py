"""Stage 2, the design: the level labels of grouping factors, the same for any type of group column.

A group column of strings, integers, whole floats, float32, booleans, categories or nullable types
gives the same labels (``308``, never ``308.0``) and so the same fit.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

__all__ = ["group_labels", "join_labels", "level_keys"]


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


def _plain_integers(column: pd.Series) -> bool:
    """Numpy integers (not booleans or categories) with no missing value: labelled by ``str``."""
    dtype = column.dtype
    return isinstance(dtype, np.dtype) and dtype.kind in "iu"


def _label(value: Any) -> str:
    if isinstance(value, np.generic):  # np.float32(9.0) is not a float: label it as the Python value
        value = value.item()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def join_labels(parts) -> str:
    """Label an interaction level: its parts joined by ``:``, as lme4 prints them.

    A part that itself contains ``:`` is quoted in backticks, so different levels never share a label
    (``"p0:y"`` with ``"z"`` is ```p0:y`:z``, ``"p0"`` with ``"y:z"`` is ``p0:`y:z```).

    Examples
    --------
    >>> join_labels(["a", "1"]), join_labels(["p0:y", "z"]), join_labels(["p0", "y:z"])
    ('a:1', '`p0:y`:z', 'p0:`y:z`')
    """
    parts = list(parts)
    if len(parts) == 1:
        return parts[0]
    return ":".join(f"`{p}`" if ":" in p else p for p in parts)


def level_keys(data: pd.DataFrame, factor: tuple[str, ...]) -> np.ndarray:
    """Each row's level label of a (possibly interacted) grouping factor, e.g. ``"a:A"``.

    Examples
    --------
    >>> import pandas as pd
    >>> level_keys(pd.DataFrame({"a": ["x", "y"], "b": [1.0, 2.0]}), ("a", "b")).tolist()
    ['x:1', 'y:2']
    """
    columns = [data[name].astype(object).map(_label).to_numpy(dtype=object) for name in factor]
    if len(columns) == 1:
        return columns[0]
    return np.array([join_labels(parts) for parts in zip(*columns, strict=True)], dtype=object)


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
        column = data[name]
        if _plain_integers(column):  # the same labels and codes, without a Python call per value
            values = column.to_numpy(dtype=np.int64)
            uniq = np.unique(values)
            per_column.append(np.searchsorted(uniq, values).astype(np.int64))
            labels_per_column.append(uniq.astype(str).tolist())
            continue
        labels = [_label(v) for v in _natural_levels(column)]
        keys = column.astype(object).map(_label)
        per_column.append(np.asarray(pd.Categorical(keys, categories=labels).codes, dtype=np.int64))
        labels_per_column.append(labels)
    if len(per_column) == 1:  # one column: its labels (join_labels of one part is the part)
        present, codes = np.unique(per_column[0], return_inverse=True)
        levels = tuple(np.asarray(labels_per_column[0], dtype=object)[present].tolist())
        return codes.reshape(-1).astype(np.int64), levels
    combos, codes = np.unique(np.column_stack(per_column), axis=0, return_inverse=True)
    levels = tuple(join_labels([labels_per_column[i][k] for i, k in enumerate(row)]) for row in combos)
    return codes.reshape(-1).astype(np.int64), levels
