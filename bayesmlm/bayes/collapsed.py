"""Stage 4b, Bayes: the collapsed sampler: NUTS on the population-level parameters, group effects after.

A linear mixed model is Gaussian in its group effects, so they integrate out exactly::

    y ~ N(Xβ, σ² (I + Z Λ Λᵀ Zᵀ)),     Λ = (random-effect covariance factor) / σ.

:func:`build_collapsed_model` writes the same priors as the full model
(:func:`bayesmlm.bayes.pymc_model.build_pymc_model`) on the fixed effects, the residual sd and each block's
covariance, and the likelihood above as a ``pm.Potential``. The likelihood is
:func:`bayesmlm.families.gaussian.marginal_loglik`: the blocked factorisation of the REML objective applied to
the per-group cross-products, so a gradient costs O(groups × q³) and nothing depends on the number of
rows. The funnel between a random-effect sd and the group effects is gone, and so is the choice
between the centred and the non-centred form.

For each posterior draw, :func:`draw_group_effects` then draws every group's effects from their exact
Gaussian conditional ``b | β, σ, Σ, y``, with the same factorisation (``u = L⁻ᵀ(L⁻¹ Λᵀ Zᵀ (y − Xβ) + σ ε)``,
``b = Λ u``). The joint draws are draws from the full model's posterior.

When: :func:`collapsed_plan` uses this path when the dense part of the factorisation (the levels of
every factor but the largest: nothing for one factor, the upper level of two nested factors, the
smaller of crossed factors) has at most :data:`MAX_DENSE` columns, since each gradient then factors a
dense matrix of that size; otherwise the full model is sampled.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pymc as pm
import pytensor
import pytensor.tensor as pt

from bayesmlm.arguments import checked
from bayesmlm.bayes.posterior import covariance_draws, stacked_draws
from bayesmlm.bayes.prior_set import PriorSet
from bayesmlm.bayes.pymc_model import block_covariance, model_coords, population_fixed, predictor_shift
from bayesmlm.design.covariance import RandomStructure
from bayesmlm.design.crossprod import CrossProducts, cross_products
from bayesmlm.design.evaluate import Design
from bayesmlm.design.names import parameter_names
from bayesmlm.families.gaussian import marginal_loglik, pointwise_loglik
from bayesmlm.linalg.blocked import SymbolicStats, decompose, relative_factor, symbolic_stats
from bayesmlm.linalg.small import small_solve_upper_t

__all__ = [
    "MAX_DENSE",
    "add_group_effects",
    "build_collapsed_model",
    "centred_cross_products",
    "collapsed_plan",
    "draw_group_effects",
    "group_effects_dtype",
    "theta_draws",
]

#: most columns of the dense (non-first-factor) part for which the collapsed path is used
MAX_DENSE = 200


def collapsed_plan(structure: RandomStructure) -> tuple[bool, str]:
    """Whether the collapsed path applies to this structure, and why (a sentence for ``fit.info``).

    Examples
    --------
    >>> import bayesmlm as bm
    >>> m = bm.Model("Reaction ~ Days + (Days | Subject)", bm.load_dataset("sleepstudy"))
    >>> collapsed_plan(m.structure)
    (True, 'one grouping factor: per-group 2x2 blocks, no dense part')
    """
    first, rest = structure.factors[0], structure.factors[1:]
    if not rest:
        return True, f"one grouping factor: per-group {first.q}x{first.q} blocks, no dense part"
    dense = sum(f.n_levels * f.q for f in rest)
    names = ", ".join(f.group for f in rest)
    if dense > MAX_DENSE:
        return False, (
            f"the factors after {first.group} ({names}) have {dense} effects in all, more than "
            f"{MAX_DENSE} for the dense part of the collapsed likelihood; the full model is faster"
        )
    return True, (f"per-level blocks for {first.group} and a dense {dense}x{dense} block for {names}")


def _stat_data(stats: CrossProducts, structure: RandomStructure) -> SymbolicStats:
    """Wrap the cross-products in ``pm.Data`` (inside a model context), shaped like :class:`SymbolicStats`."""
    sym, _, values = symbolic_stats(stats, structure)
    fields = sym._asdict()
    names = [k for k in fields if k not in ("p", "rest_levels") and fields[k] is not None]
    out = dict(fields)
    for name, value in zip(names, values, strict=False):
        out[name] = pm.Data(f"stat_{name}", value)
    if stats.has_rest:
        out["rest_levels"] = pt.as_tensor(np.array([f.n_levels for f in structure.factors[1:]]))
    return SymbolicStats(**out)


def _theta_from_cholesky(structure: RandomStructure, chols: list[list], sigma) -> pt.TensorVariable:
    """lme4's ``theta`` (entries of ``Λ = L_Σ / σ``) from each block's covariance Cholesky factor."""
    parts = []
    for f, blocks in zip(structure.factors, chols, strict=True):
        lam = pt.zeros((f.q, f.q))
        for (_, start, size), chol in zip(f.blocks(), blocks, strict=True):
            lam = pt.set_subtensor(lam[start : start + size, start : start + size], chol / sigma)
        rows, cols = f.lower_index
        parts.append(lam[rows, cols])
    return pt.concatenate(parts) if len(parts) > 1 else parts[0]


def centred_cross_products(design: Design, structure: RandomStructure) -> CrossProducts:
    """Cross-products with the predictors centred as the sampled fixed effects expect.

    The response is centred too when there is an intercept: its ``y'y`` would cancel for a response
    like ``y + 1e9`` (the posterior sigma was 36 instead of 26).
    """
    y_shift = float(np.mean(design.y)) if "Intercept" in design.fixed_names else 0.0
    centred = dataclasses.replace(design, y=np.asarray(design.y) - y_shift) if y_shift else design
    stats = cross_products(centred, structure, shift=predictor_shift(design))
    return dataclasses.replace(stats, response_shift=y_shift)


def _intercept_for_stats(coef, design: Design, stats: CrossProducts):
    """Return the fixed effects the statistics expect: the intercept less the response's shift."""
    if not stats.response_shift:
        return coef
    k = list(design.fixed_names).index("Intercept")
    if isinstance(coef, np.ndarray):
        out = coef.copy()
        out[..., k] -= stats.response_shift
        return out
    return pt.set_subtensor(coef[k], coef[k] - stats.response_shift)


@checked
def build_collapsed_model(
    design: Design, structure: RandomStructure, priors: PriorSet, stats: CrossProducts | None = None
) -> pm.Model:
    """Build the collapsed PyMC model: population-level parameters and the marginal likelihood.

    The variables and their names are those of the full model (``fixed``, ``fixed_centered``, ``sd_g``,
    ``cor_<block>``, ``sigma``) except the group effects ``r_g``, which :func:`draw_group_effects`
    adds after sampling, and the likelihood, a ``pm.Potential`` named ``marginal_loglik``.

    Parameters
    ----------
    design : Design
    structure : RandomStructure
    priors : PriorSet
    stats : CrossProducts, optional
        :func:`centred_cross_products` of the design (computed if omitted).

    Returns
    -------
    pymc.Model
    """
    stats = stats if stats is not None else centred_cross_products(design, structure)
    names = parameter_names(structure)
    with pm.Model(coords=model_coords(design, structure, obs=False)) as model:
        coef, _ = population_fixed(design, priors, predictor_shift(design))
        chols = []
        for f in structure.factors:
            blocks, sds = [], []
            for label, start, size in f.blocks():
                chol, sd, corr = block_covariance(f, label, start, size, priors, names)
                blocks.append(chol)
                sds.append(sd)
                if corr is not None:
                    dim = f"{label}__block_term"
                    pm.Deterministic(f"cor_{label}", corr, dims=(dim, dim + "_"))
            chols.append(blocks)
            pm.Deterministic(
                f"sd_{f.group}", pt.concatenate(sds) if len(sds) > 1 else sds[0], dims=f"{f.group}_term"
            )
        sigma = priors.sigma.create("sigma")
        theta = _theta_from_cholesky(structure, chols, sigma)
        sym = _stat_data(stats, structure)
        beta = _intercept_for_stats(coef, design, stats)
        pm.Potential("marginal_loglik", marginal_loglik(theta, beta, sigma, structure, sym))
    return model


def _conditional_graph(structure: RandomStructure, sym: SymbolicStats):
    """Symbolic exact conditional draw of every factor's group effects, given the inputs returned."""
    theta = pt.vector("theta")
    beta = pt.vector("beta")
    sigma = pt.scalar("sigma")
    first, rest = structure.factors[0], structure.factors[1:]
    q1 = first.q
    eps1 = pt.matrix("eps1")  # (m1, q1) standard normal
    eps_rest = pt.vector("eps_rest")  # (q_R,)
    dec = decompose(theta, structure, sym)
    L1 = [[dec.L1[:, i, j] for j in range(i + 1)] for i in range(q1)]
    v1 = dec.c1_y - pt.tensordot(dec.c1_x, beta, axes=[[2], [0]]) + sigma * eps1
    out = []
    if rest:
        v_rest = dec.cr_y - pt.dot(dec.cr_x, beta) + sigma * eps_rest
        u_rest = pt.linalg.solve_triangular(dec.L_rest.T, v_rest, lower=False)
        v1 = v1 - pt.tensordot(dec.C_t, u_rest, axes=[[2], [0]])
    u1 = small_solve_upper_t(L1, v1, q1)
    out.append(pt.dot(u1, relative_factor(theta, first).T))
    start = 0
    for f in rest:
        width = f.n_levels * f.q
        u = u_rest[start : start + width].reshape((f.n_levels, f.q))
        out.append(pt.dot(u, relative_factor(theta, f).T))
        start += width
    return [theta, beta, sigma, eps1, eps_rest], out


_COMPILED: dict[tuple, object] = {}


def draw_group_effects(
    structure: RandomStructure,
    stats: CrossProducts,
    theta: np.ndarray,
    beta: np.ndarray,
    sigma: np.ndarray,
    rng: np.random.Generator,
    dtype=np.float64,
) -> list[np.ndarray]:
    """Draw every factor's group effects from their exact conditional, one draw per posterior sample.

    Parameters
    ----------
    structure : RandomStructure
    stats : CrossProducts
        The cross-products the fixed effects ``beta`` refer to (centred, as sampled).
    theta : ndarray, shape (S, n_theta)
    beta : ndarray, shape (S, p)
    sigma : ndarray, shape (S,)
    rng : numpy Generator
    dtype : numpy dtype
        Of the arrays returned (each draw is computed in float64 and stored in it).

    Returns
    -------
    list of ndarray
        Per factor (in ``structure.factors`` order), shape ``(S, levels, q)``.
    """
    key = (tuple(f.block_sizes for f in structure.factors), tuple(f.n_levels for f in structure.factors[1:]))
    sym, inputs, values = symbolic_stats(stats, structure)
    if key not in _COMPILED:
        args, outputs = _conditional_graph(structure, sym)
        _COMPILED[key] = pytensor.function([*args, *inputs], outputs, on_unused_input="ignore", mode="NUMBA")
    fn = _COMPILED[key]
    first, rest = structure.factors[0], structure.factors[1:]
    q_rest = sum(f.n_levels * f.q for f in rest)
    S = theta.shape[0]
    out = [np.empty((S, f.n_levels, f.q), dtype=dtype) for f in structure.factors]
    for s in range(S):
        eps1 = rng.standard_normal((first.n_levels, first.q))
        eps_rest = rng.standard_normal(q_rest)
        for k, b in enumerate(fn(theta[s], beta[s], sigma[s], eps1, eps_rest, *values)):
            out[k][s] = b
    return out


def theta_draws(posterior, structure: RandomStructure) -> np.ndarray:
    """lme4's ``theta`` for every posterior draw, from the draws of sds, correlations and sigma.

    Returns
    -------
    ndarray, shape (chain * draw, n_theta)
    """
    sigma = stacked_draws(posterior, "sigma")
    parts = []
    for f in structure.factors:
        lam = covariance_draws(posterior, f, cholesky=True)
        rows, cols = f.lower_index
        parts.append(lam[:, rows, cols] / sigma[:, None])
    return np.concatenate(parts, axis=1)


#: group-effect draws larger than this in float64 are stored in float32 (7 significant digits, far
#: below their Monte Carlo error): 100,000 groups x 2 terms x 500 draws is 400 MB instead of 800 MB
FLOAT32_GROUP_EFFECTS_BYTES = 256 * 2**20


def group_effects_dtype(structure: RandomStructure, n_draws: int):
    """float32 if the draws of every factor's group effects exceed :data:`FLOAT32_GROUP_EFFECTS_BYTES`."""
    size = 8 * n_draws * sum(f.n_levels * f.q for f in structure.factors)
    return np.float32 if size > FLOAT32_GROUP_EFFECTS_BYTES else np.float64


def add_group_effects(
    idata, design: Design, structure: RandomStructure, stats: CrossProducts, seed, log_likelihood: bool
) -> None:
    """Complete a collapsed run's DataTree as the full model's: group effects, observed data, log-likelihood.

    Adds ``r_<group>`` (chain, draw, level, term) to the posterior, drawn by :func:`draw_group_effects`
    with a generator seeded from ``seed`` (in float32 when large: :func:`group_effects_dtype`); the
    ``observed_data`` group; and, if ``log_likelihood``,
    the pointwise log-likelihood ``y`` (chain, draw, obs).
    """
    import xarray as xr

    post = idata["posterior"].to_dataset()
    n_chain, n_draw = post.sizes["chain"], post.sizes["draw"]
    sampled = "fixed_centered" if "fixed_centered" in post else "fixed"
    sigma = stacked_draws(post, "sigma")
    rng = np.random.default_rng(None if seed is None else [int(seed), 5])
    beta = _intercept_for_stats(stacked_draws(post, sampled), design, stats)
    effects = draw_group_effects(
        structure,
        stats,
        theta_draws(post, structure),
        beta,
        sigma,
        rng,
        group_effects_dtype(structure, len(sigma)),
    )
    new = {}
    for f, b in zip(structure.factors, effects, strict=True):
        new[f"r_{f.group}"] = xr.DataArray(
            b.reshape(n_chain, n_draw, f.n_levels, f.q),
            dims=("chain", "draw", f.group, f"{f.group}_term"),
            coords={f.group: list(f.levels), f"{f.group}_term": list(f.term_names)},
        )
    idata["posterior"] = xr.DataTree(post.assign(new))
    if not design.holds_rows:  # a design from a Dask DataFrame: no observed rows, no log-likelihood
        return
    y = np.asarray(design.y)
    obs = {"obs": np.arange(design.n)}
    idata["observed_data"] = xr.DataTree(xr.Dataset({"y": xr.DataArray(y, dims="obs", coords=obs)}))
    if log_likelihood:
        ll = pointwise_loglik(design, structure, stacked_draws(post, "fixed"), effects, sigma)
        da = xr.DataArray(
            ll.reshape(n_chain, n_draw, design.n),
            dims=("chain", "draw", "obs"),
            coords={"chain": post["chain"], "draw": post["draw"], **obs},
        )
        idata["log_likelihood"] = xr.DataTree(xr.Dataset({"y": da}))
