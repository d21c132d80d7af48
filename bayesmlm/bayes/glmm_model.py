"""Stage 4b, Bayes: the PyMC model of a generalized (binomial, Poisson, negative binomial) mixed model.

The same fixed and group effects as the Gaussian model (:func:`~bayesmlm.bayes.pymc_model.linear_predictor`:
LKJ-correlated blocks, each centred or non-centred by the data-to-prior rule, here with the IRLS weights
of the Laplace fit as each row's information), plus the offset, through the family's likelihood
(:meth:`~bayesmlm.families.base.Family.pymc_likelihood`): ``Bernoulli``/``Binomial`` on the logit (or
``p = g⁻¹(η)``), ``Poisson(exp(η))``, ``NegativeBinomial(exp(η), shape)``. There is no ``sigma``; the
negative binomial adds ``shape``. The group effects are always sampled (no collapsed path: only a
Gaussian likelihood integrates them out exactly).
"""

from __future__ import annotations

import numpy as np
import pymc as pm

from bayesmlm.bayes.prior_set import PriorSet
from bayesmlm.bayes.pymc_model import Parameterization, linear_predictor, model_coords
from bayesmlm.design.covariance import RandomStructure
from bayesmlm.design.evaluate import Design
from bayesmlm.families.base import Family

__all__ = ["build_glmm_model"]


def build_glmm_model(
    design: Design,
    structure: RandomStructure,
    family: Family,
    priors: PriorSet,
    parameterization: dict[str, Parameterization],
    levels: dict[str, np.ndarray] | None = None,
) -> pm.Model:
    """Build the unsampled PyMC model of a generalized family (``Model.build()``).

    Parameters
    ----------
    design, structure
    family : Family
    priors : PriorSet
        From :func:`~bayesmlm.bayes.glmm_priors.default_glmm_priors` with the user's overrides.
    parameterization : dict
        Block label -> ``"centered"``, ``"noncentered"`` or ``"mixed"``.
    levels : dict, optional
        A ``"mixed"`` block's label -> which levels are centred (:mod:`bayesmlm.bayes.level_centring`).

    Returns
    -------
    pymc.Model

    Examples
    --------
    >>> import bayesmlm as bm
    >>> m = bm.Model("cbind(incidence, size - incidence) ~ period + (1 | herd)", bm.load_dataset("cbpp"),
    ...              family="binomial")
    >>> sorted(v.name for v in m.build().free_RVs)
    ['fixed_centered', 'sd__herd', 'z__herd']
    """
    with pm.Model(coords=model_coords(design, structure)) as model:
        eta = linear_predictor(design, structure, priors, parameterization, nested=True, levels=levels)
        if design.offset is not None:
            eta = eta + pm.Data("offset", np.asarray(design.offset), dims="obs")
        dispersion = None
        if family.n_dispersion:
            dispersion = priors.family_params[family.dispersion_name].create(family.dispersion_name)
        family.pymc_likelihood("y", eta, family.glm_data(design), dispersion)
    return model
