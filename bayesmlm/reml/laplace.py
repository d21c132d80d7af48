"""Stage 4a, REML/ML: the Laplace and adaptive Gauss-Hermite deviances of a GLMM, functions of the parameters.

lme4's Laplace deviance (``glmer``, ``nAGQ = 1``) at ``(θ, β)`` is

    ldL2 + ‖ũ‖² + aic(y, μ(ũ))

with ``ũ`` the conditional modes from penalised IRLS (:mod:`bayesmlm.reml.pirls`), ``ldL2`` the
log-determinant of ``ΛᵀZᵀWZΛ + I`` at the modes and ``aic`` ``-2 ×`` the family's log-likelihood with
its constants, so ``-deviance / 2`` is glmer's ``logLik``. For a model with one scalar random effect,
adaptive Gauss-Hermite quadrature (``nAGQ = k``) integrates each level's effect over ``k`` nodes
placed at its mode and scaled by its conditional sd (lme4's ``glmerAGQ``):

    Σ_j devc_j(ũ_j) + ldL2 − 2 Σ_j log Σ_k w_k exp(z_k²/2 − (devc_j(ũ_j + z_k/L_j) − devc_j(ũ_j)) / 2)

where ``devc_j`` is level ``j``'s deviance residuals plus ``u_j²`` and ``(z_k, w_k)`` the rule for the
standard normal. It uses deviance residuals, so it lacks the saturated log-likelihood that the
Laplace deviance keeps; :class:`Deviance` adds it back (``-2 × saturated``), so both report the same
log-likelihood scale (lme4's nAGQ > 1 ``logLik`` is ours minus the saturated log-likelihood).

The parameters are ``x = [θ, β̃, log ν]``: the relative covariance parameters, the fixed effects of
the standardised predictors (:class:`Standardisation`), and the log of the negative binomial's shape
``ν`` when it is estimated.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from bayesmlm.exceptions import FitError
from bayesmlm.reml.pirls import GLMMTerms, PIRLSResult, pirls, pirls_as_glmer

__all__ = ["MAX_AGQ", "Deviance", "Standardisation", "gauss_hermite"]

#: the most quadrature points accepted (lme4's limit)
MAX_AGQ = 25


def gauss_hermite(k: int) -> tuple[np.ndarray, np.ndarray]:
    """Nodes and weights of the ``k``-point Gauss-Hermite rule for the standard normal (weights sum to 1).

    Examples
    --------
    >>> z, w = gauss_hermite(3)
    >>> z.round(4).tolist(), round(float(w.sum()), 12), round(float(w @ z**2), 12)
    ([-1.7321, 0.0, 1.7321], 1.0, 1.0)
    """
    z, w = np.polynomial.hermite_e.hermegauss(k)
    return z, w / np.sqrt(2 * np.pi)


@dataclass(frozen=True)
class Standardisation:
    """Predictors centred and scaled for the optimiser, and the map back: ``β = J β̃``.

    With an intercept every other column is centred at its mean and divided by its sd (a constant
    column is left as it is); without one, columns are only scaled. The fit is the same (the
    deviance depends on ``Xβ`` only), but the optimiser sees a problem of the same shape whatever the
    units of the predictors, so a shifted or rescaled covariate gives the same fit.
    """

    centre: np.ndarray
    scale: np.ndarray
    intercept: int | None

    @classmethod
    def of(cls, X: np.ndarray, names) -> Standardisation:
        """Build the standardisation of the columns of ``X`` (named ``names``)."""
        p = X.shape[1]
        intercept = list(names).index("Intercept") if "Intercept" in names else None
        sd = X.std(axis=0) if len(X) > 1 else np.ones(p)
        scale = np.where(sd > 0, sd, 1.0)
        centre = X.mean(axis=0) if intercept is not None else np.zeros(p)
        if intercept is not None:
            centre[intercept], scale[intercept] = 0.0, 1.0
        centre = np.where(sd > 0, centre, 0.0)
        return cls(centre, scale, intercept)

    def apply(self, X: np.ndarray) -> np.ndarray:
        """Return the standardised columns."""
        return (X - self.centre) / self.scale

    @property
    def jacobian(self) -> np.ndarray:
        """``J`` with ``β = J β̃``."""
        J = np.diag(1 / self.scale)
        if self.intercept is not None:
            J[self.intercept] -= self.centre / self.scale
            J[self.intercept, self.intercept] = 1.0
        return J


class Deviance:
    """The (approximate) deviance of a GLMM as a function of ``x = [θ, β̃, log ν]``.

    Parameters
    ----------
    terms : GLMMTerms
        With the standardised ``X``.
    n_agq : int
        1: Laplace; 2 to :data:`MAX_AGQ`: adaptive Gauss-Hermite quadrature.
    dispersion : float, optional
        The negative binomial's shape, held fixed; ``None`` with ``estimate_dispersion`` reads it
        from ``x``.
    estimate_dispersion : bool
        Whether the last entry of ``x`` is ``log ν``.
    eta_start : ndarray, optional
        Evaluate the Laplace deviance as glmer does (:func:`~bayesmlm.reml.pirls.pirls_as_glmer`,
        PIRLS restarted from this linear predictor at every evaluation); otherwise the modes are
        converged and the factorisation made at them.
    """

    def __init__(
        self, terms: GLMMTerms, n_agq: int, dispersion=None, estimate_dispersion=False, eta_start=None
    ):
        self.terms = terms
        self.n_agq = n_agq
        self.n_theta = terms.structure.n_theta
        self.dispersion = dispersion
        self.estimate_dispersion = estimate_dispersion
        self.nodes = gauss_hermite(n_agq) if n_agq > 1 else None
        self.n_evaluations = 0
        self.eta_start = eta_start
        self._u: np.ndarray | None = None

    def split(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray, float | None]:
        """Return ``(θ, β̃, ν)`` of a parameter vector."""
        k = self.n_theta
        p = self.terms.p
        dispersion = float(np.exp(x[k + p])) if self.estimate_dispersion else self.dispersion
        return x[:k], x[k : k + p], dispersion

    def modes(self, x: np.ndarray) -> PIRLSResult:
        """Penalised IRLS at ``x`` (warm-started from the last modes)."""
        theta, beta, dispersion = self.split(x)
        if self.eta_start is not None:
            return pirls_as_glmer(self.terms, theta, beta, dispersion, self.eta_start)
        result = pirls(self.terms, theta, beta, dispersion, u_start=self._u)
        self._u = result.u
        return result

    def __call__(self, x: np.ndarray) -> float:
        """Evaluate the deviance at ``x`` (``inf`` where penalised IRLS fails)."""
        self.n_evaluations += 1
        try:
            result = self.modes(np.asarray(x, dtype=float))
        except (FitError, np.linalg.LinAlgError, FloatingPointError):
            self._u = None
            return np.inf
        value = result.laplace_deviance if self.nodes is None else self._agq(x, result)
        return float(value) if np.isfinite(value) else np.inf

    def _agq(self, x: np.ndarray, r: PIRLSResult) -> float:
        """Adaptive Gauss-Hermite deviance (one scalar random effect), on the Laplace's scale."""
        terms, family = self.terms, self.terms.family
        _, _, dispersion = self.split(x)
        factor = terms.structure.factors[0]
        codes = factor.codes
        lam = float(factor.relative_factor(x[: self.n_theta])[0, 0])
        zcol = factor.Z[:, 0] * lam
        fixed = r.eta - zcol * r.u[codes]
        sd = 1.0 / r.factor.L1[:, 0, 0]
        devc0 = np.bincount(codes, r.deviance_residuals, factor.n_levels) + r.u**2
        mult = np.zeros(factor.n_levels)
        for z, w in zip(*self.nodes, strict=True):
            if z == 0.0:
                mult += w
                continue
            u = r.u + z * sd
            mu = family.link.linkinv(fixed + zcol * u[codes])
            res = family.deviance_residuals(terms.data, mu, dispersion)
            devc = np.bincount(codes, res, factor.n_levels) + u**2
            mult += w * np.exp(z**2 / 2 - (devc - devc0) / 2)
        deviance = float(np.sum(devc0) + r.ldL2 - 2 * np.sum(np.log(mult)))
        return deviance - 2 * family.saturated_loglik(terms.data, dispersion)
