"""ICCs, variance decompositions and Bayes-beside-REML tables."""

import numpy as np
import pytest

import bayesmlm as bm
from bayesmlm.draws.icc import interpret_icc
from tests.conftest import bayes_fit, reference_fit
from tests.lme4_reference import LME4


def _vc(model_id, grp, var1, var2=None):
    """lme4's variance (or covariance) from the reference numbers."""
    lme4_name = {"Intercept": "(Intercept)"}
    var1, var2 = lme4_name.get(var1, var1), lme4_name.get(var2, var2)
    for row in LME4[model_id]["REML"]["varcorr"]:
        if row["grp"] == grp and row["var1"] == var1 and (row["var2"] or None) == var2:
            return row["vcov"]
    raise KeyError((grp, var1, var2))


def test_reml_icc_of_null_models_matches_the_tutorials_and_lme4():
    sleep = reference_fit("sleep_null", "REML").icc(n_boot=0)
    assert sleep["Subject"] == pytest.approx(0.3949, abs=5e-5)
    tau2, sigma2 = _vc("sleep_null", "Subject", "Intercept"), _vc("sleep_null", "Residual", None)
    assert sleep["Subject"] == pytest.approx(tau2 / (tau2 + sigma2), rel=1e-4)
    assert reference_fit("oxboys_null", "REML").icc(n_boot=0)["Subject"] == pytest.approx(0.7445, abs=5e-5)
    assert sleep.summary.loc["Subject", "interpretation"] == "very strong"
    assert list(sleep.summary.index) == ["Subject"]  # no adjusted/conditional rows without slopes


@pytest.mark.parametrize(("model_id", "reml"), [("sleep_null", 0.3949), ("oxboys_null", 0.7445)])
def test_posterior_median_icc_is_near_the_reml_estimate(model_id, reml):
    icc = bayes_fit(model_id).icc()
    assert abs(icc["Subject"] - reml) < 0.08
    assert icc.method == "posterior"
    assert icc.draws.shape == (4000, 1)
    row = icc.summary.loc["Subject"]
    assert 0 < row["low"] < row["median"] < row["high"] < 1
    assert row["estimate"] == pytest.approx(np.median(icc.draws["Subject"]))


def test_reml_bootstrap_interval_is_seeded_and_covers_the_estimate():
    fit = reference_fit("sleep_null", "REML")
    a, b = fit.icc(n_boot=60, seed=4), fit.icc(n_boot=60, seed=4)
    assert a.draws.equals(b.draws)
    row = a.summary.loc["Subject"]
    assert row["low"] < row["estimate"] < row["high"]
    assert 0.1 < row["high"] - row["low"] < 0.6
    assert "parametric bootstrap (60 replicates)" in a.note


def test_random_slope_icc_at_covariate_values_and_nakagawa_adjusted():
    fit = reference_fit("sleep_max", "REML")
    icc = fit.icc(n_boot=0)
    # performance::icc() on lme4's fit prints adjusted 0.722 and unadjusted (conditional) 0.521
    assert icc["adjusted"] == pytest.approx(0.722, abs=5e-4)
    assert icc["conditional"] == pytest.approx(0.521, abs=5e-4)
    assert icc.at == {"Days": 0.0} and "Days = 0" in icc.note
    v0, v1 = _vc("sleep_max", "Subject", "Intercept"), _vc("sleep_max", "Subject", "Days")
    c = _vc("sleep_max", "Subject", "Intercept", "Days")
    s2 = _vc("sleep_max", "Residual", None)
    assert icc["Subject"] == pytest.approx(v0 / (v0 + s2), rel=1e-3)
    at5 = fit.icc(at={"Days": 5}, n_boot=0)["Subject"]
    var5 = v0 + 2 * 5 * c + 25 * v1
    assert at5 == pytest.approx(var5 / (var5 + s2), rel=1e-3)
    with pytest.raises(ValueError, match="not random slopes"):
        fit.icc(at={"Reaction": 1})


def test_nested_and_crossed_icc_give_each_factor_its_share():
    nested = reference_fit("pastes_nested", "REML").icc(n_boot=0)
    s2 = _vc("pastes_nested", "Residual", None)
    cask, batch = _vc("pastes_nested", "cask:batch", "Intercept"), _vc("pastes_nested", "batch", "Intercept")
    assert nested["cask:batch"] == pytest.approx(cask / (cask + batch + s2), rel=1e-3)
    assert nested["batch"] == pytest.approx(batch / (cask + batch + s2), rel=1e-3)
    crossed = reference_fit("penicillin_crossed", "REML").icc(n_boot=0)
    assert set(crossed.summary.index) == {"plate", "sample"}
    assert crossed.summary["estimate"].sum() < 1


def test_variance_decomposition_shares_sum_to_one():
    reml = reference_fit("sleep_max", "REML").variance_decomposition()
    assert list(reml.index) == ["Subject", "Fixed effects", "Residual"]
    assert reml["share"].sum() == pytest.approx(1.0)
    assert reml.loc["Residual", "variance"] == pytest.approx(_vc("sleep_max", "Residual", None), rel=1e-3)
    bayes = bayes_fit("sleep_null").variance_decomposition()
    assert bayes.loc["Fixed effects", "variance"] == 0.0
    assert (bayes["share_low"] <= bayes["share"]).all() and (bayes["share"] <= bayes["share_high"]).all()
    assert bayes.loc["Subject", "share"] == pytest.approx(bayes_fit("sleep_null").icc()["Subject"], abs=0.02)


def test_interpretation_bands():
    assert [interpret_icc(v) for v in (0.0, 0.049, 0.05, 0.149, 0.15, 0.249, 0.25, 0.9)] == [
        "negligible",
        "negligible",
        "moderate",
        "moderate",
        "substantial",
        "substantial",
        "very strong",
        "very strong",
    ]
    assert interpret_icc(float("nan")) == "undefined"


def test_compare_estimates_sets_reml_beside_the_posterior():
    fit, reml = bayes_fit("sleep_max"), reference_fit("sleep_max", "REML")
    table = bm.compare_estimates(fit, reml, n_boot=40, seed=1)
    assert list(table.index) == [
        "Intercept",
        "Days",
        "sd(Intercept|Subject)",
        "sd(Days|Subject)",
        "cor(Intercept,Days|Subject)",
        "sigma",
    ]
    entry = LME4["sleep_max"]["REML"]
    assert table.loc["Intercept", "reml"] == pytest.approx(entry["fixef"]["(Intercept)"], rel=1e-6)
    assert table.loc["sd(Days|Subject)", "reml"] == pytest.approx(
        np.sqrt(_vc("sleep_max", "Subject", "Days")), rel=1e-3
    )
    assert table.loc["Days", "reml_interval"] == "Wald"
    assert table.loc["sigma", "reml_interval"] == "parametric bootstrap (40)"
    assert (table["reml_low"] < table["reml"]).all() and (table["reml"] < table["reml_high"]).all()
    assert (table["hdi_low"] < table["median"]).all() and (table["median"] < table["hdi_high"]).all()
    assert (np.abs(table["median"] - table["reml"]) < 2 * table["posterior_sd"]).all()
    var = bm.compare_estimates(fit, reml, scale="var", n_boot=0)
    assert var.loc["Subject Var", "reml"] == pytest.approx(_vc("sleep_max", "Subject", "Intercept"), rel=1e-3)
    assert var.loc["Scale", "reml_interval"] == "none"


def test_compare_estimates_rejects_mismatched_fits():
    with pytest.raises(ValueError, match="the fits differ"):
        bm.compare_estimates(bayes_fit("sleep_max"), reference_fit("sleep_null", "REML"))
    with pytest.raises(TypeError, match="in that order"):
        bm.compare_estimates(reference_fit("sleep_max", "REML"), bayes_fit("sleep_max"))
