"""Stage 4a, REML/ML: predictions of a REML/ML fit: ``Xβ`` plus each row's conditional modes.

A level not seen in fitting is predicted at the population level (random effect 0), or refused.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import pandas as pd

from bayesmlm.arguments import choice
from bayesmlm.design.covariance import FactorTerms, RandomStructure
from bayesmlm.design.evaluate import Design
from bayesmlm.exceptions import DataError
from bayesmlm.reml.estimates import Estimates

__all__ = ["NewLevels", "fitted_values", "predict_mean"]

NewLevels = Literal["population", "error"]


def _random_part(est: Estimates, factors_z: list[tuple[FactorTerms, np.ndarray, np.ndarray]]) -> np.ndarray:
    total = 0.0
    for f, Z, codes in factors_z:
        b = np.vstack([est.modes[f.group], np.zeros((1, f.q))])  # last row: population (0)
        total = total + np.sum(Z * b[codes], axis=1)
    return total


def fitted_values(design: Design, structure: RandomStructure, est: Estimates) -> pd.Series:
    """Fitted values ``Xβ + Zb`` for the rows used, indexed like the data."""
    design.require_rows("fitted values (and residuals, and predict() without newdata)")
    parts = [(f, f.Z, f.codes) for f in structure.factors]
    values = design.X @ est.beta + _random_part(est, parts)
    return pd.Series(values, index=design.rows, name="fitted")


def predict_mean(
    design: Design,
    structure: RandomStructure,
    est: Estimates,
    newdata: pd.DataFrame | None,
    include_random: bool,
    new_levels: NewLevels,
) -> pd.Series:
    """Predict the mean response of ``newdata`` (see :meth:`~bayesmlm.reml.fit.LikelihoodFit.predict`)."""
    if newdata is None:
        design.require_rows("predict() without newdata (the fitted rows)")
        return (
            fitted_values(design, structure, est)
            if include_random
            else pd.Series(design.X @ est.beta, index=design.rows, name="predicted")
        )
    choice("new_levels", new_levels, ("population", "error"))
    missing = design.check_newdata(newdata, include_random)
    if missing.any():
        out = np.full(len(newdata), np.nan)
        out[~missing] = predict_mean(
            design, structure, est, newdata.loc[~missing], include_random, new_levels
        ).to_numpy()
        return pd.Series(out, index=newdata.index, name="predicted")
    values = design.fixed_design(newdata) @ est.beta
    if include_random:
        parts = []
        for f in structure.factors:
            Z, codes, unseen = f.evaluate(newdata)
            if unseen.any() and new_levels == "error":
                unseen = f.unseen_levels(newdata)[:10]
                raise DataError(
                    f"newdata has level(s) of {f.group} not seen in fitting: {unseen}; "
                    "use new_levels='population' to predict them at the population level"
                )
            parts.append((f, Z, codes))
        values = values + _random_part(est, parts)
    return pd.Series(values, index=newdata.index, name="predicted")
