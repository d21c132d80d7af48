"""Plots, the common part: axes handling, predictor grids, and the fit faces every plot reads.

Every plot takes a fit through the read-only faces that a Bayesian :class:`~bayesmlm.bayes.fit.Fit` and a
:class:`~bayesmlm.reml.fit.LikelihoodFit` both show (:class:`FitFaces`): no plot asks which kind it has.
"""

from __future__ import annotations

import math
import re
from typing import Protocol

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib import colormaps
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from bayesmlm.design.covariance import FactorTerms, RandomStructure
from bayesmlm.design.evaluate import Design
from bayesmlm.draws.arrays import ParameterDraws
from bayesmlm.exceptions import ArgumentError

CHI2_95_2D = 5.991  # 95% quantile of chi-square with 2 degrees of freedom


class FitFaces(Protocol):
    """What a plot reads from a fit (Bayesian or REML/ML)."""

    design: Design
    structure: RandomStructure
    estimate_label: str

    def fixed_estimates(self) -> pd.Series: ...

    def coefficients(self, group: str | None = None) -> pd.DataFrame: ...

    def population_draws(self) -> ParameterDraws: ...

    def group_effect_intervals(
        self, group: str | None, term: str, prob: float
    ) -> tuple[pd.DataFrame, str]: ...

    def line_draws(self, group: str | None, level: int, X: np.ndarray, Z: np.ndarray) -> np.ndarray: ...


def population_covariance(fit: FitFaces, factor: FactorTerms) -> np.ndarray:
    """Covariance (q x q) of the factor's group effects: the estimate, or the posterior mean."""
    k = [f.group for f in fit.structure.factors].index(factor.group)
    return fit.population_draws().covariances[k].mean(axis=0)


# -- axes handling -----------------------------------------------------------------------------------
def one_axes(ax, figsize: tuple[float, float]) -> tuple[Figure, Axes]:
    if ax is None:
        fig, ax = plt.subplots(figsize=figsize, layout="constrained")
        return fig, ax
    if not isinstance(ax, Axes):
        raise TypeError(f"ax must be a matplotlib Axes, not {type(ax).__name__}")
    return ax.figure, ax


def several_axes(ax, n: int, figsize: tuple[float, float]) -> tuple[Figure, list[Axes], bool]:
    """Return ``(figure, n axes, made)``: a new row of ``n`` panels, or the first ``n`` of ``ax``."""
    if ax is None:
        fig, axes = plt.subplots(1, n, figsize=figsize, squeeze=False, layout="constrained")
        return fig, list(axes.ravel()), True
    axes = given_axes(ax, n)
    return axes[0].figure, axes, False


def panel_grid(n: int, ncols: int, figsize_of, **subplots_kw) -> tuple[Figure, list[Axes]]:
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


def given_axes(ax, n: int) -> list[Axes]:
    """Return the first ``n`` of the Axes given as ``ax=`` (one Axes, or a sequence or array of them)."""
    axes = [ax] if isinstance(ax, Axes) else list(np.ravel(np.asarray(ax, dtype=object)))
    if len(axes) < n or not all(isinstance(a, Axes) for a in axes):
        raise ArgumentError(f"this plot draws {n} panels: pass ax= a sequence of {n} matplotlib Axes")
    return axes[:n]


def group_colors(n: int) -> list:
    cmap = colormaps["tab20"] if n <= 20 else colormaps["viridis"]
    return [cmap(i) for i in range(n)] if n <= 20 else [cmap(v) for v in np.linspace(0, 1, n)]


# -- predictor grids ---------------------------------------------------------------------------------
def factor_columns(structure: RandomStructure) -> set[str]:
    return {c for f in structure.factors for c in f.source_blocks[0].term.factor}


def x_variable(design: Design, structure: RandomStructure, factor: FactorTerms, x: str | None) -> str:
    """Choose the numeric column on the x axis: ``x``, else the first non-intercept random or fixed term."""
    data = design.data
    response_names = set(re.findall(r"[^\W\d]\w*", design.response_name))
    usable = [
        c
        for c in data.columns
        if pd.api.types.is_numeric_dtype(data[c].dtype)
        and not pd.api.types.is_bool_dtype(data[c].dtype)
        and c not in response_names
        and c not in factor_columns(structure)
    ]
    if x is not None:
        if x not in usable:
            raise ArgumentError(f"x={x!r} is not a numeric predictor of the model; choose one of {usable}")
        return x
    for name in [*factor.term_names, *design.fixed_names]:
        if name in usable:
            return name
    if usable:
        return usable[0]
    raise ArgumentError(
        f"the model {design.spec.formula!r} has no numeric predictor to put on the x axis; "
        "these plots need a model with one, such as 'y ~ x + (x | g)'"
    )


def reference_frame(design: Design, x: str, grid: np.ndarray) -> pd.DataFrame:
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


def group_frame(design: Design, factor: FactorTerms, level: int, base: pd.DataFrame) -> pd.DataFrame:
    """Return ``base`` with the factor's columns set to the values of one of its levels."""
    frame = base.copy()
    row = design.data.iloc[int(np.flatnonzero(factor.codes == level)[0])]
    for c in factor.source_blocks[0].term.factor:
        if isinstance(design.data[c].dtype, pd.CategoricalDtype):
            frame[c] = pd.Categorical([row[c]] * len(frame), categories=design.data[c].cat.categories)
        else:
            frame[c] = pd.Series([row[c]] * len(frame), dtype=design.data[c].dtype, index=frame.index)
    return frame


def split_columns(design: Design, factor: FactorTerms) -> list[int]:
    """Positions of the fixed-effects columns that are not among the factor's random terms."""
    return [j for j, n in enumerate(design.fixed_names) if n not in factor.term_names]


def mean_line(design: Design, factor: FactorTerms, frame: pd.DataFrame, beta: np.ndarray, coef) -> np.ndarray:
    """Mean response on ``frame`` with group coefficients ``coef`` and the other fixed effects ``beta``."""
    other = split_columns(design, factor)
    X = design.fixed_design(frame)
    Z = factor.evaluate(frame)[0]
    return X[:, other] @ np.asarray(beta)[other] + Z @ np.asarray(coef, dtype=float)


def choose_levels(factor: FactorTerms, groups) -> list[int]:
    if groups is None:
        return list(range(factor.n_levels))
    if isinstance(groups, int | np.integer) and not isinstance(groups, bool):
        if groups < 1:
            raise ArgumentError(f"groups must be at least 1, not {groups}")
        return list(range(min(int(groups), factor.n_levels)))
    if isinstance(groups, str):
        groups = [groups]
    index = {lev: i for i, lev in enumerate(factor.levels)}
    labels = [str(g) for g in groups]
    unknown = [g for g in labels if g not in index]
    if unknown:
        raise ArgumentError(
            f"unknown level(s) {unknown} of {factor.group}; its levels are {list(factor.levels)}"
        )
    return [index[g] for g in labels]
