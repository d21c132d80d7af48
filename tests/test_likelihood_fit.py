"""REML/ML results beyond the reference table: predictions, conditional sds, LRT, summary, InstEval.

Expected values were produced with R 4.2.2 / lme4 1.1-31 (Debian packages) on the bundled CSVs:
``predict(m, newdata, allow.new.levels = TRUE)``, ``as.data.frame(ranef(m, condVar = TRUE))``,
``anova(m0, m1)`` and ``anova(m0, m1, refit = FALSE)``.
"""

import time

import numpy as np
import pandas as pd
import pytest

import bayesmlm as bm
from tests.conftest import reference_fit


def test_predict_matches_lme4_including_a_new_level():
    fit = reference_fit("sleep_max", "REML")
    new = pd.DataFrame({"Days": [0, 5, 3], "Subject": ["308", "309", "999"]})
    pred = fit.predict(new)
    np.testing.assert_allclose(pred, [253.6636558, 220.2443935, 282.8069627], rtol=2e-6)
    assert list(pred.index) == [0, 1, 2]


def test_predict_population_level_and_new_level_error():
    fit = reference_fit("sleep_max", "REML")
    new = pd.DataFrame({"Days": [0, 5], "Subject": ["308", "999"]})
    beta = fit.fixed_effects["estimate"]
    population = fit.predict(new, include_random=False)
    np.testing.assert_allclose(population, beta["Intercept"] + beta["Days"] * new["Days"])
    with pytest.raises(bm.DataError, match="999"):
        fit.predict(new, new_levels="error")
    with pytest.raises(bm.DataError, match="Days"):
        fit.predict(new.drop(columns="Days"))


def test_predict_without_newdata_is_fitted():
    fit = reference_fit("sleep_ri", "ML")
    np.testing.assert_allclose(fit.predict(), fit.fitted())
    assert len(fit.fitted()) == 180


def test_crossed_conditional_sds_match_lme4():
    fit = reference_fit("penicillin_crossed", "REML")
    plate = fit.random_effects("plate", conditional_sd=True)
    sample = fit.random_effects("sample", conditional_sd=True)
    assert plate.loc["a", "Intercept"] == pytest.approx(0.8045469, rel=1e-4)
    assert plate.loc["c", "Intercept"] == pytest.approx(0.1816719, rel=1e-4)
    assert sample.loc["F", "Intercept"] == pytest.approx(-3.00374477, rel=1e-4)
    np.testing.assert_allclose(plate["Intercept_sd"], 0.2713593, rtol=1e-4)
    np.testing.assert_allclose(sample["Intercept_sd"], 0.2021707, rtol=1e-4)


def test_random_effects_needs_group_when_several_factors():
    fit = reference_fit("penicillin_crossed", "REML")
    with pytest.raises(ValueError, match="plate"):
        fit.random_effects()
    with pytest.raises(ValueError, match="unknown grouping factor"):
        fit.random_effects("nope")


def test_coefficients_are_fixed_plus_random():
    fit = reference_fit("sleep_max", "REML")
    coef = fit.coefficients()
    re = fit.random_effects()
    fe = fit.fixed_effects["estimate"]
    np.testing.assert_allclose(coef["Days"], fe["Days"] + re["Days"])
    assert coef.loc["308", "Intercept"] == pytest.approx(253.6636558, rel=1e-6)


def test_lrt_same_fixed_effects_uses_reml_like_anova_refit_false():
    res = bm.lrt(reference_fit("sleep_ri", "REML"), reference_fit("sleep_max", "REML"))
    assert res.method == "REML"
    assert not res.refitted
    assert res.df == 2
    assert res.statistic == pytest.approx(42.837, abs=1e-3)
    assert res.p_value == pytest.approx(4.99e-10, rel=1e-3)
    # boundary-corrected: 0.5 chi2(1) + 0.5 chi2(2) tail, smaller than the naive p
    assert res.p_value_boundary < res.p_value
    assert "boundary" in str(res)


def test_lrt_refits_with_ml_when_fixed_effects_differ():
    data = bm.load_dataset("sleepstudy")
    smaller = bm.Model("Reaction ~ 1 + (Days | Subject)", data).fit_reml()
    res = bm.lrt(smaller, reference_fit("sleep_max", "REML"))
    assert res.method == "ML"
    assert res.refitted
    assert res.df == 1
    assert res.statistic == pytest.approx(23.537, abs=1e-3)
    assert res.p_value == pytest.approx(1.226e-06, rel=1e-3)
    assert res.p_value_boundary is None  # no variance component added
    assert res.table.loc[:, "logLik"].round(2).tolist() == [-887.74, -875.97]


def test_lrt_ml_fits_match_anova():
    res = bm.lrt(reference_fit("sleep_ri", "ML"), reference_fit("sleep_max", "ML"))
    assert res.statistic == pytest.approx(42.139, abs=1e-3)
    assert res.p_value == pytest.approx(7.072e-10, rel=1e-3)


def test_lrt_rejects_wrong_order_and_different_data():
    with pytest.raises(bm.BayesMLMError, match="smaller model first"):
        bm.lrt(reference_fit("sleep_max", "ML"), reference_fit("sleep_ri", "ML"))
    with pytest.raises(bm.BayesMLMError, match="different observations"):
        bm.lrt(reference_fit("dyestuff", "ML"), reference_fit("sleep_ri", "ML"))


def test_summary_reads_like_lme4_and_statsmodels():
    text = str(reference_fit("sleep_max", "REML").summary())
    assert "Linear mixed model fit by REML" in text
    assert "REML criterion at convergence" in text
    assert "1743.6" in text
    assert "Subject x Days Cov" in text
    assert "Scale" in text
    assert "Number of obs: 180, groups: Subject, 18" in text
    assert "Converged: Yes" in text
    text_ml = str(reference_fit("oxboys_slope_only", "ML").summary())
    assert "maximum likelihood" in text_ml
    assert "boundary (singular) fit" in text_ml


def test_singular_fit_warns_in_plain_words():
    data = bm.load_dataset("Oxboys")
    with pytest.warns(bm.SingularFitWarning, match="boundary"):
        bm.Model("height ~ age + (0 + age | Subject)", data).fit_reml()


def test_no_random_terms_is_a_formula_error(sleepstudy):
    with pytest.raises(bm.FormulaError, match="no random-effects terms"):
        bm.Model("Reaction ~ Days", sleepstudy)


def test_caller_data_unchanged_by_fitting_and_prediction(sleepstudy):
    data = sleepstudy.copy()
    data.loc[3, "Reaction"] = np.nan
    before = pd.util.hash_pandas_object(data, index=True).sum()
    with pytest.warns(bm.DroppedRowsWarning, match="1 of 180"):
        fit = bm.Model("Reaction ~ Days + (Days | Subject)", data).fit_ml()
    fit.predict(data)
    assert pd.util.hash_pandas_object(data, index=True).sum() == before
    assert fit.nobs == 179
    assert 3 not in fit.fitted().index


@pytest.mark.slow
def test_insteval_crossed_reml_matches_lme4():
    # lme4: logLik -118866.917064; sds s 0.325573157, d 0.514996496, dept 0.083138101, residual
    # 1.177497504; fixef 3.28258775401, -0.09264170344 (lme4 took 20.3 s on this machine)
    model = bm.Model("y ~ service + (1|s) + (1|d) + (1|dept)", bm.load_dataset("InstEval"))
    start = time.perf_counter()
    fit = model.fit_reml()
    elapsed = time.perf_counter() - start
    print(f"InstEval REML: {elapsed:.1f} s, {fit.opt.n_evaluations} evaluations")
    assert fit.loglik == pytest.approx(-118866.917064, abs=0.01)
    sd = fit.varcorr.set_index("grp")["sdcor"]
    np.testing.assert_allclose(
        sd[["s", "d", "dept", "Residual"]],
        [0.325573157, 0.514996496, 0.083138101, 1.177497504],
        rtol=1e-3,
    )
    np.testing.assert_allclose(fit.fixed_effects["estimate"], [3.28258775401, -0.09264170344], rtol=1e-5)
    assert fit.n_groups == {"s": 2972, "d": 1128, "dept": 14}


def test_lrt_adding_only_a_correlation_has_no_boundary_correction():
    """(Days || Subject) -> (Days | Subject) adds a correlation, whose null value 0 is not on a boundary."""
    result = bm.lrt(reference_fit("sleep_uncorr", "REML"), reference_fit("sleep_max", "REML"))
    assert result.df == 1
    assert result.p_value_boundary is None
    assert "boundary-corrected" not in str(result)
    adds_slope = bm.lrt(reference_fit("sleep_ri", "REML"), reference_fit("sleep_max", "REML"))
    assert adds_slope.p_value_boundary is not None and adds_slope.p_value_boundary < adds_slope.p_value
