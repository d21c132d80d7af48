"""Stage 4b, Bayes: the posterior with the largest factor integrated out and the others sampled.

When a model's other factors have too many effects for the collapsed path's dense block (InstEval:
1,128 lecturers and 14 departments beside 2,972 students), the full model samples every group effect.
Integrating out only the largest factor keeps most of the collapsed path's benefit: its levels, the
ones with the least data each and the worst funnel, leave the sampler, and what remains is cheap:
given the other factors' effects, their contribution is an offset and the largest factor's part is
the one-factor collapsed density of the direct sampler, evaluated on the statistics of ``y − offset``
(:func:`~bayesmlm.bayes.partial_kernel.partial_kernel`), formed from the sampled terms' fixed
cross-products (:mod:`~bayesmlm.bayes.partial_stats`): an evaluation reads no rows.

The coordinates are PyMC's: ``fixed_centered``, the largest factor's blocks as in
:class:`~bayesmlm.bayes.direct_density.DirectDensity`, then for each other term (one sd each: only
single-term blocks are written here) its ``log sd`` and its levels' effects, centred (``c``) or
non-centred (``z``), and ``log σ`` last. Centred effects have the means of
:func:`bayesmlm.bayes.pymc_model.linear_predictor` with ``nested=True``: the fixed effects of the
columns constant within a level for the centred factor with the fewest levels, and for a factor nested
in another its parent's effect (hierarchical centring: InstEval's lecturers on their department).
``tests/test_partial_density.py`` holds value and gradient to a PyMC model of the same posterior.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from bayesmlm.bayes.collapsed_stats import centred_cross_products, predictor_shift
from bayesmlm.bayes.direct_density import DirectDensity, direct_plan
from bayesmlm.bayes.nested_levels import anchor_group, centred_factors, level_constant, nested_parents
from bayesmlm.bayes.partial_kernel import partial_kernel
from bayesmlm.bayes.partial_stats import other_cross_products
from bayesmlm.bayes.prior_density import SUPPORTED_FAMILIES, packed_priors
from bayesmlm.bayes.prior_set import PriorSet
from bayesmlm.design.covariance import RandomStructure
from bayesmlm.design.evaluate import Design
from bayesmlm.design.names import parameter_names

__all__ = ["OtherTerm", "PartialDensity", "partial_plan"]


def partial_plan(design: Design, structure: RandomStructure, priors: PriorSet) -> tuple[bool, str]:
    """Whether :class:`PartialDensity` can write this model's posterior, and why not if it cannot.

    Examples
    --------
    >>> import bayesmlm as bm
    >>> m = bm.Model("diameter ~ 1 + (1 | plate) + (1 | sample)", bm.load_dataset("Penicillin"))
    >>> partial_plan(m.design, m.structure, m.prior_set)
    (True, 'plate integrated out; sample sampled')
    """
    if len(structure.factors) < 2:
        return False, "one grouping factor (the collapsed path integrates it out)"
    if not design.holds_rows:
        return False, "no rows (a design from a Dask DataFrame)"
    if design.weights is not None:
        return False, "prior weights are not written into the partially collapsed density"
    first, rest = structure.factors[0], structure.factors[1:]
    ok, why = direct_plan(RandomStructure((first,)), priors)
    if not ok:
        return False, why
    for f in rest:
        if any(size > 1 for size in f.block_sizes):
            return False, f"{f.group} has a correlated block (only single-term blocks are written here)"
    other = sorted({p.family for p in priors.sd.values()} - SUPPORTED_FAMILIES)
    if other:
        return False, f"no numpy density for the prior families {', '.join(other)}"
    return True, f"{first.group} integrated out; {', '.join(f.group for f in rest)} sampled"


@dataclasses.dataclass(frozen=True)
class OtherTerm:
    """One single-term block of a sampled factor and where its coordinates sit."""

    group: str
    label: str
    term: str
    sd_coord: int
    offset: int  # first coordinate of its levels' effects
    levels: int
    centred: bool
    parent: tuple[str, np.ndarray] | None  # (parent group, each level's parent level) if nested


class PartialDensity:
    """The log posterior ``x ↦ (log p, ∇ log p)`` with the largest factor's effects integrated out.

    Parameters
    ----------
    design : Design
        The sampled design (response divided by its scale).
    structure : RandomStructure
    priors : PriorSet
        On the sampled scale.
    parameterization : dict
        Block label -> ``"centered"`` or ``"noncentered"`` for the sampled factors' blocks (the full
        model's choice, :func:`~bayesmlm.bayes.pymc_model.choose_parameterization`).
    """

    def __init__(self, design: Design, structure: RandomStructure, priors: PriorSet, parameterization):
        ok, why = partial_plan(design, structure, priors)
        if not ok:
            raise ValueError(f"the partially collapsed density does not apply: {why}")
        self.structure = structure
        first = structure.factors[0]
        self.first = RandomStructure((first,))
        stats = centred_cross_products(design, self.first)
        self.stats = stats
        self.collapsed = DirectDensity(design.fixed_names, self.first, priors, stats)
        self.fixed_names = list(design.fixed_names)
        p, width0 = self.collapsed.p, self.collapsed.ndim - 1
        X = np.asarray(design.X, dtype=float)
        shift = predictor_shift(design)
        self.shift = shift
        self.k_int = self.fixed_names.index("Intercept") if "Intercept" in self.fixed_names else -1
        anchor = anchor_group(structure, parameterization)
        others = RandomStructure(structure.factors[1:])
        centred_groups = {f.group for f in centred_factors(others, parameterization)}
        parents = nested_parents(others, centred_groups)
        sd_name, _ = parameter_names(structure)
        terms, sd_priors, coord, means = [], [], width0, []
        for f in others.factors:
            for label, start, _size in f.blocks():
                term = f.term_names[start]
                centred = parameterization[label] != "noncentered"
                mean = np.zeros((f.n_levels, p))
                hierarchical = centred and (f.group in parents or f.group == anchor)
                if hierarchical and term == "Intercept":
                    levels, constant = level_constant(X, f.codes, f.n_levels)
                    mean = levels * constant
                elif centred and f.group == anchor and term in self.fixed_names:
                    j = self.fixed_names.index(term)
                    mean[:, j] = 1.0 if np.allclose(X[:, j], f.Z[:, start]) else 0.0
                parent = parents.get(f.group) if hierarchical and term == "Intercept" else None
                terms.append(OtherTerm(f.group, label, term, coord, coord + 1, f.n_levels, centred, parent))
                means.append(mean)
                sd_priors.append(priors.sd[sd_name[(label, term)]])
                coord += 1 + f.n_levels
        self.terms = tuple(terms)
        self.ndim = coord + 1
        self.sub_index = np.array([*range(width0), self.ndim - 1], dtype=np.int64)
        sd_codes, sd_par, sd_const = packed_priors(sd_priors)
        n_effects = sum(t.levels for t in terms)
        # PyMC's constants: each effect's N(·, sd) or N(0, 1), less the log sd the kernel adds itself
        self._constant = self.collapsed._constant + sd_const - 0.5 * math.log(2.0 * math.pi) * n_effects
        f64 = np.float64
        codes = np.zeros((len(terms), design.n), dtype=np.int64)
        cols = np.zeros((len(terms), design.n))
        for k, t in enumerate(terms):
            f = structure.factor(t.group)
            codes[k] = f.codes
            cols[k] = f.Z[:, f.term_names.index(t.term)]
        width = max(t.levels for t in terms)
        T = len(terms)
        self.o_mean = np.zeros((T, width, p))
        self.o_parent = np.full(T, -1, dtype=np.int64)
        self.o_parent_of = np.zeros((T, width), dtype=np.int64)
        for k, t in enumerate(terms):
            self.o_mean[k, : t.levels] = means[k]
            if t.parent is not None:
                group, parent_of = t.parent
                self.o_parent[k] = next(
                    i for i, u in enumerate(terms) if u.group == group and u.term == "Intercept"
                )
                self.o_parent_of[k, : t.levels] = parent_of
        self.o_order = np.array(
            sorted(range(T), key=lambda k: structure.factor(terms[k].group).n_levels), dtype=np.int64
        )
        Xc = np.ascontiguousarray(X - shift, f64)
        yc = np.ascontiguousarray(np.asarray(design.y, f64) - stats.response_shift)
        self.o_levels = np.array([t.levels for t in terms], np.int64)
        self.other = other_cross_products(
            codes, cols, self.o_levels, Xc, yc, first.codes, first.Z, first.n_levels
        )
        args = self.collapsed._args  # (..., ztz, ztx, zty, xtx, xty, yty, n, shift_index, shift)
        self._args = (
            self.sub_index, *args[:19], args[20], args[21], args[22],
            *self.other.arrays(), np.array([t.offset for t in terms], np.int64), self.o_levels,
            np.array([t.sd_coord for t in terms], np.int64),
            np.array([t.centred for t in terms]), self.o_mean, self.o_parent, self.o_parent_of, self.o_order,
            sd_codes, sd_par, np.ascontiguousarray(shift, f64), self.k_int,
        )  # fmt: skip

    def __call__(self, x: np.ndarray) -> tuple[float, np.ndarray]:
        """Log posterior (up to the LKJ normalising constants) and its gradient at ``x``."""
        grad = np.empty(self.ndim)
        value = partial_kernel(np.asarray(x, dtype=float), *self._args, grad)
        return value + self._constant, grad

    def sampled_effects(self, xs: np.ndarray) -> dict[str, np.ndarray]:
        """Each sampled factor's sds (S, q) and group effects (S, m, q), keyed by group, from draws ``xs``."""
        beta = xs[:, : self.collapsed.p]
        orig = beta.copy()
        if self.k_int >= 0:
            orig[:, self.k_int] = beta[:, self.k_int] - beta @ self.shift
        r: dict[int, np.ndarray] = {}
        for k in self.o_order:
            t = self.terms[k]
            sd = np.exp(xs[:, t.sd_coord])
            v = xs[:, t.offset : t.offset + t.levels]
            if not t.centred:
                r[k] = v * sd[:, None]
                continue
            mu = orig @ self.o_mean[k, : t.levels].T
            if self.o_parent[k] >= 0:
                mu = mu + r[int(self.o_parent[k])][:, self.o_parent_of[k, : t.levels]]
            r[k] = v - mu
        out: dict[str, np.ndarray] = {}
        for f in self.structure.factors[1:]:
            sds = np.empty((xs.shape[0], f.q))
            effects = np.empty((xs.shape[0], f.n_levels, f.q))
            for k, t in enumerate(self.terms):
                if t.group == f.group:
                    j = f.term_names.index(t.term)
                    effects[:, :, j] = r[k]
                    sds[:, j] = np.exp(xs[:, t.sd_coord])
                    out[f"sd__{t.label}"] = sds[:, j].copy()
            out[f"sd_{f.group}"] = sds
            out[f"r_{f.group}"] = effects
        return out
