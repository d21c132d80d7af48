"""Stage 4b, Bayes: the exact conditional draws of every factor's group effects, as a PyTensor graph.

For a model with several grouping factors the collapsed path's group effects need the blocked
factorisation (per-level blocks for the first factor, a dense block for the others); this module
compiles it once per structure (numba) and applies it to each posterior draw. One grouping factor is
done in numpy instead (:func:`bayesmlm.bayes.conditional.draw_one_factor_effects`).
"""

from __future__ import annotations

import numpy as np
import pytensor
import pytensor.tensor as pt

from bayesmlm.design.covariance import RandomStructure
from bayesmlm.design.crossprod import CrossProducts
from bayesmlm.linalg.blocked import SymbolicStats, decompose, relative_factor, symbolic_stats
from bayesmlm.linalg.small import small_solve_upper_t

__all__ = ["draw_group_effects"]


def _conditional_graph(structure: RandomStructure, sym: SymbolicStats):
    """Symbolic exact conditional draw of every factor's group effects, given the inputs returned."""
    theta = pt.vector("theta")
    beta = pt.vector("beta")
    sigma = pt.scalar("sigma")
    first, rest = structure.factors[0], structure.factors[1:]
    q1 = first.q
    eps1 = pt.matrix("eps1")  # (m1, q1) standard normal
    eps_rest = pt.vector("eps_rest")  # (q_R,)
    dec = decompose(theta, structure, sym)
    L1 = [[dec.L1[:, i, j] for j in range(i + 1)] for i in range(q1)]
    v1 = dec.c1_y - pt.tensordot(dec.c1_x, beta, axes=[[2], [0]]) + sigma * eps1
    out = []
    if rest:
        v_rest = dec.cr_y - pt.dot(dec.cr_x, beta) + sigma * eps_rest
        u_rest = pt.linalg.solve_triangular(dec.L_rest.T, v_rest, lower=False)
        v1 = v1 - pt.tensordot(dec.C_t, u_rest, axes=[[2], [0]])
    u1 = small_solve_upper_t(L1, v1, q1)
    out.append(pt.dot(u1, relative_factor(theta, first).T))
    start = 0
    for f in rest:
        width = f.n_levels * f.q
        u = u_rest[start : start + width].reshape((f.n_levels, f.q))
        out.append(pt.dot(u, relative_factor(theta, f).T))
        start += width
    return [theta, beta, sigma, eps1, eps_rest], out


_COMPILED: dict[tuple, object] = {}


def draw_group_effects(
    structure: RandomStructure,
    stats: CrossProducts,
    theta: np.ndarray,
    beta: np.ndarray,
    sigma: np.ndarray,
    rng: np.random.Generator,
    dtype=np.float64,
) -> list[np.ndarray]:
    """Draw every factor's group effects from their exact conditional, one draw per posterior sample.

    Parameters
    ----------
    structure : RandomStructure
    stats : CrossProducts
        The cross-products the fixed effects ``beta`` refer to (centred, as sampled).
    theta : ndarray, shape (S, n_theta)
    beta : ndarray, shape (S, p)
    sigma : ndarray, shape (S,)
    rng : numpy Generator
    dtype : numpy dtype
        Of the arrays returned (each draw is computed in float64 and stored in it).

    Returns
    -------
    list of ndarray
        Per factor (in ``structure.factors`` order), shape ``(S, levels, q)``.
    """
    key = (tuple(f.block_sizes for f in structure.factors), tuple(f.n_levels for f in structure.factors[1:]))
    sym, inputs, values = symbolic_stats(stats, structure)
    if key not in _COMPILED:
        args, outputs = _conditional_graph(structure, sym)
        _COMPILED[key] = pytensor.function([*args, *inputs], outputs, on_unused_input="ignore", mode="NUMBA")
    fn = _COMPILED[key]
    first, rest = structure.factors[0], structure.factors[1:]
    q_rest = sum(f.n_levels * f.q for f in rest)
    S = theta.shape[0]
    out = [np.empty((S, f.n_levels, f.q), dtype=dtype) for f in structure.factors]
    for s in range(S):
        eps1 = rng.standard_normal((first.n_levels, first.q))
        eps_rest = rng.standard_normal(q_rest)
        for k, b in enumerate(fn(theta[s], beta[s], sigma[s], eps1, eps_rest, *values)):
            out[k][s] = b
    return out
