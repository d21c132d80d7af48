"""Stage 4b, Bayes: the PyMC model with LKJ-correlated random effects, built from a design.

Variables in the model (and so in the posterior), for a factor ``g`` (e.g. ``Subject``):

===================  =====================================================================
``fixed``            fixed effects on the original scale, dims ``fixed_term``
``fixed_centered``   the sampled fixed effects, with predictors centred at their means (so the
                     intercept is the mean response at average predictors); present when the model
                     has an intercept
``sd_g``             standard deviations of the random effects, dims ``g_term``
``cor_g``            correlation matrix of a correlated block, dims ``(g__block_term, g__block_term_)``
``r_g``              the group-level deviations, dims ``(g, g_term)``
``sigma``            residual standard deviation
``y``                the likelihood, dims ``obs``: ``N(mu, sigma / √w)`` with prior weights ``w``
===================  =====================================================================

A correlated block ``(x | g)`` gets ``pm.LKJCholeskyCov``; each term of ``(x || g)`` its own sd.
Each block is written centred (``r ~ MvNormal(0, Σ)``) or non-centred (``r = z Lᵀ``, ``z ~ N(0, 1)``):
see :func:`choose_parameterization`.

Data enter through ``pm.Data`` so the compiled model depends only on the model's structure, not on
the numbers, and compiled code is reused across datasets.
"""

from __future__ import annotations

import numpy as np
import pymc as pm
import pytensor.tensor as pt

from bayesmlm.arguments import checked
from bayesmlm.bayes.block_centring import CENTRED_RATIO, Parameterization, choose_parameterization
from bayesmlm.bayes.collapsed_stats import predictor_shift
from bayesmlm.bayes.integrated_nesting import INTEGRATED, integrated_effects, integrated_pairs
from bayesmlm.bayes.level_centring import mixed_block
from bayesmlm.bayes.nested_levels import anchor_group, centred_factors
from bayesmlm.bayes.nesting import hierarchical_mean, nested_parents
from bayesmlm.bayes.prior_set import PriorSet
from bayesmlm.bayes.priors import Prior
from bayesmlm.design.covariance import FactorTerms, RandomStructure
from bayesmlm.design.evaluate import Design
from bayesmlm.design.names import parameter_names
from bayesmlm.exceptions import PriorError
from bayesmlm.families import gaussian

__all__ = [
    "CENTRED_RATIO",
    "Parameterization",
    "block_dim",
    "build_pymc_model",
    "choose_parameterization",
    "linear_predictor",
    "term_dim",
]


def term_dim(group: str) -> str:
    """Name of the term dimension of a grouping factor's random effects."""
    return f"{group}_term"


def block_dim(label: str) -> str:
    """Name of the term dimension of one block (distinct from the factor's, which spans all blocks)."""
    return f"{label}__block_term"


def _stacked_dist(priors: list[Prior], what: str):
    families = {p.family for p in priors}
    if len(families) != 1:
        raise PriorError(
            f"the sd priors of the correlated block {what} must share one family "
            f"(given: {', '.join(map(str, priors))}); use the same family with different scales"
        )
    names = [name for name, _ in priors[0].params]
    params = {name: np.array([dict(p.params)[name] for p in priors], dtype=float) for name in names}
    return getattr(pm, priors[0].family).dist(**params, shape=len(priors))


def _fixed_effects(design: Design, priors: PriorSet):
    """Create the sampled fixed effects (on centred predictors when there is an intercept)."""
    names = list(design.fixed_names)
    has_intercept = "Intercept" in names
    free_name = "fixed_centered" if has_intercept else "fixed"
    by_family: dict[tuple, list[int]] = {}
    for k, name in enumerate(names):
        prior = priors.fixed[name]
        by_family.setdefault((prior.family, tuple(n for n, _ in prior.params)), []).append(k)
    if len(by_family) == 1:
        (family, pnames), _ = next(iter(by_family.items()))
        params = {
            pn: np.array([dict(priors.fixed[n].params)[pn] for n in names], dtype=float) for pn in pnames
        }
        coef = getattr(pm, family)(free_name, **params, dims="fixed_term")
    else:
        parts = pt.zeros(len(names))
        for (family, pnames), idx in by_family.items():
            params = {
                pn: np.array([dict(priors.fixed[names[k]].params)[pn] for k in idx], dtype=float)
                for pn in pnames
            }
            var = getattr(pm, family)(f"{free_name}_{family}", **params, shape=len(idx))
            parts = pt.set_subtensor(parts[idx], var)
        coef = pm.Deterministic(free_name, parts, dims="fixed_term")
    return coef, has_intercept


def block_covariance(f: FactorTerms, label: str, start: int, size: int, priors: PriorSet, names):
    """Prior of one block's covariance: returns (Cholesky factor, sds, correlation matrix or None).

    A single term gets its sd prior; a correlated block ``pm.LKJCholeskyCov`` with the terms' sd priors.
    """
    terms = f.term_names[start : start + size]
    sd_name, cor_name = names
    sd_priors = [priors.sd[sd_name[(label, t)]] for t in terms]
    if size == 1:
        sd = sd_priors[0].create(f"sd__{label}")
        return pt.reshape(sd, (1, 1)), pt.stack([sd]), None
    eta = priors.cor[cor_name[label]].eta
    chol, corr, sd_vec = pm.LKJCholeskyCov(
        f"chol__{label}",
        n=size,
        eta=eta,
        sd_dist=_stacked_dist(sd_priors, label),
        compute_corr=True,
        store_in_trace=False,
    )
    return chol, sd_vec, corr


def _block_effects(
    f: FactorTerms,
    label: str,
    start: int,
    size: int,
    priors: PriorSet,
    how: str,
    names,
    single: bool,
    fixed_mean: pt.TensorVariable,
    mask: np.ndarray | None = None,
):
    """Random effects of one block: returns (effects (m, size), sds (size,), correlation or None).

    Centred blocks sample each level's coefficients ``c_j ~ N(β, Σ)`` around the fixed effects ``β``
    of the same terms (0 for a term without a fixed effect) and report ``r_j = c_j - β``: with
    data-rich groups ``c_j`` is pinned by its own data and nearly independent of ``β``, whereas
    sampling ``r_j ~ N(0, Σ)`` beside ``β`` leaves the sampler a ridge between ``β`` and every ``r_j``.
    """
    dims = (f.group, term_dim(f.group) if single else block_dim(label))
    chol, sd_vec, corr = block_covariance(f, label, start, size, priors, names)
    if how == "mixed":  # per level (bayes/level_centring.py): a scalar block of a generalized model
        return mixed_block(label, mask, sd_vec[0], fixed_mean), sd_vec, corr
    if how == "centered":
        if size == 1:
            c = pm.Normal(f"c__{label}", fixed_mean, sd_vec, dims=dims)
        else:
            c = pm.MvNormal(f"c__{label}", mu=fixed_mean, chol=chol, dims=dims)
        r = c - fixed_mean
    else:
        z = pm.Normal(f"z__{label}", 0.0, 1.0, dims=dims)
        r = z @ chol.T
    return r, sd_vec, corr


def _fixed_index(fixed_names, X: np.ndarray, Z: np.ndarray, terms) -> tuple[np.ndarray, np.ndarray]:
    """For each random term, the index of the fixed effect with the same column, and 1/0 if there is one."""
    index, mask = [], []
    for k, term in enumerate(terms):
        j = list(fixed_names).index(term) if term in fixed_names else -1
        same = j >= 0 and np.allclose(X[:, j], Z[:, k])
        index.append(j if same else 0)
        mask.append(1.0 if same else 0.0)
    return np.array(index, dtype=np.int64), np.array(mask)


def model_coords(design: Design, structure: RandomStructure, obs: bool = True) -> dict[str, list]:
    """Coordinates of the model's dimensions: fixed terms, levels and terms per factor and block, rows."""
    coords: dict[str, list] = {"fixed_term": list(design.fixed_names)}
    if obs:
        coords["obs"] = list(range(design.n))
    for f in structure.factors:
        coords[f.group] = list(f.levels)
        coords[term_dim(f.group)] = list(f.term_names)
        for label, start, size in f.blocks():
            coords[block_dim(label)] = list(f.term_names[start : start + size])
            coords[block_dim(label) + "_"] = list(f.term_names[start : start + size])
    return coords


def population_fixed(design: Design, priors: PriorSet, shift: np.ndarray):
    """Create the fixed effects (inside a model context): returns (sampled, on the original scale).

    The original-scale effects are stored as the Deterministic ``fixed`` when they differ.
    """
    coef, has_intercept = _fixed_effects(design, priors)
    if not has_intercept:
        return coef, coef
    k = list(design.fixed_names).index("Intercept")
    original = pt.set_subtensor(coef[k], coef[k] - pt.dot(coef, shift))
    pm.Deterministic("fixed", original, dims="fixed_term")
    return coef, original


def _record(f: FactorTerms, effects: list, sds: list, cors: list, built: dict):
    """Store one factor's ``r_g``, ``sd_g`` and ``cor_`` Deterministics; return its term of the predictor."""
    codes = pm.Data(f"codes_{f.group}", f.codes.astype("int64"), dims="obs")
    Z = pm.Data(f"Z_{f.group}", np.asarray(f.Z), dims=("obs", term_dim(f.group)))
    # One Deterministic per factor: with a Deterministic per block as well, PyTensor 3.3's
    # FAST_RUN rewrites returned the joined (m, q) array for a block's (m, 1) Deterministic.
    single = len(effects) == 1
    r_all = pm.Deterministic(
        f"r_{f.group}",
        effects[0] if single else pt.concatenate(effects, axis=1),
        dims=(f.group, term_dim(f.group)),
    )
    pm.Deterministic(f"sd_{f.group}", pt.concatenate(sds) if len(sds) > 1 else sds[0], dims=term_dim(f.group))
    for label, corr in cors:
        pm.Deterministic(f"cor_{label}", corr, dims=(block_dim(label), block_dim(label) + "_"))
    built[f.group] = (f, r_all)
    return pt.sum(Z * r_all[codes], axis=1)


def linear_predictor(
    design: Design,
    structure: RandomStructure,
    priors: PriorSet,
    parameterization: dict[str, Parameterization],
    nested: bool = False,
    levels: dict[str, np.ndarray] | None = None,
):
    """Create the fixed and group effects in the current PyMC model; return the linear predictor.

    ``Xβ + Σ_g (Z_g * r_g[codes_g]).sum(-1)`` over the observations, with the variables of the
    module docstring (``fixed``, ``sd_g``, ``cor_g``, ``r_g``); :func:`build_pymc_model` adds the
    Gaussian likelihood to it, :mod:`bayesmlm.bayes.glmm_model` a generalized family's. With
    ``nested``, a centred factor nested in another centred one has its intercepts centred on its
    parent's (:mod:`bayesmlm.bayes.nesting`); ``levels`` holds the centred-level masks of ``"mixed"`` blocks.
    """
    sd_name, cor_name = parameter_names(structure)
    X = np.asarray(design.X)
    shift = predictor_shift(design)
    X_data = pm.Data("X", X - shift, dims=("obs", "fixed_term"))
    coef, original = population_fixed(design, priors, shift)
    mu = pt.dot(X_data, coef)
    # the anchor: the centred factor centred on the fixed effects (nested_levels.anchor_group)
    integrated = integrated_pairs(structure) if nested else {}
    integrated = {o: p for o, p in integrated.items() if parameterization.get(o) == INTEGRATED}
    inner_of = {p[0]: o for o, p in integrated.items()}
    centred = centred_factors(structure, parameterization)
    anchor = anchor_group(structure, parameterization)
    parents = nested_parents(structure, {f.group for f in centred}) if nested else {}
    by_label = {label: f for f in structure.factors for label, *_ in f.blocks()}
    built: dict[str, tuple] = {}
    for f in sorted(structure.factors, key=lambda f: f.n_levels) if nested else structure.factors:
        if f.block_labels[0] in integrated:  # built with its nested factor (bayes/integrated_nesting.py)
            continue
        effects, sds, cors = [], [], []
        single = len(f.block_sizes) == 1
        if f.block_labels[0] in inner_of:
            outer = by_label[inner_of[f.block_labels[0]]]
            sd_in = block_covariance(f, f.block_labels[0], 0, 1, priors, (sd_name, cor_name))[1]
            sd_out = block_covariance(outer, outer.block_labels[0], 0, 1, priors, (sd_name, cor_name))[1]
            mean = hierarchical_mean(f, 0, 1, 0.0, X, original, {}, built)[:, 0] if f.group == anchor else 0.0
            mask = (levels or {}).get(
                f.block_labels[0], np.full(f.n_levels, parameterization[f.block_labels[0]] != "noncentered")
            )
            pair = (f.block_labels[0], outer.block_labels[0], mask, integrated[outer.block_labels[0]][1])
            r_in, r_out = integrated_effects(*pair, (sd_in[0], sd_out[0]), mean)
            mu = mu + _record(outer, [r_out], [sd_out], [], built)
            effects, sds = [r_in], [sd_in]
        else:
            for label, start, size in f.blocks():
                how = parameterization[label]
                index, mask = _fixed_index(
                    design.fixed_names, X, f.Z[:, start : start + size], f.term_names[start : start + size]
                )
                if f.group != anchor:
                    mask = np.zeros_like(mask)
                fixed_mean = original[index] * mask
                if nested and how != "noncentered" and (f.group in parents or f.group == anchor):
                    fixed_mean = hierarchical_mean(f, start, size, fixed_mean, X, original, parents, built)
                r, sd, corr = _block_effects(
                    f,
                    label,
                    start,
                    size,
                    priors,
                    how,
                    (sd_name, cor_name),
                    single,
                    fixed_mean,
                    (levels or {}).get(label),
                )
                effects.append(r)
                sds.append(sd)
                if corr is not None:
                    cors.append((label, corr))
        mu = mu + _record(f, effects, sds, cors, built)
    return mu


@checked
def build_pymc_model(
    design: Design,
    structure: RandomStructure,
    priors: PriorSet,
    parameterization: dict[str, Parameterization],
) -> pm.Model:
    """Build the unsampled PyMC model.

    Parameters
    ----------
    design : Design
    structure : RandomStructure
    priors : PriorSet
    parameterization : dict
        Block label -> ``"centered"`` or ``"noncentered"`` (see :func:`choose_parameterization`).

    Returns
    -------
    pymc.Model
    """
    with pm.Model(coords=model_coords(design, structure)) as model:
        mu = linear_predictor(design, structure, priors, parameterization)
        sigma = priors.sigma.create("sigma")
        y = pm.Data("y_obs", np.asarray(design.y), dims="obs")
        gaussian.likelihood("y", mu, sigma, y, weights=design.weights)
    return model
