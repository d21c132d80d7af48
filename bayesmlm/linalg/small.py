"""Stage 3, linear algebra: small dense algebra written out elementwise and vectorised over groups.

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

__all__ = [
    "small_cholesky",
    "small_solve_lower",
    "small_solve_lower_rows",
    "small_solve_upper_t",
    "stack_lower",
]


def small_cholesky(a: pt.TensorLike, q: int) -> list[list[pt.TensorVariable]]:
    """Cholesky factor of a batch of symmetric positive-definite ``q×q`` matrices.

    Parameters
    ----------
    a : tensor of shape ``(..., q, q)``, or nested list
        Symmetric positive-definite matrices (only the lower triangle is read), or their lower
        triangle as a nested list ``a[i][j]`` (``j <= i``) of tensors of the batch shape.
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
    if not isinstance(a, list):
        a = pt.as_tensor(a)
        a = [[a[..., i, j] for j in range(i + 1)] for i in range(q)]
    factor: list[list[pt.TensorVariable]] = [[None] * (i + 1) for i in range(q)]  # type: ignore[list-item]
    for j in range(q):
        diag = a[j][j]
        for k in range(j):
            diag = diag - factor[j][k] ** 2
        factor[j][j] = pt.sqrt(diag)
        for i in range(j + 1, q):
            off = a[i][j]
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
    rows = small_solve_lower_rows(factor, [b[..., i, :] for i in range(q)], q, trailing=1)
    return pt.stack(rows, axis=-2)


def small_solve_lower_rows(
    factor: list[list[pt.TensorVariable]], rows: list[pt.TensorLike], q: int, trailing: int = 0
) -> list[pt.TensorVariable]:
    """:func:`small_solve_lower` on right-hand sides given as a list of their ``q`` rows.

    Parameters
    ----------
    factor : nested list of tensors
        ``L[i][j]``, batch shape ``(...)``.
    rows : list of ``q`` tensors
        Row ``i`` of the right-hand sides, shape ``(...)`` followed by ``trailing`` more dimensions.
    q : int
    trailing : int
        Number of dimensions after the batch dimensions (0 for one right-hand side per batch element).

    Returns
    -------
    list of ``q`` tensors
        The rows of the solution.
    """

    def pad(x):
        for _ in range(trailing):
            x = pt.shape_padright(x)
        return x

    out: list = []
    for i in range(q):
        acc = pt.as_tensor(rows[i])
        for k in range(i):
            acc = acc - pad(factor[i][k]) * out[k]
        out.append(acc / pad(factor[i][i]))
    return out


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


def small_solve_upper_t(factor: list[list[pt.TensorVariable]], b: pt.TensorLike, q: int) -> pt.TensorVariable:
    """Solve ``Lᵀ x = b`` by back substitution for a batch of lower-triangular ``L``.

    Parameters
    ----------
    factor : nested list of tensors
        ``L[i][j]`` as returned by :func:`small_cholesky`, batch shape ``(...)``.
    b : tensor of shape ``(..., q)``
        One right-hand side per batch element.
    q : int
        The static matrix size.

    Returns
    -------
    tensor of shape ``(..., q)``

    Examples
    --------
    >>> import numpy as np, pytensor.tensor as pt
    >>> L = small_cholesky(pt.as_tensor(np.array([[[4.0, 2.0], [2.0, 5.0]]])), 2)
    >>> small_solve_upper_t(L, pt.as_tensor(np.array([[4.0, 2.0]])), 2).eval()[0]
    array([1.5, 1. ])
    """
    b = pt.as_tensor(b)
    x: list = [None] * q
    for i in reversed(range(q)):
        acc = b[..., i]
        for k in range(i + 1, q):
            acc = acc - factor[k][i] * x[k]
        x[i] = acc / factor[i][i]
    return pt.stack(x, axis=-1)
