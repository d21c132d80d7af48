"""Stage 4b, Bayes: a model's data frame as plain arrays and a JSON layout, and back, exactly.

A saved fit carries the rows its model used, so that the model can be rebuilt. netCDF holds plain
arrays under restricted names, so each column (and each level of the index) is stored as an array named
``column_<k>`` / ``index_<k>`` with, in a JSON layout, its real name and how to restore it: its numpy
dtype, or for pandas' own types the categories (with their Python types, so integer categories stay
integers), the ordered flag, and a mask of missing values. Names with ``/``, an index named like a
column, a MultiIndex and nullable ``Int64`` or ``boolean`` columns all round-trip. Decoding trusts
nothing: every dtype must be one of :data:`NUMPY_KINDS` and every array of the stated length.
"""

from __future__ import annotations

import numbers

import numpy as np
import pandas as pd

from bayesmlm.exceptions import FitError

__all__ = ["NUMPY_KINDS", "decode_frame", "encode_frame"]

#: the numpy dtypes a stored column may have
NUMPY_KINDS = frozenset(
    ["bool", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64", "float32", "float64"]
)
#: pandas' nullable types: name -> the numpy dtype the values are stored in
NULLABLE = {
    "Int8": "int8",
    "Int16": "int16",
    "Int32": "int32",
    "Int64": "int64",
    "UInt8": "uint8",
    "UInt16": "uint16",
    "UInt32": "uint32",
    "UInt64": "uint64",
    "Float32": "float32",
    "Float64": "float64",
    "boolean": "bool",
}


def _plain(value):
    """Return a category as a JSON value of its own Python type (numpy scalars become Python ones)."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, bool | int | float | str) or value is None:
        return value
    return str(value)


def _encode(values: pd.Series | pd.Index) -> tuple[dict, dict[str, np.ndarray]]:
    """One column or index level: its layout entry and its arrays (values, and a mask if it has one)."""
    dtype = values.dtype
    if isinstance(dtype, pd.CategoricalDtype):
        codes = np.asarray(pd.Categorical(values).codes, dtype=np.int64)
        cats = [_plain(c) for c in dtype.categories]
        return {"kind": "category", "categories": cats, "ordered": bool(dtype.ordered)}, {"values": codes}
    name = str(dtype)
    if name in NULLABLE:
        mask = np.asarray(pd.isna(values), dtype=bool)
        filled = pd.Series(values).fillna(False if name == "boolean" else 0)
        data = np.asarray(filled.to_numpy(dtype=NULLABLE[name]))
        return {"kind": "nullable", "dtype": name}, {"values": data, "mask": mask}
    if name in NUMPY_KINDS:
        return {"kind": "numpy", "dtype": name}, {"values": np.asarray(values)}
    # object or string: text, with missing values masked
    mask = np.asarray(pd.isna(values), dtype=bool)
    text = np.array(["" if m else str(v) for v, m in zip(values, mask, strict=True)], dtype=str)
    return {"kind": "text", "dtype": "string" if isinstance(dtype, pd.StringDtype) else "object"}, {
        "values": text,
        "mask": mask,
    }


def encode_frame(frame: pd.DataFrame) -> tuple[dict[str, np.ndarray], dict]:
    """Encode ``frame`` as arrays (``column_<k>``, ``index_<k>`` and their masks) and a JSON layout."""
    arrays: dict[str, np.ndarray] = {}
    layout: dict = {"n_rows": len(frame), "columns": [], "index": []}
    for part, items in (
        ("columns", [(name, frame.iloc[:, k]) for k, name in enumerate(frame.columns)]),
        ("index", [(name, frame.index.get_level_values(k)) for k, name in enumerate(frame.index.names)]),
    ):
        for k, (name, values) in enumerate(items):
            entry, data = _encode(values)
            key = f"{'column' if part == 'columns' else 'index'}_{k}"
            entry["name"] = _plain(name)
            entry["key"] = key
            for suffix, arr in data.items():
                arrays[key if suffix == "values" else f"{key}_{suffix}"] = arr
            layout[part].append(entry)
    return arrays, layout


def _decode(entry: dict, arrays: dict, n: int):
    key = entry.get("key")
    if not isinstance(key, str) or key not in arrays:
        raise FitError(f"the stored data lack the array {key!r}")
    values = np.asarray(arrays[key])
    if values.shape != (n,):
        raise FitError(f"the stored array {key!r} has shape {values.shape}, not ({n},)")
    kind = entry.get("kind")
    if kind == "category":
        cats, codes = entry.get("categories"), values.astype(np.int64)
        if not isinstance(cats, list) or not all(isinstance(c, str | numbers.Real) for c in cats):
            raise FitError(f"the categories of {entry.get('name')!r} are not a list of labels")
        if codes.size and (codes.min() < -1 or codes.max() >= len(cats)):
            raise FitError(f"the stored codes of {entry.get('name')!r} do not fit its categories")
        return pd.Categorical.from_codes(codes, categories=cats, ordered=bool(entry.get("ordered")))
    mask = np.asarray(arrays.get(f"{key}_mask", np.zeros(n, dtype=bool)), dtype=bool)
    if mask.shape != (n,):
        raise FitError(f"the stored mask of {key!r} has the wrong shape")
    dtype = entry.get("dtype")
    if kind == "numpy" and dtype in NUMPY_KINDS:
        return values.astype(dtype)
    if kind == "nullable" and dtype in NULLABLE:
        return pd.array(_masked(values.astype(NULLABLE[dtype]), mask), dtype=dtype)
    if kind == "text" and dtype in ("object", "string"):
        out = np.array([None if m else str(v) for v, m in zip(values, mask, strict=True)], dtype=object)
        return pd.array(out, dtype="string") if dtype == "string" else out
    raise FitError(f"the stored column {entry.get('name')!r} has an unknown kind {kind!r} or dtype {dtype!r}")


def _masked(values: np.ndarray, mask: np.ndarray) -> list:
    return [None if m else v for v, m in zip(values.tolist(), mask, strict=True)]


def decode_frame(arrays: dict, layout: dict) -> pd.DataFrame:
    """Rebuild the frame :func:`encode_frame` encoded; FitError for anything inconsistent."""
    if not isinstance(layout, dict) or not isinstance(layout.get("n_rows"), int):
        raise FitError("the stored data layout is not a JSON object with n_rows")
    n = layout["n_rows"]
    columns, index = layout.get("columns"), layout.get("index")
    if not isinstance(columns, list) or not isinstance(index, list) or not index:
        raise FitError("the stored data layout lacks its columns or index")
    if not all(isinstance(e, dict) for e in columns + index):
        raise FitError("the stored data layout has an entry that is not a JSON object")
    data = {k: _decode(e, arrays, n) for k, e in enumerate(columns)}
    frame = pd.DataFrame(data)
    frame.columns = [e.get("name") for e in columns]
    levels = [pd.Index(_decode(e, arrays, n), name=e.get("name")) for e in index]
    frame.index = levels[0] if len(levels) == 1 else pd.MultiIndex.from_arrays(levels)
    return frame
