"""Stage 4b, Bayes: the result of sampling: posterior summaries, group effects, predictions, LOO.

A :class:`Fit` holds the ArviZ 1.x ``DataTree`` (posterior, sample_stats, observed data, and the
pointwise log-likelihood) with coordinates named by the real level labels and term names, the
:class:`~bayesmlm.Model` it came from, and ``info``: a record of how the fit was made. It shows the
same read-only faces as a :class:`~bayesmlm.reml.fit.LikelihoodFit` (``design``, ``structure``,
``estimate_label``, ``fixed_estimates``, ``coefficients``, ``population_draws``,
``group_effect_intervals``, ``line_draws``), so results and plots serve both without asking which.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
import xarray as xr

from bayesmlm.arguments import checked_methods, choice, probability
from bayesmlm.bayes import group_draws as gd
from bayesmlm.bayes.diagnostics import diagnostics_table
from bayesmlm.bayes.posterior import covariance_draws, flat_draws, stacked_draws, summarise_parameters
from bayesmlm.bayes.predict import NewLevels, mean_draws
from bayesmlm.bayes.saved import save_fit
from bayesmlm.design.covariance import RandomStructure
from bayesmlm.design.evaluate import Design
from bayesmlm.design.names import named_parameters
from bayesmlm.draws.arrays import ParameterDraws
from bayesmlm.draws.icc import ICC, icc_from_draws, variance_decomposition
from bayesmlm.draws.r2 import R2, r2_from_draws
from bayesmlm.draws.summary import Table, interval_table

__all__ = ["Fit"]


@checked_methods
class Fit:
    """A Bayesian fit of a linear mixed model (from :meth:`bayesmlm.Model.fit`).

    Attributes
    ----------
    model : Model
    idata : xarray.DataTree
        ArviZ data: ``posterior``, ``sample_stats``, ``observed_data``, ``log_likelihood``.
    info : dict
        Sampler, draws, chains, seed, parameterisation per block, timings and package versions.
    """

    def __init__(self, model, idata, info: dict):
        self.model = model
        self.idata = idata
        self.info = info

    # -- the faces every kind of fit shows (read by results and plots) -------------------------
    @property
    def design(self) -> Design:
        """The model's design."""
        return self.model.design

    @property
    def structure(self) -> RandomStructure:
        """The model's random-effects structure."""
        return self.model.structure

    @property
    def estimate_label(self) -> str:
        """What the point estimates are, for titles: ``"posterior means"``."""
        return "posterior means"

    def fixed_estimates(self) -> pd.Series:
        """Posterior means of the fixed effects, indexed by term."""
        names = pd.Index(self.design.fixed_names, name="term")
        return pd.Series(self._stacked("fixed").mean(axis=0), index=names)

    def coefficients(self, group: str | None = None) -> pd.DataFrame:
        """Posterior means of the group-specific coefficients (fixed effect + group effect), per level.

        Columns are every fixed effect and random term (as lme4's ``coef``); indexed by level.
        """
        f = self.structure.factor(group)
        fixed = self.fixed_estimates()
        out = pd.DataFrame(
            np.tile(fixed.to_numpy(), (f.n_levels, 1)),
            index=pd.Index(f.levels, name=f.group),
            columns=fixed.index.rename(None),
        )
        means = np.concatenate([r.mean(axis=0) for _, r in gd.effects_of(self, f).chunks()])
        for k, name in enumerate(f.term_names):
            out[name] = out[name] + means[:, k] if name in out else means[:, k]
        return out

    def population_draws(self) -> ParameterDraws:
        """Posterior draws of the covariances per factor, the residual variance and the fixed effects."""
        covs = [covariance_draws(self.posterior, f) for f in self.structure.factors]
        return ParameterDraws(covs, self._stacked("sigma") ** 2, self._stacked("fixed"))

    def group_effect_intervals(self, group: str | None, term: str, prob: float) -> tuple[pd.DataFrame, str]:
        """Each level's effect on ``term``: posterior mean and HDI; and how the interval was made."""
        f = self.structure.factor(group)
        table = self.random_effects(f.group, prob=prob).xs(term, level="term")
        frame = pd.DataFrame({"estimate": table["mean"], "low": table["hdi_low"], "high": table["hdi_high"]})
        return frame, f"{prob:.0%} HDI"

    def line_draws(self, group: str | None, level: int, X: np.ndarray, Z: np.ndarray) -> np.ndarray:
        """Draws (samples, rows) of one group's mean response on rows with columns ``X`` and ``Z``."""
        f = self.structure.factor(group)
        r = gd.effects_of(self, f).draws([level])[:, 0, :]  # (S, q)
        return self._stacked("fixed") @ X.T + r @ Z.T

    # -- draws --------------------------------------------------------------------------------
    @property
    def posterior(self) -> xr.Dataset:
        """The posterior group as an xarray Dataset."""
        return self.idata["posterior"].to_dataset()

    def parameter_draws(self, scale: Literal["sd", "var"] = "sd") -> dict[str, np.ndarray]:
        """Draws (chain, draw) of every population-level parameter under brms' names.

        With ``scale="var"``, variances and covariances under statsmodels' names are added.
        """
        post = self.posterior
        structure = self.model.structure
        cors = {
            label: flat_draws(post[f"cor_{label}"])
            for f in structure.factors
            for label, _, size in f.blocks()
            if size > 1
        }
        return named_parameters(
            structure,
            self.model.design.fixed_names,
            flat_draws(post["fixed"]),
            {f.group: flat_draws(post[f"sd_{f.group}"]) for f in structure.factors},
            cors,
            flat_draws(post["sigma"]),
            scale,
        )

    def summary(self, prob: float = 0.95, scale: Literal["sd", "var"] = "sd") -> pd.DataFrame:
        """Posterior summary of the population-level parameters, rows named as brms names them.

        Parameters
        ----------
        prob : float
            Probability mass of the highest-density interval.
        scale : {"sd", "var"}
            ``"var"`` adds variances and covariances under statsmodels' names (``Subject Var``,
            ``Subject x Days Cov``, ``Scale``) to sit beside statsmodels or REML output.

        Returns
        -------
        DataFrame
            Columns mean, sd, hdi_low, hdi_high, rhat, ess_bulk, ess_tail, mcse_mean.
        """
        return Table(summarise_parameters(self.parameter_draws(scale), prob))

    def diagnostics(self, internal: bool = False) -> pd.DataFrame:
        """R-hat, bulk and tail ESS and MCSE of every population-level parameter, by its summary name.

        Parameters
        ----------
        internal : bool
            Every sampled quantity instead, by PyMC's names (``chol__Subject[0]``, ``z__Subject``...).
        """
        if internal:
            return Table(diagnostics_table(self.idata))
        return Table(self.summary()[["rhat", "ess_bulk", "ess_tail", "mcse_mean"]])

    # -- variance shares ------------------------------------------------------------------------
    def icc(self, at: dict | None = None, prob: float = 0.95) -> ICC:
        """Posterior distribution of the intraclass correlations.

        Per grouping factor, its share of the variance where the random-slope covariates are ``at``
        (default 0); for models with random slopes also the adjusted and conditional ICCs of
        Nakagawa et al. (2017). See :mod:`bayesmlm.draws.icc`.

        Parameters
        ----------
        at : dict, optional
            Random-slope covariate values, e.g. ``{"Days": 5}``.
        prob : float
            HDI probability.

        Returns
        -------
        ICC
            ``icc["Subject"]`` is the posterior median; ``icc.summary`` has mean, median, HDI and the
            interpretation band; ``icc.draws`` one row per posterior draw.
        """
        return icc_from_draws(
            self.design, self.structure, self.population_draws(), None, "posterior", at, prob
        )

    def r2(self, prob: float = 0.95) -> R2:
        """Posterior distribution of Nakagawa's marginal and conditional R² (:mod:`bayesmlm.draws.r2`).

        ``r2["marginal"]`` is the posterior median; ``r2.summary`` has the mean, median and HDI.
        """
        return r2_from_draws(self.design, self.structure, self.population_draws(), None, prob)

    def variance_decomposition(self, prob: float = 0.95) -> pd.DataFrame:
        """Each variance component's share of the total variance (see :mod:`bayesmlm.draws.icc`)."""
        return variance_decomposition(self.design, self.structure, self.population_draws(), prob)

    # -- group effects ------------------------------------------------------------------------
    def random_effects(self, group: str | None = None, prob: float = 0.95) -> pd.DataFrame:
        """Each level's deviations and group-specific coefficients (fixed + random).

        Parameters
        ----------
        group : str, optional
            Grouping factor (needed when the model has several).
        prob : float
            HDI probability.

        Returns
        -------
        DataFrame
            Indexed by (level, term); columns ``mean, sd, hdi_low, hdi_high`` for the deviation and
            ``coef_mean, coef_sd, coef_hdi_low, coef_hdi_high`` for fixed effect + deviation.
        """
        f = self.model.structure.factor(group)
        source, fixed = gd.effects_of(self, f), self._stacked("fixed")
        return gd.random_effects_table(source, f, fixed, self.design.fixed_names, probability("prob", prob))

    def group_effect_draws(self, group: str | None = None, levels=None) -> xr.DataArray:
        """Draws (chain, draw, level, term) of a factor's group effects: of every level, or of ``levels``.

        A fit with ``group_effects="on_demand"`` draws those of ``levels`` (labels) when asked, the same
        numbers every time (:mod:`bayesmlm.bayes.group_draws`); every level at once raises
        :class:`~bayesmlm.GroupEffectsNotStoredError` there.
        """
        return gd.group_effect_draws(self, self.structure.factor(group), levels)

    # -- prediction -------------------------------------------------------------------------
    def _stacked(self, name: str) -> np.ndarray:
        """Draws of a posterior variable with chains and draws merged: (samples, ...)."""
        if name.startswith("r_") and not gd.stored(self):
            raise gd.not_stored(f"reading the posterior's {name}", name[2:])
        return stacked_draws(self.posterior, name)

    def _mean_draws(self, newdata, include_random: bool, new_levels: NewLevels, seed) -> np.ndarray:
        effects = None if gd.stored(self) else (lambda f, used: gd.effects_of(self, f).draws(used))
        post = self.posterior
        return mean_draws(
            post, self.design, self.structure, newdata, include_random, new_levels, seed, effects
        )

    def fitted(self, prob: float = 0.95) -> pd.DataFrame:
        """Posterior of the mean response for the fitted rows: mean, sd and HDI per row."""
        self.design.require_rows("fitted()")
        return interval_table(self._mean_draws(None, True, "population", None), self.model.design.rows, prob)

    def predict(
        self,
        newdata: pd.DataFrame | None = None,
        include_random: bool = True,
        new_levels: NewLevels = "population",
        kind: Literal["mean", "response"] = "mean",
        prob: float = 0.95,
        return_draws: bool = False,
        seed: int | None = None,
    ):
        """Predict the mean (or new observations) for new data, with intervals or draws.

        Parameters
        ----------
        newdata : DataFrame, optional
            Rows to predict (the fitted rows if omitted).
        include_random : bool
            Include the group effects (else population-level predictions).
        new_levels : {"population", "error"}
            An unseen level's effects are drawn from the population distribution, or raise DataError.
        kind : {"mean", "response"}
            The expected response, or a new observation (adds residual noise: sd ``σ / √w_i`` on the
            fitted rows of a model with prior weights ``w``, and ``σ``, the sd of a row of weight 1,
            on ``newdata``).
        prob : float
            HDI probability.
        return_draws : bool
            Return the draws, shape (samples, rows), instead of a summary table.
        seed : int, optional
            Seed for new-level effects and residual noise.

        Returns
        -------
        DataFrame or ndarray
        """
        choice("new_levels", new_levels, ("population", "error"))
        choice("kind", kind, ("mean", "response"))
        prob = probability("prob", prob)
        if newdata is None:
            self.design.require_rows("predict() for the fitted rows (predict(newdata) works)")
        draws = self._mean_draws(newdata, include_random, new_levels, seed)
        if kind == "response":
            rng = np.random.default_rng(None if seed is None else seed + 1)
            noise = rng.standard_normal(draws.shape) * self._stacked("sigma")[:, None]
            weights = getattr(self.design, "weights", None) if newdata is None else None
            draws = draws + (noise if weights is None else noise / np.sqrt(np.asarray(weights))[None, :])
        if return_draws:
            return draws
        index = self.model.design.rows if newdata is None else newdata.index
        return interval_table(draws, index, prob)

    def posterior_predictive(self, seed: int | None = None) -> xr.DataArray:
        """Draw replicated data sets ``y_rep`` (chain, draw, obs); also stored as ``posterior_predictive``."""
        self.design.require_rows("posterior_predictive() (replicated data sets, one value per row)")
        draws = self.predict(kind="response", return_draws=True, seed=seed)
        n_chain, n_draw = self.posterior.sizes["chain"], self.posterior.sizes["draw"]
        da = xr.DataArray(
            draws.reshape(n_chain, n_draw, -1),
            dims=("chain", "draw", "obs"),
            coords={"chain": self.posterior["chain"], "draw": self.posterior["draw"]},
            name="y",
        )
        self.idata["posterior_predictive"] = xr.DataTree(xr.Dataset({"y": da}))
        return da

    # -- the prior's part ---------------------------------------------------------------------
    def prior_sensitivity(self, threshold: float = 0.05):
        """Power-scaling sensitivity of each population parameter to the prior and to the likelihood.

        The method of priorsense (Kallioinen et al. 2023; :mod:`bayesmlm.bayes.sensitivity`): a parameter
        whose posterior moves when the prior is made stronger or weaker is flagged, as "prior-data
        conflict" if it also moves with the likelihood, else "strong prior / weak likelihood". With
        Pareto k̂ of the importance weights; ``bm.plot_prior_sensitivity`` shows the power-scaled posteriors.

        Returns
        -------
        PriorSensitivity
            ``.summary`` (sensitivities, diagnosis, k̂), ``.flagged``.
        """
        from bayesmlm.bayes.sensitivity import prior_sensitivity

        return prior_sensitivity(self, threshold)

    def prior_predictive(self, draws: int = 500, seed: int | None = None) -> xr.DataArray:
        """Draw data sets from the prior predictive distribution, ``y`` (chain, draw, obs).

        Also stored as the ``prior`` and ``prior_predictive`` groups of :attr:`idata`;
        ``bm.plot_prior_predictive(fit)`` draws them beside the observed response.
        """
        prior = self.model.sample_prior_predictive(draws=draws, seed=seed)
        for group in ("prior", "prior_predictive"):
            self.idata[group] = prior[group]
        return prior["prior_predictive"]["y"]

    # -- model comparison -------------------------------------------------------------------
    def loo(self):
        """PSIS-LOO cross-validation (ArviZ's ``loo``) from the pointwise log-likelihood.

        High Pareto k values are reported as one :class:`~bayesmlm.SamplingWarning` saying how many
        observations are affected and what to do.
        """
        from bayesmlm.bayes.compare import loo

        self.design.require_rows("loo() (the pointwise log-likelihood, one value per row)")
        if not gd.stored(self):
            raise gd.not_stored("loo() (the pointwise log-likelihood)", self.structure)

        return loo(self)

    # -- persistence --------------------------------------------------------------------------
    def save(self, path: str | Path) -> Path:
        """Save the fit (ArviZ netCDF with the data and settings needed to rebuild the model; no pickle).

        Parameters
        ----------
        path : str or Path
            File to write (``.nc`` is customary).

        Returns
        -------
        Path
        """
        self.design.require_rows("save() (a saved fit holds its data, to rebuild the model)")
        return save_fit(self.idata, self.model.to_dict(), self.model.data, self.info, path)

    def __repr__(self) -> str:
        info = self.info
        head = (
            f"bayesmlm.Fit: {self.model.spec.formula}\n"
            f"{self.design.n} observations; {info.get('chains')} chains x {info.get('draws')} draws "
            f"({info.get('method')} path, {info.get('sampler')} NUTS)"
        )
        if not gd.stored(self):  # say so once: r_<group> is not in the posterior
            reason = info.get("group_effects_reason")
            head += (
                f"\ngroup effects drawn when asked, not stored ({reason}); group_effects='store' keeps them"
            )
        return f"{head}\n{self.summary()}"

    def _repr_html_(self) -> str:
        info = self.info
        head = (
            f"<p><b>bayesmlm.Fit</b>: <code>{self.model.spec.formula}</code>; {self.design.n} observations; "
            f"{info.get('chains')} chains &times; {info.get('draws')} draws ({info.get('method')} path)</p>"
        )
        return head + self.summary()._repr_html_()
