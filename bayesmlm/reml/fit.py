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

from bayesmlm._version import package_versions
from bayesmlm.design.covariance import RandomStructure
from bayesmlm.design.crossprod import CrossProducts
from bayesmlm.design.evaluate import Design
from bayesmlm.design.names import statsmodels_name
from bayesmlm.draws.arrays import ParameterDraws
from bayesmlm.draws.icc import icc_from_draws, variance_decomposition
from bayesmlm.exceptions import ConvergenceWarning, SingularFitWarning
from bayesmlm.reml.bootstrap import parametric_bootstrap
from bayesmlm.reml.estimates import estimates_at
from bayesmlm.reml.optimize import BOUNDARY_TOL, OptSummary, optimize_theta
from bayesmlm.reml.predict import NewLevels, fitted_values, predict_mean
from bayesmlm.reml.summary import LikelihoodSummary, varcorr_table

__all__ = ["LikelihoodFit"]


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
        if not opt.converged:
            warnings.warn(
                f"the {self.method} optimiser did not converge ({opt.message}); "
                "the estimates may be wrong: check the model, rescale predictors or refit",
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

    # -- conditional modes -------------------------------------------------------------------
    # -- fixed effects -----------------------------------------------------------------------
    @property
    def info(self) -> dict:
        """How the fit was made: method, optimiser outcome, rows used and dropped, package versions.

        The same keys as the Bayesian :attr:`Fit.info <bayesmlm.Fit.info>` where they apply
        (``n_obs``, ``n_dropped``, ``aliased``, ``seconds``, ``versions``).
        """
        return {
            "method": self.method,
            "converged": self.converged,
            "optimizer_message": self.opt.message,
            "n_evaluations": self.opt.n_evaluations,
            "gradient_norm": float(self.opt.gradient_norm),
            "singular": self.singular,
            "n_obs": self.design.n,
            "n_dropped": self.design.n_dropped,
            "aliased": list(self.design.aliased),
            "seconds": round(self.opt.seconds, 3),
            "versions": package_versions(),
        }

    @property
    def fixed_effects(self) -> pd.DataFrame:
        """Fixed effects: estimate, se, z, p (Wald, normal), ci_low, ci_high (95%), by term."""
        se = np.sqrt(np.diag(self._vcov))
        z = self._beta / se
        q = sps.norm.ppf(0.975)
        return pd.DataFrame(
            {
                "estimate": self._beta,
                "se": se,
                "z": z,
                "p": 2 * sps.norm.sf(np.abs(z)),
                "ci_low": self._beta - q * se,
                "ci_high": self._beta + q * se,
            },
            index=pd.Index(self.design.fixed_names, name="term"),
        )

    @property
    def vcov(self) -> pd.DataFrame:
        """Covariance matrix of the fixed-effect estimates (``σ² (R_Xᵀ R_X)⁻¹``, as lme4's ``vcov``)."""
        names = list(self.design.fixed_names)
        return pd.DataFrame(self._vcov, index=names, columns=names)

    # -- variance components -----------------------------------------------------------------
    @property
    def sigma(self) -> float:
        """Residual standard deviation."""
        return math.sqrt(self._sigma2)

    @cached_property
    def varcorr(self) -> pd.DataFrame:
        """Variance components in the layout of lme4's ``as.data.frame(VarCorr(m))``.

        One row per variance (``var2`` missing) and per covariance, grouped by term block (variances
        first, then covariances, as lme4), with ``Residual`` last. ``vcov`` holds variances and
        covariances, ``sdcor`` standard deviations and correlations.
        """
        return varcorr_table(self.structure, self.estimates.covariances, self._sigma2)

    @property
    def variance_components(self) -> pd.Series:
        """Variances and covariances under statsmodels' names (``Subject Var``, ``Subject x Days Cov``)."""
        group_of = {label: f.group for f in self.structure.factors for label, *_ in f.blocks()}

        def name(grp: str, term: str) -> str:
            return statsmodels_name(self.structure, group_of[grp], term)

        out = {}
        for row in self.varcorr.itertuples(index=False):
            if row.grp == "Residual":
                out["Scale"] = row.vcov
            elif pd.isna(row.var2):
                out[f"{name(row.grp, row.var1)} Var"] = row.vcov
            else:
                out[f"{name(row.grp, row.var1)} x {name(row.grp, row.var2)} Cov"] = row.vcov
        return pd.Series(out, name="estimate")

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
        n_boot : int
            Simulated data sets refitted for the interval (0: point estimates only).
        seed : int, optional
            Seed of the bootstrap.

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
        if n_boot > 0:
            method = f"{self.method} estimate, parametric bootstrap ({n_boot} replicates)"
        else:
            method = f"{self.method} point estimate"
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
        """Parametric-bootstrap draws of the population-level parameters (:mod:`bayesmlm.reml.bootstrap`)."""
        return parametric_bootstrap(
            self.design,
            self.structure,
            self.stats,
            self.population_draws(),
            self.theta,
            self.method == "REML",
            n_boot,
            seed,
        )

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
        """Fixed effects + covariance parameters + residual variance."""
        return self.design.p + self.structure.n_theta + 1

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
        """Boundary fit: a diagonal entry of a relative covariance factor below 1e-4 (lme4's rule)."""
        for f in self.structure.factors:
            if np.any(self.theta[f.theta_slice][f.is_diagonal_entry] < BOUNDARY_TOL):
                return True
        return False

    # -- random effects ----------------------------------------------------------------------
    def random_effects(self, group: str | None = None, conditional_sd: bool = False) -> pd.DataFrame:
        """Conditional modes of the random effects, one row per level (lme4's ``ranef``).

        Parameters
        ----------
        group : str, optional
            The grouping factor; needed only when the model has several.
        conditional_sd : bool
            Also return each effect's conditional standard deviation (``<term>_sd`` columns).

        Returns
        -------
        DataFrame
            Indexed by level label, one column per term.
        """
        f = self.structure.factor(group)
        out = pd.DataFrame(
            self._modes[f.group], index=pd.Index(f.levels, name=f.group), columns=list(f.term_names)
        )
        if conditional_sd:
            sd = np.sqrt(np.diagonal(self._condvar[f.group], axis1=1, axis2=2))
            for k, name in enumerate(f.term_names):
                out[f"{name}_sd"] = sd[:, k]
        return out

    def conditional_covariance(self, group: str | None = None) -> np.ndarray:
        """Conditional covariance matrices of the random effects, shape ``(levels, q, q)``."""
        return self._condvar[self.structure.factor(group).group].copy()

    def coefficients(self, group: str | None = None) -> pd.DataFrame:
        """Group-specific coefficients: fixed effect plus conditional mode (lme4's ``coef``)."""
        re = self.random_effects(group)
        fe = self.fixed_effects["estimate"]
        out = pd.DataFrame(np.tile(fe.to_numpy(), (len(re), 1)), index=re.index, columns=fe.index)
        for name in re.columns:
            out[name] = out[name] + re[name] if name in out else re[name]
        return out

    # -- fitted values and prediction --------------------------------------------------------
    def fitted(self) -> pd.Series:
        """Fitted values ``Xβ + Zb`` for the rows used, indexed like the data."""
        return fitted_values(self.design, self.structure, self.estimates)

    def residuals(self) -> pd.Series:
        """Response minus fitted values."""
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
        opt = optimize_theta(self.structure, self.stats, reml=reml, theta0=self.theta)
        return LikelihoodFit(self.design, self.structure, self.stats, opt)

    # -- printing ----------------------------------------------------------------------------
    def summary(self):
        """Summarise the fit in lme4's layout, with statsmodels' variance-component names beside it."""
        return LikelihoodSummary(self)

    def __repr__(self) -> str:
        return (
            f"<LikelihoodFit {self.method}: {self.design.spec.formula}; "
            f"logLik {self.loglik:.4f}, {self.nobs} obs>"
        )
