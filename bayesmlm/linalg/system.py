"""Stage 3, linear algebra: the mixed-model equations laid out for the blocked factorisation, once per data.

With ``Λ`` the relative covariance factor (:mod:`bayesmlm.design.covariance`) and the cross-products
of ``[Z X y]`` (:mod:`bayesmlm.design.crossprod`), lme4's penalised least-squares system, augmented with
the fixed effects and the response, is ::

    M(θ) = Λ̃ᵀ [Z X y]ᵀ[Z X y] Λ̃ + diag(I, 0, 0),      Λ̃ = diag(Λ, I_p, 1)

and it is laid out in MixedModels.jl's arrangement:

- the **first** factor (the one with the most levels): block diagonal, one ``q₁ × q₁`` block
  ``Z_{1j}ᵀ Z_{1j}`` per level;
- the **trailing** block, dense: the levels of the other factors (level-major, ``q_f`` terms each), then
  the ``p`` fixed-effect columns, then ``y``; its cross-products ``G_TT`` are held as one array;
- the **coupling** between them, ``G_T1``, dense or sparse as its fill-in dictates
  (:mod:`bayesmlm.linalg.coupling`).

:func:`blocked_system` builds this once per set of cross-products (and keeps it while they live); the
factorisation at each theta (:mod:`bayesmlm.linalg.factorize`) only reads it. No part of it depends on
theta, and nothing is compiled, so a new model structure costs nothing extra.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass

import numpy as np

from bayesmlm.design.covariance import FactorTerms, RandomStructure
from bayesmlm.design.crossprod import CrossProducts
from bayesmlm.linalg.coupling import DenseCoupling, SparseCoupling, coupling_blocks, make_coupling

__all__ = ["BlockedSystem", "FactorLayout", "blocked_system"]


@dataclass(frozen=True, eq=False)
class FactorLayout:
    """Where one grouping factor sits: its levels, terms, rows and its part of theta.

    Attributes
    ----------
    group : str
    levels, q : int
        Number of levels and random effects per level.
    start : int
        First row in the trailing block (0 for the first factor, which is not in it).
    rows, cols : ndarray of int
        Position in ``Λ`` of each of the factor's entries of theta.
    theta : slice
        The factor's entries of the full theta.
    """

    group: str
    levels: int
    q: int
    start: int
    rows: np.ndarray
    cols: np.ndarray
    theta: slice

    @classmethod
    def of(cls, factor: FactorTerms, start: int = 0) -> FactorLayout:
        """Return the layout of a :class:`~bayesmlm.design.covariance.FactorTerms` starting at ``start``."""
        rows, cols = factor.lower_index
        return cls(factor.group, factor.n_levels, factor.q, start, rows, cols, factor.theta_slice)

    @property
    def stop(self) -> int:
        """One past the factor's last row in the trailing block."""
        return self.start + self.levels * self.q

    def relative_factor(self, theta: np.ndarray) -> np.ndarray:
        """``Λ`` (q×q) of this factor from the full theta."""
        lam = np.zeros((self.q, self.q))
        lam[self.rows, self.cols] = theta[self.theta]
        return lam


@dataclass(frozen=True, eq=False)
class BlockedSystem:
    """The augmented mixed-model equations of one data set, laid out for :func:`~.factorize.factorize`.

    Attributes
    ----------
    n, p : int
        Observations and fixed-effect columns.
    n_theta : int
    first : FactorLayout
        The block-diagonal factor.
    first_ztz : ndarray, shape (m₁, q₁, q₁)
        ``Z_{1j}ᵀ Z_{1j}`` for each of its levels.
    rest : tuple of FactorLayout
        The other factors, in the trailing block.
    n_rest : int
        Their rows in the trailing block (``Σ m_f q_f``).
    gram : ndarray, shape (n_T, n_T)
        ``G_TT``: the trailing rows' cross-products, ``n_T = n_rest + p + 1`` (full, symmetric).
    coupling : DenseCoupling or SparseCoupling
        ``G_T1``.
    log_weights : float
        ``Σ log w_i`` of the prior weights (lme4's ``ldW``), subtracted from the deviance.
    """

    n: int
    p: int
    n_theta: int
    first: FactorLayout
    first_ztz: np.ndarray
    rest: tuple[FactorLayout, ...]
    n_rest: int
    gram: np.ndarray
    coupling: DenseCoupling | SparseCoupling
    log_weights: float = 0.0

    @property
    def n_trailing(self) -> int:
        """Rows of the trailing block: the other factors' effects, ``p`` fixed effects and ``y``."""
        return self.n_rest + self.p + 1

    @property
    def scalar_rest(self) -> bool:
        """Whether every trailing factor has one effect per level (``Λ`` acts on it as a scaling)."""
        return all(f.q == 1 for f in self.rest)


_SYSTEMS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def blocked_system(structure: RandomStructure, stats: CrossProducts) -> BlockedSystem:
    """Lay out the mixed-model equations of ``stats`` for the blocked factorisation (kept while ``stats`` is).

    Parameters
    ----------
    structure : RandomStructure
    stats : CrossProducts
        Cross-products formed for ``structure``.

    Returns
    -------
    BlockedSystem

    Examples
    --------
    >>> import bayesmlm as bm
    >>> m = bm.Model("diameter ~ 1 + (1 | plate) + (1 | sample)", bm.load_dataset("Penicillin"))
    >>> system = blocked_system(m.structure, m.cross_products)
    >>> system.first.group, system.n_trailing  # 6 samples, the intercept, y
    ('plate', 8)
    """
    cached = _SYSTEMS.get(stats)
    if cached is not None and cached[0] is structure:
        return cached[1]
    first, *others = structure.factors
    rest, start = [], 0
    for f in others:
        rest.append(FactorLayout.of(f, start))
        start += f.n_levels * f.q
    system = BlockedSystem(
        n=stats.n,
        p=stats.p,
        n_theta=structure.n_theta,
        first=FactorLayout.of(first),
        first_ztz=np.ascontiguousarray(stats.ztz1, dtype=float),
        rest=tuple(rest),
        n_rest=start,
        gram=_trailing_gram(stats),
        coupling=make_coupling(coupling_blocks(stats.ztz_rest1, stats.ztx1, stats.zty1)),
        log_weights=float(stats.log_weights),
    )
    _SYSTEMS[stats] = (structure, system)
    return system


def _trailing_gram(stats: CrossProducts) -> np.ndarray:
    """``G_TT`` = the cross-products of [Z_R X y] (Fortran order, for LAPACK)."""
    xty = np.asarray(stats.xty, dtype=float)[:, None]
    blocks = [[np.asarray(stats.xtx, dtype=float), xty], [xty.T, np.array([[float(stats.yty)]])]]
    if stats.has_rest:
        ztx, zty = np.asarray(stats.ztx_rest, dtype=float), np.asarray(stats.zty_rest, dtype=float)[:, None]
        blocks = [
            [np.asarray(stats.ztz_rest, dtype=float), ztx, zty],
            [ztx.T, *blocks[0]],
            [zty.T, *blocks[1]],
        ]
    return np.asfortranarray(np.block(blocks))
