"""Stage 4b, Bayes: the result of sampling a generalized mixed model (binomial, Poisson, negative binomial).

A :class:`GeneralizedFit` is a :class:`~bayesmlm.bayes.fit.Fit` whose response has no residual sd: its
summary lists the fixed effects, the group-effect sds and correlations (link scale) and, for the
negative binomial, the ``shape``. Predictions are on the response scale (probabilities, rates) or the
link scale, or are new responses drawn from the family; a level not seen in fitting is drawn from
the population. The ICC and variance shares are on the latent scale (the family's
distribution-specific variance, stated in the result), and ``population_draws`` carries that variance
in place of ``σ²`` so that results and plots read this fit like any other.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import pandas as pd

from bayesmlm.bayes.fit import Fit
from bayesmlm.bayes.posterior import covariance_draws, flat_draws
from bayesmlm.bayes.predict import NewLevels
from bayesmlm.design.names import named_parameters
from bayesmlm.draws.arrays import ParameterDraws
from bayesmlm.draws.icc import ICC, icc_from_draws
from bayesmlm.draws.summary import interval_table
from bayesmlm.exceptions import ArgumentError, DataError
from bayesmlm.families.base import Family

__all__ = ["GeneralizedFit"]

Scale = Literal["response", "link"]


class GeneralizedFit(Fit):
    """A Bayesian fit of a generalized linear mixed model (from :meth:`bayesmlm.Model.fit`).

    Attributes
    ----------
    model : Model
    idata : xarray.DataTree
        ``posterior``, ``sample_stats``, ``observed_data`` (successes or counts) and ``log_likelihood``.
    info : dict
        Sampler settings, family and link, parameterisation, priors, timings, versions.
    """

    @property
    def family(self) -> Family:
        """The model's family."""
        return self.model.family

    def _dispersion_draws(self) -> np.ndarray | None:
        """Draws of the negative binomial's shape (samples,), or None."""
        if not self.family.n_dispersion:
            return None
        return self._stacked(self.family.dispersion_name)

    def population_draws(self) -> ParameterDraws:
        """Draws of the covariances per factor, the latent residual variance and the fixed effects."""
        covs = [covariance_draws(self.posterior, f) for f in self.structure.factors]
        fixed = self._stacked("fixed")
        latent = self.family.latent_variances(
            self.design, self.structure, covs, fixed, self._dispersion_draws()
        )
        return ParameterDraws(covs, np.asarray(latent, dtype=float), fixed)

    def parameter_draws(self, scale: Literal["sd", "var"] = "sd") -> dict[str, np.ndarray]:
        """Draws (chain, draw) of every population-level parameter under brms' names (no ``sigma``)."""
        post = self.posterior
        cors = {
            label: flat_draws(post[f"cor_{label}"])
            for f in self.structure.factors
            for label, _, size in f.blocks()
            if size > 1
        }
        out = named_parameters(
            self.structure,
            self.design.fixed_names,
            flat_draws(post["fixed"]),
            {f.group: flat_draws(post[f"sd_{f.group}"]) for f in self.structure.factors},
            cors,
            None,
            scale,
        )
        if self.family.n_dispersion:
            out[self.family.dispersion_name] = flat_draws(post[self.family.dispersion_name])
        return out

    def icc(self, at: dict | None = None, prob: float = 0.95) -> ICC:
        """Posterior of the latent-scale intraclass correlations (Nakagawa, Johnson & Schielzeth 2017).

        Each factor's variance over the total on the link scale, with the family's distribution-specific
        residual variance (``π²/3`` logit, 1 probit, ``log(1 + 1/λ)`` Poisson, ...), which
        ``icc.method`` states.
        """
        method = f"posterior; {self.family.latent_label()}"
        return icc_from_draws(self.design, self.structure, self.population_draws(), None, method, at, prob)

    # -- prediction -------------------------------------------------------------------------
    def _eta_draws(self, newdata, include_random: bool, new_levels: NewLevels, seed) -> np.ndarray:
        eta = self._mean_draws(newdata, include_random, new_levels, seed)
        if self.design.offset is None:
            return eta
        if newdata is None:
            return eta + np.asarray(self.design.offset)
        offset = np.full(len(newdata), np.nan)
        keep = ~np.isnan(eta).any(axis=0)
        if keep.any():
            offset[keep] = self.design.offset_for(newdata.loc[keep])
        return eta + offset

    def fitted(self, prob: float = 0.95) -> pd.DataFrame:
        """Posterior of the mean response (probability or rate) of the fitted rows: mean, sd, HDI."""
        return self.predict(prob=prob)

    def predict(
        self,
        newdata: pd.DataFrame | None = None,
        include_random: bool = True,
        new_levels: NewLevels = "population",
        kind: Literal["mean", "response"] = "mean",
        prob: float = 0.95,
        return_draws: bool = False,
        seed: int | None = None,
        scale: Scale = "response",
    ):
        """Predict the mean (probability or rate), the linear predictor, or new responses.

        Parameters
        ----------
        newdata : DataFrame, optional
            Rows to predict (the fitted rows if omitted); an offset is evaluated on them.
        include_random : bool
            Include the group effects (else the population-level predictor).
        new_levels : {"population", "error"}
            An unseen level's effects are drawn from the population distribution, or raise DataError.
        kind : {"mean", "response"}
            The mean (``scale="response"``: a probability or rate; ``"link"``: the linear predictor), or
            new responses drawn from the family (successes or counts).
        prob : float
            HDI probability.
        return_draws : bool
            Return the draws (samples, rows) instead of a summary table.
        seed : int, optional
            Seed for new-level effects and new responses.
        scale : {"response", "link"}

        Returns
        -------
        DataFrame or ndarray
        """
        if new_levels not in ("population", "error"):
            raise ArgumentError(f"new_levels must be 'population' or 'error', not {new_levels!r}")
        if scale not in ("response", "link") or kind not in ("mean", "response"):
            raise ArgumentError(
                f"kind must be 'mean' or 'response' and scale 'response' or 'link', not {kind!r}, {scale!r}"
            )
        draws = self._eta_draws(newdata, include_random, new_levels, seed)
        if kind == "mean" and scale == "link":
            pass
        elif kind == "mean":
            draws = self.family.link.linkinv(draws)
        else:
            draws = self._simulate(self.family.link.linkinv(draws), newdata, seed)
        if return_draws:
            return draws
        index = self.design.rows if newdata is None else newdata.index
        return interval_table(draws, index, prob)

    def _simulate(self, mu: np.ndarray, newdata, seed) -> np.ndarray:
        data = self.family.glm_data(self.design)
        if newdata is not None:
            if np.any(data.n != 1):
                raise DataError(
                    "new responses of a binomial model with trials need each new row's trials; predict "
                    "the probability (kind='mean') and multiply, or pass the trials as rows of the model"
                )
            ones = np.ones(len(newdata))
            data = type(data)(ones, ones, ones, ones, ones)
        rng = np.random.default_rng(None if seed is None else seed + 1)
        shape = self._dispersion_draws()
        out = self.family.simulate(
            rng, np.nan_to_num(mu, nan=0.5), data, None if shape is None else shape[:, None]
        )
        return np.where(np.isnan(mu), np.nan, out.astype(float))

    def __repr__(self) -> str:
        return (
            f"<bayesmlm.GeneralizedFit {self.family!r} {self.model.spec.formula}: {self.info.get('chains')} "
            f"chains x {self.info.get('draws')} draws ({self.info.get('sampler')})>"
        )
