"""Stage 4b, Bayes: the collapsed log posterior of a one-factor model and its gradient, written out.

The same posterior density as :func:`bayesmlm.bayes.collapsed.build_collapsed_model`'s PyMC model, in
the same unconstrained coordinates (PyMC's value variables: ``fixed_centered``, each correlated block's
packed Cholesky factor with its diagonal on the log scale, each single term's ``log sd``, ``log σ``),
with the gradient written out, so that NUTS can run on it with no PyTensor graph to build or compile
(:mod:`bayesmlm.bayes.direct`). One evaluation is one call of the fixed numba loop
:func:`~bayesmlm.bayes.direct_kernel.density_kernel` (4.6 µs on sleepstudy; the same algebra as numpy
array operations took 96 µs). ``tests/test_direct_density.py`` holds value and gradient to PyMC's.

With one grouping factor, levels ``j``, ``A_j = Z_jᵀZ_j``, ``B_j = Z_jᵀX_j``, ``g_j = Z_jᵀy_j``,
``Λ = T / σ`` (``T`` the block-diagonal Cholesky factor of the effects' covariance) and
``M_j = I + ΛᵀA_jΛ``, ``h_j = g_j − B_jβ``, ``c_j = Λᵀh_j``, ``u_j = M_j⁻¹c_j``::

    ℓ = −½ [n log 2π + 2n log σ + Σ_j log|M_j| + (‖y − Xβ‖² − Σ_j c_jᵀu_j) / σ²]
    ∂ℓ/∂Λ = Σ_j [−A_jΛM_j⁻¹ + (h_j u_jᵀ − A_jΛ u_j u_jᵀ) / σ²]
    ∂ℓ/∂β = (Xᵀy − XᵀXβ − Σ_j B_jᵀΛu_j) / σ²
    ∂ℓ/∂σ = −n/σ + (‖y − Xβ‖² − Σ_j c_jᵀu_j) / σ³ − Σ (∂ℓ/∂Λ ⊙ Λ) / σ

A gradient costs O(levels × q³) and nothing depends on the rows. The LKJ prior of a correlated block
is PyMC's density of the Cholesky factor of the covariance (its normalising constant left out: it
does not depend on the parameters).
"""

from __future__ import annotations

import dataclasses

import numpy as np

from bayesmlm.bayes.direct_kernel import density_kernel
from bayesmlm.bayes.prior_density import SUPPORTED_FAMILIES, packed_priors
from bayesmlm.bayes.prior_set import PriorSet
from bayesmlm.design.covariance import RandomStructure
from bayesmlm.design.crossprod import CrossProducts
from bayesmlm.design.names import parameter_names

__all__ = ["Block", "DirectDensity", "direct_plan"]


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
    other = sorted(families - SUPPORTED_FAMILIES)
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
    eta: float | None  # LKJ shape for a correlated block

    @property
    def width(self) -> int:
        """Number of coordinates: ``size (size + 1) / 2`` for a correlated block, 1 for one term."""
        return self.size * (self.size + 1) // 2 if self.eta is not None else 1


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
        self.shift_index = self.fixed_names.index("Intercept") if stats.response_shift else None
        fixed_codes, fixed_par, fixed_const = packed_priors([priors.fixed[n] for n in self.fixed_names])
        sigma_codes, sigma_par, sigma_const = packed_priors([priors.sigma])
        sd_name, cor_name = parameter_names(structure)
        blocks, offset, sd_priors = [], self.p, []
        for label, start, size in self.factor.blocks():
            sd_priors += [
                priors.sd[sd_name[(label, t)]] for t in self.factor.term_names[start : start + size]
            ]
            eta = float(priors.cor[cor_name[label]].eta) if size > 1 else None
            block = Block(label, start, size, offset, eta)
            blocks.append(block)
            offset += block.width
        sd_codes, sd_par, sd_const = packed_priors(sd_priors)
        self.blocks = tuple(blocks)
        self.ndim = offset + 1
        # where each coordinate of the blocks sits in T, and which are diagonal (log scale)
        rows, cols, coords = [], [], []
        for blk in self.blocks:
            r, c = np.tril_indices(blk.size) if blk.eta is not None else (np.zeros(1, int), np.zeros(1, int))
            rows.append(r + blk.start)
            cols.append(c + blk.start)
            coords.append(np.arange(blk.offset, blk.offset + blk.width))
        rows, cols, coords = np.concatenate(rows), np.concatenate(cols), np.concatenate(coords)
        table = np.array([(b.start, b.size, b.eta is not None) for b in self.blocks], dtype=np.int64)
        etas = np.array([b.eta or 0.0 for b in self.blocks])
        shift = -1 if self.shift_index is None else self.shift_index
        self._constant = fixed_const + sd_const + sigma_const
        # one signature for the compiled kernel (a new one would compile again): C-ordered float64
        ztz, ztx, zty, xtx, xty = (
            np.ascontiguousarray(a, dtype=np.float64)
            for a in (stats.ztz1, stats.ztx1, stats.zty1, stats.xtx, stats.xty)
        )
        self._args = (
            self.p, self.q, rows, cols, coords, rows == cols, table, etas, fixed_codes,
            fixed_par, sd_codes, sd_par, int(sigma_codes[0]), sigma_par[0], ztz, ztx, zty, xtx, xty,
            float(stats.yty), float(stats.n), shift, float(stats.response_shift),
        )  # fmt: skip

    # -- the density ---------------------------------------------------------------------------
    def __call__(self, x: np.ndarray) -> tuple[float, np.ndarray]:
        """Log posterior (up to the LKJ normalising constants) and its gradient at ``x``."""
        grad = np.empty(self.ndim)
        value = density_kernel(np.asarray(x, dtype=float), *self._args, grad)
        return value + self._constant, grad

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
