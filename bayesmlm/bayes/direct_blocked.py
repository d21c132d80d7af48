"""Stage 4b, Bayes: the collapsed log posterior of several grouping factors and its gradient, written out.

The posterior of :func:`bayesmlm.bayes.collapsed.build_collapsed_model` with every factor's effects
integrated out (crossed or nested), in the PyMC model's unconstrained coordinates: ``fixed_centered``
(or ``fixed``), then factor by factor each block's packed Cholesky factor (diagonal on the log scale)
or ``log sd``, then ``log σ``. One evaluation is one call of
:func:`~bayesmlm.bayes.blocked_kernel.blocked_density_kernel` on the blocked statistics of
:class:`~bayesmlm.design.crossprod.CrossProducts` (the first factor's per-level blocks, the others' dense
block); the priors are :func:`~bayesmlm.bayes.direct_kernel.covariance_priors`', as the one-factor
density's. ``tests/test_direct_blocked.py`` holds value and gradient to PyMC's.
"""

from __future__ import annotations

import numpy as np

from bayesmlm.bayes.blocked_kernel import blocked_density_kernel
from bayesmlm.bayes.direct_density import Block
from bayesmlm.bayes.prior_density import SUPPORTED_FAMILIES, packed_priors
from bayesmlm.bayes.prior_set import PriorSet
from bayesmlm.design.covariance import RandomStructure
from bayesmlm.design.crossprod import CrossProducts
from bayesmlm.design.names import parameter_names

__all__ = ["BlockedDensity", "blocked_plan"]


def blocked_plan(structure: RandomStructure, priors: PriorSet) -> tuple[bool, str]:
    """Whether :class:`BlockedDensity` can write this collapsed posterior, and why not if it cannot.

    Examples
    --------
    >>> import bayesmlm as bm
    >>> m = bm.Model("diameter ~ 1 + (1 | plate) + (1 | sample)", bm.load_dataset("Penicillin"))
    >>> blocked_plan(m.structure, m.prior_set)
    (True, 'plate in 24 per-level 1x1 blocks, sample in a dense 6x6 Schur complement')
    """
    if len(structure.factors) < 2:
        return False, "one grouping factor (the one-factor density applies)"
    families = {priors.sigma.family} | {p.family for p in priors.fixed.values()}
    families |= {p.family for p in priors.sd.values()}
    other = sorted(families - SUPPORTED_FAMILIES)
    if other:
        return False, f"no numpy density for the prior families {', '.join(other)}"
    first, rest = structure.factors[0], structure.factors[1:]
    dense = sum(f.n_levels * f.q for f in rest)
    names = ", ".join(f.group for f in rest)
    return True, (
        f"{first.group} in {first.n_levels} per-level {first.q}x{first.q} blocks, "
        f"{names} in a dense {dense}x{dense} Schur complement"
    )


class BlockedDensity:
    """The collapsed log posterior ``x ↦ (log p, ∇ log p)`` of a Gaussian model with several factors.

    Parameters
    ----------
    fixed_names : sequence of str
        The fixed-effect columns, in the order of the statistics.
    structure : RandomStructure
        Two or more grouping factors; the first has the per-level blocks.
    priors : PriorSet
        On the sampled scale (already divided by the response's scale).
    stats : CrossProducts
        :func:`~bayesmlm.bayes.collapsed_stats.centred_cross_products` of the sampled design.
    """

    def __init__(self, fixed_names, structure: RandomStructure, priors: PriorSet, stats: CrossProducts):
        ok, why = blocked_plan(structure, priors)
        if not ok:
            raise ValueError(f"the blocked direct density does not apply: {why}")
        self.structure = structure
        self.fixed_names = list(fixed_names)
        self.p = len(self.fixed_names)
        self.shift_index = self.fixed_names.index("Intercept") if stats.response_shift else None
        fixed_codes, fixed_par, fixed_const = packed_priors([priors.fixed[n] for n in self.fixed_names])
        sigma_codes, sigma_par, sigma_const = packed_priors([priors.sigma])
        sd_name, cor_name = parameter_names(structure)
        # every factor's terms side by side in one block-diagonal T (Q×Q): factor f from term_off[f]
        self.term_off, blocks, offset, sd_priors = [], [], self.p, []
        Q = 0
        for f in structure.factors:
            self.term_off.append(Q)
            factor_blocks = []
            for label, start, size in f.blocks():
                sd_priors += [priors.sd[sd_name[(label, t)]] for t in f.term_names[start : start + size]]
                eta = float(priors.cor[cor_name[label]].eta) if size > 1 else None
                block = Block(label, Q + start, size, offset, eta)
                factor_blocks.append(block)
                offset += block.width
            blocks.append(tuple(factor_blocks))
            Q += f.q
        self.blocks = tuple(blocks)  # per factor
        self.Q = Q
        self.ndim = offset + 1
        flat = [b for fb in self.blocks for b in fb]
        rows, cols, coords = [], [], []
        for blk in flat:
            r, c = np.tril_indices(blk.size) if blk.eta is not None else (np.zeros(1, int), np.zeros(1, int))
            rows.append(r + blk.start)
            cols.append(c + blk.start)
            coords.append(np.arange(blk.offset, blk.offset + blk.width))
        rows, cols, coords = np.concatenate(rows), np.concatenate(cols), np.concatenate(coords)
        table = np.array([(b.start, b.size, b.eta is not None) for b in flat], dtype=np.int64)
        etas = np.array([b.eta or 0.0 for b in flat])
        sd_codes, sd_par, sd_const = packed_priors(sd_priors)
        shift = -1 if self.shift_index is None else self.shift_index
        self._constant = fixed_const + sd_const + sigma_const + 0.5 * float(stats.log_weights)
        rest = structure.factors[1:]
        rest_off = np.array(self.term_off[1:], dtype=np.int64)
        rest_q = np.array([f.q for f in rest], dtype=np.int64)
        lvl_start, lvl_fac, col = [], [], 0
        for k, f in enumerate(rest):  # Z_R's columns: factor by factor, level-major
            for _ in range(f.n_levels):
                lvl_start.append(col)
                lvl_fac.append(k)
                col += f.q
        f64 = np.float64
        arrays = tuple(
            np.ascontiguousarray(a, dtype=f64)
            for a in (stats.ztz1, stats.ztx1, stats.zty1, stats.ztz_rest, stats.ztz_rest1.T, stats.ztx_rest,
                      stats.zty_rest, stats.xtx, stats.xty)
        )  # fmt: skip
        self.layout = (
            structure.factors[0].q, rest_off, rest_q,
            np.array(lvl_start, dtype=np.int64), np.array(lvl_fac, dtype=np.int64),
        )  # fmt: skip
        self.statistics = arrays
        self._args = (
            self.p, rows, cols, coords, rows == cols, table, etas, fixed_codes, fixed_par, sd_codes,
            sd_par, int(sigma_codes[0]), sigma_par[0], *self.layout, *arrays, float(stats.yty),
            float(stats.n), shift, float(stats.response_shift),
        )  # fmt: skip

    # -- the density ---------------------------------------------------------------------------
    def __call__(self, x: np.ndarray) -> tuple[float, np.ndarray]:
        """Log posterior (up to the LKJ normalising constants) and its gradient at ``x``."""
        grad = np.empty(self.ndim)
        T = np.zeros((self.Q, self.Q))
        value = blocked_density_kernel(np.asarray(x, dtype=float), *self._args, T, grad)
        return value + self._constant, grad

    # -- draws ---------------------------------------------------------------------------------
    def cholesky_draws(self, xs: np.ndarray) -> np.ndarray:
        """Return ``T`` (S, Q, Q): every factor's covariance Cholesky factor, block-diagonal, per draw."""
        S = xs.shape[0]
        T = np.zeros((S, self.Q, self.Q))
        for b in (b for fb in self.blocks for b in fb):
            v = xs[:, b.offset : b.offset + b.width]
            if b.eta is None:
                T[:, b.start, b.start] = np.exp(v[:, 0])
                continue
            rows, cols = np.tril_indices(b.size)
            diag = rows == cols
            T[:, rows + b.start, cols + b.start] = np.where(diag, np.exp(v), v)
        return T

    def constrained(self, xs: np.ndarray) -> dict[str, np.ndarray]:
        """Return the PyMC collapsed model's posterior variables from draws ``xs`` of shape (S, ndim).

        ``fixed_centered`` (or ``fixed``), ``sigma``, per block ``sd__<label>`` or ``chol__<label>`` and
        ``cor_<label>``, and per factor ``sd_<group>``, each with the draws first.
        """
        out: dict[str, np.ndarray] = {}
        out["fixed_centered" if "Intercept" in self.fixed_names else "fixed"] = xs[:, : self.p].copy()
        T = self.cholesky_draws(xs)
        sds = np.sqrt(np.sum(T * T, axis=2))
        for f, off, fb in zip(self.structure.factors, self.term_off, self.blocks, strict=True):
            for b in fb:
                s = slice(b.start, b.start + b.size)
                if b.eta is None:
                    out[f"sd__{b.label}"] = sds[:, b.start].copy()
                    continue
                L = T[:, s, s]
                rows, cols = np.tril_indices(b.size)
                out[f"chol__{b.label}"] = L[:, rows, cols]
                sd = sds[:, s]
                out[f"cor_{b.label}"] = (L @ np.swapaxes(L, 1, 2)) / (sd[:, :, None] * sd[:, None, :])
            out[f"sd_{f.group}"] = sds[:, off : off + f.q].copy()
        out["sigma"] = np.exp(xs[:, -1])
        return out
