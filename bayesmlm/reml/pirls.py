"""Stage 4a, REML/ML: penalised iteratively reweighted least squares, the conditional modes of a GLMM.

With ``u`` the spherical random effects (``b = Λu``, ``u ~ N(0, I)``) and ``η = offset + Xβ + ZΛu``,
PIRLS minimises the penalised deviance ``Σ devres_i(y_i, μ_i) + ‖u‖²`` over ``u`` (``β`` held: glmer's
``nAGQ = 1`` stage) or over ``u`` and ``β`` together (its ``nAGQ = 0`` stage), by Fisher scoring
with step halving, as lme4's ``pwrssUpdate``. Each step solves the penalised weighted normal
equations, factorised by :func:`bayesmlm.linalg.penalized.factorise` (the first grouping factor level
by level, the others through a dense Schur complement). The iteration stops when the penalised
deviance changes by less than ``1e-12`` relative and the step is below ``1e-9``: far tighter than
lme4's ``1e-7``, because the outer optimiser differentiates the result numerically.

:func:`pirls_as_glmer` repeats what glmer's deviance function does at each evaluation instead: PIRLS
restarted from one fixed linear predictor (stage 1's), stopped at glmer's tolerance, with the
log-determinant taken from the last factorisation, made at the weights before the last step. That is a
slightly different function of the parameters than the converged Laplace approximation (on cbpp its
standard errors differ by up to 1.3%), and it is the one whose optimum and Hessian glmer reports.

The matrix ``M = ZΛ`` is never dense: its sparsity pattern (one entry per row and random term) is
fixed by the design, and only its values change with ``θ``.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np
import scipy.sparse as sp

from bayesmlm.design.covariance import RandomStructure
from bayesmlm.exceptions import FitError
from bayesmlm.families.base import Family, GLMData
from bayesmlm.linalg.penalized import BlockedFactor, factorise

__all__ = ["LME4_TOLERANCE", "GLMMTerms", "PIRLSResult", "fixed_effects_factor", "pirls", "pirls_as_glmer"]

#: glmer's PIRLS stopping rule: relative change of the penalised deviance (``tolPwrss``)
LME4_TOLERANCE = 1e-7


@dataclass(frozen=True, eq=False)
class GLMMTerms:
    """A GLMM in PIRLS form: the family and its data, ``X``, the offset and the random structure.

    Attributes
    ----------
    family : Family
    data : GLMData
    X : ndarray, shape (n, p)
        The fixed-effects columns (the optimiser passes standardised ones).
    offset : ndarray, shape (n,)
    structure : RandomStructure
    """

    family: Family
    data: GLMData
    X: np.ndarray
    offset: np.ndarray
    structure: RandomStructure

    @property
    def n(self) -> int:
        """Observations."""
        return self.X.shape[0]

    @property
    def p(self) -> int:
        """Fixed effects."""
        return self.X.shape[1]

    @cached_property
    def q_first(self) -> int:
        """Random effects of the first factor (levels × terms)."""
        f = self.structure.factors[0]
        return f.n_levels * f.q

    @cached_property
    def q_rest(self) -> int:
        """Random effects of the other factors."""
        return sum(f.n_levels * f.q for f in self.structure.factors[1:])

    @property
    def q(self) -> int:
        """All random effects."""
        return self.q_first + self.q_rest

    @cached_property
    def level_sum(self) -> sp.csr_array:
        """``(m₁, n)`` indicator of the first factor's levels, to sum rows within each level."""
        f = self.structure.factors[0]
        ones = np.ones(self.n)
        return sp.csr_array((ones, (f.codes, np.arange(self.n))), shape=(f.n_levels, self.n))

    def relative_rows(self, theta: np.ndarray) -> list[np.ndarray]:
        """Per factor, each row's ``z_i Λ`` (n, q): the row's entries of ``M = ZΛ``."""
        return [f.Z @ f.relative_factor(theta) for f in self.structure.factors]

    def linear(self, rows: list[np.ndarray], u: np.ndarray) -> np.ndarray:
        """``M u = ZΛu``, from each factor's rows of ``M`` and its level codes."""
        out, start = np.zeros(self.n), 0
        for f, r in zip(self.structure.factors, rows, strict=True):
            width = f.n_levels * f.q
            out += np.einsum("nk,nk->n", r, u[start : start + width].reshape(f.n_levels, f.q)[f.codes])
            start += width
        return out

    def rest_times(self, rows: list[np.ndarray], v: np.ndarray, joint: bool) -> np.ndarray:
        """``Rᵀv`` for the rest columns ``R = [M_R | X]`` (``X`` only when ``joint``)."""
        parts = []
        for f, r in zip(self.structure.factors[1:], rows[1:], strict=True):
            sums = [np.bincount(f.codes, v * r[:, k], f.n_levels) for k in range(f.q)]
            parts.append(np.column_stack(sums).reshape(-1))
        if joint:
            parts.append(self.X.T @ v)
        return np.concatenate(parts) if parts else np.zeros(0)

    def rest_blocks(
        self, rows: list[np.ndarray], w: np.ndarray, joint: bool
    ) -> tuple[np.ndarray, np.ndarray]:
        """``C = RᵀWM₁`` as ``(r, m₁, q₁)`` and ``D = RᵀWR`` as ``(r, r)``, by counting within levels.

        Every block is a weighted cross-tabulation of two factors' level codes (``np.bincount`` over
        the rows), so the cost is that of the rows plus the size of the blocks, never a dense
        ``n × r`` matrix.
        """
        first, rest = self.structure.factors[0], self.structure.factors[1:]
        m1, q1 = first.n_levels, first.q
        widths = [f.n_levels * f.q for f in rest] + ([self.p] if joint else [])
        starts = np.concatenate([[0], np.cumsum(widths)]).astype(int)
        r = int(starts[-1])
        C, D = np.zeros((r, m1, q1)), np.zeros((r, r))
        # the columns of R as (codes, levels, per-term values): factors, then X as "one level" columns
        cols = [(f.codes, f.n_levels, rr) for f, rr in zip(rest, rows[1:], strict=True)]
        if joint:
            cols.append((np.zeros(self.n, dtype=np.int64), 1, self.X))
        for a, (codes_a, m_a, vals_a) in enumerate(cols):
            qa = vals_a.shape[1]
            wa = w[:, None] * vals_a
            for k in range(qa):
                for t in range(q1):  # coupling with the first factor
                    tab = np.bincount(codes_a * m1 + first.codes, wa[:, k] * rows[0][:, t], m_a * m1)
                    C[starts[a] + k : starts[a + 1] : qa, :, t] = tab.reshape(m_a, m1)
            levels_a = starts[a] + np.arange(m_a) * qa
            for b in range(a + 1):
                codes_b, m_b, vals_b = cols[b]
                qb = vals_b.shape[1]
                for k in range(qa):
                    for t in range(qb):
                        if b == a:  # a factor with itself: one q×q block per level, on the diagonal
                            D[levels_a + k, levels_a + t] = np.bincount(codes_a, wa[:, k] * vals_b[:, t], m_a)
                            continue
                        tab = np.bincount(codes_a * m_b + codes_b, wa[:, k] * vals_b[:, t], m_a * m_b)
                        block = tab.reshape(m_a, m_b)
                        D[starts[a] + k : starts[a + 1] : qa, starts[b] + t : starts[b + 1] : qb] = block
                        D[starts[b] + t : starts[b + 1] : qb, starts[a] + k : starts[a + 1] : qa] = block.T
        return C, D


@dataclass(frozen=True, eq=False)
class PIRLSResult:
    """The conditional modes at one ``(θ, β)`` and what the Laplace approximation needs of them.

    Attributes
    ----------
    u : ndarray, shape (q,)
        Spherical conditional modes (first factor level-major, then the others).
    beta : ndarray, shape (p,)
        The fixed effects (given, or estimated jointly).
    eta, mu, weights : ndarray, shape (n,)
        Linear predictor, mean and IRLS weights at the mode.
    factor : BlockedFactor
        The system factorised at the mode.
    ldL2 : float
        ``log|ΛᵀZᵀWZΛ + I|``.
    aic : float
        ``-2 × log-likelihood`` of the response given the modes (with its constants).
    deviance_residuals : ndarray, shape (n,)
    iterations : int
    """

    u: np.ndarray
    beta: np.ndarray
    eta: np.ndarray
    mu: np.ndarray
    weights: np.ndarray
    factor: BlockedFactor
    ldL2: float
    aic: float
    deviance_residuals: np.ndarray
    iterations: int

    @property
    def laplace_deviance(self) -> float:
        """lme4's Laplace deviance ``ldL2 + ‖u‖² + aic`` (``-2 ×`` the approximate log-likelihood)."""
        return self.ldL2 + float(self.u @ self.u) + self.aic


def _system(terms: GLMMTerms, rows: list[np.ndarray], w: np.ndarray, joint: bool) -> BlockedFactor:
    """Factorise the penalised weighted normal equations at IRLS weights ``w``."""
    rows1 = rows[0]
    m1, q1 = terms.structure.factors[0].n_levels, rows1.shape[1]
    outer = (rows1[:, :, None] * rows1[:, None, :]).reshape(terms.n, q1 * q1) * w[:, None]
    A11 = (terms.level_sum @ outer).reshape(m1, q1, q1) + np.eye(q1)
    C, D = terms.rest_blocks(rows, w, joint)
    D[np.arange(terms.q_rest), np.arange(terms.q_rest)] += 1.0
    return factorise(A11, C, D, terms.q_rest)


def fixed_effects_factor(terms: GLMMTerms, theta: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Lower Cholesky factor of the fixed effects' Schur complement at ``weights`` (lme4's ``RX``ᵀ).

    ``(R_X R_Xᵀ)⁻¹`` is the covariance of the fixed effects given ``θ`` (lme4's ``unsc()``).
    """
    LS = _system(terms, terms.relative_rows(theta), np.asarray(weights), True).LS
    return LS[terms.q_rest :, terms.q_rest :]


def _penalised_deviance(terms: GLMMTerms, eta: np.ndarray, u: np.ndarray, dispersion) -> float:
    mu = terms.family.link.linkinv(eta)
    return float(np.sum(terms.family.deviance_residuals(terms.data, mu, dispersion)) + u @ u)


def _solve_step(terms: GLMMTerms, rows, factor, eta, base, w, mu, d, joint):
    """One Fisher-scoring solve: the new modes (and fixed effects) at weights ``w``."""
    m1, q1 = terms.structure.factors[0].n_levels, rows[0].shape[1]
    wz = w * (eta - base + (terms.data.y - mu) / d)
    rhs1 = (terms.level_sum @ (rows[0] * wz[:, None])).reshape(m1, q1)
    x1, x_rest = factor.solve(rhs1, terms.rest_times(rows, wz, joint))
    new_beta = x_rest[terms.q_rest :] if joint else None
    return np.concatenate([x1.reshape(-1), x_rest[: terms.q_rest]]), new_beta


def pirls_as_glmer(
    terms: GLMMTerms, theta: np.ndarray, beta: np.ndarray, dispersion, eta_start: np.ndarray
) -> PIRLSResult:
    """PIRLS at ``(θ, β)`` as glmer's stage-2 deviance function runs it (see the module docstring).

    Starts from the linear predictor ``eta_start``, takes Fisher steps (halved if the penalised
    deviance rises) until its relative change is below :data:`LME4_TOLERANCE`, and keeps the
    factorisation of the last step (at the weights before it).
    """
    family, data = terms.family, terms.data
    rows = terms.relative_rows(theta)
    fixed = terms.offset + terms.X @ np.asarray(beta, dtype=float)
    eta, u, old = np.asarray(eta_start, dtype=float), np.zeros(terms.q), np.finfo(float).max
    for iteration in range(100):
        mu, d, w = family.irls_weights(data, eta, dispersion)
        factor = _system(terms, rows, w, False)
        new_u, _ = _solve_step(terms, rows, factor, eta, fixed, w, mu, d, False)
        for _ in range(20):
            eta_new = fixed + terms.linear(rows, new_u)
            pdev = _penalised_deviance(terms, eta_new, new_u, dispersion)
            if iteration == 0 or (np.isfinite(pdev) and pdev <= old):
                break
            new_u = (u + new_u) / 2
        u, eta = new_u, eta_new
        if not np.isfinite(pdev):
            raise FitError("penalised IRLS: the penalised deviance is not finite")
        if abs((old - pdev) / pdev) < LME4_TOLERANCE:
            break
        old = pdev
    else:
        raise FitError("penalised IRLS (glmer's) did not converge in 100 iterations")
    mu = family.link.linkinv(eta)
    devres = family.deviance_residuals(data, mu, dispersion)
    aic = -2.0 * float(np.sum(family.loglik_rows(data, mu, dispersion)))
    _, _, w = family.irls_weights(data, eta, dispersion)
    return PIRLSResult(
        u, np.asarray(beta, dtype=float), eta, mu, w, factor, factor.logdet, aic, devres, iteration
    )


def pirls(
    terms: GLMMTerms,
    theta: np.ndarray,
    beta: np.ndarray,
    dispersion: float | None = None,
    u_start: np.ndarray | None = None,
    joint: bool = False,
    max_iter: int = 100,
) -> PIRLSResult:
    """Find the conditional modes ``u`` at ``θ`` (and ``β`` too when ``joint``).

    Parameters
    ----------
    terms : GLMMTerms
    theta : ndarray
        Relative covariance parameters (the random effects' Cholesky factor entries).
    beta : ndarray
        Fixed effects: held when ``joint`` is false, the starting value otherwise.
    dispersion : float, optional
        The family's dispersion (the negative binomial's ``θ``).
    u_start : ndarray, optional
        Starting modes (zeros by default; a nearby solution makes it converge in two steps).
    joint : bool
        Estimate ``β`` with ``u`` (lme4's ``nAGQ = 0``).
    max_iter : int

    Returns
    -------
    PIRLSResult

    Raises
    ------
    FitError
        If the iteration does not converge or the penalised deviance becomes non-finite.
    """
    family, data = terms.family, terms.data
    rows = terms.relative_rows(theta)
    u = np.zeros(terms.q) if u_start is None else np.array(u_start, dtype=float)
    beta = np.asarray(beta, dtype=float).copy()
    fixed = terms.offset + terms.X @ beta

    def predictor(u_vec, b_vec):
        base = terms.offset + terms.X @ b_vec if joint else fixed
        return base + terms.linear(rows, u_vec)

    eta = predictor(u, beta)
    pdev = _penalised_deviance(terms, eta, u, dispersion)
    done, steps = False, 0
    for _ in range(max_iter + 1):
        mu, d, w = family.irls_weights(data, eta, dispersion)
        factor = _system(terms, rows, w, joint)
        if done:
            break
        steps += 1
        base = terms.offset if joint else fixed
        new_u, new_beta = _solve_step(terms, rows, factor, eta, base, w, mu, d, joint)
        new_beta = new_beta if joint else beta
        step_u, step_b = new_u - u, new_beta - beta
        for _ in range(40):  # step halving
            eta_try = predictor(u + step_u, beta + step_b)
            pdev_try = _penalised_deviance(terms, eta_try, u + step_u, dispersion)
            if np.isfinite(pdev_try) and pdev_try <= pdev + 1e-12 * abs(pdev):
                break
            step_u, step_b = step_u / 2, step_b / 2
        else:
            raise FitError("penalised IRLS: step halving failed to reduce the penalised deviance")
        change = abs(pdev - pdev_try)
        largest = max(np.max(np.abs(step_u), initial=0.0), np.max(np.abs(step_b), initial=0.0))
        u, beta, eta, pdev = u + step_u, beta + step_b, eta_try, pdev_try
        done = change < 1e-12 * (abs(pdev) + 1.0) and largest < 1e-9 * (1.0 + np.max(np.abs(u), initial=0.0))
    else:
        raise FitError(f"penalised IRLS did not converge in {max_iter} iterations")
    devres = family.deviance_residuals(data, mu, dispersion)
    aic = -2.0 * float(np.sum(family.loglik_rows(data, mu, dispersion)))
    return PIRLSResult(u, beta, eta, mu, w, factor, factor.logdet, aic, devres, steps)
