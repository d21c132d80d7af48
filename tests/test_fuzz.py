"""Fuzzing with hypothesis: whatever the formula or the data frame, only documented exceptions escape.

Documented (docs/errors.md): subclasses of ``bm.BayesMLMError`` for bad input; warnings are subclasses
of ``bm.BayesMLMWarning``. Any other exception (a KeyError, IndexError, numpy's LinAlgError, a raw
ValueError from formulae or pandas) or warning is a bug. The example budgets are fixed and the search
is derandomised, so CI runs the same examples every time.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

import bayesmlm as bm

SETTINGS = settings(
    max_examples=150,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    database=None,
)
FIT_SETTINGS = settings(SETTINGS, max_examples=40)


def only_documented(fn):
    """Run fn; return its result or the documented exception; fail on anything else."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            result = fn()
        except bm.BayesMLMError as err:
            result = err
    event(f"{getattr(fn, '__name__', 'call')}: {type(result).__name__}")
    foreign = [
        f"{w.category.__name__}: {w.message}"
        for w in caught
        if not issubclass(w.category, bm.BayesMLMWarning | DeprecationWarning)
    ]
    assert not foreign, foreign
    return result


# --- formulas ------------------------------------------------------------------------------------

DATA = bm.load_dataset("sleepstudy").assign(
    Grp=lambda d: (d["Subject"].astype(int) % 6).astype(str), x=lambda d: np.sin(d["Days"])
)
VALID = ["Days", "x", "Grp", "1", "0", "np.log(Days + 1)", "C(Grp)", "scale(x)", "I(Days**2)", "Days:x"]
INVALID = [
    "Dayz",
    "y",
    "2.5",
    "foo(Days)",
    "os.system('x')",
    "__import__('os')",
    "Days[0]",
    "lambda: 1",
    "'text'",
    "Days.__class__",
    "np.linalg.inv(x)",
    "Subject",
    "",
]
# three in four names are valid, so most formulas get past the parser and exercise the data checks
NAME = st.one_of(
    st.sampled_from(VALID), st.sampled_from(VALID), st.sampled_from(VALID), st.sampled_from(INVALID)
)
OPERATORS = [" + ", " - ", " * ", ":", " / ", " | ", " || ", " ~ ", "(", ")", ", ", " ** 2", " % ", "  "]


@st.composite
def formula_like(draw):
    """Strings made of the formula language's own pieces, mostly (but not always) well formed."""
    lhs = draw(
        st.sampled_from(["Reaction", "Reaction", "Reaction", "np.log(Reaction)", "Days", "Grp", "y", ""])
    )
    fixed = draw(st.lists(NAME, min_size=1, max_size=3))
    random = draw(
        st.lists(
            st.tuples(
                st.lists(NAME, min_size=1, max_size=2),
                st.sampled_from([" | ", " | ", " || ", "|", " | | "]),
                st.sampled_from(
                    ["Subject", "Subject", "Grp", "Subject/Grp", "Grp:Subject", "Days", "nope", ""]
                ),
            ),
            min_size=draw(st.sampled_from([0, 1, 1, 1])),
            max_size=2,
        )
    )
    parts = [" + ".join(fixed)] + [f"({' + '.join(e)}{bar}{g})" for e, bar, g in random]
    text = f"{lhs} ~ " + " + ".join(p for p in parts if p)
    # now and then splice in a random operator somewhere
    if draw(st.integers(0, 3)) == 0:
        pos = draw(st.integers(0, len(text)))
        text = text[:pos] + draw(st.sampled_from(OPERATORS)) + text[pos:]
    return text


@SETTINGS
@given(formula_like())
def test_formula_strings_raise_only_documented_errors(formula):
    result = only_documented(lambda: bm.Model(formula, DATA))
    if isinstance(result, bm.Model):
        assert result.design.n == 180
        assert np.all(np.isfinite(result.design.X))


@settings(SETTINGS, max_examples=200)
@given(st.text(max_size=60))
def test_arbitrary_text_as_a_formula(text):
    result = only_documented(lambda: bm.Model(text, DATA))
    # a model, or an error whose message says something (FormulaError: where the formula went wrong)
    assert isinstance(result, bm.Model) or str(result).strip()


# Random parts of the shapes the rest of the suite fits anyway: each new shape of random-effects
# structure costs 10-30 s of compilation in a fresh cache, so the fuzzing varies the fixed part, the
# transforms and the data, not the shape.
RANDOM_PARTS = [
    "(1 | Subject)",
    "(1 | Grp)",
    "(Days | Subject)",
    "(x | Subject)",
    "(Days || Subject)",
    "(1 | Subject) + (1 | Grp)",
    "(1 | Grp/Subject)",
]


@st.composite
def well_formed_formula(draw):
    """Formulas from valid pieces only: they reach the data checks and the REML fit."""
    fixed = draw(st.lists(st.sampled_from(VALID), min_size=1, max_size=3))
    response = draw(st.sampled_from(["Reaction", "np.log(Reaction)", "I(Reaction * 1e6)", "x"]))
    return f"{response} ~ " + " + ".join(fixed) + " + " + draw(st.sampled_from(RANDOM_PARTS))


@FIT_SETTINGS
@given(well_formed_formula())
def test_formulas_that_build_also_fit_by_reml_or_raise_documented_errors(formula):
    model = only_documented(lambda: bm.Model(formula, DATA))
    if isinstance(model, bm.Model):
        fit = only_documented(model.fit_reml)
        if isinstance(fit, bm.LikelihoodFit):
            assert np.isfinite(fit.loglik)


# --- data frames ---------------------------------------------------------------------------------

GROUP_TYPES = ["int", "float", "float32", "bool", "category", "object", "string", "Int64"]
RESPONSE_TYPES = ["float", "int", "bool", "object-numbers", "object-strings", "constant", "huge", "tiny"]


@st.composite
def frames(draw):
    """A data frame with columns y, x, g (and h), of random types, sizes, level counts and NaNs."""
    n = draw(st.one_of(st.integers(0, 6), st.integers(10, 60), st.integers(10, 60)))  # mostly fittable
    seed = draw(st.integers(0, 2**16))
    rng = np.random.default_rng(seed)
    n_levels = draw(st.one_of(st.integers(1, max(n, 1)), st.integers(1, max(n // 3, 1))))
    codes = rng.integers(0, n_levels, n)
    y = rng.normal(size=n) + rng.normal(size=n_levels)[codes]
    x = rng.normal(size=n)
    kind = draw(st.sampled_from(RESPONSE_TYPES))
    y_col = {
        "float": y,
        "int": np.round(y * 3).astype(int),
        "bool": y > 0,
        "object-numbers": pd.Series(list(np.round(y, 2)), dtype=object),
        "object-strings": pd.Series([f"v{v:.1f}" for v in y], dtype=object),
        "constant": np.full(n, 2.0),
        "huge": y * 1e9,
        "tiny": y * 1e-9,
    }[kind]
    gtype = draw(st.sampled_from(GROUP_TYPES))
    g = pd.Series(codes)
    g_col = {
        "int": g,
        "float": g.astype(float),
        "float32": g.astype("float32"),
        "bool": g % 2 == 0,
        "category": pd.Categorical(g.astype(str)),
        "object": g.map(lambda c: f"L{c}").astype(object),
        "string": g.astype(str).astype("string"),
        "Int64": g.astype("Int64"),
    }[gtype]
    frame = pd.DataFrame({"y": y_col, "x": x, "g": g_col, "h": rng.integers(0, 3, n)})
    for col in draw(st.lists(st.sampled_from(["y", "x", "g"]), max_size=3, unique=True)):
        frac = draw(st.sampled_from([0.05, 0.2, 0.5, 1.0]))
        holes = rng.random(n) < frac
        if col == "x" and draw(st.booleans()):
            frame.loc[holes, col] = np.inf
        else:
            if frame[col].dtype == bool:  # a bool column cannot hold None; pandas users get object
                frame[col] = frame[col].astype(object)
            frame.loc[holes, col] = None
    if draw(st.booleans()):
        frame.index = rng.permutation(n) * 7  # not a RangeIndex
    return frame


def unusable_rows(frame: pd.DataFrame, used: list[str]) -> pd.Series:
    """Rows with a missing or infinite value in a used column, computed independently of bayesmlm."""
    numeric = frame[used].apply(lambda c: pd.to_numeric(c, errors="coerce")).astype(float)
    return frame[used].isna().any(axis=1) | np.isinf(numeric).any(axis=1)


FORMULAS = [
    "y ~ x + (1 | g)",
    "y ~ x + (x | g)",
    "y ~ 1 + (1 | g)",
    "y ~ x + (x || g)",
    "y ~ x + (1 | g) + (1 | h)",
    "y ~ x + (1 | g/h)",
    "y ~ 0 + x + (1 | g)",
]


@settings(SETTINGS, max_examples=100)
@given(frames(), st.sampled_from(FORMULAS))
def test_data_frames_raise_only_documented_errors(frame, formula):
    before = pd.util.hash_pandas_object(frame, index=True).sum(), list(frame.dtypes)
    model = only_documented(lambda: bm.Model(formula, frame))
    assert (pd.util.hash_pandas_object(frame, index=True).sum(), list(frame.dtypes)) == before
    if not isinstance(model, bm.Model):
        if "single level" in str(model):  # the error must be true of the rows that could be used
            used = [c for c in ("y", "x", "g", "h") if c in formula]
            assert frame.loc[~unusable_rows(frame, used), "g"].astype(str).nunique() == 1
        return
    # every row the model did not use was counted
    assert model.design.n + model.design.n_dropped == len(frame)
    # each group of the rows used is one level, whatever the column's type
    used_groups = frame.loc[model.design.rows, "g"]
    assert model.design.blocks[0].n_levels == used_groups.nunique()
    codes = pd.Series(model.design.blocks[0].codes, index=model.design.rows)
    assert (codes.groupby(used_groups.astype(str).to_numpy()).nunique() == 1).all()
    fit = only_documented(model.fit_reml)
    if isinstance(fit, bm.LikelihoodFit):
        assert np.isfinite(fit.loglik)
        assert np.all(np.isfinite(fit.theta))
        pred = only_documented(lambda: fit.predict(frame))
        if isinstance(pred, pd.Series):
            assert len(pred) == len(frame)
            assert pred.index.equals(frame.index)
            # exactly the rows with a missing or infinite predictor or group are NaN
            used = sorted(set(model.spec.variables) - {"y"})
            np.testing.assert_array_equal(pred.isna().to_numpy(), unusable_rows(frame, used).to_numpy())
