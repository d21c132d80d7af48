"""Small-sample inference as a careless user meets it: properties, inputs, the bootstrap cache."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

import bayesmlm as bm

SLEEP = "Reaction ~ Days + (Days | Subject)"


@pytest.fixture(scope="module")
def sleep() -> pd.DataFrame:
    return bm.load_dataset("sleepstudy")


@pytest.fixture(scope="module")
def reml(sleep) -> bm.LikelihoodFit:
    return bm.Model(SLEEP, sleep).fit_reml()


def test_df_and_p_do_not_change_with_the_units_order_or_group_type_of_the_data(sleep, reml):
    base = reml.coef_table("satterthwaite").loc["Days"]
    shifted = sleep.assign(Days=2.0 * sleep["Days"] + 5.0)  # slope halves, its test must not move
    other = bm.Model(SLEEP, shifted).fit_reml().coef_table().loc["Days"]
    np.testing.assert_allclose(other[["df", "t", "p"]], base[["df", "t", "p"]], rtol=1e-5)
    assert other["estimate"] == pytest.approx(base["estimate"] / 2, rel=1e-7)
    shuffled = sleep.sample(frac=1.0, random_state=3).assign(Subject=lambda d: d["Subject"].astype(str))
    again = bm.Model(SLEEP, shuffled).fit_reml()
    for ddf in ("satterthwaite", "kenward-roger"):
        a, b = again.coef_table(ddf), reml.coef_table(ddf)
        np.testing.assert_allclose(a.drop(columns="p"), b.drop(columns="p"), rtol=1e-6)
        # p = 1e-17 for the intercept (t = 36.8): its relative change is t times that of t, so compare
        # log p (a 2e-9 change in t, from the summation order of shuffled rows, moves p by 3e-6)
        np.testing.assert_allclose(np.log(a["p"]), np.log(b["p"]), rtol=1e-6)
    np.testing.assert_allclose(again.anova().to_numpy(float), reml.anova().to_numpy(float), rtol=1e-6)


def test_contrasts_agree_with_the_coefficient_table_in_every_input_form(reml):
    table = reml.coef_table()
    by_dict = reml.contrast({"Days": 1.0}, joint=False).iloc[0]
    by_vector = reml.contrast([0.0, 1.0], joint=False).iloc[0]
    by_frame = reml.contrast(pd.DataFrame({"Days": [1.0]}, index=["slope"]), joint=False)
    for row in (by_dict, by_vector, by_frame.loc["slope"]):
        np.testing.assert_allclose(row.to_numpy(float), table.loc["Days"].to_numpy(float), rtol=1e-10)
    joint = reml.contrast(np.eye(2)).iloc[0]
    assert joint["num_df"] == 2 and joint["F"] > 100
    single = reml.contrast({"Days": 1.0}).iloc[0]
    assert single["F"] == pytest.approx(table.loc["Days", "t"] ** 2, rel=1e-10)
    assert single["den_df"] == pytest.approx(table.loc["Days", "df"], rel=1e-10)
    shifted = reml.contrast({"Days": 1.0}, joint=False, rhs=10.0).iloc[0]
    assert shifted["t"] == pytest.approx((table.loc["Days", "estimate"] - 10) / table.loc["Days", "se"])
    # a rank-deficient joint contrast tests its rank's worth of hypotheses
    assert reml.contrast([[0, 1], [0, 2]]).iloc[0]["num_df"] == 1


@pytest.mark.parametrize(
    "bad, message",
    [
        ([1.0, 2.0, 3.0], "one weight per fixed effect"),
        ({"Dayz": 1.0}, "not fixed effects"),
        ([0.0, 0.0], "not all zero"),
        ([np.nan, 1.0], "finite"),
    ],
)
def test_bad_contrasts_are_refused_with_a_reason(reml, bad, message):
    with pytest.raises(ValueError, match=message):
        reml.contrast(bad)


def test_ddf_names_and_method_limits(sleep, reml):
    assert np.allclose(reml.coef_table("KR")["df"], reml.coef_table("Kenward_Roger")["df"])
    with pytest.raises(ValueError, match="satterthwaite, kenward-roger, asymptotic"):
        reml.coef_table("welch")
    with pytest.raises(ValueError, match="level"):
        reml.coef_table(level=95)
    ml = bm.Model(SLEEP, sleep).fit_ml()
    with pytest.raises(bm.FitError, match="REML fits only"):
        ml.coef_table("kenward-roger")
    assert np.all(np.isfinite(ml.coef_table("satterthwaite")["df"]))  # lmerTest allows ML
    with pytest.raises(ValueError, match="type III"):
        reml.anova(type=1)
    with pytest.raises(ValueError, match="profile, wald, boot"):
        reml.confint("bayes")


def test_summary_says_which_tests_it_prints(sleep, reml):
    text = str(reml.summary())
    assert "t tests with Satterthwaite's df, as lmerTest" in text and "P>|t|" in text
    assert "Wald z tests" in str(bm.Model(SLEEP, sleep).fit_ml().summary())
    assert "Kenward-Roger" in str(reml.summary(ddf="kenward-roger"))
    np.testing.assert_allclose(reml.summary().fixed_effects["df"], [17.0, 17.0], rtol=1e-5)


def test_wald_intervals_of_fixed_effects_are_the_z_intervals(reml):
    wald = reml.confint("wald")
    fixed = reml.fixed_effects
    np.testing.assert_allclose(wald.loc[["Intercept", "Days"], "lower"], fixed["ci_low"], rtol=1e-12)
    sd = wald.loc["sd(Intercept|Subject)"]
    assert sd["lower"] < sd["estimate"] < sd["upper"]


def test_a_boundary_variance_has_a_profile_lower_limit_of_zero():
    data = bm.load_dataset("Oxboys")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", bm.SingularFitWarning)
        fit = bm.Model("height ~ age + (0 + age | Subject)", data).fit_ml()
    assert fit.singular  # lme4 too: the boys' own age slopes are estimated as exactly 0
    est = fit.confint("profile").loc["sd(age|Subject)"]
    assert est["estimate"] == 0.0 and est["lower"] == 0.0 and 1.0 < est["upper"] < 3.0


def test_the_bootstrap_is_seeded_nested_cached_and_the_same_on_two_processes(sleep):
    fit = bm.Model(SLEEP, sleep).fit_reml()
    first = bm.bootstrap(fit, n=12, seed=7, n_jobs=1)
    assert first.t.shape == (12, 6) and first.seed == 7
    replicates = fit.bootstrap_cache._by_seed[7]
    more = bm.bootstrap(fit, n=16, seed=7, n_jobs=2)  # the 4 new refits on two processes
    np.testing.assert_array_equal(more.t.iloc[:12].to_numpy(), first.t.to_numpy())
    assert len(replicates) == 16
    fresh = bm.Model(SLEEP, sleep).fit_reml()
    np.testing.assert_allclose(bm.bootstrap(fresh, n=16, seed=7, n_jobs=1).t, more.t, rtol=1e-12)
    # ICC, R², confint and compare read the same refits: nothing is refitted
    icc = fit.icc(n_boot=16, seed=7)
    assert len(icc.draws) == 16 and len(replicates) == 16
    assert fit.confint("boot", n_boot=16, seed=7).loc["sigma", "lower"] == pytest.approx(
        float(more.t["sigma"].quantile(0.025))
    )
    # a statistic of the refitted fits, as lme4's bootMer(FUN = ...)
    slope_df = bm.bootstrap(
        fit, lambda f: {"df": f.coef_table().loc["Days", "df"], "sigma": f.sigma}, n=4, seed=7
    )
    np.testing.assert_allclose(slope_df.t["sigma"], more.t["sigma"].iloc[:4], rtol=1e-10)
    assert list(slope_df.t0.index) == ["df", "sigma"]
    with pytest.raises(ValueError, match="whole number"):
        bm.bootstrap(fit, n=-1)


def test_the_default_seed_is_drawn_once_per_fit(reml):
    a, b = reml.bootstrap_draws(5), reml.bootstrap_draws(5)
    np.testing.assert_array_equal(a.sigma2, b.sigma2)


def test_report_formats_and_refusals(reml):
    md = bm.report(reml, ci="wald")
    assert "| `Days` | 10.467 |" in md.text and "Satterthwaite" in md.caption
    assert "\\begin{tabular}" in bm.report(reml, format="latex", ci="wald").text
    assert "<table>" in bm.report(reml, format="html", ci="wald").text
    with pytest.raises(ValueError, match="markdown, latex, html"):
        bm.report(reml, format="docx")
    other = bm.Model("Reaction ~ Days + (1 | Subject)", bm.load_dataset("sleepstudy")).fit_reml()
    with pytest.raises(ValueError, match="different models"):
        bm.report([reml, other])


def test_conditional_effects_of_a_reml_fit_are_the_wald_band(reml):
    table = bm.conditional_effects(reml, "Days", n_points=2)
    beta, vcov = reml.fixed_effects["estimate"].to_numpy(), reml.vcov.to_numpy()
    X = np.array([[1.0, 0.0], [1.0, 9.0]])
    np.testing.assert_allclose(table["estimate"], X @ beta)
    se = np.sqrt(np.einsum("ij,jk,ik->i", X, vcov, X))
    np.testing.assert_allclose(table["high"] - table["estimate"], 1.959963984540054 * se, rtol=1e-9)
    with pytest.raises(ValueError, match="not a column"):
        bm.conditional_effects(reml, "Days", by="Diet")


@pytest.fixture(scope="module")
def dyestuff() -> bm.LikelihoodFit:
    return bm.Model("Yield ~ 1 + (1 | Batch)", bm.load_dataset("Dyestuff")).fit_reml()


def test_the_zeta_plot_crosses_plus_minus_z_at_the_profile_interval(dyestuff):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig = bm.plot_profile(dyestuff, grid=4)
    names = ["sd(Intercept|Batch)", "sigma", "Intercept"]
    assert [a.get_title() for a in fig.axes] == names
    ci = dyestuff.confint("profile")
    for a, name in zip(fig.axes, names, strict=True):
        value, zeta = a.lines[0].get_data()
        value, first = np.unique(value, return_index=True)  # the root finder may evaluate a point twice
        zeta = zeta[first]
        assert np.all(np.diff(zeta) > 0)  # ζ rises with the parameter
        # the dashed lines are the 95% ends, and the traced ζ passes ±1.96 there
        ends = [line.get_xdata()[0] for line in a.lines[-2:]]  # after the curve and the z lines
        np.testing.assert_allclose(ends, ci.loc[name, ["lower", "upper"]], rtol=1e-12)
        np.testing.assert_allclose(np.interp(ends, value, zeta), [-1.959964, 1.959964], atol=0.02)
        # ζ is 0 at the ML estimate (lme4 profiles the ML deviance, also of a REML fit)
        ml = dyestuff.small_sample.profile(0.99, 4).estimates[name]
        assert np.interp(ml, value, zeta) == pytest.approx(0.0, abs=1e-9)
        assert ml == pytest.approx(dyestuff.refit(reml=False).confint("wald").loc[name, "estimate"], rel=1e-5)
    plt.close(fig)
    fig = bm.plot_profile(dyestuff, which=["sigma"])
    assert [a.get_title() for a in fig.axes] == ["sigma"]  # the same profile, kept with the fit
    plt.close(fig)
    with pytest.raises(ValueError, match="no profile for"):
        bm.plot_profile(dyestuff, which=["tau"])


def test_conditional_effects_by_a_factor_and_by_a_number():
    data = bm.load_dataset("BodyWeight")
    fit = bm.Model("weight ~ Time * Diet + (Time | Rat)", data).fit_reml()
    table = bm.conditional_effects(fit, "Time", by="Diet", n_points=3)
    assert list(pd.unique(table["by"])) == list(data["Diet"].cat.categories) and len(table) == 9
    beta = fit.fixed_effects["estimate"]
    end = table[table["Time"] == table["Time"].max()].set_index("by")["estimate"]
    t = float(data["Time"].max())
    base = beta["Intercept"] + beta["Time"] * t
    np.testing.assert_allclose(end.iloc[0], base, rtol=1e-12)  # diet 1: the reference level
    np.testing.assert_allclose(end.iloc[2], base + beta["Diet[3]"] + beta["Time:Diet[3]"] * t, rtol=1e-12)
    fig = bm.plot_conditional_effects(fit, "Time", by="Diet", show_data=False)
    assert len(fig.axes[0].lines) == 3 and len(fig.axes[0].collections) == 3  # a line and band per diet
    # a numeric `by`: the lines at its mean and mean ± sd (brms)
    rt = bm.conditional_effects(fit, "Time", by="Time", n_points=2)
    m, s = float(data["Time"].mean()), float(data["Time"].std())
    np.testing.assert_allclose(sorted(pd.unique(rt["by"])), [m - s, m, m + s])
    import matplotlib.pyplot as plt

    plt.close(fig)


def test_a_long_bootstrap_shows_its_progress_on_stderr(dyestuff, capsys):
    bm.bootstrap(dyestuff, n=3, seed=2, n_jobs=1, progress=True)
    err = capsys.readouterr().err
    assert "bootstrap: 3/3 refits" in err and err.endswith("\n")
    bm.bootstrap(dyestuff, n=3, seed=2, n_jobs=1, progress=True)  # cached: no refits, no bar
    bm.bootstrap(dyestuff, n=2, seed=4, n_jobs=1, progress=False)
    assert capsys.readouterr().err == ""
