"""Stage 2, the design: a grouping factor's provisional levels from Parquet files' metadata, unread.

The one pass of :mod:`bayesmlm.design.plain` needs, before the sums, the levels of each grouping
factor, so that every partition sums into the same level order. For a grouping column of integer ids
in local Parquet files the files' footers already say enough: each row group records its column's
minimum, maximum and count of missing values. :func:`metadata_levels` takes every integer from the
smallest to the largest id as the provisional levels; the sums then say which have rows, and those
without are removed (:func:`~bayesmlm.design.plain.keep_levels`), as for a level whose rows were all
dropped. The pass that reads the grouping column of every row is saved.

It is used only when that is cheap and safe: local files (the client reads the footers), a single
integer column without missing values in any row group, and ids dense enough: the range may hold at
most ``8 d + 1024`` integers, ``d`` the distinct ids of the first file (read for that), so the sums
are never more than about 8 times the size the true levels give. Otherwise the levels pass runs.
"""

from __future__ import annotations

import glob
import os
from pathlib import Path

import numpy as np
import pandas as pd

__all__ = ["metadata_levels", "parquet_files"]

_PARQUET = (".parquet", ".pq", ".parq")


def parquet_files(data) -> list[str] | None:
    """Return the local Parquet files a path, glob or directory names (as Dask reads them), or None.

    Examples
    --------
    >>> parquet_files("s3://bucket/data/*.parquet") is None
    True
    """
    if not isinstance(data, str | os.PathLike):
        return None
    text = os.fspath(data)
    if "://" in text:
        return None
    if glob.has_magic(text):
        found = sorted(glob.glob(text))
    elif Path(text).is_dir():
        try:
            import pyarrow.dataset as ds

            found = sorted(ds.dataset(text, format="parquet").files)
        except Exception:  # not a plain Parquet directory: let Dask's levels pass see
            return None
    else:
        found = [text]
    if not found or not all(Path(f).is_file() and f.lower().endswith(_PARQUET) for f in found):
        return None
    return found


def metadata_levels(files: list[str], column: str, dtype) -> pd.Series | None:
    """Return every integer from the smallest to the largest id of ``column`` in ``files``, or None.

    None when a file's row group lacks the column's statistics, has a missing value, is not of an
    integer type, or when the ids are not dense enough (see the module docstring).

    Examples
    --------
    >>> import tempfile, pyarrow as pa, pyarrow.parquet as pq
    >>> folder = tempfile.mkdtemp()
    >>> pq.write_table(pa.table({"g": np.array([3, 5, 3], dtype=np.int32)}), f"{folder}/a.parquet")
    >>> metadata_levels([f"{folder}/a.parquet"], "g", np.dtype("int32")).tolist()
    [3, 4, 5]
    """
    if not (isinstance(dtype, np.dtype) and dtype.kind in "iu"):
        return None
    import pyarrow.parquet as pq

    low, high = None, None
    try:
        for name in files:
            metadata = pq.ParquetFile(name).metadata
            (j,) = [i for i in range(metadata.num_columns) if metadata.schema.column(i).path == column]
            for g in range(metadata.num_row_groups):
                chunk = metadata.row_group(g).column(j)
                stats = chunk.statistics
                if chunk.physical_type not in ("INT32", "INT64") or stats is None or not stats.has_min_max:
                    return None
                if stats.null_count is None or stats.null_count > 0:
                    return None
                if chunk.num_values == 0:
                    continue
                low = int(stats.min) if low is None else min(low, int(stats.min))
                high = int(stats.max) if high is None else max(high, int(stats.max))
        if low is None:
            return None
        first = pq.read_table(files[0], columns=[column]).column(0).to_numpy()
    except Exception:  # unreadable footers, a missing column: the levels pass says what is wrong
        return None
    if high - low + 1 > 8 * len(np.unique(first)) + 1024:
        return None
    return pd.Series(np.arange(low, high + 1).astype(dtype, copy=False), dtype=dtype)
