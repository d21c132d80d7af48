"""The statsmodels entry point, the model: :class:`MixedLM` and :func:`mixedlm`, fitted by bayesmlm."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import pandas as pd

from bayesmlm.exceptions import ArgumentError
from bayesmlm.model import Model
from bayesmlm.spec.formula import ModelSpec
from bayesmlm.statsmodels_api.free import blocks_for_free
from bayesmlm.statsmodels_api.likelihood import LikelihoodDerivatives
from bayesmlm.statsmodels_api.model_data import MixedLMData, ModelArrays
from bayesmlm.statsmodels_api.penalised import check_penalties, penalised_fit
from bayesmlm.statsmodels_api.regularized import Regularized
from bayesmlm.statsmodels_api.results import MixedLMResults
from bayesmlm.statsmodels_api.translate import (
    _MISSING,
    _NEEDS_HESSIAN,
    _OPTIMIZER_KWARGS,
    OPTIMIZERS,
    _block_expr,
    _Component,
    array_inputs,
    formula_inputs,
)
from bayesmlm.statsmodels_api.variance_components import build_model, fit_tied, with_exog_vc
from bayesmlm.statsmodels_api.wrap import uses_pandas

if TYPE_CHECKING:
    from bayesmlm.bayes.fit import Fit

__all__ = ["MixedLM"]


class MixedLM(ModelArrays, LikelihoodDerivatives, Regularized):
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
    exog_vc : dict, optional
        statsmodels' variance components, ``{name: {group: matrix of the group's rows}}``: any number
        of columns, independent random effects with one variance per name (see
        :mod:`bayesmlm.statsmodels_api.variance_components`); no random intercept without ``exog_re``.
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
    data : MixedLMData
        statsmodels' ``model.data``: ``xnames``, ``ynames``, ``param_names``, ``exog_re_names``,
        ``exog_re_names_full``, ``endog``, ``exog``, ``row_labels`` and a formula model's ``frame``.
    endog, exog, exog_re : ndarray
        The response and the two design matrices of the rows used (see :class:`ModelArrays`).
    groups : ndarray or Series
        Each used row's group; ``group_labels`` the distinct groups sorted, ``row_indices`` each
        group's row positions.
    uses_pandas : bool
        Whether results are pandas objects (a formula, or pandas ``endog``/``exog``, as in statsmodels)
        or ndarrays (arrays in).
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
        inputs = with_exog_vc(array_inputs(endog, exog, groups, exog_re), exog_vc, exog_re is not None)
        self._setup(missing=missing, **inputs)
        self.uses_pandas = uses_pandas(endog, exog)
        self._groups_given, self._given, self.use_sqrt = groups, (endog, exog), bool(use_sqrt)

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
            ``eval_env`` or ``extra_namespace``: a dict ``{"name": function}`` of your own functions
            the formulas may call (statsmodels' integer frame depth is refused: formulas see only
            bayesmlm's whitelist and what you pass). ``use_sqrt`` is accepted and ignored.

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
        self = cls.__new__(cls)
        self._setup(
            missing=missing,
            **formula_inputs(formula, data, groups, re_formula, vc_formula, subset, kwargs),
        )
        self.uses_pandas, self._groups_given, self.use_sqrt = True, None, bool(kwargs.get("use_sqrt", True))
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
        namespace: dict | None = None,
    ) -> None:
        if missing not in _MISSING:
            raise ArgumentError(f"missing must be 'none', 'drop' or 'raise', not {missing!r}")
        if not re_intercept and not re_terms and not components:
            raise ArgumentError(
                "the model has no random effects: re_formula='0' needs a vc_formula "
                "(for a model without random effects use ordinary least squares)"
            )
        self._frame, self._namespace = data, namespace
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
        self._ties: dict[tuple[str, ...], tuple] = {}
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
        self.nobs = design.n  # the group labels and their count are computed on first use

    @property
    def data(self) -> MixedLMData:
        """The statsmodels ``model.data`` (names and the rows used); see :class:`MixedLMData`."""
        return self.__dict__.get("_removed_data") or MixedLMData(self)

    # -- building the lme4 model ----------------------------------------------------------------------
    def _model_for(self, re_blocks: tuple[str, ...]) -> tuple[Model, tuple]:
        """Return the bayesmlm Model (and each random term's role) for these correlated blocks."""
        if re_blocks not in self._models:
            model, roles, ties = build_model(
                self._fixed_formula,
                self._frame,
                self.group_col,
                re_blocks,
                self._components,
                _MISSING[self.missing],
                self._namespace,
            )
            self._models[re_blocks] = (model, roles)
            self._ties[re_blocks] = ties
        return self._models[re_blocks]

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
        fe_pen, cov_pen : optional
            statsmodels' penalties (``L2``, ``PseudoHuber``; ``PSD`` on ``cov_re / scale``), or any objects
            with ``func`` and ``deriv``: see :mod:`bayesmlm.statsmodels_api.penalised`.
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
                raise ArgumentError(f"method must be a name or a list of names, not {name!r}")
            if name.lower() in _NEEDS_HESSIAN:
                raise ArgumentError(f"method {name} not available for MixedLM")
            if name.lower() not in OPTIMIZERS:
                raise ArgumentError(
                    f"unknown optimisation method {name!r}; statsmodels' are {sorted(OPTIMIZERS)}"
                )
        pens = check_penalties(fe_pen, cov_pen, bayes)
        self.fe_pen, self.cov_pen = pens  # as statsmodels: loglike and score then subtract them
        if not do_cg:
            raise NotImplementedError("do_cg=False (results at the starting values) is not supported")
        blocks = blocks_for_free(self, free, start_params)
        model, roles = self._model_for(blocks)
        if bayes and self._ties[blocks]:
            raise NotImplementedError(
                "bayes=True with a variance component of several columns sharing one variance: fit it "
                "by REML/ML, or give each column its own component ({'a': '0 + a', 'b': '0 + b'})"
            )
        if bayes:
            return model.fit(**{k: v for k, v in kwargs.items() if k not in _OPTIMIZER_KWARGS})
        unknown = sorted(set(kwargs) - _OPTIMIZER_KWARGS)
        if unknown:
            raise TypeError(
                f"MixedLM.fit() got unsupported argument(s) {unknown}; sampler options need bayes=True"
            )
        fit, self.reml = fit_tied(model, bool(reml), self._ties[blocks]), bool(reml)
        return penalised_fit(self, MixedLMResults(self, fit, roles, free), *pens)

    def __repr__(self) -> str:
        return f"<bayesmlm.MixedLM {self.formula}; {self.nobs} observations, {self.n_groups} groups>"
