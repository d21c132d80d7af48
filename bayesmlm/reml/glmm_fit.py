"""Stage 4a, REML/ML: the maximum-likelihood fit of a GLMM, glmer's Laplace approximation or quadrature.

:func:`fit_glmm` chains the stages: the family's reading of the response → penalised IRLS in
:class:`~bayesmlm.reml.pirls.GLMMTerms` form with standardised predictors → glmer's two-stage
optimisation (:func:`~bayesmlm.reml.glmm_optimize.optimize_glmm`) → the estimates
(:mod:`bayesmlm.reml.glmm_estimates`) → :class:`~bayesmlm.reml.glmm_results.GeneralizedLikelihoodFit`.
For the negative binomial the shape is estimated with the other parameters (glmer.nb's optimum, which
glmer.nb reaches by alternating), and the standard errors come from the Hessian with it held, as
glmer.nb's final fit reports them.
"""

from __future__ import annotations

import numpy as np
from threadpoolctl import threadpool_limits

from bayesmlm.design.covariance import RandomStructure
from bayesmlm.design.evaluate import Design
from bayesmlm.exceptions import ArgumentError
from bayesmlm.families.base import Family
from bayesmlm.reml.glmm_estimates import check_agq, estimates_at_optimum, glmm_terms
from bayesmlm.reml.glmm_optimize import optimize_glmm
from bayesmlm.reml.glmm_results import GeneralizedLikelihoodFit

__all__ = ["GeneralizedLikelihoodFit", "fit_glmm"]


def fit_glmm(
    design: Design,
    structure: RandomStructure,
    family: Family,
    n_agq: int = 1,
    theta0: np.ndarray | None = None,
    as_glmer: bool = True,
) -> GeneralizedLikelihoodFit:
    """Fit a GLMM by maximum likelihood: glmer's Laplace approximation, or ``n_agq``-point quadrature.

    Parameters
    ----------
    design, structure
        The model (from :class:`~bayesmlm.Model` with a generalized family).
    family : Family
    n_agq : int
        1: the Laplace approximation; 2 to 25: adaptive Gauss-Hermite quadrature (one scalar random
        effect only).
    theta0 : ndarray, optional
        Starting relative covariance parameters.
    as_glmer : bool
        Evaluate the Laplace approximation as glmer does (the default; see
        :func:`~bayesmlm.reml.pirls.pirls_as_glmer`), or converge the modes at every evaluation.
        The negative binomial always uses the converged modes: glmer.nb's last refit starts
        PIRLS at the previous fit's (already converged) linear predictor.

    Returns
    -------
    GeneralizedLikelihoodFit

    Examples
    --------
    >>> import bayesmlm as bm
    >>> m = bm.Model("cbind(incidence, size - incidence) ~ period + (1 | herd)", bm.load_dataset("cbpp"),
    ...              family="binomial")
    >>> fit = m.fit_ml()
    >>> round(fit.loglik, 3), round(float(fit.varcorr.loc[0, "sdcor"]), 4)  # lme4: -92.027, 0.6421
    (-92.027, 0.6421)
    """
    n_agq = check_agq(n_agq, structure)
    if theta0 is not None and np.shape(theta0) != (structure.n_theta,):
        raise ArgumentError(f"theta0 must have {structure.n_theta} entries, not shape {np.shape(theta0)}")
    terms, scaling = glmm_terms(design, structure, family)
    nb = family.n_dispersion > 0
    # the systems are small: BLAS threads only contend (7x slower on a busy 2-core machine)
    with threadpool_limits(limits=1, user_api="blas"):
        opt, _ = optimize_glmm(terms, n_agq, theta0, estimate_dispersion=nb, as_glmer=as_glmer and not nb)
        estimates = estimates_at_optimum(terms, scaling, opt)
    return GeneralizedLikelihoodFit(design, structure, family, opt, estimates)
