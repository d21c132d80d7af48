"""The collapsed sampler: exact conditional draws, the same posterior as the full model, the path chosen."""

import arviz as az
import numpy as np
import pytest
from scipy import stats

import bayesmlm as bm
from bayesmlm.bayes.collapsed import (
    FLOAT32_GROUP_EFFECTS_BYTES,
    MAX_DENSE,
    collapsed_plan,
    draw_group_effects,
    group_effects_dtype,
    theta_draws,
)
from bayesmlm.design.crossprod import cross_products
from bayesmlm.exceptions import FitError
from tests.conftest import bayes_fit
from tests.test_marginal_loglik import dense_system

MODELS = [
    ("Reaction ~ Days + (Days | Subject)", "sleepstudy"),
    ("diameter ~ 1 + (1 | plate) + (1 | sample)", "Penicillin"),
    ("strength ~ 1 + (1 | batch/cask)", "Pastes"),
]


class _ZeroNormal:
    """A generator whose standard normals are all 0: the conditional draw is then the conditional mean."""

    def standard_normal(self, shape):
        return np.zeros(shape)


def _dense_conditional(model, theta, beta, sigma):
    """Mean and covariance of all group effects given theta, beta, sigma and y, from dense algebra."""
    design = model.design
    Z, lam = dense_system(model, theta)
    G = sigma**2 * lam @ lam.T  # prior covariance of b
    V = Z @ G @ Z.T + sigma**2 * np.eye(design.n)
    K = G @ Z.T @ np.linalg.inv(V)
    return K @ (design.y - design.X @ beta), G - K @ Z @ G


@pytest.mark.parametrize(("formula", "dataset"), MODELS)
def test_conditional_draws_have_the_exact_gaussian_mean_and_covariance(formula, dataset):
    model = bm.Model(formula, bm.load_dataset(dataset))
    structure = model.structure
    stats_ = cross_products(model.design, structure)
    rng = np.random.default_rng(11)
    theta = structure.theta_initial() * 0.8 + rng.uniform(0.0, 0.3, structure.n_theta)
    beta = np.linalg.lstsq(model.design.X, model.design.y, rcond=None)[0] + 0.5
    sigma = 0.9 * float(np.std(model.design.y))
    mean, cov = _dense_conditional(model, theta, beta, sigma)

    exact = draw_group_effects(structure, stats_, theta[None], beta[None], np.array([sigma]), _ZeroNormal())
    flat = np.concatenate([b[0].reshape(-1) for b in exact])
    np.testing.assert_allclose(flat, mean, rtol=1e-8, atol=1e-8 * np.abs(mean).max())

    S = 20_000
    draws = draw_group_effects(
        structure, stats_, np.tile(theta, (S, 1)), np.tile(beta, (S, 1)), np.full(S, sigma), rng
    )
    flat = np.concatenate([b.reshape(S, -1) for b in draws], axis=1)
    sd = np.sqrt(np.diag(cov))
    # sample means within 4.5 standard errors; sample covariances within 0.05 in correlation units
    assert np.all(np.abs(flat.mean(axis=0) - mean) < 4.5 * sd / np.sqrt(S))
    emp = np.cov(flat, rowvar=False)
    assert np.abs((emp - cov) / np.outer(sd, sd)).max() < 0.05


def test_theta_draws_invert_the_covariance_parameterisation():
    fit = bayes_fit("sleep_max")
    post = fit.posterior
    theta = theta_draws(post, fit.model.structure)
    f = fit.model.structure.factors[0]
    lam = np.stack([f.relative_factor(t) for t in theta[:50]])
    sigma = post["sigma"].values.reshape(-1)[:50]
    cov = sigma[:, None, None] ** 2 * lam @ lam.transpose(0, 2, 1)
    sd = post["sd_Subject"].values.reshape(-1, 2)[:50]
    np.testing.assert_allclose(np.sqrt(cov[:, [0, 1], [0, 1]]), sd, rtol=1e-10)
    cor = post["cor_Subject"].values.reshape(-1, 2, 2)[:50, 1, 0]
    np.testing.assert_allclose(cov[:, 1, 0] / (sd[:, 0] * sd[:, 1]), cor, rtol=1e-8, atol=1e-12)


def _kurtosis(x):
    x = x.reshape(-1)
    return float(np.mean((x - x.mean()) ** 4) / x.var() ** 2)


@pytest.mark.parametrize("model_id", ["sleep_max", "penicillin_crossed"])
def test_collapsed_and_full_models_give_the_same_posterior(model_id):
    """Means agree within 4 Monte Carlo standard errors (ArviZ's MCSE of each fit, combined); posterior
    sds within 4 standard errors of a sample sd, ``sd * sqrt((kurtosis - 1) / (4 ESS))`` per fit."""
    collapsed, full = bayes_fit(model_id), bayes_fit(model_id, method="full")
    assert collapsed.info["method"] == "collapsed" and full.info["method"] == "full"
    a, b = collapsed.summary(), full.summary()
    draws_a, draws_b = collapsed.parameter_draws(), full.parameter_draws()
    for name in a.index:
        se = np.hypot(a.loc[name, "mcse_mean"], b.loc[name, "mcse_mean"])
        assert abs(a.loc[name, "mean"] - b.loc[name, "mean"]) < 4 * se, name
        rel = np.sqrt(
            (_kurtosis(draws_a[name]) - 1) / (4 * a.loc[name, "ess_bulk"])
            + (_kurtosis(draws_b[name]) - 1) / (4 * b.loc[name, "ess_bulk"])
        )
        assert abs(a.loc[name, "sd"] / b.loc[name, "sd"] - 1) < 4 * rel, name


@pytest.mark.parametrize("model_id", ["sleep_max", "penicillin_crossed"])
def test_group_effects_drawn_after_collapsed_sampling_match_the_full_model(model_id):
    collapsed, full = bayes_fit(model_id), bayes_fit(model_id, method="full")
    for f in collapsed.model.structure.factors:
        ra, rb = collapsed.posterior[f"r_{f.group}"], full.posterior[f"r_{f.group}"]
        assert ra.dims == rb.dims and list(ra[f.group].values) == list(f.levels)
        se = np.hypot(az.mcse(ra).values, az.mcse(rb).values)
        z = np.abs(ra.mean(("chain", "draw")).values - rb.mean(("chain", "draw")).values) / se
        assert z.max() < 4.5, f.group
        sd_ratio = ra.std(("chain", "draw")).values / rb.std(("chain", "draw")).values
        assert np.abs(sd_ratio - 1).max() < 0.12, f.group


def test_collapsed_fit_records_its_path_and_has_loo():
    fit = bayes_fit("sleep_max")
    assert fit.info["method"] == "collapsed"
    assert "one grouping factor" in fit.info["method_reason"]
    assert fit.info["parameterization"] is None
    ll = fit.idata["log_likelihood"]["y"]
    assert ll.sizes == {"chain": 4, "draw": 1000, "obs": 180}
    # the pointwise log-likelihood is the full model's: y_i ~ N(x_i beta + z_i b, sigma) per draw
    d = fit.model.design
    f = fit.model.structure.factors[0]
    fixed = fit.posterior["fixed"].values[0, 5]
    r = fit.posterior["r_Subject"].values[0, 5]
    sigma = float(fit.posterior["sigma"].values[0, 5])
    mu = d.X @ fixed + np.sum(f.Z * r[f.codes], axis=1)
    np.testing.assert_allclose(ll.values[0, 5], stats.norm.logpdf(d.y, mu, sigma), rtol=1e-10)
    assert np.isfinite(fit.loo().elpd)


def test_seed_reproduces_collapsed_group_effects_exactly(sleepstudy):
    model = bm.Model("Reaction ~ Days + (1 | Subject)", sleepstudy)
    a = model.fit(draws=100, tune=100, chains=2, seed=3, progressbar=False)
    b = model.fit(draws=100, tune=100, chains=2, seed=3, progressbar=False)
    assert a.info["method"] == "collapsed"
    np.testing.assert_array_equal(a.posterior["r_Subject"].values, b.posterior["r_Subject"].values)


def test_method_full_forces_the_ordinary_model_and_bad_methods_are_rejected(sleepstudy):
    model = bm.Model("Reaction ~ Days + (1 | Subject)", sleepstudy)
    fit = model.fit(draws=50, tune=50, chains=1, seed=1, progressbar=False, method="full")
    assert fit.info["method"] == "full" and "method='full'" in fit.info["method_reason"]
    assert "z__Subject" in fit.posterior or "c__Subject" in fit.posterior
    with pytest.raises(ValueError, match="method must be"):
        model.fit(method="gibbs")


def test_large_dense_part_takes_the_full_path_and_refuses_collapsed():
    rng = np.random.default_rng(0)
    n = 3000
    import pandas as pd

    data = pd.DataFrame(
        {
            "y": rng.normal(size=n),
            "a": pd.Categorical(rng.integers(0, 400, n).astype(str)),
            "b": pd.Categorical(rng.integers(0, MAX_DENSE + 50, n).astype(str)),
        }
    )
    model = bm.Model("y ~ 1 + (1 | a) + (1 | b)", data)
    possible, reason = collapsed_plan(model.structure)
    assert not possible and str(MAX_DENSE) in reason
    with pytest.raises(FitError, match="collapsed path is not available"):
        model.fit(method="collapsed")


def test_data_rich_groups_mix_well_on_the_collapsed_path():
    """1,000 groups x 100 rows, where bambi's non-centred model gave bulk ESS 118 and R-hat 1.035."""
    from bayesmlm.datasets.simulate import simulate

    fit = bm.Model("y ~ x + (x | g)", simulate(1000, 100, seed=2026)).fit(seed=1, progressbar=False)
    summary = fit.summary()
    assert fit.info["method"] == "collapsed"
    assert summary["ess_bulk"].min() >= 1000
    assert summary["rhat"].max() <= 1.01
    assert int(fit.idata["sample_stats"]["diverging"].sum()) == 0
    assert fit.posterior["r_g"].shape == (4, 1000, 1000, 2)


def test_large_group_effect_draws_are_stored_in_float32():
    """100,000 groups x 2 terms x 500 draws would be 800 MB in float64: stored in float32 (400 MB)."""
    model = bm.Model("Reaction ~ Days + (Days | Subject)", bm.load_dataset("sleepstudy"))
    per_draw = 8 * 18 * 2  # bytes of one draw of every group effect, in float64
    limit = FLOAT32_GROUP_EFFECTS_BYTES // per_draw
    assert group_effects_dtype(model.structure, 4000) is np.float64
    assert group_effects_dtype(model.structure, limit) is np.float64
    assert group_effects_dtype(model.structure, limit + 1) is np.float32
    stats = cross_products(model.design, model.structure)
    theta, beta, sigma = np.array([[1.0, 0.1, 0.5]] * 3), np.array([[250.0, 10.0]] * 3), np.full(3, 25.0)
    b64, b32 = (
        draw_group_effects(model.structure, stats, theta, beta, sigma, np.random.default_rng(1), dtype)[0]
        for dtype in (np.float64, np.float32)
    )
    assert b32.dtype == np.float32 and b32.shape == b64.shape == (3, 18, 2)
    np.testing.assert_allclose(b32, b64, rtol=1e-6, atol=1e-4)
