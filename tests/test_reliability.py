"""Reliability, round two (issue 19): each reported failure, reproduced as a new user would meet it.

Every test here failed before its fix: a silent wrong answer, an argument ignored or refused with a
raw Python error, a save that could destroy a good file or lose row labels, worker processes that
outlived their parent, a corrupted file that broke at ``summary()``, and a first run that said
nothing. The REML numbers for shifted and scaled responses are in ``test_reml_invariance.py``; the
PPC group statistic is in ``test_plots.py``.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
import warnings

import numpy as np
import pandas as pd
import pytest

import bayesmlm as bm

FORMULA = "Reaction ~ Days + (Days | Subject)"


@pytest.fixture(scope="module")
def sleep():
    return bm.load_dataset("sleepstudy")


@pytest.fixture(scope="module")
def fit(sleep):
    """One small Bayesian fit, shared (the arguments are checked before anything samples)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return bm.Model(FORMULA, sleep).fit(
            draws=150, tune=150, chains=2, cores=1, seed=1, progressbar=False, log_likelihood=True
        )


def small_fit(model, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return model.fit(draws=40, tune=40, chains=1, cores=1, seed=3, progressbar=False, **kw)


# -- silent wrong answers: numbers -------------------------------------------------------------


@pytest.mark.parametrize("shift", [1e8, 1e9, 1e12])
def test_a_response_far_from_zero_gives_the_same_reml_fit(sleep, shift):
    base = bm.Model(FORMULA, sleep).fit_reml()
    moved = bm.Model(FORMULA, sleep.assign(Reaction=sleep.Reaction + shift)).fit_reml()
    np.testing.assert_allclose(moved.theta, base.theta, rtol=1e-4, atol=1e-5)
    assert moved.sigma == pytest.approx(base.sigma, rel=1e-5)
    intercept = moved.fixed_effects.loc["Intercept", "estimate"] - shift
    # the shifted intercept is known to a few ulps of the shift (1e12 has an ulp of 1.2e-4)
    assert intercept == pytest.approx(
        base.fixed_effects.loc["Intercept", "estimate"], abs=max(1e-3, shift * 1e-14)
    )


def test_collapsed_posterior_sigma_of_a_shifted_response_is_unchanged(sleep):
    """Reaction + 1e9 gave posterior sigma 36 instead of 26 (cancellation in y'y)."""
    model = bm.Model("Reaction ~ Days + (1 | Subject)", sleep)
    moved = bm.Model("Reaction ~ Days + (1 | Subject)", sleep.assign(Reaction=sleep.Reaction + 1e9))
    kw = dict(draws=300, tune=300, chains=1, cores=1, seed=5, progressbar=False, method="collapsed")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        a, b = model.fit(**kw), moved.fit(**kw)
    sa, sb = float(a.posterior["sigma"].mean()), float(b.posterior["sigma"].mean())
    assert 28 < sa < 34  # sleepstudy's random-intercept sigma is 30.99 by REML
    assert sb == pytest.approx(sa, abs=1.5)  # Monte Carlo error of two 300-draw means is ~0.3


def test_an_int8_predictor_does_not_overflow_inside_an_expression(sleep):
    design = bm.make_design(
        "Reaction ~ I(Days * 100) + (1 | Subject)", sleep.assign(Days=sleep.Days.astype("int8"))
    )
    assert design.X[:, 1].max() == 900.0
    assert design.X[:, 1].min() == 0.0


# -- names that collide with parameters ---------------------------------------------------------


@pytest.mark.parametrize("column", ["Intercept", "sigma"])
def test_a_column_named_like_a_parameter_is_refused(sleep, column):
    data = sleep.assign(**{column: np.random.default_rng(1).normal(size=len(sleep))})
    with pytest.raises(bm.DataError, match=f"'{column}'.*rename"):
        bm.Model(f"Reaction ~ Days + {column} + (1 | Subject)", data)


def test_interaction_groups_whose_labels_hold_colons_stay_apart():
    data = pd.DataFrame(
        {
            "a": ["p0:y"] * 3 + ["p0"] * 3 + ["q"] * 6,
            "b": ["z"] * 3 + ["y:z"] * 3 + ["z"] * 6,
            "y": np.arange(12.0),
        }
    )
    levels = bm.make_design("y ~ 1 + (1 | a:b)", data).blocks[0].levels
    assert len(levels) == 3  # "p0:y" + "z" and "p0" + "y:z" were one group
    assert len(set(levels)) == 3
    fit = bm.Model("y ~ 1 + (1 | a:b)", data).fit_reml()
    pred = fit.predict(data.iloc[[0, 3]])
    assert pred.iloc[0] != pytest.approx(pred.iloc[1])  # their group effects differ (means 1 and 4)


# -- random structures that cannot be identified ------------------------------------------------


def test_a_random_slope_on_an_all_zero_column_is_refused(sleep):
    with pytest.raises(bm.DataError, match="'z' is 0 in every row"):
        bm.Model("Reaction ~ Days + (1 + z | Subject)", sleep.assign(z=0.0))


@pytest.mark.parametrize("copies", [2, 10])
def test_a_repeated_random_term_is_refused_before_any_optimisation(sleep, copies):
    formula = "Reaction ~ Days + " + " + ".join(["(1 | Subject)"] * copies)
    start = time.perf_counter()
    with pytest.raises(bm.DataError, match="more than once"):
        bm.Model(formula, sleep).fit_reml()
    assert time.perf_counter() - start < 60  # ten copies ran for minutes; refused at the design


def test_collinear_random_terms_are_refused(sleep):
    with pytest.raises(bm.DataError, match="Subject"):
        bm.Model("Reaction ~ Days + (1 + Days + D2 | Subject)", sleep.assign(D2=2 * sleep.Days + 1))


# -- misused arguments --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "keyword, meant",
    [
        ("draw", "draws"),
        ("chain", "chains"),
        ("iter", "draws and tune"),
        ("random_seed", "seed"),
        ("family", "Model(formula, data, family=...)"),
        ("tnue", "tune"),
    ],
)
def test_an_unknown_fit_keyword_is_refused_with_a_suggestion(sleep, keyword, meant):
    with pytest.raises(bm.UnknownArgumentError, match=f"unknown argument '{keyword}'") as info:
        bm.Model(FORMULA, sleep).fit(**{keyword: 2})
    assert meant in str(info.value)
    assert isinstance(info.value, TypeError)
    assert isinstance(info.value, bm.BayesMLMError)


def test_seed_and_random_seed_together_are_refused_not_recorded_wrongly(sleep):
    with pytest.raises(bm.UnknownArgumentError, match="did you mean seed"):
        bm.Model(FORMULA, sleep).fit(seed=1, random_seed=2)


@pytest.mark.parametrize(
    "kw, message",
    [
        ({"draws": 0}, "draws must be at least 1"),
        ({"tune": -1}, "tune must be at least 0"),
        ({"chains": 0}, "chains must be at least 1"),
        ({"draws": 2.5}, "draws must be a whole number"),
        ({"target_accept": 1.5}, "target_accept"),
        ({"method": "bogus"}, "method"),
    ],
)
def test_out_of_range_fit_arguments_are_an_argument_error(sleep, kw, message):
    with pytest.raises(bm.ArgumentError, match=message) as info:
        bm.Model(FORMULA, sleep).fit(**kw)
    assert isinstance(info.value, ValueError)


def test_sampler_options_pass_only_through_sampler_kwargs(sleep):
    with pytest.raises(bm.UnknownArgumentError, match="init"):
        bm.Model(FORMULA, sleep).fit(init="adapt_diag")
    with pytest.raises(bm.ArgumentError, match="sampler_kwargs"):
        bm.Model(FORMULA, sleep).fit(sampler_kwargs={"draws": 10})  # already an argument of fit


def test_priors_given_as_a_string_and_unknown_parameterisation_are_refused(sleep):
    with pytest.raises(bm.PriorError, match=r"mapping|dict"):
        bm.Model(FORMULA, sleep, priors="sigma")
    with pytest.raises(bm.BayesMLMError, match="parameterization"):
        bm.Model(FORMULA, sleep, parameterization="bogus")


def test_predict_with_an_unknown_kind_or_keyword_is_refused(fit, sleep):
    with pytest.raises(bm.ArgumentError, match="kind"):
        fit.predict(sleep.iloc[:3], kind="bogus")
    with pytest.raises(bm.UnknownArgumentError, match="include_random"):
        fit.predict(sleep.iloc[:3], include_randoms=False)


def test_compare_of_reml_fits_is_a_fit_error_pointing_at_lrt(sleep, fit):
    a = bm.Model("Reaction ~ Days + (1 | Subject)", sleep).fit_reml()
    b = bm.Model(FORMULA, sleep).fit_reml()
    with pytest.raises(bm.FitError, match=r"bm\.lrt"):
        bm.compare([a, b])
    with pytest.raises(bm.ArgumentError, match="at least two"):
        bm.compare([fit])


def test_population_prediction_needs_no_group_column_and_no_response(fit, sleep):
    new = sleep.iloc[:4].drop(columns=["Subject", "Reaction"])
    out = fit.predict(new, include_random=False, seed=1)
    assert len(out) == 4
    logged = bm.Model("np.log(Reaction) ~ Days + (1 | Subject)", sleep).fit_reml()
    assert np.all(np.isfinite(logged.predict(sleep.iloc[:4].drop(columns=["Reaction"]))))


# -- data kept by a model -----------------------------------------------------------------------


def test_model_data_is_a_copy(sleep):
    model = bm.Model("Reaction ~ Days + (1 | Subject)", sleep)
    model.data["Days"] = 0
    assert model.data["Days"].max() == 9
    assert model.design.data["Days"].max() == 9


# -- saves --------------------------------------------------------------------------------------


def _cases(sleep):
    out = {}
    e = sleep.copy()
    e["Subject"] = pd.array(e["Subject"].astype(int), dtype="Int64")
    out["nullable Int64 group"] = (e, "Reaction ~ Days + (1 | Subject)")
    e = sleep.copy()
    e.index = pd.Index(np.arange(180) * 3, name="Days")
    out["index named like a column"] = (e, "Reaction ~ Days + (1 | Subject)")
    e = sleep.copy()
    e.index = pd.MultiIndex.from_arrays(
        [np.repeat(np.arange(18), 10), np.tile(np.arange(10), 18)], names=["s", "t"]
    )
    out["MultiIndex"] = (e, "Reaction ~ Days + (1 | Subject)")
    out["column with /"] = (
        sleep.rename(columns={"Days": "days/sleep"}),
        "Reaction ~ `days/sleep` + (1 | Subject)",
    )
    e = sleep.copy()
    e["Subject"] = pd.Categorical(e["Subject"].astype(int))
    out["integer categories"] = (e, "Reaction ~ Days + (1 | Subject)")
    return out


@pytest.mark.parametrize(
    "case",
    [
        "nullable Int64 group",
        "index named like a column",
        "MultiIndex",
        "column with /",
        "integer categories",
    ],
)
def test_a_saved_fit_round_trips_its_rows_and_accepts_the_same_newdata(sleep, tmp_path, case):
    data, formula = _cases(sleep)[case]
    fit = small_fit(bm.Model(formula, data))
    path = fit.save(tmp_path / "fit.nc")
    back = bm.load_fit(path)
    pd.testing.assert_frame_equal(back.model.data, fit.model.data)
    new = data.iloc[:3]
    np.testing.assert_allclose(back.predict(new, seed=1)["mean"], fit.predict(new, seed=1)["mean"])


def test_an_interrupted_save_leaves_the_old_file_intact(fit, tmp_path, monkeypatch):
    import xarray as xr

    path = fit.save(tmp_path / "fit.nc")
    before = path.read_bytes()

    def broken(self, target, *args, **kwargs):
        with open(target, "wb") as handle:
            handle.write(b"\x89HDF\r\n" + b"\0" * 90)  # the 96 bytes a killed save left
        raise KeyboardInterrupt

    monkeypatch.setattr(xr.DataTree, "to_netcdf", broken)
    with pytest.raises(KeyboardInterrupt):
        fit.save(path)
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fit.nc"]  # no temporary file left
    monkeypatch.undo()
    assert bm.load_fit(path).summary().shape == fit.summary().shape


def test_a_save_killed_by_sigkill_leaves_the_old_file_loadable(fit, tmp_path):
    """A real SIGKILL in the middle of writing (the writer is stopped after its first bytes)."""
    path = fit.save(tmp_path / "fit.nc")
    code = textwrap.dedent(
        f"""
        import os, signal
        import pandas as pd
        import xarray as xr
        from bayesmlm.bayes.saved import save_fit
        tree = xr.open_datatree({str(path)!r}, engine="h5netcdf").load()
        def killed(self, target, *a, **k):
            with open(target, "wb") as h:
                h.write(b"partial")
            os.kill(os.getpid(), signal.SIGKILL)
        xr.DataTree.to_netcdf = killed
        save_fit(tree, {{}}, pd.DataFrame({{"a": [1.0]}}), {{}}, {str(path)!r})
        """
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=300)
    assert done.returncode == -signal.SIGKILL, done.stderr[-2000:]
    back = bm.load_fit(path)
    np.testing.assert_array_equal(back.posterior["sigma"].values, fit.posterior["sigma"].values)


@pytest.mark.parametrize("damage", ["truncated", "garbage", "empty"])
def test_a_damaged_file_is_a_fit_error_at_load(fit, tmp_path, damage):
    path = fit.save(tmp_path / "fit.nc")
    raw = path.read_bytes()
    path.write_bytes({"truncated": raw[: len(raw) // 2], "garbage": os.urandom(4096), "empty": b""}[damage])
    with pytest.raises(bm.FitError, match=r"is not a (valid )?saved bayesmlm fit"):
        bm.load_fit(path)


# -- worker processes ---------------------------------------------------------------------------


def _children(pid: int) -> list[int]:
    kids = []
    for task in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{task}/children") as handle:
                kids += [int(k) for k in handle.read().split()]
        except OSError:
            pass
    return kids


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().split(") ")[-1][0] not in "ZX"
    except OSError:
        return False


SAMPLE_FOREVER = textwrap.dedent(
    """
    import warnings, bayesmlm as bm
    warnings.simplefilter("ignore")
    m = bm.Model("Reaction ~ Days + (1 | Subject)", bm.load_dataset("sleepstudy"))
    m.fit(draws=10**7, tune=100, chains=2, cores=2, seed=1, progressbar=False, method="full")
    """
)


def _start_sampling() -> tuple[subprocess.Popen, list[int]]:
    proc = subprocess.Popen(
        [sys.executable, "-c", SAMPLE_FOREVER], stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    deadline = time.time() + 400
    while time.time() < deadline and len(_children(proc.pid)) < 2 and proc.poll() is None:
        time.sleep(0.3)
    kids = _children(proc.pid)
    if len(kids) < 2:
        proc.kill()
        pytest.fail(f"the sampling process started {len(kids)} workers: {proc.communicate()[1][-2000:]!r}")
    return proc, kids


BOUND_WORKERS = textwrap.dedent(
    """
    import time
    from bayesmlm.bayes.workers import bound_context
    context = bound_context()
    workers = [context.Process(target=time.sleep, args=(600,)) for _ in range(2)]
    for w in workers:
        w.start()
    print(" ".join(str(w.pid) for w in workers), flush=True)
    time.sleep(600)
    """
)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_chain_workers_do_not_outlive_a_killed_parent():
    """The processes PyMC's chains run in (from :func:`bound_context`) die with the sampling process."""
    proc = subprocess.Popen([sys.executable, "-c", BOUND_WORKERS], stdout=subprocess.PIPE, text=True)
    kids = [int(k) for k in proc.stdout.readline().split()]
    try:
        assert len(kids) == 2 and all(_alive(k) for k in kids)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        deadline = time.time() + 20
        while time.time() < deadline and any(_alive(k) for k in kids):
            time.sleep(0.1)
        assert not [k for k in kids if _alive(k)]
    finally:
        for k in kids:
            try:
                os.kill(k, signal.SIGKILL)
            except ProcessLookupError:
                pass


def test_parallel_chains_run_in_the_bound_context(sleep, monkeypatch):
    import pymc as pm

    from bayesmlm.bayes.workers import _BoundForkContext

    seen = {}

    def fake_sample(*args, **kwargs):
        seen.update(kwargs)
        raise RuntimeError("stop here")

    monkeypatch.setattr(pm, "sample", fake_sample)
    with pytest.raises(RuntimeError, match="stop here"):
        bm.Model("Reaction ~ Days + (1 | Subject)", sleep).fit(
            chains=2, cores=2, progressbar=False, method="full"
        )
    assert isinstance(seen["mp_ctx"], _BoundForkContext)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_a_worker_killed_midway_is_a_fit_error():
    proc, kids = _start_sampling()
    os.kill(kids[0], signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    last = err.decode().strip().splitlines()[-1]
    assert last.startswith("bayesmlm.exceptions.FitError: a sampling worker process died"), last
    assert "ConnectionResetError" not in last.split(":", 1)[0]
    time.sleep(1)
    assert not [k for k in kids if _alive(k)]


# -- a fit that talks ---------------------------------------------------------------------------


def test_print_of_a_fit_is_a_header_and_a_rounded_summary(fit):
    text = repr(fit)
    lines = text.splitlines()
    assert lines[0] == f"bayesmlm.Fit: {FORMULA}"
    assert "180 observations; 2 chains x 150 draws" in lines[1]
    assert "sd__Days" in text or "sd(Days)" in text or "Days" in text
    assert "..." not in text  # not truncated at 80 or 120 columns
    assert not any(len(cell) > 9 for line in lines[2:] for cell in line.split() if cell[0].isdigit())
    assert fit._repr_html_().startswith("<p><b>bayesmlm.Fit</b>")
    assert "<table" in fit._repr_html_()


def test_summary_values_are_unrounded_but_display_is_rounded(fit):
    table = fit.summary()
    assert table["mean"].map(lambda v: len(repr(float(v))) > 8).any()  # full precision kept
    with pd.option_context("display.width", 80, "display.max_columns", 20):
        shown = str(table)
    assert "..." not in shown
    assert all(len(c) <= 9 for line in shown.splitlines()[1:] for c in line.split() if c[0].isdigit())


def test_diagnostics_use_the_summary_names(fit):
    names = list(fit.diagnostics().index)
    assert not any(name.startswith("chol") or "__" in name.split("[")[0] for name in names), names
    assert set(fit.summary().index) <= set(names)
    internal = list(fit.diagnostics(internal=True).index)
    assert any("Subject" in n for n in internal)
    assert "rhat" in fit.diagnostics().columns


def test_loo_says_its_warnings_in_bayesmlm_words_and_compare_matches_loo(fit, sleep):
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        result = fit.loo()
    raw = [w for w in seen if w.category is UserWarning]
    assert not raw, [str(w.message) for w in raw]
    assert all(issubclass(w.category, bm.BayesMLMWarning) for w in seen)
    other = small_fit(bm.Model("Reaction ~ Days + (1 | Subject)", sleep), log_likelihood=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        table = bm.compare({"slopes": fit, "intercepts": other})
    assert table.loc["slopes", "elpd"] == pytest.approx(float(result.elpd), rel=1e-12)


def test_sampling_with_a_progress_bar_says_it_is_compiling_first(sleep, capfd):
    small_fit_kw = dict(draws=20, tune=20, chains=1, cores=1, seed=1, progressbar=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        bm.Model("Reaction ~ Days + (1 | Subject)", sleep).fit(sampler="pymc", **small_fit_kw)
    err = capfd.readouterr().err
    assert "compiling the sampler for this model structure" in err
    assert "once per structure" in err
    # the direct sampler compiles nothing, and does not say it does
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = bm.Model("Reaction ~ Days + (1 | Subject)", sleep).fit(**small_fit_kw)
    assert fit.info["sampler"] == "nutpie"
    assert "compiling" not in capfd.readouterr().err


def test_the_demo_says_what_it_does_before_loading_the_heavy_libraries(tmp_path):
    """The first line must come before PyMC is imported (that import and the compile are the wait)."""
    code = textwrap.dedent(
        """
        import sys, builtins
        real = builtins.__import__
        def spy(name, *a, **k):
            heavy = ("pymc", "pytensor", "nutpie", "arviz", "matplotlib")
            if name.split(".")[0] in heavy and "pymc_seen" not in sys.modules:
                sys.modules["pymc_seen"] = sys
                print("HEAVY-IMPORT", flush=True)
                raise SystemExit(0)
            return real(name, *a, **k)
        builtins.__import__ = spy
        from bayesmlm.cli import main
        main(["demo", "--out", sys.argv[1]])
        """
    )
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path / "out")], capture_output=True, text=True, timeout=300
    )
    elapsed = time.perf_counter() - start
    lines = done.stdout.splitlines()
    assert lines, done.stderr[-2000:]
    assert lines[0].startswith("bayesmlm: fitting Reaction ~ Days + (Days | Subject)")
    assert "with nothing to compile" in lines[0] and "compiles the sampler" in lines[0]
    assert "HEAVY-IMPORT" in lines, "the demo never reached the sampler's libraries"
    assert lines.index("HEAVY-IMPORT") > 0
    print(f"demo first line and stop at the heavy import: {elapsed:.2f} s")


def _public_callables():
    import inspect

    from bayesmlm import _API

    for name in _API:
        obj = getattr(bm, name)
        if inspect.isclass(obj):
            if issubclass(obj, BaseException):
                continue
            for attr, value in vars(obj).items():
                if (
                    attr.startswith("_")
                    or not callable(value)
                    or isinstance(value, staticmethod | classmethod)
                ):
                    continue
                if not any(p.kind == p.VAR_KEYWORD for p in inspect.signature(value).parameters.values()):
                    yield f"{name}.{attr}", value, (None,)
        elif callable(obj):
            if not any(p.kind == p.VAR_KEYWORD for p in inspect.signature(obj).parameters.values()):
                yield name, obj, ()


PUBLIC = list(_public_callables())


def test_the_public_api_is_probed_in_full():
    names = {label for label, *_ in PUBLIC}
    assert len(PUBLIC) >= 100, len(PUBLIC)
    assert {"Model.fit", "Fit.predict", "LikelihoodFit.coef_table", "plot_ppc", "load_fit"} <= names


@pytest.mark.parametrize("label, func, args", PUBLIC, ids=[label for label, *_ in PUBLIC])
def test_every_public_callable_refuses_an_unknown_keyword_by_name(label, func, args):
    """A mistyped keyword is an UnknownArgumentError naming it, before anything runs (no silent pass)."""
    with pytest.raises(bm.UnknownArgumentError, match="unknown argument 'definitely_not_an_argument'"):
        func(*args, definitely_not_an_argument=1)
