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

from bayesmlm.bayes.nested_levels import level_constant, nested_parents

__all__ = ["hierarchical_mean", "level_constant", "nested_parents"]


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
