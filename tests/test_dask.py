"""Fitting from a Dask DataFrame or Parquet/CSV files: the same fits as from pandas, rows never gathered.

One ``distributed.LocalCluster`` of two worker processes serves the whole module. Every model is set
beside the same model fitted from the pandas frame: REML log-likelihood to 1e-8 relative (it agrees to
~1e-13), theta, fixed effects and conditional modes; the collapsed posterior within Monte Carlo error.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
import warnings

import numpy as np
import pandas as pd
import pytest

import bayesmlm as bm

dd = pytest.importorskip("dask.dataframe")
distributed = pytest.importorskip("distributed")

F = "Reaction ~ Days + (Days | Subject)"


@pytest.fixture(scope="module")
def client():
    with (
        distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
        ) as c,
        distributed.Client(c) as client,
    ):
        yield client


def partitioned(data: pd.DataFrame, n: int, seed: int | None = 0):
    """``data`` in ``n`` partitions, rows shuffled first (unless ``seed`` is None)."""
    if seed is not None:
        data = data.sample(frac=1.0, random_state=seed)
    return dd.from_pandas(data, npartitions=n, sort=False)


def sleep_with_missing() -> pd.DataFrame:
    """sleepstudy with NaN and inf in Days, NaN in Reaction, and one subject with no usable row."""
    d = bm.load_dataset("sleepstudy").copy()
    d.loc[d.index % 9 == 0, "Days"] = np.nan
    d.loc[d.index % 13 == 5, "Reaction"] = np.nan
    d.loc[d.index == 4, "Days"] = np.inf
    d.loc[d["Subject"] == "308", "Days"] = np.nan
    return d


def uneven() -> pd.DataFrame:
    """Categorical predictors and a grouping factor whose levels are spread unevenly over 4 partitions.

    Partition 0 lacks the reference level 'a' of ``c``; 'e' and the group 'solo' each occur in one
    partition only; ``C(k)``'s level 4 in one partition; ``w`` sits at 1e3 for ``center(w)``.
    """
    rng = np.random.default_rng(11)
    levels = [["b", "c"], ["a", "b"], ["b", "c", "d"], ["a", "e"]]
    parts = []
    for k, allowed in enumerate(levels):
        n = 150
        part = pd.DataFrame(
            {
                "x": rng.normal(size=n) * 3 + 10,
                "w": rng.normal(size=n) + 1e3,
                "c": rng.choice(allowed, n),
                "k": rng.integers(1, 4 if k != 2 else 5, n),
                "g": rng.choice([f"g{j}" for j in range(12)], n),
            }
        )
        if k == 1:
            part.loc[:4, "g"] = "solo"
        parts.append(part)
    d = pd.concat(parts, ignore_index=True)
    d["c"] = pd.Categorical(d["c"], categories=["e", "d", "c", "b", "a"])  # not in sorted order
    effect = {f"g{j}": v for j, v in enumerate(rng.normal(size=12))} | {"solo": 0.5}
    slope = d["c"].map(dict(zip("abcde", [0.0, 0.5, -0.3, 0.2, 1.0], strict=True))).astype(float)
    d["y"] = (
        2 + 0.4 * d["x"] + slope + d["g"].map(effect) * (1 + 0.3 * (d["w"] - 1e3)) + rng.normal(size=len(d))
    )
    return d


CASES = {
    "one factor": (F, lambda: bm.load_dataset("sleepstudy"), 3),
    "crossed": ("diameter ~ 1 + (1 | plate) + (1 | sample)", lambda: bm.load_dataset("Penicillin"), 4),
    "nested": ("strength ~ 1 + (1 | batch/cask)", lambda: bm.load_dataset("Pastes"), 4),
    "missing values": (F, sleep_with_missing, 5),
    "uneven categories": ("y ~ scale(x) + c + C(k) + x:c + (1 + center(w) | g)", uneven, 4),
}


def fit_both(formula, data, ddf):
    """REML fits from pandas and from Dask, with the warnings each raised."""
    fits, caught = [], []
    for source in (data, ddf):
        with warnings.catch_warnings(record=True) as w:
            warnings.simplefilter("always")
            model = bm.Model(formula, source)
            fits.append(model.fit_reml())
        caught.append(sorted(str(x.message) for x in w if issubclass(x.category, bm.BayesMLMWarning)))
    return fits, caught


def assert_same_reml(ours: bm.LikelihoodFit, ref: bm.LikelihoodFit) -> None:
    assert ours.loglik == pytest.approx(ref.loglik, rel=1e-8)
    np.testing.assert_allclose(ours.theta, ref.theta, rtol=1e-5, atol=1e-7)
    assert ours.design.fixed_names == ref.design.fixed_names
    columns = ["estimate", "se"]  # (p-values of z = 37 are ~1e-297: relative differences mean nothing)
    np.testing.assert_allclose(ours.fixed_effects[columns], ref.fixed_effects[columns], rtol=1e-6)
    assert (ours.nobs, ours.info["n_dropped"], ours.n_groups) == (
        ref.nobs,
        ref.info["n_dropped"],
        ref.n_groups,
    )
    # theta is found to ~1e-6 (the optimum is flat; the log-likelihood agrees to ~1e-13): so are the modes
    for f in ref.structure.factors:
        a, b = ours.random_effects(f.group), ref.random_effects(f.group)
        assert list(a.index) == list(b.index) and list(a.columns) == list(b.columns)
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5 * np.abs(b.to_numpy()).max())


@pytest.mark.parametrize("case", list(CASES))
def test_reml_from_dask_is_the_pandas_fit(client, case):
    formula, make, n_parts = CASES[case]
    data = make()
    (ref, ours), (ref_warnings, our_warnings) = fit_both(formula, data, partitioned(data, n_parts))
    assert_same_reml(ours, ref)
    assert our_warnings == ref_warnings  # e.g. the same DroppedRowsWarning, counts per column
    assert ours.design.holds_rows is False and ref.design.holds_rows is True


def test_a_response_far_from_zero_keeps_its_digits(client):
    """y near 1e6, x near 50: the statistics are put in the pandas path's centred frame (was 0.24 off)."""
    rng = np.random.default_rng(3)
    n = 600
    data = pd.DataFrame({"x": rng.normal(size=n) + 50, "g": rng.choice([f"s{i}" for i in range(15)], n)})
    effect = data["g"].map({f"s{i}": rng.normal() for i in range(15)})
    data["y"] = 0.3 * data["x"] + effect + rng.normal(size=n) + 1e6
    for reml in (True, False):
        fits = [bm.Model("y ~ x + (1 | g)", d) for d in (data, partitioned(data, 3))]
        ref, ours = (m.fit_reml() if reml else m.fit_ml() for m in fits)
        assert_same_reml(ours, ref)
        shifted = bm.Model("y ~ x + (1 | g)", data.assign(y=data["y"] - 1e6))
        assert ours.loglik == pytest.approx(
            (shifted.fit_reml() if reml else shifted.fit_ml()).loglik, rel=1e-10
        )


def test_partitioning_row_order_and_group_type_do_not_matter(client):
    data = bm.load_dataset("sleepstudy")
    ref = bm.Model(F, data).fit_reml()
    for n_parts, seed, group in [(1, None, "Subject"), (7, 3, "Subject"), (4, 5, "int")]:
        frame = data.assign(Subject=data["Subject"].astype(int)) if group == "int" else data
        fit = bm.Model(F, partitioned(frame, n_parts, seed)).fit_reml()
        assert fit.loglik == pytest.approx(ref.loglik, rel=1e-12)
        np.testing.assert_allclose(fit.theta, ref.theta, rtol=1e-7)


def test_parquet_and_csv_files_are_read_lazily(client, tmp_path):
    data = uneven()
    formula = CASES["uneven categories"][0]
    for k, part in enumerate(np.array_split(data.index, 3)):
        data.loc[part].to_parquet(tmp_path / f"part{k}.parquet")
        data.loc[part].to_csv(tmp_path / f"part{k}.csv", index=False)
    ref = bm.Model(formula, data.assign(c=data["c"].astype(str))).fit_reml()
    for path in [tmp_path / "part*.parquet", str(tmp_path / "part*.csv"), tmp_path / "part1.parquet"]:
        model = bm.Model(formula, path)
        assert ("Parquet" if str(path).endswith(".parquet") else "CSV") in model.reduction.info["source"]
        if "*" in str(path):
            assert_same_reml(model.fit_reml(), ref)
        else:
            assert model.design.n == len(np.array_split(data.index, 3)[1])
    with pytest.raises(bm.DataError, match="no file or directory matches"):
        bm.Model(formula, tmp_path / "nothing*.parquet")


def test_the_active_client_computes_the_statistics(client):
    ddf = partitioned(bm.load_dataset("sleepstudy"), 4)
    with distributed.get_task_stream(client) as stream:
        model = bm.Model(F, ddf)
    assert model.reduction.info["scheduler"] == f"distributed.Client at {client.scheduler.address}"
    ours = [t for t in stream.data if "bayesmlm-" in str(t["key"])]
    assert {str(t["key"]).split("-")[1] for t in ours} == {"scan", "statistics"}
    assert {t["worker"] for t in ours} <= set(client.scheduler_info()["workers"])
    # what came back is the statistics, whose size depends on the groups, not on the rows
    big = partitioned(pd.concat([bm.load_dataset("sleepstudy")] * 8, ignore_index=True), 6)
    sizes = [_nbytes(bm.Model(F, d).reduction.sums) for d in (ddf, big)]
    assert sizes[0] == sizes[1] < 20_000


def _nbytes(sums) -> int:
    arrays = [sums.gram, sums.fixed_r, *sums.level_zz, *sums.level_zw, *(p.values for p in sums.pairs)]
    return sum(a.nbytes for a in arrays)


def test_plain_formulas_read_the_rows_once_and_report_their_cpu(client):
    """y ~ x + (x | g) of numeric columns: one pass (the grouping column read first); else two."""
    data = sleep_with_missing()  # subject 308 has no usable row: a level the first pass sees
    for formula, passes in [(F, "one"), ("Reaction ~ Days + I(Days ** 2) + (Days | Subject)", "two")]:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", bm.DroppedRowsWarning)
            model = bm.Model(formula, partitioned(data, 4))
            ref = bm.Model(formula, data)
        info = model.reduction.info
        assert info["passes"].startswith(passes)
        assert model.structure.factors[0].levels == ref.structure.factors[0].levels
        assert "308" not in model.structure.factors[0].levels
        assert info["rows_read"] == len(data) and model.design.n == ref.design.n
        assert info["worker_cpu_seconds"] > 0 and info["partition_cpu_seconds"] > 0
        assert info["cpu_seconds_per_million_rows"] == pytest.approx(
            info["worker_cpu_seconds"] / len(data) * 1e6, rel=1e-2, abs=1e-3
        )
        assert model.fit_reml().loglik == pytest.approx(ref.fit_reml().loglik, rel=1e-10)


def _cluster_holds_nothing(client) -> bool:
    for _ in range(50):
        held = client.run(lambda dask_worker: len(dask_worker.data))
        if not any(held.values()) and not client.futures:
            return True
        time.sleep(0.1)
    return False


def test_a_partition_that_fails_raises_and_leaves_nothing(client, tmp_path):
    data = bm.load_dataset("sleepstudy").copy()
    data["Days1"] = data["Days"] + 1.0
    data.loc[100:110, "Days1"] = 0.0  # log(0) in one partition only
    ddf = dd.from_pandas(data, npartitions=4, sort=False)
    with pytest.raises(bm.DataError, match=r"in partition 2 of 4: the response or a fixed-effect column has"):
        bm.Model("Reaction ~ np.log(Days1) + (1 | Subject)", ddf)
    with pytest.raises(bm.DataError, match="non-finite"):  # what pandas says
        bm.Model("Reaction ~ np.log(Days1) + (1 | Subject)", data)

    def explode(part: pd.DataFrame) -> pd.DataFrame:
        if (part.index == 150).any():
            raise OSError("disk went away")
        return part

    failing = dd.from_pandas(data, npartitions=4, sort=False).map_partitions(explode)
    before = sorted(tmp_path.iterdir())
    with pytest.raises(bm.DataError, match="failed: OSError: disk went away; nothing was kept"):
        bm.Model(F, failing)
    assert _cluster_holds_nothing(client)
    assert sorted(tmp_path.iterdir()) == before


@pytest.fixture(scope="module")
def sleep_fits(client):
    """The collapsed posterior and REML fits of sleepstudy from pandas and from Dask."""
    data = bm.load_dataset("sleepstudy")
    kw = dict(draws=500, tune=500, chains=2, seed=7, progressbar=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", bm.SamplingWarning)
        models = [bm.Model(F, data), bm.Model(F, partitioned(data, 3))]
        return {"pandas": models[0].fit(**kw), "dask": models[1].fit(**kw), "models": models}


def test_collapsed_posterior_from_dask_is_the_pandas_posterior(sleep_fits):
    ours, ref = sleep_fits["dask"], sleep_fits["pandas"]
    assert ours.info["method"] == "collapsed" and ours.info["n_obs"] == 180
    assert ours.model.priors.equals(ref.model.priors)
    a, b = ours.summary(), ref.summary()
    for name in b.index:
        mcse = np.hypot(a.loc[name, "mcse_mean"], b.loc[name, "mcse_mean"])
        assert abs(a.loc[name, "mean"] - b.loc[name, "mean"]) < 4.5 * mcse, name
        assert a.loc[name, "sd"] == pytest.approx(b.loc[name, "sd"], rel=0.2), name
    re_a, re_b = ours.random_effects(), ref.random_effects()
    assert list(re_a.index) == list(re_b.index)
    assert np.all(np.abs(re_a["mean"] - re_b["mean"]) < 0.25 * re_b["sd"])


def test_a_dask_fit_draws_its_group_effects_on_demand_above_the_budget(sleep_fits):
    from bayesmlm.bayes.group_draws import GROUP_EFFECTS_BUDGET
    from bayesmlm.bayes.method_cost import fit_plan

    dask_model = sleep_fits["models"][1]
    over = GROUP_EFFECTS_BUDGET // (4 * 18 * 2) + 1  # draws of 18 subjects x 2 terms above the budget
    settings = dict(draws=over, tune=100, chains=1, cores=1, sampler="auto", sampler_kwargs={})
    assert fit_plan(dask_model, "auto", "auto", settings, None)[3][0] == "on_demand"
    kw = dict(draws=500, tune=500, chains=2, seed=7, progressbar=False, group_effects="on_demand")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", bm.SamplingWarning)
        on_demand = dask_model.fit(**kw)
    assert "r_Subject" not in on_demand.posterior
    # the same seed as the stored fit: the same draws, from the cluster's statistics
    pd.testing.assert_frame_equal(
        on_demand.random_effects(), sleep_fits["dask"].random_effects(), check_exact=True
    )


@pytest.mark.parametrize("case", list(CASES))
def test_collapsed_log_posterior_from_dask_is_the_pandas_one(client, case):
    """The same collapsed posterior, not only within Monte Carlo error: the same log density.

    Both models' collapsed PyMC models (priors, response scale, centred statistics) are evaluated at
    the start point and at 5 random points of the unconstrained space, for every case (crossed and
    nested factors, NaN rows, uneven categories included): the log densities agree to 1e-9 relative.
    """
    from bayesmlm.bayes.collapsed import build_collapsed_model

    formula, make, n_parts = CASES[case]
    data = make()
    logps, points = [], []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", bm.BayesMLMWarning)
        for source in (data, partitioned(data, n_parts)):
            model = bm.Model(formula, source)
            std = model._standardised
            pm_model = build_collapsed_model(
                std.design, model.structure, model.prior_set.scaled(std.scale), std.stats
            )
            logps.append(pm_model.compile_logp(mode="FAST_COMPILE"))
            points.append(pm_model.initial_point(random_seed=0))
    assert points[0].keys() == points[1].keys()
    rng = np.random.default_rng(3)
    start = {k: np.asarray(v, dtype=float) for k, v in points[0].items()}
    trials = [start] + [
        {k: v + rng.normal(scale=0.5, size=v.shape) for k, v in start.items()} for _ in range(5)
    ]
    for point in trials:
        ref, ours = float(logps[0](point)), float(logps[1](point))
        assert np.isfinite(ref) and ours == pytest.approx(ref, rel=1e-9)


def test_prediction_for_new_data_and_the_summary_work(sleep_fits):
    pandas_model, dask_model = sleep_fits["models"]
    new = bm.load_dataset("sleepstudy").iloc[[0, 50, 179]]
    ref, ours = pandas_model.fit_reml(), dask_model.fit_reml()
    np.testing.assert_allclose(ours.predict(new).to_numpy(), ref.predict(new).to_numpy(), rtol=1e-9)
    text = str(ours.summary())
    assert "not available: the rows stay where the data are" in text and "Subject, 18" in text
    assert ours.icc(n_boot=0).summary["estimate"].to_numpy() == pytest.approx(
        ref.icc(n_boot=0).summary["estimate"].to_numpy(),
        rel=1e-6,  # as theta: the optimum is flat
    )
    assert sleep_fits["dask"].icc().summary["estimate"].to_numpy() == pytest.approx(
        sleep_fits["pandas"].icc().summary["estimate"].to_numpy(), rel=0.05
    )
    draws = sleep_fits["dask"].predict(new, return_draws=True)
    assert draws.shape == (1000, 3)


ROW_FEATURES = {
    "reml fitted": lambda f: f["dask"].model.fit_reml().fitted(),
    "reml residuals": lambda f: f["dask"].model.fit_reml().residuals(),
    "reml bootstrap": lambda f: f["dask"].model.fit_reml().icc(n_boot=10),
    "bayes fitted": lambda f: f["dask"].fitted(),
    "posterior predictive": lambda f: f["dask"].posterior_predictive(),
    "loo": lambda f: f["dask"].loo(),
    "save": lambda f: f["dask"].save("never-written.nc"),
    "full model": lambda f: f["dask"].model.fit(method="full", draws=10, tune=10, chains=1),
    "log likelihood": lambda f: f["dask"].model.fit(log_likelihood=True, draws=10, tune=10, chains=1),
    "build": lambda f: f["dask"].model.build(),
    "model data": lambda f: f["dask"].model.data["Days"],
    "plot": lambda f: bm.plot_ppc(f["dask"]),
}


@pytest.mark.parametrize("feature", list(ROW_FEATURES))
def test_features_that_need_rows_say_so(sleep_fits, feature, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(bm.RowsNeededError, match="needs the data's rows, which this model does not hold"):
        ROW_FEATURES[feature](sleep_fits)
    assert list(tmp_path.iterdir()) == []


def test_pandas_fits_never_import_dask():
    code = (
        "import sys, json, bayesmlm as bm; "
        "bm.Model('Reaction ~ Days + (1 | Subject)', bm.load_dataset('sleepstudy')).cross_products; "
        "print(json.dumps([m for m in ('dask', 'distributed') if m in sys.modules]))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=300
    )
    assert json.loads(out.stdout.strip().splitlines()[-1]) == []
