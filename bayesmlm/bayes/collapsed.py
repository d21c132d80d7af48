"""Stage 4b, Bayes: the collapsed sampler: NUTS on the population-level parameters, group effects after.

A linear mixed model is Gaussian in its group effects, so they integrate out exactly::

    y ~ N(Xβ, σ² (I + Z Λ Λᵀ Zᵀ)),     Λ = (random-effect covariance factor) / σ.

:func:`build_collapsed_model` writes the same priors as the full model
(:func:`bayesmlm.bayes.pymc_model.build_pymc_model`) on the fixed effects, the residual sd and each block's
covariance, and the likelihood above as a ``pm.Potential``. The likelihood is
:func:`bayesmlm.families.gaussian.marginal_loglik`: the blocked factorisation of the REML objective applied to
the per-group cross-products, so a gradient costs O(groups × q³) and nothing depends on the number of
rows. The funnel between a random-effect sd and the group effects is gone, and so is the choice
between the centred and the non-centred form.

For each posterior draw, :func:`draw_group_effects` then draws every group's effects from their exact
Gaussian conditional ``b | β, σ, Σ, y``, with the same factorisation (``u = L⁻ᵀ(L⁻¹ Λᵀ Zᵀ (y − Xβ) + σ ε)``,
``b = Λ u``). The joint draws are draws from the full model's posterior.

When: :func:`collapsed_plan` uses this path when the dense part of the factorisation (the levels of
every factor but the largest: nothing for one factor, the upper level of two nested factors, the
smaller of crossed factors) has at most :data:`MAX_DENSE` columns, since each gradient then factors a
dense matrix of that size; otherwise the full model is sampled.
"""

from __future__ import annotations

import numpy as np
import pymc as pm
import pytensor.tensor as pt

from bayesmlm.arguments import checked
from bayesmlm.bayes.collapsed_stats import (
    MAX_DENSE,
    centred_cross_products,
    collapsed_plan,
    intercept_for_stats,
    predictor_shift,
)
from bayesmlm.bayes.conditional import (
    FLOAT32_GROUP_EFFECTS_BYTES,
    add_group_effects,
    group_effects_dtype,
    theta_draws,
)
from bayesmlm.bayes.conditional_graph import draw_group_effects
from bayesmlm.bayes.prior_set import PriorSet
from bayesmlm.bayes.pymc_model import block_covariance, model_coords, population_fixed
from bayesmlm.design.covariance import RandomStructure
from bayesmlm.design.crossprod import CrossProducts
from bayesmlm.design.evaluate import Design
from bayesmlm.design.names import parameter_names
from bayesmlm.families.gaussian import marginal_loglik
from bayesmlm.linalg.blocked import SymbolicStats, symbolic_stats

__all__ = [
    "FLOAT32_GROUP_EFFECTS_BYTES",
    "MAX_DENSE",
    "add_group_effects",
    "build_collapsed_model",
    "centred_cross_products",
    "collapsed_plan",
    "draw_group_effects",
    "group_effects_dtype",
    "theta_draws",
]


def _stat_data(stats: CrossProducts, structure: RandomStructure) -> SymbolicStats:
    """Wrap the cross-products in ``pm.Data`` (inside a model context), shaped like :class:`SymbolicStats`."""
    sym, _, values = symbolic_stats(stats, structure)
    fields = sym._asdict()
    names = [k for k in fields if k not in ("p", "rest_levels", "log_weights") and fields[k] is not None]
    out = dict(fields)
    for name, value in zip(names, values, strict=False):
        out[name] = pm.Data(f"stat_{name}", value)
    if stats.has_rest:
        out["rest_levels"] = pt.as_tensor(np.array([f.n_levels for f in structure.factors[1:]]))
    return SymbolicStats(**out)


def _theta_from_cholesky(structure: RandomStructure, chols: list[list], sigma) -> pt.TensorVariable:
    """lme4's ``theta`` (entries of ``Λ = L_Σ / σ``) from each block's covariance Cholesky factor."""
    parts = []
    for f, blocks in zip(structure.factors, chols, strict=True):
        lam = pt.zeros((f.q, f.q))
        for (_, start, size), chol in zip(f.blocks(), blocks, strict=True):
            lam = pt.set_subtensor(lam[start : start + size, start : start + size], chol / sigma)
        rows, cols = f.lower_index
        parts.append(lam[rows, cols])
    return pt.concatenate(parts) if len(parts) > 1 else parts[0]


@checked
def build_collapsed_model(
    design: Design, structure: RandomStructure, priors: PriorSet, stats: CrossProducts | None = None
) -> pm.Model:
    """Build the collapsed PyMC model: population-level parameters and the marginal likelihood.

    The variables and their names are those of the full model (``fixed``, ``fixed_centered``, ``sd_g``,
    ``cor_<block>``, ``sigma``) except the group effects ``r_g``, which :func:`draw_group_effects`
    adds after sampling, and the likelihood, a ``pm.Potential`` named ``marginal_loglik``.

    Parameters
    ----------
    design : Design
    structure : RandomStructure
    priors : PriorSet
    stats : CrossProducts, optional
        :func:`centred_cross_products` of the design (computed if omitted).

    Returns
    -------
    pymc.Model
    """
    stats = stats if stats is not None else centred_cross_products(design, structure)
    names = parameter_names(structure)
    with pm.Model(coords=model_coords(design, structure, obs=False)) as model:
        coef, _ = population_fixed(design, priors, predictor_shift(design))
        chols = []
        for f in structure.factors:
            blocks, sds = [], []
            for label, start, size in f.blocks():
                chol, sd, corr = block_covariance(f, label, start, size, priors, names)
                blocks.append(chol)
                sds.append(sd)
                if corr is not None:
                    dim = f"{label}__block_term"
                    pm.Deterministic(f"cor_{label}", corr, dims=(dim, dim + "_"))
            chols.append(blocks)
            pm.Deterministic(
                f"sd_{f.group}", pt.concatenate(sds) if len(sds) > 1 else sds[0], dims=f"{f.group}_term"
            )
        sigma = priors.sigma.create("sigma")
        theta = _theta_from_cholesky(structure, chols, sigma)
        sym = _stat_data(stats, structure)
        beta = intercept_for_stats(coef, design, stats)
        pm.Potential("marginal_loglik", marginal_loglik(theta, beta, sigma, structure, sym))
    return model
