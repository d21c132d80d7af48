"""Stage 1, the specification: an lme4 formula parsed into a :class:`ModelSpec`, from the string alone.

``formula`` parses and expands the random terms; ``expression`` is the grammar every expression in a
formula is checked against before anything evaluates it; ``namespace`` is what the evaluation may
call. Nothing here looks at data.
"""

from bayesmlm.spec.formula import ModelSpec, RandomTerm, parse_formula

__all__ = ["ModelSpec", "RandomTerm", "parse_formula"]
