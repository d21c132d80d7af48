"""Stage 4b, Bayes: PSIS-LOO of a fit, and comparing Bayesian fits of the same observations by it.

ArviZ's own warnings (a raw ``UserWarning`` about "the shape parameter of the Pareto distribution")
are replaced by one :class:`~bayesmlm.SamplingWarning` that says how many observations are affected
and what to do; :func:`compare` reports the same unrounded numbers as :meth:`~bayesmlm.Fit.loo`.
"""

from __future__ import annotations

import warnings

import numpy as np

from bayesmlm.arguments import checked, choice
from bayesmlm.exceptions import ArgumentError, DataError, FitError, SamplingWarning

__all__ = ["compare", "loo"]


def loo(fit, name: str | None = None, stacklevel: int = 3):
    """PSIS-LOO of a Bayesian fit (ArviZ's ``loo``), with ArviZ's warnings said once, plainly."""
    import arviz as az

    if not hasattr(fit, "idata"):
        raise FitError(
            f"{type(fit).__name__} is not a Bayesian fit: PSIS-LOO needs posterior draws; compare REML/ML "
            "fits of nested models with bm.lrt(smaller, larger), or by their aic/bic"
        )
    if "log_likelihood" not in fit.idata.children:
        raise FitError(
            f"fit {name or ''!s} has no log_likelihood group; refit with log_likelihood=True".replace(
                "  ", " "
            )
        )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # ArviZ's; said below in bayesmlm's words
        result = az.loo(fit.idata)
    k = np.asarray(result.pareto_k).reshape(-1)
    bad = int(np.sum(k > result.good_k))
    if bad:
        worst = np.argsort(k)[::-1][: min(bad, 5)]
        limit = f"the reliable limit for {result.n_samples} draws; largest {k.max():.2f}"
        warnings.warn(
            f"PSIS-LOO{' of ' + name if name else ''}: the Pareto k of {bad} of {k.size} observations "
            f"exceeds {result.good_k:.2f} ({limit}, observations {worst.tolist()}): their leave-one-out "
            "densities are unreliable and elpd may be too optimistic. More draws lower the limit; for "
            "influential observations use K-fold cross-validation or a more robust model",
            SamplingWarning,
            stacklevel=stacklevel,
        )
    return result


def _label(fit) -> str:
    model = getattr(fit, "model", None)
    return (
        model.spec.formula
        if model is not None
        else getattr(getattr(fit, "design", None), "spec", fit).formula
    )


@checked
def compare(fits, ic: str = "loo"):
    """Compare Bayesian fits by PSIS-LOO (ArviZ's ``compare``), unrounded.

    Parameters
    ----------
    fits : list of Fit or dict of name -> Fit
        Bayesian fits of models to the same observations; a list is named by the formulas.
    ic : str
        Information criterion; only ``"loo"`` is supported.

    Returns
    -------
    DataFrame
        ArviZ's comparison table, best model first; ``elpd``, ``se`` and ``p`` are those of
        :meth:`bayesmlm.Fit.loo` (not rounded).

    Raises
    ------
    FitError
        For a REML/ML fit (compare those with ``bm.lrt``) or a fit without a pointwise log-likelihood.
    """
    import arviz as az

    choice("ic", ic, ("loo",))
    items = list(fits.items()) if isinstance(fits, dict) else [(None, f) for f in fits]
    for name, f in items:
        if not hasattr(f, "idata"):
            raise FitError(
                f"fit {name or _label(f)!r} is a {type(f).__name__}, not a Bayesian fit: compare REML/ML "
                "fits of nested models with bm.lrt(smaller, larger), or by their aic/bic"
            )
    named = dict(items) if isinstance(fits, dict) else {f.model.spec.formula: f for _, f in items}
    if len(named) < 2:
        raise ArgumentError(
            f"compare needs at least two fits of different models, got {len(named)}"
            + (
                ""
                if isinstance(fits, dict)
                else "; to compare fits of one formula, pass a dict of name -> fit"
            )
        )
    n_obs = {f.model.design.n for f in named.values()}
    if len(n_obs) != 1:
        raise DataError(
            f"the fits use different numbers of observations ({sorted(n_obs)}); refit on the same rows"
        )
    results = {name: loo(f, name=repr(name), stacklevel=3) for name, f in named.items()}
    return az.compare(results, round_to="none")
