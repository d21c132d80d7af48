"""Stage 4b, Bayes: a collapsed fit's group effects, stored or drawn on demand, chunk by chunk of levels.

After a collapsed run the group effects of a model with one grouping factor are a deterministic function
of the population-level draws, the per-level statistics and a seed
(:func:`~bayesmlm.bayes.conditional.one_factor_conditional`). They are drawn in chunks of
:data:`LEVELS_PER_CHUNK` levels, chunk ``c`` from its own generator ``SeedSequence([seed, 5, c])``, so
the draws of a level never depend on how many levels are drawn at once: stored in the posterior
(``group_effects="store"``) or drawn again when asked (``"on_demand"``), the same seed gives the same
numbers. ``"auto"`` stores them unless groups × terms × draws × 4 bytes exceed
:data:`GROUP_EFFECTS_BUDGET`. An on-demand fit's summaries (:func:`random_effects_table`) are made one
chunk at a time, so memory stays bounded by a chunk's draws; what needs every draw at once raises
:class:`~bayesmlm.GroupEffectsNotStoredError`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import xarray as xr

from bayesmlm.arguments import choice
from bayesmlm.bayes.collapsed_stats import intercept_for_stats
from bayesmlm.bayes.direct_kernel import conditional_kernel
from bayesmlm.bayes.posterior import covariance_draws, stacked_draws
from bayesmlm.design.covariance import FactorTerms, RandomStructure
from bayesmlm.design.crossprod import CrossProducts
from bayesmlm.draws.summary import interval_table
from bayesmlm.exceptions import ArgumentError, GroupEffectsNotStoredError

if TYPE_CHECKING:
    from bayesmlm.bayes.collapsed_stats import Standardised

__all__ = [
    "GROUP_EFFECTS_BUDGET",
    "GROUP_EFFECTS_CHOICES",
    "LEVELS_PER_CHUNK",
    "ConditionalEffects",
    "StoredEffects",
    "choose_group_effects",
    "conditional_effects",
    "effects_of",
    "effects_seed",
    "group_effect_draws",
    "level_positions",
    "not_stored",
    "random_effects_table",
    "stored",
    "theta_draws",
]

#: the values of ``fit(group_effects=...)``
GROUP_EFFECTS_CHOICES = ("auto", "store", "on_demand")
#: ``"auto"`` draws the group effects on demand when storing them (in float32) would take more than this:
#: 100,000 groups x 2 terms x 4,000 draws would be 3.2 GB
GROUP_EFFECTS_BUDGET = 256 * 2**20
#: levels drawn at once, each chunk from its own seed (4,000 draws x 256 levels x 2 terms: 16 MB)
LEVELS_PER_CHUNK = 256


def effects_seed(seed: int | None) -> int:
    """Return the seed the group effects are drawn from: the fit's, or fresh entropy (kept in fit.info)."""
    return int(np.random.SeedSequence().entropy) if seed is None else int(seed)


def choose_group_effects(
    request: str, structure: RandomStructure, n_draws: int, collapsed: bool, log_likelihood: bool | None
) -> tuple[str, str]:
    """Decide whether a fit stores its group effects or draws them on demand; say why.

    Parameters
    ----------
    request : {"auto", "store", "on_demand"}
    structure : RandomStructure
    n_draws : int
        Chains x draws.
    collapsed : bool
        Whether the collapsed path is taken (only it draws group effects after sampling).
    log_likelihood : bool or None
        ``True`` if asked for (it needs every group effect: stored), ``None`` if left to the default.

    Raises
    ------
    ArgumentError
        For a value not among the choices, or ``"on_demand"`` where it cannot apply.

    Examples
    --------
    >>> import bayesmlm as bm
    >>> m = bm.Model("Reaction ~ Days + (Days | Subject)", bm.load_dataset("sleepstudy"))
    >>> choose_group_effects("auto", m.structure, 4000, True, None)[0]
    'store'
    """
    choice("group_effects", request, GROUP_EFFECTS_CHOICES)
    size = 4 * n_draws * sum(f.n_levels * f.q for f in structure.factors)
    stored, budget = f"{size / 2**20:,.1f} MB in float32", f"the {GROUP_EFFECTS_BUDGET // 2**20} MB budget"
    if request == "store":
        return "store", f"asked for: {stored}"
    why_not = None
    if not collapsed:
        why_not = "the group effects are sampled parameters on this path (not collapsed)"
    elif len(structure.factors) > 1:
        why_not = "with several grouping factors their conditional does not split by levels"
    elif log_likelihood:
        why_not = "log_likelihood=True needs every group effect"
    if request == "on_demand":
        if why_not:
            raise ArgumentError(
                f"group_effects='on_demand' applies to a collapsed fit of one grouping factor without "
                f"the log-likelihood: {why_not}; use group_effects='store' or 'auto'"
            )
        return "on_demand", f"asked for: {stored} if stored"
    if size <= GROUP_EFFECTS_BUDGET:
        return "store", f"{stored}, within {budget}"
    if why_not:
        return "store", f"{stored}, above {budget}, but {why_not}"
    return "on_demand", f"{stored} would exceed {budget}"


def not_stored(what: str, group) -> GroupEffectsNotStoredError:
    """Make the error for ``what``, a feature needing every group effect, on a fit drawing them on demand.

    ``group`` is the factor's name, or the structure (of one factor).
    """
    group = group if isinstance(group, str) else group.factors[0].group
    return GroupEffectsNotStoredError(
        f"{what} needs every draw of every {group} effect, which this fit draws on demand instead of "
        f"storing (group_effects='on_demand', or 'auto' above {GROUP_EFFECTS_BUDGET // 2**20} MB): refit "
        f"with fit(group_effects='store'), or take some levels' draws with "
        f"fit.group_effect_draws(levels=[...]); random_effects() and coefficients() work as they are"
    )


@dataclasses.dataclass(frozen=True, eq=False)
class ConditionalEffects:
    """One factor's group effects given each population-level draw, drawn chunk by chunk of levels.

    Attributes
    ----------
    factor : FactorTerms
    stats : CrossProducts
        The sampler's per-level statistics (response over ``scale``, centred predictors).
    lam, beta, sigma : ndarray
        Per draw (S, q, q), (S, p) and (S,), on the sampler's scale, as the statistics expect them.
    scale : float
        The response's scale: the effects are multiplied by it.
    seed : int
    """

    factor: FactorTerms
    stats: CrossProducts
    lam: np.ndarray
    beta: np.ndarray
    sigma: np.ndarray
    scale: float
    seed: int

    @property
    def n_chunks(self) -> int:
        """The number of chunks of :data:`LEVELS_PER_CHUNK` levels."""
        return -(-self.factor.n_levels // LEVELS_PER_CHUNK)

    def chunk(self, c: int) -> np.ndarray:
        """Draws (S, levels of chunk ``c``, q) of chunk ``c``'s effects, in the response's units."""
        f, S = self.factor, len(self.sigma)
        lv = slice(c * LEVELS_PER_CHUNK, min(f.n_levels, (c + 1) * LEVELS_PER_CHUNK))
        eps = np.random.default_rng(np.random.SeedSequence([self.seed, 5, c])).standard_normal(
            (S, lv.stop - lv.start, f.q)
        )
        out = np.empty_like(eps)
        f64 = np.float64
        conditional_kernel(
            np.ascontiguousarray(self.stats.ztz1[lv], f64), np.ascontiguousarray(self.stats.ztx1[lv], f64),
            np.ascontiguousarray(self.stats.zty1[lv], f64), np.ascontiguousarray(self.lam, f64),
            np.ascontiguousarray(self.beta, f64), np.ascontiguousarray(self.sigma, f64), eps, out,
        )  # fmt: skip
        out *= self.scale
        return out

    def chunks(self) -> Iterator[tuple[slice, np.ndarray]]:
        """Every chunk in turn: (its levels as a slice, its draws (S, levels, q))."""
        for c in range(self.n_chunks):
            yield (
                slice(c * LEVELS_PER_CHUNK, min(self.factor.n_levels, (c + 1) * LEVELS_PER_CHUNK)),
                self.chunk(c),
            )

    def draws(self, positions: np.ndarray) -> np.ndarray:
        """Draws (S, len(positions), q) of the levels at ``positions``; only their chunks are drawn."""
        positions = np.asarray(positions, dtype=np.int64)
        out = np.empty((len(self.sigma), len(positions), self.factor.q))
        for c in np.unique(positions // LEVELS_PER_CHUNK):
            mine = positions // LEVELS_PER_CHUNK == c
            out[:, mine] = self.chunk(int(c))[:, positions[mine] - c * LEVELS_PER_CHUNK]
        return out

    def all_draws(self, dtype=np.float64) -> np.ndarray:
        """Every level's draws (S, m, q) in ``dtype``, filled chunk by chunk (what a stored fit keeps)."""
        out = np.empty((len(self.sigma), self.factor.n_levels, self.factor.q), dtype=dtype)
        for levels, b in self.chunks():
            out[:, levels] = b
        return out


@dataclasses.dataclass(frozen=True, eq=False)
class StoredEffects:
    """A stored ``r_<group>`` (S, m, q), shown with :class:`ConditionalEffects`' faces."""

    draws_array: np.ndarray

    def chunks(self) -> Iterator[tuple[slice, np.ndarray]]:
        """Chunks of :data:`LEVELS_PER_CHUNK` levels of the stored draws, as float64."""
        m = self.draws_array.shape[1]
        for start in range(0, m, LEVELS_PER_CHUNK):
            levels = slice(start, min(m, start + LEVELS_PER_CHUNK))
            yield levels, np.asarray(self.draws_array[:, levels], dtype=np.float64)

    def draws(self, positions: np.ndarray) -> np.ndarray:
        """Draws (S, len(positions), q) of the levels at ``positions``."""
        return np.asarray(self.draws_array[:, np.asarray(positions, dtype=np.int64)], dtype=np.float64)


def level_positions(factor: FactorTerms, levels) -> np.ndarray:
    """Positions of ``levels`` (labels) among the factor's levels; an unknown one is an ArgumentError."""
    index = pd.Index(list(factor.levels))
    wanted = list(levels)
    positions = index.get_indexer(wanted)
    if (positions < 0).any():
        unknown = [lv for lv, p in zip(wanted, positions, strict=True) if p < 0][:10]
        raise ArgumentError(
            f"levels {unknown} are not levels of {factor.group} (labelled as in random_effects(), such as "
            f"{list(factor.levels[:3])})"
        )
    return positions


def random_effects_table(
    source: ConditionalEffects | StoredEffects,
    factor: FactorTerms,
    fixed: np.ndarray,
    fixed_names,
    prob: float,
) -> pd.DataFrame:
    """Each level's deviations and group-specific coefficients: mean, sd and HDI, one chunk at a time.

    ``fixed`` holds the fixed effects' draws (S, p); the table is :meth:`bayesmlm.Fit.random_effects`'.
    """
    names = list(fixed_names)
    add = [(k, names.index(t)) for k, t in enumerate(factor.term_names) if t in names]
    parts = []
    for levels, r in source.chunks():
        coef = r.copy()
        for k, j in add:
            coef[:, :, k] += fixed[:, j][:, None]
        index = pd.MultiIndex.from_product(
            [list(factor.levels[levels]), list(factor.term_names)], names=[factor.group, "term"]
        )
        S = r.shape[0]
        deviations = interval_table(r.reshape(S, -1), index, prob)
        parts.append(
            pd.concat([deviations, interval_table(coef.reshape(S, -1), index, prob, prefix="coef_")], axis=1)
        )
    return pd.concat(parts)


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


def conditional_effects(posterior, standardised: Standardised, structure: RandomStructure, seed: int):
    """Return the :class:`ConditionalEffects` of a one-factor collapsed posterior.

    ``posterior`` is on the response's scale (as a fit holds it); its draws are divided by the sampler's
    ``standardised.scale`` to meet the sampler's statistics, and the effects drawn are multiplied back.
    """
    (f,) = structure.factors
    scale, stats = standardised.scale, standardised.stats
    sampled = "fixed_centered" if "fixed_centered" in posterior else "fixed"
    theta = theta_draws(posterior, structure)
    lam = np.zeros((theta.shape[0], f.q, f.q))
    rows, cols = f.lower_index
    lam[:, rows, cols] = theta
    beta = intercept_for_stats(stacked_draws(posterior, sampled) / scale, standardised.design, stats)
    sigma = stacked_draws(posterior, "sigma") / scale
    return ConditionalEffects(f, stats, lam, beta, sigma, scale, int(seed))


def stored(fit) -> bool:
    """Whether a fit holds its group effects in its posterior (every fit but an on-demand one)."""
    return fit.info.get("group_effects", "store") == "store"


def effects_of(fit, factor: FactorTerms) -> ConditionalEffects | StoredEffects:
    """Return a fit's group effects of ``factor``: the stored draws, or drawn again from the fit's seed."""
    if stored(fit):
        return StoredEffects(stacked_draws(fit.posterior, f"r_{factor.group}"))
    seed = fit.info["group_effects_seed"]
    return conditional_effects(fit.posterior, fit.model._standardised, fit.structure, seed)


def group_effect_draws(fit, factor: FactorTerms, levels) -> xr.DataArray:
    """Draws (chain, draw, level, term) of ``factor``'s effects of ``levels`` (every level if None).

    Every level of an on-demand fit raises :class:`~bayesmlm.GroupEffectsNotStoredError`.
    """
    post = fit.posterior
    if levels is None:
        if not stored(fit):
            raise not_stored("group_effect_draws() without levels=", factor.group)
        return post[f"r_{factor.group}"]
    positions = level_positions(factor, levels)
    shape = (post.sizes["chain"], post.sizes["draw"], len(positions), factor.q)
    coords = {
        "chain": post["chain"],
        "draw": post["draw"],
        factor.group: [factor.levels[p] for p in positions],
    }
    return xr.DataArray(
        effects_of(fit, factor).draws(positions).reshape(shape),
        dims=("chain", "draw", factor.group, f"{factor.group}_term"),
        coords=coords | {f"{factor.group}_term": list(factor.term_names)},
    )
