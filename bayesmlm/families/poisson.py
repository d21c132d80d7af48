"""Stage 3, families: the Poisson count response, log link (``offset(log(exposure))`` for rates).

As R's ``poisson()``: variance ``μ``, deviance residuals ``2 wt (y log(y/μ) - (y - μ))`` and the
log-likelihood with its ``log y!`` constant, so log-likelihoods and AICs are glmer's. The checks of
the response (whole numbers >= 0, some non-zero, not a binomial response; a 0/1 response warns) are
:func:`~bayesmlm.families.response_checks.check_count_response`. The latent-scale residual variance
(Nakagawa, Johnson & Schielzeth 2017, the lognormal approximation) is ``log(1 + 1/λ)`` with ``λ`` the
mean count at the average linear predictor, ``exp(mean η + σ²_RE / 2)``.
"""

from __future__ import annotations

import numpy as np
from scipy import special

from bayesmlm.design.evaluate import Design
from bayesmlm.families.base import Family, GLMData, observed_or_weighted
from bayesmlm.families.response_checks import check_count_response

__all__ = ["Poisson"]


class Poisson(Family):
    """The Poisson family.

    Examples
    --------
    >>> from bayesmlm.families.links import link_named
    >>> fam = Poisson(link_named("log"))
    >>> data = GLMData(np.array([0.0, 3.0]), np.ones(2), np.ones(2), np.ones(2), np.array([0.0, 3.0]))
    >>> fam.loglik_rows(data, np.array([1.0, 3.0])).round(4).tolist()  # log dpois(0, 1), log dpois(3, 3)
    [-1.0, -1.4959]
    """

    name = "poisson"
    links = ("log",)

    def check_response(self, design: Design, stacklevel: int = 2) -> None:
        """Whole numbers >= 0, not all 0, not binomial; a 0/1 response warns."""
        check_count_response(design, self.name, stacklevel + 1)

    def variance(self, mu, dispersion=None):
        """``μ``."""
        return mu

    def deviance_residuals(self, data: GLMData, mu, dispersion=None):
        """``2 wt (y log(y/μ) - (y - μ))``."""
        y = data.y
        return 2 * data.wt * (special.xlogy(y, y) - y * np.log(mu) - (y - mu))

    def loglik_rows(self, data: GLMData, mu, dispersion=None):
        """``wt log dpois(y, μ)``."""
        y = data.y
        return data.wt * (special.xlogy(y, mu) - mu - special.gammaln(y + 1))

    def clamp_mean(self, mu):
        """Keep ``μ`` positive."""
        return np.maximum(mu, 1e-300)

    def starting_eta(self, data: GLMData):
        """R's ``mustart = y + 0.1`` through the link."""
        return self.link.linkfun(data.y + 0.1)

    def simulate(self, rng, mu, data: GLMData, dispersion=None):
        """Poisson counts."""
        return rng.poisson(mu)

    def latent_variance(self, mean_eta, re_variance, dispersion=None):
        """``log(1 + 1/λ)``, ``λ = exp(mean η + σ²_RE / 2)``."""
        return np.log1p(np.exp(-(np.asarray(mean_eta) + np.asarray(re_variance) / 2)))

    def latent_label(self) -> str:
        """Describe the latent residual variance in words."""
        return "latent scale: residual variance log(1 + 1/λ), λ = exp(mean η + σ²_RE/2) (log link)"

    def pymc_likelihood(self, name, eta, data: GLMData, dispersion=None):
        """``Poisson(exp(η))``."""
        import pymc as pm

        return observed_or_weighted(name, pm.Poisson, {"mu": self.link.inverse_tensor(eta)}, data)
