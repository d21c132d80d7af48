"""The default Bayesian fit of a generalized model: nutpie on the written-out density, without PyMC.

Which models take it (bayes/glmm_sample.direct_glmm_choice), that a default cbpp fit then imports neither
PyMC nor PyTensor and returns the PyMC model's variables, and that the others keep the PyMC model.
"""

import json
import subprocess
import sys

import numpy as np
import pytest

import bayesmlm as bm
from bayesmlm.bayes.glmm_sample import direct_glmm_choice

CBPP = "cbind(incidence, size - incidence) ~ period + (1 | herd)"
GROUSE = "TICKS ~ YEAR + cHEIGHT + (1 | BROOD) + (1 | LOCATION)"

SCRIPT = """
import json, sys, warnings
import numpy as np

import bayesmlm as bm
m = bm.Model({formula!r}, bm.load_dataset("cbpp"), family="binomial")
with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    fit = m.fit(draws=200, tune=200, chains=2, cores=2, seed=3, progressbar=False)
out = dict(sampler=fit.info["sampler"], density=fit.info["density"], pymc="pymc" in sys.modules,
           pytensor="pytensor" in sys.modules, posterior=sorted(fit.idata["posterior"].data_vars),
           free=sorted(v.name for v in m.build().free_RVs),
           named=sorted(v.name for v in m.build().deterministics),
           rows=list(fit.summary().index))
print(json.dumps(out))
"""


def test_default_cbpp_fit_runs_nutpie_without_pymc():
    proc = subprocess.run(
        [sys.executable, "-c", SCRIPT.format(formula=CBPP)], capture_output=True, text=True, timeout=600
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["sampler"] == "nutpie" and "written out" in out["density"]
    assert not out["pymc"] and not out["pytensor"]  # measured before build(), which imports PyMC
    assert out["posterior"] == sorted(out["free"] + out["named"])  # the PyMC model's variables
    assert out["rows"] == ["Intercept", "period[2]", "period[3]", "period[4]", "sd(Intercept|herd)"]


def test_models_the_density_cannot_write_keep_the_pymc_model():
    grouse = bm.Model(GROUSE, bm.load_dataset("grouseticks"), family="poisson")
    ok, why = direct_glmm_choice(grouse, "auto", {})
    assert not ok and "'integrated'" in why and "PyMC" in why
    cbpp = bm.Model(CBPP, bm.load_dataset("cbpp"), family="binomial")
    assert direct_glmm_choice(cbpp, "auto", {})[0]
    assert direct_glmm_choice(cbpp, "nutpie", {})[0]
    assert not direct_glmm_choice(cbpp, "pymc", {})[0]
    assert not direct_glmm_choice(cbpp, "auto", {"max_treedepth": 12})[0]
    nb = bm.Model("TICKS ~ YEAR + (1 | LOCATION)", bm.load_dataset("grouseticks"), family="negativebinomial")
    assert not direct_glmm_choice(nb, "auto", {})[0]


def test_compiled_callback_samples_the_same_draws_as_the_python_one():
    """nutpie calling the C callback from Rust and calling the density in Python: the same chains."""
    from bayesmlm.bayes.glmm_direct import sample_glmm_direct
    from bayesmlm.bayes.glmm_nutpie import compiled_supported

    assert compiled_supported()
    m = bm.Model(CBPP, bm.load_dataset("cbpp"), family="binomial")
    run = dict(draws=60, tune=60, chains=2, cores=1, seed=4, target_accept=0.8, progressbar=False)
    fast = sample_glmm_direct(m, compiled=True, **run)["posterior"]
    slow = sample_glmm_direct(m, compiled=False, **run)["posterior"]
    assert sorted(fast.data_vars) == sorted(slow.data_vars)
    for name in fast.data_vars:
        np.testing.assert_allclose(fast[name].values, slow[name].values, rtol=1e-10, atol=1e-12)


def test_a_run_cut_short_makes_no_fit():
    """nutpie returns the draws it has on a Ctrl-C; the direct path turns that back into the interrupt."""
    from bayesmlm.bayes.glmm_direct import cut_short

    full = np.zeros((4, 100, 3))
    cut_short(full, 4, 100)  # a whole run passes
    with pytest.raises(KeyboardInterrupt, match="3 of 4 chains came back, with 100 of 100 draws"):
        cut_short(full[:3], 4, 100)
    ragged = full.copy()
    ragged[1, 40:] = np.nan
    with pytest.raises(KeyboardInterrupt, match="4 of 4 chains came back, with 40 of 100 draws"):
        cut_short(ragged, 4, 100)
