"""Stage 3, linear algebra: the blocked Cholesky factorisation at theta, and the gradient of its log-diagonal.

In the layout of :mod:`bayesmlm.linalg.system`, at theta::

    A_j = Λ₁ᵀ B_j Λ₁ + I,   P_j = Λ₁ A_j⁻¹ Λ₁ᵀ        per level j of the first factor (q₁ × q₁)
    H   = G_TT − Σ_j G_j P_j G_jᵀ                      the coupling's outer product
    S   = Λ_Tᵀ H Λ_T + diag(I, 0, 0)                    Λ_T: the trailing factors' Λ, identity on X, y
    L Lᵀ = S                                            dense Cholesky (LAPACK), in place

so the Cholesky factor of the augmented system is ``[[chol(A_j), 0], [L_T1, L]]``, its log-determinant
``Σ_j log|A_j| + log|L|²``, and the last ``p + 1`` rows of ``L`` hold lme4's ``R_X``, ``c_x`` and ``r``
(``r²`` is the penalised residual sum of squares). ``L_T1`` itself is never formed.

:func:`logdiag_gradient` differentiates ``F = Σ_j log|A_j| + Σ_i ω_i log L_ii²`` (any weights on the
trailing diagonal; the profiled deviances are of this form) in reverse mode through the same steps::

    S̄ = L⁻ᵀ Ω L⁻¹,   H̄ = Λ_T S̄ Λ_Tᵀ,   P̄_j = −G_jᵀ H̄ G_j,   Λ̄_T = 2 H Λ_T S̄ (diagonal blocks)
    Λ̄₁ = 2 Σ_j [P̄_j Λ₁ A_j⁻¹ + B_j Λ₁ (A_j⁻¹ − A_j⁻¹ Λ₁ᵀ P̄_j Λ₁ A_j⁻¹)]

at the cost of a triangular inverse and product (LAPACK's ``trtri`` and ``lauum``) beside the
factorisation. Everything is NumPy and LAPACK on arrays whose sizes come from the data: no code is
generated or compiled for a model's structure.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.linalg import blas, lapack

from bayesmlm.linalg.coupling import DenseCoupling
from bayesmlm.linalg.system import BlockedSystem, FactorLayout

__all__ = ["BlockedFactor", "factorize", "logdiag_gradient"]


@dataclass(frozen=True, eq=False)
class BlockedFactor:
    """The blocked factorisation of a :class:`~bayesmlm.linalg.system.BlockedSystem` at one theta.

    Attributes
    ----------
    system : BlockedSystem
    theta : ndarray
    lam_first : ndarray, shape (q₁, q₁)
    lam_rest : tuple of ndarray
        ``Λ_f`` of each trailing factor.
    ainv : ndarray, shape (m₁, q₁, q₁)
        ``A_j⁻¹`` per level of the first factor.
    logdet_first : float
        ``Σ_j log|A_j|``.
    trailing : ndarray, shape (n_T, n_T)
        ``H`` (before ``Λ_T``); its lower triangle is set.
    L : ndarray or None
        The lower Cholesky factor of ``S`` (Fortran order; only its lower triangle is meaningful), or None
        when ``S`` is not positive definite (a degenerate response).
    """

    system: BlockedSystem
    theta: np.ndarray
    lam_first: np.ndarray
    lam_rest: tuple[np.ndarray, ...]
    ainv: np.ndarray
    logdet_first: float
    trailing: np.ndarray
    L: np.ndarray | None

    @property
    def log_diagonal(self) -> np.ndarray:
        """``log L_ii²`` for the trailing rows (the other factors, ``R_X``, then ``log r²``)."""
        return 2.0 * np.log(np.diagonal(self.L))

    def lower(self) -> np.ndarray:
        """``L`` with its upper triangle zeroed (a copy)."""
        return np.tril(self.L)


def _lower_to_full(M: np.ndarray) -> np.ndarray:
    """Return the symmetric matrix whose lower triangle ``M`` holds."""
    return np.tril(M) + np.tril(M, -1).T


def _fortran(M: np.ndarray) -> np.ndarray:
    """Return a Fortran-ordered view (symmetric ``M``) or copy, for LAPACK without a hidden copy."""
    if M.flags.f_contiguous:
        return M
    return M.T if M.flags.c_contiguous else np.asfortranarray(M)


def _scaling(system: BlockedSystem, lam_rest) -> np.ndarray:
    """``Λ_T``'s diagonal when every trailing factor has one effect per level."""
    v = np.ones(system.n_trailing)
    for f, lam in zip(system.rest, lam_rest, strict=True):
        v[f.start : f.stop] = lam[0, 0]
    return v


def _congruence(H: np.ndarray, layouts: tuple[FactorLayout, ...], lams, transpose: bool) -> np.ndarray:
    """``Λ_Tᵀ H Λ_T`` (or ``Λ_T H Λ_Tᵀ`` if ``transpose``) of a full symmetric ``H``, as a new array."""
    out = np.array(H, order="C")
    n = out.shape[0]
    for f, lam in zip(layouts, lams, strict=True):
        M = lam.T if transpose else lam
        block = slice(f.start, f.stop)
        out[:, block] = (out[:, block].reshape(n, f.levels, f.q) @ M).reshape(n, -1)
        out[block, :] = (M.T @ out[block, :].reshape(f.levels, f.q, n)).reshape(-1, n)
    return out


def _first_factor(lam: np.ndarray, B: np.ndarray) -> tuple[np.ndarray, float, np.ndarray]:
    """``A_j⁻¹``, ``Σ log|A_j|`` and ``P_j = Λ A_j⁻¹ Λᵀ`` for every level (``B``: (m, q, q))."""
    q = lam.shape[0]
    if q == 1:
        l2 = lam[0, 0] ** 2
        a = l2 * B[:, 0, 0] + 1.0
        ainv = (1.0 / a)[:, None, None]
        return ainv, float(np.sum(np.log(a))), l2 * ainv
    A = lam.T @ B @ lam + np.eye(q)
    chol = np.linalg.cholesky(A)
    logdet = 2.0 * float(np.sum(np.log(np.diagonal(chol, axis1=1, axis2=2))))
    ainv = np.linalg.inv(A)
    return ainv, logdet, lam @ ainv @ lam.T


def factorize(theta: np.ndarray, system: BlockedSystem) -> BlockedFactor:
    """Factor the augmented mixed-model equations at ``theta`` (see the module docstring).

    Parameters
    ----------
    theta : ndarray
        Relative covariance parameters, ``system.n_theta`` long.
    system : BlockedSystem

    Returns
    -------
    BlockedFactor

    Examples
    --------
    >>> import bayesmlm as bm
    >>> from bayesmlm.linalg.system import blocked_system
    >>> m = bm.Model("Reaction ~ Days + (1 | Subject)", bm.load_dataset("sleepstudy"))
    >>> f = factorize(np.array([0.0]), blocked_system(m.structure, m.cross_products))
    >>> round(float(np.exp(f.log_diagonal[-1] / 2)), 2)  # no group effects: r is the OLS residual norm
    636.59
    """
    theta = np.asarray(theta, dtype=float)
    lam_first = system.first.relative_factor(theta)
    lam_rest = tuple(f.relative_factor(theta) for f in system.rest)
    ainv, logdet_first, P = _first_factor(lam_first, system.first_ztz)
    H = system.gram - system.coupling.outer(P)  # lower triangle set (all of it for the dense coupling)
    if system.scalar_rest:
        v = _scaling(system, lam_rest)
        S = H * v[:, None] * v[None, :]
    else:
        full = H if isinstance(system.coupling, DenseCoupling) else _lower_to_full(H)
        S = _congruence(full, system.rest, lam_rest, False)
    S = _fortran(S)
    idx = np.arange(system.n_rest)
    S[idx, idx] += 1.0
    L, info = lapack.dpotrf(S, lower=1, overwrite_a=1, clean=0)
    ok = info == 0 and bool(np.all(np.diagonal(L) > 0))
    return BlockedFactor(system, theta, lam_first, lam_rest, ainv, logdet_first, H, L if ok else None)


def logdiag_gradient(factor: BlockedFactor, omega: np.ndarray) -> np.ndarray:
    """Gradient in theta of ``Σ_j log|A_j| + Σ_i ω_i log L_ii²`` (see the module docstring).

    Parameters
    ----------
    factor : BlockedFactor
        A successful factorisation (``factor.L`` is not None).
    omega : ndarray, shape (n_T,)
        Non-negative weights of the trailing rows' ``log L_ii²``.

    Returns
    -------
    ndarray, shape (n_theta,)
    """
    system = factor.system
    linv, _ = lapack.dtrtri(factor.L, lower=1)
    linv *= np.sqrt(omega)[:, None]
    sbar, _ = lapack.dlauum(linv, lower=1, overwrite_c=1)  # lower triangle: L⁻ᵀ Ω L⁻¹
    grad = np.zeros(system.n_theta)
    if system.scalar_rest:
        v = _scaling(system, factor.lam_rest)
        if system.rest:
            # Λ̄_f = 2 Σ_{i in f} (H Λ_T S̄)_ii, and (H Λ_T S̄)_ii = ((H ∘ S̄) v)_i for symmetric H, S̄
            d = blas.dsymv(1.0, _fortran_lower(factor.trailing * sbar), v, lower=1)
            for f in system.rest:
                grad[f.theta] = 2.0 * np.sum(d[f.start : f.stop])
        hbar = sbar * v[:, None] * v[None, :]
    else:
        H, sbar_full = _lower_to_full(factor.trailing), _lower_to_full(sbar)
        n = system.n_trailing
        left = _left_lambda(sbar_full, system.rest, factor.lam_rest)  # Λ_T S̄
        for f in system.rest:
            block = slice(f.start, f.stop)
            U = H[block, :].reshape(f.levels, f.q, n)
            V = left[:, block].reshape(n, f.levels, f.q)
            lbar = 2.0 * np.einsum("lat,tlb->ab", U, V)
            grad[f.theta] = lbar[f.rows, f.cols]
        hbar = _congruence(sbar_full, system.rest, factor.lam_rest, True)
    pbar = -system.coupling.inner(hbar)
    lbar = _first_factor_adjoint(factor.lam_first, system.first_ztz, factor.ainv, pbar)
    grad[system.first.theta] = lbar[system.first.rows, system.first.cols]
    return grad


def _fortran_lower(M: np.ndarray) -> np.ndarray:
    return M if M.flags.f_contiguous else np.asfortranarray(M)


def _left_lambda(X: np.ndarray, layouts: tuple[FactorLayout, ...], lams) -> np.ndarray:
    """``Λ_T X`` for a matrix ``X`` with ``n_T`` rows."""
    out = np.array(X, order="C")
    k = out.shape[1]
    for f, lam in zip(layouts, lams, strict=True):
        block = slice(f.start, f.stop)
        out[block, :] = (lam @ out[block, :].reshape(f.levels, f.q, k)).reshape(-1, k)
    return out


def _first_factor_adjoint(lam: np.ndarray, B: np.ndarray, ainv: np.ndarray, pbar: np.ndarray) -> np.ndarray:
    """``Λ̄₁`` from ``P̄_j`` and the ``log|A_j|`` terms (see the module docstring)."""
    if lam.shape[0] == 1:
        lam0, a, b, pb = lam[0, 0], ainv[:, 0, 0], B[:, 0, 0], pbar[:, 0, 0]
        q = a * a * lam0 * lam0 * pb
        return np.array([[2.0 * float(np.sum(pb * lam0 * a + b * lam0 * (a - q)))]])
    Q = ainv @ (lam.T @ pbar @ lam) @ ainv
    return 2.0 * ((pbar @ lam @ ainv).sum(axis=0) + (B @ lam @ (ainv - Q)).sum(axis=0))
