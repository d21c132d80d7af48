"""Stage 4b, Bayes: a generalized model's log posterior and gradient as one compiled loop (numba, cached).

:class:`~bayesmlm.bayes.glmm_density.GLMMDensity` evaluates here the log posterior of a binomial (logit)
or Poisson (log) mixed model whose blocks are all scalar, each centred or non-centred: the fixed
effects' priors, each block's sd prior on the log scale (with its Jacobian), the group effects' normal
densities and the likelihood, less the constants (added by the caller). The inputs are arrays whatever
the model, so numba compiles the loop once per machine and later processes load it from its cache.

Coordinates: the fixed effects (on centred predictors) ``β`` (``p``), then one ``log sd`` per block,
then the effects of each block in turn (``z`` non-centred, ``c`` centred). A centred block's level
``j`` has mean ``M_j · β`` (its rows of ``means``: the fixed effect of the same term, or for the anchor
factor's intercept the fixed effects of the columns constant within the level) and effect
``r_j = c_j - M_j · β``; a non-centred one ``r_j = sd · z_j``.
"""

from __future__ import annotations

import math

import numba
import numpy as np

from bayesmlm.bayes.direct_kernel import prior_term
from bayesmlm.bayes.nutpie_callback import C_LOGP_SIGNATURE, finish, pack_buffer, take

__all__ = ["BINOMIAL_LOGIT", "POISSON_LOG", "glmm_kernel"]

#: likelihood codes
BINOMIAL_LOGIT = 0
POISSON_LOG = 1


@numba.njit(cache=True, nogil=True)
def glmm_kernel(
    x, X, offset, y, trials, family, fixed_codes, fixed_par, sd_codes, sd_par, codes, Z, starts, levels,
    centred, means, grad,
):  # fmt: skip
    """Return the log posterior (less constants) at ``x``; write its gradient into ``grad``.

    ``codes`` and ``Z`` (blocks, rows) give each row's level and covariate per block; ``starts`` each
    block's first effect coordinate, ``levels`` its number of levels, ``centred`` 1 or 0 and ``means``
    (all levels of all blocks, ``p``) the centred levels' mean rows (zeros for non-centred blocks). The
    integer arrays may be passed as float64 (:func:`glmm_c_logp` reads every input from one buffer).
    """
    n, p = X.shape
    nb = codes.shape[0]
    for k in range(grad.shape[0]):
        grad[k] = 0.0
    lp = 0.0
    for k in range(p):
        v, d = prior_term(fixed_codes[k], fixed_par[k], x[k])
        lp += v
        grad[k] += d
    # group effects r (concatenated over blocks) and their prior densities
    total = means.shape[0]
    r = np.empty(total)
    row = 0
    for b in range(nb):
        u = x[p + b]
        s = math.exp(u)
        v, d = prior_term(sd_codes[b], sd_par[b], s)
        lp += v + u
        grad[p + b] += d * s + 1.0
        for j in range(int(levels[b])):
            e = x[int(starts[b]) + j]
            if int(centred[b]) == 1:
                m = 0.0
                for k in range(p):
                    m += means[row + j, k] * x[k]
                dev = e - m
                lp += -0.5 * (dev / s) ** 2 - u
                grad[int(starts[b]) + j] += -dev / (s * s)
                for k in range(p):
                    grad[k] += dev / (s * s) * means[row + j, k]
                grad[p + b] += (dev / s) ** 2 - 1.0
                r[row + j] = dev
            else:
                lp += -0.5 * e * e
                grad[int(starts[b]) + j] += -e
                r[row + j] = s * e
        row += int(levels[b])
    # the likelihood, and d lp / d eta per row scattered onto beta and the effects
    g_r = np.zeros(total)
    for i in range(n):
        eta = offset[i]
        for k in range(p):
            eta += X[i, k] * x[k]
        row = 0
        for b in range(nb):
            eta += Z[b, i] * r[row + int(codes[b, i])]
            row += int(levels[b])
        if int(family) == 0:  # binomial, logit link: y eta - n log(1 + e^eta), stably
            if eta > 0.0:
                soft = eta + math.log1p(math.exp(-eta))
                prob = 1.0 / (1.0 + math.exp(-eta))
            else:
                e_eta = math.exp(eta)
                soft = math.log1p(e_eta)
                prob = e_eta / (1.0 + e_eta)
            lp += y[i] * eta - trials[i] * soft
            g = y[i] - trials[i] * prob
        else:  # Poisson, log link: y eta - e^eta
            mu = math.exp(eta)
            lp += y[i] * eta - mu
            g = y[i] - mu
        for k in range(p):
            grad[k] += X[i, k] * g
        row = 0
        for b in range(nb):
            g_r[row + int(codes[b, i])] += Z[b, i] * g
            row += int(levels[b])
    # chain rule from r to the coordinates
    row = 0
    for b in range(nb):
        s = math.exp(x[p + b])
        for j in range(int(levels[b])):
            gr = g_r[row + j]
            if int(centred[b]) == 1:
                grad[int(starts[b]) + j] += gr
                for k in range(p):
                    grad[k] -= gr * means[row + j, k]
            else:
                grad[int(starts[b]) + j] += gr * s
                grad[p + b] += gr * r[row + j]
        row += int(levels[b])
    return lp


#: length of the packed buffer's header: (length, n, p, blocks, levels of all blocks, family, constant)
HEADER = 7


def pack_arguments(args: tuple, constant: float) -> np.ndarray:
    """Pack :func:`glmm_kernel`'s inputs (less ``x`` and ``grad``) into one float64 buffer for C.

    The header holds the buffer's length, the sizes and the constant of the log density; the arrays
    follow in the kernel's order, integers as floats (exact: all are far below 2⁵³).
    """
    (
        X,
        offset,
        y,
        trials,
        family,
        fixed_codes,
        fixed_par,
        sd_codes,
        sd_par,
        codes,
        Z,
        starts,
        lv,
        cen,
        means,
    ) = args
    n, p = X.shape
    parts = [X, offset, y, trials, fixed_codes, fixed_par, sd_codes, sd_par, codes, Z, starts, lv, cen, means]
    return pack_buffer([n, p, codes.shape[0], means.shape[0], family, constant], parts)


@numba.cfunc(C_LOGP_SIGNATURE, cache=True, nogil=True)
def glmm_c_logp(dim, x_, out_, logp_, data_):
    """Evaluate the log posterior for nutpie's Rust sampler from the buffer of :func:`pack_arguments`.

    Returns 0, or nutpie's codes 3 (a non-finite gradient) and 4 (a non-finite log density).
    """
    head = numba.carray(data_, (HEADER,))
    buf = numba.carray(data_, (int(head[0]),))
    n, p, nb, total = int(head[1]), int(head[2]), int(head[3]), int(head[4])
    at = HEADER
    X, at = take(buf, at, n * p)
    offset, at = take(buf, at, n)
    y, at = take(buf, at, n)
    trials, at = take(buf, at, n)
    fixed_codes, at = take(buf, at, p)
    fixed_par, at = take(buf, at, 3 * p)
    sd_codes, at = take(buf, at, nb)
    sd_par, at = take(buf, at, 3 * nb)
    codes, at = take(buf, at, nb * n)
    Z, at = take(buf, at, nb * n)
    starts, at = take(buf, at, nb)
    levels, at = take(buf, at, nb)
    centred, at = take(buf, at, nb)
    means, at = take(buf, at, total * p)
    x = numba.carray(x_, (dim,))
    out = numba.carray(out_, (dim,))
    lp = glmm_kernel(
        x, X.reshape((n, p)), offset, y, trials, head[5], fixed_codes, fixed_par.reshape((p, 3)), sd_codes,
        sd_par.reshape((nb, 3)), codes.reshape((nb, n)), Z.reshape((nb, n)), starts, levels, centred,
        means.reshape((total, p)), out,
    )  # fmt: skip
    return finish(dim, out, logp_, lp + head[6])
