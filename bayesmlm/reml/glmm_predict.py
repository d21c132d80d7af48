"""Stage 4a, REML/ML: predictions of a GLMM fit on the link or the response scale, and its residuals.

The linear predictor is the linear mixed model's prediction (:func:`~bayesmlm.reml.predict.predict_mean`:
``Xβ`` plus each row's conditional modes; an unseen level at the population level, random effect 0)
plus the offset; on the response scale it goes through the inverse link, as lme4's
``predict(type = "response")``: the mean given the modes, not averaged over the random effects.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import pandas as pd

from bayesmlm.design.covariance import RandomStructure
from bayesmlm.design.evaluate import Design
from bayesmlm.exceptions import ArgumentError
from bayesmlm.families.base import Family
from bayesmlm.reml.predict import NewLevels, predict_mean

__all__ = ["Scale", "predict_glmm", "residuals_of"]

Scale = Literal["response", "link"]
Residual = Literal["response", "pearson", "deviance", "working"]


def predict_glmm(
    design: Design,
    structure: RandomStructure,
    family: Family,
    estimates,
    newdata: pd.DataFrame | None,
    include_random: bool,
    new_levels: NewLevels,
    scale: Scale,
) -> pd.Series:
    """Predict the linear predictor or the mean response of ``newdata`` (the fitted rows if None)."""
    if scale not in ("response", "link"):
        raise ArgumentError(f"scale must be 'response' or 'link', not {scale!r}")
    eta = predict_mean(design, structure, estimates, newdata, include_random, new_levels)
    if newdata is None:
        offset = 0.0 if design.offset is None else np.asarray(design.offset)
    else:
        offset = np.full(len(newdata), np.nan)
        keep = eta.notna().to_numpy()
        offset[keep] = design.offset_for(newdata.loc[keep]) if keep.any() else []
    eta = eta + offset
    if scale == "link":
        return eta.rename("link")
    return pd.Series(family.link.linkinv(eta.to_numpy()), index=eta.index, name="predicted")


def residuals_of(design: Design, family: Family, estimates, kind: Residual) -> pd.Series:
    """Residuals of the fitted rows: response (``y - μ``), Pearson, deviance (signed) or working."""
    data = family.glm_data(design)
    mu, eta = estimates.mu, estimates.eta
    raw = data.y - mu
    if kind == "response":
        values = raw
    elif kind == "pearson":
        values = raw * np.sqrt(data.wt / family.variance(mu, estimates.dispersion))
    elif kind == "deviance":
        values = np.sign(raw) * np.sqrt(
            np.maximum(family.deviance_residuals(data, mu, estimates.dispersion), 0)
        )
    elif kind == "working":
        values = raw / family.link.mu_eta(eta)
    else:
        raise ArgumentError(f"kind must be 'response', 'pearson', 'deviance' or 'working', not {kind!r}")
    return pd.Series(values, index=design.rows, name="residual")
