"""Plots: groups, each group's data with its fitted line, and the group effects with their intervals."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from matplotlib.figure import Figure

from bayesmlm.arguments import checked
from bayesmlm.draws.summary import hdi
from bayesmlm.exceptions import ArgumentError
from bayesmlm.plots._common import (
    FitFaces,
    choose_levels,
    given_axes,
    group_frame,
    one_axes,
    panel_grid,
    reference_frame,
    x_variable,
)

__all__ = ["plot_caterpillar", "plot_groups"]


@checked
def plot_groups(
    fit: FitFaces,
    group: str | None = None,
    x: str | None = None,
    groups: int | Sequence[str] | None = None,
    prob: float = 0.95,
    ncols: int = 6,
    ax=None,
) -> Figure:
    """One panel per group: its data and its fitted line (with a credible band for a Bayesian fit).

    Works for a Bayesian :class:`~bayesmlm.Fit` and a :class:`~bayesmlm.LikelihoodFit`. The line is
    the group's mean response over a grid of ``x`` (fixed effects + the group's effects; other
    predictors at their means or first level, other grouping factors at the population). For a
    Bayesian fit it is the posterior mean, with the ``prob`` HDI band of the mean response.

    Parameters
    ----------
    fit : Fit or LikelihoodFit
    group : str, optional
        Grouping factor (needed when the model has several).
    x : str, optional
        Numeric column on the x axis; by default the first non-intercept random term, else the first
        non-intercept fixed term.
    groups : int or sequence of str, optional
        Levels to show: all by default, the first ``n`` for an int, or the given labels.
    prob : float
        Probability of the credible band (Bayesian fits).
    ncols : int
        Panels per row of a new figure.
    ax : sequence of matplotlib Axes, optional
        One Axes per group shown; a new figure when omitted.

    Returns
    -------
    matplotlib Figure

    Examples
    --------
    >>> import bayesmlm as bm
    >>> fit = bm.Model("Reaction ~ Days + (Days | Subject)", bm.load_dataset("sleepstudy")).fit_reml()
    >>> fig = plot_groups(fit, groups=["308", "309"])
    >>> [a.get_title() for a in fig.axes]
    ['308', '309']
    """
    if not 0 < prob < 1:
        raise ArgumentError(f"prob must lie between 0 and 1, not {prob}")
    design, structure = (fit.design, fit.structure)
    factor = structure.factor(group)
    xname = x_variable(design, structure, factor, x)
    levels = choose_levels(factor, groups)
    xs = design.data[xname].to_numpy(dtype=float)
    grid = np.linspace(xs.min(), xs.max(), 50)
    base = reference_frame(design, xname, grid)
    if ax is None:
        ncols = max(1, min(ncols, len(levels)))
        fig, axes = panel_grid(
            len(levels), ncols, lambda r, c: (2.3 * c + 0.6, 2.1 * r + 0.8), sharex=True, sharey=True
        )
        fig.suptitle(f"{design.response_name} by {xname} for each {factor.group} ({fit.estimate_label})")
    else:
        axes = given_axes(ax, len(levels))
        fig, ncols = axes[0].figure, len(axes)
    for k, (a, level) in enumerate(zip(axes, levels, strict=True)):
        rows = factor.codes == level
        a.scatter(xs[rows], design.y[rows], s=12, color="0.3", label="data", zorder=3)
        frame = group_frame(design, factor, level, base)
        draws = fit.line_draws(factor.group, level, design.fixed_design(frame), factor.evaluate(frame)[0])
        if len(draws) > 1:  # posterior draws: a band; a REML/ML fit is one draw
            low, high = hdi(draws, prob)
            a.fill_between(grid, low, high, color="tab:blue", alpha=0.25, lw=0, label=f"{prob:.0%} HDI")
        a.plot(grid, draws.mean(axis=0), color="tab:blue", lw=1.6, label="fitted")
        a.set_title(str(factor.levels[level]), fontsize="medium")
        if k + ncols >= len(axes):  # bottom panel of its column
            a.set_xlabel(xname)
            a.xaxis.set_tick_params(labelbottom=True)
        if k % ncols == 0:
            a.set_ylabel(design.response_name)
    axes[0].legend(fontsize="x-small", loc="best")
    return fig


@checked
def plot_caterpillar(
    fit: FitFaces, group: str | None = None, term: str = "Intercept", prob: float = 0.95, ax=None
) -> Figure:
    """Each group's deviation of one term, sorted, with its interval (a caterpillar plot).

    Works for a Bayesian :class:`~bayesmlm.Fit` (posterior mean and ``prob`` HDI) and a
    :class:`~bayesmlm.LikelihoodFit` (conditional mode ± the normal quantile times the conditional
    standard deviation: ± 1.96 sd for ``prob=0.95``).

    Parameters
    ----------
    fit : Fit or LikelihoodFit
    group : str, optional
        Grouping factor (needed when the model has several).
    term : str
        Random term whose deviations are shown.
    prob : float
        Interval probability.
    ax : matplotlib Axes, optional
        Axes to draw into; a new figure when omitted.

    Returns
    -------
    matplotlib Figure

    Examples
    --------
    >>> import bayesmlm as bm
    >>> fit = bm.Model("Reaction ~ Days + (Days | Subject)", bm.load_dataset("sleepstudy")).fit_reml()
    >>> fig = plot_caterpillar(fit, term="Days")
    >>> fig.axes[0].get_yticklabels()[0].get_text()  # the subject with the smallest slope deviation
    '335'
    """
    if not 0 < prob < 1:
        raise ArgumentError(f"prob must lie between 0 and 1, not {prob}")
    _, structure = (fit.design, fit.structure)
    factor = structure.factor(group)
    if term not in factor.term_names:
        raise ArgumentError(
            f"{factor.group} has no random term {term!r}; its terms are {list(factor.term_names)}"
        )
    table, interval = fit.group_effect_intervals(factor.group, term, prob)
    estimate, low, high = table["estimate"], table["low"], table["high"]
    order = np.argsort(estimate.to_numpy(), kind="stable")
    est, lo, hi = (s.to_numpy()[order] for s in (estimate, low, high))
    pos = np.arange(len(order))
    fig, ax = one_axes(ax, (6, max(3.0, 0.26 * len(order) + 1.3)))
    ax.axvline(0, color="0.5", lw=1, ls="--", zorder=1)
    ax.errorbar(
        est, pos, xerr=[est - lo, hi - est], fmt="o", ms=4, color="tab:blue", ecolor="tab:blue", lw=1.2
    )
    ax.set_yticks(pos, [str(factor.levels[i]) for i in order])
    ax.set_ylim(-0.7, len(order) - 0.3)
    ax.set_xlabel(f"{term}: deviation of each {factor.group} from the population")
    ax.set_ylabel(factor.group)
    ax.set_title(f"{factor.group} effects on {term} ({fit.estimate_label}, {interval})")
    return fig
