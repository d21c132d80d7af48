"""The statsmodels entry point, group effects: conditional modes and covariances in statsmodels' layout.

One Series (or DataFrame) per group, keyed by the group's original value, indexed by statsmodels'
names: the correlated effects, then each variance component as ``"<name>[<column>]"``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from bayesmlm.design.levels import level_keys
from bayesmlm.statsmodels_api.translate import group_values
from bayesmlm.statsmodels_api.variance_components import MatrixComponent

__all__ = ["random_effects", "random_effects_cov"]


def random_effects(results) -> dict[Any, pd.Series]:
    """Conditional modes per group (see :attr:`MixedLMResults.random_effects`)."""
    fit, model = results.fit_result, results.model
    data = fit.design.data
    to_value, ordered = group_values(data, model.group_col)
    rows_label = level_keys(data, (model.group_col,))
    modes = {f.group: fit.random_effects(f.group).to_numpy() for f in fit.structure.factors}
    index_of = {f.group: {lev: i for i, lev in enumerate(f.levels)} for f in fit.structure.factors}
    nested: list = []
    blocks_of: dict[int, list[tuple[Any, int]]] = {}
    for comp, f, k, _ in results._vc_place:
        blocks_of.setdefault(id(comp), []).append((f, k))
    for comp, f, k, _ in results._vc_place:
        per_group: Any = {}
        if isinstance(comp, MatrixComponent):
            first = blocks_of[id(comp)][0] == (f, k)
            per_group = comp.entries(data, to_value) if first else None
        elif comp.nested:
            keys = level_keys(data, comp.nesting)
            cat_labels = {col: level_keys(data, (col,)) for _, col in comp.parts if col is not None}
            seen = set()
            for r, key in enumerate(keys):
                if key in seen:
                    continue
                seen.add(key)
                col = ":".join(
                    f"{text}[{cat_labels[c][r]}]" if c is not None else text for text, c in comp.parts
                )
                per_group.setdefault(rows_label[r], []).append((key, f"{comp.name}[{col}]"))
            for entries in per_group.values():
                entries.sort(key=lambda e: index_of[f.group][e[0]])
        nested.append(per_group)
    label_of = {value: label for label, value in to_value.items()}
    out = {}
    for value in ordered:
        label = label_of[value]
        names, values = list(model.exog_re_names), []
        for f, k in results._re_place:
            values.append(modes[f.group][index_of[f.group][label], k])
        for (comp, f, k, term), per_group in zip(results._vc_place, nested, strict=True):
            if isinstance(comp, MatrixComponent):
                for name, j, key in per_group.get(label, []) if per_group is not None else []:
                    fj, kj = blocks_of[id(comp)][j]
                    level = label if comp.slot is None else key
                    names.append(name)
                    values.append(0.0 if level is None else modes[fj.group][index_of[fj.group][level], kj])
            elif comp.nested:
                for key, name in per_group.get(label, []):
                    names.append(name)
                    values.append(modes[f.group][index_of[f.group][key], k])
            else:
                names.append(f"{comp.name}[{term}]")
                values.append(modes[f.group][index_of[f.group][label], k])
        out[value] = pd.Series(values, index=names, dtype=float)
    return out


def random_effects_cov(results) -> dict[Any, pd.DataFrame]:
    """Conditional covariances per group (see :attr:`MixedLMResults.random_effects_cov`).

    statsmodels' formula, group by group: with ``Z_i`` the group's correlated design followed by each
    variance component's matrix and ``G`` the prior covariance (``cov_re``, then each component's
    variance on its columns), ``G - G Z_iᵀ (Z_i G Z_iᵀ + scale I)⁻¹ Z_i G``.
    """
    model = results.model
    cov_re, vcomp, scale = results._cov_re_values, results.vcomp, results.scale
    _, _, Z, W = model._by_group()
    layout = model._vc_layout
    out = {}
    for i, value in enumerate(model.row_indices):
        mats = W[i]
        full = np.column_stack([Z[i], *mats]) if mats else Z[i]
        prior = [np.full(m.shape[1], v) for v, m in zip(vcomp, mats, strict=True)]
        G = np.zeros((full.shape[1], full.shape[1]))
        G[: model.k_re, : model.k_re] = cov_re
        diag = np.arange(model.k_re, full.shape[1])
        G[diag, diag] = np.concatenate(prior) if prior else np.zeros(0)
        ZG = full @ G
        cond = G - ZG.T @ np.linalg.solve(full @ G @ full.T + scale * np.eye(len(full)), ZG)
        names = list(model.exog_re_names)
        for name, (_, cols) in zip(model.vc_names, layout, strict=True):
            names += [f"{name}[{col}]" for col in cols[i]]
        out[value] = pd.DataFrame(cond, index=names, columns=names)
    return out
