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
from bayesmlm.reml.estimates import Estimates

__all__ = ["statsmodels_components", "varcorr_frame"]


def varcorr_frame(structure: RandomStructure, estimates: Estimates) -> pd.DataFrame:
    """Variance components as lme4's ``as.data.frame(VarCorr(m))``: grp, var1, var2, vcov, sdcor.

    Examples
    --------
    >>> import bayesmlm as bm
    >>> fit = bm.Model("Yield ~ 1 + (1 | Batch)", bm.load_dataset("Dyestuff")).fit_reml()
    >>> varcorr_frame(fit.structure, fit.estimates)["sdcor"].round(2).tolist()  # lme4: 42.00, 49.51
    [42.0, 49.51]
    """
    rows = []
    for f in structure.factors:
        cov = estimates.covariances[f.group]
        sds, cors = estimates.sd_cor(f.group)  # from the unit-scale values: exact at any magnitude
        for label, start, size in f.blocks():
            names = f.term_names[start : start + size]
            block = cov[start : start + size, start : start + size]
            for i in range(size):
                rows.append((label, names[i], None, block[i, i], sds[start + i]))
            for j in range(size):
                for i in range(j + 1, size):
                    rows.append((label, names[j], names[i], block[i, j], cors[start + i, start + j]))
    rows.append(("Residual", None, None, estimates.sigma2, estimates.sigma))
    return pd.DataFrame(rows, columns=["grp", "var1", "var2", "vcov", "sdcor"])


def statsmodels_components(structure: RandomStructure, varcorr: pd.DataFrame) -> pd.Series:
    """Name variances and covariances as statsmodels (``Subject Var``, ``Subject x Days Cov``, ``Scale``)."""
    return pd.Series(statsmodels_variances(structure, varcorr), name="estimate")
