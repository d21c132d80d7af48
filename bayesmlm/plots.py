"""Plots of fitted multilevel models (matplotlib; each returns the Figure and accepts ``ax=``)."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.patches import Ellipse

from bayesmlm.likelihood_fit import LikelihoodFit

__all__ = ["no_pooling_coefficients", "plot_shrinkage"]


def no_pooling_coefficients(fit: LikelihoodFit, group: str | None = None) -> pd.DataFrame:
    """Per-group least-squares coefficients of the group's random terms (no pooling).

    Each group's rows are regressed on the random block's columns with the other fixed effects held
    at their estimates, so the result is on the same scale as :meth:`LikelihoodFit.coefficients`.
    Groups whose rows cannot identify the coefficients get NaN.

    Parameters
    ----------
    fit : LikelihoodFit
    group : str, optional
        Grouping factor (needed when the model has several).

    Returns
    -------
    DataFrame
        One row per level, one column per random term.
    """
    factor = fit.structure.factor(group)
    beta = fit.fixed_effects["estimate"]
    names = list(factor.term_names)
    fixed_other = [n for n in fit.design.fixed_names if n not in names]
    X = pd.DataFrame(fit.design.X, columns=list(fit.design.fixed_names))
    offset = X[fixed_other].to_numpy() @ beta[fixed_other].to_numpy() if fixed_other else 0.0
    target = fit.design.y - offset
    out = np.full((factor.n_levels, factor.q), np.nan)
    for level in range(factor.n_levels):
        rows = factor.codes == level
        Z = factor.Z[rows]
        if rows.sum() >= factor.q and np.linalg.matrix_rank(Z) == factor.q:
            out[level] = np.linalg.lstsq(Z, target[rows], rcond=None)[0]
    return pd.DataFrame(out, index=pd.Index(factor.levels, name=factor.group), columns=names)


def plot_shrinkage(fit: LikelihoodFit, group: str | None = None, ax=None):
    """No pooling vs partial pooling vs complete pooling of the group-specific coefficients.

    With a random intercept and one random slope, a 2-D plot: an arrow per group from its own
    least-squares estimate (no pooling) to its partially pooled estimate, the population (fixed
    effect) estimate as a cross, and the 95% ellipse of the random-effects distribution around it.
    With one random term, the same along one axis.

    Parameters
    ----------
    fit : LikelihoodFit
    group : str, optional
    ax : matplotlib Axes, optional

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
    factor = fit.structure.factor(group)
    own = no_pooling_coefficients(fit, factor.group)
    pooled = fit.coefficients(factor.group)[own.columns]
    beta = fit.fixed_effects["estimate"]
    population = np.array([beta.get(n, 0.0) for n in own.columns])
    if ax is None:
        fig, ax = plt.subplots(figsize=(6.5, 5))
    else:
        fig = ax.figure
    names = list(own.columns)
    if len(names) >= 2:
        x, y = names[0], names[1]
        ax.scatter(own[x], own[y], color="tab:blue", label="no pooling (own data)", zorder=3)
        ax.scatter(pooled[x], pooled[y], color="tab:red", label="partial pooling (model)", zorder=3)
        for lev in own.index:
            ax.annotate(
                "",
                xy=(pooled.loc[lev, x], pooled.loc[lev, y]),
                xytext=(own.loc[lev, x], own.loc[lev, y]),
                arrowprops={"arrowstyle": "->", "color": "0.5", "lw": 0.8},
            )
        ax.scatter(
            *population[:2],
            marker="X",
            s=120,
            color="black",
            label="complete pooling / population",
            zorder=4,
        )
        cov = _block_covariance(fit, factor, names[:2])
        vals, vecs = np.linalg.eigh(cov)
        angle = np.degrees(np.arctan2(vecs[1, 1], vecs[0, 1]))
        width, height = 2 * np.sqrt(5.991 * np.maximum(vals[::-1], 0))
        ax.add_patch(Ellipse(population[:2], width, height, angle=angle, fill=False, ls="--", color="black"))
        ax.set_xlabel(f"{x} (group-specific)")
        ax.set_ylabel(f"{y} (group-specific)")
    else:
        x = names[0]
        order = np.argsort(own[x].to_numpy())
        pos = np.arange(len(order))
        ax.scatter(own[x].to_numpy()[order], pos, color="tab:blue", label="no pooling (own data)")
        ax.scatter(pooled[x].to_numpy()[order], pos, color="tab:red", label="partial pooling (model)")
        for k, i in enumerate(order):
            ax.annotate(
                "",
                xy=(pooled[x].iloc[i], k),
                xytext=(own[x].iloc[i], k),
                arrowprops={"arrowstyle": "->", "color": "0.5", "lw": 0.8},
            )
        ax.axvline(population[0], color="black", ls="--", label="complete pooling / population")
        ax.set_yticks(pos, [str(own.index[i]) for i in order])
        ax.set_xlabel(f"{x} (group-specific)")
        ax.set_ylabel(factor.group)
    ax.set_title(f"Shrinkage of {factor.group} coefficients ({fit.method})")
    ax.legend(fontsize="small", loc="best")
    return fig


def _block_covariance(fit: LikelihoodFit, factor, names: list[str]) -> np.ndarray:
    lam = factor.relative_factor(fit.theta)
    cov = fit.sigma**2 * lam @ lam.T
    idx = [factor.term_names.index(n) for n in names]
    return cov[np.ix_(idx, idx)]
