"""lme4's profiled REML/ML deviance as a PyTensor function of theta and the cross-products.

With ``Λ`` the relative covariance factor built from ``theta`` (see :mod:`bayesmlm.covariance`), the
penalised least-squares system of a linear mixed model is factored blockwise::

    L Lᵀ = Λᵀ Zᵀ Z Λ + I,      L = [[L₁, 0], [C, L_R]]
    R_X R_Xᵀ = Xᵀ X − (cross terms)

where ``L₁`` is block diagonal over the levels of the first (largest) factor and is computed with the
unrolled small Cholesky of :mod:`bayesmlm.linalg`, and ``L_R`` is the dense Cholesky factor of the
Schur complement for the remaining factors. With ``r²`` the penalised residual sum of squares, the
profiled deviances (``sigma`` and ``beta`` profiled out) are::

    ML:    log|L|² + n (1 + log(2π r² / n))
    REML:  log|L|² + log|R_X|² + (n − p) (1 + log(2π r² / (n − p)))

:func:`decompose` builds every intermediate symbolically; :func:`profiled_deviance` is the objective.
Both are pure functions of ``theta`` and of the :class:`~bayesmlm.crossprod.CrossProducts`.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import pytensor.tensor as pt
from pytensor.tensor.linalg import cholesky, solve_triangular

from bayesmlm.covariance import FactorTerms, RandomStructure
from bayesmlm.crossprod import CrossProducts
from bayesmlm.linalg import small_cholesky, small_solve_lower, stack_lower

__all__ = ["Decomposition", "decompose", "profiled_deviance", "relative_factor"]


class Decomposition(NamedTuple):
    """Symbolic intermediates of the blocked factorisation at one ``theta``."""

    L1: pt.TensorVariable  # (m1, q1, q1) lower triangular
    c1_y: pt.TensorVariable  # (m1, q1)
    c1_x: pt.TensorVariable  # (m1, q1, p)
    C_t: pt.TensorVariable | None  # (m1, q1, qR): Cᵀ per level
    L_rest: pt.TensorVariable | None  # (qR, qR)
    cr_y: pt.TensorVariable | None  # (qR,)
    cr_x: pt.TensorVariable | None  # (qR, p)
    R_X: pt.TensorVariable  # (p, p) lower triangular
    c_x: pt.TensorVariable  # (p,)
    beta: pt.TensorVariable  # (p,)
    r2: pt.TensorVariable  # penalised residual sum of squares
    logdet_L: pt.TensorVariable  # log|L|²
    logdet_RX: pt.TensorVariable  # log|R_X|²


def relative_factor(theta: pt.TensorVariable, factor: FactorTerms) -> pt.TensorVariable:
    """Symbolic ``Λ`` (q×q) of one factor from the full ``theta``."""
    rows, cols = factor.lower_index
    lam = pt.zeros((factor.q, factor.q), dtype=theta.dtype)
    return pt.set_subtensor(lam[rows, cols], theta[factor.theta_slice])


def _times_rest_lambda(M: pt.TensorVariable, theta, rest: tuple[FactorTerms, ...]):
    """``M Λ_R`` for ``M`` of shape ``(r, q_R)``, with ``Λ_R`` block diagonal over the rest's levels."""
    parts = []
    start = 0
    for f in rest:
        width = f.n_levels * f.q
        piece = M[:, start : start + width].reshape((M.shape[0], f.n_levels, f.q))
        piece = pt.tensordot(piece, relative_factor(theta, f), axes=[[2], [0]])
        parts.append(piece.reshape((M.shape[0], width)))
        start += width
    return pt.concatenate(parts, axis=1) if len(parts) > 1 else parts[0]


def decompose(
    theta: pt.TensorVariable, structure: RandomStructure, stats: CrossProducts
) -> Decomposition:
    """Build the blocked Cholesky factorisation of the mixed-model equations at ``theta``.

    Parameters
    ----------
    theta : pytensor vector
        Relative covariance parameters, ``structure.n_theta`` long.
    structure : RandomStructure
    stats : CrossProducts

    Returns
    -------
    Decomposition
        Symbolic tensors; compile the ones you need.

    Examples
    --------
    >>> import numpy as np, pytensor.tensor as pt, bayesmlm as bm
    >>> from bayesmlm.design import make_design
    >>> from bayesmlm.covariance import random_structure
    >>> from bayesmlm.crossprod import cross_products
    >>> d = make_design("Reaction ~ Days + (1 | Subject)", bm.load_dataset("sleepstudy"))
    >>> s = random_structure(d)
    >>> theta = pt.vector("theta")
    >>> dec = decompose(theta, s, cross_products(d, s))
    >>> dec.beta.eval({theta: np.array([0.0])}).round(3)
    array([251.405,  10.467])
    """
    first, rest = structure.factors[0], structure.factors[1:]
    q1, m1, p = first.q, first.n_levels, stats.p
    lam1 = relative_factor(theta, first)
    a1 = pt.matmul(pt.matmul(lam1.T, stats.ztz1), lam1) + pt.eye(q1)
    L1 = small_cholesky(a1, q1)
    logdet_L = 2.0 * sum(pt.sum(pt.log(L1[i][i])) for i in range(q1))
    c1_x = small_solve_lower(L1, pt.matmul(lam1.T, stats.ztx1), q1)
    c1_y = small_solve_lower(L1, pt.matmul(lam1.T, stats.zty1[:, :, None]), q1)[:, :, 0]
    flat_x = c1_x.reshape((m1 * q1, p))
    flat_y = c1_y.reshape((m1 * q1,))
    rx_cross = stats.xtx - flat_x.T @ flat_x
    rhs_x = stats.xty - flat_x.T @ flat_y
    r2 = stats.yty - pt.sum(flat_y**2)
    C_t = L_rest = cr_y = cr_x = None
    if stats.has_rest:
        q_rest = stats.ztz_rest.shape[0]
        t = pt.tensordot(
            pt.as_tensor(stats.ztz_rest1).reshape((q_rest, m1, q1)), lam1, axes=[[2], [0]]
        )
        t = _times_rest_lambda(
            t.reshape((q_rest, m1 * q1)).T, theta, rest
        )  # (m1 q1, qR) = (Λ_Rᵀ T)ᵀ
        C_t = small_solve_lower(L1, t.reshape((m1, q1, q_rest)), q1)
        flat_c = C_t.reshape((m1 * q1, q_rest))
        lam_a = _times_rest_lambda(pt.as_tensor(stats.ztz_rest), theta, rest)
        a_rest = _times_rest_lambda(lam_a.T, theta, rest) + pt.eye(q_rest) - flat_c.T @ flat_c
        L_rest = cholesky(a_rest, lower=True)
        logdet_L = logdet_L + 2.0 * pt.sum(pt.log(pt.diagonal(L_rest)))
        lam_zx = _times_rest_lambda(pt.as_tensor(stats.ztx_rest).T, theta, rest).T
        lam_zy = _times_rest_lambda(pt.as_tensor(stats.zty_rest)[None, :], theta, rest)[0]
        cr_x = solve_triangular(L_rest, lam_zx - flat_c.T @ flat_x, lower=True)
        cr_y = solve_triangular(L_rest, lam_zy - flat_c.T @ flat_y, lower=True)
        rx_cross = rx_cross - cr_x.T @ cr_x
        rhs_x = rhs_x - cr_x.T @ cr_y
        r2 = r2 - pt.sum(cr_y**2)
    if p > 0:
        R_X = cholesky(rx_cross, lower=True)
        c_x = solve_triangular(R_X, rhs_x, lower=True)
        beta = solve_triangular(R_X.T, c_x, lower=False)
        r2 = r2 - pt.sum(c_x**2)
        logdet_RX = 2.0 * pt.sum(pt.log(pt.diagonal(R_X)))
    else:
        R_X = pt.zeros((0, 0))
        c_x = beta = pt.zeros((0,))
        logdet_RX = pt.as_tensor(0.0)
    return Decomposition(
        L1=stack_lower(L1, q1),
        c1_y=c1_y,
        c1_x=c1_x,
        C_t=C_t,
        L_rest=L_rest,
        cr_y=cr_y,
        cr_x=cr_x,
        R_X=R_X,
        c_x=c_x,
        beta=beta,
        r2=r2,
        logdet_L=logdet_L,
        logdet_RX=logdet_RX,
    )


def profiled_deviance(
    theta: pt.TensorVariable, structure: RandomStructure, stats: CrossProducts, reml: bool = True
) -> pt.TensorVariable:
    """lme4's profiled deviance (ML) or REML criterion at ``theta``: ``-2 ×`` the (restricted) log-likelihood.

    Parameters
    ----------
    theta : pytensor vector
    structure : RandomStructure
    stats : CrossProducts
    reml : bool
        REML criterion if true, ML deviance otherwise.

    Returns
    -------
    pytensor scalar

    Examples
    --------
    >>> import numpy as np, pytensor.tensor as pt, bayesmlm as bm
    >>> from bayesmlm.design import make_design
    >>> from bayesmlm.covariance import random_structure
    >>> from bayesmlm.crossprod import cross_products
    >>> d = make_design("Yield ~ 1 + (1 | Batch)", bm.load_dataset("Dyestuff"))
    >>> s = random_structure(d)
    >>> theta = pt.vector("theta")
    >>> dev = profiled_deviance(theta, s, cross_products(d, s), reml=True)
    >>> round(float(dev.eval({theta: np.array([0.7525])})), 2)
    319.65
    """
    dec = decompose(theta, structure, stats)
    n, p = stats.n, stats.p
    dof = n - p if reml else n
    dev = dec.logdet_L + dof * (1.0 + pt.log(2.0 * math.pi * dec.r2 / dof))
    if reml:
        dev = dev + dec.logdet_RX
    return dev
