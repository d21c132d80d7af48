"""The statsmodels entry point, ``statsmodels.formula.api.mixedlm``'s counterpart."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pandas as pd

from bayesmlm.statsmodels_api.model import MixedLM

__all__ = ["mixedlm"]


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
        ``eval_env`` / ``extra_namespace``: a dict of functions formulas may call (see
        :meth:`MixedLM.from_formula`); ``use_sqrt`` is accepted and ignored.

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
