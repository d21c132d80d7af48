"""bayesmlm against bambi (and REML against lme4) on three cases; prints one table.

Usage (from the repository root, with the package's venv)::

    bash benchmarks/setup_bambi.sh            # once: bambi in its own venv (it pins formulae < 0.7)
    .venv/bin/python benchmarks/run.py [--cases sleepstudy sim1000 sim10000] [--bambi-timeout 900]

Cases: (a) sleepstudy ``Reaction ~ Days + (Days | Subject)``; (b) ``y ~ x + (x | g)`` simulated on
1,000 groups x 100 rows and (c) on 10,000 x 100 (1M rows), by :func:`bayesmlm.datasets.simulate.simulate` with
seed 2026; (c2) InstEval ``y ~ service + (1 | s) + (1 | d) + (1 | dept)`` (``--cases insteval``;
bambi only with ``--bambi-all``); (f) ``subjects_items``, ``y ~ x + (1 + x | subj) + (1 + x | item)`` on
60 subjects x 40 items fully crossed (2,400 rows, ``reml_speed.subjects_items``, seed 2026; bambi's
default fits no correlations); (d) cbpp, binomial ``cbind(incidence, size - incidence) ~ period +
(1 | herd)`` (bambi: ``p(incidence, size) ~ ...``) and (e) grouseticks, Poisson
``TICKS ~ YEAR + cHEIGHT + (1 | BROOD) + (1 | LOCATION)`` (``--cases cbpp grouseticks``). Every fit runs in a
fresh process (``bayesmlm_worker.py``, ``bambi_worker.py`` under ``benchmarks/.venv-bambi``, ``Rscript``
for lme4 if installed), one tool after the other within each case, so both see the same machine state. Wall
time counts from the start of the process: imports,
compilation, sampling and diagnostics. NUTS: 4 chains x 1,000 draws after 1,000 tuning steps, 2 cores,
each tool's default sampler; ``--methods auto full`` adds a row per bayesmlm ``method=``. Minimum
bulk ESS is over the fixed effects, group-level sds and
correlations (bambi has none) and sigma; ESS/s is that minimum over the wall time.

``--reml-speed`` then runs ``benchmarks/reml_speed.py`` (REML beside statsmodels and lme4: the first
sleepstudy fit, 60 x 40 subjects x items, InstEval), which prints its own table; ``--reml-speed-only``
runs it alone.
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import bayesmlm as bm
from bayesmlm.datasets.simulate import simulate

HERE = Path(__file__).resolve().parent
BAMBI_PY = HERE / ".venv-bambi" / "bin" / "python"
CASES = {
    "sleepstudy": ("Reaction ~ Days + (Days | Subject)", "Subject", None),
    "sim1000": ("y ~ x + (x | g)", "g", 1000),
    "sim10000": ("y ~ x + (x | g)", "g", 10000),
    # InstEval, 73,421 rows, 2,972 students x 1,128 lecturers crossed, lecturers in 14 departments
    "insteval": ("y ~ service + (1 | s) + (1 | d) + (1 | dept)", "s,d,dept", "InstEval"),
    # 60 subjects x 40 items fully crossed (2,400 rows), benchmarks/reml_speed.py's subjects_items(); bambi
    # is given the same formula and, as its defaults have it, fits no correlations
    "subjects_items": ("y ~ x + (1 + x | subj) + (1 + x | item)", "subj,item", "crossed"),
}
#: cases bambi is not run on unless --bambi-all (InstEval: 4,114 sampled effects over 73k rows)
SLOW_FOR_BAMBI = {"insteval"}
#: generalized cases: (bayesmlm formula, bambi formula, categorical columns, family); bundled data
GLMM_CASES = {
    "cbpp": (
        "cbind(incidence, size - incidence) ~ period + (1 | herd)",
        "p(incidence, size) ~ period + (1 | herd)",
        "herd,period",
        "binomial",
    ),
    "grouseticks": (
        "TICKS ~ YEAR + cHEIGHT + (1 | BROOD) + (1 | LOCATION)",
        "TICKS ~ YEAR + cHEIGHT + (1 | BROOD) + (1 | LOCATION)",
        "BROOD,LOCATION,YEAR",
        "poisson",
    ),
}
LME4 = """
suppressMessages(library(lme4))
d <- read.csv("{data}")
for (g in strsplit("{group}", ",")[[1]]) d[[g]] <- factor(d[[g]])
t <- system.time(m <- lmer({formula}, d, REML = TRUE))[["elapsed"]]
cat(sprintf('{{"tool": "lme4", "mode": "REML", "reml_s": %.3f, "loglik": %.6f}}\\n', t, logLik(m)))
"""


def run_json(cmd: list[str], timeout: float) -> dict:
    """Run a worker; return its JSON line, or a record of how it failed."""
    start = time.perf_counter()
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout:.0f} s"}
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    if proc.returncode != 0 or not lines:
        tail = proc.stderr.strip().splitlines()[-3:]
        return {
            "error": f"exit {proc.returncode} after {time.perf_counter() - start:.0f} s: {' | '.join(tail)}"
        }
    out = json.loads(lines[-1])
    if "min_ess_bulk" in out:
        out["ess_per_s"] = round(out["min_ess_bulk"] / out["wall_s"], 2)
    return out


def case_data(name: str, folder: Path) -> Path:
    if name in GLMM_CASES:
        path = folder / f"{name}.csv"
        bm.load_dataset(name).to_csv(path, index=False)
        return path
    groups = CASES[name][2]
    if groups == "crossed":
        from reml_speed import subjects_items  # benchmarks/ is on sys.path when this runs as a script

        path = folder / f"{name}.csv"
        subjects_items().to_csv(path, index=False)
        return path
    if isinstance(groups, str):  # a bundled data set
        path = folder / f"{name}.csv"
        bm.load_dataset(groups).to_csv(path, index=False)
    elif groups is None:
        path = Path(bm.__file__).parent / "datasets" / "sleepstudy.csv"
    else:
        path = folder / f"{name}.csv"
        simulate(groups, 100, seed=2026).to_csv(path, index=False)
    return path


def fmt(value, spec: str) -> str:
    """Format a number, or a right-aligned dash of the same width when it is missing."""
    width = int(spec.split(".")[0].rstrip("d") or 0)
    return "-".rjust(width) if value is None else format(value, spec)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--cases", nargs="+", default=list(CASES), choices=[*CASES, *GLMM_CASES])
    parser.add_argument("--bambi-timeout", type=float, default=900)
    parser.add_argument("--bambi-sampler", default="default")
    parser.add_argument("--bambi-all", action="store_true", help="run bambi on InstEval too")
    parser.add_argument("--sampler", default="auto", help="bayesmlm's sampler (auto: its default)")
    parser.add_argument(
        "--methods",
        nargs="+",
        default=["auto"],
        help="bayesmlm's method= values, each a row (auto: the default)",
    )
    parser.add_argument("--reml-speed", action="store_true", help="also run benchmarks/reml_speed.py")
    parser.add_argument("--reml-speed-only", action="store_true", help="run benchmarks/reml_speed.py alone")
    args = parser.parse_args()
    if args.reml_speed_only:
        subprocess.run([sys.executable, str(HERE / "reml_speed.py")], check=False)
        return
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.cases:
            if name in GLMM_CASES:
                formula, bambi_formula, group, family = GLMM_CASES[name]
            else:
                (formula, group, _), family = CASES[name], "gaussian"
                bambi_formula = formula
            data = case_data(name, Path(tmp))
            common = ["--data", str(data), "--group", group, "--family", family]
            worker = [sys.executable, str(HERE / "bayesmlm_worker.py"), *common, "--formula", formula]
            results = {}
            for method in args.methods:
                tool = "bayesmlm" if method == "auto" else f"bayesmlm {method}"
                results[tool] = run_json([*worker, "--sampler", args.sampler, "--method", method], 1800)
            if name in SLOW_FOR_BAMBI and not args.bambi_all:
                results["bambi"] = {"error": "not run on this case (--bambi-all runs it)"}
            elif BAMBI_PY.exists():
                cmd = [str(BAMBI_PY), str(HERE / "bambi_worker.py"), *common, "--formula", bambi_formula]
                cmd += ["--sampler", args.bambi_sampler]
                results["bambi"] = run_json(cmd, args.bambi_timeout)
            else:
                results["bambi"] = {"error": "benchmarks/.venv-bambi missing: run benchmarks/setup_bambi.sh"}
            if family == "gaussian":
                results["bayesmlm REML"] = run_json([*worker, "--reml"], 600)
            if shutil.which("Rscript") and family == "gaussian":
                script = LME4.format(data=data, group=group, formula=formula)
                results["lme4 REML"] = run_json(["Rscript", "-e", script], 600)
            for tool, res in results.items():
                rows.append((name, tool, res))
                print(f"{name:10s} {tool:14s} {json.dumps(res)}", file=sys.stderr, flush=True)

    print(
        f"\nmachine: {platform.platform()}, {platform.processor() or platform.machine()}, "
        f"{__import__('os').cpu_count()} cores; bayesmlm {bm.__version__}"
    )
    header = f"{'case':10s} {'tool':14s} {'wall s':>8s} {'min ESS':>8s} {'ESS/s':>8s} {'R-hat':>7s} "
    header += f"{'div':>4s} {'peak MB':>8s} {'REML s':>7s} {'CPU s':>7s}"
    print(header)
    print("-" * len(header))
    for name, tool, res in rows:
        if "error" in res:
            print(f"{name:10s} {tool:14s} {res['error']}")
            continue
        print(
            f"{name:10s} {tool:14s} {fmt(res.get('wall_s'), '8.1f')} {fmt(res.get('min_ess_bulk'), '8.0f')} "
            f"{fmt(res.get('ess_per_s'), '8.1f')} {fmt(res.get('max_rhat'), '7.3f')} "
            f"{fmt(res.get('divergences'), '4d')} {fmt(res.get('peak_rss_mb'), '8.0f')} "
            f"{fmt(res.get('reml_s'), '7.2f')} {fmt(res.get('cpu_s'), '7.1f')}"
        )
    print()
    for name in args.cases:
        res = {tool: r for n, tool, r in rows if n == name}
        ours, theirs = res.get("bayesmlm", {}), res.get("bambi", {})
        if "wall_s" in ours and "wall_s" in theirs:
            print(
                f"{name}: bayesmlm/bambi wall time {ours['wall_s'] / theirs['wall_s']:.2f}; "
                f"ESS/s ratio {ours['ess_per_s'] / theirs['ess_per_s']:.3g}x"
            )
    if args.reml_speed:
        sys.stdout.flush()
        subprocess.run([sys.executable, str(HERE / "reml_speed.py")], check=False)


if __name__ == "__main__":
    main()
