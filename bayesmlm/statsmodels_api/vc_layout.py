"""The statsmodels entry point, the variance components group by group: ``model.exog_vc`` (a ``VCSpec``).

statsmodels keeps each variance component ``k`` as one design matrix per group, ``mats[k][i]``
(``n_i × m_ik``, the ``m_ik`` random effects of group ``i`` sharing the component's variance), with
its column names ``colnames[k][i]``; ``V_i = Z_i Ψ Z_iᵀ + Σ_k v_k W_ik W_ikᵀ + I``. bayesmlm fits the
component as lme4 terms (a nested factor or tied scalar terms,
:mod:`bayesmlm.statsmodels_api.variance_components`); :func:`vc_layout` rebuilds statsmodels' matrices
from those terms' columns, for ``loglike``, ``score``, ``hessian``, ``random_effects_cov`` and
``model.exog_vc``. The columns of a group are in the order of ``random_effects``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from bayesmlm.design.levels import level_keys
from bayesmlm.statsmodels_api.variance_components import MatrixComponent

__all__ = ["VCSpec", "vc_layout"]


class VCSpec:
    """statsmodels' ``VCSpec``: the variance components' names, column names and matrices per group.

    Parameters
    ----------
    names : list of str
        ``names[k]``: the name of component ``k`` (sorted, as statsmodels sorts them).
    colnames : list of list of list of str
        ``colnames[k][i]``: the column names of ``mats[k][i]``.
    mats : list of list of ndarray
        ``mats[k][i]``: the design matrix of component ``k`` for the ``i``-th group of
        ``model.group_labels`` (the rows of ``model.row_indices``).

    Examples
    --------
    >>> import bayesmlm as bm
    >>> p = bm.load_dataset("Pastes")
    >>> md = bm.mixedlm("strength ~ 1", p, groups="batch", re_formula="1", vc_formula={"cask": "0 + C(cask)"})
    >>> md.exog_vc.names, md.exog_vc.colnames[0][0], md.exog_vc.mats[0][0].shape
    (['cask'], ['C(cask)[a]', 'C(cask)[b]', 'C(cask)[c]'], (6, 3))
    """

    def __init__(self, names: list[str], colnames: list[list[list[str]]], mats: list[list[np.ndarray]]):
        self.names = names
        self.colnames = colnames
        self.mats = mats

    def __repr__(self) -> str:
        return f"<bayesmlm VCSpec: {self.names}>"


def _factor_levels(model: Any) -> dict[int, dict[str, int]]:
    """Each design block's factor: level label -> position (the order of the conditional modes)."""
    out = {}
    for f in model.structure.factors:
        index = {lev: i for i, lev in enumerate(f.levels)}
        for block in f.source_blocks:
            out[id(block)] = index
    return out


def _nested(keys: np.ndarray, cats: dict, comp: Any, z: np.ndarray, index: dict):
    """Return a categorical component's matrix in one group: a column per level present (modes' order)."""
    first: dict[str, int] = {}
    for r, key in enumerate(keys):
        first.setdefault(key, r)
    order = sorted(first, key=lambda key: index[key])
    names = [
        ":".join(f"{text}[{cats[c][first[key]]}]" if c is not None else text for text, c in comp.parts)
        for key in order
    ]
    if not order:
        return np.zeros((len(keys), 0)), names
    return np.column_stack([np.where(keys == key, z, 0.0) for key in order]), names


def vc_layout(md: Any) -> list[tuple[list[np.ndarray], list[list[str]]]]:
    """Return, per variance component, the matrices and column names of each group (statsmodels').

    Parameters
    ----------
    md : MixedLM
        The model; groups in ``md.row_indices`` order (statsmodels' sorted ``group_labels``).

    Returns
    -------
    list of (list of ndarray, list of list of str)
        One entry per component of ``md.vc_names``: ``(mats, colnames)`` over the groups.
    """
    model, roles = md._model_for(md._default_blocks)
    design = model.design
    data = design.data
    levels = _factor_levels(model)
    blocks: dict[int, list] = {}
    for block, role in zip(design.blocks, roles, strict=True):
        if role != "re":
            blocks.setdefault(id(role), []).append(block)
    groups = [(value, np.asarray(rows, dtype=np.int64)) for value, rows in md.row_indices.items()]
    out = []
    for comp in md._components:
        own = blocks[id(comp)]
        z = [np.asarray(b.Z[:, 0], dtype=float) for b in own]
        mats, colnames = [], []
        if not isinstance(comp, MatrixComponent) and comp.nested:
            keys = level_keys(data, comp.nesting)
            cats = {col: level_keys(data, (col,)) for _, col in comp.parts if col is not None}
        for value, rows in groups:
            if isinstance(comp, MatrixComponent) and comp.slot is None:  # tied scalar terms
                names = comp.names_in(value)
                mat = np.column_stack([zj[rows] for zj in z[: len(names)]])
            elif isinstance(comp, MatrixComponent):  # indicator-like columns: value and slot
                names = comp.names_in(value)
                slots = np.asarray(data[comp.slot].to_numpy()[rows], dtype=np.int64)
                mat = np.zeros((len(rows), len(names)))
                mat[np.arange(len(rows)), slots] = z[0][rows]
            elif comp.nested:  # "0 + C(c)": a column per level of c in the group
                part = {c: v[rows] for c, v in cats.items()}
                mat, names = _nested(keys[rows], part, comp, z[0][rows], levels[id(own[0])])
            else:  # "0 + x": one column
                names, mat = [own[0].term_names[0]], z[0][rows][:, None]
            mats.append(mat)
            colnames.append(names)
        out.append((mats, colnames))
    return out
