"""Stage 4a, REML/ML: confidence intervals of every parameter of a fit, three ways (lme4's ``confint``).

``"profile"``: the profile-likelihood interval of :mod:`bayesmlm.reml.profile` (ML deviance, as lme4;
kept per fit and level). ``"wald"``: estimate ± z·se, by the delta method on the Hessian of the fit's
own criterion for the variance parameters (poor near a boundary; lme4 gives none for them).
``"boot"``: percentile intervals of the fit's cached parametric bootstrap (:mod:`bayesmlm.reml.bootstrap`).
Rows are in lme4's order: each block's sds and correlations, sigma, the fixed effects.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats as sps

from bayesmlm.exceptions import ArgumentError
from bayesmlm.reml.bootstrap import bootstrap
from bayesmlm.reml.derivatives import value_jacobian_hessian
from bayesmlm.reml.faces import LikelihoodFaces
from bayesmlm.reml.profile import sdcor_layout, sdcor_of

__all__ = ["METHODS", "confidence_intervals"]

METHODS = ("profile", "wald", "boot")


def _estimates(fit: LikelihoodFaces) -> pd.Series:
    """Return the fit's own estimates in lme4's order (variance parameters, sigma, fixed effects)."""
    psi = sdcor_of(fit, fit.theta, fit.sigma)
    names = [p.name for p in sdcor_layout(fit)]
    return pd.concat([pd.Series(psi, index=names), fit.fixed_effects["estimate"].rename(None)])


def _wald(fit: LikelihoodFaces, level: float) -> pd.DataFrame:
    z = sps.norm.ppf(0.5 + level / 2)
    varpar = fit.small_sample.varpar
    k = fit.structure.n_theta
    _, jac, _ = value_jacobian_hessian(lambda v: sdcor_of(fit, v[:k], v[k]), varpar.varpar)
    se = np.sqrt(np.clip(np.diag(jac @ varpar.vcov_varpar @ jac.T), 0.0, None))
    se = np.concatenate([se, fit.fixed_effects["se"].to_numpy()])
    est = _estimates(fit)
    return pd.DataFrame({"lower": est - z * se, "upper": est + z * se}, index=est.index)


def confidence_intervals(
    fit: LikelihoodFaces, method: str = "profile", level: float = 0.95, n_boot: int = 200, seed=None
) -> pd.DataFrame:
    """Confidence intervals of every parameter: ``estimate``, ``lower``, ``upper`` (see the module).

    Parameters
    ----------
    fit : LikelihoodFit
    method : {"profile", "wald", "boot"}
    level : float
    n_boot, seed
        Replicates and seed of the parametric bootstrap (``method="boot"``; cached per fit).

    Returns
    -------
    DataFrame
        Indexed by parameter in lme4's order (sds and correlations by block, sigma, fixed effects);
        ``estimate`` is the fit's own (REML or ML) estimate; ``attrs["method"]`` says how it was made.
    """
    if method not in METHODS:
        raise ArgumentError(f"method must be one of {', '.join(METHODS)}, not {method!r}")
    if not 0 < level < 1:
        raise ArgumentError(f"level must lie in (0, 1), not {level}")
    est = _estimates(fit)
    if method == "profile":
        table = fit.small_sample.profile(level).intervals
        how = "profile likelihood (ML deviance, as lme4)"
    elif method == "wald":
        table = _wald(fit, level)
        how = f"Wald (delta method on the {fit.method} Hessian for the variance parameters)"
    else:
        boot = bootstrap(fit, n=n_boot, seed=seed)
        table = boot.confint(level)
        how = f"parametric bootstrap percentile ({n_boot} replicates, seed {boot.seed})"
    out = pd.DataFrame({"estimate": est}).join(table[["lower", "upper"]])
    out.index.name = "parameter"
    out.attrs["method"] = how
    return out
