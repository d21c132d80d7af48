"""Stage 4a, REML/ML: lme4's profiled deviance and its exact gradient, as a function of theta.

With the blocked factorisation at theta (:func:`bayesmlm.linalg.factorize.factorize`): ``log|L|²`` its
log-determinant for the random effects, ``log|R_X|²`` for the fixed effects and ``r²`` the penalised
residual sum of squares, the profiled deviances (``σ`` and ``β`` profiled out) are::

    ML:    log|L|² + n (1 + log(2π r² / n))
    REML:  log|L|² + log|R_X|² + (n − p) (1 + log(2π r² / (n − p)))

each less ``Σ log w_i`` for prior weights (lme4's ``ldW``; the statistics are then the weighted ones,
:mod:`bayesmlm.design.crossprod`).

Both are ``Σ_j log|A_j| + Σ_i ω_i log L_ii²`` plus a constant, with weights ``ω`` of 1 on the other
factors' rows, 1 (REML) or 0 (ML) on ``R_X``'s and ``n − p`` or ``n`` on ``r``'s, so their gradient is
:func:`~bayesmlm.linalg.factorize.logdiag_gradient` with those weights. Everything is NumPy and LAPACK:
a new model structure costs no compilation, and a fresh process none either.

:func:`profiled_deviance` is the objective, :func:`deviance_and_gradient` the pair the optimiser uses,
and :func:`compile_at_theta` binds either to one data set (its layout, :func:`blocked_system`, is
analysed once).
"""

from __future__ import annotations

import math

import numpy as np

from bayesmlm.design.covariance import RandomStructure
from bayesmlm.design.crossprod import CrossProducts
from bayesmlm.exceptions import ArgumentError, FitError
from bayesmlm.linalg.factorize import BlockedFactor, factorize, logdiag_gradient
from bayesmlm.linalg.system import BlockedSystem, blocked_system

__all__ = ["compile_at_theta", "deviance_and_gradient", "deviance_weights", "profiled_deviance"]


def deviance_weights(system: BlockedSystem, reml: bool) -> np.ndarray:
    """Return the weights ``ω`` of the trailing rows' ``log L_ii²`` in the deviance (module docstring)."""
    omega = np.ones(system.n_trailing)
    omega[system.n_rest : system.n_rest + system.p] = 1.0 if reml else 0.0
    omega[-1] = system.n - system.p if reml else system.n
    return omega


def _deviance(factor: BlockedFactor, reml: bool) -> float:
    system = factor.system
    if factor.L is None:
        return math.inf
    d = factor.log_diagonal
    dof = system.n - system.p if reml else system.n
    dev = factor.logdet_first + float(np.sum(d[: system.n_rest]))
    dev += dof * (1.0 + math.log(2.0 * math.pi / dof))
    dev += dof * float(d[-1])
    if reml:
        dev += float(np.sum(d[system.n_rest : system.n_rest + system.p]))
    dev -= system.log_weights  # lme4's - ldW: the Jacobian of the prior weights
    return dev if math.isfinite(dev) else math.inf


def profiled_deviance(
    theta: np.ndarray, structure: RandomStructure, stats: CrossProducts, reml: bool = True
) -> float:
    """lme4's profiled deviance (ML) or REML criterion at ``theta``: ``-2 ×`` the (restricted) log-likelihood.

    Parameters
    ----------
    theta : ndarray
        Relative covariance parameters for the columns ``stats`` was formed in.
    structure : RandomStructure
    stats : CrossProducts
    reml : bool
        REML criterion if true, ML deviance otherwise.

    Returns
    -------
    float
        ``inf`` where the system is degenerate (a response fitted exactly).

    Examples
    --------
    >>> import bayesmlm as bm
    >>> from bayesmlm.design import cross_products, make_design, random_structure
    >>> d = make_design("Yield ~ 1 + (1 | Batch)", bm.load_dataset("Dyestuff"))
    >>> s = random_structure(d)
    >>> round(profiled_deviance(np.array([0.848327]), s, cross_products(d, s)), 2)  # lme4: 319.65
    319.65
    """
    return _deviance(factorize(theta, blocked_system(structure, stats)), reml)


def deviance_and_gradient(theta: np.ndarray, system: BlockedSystem, reml: bool) -> tuple[float, np.ndarray]:
    """Return the profiled deviance at ``theta`` and its exact gradient (zeros where it is ``inf``)."""
    factor = factorize(theta, system)
    dev = _deviance(factor, reml)
    if not math.isfinite(dev):
        return math.inf, np.zeros(system.n_theta)
    return dev, logdiag_gradient(factor, deviance_weights(system, reml))


def decomposition_at(theta: np.ndarray, system: BlockedSystem) -> dict[str, np.ndarray | float]:
    """Return lme4's pieces at ``theta``: ``log|L|²``, ``log|R_X|²``, the lower ``R_X`` and ``r²``.

    ``R_X R_Xᵀ`` is ``X'V⁻¹X σ²`` (so ``(R_X R_Xᵀ)⁻¹ σ²`` is the fixed effects' covariance); used by
    Satterthwaite's df (:mod:`bayesmlm.reml.satterthwaite`).
    """
    factor = factorize(theta, system)
    if factor.L is None:
        raise FitError("the mixed-model equations are degenerate at this theta (a response fitted exactly)")
    d, rest, p = factor.log_diagonal, system.n_rest, system.p
    return {
        "logdet_L": factor.logdet_first + float(np.sum(d[:rest])),
        "logdet_RX": float(np.sum(d[rest : rest + p])),
        "R_X": np.tril(factor.L[rest : rest + p, rest : rest + p]),
        "r2": float(np.exp(d[-1])),
    }


def compile_at_theta(kind: str, structure: RandomStructure, stats: CrossProducts):
    """Bind the REML criterion or ML deviance, with its gradient, to one data set: a function of theta.

    The data's layout (:func:`~bayesmlm.linalg.system.blocked_system`, which decides the dense or sparse
    coupling of crossed factors) is analysed once here; nothing is compiled, whatever the structure.

    Parameters
    ----------
    kind : {"REML", "ML", "decomposition"}
    structure : RandomStructure
    stats : CrossProducts

    Returns
    -------
    callable
        ``f(theta)`` returning ``{"deviance": float, "gradient": ndarray}``.

    Examples
    --------
    >>> import bayesmlm as bm
    >>> from bayesmlm.design import cross_products, make_design, random_structure
    >>> d = make_design("Yield ~ 1 + (1 | Batch)", bm.load_dataset("Dyestuff"))
    >>> s = random_structure(d)
    >>> out = compile_at_theta("REML", s, cross_products(d, s))(np.array([0.848327]))
    >>> round(out["deviance"], 2), abs(float(out["gradient"][0])) < 1e-3  # at lme4's optimum
    (319.65, True)
    """
    if kind not in ("REML", "ML", "decomposition"):
        raise ArgumentError(f"kind must be 'REML', 'ML' or 'decomposition', not {kind!r}")
    system, reml = blocked_system(structure, stats), kind == "REML"
    if kind == "decomposition":
        return lambda theta: decomposition_at(np.asarray(theta, dtype=float), system)

    def evaluate(theta: np.ndarray) -> dict[str, np.ndarray | float]:
        dev, grad = deviance_and_gradient(np.asarray(theta, dtype=float), system, reml)
        return {"deviance": dev, "gradient": grad}

    return evaluate
