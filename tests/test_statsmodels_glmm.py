"""statsmodels' BinomialBayesMixedGLM / PoissonBayesMixedGLM entry points, run with the import changed.

``fit_map()`` is glmer's Laplace ML fit here, so its numbers are lme4 1.1-31's (grouseticks, Poisson,
from ``glmer_reference.json``); ``fit_vb()`` samples with NUTS (few draws: a Bayesian tolerance). The
results' types and shapes are checked against statsmodels 0.15 run side by side on the same data, and
their numbers against our own Laplace and NUTS fits.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

import bayesmlm as bm
from bayesmlm.statsmodels_api.bayes_glm import component_term

sm_glmm = pytest.importorskip("statsmodels.genmod.bayes_mixed_glm")
GROUSE_VC = {"BROOD": "0 + C(BROOD)", "LOCATION": "0 + C(LOCATION)"}

# lme4 1.1-31 glmer(TICKS ~ YEAR + cHEIGHT + (1 | BROOD) + (1 | LOCATION), poisson)
GROUSE_FIXEF = [0.466862288485026, 1.16558234934436, -0.977932492585884, -0.0235461080749959]
GROUSE_SE = [0.192020845935789, 0.229787404413648, 0.25482007038963, 0.00346514028255559]
GROUSE_SD = {"BROOD": 0.769651105183605, "LOCATION": 0.574136845756161}


def _cbpp_binary() -> pd.DataFrame:
    d = bm.load_dataset("cbpp")
    rows = d.loc[d.index.repeat(d["size"])].copy()
    rows["y"] = np.concatenate(
        [np.r_[np.ones(i), np.zeros(n - i)] for i, n in zip(d["incidence"], d["size"], strict=True)]
    )
    return rows.reset_index(drop=True)


def test_component_translation_and_errors():
    assert component_term("a", " 0 + C(g) ") == "(1 | g)"
    assert component_term("b", "0 + x:C(g)") == "(0 + x | g)"
    for bad in ("C(g)", "0 + g", "0 + C(g):C(h)", "1 + C(g)"):
        with pytest.raises(bm.FormulaError, match="0 \\+ C\\(group\\)"):
            component_term("a", bad)
    with pytest.raises(bm.FormulaError, match="vc_formulas must be a dict"):
        bm.PoissonBayesMixedGLM.from_formula("TICKS ~ YEAR", "0 + C(BROOD)", bm.load_dataset("grouseticks"))


def test_poisson_fit_map_is_glmer():
    vc = {"BROOD": "0 + C(BROOD)", "LOCATION": "0 + C(LOCATION)"}
    model = bm.PoissonBayesMixedGLM.from_formula("TICKS ~ YEAR + cHEIGHT", vc, bm.load_dataset("grouseticks"))
    assert model.fep_names == ["Intercept", "YEAR[96]", "YEAR[97]", "cHEIGHT"] and model.vcp_names == list(vc)
    result = model.fit_map()
    np.testing.assert_allclose(result.fe_mean, GROUSE_FIXEF, rtol=2e-3)
    np.testing.assert_allclose(
        np.exp(result.vcp_mean), [GROUSE_SD["BROOD"], GROUSE_SD["LOCATION"]], rtol=1e-2
    )
    assert (result.vcp_sd > 0).all() and (result.fe_sd > 0).all()  # delta method, from the Hessian
    assert len(result.vc_mean) == 118 + 63 and (result.vc_sd > 0).all()
    assert result.params.shape == (4 + 2 + 118 + 63,)
    table = result.summary().tables[0]
    assert (
        list(table.index) == [*model.fep_names, "BROOD", "LOCATION"]
        and list(table["Type"]) == ["M"] * 4 + ["V"] * 2
    )
    rate = result.predict()
    np.testing.assert_allclose(np.log(rate), result.predict(linear=True), rtol=1e-10)


def test_binomial_fit_vb_samples():
    data = _cbpp_binary()
    model = bm.BinomialBayesMixedGLM.from_formula("y ~ period", {"herd": "0 + C(herd)"}, data)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = model.fit_vb(draws=200, tune=200, chains=2, cores=1, seed=4, progressbar=False)
    # glmer on the aggregated cbpp (the same likelihood): within 0.25 on the link scale
    np.testing.assert_allclose(
        result.fe_mean,
        [-1.39834286447115, -0.991924974975739, -1.12821621594334, -1.57974541364919],
        atol=0.25,
    )
    assert abs(np.exp(result.vcp_mean[0]) - 0.642069927729179) < 0.3
    assert (result.vcp_sd > 0).all() and len(result.vc_mean) == 15
    p = result.predict()
    assert ((p > 0) & (p < 1)).all() and len(p) == len(data)
    assert "NUTS" in repr(result)


def _same_shapes(ours, theirs, bayes: bool):
    """Every attribute statsmodels' BayesMixedGLMResults has, with its type and shape."""
    for name in ("params", "fe_mean", "fe_sd", "vcp_mean", "vcp_sd", "vc_mean", "vc_sd"):
        a, b = getattr(ours, name), getattr(theirs, name)
        assert type(a) is type(b) is np.ndarray and a.shape == b.shape and a.dtype == b.dtype, name
    cov, ref = ours.cov_params(), theirs.cov_params()
    assert type(cov) is type(ref) is (pd.Series if bayes else pd.DataFrame)
    assert cov.shape == ref.shape and len(cov.index) == len(ref.index)
    ours_table, ref_table = ours.summary().tables[0], theirs.summary().tables[0]
    assert (
        list(ours_table.columns)
        == list(ref_table.columns)
        == [
            "Type",
            "Post. Mean",
            "Post. SD",
            "SD",
            "SD (LB)",
            "SD (UB)",
        ]
    )
    assert list(ours_table["Type"]) == list(ref_table["Type"]) and ours_table.shape == ref_table.shape
    assert "Mixed GLM Results" in str(ours.summary()) and "Mixed GLM Results" in str(theirs.summary())
    re_ours, re_ref = ours.random_effects(), theirs.random_effects()
    assert list(re_ours.columns) == list(re_ref.columns) == ["Mean", "SD"]
    assert list(re_ours.index) == list(re_ref.index)
    term = theirs.model.vcp_names[-1]
    assert list(ours.random_effects(term).index) == list(theirs.random_effects(term).index)
    for kw in ({}, {"linear": True}, {"exog": theirs.model.exog[:5]}):
        a, b = ours.predict(**kw), theirs.predict(**kw)
        assert type(a) is type(b) is np.ndarray and a.shape == b.shape, kw
    # names: statsmodels' patsy/formulaic labels, ours formulae's (no "T." for a categorical level)
    assert ours.model.names[len(ours.model.fep_names) :] == theirs.model.names[len(theirs.model.fep_names) :]
    assert ours.model.fep_names == [n.replace("[T.", "[") for n in theirs.model.fep_names]


def test_fit_map_has_statsmodels_types_and_shapes_and_our_laplace_numbers():
    from scipy.optimize import OptimizeResult

    data = bm.load_dataset("grouseticks")
    theirs_model = sm_glmm.PoissonBayesMixedGLM.from_formula("TICKS ~ YEAR + cHEIGHT", GROUSE_VC, data)
    ours_model = bm.PoissonBayesMixedGLM.from_formula("TICKS ~ YEAR + cHEIGHT", GROUSE_VC, data)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # statsmodels' MAP optimiser reports non-convergence here
        theirs = theirs_model.fit_map(rng=1)
    ours = ours_model.fit_map()
    _same_shapes(ours, theirs, bayes=False)
    assert type(ours.optim_retvals) is type(theirs.optim_retvals) is OptimizeResult
    assert ours.optim_retvals.success and ours.optim_retvals.nfev > 0

    ml = ours.fit  # the Laplace fit behind it: every number comes from it
    cov = ours.cov_params()
    fe = ours_model.fep_names
    np.testing.assert_allclose(cov.loc[fe, fe].to_numpy(), ml.vcov.to_numpy(), rtol=1e-12)
    np.testing.assert_allclose(ours.fe_sd, GROUSE_SE, rtol=1e-2)  # lme4 1.1-31's standard errors
    # log-sd sds: 2 x inverse Hessian of the deviance in theta (sd = theta here), delta method
    k = ml.structure.n_theta
    theta_cov = 2 * np.linalg.inv(ml.opt.hessian)[:k, :k]
    order = [[f.group for f in ml.structure.factors].index(g) for g in GROUSE_VC]
    expected = np.sqrt(np.diag(theta_cov))[order] / ml.theta[order]
    np.testing.assert_allclose(ours.vcp_sd, expected, rtol=1e-10)
    np.testing.assert_allclose(np.diag(cov)[len(fe) : len(fe) + 2], ours.vcp_sd**2, rtol=1e-12)
    assert np.isnan(cov.iloc[0, -1]) and cov.iloc[-1, -1] == pytest.approx(ours.vc_sd[-1] ** 2)
    brood = ml.random_effects("BROOD", conditional_sd=True)
    np.testing.assert_allclose(ours.random_effects("BROOD")["Mean"], brood["Intercept"], rtol=1e-12)
    np.testing.assert_allclose(ours.random_effects("BROOD")["SD"], brood["Intercept_sd"], rtol=1e-12)
    np.testing.assert_allclose(ours.params[: len(fe)], GROUSE_FIXEF, rtol=2e-3)
    X = ours_model.exog
    np.testing.assert_allclose(ours.predict(linear=True), X @ ours.fe_mean, rtol=1e-12)
    np.testing.assert_allclose(ours.predict(exog=data.head(4)), np.exp(X[:4] @ ours.fe_mean), rtol=1e-12)


def test_logposterior_is_statsmodels_at_any_parameters():
    data = bm.load_dataset("grouseticks")
    theirs = sm_glmm.PoissonBayesMixedGLM.from_formula("TICKS ~ YEAR + cHEIGHT", GROUSE_VC, data, vcp_p=0.7)
    ours = bm.PoissonBayesMixedGLM.from_formula("TICKS ~ YEAR + cHEIGHT", GROUSE_VC, data, vcp_p=0.7)
    assert ours.names[4:] == theirs.names[4:] and ours.k_vc == theirs.k_vc == 181
    rng = np.random.default_rng(3)
    for params in (np.zeros(len(ours.names)), rng.normal(0, 0.3, len(ours.names))):
        assert ours.logposterior(params) == pytest.approx(theirs.logposterior(params), rel=1e-12)
    binary = _cbpp_binary()
    theirs_b = sm_glmm.BinomialBayesMixedGLM.from_formula("y ~ period", {"herd": "0 + C(herd)"}, binary)
    ours_b = bm.BinomialBayesMixedGLM.from_formula("y ~ period", {"herd": "0 + C(herd)"}, binary)
    params = rng.normal(-0.5, 0.4, len(ours_b.names))
    assert ours_b.logposterior(params) == pytest.approx(theirs_b.logposterior(params), rel=1e-12)


@pytest.mark.slow
def test_fit_vb_has_statsmodels_types_and_shapes_and_our_nuts_numbers():
    data = _cbpp_binary()
    vc = {"herd": "0 + C(herd)"}
    theirs = sm_glmm.BinomialBayesMixedGLM.from_formula("y ~ period", vc, data).fit_vb(rng=1)
    model = bm.BinomialBayesMixedGLM.from_formula("y ~ period", vc, data)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ours = model.fit_vb(draws=150, tune=150, chains=2, cores=1, seed=5, progressbar=False)
    _same_shapes(ours, theirs, bayes=True)
    assert ours.optim_retvals is None  # NUTS has no optimiser (statsmodels: the ELBO's OptimizeResult)
    draws = ours.fit.parameter_draws()
    np.testing.assert_allclose(ours.fe_mean, [draws[n].mean() for n in model.fep_names], rtol=1e-12)
    np.testing.assert_allclose(ours.vcp_mean, [np.log(draws["sd(Intercept|herd)"]).mean()], rtol=1e-12)
    np.testing.assert_allclose(ours.vcp_sd, [np.log(draws["sd(Intercept|herd)"]).std(ddof=1)], rtol=1e-12)
    re = ours.fit.random_effects("herd").xs("Intercept", level="term")
    np.testing.assert_allclose(ours.random_effects("herd")["SD"], re["sd"], rtol=1e-12)
    np.testing.assert_allclose(ours.cov_params().to_numpy()[-15:], re["sd"].to_numpy() ** 2, rtol=1e-12)
    # statsmodels' mean-field VB on the same data (its fe_mean): within 0.25 of the posterior means
    np.testing.assert_allclose(ours.fe_mean, theirs.fe_mean, atol=0.25)


def _glmm_coverage() -> dict[str, dict[str, str]]:
    """docs/statsmodels.md's GLMM tables: subsection title -> {name: status}."""
    import re
    from pathlib import Path

    text = (Path(__file__).resolve().parent.parent / "docs" / "statsmodels.md").read_text(encoding="utf-8")
    section = text.split("## The GLMM classes", 1)[1]
    out = {}
    for part in re.split(r"^### ", section, flags=re.M)[1:]:
        out[part.splitlines()[0].strip()] = dict(re.findall(r"^\| `(\w+)` \| (\w+) \|", part, flags=re.M))
    return out


def test_coverage_page_lists_every_statsmodels_glmm_name_truthfully():
    """Each statsmodels GLMM model and results name is listed; present ones exist, missing ones not."""
    from scipy import sparse

    data = bm.load_dataset("grouseticks")
    theirs_model = sm_glmm.PoissonBayesMixedGLM.from_formula("TICKS ~ YEAR + cHEIGHT", GROUSE_VC, data)
    ours_model = bm.PoissonBayesMixedGLM.from_formula("TICKS ~ YEAR + cHEIGHT", GROUSE_VC, data)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = theirs_model.fit_map(rng=1)
    ours = ours_model.fit_map()
    tables = _glmm_coverage()
    assert set(tables) == {
        "BinomialBayesMixedGLM / PoissonBayesMixedGLM (the GLMM model)",
        "BayesMixedGLMResults (the GLMM fit)",
    }
    pairs = zip(tables.values(), [(theirs_model, ours_model), (theirs, ours)], strict=True)
    for table, (ref_obj, ours_obj) in pairs:
        public = {n for n in dir(ref_obj) if not n.startswith("_")}
        assert set(table.values()) <= {"matches", "differs", "missing"}
        assert sorted(public ^ set(table)) == []
        present = {n for n, status in table.items() if status != "missing"}
        assert sorted(n for n in present if not hasattr(ours_obj, n)) == []
        assert sorted(n for n, status in table.items() if status == "missing" and hasattr(ours_obj, n)) == []
    # the model's "matches": same values as statsmodels'
    for name in ("k_fep", "k_vcp", "k_vc", "k_constant", "fe_p", "vc_names", "vcp_names", "endog_names"):
        assert getattr(ours_model, name) == getattr(theirs_model, name), name
    np.testing.assert_array_equal(ours_model.ident, theirs_model.ident)
    np.testing.assert_allclose(ours_model.endog, theirs_model.endog)
    np.testing.assert_allclose(ours_model.exog, theirs_model.exog)
    assert sparse.issparse(ours_model.exog_vc) and sparse.issparse(theirs_model.exog_vc)
    np.testing.assert_allclose(ours_model.exog_vc.toarray(), theirs_model.exog_vc.toarray())
    params = theirs.params
    for kw in ({}, {"linear": True}, {"exog": theirs_model.exog[:3]}):
        np.testing.assert_allclose(
            ours_model.predict(params, **kw), theirs_model.predict(params, **kw), rtol=1e-12
        )
    assert type(ours_model.fit()) is type(ours)
