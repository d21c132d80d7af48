"""REML and ML fits reproduce lme4 (1.1-31) on all twelve reference models.

Tolerances (issue 2): logLik 1e-4 absolute; fixed effects 1e-5 relative; their standard errors 1e-3
relative; variances, covariances, sds and correlations 1e-3 relative (1e-4 absolute where lme4's value
is 0, a boundary fit); conditional modes 1e-3 relative.
"""

import math

import numpy as np
import pytest

from tests.conftest import reference_fit
from tests.lme4_reference import LME4

CASES = [(model_id, method) for model_id in LME4 for method in ("REML", "ML")]
IDS = [f"{m}-{k}" for m, k in CASES]


def _term(name):
    return "Intercept" if name == "(Intercept)" else name


@pytest.mark.parametrize(("model_id", "method"), CASES, ids=IDS)
def test_loglik_and_criteria(model_id, method):
    ref = LME4[model_id][method]
    fit = reference_fit(model_id, method)
    assert fit.converged
    assert fit.loglik == pytest.approx(ref["logLik"], abs=1e-4)
    assert fit.deviance == pytest.approx(ref["deviance_or_REMLcrit"], abs=2e-4)
    assert fit.aic == pytest.approx(ref["AIC"], abs=2e-4)
    assert fit.bic == pytest.approx(ref["BIC"], abs=2e-4)
    assert fit.nobs == ref["nobs"]
    assert fit.n_groups == ref["ngrps"]
    assert fit.singular == ref["singular"]


@pytest.mark.parametrize(("model_id", "method"), CASES, ids=IDS)
def test_fixed_effects_and_standard_errors(model_id, method):
    ref = LME4[model_id][method]
    fe = reference_fit(model_id, method).fixed_effects
    assert list(fe.index) == [_term(k) for k in ref["fixef"]]
    for name, value in ref["fixef"].items():
        assert fe.loc[_term(name), "estimate"] == pytest.approx(value, rel=1e-5)
    for name, value in ref["se"].items():
        assert fe.loc[_term(name), "se"] == pytest.approx(value, rel=1e-3)
    z = fe["estimate"] / fe["se"]
    np.testing.assert_allclose(fe["z"], z)
    np.testing.assert_allclose(fe["ci_high"] - fe["estimate"], 1.959964 * fe["se"], rtol=1e-6)


@pytest.mark.parametrize(("model_id", "method"), CASES, ids=IDS)
def test_varcorr_layout_and_values(model_id, method):
    ref = LME4[model_id][method]
    fit = reference_fit(model_id, method)
    vc = fit.varcorr
    assert list(vc.columns) == ["grp", "var1", "var2", "vcov", "sdcor"]
    assert len(vc) == len(ref["varcorr"])
    assert vc["grp"].iloc[-1] == "Residual"
    for row, expected in zip(vc.itertuples(index=False), ref["varcorr"], strict=True):
        assert row.grp == expected["grp"]
        assert (None if row.var1 is None or row.var1 != row.var1 else row.var1) == (
            None if expected["var1"] is None else _term(expected["var1"])
        )
        for col in ("vcov", "sdcor"):
            value = getattr(row, col)
            if expected[col] == 0:
                assert abs(value) <= 1e-4
            else:
                assert value == pytest.approx(expected[col], rel=1e-3)
    assert fit.sigma == pytest.approx(ref["sigma"], rel=1e-3)


RANEF_CASES = [c for c in CASES if "ranef" in LME4[c[0]][c[1]]]


@pytest.mark.parametrize(("model_id", "method"), RANEF_CASES, ids=[f"{m}-{k}" for m, k in RANEF_CASES])
def test_conditional_modes(model_id, method):
    ref = LME4[model_id][method]
    fit = reference_fit(model_id, method)
    for group, rows in ref["ranef"].items():
        modes = fit.random_effects(group)
        assert len(modes) == len(rows)
        for row in rows:
            for name, value in row.items():
                if name == ".level":
                    continue
                assert modes.loc[row[".level"], _term(name)] == pytest.approx(value, rel=1e-3)


def test_statsmodels_names_sleepstudy_max():
    # the tutorials' statsmodels figures: Scale 654.9405, Group Var 612.096, Cov 9.605, Days Var 35.072
    vc = reference_fit("sleep_max", "REML").variance_components
    assert list(vc.index) == ["Subject Var", "Days Var", "Subject x Days Cov", "Scale"]
    assert vc["Scale"] == pytest.approx(654.9405, rel=1e-5)
    assert vc["Subject Var"] == pytest.approx(612.096, rel=1e-4)
    assert vc["Subject x Days Cov"] == pytest.approx(9.605, rel=1e-3)
    assert vc["Days Var"] == pytest.approx(35.072, rel=1e-4)


def test_oxboys_slope_only_converges_on_the_boundary_where_statsmodels_did_not():
    # statsmodels: "Converged: No", log-likelihood -819.0859; lme4 reaches -818.9673 (singular)
    fit = reference_fit("oxboys_slope_only", "REML")
    assert fit.converged
    assert fit.singular
    assert fit.loglik == pytest.approx(-818.9673, abs=1e-4)
    assert fit.loglik > -819.0859
    assert fit.varcorr["vcov"].iloc[0] == 0.0


def test_conditional_variances_are_positive_and_shrink_with_data():
    fit = reference_fit("sleep_max", "REML")
    cov = fit.conditional_covariance()
    assert cov.shape == (18, 2, 2)
    assert np.all(np.linalg.eigvalsh(cov) > 0)
    # balanced design: every subject has the same conditional covariance, below the prior covariance
    np.testing.assert_allclose(cov, np.broadcast_to(cov[0], cov.shape), rtol=1e-8)
    prior_var = fit.varcorr["vcov"].iloc[:2].to_numpy()
    assert np.all(np.diagonal(cov[0]) < prior_var)
    sd = fit.random_effects(conditional_sd=True)["Intercept_sd"]
    assert math.isclose(sd.iloc[0], math.sqrt(cov[0, 0, 0]))


def test_fitted_plus_residuals_is_response():
    fit = reference_fit("pastes_nested", "REML")
    y = fit.design.y
    np.testing.assert_allclose(fit.fitted().to_numpy() + fit.residuals().to_numpy(), y)
    # a fitted value is the fixed part plus the conditional modes of the row's batch and cask
    batch = fit.random_effects("batch")["Intercept"]
    cask = fit.random_effects("cask:batch")["Intercept"]
    beta = fit.fixed_effects["estimate"].iloc[0]
    first = fit.fitted().iloc[0]  # batch A, cask a
    assert first == pytest.approx(beta + batch.loc["A"] + cask.loc["a:A"])
