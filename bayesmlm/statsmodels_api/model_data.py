"""The statsmodels entry point, model plumbing: ``model.data`` and the arrays, as statsmodels has them.

Tools written around statsmodels read a model's ``data`` (``xnames``, ``ynames``, ``param_names``,
``exog_re_names``, ``exog_re_names_full``, ``frame``, ``row_labels``) and its arrays (``endog``,
``exog``, ``exog_re``, ``groups``, ``group_labels``, ``row_indices``). :class:`MixedLMData` and
:class:`ModelArrays` give them from the lme4 design that bayesmlm fits, for the rows actually used.
"""

from __future__ import annotations

from functools import cached_property
from typing import Any

import numpy as np
import pandas as pd

from bayesmlm.design.levels import level_keys
from bayesmlm.exceptions import ArgumentError
from bayesmlm.reml.marginal import gls_fixed_effects, profiled_loglike
from bayesmlm.statsmodels_api.params import MixedLMParams
from bayesmlm.statsmodels_api.translate import group_values
from bayesmlm.statsmodels_api.vc_layout import VCSpec, vc_layout

__all__ = ["MixedLMData", "ModelArrays"]


class MixedLMData:
    """statsmodels' ``model.data`` of a :class:`~bayesmlm.MixedLM`: names and the data used.

    Attributes
    ----------
    xnames : list of str
        The fixed effects' names (``model.exog_names``).
    ynames : str
        The response's name (``model.endog_names``).
    param_names : list of str
        All parameters' names, as ``params`` is labelled.
    exog_re_names : list of str
        The correlated random effects' names (``cov_re``'s labels).
    exog_re_names_full : list of str
        Their covariance parameters' names (``bse_re``'s labels without variance components).
    endog, exog : ndarray
        The response and the fixed-effects design of the rows used.
    orig_endog, orig_exog : DataFrame, Series or ndarray
        A formula model's response and design as data frames; for the array interface the objects
        given (the arrays of the rows used if rows were dropped).
    row_labels : Index or None
        The used rows' index labels (None for a model built from arrays, as statsmodels).
    frame : DataFrame or None
        A formula model's data (None for the array interface, where statsmodels has no frame).

    Examples
    --------
    >>> import bayesmlm as bm
    >>> data = bm.load_dataset("sleepstudy")
    >>> md = bm.mixedlm("Reaction ~ Days", data, groups="Subject", re_formula="~Days")
    >>> md.data.xnames, md.data.ynames, md.data.exog_re_names
    (['Intercept', 'Days'], 'Reaction', ['Subject', 'Days'])
    >>> md.data.exog_re_names_full
    ['Subject Var', 'Subject x Days Cov', 'Days Var']
    """

    def __init__(self, model: Any):
        self.xnames = list(model.exog_names)
        self.ynames = str(model.endog_names)
        self.param_names = list(model.param_names)
        self.exog_re_names = list(model.exog_re_names)
        self.exog_re_names_full = list(model.exog_re_names_full)
        self.endog = model.endog
        self.exog = model.exog
        rows = model.bayesmlm_model.design.rows
        self.row_labels = rows if model.uses_pandas else None
        self.frame = model._frame.loc[rows] if model._from_formula else None
        given = getattr(model, "_given", None)  # (endog, exog) given to MixedLM(...)
        if model._from_formula:  # statsmodels: one-column frames of the formula's matrices
            self.orig_endog = pd.DataFrame({self.ynames: self.endog}, index=rows)
            self.orig_exog = pd.DataFrame(self.exog, index=rows, columns=self.xnames)
        elif given is not None and len(rows) == len(model._frame):
            self.orig_endog, self.orig_exog = given
        else:  # rows were dropped: the arrays of the rows used
            self.orig_endog, self.orig_exog = self.endog, self.exog

    def __repr__(self) -> str:
        return f"<bayesmlm MixedLMData: {self.ynames} ~ {self.xnames}; {len(self.endog)} rows>"


class ModelArrays:
    """statsmodels' arrays of a ``MixedLM`` (a mixin over the model's lme4 design)."""

    bayesmlm_model: Any
    _fixed_internal: list[str]
    _re_internal: list[str]
    _default_blocks: tuple[str, ...]
    k_fe: int
    k_re: int
    k_re2: int
    nobs: int
    vc_names: list[str]
    _model_for: Any

    @cached_property
    def _group_labels(self) -> np.ndarray:
        """Each used row's group label (bayesmlm's level label)."""
        return level_keys(self.bayesmlm_model.design.data, (self.group_col,))

    @cached_property
    def n_groups(self) -> int:
        """Number of groups."""
        return len(set(self._group_labels))

    @property
    def group_labels(self) -> list:
        """The distinct groups, sorted, as statsmodels lists them."""
        return group_values(self.bayesmlm_model.design.data, self.group_col)[1]

    @cached_property
    def endog(self) -> np.ndarray:
        """The response of the rows used, shape ``(nobs,)``."""
        return np.array(self.bayesmlm_model.design.y, dtype=float)

    @cached_property
    def exog(self) -> np.ndarray:
        """The fixed-effects design, shape ``(nobs, k_fe)``, columns in ``exog_names`` order.

        A column the design dropped as aliased (a linear combination of others) is absent here,
        while statsmodels keeps it.
        """
        design = self.bayesmlm_model.design
        position = {name: j for j, name in enumerate(design.fixed_names)}
        cols = [position[name] for name in self._fixed_internal if name in position]
        return np.array(design.X[:, cols], dtype=float)

    @cached_property
    def exog_re(self) -> np.ndarray:
        """The correlated random effects' design, shape ``(nobs, k_re)`` (``(nobs, 0)`` for none)."""
        design = self.bayesmlm_model.design
        if not self._re_internal:
            return np.zeros((design.n, 0))
        return np.array(design.blocks[0].Z, dtype=float)

    @cached_property
    def groups(self) -> np.ndarray | pd.Series:
        """The group of each row used: the Series given to ``MixedLM(...)``, else an ndarray."""
        design = self.bayesmlm_model.design
        if isinstance(self._groups_given, pd.Series):
            return self._groups_given.iloc[self._frame.index.get_indexer(design.rows)]
        return np.asarray(design.data[self.group_col])

    @cached_property
    def row_indices(self) -> dict[Any, list[int]]:
        """Each group value (as in :attr:`group_labels`) -> the positions of its rows, as statsmodels."""
        data = self.bayesmlm_model.design.data
        to_value, ordered = group_values(data, self.group_col)
        out: dict[Any, list[int]] = {value: [] for value in ordered}
        for i, label in enumerate(level_keys(data, (self.group_col,))):
            out[to_value[label]].append(i)
        return out

    def group_list(self, array: Any) -> list[np.ndarray] | None:
        """Split ``array`` (one value or row per observation used) into one array per group.

        Parameters
        ----------
        array : array_like or None
            ``nobs`` values, or an ``(nobs, k)`` matrix.

        Returns
        -------
        list of ndarray or None
            One per group, in :attr:`group_labels` order (None for None, as statsmodels).

        Examples
        --------
        >>> import bayesmlm as bm
        >>> data = bm.load_dataset("sleepstudy")
        >>> md = bm.mixedlm("Reaction ~ Days", data, groups="Subject")
        >>> [a.shape for a in md.group_list(md.exog)][:2]
        [(10, 2), (10, 2)]
        """
        if array is None:
            return None
        values = np.asarray(array)
        return [np.array(values[rows]) for rows in self.row_indices.values()]

    @property
    def endog_li(self) -> list[np.ndarray]:
        """:attr:`endog` split by group (statsmodels' ``endog_li``)."""
        return self.group_list(self.endog)

    @property
    def exog_li(self) -> list[np.ndarray]:
        """:attr:`exog` split by group."""
        return self.group_list(self.exog)

    @property
    def exog_re_li(self) -> list[np.ndarray]:
        """:attr:`exog_re` split by group."""
        return self.group_list(self.exog_re)

    @property
    def exog_re2_li(self) -> list[np.ndarray] | None:
        """Each group's ``exog_re.T @ exog_re``, as statsmodels precomputes it (None without ``exog_re``)."""
        li = self.exog_re_li
        return None if li is None else [z.T @ z for z in li]

    @property
    def k_params(self) -> int:
        """``k_fe + k_re2``, as statsmodels counts it (without the ``k_vc`` variance components)."""
        return self.k_fe + self.k_re2

    @property
    def n_totobs(self) -> int:
        """Number of observations used (statsmodels' ``n_totobs``, the same as ``nobs``)."""
        return self.nobs

    @property
    def k_constant(self) -> int:
        """1 if :attr:`exog` has a constant non-zero column, else 0 (as statsmodels)."""
        X = self.exog
        return int(bool(len(X)) and bool(np.any((np.ptp(X, axis=0) == 0) & (X[0] != 0))))

    # -- the likelihood at given parameters -----------------------------------------------------
    reml: bool = True  # statsmodels' model.reml: the kind of the last fit, REML until then
    use_sqrt: bool = True
    fe_pen: Any = None  # statsmodels' penalties of the last fit (loglike and score subtract them)
    cov_pen: Any = None
    re_pen: Any = None  # statsmodels sets it to None and never uses it

    @cached_property
    def _vc_layout(self) -> list[tuple[list[np.ndarray], list[list[str]]]]:
        """Each variance component's matrix and column names per group (see :func:`vc_layout`)."""
        return vc_layout(self)

    @cached_property
    def exog_vc(self) -> VCSpec:
        """The variance components as statsmodels' ``VCSpec`` components: ``names``, ``colnames``, ``mats``.

        ``mats[k][i]`` is component ``k``'s design matrix for the ``i``-th group of
        :attr:`group_labels` (ndarrays, whatever was given), ``colnames[k][i]`` its column names
        (lists of str): the matrices statsmodels builds from ``vc_formula`` or keeps from ``exog_vc``.
        ``VCSpec([], [], [])`` without variance components, as statsmodels.
        """
        layout = self._vc_layout
        mats = [[np.array(m) for m in mats] for mats, _ in layout]
        return VCSpec(list(self.vc_names), [[list(c) for c in cols] for _, cols in layout], mats)

    @cached_property
    def _groups_split(self) -> tuple[list[np.ndarray], ...]:
        vc = [mats for mats, _ in self._vc_layout]
        W = [[mats[i] for mats in vc] for i in range(len(self.row_indices))]
        return (*(self.group_list(a) for a in (self.endog, self.exog, self.exog_re)), W)

    def _by_group(self) -> tuple[list, ...]:
        """Per group: response, fixed design, correlated design, the components' matrices (a list each)."""
        return self._groups_split

    def _covariances(self, params: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """(cov_re, vcomp, fe_params or None) of a MixedLMParams-like object or a packed vector."""
        if hasattr(params, "cov_re"):
            cov = np.asarray(params.cov_re, dtype=float).reshape(self.k_re, self.k_re)
            vcomp = np.asarray(getattr(params, "vcomp", np.zeros(0)), dtype=float).reshape(-1)
            fe = getattr(params, "fe_params", None)
            return cov, vcomp, None if fe is None else np.asarray(fe, dtype=float).reshape(-1)
        packed = np.asarray(params, dtype=float).reshape(-1)
        if len(packed) != self.k_re2 + len(self.vc_names):
            raise ArgumentError(
                f"params has {len(packed)} values; a packed vector here holds the {self.k_re2} covariance "
                f"parameters and {len(self.vc_names)} variance components (or pass a MixedLMParams)"
            )
        unpacked = MixedLMParams.from_packed(packed, self.k_fe, self.k_re, self.use_sqrt, has_fe=False)
        return unpacked.cov_re, unpacked.vcomp, None

    def get_fe_params(self, cov_re: Any, vcomp: Any, tol: float = 1e-10) -> tuple[np.ndarray, bool]:
        """GLS estimates of the fixed effects at ``cov_re`` and ``vcomp`` (relative to ``scale``).

        Parameters
        ----------
        cov_re : array_like
            ``(k_re, k_re)`` covariance of the random effects divided by the scale.
        vcomp : array_like
            Variance components divided by the scale.
        tol : float
            Accepted for statsmodels' signature.

        Returns
        -------
        fe_params : ndarray
        singular : bool
            Always False (the design's aliased columns were dropped before).

        Examples
        --------
        >>> import bayesmlm as bm
        >>> md = bm.mixedlm("Reaction ~ Days", bm.load_dataset("sleepstudy"), groups="Subject")
        >>> fit = md.fit()
        >>> fe, _ = md.get_fe_params(fit.cov_re_unscaled.to_numpy(), fit.vcomp)
        >>> fe.round(4)
        array([251.4051,  10.4673])
        """
        y, X, Z, W = self._by_group()
        psi = np.asarray(cov_re, dtype=float).reshape(self.k_re, self.k_re)
        return gls_fixed_effects(y, X, Z, W, psi, np.asarray(vcomp, dtype=float).reshape(-1)), False

    def loglike(self, params: Any, profile_fe: bool = True) -> float:
        """Return the (restricted, when :attr:`reml`) log-likelihood at ``params``, as statsmodels.

        The scale is always profiled out; with ``profile_fe`` the fixed effects are their GLS estimates.

        Parameters
        ----------
        params : MixedLMParams-like or array_like
            An object with ``cov_re`` (and ``vcomp``, ``fe_params``), all relative to the scale,
            such as statsmodels' ``MixedLMParams``; or statsmodels' packed
            vector of the covariance parameters only (the lower triangle of ``cov_re``'s Cholesky
            factor and the square roots of ``vcomp`` when ``use_sqrt``).
        profile_fe : bool
            Replace ``params``' fixed effects by their GLS estimates.

        Returns
        -------
        float
            Minus the model's penalties (``cov_pen.func(cov_re, its inverse)``, ``fe_pen.func(fe_params)``)
            after a penalised fit, as statsmodels; unpenalised otherwise.

        Examples
        --------
        >>> import bayesmlm as bm
        >>> md = bm.mixedlm("Reaction ~ Days", bm.load_dataset("sleepstudy"), groups="Subject")
        >>> fit = md.fit()
        >>> abs(md.loglike(np.sqrt(fit.params[["Subject Var"]])) - fit.llf) < 1e-8  # at the optimum
        True
        """
        value, cov, fe = self._loglike_at(params, profile_fe)
        if self.cov_pen is not None and self.k_re > 0:
            try:
                inv = np.linalg.inv(cov)
            except np.linalg.LinAlgError:
                inv = np.linalg.pinv(cov)
            value -= float(self.cov_pen.func(cov, inv))
        if self.fe_pen is not None:
            value -= float(self.fe_pen.func(fe))
        return float(value)

    def _loglike(self, params: Any, profile_fe: bool = True) -> float:
        """:meth:`loglike` without the model's penalties."""
        return self._loglike_at(params, profile_fe)[0]

    def _loglike_at(self, params: Any, profile_fe: bool) -> tuple[float, np.ndarray, np.ndarray]:
        cov, vcomp, fe = self._covariances(params)
        y, X, Z, W = self._by_group()
        if profile_fe or fe is None:
            fe = gls_fixed_effects(y, X, Z, W, cov, vcomp)
        return profiled_loglike(y, X, Z, W, cov, vcomp, fe, self.reml), cov, fe

    def predict(self, params: Any, exog: Any = None) -> np.ndarray:
        """Population-level predictions ``exog @ fe_params``, as statsmodels' ``MixedLM.predict``.

        Parameters
        ----------
        params : MixedLMParams-like or array_like
            An object with ``fe_params``, or a vector whose first ``k_fe`` values are the fixed effects
            (``result.params`` works).
        exog : array_like, optional
            A fixed-effects design with ``k_fe`` columns; the model's :attr:`exog` if omitted.

        Returns
        -------
        ndarray

        Examples
        --------
        >>> import bayesmlm as bm
        >>> md = bm.mixedlm("Reaction ~ Days", bm.load_dataset("sleepstudy"), groups="Subject")
        >>> md.predict(md.fit().params, exog=[[1.0, 2.0]]).round(3)
        array([272.34])
        """
        fe = getattr(params, "fe_params", None)
        fe = np.asarray(params if fe is None else fe, dtype=float).reshape(-1)[: self.k_fe]
        X = self.exog if exog is None else np.atleast_2d(np.asarray(exog, dtype=float))
        if len(fe) != self.k_fe or X.shape[1] != self.k_fe:
            raise ArgumentError(f"predict needs {self.k_fe} fixed effects and exog with {self.k_fe} columns")
        return X @ fe
