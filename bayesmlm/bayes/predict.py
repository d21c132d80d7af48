"""Stage 4b, Bayes: posterior predictions: the mean response per draw, new groups from the population.

For each posterior draw, ``Xβ + Σ_g Z_g b_g``; a level not seen in fitting gets effects drawn from
the population distribution (one draw per level and posterior draw), or is refused.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import pandas as pd
import xarray as xr

from bayesmlm.bayes.posterior import covariance_draws, stacked_draws
from bayesmlm.design.covariance import FactorTerms, RandomStructure
from bayesmlm.design.evaluate import Design
from bayesmlm.design.levels import level_keys
from bayesmlm.exceptions import DataError

__all__ = ["NewLevels", "mean_draws"]

NewLevels = Literal["population", "error"]


def mean_draws(
    posterior: xr.Dataset,
    design: Design,
    structure: RandomStructure,
    newdata: pd.DataFrame | None,
    include_random: bool,
    new_levels: NewLevels,
    seed,
    effects=None,
) -> np.ndarray:
    """Draws of the mean response, shape (samples, rows): the fitted rows, or ``newdata``'s.

    Rows of ``newdata`` with a missing value are NaN (with a MissingValueWarning from the design).
    ``effects(factor, positions)``, if given, returns the draws (S, len(positions), q) of the levels at
    ``positions`` instead of the posterior's ``r_<group>`` (a fit drawing them on demand: only the
    levels the rows touch are drawn, :mod:`bayesmlm.bayes.group_draws`).
    """
    rng = np.random.default_rng(seed)
    fixed = stacked_draws(posterior, "fixed")  # (S, p)
    if newdata is None:
        X = np.asarray(design.X)
    else:
        missing = design.check_newdata(newdata, include_random)
        if missing.any():
            complete = mean_draws(
                posterior, design, structure, newdata.loc[~missing], include_random, new_levels, seed, effects
            )
            out = np.full((complete.shape[0], len(newdata)), np.nan)
            out[:, ~missing] = complete
            return out
        X = design.fixed_design(newdata)
    mu = fixed @ X.T  # (S, n)
    if not include_random:
        return mu
    for f in structure.factors:
        if newdata is None:
            codes, Z = f.codes, np.asarray(f.Z)
            unseen_rows = np.zeros(len(codes), dtype=bool)
        else:
            Z, codes, unseen_rows = f.evaluate(newdata)
            if unseen_rows.any() and new_levels == "error":
                unseen = f.unseen_levels(newdata)[:10]
                raise DataError(
                    f"newdata has level(s) of {f.group} not seen in fitting: {unseen}; "
                    "use new_levels='population' to draw them from the population distribution"
                )
            codes = np.where(unseen_rows, 0, codes)  # replaced below by population draws
        if effects is None:
            r = stacked_draws(posterior, f"r_{f.group}")[:, codes, :]  # (S, n, q)
        else:
            used, inverse = np.unique(codes, return_inverse=True)
            r = effects(f, used)[:, inverse, :]
        effect = np.einsum("nq,snq->sn", Z, r)
        if unseen_rows.any():
            keys = level_keys(newdata, f.source_blocks[0].term.factor)
            new = _new_level_effects(posterior, f, keys, unseen_rows, rng)  # (S, n_unseen_rows, q)
            effect[:, unseen_rows] = np.einsum("nq,snq->sn", Z[unseen_rows], new)
        mu = mu + effect
    return mu


def _new_level_effects(posterior: xr.Dataset, f: FactorTerms, keys, unseen_rows, rng) -> np.ndarray:
    """Draw effects of unseen levels from the population distribution, one draw per level and sample."""
    chol = covariance_draws(posterior, f, cholesky=True, jitter=1e-12)
    S, q = chol.shape[:2]
    levels = sorted({k for k, u in zip(keys, unseen_rows, strict=True) if u})
    z = rng.standard_normal((S, len(levels), q))
    per_level = np.einsum("sij,slj->sli", chol, z)
    position = {lev: i for i, lev in enumerate(levels)}
    rows = [position[k] for k, u in zip(keys, unseen_rows, strict=True) if u]
    return per_level[:, rows, :]
