"""Stage 4a, REML/ML: type III hypotheses of the fixed terms (SAS's, as lmerTest builds them).

For every fixed term (a covariate, a factor, an interaction) the type III hypothesis is a contrast
matrix ``L_T`` on the coefficients, built as lmerTest's ``get_contrasts_type3``:

1. the over-parameterised design ``X̃``: per term, the product of its numeric columns and of the
   indicator columns of *every* level of its factors (no level dropped);
2. the same with treatment coding, ``X_t`` (the first level of a factor dropped where the model's own
   coding drops a level), and ``L = (X_t⁺ X̃)ᵀ``: each column of ``X̃`` written in ``X_t``'s coefficients;
3. a term contained in a larger one (all its variables are in the larger term, which has more, and
   both involve the same numeric covariates) has its columns of ``L`` made orthogonal to those of the
   terms containing it, the highest-order terms first;
4. ``L_T`` is the term's columns, on the rows of ``X̃`` that are columns of ``X_t``, mapped to the
   model's own coding by ``X_t⁺ X``.

So with a numeric covariate ``Time`` and a factor ``Diet`` in ``Time * Diet``, ``Time`` is tested as the
slope averaged over the diets (it is contained in ``Time:Diet``) and ``Diet`` at ``Time = 0`` (it is
not: ``Time:Diet`` involves a covariate that ``Diet`` does not), as lmerTest and SAS do. With one
term besides the intercept its hypothesis is simply that its coefficients are zero.
"""

from __future__ import annotations

import numpy as np

from bayesmlm.design.evaluate import Design

__all__ = ["type3_contrasts"]


def _row_kron(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise Kronecker product of (n, k) and (n, m): (n, k·m)."""
    return (a[:, :, None] * b[:, None, :]).reshape(len(a), -1)


def _component_columns(component, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Return a component's columns with every level (a factor's indicators) and which are treatment-coded."""
    value = np.asarray(component.value, dtype=float).reshape(n, -1)
    if component.kind != "categoric":
        return value, np.ones(value.shape[1], dtype=bool)
    coding = np.asarray(component.contrast_matrix.matrix, dtype=float)  # (levels, k)
    level = np.argmin(((value[:, None, :] - coding[None, :, :]) ** 2).sum(axis=2), axis=1)
    indicators = np.eye(len(coding))[level]
    kept = np.ones(len(coding), dtype=bool)
    if coding.shape[1] < len(coding):  # a reduced coding: treatment coding drops the first level
        kept[0] = False
    return indicators, kept


def _independent(X: np.ndarray, tol: float = 1e-9) -> np.ndarray:
    """Return the indices of the columns of ``X`` that are not combinations of earlier ones."""
    keep: list[int] = []
    for j in range(X.shape[1]):
        trial = X[:, [*keep, j]]
        if np.linalg.matrix_rank(trial, tol=tol * max(1.0, np.abs(trial).max())) == len(keep) + 1:
            keep.append(j)
    return np.array(keep, dtype=int)


def type3_contrasts(design: Design) -> dict[str, np.ndarray]:
    """Type III contrast matrices of every fixed term but the intercept, on the model's coefficients.

    Parameters
    ----------
    design : Design

    Returns
    -------
    dict
        Term name -> contrast matrix (rows: hypotheses, columns: ``design.fixed_names``).

    Examples
    --------
    >>> import bayesmlm as bm
    >>> m = bm.Model("weight ~ Time * Diet + (Time | Rat)", bm.load_dataset("BodyWeight"))
    >>> L = type3_contrasts(m.design)
    >>> list(L), L["Time"].round(4).tolist()  # the slope averaged over the three diets
    (['Time', 'Diet', 'Time:Diet'], [[0.0, 1.0, 0.0, 0.0, 0.3333, 0.3333]])
    """
    n, p = design.X.shape
    matrix = design.fixed_matrix
    names = list(design.fixed_names)
    terms = [(name, t) for name, t in matrix.terms.items() if type(t).__name__ != "Intercept"]
    if not terms:
        return {}
    slices = {name: matrix.slices[name] for name, _ in terms}
    model_names = design.fixed_matrix_names

    def own_columns(name: str) -> list[int]:
        labels = model_names[slices[name]]
        return [names.index(lab) for lab in labels if lab in names]

    if len(terms) == 1:
        name = terms[0][0]
        return {name: np.eye(p)[own_columns(name)]}

    blocks, kept, owner = [], [], []
    if "Intercept" in matrix.terms:
        blocks.append(np.ones((n, 1)))
        kept.append(np.array([True]))
        owner.append(None)
    variables, numerics = {}, {}
    for name, term in terms:
        cols, mask = np.ones((n, 1)), np.array([True])
        for component in term.components:
            c, m = _component_columns(component, n)
            cols, mask = _row_kron(cols, c), np.outer(mask, m).ravel()
        blocks.append(cols)
        kept.append(mask)
        owner.append(name)
        variables[name] = {c.name for c in term.components}
        numerics[name] = {c.name for c in term.components if c.kind != "categoric"}
    full = np.hstack(blocks)
    column_owner = np.concatenate([[o] * b.shape[1] for o, b in zip(owner, blocks, strict=True)])
    treat = np.flatnonzero(np.concatenate(kept))
    treat = treat[_independent(full[:, treat])]
    X_t = full[:, treat]
    L = np.linalg.pinv(X_t) @ full  # (p_t, r): rows are X_t's coefficients
    L = L.T
    cols_of = {name: np.flatnonzero(column_owner[treat] == name) for name, _ in terms}

    def contains(small: str, big: str) -> bool:
        return variables[small] < variables[big] and numerics[small] == numerics[big]

    order = sorted((name for name, _ in terms), key=lambda nm: -len(variables[nm]))
    for name in order:
        outer = [big for big, _ in terms if contains(name, big)]
        if outer:
            A = L[:, np.concatenate([cols_of[b] for b in outer])]
            Y = L[:, cols_of[name]]
            L[:, cols_of[name]] = Y - A @ np.linalg.lstsq(A, Y, rcond=None)[0]
    L[np.abs(L) < 1e-10 * max(1.0, np.abs(L).max())] = 0.0
    L = L[treat]  # (p_t, p_t)
    to_model = np.linalg.lstsq(X_t, np.asarray(design.X, dtype=float), rcond=None)[0]  # (p_t, p)
    out = {}
    for name, _ in terms:
        C = L[:, cols_of[name]].T @ to_model
        C[np.abs(C) < 1e-10] = 0.0
        out[name] = C[np.abs(C).sum(axis=1) > 1e-8]
    return out
