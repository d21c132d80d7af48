"""Stage 4b, Bayes: nutpie's NUTS on a generalized model's written-out log density (no PyMC, no compile).

The default sampler of a binomial (logit) or Poisson model with scalar blocks
(:func:`~bayesmlm.bayes.glmm_density.glmm_plan`): nutpie (Rust, its chains in threads) runs NUTS on
:class:`~bayesmlm.bayes.glmm_density.GLMMDensity`, whose loop numba compiles once per machine. The draws
come back under the PyMC model's names, dims and coords, so everything downstream (summaries, LOO,
predictions, plots, saving) is unchanged. Measured on cbpp (4 chains × 1,000 draws after 1,000 tuning
steps, 2 cores): see ``docs/performance.md``.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from bayesmlm.bayes.glmm_density import GLMMDensity
from bayesmlm.bayes.glmm_nutpie import compiled_supported, run_nutpie_compiled
from bayesmlm.bayes.nutpie_run import run_nutpie

__all__ = ["cut_short", "sample_glmm_direct"]


def cut_short(x: np.ndarray, chains: int, draws: int) -> None:
    """Raise ``KeyboardInterrupt`` if nutpie came back early (it returns what it has on a Ctrl-C).

    Fewer chains or draws than asked, or draws left empty (NaN), make no fit, as on the PyMC path.
    """
    n_chain, n_draw = x.shape[:2]
    if n_chain < chains or n_draw < draws or np.isnan(x).any():
        from bayesmlm.bayes.sample import _interrupted

        done = n_draw if not np.isnan(x).any() else int(np.isfinite(x[..., 0]).sum(axis=1).min())
        raise KeyboardInterrupt(_interrupted(n_chain, chains, done, draws))


def sample_glmm_direct(
    model, *, draws, tune, chains, cores, seed, target_accept, progressbar, compiled: bool | None = None
) -> xr.DataTree:
    """Sample a generalized ``Model``'s posterior with nutpie on :class:`GLMMDensity`; return the tree.

    ``compiled`` (default: when :func:`~bayesmlm.bayes.glmm_nutpie.compiled_supported`) has nutpie call
    the C callback from Rust; otherwise it calls the density as a Python function (same draws, slower).
    """
    density = GLMMDensity(
        model.design, model.structure, model.family, model.prior_set, model.parameterization
    )
    run = dict(draws=draws, tune=tune, chains=chains, cores=cores, seed=seed, target_accept=target_accept)
    start = density.start(model.prior_set)
    if compiled_supported() if compiled is None else compiled:
        x, post, stats = run_nutpie_compiled(
            density.packed(), density.ndim, start, progressbar=progressbar, **run
        )
    else:
        x, post, stats = run_nutpie(density, density.ndim, start, progressbar=progressbar, **run)
    n_chain, n_draw = x.shape[:2]
    cut_short(x, chains, draws)
    values = density.constrained(x.reshape(n_chain * n_draw, density.ndim))
    coords = {"chain": post["chain"].values, "draw": post["draw"].values}

    def da(a: np.ndarray, dims=(), extra=None) -> xr.DataArray:
        return xr.DataArray(
            a.reshape(n_chain, n_draw, *a.shape[1:]),
            dims=("chain", "draw", *dims),
            coords={**coords, **(extra or {})},
        )

    fixed = {"fixed_term": list(model.design.fixed_names)}
    out = {
        name: da(values[name], ("fixed_term",), fixed)
        for name in ("fixed_centered", "fixed")
        if name in values
    }
    for f, label, col, centred, _ in density.blocks:
        single = len(f.block_labels) == 1
        term_dim = f"{f.group}_term" if single else f"{label}__block_term"
        name = ("c__" if centred else "z__") + label
        extra = {f.group: list(f.levels), term_dim: [f.term_names[col]]}
        out[f"sd__{label}"] = da(values[f"sd__{label}"])
        out[name] = da(values[name], (f.group, term_dim), extra)
    for f in model.structure.factors:
        terms = {f"{f.group}_term": list(f.term_names)}
        out[f"r_{f.group}"] = da(
            values[f"r_{f.group}"], (f.group, f"{f.group}_term"), {f.group: list(f.levels), **terms}
        )
        out[f"sd_{f.group}"] = da(values[f"sd_{f.group}"], (f"{f.group}_term",), terms)
    return xr.DataTree.from_dict({"posterior": xr.Dataset(out), "sample_stats": stats})
