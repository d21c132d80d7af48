"""Stage 4b, Bayes: comparing Bayesian fits of the same observations by PSIS-LOO."""

from __future__ import annotations

from bayesmlm.exceptions import DataError, FitError

__all__ = ["compare"]


def compare(fits, ic: str = "loo"):
    """Compare Bayesian fits by PSIS-LOO (ArviZ's ``compare``).

    Parameters
    ----------
    fits : list of Fit or dict of name -> Fit
        Fits of models to the same observations; a list is named by the formulas.
    ic : str
        Information criterion; only ``"loo"`` is supported.

    Returns
    -------
    DataFrame
        ArviZ's comparison table, best model first.
    """
    import arviz as az

    if ic != "loo":
        raise ValueError("only ic='loo' is supported")
    named = fits if isinstance(fits, dict) else {f.model.spec.formula: f for f in fits}
    if len(named) < 2:
        raise ValueError("compare needs at least two fits")
    n_obs = {f.model.design.n for f in named.values()}
    if len(n_obs) != 1:
        raise DataError(
            f"the fits use different numbers of observations ({sorted(n_obs)}); refit on the same rows"
        )
    for name, f in named.items():
        if "log_likelihood" not in f.idata.children:
            raise FitError(f"fit {name!r} has no log_likelihood group; refit with log_likelihood=True")
    return az.compare({name: f.idata for name, f in named.items()})
