"""Stage 4b, Bayes: the default priors of a generalized (binomial, Poisson, negative binomial) model.

On the link scale there is no response sd to scale by, so the defaults are rstanarm's for its GLMs
(``stan_glmer``), with brms's sd prior, scaled by the predictors as the Gaussian defaults are:

=========================  ==============================  =============================================
Parameter (class)          Default prior                   Anchor and why
=========================  ==============================  =============================================
``Intercept``              ``Normal(0, 2.5)``              rstanarm's ``prior_intercept`` for binomial
                                                           and Poisson models, on centred predictors:
                                                           95% of its mass on probabilities 0.007 to
                                                           0.993, or on rates within a factor 135 of 1
coefficient ``k`` (``b``)  ``Normal(0, 2.5 / sd(x_k))``    rstanarm's autoscaled ``normal(0, 2.5)``: one
                                                           sd of ``x_k`` moves the log odds (log rate)
                                                           by about 5 at most
``sd(term|group)`` (sd)    ``HalfStudentT(3, 2.5 / s_k)``  brms's ``student_t(3, 0, 2.5)`` for a GLMM's
                                                           sds (``s_k`` 1 for an intercept, else
                                                           ``sd(z_k)``): weakly informative, heavy tails
``cor(group)`` (cor)       ``LKJ(2)``                      as for the Gaussian models
``shape`` (negative        ``Exponential(1)``              rstanarm's ``prior_aux`` on the reciprocal
binomial only)                                             dispersion of ``neg_binomial_2``
=========================  ==============================  =============================================

Every default can be overridden by name or by class as for the Gaussian models
(:func:`~bayesmlm.bayes.prior_set.resolve_priors`), the class of the shape being ``"shape"``.
"""

from __future__ import annotations

import numpy as np

from bayesmlm.bayes.prior_set import PriorSet
from bayesmlm.bayes.priors import LKJ, Exponential, HalfStudentT, Normal, Prior
from bayesmlm.design.covariance import RandomStructure
from bayesmlm.design.evaluate import Design
from bayesmlm.design.names import cor_names, sd_names
from bayesmlm.families.base import Family

__all__ = ["LINK_SCALE", "default_glmm_priors"]

#: the scale of the defaults on the link scale (rstanarm's and brms's 2.5)
LINK_SCALE = 2.5


def _sd(values: np.ndarray) -> float:
    return float(np.std(values, ddof=1)) if len(values) > 1 else 0.0


def default_glmm_priors(design: Design, structure: RandomStructure, family: Family) -> PriorSet:
    """Compute the default priors of a generalized model (see the module docstring).

    Examples
    --------
    >>> import bayesmlm as bm
    >>> m = bm.Model("TICKS ~ YEAR + cHEIGHT + (1 | LOCATION)", bm.load_dataset("grouseticks"),
    ...              family="negativebinomial")
    >>> ps = default_glmm_priors(m.design, m.structure, m.family)
    >>> ps["Intercept"], ps["cHEIGHT"], ps["sd(Intercept|LOCATION)"], ps["shape"]
    (Normal(mu=0, sigma=2.5), Normal(mu=0, sigma=0.06953), HalfStudentT(nu=3, sigma=2.5), Exponential(lam=1))
    """
    fixed: dict[str, Prior] = {}
    for j, name in enumerate(design.fixed_names):
        sd_x = _sd(np.asarray(design.X)[:, j])
        scale = LINK_SCALE if name == "Intercept" or sd_x == 0 else LINK_SCALE / sd_x
        fixed[name] = Normal(0.0, scale)
    sd: dict[str, Prior] = {}
    cor: dict[str, Prior] = {}
    for factor, names, cnames in zip(
        structure.factors, sd_names(structure), cor_names(structure), strict=True
    ):
        for k, (term, name) in enumerate(zip(factor.term_names, names, strict=True)):
            s_k = 1.0 if term == "Intercept" else _sd(factor.Z[:, k])
            sd[name] = HalfStudentT(3.0, LINK_SCALE / s_k if s_k > 0 else LINK_SCALE)
        for name in cnames:
            if name is not None:
                cor[name] = LKJ(2.0)
    extra = {family.dispersion_name: Exponential(1.0)} if family.n_dispersion else {}
    priors = PriorSet(fixed=fixed, sd=sd, cor=cor, sigma=None, source={}, family_params=extra)
    priors.source.update(dict.fromkeys(priors.names, "default"))
    return priors
