"""Stage 4b, Bayes: the collapsed log posterior of a one-factor model and its gradient, in numpy.

The same posterior density as :func:`bayesmlm.bayes.collapsed.build_collapsed_model`'s PyMC model, in
the same unconstrained coordinates (PyMC's value variables: ``fixed_centered``, each correlated block's
packed Cholesky factor with its diagonal on the log scale, each single term's ``log sd``, ``log σ``),
with the gradient written out, so that NUTS can run on it with no PyTensor graph to build or compile
(:mod:`bayesmlm.bayes.direct`). ``tests/test_direct_density.py`` holds value and gradient to PyMC's.

With one grouping factor, levels ``j``, ``A_j = Z_jᵀZ_j``, ``B_j = Z_jᵀX_j``, ``g_j = Z_jᵀy_j``,
``Λ = T / σ`` (``T`` the block-diagonal Cholesky factor of the effects' covariance) and
``M_j = I + ΛᵀA_jΛ``, ``h_j = g_j − B_jβ``, ``c_j = Λᵀh_j``, ``u_j = M_j⁻¹c_j``::

    ℓ = −½ [n log 2π + 2n log σ + Σ_j log|M_j| + (‖y − Xβ‖² − Σ_j c_jᵀu_j) / σ²]
    ∂ℓ/∂Λ = Σ_j [−A_jΛM_j⁻¹ + (h_j u_jᵀ − A_jΛ u_j u_jᵀ) / σ²]
    ∂ℓ/∂β = (Xᵀy − XᵀXβ − Σ_j B_jᵀΛu_j) / σ²
    ∂ℓ/∂σ = −n/σ + (‖y − Xβ‖² − Σ_j c_jᵀu_j) / σ³ − Σ (∂ℓ/∂Λ ⊙ Λ) / σ

All of it is vectorised over the levels, so a gradient costs O(levels × q³) and nothing depends on
the rows. The LKJ prior of a correlated block is PyMC's density of the Cholesky factor of the
covariance (its normalising constant left out: it does not depend on the parameters).
"""

from __future__ import annotations

import dataclasses

import numpy as np

from bayesmlm.bayes.prior_density import PriorDensity
from bayesmlm.bayes.prior_set import PriorSet
from bayesmlm.design.covariance import RandomStructure
from bayesmlm.design.crossprod import CrossProducts
from bayesmlm.design.names import parameter_names

__all__ = ["Block", "DirectDensity", "direct_plan"]

_LOG_2PI = float(np.log(2.0 * np.pi))
_SUPPORTED = {"Normal", "StudentT", "HalfNormal", "HalfStudentT", "HalfCauchy", "Exponential"}


def direct_plan(structure: RandomStructure, priors: PriorSet) -> tuple[bool, str]:
    """Whether :class:`DirectDensity` can write this collapsed posterior, and why not if it cannot.

    Examples
    --------
    >>> import bayesmlm as bm
    >>> m = bm.Model("Reaction ~ Days + (Days | Subject)", bm.load_dataset("sleepstudy"))
    >>> direct_plan(m.structure, m.prior_set)
    (True, 'one grouping factor')
    """
    if len(structure.factors) > 1:
        return False, "more than one grouping factor"
    families = {priors.sigma.family} | {p.family for p in priors.fixed.values()}
    families |= {p.family for p in priors.sd.values()}
    other = sorted(families - _SUPPORTED)
    if other:
        return False, f"no numpy density for the prior families {', '.join(other)}"
    return True, "one grouping factor"


@dataclasses.dataclass(frozen=True)
class Block:
    """One covariance block of the factor and where its coordinates sit in the parameter vector."""

    label: str
    start: int  # first term of the block within the factor
    size: int
    offset: int  # first coordinate in the parameter vector
    sd: PriorDensity
    eta: float | None  # LKJ shape for a correlated block

    @property
    def width(self) -> int:
        """Number of coordinates: ``size (size + 1) / 2`` for a correlated block, 1 for one term."""
        return self.size * (self.size + 1) // 2 if self.eta is not None else 1

    @property
    def name(self) -> str:
        """PyMC's name of the value variable."""
        return f"chol__{self.label}" if self.eta is not None else f"sd__{self.label}_log__"


class DirectDensity:
    """The collapsed log posterior ``x ↦ (log p, ∇ log p)`` of a one-factor Gaussian model.

    Parameters
    ----------
    fixed_names : sequence of str
        The fixed-effect columns, in the order of the statistics.
    structure : RandomStructure
    priors : PriorSet
        On the sampled scale (already divided by the response's scale).
    stats : CrossProducts
        :func:`~bayesmlm.bayes.collapsed.centred_cross_products` of the sampled design.
    """

    def __init__(self, fixed_names, structure: RandomStructure, priors: PriorSet, stats: CrossProducts):
        ok, why = direct_plan(structure, priors)
        if not ok:
            raise ValueError(f"the direct density does not apply: {why}")
        (self.factor,) = structure.factors
        self.fixed_names = list(fixed_names)
        self.p = len(self.fixed_names)
        self.q = self.factor.q
        self.stats = stats
        self.shift_index = self.fixed_names.index("Intercept") if stats.response_shift else None
        self.fixed_prior = PriorDensity([priors.fixed[n] for n in self.fixed_names])
        self.sigma_prior = PriorDensity([priors.sigma])
        sd_name, cor_name = parameter_names(structure)
        blocks, offset = [], self.p
        for label, start, size in self.factor.blocks():
            terms = self.factor.term_names[start : start + size]
            sd = PriorDensity([priors.sd[sd_name[(label, t)]] for t in terms])
            eta = float(priors.cor[cor_name[label]].eta) if size > 1 else None
            block = Block(label, start, size, offset, sd, eta)
            blocks.append(block)
            offset += block.width
        self.blocks = tuple(blocks)
        self.ndim = offset + 1
        self._eye = np.eye(self.q)
        # where each coordinate of the blocks sits in T, and which are diagonal (log scale)
        rows, cols, coords = [], [], []
        for blk in self.blocks:
            r, c = np.tril_indices(blk.size) if blk.eta is not None else (np.zeros(1, int), np.zeros(1, int))
            rows.append(r + blk.start)
            cols.append(c + blk.start)
            coords.append(np.arange(blk.offset, blk.offset + blk.width))
        self._rows, self._cols = np.concatenate(rows), np.concatenate(cols)
        self._coords = np.concatenate(coords)
        self._diag = self._rows == self._cols

    # -- coordinates ---------------------------------------------------------------------------
    def unpack(self, x: np.ndarray):
        """Return ``(β, T, σ)`` at the point ``x`` (``T`` the q×q block-diagonal Cholesky factor)."""
        T = np.zeros((self.q, self.q))
        v = x[self._coords]
        v[self._diag] = np.exp(v[self._diag])
        T[self._rows, self._cols] = v
        return x[: self.p], T, float(np.exp(x[-1]))

    # -- the density ---------------------------------------------------------------------------
    def __call__(self, x: np.ndarray) -> tuple[float, np.ndarray]:
        """Log posterior (up to the LKJ normalising constants) and its gradient at ``x``."""
        beta, T, sigma = self.unpack(x)
        grad = np.empty(self.ndim)
        ll, g_beta, g_T, g_sigma = self.loglik(beta, T, sigma)
        lp_fixed, g_fixed = self.fixed_prior(beta)
        grad[: self.p] = g_beta + g_fixed
        total = ll + lp_fixed
        for b in self.blocks:
            s = slice(b.start, b.start + b.size)
            if b.eta is None:
                lp, g = b.sd(T[b.start, b.start : b.start + 1])
                g_T[b.start, b.start] += g[0]
            else:
                lp, g = _lkj_cholesky(T[s, s], b.eta, b.sd)
                g_T[s, s] += g
            total += lp
        diag = self._diag
        g_v = g_T[self._rows, self._cols]
        g_v[diag] = g_v[diag] * T[self._rows[diag], self._cols[diag]] + 1.0  # exp transform and its Jacobian
        grad[self._coords] = g_v
        total += x[self._coords[diag]].sum()
        lp_sigma, g_s = self.sigma_prior(np.array([sigma]))
        total += lp_sigma + x[-1]
        grad[-1] = (g_s[0] + g_sigma) * sigma + 1.0
        return float(total), grad

    def loglik(self, beta: np.ndarray, T: np.ndarray, sigma: float):
        """Marginal log-likelihood and its derivatives in ``β``, ``T`` (q×q) and ``σ``."""
        st = self.stats
        b = beta
        if self.shift_index is not None:
            b = beta.copy()
            b[self.shift_index] -= st.response_shift
        lam = T / sigma
        A, B, g = st.ztz1, st.ztx1, st.zty1
        h = g - B @ b  # (m, q)
        A_lam = A @ lam  # (m, q, q)
        M = self._eye + lam.T @ A_lam
        K, logdet = _inverse_and_logdet(M)
        c = h @ lam  # rows c_j = Λᵀ h_j
        u = (K @ c[:, :, None])[:, :, 0]
        explained = float((c * u).sum())
        resid2 = st.yty - 2.0 * b @ st.xty + b @ st.xtx @ b
        s2 = sigma * sigma
        quad = resid2 - explained
        ll = -0.5 * (st.n * _LOG_2PI + 2.0 * st.n * np.log(sigma) + logdet + quad / s2)
        w = (A_lam @ u[:, :, None])[:, :, 0]
        g_lam = -(A_lam @ K).sum(axis=0) + (h.T @ u - w.T @ u) / s2
        lam_u = u @ lam.T
        g_beta = (st.xty - st.xtx @ b - B.reshape(B.shape[0] * B.shape[1], B.shape[2]).T @ lam_u.ravel()) / s2
        g_sigma = -st.n / sigma + quad / (s2 * sigma) - float((g_lam * lam).sum()) / sigma
        return float(ll), g_beta, g_lam / sigma, g_sigma

    # -- draws ---------------------------------------------------------------------------------
    def constrained(self, xs: np.ndarray) -> dict[str, np.ndarray]:
        """Return the posterior variables of the PyMC collapsed model, from draws ``xs`` of shape (S, ndim).

        Returns ``fixed_centered`` (or ``fixed``), ``sigma``, ``sd__<label>`` / ``chol__<label>`` and
        ``cor_<label>`` per block, and ``sd_<group>``, each with the draws first.
        """
        out: dict[str, np.ndarray] = {}
        S = xs.shape[0]
        out["fixed_centered" if "Intercept" in self.fixed_names else "fixed"] = xs[:, : self.p].copy()
        sds = np.empty((S, self.q))
        for b in self.blocks:
            v = xs[:, b.offset : b.offset + b.width]
            if b.eta is None:
                sds[:, b.start] = np.exp(v[:, 0])
                out[f"sd__{b.label}"] = sds[:, b.start].copy()
                continue
            packed = v.copy()
            rows, cols = np.tril_indices(b.size)
            diag = rows == cols
            packed[:, diag] = np.exp(packed[:, diag])
            L = np.zeros((S, b.size, b.size))
            L[:, rows, cols] = packed
            sd = np.sqrt(np.sum(L * L, axis=2))
            sds[:, b.start : b.start + b.size] = sd
            out[f"chol__{b.label}"] = packed
            out[f"cor_{b.label}"] = (L @ np.swapaxes(L, 1, 2)) / (sd[:, :, None] * sd[:, None, :])
        out[f"sd_{self.factor.group}"] = sds
        out["sigma"] = np.exp(xs[:, -1])
        return out


def _inverse_and_logdet(M: np.ndarray) -> tuple[np.ndarray, float]:
    """Return the inverses of the SPD matrices ``M`` (m, q, q) and the sum of their log-determinants.

    Written out for q ≤ 2 (the common random intercept and intercept-slope blocks), where numpy's
    batched LAPACK calls cost more than the arithmetic.
    """
    q = M.shape[-1]
    if q == 1:
        return 1.0 / M, float(np.log(M).sum())
    if q == 2:
        a, b, d = M[:, 0, 0], M[:, 0, 1], M[:, 1, 1]
        det = a * d - b * b
        K = np.empty_like(M)
        K[:, 0, 0], K[:, 0, 1], K[:, 1, 0], K[:, 1, 1] = d / det, -b / det, -b / det, a / det
        return K, float(np.log(det).sum())
    L = np.linalg.cholesky(M)
    logdet = 2.0 * float(np.log(np.diagonal(L, axis1=1, axis2=2)).sum())
    return np.linalg.inv(M), logdet


def _lkj_cholesky(L: np.ndarray, eta: float, sd_prior: PriorDensity) -> tuple[float, np.ndarray]:
    """PyMC's ``LKJCholeskyCov`` log density of the covariance Cholesky factor ``L``, less its constant.

    With ``s_i = ‖L_i‖`` and ``a_i = 2η − 2 + n − i``:
    ``Σ_i [a_i log L_ii − (a_i + i) log s_i] + Σ_i log p_sd(s_i)``; returns it and ``∂/∂L`` (lower).
    """
    n = L.shape[0]
    i = np.arange(n)
    s2 = np.sum(L * L, axis=1)
    s = np.sqrt(s2)
    a = 2.0 * eta - 2.0 + n - i
    diag = L[i, i]
    lp_sd, g_sd = sd_prior(s)
    lp = float(np.sum(a * np.log(diag) - (a + i) * np.log(s))) + lp_sd
    coef = -(a + i) / s2 + g_sd / s
    grad = coef[:, None] * L  # lower triangular, as L is
    grad[i, i] += a / diag
    return lp, grad
