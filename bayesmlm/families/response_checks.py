"""Stage 3, families: the checks of a response against its family, and the search for separation.

Each bad response is refused with a :class:`~bayesmlm.DataError` that says what is wrong and what
was probably meant (non-integer or negative counts, successes above trials, a binomial or
categorical response given to a count family, a response with no events); a 0/1 response given to a
count family is fitted with a :class:`~bayesmlm.FamilyWarning`. Separation (:func:`separated_columns`)
is found by linear programming, as Konis (2007) and R's ``detectseparation`` do.
"""

from __future__ import annotations

import warnings

import numpy as np
from scipy.optimize import linprog

from bayesmlm.design.evaluate import Design
from bayesmlm.exceptions import DataError, FamilyWarning, SeparationWarning

__all__ = [
    "check_count_response",
    "check_counts",
    "separated_columns",
    "warn_if_discrete",
    "warn_separation",
]

#: a whole-number response from 0 with a mean below this, fitted as Gaussian, suggests a count family
COUNT_MEAN = 20.0


def _examples(values: np.ndarray, bad: np.ndarray) -> str:
    shown = ", ".join(f"{v:g}" for v in np.unique(values[bad])[:5])
    return f"{int(bad.sum())} row(s), e.g. {shown}"


def check_counts(values: np.ndarray, what: str, response: str) -> None:
    """Refuse negative or non-integer values of a count (``what``: "counts", "successes", ...)."""
    values = np.asarray(values, dtype=float)
    negative = values < 0
    if negative.any():
        raise DataError(
            f"the response '{response}' has negative {what} ({_examples(values, negative)}); "
            f"{what} must be whole numbers >= 0"
        )
    fractional = np.abs(values - np.round(values)) > 1e-8 * np.maximum(1.0, np.abs(values))
    if fractional.any():
        raise DataError(
            f"the response '{response}' has non-integer {what} ({_examples(values, fractional)}); "
            f"{what} must be whole numbers (for a continuous response use the Gaussian family, for "
            "rates a count with offset(log(exposure)))"
        )


def check_count_response(design: Design, family: str, stacklevel: int) -> None:
    """Check a Poisson or negative binomial response (see the module docstring)."""
    response = design.response_name
    if design.trials is not None or design.response_levels is not None:
        kind = "two-column binomial" if design.trials is not None else "categorical"
        raise DataError(
            f"the response '{response}' is {kind}, which the {family} family cannot model; "
            "use family='binomial'"
        )
    y = np.asarray(design.y)
    check_counts(y, "counts", response)
    if not np.any(y > 0):
        raise DataError(
            f"every count of '{response}' is 0: the rate has no finite estimate (its log is -inf) and "
            "no variance between groups can be seen; check the response column"
        )
    if set(np.unique(y)) <= {0.0, 1.0}:
        warnings.warn(
            f"the response '{response}' is 0/1 but is given to the {family} family; if it is a yes/no "
            "outcome, family='binomial' (Bernoulli) is meant. Fitting the count model as asked",
            FamilyWarning,
            stacklevel=stacklevel + 1,
        )


def warn_if_discrete(design: Design, stacklevel: int) -> None:
    """Warn (once, when the model is made) that a Gaussian model of a 0/1 or count response may be wrong.

    A response of only 0 and 1 suggests ``family="binomial"``; whole numbers from 0 with a mean below
    :data:`COUNT_MEAN` (counts) suggest ``family="poisson"`` (or ``"negativebinomial"``).
    """
    y = np.asarray(design.y, dtype=float)
    values = set(np.unique(y))
    if values <= {0.0, 1.0}:
        suggestion = "binomial (Bernoulli)"
    elif np.all(y == np.round(y)) and y.min() == 0 and y.mean() < COUNT_MEAN:
        suggestion = "poisson or negativebinomial"
    else:
        return
    warnings.warn(
        f"the response '{design.response_name}' is {'0/1' if 'binomial' in suggestion else 'counts'} "
        f"(values {', '.join(f'{v:g}' for v in sorted(values)[:6])}{', ...' if len(values) > 6 else ''}) "
        f"but is fitted by a Gaussian (linear) model; family='{suggestion.split()[0]}' may be meant "
        f"({suggestion}). Fitting the Gaussian model as asked",
        FamilyWarning,
        stacklevel=stacklevel + 1,
    )


def separated_columns(X: np.ndarray, names, successes: np.ndarray, failures: np.ndarray) -> list[str]:
    """Fixed-effect columns involved in complete or quasi-complete separation (empty: none).

    Separation is a direction ``d ≠ 0`` of the fixed effects with ``x_i d ≥ 0`` on every row that
    has only successes, ``≤ 0`` on every row with only failures and ``= 0`` on rows with both: moving
    the estimate along ``d`` never lowers the likelihood, so the ML estimate is infinite. The
    linear programme maximises ``Σ |x_i d|`` over such ``d`` in the box ``[-1, 1]``; a positive
    optimum means separation, and the columns with ``d_j ≠ 0`` are involved.

    Examples
    --------
    >>> X = np.column_stack([np.ones(6), [0, 0, 0, 1, 1, 1]])
    >>> separated_columns(X, ["Intercept", "x"], np.array([0, 1, 0, 1, 1, 1]), np.array([1, 0, 1, 0, 0, 0]))
    ['x']
    """
    X = np.asarray(X, dtype=float)
    if X.shape[1] == 0:
        return []
    scale = np.maximum(np.abs(X).max(axis=0), 1e-300)
    Xs = X / scale
    only_s, only_f = (successes > 0) & (failures <= 0), (failures > 0) & (successes <= 0)
    both = (successes > 0) & (failures > 0)
    c = -(Xs[only_s].sum(axis=0) - Xs[only_f].sum(axis=0))
    A_ub = np.vstack([-Xs[only_s], Xs[only_f]])
    result = linprog(
        c,
        A_ub=A_ub if len(A_ub) else None,
        b_ub=np.zeros(len(A_ub)) if len(A_ub) else None,
        A_eq=Xs[both] if both.any() else None,
        b_eq=np.zeros(int(both.sum())) if both.any() else None,
        bounds=[(-1, 1)] * X.shape[1],
        method="highs",
    )
    if not result.success or -result.fun <= 1e-7 * max(1, len(X)):
        return []
    d = result.x
    order = np.argsort(-np.abs(d))
    return [names[j] for j in order if abs(d[j]) > 1e-7]


def warn_separation(design: Design, successes: np.ndarray, failures: np.ndarray, stacklevel: int) -> None:
    """Issue a :class:`~bayesmlm.SeparationWarning` if the fixed effects separate the outcomes."""
    columns = separated_columns(np.asarray(design.X), list(design.fixed_names), successes, failures)
    if columns:
        warnings.warn(
            f"complete or quasi-complete separation: a combination of the fixed effects {columns} "
            "predicts the outcome perfectly on some rows, so their maximum-likelihood estimates are "
            "infinite (glm and glmer warn 'fitted probabilities numerically 0 or 1'); the ML fit will "
            "report huge estimates and standard errors. Use the Bayesian fit (Model.fit(), whose "
            "Normal(0, 2.5/sd(x)) priors keep the estimates finite), or merge or drop the levels "
            "involved",
            SeparationWarning,
            stacklevel=stacklevel + 1,
        )
