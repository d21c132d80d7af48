"""Stage 4b, Bayes: the sampled factors' cross-products, so that the partial density never reads rows.

Given the sampled factors' effects ``r`` (stacked over their terms' levels), the offset is
``o = Z_O r`` and the partially collapsed density needs the statistics of ``y − o`` and, for its
gradient, ``Z_Oᵀ(y − o − Xβ − Z₁b̂)``. Both come from products fixed by the data:

- ``A = Z_Oᵀ Z₁`` (sparse; ``Z₁ᵀ(y − o) = Z₁ᵀy − Aᵀr``, and ``A b̂`` in the gradient),
- ``B = Z_Oᵀ Z_O`` (sparse; ``‖y − o‖² = ‖y‖² − 2 (Z_Oᵀy)·r + rᵀBr``),
- ``Z_Oᵀ X`` (dense, levels × p) and ``Z_Oᵀ y``.

Their size is the number of distinct (sampled level, integrated level) pairs, at most the rows times the
number of sampled terms and usually far fewer; on InstEval (73,421 rows) ``A`` holds the student ×
lecturer and student × department pairs, and the products stay in cache where two passes over the rows
did not. The rows must be those the statistics of the integrated factor were formed from (centred
predictors, shifted response), so that everything is one consistent set of cross-products.
"""

from __future__ import annotations

import dataclasses

import numpy as np

__all__ = ["OtherStats", "other_cross_products"]


@dataclasses.dataclass(frozen=True)
class OtherStats:
    """The sampled terms' cross-products (CSR arrays for ``A`` and ``B``), stacked by ``start``."""

    start: np.ndarray  # (T,) first stacked index of each term's levels
    a_indptr: np.ndarray
    a_indices: np.ndarray  # column j * q + a of the integrated factor's level j, column a
    a_data: np.ndarray
    b_indptr: np.ndarray
    b_indices: np.ndarray
    b_data: np.ndarray
    xo: np.ndarray  # (R, p) Z_Oᵀ X
    yo: np.ndarray  # (R,) Z_Oᵀ y
    yty: float

    def arrays(self) -> tuple:
        """Return the arrays in the order :func:`~bayesmlm.bayes.partial_kernel.partial_kernel` takes them."""
        return (
            self.start, self.a_indptr, self.a_indices, self.a_data, self.b_indptr, self.b_indices,
            self.b_data, self.xo, self.yo, self.yty,
        )  # fmt: skip


def other_cross_products(
    o_codes: np.ndarray,
    o_z: np.ndarray,
    levels: np.ndarray,
    X: np.ndarray,
    y: np.ndarray,
    codes0: np.ndarray,
    Z0: np.ndarray,
    m: int,
) -> OtherStats:
    """Form :class:`OtherStats` from the rows.

    The sampled terms' codes and columns (T, n), ``X``, ``y``, the integrated factor's codes and
    columns (n, q) and its number of levels ``m``.

    Examples
    --------
    >>> import numpy as np
    >>> codes, z = np.array([[0, 1, 1]]), np.ones((1, 3))
    >>> s = other_cross_products(codes, z, np.array([2]), np.ones((3, 1)), np.array([1.0, 2, 3]),
    ...                          np.array([0, 0, 1]), np.ones((3, 1)), 2)
    >>> s.yo, s.yty, s.a_data
    (array([1., 5.]), 14.0, array([1., 1., 1.]))
    """
    from scipy import sparse

    T, n = o_codes.shape
    q = Z0.shape[1]
    start = np.concatenate([[0], np.cumsum(levels)[:-1]]).astype(np.int64)
    R = int(np.sum(levels))
    rows = np.repeat(np.arange(n), T)
    cols = (o_codes + start[:, None]).T.ravel()
    Zo = sparse.csr_matrix((o_z.T.ravel(), (rows, cols)), shape=(n, R))
    rows1 = np.repeat(np.arange(n), q)
    cols1 = (np.asarray(codes0)[:, None] * q + np.arange(q)).ravel()
    Z1 = sparse.csr_matrix((np.asarray(Z0, float).ravel(), (rows1, cols1)), shape=(n, m * q))
    ZoT = Zo.T.tocsr()
    A = (ZoT @ Z1).tocsr()
    B = (ZoT @ Zo).tocsr()
    for mat in (A, B):
        mat.sum_duplicates()
        mat.sort_indices()
    i64, f64 = np.int64, np.float64
    return OtherStats(
        start=start,
        a_indptr=A.indptr.astype(i64),
        a_indices=A.indices.astype(np.int32),
        a_data=A.data.astype(f64),
        b_indptr=B.indptr.astype(i64),
        b_indices=B.indices.astype(np.int32),
        b_data=B.data.astype(f64),
        xo=np.ascontiguousarray(ZoT @ np.asarray(X, f64)),
        yo=np.asarray(ZoT @ np.asarray(y, f64)).ravel(),
        yty=float(np.dot(y, y)),
    )
