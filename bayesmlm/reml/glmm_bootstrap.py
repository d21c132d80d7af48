"""Stage 4a, REML/ML: the parametric bootstrap of a GLMM fit: responses simulated from it, refitted.

Each replicate draws the random effects from their estimated covariance and the responses from the
family at the resulting means (:meth:`~bayesmlm.families.base.Family.simulate`), and refits by the same
method from the fit's ``θ``; the replicates' parameters feed the ICC interval and
``compare_estimates`` as :class:`~bayesmlm.draws.arrays.ParameterDraws` do.
"""

from __future__ import annotations

import dataclasses
import warnings

import numpy as np

from bayesmlm.reml.glmm_estimates import estimates_at_optimum, glmm_terms
from bayesmlm.reml.glmm_optimize import optimize_glmm

__all__ = ["simulate_and_refit"]


def simulate_and_refit(fit, n_boot: int, seed=None) -> tuple[list[np.ndarray], np.ndarray, np.ndarray | None]:
    """Refit ``n_boot`` responses simulated from ``fit``; return covariances per factor, ``β``, shapes.

    Returns
    -------
    list of ndarray, ndarray, ndarray or None
        ``(n_boot, q, q)`` per factor, ``(n_boot, p)``, and the negative binomial's shapes (None for
        other families).
    """
    rng = np.random.default_rng(seed)
    design, structure, family, est = fit.design, fit.structure, fit.family, fit.estimates
    covs = [np.empty((n_boot, f.q, f.q)) for f in structure.factors]
    beta, disp = np.empty((n_boot, design.p)), np.empty(n_boot)
    data = family.glm_data(design)
    fixed = np.asarray(design.X) @ est.beta + (0.0 if design.offset is None else np.asarray(design.offset))
    nb = family.n_dispersion > 0
    for b in range(n_boot):
        eta = fixed.copy()
        for f in structure.factors:
            chol = np.linalg.cholesky(est.covariances[f.group] + 1e-12 * np.eye(f.q))
            eta += np.sum(f.Z * (rng.standard_normal((f.n_levels, f.q)) @ chol.T)[f.codes], axis=1)
        y = family.simulate(rng, family.link.linkinv(eta), data, est.dispersion).astype(float)
        terms, scaling = glmm_terms(dataclasses.replace(design, y=y), structure, family)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            opt, _ = optimize_glmm(terms, fit.n_agq, fit.theta, est.dispersion, nb, as_glmer=not nb)
            refit = estimates_at_optimum(terms, scaling, opt)
        for k, f in enumerate(structure.factors):
            covs[k][b] = refit.covariances[f.group]
        beta[b], disp[b] = refit.beta, refit.dispersion if nb else np.nan
    return covs, beta, disp if nb else None
