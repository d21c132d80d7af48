"""Stage 5, results: intraclass correlations and variance decompositions, from draws of any fit.

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
  ``Reaction ~ Days + (Days | Subject)`` by REML: adjusted 0.7217, conditional 0.5206, as
  ``performance::icc`` reports (0.7217, 0.5206; ``var(Xβ)`` with R's ``n − 1`` divisor).

Bayesian fits give the posterior distribution of each ICC (one value per draw). REML fits give the
point estimate with a parametric-bootstrap percentile interval (:mod:`bayesmlm.reml.bootstrap`: data
sets are simulated from the fitted model, refitted by REML, and the ICC recomputed for each). Both
arrive here as :class:`~bayesmlm.draws.arrays.ParameterDraws`.

Interpretation bands (of the estimate): below 0.05 negligible, 0.05–0.15 moderate, 0.15–0.25
substantial, above 0.25 very strong.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from bayesmlm.arguments import checked
from bayesmlm.design.covariance import RandomStructure
from bayesmlm.design.evaluate import Design
from bayesmlm.draws.arrays import ParameterDraws
from bayesmlm.draws.summary import hdi
from bayesmlm.exceptions import ArgumentError

__all__ = [
    "ICC",
    "fixed_effect_variance",
    "icc_draws",
    "icc_from_draws",
    "interpret_icc",
    "random_effect_variances",
    "summarise_draws",
    "variance_decomposition",
]

#: upper edges of the interpretation bands
BANDS = ((0.05, "negligible"), (0.15, "moderate"), (0.25, "substantial"), (np.inf, "very strong"))


@checked
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
        interval = "HDI" if self.method.startswith("posterior") else "percentile interval"
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
        raise ArgumentError(
            f"'at' names {unknown}, which are not random slopes; the slopes are {sorted(slopes)}"
        )
    used = {t: float(at.get(t, 0.0)) for t in sorted(slopes)}
    z = [np.array([1.0 if t == "Intercept" else used[t] for t in f.term_names]) for f in structure.factors]
    return z, used


def _mean_row_products(design: Design, structure: RandomStructure) -> list[np.ndarray]:
    """Per factor, ``Z_gᵀ Z_g / n`` over the observed rows (for the row-averaged variance).

    A design without rows (from a Dask DataFrame) carries them in its moments.
    """
    if design.moments is not None:
        return [design.moments.z_products[f.group] for f in structure.factors]
    return [f.Z.T @ f.Z / len(f.Z) for f in structure.factors]


def fixed_effect_variance(design: Design, beta: np.ndarray) -> np.ndarray:
    """Return the variance of ``Xβ`` per draw, with R's ``var`` divisor ``n − 1`` (as ``performance``).

    A design without rows (from a Dask DataFrame) carries the predictors' covariance in its moments.
    """
    if not design.p:
        return np.zeros(len(beta))
    if design.moments is not None:
        n = design.n
        return np.einsum("si,ij,sj->s", beta, design.moments.x_covariance, beta) * n / (n - 1)
    return np.var(beta @ np.asarray(design.X).T, axis=1, ddof=1)


def random_effect_variances(
    design: Design, structure: RandomStructure, covariances: list[np.ndarray]
) -> list[np.ndarray]:
    """Return per factor its random-effect variance averaged over the rows, ``mean_i z_iᵀ Σ_g z_i``."""
    products = _mean_row_products(design, structure)
    return [np.einsum("sij,ji->s", c, m) for c, m in zip(covariances, products, strict=True)]


def icc_draws(
    design: Design, structure: RandomStructure, draws: ParameterDraws, at: dict | None = None
) -> tuple[pd.DataFrame, dict]:
    """ICCs for each set of parameters (one row per draw).

    Parameters
    ----------
    design, structure
        The model.
    draws : ParameterDraws
        Covariances, residual variances and fixed effects, one row per draw.
    at : dict, optional
        Random-slope covariate values for the per-factor ICCs (default: all 0).

    Returns
    -------
    DataFrame, dict
        The ICCs (columns: each factor's group name, then ``adjusted`` and ``conditional`` for models
        with random slopes), and the covariate values used.
    """
    covs, sigma2, beta = draws
    z, used = _term_values(structure, at)
    at_point = [np.einsum("i,sij,j->s", zf, c, zf) for zf, c in zip(z, covs, strict=True)]
    total_at = sum(at_point) + sigma2
    out = {f.group: v / total_at for f, v in zip(structure.factors, at_point, strict=True)}
    has_slopes = any(t != "Intercept" for f in structure.factors for t in f.term_names)
    if has_slopes:
        averaged = sum(random_effect_variances(design, structure, covs))
        fixed_var = fixed_effect_variance(design, beta)
        out["adjusted"] = averaged / (averaged + sigma2)
        out["conditional"] = averaged / (fixed_var + averaged + sigma2)
    return pd.DataFrame(out), (used if has_slopes else {})


def summarise_draws(
    draws: pd.DataFrame, estimate: pd.Series | None, prob: float, intervals: str = "hdi"
) -> pd.DataFrame:
    """Summarise each column: estimate (given, or the median), mean, median, interval, band.

    ``intervals`` is ``"hdi"`` or ``"percentile"``.
    """
    rows = {}
    for col in draws.columns:
        v = draws[col].to_numpy()
        if intervals == "hdi":
            low, high = hdi(v, prob)
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


def icc_from_draws(
    design: Design,
    structure: RandomStructure,
    draws: ParameterDraws,
    estimate: ParameterDraws | None,
    method: str,
    at: dict | None = None,
    prob: float = 0.95,
) -> ICC:
    """Compute the ICCs of a fit, from posterior draws or from a point estimate with bootstrap draws.

    Posterior draws (``estimate`` None) give HDIs around the median; a point estimate with bootstrap
    draws gives percentile intervals.

    Parameters
    ----------
    design, structure
        The model.
    draws : ParameterDraws
        Posterior draws, or bootstrap replicates (may be empty of rows: no interval).
    estimate : ParameterDraws or None
        The point estimate (one row) of a REML/ML fit; None for a Bayesian fit.
    method : str
        How the ICCs were computed, for :attr:`ICC.method`.
    at : dict, optional
        Random-slope covariate values for the per-factor ICCs (default: all 0).
    prob : float
        Interval probability.

    Returns
    -------
    ICC
    """
    if estimate is None:
        values, used = icc_draws(design, structure, draws, at=at)
        return ICC(values, summarise_draws(values, None, prob, "hdi"), method, used, prob)
    point, used = icc_draws(design, structure, estimate, at=at)
    if len(draws.sigma2) == 0:
        summary = summarise_draws(point, point.iloc[0], prob, "percentile")
        summary[["low", "high"]] = np.nan
        return ICC(point, summary, method, used, prob)
    values, _ = icc_draws(design, structure, draws, at=at)
    return ICC(values, summarise_draws(values, point.iloc[0], prob, "percentile"), method, used, prob)


def variance_decomposition(
    design: Design,
    structure: RandomStructure,
    draws: ParameterDraws,
    prob: float = 0.95,
    intervals: bool = True,
) -> pd.DataFrame:
    """Each variance component's share of the total variance of the response.

    Components: each grouping factor (its random-effect variance averaged over the observed rows,
    ``mean_i z_i' Σ_g z_i``; the intercept variance in a random-intercept model), the fixed effects
    (variance of ``Xβ``) and the residual. The medians over the draws of the variances and of the
    shares, with the share's HDI when ``intervals`` (posterior draws); a single draw (estimates) gives
    the estimates.

    Parameters
    ----------
    design, structure
        The model.
    draws : ParameterDraws
    prob : float
        HDI probability.
    intervals : bool
        Whether to give the shares' HDIs (else NaN).

    Returns
    -------
    DataFrame
        Indexed by component; columns ``variance``, ``share``, ``share_low``, ``share_high``.
    """
    covs, sigma2, beta = draws
    shares = random_effect_variances(design, structure, covs)
    parts = dict(zip((f.group for f in structure.factors), shares, strict=True))
    parts["Fixed effects"] = fixed_effect_variance(design, beta)
    parts["Residual"] = sigma2
    values = pd.DataFrame(parts)
    values = values.mask(values < 1e-12 * values.sum(axis=1).to_numpy()[:, None], 0.0)  # rounding noise
    shares = values.div(values.sum(axis=1), axis=0)
    table = pd.DataFrame({"variance": values.median(), "share": shares.median()})
    if intervals:
        bounds = summarise_draws(shares, None, prob, "hdi")
        table["share_low"], table["share_high"] = bounds["low"], bounds["high"]
    else:
        table["share_low"] = table["share_high"] = np.nan
    return table
