"""Stage 4a, REML/ML: Satterthwaite's degrees of freedom for fixed-effect tests, as lmerTest computes them.

lmerTest (Kuznetsova, Brockhoff & Christensen 2017, J. Stat. Softw. 82(13)) works in the variance
parameters ``varpar = (θ, σ)``: lme4's relative covariance parameters and the residual sd. At the
estimates it needs

- the Hessian ``H`` of the deviance in ``varpar`` (the REML criterion for a REML fit, the ML deviance
  for an ML fit), with ``β`` profiled out but not ``σ``::

      dev(θ, σ) = log|L|² + r²(θ)/σ² + ν log(2πσ²)  [+ log|R_X|²]      ν = n − p (REML) or n

  so that ``A = 2 H⁺`` is the asymptotic covariance of ``varpar`` (a generalised inverse that drops
  eigenvalues below 1e-8, as lmerTest);
- the Jacobian ``J_k = ∂ vcov(β) / ∂ varpar_k`` of ``vcov(β) = σ² (R_X R_Xᵀ)⁻¹``.

For a contrast ``ℓ`` the variance of ``ℓᵀβ̂`` is ``v = ℓᵀ vcov(β) ℓ``, its gradient ``g_k = ℓᵀ J_k ℓ``
and ``df = 2 v² / (gᵀ A g)``. A test of several contrasts ``L`` (an F test) rotates ``L`` to the
eigenvectors of ``L vcov(β) Lᵀ``, takes one such df ``ν_m`` per rotated contrast and combines them as
Fai and Cornelius (1996): ``E = Σ ν_m / (ν_m − 2)``, ``ddf = 2E / (E − q)`` (2 if any ``ν_m ≤ 2``; the
mean if they are all equal).

The derivatives in ``θ`` come from Richardson-extrapolated central differences
(:mod:`bayesmlm.reml.derivatives`; lmerTest uses numDeriv's), those in ``σ`` are analytic.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.linalg as sla

from bayesmlm.design.covariance import RandomStructure
from bayesmlm.design.crossprod import CrossProducts
from bayesmlm.reml.derivatives import value_jacobian_hessian
from bayesmlm.reml.objective import compile_at_theta

__all__ = [
    "VarparCovariance",
    "combined_ddf",
    "satterthwaite_df",
    "satterthwaite_f_test",
    "varpar_covariance",
]

#: eigenvalues of the Hessian below this are treated as zero (lmerTest's tolerance)
EIGEN_TOL = 1e-8


@dataclass(frozen=True)
class VarparCovariance:
    """What Satterthwaite's method needs from a fit (lmerTest's ``vcov_varpar`` and ``Jac_list``).

    Attributes
    ----------
    varpar : ndarray
        ``(θ, σ)`` at the estimates.
    hessian : ndarray, shape (k, k)
        Hessian of the deviance in ``varpar``.
    vcov_varpar : ndarray, shape (k, k)
        ``2 H⁺``.
    jacobian : ndarray, shape (k, p, p)
        ``∂ vcov(β) / ∂ varpar_k``.
    eigenvalues : ndarray
        Of the Hessian; a negative one means the fit is not at a minimum.
    """

    varpar: np.ndarray
    hessian: np.ndarray
    vcov_varpar: np.ndarray
    jacobian: np.ndarray
    eigenvalues: np.ndarray

    @property
    def at_minimum(self) -> bool:
        """Whether the Hessian has no negative eigenvalue (the fit is at a local minimum)."""
        return bool(np.all(self.eigenvalues > -EIGEN_TOL))


def _theta_parts(structure: RandomStructure, stats: CrossProducts, reml: bool):
    """``θ ↦ [log|L|² (+ log|R_X|²), r², (R_X R_Xᵀ)⁻¹ flattened]`` from the compiled factorisation."""
    decomposition = compile_at_theta("decomposition", structure, stats)
    p = stats.p

    def parts(theta: np.ndarray) -> np.ndarray:
        dec = decomposition(theta)
        logdet = float(dec["logdet_L"]) + (float(dec["logdet_RX"]) if reml else 0.0)
        rx_inv = sla.solve_triangular(np.asarray(dec["R_X"]), np.eye(p), lower=True)
        return np.concatenate([[logdet, float(dec["r2"])], (rx_inv.T @ rx_inv).ravel()])

    return parts


def varpar_covariance(
    structure: RandomStructure, stats: CrossProducts, theta: np.ndarray, sigma: float, reml: bool
) -> VarparCovariance:
    """Compute the Hessian of the deviance and the Jacobian of ``vcov(β)`` in ``(θ, σ)``.

    Parameters
    ----------
    structure, stats
        The model and its cross-products.
    theta, sigma
        The estimates.
    reml : bool
        Differentiate the REML criterion (else the ML deviance).

    Returns
    -------
    VarparCovariance

    Examples
    --------
    >>> import bayesmlm as bm
    >>> fit = bm.Model("Yield ~ 1 + (1 | Batch)", bm.load_dataset("Dyestuff")).fit_reml()
    >>> vc = varpar_covariance(fit.structure, fit.small_sample.stats, fit.theta, fit.sigma, reml=True)
    >>> vc.hessian.shape, vc.jacobian.shape, vc.at_minimum
    ((2, 2), (2, 1, 1), True)
    """
    p, k = stats.p, len(theta)
    dof = stats.n - p if reml else stats.n
    value, jac, hess = value_jacobian_hessian(_theta_parts(structure, stats, reml), np.asarray(theta, float))
    r2, s2 = value[1], sigma**2
    H = np.empty((k + 1, k + 1))
    H[:k, :k] = hess[0] + hess[1] / s2
    H[:k, k] = H[k, :k] = -2.0 * jac[1] / sigma**3
    H[k, k] = 6.0 * r2 / s2**2 - 2.0 * dof / s2
    H = (H + H.T) / 2
    evals, evecs = np.linalg.eigh(H)
    keep = evals > EIGEN_TOL
    h_inv = (evecs[:, keep] / evals[keep]) @ evecs[:, keep].T
    M = value[2:].reshape(p, p)
    J = np.empty((k + 1, p, p))
    J[:k] = s2 * np.moveaxis(jac[2:].reshape(p, p, k), 2, 0)
    J[k] = 2.0 * sigma * M
    return VarparCovariance(np.r_[theta, sigma], H, 2.0 * h_inv, (J + np.swapaxes(J, 1, 2)) / 2, evals)


def satterthwaite_df(vc: VarparCovariance, vcov_beta: np.ndarray, contrasts: np.ndarray) -> np.ndarray:
    """Satterthwaite's df of each row ``ℓ`` of ``contrasts``: ``2 (ℓᵀVℓ)² / (gᵀ A g)``, ``g_k = ℓᵀ J_k ℓ``.

    Examples
    --------
    >>> import bayesmlm as bm
    >>> fit = bm.Model("Yield ~ 1 + (1 | Batch)", bm.load_dataset("Dyestuff")).fit_reml()
    >>> vc = varpar_covariance(fit.structure, fit.small_sample.stats, fit.theta, fit.sigma, reml=True)
    >>> satterthwaite_df(vc, fit.vcov.to_numpy(), np.eye(1)).round(4)  # lmerTest: 5.0000
    array([5.])
    """
    L = np.atleast_2d(np.asarray(contrasts, dtype=float))
    var = np.einsum("ri,ij,rj->r", L, vcov_beta, L)
    grad = np.einsum("ri,kij,rj->rk", L, vc.jacobian, L)
    denom = np.einsum("rk,kl,rl->r", grad, vc.vcov_varpar, grad)
    with np.errstate(divide="ignore", invalid="ignore"):
        return 2.0 * var**2 / denom


def combined_ddf(nu: np.ndarray, tol: float = 1e-8) -> float:
    """Denominator df of an F statistic that is a mean of ``q`` squared t statistics with df ``nu``.

    ``E = Σ ν/(ν − 2)``, ``2E / (E − q)``; 2 if any ``ν ≤ 2``; the mean if all ``ν`` agree within ``tol``.

    Examples
    --------
    >>> round(combined_ddf(np.array([10.0, 20.0])), 4), combined_ddf(np.array([7.0, 7.0]))
    (13.0769, 7.0)
    """
    nu = np.asarray(nu, dtype=float)
    if len(nu) == 1:
        return float(nu[0])
    if np.all(np.abs(np.diff(nu)) < tol):
        return float(nu.mean())
    if np.any(nu <= 2):
        return 2.0
    e = float(np.sum(nu / (nu - 2.0)))
    return 2.0 * e / (e - len(nu))


def satterthwaite_f_test(
    vc: VarparCovariance, vcov_beta: np.ndarray, beta: np.ndarray, contrasts: np.ndarray, rhs=None
) -> tuple[float, int, float]:
    """F statistic, numerator and denominator df of ``H₀: L β = rhs`` (lmerTest's ``contestMD``).

    The rows of ``L`` are rotated to the eigenvectors of ``L V Lᵀ``; rotated contrasts with an
    eigenvalue below ``√eps`` times the largest are dropped (their number is ``num_df``).
    """
    L = np.atleast_2d(np.asarray(contrasts, dtype=float))
    b = np.asarray(beta, dtype=float)
    if rhs is not None and np.any(np.asarray(rhs) != 0):
        b = b - np.linalg.pinv(L) @ np.asarray(rhs, dtype=float)
    d, P = np.linalg.eigh(L @ vcov_beta @ L.T)
    order = np.argsort(d)[::-1]
    d, P = d[order], P[:, order]
    keep = d > max(np.sqrt(np.finfo(float).eps) * d[0], 0.0)
    rotated = P[:, keep].T @ L
    q = int(keep.sum())
    f_value = float(np.sum((rotated @ b) ** 2 / d[keep]) / q)
    nu = satterthwaite_df(vc, vcov_beta, rotated)
    return f_value, q, combined_ddf(nu)
