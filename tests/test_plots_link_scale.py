"""The shrinkage plot of a GLMM fit: every estimate on the link scale (logit, log), as the axis says.

The no-pooling estimates are checked against a direct root-finding of each group's own corrected
likelihood equation and against their closed forms (the empirical logit with 0.5 added, ``log(mean +
0.5)``); the complete pooling against statsmodels' GLM run on the same data.
"""

from __future__ import annotations

import warnings
from functools import cache

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from scipy.optimize import brentq
from scipy.special import expit

import bayesmlm as bm
from bayesmlm.plots import complete_pooling_coefficients, no_pooling_coefficients, plot_shrinkage

CBPP = "cbind(incidence, size - incidence) ~ period + (1 | herd)"


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


@cache
def cbpp_ml():
    return bm.Model(CBPP, bm.load_dataset("cbpp"), family="binomial").fit_ml()


def plotted(fig) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """The 1-D shrinkage plot's no-pooling and partial-pooling x values and the level of each row."""
    ax = fig.axes[0]
    own, pooled = (c.get_offsets()[:, 0].astype(float) for c in ax.collections[:2])
    return own, pooled, [t.get_text() for t in ax.get_yticklabels()]


def test_cbpp_shrinkage_is_on_the_logit_scale():
    fit = cbpp_ml()
    fig = plot_shrinkage(fit)
    ax = fig.axes[0]
    assert ax.get_xlabel() == "Intercept (coefficient per herd, logit scale)"
    own, pooled, levels = plotted(fig)
    # the model's herd intercepts on the link scale (probabilities would lie in (0, 1); these are < 0)
    link = fit.coefficients("herd")["Intercept"]
    np.testing.assert_allclose(pooled, link.loc[levels].to_numpy(), rtol=1e-12)
    assert (pooled < 0).all()
    np.testing.assert_allclose(own, no_pooling_coefficients(fit)["Intercept"].loc[levels], rtol=1e-12)
    lines = [line.get_xdata()[0] for line in ax.lines]
    assert lines[0] == pytest.approx(fit.fixed_estimates()["Intercept"], rel=1e-12)
    assert lines[1] == pytest.approx(complete_pooling_coefficients(fit)["Intercept"], rel=1e-12)
    assert "complete pooling (GLM, all data)" in [t.get_text() for t in ax.get_legend().get_texts()]


def test_cbpp_no_pooling_solves_each_herds_corrected_likelihood_equation():
    fit = cbpp_ml()
    data = bm.load_dataset("cbpp")
    beta = fit.fixed_estimates()
    own = no_pooling_coefficients(fit)["Intercept"]
    for herd, rows in data.groupby("herd", observed=True):
        period = rows["period"].astype(str).to_numpy()
        other = np.array([0.0 if p == "1" else beta[f"period[{p}]"] for p in period])
        s, n = rows["incidence"].to_numpy(float), rows["size"].to_numpy(float)

        def score(a, s=s, n=n, other=other):  # d/da of sum (s+.5) log p + (n-s+.5) log(1-p)
            return np.sum((s + 0.5) - (n + 1) * expit(other + a))

        assert own.loc[str(herd)] == pytest.approx(brentq(score, -10, 10, xtol=1e-13), abs=1e-8)


def test_complete_pooling_of_cbpp_is_statsmodels_glm():
    sm = pytest.importorskip("statsmodels.api")
    data = bm.load_dataset("cbpp")
    X = pd.get_dummies(data["period"].astype(str), drop_first=True, dtype=float)
    X.insert(0, "const", 1.0)
    endog = np.column_stack([data["incidence"], data["size"] - data["incidence"]])
    ref = sm.GLM(endog, X, family=sm.families.Binomial()).fit().params.to_numpy()
    np.testing.assert_allclose(complete_pooling_coefficients(cbpp_ml()).to_numpy(), ref, rtol=1e-8)


def test_one_row_per_group_gives_the_empirical_logit_with_half_added():
    s = np.array([0, 3, 10, 7, 1, 5, 9, 2])
    n = np.array([10, 10, 10, 12, 8, 15, 9, 6])  # group 0 has no success, group 6 only successes
    d = pd.DataFrame({"s": s, "f": n - s, "g": [f"g{i}" for i in range(len(s))]})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = bm.Model("cbind(s, f) ~ 1 + (1 | g)", d, family="binomial").fit_ml()
    own = no_pooling_coefficients(fit)["Intercept"].to_numpy()
    np.testing.assert_allclose(own, np.log((s + 0.5) / (n - s + 0.5)), rtol=1e-9)
    assert np.isfinite(own).all()


def test_poisson_no_pooling_is_log_of_mean_plus_half_and_the_axis_says_log():
    rng = np.random.default_rng(7)
    groups = np.repeat(np.arange(12), 6)
    y = rng.poisson(np.exp(0.8 + rng.normal(0, 0.7, 12))[groups])
    y[groups == 0] = 0  # an all-zero group: log(0.5), not -inf
    d = pd.DataFrame({"y": y, "g": [f"g{k:02d}" for k in groups]})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = bm.Model("y ~ 1 + (1 | g)", d, family="poisson").fit_ml()
    own = no_pooling_coefficients(fit)["Intercept"]
    means = d.groupby("g")["y"].mean()
    np.testing.assert_allclose(own.loc[means.index], np.log(means + 0.5), rtol=1e-9)
    assert own.loc["g00"] == pytest.approx(np.log(0.5))
    fig = plot_shrinkage(fit)
    assert fig.axes[0].get_xlabel() == "Intercept (coefficient per g, log scale)"
    _, pooled, levels = plotted(fig)
    np.testing.assert_allclose(pooled, fit.coefficients("g")["Intercept"].loc[levels], rtol=1e-12)
    # complete pooling: the Poisson GLM's intercept is the log of the overall mean
    assert complete_pooling_coefficients(fit)["Intercept"] == pytest.approx(np.log(y.mean()), rel=1e-9)


@pytest.mark.slow
def test_bayesian_cbpp_shrinkage_plots_posterior_means_on_the_logit_scale():
    model = bm.Model(CBPP, bm.load_dataset("cbpp"), family="binomial")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", bm.SamplingWarning)
        fit = model.fit(draws=100, tune=100, chains=2, cores=1, seed=3, progressbar=False)
    fig = plot_shrinkage(fit)
    assert fig.axes[0].get_xlabel() == "Intercept (coefficient per herd, logit scale)"
    own, pooled, levels = plotted(fig)
    np.testing.assert_allclose(pooled, fit.coefficients("herd")["Intercept"].loc[levels], rtol=1e-12)
    assert (pooled < 0).all()  # logits of infection probabilities near 0.1-0.3
    beta = fit.fixed_estimates()  # posterior means hold the period effects: the no pooling uses them
    assert np.isfinite(own).all() and beta["Intercept"] < 0
