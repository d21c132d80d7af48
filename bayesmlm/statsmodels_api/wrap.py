"""The statsmodels entry point, output types: ndarrays for a model built from arrays, pandas otherwise.

statsmodels wraps a result's attributes in pandas when the model's ``endog`` or ``exog`` was a pandas
object (or a formula built them), and leaves them ndarrays otherwise. :class:`TypedOutputs` does the
same over the labelled pandas objects that :class:`MixedLMResults` computes (``_params``, ``_bse``...),
so ``result.cov_params()[0:k, 0:k]`` works on an array-built model as it does in statsmodels.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

__all__ = ["TypedOutputs", "uses_pandas"]


def uses_pandas(endog: Any, exog: Any) -> bool:
    """Whether statsmodels would label the results: ``endog`` or ``exog`` is a pandas object."""
    return isinstance(endog, (pd.Series, pd.DataFrame)) or isinstance(exog, (pd.Series, pd.DataFrame))


class TypedOutputs:
    """statsmodels' wrapped attributes of ``MixedLMResults``, typed after the model's input.

    A mixin: the class using it provides ``model`` (with ``uses_pandas``) and the pandas versions of
    each attribute under the same name with a leading underscore.
    """

    model: Any

    def _typed(self, value: Any) -> Any:
        if self.model.uses_pandas or not isinstance(value, (pd.Series, pd.DataFrame)):
            return value
        return value.to_numpy(dtype=float, copy=True)

    @property
    def params(self) -> pd.Series | np.ndarray:
        """Fixed effects, then the covariance parameters divided by ``scale``, as statsmodels' ``params``.

        The covariance parameters are the lower triangle of ``cov_re / scale`` row by row
        (``"Group Var"``, ``"Group x Days Cov"``, ``"Days Var"``), then ``vcomp / scale``
        (``"<name> Var"``). The unscaled variances are :attr:`cov_re` and :attr:`vcomp`; the
        summary shows those. A Series labelled by ``model.param_names`` for a formula or pandas
        input, an ndarray for arrays (as statsmodels).
        """
        return self._typed(self._params)

    @property
    def fe_params(self) -> pd.Series | np.ndarray:
        """Fixed-effect estimates (labelled by ``model.exog_names`` for pandas input)."""
        return self._typed(self._fe_params)

    @property
    def bse_fe(self) -> pd.Series | np.ndarray:
        """Standard errors of :attr:`fe_params`."""
        return self._typed(self._bse_fe)

    @property
    def bse(self) -> pd.Series | np.ndarray:
        """Standard errors of :attr:`params`: ``sqrt(diag(cov_params()))``, as statsmodels.

        The fixed effects' are lme4's; the variance parameters' come from the inverse Hessian of the
        profiled log-likelihood at the optimum (``model.hessian``), in statsmodels' relative
        parameterisation (``cov_re / scale``), so they are not on the scale of :attr:`bse_re`
        (statsmodels' ``bse`` and ``bse_re`` differ in the same way). NaN with a categorical
        variance component.
        """
        return self._typed(self._bse)

    @property
    def bse_re(self) -> pd.Series | np.ndarray:
        """Standard errors of ``cov_re``'s lower triangle and of :attr:`vcomp`, as statsmodels' ``bse_re``.

        ``sqrt(scale * diag(cov_params()))`` over the variance parameters (statsmodels' formula).
        These variances' sampling distributions are skewed: prefer ``fit_result.confint()``
        (profile intervals) for inference.
        """
        return self._typed(self._bse_re)

    @property
    def tvalues(self) -> pd.Series | np.ndarray:
        """Wald z statistics ``params / bse``."""
        return self._typed(self._params / self._bse)

    @property
    def pvalues(self) -> pd.Series | np.ndarray:
        """Two-sided normal p-values of :attr:`tvalues`."""
        return self._typed(self._pvalues)

    @property
    def cov_re(self) -> pd.DataFrame | np.ndarray:
        """Covariance matrix of the correlated random effects, in the data's units.

        Indexed by ``model.exog_re_names`` (the group name for the intercept, then the slopes) for
        pandas input; a ``(k_re, k_re)`` ndarray for arrays.
        """
        return self._typed(self._cov_re)

    @property
    def cov_re_unscaled(self) -> pd.DataFrame | np.ndarray:
        """``cov_re / scale``: ``params_object.cov_re`` (after ``fit_regularized``, the unpenalised one)."""
        cov = self._cov_re
        return self._typed(pd.DataFrame(self.params_object.cov_re, index=cov.index, columns=cov.columns))

    @property
    def fittedvalues(self) -> pd.Series | np.ndarray:
        """Fitted values: fixed effects plus each row's random effects (indexed like the data)."""
        return self._typed(self._fittedvalues)

    @property
    def resid(self) -> pd.Series | np.ndarray:
        """Residuals: response minus :attr:`fittedvalues`."""
        return self._typed(self._resid)

    def cov_params(self) -> pd.DataFrame | np.ndarray:
        """Covariance of the estimates, statsmodels' ``cov_params()``.

        The inverse of minus ``model.hessian`` at the optimum (over the fixed effects, ``cov_re / scale``'s
        triangle and ``vcomp / scale``; parameters held by ``free`` get zeros), with lme4's ``vcov``
        as the fixed effects' block (the two agree at the optimum).

        Returns
        -------
        DataFrame or ndarray
            ``len(params)`` square, labelled by ``model.param_names`` for pandas input.
        """
        return self._typed(self._cov_params())

    def conf_int(self, alpha: float = 0.05) -> pd.DataFrame | np.ndarray:
        """Wald confidence intervals, columns ``0`` (lower) and ``1`` (upper), as statsmodels.

        Parameters
        ----------
        alpha : float
            ``1 - alpha`` is the coverage.

        Returns
        -------
        DataFrame or ndarray
            One row per parameter; an ``(n, 2)`` ndarray for arrays.
        """
        return self._typed(self._conf_int(alpha))
