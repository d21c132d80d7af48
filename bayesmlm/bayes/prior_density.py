"""Stage 4b, Bayes: the prior families as the compiled direct density reads them.

The closed set of families a prior can take (Normal, StudentT, HalfNormal, HalfStudentT, HalfCauchy,
Exponential; :mod:`bayesmlm.bayes.priors`) packed for :func:`bayesmlm.bayes.direct_kernel.density_kernel`:
a family code, its parameters as one row, and the part of the log density that does not depend on the
value (PyMC's normalising constants), added once per evaluation. ``tests/test_direct_density.py`` holds
the result to PyMC's ``logp`` and its gradient.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.special import gammaln

from bayesmlm.bayes.direct_kernel import FAMILY_CODES
from bayesmlm.bayes.priors import Prior

__all__ = ["SUPPORTED_FAMILIES", "packed_priors"]

SUPPORTED_FAMILIES = frozenset(FAMILY_CODES)


def packed_priors(priors: list[Prior]) -> tuple[np.ndarray, np.ndarray, float]:
    """Return the family codes, the parameter rows (n, 3) and the summed constants of ``priors``.

    Examples
    --------
    >>> from bayesmlm.bayes.priors import Normal, HalfStudentT
    >>> codes, params, constant = packed_priors([Normal(0.0, 1.0), HalfStudentT(3.0, 2.0)])
    >>> codes.tolist(), params.tolist(), round(constant, 6)
    ([0, 3], [[0.0, 1.0, 0.0], [3.0, 2.0, 0.0]], -1.919827)
    """
    codes = np.array([FAMILY_CODES[p.family] for p in priors], dtype=np.int64)
    params = np.zeros((len(priors), 3))
    for k, p in enumerate(priors):
        values = [v for _, v in p.params]
        params[k, : len(values)] = values
    return codes, params, float(sum(_constant(p.family, dict(p.params)) for p in priors))


def _constant(family: str, p: dict[str, float]) -> float:
    """Return the part of one log density that does not depend on the value."""
    if family == "Normal":
        return -math.log(p["sigma"]) - 0.5 * math.log(2.0 * math.pi)
    if family == "HalfNormal":
        return 0.5 * math.log(2.0 / math.pi) - math.log(p["sigma"])
    if family in ("StudentT", "HalfStudentT"):
        nu = p["nu"]
        c = (
            gammaln((nu + 1.0) / 2.0)
            - gammaln(nu / 2.0)
            - 0.5 * math.log(nu * math.pi)
            - math.log(p["sigma"])
        )
        return float(c) + (math.log(2.0) if family == "HalfStudentT" else 0.0)
    if family == "HalfCauchy":
        return math.log(2.0 / math.pi) - math.log(p["beta"])
    if family == "Exponential":
        return math.log(p["lam"])
    raise ValueError(f"no density for the prior family {family!r}")
