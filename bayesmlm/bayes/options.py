"""Stage 4b, Bayes: the sampler's options, checked before anything is built or compiled.

Which NUTS implementations are installed, the extra arguments a user may pass to ``pymc.sample``
(each key checked against pymc.sample's and NUTS's own, the ones ``fit`` sets itself refused), and the
parameterisation request of a model. PyMC is imported only to read its signatures, when needed.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Mapping

from bayesmlm.arguments import check_keywords, checked, choice, count, probability
from bayesmlm.exceptions import ArgumentError, PriorError

__all__ = [
    "available_samplers",
    "check_parameterization_request",
    "checked_sampler_kwargs",
]


#: arguments of pymc.sample that fit() sets itself: given in sampler_kwargs they would contradict it
_OWN_SAMPLER_ARGUMENTS = {
    "draws": "draws",
    "tune": "tune",
    "chains": "chains",
    "cores": "cores",
    "random_seed": "seed",
    "progressbar": "progressbar",
    "target_accept": "target_accept",
    "nuts_sampler": "sampler",
    "idata_kwargs": None,
    "compute_convergence_checks": None,
    "compile_kwargs": None,
    "return_inferencedata": None,
}


def checked_sampler_kwargs(sampler_kwargs: dict | None, sampler: str) -> dict:
    """Check the extra sampler arguments: a dict of keys that pymc.sample or its NUTS takes."""
    if sampler_kwargs is None:
        return {}
    if not isinstance(sampler_kwargs, dict):
        raise ArgumentError(f"sampler_kwargs must be a dict, not {type(sampler_kwargs).__name__}")
    for key in sampler_kwargs:
        if key in _OWN_SAMPLER_ARGUMENTS:
            own = _OWN_SAMPLER_ARGUMENTS[key]
            raise ArgumentError(
                f"sampler_kwargs[{key!r}]: "
                + (f"use fit({own}=...) instead" if own else "bayesmlm sets this itself")
            )
    if sampler == "pymc":
        import inspect

        import pymc as pm
        from pymc.step_methods.hmc.base_hmc import BaseHMC

        allowed = set(inspect.signature(pm.sample).parameters) | set(inspect.signature(pm.NUTS).parameters)
        allowed |= set(inspect.signature(BaseHMC).parameters)
        allowed -= {"kwargs", "vars", "model", "self"}
        unknown = [k for k in sampler_kwargs if k not in allowed]
        if unknown:
            check_keywords("sampler_kwargs of pymc.sample", unknown, allowed)
    return dict(sampler_kwargs)


def check_parameterization_request(request) -> None:
    """Refuse an unknown parameterisation at once (the block labels are checked when it is used)."""
    allowed = ("auto", "centered", "noncentered")
    if isinstance(request, Mapping):
        for label, how in request.items():
            choice(f"parameterization[{label!r}]", how, (*allowed[1:], "mixed", "integrated"))
    else:
        choice("parameterization", request, allowed)


def check_priors_request(priors) -> None:
    """Refuse priors that are not a mapping (``priors="sigma"``) before anything else is read."""
    if priors is not None and not isinstance(priors, Mapping):
        raise PriorError(
            f"priors must be a dict of name or class -> prior, such as {{'sigma': bm.HalfNormal(10)}}, "
            f"not {type(priors).__name__} {priors!r}"
        )


def checked_fit_options(sampler, draws, tune, chains, cores, seed, target_accept, method, sampler_kwargs):
    """Check and normalise the arguments of :meth:`bayesmlm.Model.fit` (see there); ``cores`` defaults.

    Returns ``(sampler, draws, tune, chains, cores, seed, target_accept, sampler_kwargs)``.
    """
    sampler = sampler or ("pymc" if sampler_kwargs else "auto")
    if sampler != "auto" and sampler not in available_samplers():
        raise ArgumentError(f"sampler {sampler!r} is not available here; choose from {available_samplers()}")
    draws, tune, chains = count("draws", draws), count("tune", tune, minimum=0), count("chains", chains)
    cores = min(chains, os.cpu_count() or 1) if cores is None else count("cores", cores)
    if seed is not None:
        seed = count("seed", seed, minimum=0)
    target_accept = probability("target_accept", target_accept)
    choice("method", method, ("auto", "collapsed", "full"))
    sampler_kwargs = checked_sampler_kwargs(sampler_kwargs, sampler)
    return sampler, draws, tune, chains, cores, seed, target_accept, sampler_kwargs


def pilot_estimate(model) -> tuple:
    """Return the REML (GLMM: Laplace) theta and IRLS weights a ``Model``'s parameterisation is chosen from.

    ``(None, None)`` if that fit fails or does not converge: the choice then falls back to non-centred
    (sampling itself never depends on the pilot fit).
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fit = model.fit_ml() if model.family.generalized else model.fit_reml()
    except Exception:
        return None, None
    if not fit.converged:
        return None, None
    return fit.theta, (fit.working_weights if model.family.generalized else None)


@checked
def available_samplers() -> list[str]:
    """NUTS implementations that can be used here (``"pymc"`` always; ``"nutpie"`` when installed)."""
    out = ["pymc"]
    try:
        import nutpie  # noqa: F401
    except ImportError:
        pass
    else:
        out.append("nutpie")
    return out
