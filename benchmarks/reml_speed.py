"""REML speed: bayesmlm beside statsmodels and lme4 on three cases, each fit in a fresh process.

Usage (from the repository root, with the package's venv)::

    .venv/bin/python benchmarks/reml_speed.py [--cases sleepstudy subjects_items insteval]
        [--statsmodels-python PATH] [--repeat 3]

Cases: (a) sleepstudy ``Reaction ~ Days + (Days | Subject)``, beside statsmodels'
``mixedlm("Reaction ~ Days", groups="Subject", re_formula="~Days").fit(reml=True)``; (b) subjects x
items, 60 x 40 fully crossed (2,400 rows, simulated by :func:`subjects_items`, seed 2026),
``y ~ x + (1 + x | subj) + (1 + x | item)``; (c) InstEval ``y ~ service + (1|s) + (1|d) + (1|dept)``
(73,421 rows, 2,972 x 1,128 crossed). lme4 runs each case when ``Rscript`` exists.

``--shape`` instead times, in one warm process, bayesmlm's statsmodels-shaped sleepstudy fit
(``MixedLM.from_formula("Reaction ~ Days", groups="Subject", re_formula="~Days").fit()``) against the
same fit through ``bm.Model("Reaction ~ Days + (Days | Subject)").fit_reml()``, the two interleaved, and
prints both medians (wall and CPU) side by side: the entry point should cost no more than the model.

Every run is a fresh process; the tools alternate within a case, so they see the same machine state,
and the load average before each run is printed (the machine is shared: compare figures side by side,
and prefer the CPU seconds when the load exceeds the cores). Columns: ``import s``: importing the
package (after numpy and pandas); ``1st-use imports s``: what bayesmlm imports on a REML fit's first use
(formulae, SciPy's optimiser; ``import bayesmlm`` defers them, statsmodels and lme4 load theirs on import);
``first fit s``: the first fit, building the model from the data frame included (lme4:
``system.time(lmer(...))`` after ``library(lme4)`` and ``read.csv``); ``cpu s``: the same in CPU
seconds; ``next fit s``: a fit of another random-effects structure in the same process (no
per-structure compilation); ``logLik``; ``peak MB``: the process's peak resident memory.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

CASES = {
    "sleepstudy": ("Reaction ~ Days + (Days | Subject)", "Reaction ~ Days + (Days || Subject)"),
    "subjects_items": ("y ~ x + (1 + x | subj) + (1 + x | item)", "y ~ x + (1 | subj) + (1 | item)"),
    "insteval": ("y ~ service + (1|s) + (1|d) + (1|dept)", "y ~ service + (1|s) + (1|d)"),
}
GROUPS = {"sleepstudy": ["Subject"], "subjects_items": ["subj", "item"], "insteval": ["s", "d", "dept"]}
LME4 = """
t0 <- proc.time()[["elapsed"]]
suppressMessages(library(lme4))
d <- read.csv("{data}")
for (g in c({groups})) d[[g]] <- factor(d[[g]])
t1 <- proc.time()[["elapsed"]]
c0 <- sum(proc.time()[c("user.self", "sys.self")])
t <- system.time(m <- lmer({formula}, d, REML = TRUE))[["elapsed"]]
c1 <- sum(proc.time()[c("user.self", "sys.self")])
t2 <- system.time(m2 <- lmer({formula2}, d, REML = TRUE))[["elapsed"]]
cat(sprintf(paste0('{{"tool": "lme4", "import_s": %.3f, "first_fit_s": %.3f, "cpu_s": %.3f, ',
                   '"next_fit_s": %.3f, "loglik": %.6f}}\\n'), t1 - t0, t, c1 - c0, t2, logLik(m)))
"""


def subjects_items(n_subj: int = 60, n_item: int = 40, seed: int = 2026) -> pd.DataFrame:
    """The psycholinguist's design: every subject sees every item once, ``x = ±0.5`` counterbalanced.

    Subject effects: intercept sd 0.6, slope sd 0.3, correlation 0.4; item effects 0.4, 0.2, -0.3;
    residual sd 1; ``y = 1 + 0.5 x + ...``.
    """
    rng = np.random.default_rng(seed)
    s, i = (a.ravel() for a in np.meshgrid(np.arange(n_subj), np.arange(n_item), indexing="ij"))
    x = np.where((s + i) % 2 == 0, -0.5, 0.5)

    def effects(n: int, sd: tuple[float, float], rho: float) -> np.ndarray:
        cov = np.array([[sd[0] ** 2, rho * sd[0] * sd[1]], [rho * sd[0] * sd[1], sd[1] ** 2]])
        return rng.multivariate_normal([0.0, 0.0], cov, n)

    bs, bi = effects(n_subj, (0.6, 0.3), 0.4), effects(n_item, (0.4, 0.2), -0.3)
    y = 1.0 + 0.5 * x + bs[s, 0] + bs[s, 1] * x + bi[i, 0] + bi[i, 1] * x + rng.normal(0.0, 1.0, s.size)
    return pd.DataFrame({"y": y, "x": x, "subj": [f"s{k:02d}" for k in s], "item": [f"i{k:02d}" for k in i]})


def write_case(name: str, folder: Path) -> Path:
    """Write a case's data as CSV (the same file for every tool)."""
    path = folder / f"{name}.csv"
    if name == "subjects_items":
        subjects_items().to_csv(path, index=False)
    else:
        import bayesmlm as bm

        bm.load_dataset({"sleepstudy": "sleepstudy", "insteval": "InstEval"}[name]).to_csv(path, index=False)
    return path


def _peak_mb() -> float:
    import resource

    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def worker(tool: str, name: str, data: str) -> None:
    """Fit one case in this (fresh) process and print one line of JSON."""
    t0 = time.perf_counter()
    if tool == "bayesmlm":
        import bayesmlm as bm

        t_mid = time.perf_counter()
        # what a REML fit imports on first use (formulae, SciPy's optimiser); counted apart
        importlib.import_module("bayesmlm.model")
        importlib.import_module("bayesmlm.reml.fit")
    else:
        import statsmodels.formula.api as smf

        t_mid = time.perf_counter()
    t_imports = time.perf_counter()
    frame = pd.read_csv(data)
    for g in GROUPS[name]:
        frame[g] = frame[g].astype(str)
    formula, formula2 = CASES[name]
    t1, c1 = time.perf_counter(), time.process_time()
    if tool == "bayesmlm":
        fit = bm.Model(formula, frame).fit_reml()
        loglik, converged = fit.loglik, bool(fit.converged)
    else:
        groups = frame["Subject"]
        fit = smf.mixedlm("Reaction ~ Days", frame, groups=groups, re_formula="~Days").fit(reml=True)
        loglik, converged = float(fit.llf), bool(fit.converged)
    t2, c2 = time.perf_counter(), time.process_time()
    if tool == "bayesmlm":
        bm.Model(formula2, frame).fit_reml()
    else:
        smf.mixedlm("Reaction ~ Days", frame, groups=groups, re_formula="0 + Days").fit(reml=True)
    t3 = time.perf_counter()
    out = {"tool": tool, "import_s": round(t_mid - t0, 3), "first_fit_s": round(t2 - t1, 4)}
    if tool == "bayesmlm":
        out["first_use_imports_s"] = round(t_imports - t_mid, 3)
    out.update(cpu_s=round(c2 - c1, 4), next_fit_s=round(t3 - t2, 4), loglik=loglik, converged=converged)
    out["peak_rss_mb"] = _peak_mb()
    sys.stdout.write(json.dumps(out) + "\n")


def shape_overhead(repeat: int = 20) -> None:
    """Print the medians of the statsmodels-shaped and the ``bm.Model`` sleepstudy REML fits (module doc)."""
    import bayesmlm as bm

    data = bm.load_dataset("sleepstudy")
    fits = {
        "bm.MixedLM.from_formula(...).fit()": lambda: bm.MixedLM.from_formula(
            "Reaction ~ Days", groups="Subject", re_formula="~Days", data=data
        ).fit(),
        "bm.Model(...).fit_reml()": lambda: bm.Model("Reaction ~ Days + (Days | Subject)", data).fit_reml(),
    }
    times: dict[str, list[tuple[float, float]]] = {name: [] for name in fits}
    for k in range(repeat + 3):  # three warm-up rounds, then interleaved runs
        for name, fit in fits.items():
            t, c = time.perf_counter(), time.process_time()
            fit()
            if k >= 3:
                times[name].append((time.perf_counter() - t, time.process_time() - c))
    print(f"sleepstudy REML, medians of {repeat} interleaved warm runs (load {os.getloadavg()[0]:.1f})")
    for name, values in times.items():
        wall, cpu = (1e3 * float(np.median([v[i] for v in values])) for i in (0, 1))
        print(f"  {name:36s} wall {wall:6.1f} ms   cpu {cpu:6.1f} ms")
    shaped, plain = (np.array(v) for v in times.values())
    for i, what in enumerate(("wall", "cpu")):  # round by round: the pair ran back to back
        diff = 1e3 * (shaped[:, i] - plain[:, i])
        q1, med, q3 = np.percentile(diff, [25, 50, 75])
        print(
            f"  paired {what} difference (statsmodels-shaped - bm.Model): median {med:+.2f} ms,"
            f" quartiles {q1:+.2f} .. {q3:+.2f} ms, slower in {np.mean(diff > 0):.0%} of rounds"
        )


def run_json(cmd: list[str], timeout: float) -> dict:
    """Run a worker; return its JSON line, or a record of how it failed."""
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout:.0f} s"}
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    if proc.returncode != 0 or not lines:
        return {"error": f"exit {proc.returncode}: {' | '.join(proc.stderr.strip().splitlines()[-2:])}"}
    return json.loads(lines[-1])


def _lme4_peak(script: str, timeout: float) -> dict:
    """Run the lme4 script under ``/usr/bin/time`` when it exists, for the peak memory."""
    timer = shutil.which("time") or ("/usr/bin/time" if Path("/usr/bin/time").exists() else None)
    if timer is None:
        return run_json(["Rscript", "-e", script], timeout)
    proc = subprocess.run(
        [timer, "-f", "PEAK_KB %M", "Rscript", "-e", script], capture_output=True, text=True, timeout=timeout
    )
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    if proc.returncode != 0 or not lines:
        return {"error": f"exit {proc.returncode}: {' | '.join(proc.stderr.strip().splitlines()[-2:])}"}
    out = json.loads(lines[-1])
    peak = [ln for ln in proc.stderr.splitlines() if ln.startswith("PEAK_KB")]
    if peak:
        out["peak_rss_mb"] = round(int(peak[-1].split()[1]) / 1024, 1)
    return out


def fmt(value, spec: str) -> str:
    """Format a number, or a right-aligned dash of the same width when it is missing."""
    width = int(spec.split(".")[0] or 0)
    return "-".rjust(width) if value is None else format(value, spec)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--cases", nargs="+", default=list(CASES), choices=list(CASES))
    parser.add_argument("--statsmodels-python", default=sys.executable, help="a Python with statsmodels")
    parser.add_argument("--repeat", type=int, default=3, help="fresh-process runs of each tool per case")
    parser.add_argument("--shape", action="store_true", help="statsmodels-shaped fit beside bm.Model")
    parser.add_argument("--worker", nargs=3, metavar=("TOOL", "CASE", "DATA"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(*args.worker)
        return
    if args.shape:
        shape_overhead(20 if args.repeat == 3 else args.repeat)  # --repeat: interleaved runs here
        return
    here = Path(__file__).resolve()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.cases:
            data = write_case(name, Path(tmp))
            tools = {"bayesmlm": [sys.executable, str(here), "--worker", "bayesmlm", name, str(data)]}
            if name == "sleepstudy":
                tools["statsmodels"] = [
                    args.statsmodels_python,
                    str(here),
                    "--worker",
                    "statsmodels",
                    name,
                    str(data),
                ]
            formula, formula2 = CASES[name]
            groups = ", ".join(f'"{g}"' for g in GROUPS[name])
            script = LME4.format(data=data, groups=groups, formula=formula, formula2=formula2)
            for _ in range(args.repeat):
                for tool, cmd in tools.items():
                    load = os.getloadavg()[0]
                    rows.append((name, tool, load, run_json(cmd, 900)))
                if shutil.which("Rscript"):
                    load = os.getloadavg()[0]
                    rows.append((name, "lme4", load, _lme4_peak(script, 900)))
                for row in rows[-len(tools) - bool(shutil.which("Rscript")) :]:
                    print(
                        f"{row[0]:14s} {row[1]:11s} load {row[2]:.1f} {json.dumps(row[3])}", file=sys.stderr
                    )
    print(f"\nmachine: {platform.platform()}, {os.cpu_count()} cores; REML fits, each in a fresh process")
    header = (
        f"{'case':14s} {'tool':11s} {'load':>5s} {'import s':>8s} {'1st-use imports s':>17s} "
        f"{'first fit s':>11s} {'cpu s':>7s} {'next fit s':>10s} {'logLik':>15s} {'peak MB':>8s}"
    )
    print(header)
    print("-" * len(header))
    for name, tool, load, res in rows:
        if "error" in res:
            print(f"{name:14s} {tool:11s} {load:5.1f} {res['error']}")
            continue
        print(
            f"{name:14s} {tool:11s} {load:5.1f} {fmt(res.get('import_s'), '8.3f')} "
            f"{fmt(res.get('first_use_imports_s'), '17.3f')} "
            f"{fmt(res.get('first_fit_s'), '11.4f')} {fmt(res.get('cpu_s'), '7.3f')} "
            f"{fmt(res.get('next_fit_s'), '10.4f')} {fmt(res.get('loglik'), '15.6f')} "
            f"{fmt(res.get('peak_rss_mb'), '8.0f')}"
        )


if __name__ == "__main__":
    main()
