"""Plots: the power-scaled posteriors of a prior-sensitivity check (priorsense's ``powerscale_plot_dens``).

One row per parameter, one column per component (prior, likelihood): the posterior density (black)
and its importance-sampled versions with the component raised to ``α = 0.8`` (blue) and ``1.25``
(red); a parameter whose curves move apart is sensitive to that component. Panels whose Pareto k̂
is above the threshold say so: there the importance-sampling estimate is not to be trusted.
"""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure
from scipy import stats as sps

from bayesmlm.arguments import checked
from bayesmlm.exceptions import ArgumentError
from bayesmlm.plots._common import given_axes

__all__ = ["plot_prior_sensitivity"]

ALPHAS = (0.8, 1.25)


def _density(values: np.ndarray, weights: np.ndarray | None, grid: np.ndarray) -> np.ndarray:
    return sps.gaussian_kde(values, weights=weights)(grid)


@checked
def plot_prior_sensitivity(fit, params=None, alphas=ALPHAS, ax=None) -> Figure:
    """Plot the posterior of each population parameter with the prior and the likelihood power-scaled.

    Parameters
    ----------
    fit : Fit or PriorSensitivity
        A Bayesian fit (``fit.prior_sensitivity()`` is computed) or its result.
    params : list of str, optional
        Parameters to show (default all population parameters).
    alphas : tuple of float
        The powers shown besides 1.
    ax : array of Axes, optional
        ``len(params)`` × 2 of them.

    Returns
    -------
    Figure

    Examples
    --------
    >>> import bayesmlm as bm
    >>> m = bm.Model("Reaction ~ Days + (1 | Subject)", bm.load_dataset("sleepstudy"))
    >>> fit = m.fit(draws=200, tune=200, chains=2, seed=1, progressbar=False)
    >>> fig = bm.plot_prior_sensitivity(fit, params=["Days"])
    >>> [a.get_title().split(":")[0] for a in fig.axes]
    ['Days, prior', 'Days, likelihood']
    """
    import matplotlib.pyplot as plt

    result = fit if hasattr(fit, "weights") and hasattr(fit, "summary") else fit.prior_sensitivity()
    names = list(result.summary.index) if params is None else list(params)
    unknown = sorted(set(names) - set(result.summary.index))
    if unknown:
        raise ArgumentError(
            f"unknown parameter(s) {unknown}; the parameters are {list(result.summary.index)}"
        )
    if ax is None:
        fig, grid_axes = plt.subplots(
            len(names), 2, figsize=(8.0, 2.2 * len(names) + 0.4), squeeze=False, layout="constrained"
        )
        axes = list(grid_axes.ravel())
    else:
        axes = given_axes(ax, 2 * len(names))
        fig = axes[0].figure
    weights = {(c, a): result.weights(c, a) for c in ("prior", "likelihood") for a in alphas}
    for row, name in enumerate(names):
        values = result.draws[name].to_numpy()
        lo, hi = np.quantile(values, [0.001, 0.999])
        grid = np.linspace(lo - 0.1 * (hi - lo), hi + 0.1 * (hi - lo), 200)
        for col, component in enumerate(("prior", "likelihood")):
            a = axes[2 * row + col]
            a.plot(grid, _density(values, None, grid), color="black", lw=1.8, label="α = 1")
            worst = 0.0
            for alpha, colour in zip(alphas, ("C0", "C3"), strict=False):
                w, khat = weights[(component, alpha)]
                worst = max(worst, khat)
                a.plot(grid, _density(values, w, grid), color=colour, lw=1.2, label=f"α = {alpha:g}")
            sens = result.summary.loc[name, component]
            note = (
                f"; k̂ {worst:.2f} > {result.khat_threshold:.2f}: unreliable"
                if worst > result.khat_threshold
                else ""
            )
            a.set_title(f"{name}, {component}: sensitivity {sens:.3f}{note}", fontsize="small")
            a.set_yticks([])
        diagnosis = result.summary.loc[name, "diagnosis"]
        if diagnosis:
            axes[2 * row].text(
                0.02, 0.9, diagnosis, transform=axes[2 * row].transAxes, color="C3", fontsize="small"
            )
    axes[1].legend(fontsize="x-small")
    fig.suptitle("power-scaling the prior (left) and the likelihood (right)", fontsize="small")
    return fig
