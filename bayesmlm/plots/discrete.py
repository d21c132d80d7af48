"""Plots: posterior predictive checks for discrete responses, a rootogram (counts) and a calibration plot.

A Gaussian density overlay says little about counts or 0/1 data. For counts, the hanging rootogram
(Kleiber & Zeileis 2016, "Visualizing count data regressions using rootograms"): for each count
``k`` a bar of height ``√observed(k)`` hangs from the curve ``√expected(k)``, the expected frequency
being the posterior predictive mean number of rows with count ``k``; a bar ending above or below zero
shows too few or too many predicted ``k`` on a scale where small frequencies are visible. For binary
and binomial data, the binned calibration plot: rows binned by their posterior mean probability,
each bin's observed proportion of successes (with a binomial 95% interval) against its mean
predicted probability, beside the diagonal.
"""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

from bayesmlm.arguments import checked
from bayesmlm.exceptions import FitError
from bayesmlm.plots._common import one_axes

__all__ = ["calibration_table", "plot_calibration", "plot_rootogram", "rootogram_table"]

COUNT_FAMILIES = ("poisson", "negativebinomial")


def _family_name(fit) -> str:
    family = getattr(fit.model, "family", None)
    return "gaussian" if family is None or not family.generalized else family.name


def rootogram_table(fit, max_count: int | None = None, seed: int | None = None) -> dict[str, np.ndarray]:
    """Observed and posterior predictive expected frequencies of each count ``0 .. max_count``.

    Parameters
    ----------
    fit : GeneralizedFit
        A Bayesian Poisson or negative binomial fit.
    max_count : int, optional
        The largest count shown (default: the largest observed).
    seed : int, optional
        Seed of the replicated responses.

    Returns
    -------
    dict
        ``count``, ``observed`` and ``expected`` arrays (the last count collects everything above).
    """
    if _family_name(fit) not in COUNT_FAMILIES or not hasattr(fit, "posterior"):
        raise FitError(
            f"a rootogram needs a Bayesian fit of counts (family 'poisson' or 'negativebinomial'), not a "
            f"{_family_name(fit)} {type(fit).__name__}; for 0/1 or binomial data use plot_calibration(fit)"
        )
    observed = np.asarray(fit.model.family.glm_data(fit.design).observed, dtype=int)
    top = int(observed.max()) if max_count is None else int(max_count)
    replicated = np.minimum(fit.predict(kind="response", return_draws=True, seed=seed).astype(int), top)
    counts = np.arange(top + 1)
    expected = np.stack([np.bincount(row, minlength=top + 1) for row in replicated]).mean(axis=0)
    return {
        "count": counts,
        "observed": np.bincount(np.minimum(observed, top), minlength=top + 1).astype(float),
        "expected": expected,
    }


@checked
def plot_rootogram(fit, max_count: int | None = None, seed: int | None = None, ax=None) -> Figure:
    """Hanging rootogram of a count model's posterior predictive distribution.

    Parameters
    ----------
    fit : GeneralizedFit
    max_count : int, optional
        The largest count shown; larger counts are pooled into it.
    seed : int, optional
    ax : Axes, optional

    Returns
    -------
    Figure

    Examples
    --------
    >>> import bayesmlm as bm
    >>> m = bm.Model("TICKS ~ YEAR + (1 | LOCATION)", bm.load_dataset("grouseticks"), family="poisson")
    >>> fit = m.fit(draws=100, tune=100, chains=1, progressbar=False)  # doctest: +SKIP
    >>> fig = bm.plot_rootogram(fit, max_count=30)  # doctest: +SKIP
    """
    table = rootogram_table(fit, max_count, seed)
    fig, ax = one_axes(ax, (7, 4))
    top = np.sqrt(table["expected"])
    ax.bar(
        table["count"],
        np.sqrt(table["observed"]),
        bottom=top - np.sqrt(table["observed"]),
        width=0.8,
        color="0.75",
        edgecolor="0.4",
        label="√observed, hanging",
    )
    ax.plot(table["count"], top, "o-", color="C3", ms=3, label="√expected (posterior predictive)")
    ax.axhline(0, color="k", lw=0.8)
    ax.set_xlabel("count")
    ax.set_ylabel("√frequency")
    ax.set_title("Hanging rootogram")
    ax.legend(frameon=False)
    return fig


def calibration_table(fit, n_bins: int = 10) -> dict[str, np.ndarray]:
    """Rows binned by posterior mean probability: mean predicted, observed proportion, its 95% interval.

    Bins are quantiles of the predicted probability (as equal in rows as ties allow); a binomial row
    counts with its trials (successes over trials within the bin).
    """
    if _family_name(fit) != "binomial" or not hasattr(fit, "posterior"):
        raise FitError(
            f"a calibration plot needs a Bayesian binomial or Bernoulli fit, not a {_family_name(fit)} "
            f"{type(fit).__name__}; for counts use plot_rootogram(fit)"
        )
    data = fit.model.family.glm_data(fit.design)
    p = fit.predict(return_draws=True).mean(axis=0)
    edges = np.unique(np.quantile(p, np.linspace(0, 1, n_bins + 1)))
    which = np.clip(np.searchsorted(edges, p, side="right") - 1, 0, len(edges) - 2)
    trials = np.bincount(which, weights=data.n, minlength=len(edges) - 1)
    successes = np.bincount(which, weights=data.observed, minlength=len(edges) - 1)
    predicted = np.bincount(which, weights=p * data.n, minlength=len(edges) - 1)
    keep = trials > 0
    trials, successes, predicted = trials[keep], successes[keep], predicted[keep]
    observed = successes / trials
    half = 1.96 * np.sqrt(np.clip(observed * (1 - observed), 1e-12, None) / trials)
    return {
        "predicted": predicted / trials,
        "observed": observed,
        "low": np.clip(observed - half, 0, 1),
        "high": np.clip(observed + half, 0, 1),
        "trials": trials,
    }


@checked
def plot_calibration(fit, n_bins: int = 10, ax=None) -> Figure:
    """Binned calibration plot of a binary or binomial model (observed vs predicted probability).

    Parameters
    ----------
    fit : GeneralizedFit
    n_bins : int
        Number of quantile bins of the predicted probability.
    ax : Axes, optional

    Returns
    -------
    Figure

    Examples
    --------
    >>> import bayesmlm as bm
    >>> m = bm.Model("cbind(incidence, size - incidence) ~ period + (1 | herd)", bm.load_dataset("cbpp"),
    ...              family="binomial")
    >>> fit = m.fit(draws=100, tune=100, chains=1, progressbar=False)  # doctest: +SKIP
    >>> fig = bm.plot_calibration(fit, n_bins=5)  # doctest: +SKIP
    """
    t = calibration_table(fit, n_bins)
    fig, ax = one_axes(ax, (4.5, 4.5))
    ax.plot([0, 1], [0, 1], color="0.6", lw=1, ls="--", label="perfect calibration")
    ax.errorbar(
        t["predicted"],
        t["observed"],
        yerr=[t["observed"] - t["low"], t["high"] - t["observed"]],
        fmt="o",
        color="C0",
        capsize=2,
        label="bins (observed ± 95%)",
    )
    ax.set_xlabel("mean predicted probability")
    ax.set_ylabel("observed proportion")
    ax.set_title("Calibration (posterior mean)")
    ax.legend(frameon=False, loc="upper left")
    return fig
