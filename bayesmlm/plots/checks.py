"""Plots: checks, the posterior and prior predictive checks of a Bayesian fit."""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from scipy import stats as sps

from bayesmlm.arguments import checked
from bayesmlm.exceptions import ArgumentError
from bayesmlm.plots._common import (
    several_axes,
)

__all__ = ["plot_ppc", "plot_prior_predictive"]

STATISTICS = ("mean", "sd", "min", "max")


def _statistic_by_group(values: np.ndarray, codes: np.ndarray, n_levels: int, statistic: str) -> np.ndarray:
    """Per-group ``statistic`` of each row of ``values`` (k, n): shape (k, n_levels)."""
    order = np.argsort(codes, kind="stable")
    v = values[:, order]
    counts = np.bincount(codes, minlength=n_levels)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    if statistic == "min":
        return np.minimum.reduceat(v, starts, axis=1)
    if statistic == "max":
        return np.maximum.reduceat(v, starts, axis=1)
    mean = np.add.reduceat(v, starts, axis=1) / counts
    if statistic == "mean":
        return mean
    dev = v - mean[:, codes[order]]
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.sqrt(np.add.reduceat(dev**2, starts, axis=1) / (counts - 1))


def new_groups(design, factor) -> pd.DataFrame:
    """Return the fitted rows with the factor's levels renamed, so prediction draws them anew."""
    frame = design.data.copy()
    for column in factor.source_blocks[0].term.factor:
        frame[column] = frame[column].astype(str) + "*new"
    return frame


@checked
def plot_ppc(
    fit,
    n_draws: int = 50,
    statistic: str = "mean",
    group: str | None = None,
    seed: int | None = None,
    ax=None,
) -> Figure:
    """Posterior predictive check: replicated data sets against the observed response.

    Bayesian fits only. Left panel: densities of ``n_draws`` replicated data sets (thin) and of the
    observed response (thick). Right panel: a group-level test quantity, the standard deviation
    across groups of the per-group ``statistic`` (mean, sd, min or max), in every replicated data
    set (histogram) against its observed value, with the posterior predictive p-value
    ``P(T(y_rep) >= T(y))`` in the title.

    The group-level quantity is replicated with *new* groups drawn from the population distribution
    (the factor's effects redrawn from ``N(0, Σ)`` in every draw): replicated from the fitted group
    effects, the spread of group means reproduces the data's by construction and its p-value is near
    0.5 whatever the model (0.48, 0.51 and 0.50 on three data sets); with new groups it checks the
    population model, the part of the model that generalises. The axis label says so.

    Parameters
    ----------
    fit : Fit
        A Bayesian fit.
    n_draws : int
        Number of replicated data sets drawn in the density panel (the histogram uses all draws).
    statistic : {"mean", "sd", "min", "max"}
        Per-group statistic whose spread across groups is checked.
    group : str, optional
        Grouping factor (needed when the model has several).
    seed : int, optional
        Seed for the replicated data and the choice of draws shown.
    ax : sequence of two matplotlib Axes, optional
        Axes to draw into; a new figure when omitted.

    Returns
    -------
    matplotlib Figure

    Raises
    ------
    TypeError
        For a REML/ML fit, which has no posterior to replicate data from.

    Examples
    --------
    >>> import bayesmlm as bm
    >>> model = bm.Model("Reaction ~ Days + (1 | Subject)", bm.load_dataset("sleepstudy"))
    >>> fit = model.fit(draws=500, tune=300, chains=2, seed=1, progressbar=False)
    >>> fig = plot_ppc(fit, n_draws=20, seed=1)
    >>> len(fig.axes[0].lines)  # 20 replicated data sets and the observed one
    21
    """
    if not hasattr(fit, "posterior_predictive"):  # a REML/ML fit has no posterior to replicate from
        raise TypeError(
            f"plot_ppc needs a Bayesian Fit (from Model.fit()), not {type(fit).__name__}: a REML/ML fit "
            "has no posterior draws to replicate the data from"
        )
    if statistic not in STATISTICS:
        raise ArgumentError(f"statistic must be one of {list(STATISTICS)}, not {statistic!r}")
    if n_draws < 1:
        raise ArgumentError(f"n_draws must be at least 1, not {n_draws}")
    design, structure = (fit.design, fit.structure)
    factor = structure.factor(group)
    y = np.asarray(design.y)
    y_rep = fit.predict(kind="response", return_draws=True, seed=seed)  # (S, n)
    y_new = fit.predict(new_groups(design, factor), kind="response", return_draws=True, seed=seed)
    rng = np.random.default_rng(seed)
    shown = rng.choice(y_rep.shape[0], size=min(n_draws, y_rep.shape[0]), replace=False)
    fig, (ax_dens, ax_stat), _ = several_axes(ax, 2, (11, 4.2))

    low, high = min(y.min(), y_rep[shown].min()), max(y.max(), y_rep[shown].max())
    pad = 0.05 * (high - low)
    grid = np.linspace(low - pad, high + pad, 256)
    for k, i in enumerate(shown):
        ax_dens.plot(
            grid,
            sps.gaussian_kde(y_rep[i])(grid),
            color="tab:blue",
            alpha=0.25,
            lw=0.7,
            label="replicated" if k == 0 else None,
        )
    ax_dens.plot(grid, sps.gaussian_kde(y)(grid), color="black", lw=2.2, label="observed")
    ax_dens.set_xlabel(design.response_name)
    ax_dens.set_ylabel("density")
    ax_dens.set_title(f"{design.response_name}: observed vs {len(shown)} replicated data sets")
    ax_dens.legend(fontsize="small")

    def spread(values: np.ndarray) -> np.ndarray:
        per_group = _statistic_by_group(values, factor.codes, factor.n_levels, statistic)
        return np.nanstd(per_group, axis=1, ddof=1)

    t_rep = spread(y_new)
    t_obs = float(spread(y[None, :])[0])
    p_value = float(np.mean(t_rep >= t_obs))
    ax_stat.hist(t_rep, bins=30, histtype="stepfilled", color="tab:blue", alpha=0.5, label="replicated")
    ax_stat.axvline(t_obs, color="black", lw=2.2, label="observed")
    ax_stat.set_xlabel(
        f"sd across {factor.group} of per-{factor.group} {statistic} of {design.response_name}\n"
        f"(replicated with new {factor.group} levels drawn from the population)"
    )
    ax_stat.set_ylabel("replicated data sets")
    ax_stat.set_title(f"{factor.group}-level {statistic}: posterior predictive p = {p_value:.2f}")
    ax_stat.legend(fontsize="small")
    return fig


@checked
def plot_prior_predictive(
    fit, n_draws: int = 50, draws: int = 500, seed: int | None = None, ax=None
) -> Figure:
    """Prior predictive check: data sets drawn from the priors beside the observed response.

    Left: densities of ``n_draws`` prior predictive data sets (thin) and of the observed response
    (thick), over the central 98% of the prior predictive values. Right: the sd of each prior
    predictive data set (log scale) against the observed sd: priors that put the data on the wrong
    scale show here before any fitting.

    Parameters
    ----------
    fit : Fit
        A Bayesian fit (its model's priors are used; ``fit.prior_predictive()`` draws them).
    n_draws : int
        Data sets in the density panel.
    draws : int
        Prior predictive draws in all.
    seed : int, optional
    ax : sequence of two Axes, optional

    Returns
    -------
    Figure
    """
    if not hasattr(fit, "prior_predictive"):
        raise TypeError(
            f"plot_prior_predictive needs a Bayesian Fit, not {type(fit).__name__}: a REML fit has no prior"
        )
    y = np.asarray(fit.design.y)
    y_rep = np.asarray(fit.prior_predictive(draws=draws, seed=seed)).reshape(-1, len(y))
    rng = np.random.default_rng(seed)
    shown = rng.choice(len(y_rep), size=min(n_draws, len(y_rep)), replace=False)
    fig, (ax_dens, ax_sd), _ = several_axes(ax, 2, (11, 4.2))
    low, high = np.quantile(y_rep[shown], [0.01, 0.99])
    low, high = min(low, y.min()), max(high, y.max())
    grid = np.linspace(low, high, 256)
    for k, i in enumerate(shown):
        ax_dens.plot(
            grid,
            sps.gaussian_kde(y_rep[i])(grid),
            color="tab:orange",
            alpha=0.3,
            lw=0.7,
            label="prior predictive" if k == 0 else None,
        )
    ax_dens.plot(grid, sps.gaussian_kde(y)(grid), color="black", lw=2.2, label="observed")
    ax_dens.set_xlabel(fit.design.response_name)
    ax_dens.set_ylabel("density")
    ax_dens.set_title(f"{fit.design.response_name}: observed vs {len(shown)} prior predictive data sets")
    ax_dens.legend(fontsize="small")
    sds = np.log10(y_rep.std(axis=1, ddof=1))
    ax_sd.hist(sds, bins=30, color="tab:orange", alpha=0.6, label="prior predictive")
    ax_sd.axvline(np.log10(y.std(ddof=1)), color="black", lw=2.2, label="observed")
    share = float(np.mean(np.abs(sds - np.log10(y.std(ddof=1))) < 1))
    ax_sd.set_xlabel(f"log10 sd of {fit.design.response_name}")
    ax_sd.set_title(f"{share:.0%} of prior data sets within a factor 10 of the observed sd", fontsize="small")
    ax_sd.legend(fontsize="small")
    return fig
