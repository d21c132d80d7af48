"""Stage 4b, Bayes: every factor's group effects drawn from their joint Gaussian conditional, compiled.

The draws that follow a run on :class:`~bayesmlm.bayes.direct_blocked.BlockedDensity`: per posterior draw,
the blocked factorisation of :mod:`bayesmlm.bayes.blocked_kernel` (the first factor's per-level blocks,
the other factors' Schur complement) gives the conditional mean and a square root of the conditional
covariance, so that all factors' effects are drawn jointly and exactly. A loop of fixed signature,
compiled once per machine (``cache=True``).
"""

from __future__ import annotations

import numba
import numpy as np

from bayesmlm.bayes.blocked_kernel import first_factor, relative_factors, residual_parts, rest_vector, schur

__all__ = ["blocked_conditional_kernel"]


@numba.njit(cache=True, nogil=True)
def blocked_conditional_kernel(
    T_draws, sigma, beta, q1, rest_off, rest_q, lvl_start, lvl_fac, ztz1, ztx1, zty1, ztz_r, a_1r, ztx_r,
    zty_r, eps1, eps_r, out1, out_r,
):  # fmt: skip
    """Draw every factor's effects from their Gaussian conditional, for each draw ``s``.

    ``u = M⁻¹c + σ L⁻ᵀε`` with ``L`` the blocked Cholesky factor of ``M`` (``L_j`` per first-factor level,
    ``L_R1 = M_R1L₁⁻ᵀ``, ``L_S`` of the Schur complement), then ``b = Λu``. ``T_draws`` (S, Q, Q) holds
    each draw's covariance Cholesky factors; ``out1`` (S, m₁, q₁) and ``out_r`` (S, q_R) receive the
    first factor's effects and the dense part's (level-major, as ``Z_R``'s columns).
    """
    S_n = T_draws.shape[0]
    m1 = ztz1.shape[0]
    for s in range(S_n):
        lam1, lam_r = relative_factors(T_draws[s], sigma[s], q1, rest_off, rest_q)
        _, Lf, K, _ = first_factor(ztz1, lam1)
        _, _, mr1_t, _, _, S = schur(ztz_r, a_1r, lam1, lam_r, lvl_start, lvl_fac, rest_q, K)
        LS = np.linalg.cholesky(S)
        h1, hr = residual_parts(beta[s], ztx1, zty1, ztx_r, zty_r)
        v1 = np.empty(m1 * q1)
        for j in range(m1):
            for a in range(q1):
                acc = 0.0
                for k in range(q1):
                    acc2 = 0.0
                    for i in range(q1):
                        acc2 += lam1[i, k] * h1[j, i]
                    acc += K[j, a, k] * acc2
                v1[j * q1 + a] = acc
        cr = rest_vector(hr, lam_r, lvl_start, lvl_fac, rest_q, True)
        rhs = cr - mr1_t.T @ v1
        # S⁻¹ rhs by the Cholesky factor, plus σ L_S⁻ᵀ ε_R
        qr = rhs.shape[0]
        y = np.empty(qr)
        for a in range(qr):
            acc = rhs[a]
            for k in range(a):
                acc -= LS[a, k] * y[k]
            y[a] = acc / LS[a, a]
        for a in range(qr):
            y[a] += sigma[s] * eps_r[s, a]
        ur = np.empty(qr)
        for a in range(qr - 1, -1, -1):
            acc = y[a]
            for k in range(a + 1, qr):
                acc -= LS[k, a] * ur[k]
            ur[a] = acc / LS[a, a]
        # u₁ = K(c₁ − M_1R u_R) + σ L₁⁻ᵀε₁: the mean's part and the noise's part at once
        back = mr1_t @ ur
        w = np.empty(q1)
        u = np.empty(q1)
        for j in range(m1):
            L = Lf[j]
            o = j * q1
            for a in range(q1):  # L_j⁻¹ (Λ₁ᵀh₁ − M_1R u_R) + σ ε
                acc = -back[o + a]
                for i in range(q1):
                    acc += lam1[i, a] * h1[j, i]
                for k in range(a):
                    acc -= L[a, k] * w[k]
                w[a] = acc / L[a, a]
            for a in range(q1):
                w[a] += sigma[s] * eps1[s, j, a]
            for a in range(q1 - 1, -1, -1):
                acc = w[a]
                for k in range(a + 1, q1):
                    acc -= L[k, a] * u[k]
                u[a] = acc / L[a, a]
            for a in range(q1):
                acc = 0.0
                for k in range(q1):
                    acc += lam1[a, k] * u[k]
                out1[s, j, a] = acc
        out_r[s] = rest_vector(ur, lam_r, lvl_start, lvl_fac, rest_q, False)
