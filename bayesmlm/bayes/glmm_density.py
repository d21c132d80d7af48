"""Stage 4b, Bayes: the log posterior of a generalized model written out, for nutpie (no PyTensor graph).

For a binomial (logit) or Poisson (log) model whose blocks are all scalar (``(1 | g)``, ``(x || g)``),
centred or non-centred, without prior weights, the posterior of the PyMC model
(:func:`~bayesmlm.bayes.glmm_model.build_glmm_model`) has the hand-written log density and gradient of
:class:`GLMMDensity` (the loop in :mod:`bayesmlm.bayes.glmm_kernel`; ``tests/test_glmm_density.py`` holds
it to PyMC's at random points). Same variables, same priors, same parameterisation: only the code that
evaluates it differs. A fit then imports neither PyMC nor PyTensor and compiles nothing per model, which
on a model of cbpp's size is most of its time. Per-level (``"mixed"``) and ``"integrated"`` blocks,
correlated blocks, a nested pair of centred factors, other links and the negative binomial keep the
PyMC model (:func:`glmm_plan` says why).
"""

from __future__ import annotations

import numpy as np
from scipy.special import gammaln

from bayesmlm.bayes.collapsed_stats import predictor_shift
from bayesmlm.bayes.glmm_kernel import BINOMIAL_LOGIT, POISSON_LOG, glmm_kernel, pack_arguments
from bayesmlm.bayes.nested_levels import anchor_group, centred_factors, level_constant, nested_parents
from bayesmlm.bayes.prior_density import packed_priors
from bayesmlm.bayes.prior_set import PriorSet
from bayesmlm.design.covariance import RandomStructure
from bayesmlm.design.evaluate import Design
from bayesmlm.design.names import parameter_names
from bayesmlm.families.base import Family

__all__ = ["GLMMDensity", "glmm_plan"]

FIXED_FAMILIES = ("Normal", "StudentT")
SD_FAMILIES = ("HalfNormal", "HalfStudentT", "HalfCauchy", "Exponential")
LIKELIHOODS = {("binomial", "logit"): BINOMIAL_LOGIT, ("poisson", "log"): POISSON_LOG}


def glmm_plan(design: Design, structure: RandomStructure, family: Family, priors: PriorSet, how: dict):
    """Whether :class:`GLMMDensity` can write this model's posterior; ``(True, "")`` or ``(False, why)``."""
    if (family.name, family.link.name) not in LIKELIHOODS:
        return False, f"no written-out density for the {family.name} family with the {family.link.name} link"
    if family.glm_data(design).weighted:
        return False, "prior weights (the likelihood is a weighted Potential)"
    if any(size > 1 for f in structure.factors for _, _, size in f.blocks()):
        return False, "a correlated block (LKJ prior)"
    other = sorted({v for v in how.values()} - {"centered", "noncentered"})
    if other:
        return False, f"a {other[0]!r} block"
    centred = {f.group for f in centred_factors(structure, how)}
    if nested_parents(structure, centred):
        return False, "a centred factor nested in another centred one (hierarchical centring)"
    fixed = {priors.fixed[n].family for n in design.fixed_names}
    if len(fixed) > 1 or not fixed <= set(FIXED_FAMILIES):
        return False, f"fixed-effect priors of the families {sorted(fixed)}"
    sds = {p.family for p in priors.sd.values()}
    if not sds <= set(SD_FAMILIES):
        return False, f"sd priors of the families {sorted(sds)}"
    return True, ""


class GLMMDensity:
    """The log posterior ``x ↦ (log p, ∇ log p)`` of a generalized model with scalar blocks.

    Parameters
    ----------
    design, structure, family
    priors : PriorSet
    how : dict
        Block label -> ``"centered"`` or ``"noncentered"`` (``Model.parameterization``).
    """

    def __init__(self, design: Design, structure: RandomStructure, family: Family, priors: PriorSet, how):
        ok, why = glmm_plan(design, structure, family, priors, how)
        if not ok:
            raise ValueError(f"the written-out GLMM density does not apply: {why}")
        self.fixed_names = list(design.fixed_names)
        p = self.p = len(self.fixed_names)
        X = np.asarray(design.X, dtype=float)
        shift = predictor_shift(design)
        self.intercept = "Intercept" in self.fixed_names
        # original = T @ sampled: the intercept on uncentred predictors
        T = np.eye(p)
        if self.intercept:
            T[self.fixed_names.index("Intercept")] -= shift
        self.to_original = T
        anchor = anchor_group(structure, how)
        sd_name, _ = parameter_names(structure)
        blocks, codes, Z, means, sd_priors = [], [], [], [], []
        start = p + sum(len(f.block_labels) for f in structure.factors)
        for f in structure.factors:
            for label, col, _ in f.blocks():
                term = f.term_names[col]
                sd_priors.append(priors.sd[sd_name[(label, term)]])
                centred = how[label] == "centered"
                blocks.append((f, label, col, centred, start))
                codes.append(np.asarray(f.codes, dtype=np.int64))
                Z.append(np.asarray(f.Z[:, col], dtype=float))
                means.append(self._means(f, col, term, X, centred and f.group == anchor))
                start += f.n_levels
        self.blocks = tuple(blocks)
        self.ndim = start
        data = family.glm_data(design)
        y = np.asarray(data.observed, dtype=float)
        trials = np.asarray(data.n, dtype=float)
        code = LIKELIHOODS[(family.name, family.link.name)]
        if code == BINOMIAL_LOGIT:
            lik_const = float(np.sum(gammaln(trials + 1) - gammaln(y + 1) - gammaln(trials - y + 1)))
        else:
            lik_const = -float(np.sum(gammaln(y + 1)))
        fixed_codes, fixed_par, fixed_const = packed_priors([priors.fixed[n] for n in self.fixed_names])
        sd_codes, sd_par, sd_const = packed_priors(sd_priors)
        n_effects = self.ndim - p - len(blocks)
        self._constant = fixed_const + sd_const + lik_const - 0.5 * np.log(2 * np.pi) * n_effects
        offset = np.zeros(design.n) if design.offset is None else np.asarray(design.offset, dtype=float)
        self._args = (
            np.ascontiguousarray(X - shift), np.ascontiguousarray(offset), y, trials, code, fixed_codes,
            fixed_par, sd_codes, sd_par, np.ascontiguousarray(np.array(codes).reshape(len(blocks), -1)),
            np.ascontiguousarray(np.array(Z).reshape(len(blocks), -1)),
            np.array([b[4] for b in blocks], dtype=np.int64),
            np.array([b[0].n_levels for b in blocks], dtype=np.int64),
            np.array([int(b[3]) for b in blocks], dtype=np.int64),
            np.ascontiguousarray(np.concatenate(means).reshape(-1, p)),
        )  # fmt: skip

    def _means(self, f, col: int, term: str, X: np.ndarray, anchored: bool) -> np.ndarray:
        """Each level's mean row (m, p) of a centred block of the anchor factor: ``mean_j = M_j · β``.

        As :func:`~bayesmlm.bayes.pymc_model.linear_predictor` with ``nested=True``: the intercept on the
        fixed effects of the columns constant within the level, another term on its own fixed effect.
        """
        M = np.zeros((f.n_levels, self.p))
        if not anchored:
            return M
        if term == "Intercept":
            levels, constant = level_constant(X, f.codes, f.n_levels)
            return (levels * constant) @ self.to_original
        if term in self.fixed_names:
            j = self.fixed_names.index(term)
            if np.allclose(X[:, j], f.Z[:, col]):
                M[:] = self.to_original[j]
        return M

    # -- the density ---------------------------------------------------------------------------
    def __call__(self, x: np.ndarray) -> tuple[float, np.ndarray]:
        """Log posterior and its gradient at ``x``."""
        grad = np.empty(self.ndim)
        value = glmm_kernel(np.asarray(x, dtype=float), *self._args, grad)
        return value + self._constant, grad

    def packed(self) -> np.ndarray:
        """Return the inputs and constant as the one float64 buffer the C callback reads."""
        return pack_arguments(self._args, self._constant)

    def start(self, priors: PriorSet) -> np.ndarray:
        """Where chains start before the jitter: fixed effects at their prior locations, sds 1, effects 0."""
        x = np.zeros(self.ndim)
        for k, name in enumerate(self.fixed_names):
            x[k] = dict(priors.fixed[name].params).get("mu", 0.0)
        return x

    # -- draws ---------------------------------------------------------------------------------
    def constrained(self, xs: np.ndarray) -> dict[str, np.ndarray]:
        """Return the PyMC model's posterior variables from draws ``xs`` (S, ndim), draws first.

        ``fixed_centered`` and ``fixed`` (or ``fixed`` alone without an intercept), ``sd__<label>``,
        ``z__<label>`` or ``c__<label>`` (S, m, 1) per block, ``r_<group>`` (S, m, q), ``sd_<group>`` (S, q).
        """
        p = self.p
        beta = xs[:, :p]
        out: dict[str, np.ndarray] = {}
        if self.intercept:
            out["fixed_centered"] = beta.copy()
        out["fixed"] = beta @ self.to_original.T
        means = self._args[-1]
        row = 0
        effects: dict[str, list] = {}
        sds: dict[str, list] = {}
        for b, (f, label, _, centred, start) in enumerate(self.blocks):
            s = np.exp(xs[:, p + b])
            out[f"sd__{label}"] = s
            e = xs[:, start : start + f.n_levels]
            if centred:
                r = e - beta @ means[row : row + f.n_levels].T
            else:
                r = e * s[:, None]
            out[("c__" if centred else "z__") + label] = e[:, :, None].copy()
            effects.setdefault(f.group, []).append(r)
            sds.setdefault(f.group, []).append(s)
            row += f.n_levels
        for group, rs in effects.items():
            out[f"r_{group}"] = np.stack(rs, axis=-1)
            out[f"sd_{group}"] = np.stack(sds[group], axis=-1)
        return out
