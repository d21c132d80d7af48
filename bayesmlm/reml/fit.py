"""Stage 4a, REML/ML: the result of a REML or ML fit, with the faces results and plots read.

The estimates come from :func:`bayesmlm.reml.estimates.estimates_at` at the optimal theta. Besides
lme4's accessors, a :class:`LikelihoodFit` shows the same read-only faces as a Bayesian
:class:`~bayesmlm.bayes.fit.Fit` (``design``, ``structure``, ``estimate_label``, ``fixed_estimates``,
``coefficients``, ``population_draws``, ``group_effect_intervals``, ``line_draws``), a REML fit being
one draw (its estimates) or a set of parametric-bootstrap draws; so the ICC, the plots and
``compare_estimates`` never ask which kind of fit they have.
"""

from __future__ import annotations

import math
import warnings
from functools import cached_property

import numpy as np
import pandas as pd
from scipy import stats as sps

from bayesmlm.arguments import checked_methods
from bayesmlm.design.covariance import RandomStructure
from bayesmlm.design.crossprod import CrossProducts
from bayesmlm.design.evaluate import Design
from bayesmlm.draws.arrays import ParameterDraws
from bayesmlm.draws.icc import icc_from_draws, variance_decomposition
from bayesmlm.draws.r2 import R2, r2_from_draws
from bayesmlm.exceptions import ConvergenceWarning, SingularFitWarning
from bayesmlm.reml.bootstrap import BootstrapCache
from bayesmlm.reml.confint import confidence_intervals
from bayesmlm.reml.convergence import not_converged_message
from bayesmlm.reml.ddf import DDF, SmallSample, anova_table, coef_table, contrast_table
from bayesmlm.reml.estimates import estimates_at
from bayesmlm.reml.info import fit_info
from bayesmlm.reml.optimize import BOUNDARY_TOL, OptSummary, optimize_theta
from bayesmlm.reml.predict import NewLevels, fitted_values, predict_mean
from bayesmlm.reml.random_effects import coefficients_frame, random_effects_frame
from bayesmlm.reml.summary import LikelihoodSummary
from bayesmlm.reml.ties import free_count
from bayesmlm.reml.varcorr import statsmodels_components, varcorr_frame

__all__ = ["LikelihoodFit"]


@checked_methods
class LikelihoodFit:
    """A linear mixed model fitted by REML or maximum likelihood, as lme4's ``lmer`` does.

    Created by :meth:`bayesmlm.Model.fit_reml` and :meth:`bayesmlm.Model.fit_ml`.

    Attributes
    ----------
    design : Design
    structure : RandomStructure
    stats : CrossProducts
        The cross-products the objective used.
    opt : OptSummary
        How the optimisation went.
    method : str
        ``"REML"`` or ``"ML"``.
    """

    def __init__(self, design: Design, structure: RandomStructure, stats: CrossProducts, opt: OptSummary):
        self.design = design
        self.structure = structure
        self.stats = stats
        self.opt = opt
        self.method = opt.method
        self.theta = opt.theta
        self.estimates = estimates_at(opt.theta, structure, stats, reml=self.method == "REML")
        est = self.estimates
        self._sigma2, self._beta, self._vcov = est.sigma2, est.beta, est.vcov
        self._modes, self._condvar = est.modes, est.condvar
        #: the parametric-bootstrap refits, kept per seed (:mod:`bayesmlm.reml.bootstrap`)
        self.bootstrap_cache = BootstrapCache()
        #: Satterthwaite's and Kenward-Roger's pieces and profiles, computed on first use
        self.small_sample = SmallSample(self)
        if not opt.converged:
            warnings.warn(
                not_converged_message(self.method, opt.checks, len(opt.starts)),
                ConvergenceWarning,
                stacklevel=3,
            )
        if self.singular:
            warnings.warn(
                "boundary (singular) fit: a variance is estimated as zero or a correlation as "
                "±1; the random-effects structure is too rich for the data (see fit.varcorr) - "
                "consider simplifying it",
                SingularFitWarning,
                stacklevel=3,
            )

    # -- fixed effects -----------------------------------------------------------------------
    @property
    def info(self) -> dict:
        """How the fit was made: method, optimiser outcome, rows used and dropped, package versions.

        The same keys as the Bayesian :attr:`Fit.info <bayesmlm.Fit.info>` where they apply
        (``n_obs``, ``n_dropped``, ``aliased``, ``seconds``, ``versions``).
        """
        return fit_info(self)

    @property
    def fixed_effects(self) -> pd.DataFrame:
        """Fixed effects: estimate, se, z, p (Wald, normal), ci_low, ci_high (95%), by term."""
        return coef_table(self, "asymptotic").drop(columns="df").rename(columns={"t": "z"})

    @property
    def vcov(self) -> pd.DataFrame:
        """Covariance matrix of the fixed-effect estimates (``σ² (R_Xᵀ R_X)⁻¹``, as lme4's ``vcov``)."""
        names = list(self.design.fixed_names)
        return pd.DataFrame(self._vcov, index=names, columns=names)

    # -- small-sample inference (lmerTest, pbkrtest, lme4's confint) ---------------------------
    def coef_table(self, ddf: DDF = "satterthwaite", level: float = 0.95) -> pd.DataFrame:
        """T tests of the fixed effects with small-sample df (lmerTest's ``summary(m, ddf=...)``).

        ``ddf`` is ``"satterthwaite"``, ``"kenward-roger"`` (REML only; its ``se`` is from the
        adjusted covariance, as pbkrtest) or ``"asymptotic"`` (z); see :mod:`bayesmlm.reml.ddf`.
        Columns ``estimate``, ``se``, ``df``, ``t``, ``p``, ``ci_low``, ``ci_high`` (at ``level``).

        Examples
        --------
        >>> import bayesmlm as bm
        >>> fit = bm.Model("Reaction ~ Days + (1 | Subject)", bm.load_dataset("sleepstudy")).fit_reml()
        >>> fit.coef_table()["df"].round(2).tolist()  # lmerTest: 22.81, 161.00
        [22.81, 161.0]
        """
        return coef_table(self, ddf, level)

    def anova(self, ddf: DDF = "satterthwaite", type: int = 3) -> pd.DataFrame:
        """Type III F tests of every fixed term (lmerTest's ``anova(m, ddf=...)``): F, num_df, den_df, p.

        Examples
        --------
        >>> import bayesmlm as bm
        >>> fit = bm.Model("Reaction ~ Days + (Days | Subject)", bm.load_dataset("sleepstudy")).fit_reml()
        >>> round(float(fit.anova().loc["Days", "F"]), 3)  # lmerTest: 45.853 on 1 and 17 df
        45.853
        """
        return anova_table(self, ddf, type)

    def contrast(self, L, ddf: DDF = "satterthwaite", joint: bool = True, rhs=None, level: float = 0.95):
        """Test ``L β = rhs`` for a contrast matrix ``L`` (lmerTest's ``contest``).

        ``L``: one weight per fixed effect (a vector, a matrix with one row per contrast, a dict
        ``{term: weight}`` or a DataFrame with the terms as columns). ``joint=True`` gives one F test
        (``F``, ``num_df``, ``den_df``, ``p``), ``joint=False`` a t test per row.

        Examples
        --------
        >>> import bayesmlm as bm
        >>> fit = bm.Model("Reaction ~ Days + (Days | Subject)", bm.load_dataset("sleepstudy")).fit_reml()
        >>> fit.contrast({"Days": 1})["den_df"].round(2).tolist()
        [17.0]
        """
        return contrast_table(self, L, ddf, joint, rhs, level)

    def confint(self, method: str = "profile", level: float = 0.95, n_boot: int = 200, seed=None):
        """Confidence intervals of sds, correlations, sigma and fixed effects (lme4's ``confint``).

        ``"profile"`` inverts the profiled ML deviance as lme4 (a variance at its boundary gets 0);
        ``"wald"`` is estimate ± z·se (delta method for the variance parameters); ``"boot"`` the
        percentile interval of the cached parametric bootstrap. See :mod:`bayesmlm.reml.profile`.

        Examples
        --------
        >>> import bayesmlm as bm
        >>> fit = bm.Model("Yield ~ 1 + (1 | Batch)", bm.load_dataset("Dyestuff")).fit_reml()
        >>> fit.confint().loc["sigma", ["lower", "upper"]].round(2).tolist()  # lme4: 38.23, 67.66
        [38.23, 67.66]
        """
        return confidence_intervals(self, method, level, n_boot, seed)

    def r2(self, prob: float = 0.95, n_boot: int = 0, seed: int | None = None) -> R2:
        """Nakagawa's marginal and conditional R² (:mod:`bayesmlm.draws.r2`), bootstrapped if ``n_boot``.

        Examples
        --------
        >>> import bayesmlm as bm
        >>> fit = bm.Model("Reaction ~ Days + (Days | Subject)", bm.load_dataset("sleepstudy")).fit_reml()
        >>> round(fit.r2()["marginal"], 4)  # performance::r2_nakagawa: 0.2787
        0.2787
        """
        draws = self.bootstrap_draws(n_boot, seed)
        return r2_from_draws(self.design, self.structure, draws, self.population_draws(), prob)

    # -- variance components -----------------------------------------------------------------
    @property
    def sigma(self) -> float:
        """Residual standard deviation."""
        return self.estimates.sigma

    @cached_property
    def varcorr(self) -> pd.DataFrame:
        """Variance components as lme4's ``as.data.frame(VarCorr(m))`` (:mod:`bayesmlm.reml.varcorr`)."""
        return varcorr_frame(self.structure, self.estimates)

    @property
    def variance_components(self) -> pd.Series:
        """Variances and covariances under statsmodels' names (``Subject Var``, ``Subject x Days Cov``)."""
        return statsmodels_components(self.structure, self.varcorr)

    def icc(self, at: dict | None = None, prob: float = 0.95, n_boot: int = 200, seed: int | None = None):
        """Intraclass correlations: point estimates with parametric-bootstrap intervals.

        Per grouping factor, its share of the variance where the random-slope covariates are ``at``
        (default 0); for models with random slopes also the adjusted and conditional ICCs of
        Nakagawa et al. (2017). See :mod:`bayesmlm.draws.icc`.

        Parameters
        ----------
        at : dict, optional
            Random-slope covariate values, e.g. ``{"Days": 5}``.
        prob : float
            Interval probability.
        n_boot, seed : int
            Replicates (0: point estimates only) and seed of the cached parametric bootstrap.

        Returns
        -------
        ICC
            ``icc["Subject"]`` is the estimate; ``icc.summary`` the table; ``icc.draws`` the replicates.

        Examples
        --------
        >>> import bayesmlm as bm
        >>> fit = bm.Model("Reaction ~ 1 + (1 | Subject)", bm.load_dataset("sleepstudy")).fit_reml()
        >>> round(fit.icc(n_boot=0)["Subject"], 4)  # 1278.3 / (1278.3 + 1958.9)
        0.3949
        """
        boot = f", parametric bootstrap ({n_boot} replicates)" if n_boot > 0 else ""
        method = f"{self.method} {'estimate' if n_boot > 0 else 'point estimate'}{boot}"
        draws = self.bootstrap_draws(max(n_boot, 0), seed)
        return icc_from_draws(self.design, self.structure, draws, self.population_draws(), method, at, prob)

    def variance_decomposition(self) -> pd.DataFrame:
        """Each variance component's share of the total variance (see :mod:`bayesmlm.draws.icc`)."""
        return variance_decomposition(self.design, self.structure, self.population_draws(), intervals=False)

    # -- the faces every kind of fit shows (read by results and plots) -------------------------
    @property
    def estimate_label(self) -> str:
        """What the point estimates are, for titles: ``"REML"`` or ``"ML"``."""
        return self.method

    def fixed_estimates(self) -> pd.Series:
        """Fixed-effect estimates, indexed by term."""
        return self.fixed_effects["estimate"]

    def population_draws(self) -> ParameterDraws:
        """Return the estimates as one draw: covariances per factor, residual variance, fixed effects."""
        covs = [self.estimates.covariances[f.group][None] for f in self.structure.factors]
        return ParameterDraws(covs, np.array([self._sigma2]), np.asarray(self._beta, dtype=float)[None])

    def bootstrap_draws(self, n_boot: int, seed: int | None = None) -> ParameterDraws:
        """Parametric-bootstrap draws of the population parameters, kept per seed (see ``bootstrap``)."""
        return self.bootstrap_cache.population(self, n_boot, seed)

    def group_effect_intervals(self, group: str | None, term: str, prob: float) -> tuple[pd.DataFrame, str]:
        """Each level's effect on ``term``: conditional mode ± the normal quantile × conditional sd.

        Returns a table (``estimate``, ``low``, ``high``, indexed by level) and how the interval was made.
        """
        table = self.random_effects(group, conditional_sd=True)
        z = sps.norm.ppf(0.5 + prob / 2)
        estimate, sd = table[term], table[f"{term}_sd"]
        frame = pd.DataFrame({"estimate": estimate, "low": estimate - z * sd, "high": estimate + z * sd})
        return frame, f"±{z:.2f} conditional sd"

    def line_draws(self, group: str | None, level: int, X: np.ndarray, Z: np.ndarray) -> np.ndarray:
        """One group's mean response on rows with fixed columns ``X`` and term columns ``Z`` (one draw)."""
        f = self.structure.factor(group)
        return (np.asarray(self._beta) @ X.T + self._modes[f.group][level] @ Z.T)[None]

    # -- likelihood and information criteria -------------------------------------------------
    @property
    def deviance(self) -> float:
        """The minimised objective: ``-2 logLik`` (ML deviance or REML criterion)."""
        return float(self.opt.objective)

    @property
    def loglik(self) -> float:
        """Log-likelihood (restricted log-likelihood for REML), as lme4's ``logLik``."""
        return -self.deviance / 2

    @property
    def n_parameters(self) -> int:
        """Fixed effects + covariance parameters (tied ones once) + residual variance."""
        return self.design.p + free_count(self.structure.n_theta, self.opt.ties) + 1

    @property
    def aic(self) -> float:
        """Akaike information criterion (from the REML criterion for REML fits, as lme4)."""
        return self.deviance + 2 * self.n_parameters

    @property
    def bic(self) -> float:
        """Bayesian information criterion."""
        return self.deviance + math.log(self.nobs) * self.n_parameters

    @property
    def nobs(self) -> int:
        """Number of observations used."""
        return self.design.n

    @property
    def n_groups(self) -> dict[str, int]:
        """Number of levels per grouping factor."""
        return {f.group: f.n_levels for f in self.structure.factors}

    @property
    def converged(self) -> bool:
        """Whether the optimiser converged."""
        return self.opt.converged

    @property
    def singular(self) -> bool:
        """Boundary fit: a diagonal entry of the internal, unit-free relative covariance factor < 1e-4.

        lme4's rule, which it applies to theta in the units of the terms' columns.
        """
        theta = self.opt.theta if self.opt.theta_internal is None else self.opt.theta_internal
        for f in self.structure.factors:
            if np.any(theta[f.theta_slice][f.is_diagonal_entry] < BOUNDARY_TOL):
                return True
        return False

    # -- random effects ----------------------------------------------------------------------
    def random_effects(self, group: str | None = None, conditional_sd: bool = False) -> pd.DataFrame:
        """Conditional modes of one factor's random effects, one row per level (lme4's ``ranef``).

        ``group`` is needed only when the model has several factors; ``conditional_sd`` adds each
        effect's conditional standard deviation (``<term>_sd`` columns).
        """
        return random_effects_frame(self.structure, self.estimates, group, conditional_sd)

    def conditional_covariance(self, group: str | None = None) -> np.ndarray:
        """Conditional covariance matrices of the random effects, shape ``(levels, q, q)``."""
        return self._condvar[self.structure.factor(group).group].copy()

    def coefficients(self, group: str | None = None) -> pd.DataFrame:
        """Group-specific coefficients: fixed effect plus conditional mode (lme4's ``coef``)."""
        return coefficients_frame(self.random_effects(group), self.fixed_effects["estimate"])

    # -- fitted values and prediction --------------------------------------------------------
    def fitted(self) -> pd.Series:
        """Fitted values ``Xβ + Zb`` for the rows used, indexed like the data."""
        return fitted_values(self.design, self.structure, self.estimates)

    def residuals(self) -> pd.Series:
        """Response minus fitted values (lme4's ``residuals(fit, type = "response")``).

        With prior weights ``w`` (``Model(..., weights=)``) row ``i``'s residual has sd ``σ / √w_i``
        (:attr:`sigma` is the sd of a row of weight 1); ``residuals() * np.sqrt(fit.design.weights)``
        are lme4's Pearson residuals. Fitted values and predictions do not depend on the weights except
        through the estimates.
        """
        return pd.Series(self.design.y - self.fitted().to_numpy(), index=self.design.rows, name="residual")

    def predict(
        self,
        newdata: pd.DataFrame | None = None,
        include_random: bool = True,
        new_levels: NewLevels = "population",
    ) -> pd.Series:
        """Predict the mean response.

        Parameters
        ----------
        newdata : DataFrame, optional
            Rows to predict; the fitted rows if omitted.
        include_random : bool
            Add the conditional modes of each row's groups (else the population-level prediction).
        new_levels : {"population", "error"}
            For a level not seen in fitting: use the population (random effect 0) or raise DataError.

        Returns
        -------
        Series
            Indexed like ``newdata``.
        """
        return predict_mean(self.design, self.structure, self.estimates, newdata, include_random, new_levels)

    def refit(self, reml: bool) -> LikelihoodFit:
        """Fit the same model by REML (``reml=True``) or ML, starting from this fit's theta."""
        if (self.method == "REML") == reml:
            return self
        opt = optimize_theta(self.structure, self.stats, reml=reml, theta0=self.theta, ties=self.opt.ties)
        return LikelihoodFit(self.design, self.structure, self.stats, opt)

    # -- printing ----------------------------------------------------------------------------
    def summary(self, ddf: DDF | None = None):
        """Summarise the fit as lme4 (Satterthwaite t tests for REML, as lmerTest; z for ML; or ``ddf=``)."""
        return LikelihoodSummary(self, ddf)

    def __repr__(self) -> str:
        formula, method = self.design.spec.formula, self.method
        return f"<LikelihoodFit {method}: {formula}; logLik {self.loglik:.4f}, {self.nobs} obs>"
