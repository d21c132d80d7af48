"""Data: simulated data with known parameters, ``y ~ x + (x | g)``, for calibration checks and benchmarks."""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["TRUTH", "TRUTH_BY_NAME", "simulate"]

#: default true values: fixed effects, random-effect sds and correlation, residual sd
TRUTH = {"Intercept": 1.0, "x": 0.5, "sd_Intercept": 1.0, "sd_x": 0.5, "cor": 0.3, "sigma": 1.0}

#: the same values under the names of :meth:`bayesmlm.Fit.summary`
TRUTH_BY_NAME = {
    "Intercept": TRUTH["Intercept"],
    "x": TRUTH["x"],
    "sd(Intercept|g)": TRUTH["sd_Intercept"],
    "sd(x|g)": TRUTH["sd_x"],
    "cor(Intercept,x|g)": TRUTH["cor"],
    "sigma": TRUTH["sigma"],
}


def simulate(n_groups: int, n_per_group: int, seed: int, truth: dict | None = None) -> pd.DataFrame:
    """Draw a data set from the random intercept-and-slope model ``y ~ x + (x | g)``.

    Parameters
    ----------
    n_groups, n_per_group : int
        Number of groups and rows per group.
    seed : int
        Random seed.
    truth : dict, optional
        Values replacing those of :data:`TRUTH` (keys ``Intercept``, ``x``, ``sd_Intercept``, ``sd_x``,
        ``cor``, ``sigma``).

    Returns
    -------
    DataFrame
        Columns ``y``, ``x`` and the grouping factor ``g`` (labels ``g0``, ``g1``, ...).

    Examples
    --------
    >>> d = simulate(30, 20, seed=1)
    >>> d.shape, d["g"].nunique()
    ((600, 3), 30)
    """
    t = dict(TRUTH, **(truth or {}))
    rng = np.random.default_rng(seed)
    cov = np.array(
        [
            [t["sd_Intercept"] ** 2, t["cor"] * t["sd_Intercept"] * t["sd_x"]],
            [t["cor"] * t["sd_Intercept"] * t["sd_x"], t["sd_x"] ** 2],
        ]
    )
    b = rng.multivariate_normal(np.zeros(2), cov, size=n_groups)
    g = np.repeat(np.arange(n_groups), n_per_group)
    x = rng.normal(size=n_groups * n_per_group)
    y = (t["Intercept"] + b[g, 0]) + (t["x"] + b[g, 1]) * x + rng.normal(scale=t["sigma"], size=len(x))
    return pd.DataFrame({"y": y, "x": x, "g": pd.Categorical([f"g{k}" for k in g])})
