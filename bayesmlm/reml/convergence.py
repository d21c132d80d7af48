"""Stage 4a, REML/ML: honest convergence checks at an optimum of the profiled deviance.

As lme4's ``checkConv`` does, and more: a point counts as converged only if

- the gradient of the free coordinates (those not held at a bound) is small, measured by the decrease
  a Newton step predicts (``gᵀ H⁻¹ g / 2``, in deviance units) or by its largest component;
- the Hessian of the free coordinates (central differences of the exact gradient) is positive
  definite, so the point is a minimum and not a saddle or a ridge;
- every coordinate held at a bound (a zero variance, a correlation of ±1) wants to stay there: its
  gradient does not point inside, and the deviance just off the bound is not lower. The deviance is
  even in a diagonal entry of Λ when the rest of its column is zero, so its gradient there is exactly
  zero and says nothing: only evaluating the deviance beside the bound tells a minimum from a maximum.

Whatever an optimiser's own message says, the fit reports what these checks found.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

__all__ = [
    "PROBES",
    "ConvergenceChecks",
    "at_bound",
    "check_convergence",
    "hessian_by_differences",
    "not_converged_message",
    "probe_bounds",
]

#: how far off a bound the deviance is evaluated (theta is of order one in the internal parameterisation)
PROBES = (1e-4, 1e-3, 1e-2, 0.1, 0.3, 1.0)
#: a point is on a bound when a diagonal entry of Λ is within this of 0
AT_BOUND = 1e-8

Objective = Callable[[np.ndarray], tuple[float, np.ndarray]]


def at_bound(x: np.ndarray, lower: np.ndarray) -> np.ndarray:
    """Which coordinates sit on their (finite) lower bound."""
    return np.isfinite(lower) & (x <= lower + AT_BOUND)


def hessian_by_differences(fun: Objective, x: np.ndarray, free: np.ndarray, h: float = 1e-5) -> np.ndarray:
    """Hessian of the free coordinates by central differences of the exact gradient (symmetrised)."""
    idx = np.flatnonzero(free)
    hess = np.empty((len(idx), len(idx)))
    for k, i in enumerate(idx):
        up, down = x.copy(), x.copy()
        up[i] += h
        down[i] -= h
        hess[:, k] = (fun(up)[1][idx] - fun(down)[1][idx]) / (2 * h)
    return (hess + hess.T) / 2


def probe_bounds(
    fun: Objective, x: np.ndarray, f: float, lower: np.ndarray, probes=PROBES
) -> tuple[np.ndarray, float] | None:
    """Evaluate the deviance just off each bound; return the best point lower than ``f``, or None."""
    best: tuple[np.ndarray, float] | None = None
    margin = 1e-10 * max(1.0, abs(f))
    for j in np.flatnonzero(at_bound(x, lower)):
        for delta in probes:
            trial = x.copy()
            trial[j] = lower[j] + delta
            ft = fun(trial)[0]
            if ft < f - margin and (best is None or ft < best[1]):
                best = (trial, ft)
    return best


@dataclass(frozen=True)
class ConvergenceChecks:
    """What the convergence checks found at a point.

    Attributes
    ----------
    gradient : float
        Largest gradient component of the free coordinates.
    decrement : float
        Decrease of the deviance a Newton step on the free coordinates predicts.
    min_eigenvalue : float
        Smallest eigenvalue of their Hessian, relative to the largest (NaN without free coordinates).
    on_bound : tuple of int
        Coordinates held at a bound.
    failures : tuple of str
        One sentence per failed check (empty: converged).
    """

    gradient: float
    decrement: float
    min_eigenvalue: float
    on_bound: tuple[int, ...]
    failures: tuple[str, ...]

    @property
    def passed(self) -> bool:
        """Whether every check passed."""
        return not self.failures


def check_convergence(
    fun: Objective, x: np.ndarray, f: float, g: np.ndarray, lower: np.ndarray, tol: float = 1e-6
) -> ConvergenceChecks:
    """Run the checks of the module docstring at ``x`` (deviance ``f``, gradient ``g``)."""
    failures = []
    bound = at_bound(x, lower)
    inward = bound & (g < -tol)  # held at the bound although the deviance falls inside
    if inward.any():
        failures.append(
            f"the deviance still falls away from the bound in {int(inward.sum())} coordinate(s) held there"
        )
    if not np.isfinite(f) or not np.all(np.isfinite(g)):
        failures.append("the deviance or its gradient is not finite at the end point")
    free = ~bound
    gradient = float(np.max(np.abs(g[free]), initial=0.0))
    decrement, min_eig = 0.0, float("nan")
    if free.any() and np.isfinite(f):
        H = hessian_by_differences(fun, x, free)
        eig = np.linalg.eigvalsh(H)
        scale = max(1.0, float(np.max(np.abs(eig))))
        min_eig = float(eig[0] / scale)
        if not np.all(np.isfinite(eig)) or eig[0] <= 1e-9 * scale:
            failures.append(
                "the Hessian of the deviance is not positive definite at the end point (a saddle, a ridge "
                "or a flat direction: some variance parameters are not identified by the data)"
            )
        else:
            step = np.linalg.solve(H, g[free])
            decrement = float(g[free] @ step) / 2
    if failures == [] and not (decrement < tol or gradient < tol):
        failures.append(
            f"the gradient is not small: a Newton step would lower the deviance by {decrement:.2g} "
            f"(largest gradient component {gradient:.2g})"
        )
    if bound.any() and np.isfinite(f) and probe_bounds(fun, x, f, lower, PROBES[:4]) is not None:
        failures.append("the deviance is lower just off a bound the optimiser stopped on")
    return ConvergenceChecks(
        gradient, decrement, min_eig, tuple(int(j) for j in np.flatnonzero(bound)), tuple(failures)
    )


def not_converged_message(method: str, checks: ConvergenceChecks | None, n_starts: int) -> str:
    """Say what failed in a fit's convergence checks, and what to do (the ConvergenceWarning)."""
    failed = "; ".join(checks.failures) if checks is not None else "unknown"
    return (
        f"the {method} fit did not pass its convergence checks: {failed} (after {max(n_starts, 1)} starts). "
        "The estimates may not be the optimum: simplify the random-effects structure (drop a correlation "
        "or a slope whose variance is near 0), or refit from another start with fit_reml(theta0=...); "
        "fit.opt.starts lists what was tried"
    )
