"""statsmodels' variance components with several columns: ``exog_vc`` and ``vc_formula="0 + a + b"``.

A component of ``k`` columns is ``k`` scalar random effects per group with one variance: the nested
slot factor (indicator columns, lme4's ``(1 | g/c)``) or tied theta (any columns). Checked against lme4
(Pastes, numbers below from lme4 1.1-35 via ``../shared/reference/lme4_reference.json``) and, side by
side, against statsmodels 0.15 on a simulated schools/classes design where it converges: statsmodels'
own log-likelihood evaluated at our estimates equals our ``llf`` (so ours is its optimum) and is at
least its own fit's.
"""

import warnings

import numpy as np
import pandas as pd
import pytest

import bayesmlm as bm
from bayesmlm import MixedLM
from bayesmlm.exceptions import ArgumentError, DataError
from bayesmlm.reml.ties import check_ties, tie_matrix

sm = pytest.importorskip("statsmodels.api")
from statsmodels.regression.mixed_linear_model import MixedLMParams  # noqa: E402

# lme4: lmer(strength ~ 1 + (1|batch/cask), Pastes), REML and REML = FALSE
PASTES = {
    True: {
        "logLik": -123.495372926744,
        "cask": 8.43366593129485,
        "batch": 1.65731091183376,
        "se": 0.676870215074031,
    },
    False: {
        "logLik": -123.997232931448,
        "cask": 8.43361677166284,
        "batch": 1.19917911853299,
        "se": 0.642135893866978,
    },
}


@pytest.fixture(scope="module")
def schools():
    """20 schools x 4 classes x 6 pupils; a random school slope on a and b sharing one variance."""
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


def _sm_loglike_at(sm_model, ours, reml):
    """statsmodels' (restricted) log-likelihood at our estimates."""
    po = ours.params_object
    sm_model.reml = reml
    p = MixedLMParams.from_components(
        np.asarray(po.fe_params), cov_re=np.asarray(po.cov_re), vcomp=np.asarray(po.vcomp)
    )
    return sm_model.loglike(p, profile_fe=False)


VC_CASES = {
    "nested": dict(re_formula="1", vc_formula={"cl": "0 + C(c)"}),
    "tied": dict(re_formula="1", vc_formula={"ab": "0 + a + b"}),
    "both": dict(vc_formula={"ab": "0 + a + b", "cl": "0 + C(c)"}),
}


@pytest.mark.parametrize("reml", [True, False])
@pytest.mark.parametrize("case", list(VC_CASES))
def test_vc_formula_is_statsmodels_optimum(schools, case, reml):
    kw = dict(groups="school", **VC_CASES[case])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref_model = sm.MixedLM.from_formula("y ~ x", schools, **kw)
        ref = ref_model.fit(reml=reml, method=["lbfgs"])
    ours = MixedLM.from_formula("y ~ x", schools, **kw).fit(reml=reml)
    assert ref.converged and ours.converged
    at_ours = _sm_loglike_at(ref_model, ours, reml)
    assert abs(at_ours - ours.llf) <= 1e-8 * abs(ours.llf)  # the same likelihood
    assert ours.llf >= ref.llf - 1e-6 * abs(ref.llf)  # and at least statsmodels' optimum
    assert abs(ours.llf - ref.llf) <= 1e-6 * abs(ref.llf)
    np.testing.assert_allclose(ours.vcomp, ref.vcomp, rtol=1e-4)
    np.testing.assert_allclose(np.asarray(ours.cov_re), np.asarray(ref.cov_re), rtol=1e-3)
    np.testing.assert_allclose(ours.fe_params, ref.fe_params, rtol=1e-5)
    assert list(ours.params.index) == list(ref.params.index)
    for g in (0, 7, 19):
        mine, theirs = ours.random_effects[g], ref.random_effects[g]
        assert list(mine.index) == list(theirs.index)
        np.testing.assert_allclose(mine.to_numpy(), theirs.to_numpy(), atol=1e-4)
    text = str(ours.summary())
    for name in ref.model.exog_vc.names:
        assert f"{name} Var" in text


@pytest.mark.parametrize("reml", [True, False])
def test_pastes_nested_equals_lme4(reml):
    p = bm.load_dataset("Pastes")
    ref = PASTES[reml]
    res = MixedLM.from_formula(
        "strength ~ 1", p, groups="batch", re_formula="1", vc_formula={"cask": "0 + C(cask)"}
    ).fit(reml=reml)
    assert res.llf == pytest.approx(ref["logLik"], rel=1e-9)
    assert res.vcomp[0] == pytest.approx(ref["cask"], rel=1e-5)
    assert res.cov_re.iloc[0, 0] == pytest.approx(ref["batch"], rel=1e-4)
    assert res.bse_fe.iloc[0] == pytest.approx(ref["se"], rel=1e-5)
    # the same as exog_vc indicator matrices, which become the nested factor batch:slot
    g = p["batch"].to_numpy()
    vc = {"cask": {k: pd.get_dummies(p.loc[g == k, "cask"]).astype(float).to_numpy() for k in np.unique(g)}}
    arr = MixedLM(p["strength"].to_numpy(), np.ones((60, 1)), g, exog_re=np.ones(60), exog_vc=vc).fit(
        reml=reml
    )
    assert arr.llf == pytest.approx(ref["logLik"], rel=1e-9)
    assert isinstance(arr.vcomp, np.ndarray) and arr.vcomp[0] == pytest.approx(ref["cask"], rel=1e-5)
    assert list(arr.random_effects["A"].index) == [
        "x_re1",
        "cask[0]",
        "cask[1]",
        "cask[2]",
    ]  # statsmodels names exog_re so
    assert arr.fit_result.n_parameters == 4


def _dense_vc(df):
    """exog_vc of the school slopes on a and b: dense columns, so tied theta."""
    g = df["school"].to_numpy()
    return g, {"ab": {k: df.loc[g == k, ["a", "b"]].to_numpy() for k in np.unique(g)}}


@pytest.mark.parametrize("reml", [True, False])
def test_exog_vc_dense_equals_statsmodels_and_vc_formula(schools, reml):
    g, vc = _dense_vc(schools)
    X = np.column_stack([np.ones(len(g)), schools["x"]])
    y = schools["y"].to_numpy()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref_model = sm.MixedLM(y, X, g, exog_re=np.ones(len(g)), exog_vc=vc)
        ref = ref_model.fit(reml=reml, method=["lbfgs"])
    ours = MixedLM(y, X, g, exog_re=np.ones(len(g)), exog_vc=vc).fit(reml=reml)
    form = MixedLM.from_formula("y ~ x", schools, groups="school", **VC_CASES["tied"]).fit(reml=reml)
    assert ours.llf == pytest.approx(form.llf, rel=1e-10)
    assert abs(_sm_loglike_at(ref_model, ours, reml) - ours.llf) <= 1e-8 * abs(ours.llf)
    assert abs(ours.llf - ref.llf) <= 1e-6 * abs(ref.llf)
    np.testing.assert_allclose(ours.vcomp, ref.vcomp, rtol=1e-4)
    assert isinstance(ours.params, np.ndarray) and ours.params.shape == ref.params.shape
    assert ours.model.param_names == ref.model.data.param_names
    mine, theirs = ours.random_effects[3], ref.random_effects[3]
    assert list(mine.index) == list(theirs.index) == ["x_re1", "ab[0]", "ab[1]"]
    np.testing.assert_allclose(mine.to_numpy(), theirs.to_numpy(), atol=1e-4)
    assert ours.fit_result.n_parameters == 2 + 2 + 1  # fe, the two variances (ab tied), scale


def test_tied_variance_follows_a_rescaled_column_and_row_order(schools):
    base = MixedLM.from_formula("y ~ x", schools, groups="school", **VC_CASES["tied"]).fit()
    scaled = schools.assign(a=schools["a"] * 1000.0, b=schools["b"] * 1000.0)
    res = MixedLM.from_formula("y ~ x", scaled, groups="school", **VC_CASES["tied"]).fit()
    assert res.vcomp[0] == pytest.approx(base.vcomp[0] / 1e6, rel=1e-6)
    shuffled = schools.sample(frac=1.0, random_state=3)
    res = MixedLM.from_formula("y ~ x", shuffled, groups="school", **VC_CASES["tied"]).fit()
    assert res.llf == pytest.approx(base.llf, rel=1e-10)
    assert res.vcomp[0] == pytest.approx(base.vcomp[0], rel=1e-6)
    # one column rescaled alone: the tie is on the user's scale, so the fit changes (statsmodels too)
    one = MixedLM.from_formula(
        "y ~ x", schools.assign(a=schools["a"] * 10.0), groups="school", **VC_CASES["tied"]
    )
    assert one.fit().llf < base.llf - 1.0


def test_ties_are_checked_and_expand_on_the_internal_scale():
    m = bm.Model("Reaction ~ Days + (1 | Subject) + (0 + Days | Subject)", bm.load_dataset("sleepstudy"))
    assert check_ties(m.structure, ((1, 0),)) == ((0, 1),)
    with pytest.raises(ArgumentError, match="in two ties"):
        check_ties(m.structure, ((0, 1), (1, 0)))
    m2 = bm.Model("Reaction ~ Days + (Days | Subject)", bm.load_dataset("sleepstudy"))
    with pytest.raises(ArgumentError, match="only the variances of scalar terms"):
        check_ties(m2.structure, ((0, 2),))
    scaling = m.scaled_cross_products.scaling
    E = tie_matrix(m.structure, scaling, ((0, 1),))
    a0, a1 = scaling.z_maps[0][0, 0], scaling.z_maps[0][1, 1]
    np.testing.assert_allclose(E, [[1.0], [a0 / a1]])


def test_exog_vc_errors_say_what_to_do(schools):
    g, vc = _dense_vc(schools)
    X, y = np.ones((len(g), 1)), schools["y"].to_numpy()
    del vc["ab"][4]
    with pytest.raises(DataError, match="no matrix for group 4"):
        MixedLM(y, X, g, exog_vc=vc)
    with pytest.raises(ArgumentError, match="dict of dicts"):
        MixedLM(y, X, g, exog_vc={"ab": np.ones((len(g), 2))})
    _, vc = _dense_vc(schools)
    vc["ab"][0] = vc["ab"][0][:3]
    with pytest.raises(DataError, match="the group has 24 rows"):
        MixedLM(y, X, g, exog_vc=vc)
    with pytest.raises(NotImplementedError, match="pass exog_vc"):
        MixedLM.from_formula("y ~ x", schools, groups="school", vc_formula={"m": "0 + C(c) + a"})


def test_exog_vc_with_a_different_number_of_columns_per_group(schools):
    """Dense columns, two in even schools and one in odd ones: padded tied terms, the same likelihood."""
    g = schools["school"].to_numpy()
    cols = {k: ["a", "b"] if k % 2 == 0 else ["a"] for k in np.unique(g)}
    frames = {"ab": {k: schools.loc[g == k, c] for k, c in cols.items()}}  # DataFrames keep their names
    vc = {"ab": {k: m.to_numpy() for k, m in frames["ab"].items()}}  # statsmodels 0.15 fails on frames
    X, y = np.column_stack([np.ones(len(g)), schools["x"]]), schools["y"].to_numpy()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref_model = sm.MixedLM(y, X, g, exog_re=np.ones(len(g)), exog_vc=vc)
        ref = ref_model.fit(method=["lbfgs"])
    ours = MixedLM(y, X, g, exog_re=np.ones(len(g)), exog_vc=vc).fit()
    assert abs(_sm_loglike_at(ref_model, ours, True) - ours.llf) <= 1e-8 * abs(ours.llf)
    assert abs(ours.llf - ref.llf) <= 1e-6 * abs(ref.llf)
    np.testing.assert_allclose(ours.vcomp, ref.vcomp, rtol=1e-4)
    for k in (0, 1):
        assert list(ours.random_effects[k].index) == list(ref.random_effects[k].index)
        np.testing.assert_allclose(ours.random_effects[k], ref.random_effects[k], atol=1e-4)
    assert list(ours.random_effects[1].index) == ["x_re1", "ab[0]"]
    named = MixedLM(y, X, g, exog_re=np.ones(len(g)), exog_vc=frames).fit()
    assert named.llf == pytest.approx(ours.llf, rel=1e-12)
    assert list(named.random_effects[0].index) == ["x_re1", "ab[a]", "ab[b]"]


@pytest.mark.parametrize("kind", ["str", "float", "category"])
def test_variance_components_ignore_the_group_column_type(schools, kind):
    base = MixedLM.from_formula("y ~ x", schools, groups="school", **VC_CASES["both"]).fit()
    typed = schools.assign(school=schools["school"].astype(kind))
    res = MixedLM.from_formula("y ~ x", typed, groups="school", **VC_CASES["both"]).fit()
    assert res.llf == pytest.approx(base.llf, rel=1e-10)
    np.testing.assert_allclose(res.vcomp, base.vcomp, rtol=1e-6)


def test_tied_fit_refuses_free_theta_derivatives_and_bootstraps_with_the_tie(schools):
    res = MixedLM.from_formula("y ~ x", schools, groups="school", **VC_CASES["tied"]).fit()
    fit = res.fit_result
    assert fit.opt.ties and fit.n_parameters == 2 + 2 + 1
    with pytest.raises(NotImplementedError, match="tied theta"):
        fit.coef_table()  # Satterthwaite's df
    with pytest.raises(NotImplementedError, match="tied theta"):
        fit.confint()  # profiles
    table = fit.confint(method="boot", n_boot=20, seed=1)
    f = fit.structure.factors[0]
    cov = fit.estimates.covariances[f.group]
    assert cov[1, 1] == pytest.approx(cov[2, 2], rel=1e-10)  # a and b share one variance
    assert len(table) == 6  # sd of the intercept, of a and of b (equal), sigma, two fixed effects
    boot = np.asarray(fit.bootstrap_draws(n_boot=10, seed=2).covariances[0])
    np.testing.assert_allclose(boot[:, 1, 1], boot[:, 2, 2], rtol=1e-10)  # the refits keep the tie
    assert np.ptp(boot[:, 1, 1]) > 0
    assert res.fit_result.refit(reml=False).opt.ties == fit.opt.ties
