"""Stage 4a, REML/ML: the conditional modes of the random effects as tables (lme4's ``ranef``, ``coef``)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from bayesmlm.design.covariance import RandomStructure
from bayesmlm.reml.estimates import Estimates

__all__ = ["coefficients_frame", "random_effects_frame"]


def random_effects_frame(
    structure: RandomStructure, estimates: Estimates, group: str | None, conditional_sd: bool
) -> pd.DataFrame:
    """One factor's conditional modes, one row per level, with ``<term>_sd`` columns if asked.

    Examples
    --------
    >>> import bayesmlm as bm
    >>> fit = bm.Model("Yield ~ 1 + (1 | Batch)", bm.load_dataset("Dyestuff")).fit_reml()
    >>> random_effects_frame(fit.structure, fit.estimates, None, False).round(2)["Intercept"].tolist()
    [-17.61, 0.39, 28.56, -23.08, 56.73, -45.0]
    """
    f = structure.factor(group)
    out = pd.DataFrame(
        estimates.modes[f.group], index=pd.Index(f.levels, name=f.group), columns=list(f.term_names)
    )
    if conditional_sd:
        sd = np.sqrt(np.diagonal(estimates.condvar[f.group], axis1=1, axis2=2))
        for k, name in enumerate(f.term_names):
            out[f"{name}_sd"] = sd[:, k]
    return out


def coefficients_frame(random: pd.DataFrame, fixed: pd.Series) -> pd.DataFrame:
    """Return each level's coefficients: fixed effects plus its conditional modes (lme4's ``coef``)."""
    out = pd.DataFrame(np.tile(fixed.to_numpy(), (len(random), 1)), index=random.index, columns=fixed.index)
    for name in random.columns:
        out[name] = out[name] + random[name] if name in out else random[name]
    return out
