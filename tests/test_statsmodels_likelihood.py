"""statsmodels parity of the likelihood API: score, hessian, the variance parameters' standard errors,
wald_test/f_test (matrices and text), profile_re and get_distribution.

Each number is compared with statsmodels 0.15 computing the same thing: at the same parameters for
``score`` and ``hessian`` (to 1e-8 relative; they agree to ~1e-11), at bayesmlm's optimum for the
inverse Hessian, and result to result where statsmodels converges (its optimum is within ~1e-7 of the
log-likelihood, so its standard errors agree to ~1e-4). Where statsmodels stops short (sleepstudy's
random slope), the standard errors are checked against a finite-difference Hessian of our own
``loglike`` at our optimum. statsmodels is optional: the module is skipped without it.
"""

import warnings
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

import bayesmlm as bm
from bayesmlm import MixedLM

sm = pytest.importorskip("statsmodels.api")
from statsmodels.regression.mixed_linear_model import MixedLMParams  # noqa: E402

MODELS = {
    "intercept": ("sleepstudy", "Reaction ~ Days", dict(groups="Subject")),
    "slope": ("sleepstudy", "Reaction ~ Days", dict(groups="Subject", re_formula="~Days")),
    "vc": (
        "sleepstudy",
        "Reaction ~ Days",
        dict(groups="Subject", re_formula="1", vc_formula={"Days": "0 + Days"}),
    ),
    "oxboys": ("Oxboys", "height ~ age", dict(groups="Subject", re_formula="~age")),
    "dyestuff": ("Dyestuff", "Yield ~ 1", dict(groups="Batch")),
}


def _pair(case, reml=True):
    name, formula, kw = MODELS[case]
    data = bm.load_dataset(name)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # statsmodels' convergence and boundary warnings
        ref_model = sm.MixedLM.from_formula(formula, data, **kw)
        ref = ref_model.fit(reml=reml)
    ours_model = MixedLM.from_formula(formula, data, **kw)
    return ref_model, ref, ours_model, ours_model.fit(reml=reml)


@pytest.fixture(scope="module")
def pairs():
    return {(case, reml): _pair(case, reml) for case in MODELS for reml in (True, False)}


def _away(model):
    """Parameters away from the optimum: a covariance, components, fixed effects not the GLS ones."""
    cov = np.array([[2.0, 0.3], [0.3, 0.5]])[: model.k_re, : model.k_re]
    fe = np.array([250.0, 9.0])[: model.k_fe]
    return MixedLMParams.from_components(fe_params=fe, cov_re=cov, vcomp=np.full(model.k_vc, 0.7))


@pytest.mark.parametrize("case", ["intercept", "slope", "vc"])
@pytest.mark.parametrize("reml", [True, False])
@pytest.mark.parametrize("use_sqrt", [True, False])
def test_score_and_hessian_equal_statsmodels_at_the_same_parameters(pairs, case, reml, use_sqrt):
    ref_model, _, ours_model, _ = pairs[case, reml]
    ref_model.reml, ref_model.use_sqrt, ours_model.use_sqrt = reml, use_sqrt, use_sqrt
    ours_model.reml = reml
    params = _away(ours_model)
    try:
        for profile_fe in (True, False):
            expected = ref_model.score(params.copy(), profile_fe=profile_fe)
            got = ours_model.score(params, profile_fe=profile_fe)
            assert got.shape == expected.shape
            np.testing.assert_allclose(got, expected, rtol=1e-8, err_msg=f"profile_fe={profile_fe}")
        packed = params.get_packed(use_sqrt=use_sqrt, has_fe=False)
        np.testing.assert_allclose(ours_model.score(packed), ref_model.score(packed), rtol=1e-8)
        for a, b in zip(ours_model.score_full(params, True), ref_model.score_full(params, True), strict=True):
            np.testing.assert_allclose(a, b, rtol=1e-8)
        for a, b in zip(ours_model.score_sqrt(params), ref_model.score_sqrt(params), strict=True):
            np.testing.assert_allclose(a, b, rtol=1e-8)
        (hess, sing), (expected, ref_sing) = ours_model.hessian(params), ref_model.hessian(params)
        np.testing.assert_allclose(hess, expected, rtol=1e-8, atol=1e-12 * np.abs(expected).max())
        assert sing == ref_sing
        np.testing.assert_array_equal(ours_model.information(params), -hess)  # statsmodels' raises
        full = params.get_packed(use_sqrt=use_sqrt, has_fe=True)
        np.testing.assert_allclose(ours_model.hessian(full)[0], ref_model.hessian(full)[0], rtol=1e-8)
    finally:  # leave the shared models as fitted (statsmodels' llf reads model.reml lazily)
        ref_model.use_sqrt, ours_model.use_sqrt = True, True


@pytest.mark.parametrize("case", list(MODELS))
@pytest.mark.parametrize("reml", [True, False])
def test_cov_params_is_statsmodels_inverse_hessian_at_our_optimum(pairs, case, reml):
    ref_model, _, _, ours = pairs[case, reml]
    ref_model.reml = reml
    po = ours.params_object
    at_ours = MixedLMParams.from_components(po.fe_params, po.cov_re, vcomp=po.vcomp)
    hess, _ = ref_model.hessian(at_ours)  # statsmodels' own Hessian, at lme4's optimum
    pcov = np.linalg.inv(-hess)
    k = ours.k_fe
    got = np.asarray(ours.cov_params())
    np.testing.assert_allclose(got[k:, :], pcov[k:, :], rtol=1e-7, atol=1e-10 * np.abs(pcov).max())
    # the fixed effects' block is lme4's vcov, the same at the optimum
    np.testing.assert_allclose(got[:k, :k], pcov[:k, :k], rtol=2e-5)
    np.testing.assert_allclose(np.asarray(ours.bse), np.sqrt(np.diag(got)), rtol=1e-12)
    np.testing.assert_allclose(np.asarray(ours.bse_re), np.sqrt(ours.scale * np.diag(got)[k:]), rtol=1e-12)


@pytest.mark.parametrize("case", ["intercept", "oxboys", "dyestuff"])
@pytest.mark.parametrize("reml", [True, False])
def test_variance_standard_errors_equal_statsmodels_where_it_converges(pairs, case, reml):
    _, ref, _, ours = pairs[case, reml]
    assert ref.converged
    assert ours.llf == pytest.approx(ref.llf, abs=5e-7)  # statsmodels' optimum is lme4's here
    # the variances' standard errors move with the optimum: ~1e-4 for statsmodels' 1e-7 in llf
    np.testing.assert_allclose(np.asarray(ours.bse_re), np.asarray(ref.bse_re), rtol=5e-4)
    np.testing.assert_allclose(np.asarray(ours.bse), np.asarray(ref.bse), rtol=5e-4)
    np.testing.assert_allclose(
        np.asarray(ours.cov_params()), np.asarray(ref.cov_params()), rtol=1e-3, atol=1e-6
    )
    np.testing.assert_allclose(np.asarray(ours.conf_int()), np.asarray(ref.conf_int()), rtol=5e-4)
    assert list(ours.bse_re.index) == list(ref.bse_re.index)


def _fd_hessian(model, params):
    """Central finite differences of loglike(profile_fe=False) over statsmodels' full parameters."""
    theta = params.get_packed(use_sqrt=False, has_fe=True)
    k_fe, k_re = model.k_fe, model.k_re

    def f(t):
        return model.loglike(MixedLMParams.from_packed(t, k_fe, k_re, use_sqrt=False, has_fe=True), False)

    h = 1e-3 * np.maximum(np.abs(theta), 1e-2)  # smaller steps lose more to rounding than they gain
    n = len(theta)
    H = np.zeros((n, n))
    for i in range(n):
        for j in range(i, n):
            ei, ej = np.eye(n)[i] * h[i], np.eye(n)[j] * h[j]
            H[i, j] = H[j, i] = (
                f(theta + ei + ej) - f(theta + ei - ej) - f(theta - ei + ej) + f(theta - ei - ej)
            ) / (4 * h[i] * h[j])
    return H


@pytest.mark.parametrize("reml", [True, False])
def test_slope_standard_errors_are_the_inverse_of_a_finite_difference_hessian(pairs, reml):
    """sleepstudy's random slope: statsmodels stops ~1e-3 from the optimum, so check against our loglike."""
    _, ref, ours_model, ours = pairs["slope", reml]
    fd = np.linalg.inv(-_fd_hessian(ours_model, ours.params_object))  # the model's reml is the fit's
    np.testing.assert_allclose(np.diag(np.asarray(ours.cov_params())), np.diag(fd), rtol=1e-4)
    np.testing.assert_allclose(np.asarray(ours.cov_params())[2:, 2:], fd[2:, 2:], rtol=1e-4, atol=1e-9)
    np.testing.assert_allclose(np.asarray(ours.bse_re), np.asarray(ref.bse_re), rtol=5e-3)  # statsmodels


def test_summary_shows_statsmodels_variance_standard_errors(pairs):
    _, ref, _, ours = pairs["intercept", True]
    got, expected = ours.summary().tables[1], ref.summary().tables[1]
    assert got.loc["Subject Var", "Std.Err."] == expected.loc["Subject Var", "Std.Err."] == "17.156"


def test_variance_standard_errors_do_not_depend_on_row_order_or_a_shift():
    data = bm.load_dataset("sleepstudy")
    base = MixedLM.from_formula("Reaction ~ Days", data, groups="Subject").fit()
    shuffled = data.sample(frac=1.0, random_state=3)
    shifted = data.assign(Days=data["Days"] + 100.0)
    for other in (shuffled, shifted):
        fit = MixedLM.from_formula("Reaction ~ Days", other, groups="Subject").fit()
        np.testing.assert_allclose(fit.bse_re, base.bse_re, rtol=1e-6)
    as_text = data.assign(Subject="s" + data["Subject"].astype(str))
    fit = MixedLM.from_formula("Reaction ~ Days", as_text, groups="Subject").fit()
    np.testing.assert_allclose(fit.bse_re, base.bse_re, rtol=1e-6)


@pytest.mark.parametrize("case", ["intercept", "oxboys"])
def test_wald_and_f_tests_equal_statsmodels_with_text_and_matrices(pairs, case):
    _, ref, _, ours = pairs[case, True]
    names = list(ours.params.index)
    fe = names[1]
    hypotheses = [
        f"{fe} = 0",
        f"Intercept = {float(ours.fe_params.iloc[0]) + 1:.1f}, {fe} = 0.5",
        f"(Intercept - 2 * {fe} = 100), {fe}",
        f"{fe}/2 = 0.5",
        np.eye(len(names))[[-1]],  # a variance parameter
        (np.eye(len(names))[:2], np.array([1.0, 2.0])),
    ]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for h in hypotheses:
            for use_f in (False, True):
                got, expected = ours.wald_test(h, use_f=use_f), ref.wald_test(h, use_f=use_f, scalar=True)
                assert got.distribution == expected.distribution
                assert got.statistic == pytest.approx(expected.statistic, rel=1e-4), h
                assert got.df_denom == pytest.approx(float(expected.df_denom))
            got, expected = ours.f_test(h), ref.f_test(h)
            assert got.fvalue == pytest.approx(float(np.squeeze(expected.fvalue)), rel=1e-4), h
            assert np.log(got.pvalue) == pytest.approx(np.log(float(expected.pvalue)), rel=1e-4)
            assert (got.df_num, got.df_denom) == (expected.df_num, expected.df_denom)


def test_text_hypotheses_are_read_like_patsy_and_bad_ones_are_refused(pairs):
    from bayesmlm.statsmodels_api.constraints import linear_constraints

    names = ["Intercept", "Days", "Subject Var", "Days2"]
    R, q = linear_constraints("Days = Days2 = 1, Subject Var, -(Intercept) * 3 = 2 * Days", names)
    np.testing.assert_array_equal(R, [[0, 1, 0, -1], [0, 0, 0, 1], [0, 0, 1, 0], [-3, -2, 0, 0]])
    np.testing.assert_array_equal(q, [0, 1, 0, 0])
    _, _, _, ours = pairs["intercept", True]
    for text, message in [
        ("Dayz = 0", "cannot read the hypothesis"),
        ("Days * Intercept = 0", "not linear"),
        ("(Days = 0", "parenthesis"),
        ("3 = 3", "names no parameter"),
        ("", "empty"),
    ]:
        with pytest.raises(bm.ArgumentError, match=message):
            ours.wald_test(text)
    with pytest.raises(bm.ArgumentError, match="fvalue belongs to an F test"):
        ours.wald_test("Days = 0").fvalue  # noqa: B018


@pytest.mark.parametrize(
    ("case", "args"),
    [
        ("intercept", (0, "re", 3, 500.0, 3, 500.0)),
        ("oxboys", (1, "re", 2, 0.5, 2, 0.5)),
        ("oxboys", (0, "re", 2, 20.0, 2, 20.0)),
        ("vc", ("Days", "vc", 2, 20.0, 2, 20.0)),
    ],
)
def test_profile_re_equals_statsmodels(pairs, case, args):
    _, ref, _, ours = pairs[case, True]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        expected = ref.profile_re(*args)
    got = ours.profile_re(*args)
    assert got.shape == expected.shape == (args[2] + args[4] + 1, 2)
    # the grids start at each one's optimum; statsmodels' Oxboys cov_re is ~1e-4 from lme4's
    np.testing.assert_allclose(got[:, 0], expected[:, 0], rtol=2e-4)
    np.testing.assert_allclose(got[:, 1], expected[:, 1], rtol=0, atol=1e-4)
    assert got[args[2], 1] == pytest.approx(ours.llf, abs=1e-7)  # the middle point: the estimate
    assert np.all(got[:, 1] <= ours.llf + 1e-7)


def test_profile_re_refuses_what_statsmodels_refuses(pairs):
    _, _, _, ours = pairs["intercept", True]
    with pytest.raises(bm.ArgumentError, match="dist_low is too large"):
        ours.profile_re(0, "re", dist_low=1e6)
    with pytest.raises(bm.ArgumentError, match="vtype must be 're' or 'vc'"):
        ours.profile_re(0, "random")
    with pytest.raises(bm.ArgumentError, match="re_ix must be a random effect's position"):
        ours.profile_re(3, "re")
    with pytest.raises(bm.ArgumentError, match="re_ix must name a variance component"):
        ours.profile_re("Days", "vc")


@pytest.mark.parametrize("case", ["slope", "vc"])
def test_get_distribution_draws_statsmodels_response_for_the_same_seed(pairs, case):
    ref_model, _, ours_model, ours = pairs[case, True]
    params = np.asarray(ours.params)
    got = ours_model.get_distribution(params, ours.scale)
    expected = ref_model.get_distribution(params, ours.scale, None)
    np.testing.assert_allclose(got.cov_re, expected.cov_re, rtol=1e-12)
    np.testing.assert_allclose(got.rvs(0, rng=7), expected.rvs(0, rng=7), rtol=1e-12)
    new = np.column_stack([np.ones(180), np.zeros(180)])
    np.testing.assert_allclose(
        ours_model.get_distribution(params, ours.scale, exog=new).rvs(1, rng=2),
        ref_model.get_distribution(params, ours.scale, new).rvs(1, rng=2),
        rtol=1e-12,
    )
    with pytest.raises(bm.ArgumentError, match="full vector"):
        ours_model.get_distribution(params[:2], ours.scale)
    with pytest.raises(bm.ArgumentError, match="model's shape"):
        ours_model.get_distribution(params, ours.scale, exog=new[:10])


def test_derivative_inputs_are_checked(pairs):
    _, _, ours_model, _ = pairs["slope", True]
    with pytest.raises(bm.ArgumentError, match="packed vector"):
        ours_model.score(np.ones(4))
    with pytest.raises(bm.ArgumentError, match="fixed effects, 3 covariance"):
        ours_model.hessian(np.ones(3))
    no_fe = SimpleNamespace(cov_re=np.eye(2))  # an object with cov_re but no fe_params
    with pytest.raises(bm.ArgumentError, match="fe_params"):
        ours_model.hessian(no_fe)


@pytest.mark.parametrize("case", ["intercept", "slope"])
def test_get_scale_and_normalized_cov_params_equal_statsmodels(pairs, case):
    ref_model, ref, ours_model, ours = pairs[case, True]
    po = ours.params_object
    for fe in (po.fe_params, po.fe_params + 1.0):
        expected = ref_model.get_scale(fe, po.cov_re, po.vcomp)
        assert ours_model.get_scale(fe, po.cov_re, po.vcomp) == pytest.approx(expected, rel=1e-12)
    assert ours_model.get_scale(po.fe_params, po.cov_re, po.vcomp) == pytest.approx(ours.scale, rel=1e-10)
    got, expected = ours.normalized_cov_params, ref.normalized_cov_params
    assert type(got) is type(expected) and list(got.index) == list(expected.index)
    np.testing.assert_allclose(got.to_numpy(), np.asarray(ours.cov_params()) / ours.scale, rtol=1e-12)
    np.testing.assert_allclose(got.to_numpy(), expected.to_numpy(), rtol=5e-3, atol=1e-9)
    assert ours.use_sqrt is ref.use_sqrt is True


def test_held_covariance_gets_zero_standard_errors_as_in_statsmodels():
    data = bm.load_dataset("sleepstudy")
    free = MixedLMParams.from_components(np.ones(2), np.eye(2))  # the covariance held at 0
    kw = dict(groups="Subject", re_formula="~Days")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = sm.MixedLM.from_formula("Reaction ~ Days", data, **kw).fit(free=free)
    ours = MixedLM.from_formula("Reaction ~ Days", data, **kw).fit(free=free)
    assert ours.llf == pytest.approx(ref.llf, abs=1e-7)  # statsmodels converges here
    np.testing.assert_allclose(np.asarray(ours.bse_re), np.asarray(ref.bse_re), rtol=5e-5)
    np.testing.assert_allclose(np.asarray(ours.bse), np.asarray(ref.bse), rtol=5e-5)
    assert ours.bse_re.iloc[1] == ref.bse_re.iloc[1] == 0.0
    np.testing.assert_allclose(
        np.asarray(ours.cov_params()), np.asarray(ref.cov_params()), rtol=1e-4, atol=1e-9
    )


@pytest.mark.parametrize("reml", [True, False])
def test_fixed_standard_errors_are_lme4s_vcov_where_statsmodels_inverse_hessian_differs(reml):
    # an unbalanced random-intercept design, where statsmodels reaches lme4's optimum: its observed
    # Hessian couples the fixed effects with the variance, so its fixed block is not lme4's vcov
    rng = np.random.default_rng(3)
    g = np.repeat(np.arange(30), rng.integers(3, 40, 30))
    x = rng.normal(size=len(g)) + 0.3 * g / 30
    y = 1 + 0.5 * x + rng.normal(0, 2, 30)[g] + rng.normal(size=len(g))
    data = pd.DataFrame({"y": y, "x": x, "g": g})
    ours_model = MixedLM.from_formula("y ~ x", data, groups="g")
    ours = ours_model.fit(reml=reml)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = sm.MixedLM.from_formula("y ~ x", data, groups="g").fit(reml=reml)
    assert ours.llf == pytest.approx(ref.llf, abs=1e-6)
    X = ours_model.exog
    V = np.zeros((len(y), len(y)))
    same = g[:, None] == g[None, :]
    V[same] = np.asarray(ours.cov_re)[0, 0]
    V += np.eye(len(y)) * ours.scale
    vcov = np.linalg.inv(X.T @ np.linalg.solve(V, X))  # lme4's vcov: scale (X' V^-1 X)^-1, V on data scale
    np.testing.assert_allclose(np.asarray(ours.cov_params())[:2, :2], vcov, rtol=1e-8)
    np.testing.assert_allclose(np.asarray(ours.bse_fe), np.sqrt(np.diag(vcov)), rtol=1e-8)
    inv_hess = np.linalg.inv(-ours_model.hessian(ours.params_object)[0])[:2, :2]  # statsmodels' form
    np.testing.assert_allclose(inv_hess, np.asarray(ref.cov_params())[:2, :2], rtol=1e-4)
    assert np.max(np.abs(inv_hess / vcov - 1)) > 1e-3  # the documented difference is real
