"""statsmodels' BinomialBayesMixedGLM / PoissonBayesMixedGLM entry points, run with the import changed.

``fit_map()`` is glmer's Laplace ML fit here, so its numbers are lme4 1.1-31's (grouseticks, Poisson,
from ``glmer_reference.json``); ``fit_vb()`` samples with NUTS (few draws: a Bayesian tolerance).
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

import bayesmlm as bm
from bayesmlm.statsmodels_api.bayes_glm import component_term

# lme4 1.1-31 glmer(TICKS ~ YEAR + cHEIGHT + (1 | BROOD) + (1 | LOCATION), poisson)
GROUSE_FIXEF = [0.466862288485026, 1.16558234934436, -0.977932492585884, -0.0235461080749959]
GROUSE_SD = {"BROOD": 0.769651105183605, "LOCATION": 0.574136845756161}


def _cbpp_binary() -> pd.DataFrame:
    d = bm.load_dataset("cbpp")
    rows = d.loc[d.index.repeat(d["size"])].copy()
    rows["y"] = np.concatenate(
        [np.r_[np.ones(i), np.zeros(n - i)] for i, n in zip(d["incidence"], d["size"], strict=True)]
    )
    return rows.reset_index(drop=True)


def test_component_translation_and_errors():
    assert component_term("a", " 0 + C(g) ") == "(1 | g)"
    assert component_term("b", "0 + x:C(g)") == "(0 + x | g)"
    for bad in ("C(g)", "0 + g", "0 + C(g):C(h)", "1 + C(g)"):
        with pytest.raises(bm.FormulaError, match="0 \\+ C\\(group\\)"):
            component_term("a", bad)
    with pytest.raises(bm.FormulaError, match="vc_formulas must be a dict"):
        bm.PoissonBayesMixedGLM.from_formula("TICKS ~ YEAR", "0 + C(BROOD)", bm.load_dataset("grouseticks"))


def test_poisson_fit_map_is_glmer():
    vc = {"BROOD": "0 + C(BROOD)", "LOCATION": "0 + C(LOCATION)"}
    model = bm.PoissonBayesMixedGLM.from_formula("TICKS ~ YEAR + cHEIGHT", vc, bm.load_dataset("grouseticks"))
    assert model.fep_names == ["Intercept", "YEAR[96]", "YEAR[97]", "cHEIGHT"] and model.vcp_names == list(vc)
    result = model.fit_map()
    np.testing.assert_allclose(result.fe_mean, GROUSE_FIXEF, rtol=2e-3)
    np.testing.assert_allclose(
        np.exp(result.vcp_mean), [GROUSE_SD["BROOD"], GROUSE_SD["LOCATION"]], rtol=1e-2
    )
    assert np.isnan(result.vcp_sd).all() and (result.fe_sd > 0).all()
    assert len(result.vc_mean) == 118 + 63 and (result.vc_sd > 0).all()
    assert result.params.shape == (6,)
    table = result.summary()
    assert (
        list(table.index) == [*model.fep_names, "BROOD", "LOCATION"]
        and list(table["Type"]) == ["M"] * 4 + ["V"] * 2
    )
    rate = result.predict()
    np.testing.assert_allclose(np.log(rate), result.predict(linear=True), rtol=1e-10)


def test_binomial_fit_vb_samples():
    data = _cbpp_binary()
    model = bm.BinomialBayesMixedGLM.from_formula("y ~ period", {"herd": "0 + C(herd)"}, data)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = model.fit_vb(draws=200, tune=200, chains=2, cores=1, seed=4, progressbar=False)
    # glmer on the aggregated cbpp (the same likelihood): within 0.25 on the link scale
    np.testing.assert_allclose(
        result.fe_mean,
        [-1.39834286447115, -0.991924974975739, -1.12821621594334, -1.57974541364919],
        atol=0.25,
    )
    assert abs(np.exp(result.vcp_mean[0]) - 0.642069927729179) < 0.3
    assert (result.vcp_sd > 0).all() and len(result.vc_mean) == 15
    p = result.predict()
    assert ((p > 0) & (p < 1)).all() and len(p) == len(data)
    assert "NUTS" in repr(result)
