"""Stage 1, the specification: the formula text, scanned once: bracket depth, strings, and carets.

:class:`Source` records, per character, its bracket depth, its innermost opening bracket and whether it
is outside string literals and backticks, so the parser can split at top-level ``+`` and find ``|``
without being fooled by quotes; its errors show the formula with a caret under the position.
"""

from __future__ import annotations

import re

from bayesmlm.exceptions import FormulaError
from bayesmlm.spec.expression import allowed_functions

__all__ = ["Source"]

_OPEN, _CLOSE, _QUOTES = "([{", ")]}", "'\"`"


class Source:
    """The formula text with, per character, its bracket depth and whether it is outside strings."""

    def __init__(self, text: str, allowed: frozenset[str] | None = None) -> None:
        self.text = text
        self.allowed = allowed_functions() if allowed is None else allowed  # names a formula may call
        self.depth = [0] * len(text)  # number of brackets enclosing the character
        self.opener = [-1] * len(text)  # position of the innermost enclosing bracket
        self.code = [True] * len(text)  # False inside string literals and backquotes
        self.close: dict[int, int] = {}  # position of an opening bracket -> its closing one
        stack: list[int] = []
        quote = -1
        for i, ch in enumerate(text):
            if quote < 0 and ch in _CLOSE:
                if not stack or _OPEN.index(text[stack[-1]]) != _CLOSE.index(ch):
                    what = f"does not close {text[stack[-1]]!r}" if stack else "is never opened"
                    raise self.error(f"unbalanced parenthesis: {ch!r} at position {i} {what}", i)
                self.close[stack.pop()] = i
            self.depth[i], self.opener[i] = len(stack), (stack[-1] if stack else -1)
            if quote >= 0:
                self.code[i] = False
                quote = -1 if ch == text[quote] else quote
            elif ch in _QUOTES:
                self.code[i], quote = False, i
            elif ch in _OPEN:
                stack.append(i)
        if quote >= 0 or stack:
            p, what = (quote, "quote") if quote >= 0 else (stack[-1], "parenthesis")
            raise self.error(f"unbalanced {what}: {text[p]!r} at position {p} is never closed", p)

    def error(self, message: str, pos: int) -> FormulaError:
        """Return a FormulaError showing the formula with a caret under ``pos``."""
        shown = re.sub(r"\s", " ", self.text)
        return FormulaError(f"{message}\n  {shown}\n  {' ' * pos}^")

    def find(self, chars: str, start: int, end: int, depth: int | None = None) -> list[int]:
        """Positions of ``chars`` outside strings in ``[start, end)``, at ``depth`` if given."""
        found = [i for i in range(start, end) if self.text[i] in chars and self.code[i]]
        return [i for i in found if depth in (None, self.depth[i])]

    def strip(self, start: int, end: int) -> tuple[int, int]:
        """Return ``[start, end)`` without surrounding whitespace."""
        while start < end and self.text[start].isspace():
            start += 1
        while end > start and self.text[end - 1].isspace():
            end -= 1
        return start, end

    def clean(self, start: int, end: int) -> str:
        """Text of ``[start, end)`` stripped, with whitespace outside strings collapsed."""
        start, end = self.strip(start, end)
        out: list[str] = []
        for i in range(start, end):
            space = self.code[i] and self.text[i].isspace()
            if not (space and out[-1] == " "):  # out is not empty: text[start] is no space
                out.append(" " if space else self.text[i])
        return "".join(out)
