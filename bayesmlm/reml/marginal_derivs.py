"""Stage 4a, REML/ML: score and Hessian of the profiled log-likelihood, statsmodels' formulas, group by group.

statsmodels' ``MixedLM.score`` and ``MixedLM.hessian`` differentiate the log-likelihood with the
residual variance profiled out (:func:`bayesmlm.reml.marginal.profiled_loglike`) with respect to the
fixed effects, the lower triangle of ``Psi = cov_re / scale`` (row by row) and the relative variance
components. Each covariance parameter ``j`` enters ``V_i`` linearly, ``dV_i/dj = L R' (+ R L')``,
so the derivatives are traces and quadratic forms in ``V_i^{-1}``, computed here with dense
``n_i x n_i`` algebra. The Hessian is statsmodels' expression: exact at the GLS fixed effects (where
``X' V^{-1} r = 0``), where statsmodels evaluates it for standard errors.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np

from bayesmlm.reml.marginal import vc_cov, vc_matrices

__all__ = ["profiled_hessian", "profiled_score", "sqrt_jacobian"]


def _dV(Zi: np.ndarray, Wi: np.ndarray | Sequence[np.ndarray]) -> list[np.ndarray]:
    """Return the derivatives of ``V_i`` by each covariance parameter (Psi's triangle, then vcomp)."""
    out = []
    q = Zi.shape[1]
    for j1 in range(q):
        for j2 in range(j1 + 1):
            m = np.outer(Zi[:, j1], Zi[:, j2])
            out.append(m if j1 == j2 else m + m.T)
    out.extend(m @ m.T for m in vc_matrices(Wi))
    return out


def _groups(y, X, Z, W, psi, vcomp, beta) -> Iterator[tuple]:
    """Yield per group ``(V^{-1}, r, X, [dV_j])``."""
    for yi, Xi, Zi, Wi in zip(y, X, Z, W, strict=True):
        V = Zi @ psi @ Zi.T + vc_cov(Wi, vcomp, len(yi)) + np.eye(len(yi))
        yield np.linalg.inv(V), yi - Xi @ beta, Xi, _dV(Zi, Wi)


def profiled_score(
    y: Sequence[np.ndarray],
    X: Sequence[np.ndarray],
    Z: Sequence[np.ndarray],
    W: Sequence[np.ndarray],
    psi: np.ndarray,
    vcomp: np.ndarray,
    beta: np.ndarray,
    reml: bool,
) -> tuple[np.ndarray, np.ndarray]:
    """Gradient of the profiled log-likelihood (statsmodels' ``score_full``).

    Parameters
    ----------
    y, X, Z, W, psi, vcomp, beta, reml
        As in :func:`bayesmlm.reml.marginal.profiled_loglike`.

    Returns
    -------
    score_fe : ndarray, shape (p,)
        With respect to the fixed effects (0 at their GLS estimates).
    score_cov : ndarray, shape (q (q + 1) / 2 + k,)
        With respect to Psi's lower triangle (row by row), then the relative variance components.

    Examples
    --------
    >>> import numpy as np
    >>> y = [np.array([1.0, 2.0]), np.array([4.0, 5.0])]
    >>> X, Z, W = [np.ones((2, 1))] * 2, [np.ones((2, 1))] * 2, [np.zeros((2, 0))] * 2
    >>> fe, cov = profiled_score(y, X, Z, W, np.eye(1), np.zeros(0), np.array([3.0]), reml=False)
    >>> fe.round(6), cov.round(4)  # statsmodels gives the same (and the same Hessian below)
    (array([0.]), array([0.3333]))
    """
    n = sum(len(yi) for yi in y)
    p = X[0].shape[1]
    fac = n - p if reml else n
    dlv = rvavr = 0.0
    rvir, xtvir, xtvix = 0.0, np.zeros(p), np.zeros((p, p))
    xtax: list[np.ndarray] | float = 0.0
    for Vi, r, Xi, dVs in _groups(y, X, Z, W, psi, vcomp, beta):
        vir, vix = Vi @ r, Vi @ Xi
        dlv = dlv + np.array([np.sum(Vi * d) for d in dVs])
        rvavr = rvavr + np.array([vir @ d @ vir for d in dVs])
        rvir += r @ vir
        xtvir += Xi.T @ vir
        if reml:
            xtvix += Xi.T @ vix
            xtax = xtax + np.array([vix.T @ d @ vix for d in dVs])
    score_cov = -0.5 * np.asarray(dlv) + 0.5 * fac * np.asarray(rvavr) / rvir
    if reml:
        inv = np.linalg.inv(xtvix)
        score_cov = score_cov + 0.5 * np.array([np.sum(inv * a) for a in np.atleast_3d(xtax)])
    return fac * xtvir / rvir, np.asarray(score_cov, dtype=float).reshape(-1)


def profiled_hessian(
    y: Sequence[np.ndarray],
    X: Sequence[np.ndarray],
    Z: Sequence[np.ndarray],
    W: Sequence[np.ndarray],
    psi: np.ndarray,
    vcomp: np.ndarray,
    beta: np.ndarray,
    reml: bool,
) -> np.ndarray:
    """Hessian of the profiled log-likelihood (statsmodels' ``MixedLM.hessian``).

    Parameters
    ----------
    y, X, Z, W, psi, vcomp, beta, reml
        As in :func:`bayesmlm.reml.marginal.profiled_loglike`.

    Returns
    -------
    ndarray, shape (p + m, p + m)
        Over the fixed effects, Psi's lower triangle and the relative variance components
        (``m = q (q + 1) / 2 + k``), in statsmodels' form: the terms in ``X' V^{-1} r`` (zero at the
        GLS fixed effects) are left out, as statsmodels leaves them out.

    Examples
    --------
    >>> import numpy as np
    >>> y = [np.array([1.0, 2.0]), np.array([4.0, 5.0])]
    >>> X, Z, W = [np.ones((2, 1))] * 2, [np.ones((2, 1))] * 2, [np.zeros((2, 0))] * 2
    >>> profiled_hessian(y, X, Z, W, np.eye(1), np.zeros(0), np.array([3.0]), reml=False).round(4)
    array([[-1.3333, -0.    ],
           [-0.    , -0.3889]])
    """
    n = sum(len(yi) for yi in y)
    p = X[0].shape[1]
    fac = n - p if reml else n
    q = Z[0].shape[1]
    m = q * (q + 1) // 2 + len(vcomp)
    rvir, xtvix = 0.0, np.zeros((p, p))
    B, D, rt = np.zeros(m), np.zeros((m, m)), np.zeros((m, m))
    fere, xtax, F = np.zeros((m, p)), np.zeros((m, p, p)), np.zeros((m, m, p, p))
    for Vi, r, Xi, dVs in _groups(y, X, Z, W, psi, vcomp, beta):
        vir, vix = Vi @ r, Vi @ Xi
        rvir += r @ vir
        xtvix += Xi.T @ vix
        vdv = [Vi @ d for d in dVs]  # V^{-1} dV_j
        for a in range(m):
            dvir = dVs[a] @ vir
            fere[a] += vix.T @ dvir
            B[a] += vir @ dvir
            xtax[a] += vix.T @ dVs[a] @ vix
            for b in range(a + 1):
                D[a, b] += 2 * vir @ dVs[b] @ vdv[a] @ vir
                rt[a, b] += 0.5 * np.sum(vdv[b] * vdv[a].T)
                if reml:
                    u = vix.T @ dVs[b] @ vdv[a] @ vix
                    F[a, b] += u + u.T
    low = np.tril_indices(m, -1)
    for mat in (D, rt):
        mat[low[1], low[0]] = mat[low]
    hess_re = rt - 0.5 * fac * (D / rvir - np.outer(B, B) / rvir**2)
    if reml:
        QL = [np.linalg.solve(xtvix, x) for x in xtax]
        for a in range(m):
            for b in range(a + 1):
                val = 0.5 * (np.sum(QL[a].T * QL[b]) - np.trace(np.linalg.solve(xtvix, F[a, b])))
                hess_re[a, b] += val
                if a != b:
                    hess_re[b, a] += val
    out = np.zeros((p + m, p + m))
    out[:p, :p] = -fac * xtvix / rvir
    out[p:, :p] = -fac * fere / rvir
    out[:p, p:] = out[p:, :p].T
    out[p:, p:] = hess_re
    return out


def sqrt_jacobian(packed: np.ndarray, k_fe: int, k_re: int) -> np.ndarray:
    """Jacobian of statsmodels' full parameters with respect to its square-root ones.

    Parameters
    ----------
    packed : ndarray
        ``(fe, lower triangle of L row by row, sqrt(vcomp))`` with ``cov_re = L L'``.
    k_fe, k_re : int
        Numbers of fixed effects and correlated random effects.

    Returns
    -------
    ndarray, shape (len(packed), len(packed))
        ``J[a, b] = d full_a / d packed_b``, ``full = (fe, cov_re's triangle, vcomp)``.

    Examples
    --------
    >>> sqrt_jacobian(np.array([1.0, 2.0, 3.0]), 1, 1)
    array([[1., 0., 0.],
           [0., 4., 0.],
           [0., 0., 6.]])
    """
    packed = np.asarray(packed, dtype=float)
    k_re2 = k_re * (k_re + 1) // 2
    J = np.zeros((len(packed), len(packed)))
    J[:k_fe, :k_fe] = np.eye(k_fe)
    rows, cols = np.tril_indices(k_re)
    L = np.zeros((k_re, k_re))
    L[rows, cols] = packed[k_fe : k_fe + k_re2]
    for a, (i, j) in enumerate(zip(rows, cols, strict=True)):  # cov_ij = sum_k L_ik L_jk
        for b, (s, t) in enumerate(zip(rows, cols, strict=True)):  # d / d L_st
            J[k_fe + a, k_fe + b] = (L[j, t] if s == i else 0.0) + (L[i, t] if s == j else 0.0)
    vc = np.arange(k_fe + k_re2, len(packed))
    J[vc, vc] = 2 * packed[vc]
    return J
