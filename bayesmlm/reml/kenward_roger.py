"""Stage 4a, REML/ML: Kenward and Roger's adjusted covariance of β̂ and df, as pbkrtest computes them.

Kenward and Roger (1997, Biometrics 53: 983–997) in the form of pbkrtest (Halekoh & Højsgaard 2014,
J. Stat. Softw. 59(9)). The marginal covariance of the response is linear in the covariance
parameters ``γ``: every variance and covariance of each random-effects block, and ``σ²``::

    Σ = Σ_r γ_r G_r,   G_r = Z_f (I ⊗ E_r) Z_fᵀ  (E_r the pattern of one entry of a block),  G_σ² = I

With ``Φ = (Xᵀ Σ⁻¹ X)⁻¹`` (lme4's ``vcov``), ``P_r = −Xᵀ Σ⁻¹ G_r Σ⁻¹ X``,
``Q_rs = Xᵀ Σ⁻¹ G_r Σ⁻¹ G_s Σ⁻¹ X`` and ``W = 2 I⁻¹`` with the REML information
``I_rs = tr(Σ⁻¹G_rΣ⁻¹G_s) − 2 tr(Φ Q_rs) + tr(Φ P_r Φ P_s)``, the adjusted covariance is
``Φ_A = Φ + 2 Φ (Σ_rs W_rs (Q_rs − P_r Φ P_s)) Φ``. A test of ``L β = 0`` with ``q = rank L`` gets
the scaled Wald statistic and the denominator df of Kenward and Roger's moment matching.

Nothing here forms the ``n × n`` matrix ``Σ``: with ``Σ = σ² (I + B Bᵀ)``, ``B = Z Λ``,
``S = (I + BBᵀ)⁻¹ = I − B C⁻¹ Bᵀ`` (``C = I + BᵀB``), every product ``Uᵀ Sᵏ U`` of ``U = [Z X]`` is
``UᵀU − UᵀB Y_k`` with ``Y_k = C⁻¹ (BᵀU + Y_{k−1})``, and ``tr(S²) = n − 2 tr(C⁻¹BᵀB) + tr((C⁻¹BᵀB)²)``:
the cost is that of the ``(levels·q + p)``-square cross-products.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.linalg as sla
import scipy.sparse as sp
from scipy import stats as sps

from bayesmlm.design.covariance import RandomStructure
from bayesmlm.design.crossprod import sparse_z
from bayesmlm.exceptions import FitError

__all__ = ["KenwardRoger", "kenward_roger", "kr_test"]

#: random effects beyond which the dense (levels·q)-square algebra is refused
MAX_RANDOM_EFFECTS = 5000


@dataclass(frozen=True)
class KenwardRoger:
    """The unadjusted and adjusted covariance of β̂, and the pieces the df need.

    Attributes
    ----------
    phi : ndarray, shape (p, p)
        ``vcov(β̂)``.
    phi_adjusted : ndarray, shape (p, p)
        Kenward and Roger's adjusted covariance.
    P : ndarray, shape (k, p, p)
        ``P_r`` for every covariance parameter.
    W : ndarray, shape (k, k)
        Asymptotic covariance of the covariance parameters (``2 × inverse REML information``).
    """

    phi: np.ndarray
    phi_adjusted: np.ndarray
    P: np.ndarray
    W: np.ndarray


def _parameters(structure: RandomStructure) -> list[tuple[int, int, int]]:
    """Every covariance parameter ``(factor index, i, j)`` with ``i ≥ j`` inside one block."""
    out = []
    for k, f in enumerate(structure.factors):
        for _, start, size in f.blocks():
            for j in range(size):
                for i in range(j, size):
                    out.append((k, start + i, start + j))
    return out


def _pattern(M: np.ndarray, q: int, i: int, j: int) -> np.ndarray:
    """Return ``(I ⊗ E_ij) M`` for level-major rows (``levels·q``): row ``(g, i)`` ← ``(g, j)`` and back."""
    out = np.zeros_like(M)
    rows = M.reshape(-1, q, M.shape[-1])
    view = out.reshape(-1, q, M.shape[-1])
    view[:, i] = rows[:, j]
    if i != j:
        view[:, j] = rows[:, i]
    return out


def kenward_roger(
    X: np.ndarray,
    structure: RandomStructure,
    theta: np.ndarray,
    sigma2: float,
    weights: np.ndarray | None = None,
) -> KenwardRoger:
    """Compute Kenward and Roger's adjusted covariance of β̂ at REML estimates.

    Parameters
    ----------
    X : ndarray, shape (n, p)
    structure : RandomStructure
    theta : ndarray
        Relative covariance parameters (REML estimates): the random effects' covariance is ``σ² Λ Λᵀ``.
    sigma2 : float
        Residual variance (REML).
    weights : ndarray, optional
        Prior weights (row ``i``'s residual variance ``σ² / w_i``): everything below is a function of
        ``U'WU``, ``U = [Z X]``, the cross-products of the rows times ``√w_i``, whose model has
        ``V = σ² (I + Z̃ΛΛᵀZ̃ᵀ)``; Kenward and Roger's adjustment is unchanged by that change of rows.

    Returns
    -------
    KenwardRoger

    Examples
    --------
    >>> import bayesmlm as bm
    >>> fit = bm.Model("Yield ~ 1 + (1 | Batch)", bm.load_dataset("Dyestuff")).fit_reml()
    >>> kr = kenward_roger(fit.design.X, fit.structure, fit.theta, fit.sigma**2)
    >>> bool(abs(kr.phi[0, 0] - fit.vcov.iloc[0, 0]) < 1e-6 * fit.vcov.iloc[0, 0])
    True
    """
    X = np.asarray(X, dtype=float)
    n, p = X.shape
    factors = structure.factors
    widths = [f.n_levels * f.q for f in factors]
    qz = sum(widths)
    if qz > MAX_RANDOM_EFFECTS:
        raise FitError(
            f"Kenward-Roger needs dense algebra on {qz} random effects (more than {MAX_RANDOM_EFFECTS}); "
            "use ddf='satterthwaite', which scales to large models"
        )
    offsets = np.concatenate([[0], np.cumsum(widths)])
    U = sp.hstack([*(sparse_z(f) for f in factors), sp.csr_array(X)], format="csr")
    if weights is not None:
        U = sp.csr_array(sp.diags(np.sqrt(np.asarray(weights, dtype=float))) @ U)
    UtU = (U.T @ U).toarray()
    lam = sp.block_diag(
        [sp.kron(sp.eye(f.n_levels), f.relative_factor(theta)) for f in factors], format="csr"
    )
    BtU = lam.T @ UtU[:qz]  # (qz, qz + p)
    BtB = BtU[:, :qz] @ lam.toarray()
    C = np.eye(qz) + BtB
    chol = sla.cho_factor(C, lower=True)
    Y, S_powers = np.zeros_like(BtU), []
    for _ in range(3):
        Y = sla.cho_solve(chol, BtU + Y)
        S_powers.append(UtU - BtU.T @ Y)
    T1, T2, T3 = S_powers
    CB = sla.cho_solve(chol, BtB)
    tr_s2 = n - 2 * np.trace(CB) + np.sum(CB * CB.T)
    s4, s6 = sigma2**2, sigma2**3
    x = slice(qz, qz + p)
    phi = sigma2 * np.linalg.inv(T1[x, x])

    params = _parameters(structure)
    k = len(params) + 1  # and sigma²

    def cols(r: int) -> slice:
        f = params[r][0]
        return slice(int(offsets[f]), int(offsets[f + 1]))

    def D(r: int, M: np.ndarray) -> np.ndarray:
        f, i, j = params[r]
        return _pattern(M, factors[f].q, i, j)

    resid = k - 1
    P = np.empty((k, p, p))
    DT_x = {}
    for r in range(resid):
        DT_x[r] = D(r, T1[cols(r), x])  # D_r Z_fᵀ S X
        P[r] = -T1[x, cols(r)] @ DT_x[r] / s4
    P[resid] = -T2[x, x] / s4
    K = np.empty((k, k))
    Q = np.empty((k, k, p, p))
    for r in range(k):
        for s in range(r, k):
            if r < resid and s < resid:
                middle = D(r, T1[cols(r), cols(s)])
                Q[r, s] = T1[x, cols(r)] @ middle @ DT_x[s] / s6
                K[r, s] = np.sum(middle * D(s, T1[cols(s), cols(r)]).T) / s4
            elif r < resid:  # s is sigma²
                Q[r, s] = T1[x, cols(r)] @ D(r, T2[cols(r), x]) / s6
                K[r, s] = np.trace(D(r, T2[cols(r), cols(r)])) / s4
            else:
                Q[r, s] = T3[x, x] / s6
                K[r, s] = tr_s2 / s4
            Q[s, r] = Q[r, s].T
            K[s, r] = K[r, s]
    info = np.empty((k, k))
    for r in range(k):
        for s in range(r, k):
            info[r, s] = info[s, r] = (
                K[r, s] - 2 * np.sum(phi * Q[r, s]) + np.sum((phi @ P[r]) * (P[s] @ phi))
            )
    W = 2 * (
        np.linalg.inv(info) if np.min(np.abs(np.linalg.eigvalsh(info))) > 1e-10 else np.linalg.pinv(info)
    )
    Umat = sum(W[r, s] * (Q[r, s] - P[r] @ phi @ P[s]) for r in range(k) for s in range(k))
    phi_adjusted = phi + 2 * phi @ Umat @ phi
    return KenwardRoger(phi, (phi_adjusted + phi_adjusted.T) / 2, P, W)


def _ratio(x: float, y: float, tol: float = 1e-14) -> float:
    return 1.0 if abs(x) < tol and abs(y) < tol else x / y


def kr_test(kr: KenwardRoger, contrasts: np.ndarray, beta: np.ndarray, rhs=None) -> dict[str, float]:
    """Kenward–Roger test of ``L β = rhs``: the scaled F, its df and p value.

    Parameters
    ----------
    kr : KenwardRoger
    contrasts : ndarray, shape (r, p)
        ``L``.
    beta : ndarray
    rhs : array_like, optional
        Hypothesised values of ``L β`` (0).

    Returns
    -------
    dict
        ``F`` (Kenward and Roger's scaled Wald F), ``num_df`` (rank of ``L``), ``den_df``, ``p``,
        ``F_scaling`` and ``F_unscaled`` (the Wald F from the adjusted covariance).
    """
    L = np.atleast_2d(np.asarray(contrasts, dtype=float))
    phi, P, W = kr.phi, kr.P, kr.W
    q = int(np.linalg.matrix_rank(L))
    theta = L.T @ np.linalg.solve(L @ phi @ L.T, L)
    u = np.einsum("ij,rjk,kl->ril", theta @ phi, P, phi)  # Θ Φ P_r Φ
    traces = np.einsum("rii->r", u)
    a1 = float(traces @ W @ traces)
    a2 = float(np.einsum("rs,rij,sji->", W, u, u))
    b = (a1 + 6 * a2) / (2 * q)
    g = ((q + 1) * a1 - (q + 4) * a2) / ((q + 2) * a2)
    denom = 3 * q + 2 * (1 - g)
    c1, c2, c3 = g / denom, (q - g) / denom, (q + 2 - g) / denom
    v0, v1, v2 = 1 + c1 * b, 1 - c2 * b, 1 - c3 * b
    v0 = 0.0 if abs(v0) < 1e-10 else v0
    rho = _ratio(1 - a2 / q, v1) ** 2 * v0 / v2 / q
    den_df = 4 + (q + 2) / (q * rho - 1)
    scaling = 1.0 if abs(den_df - 2) < 1e-2 else den_df * (1 - a2 / q) / (den_df - 2)
    diff = L @ np.asarray(beta, dtype=float) - (0.0 if rhs is None else np.asarray(rhs, dtype=float))
    f_unscaled = float(diff @ np.linalg.solve(L @ kr.phi_adjusted @ L.T, diff)) / q
    f_value = scaling * f_unscaled
    return {
        "F": f_value,
        "num_df": q,
        "den_df": float(den_df),
        "p": float(sps.f.sf(f_value, q, den_df)),
        "F_scaling": float(scaling),
        "F_unscaled": f_unscaled,
    }
