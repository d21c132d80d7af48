"""The partially collapsed sampler: its density is PyMC's, and its fits agree with the full model's.

:class:`~bayesmlm.bayes.partial_density.PartialDensity` integrates the largest factor out and samples
the others. Its value and gradient are held here to a PyMC model of the same posterior (the full
model's fixed effects, priors and sampled factors, from :func:`~bayesmlm.bayes.pymc_model.linear_predictor`,
with the integrated-out factor in the marginal covariance ``σ²I + Z₁Σ₁Z₁ᵀ``) at random points.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import bayesmlm as bm
from bayesmlm.bayes.partial_density import PartialDensity, partial_plan
from bayesmlm.design.covariance import RandomStructure
from bayesmlm.design.names import parameter_names


def _sleep_crossed():
    d = bm.load_dataset("sleepstudy").copy()
    rng = np.random.default_rng(11)
    d["lab"] = rng.integers(0, 5, len(d)).astype(str)
    d["rater"] = rng.integers(0, 7, len(d)).astype(str)
    d["site"] = (d["lab"].astype(int) // 2).astype(str)  # labs nested in sites
    d["x2"] = rng.normal(size=len(d)) * 3 + 10
    return d


CASES = {
    "penicillin": ("Penicillin", "diameter ~ 1 + (1 | plate) + (1 | sample)", None, {}),
    "penicillin noncentred": (
        "Penicillin", "diameter ~ 1 + (1 | plate) + (1 | sample)", None, {"sample": "noncentered"},
    ),
    "pastes nested": ("Pastes", "strength ~ 1 + (1 | batch/cask)", None, {}),
    "slopes": (
        "sleep", "Reaction ~ Days + x2 + (Days | Subject) + (1 | lab) + (0 + Days | rater)", None, {},
    ),
    "slopes noncentred": (
        "sleep", "Reaction ~ Days + x2 + (Days | Subject) + (1 | lab) + (0 + Days | rater)", None,
        {"lab": "noncentered", "rater": "centered"},
    ),
    "nested, both centred": (
        "sleep", "Reaction ~ Days + (Days | Subject) + (1 | lab) + (1 | site)", None,
        {"lab": "centered", "site": "centered"},
    ),
    "nested, parent non-centred": (
        "sleep", "Reaction ~ Days + (Days | Subject) + (1 | lab) + (1 | site)", None,
        {"lab": "centered", "site": "noncentered"},
    ),
    "priors": (
        "Penicillin", "diameter ~ 1 + (1 | plate) + (1 | sample)",
        {"sd": bm.HalfCauchy(2.0), "sigma": bm.Exponential(1.5), "Intercept": bm.StudentT(4.0, 20.0, 5.0)},
        {},
    ),
}  # fmt: skip


def _model(key):
    data, formula, priors, _ = CASES[key]
    d = _sleep_crossed() if data == "sleep" else bm.load_dataset(data)
    return bm.Model(formula, d, priors=priors)


def _reference(design, structure, priors, par):
    """PyMC's compiled logp and dlogp of the same posterior, and its value variables' names."""
    import pymc as pm
    import pytensor.tensor as pt

    from bayesmlm.bayes.pymc_model import block_covariance, linear_predictor, model_coords

    first, other = structure.factors[0], RandomStructure(structure.factors[1:])
    names = parameter_names(structure)
    with pm.Model(coords=model_coords(design, other)) as model:
        mu = linear_predictor(design, other, priors, par, nested=True)
        chols = [block_covariance(first, lb, s, k, priors, names)[0] for lb, s, k in first.blocks()]
        L = pt.linalg.block_diag(*chols) if len(chols) > 1 else chols[0]
        sigma = priors.sigma.create("sigma")
        same = first.codes[:, None] == first.codes[None, :]
        S = L @ L.T
        cov = sigma**2 * pt.eye(design.n)
        for a in range(first.q):
            for b in range(first.q):
                cov = cov + S[a, b] * (same * np.outer(first.Z[:, a], first.Z[:, b]))
        pm.MvNormal("y", mu, cov=cov, observed=np.asarray(design.y))
    return model


@pytest.mark.parametrize("key", list(CASES))
def test_value_and_gradient_are_pymcs(key):
    m = _model(key)
    st = m._standardised
    priors = m.prior_set.scaled(st.scale)
    par = {**m.parameterization, **CASES[key][3]}
    density = PartialDensity(st.design, m.structure, priors, par)
    model = _reference(st.design, m.structure, priors, par)
    # FAST_COMPILE: the reference is evaluated at four points, and C compilation took 30-45 s a case
    logp, dlogp = model.compile_logp(mode="FAST_COMPILE"), model.compile_dlogp(mode="FAST_COMPILE")
    start = model.initial_point()
    # where each PyMC value variable sits in the density's coordinates
    where = {"fixed_centered": slice(0, density.collapsed.p)}
    for b in density.collapsed.blocks:
        name = f"sd__{b.label}_log__" if b.eta is None else f"chol__{b.label}_cholesky-cov-packed__"
        where[name] = slice(b.offset, b.offset + b.width)
    for t in density.terms:
        where[f"sd__{t.label}_log__"] = slice(t.sd_coord, t.sd_coord + 1)
        where[f"{'c' if t.centred else 'z'}__{t.label}"] = slice(t.offset, t.offset + t.levels)
    where["sigma_log__"] = slice(density.ndim - 1, density.ndim)
    assert sorted(where) == sorted(v.name for v in model.value_vars)
    assert sum(s.stop - s.start for s in where.values()) == density.ndim
    rng = np.random.default_rng(0)
    offsets = []
    for _ in range(4):
        x = rng.normal(size=density.ndim) * 0.5
        point = {v.name: x[where[v.name]].reshape(start[v.name].shape) for v in model.value_vars}
        value, grad = density(x)
        pieces = dict(
            zip(
                [v.name for v in model.value_vars],
                np.split(
                    dlogp(point),
                    np.cumsum([int(np.prod(start[v.name].shape)) for v in model.value_vars])[:-1],
                ),
                strict=True,
            )
        )
        expected = np.empty(density.ndim)
        for name, s in where.items():
            expected[s] = pieces[name]
        np.testing.assert_allclose(grad, expected, rtol=1e-8, atol=1e-8 * np.abs(expected).max())
        offsets.append(float(logp(point)) - value)
    # equal up to the LKJ normalising constant, the same at every point
    assert np.ptp(offsets) < 1e-7


def test_plan_says_what_it_cannot_write():
    sleep = bm.Model("Reaction ~ Days + (Days | Subject)", bm.load_dataset("sleepstudy"))
    assert partial_plan(sleep.design, sleep.structure, sleep.prior_set)[0] is False
    d = _sleep_crossed()
    corr = bm.Model("Reaction ~ Days + (1 | Subject) + (Days | lab)", d)
    ok, why = partial_plan(corr.design, corr.structure, corr.prior_set)
    assert not ok and "correlated block" in why
    pen = bm.Model("diameter ~ 1 + (1 | plate) + (1 | sample)", bm.load_dataset("Penicillin"))
    assert partial_plan(pen.design, pen.structure, pen.prior_set) == (
        True,
        "plate integrated out; sample sampled",
    )


def test_default_fit_of_a_large_dense_part_is_partially_collapsed():
    """Two factors with 300 + 250 effects: too many for the dense block, so one is integrated out."""
    import pandas as pd

    rng = np.random.default_rng(5)
    n = 1500
    a, b = rng.integers(0, 300, n), rng.integers(0, 250, n)
    ua, ub = rng.normal(size=300), rng.normal(size=250)
    y = 1.0 + ua[a] * 0.8 + ub[b] * 0.5 + rng.normal(size=n)
    d = pd.DataFrame({"y": y * 10 + 100, "a": a.astype(str), "b": b.astype(str)})
    m = bm.Model("y ~ 1 + (1 | a) + (1 | b)", d)
    fit = m.fit(draws=300, tune=300, chains=2, seed=3, progressbar=False)
    assert fit.info["method"] == "partially collapsed"
    assert fit.info["sampler"] == "nutpie"
    post = fit.idata["posterior"]
    assert post["r_a"].shape == (2, 300, d["a"].nunique(), 1)
    assert post["r_b"].shape == (2, 300, d["b"].nunique(), 1)
    reml = m.fit_reml()
    for f, theta in zip(m.structure.factors, reml.theta, strict=True):
        truth = theta * reml.sigma
        assert abs(float(post[f"sd_{f.group}"].mean()) - truth) < 0.15 * truth
    # the integrated-out factor's drawn effects track the simulated ones
    first = m.structure.factors[0]
    simulated = ua[np.array(first.levels).astype(int)] * 8.0
    means = post[f"r_{first.group}"].mean(("chain", "draw")).values.ravel()
    assert np.corrcoef(simulated, means)[0, 1] > 0.8


def _departments():
    """Lecturers nested in 7 departments, crossed with 300 students: InstEval's shape, small.

    217 lecturer and department effects: more than the collapsed path's dense part takes (200).
    """
    rng = np.random.default_rng(4)
    lecturer = np.arange(210)
    dept = lecturer // 30
    rows = [(s, k) for s in range(300) for k in rng.choice(210, 8, replace=False)]
    s, k = map(np.array, zip(*rows, strict=True))
    y = rng.normal(0, 0.3, 300)[s] + rng.normal(0, 0.7, 210)[k] + rng.normal(0, 0.2, 7)[dept[k]]
    return pd.DataFrame({"y": y + rng.normal(size=len(s)), "s": s, "d": k, "dept": dept[k]})


def test_partial_sampler_decides_centring_from_the_exact_information_and_keeps_what_was_asked():
    from bayesmlm.bayes.partial_centring import partial_chooser

    data = _departments()
    m = bm.Model("y ~ 1 + (1 | s) + (1 | d) + (1 | dept)", data)
    # the full model's rule counts each department's ~340 rows; with its lecturers competing for
    # them a department is known only through ~30 lecturer effects: the exact ratio says non-centred
    assert m.parameterization["dept"] == "centered"
    assert partial_chooser(m)()["dept"] == "noncentered"
    asked = bm.Model("y ~ 1 + (1 | s) + (1 | d) + (1 | dept)", data, parameterization={"dept": "centered"})
    assert partial_chooser(asked)()["dept"] == "centered"
    every = bm.Model("y ~ 1 + (1 | s) + (1 | d) + (1 | dept)", data, parameterization="centered")
    assert set(partial_chooser(every)().values()) == {"centered"}
    fit = m.fit(draws=50, tune=50, chains=1, seed=1, progressbar=False)
    assert fit.info["method"] == "partially collapsed"
    assert fit.info["parameterization"]["dept"] == "noncentered"
