"""What the small-sample inference of a REML fit costs (issue 17); prints one table.

Usage (from the repository root, with the package's venv)::

    .venv/bin/python benchmarks/small_sample.py [--n-boot 200] [--jobs 1 2]

Per step, wall and CPU seconds of this process (the bootstrap's worker processes are counted in wall
time only), each on a fresh fit of sleepstudy ``Reaction ~ Days + (Days | Subject)`` after one warm-up
fit (so the objective is compiled once, as in a session): the Satterthwaite and Kenward-Roger tables,
the profile intervals, the parametric bootstrap with ``n_jobs`` 1 and 2, and what reuses it: a second
``confint("boot")``, the ICC interval, R² and ``compare_estimates`` (against a short Bayesian fit).
"""

from __future__ import annotations

import argparse
import os
import time

import bayesmlm as bm

FORMULA = "Reaction ~ Days + (Days | Subject)"


def timed(label: str, rows: list, fn):
    wall, cpu = time.perf_counter(), time.process_time()
    out = fn()
    rows.append((label, time.perf_counter() - wall, time.process_time() - cpu))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-boot", type=int, default=200)
    parser.add_argument("--jobs", type=int, nargs="+", default=[1, 2])
    args = parser.parse_args()
    data = bm.load_dataset("sleepstudy")
    model = bm.Model(FORMULA, data)
    model.fit_reml().coef_table("kenward-roger")  # warm-up: compile the objective once
    rows: list = []
    fit = timed("fit_reml", rows, model.fit_reml)
    timed("coef_table(satterthwaite)", rows, lambda: fit.coef_table("satterthwaite"))
    timed("coef_table(kenward-roger)", rows, lambda: fit.coef_table("kenward-roger"))
    timed("anova(satterthwaite)", rows, lambda: fit.anova("satterthwaite"))
    timed("confint(profile)", rows, lambda: fit.confint("profile"))
    n = args.n_boot
    for jobs in args.jobs:
        fresh = model.fit_reml()
        run = lambda f=fresh, j=jobs: bm.bootstrap(f, n=n, seed=1, n_jobs=j, progress=False)  # noqa: E731
        timed(f"bootstrap n={n}, n_jobs={jobs}", rows, run)
        fit = fresh
    timed(f"confint(boot) n={n} (kept)", rows, lambda: fit.confint("boot", n_boot=n, seed=1))
    timed(f"icc n_boot={n} (kept)", rows, lambda: fit.icc(n_boot=n, seed=1))
    timed(f"r2 n_boot={n} (kept)", rows, lambda: fit.r2(n_boot=n, seed=1))
    bayes = model.fit(draws=200, tune=200, chains=2, seed=1, progressbar=False)
    compare = lambda: bm.compare_estimates(bayes, fit, n_boot=n, seed=1)  # noqa: E731
    timed(f"compare_estimates n_boot={n} (kept)", rows, compare)
    print(f"sleepstudy {FORMULA}; {os.cpu_count()} cores; load average {os.getloadavg()[0]:.1f}")
    print(f"{'step':<40} {'wall s':>8} {'cpu s':>8}")
    for label, wall, cpu in rows:
        print(f"{label:<40} {wall:8.3f} {cpu:8.3f}")


if __name__ == "__main__":
    main()
