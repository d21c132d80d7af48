"""The statsmodels entry point, ``remove_data()``: drop the data arrays, keep the estimates.

statsmodels' ``MixedLMResults.remove_data()`` sets ``model.endog``, ``model.exog``, ``model.data.endog``
and ``model.data.exog`` to None, and the results' ``fittedvalues``, ``resid`` and ``wresid`` to None;
``params``, ``bse``, ``fe_params``, ``cov_re``, ``vcomp`` and ``scale`` stay. Here the same, except that
the estimates computed from the data (``llf``, ``aic``, ``bic``, ``random_effects``, ``summary()``,
``t_test``) keep working: statsmodels 0.15 recomputes ``llf`` from the removed ``exog`` and fails.
"""

from __future__ import annotations

from typing import Any

from bayesmlm.statsmodels_api.model_data import MixedLMData

__all__ = ["remove_data"]


def remove_data(results: Any) -> None:
    """Drop ``results``' and its model's data arrays, as statsmodels' ``remove_data`` does (in place).

    Examples
    --------
    >>> import bayesmlm as bm
    >>> res = bm.mixedlm("Reaction ~ Days", bm.load_dataset("sleepstudy"), groups="Subject").fit()
    >>> res.remove_data()
    >>> res.model.exog is None, res.fittedvalues is None, round(res.llf, 4)
    (True, True, -893.2325)
    """
    for name in ("_params", "_bse", "_pvalues", "random_effects"):  # the estimates, kept
        getattr(results, name)
    results.__dict__["_fittedvalues"] = None
    results.__dict__["_resid"] = None
    results.wresid = None
    model = results.model
    data = MixedLMData(model)
    data.endog = data.exog = None
    model.__dict__["endog"] = None
    model.__dict__["exog"] = None
    model._removed_data = data
