"""The result of a REML or ML fit: estimates, variance components, conditional modes, predictions.

Everything here is computed once, in NumPy, from the blocked factorisation at the optimal theta
(:func:`bayesmlm.objective.decompose`), so it agrees exactly with the objective that was minimised.
"""

from __future__ import annotations

import math
import warnings
from functools import cached_property
from typing import Literal

import numpy as np
import pandas as pd
import scipy.linalg as sla
from scipy import stats as sps

from bayesmlm.covariance import FactorTerms, RandomStructure
from bayesmlm.crossprod import CrossProducts
from bayesmlm.design import Design
from bayesmlm.exceptions import ConvergenceWarning, DataError, SingularFitWarning
from bayesmlm.likelihood_summary import LikelihoodSummary
from bayesmlm.objective import compile_at_theta
from bayesmlm.optimize import BOUNDARY_TOL, OptSummary, optimize_theta

__all__ = ["LikelihoodFit"]

NewLevels = Literal["population", "error"]


def _evaluate_decomposition(theta: np.ndarray, structure: RandomStructure, stats: CrossProducts):
    values = compile_at_theta("decomposition", structure, stats)(theta)
    return {k: np.asarray(v) for k, v in values.items()}


def _upper_solve_batched(L: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Solve ``L_gᵀ x_g = b_g`` for every level ``g`` (``L``: (m, q, q) lower, ``b``: (m, q))."""
    return np.linalg.solve(np.swapaxes(L, 1, 2), b[..., None])[..., 0]


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
        dec = _evaluate_decomposition(opt.theta, structure, stats)
        n, p = design.n, design.p
        dof = n - p if self.method == "REML" else n
        self._sigma2 = float(dec["r2"]) / dof
        self._beta = dec["beta"]
        if p:
            rx_inv = sla.solve_triangular(dec["R_X"], np.eye(p), lower=True)
            self._vcov = self._sigma2 * (rx_inv.T @ rx_inv)
        else:
            self._vcov = np.zeros((0, 0))
        self._modes, self._condvar = self._conditional_modes(dec)
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
    def _conditional_modes(self, dec: dict) -> tuple[dict, dict]:
        """Conditional modes ``b = Λu`` and conditional covariances ``σ² Λ (LLᵀ)⁻¹ Λᵀ`` per level."""
        beta = self._beta
        first, rest = self.structure.factors[0], self.structure.factors[1:]
        d1 = dec["c1_y"] - dec["c1_x"] @ beta  # (m1, q1)
        L1 = dec["L1"]
        L1_inv = np.linalg.inv(L1)  # (m1, q1, q1)
        u: dict[str, np.ndarray] = {}
        inv_blocks: dict[str, np.ndarray] = {}
        if rest:
            L_rest = dec["L_rest"]
            d_rest = dec["cr_y"] - dec["cr_x"] @ beta
            u_rest = sla.solve_triangular(L_rest, d_rest, lower=True, trans="T")
            C_t = dec["C_t"]  # (m1, q1, qR)
            u1 = _upper_solve_batched(L1, d1 - C_t @ u_rest)
            # diagonal blocks of (L Lᵀ)⁻¹ for the first factor: L1⁻ᵀL1⁻¹ + Wᵀ W, W = L_R⁻¹ C L1⁻¹
            m1, q1, q_rest = C_t.shape
            Y = sla.solve_triangular(L_rest, C_t.reshape(m1 * q1, q_rest).T, lower=True)
            W = np.einsum("rgk,gkl->grl", Y.reshape(q_rest, m1, q1), L1_inv)
            inv_blocks[first.group] = np.swapaxes(L1_inv, 1, 2) @ L1_inv + np.swapaxes(W, 1, 2) @ W
            L_rest_inv = sla.solve_triangular(L_rest, np.eye(q_rest), lower=True)
            start = 0
            for f in rest:
                width = f.n_levels * f.q
                u[f.group] = u_rest[start : start + width].reshape(f.n_levels, f.q)
                K = L_rest_inv[:, start : start + width].reshape(q_rest, f.n_levels, f.q)
                inv_blocks[f.group] = np.einsum("rgk,rgl->gkl", K, K)
                start += width
        else:
            u1 = _upper_solve_batched(L1, d1)
            inv_blocks[first.group] = np.swapaxes(L1_inv, 1, 2) @ L1_inv
        u[first.group] = u1
        modes, condvar = {}, {}
        for f in self.structure.factors:
            lam = f.relative_factor(self.theta)
            modes[f.group] = u[f.group] @ lam.T
            condvar[f.group] = self._sigma2 * (lam @ inv_blocks[f.group] @ lam.T)
        return modes, condvar

    # -- fixed effects -----------------------------------------------------------------------
    @property
    def info(self) -> dict:
        """How the fit was made: method, optimiser outcome, rows used and dropped, package versions.

        The same keys as the Bayesian :attr:`Fit.info <bayesmlm.Fit.info>` where they apply
        (``n_obs``, ``n_dropped``, ``aliased``, ``seconds``, ``versions``).
        """
        from bayesmlm.model import package_versions

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
        rows = []
        for f in self.structure.factors:
            cov = self._sigma2 * (lambda lam: lam @ lam.T)(f.relative_factor(self.theta))
            for label, start, size in f.blocks():
                names = f.term_names[start : start + size]
                block = cov[start : start + size, start : start + size]
                sd = np.sqrt(np.diag(block))
                for i in range(size):
                    rows.append((label, names[i], None, block[i, i], sd[i]))
                for j in range(size):
                    for i in range(j + 1, size):
                        denom = sd[i] * sd[j]
                        corr = block[i, j] / denom if denom > 0 else np.nan
                        rows.append((label, names[j], names[i], block[i, j], corr))
        rows.append(("Residual", None, None, self._sigma2, self.sigma))
        return pd.DataFrame(rows, columns=["grp", "var1", "var2", "vcov", "sdcor"])

    @property
    def variance_components(self) -> pd.Series:
        """Variances and covariances under statsmodels' names (``Subject Var``, ``Subject x Days Cov``)."""
        group_of = {label: f.group for f in self.structure.factors for label, *_ in f.blocks()}

        def name(grp: str, term: str) -> str:
            return self.structure.statsmodels_name(group_of[grp], term)

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
        Nakagawa et al. (2017). See :mod:`bayesmlm.icc`.

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
        from bayesmlm.icc import compute_icc

        return compute_icc(self, at=at, prob=prob, n_boot=n_boot, seed=seed)

    def variance_decomposition(self) -> pd.DataFrame:
        """Each variance component's share of the total (see :func:`bayesmlm.icc.variance_decomposition`)."""
        from bayesmlm.icc import variance_decomposition

        return variance_decomposition(self)

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
    def _random_part(self, factors_z: list[tuple[FactorTerms, np.ndarray, np.ndarray]]) -> np.ndarray:
        total = 0.0
        for f, Z, codes in factors_z:
            b = np.vstack([self._modes[f.group], np.zeros((1, f.q))])  # last row: population (0)
            total = total + np.sum(Z * b[codes], axis=1)
        return total

    def fitted(self) -> pd.Series:
        """Fitted values ``Xβ + Zb`` for the rows used, indexed like the data."""
        parts = [(f, f.Z, f.codes) for f in self.structure.factors]
        values = self.design.X @ self._beta + self._random_part(parts)
        return pd.Series(values, index=self.design.rows, name="fitted")

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
        if newdata is None:
            return (
                self.fitted()
                if include_random
                else pd.Series(self.design.X @ self._beta, index=self.design.rows, name="predicted")
            )
        if new_levels not in ("population", "error"):
            raise ValueError(f"new_levels must be 'population' or 'error', not {new_levels!r}")
        missing = self.design.check_newdata(newdata)
        if missing.any():
            out = np.full(len(newdata), np.nan)
            out[~missing] = self.predict(newdata.loc[~missing], include_random, new_levels).to_numpy()
            return pd.Series(out, index=newdata.index, name="predicted")
        values = self.design.fixed_design(newdata) @ self._beta
        if include_random:
            parts = []
            for f in self.structure.factors:
                Z, codes, unseen = f.evaluate(newdata)
                if unseen.any() and new_levels == "error":
                    unseen = f.unseen_levels(newdata)[:10]
                    raise DataError(
                        f"newdata has level(s) of {f.group} not seen in fitting: {unseen}; "
                        "use new_levels='population' to predict them at the population level"
                    )
                parts.append((f, Z, codes))
            values = values + self._random_part(parts)
        return pd.Series(values, index=newdata.index, name="predicted")

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
