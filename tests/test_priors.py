"""Tests for the priors: auto-scaled defaults, user overrides, validation and the PyMC distributions."""

import dataclasses
import math
import types

import numpy as np
import pandas as pd
import pymc as pm
import pytest
from scipy import stats

import bayesmlm as bm
from bayesmlm.bayes.prior_set import PriorSet, default_priors, resolve_priors
from bayesmlm.bayes.priors import (
    LKJ,
    Exponential,
    HalfCauchy,
    HalfNormal,
    HalfStudentT,
    Normal,
    Prior,
    StudentT,
)
from bayesmlm.design.names import cor_names, sd_names
from bayesmlm.exceptions import BayesMLMError, PriorError

SLEEP = "Reaction ~ Days + (Days | Subject)"


@pytest.fixture(scope="module")
def sleep_model():
    return bm.Model(SLEEP, bm.load_dataset("sleepstudy"))


@pytest.fixture(scope="module")
def sleep_defaults(sleep_model):
    return default_priors(sleep_model.design, sleep_model.structure)


def resolve(model, priors):
    return resolve_priors(model.design, model.structure, priors)


def param(prior: Prior, name: str) -> float:
    return dict(prior.params)[name]


# --- defaults ----------------------------------------------------------------------------------


def test_default_scales_on_sleepstudy(sleep_defaults):
    data = bm.load_dataset("sleepstudy")
    y = data["Reaction"].to_numpy(dtype=float)
    sd_y = np.std(y, ddof=1)
    sd_days = np.std(data["Days"].to_numpy(dtype=float), ddof=1)
    assert sd_y == pytest.approx(56.3288, abs=1e-4)  # R: sd(sleepstudy$Reaction)

    intercept = sleep_defaults.fixed["Intercept"]
    assert intercept.family == "Normal"
    assert param(intercept, "mu") == pytest.approx(y.mean())
    assert param(intercept, "sigma") == pytest.approx(2.5 * sd_y)

    days = sleep_defaults.fixed["Days"]
    assert days.family == "Normal"
    assert param(days, "mu") == 0.0
    assert param(days, "sigma") == pytest.approx(2.5 * sd_y / sd_days)

    sd_int = sleep_defaults.sd["sd(Intercept|Subject)"]
    sd_slope = sleep_defaults.sd["sd(Days|Subject)"]
    assert sd_int.family == sd_slope.family == "HalfStudentT"
    assert param(sd_int, "nu") == param(sd_slope, "nu") == 3.0
    assert param(sd_int, "sigma") == pytest.approx(sd_y)
    assert param(sd_slope, "sigma") == pytest.approx(sd_y / sd_days)

    assert sleep_defaults.cor == {"cor(Subject)": LKJ(2)}
    assert sleep_defaults.cor["cor(Subject)"].eta == 2.0
    assert sleep_defaults.sigma == HalfStudentT(3, sd_y)
    assert set(sleep_defaults.source.values()) == {"default"}


def test_default_table_order_columns_and_classes(sleep_defaults):
    table = sleep_defaults.table()
    assert isinstance(table, pd.DataFrame)
    assert list(table.columns) == ["class", "prior", "source"]
    assert table.index.tolist() == [
        "Intercept",
        "Days",
        "sd(Intercept|Subject)",
        "sd(Days|Subject)",
        "cor(Subject)",
        "sigma",
    ]
    assert table["class"].tolist() == ["Intercept", "b", "sd", "sd", "cor", "sigma"]
    assert table.loc["cor(Subject)", "prior"] == "LKJ(eta=2)"
    assert table.loc["sigma", "prior"] == str(sleep_defaults.sigma)
    assert (table["source"] == "default").all()
    text = str(sleep_defaults)
    assert "sd(Days|Subject)" in text and "HalfStudentT(nu=3" in text and "default" in text


def test_uncorrelated_terms_have_no_cor_and_two_sds():
    m = bm.Model("Reaction ~ Days + (Days || Subject)", bm.load_dataset("sleepstudy"))
    ps = default_priors(m.design, m.structure)
    assert ps.cor == {}
    assert list(ps.sd) == ["sd(Intercept|Subject)", "sd(Days|Subject)"]
    assert "cor" not in ps.table()["class"].tolist()


def test_crossed_penicillin_has_one_sd_per_factor():
    data = bm.load_dataset("Penicillin")
    m = bm.Model("diameter ~ 1 + (1 | plate) + (1 | sample)", data)
    ps = default_priors(m.design, m.structure)
    assert set(ps.sd) == {"sd(Intercept|plate)", "sd(Intercept|sample)"}
    assert ps.cor == {}
    assert list(ps.fixed) == ["Intercept"]
    sd_y = np.std(data["diameter"].to_numpy(dtype=float), ddof=1)
    for prior in ps.sd.values():
        assert param(prior, "sigma") == pytest.approx(sd_y)  # intercept columns: s_k = 1


def test_repeated_terms_on_one_factor_use_block_labels():
    """A model refuses the same term twice (its variance is not identified); a structure built by hand
    with it still gets distinct names from the block labels."""
    with pytest.raises(bm.DataError, match="appear more than once"):
        bm.Model("Reaction ~ Days + (Days | Subject) + (Days | Subject)", bm.load_dataset("sleepstudy"))
    one = bm.make_design("Reaction ~ Days + (Days | Subject)", bm.load_dataset("sleepstudy"))
    design = dataclasses.replace(one, blocks=one.blocks * 2)
    m = types.SimpleNamespace(design=design, structure=bm.random_structure(design))
    ps = default_priors(m.design, m.structure)
    assert list(ps.sd) == [
        "sd(Intercept|Subject)",
        "sd(Days|Subject)",
        "sd(Intercept|Subject.1)",
        "sd(Days|Subject.1)",
    ]
    assert list(ps.cor) == ["cor(Subject)", "cor(Subject.1)"]
    assert sd_names(m.structure) == (tuple(ps.sd),)
    assert cor_names(m.structure) == (("cor(Subject)", "cor(Subject.1)"),)


def test_split_intercept_and_slope_keep_the_group_name():
    m = bm.Model("Reaction ~ Days + (1 | Subject) + (0 + Days | Subject)", bm.load_dataset("sleepstudy"))
    assert sd_names(m.structure) == (("sd(Intercept|Subject)", "sd(Days|Subject)"),)
    assert cor_names(m.structure) == ((None, None),)


def test_constant_predictor_falls_back_to_response_scale():
    data = bm.load_dataset("sleepstudy").assign(const=2.0)
    m = bm.Model("Reaction ~ 0 + const + (0 + const | Subject)", data)
    ps = default_priors(m.design, m.structure)
    sd_y = np.std(data["Reaction"].to_numpy(dtype=float), ddof=1)
    assert param(ps.fixed["const"], "sigma") == pytest.approx(2.5 * sd_y)
    assert param(ps.sd["sd(const|Subject)"], "sigma") == pytest.approx(sd_y)


def test_constant_response_raises():
    data = bm.load_dataset("sleepstudy").assign(Reaction=250.0)
    with pytest.raises(bm.DataError, match="constant"):
        bm.Model(SLEEP, data)
    # the priors keep their own check for designs built by other means
    m = bm.Model(SLEEP, bm.load_dataset("sleepstudy"))
    design = dataclasses.replace(m.design, y=np.full(m.design.n, 250.0))
    with pytest.raises(PriorError, match="constant"):
        default_priors(design, m.structure)
    with pytest.raises(PriorError, match="constant"):
        resolve_priors(design, m.structure, None)


def test_defaults_use_only_the_rows_of_the_design():
    data = bm.load_dataset("sleepstudy").copy()
    data.loc[:9, "Days"] = np.nan
    with pytest.warns(bm.DroppedRowsWarning):
        m = bm.Model(SLEEP, data)
    ps = default_priors(m.design, m.structure)
    kept = data.dropna()
    assert param(ps.sigma, "sigma") == pytest.approx(np.std(kept["Reaction"], ddof=1))


# --- overrides ---------------------------------------------------------------------------------


def test_resolve_without_overrides_equals_defaults(sleep_model, sleep_defaults):
    assert resolve(sleep_model, None) == sleep_defaults
    assert resolve(sleep_model, {}) == sleep_defaults


def test_override_by_class(sleep_model, sleep_defaults):
    ps = resolve(
        sleep_model, {"sd": HalfNormal(10), "b": Normal(0, 5), "cor": LKJ(1), "sigma": Exponential(0.1)}
    )
    assert ps.sd == {"sd(Intercept|Subject)": HalfNormal(10), "sd(Days|Subject)": HalfNormal(10)}
    assert ps.fixed["Days"] == Normal(0, 5)
    assert ps.fixed["Intercept"] == sleep_defaults.fixed["Intercept"]  # "b" does not touch the intercept
    assert ps.cor["cor(Subject)"].eta == 1.0
    assert ps.sigma == Exponential(0.1)
    assert ps.source["Intercept"] == "default"
    assert {k: v for k, v in ps.source.items() if k != "Intercept"} == dict.fromkeys(
        ["Days", "sd(Intercept|Subject)", "sd(Days|Subject)", "cor(Subject)", "sigma"], "user"
    )
    assert ps.table()["source"].tolist() == ["default", "user", "user", "user", "user", "user"]


def test_intercept_class_and_name(sleep_model):
    ps = resolve(sleep_model, {"Intercept": StudentT(3, 300, 50)})
    assert ps.fixed["Intercept"] == StudentT(3, 300, 50)
    assert ps.source["Intercept"] == "user"


@pytest.mark.parametrize("order", ["class_first", "name_first"])
def test_specific_name_wins_over_class_regardless_of_order(sleep_model, order):
    items = [("sd", HalfNormal(10)), ("sd(Days|Subject)", HalfCauchy(2))]
    if order == "name_first":
        items.reverse()
    ps = resolve(sleep_model, dict(items))
    assert ps.sd["sd(Days|Subject)"] == HalfCauchy(2)
    assert ps.sd["sd(Intercept|Subject)"] == HalfNormal(10)


def test_names_tolerate_whitespace(sleep_model):
    ps = resolve(
        sleep_model,
        {"sd(Days | Subject)": HalfNormal(3), " cor( Subject ) ": LKJ(4), " sigma ": HalfNormal(7)},
    )
    assert ps.sd["sd(Days|Subject)"] == HalfNormal(3)
    assert ps.cor["cor(Subject)"] == LKJ(4)
    assert ps.sigma == HalfNormal(7)
    assert ps["sd( Days|Subject )"] == HalfNormal(3)


def test_unknown_name_lists_valid_names_and_suggests(sleep_model):
    with pytest.raises(PriorError) as err:
        resolve(sleep_model, {"sd(Day|Subject)": HalfNormal(1)})
    msg = str(err.value)
    for name in ["Intercept", "Days", "sd(Intercept|Subject)", "sd(Days|Subject)", "cor(Subject)", "sigma"]:
        assert name in msg
    assert "valid classes: Intercept, b, sd, cor, sigma" in msg
    assert "did you mean 'sd(Days|Subject)'" in msg


def test_class_absent_from_model_is_an_error():
    m = bm.Model("Reaction ~ Days + (Days || Subject)", bm.load_dataset("sleepstudy"))
    with pytest.raises(PriorError, match="no parameters of class 'cor'"):
        resolve(m, {"cor": LKJ(1)})
    with pytest.raises(PriorError, match="no parameter or class 'cor\\(Subject\\)'"):
        resolve(m, {"cor(Subject)": LKJ(1)})


@pytest.mark.parametrize(
    ("key", "prior", "allowed"),
    [
        ("sd", Normal(0, 1), "positive"),
        ("sd(Days|Subject)", StudentT(3), "positive"),
        ("sigma", Normal(0, 1), "positive"),
        ("sigma", LKJ(2), "positive"),
        ("cor", HalfNormal(1), "LKJ"),
        ("cor(Subject)", Normal(0, 1), "LKJ"),
        ("b", HalfNormal(1), "real line"),
        ("Days", LKJ(2), "real line"),
        ("Intercept", Exponential(1), "real line"),
    ],
)
def test_wrong_kind_of_prior_raises(sleep_model, key, prior, allowed):
    with pytest.raises(PriorError, match=allowed) as err:
        resolve(sleep_model, {key: prior})
    assert str(prior) in str(err.value)


@pytest.mark.parametrize("value", [3.0, "Normal(0, 1)", pm.Normal.dist(0, 1), None])
def test_value_that_is_not_a_prior_raises(sleep_model, value):
    with pytest.raises(PriorError, match="must be a bayesmlm prior"):
        resolve(sleep_model, {"Days": value})


def test_malformed_priors_argument(sleep_model):
    with pytest.raises(PriorError, match="dict"):
        resolve(sleep_model, [("sd", HalfNormal(1))])
    with pytest.raises(PriorError, match="strings"):
        resolve(sleep_model, {1: HalfNormal(1)})
    with pytest.raises(PriorError, match="more than once"):
        resolve(sleep_model, {"sd(Days|Subject)": HalfNormal(1), "sd(Days | Subject)": HalfNormal(2)})


def test_prior_error_is_a_value_error():
    assert issubclass(PriorError, BayesMLMError) and issubclass(PriorError, ValueError)


# --- Prior objects -----------------------------------------------------------------------------


def test_prior_str_and_params():
    assert str(HalfStudentT(3, 20)) == "HalfStudentT(nu=3, sigma=20)"
    assert str(Normal(298.50789166666664, 140.82189281308785)) == "Normal(mu=298.5, sigma=140.8)"
    assert str(StudentT(3, 0, 2.5)) == "StudentT(nu=3, mu=0, sigma=2.5)"
    assert str(HalfCauchy()) == "HalfCauchy(beta=1)"
    assert str(Exponential(0.25)) == "Exponential(lam=0.25)"
    assert str(LKJ(2)) == "LKJ(eta=2)"
    assert repr(HalfNormal(5)) == "HalfNormal(sigma=5)"
    p = HalfStudentT(3, 20)
    assert p.params == (("nu", 3.0), ("sigma", 20.0))
    assert all(type(v) is float for _, v in p.params)
    assert p == Prior("HalfStudentT", {"sigma": 20, "nu": 3})  # mapping, any order, ints accepted
    assert hash(p) == hash(HalfStudentT(3.0, 20.0))


def test_is_positive_and_eta():
    assert all(p.is_positive for p in [HalfNormal(), HalfStudentT(), HalfCauchy(), Exponential()])
    assert not any(p.is_positive for p in [Normal(), StudentT(3), LKJ()])
    assert LKJ(3).eta == 3.0
    with pytest.raises(AttributeError):
        _ = Normal().eta


@pytest.mark.parametrize(
    "make",
    [
        lambda: Normal(0, 0),
        lambda: Normal(0, -1),
        lambda: Normal(float("nan"), 1),
        lambda: Normal(float("inf"), 1),
        lambda: StudentT(0),
        lambda: StudentT(-3, 0, 1),
        lambda: HalfNormal(float("inf")),
        lambda: HalfStudentT(3, 0),
        lambda: HalfStudentT(float("nan"), 1),
        lambda: HalfCauchy(-2),
        lambda: Exponential(0),
        lambda: LKJ(0),
        lambda: LKJ(-1),
        lambda: Normal("0", 1),
        lambda: HalfNormal(True),
        lambda: Prior("Gamma", (("alpha", 1.0), ("beta", 1.0))),
        lambda: Prior("Normal", (("mu", 0.0),)),
        lambda: Prior("HalfNormal", (("sigma", 1.0), ("tau", 1.0))),
    ],
)
def test_invalid_parameters_raise(make):
    with pytest.raises(PriorError):
        make()


def test_invalid_parameter_message_names_family_and_parameter():
    with pytest.raises(PriorError, match=r"HalfStudentT: sigma must be positive"):
        HalfStudentT(3, -1)
    with pytest.raises(PriorError, match="supported families"):
        Prior("Gamma", ())


def test_halfstudentt_logp_is_finite():
    prior = HalfStudentT(3, 50)
    value = float(pm.logp(prior.dist(), 1.0).eval())
    assert math.isfinite(value)
    assert value == pytest.approx(math.log(2) + stats.t(df=3, scale=50).logpdf(1.0))


@pytest.mark.parametrize(
    ("prior", "scipy_logpdf"),
    [
        (Normal(1, 2), lambda x: stats.norm(1, 2).logpdf(x)),
        (StudentT(4, 1, 2), lambda x: stats.t(4, 1, 2).logpdf(x)),
        (HalfNormal(2), lambda x: stats.halfnorm(scale=2).logpdf(x)),
        (HalfStudentT(3, 2), lambda x: math.log(2) + stats.t(3, scale=2).logpdf(x)),
        (HalfCauchy(2), lambda x: stats.halfcauchy(scale=2).logpdf(x)),
        (Exponential(2), lambda x: stats.expon(scale=0.5).logpdf(x)),
    ],
)
def test_dist_logp_matches_scipy(prior, scipy_logpdf):
    x = np.array([0.5, 1.5])
    logp = pm.logp(prior.dist(shape=(2,)), x).eval()
    assert logp.shape == (2,)
    np.testing.assert_allclose(logp, scipy_logpdf(x), rtol=1e-6)


def test_create_registers_a_variable():
    with pm.Model(coords={"term": ["a", "b", "c"]}) as model:
        b = Normal(0, 10).create("b", dims="term")
        s = HalfStudentT(3, 5).create("s")
    assert [v.name for v in model.free_RVs] == ["b", "s"]
    assert model.named_vars_to_dims["b"] == ("term",)
    assert b.eval().shape == (3,)
    assert s.eval().shape == ()
    logp = model.compile_logp()(model.initial_point())
    assert np.isfinite(logp)


def test_lkj_cannot_make_a_distribution():
    with pytest.raises(PriorError, match="LKJCholeskyCov"):
        LKJ(2).dist()
    with pm.Model(), pytest.raises(PriorError, match="LKJCholeskyCov"):
        LKJ(2).create("cor")


def test_priorset_lookup_and_class(sleep_defaults):
    assert isinstance(sleep_defaults, PriorSet)
    assert sleep_defaults["sigma"] is sleep_defaults.sigma
    assert sleep_defaults["cor(Subject)"] == LKJ(2)
    assert sleep_defaults.prior_class("Days") == "b"
    assert sleep_defaults.prior_class("Intercept") == "Intercept"
    with pytest.raises(KeyError):
        sleep_defaults["sd(Days|Plate)"]


@pytest.mark.parametrize(
    "prior",
    [
        bm.Normal(250.0, 50.0),
        bm.StudentT(3.0, 10.0, 5.0),
        bm.HalfNormal(20.0),
        bm.HalfStudentT(3.0, 20.0),
        bm.HalfCauchy(5.0),
        bm.Exponential(0.05),
    ],
    ids=str,
)
@pytest.mark.parametrize("factor", [56.3, 1e6, 1e-6])
def test_scaled_prior_is_the_density_of_the_divided_variable(prior, factor):
    """p_scaled(x / s) = s * p(x): the sampler's standardised priors are the user's priors."""
    x = np.array([0.5, 3.0, 17.0, 240.0])

    def logp(p, values):  # float64 parameters: PyTensor makes a Python 20.0 a float32 constant
        dist = getattr(pm, p.family).dist(**{k: np.float64(v) for k, v in p.params})
        return pm.logp(dist, values).eval()

    original = logp(prior, x)
    scaled = logp(prior.scaled(factor), x / factor)
    np.testing.assert_allclose(scaled, original + np.log(factor), rtol=1e-9, atol=1e-9)


def test_scaled_prior_set_keeps_correlations_and_scales_the_rest():
    m = bm.Model(SLEEP, bm.load_dataset("sleepstudy"), priors={"b": bm.Normal(1.0, 4.0)})
    ps = m.prior_set.scaled(2.0)
    assert ps.cor == m.prior_set.cor
    assert ps["Days"] == bm.Normal(0.5, 2.0)
    assert ps.sigma.family == m.prior_set.sigma.family == "HalfStudentT"
    assert dict(ps.sigma.params) == pytest.approx(
        {"nu": dict(m.prior_set.sigma.params)["nu"], "sigma": dict(m.prior_set.sigma.params)["sigma"] / 2.0}
    )
    assert bm.Exponential(0.05).scaled(2.0) == bm.Exponential(0.1)  # a rate is multiplied
    assert ps.source == m.prior_set.source
