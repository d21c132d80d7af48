"""Stage 4b, Bayes: per-level centring of a generalized model's scalar blocks (``"mixed"``, opt-in).

A block's levels differ in how much their data say: in grouseticks (Poisson, 118 broods in 63
locations) a brood's data-to-prior precision ratio runs from 0.16 to 203 (a brood of zero counts
against one of 40 ticks a chick). One choice for the whole block then fails one end: non-centred, the
well-informed levels form a ridge with the sd; centred, the poorly informed ones a funnel. With
``Model(..., parameterization={"BROOD": "mixed", ...})`` each level ``j`` of a scalar block is centred
or non-centred by its own ratio

    ``ρ_j = τ² I_j``,   ``I_j = Σ_{i in j} w_i z_i²``,

``τ`` the block's sd and ``w_i`` the IRLS weight of row ``i`` (``μ_i`` for a Poisson log link: the
level's expected count) at the Laplace estimate; a level is centred when ``ρ_j > 1``, where the data
carry more precision than the prior and the centred form of the Gaussian random-effects model mixes
faster (Gelfand, Sahu & Carlin 1995; Papaspiliopoulos, Roberts & Sköld 2007). A factor that others
nest in (locations above broods) sees its data through its children's effects, so its information is
the marginal ``I_l = Σ_{b in l} I_b / (1 + τ_b² I_b)``. Centred levels of a nested factor are centred
on their parent's coefficient (:mod:`bayesmlm.bayes.nesting`). A ``"mixed"`` block samples
``c__<label>`` (its centred levels) and ``z__<label>`` (the others); ``r_<group>`` holds all.

Not the default (``"auto"`` keeps the per-block rule): measured on grouseticks (4 chains × 1,000
draws), both blocks ``"mixed"`` gave 20, 153 and 24 divergences with seeds 1 to 3 where both
non-centred (the default) gave 1,084 with seed 1, but cbpp's herd block (ratios 0.94 to 3.7: one herd
non-centred) gave 5 divergences where the default has none; see ``docs/bayesian.md``.
"""

from __future__ import annotations

import numpy as np

from bayesmlm.bayes.nested_levels import nested_parents
from bayesmlm.design.covariance import RandomStructure
from bayesmlm.design.crossprod import per_level_sum

__all__ = ["LEVEL_RATIO", "choose_levels", "level_ratios", "mixed_block"]

#: a level of a scalar block is centred when its data-to-prior precision ratio exceeds this
LEVEL_RATIO = 1.0


def _scalar_blocks(structure: RandomStructure):
    for f in structure.factors:
        for label, start, size in f.blocks():
            if size == 1:
                yield f, label, start


def level_ratios(structure: RandomStructure, theta: np.ndarray, row_weights: np.ndarray) -> dict:
    """Return each scalar block's per-level data-to-prior precision ratios ``ρ_j`` (module docstring).

    Examples
    --------
    >>> import bayesmlm as bm
    >>> m = bm.Model("TICKS ~ YEAR + cHEIGHT + (1 | BROOD) + (1 | LOCATION)",
    ...              bm.load_dataset("grouseticks"), family="poisson")
    >>> ml = m.fit_ml()
    >>> rho = level_ratios(m.structure, ml.theta, ml.working_weights)
    >>> rho["BROOD"].shape, rho["LOCATION"].shape
    ((118,), (63,))
    """
    w = np.asarray(row_weights, dtype=float)
    info, tau = {}, {}
    for f, label, k in _scalar_blocks(structure):
        z = np.asarray(f.Z)[:, k]
        info[label] = per_level_sum(f.codes, (w * z * z)[:, None], f.n_levels)[:, 0]
        tau[label] = float(f.relative_factor(theta)[k, k])
    parents = nested_parents(structure, {f.group for f in structure.factors})
    ratios = {}
    for f, label, k in _scalar_blocks(structure):
        marginal = info[label].copy()
        children = [(c, p) for c, (g, p) in parents.items() if g == f.group and c in info]
        if children and f.term_names[k] == "Intercept":
            marginal = np.zeros(f.n_levels)
            for child, parent in children:
                through = info[child] / (1.0 + tau[child] ** 2 * info[child])
                marginal += per_level_sum(parent, through[:, None], f.n_levels)[:, 0]
        ratios[label] = tau[label] ** 2 * marginal
    return ratios


def choose_levels(structure: RandomStructure, theta, row_weights, choice: dict) -> tuple[dict, dict]:
    """Refine a block choice per level: returns (block label -> choice, block label -> centred mask).

    Each scalar block's levels are centred where ``ρ_j > 1`` (:data:`LEVEL_RATIO`); a block whose levels
    all agree is ``"centered"`` or ``"noncentered"``, otherwise ``"mixed"`` with its mask. Correlated
    blocks keep ``choice``. Without an estimate (``theta`` None) nothing changes.

    Examples
    --------
    >>> import bayesmlm as bm
    >>> m = bm.Model("TICKS ~ YEAR + cHEIGHT + (1 | BROOD) + (1 | LOCATION)",
    ...              bm.load_dataset("grouseticks"), family="poisson")
    >>> ml = m.fit_ml()
    >>> choice, masks = choose_levels(m.structure, ml.theta, ml.working_weights, m.parameterization)
    >>> choice, int(masks["BROOD"].sum()), int(masks["LOCATION"].sum())
    ({'BROOD': 'mixed', 'LOCATION': 'mixed'}, 89, 12)
    """
    if theta is None or row_weights is None:
        return dict(choice), {}
    out, masks = dict(choice), {}
    for label, rho in level_ratios(structure, theta, row_weights).items():
        mask = rho > LEVEL_RATIO
        out[label] = "centered" if mask.all() else "noncentered" if not mask.any() else "mixed"
        if out[label] == "mixed":
            masks[label] = mask
    return out, masks


def mixed_block(label: str, mask: np.ndarray, sd, mean):
    """Create a scalar block's effects, its levels ``mask`` centred, the others not: returns ``r`` (m, 1).

    ``mean`` is the centred levels' prior mean, (m, 1) or broadcastable to it.

    Examples
    --------
    >>> import numpy as np, pymc as pm
    >>> with pm.Model() as model:
    ...     r = mixed_block("g", np.array([True, False, True]), pm.HalfNormal("sd", 1.0), 0.0)
    >>> [v.name for v in model.free_RVs], r.eval({model["sd"]: 1.0}).shape
    (['sd', 'c__g', 'z__g'], (3, 1))
    """
    import pymc as pm
    import pytensor.tensor as pt

    m = len(mask)
    centred, other = np.flatnonzero(mask), np.flatnonzero(~mask)
    mean = pt.broadcast_to(mean, (m, 1))[:, 0]
    c = pm.Normal(f"c__{label}", mean[centred], sd, shape=len(centred))
    z = pm.Normal(f"z__{label}", 0.0, 1.0, shape=len(other))
    r = pt.zeros(m)
    r = pt.set_subtensor(r[centred], c - mean[centred])
    r = pt.set_subtensor(r[other], z * sd)
    return r[:, None]
