"""Stage 4a, REML/ML: the variance components of a fit, in lme4's and in statsmodels' layout.

:func:`varcorr_frame` is lme4's ``as.data.frame(VarCorr(m))``: one row per variance and per
covariance of each random-effects block (variances first, then covariances), ``Residual`` last.
:func:`statsmodels_components` renames them as statsmodels does (``Subject Var``,
``Subject x Days Cov``, ``Scale``).
"""

from __future__ import annotations

import pandas as pd

from bayesmlm.design.covariance import RandomStructure
from bayesmlm.design.names import statsmodels_variances
from bayesmlm.reml.estimates import Estimates, sd_and_correlation

__all__ = ["covariance_table", "statsmodels_components", "varcorr_frame"]


def covariance_table(
    structure: RandomStructure, covariances: dict, sd_cor=None, residual: tuple[float, float] | None = None
) -> pd.DataFrame:
    """lme4's ``as.data.frame(VarCorr(m))`` from each factor's covariance: grp, var1, var2, vcov, sdcor.

    One row per variance (``var2`` missing) and per covariance of each block (variances first, then
    covariances, as lme4). ``sd_cor(group)`` gives a factor's sds and correlation matrix (by default
    from its covariance); ``residual`` is ``(σ², σ)`` for a ``Residual`` row (a GLMM has none).
    """
    rows = []
    for f in structure.factors:
        cov = covariances[f.group]
        sds, cors = sd_cor(f.group) if sd_cor else sd_and_correlation(cov)
        for label, start, size in f.blocks():
            names = f.term_names[start : start + size]
            block = cov[start : start + size, start : start + size]
            for i in range(size):
                rows.append((label, names[i], None, block[i, i], sds[start + i]))
            for j in range(size):
                for i in range(j + 1, size):
                    rows.append((label, names[j], names[i], block[i, j], cors[start + i, start + j]))
    if residual is not None:
        rows.append(("Residual", None, None, *residual))
    return pd.DataFrame(rows, columns=["grp", "var1", "var2", "vcov", "sdcor"])


def varcorr_frame(structure: RandomStructure, estimates: Estimates) -> pd.DataFrame:
    """Variance components as lme4's ``as.data.frame(VarCorr(m))``, ``Residual`` last.

    The sds and correlations come from the unit-scale values (:meth:`Estimates.sd_cor`): exact at any
    magnitude of the response.

    Examples
    --------
    >>> import bayesmlm as bm
    >>> fit = bm.Model("Yield ~ 1 + (1 | Batch)", bm.load_dataset("Dyestuff")).fit_reml()
    >>> varcorr_frame(fit.structure, fit.estimates)["sdcor"].round(2).tolist()  # lme4: 42.00, 49.51
    [42.0, 49.51]
    """
    residual = (estimates.sigma2, estimates.sigma)
    return covariance_table(structure, estimates.covariances, estimates.sd_cor, residual)


def statsmodels_components(structure: RandomStructure, varcorr: pd.DataFrame) -> pd.Series:
    """Name variances and covariances as statsmodels (``Subject Var``, ``Subject x Days Cov``, ``Scale``)."""
    return pd.Series(statsmodels_variances(structure, varcorr), name="estimate")
