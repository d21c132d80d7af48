"""Stage 4a, REML/ML: maximum likelihood for a GLMM in glmer's two stages, and a record of how it went.

Stage 1 (glmer's ``nAGQ = 0``) optimises ``θ`` (and the negative binomial's ``log ν``) with ``β``
estimated inside penalised IRLS together with the modes. Stage 2 (``nAGQ = 1``, or ``k``-point
quadrature) starts there and optimises ``θ`` and ``β`` (and ``log ν``) jointly on the Laplace or
quadrature deviance (:class:`~bayesmlm.reml.laplace.Deviance`): L-BFGS-B with central-difference
gradients (the diagonal of each ``Λ`` bounded at 0), then projected Newton steps with a
finite-difference Hessian, which is also what the standard errors come from (lme4's ``vcov`` inverts
the same Hessian). The fit is declared converged only when the largest projected gradient is below
``1e-3`` and a Newton step would lower the deviance by less than ``1e-6``; otherwise the record says
which check failed.

The fixed effects are optimised for standardised predictors (centred and scaled columns,
:class:`~bayesmlm.reml.laplace.Standardisation`) and mapped back, so shifting or rescaling a covariate
changes nothing but its coefficient.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
from scipy.optimize import minimize

from bayesmlm.reml.laplace import Deviance
from bayesmlm.reml.pirls import GLMMTerms, pirls

__all__ = ["GLMMOptSummary", "hessian", "optimize_glmm"]

#: finite-difference steps: for gradients (central differences) and the Hessian; on glmer's
#: evaluation of the deviance the Hessian takes lme4's own step (``deriv12``'s ``delta``)
GRADIENT_STEP, HESSIAN_STEP, GLMER_HESSIAN_STEP = 1e-5, 1e-3, 1e-4


@dataclass(frozen=True)
class GLMMOptSummary:
    """How a GLMM's ML optimisation went (in the spirit of MixedModels.jl's ``OptSummary``).

    Attributes
    ----------
    method : str
        ``"Laplace"`` or ``"AGQ(k)"``.
    x_initial, x : ndarray
        Stage 2's starting and final ``[θ, β̃, log ν]`` (standardised fixed effects).
    objective : float
        The final deviance (``-2 × logLik``).
    stage1_objective : float
        Stage 1's deviance at its optimum.
    hessian : ndarray
        Hessian of the deviance in ``[θ, β̃]`` (``ν`` held) at the optimum.
    n_evaluations, n_newton : int
        Deviance evaluations; Newton steps taken.
    gradient_norm, decrement : float
        Largest projected gradient component; the deviance decrease a further Newton step predicts.
    converged : bool
    message : str
    seconds : float
    """

    method: str
    x_initial: np.ndarray
    x: np.ndarray
    objective: float
    stage1_objective: float
    hessian: np.ndarray
    n_evaluations: int
    n_newton: int
    gradient_norm: float
    decrement: float
    converged: bool
    message: str
    seconds: float


def gradient(f, x: np.ndarray, h: float = GRADIENT_STEP) -> np.ndarray:
    """Central-difference gradient of ``f`` at ``x``."""
    g = np.empty_like(x)
    for i in range(len(x)):
        up, down = x.copy(), x.copy()
        up[i] += h
        down[i] -= h
        g[i] = (f(up) - f(down)) / (2 * h)
    return g


def hessian(f, x: np.ndarray, h: float = HESSIAN_STEP, f0: float | None = None) -> np.ndarray:
    """Central-difference Hessian of ``f`` at ``x`` from function values (symmetric by construction)."""
    k = len(x)
    f0 = f(x) if f0 is None else f0
    H = np.empty((k, k))
    e = np.eye(k) * h
    for i in range(k):
        H[i, i] = (f(x + e[i]) - 2 * f0 + f(x - e[i])) / h**2
        for j in range(i):
            H[i, j] = H[j, i] = (
                f(x + e[i] + e[j]) - f(x + e[i] - e[j]) - f(x - e[i] + e[j]) + f(x - e[i] - e[j])
            ) / (4 * h**2)
    return H


def _starting_beta(terms: GLMMTerms) -> np.ndarray:
    """Least squares of the family's starting linear predictor (minus the offset) on ``X``."""
    if terms.p == 0:
        return np.zeros(0)
    target = terms.family.starting_eta(terms.data) - terms.offset
    return np.linalg.lstsq(terms.X, target, rcond=None)[0]


def _stage1(terms: GLMMTerms, theta0, lower, dispersion0, estimate_dispersion):
    """Run glmer's stage 1 (nAGQ = 0): ``θ`` (and ``log ν``) with ``β`` estimated inside PIRLS.

    Returns the optimum ``[θ, log ν]``, its ``β``, its deviance and its linear predictor.
    """
    state = {"u": None, "beta": _starting_beta(terms), "eta": None}
    k = len(theta0)

    def f(y: np.ndarray) -> float:
        disp = float(np.exp(y[k])) if estimate_dispersion else dispersion0
        try:
            r = pirls(terms, y[:k], state["beta"], disp, u_start=state["u"], joint=True)
        except Exception:  # a failed inner fit: the optimiser steps back
            return np.inf
        state["u"], state["beta"], state["eta"] = r.u, r.beta, r.eta
        return r.laplace_deviance

    y0 = np.concatenate([theta0, [np.log(dispersion0)] if estimate_dispersion else []])
    bounds = [(lo if np.isfinite(lo) else None, None) for lo in lower]
    bounds += [(np.log(1e-4), np.log(1e6))] if estimate_dispersion else []
    res = minimize(lambda y: (f(y), gradient(f, y)), y0, jac=True, method="L-BFGS-B", bounds=bounds)
    f(res.x)
    return res.x, state["beta"], float(res.fun), state["eta"]


def _newton(dev, x: np.ndarray, f: float, lo: np.ndarray, h: float, steps: int = 10):
    """Projected Newton steps with a finite-difference Hessian.

    Returns ``(x, f, g, H, steps, decrement)`` with the gradient and Hessian at the final ``x``.
    """
    n_newton = 0
    while True:
        g = gradient(dev, x)
        H = hessian(dev, x, h=h, f0=f)
        free = ~((x <= lo) & (g > 0))
        if not free.any():
            return x, f, g, H, n_newton, 0.0
        try:
            step = np.linalg.solve(H[np.ix_(free, free)], g[free])
        except np.linalg.LinAlgError:
            return x, f, g, H, n_newton, np.inf
        decrement = float(g[free] @ step) / 2
        if not np.isfinite(decrement) or decrement < 1e-10 or n_newton == steps:
            return x, f, g, H, n_newton, decrement
        trial = x.copy()
        trial[free] = np.maximum(x[free] - step, lo[free])
        ft = dev(trial)
        if not ft < f:
            return x, f, g, H, n_newton, decrement
        x, f, n_newton = trial, ft, n_newton + 1


def optimize_glmm(
    terms: GLMMTerms,
    n_agq: int = 1,
    theta0: np.ndarray | None = None,
    dispersion: float | None = None,
    estimate_dispersion: bool = False,
    as_glmer: bool = True,
    max_iter: int = 500,
) -> tuple[GLMMOptSummary, Deviance]:
    """Maximise the Laplace (or quadrature) likelihood of a GLMM; see the module docstring.

    Parameters
    ----------
    terms : GLMMTerms
        The model, with standardised predictors.
    n_agq : int
        1 (Laplace) or the number of quadrature points.
    theta0 : ndarray, optional
        Starting ``θ`` (lme4's: identity ``Λ``).
    dispersion : float, optional
        Starting (or, without ``estimate_dispersion``, fixed) negative binomial shape.
    estimate_dispersion : bool
        Estimate the shape too.
    as_glmer : bool
        For the Laplace approximation, finish on glmer's evaluation of it
        (:func:`~bayesmlm.reml.pirls.pirls_as_glmer`, from stage 1's linear predictor), so that the
        optimum and the Hessian are glmer's; otherwise on the converged Laplace approximation.
    max_iter : int
        L-BFGS-B iterations in stage 2.

    Returns
    -------
    GLMMOptSummary, Deviance
        The record, and the deviance function (its :meth:`~Deviance.modes` give the fit's modes).
    """
    start = time.perf_counter()
    structure = terms.structure
    lower = structure.theta_lower_bounds()
    theta0 = structure.theta_initial() if theta0 is None else np.asarray(theta0, dtype=float)
    disp0 = 1.0 if dispersion is None else float(dispersion)
    y1, beta1, stage1, eta1 = _stage1(terms, theta0, lower, disp0, estimate_dispersion)
    k = structure.n_theta
    x0 = np.concatenate([y1[:k], beta1, y1[k:]])
    fixed_disp = disp0 if not estimate_dispersion else None
    dev = Deviance(terms, n_agq, fixed_disp, estimate_dispersion)
    bounds = [(lo if np.isfinite(lo) else None, None) for lo in lower] + [(None, None)] * (len(x0) - k)
    res = minimize(
        lambda x: (dev(x), gradient(dev, x)),
        x0,
        jac=True,
        method="L-BFGS-B",
        bounds=bounds,
        options={"maxiter": max_iter, "ftol": 1e-14, "gtol": 1e-8},
    )
    lo = np.concatenate([lower, np.full(len(x0) - k, -np.inf)])
    x = np.maximum(res.x, lo)
    step = HESSIAN_STEP
    if as_glmer and n_agq == 1:
        exact = dev
        dev = Deviance(terms, 1, fixed_disp, estimate_dispersion, eta_start=eta1)
        dev.n_evaluations = exact.n_evaluations
        step = GLMER_HESSIAN_STEP
    x, f, g, H, n_newton, decrement = _newton(dev, x, dev(x), lo, step)
    pg = np.where((x <= lo) & (g > 0), 0.0, g)
    gnorm = float(np.max(np.abs(pg), initial=0.0))
    # glmer.nb's final fit holds the shape: its Hessian is the (θ, β) block
    H = H[: k + terms.p, : k + terms.p]
    converged = bool(np.isfinite(f) and gnorm < 1e-3 and decrement < 1e-6)
    message = (
        f"L-BFGS-B: {res.message}; {n_newton} Newton step{'s' if n_newton != 1 else ''}; "
        f"largest projected gradient {gnorm:.1e}; predicted further decrease {decrement:.1e}"
    )
    summary = GLMMOptSummary(
        "Laplace" if n_agq == 1 else f"AGQ({n_agq})",
        x0,
        x,
        float(f),
        stage1,
        H,
        dev.n_evaluations,
        n_newton,
        gnorm,
        float(decrement),
        converged,
        message,
        time.perf_counter() - start,
    )
    return summary, dev
