"""Small dense linear algebra written out elementwise and vectorised over groups.

A multilevel model needs the same tiny (q×q, q = 1, 2, 3 ...) Cholesky factorisation and triangular
solve for every level of a grouping factor. Batched LAPACK calls on thousands of 2×2 matrices are slow
to differentiate and to run, so these functions unroll the algorithm over the (static) matrix size and
let every arithmetic operation act on a whole vector of groups at once. The graphs they build are plain
PyTensor element-wise graphs: cheap to compile and to differentiate.

A lower-triangular factor is passed around as a nested list ``L[i][j]`` (``j <= i``) of tensors of the
batch shape, because that is how the unrolled algorithm produces and consumes it.
"""

from __future__ import annotations

import pytensor.tensor as pt

__all__ = ["small_cholesky", "small_solve_lower", "stack_lower"]


def small_cholesky(a: pt.TensorLike, q: int) -> list[list[pt.TensorVariable]]:
    """Cholesky factor of a batch of symmetric positive-definite ``q×q`` matrices.

    Parameters
    ----------
    a : tensor of shape ``(..., q, q)``
        Symmetric positive-definite matrices (only the lower triangle is read).
    q : int
        The static matrix size.

    Returns
    -------
    list of list of tensors
        ``L[i][j]`` for ``j <= i``, each of the batch shape ``(...)``, with ``a = L L'``.

    Examples
    --------
    >>> import numpy as np, pytensor.tensor as pt
    >>> a = np.array([[[4.0, 2.0], [2.0, 5.0]]])
    >>> L = small_cholesky(pt.as_tensor(a), 2)
    >>> float(L[1][1].eval()[0])
    2.0
    """
    a = pt.as_tensor(a)
    factor: list[list[pt.TensorVariable]] = [[None] * (i + 1) for i in range(q)]  # type: ignore[list-item]
    for j in range(q):
        diag = a[..., j, j]
        for k in range(j):
            diag = diag - factor[j][k] ** 2
        factor[j][j] = pt.sqrt(diag)
        for i in range(j + 1, q):
            off = a[..., i, j]
            for k in range(j):
                off = off - factor[i][k] * factor[j][k]
            factor[i][j] = off / factor[j][j]
    return factor


def small_solve_lower(factor: list[list[pt.TensorVariable]], b: pt.TensorLike, q: int) -> pt.TensorVariable:
    """Solve ``L x = b`` by forward substitution for a batch of lower-triangular ``L``.

    Parameters
    ----------
    factor : nested list of tensors
        ``L[i][j]`` as returned by :func:`small_cholesky`, batch shape ``(...)``.
    b : tensor of shape ``(..., q, k)``
        Right-hand sides.
    q : int
        The static matrix size.

    Returns
    -------
    tensor of shape ``(..., q, k)``

    Examples
    --------
    >>> import numpy as np, pytensor.tensor as pt
    >>> L = small_cholesky(pt.as_tensor(np.array([[[4.0, 2.0], [2.0, 5.0]]])), 2)
    >>> small_solve_lower(L, pt.as_tensor(np.array([[[2.0], [3.0]]])), 2).eval()[0, :, 0]
    array([1., 1.])
    """
    b = pt.as_tensor(b)
    rows = []
    for i in range(q):
        acc = b[..., i, :]
        for k in range(i):
            acc = acc - pt.shape_padright(factor[i][k]) * rows[k]
        rows.append(acc / pt.shape_padright(factor[i][i]))
    return pt.stack(rows, axis=-2)


def stack_lower(factor: list[list[pt.TensorVariable]], q: int) -> pt.TensorVariable:
    """Assemble the nested-list factor into a tensor of shape ``(..., q, q)`` (zeros above the diagonal).

    Examples
    --------
    >>> import numpy as np, pytensor.tensor as pt
    >>> L = small_cholesky(pt.as_tensor(np.array([[[4.0, 2.0], [2.0, 5.0]]])), 2)
    >>> stack_lower(L, 2).eval()[0]
    array([[2., 0.],
           [1., 2.]])
    """
    zero = pt.zeros_like(factor[0][0])
    return pt.stack(
        [pt.stack([factor[i][j] if j <= i else zero for j in range(q)], axis=-1) for i in range(q)],
        axis=-2,
    )
