"""Stage 4b, Bayes: what the collapsed path runs on, without PyMC: when it applies, its statistics.

The pieces of :mod:`bayesmlm.bayes.collapsed` that need no PyTensor graph, so that a fit whose
collapsed density is written out (:mod:`bayesmlm.bayes.direct`) never imports PyMC: the rule for
when the group effects are integrated out, the centring of the predictors and the response, and the
per-group cross-products formed with that centring.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from bayesmlm.design.covariance import RandomStructure
from bayesmlm.design.crossprod import CrossProducts, cross_products
from bayesmlm.design.evaluate import Design
from bayesmlm.design.moments import fixed_moments
from bayesmlm.exceptions import ArgumentError, FitError

__all__ = [
    "MAX_DENSE",
    "Standardised",
    "centred_cross_products",
    "choose_method",
    "collapsed_plan",
    "intercept_for_stats",
    "predictor_shift",
]

#: most columns of the dense (non-first-factor) part for which the collapsed path is used
MAX_DENSE = 200


def collapsed_plan(structure: RandomStructure) -> tuple[bool, str]:
    """Whether the collapsed path applies to this structure, and why (a sentence for ``fit.info``).

    Examples
    --------
    >>> import bayesmlm as bm
    >>> m = bm.Model("Reaction ~ Days + (Days | Subject)", bm.load_dataset("sleepstudy"))
    >>> collapsed_plan(m.structure)
    (True, 'one grouping factor: per-group 2x2 blocks, no dense part')
    """
    first, rest = structure.factors[0], structure.factors[1:]
    if not rest:
        return True, f"one grouping factor: per-group {first.q}x{first.q} blocks, no dense part"
    dense = sum(f.n_levels * f.q for f in rest)
    names = ", ".join(f.group for f in rest)
    if dense > MAX_DENSE:
        return False, (
            f"the factors after {first.group} ({names}) have {dense} effects in all, more than "
            f"{MAX_DENSE} for the dense part of the collapsed likelihood; the full model is faster"
        )
    return True, (f"per-level blocks for {first.group} and a dense {dense}x{dense} block for {names}")


def choose_method(structure: RandomStructure, method: str) -> tuple[bool, str]:
    """Decide whether ``method`` (``"auto"``, ``"collapsed"`` or ``"full"``) is collapsed; say why."""
    if method not in ("auto", "collapsed", "full"):
        raise ArgumentError(f"method must be 'auto', 'collapsed' or 'full', not {method!r}")
    possible, reason = collapsed_plan(structure)
    if method == "collapsed" and not possible:
        raise FitError(f"the collapsed path is not available for this model: {reason}")
    if method == "full":
        return False, "requested with method='full'"
    return possible if method == "auto" else True, reason


def predictor_shift(design: Design) -> np.ndarray:
    """Column means subtracted from the predictors before sampling (zeros without an intercept).

    The sampled fixed effects are those of the centred predictors, whose intercept is the mean
    response at average predictors: nearly uncorrelated with the slopes, so NUTS mixes better.
    """
    if "Intercept" not in design.fixed_names or not design.n:
        return np.zeros(design.p)
    means = fixed_moments(design).mean
    return np.where(np.array([n != "Intercept" for n in design.fixed_names]), means, 0.0)


def centred_cross_products(design: Design, structure: RandomStructure) -> CrossProducts:
    """Cross-products with the predictors centred as the sampled fixed effects expect.

    The response is centred too when there is an intercept: its ``y'y`` would cancel for a response
    like ``y + 1e9`` (the posterior sigma was 36 instead of 26).
    """
    y_shift = float(np.mean(design.y)) if "Intercept" in design.fixed_names else 0.0
    centred = dataclasses.replace(design, y=np.asarray(design.y) - y_shift) if y_shift else design
    stats = cross_products(centred, structure, shift=predictor_shift(design))
    return dataclasses.replace(stats, response_shift=y_shift)


def intercept_for_stats(coef, design: Design, stats: CrossProducts):
    """Return the fixed effects the statistics expect: the intercept less the response's shift.

    ``coef`` may be draws (..., p) or a PyTensor vector: the shift is subtracted as a vector.
    """
    if not stats.response_shift:
        return coef
    shift = np.zeros(len(design.fixed_names))
    shift[list(design.fixed_names).index("Intercept")] = stats.response_shift
    return coef - shift


@dataclasses.dataclass(frozen=True, eq=False)
class Standardised:
    """What the sampler sees: the response divided by ``scale``, and its cross-products if collapsed."""

    scale: float
    design: Design
    stats: CrossProducts | None
