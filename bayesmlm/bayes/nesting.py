"""Stage 4b, Bayes: hierarchical centring of nested factors (broods within locations).

When the levels of one centred factor nest in those of another (every brood in one location), the
nested factor's intercepts are centred on their parent's coefficient rather than on the fixed
intercept: ``c_brood ~ N(β₀ + r_location[parent], σ_brood)``, so that the likelihood sees ``c_brood``
alone and the location effects enter only through the broods' prior (Gelfand, Sahu & Carlin 1995,
"Efficient parametrisations for normal linear mixed models"). Without it the two centred factors and
the intercept form a ridge; with both factors non-centred, the Poisson grouseticks model diverges as
brms's does. The rewrite changes the parameterisation only, not the model.
"""

from __future__ import annotations

import numpy as np
import pytensor.tensor as pt

from bayesmlm.design.covariance import RandomStructure

__all__ = ["hierarchical_mean", "level_constant", "nested_parents"]


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


def hierarchical_mean(f, start: int, size: int, fixed_mean, X: np.ndarray, original, parents: dict, built):
    """Return the mean (levels, size) of a centred block's coefficients under hierarchical centring.

    The intercept column is centred on the fixed effects of the columns of ``X`` that are constant
    within the factor's levels (a brood's year) and, for a nested factor, on its parent's coefficient
    (which already holds the columns constant within the parent: a location's height); the block's
    other columns keep ``fixed_mean``. ``built`` maps each factor created so far to
    ``(FactorTerms, r)``.
    """
    terms = list(f.term_names[start : start + size])
    if "Intercept" not in terms:
        return fixed_mean
    k = terms.index("Intercept")
    levels, constant = level_constant(X, f.codes, f.n_levels)
    if f.group in parents:
        group, parent = parents[f.group]
        g, r_g = built[group]
        _, parent_constant = level_constant(X, g.codes, g.n_levels)
        own = constant & ~parent_constant
        above = pt.dot(level_constant(X, g.codes, g.n_levels)[0] * parent_constant, original)
        above = above + r_g[:, list(g.term_names).index("Intercept")]
        intercept = pt.dot(levels * own, original) + above[parent]
    else:
        intercept = pt.dot(levels * constant, original)
    mean = pt.zeros((f.n_levels, size)) + fixed_mean
    return pt.set_subtensor(mean[:, k], intercept)
