"""Stage 4b, Bayes: the sampler's options, checked before anything is built or compiled.

Which NUTS implementations are installed, the extra arguments a user may pass to ``pymc.sample``
(each key checked against pymc.sample's and NUTS's own, the ones ``fit`` sets itself refused), and the
parameterisation request of a model. PyMC is imported only to read its signatures, when needed.
"""

from __future__ import annotations

from collections.abc import Mapping

from bayesmlm.arguments import check_keywords, choice
from bayesmlm.exceptions import ArgumentError

__all__ = ["available_samplers", "check_parameterization_request", "checked_sampler_kwargs"]


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
            choice(f"parameterization[{label!r}]", how, allowed[1:])
    else:
        choice("parameterization", request, allowed)


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
