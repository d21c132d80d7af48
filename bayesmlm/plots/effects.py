"""Plots: conditional effects, the population-level prediction over a predictor (brms).

The mean response ``x β`` over a grid of the chosen predictor, every other predictor at its mean (or
first level), optionally one line per value of a second variable ``by``, with its interval: the HDI
of the posterior draws for a Bayesian fit, the Wald interval ``± z·se`` from ``vcov(β̂)`` for a
REML/ML fit (a REML fit is one draw, its estimates). ``groups=True`` adds each group's own line
(its coefficients) thinly behind, as bambi's ``interpret`` does with group-specific predictions.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from scipy import stats as sps

from bayesmlm.arguments import checked
from bayesmlm.draws.summary import hdi
from bayesmlm.exceptions import ArgumentError
from bayesmlm.plots._common import FitFaces, group_frame, one_axes, reference_frame, x_variable

__all__ = ["conditional_effects", "plot_conditional_effects"]


def _by_values(data: pd.DataFrame, by: str) -> list:
    column = data[by]
    if isinstance(column.dtype, pd.CategoricalDtype) or not pd.api.types.is_numeric_dtype(column.dtype):
        return (
            list(column.cat.categories)
            if isinstance(column.dtype, pd.CategoricalDtype)
            else sorted(column.unique(), key=str)
        )
    m, s = float(column.mean()), float(column.std())
    return [m - s, m, m + s]  # brms: the mean and mean ± sd


@checked
def conditional_effects(fit: FitFaces, x: str, by: str | None = None, prob: float = 0.95, n_points: int = 50):
    """Compute the table behind :func:`plot_conditional_effects`: x, by, estimate, low, high.

    Examples
    --------
    >>> import bayesmlm as bm
    >>> fit = bm.Model("Reaction ~ Days + (Days | Subject)", bm.load_dataset("sleepstudy")).fit_reml()
    >>> t = conditional_effects(fit, "Days", n_points=3)
    >>> t["estimate"].round(2).tolist()  # 251.41 + 10.47 Days
    [251.41, 298.51, 345.61]
    """
    design = fit.design
    data = design.data
    if by is not None and by not in data.columns:
        raise ArgumentError(
            f"by={by!r} is not a column of the model's data; the columns are {list(data.columns)}"
        )
    x = x_variable(design, fit.structure, fit.structure.factors[0], x)
    grid = np.linspace(float(data[x].min()), float(data[x].max()), n_points)
    beta = fit.population_draws().fixed  # (S, p)
    z = sps.norm.ppf(0.5 + prob / 2)
    rows = []
    for value in [None] if by is None else _by_values(data, by):
        frame = reference_frame(design, x, grid)
        if by is not None:
            frame[by] = (
                pd.Categorical([value] * len(frame), categories=data[by].cat.categories)
                if isinstance(data[by].dtype, pd.CategoricalDtype)
                else value
            )
        X = design.fixed_design(frame)
        mean = beta @ X.T  # (S, n_points)
        if len(beta) == 1:  # an estimate: the Wald interval of x β̂
            se = np.sqrt(np.einsum("ij,jk,ik->i", X, np.asarray(fit.vcov, dtype=float), X))
            est, low, high = mean[0], mean[0] - z * se, mean[0] + z * se
        else:
            est = np.median(mean, axis=0)
            low, high = hdi(mean, prob)
        rows.append(pd.DataFrame({x: grid, "by": value, "estimate": est, "low": low, "high": high}))
    table = pd.concat(rows, ignore_index=True)
    return table if by is not None else table.drop(columns="by")


@checked
def plot_conditional_effects(
    fit: FitFaces,
    x: str,
    by: str | None = None,
    groups: bool = False,
    group: str | None = None,
    prob: float = 0.95,
    n_points: int = 50,
    show_data: bool = True,
    ax=None,
) -> Figure:
    """Plot the population-level prediction over ``x`` with its interval, optionally by a second variable.

    Parameters
    ----------
    fit : Fit or LikelihoodFit
    x : str
        The numeric predictor on the x axis.
    by : str, optional
        One line per level of this column (a factor), or at its mean and mean ± sd (a number).
    groups : bool
        Also draw each group's own line (its coefficients) thinly behind.
    group : str, optional
        The grouping factor for ``groups`` (needed when the model has several).
    prob : float
        Interval probability (HDI for Bayes, Wald for REML/ML).
    n_points : int
        Grid points along ``x``.
    show_data : bool
        Plot the observations.
    ax : Axes, optional

    Returns
    -------
    Figure

    Examples
    --------
    >>> import bayesmlm as bm
    >>> fit = bm.Model("Reaction ~ Days + (Days | Subject)", bm.load_dataset("sleepstudy")).fit_reml()
    >>> fig = bm.plot_conditional_effects(fit, "Days", groups=True)
    >>> len(fig.axes[0].lines)  # 18 subjects and the population line
    19
    """
    table = conditional_effects(fit, x, by, prob, n_points)
    design = fit.design
    fig, a = one_axes(ax, (6.0, 4.2))
    if show_data:
        a.scatter(design.data[x], design.y, s=8, color="0.6", alpha=0.6, zorder=1, label="observed")
    if groups:
        factor = fit.structure.factor(group)
        base = reference_frame(
            design, x, np.linspace(float(design.data[x].min()), float(design.data[x].max()), n_points)
        )
        for level in range(factor.n_levels):
            frame = group_frame(design, factor, level, base)
            X, Z = design.fixed_design(frame), factor.evaluate(frame)[0]
            a.plot(
                frame[x],
                fit.line_draws(factor.group, level, X, Z).mean(axis=0),
                color="0.7",
                lw=0.7,
                zorder=2,
            )
    values = [None] if by is None else list(pd.unique(table["by"]))
    for k, value in enumerate(values):
        part = table if value is None else table[table["by"] == value]
        colour = f"C{k % 10}"
        label = (
            fit.estimate_label
            if value is None
            else f"{by} = {value:.3g}"
            if isinstance(value, float)
            else f"{by} = {value}"
        )
        a.fill_between(part[x], part["low"], part["high"], color=colour, alpha=0.25, lw=0, zorder=3)
        a.plot(part[x], part["estimate"], color=colour, lw=2, zorder=4 + k, label=label)
    interval = "HDI" if len(fit.population_draws().fixed) > 1 else "Wald interval"
    a.set_xlabel(x)
    a.set_ylabel(design.response_name)
    a.set_title(f"conditional effect of {x} ({prob:.0%} {interval})", fontsize="small")
    a.legend(fontsize="small")
    return fig
