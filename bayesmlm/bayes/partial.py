"""Stage 4b, Bayes: the partially collapsed sampler: nutpie on :class:`PartialDensity`, then the draws.

For a Gaussian model whose other factors have too many effects for the collapsed path's dense block,
nutpie's NUTS runs on the posterior with the largest factor integrated out
(:class:`~bayesmlm.bayes.partial_density.PartialDensity`); the other factors' effects are sampled. The
largest factor's effects are then drawn from their exact Gaussian conditional given each draw
(:func:`~bayesmlm.bayes.partial_kernel.partial_conditional`). The result has the full model's variables
(``fixed``, ``fixed_centered``, ``sd_<group>``, ``sd__<label>``, ``cor_<label>``, ``r_<group>``,
``sigma``), so everything downstream is unchanged.
"""

from __future__ import annotations

import numpy as np

from bayesmlm.bayes.collapsed_stats import intercept_for_stats
from bayesmlm.bayes.conditional import group_effects_dtype, theta_draws
from bayesmlm.bayes.direct import posterior_dataset
from bayesmlm.bayes.nutpie_run import prior_start, run_nutpie
from bayesmlm.bayes.options import available_samplers
from bayesmlm.bayes.partial_density import PartialDensity, partial_plan
from bayesmlm.bayes.partial_kernel import partial_conditional
from bayesmlm.bayes.posterior import stacked_draws
from bayesmlm.bayes.prior_set import PriorSet
from bayesmlm.design.covariance import RandomStructure
from bayesmlm.design.evaluate import Design
from bayesmlm.families.gaussian import pointwise_loglik

__all__ = ["partial_available", "sample_partial"]

#: draws × levels drawn at once for the integrated-out factor (bounds the noise array's memory)
_CHUNK = 2_000_000


def partial_available(design: Design, structure: RandomStructure, priors: PriorSet) -> tuple[bool, str]:
    """Whether the partially collapsed sampler can run this model here, and why not if it cannot."""
    ok, why = partial_plan(design, structure, priors)
    if not ok:
        return False, why
    if "nutpie" not in available_samplers():
        return False, "nutpie is not installed (pip install 'bayesmlm[nutpie]')"
    return True, f"nutpie's NUTS on the density written out with {why} (nothing compiled per model)"


def sample_partial(
    design: Design,
    structure: RandomStructure,
    priors: PriorSet,
    parameterization: dict,
    *,
    draws: int,
    tune: int,
    chains: int,
    cores: int,
    seed: int | None,
    target_accept: float,
    progressbar: bool,
    log_likelihood: bool,
):
    """Sample with the largest factor integrated out; return the ``DataTree`` with every group effect."""
    import xarray as xr

    density = PartialDensity(design, structure, priors, parameterization)
    run = dict(draws=draws, tune=tune, chains=chains, cores=cores, seed=seed, target_accept=target_accept)
    x, post, sample_stats = run_nutpie(
        density,
        density.ndim,
        prior_start(density.ndim, density.fixed_names, priors),
        progressbar=progressbar,
        **run,
    )
    n_chain, n_draw = x.shape[:2]
    xs = x.reshape(n_chain * n_draw, density.ndim)
    collapsed = density.collapsed
    values = collapsed.constrained(xs[:, density.sub_index])
    posterior = posterior_dataset(values, design, density.first, collapsed, n_chain, n_draw, post)
    sampled = density.sampled_effects(xs)
    coords = {"chain": post["chain"].values, "draw": post["draw"].values}
    new = {}
    for f in structure.factors[1:]:
        new[f"sd_{f.group}"] = xr.DataArray(
            sampled[f"sd_{f.group}"].reshape(n_chain, n_draw, f.q),
            dims=("chain", "draw", f"{f.group}_term"),
            coords={**coords, f"{f.group}_term": list(f.term_names)},
        )
        for t in density.terms:
            if t.group == f.group:
                new[f"sd__{t.label}"] = xr.DataArray(
                    sampled[f"sd__{t.label}"].reshape(n_chain, n_draw), dims=("chain", "draw"), coords=coords
                )
    effects = [_first_factor_effects(density, posterior, sampled, design, seed, len(xs))]
    effects += [sampled[f"r_{f.group}"] for f in structure.factors[1:]]
    for f, b in zip(structure.factors, effects, strict=True):
        new[f"r_{f.group}"] = xr.DataArray(
            b.reshape(n_chain, n_draw, f.n_levels, f.q),
            dims=("chain", "draw", f.group, f"{f.group}_term"),
            coords={**coords, f.group: list(f.levels), f"{f.group}_term": list(f.term_names)},
        )
    posterior = posterior.assign(new)
    tree = {"posterior": posterior, "sample_stats": sample_stats}
    y = np.asarray(design.y)
    obs = {"obs": np.arange(design.n)}
    tree["observed_data"] = xr.Dataset({"y": xr.DataArray(y, dims="obs", coords=obs)})
    if log_likelihood:
        sigma = stacked_draws(posterior, "sigma")
        ll = pointwise_loglik(design, structure, stacked_draws(posterior, "fixed"), effects, sigma)
        tree["log_likelihood"] = xr.Dataset(
            {"y": xr.DataArray(ll.reshape(n_chain, n_draw, design.n), dims=("chain", "draw", "obs"),
                               coords={**coords, **obs})}
        )  # fmt: skip
    return xr.DataTree.from_dict(tree)


def _first_factor_effects(density: PartialDensity, posterior, sampled, design, seed, S: int) -> np.ndarray:
    """Draw the integrated-out factor's effects (S, m, q) given each draw's other effects."""
    f = density.first.factors[0]
    stats = density.stats
    sigma = stacked_draws(posterior, "sigma")
    theta = theta_draws(posterior, density.first)
    lam = np.zeros((S, f.q, f.q))
    rows, cols = f.lower_index
    lam[:, rows, cols] = theta
    sampled_name = "fixed_centered" if "fixed_centered" in posterior else "fixed"
    beta = np.ascontiguousarray(intercept_for_stats(stacked_draws(posterior, sampled_name), design, stats))
    terms = density.terms
    width = max(t.levels for t in terms)
    r = np.zeros((S, len(terms), width))
    for k, t in enumerate(terms):
        other = density.structure.factor(t.group)
        r[:, k, : t.levels] = sampled[f"r_{t.group}"][:, :, other.term_names.index(t.term)]
    other = density.other
    rng = np.random.default_rng(None if seed is None else [int(seed), 5])
    out = np.empty((S, f.n_levels, f.q))
    step = max(1, _CHUNK // max(f.n_levels * f.q, 1))
    f64 = np.float64
    ztz, ztx, zty = (np.ascontiguousarray(a, f64) for a in (stats.ztz1, stats.ztx1, stats.zty1))
    for start in range(0, S, step):
        s = slice(start, min(S, start + step))
        eps = rng.standard_normal((s.stop - s.start, f.n_levels, f.q))
        chunk = np.empty(eps.shape)
        partial_conditional(
            ztz, ztx, zty, lam[s], beta[s], np.ascontiguousarray(sigma[s]), eps, r[s], other.start,
            density.o_levels, other.a_indptr, other.a_indices, other.a_data, chunk,
        )  # fmt: skip
        out[s] = chunk
    return out.astype(group_effects_dtype(density.structure, S), copy=False)
