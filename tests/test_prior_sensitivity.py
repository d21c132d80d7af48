"""The prior's part in a Bayesian fit: power-scaling sensitivity, prior predictive, R², plots, report."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest

import bayesmlm as bm

SLEEP = "Reaction ~ Days + (Days | Subject)"
SETTINGS = {"draws": 300, "tune": 300, "chains": 2, "seed": 11, "progressbar": False}


@pytest.fixture(scope="module")
def default_fit() -> bm.Fit:
    return bm.Model(SLEEP, bm.load_dataset("sleepstudy")).fit(**SETTINGS)


@pytest.fixture(scope="module")
def conflicting_fit() -> bm.Fit:
    # the data say about +10.5 ms per day (REML se 1.5); this prior insists on -5 ± 2
    priors = {"Days": bm.Normal(-5.0, 2.0)}
    # 2 x 1,000 draws: at 2 x 300 the sensitivity of sigma, which the Days prior leaves alone, is
    # estimated anywhere from 0.036 to 0.096 across seeds (flagged above 0.05); at 1,000, 0.021-0.027
    settings = {**SETTINGS, "draws": 1000, "tune": 1000}
    return bm.Model(SLEEP, bm.load_dataset("sleepstudy"), priors=priors).fit(**settings)


def test_the_default_priors_raise_no_flag(default_fit):
    result = default_fit.prior_sensitivity()
    assert list(result.summary.index) == list(default_fit.summary().index)
    assert result.flagged.empty, result.summary
    assert (result.summary["prior"] < 0.05).all()
    # the likelihood, not the prior, drives every parameter's posterior
    assert (result.summary["likelihood"] > 0.05).all()
    assert (result.summary["likelihood"] > 2 * result.summary["prior"]).all()
    assert "no prior-data conflict" in repr(result)


def test_a_conflicting_prior_is_flagged_on_its_parameter(conflicting_fit):
    result = conflicting_fit.prior_sensitivity()
    assert result.summary.loc["Days", "diagnosis"] == "prior-data conflict"
    assert result.summary.loc["Days", "prior"] > 0.1 and result.summary.loc["Days", "likelihood"] > 0.05
    # power-scaling scales every prior at once: what the Days prior does to the subjects' own slopes shows too
    assert "Days" in result.flagged.index and "sigma" not in result.flagged.index
    # the importance weights at the diagnostic's small perturbations are reliable
    _, khat = result.weights("prior", 0.99)
    assert khat < result.khat_threshold
    with pytest.raises(ValueError, match="'prior' or 'likelihood'"):
        result.weights("posterior", 0.9)


def test_the_log_prior_uses_the_models_priors(conflicting_fit):
    from bayesmlm.bayes.sensitivity import log_prior_draws

    base = log_prior_draws(conflicting_fit, conflicting_fit.model.prior_set)
    days = conflicting_fit.parameter_draws()["Days"].reshape(-1)
    wider = conflicting_fit.model.prior_set
    changed = bm.Model(SLEEP, bm.load_dataset("sleepstudy"), priors={"Days": bm.Normal(-5.0, 4.0)}).prior_set
    diff = log_prior_draws(conflicting_fit, changed) - base
    # only the Days term differs: log N(d; -5, 4) - log N(d; -5, 2)
    expected = -np.log(2.0) - (days + 5) ** 2 / 32 + (days + 5) ** 2 / 8
    np.testing.assert_allclose(diff, expected, rtol=1e-10)
    assert wider is conflicting_fit.model.prior_set


def test_prior_predictive_draws_and_plot(default_fit):
    y = default_fit.prior_predictive(draws=50, seed=3)
    assert y.sizes["draw"] == 50 and y.sizes[y.dims[-1]] == default_fit.design.n
    assert "prior_predictive" in default_fit.idata.children
    fig = bm.plot_prior_predictive(default_fit, n_draws=10, draws=50, seed=3)
    assert len(fig.axes[0].lines) == 11
    plt.close(fig)
    with pytest.raises(TypeError, match="Bayesian Fit"):
        bm.plot_prior_predictive(bm.Model(SLEEP, bm.load_dataset("sleepstudy")).fit_reml())


def test_bayesian_r2_covers_the_reml_point(default_fit):
    r2 = default_fit.r2()
    reml = bm.Model(SLEEP, bm.load_dataset("sleepstudy")).fit_reml().r2()
    for part in ("marginal", "conditional"):
        low, high = r2.summary.loc[part, ["low", "high"]]
        assert low < reml[part] < high
    assert len(r2.draws) == 600 and r2.method == "posterior"
    assert bm.r2(default_fit)["marginal"] == r2["marginal"]


def test_sensitivity_and_conditional_effect_plots(default_fit):
    fig = bm.plot_prior_sensitivity(default_fit, params=["Days", "sigma"])
    assert len(fig.axes) == 4 and fig.axes[1].get_title().startswith("Days, likelihood")
    plt.close(fig)
    fig = bm.plot_conditional_effects(default_fit, "Days", groups=True)
    assert len(fig.axes[0].lines) == 19  # 18 subjects and the population line
    table = bm.conditional_effects(default_fit, "Days", n_points=5)
    assert (table["low"] < table["estimate"]).all() and (table["estimate"] < table["high"]).all()
    plt.close(fig)
    with pytest.raises(ValueError, match="unknown parameter"):
        bm.plot_prior_sensitivity(default_fit, params=["Dayz"])


def test_report_sets_bayes_beside_reml(default_fit):
    reml = bm.Model(SLEEP, bm.load_dataset("sleepstudy")).fit_reml()
    text = bm.report({"REML": reml, "Bayes": default_fit}, ci="wald").text
    header = text.splitlines()[0]
    assert "REML: estimate" in header and "Bayes: posterior median" in header and "Bayes: R-hat" in header
    assert "| `sigma` |" in text and "2 chains × 300 draws" in text


def test_compare_estimates_and_plot_compare_share_one_bootstrap(default_fit, monkeypatch):
    import bayesmlm.reml.bootstrap as boot

    reml = bm.Model(SLEEP, bm.load_dataset("sleepstudy")).fit_reml()
    table = bm.compare_estimates(default_fit, reml, n_boot=8, seed=5)
    assert table.loc["sigma", "reml_interval"].startswith("parametric bootstrap (8)")

    def no_refit(*args, **kwargs):
        raise AssertionError("refitted although the replicates are kept with the fit")

    monkeypatch.setattr(boot, "_run", no_refit)
    again = bm.compare_estimates(default_fit, reml, n_boot=8, seed=5)
    pd.testing.assert_frame_equal(again, table)
    fig = bm.plot_compare(default_fit, reml, n_boot=8, seed=5)
    plt.close(fig)
    assert reml.icc(n_boot=8, seed=5).draws.shape[0] == 8
    fewer = bm.compare_estimates(default_fit, reml, n_boot=4, seed=5)  # the first 4 of the same refits
    assert fewer.loc["sigma", "reml_interval"].startswith("parametric bootstrap (4)")
