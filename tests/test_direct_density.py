"""The direct collapsed sampler: its numpy density is PyMC's, and a default fit compiles nothing.

:class:`~bayesmlm.bayes.direct_density.DirectDensity` writes the collapsed posterior of a one-factor model
by hand, gradient included; here value and gradient are held to the PyMC collapsed model's own compiled
``logp`` / ``dlogp`` at random points in the same coordinates, for every prior family and block shape.
"""

from __future__ import annotations

import subprocess
import sys
import warnings

import numpy as np
import pytest

import bayesmlm as bm
from bayesmlm.bayes.collapsed import build_collapsed_model
from bayesmlm.bayes.conditional import one_factor_conditional
from bayesmlm.bayes.direct_density import DirectDensity, direct_plan

CASES = [
    ("sleepstudy", "Reaction ~ Days + (Days | Subject)", None),
    ("sleepstudy", "Reaction ~ Days + (1 | Subject) + (0 + Days | Subject)", None),
    ("sleepstudy", "Reaction ~ 0 + Days + (Days | Subject)", None),
    ("Dyestuff", "Yield ~ 1 + (1 | Batch)", None),
    # every prior family the numpy density writes, on each class of parameter
    (
        "sleepstudy",
        "Reaction ~ Days + (Days | Subject)",
        {
            "b": bm.StudentT(4.0, 0.0, 20.0),
            "Intercept": bm.StudentT(4.0, 250.0, 50.0),
            "sd": bm.HalfNormal(30.0),
        },
    ),
    ("Dyestuff", "Yield ~ 1 + (1 | Batch)", {"sd": bm.HalfCauchy(25.0), "sigma": bm.Exponential(0.02)}),
    ("Dyestuff", "Yield ~ 1 + (1 | Batch)", {"sd": bm.Exponential(0.05), "sigma": bm.HalfNormal(80.0)}),
    (
        "sleepstudy",
        "Reaction ~ Days + (Days | Subject)",
        {"sd": bm.HalfStudentT(5.0, 10.0), "cor": bm.LKJ(3.0)},
    ),
]


def _model(data, formula, priors):
    return bm.Model(formula, bm.load_dataset(data), priors=priors)


def _three_by_three():
    rng = np.random.default_rng(3)
    d = bm.load_dataset("sleepstudy").copy()
    d["x2"] = rng.normal(size=len(d))
    return bm.Model("Reaction ~ Days + x2 + (Days + x2 | Subject)", d)


@pytest.mark.parametrize("case", [*range(len(CASES)), "3x3"])
def test_value_and_gradient_are_pymcs(case):
    m = _three_by_three() if case == "3x3" else _model(*CASES[case])
    st = m._standardised
    priors = m.prior_set.scaled(st.scale)
    density = DirectDensity(st.design.fixed_names, m.structure, priors, st.stats)
    model = build_collapsed_model(st.design, m.structure, priors, st.stats)
    logp, dlogp = model.compile_logp(), model.compile_dlogp()
    start = model.initial_point()
    rng = np.random.default_rng(0)
    offsets = []
    for _ in range(5):
        x = rng.normal(size=density.ndim) * 0.5
        point, k = {}, 0
        for v in model.value_vars:  # the same coordinates, in the same order
            size = int(np.prod(start[v.name].shape))
            point[v.name] = x[k : k + size].reshape(start[v.name].shape)
            k += size
        assert k == density.ndim
        value, grad = density(x)
        expected = dlogp(point)
        np.testing.assert_allclose(grad, expected, rtol=1e-8, atol=1e-8 * np.abs(expected).max())
        offsets.append(float(logp(point)) - value)
    # the value differs from PyMC's by the LKJ normalising constant only: the same at every point
    assert np.ptp(offsets) < 1e-8


def test_plan_refuses_what_it_cannot_write():
    pen = bm.Model("diameter ~ 1 + (1 | plate) + (1 | sample)", bm.load_dataset("Penicillin"))
    assert direct_plan(pen.structure, pen.prior_set) == (False, "more than one grouping factor")
    m = bm.Model("Reaction ~ Days + (Days | Subject)", bm.load_dataset("sleepstudy"))
    assert direct_plan(m.structure, m.prior_set) == (True, "one grouping factor")


def test_conditional_draws_mean_and_covariance():
    """Zero noise gives lme4's conditional modes; unit noise vectors give the conditional covariance."""
    m = bm.Model("Reaction ~ Days + (Days | Subject)", bm.load_dataset("sleepstudy"))
    fit = m.fit_reml()
    stats = m.cross_products
    f = m.structure.factors[0]
    lam = f.relative_factor(fit.theta)[None]
    beta = np.asarray(fit.fixed_effects["estimate"])[None]
    sigma = np.array([fit.sigma])
    mean = one_factor_conditional(stats, lam, beta, sigma, np.zeros((1, f.n_levels, f.q)))[0]
    # lme4 1.1-31: ranef(fm1)$Subject for subject 308 and 309
    np.testing.assert_allclose(mean[0], [2.2585654, 9.1989719], rtol=1e-5)
    np.testing.assert_allclose(mean[1], [-40.3985769, -8.6197032], rtol=1e-5)
    # covariance: b - mean = σ Λ L⁻ᵀ ε, so unit ε's give the columns of its factor
    j = 4
    cols = []
    for i in range(f.q):
        eps = np.zeros((1, f.n_levels, f.q))
        eps[0, j, i] = 1.0
        cols.append(one_factor_conditional(stats, lam, beta, sigma, eps)[0, j] - mean[j])
    F = np.array(cols).T
    A = stats.ztz1[j]
    expected = fit.sigma**2 * lam[0] @ np.linalg.inv(np.eye(f.q) + lam[0].T @ A @ lam[0]) @ lam[0].T
    np.testing.assert_allclose(F @ F.T, expected, rtol=1e-10)


@pytest.mark.slow
def test_default_fit_is_direct_and_agrees_with_pymc():
    m = bm.Model("Reaction ~ Days + (Days | Subject)", bm.load_dataset("sleepstudy"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        direct = m.fit(draws=600, tune=600, chains=2, seed=3, progressbar=False)
        pymc = m.fit(draws=600, tune=600, chains=2, seed=3, progressbar=False, sampler="pymc")
    assert direct.info["sampler"] == "nutpie" and "written out" in direct.info["density"]
    assert pymc.info["sampler"] == "pymc" and "PyTensor" in pymc.info["density"]
    a, b = direct.summary(), pymc.summary()
    # same posterior: means within 4 combined Monte Carlo standard errors
    tol = 4 * np.hypot(a["mcse_mean"], b["mcse_mean"])
    assert (np.abs(a["mean"] - b["mean"]) < tol).all(), (a["mean"] - b["mean"], tol)
    assert a["rhat"].max() < 1.01
    # a seeded direct fit is reproduced exactly
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        again = m.fit(draws=600, tune=600, chains=2, seed=3, progressbar=False)
    np.testing.assert_array_equal(direct.posterior["sigma"].values, again.posterior["sigma"].values)
    np.testing.assert_array_equal(direct.posterior["r_Subject"].values, again.posterior["r_Subject"].values)


def test_default_fit_does_not_import_pymc():
    code = (
        "import sys, warnings; warnings.simplefilter('ignore'); import bayesmlm as bm;"
        "m = bm.Model('Yield ~ 1 + (1 | Batch)', bm.load_dataset('Dyestuff'));"
        "f = m.fit(draws=100, tune=100, chains=2, seed=1, progressbar=False); f.summary();"
        "print(f.info['sampler'], 'pymc' in sys.modules, 'pytensor' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["nutpie", "False", "False"], out.stderr[-2000:]
