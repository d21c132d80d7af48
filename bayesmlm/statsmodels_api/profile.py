"""The statsmodels entry point, ``profile_re``: the profile likelihood of one variance parameter.

statsmodels' ``MixedLMResults.profile_re(re_ix, vtype, ...)`` holds one variance (of the correlated
random effect ``re_ix``, or the variance component named ``re_ix``) at a grid of values around its
estimate and maximises the profiled log-likelihood over the other covariance parameters (the fixed
effects and the scale are profiled out). With the random effect moved to the first column, the held
variance is the square of the first element of the Cholesky factor, so the other elements stay free;
:func:`profile_re` does the same, maximising :func:`~bayesmlm.reml.marginal.profiled_loglike` with
its analytic gradient.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy import optimize

from bayesmlm.exceptions import ArgumentError
from bayesmlm.reml.marginal import gls_fixed_effects, profiled_loglike, profiled_scale
from bayesmlm.reml.marginal_derivs import profiled_score, sqrt_jacobian

__all__ = ["profile_re"]


def _objective(model: Any, ix: np.ndarray) -> tuple[Any, Any]:
    """(value and gradient, log-likelihood and scale) over the permuted covariance's packed roots."""
    y, X, Z, W = model._by_group()
    k_re, k_re2 = model.k_re, model.k_re2
    rows, cols = np.tril_indices(k_re)
    where = {(i, j): t for t, (i, j) in enumerate(zip(rows, cols, strict=True))}
    back = [where[max(ix[a], ix[b]), min(ix[a], ix[b])] for a, b in zip(rows, cols, strict=True)]

    def unpack(s: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        L = np.zeros((k_re, k_re))
        L[rows, cols] = s[:k_re2]
        cov = (L @ L.T)[np.ix_(ix, ix)]  # ix swaps two columns: its own inverse
        vcomp = s[k_re2:] ** 2
        return cov, vcomp, gls_fixed_effects(y, X, Z, W, cov, vcomp)

    def value_and_gradient(s: np.ndarray) -> tuple[float, np.ndarray]:
        cov, vcomp, fe = unpack(s)
        llf = profiled_loglike(y, X, Z, W, cov, vcomp, fe, model.reml)
        _, score = profiled_score(y, X, Z, W, cov, vcomp, fe, model.reml)
        full = np.concatenate([score[back], score[k_re2:]])
        return llf, sqrt_jacobian(s, 0, k_re).T @ full

    def at(s: np.ndarray) -> tuple[float, float]:
        cov, vcomp, fe = unpack(s)
        llf = profiled_loglike(y, X, Z, W, cov, vcomp, fe, model.reml)
        return llf, profiled_scale(y, X, Z, W, cov, vcomp, fe, model.reml)

    return value_and_gradient, at


def profile_re(
    result: Any,
    re_ix: int | str,
    vtype: str,
    num_low: int = 5,
    dist_low: float = 1.0,
    num_high: int = 5,
    dist_high: float = 1.0,
) -> np.ndarray:
    """Profile likelihood of one variance parameter, as statsmodels' ``MixedLMResults.profile_re``.

    Parameters
    ----------
    result : MixedLMResults
        A fit of a statsmodels-shaped model.
    re_ix : int or str
        For ``vtype="re"`` the position of the random effect in ``cov_re``; for ``vtype="vc"`` the
        variance component's name.
    vtype : {"re", "vc"}
        A correlated random effect's variance or a variance component.
    num_low, num_high : int
        Points below and above the estimate.
    dist_low, dist_high : float
        How far below and above the estimate (in the data's units) the grid reaches.

    Returns
    -------
    ndarray, shape (num_low + num_high + 1, 2)
        The variance held (in the data's units, ``value * scale`` at each constrained fit, as
        statsmodels reports it) and the log-likelihood there.

    Examples
    --------
    >>> import bayesmlm as bm
    >>> mdf = bm.mixedlm("Reaction ~ Days", bm.load_dataset("sleepstudy"), groups="Subject").fit()
    >>> prof = mdf.profile_re(0, "re", num_low=2, dist_low=500, num_high=2, dist_high=500)
    >>> prof.shape, round(float(prof[2, 1]), 4)  # the middle point is the estimate
    ((5, 2), -893.2325)
    """
    model = result.model
    if vtype not in ("re", "vc"):
        raise ArgumentError(f"vtype must be 're' or 'vc', not {vtype!r}")
    po = result.params_object
    k_re, k_re2 = model.k_re, model.k_re2
    ix = np.arange(k_re)
    if vtype == "re":
        if not isinstance(re_ix, (int, np.integer)) or not 0 <= re_ix < k_re:
            raise ArgumentError(f"re_ix must be a random effect's position, 0 to {k_re - 1}, not {re_ix!r}")
        ix[0], ix[re_ix] = re_ix, 0
        held = 0
        ru0 = po.cov_re[re_ix, re_ix]
    else:
        if re_ix not in model.vc_names:
            raise ArgumentError(
                f"re_ix must name a variance component, one of {model.vc_names}, not {re_ix!r}"
            )
        held = k_re2 + model.vc_names.index(re_ix)
        ru0 = po.vcomp[held - k_re2]
    low = (result.scale * ru0 - dist_low) / result.scale
    high = (result.scale * ru0 + dist_high) / result.scale
    if low <= 0:
        raise ArgumentError(
            "dist_low is too large and would result in a negative variance. Try a smaller value."
        )
    rvalues = np.concatenate([np.linspace(low, ru0, num_low + 1), np.linspace(ru0, high, num_high + 1)[1:]])
    cov_p = po.cov_re[np.ix_(ix, ix)]
    value_and_gradient, at = _objective(model, ix)
    free = np.array([j != held for j in range(k_re2 + len(model.vc_names))])
    out = []
    for x in rvalues:
        start = cov_p.copy()
        if vtype == "re":
            start[0, 0] = x
        try:
            tri = np.linalg.cholesky(start)[np.tril_indices(k_re)]
        except np.linalg.LinAlgError:  # the held variance is below what the covariances need
            tri = np.diag(np.sqrt(np.diag(start)))[np.tril_indices(k_re)]
        s = np.concatenate([tri, np.sqrt(po.vcomp)])
        s[held] = np.sqrt(x)

        def full(sf: np.ndarray, s: np.ndarray = s) -> np.ndarray:
            t = s.copy()
            t[free] = sf
            return t

        def negative(sf: np.ndarray, full=full) -> tuple[float, np.ndarray]:
            llf, grad = value_and_gradient(full(sf))
            return -llf, -grad[free]

        if free.any():
            s = full(optimize.minimize(negative, s[free], jac=True, method="BFGS", options={"gtol": 1e-8}).x)
        llf, scale = at(s)
        out.append([x * scale, llf])
    return np.asarray(out)
