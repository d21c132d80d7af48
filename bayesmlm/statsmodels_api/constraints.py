"""The statsmodels entry point, string hypotheses: ``"Days = 0"`` as a constraint matrix ``(R, q)``.

statsmodels' ``wald_test`` and ``f_test`` accept hypotheses as text, parsed by patsy's
``DesignInfo.linear_constraint``: comma-separated constraints, each a linear expression in the
parameter names and numbers (``+ - * /``, parentheses), ``=`` between sides (``"a = b = 0"`` is two
constraints) or none (``"Days"`` means ``Days = 0``). :func:`linear_constraints` reads the same syntax
without patsy; names are matched whole and longest first, so names with spaces (``"Subject Var"``)
work.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Sequence

import numpy as np

from bayesmlm.exceptions import ArgumentError

__all__ = ["linear_constraints"]

_NUMBER = re.compile(r"(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")
_NAME_CHAR = re.compile(r"[\w.]")


def _tokens(text: str, names: Sequence[str]) -> list[tuple[str, object]]:
    out: list[tuple[str, object]] = []
    ordered = sorted(range(len(names)), key=lambda j: -len(names[j]))
    i = 0
    while i < len(text):
        if text[i].isspace():
            i += 1
            continue
        for j in ordered:
            name = names[j]
            end = i + len(name)
            if text.startswith(name, i) and not (
                end < len(text) and _NAME_CHAR.match(text[end]) and _NAME_CHAR.match(name[-1])
            ):
                out.append(("name", j))
                i = end
                break
        else:
            number = _NUMBER.match(text, i)
            if number:
                out.append(("number", float(number.group())))
                i = number.end()
            elif text[i] in "+-*/()=,":
                out.append((text[i], None))
                i += 1
            else:
                raise ArgumentError(
                    f"cannot read the hypothesis {text!r} at {text[i:]!r}: use the parameter names "
                    f"{list(names)}, numbers, + - * / ( ) and ="
                )
    return out


class _Parser:
    """Recursive descent over the tokens; a value is a linear form ``(coefficients, constant)``."""

    def __init__(self, tokens: list[tuple[str, object]], k: int, text: str):
        self.tokens, self.k, self.text, self.pos = tokens, k, text, 0

    def peek(self) -> str | None:
        return self.tokens[self.pos][0] if self.pos < len(self.tokens) else None

    def take(self) -> tuple[str, object]:
        token = self.tokens[self.pos]
        self.pos += 1
        return token

    def fail(self, what: str) -> ArgumentError:
        return ArgumentError(f"cannot read the hypothesis {self.text!r}: {what}")

    def expr(self) -> tuple[np.ndarray, float]:
        coef, const = self.term()
        while self.peek() in ("+", "-"):
            sign = 1.0 if self.take()[0] == "+" else -1.0
            c2, k2 = self.term()
            coef, const = coef + sign * c2, const + sign * k2
        return coef, const

    def term(self) -> tuple[np.ndarray, float]:
        coef, const = self.factor()
        while self.peek() in ("*", "/"):
            op = self.take()[0]
            c2, k2 = self.factor()
            if op == "/":
                if np.any(c2) or k2 == 0:
                    raise self.fail("divide by a non-zero number only")
                coef, const = coef / k2, const / k2
            elif not np.any(c2):
                coef, const = coef * k2, const * k2
            elif not np.any(coef):
                coef, const = c2 * const, k2 * const
            else:
                raise self.fail("a product of two parameters is not linear")
        return coef, const

    def factor(self) -> tuple[np.ndarray, float]:
        kind = self.peek()
        if kind is None:
            raise self.fail("it ends too early")
        kind, value = self.take()
        if kind in ("+", "-"):
            coef, const = self.factor()
            return (coef, const) if kind == "+" else (-coef, -const)
        if kind == "number":
            return np.zeros(self.k), float(value)  # type: ignore[arg-type]
        if kind == "name":
            coef = np.zeros(self.k)
            coef[int(value)] = 1.0  # type: ignore[call-overload]
            return coef, 0.0
        if kind == "(":
            out = self.expr()
            if self.peek() != ")":
                raise self.fail("a parenthesis is not closed")
            self.take()
            return out
        raise self.fail(f"unexpected {kind!r}")

    def constraint(self) -> list[tuple[np.ndarray, float]]:
        sides = [self.expr()]
        while self.peek() == "=":
            self.take()
            sides.append(self.expr())
        if self.peek() is not None:
            raise self.fail(f"unexpected {self.peek()!r}; separate constraints with commas")
        if len(sides) == 1:
            sides.append((np.zeros(self.k), 0.0))
        return [(c1 - c2, k2 - k1) for (c1, k1), (c2, k2) in itertools.pairwise(sides)]


def _split(tokens: list[tuple[str, object]]) -> list[list[tuple[str, object]]]:
    """Split at top-level commas; unwrap a constraint in parentheses (``"(a = b), c"``), recursively."""
    pieces, depth, current = [], 0, []
    for token in tokens:
        depth += {"(": 1, ")": -1}.get(token[0], 0)
        if token[0] == "," and depth == 0:
            pieces.append(current)
            current = []
        else:
            current.append(token)
    pieces.append(current)
    out = []
    for piece in pieces:
        if len(piece) > 1 and piece[0][0] == "(" and piece[-1][0] == ")" and _closes_last(piece):
            out.extend(_split(piece[1:-1]))
        else:
            out.append(piece)
    return out


def _closes_last(piece: list[tuple[str, object]]) -> bool:
    """Whether the opening parenthesis of ``piece`` is closed by its last token."""
    depth = 0
    for i, (kind, _) in enumerate(piece):
        depth += {"(": 1, ")": -1}.get(kind, 0)
        if depth == 0:
            return i == len(piece) - 1
    return False


def linear_constraints(text: str, names: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """Parse statsmodels' (patsy's) text hypotheses into ``R`` and ``q`` of ``R @ params = q``.

    Parameters
    ----------
    text : str
        Comma-separated linear constraints, e.g. ``"Days = 0"``, ``"Intercept = 250, Days = 10"``,
        ``"(Intercept - 2 * Days = 200), Days"``.
    names : sequence of str
        The parameters' names, in ``params`` order.

    Returns
    -------
    R : ndarray, shape (m, len(names))
    q : ndarray, shape (m,)

    Examples
    --------
    >>> R, q = linear_constraints("Intercept = 250, 2 * Days - Intercept = 1", ["Intercept", "Days"])
    >>> R
    array([[ 1.,  0.],
           [-1.,  2.]])
    >>> q
    array([250.,   1.])
    """
    if not text.strip():
        raise ArgumentError("the hypothesis is empty: write constraints such as 'Days = 0'")
    rows = [
        row for piece in _split(_tokens(text, names)) for row in _Parser(piece, len(names), text).constraint()
    ]
    for coef, _ in rows:
        if not np.any(coef):
            raise ArgumentError(f"a constraint in {text!r} names no parameter")
    return np.array([c for c, _ in rows]), np.array([v for _, v in rows])
