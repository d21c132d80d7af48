"""Stage 3, families: the negative binomial count response (glmer.nb's NB2), log link.

Variance ``μ + μ²/θ`` with shape ``θ`` (MASS's ``theta``, brms's ``shape``, PyMC's ``alpha``): as
``θ → ∞`` it is the Poisson. The deviance residuals and the log-likelihood are those of MASS's
``negative.binomial(theta)``, which glmer.nb uses, so log-likelihoods and AICs are glmer.nb's. The
ML fit estimates ``θ`` with the other parameters (:mod:`bayesmlm.reml.glmm_optimize`); the Bayesian
fit gives it a prior. The latent-scale residual variance is ``log(1 + 1/λ + 1/θ)`` (Nakagawa, Johnson
& Schielzeth 2017).
"""

from __future__ import annotations

import numpy as np
from scipy import special

from bayesmlm.design.evaluate import Design
from bayesmlm.families.base import Family, GLMData, observed_or_weighted
from bayesmlm.families.response_checks import check_count_response

__all__ = ["NegativeBinomial"]


class NegativeBinomial(Family):
    """The negative binomial family; ``dispersion`` is the shape ``θ``.

    Examples
    --------
    >>> from bayesmlm.families.links import link_named
    >>> fam = NegativeBinomial(link_named("log"))
    >>> data = GLMData(np.array([0.0, 3.0]), np.ones(2), np.ones(2), np.ones(2), np.array([0.0, 3.0]))
    >>> fam.loglik_rows(data, np.array([1.0, 3.0]), dispersion=2.0).round(4).tolist()  # MASS::dnbinom
    [-0.8109, -1.9788]
    """

    name = "negativebinomial"
    links = ("log",)
    n_dispersion = 1
    dispersion_name = "shape"

    def check_response(self, design: Design, stacklevel: int = 2) -> None:
        """Whole numbers >= 0, not all 0, not binomial; a 0/1 response warns."""
        check_count_response(design, "negative binomial", stacklevel + 1)

    def variance(self, mu, dispersion=None):
        """``μ + μ²/θ``."""
        return mu + mu**2 / dispersion

    def deviance_residuals(self, data: GLMData, mu, dispersion=None):
        """``2 wt (y log(max(1, y)/μ) - (y + θ) log((y + θ)/(μ + θ)))``."""
        y, theta = data.y, dispersion
        return (
            2
            * data.wt
            * (y * np.log(np.maximum(1.0, y) / mu) - (y + theta) * np.log((y + theta) / (mu + theta)))
        )

    def loglik_rows(self, data: GLMData, mu, dispersion=None):
        """``wt log dnbinom(y, size = θ, mu = μ)``."""
        y, theta = data.y, dispersion
        return data.wt * (
            special.gammaln(theta + y)
            - special.gammaln(theta)
            - special.gammaln(y + 1)
            + theta * np.log(theta)
            + special.xlogy(y, mu)
            - (theta + y) * np.log(theta + mu)
        )

    def clamp_mean(self, mu):
        """Keep ``μ`` positive."""
        return np.maximum(mu, 1e-300)

    def starting_eta(self, data: GLMData):
        """R's ``mustart = y + (y == 0) / 6`` through the link."""
        return self.link.linkfun(data.y + (data.y == 0) / 6)

    def simulate(self, rng, mu, data: GLMData, dispersion=None):
        """Negative binomial counts (a gamma-Poisson mixture)."""
        theta = np.asarray(dispersion)
        return rng.poisson(rng.gamma(theta, np.asarray(mu) / theta))

    def latent_variance(self, mean_eta, re_variance, dispersion=None):
        """``log(1 + 1/λ + 1/θ)``, ``λ = exp(mean η + σ²_RE / 2)``."""
        lam = np.exp(np.asarray(mean_eta) + np.asarray(re_variance) / 2)
        return np.log1p(1 / lam + 1 / np.asarray(dispersion))

    def latent_label(self) -> str:
        """Describe the latent residual variance in words."""
        return "latent scale: residual variance log(1 + 1/λ + 1/θ), λ = exp(mean η + σ²_RE/2) (log link)"

    def pymc_likelihood(self, name, eta, data: GLMData, dispersion=None):
        """``NegativeBinomial(mu = exp(η), alpha = θ)``."""
        import pymc as pm

        params = {"mu": self.link.inverse_tensor(eta), "alpha": dispersion}
        return observed_or_weighted(name, pm.NegativeBinomial, params, data)
