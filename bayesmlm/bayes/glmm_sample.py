"""Stage 4b, Bayes: sampling a generalized mixed model: the PyMC model, NUTS, the pointwise log-likelihood.

The body of :meth:`bayesmlm.Model.fit` for a binomial, Poisson or negative binomial model. The model
(:func:`~bayesmlm.bayes.glmm_model.build_glmm_model`) is sampled by nutpie on its density written out
where :func:`~bayesmlm.bayes.glmm_density.glmm_plan` allows (:mod:`bayesmlm.bayes.glmm_direct`: no
PyMC, nothing compiled per model), else by PyMC's (or nutpie's) NUTS with PyTensor's numba-compiled
functions and without fast-math (seeded fits reproduce exactly, as for the Gaussian
models). Nothing is rescaled: the link scale has no units. The pointwise log-likelihood for PSIS-LOO
is computed afterwards in numpy from the draws (the family's log-density, times any prior weight),
which also covers weighted models, whose likelihood is a ``pm.Potential``. A Ctrl-C makes no fit.
"""

from __future__ import annotations

import time

import numpy as np
import xarray as xr

from bayesmlm._version import package_versions
from bayesmlm.bayes.checks import warn_sampling
from bayesmlm.bayes.glmm_fit import GeneralizedFit
from bayesmlm.bayes.options import available_samplers
from bayesmlm.bayes.predict import mean_draws
from bayesmlm.exceptions import FitError

__all__ = ["direct_glmm_choice", "pointwise_loglik", "sample_generalized"]


def pointwise_loglik(fit: GeneralizedFit) -> xr.DataTree:
    """Compute each observation's log-likelihood under each draw, (chain, draw, obs), as ArviZ stores it."""
    post = fit.posterior
    eta = mean_draws(post, fit.design, fit.structure, None, True, "population", None)
    if fit.design.offset is not None:
        eta = eta + np.asarray(fit.design.offset)
    family = fit.family
    shape = fit._dispersion_draws()
    values = family.loglik_rows(
        family.glm_data(fit.design), family.link.linkinv(eta), None if shape is None else shape[:, None]
    )
    chains, draws = post.sizes["chain"], post.sizes["draw"]
    da = xr.DataArray(values.reshape(chains, draws, -1), dims=("chain", "draw", "obs"), name="y")
    return xr.DataTree(xr.Dataset({"y": da}, coords={"chain": post["chain"], "draw": post["draw"]}))


def direct_glmm_choice(model, sampler: str, sampler_kwargs: dict) -> tuple[bool, str]:
    """Whether nutpie samples the written-out density (:mod:`bayesmlm.bayes.glmm_direct`), and what ran.

    ``sampler="auto"`` (the default) and ``"nutpie"`` take it when
    :func:`~bayesmlm.bayes.glmm_density.glmm_plan` can write the model and no PyMC options were given;
    otherwise the PyMC model is built and compiled.
    """
    pymc_model = "PyMC model (compiled by PyTensor)"
    if sampler not in ("auto", "nutpie") or sampler_kwargs:
        return False, f"{pymc_model}, as sampler= or sampler_kwargs= asked"
    from bayesmlm.bayes.glmm_density import glmm_plan

    ok, why = glmm_plan(model.design, model.structure, model.family, model.prior_set, model.parameterization)
    if ok and "nutpie" not in available_samplers():
        ok, why = False, "nutpie is not installed (pip install 'bayesmlm[nutpie]')"
    if not ok:
        return False, f"{pymc_model}: the written-out density does not apply: {why}"
    return True, "nutpie's NUTS on the log density written out (nothing compiled per model)"


def sample_generalized(
    model,
    method: str,
    *,
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
    stacklevel: int = 2,
) -> GeneralizedFit:
    """Sample a generalized model's posterior with NUTS; return the :class:`GeneralizedFit`.

    ``method`` must be ``"auto"`` or ``"full"``: the collapsed path needs a Gaussian response.
    """
    if method == "collapsed":
        raise FitError(
            f"the collapsed path integrates the group effects out exactly, which only a Gaussian response "
            f"allows; a {model.family.name} model samples them (use method='auto' or 'full')"
        )
    start = time.perf_counter()
    run = dict(draws=draws, tune=tune, chains=chains, cores=cores, seed=seed, target_accept=target_accept)
    direct, density = direct_glmm_choice(model, sampler, sampler_kwargs)
    if direct:
        from bayesmlm.bayes.glmm_direct import sample_glmm_direct

        idata = sample_glmm_direct(model, progressbar=progressbar, **run)
        sampler = "nutpie"
    else:
        from bayesmlm.bayes.sample import run_nuts

        sampler = "pymc" if sampler == "auto" else sampler
        idata = run_nuts(
            model.build(), sampler=sampler, progressbar=progressbar, sampler_kwargs=sampler_kwargs, **run
        )
    sampling_seconds = time.perf_counter() - start
    observed = np.asarray(model.family.glm_data(model.design).observed)
    idata["observed_data"] = xr.DataTree(xr.Dataset({"y": (("obs",), observed)}))
    info = {
        "method": "full",
        "method_reason": f"a {model.family.name} response: the group effects are sampled",
        "family": model.family.name,
        "link": model.family.link.name,
        "algorithm": "NUTS",
        "sampler": sampler,
        "density": density,
        "draws": draws,
        "tune": tune,
        "chains": chains,
        "cores": cores,
        "seed": seed,
        "target_accept": target_accept,
        "parameterization": dict(model.parameterization),
        "priors": {name: str(model.prior_set[name]) for name in model.prior_set.names},
        "response_scale": 1.0,
        "sampler_kwargs": {k: repr(v) for k, v in sampler_kwargs.items()},
        "n_obs": model.design.n,
        "n_dropped": model.design.n_dropped,
        "sampling_seconds": round(sampling_seconds, 3),
        "versions": package_versions(),
        "aliased": list(model.design.aliased),
    }
    fit = GeneralizedFit(model, idata, info)
    if log_likelihood:
        idata["log_likelihood"] = pointwise_loglik(fit)
    info["seconds"] = round(time.perf_counter() - start, 3)
    info["warnings"] = warn_sampling(idata, stacklevel=stacklevel + 2)
    return fit
