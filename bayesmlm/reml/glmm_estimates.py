"""Stage 4a, REML/ML: a GLMM's estimates at its optimum, on the original scale of the predictors.

The standard errors of the fixed effects are lme4's: ``2 ×`` the fixed-effect block of the inverse
Hessian of the deviance in ``(θ, β)``. Where that Hessian is not positive definite, or the fit is on
the boundary (where lme4 does not compute it), they come from the penalised least-squares system at
the modes (lme4's ``RX``); :attr:`GLMMEstimates.vcov_source` says which. The conditional modes and
their covariances are those of converged penalised IRLS at the optimum.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from bayesmlm.design.covariance import RandomStructure
from bayesmlm.design.evaluate import Design
from bayesmlm.exceptions import ArgumentError, FitError
from bayesmlm.families.base import Family
from bayesmlm.reml.glmm_optimize import GLMMOptSummary
from bayesmlm.reml.laplace import MAX_AGQ, Standardisation
from bayesmlm.reml.pirls import GLMMTerms, fixed_effects_factor, pirls

__all__ = ["GLMMEstimates", "check_agq", "estimates_at_optimum", "glmm_terms", "is_singular"]

#: a diagonal entry of Λ below this counts as on the boundary (lme4's ``isSingular`` tolerance)
BOUNDARY_TOL = 1e-4


def is_singular(structure: RandomStructure, theta: np.ndarray) -> bool:
    """Whether a diagonal entry of a relative covariance factor is below 1e-4 (lme4's rule)."""
    return any(
        np.any(np.abs(theta[f.theta_slice][f.is_diagonal_entry]) < BOUNDARY_TOL) for f in structure.factors
    )


@dataclasses.dataclass(frozen=True, eq=False)
class GLMMEstimates:
    """Everything a GLMM fit reports, on the original scale of the predictors.

    Attributes
    ----------
    theta : ndarray
        Relative covariance parameters: the random effects' Cholesky factor entries.
    beta : ndarray
    vcov : ndarray
        Covariance of the fixed-effect estimates.
    vcov_source : str
        ``"Hessian"`` or ``"RX"`` (see the module docstring).
    dispersion : float or None
        The negative binomial's shape ``θ``.
    modes, condvar, covariances : dict
        Per group: conditional modes ``(levels, q)``, their conditional covariances ``(levels, q, q)``,
        and the random effects' covariance ``ΛΛᵀ``.
    eta, mu, working_weights : ndarray
        Linear predictor, mean and IRLS weights at the modes.
    conditional_deviance : float
        The sum of the deviance residuals at the modes (lme4's ``deviance()`` of a GLMM).
    theta_beta_vcov : ndarray or None
        Covariance of ``(θ, β)`` (``2 ×`` the inverse Hessian of the deviance, ``β`` on the original
        scale), whose ``β`` block is ``vcov``; None where ``vcov`` does not come from the Hessian.
    """

    theta: np.ndarray
    beta: np.ndarray
    vcov: np.ndarray
    vcov_source: str
    dispersion: float | None
    modes: dict
    condvar: dict
    covariances: dict
    eta: np.ndarray
    mu: np.ndarray
    working_weights: np.ndarray
    conditional_deviance: float
    theta_beta_vcov: np.ndarray | None = None


def glmm_terms(
    design: Design, structure: RandomStructure, family: Family
) -> tuple[GLMMTerms, Standardisation]:
    """Return the model in PIRLS form, with standardised predictors, and the standardisation."""
    X = np.asarray(design.X)
    scaling = Standardisation.of(X, design.fixed_names)
    offset = np.zeros(design.n) if design.offset is None else np.asarray(design.offset)
    return GLMMTerms(family, family.glm_data(design), scaling.apply(X), offset, structure), scaling


def check_agq(n_agq, structure: RandomStructure) -> int:
    """Refuse a number of quadrature points outside 1..25, or quadrature for a model it cannot serve."""
    if isinstance(n_agq, bool) or not isinstance(n_agq, int | np.integer) or not 1 <= n_agq <= MAX_AGQ:
        raise ArgumentError(f"n_agq must be a whole number from 1 (Laplace) to {MAX_AGQ}, not {n_agq!r}")
    factors = structure.factors
    if n_agq > 1 and (len(factors) != 1 or factors[0].q != 1):
        terms = ", ".join(str(b.term) for f in factors for b in f.source_blocks)
        raise FitError(
            f"adaptive Gauss-Hermite quadrature (n_agq={n_agq}) needs a single scalar random effect, "
            f"such as (1 | g); this model has {terms}. Use the Laplace approximation (n_agq=1)"
        )
    return int(n_agq)


def estimates_at_optimum(terms: GLMMTerms, scaling: Standardisation, opt: GLMMOptSummary) -> GLMMEstimates:
    """Compute every estimate at the optimum ``opt.x`` (see the module docstring)."""
    structure, k, p = terms.structure, terms.structure.n_theta, terms.p
    theta, beta_std = opt.x[:k], opt.x[k : k + p]
    singular = is_singular(structure, theta)
    dispersion = float(np.exp(opt.x[-1])) if terms.family.n_dispersion else None
    r = pirls(terms, theta, beta_std, dispersion)
    J = scaling.jacobian
    vcov, source, joint = None, "RX", None
    if not singular and p:
        try:
            full = np.linalg.inv(opt.hessian)
            inverse = full[k:, k:]
            candidate = J @ (inverse + inverse.T) @ J.T
            if np.all(np.isfinite(candidate)) and np.linalg.eigvalsh(candidate).min() > 0:
                vcov, source = candidate, "Hessian"
                if full.shape == (k + p, k + p):
                    T = np.block([[np.eye(k), np.zeros((k, p))], [np.zeros((p, k)), J]])
                    joint = T @ (full + full.T) @ T.T
        except np.linalg.LinAlgError:
            pass
    if vcov is None:
        L_x = fixed_effects_factor(terms, theta, r.weights)
        L_inv = np.linalg.inv(L_x) if p else np.zeros((0, 0))
        vcov = J @ (L_inv.T @ L_inv) @ J.T
    first_blocks, rest_inverse = r.factor.inverse_blocks()
    modes, condvar, covariances, start = {}, {}, {}, 0
    for index, f in enumerate(structure.factors):
        lam = f.relative_factor(theta)
        width = f.n_levels * f.q
        u = r.u[start : start + width].reshape(f.n_levels, f.q)
        if index == 0:
            blocks = first_blocks
        else:
            offset = start - terms.q_first
            block = rest_inverse[offset : offset + width, offset : offset + width]
            blocks = np.stack(
                [block[j * f.q : (j + 1) * f.q, j * f.q : (j + 1) * f.q] for j in range(f.n_levels)]
            )
        modes[f.group] = u @ lam.T
        condvar[f.group] = lam @ blocks @ lam.T
        covariances[f.group] = f.covariance(theta, 1.0)
        start += width
    beta = J @ beta_std
    return GLMMEstimates(
        theta,
        beta,
        vcov,
        source,
        dispersion,
        modes,
        condvar,
        covariances,
        r.eta,
        r.mu,
        r.weights,
        float(np.sum(r.deviance_residuals)),
        joint,
    )
