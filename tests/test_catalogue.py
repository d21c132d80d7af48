"""The catalogue of bad inputs: each case, what happens, and the table in docs/errors.md.

Every row of the table in ``docs/errors.md`` is generated from ``CASES`` below and checked by
``test_case``; ``test_docs_table_is_the_catalogue`` fails if the page and the cases drift apart.
Regenerate the table with ``python -m tests.test_catalogue``.
"""

from __future__ import annotations

import json
import math
import re
import tempfile
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import arviz as az
import h5py
import numpy as np
import pandas as pd
import pytest

import bayesmlm as bm
from bayesmlm.spec.expression import MAX_DEPTH, MAX_LENGTH

ROOT = Path(__file__).resolve().parents[1]
F = "Reaction ~ Days + (Days | Subject)"
F1 = "Reaction ~ Days + (1 | Subject)"


def sleep() -> pd.DataFrame:
    return bm.load_dataset("sleepstudy").copy()


def sleep_dask(data: pd.DataFrame | None = None):
    """sleepstudy (or ``data``) as a Dask DataFrame of 3 partitions (Dask's local scheduler)."""
    import dask.dataframe as dd

    return dd.from_pandas(sleep() if data is None else data, npartitions=3, sort=False)


@cache
def reml_fit() -> bm.LikelihoodFit:
    return bm.Model(F, sleep()).fit_reml()


@cache
def bayes_fit() -> bm.Fit:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", bm.SamplingWarning)
        return bm.Model(F1, sleep()).fit(draws=200, tune=200, chains=2, seed=3, progressbar=False)


@cache
def on_demand_fit() -> bm.Fit:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", bm.SamplingWarning)
        model = bm.Model(F1, sleep())
        return model.fit(draws=200, tune=200, chains=2, seed=3, progressbar=False, group_effects="on_demand")


@dataclass(frozen=True)
class Case:
    """One bad (or awkward) input and what bayesmlm does with it."""

    id: str
    input: str  # what the user does (docs column 1)
    outcome: str  # what happens (docs column 2, after the exception or warning class)
    run: Callable[[], object]
    raises: type[BaseException] | None = None
    warns: type[Warning] | None = None
    match: str = ""  # regular expression the message must contain
    check: Callable[[object], None] | None = None  # more assertions on the result

    def kind(self) -> str:
        if self.raises is not None:
            return f"`{self.raises.__name__}`"
        if self.warns is not None:
            return f"`{self.warns.__name__}`"
        return "fits"


# --- helpers for the checks ----------------------------------------------------------------------


def _same_optimum(fit, ref, shift: float, theta: bool = False) -> None:
    """The same optimum as ``ref``: logLik (plus ``shift``), sigma, converged and not singular."""
    assert fit.loglik + shift == pytest.approx(ref.loglik, abs=1e-6)
    assert fit.sigma == pytest.approx(ref.sigma, rel=1e-6)
    assert fit.converged and not fit.singular
    if theta:
        np.testing.assert_allclose(fit.theta, ref.theta, rtol=1e-5)


def same_reml(reference: Callable[[], bm.LikelihoodFit]):
    """Check that a REML fit equals a reference fit (log-likelihood, theta, fixed effects)."""

    def check(fit):
        ref = reference()
        assert fit.loglik == pytest.approx(ref.loglik, rel=1e-9)
        np.testing.assert_allclose(fit.theta, ref.theta, rtol=1e-5, atol=1e-7)
        np.testing.assert_allclose(
            fit.fixed_effects["estimate"].to_numpy(), ref.fixed_effects["estimate"].to_numpy(), rtol=1e-7
        )

    return check


@cache
def group_reference() -> bm.LikelihoodFit:
    """sleepstudy with Subject as strings: the baseline for the group-column types."""
    data = sleep().assign(g=lambda d: d["Subject"].astype(str))
    return bm.Model("Reaction ~ Days + (1 | g)", data).fit_reml()


def with_group(values) -> Callable[[], bm.LikelihoodFit]:
    return lambda: bm.Model("Reaction ~ Days + (1 | g)", sleep().assign(g=values(sleep()))).fit_reml()


def dropped(n):
    def check(fit):
        assert fit.info["n_dropped"] == n
        assert fit.nobs == 180 - n

    return check


def scale_check(factor):
    def check(fit):
        ref = reml_fit()
        np.testing.assert_allclose(fit.theta, ref.theta, rtol=1e-5)
        assert fit.sigma == pytest.approx(ref.sigma * factor, rel=1e-6)
        # the REML criterion has n - p = 178 residual degrees of freedom in the response's units
        assert fit.loglik == pytest.approx(ref.loglik - 178 * np.log(factor), rel=1e-9)

    return check


def interrupted_fit():
    model = bm.Model(F1, sleep())

    def stop(trace, draw):
        if draw.draw_idx >= 60:
            raise KeyboardInterrupt

    try:
        model.fit(
            draws=100,
            tune=50,
            chains=1,
            cores=1,
            seed=1,
            progressbar=False,
            sampler_kwargs={"callback": stop},
        )
    finally:
        # the model is still usable: it fits as a fresh one does with the same seed
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", bm.SamplingWarning)
            again = model.fit(draws=50, tune=50, chains=1, cores=1, seed=2, progressbar=False)
            fresh = bm.Model(F1, sleep()).fit(draws=50, tune=50, chains=1, cores=1, seed=2, progressbar=False)
        np.testing.assert_array_equal(again.posterior["fixed"].values, fresh.posterior["fixed"].values)


def divergent_fit():
    rng = np.random.default_rng(0)
    g = np.repeat(np.arange(8), 3)
    data = pd.DataFrame({"y": rng.normal(0, 0.3, 8)[g] + rng.normal(0, 3, g.size), "g": g})
    model = bm.Model("y ~ 1 + (1 | g)", data, parameterization="centered")
    return model.fit(method="full", draws=300, tune=300, chains=2, seed=1, progressbar=False)


def write_arviz_file(path: Path) -> Path:
    az.from_dict({"posterior": {"a": np.zeros((1, 5))}}).to_netcdf(path)
    return path


def saved_with_function(path: Path) -> Path:
    data = sleep()
    data["Days1"] = data["Days"] + 1
    model = bm.Model(
        "Reaction ~ half(Days1) + (1 | Subject)", data, extra_namespace={"half": lambda x: x / 2}
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", bm.SamplingWarning)
        fit = model.fit(draws=50, tune=50, chains=1, seed=1, progressbar=False)
    fit.save(path)
    return path


@cache
def _saved_fit_bytes() -> bytes:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", bm.SamplingWarning)
        fit = bm.Model(F1, sleep()).fit(draws=30, tune=30, chains=1, seed=1, progressbar=False)
    path = fit.save(Path(tempfile.mkdtemp()) / "fit.nc")
    return path.read_bytes()


def truncated_save(path: Path) -> Path:
    path.write_bytes(_saved_fit_bytes()[:5000])
    return path


def saved_with_settings(path: Path, settings: str) -> Path:
    """A saved fit whose model settings attribute is replaced by ``settings``."""
    path.write_bytes(_saved_fit_bytes())
    with h5py.File(path, "r+") as f:
        f.attrs["bayesmlm_model"] = settings
    return path


def saved_with_formula(path: Path, formula: str) -> Path:
    """A saved fit whose stored formula is replaced by ``formula``."""
    path.write_bytes(_saved_fit_bytes())
    with h5py.File(path, "r+") as f:
        raw = f.attrs["bayesmlm_model"]
        settings = json.loads(raw.decode() if isinstance(raw, bytes) else raw)
        f.attrs["bayesmlm_model"] = json.dumps({**settings, "formula": formula})
    return path


def crossed_frame() -> pd.DataFrame:
    """Two crossed factors of 250 levels each: more than the collapsed path's 200 dense effects."""
    rng = np.random.default_rng(1)
    return pd.DataFrame(
        {"y": rng.normal(size=1000), "a": rng.integers(0, 250, 1000), "b": rng.integers(0, 250, 1000)}
    )


TMP = Path(__file__).resolve().parent / ".catalogue_tmp"  # replaced by tmp_path in the test


def scaled_bayes_check(fit):
    """A response times 1e6 samples as well as the original: same summary (scaled), ESS, no divergences."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", bm.SamplingWarning)
        ref = bm.Model(F, sleep()).fit(draws=500, tune=500, chains=2, seed=4, progressbar=False)
    assert fit.info["response_scale"] == pytest.approx(ref.info["response_scale"] * 1e6)
    a, b = fit.summary(), ref.summary()
    for name in ["Intercept", "Days", "sd(Intercept|Subject)", "sigma"]:
        mcse = np.hypot(a.loc[name, "mcse_mean"] / 1e6, b.loc[name, "mcse_mean"])
        assert abs(a.loc[name, "mean"] / 1e6 - b.loc[name, "mean"]) < 5 * mcse + 1e-9, name
    assert a["ess_bulk"].min() > 0.5 * b["ess_bulk"].min()
    assert int(fit.idata["sample_stats"]["diverging"].sum()) == 0
    assert fit.idata["observed_data"]["y"].values.max() == pytest.approx(sleep()["Reaction"].max() * 1e6)


# --- generalized models ------------------------------------------------------------------------------
CBPP = "cbind(incidence, size - incidence) ~ period + (1 | herd)"


def cbpp() -> pd.DataFrame:
    return bm.load_dataset("cbpp").copy()


def ticks() -> pd.DataFrame:
    return bm.load_dataset("grouseticks").copy()


def binary_frame() -> pd.DataFrame:
    """cbpp with a 0/1 outcome per row (any case in the period)."""
    d = cbpp()
    return d.assign(any=d["incidence"] > 0)


def verbagg_labels() -> pd.DataFrame:
    """The first 6 VerbAgg items: r2 also as labels 'N'/'Y' (a two-level response)."""
    d = bm.load_dataset("VerbAgg").iloc[:1896].copy()
    return d.assign(answer=pd.Categorical(np.where(d["r2"] == 1, "Y", "N")))


def separated_frame() -> pd.DataFrame:
    """A 0/1 response that a covariate predicts perfectly."""
    rng = np.random.default_rng(2)
    g = np.repeat(np.arange(10), 8)
    x = rng.normal(size=g.size)
    return pd.DataFrame({"y": (x > 0).astype(int), "x": x, "g": g})


def bernoulli_check(fit):
    ref = bm.Model("r2 ~ btype + (1 | id)", verbagg_labels(), family="binomial").fit_ml()
    assert fit.loglik == pytest.approx(ref.loglik, abs=1e-9)
    assert fit.design.response_levels == ("N", "Y")


# --- the catalogue ---------------------------------------------------------------------------------

CASES: list[Case] = [
    # formulas
    Case(
        "formula-syntax",
        "A formula with an unclosed parenthesis, `Reaction ~ Days + (Days | Subject`",
        "names the problem and shows the formula with a caret under the position",
        lambda: bm.Model("Reaction ~ Days + (Days | Subject", sleep()),
        bm.FormulaError,
        match="never closed",
    ),
    Case(
        "formula-no-tilde",
        "No `~`: `Reaction Days + (1 | Subject)`",
        "missing '~'",
        lambda: bm.Model("Reaction Days + (1 | Subject)", sleep()),
        bm.FormulaError,
        match="missing '~'",
    ),
    Case(
        "formula-empty",
        'An empty formula `""`',
        "says the formula is empty and shows an example",
        lambda: bm.Model("", sleep()),
        bm.FormulaError,
        match="formula is empty",
    ),
    Case(
        "formula-not-string",
        "A formula that is not a string (`42`)",
        "says what type it got",
        lambda: bm.Model(42, sleep()),
        bm.FormulaError,
        match="must be a string, not int",
    ),
    Case(
        "formula-bar-outside",
        "`Reaction ~ Days | Subject` (random term without parentheses)",
        "asks for `(expr | group)`",
        lambda: bm.Model("Reaction ~ Days | Subject", sleep()),
        bm.FormulaError,
        match="outside parentheses",
    ),
    Case(
        "formula-no-random",
        "No random term: `Reaction ~ Days`",
        "asks for a term such as `(1 | group)`",
        lambda: bm.Model("Reaction ~ Days", sleep()),
        bm.FormulaError,
        match="no random-effects terms",
    ),
    Case(
        "unknown-column",
        "A misspelt column, `Reaction ~ Dayz + (1 | Subject)`",
        "lists the columns and suggests the close match `'Days'`",
        lambda: bm.Model("Reaction ~ Dayz + (1 | Subject)", sleep()),
        bm.FormulaError,
        match="did you mean 'Days'",
    ),
    Case(
        "unknown-function",
        "A function formulas may not call, `foo(Days)`",
        "lists what may be called and how to add a function (`extra_namespace=`)",
        lambda: bm.Model("Reaction ~ foo(Days) + (1 | Subject)", sleep()),
        bm.FormulaError,
        match=r"'foo' is not a function formulas may call; .*extra_namespace=",
    ),
    Case(
        "code-in-formula",
        "Code in a formula, `__import__('os').system('...')`",
        "nothing is executed; only the documented transforms may be called",
        lambda: bm.Model("Reaction ~ __import__('os').system('echo hi') + (1 | Subject)", sleep()),
        bm.FormulaError,
    ),
    Case(
        "code-via-attribute",
        "Code reached through an allowed function's attributes, `I.__globals__...`",
        "refused before anything is evaluated: no attribute access beyond `np.<function>`, no dunder "
        "names; the caret points at the offending name",
        lambda: bm.Model("Reaction ~ I.__globals__.get('eval') + (1 | Subject)", sleep()),
        bm.FormulaError,
        match=r"'I.__globals__.get' is not allowed in a formula",
    ),
    Case(
        "string-arithmetic",
        "Arithmetic on a string, `I('a' * 1000000000)`",
        "refused: a string may only be a function argument or be compared with",
        lambda: bm.Model("Reaction ~ I('a' * 1000000000) + (1 | Subject)", sleep()),
        bm.FormulaError,
        match="can only be a function argument",
    ),
    Case(
        "formula-too-deep",
        "A formula nested 60 brackets deep",
        f"refused before parsing (at most {MAX_DEPTH} levels, {MAX_LENGTH:,} characters)",
        lambda: bm.Model("Reaction ~ " + "(" * 60 + "Days" + ")" * 60 + " + (1 | Subject)", sleep()),
        bm.FormulaError,
        match="nests brackets 60 deep",
    ),
    Case(
        "transform-non-finite",
        "A transform that gives infinities, `np.log(Days)` with `Days = 0`",
        "says which part became non-finite",
        lambda: bm.Model("Reaction ~ np.log(Days) + (1 | Subject)", sleep()),
        bm.DataError,
        match="non-finite values after transformation",
    ),
    # the response
    Case(
        "response-arithmetic",
        "Arithmetic without `I()`: `Reaction * 1e6 ~ Days + (1 | Subject)`",
        "says to write `I(Reaction * 1e6)`",
        lambda: bm.Model("Reaction * 1e6 ~ Days + (1 | Subject)", sleep()),
        bm.FormulaError,
        match=r"write I\(...\), e.g. I\(Reaction \* 1e6\)",
    ),
    Case(
        "response-string",
        "A text response",
        "asks for numbers",
        lambda: bm.Model(
            "y ~ Days + (1 | Subject)", sleep().assign(y=lambda d: "s" + d["Subject"].astype(str))
        ),
        bm.DataError,
        match="must be numeric",
    ),
    Case(
        "response-constant",
        "A constant response (every value 250)",
        "there is no variation to model",
        lambda: bm.Model(F1, sleep().assign(Reaction=250.0)),
        bm.DataError,
        match="constant",
    ),
    Case(
        "response-boolean",
        "A boolean response",
        "fits it as 0/1 (a linear probability model) and warns that `family='binomial'` may be meant",
        lambda: bm.Model(
            "y ~ Days + (1 | Subject)", sleep().assign(y=lambda d: d["Reaction"] > 300)
        ).fit_reml(),
        warns=bm.FamilyWarning,
        match="family='binomial' may be meant",
        check=lambda fit: np.testing.assert_array_equal(np.unique(fit.design.y), [0.0, 1.0]),
    ),
    Case(
        "response-scale-1e6",
        "A response in units a million times larger (REML)",
        "the same fit: theta identical, sigma and coefficients scaled by 1e6",
        lambda: bm.Model(F, sleep().assign(Reaction=lambda d: d["Reaction"] * 1e6)).fit_reml(),
        check=scale_check(1e6),
    ),
    Case(
        "response-scale-1e-6",
        "A response in units a million times smaller (REML)",
        "the same fit: theta identical, sigma and coefficients scaled by 1e-6",
        lambda: bm.Model(F, sleep().assign(Reaction=lambda d: d["Reaction"] * 1e-6)).fit_reml(),
        check=scale_check(1e-6),
    ),
    Case(
        "covariate-origin",
        "A covariate with another origin or unit, `Days + 20` or days in thousandths (REML)",
        "the same model and the same optimum: the fit is made with centred, unit-spread columns and "
        "mapped back (the REML logLik shifts by log of the unit, as lme4's)",
        lambda: bm.Model(F, sleep().assign(Days=lambda d: (d["Days"] + 20) * 1000)).fit_reml(),
        check=lambda fit: _same_optimum(fit, reml_fit(), shift=math.log(1000)),
    ),
    Case(
        "response-offset",
        "A response with a huge offset, `Reaction + 1e8` (REML)",
        "the same fit: the response is centred before any cross-product is formed (no cancellation)",
        lambda: bm.Model(F, sleep().assign(Reaction=lambda d: d["Reaction"] + 1e8)).fit_reml(),
        check=lambda fit: _same_optimum(fit, reml_fit(), shift=0.0, theta=True),
    ),
    Case(
        "response-scale-bayes",
        "A response a million times larger (Bayesian)",
        "sampled in units of its sd (priors rescaled to match) and reported on the original scale: "
        "same posterior, same ESS, no divergences",
        lambda: bm.Model(F, sleep().assign(Reaction=lambda d: d["Reaction"] * 1e6)).fit(
            draws=500, tune=500, chains=2, seed=4, progressbar=False
        ),
        check=scaled_bayes_check,
    ),
    # missing values
    Case(
        "nan-predictor",
        "`NaN` in a predictor (18 rows)",
        "the rows are dropped; the warning and `fit.info['n_dropped']` give the count per column",
        lambda: bm.Model(F, sleep().assign(Days=lambda d: d["Days"].where(d["Days"] != 3))).fit_reml(),
        warns=bm.DroppedRowsWarning,
        match=r"dropped 18 of 180 rows .*\(Days: 18\)",
        check=dropped(18),
    ),
    Case(
        "inf-predictor",
        "`inf` in a predictor",
        "dropped and counted like `NaN`",
        lambda: bm.Model(
            F, sleep().assign(Days=lambda d: d["Days"].where(d["Days"] != 3, np.inf))
        ).fit_reml(),
        warns=bm.DroppedRowsWarning,
        match="dropped 18 of 180",
        check=dropped(18),
    ),
    Case(
        "nan-response",
        "`NaN` in the response (2 rows)",
        "dropped and counted",
        lambda: bm.Model(
            F, sleep().assign(Reaction=lambda d: d["Reaction"].where(d.index % 90 != 0))
        ).fit_reml(),
        warns=bm.DroppedRowsWarning,
        match=r"dropped 2 of 180 .*Reaction: 2",
        check=dropped(2),
    ),
    Case(
        "nan-group",
        "A missing group label",
        "dropped and counted",
        lambda: bm.Model(
            F, sleep().assign(Subject=lambda d: d["Subject"].astype(str).where(d.index != 5))
        ).fit_reml(),
        warns=bm.DroppedRowsWarning,
        match=r"dropped 1 of 180 .*Subject: 1",
        check=dropped(1),
    ),
    Case(
        "nullable-na",
        "`pd.NA` in a nullable `Int64` column",
        "dropped and counted",
        lambda: bm.Model(
            F, sleep().assign(Days=lambda d: d["Days"].astype("Int64").where(d.index != 7))
        ).fit_reml(),
        warns=bm.DroppedRowsWarning,
        match="dropped 1 of 180",
        check=dropped(1),
    ),
    Case(
        "na-action-error",
        'Missing values with `na_action="error"`',
        "counts them instead of dropping",
        lambda: bm.Model(
            F, sleep().assign(Days=lambda d: d["Days"].where(d["Days"] != 3)), na_action="error"
        ),
        bm.DataError,
        match=r"18 of 180 rows have missing or infinite values \(Days: 18\)",
    ),
    Case(
        "all-rows-missing",
        "Every row has a missing value",
        "no rows left to fit (after the count)",
        lambda: bm.Model(F, sleep().assign(Days=np.nan)),
        bm.DataError,
        match="no rows left",
    ),
    # the data frame
    Case(
        "empty-frame",
        "An empty data frame",
        "no rows left to fit",
        lambda: bm.Model(F, sleep().iloc[:0]),
        bm.DataError,
        match="no rows left",
    ),
    Case(
        "not-a-frame",
        "A dict instead of a data frame",
        "asks for a pandas DataFrame",
        lambda: bm.Model(F, sleep().to_dict()),
        bm.DataError,
        match="must be a pandas DataFrame, not dict",
    ),
    Case(
        "duplicated-columns",
        "Two columns named `Days`",
        "names the duplicate and shows how to drop it",
        lambda: bm.Model(F, pd.concat([sleep(), sleep()[["Days"]]], axis=1)),
        bm.DataError,
        match=r"more than one column named 'Days' \(2 columns\)",
    ),
    Case(
        "duplicated-index",
        "Repeated index labels",
        "fits; fitted values keep the caller's index",
        lambda: bm.Model(F, sleep().set_axis([0] * 180)).fit_reml(),
        check=lambda fit: (same_reml(reml_fit)(fit), fit.fitted().index.tolist() == [0] * 180),
    ),
    Case(
        "datetime-column",
        "A date column as a predictor",
        "asks to convert it to numbers, with code",
        lambda: bm.Model(
            "Reaction ~ D + (1 | Subject)",
            sleep().assign(D=lambda d: pd.Timestamp("2020-01-01") + pd.to_timedelta(d["Days"], unit="D")),
        ),
        bm.DataError,
        match="dates or times",
    ),
    Case(
        "complex-column",
        "A complex-valued column",
        "refuses (no silent loss of the imaginary part)",
        lambda: bm.Model("Reaction ~ D + (1 | Subject)", sleep().assign(D=lambda d: d["Days"] + 1j)),
        bm.DataError,
        match="complex numbers",
    ),
    Case(
        "mixed-object-column",
        "A column mixing numbers and strings",
        "asks for all numbers or all strings",
        lambda: bm.Model("Reaction ~ D + (1 | Subject)", sleep().assign(D=[1, "a"] * 90)),
        bm.DataError,
        match="mixes number and string values",
    ),
    Case(
        "object-numbers",
        "An object column of Python numbers",
        "treated as numeric: the same fit",
        lambda: bm.Model(F, sleep().assign(Days=lambda d: d["Days"].astype(object))).fit_reml(),
        check=same_reml(reml_fit),
    ),
    # group columns of every type
    Case(
        "group-int",
        "Group column of integers",
        "the same fit as string labels",
        with_group(lambda d: d["Subject"].astype(int)),
        check=same_reml(group_reference),
    ),
    Case(
        "group-float",
        "Group column of whole floats (`308.0`)",
        "the same fit; levels labelled `308`",
        with_group(lambda d: d["Subject"].astype(float)),
        check=lambda fit: (same_reml(group_reference)(fit), fit.design.blocks[0].levels[0] == "308"),
    ),
    Case(
        "group-float32",
        "Group column of `float32`",
        "the same fit (before, every row fell in one level)",
        with_group(lambda d: d["Subject"].astype("float32")),
        check=same_reml(group_reference),
    ),
    Case(
        "group-category",
        "Group column of category type with unused categories",
        "the same fit; unused categories are not levels",
        with_group(
            lambda d: pd.Categorical(
                d["Subject"].astype(str), categories=[*sorted(set(d["Subject"].astype(str))), "zzz"]
            )
        ),
        check=lambda fit: (same_reml(group_reference)(fit), len(fit.design.blocks[0].levels) == 18),
    ),
    Case(
        "group-object",
        "Group column of strings (object)",
        "the reference fit",
        with_group(lambda d: d["Subject"].astype(str).astype(object)),
        check=same_reml(group_reference),
    ),
    Case(
        "group-nullable",
        "Group column of nullable `Int64` or `string` type",
        "the same fit",
        with_group(lambda d: d["Subject"].astype("Int64")),
        check=lambda fit: (
            same_reml(group_reference)(fit),
            same_reml(group_reference)(with_group(lambda d: d["Subject"].astype(str).astype("string"))()),
        ),
    ),
    Case(
        "group-bool",
        "Group column of booleans",
        "two levels, so a few-groups warning",
        with_group(lambda d: d["Days"] >= 5),
        warns=bm.FewGroupsWarning,
        match="only 2 levels",
    ),
    # grouping structure
    Case(
        "group-one-level",
        "A grouping factor with a single level",
        "a variance needs more than one group",
        lambda: bm.Model("Reaction ~ Days + (1 | g)", sleep().assign(g="a")),
        bm.DataError,
        match="single level",
    ),
    Case(
        "group-one-row-per-level",
        "A grouping factor with one row per level",
        "not identifiable from the residual variance (lme4 stops too)",
        lambda: bm.Model("Reaction ~ Days + (1 | g)", sleep().assign(g=np.arange(180))),
        bm.DataError,
        match="one row per level",
    ),
    Case(
        "too-many-effects",
        "More random effects than observations, `(Days | g)` with 2 rows per level",
        "not identifiable",
        lambda: bm.Model("Reaction ~ Days + (Days | g)", sleep().assign(g=np.arange(180) // 2)),
        bm.DataError,
        match="180 random effects for 180 observations",
    ),
    Case(
        "few-groups",
        "A grouping factor with 3 levels",
        "warns that variance estimates from fewer than 5 groups are unstable (the fit goes on)",
        lambda: bm.Model("Reaction ~ Days + (1 | g)", sleep().assign(g=np.arange(180) % 3)),
        warns=bm.FewGroupsWarning,
        match="only 3 levels",
    ),
    # fixed effects
    Case(
        "collinear",
        "A predictor that is twice another",
        "the aliased column is dropped and named, as lme4 does",
        lambda: bm.Model(
            "Reaction ~ Days + D2 + (1 | Subject)", sleep().assign(D2=lambda d: 2 * d["Days"])
        ).fit_reml(),
        warns=bm.RankDeficientWarning,
        match="dropping 1 column: D2",
        check=lambda fit: fit.info["aliased"] == ["D2"],
    ),
    Case(
        "zero-column",
        "A predictor that is all zeros",
        "dropped and named",
        lambda: bm.Model("Reaction ~ Days + z + (1 | Subject)", sleep().assign(z=0.0)),
        warns=bm.RankDeficientWarning,
        match="dropping 1 column: z",
    ),
    Case(
        "too-few-rows",
        "Fewer observations than fixed effects",
        "a model needs more observations",
        lambda: bm.Model(F1, sleep().iloc[:2]),
        bm.DataError,
        match="only 2 observation",
    ),
    # fits
    Case(
        "singular-fit",
        "A random intercept on a factor with no between-group variance",
        "boundary (singular) fit, as lme4 reports",
        lambda: bm.Model("Reaction ~ Days + (1 | g)", sleep().assign(g=np.arange(180) % 10)).fit_reml(),
        warns=bm.SingularFitWarning,
        match="boundary",
        check=lambda fit: fit.singular,
    ),
    Case(
        "divergences",
        "Sampling that diverges (centred funnel, 8 small groups)",
        "counts the divergent transitions and says what to do (`target_accept`, reparameterise)",
        divergent_fit,
        warns=bm.SamplingWarning,
        match=r"\d+ of 600 post-warm-up transitions diverged",
    ),
    Case(
        "unconverged",
        "Too short a run (30 draws, 10 tuning)",
        "R-hat and ESS warnings with the draws to ask for",
        lambda: bm.Model(F1, sleep()).fit(draws=30, tune=10, chains=2, seed=1, progressbar=False),
        warns=bm.SamplingWarning,
        match="Effective sample size is below 400",
    ),
    Case(
        "collapsed-advice",
        "Low ESS on a collapsed fit",
        "the advice names `method='full'` (a collapsed fit has no parameterisation to switch)",
        lambda: bm.Model(F1, sleep()).fit(draws=30, tune=10, chains=2, seed=1, progressbar=False),
        warns=bm.SamplingWarning,
        match="method='full' with parameterization",
    ),
    Case(
        "collapsed-impossible",
        '`method="collapsed"` for a model it cannot handle',
        "says why",
        lambda: bm.Model("y ~ 1 + (1 | a) + (1 | b)", crossed_frame()).fit(method="collapsed"),
        bm.FitError,
        match="collapsed path is not available",
    ),
    Case(
        "interrupted",
        "Ctrl-C (KeyboardInterrupt) during sampling",
        "no fit from a cut-short run: the interrupt is re-raised with the draws done, and the model fits "
        "again as a fresh one",
        interrupted_fit,
        KeyboardInterrupt,
        match=r"interrupted: \d of 1 chains came back, with \d+ of 100 draws",
    ),
    Case(
        "unknown-prior",
        "A prior for a parameter the model does not have",
        "lists the valid names",
        lambda: bm.Model(F1, sleep(), priors={"sd(Dayz|Subject)": bm.HalfNormal(1.0)}).priors,
        bm.PriorError,
    ),
    # prediction
    Case(
        "predict-unseen-level",
        'Predicting a subject not seen in fitting, `new_levels="error"`',
        "names the unseen levels",
        lambda: reml_fit().predict(pd.DataFrame({"Days": [1], "Subject": ["999"]}), new_levels="error"),
        bm.DataError,
        match=r"not seen in fitting: \['999'\]",
    ),
    Case(
        "predict-unseen-population",
        'The same with the default `new_levels="population"`',
        "predicted at the population level (REML) or from population draws (Bayesian)",
        lambda: reml_fit().predict(pd.DataFrame({"Days": [2.0], "Subject": ["999"]})),
        check=lambda pred: (
            pred.iloc[0] == pytest.approx(reml_fit().fixed_effects["estimate"].to_numpy() @ [1.0, 2.0])
        ),
    ),
    Case(
        "predict-missing-column",
        "`newdata` without a column the model uses",
        "names the column",
        lambda: reml_fit().predict(pd.DataFrame({"Subject": ["308"]})),
        bm.DataError,
        match=r"lacks column\(s\) \['Days'\]",
    ),
    Case(
        "predict-nan",
        "`newdata` with a missing value",
        "that row is predicted as NaN, counted in the warning",
        lambda: bayes_fit().predict(pd.DataFrame({"Days": [1.0, np.nan], "Subject": ["308", "308"]})),
        warns=bm.MissingValueWarning,
        match="1 of 2 rows of newdata",
        check=lambda t: t["mean"].isna().tolist() == [False, True],
    ),
    Case(
        "predict-unseen-fixed-level",
        "A fixed factor level not seen in fitting",
        "says it cannot be predicted",
        lambda: (
            bm.Model(
                "Reaction ~ C(D) + (1 | Subject)", sleep().assign(D=lambda d: (d["Days"] % 3).astype(str))
            )
            .fit_reml()
            .predict(pd.DataFrame({"D": ["7"], "Subject": ["308"]}))
        ),
        bm.DataError,
        match="only be predicted for levels seen in fitting",
    ),
    Case(
        "predict-not-frame",
        "`newdata` that is not a data frame",
        "asks for a DataFrame",
        lambda: bayes_fit().predict({"Days": [1]}),
        bm.DataError,
        match="newdata must be a pandas DataFrame",
    ),
    # a Dask DataFrame or files
    Case(
        "dask-no-files",
        "A path or glob that matches no file, `Model(F, 'data/*.parquet')`",
        "says nothing matches and what it can read (Parquet or CSV files, a directory of Parquet files)",
        lambda: bm.Model(F, "no-such-folder/*.parquet"),
        bm.DataError,
        match="no file or directory matches",
    ),
    Case(
        "dask-whole-data-transform",
        "A transform whose state needs all rows at once, `bs(Days, df=4)`, on a Dask DataFrame",
        "refused before any pass over the data, saying to compute the column first",
        lambda: bm.Model("Reaction ~ bs(Days, df=4) + (1 | Subject)", sleep_dask()),
        bm.FormulaError,
        match=r"'bs\(Days, df=4\)' needs all rows at once",
    ),
    Case(
        "dask-missing-values",
        "`NaN` in a predictor of a Dask DataFrame (18 rows, spread over partitions)",
        "dropped and counted per column exactly as for a pandas frame",
        lambda: bm.Model(
            F, sleep_dask(sleep().assign(Days=lambda d: d["Days"].where(d["Days"] != 3)))
        ).fit_reml(),
        warns=bm.DroppedRowsWarning,
        match=r"dropped 18 of 180 rows .*\(Days: 18\)",
        check=dropped(18),
    ),
    Case(
        "dask-rows-needed",
        "`fit.residuals()` (or fitted values, LOO, `save`, ...) of a model fitted from a Dask DataFrame",
        "says the rows stay where the data are, which features need them, that "
        "`predict(newdata)` works, and to fit a pandas sample for the rest",
        lambda: bm.Model(F, sleep_dask()).fit_reml().residuals(),
        bm.RowsNeededError,
        match="residuals.*needs the data's rows",
    ),
    # group effects drawn on demand
    Case(
        "group-effects-not-stored",
        "`fit.loo()` (or `predict()` with the group effects, `group_effect_draws()` of every level) of a "
        'fit with `group_effects="on_demand"`',
        "says every group effect's draws are needed and are not stored, to refit with "
        '`group_effects="store"` or ask for some levels with `group_effect_draws(levels=[...])`',
        lambda: on_demand_fit().loo(),
        bm.GroupEffectsNotStoredError,
        match=r"loo\(\) .*needs every draw of every Subject effect.*group_effects='store'.*levels=",
    ),
    Case(
        "group-effects-bad-value",
        '`fit(group_effects="keep")`',
        "lists the choices auto, store, on_demand",
        lambda: bm.Model(F1, sleep()).fit(group_effects="keep"),
        bm.ArgumentError,
        match="group_effects must be one of 'auto', 'store', 'on_demand', not 'keep'",
    ),
    Case(
        "group-effects-on-demand-full",
        '`fit(method="full", group_effects="on_demand")`',
        "on demand applies to a collapsed fit of one grouping factor; says why not here",
        lambda: bm.Model(F1, sleep()).fit(method="full", group_effects="on_demand"),
        bm.ArgumentError,
        match="group_effects='on_demand' applies to a collapsed fit.*sampled parameters",
    ),
    # saved fits
    Case(
        "load-missing",
        "`load_fit` of a file that does not exist",
        "no such file",
        lambda: bm.load_fit("no/such/fit.nc"),
        bm.FitError,
        match="no such file",
    ),
    Case(
        "load-not-netcdf",
        "`load_fit` of a text file",
        "not a saved bayesmlm fit",
        lambda: bm.load_fit(ROOT / "README.md"),
        bm.FitError,
        match="is not a saved bayesmlm fit",
    ),
    Case(
        "load-foreign-netcdf",
        "`load_fit` of a netCDF file ArviZ wrote, not bayesmlm",
        "not a saved bayesmlm fit (no metadata)",
        lambda: bm.load_fit(write_arviz_file(TMP / "arviz.nc")),
        bm.FitError,
        match="no bayesmlm metadata",
    ),
    Case(
        "load-code-formula",
        "`load_fit` of a file whose stored formula was edited to hold code",
        "the stored formula is checked like a typed one, before anything evaluates it; nothing runs",
        lambda: bm.load_fit(saved_with_formula(TMP / "code.nc", "Reaction ~ I.__class__(1) + (1 | Subject)")),
        bm.FitError,
        match="its formula is refused",
    ),
    Case(
        "load-malformed-settings",
        "`load_fit` of a file whose settings are not valid JSON, or lack keys, or have the wrong types",
        "says what is malformed",
        lambda: bm.load_fit(saved_with_settings(TMP / "json.nc", "{not json")),
        bm.FitError,
        match="is not valid JSON",
    ),
    Case(
        "load-needs-function",
        "`load_fit` of a fit whose formula called a user function, without it",
        "names the function and how to pass it (functions are never pickled)",
        lambda: bm.load_fit(saved_with_function(TMP / "half.nc")),
        bm.FitError,
        match=r"calls your function\(s\) \['half'\]",
    ),
    # names that collide with parameters, unidentifiable random structures (issue 19)
    Case(
        "column-named-intercept",
        "A data column named `Intercept` in the formula",
        "refused (it would replace the model's intercept); asks to rename it",
        lambda: bm.Model("Reaction ~ Days + Intercept + (1 | Subject)", sleep().assign(Intercept=1.5)),
        bm.DataError,
        match="name of the model's intercept",
    ),
    Case(
        "column-named-sigma",
        "A predictor column named `sigma`",
        "refused (it would be confused with the residual standard deviation); asks to rename it",
        lambda: bm.Model("Reaction ~ Days + sigma + (1 | Subject)", sleep().assign(sigma=np.arange(180.0))),
        bm.DataError,
        match="residual standard deviation",
    ),
    Case(
        "random-zero-column",
        "A random slope on a column that is 0 in every row, `(1 + z | Subject)`",
        "refused before any optimisation: its variance cannot be estimated",
        lambda: bm.Model("Reaction ~ Days + (1 + z | Subject)", sleep().assign(z=0.0)),
        bm.DataError,
        match="'z' is 0 in every row",
    ),
    Case(
        "random-duplicate-term",
        "The same random term twice, `(1 | Subject) + (1 | Subject)`",
        "refused: one variance would be split in two",
        lambda: bm.Model("Reaction ~ Days + (1 | Subject) + (1 | Subject)", sleep()),
        bm.DataError,
        match="more than once",
    ),
    # misused arguments (issue 19)
    Case(
        "fit-unknown-keyword",
        "A mistyped keyword, `fit(draw=200)`",
        "names the keyword and suggests `draws`; nothing is silently ignored",
        lambda: bm.Model(F1, sleep()).fit(draw=200),
        bm.UnknownArgumentError,
        match="unknown argument 'draw'; did you mean draws",
    ),
    Case(
        "fit-other-tools-keyword",
        "Stan's or PyMC's spelling, `fit(iter=2000)` or `fit(random_seed=1)`",
        "says what it is called here (`draws` and `tune`, `seed`)",
        lambda: bm.Model(F1, sleep()).fit(iter=2000),
        bm.UnknownArgumentError,
        match="did you mean draws and tune",
    ),
    Case(
        "fit-keyword-of-model",
        '`fit(family="poisson")`',
        "says the family belongs to `Model(formula, data, family=...)`",
        lambda: bm.Model(F1, sleep()).fit(family="poisson"),
        bm.UnknownArgumentError,
        match="belongs to the model",
    ),
    Case(
        "fit-zero-draws",
        "`fit(draws=0)`, `fit(chains=0)` or `fit(tune=-1)`",
        "says the smallest value allowed",
        lambda: bm.Model(F1, sleep()).fit(draws=0),
        bm.ArgumentError,
        match="draws must be at least 1",
    ),
    Case(
        "mixed-gaussian",
        'Per-level centring asked of a Gaussian model, `parameterization={"Subject": "mixed"}`',
        "says it is for generalized families and to use 'centered'",
        lambda: bm.Model(F1, sleep(), parameterization={"Subject": "mixed"}).parameterization,
        bm.ArgumentError,
        match="is for generalized families",
    ),
    Case(
        "integrated-not-a-nested-pair",
        '`parameterization={"BROOD": "integrated"}` on a block that no `(1 | inner)` factor nests in',
        "says which blocks may be integrated (the outer of a nested pair of intercepts)",
        lambda: (
            bm.Model(
                "TICKS ~ YEAR + cHEIGHT + (1 | BROOD) + (1 | LOCATION)",
                ticks(),
                family="poisson",
                parameterization={"BROOD": "integrated"},
            ).parameterization
        ),
        bm.ArgumentError,
        match=r"such blocks here: \['LOCATION'\]",
    ),
    Case(
        "fit-sampler-kwargs",
        'A PyMC option, `fit(init="adapt_diag")`',
        "refused as unknown; PyMC's own options go in `sampler_kwargs={...}`, which is checked",
        lambda: bm.Model(F1, sleep()).fit(init="adapt_diag"),
        bm.UnknownArgumentError,
        match="unknown argument 'init'",
    ),
    Case(
        "priors-not-mapping",
        '`priors="sigma"` (not a dict)',
        "says priors are a dict of name or class -> prior",
        lambda: bm.Model(F1, sleep(), priors="sigma"),
        bm.PriorError,
        match="dict",
    ),
    Case(
        "predict-unknown-kind",
        '`predict(kind="bogus")`',
        "lists the kinds (`mean`, `response`)",
        lambda: bayes_fit().predict(sleep().iloc[:3], kind="bogus"),
        bm.ArgumentError,
        match="kind",
    ),
    Case(
        "compare-reml",
        "`bm.compare` of REML fits",
        "says compare is for Bayesian fits and points at `bm.lrt`",
        lambda: bm.compare([reml_fit(), bm.Model(F1, sleep()).fit_reml()]),
        bm.FitError,
        match="bm.lrt",
    ),
    Case(
        "load-truncated",
        "`load_fit` of a file cut short (a copy interrupted midway)",
        "says the file is not a saved fit and why it could not be read",
        lambda: bm.load_fit(truncated_save(TMP / "cut.nc")),
        bm.FitError,
        match="is not a saved bayesmlm fit",
    ),
    Case(
        "kr-on-ml-fit",
        '`coef_table(ddf="kenward-roger")` (or `anova`, `contrast`) on an ML fit',
        "Kenward-Roger is for REML fits only (as in pbkrtest); says to refit by REML or use Satterthwaite",
        lambda: bm.Model(F, sleep()).fit_ml().coef_table("kenward-roger"),
        bm.FitError,
        match="REML fits only",
    ),
    Case(
        "unknown-ddf",
        '`coef_table(ddf="welch")`: a df method that does not exist',
        "lists the methods (satterthwaite, kenward-roger, asymptotic)",
        lambda: reml_fit().coef_table("welch"),
        ValueError,
        match="satterthwaite, kenward-roger, asymptotic",
    ),
    Case(
        "contrast-wrong-length",
        "`contrast(L)` with more or fewer weights than fixed effects",
        "says how many weights, for which effects",
        lambda: reml_fit().contrast([1.0, 0.0, 1.0]),
        ValueError,
        match=r"one weight per fixed effect \(2: \['Intercept', 'Days'\]\)",
    ),
    Case(
        "contrast-unknown-term",
        '`contrast({"Dayz": 1})`: a misspelt term',
        "names it and lists the fixed effects",
        lambda: reml_fit().contrast({"Dayz": 1.0}),
        ValueError,
        match="not fixed effects",
    ),
    Case(
        "confint-unknown-method",
        '`confint(method="bayes")`',
        "lists the methods (profile, wald, boot)",
        lambda: reml_fit().confint("bayes"),
        ValueError,
        match="profile, wald, boot",
    ),
    Case(
        "bootstrap-negative-n",
        "`bootstrap(fit, n=-5)` or a fractional number of replicates",
        "asks for a whole number of replicates",
        lambda: bm.bootstrap(reml_fit(), n=-5),
        ValueError,
        match="whole number",
    ),
    Case(
        "report-mixed-models",
        "`report([fit_a, fit_b])` of fits of different formulas",
        "asks for one report per model",
        lambda: bm.report([reml_fit(), bm.Model(F1, sleep()).fit_reml()]),
        ValueError,
        match="different models",
    ),
    Case(
        "profile-bayes-fit",
        "`plot_profile` of a Bayesian fit",
        "says a Bayesian fit has a posterior, not a likelihood profile",
        lambda: bm.plot_profile(bayes_fit()),
        TypeError,
        match="not a likelihood profile",
    ),
    # generalized models
    Case(
        "glmm-unknown-family",
        "`Model(..., family='gamma')`",
        "lists the families there are",
        lambda: bm.Model(CBPP, cbpp(), family="gamma"),
        ValueError,
        match="the families are gaussian, binomial, bernoulli, poisson, negativebinomial",
    ),
    Case(
        "glmm-wrong-link",
        "`family='poisson', link='logit'`",
        "lists the family's links",
        lambda: bm.Model("TICKS ~ YEAR + (1 | BROOD)", ticks(), family="poisson", link="logit"),
        ValueError,
        match="poisson family has the link",
    ),
    Case(
        "glmm-reml",
        "`fit_reml()` of a binomial or count model",
        "there is no REML for these families: use `fit_ml()` (Laplace, or `n_agq=`)",
        lambda: bm.Model(CBPP, cbpp(), family="binomial").fit_reml(),
        bm.FitError,
        match="REML exists only for the Gaussian family",
    ),
    Case(
        "glmm-agq-crossed",
        "`fit_ml(n_agq=10)` of a model with more than one random effect",
        "quadrature needs a single scalar random effect; use the Laplace approximation",
        lambda: bm.Model("TICKS ~ YEAR + (1 | BROOD) + (1 | LOCATION)", ticks(), family="poisson").fit_ml(
            n_agq=10
        ),
        bm.FitError,
        match="needs a single scalar random effect",
    ),
    Case(
        "glmm-agq-too-many",
        "`fit_ml(n_agq=30)` (or 0, or 2.5)",
        "asks for a whole number from 1 to 25",
        lambda: bm.Model(CBPP, cbpp(), family="binomial").fit_ml(n_agq=30),
        ValueError,
        match="from 1 \\(Laplace\\) to 25",
    ),
    Case(
        "counts-non-integer",
        "A Poisson or negative binomial response with non-integer values (2.5 ticks)",
        "counts must be whole numbers; for a continuous response use the Gaussian family",
        lambda: bm.Model(
            "y ~ YEAR + (1 | BROOD)", ticks().assign(y=lambda d: d["TICKS"] + 0.5), family="poisson"
        ),
        bm.DataError,
        match="non-integer counts",
    ),
    Case(
        "counts-negative",
        "A count response with a negative value",
        "counts must be >= 0",
        lambda: bm.Model(
            "y ~ YEAR + (1 | BROOD)", ticks().assign(y=lambda d: d["TICKS"] - 1), family="negativebinomial"
        ),
        bm.DataError,
        match="negative counts",
    ),
    Case(
        "counts-all-zero",
        "A count response that is 0 in every row",
        "the rate has no finite estimate; check the response",
        lambda: bm.Model("y ~ YEAR + (1 | BROOD)", ticks().assign(y=0), family="poisson"),
        bm.DataError,
        match="every count of 'y' is 0",
    ),
    Case(
        "counts-binary",
        "A 0/1 response given to `family='poisson'`",
        "fits the count model as asked, and says `family='binomial'` is probably meant",
        lambda: bm.Model(
            "y ~ YEAR + (1 | BROOD)",
            ticks().assign(y=lambda d: (d["TICKS"] > 0).astype(int)),
            family="poisson",
        ),
        warns=bm.FamilyWarning,
        match="family='binomial' \\(Bernoulli\\) is meant",
    ),
    Case(
        "counts-binomial-response",
        "A `cbind(s, f)` response given to a count family",
        "a two-column response is binomial",
        lambda: bm.Model(CBPP, cbpp(), family="poisson"),
        bm.DataError,
        match="is two-column binomial, which the poisson family cannot model",
    ),
    Case(
        "binomial-successes-above-trials",
        "`cbind(s, f)` with negative failures: more successes than trials (`p(s, n)`: formulae refuses it)",
        "names a row and what it holds",
        lambda: bm.Model(CBPP, cbpp().assign(size=lambda d: d["size"] // 4), family="binomial"),
        bm.DataError,
        match="more successes than trials",
    ),
    Case(
        "binomial-non-integer",
        "`cbind(s, f)` with non-integer successes",
        "successes must be whole numbers",
        lambda: bm.Model(CBPP, cbpp().assign(incidence=lambda d: d["incidence"] + 0.5), family="binomial"),
        bm.DataError,
        match="non-integer successes",
    ),
    Case(
        "binomial-proportion-without-trials",
        "A binomial response of proportions between 0 and 1 without their trials",
        "asks for `p(successes, trials)`, `cbind(successes, failures)` or `weights=` the trials",
        lambda: bm.Model(
            "r ~ period + (1 | herd)",
            cbpp().assign(r=lambda d: d["incidence"] / d["size"]),
            family="binomial",
        ),
        bm.DataError,
        match="without their numbers of trials",
    ),
    Case(
        "binomial-counts-without-trials",
        "A count (values above 1) given to `family='binomial'` without trials",
        "says a binomial response is 0/1, a proportion, or two columns",
        lambda: bm.Model("incidence ~ period + (1 | herd)", cbpp(), family="binomial"),
        bm.DataError,
        match="values outside \\[0, 1\\]",
    ),
    Case(
        "binomial-no-successes",
        "A binomial response that is a failure in every row",
        "the probability has no finite estimate; for a categorical response the second level is the success",
        lambda: bm.Model("y ~ period + (1 | herd)", cbpp().assign(y=0), family="binomial"),
        bm.DataError,
        match="every observation of 'y' is a failure",
    ),
    Case(
        "binomial-three-levels",
        "A categorical response of three levels with `family='binomial'`",
        "a categorical response must have two levels",
        lambda: bm.Model("resp ~ btype + (1 | id)", bm.load_dataset("VerbAgg").iloc[:600], family="binomial"),
        bm.DataError,
        match="must have two levels",
    ),
    Case(
        "binomial-separation",
        "A 0/1 response that a covariate separates perfectly",
        "the ML estimates are infinite: names the columns, suggests the Bayesian fit's priors or merging",
        lambda: bm.Model("y ~ x + (1 | g)", separated_frame(), family="binomial"),
        warns=bm.SeparationWarning,
        match="complete or quasi-complete separation: a combination of the fixed effects \\['x'",
    ),
    Case(
        "binomial-two-labels",
        "A two-level string or categorical response, `family='binomial'`",
        "Bernoulli, the second level a success (as glmer): the same fit as the 0/1 column",
        lambda: bm.Model("answer ~ btype + (1 | id)", verbagg_labels(), family="binomial").fit_ml(),
        check=bernoulli_check,
    ),
    Case(
        "gaussian-of-binary",
        "A 0/1 response fitted by the default Gaussian family",
        "fits as asked, warning once (when the model is made) that `family='binomial'` may be meant",
        lambda: bm.Model("y ~ period + (1 | herd)", binary_frame().assign(y=lambda d: d["any"].astype(int))),
        warns=bm.FamilyWarning,
        match="family='binomial' may be meant",
    ),
    Case(
        "gaussian-of-counts",
        "Small non-negative whole numbers (counts) fitted by the Gaussian family",
        "fits as asked, warning once that `family='poisson'` (or `'negativebinomial'`) may be meant",
        lambda: bm.Model("TICKS ~ YEAR + (1 | BROOD)", ticks()),
        warns=bm.FamilyWarning,
        match="family='poisson' may be meant",
    ),
    Case(
        "gaussian-two-column",
        "A `cbind(s, f)` response with the Gaussian family",
        "a Gaussian model needs one numeric column; use `family='binomial'`",
        lambda: bm.Model(CBPP, cbpp()),
        bm.DataError,
        match="two-column \\(binomial\\): a Gaussian model",
    ),
    Case(
        "gaussian-offset",
        "`offset(...)` in a Gaussian model",
        "refused: subtract it from the response instead",
        lambda: bm.Model("Reaction ~ Days + offset(np.log(Days + 1)) + (1 | Subject)", sleep()),
        bm.FormulaError,
        match="subtract it from the response",
    ),
    Case(
        "weights-negative",
        "Prior weights with a negative value (binomial, Poisson, negative binomial)",
        "weights must be >= 0",
        lambda: bm.Model(CBPP, cbpp(), family="binomial", weights=np.r_[-1.0, np.ones(55)]),
        bm.DataError,
        match="prior weights are negative",
    ),
    Case(
        "weights-length",
        "`weights=` of the wrong length, or naming no column",
        "says what it needs: a column name or one number per row",
        lambda: bm.Model(CBPP, cbpp(), family="binomial", weights=np.ones(10)),
        bm.DataError,
        match="one number per row of the data \\(56\\)",
    ),
    Case(
        "weights-gaussian-nonpositive",
        "Gaussian prior weights with a zero or negative value",
        "says how many; row i has residual variance sigma^2 / w_i, so weights must be > 0: drop the rows of "
        "weight 0",
        lambda: bm.Model(F1, sleep(), weights=np.r_[0.0, np.ones(179)]),
        bm.DataError,
        match="1 prior weights are zero or negative",
    ),
    Case(
        "lrt-different-weights",
        "`bm.lrt(a, b)` of fits with different prior weights",
        "refused: refit both with the same weights",
        lambda: bm.lrt(
            bm.Model("Reaction ~ 1 + (1 | Subject)", sleep()).fit_ml(),
            bm.Model(F1, sleep(), weights=np.r_[2.0, np.ones(179)]).fit_ml(),
        ),
        bm.BayesMLMError,
        match="different prior weights",
    ),
    # the statsmodels entry point (issue 20)
    Case(
        "sm-loglike-packed-length",
        "`MixedLM.loglike(params)` with a packed vector of the wrong length",
        "says how many covariance parameters and variance components a packed vector holds",
        lambda: bm.mixedlm("Reaction ~ Days", sleep(), groups="Subject").loglike(np.ones(3)),
        bm.ArgumentError,
        match="holds the 1 covariance parameters and 0 variance components",
    ),
    Case(
        "sm-t-test-columns",
        "`MixedLMResults.t_test(R)` with an `R` that has a column per parameter, not per fixed effect",
        "says it needs one column per fixed effect (as statsmodels)",
        lambda: bm.mixedlm("Reaction ~ Days", sleep(), groups="Subject").fit().t_test(np.eye(3)),
        bm.ArgumentError,
        match="should have 2 columns",
    ),
    Case(
        "sm-predict-exog-columns",
        "`MixedLM.predict(params, exog)` with an `exog` of the wrong number of columns",
        "says how many fixed effects and exog columns it needs",
        lambda: bm.mixedlm("Reaction ~ Days", sleep(), groups="Subject").predict(
            np.zeros(3), exog=np.ones((2, 3))
        ),
        bm.ArgumentError,
        match="predict needs 2 fixed effects and exog with 2 columns",
    ),
    Case(
        "sm-wald-test-text",
        "`MixedLMResults.wald_test(text)` (or `f_test`) with a name that is not a parameter",
        "says where the hypothesis cannot be read and lists the parameter names",
        lambda: bm.mixedlm("Reaction ~ Days", sleep(), groups="Subject").fit().wald_test("Dayz = 0"),
        bm.ArgumentError,
        match=r"cannot read the hypothesis 'Dayz = 0' at 'Dayz = 0': use the parameter names",
    ),
    Case(
        "sm-wald-test-nonlinear",
        '`MixedLMResults.wald_test("Days * Intercept = 0")`, a product of two parameters',
        "says the hypothesis is not linear",
        lambda: bm.mixedlm("Reaction ~ Days", sleep(), groups="Subject").fit().wald_test("Days * Intercept"),
        bm.ArgumentError,
        match="a product of two parameters is not linear",
    ),
    Case(
        "sm-profile-re-dist-low",
        '`MixedLMResults.profile_re(0, "re", dist_low=...)` reaching below a variance of 0',
        "says dist_low is too large (statsmodels' message)",
        lambda: (
            bm.mixedlm("Reaction ~ Days", sleep(), groups="Subject").fit().profile_re(0, "re", dist_low=1e6)
        ),
        bm.ArgumentError,
        match="dist_low is too large and would result in a negative variance",
    ),
    Case(
        "sm-hessian-packed-length",
        "`MixedLM.hessian(params)` with a packed vector without the fixed effects",
        "says a packed vector here holds the fixed effects and the covariance parameters",
        lambda: bm.mixedlm("Reaction ~ Days", sleep(), groups="Subject").hessian(np.ones(1)),
        bm.ArgumentError,
        match="holds the fixed effects, 1 covariance parameters",
    ),
    Case(
        "sm-exog-vc-missing-group",
        "`MixedLM(..., exog_vc={name: {group: matrix}})` without a matrix for some group",
        "names the component and the group that has no matrix",
        lambda: bm.MixedLM(
            sleep()["Reaction"],
            np.ones((180, 1)),
            sleep()["Subject"],
            exog_vc={"d": {"308": np.ones((10, 1))}},
        ),
        bm.DataError,
        match="exog_vc\\['d'\\] has no matrix for group '309'",
    ),
    Case(
        "sm-vc-formula-mixed-categorical",
        '`vc_formula={"m": "0 + C(c) + x"}`: a categorical term with others sharing one variance',
        "not supported (patsy's coding of it is not reproduced); says to pass the matrices as `exog_vc`",
        lambda: bm.mixedlm(
            "Reaction ~ Days", sleep(), groups="Subject", vc_formula={"m": "0 + C(Days) + Days"}
        ),
        NotImplementedError,
        match="pass exog_vc",
    ),
    Case(
        "sm-eval-env-frame-depth",
        "`mixedlm(..., eval_env=1)`: statsmodels' frame depth (formulas would read the caller's variables)",
        "refused: formulas see only the whitelist; says to pass them as `eval_env={'name': function}`",
        lambda: bm.mixedlm("Reaction ~ Days", sleep(), groups="Subject", eval_env=1),
        bm.ArgumentError,
        match="frame depth",
    ),
    Case(
        "sm-eval-env-module",
        '`mixedlm(..., eval_env={"os": os})`: a module (or any non-function) for formulas to call',
        "refused before the formula is read: only plain names of functions",
        lambda: bm.mixedlm("Reaction ~ Days", sleep(), groups="Subject", eval_env={"os": np}),
        bm.FormulaError,
        match="eval_env\\['os'\\] must be a function, not module",
    ),
    Case(
        "sm-fit-regularized-alpha-length",
        "`MixedLM.fit_regularized(alpha=[...])` with a weight count other than the fixed effects'",
        "says how many weights were given and how many fixed effects the model has",
        lambda: bm.mixedlm("Reaction ~ Days", sleep(), groups="Subject").fit_regularized(
            alpha=[1.0, 2.0, 3.0]
        ),
        bm.ArgumentError,
        match="alpha has 3 weights; the model has 2 fixed effects",
    ),
    Case(
        "sm-fit-penalty-protocol",
        "`MixedLM.fit(fe_pen=...)` or `fit(cov_pen=...)` with an object lacking `func` and `deriv` methods",
        "names the argument and statsmodels' penalties that work (`L2()`, `PseudoHuber(dlt)`, `PSD(weight)`)",
        lambda: bm.mixedlm("Reaction ~ Days", sleep(), groups="Subject").fit(cov_pen="psd"),
        bm.ArgumentError,
        match="cov_pen must be a penalty with func\\(\\) and deriv\\(\\) methods",
    ),
    Case(
        "sm-bayes-tied-component",
        '`mixedlm(..., vc_formula={"ab": "0 + a + b"}).fit(bayes=True)`: a Bayesian fit of a variance '
        "component whose columns share one variance",
        "not supported (the Bayesian model has no shared variances); says to fit by REML/ML or to give "
        "each column its own component",
        lambda: bm.mixedlm(
            "Reaction ~ Days",
            sleep().assign(d2=lambda d: d["Days"] ** 2),
            groups="Subject",
            re_formula="1",
            vc_formula={"ab": "0 + Days + d2"},
        ).fit(bayes=True),
        NotImplementedError,
        match="give each column its own component",
    ),
    Case(
        "sm-tied-small-sample",
        'Satterthwaite\'s df (`fit_result.coef_table()`) of a fit with `vc_formula={"ab": "0 + a + b"}`',
        "not supported for tied variances (derivatives over free theta); says to use asymptotic tests "
        "or the bootstrap",
        lambda: (
            bm.mixedlm(
                "Reaction ~ Days",
                sleep().assign(d2=lambda d: d["Days"] ** 2),
                groups="Subject",
                re_formula="1",
                vc_formula={"ab": "0 + Days + d2"},
            )
            .fit()
            .fit_result.coef_table()
        ),
        NotImplementedError,
        match="tied theta",
    ),
]


@pytest.fixture(autouse=True)
def _tmp_dir(tmp_path, monkeypatch):
    monkeypatch.setattr(f"{__name__}.TMP", tmp_path)


def run_case(case: Case) -> type[BaseException] | type[Warning] | None:
    """Run a case, check its message and result, and return what it raised or warned (None: it fit)."""
    if case.raises is not None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", bm.BayesMLMWarning)  # e.g. dropped rows before the error
            warnings.filterwarnings("ignore", "divide by zero", RuntimeWarning)  # numpy's, from log(0)
            with pytest.raises(BaseException) as info:
                case.run()
        assert re.search(case.match, str(info.value)), str(info.value)
        return type(info.value)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = case.run()
    ours = [w for w in caught if issubclass(w.category, bm.BayesMLMWarning)]
    matching = [w.category for w in ours if re.search(case.match, str(w.message))] if case.warns else []
    if case.check is not None:
        outcome = case.check(result)
        if isinstance(outcome, tuple):
            assert all(x is not False for x in outcome)
        else:
            assert outcome is not False
    if case.warns is None:
        assert not ours, [str(w.message) for w in ours]
        return None
    assert matching, [str(w.message) for w in ours]
    return matching[0]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_case(case):
    observed = run_case(case)
    expected = case.raises or case.warns
    if expected is None:
        assert observed is None
    else:
        assert observed is not None and issubclass(observed, expected), (observed, expected)


def test_code_in_formula_runs_nothing(tmp_path):
    target = tmp_path / "pwned"
    with pytest.raises(bm.FormulaError):
        bm.Model(f"Reaction ~ __import__('os').system('touch {target}') + (1 | Subject)", sleep())
    assert not target.exists()


def test_catalogue_has_at_least_40_distinct_cases():
    ids = [c.id for c in CASES]
    assert len(ids) == len(set(ids)) >= 40


def test_readme_states_the_number_of_cases():
    assert f"{len(CASES)} kinds of bad input" in " ".join((ROOT / "README.md").read_text().split())


def catalogue_table() -> str:
    """The Markdown table of docs/errors.md, generated from CASES."""
    lines = ["| # | Input | What happens | Test case |", "|---|---|---|---|"]
    for k, case in enumerate(CASES, 1):
        cells = [case.input, f"{case.kind()}: {case.outcome}"]
        cells = [c.replace("|", "\\|") for c in cells]  # a '|' in a formula would end the cell
        lines.append(f"| {k} | {cells[0]} | {cells[1]} | `{case.id}` |")
    return "\n".join(lines)


def test_docs_table_is_the_catalogue():
    page = (ROOT / "docs" / "errors.md").read_text()
    table = page.split("<!-- catalogue start -->")[1].split("<!-- catalogue end -->")[0].strip()
    assert table == catalogue_table(), "regenerate the table with: python -m tests.test_catalogue"


if __name__ == "__main__":
    print(catalogue_table())
