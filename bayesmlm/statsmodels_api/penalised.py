"""The statsmodels entry point, penalised fits: ``fit(fe_pen=, cov_pen=)`` and smooth ``fit_regularized``.

statsmodels 0.15 subtracts its penalties from the profiled log-likelihood it optimises over the
covariance parameters (the Cholesky factor of ``Ψ = cov_re / scale`` and ``sqrt(vcomp / scale)``):
``ℓ(θ) − fe_pen.func(β̂(θ)) − cov_pen.func(Ψ, Ψ⁻¹)``, with ``β̂(θ)`` the GLS fixed effects (so the
returned ``fe_params`` are GLS ones, never shrunk, and ``fe_pen`` moves the fit only through the
covariance parameters: not at all when ``β̂`` does not depend on them, as in a balanced design).
``llf`` is that penalised objective at the estimates, ``cov_params()`` the inverse of minus the
unpenalised Hessian there (its fixed effects' block lme4's ``vcov``, ``scale (XᵀV⁻¹X)⁻¹``, as in the
unpenalised results). This module maximises the same objective from lme4's unpenalised optimum
with ``scipy.optimize.minimize`` (L-BFGS-B) and the analytic score (:meth:`MixedLM.score_full`), minus
``cov_pen.deriv`` and the fixed-effect penalty's chain term ``fe_pen.deriv(β̂)ᵀ dβ̂/dθ`` (analytic;
statsmodels' score leaves this term out, so with ``fe_pen`` on an unbalanced design its optimiser stops
near the unpenalised θ, at a lower value of its own objective). Penalties are taken
duck-typed, anything with ``func`` and ``deriv`` such as statsmodels' ``L2``, ``PseudoHuber`` and
``PSD``, so bayesmlm never imports statsmodels.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy import optimize

from bayesmlm.exceptions import ArgumentError
from bayesmlm.reml.marginal import vc_cov, vc_matrices
from bayesmlm.reml.marginal_derivs import sqrt_jacobian
from bayesmlm.statsmodels_api.params import MixedLMParams
from bayesmlm.statsmodels_api.regularized import _regularized_results

__all__ = ["check_penalties", "check_penalty", "penalised_fit"]


def check_penalty(penalty: Any, name: str) -> Any:
    """Return ``penalty`` if it has callable ``func`` and ``deriv`` (statsmodels' penalty protocol).

    Parameters
    ----------
    penalty : object
        A statsmodels ``Penalty`` (``L2``, ``PseudoHuber``...) or ``CovariancePenalty`` (``PSD``), or any
        object with the same two methods.
    name : str
        The argument's name, for the message.

    Returns
    -------
    object
        ``penalty`` itself.

    Examples
    --------
    >>> class Ridge:
    ...     def func(self, b): return float((b**2).sum())
    ...     def deriv(self, b): return 2 * b
    >>> isinstance(check_penalty(Ridge(), "fe_pen"), Ridge)
    True
    """
    if not (callable(getattr(penalty, "func", None)) and callable(getattr(penalty, "deriv", None))):
        raise ArgumentError(
            f"{name} must be a penalty with func() and deriv() methods, such as statsmodels' "
            f"L2(), PseudoHuber(dlt) or PSD(weight); got {type(penalty).__name__}"
        )
    return penalty


def check_penalties(fe_pen: Any, cov_pen: Any, bayes: bool) -> tuple[Any, Any]:
    """Check ``fit``'s ``fe_pen`` and ``cov_pen`` (each None or a penalty); refused with ``bayes=True``."""
    pens = tuple(
        None if p is None else check_penalty(p, n) for p, n in ((fe_pen, "fe_pen"), (cov_pen, "cov_pen"))
    )
    if bayes and pens != (None, None):
        raise NotImplementedError("bayes=True with fe_pen or cov_pen: penalised fits are REML/ML only")
    return pens


def _unpack(model, x: np.ndarray) -> MixedLMParams:
    p = MixedLMParams.from_packed(x, model.k_fe, model.k_re, use_sqrt=True, has_fe=False)
    p.fe_params = model.get_fe_params(p.cov_re, p.vcomp)[0]
    return p


def _objective(model, fe_pen, cov_pen, p: MixedLMParams) -> float:
    """Statsmodels' penalised profiled log-likelihood at ``p`` (its ``fe_params`` the GLS ones)."""
    value = model._loglike(p, profile_fe=False)
    if cov_pen is not None and model.k_re > 0:
        try:
            inv = np.linalg.inv(p.cov_re)
        except np.linalg.LinAlgError:
            inv = np.linalg.pinv(p.cov_re)
        value -= float(cov_pen.func(p.cov_re, inv))
    if fe_pen is not None:
        value -= float(fe_pen.func(p.fe_params))
    return float(value)


def _gls_jacobian(model, p: MixedLMParams) -> np.ndarray:
    """``dβ̂/d(cov_re's triangle, vcomp)``: ``-(XᵀV⁻¹X)⁻¹ XᵀV⁻¹ (dV/dθ_j) V⁻¹ (y - Xβ̂)`` (V relative)."""
    y, X, Z, W = model._by_group()
    tri = np.tril_indices(model.k_re)
    xvx = np.zeros((model.k_fe, model.k_fe))
    cols = np.zeros((model.k_fe, len(tri[0]) + len(p.vcomp)))
    for yi, Xi, Zi, Wi in zip(y, X, Z, W, strict=True):
        V = np.eye(len(yi)) + Zi @ p.cov_re @ Zi.T + vc_cov(Wi, p.vcomp, len(yi))
        A, u = np.linalg.solve(V, Xi), np.linalg.solve(V, yi - Xi @ p.fe_params)
        xvx += Xi.T @ A
        P, q = Zi.T @ A, Zi.T @ u  # (k_re, k_fe), (k_re,)
        for j, (a, b) in enumerate(zip(*tri, strict=True)):
            cols[:, j] += P[a] * q[b] + (P[b] * q[a] if a != b else 0.0)
        for k, m in enumerate(vc_matrices(Wi)):
            cols[:, len(tri[0]) + k] += (m.T @ A).T @ (m.T @ u)
    return -np.linalg.solve(xvx, cols)


def _gradient(model, fe_pen, cov_pen, x: np.ndarray, p: MixedLMParams) -> np.ndarray:
    """Return the objective's gradient over statsmodels' square-root parameters."""
    _, score_re, score_vc = model._score_full(p, calc_fe=False)
    score_re = np.array(score_re, dtype=float)
    if cov_pen is not None and model.k_re > 0:
        score_re -= np.asarray(cov_pen.deriv(p.cov_re, np.linalg.inv(p.cov_re)), dtype=float)
    full = np.concatenate([score_re, np.asarray(score_vc, dtype=float)])
    if fe_pen is not None:
        full -= np.asarray(fe_pen.deriv(p.fe_params), dtype=float) @ _gls_jacobian(model, p)
    jac = sqrt_jacobian(np.concatenate([np.zeros(model.k_fe), x]), model.k_fe, model.k_re)
    return jac[model.k_fe :, model.k_fe :].T @ full


def penalised_fit(model, mdf, fe_pen: Any, cov_pen: Any):
    """Maximise statsmodels' penalised objective from the unpenalised results ``mdf`` (``mdf`` if none).

    Parameters
    ----------
    model : MixedLM
        The model (``reml`` as for ``mdf``).
    mdf : MixedLMResults
        The unpenalised fit (lme4's optimum), the starting point and the template of the result.
    fe_pen, cov_pen : object or None
        Penalties with ``func`` and ``deriv`` (see :func:`check_penalty`).

    Returns
    -------
    MixedLMResults
        At the penalised optimum: GLS ``fe_params``, ``cov_re``, ``vcomp``, re-profiled ``scale``,
        ``llf`` the penalised objective, ``cov_params()`` from the unpenalised Hessian there;
        ``random_effects`` is None (not recomputed).

    Examples
    --------
    >>> import bayesmlm as bm
    >>> class Ridge:
    ...     alpha = 1.0
    ...     def func(self, b): return self.alpha * float((b**2).sum())
    ...     def deriv(self, b): return 2 * self.alpha * b
    >>> md = bm.mixedlm("Reaction ~ Days", bm.load_dataset("sleepstudy"), groups="Subject")
    >>> round(md.fit(fe_pen=Ridge()).llf, 2)  # balanced: the estimates are the unpenalised ones
    -64207.32
    """
    if fe_pen is None and cov_pen is None:
        return mdf
    start = mdf.params_object.get_packed(use_sqrt=True, has_fe=False)

    def fun(x: np.ndarray) -> tuple[float, np.ndarray]:
        p = _unpack(model, x)
        value = _objective(model, fe_pen, cov_pen, p)
        if not np.isfinite(value):
            return np.inf, np.zeros_like(x)
        return -value, -_gradient(model, fe_pen, cov_pen, x, p)

    res = optimize.minimize(fun, start, jac=True, method="L-BFGS-B", options={"gtol": 1e-9, "ftol": 1e-15})
    p = _unpack(model, res.x)
    scale = model.get_scale(p.fe_params, p.cov_re, p.vcomp)
    params = p.get_packed(use_sqrt=False, has_fe=True)
    try:
        hess, _ = model.hessian(p)
        pcov = np.linalg.inv(-hess)
    except (NotImplementedError, np.linalg.LinAlgError):
        pcov = np.full((len(params), len(params)), np.nan)
    rows, parts, resid = _covariance_parts(model, p, scale)
    X, k = model.exog, model.k_fe  # the fixed effects' block: lme4's vcov, as the unpenalised results
    xvx = sum(
        X[r].T @ np.linalg.solve(v + scale * np.eye(len(r)), X[r]) for r, v in zip(rows, parts, strict=True)
    )
    pcov[:k, :k] = np.linalg.inv(xvx)
    out = _regularized_results(mdf, p.fe_params, params, scale, pcov, rows, parts, resid, cov=(p, scale))
    out.converged = bool(res.success)
    out._llf = _objective(model, fe_pen, cov_pen, p)
    out.cov_pen = cov_pen  # statsmodels' results keep it (None when unpenalised)
    return out


def _covariance_parts(model, p: MixedLMParams, scale: float):
    """Each group's rows, ``V_g − scale I`` at ``p`` and the residuals at its fixed effects."""
    _, _, Z, W = model._by_group()
    rows = list(model.row_indices.values())
    parts = [
        scale * (Zi @ p.cov_re @ Zi.T + vc_cov(Wi, p.vcomp, len(Zi))) for Zi, Wi in zip(Z, W, strict=True)
    ]
    return rows, parts, model.endog - model.exog @ p.fe_params
