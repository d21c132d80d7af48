"""Stage 3, linear algebra: the penalised weighted normal equations of PIRLS, factorised in numpy.

Penalised IRLS (:mod:`bayesmlm.reml.pirls`) solves, at every step, a system whose matrix is

    [ M₁ᵀWM₁ + I    M₁ᵀWR     ]        M₁ = Z₁Λ₁: the first factor's columns (most levels)
    [ RᵀWM₁         RᵀWR + P  ]        R  = [Z_RΛ_R | X]: the other factors' columns, then X

with ``W`` the IRLS weights and ``P`` the identity on the random effects (0 on the fixed effects, which
are unpenalised). As in :mod:`bayesmlm.linalg.blocked`, the first factor's block is block diagonal
(one ``q₁×q₁`` matrix per level) and is factorised level by level; the rest enters through its dense
Schur complement ``S = RᵀWR + P − C A₁₁⁻¹ Cᵀ`` (``C = RᵀWM₁``, kept by level of the first factor).
``log|MᵀWM + I|`` (lme4's ``ldL2``, the random effects' part only) is the first block's
log-determinant plus that of the leading ``q_R × q_R`` block of ``S``, because the Schur complement
of the random effects' own matrix is that block.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.linalg as sla

__all__ = ["BlockedFactor", "factorise"]


@dataclass(frozen=True, eq=False)
class BlockedFactor:
    """The factorised system: per-level Cholesky factors, the coupling block and the Schur factor.

    Attributes
    ----------
    L1 : ndarray, shape (m, q, q)
        Lower Cholesky factors of the first factor's blocks ``A₁₁,ⱼ``.
    A1_inv : ndarray, shape (m, q, q)
        Their inverses.
    C : ndarray, shape (r, m, q)
        ``RᵀWM₁``, by level of the first factor.
    LS : ndarray, shape (r, r)
        Lower Cholesky factor of the Schur complement ``S``.
    n_penalised : int
        How many of the ``r`` rest columns are random effects (the others are fixed effects).
    """

    L1: np.ndarray
    A1_inv: np.ndarray
    C: np.ndarray
    LS: np.ndarray
    n_penalised: int

    @property
    def logdet(self) -> float:
        """``log|MᵀWM + I|`` of the random effects (lme4's ``ldL2``)."""
        first = 2.0 * np.sum(np.log(np.diagonal(self.L1, axis1=1, axis2=2)))
        rest = 2.0 * np.sum(np.log(np.diag(self.LS)[: self.n_penalised]))
        return float(first + rest)

    def solve(self, rhs1: np.ndarray, rhs_rest: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Solve the system for right-hand sides ``(m, q)`` and ``(r,)``; return ``(x₁, x_R)``."""
        t1 = np.einsum("gij,gj->gi", self.A1_inv, rhs1)
        if self.LS.shape[0] == 0:
            return t1, np.zeros(0)
        y = rhs_rest - np.einsum("rgk,gk->r", self.C, t1)
        x_rest = sla.cho_solve((self.LS, True), y)
        back = np.einsum("rgk,r->gk", self.C, x_rest)
        return t1 - np.einsum("gij,gj->gi", self.A1_inv, back), x_rest

    def inverse_blocks(self) -> tuple[np.ndarray, np.ndarray]:
        """Return the random effects' blocks of ``(MᵀWM + I)⁻¹``: per first-factor level, and the rest's.

        Shapes ``(m, q, q)`` and ``(q_R, q_R)``; the fixed effects' rows are not part of this system.
        """
        m, q, _ = self.A1_inv.shape
        k = self.n_penalised
        if k == 0:
            return self.A1_inv.copy(), np.zeros((0, 0))
        # the random effects' own system: its Schur complement is S's leading block, factor LS's
        LS = self.LS[:k, :k]
        CA = np.einsum("rgk,gkl->rgl", self.C[:k], self.A1_inv).reshape(k, m * q)
        W = sla.solve_triangular(LS, CA, lower=True).reshape(k, m, q)
        first = self.A1_inv + np.einsum("rgi,rgj->gij", W, W)
        LS_inv = sla.solve_triangular(LS, np.eye(k), lower=True)
        return first, LS_inv.T @ LS_inv


def factorise(A11: np.ndarray, C: np.ndarray, D: np.ndarray, n_penalised: int) -> BlockedFactor:
    """Factorise ``[[A₁₁, Cᵀ], [C, D]]`` (``A₁₁`` block diagonal ``(m, q, q)``, ``C`` ``(r, m, q)``).

    Raises
    ------
    numpy.linalg.LinAlgError
        If the matrix is not positive definite (a fixed-effects matrix without full rank under
        these weights).

    Examples
    --------
    >>> A11 = np.array([[[2.0]], [[3.0]]])
    >>> C = np.array([[[1.0], [1.0]]])
    >>> f = factorise(A11, C, np.array([[4.0]]), 1)
    >>> x1, xr = f.solve(np.array([[1.0], [1.0]]), np.array([1.0]))
    >>> full = np.array([[2.0, 0, 1], [0, 3, 1], [1, 1, 4]])
    >>> bool(np.allclose(full @ np.r_[x1.ravel(), xr], 1.0))
    True
    >>> round(float(f.logdet - np.log(np.linalg.det(full))), 9)
    0.0
    """
    if A11.shape[1] == 1:  # scalar blocks: no batched LAPACK calls
        if np.any(A11 <= 0):
            raise np.linalg.LinAlgError("the first factor's blocks are not positive definite")
        L1 = np.sqrt(A11)
        A1_inv = 1.0 / A11
    else:
        L1 = np.linalg.cholesky(A11)
        L1_inv = np.linalg.inv(L1)
        A1_inv = np.swapaxes(L1_inv, 1, 2) @ L1_inv
    if D.shape[0]:
        T = np.einsum("rgk,gkl->rgl", C, A1_inv)
        S = D - np.einsum("rgl,sgl->rs", T, C)
        LS = np.linalg.cholesky((S + S.T) / 2)
    else:
        LS = np.zeros((0, 0))
    return BlockedFactor(L1, A1_inv, C, LS, n_penalised)
