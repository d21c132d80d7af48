"""Stage 3, linear algebra: how the levels of the largest factor couple the rows after them, dense or sparse.

The blocked factorisation (:mod:`bayesmlm.linalg.factorize`) eliminates the levels of the largest
grouping factor first. Level ``j`` touches a few of the *trailing* rows (the levels of the other factors
it occurs with, the fixed-effect columns, the response): its column block of ::

    G_T1 = [Z_Rᵀ Z_1; Xᵀ Z_1; yᵀ Z_1]        (n_T × m₁q₁; block G_j is n_T × q₁)

and eliminating it subtracts ``G_j P_j G_jᵀ`` from the trailing block (``P_j`` a q₁×q₁ matrix that
depends on theta). A coupling computes that sum, :meth:`outer`, and its adjoint, the per-level
``G_jᵀ H G_j`` of a symmetric ``H`` given by its lower triangle, :meth:`inner`, in one of two forms,
chosen by their cost:

- :class:`DenseCoupling` keeps ``G_T1`` as an ``n_T × m₁q₁`` array; the sum is one matrix product.
  Single-factor models (``n_T = p + 1``) and small crossed designs take this form.
- :class:`SparseCoupling` keeps only the pairs of trailing rows that share a level, as MixedModels.jl
  keeps its ``L[2,1]`` block sparse when the fill-in allows it. The pattern is analysed once: a sparse
  matrix ``W`` with ``W[(t, s), (j, a, b)] = G[t, ja] G[s, jb]`` for ``t ≥ s`` makes the sum
  ``W @ vec(P)``, written straight into the lower triangle of the (Fortran-ordered) trailing block, and
  the adjoint ``Wᵀ @ vec(H)``. Each costs ``Σ_j (k_j q₁)²`` for ``k_j`` rows touched by level ``j``, not
  ``n_T² m₁ q₁``.

Nothing here depends on theta: both are built once per set of cross-products and reused for every
evaluation, and neither is compiled.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

__all__ = ["DenseCoupling", "SparseCoupling", "coupling_blocks", "make_coupling"]

#: the sparse form is chosen when it costs less than this fraction of the dense one
SPARSE_ADVANTAGE = 0.25


def coupling_blocks(ztz_rest1, ztx1: np.ndarray, zty1: np.ndarray) -> np.ndarray:
    """Return ``G_T1`` as an ``(n_T, m₁, q₁)`` array: the other factors' rows, then ``X``'s, then ``y``'s."""
    m1, q1, _ = ztx1.shape
    rows = [] if ztz_rest1 is None else [np.asarray(ztz_rest1, dtype=float).reshape(-1, m1, q1)]
    rows += [np.transpose(ztx1, (2, 0, 1)), np.asarray(zty1, dtype=float)[None]]
    return np.ascontiguousarray(np.concatenate(rows, axis=0))


class DenseCoupling:
    """``G_T1`` held densely (see the module docstring).

    Parameters
    ----------
    G : ndarray, shape (n_T, m₁, q₁)
    """

    def __init__(self, G: np.ndarray):
        self.n_trailing, self.m, self.q = G.shape
        self.G = G
        self.flat = G.reshape(self.n_trailing, self.m * self.q)
        self.by_level = np.ascontiguousarray(np.transpose(G, (1, 0, 2)))  # (m, n_T, q)

    def outer(self, P: np.ndarray) -> np.ndarray:
        """Return ``Σ_j G_j P_j G_jᵀ`` for ``P`` of shape ``(m, q, q)`` (full and symmetric, C order)."""
        if self.q == 1:
            return (self.flat * P[:, 0, 0]) @ self.flat.T
        gp = np.transpose(self.by_level @ P, (1, 0, 2)).reshape(self.n_trailing, -1)
        return gp @ self.flat.T

    def inner(self, H: np.ndarray) -> np.ndarray:
        """Return ``G_jᵀ H G_j`` for every level, shape ``(m, q, q)``; only ``H``'s lower triangle is read."""
        H = np.tril(H) + np.tril(H, -1).T
        Y = (H @ self.flat).reshape(self.G.shape)
        if self.q == 1:
            return np.einsum("tj,tj->j", self.G[:, :, 0], Y[:, :, 0])[:, None, None]
        return np.einsum("tja,tjb->jab", self.G, Y)

    def times(self, v: np.ndarray) -> np.ndarray:
        """Return ``Σ_j G_j v_j`` (length ``n_T``) for ``v`` of shape ``(m, q)``."""
        return self.flat @ v.reshape(-1)

    def transpose_times(self, w: np.ndarray) -> np.ndarray:
        """Return ``G_jᵀ w`` for every level, shape ``(m, q)``."""
        return (w @ self.flat).reshape(self.m, self.q)


class SparseCoupling:
    """``G_T1`` held as the pairs of trailing rows that share a level (see the module docstring).

    Parameters
    ----------
    G : ndarray, shape (n_T, m₁, q₁)
        Dense ``G_T1``; only its pattern and nonzero values are kept.
    """

    def __init__(self, G: np.ndarray):
        self.n_trailing, self.m, self.q = n, m, q = G.shape
        rows, levels = _touched_rows(G)
        counts = np.bincount(levels, minlength=m)
        values = G[rows, levels, :]  # (k, q): the nonzero rows of each level, level by level
        columns = levels.repeat(q) * q + np.tile(np.arange(q), rows.size)
        self._csr = sp.csr_array((values.reshape(-1), (np.repeat(rows, q), columns)), shape=(n, m * q))
        first, second = _pairs_within_levels(counts)  # positions into rows/levels, first >= second
        t, s = rows[first], rows[second]
        keys = s * n + t  # position of the lower-triangle entry [t, s] in Fortran order
        qq = q * q
        a, b = np.divmod(np.arange(qq), q)
        vals = values[first][:, a] * values[second][:, b]  # (pairs, q*q): column (level, a, b)
        weight = np.where(t == s, 1.0, 2.0)  # the adjoint reads an off-diagonal pair for (t, s) and (s, t)
        # column-major (CSC) order: by level (already), then (a, b), then pair
        per_level = np.bincount(levels[first], minlength=m)
        order = np.argsort(levels[first][:, None] * qq + np.arange(qq)[None, :], axis=None, kind="stable")
        indices = np.broadcast_to(keys[:, None], vals.shape).reshape(-1)[order]
        data = vals.reshape(-1)[order]
        indptr = np.concatenate([[0], np.cumsum(np.repeat(per_level, qq))])
        self._forward = sp.csc_array((data, indices, indptr), shape=(n * n, m * qq))
        adjoint = data * np.broadcast_to(weight[:, None], vals.shape).reshape(-1)[order]
        self._adjoint = sp.csr_array((adjoint, indices, indptr), shape=(m * qq, n * n))
        self.nnz = int(data.size)

    def outer(self, P: np.ndarray) -> np.ndarray:
        """Return ``Σ_j G_j P_j G_jᵀ`` in the lower triangle of an F-ordered array (upper part zero)."""
        flat = self._forward @ np.ascontiguousarray(P).reshape(-1)
        return flat.reshape(self.n_trailing, self.n_trailing, order="F")

    def inner(self, H: np.ndarray) -> np.ndarray:
        """Return ``G_jᵀ H G_j`` for every level, shape ``(m, q, q)``; only ``H``'s lower triangle is read."""
        out = (self._adjoint @ np.asarray(H).reshape(-1, order="F")).reshape(self.m, self.q, self.q)
        return (out + np.swapaxes(out, 1, 2)) / 2 if self.q > 1 else out

    def times(self, v: np.ndarray) -> np.ndarray:
        """Return ``Σ_j G_j v_j`` (length ``n_T``) for ``v`` of shape ``(m, q)``."""
        return self._csr @ v.reshape(-1)

    def transpose_times(self, w: np.ndarray) -> np.ndarray:
        """Return ``G_jᵀ w`` for every level, shape ``(m, q)``."""
        return (self._csr.T @ w).reshape(self.m, self.q)


def _touched_rows(G: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Trailing rows each level touches (sorted within the level) and the level of each."""
    touched = np.any(G != 0, axis=2)  # (n_T, m)
    levels, rows = np.nonzero(touched.T)  # level-major, rows ascending within a level
    return rows.astype(np.int64), levels.astype(np.int64)


def _pairs_within_levels(counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Every pair ``(first, second)``, ``first >= second``, of positions within the same level.

    Ordered by level, then ``second``, then ``first``: consecutive pairs fill one column of the
    trailing block downwards, which keeps the sparse products' memory access local.
    """
    starts = np.repeat(np.concatenate([[0], np.cumsum(counts)[:-1]]), counts)
    ends = np.repeat(np.cumsum(counts), counts)
    second_pos = np.arange(int(counts.sum()))
    reps = ends - second_pos  # firsts from second itself to the end of its level
    second = np.repeat(second_pos, reps)
    offsets = np.concatenate([[0], np.cumsum(reps)[:-1]])
    first = second + (np.arange(second.size) - np.repeat(offsets, reps))
    del starts
    return first, second


def make_coupling(G: np.ndarray) -> DenseCoupling | SparseCoupling:
    """Choose the dense or the sparse form of ``G_T1`` by the work one evaluation takes in each.

    Parameters
    ----------
    G : ndarray, shape (n_T, m₁, q₁)

    Returns
    -------
    DenseCoupling or SparseCoupling

    Examples
    --------
    >>> G = np.zeros((5, 4, 1)); G[[0, 1, 2, 3], [0, 1, 2, 3], 0] = 1.0; G[4] = 1.0
    >>> type(make_coupling(G)).__name__  # a trailing block this small stays dense
    'DenseCoupling'
    """
    n, m, q = G.shape
    touched = np.count_nonzero(np.any(G != 0, axis=2), axis=0)  # rows per level
    sparse_work = 3.0 * float(np.sum((touched * q) ** 2))  # a sparse product's work per entry, ~3 flops
    dense_work = float(n) * n * m * q
    if n > 64 and sparse_work < SPARSE_ADVANTAGE * dense_work:
        return SparseCoupling(G)
    return DenseCoupling(G)
