"""Sampling diagnostics: exact counts and names in the messages, on synthetic DataTrees."""

import json
import math
import re
import warnings

import arviz as az
import numpy as np
import pytest
import xarray as xr

from bayesmlm.bayes.checks import check_sampling, warn_sampling
from bayesmlm.bayes.diagnostics import diagnostics_table
from bayesmlm.exceptions import BayesMLMWarning, SamplingWarning

CHAINS, DRAWS = 4, 1000
TERMS = ["Intercept", "Days"]


def healthy_posterior(seed=0):
    """Independent normal draws: a scalar, a vector with coordinate labels and a 2 x 2 matrix."""
    rng = np.random.default_rng(seed)
    return {
        "mu": rng.normal(size=(CHAINS, DRAWS)),
        "sd_Subject": rng.gamma(4.0, size=(CHAINS, DRAWS, 2)),
        "C": rng.normal(size=(CHAINS, DRAWS, 2, 2)),
    }


def make_idata(posterior, sample_stats=None):
    data = {"posterior": posterior}
    if sample_stats is not None:
        data["sample_stats"] = sample_stats
    return az.from_dict(data, coords={"term": TERMS}, dims={"sd_Subject": ["term"]})


def pymc_stats(diverging=None, hits=None, depth=10):
    """PyMC-style sample stats: ``diverging``, ``tree_depth``, ``reached_max_treedepth``."""
    diverging = np.zeros((CHAINS, DRAWS), dtype=bool) if diverging is None else diverging
    hits = np.zeros((CHAINS, DRAWS), dtype=bool) if hits is None else hits
    tree_depth = np.where(hits, depth, 4).astype(np.int64)
    return {"diverging": diverging, "tree_depth": tree_depth, "reached_max_treedepth": hits}


def ar1(phi, rng, shape=(CHAINS, DRAWS)):
    """Stationary AR(1) chains: strongly autocorrelated draws for phi near 1."""
    x = np.empty(shape)
    x[:, 0] = rng.normal(size=shape[0])
    innovations = rng.normal(size=shape) * np.sqrt(1 - phi**2)
    for t in range(1, shape[1]):
        x[:, t] = phi * x[:, t - 1] + innovations[:, t]
    return x


def listed_names(message):
    """Parameter names in the ``(worst: ...)`` part of an R-hat message, in order."""
    worst = re.search(r"\(worst: (.*?)\)\. ", message).group(1)
    return [item.split(" = ")[0] for item in worst.split(", ") if " = " in item]


# ---------------------------------------------------------------------------------------------------------
# Healthy posteriors
# ---------------------------------------------------------------------------------------------------------


def test_healthy_posterior_gives_no_messages():
    idata = make_idata(healthy_posterior(), pymc_stats())
    assert check_sampling(idata) == []


def test_healthy_posterior_issues_no_warning():
    idata = make_idata(healthy_posterior(1), pymc_stats())
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert warn_sampling(idata) == []


def test_missing_sample_stats_gives_no_divergence_or_depth_findings():
    idata = make_idata(healthy_posterior())
    assert "sample_stats" not in idata.children
    assert check_sampling(idata) == []


def test_posterior_dataset_accepted_directly():
    idata = make_idata(healthy_posterior())
    posterior = idata["posterior"].to_dataset()
    assert list(diagnostics_table(posterior).index) == list(diagnostics_table(idata).index)
    assert check_sampling(posterior) == []


# ---------------------------------------------------------------------------------------------------------
# Divergences
# ---------------------------------------------------------------------------------------------------------


def test_seven_divergences_in_two_chains():
    diverging = np.zeros((CHAINS, DRAWS), dtype=bool)
    diverging[0, [3, 50, 51, 400, 999]] = True
    diverging[3, [0, 700]] = True
    messages = check_sampling(make_idata(healthy_posterior(), pymc_stats(diverging=diverging)))
    assert len(messages) == 1
    msg = messages[0]
    assert msg.startswith("7 of 4000 post-warm-up transitions diverged (2 chains affected). ")
    assert "fit(target_accept=0.95)" in msg
    assert "parameterization='noncentered'/'centered'" in msg
    assert "random-effects structure" in msg


def test_divergences_in_one_chain_use_singular():
    diverging = np.zeros((CHAINS, DRAWS), dtype=bool)
    diverging[2, :3] = True
    (msg,) = check_sampling(make_idata(healthy_posterior(), pymc_stats(diverging=diverging)))
    assert msg.startswith("3 of 4000 post-warm-up transitions diverged (1 chain affected).")


def test_divergences_during_nutpie_tuning_are_not_counted():
    diverging = np.zeros((CHAINS, DRAWS), dtype=bool)
    tuning = np.zeros((CHAINS, DRAWS), dtype=bool)
    tuning[:, :100] = True
    diverging[1, [5, 10, 20]] = True  # during warm-up
    diverging[1, 500] = diverging[2, 900] = True  # after it
    stats = {"diverging": diverging, "tuning": tuning}
    (msg,) = check_sampling(make_idata(healthy_posterior(), stats))
    assert msg.startswith("2 of 3600 post-warm-up transitions diverged (2 chains affected).")


# ---------------------------------------------------------------------------------------------------------
# R-hat
# ---------------------------------------------------------------------------------------------------------


def test_rhat_names_the_parameter_whose_chains_disagree():
    posterior = healthy_posterior()
    posterior["sd_Subject"][3, :, 1] += 3.0  # chain 4 of sd_Subject[Days] sits elsewhere
    idata = make_idata(posterior, pymc_stats())
    messages = check_sampling(idata, ess_min=0)
    assert len(messages) == 1
    msg = messages[0]
    assert msg.startswith("R-hat is above 1.01 for 1 of 7 parameters (worst: sd_Subject[Days] = ")
    assert "sd_Subject[Intercept]" not in msg
    rhat = diagnostics_table(idata).at["sd_Subject[Days]", "rhat"]
    assert rhat > 1.1
    assert f"sd_Subject[Days] = {rhat:.3f})" in msg
    assert "tune=" in msg and "draws=2000" in msg and "multimodality" in msg and "priors" in msg


def test_rhat_lists_the_five_worst_in_order():
    rng = np.random.default_rng(5)
    shifts = [0.5, 0.8, 1.2, 1.6, 2.0, 2.5, 3.0]
    posterior = {f"p{i}": rng.normal(size=(CHAINS, DRAWS)) for i in range(len(shifts))}
    for i, shift in enumerate(shifts):
        posterior[f"p{i}"][0] += shift
    posterior["fine"] = rng.normal(size=(CHAINS, DRAWS))
    idata = az.from_dict({"posterior": posterior})
    rhat_msgs = [m for m in check_sampling(idata) if m.startswith("R-hat")]
    assert len(rhat_msgs) == 1
    assert rhat_msgs[0].startswith("R-hat is above 1.01 for 7 of 8 parameters ")
    assert listed_names(rhat_msgs[0]) == ["p6", "p5", "p4", "p3", "p2"]


def test_rhat_threshold_is_respected():
    posterior = healthy_posterior()
    posterior["mu"][0] += 0.5
    idata = make_idata(posterior)
    rhat = diagnostics_table(idata).at["mu", "rhat"]
    assert 1.01 < rhat < 1.5
    assert any(m.startswith("R-hat") for m in check_sampling(idata, ess_min=0))
    assert not any(m.startswith("R-hat") for m in check_sampling(idata, rhat_max=1.5, ess_min=0))


def test_non_finite_draws_are_reported_not_skipped():
    posterior = healthy_posterior()
    posterior["mu"][1, 10] = np.nan
    msgs = check_sampling(make_idata(posterior), ess_min=0)
    assert len(msgs) == 1
    assert msgs[0].startswith("R-hat is above 1.01 for 1 of 7 parameters (worst: mu = nan)")


# ---------------------------------------------------------------------------------------------------------
# Effective sample size
# ---------------------------------------------------------------------------------------------------------


def test_low_ess_names_autocorrelated_parameters_worst_first():
    rng = np.random.default_rng(3)
    posterior = {
        "slow": ar1(0.95, rng),
        "sluggish": ar1(0.9, rng),
        "fast": rng.normal(size=(CHAINS, DRAWS)),
    }
    idata = az.from_dict({"posterior": posterior})
    table = diagnostics_table(idata)
    assert (
        table.at["slow", "ess_bulk"] < table.at["sluggish", "ess_bulk"] < 400 < table.at["fast", "ess_bulk"]
    )
    ess_msgs = [m for m in check_sampling(idata, rhat_max=np.inf) if m.startswith("Effective")]
    assert len(ess_msgs) == 1
    msg = ess_msgs[0]
    assert msg.startswith("Effective sample size is below 400 for 2 of 3 parameters (worst: slow: bulk ")
    assert msg.index("slow:") < msg.index("sluggish:")
    assert "fast" not in msg
    bulk, tail = table.at["slow", "ess_bulk"], table.at["slow", "ess_tail"]
    assert f"slow: bulk {bulk:.0f}, tail {tail:.0f}" in msg
    # Draws per chain needed at the current efficiency: 1000 * 400 / worst ESS, rounded up to hundreds.
    needed = 100 * math.ceil(DRAWS * 400 / min(bulk, tail) / 100)
    assert 1000 < needed <= 10_000
    assert f"about {needed} draws per chain, e.g. fit(draws={needed})" in msg
    assert "parameterization='noncentered'/'centered'" in msg


def test_ess_lists_at_most_five():
    rng = np.random.default_rng(4)
    posterior = {f"x{i}": ar1(0.97, rng) for i in range(7)}
    (msg,) = [m for m in check_sampling(az.from_dict({"posterior": posterior}), rhat_max=np.inf)]
    assert msg.startswith("Effective sample size is below 400 for 7 of 7 parameters")
    assert len(re.findall(r"x\d: bulk", msg)) == 5


def test_ess_threshold_is_respected():
    rng = np.random.default_rng(3)
    idata = az.from_dict({"posterior": {"sluggish": ar1(0.9, rng)}})
    ess = diagnostics_table(idata).loc["sluggish", ["ess_bulk", "ess_tail"]].min()
    assert 100 < ess < 400
    assert any(m.startswith("Effective") for m in check_sampling(idata, rhat_max=np.inf))
    assert check_sampling(idata, rhat_max=np.inf, ess_min=100) == []


def test_tail_ess_alone_triggers_the_check():
    # Runs of extreme values: the tails are visited rarely and in clumps, so tail ESS < bulk ESS.
    rng = np.random.default_rng(0)
    x = rng.normal(size=(CHAINS, DRAWS))
    in_tail = rng.random((CHAINS, 10)) < 0.1  # which blocks of 100 draws sit in a tail
    excursion = np.repeat(np.where(in_tail, rng.choice([-3.0, 3.0], (CHAINS, 10)), 0.0), 100, axis=1)
    x = np.where(excursion != 0, excursion + 0.1 * rng.normal(size=x.shape), x)
    idata = az.from_dict({"posterior": {"x": x}})
    row = diagnostics_table(idata).loc["x"]
    assert row["ess_tail"] < 0.5 * row["ess_bulk"]
    ess_min = (row["ess_tail"] + row["ess_bulk"]) / 2  # only tail ESS falls below it
    msgs = [m for m in check_sampling(idata, rhat_max=np.inf, ess_min=ess_min) if m.startswith("Effective")]
    assert len(msgs) == 1
    assert f"x: bulk {row['ess_bulk']:.0f}, tail {row['ess_tail']:.0f}" in msgs[0]
    assert check_sampling(idata, rhat_max=np.inf, ess_min=row["ess_tail"] - 1) == []


# ---------------------------------------------------------------------------------------------------------
# Tree depth
# ---------------------------------------------------------------------------------------------------------


def test_tree_depth_saturation_pymc_names():
    hits = np.zeros((CHAINS, DRAWS), dtype=bool)
    hits[0, :10] = hits[2, 100:103] = True
    (msg,) = check_sampling(make_idata(healthy_posterior(), pymc_stats(hits=hits, depth=10)))
    assert msg.startswith("13 of 4000 transitions hit the maximum tree depth (10). ")
    assert "efficiency" in msg and "max_treedepth" in msg and "max_treedepth (e.g. to 12)" in msg


def test_tree_depth_saturation_nutpie_names():
    hits = np.zeros((CHAINS, DRAWS), dtype=bool)
    hits[1, 200:221] = True
    stats = {
        "diverging": np.zeros((CHAINS, DRAWS), dtype=bool),
        "depth": np.where(hits, 8, 3).astype(np.uint64),
        "maxdepth_reached": hits,
    }
    (msg,) = check_sampling(make_idata(healthy_posterior(), stats))
    assert msg.startswith("21 of 4000 transitions hit the maximum tree depth (8). ")


def test_tree_depth_from_nutpie_settings_without_flag():
    depth = np.full((CHAINS, DRAWS), 3, dtype=np.uint64)
    depth[3, :4] = 6
    idata = make_idata(healthy_posterior(), {"depth": depth})
    idata["sample_stats"].attrs["inference_library_settings"] = json.dumps({"settings": {"maxdepth": 6}})
    (msg,) = check_sampling(idata)
    assert msg.startswith("4 of 4000 transitions hit the maximum tree depth (6). ")


def test_depth_without_flag_or_settings_is_not_guessed():
    depth = np.full((CHAINS, DRAWS), 10, dtype=np.int64)
    assert check_sampling(make_idata(healthy_posterior(), {"tree_depth": depth})) == []


def test_all_problems_reported_in_order():
    posterior = healthy_posterior()
    posterior["mu"][0] += 3.0
    diverging = np.zeros((CHAINS, DRAWS), dtype=bool)
    diverging[0, 0] = True
    hits = np.zeros((CHAINS, DRAWS), dtype=bool)
    hits[1, 1] = True
    msgs = check_sampling(make_idata(posterior, pymc_stats(diverging=diverging, hits=hits)))
    assert [m.split()[0] for m in msgs] == ["1", "R-hat", "Effective", "1"]
    assert "diverged" in msgs[0] and "tree depth" in msgs[3]
    # A stuck chain leaves ESS so low that more draws alone is hopeless: the advice says so.
    assert "likely the better remedy" in msgs[2]


# ---------------------------------------------------------------------------------------------------------
# Constant parameters
# ---------------------------------------------------------------------------------------------------------


def constant_posterior(seed=7):
    rng = np.random.default_rng(seed)
    rho = np.tanh(rng.normal(size=(CHAINS, DRAWS)))
    corr = np.empty((CHAINS, DRAWS, 2, 2))
    corr[..., 0, 0] = 1.0  # exactly 1
    corr[..., 1, 1] = 1.0 + rng.choice([-1, 0, 1], size=(CHAINS, DRAWS)) * 2e-16  # 1 up to round-off
    corr[..., 0, 1] = corr[..., 1, 0] = rho
    return {
        "mu": rng.normal(size=(CHAINS, DRAWS)),
        "corr": corr,
        "fixed": np.full((CHAINS, DRAWS), 3.0),
        "zero": np.zeros((CHAINS, DRAWS)),
    }


def test_constant_parameters_give_no_warnings():
    idata = az.from_dict({"posterior": constant_posterior()})
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # also no RuntimeWarning from 0/0 inside ArviZ
        assert check_sampling(idata) == []


def test_constant_parameters_have_nan_diagnostics_in_table():
    table = diagnostics_table(az.from_dict({"posterior": constant_posterior()}))
    constant = ["corr[0, 0]", "corr[1, 1]", "fixed", "zero"]
    assert table.loc[constant, ["rhat", "ess_bulk", "ess_tail"]].isna().all().all()
    assert (table.loc[constant, "mcse_mean"] == 0).all()
    assert table.loc[["mu", "corr[0, 1]", "corr[1, 0]"]].notna().all().all()


def test_constant_parameters_do_not_count_in_denominators():
    posterior = constant_posterior()
    posterior["mu"][0] += 3.0
    rhat_msgs = [m for m in check_sampling(az.from_dict({"posterior": posterior})) if m.startswith("R-hat")]
    assert len(rhat_msgs) == 1
    assert rhat_msgs[0].startswith("R-hat is above 1.01 for 1 of 3 parameters (worst: mu = ")


# ---------------------------------------------------------------------------------------------------------
# Table
# ---------------------------------------------------------------------------------------------------------


def test_table_columns_and_row_labels():
    table = diagnostics_table(make_idata(healthy_posterior()))
    assert list(table.columns) == ["rhat", "ess_bulk", "ess_tail", "mcse_mean"]
    assert list(table.index) == [
        "mu",
        "sd_Subject[Intercept]",
        "sd_Subject[Days]",
        "C[0, 0]",
        "C[0, 1]",
        "C[1, 0]",
        "C[1, 1]",
    ]


def test_table_values_agree_with_arviz_summary():
    idata = make_idata(healthy_posterior())
    table = diagnostics_table(idata)
    summary = az.summary(idata, kind="diagnostics", round_to="none")
    assert list(summary.index) == list(table.index)
    np.testing.assert_allclose(table["rhat"], summary["r_hat"])
    np.testing.assert_allclose(table["ess_bulk"], summary["ess_bulk"])
    np.testing.assert_allclose(table["ess_tail"], summary["ess_tail"])
    np.testing.assert_allclose(table["mcse_mean"], summary["mcse_mean"])
    # Matrix elements in C order: C[1, 0] is element (1, 0) of the draws.
    ess_10 = az.ess(idata["posterior"].to_dataset()[["C"]], method="bulk")["C"].values[1, 0]
    assert table.at["C[1, 0]", "ess_bulk"] == pytest.approx(ess_10)


def test_var_names_restrict_table_and_checks():
    posterior = healthy_posterior()
    posterior["mu"][0] += 3.0
    idata = make_idata(posterior)
    assert list(diagnostics_table(idata, var_names="mu").index) == ["mu"]
    assert list(diagnostics_table(idata, var_names=["sd_Subject"]).index) == [
        "sd_Subject[Intercept]",
        "sd_Subject[Days]",
    ]
    assert check_sampling(idata, var_names=["sd_Subject", "C"]) == []
    assert len(check_sampling(idata, var_names=["mu"])) == 2


def test_unknown_var_name_is_an_error():
    with pytest.raises(ValueError, match="'sigma'"):
        diagnostics_table(make_idata(healthy_posterior()), var_names=["mu", "sigma"])


def test_wrong_input_type_is_an_error():
    with pytest.raises(TypeError, match="DataTree"):
        check_sampling({"posterior": healthy_posterior()})


def test_missing_posterior_is_an_error():
    with pytest.raises(ValueError, match="posterior"):
        check_sampling(xr.DataTree())


# ---------------------------------------------------------------------------------------------------------
# warn_sampling
# ---------------------------------------------------------------------------------------------------------


def test_warn_sampling_issues_one_sampling_warning_per_problem():
    diverging = np.zeros((CHAINS, DRAWS), dtype=bool)
    diverging[1, :7] = True
    posterior = healthy_posterior()
    posterior["mu"][0] += 3.0
    idata = make_idata(posterior, pymc_stats(diverging=diverging))
    with pytest.warns(SamplingWarning) as record:
        messages = warn_sampling(idata)
    assert messages == check_sampling(idata)
    assert len(messages) == 3
    assert [str(w.message) for w in record] == messages
    assert all(issubclass(w.category, BayesMLMWarning) for w in record)
    assert record[0].filename == __file__  # stacklevel=2 points at the caller


def test_warn_sampling_passes_thresholds_through():
    posterior = healthy_posterior()
    posterior["mu"][0] += 0.5
    idata = make_idata(posterior)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert warn_sampling(idata, rhat_max=1.5, ess_min=0) == []


# ---------------------------------------------------------------------------------------------------------
# One real PyMC run
# ---------------------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_real_pymc_funnel():
    pm = pytest.importorskip("pymc")
    with pm.Model(coords={"g": ["a", "b", "c"]}):
        mu = pm.Normal("mu", 0, 1)
        sd = pm.HalfNormal("sd", 1)
        pm.Normal("r", mu, sd, dims="g")
        pm.LKJCholeskyCov("chol", n=2, eta=2, sd_dist=pm.Exponential.dist(1), compute_corr=True)
        idata = pm.sample(
            200,
            tune=200,
            chains=2,
            random_seed=1,
            progressbar=False,
            compute_convergence_checks=False,
        )
    stats = idata["sample_stats"]
    n_div = int(stats["diverging"].sum())
    assert n_div > 0  # the funnel with no data diverges
    n_chains = int((stats["diverging"].sum("draw") > 0).sum())
    messages = check_sampling(idata)
    chain_word = "chain" if n_chains == 1 else "chains"
    assert messages[0].startswith(
        f"{n_div} of 400 post-warm-up transitions diverged ({n_chains} {chain_word} affected)."
    )
    table = diagnostics_table(idata)
    assert {"mu", "sd", "r[a]", "r[c]", "chol_corr[0, 1]", "chol_corr[1, 1]"} <= set(table.index)
    # The correlation matrix's diagonal is constant (up to round-off): no diagnostics, no warnings.
    assert table.loc[["chol_corr[0, 0]", "chol_corr[1, 1]"], "rhat"].isna().all()
    assert not any("chol_corr[0, 0]" in m or "chol_corr[1, 1]" in m for m in messages)
