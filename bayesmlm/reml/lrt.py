"""Stage 4a, REML/ML: likelihood-ratio tests between nested linear mixed models (lme4's ``anova``)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats as sps

from bayesmlm.arguments import checked
from bayesmlm.exceptions import BayesMLMError
from bayesmlm.reml.fit import LikelihoodFit

__all__ = ["LRTResult", "lrt"]


@dataclass(frozen=True)
class LRTResult:
    """Result of :func:`lrt`.

    Attributes
    ----------
    table : DataFrame
        One row per model: npar, AIC, BIC, logLik, deviance, Chisq, Df, p (as lme4's ``anova``).
    statistic : float
        ``2 (logLik_larger - logLik_smaller)``.
    df : int
        Difference in the number of parameters.
    p_value : float
        Naive p-value from the chi-square distribution with ``df`` degrees of freedom.
    p_value_boundary : float or None
        When the larger model adds variance components (tested on the boundary of the parameter
        space), the p-value from the 50:50 mixture of chi-square distributions with ``df - 1`` and
        ``df`` degrees of freedom (Self & Liang 1987; Stram & Lee 1994); otherwise None.
    method : str
        ``"ML"`` or ``"REML"``: which likelihood was compared.
    refitted : bool
        Whether REML fits were refitted by ML because their fixed effects differ.
    """

    table: pd.DataFrame
    statistic: float
    df: int
    p_value: float
    p_value_boundary: float | None
    method: str
    refitted: bool

    def __str__(self) -> str:
        lines = [
            f"Likelihood-ratio test ({self.method}{', refitted by ML' if self.refitted else ''})",
            self.table.to_string(float_format=lambda v: f"{v:.4g}", na_rep=""),
            f"Chisq = {self.statistic:.4f} on {self.df} df, p = {self.p_value:.4g}",
        ]
        if self.p_value_boundary is not None:
            lines.append(
                f"boundary-corrected p (50:50 mixture of chi-square({self.df - 1}) and "
                f"chi-square({self.df})) = {self.p_value_boundary:.4g}"
            )
        return "\n".join(lines)


def _chi2_sf(x: float, df: int) -> float:
    if df == 0:
        return 0.0 if x > 0 else 1.0
    return float(sps.chi2.sf(x, df))


@checked
def lrt(smaller: LikelihoodFit, larger: LikelihoodFit) -> LRTResult:
    """Likelihood-ratio test of a smaller model against a larger one that contains it.

    Both models must be fitted to the same observations. REML likelihoods are only comparable when
    the fixed effects are the same; when they differ, REML fits are refitted by ML (as lme4's
    ``anova`` does). When the larger model adds random-effect variances, the naive chi-square
    p-value is conservative, so the 50:50 chi-bar-square p-value is reported beside it.

    Parameters
    ----------
    smaller, larger : LikelihoodFit
        Fits from :meth:`bayesmlm.Model.fit_reml` or :meth:`bayesmlm.Model.fit_ml`.

    Returns
    -------
    LRTResult

    Examples
    --------
    >>> import bayesmlm as bm
    >>> data = bm.load_dataset("sleepstudy")
    >>> m0 = bm.Model("Reaction ~ Days + (1 | Subject)", data).fit_reml()
    >>> m1 = bm.Model("Reaction ~ Days + (Days | Subject)", data).fit_reml()
    >>> res = bm.lrt(m0, m1)
    >>> res.method, res.df, round(res.statistic, 2)
    ('REML', 2, 42.84)
    """
    for fit in (smaller, larger):
        if not isinstance(fit, LikelihoodFit):
            raise TypeError(f"lrt takes REML/ML fits, not {type(fit).__name__}")
    if smaller.nobs != larger.nobs or not np.array_equal(smaller.design.y, larger.design.y):
        raise BayesMLMError(
            "the models were fitted to different observations "
            f"({smaller.nobs} and {larger.nobs} rows); refit both to the same rows"
        )
    w_small, w_large = (getattr(f.design, "weights", None) for f in (smaller, larger))
    if (w_small is None) != (w_large is None) or (
        w_small is not None and not np.array_equal(w_small, w_large)
    ):
        raise BayesMLMError(
            "the models were fitted with different prior weights (weights=); a likelihood-ratio test "
            "compares models of the same weighted observations: refit both with the same weights"
        )
    if smaller.n_parameters > larger.n_parameters:
        raise BayesMLMError(
            f"the first model has more parameters ({smaller.n_parameters}) than the second "
            f"({larger.n_parameters}); pass the smaller model first"
        )
    same_fixed = smaller.design.fixed_names == larger.design.fixed_names and np.allclose(
        smaller.design.X, larger.design.X
    )
    methods = {smaller.method, larger.method}
    refitted = False
    if same_fixed and methods == {"REML"}:
        method = "REML"
    else:
        method = "ML"
        refitted = "REML" in methods
        smaller, larger = smaller.refit(reml=False), larger.refit(reml=False)
    stat = max(2 * (larger.loglik - smaller.loglik), 0.0)
    df = larger.n_parameters - smaller.n_parameters
    p = _chi2_sf(stat, df)
    # the boundary applies to added variances (theta's diagonal), not to added covariances: going
    # from (Days || Subject) to (Days | Subject) adds only a correlation, whose null value 0 is interior
    variances = sum(int(f.is_diagonal_entry.sum()) for f in larger.structure.factors)
    adds_variance = variances > sum(int(f.is_diagonal_entry.sum()) for f in smaller.structure.factors)
    p_boundary = 0.5 * _chi2_sf(stat, df - 1) + 0.5 * p if adds_variance and df >= 1 else None
    table = pd.DataFrame(
        {
            "npar": [smaller.n_parameters, larger.n_parameters],
            "AIC": [smaller.aic, larger.aic],
            "BIC": [smaller.bic, larger.bic],
            "logLik": [smaller.loglik, larger.loglik],
            "deviance": [smaller.deviance, larger.deviance],
            "Chisq": [np.nan, stat],
            "Df": [np.nan, df],
            "p": [np.nan, p],
        },
        index=[str(smaller.design.spec), str(larger.design.spec)],
    )
    return LRTResult(table, stat, df, p, p_boundary, method, refitted)
