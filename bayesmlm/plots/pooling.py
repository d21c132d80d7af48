"""Plots: pooling, the shrinkage of group coefficients between no pooling and complete pooling.

The three kinds of pooling compared here:

- *complete pooling*: one ordinary least-squares regression of the response on the fixed-effects
  columns through all rows, ignoring the groups (:func:`complete_pooling_coefficients`);
- *no pooling*: each group's own least-squares estimate of its random-term coefficients, the other
  fixed effects held at the model's estimates (:func:`no_pooling_coefficients`);
- *partial pooling*: the model's group-specific coefficients (fixed effect + group effect).

For a generalized fit (binomial, Poisson, negative binomial) all three are on the link scale: the
complete pooling is the ordinary GLM and the no pooling each group's own GLM with a 0.5 continuity
correction (see :mod:`bayesmlm.plots.link_pooling`).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.patches import Ellipse

from bayesmlm.arguments import checked
from bayesmlm.plots._common import (
    CHI2_95_2D,
    FitFaces,
    group_colors,
    group_frame,
    mean_line,
    one_axes,
    population_covariance,
    reference_frame,
    several_axes,
    x_variable,
)
from bayesmlm.plots.link_pooling import generalized_family, glm_complete_pooling, glm_no_pooling, scale_label

__all__ = ["complete_pooling_coefficients", "no_pooling_coefficients", "plot_pooling", "plot_shrinkage"]


@checked
def complete_pooling_coefficients(fit: FitFaces) -> pd.Series:
    """Ordinary least-squares coefficients of the fixed-effects columns through all rows (complete pooling).

    The groups are ignored: one regression of the response on the model's fixed-effects matrix. For a
    generalized fit, the ordinary GLM instead (maximum likelihood, the model's family, link, offset and
    prior weights), so the coefficients are on the link scale.

    Parameters
    ----------
    fit : Fit or LikelihoodFit

    Returns
    -------
    Series
        Indexed by fixed-effect term.

    Examples
    --------
    >>> import bayesmlm as bm
    >>> fit = bm.Model("Reaction ~ Days + (Days | Subject)", bm.load_dataset("sleepstudy")).fit_reml()
    >>> complete_pooling_coefficients(fit).round(3).tolist()
    [251.405, 10.467]
    """
    design, _ = (fit.design, fit.structure)
    names = pd.Index(list(design.fixed_names), name="term")
    if design.p and generalized_family(fit) is not None:
        return glm_complete_pooling(fit)
    if design.p == 0:
        return pd.Series(np.zeros(0), index=names, name="estimate")
    beta = np.linalg.lstsq(design.X, design.y, rcond=None)[0]
    return pd.Series(beta, index=names, name="estimate")


@checked
def no_pooling_coefficients(fit: FitFaces, group: str | None = None) -> pd.DataFrame:
    """Per-group least-squares coefficients of the group's random terms (no pooling).

    Each group's rows are regressed on the random block's columns with the other fixed effects held
    at their estimates (posterior means for a Bayesian fit), so the result is on the same scale as
    the group-specific coefficients of the model. Groups whose rows cannot identify the coefficients
    get NaN.

    For a generalized fit the estimates are on the link scale: each group's own GLM (its family and
    link, the other fixed effects and the offset as a fixed offset) fitted with a continuity
    correction of 0.5, so that groups with no or only successes stay finite. A binomial row of ``s``
    successes in ``n`` trials counts as ``s + 0.5`` in ``n + 1``: a group of one row gets the empirical
    logit ``log((s + 0.5) / (n - s + 0.5))``. A count ``y`` counts as ``y + 0.5``: a group intercept
    alone is ``log(mean(y) + 0.5)``. Negative binomial counts are fitted with Poisson weights.

    Parameters
    ----------
    fit : Fit or LikelihoodFit
    group : str, optional
        Grouping factor (needed when the model has several).

    Returns
    -------
    DataFrame
        One row per level, one column per random term.

    Examples
    --------
    >>> import bayesmlm as bm
    >>> fit = bm.Model("Reaction ~ Days + (Days | Subject)", bm.load_dataset("sleepstudy")).fit_reml()
    >>> no_pooling_coefficients(fit).loc["308"].round(3).tolist()
    [244.193, 21.765]
    """
    design, structure = (fit.design, fit.structure)
    factor = structure.factor(group)
    beta = fit.fixed_estimates()
    names = list(factor.term_names)
    fixed_other = [n for n in design.fixed_names if n not in names]
    X = pd.DataFrame(design.X, columns=list(design.fixed_names))
    offset = X[fixed_other].to_numpy() @ beta[fixed_other].to_numpy() if fixed_other else 0.0
    if generalized_family(fit) is not None:
        coefs = glm_no_pooling(fit, factor, np.broadcast_to(offset, (design.n,)))
        return pd.DataFrame(coefs, index=pd.Index(factor.levels, name=factor.group), columns=names)
    target = design.y - offset
    out = np.full((factor.n_levels, factor.q), np.nan)
    for level in range(factor.n_levels):
        rows = factor.codes == level
        Z = factor.Z[rows]
        if rows.sum() >= factor.q and np.linalg.matrix_rank(Z) == factor.q:
            out[level] = np.linalg.lstsq(Z, target[rows], rcond=None)[0]
    return pd.DataFrame(out, index=pd.Index(factor.levels, name=factor.group), columns=names)


@checked
def plot_shrinkage(fit: FitFaces, group: str | None = None, ax=None) -> Figure:
    """No pooling vs partial pooling vs complete pooling of the group-specific coefficients.

    Works for a Bayesian :class:`~bayesmlm.Fit` (posterior means) and a :class:`~bayesmlm.LikelihoodFit`.
    With a random intercept and a random slope, a 2-D plot: an arrow per group from its own
    least-squares estimate (no pooling) to the model's estimate (partial pooling), the population
    (fixed-effect) estimate, the complete-pooling (OLS through all data) estimate and the 95% ellipse
    of the population distribution of the group coefficients. With one random term, one row per
    group with its two estimates joined by an arrow, and the population and complete-pooling
    estimates as vertical lines.

    For a generalized fit (:class:`~bayesmlm.GeneralizedFit`, :class:`~bayesmlm.GeneralizedLikelihoodFit`)
    every estimate is on the link scale (logit, probit, log), and the axis labels say which: the model's
    group coefficients, the fixed effects, the GLM through all rows as complete pooling and each group's
    own GLM with a 0.5 continuity correction as no pooling (see :func:`no_pooling_coefficients`).

    Parameters
    ----------
    fit : Fit or LikelihoodFit
    group : str, optional
        Grouping factor (needed when the model has several).
    ax : matplotlib Axes, optional
        Axes to draw into; a new figure when omitted.

    Returns
    -------
    matplotlib Figure

    Examples
    --------
    >>> import bayesmlm as bm
    >>> fit = bm.Model("Reaction ~ Days + (Days | Subject)", bm.load_dataset("sleepstudy")).fit_reml()
    >>> fig = plot_shrinkage(fit)
    >>> len(fig.axes[0].texts)  # one arrow per subject
    18
    """
    _, structure = (fit.design, fit.structure)
    factor = structure.factor(group)
    own = no_pooling_coefficients(fit, factor.group)
    pooled = fit.coefficients(factor.group)[list(factor.term_names)]
    beta = fit.fixed_estimates()
    ols = complete_pooling_coefficients(fit)
    names = list(own.columns)
    population = np.array([beta.get(n, 0.0) for n in names])
    complete = np.array([ols.get(n, 0.0) for n in names])
    on_link = scale_label(fit)
    pooled_label = "complete pooling (GLM, all data)" if on_link else "complete pooling (OLS, all data)"
    fig, ax = one_axes(ax, (6.5, 5) if len(names) >= 2 else (6.5, max(3.5, 0.28 * factor.n_levels + 1.2)))
    arrow = {"arrowstyle": "->", "color": "0.5", "lw": 0.8}
    if len(names) >= 2:
        x, y = names[0], names[1]
        ax.scatter(own[x], own[y], color="tab:blue", label="no pooling (own data)", zorder=3)
        ax.scatter(pooled[x], pooled[y], color="tab:red", label="partial pooling (model)", zorder=3)
        for lev in own.index:
            if np.isfinite(own.loc[lev, [x, y]].to_numpy()).all():
                ax.annotate(
                    "",
                    xy=(pooled.loc[lev, x], pooled.loc[lev, y]),
                    xytext=(own.loc[lev, x], own.loc[lev, y]),
                    arrowprops=arrow,
                )
        ax.scatter(
            *population[:2], marker="X", s=120, color="black", label="population (fixed effects)", zorder=4
        )
        ax.scatter(
            *complete[:2],
            marker="D",
            s=70,
            facecolor="none",
            edgecolor="tab:green",
            linewidth=2,
            label=pooled_label,
            zorder=5,
        )
        cov = population_covariance(fit, factor)[:2, :2]
        vals, vecs = np.linalg.eigh(cov)
        angle = np.degrees(np.arctan2(vecs[1, 1], vecs[0, 1]))
        width, height = 2 * np.sqrt(CHI2_95_2D * np.maximum(vals[::-1], 0))
        ax.add_patch(
            Ellipse(
                tuple(population[:2]),
                width,
                height,
                angle=angle,
                fill=False,
                ls="--",
                color="black",
                label=f"95% of {factor.group}s (population)",
            )
        )
        ax.set_xlabel(f"{x} (coefficient per {factor.group}{on_link})")
        ax.set_ylabel(f"{y} (coefficient per {factor.group}{on_link})")
    else:
        x = names[0]
        order = np.argsort(own[x].to_numpy())
        pos = np.arange(len(order))
        own_x, pooled_x = own[x].to_numpy()[order], pooled[x].to_numpy()[order]
        ax.scatter(own_x, pos, color="tab:blue", label="no pooling (own data)", zorder=3)
        ax.scatter(pooled_x, pos, color="tab:red", label="partial pooling (model)", zorder=3)
        for k in range(len(order)):
            if np.isfinite(own_x[k]):
                ax.annotate("", xy=(pooled_x[k], k), xytext=(own_x[k], k), arrowprops=arrow)
        ax.axvline(population[0], color="black", ls="--", label="population (fixed effect)")
        ax.axvline(complete[0], color="tab:green", ls=":", lw=2, label=pooled_label)
        ax.set_yticks(pos, [str(own.index[i]) for i in order])
        ax.set_xlabel(f"{x} (coefficient per {factor.group}{on_link})")
        ax.set_ylabel(factor.group)
    ax.set_title(f"Shrinkage of {factor.group} coefficients ({fit.estimate_label})")
    ax.legend(fontsize="small", loc="best")
    return fig


@checked
def plot_pooling(fit: FitFaces, group: str | None = None, x: str | None = None, ax=None) -> Figure:
    """Complete, no and partial pooling side by side: the regression lines of each over the data.

    Works for a Bayesian :class:`~bayesmlm.Fit` (posterior means) and a :class:`~bayesmlm.LikelihoodFit`.
    Three panels: one least-squares line through all data ("complete pooling"); each group's own
    least-squares line ("no pooling", see :func:`no_pooling_coefficients`); the model's group lines
    ("partial pooling (model)"). Lines are drawn over ``x`` with the other predictors at their means
    or first level; in the last two panels the data and lines are coloured by group.

    Parameters
    ----------
    fit : Fit or LikelihoodFit
    group : str, optional
        Grouping factor (needed when the model has several).
    x : str, optional
        Numeric column on the x axis (as in :func:`plot_groups`).
    ax : sequence of three matplotlib Axes, optional
        Axes to draw into; a new figure when omitted.

    Returns
    -------
    matplotlib Figure

    Examples
    --------
    >>> import bayesmlm as bm
    >>> fit = bm.Model("Reaction ~ Days + (Days | Subject)", bm.load_dataset("sleepstudy")).fit_reml()
    >>> fig = plot_pooling(fit)
    >>> [len(a.lines) for a in fig.axes]  # one line, then one per subject
    [1, 18, 18]
    """
    design, structure = (fit.design, fit.structure)
    factor = structure.factor(group)
    xname = x_variable(design, structure, factor, x)
    xs = design.data[xname].to_numpy(dtype=float)
    grid = np.linspace(xs.min(), xs.max(), 50)
    base = reference_frame(design, xname, grid)
    beta = fit.fixed_estimates().to_numpy()
    own = no_pooling_coefficients(fit, factor.group)
    pooled = fit.coefficients(factor.group)[list(factor.term_names)]
    fig, (ax_all, ax_own, ax_model), made = several_axes(ax, 3, (14, 4.5))
    if made:
        for a in (ax_own, ax_model):
            a.sharex(ax_all)
            a.sharey(ax_all)
        title = f"{design.response_name} vs {xname}: pooling across {factor.group} ({fit.estimate_label})"
        fig.suptitle(title)

    ols = complete_pooling_coefficients(fit).to_numpy()
    ax_all.scatter(xs, design.y, s=10, color="0.45", alpha=0.7, label="data")
    ax_all.plot(grid, design.fixed_design(base) @ ols, color="black", lw=2, label="OLS, all data")
    ax_all.legend(fontsize="small")

    colors = group_colors(factor.n_levels)
    point_colors = [colors[c] for c in factor.codes]
    for a in (ax_own, ax_model):
        a.scatter(xs, design.y, s=10, c=point_colors, alpha=0.7)
    for level in range(factor.n_levels):
        frame = group_frame(design, factor, level, base)
        coef_own = own.iloc[level].to_numpy()
        if np.isfinite(coef_own).all():
            ax_own.plot(grid, mean_line(design, factor, frame, beta, coef_own), color=colors[level], lw=1)
        line = mean_line(design, factor, frame, beta, pooled.iloc[level].to_numpy())
        ax_model.plot(grid, line, color=colors[level], lw=1)
    for a, title in zip(
        (ax_all, ax_own, ax_model), ("complete pooling", "no pooling", "partial pooling (model)"), strict=True
    ):
        a.set_title(title)
        a.set_xlabel(xname)
        a.set_ylabel(design.response_name)
    ax_own.text(
        0.02, 0.98, f"one line per {factor.group}", transform=ax_own.transAxes, va="top", fontsize="small"
    )
    return fig
