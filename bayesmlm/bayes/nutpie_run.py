"""Stage 4b, Bayes: nutpie's NUTS on a log density written out in Python (no PyTensor graph).

The direct samplers (:mod:`bayesmlm.bayes.direct`, :mod:`bayesmlm.bayes.partial`) hand nutpie (Rust) a
callable ``x ↦ (log p, ∇ log p)`` through its Python-function interface; this is that call, with
PyMC's initial jitter and without the warm-up draws.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

__all__ = ["jittered_start", "prior_start", "run_nutpie", "sample_compiled"]


def run_nutpie(
    density: Callable[[np.ndarray], tuple[float, np.ndarray]],
    ndim: int,
    start: np.ndarray,
    *,
    draws: int,
    tune: int,
    chains: int,
    cores: int,
    seed: int | None,
    target_accept: float,
    progressbar: bool,
):
    """Sample ``density`` (``ndim`` coordinates) from ``start`` ± U(-1, 1); return (draws, posterior, stats).

    ``draws`` is an array (chain, draw, ndim); the posterior ``Dataset`` gives the chain and draw
    coordinates and ``stats`` is nutpie's ``sample_stats`` ``Dataset``.
    """
    from nutpie.compiled_pyfunc import from_pyfunc

    def make_logp():
        return density

    def make_expand(seed1, seed2, chain):
        def expand(x):
            return {"x": np.array(x, dtype=float)}

        return expand

    compiled = from_pyfunc(
        ndim,
        make_logp,
        make_expand,
        [np.dtype("float64")],
        [(ndim,)],
        ["x"],
        make_initial_point_fn=jittered_start(start),
    )
    run = dict(draws=draws, tune=tune, chains=chains, cores=cores, seed=seed, target_accept=target_accept)
    return sample_compiled(compiled, progressbar=progressbar, **run)


def jittered_start(start: np.ndarray) -> Callable[[int], np.ndarray]:
    """Return nutpie's initial-point function: ``start`` ± U(-1, 1), PyMC's default jitter."""
    start = np.asarray(start, dtype=float)

    def initial_point(point_seed):
        rng = np.random.default_rng(point_seed)
        return start + rng.uniform(-1.0, 1.0, size=start.shape[0])

    return initial_point


def sample_compiled(compiled, *, draws, tune, chains, cores, seed, target_accept, progressbar):
    """Run ``nutpie.sample`` on a compiled model with a coordinate ``x``; return (draws, posterior, stats)."""
    import nutpie

    trace = nutpie.sample(
        compiled,
        draws=draws,
        tune=tune,
        chains=chains,
        cores=cores,
        seed=0 if seed is None else int(seed),
        save_warmup=False,
        progress_bar=progressbar,
        target_accept=target_accept,
    )
    post = trace["posterior"].to_dataset()
    x = np.asarray(post["x"].transpose("chain", "draw", ...).values)
    return x, post, trace["sample_stats"].to_dataset()


def prior_start(ndim: int, fixed_names, priors) -> np.ndarray:
    """Where chains start before the jitter: the fixed effects' prior locations, every other coordinate 0.

    The fixed effects come first in the direct densities' coordinates; 0 is unit sds, σ = 1 and
    effects at their means.
    """
    x = np.zeros(ndim)
    for k, name in enumerate(fixed_names):
        x[k] = dict(priors.fixed[name].params).get("mu", 0.0)
    return x
