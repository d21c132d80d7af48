"""Plots: the profile zeta plots of a REML/ML fit (lme4's ``xyplot(profile(m))``).

For each parameter, ``ζ = sign(x − ψ̂) √(dev(x) − dev_min)`` of the profiled ML deviance
(:mod:`bayesmlm.reml.profile`) against the parameter's value: a straight line where the likelihood is
quadratic (Wald intervals would be accurate), a curve where it is not (variances near zero, skewed
correlations). Horizontal lines mark ``ζ = ±z`` of the 50, 80, 90, 95 and 99% intervals, the vertical
ones the ends of the ``level`` interval (0 for a standard deviation whose profile never reaches z).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from scipy import stats as sps

from bayesmlm.arguments import checked
from bayesmlm.exceptions import ArgumentError
from bayesmlm.plots._common import given_axes, panel_grid

__all__ = ["plot_profile"]

LEVELS = (0.5, 0.8, 0.9, 0.95, 0.99)


@checked
def plot_profile(fit, level: float = 0.95, which=None, grid: int = 6, ncols: int = 3, ax=None) -> Figure:
    """Zeta plots of the profiled deviance, one panel per parameter.

    Parameters
    ----------
    fit : LikelihoodFit or Profile
        A REML/ML fit (its profile is computed once and kept with it), or a profile.
    level : float
        The interval whose ends are marked (the profile is traced to the 99% ends).
    which : list of str, optional
        Parameters to show (default all).
    grid : int
        Extra points of ζ traced between the 99% ends.
    ncols : int
        Panels per row.
    ax : sequence of Axes, optional

    Returns
    -------
    Figure

    Examples
    --------
    >>> import bayesmlm as bm
    >>> fit = bm.Model("Yield ~ 1 + (1 | Batch)", bm.load_dataset("Dyestuff")).fit_reml()
    >>> fig = bm.plot_profile(fit, grid=2)
    >>> [a.get_title() for a in fig.axes]
    ['sd(Intercept|Batch)', 'sigma', 'Intercept']
    """
    if not hasattr(fit, "points"):
        if not hasattr(fit, "small_sample"):
            raise TypeError(
                f"plot_profile needs a REML/ML fit (Model.fit_reml() or fit_ml()), not {type(fit).__name__}: "
                "a Bayesian fit has a posterior, not a likelihood profile"
            )
        prof, marked = fit.small_sample.profile(0.99, grid), fit.confint("profile", level)
        traced = [prof, fit.small_sample.profile(level)]  # confint's profile: its points near the ends
    else:
        prof, marked, traced = fit, fit.intervals, [fit]
    names = list(prof.points) if which is None else list(which)
    unknown = sorted(set(names) - set(prof.points))
    if unknown:
        raise ArgumentError(f"no profile for {unknown}; the profiled parameters are {list(prof.points)}")
    if ax is None:
        fig, axes = panel_grid(len(names), min(ncols, len(names)), lambda r, c: (3.4 * c, 2.8 * r + 0.3))
    else:
        axes = given_axes(ax, len(names))
        fig = axes[0].figure
    for a, name in zip(axes, names, strict=True):
        pts = pd.concat([p.points[name] for p in traced]).drop_duplicates("value").sort_values("value")
        a.plot(pts["value"], pts["zeta"], "-", color="C0", lw=1.5)
        a.plot(pts["value"], pts["zeta"], ".", color="C0", ms=3)
        for lev in LEVELS:
            z = sps.norm.ppf(0.5 + lev / 2)
            a.axhline(z, color="0.8", lw=0.7, zorder=0)
            a.axhline(-z, color="0.8", lw=0.7, zorder=0)
        a.axhline(0, color="0.5", lw=0.7, zorder=0)
        for end in marked.loc[name, ["lower", "upper"]] if name in marked.index else []:
            if np.isfinite(end):
                a.axvline(end, color="C3", lw=1, ls="--")
        a.set_title(name, fontsize="small")
        a.set_ylabel("ζ")
    fig.suptitle(f"profile zeta (ML deviance); dashed: {level:.0%} profile interval", fontsize="small")
    return fig
