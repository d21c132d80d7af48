"""Fit ``y ~ x + (x | g)`` from a Parquet data set on disk through a Dask cluster; print the figures.

Usage (from the repository root, with the package's venv and the ``dask`` extra)::

    .venv/bin/python benchmarks/dask_reduction.py --data /work/bench-data/dask100m          # 100M rows
    .venv/bin/python benchmarks/dask_reduction.py --data /tmp/d1m --rows 1000000 --groups 1000

The data (``--rows`` rows of ``y ~ x + (x | g)`` with ``--groups`` groups, the group of each row drawn
at random, so every file holds rows of nearly every group; ``g`` an int32 id; ``--files`` Parquet
files) are written on first use, outside the repository, and reused while ``manifest.json`` matches.
A ``distributed.LocalCluster`` of ``--workers`` processes with one thread each does the reduction. The
script prints, as one JSON line and a small table: the wall time of the statistics (both passes, and
each), of the REML fit and of the collapsed posterior (``--chains`` x ``--draws`` after as many tuning
steps); rows per second of the statistics; the peak resident memory of the client (this process and
the sampler's chain processes, polled every 0.1 s; also by proportional set size, which counts the
pages a forked chain process shares with this one once) and of each worker; the CPU seconds the workers
used for the statistics, per million rows (per core: one thread per worker), and the rows per second
two idle cores would give at that cost; and the machine's load average before and after, since the
machine may be shared (wall times grow with the load, CPU seconds hardly). ``--group-effects`` is passed
to ``fit(group_effects=...)`` (default ``auto``: 100,000 groups at 4 x 1,000 draws are drawn on demand),
``--random-effects`` times ``fit.random_effects()`` for every group too (streamed when on demand).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time
import warnings
from pathlib import Path

import numpy as np

TRUTH = {"Intercept": 1.0, "x": 0.5, "sd_Intercept": 1.0, "sd_x": 0.5, "cor": 0.3, "sigma": 1.0}


def write_data(folder: Path, rows: int, groups: int, files: int, seed: int) -> float:
    """Write the data set as ``files`` Parquet files (skipped when the manifest matches); return seconds."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    manifest = {"rows": rows, "groups": groups, "files": files, "seed": seed, "truth": TRUTH}
    path = folder / "manifest.json"
    if path.exists() and json.loads(path.read_text()) == manifest:
        return 0.0
    start = time.perf_counter()
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob("part-*.parquet"):
        old.unlink()
    rng = np.random.default_rng(seed)
    t = TRUTH
    c = t["cor"] * t["sd_Intercept"] * t["sd_x"]
    effects = rng.multivariate_normal([0, 0], [[t["sd_Intercept"] ** 2, c], [c, t["sd_x"] ** 2]], groups)
    per_file = -(-rows // files)
    for k in range(files):
        n = min(per_file, rows - k * per_file)
        g = rng.integers(0, groups, n, dtype=np.int32)
        x = rng.normal(size=n)
        y = (
            t["Intercept"]
            + effects[g, 0]
            + (t["x"] + effects[g, 1]) * x
            + rng.normal(scale=t["sigma"], size=n)
        )
        pq.write_table(pa.table({"y": y, "x": x, "g": g}), folder / f"part-{k:04d}.parquet")
    path.write_text(json.dumps(manifest))
    return time.perf_counter() - start


class PeakMemory:
    """Poll the resident memory of the client side and of each worker process until stopped."""

    def __init__(self, workers: list[int]):
        import psutil

        self.me = psutil.Process()
        self.workers = {pid: psutil.Process(pid) for pid in workers}
        self.client_peak = 0
        self.client_pss_peak = 0  # the same processes by proportional set size: shared pages counted once
        self.process_peak = 0  # this process alone, without the sampler's chain processes
        self.worker_peak = dict.fromkeys(workers, 0)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _client_rss(self) -> int:
        """This process and its children (the sampler's chains), without the workers."""
        total = self.me.memory_info().rss
        for child in self.me.children(recursive=True):
            try:
                if child.pid in self.workers or any(p.pid in self.workers for p in child.parents()):
                    continue
                total += child.memory_info().rss
            except Exception:  # a process that just ended
                continue
        return total

    def _client_pss(self) -> int:
        """Like _client_rss, but forked chain processes' pages shared with this one counted once."""
        total = self.me.memory_full_info().pss
        for child in self.me.children(recursive=True):
            try:
                if child.pid in self.workers or any(p.pid in self.workers for p in child.parents()):
                    continue
                total += child.memory_full_info().pss
            except Exception:
                continue
        return total

    def _run(self):
        tick = 0
        while not self._stop.is_set():
            try:
                self.client_peak = max(self.client_peak, self._client_rss())
                if tick % 5 == 0:  # reading smaps costs more: every 0.5 s
                    self.client_pss_peak = max(self.client_pss_peak, self._client_pss())
                tick += 1
                self.process_peak = max(self.process_peak, self.me.memory_info().rss)
                for pid, proc in self.workers.items():
                    self.worker_peak[pid] = max(self.worker_peak[pid], proc.memory_info().rss)
            except Exception:
                pass
            time.sleep(0.1)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()


def _warm_worker() -> None:
    """Import the per-partition code and load the compiled per-level loop (numba's cache) in a worker."""
    from bayesmlm.design.accumulate import level_products

    level_products(np.zeros(2, dtype=np.int64), np.ones((2, 1)), np.ones((2, 1)), 1)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", default="/work/bench-data/dask100m")
    parser.add_argument("--rows", type=int, default=100_000_000)
    parser.add_argument("--groups", type=int, default=100_000)
    parser.add_argument("--files", type=int, default=100)
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--draws", type=int, default=250)
    parser.add_argument("--chains", type=int, default=2)
    parser.add_argument("--skip-posterior", action="store_true")
    parser.add_argument(
        "--group-effects", default="auto", help="fit(group_effects=...): auto, store or on_demand"
    )
    parser.add_argument(
        "--random-effects", action="store_true", help="also summarise every group: fit.random_effects()"
    )
    parser.add_argument("--write-only", action="store_true")
    parser.add_argument(
        "--warm-up", action="store_true", help="fit the first file once first (workers' imports, numba)"
    )
    parser.add_argument("--use-files", type=int, default=None, help="fit the first N files only")
    args = parser.parse_args()
    folder = Path(args.data)
    written = write_data(folder, args.rows, args.groups, args.files, args.seed)
    if args.write_only:
        print(json.dumps({"written_s": round(written, 1)}))
        return

    import dask.dataframe as dd
    from distributed import Client, LocalCluster

    import bayesmlm as bm

    load_before = os.getloadavg()
    out: dict = {"rows": args.rows, "groups": args.groups, "files": args.files, "workers": args.workers}
    with (
        LocalCluster(
            n_workers=args.workers, threads_per_worker=1, processes=True, dashboard_address=None
        ) as cl,
        Client(cl) as client,
    ):
        pids = list(client.run(os.getpid).values())
        with PeakMemory(pids) as memory, warnings.catch_warnings():
            warnings.simplefilter("ignore")
            files = sorted(str(p) for p in folder.glob("part-*.parquet"))
            if args.warm_up:  # the workers import bayesmlm and load the compiled loop: once per worker
                start = time.perf_counter()
                client.run(_warm_worker)
                bm.Model("y ~ x + (x | g)", files[0])
                out["warm_up_s"] = round(time.perf_counter() - start, 2)
            start = time.perf_counter()
            files = sorted(str(p) for p in folder.glob("part-*.parquet"))[: args.use_files]
            source = str(folder / "part-*.parquet") if args.use_files is None else dd.read_parquet(files)
            model = bm.Model("y ~ x + (x | g)", source)
            out["statistics_s"] = round(time.perf_counter() - start, 2)
            out["scan_s"] = model.reduction.info["scan_seconds"]
            out["sums_s"] = model.reduction.info["statistics_seconds"]
            out["rows"] = model.reduction.info["rows_read"]
            out["rows_per_s"] = round(out["rows"] / out["statistics_s"])
            info = model.reduction.info
            out["passes"] = info["passes"]
            out["worker_cpu_s"] = info["worker_cpu_seconds"]
            out["partition_cpu_s"] = info["partition_cpu_seconds"]
            out["cpu_s_per_million_rows"] = info["cpu_seconds_per_million_rows"]
            # what 2 idle cores would do at this CPU cost: rows per CPU second times the workers
            out["rows_per_s_from_cpu"] = round(args.workers * 1e6 / out["cpu_s_per_million_rows"])
            out["client_peak_after_statistics_mb"] = round(memory.client_peak / 2**20)
            print(json.dumps(out), file=sys.stderr, flush=True)  # partial figures, as they come
            start = time.perf_counter()
            reml = model.fit_reml()
            out["reml_s"] = round(time.perf_counter() - start, 2)
            out["reml"] = {k: round(float(v), 4) for k, v in reml.fixed_effects["estimate"].items()}
            out["reml"]["sigma"] = round(reml.sigma, 4)
            out["client_peak_after_reml_mb"] = round(memory.client_peak / 2**20)
            print(json.dumps(out), file=sys.stderr, flush=True)
            if not args.skip_posterior:
                start = time.perf_counter()
                kw = dict(draws=args.draws, tune=args.draws, chains=args.chains, seed=1, progressbar=False)
                if args.group_effects != "auto":  # a checkout before the option existed takes no keyword
                    kw["group_effects"] = args.group_effects
                fit = model.fit(**kw)
                out["posterior_s"] = round(time.perf_counter() - start, 2)
                out["group_effects"] = fit.info.get("group_effects", "store (no option)")
                out["group_effects_s"] = fit.info["group_effects_seconds"]
                out["client_peak_after_posterior_mb"] = round(memory.client_peak / 2**20)
                out["client_pss_peak_after_posterior_mb"] = round(memory.client_pss_peak / 2**20)
                summary = fit.summary()
                out["min_ess_bulk"] = round(float(summary["ess_bulk"].min()))
                out["max_rhat"] = round(float(summary["rhat"].max()), 4)
                out["posterior_means"] = {k: round(float(v), 4) for k, v in summary["mean"].items()}
                if args.random_effects:
                    start = time.perf_counter()
                    table = fit.random_effects()
                    out["random_effects_s"] = round(time.perf_counter() - start, 2)
                    out["random_effects_rows"] = len(table)
                    means = table.xs("Intercept", level="term")["mean"]
                    out["sd_of_intercept_means"] = round(float(means.std()), 4)  # shrunk below sd 1
        out["client_peak_mb"] = round(memory.client_peak / 2**20)
        out["client_process_peak_mb"] = round(memory.process_peak / 2**20)
        out["client_pss_peak_mb"] = round(memory.client_pss_peak / 2**20)
        out["worker_peak_mb"] = [round(v / 2**20) for v in memory.worker_peak.values()]
    out["load_before"] = [round(v, 2) for v in load_before]
    out["load_after"] = [round(v, 2) for v in os.getloadavg()]
    print(json.dumps(out))
    print(
        f"statistics {out['statistics_s']} s ({out['rows_per_s'] / 1e6:.2f}M rows/s; scan {out['scan_s']} s,"
    )
    print(f"  sums {out['sums_s']} s), REML {out['reml_s']} s, posterior {out.get('posterior_s', '-')} s")
    if "group_effects" in out:
        print(
            f"  group effects: {out['group_effects']} ({out['group_effects_s']} s); random_effects() "
            f"{out.get('random_effects_s', '-')} s; client peak after the posterior "
            f"{out['client_peak_after_posterior_mb']} MB (PSS {out['client_pss_peak_after_posterior_mb']} MB)"
        )
    print(
        f"  {out['passes']} pass(es); workers' CPU {out['worker_cpu_s']} s = "
        f"{out['cpu_s_per_million_rows']} CPU s per million rows per core "
        f"(-> {out['rows_per_s_from_cpu'] / 1e6:.2f}M rows/s on {args.workers} idle cores)"
    )
    print(
        f"client peak {out['client_peak_mb']} MB (RSS summed; PSS {out['client_pss_peak_mb']} MB; "
        f"this process alone {out['client_process_peak_mb']} MB)"
    )
    print(f"worker peaks {out['worker_peak_mb']} MB")
    print(f"load average before {out['load_before']}, after {out['load_after']}")


if __name__ == "__main__":
    main()
