"""Stage 1, the specification: lme4 formulas parsed into a :class:`ModelSpec`, from the string alone.

A formula is ``response ~ fixed + random``. A random term is a parenthesised group added at the
top level of the right-hand side with a ``|`` or ``||`` inside: ``(expr | group)``. Everything
else on the right-hand side is the fixed part. Expressions (response, fixed part, each term's
``expr``) are checked with :mod:`formulae`; the grouping part must be variable names joined by
``:`` or ``/``. Random terms are expanded as lme4 does:

==================================  =========================================================
lme4 form                           expansion
==================================  =========================================================
``(x | g)``, ``(1 + x | g)``        one block: correlated intercept and slope, kept as written
``(0 + x | g)``, ``(x - 1 | g)``    one block without intercept, kept as written
``(x || g)``                        independent terms: ``(1 | g) + (0 + x | g)``
``(0 + a + b || g)``                ``(0 + a | g) + (0 + b | g)``
``(a*b || g)``                      ``(1 | g) + (0 + a | g) + (0 + b | g) + (0 + a:b | g)``
``(x | a/b)``                       nested: ``(x | a) + (x | b:a)``
``(1 | a/b/c)``                     ``(1 | a) + (1 | b:a) + (1 | c:b:a)``
``(1 | a:b)``                       one term whose grouping factor is ``a:b``
``y ~ (1 | g)``                     fixed part ``1`` (intercept only)
``y ~ 0 + x + (1 | g)``             fixed part ``0 + x`` (no intercept)
==================================  =========================================================

Random terms must be added with ``+``; ``x:(1 | g)``, ``-(1 | g)`` and ``(1 | (x | g))`` are
errors. Redundant parentheses ``((1 | g))`` are allowed, quoted strings are opaque, and inside
``||`` terms can only be added (``(a - b || g)`` is an error). Expanded terms keep lme4 order:
``(x || a/b)`` gives ``(1 | a) + (1 | b:a) + (0 + x | a) + (0 + x | b:a)``.

Every problem raises :class:`~bayesmlm.exceptions.FormulaError` showing the formula with a caret
under the offending position.
"""

import re
from collections.abc import Iterable
from dataclasses import dataclass, field

import formulae
from formulae.terms import Intercept

from bayesmlm.arguments import checked
from bayesmlm.exceptions import FormulaError
from bayesmlm.spec.expression import (
    ExpressionRefused,
    allowed_functions,
    check_description,
    refuse_long_or_deep,
)
from bayesmlm.spec.source import Source

__all__ = ["ModelSpec", "RandomTerm", "parse_formula"]

_NAME = re.compile(r"[^\W\d]\w*")
_GROUP_HELP = "expected variable names joined by ':' or '/', such as 'g', 'a:b' or 'a/b'"


@dataclass(frozen=True)
class RandomTerm:
    """One random-effects term ``(expr | group)`` after expansion.

    Attributes
    ----------
    expr : str
        Term expression for formulae, e.g. ``"1 + Days"``, ``"0 + Days"`` or ``"1"``.
    factor : tuple of str
        Variables whose interaction is the grouping factor, e.g. ``("cask", "batch")``.
    """

    expr: str
    factor: tuple[str, ...]

    @property
    def group(self) -> str:
        """Name of the grouping factor as lme4 prints it, e.g. ``"cask:batch"``."""
        return ":".join(self.factor)

    def __str__(self) -> str:
        return f"({self.expr} | {self.group})"


@dataclass(frozen=True)
class ModelSpec:
    """A parsed model formula; two specs are equal when they describe the same model.

    Attributes
    ----------
    formula : str
        The formula exactly as written (not used for equality).
    response : str
        Response expression, e.g. ``"Reaction"`` or ``"np.log(y)"``.
    fixed : str
        Fixed-part expression for formulae, e.g. ``"1 + Days"``, ``"1"`` or ``"0 + x"``.
    random : tuple of RandomTerm
        The expanded random terms in formula order.
    variables : frozenset of str
        Data columns used anywhere in the formula (function and module names excluded).
    response_variables, fixed_variables, random_variables : frozenset of str or None
        The columns of the response, of the fixed part, and of the random terms (expressions and
        grouping factors): what prediction needs. None for a spec built by hand.
    """

    formula: str = field(compare=False)
    response: str
    fixed: str
    random: tuple[RandomTerm, ...]
    variables: frozenset[str]
    response_variables: frozenset[str] | None = field(default=None, compare=False)
    fixed_variables: frozenset[str] | None = field(default=None, compare=False)
    random_variables: frozenset[str] | None = field(default=None, compare=False)

    @checked
    def needed_for_prediction(self, include_random: bool = True) -> frozenset[str]:
        """Return the columns new data must have to predict (not the response's).

        Examples
        --------
        >>> spec = parse_formula("np.log(y) ~ x + (z | g)")
        >>> sorted(spec.needed_for_prediction()), sorted(spec.needed_for_prediction(include_random=False))
        (['g', 'x', 'z'], ['x'])
        """
        if self.fixed_variables is None or self.random_variables is None:
            return self.variables - {self.response}
        return self.fixed_variables | (self.random_variables if include_random else frozenset())

    def __str__(self) -> str:
        return f"{self.response} ~ " + " + ".join([self.fixed, *map(str, self.random)])


def _check_tokens(src: Source) -> None:
    """Reject what formulae would silently drop or spend forever on."""
    text = src.text
    for m in re.finditer(r"\s+", text):
        a, b = m.span()
        if src.code[a] and 0 < a and b < len(text):
            if re.match(r"[\w.)\]}'\"`]", text[a - 1]) and re.match(r"[\w.'\"`]", text[b]):
                raise src.error(f"missing operator between '{text[a - 1]}' and '{text[b]}'", b)
    for c in src.find(",", 0, len(text), 0):
        raise src.error("unexpected ',' outside a function call", c)
    for m in re.finditer(r"\*\*[\s(+]*(\d+)", text):
        if src.code[m.start()] and len(m.group(1).lstrip("0")) > 3:
            raise src.error("exponent after '**' is too large (at most 999)", m.start(1))
    bars = src.find("|", 0, len(text))
    for i, p in enumerate(bars[2:], start=2):
        if bars[i - 2] == p - 2 and bars[i - 1] == p - 1:
            raise src.error("'|||' is not an operator; use '|' or '||'", p - 2)
    for p in bars:
        if src.depth[p] == 0:
            raise src.error("'|' outside parentheses; write random terms as '(expr | group)'", p)


def _split_sum(src: Source, start: int, end: int, depth: int) -> list[tuple[str, int, int]]:
    """Split ``[start, end)`` at its ``+``/``-`` at ``depth`` into (sign, start, end) pieces."""
    for c in src.find(",", start, end, depth):
        raise src.error("unexpected ',' outside a function call", c)
    cuts = src.find("+-", start, end, depth)
    pieces, sign, a = [], "+", start
    for k, b in enumerate([*cuts, end]):
        s, e = src.strip(a, b)
        if s < e:
            pieces.append((sign, s, e))
        elif k > 0:
            raise src.error(f"expected a term after '{src.text[a - 1]}'", a - 1)
        elif b == end:
            raise src.error("expected a term", a)
        if b < end:
            sign, a = src.text[b], b + 1
    return pieces


def _join(parts: list[tuple[str, str]]) -> str:
    out = ""
    for sign, text in parts:
        out += (f" {sign} " if out else sign.strip("+")) + text
    return out


def _describe(src: Source, text: str, pos: int, what: str) -> formulae.terms.Model:
    """Parse an expression with formulae (which calls nothing) and check it against the grammar."""
    try:
        desc = formulae.model_description(text)
    except Exception as exc:  # formulae raises many kinds; all mean "invalid expression"
        hint = ""
        if what.startswith("response") and any(op in text for op in "*/+-^"):
            hint = f"; for arithmetic in a formula write I(...), e.g. I({text.split('~')[0].strip()})"
        raise src.error(f"invalid {what}: {type(exc).__name__}: {exc}{hint}", pos) from exc
    try:
        check_description(desc, src.allowed)
    except ExpressionRefused as exc:
        at = src.text.find(exc.part, pos)
        raise src.error(str(exc), at if at >= 0 else pos) from None
    return desc


def _variables(src: Source, desc: formulae.terms.Model) -> set[str]:
    """Return the data columns an expression names (not encodings passed by name, as in ``C(x, Sum)``)."""
    return set(check_description(desc, src.allowed))


def _term_names(src: Source, text: str, pos: int) -> list[str]:
    terms = _describe(src, text, pos, f"term '{text}'").terms
    return [t.name for t in terms if not isinstance(t, Intercept)]


def _random_span(src: Source, s: int, e: int) -> tuple[int, int] | None:
    """Return the inside of ``(expr | group)`` if ``[s, e)`` is one, or None."""
    while s < e and src.text[s] == "(" and src.close[s] == e - 1:
        if src.find("|", s + 1, e - 1, src.depth[s] + 1):
            return s + 1, e - 1
        s, e = src.strip(s + 1, e - 1)  # redundant parentheses: ((1 | g))
    return None


def _grouping(src: Source, s: int, e: int) -> list[tuple[str, ...]]:
    """Factors of a grouping part: ``a/b:c`` -> ``[("a",), ("b", "c", "a")]``."""
    segments: list[list[str]] = [[]]
    last, pos = "/", s
    for m in re.finditer(r"[^\W\d]\w*|\S", src.text[s:e]):
        tok, pos = m.group(), s + m.start()
        if tok in ":/" and last not in ":/":
            segments += [[]] if tok == "/" else []
        elif last in ":/" and _NAME.fullmatch(tok):
            segments[-1].append(tok)
        else:
            raise src.error(f"invalid grouping factor '{src.clean(s, e)}': {_GROUP_HELP}", pos)
        last = tok
    if last in ":/":
        raise src.error(f"invalid grouping factor '{src.clean(s, e)}': {_GROUP_HELP}", pos)
    factors, outer = [], ()
    for names in segments:
        outer = (*names, *outer)
        factors.append(outer)
    return factors


def _random_terms(src: Source, s: int, e: int) -> tuple[list[RandomTerm], set[str]]:
    """Expand the inside ``[s, e)`` of one ``(expr | group)``; also return its variables."""
    depth = src.depth[s]
    for p in src.find("|", s, e):
        if src.depth[p] > depth:
            raise src.error("nested random term: '|' inside a random term", p)
    bars = src.find("|", s, e, depth)
    if bars[-1] - bars[0] >= len(bars):
        raise src.error("more than one '|' in a random term", bars[-1])
    es, ee = src.strip(s, bars[0])
    gs, ge = src.strip(bars[-1] + 1, e)
    if es == ee:
        raise src.error("empty random-term expression before '|'", bars[0])
    if gs == ge:
        raise src.error("empty grouping factor after '|'", bars[-1])
    pieces = _split_sum(src, es, ee, depth)
    expr = _join([(sign, src.clean(a, b)) for sign, a, b in pieces])
    desc = _describe(src, expr, es, f"random-term expression '{expr}'")
    if len(bars) == 1:
        exprs = [expr] if desc.terms else []
    else:  # (expr || g): the intercept and every term on its own
        exprs = ["1"] if any(isinstance(t, Intercept) for t in desc.terms) else []
        for sign, a, b in pieces:
            text = src.clean(a, b)
            if text in ("0", "1"):
                continue
            if sign == "-":
                raise src.error("terms cannot be removed with '-' inside '||'", a)
            names = _term_names(src, text, a)
            if len(names) == 1:
                names = [text]
            elif any(_term_names(src, name, a) != [name] for name in names):
                raise src.error(f"cannot expand '{text}' inside '||'; list its terms", a)
            exprs += [f"0 + {name}" for name in names if f"0 + {name}" not in exprs]
    if not exprs:
        raise src.error(f"random term '{src.clean(s - 1, e + 1)}' has no effects", es)
    factors = _grouping(src, gs, ge)
    return [RandomTerm(x, f) for x in exprs for f in factors], _variables(src, desc).union(*factors)


@checked
def parse_formula(formula: str, functions: Iterable[str] = ()) -> ModelSpec:
    """Parse an lme4 model formula.

    Parameters
    ----------
    formula : str
        A formula such as ``"Reaction ~ Days + (Days | Subject)"``; see the module docstring for
        the grammar, and :mod:`bayesmlm.spec.expression` for what an expression may contain.
    functions : iterable of str
        Names of the user's functions the formula may call besides the built-in ones (the keys of
        ``Model(..., extra_namespace=...)``).

    Returns
    -------
    ModelSpec
        Response, fixed part, expanded random terms and the variables used.

    Raises
    ------
    FormulaError
        If the formula is not a string or is not a valid lme4 formula, or an expression holds anything
        outside the grammar of :mod:`bayesmlm.spec.expression` (attribute access, a function not allowed,
        a dunder name). The message shows where. Nothing in the formula is evaluated.

    Examples
    --------
    >>> spec = parse_formula("Reaction ~ Days + (Days || Subject)")
    >>> spec.fixed, [str(term) for term in spec.random]
    ('Days', ['(1 | Subject)', '(0 + Days | Subject)'])
    >>> str(parse_formula("strength ~ (1 | batch/cask)"))
    'strength ~ 1 + (1 | batch) + (1 | cask:batch)'
    >>> sorted(parse_formula("np.log(y) ~ scale(x) + (1 | g)").variables)
    ['g', 'x', 'y']
    """
    if not isinstance(formula, str):
        raise FormulaError(f"formula must be a string, not {type(formula).__name__}")
    if not formula.strip():
        raise FormulaError("formula is empty; expected something like 'y ~ x + (1 | g)'")
    try:
        refuse_long_or_deep(formula)
    except ExpressionRefused as exc:
        raise FormulaError(str(exc)) from None
    src = Source(formula, allowed_functions(functions))
    tildes = src.find("~", 0, len(formula))
    if not tildes:
        raise src.error("missing '~' between the response and the right-hand side", len(formula))
    if len(tildes) > 1:
        raise src.error("more than one '~' in the formula", tildes[1])
    tilde = tildes[0]
    response = src.clean(0, tilde)
    if not response:
        raise src.error("empty response: nothing before '~'", tilde)
    if src.strip(tilde + 1, len(formula))[0] == len(formula):
        raise src.error("empty right-hand side: nothing after '~'", len(formula))
    _check_tokens(src)
    for p in src.find("|", 0, tilde):
        raise src.error("random-term notation '|' in the response", p)
    desc = _describe(src, f"{response} ~ 1", src.strip(0, tilde)[0], f"response '{response}'")
    response_variables = frozenset(_variables(src, desc))
    random_variables: set[str] = set()
    fixed_parts, random, fixed_at = [], [], tilde + 1
    for sign, s, e in _split_sum(src, tilde + 1, len(formula), 0):
        inside = _random_span(src, s, e)
        if inside is None:
            for p in src.find("|", s, e):
                o = src.opener[p]
                term = src.clean(o, src.close[o] + 1)
                raise src.error(
                    f"random term '{term}' must be added with '+' on its own, "
                    "not be part of an interaction or function call",
                    o,
                )
            fixed_at = s if not fixed_parts else fixed_at
            fixed_parts.append((sign, src.clean(s, e)))
        elif sign == "-":
            raise src.error("a random term cannot be subtracted", s)
        else:
            terms, names = _random_terms(src, *inside)
            random += terms
            random_variables |= names
    fixed = _join(fixed_parts) or "1"
    fixed_variables = frozenset(_variables(src, _describe(src, fixed, fixed_at, f"fixed part '{fixed}'")))
    variables = response_variables | fixed_variables | random_variables
    return ModelSpec(
        formula,
        response,
        fixed,
        tuple(random),
        frozenset(variables),
        response_variables=response_variables,
        fixed_variables=fixed_variables,
        random_variables=frozenset(random_variables),
    )
