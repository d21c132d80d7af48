"""Checking the arguments of the public functions: unknown keywords, and values out of range.

A keyword that a function does not take is an :class:`~bayesmlm.UnknownArgumentError` (a ``TypeError``)
naming the function, the keyword and what was probably meant (``fit(draw=200)``: did you mean
``draws``?); a value out of range is an :class:`~bayesmlm.ArgumentError` (a ``ValueError``) saying
what is allowed. Nothing is ever silently ignored. This sits below every stage, so each can use it.
"""

from __future__ import annotations

import difflib
import functools
import inspect
import math
import numbers
from collections.abc import Callable, Iterable

from bayesmlm.exceptions import ArgumentError, UnknownArgumentError

__all__ = ["check_keywords", "checked", "checked_methods", "choice", "count", "probability"]

#: what a keyword from another tool probably means here
HINTS = {
    "draw": "draws",
    "samples": "draws",
    "n_samples": "draws",
    "n_draws": "draws",
    "iter": "draws and tune (Stan's iter is warmup + draws)",
    "iterations": "draws",
    "warmup": "tune",
    "n_tune": "tune",
    "burn": "tune",
    "burnin": "tune",
    "chain": "chains",
    "n_chains": "chains",
    "njobs": "cores",
    "n_jobs": "cores",
    "random_seed": "seed",
    "rng": "seed",
    "random_state": "seed",
    "prior": "priors",
    "adapt_delta": "target_accept",
    "nuts_sampler": "sampler",
}


#: keywords that belong to another function
ELSEWHERE = {
    "family": "the family belongs to the model: Model(formula, data, family=...)",
    "priors": "priors belong to the model: Model(formula, data, priors={...})",
    "formula": "the formula belongs to the model: Model(formula, data)",
}


def _suggestion(name: str, allowed: Iterable[str]) -> str:
    allowed = sorted(set(allowed))
    if name in ELSEWHERE and name not in allowed:
        return f"; {ELSEWHERE[name]}"
    if name in HINTS:
        return f"; did you mean {HINTS[name]}?"
    close = difflib.get_close_matches(name, allowed, n=2, cutoff=0.6)
    if close:
        return f"; did you mean {' or '.join(close)}?"
    return f"; it takes {', '.join(allowed)}" if allowed else ""


def check_keywords(where: str, given: Iterable[str], allowed: Iterable[str]) -> None:
    """Raise UnknownArgumentError for the first keyword in ``given`` that is not in ``allowed``.

    Examples
    --------
    >>> check_keywords("fit()", ["draw"], ["draws", "tune", "chains"])  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    bayesmlm.exceptions.UnknownArgumentError: fit() got an unknown argument 'draw'; did you mean draws?
    """
    allowed = set(allowed)
    for name in given:
        if name not in allowed:
            raise UnknownArgumentError(
                f"{where} got an unknown argument {name!r}{_suggestion(name, allowed)}"
            )


def checked(func: Callable) -> Callable:
    """Decorate a public function so that an unknown keyword gets a did-you-mean error.

    Python's own ``TypeError`` for an unexpected keyword names no alternative; this one does.
    """
    signature = inspect.signature(func)
    names = [p.name for p in signature.parameters.values() if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
    allowed = {n for n in names if n != "self"}
    where = f"{func.__qualname__.replace('.__init__', '')}()"

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        if not allowed.issuperset(kwargs):
            check_keywords(where, kwargs, allowed)
        return func(*args, **kwargs)

    return wrapper


def checked_methods(cls: type) -> type:
    """Decorate a class so that each public method (not ``**kwargs`` ones) refuses unknown keywords.

    The same as :func:`checked` on every method whose name does not start with ``_``.
    """
    for name, value in list(vars(cls).items()):
        if name.startswith("_") or not inspect.isfunction(value) or hasattr(value, "__wrapped__"):
            continue
        if any(p.kind == p.VAR_KEYWORD for p in inspect.signature(value).parameters.values()):
            continue
        setattr(cls, name, checked(value))
    return cls


def count(name: str, value: object, minimum: int = 1) -> int:
    """Check a whole-number argument of at least ``minimum`` (``draws``, ``chains``); not a boolean."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ArgumentError(f"{name} must be a whole number, not {value!r}")
    if value < minimum:
        raise ArgumentError(f"{name} must be at least {minimum}, not {value}")
    return int(value)


def probability(name: str, value: object, closed: bool = False) -> float:
    """Check a number strictly between 0 and 1 (or in [0, 1] if ``closed``)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(float(value)):
        raise ArgumentError(f"{name} must be a number between 0 and 1, not {value!r}")
    x = float(value)
    if not (0 <= x <= 1 if closed else 0 < x < 1):
        raise ArgumentError(
            f"{name} must lie {'in [0, 1]' if closed else 'strictly between 0 and 1'}, not {x}"
        )
    return x


def choice(name: str, value: object, choices: Iterable[object]):
    """Check that ``value`` is one of ``choices`` (the message lists them)."""
    choices = list(choices)
    if value not in choices:
        raise ArgumentError(f"{name} must be one of {', '.join(map(repr, choices))}, not {value!r}")
    return value
