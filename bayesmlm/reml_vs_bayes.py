"""Results: Bayes beside REML, one table with both fits' estimates and uncertainty per parameter.

Above both fitting stages: it reads a Bayesian :class:`~bayesmlm.bayes.fit.Fit` and a
:class:`~bayesmlm.reml.fit.LikelihoodFit` through the faces they share (``population_draws``, the
REML parametric bootstrap) and names every parameter by the one rule of :mod:`bayesmlm.design.names`.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import pandas as pd
from scipy import stats

from bayesmlm.arguments import checked
from bayesmlm.bayes.fit import Fit
from bayesmlm.design.names import named_parameters
from bayesmlm.draws.arrays import ParameterDraws, sd_cor_from_covariances
from bayesmlm.draws.icc import summarise_draws
from bayesmlm.exceptions import ArgumentError
from bayesmlm.reml.fit import LikelihoodFit
from bayesmlm.reml.glmm_results import GeneralizedLikelihoodFit

__all__ = ["compare_estimates"]


def _named(
    fit: LikelihoodFit | GeneralizedLikelihoodFit, draws: ParameterDraws, scale
) -> dict[str, np.ndarray]:
    """brms-named parameters from covariance matrices (one row per replicate)."""
    sds, cors = sd_cor_from_covariances(fit.structure, draws.covariances)
    # a generalized fit's sigma2 is the latent residual variance, not a parameter: no sigma row
    sigma = None if isinstance(fit, GeneralizedLikelihoodFit) else np.sqrt(draws.sigma2)
    return named_parameters(fit.structure, fit.design.fixed_names, draws.fixed, sds, cors, sigma, scale)


@checked
def compare_estimates(
    fit: Fit,
    reml_fit: LikelihoodFit,
    prob: float = 0.95,
    scale: Literal["sd", "var"] = "sd",
    n_boot: int = 200,
    seed: int | None = None,
) -> pd.DataFrame:
    """Set a Bayesian fit beside a REML (or ML) fit of the same model, parameter by parameter.

    Fixed effects get the REML estimate, its standard error and the Wald interval; the variance
    parameters (sds, correlations, sigma, or with ``scale="var"`` the variances and covariances) get
    the REML estimate with a parametric-bootstrap standard error and percentile interval (``n_boot``
    data sets simulated from the REML fit and refitted; kept with the fit, so the ICC, ``confint`` and
    a second call with the same ``n_boot`` and seed reuse them), since their sampling distributions
    are skewed. Beside them: the posterior median, sd and HDI.

    Parameters
    ----------
    fit : Fit
        The Bayesian fit.
    reml_fit : LikelihoodFit or GeneralizedLikelihoodFit
        The REML/ML fit of the same formula and data (a GLMM's Laplace or quadrature ML fit: its
        parameters are on the link scale, without ``sigma``; a negative binomial's ``shape`` is
        set beside its ML estimate without a bootstrap interval).
    prob : float
        Probability of the intervals (both kinds).
    scale : {"sd", "var"}
        Variance parameters as sds and correlations (brms' names), or also as variances and
        covariances (statsmodels' names).
    n_boot : int
        Bootstrap replicates for the variance parameters (0: no SE or interval for them).
    seed : int, optional
        Seed of the bootstrap (the REML fit's own seed, drawn once, if omitted).

    Returns
    -------
    DataFrame
        Indexed by parameter; columns ``reml``, ``reml_se``, ``reml_low``, ``reml_high``,
        ``reml_interval`` (how the interval was made), ``median``, ``posterior_sd``, ``hdi_low``,
        ``hdi_high``.

    Raises
    ------
    ValueError
        If the two fits are of different formulas or data.
    """
    if not isinstance(fit, Fit) or not isinstance(reml_fit, LikelihoodFit | GeneralizedLikelihoodFit):
        raise TypeError(
            "compare_estimates(fit, reml_fit) takes a Bayesian Fit and a LikelihoodFit, in that order"
        )
    if fit.model.spec.formula != reml_fit.design.spec.formula or fit.model.design.n != reml_fit.design.n:
        raise ArgumentError(
            f"the fits differ: '{fit.model.spec.formula}' on {fit.model.design.n} rows vs "
            f"'{reml_fit.design.spec.formula}' on {reml_fit.design.n} rows; "
            "fit the same model to the same data"
        )
    point = {
        k: float(np.asarray(v).reshape(-1)[0])
        for k, v in _named(reml_fit, reml_fit.population_draws(), scale).items()
    }
    dispersion = getattr(reml_fit, "dispersion", None)
    if dispersion is not None:  # the negative binomial's shape: its ML estimate, not bootstrapped
        point[reml_fit.family.dispersion_name] = float(dispersion)
    boot = _named(reml_fit, reml_fit.bootstrap_draws(n_boot, seed), scale) if n_boot > 0 else {}
    draws = {k: np.asarray(v).reshape(-1) for k, v in fit.parameter_draws(scale).items()}
    posterior = summarise_draws(pd.DataFrame(draws), None, prob, "hdi")
    fixed = reml_fit.fixed_effects
    z = stats.norm.ppf((1 + prob) / 2)
    rows = {}
    for name in draws:
        if name in fixed.index:
            est, se = fixed.loc[name, "estimate"], fixed.loc[name, "se"]
            low, high, how = est - z * se, est + z * se, "Wald"
        elif name in boot:
            values = boot[name][np.isfinite(boot[name])]
            est, se = point[name], float(np.std(values, ddof=1))
            low, high = np.quantile(values, [(1 - prob) / 2, (1 + prob) / 2])
            how = f"parametric bootstrap ({n_boot})"
        else:
            est, se, low, high, how = point.get(name, np.nan), np.nan, np.nan, np.nan, "none"
        rows[name] = {
            "reml": float(est),
            "reml_se": float(se),
            "reml_low": float(low),
            "reml_high": float(high),
            "reml_interval": how,
            "median": posterior.loc[name, "median"],
            "posterior_sd": float(np.std(draws[name], ddof=1)),
            "hdi_low": posterior.loc[name, "low"],
            "hdi_high": posterior.loc[name, "high"],
        }
    return pd.DataFrame.from_dict(rows, orient="index")
