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
    """

    theta: np.ndarray
    sigma2: float
    beta: np.ndarray
    vcov: np.ndarray
    modes: dict
    condvar: dict
    covariances: dict


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

    Examples
    --------
    >>> import numpy as np, bayesmlm as bm
    >>> m = bm.Model("Yield ~ 1 + (1 | Batch)", bm.load_dataset("Dyestuff"))
    >>> est = estimates_at(np.array([0.848327]), m.structure, m.cross_products, reml=True)
    >>> round(float(np.sqrt(est.sigma2)), 2), round(float(est.beta[0]), 1)  # lme4: 49.51, 1527.5
    (49.51, 1527.5)
    """
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
    return Estimates(theta, sigma2, beta, vcov, modes, condvar, covariances)
