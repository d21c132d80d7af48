"""Calibration: 90% posterior intervals cover the true parameters at the nominal rate.

20 data sets of ``y ~ x + (x | g)`` (25 groups x 8 rows) are drawn from known parameters and fitted
with the default priors. Over the 20 x 6 intervals (two fixed effects, two sds, the correlation and
sigma) the coverage must lie inside the central 99% range of a Binomial(120, 0.9) count, and each
parameter's coverage inside that of a Binomial(20, 0.9) count. The longer version with more data sets
is ``benchmarks/calibration.py``.
"""

import numpy as np
import pytest
from scipy import stats

import bayesmlm as bm
from bayesmlm.datasets.simulate import TRUTH_BY_NAME, simulate

N_DATASETS = 20
PARAMS = TRUTH_BY_NAME


def coverage(n_datasets: int, n_groups: int = 25, n_per_group: int = 8, first_seed: int = 100):
    """Counts of 90% intervals covering the truth, per parameter."""
    hits = dict.fromkeys(PARAMS, 0)
    for k in range(n_datasets):
        data = simulate(n_groups, n_per_group, seed=first_seed + k)
        fit = bm.Model("y ~ x + (x | g)", data).fit(
            draws=500, tune=500, chains=2, seed=k, progressbar=False, log_likelihood=False
        )
        draws = fit.parameter_draws()
        for name, truth in PARAMS.items():
            low, high = np.quantile(draws[name], [0.05, 0.95])
            hits[name] += int(low <= truth <= high)
    return hits


@pytest.mark.slow
def test_ninety_percent_intervals_cover_the_truth():
    hits = coverage(N_DATASETS)
    total = sum(hits.values())
    n = N_DATASETS * len(PARAMS)
    low, high = stats.binom.ppf([0.005, 0.995], n, 0.9)
    print(f"coverage {total}/{n}; per parameter {hits}")
    assert low <= total <= high
    per_low = stats.binom.ppf(0.005, N_DATASETS, 0.9)
    for name, count in hits.items():
        assert count >= per_low, (name, count)
