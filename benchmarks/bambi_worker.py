"""Fit one bambi model and print one JSON line of figures: the bambi side of the comparison.

Runs under benchmarks/.venv-bambi (made by benchmarks/setup_bambi.sh), never the package's venv:
bambi 0.21 pins formulae < 0.7, bayesmlm needs formulae 0.9. Run it in a fresh process per case:

    benchmarks/.venv-bambi/bin/python benchmarks/bambi_worker.py --data FILE.csv \
        --formula "y ~ x + (x | g)" --group g [--sampler default|nutpie] \
        [--draws 1000 --tune 1000 --chains 4 --cores 2 --seed 1]

bambi's default priors are used. stdout carries only the JSON line; everything else (warnings,
progress, PyMC's logging, output of the chain subprocesses) goes to stderr.

JSON keys: tool, sampler, wall_s (from the top of this script: imports, model building,
compilation, sampling and diagnostics), sample_s (model.fit only), min_ess_bulk / max_rhat over the
population-level parameters (fixed effects, group-level sds, sigma; bambi >= 0.10 has no
group-level correlations, so `cor_present` is false and `population_vars` lists what was used),
divergences, peak_rss_mb (max of self and children), peak_rss_self_mb, peak_rss_children_mb,
versions, and the run settings.
"""

import time

_T0 = time.perf_counter()

import os  # noqa: E402
import sys  # noqa: E402

# Send everything written to file descriptor 1 (Python, C extensions, and the chain subprocesses
# that inherit it) to stderr; keep the real stdout for the single JSON line.
_JSON_OUT = os.fdopen(os.dup(1), "w")
sys.stdout.flush()
os.dup2(2, 1)
sys.stdout = sys.stderr

import argparse  # noqa: E402
import json  # noqa: E402
import resource  # noqa: E402
from importlib import metadata  # noqa: E402


def _version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def _population_vars(model, posterior) -> list[str]:
    """Posterior variables that are population-level: not offsets, group effects or the mean."""
    excluded = set()
    # bambi 0.21 renamed distributional_components -> conditional_parameters (old name warns)
    components = getattr(model, "conditional_parameters", None)
    if components is None:
        components = model.distributional_components
    for component in components.values():
        excluded.update(component.group_specific_terms)
    excluded.add(model.family.likelihood.parent)  # e.g. "mu" (only present if requested)
    return [name for name in posterior.data_vars if not name.endswith("_offset") and name not in excluded]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", required=True, help="CSV file")
    parser.add_argument("--formula", required=True)
    parser.add_argument("--group", required=True, help="categorical column(s), comma-separated")
    parser.add_argument("--family", default="gaussian")
    parser.add_argument("--sampler", choices=["default", "nutpie"], default="default")
    parser.add_argument("--draws", type=int, default=1000)
    parser.add_argument("--tune", type=int, default=1000)
    parser.add_argument("--chains", type=int, default=4)
    parser.add_argument("--cores", type=int, default=2)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--progressbar", action="store_true", help="show the sampler's progress")
    args = parser.parse_args()

    import arviz as az
    import bambi as bmb
    import numpy as np
    import pandas as pd

    data = pd.read_csv(args.data)
    groups = args.group.split(",")
    for g in groups:
        data[g] = data[g].astype(str).astype("category")

    model = bmb.Model(args.formula, data, family=args.family)
    fit_kwargs = dict(
        draws=args.draws,
        tune=args.tune,
        chains=args.chains,
        cores=args.cores,
        random_seed=args.seed,
        progressbar=args.progressbar,
    )
    if args.sampler == "nutpie":
        fit_kwargs["inference_method"] = "nutpie"  # bambi 0.21: passed to pm.sample(nuts_sampler=)

    start = time.perf_counter()
    idata = model.fit(**fit_kwargs)
    sample_s = time.perf_counter() - start

    posterior = idata["posterior"]
    if not hasattr(posterior, "data_vars"):  # DataTree node (arviz >= 1) -> Dataset
        posterior = posterior.to_dataset()
    names = _population_vars(model, posterior)
    cor_names = [n for n in posterior.data_vars if "cor" in n.lower() or "corr" in n.lower()]

    ess = az.ess(idata, var_names=names, method="bulk")
    rhat = az.rhat(idata, var_names=names)
    if hasattr(ess, "to_dataset"):
        ess, rhat = ess.to_dataset(), rhat.to_dataset()
    ess_by_var = {n: float(np.min(ess[n].values)) for n in names}
    rhat_by_var = {n: float(np.max(rhat[n].values)) for n in names}

    stats = idata["sample_stats"]
    divergences = int(stats["diverging"].values.sum())

    CPU = ("ru_utime", "ru_stime")
    who = (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)  # CPU time: this process and the chain workers
    rss_self = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    rss_children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    versions = {
        name: _version(name) for name in ("bambi", "pymc", "pytensor", "arviz", "formulae", "numpy", "nutpie")
    }
    record = {
        "tool": "bambi",
        "sampler": "pymc" if args.sampler == "default" else "nutpie",
        "formula": args.formula,
        "data": os.path.basename(args.data),
        "n_rows": len(data),
        "n_groups": int(data[groups[0]].nunique()),
        "family": args.family,
        "draws": args.draws,
        "tune": args.tune,
        "chains": args.chains,
        "cores": args.cores,
        "seed": args.seed,
        "wall_s": round(time.perf_counter() - _T0, 2),
        "sample_s": round(sample_s, 2),
        "min_ess_bulk": round(min(ess_by_var.values()), 1),
        "max_rhat": round(max(rhat_by_var.values()), 4),
        "ess_bulk": {n: round(v, 1) for n, v in ess_by_var.items()},
        "rhat": {n: round(v, 4) for n, v in rhat_by_var.items()},
        "population_vars": names,
        "cor_present": bool(cor_names),
        "divergences": divergences,
        "peak_rss_mb": round(max(rss_self, rss_children), 1),
        "cpu_s": round(sum(getattr(resource.getrusage(w), a) for w in who for a in CPU), 2),
        "peak_rss_self_mb": round(rss_self, 1),
        "peak_rss_children_mb": round(rss_children, 1),
        "versions": versions,
    }
    _JSON_OUT.write(json.dumps(record) + "\n")
    _JSON_OUT.flush()


if __name__ == "__main__":
    main()
