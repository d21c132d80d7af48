"""Fit one benchmark case with bayesmlm in a fresh process and print one line of JSON.

Run by ``benchmarks/run.py``; also usable alone::

    python benchmarks/bayesmlm_worker.py --data sleep.csv --formula "Reaction ~ Days + (Days | Subject)"

``wall_s`` counts from the first line of this script, so it includes importing PyMC and compiling.
With ``--reml`` it fits by REML instead and reports the time of building the model and fitting.
"""

import time

START = time.perf_counter()

import argparse  # noqa: E402
import json  # noqa: E402
import resource  # noqa: E402
import sys  # noqa: E402
import warnings  # noqa: E402

import pandas as pd  # noqa: E402

import bayesmlm as bm  # noqa: E402


def peak_rss_mb() -> float:
    """Peak resident memory of this process and of its children (chains), in MB."""
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return max(own, children) / 1024


def cpu_seconds() -> float:
    """User + system CPU time of this process and its finished children (the chain workers)."""
    import resource

    own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", required=True)
    parser.add_argument("--formula", required=True)
    parser.add_argument("--group", required=True, help="categorical column(s), comma-separated")
    parser.add_argument("--family", default="gaussian")
    parser.add_argument("--sampler", default=None)  # None: the default ("auto")
    parser.add_argument("--method", default="auto")
    parser.add_argument("--draws", type=int, default=1000)
    parser.add_argument("--tune", type=int, default=1000)
    parser.add_argument("--chains", type=int, default=4)
    parser.add_argument("--cores", type=int, default=2)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--reml", action="store_true")
    args = parser.parse_args()
    data = pd.read_csv(args.data)
    groups = args.group.split(",")
    for g in groups:
        data[g] = data[g].astype(str).astype("category")
    out = {"tool": "bayesmlm", "n_rows": len(data), "n_groups": int(data[groups[0]].nunique())}
    fit_start = time.perf_counter()
    if args.reml:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fit = bm.Model(args.formula, data).fit_reml()
        out.update(
            mode="REML",
            reml_s=round(time.perf_counter() - fit_start, 3),
            loglik=fit.loglik,
            converged=bool(fit.converged),
        )
    else:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fit = bm.Model(args.formula, data, family=args.family).fit(
                draws=args.draws,
                tune=args.tune,
                chains=args.chains,
                cores=args.cores,
                seed=args.seed,
                sampler=None if args.sampler in (None, "auto") else args.sampler,
                method=args.method,
                progressbar=False,
            )
        summary = fit.summary()
        out.update(
            mode="NUTS",
            sampler=fit.info["sampler"],
            method=fit.info["method"],
            fit_s=round(time.perf_counter() - fit_start, 3),
            group_effects_s=fit.info.get("group_effects_seconds"),
            min_ess_bulk=round(float(summary["ess_bulk"].min()), 1),
            max_rhat=round(float(summary["rhat"].max()), 4),
            divergences=int(fit.idata["sample_stats"]["diverging"].sum()),
            population_vars=list(summary.index),
            draws=args.draws,
            chains=args.chains,
        )
    out["wall_s"] = round(time.perf_counter() - START, 3)
    out["cpu_s"] = round(cpu_seconds(), 2)
    if "min_ess_bulk" in out:
        out["ess_per_s"] = round(out["min_ess_bulk"] / out["wall_s"], 2)
    out["peak_rss_mb"] = round(peak_rss_mb(), 1)
    sys.stdout.write(json.dumps(out) + "\n")


if __name__ == "__main__":
    main()
