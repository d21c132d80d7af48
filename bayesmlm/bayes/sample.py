"""Stage 4b, Bayes: sampling: the model built (collapsed or full), NUTS run, draws put back on scale.

The body of :meth:`bayesmlm.Model.fit`. The response is divided by its sd for sampling (every prior
rescaled to match), the collapsed or the full PyMC model is built, PyMC's (or nutpie's) NUTS runs with
numba-compiled functions, a collapsed run's group effects are drawn exactly, and every draw is
multiplied back. A Ctrl-C makes no fit. The record of how it went is returned with the draws.
"""

from __future__ import annotations

import contextlib
import dataclasses
import sys
import time
import warnings
from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np
import xarray as xr

from bayesmlm._version import package_versions
from bayesmlm.arguments import checked
from bayesmlm.bayes.checks import warn_sampling
from bayesmlm.bayes.collapsed_stats import (
    Standardised,
    centred_cross_products,
    choose_method,
    collapsed_plan,
    predictor_shift,
)
from bayesmlm.bayes.conditional import add_group_effects
from bayesmlm.bayes.group_draws import effects_seed as group_effects_seed
from bayesmlm.bayes.options import available_samplers
from bayesmlm.bayes.prior_set import PriorSet
from bayesmlm.bayes.workers import bound_context, worker_failures
from bayesmlm.design.covariance import RandomStructure
from bayesmlm.design.evaluate import Design
from bayesmlm.design.moments import ColumnMoments, response_moments

if TYPE_CHECKING:  # PyMC is imported when a PyMC model is sampled (a direct fit never loads it)
    import pymc as pm

    from bayesmlm.bayes.pymc_model import Parameterization

__all__ = [
    "Standardised",
    "available_samplers",
    "choose_method",
    "direct_choice",
    "response_scale",
    "run_nuts",
    "sample_posterior",
    "sampling_flags",
    "standardise",
]


def sampling_flags():
    """PyTensor settings for everything compiled to sample: numba, without fast-math.

    Numba (rather than PyTensor's C backend) is faster here and needs no BLAS. Fast-math is off
    because with it a seeded fit gave different draws the first time its functions were compiled
    than when they came from the cache (sleepstudy, seed 5: posterior mean of the fixed effects
    130.8473 vs 130.8974); without it every run is identical. It costs time: the collapsed
    likelihood's gradient on 10,000 groups takes 0.96 ms instead of 0.67 ms.
    """
    import pytensor

    return pytensor.config.change_flags(mode="NUMBA", numba__fastmath=False)


#: posterior variables without the response's units (all others are rescaled after sampling)
UNITLESS_PREFIXES = ("cor_", "z__")
#: posterior variables in the response's units: fixed effects, sds, group effects, sigma
SCALED_PREFIXES = ("fixed", "sd_", "r_", "c__", "chol__", "sigma")


def response_scale(y: np.ndarray) -> float:
    """Return the factor the response is divided by for sampling: its standard deviation.

    NUTS starts from a unit mass matrix and jitters the start by ±1, so it adapts fastest when the
    parameters are of order one. With the response in units of its sd (and every prior rescaled to
    match, see :meth:`~bayesmlm.bayes.prior_set.PriorSet.scaled`) the posterior is the same
    distribution and the sampler sees the same problem whether the data are in grams or tonnes.
    Measured on sleepstudy ``(Days | Subject)``, collapsed, before this existed: minimum bulk ESS
    3,048 at the original scale, 796 with the response times 1e6, and 5.3 times the sampling time with
    it times 1e-6.
    """
    return float(np.std(y, ddof=1))


def rescale_idata(idata, factor: float, y: np.ndarray) -> None:
    """Put the draws of a fit to ``y / factor`` back on the response's scale, in place.

    Posterior variables in the response's units are multiplied by ``factor``; the observed response
    is replaced by ``y`` itself (not ``y / factor * factor``, which differs by rounding); the pointwise
    log-likelihood gains the Jacobian ``-log(factor)``. ``sample_stats`` (``lp``, ``energy``) are left on
    the sampler's scale: they differ by a constant, which no diagnostic depends on.
    """
    observed = idata["observed_data"].to_dataset() if "observed_data" in idata.children else {}
    if "y" in observed:  # a design without rows has no observed response
        idata["observed_data"] = xr.DataTree(observed.assign(y=observed["y"].copy(data=np.asarray(y))))
    post = idata["posterior"].to_dataset()
    for name in post.data_vars:
        if name.startswith(UNITLESS_PREFIXES):
            continue
        if not name.startswith(SCALED_PREFIXES):
            raise AssertionError(f"posterior variable {name!r} is neither known unitless nor known scaled")
        post[name].values *= factor  # in place: r_g of 10,000 groups x 4,000 draws is 640 MB
    idata["posterior"] = xr.DataTree(post)
    if "log_likelihood" in idata.children:
        idata["log_likelihood"] = xr.DataTree(idata["log_likelihood"].to_dataset() - np.log(factor))


def _raise_if_interrupted(idata, draws: int, chains: int) -> None:
    """Re-raise a KeyboardInterrupt that PyMC caught: it returns the draws made so far instead.

    PyMC then keeps the chains that got furthest, so a cut-short run can come back with full-length
    chains but fewer of them; both the draws and the chains are checked. A fit from a cut-short run
    (perhaps still tuning) would look like a fit and be wrong, so none is made. Nothing on the Model is
    changed by sampling, so it can be fitted again at once.
    """
    post = idata["posterior"] if "posterior" in idata.children else None
    done = post.sizes.get("draw", 0) if post is not None else 0
    kept = post.sizes.get("chain", 0) if post is not None else 0
    if done < draws or kept < chains:
        raise KeyboardInterrupt(_interrupted(kept, chains, done, draws))


def _interrupted(kept: int, chains: int, done: int, draws: int) -> str:
    """Say how far an interrupted run got, and that the model can be fitted again."""
    if kept == 0:
        progress = " before any draw was kept (still tuning)"
    else:
        progress = f": {kept} of {chains} chains came back, with {done} of {draws} draws each"
    return (
        f"sampling was interrupted{progress}; no fit was made, and the model is "
        "unchanged: call fit() again to sample"
    )


def standardise(design: Design, structure: RandomStructure, reduction=None) -> Standardised:
    """Divide the response by :func:`response_scale`; compute the collapsed path's statistics if used.

    A design without rows (from a Dask DataFrame) takes the scale from its moments and the statistics
    from ``reduction`` (:class:`~bayesmlm.design.summary.ReducedStatistics`).
    """
    collapsed = collapsed_plan(structure)[0]
    if reduction is None:
        scale = response_scale(design.y)
        y = np.asarray(design.y) / scale
        y.setflags(write=False)
        scaled = dataclasses.replace(design, y=y)
        stats = centred_cross_products(scaled, structure) if collapsed else None
        return Standardised(scale, scaled, stats)
    m = response_moments(design)
    scale = float(m.sd[0])
    moments = dataclasses.replace(design.moments, y=ColumnMoments(m.n, m.mean / scale, m.sd / scale))
    scaled = dataclasses.replace(design, moments=moments)
    stats = reduction.cross_products(predictor_shift(design), scale) if collapsed else None
    return Standardised(scale, scaled, stats)


def direct_choice(collapsed, sampler, sampler_kwargs, structure, priors) -> tuple[bool, str]:
    """Whether the direct sampler (:mod:`bayesmlm.bayes.direct`) runs, and the density's description.

    ``sampler="auto"`` (the default) and ``"nutpie"`` take it for a collapsed model that it can write,
    unless PyMC options were given in ``sampler_kwargs``; otherwise a PyMC model is built and compiled.
    """
    if not collapsed:
        return False, "PyMC model with every group effect (compiled by PyTensor)"
    if sampler in ("auto", "nutpie") and not sampler_kwargs:
        if len(structure.factors) > 1:
            from bayesmlm.bayes.blocked import blocked_available as direct_available
        else:
            from bayesmlm.bayes.direct import direct_available

        ok, why = direct_available(structure, priors)
        if ok:
            return True, why
        return False, f"collapsed PyMC model (compiled by PyTensor): the direct density does not apply: {why}"
    return False, "collapsed PyMC model (compiled by PyTensor), as sampler= or sampler_kwargs= asked"


def run_nuts(
    model: pm.Model,
    *,
    draws: int,
    tune: int,
    chains: int,
    cores: int,
    seed: int | None,
    sampler: str,
    target_accept: float,
    progressbar: bool,
    sampler_kwargs: dict,
    log_likelihood: bool = False,
):
    """Run NUTS on a built PyMC model, as every Bayesian fit does; return the ArviZ ``DataTree``.

    Says first that the sampler is being compiled (with a progress bar), runs PyMC's chains in worker
    processes bound to this one (:mod:`bayesmlm.bayes.workers`: a dead worker is a ``FitError``), and
    turns a Ctrl-C into a ``KeyboardInterrupt`` that says how far sampling got (no fit is made). With
    ``log_likelihood`` PyMC's pointwise log-likelihood is added.
    """
    import pymc as pm

    if progressbar:
        print(
            "bayesmlm: compiling the sampler for this model structure (once per structure: one to two "
            "minutes the first time on a machine, seconds once it is cached), then sampling",
            file=sys.stderr,
            flush=True,
        )
    kwargs = dict(
        draws=draws,
        tune=tune,
        chains=chains,
        cores=cores,
        random_seed=seed,
        progressbar=progressbar,
        nuts_sampler=sampler,
        compute_convergence_checks=False,
    )
    if sampler == "pymc":
        kwargs["target_accept"] = target_accept
        kwargs["compile_kwargs"] = {"mode": "NUMBA"}  # faster than the C backend here, and BLAS-free
    else:
        kwargs["nuts_sampler_kwargs"] = {"target_accept": target_accept}
    if cores > 1 and chains > 1 and sampler == "pymc" and "mp_ctx" not in sampler_kwargs:
        context = bound_context()
        if context is not None:
            kwargs["mp_ctx"] = context
    kwargs.update(sampler_kwargs)
    with model, warnings.catch_warnings(), sampling_flags():
        warnings.filterwarnings("ignore", message=".*[Tt]he number of samples is too small.*")
        # PyMC's initial-point function holds a Scan whose inner graph PyTensor still compiles
        # with its C backend; that one-off function needs no BLAS, so its warning is noise
        warnings.filterwarnings("ignore", message=".*could not link to a BLAS.*")
        try:
            with worker_failures(chains):
                idata = pm.sample(**kwargs)
        except ValueError as err:
            # what PyMC raises when Ctrl-C came before any chain kept a draw
            if "Not enough samples to build a trace" not in str(err):
                raise
            raise KeyboardInterrupt(_interrupted(0, chains, 0, draws)) from err
        _raise_if_interrupted(idata, draws, chains)
        if log_likelihood:
            pm.compute_log_likelihood(idata, progressbar=False)
    return idata


@checked
def sample_posterior(
    design: Design,
    structure: RandomStructure,
    prior_set: PriorSet,
    parameterization: dict[str, Parameterization] | None,
    standardised: Standardised,
    *,
    collapsed: bool,
    reason: str,
    draws: int,
    tune: int,
    chains: int,
    cores: int,
    seed: int | None,
    sampler: str,
    target_accept: float,
    progressbar: bool,
    log_likelihood: bool,
    sampler_kwargs: dict,
    partial_chooser: Callable[[], dict] | None = None,
    group_effects: tuple[str, str] = ("store", "asked for"),
    stacklevel: int = 2,
):
    """Sample the posterior with NUTS; return the ArviZ ``DataTree`` and the record of how it went.

    ``parameterization`` (per block, for the full model) is ignored on the collapsed path. With
    ``partial_chooser`` (the cost model allows it) a model that is not collapsed may be sampled with only
    its largest factor integrated out (:mod:`bayesmlm.bayes.partial`), with the parameterisation
    ``partial_chooser()`` returns (:func:`~bayesmlm.bayes.partial_centring.partial_chooser`).
    ``group_effects`` (mode, reason) says whether a collapsed run stores its group effects
    (:mod:`bayesmlm.bayes.group_draws`, drawn from ``info["group_effects_seed"]``). Sampling warnings are
    issued with ``stacklevel`` counted from the caller of this function.
    """
    if log_likelihood:
        design.require_rows("log_likelihood=True (the pointwise log-likelihood, for LOO)")
    start = time.perf_counter()
    scale, sampled, stats = standardised.scale, standardised.design, standardised.stats
    priors = prior_set.scaled(scale)
    run = dict(draws=draws, tune=tune, chains=chains, cores=cores, seed=seed, target_accept=target_accept)
    run |= dict(progressbar=progressbar)
    direct, density = direct_choice(collapsed, sampler, sampler_kwargs, structure, priors)
    partial = False
    if partial_chooser is not None and not collapsed and sampler in ("auto", "nutpie") and not sampler_kwargs:
        from bayesmlm.bayes.partial import partial_available

        partial, why = partial_available(sampled, structure, priors)
        density = why if partial else f"{density}: the partially collapsed density does not apply: {why}"
    if partial:
        from bayesmlm.bayes.partial import sample_partial

        parameterization = partial_chooser()
        idata = sample_partial(
            sampled, structure, priors, parameterization, log_likelihood=log_likelihood, **run
        )
        sampler = "nutpie"
    elif direct and len(structure.factors) > 1:  # every factor integrated out, effects drawn after
        from bayesmlm.bayes.blocked import sample_blocked

        idata = sample_blocked(sampled, structure, priors, stats, log_likelihood=log_likelihood, **run)
        sampler = "nutpie"
    elif direct:
        from bayesmlm.bayes.direct import sample_direct

        idata = sample_direct(sampled, structure, priors, stats, **run)
        sampler = "nutpie"
    else:
        sampler = "pymc" if sampler == "auto" else sampler
        if collapsed:
            from bayesmlm.bayes.collapsed import build_collapsed_model

            model = build_collapsed_model(sampled, structure, priors, stats)
        else:
            from bayesmlm.bayes.pymc_model import build_pymc_model

            model = build_pymc_model(sampled, structure, priors, parameterization)
        log_lik = log_likelihood and not collapsed
        idata = run_nuts(model, sampler=sampler, sampler_kwargs=sampler_kwargs, log_likelihood=log_lik, **run)
    sampling_seconds = time.perf_counter() - start
    rescale_idata(idata, scale, design.y)
    effects_seed = group_effects_seed(seed)
    blocked = direct and len(structure.factors) > 1  # effects drawn by sample_blocked (bayes/blocked.py)
    if collapsed and not blocked:  # one factor: numpy draws; more: the blocked PyTensor graph
        flags = sampling_flags() if len(structure.factors) > 1 else contextlib.nullcontext()
        with flags:
            store = group_effects[0] == "store"
            add_group_effects(idata, design, structure, standardised, effects_seed, log_likelihood, store)
    seconds = time.perf_counter() - start
    if partial:
        reason = f"{structure.factors[0].group} integrated out, the other factors sampled: {reason}"
    info = {
        "method": "collapsed" if collapsed else ("partially collapsed" if partial else "full"),
        "method_reason": reason,
        "algorithm": "NUTS",
        "sampler": sampler,
        "density": density,
        "draws": draws,
        "tune": tune,
        "chains": chains,
        "cores": cores,
        "seed": seed,
        "target_accept": target_accept,
        "parameterization": None if collapsed else dict(parameterization),
        "priors": {name: str(prior_set[name]) for name in prior_set.names},
        "response_scale": scale,
        "sampler_kwargs": {k: repr(v) for k, v in sampler_kwargs.items()},
        "n_obs": design.n,
        "n_dropped": design.n_dropped,
        "seconds": round(seconds, 3),
        "sampling_seconds": round(sampling_seconds, 3),
        "group_effects_seconds": round(seconds - sampling_seconds, 3),
        "group_effects": group_effects[0] if collapsed else "store",
        "group_effects_reason": group_effects[1] if collapsed else "sampled parameters (not collapsed)",
        "group_effects_seed": effects_seed,
        "versions": package_versions(),
        "aliased": list(design.aliased),
    }
    checked = None
    if partial:  # the integrated-out factor's effects are exact conditional draws, as below
        checked = [v for v in idata["posterior"].data_vars if v != f"r_{structure.factors[0].group}"]
    if collapsed:
        # the group effects are exact conditional draws given each population-level draw: their
        # mixing is that of the sampled parameters, and checking 10,000s of them took 80 s
        checked = [v for v in idata["posterior"].data_vars if not v.startswith("r_")]
    info["warnings"] = warn_sampling(idata, var_names=checked, stacklevel=stacklevel + 2, collapsed=collapsed)
    return idata, info
