"""Stage 4a, REML/ML: the result of a GLMM's maximum-likelihood fit, with the faces results and plots read.

Besides glmer's accessors (``fixed_effects``, ``vcov``, ``varcorr``, ``random_effects``, ``predict`` on
the link or response scale, ``logLik``/AIC/BIC), a :class:`GeneralizedLikelihoodFit` shows the faces
every fit shows (``design``, ``structure``, ``estimate_label``, ``fixed_estimates``, ``coefficients``,
``population_draws``, ``group_effect_intervals``, ``line_draws``), on the link scale; its
``population_draws`` carry the family's latent-scale residual variance
(:meth:`~bayesmlm.families.base.Family.latent_variance`) in place of ``σ²``, so the ICC and the
variance shares are the latent-scale ones of Nakagawa, Johnson & Schielzeth (2017).
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd
from scipy import stats as sps

from bayesmlm._version import package_versions
from bayesmlm.design.covariance import RandomStructure
from bayesmlm.design.evaluate import Design
from bayesmlm.design.names import statsmodels_name
from bayesmlm.draws.arrays import ParameterDraws
from bayesmlm.draws.icc import ICC, icc_from_draws, variance_decomposition
from bayesmlm.exceptions import ConvergenceWarning, SingularFitWarning
from bayesmlm.families.base import Family
from bayesmlm.reml.glmm_bootstrap import simulate_and_refit
from bayesmlm.reml.glmm_estimates import (
    GLMMEstimates,
    is_singular,
)
from bayesmlm.reml.glmm_optimize import GLMMOptSummary
from bayesmlm.reml.glmm_predict import Residual, Scale, predict_glmm, residuals_of
from bayesmlm.reml.glmm_summary import GeneralizedSummary
from bayesmlm.reml.predict import NewLevels
from bayesmlm.reml.varcorr import covariance_table

__all__ = ["GeneralizedLikelihoodFit"]


class GeneralizedLikelihoodFit:
    """A generalized linear mixed model fitted by maximum likelihood, as lme4's ``glmer`` does.

    Created by :meth:`bayesmlm.Model.fit_ml` for a binomial, Poisson or negative binomial model.

    Attributes
    ----------
    design, structure : Design, RandomStructure
    family : Family
    opt : GLMMOptSummary
        How the optimisation went.
    estimates : GLMMEstimates
    method : str
        ``"Laplace"`` or ``"AGQ(k)"``.
    theta : ndarray
    """

    def __init__(self, design: Design, structure: RandomStructure, family: Family, opt, estimates):
        self.design, self.structure, self.family = design, structure, family
        self.opt: GLMMOptSummary = opt
        self.estimates: GLMMEstimates = estimates
        self.method = opt.method
        self.theta = estimates.theta
        if not opt.converged:
            warnings.warn(
                f"the ML optimiser did not converge ({opt.message}); the estimates may be wrong: check "
                "the model, rescale predictors or refit",
                ConvergenceWarning,
                stacklevel=4,
            )
        if self.singular:
            warnings.warn(
                "boundary (singular) fit: a variance is estimated as zero or a correlation as ±1; the "
                "random-effects structure is too rich for the data (see fit.varcorr)",
                SingularFitWarning,
                stacklevel=4,
            )
        elif estimates.vcov_source == "RX":
            warnings.warn(
                "the Hessian of the deviance is not positive definite, so the standard errors come from "
                "the penalised least-squares system at the modes (lme4's RX): they ignore the "
                "uncertainty of the variance parameters, and the optimum may be poorly determined",
                ConvergenceWarning,
                stacklevel=4,
            )

    # -- how it went ---------------------------------------------------------------------------
    @property
    def n_agq(self) -> int:
        """Quadrature points (1: Laplace)."""
        return 1 if self.method == "Laplace" else int(self.method[4:-1])

    @property
    def info(self) -> dict:
        """How the fit was made: method, family, optimiser outcome, rows used, package versions."""
        return {
            "method": self.method,
            "family": self.family.name,
            "link": self.family.link.name,
            "converged": self.converged,
            "optimizer_message": self.opt.message,
            "n_evaluations": self.opt.n_evaluations,
            "gradient_norm": float(self.opt.gradient_norm),
            "vcov_source": self.estimates.vcov_source,
            "singular": self.singular,
            "n_obs": self.design.n,
            "n_dropped": self.design.n_dropped,
            "aliased": list(self.design.aliased),
            "seconds": round(self.opt.seconds, 3),
            "versions": package_versions(),
        }

    @property
    def converged(self) -> bool:
        """Whether the optimiser's convergence checks passed."""
        return self.opt.converged

    @property
    def singular(self) -> bool:
        """Boundary fit: a diagonal entry of a relative covariance factor below 1e-4 (lme4's rule)."""
        return is_singular(self.structure, self.theta)

    # -- fixed effects and variance parameters -----------------------------------------------------
    @property
    def fixed_effects(self) -> pd.DataFrame:
        """Fixed effects on the link scale: estimate, se, z, p (Wald, normal), ci_low, ci_high (95%)."""
        beta = self.estimates.beta
        se = np.sqrt(np.diag(self.estimates.vcov))
        z = beta / se
        q = sps.norm.ppf(0.975)
        frame = {"estimate": beta, "se": se, "z": z, "p": 2 * sps.norm.sf(np.abs(z))}
        frame |= {"ci_low": beta - q * se, "ci_high": beta + q * se}
        return pd.DataFrame(frame, index=pd.Index(self.design.fixed_names, name="term"))

    @property
    def vcov(self) -> pd.DataFrame:
        """Covariance of the fixed-effect estimates (lme4's ``vcov``)."""
        names = list(self.design.fixed_names)
        return pd.DataFrame(self.estimates.vcov, index=names, columns=names)

    @property
    def varcorr(self) -> pd.DataFrame:
        """Variance components as lme4's ``as.data.frame(VarCorr(m))`` (link scale; no residual row)."""
        return covariance_table(self.structure, self.estimates.covariances)

    @property
    def variance_components(self) -> pd.Series:
        """Variances and covariances under statsmodels' names (``herd Var``)."""
        group_of = {label: f.group for f in self.structure.factors for label, *_ in f.blocks()}
        out = {}
        for row in self.varcorr.itertuples(index=False):
            first = statsmodels_name(self.structure, group_of[row.grp], row.var1)
            if pd.isna(row.var2):
                out[f"{first} Var"] = row.vcov
            else:
                out[f"{first} x {statsmodels_name(self.structure, group_of[row.grp], row.var2)} Cov"] = (
                    row.vcov
                )
        return pd.Series(out, name="estimate")

    @property
    def dispersion(self) -> float | None:
        """The negative binomial's shape ``θ`` (glmer.nb's ``getME(m, "glmer.nb.theta")``); else None."""
        return self.estimates.dispersion

    @property
    def working_weights(self) -> np.ndarray:
        """IRLS weights at the modes (each row's information about the linear predictor)."""
        return self.estimates.working_weights

    # -- the faces every fit shows -----------------------------------------------------------
    @property
    def estimate_label(self) -> str:
        """What the point estimates are, for titles: ``"ML (Laplace)"`` or ``"ML (AGQ(k))"``."""
        return f"ML ({self.method})"

    def fixed_estimates(self) -> pd.Series:
        """Fixed-effect estimates, indexed by term."""
        return self.fixed_effects["estimate"]

    def _draws(self, covariances: list[np.ndarray], fixed: np.ndarray, dispersion) -> ParameterDraws:
        latent = self.family.latent_variances(self.design, self.structure, covariances, fixed, dispersion)
        return ParameterDraws(covariances, np.asarray(latent, dtype=float), fixed)

    def population_draws(self) -> ParameterDraws:
        """Return the estimates as one draw; ``sigma2`` is the family's latent residual variance."""
        covs = [self.estimates.covariances[f.group][None] for f in self.structure.factors]
        disp = None if self.dispersion is None else np.array([self.dispersion])
        return self._draws(covs, np.asarray(self.estimates.beta, dtype=float)[None], disp)

    def bootstrap_draws(self, n_boot: int, seed: int | None = None) -> ParameterDraws:
        """Parameters of ``n_boot`` responses simulated from the fit and refitted the same way."""
        covs, beta, disp = simulate_and_refit(self, n_boot, seed)
        return self._draws(covs, beta, disp)

    def group_effect_intervals(self, group: str | None, term: str, prob: float) -> tuple[pd.DataFrame, str]:
        """Each level's effect on ``term`` (link scale): conditional mode ± normal quantile × cond. sd."""
        table = self.random_effects(group, conditional_sd=True)
        z = sps.norm.ppf(0.5 + prob / 2)
        est, sd = table[term], table[f"{term}_sd"]
        return pd.DataFrame(
            {"estimate": est, "low": est - z * sd, "high": est + z * sd}
        ), f"±{z:.2f} conditional sd"

    def line_draws(self, group: str | None, level: int, X: np.ndarray, Z: np.ndarray) -> np.ndarray:
        """One group's linear predictor on rows with columns ``X`` and ``Z`` (one draw, link scale)."""
        f = self.structure.factor(group)
        return (np.asarray(self.estimates.beta) @ X.T + self.estimates.modes[f.group][level] @ Z.T)[None]

    # -- variance shares on the latent scale ------------------------------------------------------
    def icc(
        self, at: dict | None = None, prob: float = 0.95, n_boot: int = 0, seed: int | None = None
    ) -> ICC:
        """Latent-scale intraclass correlations (Nakagawa, Johnson & Schielzeth 2017).

        Each factor's variance over the total on the link scale, with the family's distribution-specific
        residual variance (``π²/3`` logit, 1 probit, ``log(1 + 1/λ)`` Poisson, ...; stated in the
        result's ``method``). ``n_boot`` parametric-bootstrap refits give an interval (0: none; each
        refit is a full ML fit).
        """
        how = f"{self.estimate_label}" + (f", parametric bootstrap ({n_boot} replicates)" if n_boot else "")
        method = f"{how}; {self.family.latent_label()}"
        draws = self.bootstrap_draws(max(n_boot, 0), seed)
        return icc_from_draws(self.design, self.structure, draws, self.population_draws(), method, at, prob)

    def variance_decomposition(self) -> pd.DataFrame:
        """Each component's share of the latent-scale variance (the residual: the family's)."""
        return variance_decomposition(self.design, self.structure, self.population_draws(), intervals=False)

    # -- likelihood --------------------------------------------------------------------------
    @property
    def deviance(self) -> float:
        """``-2 logLik`` (what glmer's summary prints as ``deviance``)."""
        return float(self.opt.objective)

    @property
    def conditional_deviance(self) -> float:
        """The deviance residuals' sum at the modes (lme4's ``deviance(m)`` of a GLMM)."""
        return self.estimates.conditional_deviance

    @property
    def loglik(self) -> float:
        """Log-likelihood (Laplace or quadrature; with every constant, as glmer's Laplace ``logLik``)."""
        return -self.deviance / 2

    @property
    def n_parameters(self) -> int:
        """Fixed effects + covariance parameters (+ the negative binomial's shape)."""
        return self.design.p + self.structure.n_theta + self.family.n_dispersion

    @property
    def aic(self) -> float:
        """Akaike information criterion."""
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
    def df_resid(self) -> int:
        """Observations minus parameters."""
        return self.nobs - self.n_parameters

    @property
    def n_groups(self) -> dict[str, int]:
        """Number of levels per grouping factor."""
        return {f.group: f.n_levels for f in self.structure.factors}

    # -- group effects, fitted values, prediction -----------------------------------------------------
    def random_effects(self, group: str | None = None, conditional_sd: bool = False) -> pd.DataFrame:
        """Conditional modes of the random effects on the link scale, one row per level (lme4's ``ranef``)."""
        f = self.structure.factor(group)
        out = pd.DataFrame(
            self.estimates.modes[f.group], index=pd.Index(f.levels, name=f.group), columns=list(f.term_names)
        )
        if conditional_sd:
            sd = np.sqrt(np.diagonal(self.estimates.condvar[f.group], axis1=1, axis2=2))
            for k, name in enumerate(f.term_names):
                out[f"{name}_sd"] = sd[:, k]
        return out

    def conditional_covariance(self, group: str | None = None) -> np.ndarray:
        """Conditional covariance matrices of the random effects, ``(levels, q, q)``."""
        return self.estimates.condvar[self.structure.factor(group).group].copy()

    def coefficients(self, group: str | None = None) -> pd.DataFrame:
        """Group-specific coefficients on the link scale: fixed effect plus conditional mode (``coef``)."""
        re = self.random_effects(group)
        fe = self.fixed_effects["estimate"]
        out = pd.DataFrame(np.tile(fe.to_numpy(), (len(re), 1)), index=re.index, columns=fe.index)
        for name in re.columns:
            out[name] = out[name] + re[name] if name in out else re[name]
        return out

    def fitted(self, scale: Scale = "response") -> pd.Series:
        """Fitted means (or linear predictors, ``scale="link"``) of the rows used."""
        return self.predict(None, scale=scale)

    def residuals(self, kind: Residual = "response") -> pd.Series:
        """Return residuals: ``"response"`` (y − μ), ``"pearson"``, ``"deviance"`` or ``"working"``.

        The response residual of a binomial model is on the proportion scale, as R's.
        """
        return residuals_of(self.design, self.family, self.estimates, kind)

    def predict(
        self,
        newdata: pd.DataFrame | None = None,
        include_random: bool = True,
        new_levels: NewLevels = "population",
        scale: Scale = "response",
    ) -> pd.Series:
        """Predict the mean response (a probability or a rate), or with ``scale="link"`` the linear predictor.

        Parameters
        ----------
        newdata : DataFrame, optional
            Rows to predict (the fitted rows if omitted); an offset is evaluated on them.
        include_random : bool
            Add each row's conditional modes (else the population-level prediction, random effects 0).
        new_levels : {"population", "error"}
            A level not seen in fitting: random effect 0, or raise DataError.
        scale : {"response", "link"}

        Returns
        -------
        Series
        """
        return predict_glmm(
            self.design,
            self.structure,
            self.family,
            self.estimates,
            newdata,
            include_random,
            new_levels,
            scale,
        )

    def summary(self) -> GeneralizedSummary:
        """Summarise the fit in glmer's layout."""
        return GeneralizedSummary(self)

    def __repr__(self) -> str:
        return (
            f"<GeneralizedLikelihoodFit {self.method} {self.family!r}: {self.design.spec.formula}; "
            f"logLik {self.loglik:.4f}, {self.nobs} obs>"
        )
