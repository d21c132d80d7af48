"""statsmodels' tools around MixedLM: ``summary_col``, ``remove_data``, ``fit_regularized``, ``eval_env``.

Side by side with statsmodels 0.15 (optional: the module is skipped without it).
"""

import warnings

import numpy as np
import pytest

import bayesmlm as bm
from bayesmlm import MixedLM

sm = pytest.importorskip("statsmodels.api")
from statsmodels.iolib.summary2 import summary_col  # noqa: E402


@pytest.fixture(scope="module")
def sleep():
    return bm.load_dataset("sleepstudy")


def _both(data, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = sm.MixedLM.from_formula("Reaction ~ Days", data, groups="Subject", **kw).fit()
    return MixedLM.from_formula("Reaction ~ Days", data, groups="Subject", **kw).fit(), ref


def test_summary_col_takes_our_results_and_shows_our_numbers(sleep):
    ours1, ref1 = _both(sleep)
    ours2, ref2 = _both(sleep, re_formula="~Days")
    table = summary_col([ours1, ours2], stars=True).tables[0]
    ref_table = summary_col([ref1, ref2], stars=True).tables[0]
    assert list(table.index) == list(ref_table.index)
    assert list(table.columns) == list(ref_table.columns) == ["Reaction I", "Reaction II"]
    fe = ours2.fe_params
    assert table.iloc[0, 1] == f"{fe['Intercept']:.4f}***"
    assert table.iloc[3, 1] == f"({ours2.bse_fe['Days']:.4f})"
    # the random-intercept fit: statsmodels reaches lme4's optimum, so the fixed-effect rows are its own
    # and so are the variance's estimate and standard error (the inverse Hessian, as statsmodels)
    assert list(table.iloc[:6, 0]) == list(ref_table.iloc[:6, 0])
    assert table.iloc[4, 0] == f"{ours1.params['Subject Var']:.4f}***"
    info = summary_col([ours1], info_dict={"N": lambda r: str(r.nobs), "llf": lambda r: f"{r.llf:.2f}"})
    assert list(info.tables[0].iloc[-2:, 0]) == ["180", "-893.23"]


def test_summary_object_has_statsmodels_summary_methods(sleep):
    ours, _ = _both(sleep)
    s = ours.summary()
    s.add_text("a note_1")
    s.add_title("My title")
    assert s.as_text().splitlines()[0].strip() == "My title"
    assert s.as_text().rstrip().endswith("a note_1")
    latex = s.as_latex(label="tab")
    assert latex.startswith("\\begin{table}") and "\\label{tab}" in latex and "a note\\_1" in latex
    assert "Subject Var & 1378.179" in latex
    html = s.as_html()
    assert html.count("<table") == 2 and "1378.179" in html and "a note_1" in html


def test_remove_data_drops_what_statsmodels_drops_and_keeps_the_estimates(sleep):
    ours, ref = _both(sleep)
    key = next(iter(ours.random_effects))
    params, llf, ranef = ours.params.copy(), ours.llf, ours.random_effects[key].copy()
    _ = ref.bse  # statsmodels 0.15's remove_data needs its cache made first
    ref.remove_data()
    ours.remove_data()
    for obj, name in [("model", "endog"), ("model", "exog"), ("data", "endog"), ("data", "exog")]:
        mine = ours.model if obj == "model" else ours.model.data
        theirs = ref.model if obj == "model" else ref.model.data
        assert getattr(mine, name) is None and getattr(theirs, name) is None, (obj, name)
    assert ours.fittedvalues is None and ours.resid is None and ours.wresid is None
    with pytest.raises(TypeError):  # statsmodels 0.15 recomputes them from the removed exog and fails
        ref.fittedvalues  # noqa: B018
    np.testing.assert_array_equal(ours.params, params)
    assert ours.llf == llf  # statsmodels 0.15 fails here too
    with pytest.raises(TypeError):
        ref.llf  # noqa: B018
    np.testing.assert_array_equal(ours.random_effects[key], ranef)
    assert ours.model.data.param_names == ref.model.data.param_names
    assert "Subject Var" in str(ours.summary())


def _square(x):
    return x**2


def test_formulas_call_the_functions_passed_as_eval_env_as_statsmodels_calls_the_callers(sleep):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        # statsmodels finds _square in this frame; here it must be passed
        ref = sm.MixedLM.from_formula(
            "Reaction ~ _square(Days)", sleep, groups="Subject", vc_formula={"s": "0 + _square(Days)"}
        ).fit()
    env = {"sq": _square}
    ours = MixedLM.from_formula(
        "Reaction ~ sq(Days)", sleep, groups="Subject", vc_formula={"s": "0 + sq(Days)"}, eval_env=env
    ).fit()
    assert abs(ours.llf - ref.llf) <= 1e-6 * abs(ref.llf)
    np.testing.assert_allclose(ours.fe_params.to_numpy(), ref.fe_params.to_numpy(), rtol=1e-4)
    np.testing.assert_allclose(ours.vcomp, ref.vcomp, rtol=1e-3)
    same = MixedLM.from_formula("Reaction ~ sq(Days)", sleep, groups="Subject", extra_namespace=env).fit()
    lme4 = bm.Model("Reaction ~ I(Days**2) + (1 | Subject)", sleep).fit_reml()
    assert same.llf == pytest.approx(lme4.loglik, rel=1e-10)
    assert MixedLM.from_formula("Reaction ~ Days", sleep, groups="Subject", eval_env=-1).k_fe == 2


def _arrays(sleep):
    rng = np.random.default_rng(0)
    y = sleep["Reaction"].to_numpy()
    X = np.column_stack([np.ones(180), sleep["Days"], rng.normal(size=180), rng.normal(size=180)])
    return y, X, sleep["Subject"].to_numpy()


@pytest.mark.parametrize("reml", [True, False])
@pytest.mark.parametrize("alpha", [0.0, 100.0, [0.0, 500.0, 2000.0, 50.0], [0.0, 20.0, 0.0, 0.0]])
def test_fit_regularized_equals_statsmodels(sleep, alpha, reml):
    # statsmodels 0.15's fit_regularized fails on a formula model (it indexes fe_params by position), so
    # arrays; a random intercept, where statsmodels' unpenalised fit reaches lme4's optimum
    y, X, g = _arrays(sleep)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = sm.MixedLM(y, X, g).fit_regularized(alpha=alpha, reml=reml)
    ours = MixedLM(y, X, g).fit_regularized(alpha=alpha, reml=reml)
    assert isinstance(ours.fe_params, np.ndarray)
    np.testing.assert_allclose(ours.fe_params, ref.fe_params, rtol=1e-6, atol=1e-5)
    np.testing.assert_array_equal(ours.fe_params == 0, ref.fe_params == 0)  # the same zeros
    np.testing.assert_allclose(ours.params, ref.params, rtol=1e-5, atol=1e-5)
    assert ours.scale == pytest.approx(ref.scale, rel=1e-5)
    np.testing.assert_allclose(ours.fittedvalues, ref.fittedvalues, atol=1e-3)
    np.testing.assert_array_equal(np.isnan(ours.bse), np.isnan(ref.bse))
    np.testing.assert_allclose(ours.vcomp, ref.vcomp)
    np.testing.assert_allclose(ours.cov_re, ref.cov_re, rtol=1e-5)


def test_fit_regularized_hessian_is_statsmodels_at_the_point_it_reads(sleep):
    """statsmodels reads the packed covariance parameters as square roots (``use_sqrt``) for its Hessian.

    Evaluated at that point our Hessian gives its standard errors; ours are taken at the estimates.
    """
    from bayesmlm.statsmodels_api import regularized
    from bayesmlm.statsmodels_api.params import MixedLMParams

    y, X, g = _arrays(sleep)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = sm.MixedLM(y, X, g).fit_regularized(alpha=0.0)
    md = MixedLM(y, X, g)
    ours = md.fit_regularized(alpha=0.0)
    read = MixedLMParams.from_packed(ours.params, md.k_fe, md.k_re, True, has_fe=True)
    point = np.concatenate([read.fe_params, read.cov_re[np.tril_indices(1)], read.vcomp])
    cov = regularized._bse(md, point, np.ones(len(point), dtype=bool))
    np.testing.assert_allclose(np.sqrt(np.diag(cov)), ref.bse, rtol=1e-3)
    # at the estimates themselves the fixed effects' errors are near lme4's sigma^2 (X'V^-1 X)^-1
    plain = md.fit()
    np.testing.assert_allclose(ours.bse[:4], plain.bse_fe, rtol=0.02)


def test_fit_regularized_refuses_what_it_cannot_do(sleep):
    y, X, g = _arrays(sleep)
    md = MixedLM(y, X, g)
    with pytest.raises(bm.ArgumentError, match="Invalid regularization method"):
        md.fit_regularized(method="l2")
    with pytest.raises(bm.ArgumentError, match="alpha has 2 weights; the model has 4 fixed effects"):
        md.fit_regularized(alpha=[1.0, 2.0])
    with pytest.raises(bm.ArgumentError, match="non-negative"):
        md.fit_regularized(alpha=-1.0)
    with pytest.raises(bm.ArgumentError, match="fe_pen must be a penalty with func"):
        md.fit_regularized(method=object())  # smooth penalties: tests/test_statsmodels_penalised.py
