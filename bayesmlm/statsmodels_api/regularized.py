"""The statsmodels entry point, ``fit_regularized``: L1-penalised fixed effects, as statsmodels 0.15.

statsmodels' algorithm, reproduced step by step: fit the model without penalty (REML or ML, lme4's
optimum here), hold its covariance structure fixed (``V_g = scale I + Z_g Σ Z_gᵀ`` per group), then
minimise the generalised least-squares loss plus ``Σ_j α_j |β_j|`` by cyclic coordinate descent
("shooting", Friedman, Hastie and Tibshirani 2008) from the unpenalised estimates: for each ``j``,
``β_j = 0``, ``a = Σ_g x_gᵀ V_g⁻¹ x_g``, ``b = -2 Σ_g x_gᵀ V_g⁻¹ r_g`` and
``β_j = -(b ∓ α_j) / 2a`` when ``|b| > α_j``, else 0. As in statsmodels a coefficient smaller than
``ceps`` is no longer visited, iterations stop when no coefficient moves by ``ptol`` or after ``maxit``,
the scale is then re-profiled at the penalised ``β`` and the covariance of the estimates is the inverse
of the negative Hessian of the profiled log-likelihood over the non-zero fixed effects and the
covariance parameters (taken here by central differences of :meth:`MixedLM.loglike`).
"""

from __future__ import annotations

import copy
from typing import Any

import numpy as np
import pandas as pd

from bayesmlm.exceptions import ArgumentError
from bayesmlm.statsmodels_api.params import MixedLMParams

__all__ = ["Regularized"]


def _inverse_covariances(results) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Each group's rows (positions in the design) and ``(V_g - scale I)``, the random effects' part."""
    fit, model = results.fit_result, results.model
    labels = np.asarray(model._group_labels, dtype=object)
    rows = [np.flatnonzero(labels == g) for g in pd.unique(labels)]
    covs = fit.estimates.covariances
    parts = []
    for r in rows:
        v = np.zeros((len(r), len(r)))
        for f in fit.structure.factors:
            z, codes = np.asarray(f.Z, dtype=float)[r], np.asarray(f.codes)[r]
            v += (codes[:, None] == codes[None, :]) * (z @ covs[f.group] @ z.T)
        parts.append(v)
    return rows, parts


def _hessian(fun, x: np.ndarray, step: float = 1e-4) -> np.ndarray:
    """Central-difference Hessian of ``fun`` at ``x`` (steps relative to each coordinate's size)."""
    k = len(x)
    h = step * np.maximum(np.abs(x), 1e-2)
    out = np.zeros((k, k))
    for i in range(k):
        for j in range(i, k):
            vals = []
            for si, sj in ((1, 1), (1, -1), (-1, 1), (-1, -1)):
                y = x.copy()
                y[i] += si * h[i]
                y[j] += sj * h[j]
                vals.append(fun(y))
            out[i, j] = out[j, i] = (vals[0] - vals[1] - vals[2] + vals[3]) / (4 * h[i] * h[j])
    return out


def _bse(model, params: np.ndarray, keep: np.ndarray) -> np.ndarray:
    """Statsmodels' covariance of the regularised estimates: inverse of -Hessian on ``keep``."""
    k_fe, k_re = model.k_fe, model.k_re
    tri = np.tril_indices(k_re)

    def loglike(x: np.ndarray) -> float:
        cov = np.zeros((k_re, k_re))
        cov[tri] = x[k_fe : k_fe + len(tri[0])]
        cov = cov + cov.T - np.diag(np.diag(cov))
        p = MixedLMParams.from_components(x[:k_fe], cov, vcomp=x[k_fe + len(tri[0]) :])
        return model._loglike(p, profile_fe=False)

    out = np.full((len(params), len(params)), np.nan)
    idx = np.flatnonzero(keep)
    try:
        hess = _hessian(loglike, params.copy())
    except NotImplementedError:  # loglike cannot take this model's variance components apart
        return out
    sub = hess[np.ix_(idx, idx)]
    try:
        out[np.ix_(idx, idx)] = np.linalg.inv(-sub)
    except np.linalg.LinAlgError:
        pass
    return out


class Regularized:
    """``MixedLM.fit_regularized`` (a mixin of :class:`~bayesmlm.MixedLM`)."""

    def fit_regularized(
        self,
        start_params: Any = None,
        method: Any = "l1",
        alpha: Any = 0,
        ceps: float = 1e-4,
        ptol: float = 1e-6,
        maxit: int = 200,
        **fit_kwargs: Any,
    ):
        """Fit with an L1 penalty on the fixed effects, as statsmodels' ``MixedLM.fit_regularized``.

        The covariance parameters are held at their unpenalised estimates (statsmodels' algorithm, see
        :mod:`bayesmlm.statsmodels_api.regularized`).

        Parameters
        ----------
        start_params : optional
            Passed to :meth:`fit` (ignored there).
        method : str or Penalty
            ``"l1"``; or a smooth penalty (statsmodels' ``L2``, ``PseudoHuber``, anything with ``func`` and
            ``deriv``): as statsmodels, its ``alpha`` is set to ``alpha`` and the model is fitted with
            ``fit(fe_pen=method)`` (see :mod:`bayesmlm.statsmodels_api.penalised`).
        alpha : float or array_like
            The penalty weight, one for all fixed effects or one per fixed effect.
        ceps : float
            Fixed effects smaller than this in magnitude count as zero (and are no longer updated).
        ptol : float
            Converged when no fixed effect moves by more than this in one sweep.
        maxit : int
            The maximum number of sweeps.
        **fit_kwargs
            Passed to :meth:`fit` (``reml=False`` for ML).

        Returns
        -------
        MixedLMResults
            ``fe_params`` and ``params`` penalised, ``cov_re``/``vcomp`` the unpenalised ones,
            ``scale`` re-profiled, ``bse`` from the Hessian over the non-zero fixed effects (NaN for the
            zeroed ones); ``random_effects`` is None (not recomputed).

        Examples
        --------
        >>> import bayesmlm as bm
        >>> md = bm.mixedlm("Reaction ~ Days", bm.load_dataset("sleepstudy"), groups="Subject")
        >>> res = md.fit_regularized(alpha=[0.0, 5.0])  # the intercept unpenalised
        >>> res.fe_params.round(3).tolist()
        [258.681, 8.85]
        """
        return _fit_regularized(self, start_params, method, alpha, ceps, ptol, maxit, fit_kwargs)


def _fit_regularized(model, start_params, method, alpha, ceps, ptol, maxit, fit_kwargs):
    if not isinstance(method, str):  # a smooth penalty: statsmodels scales it by alpha and fits with it
        if callable(getattr(method, "func", None)):  # fit() refuses anything but a penalty
            method.alpha = alpha
        return model.fit(start_params=start_params, fe_pen=method, **fit_kwargs)
    if method.lower() != "l1":
        raise ArgumentError("Invalid regularization method")
    weights = np.asarray(alpha, dtype=float)
    weights = np.full(model.k_fe, float(weights)) if weights.ndim == 0 else weights.reshape(-1)
    if len(weights) != model.k_fe:
        raise ArgumentError(f"alpha has {len(weights)} weights; the model has {model.k_fe} fixed effects")
    if np.any(weights < 0) or not np.all(np.isfinite(weights)):
        raise ArgumentError("alpha must be finite and non-negative")
    mdf = model.fit(start_params=start_params, **fit_kwargs)
    y, X, s_old = model.endog, model.exog, float(mdf.scale)
    rows, parts = _inverse_covariances(mdf)
    vinv = [np.linalg.inv(v + s_old * np.eye(len(r))) for r, v in zip(rows, parts, strict=True)]
    A = sum(X[r].T @ w @ X[r] for r, w in zip(rows, vinv, strict=True))
    c = sum(X[r].T @ w @ y[r] for r, w in zip(rows, vinv, strict=True))
    fe = np.asarray(mdf._fe_params, dtype=float).copy()
    for _ in range(int(maxit)):
        before = fe.copy()
        for j in range(model.k_fe):
            if abs(fe[j]) < ceps:
                continue
            fe[j] = 0.0
            a, b = A[j, j], -2.0 * (c[j] - A[j] @ fe)
            if b > weights[j]:
                fe[j] = -(b - weights[j]) / (2 * a)
            elif b < -weights[j]:
                fe[j] = -(b + weights[j]) / (2 * a)
        if np.abs(before - fe).max() < ptol:
            break
    resid = y - X @ fe
    dof = model.nobs - model.k_fe if mdf.reml else model.nobs
    qf = sum(resid[r] @ w @ resid[r] for r, w in zip(rows, vinv, strict=True))
    scale = s_old * qf / dof  # statsmodels' get_scale at the penalised fixed effects
    params = mdf._params.to_numpy().copy()
    params[: model.k_fe] = fe
    keep = np.abs(params) > ceps
    keep[model.k_fe :] = True
    pcov = _bse(model, params, keep)
    out = _regularized_results(mdf, fe, params, scale, pcov, rows, parts, resid)
    # statsmodels: params_object at the penalised fixed effects and the unpenalised relative covariances,
    # llf the (unpenalised) log-likelihood there
    out.params_object = MixedLMParams.from_components(
        fe, mdf._cov_re_values / mdf.scale, vcomp=mdf.vcomp / mdf.scale
    )
    out._llf = model._loglike(out.params_object, profile_fe=False)
    return out


def _regularized_results(mdf, fe, params, scale, pcov, rows, parts, resid, cov=None):
    """Return a copy of the unpenalised results with statsmodels' regularised estimates in place.

    ``cov``, a ``(MixedLMParams, scale)`` pair, also replaces the covariance estimates (penalised fits).
    """
    out = copy.copy(mdf)
    for name in ("_params", "_bse", "_pvalues", "_fittedvalues", "_resid", "random_effects"):
        out.__dict__.pop(name, None)
    if cov is not None:
        for name in ("_cov_re", "params_object", "_bse_re"):
            out.__dict__.pop(name, None)
        po, s = cov
        out._fe_values, out._cov_re_values, out.vcomp = np.asarray(fe), s * po.cov_re, s * po.vcomp
        out._pcov = pcov
    index = mdf._params.index
    out._fe_params = pd.Series(fe, index=mdf._fe_params.index)
    out._params = pd.Series(params, index=index)
    with np.errstate(invalid="ignore"):  # a Hessian that is not negative definite there: NaN
        out._bse = pd.Series(np.sqrt(np.diag(pcov)), index=index)
    out._bse_fe = out._bse.iloc[: len(fe)].rename(None)
    out._cov_params = lambda: pd.DataFrame(pcov, index=index, columns=index)
    out.scale = scale
    out.converged = True
    fitted = np.empty(len(resid))
    for r, v in zip(rows, parts, strict=True):  # statsmodels' BLUPs at the new scale, old covariance
        fitted[r] = (mdf.model.endog[r] - resid[r]) + v @ np.linalg.solve(
            v + scale * np.eye(len(r)), resid[r]
        )
    labels = mdf._fittedvalues.index
    out._fittedvalues = pd.Series(fitted, index=labels)
    out._resid = pd.Series(mdf.model.endog - fitted, index=labels)
    out.random_effects = None  # not recomputed at the penalised fixed effects
    return out
