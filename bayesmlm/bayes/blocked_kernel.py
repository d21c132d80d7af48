"""Stage 4b, Bayes: the marginal likelihood of several grouping factors and its gradient, as compiled loops.

The Gaussian marginal likelihood with every factor's effects integrated out, from the blocked sufficient
statistics of :class:`~bayesmlm.design.crossprod.CrossProducts` in MixedModels.jl's arrangement: the first
(largest) factor's ``ZᵀZ`` is block-diagonal (a q₁×q₁ block ``A_j`` per level), the other factors' effects
form a dense block ``R`` (``A_RR``, and ``A_R1 = Z_RᵀZ₁``). With ``Λ = T / σ`` block-diagonal and
``M = I + ΛᵀZᵀZΛ``::

    M_j = I + Λ₁ᵀA_jΛ₁,   K_j = M_j⁻¹,   M_R1 = Λ_RᵀA_R1Λ₁,   W = M_R1 K,   S = I + Λ_RᵀA_RRΛ_R − W M_R1ᵀ
    log|M| = Σ_j log|M_j| + log|S|
    ℓ = −½ [n log 2π + 2n log σ + log|M| + (‖y − Xβ‖² − cᵀM⁻¹c) / σ²],   c = ΛᵀZᵀ(y − Xβ)

``S`` (the Schur complement, ``q_R × q_R``: 80 × 80 for 40 items with two terms) is factored densely. The
gradient is ``∂ℓ/∂Λ = −ZᵀZΛM⁻¹ + (h − ZᵀZΛu)uᵀ / σ²`` (``h = Zᵀ(y − Xβ)``, ``u = M⁻¹c``), of which only the
diagonal blocks are needed (each factor's ``Λ_f`` is shared by its levels): with ``P = S⁻¹W`` and
``N = Λ_RᵀA_R1``, the first factor's are ``A_jΛ₁(K_j + W_jᵀP_j) − N_jᵀP_j`` and the dense part's are those
of ``A_RRΛ_R S⁻¹ − A_R1Λ₁Pᵀ``. One gradient costs ``O(m₁q₁³ + q_R² m₁q₁ + q_R³)``, nothing per row.

The dense products use BLAS through numba's ``np.dot``; the per-level algebra is loops. The functions take
arrays only, whatever the model, so numba compiles them once per machine (``cache=True``).
"""

from __future__ import annotations

import math

import numba
import numpy as np

from bayesmlm.bayes.dense_cholesky import cholesky_inverse
from bayesmlm.bayes.direct_kernel import covariance_priors, prior_term, small_cholesky, small_inverse

__all__ = [
    "blocked_density_kernel",
    "first_factor",
    "relative_factors",
    "residual_parts",
    "rest_vector",
    "schur",
]


@numba.njit(cache=True, nogil=True)
def relative_factors(T, sigma, q1, rest_off, rest_q):
    """Return ``Λ₁`` (q₁×q₁) and each other factor's ``Λ_f`` padded into (F, q_max, q_max)."""
    lam1 = np.empty((q1, q1))
    for a in range(q1):
        for b in range(q1):
            lam1[a, b] = T[a, b] / sigma
    qmax = 1
    for f in range(rest_q.shape[0]):
        qmax = max(qmax, rest_q[f])
    lam_r = np.zeros((rest_q.shape[0], qmax, qmax))
    for f in range(rest_q.shape[0]):
        o = rest_off[f]
        for a in range(rest_q[f]):
            for b in range(rest_q[f]):
                lam_r[f, a, b] = T[o + a, o + b] / sigma
    return lam1, lam_r


@numba.njit(cache=True, nogil=True)
def _per_level_left(X, F, transpose):
    """Return ``F_jᵀ X_j`` (or ``F_j X_j`` without ``transpose``) per first-factor level's q₁ rows of ``X``.

    ``F`` is (m₁, q₁, q₁), or (1, q₁, q₁) for one matrix shared by every level (``Λ₁``).
    """
    n1, cols = X.shape
    q1 = F.shape[1]
    out = np.zeros((n1, cols))
    for j in range(n1 // q1):
        f = j if F.shape[0] > 1 else 0
        o = j * q1
        for a in range(q1):
            for k in range(q1):
                v = F[f, k, a] if transpose else F[f, a, k]
                if v != 0.0:
                    for c in range(cols):
                        out[o + a, c] += v * X[o + k, c]
    return out


@numba.njit(cache=True, nogil=True)
def _right_rest(X, lam_r, lvl_start, lvl_fac, rest_q):
    """Return ``X Λ_R`` (``Λ_R`` block-diagonal over the dense part's level blocks, columns of ``X``).

    Block by block, down the rows, with the 1- and 2-term blocks written out: on 60 × 40 subjects ×
    items (120 × 80, 40 two-term blocks) 16 µs, where one loop over rows then blocks took 72.
    """
    rows = X.shape[0]
    out = np.empty(X.shape)
    for blk in range(lvl_start.shape[0]):
        s, f = lvl_start[blk], lvl_fac[blk]
        q = rest_q[f]
        if q == 1:
            l00 = lam_r[f, 0, 0]
            for r in range(rows):
                out[r, s] = X[r, s] * l00
        elif q == 2:
            l00, l01, l10, l11 = lam_r[f, 0, 0], lam_r[f, 0, 1], lam_r[f, 1, 0], lam_r[f, 1, 1]
            for r in range(rows):
                x0, x1 = X[r, s], X[r, s + 1]
                out[r, s] = x0 * l00 + x1 * l10
                out[r, s + 1] = x0 * l01 + x1 * l11
        else:
            for r in range(rows):
                for b in range(q):
                    acc = 0.0
                    for k in range(q):
                        acc += X[r, s + k] * lam_r[f, k, b]
                    out[r, s + b] = acc
    return out


@numba.njit(cache=True, nogil=True)
def diagonal_blocks(A, B, lvl_start, lvl_fac, rest_q, qmax):
    """Return the dense part's diagonal blocks of ``AᵀB``: row ``s + a``, column ``b`` of each block."""
    out = np.zeros((A.shape[1], qmax))
    rows = A.shape[0]
    for blk in range(lvl_start.shape[0]):
        s, f = lvl_start[blk], lvl_fac[blk]
        q = rest_q[f]
        if q == 2:
            c00 = c01 = c10 = c11 = 0.0
            for i in range(rows):
                a0, a1, b0, b1 = A[i, s], A[i, s + 1], B[i, s], B[i, s + 1]
                c00 += a0 * b0
                c01 += a0 * b1
                c10 += a1 * b0
                c11 += a1 * b1
            out[s, 0], out[s, 1], out[s + 1, 0], out[s + 1, 1] = c00, c01, c10, c11
        else:
            for i in range(rows):
                for a in range(q):
                    v = A[i, s + a]
                    for b in range(q):
                        out[s + a, b] += v * B[i, s + b]
    return out


@numba.njit(cache=True, nogil=True)
def rest_vector(v, lam_r, lvl_start, lvl_fac, rest_q, transpose):
    """Return ``Λ_R v`` (or ``Λ_Rᵀ v`` with ``transpose``) for a vector over the dense part."""
    out = np.zeros(v.shape[0])
    for blk in range(lvl_start.shape[0]):
        s, f = lvl_start[blk], lvl_fac[blk]
        q = rest_q[f]
        for a in range(q):
            acc = 0.0
            for k in range(q):
                acc += (lam_r[f, k, a] if transpose else lam_r[f, a, k]) * v[s + k]
            out[s + a] = acc
    return out


@numba.njit(cache=True, nogil=True)
def first_factor(ztz1, lam1):
    """Per first-factor level: ``A_jΛ₁``, ``L_j`` (``M_j = L_jL_jᵀ``), ``K_j = M_j⁻¹``, Σ log|M_j|."""
    m1, q1 = ztz1.shape[0], ztz1.shape[1]
    AL = np.empty((m1, q1, q1))
    Lf = np.zeros((m1, q1, q1))
    K = np.empty((m1, q1, q1))
    M = np.empty((q1, q1))
    w = np.empty(q1)
    logdet = 0.0
    for j in range(m1):
        for a in range(q1):
            for b in range(q1):
                acc = 0.0
                for k in range(q1):
                    acc += ztz1[j, a, k] * lam1[k, b]
                AL[j, a, b] = acc
        for a in range(q1):
            for b in range(q1):
                acc = 1.0 if a == b else 0.0
                for k in range(q1):
                    acc += lam1[k, a] * AL[j, k, b]
                M[a, b] = acc
        L = Lf[j]
        logdet += small_cholesky(M, L, 0.0)
        small_inverse(L, K[j], w)
    return AL, Lf, K, logdet


@numba.njit(cache=True, nogil=True)
def residual_parts(beta, ztx1, zty1, ztx_r, zty_r):
    """Return ``h₁ = Z₁ᵀ(y − Xβ)`` (m₁, q₁) and ``h_R = Z_Rᵀ(y − Xβ)`` (q_R)."""
    m1, q1, p = ztx1.shape
    h1 = np.empty((m1, q1))
    for j in range(m1):
        for a in range(q1):
            acc = zty1[j, a]
            for k in range(p):
                acc -= ztx1[j, a, k] * beta[k]
            h1[j, a] = acc
    hr = zty_r - ztx_r @ beta
    return h1, hr


@numba.njit(cache=True, nogil=True)
def schur(ztz_r, a_1r, lam1, lam_r, lvl_start, lvl_fac, rest_q, K):
    """Return ``(A_R1Λ₁)ᵀ``, ``Nᵀ``, ``M_R1ᵀ``, ``Wᵀ`` (first-factor rows), ``A_RRΛ_R`` and ``S``.

    ``a_1r = A_R1ᵀ`` (m₁q₁ × q_R): with the first factor's levels as rows every inner loop is contiguous.
    """
    arl_t = _per_level_left(a_1r, lam1.reshape((1, lam1.shape[0], lam1.shape[1])), True)
    n_t = _right_rest(a_1r, lam_r, lvl_start, lvl_fac, rest_q)
    mr1_t = _right_rest(arl_t, lam_r, lvl_start, lvl_fac, rest_q)
    w_t = _per_level_left(mr1_t, K, False)
    arr_l = _right_rest(ztz_r, lam_r, lvl_start, lvl_fac, rest_q)
    # Λ_RᵀA_RRΛ_R = (A_RRΛ_R)ᵀΛ_R, A_RR symmetric
    S = _right_rest(np.ascontiguousarray(arr_l.T), lam_r, lvl_start, lvl_fac, rest_q) - np.dot(w_t.T, mr1_t)
    for a in range(S.shape[0]):
        S[a, a] += 1.0
    return arl_t, n_t, mr1_t, w_t, arr_l, S


@numba.njit(cache=True, nogil=True)
def blocked_density_kernel(
    x, p, t_rows, t_cols, t_coord, t_diag, blocks, etas, fixed_codes, fixed_par, sd_codes, sd_par,
    sigma_code, sigma_par, q1, rest_off, rest_q, lvl_start, lvl_fac, ztz1, ztx1, zty1, ztz_r, a_1r,
    ztx_r, zty_r, xtx, xty, yty, n, shift_index, shift, T, grad,
):  # fmt: skip
    """Return the log posterior (less constants) at ``x``; write its gradient into ``grad``.

    ``T`` (Q×Q, zeros) receives every factor's Cholesky factor on its diagonal block (first factor at
    0, dense-part factor ``f`` at ``rest_off[f]``); ``t_*``, ``blocks``, ``etas`` and the prior arrays are
    those of :func:`~bayesmlm.bayes.direct_kernel.density_kernel` over all the factors' terms.
    ``lvl_start``/``lvl_fac`` give each dense-part level block's first column and its factor.
    """
    nx = x.shape[0]
    sigma = math.exp(x[nx - 1])
    s2 = sigma * sigma
    for k in range(t_rows.shape[0]):
        v = x[t_coord[k]]
        T[t_rows[k], t_cols[k]] = math.exp(v) if t_diag[k] else v
    beta = x[:p].copy()
    if shift_index >= 0:
        beta[shift_index] -= shift
    lam1, lam_r = relative_factors(T, sigma, q1, rest_off, rest_q)
    m1 = ztz1.shape[0]
    AL, _, K, logdet = first_factor(ztz1, lam1)
    arl_t, n_t, mr1_t, w_t, arr_l, S = schur(ztz_r, a_1r, lam1, lam_r, lvl_start, lvl_fac, rest_q, K)
    ok, LS, s_inv = cholesky_inverse(S)
    if not ok:  # a point where the marginal covariance is numerically singular: no density (nutpie rejects)
        grad[:] = np.nan
        return -np.inf
    for a in range(LS.shape[0]):
        logdet += 2.0 * math.log(LS[a, a])
    h1, hr = residual_parts(beta, ztx1, zty1, ztx_r, zty_r)
    # u = M⁻¹c by block elimination
    c1 = np.empty((m1, q1))
    v1 = np.empty(m1 * q1)
    for j in range(m1):
        for a in range(q1):
            acc = 0.0
            for k in range(q1):
                acc += lam1[k, a] * h1[j, k]
            c1[j, a] = acc
        for a in range(q1):
            acc = 0.0
            for k in range(q1):
                acc += K[j, a, k] * c1[j, k]
            v1[j * q1 + a] = acc
    cr = rest_vector(hr, lam_r, lvl_start, lvl_fac, rest_q, True)
    ur = s_inv @ (cr - mr1_t.T @ v1)
    u1 = v1 - w_t @ ur
    explained = cr @ ur
    for j in range(m1):
        for a in range(q1):
            explained += c1[j, a] * u1[j * q1 + a]
    p_t = np.dot(w_t, s_inv)  # Pᵀ = WᵀS⁻¹
    wr = rest_vector(ur, lam_r, lvl_start, lvl_fac, rest_q, False)  # Λ_R u_R
    t1 = a_1r @ wr  # A_1R Λ_R u_R
    t_r = arl_t.T @ u1 + ztz_r @ wr  # (ZᵀZΛu)_R
    # ∂ℓ/∂Λ₁, summed over levels
    g1 = np.zeros((q1, q1))
    z1 = np.empty((m1, q1))  # Λ₁ u₁ per level
    qr = S.shape[0]
    X = np.empty((q1, q1))
    NP = np.empty((q1, q1))
    for j in range(m1):
        o = j * q1
        for a in range(q1):
            acc = 0.0
            for k in range(q1):
                acc += lam1[a, k] * u1[o + k]
            z1[j, a] = acc
        for a in range(q1):  # X = K_j + W_jᵀP_j (the diagonal block of M⁻¹), NP = N_jᵀP_j
            for b in range(q1):
                acc = K[j, a, b]
                acc2 = 0.0
                for r in range(qr):
                    acc += w_t[o + a, r] * p_t[o + b, r]
                    acc2 += n_t[o + a, r] * p_t[o + b, r]
                X[a, b] = acc
                NP[a, b] = acc2
        for a in range(q1):
            alu = t1[o + a]
            for k in range(q1):
                alu += AL[j, a, k] * u1[o + k]
            resid = h1[j, a] - alu
            for b in range(q1):
                acc = -NP[a, b]
                for k in range(q1):
                    acc += AL[j, a, k] * X[k, b]
                g1[a, b] += -acc + resid * u1[o + b] / s2
    # ∂ℓ/∂Λ_f for the dense part's factors: the diagonal blocks of A_RRΛ_R S⁻¹ − A_R1Λ₁Pᵀ
    n_rest = rest_q.shape[0]
    qmax = lam_r.shape[1]
    g_r = np.zeros((n_rest, qmax, qmax))
    cross = diagonal_blocks(arl_t, p_t, lvl_start, lvl_fac, rest_q, qmax)  # diagonal blocks of A_R1Λ₁Pᵀ
    for blk in range(lvl_start.shape[0]):
        s, f = lvl_start[blk], lvl_fac[blk]
        q = rest_q[f]
        for a in range(q):
            resid = hr[s + a] - t_r[s + a]
            for b in range(q):
                acc = -cross[s + a, b]
                for k in range(qr):  # S⁻¹ is symmetric: its row, contiguous
                    acc += arr_l[s + a, k] * s_inv[s + b, k]
                g_r[f, a, b] += -acc + resid * ur[s + b] / s2
    # ∂ℓ/∂β and the value
    g_beta = xty - xtx @ beta - ztx_r.T @ wr
    for j in range(m1):
        for k in range(p):
            acc = 0.0
            for a in range(q1):
                acc += ztx1[j, a, k] * z1[j, a]
            g_beta[k] -= acc
    resid2 = yty - 2.0 * (beta @ xty) + beta @ (xtx @ beta)
    quad = resid2 - explained
    total = -0.5 * (n * math.log(2.0 * math.pi) + 2.0 * n * math.log(sigma) + logdet + quad / s2)
    g_sigma = -n / sigma + quad / (s2 * sigma)
    g_T = np.zeros(T.shape)
    for a in range(q1):
        for b in range(q1):
            g_sigma -= g1[a, b] * lam1[a, b] / sigma
            g_T[a, b] = g1[a, b] / sigma
    for f in range(n_rest):
        o = rest_off[f]
        for a in range(rest_q[f]):
            for b in range(rest_q[f]):
                g_sigma -= g_r[f, a, b] * lam_r[f, a, b] / sigma
                g_T[o + a, o + b] = g_r[f, a, b] / sigma
    for k in range(p):
        lp, g = prior_term(fixed_codes[k], fixed_par[k], x[k])
        total += lp
        grad[k] = g_beta[k] / s2 + g
    total += covariance_priors(
        x, T, g_T, t_rows, t_cols, t_coord, t_diag, blocks, etas, sd_codes, sd_par, grad
    )
    lp, g = prior_term(sigma_code, sigma_par, sigma)
    total += lp + x[nx - 1]
    grad[nx - 1] = (g + g_sigma) * sigma + 1.0
    return total
