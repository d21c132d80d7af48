"""Small-sample inference for REML fits against lmerTest, pbkrtest, lme4 and performance.

Reference numbers: tests/small_sample_reference.py. lmerTest's and pbkrtest's numbers are computed at
lme4's optimum, which bobyqa leaves slightly short of the converged one (bayesmlm's REML criterion is
lower on every model below). The methods are therefore checked twice: at lme4's own optimum (theta
rebuilt from lme4's VarCorr: tests/lme4_reference.py, and BODYWEIGHT_LME4), where they agree to 1e-5
and better, and at bayesmlm's optimum, against the done-when tolerances (1e-3 relative for df and p;
2e-3 for profile limits). Where lme4's point is far enough from the optimum to move df or p by more
than that (BodyWeight, max|grad| 0.017; Penicillin's Satterthwaite p), the reference at our optimum is
lmerTest/pbkrtest at a converged lme4 fit (CONVERGED).
"""

from __future__ import annotations

import dataclasses
import warnings
from functools import cache

import numpy as np
import pandas as pd
import pytest

import bayesmlm as bm
from bayesmlm.reml.objective import compile_at_theta
from tests.lme4_reference import LME4
from tests.small_sample_reference import (
    BODYWEIGHT_LME4,
    CONVERGED,
    R2,
    R2_CONVERGED,
    SMALL_SAMPLE,
    bayesmlm_name,
)

MODELS = list(SMALL_SAMPLE)
WITH_ANOVA = [m for m in MODELS if "anova_satterthwaite" in SMALL_SAMPLE[m]]


@cache
def fit(model_id: str) -> bm.LikelihoodFit:
    entry = SMALL_SAMPLE[model_id] if model_id in SMALL_SAMPLE else R2[model_id]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", bm.SingularFitWarning)
        return bm.Model(entry["formula"], bm.load_dataset(entry["data"])).fit_reml()


@cache
def fit_at_lme4(model_id: str) -> bm.LikelihoodFit:
    """The same model at lme4's REML optimum (theta from lme4's variance components)."""
    f = fit(model_id)
    ref = LME4[model_id]["REML"] if model_id in LME4 else BODYWEIGHT_LME4
    s2 = ref["sigma"] ** 2
    theta = []
    for factor in f.structure.factors:
        names = list(factor.term_names)
        cov = np.zeros((factor.q, factor.q))
        for row in ref["varcorr"]:
            if row["grp"] not in factor.block_labels:  # "Subject", "Subject.1" for (Days || Subject)
                continue
            i = names.index(bayesmlm_name(row["var1"]))
            j = i if row["var2"] is None else names.index(bayesmlm_name(row["var2"]))
            cov[i, j] = cov[j, i] = row["vcov"]
        theta.extend(np.linalg.cholesky(cov / s2)[factor.lower_index])
    # in the user's own columns: the fit's statistics are centred and scaled (bayesmlm.design.scaling)
    opt = dataclasses.replace(f.opt, theta=np.array(theta), theta_internal=None)
    return bm.LikelihoodFit(f.design, f.structure, f.small_sample.stats, opt)


def reference_table(model_id: str, kind: str, converged: bool = False) -> pd.DataFrame:
    """The reference at lme4's optimum, or (``converged``) at a converged lme4 fit where there is one."""
    rows = (CONVERGED if converged and model_id in CONVERGED else SMALL_SAMPLE)[model_id][kind]
    cols = ["se", "df", "p"] if not kind.startswith("anova") else ["F", "num_df", "den_df", "p"]
    return pd.DataFrame(rows, index=cols).T.rename(index=bayesmlm_name)


def rel(a, b) -> float:
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    return float(np.max(np.abs(a / b - 1)))


@pytest.mark.parametrize("model_id", MODELS)
@pytest.mark.parametrize(
    "ddf, kind", [("satterthwaite", "satterthwaite"), ("kenward-roger", "kenward_roger")]
)
def test_t_tests_at_lme4s_optimum_equal_lmertest_and_pbkrtest(model_id, ddf, kind):
    ours, ref = fit_at_lme4(model_id).coef_table(ddf), reference_table(model_id, kind)
    ours = ours.loc[ref.index]
    assert rel(ours["se"], ref["se"]) < 1e-6
    assert rel(ours["df"], ref["df"]) < 1e-5
    assert rel(ours["p"], ref["p"]) < 1e-4


@pytest.mark.parametrize("model_id", MODELS)
def test_t_tests_at_our_optimum_within_the_done_when_tolerance(model_id):
    f = fit(model_id)
    if model_id in CONVERGED:  # lme4's point moves df or p by more than 1e-3; ours is the lower criterion
        crit = compile_at_theta("REML", f.structure, f.small_sample.stats)
        assert f.deviance < float(crit(fit_at_lme4(model_id).theta)["deviance"]) - 1e-9
    for ddf, kind in (("satterthwaite", "satterthwaite"), ("kenward-roger", "kenward_roger")):
        ref = reference_table(model_id, kind, converged=True)
        ours = f.coef_table(ddf).loc[ref.index]
        assert rel(ours["se"], ref["se"]) < 1e-3
        assert rel(ours["df"], ref["df"]) < 1e-3
        assert rel(ours["p"], ref["p"]) < 1e-3


def test_lme4s_unconverged_points_are_why_the_converged_references_are_used():
    # at our optimum, against lmerTest at lme4's default fit: Penicillin's Satterthwaite p is 1.2e-3
    # off (df 5.48710 vs 5.48659) and BodyWeight's intercept df 0.8% (13.000 vs 13.106)
    pen = fit("penicillin_crossed").coef_table().loc["Intercept"]
    ref = reference_table("penicillin_crossed", "satterthwaite").loc["Intercept"]
    assert 1e-3 < rel(pen["p"], ref["p"]) < 1.3e-3
    bw = fit("bodyweight").coef_table().loc["Intercept"]
    assert rel(bw["df"], reference_table("bodyweight", "satterthwaite").loc["Intercept", "df"]) > 5e-3


@pytest.mark.parametrize("model_id", WITH_ANOVA)
def test_type3_anova_equals_lmertest(model_id):
    for ddf, kind in (("satterthwaite", "anova_satterthwaite"), ("kenward-roger", "anova_kenward_roger")):
        ref = reference_table(model_id, kind)
        at_lme4 = fit_at_lme4(model_id).anova(ddf).loc[ref.index]
        assert rel(at_lme4["F"], ref["F"]) < 1e-6 and (at_lme4["num_df"] == ref["num_df"]).all()
        assert rel(at_lme4["den_df"], ref["den_df"]) < 1e-5 and rel(at_lme4["p"], ref["p"]) < 1e-4
        ref = reference_table(model_id, kind, converged=True)
        ours = fit(model_id).anova(ddf).loc[ref.index]
        assert rel(ours["F"], ref["F"]) < 1e-3 and rel(ours["den_df"], ref["den_df"]) < 1e-3
        assert rel(ours["p"], ref["p"]) < 1e-3 and (ours["num_df"] == ref["num_df"]).all()


def test_bodyweight_converged_fit():
    """lme4 stops at max|grad| 0.017 on BodyWeight; bayesmlm converges to a lower REML criterion.

    There the design's df are exact: 16 rats in 3 diets leave 13 between-rat df for every
    coefficient, which Satterthwaite reaches (lmerTest: 13.106 and 13.004 at lme4's point, 13.0000
    at a converged lme4 fit) and Kenward-Roger gives as pbkrtest (13).
    """
    f = fit("bodyweight")
    assert f.converged and f.opt.gradient_norm < 1e-6
    sat, kr = f.coef_table("satterthwaite"), f.coef_table("kenward-roger")
    np.testing.assert_allclose(sat["df"], 13.0, rtol=1e-5)
    ref_kr = reference_table("bodyweight", "kenward_roger")
    np.testing.assert_allclose(kr.loc[ref_kr.index, "df"], ref_kr["df"], rtol=1e-9)
    L = bm.reml.anova.type3_contrasts(f.design)
    np.testing.assert_allclose(L["Time"], [[0, 1, 0, 0, 1 / 3, 1 / 3]], atol=1e-12)
    np.testing.assert_allclose(L["Diet"], [[0, 0, 1, 0, 0, 0], [0, 0, 0, 1, 0, 0]], atol=1e-12)
    table = f.anova("kenward-roger")
    assert list(table.index) == ["Time", "Diet", "Time:Diet"] and list(table["num_df"]) == [1, 2, 2]
    np.testing.assert_allclose(table["den_df"], 13.0, rtol=1e-9)


def test_type3_anova_does_not_depend_on_the_factor_coding():
    data = bm.load_dataset("BodyWeight")
    treatment = bm.Model("weight ~ Time * Diet + (Time | Rat)", data).fit_reml().anova()
    summed = bm.Model("weight ~ Time * C(Diet, Sum) + (Time | Rat)", data).fit_reml().anova()
    np.testing.assert_allclose(summed[["F", "num_df"]], treatment[["F", "num_df"]], rtol=1e-6)
    # the two fits stop at optima that agree to the optimiser's tolerance, and the df with them
    np.testing.assert_allclose(summed[["den_df", "p"]], treatment[["den_df", "p"]], rtol=1e-4)


@pytest.mark.parametrize("model_id", [m for m in MODELS if "profile_ci95" in SMALL_SAMPLE[m]])
def test_profile_intervals_equal_lme4s(model_id):
    ref = pd.DataFrame(SMALL_SAMPLE[model_id]["profile_ci95"], index=["lower", "upper"]).T
    ours = fit(model_id).confint("profile").loc[[bayesmlm_name(n) for n in ref.index]]
    for col in ("lower", "upper"):  # lme4 interpolates splines through its profile; we find the roots
        scale = np.maximum(np.abs(ref[col].to_numpy()), 1.0)  # absolute for a correlation near 0
        assert float(np.max(np.abs(ours[col].to_numpy() - ref[col].to_numpy()) / scale)) < 2e-3


@pytest.mark.parametrize("model_id", list(R2))
def test_r2_and_icc_equal_performance(model_id):
    f = fit(model_id)
    r2, icc = f.r2(), f.icc(n_boot=0)
    ref = R2_CONVERGED.get(model_id, R2[model_id])  # BodyWeight: performance on the converged lme4 fit
    assert rel(r2["marginal"], ref["r2_marginal"]) < 1e-3
    assert rel(r2["conditional"], ref["r2_conditional"]) < 1e-3
    adjusted = icc["adjusted"] if "adjusted" in icc.summary.index else icc["Subject"]
    assert rel(adjusted, ref["icc_adjusted"]) < 1e-3
    conditional = (
        icc["conditional"] if "conditional" in icc.summary.index else icc["Subject"] * (1 - r2["marginal"])
    )
    assert rel(conditional, ref["icc_conditional"]) < 1e-3
    if model_id in R2_CONVERGED:  # at lme4's default fit the conditional ICC is 0.5% lower
        assert 3e-3 < rel(conditional, R2[model_id]["icc_conditional"]) < 1e-2


def test_kenward_roger_se_is_the_adjusted_one_on_an_unbalanced_design():
    """On the balanced reference designs pbkrtest's adjusted se equals the plain one; here it does not.

    sleepstudy without every 7th row and without days 5-9 of subjects 308 and 309 (146 rows). The
    reference is lmerTest 3.1-3 / pbkrtest 0.5.2 (R 4.2.2) at a converged lme4 fit (lme4 1.1-31 refitted
    with nloptwrap; REML criterion 1412.0330426).
    """
    data = bm.load_dataset("sleepstudy")
    row = np.arange(1, len(data) + 1)
    dropped = (row % 7 == 0) | (data["Subject"].astype(str).isin(["308", "309"]) & (data["Days"] > 4))
    f = bm.Model("Reaction ~ Days + (Days | Subject)", data[~dropped]).fit_reml()
    assert f.design.n == 146 and f.deviance == pytest.approx(1412.0330426, abs=1e-6)
    reference = {  # term: (se, df, p)
        "satterthwaite": {
            "Intercept": (6.43512618984066, 16.3212694367464, 1.49386428330581e-17),
            "Days": (1.5966984167665, 14.3617927269573, 1.00746405526771e-05),
        },
        "kenward-roger": {
            "Intercept": (6.44457278030575, 16.915885523149, 5.25273097493391e-18),
            "Days": (1.60496060569316, 16.301046821418, 5.67063991662318e-06),
        },
    }
    for ddf, rows in reference.items():
        ref = pd.DataFrame(rows, index=["se", "df", "p"]).T
        ours = f.coef_table(ddf).loc[ref.index]
        assert rel(ours["se"], ref["se"]) < 1e-6
        assert rel(ours["df"], ref["df"]) < 1e-5 and rel(ours["p"], ref["p"]) < 1e-4
    kr, plain = f.coef_table("kenward-roger")["se"], f.fixed_effects["se"]
    assert (kr / plain - 1 > 1e-3).all()  # the small-sample bias correction inflates the se
