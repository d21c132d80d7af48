"""Stage 3, families: link functions, the map between a response's mean and the linear predictor.

Each :class:`Link` holds the numpy functions the Laplace fit needs (``linkfun``, ``linkinv`` and
``mu_eta = dμ/dη``, clamped away from 0 and 1 as R's ``make.link`` clamps them, so penalised IRLS
never divides by zero), and builds the PyMC inverse link on demand (:meth:`Link.inverse_tensor`).
The latent-scale residual variance of a binary response under each link (Nakagawa & Schielzeth
2010; Nakagawa, Johnson & Schielzeth 2017) is :attr:`Link.latent_variance`: ``π²/3`` for logit
(the variance of the standard logistic distribution), 1 for probit (the standard normal) and ``π²/6``
for cloglog (the standard Gumbel).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy import special

from bayesmlm.exceptions import ArgumentError

__all__ = ["LINKS", "Link", "link_named"]

_EPS = np.finfo(float).eps
#: linear predictors beyond this are clamped before exp (exp(700) is near the float limit)
_ETA_MAX = 700.0


def _logit_inverse(eta: np.ndarray) -> np.ndarray:
    return np.clip(special.expit(eta), _EPS, 1 - _EPS)


def _logit_mu_eta(eta: np.ndarray) -> np.ndarray:
    e = np.exp(-np.abs(eta))
    return np.maximum(e / (1 + e) ** 2, _EPS)


def _probit_inverse(eta: np.ndarray) -> np.ndarray:
    thresh = -special.ndtri(_EPS)
    return special.ndtr(np.clip(eta, -thresh, thresh))


def _probit_mu_eta(eta: np.ndarray) -> np.ndarray:
    return np.maximum(np.exp(-0.5 * eta**2) / math.sqrt(2 * math.pi), _EPS)


def _cloglog_inverse(eta: np.ndarray) -> np.ndarray:
    return np.clip(-np.expm1(-np.exp(np.minimum(eta, _ETA_MAX))), _EPS, 1 - _EPS)


def _cloglog_mu_eta(eta: np.ndarray) -> np.ndarray:
    eta = np.minimum(eta, _ETA_MAX)
    return np.maximum(np.exp(eta - np.exp(eta)), _EPS)


def _log_inverse(eta: np.ndarray) -> np.ndarray:
    return np.maximum(np.exp(np.minimum(eta, _ETA_MAX)), _EPS)


@dataclass(frozen=True)
class Link:
    """A link function ``g`` with ``η = g(μ)``.

    Attributes
    ----------
    name : str
        ``"logit"``, ``"probit"``, ``"cloglog"``, ``"log"`` or ``"identity"``.
    linkfun, linkinv, mu_eta : callable
        ``g(μ)``, ``g⁻¹(η)`` and ``dμ/dη`` on numpy arrays.
    latent_variance : float or None
        Variance of the latent residual of a binary response under this link (None for ``log`` and
        ``identity``, where it depends on the mean).

    Examples
    --------
    >>> logit = link_named("logit")
    >>> float(logit.linkinv(np.array([0.0]))[0]), round(logit.latent_variance, 4)
    (0.5, 3.2899)
    """

    name: str
    linkfun: Callable[[np.ndarray], np.ndarray]
    linkinv: Callable[[np.ndarray], np.ndarray]
    mu_eta: Callable[[np.ndarray], np.ndarray]
    latent_variance: float | None = None

    def inverse_tensor(self, eta):
        """Apply ``g⁻¹`` to a PyTensor expression (for the PyMC likelihood)."""
        import pytensor.tensor as pt

        if self.name == "logit":
            return pt.sigmoid(eta)
        if self.name == "probit":
            return 0.5 * pt.erfc(-eta / math.sqrt(2.0))
        if self.name == "cloglog":
            return -pt.expm1(-pt.exp(eta))
        if self.name == "log":
            return pt.exp(eta)
        return eta

    def __str__(self) -> str:
        return self.name


LINKS: dict[str, Link] = {
    "logit": Link("logit", special.logit, _logit_inverse, _logit_mu_eta, math.pi**2 / 3),
    "probit": Link("probit", special.ndtri, _probit_inverse, _probit_mu_eta, 1.0),
    "cloglog": Link(
        "cloglog", lambda mu: np.log(-np.log1p(-mu)), _cloglog_inverse, _cloglog_mu_eta, math.pi**2 / 6
    ),
    "log": Link("log", np.log, _log_inverse, _log_inverse),
    "identity": Link("identity", lambda mu: mu, lambda eta: eta, np.ones_like),
}


def link_named(name: str) -> Link:
    """Return the link called ``name``; a ValueError lists the links there are.

    Examples
    --------
    >>> link_named("probit").name
    'probit'
    """
    if not isinstance(name, str) or name not in LINKS:
        raise ArgumentError(f"unknown link {name!r}; the links are {', '.join(LINKS)}")
    return LINKS[name]
