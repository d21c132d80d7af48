"""statsmodels' likelihood API with variance components of several columns and categorical ones.

``loglike``, ``score``, ``hessian``, ``bse_re``, ``random_effects_cov``, ``get_distribution`` and
``model.exog_vc`` for ``vc_formula={"ab": "0 + a + b"}`` (tied), ``{"cl": "0 + C(c)"}`` (categorical),
both, and ``exog_vc`` matrices, held side by side to statsmodels 0.15 evaluated at the same parameters
(our estimates), and the Hessian to central differences of the log-likelihood (Pastes, where lme4 is
the reference). Also the penalties that statsmodels keeps on the model after a penalised fit, and the
``aic``/``bic``/``llf`` of penalised and regularised fits.
"""

import warnings

import numpy as np
import pandas as pd
import pytest

import bayesmlm as bm
from bayesmlm import MixedLM
from bayesmlm.statsmodels_api import VCSpec

sm = pytest.importorskip("statsmodels.api")
from statsmodels.base._penalties import L2, PSD  # noqa: E402
from statsmodels.regression.mixed_linear_model import MixedLMParams  # noqa: E402

CASES = {
    "categorical": dict(re_formula="1", vc_formula={"cl": "0 + C(c)"}),
    "tied": dict(re_formula="1", vc_formula={"ab": "0 + a + b"}),
    "both": dict(vc_formula={"ab": "0 + a + b", "cl": "0 + C(c)"}),
}


@pytest.fixture(scope="module")
def schools():
    """20 schools x 4 classes x 6 pupils (the design of tests/test_statsmodels_vc.py)."""
    rng = np.random.default_rng(1)
    rows = []
    for s in range(20):
        us, ua = rng.normal(0, 1.0), rng.normal(0, 0.8, 2)
        for c in range(4):
            uc = rng.normal(0, 0.7)
            for _ in range(6):
                x, a, b = rng.normal(size=3)
                y = 1 + 0.5 * x + us + uc + ua[0] * a + ua[1] * b + rng.normal()
                rows.append((s, c, x, a, b, y))
    return pd.DataFrame(rows, columns=["school", "c", "x", "a", "b", "y"])


def _sm_params(po):
    return MixedLMParams.from_components(
        np.asarray(po.fe_params), cov_re=np.asarray(po.cov_re), vcomp=np.asarray(po.vcomp)
    )


def _sm_fit(model, reml):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return model.fit(reml=reml, method=["lbfgs"])


def _same_likelihood(md, ref_model, po, reml):
    """Our loglike, score and hessian equal statsmodels' at the same parameters ``po``."""
    p = _sm_params(po)
    ref_model.reml = reml
    for profile_fe in (True, False):
        assert md.loglike(po, profile_fe=profile_fe) == pytest.approx(
            ref_model.loglike(p, profile_fe=profile_fe), rel=1e-12
        )
        np.testing.assert_allclose(
            md.score(po, profile_fe=profile_fe), ref_model.score(p, profile_fe=profile_fe), atol=1e-8
        )
    hess, sing = md.hessian(po)
    ref_hess, ref_sing = ref_model.hessian(p)
    np.testing.assert_allclose(hess, ref_hess, rtol=1e-10, atol=1e-10 * np.abs(ref_hess).max())
    assert sing == ref_sing


def _same_exog_vc(ours: VCSpec, theirs) -> None:
    assert ours.names == list(theirs.names)
    for k in range(len(ours.names)):
        assert len(ours.mats[k]) == len(theirs.mats[k])
        for i, (mine, ref) in enumerate(zip(ours.mats[k], theirs.mats[k], strict=True)):
            assert [str(c) for c in ours.colnames[k][i]] == [str(c) for c in theirs.colnames[k][i]]
            np.testing.assert_array_equal(mine, np.asarray(ref, dtype=float))


@pytest.mark.parametrize("reml", [True, False])
@pytest.mark.parametrize("case", list(CASES))
def test_vc_formula_likelihood_api_equals_statsmodels(schools, case, reml):
    kw = dict(groups="school", **CASES[case])
    ref_model = sm.MixedLM.from_formula("y ~ x", schools, **kw)
    ref = _sm_fit(ref_model, reml)
    md = MixedLM.from_formula("y ~ x", schools, **kw)
    ours = md.fit(reml=reml)
    _same_exog_vc(md.exog_vc, ref_model.exog_vc)
    _same_likelihood(md, ref_model, ours.params_object, reml)
    # standard errors: statsmodels' formula at lme4's optimum (statsmodels stops ~1e-4 from it;
    # measured at most 2.8e-4 apart). statsmodels 0.15 fails to label bse_re here: its _results has it
    assert np.all(np.isfinite(ours.bse))
    np.testing.assert_allclose(np.asarray(ours.bse_re), ref._results.bse_re, rtol=1e-3)
    np.testing.assert_allclose(ours.bse.to_numpy()[2:], ref.bse.to_numpy()[2:], rtol=1e-3)
    mine, theirs = ours.random_effects_cov, ref.random_effects_cov
    assert list(mine) == list(theirs)
    for g in (0, 7, 19):
        assert list(mine[g].index) == list(theirs[g].index) == list(ours.random_effects[g].index)
        np.testing.assert_allclose(mine[g].to_numpy(), theirs[g].to_numpy(), atol=1e-4)  # measured 6e-6


def test_random_effects_cov_without_components_equals_statsmodels():
    d = bm.load_dataset("sleepstudy")
    ref = _sm_fit(sm.MixedLM.from_formula("Reaction ~ Days", d, groups="Subject", re_formula="~Days"), True)
    ours = MixedLM.from_formula("Reaction ~ Days", d, groups="Subject", re_formula="~Days").fit()
    for g in ("308", "335"):
        assert list(ours.random_effects_cov[g].index) == list(ref.random_effects_cov[g].index)
        np.testing.assert_allclose(ours.random_effects_cov[g], ref.random_effects_cov[g], rtol=1e-3)
    md = MixedLM.from_formula("Reaction ~ Days", d, groups="Subject")
    assert md.exog_vc.names == md.exog_vc.colnames == md.exog_vc.mats == []  # statsmodels: VCSpec([],[],[])


def test_exog_vc_uneven_columns_likelihood_equals_statsmodels(schools):
    """Dense columns, two in even schools and one in odd ones (tied, padded), and indicator columns."""
    g = schools["school"].to_numpy()
    dense = {k: schools.loc[g == k, ["a", "b"] if k % 2 == 0 else ["a"]].to_numpy() for k in np.unique(g)}
    ind = {k: pd.get_dummies(schools.loc[g == k, "c"]).astype(float).to_numpy() for k in np.unique(g)}
    vc = {"ab": dense, "cl": ind}
    X, y = np.column_stack([np.ones(len(g)), schools["x"]]), schools["y"].to_numpy()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # statsmodels: the dict form is deprecated
        ref_model = sm.MixedLM(y, X, g, exog_re=np.ones(len(g)), exog_vc=vc)
    ref = _sm_fit(ref_model, True)
    md = MixedLM(y, X, g, exog_re=np.ones(len(g)), exog_vc=vc)
    ours = md.fit()
    _same_exog_vc(md.exog_vc, ref_model.exog_vc)
    _same_likelihood(md, ref_model, ours.params_object, True)
    assert isinstance(ours.bse_re, np.ndarray)
    np.testing.assert_allclose(ours.bse_re, ref._results.bse_re, rtol=1e-3)
    for k in (0, 1):
        assert list(ours.random_effects_cov[k].index) == list(ref.random_effects_cov[k].index)
        np.testing.assert_allclose(ours.random_effects_cov[k], ref.random_effects_cov[k], atol=1e-4)
    # statsmodels' VCSpec as input gives the same model
    again = MixedLM(y, X, g, exog_re=np.ones(len(g)), exog_vc=md.exog_vc).fit()
    assert again.llf == pytest.approx(ours.llf, rel=1e-12)


def _fd_hessian(f, x, h=1e-4):
    k = len(x)
    out = np.zeros((k, k))
    for i in range(k):
        for j in range(k):
            vals = []
            for si, sj in ((1, 1), (1, -1), (-1, 1), (-1, -1)):
                z = x.copy()
                z[i] += si * h * max(abs(x[i]), 1.0)
                z[j] += sj * h * max(abs(x[j]), 1.0)
                vals.append(f(z))
            out[i, j] = (vals[0] - vals[1] - vals[2] + vals[3]) / (
                4 * h**2 * max(abs(x[i]), 1) * max(abs(x[j]), 1)
            )
    return out


@pytest.mark.parametrize("reml", [True, False])
def test_pastes_categorical_hessian_equals_finite_differences(reml):
    """lme4's Pastes, strength ~ 1 + (1 | batch/cask): the Hessian of the profiled log-likelihood."""
    p = bm.load_dataset("Pastes")
    md = MixedLM.from_formula(
        "strength ~ 1", p, groups="batch", re_formula="1", vc_formula={"cask": "0 + C(cask)"}
    )
    res = md.fit(reml=reml)
    x = res.params_object.get_packed(use_sqrt=False, has_fe=True)

    def loglike(z):
        return md.loglike(MixedLMParams.from_packed(z, 1, 1, use_sqrt=False, has_fe=True), profile_fe=False)

    hess, _ = md.hessian(res.params_object)
    np.testing.assert_allclose(hess, _fd_hessian(loglike, x), rtol=1e-4, atol=1e-6 * np.abs(hess).max())
    assert np.all(np.isfinite(res.bse_re)) and np.all(res.bse_re > 0)
    np.testing.assert_allclose(md.score(res.params_object), 0.0, atol=1e-3)  # the optimum


def test_tied_bse_re_ignores_row_order(schools):
    kw = dict(groups="school", **CASES["both"])
    base = MixedLM.from_formula("y ~ x", schools, **kw).fit()
    shuffled = MixedLM.from_formula("y ~ x", schools.sample(frac=1.0, random_state=5), **kw).fit()
    np.testing.assert_allclose(shuffled.bse_re.to_numpy(), base.bse_re.to_numpy(), rtol=1e-5)
    np.testing.assert_allclose(shuffled.random_effects_cov[3], base.random_effects_cov[3], rtol=1e-5)


def test_get_distribution_with_tied_components_draws_statsmodels_response(schools):
    kw = dict(groups="school", **CASES["both"])
    ref_model = sm.MixedLM.from_formula("y ~ x", schools, **kw)
    md = MixedLM.from_formula("y ~ x", schools, **kw)
    res = md.fit()
    params = res.params.to_numpy()
    ours = md.get_distribution(params, res.scale).rvs(0, rng=11)
    exog = np.asarray(ref_model.exog, dtype=float)  # statsmodels 0.15 fails on its own formula's
    ref_model.exog_re = np.asarray(ref_model.exog_re, dtype=float)  # object-dtype exog and exog_re
    theirs = ref_model.get_distribution(params, res.scale, exog).rvs(0, rng=11)
    np.testing.assert_allclose(ours, theirs, rtol=1e-12)


def test_bayes_with_a_tied_component_is_refused(schools):
    md = MixedLM.from_formula("y ~ x", schools, groups="school", **CASES["tied"])
    with pytest.raises(NotImplementedError, match="several columns"):
        md.fit(bayes=True)


# -- penalties on the model, aic/bic/llf of penalised fits -------------------------------------------
def test_penalties_stay_on_the_model_as_in_statsmodels():
    d = bm.load_dataset("sleepstudy")
    kw = dict(groups="Subject", re_formula="~Days")
    ref_model = sm.MixedLM.from_formula("Reaction ~ Days", d, **kw)
    md = MixedLM.from_formula("Reaction ~ Days", d, **kw)
    assert md.fe_pen is None and md.re_pen is None and md.cov_pen is None
    assert ref_model.fe_pen is None and ref_model.re_pen is None
    for reml in (True, False):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ref = ref_model.fit(cov_pen=PSD(1.0), reml=reml, method=["lbfgs"], gtol=1e-10)
        ours = md.fit(cov_pen=PSD(1.0), reml=reml)
        assert isinstance(md.cov_pen, PSD) and md.fe_pen is None
        # statsmodels' loglike subtracts the model's penalty after the fit: both equal the fit's llf
        p = _sm_params(ours.params_object)
        assert md.loglike(ours.params_object, profile_fe=False) == pytest.approx(ours.llf, rel=1e-12)
        assert md.loglike(ours.params_object, profile_fe=False) == pytest.approx(
            ref_model.loglike(p, profile_fe=False), rel=1e-12
        )
        np.testing.assert_allclose(md.score(ours.params_object), ref_model.score(p), atol=1e-8)
        assert ours.llf == pytest.approx(ref.llf, rel=1e-10)
        if not reml:  # statsmodels: aic/bic from the penalised llf (NaN for REML)
            assert ours.aic == pytest.approx(ref.aic, rel=1e-10)
            assert ours.bic == pytest.approx(ref.bic, rel=1e-10)
        else:
            assert np.isnan(ref.aic)
            assert ours.aic == pytest.approx(-2 * ours.llf + 2 * 6, rel=1e-12)
        assert ours.aic != pytest.approx(ours.fit_result.aic, rel=1e-6)  # not the unpenalised fit's
    plain = md.fit()
    assert md.cov_pen is None and md.fe_pen is None  # the next fit replaces them, as statsmodels
    assert md.loglike(plain.params_object) == pytest.approx(plain.llf, rel=1e-12)


def test_regularized_fits_keep_statsmodels_penalties_and_llf():
    d = bm.load_dataset("sleepstudy")
    y, X, g = d["Reaction"].to_numpy(), np.column_stack([np.ones(180), d["Days"]]), d["Subject"].to_numpy()
    for reml in (True, False):
        ref_model = sm.MixedLM(y, X, g)
        ref = ref_model.fit_regularized(alpha=[0.0, 5.0], reml=reml)
        md = MixedLM(y, X, g)
        ours = md.fit_regularized(alpha=[0.0, 5.0], reml=reml)
        assert md.fe_pen is None and md.cov_pen is None and ref_model.fe_pen is None
        np.testing.assert_allclose(ours.params_object.fe_params, np.asarray(ref.fe_params), rtol=1e-5)
        # llf: the log-likelihood at the penalised fixed effects and the unpenalised covariances,
        # statsmodels' model.loglike there (its results' llf reads the scaled cov_re as relative)
        # statsmodels' unpenalised optimum is ~1e-4 from lme4's (measured 1.2e-4)
        np.testing.assert_allclose(ours.params_object.cov_re, np.asarray(ref.cov_re_unscaled), rtol=1e-3)
        np.testing.assert_allclose(ours.cov_re_unscaled, ours.params_object.cov_re, rtol=1e-15)
        assert ours.cov_re_unscaled[0, 0] != pytest.approx(ours.cov_re[0, 0] / ours.scale, rel=1e-3)
        ref_model.reml = reml
        assert ours.llf == pytest.approx(
            ref_model.loglike(_sm_params(ours.params_object), profile_fe=False), rel=1e-12
        )
        assert ours.aic == pytest.approx(-2 * ours.llf + 2 * 4, rel=1e-12)
        assert ours.bic == pytest.approx(-2 * ours.llf + np.log(180) * 4, rel=1e-12)
        smooth = md.fit_regularized(method=L2(), alpha=3.0, reml=reml)
        assert isinstance(md.fe_pen, L2) and md.fe_pen.alpha == 3.0
        ref_smooth = sm.MixedLM(y, X, g).fit_regularized(method=L2(), alpha=3.0, reml=reml)
        assert smooth.llf == pytest.approx(ref_smooth.llf, rel=1e-8)
        if not reml:
            assert smooth.aic == pytest.approx(ref_smooth.aic, rel=1e-8)
