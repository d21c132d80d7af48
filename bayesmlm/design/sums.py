"""Stage 2, the design: the sufficient statistics as sums that add up across partitions.

Each partition of the data gives a :class:`PartitionSums`; :func:`merge_sums` adds two; the total gives
the :class:`~bayesmlm.design.crossprod.CrossProducts` (:func:`cross_products_from`, in any centring and
scaling) and the :class:`~bayesmlm.design.moments.DesignMoments` (:func:`moments_from`). No row leaves
its partition; the sums' size depends on the levels, not on the rows.

Every sum is formed from centred columns: a partition subtracts its own column means (its *shifts*)
before multiplying, and carries them with the sums. With ``w = [x, y]`` and, for grouping factor ``f``,
``ž_f = [1, z_f - a_f]``:

- ``gram``      ``Σ ŵ ŵᵀ`` over the rows, ``ŵ = [1, w - a_w]``                      ``(2+p, 2+p)``
- ``level_zz``  per level of each factor, ``Σ ž ž ᵀ``                                 ``(m_f, 1+q_f, 1+q_f)``
- ``level_zw``  per level of each factor, ``Σ ž (w - a_w)ᵀ``                          ``(m_f, 1+q_f, 1+p)``
- ``pairs``     per pair of levels of factors ``f > h`` that share rows, ``Σ ž_f ž_hᵀ``,
                stored for the pairs that occur only                                ``(k, 1+q_f, 1+q_h)``

The leading 1 makes each matrix carry its counts and column sums, so moving sums to other shifts is
exact algebra: ``ž' = T ž`` with ``T = [[1, 0], [a - c, I]]``, so ``Σ ž'ž'ᵀ = T (Σ ž žᵀ) Tᵀ``. Two
partitions are merged at their pooled means; shifts stay within a few standard deviations of the
means, so no digits cancel, also for a response like ``y + 1e8`` (the pooled-variance update of Chan,
Golub and LeVeque, for whole cross-product matrices). Factors are in the structure's order (the first
has the most levels).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import scipy.linalg as sla

from bayesmlm.design.accumulate import level_products
from bayesmlm.design.crossprod import CrossProducts
from bayesmlm.design.moments import ColumnMoments, DesignMoments

__all__ = [
    "PairSums",
    "PartitionSums",
    "cross_products_from",
    "fixed_basis",
    "merge_sums",
    "moments_from",
    "partition_sums",
    "select_fixed",
]


@dataclass(frozen=True, eq=False)
class PairSums:
    """``Σ ž_f ž_hᵀ`` for the pairs of levels that occur: ``keys = level_f · m_h + level_h``, sorted."""

    keys: np.ndarray
    values: np.ndarray


@dataclass(frozen=True, eq=False)
class PartitionSums:
    """Centred sums of some rows (see the module docstring); ``pairs`` for ``f = 1, 2, ...; h < f``."""

    shift_w: np.ndarray
    shift_z: tuple[np.ndarray, ...]
    gram: np.ndarray
    level_zz: tuple[np.ndarray, ...]
    level_zw: tuple[np.ndarray, ...]
    pairs: tuple[PairSums, ...]
    y_range: tuple[float, float]
    fixed_r: np.ndarray  # R of a QR factorisation of the raw X: R'R = X'X, to find aliased columns

    @property
    def n(self) -> int:
        """Number of rows summed."""
        return round(float(self.gram[0, 0]))

    @property
    def p(self) -> int:
        """Number of fixed-effect columns."""
        return len(self.shift_w) - 1


def _pair_index(n_factors: int):
    """Return the ``(f, h)`` of each entry of ``pairs``, in order."""
    return [(f, h) for f in range(1, n_factors) for h in range(f)]


def _centred(values: np.ndarray, shift: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """Columns minus ``shift`` (by default their means), column-major for bincount; and the shift."""
    values = np.asarray(values, dtype=float, order="F")
    if shift is None:
        shift = values.mean(axis=0) if len(values) else np.zeros(values.shape[1])
    return values - shift, np.asarray(shift, dtype=float)


def _per_level(codes, counts, left, right, m: int, symmetric: bool) -> np.ndarray:
    """``Σ [1, left] [1, right]ᵀ`` per level (``right``'s 1 and upper triangle only if ``symmetric``)."""
    lead = 1 if symmetric else 0
    out = np.empty((m, 1 + left.shape[1], lead + right.shape[1]))
    if symmetric:
        out[:, 0, 0] = counts
    for j in range(right.shape[1]):
        out[:, 0, lead + j] = np.bincount(codes, weights=right[:, j], minlength=m)
    for i in range(left.shape[1]):
        if symmetric:
            out[:, 1 + i, 0] = out[:, 0, 1 + i]
        for j in range(i if symmetric else 0, right.shape[1]):
            out[:, 1 + i, lead + j] = np.bincount(codes, weights=left[:, i] * right[:, j], minlength=m)
            if symmetric:
                out[:, 1 + j, 1 + i] = out[:, 1 + i, 1 + j]
    return out


def partition_sums(
    y: np.ndarray,
    X: np.ndarray,
    factors: list[tuple[np.ndarray, np.ndarray, int]],
    shifts: tuple[np.ndarray, tuple[np.ndarray, ...]] | None = None,
):
    """Compute the centred sums of one partition's rows.

    Parameters
    ----------
    y : ndarray, shape (n,)
    X : ndarray, shape (n, p)
    factors : list of (codes, Z, levels)
        Per grouping factor, in the structure's order: each row's level (global codes), the
        factor's term columns ``(n, q)`` and its number of levels.
    shifts : (ndarray, tuple of ndarray), optional
        The shifts of ``[x, y]`` and of each factor's terms; the partition's means by default. Sums of
        partitions about the same shifts merge by mere addition; any shift near the means keeps
        every digit.

    Returns
    -------
    PartitionSums
    """
    n, p = np.shape(X)
    raw = np.empty((n, p + 1), order="F")
    raw[:, :p], raw[:, p] = X, y
    w, shift_w = _centred(raw, None if shifts is None else shifts[0])
    gram = np.empty((1 + w.shape[1], 1 + w.shape[1]))
    gram[0, 0] = n
    gram[0, 1:] = gram[1:, 0] = w.sum(axis=0)
    gram[1:, 1:] = w.T @ w
    z_centred, shift_z, level_zz, level_zw = [], [], [], []
    for k, (codes, Z, m) in enumerate(factors):
        z, shift = _centred(Z, None if shifts is None else shifts[1][k])
        z_centred.append(z)
        shift_z.append(shift)
        zz, zw = level_products(codes, z, w, m)  # compiled, or weighted bincount
        level_zz.append(zz)
        level_zw.append(zw)
    pairs = []
    for f, h in _pair_index(len(factors)):
        keys = factors[f][0].astype(np.int64) * factors[h][2] + factors[h][0]
        unique, inverse = np.unique(keys, return_inverse=True)
        k = len(unique)
        values = _per_level(inverse, None, z_centred[f], z_centred[h], k, symmetric=False)
        # the leading 1 of ž_h: the pair's count and Σ z_f
        first = np.empty((k, 1 + z_centred[f].shape[1], 1))
        first[:, 0, 0] = np.bincount(inverse, minlength=k)
        for i in range(z_centred[f].shape[1]):
            first[:, 1 + i, 0] = np.bincount(inverse, weights=z_centred[f][:, i], minlength=k)
        pairs.append(PairSums(unique, np.concatenate([first, values], axis=2)))
    y = np.asarray(y, dtype=float)
    y_range = (float(y.min()), float(y.max())) if len(y) else (np.inf, -np.inf)
    # in place on the raw columns, no longer needed (LAPACK's layout); R's first min(n, p) rows only
    r = sla.qr(raw[:, :p], mode="r", overwrite_a=True, check_finite=False)[0] if n and p else None
    fixed_r = r[: min(n, p)].copy() if r is not None else np.zeros((0, p))
    return PartitionSums(
        shift_w, tuple(shift_z), gram, tuple(level_zz), tuple(level_zw), tuple(pairs), y_range, fixed_r
    )


def _move(shift_from: np.ndarray, shift_to: np.ndarray) -> np.ndarray:
    """``T`` with ``[1, v - shift_to] = T [1, v - shift_from]``."""
    T = np.eye(len(shift_from) + 1)
    T[1:, 0] = shift_from - shift_to
    return T


def shifted(s: PartitionSums, shift_w: np.ndarray, shift_z) -> PartitionSums:
    """Return the same sums about other shifts (exact algebra; see the module docstring)."""
    T_w = _move(s.shift_w, shift_w)
    T_z = [_move(a, c) for a, c in zip(s.shift_z, shift_z, strict=True)]
    d_w = T_w[1:, 0]
    level_zz = tuple(T @ zz @ T.T for T, zz in zip(T_z, s.level_zz, strict=True))
    level_zw = tuple(
        T @ (zw + zz[:, :, :1] * d_w) for T, zz, zw in zip(T_z, s.level_zz, s.level_zw, strict=True)
    )
    pairs = tuple(
        PairSums(pair.keys, T_z[f] @ pair.values @ T_z[h].T)
        for (f, h), pair in zip(_pair_index(len(T_z)), s.pairs, strict=True)
    )
    return replace(
        s,
        shift_w=np.asarray(shift_w, dtype=float),
        shift_z=tuple(np.asarray(c, dtype=float) for c in shift_z),
        gram=T_w @ s.gram @ T_w.T,
        level_zz=level_zz,
        level_zw=level_zw,
        pairs=pairs,
    )


def _pooled_shift(a_n, a_shift, a_total, b_n, b_shift, b_total) -> np.ndarray:
    """Return the pooled mean of two sets of rows, from their shifts and their sums about them."""
    return (a_n * a_shift + a_total + b_n * b_shift + b_total) / (a_n + b_n)


def _merge_pairs(a: PairSums, b: PairSums) -> PairSums:
    keys, inverse = np.unique(np.concatenate([a.keys, b.keys]), return_inverse=True)
    values = np.zeros((len(keys), *a.values.shape[1:]))
    np.add.at(values, inverse, np.concatenate([a.values, b.values]))
    return PairSums(keys, values)


def merge_sums(a: PartitionSums, b: PartitionSums) -> PartitionSums:
    """Return the sums of the rows of ``a`` and of ``b`` together, about their pooled means.

    Examples
    --------
    >>> rng = np.random.default_rng(1)
    >>> y, X, g = rng.normal(size=8) + 1e8, np.ones((8, 1)), np.arange(8) % 2
    >>> whole = partition_sums(y, X, [(g, X, 2)])
    >>> halves = merge_sums(partition_sums(y[:3], X[:3], [(g[:3], X[:3], 2)]),
    ...                     partition_sums(y[3:], X[3:], [(g[3:], X[3:], 2)]))
    >>> bool(np.allclose(halves.gram, whole.gram, rtol=1e-12, atol=1e-6))
    True
    """
    y_range = (min(a.y_range[0], b.y_range[0]), max(a.y_range[1], b.y_range[1]))
    if a.n == 0 or b.n == 0:
        return replace(b if a.n == 0 else a, y_range=y_range)
    if _same_shifts(a, b):  # the usual case: every partition centred at the same (pilot) shifts
        return _added(a, b, y_range)
    shift_w = _pooled_shift(a.n, a.shift_w, a.gram[0, 1:], b.n, b.shift_w, b.gram[0, 1:])
    shift_z = tuple(
        _pooled_shift(a.n, sa, za[:, 1:, 0].sum(axis=0), b.n, sb, zb[:, 1:, 0].sum(axis=0))
        for sa, za, sb, zb in zip(a.shift_z, a.level_zz, b.shift_z, b.level_zz, strict=True)
    )
    return _added(shifted(a, shift_w, shift_z), shifted(b, shift_w, shift_z), y_range)


def _same_shifts(a: PartitionSums, b: PartitionSums) -> bool:
    return np.array_equal(a.shift_w, b.shift_w) and all(
        np.array_equal(x, y) for x, y in zip(a.shift_z, b.shift_z, strict=True)
    )


def _added(a: PartitionSums, b: PartitionSums, y_range: tuple[float, float]) -> PartitionSums:
    """Add sums about the same shifts (the R factors by a QR of the two stacked: TSQR)."""
    return PartitionSums(
        a.shift_w,
        a.shift_z,
        a.gram + b.gram,
        tuple(x + y for x, y in zip(a.level_zz, b.level_zz, strict=True)),
        tuple(x + y for x, y in zip(a.level_zw, b.level_zw, strict=True)),
        tuple(_merge_pairs(x, y) for x, y in zip(a.pairs, b.pairs, strict=True)),
        y_range,
        np.linalg.qr(np.vstack([a.fixed_r, b.fixed_r]), mode="r"),
    )


def select_fixed(s: PartitionSums, kept: list[int]) -> PartitionSums:
    """Keep only some fixed-effect columns (those not aliased), with the response."""
    w = [*kept, s.p]
    gram_index = np.array([0, *(1 + k for k in w)])
    return replace(
        s,
        shift_w=s.shift_w[w],
        gram=s.gram[np.ix_(gram_index, gram_index)],
        level_zw=tuple(zw[:, :, w] for zw in s.level_zw),
        fixed_r=s.fixed_r[:, kept],
    )


def fixed_basis(s: PartitionSums) -> np.ndarray:
    """Return a matrix whose columns have the inner products of the raw ``X`` columns: ``R`` of ``X = QR``.

    Each partition factors its rows; two ``R`` are merged by factoring them stacked (TSQR), as accurate
    as factoring all rows at once, so a test on ``R``'s columns finds the aliased columns it finds on X.
    """
    return s.fixed_r


def moments_from(s: PartitionSums, groups: list[str]) -> DesignMoments:
    """Return the design's column moments from the total sums (``groups``: the factors' names)."""
    p, n = s.p, s.gram[0, 0]
    diagonal = np.diag(s.gram)
    total_x = s.gram[0, 1 : 1 + p]
    z, z_products = {}, {}
    raw = shifted(s, s.shift_w, [np.zeros_like(a) for a in s.shift_z])  # Z about 0: ZᵀZ
    for group, shift, zz, zz_raw in zip(groups, s.shift_z, s.level_zz, raw.level_zz, strict=True):
        total = zz.sum(axis=0)
        z[group] = ColumnMoments.from_sums(n, total[1:, 0], np.diag(total)[1:], shift)
        z_products[group] = zz_raw.sum(axis=0)[1:, 1:] / n
    return DesignMoments(
        y=ColumnMoments.from_sums(n, s.gram[0, 1 + p : 2 + p], diagonal[1 + p : 2 + p], s.shift_w[p:]),
        x=ColumnMoments.from_sums(n, total_x, diagonal[1 : 1 + p], s.shift_w[:p]),
        z=z,
        y_range=s.y_range,
        x_covariance=(s.gram[1 : 1 + p, 1 : 1 + p] - np.outer(total_x, total_x) / n) / n,
        z_products=z_products,
    )


def _scaled(s: PartitionSums, w_scale: np.ndarray, z_scale: list[np.ndarray]) -> PartitionSums:
    """Return the sums of the columns divided by their scales (the leading 1 is not scaled)."""
    lead_w = np.append(1.0, w_scale)
    lead_z = [np.append(1.0, c) for c in z_scale]
    return replace(
        s,
        gram=s.gram / np.outer(lead_w, lead_w),
        level_zz=tuple(zz / np.outer(c, c) for zz, c in zip(s.level_zz, lead_z, strict=True)),
        level_zw=tuple(zw / np.outer(c, w_scale) for zw, c in zip(s.level_zw, lead_z, strict=True)),
        pairs=tuple(
            PairSums(pair.keys, pair.values / np.outer(lead_z[f], lead_z[h]))
            for (f, h), pair in zip(_pair_index(len(lead_z)), s.pairs, strict=True)
        ),
    )


def cross_products_from(
    s: PartitionSums,
    levels: list[int],
    x_shift: np.ndarray | None = None,
    y_scale: float = 1.0,
    *,
    y_shift: float = 0.0,
    x_scale: np.ndarray | None = None,
    z_shift: list[np.ndarray] | None = None,
    z_scale: list[np.ndarray] | None = None,
) -> CrossProducts:
    """Return the cross-products of (X - x_shift) / x_scale, (Z - z_shift) / z_scale, (y - y_shift) / y_scale.

    The defaults give the raw cross-products, those :func:`~bayesmlm.design.crossprod.cross_products`
    computes from rows; ``x_shift`` and ``y_scale`` give those the collapsed sampler uses; any centring
    and scaling (one value per column; per factor for ``Z``) is exact algebra on the centred sums, so
    the products of centred columns keep every digit whatever the columns' offsets.

    Parameters
    ----------
    s : PartitionSums
    levels : list of int
        Number of levels of each factor, in the structure's order.
    x_shift, y_scale, y_shift, x_scale, z_shift, z_scale
        The frame: shifts default to 0, scales to 1.
    """
    p = s.p
    x_shift = np.zeros(p) if x_shift is None else np.asarray(x_shift, dtype=float)
    z_shift = [np.zeros_like(a) for a in s.shift_z] if z_shift is None else z_shift
    t = shifted(s, np.append(x_shift, y_shift), z_shift)
    x_scale = np.ones(p) if x_scale is None else np.asarray(x_scale, dtype=float)
    z_scale = [np.ones_like(a) for a in s.shift_z] if z_scale is None else z_scale
    t = _scaled(t, np.append(x_scale, y_scale), [np.asarray(c, dtype=float) for c in z_scale])
    q = [len(a) for a in s.shift_z]
    rest = dict(ztz_rest=None, ztz_rest1=None, ztx_rest=None, zty_rest=None)
    if len(q) > 1:
        rest = _rest_blocks(t, list(t.level_zw), q, levels)
    return CrossProducts(
        n=s.n,
        p=p,
        ztz1=t.level_zz[0][:, 1:, 1:],
        ztx1=t.level_zw[0][:, 1:, :p],
        zty1=t.level_zw[0][:, 1:, p],
        xtx=t.gram[1 : 1 + p, 1 : 1 + p],
        xty=t.gram[1 : 1 + p, 1 + p],
        yty=float(t.gram[1 + p, 1 + p]),
        **rest,
    )


def _columns(offset: int, level: np.ndarray, q: int) -> np.ndarray:
    """Column of each (level, term) in the level-major layout of a factor's indicator matrix."""
    return offset + np.asarray(level, dtype=np.int64)[:, None] * q + np.arange(q)[None, :]


def _rest_blocks(t: PartitionSums, zw: list[np.ndarray], q: list[int], levels: list[int]) -> dict:
    """Return the dense blocks of the later factors: ``Z_R'Z_R``, ``Z_R'Z_1``, ``Z_R'X``, ``Z_R'y``."""
    p = t.p
    offsets = np.concatenate([[0], np.cumsum([m * k for m, k in zip(levels[1:], q[1:], strict=True)])])
    q_rest = int(offsets[-1])
    ztz_rest = np.zeros((q_rest, q_rest))
    ztz_rest1 = np.zeros((q_rest, levels[0] * q[0]))
    ztx_rest = np.zeros((q_rest, p))
    zty_rest = np.zeros(q_rest)
    for f in range(1, len(q)):
        cols = _columns(offsets[f - 1], np.arange(levels[f]), q[f])
        ztz_rest[cols[:, :, None], cols[:, None, :]] = t.level_zz[f][:, 1:, 1:]
        ztx_rest[cols] = zw[f][:, 1:, :p]
        zty_rest[cols] = zw[f][:, 1:, p]
    for (f, h), pair in zip(_pair_index(len(q)), t.pairs, strict=True):
        rows = _columns(offsets[f - 1], pair.keys // levels[h], q[f])
        block = pair.values[:, 1:, 1:]
        if h == 0:
            ztz_rest1[rows[:, :, None], _columns(0, pair.keys % levels[h], q[h])[:, None, :]] = block
        else:
            cols = _columns(offsets[h - 1], pair.keys % levels[h], q[h])
            ztz_rest[rows[:, :, None], cols[:, None, :]] = block
            ztz_rest[cols[:, :, None], rows[:, None, :]] = np.swapaxes(block, 1, 2)
    return dict(ztz_rest=ztz_rest, ztz_rest1=ztz_rest1, ztx_rest=ztx_rest, zty_rest=zty_rest)
