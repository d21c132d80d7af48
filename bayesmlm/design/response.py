"""Stage 2, the design: the response as the families read it, the offset and the prior weights.

A response is one numeric column (``Reaction``, ``TICKS``, a 0/1 or boolean column), two columns of a
binomial response (lme4's ``cbind(successes, failures)`` or bambi's ``p(successes, trials)``), or a
two-level categorical column, read as glmer reads a factor response: the first level is a failure,
the second a success. Which of these a family accepts is the family's to say
(:mod:`bayesmlm.families`); here they are only evaluated. ``offset(...)`` terms of the fixed part
are summed into one offset, kept apart from the fixed-effects columns. Prior weights (lme4's
``weights``) are a column of the data or one number per row: for a generalized family a row of weight
``w`` counts as ``w`` observations (glmer's meaning, ``w >= 0``); for the Gaussian family row ``i`` has
residual variance ``σ² / w_i`` (lmer's meaning, ``w > 0``). A missing or infinite weight makes its row
unusable, dropped and counted like a missing value in any other column.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from bayesmlm.exceptions import DataError, FormulaError
from bayesmlm.spec.expression import check_expression
from bayesmlm.spec.formula import ModelSpec

__all__ = [
    "WEIGHTS_COLUMN",
    "ResponseColumns",
    "checked_weights",
    "offset_columns",
    "predictor_columns",
    "prior_weight_column",
    "refuse_random_offset",
    "response_columns",
]

#: the column array-valued weights are stored under in the design's data (R's model frame name)
WEIGHTS_COLUMN = "(weights)"


@dataclass(frozen=True)
class ResponseColumns:
    """The evaluated response.

    Attributes
    ----------
    y : ndarray
        The values; for a binomial response the successes; for a two-level response 1 for the second
        level.
    trials : ndarray or None
        Trials per row of a two-column binomial response.
    levels : tuple of str or None
        ``(failure, success)`` labels of a two-level categorical response.
    """

    y: np.ndarray
    trials: np.ndarray | None = None
    levels: tuple[str, str] | None = None


def response_columns(response, text: str, generalized: bool = True) -> ResponseColumns:
    """Read formulae's response matrix: one column, two binomial columns, or a two-level factor.

    Raises
    ------
    DataError
        For a categorical response of more than two levels, or a two-column response other than
        ``cbind(successes, failures)`` or ``p(successes, trials)``; without ``generalized`` (a
        Gaussian model) for anything but one numeric column.
    """
    if not generalized and response.kind == "categoric":
        raise DataError(
            f"the response '{text}' must be numeric, but it is categorical "
            f"({len(getattr(response, 'levels', None) or ())} level(s)); for a binary response use "
            "family='binomial', otherwise convert it to numbers"
        )
    out = _response_columns(response, text)
    if not generalized and out.trials is not None:
        raise DataError(
            f"the response '{text}' is two-column (binomial): a Gaussian model needs one numeric "
            "column; use family='binomial'"
        )
    return out


def _response_columns(response, text: str) -> ResponseColumns:
    values = np.asarray(response)
    if response.kind == "categoric":
        levels = tuple(str(v) for v in getattr(response, "levels", None) or ())
        if values.ndim == 2 and values.shape[1] == 2 and len(levels) == 2:
            return ResponseColumns(values[:, 1].astype(float), None, (levels[0], levels[1]))
        raise DataError(
            f"the response '{text}' is categorical with {len(levels) or values.shape[-1]} levels; a "
            "categorical response must have two levels (a binary response, family='binomial'), "
            "otherwise convert it to numbers"
        )
    values = values.astype(float)
    if values.ndim == 2 and values.shape[1] == 2:
        if response.kind == "proportion":  # p(successes, trials)
            return ResponseColumns(values[:, 0], values[:, 1])
        if text.replace(" ", "").startswith("cbind("):
            return ResponseColumns(values[:, 0], values[:, 0] + values[:, 1])
    if values.ndim == 2 and values.shape[1] != 1:
        raise DataError(
            f"the response '{text}' has {values.shape[1]} columns; a two-column response is binomial, "
            "written cbind(successes, failures) or p(successes, trials)"
        )
    return ResponseColumns(values.reshape(-1))


def offset_columns(common, generalized: bool = True) -> tuple[np.ndarray | None, list[int]]:
    """Return the summed ``offset(...)`` columns of a fixed-effects matrix, and where the others are.

    A Gaussian model (not ``generalized``) refuses an offset: subtract it from the response instead.
    """
    if common is None:
        return None, []
    offsets, kept = [], []
    for name, term in common.terms.items():
        cols = list(range(common.slices[name].start, common.slices[name].stop))
        (offsets if getattr(term, "kind", None) == "offset" else kept).extend(cols)
    if not offsets:
        return None, kept
    if not generalized:
        raise FormulaError(
            "offset() is for the binomial, Poisson and negative binomial families; in a Gaussian "
            "model subtract it from the response instead, e.g. I(y - x) ~ ..."
        )
    return np.asarray(common)[:, offsets].astype(float).sum(axis=1), kept


def refuse_random_offset(term_matrix, term) -> None:
    """Refuse ``offset(...)`` inside a random term: an offset belongs to the fixed part."""
    if any(getattr(t, "kind", None) == "offset" for t in term_matrix.terms.values()):
        raise FormulaError(f"offset() inside the random term {term}; put the offset in the fixed part")


def prior_weight_column(
    data: pd.DataFrame, weights, generalized: bool = True
) -> tuple[pd.DataFrame, str | None]:
    """Return ``data`` with the prior weights as a column, and that column's name (None: no weights).

    ``weights`` is the name of a column, or one number per row (stored as :data:`WEIGHTS_COLUMN`).

    Raises
    ------
    DataError
        For an unknown column, a sequence of the wrong length, or values that are not numbers.
    """
    if weights is None:
        return data, None
    if isinstance(weights, str):
        if weights not in data.columns:
            raise DataError(f"weights={weights!r} is not a column of the data")
        return data, weights
    values = np.asarray(weights.to_numpy() if isinstance(weights, pd.Series) else weights)
    if values.ndim != 1 or len(values) != len(data):
        raise DataError(
            f"weights must be a column name or one number per row of the data ({len(data)}), "
            f"not an array of shape {values.shape}"
        )
    if not np.issubdtype(values.dtype, np.number) or np.issubdtype(values.dtype, np.complexfloating):
        raise DataError(f"weights must be numbers, not {values.dtype}")
    return data.assign(**{WEIGHTS_COLUMN: values.astype(float)}), WEIGHTS_COLUMN


def checked_weights(values: np.ndarray, generalized: bool = True) -> np.ndarray:
    """Refuse negative weights and all-zero weights (Gaussian: any zero weight); return them as floats.

    Examples
    --------
    >>> checked_weights(np.array([1, 2.5]), generalized=False)
    array([1. , 2.5])
    """
    values = np.asarray(values, dtype=float)
    if not generalized and np.any(values <= 0):
        raise DataError(
            f"{int(np.sum(values <= 0))} prior weights are zero or negative; in a Gaussian model row i "
            "has residual variance sigma^2 / w_i (lmer's weights), so every weight must be > 0: drop "
            "the rows of weight 0 from the data"
        )
    if np.any(values < 0):
        raise DataError(
            f"{int(np.sum(values < 0))} prior weights are negative; weights must be >= 0 (glmer's "
            "prior weights: a row of weight w counts as w observations)"
        )
    if not np.any(values > 0):
        raise DataError("every prior weight is 0: no observation is left to fit")
    return values


def predictor_columns(spec: ModelSpec, allowed: frozenset[str] | None = None) -> frozenset[str]:
    """Columns the model needs besides the response: those of the fixed part and the random terms.

    A column used only in the response (``incidence`` in ``cbind(incidence, size - incidence)``)
    is not needed to predict; one also used in an offset or a term is.

    Examples
    --------
    >>> from bayesmlm.spec.formula import parse_formula
    >>> sorted(predictor_columns(parse_formula("cbind(s, n - s) ~ x + offset(np.log(n)) + (1 | g)")))
    ['g', 'n', 'x']
    """
    used = set(check_expression(spec.fixed, allowed))
    for term in spec.random:
        used |= set(check_expression(term.expr, allowed)) | set(term.factor)
    return frozenset(used)
