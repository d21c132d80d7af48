"""Stage 4a, REML/ML: minimise the profiled deviance over theta, and record how it went.

The objective and its gradient come from one compiled PyTensor function. L-BFGS-B handles the
boundary (diagonal entries of ``Λ`` are bounded below by 0, so a variance can be estimated as exactly
zero, as lme4 does); a few projected Newton steps (Hessian from differences of the exact gradient)
then polish the optimum so that estimates agree with lme4's to its printed digits.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import minimize

from bayesmlm.design.covariance import RandomStructure
from bayesmlm.design.crossprod import CrossProducts
from bayesmlm.reml.objective import compile_at_theta

__all__ = ["OptSummary", "optimize_theta"]

#: a diagonal entry of Λ below this counts as on the boundary (lme4's ``isSingular`` tolerance)
BOUNDARY_TOL = 1e-4


@dataclass(frozen=True)
class OptSummary:
    """A record of how the optimisation went (in the spirit of MixedModels.jl's ``OptSummary``).

    Attributes
    ----------
    method : str
        ``"REML"`` or ``"ML"``.
    theta_initial, theta : ndarray
        Starting and final relative covariance parameters.
    objective : float
        Final deviance (ML) or REML criterion.
    n_evaluations : int
        Objective-and-gradient evaluations.
    n_newton : int
        Newton polishing steps taken.
    gradient_norm : float
        Largest projected gradient component at the end.
    converged : bool
    message : str
    seconds : float
        Wall time, including compilation.
    """

    method: str
    theta_initial: np.ndarray
    theta: np.ndarray
    objective: float
    n_evaluations: int
    n_newton: int
    gradient_norm: float
    converged: bool
    message: str
    seconds: float
    compile_seconds: float = field(default=0.0)


def _projected_gradient(theta: np.ndarray, grad: np.ndarray, lower: np.ndarray) -> np.ndarray:
    at_bound = (theta <= lower) & (grad > 0)
    return np.where(at_bound, 0.0, grad)


def _hessian_by_differences(fun, x: np.ndarray, free: np.ndarray, h: float = 1e-5) -> np.ndarray:
    """Hessian of the free coordinates by central differences of the exact gradient (symmetrised)."""
    idx = np.flatnonzero(free)
    hess = np.empty((len(idx), len(idx)))
    for k, i in enumerate(idx):
        up, down = x.copy(), x.copy()
        up[i] += h
        down[i] -= h
        hess[:, k] = (fun(up)[1][idx] - fun(down)[1][idx]) / (2 * h)
    return (hess + hess.T) / 2


def optimize_theta(
    structure: RandomStructure,
    stats: CrossProducts,
    reml: bool = True,
    theta0: np.ndarray | None = None,
    max_iter: int = 2000,
    grad_tol: float = 1e-6,
) -> OptSummary:
    """Find the theta that minimises the profiled REML criterion or ML deviance.

    Parameters
    ----------
    structure : RandomStructure
    stats : CrossProducts
    reml : bool
        REML if true, ML otherwise.
    theta0 : ndarray, optional
        Starting value; lme4's (identity ``Λ``) by default.
    max_iter : int
        Iteration limit for L-BFGS-B.
    grad_tol : float
        Converged when the largest projected gradient component, or the decrease of the deviance
        that a Newton step predicts, is below this.

    Returns
    -------
    OptSummary

    Examples
    --------
    >>> import bayesmlm as bm
    >>> from bayesmlm.design import cross_products, make_design, random_structure
    >>> d = make_design("Yield ~ 1 + (1 | Batch)", bm.load_dataset("Dyestuff"))
    >>> s = random_structure(d)
    >>> opt = optimize_theta(s, cross_products(d, s), reml=True)
    >>> round(opt.objective, 3), opt.converged
    (319.654, True)
    """
    start = time.perf_counter()
    objective = compile_at_theta("REML" if reml else "ML", structure, stats)
    compiled = time.perf_counter()

    lower = structure.theta_lower_bounds()
    x0 = structure.theta_initial() if theta0 is None else np.asarray(theta0, dtype=float)
    n_eval = 0

    def fun(x: np.ndarray) -> tuple[float, np.ndarray]:
        nonlocal n_eval
        n_eval += 1
        out = objective(x)
        f, g = out["deviance"], out["gradient"]
        if not np.isfinite(f):
            return np.inf, np.zeros_like(x)
        return float(f), np.asarray(g, dtype=float)

    bounds = [(lo if np.isfinite(lo) else None, None) for lo in lower]
    res = minimize(
        fun,
        x0,
        jac=True,
        method="L-BFGS-B",
        bounds=bounds,
        options={"maxiter": max_iter, "ftol": 1e-15, "gtol": 1e-10},
    )
    x = np.maximum(res.x, lower)
    f, g = fun(x)

    # Projected Newton polish on the free coordinates (those not held at their bound).
    n_newton = 0
    decrement = np.inf
    for _ in range(10):
        free = ~((x <= lower) & (g > 0))
        if not free.any():
            decrement = 0.0
            break
        h = _hessian_by_differences(fun, x, free)
        try:
            step = np.linalg.solve(h, g[free])
        except np.linalg.LinAlgError:
            break
        decrement = float(g[free] @ step) / 2  # predicted decrease of the deviance
        if not np.isfinite(decrement) or decrement < 1e-12:
            break
        trial = x.copy()
        trial[free] = np.maximum(x[free] - step, lower[free])
        ft, gt = fun(trial)
        if not ft < f:
            break
        x, f, g = trial, ft, gt
        n_newton += 1

    pg = _projected_gradient(x, g, lower)
    gnorm = float(np.max(np.abs(pg), initial=0.0))
    converged = bool(np.isfinite(f) and (0 <= decrement < grad_tol or gnorm < grad_tol))
    message = (
        f"L-BFGS-B: {res.message}; {n_newton} Newton step{'s' if n_newton != 1 else ''}; "
        f"largest projected gradient {gnorm:.1e}; predicted further decrease {decrement:.1e}"
    )
    return OptSummary(
        method="REML" if reml else "ML",
        theta_initial=x0,
        theta=x,
        objective=f,
        n_evaluations=n_eval,
        n_newton=n_newton,
        gradient_norm=gnorm,
        converged=converged,
        message=message,
        seconds=time.perf_counter() - start,
        compile_seconds=compiled - start,
    )
