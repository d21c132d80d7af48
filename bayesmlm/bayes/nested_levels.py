"""Stage 4b, Bayes: which factors nest in which, and what is constant within a factor's levels.

The structural half of hierarchical centring (:mod:`bayesmlm.bayes.nesting` writes it into a PyMC model;
:mod:`bayesmlm.bayes.partial_density` into a density written out), in numpy only, so that a fit that
builds no PyMC model does not import PyTensor for it.
"""

from __future__ import annotations

import numpy as np

from bayesmlm.design.covariance import RandomStructure

__all__ = ["INTEGRATED", "anchor_group", "centred_factors", "level_constant", "nested_parents"]

#: the outer block of a nested pair whose effects are integrated out of the inner levels' prior
INTEGRATED = "integrated"


def nested_parents(structure: RandomStructure, centred: set[str]) -> dict[str, tuple[str, np.ndarray]]:
    """Return, for each centred factor nested in another factor, ``(parent group, parent codes)``.

    A factor is nested in another when each of its levels occurs with one level of the other only; of
    several such parents the one with the most levels (the closest) is taken, centred or not (a
    non-centred parent's effects are a deterministic shift). Both factors need an ``Intercept`` term.
    ``parent codes`` maps each level of the nested factor to its parent's level.

    Examples
    --------
    >>> import bayesmlm as bm
    >>> m = bm.Model("TICKS ~ YEAR + (1 | BROOD) + (1 | LOCATION)", bm.load_dataset("grouseticks"),
    ...              family="poisson")
    >>> parents = nested_parents(m.structure, {"BROOD", "LOCATION"})
    >>> parents["BROOD"][0], parents["BROOD"][1].shape
    ('LOCATION', (118,))
    """
    factors = [f for f in structure.factors if "Intercept" in f.term_names]
    out: dict[str, tuple[str, np.ndarray]] = {}
    for f in factors:
        if f.group not in centred:
            continue
        best, best_levels = None, 0
        for g in factors:
            if g is f or g.n_levels >= f.n_levels:
                continue
            parent = np.full(f.n_levels, -1)
            parent[f.codes] = g.codes
            consistent = np.array_equal(parent[f.codes], g.codes) and bool((parent >= 0).all())
            if consistent and g.n_levels > best_levels:
                best, best_levels = (g.group, parent), g.n_levels
        if best is not None:
            out[f.group] = best
    return out


def level_constant(X: np.ndarray, codes: np.ndarray, n_levels: int) -> tuple[np.ndarray, np.ndarray]:
    """Return each level's row of ``X`` (m, p) and which columns are constant within every level (p,)."""
    X = np.asarray(X, dtype=float)
    first = np.zeros((n_levels, X.shape[1]))
    first[codes] = X
    constant = np.all(np.isclose(first[codes], X), axis=0) if len(X) else np.zeros(X.shape[1], bool)
    return first, constant


def centred_factors(structure: RandomStructure, parameterization: dict) -> list:
    """Return the factors with a centred (or per-level mixed) block, in the structure's order."""
    skip = ("noncentered", INTEGRATED)
    return [f for f in structure.factors if any(parameterization[lb] not in skip for lb, *_ in f.blocks())]


def anchor_group(structure: RandomStructure, parameterization: dict) -> str | None:
    """Return the centred factor with the fewest levels: the one centred on the fixed effects.

    Only one factor's centred blocks can be centred on the fixed effects: with two (crossed or nested
    factors) the fixed intercept enters the likelihood through both and the ridge between it and the
    group effects returns. The anchor's effects are the most confounded with the intercept.
    """
    centred = centred_factors(structure, parameterization)
    return min(centred, key=lambda f: f.n_levels).group if centred else None
