"""Stage 4a, REML/ML: every estimate at a given theta, from the blocked factorisation, in NumPy.

At the optimal ``theta`` the factorisation (:func:`bayesmlm.linalg.factorize.factorize`) gives the
profiled ``σ²`` and ``β``, ``vcov(β) = σ² (R_Xᵀ R_X)⁻¹``, and the conditional modes and covariances of
the random effects; computing them here, once, keeps them exactly consistent with the objective that
was minimised.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.linalg as sla

from bayesmlm.design.covariance import RandomStructure
from bayesmlm.design.crossprod import CrossProducts
from bayesmlm.linalg.factorize import BlockedFactor, factorize
from bayesmlm.linalg.system import blocked_system
from bayesmlm.linalg.threads import single_threaded

__all__ = ["Estimates", "conditional_modes", "estimates_at", "sd_and_correlation"]


def sd_and_correlation(cov: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Return the sds and the correlation matrix of a covariance matrix (NaN where an sd is 0)."""
    sd = np.sqrt(np.clip(np.diag(cov), 0.0, None))
    with np.errstate(invalid="ignore", divide="ignore"):
        return sd, np.where(np.outer(sd, sd) > 0, cov / np.outer(sd, sd), np.nan)


@dataclass(frozen=True, eq=False)
class Estimates:
    """The estimates of a linear mixed model at one theta.

    Attributes
    ----------
    theta : ndarray
    sigma2 : float
        Residual variance (profiled: ``r² / (n - p)`` for REML, ``r² / n`` for ML).
    beta : ndarray, shape (p,)
    vcov : ndarray, shape (p, p)
    modes : dict
        Group -> conditional modes of the random effects, shape (levels, q).
    condvar : dict
        Group -> conditional covariances, shape (levels, q, q).
    covariances : dict
        Group -> the random effects' covariance ``σ² Λ Λᵀ``, shape (q, q).
    scale : float
        The response's unit in the internal parameterisation (1 for the data's own columns). Variances
        of a response in units near 1e200 or 1e-170 overflow or underflow as floats; standard deviations,
        correlations and standard errors are computed from the unit-scale values (``unit_*``, the
        variances divided by ``scale²``) and stay exact.
    """

    theta: np.ndarray
    sigma2: float
    beta: np.ndarray
    vcov: np.ndarray
    modes: dict
    condvar: dict
    covariances: dict
    scale: float = 1.0
    unit_sigma2: float | None = None
    unit_vcov: np.ndarray | None = None
    unit_covariances: dict | None = None

    @property
    def sigma(self) -> float:
        """Residual standard deviation."""
        unit = self.sigma2 if self.unit_sigma2 is None else self.unit_sigma2
        return float(self.scale * np.sqrt(unit))

    @property
    def se(self) -> np.ndarray:
        """Standard errors of the fixed effects."""
        unit = self.vcov if self.unit_vcov is None else self.unit_vcov
        return self.scale * np.sqrt(np.diag(unit))

    def sd_cor(self, group: str) -> tuple[np.ndarray, np.ndarray]:
        """Return the random effects' sds (q,) and correlation matrix (q, q) for ``group``."""
        unit = (self.covariances if self.unit_covariances is None else self.unit_covariances)[group]
        sd, cor = sd_and_correlation(unit)
        return self.scale * sd, cor


def _rest_rows(values: np.ndarray, system, lams, transpose: bool) -> np.ndarray:
    """``Λ_R v`` (or ``Λ_Rᵀ v``) for a vector over the trailing factors' rows."""
    out = np.array(values, dtype=float)
    for f, lam in zip(system.rest, lams, strict=True):
        block = out[f.start : f.stop].reshape(f.levels, f.q)
        out[f.start : f.stop] = (block @ (lam if transpose else lam.T)).reshape(-1)
    return out


def conditional_modes(
    factor: BlockedFactor, stats: CrossProducts, beta: np.ndarray
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Spherical conditional modes ``u`` and the diagonal blocks of ``(Λᵀ Zᵀ Z Λ + I)⁻¹``, per factor.

    The modes solve ``(Λᵀ Zᵀ Z Λ + I) u = Λᵀ Zᵀ (y − X β)``: the other factors' first, through the
    trailing block's factor ``L_R``, then each level of the first factor through its ``A_j``. The
    inverse blocks are ``(L_R L_Rᵀ)⁻¹``'s for the other factors and, for level ``j`` of the first,
    ``A_j⁻¹ + A_j⁻¹ Λ₁ᵀ G_jᵀ Λ_R (L_R L_Rᵀ)⁻¹ Λ_Rᵀ G_j Λ₁ A_j⁻¹``.
    Both lists are in ``structure.factors`` order, shapes ``(levels, q)`` and ``(levels, q, q)``.
    """
    system, lam1, ainv = factor.system, factor.lam_first, factor.ainv
    r1 = (stats.zty1 - stats.ztx1 @ beta) @ lam1  # Λ₁ᵀ Z₁ᵀ(y − Xβ) per level, (m1, q1)
    if not system.rest:
        return [np.einsum("jab,jb->ja", ainv, r1)], [ainv]
    n_rest = system.n_rest
    lower = factor.lower()[:n_rest, :n_rest]
    r_rest = _rest_rows(stats.zty_rest - stats.ztx_rest @ beta, system, factor.lam_rest, transpose=True)
    through_first = np.einsum("jab,jb->ja", ainv, r1) @ lam1.T  # Λ₁ A_j⁻¹ r1_j
    coupled = system.coupling.times(through_first)[:n_rest]
    rhs = r_rest - _rest_rows(coupled, system, factor.lam_rest, transpose=True)
    u_rest = sla.cho_solve((lower, True), rhs)
    back = np.zeros(system.n_trailing)
    back[:n_rest] = _rest_rows(u_rest, system, factor.lam_rest, transpose=False)
    u1 = np.einsum("jab,jb->ja", ainv, r1 - system.coupling.transpose_times(back) @ lam1)
    inv_rest = sla.cho_solve((lower, True), np.eye(n_rest))
    spread = np.zeros((system.n_trailing, system.n_trailing))
    spread[:n_rest, :n_rest] = _congruence_rest(inv_rest, system, factor.lam_rest)
    middle = lam1.T @ system.coupling.inner(spread) @ lam1
    modes, blocks = [u1], [ainv + ainv @ middle @ ainv]
    for f in system.rest:
        modes.append(u_rest[f.start : f.stop].reshape(f.levels, f.q))
        block = inv_rest[f.start : f.stop, f.start : f.stop].reshape(f.levels, f.q, f.levels, f.q)
        blocks.append(np.einsum("lalb->lab", block))
    return modes, blocks


def _congruence_rest(M: np.ndarray, system, lams) -> np.ndarray:
    """``Λ_R M Λ_Rᵀ`` for a symmetric matrix over the trailing factors' rows."""
    left = np.array(M)
    for f, lam in zip(system.rest, lams, strict=True):
        rows = slice(f.start, f.stop)
        left[rows, :] = (lam @ left[rows, :].reshape(f.levels, f.q, -1)).reshape(-1, left.shape[1])
    for f, lam in zip(system.rest, lams, strict=True):
        cols = slice(f.start, f.stop)
        n = left.shape[0]
        left[:, cols] = (left[:, cols].reshape(n, f.levels, f.q) @ lam.T).reshape(n, -1)
    return left


@single_threaded()
def estimates_at(
    theta: np.ndarray, structure: RandomStructure, stats: CrossProducts, reml: bool
) -> Estimates:
    """Compute every estimate at ``theta`` (REML's ``σ²`` divides by ``n - p``, ML's by ``n``).

    ``theta`` is lme4's, for the user's columns. For statistics formed in the internal
    parameterisation (``stats.scaling``, :mod:`bayesmlm.design.scaling`) the estimates are computed
    there and mapped back exactly, so everything returned is for the user's columns too.

    Examples
    --------
    >>> import numpy as np, bayesmlm as bm
    >>> m = bm.Model("Yield ~ 1 + (1 | Batch)", bm.load_dataset("Dyestuff"))
    >>> est = estimates_at(np.array([0.848327]), m.structure, m.cross_products, reml=True)
    >>> round(float(np.sqrt(est.sigma2)), 2), round(float(est.beta[0]), 1)  # lme4: 49.51, 1527.5
    (49.51, 1527.5)
    """
    user_theta = np.asarray(theta, dtype=float)
    scaling = stats.scaling
    if scaling is not None:
        theta = scaling.theta_to_internal(structure, user_theta)
    factor = factorize(theta, blocked_system(structure, stats))
    if factor.L is None:
        raise FloatingPointError("the mixed-model equations are singular at this theta")
    n, p, n_rest = stats.n, stats.p, factor.system.n_rest
    lower = factor.lower()
    sigma2 = float(lower[-1, -1] ** 2) / (n - p if reml else n)
    if p:
        R_X = lower[n_rest : n_rest + p, n_rest : n_rest + p]
        beta = sla.solve_triangular(R_X.T, lower[-1, n_rest : n_rest + p], lower=False)
        rx_inv = sla.solve_triangular(R_X, np.eye(p), lower=True)
        vcov = sigma2 * (rx_inv.T @ rx_inv)
    else:
        beta, vcov = np.zeros(0), np.zeros((0, 0))
    spherical, inverse_blocks = conditional_modes(factor, stats, beta)
    modes, condvar = {}, {}
    for f, u, inv in zip(structure.factors, spherical, inverse_blocks, strict=True):
        lam = f.relative_factor(theta)
        modes[f.group] = u @ lam.T
        condvar[f.group] = sigma2 * (lam @ inv @ lam.T)
    covariances = {f.group: f.covariance(theta, sigma2) for f in structure.factors}
    if scaling is None:
        return Estimates(theta, sigma2, beta, vcov, modes, condvar, covariances)
    groups = [f.group for f in structure.factors]
    with np.errstate(over="ignore", under="ignore"):  # variances of a response in units of 1e±200
        s2 = np.float64(scaling.y_scale) ** 2
        unit_vcov = scaling.unit_vcov(vcov)
        unit_cov = {g: scaling.unit_covariance(k, covariances[g]) for k, g in enumerate(groups)}
        return Estimates(
            theta=user_theta,
            sigma2=float(sigma2 * s2),
            beta=scaling.beta_to_user(beta),
            vcov=unit_vcov * s2,
            modes={g: scaling.effects_to_user(k, modes[g]) for k, g in enumerate(groups)},
            condvar={g: scaling.covariance_to_user(k, condvar[g]) for k, g in enumerate(groups)},
            covariances={g: c * s2 for g, c in unit_cov.items()},
            scale=float(scaling.y_scale),
            unit_sigma2=sigma2,
            unit_vcov=unit_vcov,
            unit_covariances=unit_cov,
        )
