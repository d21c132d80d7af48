"""A collapsed fit's group effects stored or drawn on demand (bayes/group_draws.py): the same numbers."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

import bayesmlm as bm
from bayesmlm.bayes.group_draws import GROUP_EFFECTS_BUDGET, LEVELS_PER_CHUNK, choose_group_effects
from bayesmlm.bayes.method_cost import fit_plan

F = "Reaction ~ Days + (Days | Subject)"
KW = dict(draws=150, tune=150, chains=2, seed=11, progressbar=False)


def _fit(model, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", bm.SamplingWarning)
        return model.fit(**(KW | kw))


@pytest.fixture(scope="module")
def sleep_pair():
    """sleepstudy fitted twice with one seed: effects stored, and drawn on demand."""
    model = bm.Model(F, bm.load_dataset("sleepstudy"))
    return _fit(model, group_effects="store"), _fit(model, group_effects="on_demand")


@pytest.fixture(scope="module")
def many_levels():
    """600 groups (three chunks of levels), stored and on demand, one seed."""
    rng = np.random.default_rng(4)
    g = np.repeat(np.arange(600), 3)
    x = rng.normal(size=g.size)
    y = 2 + rng.normal(size=600)[g] + (0.5 + 0.3 * rng.normal(size=600)[g]) * x + rng.normal(size=g.size)
    model = bm.Model("y ~ x + (x | g)", pd.DataFrame({"y": y, "x": x, "g": g}))
    kw = dict(draws=40, tune=60, chains=1)
    return _fit(model, group_effects="store", **kw), _fit(model, group_effects="on_demand", **kw)


def test_on_demand_keeps_only_the_population_parameters(sleep_pair):
    stored, on_demand = sleep_pair
    assert "r_Subject" in stored.posterior and "r_Subject" not in on_demand.posterior
    assert stored.info["group_effects"] == "store" and on_demand.info["group_effects"] == "on_demand"
    assert on_demand.info["group_effects_seed"] == 11
    assert "log_likelihood" not in on_demand.idata.children  # it would need every group effect
    pd.testing.assert_frame_equal(on_demand.summary(), stored.summary())


def test_on_demand_summaries_are_the_stored_ones_exactly(sleep_pair):
    stored, on_demand = sleep_pair
    pd.testing.assert_frame_equal(on_demand.random_effects(), stored.random_effects(), check_exact=True)
    pd.testing.assert_frame_equal(on_demand.coefficients(), stored.coefficients(), check_exact=True)
    levels = ["372", "308"]
    np.testing.assert_array_equal(
        on_demand.group_effect_draws(levels=levels).values,
        stored.posterior["r_Subject"].sel(Subject=levels).values,
    )


def test_asking_twice_gives_the_same_draws(sleep_pair):
    on_demand = sleep_pair[1]
    first = on_demand.group_effect_draws(levels=["309"]).values
    np.testing.assert_array_equal(on_demand.group_effect_draws(levels=["309"]).values, first)
    pd.testing.assert_frame_equal(on_demand.random_effects(), on_demand.random_effects(), check_exact=True)
    assert np.std(first[..., 0]) > 1  # draws, not a constant


def test_chunks_of_levels_do_not_change_the_draws(many_levels):
    stored, on_demand = many_levels
    assert 600 > 2 * LEVELS_PER_CHUNK
    pd.testing.assert_frame_equal(on_demand.random_effects(), stored.random_effects(), check_exact=True)
    levels = ["599", "3", "300", "256", "255"]  # from three chunks, out of order
    np.testing.assert_array_equal(
        on_demand.group_effect_draws(levels=levels).values,
        stored.posterior["r_g"].sel(g=levels).values,
    )
    # each chunk has its own seed: chunks do not repeat one another's noise
    r = stored.posterior["r_g"].values
    assert not np.allclose(r[:, :, 0, :], r[:, :, LEVELS_PER_CHUNK, :])
    with pytest.raises(
        bm.ArgumentError, match=r"levels \[600\] are not levels of g .*such as \['0', '1', '2'\]"
    ):
        on_demand.group_effect_draws(levels=[600])


def test_a_fit_without_a_seed_still_draws_the_same_twice():
    model = bm.Model(F, bm.load_dataset("sleepstudy"))
    fit = _fit(model, seed=None, group_effects="on_demand", draws=30, tune=50, chains=1)
    assert isinstance(fit.info["group_effects_seed"], int)
    pd.testing.assert_frame_equal(fit.random_effects(), fit.random_effects(), check_exact=True)


NEEDS_EVERY_DRAW = {
    "loo": lambda f: f.loo(),
    "every level's draws": lambda f: f.group_effect_draws(),
}


@pytest.mark.parametrize("feature", list(NEEDS_EVERY_DRAW))
def test_what_needs_every_draw_says_how_to_get_them(sleep_pair, feature):
    with pytest.raises(bm.GroupEffectsNotStoredError, match=r"group_effects='store'.*levels=\[\.\.\.\]"):
        NEEDS_EVERY_DRAW[feature](sleep_pair[1])
    assert issubclass(bm.GroupEffectsNotStoredError, bm.BayesMLMError)


def test_predictions_draw_the_levels_they_touch(sleep_pair):
    stored, on_demand = sleep_pair
    new = bm.load_dataset("sleepstudy").iloc[[0, 50, 179, 11]].assign(Days=[0.5, 3, 12, 1])
    subject = new["Subject"].astype(str).to_numpy()
    subject[3] = "999"  # an unseen level: drawn from the population
    new = new.assign(Subject=subject)
    for kw in (dict(newdata=new, seed=2), dict(seed=2), dict(newdata=new, kind="response", seed=4)):
        np.testing.assert_array_equal(
            on_demand.predict(return_draws=True, **kw), stored.predict(return_draws=True, **kw)
        )
    pd.testing.assert_frame_equal(on_demand.fitted(), stored.fitted(), check_exact=True)


def test_what_needs_no_group_effect_works_on_demand(sleep_pair):
    stored, on_demand = sleep_pair
    np.testing.assert_array_equal(
        on_demand.predict(include_random=False), stored.predict(include_random=False)
    )
    X, Z = np.array([[1.0, 2.0]]), np.array([[1.0, 2.0]])
    np.testing.assert_array_equal(on_demand.line_draws(None, 4, X, Z), stored.line_draws(None, 4, X, Z))
    assert on_demand.icc()["Subject"] == stored.icc()["Subject"]


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(group_effects="keep"), "group_effects must be one of 'auto', 'store', 'on_demand', not 'keep'"),
        (dict(group_effects=None), "group_effects must be one of"),
        (dict(group_effects="on_demand", method="full"), "sampled parameters"),
        (dict(group_effects="on_demand", log_likelihood=True), "log_likelihood=True needs every group"),
    ],
)
def test_bad_group_effects_values_are_refused(kwargs, match):
    model = bm.Model(F, bm.load_dataset("sleepstudy"))
    with pytest.raises(bm.ArgumentError, match=match):
        model.fit(**kwargs)


def test_on_demand_is_refused_where_the_conditional_does_not_split_by_levels():
    data = bm.load_dataset("sleepstudy").assign(Week=lambda d: (d["Days"] // 5).astype(str))
    with pytest.warns(bm.FewGroupsWarning):
        crossed = bm.Model("Reaction ~ Days + (1 | Subject) + (1 | Week)", data)
    with pytest.raises(bm.ArgumentError, match="several grouping factors"):
        crossed.fit(group_effects="on_demand")
    cbpp = bm.load_dataset("cbpp")
    glmm = bm.Model("cbind(incidence, size - incidence) ~ period + (1 | herd)", cbpp, family="binomial")
    with pytest.raises(bm.ArgumentError, match="sampled parameters"):
        glmm.fit(group_effects="on_demand")


def test_auto_draws_on_demand_above_the_budget():
    model = bm.Model(F, bm.load_dataset("sleepstudy"))
    per_draw = 4 * 18 * 2  # bytes of one draw of every effect in float32
    below, above = GROUP_EFFECTS_BUDGET // per_draw, GROUP_EFFECTS_BUDGET // per_draw + 1
    assert choose_group_effects("auto", model.structure, below, True, None)[0] == "store"
    mode, why = choose_group_effects("auto", model.structure, above, True, None)
    assert mode == "on_demand" and "would exceed the 256 MB budget" in why
    # asking for the log-likelihood, or another path, keeps them
    assert choose_group_effects("auto", model.structure, above, True, True)[0] == "store"
    assert choose_group_effects("auto", model.structure, above, False, None)[0] == "store"
    # on demand, the log-likelihood is not stored by default
    settings = dict(draws=above, tune=100, chains=1, cores=1, sampler="auto", sampler_kwargs={})
    collapsed, _, _, effects, log_likelihood = fit_plan(model, "auto", "auto", settings, None)
    assert collapsed and effects[0] == "on_demand" and log_likelihood is False


def test_a_saved_on_demand_fit_draws_the_same_after_loading(sleep_pair, tmp_path):
    on_demand = sleep_pair[1]
    loaded = bm.load_fit(on_demand.save(tmp_path / "fit.nc"))
    assert loaded.info["group_effects"] == "on_demand" and "r_Subject" not in loaded.posterior
    pd.testing.assert_frame_equal(loaded.random_effects(), on_demand.random_effects(), check_exact=True)


def test_a_saved_on_demand_fit_without_a_seed_is_refused(sleep_pair, tmp_path):
    import json

    import xarray as xr

    path = sleep_pair[1].save(tmp_path / "fit.nc")
    tree = xr.open_datatree(path, engine="h5netcdf").load()
    info = json.loads(tree.attrs["bayesmlm_info"])
    info["group_effects_seed"] = "eleven"
    tree.attrs["bayesmlm_info"] = json.dumps(info)
    tree.to_netcdf(tmp_path / "bad.nc", engine="h5netcdf")
    with pytest.raises(bm.FitError, match="group_effects_seed is not a seed"):
        bm.load_fit(tmp_path / "bad.nc")
