"""Stage 4b, Bayes: nutpie's NUTS calling a compiled density from Rust (no Python per step).

:func:`~bayesmlm.bayes.nutpie_run.run_nutpie` hands nutpie a Python callable: every gradient goes back
through the interpreter (about 30 µs on cbpp, holding the GIL, so two chains in threads share one core).
Here nutpie gets the address of :func:`~bayesmlm.bayes.glmm_kernel.glmm_c_logp`, a numba C callback
compiled once per machine (cached), and the model's data as one float64 buffer, exactly as
``nutpie.compile_pymc_model(backend="numba")`` hands it a PyMC model: its chains then run in parallel
threads at a few microseconds per gradient. The start and the jitter are ``run_nutpie``'s.
"""

from __future__ import annotations

import numpy as np

__all__ = ["compiled_supported", "run_nutpie_compiled"]


def compiled_supported() -> bool:
    """Whether this nutpie takes a compiled callback as :func:`run_nutpie_compiled` hands it one.

    ``CompiledPyMCModel`` is nutpie's own (0.16), not a documented interface: a nutpie whose fields
    differ gets the Python callable instead (:func:`~bayesmlm.bayes.nutpie_run.run_nutpie`), which
    samples the same density to the same draws, only slower.
    """
    try:
        from nutpie.compile_pymc import CompiledPyMCModel
    except ImportError:
        return False
    fields = getattr(CompiledPyMCModel, "__dataclass_fields__", {})
    return {"compiled_logp_func", "compiled_expand_func", "user_data", "initial_point_func"} <= set(fields)


def run_nutpie_compiled(
    buffer: np.ndarray,
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
    logp_func=None,
):
    """Sample the density packed in ``buffer`` (:func:`~bayesmlm.bayes.glmm_kernel.pack_arguments`).

    ``logp_func`` is the numba ``cfunc`` that reads the buffer (default
    :func:`~bayesmlm.bayes.glmm_kernel.glmm_c_logp`; the blocked Gaussian density passes
    :func:`~bayesmlm.bayes.blocked_callback.blocked_c_logp`). Returns (draws (chain, draw, ndim),
    posterior ``Dataset``, ``sample_stats`` ``Dataset``), as :func:`~bayesmlm.bayes.nutpie_run.run_nutpie`
    does.
    """
    from nutpie.compile_pymc import CompiledPyMCModel

    from bayesmlm.bayes.glmm_kernel import glmm_c_logp
    from bayesmlm.bayes.nutpie_callback import identity_c_expand
    from bayesmlm.bayes.nutpie_run import jittered_start, sample_compiled

    buffer = np.ascontiguousarray(buffer, dtype=np.float64)
    compiled = CompiledPyMCModel(
        _n_dim=ndim,
        dims={},
        _coords={},
        _shapes={"x": (ndim,)},
        compiled_logp_func=glmm_c_logp if logp_func is None else logp_func,
        compiled_expand_func=identity_c_expand,
        initial_point_func=jittered_start(start),  # as run_nutpie
        shared_data={},
        shared_var_keys={},
        user_data=buffer,  # nutpie passes its address to every call; the model keeps it alive
        n_expanded=ndim,
        shape_info=(["x"], [slice(0, ndim)], [(ndim,)]),
        logp_func=None,
        expand_func=None,
    )
    run = dict(draws=draws, tune=tune, chains=chains, cores=cores, seed=seed, target_accept=target_accept)
    return sample_compiled(compiled, progressbar=progressbar, **run)
