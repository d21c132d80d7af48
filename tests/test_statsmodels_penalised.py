"""Penalised fits, statsmodels entry point: ``fit(fe_pen=, cov_pen=)``, ``fit_regularized(method=Penalty)``.

Side by side with statsmodels 0.15 (skipped without it). statsmodels subtracts the penalties from the
profiled log-likelihood over the covariance parameters, the fixed-effect penalty evaluated at the GLS
fixed effects. Its default optimiser stops about 1e-4 (relative) short of that objective's maximum, so
the references here are statsmodels' fits with ``method="bfgs", gtol=1e-10`` where those converge.
"""

import warnings

import numpy as np
import pandas as pd
import pytest

import bayesmlm as bm
from bayesmlm import MixedLM
from bayesmlm.statsmodels_api.params import MixedLMParams

sm = pytest.importorskip("statsmodels.api")
from statsmodels.base._penalties import L2, PSD, PseudoHuber  # noqa: E402

TIGHT = {"method": "bfgs", "gtol": 1e-10, "maxiter": 2000}


@pytest.fixture(scope="module")
def sleep():
    return bm.load_dataset("sleepstudy")


@pytest.fixture(scope="module")
def unbalanced():
    """25 groups of 2-11 rows and a covariate with a group part: the GLS fixed effects depend on θ."""
    rng = np.random.default_rng(7)
    sizes = rng.integers(2, 12, size=25)
    g = np.repeat(np.arange(25), sizes)
    n = len(g)
    x = rng.normal(size=n) + 0.5 * rng.normal(size=25)[g]
    y = 1.0 + 0.5 * x + rng.normal(scale=0.8, size=25)[g] + rng.normal(size=n)
    return y, np.column_stack([np.ones(n), x]), g


def _ref(model, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return model.fit(**kw)


def _same(ours, ref, rtol):
    np.testing.assert_allclose(np.asarray(ours.fe_params), np.asarray(ref.fe_params), rtol=rtol)
    np.testing.assert_allclose(np.asarray(ours.params), np.asarray(ref.params), rtol=rtol)
    np.testing.assert_allclose(np.asarray(ours.cov_re), np.asarray(ref.cov_re), rtol=rtol)
    assert ours.scale == pytest.approx(ref.scale, rel=rtol)
    assert ours.llf == pytest.approx(ref.llf, rel=1e-9)


@pytest.mark.parametrize("reml", [True, False])
def test_psd_covariance_penalty_equals_statsmodels_random_intercept(sleep, reml):
    kw = {"groups": "Subject"}
    ref = _ref(sm.MixedLM.from_formula("Reaction ~ Days", sleep, **kw), reml=reml, cov_pen=PSD(1.0), **TIGHT)
    ours = MixedLM.from_formula("Reaction ~ Days", sleep, **kw).fit(reml=reml, cov_pen=PSD(1.0))
    _same(ours, ref, rtol=1e-6)  # measured 3e-10
    # statsmodels 0.15, bfgs gtol=1e-10: Subject Var 1.676603310105 (REML), 1.575820086211 (ML)
    assert ours.params.iloc[2] == pytest.approx(1.676603310105 if reml else 1.575820086211, rel=1e-6)
    assert ours.llf == pytest.approx(-892.7947959068933 if reml else -896.6597306666059, rel=1e-10)
    assert isinstance(ours.params, pd.Series) and list(ours.params.index) == list(ref.params.index)


def test_psd_covariance_penalty_equals_statsmodels_random_slope_ml(sleep):
    kw = {"groups": "Subject", "re_formula": "~Days"}
    ref = _ref(sm.MixedLM.from_formula("Reaction ~ Days", sleep, **kw), reml=False, cov_pen=PSD(1.0), **TIGHT)
    ours = MixedLM.from_formula("Reaction ~ Days", sleep, **kw).fit(reml=False, cov_pen=PSD(1.0))
    _same(ours, ref, rtol=1e-5)  # measured 3.4e-6 (the covariance of the two effects, 4.5e-4)
    plain = MixedLM.from_formula("Reaction ~ Days", sleep, **kw).fit(reml=False)
    assert ours.params.iloc[2] > 1.2 * plain.params.iloc[2]  # PSD pushes cov_re away from singular


@pytest.mark.parametrize("reml", [True, False])
def test_psd_covariance_penalty_equals_statsmodels_unbalanced_arrays(unbalanced, reml):
    y, X, g = unbalanced
    ref = _ref(sm.MixedLM(y, X, g), reml=reml, cov_pen=PSD(1.0), **TIGHT)
    ours = MixedLM(y, X, g).fit(reml=reml, cov_pen=PSD(1.0))
    assert isinstance(ours.params, np.ndarray) and isinstance(ours.cov_params(), np.ndarray)
    _same(ours, ref, rtol=1e-6)
    # the variance parameter's standard error from the unpenalised Hessian, as statsmodels
    np.testing.assert_allclose(ours.bse[2:], ref.bse[2:], rtol=1e-4)
    # the fixed effects': lme4's vcov, scale (X'V^-1 X)^-1, as in our unpenalised results (statsmodels'
    # whole-Hessian inverse differs by 1.5e-3 here)
    xvx = sum(
        X[g == k].T @ np.linalg.solve(ours.scale * np.eye(sum(g == k)) + ours.cov_re[0, 0], X[g == k])
        for k in np.unique(g)
    )
    np.testing.assert_allclose(ours.bse[:2], np.sqrt(np.diag(np.linalg.inv(xvx))), rtol=1e-8)
    np.testing.assert_allclose(ours.bse[:2], ref.bse[:2], rtol=2e-3)
    assert ours.random_effects is None


@pytest.mark.parametrize("reml", [True, False])
@pytest.mark.parametrize("penalty", [L2(), PseudoHuber(0.5)], ids=["L2", "PseudoHuber"])
def test_smooth_fe_penalty_in_a_balanced_design_equals_statsmodels(sleep, reml, penalty):
    # balanced: the GLS fixed effects do not depend on θ, so the penalty only shifts llf
    kw = {"groups": "Subject", "re_formula": "~Days"}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = sm.MixedLM.from_formula("Reaction ~ Days", sleep, **kw).fit_regularized(
            method=penalty, alpha=3.0, reml=reml
        )
    md = MixedLM.from_formula("Reaction ~ Days", sleep, **kw)
    ours = md.fit_regularized(method=penalty, alpha=3.0, reml=reml)
    np.testing.assert_allclose(ours.fe_params, ref.fe_params, rtol=1e-9)
    np.testing.assert_allclose(ours.params, ref.params, rtol=2e-4)  # statsmodels' default gtol: 1.6e-4
    plain = md.fit(reml=reml)
    np.testing.assert_allclose(ours.params, plain.params, rtol=1e-6)
    shift = float(penalty.func(np.asarray(plain.fe_params)))
    assert penalty.alpha == 3.0
    assert ours.llf == pytest.approx(plain.llf - shift, rel=1e-10)
    assert ours.llf == pytest.approx(ref.llf, rel=1e-9)


@pytest.mark.parametrize("reml", [True, False])
def test_fe_penalty_unbalanced_maximises_statsmodels_objective(unbalanced, reml):
    # statsmodels' score leaves out d fe_pen(β̂(θ))/dθ, so its optimiser stops near the unpenalised θ;
    # ours maximises the objective it states: a higher llf, the same GLS fixed effects to 1e-4
    y, X, g = unbalanced
    ref = _ref(sm.MixedLM(y, X, g), reml=reml, fe_pen=L2(), **TIGHT)
    md = MixedLM(y, X, g)
    ours = md.fit(reml=reml, fe_pen=L2())
    assert ours.llf >= ref.llf
    assert ours.llf - ref.llf < 1e-5  # measured 2.1e-6 (REML), 2.4e-6 (ML)
    np.testing.assert_allclose(ours.fe_params, ref.fe_params, rtol=1e-4)
    # the objective is flat at our optimum (central differences over the square-root parameter)
    po = ours.params_object
    assert md.fe_pen is not None and md.cov_pen is None  # kept by the model, as statsmodels keeps them

    def objective(s):  # the model's loglike subtracts its fe_pen after the fit, as statsmodels'
        cov = np.array([[s**2]])
        fe = md.get_fe_params(cov, np.zeros(0))[0]
        p = MixedLMParams.from_components(fe, cov)
        return md.loglike(p, profile_fe=False)

    s0, h = float(np.sqrt(po.cov_re[0, 0])), 1e-5
    assert abs(objective(s0 + h) - objective(s0 - h)) / (2 * h) < 1e-4
    assert objective(s0) == pytest.approx(ours.llf, rel=1e-12)
    plain = md.fit(reml=reml)
    assert abs(ours.params[2] / plain.params[2] - 1) > 5e-4  # the penalty moved θ


def test_zero_penalties_give_the_unpenalised_fit(sleep, unbalanced):
    y, X, g = unbalanced
    md = MixedLM(y, X, g)
    plain = md.fit()
    for kw in ({"fe_pen": L2(0.0)}, {"cov_pen": PSD(0.0)}, {"fe_pen": PseudoHuber(1.0, 0.0)}):
        fit = md.fit(**kw)
        np.testing.assert_allclose(fit.params, plain.params, rtol=1e-7)
        assert fit.llf == pytest.approx(plain.llf, rel=1e-12)
        np.testing.assert_allclose(fit.bse, plain.bse, rtol=1e-5)
    fit = md.fit_regularized(method=L2(), alpha=0.0)
    np.testing.assert_allclose(fit.params, plain.params, rtol=1e-7)


def test_duck_typed_penalties_need_no_statsmodels(unbalanced):
    class Ridge:  # statsmodels' L2 protocol, written out
        alpha = 1.0

        def func(self, b):
            return self.alpha * float(np.sum(b**2))

        def deriv(self, b):
            return 2 * self.alpha * b

    class LogDet:
        def func(self, mat, mat_inv):
            return -2.0 * float(np.sum(np.log(np.diag(np.linalg.cholesky(mat)))))

        def deriv(self, mat, mat_inv):
            d = 2 * mat_inv - np.diag(np.diag(mat_inv))
            return -d[np.tril_indices(mat.shape[0])]

    y, X, g = unbalanced
    md = MixedLM(y, X, g)
    np.testing.assert_allclose(md.fit(fe_pen=Ridge()).params, md.fit(fe_pen=L2()).params, rtol=1e-10)
    np.testing.assert_allclose(md.fit(cov_pen=LogDet()).params, md.fit(cov_pen=PSD(1.0)).params, rtol=1e-10)


def test_penalised_fit_is_invariant_to_row_order_and_group_type(unbalanced):
    y, X, g = unbalanced
    order = np.random.default_rng(3).permutation(len(y))
    a = MixedLM(y, X, g).fit(cov_pen=PSD(1.0), fe_pen=L2())
    b = MixedLM(y[order], X[order], g[order]).fit(cov_pen=PSD(1.0), fe_pen=L2())
    np.testing.assert_allclose(a.params, b.params, rtol=1e-6)
    assert a.llf == pytest.approx(b.llf, rel=1e-10)
    c = MixedLM(y, X, np.char.add("g", g.astype(str))).fit(cov_pen=PSD(1.0), fe_pen=L2())  # string groups
    np.testing.assert_allclose(a.params, c.params, rtol=1e-6)
    assert a.llf == pytest.approx(c.llf, rel=1e-10)


def test_objects_without_func_and_deriv_are_refused(sleep):
    md = MixedLM.from_formula("Reaction ~ Days", sleep, groups="Subject")
    with pytest.raises(bm.ArgumentError, match="fe_pen must be a penalty with func"):
        md.fit(fe_pen=object())
    with pytest.raises(bm.ArgumentError, match=r"cov_pen must be a penalty with func.*got str"):
        md.fit(cov_pen="psd")
    with pytest.raises(bm.ArgumentError, match="fe_pen must be a penalty"):
        md.fit_regularized(method=3.0)
    with pytest.raises(NotImplementedError, match="bayes=True with fe_pen"):
        md.fit(fe_pen=L2(), bayes=True)


@pytest.fixture(scope="module")
def with_vc():
    """An unbalanced random intercept plus a variance component for a slope (statsmodels' vc_formula)."""
    rng = np.random.default_rng(11)
    sizes = rng.integers(3, 10, size=30)
    g = np.repeat(np.arange(30), sizes)
    n = len(g)
    x, z = rng.normal(size=n) + 0.5 * rng.normal(size=30)[g], rng.normal(size=n)
    y = 1 + 0.5 * x + rng.normal(scale=0.7, size=30)[g] + 0.4 * z * rng.normal(size=30)[g]
    return pd.DataFrame({"y": y + rng.normal(size=n), "x": x, "z": z, "g": g})


@pytest.mark.parametrize("reml", [True, False])
def test_penalties_with_a_variance_component(with_vc, reml):
    kw = {"groups": "g", "re_formula": "1", "vc_formula": {"zs": "0 + z"}}
    ref_model = sm.MixedLM.from_formula("y ~ x", with_vc, **kw)
    md = MixedLM.from_formula("y ~ x", with_vc, **kw)
    ref = _ref(ref_model, reml=reml, cov_pen=PSD(1.0), **TIGHT)
    ours = md.fit(reml=reml, cov_pen=PSD(1.0))
    _same(ours, ref, rtol=1e-5)
    np.testing.assert_allclose(ours.vcomp, ref.vcomp, rtol=1e-5)
    # fe_pen: statsmodels' BFGS does not converge (|grad| 1e-3, its score lacks the chain term); ours
    # reaches a higher value of statsmodels' own objective
    ref = _ref(ref_model, reml=reml, fe_pen=L2(), **TIGHT)
    ours = md.fit(reml=reml, fe_pen=L2())
    assert not ref.converged and ours.converged
    assert 1e-5 < ours.llf - ref.llf < 1e-3  # measured 1.9e-4 (REML), 1.9e-4 (ML)
    np.testing.assert_allclose(ours.fe_params, ref.fe_params, rtol=1e-3)
