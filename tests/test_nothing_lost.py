"""Nothing lost: the caller's data frame is never modified, dropped rows are counted, saved fits
round-trip after prediction, and an interrupted sampling run leaves the model usable."""

from __future__ import annotations

import os
import subprocess
import sys
import warnings
from functools import cache

import matplotlib
import numpy as np
import pandas as pd
import pytest

import bayesmlm as bm

matplotlib.use("Agg")
import matplotlib.pyplot as plt

F = "Reaction ~ Days + (Days | Subject)"


def user_frame() -> pd.DataFrame:
    """sleepstudy as a user might hold it: extra and awkward columns, missing values, odd types."""
    d = bm.load_dataset("sleepstudy").copy()
    d["Subject"] = pd.Categorical(d["Subject"].astype(str))
    d.loc[[3, 50, 77], "Days"] = np.nan  # 3 rows to drop
    d["note"] = ["x", None, "z"] * 60  # unused column
    d["Days_obj"] = d["Days"].astype(object)  # object column of numbers, converted internally
    d["late"] = d["Days"] >= 5
    d.index = pd.RangeIndex(1000, 1180, name="row")
    d.attrs["source"] = "test"
    return d


def fingerprint(df: pd.DataFrame):
    """Everything a call could change: values (hashed with the index), columns, dtypes, index, attrs."""
    return (
        pd.util.hash_pandas_object(df, index=True).to_numpy().tobytes(),
        list(df.columns),
        [str(t) for t in df.dtypes],
        list(df.index),
        df.index.name,
        dict(df.attrs),
        df["Subject"].cat.categories.tolist(),
    )


@cache
def fits():
    data = user_frame()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", bm.BayesMLMWarning)
        model = bm.Model("Reaction ~ Days_obj + late + (Days | Subject)", data)
        reml = model.fit_reml()
        bayes = model.fit(draws=150, tune=150, chains=2, seed=11, progressbar=False)
    return data, model, reml, bayes


def calls(tmp_path):
    """(name, function of the user's frame) for every public call that takes or uses one."""
    _, model, reml, bayes = fits()
    new = lambda d: d.iloc[:20]  # noqa: E731
    return [
        ("Model", lambda d: bm.Model(F, d)),
        ("Model.fit_reml", lambda d: bm.Model(F, d).fit_reml()),
        ("make_design", lambda d: bm.make_design(F, d)),
        ("Model na_action=error", lambda d: _expect(bm.DataError, lambda: bm.Model(F, d, na_action="error"))),
        ("Model with a bad formula", lambda d: _expect(bm.FormulaError, lambda: bm.Model("Reaction ~ (", d))),
        ("LikelihoodFit.predict", lambda d: reml.predict(new(d))),
        ("LikelihoodFit.predict population", lambda d: reml.predict(new(d), include_random=False)),
        ("Fit.predict", lambda d: bayes.predict(new(d), seed=1)),
        ("Fit.predict response draws", lambda d: bayes.predict(new(d), kind="response", return_draws=True)),
        ("Model.from_dict", lambda d: bm.Model.from_dict(model.to_dict(), d)),
        ("mixedlm", lambda d: bm.mixedlm("Reaction ~ Days", d, groups=d["Subject"], missing="drop").fit()),
        (
            "mixedlm re_formula",
            lambda d: bm.mixedlm("Reaction ~ Days", d, groups="Subject", re_formula="~Days", missing="drop"),
        ),
        (
            "MixedLMResults.predict",
            lambda d: (
                bm.mixedlm("Reaction ~ Days", d, groups="Subject", missing="drop").fit().predict(new(d))
            ),
        ),
        ("Model.fit (NUTS)", lambda d: _small_bayes(d)),
    ]


def _expect(exc, fn):
    with pytest.raises(exc):
        fn()


def _small_bayes(d):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", bm.SamplingWarning)
        return bm.Model(F, d).fit(draws=50, tune=50, chains=1, seed=1, progressbar=False)


def test_no_public_call_modifies_the_callers_frame(tmp_path):
    data = user_frame()
    before = fingerprint(data)
    failures = []
    for name, call in calls(tmp_path):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            call(data)
        if fingerprint(data) != before:
            failures.append(name)
            data = user_frame()
    assert not failures, f"these calls modified the caller's DataFrame: {failures}"


def test_using_fits_never_reaches_back_into_the_callers_frame(tmp_path):
    """Fits keep copies: every method of the fits, plots and reports leaves the frame they came from."""
    data, model, reml, bayes = fits()
    before = fingerprint(data)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for f in (reml, bayes):
            f.summary()
            f.fitted()
            f.random_effects()
            f.icc(**({"n_boot": 20, "seed": 1} if f is reml else {}))
            f.variance_decomposition()
            for plot in (bm.plot_shrinkage, bm.plot_groups, bm.plot_pooling, bm.plot_caterpillar):
                plt.close(plot(f))
            bm.no_pooling_coefficients(f)
            bm.complete_pooling_coefficients(f)
        reml.residuals()
        bayes.posterior_predictive(seed=1)
        plt.close(bm.plot_ppc(bayes))
        bm.compare_estimates(bayes, reml, n_boot=20, seed=1)
        bm.lrt(bm.Model("Reaction ~ Days_obj + late + (1 | Subject)", data).fit_ml(), reml)
        bayes.save(tmp_path / "fit.nc")
        bm.load_fit(tmp_path / "fit.nc").summary()
        assert len(model.priors) > 0
        model.sample_prior_predictive(draws=20, seed=1)
    assert fingerprint(data) == before


def test_fit_keeps_its_own_copy_when_the_caller_edits_the_frame():
    data = bm.load_dataset("sleepstudy").copy()
    reml = bm.Model(F, data).fit_reml()
    loglik = reml.loglik
    data["Reaction"] = 0.0  # the caller reuses the frame
    assert reml.design.data["Reaction"].std() > 0
    assert reml.refit(reml=True).loglik == pytest.approx(loglik, rel=1e-10)


def test_dropped_rows_are_counted_in_the_warning_and_in_both_fits_info():
    data = user_frame()
    with pytest.warns(bm.DroppedRowsWarning, match=r"dropped 3 of 180 rows .*Days_obj: 3"):
        model = bm.Model("Reaction ~ Days_obj + late + (1 | Subject)", data)
    assert model.design.n == 177
    assert model.fit_reml().info["n_dropped"] == 3
    _, _, reml, bayes = fits()
    assert reml.info["n_dropped"] == bayes.info["n_dropped"] == 3
    assert reml.nobs == 177
    assert bayes.idata["observed_data"].sizes["obs"] == 177


def test_fit_info_records_versions_and_sampler_settings():
    _, _, reml, bayes = fits()
    for info in (reml.info, bayes.info):
        assert {"bayesmlm", "pymc", "pytensor", "arviz", "numpy"} <= set(info["versions"])
    assert {k: bayes.info[k] for k in ("draws", "tune", "chains", "seed", "sampler", "target_accept")} == {
        "draws": 150,
        "tune": 150,
        "chains": 2,
        "seed": 11,
        "sampler": "nutpie",  # the default on a one-factor model: nutpie on the direct density
        "target_accept": 0.8,
    }
    assert "written out" in bayes.info["density"] and {"nutpie", "numba"} <= set(bayes.info["versions"])
    assert bayes.info["method"] in ("collapsed", "full")
    assert bayes.info["response_scale"] == pytest.approx(np.std(bayes.model.design.y, ddof=1))


def test_save_and_load_round_trip_after_prediction(tmp_path):
    _, _, _, bayes = fits()
    new = pd.DataFrame(
        {
            "Days": [1.0, 4.0, 8.0],
            "Days_obj": [1.0, 4.0, 8.0],
            "late": [False, False, True],
            "Subject": ["308", "999", "330"],
        }
    )
    groups = sorted(bayes.idata.children)
    before = bayes.predict(new, seed=5)
    assert sorted(bayes.idata.children) == groups  # predict() adds nothing to the fit
    replicated = bayes.posterior_predictive(seed=2)  # this one adds the posterior_predictive group
    bayes.save(tmp_path / "fit.nc")
    loaded = bm.load_fit(tmp_path / "fit.nc")
    pd.testing.assert_frame_equal(loaded.predict(new, seed=5), before)
    pd.testing.assert_frame_equal(loaded.summary(), bayes.summary())
    assert loaded.info == bayes.info
    assert sorted(loaded.idata.children) == sorted(bayes.idata.children)
    np.testing.assert_array_equal(loaded.idata["posterior_predictive"]["y"].values, replicated.values)
    # and again: save the loaded fit after predicting with it
    loaded.save(tmp_path / "again.nc")
    pd.testing.assert_frame_equal(bm.load_fit(tmp_path / "again.nc").predict(new, seed=5), before)


INTERRUPT = """
import os, signal, warnings, numpy as np, bayesmlm as bm
warnings.simplefilter("ignore")
# as in a terminal: pytest-xdist's workers ignore SIGINT, and a child process inherits that
signal.signal(signal.SIGINT, signal.default_int_handler)
model = bm.Model("Reaction ~ Days + (1 | Subject)", bm.load_dataset("sleepstudy"))

def ctrl_c(trace, draw):
    if draw.draw_idx == 40 and draw.chain == 0:
        os.kill(os.getpid(), signal.SIGINT)  # a real Ctrl-C, delivered by the operating system

try:
    # long enough after the signal that its (sometimes delayed) delivery still falls within sampling
    model.fit(
        draws=3000, tune=50, chains=2, cores=2, seed=1, progressbar=False, sampler_kwargs={"callback": ctrl_c}
    )
    print("NOT INTERRUPTED")
except KeyboardInterrupt as err:
    print("INTERRUPTED:", err)
fit = model.fit(draws=100, tune=100, chains=2, cores=2, seed=1, progressbar=False)
fresh = bm.Model("Reaction ~ Days + (1 | Subject)", bm.load_dataset("sleepstudy")).fit(
    draws=100, tune=100, chains=2, cores=2, seed=1, progressbar=False
)
print("REFIT", fit.posterior.sizes["draw"], np.array_equal(fit.posterior["fixed"], fresh.posterior["fixed"]))
"""


def test_ctrl_c_during_parallel_sampling_leaves_the_model_usable():
    run = subprocess.run(
        [sys.executable, "-c", INTERRUPT], capture_output=True, text=True, timeout=600, env=dict(os.environ)
    )
    assert run.returncode == 0, run.stderr[-3000:]
    lines = run.stdout.strip().splitlines()
    assert any(line.startswith("INTERRUPTED: sampling was interrupted") for line in lines), run.stdout
    assert lines[-1] == "REFIT 100 True"
