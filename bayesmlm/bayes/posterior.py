"""Stage 4b, Bayes: reading a posterior: draws of a variable as arrays, covariances, parameter summaries."""

from __future__ import annotations

import arviz as az
import numpy as np
import pandas as pd
import xarray as xr

from bayesmlm.design.covariance import FactorTerms
from bayesmlm.draws.arrays import covariances_from_sd_cor
from bayesmlm.draws.summary import hdi

__all__ = ["covariance_draws", "flat_draws", "stacked_draws", "summarise_parameters"]


def flat_draws(da: xr.DataArray) -> np.ndarray:
    """Draws as (chain, draw, ...) numpy."""
    return np.asarray(da.transpose("chain", "draw", ...).values)


def stacked_draws(posterior: xr.Dataset, name: str) -> np.ndarray:
    """Draws of a posterior variable with chains and draws merged: (samples, ...)."""
    a = flat_draws(posterior[name])
    return a.reshape(a.shape[0] * a.shape[1], *a.shape[2:])


def covariance_draws(
    posterior: xr.Dataset, factor: FactorTerms, cholesky: bool = False, jitter: float = 0.0
) -> np.ndarray:
    """Return a factor's random-effect covariance (or its Cholesky factor) per draw, from ``sd_*``, ``cor_*``.

    See :func:`~bayesmlm.draws.arrays.covariances_from_sd_cor`; shape (samples, q, q).
    """
    sd = stacked_draws(posterior, f"sd_{factor.group}")  # (S, q)
    cors = {label: stacked_draws(posterior, f"cor_{label}") for label, _, size in factor.blocks() if size > 1}
    return covariances_from_sd_cor(factor, sd, cors, cholesky=cholesky, jitter=jitter)


def summarise_parameters(draws: dict[str, np.ndarray], prob: float) -> pd.DataFrame:
    """mean, sd, HDI, R-hat, ESS and MCSE of scalar parameters given as (chain, draw) arrays."""
    ds = xr.Dataset({k: (("chain", "draw"), v) for k, v in draws.items()})
    ess_bulk, ess_tail = az.ess(ds, method="bulk"), az.ess(ds, method="tail")
    rhat, mcse = az.rhat(ds), az.mcse(ds)
    rows = {}
    for k, v in draws.items():
        low, high = hdi(np.reshape(v, -1), prob)
        rows[k] = {
            "mean": float(v.mean()),
            "sd": float(v.std(ddof=1)),
            "hdi_low": float(low),
            "hdi_high": float(high),
            "rhat": float(rhat[k]),
            "ess_bulk": float(ess_bulk[k]),
            "ess_tail": float(ess_tail[k]),
            "mcse_mean": float(mcse[k]),
        }
    return pd.DataFrame.from_dict(rows, orient="index")
