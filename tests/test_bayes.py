"""The Bayesian core: model structure, priors, sampling, summaries, prediction, persistence."""

import numpy as np
import pandas as pd
import pymc as pm
import pytest

import bayesmlm as bm
from tests.conftest import bayes_fit, reference_fit

BRMS_ROWS = [
    "Intercept",
    "Days",
    "sd(Intercept|Subject)",
    "sd(Days|Subject)",
    "cor(Intercept,Days|Subject)",
    "sigma",
]


@pytest.mark.parametrize("model_id", ["sleep_max", "oxboys_max"])
def test_posterior_medians_of_fixed_effects_near_reml(model_id):
    fit = bayes_fit(model_id)
    reml = reference_fit(model_id, "REML").fixed_effects["estimate"]
    draws = fit.parameter_draws()
    for name, estimate in reml.items():
        d = draws[name].reshape(-1)
        assert abs(np.median(d) - estimate) <= 0.15 * d.std(), name
    summary = fit.summary()
    assert (summary["rhat"] <= 1.01).all()
    assert (summary["ess_bulk"] >= 400).all()
    assert int(fit.idata["sample_stats"]["diverging"].sum()) == 0


def test_sleepstudy_summary_rows_named_like_brms_and_correlation_in_posterior():
    fit = bayes_fit("sleep_max")
    summary = fit.summary()
    assert list(summary.index) == BRMS_ROWS
    assert list(summary.columns) == [
        "mean",
        "sd",
        "hdi_low",
        "hdi_high",
        "rhat",
        "ess_bulk",
        "ess_tail",
        "mcse_mean",
    ]
    cor = summary.loc["cor(Intercept,Days|Subject)"]
    assert -1 < cor["hdi_low"] < cor["mean"] < cor["hdi_high"] < 1
    assert "LKJ" in fit.model.priors.loc["cor(Subject)", "prior"]
    # on the variance scale the statsmodels names sit beside the REML ones
    var = fit.summary(scale="var")
    reml = reference_fit("sleep_max", "REML").variance_components
    assert set(reml.index) <= set(var.index)
    assert var.loc["Scale", "hdi_low"] < reml["Scale"] < var.loc["Scale", "hdi_high"]


def test_posterior_coordinates_use_real_labels():
    fit = bayes_fit("sleep_max")
    post = fit.posterior
    assert list(post["r_Subject"].coords["Subject"].values[:2]) == ["308", "309"]
    assert list(post["r_Subject"].coords["Subject_term"].values) == ["Intercept", "Days"]
    assert list(post["fixed"].coords["fixed_term"].values) == ["Intercept", "Days"]
    assert {"posterior", "sample_stats", "observed_data", "log_likelihood"} <= set(fit.idata.children)
    assert fit.posterior.sizes["chain"] == 4 and fit.posterior.sizes["draw"] == 1000


def test_random_effects_deviations_and_coefficients():
    fit = bayes_fit("sleep_max")
    re = fit.random_effects()
    assert re.index.names == ["Subject", "term"]
    assert len(re) == 36
    reml = reference_fit("sleep_max", "REML").random_effects()
    # posterior means of the deviations follow the REML conditional modes
    corr = np.corrcoef(re.xs("Days", level="term")["mean"], reml["Days"])[0, 1]
    assert corr > 0.95
    row = re.loc[("308", "Days")]
    fixed_days = fit.summary().loc["Days", "mean"]
    assert row["coef_mean"] == pytest.approx(row["mean"] + fixed_days, rel=1e-6)
    assert row["hdi_low"] < row["mean"] < row["hdi_high"]


def test_predict_new_level_is_drawn_from_population_and_wider():
    fit = bayes_fit("sleep_max")
    new = pd.DataFrame({"Days": [5, 5], "Subject": ["308", "new"]})
    table = fit.predict(new, seed=1)
    assert list(table.columns) == ["mean", "sd", "hdi_low", "hdi_high"]
    assert table.loc[1, "sd"] > 2 * table.loc[0, "sd"]
    population = fit.predict(new, include_random=False)
    assert population.loc[1, "mean"] == pytest.approx(table.loc[1, "mean"], abs=3 * table.loc[1, "sd"] / 60)
    with pytest.raises(bm.DataError, match="new"):
        fit.predict(new, new_levels="error")
    draws = fit.predict(new, return_draws=True, seed=1)
    assert draws.shape == (4000, 2)
    np.testing.assert_array_equal(draws, fit.predict(new, return_draws=True, seed=1))


def test_fitted_and_posterior_predictive():
    fit = bayes_fit("sleep_max")
    fitted = fit.fitted()
    assert len(fitted) == 180
    reml_fitted = reference_fit("sleep_max", "REML").fitted()
    assert np.corrcoef(fitted["mean"], reml_fitted)[0, 1] > 0.99
    rep = fit.posterior_predictive(seed=3)
    assert rep.shape == (4, 1000, 180)
    assert "posterior_predictive" in fit.idata.children
    observed_sd = fit.model.design.y.std()
    assert 0.8 < float(rep.std(dim="obs").mean()) / observed_sd < 1.2


def test_loo_and_compare():
    full = bayes_fit("sleep_max")
    smaller = bayes_fit("sleep_ri")
    loo = full.loo()
    assert np.isfinite(loo.elpd)
    table = bm.compare({"max": full, "ri": smaller})
    assert table.index[0] == "max"  # random slopes improve the fit of sleepstudy
    with pytest.raises(ValueError, match="at least two"):
        bm.compare([full])


def test_seed_reproduces_draws_exactly(sleepstudy):
    model = bm.Model("Reaction ~ Days + (1 | Subject)", sleepstudy)
    a = model.fit(draws=100, tune=100, chains=2, seed=7, progressbar=False)
    b = model.fit(draws=100, tune=100, chains=2, seed=7, progressbar=False)
    c = model.fit(draws=100, tune=100, chains=2, seed=8, progressbar=False)
    np.testing.assert_array_equal(a.posterior["fixed"].values, b.posterior["fixed"].values)
    pd.testing.assert_frame_equal(a.summary(), b.summary())
    assert not np.array_equal(a.posterior["fixed"].values, c.posterior["fixed"].values)
    assert a.info["seed"] == 7
    assert {"pymc", "pytensor", "arviz", "numpy", "bayesmlm"} <= set(a.info["versions"])


def test_save_and_load_round_trip(tmp_path):
    fit = bayes_fit("sleep_max")
    path = fit.save(tmp_path / "fit.nc")
    back = bm.load_fit(path)
    pd.testing.assert_frame_equal(back.summary(), fit.summary())
    new = pd.DataFrame({"Days": [0, 9], "Subject": ["309", "372"]})
    np.testing.assert_allclose(back.predict(new, return_draws=True), fit.predict(new, return_draws=True))
    assert back.model.parameterization == fit.model.parameterization
    assert back.info["draws"] == 1000


def test_load_fit_rejects_other_files(tmp_path):
    bad = tmp_path / "bad.nc"
    bad.write_text("not a fit")
    with pytest.raises(bm.FitError, match="not a saved bayesmlm fit"):
        bm.load_fit(bad)
    with pytest.raises(bm.FitError, match="no such file"):
        bm.load_fit(tmp_path / "missing.nc")


def test_build_uses_lkj_for_correlated_blocks_and_separate_sds_for_independent(sleepstudy):
    correlated = bm.Model("Reaction ~ Days + (Days | Subject)", sleepstudy).build()
    assert isinstance(correlated, pm.Model)
    names = {v.name for v in correlated.free_RVs}
    assert "chol__Subject" in names
    independent = bm.Model("Reaction ~ Days + (Days || Subject)", sleepstudy).build()
    names = {v.name for v in independent.free_RVs}
    assert {"sd__Subject", "sd__Subject.1"} <= names
    assert not any(n.startswith("chol__") for n in names)


def test_crossed_and_nested_factors_get_their_own_blocks():
    crossed = bm.Model("diameter ~ 1 + (1 | plate) + (1 | sample)", bm.load_dataset("Penicillin")).build()
    assert {"sd__plate", "sd__sample"} <= {v.name for v in crossed.free_RVs}
    assert len(crossed.coords["plate"]) == 24
    nested = bm.Model("strength ~ 1 + (1 | batch/cask)", bm.load_dataset("Pastes")).build()
    assert {"sd__batch", "sd__cask:batch"} <= {v.name for v in nested.free_RVs}


def test_prior_overrides_by_class_and_name_reach_the_model(sleepstudy):
    model = bm.Model(
        "Reaction ~ Days + (Days | Subject)",
        sleepstudy,
        priors={
            "sd": bm.HalfStudentT(3, 20),
            "sd(Days|Subject)": bm.HalfStudentT(3, 5),
            "Days": bm.Normal(0, 10),
            "cor": bm.LKJ(4),
        },
    )
    table = model.priors
    assert table.loc["sd(Intercept|Subject)", "prior"] == "HalfStudentT(nu=3, sigma=20)"
    assert table.loc["sd(Days|Subject)", "prior"] == "HalfStudentT(nu=3, sigma=5)"
    assert table.loc["Days", "source"] == "user"
    prior = model.sample_prior_predictive(draws=400, seed=1)
    days = prior["prior"]["fixed"].sel(fixed_term="Days").values.reshape(-1)
    assert 7 < days.std() < 13
    sd_days = prior["prior"]["sd_Subject"].sel(Subject_term="Days").values.reshape(-1)
    assert np.median(sd_days) < 8
    with pytest.raises(bm.PriorError, match="sd\\(Days\\|Subject\\)"):
        _ = bm.Model(
            "Reaction ~ Days + (Days | Subject)", sleepstudy, priors={"sd(Dayz|Subject)": bm.HalfNormal(1)}
        ).priors


def test_parameterization_choice_follows_the_data():
    # sleepstudy: 10 rows a subject, the slopes' data-to-prior precision ratio is 1.7 -> non-centred
    sleep = bm.Model("Reaction ~ Days + (Days | Subject)", bm.load_dataset("sleepstudy"))
    assert sleep.parameterization == {"Subject": "noncentered"}
    # Oxboys: 9 rows a boy measured precisely (ratio 14) -> centred
    boys_max = bm.Model("height ~ age + (age | Subject)", bm.load_dataset("Oxboys"))
    assert boys_max.parameterization == {"Subject": "centered"}
    # Oxboys slope only is estimated on the boundary (variance 0) -> non-centred
    boys = bm.Model("height ~ age + (0 + age | Subject)", bm.load_dataset("Oxboys"))
    assert boys.parameterization == {"Subject": "noncentered"}
    forced = bm.Model(
        "Reaction ~ Days + (Days | Subject)", bm.load_dataset("sleepstudy"), parameterization="centered"
    )
    assert forced.parameterization == {"Subject": "centered"}
    assert "c__Subject" in {v.name for v in forced.build().free_RVs}
    assert "z__Subject" in {v.name for v in sleep.build().free_RVs}
    with pytest.raises(ValueError, match="unknown block"):
        _ = bm.Model(
            "Reaction ~ Days + (1 | Subject)",
            bm.load_dataset("sleepstudy"),
            parameterization={"x": "centered"},
        ).parameterization


def test_unknown_sampler_is_rejected(sleepstudy):
    with pytest.raises(ValueError, match="not available"):
        bm.Model("Reaction ~ Days + (1 | Subject)", sleepstudy).fit(sampler="stan")


def test_model_without_fixed_effects_samples_and_predicts(sleepstudy):
    data = sleepstudy.assign(centred=sleepstudy["Reaction"] - sleepstudy["Reaction"].mean())
    fit = bm.Model("centred ~ 0 + (1 | Subject)", data).fit(
        draws=100, tune=100, chains=2, seed=1, progressbar=False
    )
    assert list(fit.summary().index) == ["sd(Intercept|Subject)", "sigma"]
    pred = fit.predict(data.head(3), include_random=False)
    np.testing.assert_allclose(pred["mean"], 0.0)
    assert fit.predict(data.head(3))["sd"].gt(0).all()
