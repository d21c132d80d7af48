"""Stage 4a, REML/ML: minimise the profiled deviance over theta, honestly, and record how it went.

The deviance and its exact gradient come from :func:`~bayesmlm.reml.objective.deviance_and_gradient`
(NumPy and LAPACK on the data's blocked layout, analysed once; nothing is compiled). It is minimised in the
internal parameterisation of the statistics (``stats.scaling``, :mod:`bayesmlm.design.scaling`:
centred, unit-spread columns), where the optimum does not depend on the origin or the units of a
covariate, and from its identity start (random effects as spread as the residuals). Each local search
is L-BFGS-B with the diagonal of ``Λ`` bounded below by 0, as lme4 does, then:

- off every bound it stopped on, the deviance is evaluated (:data:`~bayesmlm.reml.convergence.PROBES`);
  if it is lower there the search restarts from that point (from ``θ = 1`` L-BFGS-B's first step can land
  on ``θ = 0``, where the gradient vanishes by symmetry and it would stop);
- a few projected Newton steps polish the optimum, so estimates agree with lme4's to its printed digits.

If the best point is on a bound or fails a check, the search is repeated from the identity start, from
the REML optimum (for ML) and from jittered starts, and the lowest deviance kept; every start is
recorded. Convergence is then what :func:`~bayesmlm.reml.convergence.check_convergence` finds there,
whatever the optimiser's message.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import minimize

from bayesmlm.arguments import checked
from bayesmlm.design.covariance import RandomStructure
from bayesmlm.design.crossprod import CrossProducts
from bayesmlm.linalg.system import blocked_system
from bayesmlm.linalg.threads import single_threaded
from bayesmlm.reml.convergence import (
    ConvergenceChecks,
    at_bound,
    check_convergence,
    hessian_by_differences,
    probe_bounds,
)
from bayesmlm.reml.objective import deviance_and_gradient
from bayesmlm.reml.ties import check_ties, representatives, tie_matrix

__all__ = ["BOUNDARY_TOL", "OptSummary", "optimize_theta"]

#: a diagonal entry of Λ below this counts as on the boundary (lme4's ``isSingular`` tolerance)
BOUNDARY_TOL = 1e-4
#: jittered restarts tried when the best point is on a bound or fails a check
N_JITTERED = 4


@dataclass(frozen=True)
class OptSummary:
    """A record of how the optimisation went (in the spirit of MixedModels.jl's ``OptSummary``).

    Attributes
    ----------
    method : str
        ``"REML"`` or ``"ML"``.
    theta_initial, theta : ndarray
        Starting and final relative covariance parameters, for the user's columns (lme4's theta).
    theta_internal : ndarray
        The final theta in the internal parameterisation the statistics were formed in.
    objective : float
        Final deviance (ML) or REML criterion, for the user's data.
    n_evaluations : int
        Objective-and-gradient evaluations, all starts together (each distinct point once).
    n_newton : int
        Newton polishing steps of the best start.
    gradient_norm : float
        Largest gradient component of the free coordinates at the end.
    converged : bool
        Whether every convergence check passed at the end point.
    message : str
        The optimiser's message and what the checks found.
    seconds : float
        Wall time, including the layout analysis.
    setup_seconds : float
        Of which laying out the equations (:func:`~bayesmlm.linalg.system.blocked_system`).
    starts : tuple of dict
        Every start: ``label``, ``theta`` (internal, where it began), ``objective`` reached, ``on_bound``.
    checks : ConvergenceChecks
        The checks at the end point.
    ties : tuple of tuple of int
        Groups of theta entries held equal on the user's scale (:mod:`bayesmlm.reml.ties`).
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
    setup_seconds: float = field(default=0.0)
    theta_internal: np.ndarray | None = None
    starts: tuple[dict, ...] = ()
    checks: ConvergenceChecks | None = None
    ties: tuple[tuple[int, ...], ...] = ()


class _Evaluations:
    """The deviance and its gradient as the optimiser calls them, remembering the latest points.

    L-BFGS-B's last point is evaluated again after it stops, and the Newton polish and the convergence
    checks difference the gradient at the same points; each is computed once.
    """

    def __init__(self, system, reml: bool, keep: int = 64, expand: np.ndarray | None = None):
        self.system, self.reml, self.keep, self.expand = system, reml, keep, expand
        self.count = 0
        self._seen: dict[bytes, tuple[float, np.ndarray]] = {}

    def __call__(self, x: np.ndarray) -> tuple[float, np.ndarray]:
        x = np.asarray(x, dtype=float)
        key = x.tobytes()
        hit = self._seen.get(key)
        if hit is None:
            self.count += 1
            if self.expand is None:
                hit = deviance_and_gradient(x, self.system, self.reml)
            else:  # tied theta: the reduced parameters, chain rule through θ = E φ
                dev, grad = deviance_and_gradient(self.expand @ x, self.system, self.reml)
                hit = (dev, self.expand.T @ grad)
            if len(self._seen) >= self.keep:
                self._seen.pop(next(iter(self._seen)))
            self._seen[key] = hit
        return hit[0], hit[1].copy()


@dataclass
class _Run:
    x: np.ndarray
    f: float
    g: np.ndarray
    n_newton: int
    message: str


def _newton_polish(fun, x, f, g, lower) -> tuple[np.ndarray, float, np.ndarray, int]:
    """Take a few projected Newton steps on the free coordinates (those not held at their bound)."""
    n_newton = 0
    for _ in range(10):
        free = ~(at_bound(x, lower) & (g > 0))
        if not free.any():
            break
        h = hessian_by_differences(fun, x, free)
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
    return x, f, g, n_newton


def _local_search(fun, x0: np.ndarray, lower: np.ndarray, max_iter: int) -> _Run:
    """L-BFGS-B, restarted from off a bound while that lowers the deviance, then a Newton polish."""
    bounds = [(lo if np.isfinite(lo) else None, None) for lo in lower]
    x, messages = np.asarray(x0, dtype=float), []
    for _ in range(6):
        res = minimize(
            fun,
            x,
            jac=True,
            method="L-BFGS-B",
            bounds=bounds,
            options={"maxiter": max_iter, "ftol": 1e-15, "gtol": 1e-10},
        )
        messages.append(str(res.message))
        x = np.maximum(res.x, lower)
        f, g = fun(x)
        better = probe_bounds(fun, x, f, lower) if np.isfinite(f) else None
        if better is None:
            break
        x = better[0]
        messages.append("restarted off a bound")
    x, f, g, n_newton = _newton_polish(fun, x, f, g, lower)
    return _Run(x, f, g, n_newton, "L-BFGS-B: " + "; ".join(messages))


def _jittered_starts(structure: RandomStructure, n: int) -> list[np.ndarray]:
    """Deterministic starts around the identity: diagonal entries × e^N(0, 0.7), off-diagonal N(0, 0.5)."""
    rng = np.random.default_rng(20261201)
    base = structure.theta_initial()
    diagonal = base > 0
    starts = []
    for _ in range(n):
        jitter = np.where(
            diagonal, base * np.exp(rng.normal(0, 0.7, base.size)), rng.normal(0, 0.5, base.size)
        )
        starts.append(jitter)
    return starts


@checked
@single_threaded()
def optimize_theta(
    structure: RandomStructure,
    stats: CrossProducts,
    reml: bool = True,
    theta0: np.ndarray | None = None,
    max_iter: int = 2000,
    grad_tol: float = 1e-6,
    ties: tuple[tuple[int, ...], ...] = (),
) -> OptSummary:
    """Find the theta that minimises the profiled REML criterion or ML deviance.

    Parameters
    ----------
    structure : RandomStructure
    stats : CrossProducts
        Formed in the internal parameterisation (``cross_products(..., scaling=...)``, as
        :class:`bayesmlm.Model` does) or in the data's own columns.
    reml : bool
        REML if true, ML otherwise.
    theta0 : ndarray, optional
        Starting value for the user's columns (lme4's theta); by default the identity of the internal
        parameterisation.
    max_iter : int
        Iteration limit for each L-BFGS-B search.
    grad_tol : float
        Converged when, besides the other checks, the decrease of the deviance that a Newton step
        predicts, or the largest gradient component, is below this.

    Returns
    -------
    OptSummary
        ``theta`` and ``objective`` for the user's columns and data.

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
    system = blocked_system(structure, stats)
    laid_out = time.perf_counter()
    scaling = stats.scaling
    ties = check_ties(structure, ties)
    expand = tie_matrix(structure, scaling, ties) if ties else None
    reps = representatives(structure.n_theta, ties)
    lower = structure.theta_lower_bounds()[reps]
    if theta0 is None:
        x0 = structure.theta_initial()
    else:
        x0 = np.asarray(theta0, dtype=float)
        x0 = scaling.theta_to_internal(structure, x0) if scaling is not None else x0
    x0 = x0[reps]
    fun = _Evaluations(system, reml, expand=expand)
    runs = [("start", x0, _local_search(fun, x0, lower, max_iter))]
    best = runs[0][2]
    first_checks = check_convergence(fun, best.x, best.f, best.g, lower, grad_tol)
    if at_bound(best.x, lower).any() or not first_checks.passed:
        starts = [] if theta0 is None else [("identity", structure.theta_initial())]
        if not reml:
            remled = optimize_theta(structure, stats, reml=True, ties=ties).theta_internal
            starts.append(("REML optimum", remled))
        starts += [(f"jittered {k + 1}", s) for k, s in enumerate(_jittered_starts(structure, N_JITTERED))]
        for label, x_start in starts:
            x_start = np.asarray(x_start)[reps]
            run = _local_search(fun, x_start, lower, max_iter)
            runs.append((label, x_start, run))
            if run.f < best.f - 1e-10 * max(1.0, abs(best.f)):
                best = run
    same = best is runs[0][2]
    checks = first_checks if same else check_convergence(fun, best.x, best.f, best.g, lower, grad_tol)
    n, p = stats.n, stats.p
    dev = best.f if scaling is None else scaling.deviance_to_user(best.f, n, p, reml)
    full = (lambda x: x) if expand is None else (lambda x: expand @ x)
    if scaling is None:
        to_user = full
    else:
        to_user = lambda t: scaling.theta_to_user(structure, full(t))  # noqa: E731
    record = tuple(
        {
            "label": label,
            "theta": [float(v) for v in x_start],
            "objective": float(run.f if scaling is None else scaling.deviance_to_user(run.f, n, p, reml)),
            "on_bound": bool(at_bound(run.x, lower).any()),
        }
        for label, x_start, run in runs
    )
    message = (
        f"{best.message}; {best.n_newton} Newton step{'s' if best.n_newton != 1 else ''}; "
        f"{len(runs)} start{'s' if len(runs) != 1 else ''}; largest gradient {checks.gradient:.1e}; "
        f"predicted further decrease {checks.decrement:.1e}"
        + ("" if checks.passed else "; " + "; ".join(checks.failures))
    )
    return OptSummary(
        method="REML" if reml else "ML",
        theta_initial=to_user(x0),
        theta=to_user(best.x),
        objective=float(dev),
        n_evaluations=fun.count,
        n_newton=best.n_newton,
        gradient_norm=checks.gradient,
        converged=checks.passed,
        message=message,
        seconds=time.perf_counter() - start,
        setup_seconds=laid_out - start,
        theta_internal=full(best.x),
        starts=record,
        checks=checks,
        ties=ties,
    )
