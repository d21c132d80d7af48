"""Stage 4b, Bayes: a collapsed run's group effects, drawn from their exact conditional, and its DataTree.

Given each posterior draw of ``β, σ, Σ``, every group's effects are Gaussian:
``u = L⁻ᵀ(L⁻¹ Λᵀ Zᵀ (y − Xβ) + σ ε)``, ``b = Λ u`` with ``L Lᵀ = Λᵀ ZᵀZ Λ + I``. For one grouping factor
:func:`draw_one_factor_effects` does it for all draws and levels in a compiled loop (``L`` is
block-diagonal, a q×q block per level: :func:`~bayesmlm.bayes.direct_kernel.conditional_kernel`); with
more factors the blocked PyTensor graph of :func:`bayesmlm.bayes.conditional_graph.draw_group_effects`
is used. :func:`add_group_effects` then completes the DataTree as the full model's (group effects,
observed data, pointwise log-likelihood); with one factor the effects are drawn chunk by chunk of
levels, each chunk from its own seed, so that they can also be drawn on demand
(:mod:`bayesmlm.bayes.group_draws`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from bayesmlm.bayes.collapsed_stats import intercept_for_stats
from bayesmlm.bayes.direct_kernel import conditional_kernel
from bayesmlm.bayes.group_draws import ConditionalEffects, conditional_effects, theta_draws
from bayesmlm.bayes.posterior import stacked_draws
from bayesmlm.design.covariance import RandomStructure
from bayesmlm.design.crossprod import CrossProducts
from bayesmlm.design.evaluate import Design
from bayesmlm.families.gaussian import pointwise_loglik

if TYPE_CHECKING:
    from bayesmlm.bayes.collapsed_stats import Standardised

__all__ = [
    "FLOAT32_GROUP_EFFECTS_BYTES",
    "add_group_effects",
    "conditional_effects",
    "draw_one_factor_effects",
    "group_effects_dtype",
    "one_factor_conditional",
    "theta_draws",
]

#: group-effect draws larger than this in float64 are stored in float32 (7 significant digits, far
#: below their Monte Carlo error): 100,000 groups x 2 terms x 500 draws is 400 MB instead of 800 MB
FLOAT32_GROUP_EFFECTS_BYTES = 256 * 2**20


def group_effects_dtype(structure: RandomStructure, n_draws: int):
    """float32 if the draws of every factor's group effects exceed :data:`FLOAT32_GROUP_EFFECTS_BYTES`."""
    size = 8 * n_draws * sum(f.n_levels * f.q for f in structure.factors)
    return np.float32 if size > FLOAT32_GROUP_EFFECTS_BYTES else np.float64


def one_factor_conditional(
    stats: CrossProducts, lam: np.ndarray, beta: np.ndarray, sigma: np.ndarray, eps: np.ndarray
) -> np.ndarray:
    """Group effects ``b = Λ L⁻ᵀ(L⁻¹Λᵀh + σε)`` for draws (S) × levels (m) of a one-factor model.

    Parameters
    ----------
    stats : CrossProducts
        Per level ``A_j = Z_jᵀZ_j`` (m, q, q), ``B_j = Z_jᵀX_j`` (m, q, p), ``g_j = Z_jᵀy_j`` (m, q).
    lam : ndarray, shape (S, q, q)
        ``Λ``: the effects' covariance Cholesky factor over σ.
    beta : ndarray, shape (S, p)
        Fixed effects as the statistics expect them.
    sigma : ndarray, shape (S,)
    eps : ndarray, shape (S, m, q)
        Standard normal draws (zeros give the conditional means).

    Returns
    -------
    ndarray, shape (S, m, q)

    Examples
    --------
    >>> import bayesmlm as bm
    >>> m = bm.Model("Yield ~ 1 + (1 | Batch)", bm.load_dataset("Dyestuff"))
    >>> b = one_factor_conditional(m.cross_products, np.array([[[0.8483237832]]]), np.array([[1527.5]]),
    ...                            np.array([49.51009997]), np.zeros((1, 6, 1)))
    >>> b[0, :, 0].round(4).tolist()  # lme4 1.1-31's ranef() at its REML estimates
    [-17.6069, 0.3913, 28.5622, -23.0845, 56.7332, -44.9953]
    """
    out = np.empty(eps.shape)
    f64 = np.float64
    conditional_kernel(
        np.ascontiguousarray(stats.ztz1, f64), np.ascontiguousarray(stats.ztx1, f64),
        np.ascontiguousarray(stats.zty1, f64), np.ascontiguousarray(lam, f64),
        np.ascontiguousarray(beta, f64), np.ascontiguousarray(sigma, f64),
        np.ascontiguousarray(eps, f64), out,
    )  # fmt: skip
    return out


def draw_one_factor_effects(effects: ConditionalEffects, dtype=np.float64) -> list[np.ndarray]:
    """Every level's effects for every draw, chunk by chunk of levels; the list holds one (S, m, q) array."""
    return [effects.all_draws(dtype)]


def add_group_effects(
    idata,
    design: Design,
    structure: RandomStructure,
    standardised: Standardised,
    seed: int,
    log_likelihood: bool,
    store: bool = True,
) -> None:
    """Complete a collapsed run's DataTree as the full model's: group effects, observed data, log-likelihood.

    ``idata``'s posterior is on the response's scale already. Adds ``r_<group>`` (chain, draw, level,
    term) to it, drawn from ``seed`` (stored in float32 when large: :func:`group_effects_dtype`), unless
    ``store`` is False (``group_effects="on_demand"``: one factor, drawn again when asked, see
    :mod:`bayesmlm.bayes.group_draws`); the ``observed_data`` group; and, if ``log_likelihood``, the
    pointwise log-likelihood ``y`` (chain, draw, obs).
    """
    import xarray as xr

    post = idata["posterior"].to_dataset()
    n_chain, n_draw = post.sizes["chain"], post.sizes["draw"]
    sigma = stacked_draws(post, "sigma")
    dtype = group_effects_dtype(structure, len(sigma))
    if len(structure.factors) == 1:
        one = conditional_effects(post, standardised, structure, seed)
        effects = draw_one_factor_effects(one, dtype) if store else None
    else:  # the blocked PyTensor graph, on the sampler's scale, from one generator
        from bayesmlm.bayes.conditional_graph import draw_group_effects

        scale, stats = standardised.scale, standardised.stats
        sampled = "fixed_centered" if "fixed_centered" in post else "fixed"
        beta = intercept_for_stats(stacked_draws(post, sampled) / scale, standardised.design, stats)
        rng = np.random.default_rng([int(seed), 5])
        theta = theta_draws(post, structure)
        effects = draw_group_effects(structure, stats, theta, beta, sigma / scale, rng, dtype)
        for b in effects:
            b *= scale
    new = {}
    for f, b in zip(structure.factors, effects or (), strict=False):
        new[f"r_{f.group}"] = xr.DataArray(
            b.reshape(n_chain, n_draw, f.n_levels, f.q),
            dims=("chain", "draw", f.group, f"{f.group}_term"),
            coords={f.group: list(f.levels), f"{f.group}_term": list(f.term_names)},
        )
    idata["posterior"] = xr.DataTree(post.assign(new))
    if not design.holds_rows:  # a design from a Dask DataFrame: no observed rows, no log-likelihood
        return
    obs = {"obs": np.arange(design.n)}
    y = xr.DataArray(np.asarray(design.y), dims="obs", coords=obs)
    idata["observed_data"] = xr.DataTree(xr.Dataset({"y": y}))
    if log_likelihood:
        ll = pointwise_loglik(design, structure, stacked_draws(post, "fixed"), effects, sigma)
        da = xr.DataArray(
            ll.reshape(n_chain, n_draw, design.n),
            dims=("chain", "draw", "obs"),
            coords={"chain": post["chain"], "draw": post["draw"], **obs},
        )
        idata["log_likelihood"] = xr.DataTree(xr.Dataset({"y": da}))
