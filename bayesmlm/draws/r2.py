"""Stage 5, results: Nakagawa's marginal and conditional R² of a linear mixed model, from draws of any fit.

Nakagawa & Schielzeth (2013, Methods Ecol. Evol. 4: 133–142), with Johnson's (2014) extension to
random slopes, as R's ``performance::r2_nakagawa`` computes them::

    σ²_F  = var(X β)                       variance of the fixed-effect predictions (R's n − 1 divisor)
    σ²_RE = Σ_g mean_i(z_iᵀ Σ_g z_i)       each factor's random-effect variance averaged over the rows
    σ²_ε  = σ²                             the residual variance
    marginal R²    = σ²_F / (σ²_F + σ²_RE + σ²_ε)
    conditional R² = (σ²_F + σ²_RE) / (σ²_F + σ²_RE + σ²_ε)

A Bayesian fit gives one R² per posterior draw (summarised by the median and HDI); a REML/ML fit is
one draw, its point estimate, with a parametric-bootstrap percentile interval when asked for.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from bayesmlm.design.covariance import RandomStructure
from bayesmlm.design.evaluate import Design
from bayesmlm.draws.arrays import ParameterDraws
from bayesmlm.draws.icc import fixed_effect_variance, random_effect_variances
from bayesmlm.draws.summary import hdi

__all__ = ["R2", "r2", "r2_draws", "r2_from_draws"]


def r2_draws(design: Design, structure: RandomStructure, draws: ParameterDraws) -> pd.DataFrame:
    """Marginal and conditional R² for each set of parameters (one row per draw).

    Examples
    --------
    >>> import bayesmlm as bm
    >>> fit = bm.Model("Reaction ~ Days + (1 | Subject)", bm.load_dataset("sleepstudy")).fit_reml()
    >>> r2_draws(fit.design, fit.structure, fit.population_draws()).round(4).to_dict("records")
    [{'marginal': 0.2799, 'conditional': 0.7043}]
    """
    covs, sigma2, beta = draws
    fixed = fixed_effect_variance(design, beta)
    random = sum(random_effect_variances(design, structure, covs))
    total = fixed + random + sigma2
    return pd.DataFrame({"marginal": fixed / total, "conditional": (fixed + random) / total})


@dataclass
class R2:
    """Marginal and conditional R²: their draws and a summary.

    Attributes
    ----------
    draws : DataFrame
        ``marginal`` and ``conditional``, one row per posterior draw or bootstrap replicate.
    summary : DataFrame
        Per R²: ``estimate`` (REML point estimate, or posterior median), ``mean``, ``median``, ``low``,
        ``high`` (HDI, or bootstrap percentile interval; NaN without draws).
    method : str
        How it was computed.
    prob : float
    """

    draws: pd.DataFrame
    summary: pd.DataFrame
    method: str
    prob: float = 0.95

    def __getitem__(self, name: str) -> float:
        """Return the estimate of ``"marginal"`` or ``"conditional"``."""
        return float(self.summary.loc[name, "estimate"])

    def __repr__(self) -> str:
        return f"Nakagawa R² ({self.method}; {self.prob:.0%} interval)\n{self.summary.round(4).to_string()}"

    def _repr_html_(self) -> str:
        return (
            f"<p>Nakagawa R² ({self.method}; {self.prob:.0%} interval)</p>" + self.summary.round(4).to_html()
        )


def r2_from_draws(
    design: Design,
    structure: RandomStructure,
    draws: ParameterDraws,
    estimate: ParameterDraws | None,
    prob: float = 0.95,
) -> R2:
    """R² of a fit: from posterior draws (``estimate`` None), or a point estimate with bootstrap draws.

    Parameters
    ----------
    design, structure
        The model.
    draws : ParameterDraws
        Posterior draws, or bootstrap replicates (may have no rows: no interval).
    estimate : ParameterDraws or None
        A REML/ML fit's estimates as one draw.
    prob : float
        Interval probability.

    Returns
    -------
    R2
    """
    values = r2_draws(design, structure, draws) if len(draws.sigma2) else None
    if estimate is None:
        point, method, interval = values.median(), "posterior", "hdi"
    else:
        point = r2_draws(design, structure, estimate).iloc[0]
        method = (
            f"point estimate, parametric bootstrap ({len(draws.sigma2)} replicates)"
            if values is not None
            else "point estimate"
        )
        interval = "percentile"
    rows = {}
    for name in ("marginal", "conditional"):
        if values is None:
            rows[name] = {
                "estimate": point[name],
                "mean": np.nan,
                "median": np.nan,
                "low": np.nan,
                "high": np.nan,
            }
            continue
        v = values[name].to_numpy()
        low, high = hdi(v, prob) if interval == "hdi" else np.quantile(v, [(1 - prob) / 2, (1 + prob) / 2])
        rows[name] = {
            "estimate": float(point[name]),
            "mean": float(v.mean()),
            "median": float(np.median(v)),
            "low": float(low),
            "high": float(high),
        }
    summary = pd.DataFrame.from_dict(rows, orient="index")
    return R2(values if values is not None else r2_draws(design, structure, estimate), summary, method, prob)


def r2(fit, prob: float = 0.95, **kwargs) -> R2:
    """Nakagawa's marginal and conditional R² of a Bayesian or REML/ML fit (``fit.r2(...)``).

    Parameters
    ----------
    fit : Fit or LikelihoodFit
    prob : float
        Interval probability.
    **kwargs
        For a REML/ML fit, ``n_boot`` and ``seed`` of the parametric bootstrap (default: no interval).

    Returns
    -------
    R2

    Examples
    --------
    >>> import bayesmlm as bm
    >>> fit = bm.Model("height ~ age + (age | Subject)", bm.load_dataset("Oxboys")).fit_reml()
    >>> res = bm.r2(fit)
    >>> round(res["marginal"], 3), round(res["conditional"], 3)  # performance: 0.20985, 0.99489
    (0.21, 0.995)
    """
    return fit.r2(prob=prob, **kwargs)
