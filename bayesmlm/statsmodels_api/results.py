"""The statsmodels entry point, the results: :class:`MixedLMResults`, statsmodels' attribute names."""

from __future__ import annotations

from functools import cached_property
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats as sps

from bayesmlm.exceptions import DataError
from bayesmlm.reml.fit import LikelihoodFit
from bayesmlm.statsmodels_api.contrasts import Contrasts
from bayesmlm.statsmodels_api.free import free_pattern
from bayesmlm.statsmodels_api.group_effects import random_effects, random_effects_cov
from bayesmlm.statsmodels_api.params import MixedLMParams
from bayesmlm.statsmodels_api.profile import profile_re
from bayesmlm.statsmodels_api.removal import remove_data
from bayesmlm.statsmodels_api.summary import MixedLMSummary, results_summary
from bayesmlm.statsmodels_api.wrap import TypedOutputs

__all__ = ["MixedLMResults"]


class MixedLMResults(TypedOutputs, Contrasts):
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
    fe_params : Series or ndarray
        Fixed-effect estimates. Like every estimate here (``params``, ``bse``, ``cov_re``,
        ``cov_params()``...), a labelled pandas object for a model built from a formula or from
        pandas ``endog``/``exog``, an ndarray for one built from arrays (as statsmodels).
    bse_fe : Series or ndarray
        Their standard errors.
    cov_re : DataFrame or ndarray
        Covariance matrix of the correlated random effects (``re_formula``), in the data's units,
        indexed by statsmodels' names (the group name for the intercept, then the slopes).
    cov_re_unscaled : DataFrame or ndarray
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

    def __init__(self, model, fit: LikelihoodFit, roles: tuple, free: Any = None):
        self.model = model
        self.fit_result = fit
        self.method = fit.method
        self.reml = fit.method == "REML"
        self.freepat, self.hist, self.cov_pen = free, None, None  # cov_pen: set by a penalised fit
        self.k_fe, self.k_re, self.k_re2, self.k_vc = model.k_fe, model.k_re, model.k_re2, model.k_vc
        self.scale = fit.sigma**2
        self.converged = fit.converged
        self.nobs = fit.nobs
        self.k_constant = model.k_constant
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
        covs = fit.estimates.covariances
        cov = np.array(
            [
                [covs[fi.group][i, j] if fi is fj else 0.0 for fj, j in self._re_place]
                for fi, i in self._re_place
            ]
        )
        self._cov_re_values = cov.reshape(self.k_re, self.k_re)
        vcomp: dict[int, float] = {}  # a component of several tied blocks has one variance
        for role, f, k, _ in self._vc_place:
            vcomp.setdefault(id(role), covs[f.group][k, k])
        self.vcomp = np.array(list(vcomp.values()))
        # the estimates and lme4's vcov directly (fit.fixed_effects builds a whole Wald table);
        # the labelled pandas objects are made on first use
        position = {name: j for j, name in enumerate(fit.design.fixed_names)}
        order = [position[k] for k in model._fixed_internal if k in position]
        self._fe_names = [model._fixed_display.get(k, k) for k in model._fixed_internal if k in position]
        self._fe_values = np.asarray(fit.estimates.beta, dtype=float)[order]
        self._vcov_fe = np.asarray(fit.estimates.vcov, dtype=float)[np.ix_(order, order)]

    @property
    def ngroups(self) -> int:
        """Number of groups (``n_groups`` is the same)."""
        return self.model.n_groups

    n_groups = ngroups

    @cached_property
    def _cov_re(self) -> pd.DataFrame:
        names = self.model.exog_re_names
        return pd.DataFrame(self._cov_re_values, index=names, columns=names)

    @cached_property
    def _fe_params(self) -> pd.Series:
        return pd.Series(self._fe_values, index=pd.Index(self._fe_names))

    @cached_property
    def _bse_fe(self) -> pd.Series:
        return pd.Series(np.sqrt(np.diag(self._vcov_fe)), index=pd.Index(self._fe_names))

    # -- parameters -----------------------------------------------------------------------------
    @cached_property
    def _param_index(self) -> pd.Index:
        names = list(self._fe_params.index)
        return pd.Index(names + self.model.param_names[self.model.k_fe :])

    @cached_property
    def _params(self) -> pd.Series:
        tri = self._cov_re_values[np.tril_indices(self.k_re)] / self.scale
        values = np.concatenate([self._fe_params.to_numpy(), tri, self.vcomp / self.scale])
        return pd.Series(values, index=self._param_index)

    @cached_property
    def _pcov(self) -> np.ndarray:
        """Statsmodels' ``cov_params()``: the inverse of minus the Hessian at the optimum (free ones)."""
        k = len(self._params)
        try:
            hess, _ = self.model.hessian(self.params_object)
        except NotImplementedError:  # a categorical variance component: no per-group likelihood here
            out = np.full((k, k), np.nan)
        else:
            free = np.flatnonzero(free_pattern(self.freepat, self.k_fe, self.k_re, self.k_vc))
            out = np.zeros((k, k))
            try:
                out[np.ix_(free, free)] = np.linalg.inv(-hess[np.ix_(free, free)])
            except np.linalg.LinAlgError:  # a singular Hessian (some boundary fits)
                out = np.full((k, k), np.nan)
        kf = len(self._fe_params)  # the fixed effects' block: lme4's vcov (equal at the optimum)
        out[:kf, :kf] = self._vcov_fe
        return out

    @cached_property
    def _bse(self) -> pd.Series:
        with np.errstate(invalid="ignore"):  # NaN where the Hessian is not negative definite (a boundary)
            return pd.Series(np.sqrt(np.diag(self._pcov)), index=self._param_index)

    @cached_property
    def _bse_re(self) -> pd.Series:
        """Statsmodels' ``bse_re``: ``sqrt(scale * diag(cov_params()))`` of the variance parameters."""
        k = len(self._fe_params)
        with np.errstate(invalid="ignore"):
            return pd.Series(np.sqrt(self.scale * np.diag(self._pcov)[k:]), index=self._param_index[k:])

    @cached_property
    def _pvalues(self) -> pd.Series:
        z = (self._params / self._bse).to_numpy()
        return pd.Series(2 * sps.norm.sf(np.abs(z)), index=self._param_index)

    def _conf_int(self, alpha: float = 0.05) -> pd.DataFrame:
        q = sps.norm.ppf(1 - alpha / 2)
        return pd.DataFrame({0: self._params - q * self._bse, 1: self._params + q * self._bse})

    @property
    def normalized_cov_params(self) -> pd.DataFrame | np.ndarray:
        """``cov_params() / scale``, typed like :meth:`cov_params` (as statsmodels wraps it)."""
        return self._typed(self._cov_params() / self.scale)

    @property
    def use_sqrt(self) -> bool:
        """The model's ``use_sqrt`` (how packed vectors are read)."""
        return self.model.use_sqrt

    def _cov_params(self) -> pd.DataFrame:
        return pd.DataFrame(self._pcov.copy(), index=self._param_index, columns=self._param_index)

    @cached_property
    def params_object(self) -> MixedLMParams:
        """The estimates as a :class:`MixedLMParams` (``cov_re`` and ``vcomp`` relative to the scale)."""
        return MixedLMParams.from_components(
            self._fe_values, self._cov_re_values / self.scale, vcomp=self.vcomp / self.scale
        )

    # -- likelihood -----------------------------------------------------------------------------
    def profile_re(
        self,
        re_ix: int | str,
        vtype: str,
        num_low: int = 5,
        dist_low: float = 1.0,
        num_high: int = 5,
        dist_high: float = 1.0,
    ) -> np.ndarray:
        """Profile likelihood of one variance parameter, as statsmodels' ``profile_re``.

        See :func:`bayesmlm.statsmodels_api.profile.profile_re` (``re_ix`` a position in ``cov_re``
        for ``vtype="re"``, a component's name for ``"vc"``); returns the ``(k, 2)`` array of the
        variance held and the log-likelihood. statsmodels' ``**fit_kwargs`` are not taken: the
        constrained maximisations use the analytic gradient.
        """
        return profile_re(self, re_ix, vtype, num_low, dist_low, num_high, dist_high)

    @property
    def llf(self) -> float:
        """Log-likelihood (the restricted one for REML; minus the penalties for a penalised fit)."""
        return self.__dict__.get("_llf", self.fit_result.loglik)

    @property
    def df_modelwc(self) -> int:
        """Statsmodels' parameter count, ``params.size`` (:attr:`aic` counts the scale too, as lme4)."""
        return len(self._params)

    @property
    def aic(self) -> float:
        """lme4's AIC, ``-2 llf + 2 k`` (from the REML criterion for REML fits; statsmodels gives NaN there).

        ``k`` counts the fixed effects, the free covariance parameters and the scale (statsmodels'
        ``df``); a penalised or regularised fit's comes from its :attr:`llf`, as statsmodels'.
        """
        if "_llf" not in self.__dict__:
            return self.fit_result.aic
        return -2 * self.llf + 2 * self.fit_result.n_parameters

    @property
    def bic(self) -> float:
        """lme4's BIC, ``-2 llf + log(nobs) k`` (statsmodels gives NaN for REML fits); see :attr:`aic`."""
        if "_llf" not in self.__dict__:
            return self.fit_result.bic
        return -2 * self.llf + np.log(self.nobs) * self.fit_result.n_parameters

    # -- random effects, fitted values, prediction ----------------------------------------------
    @cached_property
    def random_effects(self) -> dict[Any, pd.Series]:
        """Conditional modes of the random effects, one Series per group.

        Keyed by the group values (sorted), each Series is indexed like statsmodels': the correlated
        effects by :attr:`MixedLM.exog_re_names` (``"Group"``, ``"Days"``), then each variance
        component as ``"<name>[<column>]"``: ``"Days[Days]"`` for a slope, ``"class[C(class)[2]]"`` for
        class 2 of a categorical component (only the classes present in the group).
        """
        return random_effects(self)

    @cached_property
    def random_effects_cov(self) -> dict[Any, pd.DataFrame]:
        """Conditional covariance of each group's random effects (statsmodels' ``random_effects_cov``).

        Only for models whose random effects all vary by the group (no categorical variance
        component); otherwise NotImplementedError.
        """
        return random_effects_cov(self)

    @cached_property
    def _fittedvalues(self) -> pd.Series:
        return self.fit_result.fitted().rename(None)

    @cached_property
    def _resid(self) -> pd.Series:
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
            A Series for a data frame given to a formula model, else an ndarray (the fitted rows'
            too, as statsmodels returns them).
        """
        fit = self.fit_result
        beta = np.asarray(fit.estimates.beta, dtype=float)
        if exog is None:
            return fit.design.X @ beta
        if isinstance(exog, pd.DataFrame) and self.model._from_formula:
            try:
                X = fit.design.fixed_design(exog)
            except Exception as err:  # formulae raises many kinds; all mean "cannot evaluate on exog"
                raise DataError(f"cannot evaluate the fixed part on exog: {err}") from err
            return pd.Series(X @ beta, index=exog.index)
        coef = self._fe_params.reindex(self.model.exog_names).fillna(0.0).to_numpy()
        return np.asarray(exog, dtype=float) @ coef

    def remove_data(self) -> None:
        """Drop the data arrays of results and model, keep the estimates (statsmodels' ``remove_data``).

        ``model.endog``, ``model.exog``, ``model.data.endog``, ``model.data.exog``, ``fittedvalues``
        and ``resid`` become None, as in statsmodels; see :mod:`bayesmlm.statsmodels_api.removal`.
        """
        remove_data(self)

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
        return results_summary(self, yname, xname_fe, xname_re, title, alpha)

    def __repr__(self) -> str:
        return f"<bayesmlm.MixedLMResults {self.method}: {self.model.formula}; llf {self.llf:.4f}>"
