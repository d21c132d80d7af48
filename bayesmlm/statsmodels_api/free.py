"""The statsmodels entry point, ``fit(free=...)``: statsmodels' mask of free parameters as lme4 blocks.

Covariances held at 0 split the correlated random effects into independent blocks (lme4's
``(x || g)`` when every covariance is held); other constraints cannot be written as an lme4 formula
and raise NotImplementedError.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from bayesmlm.exceptions import ArgumentError
from bayesmlm.statsmodels_api.translate import _block_expr

__all__ = ["blocks_for_free", "free_pattern"]


def blocks_for_free(model, free: Any, start_params: Any) -> tuple[str, ...]:
    """Translate statsmodels' ``free`` mask into separate lme4 blocks (zero = fixed at 0)."""
    if free is None:
        return model._default_blocks
    if hasattr(free, "cov_re"):
        fe = getattr(free, "fe_params", None)
        cov = np.asarray(free.cov_re, dtype=float)
        vc = getattr(free, "vcomp", None)
    else:
        packed = np.asarray(free, dtype=float).reshape(-1)
        if len(packed) != model.k_fe + model.k_re2 + model.k_vc:
            raise ArgumentError(
                f"free has {len(packed)} values; expected {model.k_fe + model.k_re2 + model.k_vc}"
            )
        fe, vc = packed[: model.k_fe], packed[model.k_fe + model.k_re2 :]
        cov = np.zeros((model.k_re, model.k_re))
        cov[np.tril_indices(model.k_re)] = packed[model.k_fe : model.k_fe + model.k_re2]
    if fe is not None and np.any(np.asarray(fe) == 0):
        raise NotImplementedError("free: holding fixed effects at their starting values is not supported")
    if vc is not None and np.any(np.asarray(vc) == 0):
        raise NotImplementedError("free: holding variance components fixed is not supported")
    if cov.shape != (model.k_re, model.k_re):
        raise ArgumentError(f"free.cov_re has shape {cov.shape}; the model has {model.k_re} random effects")
    if np.any(np.diag(cov) == 0):
        raise NotImplementedError("free: holding a variance at its starting value is not supported")
    k = model.k_re
    fixed = [(i, j) for i in range(k) for j in range(i) if cov[i, j] == 0]
    if not fixed:
        return model._default_blocks
    start_cov = getattr(start_params, "cov_re", None)
    if start_params is not None and (
        start_cov is None or any(np.asarray(start_cov)[i, j] != 0 for i, j in fixed)
    ):
        raise NotImplementedError("free with start_params: only covariances held at 0 are supported")
    # random effects linked by a free covariance form one block; each block must be complete
    component = list(range(k))
    for i in range(k):
        for j in range(i):
            if cov[i, j] != 0:
                old, new = component[i], component[j]
                component = [new if c == old else c for c in component]
    blocks: dict[int, list[int]] = {}
    for i, c in enumerate(component):
        blocks.setdefault(c, []).append(i)
    for members in blocks.values():
        if any(cov[i, j] == 0 for i in members for j in members if i > j):
            raise NotImplementedError(
                "free: this pattern of fixed covariances is not a set of independent blocks, "
                "which an lme4 formula cannot express"
            )
    n_terms = len(model._re_terms) + int(model._re_intercept)
    if n_terms != k:
        raise NotImplementedError(
            f"free: re_formula makes {k} columns from {n_terms} terms; write one term per column "
            "to split them into independent blocks"
        )
    columns = (["1"] if model._re_intercept else []) + model._re_terms
    out = []
    for members in blocks.values():
        chosen = [columns[i] for i in members]
        has_one = "1" in chosen
        out.append(_block_expr(has_one, [c for c in chosen if c != "1"]))
    return tuple(out)


def free_pattern(free: Any, k_fe: int, k_re: int, k_vc: int) -> np.ndarray:
    """Return statsmodels' packed ``free`` mask (fixed effects, ``cov_re``'s triangle, ``vcomp``).

    Parameters
    ----------
    free : MixedLMParams-like, array_like or None
        The ``free`` given to ``fit`` (None: every parameter is free).
    k_fe, k_re, k_vc : int
        The model's numbers of fixed effects, random effects and variance components.

    Returns
    -------
    ndarray
        1 for a free parameter, 0 for one held (statsmodels inverts the Hessian over the free ones).

    Examples
    --------
    >>> from types import SimpleNamespace
    >>> free_pattern(SimpleNamespace(cov_re=np.eye(2)), 2, 2, 0)
    array([1., 1., 1., 0., 1.])
    """
    k = k_fe + k_re * (k_re + 1) // 2 + k_vc
    if free is None:
        return np.ones(k)
    if not hasattr(free, "cov_re"):
        return np.asarray(free, dtype=float).reshape(-1)
    fe, vc = getattr(free, "fe_params", None), getattr(free, "vcomp", None)
    parts = [
        np.ones(k_fe) if fe is None else np.asarray(fe, dtype=float).reshape(-1),
        np.asarray(free.cov_re, dtype=float)[np.tril_indices(k_re)],
        np.ones(k_vc) if vc is None else np.asarray(vc, dtype=float).reshape(-1),
    ]
    return np.concatenate(parts)
