"""Stage 4b, Bayes: the direct collapsed sampler for several grouping factors: nutpie, then every effect.

For a Gaussian model with two or more grouping factors (crossed, as subjects × items, or nested) and
priors of the built-in families, nutpie's NUTS runs on :class:`~bayesmlm.bayes.direct_blocked.BlockedDensity`
(every factor's effects integrated out; nothing compiled per model). Each draw's group effects of all
factors are then drawn jointly from their exact Gaussian conditional
(:func:`~bayesmlm.bayes.blocked_conditional.blocked_conditional_kernel`, the same blocked factorisation), and
the DataTree gets the full model's variables, observed data and (if asked) the pointwise
log-likelihood, so everything downstream is unchanged.
"""

from __future__ import annotations

import numpy as np

from bayesmlm.bayes.blocked_callback import blocked_c_logp, pack_blocked
from bayesmlm.bayes.collapsed_stats import intercept_for_stats
from bayesmlm.bayes.conditional import group_effects_dtype
from bayesmlm.bayes.direct import population_dataset
from bayesmlm.bayes.direct_blocked import BlockedDensity, blocked_plan
from bayesmlm.bayes.glmm_nutpie import compiled_supported, run_nutpie_compiled
from bayesmlm.bayes.nutpie_run import prior_start, run_nutpie
from bayesmlm.bayes.options import available_samplers
from bayesmlm.bayes.prior_set import PriorSet
from bayesmlm.design.covariance import RandomStructure
from bayesmlm.design.crossprod import CrossProducts
from bayesmlm.design.evaluate import Design
from bayesmlm.families.gaussian import pointwise_loglik
from bayesmlm.linalg.threads import single_threaded

__all__ = ["blocked_available", "blocked_effects", "sample_blocked"]

#: draws handled at once by :func:`blocked_effects` (bounds the noise arrays' memory)
_CHUNK_VALUES = 2_000_000


def blocked_available(structure: RandomStructure, priors: PriorSet) -> tuple[bool, str]:
    """Whether the blocked direct sampler can run this collapsed model here, and why not if it cannot."""
    ok, why = blocked_plan(structure, priors)
    if not ok:
        return False, why
    if "nutpie" not in available_samplers():
        return False, "nutpie is not installed (pip install 'bayesmlm[nutpie]')"
    return True, f"nutpie's NUTS on the collapsed density written out: {why} (nothing compiled per model)"


def blocked_effects(density: BlockedDensity, xs: np.ndarray, beta: np.ndarray, rng, dtype=np.float64):
    """Draw every factor's group effects given the draws ``xs`` (S, ndim); return one (S, m, q) per factor.

    ``beta`` (S, p) are the fixed effects as the statistics expect them (:func:`intercept_for_stats`).
    """
    from bayesmlm.bayes.blocked_conditional import blocked_conditional_kernel

    structure = density.structure
    first, rest = structure.factors[0], structure.factors[1:]
    S = xs.shape[0]
    q_r = sum(f.n_levels * f.q for f in rest)
    out1 = np.empty((S, first.n_levels, first.q), dtype=dtype)
    out_r = np.empty((S, q_r), dtype=dtype)
    sigma = np.exp(xs[:, -1])
    step = max(1, _CHUNK_VALUES // max(first.n_levels * first.q + q_r, 1))
    for start in range(0, S, step):
        s = slice(start, min(S, start + step))
        k = s.stop - s.start
        eps1 = rng.standard_normal((k, first.n_levels, first.q))
        eps_r = rng.standard_normal((k, q_r))
        b1, br = np.empty(eps1.shape), np.empty(eps_r.shape)
        blocked_conditional_kernel(
            density.cholesky_draws(xs[s]), np.ascontiguousarray(sigma[s]), np.ascontiguousarray(beta[s]),
            *density.layout, *density.statistics[:7], eps1, eps_r, b1, br,
        )  # fmt: skip
        out1[s], out_r[s] = b1, br
    effects, col = [out1], 0
    for f in rest:
        width = f.n_levels * f.q
        effects.append(out_r[:, col : col + width].reshape(S, f.n_levels, f.q))
        col += width
    return effects


def sample_blocked(
    design: Design,
    structure: RandomStructure,
    priors: PriorSet,
    stats: CrossProducts,
    *,
    draws: int,
    tune: int,
    chains: int,
    cores: int,
    seed: int | None,
    target_accept: float,
    progressbar: bool,
    log_likelihood: bool,
    compiled: bool | None = None,
):
    """Sample with every factor integrated out, then draw the effects; return the complete ``DataTree``.

    ``compiled`` (default: when :func:`~bayesmlm.bayes.glmm_nutpie.compiled_supported`) has nutpie call
    :func:`~bayesmlm.bayes.blocked_callback.blocked_c_logp` from Rust; otherwise it calls the density as
    a Python function (the same draws, the chains' threads then share the GIL).

    The posterior holds the PyMC collapsed model's variables (``fixed_centered``, ``fixed``,
    ``sd_<group>``, ``sd__<label>`` or ``chol__<label>`` and ``cor_<label>``, ``sigma``) and every
    factor's ``r_<group>``; ``sample_stats`` are nutpie's.
    """
    import xarray as xr

    density = BlockedDensity(design.fixed_names, structure, priors, stats)
    run = dict(draws=draws, tune=tune, chains=chains, cores=cores, seed=seed, target_accept=target_accept)
    start = prior_start(density.ndim, density.fixed_names, priors)
    with single_threaded():  # the Schur complement's BLAS calls are small: threads only wait (linalg.threads)
        if compiled_supported() if compiled is None else compiled:
            buffer = pack_blocked(density._args, density.Q, density._constant)
            x, post, sample_stats = run_nutpie_compiled(
                buffer, density.ndim, start, progressbar=progressbar, logp_func=blocked_c_logp, **run
            )
        else:
            x, post, sample_stats = run_nutpie(density, density.ndim, start, progressbar=progressbar, **run)
    n_chain, n_draw = x.shape[:2]
    xs = x.reshape(n_chain * n_draw, density.ndim)
    values = density.constrained(xs)
    coords = {"chain": post["chain"].values, "draw": post["draw"].values}

    def da(a, dims=(), extra=None):
        return xr.DataArray(
            a.reshape(n_chain, n_draw, *a.shape[1:]),
            dims=("chain", "draw", *dims),
            coords={**coords, **(extra or {})},
        )

    out = dict(
        population_dataset(values, design, structure, density.blocks, density.term_off, n_chain, n_draw, post)
    )
    sampled = "fixed_centered" if "Intercept" in design.fixed_names else "fixed"
    rng = np.random.default_rng(None if seed is None else [int(seed), 5])
    beta = np.ascontiguousarray(intercept_for_stats(values[sampled], design, stats))
    with single_threaded():
        effects = blocked_effects(density, xs, beta, rng, group_effects_dtype(structure, len(xs)))
    for f, b in zip(structure.factors, effects, strict=True):
        out[f"r_{f.group}"] = da(
            b, (f.group, f"{f.group}_term"), {f.group: list(f.levels), f"{f.group}_term": list(f.term_names)}
        )
    tree = {"posterior": xr.Dataset(out), "sample_stats": sample_stats}
    if design.holds_rows:
        obs = {"obs": np.arange(design.n)}
        tree["observed_data"] = xr.Dataset({"y": xr.DataArray(np.asarray(design.y), dims="obs", coords=obs)})
        if log_likelihood:
            ll = pointwise_loglik(
                design, structure, out["fixed"].values.reshape(len(xs), -1), effects, values["sigma"]
            )
            tree["log_likelihood"] = xr.Dataset(
                {
                    "y": xr.DataArray(
                        ll.reshape(n_chain, n_draw, design.n),
                        dims=("chain", "draw", "obs"),
                        coords={**coords, **obs},
                    )
                }
            )
    return xr.DataTree.from_dict(tree)
