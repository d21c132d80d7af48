"""statsmodels' mixedlm interface: the tutorials' code with only the import changed.

``import bayesmlm as smf`` replaces ``import statsmodels.formula.api as smf``. Reference numbers are
lme4 1.1-31's (``tests/lme4_reference.py``) and the figures statsmodels' tutorials print for the same
models (which agree with lme4 to the digits checked, except where statsmodels stops short of a
boundary optimum).
"""

import re
import types
import warnings

import numpy as np
import pandas as pd
import pytest
from pandas.util import hash_pandas_object

import bayesmlm as bm
import bayesmlm as smf
from bayesmlm import MixedLM
from tests.lme4_reference import LME4


def vcov(model_id, method, grp, var1, var2=None):
    for row in LME4[model_id][method]["varcorr"]:
        if row["grp"] == grp and row["var1"] == var1 and row["var2"] == var2:
            return row["vcov"]
    raise KeyError((grp, var1, var2))


@pytest.fixture(scope="module")
def data():
    return bm.load_dataset("sleepstudy")


@pytest.fixture(scope="module")
def oxboys():
    return bm.load_dataset("Oxboys")


@pytest.fixture(scope="module")
def md(data):
    return smf.mixedlm("Reaction ~ Days", data, groups=data["Subject"], re_formula="~Days")


@pytest.fixture(scope="module")
def mdf(md):
    return md.fit(method=["lbfgs"])


@pytest.fixture(scope="module")
def schools():
    rng = np.random.default_rng(20260501)
    n_schools, n_students = 30, 20
    school = np.repeat(np.arange(n_schools), n_students)
    X = rng.normal(size=school.size)
    u0 = rng.normal(scale=1.0, size=n_schools)
    u1 = rng.normal(scale=0.3, size=n_schools)
    Y = 2.0 + u0[school] + (0.5 + u1[school]) * X + rng.normal(scale=1.0, size=school.size)
    return pd.DataFrame({"Y": Y, "X": X, "school": school})


# -- sleepstudy ------------------------------------------------------------------------------------
def test_null_model_icc_the_tutorial_way(data):
    md = smf.mixedlm("Reaction ~ 1", data, groups=data["Subject"])
    mdf = md.fit(method=["lbfgs"])
    icc = mdf.cov_re.iloc[0, 0] / (mdf.cov_re.iloc[0, 0] + mdf.scale)
    assert round(icc, 4) == 0.3949
    assert mdf.cov_re.loc["Group", "Group"] == pytest.approx(
        vcov("sleep_null", "REML", "Subject", "(Intercept)"), rel=1e-5
    )
    assert mdf.scale == pytest.approx(LME4["sleep_null"]["REML"]["sigma"] ** 2, rel=1e-5)
    assert mdf.llf == pytest.approx(LME4["sleep_null"]["REML"]["logLik"], abs=1e-4)
    assert md.formula == "Reaction ~ 1 + (1 | Subject)"


def test_random_intercept_matches_lme4(data):
    mdf = smf.mixedlm("Reaction ~ Days", data, groups=data["Subject"]).fit()
    assert mdf.llf == pytest.approx(-893.2325, abs=1e-4)
    assert mdf.cov_re.loc["Group", "Group"] == pytest.approx(1378.1785, rel=1e-5)
    assert mdf.scale == pytest.approx(960.456578560467, rel=1e-5)
    assert list(mdf.params.index) == ["Intercept", "Days", "Group Var"]
    assert mdf.params["Group Var"] == pytest.approx(1378.1785 / 960.456578560467, rel=1e-5)


def test_random_slope_reproduces_the_tutorial_figures(mdf):
    assert mdf.scale == pytest.approx(654.9405, rel=1e-5)
    assert mdf.cov_re.loc["Group", "Group"] == pytest.approx(612.096, rel=1e-4)
    assert mdf.cov_re.loc["Group", "Days"] == pytest.approx(9.605, rel=1e-3)
    assert mdf.cov_re.loc["Days", "Group"] == mdf.cov_re.loc["Group", "Days"]
    assert mdf.cov_re.loc["Days", "Days"] == pytest.approx(35.072, rel=1e-4)
    assert mdf.llf == pytest.approx(-871.8141, abs=1e-4)
    assert mdf.converged and mdf.method == "REML" and mdf.reml
    assert list(mdf.fe_params.index) == ["Intercept", "Days"]
    np.testing.assert_allclose(mdf.fe_params, [251.405105, 10.467286], rtol=1e-6)
    np.testing.assert_allclose(mdf.bse_fe, [6.824557, 1.545789], rtol=1e-4)
    assert (mdf.nobs, mdf.ngroups, mdf.k_fe, mdf.k_re, mdf.k_re2, mdf.k_vc) == (180, 18, 2, 2, 3, 0)


def test_params_hold_fixed_effects_then_scaled_covariances(mdf):
    assert list(mdf.params.index) == ["Intercept", "Days", "Group Var", "Group x Days Cov", "Days Var"]
    cov = mdf.cov_re.to_numpy() / mdf.scale
    np.testing.assert_allclose(mdf.params.iloc[2:], [cov[0, 0], cov[1, 0], cov[1, 1]])
    np.testing.assert_allclose(mdf.cov_re_unscaled, cov)
    assert mdf.bse.iloc[:2].tolist() == mdf.bse_fe.tolist()
    # the variance parameters' standard errors: statsmodels' formulas over the inverse Hessian
    # (statsmodels 0.15 at its own optimum, within 1e-3 of lme4's: bse_re 11.8809, 1.8205, 0.6095)
    np.testing.assert_allclose(mdf.bse, np.sqrt(np.diag(mdf.cov_params())), rtol=1e-12)
    np.testing.assert_allclose(mdf.bse_re, np.sqrt(mdf.scale) * mdf.bse.iloc[2:], rtol=1e-12)
    np.testing.assert_allclose(mdf.bse_re, [11.8809, 1.8205, 0.6095], rtol=2e-4)
    np.testing.assert_allclose(mdf.tvalues.iloc[:2], mdf.fe_params / mdf.bse_fe)
    assert mdf.pvalues.iloc[:2].max() < 1e-10
    ci = mdf.conf_int()
    assert list(ci.columns) == [0, 1]
    assert ci.loc["Days", 0] == pytest.approx(7.437595, rel=1e-5)
    assert ci.loc["Days", 1] == pytest.approx(13.496977, rel=1e-5)
    np.testing.assert_allclose(ci.iloc[2:, 0], mdf.params.iloc[2:] - 1.959964 * mdf.bse.iloc[2:], rtol=1e-6)
    assert mdf.conf_int(alpha=0.1).loc["Days", 0] > ci.loc["Days", 0]
    assert mdf.cov_params().loc["Days", "Days"] == pytest.approx(mdf.bse_fe["Days"] ** 2)


def test_aic_bic_are_lme4s_even_for_reml(mdf):
    assert mdf.aic == pytest.approx(LME4["sleep_max"]["REML"]["AIC"], abs=1e-3)
    assert mdf.bic == pytest.approx(LME4["sleep_max"]["REML"]["BIC"], abs=1e-3)


def test_random_effects_fitted_values_and_prediction(data, mdf):
    re = mdf.random_effects
    assert isinstance(re, dict) and len(re) == 18
    assert all(list(s.index) == ["Group", "Days"] for s in re.values())
    modes = mdf.fit_result.random_effects()
    np.testing.assert_allclose(re["308"], modes.loc["308"])
    assert re["308"]["Days"] == pytest.approx(9.198972, rel=1e-5)
    fitted = mdf.fittedvalues
    assert len(fitted) == 180 and fitted.index.equals(data.index)
    np.testing.assert_allclose(fitted + mdf.resid, data["Reaction"])
    first = data.iloc[0]
    assert fitted.iloc[0] == pytest.approx(
        mdf.fe_params["Intercept"]
        + re["308"]["Group"]
        + (mdf.fe_params["Days"] + re["308"]["Days"]) * first["Days"]
    )
    population = mdf.predict()
    np.testing.assert_allclose(population, mdf.fe_params["Intercept"] + mdf.fe_params["Days"] * data["Days"])
    new = pd.DataFrame({"Days": [0, 10]}, index=["a", "b"])
    pred = mdf.predict(new)
    assert list(pred.index) == ["a", "b"]
    assert pred["b"] == pytest.approx(251.405105 + 104.67286, rel=1e-6)


def test_summary_has_statsmodels_layout(mdf):
    text = str(mdf.summary())
    for piece in ["Mixed Linear Model Regression Results", "Group Var", "Group x Days Cov", "Converged:"]:
        assert piece in text
    assert re.search(r"Method:\s+REML", text) and re.search(r"Converged:\s+Yes", text)
    assert re.search(r"Scale:\s+654\.94\d\d", text) and re.search(r"Log-Likelihood:\s+-871\.8141", text)
    assert re.search(r"No\. Groups:\s+18\s", text) and re.search(r"Mean group size:\s+10\.0", text)
    assert re.search(r"Intercept\s+251\.405\s+6\.825\s+36\.838\s+0\.000\s+238\.029\s+264\.781", text)
    assert re.search(r"Group Var\s+612\.09\d\s+11\.881\s*\n", text)  # statsmodels' Std.Err. 11.881
    assert re.search(r"Days Var\s+35\.072\s+0\.610\s*\n", text)
    lines = text.splitlines()
    assert set(lines[1]) == {"="} and set(lines[-1]) == {"="} and len(lines[1]) == len(lines[-1])
    assert mdf.summary()._repr_html_().startswith("<pre>")
    assert mdf.summary(alpha=0.1).tables[1].columns[-1] == "0.95]"


def test_slopes_only_three_spellings_match_lme4(data):
    reference = bm.Model("Reaction ~ Days + (0 + Days | Subject)", data).fit_reml()
    assert reference.loglik == pytest.approx(LME4["sleep_slope_only"]["REML"]["logLik"], abs=1e-4)
    spellings = [
        {"re_formula": "0", "vc_formula": {"Days": "0 + Days"}},
        {"vc_formula": {"Days": "0 + Days"}},  # statsmodels: vc_formula alone has no group intercept
        {"re_formula": "0 + Days"},
        {"re_formula": "~Days - 1"},
    ]
    for kwargs in spellings:
        md = smf.mixedlm("Reaction ~ Days", data, groups=data["Subject"], **kwargs)
        assert md.formula == "Reaction ~ Days + (0 + Days | Subject)"
        fit = md.fit()
        assert fit.llf == pytest.approx(reference.loglik, abs=1e-8)
    vc = smf.mixedlm("Reaction ~ Days", data, groups="Subject", vc_formula={"Days": "0 + Days"}).fit()
    assert vc.cov_re.shape == (0, 0) and vc.k_re == 0 and vc.k_vc == 1
    assert vc.vcomp[0] == pytest.approx(vcov("sleep_slope_only", "REML", "Subject", "Days"), rel=1e-4)
    assert list(vc.params.index) == ["Intercept", "Days", "Days Var"]
    assert list(vc.random_effects["308"].index) == ["Days[Days]"]
    re_only = smf.mixedlm("Reaction ~ Days", data, groups="Subject", re_formula="0 + Days").fit()
    assert list(re_only.cov_re.index) == ["Days"]
    assert re_only.cov_re.iloc[0, 0] == pytest.approx(vc.vcomp[0], rel=1e-10)


def test_uncorrelated_intercept_and_slope(data, md):
    reference = bm.Model("Reaction ~ Days + (Days || Subject)", data).fit_reml()
    assert reference.loglik == pytest.approx(LME4["sleep_uncorr"]["REML"]["logLik"], abs=1e-4)
    vc = smf.mixedlm(
        "Reaction ~ Days", data, groups=data["Subject"], re_formula="1", vc_formula={"Days": "0 + Days"}
    )
    assert vc.formula == "Reaction ~ Days + (1 | Subject) + (0 + Days | Subject)"
    fit = vc.fit()
    assert fit.llf == pytest.approx(reference.loglik, abs=1e-8)
    assert list(fit.params.index) == ["Intercept", "Days", "Group Var", "Days Var"]
    assert fit.vcomp[0] == pytest.approx(vcov("sleep_uncorr", "REML", "Subject.1", "Days"), rel=1e-4)
    assert list(fit.random_effects["308"].index) == ["Group", "Days[Days]"]
    # statsmodels' tutorial way: hold the covariance at 0 with free=MixedLMParams(..., cov_re=I)
    free = types.SimpleNamespace(fe_params=np.ones(2), cov_re=np.eye(2), vcomp=np.zeros(0))
    constrained = md.fit(free=free, method=["lbfgs"])
    assert constrained.llf == pytest.approx(reference.loglik, abs=1e-8)
    assert constrained.cov_re.loc["Group", "Days"] == 0.0
    assert constrained.cov_re.loc["Days", "Days"] == pytest.approx(fit.vcomp[0], rel=1e-8)
    all_free = types.SimpleNamespace(fe_params=np.ones(2), cov_re=np.ones((2, 2)), vcomp=np.zeros(0))
    assert md.fit(free=all_free).llf == pytest.approx(-871.8141, abs=1e-4)


def test_reml_false_is_ml(data, md):
    ml = md.fit(reml=False)
    reference = bm.Model("Reaction ~ Days + (Days | Subject)", data).fit_ml()
    assert ml.method == "ML" and not ml.reml
    assert ml.llf == pytest.approx(reference.loglik, abs=1e-8)
    assert ml.llf == pytest.approx(LME4["sleep_max"]["ML"]["logLik"], abs=1e-4)
    assert ml.aic == pytest.approx(LME4["sleep_max"]["ML"]["AIC"], abs=1e-3)
    assert "Method:             ML" in str(ml.summary()) or re.search(r"Method:\s+ML", str(ml.summary()))


def test_method_names_are_accepted_and_change_nothing(md, mdf):
    for method in ["bfgs", ["lbfgs", "powell"], ("nm", "cg"), None]:
        fit = md.fit(method=method, maxiter=200, full_output=True, niter_sa=0, do_cg=True, start_params=[1.0])
        assert fit.llf == mdf.llf
        np.testing.assert_array_equal(fit.params, mdf.params)
    with pytest.raises(ValueError, match="unknown optimisation method 'steepest'"):
        md.fit(method="steepest")
    with pytest.raises(ValueError, match="newton not available"):  # statsmodels rejects it too
        md.fit(method=["lbfgs", "newton"])
    with pytest.raises(TypeError, match="draws"):
        md.fit(draws=100)
    with pytest.raises(NotImplementedError, match="do_cg"):
        md.fit(do_cg=False)
    with pytest.raises(ValueError, match="fe_pen must be a penalty with func"):
        md.fit(fe_pen=object())


# -- groups, data and the translation ----------------------------------------------------------------
def test_groups_as_name_or_series_give_the_same_fit_and_leave_data_alone(data):
    before = hash_pandas_object(data, index=True).to_numpy().copy()
    columns = list(data.columns)
    by_name = smf.mixedlm("Reaction ~ Days", data, groups="Subject", re_formula="~Days").fit()
    variants = [
        data["Subject"],
        pd.Series(data["Subject"].to_numpy(), name="subj"),  # new column in a copy
        data["Subject"].to_numpy(),  # unnamed: a "Group" column in a copy
        pd.Series(data["Subject"].to_numpy()[::-1], name="Subject").iloc[::-1].reset_index(drop=True),
    ]
    for groups in variants:
        fit = smf.mixedlm("Reaction ~ Days", data, groups=groups, re_formula="~Days").fit()
        assert fit.llf == by_name.llf
        np.testing.assert_array_equal(fit.cov_re.to_numpy(), by_name.cov_re.to_numpy())
        np.testing.assert_array_equal(fit.params.to_numpy(), by_name.params.to_numpy())
        assert list(fit.cov_re.index) == ["Group", "Days"]  # statsmodels: "Group" unless groups is a name
        np.testing.assert_array_equal(
            fit.random_effects["308"].to_numpy(), by_name.random_effects["308"].to_numpy()
        )
    assert list(by_name.cov_re.index) == ["Subject", "Days"]
    assert list(by_name.params.index)[2:] == ["Subject Var", "Subject x Days Cov", "Days Var"]
    np.testing.assert_array_equal(hash_pandas_object(data, index=True).to_numpy(), before)
    assert list(data.columns) == columns
    other = pd.Series(np.repeat(np.arange(9), 20), name="Subject")  # same name, other labels
    md = smf.mixedlm("Reaction ~ Days", data, groups=other)
    assert md.group_col == "__groups__" and md.n_groups == 9
    assert list(data.columns) == columns


def test_print_spec_shows_the_lme4_formula(md, capsys):
    print(md.spec)
    assert capsys.readouterr().out == "Reaction ~ Days + (1 + Days | Subject)\n"
    assert md.formula == "Reaction ~ Days + (1 + Days | Subject)"
    assert isinstance(md.spec, bm.ModelSpec) and isinstance(md.bayesmlm_model, bm.Model)


@pytest.mark.parametrize(
    ("re_formula", "expected"),
    [
        (None, "(1 | Subject)"),
        ("1", "(1 | Subject)"),
        ("~1", "(1 | Subject)"),
        ("~Days", "(1 + Days | Subject)"),
        ("Days", "(1 + Days | Subject)"),
        ("~ 1 + Days", "(1 + Days | Subject)"),
        ("~0 + Days", "(0 + Days | Subject)"),
        ("-1 + Days", "(0 + Days | Subject)"),
        ("~ Days + I(Days ** 2)", "(1 + Days + I(Days ** 2) | Subject)"),
    ],
)
def test_re_formula_translation(data, re_formula, expected):
    md = smf.mixedlm("Reaction ~ Days", data, groups="Subject", re_formula=re_formula)
    assert md.formula == f"Reaction ~ Days + {expected}"


def test_bad_arguments_are_rejected_clearly(data, md):
    with pytest.raises(TypeError, match="unsupported argument"):
        smf.mixedlm("Reaction ~ Days", data, groups="Subject", weights=np.ones(180))
    with pytest.raises(ValueError, match="groups"):
        smf.mixedlm("Reaction ~ Days", data)
    with pytest.raises(ValueError, match="re_formula"):
        smf.mixedlm("Reaction ~ Days + (1 | Subject)", data, groups="Subject")
    with pytest.raises(ValueError, match="no random effects"):
        smf.mixedlm("Reaction ~ Days", data, groups="Subject", re_formula="0")
    with pytest.raises(ValueError, match="intercept"):
        smf.mixedlm("Reaction ~ Days", data, groups="Subject", vc_formula={"Days": "Days"})
    with pytest.raises(NotImplementedError, match="mixes the categorical term"):
        smf.mixedlm("Reaction ~ Days", data, groups="Subject", vc_formula={"d": "0 + C(Days) + Days"})
    with pytest.raises(ValueError, match="removes the term"):
        smf.mixedlm("Reaction ~ Days", data, groups="Subject", re_formula="~Days - Days")
    with pytest.raises(ValueError, match="rows"):
        smf.mixedlm("Reaction ~ Days", data, groups=np.arange(10))
    with pytest.raises(bm.DataError, match="not a column"):
        smf.mixedlm("Reaction ~ Days", data, groups="subject")
    pattern = types.SimpleNamespace(cov_re=np.array([[1.0, 0.0, 1.0], [0.0, 1.0, 1.0], [1.0, 1.0, 1.0]]))
    three = smf.mixedlm("Reaction ~ Days", data, groups="Subject", re_formula="~Days + I(Days ** 2)")
    with pytest.raises(NotImplementedError, match="independent blocks"):
        three.fit(free=pattern)


def test_missing_subset_and_dropped_rows(data):
    holes = data.copy()
    holes.loc[[3, 50], "Reaction"] = np.nan
    with pytest.raises(bm.DataError, match="missing='drop'"):
        smf.mixedlm("Reaction ~ Days", holes, groups="Subject")
    with pytest.warns(bm.DroppedRowsWarning):
        md = smf.mixedlm("Reaction ~ Days", holes, groups="Subject", missing="drop")
    fit = md.fit()
    assert fit.nobs == 178 and len(fit.fittedvalues) == 178
    assert 3 not in fit.fittedvalues.index
    subset = smf.mixedlm("Reaction ~ Days", data, groups=data["Subject"], subset=data["Days"] < 8).fit()
    direct = smf.mixedlm("Reaction ~ Days", data[data["Days"] < 8], groups="Subject").fit()
    assert subset.nobs == 144 and subset.llf == pytest.approx(direct.llf, abs=1e-10)


# -- Oxboys ------------------------------------------------------------------------------------------
def test_oxboys_null_icc(oxboys):
    mdf = smf.mixedlm("height ~ 1", oxboys, groups=oxboys["Subject"]).fit()
    icc = mdf.cov_re.iloc[0, 0] / (mdf.cov_re.iloc[0, 0] + mdf.scale)
    assert round(icc, 4) == 0.7445
    assert mdf.llf == pytest.approx(LME4["oxboys_null"]["REML"]["logLik"], abs=1e-4)


def test_oxboys_random_slope_matches_lme4(oxboys):
    mdf = smf.mixedlm("height ~ age", oxboys, groups=oxboys["Subject"], re_formula="~age").fit()
    ref = LME4["oxboys_max"]["REML"]
    assert mdf.llf == pytest.approx(ref["logLik"], abs=1e-4)
    assert mdf.cov_re.loc["Group", "Group"] == pytest.approx(
        vcov("oxboys_max", "REML", "Subject", "(Intercept)"), rel=1e-4
    )
    assert mdf.cov_re.loc["age", "age"] == pytest.approx(
        vcov("oxboys_max", "REML", "Subject", "age"), rel=1e-4
    )
    assert mdf.cov_re.loc["age", "Group"] == pytest.approx(
        vcov("oxboys_max", "REML", "Subject", "(Intercept)", "age"), rel=1e-3
    )
    assert mdf.scale == pytest.approx(ref["sigma"] ** 2, rel=1e-5)
    assert list(mdf.random_effects)[:3] == ["1", "10", "11"]  # statsmodels sorts the labels as given


def test_oxboys_slope_only_is_lme4s_boundary_fit_where_statsmodels_did_not_converge(oxboys):
    md = smf.mixedlm("height ~ age", oxboys, groups=oxboys["Subject"], re_formula="~age - 1")
    assert md.formula == "height ~ age + (0 + age | Subject)"
    with pytest.warns(bm.SingularFitWarning):
        mdf = md.fit()
    assert mdf.converged  # statsmodels printed "Converged: No" with log-likelihood -819.0859
    assert mdf.llf == pytest.approx(-818.9673, abs=1e-4)
    assert mdf.llf > -819.0859
    assert list(mdf.cov_re.index) == ["age"]
    assert mdf.cov_re.loc["age", "age"] == pytest.approx(0.0, abs=1e-4)
    text = str(mdf.summary())
    assert re.search(r"Converged:\s+Yes", text) and re.search(r"age Var\s+0\.000", text)
    assert mdf.random_effects["1"]["age"] == pytest.approx(0.0, abs=1e-6)


# -- simulated schools, the array interface, variance components, Bayes -------------------------------
def test_simulated_schools_from_formula(schools):
    md = MixedLM.from_formula("Y ~ X", groups="school", re_formula="~X", data=schools)
    mdf = md.fit()
    assert np.all(np.abs(mdf.fe_params.to_numpy() - [2.0, 0.5]) < 3 * mdf.bse_fe.to_numpy())
    reference = bm.Model("Y ~ X + (X | school)", schools).fit_reml()
    assert mdf.llf == reference.loglik
    np.testing.assert_allclose(mdf.fe_params, reference.fixed_effects["estimate"], rtol=1e-12)
    vc = reference.variance_components
    assert list(mdf.params.index)[2:] == ["school Var", "school x X Cov", "X Var"]
    np.testing.assert_allclose(
        [mdf.cov_re.loc["school", "school"], mdf.cov_re.loc["X", "school"], mdf.cov_re.loc["X", "X"]],
        [vc["school Var"], vc["school x X Cov"], vc["X Var"]],
        rtol=1e-12,
    )
    assert mdf.scale == pytest.approx(vc["Scale"], rel=1e-12)
    assert list(mdf.random_effects) == list(range(30))  # integer group values stay integers
    assert list(mdf.random_effects[0].index) == ["school", "X"]


def test_array_interface_equals_the_formula(data, mdf):
    exog = pd.DataFrame({"Intercept": 1.0, "Days": data["Days"].astype(float)})
    md = MixedLM(data["Reaction"], exog, data["Subject"], exog_re=exog)
    assert md.formula == "Reaction ~ 1 + Days + (1 + Days | Subject)"
    fit = md.fit()
    assert fit.llf == pytest.approx(mdf.llf, abs=1e-10)
    np.testing.assert_allclose(fit.params, mdf.params, rtol=1e-8)
    assert list(fit.params.index) == [
        "Intercept",
        "Days",
        "Intercept Var",
        "Intercept x Days Cov",
        "Days Var",
    ]
    assert fit.predict(np.array([[1.0, 2.0]]))[0] == pytest.approx(251.405105 + 2 * 10.467286, rel=1e-6)
    default = MixedLM(
        data["Reaction"].to_numpy(), np.column_stack([data["Days"], np.ones(180)]), data["Subject"]
    )
    assert default.exog_names == ["x1", "const"] and default.exog_re_names == ["Group Var"]
    fit = default.fit()
    assert isinstance(fit.params, np.ndarray)  # arrays in, arrays out (as statsmodels)
    assert default.data.param_names == ["x1", "const", "Group Var"]
    assert fit.llf == pytest.approx(-893.2325, abs=1e-4)
    with pytest.raises(bm.DataError, match="exog_vc\\['a'\\] has no matrix for group '308'"):
        MixedLM(data["Reaction"], exog, data["Subject"], exog_vc={"a": {}})


def test_categorical_variance_component_is_a_nested_random_intercept():
    rng = np.random.default_rng(7)
    n_schools, n_classes, n_students = 15, 3, 8
    school = np.repeat(np.arange(n_schools), n_classes * n_students)
    klass = np.tile(np.repeat([1, 2, 3], n_students), n_schools)
    x = rng.normal(size=school.size)
    class_effect = rng.normal(scale=0.8, size=n_schools * n_classes)[school * n_classes + klass - 1]
    y = 1.0 + 0.5 * x + rng.normal(size=n_schools)[school] + class_effect + rng.normal(size=school.size)
    df = pd.DataFrame({"y": y, "x": x, "school": school, "klass": klass})
    md = smf.mixedlm("y ~ x", df, groups="school", re_formula="1", vc_formula={"class": "0 + C(klass)"})
    assert md.formula == "y ~ x + (1 | school) + (1 | school:klass)"
    fit = md.fit()
    reference = bm.Model("y ~ x + (1 | school) + (1 | school:klass)", df).fit_reml()
    assert fit.llf == reference.loglik
    vc = reference.variance_components
    assert fit.vcomp[0] == pytest.approx(vc["school:klass Var"], rel=1e-12)
    assert fit.cov_re.iloc[0, 0] == pytest.approx(vc["school Var"], rel=1e-12)
    assert list(fit.params.index) == ["Intercept", "x", "school Var", "class Var"]
    effects = fit.random_effects[4]
    assert list(effects.index) == ["school", "class[C(klass)[1]]", "class[C(klass)[2]]", "class[C(klass)[3]]"]
    assert effects["class[C(klass)[2]]"] == pytest.approx(
        reference.random_effects("school:klass").loc["4:2", "Intercept"], rel=1e-12
    )
    np.testing.assert_allclose(fit.fittedvalues, reference.fitted())


def test_bayes_true_returns_a_bayesian_fit(data):
    md = smf.mixedlm("Reaction ~ Days", data, groups=data["Subject"], re_formula="~Days")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = md.fit(bayes=True, draws=200, tune=200, chains=2, seed=1, progressbar=False, method="lbfgs")
    assert isinstance(fit, bm.Fit)
    summary = fit.summary()
    assert "sd(Days|Subject)" in summary.index
    assert 200 < summary.loc["Intercept", "mean"] < 300
