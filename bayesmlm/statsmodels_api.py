"""statsmodels' ``mixedlm`` / ``MixedLM`` interface, fitted by bayesmlm (statsmodels is not needed).

Code written for :func:`statsmodels.formula.api.mixedlm` runs with only the import changed::

    import bayesmlm as smf  # instead of: import statsmodels.formula.api as smf

    md = smf.mixedlm("Reaction ~ Days", data, groups=data["Subject"], re_formula="~Days")
    mdf = md.fit(method=["lbfgs"])  # REML by default, as in statsmodels
    print(mdf.summary())
    icc = mdf.cov_re.iloc[0, 0] / (mdf.cov_re.iloc[0, 0] + mdf.scale)

The statsmodels call is translated into an lme4 formula, kept as ``md.formula`` (``print(md.spec)``
shows the parsed form), and fitted by bayesmlm's lme4-exact REML/ML optimiser; ``md.fit(bayes=True)``
samples the same model with NUTS instead. The result, :class:`MixedLMResults`, has statsmodels'
attributes (``fe_params``, ``cov_re``, ``scale``, ``random_effects``, ``params``, ``summary()``...)
with statsmodels' names and shapes.

Translation (``g`` is the group column)
---------------------------------------

=============================================================  ======================================
statsmodels                                                    lme4 formula
=============================================================  ======================================
``mixedlm("y ~ x", d, groups="g")`` (or ``re_formula="1"``)    ``y ~ x + (1 | g)``
``re_formula="~x"`` (or ``"x"``, ``"1 + x"``)                  ``y ~ x + (1 + x | g)``
``re_formula="~x - 1"`` (or ``"0 + x"``, ``"~0 + x"``)         ``y ~ x + (0 + x | g)``
``re_formula="~x + z"``                                        ``y ~ x + (1 + x + z | g)``
``re_formula="1", vc_formula={"x": "0 + x"}``                  ``y ~ x + (1 | g) + (0 + x | g)``
``vc_formula={"x": "0 + x"}`` (re_formula None or ``"0"``)     ``y ~ x + (0 + x | g)``
``re_formula="1", vc_formula={"c": "0 + C(c)"}``               ``y ~ x + (1 | g) + (1 | g:c)``
``vc_formula={"cx": "0 + C(c):x"}``                            ``y ~ x + (0 + x | g:c)``
``re_formula="~x"`` and ``fit(free=...)`` with ``cov_re`` = I  ``y ~ x + (1 | g) + (0 + x | g)``
``MixedLM(endog, exog, groups, exog_re)``                      ``y ~ 0 + x1 + x2 + (0 + z1 | g)``
=============================================================  ======================================

``re_formula`` gives correlated random effects within each group (statsmodels estimates their full
covariance matrix, as lme4's ``(x | g)`` does). Each ``vc_formula`` entry is a variance component
independent of everything else: a numeric ``"0 + x"`` is an independent random slope; a categorical
``"0 + C(c)"`` (one column per level of ``c``, all sharing one variance) is a random intercept for each
``c`` within each group, written ``(1 | g:c)``. As in statsmodels, giving ``vc_formula`` without
``re_formula`` drops the default random group intercept (``re_formula="1"`` keeps it), and
``re_formula="0"`` asks for no correlated random effects at all. With ``MixedLM(endog, exog, ...)`` a
column of ones in ``exog`` or ``exog_re`` becomes the intercept ``1`` of the formula.

Names follow statsmodels: the random intercept is called after the group column when ``groups`` is a
column name (``"Subject Var"``), and ``"Group"`` when ``groups`` is a Series or array
(``"Group Var"``); ``"Group x Days Cov"`` is a covariance. Fixed-effect names are formulae's, which
differ from patsy's only for categorical terms (``"C(c)[b]"`` where patsy writes ``"C(c)[T.b]"``).

What differs from statsmodels
-----------------------------
* The optimiser is always lme4's profiled one; statsmodels' ``method`` names are checked and ignored.
  Where statsmodels stops short of the optimum on a boundary (it reports ``Converged: No``), this
  module returns lme4's boundary fit with a variance of exactly 0.
* Standard errors of the variance parameters are not computed (``NaN``, blank in the summary).
* ``aic`` and ``bic`` are lme4's (statsmodels gives NaN for REML fits).
* ``random_effects`` is available for boundary fits (statsmodels raises for a singular ``cov_re``).
"""

from __future__ import annotations

import keyword
import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats as sps

from bayesmlm.bayes_fit import Fit
from bayesmlm.design import level_keys
from bayesmlm.exceptions import DataError
from bayesmlm.formula import ModelSpec
from bayesmlm.likelihood_fit import LikelihoodFit
from bayesmlm.model import Model

__all__ = ["MixedLM", "MixedLMResults", "MixedLMSummary", "mixedlm"]

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
        raise ValueError(f"{what} {text!r} must be a one-sided formula such as '~x' or '0 + x'")
    if not body:
        raise ValueError(f"{what} is empty; write '1' for a random intercept")
    intercept, terms = True, []
    pieces = _split_top(body, "+-")
    for k, (sign, term) in enumerate(pieces):
        if not term:
            if k == 0 and len(pieces) > 1:  # a leading sign: "-1 + x"
                continue
            raise ValueError(f"{what} {text!r} has an empty term")
        if term in ("0", "1"):
            intercept = (term == "1") == (sign == "+")
        elif sign == "-":
            raise ValueError(
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


def _component(name: Any, formula: Any, data: pd.DataFrame, group: str) -> _Component:
    what = f"vc_formula[{name!r}]"
    if not isinstance(name, str):
        raise TypeError(f"the names in vc_formula must be strings, not {type(name).__name__}")
    intercept, terms = _one_sided(formula, what)
    if intercept:
        raise ValueError(
            f"{what} = {formula!r} includes an intercept; write it with '0 + ', as statsmodels' "
            "documentation asks: '0 + C(class)' for a random intercept per class within each group, "
            "'0 + x' for an independent random slope"
        )
    if len(terms) != 1:
        raise NotImplementedError(
            f"{what} = {formula!r} has {len(terms)} terms sharing one variance, which an lme4 formula "
            "cannot express; give each term its own entry in vc_formula (each gets its own variance)"
        )
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
        raise ValueError("'groups' is required: a column name of data, or a Series/array of group labels")
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
        raise ValueError(
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
            raise ValueError(f"a boolean subset needs one value per row of data ({len(data)})")
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
        raise ValueError(f"{what} must be 1- or 2-dimensional")
    names = [f"{default}{k + 1}" for k in range(arr.shape[1])]
    if what == "exog" and len(arr) and np.any(np.ptp(arr, axis=0) == 0):  # statsmodels: a constant is 'const'
        names = [f"x{k}" for k in range(1, arr.shape[1])]
        names.insert(int(np.argmin(np.var(arr, axis=0))), "const")
    return arr, names


# -- the model --------------------------------------------------------------------------------------
class MixedLM:
    """A linear mixed model specified the statsmodels way, fitted by bayesmlm.

    Build it with :meth:`from_formula` (= :func:`mixedlm`) or, as statsmodels' array interface, with
    ``MixedLM(endog, exog, groups, exog_re=None)``.

    Parameters
    ----------
    endog : array_like
        The response (a Series keeps its name).
    exog : array_like
        Fixed-effects design matrix; a DataFrame keeps its column names. A column of ones is the
        intercept.
    groups : array_like
        One group label per row.
    exog_re : array_like, optional
        Random-effects design matrix (correlated effects within each group); the default is a random
        intercept. A column of ones is the random intercept.
    exog_vc : None
        statsmodels' variance-component matrices are not supported here: use
        ``MixedLM.from_formula(..., vc_formula=...)``.
    use_sqrt : bool
        Accepted for compatibility; it has no effect.
    missing : {"none", "drop", "raise"}
        ``"drop"`` drops rows with a missing value; otherwise missing values are an error.

    Attributes
    ----------
    formula : str
        The lme4 formula the model was translated to.
    spec : ModelSpec
        That formula parsed (``print(md.spec)``).
    bayesmlm_model : Model
        The :class:`bayesmlm.Model` that is fitted.
    data : DataFrame
        The data with the group column (a copy if a column had to be added).
    group_name : str
        statsmodels' name of the random intercept: the group column's name, or ``"Group"``.
    exog_names : list of str
        Fixed effects, named as statsmodels names them.
    exog_re_names : list of str
        Correlated random effects, named as statsmodels names them.
    param_names : list of str
        All parameters, named as statsmodels names them.
    vc_names : list of str
        The variance components, sorted (statsmodels sorts them too).
    k_fe : int
        Number of fixed effects.
    k_re : int
        Number of correlated random effects.
    k_re2 : int
        Number of their covariance parameters.
    k_vc : int
        Number of variance components.

    Examples
    --------
    >>> import numpy as np
    >>> import bayesmlm as bm
    >>> data = bm.load_dataset("sleepstudy")
    >>> md = bm.MixedLM(data["Reaction"], np.column_stack([np.ones(180), data["Days"]]), data["Subject"])
    >>> print(md.spec)
    Reaction ~ 1 + x1 + (1 | Subject)
    >>> round(md.fit().llf, 4)
    -893.2325
    """

    def __init__(
        self,
        endog: Any,
        exog: Any,
        groups: Any,
        exog_re: Any = None,
        exog_vc: Any = None,
        use_sqrt: bool = True,
        missing: str = "none",
        **kwargs: Any,
    ):
        if kwargs:
            raise TypeError(f"MixedLM() got unsupported argument(s) {sorted(kwargs)}")
        if exog_vc is not None:
            raise NotImplementedError(
                "exog_vc is not supported; use MixedLM.from_formula(..., vc_formula={name: formula})"
            )
        y = endog.to_numpy(dtype=float) if isinstance(endog, pd.Series) else np.asarray(endog, dtype=float)
        y = y.reshape(-1)
        y_name = endog.name if isinstance(endog, pd.Series) and endog.name is not None else "y"
        X, x_names = _matrix(exog, "exog", "x")
        if exog_re is None:
            Z, z_names = np.ones((len(y), 1)), ["Group Var"]  # statsmodels' name for the default intercept
        else:
            Z, z_names = _matrix(exog_re, "exog_re", "x_re")
        if len(X) != len(y) or len(Z) != len(y):
            raise ValueError(f"endog has {len(y)} rows but exog has {len(X)} and exog_re {len(Z)}")
        columns: dict[str, np.ndarray] = {}

        def column(display: str, values: np.ndarray, fallback: str = "x") -> str:
            for name, existing in columns.items():  # the same column in exog and exog_re is shared
                if np.array_equal(existing, values) and display == self._display.get(name):
                    return name
            name = display if _is_name(display) and display != "Intercept" else fallback
            base, k = name, 1
            while name in columns or name == "Intercept":
                name, k = f"{base}_{k}", k + 1
            columns[name] = values
            self._display[name] = display
            return name

        self._display: dict[str, str] = {}
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
        data = pd.DataFrame(columns, index=endog.index if isinstance(endog, pd.Series) else None)
        data, group_col, _ = _attach_groups(data, groups)
        rhs = _block_expr(intercept, fixed) if fixed else ("1" if intercept else "0")
        re_names = None if exog_re is not None else ["Group Var"]
        self._setup(
            formula=f"{y_col} ~ {rhs}",
            data=data,
            group_col=group_col,
            group_name="Group",
            re_intercept=re_intercept,
            re_terms=re_terms,
            components=[],
            missing=missing,
            endog_name=str(y_name),
            fixed_display=fixed_display,
            re_display=re_display,
            re_param_names=re_names,
        )

    @classmethod
    def from_formula(
        cls,
        formula: str,
        data: pd.DataFrame,
        groups: Any = None,
        re_formula: str | None = None,
        vc_formula: Mapping[str, str] | None = None,
        subset: Any = None,
        use_sparse: bool = False,
        missing: str = "none",
        **kwargs: Any,
    ) -> MixedLM:
        """Create a model from a formula and a data frame, as statsmodels' ``MixedLM.from_formula``.

        Parameters
        ----------
        formula : str
            The fixed part, ``"y ~ x"`` (no random terms).
        data : DataFrame
            The data; it is never modified.
        groups : str or array_like
            The group column's name, or one label per row of ``data`` (aligned by position, as
            statsmodels does). Labels are categories even when they are numbers.
        re_formula : str, optional
            Correlated random effects within groups: ``"1"`` (the default without ``vc_formula``),
            ``"~x"`` (intercept and slope), ``"~0 + x"`` (slope only), ``"0"`` (none).
        vc_formula : dict, optional
            Independent variance components, name -> one-sided formula: ``{"x": "0 + x"}`` for a
            random slope, ``{"class": "0 + C(class)"}`` for a random intercept per class within each
            group. Without ``re_formula`` there is then no random group intercept (as in statsmodels).
        subset : array_like, optional
            Rows of ``data`` to use: booleans (one per row) or index labels.
        use_sparse : bool
            Accepted for compatibility; it has no effect.
        missing : {"none", "drop", "raise"}
            ``"drop"`` drops rows with a missing value in a used column; otherwise they are an error.
        **kwargs
            ``eval_env`` and ``use_sqrt`` are accepted and ignored; anything else is an error.

        Returns
        -------
        MixedLM

        Notes
        -----
        ``groups`` comes third, so ``mixedlm("y ~ x", df, "g")`` works; statsmodels' third
        positional parameter is ``re_formula`` (and ``groups`` must be a keyword there), so code
        written for statsmodels, which always passes ``groups=``, runs unchanged.

        Examples
        --------
        >>> import bayesmlm as bm
        >>> data = bm.load_dataset("sleepstudy")
        >>> md = bm.MixedLM.from_formula("Reaction ~ Days", data, groups="Subject", re_formula="~Days")
        >>> md.formula
        'Reaction ~ Days + (1 + Days | Subject)'
        >>> md.param_names
        ['Intercept', 'Days', 'Subject Var', 'Subject x Days Cov', 'Days Var']
        """
        unknown = sorted(set(kwargs) - {"eval_env", "use_sqrt"})
        if unknown:
            raise TypeError(f"mixedlm() got unsupported argument(s) {unknown}")
        if not isinstance(formula, str) or "~" not in formula:
            raise ValueError(f"formula must be a string such as 'y ~ x', not {formula!r}")
        if "|" in formula:
            raise ValueError(
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
        self = cls.__new__(cls)
        self._setup(
            formula=formula.strip(),
            data=data,
            group_col=group_col,
            group_name=group_name,
            re_intercept=re_intercept,
            re_terms=re_terms,
            components=components,
            missing=missing,
            endog_name=None,
            fixed_display={},
            re_display={"Intercept": group_name},
            re_param_names=None,
        )
        return self

    def _setup(
        self,
        formula: str,
        data: pd.DataFrame,
        group_col: str,
        group_name: str,
        re_intercept: bool,
        re_terms: list[str],
        components: list[_Component],
        missing: str,
        endog_name: str | None,
        fixed_display: dict[str, str],
        re_display: dict[str, str],
        re_param_names: list[str] | None,
    ) -> None:
        if missing not in _MISSING:
            raise ValueError(f"missing must be 'none', 'drop' or 'raise', not {missing!r}")
        if not re_intercept and not re_terms and not components:
            raise ValueError(
                "the model has no random effects: re_formula='0' needs a vc_formula "
                "(for a model without random effects use ordinary least squares)"
            )
        self.data = data
        self._from_formula = endog_name is None
        self.group_col = group_col
        self.group_name = group_name
        self.missing = missing
        self._fixed_formula = formula
        self._re_intercept = re_intercept
        self._re_terms = list(re_terms)
        self._components = list(components)
        self._fixed_display = fixed_display
        self._re_display = re_display
        self._models: dict[tuple[str, ...], tuple[Model, tuple]] = {}
        default = (_block_expr(re_intercept, re_terms),) if (re_intercept or re_terms) else ()
        self._default_blocks = default
        model, roles = self._model_for(default)
        self.bayesmlm_model: Model = model
        self.formula: str = model.spec.formula
        self.spec: ModelSpec = model.spec
        design = model.design
        self.endog_names = endog_name if endog_name is not None else design.spec.response
        self._fixed_internal = list(design.fixed_names)
        if fixed_display:  # the array interface: statsmodels keeps exog's column order
            order = [k for k in fixed_display if k in self._fixed_internal]
            self._fixed_internal = order + [k for k in self._fixed_internal if k not in order]
        self.exog_names = [fixed_display.get(k, k) for k in self._fixed_internal]
        re_block = next((b for b, r in zip(design.blocks, roles, strict=True) if r == "re"), None)
        self._re_internal = list(re_block.term_names) if re_block is not None else []
        self.exog_re_names = [re_display.get(k, k) for k in self._re_internal]
        names = self.exog_re_names
        if re_param_names is not None:
            re_params = list(re_param_names)
        else:
            re_params = [
                f"{names[i]} Var" if i == j else f"{names[j]} x {names[i]} Cov"
                for i in range(len(names))
                for j in range(i + 1)
            ]
        self.vc_names = [c.name for c in self._components]
        self.exog_re_names_full = re_params
        self.param_names = self.exog_names + re_params + [f"{v} Var" for v in self.vc_names]
        self.k_fe = len(self.exog_names)
        self.k_re = len(self.exog_re_names)
        self.k_re2 = self.k_re * (self.k_re + 1) // 2
        self.k_vc = len(self._components)
        labels = level_keys(design.data, (group_col,))
        self._group_labels = labels
        self.nobs = design.n
        self.n_groups = len(set(labels))

    # -- building the lme4 model ----------------------------------------------------------------------
    def _model_for(self, re_blocks: tuple[str, ...]) -> tuple[Model, tuple]:
        """Return the bayesmlm Model (and each random term's role) for these correlated blocks."""
        if re_blocks not in self._models:
            terms = [f"({expr} | {self.group_col})" for expr in re_blocks]
            terms += [str(c) for c in self._components]
            formula = f"{self._fixed_formula} + " + " + ".join(terms)
            try:
                model = Model(formula, self.data, na_action=_MISSING[self.missing])
            except DataError as err:
                raise DataError(str(err).replace("na_action='drop'", "missing='drop'")) from err
            roles = ("re",) * len(re_blocks) + tuple(self._components)
            for block, role in zip(model.design.blocks, roles, strict=True):
                if role != "re" and block.q != 1:
                    raise NotImplementedError(
                        f"vc_formula[{role.name!r}] = {role.formula!r} makes {block.q} columns sharing one "
                        "variance, which an lme4 formula cannot express; use a single numeric term "
                        "('0 + x') or a categorical one ('0 + C(c)')"
                    )
            self._models[re_blocks] = (model, roles)
        return self._models[re_blocks]

    def _blocks_for_free(self, free: Any, start_params: Any) -> tuple[str, ...]:
        """Translate statsmodels' ``free`` mask into separate lme4 blocks (zero = fixed at 0)."""
        if free is None:
            return self._default_blocks
        if hasattr(free, "cov_re"):
            fe = getattr(free, "fe_params", None)
            cov = np.asarray(free.cov_re, dtype=float)
            vc = getattr(free, "vcomp", None)
        else:
            packed = np.asarray(free, dtype=float).reshape(-1)
            if len(packed) != self.k_fe + self.k_re2 + self.k_vc:
                raise ValueError(
                    f"free has {len(packed)} values; expected {self.k_fe + self.k_re2 + self.k_vc}"
                )
            fe, vc = packed[: self.k_fe], packed[self.k_fe + self.k_re2 :]
            cov = np.zeros((self.k_re, self.k_re))
            cov[np.tril_indices(self.k_re)] = packed[self.k_fe : self.k_fe + self.k_re2]
        if fe is not None and np.any(np.asarray(fe) == 0):
            raise NotImplementedError("free: holding fixed effects at their starting values is not supported")
        if vc is not None and np.any(np.asarray(vc) == 0):
            raise NotImplementedError("free: holding variance components fixed is not supported")
        if cov.shape != (self.k_re, self.k_re):
            raise ValueError(f"free.cov_re has shape {cov.shape}; the model has {self.k_re} random effects")
        if np.any(np.diag(cov) == 0):
            raise NotImplementedError("free: holding a variance at its starting value is not supported")
        k = self.k_re
        fixed = [(i, j) for i in range(k) for j in range(i) if cov[i, j] == 0]
        if not fixed:
            return self._default_blocks
        start_cov = getattr(start_params, "cov_re", None)
        if start_params is not None and (
            start_cov is None or any(np.asarray(start_cov)[i, j] != 0 for i, j in fixed)
        ):
            raise NotImplementedError("free with start_params: only covariances held at 0 are supported")
        # random effects linked by a free covariance form one block; each block must be complete
        component = list(range(k))
        for i in range(k):
            for j in range(i):
                if cov[i, j] != 0:
                    old, new = component[i], component[j]
                    component = [new if c == old else c for c in component]
        blocks: dict[int, list[int]] = {}
        for i, c in enumerate(component):
            blocks.setdefault(c, []).append(i)
        for members in blocks.values():
            if any(cov[i, j] == 0 for i in members for j in members if i > j):
                raise NotImplementedError(
                    "free: this pattern of fixed covariances is not a set of independent blocks, "
                    "which an lme4 formula cannot express"
                )
        n_terms = len(self._re_terms) + int(self._re_intercept)
        if n_terms != k:
            raise NotImplementedError(
                f"free: re_formula makes {k} columns from {n_terms} terms; write one term per column "
                "to split them into independent blocks"
            )
        columns = (["1"] if self._re_intercept else []) + self._re_terms
        out = []
        for members in blocks.values():
            chosen = [columns[i] for i in members]
            has_one = "1" in chosen
            out.append(_block_expr(has_one, [c for c in chosen if c != "1"]))
        return tuple(out)

    # -- fitting ------------------------------------------------------------------------------------
    def fit(
        self,
        start_params: Any = None,
        reml: bool = True,
        niter_sa: int = 0,
        do_cg: bool = True,
        fe_pen: Any = None,
        cov_pen: Any = None,
        free: Any = None,
        full_output: bool = False,
        method: str | list[str] | None = None,
        *,
        bayes: bool = False,
        **kwargs: Any,
    ) -> MixedLMResults | Fit:
        """Fit the model by REML (the default), ML, or Bayesian sampling.

        The estimates are always lme4's: the REML/ML criterion is optimised over lme4's relative
        covariance parameters by bayesmlm's profiled optimiser, whatever statsmodels' optimiser
        options say.

        Parameters
        ----------
        start_params : optional
            Accepted and ignored (the optimum does not depend on it).
        reml : bool
            REML if true (statsmodels' and lme4's default), else maximum likelihood.
        niter_sa : int
            Accepted and ignored (statsmodels ignores it too).
        do_cg : bool
            Must be true: returning results at the starting values is not supported.
        fe_pen, cov_pen : None
            Penalised fits are not supported.
        free : MixedLMParams-like, optional
            statsmodels' mask of free parameters. Covariances of ``cov_re`` marked 0 are held at 0, so
            ``cov_re = np.eye(k)`` gives independent random effects (lme4's ``(x || g)``); other
            constraints raise NotImplementedError. Any object with a ``cov_re`` attribute (and
            optionally ``fe_params`` and ``vcomp``) works, such as statsmodels' ``MixedLMParams``.
        full_output : bool
            Accepted and ignored (no iteration history is kept).
        method : str or list of str, optional
            statsmodels' optimiser name(s) (``"bfgs"``, ``"lbfgs"``, ``"powell"``, ``"cg"``, ``"nm"``,
            ``"basinhopping"``, ``"minimize"``): checked, then ignored. ``"newton"`` and ``"ncg"`` raise
            ValueError, as in statsmodels; so does an unknown name.
        bayes : bool
            Sample the posterior with NUTS (:meth:`bayesmlm.Model.fit`) and return a
            :class:`bayesmlm.Fit`; ``reml`` is then ignored.
        **kwargs
            statsmodels' optimiser options (``maxiter``, ``gtol``, ``ftol``, ``tol``, ``eps``,
            ``maxcor``, ``maxls``, ``disp``) are accepted and ignored. With ``bayes=True`` the others go
            to the sampler (``draws``, ``tune``, ``chains``, ``seed``, ``progressbar``...).

        Returns
        -------
        MixedLMResults or Fit

        Examples
        --------
        >>> import bayesmlm as bm
        >>> data = bm.load_dataset("sleepstudy")
        >>> md = bm.mixedlm("Reaction ~ Days", data, groups=data["Subject"], re_formula="~Days")
        >>> mdf = md.fit(method=["lbfgs"])
        >>> round(mdf.llf, 4), round(mdf.scale, 2)
        (-871.8141, 654.94)
        >>> round(md.fit(reml=False).llf, 4)
        -875.9697
        """
        methods = [method] if isinstance(method, str) else list(method or [])
        for name in methods:
            if not isinstance(name, str):
                raise ValueError(f"method must be a name or a list of names, not {name!r}")
            if name.lower() in _NEEDS_HESSIAN:
                raise ValueError(f"method {name} not available for MixedLM")
            if name.lower() not in OPTIMIZERS:
                raise ValueError(
                    f"unknown optimisation method {name!r}; statsmodels' are {sorted(OPTIMIZERS)}"
                )
        if fe_pen is not None or cov_pen is not None:
            raise NotImplementedError("penalised fits (fe_pen, cov_pen) are not supported")
        if not do_cg:
            raise NotImplementedError("do_cg=False (results at the starting values) is not supported")
        model, roles = self._model_for(self._blocks_for_free(free, start_params))
        if bayes:
            return model.fit(**{k: v for k, v in kwargs.items() if k not in _OPTIMIZER_KWARGS})
        unknown = sorted(set(kwargs) - _OPTIMIZER_KWARGS)
        if unknown:
            raise TypeError(
                f"MixedLM.fit() got unsupported argument(s) {unknown}; sampler options need bayes=True"
            )
        fit = model.fit_reml() if reml else model.fit_ml()
        return MixedLMResults(self, fit, roles, free)

    @property
    def group_labels(self) -> list:
        """The distinct groups, sorted, as statsmodels lists them."""
        return _group_values(self.bayesmlm_model.design.data, self.group_col)[1]

    def __repr__(self) -> str:
        return f"<bayesmlm.MixedLM {self.formula}; {self.nobs} observations, {self.n_groups} groups>"


def mixedlm(
    formula: str,
    data: pd.DataFrame,
    groups: Any = None,
    re_formula: str | None = None,
    vc_formula: Mapping[str, str] | None = None,
    subset: Any = None,
    use_sparse: bool = False,
    missing: str = "none",
    **kwargs: Any,
) -> MixedLM:
    """Create a :class:`MixedLM` from a formula, as ``statsmodels.formula.api.mixedlm``.

    See :meth:`MixedLM.from_formula` for the parameters and the module docstring for how the
    statsmodels call is translated into an lme4 formula.

    Parameters
    ----------
    formula : str
    data : DataFrame
    groups : str or array_like
    re_formula : str, optional
    vc_formula : dict, optional
    subset : array_like, optional
    use_sparse : bool
    missing : {"none", "drop", "raise"}
    **kwargs
        ``eval_env`` and ``use_sqrt`` are accepted and ignored.

    Returns
    -------
    MixedLM

    Examples
    --------
    >>> import bayesmlm as smf
    >>> data = smf.load_dataset("sleepstudy")
    >>> md = smf.mixedlm("Reaction ~ 1", data, groups=data["Subject"])
    >>> print(md.spec)
    Reaction ~ 1 + (1 | Subject)
    >>> mdf = md.fit()
    >>> icc = mdf.cov_re.iloc[0, 0] / (mdf.cov_re.iloc[0, 0] + mdf.scale)
    >>> print(round(icc, 4))
    0.3949
    >>> smf.mixedlm("Reaction ~ Days", data, groups="Subject", vc_formula={"Days": "0 + Days"}).formula
    'Reaction ~ Days + (0 + Days | Subject)'
    """
    return MixedLM.from_formula(
        formula,
        data,
        groups=groups,
        re_formula=re_formula,
        vc_formula=vc_formula,
        subset=subset,
        use_sparse=use_sparse,
        missing=missing,
        **kwargs,
    )


def _group_values(data: pd.DataFrame, column: str) -> tuple[dict[str, Any], list]:
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


# -- results ----------------------------------------------------------------------------------------
class MixedLMResults:
    """A REML or ML fit with statsmodels' ``MixedLMResults`` attributes.

    The lme4-style fit is :attr:`fit_result`, a :class:`bayesmlm.LikelihoodFit` (``varcorr``,
    ``summary()``, ``predict(newdata)`` with random effects, ``icc()``...).

    Attributes
    ----------
    model : MixedLM
        The model that was fitted.
    fit_result : LikelihoodFit
        The underlying bayesmlm fit.
    method : str
        ``"REML"`` or ``"ML"``.
    reml : bool
    fe_params : Series
        Fixed-effect estimates.
    bse_fe : Series
        Their standard errors.
    cov_re : DataFrame
        Covariance matrix of the correlated random effects (``re_formula``), in the data's units,
        indexed by statsmodels' names (the group name for the intercept, then the slopes).
    cov_re_unscaled : DataFrame
        ``cov_re / scale``.
    vcomp : ndarray
        Variances of the variance components (``vc_formula``), in :attr:`MixedLM.vc_names` order.
    scale : float
        Residual variance ``sigma²``.
    llf : float
        Log-likelihood (restricted log-likelihood for REML, as lme4 and statsmodels report it).
    aic : float
        lme4's AIC (statsmodels gives NaN for REML fits).
    bic : float
        lme4's BIC (statsmodels gives NaN for REML fits).
    converged : bool
        Whether lme4's optimiser converged (a boundary fit with a zero variance converges).
    nobs : int
        Observations.
    ngroups : int
        Groups (``n_groups`` is the same).
    k_fe : int
        As in :class:`MixedLM`.
    k_re : int
        As in :class:`MixedLM`.
    k_re2 : int
        As in :class:`MixedLM`.
    k_vc : int
        As in :class:`MixedLM`.
    freepat : optional
        The ``free`` mask given to ``fit``.
    hist : None
        statsmodels' iteration history is not kept.

    Examples
    --------
    >>> import bayesmlm as bm
    >>> data = bm.load_dataset("sleepstudy")
    >>> mdf = bm.mixedlm("Reaction ~ Days", data, groups=data["Subject"], re_formula="~Days").fit()
    >>> mdf.cov_re.round(3)
             Group    Days
    Group  612.090   9.604
    Days     9.604  35.072
    >>> mdf.random_effects["308"].round(3)
    Group    2.259
    Days     9.199
    dtype: float64
    """

    def __init__(self, model: MixedLM, fit: LikelihoodFit, roles: tuple, free: Any = None):
        self.model = model
        self.fit_result = fit
        self.method = fit.method
        self.reml = fit.method == "REML"
        self.freepat = free
        self.hist = None
        self.k_fe, self.k_re, self.k_re2, self.k_vc = model.k_fe, model.k_re, model.k_re2, model.k_vc
        self.scale = fit.sigma**2
        self.converged = fit.converged
        self.nobs = fit.nobs
        self.ngroups = self.n_groups = model.n_groups
        self.df_resid = fit.nobs - fit.design.p
        # where each statsmodels random effect lives in bayesmlm's structure: (factor, column)
        place = {}
        for f in fit.structure.factors:
            start = 0
            for block in f.source_blocks:
                place[id(block)] = (f, start)
                start += block.q
        re_cols, self._vc_place = {}, []
        for block, role in zip(fit.design.blocks, roles, strict=True):
            f, start = place[id(block)]
            if role == "re":
                for k, name in enumerate(block.term_names):
                    re_cols[name] = (f, start + k)
            else:
                self._vc_place.append((role, f, start, block.term_names[0]))
        self._re_place = [re_cols[name] for name in model._re_internal]
        covs = {}
        for f in fit.structure.factors:
            lam = f.relative_factor(fit.theta)
            covs[f.group] = self.scale * (lam @ lam.T)
        names = model.exog_re_names
        cov = np.array(
            [
                [covs[fi.group][i, j] if fi is fj else 0.0 for fj, j in self._re_place]
                for fi, i in self._re_place
            ]
        )
        self.cov_re = pd.DataFrame(cov.reshape(self.k_re, self.k_re), index=names, columns=names)
        self.cov_re_unscaled = self.cov_re / self.scale
        self.vcomp = np.array([covs[f.group][k, k] for _, f, k, _ in self._vc_place])
        fe = fit.fixed_effects
        order = [k for k in model._fixed_internal if k in fe.index]
        display = [model._fixed_display.get(k, k) for k in order]
        self._fe_table = fe.loc[order].set_axis(pd.Index(display))
        self.fe_params = self._fe_table["estimate"].rename(None)
        self.bse_fe = self._fe_table["se"].rename(None)

    # -- parameters -----------------------------------------------------------------------------
    @cached_property
    def _param_index(self) -> pd.Index:
        names = list(self.fe_params.index)
        return pd.Index(names + self.model.param_names[self.model.k_fe :])

    @cached_property
    def params(self) -> pd.Series:
        """Fixed effects, then the covariance parameters divided by ``scale``, as statsmodels' ``params``.

        The covariance parameters are the lower triangle of ``cov_re / scale`` row by row
        (``"Group Var"``, ``"Group x Days Cov"``, ``"Days Var"``), then ``vcomp / scale``
        (``"<name> Var"``). The unscaled variances are :attr:`cov_re` and :attr:`vcomp`; the
        summary shows those.
        """
        tri = self.cov_re_unscaled.to_numpy()[np.tril_indices(self.k_re)]
        values = np.concatenate([self.fe_params.to_numpy(), tri, self.vcomp / self.scale])
        return pd.Series(values, index=self._param_index)

    @cached_property
    def bse(self) -> pd.Series:
        """Standard errors of :attr:`params`: the fixed effects', NaN for the variance parameters.

        statsmodels computes the variance parameters' from the Hessian of its profiled likelihood;
        they are not computed here (lme4 does not report them either).
        """
        out = pd.Series(np.nan, index=self._param_index)
        out.iloc[: len(self.bse_fe)] = self.bse_fe.to_numpy()
        return out

    @cached_property
    def bse_re(self) -> pd.Series:
        """Standard errors of the variance parameters: not computed (NaN)."""
        return self.bse.iloc[len(self.fe_params) :]

    @cached_property
    def tvalues(self) -> pd.Series:
        """Wald z statistics ``params / bse`` (NaN for the variance parameters)."""
        return self.params / self.bse

    @cached_property
    def pvalues(self) -> pd.Series:
        """Two-sided normal p-values of :attr:`tvalues`."""
        return pd.Series(2 * sps.norm.sf(np.abs(self.tvalues.to_numpy())), index=self._param_index)

    def conf_int(self, alpha: float = 0.05) -> pd.DataFrame:
        """Wald confidence intervals, columns ``0`` (lower) and ``1`` (upper), as statsmodels.

        Parameters
        ----------
        alpha : float
            ``1 - alpha`` is the coverage.

        Returns
        -------
        DataFrame
            One row per parameter; NaN for the variance parameters.
        """
        q = sps.norm.ppf(1 - alpha / 2)
        return pd.DataFrame({0: self.params - q * self.bse, 1: self.params + q * self.bse})

    def cov_params(self) -> pd.DataFrame:
        """Covariance of the estimates: the fixed effects' block; NaN for the variance parameters."""
        out = pd.DataFrame(np.nan, index=self._param_index, columns=self._param_index)
        k = len(self.fe_params)
        vcov = self.fit_result.vcov
        order = [name for name in self.model._fixed_internal if name in vcov.index]
        out.iloc[:k, :k] = vcov.loc[order, order].to_numpy()
        return out

    # -- likelihood -----------------------------------------------------------------------------
    @property
    def llf(self) -> float:
        """Log-likelihood (the restricted one for REML)."""
        return self.fit_result.loglik

    @property
    def aic(self) -> float:
        """lme4's AIC (from the REML criterion for REML fits; statsmodels gives NaN there)."""
        return self.fit_result.aic

    @property
    def bic(self) -> float:
        """lme4's BIC (statsmodels gives NaN for REML fits)."""
        return self.fit_result.bic

    # -- random effects, fitted values, prediction ----------------------------------------------
    @cached_property
    def random_effects(self) -> dict[Any, pd.Series]:
        """Conditional modes of the random effects, one Series per group.

        Keyed by the group values (sorted), each Series is indexed like statsmodels': the correlated
        effects by :attr:`MixedLM.exog_re_names` (``"Group"``, ``"Days"``), then each variance
        component as ``"<name>[<column>]"``: ``"Days[Days]"`` for a slope, ``"class[C(class)[2]]"`` for
        class 2 of a categorical component (only the classes present in the group).
        """
        fit, model = self.fit_result, self.model
        data = fit.design.data
        to_value, ordered = _group_values(data, model.group_col)
        rows_label = level_keys(data, (model.group_col,))
        modes = {f.group: fit.random_effects(f.group).to_numpy() for f in fit.structure.factors}
        index_of = {f.group: {lev: i for i, lev in enumerate(f.levels)} for f in fit.structure.factors}
        nested: list[dict[str, list[tuple[str, str]]]] = []
        for comp, f, _, _ in self._vc_place:
            per_group: dict[str, list[tuple[str, str]]] = {}
            if comp.nested:
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
            for f, k in self._re_place:
                values.append(modes[f.group][index_of[f.group][label], k])
            for (comp, f, k, term), per_group in zip(self._vc_place, nested, strict=True):
                if comp.nested:
                    for key, name in per_group.get(label, []):
                        names.append(name)
                        values.append(modes[f.group][index_of[f.group][key], k])
                else:
                    names.append(f"{comp.name}[{term}]")
                    values.append(modes[f.group][index_of[f.group][label], k])
            out[value] = pd.Series(values, index=names, dtype=float)
        return out

    @cached_property
    def random_effects_cov(self) -> dict[Any, pd.DataFrame]:
        """Conditional covariance of each group's random effects (statsmodels' ``random_effects_cov``).

        Only for models whose random effects all vary by the group (no categorical variance
        component); otherwise NotImplementedError.
        """
        if any(comp.nested for comp, *_ in self._vc_place):
            raise NotImplementedError("random_effects_cov with a categorical variance component")
        fit, model = self.fit_result, self.model
        f = fit.structure.factor(model.group_col)
        cond = fit.conditional_covariance(model.group_col)
        cols = [k for _, k in self._re_place] + [k for _, _, k, _ in self._vc_place]
        names = list(model.exog_re_names) + [f"{c.name}[{t}]" for c, _, _, t in self._vc_place]
        to_value, ordered = _group_values(fit.design.data, model.group_col)
        label_of = {value: label for label, value in to_value.items()}
        index_of = {lev: i for i, lev in enumerate(f.levels)}
        return {
            value: pd.DataFrame(
                cond[index_of[label_of[value]]][np.ix_(cols, cols)], index=names, columns=names
            )
            for value in ordered
        }

    @cached_property
    def fittedvalues(self) -> pd.Series:
        """Fitted values: fixed effects plus each row's random effects, indexed like the data."""
        return self.fit_result.fitted().rename(None)

    @cached_property
    def resid(self) -> pd.Series:
        """Residuals: response minus :attr:`fittedvalues`."""
        return self.fit_result.residuals().rename(None)

    def predict(self, exog: Any = None) -> pd.Series | np.ndarray:
        """Population-level predictions (fixed effects only), as statsmodels' ``MixedLMResults.predict``.

        Parameters
        ----------
        exog : DataFrame or array_like, optional
            New data (a DataFrame with the columns the fixed part uses, for a formula model), or a
            fixed-effects design matrix with :attr:`MixedLM.exog_names` columns. The fitted rows if
            omitted. For predictions that include the random effects use
            ``fit_result.predict(newdata)``.

        Returns
        -------
        Series or ndarray
            A Series for data frames and ``exog=None``; an array for a design matrix.
        """
        fit = self.fit_result
        beta = fit.fixed_effects["estimate"]
        if exog is None:
            return pd.Series(fit.design.X @ beta.to_numpy(), index=fit.design.rows)
        if isinstance(exog, pd.DataFrame) and self.model._from_formula:
            try:
                X = fit.design.fixed_design(exog)
            except Exception as err:  # formulae raises many kinds; all mean "cannot evaluate on exog"
                raise DataError(f"cannot evaluate the fixed part on exog: {err}") from err
            return pd.Series(X @ beta.to_numpy(), index=exog.index)
        coef = self.fe_params.reindex(self.model.exog_names).fillna(0.0).to_numpy()
        return np.asarray(exog, dtype=float) @ coef

    # -- summary --------------------------------------------------------------------------------
    def summary(
        self,
        yname: str | None = None,
        xname_fe: list[str] | None = None,
        xname_re: list[str] | None = None,
        title: str | None = None,
        alpha: float = 0.05,
    ) -> MixedLMSummary:
        """Summarise the fit in statsmodels' layout (``print(mdf.summary())``).

        Parameters
        ----------
        yname : str, optional
            Name of the response (default: the model's).
        xname_fe, xname_re : list of str, optional
            Names to print for the fixed effects and for the variance parameters.
        title : str, optional
            Replaces "Mixed Linear Model Regression Results".
        alpha : float
            The fixed effects' confidence intervals cover ``1 - alpha``.

        Returns
        -------
        MixedLMSummary
            ``str()`` of it is the table; ``tables`` holds the two tables as data frames.
        """
        names = list(self.params.index)
        k_fe = len(self.fe_params)
        if xname_fe is not None:
            if len(xname_fe) != k_fe:
                raise ValueError(f"xname_fe should be a list of length {k_fe}")
            names[:k_fe] = list(xname_fe)
        if xname_re is not None:
            if len(xname_re) != len(names) - k_fe:
                raise ValueError(f"xname_re should be a list of length {len(names) - k_fe}")
            names[k_fe:] = list(xname_re)
        sizes = pd.Series(self.model._group_labels).value_counts()
        info = {
            "Model:": "MixedLM",
            "No. Observations:": str(self.nobs),
            "No. Groups:": str(self.ngroups),
            "Min. group size:": f"{sizes.min():.0f}",
            "Max. group size:": f"{sizes.max():.0f}",
            "Mean group size:": f"{sizes.mean():.1f}",
            "Dependent Variable:": yname if yname is not None else self.model.endog_names,
            "Method:": self.method,
            "Scale:": self.scale,
            "Log-Likelihood:": self.llf,
            "Converged:": "Yes" if self.converged else "No",
        }
        q = sps.norm.ppf(1 - alpha / 2)
        table = np.full((len(names), 6), np.nan)
        fe, se = self.fe_params.to_numpy(), self.bse_fe.to_numpy()
        z = fe / se
        table[:k_fe] = np.column_stack([fe, se, z, 2 * sps.norm.sf(np.abs(z)), fe - q * se, fe + q * se])
        cov = self.cov_re.to_numpy()
        table[k_fe:, 0] = np.concatenate([cov[np.tril_indices(self.k_re)], self.vcomp])
        columns = ["Coef.", "Std.Err.", "z", "P>|z|", f"[{alpha / 2}", f"{1 - alpha / 2}]"]
        params = pd.DataFrame(
            [[f"{v:.3f}" if np.isfinite(v) else "" for v in row] for row in table],
            index=names,
            columns=columns,
        )
        return MixedLMSummary(info, params, title or "Mixed Linear Model Regression Results")

    def __repr__(self) -> str:
        return f"<bayesmlm.MixedLMResults {self.method}: {self.model.formula}; llf {self.llf:.4f}>"


# -- summary printing -------------------------------------------------------------------------------
def _pad(text: str, width: int, align: str) -> str:
    return text.ljust(width) if align == "l" else text.rjust(width) if align == "r" else text.center(width)


def _table_lines(
    rows: list[list[str]], headers: list[str] | None, stubs: list[str] | None, align: str, colsep: str
) -> list[str]:
    """Draw a text table as statsmodels' SimpleTable does: rule, header, rule, rows."""
    body = [list(r) for r in rows]
    kinds = ["data"] * len(body)
    if headers is not None:
        body.insert(0, list(headers))
        kinds.insert(0, "header")
    if stubs is not None:
        stub = iter(stubs)
        for row, kind in zip(body, kinds, strict=True):
            row.insert(0, "" if kind == "header" else next(stub))
    widths = [max(len(row[j]) for row in body) for j in range(len(body[0]))]
    lines = []
    for row, kind in zip(body, kinds, strict=True):
        cells = []
        for j, (cell, width) in enumerate(zip(row, widths, strict=True)):
            cell_align = "c" if kind == "header" else "l" if stubs is not None and j == 0 else align
            cells.append(_pad(cell, width, cell_align))
        lines.append(colsep.join(cells))
        if kind == "header":
            lines.append("-" * len(lines[-1]))
    return ["-" * len(lines[-1]), *lines]


class MixedLMSummary:
    """The printable summary of a :class:`MixedLMResults`, laid out as statsmodels' ``summary2``.

    Attributes
    ----------
    tables : list of DataFrame
        The model information (four columns: label, value, label, value) and the parameter table
        (formatted strings).
    title : str
    """

    def __init__(self, info: dict[str, Any], params: pd.DataFrame, title: str):
        def fmt(value: Any) -> str:
            return (f"{value:.4f}" if isinstance(value, float) else str(value)).strip()

        pairs = [[fmt(k), fmt(v)] for k, v in info.items()]
        if len(pairs) % 2:
            pairs.append(["", ""])
        half = len(pairs) // 2
        grid = [a + b for a, b in zip(pairs[:half], pairs[half:], strict=True)]
        self.tables = [pd.DataFrame(grid), params]
        self.title = title

    def _layout(self, pads: list[int] | None = None, index_pads: list[int] | None = None) -> list[list[str]]:
        info, params = self.tables
        pads = pads or [0, 0]
        index_pads = index_pads or [0, 0]
        first = [list(map(str, row)) for row in info.to_numpy()]
        for row in first:
            row[0] += " " * index_pads[0]
        stubs = [str(s) + " " * index_pads[1] for s in params.index]
        rows = [list(map(str, row)) for row in params.to_numpy()]
        return [
            _table_lines(first, None, None, "l", " " * (pads[0] + 1)),
            _table_lines(rows, list(params.columns), stubs, "r", " " * (pads[1] + 1)),
        ]

    def as_text(self) -> str:
        """Return the summary as text (what ``print`` shows)."""
        lengths = [len(lines[0]) for lines in self._layout()]
        widest = max(lengths)
        pads, index_pads = [], []
        for table, length in zip(self.tables, lengths, strict=True):
            nsep = max(table.shape[1] - 1, 1)
            pad = (widest - length) // nsep
            pads.append(pad)
            index_pads.append(widest - length - nsep * pad)
        lines = [line for table in self._layout(pads, index_pads) for line in table]
        lines[0] = "=" * widest
        lines.append("=" * widest)
        title = self.title
        if len(title) < widest:
            title = " " * int(widest / 2 - len(title) / 2) + title
        return "\n".join([title, *lines, ""])

    def __str__(self) -> str:
        return self.as_text()

    def __repr__(self) -> str:
        return self.as_text()

    def _repr_html_(self) -> str:
        text = self.as_text().replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
        return f"<pre>{text}</pre>"
