"""The written-out GLMM density (bayes/glmm_density.py) equals the PyMC model's log posterior and gradient.

At random points of the unconstrained space, on cbpp (binomial, non-centred and centred herd), a Poisson
model with two crossed scalar factors, one centred, with a slope block and an offset, and Bernoulli rows.
PyMC's functions are compiled with FAST_COMPILE.
"""

import numpy as np
import pandas as pd
import pytest

import bayesmlm as bm
from bayesmlm.bayes.glmm_density import GLMMDensity, glmm_plan

CBPP = "cbind(incidence, size - incidence) ~ period + (1 | herd)"


def _pymc_functions(model: bm.Model):
    import pymc as pm

    pmodel = model.build()
    logp = pmodel.compile_logp(mode="FAST_COMPILE")
    dlogp = pmodel.compile_dlogp(mode="FAST_COMPILE")
    names = [v.name for v in pmodel.value_vars]
    shapes = [pmodel.initial_point()[n].shape for n in names]
    del pm
    return logp, dlogp, names, shapes


def _pymc_point(density: GLMMDensity, x: np.ndarray, names, shapes) -> dict:
    """Map the density's coordinates to the PyMC model's value variables."""
    p = density.p
    point = {}
    for name, shape in zip(names, shapes, strict=True):
        if name in ("fixed_centered", "fixed"):
            point[name] = x[:p].reshape(shape)
            continue
        for b, (f, label, _, _, start) in enumerate(density.blocks):
            if name == f"sd__{label}_log__":
                point[name] = np.array(x[p + b])
            elif name in (f"z__{label}", f"c__{label}"):
                point[name] = x[start : start + f.n_levels].reshape(shape)
    assert set(point) == set(names)
    return point


def _check(model: bm.Model, n_points: int = 5, seed: int = 0):
    density = GLMMDensity(
        model.design, model.structure, model.family, model.prior_set, model.parameterization
    )
    logp, dlogp, names, shapes = _pymc_functions(model)
    rng = np.random.default_rng(seed)
    for _ in range(n_points):
        x = rng.normal(0.0, 0.7, density.ndim)
        point = _pymc_point(density, x, names, shapes)
        value, grad = density(x)
        np.testing.assert_allclose(value, logp(point), rtol=1e-9, atol=1e-8)
        expected = dlogp(point)  # concatenated in the order of value_vars
        back = np.empty(density.ndim)
        offset = 0
        for name, shape in zip(names, shapes, strict=True):
            size = int(np.prod(shape))
            back[_coordinates(density, name, size)] = expected[offset : offset + size]
            offset += size
        np.testing.assert_allclose(grad, back, rtol=1e-9, atol=1e-8)
    return density


def _coordinates(density: GLMMDensity, name: str, size: int) -> np.ndarray:
    p = density.p
    if name in ("fixed_centered", "fixed"):
        return np.arange(p)
    for b, (_, label, _, _, start) in enumerate(density.blocks):
        if name == f"sd__{label}_log__":
            return np.array([p + b])
        if name in (f"z__{label}", f"c__{label}"):
            return np.arange(start, start + size)
    raise AssertionError(name)


def test_cbpp_noncentred_density_equals_pymc():
    m = bm.Model(CBPP, bm.load_dataset("cbpp"), family="binomial", parameterization="noncentered")
    density = _check(m)
    assert density.ndim == 4 + 1 + 15


def test_cbpp_centred_density_equals_pymc():
    m = bm.Model(CBPP, bm.load_dataset("cbpp"), family="binomial", parameterization="centered")
    density = _check(m)  # value and gradient equal PyMC's (asserted inside)
    assert [block[3] for block in density.blocks] == [True]  # the herd block is the centred one checked


@pytest.fixture(scope="module")
def poisson_data():
    rng = np.random.default_rng(3)
    n = 120
    d = pd.DataFrame(
        {
            "g": pd.Categorical(rng.integers(0, 8, n).astype(str)),
            "h": pd.Categorical(rng.integers(0, 5, n).astype(str)),
            "x": rng.normal(size=n),
            "expo": rng.uniform(0.5, 2.0, n),
        }
    )
    d["y"] = rng.poisson(np.exp(0.3 + 0.4 * d["x"]) * d["expo"])
    d["b"] = (rng.uniform(size=n) < 0.4).astype(int)
    return d


def test_poisson_crossed_centred_slope_offset_density_equals_pymc(poisson_data):
    m = bm.Model(
        "y ~ x + (x || g) + (1 | h) + offset(np.log(expo))",
        poisson_data,
        family="poisson",
        parameterization={"g": "centered", "g.1": "centered", "h": "noncentered"},
    )
    assert glmm_plan(m.design, m.structure, m.family, m.prior_set, m.parameterization)[0]
    _check(m)


def test_bernoulli_density_equals_pymc(poisson_data):
    m = bm.Model("b ~ x + (1 | g) + (1 | h)", poisson_data, family="binomial", parameterization="noncentered")
    density = _check(m)  # value and gradient equal PyMC's (asserted inside)
    assert m.family.name == "binomial" and set(np.unique(m.design.y)) == {0.0, 1.0}  # Bernoulli rows
    assert [block[3] for block in density.blocks] == [False, False]


def test_plan_refuses_what_it_cannot_write(poisson_data):
    m = bm.Model("b ~ x + (x | g)", poisson_data, family="binomial")
    ok, why = glmm_plan(m.design, m.structure, m.family, m.prior_set, dict.fromkeys(["g"], "noncentered"))
    assert not ok and "correlated" in why
    nb = bm.Model("y ~ x + (1 | g)", poisson_data, family="negativebinomial")
    assert not glmm_plan(nb.design, nb.structure, nb.family, nb.prior_set, {"g": "noncentered"})[0]
    mixed = bm.Model("y ~ x + (1 | g)", poisson_data, family="poisson")
    assert (
        "'mixed'"
        in glmm_plan(mixed.design, mixed.structure, mixed.family, mixed.prior_set, {"g": "mixed"})[1]
    )


def test_c_callback_equals_the_density(poisson_data):
    """The C callback nutpie calls reads the packed buffer to the same log density and gradient."""
    import ctypes

    from bayesmlm.bayes.glmm_kernel import glmm_c_logp

    m = bm.Model("y ~ x + (x || g) + (1 | h) + offset(np.log(expo))", poisson_data, family="poisson")
    density = GLMMDensity(
        m.design, m.structure, m.family, m.prior_set, dict.fromkeys(["g", "g.1", "h"], "centered")
    )
    buffer = density.packed()
    call = glmm_c_logp.ctypes
    rng = np.random.default_rng(1)
    for _ in range(3):
        x = rng.normal(0.0, 0.7, density.ndim)
        grad, logp = np.empty(density.ndim), np.empty(1)
        ptr = ctypes.POINTER(ctypes.c_double)
        status = call(density.ndim, x.ctypes.data_as(ptr), grad.ctypes.data_as(ptr), logp.ctypes.data_as(ptr),
                      buffer.ctypes.data_as(ptr))  # fmt: skip
        value, expected = density(x)
        assert status == 0
        np.testing.assert_allclose(logp[0], value, rtol=1e-13)
        np.testing.assert_allclose(grad, expected, rtol=1e-12, atol=1e-12)
