"""Intraclass correlations and variance decompositions, from a Bayesian or a REML fit.

For a factor ``g`` with random-effect covariance ``Σ_g``, residual variance ``σ²`` and the random terms'
values ``z`` (1 for the intercept, the covariate value for a slope), the variance of the group
effect is ``z' Σ_g z``. Then:

- **ICC of factor g** (at ``z``): ``z' Σ_g z / (Σ_h z' Σ_h z + σ²)``, the share of the variance at
  those covariate values that lies between levels of ``g``. In a random-intercept model it is the
  familiar ``τ² / (τ² + σ²)`` (sleepstudy ``Reaction ~ 1 + (1 | Subject)``: 1278.3 / (1278.3 + 1958.9)
  = 0.3949). For nested factors ``(1 | a/b)`` each level's share, for crossed factors each factor's
  share. With random slopes it depends on where the covariates are: by default all at 0 (the
  intercept), which the output states; pass ``at={"Days": 5}`` for another point.
- **adjusted ICC** (Nakagawa, Johnson & Schielzeth 2017, J. R. Soc. Interface 14: 20170213): the
  random-effect variance averaged over the observed rows, ``σ²_RE = Σ_g mean_i(z_i' Σ_g z_i)``, over
  ``σ²_RE + σ²``. It does not depend on a chosen covariate value. **conditional ICC**: the same over
  ``σ²_F + σ²_RE + σ²`` with ``σ²_F`` the variance of the fixed-effect predictions ``Xβ`` (R's
  performance package prints it as the "unadjusted" ICC). Both are reported for models with random
  slopes; for random-intercept models they repeat the factors' ICCs. Sleepstudy
  ``Reaction ~ Days + (Days | Subject)`` by REML: adjusted 0.7217, conditional 0.5214, as
  ``performance::icc`` reports (0.722, 0.521).

Bayesian fits give the posterior distribution of each ICC (one value per draw). REML fits give the
point estimate with a parametric-bootstrap percentile interval: data sets are simulated from the fitted
model, refitted by REML, and the ICC recomputed for each.

Interpretation bands (of the estimate): below 0.05 negligible, 0.05–0.15 moderate, 0.15–0.25
substantial, above 0.25 very strong.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import arviz as az
import numpy as np
import pandas as pd
import xarray as xr

from bayesmlm.bayes_fit import covariance_draws
from bayesmlm.covariance import RandomStructure
from bayesmlm.crossprod import with_response
from bayesmlm.design import Design

__all__ = ["ICC", "compute_icc", "interpret_icc", "variance_decomposition"]

#: upper edges of the interpretation bands
BANDS = ((0.05, "negligible"), (0.15, "moderate"), (0.25, "substantial"), (np.inf, "very strong"))


def interpret_icc(value: float) -> str:
    """Band of an ICC: negligible (< 0.05), moderate (< 0.15), substantial (< 0.25), very strong.

    Examples
    --------
    >>> interpret_icc(0.3949), interpret_icc(0.1), interpret_icc(0.01)
    ('very strong', 'moderate', 'negligible')
    """
    if not np.isfinite(value):
        return "undefined"
    return next(label for edge, label in BANDS if value < edge)


@dataclass
class ICC:
    """Intraclass correlations: their draws and a summary table.

    Attributes
    ----------
    draws : DataFrame
        One column per ICC, one row per posterior draw (Bayes) or bootstrap replicate (REML).
    summary : DataFrame
        Per ICC: ``estimate`` (posterior median, or the REML point estimate), ``mean``, ``median``,
        ``low`` and ``high`` (HDI, or bootstrap percentile interval), ``interpretation``.
    method : str
        ``"posterior"`` or ``"parametric bootstrap (B replicates)"``.
    at : dict
        Covariate values of the random slopes at which the per-factor ICCs are evaluated.
    prob : float
        Interval probability.
    """

    draws: pd.DataFrame
    summary: pd.DataFrame
    method: str
    at: dict = field(default_factory=dict)
    prob: float = 0.95

    @property
    def note(self) -> str:
        """One sentence stating how the ICCs were computed and at which covariate values."""
        interval = "HDI" if self.method == "posterior" else "percentile interval"
        where = ""
        if self.at:
            where = " Per-factor ICCs at " + ", ".join(f"{k} = {v:g}" for k, v in self.at.items()) + "."
        return f"{self.method}; {self.prob:.0%} {interval}.{where}"

    def __getitem__(self, name: str) -> float:
        """Return the estimate of one ICC (``icc["Subject"]``)."""
        return float(self.summary.loc[name, "estimate"])

    def __repr__(self) -> str:
        return f"ICC ({self.note})\n{self.summary.round(4).to_string()}"

    def _repr_html_(self) -> str:
        return f"<p>ICC ({self.note})</p>" + self.summary.round(4).to_html()


def _term_values(structure: RandomStructure, at: dict | None) -> tuple[list[np.ndarray], dict]:
    """Per factor, the vector ``z`` of its random terms at ``at`` (intercept 1, others ``at`` or 0)."""
    at = dict(at or {})
    slopes = {t for f in structure.factors for t in f.term_names if t != "Intercept"}
    unknown = sorted(set(at) - slopes)
    if unknown:
        raise ValueError(
            f"'at' names {unknown}, which are not random slopes; the slopes are {sorted(slopes)}"
        )
    used = {t: float(at.get(t, 0.0)) for t in sorted(slopes)}
    z = [np.array([1.0 if t == "Intercept" else used[t] for t in f.term_names]) for f in structure.factors]
    return z, used


def _mean_row_products(structure: RandomStructure) -> list[np.ndarray]:
    """Per factor, ``Z_gᵀ Z_g / n`` over the observed rows (for the row-averaged variance)."""
    return [f.Z.T @ f.Z / len(f.Z) for f in structure.factors]


def icc_draws(
    design: Design,
    structure: RandomStructure,
    covs: list[np.ndarray],
    sigma2: np.ndarray,
    beta: np.ndarray,
    at: dict | None = None,
) -> tuple[pd.DataFrame, dict]:
    """ICCs for each set of parameters (one row per draw).

    Parameters
    ----------
    design, structure
        The model.
    covs : list of ndarray
        Per factor, the random-effect covariances, shape ``(S, q, q)``.
    sigma2 : ndarray, shape (S,)
    beta : ndarray, shape (S, p)
    at : dict, optional
        Random-slope covariate values for the per-factor ICCs (default: all 0).

    Returns
    -------
    DataFrame, dict
        The ICCs (columns: each factor's group name, then ``adjusted`` and ``conditional`` for models
        with random slopes), and the covariate values used.
    """
    z, used = _term_values(structure, at)
    at_point = [np.einsum("i,sij,j->s", zf, c, zf) for zf, c in zip(z, covs, strict=True)]
    total_at = sum(at_point) + sigma2
    out = {f.group: v / total_at for f, v in zip(structure.factors, at_point, strict=True)}
    has_slopes = any(t != "Intercept" for f in structure.factors for t in f.term_names)
    if has_slopes:
        averaged = sum(
            np.einsum("sij,ji->s", c, m) for c, m in zip(covs, _mean_row_products(structure), strict=True)
        )
        fixed_var = np.var(beta @ np.asarray(design.X).T, axis=1) if design.p else np.zeros_like(sigma2)
        out["adjusted"] = averaged / (averaged + sigma2)
        out["conditional"] = averaged / (fixed_var + averaged + sigma2)
    return pd.DataFrame(out), (used if has_slopes else {})


def summarise_draws(draws: pd.DataFrame, estimate: pd.Series | None, prob: float, hdi: bool) -> pd.DataFrame:
    """Per column: estimate (given, or the median), mean, median, interval (HDI or percentile), band."""
    rows = {}
    for col in draws.columns:
        v = draws[col].to_numpy()
        if hdi:
            da = xr.DataArray(v[None, :], dims=("chain", "draw"))
            bounds = az.hdi(da, prob=prob)
            low, high = float(bounds.sel(ci_bound="lower")), float(bounds.sel(ci_bound="upper"))
        else:
            low, high = np.quantile(v, [(1 - prob) / 2, (1 + prob) / 2])
        point = float(np.median(v)) if estimate is None else float(estimate[col])
        rows[col] = {
            "estimate": point,
            "mean": float(v.mean()),
            "median": float(np.median(v)),
            "low": float(low),
            "high": float(high),
            "interpretation": interpret_icc(point),
        }
    return pd.DataFrame.from_dict(rows, orient="index")


# -- parameters of each kind of fit -------------------------------------------------------------
def posterior_parameters(fit) -> tuple[list[np.ndarray], np.ndarray, np.ndarray]:
    """Per-factor covariance draws ``(S, q, q)``, ``σ²`` draws and fixed-effect draws of a Bayesian fit."""
    covs = [covariance_draws(fit.posterior, f) for f in fit.model.structure.factors]
    return covs, fit._stacked("sigma") ** 2, fit._stacked("fixed")


def reml_parameters(fit) -> tuple[list[np.ndarray], np.ndarray, np.ndarray]:
    """Return the same for a REML/ML fit, with one 'draw': its estimates."""
    sigma2 = np.array([fit.sigma**2])
    covs = [
        sigma2[0] * (lam @ lam.T)[None]
        for lam in (f.relative_factor(fit.theta) for f in fit.structure.factors)
    ]
    beta = fit.fixed_effects["estimate"].to_numpy()[None] if fit.design.p else np.zeros((1, 0))
    return covs, sigma2, beta


def bootstrap_parameters(fit, n_boot: int, seed) -> tuple[list[np.ndarray], np.ndarray, np.ndarray]:
    """Parameters of ``n_boot`` data sets simulated from a REML/ML fit and refitted the same way."""
    from bayesmlm.likelihood_fit import LikelihoodFit
    from bayesmlm.optimize import optimize_theta

    rng = np.random.default_rng(seed)
    design, structure = fit.design, fit.structure
    covs0, sigma2_0, beta0 = reml_parameters(fit)
    mean = np.asarray(design.X) @ beta0[0] if design.p else np.zeros(design.n)
    covs = [np.empty((n_boot, f.q, f.q)) for f in structure.factors]
    sigma2 = np.empty(n_boot)
    beta = np.empty((n_boot, design.p))
    for b in range(n_boot):
        y = mean + np.sqrt(sigma2_0[0]) * rng.standard_normal(design.n)
        for f, c in zip(structure.factors, covs0, strict=True):
            chol = np.linalg.cholesky(c[0] + 1e-12 * np.eye(f.q))
            effects = rng.standard_normal((f.n_levels, f.q)) @ chol.T
            y = y + np.sum(f.Z * effects[f.codes], axis=1)
        stats = with_response(fit.stats, design, structure, y)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            opt = optimize_theta(structure, stats, reml=fit.method == "REML", theta0=fit.theta)
            refit = LikelihoodFit(design, structure, stats, opt)
        c, s2, bt = reml_parameters(refit)
        for k in range(len(covs)):
            covs[k][b] = c[k][0]
        sigma2[b], beta[b] = s2[0], bt[0]
    return covs, sigma2, beta


def compute_icc(fit, at: dict | None = None, prob: float = 0.95, n_boot: int = 200, seed=None) -> ICC:
    """ICCs of a Bayesian fit (posterior) or a REML/ML fit (point and parametric bootstrap).

    Parameters
    ----------
    fit : Fit or LikelihoodFit
    at : dict, optional
        Random-slope covariate values for the per-factor ICCs (default: all 0).
    prob : float
        Interval probability.
    n_boot : int
        Bootstrap replicates for a REML/ML fit (0: point estimate only).
    seed : int, optional
        Seed of the bootstrap.

    Returns
    -------
    ICC
    """
    from bayesmlm.bayes_fit import Fit

    if isinstance(fit, Fit):
        design, structure = fit.model.design, fit.model.structure
        draws, used = icc_draws(design, structure, *posterior_parameters(fit), at=at)
        return ICC(draws, summarise_draws(draws, None, prob, hdi=True), "posterior", used, prob)
    design, structure = fit.design, fit.structure
    point, used = icc_draws(design, structure, *reml_parameters(fit), at=at)
    estimate = point.iloc[0]
    if n_boot <= 0:
        summary = summarise_draws(point, estimate, prob, hdi=False)
        summary[["low", "high"]] = np.nan
        return ICC(point, summary, f"{fit.method} point estimate", used, prob)
    draws, _ = icc_draws(design, structure, *bootstrap_parameters(fit, n_boot, seed), at=at)
    method = f"{fit.method} estimate, parametric bootstrap ({n_boot} replicates)"
    return ICC(draws, summarise_draws(draws, estimate, prob, hdi=False), method, used, prob)


def variance_decomposition(fit, prob: float = 0.95) -> pd.DataFrame:
    """Each variance component's share of the total variance of the response.

    Components: each grouping factor (its random-effect variance averaged over the observed rows,
    ``mean_i z_i' Σ_g z_i``; the intercept variance in a random-intercept model), the fixed effects
    (variance of ``Xβ``) and the residual. For a Bayesian fit, the posterior medians of the variances
    and of the shares with the share's HDI; for a REML/ML fit, the estimates.

    Parameters
    ----------
    fit : Fit or LikelihoodFit
    prob : float
        HDI probability (Bayesian fits).

    Returns
    -------
    DataFrame
        Indexed by component; columns ``variance``, ``share``, ``share_low``, ``share_high``.
    """
    from bayesmlm.bayes_fit import Fit

    bayes = isinstance(fit, Fit)
    design = fit.model.design if bayes else fit.design
    structure = fit.model.structure if bayes else fit.structure
    covs, sigma2, beta = posterior_parameters(fit) if bayes else reml_parameters(fit)
    parts = {
        f.group: np.einsum("sij,ji->s", c, m)
        for f, c, m in zip(structure.factors, covs, _mean_row_products(structure), strict=True)
    }
    parts["Fixed effects"] = np.var(beta @ np.asarray(design.X).T, axis=1) if design.p else 0 * sigma2
    parts["Residual"] = sigma2
    draws = pd.DataFrame(parts)
    draws = draws.mask(draws < 1e-12 * draws.sum(axis=1).to_numpy()[:, None], 0.0)  # rounding noise
    shares = draws.div(draws.sum(axis=1), axis=0)
    table = pd.DataFrame({"variance": draws.median(), "share": shares.median()})
    if bayes:
        bounds = summarise_draws(shares, None, prob, hdi=True)
        table["share_low"], table["share_high"] = bounds["low"], bounds["high"]
    else:
        table["share_low"] = table["share_high"] = np.nan
    return table
