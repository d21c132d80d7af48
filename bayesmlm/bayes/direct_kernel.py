"""Stage 4b, Bayes: the direct collapsed density as one compiled loop (numba, cached on disk).

:class:`~bayesmlm.bayes.direct_density.DirectDensity` evaluates its log posterior and gradient here: the
marginal likelihood's per-level q×q algebra, the LKJ Cholesky density of each correlated block and the
prior families, in one call. Written with numpy (about 50 array operations on arrays of a few numbers),
an evaluation on sleepstudy cost 96 µs, almost all of it call overhead; this loop takes a few
microseconds. The function is fixed (its inputs are arrays, whatever the model), so numba compiles it
once per machine and later processes load it from the cache (``cache=True``).

Prior family codes (:data:`FAMILY_CODES`) index the parameter rows ``(a, b, c)``: Normal ``(mu, sigma)``,
StudentT ``(nu, mu, sigma)``, HalfNormal ``(sigma)``, HalfStudentT ``(nu, sigma)``, HalfCauchy ``(beta)``,
Exponential ``(lam)``; the constants of the log densities are added by the caller.
"""

from __future__ import annotations

import math

import numba
import numpy as np

__all__ = ["FAMILY_CODES", "covariance_priors", "density_kernel", "prior_term"]

FAMILY_CODES = {
    "Normal": 0,
    "StudentT": 1,
    "HalfNormal": 2,
    "HalfStudentT": 3,
    "HalfCauchy": 4,
    "Exponential": 5,
}


@numba.njit(cache=True, nogil=True)
def prior_term(code, par, x):
    """Log density of ``x`` less its constant, and its derivative, for one prior."""
    if code == 0 or code == 2:
        mu = par[0] if code == 0 else 0.0
        s = par[1] if code == 0 else par[0]
        z = (x - mu) / s
        return -0.5 * z * z, -z / s
    if code == 1 or code == 3:
        nu = par[0]
        mu = par[1] if code == 1 else 0.0
        s = par[2] if code == 1 else par[1]
        z = (x - mu) / s
        return -0.5 * (nu + 1.0) * math.log1p(z * z / nu), -(nu + 1.0) * z / (s * (nu + z * z))
    if code == 4:
        b = par[0]
        return -math.log1p((x / b) ** 2), -2.0 * x / (b * b + x * x)
    return -par[0] * x, -par[0]


@numba.njit(cache=True, nogil=True)
def small_cholesky(M, L, logdet):
    """Write the Cholesky factor of the small SPD ``M`` into ``L``; return ``logdet + log|M|``."""
    q = M.shape[0]
    for a in range(q):
        for b in range(a + 1):
            acc = M[a, b]
            for k in range(b):
                acc -= L[a, k] * L[b, k]
            if a == b:
                L[a, a] = math.sqrt(acc)
                logdet += 2.0 * math.log(L[a, a])
            else:
                L[a, b] = acc / L[b, b]
    return logdet


@numba.njit(cache=True, nogil=True)
def small_inverse(L, K, w):
    """Write ``(LLᵀ)⁻¹`` into ``K`` from the small Cholesky factor ``L`` (``w``: scratch, length q)."""
    q = L.shape[0]
    for col in range(q):
        for a in range(q):  # forward: L y = e_col
            acc = 1.0 if a == col else 0.0
            for k in range(a):
                acc -= L[a, k] * w[k]
            w[a] = acc / L[a, a]
        for a in range(q - 1, -1, -1):  # back: Lᵀ z = y
            acc = w[a]
            for k in range(a + 1, q):
                acc -= L[k, a] * K[k, col]
            K[a, col] = acc / L[a, a]


@numba.njit(cache=True, nogil=True)
def _scalar_levels(ztz, ztx, zty, lam, beta, s2, g_lam, g_beta):
    """Return (log det, explained) over the levels of a q = 1 block; add to ``g_lam`` and ``g_beta``.

    :func:`density_kernel`'s per-level loop for ``q = 1``: ``M = 1 + λ² zᵀz``, ``u = λh / M``.
    """
    logdet = 0.0
    explained = 0.0
    g = 0.0
    p = beta.shape[0]
    for j in range(ztz.shape[0]):
        a_lam = ztz[j, 0, 0] * lam
        M = 1.0 + lam * a_lam
        logdet += math.log(M)
        h = zty[j, 0]
        for k in range(p):
            h -= ztx[j, 0, k] * beta[k]
        u = lam * h / M
        explained += lam * h * u
        g += -a_lam / M + (h - a_lam * u) * u / s2
        c = lam * u
        for k in range(p):
            g_beta[k] -= ztx[j, 0, k] * c
    g_lam[0, 0] += g
    return logdet, explained


@numba.njit(cache=True, nogil=True)
def density_kernel(
    x, p, q, t_rows, t_cols, t_coord, t_diag, blocks, etas, fixed_codes, fixed_par, sd_codes, sd_par,
    sigma_code, sigma_par, ztz, ztx, zty, xtx, xty, yty, n, shift_index, shift, grad,
):  # fmt: skip
    """Return the log posterior (less constants) at ``x``; write its gradient into ``grad``.

    ``t_*`` place each block coordinate in ``T`` (row, column, position in ``x``, on the log scale or
    not); ``blocks`` holds (start, size, correlated) per block and ``etas`` its LKJ shape.
    """
    m = ztz.shape[0]
    sigma = math.exp(x[x.shape[0] - 1])
    T = np.zeros((q, q))
    for k in range(t_rows.shape[0]):
        v = x[t_coord[k]]
        T[t_rows[k], t_cols[k]] = math.exp(v) if t_diag[k] else v
    beta = x[:p].copy()
    if shift_index >= 0:
        beta[shift_index] -= shift
    lam = T / sigma
    s2 = sigma * sigma
    # the marginal likelihood, level by level
    g_lam = np.zeros((q, q))
    g_beta = np.zeros(p)
    logdet = 0.0
    explained = 0.0
    A_lam = np.empty((q, q))
    M = np.empty((q, q))
    L = np.zeros((q, q))
    K = np.empty((q, q))
    h = np.empty(q)
    c = np.empty(q)
    u = np.empty(q)
    w = np.empty(q)
    if q == 1:  # one scalar term: the same algebra without the q × q loops (InstEval's 2,972 students)
        logdet, explained = _scalar_levels(ztz, ztx, zty, lam[0, 0], beta, s2, g_lam, g_beta)
    for j in range(m if q > 1 else 0):
        for a in range(q):
            for b in range(q):
                acc = 0.0
                for k in range(q):
                    acc += ztz[j, a, k] * lam[k, b]
                A_lam[a, b] = acc
        for a in range(q):
            for b in range(q):
                acc = 1.0 if a == b else 0.0
                for k in range(q):
                    acc += lam[k, a] * A_lam[k, b]
                M[a, b] = acc
        logdet = small_cholesky(M, L, logdet)  # Cholesky of M, then K = M⁻¹ from it
        small_inverse(L, K, w)
        for a in range(q):
            acc = zty[j, a]
            for k in range(p):
                acc -= ztx[j, a, k] * beta[k]
            h[a] = acc
        for a in range(q):
            acc = 0.0
            for k in range(q):
                acc += lam[k, a] * h[k]
            c[a] = acc
        for a in range(q):
            acc = 0.0
            for k in range(q):
                acc += K[a, k] * c[k]
            u[a] = acc
            explained += c[a] * acc
        for a in range(q):
            acc = 0.0
            for k in range(q):
                acc += A_lam[a, k] * u[k]
            w[a] = acc
        for a in range(q):
            for b in range(q):
                acc = 0.0
                for k in range(q):
                    acc += A_lam[a, k] * K[k, b]
                g_lam[a, b] += -acc + (h[a] - w[a]) * u[b] / s2
        for a in range(q):  # Λ u, into c
            acc = 0.0
            for k in range(q):
                acc += lam[a, k] * u[k]
            c[a] = acc
        for k in range(p):
            acc = 0.0
            for a in range(q):
                acc += ztx[j, a, k] * c[a]
            g_beta[k] -= acc
    resid2 = yty
    for a in range(p):
        resid2 -= 2.0 * beta[a] * xty[a]
        for b in range(p):
            resid2 += beta[a] * xtx[a, b] * beta[b]
    quad = resid2 - explained
    total = -0.5 * (n * math.log(2.0 * math.pi) + 2.0 * n * math.log(sigma) + logdet + quad / s2)
    for a in range(p):
        acc = xty[a]
        for b in range(p):
            acc -= xtx[a, b] * beta[b]
        g_beta[a] = (g_beta[a] + acc) / s2
    g_sigma = -n / sigma + quad / (s2 * sigma)
    for a in range(q):
        for b in range(q):
            g_sigma -= g_lam[a, b] * lam[a, b] / sigma
    g_T = g_lam / sigma
    # priors: fixed effects
    for k in range(p):
        lp, g = prior_term(fixed_codes[k], fixed_par[k], x[k])
        total += lp
        grad[k] = g_beta[k] + g
    total += covariance_priors(
        x, T, g_T, t_rows, t_cols, t_coord, t_diag, blocks, etas, sd_codes, sd_par, grad
    )
    lp, g = prior_term(sigma_code, sigma_par, sigma)
    total += lp + x[x.shape[0] - 1]
    grad[x.shape[0] - 1] = (g + g_sigma) * sigma + 1.0
    return total


@numba.njit(cache=True, nogil=True)
def covariance_priors(x, T, g_T, t_rows, t_cols, t_coord, t_diag, blocks, etas, sd_codes, sd_par, grad):
    """Return the covariance blocks' log prior (with the log transforms' Jacobians); write their gradient.

    ``g_T`` holds the likelihood's gradient with respect to ``T`` (the block-diagonal Cholesky factor of
    the effects' covariance) and gains the priors' (changed in place); each block coordinate's total
    gradient is written into ``grad``. Every block's sds take their priors, a correlated block adds
    PyMC's LKJ density of its Cholesky factor (less the normalising constant).
    """
    total = 0.0
    # each block's sds (and the LKJ density of a correlated block's Cholesky factor)
    for bk in range(blocks.shape[0]):
        start, size, correlated = blocks[bk, 0], blocks[bk, 1], blocks[bk, 2]
        for i in range(size):
            r = start + i
            s2i = 0.0
            for k in range(i + 1):
                s2i += T[r, start + k] ** 2
            si = math.sqrt(s2i)
            lp, g = prior_term(sd_codes[r], sd_par[r], si)
            total += lp
            if correlated:
                a = 2.0 * etas[bk] - 2.0 + size - i
                total += a * math.log(T[r, r]) - (a + i) * math.log(si)
                coef = -(a + i) / s2i + g / si
                for k in range(i + 1):
                    g_T[r, start + k] += coef * T[r, start + k]
                g_T[r, r] += a / T[r, r]
            else:
                g_T[r, r] += g
    for k in range(t_rows.shape[0]):
        gv = g_T[t_rows[k], t_cols[k]]
        if t_diag[k]:
            total += x[t_coord[k]]  # the log transform's Jacobian
            gv = gv * T[t_rows[k], t_cols[k]] + 1.0
        grad[t_coord[k]] = gv
    return total


@numba.njit(cache=True, nogil=True)
def conditional_kernel(ztz, ztx, zty, lam, beta, sigma, eps, out):
    """Write ``b = Λ L⁻ᵀ(L⁻¹Λᵀh + σε)`` for draws × levels into ``out`` (S, m, q), as a loop.

    ``L Lᵀ = I + ΛᵀA_jΛ`` and ``h = g_j − B_jβ`` per level; the numpy version of the same algebra on
    4,000 draws × 10,000 levels (batched ``cholesky`` and ``solve``) took 28 s, this loop about 1 s.
    """
    S, m, q = out.shape
    p = beta.shape[1]
    A_lam = np.empty((q, q))
    L = np.zeros((q, q))
    h = np.empty(q)
    w = np.empty(q)
    u = np.empty(q)
    for s in range(S):
        for j in range(m):
            for a in range(q):
                for b in range(q):
                    acc = 0.0
                    for k in range(q):
                        acc += ztz[j, a, k] * lam[s, k, b]
                    A_lam[a, b] = acc
            for a in range(q):  # Cholesky of I + ΛᵀAΛ
                for b in range(a + 1):
                    acc = 1.0 if a == b else 0.0
                    for k in range(q):
                        acc += lam[s, k, a] * A_lam[k, b]
                    for k in range(b):
                        acc -= L[a, k] * L[b, k]
                    L[a, b] = math.sqrt(acc) if a == b else acc / L[b, b]
            for a in range(q):
                acc = zty[j, a]
                for k in range(p):
                    acc -= ztx[j, a, k] * beta[s, k]
                h[a] = acc
            for a in range(q):  # forward: L w = Λᵀh, then + σε
                acc = 0.0
                for k in range(q):
                    acc += lam[s, k, a] * h[k]
                for k in range(a):
                    acc -= L[a, k] * w[k]
                w[a] = acc / L[a, a]
            for a in range(q):
                w[a] += sigma[s] * eps[s, j, a]
            for a in range(q - 1, -1, -1):  # back: Lᵀ u = w
                acc = w[a]
                for k in range(a + 1, q):
                    acc -= L[k, a] * u[k]
                u[a] = acc / L[a, a]
            for a in range(q):
                acc = 0.0
                for k in range(q):
                    acc += lam[s, a, k] * u[k]
                out[s, j, a] = acc
