"""Bayesian GLMMs: the PyMC model, default link-scale priors, NUTS fits against glmer, predictions.

The cbpp binomial fit (2 chains x 300 draws) is compared with lme4 1.1-31's glmer (Laplace) numbers
at a Bayesian tolerance: posterior means within 0.25 of the estimates on the link scale (the issue's
criterion). A Poisson model with an LKJ-correlated block ``(x | g)`` on simulated data is compared with
our glmer-exact Laplace fit. Few draws keep this file's sampling to a few seconds after compilation.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd
import pytest

import bayesmlm as bm
from bayesmlm.bayes.glmm_priors import default_glmm_priors
from bayesmlm.bayes.nesting import level_constant, nested_parents

CBPP = "cbind(incidence, size - incidence) ~ period + (1 | herd)"
# lme4 1.1-31 glmer(cbpp), Laplace: fixed effects and sd(herd)
GLMER_CBPP_FIXEF = [-1.39834286447115, -0.991924974975739, -1.12821621594334, -1.57974541364919]
GLMER_CBPP_SD_HERD = 0.642069927729179
SMALL = dict(draws=300, tune=300, chains=2, cores=1, progressbar=False)


def _quiet_fit(model: bm.Model, seed: int):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # few draws: ESS warnings are expected
        return model.fit(seed=seed, **SMALL)


@pytest.fixture(scope="module")
def cbpp_fit():
    return _quiet_fit(bm.Model(CBPP, bm.load_dataset("cbpp"), family="binomial"), seed=11)


def _poisson_slopes() -> pd.DataFrame:
    rng = np.random.default_rng(5)
    groups, per = 25, 12
    g = np.repeat(np.arange(groups), per)
    x = rng.normal(size=groups * per)
    cov = np.array([[0.5**2, 0.3 * 0.5 * 0.3], [0.3 * 0.5 * 0.3, 0.3**2]])
    b = rng.multivariate_normal([0, 0], cov, size=groups)
    eta = 1.0 + 0.4 * x + b[g, 0] + b[g, 1] * x
    return pd.DataFrame({"y": rng.poisson(np.exp(eta)), "x": x, "g": pd.Categorical(g.astype(str))})


@pytest.fixture(scope="module")
def poisson_model():
    return bm.Model("y ~ x + (x | g)", _poisson_slopes(), family="poisson")


@pytest.fixture(scope="module")
def poisson_fit(poisson_model):
    return _quiet_fit(poisson_model, seed=3)


def test_cbpp_posterior_means_near_glmer(cbpp_fit):
    s = cbpp_fit.summary()
    assert list(s.index) == ["Intercept", "period[2]", "period[3]", "period[4]", "sd(Intercept|herd)"]
    assert "sigma" not in s.index
    np.testing.assert_allclose(s["mean"].iloc[:4], GLMER_CBPP_FIXEF, atol=0.25)
    assert abs(s.loc["sd(Intercept|herd)", "mean"] - GLMER_CBPP_SD_HERD) < 0.25
    assert (s["rhat"] < 1.05).all()
    assert cbpp_fit.info["family"] == "binomial" and cbpp_fit.info["link"] == "logit"


def test_cbpp_icc_is_latent_scale(cbpp_fit):
    icc = cbpp_fit.icc()
    assert "π²/3" in icc.method and "π²/3" in icc.note
    sd = cbpp_fit.parameter_draws()["sd(Intercept|herd)"].ravel()
    expected = sd**2 / (sd**2 + math.pi**2 / 3)
    assert icc["herd"] == pytest.approx(float(np.median(expected)), rel=1e-6)


def test_cbpp_predictions_scales_and_new_levels(cbpp_fit):
    p = cbpp_fit.predict(return_draws=True)
    eta = cbpp_fit.predict(scale="link", return_draws=True)
    assert p.shape == (600, 56) and ((p > 0) & (p < 1)).all()
    np.testing.assert_allclose(p, 1 / (1 + np.exp(-eta)), rtol=1e-10)
    new = pd.DataFrame({"period": pd.Categorical(["1", "1"]), "herd": ["new", "new"]})
    drawn = cbpp_fit.predict(new, return_draws=True, seed=1)
    # a new herd's effect is drawn from the population: wider than the population-level prediction
    pop = cbpp_fit.predict(new, include_random=False, return_draws=True)
    assert np.std(drawn[:, 0]) > np.std(pop[:, 0])
    y = cbpp_fit.predict(kind="response", return_draws=True, seed=2)
    size = bm.load_dataset("cbpp")["size"].to_numpy()
    assert (y >= 0).all() and (y <= size).all() and np.allclose(y, np.round(y))


def test_cbpp_loo_and_pointwise_loglik(cbpp_fit):
    ll = cbpp_fit.idata["log_likelihood"]["y"]
    assert ll.shape == (2, 300, 56) and np.isfinite(ll.values).all()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        loo = cbpp_fit.loo()
    assert np.isfinite(loo.elpd) and -140 < loo.elpd < -80


def test_collapsed_path_refused_for_glmm():
    m = bm.Model(CBPP, bm.load_dataset("cbpp"), family="binomial")
    with pytest.raises(bm.FitError, match="only a Gaussian response"):
        m.fit(method="collapsed", draws=10, tune=10, chains=1, progressbar=False)


def test_poisson_lkj_block_near_laplace(poisson_model, poisson_fit):
    post = poisson_fit.posterior
    assert "cor_g" in post and post["cor_g"].shape[-2:] == (2, 2)
    s = poisson_fit.summary()
    assert "cor(Intercept,x|g)" in s.index
    ml = poisson_model.fit_ml()
    np.testing.assert_allclose(s["mean"].iloc[:2], ml.fixed_effects["estimate"], atol=0.25)
    vc = ml.variance_components
    sd_ml = np.sqrt([v for k, v in vc.items() if "Var" in k or "var" in k.lower()][:2])
    np.testing.assert_allclose(s.loc[["sd(Intercept|g)", "sd(x|g)"], "mean"], sd_ml, atol=0.25)
    assert (s["rhat"] < 1.05).all()
    assert "log(1 + 1/λ)" in poisson_fit.icc().method


def test_poisson_rate_prediction_is_exp_link(poisson_fit):
    rate = poisson_fit.predict(return_draws=True)
    eta = poisson_fit.predict(scale="link", return_draws=True)
    np.testing.assert_allclose(rate, np.exp(eta), rtol=1e-10)


def test_default_priors_documented_values():
    m = bm.Model(CBPP, bm.load_dataset("cbpp"), family="binomial")
    table = m.priors
    assert "sigma" not in set(table.index) | set(table.get("parameter", []))
    ps = m.prior_set
    assert str(ps["Intercept"]) == "Normal(mu=0, sigma=2.5)"
    assert str(ps["sd(Intercept|herd)"]) == "HalfStudentT(nu=3, sigma=2.5)"
    # a coefficient's prior scale is 2.5 / sd(x): rescaling x rescales it
    x = np.asarray(m.design.X)[:, 1]
    assert ps["period[2]"].params[1][1] == pytest.approx(2.5 / np.std(x, ddof=1), rel=1e-3)


def test_user_prior_override_and_shape_class():
    g = bm.load_dataset("grouseticks")
    m = bm.Model(
        "TICKS ~ YEAR + cHEIGHT + (1 | LOCATION)",
        g,
        family="negativebinomial",
        priors={"shape": bm.Exponential(0.5), "sd": bm.HalfNormal(1.0)},
    )
    ps = m.prior_set
    assert str(ps["shape"]) == "Exponential(lam=0.5)" and ps.source["shape"] == "user"
    assert str(ps["sd(Intercept|LOCATION)"]) == "HalfNormal(sigma=1)"
    names = sorted(v.name for v in m.build().free_RVs)
    assert "shape" in names and "sigma" not in names
    with pytest.raises(bm.PriorError):
        _ = bm.Model(
            "TICKS ~ YEAR + (1 | LOCATION)", g, family="negativebinomial", priors={"shape": bm.Normal(0, 1)}
        ).prior_set
    assert default_glmm_priors(m.design, m.structure, m.family).source["shape"] == "default"


def test_nesting_detected_and_hierarchical_centring_builds():
    g = bm.load_dataset("grouseticks")
    m = bm.Model(
        "TICKS ~ YEAR + cHEIGHT + (1 | BROOD) + (1 | LOCATION)",
        g,
        family="poisson",
        parameterization="centered",
    )
    parents = nested_parents(m.structure, {"BROOD", "LOCATION"})
    assert set(parents) == {"BROOD"}
    brood, loc = m.structure.factor("BROOD"), m.structure.factor("LOCATION")
    np.testing.assert_array_equal(parents["BROOD"][1][brood.codes], loc.codes)
    _, constant = level_constant(np.asarray(m.design.X), brood.codes, brood.n_levels)
    assert constant.tolist() == [True, True, True, True]  # year and height are brood-level
    model = m.build()
    assert {"c__BROOD", "c__LOCATION"} <= {v.name for v in model.free_RVs}


def test_compare_estimates_glmm_beside_laplace(cbpp_fit):
    ml = bm.Model(CBPP, bm.load_dataset("cbpp"), family="binomial").fit_ml()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        table = bm.compare_estimates(cbpp_fit, ml, n_boot=4, seed=1)
    assert list(table.index) == ["Intercept", "period[2]", "period[3]", "period[4]", "sd(Intercept|herd)"]
    np.testing.assert_allclose(table["reml"].iloc[:4], GLMER_CBPP_FIXEF, rtol=2e-3)
    assert table.loc["sd(Intercept|herd)", "reml"] == pytest.approx(GLMER_CBPP_SD_HERD, rel=1e-2)
    assert table.loc["Intercept", "reml_interval"] == "Wald"
    assert (abs(table["median"] - table["reml"]) < 0.25).all()


def test_compare_estimates_negative_binomial_has_shape_no_sigma():
    from bayesmlm.reml_vs_bayes import _named

    m = bm.Model(
        "TICKS ~ YEAR + cHEIGHT + (1 | LOCATION)", bm.load_dataset("grouseticks"), family="negativebinomial"
    )
    ml = m.fit_ml()
    named = _named(ml, ml.population_draws(), "sd")
    assert "sigma" not in named and "sd(Intercept|LOCATION)" in named
    assert float(named["sd(Intercept|LOCATION)"][0]) ** 2 == pytest.approx(0.798603042102027, rel=1e-2)


def test_plots_accept_glmm_fits(cbpp_fit):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ml = bm.Model(CBPP, bm.load_dataset("cbpp"), family="binomial").fit_ml()
    for fig in (bm.plot_icc(cbpp_fit), bm.plot_caterpillar(cbpp_fit), bm.plot_shrinkage(cbpp_fit)):
        assert len(fig.axes) >= 1
        plt.close(fig)
    fig = bm.plot_compare(cbpp_fit, ml, n_boot=4, seed=1)
    labels = " ".join(t.get_text() for ax in fig.axes for t in ax.get_yticklabels())
    assert "sigma" not in labels
    plt.close(fig)


def test_rootogram_frequencies(poisson_fit, cbpp_fit):
    from bayesmlm.plots.discrete import rootogram_table

    t = rootogram_table(poisson_fit, max_count=15, seed=1)
    y = poisson_fit.model.design.y
    assert t["count"].tolist() == list(range(16))
    assert t["observed"].sum() == len(y) and t["observed"][0] == np.sum(y == 0)
    assert t["expected"].sum() == pytest.approx(len(y))
    # a fitted Poisson model predicts the observed frequencies roughly: within 40% of rows in total
    assert np.abs(t["observed"] - t["expected"]).sum() < 0.4 * len(y)
    fig = bm.plot_rootogram(poisson_fit, max_count=15, seed=1)
    assert fig.axes[0].get_xlabel() == "count"
    with pytest.raises(bm.FitError, match="plot_calibration"):
        bm.plot_rootogram(cbpp_fit)


def test_calibration_bins(cbpp_fit, poisson_fit):
    from bayesmlm.plots.discrete import calibration_table

    t = calibration_table(cbpp_fit, n_bins=5)
    data = bm.load_dataset("cbpp")
    assert t["trials"].sum() == data["size"].sum()
    assert ((t["predicted"] > 0) & (t["predicted"] < 1)).all()
    assert (t["low"] <= t["observed"]).all() and (t["observed"] <= t["high"]).all()
    # calibrated in the large: trial-weighted mean prediction equals the observed rate within 0.02
    rate = data["incidence"].sum() / data["size"].sum()
    assert np.sum(t["predicted"] * t["trials"]) / t["trials"].sum() == pytest.approx(rate, abs=0.02)
    assert len(bm.plot_calibration(cbpp_fit, n_bins=5).axes) == 1
    with pytest.raises(bm.FitError, match="plot_rootogram"):
        bm.plot_calibration(poisson_fit)


def test_save_load_round_trip(cbpp_fit, tmp_path):
    path = cbpp_fit.save(tmp_path / "cbpp.nc")
    back = bm.load_fit(path)
    assert type(back).__name__ == "GeneralizedFit" and back.model.family == cbpp_fit.model.family
    np.testing.assert_allclose(back.summary()["mean"], cbpp_fit.summary()["mean"], rtol=1e-12)
    np.testing.assert_allclose(
        back.predict(return_draws=True), cbpp_fit.predict(return_draws=True), rtol=1e-12
    )
    assert back.icc().method == cbpp_fit.icc().method


GROUSE = "TICKS ~ YEAR + cHEIGHT + (1 | BROOD) + (1 | LOCATION)"


def test_per_level_centring_from_the_laplace_fit():
    from bayesmlm.bayes.level_centring import LEVEL_RATIO, level_ratios

    g = bm.load_dataset("grouseticks")
    auto = bm.Model(GROUSE, g, family="poisson")  # the default integrates the locations out
    assert auto.parameterization == {"BROOD": "mixed", "LOCATION": "integrated"}
    assert set(auto.centred_levels) == {"BROOD"}
    m = bm.Model(GROUSE, g, family="poisson", parameterization={"BROOD": "mixed", "LOCATION": "mixed"})
    assert m.parameterization == {"BROOD": "mixed", "LOCATION": "mixed"}
    ml = m.fit_ml()
    rho = level_ratios(m.structure, ml.theta, ml.working_weights)
    brood = m.structure.factor("BROOD")
    # a brood's ratio is sd(BROOD)^2 times the sum of its rows' IRLS weights (mu_i for the log link)
    w_sum = np.bincount(brood.codes, weights=ml.working_weights, minlength=brood.n_levels)
    np.testing.assert_allclose(rho["BROOD"], ml.theta[0] ** 2 * w_sum, rtol=1e-12)
    masks = m.centred_levels
    np.testing.assert_array_equal(masks["BROOD"], rho["BROOD"] > LEVEL_RATIO)
    assert int(masks["BROOD"].sum()) == 89 and int(masks["LOCATION"].sum()) == 12
    model = m.build()
    shapes = {v.name: v.type.shape for v in model.free_RVs}
    assert shapes["c__BROOD"] == (89,) and shapes["z__BROOD"] == (29,) and shapes["c__LOCATION"] == (12,)
    # one block forced, the other per level
    part = bm.Model(GROUSE, g, family="poisson", parameterization={"BROOD": "mixed", "LOCATION": "centered"})
    assert part.parameterization["LOCATION"] == "centered" and set(part.centred_levels) == {"BROOD"}
    with pytest.raises(bm.ArgumentError, match="generalized families"):
        _ = bm.Model(
            "Reaction ~ Days + (1 | Subject)",
            bm.load_dataset("sleepstudy"),
            parameterization={"Subject": "mixed"},
        ).parameterization


def test_mixed_block_is_the_same_model():
    """Per-level centring changes the parameterisation only: same effects, same likelihood, and the
    prior differs by the Jacobian of r = z * sd on the non-centred levels alone."""
    g = bm.load_dataset("grouseticks")
    r = np.random.default_rng(0).normal(0, 0.5, 118)
    sd = 0.8
    logp, lik = {}, {}
    for how in ("mixed", "noncentered"):
        m = bm.Model(GROUSE, g, family="poisson", parameterization={"BROOD": how, "LOCATION": "noncentered"})
        model = m.build()
        point = model.initial_point()
        point["sd__BROOD_log__"] = np.asarray(np.log(sd))
        (r_values,) = model.replace_rvs_by_values([model["r_BROOD"]])
        effects = model.compile_fn(r_values, inputs=model.value_vars, on_unused_input="ignore")
        if how == "mixed":
            mask = m.centred_levels["BROOD"]
            point["z__BROOD"] = r[~mask] / sd
            point["c__BROOD"] = np.zeros(mask.sum())
            at_zero = effects(point)[:, 0]  # r = c - mean: at c = 0, minus each centred level's prior mean
            point["c__BROOD"] = r[mask] - at_zero[mask]
            n_centred = int(mask.sum())
        else:
            point["z__BROOD"] = (r / sd)[:, None]  # dims (BROOD, BROOD_term)
        np.testing.assert_allclose(effects(point)[:, 0], r, atol=1e-10)
        logp[how] = float(model.compile_logp(jacobian=False)(point))
        lik[how] = float(model.compile_logp(vars=[model["y"]])(point))
    assert lik["mixed"] == pytest.approx(lik["noncentered"], rel=1e-12)
    assert logp["mixed"] == pytest.approx(logp["noncentered"] - n_centred * np.log(sd), rel=1e-12)


@pytest.mark.slow
def test_grouseticks_default_fit_meets_the_issue_target():
    # brms 2.18's default fit of this model: 206 divergences, R-hat 4.29 (the issue); our default
    # before the locations were integrated out (both blocks non-centred): 1,084 divergences (seed 1)
    m = bm.Model(GROUSE, bm.load_dataset("grouseticks"), family="poisson")
    assert m.parameterization == {"BROOD": "mixed", "LOCATION": "integrated"}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = m.fit(seed=1, progressbar=False)  # the defaults: 4 chains x 1,000 draws
    s = fit.summary()
    assert int(fit.idata["sample_stats"]["diverging"].sum()) == 0
    assert (s["rhat"] <= 1.01).all() and (s["ess_bulk"] >= 400).all()
    # lme4 1.1-31 glmer (Laplace) of this model: fixed effects and their standard errors
    # (../shared/reference/glmer_reference.json, as in tests/test_glmm_ml.py); the posterior means
    # lie within half a standard error of them
    fixef = [0.466862288485026, 1.16558234934436, -0.977932492585884, -0.0235461080749959]
    se = [0.192020845935789, 0.229787404413648, 0.25482007038963, 0.00346514028255559]
    means = s.loc[["Intercept", "YEAR[96]", "YEAR[97]", "cHEIGHT"], "mean"].to_numpy()
    assert (np.abs(means - np.array(fixef)) < 0.5 * np.array(se)).all()
