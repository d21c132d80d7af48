"""Plots of fitted multilevel models: shrinkage, pooling, per-group fits, group effects, predictive checks.

Every function takes a fit (a Bayesian :class:`~bayesmlm.Fit`, or a REML/ML
:class:`~bayesmlm.LikelihoodFit` where that makes sense), draws into ``ax=`` when it is given (one
Axes, or a sequence of Axes for plots with several panels) and returns the matplotlib Figure.
Point estimates are posterior means for a Bayesian fit and the REML/ML estimates (conditional modes
for the group effects) for a likelihood fit.

The three kinds of pooling compared here:

- *complete pooling*: one ordinary least-squares regression of the response on the fixed-effects
  columns through all rows, ignoring the groups (:func:`complete_pooling_coefficients`);
- *no pooling*: each group's own least-squares estimate of its random-term coefficients, the other
  fixed effects held at the model's estimates (:func:`no_pooling_coefficients`);
- *partial pooling*: the model's group-specific coefficients (fixed effect + group effect).
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib import colormaps
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.patches import Ellipse
from scipy import stats as sps

from bayesmlm.bayes_fit import Fit, covariance_draws, stacked_draws
from bayesmlm.covariance import FactorTerms, RandomStructure
from bayesmlm.design import Design
from bayesmlm.likelihood_fit import LikelihoodFit

__all__ = [
    "complete_pooling_coefficients",
    "no_pooling_coefficients",
    "plot_caterpillar",
    "plot_compare",
    "plot_groups",
    "plot_icc",
    "plot_pooling",
    "plot_ppc",
    "plot_shrinkage",
]

AnyFit = Fit | LikelihoodFit
_CHI2_95_2D = 5.991  # 95% quantile of chi-square with 2 degrees of freedom
_STATISTICS = ("mean", "sd", "min", "max")


# -- what a fit holds, for either kind ---------------------------------------------------------------
def _parts(fit: AnyFit) -> tuple[Design, RandomStructure]:
    """Return the design and random structure of a Bayesian or likelihood fit."""
    if isinstance(fit, Fit):
        return fit.model.design, fit.model.structure
    if isinstance(fit, LikelihoodFit):
        return fit.design, fit.structure
    raise TypeError(f"expected a bayesmlm Fit or LikelihoodFit, not {type(fit).__name__}")


def _method(fit: AnyFit) -> str:
    return "posterior means" if isinstance(fit, Fit) else fit.method


def _draws(fit: Fit, name: str) -> np.ndarray:
    """Posterior draws of one variable with chains and draws merged: (samples, ...)."""
    return stacked_draws(fit.posterior, name)


def _fixed_estimates(fit: AnyFit) -> pd.Series:
    """Fixed-effect estimates (posterior means for a Bayesian fit), indexed by term."""
    if isinstance(fit, Fit):
        names = list(fit.model.design.fixed_names)
        return pd.Series(_draws(fit, "fixed").mean(axis=0), index=pd.Index(names, name="term"))
    return fit.fixed_effects["estimate"]


def _pooled_coefficients(fit: AnyFit, factor: FactorTerms) -> pd.DataFrame:
    """Return the partially pooled coefficients (fixed + group effect) of the factor's terms, per level."""
    names = list(factor.term_names)
    if isinstance(fit, LikelihoodFit):
        return fit.coefficients(factor.group)[names]
    coef = _draws(fit, f"r_{factor.group}").mean(axis=0)  # (levels, q)
    beta = _fixed_estimates(fit)
    for k, name in enumerate(names):
        if name in beta.index:
            coef[:, k] += beta[name]
    return pd.DataFrame(coef, index=pd.Index(factor.levels, name=factor.group), columns=names)


def _population_covariance(fit: AnyFit, factor: FactorTerms) -> np.ndarray:
    """Covariance (q x q) of the factor's group effects; for a Bayesian fit the posterior mean."""
    if isinstance(fit, LikelihoodFit):
        lam = factor.relative_factor(fit.theta)
        return fit.sigma**2 * lam @ lam.T
    return covariance_draws(fit.posterior, factor).mean(axis=0)


def _hdi(draws: np.ndarray, prob: float) -> tuple[np.ndarray, np.ndarray]:
    """Narrowest interval holding ``prob`` of the draws, per column of ``draws`` (samples, k)."""
    s = np.sort(draws, axis=0)
    n = s.shape[0]
    inside = min(max(math.ceil(prob * n), 1), n)
    widths = s[inside - 1 :] - s[: n - inside + 1]
    start = np.argmin(widths, axis=0)
    cols = np.arange(s.shape[1])
    return s[start, cols], s[start + inside - 1, cols]


# -- pooling estimates -------------------------------------------------------------------------------
def complete_pooling_coefficients(fit: AnyFit) -> pd.Series:
    """Ordinary least-squares coefficients of the fixed-effects columns through all rows (complete pooling).

    The groups are ignored: one regression of the response on the model's fixed-effects matrix.

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
    design, _ = _parts(fit)
    names = pd.Index(list(design.fixed_names), name="term")
    if design.p == 0:
        return pd.Series(np.zeros(0), index=names, name="estimate")
    beta = np.linalg.lstsq(design.X, design.y, rcond=None)[0]
    return pd.Series(beta, index=names, name="estimate")


def no_pooling_coefficients(fit: AnyFit, group: str | None = None) -> pd.DataFrame:
    """Per-group least-squares coefficients of the group's random terms (no pooling).

    Each group's rows are regressed on the random block's columns with the other fixed effects held
    at their estimates (posterior means for a Bayesian fit), so the result is on the same scale as
    the group-specific coefficients of the model. Groups whose rows cannot identify the coefficients
    get NaN.

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
    design, structure = _parts(fit)
    factor = structure.factor(group)
    beta = _fixed_estimates(fit)
    names = list(factor.term_names)
    fixed_other = [n for n in design.fixed_names if n not in names]
    X = pd.DataFrame(design.X, columns=list(design.fixed_names))
    offset = X[fixed_other].to_numpy() @ beta[fixed_other].to_numpy() if fixed_other else 0.0
    target = design.y - offset
    out = np.full((factor.n_levels, factor.q), np.nan)
    for level in range(factor.n_levels):
        rows = factor.codes == level
        Z = factor.Z[rows]
        if rows.sum() >= factor.q and np.linalg.matrix_rank(Z) == factor.q:
            out[level] = np.linalg.lstsq(Z, target[rows], rcond=None)[0]
    return pd.DataFrame(out, index=pd.Index(factor.levels, name=factor.group), columns=names)


# -- axes handling -----------------------------------------------------------------------------------
def _one_axes(ax, figsize: tuple[float, float]) -> tuple[Figure, Axes]:
    if ax is None:
        fig, ax = plt.subplots(figsize=figsize, layout="constrained")
        return fig, ax
    if not isinstance(ax, Axes):
        raise TypeError(f"ax must be a matplotlib Axes, not {type(ax).__name__}")
    return ax.figure, ax


def _several_axes(ax, n: int, figsize: tuple[float, float]) -> tuple[Figure, list[Axes], bool]:
    """Return ``(figure, n axes, made)``: a new row of ``n`` panels, or the first ``n`` of ``ax``."""
    if ax is None:
        fig, axes = plt.subplots(1, n, figsize=figsize, squeeze=False, layout="constrained")
        return fig, list(axes.ravel()), True
    axes = _given_axes(ax, n)
    return axes[0].figure, axes, False


def _panel_grid(n: int, ncols: int, figsize_of, **subplots_kw) -> tuple[Figure, list[Axes]]:
    """Return a new figure with ``n`` panels in rows of ``ncols`` (unused cells removed).

    ``figsize_of(nrows, ncols)`` gives the figure size; ``subplots_kw`` go to ``plt.subplots``.
    """
    nrows = math.ceil(n / ncols)
    fig, grid = plt.subplots(
        nrows, ncols, figsize=figsize_of(nrows, ncols), squeeze=False, layout="constrained", **subplots_kw
    )
    axes = list(grid.ravel())
    for extra in axes[n:]:
        extra.remove()
    return fig, axes[:n]


def _given_axes(ax, n: int) -> list[Axes]:
    """Return the first ``n`` of the Axes given as ``ax=`` (one Axes, or a sequence or array of them)."""
    axes = [ax] if isinstance(ax, Axes) else list(np.ravel(np.asarray(ax, dtype=object)))
    if len(axes) < n or not all(isinstance(a, Axes) for a in axes):
        raise ValueError(f"this plot draws {n} panels: pass ax= a sequence of {n} matplotlib Axes")
    return axes[:n]


def _group_colors(n: int) -> list:
    cmap = colormaps["tab20"] if n <= 20 else colormaps["viridis"]
    return [cmap(i) for i in range(n)] if n <= 20 else [cmap(v) for v in np.linspace(0, 1, n)]


# -- predictor grids ---------------------------------------------------------------------------------
def _factor_columns(structure: RandomStructure) -> set[str]:
    return {c for f in structure.factors for c in f.source_blocks[0].term.factor}


def _x_variable(design: Design, structure: RandomStructure, factor: FactorTerms, x: str | None) -> str:
    """Choose the numeric column on the x axis: ``x``, else the first non-intercept random or fixed term."""
    data = design.data
    response_names = set(re.findall(r"[^\W\d]\w*", design.response_name))
    usable = [
        c
        for c in data.columns
        if pd.api.types.is_numeric_dtype(data[c].dtype)
        and not pd.api.types.is_bool_dtype(data[c].dtype)
        and c not in response_names
        and c not in _factor_columns(structure)
    ]
    if x is not None:
        if x not in usable:
            raise ValueError(f"x={x!r} is not a numeric predictor of the model; choose one of {usable}")
        return x
    for name in [*factor.term_names, *design.fixed_names]:
        if name in usable:
            return name
    if usable:
        return usable[0]
    raise ValueError(
        f"the model {design.spec.formula!r} has no numeric predictor to put on the x axis; "
        "these plots need a model with one, such as 'y ~ x + (x | g)'"
    )


def _reference_frame(design: Design, x: str, grid: np.ndarray) -> pd.DataFrame:
    """Rows with ``x`` over ``grid`` and every other column at its mean (numbers) or first level."""
    data = design.data
    columns = {}
    for c in data.columns:
        col = data[c]
        if c == x:
            columns[c] = grid
        elif pd.api.types.is_numeric_dtype(col.dtype) and not pd.api.types.is_bool_dtype(col.dtype):
            columns[c] = np.full(len(grid), float(col.mean()))
        elif isinstance(col.dtype, pd.CategoricalDtype):
            columns[c] = pd.Categorical([col.cat.categories[0]] * len(grid), categories=col.cat.categories)
        else:
            columns[c] = np.repeat(np.asarray(sorted(col.unique(), key=str)[:1], dtype=object), len(grid))
    return pd.DataFrame(columns)


def _group_frame(design: Design, factor: FactorTerms, level: int, base: pd.DataFrame) -> pd.DataFrame:
    """Return ``base`` with the factor's columns set to the values of one of its levels."""
    frame = base.copy()
    row = design.data.iloc[int(np.flatnonzero(factor.codes == level)[0])]
    for c in factor.source_blocks[0].term.factor:
        if isinstance(design.data[c].dtype, pd.CategoricalDtype):
            frame[c] = pd.Categorical([row[c]] * len(frame), categories=design.data[c].cat.categories)
        else:
            frame[c] = pd.Series([row[c]] * len(frame), dtype=design.data[c].dtype, index=frame.index)
    return frame


def _split_columns(design: Design, factor: FactorTerms) -> list[int]:
    """Positions of the fixed-effects columns that are not among the factor's random terms."""
    return [j for j, n in enumerate(design.fixed_names) if n not in factor.term_names]


def _line(design: Design, factor: FactorTerms, frame: pd.DataFrame, beta: np.ndarray, coef) -> np.ndarray:
    """Mean response on ``frame`` with group coefficients ``coef`` and the other fixed effects ``beta``."""
    other = _split_columns(design, factor)
    X = design.fixed_design(frame)
    Z = factor.evaluate(frame)[0]
    return X[:, other] @ np.asarray(beta)[other] + Z @ np.asarray(coef, dtype=float)


def _line_draws(fit: Fit, factor: FactorTerms, frame: pd.DataFrame, level: int) -> np.ndarray:
    """Draws (samples, rows) of one group's mean response on ``frame`` (other factors at 0)."""
    design = fit.model.design
    X = design.fixed_design(frame)
    Z = factor.evaluate(frame)[0]
    fixed = _draws(fit, "fixed")  # (S, p)
    r = _draws(fit, f"r_{factor.group}")[:, level, :]  # (S, q)
    return fixed @ X.T + r @ Z.T


def _choose_levels(factor: FactorTerms, groups) -> list[int]:
    if groups is None:
        return list(range(factor.n_levels))
    if isinstance(groups, int | np.integer) and not isinstance(groups, bool):
        if groups < 1:
            raise ValueError(f"groups must be at least 1, not {groups}")
        return list(range(min(int(groups), factor.n_levels)))
    if isinstance(groups, str):
        groups = [groups]
    index = {lev: i for i, lev in enumerate(factor.levels)}
    labels = [str(g) for g in groups]
    unknown = [g for g in labels if g not in index]
    if unknown:
        raise ValueError(
            f"unknown level(s) {unknown} of {factor.group}; its levels are {list(factor.levels)}"
        )
    return [index[g] for g in labels]


# -- the plots ---------------------------------------------------------------------------------------
def plot_shrinkage(fit: AnyFit, group: str | None = None, ax=None) -> Figure:
    """No pooling vs partial pooling vs complete pooling of the group-specific coefficients.

    Works for a Bayesian :class:`~bayesmlm.Fit` (posterior means) and a :class:`~bayesmlm.LikelihoodFit`.
    With a random intercept and a random slope, a 2-D plot: an arrow per group from its own
    least-squares estimate (no pooling) to the model's estimate (partial pooling), the population
    (fixed-effect) estimate, the complete-pooling (OLS through all data) estimate and the 95% ellipse
    of the population distribution of the group coefficients. With one random term, one row per
    group with its two estimates joined by an arrow, and the population and complete-pooling
    estimates as vertical lines.

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
    _, structure = _parts(fit)
    factor = structure.factor(group)
    own = no_pooling_coefficients(fit, factor.group)
    pooled = _pooled_coefficients(fit, factor)
    beta = _fixed_estimates(fit)
    ols = complete_pooling_coefficients(fit)
    names = list(own.columns)
    population = np.array([beta.get(n, 0.0) for n in names])
    complete = np.array([ols.get(n, 0.0) for n in names])
    fig, ax = _one_axes(ax, (6.5, 5) if len(names) >= 2 else (6.5, max(3.5, 0.28 * factor.n_levels + 1.2)))
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
            label="complete pooling (OLS, all data)",
            zorder=5,
        )
        cov = _population_covariance(fit, factor)[:2, :2]
        vals, vecs = np.linalg.eigh(cov)
        angle = np.degrees(np.arctan2(vecs[1, 1], vecs[0, 1]))
        width, height = 2 * np.sqrt(_CHI2_95_2D * np.maximum(vals[::-1], 0))
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
        ax.set_xlabel(f"{x} (coefficient per {factor.group})")
        ax.set_ylabel(f"{y} (coefficient per {factor.group})")
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
        ax.axvline(complete[0], color="tab:green", ls=":", lw=2, label="complete pooling (OLS, all data)")
        ax.set_yticks(pos, [str(own.index[i]) for i in order])
        ax.set_xlabel(f"{x} (coefficient per {factor.group})")
        ax.set_ylabel(factor.group)
    ax.set_title(f"Shrinkage of {factor.group} coefficients ({_method(fit)})")
    ax.legend(fontsize="small", loc="best")
    return fig


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


def plot_ppc(
    fit: Fit,
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
    if not isinstance(fit, Fit):
        raise TypeError(
            f"plot_ppc needs a Bayesian Fit (from Model.fit()), not {type(fit).__name__}: a REML/ML fit "
            "has no posterior draws to replicate the data from"
        )
    if statistic not in _STATISTICS:
        raise ValueError(f"statistic must be one of {list(_STATISTICS)}, not {statistic!r}")
    if n_draws < 1:
        raise ValueError(f"n_draws must be at least 1, not {n_draws}")
    design, structure = _parts(fit)
    factor = structure.factor(group)
    y = np.asarray(design.y)
    y_rep = fit.predict(kind="response", return_draws=True, seed=seed)  # (S, n)
    rng = np.random.default_rng(seed)
    shown = rng.choice(y_rep.shape[0], size=min(n_draws, y_rep.shape[0]), replace=False)
    fig, (ax_dens, ax_stat), _ = _several_axes(ax, 2, (11, 4.2))

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

    t_rep = spread(y_rep)
    t_obs = float(spread(y[None, :])[0])
    p_value = float(np.mean(t_rep >= t_obs))
    ax_stat.hist(t_rep, bins=30, histtype="stepfilled", color="tab:blue", alpha=0.5, label="replicated")
    ax_stat.axvline(t_obs, color="black", lw=2.2, label="observed")
    ax_stat.set_xlabel(
        f"sd across {factor.group} of per-{factor.group} {statistic} of {design.response_name}"
    )
    ax_stat.set_ylabel("replicated data sets")
    ax_stat.set_title(f"{factor.group}-level {statistic}: posterior predictive p = {p_value:.2f}")
    ax_stat.legend(fontsize="small")
    return fig


def plot_groups(
    fit: AnyFit,
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
        raise ValueError(f"prob must lie between 0 and 1, not {prob}")
    design, structure = _parts(fit)
    factor = structure.factor(group)
    xname = _x_variable(design, structure, factor, x)
    levels = _choose_levels(factor, groups)
    xs = design.data[xname].to_numpy(dtype=float)
    grid = np.linspace(xs.min(), xs.max(), 50)
    base = _reference_frame(design, xname, grid)
    beta = _fixed_estimates(fit).to_numpy()
    pooled = _pooled_coefficients(fit, factor)
    if ax is None:
        ncols = max(1, min(ncols, len(levels)))
        fig, axes = _panel_grid(
            len(levels), ncols, lambda r, c: (2.3 * c + 0.6, 2.1 * r + 0.8), sharex=True, sharey=True
        )
        fig.suptitle(f"{design.response_name} by {xname} for each {factor.group} ({_method(fit)})")
    else:
        axes = _given_axes(ax, len(levels))
        fig, ncols = axes[0].figure, len(axes)
    bayes = isinstance(fit, Fit)
    for k, (a, level) in enumerate(zip(axes, levels, strict=True)):
        rows = factor.codes == level
        a.scatter(xs[rows], design.y[rows], s=12, color="0.3", label="data", zorder=3)
        frame = _group_frame(design, factor, level, base)
        if bayes:
            draws = _line_draws(fit, factor, frame, level)
            low, high = _hdi(draws, prob)
            a.fill_between(grid, low, high, color="tab:blue", alpha=0.25, lw=0, label=f"{prob:.0%} HDI")
            line = draws.mean(axis=0)
        else:
            line = _line(design, factor, frame, beta, pooled.iloc[level].to_numpy())
        a.plot(grid, line, color="tab:blue", lw=1.6, label="fitted")
        a.set_title(str(factor.levels[level]), fontsize="medium")
        if k + ncols >= len(axes):  # bottom panel of its column
            a.set_xlabel(xname)
            a.xaxis.set_tick_params(labelbottom=True)
        if k % ncols == 0:
            a.set_ylabel(design.response_name)
    axes[0].legend(fontsize="x-small", loc="best")
    return fig


def plot_pooling(fit: AnyFit, group: str | None = None, x: str | None = None, ax=None) -> Figure:
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
    design, structure = _parts(fit)
    factor = structure.factor(group)
    xname = _x_variable(design, structure, factor, x)
    xs = design.data[xname].to_numpy(dtype=float)
    grid = np.linspace(xs.min(), xs.max(), 50)
    base = _reference_frame(design, xname, grid)
    beta = _fixed_estimates(fit).to_numpy()
    own = no_pooling_coefficients(fit, factor.group)
    pooled = _pooled_coefficients(fit, factor)
    fig, (ax_all, ax_own, ax_model), made = _several_axes(ax, 3, (14, 4.5))
    if made:
        for a in (ax_own, ax_model):
            a.sharex(ax_all)
            a.sharey(ax_all)
        fig.suptitle(f"{design.response_name} vs {xname}: pooling across {factor.group} ({_method(fit)})")

    ols = complete_pooling_coefficients(fit).to_numpy()
    ax_all.scatter(xs, design.y, s=10, color="0.45", alpha=0.7, label="data")
    ax_all.plot(grid, design.fixed_design(base) @ ols, color="black", lw=2, label="OLS, all data")
    ax_all.legend(fontsize="small")

    colors = _group_colors(factor.n_levels)
    point_colors = [colors[c] for c in factor.codes]
    for a in (ax_own, ax_model):
        a.scatter(xs, design.y, s=10, c=point_colors, alpha=0.7)
    for level in range(factor.n_levels):
        frame = _group_frame(design, factor, level, base)
        coef_own = own.iloc[level].to_numpy()
        if np.isfinite(coef_own).all():
            ax_own.plot(grid, _line(design, factor, frame, beta, coef_own), color=colors[level], lw=1)
        line = _line(design, factor, frame, beta, pooled.iloc[level].to_numpy())
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


def plot_caterpillar(
    fit: AnyFit, group: str | None = None, term: str = "Intercept", prob: float = 0.95, ax=None
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
        raise ValueError(f"prob must lie between 0 and 1, not {prob}")
    _, structure = _parts(fit)
    factor = structure.factor(group)
    if term not in factor.term_names:
        raise ValueError(
            f"{factor.group} has no random term {term!r}; its terms are {list(factor.term_names)}"
        )
    if isinstance(fit, Fit):
        table = fit.random_effects(factor.group, prob=prob).xs(term, level="term")
        estimate, low, high = table["mean"], table["hdi_low"], table["hdi_high"]
        interval = f"{prob:.0%} HDI"
    else:
        table = fit.random_effects(factor.group, conditional_sd=True)
        z = sps.norm.ppf(0.5 + prob / 2)
        estimate = table[term]
        low, high = estimate - z * table[f"{term}_sd"], estimate + z * table[f"{term}_sd"]
        interval = f"±{z:.2f} conditional sd"
    order = np.argsort(estimate.to_numpy(), kind="stable")
    est, lo, hi = (s.to_numpy()[order] for s in (estimate, low, high))
    pos = np.arange(len(order))
    fig, ax = _one_axes(ax, (6, max(3.0, 0.26 * len(order) + 1.3)))
    ax.axvline(0, color="0.5", lw=1, ls="--", zorder=1)
    ax.errorbar(
        est, pos, xerr=[est - lo, hi - est], fmt="o", ms=4, color="tab:blue", ecolor="tab:blue", lw=1.2
    )
    ax.set_yticks(pos, [str(factor.levels[i]) for i in order])
    ax.set_ylim(-0.7, len(order) - 0.3)
    ax.set_xlabel(f"{term}: deviation of each {factor.group} from the population")
    ax.set_ylabel(factor.group)
    ax.set_title(f"{factor.group} effects on {term} ({_method(fit)}, {interval})")
    return fig


# -- ICC and Bayes beside REML -----------------------------------------------------------------------
_BAND_COLOURS = ("#f0f0f0", "#dbe9f6", "#b5d3ec", "#85b8de")


def plot_icc(fit, at: dict | None = None, prob: float = 0.95, ax=None, **icc_kwargs) -> Figure:
    """Plot the distribution of each ICC over the interpretation bands, one panel per ICC.

    For a Bayesian fit, a histogram of the posterior draws with the median and the HDI; for a
    REML/ML fit, the bootstrap replicates with the point estimate and the percentile interval (see
    :mod:`bayesmlm.icc`). The bands (negligible < 0.05 ≤ moderate < 0.15 ≤ substantial < 0.25 ≤ very
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
    from bayesmlm.icc import BANDS, ICC

    icc = fit if isinstance(fit, ICC) else fit.icc(at=at, prob=prob, **icc_kwargs)
    names = list(icc.summary.index)
    fig, axes, _ = _several_axes(ax, len(names), (3.6 * len(names), 3.0))
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
    fit: Fit | None = None,
    reml_fit: LikelihoodFit | None = None,
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
            raise ValueError("plot_compare needs fit and reml_fit, or table= from compare_estimates")
        from bayesmlm.estimates import compare_estimates

        table = compare_estimates(fit, reml_fit, prob=prob, **compare_kwargs)
    names = list(table.index)
    if ax is None:
        fig, axes = _panel_grid(len(names), min(3, len(names)), lambda r, c: (4.0 * c, 1.5 * r + 0.4))
    else:
        axes = _given_axes(ax, len(names))
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
