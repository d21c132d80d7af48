"""Stage 3, families: what every generalized family provides, and the response data it reads.

A :class:`Family` is the response distribution with its link, as one object that both fitting stages
read: the Laplace/PIRLS fit (:mod:`bayesmlm.reml.pirls`) takes the variance function, the deviance
residuals, the IRLS weights and the log-likelihood with its constants (lme4's ``aic``: ``-2 ×`` this
sum, so log-likelihoods and AICs match glmer's); the Bayesian model (:mod:`bayesmlm.bayes.glmm_model`)
takes the PyMC likelihood term; prediction takes :meth:`Family.simulate`; the latent-scale ICC takes
:meth:`Family.latent_variance`. Everything here is numpy; PyMC is imported only to build the term.

The numbers follow R's ``glm`` families, which glmer uses: a binomial response is its proportion of
successes ``y = s/n`` with weight ``wt = n × prior weight``; a count is itself with ``wt`` the prior
weight.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from bayesmlm.design.evaluate import Design
from bayesmlm.families.links import Link

__all__ = ["Family", "GLMData", "observed_or_weighted"]


@dataclass(frozen=True, eq=False)
class GLMData:
    """A design's response as a generalized family reads it.

    Attributes
    ----------
    y : ndarray
        The response on the model's scale: proportions for a binomial family, counts otherwise.
    n : ndarray
        Trials per row (ones except for a binomial response with trials).
    prior_weights : ndarray
        The user's prior weights (ones without ``weights=``).
    wt : ndarray
        ``n × prior_weights``: R's ``weights`` of a GLM.
    observed : ndarray
        The response as observed: successes (binomial) or counts.
    """

    y: np.ndarray
    n: np.ndarray
    prior_weights: np.ndarray
    wt: np.ndarray
    observed: np.ndarray

    @property
    def weighted(self) -> bool:
        """Whether any prior weight differs from 1."""
        return bool(np.any(self.prior_weights != 1.0))


class Family:
    """Base of the generalized families (binomial, Poisson, negative binomial).

    Subclasses set :attr:`name`, :attr:`links` (the first is the default) and implement the numpy
    pieces below. A family with a dispersion parameter (the negative binomial's shape ``θ``) has
    ``n_dispersion = 1`` and takes it as ``dispersion``; the others ignore that argument.
    """

    name: str = ""
    links: tuple[str, ...] = ()
    #: False only for the Gaussian family, whose fits take the linear mixed model's path
    generalized: bool = True
    n_dispersion: int = 0
    #: the name of the dispersion parameter in summaries and priors (brms' name)
    dispersion_name: str | None = None

    def __init__(self, link: Link):
        self.link = link

    # -- the response ---------------------------------------------------------------------------
    def glm_data(self, design: Design) -> GLMData:
        """Read the design's response (after :meth:`check_response`)."""
        y = np.asarray(design.y, dtype=float)
        pw = np.ones_like(y) if design.weights is None else np.asarray(design.weights, dtype=float)
        return GLMData(y, np.ones_like(y), pw, pw, y)

    def check_response(self, design: Design, stacklevel: int = 2) -> None:
        """Raise :class:`~bayesmlm.DataError` (or warn) for a response this family cannot model."""
        raise NotImplementedError

    # -- GLM pieces (numpy; ``dispersion`` only for a family that has one) ---------------------------
    def variance(self, mu: np.ndarray, dispersion: float | None = None) -> np.ndarray:
        """Variance function ``V(μ)``."""
        raise NotImplementedError

    def deviance_residuals(self, data: GLMData, mu: np.ndarray, dispersion: float | None = None):
        """Squared deviance residual of each row (R's ``dev.resids``); their sum is the deviance."""
        raise NotImplementedError

    def loglik_rows(self, data: GLMData, mu: np.ndarray, dispersion: float | None = None) -> np.ndarray:
        """Log-likelihood of each row, with every constant, times its prior weight (``-aic / 2`` summed)."""
        raise NotImplementedError

    def irls_weights(self, data: GLMData, eta: np.ndarray, dispersion: float | None = None):
        """Return ``(μ, dμ/dη, IRLS weights wt (dμ/dη)² / V(μ))`` at the linear predictor ``η``."""
        mu = self.link.linkinv(eta)
        d = self.link.mu_eta(eta)
        return mu, d, data.wt * d**2 / self.variance(mu, dispersion)

    def saturated_loglik(self, data: GLMData, dispersion: float | None = None) -> float:
        """Return the log-likelihood at ``μ = y``: ``loglik = saturated - deviance / 2`` for every ``μ``."""
        mu = self.clamp_mean(data.y)
        return float(
            np.sum(self.loglik_rows(data, mu, dispersion))
            + 0.5 * np.sum(self.deviance_residuals(data, mu, dispersion))
        )

    def clamp_mean(self, mu: np.ndarray) -> np.ndarray:
        """Keep a mean inside the family's open support (for ``μ = y`` at a boundary)."""
        return mu

    def starting_eta(self, data: GLMData) -> np.ndarray:
        """Return a linear predictor to start IRLS from (R's ``mustart`` through the link)."""
        raise NotImplementedError

    # -- prediction and the latent scale --------------------------------------------------------------
    def simulate(self, rng: np.random.Generator, mu: np.ndarray, data: GLMData, dispersion=None):
        """Draw responses on the observed scale (successes or counts) with means ``mu`` (any shape)."""
        raise NotImplementedError

    def latent_variance(self, mean_eta: np.ndarray, re_variance: np.ndarray, dispersion=None):
        """Return the distribution-specific variance on the latent (link) scale, per draw.

        Nakagawa, Johnson & Schielzeth (2017): ``π²/3`` for logit, 1 for probit, ``π²/6`` for
        cloglog; ``log(1 + 1/λ)`` for a Poisson count with ``λ = exp(mean η + σ²_RE / 2)``;
        ``log(1 + 1/λ + 1/θ)`` for a negative binomial one.
        """
        raise NotImplementedError

    def latent_label(self) -> str:
        """How the latent residual variance is computed, for the ICC's note."""
        raise NotImplementedError

    def latent_variances(self, design: Design, structure, covariances, fixed, dispersion=None) -> np.ndarray:
        """Return the latent residual variance of each draw (or estimate), for the ICC and variance shares.

        ``covariances`` are per factor ``(S, q, q)``, ``fixed`` ``(S, p)``, ``dispersion`` ``(S,)``;
        the mean linear predictor is that of the fixed part (with the offset) over the rows used, and
        the random-effect variance each factor's ``z'Σz`` averaged over the rows.
        """
        X = np.asarray(design.X)
        offset = 0.0 if design.offset is None else float(np.mean(design.offset))
        mean_eta = np.asarray(fixed) @ X.mean(axis=0) + offset if design.p else np.full(len(fixed), offset)
        re_variance = sum(
            np.einsum("sij,ji->s", c, f.Z.T @ f.Z / len(f.Z))
            for f, c in zip(structure.factors, covariances, strict=True)
        )
        return self.latent_variance(mean_eta, re_variance, dispersion)

    # -- the Bayesian likelihood ----------------------------------------------------------------------
    def pymc_likelihood(self, name: str, eta, data: GLMData, dispersion=None):
        """Add the observed response to the current PyMC model (a Potential when weights are given)."""
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{self.name}(link={self.link.name})"

    def __eq__(self, other) -> bool:
        return isinstance(other, Family) and (self.name, self.link.name) == (other.name, other.link.name)

    def __hash__(self) -> int:
        return hash((self.name, self.link.name))


def observed_or_weighted(name: str, distribution, params: dict, data: GLMData):
    """Add the observed response ``name`` with PyMC's ``distribution(**params)`` to the current model.

    Without prior weights it is an observed variable (dims ``obs``); with them, the weighted
    log-likelihood ``Σ w_i log p(y_i)`` as a ``pm.Potential`` (PyMC's observed variables take no
    weights). The pointwise log-likelihood for LOO is computed from the family either way.
    """
    import pymc as pm

    observed = np.asarray(data.observed, dtype=np.int64)
    if not data.weighted:
        return distribution(name, **params, observed=observed, dims="obs")
    logp = pm.logp(distribution.dist(**params), observed)
    return pm.Potential(name, (np.asarray(data.prior_weights) * logp).sum())
