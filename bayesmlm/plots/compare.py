"""Plots: the ICC over its interpretation bands, and a Bayesian fit beside a REML fit."""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from bayesmlm.draws.icc import BANDS, ICC
from bayesmlm.exceptions import ArgumentError
from bayesmlm.plots._common import (
    given_axes,
    panel_grid,
    several_axes,
)
from bayesmlm.reml_vs_bayes import compare_estimates

__all__ = ["plot_compare", "plot_icc"]

_BAND_COLOURS = ("#f0f0f0", "#dbe9f6", "#b5d3ec", "#85b8de")


def plot_icc(fit, at: dict | None = None, prob: float = 0.95, ax=None, **icc_kwargs) -> Figure:
    """Plot the distribution of each ICC over the interpretation bands, one panel per ICC.

    For a Bayesian fit, a histogram of the posterior draws with the median and the HDI; for a
    REML/ML fit, the bootstrap replicates with the point estimate and the percentile interval (see
    :mod:`bayesmlm.draws.icc`). The bands (negligible < 0.05 ≤ moderate < 0.15 ≤ substantial < 0.25 ≤ very
    strong) are shaded behind.

    Parameters
    ----------
    fit : Fit, LikelihoodFit or ICC
        A fit, or the result of its ``icc()``.
    at : dict, optional
        Random-slope covariate values (passed to ``icc()``).
    prob : float
        Interval probability (passed to ``icc()``).
    ax : Axes or sequence of Axes, optional
        One per ICC.
    **icc_kwargs
        More arguments for ``icc()`` (``n_boot``, ``seed`` for a REML fit).

    Returns
    -------
    Figure
    """
    icc = fit if isinstance(fit, ICC) else fit.icc(at=at, prob=prob, **icc_kwargs)
    names = list(icc.summary.index)
    fig, axes, _ = several_axes(ax, len(names), (3.6 * len(names), 3.0))
    for a, name in zip(axes, names, strict=True):
        row = icc.summary.loc[name]
        lower = 0.0
        for (edge, label), colour in zip(BANDS, _BAND_COLOURS, strict=True):
            upper = min(edge, 1.0)
            a.axvspan(lower, upper, color=colour, zorder=0, label=label)
            lower = upper
        values = icc.draws[name].to_numpy()
        if len(values) > 1:
            a.hist(values, bins=40, range=(0, 1), density=True, color="0.35", alpha=0.8, zorder=2)
        a.axvline(row["estimate"], color="C3", lw=2, zorder=3, label="estimate")
        if np.isfinite(row["low"]):
            a.axvspan(row["low"], row["high"], ymax=0.04, color="C3", zorder=3, label=f"{prob:.0%} interval")
        a.set_xlim(0, 1)
        a.set_xlabel("ICC")
        a.set_title(f"{name}: {row['estimate']:.3f} ({row['interpretation']})")
    axes[0].set_ylabel("density")
    axes[-1].legend(loc="upper right", fontsize="x-small")
    fig.suptitle(f"ICC: {icc.note}", fontsize="small")
    return fig


def plot_compare(
    fit=None,
    reml_fit=None,
    table: pd.DataFrame | None = None,
    prob: float = 0.95,
    ax=None,
    **compare_kwargs,
) -> Figure:
    """Bayesian and REML estimates side by side, one panel per parameter.

    Each panel shows the REML estimate with its interval (Wald for fixed effects, parametric
    bootstrap for variance parameters) above the posterior median with its HDI, on the parameter's
    own scale.

    Parameters
    ----------
    fit : Fit, optional
        The Bayesian fit (with ``reml_fit``), or
    reml_fit : LikelihoodFit, optional
        the REML fit of the same model;
    table : DataFrame, optional
        or a table from :func:`bayesmlm.compare_estimates` instead of the two fits.
    prob : float
        Interval probability.
    ax : Axes or sequence of Axes, optional
        One per parameter.
    **compare_kwargs
        More arguments for :func:`bayesmlm.compare_estimates` (``n_boot``, ``seed``, ``scale``).

    Returns
    -------
    Figure
    """
    if table is None:
        if fit is None or reml_fit is None:
            raise ArgumentError("plot_compare needs fit and reml_fit, or table= from compare_estimates")
        table = compare_estimates(fit, reml_fit, prob=prob, **compare_kwargs)
    names = list(table.index)
    if ax is None:
        fig, axes = panel_grid(len(names), min(3, len(names)), lambda r, c: (4.0 * c, 1.5 * r + 0.4))
    else:
        axes = given_axes(ax, len(names))
        fig = axes[0].figure
    for a, name in zip(axes, names, strict=True):
        row = table.loc[name]
        for y, (label, point, low, high, colour) in enumerate(
            [
                ("Bayes", row["median"], row["hdi_low"], row["hdi_high"], "C0"),
                ("REML", row["reml"], row["reml_low"], row["reml_high"], "C3"),
            ]
        ):
            if np.isfinite(low):
                a.plot([low, high], [y, y], color=colour, lw=2)
            a.plot([point], [y], "o", color=colour, label=label)
        a.set_yticks([0, 1], ["Bayes", "REML"])
        a.set_ylim(-0.6, 1.6)
        a.set_title(name, fontsize="small")
    fig.suptitle(
        f"posterior median and {prob:.0%} HDI beside the REML estimate and interval", fontsize="small"
    )
    return fig
