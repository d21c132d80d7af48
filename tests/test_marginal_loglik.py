"""The collapsed (random effects integrated out) log-likelihood equals the dense multivariate normal one."""

import numpy as np
import pytensor.tensor as pt
import pytest
from scipy import stats

import bayesmlm as bm
from bayesmlm.design.crossprod import sparse_z
from bayesmlm.families.gaussian import marginal_loglik


def dense_system(model, theta):
    """The dense ``Z`` (n × q) and block-diagonal ``Λ`` (q × q) of a model at ``theta``."""
    structure = model.structure
    Z = np.hstack([sparse_z(f).toarray() for f in structure.factors])
    lam_blocks = []
    for f in structure.factors:
        lam_blocks += [f.relative_factor(theta)] * f.n_levels
    q = sum(b.shape[0] for b in lam_blocks)
    lam = np.zeros((q, q))
    k = 0
    for b in lam_blocks:
        lam[k : k + b.shape[0], k : k + b.shape[0]] = b
        k += b.shape[0]
    return Z, lam


def dense_loglik(model, theta, beta, sigma):
    design = model.design
    Z, lam = dense_system(model, theta)
    V = sigma**2 * (np.eye(design.n) + Z @ lam @ lam.T @ Z.T)
    return stats.multivariate_normal(design.X @ beta, V).logpdf(design.y)


@pytest.mark.parametrize(
    ("formula", "dataset"),
    [
        ("Reaction ~ Days + (Days | Subject)", "sleepstudy"),
        ("Reaction ~ Days + (Days || Subject)", "sleepstudy"),
        ("diameter ~ 1 + (1 | plate) + (1 | sample)", "Penicillin"),
        ("strength ~ 1 + (1 | batch/cask)", "Pastes"),
    ],
)
def test_collapsed_loglik_equals_dense_multivariate_normal(formula, dataset):
    model = bm.Model(formula, bm.load_dataset(dataset))
    rng = np.random.default_rng(3)
    for _ in range(3):
        theta = np.abs(rng.normal(0.8, 0.4, size=model.structure.n_theta))
        beta = (
            rng.normal(size=model.design.p) * 5
            + np.linalg.lstsq(model.design.X, model.design.y, rcond=None)[0]
        )
        sigma = float(model.design.y.std() * rng.uniform(0.2, 1.0))
        value = marginal_loglik(
            pt.as_tensor(theta),
            pt.as_tensor(beta),
            pt.as_tensor(sigma),
            model.structure,
            model.cross_products,
        ).eval()
        assert float(value) == pytest.approx(dense_loglik(model, theta, beta, sigma), rel=1e-9)


def test_collapsed_loglik_at_the_ml_optimum_is_lmes_loglik():
    model = bm.Model("Reaction ~ Days + (Days | Subject)", bm.load_dataset("sleepstudy"))
    fit = model.fit_ml()
    value = marginal_loglik(
        pt.as_tensor(fit.theta),
        pt.as_tensor(fit.fixed_effects["estimate"].to_numpy()),
        pt.as_tensor(fit.sigma),
        model.structure,
        model.cross_products,
    ).eval()
    assert float(value) == pytest.approx(-875.969672244495, abs=1e-4)  # lme4's ML logLik
