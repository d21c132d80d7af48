"""Stage 2, the design: per-level sums of products of columns, in one compiled pass over the rows.

:func:`level_products` gives, for each level of a grouping factor, ``Σ [1, z] [1, z]ᵀ`` and
``Σ [1, z] wᵀ`` over the level's rows: the ``level_zz`` and ``level_zw`` of
:class:`~bayesmlm.design.sums.PartitionSums`. With numba installed (it comes with PyTensor) one loop
over the rows adds every product of a row into its level's packed row of sums (the sums of a level lie
side by side in memory, so a row touches one or two cache lines); without it, one weighted
``np.bincount`` per product. Both add the rows of a level in row order, so they give the same sums.
Columns that are zero in every row (a centred intercept) are left out of the loop and their sums set
to zero.

Measured on one partition of 1M rows, 100,000 levels, ``z = [1, x]``, ``w = [1, x, y]`` (CPU time, best
of 5, on the shared 2-core machine): weighted ``bincount`` 59 ms; numba over all columns 59 ms; numba
without the zero columns 22 ms; sorting the rows by level and ``np.add.reduceat`` 394 ms.
"""

from __future__ import annotations

import numpy as np

__all__ = ["compiled", "expand", "level_products"]

_KERNEL = None


def _build_kernel():
    import numba

    @numba.njit(cache=True, nogil=True)
    def packed_sums(codes, z, w, m):  # pragma: no cover - compiled
        n, q = z.shape
        k = w.shape[1]
        width = 1 + q + k + q * (q + 1) // 2 + q * k
        out = np.zeros((m, width))
        for r in range(n):
            o = out[codes[r]]
            o[0] += 1.0
            t = 1
            for i in range(q):
                o[t] += z[r, i]
                t += 1
            for j in range(k):
                o[t] += w[r, j]
                t += 1
            for i in range(q):
                zi = z[r, i]
                for j in range(i, q):
                    o[t] += zi * z[r, j]
                    t += 1
                for j in range(k):
                    o[t] += zi * w[r, j]
                    t += 1
        return out

    return packed_sums


def compiled() -> bool:
    """Whether the compiled loop is used (numba importable); else weighted ``np.bincount``."""
    global _KERNEL
    if _KERNEL is None:
        try:
            _KERNEL = _build_kernel()
        except ImportError:
            _KERNEL = False
    return _KERNEL is not False


def _unpack(packed: np.ndarray, q: int, k: int) -> tuple[np.ndarray, np.ndarray]:
    m = len(packed)
    zz, zw = np.empty((m, 1 + q, 1 + q)), np.empty((m, 1 + q, k))
    zz[:, 0, 0] = packed[:, 0]
    zz[:, 0, 1:] = zz[:, 1:, 0] = packed[:, 1 : 1 + q]
    zw[:, 0, :] = packed[:, 1 + q : 1 + q + k]
    t = 1 + q + k
    for i in range(q):
        for j in range(i, q):
            zz[:, 1 + i, 1 + j] = zz[:, 1 + j, 1 + i] = packed[:, t]
            t += 1
        zw[:, 1 + i, :] = packed[:, t : t + k]
        t += k
    return zz, zw


def _bincount(codes, z, w, m) -> tuple[np.ndarray, np.ndarray]:
    q, k = z.shape[1], w.shape[1]
    zz, zw = np.empty((m, 1 + q, 1 + q)), np.empty((m, 1 + q, k))
    zz[:, 0, 0] = np.bincount(codes, minlength=m)
    for i in range(q):
        zz[:, 0, 1 + i] = zz[:, 1 + i, 0] = np.bincount(codes, weights=z[:, i], minlength=m)
    for j in range(k):
        zw[:, 0, j] = np.bincount(codes, weights=w[:, j], minlength=m)
    for i in range(q):
        for j in range(i, q):
            zz[:, 1 + i, 1 + j] = zz[:, 1 + j, 1 + i] = np.bincount(
                codes, weights=z[:, i] * z[:, j], minlength=m
            )
        for j in range(k):
            zw[:, 1 + i, j] = np.bincount(codes, weights=z[:, i] * w[:, j], minlength=m)
    return zz, zw


def level_products(
    codes: np.ndarray, z: np.ndarray, w: np.ndarray, m: int, *, use_compiled: bool | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Return ``Σ ž žᵀ`` ``(m, 1+q, 1+q)`` and ``Σ ž wᵀ`` ``(m, 1+q, k)`` per level, ``ž = [1, z]``.

    Parameters
    ----------
    codes : ndarray of int, shape (n,)
        Each row's level, in ``0 .. m-1``.
    z : ndarray, shape (n, q)
    w : ndarray, shape (n, k)
    m : int
        Number of levels.
    use_compiled : bool, optional
        Force the compiled loop (True) or ``bincount`` (False); by default the loop if numba imports.

    Examples
    --------
    >>> codes = np.array([0, 1, 0])
    >>> zz, zw = level_products(codes, np.array([[1.0], [2.0], [3.0]]), np.ones((3, 1)), 2)
    >>> zz[0].tolist(), zw[1].tolist()
    ([[2.0, 4.0], [4.0, 10.0]], [[1.0], [2.0]])
    """
    codes = np.asarray(codes, dtype=np.int64)
    z, w = np.asarray(z, dtype=float), np.asarray(w, dtype=float)
    q, k = z.shape[1], w.shape[1]
    if not (compiled() if use_compiled is None else use_compiled and compiled()):
        return _bincount(codes, z, w, m)
    z_used = [i for i in range(q) if z[:, i].any()]
    w_used = [j for j in range(k) if w[:, j].any()]
    packed = _KERNEL(codes, np.ascontiguousarray(z[:, z_used]), np.ascontiguousarray(w[:, w_used]), int(m))
    return expand(packed, z_used, w_used, q, k)


def expand(packed: np.ndarray, z_used: list[int], w_used: list[int], q: int, k: int):
    """Return the full ``(m, 1+q, 1+q)`` and ``(m, 1+q, k)`` sums from the loop's packed rows.

    ``z_used`` and ``w_used`` are the columns the loop summed (the others are zero: their sums are).
    """
    m = len(packed)
    zz_used, zw_used = _unpack(packed, len(z_used), len(w_used))
    lead_z = np.array([0, *(1 + i for i in z_used)])
    zz, zw = np.zeros((m, 1 + q, 1 + q)), np.zeros((m, 1 + q, k))
    zz[:, lead_z[:, None], lead_z[None, :]] = zz_used
    zw[:, lead_z[:, None], np.array(w_used, dtype=np.int64)[None, :]] = zw_used
    return zz, zw
