"""The statsmodels entry point, variance components with several columns: ``exog_vc`` and ``"0 + a + b"``.

A statsmodels variance component gives group ``g`` the columns of a matrix ``Z_g`` (``n_g × k_g``, ``k_g``
may differ between groups): ``k_g`` scalar random effects, independent, with ONE variance. In lme4 terms:

- **slots** (every row has at most one non-zero entry, as the indicator columns of ``"0 + C(c)"`` or a
  nested design's ``exog_vc``): one scalar term ``(0 + v | g:slot)``, with ``v`` the row's non-zero value
  and ``slot`` its column: a nested factor, lme4's ``(1 | g/slot)`` for indicators, no tie needed;
- **tied** (anything else, such as ``"0 + a + b"``): ``K = max k_g`` scalar terms ``(0 + z_j | g)``, the
  ``j``-th column of each group's matrix (0 where a group has fewer), their ``θ`` entries tied
  (:mod:`bayesmlm.reml.ties`). A column of zeros adds a random effect the data never see, which leaves
  the likelihood unchanged.

Both are exact for any columns. :func:`build_model` assembles the lme4 model and the ties; :func:`fit_tied`
fits it; each component's ``entries`` says where each group's statsmodels random effect sits.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from bayesmlm.design.levels import level_keys
from bayesmlm.exceptions import ArgumentError, DataError
from bayesmlm.model import Model
from bayesmlm.reml.fit import LikelihoodFit
from bayesmlm.reml.optimize import optimize_theta

__all__ = [
    "MatrixComponent",
    "build_model",
    "exog_vc_components",
    "fit_tied",
    "formula_component",
    "with_exog_vc",
]


@dataclass(frozen=True, eq=False)
class MatrixComponent:
    """One variance component made of several columns (module docstring).

    Attributes
    ----------
    name, formula : str
        statsmodels' name, and what was written (the formula, or ``"exog_vc"``).
    group : str
        The group column.
    exprs : tuple of str
        The lme4 term's expression per column slot (``"0 + a"``); one for a slot component.
    slot : str or None
        The slot column of a slot component, else None (a tied one).
    colnames : dict
        Group value -> statsmodels' column names in that group (all groups alike when None).
    labels : tuple of str
        Column names used when ``colnames`` is None.
    """

    name: str
    formula: str
    group: str
    exprs: tuple[str, ...]
    slot: str | None = None
    colnames: dict | None = None
    labels: tuple[str, ...] = field(default=())

    @property
    def n_blocks(self) -> int:
        """lme4 terms (blocks) it becomes."""
        return len(self.exprs)

    @property
    def tied(self) -> bool:
        """Whether its terms share one theta entry."""
        return self.slot is None and len(self.exprs) > 1

    def terms(self) -> list[str]:
        """Return the lme4 terms."""
        by = self.group if self.slot is None else f"{self.group}:{self.slot}"
        return [f"({expr} | {by})" for expr in self.exprs]

    def names_in(self, value: Any) -> list[str]:
        """Statsmodels' column names in the group whose original value is ``value``."""
        cols = self.labels if self.colnames is None else self.colnames.get(value, ())
        return [str(c) for c in cols]

    def entries(self, data: pd.DataFrame, to_value: dict) -> dict[str, list[tuple[str, int, str | None]]]:
        """Group label -> ``(statsmodels name, block, nested level or None)`` for its random effects."""
        out: dict[str, list[tuple[str, int, str | None]]] = {}
        if self.slot is None:
            for label, value in to_value.items():
                out[label] = [(f"{self.name}[{c}]", j, None) for j, c in enumerate(self.names_in(value))]
            return out
        keys = level_keys(data, (self.group, self.slot))
        groups = level_keys(data, (self.group,))
        slots = data[self.slot].to_numpy()
        level_of = {(g, int(s)): k for g, s, k in zip(groups, slots, keys, strict=True)}
        for label, value in to_value.items():
            out[label] = [
                (f"{self.name}[{c}]", 0, level_of.get((label, j))) for j, c in enumerate(self.names_in(value))
            ]
        return out

    def __str__(self) -> str:
        return " + ".join(self.terms())


def formula_component(name: str, formula: str, terms: list[str], group: str) -> MatrixComponent:
    """Return a ``vc_formula`` entry with several numeric terms (``"0 + a + b"``): tied scalar terms."""
    return MatrixComponent(name, formula, group, tuple(f"0 + {t}" for t in terms), labels=tuple(terms))


def _fresh(data: dict | pd.DataFrame, base: str) -> str:
    name, k = base, 1
    while name in data:
        name, k = f"{base}_{k}", k + 1
    return name


def exog_vc_components(exog_vc: Any, data: pd.DataFrame, group: str) -> tuple[pd.DataFrame, list]:
    """Translate statsmodels' ``exog_vc`` (``{name: {group: matrix}}``) into data columns and components.

    Each matrix holds its group's rows in the order they appear in the data. Returns the data with
    the new columns and the components sorted by name (statsmodels sorts them too).

    Examples
    --------
    >>> data = pd.DataFrame({"g": [1, 1, 2, 2]})
    >>> vc = {"c": {1: np.array([[1.0, 0.0], [0.0, 1.0]]), 2: np.array([[1.0], [1.0]])}}
    >>> frame, (comp,) = exog_vc_components(vc, data, "g")
    >>> str(comp), comp.names_in(1)
    ('(0 + c_value | g:c_slot)', ['0', '1'])
    """
    if hasattr(exog_vc, "names") and hasattr(exog_vc, "mats"):  # statsmodels' VCSpec: groups sorted
        values = sorted(pd.unique(data[group]))
        exog_vc = {
            name: dict(zip(values, mats, strict=False))
            for name, mats in zip(exog_vc.names, exog_vc.mats, strict=True)
        }
    if not isinstance(exog_vc, Mapping) or not all(isinstance(v, Mapping) for v in exog_vc.values()):
        raise ArgumentError(
            "exog_vc must be a dict of dicts: {component name: {group: matrix of that group's rows}}"
        )
    labels = np.asarray(data[group], dtype=object)
    rows: dict[Any, np.ndarray] = {}
    for value in pd.unique(labels):
        rows[value] = np.flatnonzero(labels == value)
    columns: dict[str, np.ndarray] = {}
    components = []
    for name in sorted(exog_vc, key=str):
        per_group = exog_vc[name]
        mats, colnames = {}, {}
        for value, where in rows.items():
            if value not in per_group:
                raise DataError(f"exog_vc[{name!r}] has no matrix for group {value!r}")
            mat = per_group[value]
            names = [str(c) for c in mat.columns] if isinstance(mat, pd.DataFrame) else None
            mat = np.asarray(mat.toarray() if hasattr(mat, "toarray") else mat, dtype=float)
            mat = mat[:, None] if mat.ndim == 1 else mat
            if mat.ndim != 2 or mat.shape[0] != len(where):
                raise DataError(
                    f"exog_vc[{name!r}][{value!r}] has shape {mat.shape}; the group has {len(where)} rows "
                    "(one row per row of the group, in the data's order)"
                )
            if not np.all(np.isfinite(mat)):
                raise DataError(f"exog_vc[{name!r}][{value!r}] has missing or infinite values")
            mats[value] = mat
            colnames[value] = names if names is not None else [str(j) for j in range(mat.shape[1])]
        width = max((m.shape[1] for m in mats.values()), default=0)
        if width == 0:
            raise DataError(f"exog_vc[{name!r}] has no columns in any group")
        base = name if str(name).isidentifier() else "vc"
        if all(np.all(np.count_nonzero(m, axis=1) <= 1) for m in mats.values()):
            value_col, slot_col = _fresh(columns, f"{base}_value"), _fresh(columns, f"{base}_slot")
            v, s = np.zeros(len(data)), np.zeros(len(data), dtype=np.int64)
            for value, where in rows.items():
                m = mats[value]
                if m.shape[1]:
                    s[where] = np.argmax(m != 0, axis=1)
                    v[where] = m[np.arange(len(where)), s[where]]
            columns[value_col], columns[slot_col] = v, s.astype(str)
            components.append(
                MatrixComponent(str(name), "exog_vc", group, (f"0 + {value_col}",), slot_col, colnames)
            )
            continue
        exprs = []
        for j in range(width):
            col = _fresh(columns, f"{base}_{j}")
            z = np.zeros(len(data))
            for value, where in rows.items():
                if mats[value].shape[1] > j:
                    z[where] = mats[value][:, j]
            columns[col] = z
            exprs.append(f"0 + {col}")
        components.append(MatrixComponent(str(name), "exog_vc", group, tuple(exprs), None, colnames))
    clash = sorted(set(columns) & set(data.columns))
    if clash:
        raise DataError(f"exog_vc's internal column names {clash} clash with the data's; rename those")
    frame = data.copy()
    for col, values in columns.items():
        frame[col] = values
    return frame, components


def with_exog_vc(inputs: dict[str, Any], exog_vc: Any, has_exog_re: bool) -> dict[str, Any]:
    """Add ``exog_vc``'s columns and components to the array interface's ``MixedLM._setup`` arguments."""
    if exog_vc is None:
        return inputs
    frame, components = exog_vc_components(exog_vc, inputs["data"], inputs["group_col"])
    inputs = {**inputs, "data": frame, "components": components}
    if not has_exog_re:  # statsmodels: variance components replace the default random intercept
        inputs.update(re_intercept=False, re_terms=[], re_param_names=[])
    return inputs


def build_model(
    fixed: str,
    frame: pd.DataFrame,
    group: str,
    re_blocks: tuple[str, ...],
    components: list,
    na_action: str,
    namespace: dict | None = None,
) -> tuple[Model, tuple, tuple[tuple[int, ...], ...]]:
    """Return the lme4 :class:`Model`, each block's role (``"re"`` or its component) and the theta ties."""
    terms = [f"({expr} | {group})" for expr in re_blocks]
    roles: list = ["re"] * len(re_blocks)
    for comp in components:
        n = getattr(comp, "n_blocks", 1)
        terms.append(str(comp))
        roles += [comp] * n
    try:
        model = Model(
            f"{fixed} + " + " + ".join(terms), frame, na_action=na_action, extra_namespace=namespace
        )
    except DataError as err:
        raise DataError(str(err).replace("na_action='drop'", "missing='drop'")) from err
    for block, role in zip(model.design.blocks, roles, strict=True):
        if role != "re" and block.q != 1:
            raise NotImplementedError(
                f"vc_formula[{role.name!r}] = {role.formula!r} makes {block.q} columns from one term; "
                "write each column as its own term ('0 + a + b'), or use exog_vc"
            )
    ties = []
    for comp in components:
        if getattr(comp, "tied", False):
            ties.append(
                tuple(
                    _theta_index(model, b)
                    for b, r in zip(model.design.blocks, roles, strict=True)
                    if r is comp
                )
            )
    return model, tuple(roles), tuple(ties)


def _theta_index(model: Model, block) -> int:
    """Return the full-theta entry of a scalar design block."""
    for f in model.structure.factors:
        start = 0
        for source in f.source_blocks:
            if source is block:
                rows, cols = f.lower_index
                return f.theta_start + int(np.flatnonzero((rows == start) & (cols == start))[0])
            start += source.q
    raise AssertionError("a design block is in no factor")  # pragma: no cover


def fit_tied(model: Model, reml: bool, ties: tuple[tuple[int, ...], ...]) -> LikelihoodFit:
    """Fit ``model`` by REML or ML with ``ties`` held (lme4's own fit when there are none)."""
    if not ties:
        return model.fit_reml() if reml else model.fit_ml()
    stats = model.scaled_cross_products
    opt = optimize_theta(model.structure, stats, reml=reml, ties=ties)
    return LikelihoodFit(model.design, model.structure, stats, opt)
