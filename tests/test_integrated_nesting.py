"""A nested pair of intercepts with the outer effects integrated out (``bayes/integrated_nesting.py``).

Checked: which pairs qualify, the data-to-prior rule that picks the parameterisation (per-level ratios
at the Laplace estimate), that it is the same model as the plain non-centred form (same effects, same
likelihood, prior densities differing by the change of variables' Jacobian alone), that its marginal
log-density is the dense multivariate normal's, and that its prior draws have that covariance.
The grouseticks target itself (no divergences, R-hat <= 1.01, bulk ESS >= 400) is in
``tests/test_glmm_bayes.py``.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

import bayesmlm as bm
from bayesmlm.bayes.integrated_nesting import (
    INTEGRATED,
    _random,
    choose_integrated,
    integrated_logp,
    integrated_pairs,
)
from bayesmlm.bayes.level_centring import LEVEL_RATIO, level_ratios

GROUSE = "TICKS ~ YEAR + cHEIGHT + (1 | BROOD) + (1 | LOCATION)"


@pytest.fixture(scope="module")
def grouse():
    return bm.load_dataset("grouseticks")


@pytest.fixture(scope="module")
def grouse_ml(grouse):
    m = bm.Model(GROUSE, grouse, family="poisson")
    return m, m.fit_ml()


@pytest.mark.filterwarnings("ignore::bayesmlm.FewGroupsWarning")
def test_pairs_qualify_only_for_nested_intercepts(grouse):
    m = bm.Model(GROUSE, grouse, family="poisson")
    pairs = integrated_pairs(m.structure)
    assert list(pairs) == ["LOCATION"] and pairs["LOCATION"][0] == "BROOD"
    brood, loc = m.structure.factor("BROOD"), m.structure.factor("LOCATION")
    np.testing.assert_array_equal(pairs["LOCATION"][1][brood.codes], loc.codes)
    # a slope on the outer factor, crossed factors, or one factor: no pair
    for formula in (  # (1 | YEAR): 3 levels, FewGroupsWarning
        "TICKS ~ YEAR + cHEIGHT + (1 | BROOD) + (1 + cHEIGHT | LOCATION)",
        "TICKS ~ cHEIGHT + (1 | LOCATION) + (1 | YEAR)",
        "TICKS ~ YEAR + (1 | LOCATION)",
    ):
        assert integrated_pairs(bm.Model(formula, grouse, family="poisson").structure) == {}
    cbpp = bm.Model(
        "cbind(incidence, size - incidence) ~ period + (1 | herd)", bm.load_dataset("cbpp"), family="binomial"
    )
    assert integrated_pairs(cbpp.structure) == {}


def test_rule_centres_inner_levels_by_their_ratio(grouse_ml):
    m, ml = grouse_ml
    rho = level_ratios(m.structure, ml.theta, ml.working_weights)["BROOD"]
    choice, masks = choose_integrated(m.structure, ml.theta, ml.working_weights, {})
    assert choice == {"BROOD": "mixed", "LOCATION": INTEGRATED}
    np.testing.assert_array_equal(masks["BROOD"], rho > LEVEL_RATIO)
    assert int(masks["BROOD"].sum()) == 89  # of 118 broods; 22 broods have no tick at all
    # the default takes it, from the Laplace fit
    assert m.parameterization == {"BROOD": "mixed", "LOCATION": INTEGRATED}
    np.testing.assert_array_equal(m.centred_levels["BROOD"], masks["BROOD"])
    free = {v.name: v.type.shape for v in m.build().free_RVs}
    assert free["c__BROOD"] == (89,) and free["z__BROOD"] == (29,) and free["z__LOCATION"] == (63,)
    assert "c__LOCATION" not in free
    # every level informative: all centred; none: the pair keeps the block rule's choice
    before = {"BROOD": "noncentered", "LOCATION": "noncentered"}
    rich, rich_masks = choose_integrated(m.structure, ml.theta * 100, ml.working_weights, before)
    assert rich == {"BROOD": "centered", "LOCATION": INTEGRATED} and rich_masks == {}
    poor, poor_masks = choose_integrated(m.structure, ml.theta / 100, ml.working_weights, before)
    assert poor == before and poor_masks == {}
    assert choose_integrated(m.structure, None, None, before) == (before, {})
    # a user's choice on either block leaves the pair alone
    assert choose_integrated(m.structure, ml.theta, ml.working_weights, before, fixed={"BROOD"})[0] == before


def test_requests_and_refusals(grouse):
    asked = bm.Model(GROUSE, grouse, family="poisson", parameterization={"LOCATION": "integrated"})
    assert asked.parameterization == {"BROOD": "mixed", "LOCATION": INTEGRATED}
    both = bm.Model(
        GROUSE, grouse, family="poisson", parameterization={"LOCATION": "integrated", "BROOD": "centered"}
    )
    assert both.parameterization == {"BROOD": "centered", "LOCATION": INTEGRATED}
    assert {v.name: v.type.shape for v in both.build().free_RVs}["c__BROOD"] == (118,)
    # explicit per-block choices keep their old meaning
    old = bm.Model(GROUSE, grouse, family="poisson", parameterization={"BROOD": "mixed", "LOCATION": "mixed"})
    assert old.parameterization == {"BROOD": "mixed", "LOCATION": "mixed"}
    with pytest.raises(bm.ArgumentError, match="'integrated' is for a"):
        _ = bm.Model(
            GROUSE, grouse, family="poisson", parameterization={"BROOD": "integrated"}
        ).parameterization
    with pytest.raises(bm.ArgumentError, match="for generalized families"):
        _ = bm.Model(
            "Reaction ~ Days + (1 | Subject)",
            bm.load_dataset("sleepstudy"),
            parameterization={"Subject": "integrated"},
        ).parameterization


def test_integrated_logp_is_the_dense_multivariate_normal():
    parent = np.array([0, 0, 0, 1, 2, 2, 4])  # level 3 has no centred child
    rng = np.random.default_rng(3)
    value, mu = rng.normal(size=7), rng.normal(size=7)
    for sd_in, sd_out in ((0.8, 0.5), (0.1, 2.0), (1.5, 0.01)):
        cov = sd_in**2 * np.eye(7) + sd_out**2 * (parent[:, None] == parent[None, :])
        dense = stats.multivariate_normal(mu, cov).logpdf(value)
        ours = integrated_logp(value, mu, np.float64(sd_in), np.float64(sd_out), parent, 5).eval()
        assert ours == pytest.approx(dense, rel=1e-12)


def test_prior_draws_have_the_marginal_covariance():
    parent = np.array([0, 0, 1, 1, 1, 2])
    draw = _random(parent, 3)
    rng = np.random.default_rng(0)
    samples = np.array([draw(np.zeros(6), 0.7, 1.2, rng=rng) for _ in range(40_000)])
    cov = 0.7**2 * np.eye(6) + 1.2**2 * (parent[:, None] == parent[None, :])
    np.testing.assert_allclose(np.cov(samples.T), cov, atol=0.05)


def test_integrated_is_the_same_model_as_noncentred(grouse):
    """Same effects and likelihood; the prior densities differ by the Jacobian of the change of
    variables only: log p_int - log p_nc = -1/2 sum_l log P_l - n_L log sd_l - |C| log sd_b,
    P_l = 1/sd_l^2 + n_l/sd_b^2 (n_l the location's centred broods)."""
    rng = np.random.default_rng(7)
    r_b, r_l = rng.normal(0, 0.6, 118), rng.normal(0, 0.4, 63)
    sd_b, sd_l = 0.8, 0.55
    beta = np.array([0.4, 1.1, -0.9, -0.02])
    logp, lik, effects = {}, {}, {}
    for how in ("integrated", "noncentered"):
        par = {"BROOD": "mixed", "LOCATION": how} if how == "integrated" else "noncentered"
        m = bm.Model(GROUSE, grouse, family="poisson", parameterization=par)
        model = m.build()
        point = model.initial_point()
        point["sd__BROOD_log__"], point["sd__LOCATION_log__"] = np.log(sd_b), np.log(sd_l)
        point["fixed_centered"] = beta
        r_vars = model.replace_rvs_by_values([model["r_BROOD"], model["r_LOCATION"]])
        f = model.compile_fn(r_vars, inputs=model.value_vars, on_unused_input="ignore")
        if how == "integrated":
            mask = m.centred_levels["BROOD"]
            parent = integrated_pairs(m.structure)["LOCATION"][1]
            point["c__BROOD"], point["z__BROOD"] = np.zeros(mask.sum()), r_b[~mask] / sd_b
            point["z__LOCATION"] = np.zeros(63)
            rb0, rl0 = (a[:, 0] for a in f(point))  # a centred level: r_b + r_l[parent] = c - mu_b
            mu = -(rb0 + rl0[parent])[mask]
            s = mu + r_l[parent[mask]] + r_b[mask]
            n_l = np.bincount(parent[mask], minlength=63)
            precision = 1 / sd_l**2 + n_l / sd_b**2
            mean_u = np.bincount(parent[mask], s - mu, minlength=63) / sd_b**2 / precision
            point["c__BROOD"], point["z__LOCATION"] = s, (r_l - mean_u) * np.sqrt(precision)
            jac = -0.5 * np.log(precision).sum() - 63 * np.log(sd_l) - mask.sum() * np.log(sd_b)
        else:
            point["z__BROOD"], point["z__LOCATION"] = (r_b / sd_b)[:, None], (r_l / sd_l)[:, None]
        effects[how] = [a[:, 0] for a in f(point)]
        logp[how] = float(model.compile_logp(jacobian=False)(point))
        lik[how] = float(model.compile_logp(vars=[model["y"]])(point))
    for ours, plain, target in zip(effects["integrated"], effects["noncentered"], (r_b, r_l), strict=True):
        np.testing.assert_allclose(ours, target, atol=1e-10)
        np.testing.assert_allclose(plain, target, atol=1e-10)
    assert lik["integrated"] == pytest.approx(lik["noncentered"], rel=1e-12)
    assert logp["integrated"] - logp["noncentered"] == pytest.approx(jac, abs=1e-8)
