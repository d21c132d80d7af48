"""Stage 4a, REML/ML: the parametric bootstrap of a REML/ML fit's population-level parameters.

Data sets are simulated from the fitted model (fixed effects, random effects drawn from their
estimated covariance, residual noise), each refitted the same way from the fit's theta, and the
estimates collected as :class:`~bayesmlm.draws.arrays.ParameterDraws`, one row per replicate: the
ICC interval and ``compare_estimates`` read them. Only the response's cross-products are recomputed per
replicate (:func:`~bayesmlm.design.crossprod.with_response`).
"""

from __future__ import annotations

import warnings

import numpy as np

from bayesmlm.design.covariance import RandomStructure
from bayesmlm.design.crossprod import CrossProducts, with_response
from bayesmlm.design.evaluate import Design
from bayesmlm.draws.arrays import ParameterDraws
from bayesmlm.reml.estimates import estimates_at
from bayesmlm.reml.optimize import optimize_theta

__all__ = ["parametric_bootstrap"]


def parametric_bootstrap(
    design: Design,
    structure: RandomStructure,
    stats: CrossProducts,
    estimate: ParameterDraws,
    theta: np.ndarray,
    reml: bool,
    n_boot: int,
    seed=None,
) -> ParameterDraws:
    """Parameters of ``n_boot`` data sets simulated from a fit's ``estimate`` and refitted the same way.

    Parameters
    ----------
    design, structure, stats
        The model and its cross-products.
    estimate : ParameterDraws
        The fit's estimates, as one draw.
    theta : ndarray
        The fit's theta: each refit starts there.
    reml : bool
        Refit by REML (else ML).
    n_boot : int
        Replicates (0 gives empty draws).
    seed : int, optional

    Returns
    -------
    ParameterDraws
        One row per replicate.
    """
    if n_boot:
        design.require_rows("the parametric bootstrap (n_boot > 0; icc(n_boot=0) gives the estimate)")
        mean = np.asarray(design.X) @ estimate.fixed[0] if design.p else np.zeros(design.n)
    rng = np.random.default_rng(seed)
    covs = [np.empty((n_boot, f.q, f.q)) for f in structure.factors]
    sigma2 = np.empty(n_boot)
    beta = np.empty((n_boot, design.p))
    for b in range(n_boot):
        y = mean + np.sqrt(estimate.sigma2[0]) * rng.standard_normal(design.n)
        for f, c in zip(structure.factors, estimate.covariances, strict=True):
            chol = np.linalg.cholesky(c[0] + 1e-12 * np.eye(f.q))
            effects = rng.standard_normal((f.n_levels, f.q)) @ chol.T
            y = y + np.sum(f.Z * effects[f.codes], axis=1)
        replicate = with_response(stats, design, structure, y)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            opt = optimize_theta(structure, replicate, reml=reml, theta0=theta)
        est = estimates_at(opt.theta, structure, replicate, reml=reml)
        for k, f in enumerate(structure.factors):
            covs[k][b] = est.covariances[f.group]
        sigma2[b], beta[b] = est.sigma2, est.beta
    return ParameterDraws(covs, sigma2, beta)
