"""Stage 1, the specification: what a formula expression may contain, checked before any evaluation.

formulae evaluates a formula's calls itself (``np.log``: look up ``np``, take the attribute), so any
attribute chain was reachable from an allowed function (``I.__globals__...`` reached ``eval``). Every
expression is therefore checked against this grammar first, on the very tree formulae's parser builds
and later evaluates (the check and the evaluation cannot read the text differently):

- **names**: data columns, plain (``Days``, ``Sepal.Length``) or backticked (```my column```);
  a name with a dunder part (``__class__``) is refused everywhere;
- **calls** of the functions in :func:`allowed_functions` only, by their exact name: formulae's
  transforms and encodings (``C``, ``I``, ``scale``, ``center``, ``standardize``, ``poly``, ``bs``,
  ``Treatment``, ...), lme4's binomial response ``cbind(successes, failures)``, numpy's element-wise
  functions as ``np.<name>``, ``numpy.<name>`` or bare ``<name>``, and the names the user passes in
  ``extra_namespace``; no other attribute access;
- **constants**: numbers, ``True``, ``False``, ``None`` and strings; a string only as a function
  argument (``Treatment("b")``) or in a comparison (``I(group == "a")``), never in arithmetic;
- **operators**: ``+ - * / **`` and the comparisons ``== != < <= > >=``, on numbers bounded in size;
- keyword arguments with plain names (``poly(x, degree=2)``); the encodings by name (``C(x, Sum)``);
- polynomials and splines of at most :data:`MAX_BASIS` columns (``poly(x, 100000)``: minutes, GBs).

Nothing else exists in formulae's grammar (it has no subscripts of objects, lambdas, comprehensions,
f-strings or starred arguments); anything it might add later is refused because the check lists what
is allowed, not what is forbidden. A formula longer than :data:`MAX_LENGTH` characters or nested deeper
than :data:`MAX_DEPTH` brackets is refused before it is parsed.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable

import formulae
from formulae.terms.call import Call
from formulae.terms.call_resolver import LazyCall, LazyOperator, LazyValue, LazyVariable
from formulae.terms.terms import GroupSpecificTerm, Intercept, NegatedIntercept, Response, Term
from formulae.terms.variable import Variable

from bayesmlm.exceptions import FormulaError

__all__ = [
    "BINOMIAL_RESPONSE",
    "ENCODINGS",
    "MAX_BASIS",
    "MAX_DEPTH",
    "MAX_LENGTH",
    "NUMPY_FUNCTIONS",
    "TRANSFORMS",
    "ExpressionRefused",
    "allowed_functions",
    "check_description",
    "check_expression",
    "refuse_long_or_deep",
]

#: formulae's transforms a formula may call (its stateful transforms, splines and encodings)
TRANSFORMS = (
    "B",
    "C",
    "I",
    "S",
    "T",
    "binary",
    "bs",
    "cc",
    "center",
    "cr",
    "offset",
    "p",
    "poly",
    "prop",
    "proportion",
    "scale",
    "standardize",
    "tp",
)
#: lme4's two-column binomial response, ``cbind(successes, failures)`` (see :mod:`bayesmlm.spec.namespace`)
BINOMIAL_RESPONSE = "cbind"
#: formulae's encodings: callable (``Treatment("b")``) and usable by name (``C(x, Sum)``)
ENCODINGS = ("Sum", "Treatment")

#: numpy functions a formula may call (element-wise transforms of a column)
NUMPY_FUNCTIONS = (
    "abs",
    "absolute",
    "arccos",
    "arcsin",
    "arctan",
    "cbrt",
    "ceil",
    "clip",
    "cos",
    "cosh",
    "exp",
    "exp2",
    "expm1",
    "fabs",
    "floor",
    "log",
    "log10",
    "log1p",
    "log2",
    "maximum",
    "minimum",
    "power",
    "reciprocal",
    "rint",
    "round",
    "sign",
    "sin",
    "sinh",
    "sqrt",
    "square",
    "tan",
    "tanh",
    "trunc",
    "where",
)

#: longest formula accepted, in characters
MAX_LENGTH = 10_000
#: deepest bracket nesting accepted
MAX_DEPTH = 50
#: largest number of decimal digits a constant in a formula may have or compute to
MAX_DIGITS = 300
#: largest number of basis columns a spline or polynomial transform may make (its degree or df)
MAX_BASIS = 100
#: the arguments of the basis transforms that set their number of columns: position -> name
_BASIS_SIZE = {
    "poly": {1: "degree"},
    "bs": {1: "df", 3: "degree"},
    "cr": {1: "df"},
    "cc": {2: "df"},
    "tp": {1: "df", 3: "max_knots"},
}

_OPERATORS = {"+", "-", "*", "/", "**"}
_COMPARISONS = {"==", "!=", "<", "<=", ">", ">="}
_DUNDER = re.compile(r"(^|\.)__\w*__($|\.)")


class ExpressionRefused(FormulaError):
    """A formula expression holds something outside the grammar; ``part`` is the offending text."""

    def __init__(self, message: str, part: str):
        super().__init__(message)
        self.part = part


def allowed_functions(extra: Iterable[str] = ()) -> frozenset[str]:
    """Return every name a formula may call: transforms, encodings, numpy's functions, ``extra``.

    Examples
    --------
    >>> names = allowed_functions({"logit"})
    >>> {"C", "np.log", "numpy.sqrt", "log1p", "logit"} <= names, "np.lib" in names
    (True, False)
    """
    numpy = {f"{module}.{name}" for module in ("np", "numpy") for name in NUMPY_FUNCTIONS}
    return frozenset({*TRANSFORMS, *ENCODINGS, BINOMIAL_RESPONSE, *NUMPY_FUNCTIONS, *numpy, *extra})


def refuse_long_or_deep(text: str) -> None:
    """Refuse a formula longer than :data:`MAX_LENGTH` or nested deeper than :data:`MAX_DEPTH`.

    Both are refused before parsing: formulae's parser recurses once per bracket.
    """
    if len(text) > MAX_LENGTH:
        raise ExpressionRefused(
            f"the formula is {len(text):,} characters long; at most {MAX_LENGTH:,} are accepted", text[:20]
        )
    depth = deepest = 0
    for ch in text:
        depth += ch in "([{"
        depth -= ch in ")]}"
        deepest = max(deepest, depth)
    if deepest > MAX_DEPTH:
        raise ExpressionRefused(
            f"the formula nests brackets {deepest} deep; at most {MAX_DEPTH} levels are accepted", text[:20]
        )


def _check_name(name: str, what: str) -> None:
    if _DUNDER.search(name) or name.startswith("_"):
        raise ExpressionRefused(
            f"'{name}' is not allowed in a formula: a {what} with a leading underscore or a "
            "double-underscore part (such as __class__) is refused, and no attribute of an object can be "
            "reached; formulas name data columns and call the listed functions",
            name,
        )


def _not_callable_message(name: str, allowed: frozenset[str]) -> str:
    hint = ""
    if not name.isascii():
        hint = " (it contains non-ASCII letters: a look-alike of an allowed name is a different name)"
    elif "." in name:
        module = name.split(".")[0]
        if module in ("np", "numpy"):
            return (
                f"{name} is not a function formulas may call; allowed: {', '.join(NUMPY_FUNCTIONS)} "
                "(and C, I, scale, center, standardize, poly, bs, ...); add your own with "
                "extra_namespace={'name': function}"
            )
        hint = " (formulas call functions by name; attributes of objects cannot be reached)"
    return (
        f"'{name}' is not a function formulas may call{hint}; formulas may call numpy's element-wise "
        "functions (np.log, np.sqrt, ...), formulae's transforms (C, I, scale, center, standardize, poly, "
        "bs, ...) and the functions you add with extra_namespace={'name': function}"
    )


def _constant(node) -> int | float | None:
    """Return the value of a subtree of number literals (bounded in size), or None if it is not one."""
    if isinstance(node, LazyValue):
        value = node.value
        return value if isinstance(value, int | float) and not isinstance(value, bool) else None
    if not isinstance(node, LazyOperator):
        return None
    values = [_constant(arg) for arg in node.args]
    if any(v is None for v in values):
        return None
    if len(values) == 1:
        return -values[0] if node.symbol == "-" else values[0]
    a, b = values
    digits = lambda x: math.log10(abs(x)) if x else 0.0  # noqa: E731
    if node.symbol == "**" and isinstance(a, int) and isinstance(b, int) and b > 0 and abs(a) > 1:
        if b * digits(a) > MAX_DIGITS:
            raise ExpressionRefused(f"the constant {a} ** {b} is too large for a formula", str(node))
    if node.symbol == "*" and digits(a) + digits(b) > MAX_DIGITS:
        raise ExpressionRefused("a constant in the formula is too large", str(node))
    try:
        value = {"+": a + b, "-": a - b, "*": a * b}.get(node.symbol)
        if node.symbol == "/":
            value = a / b
        elif node.symbol == "**":
            value = a**b
    except (ArithmeticError, ValueError):
        return None  # the evaluation raises the same error, with the formula's message
    if isinstance(value, complex) or (isinstance(value, int) and digits(value) > MAX_DIGITS):
        raise ExpressionRefused("a constant in the formula is too large or not real", str(node))
    return value


def _check_lazy(node, allowed: frozenset[str], where: str, columns: set[str]) -> None:
    """Check one node of formulae's evaluation tree and collect the columns it names.

    ``where`` says what the node's value is used for: ``"argument"``, ``"arithmetic"`` or ``"comparison"``.
    """
    if isinstance(node, LazyCall):
        name = node.callee
        if name not in allowed:
            _check_name(name, "function")
            raise ExpressionRefused(_not_callable_message(name, allowed), name)
        for arg in node.args:
            _check_lazy(arg, allowed, "arithmetic" if name == "I" else "argument", columns)
        for key, arg in node.kwargs.items():
            _check_name(key, "keyword argument")
            _check_lazy(arg, allowed, "argument", columns)
        _check_basis_size(node)
    elif isinstance(node, LazyVariable):
        _check_name(node.name, "name")
        if not (where == "argument" and node.name in ENCODINGS):
            columns.add(node.name)
    elif isinstance(node, LazyValue):
        value = node.value
        if isinstance(value, str):
            if where == "arithmetic":
                raise ExpressionRefused(
                    f"the string {node} can only be a function argument or be compared with, "
                    "not computed with",
                    str(node),
                )
        elif value is not None and not isinstance(value, bool | int | float):
            raise ExpressionRefused(f"the constant {node} is not a number or a string", str(node))
    elif isinstance(node, LazyOperator):
        if node.symbol not in _OPERATORS | _COMPARISONS:
            raise ExpressionRefused(f"the operator '{node.symbol}' is not allowed in a formula", str(node))
        inner = "comparison" if node.symbol in _COMPARISONS else "arithmetic"
        for arg in node.args:
            _check_lazy(arg, allowed, inner, columns)
        _constant(node)
    else:
        raise ExpressionRefused(f"'{node}' is not allowed in a formula expression", str(node))


def _check_basis_size(node: LazyCall) -> None:
    """Refuse a polynomial or spline with more than :data:`MAX_BASIS` columns.

    ``poly(x, 100000)`` took a minute and gigabytes before failing.
    """
    sizes = _BASIS_SIZE.get(node.callee)
    if not sizes:
        return
    given = {name: node.args[pos] for pos, name in sizes.items() if pos < len(node.args)}
    given.update({k: v for k, v in node.kwargs.items() if k in sizes.values()})
    for name, arg in given.items():
        value = _constant(arg)
        limit = 100 * MAX_BASIS if name == "max_knots" else MAX_BASIS
        if value is not None and abs(value) > limit:
            raise ExpressionRefused(
                f"{node.callee}(..., {name}={value:g}) asks for more than {limit} basis columns; "
                f"use at most {limit}",
                str(node),
            )


def _check_term(term, allowed: frozenset[str], columns: set[str]) -> None:
    if isinstance(term, Intercept | NegatedIntercept):
        return
    if isinstance(term, Response):
        term = term.term
    if isinstance(term, GroupSpecificTerm):
        raise ExpressionRefused("'|' can only appear in a random term '(expr | group)'", str(term))
    if not isinstance(term, Term):
        raise ExpressionRefused(f"'{term}' is not allowed in a formula", str(term))
    for component in term.components:
        if isinstance(component, Variable):
            if not isinstance(component.name, str):
                raise ExpressionRefused(
                    f"the number {component.name} is not a term: write 1 or 0 for the intercept, "
                    "or I(...) for a computed column",
                    str(component.name),
                )
            _check_name(component.name, "name")
            columns.add(component.name)
            if component.reference is not None and not isinstance(component.reference, str | int | float):
                raise ExpressionRefused(f"the level of '{component.name}' must be a constant", component.name)
        elif isinstance(component, Call):
            _check_lazy(component.call, allowed, "argument", columns)
        else:
            raise ExpressionRefused(f"'{component}' is not allowed in a formula", str(component))


def check_description(desc, allowed: frozenset[str] | None = None) -> frozenset[str]:
    """Check a parsed formula (``formulae.model_description``) against the grammar; return its columns.

    Parameters
    ----------
    desc : formulae.terms.Model
        What :func:`formulae.model_description` returns for the formula; parsing calls nothing.
    allowed : frozenset of str, optional
        Names that may be called; :func:`allowed_functions` ``()`` by default.

    Returns
    -------
    frozenset of str
        The data columns the expression uses (encodings passed by name excluded).

    Raises
    ------
    ExpressionRefused
        A :class:`~bayesmlm.FormulaError` naming the offending part (``.part``).
    """
    allowed = allowed_functions() if allowed is None else allowed
    columns: set[str] = set()
    if desc.response is not None:
        _check_term(desc.response, allowed, columns)
    for term in desc.terms:
        _check_term(term, allowed, columns)
    return frozenset(columns)


def check_expression(text: str, allowed: frozenset[str] | None = None) -> frozenset[str]:
    """Parse a formula or formula expression and check it (see :func:`check_description`).

    Parameters
    ----------
    text : str
        A formula (``"y ~ np.log(x) + C(g)"``) or a right-hand side (``"1 + Days"``).
    allowed : frozenset of str, optional
        Names that may be called; :func:`allowed_functions` ``()`` by default.

    Returns
    -------
    frozenset of str
        The data columns the expression uses.

    Raises
    ------
    FormulaError
        If the text does not parse, or (:class:`ExpressionRefused`) holds something outside the grammar.

    Examples
    --------
    >>> sorted(check_expression("np.log(y) ~ C(g, Treatment('b')) + I(x ** 2) + `my var`"))
    ['g', 'my var', 'x', 'y']
    >>> check_expression("y ~ I.__globals__.get('eval')")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    bayesmlm.spec.expression.ExpressionRefused: 'I.__globals__.get' is not allowed in a formula: ...
    """
    if not isinstance(text, str):
        raise FormulaError(f"a formula expression must be a string, not {type(text).__name__}")
    refuse_long_or_deep(text)
    try:
        desc = formulae.model_description(text)  # parses only: nothing is looked up or called
    except Exception as err:  # formulae raises many kinds; all mean "not a valid expression"
        raise FormulaError(f"invalid formula expression '{text}': {type(err).__name__}: {err}") from err
    return check_description(desc, allowed)
