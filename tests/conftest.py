"""Shared fixtures: each reference model is fitted once per test session."""

import warnings
from functools import cache

import pytest

import bayesmlm as bm
from bayesmlm.exceptions import SingularFitWarning
from tests.lme4_reference import LME4


@cache
def reference_fit(model_id: str, method: str) -> bm.LikelihoodFit:
    """REML or ML fit of one of the lme4 reference models (cached)."""
    entry = LME4[model_id]
    model = bm.Model(entry["formula"], bm.load_dataset(entry["data"]))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SingularFitWarning)
        return model.fit_reml() if method == "REML" else model.fit_ml()


@pytest.fixture(scope="session")
def sleepstudy():
    return bm.load_dataset("sleepstudy")


@cache
def bayes_fit(
    model_id: str, draws: int = 1000, chains: int = 4, seed: int = 2026, method: str = "auto"
) -> bm.Fit:
    """Bayesian fit (default priors, NUTS) of one of the lme4 reference models (cached)."""
    entry = LME4[model_id]
    model = bm.Model(entry["formula"], bm.load_dataset(entry["data"]))
    return model.fit(draws=draws, tune=draws, chains=chains, seed=seed, progressbar=False, method=method)
