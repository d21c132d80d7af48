"""The statsmodels entry point, translation: statsmodels' model description into an lme4 formula.

One-sided ``re_formula``/``vc_formula`` strings, the group column, a subset, the array interface
(``MixedLM(endog, exog, groups, exog_re)``) and the ``free`` mask of ``fit`` become the terms of an
lme4 formula for :class:`bayesmlm.Model`. The translation table is in :mod:`bayesmlm.statsmodels_api`.
"""

from __future__ import annotations

import keyword
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from bayesmlm.design.levels import level_keys
from bayesmlm.exceptions import ArgumentError, DataError
from bayesmlm.statsmodels_api.namespace import caller_functions
from bayesmlm.statsmodels_api.variance_components import MatrixComponent, formula_component

__all__ = ["array_inputs", "formula_inputs", "group_values"]

#: statsmodels' optimiser names that MixedLM accepts (they change nothing here).
OPTIMIZERS = frozenset({"bfgs", "lbfgs", "powell", "cg", "nm", "basinhopping", "minimize"})
_NEEDS_HESSIAN = frozenset({"newton", "ncg"})  # statsmodels' MixedLM rejects these too
_OPTIMIZER_KWARGS = frozenset({"gtol", "maxiter", "eps", "maxcor", "ftol", "tol", "disp", "maxls"})
_MISSING = {"none": "error", "raise": "error", "drop": "drop"}
_C_CALL = re.compile(r"C\(\s*([^\W\d]\w*)\s*\)")


# -- parsing the one-sided statsmodels formulas -----------------------------------------------------
def _split_top(text: str, seps: str) -> list[tuple[str, str]]:
    """Split ``text`` at the characters ``seps`` outside brackets into (separator, piece) pairs."""
    pieces, depth, sep, start = [], 0, "+", 0
    for i, ch in enumerate(text):
        if ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
        elif depth == 0 and ch in seps:
            pieces.append((sep, text[start:i].strip()))
            sep, start = ch, i + 1
    pieces.append((sep, text[start:].strip()))
    return pieces


def _one_sided(text: Any, what: str) -> tuple[bool, list[str]]:
    """Parse ``"~ 0 + x + z"`` into (has intercept, terms), as patsy reads a one-sided formula."""
    if not isinstance(text, str):
        raise TypeError(f"{what} must be a string such as '~x' or '0 + x', not {type(text).__name__}")
    body = text.strip()
    body = body[1:].strip() if body.startswith("~") else body
    if "~" in body or "|" in body:
        raise ArgumentError(f"{what} {text!r} must be a one-sided formula such as '~x' or '0 + x'")
    if not body:
        raise ArgumentError(f"{what} is empty; write '1' for a random intercept")
    intercept, terms = True, []
    pieces = _split_top(body, "+-")
    for k, (sign, term) in enumerate(pieces):
        if not term:
            if k == 0 and len(pieces) > 1:  # a leading sign: "-1 + x"
                continue
            raise ArgumentError(f"{what} {text!r} has an empty term")
        if term in ("0", "1"):
            intercept = (term == "1") == (sign == "+")
        elif sign == "-":
            raise ArgumentError(
                f"{what} {text!r} removes the term {term!r}; only '- 1' (no intercept) can be removed"
            )
        elif term not in terms:
            terms.append(term)
    return intercept, terms


def _block_expr(intercept: bool, terms: list[str]) -> str:
    if not terms:
        return "1"
    return ("1 + " if intercept else "0 + ") + " + ".join(terms)


def _is_name(name: Any) -> bool:
    return (
        isinstance(name, str)
        and re.fullmatch(r"[^\W\d]\w*", name) is not None
        and not keyword.iskeyword(name)
    )


def _is_categorical(column: pd.Series) -> bool:
    dtype = column.dtype
    return pd.api.types.is_bool_dtype(dtype) or not pd.api.types.is_numeric_dtype(dtype)


def _fresh_name(data: pd.DataFrame, base: str) -> str:
    name, k = base, 1
    while name in data.columns:
        name, k = f"__groups{k}__", k + 1
    return name


@dataclass(frozen=True)
class _Component:
    """One ``vc_formula`` entry translated to an lme4 term.

    ``parts`` keeps the term's ``:``-separated parts as written with, for a categorical part, its
    column (``("C(class)", "class")``) and for a numeric part ``None``.
    """

    name: str
    formula: str
    parts: tuple[tuple[str, str | None], ...]
    group: str

    @property
    def nesting(self) -> tuple[str, ...]:
        """The grouping factor: the group column, then the categorical columns."""
        return (self.group, *(col for _, col in self.parts if col is not None))

    @property
    def expr(self) -> str:
        numeric = [text for text, col in self.parts if col is None]
        return "0 + " + ":".join(numeric) if numeric else "1"

    @property
    def nested(self) -> bool:
        return len(self.nesting) > 1

    def __str__(self) -> str:
        return f"({self.expr} | {':'.join(self.nesting)})"


def _component(name: Any, formula: Any, data: pd.DataFrame, group: str) -> _Component | MatrixComponent:
    what = f"vc_formula[{name!r}]"
    if not isinstance(name, str):
        raise TypeError(f"the names in vc_formula must be strings, not {type(name).__name__}")
    intercept, terms = _one_sided(formula, what)
    if intercept:
        raise ArgumentError(
            f"{what} = {formula!r} includes an intercept; write it with '0 + ', as statsmodels' "
            "documentation asks: '0 + C(class)' for a random intercept per class within each group, "
            "'0 + x' for an independent random slope"
        )
    if len(terms) != 1:
        categorical = [
            t
            for t in terms
            for _, part in _split_top(t, ":")
            if _C_CALL.fullmatch(part) or (part in data.columns and _is_categorical(data[part]))
        ]
        if categorical:
            raise NotImplementedError(
                f"{what} = {formula!r} mixes the categorical term {categorical[0]!r} with others; patsy's "
                "coding of that is not reproduced: build the columns yourself and pass exog_vc "
                "(MixedLM(endog, exog, groups, exog_vc={name: {group: matrix}}))"
            )
        return formula_component(name, formula, terms, group)
    parts = []
    for _, part in _split_top(terms[0], ":"):
        call = _C_CALL.fullmatch(part)
        if call:
            parts.append((part, call.group(1)))
        elif part in data.columns and _is_categorical(data[part]):
            parts.append((part, part))
        else:
            parts.append((part, None))
    return _Component(name, formula, tuple(parts), group)


# -- groups, data and the array interface -----------------------------------------------------------
def _attach_groups(data: pd.DataFrame, groups: Any) -> tuple[pd.DataFrame, str, str]:
    """Return (data, group column, statsmodels' group name); ``data`` is copied before any change."""
    if groups is None:
        raise ArgumentError("'groups' is required: a column name of data, or a Series/array of group labels")
    if isinstance(groups, str):
        if groups not in data.columns:
            raise DataError(
                f"groups={groups!r} is not a column of data; the columns are {list(data.columns)}"
            )
        if _is_name(groups):
            return data, groups, groups
        column = _fresh_name(data, "Group")
        data = data.copy()
        data[column] = data[groups]
        return data, column, groups
    values = groups.array if isinstance(groups, pd.Series) else np.asarray(groups)
    if np.ndim(values) != 1 or len(values) != len(data):
        raise ArgumentError(
            f"groups has shape {np.shape(values)}, but data has {len(data)} rows; pass one label per row "
            "(statsmodels aligns groups with data by position)"
        )
    name = getattr(groups, "name", None)
    if _is_name(name) and name in data.columns:
        same = pd.Series(np.asarray(data[name], dtype=object)).equals(
            pd.Series(np.asarray(values, dtype=object))
        )
        if same:
            return data, name, "Group"
        column = _fresh_name(data, "__groups__")
    elif _is_name(name):
        column = name
    else:
        column = _fresh_name(data, "Group")
    data = data.copy()
    data[column] = pd.Series(values, index=data.index)
    return data, column, "Group"


def _apply_subset(data: pd.DataFrame, subset: Any) -> pd.DataFrame:
    if subset is None:
        return data
    mask = np.asarray(subset)
    if mask.dtype == bool:
        if mask.shape != (len(data),):
            raise ArgumentError(f"a boolean subset needs one value per row of data ({len(data)})")
        return data.loc[mask]
    return data.loc[subset]


def _matrix(values: Any, what: str, default: str) -> tuple[np.ndarray, list[str]]:
    """Return ``exog`` or ``exog_re`` as a 2-d float array, with statsmodels' column names."""
    if isinstance(values, pd.DataFrame):
        return values.to_numpy(dtype=float), [str(c) for c in values.columns]
    if isinstance(values, pd.Series):
        arr = values.to_numpy(dtype=float)[:, None]
        return arr, [str(values.name) if values.name is not None else f"{default}1"]
    arr = np.asarray(values, dtype=float)
    arr = arr[:, None] if arr.ndim == 1 else arr
    if arr.ndim != 2:
        raise ArgumentError(f"{what} must be 1- or 2-dimensional")
    names = [f"{default}{k + 1}" for k in range(arr.shape[1])]
    if what == "exog" and len(arr) and np.any(np.ptp(arr, axis=0) == 0):  # statsmodels: a constant is 'const'
        names = [f"x{k}" for k in range(1, arr.shape[1])]
        names.insert(int(np.argmin(np.var(arr, axis=0))), "const")
    return arr, names


def array_inputs(endog: Any, exog: Any, groups: Any, exog_re: Any) -> dict[str, Any]:
    """Translate statsmodels' array interface into the data frame and names of an lme4 formula.

    Returns the keyword arguments of ``MixedLM._setup`` (all but ``missing``): the formula's fixed
    part, the data (one column per distinct column of ``exog``/``exog_re``, named after them where
    they are names), the group column, and how each internal name is displayed (statsmodels' names).
    """
    y = endog.to_numpy(dtype=float) if isinstance(endog, pd.Series) else np.asarray(endog, dtype=float)
    y = y.reshape(-1)
    y_name = endog.name if isinstance(endog, pd.Series) and endog.name is not None else "y"
    X, x_names = _matrix(exog, "exog", "x")
    if exog_re is None:
        Z, z_names = np.ones((len(y), 1)), ["Group Var"]  # statsmodels' name for the default intercept
    else:
        Z, z_names = _matrix(exog_re, "exog_re", "x_re")
    if len(X) != len(y) or len(Z) != len(y):
        raise ArgumentError(f"endog has {len(y)} rows but exog has {len(X)} and exog_re {len(Z)}")
    columns: dict[str, np.ndarray] = {}
    display_of: dict[str, str] = {}

    def column(display: str, values: np.ndarray, fallback: str = "x") -> str:
        for name, existing in columns.items():  # the same column in exog and exog_re is shared
            if np.array_equal(existing, values) and display == display_of.get(name):
                return name
        name = display if _is_name(display) and display != "Intercept" else fallback
        base, k = name, 1
        while name in columns or name == "Intercept":
            name, k = f"{base}_{k}", k + 1
        columns[name] = values
        display_of[name] = display
        return name

    y_col = column(str(y_name), y, "y")
    fixed, fixed_display, intercept = [], {}, False  # fixed_display keeps exog's column order
    for j, name in enumerate(x_names):
        if not intercept and np.all(X[:, j] == 1.0):
            intercept, fixed_display["Intercept"] = True, name
        else:
            fixed.append(column(name, X[:, j]))
            fixed_display[fixed[-1]] = name
    re_terms, re_display, re_intercept = [], {}, False
    for j, name in enumerate(z_names):
        if not re_intercept and np.all(Z[:, j] == 1.0):
            re_intercept, re_display["Intercept"] = True, name
        else:
            re_terms.append(column(name, Z[:, j]))
            re_display[re_terms[-1]] = name
    labelled = endog if isinstance(endog, pd.Series) else exog  # statsmodels: endog's labels first
    data = pd.DataFrame(
        columns, index=labelled.index if isinstance(labelled, pd.DataFrame | pd.Series) else None
    )
    data, group_col, _ = _attach_groups(data, groups)
    rhs = _block_expr(intercept, fixed) if fixed else ("1" if intercept else "0")
    re_names = None if exog_re is not None else ["Group Var"]
    return {
        "formula": f"{y_col} ~ {rhs}",
        "data": data,
        "group_col": group_col,
        "group_name": "Group",
        "re_intercept": re_intercept,
        "re_terms": re_terms,
        "components": [],
        "endog_name": str(y_name),
        "fixed_display": fixed_display,
        "re_display": re_display,
        "re_param_names": re_names,
        "namespace": None,
    }


def group_values(data: pd.DataFrame, column: str) -> tuple[dict[str, Any], list]:
    """Each group's label -> its original value, and the original values sorted (as statsmodels)."""
    labels = level_keys(data, (column,))
    originals = np.asarray(data[column]).tolist()
    to_value: dict[str, Any] = {}
    for label, value in zip(labels, originals, strict=True):
        to_value.setdefault(label, value)
    values = list(to_value.values())
    try:
        values = sorted(values)
    except TypeError:
        pass
    return to_value, values


def formula_inputs(
    formula: Any,
    data: Any,
    groups: Any,
    re_formula: Any,
    vc_formula: Any,
    subset: Any,
    kwargs: dict,
) -> dict[str, Any]:
    """Translate ``MixedLM.from_formula``'s arguments into the keyword arguments of ``MixedLM._setup``."""
    unknown = sorted(set(kwargs) - {"eval_env", "extra_namespace", "use_sqrt"})
    if unknown:
        raise TypeError(f"mixedlm() got unsupported argument(s) {unknown}")
    namespace = caller_functions(kwargs.get("eval_env"), kwargs.get("extra_namespace"))
    if not isinstance(formula, str) or "~" not in formula:
        raise ArgumentError(f"formula must be a string such as 'y ~ x', not {formula!r}")
    if "|" in formula:
        raise ArgumentError(
            f"formula {formula!r} has a random term; give the groups with groups= and the random "
            "part with re_formula= (or use bayesmlm.Model for an lme4 formula)"
        )
    if not isinstance(data, pd.DataFrame):
        data = pd.DataFrame(data)
    data, group_col, group_name = _attach_groups(data, groups)
    data = _apply_subset(data, subset)
    if re_formula is None:
        re_intercept, re_terms = vc_formula is None, []
    else:
        re_intercept, re_terms = _one_sided(re_formula, "re_formula")
    if vc_formula is not None and not isinstance(vc_formula, Mapping):
        raise TypeError(f"vc_formula must be a dict of name -> formula, not {type(vc_formula).__name__}")
    components = [_component(k, vc_formula[k], data, group_col) for k in sorted(vc_formula or {})]
    return dict(
        formula=formula.strip(),
        data=data,
        group_col=group_col,
        group_name=group_name,
        re_intercept=re_intercept,
        re_terms=re_terms,
        components=components,
        endog_name=None,
        fixed_display={},
        re_display={"Intercept": group_name},
        re_param_names=None,
        namespace=namespace,
    )
