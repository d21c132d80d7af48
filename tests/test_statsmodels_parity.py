"""statsmodels parity of the MixedLM entry point: types follow the input, and the model's plumbing.

Each case builds the same model with statsmodels 0.15 and with bayesmlm and compares, attribute by
attribute, the type, the shape and the labels (an ndarray from arrays in; a Series/DataFrame with
statsmodels' labels from a formula or pandas in), then the numbers where statsmodels' optimum is
lme4's (random-intercept fits: to 1e-5; random slopes: statsmodels stops within 1e-3 of the optimum).
statsmodels is optional: the module is skipped without it.
"""

import re
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import bayesmlm as bm
from bayesmlm import MixedLM

sm = pytest.importorskip("statsmodels.api")

ATTRIBUTES = [
    "params",
    "fe_params",
    "bse",
    "bse_fe",
    "bse_re",
    "tvalues",
    "pvalues",
    "cov_re",
    "cov_re_unscaled",
    "vcomp",
    "fittedvalues",
    "resid",
]
METHODS = ["cov_params", "conf_int"]


@pytest.fixture(scope="module")
def data():
    return bm.load_dataset("sleepstudy")


def _inputs(data, case):
    """(args, kwargs) for MixedLM, and whether it is a formula model."""
    y, days = data["Reaction"].to_numpy(), data["Days"].to_numpy(dtype=float)
    X = np.column_stack([np.ones(len(y)), days])
    g = data["Subject"].to_numpy()
    Xd = pd.DataFrame(X, columns=["const", "Days"])
    return {
        "arrays": ((y, X, g), {"exog_re": X}),
        "arrays_default_re": ((y, X, g), {}),
        "series_endog": ((data["Reaction"], X, g), {}),
        "frames": ((data["Reaction"], Xd, data["Subject"]), {"exog_re": Xd}),
        "frame_exog": ((y, Xd, g), {"exog_re": Xd[["Days"]]}),
    }[case]


CASES = ["arrays", "arrays_default_re", "series_endog", "frames", "frame_exog"]
FORMULAS = {
    "formula": dict(formula="Reaction ~ Days", groups="Subject", re_formula="~Days"),
    "formula_default": dict(formula="Reaction ~ Days", groups="Subject"),
    "formula_vc": dict(
        formula="Reaction ~ Days", groups="Subject", re_formula="0", vc_formula={"Days": "0 + Days"}
    ),
}


def _pair(data, case):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # statsmodels' convergence and boundary warnings
        if case in FORMULAS:
            kw = dict(FORMULAS[case])
            formula = kw.pop("formula")
            ref_model = sm.MixedLM.from_formula(formula, data, **kw)
            ours_model = MixedLM.from_formula(formula, data, **kw)
        else:
            args, kw = _inputs(data, case)
            ref_model = sm.MixedLM(*args, **kw)
            ours_model = MixedLM(*args, **kw)
        return ref_model, ref_model.fit(), ours_model, ours_model.fit()


@pytest.fixture(scope="module")
def pairs(data):
    return {case: _pair(data, case) for case in CASES + list(FORMULAS)}


def _same_kind(ours, ref, what):
    assert type(ours) is type(ref), f"{what}: {type(ours).__name__}, statsmodels {type(ref).__name__}"
    assert np.shape(ours) == np.shape(ref), f"{what}: shape {np.shape(ours)} vs {np.shape(ref)}"
    if isinstance(ref, pd.Series | pd.DataFrame):
        assert list(ours.index) == list(ref.index), f"{what}: index"
    if isinstance(ref, pd.DataFrame):
        assert list(ours.columns) == list(ref.columns), f"{what}: columns"


@pytest.mark.parametrize("case", CASES + list(FORMULAS))
def test_result_types_shapes_and_labels_follow_the_input(pairs, case):
    _, ref, _, ours = pairs[case]
    for name in ATTRIBUTES:
        try:
            expected = getattr(ref, name)
        except ValueError:  # statsmodels 0.15 cannot label bse_re when there are only components
            assert (name, case) == ("bse_re", "formula_vc")
            assert list(ours.bse_re.index) == ["Days Var"]
            assert ours.bse_re.iloc[0] == pytest.approx(ref._results.bse_re[0], rel=1e-4)
            continue
        _same_kind(getattr(ours, name), expected, name)
    for name in METHODS:
        _same_kind(getattr(ours, name)(), getattr(ref, name)(), f"{name}()")
    assert list(ours.random_effects) == list(ref.random_effects)
    for key, effects in ref.random_effects.items():
        _same_kind(ours.random_effects[key], effects, f"random_effects[{key!r}]")
    _same_kind(ours.predict(), ref.predict(), "predict()")


@pytest.mark.parametrize("case", ["arrays_default_re", "series_endog", "formula_default"])
def test_random_intercept_numbers_equal_statsmodels(pairs, case):
    _, ref, _, ours = pairs[case]
    k = ref.k_fe
    np.testing.assert_allclose(np.asarray(ours.fe_params), np.asarray(ref.fe_params), rtol=1e-6)
    np.testing.assert_allclose(np.asarray(ours.bse_fe), np.asarray(ref.bse_fe), rtol=1e-5)
    np.testing.assert_allclose(np.asarray(ours.cov_re), np.asarray(ref.cov_re), rtol=1e-5)
    np.testing.assert_allclose(np.asarray(ours.params), np.asarray(ref.params), rtol=1e-5)
    np.testing.assert_allclose(
        np.asarray(ours.cov_params())[:k, :k], np.asarray(ref.cov_params())[:k, :k], rtol=1e-5
    )
    np.testing.assert_allclose(np.asarray(ours.conf_int())[:k], np.asarray(ref.conf_int())[:k], rtol=1e-6)
    np.testing.assert_allclose(np.asarray(ours.tvalues)[:k], np.asarray(ref.tvalues)[:k], rtol=1e-5)
    np.testing.assert_allclose(np.asarray(ours.fittedvalues), np.asarray(ref.fittedvalues), rtol=1e-7)
    np.testing.assert_allclose(np.asarray(ours.resid), np.asarray(ref.resid), atol=1e-4)
    assert ours.scale == pytest.approx(ref.scale, rel=1e-5)
    assert ours.llf == pytest.approx(ref.llf, abs=1e-6)
    for key, effects in ref.random_effects.items():
        np.testing.assert_allclose(ours.random_effects[key].to_numpy(), effects.to_numpy(), atol=1e-4)


def test_random_slope_numbers_are_lme4s_and_near_statsmodels(pairs):
    _, ref, _, ours = pairs["arrays"]
    # lme4 1.1-31, lmer(Reaction ~ Days + (Days | Subject), sleepstudy) (REML)
    np.testing.assert_allclose(ours.fe_params, [251.405105, 10.467286], rtol=1e-6)
    np.testing.assert_allclose(ours.cov_re, [[612.090, 9.604], [9.604, 35.072]], rtol=1e-3)
    assert ours.llf >= ref.llf - 1e-8  # statsmodels' optimum is no higher than lme4's
    np.testing.assert_allclose(ours.cov_re, ref.cov_re, rtol=2e-3)
    np.testing.assert_allclose(ours.fe_params, ref.fe_params, rtol=1e-5)


def test_array_results_slice_like_statsmodels(pairs):
    ours = pairs["arrays"][3]
    k = ours.k_fe
    block = ours.cov_params()[0:k, 0:k]  # the example: positional slicing of an ndarray
    np.testing.assert_allclose(np.sqrt(np.diag(block)), ours.bse_fe, rtol=1e-12)
    np.testing.assert_allclose(ours.conf_int()[:k, 0], ours.fe_params - 1.959964 * ours.bse_fe, rtol=1e-6)
    assert ours.conf_int(alpha=0.1)[1, 0] > ours.conf_int()[1, 0]
    ours.params[0] = -1.0  # a returned array is a copy: writing to it changes nothing
    ours.cov_re[0, 0] = -1.0
    assert ours.params[0] == pytest.approx(251.405105, rel=1e-6)
    assert ours.cov_re[0, 0] > 0


@pytest.mark.parametrize("case", CASES + list(FORMULAS))
def test_model_plumbing_equals_statsmodels(pairs, case):
    ref_model, _, ours_model, _ = pairs[case]
    for name in ["xnames", "ynames", "param_names", "exog_re_names", "exog_re_names_full"]:
        assert getattr(ours_model.data, name) == getattr(ref_model.data, name), name
    for name in ["endog", "exog", "exog_re"]:
        ours, ref = getattr(ours_model, name), getattr(ref_model, name)
        _same_kind(ours, ref, name)
        np.testing.assert_allclose(ours, ref, rtol=0, atol=0, err_msg=name)
    _same_kind(ours_model.groups, ref_model.groups, "groups")
    assert list(np.asarray(ours_model.groups)) == list(np.asarray(ref_model.groups))
    assert ours_model.group_labels == ref_model.group_labels
    assert ours_model.row_indices == ref_model.row_indices
    assert type(ours_model.data.row_labels) is type(ref_model.data.row_labels)
    assert type(ours_model.data.orig_exog) is type(ref_model.data.orig_exog)
    assert type(ours_model.data.orig_endog) is type(ref_model.data.orig_endog)
    if case in FORMULAS:
        pd.testing.assert_frame_equal(ours_model.data.frame, ref_model.data.frame)
    for name in ["nobs", "n_totobs", "n_groups", "k_fe", "k_re", "k_re2", "k_vc", "k_params", "k_constant"]:
        assert getattr(ours_model, name) == getattr(ref_model, name), name
    assert (ours_model.exog_names, ours_model.endog_names) == (ref_model.exog_names, ref_model.endog_names)
    for name in ["endog_li", "exog_li", "exog_re_li", "exog_re2_li"]:
        ours, ref = getattr(ours_model, name), getattr(ref_model, name)
        if ref is None:  # no exog_re (re_formula="0")
            assert ours is None, name
            continue
        assert len(ours) == len(ref) == ref_model.n_groups, name
        for a, b in zip(ours, ref, strict=True):
            np.testing.assert_array_equal(a, b, err_msg=name)
    assert ours_model.group_list(None) is None


def test_plumbing_under_missing_drop_and_shuffled_rows(data):
    """Rows dropped for a missing value and shuffled rows: the arrays are those of the rows used.

    statsmodels' reference is the model on the rows kept, its own ``missing="drop"`` being broken
    for the array interface.
    """
    y = data["Reaction"].to_numpy().copy()
    y[[3, 50]] = np.nan
    X = np.column_stack([np.ones(len(y)), data["Days"].to_numpy(dtype=float)])
    g = data["Subject"].astype(int).to_numpy()  # integer groups stay integers
    order = np.random.default_rng(3).permutation(len(y))
    y, X, g = y[order], X[order], g[order]
    keep = ~np.isnan(y)  # statsmodels 0.15's own missing="drop" fails on arrays (IndexError in fit)
    ref = sm.MixedLM(y[keep], X[keep], g[keep])
    with pytest.warns(bm.DroppedRowsWarning, match="dropped 2 of 180 rows"):  # statsmodels is silent
        ours = MixedLM(y, X, g, missing="drop")
    assert ours.nobs == ref.nobs == 178
    np.testing.assert_array_equal(ours.endog, ref.endog)
    np.testing.assert_array_equal(ours.exog, ref.exog)
    np.testing.assert_array_equal(ours.exog_re, ref.exog_re)
    assert ours.group_labels == ref.group_labels and isinstance(ours.group_labels[0], int)
    assert ours.row_indices == ref.row_indices
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref_fit = ref.fit()
    fit = ours.fit()
    assert isinstance(fit.fe_params, np.ndarray)
    np.testing.assert_allclose(fit.fe_params, ref_fit.fe_params, rtol=1e-6)
    assert fit.llf == pytest.approx(ref_fit.llf, abs=1e-6)


def _coverage_tables() -> dict[str, dict[str, str]]:
    """docs/statsmodels.md's two tables: section title -> {name: status}."""
    text = (Path(__file__).resolve().parent.parent / "docs" / "statsmodels.md").read_text(encoding="utf-8")
    out: dict[str, dict[str, str]] = {}
    for section in re.split(r"^## ", text, flags=re.M)[1:]:
        rows = re.findall(r"^\| `(\w+)` \| (\w+) \|", section, flags=re.M)
        if rows:
            out[section.splitlines()[0].strip()] = dict(rows)
    return out


def _public(obj) -> set[str]:
    return {name for name in dir(obj) if not name.startswith("_")}


def test_coverage_page_lists_every_statsmodels_name_truthfully(pairs):
    """Each statsmodels name is on the page; 'matches'/'differs' exist on bayesmlm's object, 'missing' not."""
    ref_model, ref, ours_model, ours = pairs["formula"]
    tables = _coverage_tables()
    assert {"MixedLM (the model)", "MixedLMResults (the fit)"} <= set(tables)  # + the GLMM tables
    for title, ref_obj, ours_obj in [
        ("MixedLM (the model)", ref_model, ours_model),
        ("MixedLMResults (the fit)", ref, ours),
    ]:
        table = tables[title]
        assert set(table.values()) <= {"matches", "differs", "missing"}
        assert sorted(_public(ref_obj) - set(table)) == [], f"{title}: statsmodels names not listed"
        assert sorted(set(table) - _public(ref_obj)) == [], f"{title}: names statsmodels does not have"
        present = {name for name, status in table.items() if status != "missing"}
        assert sorted(present - _public(ours_obj)) == [], f"{title}: listed as present but absent"
        absent = {name for name, status in table.items() if status == "missing"}
        assert sorted(absent & _public(ours_obj)) == [], f"{title}: listed as missing but present"


@pytest.mark.parametrize("case", ["arrays_default_re", "formula"])
def test_scalar_results_equal_statsmodels(pairs, case):
    _, ref, _, ours = pairs[case]
    names = ["nobs", "df_resid", "k_fe", "k_re", "k_re2", "k_vc", "k_constant", "df_modelwc", "method"]
    for name in [*names, "reml", "converged"]:
        assert getattr(ours, name) == getattr(ref, name), name
    assert np.isnan(ref.aic) and np.isfinite(ours.aic)  # lme4's REML AIC, deliberately
    assert ours.aic == pytest.approx(-2 * ours.llf + 2 * (ours.k_fe + ours.k_re2 + 1), rel=1e-12)


def test_more_random_effects_than_rows_is_refused_where_statsmodels_fits():
    rng = np.random.default_rng(1)
    df = pd.DataFrame({"y": rng.normal(size=40), "x": rng.normal(size=40), "g": np.arange(40)})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = sm.MixedLM.from_formula("y ~ x", df, groups="g").fit()
    assert ref.cov_re.iloc[0, 0] > 0  # statsmodels splits one variance between two parameters
    with pytest.raises(bm.DataError, match="one row per level for 40 observations"):
        MixedLM.from_formula("y ~ x", df, groups="g").fit()


@pytest.mark.parametrize("case", ["arrays", "formula", "formula_vc", "arrays_default_re"])
@pytest.mark.parametrize("reml", [True, False])
def test_loglike_equals_statsmodels_at_any_parameters(data, pairs, case, reml):
    from statsmodels.regression.mixed_linear_model import MixedLMParams

    ref_model, _, ours_model, _ = pairs[case]
    k_re, k_vc = ours_model.k_re, ours_model.k_vc
    fit = ours_model.fit(reml=reml)  # sets model.reml, as statsmodels' fit does
    ref_model.reml = reml
    # at the optimum: the fit's log-likelihood (statsmodels' llf comes from the same formula)
    tri = np.linalg.cholesky(np.asarray(fit.cov_re_unscaled))[np.tril_indices(k_re)] if k_re else []
    packed = np.concatenate([tri, np.sqrt(fit.vcomp / fit.scale)])
    assert ours_model.loglike(packed) == pytest.approx(fit.llf, abs=1e-7)
    # away from it, with a covariance, for given and for profiled fixed effects
    cov = np.array([[2.0, 0.3], [0.3, 0.5]])[:k_re, :k_re]
    params = MixedLMParams.from_components(
        fe_params=np.array([250.0, 9.0]), cov_re=cov, vcomp=np.full(k_vc, 0.7)
    )
    for profile_fe in (True, False):
        expected = ref_model.loglike(params, profile_fe=profile_fe)
        assert ours_model.loglike(params, profile_fe=profile_fe) == pytest.approx(expected, rel=1e-10)
    packed = MixedLMParams.get_packed(params, use_sqrt=True, has_fe=False)
    assert ours_model.loglike(packed) == pytest.approx(ref_model.loglike(packed), rel=1e-10)
    fe, singular = ours_model.get_fe_params(cov, np.full(k_vc, 0.7))
    np.testing.assert_allclose(fe, ref_model.get_fe_params(cov, np.full(k_vc, 0.7))[0], rtol=1e-10)
    assert singular is False
    with pytest.raises(bm.ArgumentError, match="packed vector"):
        ours_model.loglike(np.ones(ours_model.k_re2 + k_vc + 1))
    ours_model.fit()  # leave the shared models as they were (REML)
    ref_model.reml = True


@pytest.mark.parametrize("case", ["formula_default", "arrays_default_re"])
def test_t_test_and_wald_test_equal_statsmodels(pairs, case):
    _, ref, _, ours = pairs[case]
    R = np.array([[0.0, 1.0], [1.0, 1.0]])
    for use_t in (None, True):
        got, expected = ours.t_test(R, use_t=use_t), ref.t_test(R, use_t=use_t)
        assert got.distribution == expected.distribution
        for name in ["effect", "sd", "tvalue"]:
            np.testing.assert_allclose(getattr(got, name), getattr(expected, name), rtol=1e-5, err_msg=name)
        # far tails (z = 13, 28): d log p = z dz, so 1e-5 in z is ~1e-3 in p
        np.testing.assert_allclose(np.log(got.pvalue), np.log(expected.pvalue), rtol=1e-5)
        np.testing.assert_allclose(got.conf_int(alpha=0.1), expected.conf_int(alpha=0.1), rtol=1e-6)
        assert list(got.summary_frame().columns) == list(expected.summary_frame().columns)
    assert ours.t_test(R, use_t=True).df_denom == ref.t_test(R, use_t=True).df_denom == 178
    full = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for kwargs in [{}, {"use_f": True}]:
            for r in [full, (full, np.array([250.0, 10.0]))]:
                got, expected = (
                    ours.wald_test(r, scalar=True, **kwargs),
                    ref.wald_test(r, scalar=True, **kwargs),
                )
                assert got.distribution == expected.distribution
                assert got.statistic == pytest.approx(float(np.squeeze(expected.statistic)), rel=1e-5)
                assert np.log(got.pvalue) == pytest.approx(np.log(float(expected.pvalue)), rel=1e-5)
                assert got.df_denom == pytest.approx(float(expected.df_denom))
    # the fixed effects' columns alone are the same hypothesis
    assert ours.wald_test(full[:, :2]).statistic == pytest.approx(ours.wald_test(full).statistic, rel=1e-12)
    with pytest.raises(bm.ArgumentError, match="2 columns"):
        ours.t_test(np.ones((1, 3)))
    # the text form is the same hypothesis as its matrix (tests/test_statsmodels_likelihood.py has more)
    assert ours.wald_test("x1 = 0" if case.startswith("arrays") else "Days = 0").statistic == pytest.approx(
        ours.wald_test(full[[1]]).statistic, rel=1e-12
    )


def test_params_object_and_model_predict_equal_statsmodels(pairs):
    from statsmodels.regression.mixed_linear_model import MixedLMParams as SMParams

    from bayesmlm.statsmodels_api.params import MixedLMParams

    ref_model, ref, ours_model, ours = pairs["formula_default"]
    got, expected = ours.params_object, ref.params_object
    for name in ["k_fe", "k_re", "k_re2", "k_vc", "k_tot"]:
        assert getattr(got, name) == getattr(expected, name), name
    np.testing.assert_allclose(got.fe_params, expected.fe_params, rtol=1e-6)
    np.testing.assert_allclose(got.cov_re, expected.cov_re, rtol=1e-5)
    for use_sqrt in (True, False):
        for has_fe in (True, False):
            np.testing.assert_allclose(
                got.get_packed(use_sqrt, has_fe),
                expected.get_packed(use_sqrt=use_sqrt, has_fe=has_fe),
                rtol=1e-5,
            )
    # the packed layout round-trips as statsmodels' does, for a 3 x 3 covariance and two components
    rng = np.random.default_rng(5)
    packed = rng.normal(size=2 + 6 + 2)
    for use_sqrt in (True, False):
        a = MixedLMParams.from_packed(packed, 2, 3, use_sqrt=use_sqrt, has_fe=True)
        b = SMParams.from_packed(packed, 2, 3, use_sqrt=use_sqrt, has_fe=True)
        for name in ["fe_params", "cov_re", "vcomp"]:
            np.testing.assert_allclose(getattr(a, name), getattr(b, name), rtol=1e-14, err_msg=name)
    assert ours_model.loglike(got) == pytest.approx(ours.llf, abs=1e-7)
    np.testing.assert_allclose(ours_model.predict(ours.params), ref_model.predict(ref.params), rtol=1e-6)
    new = np.array([[1.0, 2.0], [1.0, 20.0]])
    np.testing.assert_allclose(
        ours_model.predict(got, exog=new), ref_model.predict(expected, exog=new), rtol=1e-6
    )
    with pytest.raises(bm.ArgumentError, match="2 columns"):
        ours_model.predict(got, exog=np.ones((1, 3)))
