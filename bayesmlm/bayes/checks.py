"""Stage 4b, Bayes: sampling checks: NUTS trouble turned into plain warnings with counts and advice.

After a model has been fitted by NUTS, :func:`check_sampling` looks for the four usual signs of
trouble and describes each one in a sentence that says how bad it is and what to do about it:

* divergent transitions (the sampler could not explore part of the posterior; results may be biased),
* R-hat above a threshold (the chains disagree; they have not converged to the same distribution),
* bulk or tail effective sample size (ESS) below a threshold (estimates are noisy),
* transitions that hit the maximum tree depth (an efficiency problem, not a validity one).

:func:`warn_sampling` issues those sentences as :class:`~bayesmlm.exceptions.SamplingWarning`. Both
PyMC's own NUTS sampler (``diverging``, ``tree_depth``, ``reached_max_treedepth``) and nutpie
(``diverging``, ``depth``, ``maxdepth_reached``) are understood.
"""

from __future__ import annotations

import json
import math
import warnings
from collections.abc import Sequence

import numpy as np
import pandas as pd
import xarray as xr

from bayesmlm.bayes.diagnostics import (
    MAX_LISTED,
    SAMPLE_DIMS,
    compute_table,
    first_present,
    posterior_of,
    sample_group,
)
from bayesmlm.exceptions import SamplingWarning

__all__ = ["check_sampling", "warn_sampling"]

# Sample-stats names: PyMC's NUTS first, then nutpie's.
_DIVERGING_NAMES = ("diverging",)
_DEPTH_NAMES = ("tree_depth", "depth")
_MAX_DEPTH_FLAG_NAMES = ("reached_max_treedepth", "maxdepth_reached")
_TUNING_NAMES = ("tuning",)

_REPARAMETERIZE = "parameterization='noncentered'/'centered'"
# a collapsed fit samples no group effects, so the way to another parameterisation is the full model
_REPARAMETERIZE_COLLAPSED = "method='full' with parameterization='noncentered'/'centered'"


# ---------------------------------------------------------------------------------------------------------
# Checks
# ---------------------------------------------------------------------------------------------------------


def _plural(n: int, word: str, plural: str | None = None) -> str:
    return f"{n} {word if n == 1 else (plural or word + 's')}"


def _post_warmup_mask(sample_stats: xr.Dataset, like: xr.DataArray) -> np.ndarray:
    """Flag the post-warm-up transitions (nutpie marks warm-up with ``tuning``; PyMC drops it)."""
    tuning = first_present(sample_stats, _TUNING_NAMES)
    if tuning is None or tuning.dims != like.dims:
        return np.ones(like.shape, dtype=bool)
    return ~_as_flags(tuning)


def _as_flags(da: xr.DataArray) -> np.ndarray:
    return np.nan_to_num(np.asarray(da.values, dtype=float)) != 0


def _check_divergences(sample_stats: xr.Dataset | None) -> str | None:
    diverging = first_present(sample_stats, _DIVERGING_NAMES)
    if diverging is None or any(d not in diverging.dims for d in SAMPLE_DIMS):
        return None
    diverging = diverging.transpose(*SAMPLE_DIMS, ...)
    keep = _post_warmup_mask(sample_stats, diverging)
    flags = _as_flags(diverging) & keep
    n_div = int(flags.sum())
    if n_div == 0:
        return None
    total = int(keep.sum())
    n_chains = int((flags.reshape(flags.shape[0], -1).sum(axis=1) > 0).sum())
    return (
        f"{n_div} of {total} post-warm-up transitions diverged ({_plural(n_chains, 'chain')} affected). "
        "Divergences mean the sampler could not explore part of the posterior and the results may be "
        "biased: raise target_accept (e.g. fit(target_accept=0.95)), simplify the random-effects "
        f"structure, or try the other parameterisation ({_REPARAMETERIZE})."
    )


def _settings_maxdepth(sample_stats: xr.Dataset) -> int | None:
    """Return the maximum tree depth nutpie records in its settings attribute, if any."""
    raw = sample_stats.attrs.get("inference_library_settings")
    if not isinstance(raw, str):
        return None
    try:
        value = json.loads(raw).get("settings", {}).get("maxdepth")
    except (ValueError, AttributeError):
        return None
    return int(value) if isinstance(value, int | float) else None


def _check_treedepth(sample_stats: xr.Dataset | None) -> str | None:
    if sample_stats is None:
        return None
    flag = first_present(sample_stats, _MAX_DEPTH_FLAG_NAMES)
    depth = first_present(sample_stats, _DEPTH_NAMES)
    max_depth = _settings_maxdepth(sample_stats)
    if flag is not None and all(d in flag.dims for d in SAMPLE_DIMS):
        flag = flag.transpose(*SAMPLE_DIMS, ...)
        keep = _post_warmup_mask(sample_stats, flag)
        hits = _as_flags(flag) & keep
        if depth is not None and set(depth.dims) == set(flag.dims) and hits.any() and max_depth is None:
            max_depth = int(np.nanmax(np.asarray(depth.transpose(*flag.dims).values, dtype=float)[hits]))
    elif depth is not None and max_depth is not None and all(d in depth.dims for d in SAMPLE_DIMS):
        depth = depth.transpose(*SAMPLE_DIMS, ...)
        keep = _post_warmup_mask(sample_stats, depth)
        hits = (np.asarray(depth.values, dtype=float) >= max_depth) & keep
    else:
        return None
    n_hit = int(hits.sum())
    if n_hit == 0:
        return None
    total = int(keep.sum())
    depth_text = f" ({max_depth})" if max_depth is not None else ""
    example = f" (e.g. to {max_depth + 2})" if max_depth is not None else ""
    return (
        f"{n_hit} of {total} transitions hit the maximum tree depth{depth_text}. This is an efficiency "
        "warning, not a validity one: the sampler needed very long trajectories, so sampling is slow and "
        f"the draws may be autocorrelated. Raise max_treedepth{example} or reparameterise "
        f"({_REPARAMETERIZE}) so the posterior is easier to traverse."
    )


def _format_value(value: float, digits: int) -> str:
    return "nan" if not np.isfinite(value) else f"{value:.{digits}f}"


def _draws_per_chain(posterior: xr.Dataset) -> int:
    return int(posterior.sizes["draw"])


def _check_rhat(table: pd.DataFrame, posterior: xr.Dataset, rhat_max: float) -> str | None:
    checked = table[~table["constant"]]
    rhat = checked["rhat"]
    bad = rhat[(rhat > rhat_max) | rhat.isna()]
    if bad.empty:
        return None
    # Worst first: NaN (could not be computed) before the largest values.
    worst = bad.fillna(np.inf).sort_values(ascending=False).index[:MAX_LISTED]
    listed = ", ".join(f"{name} = {_format_value(rhat[name], 3)}" for name in worst)
    draws = _draws_per_chain(posterior)
    tune = posterior.attrs.get("tuning_steps")
    tune = int(tune) if isinstance(tune, int | float | np.integer) and tune > 0 else draws
    return (
        f"R-hat is above {rhat_max:g} for {len(bad)} of {_plural(len(checked), 'parameter')} "
        f"(worst: {listed}). The chains disagree, so they have not converged to the same distribution "
        f"and the estimates are not reliable yet: run more tuning and draws (e.g. fit(tune={2 * tune}, "
        f"draws={2 * draws})), check the trace plots for multimodality (chains stuck in different "
        "modes), and consider stronger priors on the variance components."
    )


def _check_ess(table: pd.DataFrame, posterior: xr.Dataset, ess_min: float) -> str | None:
    checked = table[~table["constant"]]
    lowest = checked[["ess_bulk", "ess_tail"]].min(axis=1, skipna=True)
    bad = lowest[lowest < ess_min]
    if bad.empty:
        return None
    worst = bad.sort_values().index[:MAX_LISTED]
    listed = "; ".join(
        f"{name}: bulk {_format_value(checked.at[name, 'ess_bulk'], 0)}, "
        f"tail {_format_value(checked.at[name, 'ess_tail'], 0)}"
        for name in worst
    )
    draws = _draws_per_chain(posterior)
    # ESS grows roughly in proportion to the number of draws; round the suggestion up to hundreds.
    worst_ess = max(float(bad.min()), 1.0)
    needed = max(100 * math.ceil(draws * ess_min / worst_ess / 100), draws + 100)
    if needed <= 10 * draws:
        remedy = (
            f"draw more samples (at the current efficiency about {needed} draws per chain, "
            f"e.g. fit(draws={needed})) or reparameterise ({_REPARAMETERIZE}) so consecutive draws "
            "are less correlated."
        )
    else:
        remedy = (
            f"more draws alone would take about {needed} per chain (fit(draws={needed})), so "
            f"reparameterising ({_REPARAMETERIZE}) so that consecutive draws are less correlated is "
            "likely the better remedy; if R-hat is also high, fix convergence first."
        )
    return (
        f"Effective sample size is below {ess_min:g} for {len(bad)} of "
        f"{_plural(len(checked), 'parameter')} (worst: {listed}). Posterior means and intervals of "
        f"these parameters are estimated from too little independent information: {remedy}"
    )


def check_sampling(
    idata: xr.DataTree | xr.Dataset,
    var_names: str | Sequence[str] | None = None,
    rhat_max: float = 1.01,
    ess_min: float = 400,
    collapsed: bool = False,
) -> list[str]:
    """Find sampling problems and describe each in a sentence with counts and advice.

    The checks, in the order of the returned sentences:

    1. divergent transitions (``diverging`` in ``sample_stats``; any is a problem),
    2. R-hat above ``rhat_max`` (the worst five parameters are named, with their values),
    3. bulk or tail ESS below ``ess_min`` (the worst five, with both values),
    4. transitions that hit the maximum tree depth (PyMC: ``reached_max_treedepth`` and
       ``tree_depth``; nutpie: ``maxdepth_reached`` and ``depth``).

    Parameters whose draws are constant (deterministic copies, a correlation matrix's diagonal)
    are skipped by the R-hat and ESS checks. Without a ``sample_stats`` group only R-hat and ESS
    are checked.

    Parameters
    ----------
    idata : xarray.DataTree
        The result of ``pymc.sample`` (PyMC 6, PyMC's NUTS or nutpie).
    var_names : str or sequence of str, optional
        Posterior variables for the R-hat and ESS checks (default: all numeric ones). The
        divergence and tree-depth checks always concern the whole sampler run.
    rhat_max : float, default 1.01
        Largest acceptable R-hat.
    ess_min : float, default 400
        Smallest acceptable bulk and tail effective sample size (100 per chain for 4 chains).
    collapsed : bool, default False
        The run was a collapsed fit (``fit.info["method"] == "collapsed"``), which has no
        parameterisation to switch: the advice points to ``method='full'`` instead.

    Returns
    -------
    list of str
        One sentence per problem found; empty if sampling looks healthy.

    See Also
    --------
    warn_sampling : Issue these sentences as :class:`~bayesmlm.exceptions.SamplingWarning`.
    diagnostics_table : The per-parameter numbers.

    Examples
    --------
    Four well-mixed chains, except that seven transitions diverged:

    >>> import arviz as az
    >>> import numpy as np
    >>> from bayesmlm.bayes.checks import check_sampling
    >>> rng = np.random.default_rng(1)
    >>> diverging = np.zeros((4, 500), dtype=bool)
    >>> diverging[0, :5] = diverging[2, :2] = True
    >>> idata = az.from_dict(
    ...     {"posterior": {"mu": rng.normal(size=(4, 500))}, "sample_stats": {"diverging": diverging}}
    ... )
    >>> problems = check_sampling(idata)
    >>> len(problems)
    1
    >>> print(problems[0])  # doctest: +ELLIPSIS
    7 of 2000 post-warm-up transitions diverged (2 chains affected). Divergences mean ...
    """
    posterior = posterior_of(idata)
    sample_stats = sample_group(idata, "sample_stats")
    table = compute_table(idata, var_names)
    found = [
        _check_divergences(sample_stats),
        _check_rhat(table, posterior, rhat_max),
        _check_ess(table, posterior, ess_min),
        _check_treedepth(sample_stats),
    ]
    messages = [msg for msg in found if msg is not None]
    if collapsed:
        messages = [msg.replace(_REPARAMETERIZE, _REPARAMETERIZE_COLLAPSED) for msg in messages]
    return messages


def warn_sampling(
    idata: xr.DataTree | xr.Dataset,
    var_names: str | Sequence[str] | None = None,
    rhat_max: float = 1.01,
    ess_min: float = 400,
    stacklevel: int = 2,
    collapsed: bool = False,
) -> list[str]:
    """Issue each problem found by :func:`check_sampling` as a :class:`SamplingWarning`.

    Parameters
    ----------
    idata : xarray.DataTree
        The result of ``pymc.sample`` (PyMC 6).
    var_names, rhat_max, ess_min, collapsed
        Passed to :func:`check_sampling`.
    stacklevel : int, default 2
        Passed to :func:`warnings.warn`; 2 attributes the warnings to the caller of this function.
        A function that calls this one on behalf of the user should pass 3.

    Returns
    -------
    list of str
        The messages warned about (empty if none).

    Examples
    --------
    >>> import warnings
    >>> import arviz as az
    >>> import numpy as np
    >>> from bayesmlm.bayes.checks import warn_sampling
    >>> from bayesmlm.exceptions import SamplingWarning
    >>> rng = np.random.default_rng(2)
    >>> stuck = rng.normal(size=(4, 500)) + np.array([[0.0], [0.0], [0.0], [3.0]])  # chain 4 elsewhere
    >>> idata = az.from_dict({"posterior": {"mu": stuck}})
    >>> with warnings.catch_warnings(record=True) as caught:
    ...     warnings.simplefilter("always")
    ...     messages = warn_sampling(idata)
    >>> [w.category.__name__ for w in caught]
    ['SamplingWarning', 'SamplingWarning']
    >>> [m.split(" for ")[0] for m in messages]
    ['R-hat is above 1.01', 'Effective sample size is below 400']
    """
    messages = check_sampling(
        idata, var_names=var_names, rhat_max=rhat_max, ess_min=ess_min, collapsed=collapsed
    )
    for msg in messages:
        warnings.warn(msg, SamplingWarning, stacklevel=stacklevel)
    return messages
