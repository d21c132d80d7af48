"""Stage 4b, Bayes: the prior families' log densities and their derivatives, in numpy.

The closed set of families a prior can take (:data:`bayesmlm.bayes.priors._FAMILIES`: Normal, StudentT,
HalfNormal, HalfStudentT, HalfCauchy, Exponential) written out as PyMC writes them, normalising
constants included, so that :mod:`bayesmlm.bayes.direct_density` can evaluate the collapsed posterior
without building a PyTensor graph. ``tests/test_direct_density.py`` holds each family to PyMC's
``logp`` and its gradient.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.special import gammaln

from bayesmlm.bayes.priors import Prior

__all__ = ["PriorDensity"]

_HALF_LOG_2PI = 0.5 * math.log(2.0 * math.pi)


class PriorDensity:
    """Independent priors on the entries of a vector (each entry its own :class:`Prior`).

    ``PriorDensity(priors)(x)`` returns ``(sum of log densities, gradient)``. Entries are grouped by
    family so that one evaluation costs a few vectorised numpy operations.

    Examples
    --------
    >>> from bayesmlm.bayes.priors import Normal, HalfNormal
    >>> lp, grad = PriorDensity([Normal(0.0, 1.0), Normal(1.0, 2.0)])(np.array([0.0, 1.0]))
    >>> round(lp, 6), grad.tolist()
    (-2.531024, [-0.0, -0.0])
    >>> lp, grad = PriorDensity([HalfNormal(1.0)])(np.array([1.0]))
    >>> round(lp, 6), grad.tolist()
    (-0.725791, [-1.0])
    """

    def __init__(self, priors: list[Prior]):
        self.size = len(priors)
        groups: dict[str, list[int]] = {}
        for k, prior in enumerate(priors):
            groups.setdefault(prior.family, []).append(k)
        self._parts = []
        for family, idx in groups.items():
            params = {
                n: np.array([dict(priors[k].params)[n] for k in idx], dtype=float)
                for n, _ in priors[idx[0]].params
            }
            self._parts.append((family, np.array(idx), params, _constant(family, params)))

    def __call__(self, x: np.ndarray) -> tuple[float, np.ndarray]:
        """Log density of ``x`` (entries of the support) and its gradient."""
        grad = np.empty(self.size)
        total = 0.0
        for family, idx, params, const in self._parts:
            lp, g = _FUNCTIONS[family](x[idx], params)
            total += const + lp
            grad[idx] = g
        return total, grad


def _constant(family: str, p: dict[str, np.ndarray]) -> float:
    """Return the part of the log density that does not depend on the value."""
    if family == "Normal":
        return float(np.sum(-np.log(p["sigma"]) - _HALF_LOG_2PI))
    if family == "HalfNormal":
        return float(np.sum(0.5 * math.log(2.0 / math.pi) - np.log(p["sigma"])))
    if family in ("StudentT", "HalfStudentT"):
        nu = p["nu"]
        c = gammaln((nu + 1.0) / 2.0) - gammaln(nu / 2.0) - 0.5 * np.log(nu * math.pi) - np.log(p["sigma"])
        return float(np.sum(c + (math.log(2.0) if family == "HalfStudentT" else 0.0)))
    if family == "HalfCauchy":
        return float(np.sum(math.log(2.0 / math.pi) - np.log(p["beta"])))
    if family == "Exponential":
        return float(np.sum(np.log(p["lam"])))
    raise ValueError(f"no numpy density for the prior family {family!r}")


def _normal(x, p):
    z = (x - p.get("mu", 0.0)) / p["sigma"]
    return float(-0.5 * np.dot(z, z)), -z / p["sigma"]


def _student_t(x, p):
    nu, s = p["nu"], p["sigma"]
    z = (x - p.get("mu", 0.0)) / s
    return float(np.sum(-0.5 * (nu + 1.0) * np.log1p(z * z / nu))), -(nu + 1.0) * z / (s * (nu + z * z))


def _half_cauchy(x, p):
    b = p["beta"]
    return float(-np.sum(np.log1p((x / b) ** 2))), -2.0 * x / (b * b + x * x)


def _exponential(x, p):
    lam = p["lam"]
    return float(-np.dot(lam, x)), -lam


_FUNCTIONS = {
    "Normal": _normal,
    "HalfNormal": _normal,
    "StudentT": _student_t,
    "HalfStudentT": _student_t,
    "HalfCauchy": _half_cauchy,
    "Exponential": _exponential,
}
