"""Tests for the lme4 formula front end."""

import dataclasses

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bayesmlm.exceptions import FormulaError
from bayesmlm.spec.formula import ModelSpec, RandomTerm, parse_formula


def terms(spec: ModelSpec) -> list[str]:
    return [str(term) for term in spec.random]


# --- valid formulas -------------------------------------------------------------------------


def test_sleepstudy_correlated():
    spec = parse_formula("Reaction ~ Days + (Days | Subject)")
    assert spec.formula == "Reaction ~ Days + (Days | Subject)"
    assert spec.response == "Reaction"
    assert spec.fixed == "Days"
    assert spec.random == (RandomTerm("Days", ("Subject",)),)
    assert spec.random[0].group == "Subject"
    assert spec.variables == frozenset({"Reaction", "Days", "Subject"})
    assert str(spec) == "Reaction ~ Days + (Days | Subject)"


def test_double_bar_splits_intercept_and_slope():
    spec = parse_formula("Reaction ~ 1 + Days + (Days || Subject)")
    assert spec.fixed == "1 + Days"
    assert spec.random == (RandomTerm("1", ("Subject",)), RandomTerm("0 + Days", ("Subject",)))
    assert str(spec) == "Reaction ~ 1 + Days + (1 | Subject) + (0 + Days | Subject)"


def test_double_bar_without_intercept():
    spec = parse_formula("y ~ (0 + a + b || g)")
    assert terms(spec) == ["(0 + a | g)", "(0 + b | g)"]
    spec = parse_formula("y ~ (a + b - 1 || g)")
    assert terms(spec) == ["(0 + a | g)", "(0 + b | g)"]


def test_double_bar_expands_interactions_like_lme4():
    spec = parse_formula("y ~ (a*b || g)")
    assert terms(spec) == ["(1 | g)", "(0 + a | g)", "(0 + b | g)", "(0 + a:b | g)"]


@pytest.mark.parametrize(
    ("formula", "expr"),
    [
        ("Reaction ~ Days + (0 + Days | Subject)", "0 + Days"),
        ("Reaction ~ Days + (Days - 1 | Subject)", "Days - 1"),
        ("Reaction ~ Days + (  Days-1|Subject )", "Days - 1"),
        ("Reaction ~ Days + (1+Days | Subject)", "1 + Days"),
    ],
)
def test_expr_kept_with_normalised_spacing(formula, expr):
    spec = parse_formula(formula)
    assert spec.random == (RandomTerm(expr, ("Subject",)),)


def test_nested_slash():
    spec = parse_formula("strength ~ (1 | batch/cask)")
    assert spec.fixed == "1"
    assert [t.factor for t in spec.random] == [("batch",), ("cask", "batch")]
    assert [t.group for t in spec.random] == ["batch", "cask:batch"]
    assert str(spec) == "strength ~ 1 + (1 | batch) + (1 | cask:batch)"
    assert spec.variables == frozenset({"strength", "batch", "cask"})


def test_three_level_nesting_and_expr():
    spec = parse_formula("y ~ x + (x | a/b/c)")
    assert [t.group for t in spec.random] == ["a", "b:a", "c:b:a"]
    assert all(t.expr == "x" for t in spec.random)


def test_interaction_factor():
    spec = parse_formula("y ~ (1 | a:b)")
    assert spec.random == (RandomTerm("1", ("a", "b")),)
    assert spec.random[0].group == "a:b"
    assert str(spec.random[0]) == "(1 | a:b)"


def test_crossed_penicillin():
    spec = parse_formula("diameter ~ 1 + (1 | plate) + (1 | sample)")
    assert spec.fixed == "1"
    assert [t.group for t in spec.random] == ["plate", "sample"]
    assert spec.variables == frozenset({"diameter", "plate", "sample"})


def test_insteval():
    spec = parse_formula("y ~ service + (1|s) + (1|d) + (1|dept)")
    assert spec.fixed == "service"
    assert terms(spec) == ["(1 | s)", "(1 | d)", "(1 | dept)"]
    assert str(spec) == "y ~ service + (1 | s) + (1 | d) + (1 | dept)"


@pytest.mark.parametrize(
    ("formula", "fixed"),
    [
        ("y ~ 0 + x + (1|g)", "0 + x"),
        ("y ~ x - 1 + (1|g)", "x - 1"),
        ("y ~ -1 + x + (1|g)", "-1 + x"),
        ("y ~ +0 + x + (1|g)", "0 + x"),
        ("y ~ (1|g)", "1"),
        ("y ~ (1|g) + 0", "0"),
        ("y ~ x*z + (x | g) + (1 | h)", "x*z"),
    ],
)
def test_fixed_part(formula, fixed):
    assert parse_formula(formula).fixed == fixed


def test_functions_are_not_variables():
    spec = parse_formula("np.log(y) ~ scale(x) + C(f) + (1|g)")
    assert spec.response == "np.log(y)"
    assert spec.fixed == "scale(x) + C(f)"
    assert spec.variables == frozenset({"y", "x", "f", "g"})


def test_interactions_in_fixed_part():
    spec = parse_formula("y ~ x*z + (x | g) + (1 | h)")
    assert spec.variables == frozenset({"y", "x", "z", "g", "h"})
    assert terms(spec) == ["(x | g)", "(1 | h)"]


def test_several_blocks_on_one_factor_and_redundant_parentheses():
    spec = parse_formula("y ~ x + ((1 | g)) + (0 + x | g)")
    assert terms(spec) == ["(1 | g)", "(0 + x | g)"]


def test_string_literals_are_opaque():
    spec = parse_formula("y ~ C(f, Treatment('a|b')) + (1 | g)")
    assert spec.fixed == "C(f, Treatment('a|b'))"
    assert terms(spec) == ["(1 | g)"]


def test_specs_are_frozen_and_hashable():
    spec = parse_formula("y ~ x + (1 | g)")
    with pytest.raises(dataclasses.FrozenInstanceError):
        spec.fixed = "1"  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        spec.random[0].expr = "x"  # type: ignore[misc]
    assert hash(spec) == hash(parse_formula("y~x+(1|g)"))


def test_equality_ignores_spelling():
    assert parse_formula("y~x+(1|g)") == parse_formula("y ~ x + (1 | g)")
    assert parse_formula("y~x+(1|g)").formula == "y~x+(1|g)"
    assert parse_formula("y ~ x + (1 | g)") != parse_formula("y ~ x + (1 | h)")


@pytest.mark.parametrize(
    "formula",
    [
        "Reaction ~ Days + (Days || Subject)",
        "strength ~ (1 | batch/cask)",
        "y ~ 0 + x + (x | a:b/c)",
        "y ~ (1|g) - 1",
        "np.log(y) ~ scale(x) + C(f) + (1|g)",
        "y ~ (a*b || g)",
    ],
)
def test_round_trip(formula):
    spec = parse_formula(formula)
    again = parse_formula(str(spec))
    assert again == spec
    assert str(again) == str(spec)


# --- errors ---------------------------------------------------------------------------------


def test_error_shows_formula_and_caret():
    with pytest.raises(FormulaError) as info:
        parse_formula("Reaction ~ Days + (Days | Subject")
    assert str(info.value) == (
        "unbalanced parenthesis: '(' at position 18 is never closed\n"
        "  Reaction ~ Days + (Days | Subject\n"
        "                    ^"
    )


@pytest.mark.parametrize(
    ("formula", "match"),
    [
        ("", "formula is empty"),
        ("   ", "formula is empty"),
        ("y", "missing '~'"),
        ("y + x", "missing '~'"),
        ("y ~ x ~ z", "more than one '~'"),
        (" ~ x", "empty response"),
        ("y ~ ", "empty right-hand side"),
        ("y ~ x + (1 | g", r"'\(' at position 8 is never closed"),
        ("y ~ x)", r"unbalanced parenthesis: '\)'"),
        ("y ~ f(x]", "'\\]' at position 7 does not close '\\('"),
        ("y ~ x | g", "'\\|' outside parentheses"),
        ("y ~ (x ||| g)", r"'\|\|\|' is not an operator"),
        ("y ~ (x | g | h)", r"more than one '\|'"),
        ("y ~ ( | g)", "empty random-term expression"),
        ("y ~ (x | )", "empty grouping factor"),
        ("y ~ (x || )", "empty grouping factor"),
        ("y ~ (1 | (x | g))", "nested random term"),
        ("y ~ x:(1|g)", "interaction"),
        ("y ~ x*(1|g)", "interaction"),
        ("y ~ log((1|g))", "interaction or function call"),
        ("y ~ x - (1|g)", "cannot be subtracted"),
        ("(1|g) ~ x", "in the response"),
        ("y ~ (1 | a*b)", "invalid grouping factor 'a\\*b'"),
        ("y ~ (1 | a+b)", "invalid grouping factor 'a\\+b'"),
        ("y ~ (1 | log(g))", "invalid grouping factor 'log\\(g\\)'"),
        ("y ~ (1 | a/)", "invalid grouping factor"),
        ("y ~ (1 | :a)", "invalid grouping factor"),
        ("y ~ (0 | g)", "has no effects"),
        ("y ~ (a - b || g)", "cannot be removed"),
        ("y ~ x + ", "expected a term after '\\+'"),
        ("y ~ a b", "missing operator between 'a' and 'b'"),
        ("y ~ x, z", "unexpected ','"),
        ("y ~ 'x", "unbalanced quote"),
        ("y ~ (a + b)**99999", "exponent"),
    ],
)
def test_errors(formula, match):
    with pytest.raises(FormulaError, match=match):
        parse_formula(formula)


@pytest.mark.parametrize(
    ("formula", "pos"),
    [("y ~ x:(1|g)", 6), ("y ~ x ~ z", 6), ("y ~ (1 | a*b)", 10), ("y ~ x + (1|g) +", 14)],
)
def test_error_caret_position(formula, pos):
    with pytest.raises(FormulaError) as info:
        parse_formula(formula)
    assert str(info.value).splitlines()[1:] == [f"  {formula}", " " * (2 + pos) + "^"]


@pytest.mark.parametrize(
    ("formula", "match"),
    [
        ("y ~ x[1] + (1 | g)", "invalid fixed part 'x\\[1\\]': ParseError"),
        ("np.log( ~ x", "unbalanced parenthesis"),
        ("y ~ x - 0", "invalid fixed part 'x - 0': TypeError"),
        ("y ~ (x[1] | g)", "invalid random-term expression"),
        ("y$ ~ x", "invalid response 'y\\$': ScanError"),
    ],
)
def test_formulae_errors_are_wrapped(formula, match):
    with pytest.raises(FormulaError, match=match) as info:
        parse_formula(formula)
    assert info.value.__cause__ is not None or "unbalanced" in str(info.value)


@pytest.mark.parametrize("value", [None, 3, b"y ~ x", ["y ~ x"]])
def test_non_string_input(value):
    with pytest.raises(FormulaError, match="formula must be a string"):
        parse_formula(value)


def test_formula_error_is_value_error():
    with pytest.raises(ValueError, match="missing '~'"):
        parse_formula("y")


# --- properties -----------------------------------------------------------------------------

FRAGMENTS = [
    "y", "x", "z", "g", "h", "a", "b", "Days", "np.log(y)", "scale(x)", "C(f)", "0", "1", "-1",
    " ~ ", "~", " + ", "+", " - ", "-", "*", ":", "/", "|", "||", " | ", "(", ")", "(1 | g)",
    "(x || g)", "(0 + x | a/b)", "(1 | a:b)", "**2", ",", " ", "'", "{", "}", "[", "]",
]  # fmt: skip


def assert_formula_error_or_valid_spec(formula: str) -> None:
    try:
        spec = parse_formula(formula)
    except FormulaError:
        return
    assert isinstance(spec, ModelSpec)
    assert all(isinstance(term, RandomTerm) for term in spec.random)
    assert parse_formula(str(spec)) == spec


@settings(max_examples=300, deadline=None, derandomize=True)
@given(st.text(alphabet="abxyg01~+-*/:|() .,_", max_size=40))
def test_random_strings_raise_only_formula_error(formula):
    assert_formula_error_or_valid_spec(formula)


@settings(max_examples=300, deadline=None, derandomize=True)
@given(st.lists(st.sampled_from(FRAGMENTS), max_size=12).map("".join))
def test_near_valid_formulas_raise_only_formula_error(formula):
    assert_formula_error_or_valid_spec(formula)


@settings(max_examples=300, deadline=None, derandomize=True)
@given(
    response=st.sampled_from(["y", "np.log(y)", "Reaction"]),
    fixed=st.lists(st.sampled_from(["x", "0", "1", "x:z", "x*z", "scale(x)"]), max_size=3),
    random=st.lists(
        st.tuples(
            st.sampled_from(["1", "x", "0 + x", "x - 1", "1 + x + z", "x*z"]),
            st.sampled_from(["|", "||"]),
            st.sampled_from(["g", "a:b", "a/b", "a/b/c", "a:b/c"]),
        ),
        min_size=1,
        max_size=3,
    ),
)
def test_valid_formulas_parse_and_round_trip(response, fixed, random):
    parts = [*fixed, *(f"({e} {bar} {g})" for e, bar, g in random)]
    spec = parse_formula(f"{response} ~ " + " + ".join(parts))
    assert spec.response == response
    assert len(spec.random) >= len(random)
    assert {"g", "a"} & spec.variables
    assert parse_formula(str(spec)) == spec
