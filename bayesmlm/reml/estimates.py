"""Stage 4a, REML/ML: every estimate at a given theta, from the blocked factorisation, in NumPy.

At the optimal ``theta`` the factorisation (:func:`bayesmlm.linalg.blocked.decompose`) gives the
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
from bayesmlm.reml.objective import compile_at_theta

__all__ = ["Estimates", "conditional_modes", "estimates_at"]


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
        sd = np.sqrt(np.clip(np.diag(unit), 0.0, None))
        with np.errstate(invalid="ignore", divide="ignore"):
            cor = np.where(np.outer(sd, sd) > 0, unit / np.outer(sd, sd), np.nan)
        return self.scale * sd, cor


def _evaluate_decomposition(theta: np.ndarray, structure: RandomStructure, stats: CrossProducts):
    values = compile_at_theta("decomposition", structure, stats)(theta)
    return {k: np.asarray(v) for k, v in values.items()}


def _upper_solve_batched(L: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Solve ``L_gᵀ x_g = b_g`` for every level ``g`` (``L``: (m, q, q) lower, ``b``: (m, q))."""
    return np.linalg.solve(np.swapaxes(L, 1, 2), b[..., None])[..., 0]


def conditional_modes(
    dec: dict, structure: RandomStructure, theta: np.ndarray, beta: np.ndarray, sigma2: float
) -> tuple[dict, dict]:
    """Conditional modes ``b = Λu`` and conditional covariances ``σ² Λ (LLᵀ)⁻¹ Λᵀ`` per level."""
    first, rest = structure.factors[0], structure.factors[1:]
    d1 = dec["c1_y"] - dec["c1_x"] @ beta  # (m1, q1)
    L1 = dec["L1"]
    L1_inv = np.linalg.inv(L1)  # (m1, q1, q1)
    u: dict[str, np.ndarray] = {}
    inv_blocks: dict[str, np.ndarray] = {}
    if rest:
        L_rest = dec["L_rest"]
        d_rest = dec["cr_y"] - dec["cr_x"] @ beta
        u_rest = sla.solve_triangular(L_rest, d_rest, lower=True, trans="T")
        C_t = dec["C_t"]  # (m1, q1, qR)
        u1 = _upper_solve_batched(L1, d1 - C_t @ u_rest)
        # diagonal blocks of (L Lᵀ)⁻¹ for the first factor: L1⁻ᵀL1⁻¹ + Wᵀ W, W = L_R⁻¹ C L1⁻¹
        m1, q1, q_rest = C_t.shape
        Y = sla.solve_triangular(L_rest, C_t.reshape(m1 * q1, q_rest).T, lower=True)
        W = np.einsum("rgk,gkl->grl", Y.reshape(q_rest, m1, q1), L1_inv)
        inv_blocks[first.group] = np.swapaxes(L1_inv, 1, 2) @ L1_inv + np.swapaxes(W, 1, 2) @ W
        L_rest_inv = sla.solve_triangular(L_rest, np.eye(q_rest), lower=True)
        start = 0
        for f in rest:
            width = f.n_levels * f.q
            u[f.group] = u_rest[start : start + width].reshape(f.n_levels, f.q)
            K = L_rest_inv[:, start : start + width].reshape(q_rest, f.n_levels, f.q)
            inv_blocks[f.group] = np.einsum("rgk,rgl->gkl", K, K)
            start += width
    else:
        u1 = _upper_solve_batched(L1, d1)
        inv_blocks[first.group] = np.swapaxes(L1_inv, 1, 2) @ L1_inv
    u[first.group] = u1
    modes, condvar = {}, {}
    for f in structure.factors:
        lam = f.relative_factor(theta)
        modes[f.group] = u[f.group] @ lam.T
        condvar[f.group] = sigma2 * (lam @ inv_blocks[f.group] @ lam.T)
    return modes, condvar


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
    dec = _evaluate_decomposition(theta, structure, stats)
    n, p = stats.n, stats.p
    sigma2 = float(dec["r2"]) / (n - p if reml else n)
    beta = dec["beta"]
    if p:
        rx_inv = sla.solve_triangular(dec["R_X"], np.eye(p), lower=True)
        vcov = sigma2 * (rx_inv.T @ rx_inv)
    else:
        vcov = np.zeros((0, 0))
    modes, condvar = conditional_modes(dec, structure, theta, beta, sigma2)
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
