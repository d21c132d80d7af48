"""Formulas are not code: only numpy's element-wise functions, formulae's transforms and the user's
extra functions can be called from a formula; nothing else runs."""

import numpy as np
import pandas as pd
import pytest

import bayesmlm as bm
from bayesmlm.spec.expression import NUMPY_FUNCTIONS
from bayesmlm.spec.namespace import formula_namespace


@pytest.fixture
def data():
    return bm.load_dataset("sleepstudy")


@pytest.mark.parametrize(
    "term",
    [
        'pd.io.common.os.system("touch {marker}")',
        'np.lib.npyio.os.system("touch {marker}")',
        'numpy.ctypeslib.os.system("touch {marker}")',
        'os.system("touch {marker}")',
        'open("{marker}", "w")',
        'eval("1")',
        "exec(\"open('{marker}', 'w')\")",
        'getattr(np, "lib")',
        '__import__("os").system("touch {marker}")',
        'formulae.design_matrices("y ~ x", Reaction)',
    ],
)
def test_code_in_a_formula_raises_and_runs_nothing(data, tmp_path, term):
    marker = tmp_path / "ran"
    formula = f"Reaction ~ Days + {term.format(marker=marker)} + (1 | Subject)"
    with pytest.raises(bm.FormulaError):
        bm.Model(formula, data)
    assert not marker.exists()


def test_code_in_a_random_term_raises_and_runs_nothing(data, tmp_path):
    marker = tmp_path / "ran"
    with pytest.raises(bm.FormulaError, match="attributes of objects cannot be reached"):
        bm.Model(f'Reaction ~ Days + (pd.io.common.os.system("touch {marker}") | Subject)', data)
    assert not marker.exists()


def test_documented_transforms_work(data):
    model = bm.Model(
        "Reaction ~ np.log(Days + 1) + numpy.sqrt(Days) + scale(Days) + (center(Days) | Subject)", data
    )
    X = pd.DataFrame(model.design.X, columns=model.design.fixed_names)
    np.testing.assert_allclose(X["np.log(Days + 1)"], np.log(data["Days"] + 1))
    np.testing.assert_allclose(X["numpy.sqrt(Days)"], np.sqrt(data["Days"]))
    days = data["Days"].to_numpy(dtype=float)
    np.testing.assert_allclose(X["scale(Days)"], (days - days.mean()) / days.std())
    assert model.structure.factors[0].term_names == ("Intercept", "center(Days)")
    bare = bm.Model("Reaction ~ log1p(Days) + (1 | Subject)", data)
    np.testing.assert_allclose(bare.design.X[:, 1], np.log1p(days))


def test_not_allowed_numpy_attribute_names_the_allowed_ones(data):
    with pytest.raises(bm.FormulaError, match=r"np.cumsum is not a function formulas may call; allowed: abs"):
        bm.Model("Reaction ~ np.cumsum(Days) + (1 | Subject)", data)


def test_extra_namespace_adds_functions_and_predictions_use_them(data):
    model = bm.Model(
        "Reaction ~ twice(Days) + (1 | Subject)", data, extra_namespace={"twice": lambda x: 2 * np.asarray(x)}
    )
    X = pd.DataFrame(model.design.X, columns=model.design.fixed_names)
    np.testing.assert_allclose(X["twice(Days)"], 2 * data["Days"])
    fit = model.fit_reml()
    new = pd.DataFrame({"Days": [0.0, 5.0], "Subject": ["308", "308"]})
    pred = fit.predict(new)
    slope = fit.fixed_effects.loc["twice(Days)", "estimate"]
    assert pred.iloc[1] - pred.iloc[0] == pytest.approx(10 * slope)
    with pytest.raises(bm.FormulaError, match="'twice' is not a function formulas may call"):
        bm.Model("Reaction ~ twice(Days) + (1 | Subject)", data)


@pytest.mark.parametrize(
    ("extra", "message"), [({"1x": np.log}, "not a valid name"), ({"f": 3}, "must be a function")]
)
def test_bad_extra_namespace_is_rejected(data, extra, message):
    with pytest.raises(bm.FormulaError, match=message):
        bm.Model("Reaction ~ Days + (1 | Subject)", data, extra_namespace=extra)


def test_namespace_holds_only_the_listed_numpy_functions():
    ns = formula_namespace()
    assert set(ns) == {*NUMPY_FUNCTIONS, "np", "numpy", "cbind"}
    assert all(ns[name] is getattr(np, name) for name in NUMPY_FUNCTIONS)


def test_saved_fit_with_user_functions_needs_them_again_to_load(data, tmp_path):
    twice = {"twice": lambda x: 2 * np.asarray(x)}
    model = bm.Model("Reaction ~ twice(Days) + (1 | Subject)", data, extra_namespace=twice)
    fit = model.fit(draws=50, tune=50, chains=1, seed=1, progressbar=False)
    path = fit.save(tmp_path / "fit.nc")
    with pytest.raises(bm.FitError, match=r"calls your function\(s\) \['twice'\]"):
        bm.load_fit(path)
    back = bm.load_fit(path, extra_namespace=twice)
    new = pd.DataFrame({"Days": [1.0, 2.0], "Subject": ["308", "309"]})
    np.testing.assert_allclose(back.predict(new)["mean"], fit.predict(new)["mean"])
