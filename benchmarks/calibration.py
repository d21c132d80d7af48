"""Longer calibration run: coverage of 50%, 80%, 90% and 95% intervals over many simulated data sets.

Usage: ``python benchmarks/calibration.py [--datasets 100]``. Prints per-parameter coverage and the
binomial 99% range expected for each nominal level.
"""

import argparse

import numpy as np
from scipy import stats

import bayesmlm as bm
from bayesmlm.datasets.simulate import TRUTH_BY_NAME, simulate

PARAMS = TRUTH_BY_NAME
LEVELS = (0.5, 0.8, 0.9, 0.95)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--datasets", type=int, default=100)
    parser.add_argument("--groups", type=int, default=25)
    parser.add_argument("--rows", type=int, default=8)
    args = parser.parse_args()
    hits = {(p, lev): 0 for p in PARAMS for lev in LEVELS}
    for k in range(args.datasets):
        data = simulate(args.groups, args.rows, seed=10_000 + k)
        fit = bm.Model("y ~ x + (x | g)", data).fit(seed=k, progressbar=False, log_likelihood=False)
        draws = fit.parameter_draws()
        for p, truth in PARAMS.items():
            for lev in LEVELS:
                low, high = np.quantile(draws[p], [(1 - lev) / 2, (1 + lev) / 2])
                hits[(p, lev)] += int(low <= truth <= high)
    n = args.datasets
    print(f"{n} data sets of {args.groups} groups x {args.rows} rows")
    for lev in LEVELS:
        lo, hi = stats.binom.ppf([0.005, 0.995], n, lev) / n
        cells = ", ".join(f"{p} {hits[(p, lev)] / n:.2f}" for p in PARAMS)
        print(f"{lev:.0%} intervals (99% range {lo:.2f}-{hi:.2f}): {cells}")


if __name__ == "__main__":
    main()
