"""Stage 2, the design: data that stay where they are: a Dask DataFrame, or Parquet/CSV files read by Dask.

:func:`is_distributed_input` recognises such data without importing Dask (so ``import bayesmlm`` and
every pandas fit never load it); :func:`dask_frame` turns a path, a directory or a glob into a lazy Dask
DataFrame; :func:`reduce_partitions` runs one pass over the partitions as a tree reduction: each
partition's result is computed where the partition is, results are merged eight at a time on the
workers, and only the final, merged result comes back. The scheduler is whatever Dask would use: the
active ``distributed.Client`` if there is one (a ``LocalCluster``, ``Client("tcp://scheduler:8786")``,
a Kubernetes or YARN cluster), else Dask's local threads.

Dask, distributed and pyarrow come with ``pip install bayesmlm[dask]``.
"""

from __future__ import annotations

import glob
import os
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from bayesmlm.exceptions import ArgumentError, BayesMLMError, DataError

__all__ = [
    "PassTiming",
    "dask_frame",
    "frame_meta",
    "is_distributed_input",
    "pass_figures",
    "reduce_partitions",
    "refuse_distributed",
    "scheduler_description",
]

#: partial results merged per task of the tree reduction
SPLIT_EVERY = 8
_PARQUET = (".parquet", ".pq", ".parq")
_CSV = (".csv", ".csv.gz", ".tsv", ".txt")


def refuse_distributed(generalized: bool, weights) -> None:
    """Refuse a generalized or weighted model from a Dask DataFrame or files (only sums of squares reduce)."""
    if generalized or weights is not None:
        raise ArgumentError(
            "a model from a Dask DataFrame or files is Gaussian and unweighted (its statistics are sums of "
            "squares); fit generalized or weighted models from a pandas DataFrame"
        )


def is_distributed_input(data: object) -> bool:
    """Whether ``data`` is a Dask DataFrame or a path (or glob) of files; imports nothing.

    Examples
    --------
    >>> import pandas as pd
    >>> is_distributed_input("data/*.parquet"), is_distributed_input(pd.DataFrame())
    (True, False)
    """
    if isinstance(data, str | os.PathLike):
        return True
    return type(data).__module__.split(".")[0] in ("dask", "dask_expr") and hasattr(data, "npartitions")


def _import_dask():
    try:
        import dask
        import dask.dataframe as dd
    except ImportError as err:
        raise DataError(
            "fitting a Dask DataFrame or Parquet/CSV files needs dask, distributed and pyarrow: "
            "pip install 'bayesmlm[dask]'"
        ) from err
    return dask, dd


def dask_frame(data: Any) -> tuple[Any, str]:
    """Return ``data`` as a lazy Dask DataFrame and a description of where it comes from.

    A path may name a Parquet file or directory, a CSV file, or a glob of either (``"data/*.parquet"``),
    on this machine's file system (which the workers must see at the same path) or as a URL that
    fsspec reads (``"s3://bucket/data/*.parquet"``, with s3fs installed). Nothing is read but the
    files' metadata (Parquet) or a first block (CSV, for the column types).
    """
    _, dd = _import_dask()
    if not isinstance(data, str | os.PathLike):
        return data, f"a Dask DataFrame of {data.npartitions} partitions"
    text = os.fspath(data)
    if "://" in text:  # s3://, gs://, abfs://, hdfs://: fsspec finds the files, on the workers too
        matches, name, is_dir = text, text.rstrip("/").rsplit("/", 1)[-1], text.endswith("/")
    else:
        found = sorted(glob.glob(text)) if glob.has_magic(text) else [text] * os.path.exists(text)
        if not found:
            raise DataError(f"no file or directory matches {text!r}; give a Parquet or CSV path or glob")
        matches, name, is_dir = found, Path(found[0]).name, Path(found[0]).is_dir()
    is_parquet = is_dir or name.lower().endswith(_PARQUET)
    if not is_parquet and not name.lower().endswith(_CSV):
        raise DataError(
            f"cannot tell the format of {name!r}: name Parquet files *.parquet (or a directory "
            "of them) and CSV files *.csv, or read them yourself with dask.dataframe"
        )
    try:
        frame = dd.read_parquet(matches) if is_parquet else dd.read_csv(matches)
    except Exception as err:  # pyarrow and pandas raise many kinds for unreadable files
        raise DataError(f"cannot read {text!r}: {type(err).__name__}: {err}") from err
    kind = "Parquet" if is_parquet else "CSV"
    return frame, f"the {kind} data {text!r} ({frame.npartitions} partitions)"


def frame_meta(frame):
    """Return an empty pandas frame with the Dask DataFrame's columns and dtypes."""
    from dask.dataframe.utils import make_meta

    return make_meta(frame)


def scheduler_description() -> str:
    """Which scheduler Dask will use: the active distributed client's address, or Dask's local one."""
    try:
        from distributed import default_client

        return f"distributed.Client at {default_client().scheduler.address}"
    except (ImportError, ValueError):  # no distributed, or no client
        import dask

        return f"dask's local scheduler ({dask.config.get('scheduler', None) or 'threads'})"


@dataclass(frozen=True)
class PassTiming:
    """What one pass over the partitions cost.

    ``seconds`` is the pass's wall time on the client; ``partition_cpu`` and ``partition_wall`` add up
    the CPU time (of the worker thread) and the wall time of the per-partition function over all
    partitions (reading the files is a task of its own, not in these); ``worker_cpu`` is the CPU time
    the workers' processes used during the pass (reading, merging, sending included), with a
    ``distributed`` client only; ``rows`` counts the rows of the partitions.
    """

    seconds: float = 0.0
    partition_cpu: float = 0.0
    partition_wall: float = 0.0
    rows: int = 0
    worker_cpu: float | None = None
    workers: int | None = None

    def __add__(self, other: PassTiming) -> PassTiming:
        return PassTiming(
            self.seconds + other.seconds,
            self.partition_cpu + other.partition_cpu,
            self.partition_wall + other.partition_wall,
            self.rows + other.rows,
        )


def _in_partition(function: Callable, partition, plan, k: int, n: int):
    """Run ``function`` on one partition, timed; say which partition a data error came from."""
    wall, cpu = time.perf_counter(), time.thread_time()
    try:
        result = function(partition, plan)
    except BayesMLMError as err:
        raise type(err)(f"in partition {k} of {n}: {err}") from None
    return result, PassTiming(0.0, time.thread_time() - cpu, time.perf_counter() - wall, len(partition))


def _merge_all(merge: Callable, *parts):
    result, timing = parts[0]
    for part, more in parts[1:]:
        result, timing = merge(result, part), timing + more
    return result, timing


def _worker_cpu() -> dict | None:
    """CPU seconds used so far by each worker process of the active distributed client (None without)."""
    try:
        from distributed import default_client

        return default_client().run(time.process_time)
    except (ImportError, ValueError):  # no distributed, or no client
        return None


def pass_figures(passes: dict[str, PassTiming], rows: int) -> dict:
    """Return the figures of some passes for ``info``: wall and CPU seconds, CPU per million rows.

    ``cpu_seconds_per_million_rows`` divides the workers' CPU time (or, without a distributed client,
    the per-partition CPU time) by the rows read, in millions: per core, since each worker runs one
    task at a time; it does not grow with the machine's load as wall time does.
    """
    out: dict = {f"{label}_seconds": round(t.seconds, 3) for label, t in passes.items()}
    if "levels" in passes:
        out["scan_seconds"] = out["levels_seconds"]
    partition_cpu = sum(t.partition_cpu for t in passes.values())
    worker = [t.worker_cpu for t in passes.values()]
    out["partition_cpu_seconds"] = round(partition_cpu, 3)
    out["partition_wall_seconds"] = round(sum(t.partition_wall for t in passes.values()), 3)
    out["worker_cpu_seconds"] = None if None in worker else round(sum(worker), 3)
    cpu = partition_cpu if out["worker_cpu_seconds"] is None else out["worker_cpu_seconds"]
    out["cpu_seconds_per_million_rows"] = round(cpu / max(rows, 1) * 1e6, 4)
    out["load_average"] = round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None
    return out


def reduce_partitions(frame, function: Callable, merge: Callable, plan, source: str, label: str):
    """``merge`` of ``function(partition, plan)`` over all partitions, computed where the data are.

    Parameters
    ----------
    frame : dask.dataframe.DataFrame
    function : callable
        ``function(partition, plan)`` for one partition (a pandas DataFrame).
    merge : callable
        Merges two results; associative.
    plan : object
        Sent once to every worker that needs it.
    source : str
        Describes the data, for messages.
    label : str
        Names the tasks (``bayesmlm-<label>-...``), as the Dask dashboard shows them.

    Returns
    -------
    result, timing : object, PassTiming
        The merged result (on this machine) and what the pass cost.

    Raises
    ------
    DataError
        If a partition fails (unreadable file, a value formulas cannot use, ...): nothing of the
        pass is kept.
    """
    dask, _ = _import_dask()
    start, cpu_before = time.perf_counter(), _worker_cpu()
    token = uuid.uuid4().hex[:8]
    parts = frame.to_delayed()
    shared = dask.delayed(plan, name=f"bayesmlm-{label}-plan-{token}", traverse=False)
    level = [
        dask.delayed(_in_partition, pure=True)(
            function, part, shared, k, len(parts), dask_key_name=f"bayesmlm-{label}-{token}-{k}"
        )
        for k, part in enumerate(parts)
    ]
    depth = 0
    while len(level) > 1:
        depth += 1
        level = [
            dask.delayed(_merge_all, pure=True)(
                merge,
                *level[i : i + SPLIT_EVERY],
                dask_key_name=f"bayesmlm-{label}-merge-{token}-{depth}-{i}",
            )
            for i in range(0, len(level), SPLIT_EVERY)
        ]
    try:
        ((result, timing),) = dask.compute(level[0])
    except BayesMLMError:
        raise
    except Exception as err:  # whatever a worker or a reader raised; nothing was kept
        raise DataError(
            f"computing the statistics of {source} failed: {type(err).__name__}: {err}; nothing was "
            "kept and no model was made"
        ) from err
    seconds, cpu_after = time.perf_counter() - start, _worker_cpu()
    if cpu_before is not None and cpu_after is not None:
        used = sum(cpu_after[w] - cpu_before[w] for w in cpu_after if w in cpu_before)
        return result, replace(timing, seconds=seconds, worker_cpu=used, workers=len(cpu_after))
    return result, replace(timing, seconds=seconds)
