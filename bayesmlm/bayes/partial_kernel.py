"""Stage 4b, Bayes: the partially collapsed density as one compiled loop (numba, cached on disk).

:class:`~bayesmlm.bayes.partial_density.PartialDensity` evaluates its log posterior and gradient here.
The largest factor's effects are integrated out; every other factor's effects are parameters. Given
those, their contribution ``o = Σ_t z_t r_t[level]`` is an offset, and what remains is the one-factor
collapsed model of ``y − o``. Its density is :func:`~bayesmlm.bayes.direct_kernel.density_kernel` on
the statistics of ``y − o`` (``Z₁ᵀ(y − o)``, ``Xᵀ(y − o)``, ``‖y − o‖²``; ``Z₁ᵀZ₁``, ``Z₁ᵀX`` and ``XᵀX``
do not change), formed from fixed cross-products of the sampled terms
(:mod:`bayesmlm.bayes.partial_stats`), so that an evaluation reads no rows. The offset's gradient is
``∂ℓ/∂o_i = (y_i − o_i − x_iβ − z₁ᵢᵀb̂_j) / σ²``, with ``b̂_j = ΛM_j⁻¹Λᵀh_j`` the conditional mean of the
integrated-out level ``j`` of row ``i`` (:func:`~bayesmlm.bayes.direct_kernel.conditional_kernel` with no
noise). The other factors' effects are centred (``c ~ N(μ, sd)``, ``r = c − μ``, ``μ`` the fixed effects
the term is anchored on, and for a factor nested in another its parent's effect, as
:func:`bayesmlm.bayes.pymc_model.linear_predictor` centres them with ``nested=True``) or non-centred
(``r = z·sd``, ``z ~ N(0, 1)``), each term with its own sd.
"""

from __future__ import annotations

import math

import numba
import numpy as np

from bayesmlm.bayes.direct_kernel import conditional_kernel, density_kernel, prior_term

__all__ = ["partial_conditional", "partial_kernel"]


@numba.njit(cache=True, nogil=True)
def partial_kernel(
    x, sub_index, p, q, t_rows, t_cols, t_coord, t_diag, blocks, etas, fixed_codes, fixed_par, sd_codes,
    sd_par, sigma_code, sigma_par, ztz, ztx, zty, xtx, xty, n, shift_index, shift, o_start, a_indptr,
    a_indices, a_data, b_indptr, b_indices, b_data, xo, yo, yty, o_off, o_levels, o_sd, o_centred, o_mean,
    o_parent, o_parent_of, o_order, o_sd_codes, o_sd_par, pshift, k_int, grad,
):  # fmt: skip
    """Return the log posterior (less constants) at ``x``; write its gradient into ``grad``.

    ``sub_index`` picks the one-factor density's coordinates (fixed effects, the collapsed factor's
    blocks, log σ) out of ``x``; the ``o_*`` arrays describe the other factors' terms: row codes and
    columns (T, n), first coordinate of their effects, number of levels, coordinate of their log sd,
    centred or not; a centred term's levels have the mean ``o_mean[t] @ orig`` (T, width, p) plus, for
    a factor nested in another (``o_parent[t] >= 0``), the parent term's effect at ``o_parent_of[t]``;
    ``o_order`` lists the terms parents first; then the sd priors. ``o_start`` … ``yty`` are the
    sampled terms' cross-products (:class:`~bayesmlm.bayes.partial_stats.OtherStats`), formed from the
    rows as the statistics have them (centred predictors, shifted response).
    """
    T = o_start.shape[0]
    R = yo.shape[0]
    for k in range(grad.shape[0]):
        grad[k] = 0.0
    beta = x[:p]
    orig = beta.copy()  # the fixed effects on the original scale, which centred terms are anchored on
    if k_int >= 0:
        acc = 0.0
        for k in range(p):
            acc += beta[k] * pshift[k]
        orig[k_int] = beta[k_int] - acc
    g_orig = np.zeros(p)
    total = 0.0
    # the other factors' effects and their priors
    sds = np.empty(T)
    g_sd = np.empty(T)
    width = 0
    for t in range(T):
        width = max(width, o_levels[t])
    r = np.zeros((T, width))
    g_mu = np.zeros((T, width))
    for tt in range(T):
        t = o_order[tt]
        sd = math.exp(x[o_sd[t]])
        sds[t] = sd
        lp, g = prior_term(o_sd_codes[t], o_sd_par[t], sd)
        total += lp + x[o_sd[t]]
        g_sd[t] = g * sd + 1.0
        for level in range(o_levels[t]):
            v = x[o_off[t] + level]
            if o_centred[t]:
                mu = 0.0
                for k in range(p):
                    mu += o_mean[t, level, k] * orig[k]
                if o_parent[t] >= 0:
                    mu += r[o_parent[t], o_parent_of[t, level]]
                z = (v - mu) / sd
                total += -0.5 * z * z - math.log(sd)
                r[t, level] = v - mu
                grad[o_off[t] + level] = -z / sd
                g_sd[t] += z * z - 1.0
                g_mu[t, level] = z / sd
            else:
                total += -0.5 * v * v
                r[t, level] = v * sd
                grad[o_off[t] + level] = -v
    # the statistics of y − o from the cross-products: Z₁ᵀy − Aᵀr, Xᵀy − Xoᵀr, ‖y‖² − 2 yo·r + rᵀBr
    m = ztz.shape[0]
    rf = np.empty(R)
    for t in range(T):
        for level in range(o_levels[t]):
            rf[o_start[t] + level] = r[t, level]
    zty_o = zty.copy()
    zf = zty_o.reshape(m * q)
    xty_o = xty.copy()
    br = np.zeros(R)
    yty_o = yty
    for k in range(R):
        rk = rf[k]
        for e in range(a_indptr[k], a_indptr[k + 1]):
            zf[a_indices[e]] -= a_data[e] * rk
        for c in range(p):
            xty_o[c] -= xo[k, c] * rk
        acc = 0.0
        for e in range(b_indptr[k], b_indptr[k + 1]):
            acc += b_data[e] * rf[b_indices[e]]
        br[k] = acc
        yty_o += rk * (acc - 2.0 * yo[k])
    xs = np.empty(sub_index.shape[0])
    for k in range(sub_index.shape[0]):
        xs[k] = x[sub_index[k]]
    g_sub = np.empty(sub_index.shape[0])
    total += density_kernel(
        xs, p, q, t_rows, t_cols, t_coord, t_diag, blocks, etas, fixed_codes, fixed_par, sd_codes, sd_par,
        sigma_code, sigma_par, ztz, ztx, zty_o, xtx, xty_o, yty_o, n, shift_index, shift, g_sub,
    )  # fmt: skip
    for k in range(sub_index.shape[0]):
        grad[sub_index[k]] += g_sub[k]
    # the conditional means of the integrated-out effects, for the offset's gradient
    sigma = math.exp(xs[xs.shape[0] - 1])
    lam = np.zeros((1, q, q))
    for k in range(t_rows.shape[0]):
        v = xs[t_coord[k]]
        lam[0, t_rows[k], t_cols[k]] = (math.exp(v) if t_diag[k] else v) / sigma
    beta_s = np.empty((1, p))
    for k in range(p):
        beta_s[0, k] = beta[k]
    if shift_index >= 0:
        beta_s[0, shift_index] -= shift
    b_hat = np.empty((1, m, q))
    if q == 1:  # b̂ = λ²h / (1 + λ² zᵀz), without the q × q loops
        l2 = lam[0, 0, 0] * lam[0, 0, 0]
        for j in range(m):
            h = zty_o[j, 0]
            for k in range(p):
                h -= ztx[j, 0, k] * beta_s[0, k]
            b_hat[0, j, 0] = l2 * h / (1.0 + l2 * ztz[j, 0, 0])
    else:
        conditional_kernel(ztz, ztx, zty_o, lam, beta_s, np.array([sigma]), np.zeros((1, m, q)), b_hat)
    s2 = sigma * sigma
    bf = b_hat[0].reshape(m * q)
    G = np.zeros((T, width))  # Z_Oᵀ(y − o − Xβ − Z₁b̂) / σ² = (yo − Br − Xo β − A b̂) / σ²
    for t in range(T):
        for level in range(o_levels[t]):
            k = o_start[t] + level
            acc = yo[k] - br[k]
            for c in range(p):
                acc -= xo[k, c] * beta_s[0, c]
            for e in range(a_indptr[k], a_indptr[k + 1]):
                acc -= a_data[e] * bf[a_indices[e]]
            G[t, level] = acc / s2
    for tt in range(T - 1, -1, -1):  # children first: their means carry their parents' effects
        t = o_order[tt]
        for level in range(o_levels[t]):
            gl = G[t, level]
            if o_centred[t]:
                grad[o_off[t] + level] += gl
                d_mu = g_mu[t, level] - gl
                for k in range(p):
                    g_orig[k] += d_mu * o_mean[t, level, k]
                if o_parent[t] >= 0:
                    G[o_parent[t], o_parent_of[t, level]] += d_mu
            else:
                grad[o_off[t] + level] += gl * sds[t]
                g_sd[t] += gl * r[t, level]
        grad[o_sd[t]] = g_sd[t]
    # the means are of original-scale fixed effects: orig_k = β_k − β·shift for the intercept
    for k in range(p):
        if k == k_int:
            for j2 in range(p):
                grad[j2] += g_orig[k] * ((1.0 if j2 == k else 0.0) - pshift[j2])
        else:
            grad[k] += g_orig[k]
    return total


@numba.njit(cache=True, nogil=True)
def partial_conditional(
    ztz, ztx, zty, lam, beta, sigma, eps, r, o_start, o_levels, a_indptr, a_indices, a_data, out
):
    """Draw the integrated-out factor's effects given each draw's other effects ``r`` (S, T, width).

    For each draw ``Z₁ᵀ(y − o) = Z₁ᵀy − Aᵀr`` is formed from the cross-products
    (:class:`~bayesmlm.bayes.partial_stats.OtherStats`) and
    :func:`~bayesmlm.bayes.direct_kernel.conditional_kernel` draws ``b = ΛL⁻ᵀ(L⁻¹Λᵀh + σε)`` from it.
    """
    S, m, q = out.shape
    T = o_start.shape[0]
    zty_o = np.empty((m, q))
    zf = zty_o.reshape(m * q)
    for s in range(S):
        for j in range(m):
            for a in range(q):
                zty_o[j, a] = zty[j, a]
        for t in range(T):
            for level in range(o_levels[t]):
                k = o_start[t] + level
                rk = r[s, t, level]
                for e in range(a_indptr[k], a_indptr[k + 1]):
                    zf[a_indices[e]] -= a_data[e] * rk
        conditional_kernel(
            ztz, ztx, zty_o, lam[s : s + 1], beta[s : s + 1], sigma[s : s + 1], eps[s : s + 1], out[s : s + 1]
        )
